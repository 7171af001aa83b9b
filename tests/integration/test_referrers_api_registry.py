"""Signatures found through a real OCI 1.1 referrers API, with no fallback tag in the registry.

The registry is go-containerregistry's with referrers on (``referrers_registry``; quirks in
``support.registry``). The test signer probes the API before it writes, as ggcr does, so here it
writes the referrer manifests only: if signgate admits, it read them through
``GET /v2/<name>/referrers/<digest>``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from signgate.deadline import Deadline
from signgate.reference import Digest, parse_reference
from signgate.registry import RegistryClient
from support import signer
from support.engine import Checker, key_policy, options_for
from support.formats import (
    BUNDLE_V03_MEDIA_TYPE,
    COSIGN_SIG_ARTIFACT_TYPE,
    fallback_tag,
    generate_key,
)
from support.push import OCI_EMPTY, OCI_INDEX, Pusher
from support.registry import RegistryServer


@pytest.fixture
async def client(referrers_registry: RegistryServer) -> AsyncIterator[RegistryClient]:
    async with RegistryClient(options_for(referrers_registry)) as c:
        yield c


@pytest.fixture
def check(client: RegistryClient) -> Checker:
    """The real engine against the referrers-API registry (shadows the distribution one)."""
    return Checker(client)


def repo() -> str:
    return f"refapi-real/{secrets.token_hex(4)}"


async def assert_no_fallback_tag(pusher: Pusher, name: str, digest: str) -> None:
    assert await pusher.find_manifest(name, fallback_tag(digest), accept=OCI_INDEX) is None
    assert fallback_tag(digest) not in await pusher.list_tags(name)


async def test_the_registry_serves_the_referrers_api(
    referrers_registry: RegistryServer, referrers_pusher: Pusher
) -> None:
    assert referrers_registry.implementation == "go-containerregistry"
    name = repo()
    digest = await referrers_pusher.push_random_image(name, "v1")
    assert await referrers_pusher.referrers_api_supported(name, digest)
    status, headers, body = await referrers_pusher.request(
        "GET", f"/v2/{name}/referrers/{digest}", repo=name, headers={"Accept": OCI_INDEX}
    )
    assert (status, headers["Content-Type"]) == (200, OCI_INDEX)
    assert b'"manifests":[]' in body


async def test_v3_bundle_is_found_through_the_api_and_admitted(
    referrers_pusher: Pusher, client: RegistryClient, check: Checker
) -> None:
    name = repo()
    digest = await referrers_pusher.push_random_image(name, "v1")
    unsigned = await referrers_pusher.push_random_image(name, "unsigned")
    key = generate_key()
    sig = await signer.sign_bundle_v3(referrers_pusher, name, digest, key)
    assert sig.fallback_index_digest is None  # the signer saw the API and wrote no index

    ref = parse_reference(f"{referrers_pusher.host}/{name}:v1")
    listing = await client.list_referrers(ref, Digest(digest), Deadline.after(10))
    assert listing.source == "api"
    (entry,) = listing.descriptors
    assert entry.digest == sig.manifest_digest
    # ggcr's registry lists config.mediaType, not the manifest's artifactType (a quirk).
    assert entry.artifact_type == OCI_EMPTY
    assert entry.artifact_type != BUNDLE_V03_MEDIA_TYPE
    await assert_no_fallback_tag(referrers_pusher, name, digest)

    decision = await check(f"{referrers_pusher.host}/{name}:v1", [key_policy(key)])
    assert decision.allowed, decision.reasons
    assert decision.digest == digest
    (outcome,) = decision.outcomes
    (signature,) = outcome.signatures
    assert signature.format == "sigstore bundle"
    assert not any("fallback tag" in note for note in decision.notes), decision.notes

    denied = await check(f"{referrers_pusher.host}/{name}:unsigned", [key_policy(key)])
    assert not denied.allowed
    assert denied.digest == unsigned
    (reason,) = denied.reasons
    assert "no signature found" in reason
    other = await check(f"{referrers_pusher.host}/{name}:v1", [key_policy(generate_key())])
    assert not other.allowed


async def test_v2_oci11_referrer_is_found_through_the_api_and_admitted(
    referrers_pusher: Pusher, client: RegistryClient, check: Checker
) -> None:
    name = repo()
    digest = await referrers_pusher.push_random_image(name, "v1")
    key = generate_key()
    sig = await signer.sign_referrer_v2(referrers_pusher, name, digest, key)
    assert sig.fallback_index_digest is None

    ref = parse_reference(f"{referrers_pusher.host}/{name}@{digest}")
    listing = await client.list_referrers(ref, Digest(digest), Deadline.after(10))
    assert listing.source == "api"
    assert [(d.digest, d.artifact_type) for d in listing.descriptors] == [
        (sig.manifest_digest, COSIGN_SIG_ARTIFACT_TYPE)
    ]
    await assert_no_fallback_tag(referrers_pusher, name, digest)

    decision = await check(f"{referrers_pusher.host}/{name}@{digest}", [key_policy(key)])
    assert decision.allowed, decision.reasons
    assert decision.outcomes[0].signatures[0].format == "cosign OCI 1.1 referrer"
    assert not any("fallback tag" in note for note in decision.notes), decision.notes


async def test_both_referrer_formats_and_the_sig_tag_together(
    referrers_pusher: Pusher, client: RegistryClient, check: Checker
) -> None:
    """Three signers, three formats, one image: each key alone admits it."""
    name = repo()
    digest = await referrers_pusher.push_random_image(name, "v1")
    v3, v2, legacy = generate_key(), generate_key(), generate_key()
    bundle = await signer.sign_bundle_v3(referrers_pusher, name, digest, v3)
    referrer = await signer.sign_referrer_v2(referrers_pusher, name, digest, v2)
    await signer.sign_legacy(referrers_pusher, name, digest, legacy)

    ref = parse_reference(f"{referrers_pusher.host}/{name}@{digest}")
    listing = await client.list_referrers(ref, Digest(digest), Deadline.after(10))
    assert listing.source == "api"
    assert {d.digest for d in listing.descriptors} == {
        bundle.manifest_digest,
        referrer.manifest_digest,
    }
    await assert_no_fallback_tag(referrers_pusher, name, digest)
    for key, fmt in (
        (v3, "sigstore bundle"),
        (v2, "cosign OCI 1.1 referrer"),
        (legacy, "cosign .sig tag"),
    ):
        decision = await check(f"{referrers_pusher.host}/{name}@{digest}", [key_policy(key)])
        assert decision.allowed, decision.reasons
        assert decision.outcomes[0].signatures[0].format == fmt
