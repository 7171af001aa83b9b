"""signgate.signatures.keys: loading public keys and checking signatures of every key type."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from signgate.errors import KeyFormatError
from signgate.signatures.keys import PublicKey, load_public_key_pem, public_key_from_der
from support.cosign_key import SigningKey, sign
from support.formats import public_key_pem
from support.vectors import CONTAINERS, REKOR_V1_LOG_ID

MESSAGE = b'{"critical":{"type":"cosign container image signature"},"optional":null}'


def _pss(salt_length: int) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)


def test_cosign_pub_loads_as_ecdsa_p256_with_its_sha256_fingerprint(
    read_vector: Callable[[str], bytes],
) -> None:
    key = load_public_key_pem(read_vector(f"{CONTAINERS}/fixtures/cosign.pub"))

    assert key.algorithm == "ECDSA P-256"
    assert key.key_id == hashlib.sha256(key.der).digest()
    assert key.fingerprint == "sha256:" + hashlib.sha256(key.der).hexdigest()


def test_rekor_pub_key_id_is_the_public_good_rekor_log_id(
    read_vector: Callable[[str], bytes],
) -> None:
    key = load_public_key_pem(read_vector(f"{CONTAINERS}/internal/testdata/rekor.pub"))

    assert key.key_id == REKOR_V1_LOG_ID


def test_pem_given_as_text_loads_like_bytes(read_vector: Callable[[str], bytes]) -> None:
    pem = read_vector(f"{CONTAINERS}/fixtures/cosign.pub")

    assert load_public_key_pem(pem.decode()) == load_public_key_pem(pem)


def test_text_around_the_pem_block_is_ignored(read_vector: Callable[[str], bytes]) -> None:
    pem = read_vector(f"{CONTAINERS}/fixtures/cosign.pub")

    key = load_public_key_pem(b"release key, 2024\n" + pem + b"\n# end\n")

    assert key.algorithm == "ECDSA P-256"


@pytest.mark.parametrize(
    ("name", "algorithm"),
    [
        ("ecdsa-p256", "ECDSA P-256"),
        ("ecdsa-p384", "ECDSA P-384"),
        ("ecdsa-p521", "ECDSA P-521"),
        ("rsa-2048", "RSA 2048"),
        ("rsa-4096", "RSA 4096"),
        ("ed25519", "Ed25519"),
    ],
)
def test_every_supported_key_type_round_trips_through_pem(
    signing_keys: dict[str, SigningKey], name: str, algorithm: str
) -> None:
    key = load_public_key_pem(public_key_pem(signing_keys[name]))

    assert key.algorithm == algorithm
    assert key == PublicKey.from_key(signing_keys[name].public_key())


SCHEMES: dict[str, Callable[[SigningKey, bytes], bytes]] = {
    "ecdsa-p256": lambda k, m: sign(k, m),
    "ecdsa-p384": lambda k, m: sign(k, m),
    "ecdsa-p521": lambda k, m: sign(k, m),
    "rsa-2048": lambda k, m: sign(k, m),
    "rsa-4096": lambda k, m: sign(k, m),
    "ed25519": lambda k, m: sign(k, m),
    "ed25519ph": lambda k, m: sign(k, m, prehash_ed25519=True),
    "rsa-2048-pss-digest-salt": lambda k, m: k.sign(  # type: ignore[union-attr, call-arg]
        m, _pss(padding.PSS.DIGEST_LENGTH), hashes.SHA256()
    ),
    "rsa-4096-pss-max-salt": lambda k, m: k.sign(  # type: ignore[union-attr, call-arg]
        m, _pss(padding.PSS.MAX_LENGTH), hashes.SHA256()
    ),
}


def _key_for(scheme: str, keys: dict[str, SigningKey]) -> SigningKey:
    for name in sorted(keys, key=len, reverse=True):
        if scheme.startswith(name):
            return keys[name]
    raise AssertionError(scheme)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_signature_verifies_with_its_own_key(
    signing_keys: dict[str, SigningKey], scheme: str
) -> None:
    private = _key_for(scheme, signing_keys)
    signature = SCHEMES[scheme](private, MESSAGE)

    assert PublicKey.from_key(private.public_key()).verify(signature, MESSAGE)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_signature_fails_with_another_key_of_the_same_type(
    signing_keys: dict[str, SigningKey], scheme: str
) -> None:
    private = _key_for(scheme, signing_keys)
    other: SigningKey
    if isinstance(private, ec.EllipticCurvePrivateKey):
        other = ec.generate_private_key(private.curve)
    elif isinstance(private, rsa.RSAPrivateKey):
        other = signing_keys["rsa-4096" if private.key_size == 2048 else "rsa-2048"]
    else:
        other = ed25519.Ed25519PrivateKey.generate()
    signature = SCHEMES[scheme](private, MESSAGE)

    assert not PublicKey.from_key(other.public_key()).verify(signature, MESSAGE)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_signature_fails_when_one_message_byte_changes(
    signing_keys: dict[str, SigningKey], scheme: str
) -> None:
    private = _key_for(scheme, signing_keys)
    signature = SCHEMES[scheme](private, MESSAGE)
    tampered = MESSAGE[:10] + bytes([MESSAGE[10] ^ 1]) + MESSAGE[11:]

    assert not PublicKey.from_key(private.public_key()).verify(signature, tampered)


def test_ecdsa_p384_signature_over_sha256_is_accepted_like_cosign_before_2026(
    signing_keys: dict[str, SigningKey],
) -> None:
    private = signing_keys["ecdsa-p384"]
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    signature = private.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))

    assert PublicKey.from_key(private.public_key()).verify(signature, MESSAGE)


def test_ecdsa_p256_signature_over_another_hash_is_rejected(
    signing_keys: dict[str, SigningKey],
) -> None:
    private = signing_keys["ecdsa-p256"]
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    signature = private.sign(MESSAGE, ec.ECDSA(hashes.SHA512()))

    assert not PublicKey.from_key(private.public_key()).verify(signature, MESSAGE)


def test_rsa_pkcs1v15_signature_over_sha512_is_rejected(
    signing_keys: dict[str, SigningKey],
) -> None:
    private = signing_keys["rsa-2048"]
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA512())

    assert not PublicKey.from_key(private.public_key()).verify(signature, MESSAGE)


def test_ed25519ph_is_rfc8032_ed25519ph() -> None:
    # RFC 8032 section 7.3, "TEST abc".
    seed = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
    expected = bytes.fromhex(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
        "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
    )
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)

    assert private.public_key().public_bytes_raw().hex() == (
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"
    )
    assert sign(private, b"abc", prehash_ed25519=True) == expected
    assert PublicKey.from_key(private.public_key()).verify(expected, b"abc")


def test_ed25519ph_and_pure_signatures_are_different_schemes(
    signing_keys: dict[str, SigningKey],
) -> None:
    private = signing_keys["ed25519"]
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    prehashed = sign(private, MESSAGE, prehash_ed25519=True)

    assert prehashed != sign(private, MESSAGE)
    # A ph signature is not a pure signature over the message nor over its SHA-512.
    with pytest.raises(InvalidSignature):
        private.public_key().verify(prehashed, MESSAGE)
    assert not PublicKey.from_key(private.public_key()).verify(
        prehashed, hashlib.sha512(MESSAGE).digest()
    )


@settings(database=None, deadline=None, max_examples=60)
@given(
    signature=st.binary(max_size=600) | st.binary(min_size=64, max_size=64),
    message=st.binary(max_size=64),
)
def test_verify_returns_false_and_never_raises_for_arbitrary_signatures(
    signing_keys: dict[str, SigningKey], signature: bytes, message: bytes
) -> None:
    for private in signing_keys.values():
        assert PublicKey.from_key(private.public_key()).verify(signature, message) is False


# --- refusals --------------------------------------------------------------------------------


def _pem_of(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


UNSUPPORTED: dict[str, tuple[Callable[[], object], str]] = {
    "rsa-1024": (
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key(),
        "unsupported key: RSA 1024",
    ),
    "dsa-1024": (
        lambda: dsa.generate_private_key(key_size=1024).public_key(),
        "unsupported key type: DSA 1024",
    ),
    "secp256k1": (
        lambda: ec.generate_private_key(ec.SECP256K1()).public_key(),
        "unsupported key: ECDSA secp256k1",
    ),
    "ed448": (lambda: ed448.Ed448PrivateKey.generate().public_key(), "unsupported key type: Ed448"),
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_key_types_are_refused_naming_what_was_found(name: str) -> None:
    make, message = UNSUPPORTED[name]

    with pytest.raises(KeyFormatError, match=message):
        load_public_key_pem(_pem_of(make()))


def _private_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pkcs1_rsa_pem(read: Callable[[str], bytes]) -> bytes:
    key = load_public_key_pem(read(f"{CONTAINERS}/fixtures/some-rsa-key.pub")).key
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda read: b"hello, I am not a key", "no PEM block found"),
        (lambda read: b"", "no PEM block found"),
        (lambda read: read(f"{CONTAINERS}/fixtures/fulcio_v1.crt.pem"), "found CERTIFICATE"),
        (lambda read: _private_pem(), "found PRIVATE KEY"),
        (lambda read: _pkcs1_rsa_pem(read), "found RSA PUBLIC KEY"),
        (
            lambda read: (
                read(f"{CONTAINERS}/fixtures/cosign.pub")
                + read(f"{CONTAINERS}/fixtures/cosign2.pub")
            ),
            "exactly one PEM block, found 2",
        ),
        (
            lambda read: read(f"{CONTAINERS}/fixtures/cosign.pub").rsplit(b"-----END", 1)[0],
            "truncated",
        ),
        (
            lambda read: read(f"{CONTAINERS}/fixtures/cosign.pub").replace(b"MFkw", b"M*kw"),
            "non-base64",
        ),
        (
            lambda read: read(f"{CONTAINERS}/fixtures/cosign.pub").replace(b"MFkw", b"MFk"),
            "not valid base64",
        ),
        (
            lambda read: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "ends with END PRIVATE KEY",
        ),
        (
            lambda read: (
                b"-----BEGIN PUBLIC KEY-----\nProc-Type: 4,ENCRYPTED\n"
                b"AAAA\n-----END PUBLIC KEY-----\n"
            ),
            "headers are not supported",
        ),
        (lambda read: b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n", "empty"),
        (
            lambda read: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "not a valid PKIX SubjectPublicKeyInfo",
        ),
        (
            lambda read: load_public_key_pem(read(f"{CONTAINERS}/fixtures/cosign.pub")).der,
            "DER is not accepted",
        ),
    ],
    ids=[
        "garbage",
        "empty",
        "certificate",
        "private-key",
        "pkcs1-rsa",
        "two-keys",
        "truncated",
        "bad-char",
        "bad-length",
        "label-mismatch",
        "headers",
        "empty-block",
        "not-spki",
        "der",
    ],
)
def test_malformed_pem_is_a_key_format_error_with_a_one_line_reason(
    read_vector: Callable[[str], bytes],
    make: Callable[[Callable[[str], bytes]], bytes],
    message: str,
) -> None:
    with pytest.raises(KeyFormatError, match=message) as info:
        load_public_key_pem(make(read_vector))

    assert "\n" not in str(info.value)


def test_der_with_trailing_bytes_is_refused(read_vector: Callable[[str], bytes]) -> None:
    der = load_public_key_pem(read_vector(f"{CONTAINERS}/fixtures/cosign.pub")).der

    with pytest.raises(KeyFormatError, match="not a valid PKIX"):
        public_key_from_der(der + b"\x00")


def test_public_key_from_der_keeps_the_exact_der(read_vector: Callable[[str], bytes]) -> None:
    der = load_public_key_pem(read_vector(f"{CONTAINERS}/fixtures/some-rsa-key.pub")).der

    key = public_key_from_der(der)

    assert key.der == der
    assert key.algorithm == "RSA 4096"


def test_public_keys_are_equal_and_hashable_by_their_der(
    read_vector: Callable[[str], bytes],
) -> None:
    pem = read_vector(f"{CONTAINERS}/fixtures/cosign.pub")
    other = read_vector(f"{CONTAINERS}/fixtures/cosign2.pub")

    keys = {load_public_key_pem(pem), load_public_key_pem(pem), load_public_key_pem(other)}

    assert len(keys) == 2


def test_a_public_key_whose_der_is_another_key_cannot_be_built(
    read_vector: Callable[[str], bytes],
) -> None:
    one = load_public_key_pem(read_vector(f"{CONTAINERS}/fixtures/cosign.pub"))
    two = load_public_key_pem(read_vector(f"{CONTAINERS}/fixtures/cosign2.pub"))

    with pytest.raises(KeyFormatError, match="does not encode the given key"):
        PublicKey(key=one.key, der=two.der)
