"""Fixed material the targets verify against: real keys and a real keyless signature copied from
the vendored vectors, ``tests/vectors/data``, into ``fuzz/data/`` (see that folder's README.md for
their sources and licences), the public-good trusted root shipped with signgate, and a key the
harness signs fuzzed payloads with.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signgate.engine.trusted_root_file import default_trusted_root
from signgate.errors import SignatureError
from signgate.signatures import _pem
from signgate.signatures.keys import PublicKey, load_public_key_pem
from signgate.signatures.trusted_root import TrustedRoot

DATA = Path(__file__).resolve().parent / "data"

VECTOR_DIGEST = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
"""The image that ``cosign.pub`` signed in containers-image's dir-img-cosign-valid."""
ARTIFACT_DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
"""sha256 of the conformance suite's a.txt, which its bundles sign."""
CONFORMANCE_ISSUER = "https://token.actions.githubusercontent.com"
CONFORMANCE_SUBJECT = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)


def read(name: str) -> bytes:
    """A file of ``fuzz/data``."""
    return (DATA / name).read_bytes()


@functools.cache
def trusted_root() -> TrustedRoot:
    """The public-good trusted root signgate ships (Rekor, Fulcio, CT logs, TSA)."""
    return default_trusted_root()


def rekor_signature() -> bytes:
    """The raw signature of the keyless vector (``rekor-sig``)."""
    return base64.b64decode(read("rekor-sig"))


def rekor_certificate_der() -> bytes:
    """The Fulcio certificate of the keyless vector, DER."""
    return _pem.read_single_block(
        read("rekor-cert"), labels=("CERTIFICATE",), what="certificate", error=SignatureError
    ).der


def fulcio_root_der() -> bytes:
    """Fulcio's 2021 root CA, DER."""
    return _pem.read_single_block(
        read("fulcio_v1.crt.pem"), labels=("CERTIFICATE",), what="certificate", error=SignatureError
    ).der


def vector_key() -> PublicKey:
    """``cosign.pub``: the key of the real ``.sig`` vector."""
    return load_public_key_pem(read("cosign.pub"))


def managed_key() -> PublicKey:
    """The key of the conformance suite's managed-key bundle."""
    return load_public_key_pem(read("managed-key.pub"))


@functools.cache
def harness_private_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key derived from a fixed, public seed (a test key, never a secret): fuzzed payloads
    signed with it verify, so the checks that only run after a signature verified are fuzzed too,
    and seeds signed with it stay valid."""
    seed = hashlib.sha256(b"signgate fuzz harness key (public, for tests only)").digest()
    return ec.derive_private_key(int.from_bytes(seed, "big"), ec.SECP256R1())


def harness_key() -> PublicKey:
    """The public half of `harness_private_key`."""
    return PublicKey.from_key(harness_private_key().public_key())


def harness_key_pem() -> bytes:
    """`harness_key` as PEM."""
    return (
        harness_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def harness_sign(message: bytes) -> bytes:
    """An ECDSA P-256 SHA-256 signature of ``message`` by `harness_private_key`."""
    return harness_private_key().sign(message, ec.ECDSA(hashes.SHA256()))
