"""support.cosign_key: cosign's encrypted private keys and the cosign-style signer."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signgate.errors import KeyFormatError
from signgate.signatures import _pem
from signgate.signatures.keys import PublicKey
from support.cosign_key import (
    SigningKey,
    encrypt_cosign_private_key,
    load_cosign_private_key,
    sign,
)

KEYS = "sigstore-rs/tests/data/keys"
# From tests/vectors/data/README.md: the public key of cosign_generated_encrypted_empty_private.key.
COSIGN_GENERATED_PUBLIC = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGmsWpZNuu+SUX70n3lVK4JLsaoV7T+rhea2rQUu29EQiatoLB06QdsmSd+"
    "GsQGlQzfcDtsKPzb+B2zLggrWZjg=="
)


def _document(pem: bytes) -> dict[str, object]:
    block = _pem.read_single_block(
        pem, labels=("ENCRYPTED SIGSTORE PRIVATE KEY",), what="test", error=KeyFormatError
    )
    doc = json.loads(block.der)
    assert isinstance(doc, dict)
    return doc


def _rewrap(document: dict[str, object], label: str = "ENCRYPTED SIGSTORE PRIVATE KEY") -> bytes:
    return _pem.write_block(label, json.dumps(document).encode())


def test_key_generated_by_cosign_decrypts_with_the_empty_password(
    read_vector: Callable[[str], bytes],
) -> None:
    key = load_cosign_private_key(
        read_vector(f"{KEYS}/cosign_generated_encrypted_empty_private.key"), b""
    )

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    der = PublicKey.from_key(key.public_key()).der
    assert base64.b64encode(der).decode() == COSIGN_GENERATED_PUBLIC


def test_legacy_cosign_header_and_scrypt_n32768_key_decrypts_with_its_password(
    read_vector: Callable[[str], bytes],
) -> None:
    pem = read_vector(f"{KEYS}/ecdsa_encrypted_private.key")
    assert pem.startswith(b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----")

    key = load_cosign_private_key(pem, b"123")

    assert isinstance(key, ec.EllipticCurvePrivateKey)


@pytest.mark.parametrize(
    ("name", "password"),
    [("cosign_generated_encrypted_empty_private.key", b"x"), ("ecdsa_encrypted_private.key", b"")],
)
def test_wrong_password_is_a_key_format_error(
    read_vector: Callable[[str], bytes], name: str, password: bytes
) -> None:
    with pytest.raises(KeyFormatError, match="wrong password or corrupted key"):
        load_cosign_private_key(read_vector(f"{KEYS}/{name}"), password)


@pytest.mark.parametrize("name", ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519"])
def test_encrypted_key_round_trips_and_still_signs(
    signing_keys: dict[str, SigningKey], name: str
) -> None:
    private = signing_keys[name]

    pem = encrypt_cosign_private_key(private, b"s3cret", scrypt_n=32768)
    loaded = load_cosign_private_key(pem, b"s3cret")

    assert pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in pem.splitlines())
    assert PublicKey.from_key(loaded.public_key()) == PublicKey.from_key(private.public_key())
    assert PublicKey.from_key(private.public_key()).verify(sign(loaded, b"m"), b"m")


def test_encrypted_key_uses_cosigns_json_layout_and_standard_scrypt(
    signing_keys: dict[str, SigningKey],
) -> None:
    document = _document(encrypt_cosign_private_key(signing_keys["ecdsa-p256"], b""))

    assert list(document) == ["kdf", "cipher", "ciphertext"]
    assert document["kdf"] == {
        "name": "scrypt",
        "params": {"N": 65536, "r": 8, "p": 1},
        "salt": document["kdf"]["salt"],  # type: ignore[index]
    }
    assert len(base64.b64decode(document["kdf"]["salt"])) == 32  # type: ignore[index]
    assert document["cipher"]["name"] == "nacl/secretbox"  # type: ignore[index]
    assert len(base64.b64decode(document["cipher"]["nonce"])) == 24  # type: ignore[index]


def test_two_encryptions_of_one_key_use_fresh_salt_and_nonce(
    signing_keys: dict[str, SigningKey],
) -> None:
    one = _document(encrypt_cosign_private_key(signing_keys["ed25519"], b"", scrypt_n=32768))
    two = _document(encrypt_cosign_private_key(signing_keys["ed25519"], b"", scrypt_n=32768))

    assert one["kdf"]["salt"] != two["kdf"]["salt"]  # type: ignore[index]
    assert one["cipher"]["nonce"] != two["cipher"]["nonce"]  # type: ignore[index]


@pytest.fixture(scope="module")
def encrypted_document(signing_keys: dict[str, SigningKey]) -> dict[str, object]:
    return _document(encrypt_cosign_private_key(signing_keys["ecdsa-p256"], b"", scrypt_n=32768))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("kdf", "params", "N"), 1 << 20, "N=1048576 r=8 p=1 are not an allowed set"),
        (("kdf", "params", "r"), 16, "r=16 p=1 are not an allowed set"),
        (("kdf", "params", "N"), "65536", "N: expected an integer"),
        (("kdf", "name"), "pbkdf2", "unsupported KDF 'pbkdf2'"),
        (("cipher", "name"), "aes-gcm", "unsupported cipher 'aes-gcm'"),
        (("cipher", "nonce"), "AAAA", "nonce: 3 bytes, expected 24"),
        (("ciphertext",), "not base64!", "ciphertext: not base64"),
        (("kdf", "salt"), None, "kdf.salt: missing"),
    ],
)
def test_malformed_key_document_is_refused_before_any_scrypt(
    encrypted_document: dict[str, object], path: tuple[str, ...], value: object, message: str
) -> None:
    document = json.loads(json.dumps(encrypted_document))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(KeyFormatError, match=message):
        load_cosign_private_key(_rewrap(document), b"")


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"garbage", "no PEM block found"),
        (
            _pem.write_block("EC PRIVATE KEY", b"\x30\x00"),
            "expected a PEM ENCRYPTED SIGSTORE PRIVATE KEY or ENCRYPTED COSIGN PRIVATE KEY block",
        ),
        (_pem.write_block("ENCRYPTED SIGSTORE PRIVATE KEY", b"{not json"), "not valid JSON"),
        (_pem.write_block("ENCRYPTED SIGSTORE PRIVATE KEY", b"[]"), "expected a JSON object"),
    ],
    ids=["garbage", "other-label", "not-json", "not-object"],
)
def test_garbage_is_a_key_format_error(pem: bytes, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        load_cosign_private_key(pem, b"")


def test_unsupported_scrypt_n_cannot_be_written(signing_keys: dict[str, SigningKey]) -> None:
    with pytest.raises(KeyFormatError, match="not an allowed value"):
        encrypt_cosign_private_key(signing_keys["ed25519"], b"", scrypt_n=1024)


def test_sign_uses_the_curve_default_hash(signing_keys: dict[str, SigningKey]) -> None:
    private = signing_keys["ecdsa-p521"]
    assert isinstance(private, ec.EllipticCurvePrivateKey)

    signature = sign(private, b"payload")

    private.public_key().verify(signature, b"payload", ec.ECDSA(hashes.SHA512()))


def test_sign_uses_pkcs1v15_sha256_for_rsa(signing_keys: dict[str, SigningKey]) -> None:
    private = signing_keys["rsa-2048"]
    assert isinstance(private, rsa.RSAPrivateKey)

    signature = sign(private, b"payload")

    private.public_key().verify(signature, b"payload", padding.PKCS1v15(), hashes.SHA256())


def test_sign_refuses_an_unsupported_curve() -> None:
    with pytest.raises(KeyFormatError, match="secp256k1"):
        sign(ec.generate_private_key(ec.SECP256K1()), b"payload")


def test_sign_ed25519_pure_is_verifiable_with_cryptography(
    signing_keys: dict[str, SigningKey],
) -> None:
    private = signing_keys["ed25519"]
    assert isinstance(private, ed25519.Ed25519PrivateKey)

    private.public_key().verify(sign(private, b"payload"), b"payload")
