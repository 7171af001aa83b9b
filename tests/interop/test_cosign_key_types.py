"""Every key type ``cosign import-key-pair`` takes, signed by the real cosign v2 and v3.

Keys are generated here with `cryptography` as PKCS#8 PEM (the one encoding import-key-pair
accepts for all five types; it also takes SEC 1 ``EC PRIVATE KEY`` and PKCS#1 ``RSA PRIVATE KEY``,
see `test_import_key_pair_encodings`) and imported with ``cosign import-key-pair``. Each case
signs a fresh image, then compares signgate with ``cosign verify``: both refuse it with another
key of the same type, and both admit it with the imported ``.pub`` -- for P-384 only once cosign
is told the hash it signed with, and for Ed25519 not at all: cosign cannot verify its own Ed25519
signatures with ``--key`` (see `COSIGN_REFUSES_OWN_SIGNATURE`). The signature cosign left in the
registry is also checked against the scheme it is expected to use for the key type (the hash for
ECDSA, PKCS#1 v1.5 or PSS for RSA, pure Ed25519 or Ed25519ph), so a change of cosign's defaults
shows up here by name rather than as an unexplained disagreement.

Nothing leaves the machine: ``--tlog-upload=false`` (and ``--use-signing-config=false`` for v3).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from signgate.errors import KeyFormatError
from signgate.signatures.keys import PublicKey, load_public_key_pem
from support import cli
from support.cli import signgate_verify
from support.formats import (
    BUNDLE_V03_MEDIA_TYPE,
    SIGNATURE_ANNOTATION,
    KeyKind,
    PrivateKey,
    fallback_tag,
    generate_key,
    pae,
    signature_tag,
)
from support.push import Pusher

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

V2 = "v2.6.5"
V3 = "v3.1.2"

KEY_KINDS: tuple[KeyKind, ...] = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-4096", "ed25519")
ALGORITHM = {
    "ecdsa-p256": "ECDSA P-256",
    "ecdsa-p384": "ECDSA P-384",
    "rsa-2048": "RSA 2048",
    "rsa-4096": "RSA 4096",
    "ed25519": "Ed25519",
}


@dataclass(frozen=True)
class Variant:
    """One way of signing: a cosign version and the flags that choose the storage format."""

    version: str
    sign_extra: tuple[str, ...]
    format: str
    """signgate's name for the format (the ``format`` of the JSON record)."""
    cosign_mismatch: str
    """What ``cosign verify`` says when no signature verifies with the key."""


LEGACY_MISMATCH = "Error: no matching signatures: "
# cosign v3 verifies a bundle's DSSE envelope with sigstore-go, and reports it as an attestation.
BUNDLE_MISMATCH = (
    "Error: no matching attestations: failed to verify signature: could not verify envelope: "
    "accepted signatures do not match threshold, Found: 0, Expected 1"
)
VARIANTS = {
    "v2-legacy": Variant(V2, (), "cosign .sig tag", LEGACY_MISMATCH),
    "v3-bundle": Variant(V3, ("--use-signing-config=false",), "sigstore bundle", BUNDLE_MISMATCH),
    "v3-legacy": Variant(
        V3,
        ("--use-signing-config=false", "--new-bundle-format=false"),
        "cosign .sig tag",
        LEGACY_MISMATCH,
    ),
}

# The scheme cosign signs with, per key type, in every variant (found from the signatures it
# wrote, see `signature_scheme`): both versions load the key with sigstore's
# LoadDefaultSignerVerifier plus cosign's default option WithED25519ph, so the curve's own hash
# for ECDSA (SHA-384 on P-384), PKCS#1 v1.5 SHA-256 for every RSA size (never PSS), and
# Ed25519ph -- also for the DSSE envelope of a v3 bundle.
EXPECTED_SCHEME: dict[KeyKind, str] = {
    "ecdsa-p256": "ECDSA SHA-256",
    "ecdsa-p384": "ECDSA SHA-384",
    "rsa-2048": "RSA PKCS#1 v1.5 SHA-256",
    "rsa-4096": "RSA PKCS#1 v1.5 SHA-256",
    "ed25519": "Ed25519ph",
}

