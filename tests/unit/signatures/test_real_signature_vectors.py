"""Signatures made by cosign and other Sigstore clients verify or fail as their README.md says.

The vectors are vendored in tests/vectors/data; its README.md says what each file is and what a
test should assert about it.

Covers the signature-level assertions of the containers/image and sigstore-conformance vectors;
transparency-log assertions are in test_tlog_entries.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import pytest
from cryptography import x509

from signgate.errors import KeyFormatError
from signgate.signatures.bundle import parse_bundle
from signgate.signatures.dsse import IN_TOTO_PAYLOAD_TYPE, parse_statement
from signgate.signatures.keys import PublicKey, load_public_key_pem
from support.formats import Layer
from support.vectors import CONTAINERS

Reader = Callable[..., bytes]
IMAGE_DIGEST = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"


@pytest.fixture(scope="module")
def cosign_pub(read_vector: Callable[[str], bytes]) -> PublicKey:
    return load_public_key_pem(read_vector(f"{CONTAINERS}/fixtures/cosign.pub"))


@pytest.fixture(scope="module")
def cosign2_pub(read_vector: Callable[[str], bytes]) -> PublicKey:
    return load_public_key_pem(read_vector(f"{CONTAINERS}/fixtures/cosign2.pub"))


@pytest.fixture(scope="module")
def valid_layer(legacy_layer: Callable[[str], Layer]) -> Layer:
    return legacy_layer("fixtures/dir-img-cosign-valid/signature-1")


# --- containers/image: cosign legacy (.sig tag) signatures ------------------------------------


def test_cosign_key_signature_verifies_over_the_exact_payload(
    valid_layer: Layer, cosign_pub: PublicKey
) -> None:
    assert valid_layer.media_type == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert cosign_pub.verify(valid_layer.signature, valid_layer.blob)


def test_cosign_key_signature_fails_with_another_key(
    valid_layer: Layer, cosign2_pub: PublicKey
) -> None:
    assert not cosign2_pub.verify(valid_layer.signature, valid_layer.blob)


@pytest.mark.parametrize("position", [0, 57, 130, 260])
def test_cosign_key_signature_fails_when_one_payload_byte_changes(
    valid_layer: Layer, cosign_pub: PublicKey, position: int
) -> None:
    payload = bytearray(valid_layer.blob)
    payload[position] ^= 0x01

    assert not cosign_pub.verify(valid_layer.signature, bytes(payload))


def test_cosign_signature_is_not_over_a_reserialised_payload(
    valid_layer: Layer, cosign_pub: PublicKey
) -> None:
    # Same JSON, other bytes: only the exact fetched bytes verify.
    reserialised = json.dumps(json.loads(valid_layer.blob), indent=1).encode()

    assert not cosign_pub.verify(valid_layer.signature, reserialised)


def test_signed_payload_claims_the_digest_of_the_signed_manifest(
    valid_layer: Layer, read_vector: Callable[[str], bytes]
) -> None:
    claim = json.loads(valid_layer.blob)["critical"]["image"]["docker-manifest-digest"]
    manifest = read_vector(f"{CONTAINERS}/fixtures/dir-img-cosign-valid/manifest.json")
    modified = read_vector(f"{CONTAINERS}/fixtures/dir-img-cosign-modified-manifest/manifest.json")

    assert claim == IMAGE_DIGEST == "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert claim != "sha256:" + hashlib.sha256(modified).hexdigest()


def test_signature_by_an_unknown_key_fails_with_both_fixture_keys(
    legacy_layer: Callable[[str], Layer], cosign_pub: PublicKey, cosign2_pub: PublicKey
) -> None:
    layer = legacy_layer("fixtures/unknown-cosign-key.signature")

    assert not cosign_pub.verify(layer.signature, layer.blob)
    assert not cosign2_pub.verify(layer.signature, layer.blob)


def test_other_attachment_layer_does_not_verify(
    legacy_layer: Callable[[str], Layer], cosign_pub: PublicKey
) -> None:
    layer = legacy_layer("fixtures/dir-img-cosign-other-attachment/signature-1")

    assert layer.media_type == "text/plain"
    assert not cosign_pub.verify(layer.signature, layer.blob)


@pytest.mark.parametrize(("folder", "verifies"), [("key-valid", True), ("unknown-key", False)])
def test_derived_layers_verify_like_their_source(
    read_vector: Callable[[str], bytes],
    cosign_pub: PublicKey,
    cosign2_pub: PublicKey,
    folder: str,
    verifies: bool,
) -> None:
    payload = read_vector(f"containers-image/derived/{folder}/payload.json")
    descriptor = json.loads(read_vector(f"containers-image/derived/{folder}/layer-descriptor.json"))
    signature = base64.b64decode(descriptor["annotations"]["dev.cosignproject.cosign/signature"])

    assert descriptor["digest"] == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert cosign_pub.verify(signature, payload) is verifies
    assert not cosign2_pub.verify(signature, payload)


# --- sigstore-conformance bundles ---------------------------------------------------------------


def _certificate_key(der: bytes) -> PublicKey:
    return PublicKey.from_key(x509.load_der_x509_certificate(der).public_key())


def test_managed_key_message_signature_verifies_over_the_artifact(
    conformance: Reader, artifact: bytes
) -> None:
    bundle = parse_bundle(conformance("managed-key-happy-path"))
    key = load_public_key_pem(conformance("managed-key-happy-path", "key.pub"))

    assert bundle.public_key_hint == key.key_id
    assert key.verify(bundle.signature, artifact)
    assert not key.verify(bundle.signature, artifact + b"\n")


def test_managed_key_wrong_key_is_refused_when_loaded(conformance: Reader) -> None:
    # The corrupted key.pub is still well-formed PEM and base64, but its EC point is not on
    # P-256, so it is refused as a key (never silently "verifies nothing").
    with pytest.raises(KeyFormatError, match="not a valid PKIX SubjectPublicKeyInfo"):
        load_public_key_pem(conformance("managed-key-wrong-key_fail", "key.pub"))


def test_keyless_v03_message_signature_verifies_with_its_certificate(
    conformance: Reader, artifact: bytes
) -> None:
    bundle = parse_bundle(conformance("happy-path-v0.3"))

    assert _certificate_key(bundle.certificate_chain[0]).verify(bundle.signature, artifact)


def test_signature_mismatch_message_signature_does_not_verify(
    conformance: Reader, artifact: bytes
) -> None:
    bundle = parse_bundle(conformance("signature-mismatch_fail"))

    assert not _certificate_key(bundle.certificate_chain[0]).verify(bundle.signature, artifact)


def test_intoto_dsse_signature_verifies_and_binds_to_the_artifact(
    conformance: Reader, artifact: bytes
) -> None:
    bundle = parse_bundle(conformance("happy-path-intoto-in-dsse-v3"))
    assert bundle.dsse is not None

    statement = parse_statement(bundle.dsse.payload)

    assert bundle.dsse.payload_type == IN_TOTO_PAYLOAD_TYPE
    assert _certificate_key(bundle.certificate_chain[0]).verify(bundle.signature, bundle.dsse.pae())
    assert statement.subject_digests() == {hashlib.sha256(artifact).hexdigest()}
    assert statement.predicate_type == "https://slsa.dev/provenance/v1"


def test_dsse_signature_is_over_pae_not_the_raw_payload(conformance: Reader) -> None:
    bundle = parse_bundle(conformance("happy-path-intoto-in-dsse-v3"))
    assert bundle.dsse is not None

    assert not _certificate_key(bundle.certificate_chain[0]).verify(
        bundle.signature, bundle.dsse.payload
    )


def test_dsse_invalid_sig_does_not_verify_with_its_certificate(conformance: Reader) -> None:
    bundle = parse_bundle(conformance("dsse-invalid-sig_fail"))
    assert bundle.dsse is not None

    assert not _certificate_key(bundle.certificate_chain[0]).verify(
        bundle.signature, bundle.dsse.pae()
    )
