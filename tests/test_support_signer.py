"""Proof that the test signer writes cosign's exact formats, read back from real registries."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from support.formats import (
    BUNDLE_V03_MEDIA_TYPE,
    COSIGN_SIG_ARTIFACT_TYPE,
    DSSE_MEDIA_TYPE,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    KeyKind,
    Layer,
    PrivateKey,
    generate_key,
    key_hint,
    pae,
    sign_bytes,
    signature_tag,
    simple_signing_payload,
    spki_der,
    verify_bytes,
)
from support.push import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    EMPTY_JSON_DIGEST,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Pusher,
    sha256_digest,
)
from support.rawhttp import raw_get
from support.registry import RegistryServer
from support.signer import (
    attest_legacy,
    push_signature_manifest,
    sign_bundle_v3,
    sign_legacy,
    sign_referrer_v2,
)

VARIANTS = ["registry", "registry_basic", "registry_token"]

# A real `cosign sign --key` signature (containers/image test fixture dir-img-cosign-valid).
REAL_COSIGN_PUB = b"""-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFNLqFhf4fiN6o/glAuYnq2jYUeL0
vRuLu/z39pmbVwS9ff5AYnlwaP9sxREajdLY9ynM6G1sy6AAmb7Z63TsLg==
-----END PUBLIC KEY-----
"""
REAL_SIGNATURE = (
    "MEYCIQDmtamqYPjMg81nqeBhptrPls44aA/r7PwLmspINJY4MwIhANKRpqe2E9UCBtGFdPoz/8jAbaQm4u"
    "P4h+IpwKTE6ClR"
)
REAL_LAYER_DIGEST = "sha256:cf482371b51a7633b3f02e29b87fc3f4a18b3f127af61cb114af5f2c04fcdd75"


def _verify_p256(key: PrivateKey, signature: bytes, data: bytes) -> None:
    public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, data, ec.ECDSA(hashes.SHA256()))


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


async def _manifest(server: RegistryServer, repo: str, ref: str) -> tuple[dict[str, Any], bytes]:
    answer = await raw_get(server, f"/v2/{repo}/manifests/{ref}")
    assert answer.status == 200, answer.body
    return json.loads(answer.body), answer.body


async def _blob(server: RegistryServer, repo: str, digest: str) -> bytes:
    answer = await raw_get(server, f"/v2/{repo}/blobs/{digest}")
    assert answer.status == 200
    assert sha256_digest(answer.body) == digest
    return answer.body


# -- byte-exactness against real cosign output -----------------------------------------------------


def test_simple_signing_payload_is_byte_identical_to_real_cosign_output() -> None:
    payload = simple_signing_payload(
        "192.168.64.2:5000/cosign-signed-single-sample",
        "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00",
    )
    # cosign's real signature verifies over the bytes we generate: they are cosign's bytes.
    public = serialization.load_pem_public_key(REAL_COSIGN_PUB)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(base64.b64decode(REAL_SIGNATURE), payload, ec.ECDSA(hashes.SHA256()))
    layer = Layer(payload, SIMPLESIGNING_MEDIA_TYPE, {SIGNATURE_ANNOTATION: REAL_SIGNATURE})
    assert layer.descriptor() == {
        "mediaType": SIMPLESIGNING_MEDIA_TYPE,
        "size": 261,
        "digest": REAL_LAYER_DIGEST,
        "annotations": {SIGNATURE_ANNOTATION: REAL_SIGNATURE},
    }


@pytest.mark.parametrize(
    ("kind", "ed25519ph"),
    [
        ("ecdsa-p256", False),
        ("ecdsa-p384", False),
        ("ecdsa-p521", False),
        ("rsa-2048", False),
        ("ed25519", False),
        ("ed25519", True),
    ],
)
def test_every_cosign_key_type_signs_with_cosigns_hash(kind: KeyKind, ed25519ph: bool) -> None:
    key = generate_key(kind)
    data = b"payload"
    signature = sign_bytes(key, data, ed25519ph=ed25519ph)
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        curve_hash = {"ecdsa-p256": hashes.SHA256(), "ecdsa-p384": hashes.SHA384()}.get(
            kind, hashes.SHA512()
        )
        public.verify(signature, data, ec.ECDSA(curve_hash))
    elif isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public, ed25519.Ed25519PublicKey)
        if ed25519ph:
            with pytest.raises(InvalidSignature):
                public.verify(signature, data)  # ph is not pure Ed25519
        else:
            public.verify(signature, data)
    assert verify_bytes(key, signature, data, ed25519ph=ed25519ph)
    assert not verify_bytes(key, signature, b"other", ed25519ph=ed25519ph)
    assert key_hint(key) == base64.b64encode(hashlib.sha256(spki_der(key)).digest()).decode()


# -- format A: legacy .sig tag ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
async def test_legacy_signature_is_a_sig_tag_with_a_simple_signing_layer(
    variant: str, request: pytest.FixtureRequest
) -> None:
    server: RegistryServer = request.getfixturevalue(variant)
    key = generate_key()
    async with Pusher.for_registry(server) as pusher:
        digest = await pusher.push_random_image("support/legacy", "v1")
        pushed = await sign_legacy(pusher, "support/legacy", digest, key)
    tag = f"sha256-{_hex(digest)}.sig"
    assert pushed.tag == tag
    manifest, raw = await _manifest(server, "support/legacy", tag)
    assert raw == pushed.manifest
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == OCI_CONFIG
    assert manifest["config"]["size"] == 233
    assert "subject" not in manifest
    assert "artifactType" not in manifest
    (layer,) = manifest["layers"]
    assert list(layer) == ["mediaType", "size", "digest", "annotations"]
    assert layer["mediaType"] == SIMPLESIGNING_MEDIA_TYPE
    assert list(layer["annotations"]) == [SIGNATURE_ANNOTATION]
    payload = await _blob(server, "support/legacy", layer["digest"])
    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"'
        + f"{server.host}/support/legacy".encode()
        + b'"},"image":{"docker-manifest-digest":"'
        + digest.encode()
        + b'"},"type":"cosign container image signature"},"optional":null}'
    )
    _verify_p256(key, base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]), payload)
    config = json.loads(await _blob(server, "support/legacy", manifest["config"]["digest"]))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"]]}


async def test_legacy_sig_tag_appends_signatures_and_skips_exact_duplicates(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/append", "v1")
    alice, bob = generate_key(), generate_key("rsa-2048")
    first = await sign_legacy(pusher, "support/append", digest, alice)
    again = await sign_legacy(pusher, "support/append", digest, alice)
    assert again.manifest_digest == first.manifest_digest  # cosign's dupe detector
    second = await sign_legacy(pusher, "support/append", digest, bob)
    third = await sign_legacy(pusher, "support/append", digest, alice, optional={"env": "prod"})
    manifest, _ = await _manifest(registry, "support/append", signature_tag(digest))
    assert [layer["digest"] for layer in manifest["layers"]] == [
        first.layer.digest,
        second.layer.digest,
        third.layer.digest,
    ]
    assert first.layer.digest == second.layer.digest  # same payload, different signer
    assert third.signed_bytes.endswith(b'"optional":{"env":"prod"}}')
    config = json.loads(await _blob(registry, "support/append", manifest["config"]["digest"]))
    assert len(config["rootfs"]["diff_ids"]) == len(config["history"]) == 3


async def test_legacy_signature_with_docker_media_types(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/dockersig", "v1", docker_media_types=True)
    await sign_legacy(pusher, "support/dockersig", digest, generate_key(), docker_media_types=True)
    # An existing .sig manifest keeps its media types when a later signer appends.
    await sign_legacy(pusher, "support/dockersig", digest, generate_key())
    manifest, _ = await _manifest(registry, "support/dockersig", signature_tag(digest))
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert len(manifest["layers"]) == 2


async def test_legacy_signature_can_live_in_another_repository(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/app", "v1")
    pushed = await sign_legacy(pusher, "support/app", digest, generate_key(), sig_repo="sigs/app")
    assert pushed.repo == "sigs/app"
    manifest, _ = await _manifest(registry, "sigs/app", signature_tag(digest))
    payload = await _blob(registry, "sigs/app", manifest["layers"][0]["digest"])
    assert json.loads(payload)["critical"]["identity"]["docker-reference"] == (
        f"{registry.host}/support/app"
    )
    assert (
        await raw_get(registry, f"/v2/support/app/manifests/{signature_tag(digest)}")
    ).status == (404)


# -- format B: cosign v2 OCI 1.1 referrer ----------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
async def test_referrer_v2_has_sig_artifact_type_subject_and_fallback_entry(
    variant: str, request: pytest.FixtureRequest
) -> None:
    server: RegistryServer = request.getfixturevalue(variant)
    key = generate_key()
    async with Pusher.for_registry(server) as pusher:
        digest = await pusher.push_random_image("support/v2", "v1")
        image = await pusher.head_descriptor("support/v2", digest)
        pushed = await sign_referrer_v2(pusher, "support/v2", digest, key)
    assert pushed.tag is None
    manifest, raw = await _manifest(server, "support/v2", pushed.manifest_digest)
    assert raw == pushed.manifest
    assert manifest["artifactType"] == COSIGN_SIG_ARTIFACT_TYPE
    assert manifest["config"]["mediaType"] == COSIGN_SIG_ARTIFACT_TYPE
    assert manifest["subject"] == image
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == SIMPLESIGNING_MEDIA_TYPE
    payload = await _blob(server, "support/v2", layer["digest"])
    _verify_p256(key, base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]), payload)
    index, index_raw = await _manifest(server, "support/v2", f"sha256-{_hex(digest)}")
    assert index == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "size": len(raw),
                "digest": pushed.manifest_digest,
                "artifactType": COSIGN_SIG_ARTIFACT_TYPE,
            }
        ],
    }
    assert pushed.fallback_index_digest == sha256_digest(index_raw)


# -- format C: cosign v3 bundle referrer -----------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
async def test_bundle_v3_referrer_matches_cosign_v3_layout(
    variant: str, request: pytest.FixtureRequest
) -> None:
    server: RegistryServer = request.getfixturevalue(variant)
    key = generate_key()
    async with Pusher.for_registry(server) as pusher:
        digest = await pusher.push_random_image("support/v3", "v1")
        image = await pusher.head_descriptor("support/v3", digest)
        pushed = await sign_bundle_v3(pusher, "support/v3", digest, key)
    manifest, raw = await _manifest(server, "support/v3", pushed.manifest_digest)
    assert raw == pushed.manifest
    assert manifest["artifactType"] == BUNDLE_V03_MEDIA_TYPE
    assert manifest["config"] == {
        "mediaType": OCI_EMPTY,
        "size": 2,
        "digest": EMPTY_JSON_DIGEST,
        "artifactType": BUNDLE_V03_MEDIA_TYPE,
    }
    assert await _blob(server, "support/v3", EMPTY_JSON_DIGEST) == b"{}"
    assert manifest["subject"] == image
    assert set(manifest["annotations"]) == {
        "dev.sigstore.bundle.content",
        "dev.sigstore.bundle.predicateType",
        "org.opencontainers.image.created",
    }
    assert manifest["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    assert manifest["annotations"]["dev.sigstore.bundle.predicateType"] == (
        "https://sigstore.dev/cosign/sign/v1"
    )
    (layer,) = manifest["layers"]
    assert layer == {
        "mediaType": BUNDLE_V03_MEDIA_TYPE,
        "size": layer["size"],
        "digest": layer["digest"],
    }
    bundle = json.loads(await _blob(server, "support/v3", layer["digest"]))
    assert bundle["mediaType"] == BUNDLE_V03_MEDIA_TYPE
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": key_hint(key)}}
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    (signature,) = envelope["signatures"]
    statement_bytes = base64.b64decode(envelope["payload"])
    _verify_p256(
        key,
        base64.b64decode(signature["sig"]),
        b"DSSEv1 28 application/vnd.in-toto+json %d %s" % (len(statement_bytes), statement_bytes),
    )
    assert json.loads(statement_bytes) == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": _hex(digest)}, "annotations": {}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    index, _ = await _manifest(server, "support/v3", f"sha256-{_hex(digest)}")
    assert index["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "size": len(raw),
            "digest": pushed.manifest_digest,
            "artifactType": BUNDLE_V03_MEDIA_TYPE,
        }
    ]


async def test_fallback_index_keeps_every_referrer_sorted_by_digest(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/many", "v1")
    key = generate_key()
    pushed = [
        await sign_bundle_v3(pusher, "support/many", digest, key),
        await sign_referrer_v2(pusher, "support/many", digest, key),
        await sign_bundle_v3(
            pusher, "support/many", digest, key, predicate_type="https://slsa.dev/provenance/v1"
        ),
        await sign_bundle_v3(pusher, "support/many", digest, key, old_ggcr_fallback=True),
    ]
    index, _ = await _manifest(registry, "support/many", f"sha256-{_hex(digest)}")
    listed = [m["digest"] for m in index["manifests"]]
    assert listed == sorted(p.manifest_digest for p in pushed)
    by_digest = {m["digest"]: m for m in index["manifests"]}
    assert by_digest[pushed[1].manifest_digest]["artifactType"] == COSIGN_SIG_ARTIFACT_TYPE
    assert by_digest[pushed[2].manifest_digest]["artifactType"] == BUNDLE_V03_MEDIA_TYPE
    # cosign <= v3.0 (ggcr <= v0.21.5) recorded config.mediaType instead.
    assert by_digest[pushed[3].manifest_digest]["artifactType"] == OCI_EMPTY
    # ggcr never copies manifest annotations into the fallback index.
    assert all("annotations" not in m for m in index["manifests"])


async def test_fallback_annotations_option_copies_manifest_annotations(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/annotated", "v1")
    pushed = await sign_bundle_v3(
        pusher, "support/annotated", digest, generate_key(), fallback_annotations=True
    )
    index, _ = await _manifest(registry, "support/annotated", f"sha256-{_hex(digest)}")
    manifest = json.loads(pushed.manifest)
    assert index["manifests"][0]["annotations"] == manifest["annotations"]


async def test_attestation_bundle_with_other_subject_and_predicate(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/att3", "v1")
    other = "sha256:" + "ab" * 32
    pushed = await sign_bundle_v3(
        pusher,
        "support/att3",
        digest,
        generate_key(),
        predicate_type="https://slsa.dev/provenance/v1",
        predicate={"z": 1, "a": {"y": 2, "b": 3}},
        subject_digest=other,
    )
    manifest, _ = await _manifest(registry, "support/att3", pushed.manifest_digest)
    assert manifest["subject"]["digest"] == digest  # stored as a referrer of the image...
    bundle = json.loads(pushed.layer.blob)
    statement = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    assert b'"predicate":{"a":{"b":3,"y":2},"z":1}' in statement  # protojson sorts Struct keys
    assert json.loads(statement)["subject"][0]["digest"] == {"sha256": "ab" * 32}  # ...for another


async def test_message_signature_bundle_signs_the_image_manifest_bytes(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/msg", "v1")
    key = generate_key()
    pushed = await sign_bundle_v3(pusher, "support/msg", digest, key, message_signature=True)
    image_bytes = (await raw_get(registry, f"/v2/support/msg/manifests/{digest}")).body
    bundle = json.loads(pushed.layer.blob)
    assert "dsseEnvelope" not in bundle
    message = bundle["messageSignature"]
    assert message["messageDigest"] == {
        "algorithm": "SHA2_256",
        "digest": base64.b64encode(hashlib.sha256(image_bytes).digest()).decode(),
    }
    _verify_p256(key, base64.b64decode(message["signature"]), image_bytes)
    manifest = json.loads(pushed.manifest)
    assert manifest["annotations"]["dev.sigstore.bundle.content"] == "message-signature"


# -- legacy attestations ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
async def test_legacy_attestation_is_an_att_tag_with_a_dsse_layer(
    variant: str, request: pytest.FixtureRequest
) -> None:
    server: RegistryServer = request.getfixturevalue(variant)
    key = generate_key()
    predicate = {"buildType": "x", "builder": {"id": "ci"}}
    async with Pusher.for_registry(server) as pusher:
        digest = await pusher.push_random_image("support/att", "v1")
        await attest_legacy(
            pusher, "support/att", digest, key, "https://slsa.dev/provenance/v1", predicate
        )
        await attest_legacy(
            pusher, "support/att", digest, key, "https://slsa.dev/provenance/v1", predicate
        )
    manifest, _ = await _manifest(server, "support/att", f"sha256-{_hex(digest)}.att")
    assert len(manifest["layers"]) == 2  # never deduplicated: the signature annotation is ""
    layer = manifest["layers"][0]
    assert layer["mediaType"] == DSSE_MEDIA_TYPE
    assert layer["annotations"] == {
        SIGNATURE_ANNOTATION: "",
        "predicateType": "https://slsa.dev/provenance/v1",
    }
    envelope = json.loads(await _blob(server, "support/att", layer["digest"]))
    assert list(envelope) == ["payloadType", "payload", "signatures"]
    assert envelope["signatures"][0]["keyid"] == ""
    statement = base64.b64decode(envelope["payload"])
    _verify_p256(
        key,
        base64.b64decode(envelope["signatures"][0]["sig"]),
        pae("application/vnd.in-toto+json", statement),
    )
    assert json.loads(statement) == {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"name": f"{server.host}/support/att", "digest": {"sha256": _hex(digest)}}],
        "predicate": predicate,
    }


# -- raw building blocks for attacks ---------------------------------------------------------------


async def test_thousand_layer_sig_manifest_is_stored_and_blocks_further_appends(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/flood", "v1")
    key = generate_key()
    payload = simple_signing_payload(f"{registry.host}/support/flood", digest)
    junk = Layer(payload, annotations={SIGNATURE_ANNOTATION: "bm90IGEgc2lnbmF0dXJl"})
    await push_signature_manifest(pusher, "support/flood", signature_tag(digest), [junk] * 1000)
    manifest, raw = await _manifest(registry, "support/flood", signature_tag(digest))
    assert len(manifest["layers"]) == 1000
    assert len(raw) > 200_000
    with pytest.raises(ValueError, match="cosign max 1000"):
        await sign_legacy(pusher, "support/flood", digest, key)


async def test_non_signature_layer_can_carry_a_signature_annotation(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/mislabeled", "v1")
    key = generate_key()
    payload = simple_signing_payload(f"{registry.host}/support/mislabeled", digest)
    good_signature = base64.b64encode(sign_bytes(key, payload)).decode()
    layer = Layer(payload, "text/plain", {SIGNATURE_ANNOTATION: good_signature})
    await push_signature_manifest(pusher, "support/mislabeled", signature_tag(digest), [layer])
    manifest, _ = await _manifest(registry, "support/mislabeled", signature_tag(digest))
    assert manifest["layers"][0]["mediaType"] == "text/plain"
    assert manifest["layers"][0]["annotations"] == {SIGNATURE_ANNOTATION: good_signature}


async def test_signature_copied_from_another_images_sig_tag(
    pusher: Pusher, registry: RegistryServer
) -> None:
    signed = await pusher.push_random_image("support/victim", "signed")
    unsigned = await pusher.push_random_image("support/victim", "unsigned")
    original = await sign_legacy(pusher, "support/victim", signed, generate_key())
    await pusher.copy_manifest(
        "support/victim", signature_tag(signed), "support/victim", signature_tag(unsigned)
    )
    _, raw = await _manifest(registry, "support/victim", signature_tag(unsigned))
    assert raw == original.manifest  # byte-identical replay...
    manifest = json.loads(raw)
    payload = await _blob(registry, "support/victim", manifest["layers"][0]["digest"])
    claimed = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
    assert claimed == signed != unsigned  # ...whose payload names the other image


async def test_copy_manifest_across_repositories_copies_blobs(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/src", "v1")
    pushed = await sign_legacy(pusher, "support/src", digest, generate_key())
    await pusher.copy_manifest("support/src", pushed.tag or "", "support/dst", pushed.tag or "")
    manifest, _ = await _manifest(registry, "support/dst", pushed.tag or "")
    assert await _blob(registry, "support/dst", manifest["layers"][0]["digest"]) == (
        pushed.signed_bytes
    )


async def test_bundle_in_another_repository_keeps_its_fallback_tag_there(
    pusher: Pusher, registry: RegistryServer
) -> None:
    digest = await pusher.push_random_image("support/app3", "v1")
    pushed = await sign_bundle_v3(
        pusher, "support/app3", digest, generate_key(), sig_repo="sigs/app3"
    )
    index, _ = await _manifest(registry, "sigs/app3", f"sha256-{_hex(digest)}")
    assert [m["digest"] for m in index["manifests"]] == [pushed.manifest_digest]
    manifest, _ = await _manifest(registry, "sigs/app3", pushed.manifest_digest)
    assert manifest["subject"]["digest"] == digest  # distribution 2.8 does not check subjects
    missing = await raw_get(registry, f"/v2/support/app3/manifests/sha256-{_hex(digest)}")
    assert missing.status == 404
