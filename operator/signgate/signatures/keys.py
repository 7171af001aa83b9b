"""Public keys: parsing, identification and signature checks for every key type cosign signs with.

cosign keys are PEM ``PUBLIC KEY`` blocks holding a PKIX SubjectPublicKeyInfo (cosign-formats §4.1).
The supported types are those of ``cosign import-key-pair``/KMS (§1.3): ECDSA P-256/P-384/P-521,
RSA of at least 2048 bits, and Ed25519. Anything else is refused at load time with a message that
says what was found, so a bad key fails when a policy is loaded, not at admission time.

`PublicKey.verify` accepts every hash/padding combination that cosign and sigstore-go's verifiers
accept for the key type (§1.3 "Hash nuances"), and never raises for a bad signature.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from signgate.errors import KeyFormatError, truncate
from signgate.signatures import _pem

SupportedPublicKey: TypeAlias = (
    ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
)
"""The key types signgate verifies with."""

MIN_RSA_BITS = 2048
# Far above anything cosign makes (it makes at most 4096); the cap only stops a hostile key
# from making every verification expensive.
MAX_RSA_BITS = 16384

CURVE_DEFAULT_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
"""Curve name to the hash cosign's signers use with it since v3 (cosign-formats §1.3)."""
_CURVE_NAME = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def _describe(key: PublicKeyTypes) -> str:
    """Name any key type, supported or not, for error messages."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {_CURVE_NAME.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    name = type(key).__name__.removeprefix("_").removesuffix("PublicKey")
    size = getattr(key, "key_size", None)
    return f"{name} {size}" if isinstance(size, int) else name


def _check_supported(key: PublicKeyTypes) -> SupportedPublicKey:
    """Return ``key`` typed as supported, or explain why it is not.

    Raises:
        KeyFormatError: unsupported algorithm, curve or RSA size.
    """
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in CURVE_DEFAULT_HASH:
            raise KeyFormatError(
                f"unsupported key: {_describe(key)} (supported curves: P-256, P-384, P-521)"
            )
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise KeyFormatError(
                f"unsupported key: {_describe(key)} (RSA keys must have "
                f"{MIN_RSA_BITS}-{MAX_RSA_BITS} bits)"
            )
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise KeyFormatError(
        f"unsupported key type: {_describe(key)} (supported: ECDSA P-256/P-384/P-521, RSA, Ed25519)"
    )


def _spki_der(key: SupportedPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class PublicKey:
    """A supported public key together with the exact SPKI DER it was read from.

    Build one with `load_public_key_pem`, `public_key_from_der` or `PublicKey.from_key`.

    Attributes:
        key: the `cryptography` key object.
        der: the PKIX SubjectPublicKeyInfo DER; its sha256 is the key's ID (cosign-formats §4.1).
    """

    # Equality and hashing use ``der`` only (`cryptography` keys are unhashable); __post_init__
    # guarantees that ``der`` determines ``key``.
    key: SupportedPublicKey = field(compare=False)
    der: bytes

    def __post_init__(self) -> None:
        """Enforce that ``key`` is supported and that ``der`` encodes that same key.

        Raises:
            KeyFormatError: an unsupported key, or ``der`` that does not match ``key``.
        """
        _check_supported(self.key)
        try:
            decoded = serialization.load_der_public_key(self.der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError("public key DER does not parse") from exc
        if decoded != self.key:
            raise KeyFormatError("public key DER does not encode the given key")

    @classmethod
    def from_key(cls, key: PublicKeyTypes) -> PublicKey:
        """Wrap a `cryptography` public key, encoding it as SPKI DER.

        Raises:
            KeyFormatError: an unsupported key type.
        """
        supported = _check_supported(key)
        return cls(key=supported, der=_spki_der(supported))

    @property
    def key_id(self) -> bytes:
        """sha256 of the SPKI DER: Rekor's logID and a bundle's ``publicKey.hint`` (§4.1)."""
        return hashlib.sha256(self.der).digest()

    @property
    def fingerprint(self) -> str:
        """``"sha256:<hex>"`` of the SPKI DER, for messages and logs."""
        return "sha256:" + self.key_id.hex()

    @property
    def algorithm(self) -> str:
        """Human description: ``"ECDSA P-256"``, ``"RSA 4096"``, ``"Ed25519"``."""
        return _describe(self.key)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Check ``signature`` over ``message`` with every scheme cosign uses for this key type.

        The order (cosign-formats §1.3): ECDSA with the curve's default hash then SHA-256 (as
        sigstore-go's ``compatSignatureVerifier``); RSA PKCS#1 v1.5 SHA-256 then PSS SHA-256
        with any salt length (Go's ``rsa.VerifyPSS`` with nil options, which covers both
        "digest length" and "maximum" salts); Ed25519 pure then Ed25519ph (RFC 8032, SHA-512
        prehash, empty context), which cosign uses for hashedrekord signatures.

        Args:
            signature: raw signature bytes (ASN.1 DER for ECDSA).
            message: the exact signed bytes.

        Returns:
            True iff one of the schemes accepts the signature. Never raises for a bad signature.
        """
        key = self.key
        if isinstance(key, ec.EllipticCurvePublicKey):
            return _verify_ecdsa(key, signature, message)
        if isinstance(key, rsa.RSAPublicKey):
            return _verify_rsa(key, signature, message)
        return _verify_ed25519(key, signature, message)


