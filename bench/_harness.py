"""What ``bench/perf.py`` (``scripts/bench``) and ``bench/load.py`` (``scripts/load``) share.

The world: a CNCF distribution registry behind ``tests/support/fault_proxy.py``, signed images
(cosign's legacy ``.sig`` format or v3 bundles), a TrustPolicy trusting the signing key, TLS from a
throw-away CA. The server: ``signgate serve --policy FILE`` as a process of ours (``--port 0``, the
port read from its log line, optionally pinned to one CPU), dying with us, stopped by PID, its
``/metrics`` scraped and its log searched for errors. Measuring: CPU seconds and resident memory
from ``/proc``, percentiles, a line describing the machine.

Like the scripts' other helpers it imports ``support`` from ``tests/``, which the scripts put on
``sys.path``.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import platform
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import trustme

from support import signer
from support.fault_proxy import FaultProxy
from support.formats import PrivateKey, public_key_pem
from support.push import Pusher
from support.registry import RegistryKind, RegistryServer, start_registry
from support.tls import write_ca, write_server_cert

SERVE_PORT_LINE = re.compile(r"on https://127\.0\.0\.1:(\d+) with \d+ TrustPolicies")
"""``signgate serve``'s log line once it listens: its port (it was started with ``--port 0``)."""


def progress(message: str) -> None:
    """A step of the run, on stderr (stdout is the report)."""
    print(f"==> {message}", file=sys.stderr, flush=True)


def workdir(stack: contextlib.ExitStack, requested: Path | None, prefix: str) -> Path:
    """``requested`` (kept afterwards, to look at the logs), or a temporary one ``stack`` owns."""
    if requested is not None:
        requested.mkdir(parents=True, exist_ok=True)
        return requested.resolve()
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))


