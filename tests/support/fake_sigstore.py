"""A fake Sigstore (Fulcio + CT log, Rekor v1, RFC 3161 TSA) on loopback, for *keyless* signatures
made by the real cosign during the tests, entirely offline.

:func:`start_fake_sigstore` runs ``tests/support/fake_sigstore_server.mjs`` under node, on top of
npm ``@sigstore/mock`` (installed by ``scripts/install-sigstore-mock`` into the tools cache).
Each service listens on its own free port of 127.0.0.1; new keys and certificates every start.
The server prints its public material once; from it this module writes

* ``trusted_root.json`` (``application/vnd.dev.sigstore.trustedroot+json;version=0.1``) trusting
  exactly the fakes: one Fulcio CA (chain ``[intermediate, root]``, P-384), one CT log (P-256, for
  the SCT embedded in every leaf), one Rekor v1 log (P-256), one TSA (chain ``[signing, root]``);
* ``signing_config.json`` (``application/vnd.dev.sigstore.signingconfig.v0.2+json``) naming the
  loopback URLs, for cosign v3's ``--signing-config``;
* PEM files for cosign v2's environment (``SIGSTORE_ROOT_FILE``, ``SIGSTORE_REKOR_PUBLIC_KEY``,
  ``SIGSTORE_CT_LOG_PUBLIC_KEY_FILE``, ``SIGSTORE_TSA_CERTIFICATE_FILE``).

Fulcio issues certificates like the real one: subject-less, SAN critical (an ``rfc822Name`` when
the token has an ``email`` claim, else the ``sub`` claim as a URI), EKU codeSigning, issuer in
``1.3.6.1.4.1.57264.1.1`` (raw) and ``.1.8`` (UTF8String), the GitHub claims of the token as the
``.1.2``-``.1.22`` extensions, an SCT list from the fake CT log, ten minutes of validity. The OIDC
token is never verified (:meth:`FakeSigstore.token` makes one with a throw-away key). Rekor answers
each entry with a SET, and an inclusion proof in a tree of size 1 with a signed checkpoint.

Missing node or a missing ``@sigstore/mock`` raises :class:`~support.registry.MissingToolError`
naming the script to run (the ``fake_sigstore`` fixture turns it into a test failure, never a skip).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import select
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from support.cli import TOOLS, run_cosign
from support.registry import _LIVE, _LIVE_LOCK, MissingToolError, _pdeathsig_preexec, _terminate

#: Pinned by scripts/install-sigstore-mock.
SIGSTORE_MOCK_VERSION = "0.12.1"
SIGSTORE_MOCK_INSTALL = "scripts/install-sigstore-mock"
SERVER_SCRIPT = Path(__file__).with_name("fake_sigstore_server.mjs")
DEFAULT_ISSUER = "https://issuer.signgate.test"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
SIGNING_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"


def sigstore_mock_dir() -> Path:
    """Where ``scripts/install-sigstore-mock`` installs the npm package (it may not be there)."""
    return TOOLS / f"sigstore-mock-{SIGSTORE_MOCK_VERSION}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pem(kind: str, der_b64: str) -> str:
    lines = [der_b64[i : i + 64] for i in range(0, len(der_b64), 64)]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeSigstore:
    """A running fake Sigstore; every path below is inside ``workdir``.

    Attributes:
        fulcio_url: ``http://127.0.0.1:PORT`` (``POST /api/v2/signingCert``).
        rekor_url: ``http://127.0.0.1:PORT`` (Rekor v1 ``/api/v1/log/entries``).
        tsa_url: the full timestamp URL (``…/api/v1/timestamp``), or None when started without.
        trusted_root_path: the ``trusted_root.json`` trusting exactly these fakes.
        signing_config_path: the v0.2 signing config naming these URLs (cosign v3).
        issuer: the default ``iss`` of :meth:`token` (and hence of the certificates).
        material: what the server reported (URLs, base64 DER of chains and keys, log IDs).
        log_file: the server's request log.
    """

    workdir: Path
    fulcio_url: str
    rekor_url: str
    tsa_url: str | None
    trusted_root_path: Path
    signing_config_path: Path
    material: dict[str, Any]
    log_file: Path
    issuer: str = DEFAULT_ISSUER
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _token_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()), repr=False
    )

    @property
    def fulcio_root_pem(self) -> Path:
        """The Fulcio root and intermediate, PEM (cosign v2's ``SIGSTORE_ROOT_FILE``)."""
        return self.workdir / "fulcio_chain.pem"

    @property
    def rekor_public_key_pem(self) -> Path:
        """Rekor's public key, PEM (cosign v2's ``SIGSTORE_REKOR_PUBLIC_KEY``)."""
        return self.workdir / "rekor.pub"

    @property
    def ctlog_public_key_pem(self) -> Path:
        """The CT log's public key, PEM (cosign v2's ``SIGSTORE_CT_LOG_PUBLIC_KEY_FILE``)."""
        return self.workdir / "ctlog.pub"

    @property
    def tsa_chain_pem(self) -> Path:
        """The TSA chain, PEM, signing certificate first (``SIGSTORE_TSA_CERTIFICATE_FILE``)."""
        return self.workdir / "tsa_chain.pem"

    def token(
        self, subject: str, issuer: str | None = None, *, lifetime: int = 3600, **claims: Any
    ) -> str:
        """An OIDC identity token (ES256 JWT, throw-away key; Fulcio does not check it).

        ``subject`` becomes the certificate's SAN: an ``email`` claim (``email_verified: true``)
        when it contains ``@`` and no ``://``, else ``sub`` as a URI. ``claims`` adds more (e.g.
        GitHub's ``repository``, ``ref``, ``workflow_ref`` for the ``.1.x`` extensions).
        """
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": subject,
            "aud": "sigstore",
            "iat": now,
            "nbf": now - 60,
            "exp": now + lifetime,
        }
        if "@" in subject and "://" not in subject:
            payload.update(email=subject, email_verified=True)
        payload.update(claims)
        header = {"alg": "ES256", "typ": "JWT", "kid": "signgate-test"}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(payload, separators=(",", ":")).encode())
        )
        der = self._token_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def token_file(self, subject: str, issuer: str | None = None, **claims: Any) -> Path:
        """:meth:`token` written to a new file in ``workdir`` (what ``--identity-token`` takes)."""
        path = self.workdir / f"token-{secrets.token_hex(4)}.jwt"
        path.write_text(self.token(subject, issuer, **claims))
        return path

    def v2_env(self) -> dict[str, str]:
        """Environment for cosign v2 to trust the fakes without TUF."""
        env = {
            "SIGSTORE_ROOT_FILE": str(self.fulcio_root_pem),
            "SIGSTORE_REKOR_PUBLIC_KEY": str(self.rekor_public_key_pem),
            "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE": str(self.ctlog_public_key_pem),
        }
        if self.tsa_url is not None:
            env["SIGSTORE_TSA_CERTIFICATE_FILE"] = str(self.tsa_chain_pem)
        return env

    def requests(self) -> list[str]:
        """The request lines of the server log (``fulcio: POST /api/v2/signingCert -> 201`` …)."""
        return [
            line.split(" ", 1)[1]
            for line in self.log_file.read_text(errors="replace").splitlines()
            if " -> " in line
        ]

    def stop(self) -> None:
        """Stop the server (by its PID)."""
        if self._proc is not None:
            _stop(self._proc)
            self._proc = None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (then SIGKILL) by PID, and close our ends of its pipes."""
    _terminate(proc)
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


def start_fake_sigstore(
    workdir: Path, *, tsa: bool = True, startup_timeout: float = 30.0
) -> FakeSigstore:
    """Start the fake services and write the trust files into ``workdir``.

    Args:
        workdir: where the trust files and the server log go (created if missing).
        tsa: whether the signing config names the TSA and the trusted root trusts it.
        startup_timeout: seconds to wait for the server to report its material.

    Raises:
        MissingToolError: node or ``@sigstore/mock`` is missing (the message says what to run).
        RuntimeError: the server did not start (the message includes its log).
    """
    node = shutil.which("node")
    if node is None:
        raise MissingToolError(
            "node is not installed (the fake Sigstore runs on node >= 18): "
            f"apt-get install nodejs npm, then run {SIGSTORE_MOCK_INSTALL}"
        )
    mock_dir = sigstore_mock_dir()
    if not (mock_dir / "node_modules/@sigstore/mock/package.json").is_file():
        raise MissingToolError(
            f"@sigstore/mock {SIGSTORE_MOCK_VERSION} is not installed in {mock_dir}: "
            f"run {SIGSTORE_MOCK_INSTALL}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    log_file = workdir / "fake-sigstore.log"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [node, str(SERVER_SCRIPT)],
            stdin=subprocess.PIPE,  # the server exits when this closes
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=workdir,
            env=dict(os.environ, SIGSTORE_MOCK_DIR=str(mock_dir)),
            preexec_fn=_pdeathsig_preexec(),  # prctl resolved before fork
        )
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc
    try:
        material = _read_material(proc, log_file, startup_timeout)
        sigstore = FakeSigstore(
            workdir=workdir,
            fulcio_url=material["fulcio"]["url"],
            rekor_url=material["rekor"]["url"],
            tsa_url=material["tsa"]["url"] if tsa else None,
            trusted_root_path=workdir / "trusted_root.json",
            signing_config_path=workdir / "signing_config.json",
            material=material,
            log_file=log_file,
            _proc=proc,
        )
        _write_trust_files(sigstore)
    except BaseException:
        _stop(proc)
        raise
    return sigstore


def _read_material(proc: subprocess.Popen[bytes], log_file: Path, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    if not line:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"the fake Sigstore (node {SERVER_SCRIPT.name}) did not start:\n{tail}")
    material: dict[str, Any] = json.loads(line)
    return material


def _write_trust_files(sigstore: FakeSigstore) -> None:
    material = sigstore.material
    started = datetime.fromisoformat(material["startedAt"].replace("Z", "+00:00"))
    valid_for = {"start": _rfc3339(started - timedelta(minutes=5))}
    operator = "signgate-test"

    def log_entry(url: str, entry: dict[str, str]) -> dict[str, Any]:
        return {
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": entry["publicKey"],
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": valid_for,
            },
            "logId": {"keyId": entry["logId"]},
            "operator": operator,
        }

    def authority(name: str, uri: str, chain: list[str]) -> dict[str, Any]:
        return {
            "subject": {"organization": "sigstore.mock", "commonName": name},
            "uri": uri,
            "certChain": {"certificates": [{"rawBytes": cert} for cert in chain]},
            "validFor": valid_for,
            "operator": operator,
        }

    trusted_root: dict[str, Any] = {
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [log_entry(sigstore.rekor_url, material["rekor"])],
        "certificateAuthorities": [
            authority("sigstore", sigstore.fulcio_url, material["fulcio"]["certChain"])
        ],
        "ctlogs": [log_entry("http://ctfe.signgate.invalid", material["ctlog"])],
    }
    service = {"majorApiVersion": 1, "validFor": valid_for, "operator": operator}
    signing_config: dict[str, Any] = {
        "mediaType": SIGNING_CONFIG_MEDIA_TYPE,
        "caUrls": [{"url": sigstore.fulcio_url, **service}],
        "oidcUrls": [],
        "rekorTlogUrls": [{"url": sigstore.rekor_url, **service}],
        "tsaUrls": [],
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaConfig": {"selector": "ANY"},
    }
    if sigstore.tsa_url is not None:
        trusted_root["timestampAuthorities"] = [
            authority("tsa", sigstore.tsa_url, material["tsa"]["certChain"])
        ]
        signing_config["tsaUrls"] = [{"url": sigstore.tsa_url, **service}]
        sigstore.tsa_chain_pem.write_text(
            "".join(_pem("CERTIFICATE", c) for c in material["tsa"]["certChain"])
        )
    sigstore.trusted_root_path.write_text(json.dumps(trusted_root, indent=2) + "\n")
    sigstore.signing_config_path.write_text(json.dumps(signing_config, indent=2) + "\n")
    sigstore.fulcio_root_pem.write_text(
        "".join(_pem("CERTIFICATE", c) for c in material["fulcio"]["certChain"])
    )
    sigstore.rekor_public_key_pem.write_text(_pem("PUBLIC KEY", material["rekor"]["publicKey"]))
    sigstore.ctlog_public_key_pem.write_text(_pem("PUBLIC KEY", material["ctlog"]["publicKey"]))


# -- the real cosign, keyless -------------------------------------------------------------------


def run_cosign_keyless(
    version: str, home: Path, sigstore: FakeSigstore, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run cosign like :func:`support.cli.run_cosign` (offline, own HOME and TUF cache), with
    v2's trust environment pointing at the fakes."""
    env = sigstore.v2_env() if version.startswith("v2.") else {}
    return run_cosign(version, home, *args, check=check, env_extra=env)


