"""cosign's encrypted private key format, and a signer that refuses keys signgate does not support.

This is tooling for tests and for users who hand signgate a ``cosign.key``; the admission path
never needs a private key. Format (cosign-formats §4.2, go-securesystemslib ``encrypted``): a PEM
``ENCRYPTED SIGSTORE PRIVATE KEY`` (or the older ``ENCRYPTED COSIGN PRIVATE KEY``) whose body is
the JSON ``{"kdf": {scrypt params, salt}, "cipher": {"nacl/secretbox", nonce}, "ciphertext"}``,
where the plaintext is the PKCS#8 DER key. scrypt is deliberately expensive (64 MiB, ~0.1-0.5 s).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import TypeAlias

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signgate.errors import KeyFormatError
from signgate.signatures import _json, _pem
from signgate.signatures.keys import PublicKey
from support.formats import PrivateKey, sign_bytes

SigningKey: TypeAlias = PrivateKey
"""The private key types cosign signs with (and that `load_cosign_private_key` returns)."""

PEM_LABEL = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_PEM_LABEL = "ENCRYPTED COSIGN PRIVATE KEY"

# go-securesystemslib decrypts only these (N, r, p) sets, as a guard against a key file that asks
# for gigabytes of scrypt memory: Legacy, Standard (the encrypt default) and OWASP.
SCRYPT_PARAMS = frozenset({(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)})
STANDARD_SCRYPT_N = 65536
_SCRYPT_MAXMEM = (
    256 * 1024 * 1024
)  # 128 * N * r for N=131072 is 128 MiB; hashlib's default is 32 MiB
_SALT_BYTES = 32


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def load_cosign_private_key(pem: bytes, password: bytes) -> SigningKey:
    """Decrypt a ``cosign.key``.

    Args:
        pem: the PEM file (either label).
        password: the password (``COSIGN_PASSWORD``); may be empty.

    Returns:
        The private key (ECDSA, RSA or Ed25519, of a type `keys.PublicKey` supports).

    Raises:
        KeyFormatError: not a cosign key, a malformed document, scrypt parameters outside the
            allowed sets, a wrong password, or an unsupported key type.
    """
    what = "cosign private key"
    block = _pem.read_single_block(
        pem, labels=(PEM_LABEL, LEGACY_PEM_LABEL), what=what, error=KeyFormatError
    )
    doc = _json.JsonObject(
        _json.loads(block.der, what=what, error=KeyFormatError), path="", error=KeyFormatError
    )
    kdf = doc.obj("kdf")
    if kdf.string("name") != "scrypt":
        raise kdf.fail("name", f"unsupported KDF {kdf.string('name')!r} (expected scrypt)")
    params = kdf.obj("params")
    n, r, p = (params.number(name, minimum=1) for name in ("N", "r", "p"))
    if (n, r, p) not in SCRYPT_PARAMS:
        raise params.fail("N", f"scrypt parameters N={n} r={r} p={p} are not an allowed set")
    cipher = doc.obj("cipher")
    if cipher.string("name") != "nacl/secretbox":
        raise cipher.fail("name", f"unsupported cipher {cipher.string('name')!r}")
    nonce = cipher.b64("nonce")
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise cipher.fail(
            "nonce", f"{len(nonce)} bytes, expected {nacl.secret.SecretBox.NONCE_SIZE}"
        )
    ciphertext = doc.b64("ciphertext")
    key = _scrypt(password, kdf.b64("salt"), n, r, p)
    try:
        plaintext = nacl.secret.SecretBox(key).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise KeyFormatError(
            f"{what}: wrong password or corrupted key (decryption failed)"
        ) from exc
    try:
        private = serialization.load_der_private_key(plaintext, password=None)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"{what}: decrypted data is not a PKCS#8 private key") from exc
    if not isinstance(
        private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise KeyFormatError(f"{what}: unsupported key type {type(private).__name__}")
    PublicKey.from_key(private.public_key())  # same curve/size rules as public keys
    return private


def encrypt_cosign_private_key(
    key: SigningKey, password: bytes, *, scrypt_n: int = STANDARD_SCRYPT_N
) -> bytes:
    """Encrypt ``key`` the way ``cosign generate-key-pair`` does.

    Args:
        key: an ECDSA, RSA or Ed25519 private key.
        password: may be empty.
        scrypt_n: scrypt N; one of the allowed sets (32768, 65536 the default, 131072).

    Returns:
        PEM ``ENCRYPTED SIGSTORE PRIVATE KEY`` with 64-column lines and a fresh salt and nonce.

    Raises:
        KeyFormatError: an unsupported key or scrypt N.
    """
    if (scrypt_n, 8, 1) not in SCRYPT_PARAMS:
        raise KeyFormatError(f"scrypt N={scrypt_n} is not an allowed value")
    PublicKey.from_key(key.public_key())
    plaintext = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt = os.urandom(_SALT_BYTES)
    secret = _scrypt(password, salt, scrypt_n, 8, 1)
    sealed = nacl.secret.SecretBox(secret).encrypt(plaintext)

    # Field order and compact separators match Go's json.Marshal of the securesystemslib struct.
    document = {
        "kdf": {"name": "scrypt", "params": {"N": scrypt_n, "r": 8, "p": 1}, "salt": _b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": _b64(sealed.nonce)},
        "ciphertext": _b64(sealed.ciphertext),
    }
    return _pem.write_block(PEM_LABEL, json.dumps(document, separators=(",", ":")).encode())


def sign(private_key: SigningKey, message: bytes, *, prehash_ed25519: bool = False) -> bytes:
    """Sign ``message`` with the hash cosign uses for the key type (cosign-formats §1.3).

    ECDSA: the curve's default hash, ASN.1 DER signature. RSA: PKCS#1 v1.5 with SHA-256.
    Ed25519: pure, or Ed25519ph (SHA-512 prehash) as cosign does for hashedrekord. The signing
    itself is `support.formats.sign_bytes`; this first refuses a key signgate would refuse.

    Args:
        private_key: the signing key.
        message: the exact bytes to sign.
        prehash_ed25519: use Ed25519ph instead of pure Ed25519 (ignored for other key types).

    Returns:
        The raw signature.

    Raises:
        KeyFormatError: an unsupported key type or curve.
    """
    PublicKey.from_key(private_key.public_key())
    return sign_bytes(private_key, message, ed25519ph=prehash_ed25519)