def describe_machine() -> str:
    """CPUs, Python and the time: the line under each report's title."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


# -- the world: registry, images, policy, TLS ------------------------------------------------------


def start_registry_behind_proxy(
    stack: contextlib.ExitStack,
    kind: RegistryKind,
    directory: Path,
    *,
    tls_ca: trustme.CA | None = None,
) -> tuple[RegistryServer, FaultProxy]:
    """A registry and a proxy in front of it (which counts and can delay requests), both stopped
    when ``stack`` closes."""
    registry = start_registry(kind, directory, tls_ca=tls_ca)
    stack.callback(registry.stop)
    proxy = FaultProxy.for_registry(registry, tls_ca=tls_ca)
    proxy.start()
    stack.callback(proxy.stop)
    return registry, proxy


async def push_image(
    pusher: Pusher, key: PrivateKey, repository: str, tag: str, signature: str | None
) -> str:
    """Push a random image as ``repository:tag``, signed ``legacy`` (cosign's ``.sig`` tag) or as
    a ``bundle`` (a cosign v3 referrer) or not at all (None); its digest."""
    digest = await pusher.push_random_image(repository, tag)
    if signature == "legacy":
        await signer.sign_legacy(pusher, repository, digest, key)
    elif signature == "bundle":
        await signer.sign_bundle_v3(pusher, repository, digest, key)
    return digest


def write_policy(path: Path, key: PrivateKey, hosts: Sequence[str], name: str) -> Path:
    """TrustPolicy ``name`` enforcing ``key``'s signature on ``HOST/NAME/**`` for every host."""
    pem = "\n".join(
        "          " + line for line in public_key_pem(key).decode().strip().splitlines()
    )
    images = ", ".join(f'"{host}/{name}/**"' for host in hosts)
    path.write_text(
        f"apiVersion: signgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {{name: {name}}}\n"
        f"spec:\n  images: [{images}]\n  mode: Enforce\n  authorities:\n"
        f"    - name: {name}-key\n      key:\n        pem: |\n{pem}\n"
    )
    return path


def write_serve_tls(ca: trustme.CA, work: Path) -> tuple[Path, Path, Path]:
    """The server's certificate and key (``serve.crt``, ``serve.key``) and the CA clients trust
    (``ca.pem``), in ``work``."""
    tls_cert, tls_key = write_server_cert(ca, work, "serve")
    return tls_cert, tls_key, write_ca(ca, work / "ca.pem")


# -- processes -------------------------------------------------------------------------------------


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGTERM the child if this process dies (Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG

    return preexec


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM one child of ours by PID, SIGKILL if it lingers; its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


def taskset(cpu: int | None) -> list[str]:
    """The prefix pinning a command to ``cpu`` (none without a CPU, or without ``taskset``)."""
    if cpu is None:
        return []
    found = shutil.which("taskset")
    return [found, "-c", str(cpu)] if found else []


def signgate_command(cli_args: Sequence[str], *, use_uvloop: bool = False) -> list[str]:
    """``python -m signgate ARGS``, or the same on uvloop (an experiment)."""
    if not use_uvloop:
        return [sys.executable, "-m", "signgate", *cli_args]
    code = "import sys, uvloop; uvloop.install(); from signgate.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *cli_args]


def serve_command(
    policy: Path,
    tls_cert: Path,
    tls_key: Path,
    options: Sequence[str] = (),
    *,
    cpu: int | None = None,
    use_uvloop: bool = False,
) -> list[str]:
    """``signgate serve --policy FILE`` with JSON logs, HTTPS on a free loopback port, ``options``
    (registry access, deadline, ...) appended, on ``cpu`` if one is given."""
    return [
        *taskset(cpu),
        *signgate_command(
            [
                "--log-format",
                "json",
                "serve",
                "--policy",
                str(policy),
                "--tls-cert",
                str(tls_cert),
                "--tls-key",
                str(tls_key),
                "--address",
                "127.0.0.1",
                "--port",
                "0",
                *options,
            ],
            use_uvloop=use_uvloop,
        ),
    ]


def wait_for_port(
    log: Path, proc: subprocess.Popen[bytes], pattern: re.Pattern[str], timeout: float = 60.0
) -> int:
    """The port ``proc`` logs with ``pattern`` once it listens; its log's tail if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = pattern.search(log.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"{log.name}: the server did not start:\n{tail}")


def log_errors(log: Path, width: int = 400) -> list[str]:
    """Log lines at ERROR or worse, and tracebacks (a healthy run has none), cut to ``width``."""
    return [
        line[:width]
        for line in log.read_text(errors="replace").splitlines()
        if '"levelname": "ERROR"' in line
        or '"levelname": "CRITICAL"' in line
        or "Traceback" in line
    ]


class Server:
    """A server process of ours (``signgate serve``, or perf.py's bare ceiling endpoint), its
    output in ``log``; started once it logs its port (``pattern``)."""

    def __init__(
        self, name: str, command: list[str], log: Path, pattern: re.Pattern[str] = SERVE_PORT_LINE
    ) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own server
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(),  # prctl only, resolved before fork
            )
        try:
            self.port = wait_for_port(log, self.proc, pattern)
        except BaseException:
            stop_process(self.proc)
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def rss_mib(self) -> float:
        return (rss_kib(self.pid) or 0) / 1024

    def cpu(self) -> float:
        return cpu_seconds(self.pid) or 0.0

    def stop(self) -> int:
        return stop_process(self.proc)

    def log_errors(self, width: int = 400) -> list[str]:
        return log_errors(self.log, width)


def scrape_metrics(port: int, ca_file: Path) -> dict[str, float]:
    """``/metrics`` of the server on ``port``: every sample by its name with labels."""
    context = ssl.create_default_context(cafile=str(ca_file))
    url = f"https://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, context=context, timeout=10) as resp:
        text = resp.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


# -- /proc -----------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time ``pid`` has used so far, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time all processes of the machine have used since boot (every core)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    busy = sum(values[:8]) - idle  # user..steal; guest time is already in user
    return busy / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int | None:
    """``VmRSS`` of ``pid`` in KiB, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None