def _verify_ecdsa(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    default = CURVE_DEFAULT_HASH[key.curve.name]
    candidates: list[hashes.HashAlgorithm] = [default()]
    if default is not hashes.SHA256:
        candidates.append(hashes.SHA256())
    for algorithm in candidates:
        try:
            key.verify(signature, message, ec.ECDSA(algorithm))
        except InvalidSignature:
            continue
        return True
    return False


def _verify_rsa(key: rsa.RSAPublicKey, signature: bytes, message: bytes) -> bool:
    schemes: tuple[padding.AsymmetricPadding, ...] = (
        padding.PKCS1v15(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
    )
    for scheme in schemes:
        try:
            key.verify(signature, message, scheme, hashes.SHA256())
        except InvalidSignature:
            continue
        return True
    return False


def _verify_ed25519(key: ed25519.Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        pass
    else:
        return True
    # Ed25519ph: libsodium's crypto_sign_ed25519ph is RFC 8032 Ed25519ph with an empty context
    # (checked against the RFC 8032 section 7.3 test vector in the tests).
    # Imported on first use: libsodium is start-up time, and few signatures are Ed25519ph.
    import nacl.bindings
    import nacl.exceptions

    if len(signature) != nacl.bindings.crypto_sign_BYTES:
        return False
    state = nacl.bindings.crypto_sign_ed25519ph_state()
    nacl.bindings.crypto_sign_ed25519ph_update(state, message)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        return nacl.bindings.crypto_sign_ed25519ph_final_verify(state, signature, raw)
    except nacl.exceptions.BadSignatureError:
        return False


def public_key_from_der(der: bytes) -> PublicKey:
    """Parse a PKIX SubjectPublicKeyInfo DER public key.

    Args:
        der: SPKI DER bytes.

    Returns:
        The key, keeping ``der`` exactly as given (its sha256 is the key ID).

    Raises:
        KeyFormatError: the bytes are not an SPKI public key, or the key type is unsupported.
    """
    try:
        key = serialization.load_der_public_key(der)
    except UnsupportedAlgorithm as exc:
        raise KeyFormatError(f"unsupported public key algorithm: {exc}") from exc
    except ValueError as exc:
        raise KeyFormatError(
            f"public key is not a valid PKIX SubjectPublicKeyInfo: {truncate(str(exc), 80)}"
        ) from exc
    return PublicKey(key=_check_supported(key), der=der)


def load_public_key_pem(data: bytes | str) -> PublicKey:
    """Parse a PEM public key as cosign writes it: exactly one ``PUBLIC KEY`` (SPKI) block.

    Args:
        data: PEM text. DER is refused: a key that can be pasted into YAML is PEM.

    Returns:
        The key.

    Raises:
        KeyFormatError: no PEM, several blocks, another block type (a certificate, a private key,
            a PKCS#1 ``RSA PUBLIC KEY``), broken base64, or an unsupported key type.
    """
    block = _pem.read_single_block(
        data, labels=("PUBLIC KEY",), what="public key", error=KeyFormatError
    )
    return public_key_from_der(block.der)