def keyless_sign_flags(
    version: str,
    sigstore: FakeSigstore,
    subject: str,
    *,
    issuer: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> tuple[str, ...]:
    """The flags that make ``cosign sign``/``attest`` keyless against the fakes.

    v3 takes the signing config (Fulcio, Rekor and TSA URLs) and the trusted root; v2 the URLs
    (``--fulcio-url``, ``--rekor-url``, ``--timestamp-server-url``) and :meth:`FakeSigstore.v2_env`.
    The token goes in a file: cosign first tries ``--identity-token`` as a path, and a JWT is
    longer than a file name may be ("file name too long").
    """
    token = sigstore.token_file(subject, issuer, **(claims or {}))
    if version.startswith("v2."):
        tsa = ("--timestamp-server-url", sigstore.tsa_url) if sigstore.tsa_url else ()
        return (
            "--fulcio-url", sigstore.fulcio_url, "--rekor-url", sigstore.rekor_url,
            "--identity-token", str(token), *tsa,
        )  # fmt: skip
    return (
        "--identity-token", str(token), "--signing-config", str(sigstore.signing_config_path),
        "--trusted-root", str(sigstore.trusted_root_path),
    )  # fmt: skip


def sign_keyless(
    version: str,
    home: Path,
    image: str,
    sigstore: FakeSigstore,
    subject: str,
    *extra: str,
    issuer: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> None:
    """``cosign sign`` keyless (identity ``subject``, OIDC ``issuer`` or the default, extra token
    ``claims``) against the fakes, insecure registry.

    v3 writes a sigstore bundle referrer; v2 the legacy ``.sig`` tag with certificate, chain and
    Rekor bundle annotations (and an RFC 3161 timestamp annotation when the TSA is on).
    """
    flags = keyless_sign_flags(version, sigstore, subject, issuer=issuer, claims=claims)
    run_cosign_keyless(
        version, home, sigstore, "sign", *flags, "--allow-insecure-registry", "--yes", *extra,
        image,
    )  # fmt: skip


def attest_keyless(
    version: str,
    home: Path,
    image: str,
    sigstore: FakeSigstore,
    subject: str,
    predicate: Path,
    *extra: str,
    predicate_type: str = "slsaprovenance1",
    issuer: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> None:
    """``cosign attest --type PREDICATE_TYPE --predicate FILE`` keyless against the fakes
    (v3: a bundle referrer; v2: the legacy ``.att`` tag)."""
    flags = keyless_sign_flags(version, sigstore, subject, issuer=issuer, claims=claims)
    run_cosign_keyless(
        version, home, sigstore, "attest", "--type", predicate_type, "--predicate",
        str(predicate), *flags, "--allow-insecure-registry", "--yes", *extra, image,
    )  # fmt: skip


def _verify_keyless(
    command: str,
    version: str,
    home: Path,
    image: str,
    sigstore: FakeSigstore,
    identity: str,
    issuer: str | None,
    extra: tuple[str, ...],
) -> bool:
    trust = () if version.startswith("v2.") else ("--trusted-root", str(sigstore.trusted_root_path))
    result = run_cosign_keyless(
        version, home, sigstore, command, "--certificate-identity", identity,
        "--certificate-oidc-issuer", issuer or sigstore.issuer, *trust,
        "--allow-insecure-registry", *extra, image, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        # A refusal must be cosign not finding a matching signature, not a broken setup.
        assert "no matching" in result.stderr or "none of the expected identities" in (
            result.stderr
        ), result.stderr[-2000:]
    return result.returncode == 0


def cosign_verify_keyless(
    version: str,
    home: Path,
    image: str,
    sigstore: FakeSigstore,
    identity: str,
    issuer: str | None = None,
    *extra: str,
) -> bool:
    """Whether ``cosign verify --certificate-identity ID --certificate-oidc-issuer ISS`` (trusting
    only the fakes) admits ``image``; a refusal must be an identity/signature mismatch."""
    return _verify_keyless("verify", version, home, image, sigstore, identity, issuer, extra)


def cosign_verify_attestation_keyless(
    version: str,
    home: Path,
    image: str,
    sigstore: FakeSigstore,
    identity: str,
    issuer: str | None = None,
    *extra: str,
) -> bool:
    """Whether ``cosign verify-attestation`` (keyless, trusting only the fakes) admits ``image``;
    pass ``--type`` in ``extra``."""
    return _verify_keyless(
        "verify-attestation", version, home, image, sigstore, identity, issuer, extra
    )
