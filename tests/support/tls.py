"""TLS material for loopback servers: one ``trustme`` CA, server certificates for 127.0.0.1."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import trustme

#: Names every loopback server certificate is valid for.
LOOPBACK_IDENTITIES = ("127.0.0.1", "localhost")


def new_ca() -> trustme.CA:
    """A fresh throw-away CA (ECDSA P-256) for a test session."""
    return trustme.CA(organization_name="signgate tests")


def write_ca(ca: trustme.CA, path: Path) -> Path:
    """Write the CA certificate PEM (what clients trust) and return the path."""
    ca.cert_pem.write_to_path(str(path))
    return path


def write_server_cert(ca: trustme.CA, directory: Path, stem: str) -> tuple[Path, Path]:
    """Issue a 127.0.0.1/localhost certificate and write ``<stem>.crt`` (chain) and ``.key``."""
    leaf = ca.issue_cert(*LOOPBACK_IDENTITIES)
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key_path))
    key_path.chmod(0o600)
    return cert_path, key_path


def server_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server-side context presenting a 127.0.0.1/localhost certificate issued by ``ca``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*LOOPBACK_IDENTITIES).configure_cert(ctx)
    return ctx


def client_ssl_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """A verifying client context trusting ``ca_file``, or None for plain HTTP."""
    if ca_file is None:
        return None
    return ssl.create_default_context(cafile=str(ca_file))


async def settle_tls_shutdowns(seconds: float = 0.1) -> None:
    """Give aborted TLS connections time to finish their close_notify exchange.

    When a client gives up on an HTTPS request (timeout, cancellation), asyncio closes the TLS
    transport asynchronously: it sends close_notify and waits for the peer's. If the test's event
    loop closes first, the socket is garbage-collected open and ``ResourceWarning`` (an error under
    ``filterwarnings = error``) fires in some later test. Await this at the end of such a test.
    """
    await asyncio.sleep(seconds)
