"""Fixtures for the signature-core tests: the real vectors, fresh keys, and in-memory logs.

The vectors (vendored in ``tests/vectors/data``, see its README.md) were made by cosign and other
Sigstore clients; helpers that are not fixtures live in ``support.vectors`` (where the vectors are),
``support.formats`` (keys, signatures) and ``support.memory_sigstore`` (a Rekor log, a Fulcio CA).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from signgate.signatures.trusted_root import TrustedRoot, load_trusted_root
from support.formats import KeyKind, Layer, PrivateKey, generate_key
from support.memory_sigstore import FakeLog
from support.vectors import CONFORMANCE, CONTAINERS, PRODUCTION_ROOT


@pytest.fixture(scope="session")
def read_vector(vectors: Path) -> Callable[[str], bytes]:
    def read(relative: str) -> bytes:
        return (vectors / relative).read_bytes()

    return read


@pytest.fixture(scope="session")
def conformance(read_vector: Callable[[str], bytes]) -> Callable[[str, str], bytes]:
    """``conformance(case, file="bundle.sigstore.json")`` reads a conformance asset."""

    def read(case: str, name: str = "bundle.sigstore.json") -> bytes:
        return read_vector(f"{CONFORMANCE}/{case}/{name}")

    return read


@pytest.fixture(scope="session")
def artifact(read_vector: Callable[[str], bytes]) -> bytes:
    """``a.txt``, the artifact of the conformance message-signature cases."""
    return read_vector(f"{CONFORMANCE}/a.txt")


@pytest.fixture(scope="session")
def production_root(read_vector: Callable[[str], bytes]) -> TrustedRoot:
    return load_trusted_root(read_vector(PRODUCTION_ROOT))


@pytest.fixture(scope="session")
def legacy_layer(read_vector: Callable[[str], bytes]) -> Callable[[str], Layer]:
    """Read a containers/image ``signature-N`` file (``\\x00sigstore-json\\n`` + JSON) as the
    cosign ``.sig`` layer it holds."""

    def read(relative: str) -> Layer:
        raw = read_vector(f"{CONTAINERS}/{relative}")
        prefix = b"\x00sigstore-json\n"
        assert raw.startswith(prefix)
        doc = json.loads(raw[len(prefix) :])
        return Layer(base64.b64decode(doc["payload"]), doc["mimeType"], doc["annotations"])

    return read


SIGNING_KEY_KINDS: tuple[KeyKind, ...] = (
    "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-4096", "ed25519"
)  # fmt: skip


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, PrivateKey]:
    """One fresh key of every type cosign signs with (RSA generation is the slow part)."""
    return {kind: generate_key(kind) for kind in SIGNING_KEY_KINDS}


@pytest.fixture
def ecdsa_log() -> FakeLog:
    return FakeLog(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def ed25519_log() -> FakeLog:
    return FakeLog(ed25519.Ed25519PrivateKey.generate(), name="log2099-1.fake.rekor.example")
