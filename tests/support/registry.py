"""Real OCI registries for tests: ``docker-registry serve`` (CNCF distribution 2.8, Debian package).

Three variants, each a separate process on 127.0.0.1 with filesystem storage in its own
directory and ``storage.delete.enabled: true``:

* ``anonymous`` -- plain HTTP, no auth;
* ``basic``     -- HTTPS (``trustme`` CA) + htpasswd (bcrypt, made by ``htpasswd -Bbn``);
* ``token``     -- HTTPS + distribution's ``auth.token`` (realm/service/issuer/rootcertbundle),
  backed by :class:`support.token_server.TokenServer`.

Processes are stopped by PID when :meth:`RegistryServer.stop` is called, at interpreter exit
(``atexit``), and -- on Linux, when started from the main thread -- by the kernel if the test
process dies (``PR_SET_PDEATHSIG``). No orphans are left behind.

distribution 2.8 has **no** OCI 1.1 referrers API (``GET /v2/<name>/referrers/<digest>`` is 404),
but it stores manifests with ``subject`` and ``artifactType``, so the ``sha256-<hex>`` fallback tag
works (see ``support.signer``).

For the referrers API, :func:`start_referrers_registry` starts a fourth, anonymous plain-HTTP
registry: go-containerregistry's own test registry (``pkg/registry``, v0.22.1, the one cosign's
tests use) with ``WithReferrersSupport(true)`` and blobs on disk, built by
``scripts/install-referrers-registry`` (a missing binary fails the test with that command). Clients
that probe the API -- ggcr, hence cosign, and :func:`support.signer.update_fallback_index` -- find
it answering 200 and write **no** fallback tag. Its quirks, all as of v0.22.1:

* the referrers index lists each referrer's ``config.mediaType`` as its ``artifactType`` (the
  manifest's own ``artifactType`` is ignored), so a cosign v3 bundle is listed as
  ``application/vnd.oci.empty.v1+json``; the manifest's annotations are copied;
* the ``?artifactType=`` filter is ignored (all referrers come back, and no
  ``OCI-Filters-Applied`` header), there is no pagination, and the order is random (a Go map);
* ``PUT`` of a manifest with a ``subject`` gets no ``OCI-Subject`` header, and one whose subject
  does not exist is accepted (and listed for that digest);
* manifests are kept **in memory** (gone when the process stops; blobs survive in its
  directory), ``DELETE`` by digest leaves the tags that point at it resolvable, and the referrers
  of a repository that does not exist are a 404 ``NAME_UNKNOWN`` (a fallback-tag registry, to
  ggcr), not an empty index;
* it serves plain HTTP only, without authentication.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import enum
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
import yaml

from support.tls import client_ssl_context, write_ca, write_server_cert
from support.token_server import Algorithm, TokenServer

REGISTRY_BINARY = "docker-registry"
REGISTRY_APT_PACKAGE = "docker-registry"
HTPASSWD_BINARY = "htpasswd"
HTPASSWD_APT_PACKAGE = "apache2-utils"
DEFAULT_USERNAME = "signgate"
#: go-containerregistry version of the referrers registry (as pinned by its install script).
REFERRERS_REGISTRY_GGCR_VERSION = "v0.22.1"
REFERRERS_REGISTRY_INSTALL = "scripts/install-referrers-registry"


def referrers_registry_binary() -> Path:
    """Where ``scripts/install-referrers-registry`` puts the binary (it may not be there)."""
    tools = Path(os.environ.get("SIGNGATE_TOOLS_CACHE", Path.home() / ".cache/signgate-test-tools"))
    version = REFERRERS_REGISTRY_GGCR_VERSION
    return tools / f"referrers-registry-ggcr-{version}" / "referrers-registry"


class MissingToolError(RuntimeError):
    """A binary the test world needs is not installed (the message names the apt package)."""


class RegistryKind(enum.StrEnum):
    """Which registry variant to start."""

    ANONYMOUS = "anonymous"
    BASIC = "basic"
    TOKEN = "token"


def require_tool(binary: str, apt_package: str) -> str:
    """Return the absolute path of ``binary``.

    Raises:
        MissingToolError: it is not on PATH; the message says which apt package installs it.
    """
    path = shutil.which(binary)
    if path is None:
        raise MissingToolError(
            f"{binary!r} is not installed: run `apt-get install -y {apt_package}` "
            "(or .ci/install-test-tools.sh as root)"
        )
    return path


# -- process bookkeeping ---------------------------------------------------------------------------

_LIVE: dict[int, subprocess.Popen[bytes]] = {}
_LIVE_LOCK = threading.Lock()


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Stop one child by its PID: SIGTERM, then SIGKILL after ``timeout``; always reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    with _LIVE_LOCK:
        _LIVE.pop(proc.pid, None)


@atexit.register
def _reap_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for proc in procs:
        _terminate(proc)


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn that asks the kernel to SIGTERM the child when this thread dies.

    Only used from the main thread: PDEATHSIG fires when the *thread* that forked exits.
    The libc function is resolved here, before fork, so the child only makes one syscall.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)

    return preexec


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the running registry --------------------------------------------------------------------------


@dataclass
class RegistryServer:
    """A running ``docker-registry`` process and what clients need to talk to it."""

    kind: RegistryKind
    port: int
    workdir: Path
    ca_file: Path | None
    """PEM of the CA that issued the registry's (and token server's) TLS certificate."""
    username: str | None
    password: str | None
    token_server: TokenServer | None
    log_file: Path
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    implementation: str = "distribution"
    """``distribution`` (``docker-registry``, no referrers API) or ``go-containerregistry``."""

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` -- the registry part of image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL, ``http://`` or ``https://``, without a trailing slash."""
        scheme = "https" if self.ca_file is not None else "http"
        return f"{scheme}://{self.host}"

    @property
    def pid(self) -> int | None:
        """PID of the registry process while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def token_requests(self) -> int:
        """Number of requests the token server has answered (0 for non-token variants)."""
        return self.token_server.request_count if self.token_server is not None else 0

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting :attr:`ca_file`, or None for plain HTTP."""
        return client_ssl_context(self.ca_file)

    @property
    def aiohttp_ssl(self) -> ssl.SSLContext | bool:
        """The ``ssl=`` argument for aiohttp requests: the trusting context, or True (default)."""
        return self.ssl_context() or True

    def docker_config(
        self, path: Path, *, username: str | None = None, password: str | None = None
    ) -> Path:
        """Write a Docker ``config.json`` with this registry's credentials and return ``path``.

        ``{"auths": {"127.0.0.1:PORT": {"auth": base64("user:pass")}}}``; pass ``username``/
        ``password`` to write other (e.g. wrong) credentials. Without credentials, ``auths``
        is empty.
        """
        user = username if username is not None else self.username
        secret = password if password is not None else self.password
        auths: dict[str, Any] = {}
        if user is not None and secret is not None:
            token = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
            auths[self.host] = {"auth": token}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"auths": auths}, indent=2) + "\n")
        return path

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the registry's log (for failure messages)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the registry process (by PID) and its token server. Idempotent."""
        if self._proc is not None:
            _terminate(self._proc)
        if self.token_server is not None:
            self.token_server.stop()