# `cosign verify --key` does not load the key the way `cosign sign` does: it calls
# signature.LoadVerifier(pub, hash) with hash from the (deprecated) --signature-digest-algorithm,
# sha256 by default, and without the Ed25519ph option. So, in both v2.6.5 and v3.1.2:
# * P-384: it checks ECDSA with SHA-256 and refuses cosign's own SHA-384 signature unless told
#   `--signature-digest-algorithm sha384`; with that flag it agrees with signgate, which tries the
#   curve's hash and then SHA-256 as sigstore-go's verifier does.
# * Ed25519: it checks pure Ed25519 and refuses cosign's own Ed25519ph signature, with no flag to
#   change that (open upstream: sigstore/cosign#5074). signgate accepts pure Ed25519 and
#   Ed25519ph, so here, and only here, the two disagree on the signer's key.
COSIGN_VERIFY_FLAGS: dict[KeyKind, tuple[str, ...]] = {
    "ecdsa-p384": ("--signature-digest-algorithm", "sha384"),
}
COSIGN_REFUSES_OWN_SIGNATURE: frozenset[KeyKind] = frozenset({"ed25519"})


class KeyPairs:
    """Two private keys per kind (the signer and another of the same type), made on first use."""

    def __init__(self) -> None:
        self._keys: dict[KeyKind, tuple[PrivateKey, PrivateKey]] = {}

    def get(self, kind: KeyKind) -> tuple[PrivateKey, PrivateKey]:
        if kind not in self._keys:
            self._keys[kind] = (generate_key(kind), generate_key(kind))
        return self._keys[kind]


@pytest.fixture(scope="module")
def key_pairs() -> KeyPairs:
    """Generated once per module: RSA 4096 key generation takes about a second."""
    return KeyPairs()


def pkcs8_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def import_key_pair(version: str, home: Path, key: PrivateKey, name: str) -> Path:
    """``cosign import-key-pair`` a PKCS#8 PEM key; returns the ``<name>.pub`` it wrote."""
    (home / f"{name}.pem").write_bytes(pkcs8_pem(key))
    cli.run_cosign(
        version, home, "import-key-pair", "--key", f"{name}.pem", "--output-key-prefix", name
    )
    assert (home / f"{name}.key").is_file()
    return home / f"{name}.pub"


def cosign_sign(variant: Variant, home: Path, key: str, image: str) -> None:
    cli.run_cosign(
        variant.version, home, "sign", "--key", key, "--tlog-upload=false",
        "--allow-insecure-registry", "--yes", *variant.sign_extra, image,
    )  # fmt: skip


