"""Signature discovery (`discover_signatures`) on the in-memory registry: where cosign's formats
are looked for, what is fetched and what is not, the caps, and partial failures.

The signatures are written by ``support.signer`` with real ephemeral keys, in the exact formats
cosign writes; discovery decides nothing, so these tests look at what it found and what it asked.
"""

from __future__ import annotations

import pytest

from signgate.deadline import Deadline
from signgate.engine.discovery import DiscoveryLimits, discover_signatures
from signgate.errors import RegistryHTTPError
from signgate.reference import Digest, ImageReference, parse_reference
from signgate.registry import RegistryClient, RegistryLimits, RegistryOptions
from signgate.signatures.found import (
    BundleSignature,
    Discovery,
    LegacySignature,
    SignatureFormat,
    UnusableSignature,
)
from support import signer
from support.formats import (
    COSIGN_SIGN_PREDICATE_TYPE,
    SIMPLESIGNING_MEDIA_TYPE,
    Layer,
    fallback_tag,
    generate_key,
    signature_tag,
)
from support.memory_registry import MemoryPusher, MemoryRegistry

REPO = "team/app"
SLSA = "https://slsa.dev/provenance/v1"
KEY = generate_key()


def image(registry: MemoryRegistry, repo: str = REPO) -> ImageReference:
    return parse_reference(f"{registry.host}/{repo}")


async def discover(
    client: RegistryClient,
    registry: MemoryRegistry,
    digest: str,
    *,
    repo: str = REPO,
    limits: DiscoveryLimits | None = None,
    attestations: bool = False,
    deadline: Deadline | None = None,
) -> Discovery:
    return await discover_signatures(
        client,
        image(registry, repo),
        Digest(digest),
        deadline or Deadline.after(10),
        limits=limits,
        attestations=attestations,
    )