# -- starting --------------------------------------------------------------------------------------


def _config(
    kind: RegistryKind,
    port: int,
    workdir: Path,
    tls: tuple[Path, Path] | None,
    htpasswd: Path | None,
    token_server: TokenServer | None,
) -> dict[str, Any]:
    http_section: dict[str, Any] = {
        "addr": f"127.0.0.1:{port}",
        "secret": secrets.token_hex(16),
    }
    if tls is not None:
        http_section["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "data")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http_section,
        "health": {"storagedriver": {"enabled": False}},
    }
    if kind is RegistryKind.BASIC:
        config["auth"] = {"htpasswd": {"realm": "signgate-test", "path": str(htpasswd)}}
    elif kind is RegistryKind.TOKEN:
        assert token_server is not None
        config["auth"] = {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(token_server.rootcertbundle),
                "autoredirect": False,
            }
        }
    return config


def _write_htpasswd(path: Path, username: str, password: str) -> None:
    htpasswd = require_tool(HTPASSWD_BINARY, HTPASSWD_APT_PACKAGE)
    out = subprocess.run(
        [htpasswd, "-Bbn", username, password], check=True, capture_output=True, timeout=30
    ).stdout
    path.write_bytes(out.strip() + b"\n")


def _wait_until_answering(
    server: RegistryServer, proc: subprocess.Popen[bytes], timeout: float
) -> bool:
    """Poll ``GET /v2/`` until any HTTP answer (200 or 401). False if the process exited."""
    ctx = server.ssl_context()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        conn: http.client.HTTPConnection = (
            http.client.HTTPSConnection("127.0.0.1", server.port, timeout=2, context=ctx)
            if ctx is not None
            else http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
        )
        try:
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
        except OSError:
            time.sleep(0.02)
            continue
        finally:
            conn.close()
        if status in (200, 401):
            return True
        raise RuntimeError(f"registry at {server.url} answered /v2/ with HTTP {status}")
    raise RuntimeError(
        f"registry at {server.url} did not answer /v2/ within {timeout}s:\n{server.log_tail()}"
    )