def cosign_verify(
    version: str, home: Path, pub: Path, image: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return cli.run_cosign(
        version, home, "verify", "--key", str(pub), "--insecure-ignore-tlog",
        "--allow-insecure-registry", *extra, image, check=False,
    )  # fmt: skip


# -- what cosign actually signed -------------------------------------------------------------------


def _accepts(check: Callable[[], object]) -> bool:
    try:
        check()
    except (InvalidSignature, ValueError, nacl.exceptions.BadSignatureError):
        return False
    return True


def signature_scheme(key: PrivateKey, signature: bytes, message: bytes) -> str:
    """Name the scheme that makes ``signature`` valid over ``message``, or ``"none"``."""
    public = key.public_key()
    digests: tuple[hashes.HashAlgorithm, ...] = (hashes.SHA256(), hashes.SHA384(), hashes.SHA512())
    if isinstance(public, ec.EllipticCurvePublicKey):
        for algorithm in digests:
            if _accepts(partial(public.verify, signature, message, ec.ECDSA(algorithm))):
                return f"ECDSA SHA-{algorithm.digest_size * 8}"
    elif isinstance(public, rsa.RSAPublicKey):
        for algorithm in digests:
            bits = algorithm.digest_size * 8
            pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
            if _accepts(partial(public.verify, signature, message, padding.PKCS1v15(), algorithm)):
                return f"RSA PKCS#1 v1.5 SHA-{bits}"
            if _accepts(partial(public.verify, signature, message, pss, algorithm)):
                return f"RSA PSS SHA-{bits}"
    else:
        assert isinstance(public, ed25519.Ed25519PublicKey)
        if _accepts(partial(public.verify, signature, message)):
            return "Ed25519"
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        state = nacl.bindings.crypto_sign_ed25519ph_state()
        nacl.bindings.crypto_sign_ed25519ph_update(state, message)
        verify_ph = nacl.bindings.crypto_sign_ed25519ph_final_verify
        if _accepts(partial(verify_ph, state, signature, raw)):
            return "Ed25519ph"
    return "none"


async def signed_messages(pusher: Pusher, repo: str, digest: str) -> list[tuple[bytes, bytes]]:
    """Every ``(signature, signed bytes)`` cosign stored for ``digest``, in either format."""
    found: list[tuple[bytes, bytes]] = []
    sig = await pusher.find_manifest(repo, signature_tag(digest))
    if sig is not None:
        for layer in sig.json()["layers"]:
            payload = await pusher.get_blob(repo, layer["digest"])
            found.append((base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]), payload))
    index = await pusher.find_manifest(repo, fallback_tag(digest))
    if index is not None:
        for entry in index.json()["manifests"]:
            if entry.get("artifactType") != BUNDLE_V03_MEDIA_TYPE:
                continue
            manifest = (await pusher.get_manifest(repo, entry["digest"])).json()
            bundle = json.loads(await pusher.get_blob(repo, manifest["layers"][0]["digest"]))
            envelope = bundle["dsseEnvelope"]  # cosign v3 signs an in-toto statement
            body = base64.b64decode(envelope["payload"])
            for signature in envelope["signatures"]:
                found.append(
                    (base64.b64decode(signature["sig"]), pae(envelope["payloadType"], body))
                )
    return found


# -- the matrix ------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant_id", list(VARIANTS))
@pytest.mark.parametrize("kind", KEY_KINDS)
async def test_imported_key_signs_and_both_verifiers_agree(
    key_pairs: KeyPairs, pusher: Pusher, tmp_path: Path, kind: KeyKind, variant_id: str
) -> None:
    variant = VARIANTS[variant_id]
    signer, other = key_pairs.get(kind)
    signer_pub, other_pub = await asyncio.gather(
        asyncio.to_thread(import_key_pair, variant.version, tmp_path, signer, "signer"),
        asyncio.to_thread(import_key_pair, variant.version, tmp_path, other, "other"),
    )
    # import-key-pair keeps the key: its .pub is our key's SPKI, and signgate reads it as such.
    imported = load_public_key_pem(signer_pub.read_bytes())
    assert imported == PublicKey.from_key(signer.public_key())
    assert imported.algorithm == ALGORITHM[kind]

    repo = f"keytypes/{kind}-{variant_id}-{secrets.token_hex(3)}"
    digest = await pusher.push_random_image(repo, "v1")
    image = f"{pusher.host}/{repo}@{digest}"
    await asyncio.to_thread(cosign_sign, variant, tmp_path, "signer.key", image)

    stored = await signed_messages(pusher, repo, digest)
    assert len(stored) == 1, stored
    assert signature_scheme(signer, *stored[0]) == EXPECTED_SCHEME[kind]

    flags = COSIGN_VERIFY_FLAGS.get(kind, ())
    allowed, denied, cosign_signer, cosign_other = await asyncio.gather(
        signgate_verify(image, signer_pub, pusher.host),
        signgate_verify(image, other_pub, pusher.host),
        asyncio.to_thread(cosign_verify, variant.version, tmp_path, signer_pub, image, *flags),
        asyncio.to_thread(cosign_verify, variant.version, tmp_path, other_pub, image, *flags),
    )
    # signgate admits the signer's key, in the format cosign wrote, naming the key type.
    assert allowed["allowed"] is True, allowed["reasons"]
    authorities = allowed["authorities"]
    assert isinstance(authorities, list) and len(authorities) == 1
    assert authorities[0]["format"] == variant.format
    assert f"({ALGORITHM[kind]})" in authorities[0]["signer"]
    # signgate refuses another key of the same type, having found and checked the signature.
    assert denied["allowed"] is False
    reasons = denied["reasons"]
    assert isinstance(reasons, list) and len(reasons) == 1
    assert "does not verify with key" in reasons[0] and f"({ALGORITHM[kind]})" in reasons[0]
    # cosign refuses the other key too, for the same reason.
    assert cosign_other.returncode != 0
    assert variant.cosign_mismatch in cosign_other.stderr, cosign_other.stderr[-1000:]

    # difference: ed25519ph
    if kind in COSIGN_REFUSES_OWN_SIGNATURE:
        # The one disagreement: cosign cannot verify its own Ed25519ph signature (see above).
        assert cosign_signer.returncode != 0
        assert variant.cosign_mismatch in cosign_signer.stderr, cosign_signer.stderr[-1000:]
        return
    assert cosign_signer.returncode == 0, cosign_signer.stderr[-1000:]
    assert (allowed["allowed"], denied["allowed"]) == (
        cosign_signer.returncode == 0,
        cosign_other.returncode == 0,
    )
    # difference: p384-digest
    if flags:
        # Without the flag cosign checks the P-384 signature with SHA-256 and refuses it.
        plain = await asyncio.to_thread(cosign_verify, variant.version, tmp_path, signer_pub, image)
        assert plain.returncode != 0
        assert variant.cosign_mismatch in plain.stderr, plain.stderr[-1000:]