async def test_legacy_sig_tag_layers_are_found_with_their_exact_payloads(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    first = await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    second = await signer.sign_legacy(memory_pusher, REPO, digest, generate_key())

    found = await discover(registry_client, memory_registry, digest)

    assert [s.payload for s in found.signatures if isinstance(s, LegacySignature)] == [
        first.signed_bytes,
        second.signed_bytes,
    ]
    assert {s.format for s in found.signatures if isinstance(s, LegacySignature)} == {
        SignatureFormat.LEGACY_TAG
    }
    legacy = found.signatures[0]
    assert isinstance(legacy, LegacySignature)
    assert legacy.signature_b64 == first.signature_b64
    assert legacy.source == f"{memory_registry.host}/{REPO}:{signature_tag(digest)} layer 1"
    assert (found.errors, found.notes) == ((), ())


async def test_a_bundle_referrer_is_found_through_the_referrers_api_alone(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    pushed = await signer.sign_bundle_v3(memory_pusher, REPO, digest, KEY)
    # With the API, the signer writes no fallback index (as cosign against such a registry).
    assert pushed.fallback_index_digest is None

    found = await discover(registry_client, memory_registry, digest)

    (bundle,) = found.signatures
    assert isinstance(bundle, BundleSignature)
    assert bundle.raw == pushed.layer.blob
    assert bundle.predicate_type_hint == COSIGN_SIGN_PREDICATE_TYPE
    assert memory_registry.count(r"/referrers/") == 1
    assert memory_registry.count(f"/manifests/{fallback_tag(digest)}$") == 0
    assert found.notes == ()


async def test_without_the_referrers_api_the_fallback_tag_is_read_and_said(
    registry_client: RegistryClient, memory_registry: MemoryRegistry, memory_pusher: MemoryPusher
) -> None:
    memory_registry.referrers_api(False)
    digest = await memory_pusher.push_random_image(REPO, "v1")
    pushed = await signer.sign_referrer_v2(memory_pusher, REPO, digest, KEY)
    assert pushed.fallback_index_digest is not None

    found = await discover(registry_client, memory_registry, digest)

    (legacy,) = found.signatures
    assert isinstance(legacy, LegacySignature)
    assert legacy.format is SignatureFormat.LEGACY_REFERRER
    assert legacy.payload == pushed.signed_bytes
    assert found.notes == (f"{memory_registry.host} has no referrers API; used the fallback tag",)
    assert memory_registry.count(f"/manifests/{fallback_tag(digest)}$") == 1


async def test_both_storage_schemes_are_read_and_combined(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    # A key rotation from cosign v2 to v3 leaves both: neither may hide the other.
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    await signer.sign_bundle_v3(memory_pusher, REPO, digest, KEY)

    found = await discover(registry_client, memory_registry, digest)

    assert sorted(type(s).__name__ for s in found.signatures) == [
        "BundleSignature",
        "LegacySignature",
    ]


async def test_referrers_that_declare_another_artifact_type_are_not_fetched(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    subject = await memory_pusher.head_descriptor(REPO, digest)
    assert subject is not None
    sbom, _, _ = await signer.push_referrer(
        memory_pusher, REPO, subject, [Layer(b"{}", "application/spdx+json")],
        artifact_type="application/spdx+json",
    )  # fmt: skip

    found = await discover(registry_client, memory_registry, digest)

    assert found.signatures == ()
    assert memory_registry.count(f"/manifests/{sbom}$") == 0


async def test_a_listed_referrer_about_another_image_is_unusable(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    # The fallback index is a plain tag anyone with push access can write: a referrer listed
    # there must still name this digest as its subject.
    memory_registry.referrers_api(False)
    signed = await memory_pusher.push_random_image(REPO, "signed")
    target = await memory_pusher.push_random_image(REPO, "target")
    pushed = await signer.sign_bundle_v3(memory_pusher, REPO, signed, KEY)
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": len(pushed.manifest),
        "digest": pushed.manifest_digest,
    }
    await signer.update_fallback_index(memory_pusher, REPO, target, entry)

    found = await discover(registry_client, memory_registry, target)

    (unusable,) = found.signatures
    assert isinstance(unusable, UnusableSignature)
    assert unusable.reason == f"referrer has subject {signed}, not {target}"


async def test_the_attestation_tag_is_read_only_when_a_policy_asks(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    pushed = await signer.attest_legacy(memory_pusher, REPO, digest, KEY, SLSA, {"builder": {}})
    att = f"/manifests/{signature_tag(digest, 'att')}$"

    without = await discover(registry_client, memory_registry, digest)
    assert without.signatures == ()
    assert memory_registry.count(att) == 0

    found = await discover(registry_client, memory_registry, digest, attestations=True)
    (attestation,) = found.signatures
    assert isinstance(attestation, LegacySignature)
    assert attestation.format is SignatureFormat.LEGACY_ATTESTATION
    assert attestation.payload == pushed.layer.blob
    assert memory_registry.count(att) == 1


async def test_signature_layers_past_the_cap_are_not_fetched(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    layers = [Layer(b'{"n": %d}' % n, SIMPLESIGNING_MEDIA_TYPE) for n in range(5)]
    await signer.push_signature_manifest(memory_pusher, REPO, signature_tag(digest), layers)

    found = await discover(
        registry_client, memory_registry, digest, limits=DiscoveryLimits(max_signatures=2)
    )

    assert [s.payload for s in found.signatures if isinstance(s, LegacySignature)] == [
        layers[0].blob,
        layers[1].blob,
    ]
    assert found.notes == (
        f"{memory_registry.host}/{REPO}:{signature_tag(digest)} has 5 signatures; "
        "examined the first 2",
    )
    assert memory_registry.count(r"/blobs/") == 2


async def test_a_signature_manifest_over_the_layer_cap_is_refused_unread(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    layers = [Layer(b'{"n": %d}' % n, SIMPLESIGNING_MEDIA_TYPE) for n in range(4)]
    await signer.push_signature_manifest(memory_pusher, REPO, signature_tag(digest), layers)
    options = RegistryOptions(limits=RegistryLimits(max_layers_per_manifest=3))

    async with RegistryClient(options, round_trip=memory_registry) as client:
        found = await discover(client, memory_registry, digest)

    (unusable,) = found.signatures
    assert isinstance(unusable, UnusableSignature)
    assert "sig manifest refused" in unusable.reason
    assert "4 layers (limit 3)" in unusable.reason
    assert memory_registry.count(r"/blobs/") == 0


async def test_a_payload_declared_over_the_blob_cap_is_not_downloaded(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    options = RegistryOptions(limits=RegistryLimits(max_blob_bytes=64))

    async with RegistryClient(options, round_trip=memory_registry) as client:
        found = await discover(client, memory_registry, digest)

    (unusable,) = found.signatures
    assert isinstance(unusable, UnusableSignature)
    assert unusable.reason.endswith("bytes exceeds the 64-byte limit")
    assert memory_registry.count(r"/blobs/") == 0


async def test_a_payload_that_does_not_hash_to_its_digest_is_unusable(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    memory_registry.replace_body(r"/blobs/", lambda real: real.replace(b"cosign", b"COSIGN"))

    found = await discover(registry_client, memory_registry, digest)

    (unusable,) = found.signatures
    assert isinstance(unusable, UnusableSignature)
    assert unusable.reason.startswith("cannot fetch payload: blob ")
    assert "registry returned content with digest" in unusable.reason


async def test_a_failing_referrers_api_is_reported_beside_the_legacy_signatures(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    backoff: list[float],
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    pushed = await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    memory_registry.status(r"/referrers/", 500)

    found = await discover(registry_client, memory_registry, digest)

    (legacy,) = found.signatures
    assert isinstance(legacy, LegacySignature) and legacy.payload == pushed.signed_bytes
    (error,) = found.errors
    assert "HTTP 500" in error and "server error after 4 attempts" in error
    assert memory_registry.count(r"/referrers/") == 4
    assert backoff == [0.25, 0.5, 1.0]


async def test_when_every_scheme_fails_discovery_raises_the_first_error(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.status(r"^/v2/", 503)

    with pytest.raises(RegistryHTTPError) as raised:
        await discover(registry_client, memory_registry, digest)
    assert raised.value.status == 503


async def test_too_many_referrers_fail_that_scheme_only(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    pushed = await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    for _ in range(3):
        await signer.sign_bundle_v3(memory_pusher, REPO, digest, generate_key())
    options = RegistryOptions(limits=RegistryLimits(max_referrers=2))

    async with RegistryClient(options, round_trip=memory_registry) as client:
        found = await discover(client, memory_registry, digest)

    assert [s.payload for s in found.signatures if isinstance(s, LegacySignature)] == [
        pushed.signed_bytes
    ]
    (error,) = found.errors
    assert "3 entries (limit 2)" in error


async def test_every_page_of_referrers_is_read(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    memory_registry.referrers_api(True, page_size=1)
    digest = await memory_pusher.push_random_image(REPO, "v1")
    bundles = [
        (await signer.sign_bundle_v3(memory_pusher, REPO, digest, generate_key())).layer.blob
        for _ in range(3)
    ]

    found = await discover(registry_client, memory_registry, digest)

    assert sorted(s.raw for s in found.signatures if isinstance(s, BundleSignature)) == sorted(
        bundles
    )
    assert memory_registry.count(r"/referrers/") == 3


async def test_a_referrer_listed_but_deleted_is_skipped_silently(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    # ggcr never prunes the fallback index: after a signature is deleted its entry stays.
    memory_registry.referrers_api(False)
    digest = await memory_pusher.push_random_image(REPO, "v1")
    pushed = await signer.sign_bundle_v3(memory_pusher, REPO, digest, KEY)
    await memory_pusher.delete_manifest(REPO, pushed.manifest_digest)

    found = await discover(registry_client, memory_registry, digest)

    assert (found.signatures, found.errors) == ((), ())
    assert memory_registry.count(f"/manifests/{pushed.manifest_digest}$") == 1


async def test_a_hanging_referrers_api_leaves_the_legacy_signatures_and_names_the_deadline(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    memory_registry.hang(r"/referrers/")

    # Long enough for the .sig tag and its blob on a busy machine; the referrers wait all of it.
    found = await discover(registry_client, memory_registry, digest, deadline=Deadline.after(0.5))

    assert [type(s) for s in found.signatures] == [LegacySignature]
    (error,) = found.errors
    assert error.startswith(f"deadline exceeded waiting for {memory_registry.host}")


async def test_an_image_without_signatures_has_nothing_and_no_errors(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")

    found = await discover(registry_client, memory_registry, digest)

    assert found == Discovery(f"{memory_registry.host}/{REPO}", (), (), ())