def start_registry(
    kind: RegistryKind | str,
    workdir: Path,
    *,
    tls_ca: trustme.CA | None = None,
    username: str = DEFAULT_USERNAME,
    password: str | None = None,
    anonymous_pull: bool = False,
    token_algorithm: Algorithm = "ES256",
    startup_timeout: float = 15.0,
) -> RegistryServer:
    """Start a registry of the given kind and wait until ``/v2/`` answers.

    Args:
        kind: ``anonymous``, ``basic`` or ``token``.
        workdir: an empty directory owned by this registry (config, storage, certs, log).
        tls_ca: CA for the HTTPS certificate; required for ``basic`` and ``token``.
        username: the one account (htpasswd user, or token-server user).
        password: its password; random when omitted.
        anonymous_pull: ``token`` only -- whether the token server grants pull without credentials.
        token_algorithm: ``token`` only -- ES256 or RS256 token signatures.
        startup_timeout: seconds to wait for ``/v2/``.

    Raises:
        MissingToolError: ``docker-registry`` (or ``htpasswd``) is not installed.
        RuntimeError: the registry did not come up (the message includes its log).
    """
    kind = RegistryKind(kind)
    binary = require_tool(REGISTRY_BINARY, REGISTRY_APT_PACKAGE)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    secret = password if password is not None else secrets.token_urlsafe(12)

    tls: tuple[Path, Path] | None = None
    ca_file: Path | None = None
    htpasswd: Path | None = None
    token_server: TokenServer | None = None
    if kind is not RegistryKind.ANONYMOUS:
        if tls_ca is None:
            raise ValueError(f"a {kind} registry needs tls_ca")
        ca_file = write_ca(tls_ca, workdir / "ca.pem")
        tls = write_server_cert(tls_ca, workdir, "registry")
    if kind is RegistryKind.BASIC:
        htpasswd = workdir / "htpasswd"
        _write_htpasswd(htpasswd, username, secret)
    if kind is RegistryKind.TOKEN:
        assert tls_ca is not None
        token_server = TokenServer(
            tls_ca=tls_ca,
            workdir=workdir,
            users={username: secret},
            anonymous_pull=anonymous_pull,
            algorithm=token_algorithm,
        )
        token_server.start()

    log_file = workdir / "registry.log"
    try:
        for _attempt in range(5):
            port = _free_port()
            config_path = workdir / "config.yml"
            config_path.write_text(
                yaml.safe_dump(_config(kind, port, workdir, tls, htpasswd, token_server))
            )
            has_user = kind is not RegistryKind.ANONYMOUS
            server = RegistryServer(
                kind=kind,
                port=port,
                workdir=workdir,
                ca_file=ca_file,
                username=username if has_user else None,
                password=secret if has_user else None,
                token_server=token_server,
                log_file=log_file,
            )
            with log_file.open("ab") as log:
                proc = subprocess.Popen(
                    [binary, "serve", str(config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=workdir,
                    preexec_fn=_pdeathsig_preexec(),  # prctl resolved before fork
                )
            with _LIVE_LOCK:
                _LIVE[proc.pid] = proc
            server._proc = proc
            try:
                if _wait_until_answering(server, proc, startup_timeout):
                    return server
            except BaseException:
                _terminate(proc)
                raise
            _terminate(proc)
            if "address already in use" not in server.log_tail().lower():
                raise RuntimeError(f"docker-registry exited during startup:\n{server.log_tail()}")
        raise RuntimeError("docker-registry could not bind a free port after 5 attempts")
    except BaseException:
        if token_server is not None:
            token_server.stop()
        raise


# -- the referrers-API registry --------------------------------------------------------------------

_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")


def _wait_for_port(log_file: Path, proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The port the process logs ("listening on 127.0.0.1:PORT"); None if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_file.read_bytes())
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            return None
        time.sleep(0.02)
    return None


def start_referrers_registry(workdir: Path, *, startup_timeout: float = 15.0) -> RegistryServer:
    """Start go-containerregistry's registry with the OCI 1.1 referrers API; wait for ``/v2/``.

    Anonymous plain HTTP on a free loopback port (the process binds port 0 and reports the one it
    got), blobs in ``workdir/blobs``, one log line per request in ``workdir/registry.log``. The
    handle has the same shape as :func:`start_registry`'s (``kind`` is ``anonymous``,
    ``implementation`` is ``go-containerregistry``). See the module docstring for its quirks.

    Raises:
        MissingToolError: the binary is not built; the message says to run
            ``scripts/install-referrers-registry``.
        RuntimeError: the registry did not come up (the message includes its log).
    """
    binary = referrers_registry_binary()
    if not os.access(binary, os.X_OK):
        raise MissingToolError(
            f"the referrers-API registry (go-containerregistry {REFERRERS_REGISTRY_GGCR_VERSION}) "
            f"is not installed at {binary}: run {REFERRERS_REGISTRY_INSTALL}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    log_file = workdir / "registry.log"
    log_file.write_bytes(b"")
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            [str(binary), "-address", "127.0.0.1:0", "-blobs", str(workdir / "blobs"), "-v"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            preexec_fn=_pdeathsig_preexec(),  # prctl resolved before fork
        )
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc
    try:
        port = _wait_for_port(log_file, proc, startup_timeout)
        if port is None:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"{binary} did not start listening:\n{tail}")
        server = RegistryServer(
            kind=RegistryKind.ANONYMOUS,
            port=port,
            workdir=workdir,
            ca_file=None,
            username=None,
            password=None,
            token_server=None,
            log_file=log_file,
            implementation="go-containerregistry",
        )
        server._proc = proc
        if not _wait_until_answering(server, proc, startup_timeout):
            raise RuntimeError(f"{binary} exited during startup:\n{server.log_tail()}")
    except BaseException:
        _terminate(proc)
        raise
    return server