# -- what import-key-pair takes --------------------------------------------------------------------

# Other encodings and keys, and what `cosign import-key-pair` (the same code in v2.6.5 and v3.1.2)
# says about them: it reads the first PEM block, takes PKCS#8 "PRIVATE KEY" (RSA, ECDSA, Ed25519),
# SEC 1 "EC PRIVATE KEY" and PKCS#1 "RSA PRIVATE KEY", and checks the key with sigstore's
# cryptoutils/goodkey.ValidatePubKey (boulder's goodkey: RSA of exactly 2048, 3072 or 4096 bits;
# P-256, P-384, P-521; any Ed25519).
IMPORT_CASES: dict[str, tuple[KeyKind | None, serialization.PrivateFormat, str | None]] = {
    "ecdsa-p384-sec1": ("ecdsa-p384", serialization.PrivateFormat.TraditionalOpenSSL, None),
    "rsa-2048-pkcs1": ("rsa-2048", serialization.PrivateFormat.TraditionalOpenSSL, None),
    "rsa-1024-pkcs8": (
        None,
        serialization.PrivateFormat.PKCS8,
        "Error: error validating rsa key: key size not supported: 1024",
    ),
    "ed25519-openssh": (
        "ed25519",
        serialization.PrivateFormat.OpenSSH,
        "Error: unsupported private key",
    ),
}


@pytest.mark.parametrize("version", [V2, V3], ids=["v2", "v3"])
@pytest.mark.parametrize("case", list(IMPORT_CASES))
def test_import_key_pair_encodings(tmp_path: Path, case: str, version: str) -> None:
    kind, private_format, refusal = IMPORT_CASES[case]
    key: PrivateKey = (
        generate_key(kind)
        if kind
        else rsa.generate_private_key(public_exponent=65537, key_size=1024)
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    )
    (tmp_path / "in.pem").write_bytes(pem)
    result = cli.run_cosign(
        version, tmp_path, "import-key-pair", "--key", "in.pem", "--output-key-prefix", "out",
        check=False,
    )  # fmt: skip
    public = PublicKey.from_key(key.public_key()) if kind else None
    if refusal is None:
        assert result.returncode == 0, result.stderr[-1000:]
        assert load_public_key_pem((tmp_path / "out.pub").read_bytes()) == public
        return
    assert result.returncode != 0
    assert refusal in result.stderr, result.stderr[-1000:]
    assert not (tmp_path / "out.pub").exists()
    if kind is None:
        # signgate refuses the same small RSA key, when the policy or --key is loaded.
        pub_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with pytest.raises(KeyFormatError, match="RSA 1024"):
            load_public_key_pem(pub_pem)
