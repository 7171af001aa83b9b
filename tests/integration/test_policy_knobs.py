"""Attestation requirements, signedIdentity and indexCoversChildren, through a real registry.

The signatures come from the test signer (cosign's formats); tests/interop repeats the main cases
with the real cosign binaries.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from signgate.deadline import Deadline
from signgate.engine import CacheSettings, Verifier, VerifierSettings
from signgate.policy.compiled import CompiledPolicy, compile_policy
from signgate.policy.loading import parse_policies
from signgate.registry import RegistryClient, RegistryOptions
from support import signer
from support.engine import Checker, options_for
from support.fault_proxy import FaultProxy
from support.formats import PrivateKey, generate_key, public_key_pem
from support.push import Pusher
from support.registry import RegistryServer

SLSA = "https://slsa.dev/provenance/v1"
CYCLONEDX = "https://cyclonedx.org/bom"


def repo() -> str:
    return f"knobs/{secrets.token_hex(4)}"


def policy(key: PrivateKey, **spec: Any) -> CompiledPolicy:
    body: dict[str, Any] = {
        "images": ["**"],
        "authorities": [{"name": "release", "key": {"pem": public_key_pem(key).decode()}}],
        **spec,
    }
    document = {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "knobs"},
        "spec": body,
    }
    (parsed,) = parse_policies(json.dumps(document), "test")
    return compile_policy(parsed)


# -- attestations ----------------------------------------------------------------------------------


async def test_an_attestation_is_not_a_signature(pusher: Pusher, check: Checker) -> None:
    name, key = repo(), generate_key()
    digest = await pusher.push_random_image(name, "v1")
    await signer.attest_legacy(pusher, name, digest, key, SLSA, {"builder": {"id": "ci"}})
    await signer.sign_bundle_v3(pusher, name, digest, key, predicate_type=CYCLONEDX, predicate={})
    decision = await check(f"{pusher.host}/{name}@{digest}", [policy(key)])
    assert not decision.allowed
    # The legacy .att tag is not even read for a signature-only policy; the v3 one is a referrer.
    assert f"attestation of type {CYCLONEDX}, not a signature" in decision.reasons[0]


async def test_attestation_policies_need_every_listed_type(pusher: Pusher, check: Checker) -> None:
    name, key, stranger = repo(), generate_key(), generate_key()
    digest = await pusher.push_random_image(name, "v1")
    image = f"{pusher.host}/{name}@{digest}"
    both = policy(
        key,
        threshold=0,
        attestations=[{"predicateType": SLSA}, {"predicateType": CYCLONEDX}],
    )

    await signer.attest_legacy(pusher, name, digest, key, SLSA, {"builder": {"id": "ci"}})
    decision = await check(image, [both])
    assert not decision.allowed
    assert f"needs an attestation {CYCLONEDX} from one of [release]" in decision.reasons[0]
    assert (
        "none of this type (1 other signature(s) or attestation(s) attached)"
        in (decision.reasons[0])
    )
    assert SLSA not in decision.reasons[0].split("needs an attestation")[1]

    # By a stranger: does not count, and the reason says so.
    await signer.sign_bundle_v3(
        pusher, name, digest, stranger, predicate_type=CYCLONEDX, predicate={}
    )
    decision = await check(image, [both])
    assert not decision.allowed
    assert "attestation does not verify with key" in decision.reasons[0]

    await signer.sign_bundle_v3(pusher, name, digest, key, predicate_type=CYCLONEDX, predicate={})
    decision = await check(image, [both])
    assert decision.allowed, decision.reasons
    (outcome,) = decision.outcomes
    assert sorted((a.predicate_type, str(a.format)) for a in outcome.attestations) == [
        (CYCLONEDX, "sigstore bundle"),
        (SLSA, "cosign .att tag"),
    ]
    assert outcome.signatures == ()

    # The same policy with threshold 1 also needs an image signature.
    signed_too = policy(key, attestations=[{"predicateType": SLSA}])
    decision = await check(image, [signed_too])
    assert not decision.allowed
    assert "needs valid signatures from 1 of [release], has none" in decision.reasons[0]
    await signer.sign_legacy(pusher, name, digest, key)
    assert (await check(image, [signed_too])).allowed


async def test_attestation_for_another_digest_does_not_count(
    pusher: Pusher, check: Checker
) -> None:
    name, key = repo(), generate_key()
    digest = await pusher.push_random_image(name, "v1")
    other = await pusher.push_random_image(name, "v2")
    await signer.sign_bundle_v3(
        pusher, name, digest, key, predicate_type=SLSA, predicate={}, subject_digest=other
    )
    decision = await check(
        f"{pusher.host}/{name}@{digest}",
        [policy(key, threshold=0, attestations=[{"predicateType": SLSA}])],
    )
    assert not decision.allowed
    assert f"attestation of type {SLSA} is for sha256:{other[7:19]}…" in decision.reasons[0]


async def test_attestations_name_their_authorities(pusher: Pusher, check: Checker) -> None:
    name, release, ci = repo(), generate_key(), generate_key()
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, release)
    await signer.attest_legacy(pusher, name, digest, release, SLSA, {})
    spec: dict[str, Any] = {
        "images": ["**"],
        "authorities": [
            {"name": "release", "key": {"pem": public_key_pem(release).decode()}},
            {"name": "ci", "key": {"pem": public_key_pem(ci).decode()}},
        ],
        "attestations": [{"predicateType": SLSA, "authorities": ["ci"]}],
    }
    only_ci = policy(release, **spec)
    decision = await check(f"{pusher.host}/{name}@{digest}", [only_ci])
    assert not decision.allowed
    assert f"needs an attestation {SLSA} from one of [ci]" in decision.reasons[0]
    await signer.attest_legacy(pusher, name, digest, ci, SLSA, {})
    assert (await check(f"{pusher.host}/{name}@{digest}", [only_ci])).allowed


# -- signedIdentity --------------------------------------------------------------------------------


async def test_signed_identity_is_ignored_by_default_and_matched_on_request(
    pusher: Pusher, check: Checker
) -> None:
    source, mirror, key = repo(), repo(), generate_key()
    digest = await pusher.push_random_image(source, "v1")
    await signer.sign_legacy(pusher, source, digest, key)
    # Replicate image and signature to another repository, as Harbor replication does.
    await pusher.copy_manifest(source, digest, mirror, "v1")
    sig_tag = f"sha256-{digest[7:]}.sig"
    await pusher.copy_manifest(source, sig_tag, mirror, sig_tag)
    at_source, at_mirror = f"{pusher.host}/{source}:v1", f"{pusher.host}/{mirror}:v1"

    assert (await check(at_mirror, [policy(key)])).allowed

    own = policy(key, signedIdentity={"match": "ImageRepository"})
    assert (await check(at_source, [own])).allowed
    decision = await check(at_mirror, [own])
    assert not decision.allowed
    assert (
        f"signature was made for {pusher.host}/{source}, not the image's repository "
        f"{pusher.host}/{mirror}" in decision.reasons[0]
    )

    listed = policy(
        key, signedIdentity={"match": "Repositories", "repositories": [f"{pusher.host}/{source}"]}
    )
    assert (await check(at_mirror, [listed])).allowed
    elsewhere = policy(
        key, signedIdentity={"match": "Repositories", "repositories": ["registry.example/**"]}
    )
    decision = await check(at_mirror, [elsewhere])
    assert not decision.allowed
    assert "not a repository in the policy's signedIdentity.repositories" in decision.reasons[0]


async def test_signed_identity_verdicts_are_cached_per_repository(
    pusher: Pusher, registry: RegistryServer
) -> None:
    # The same digest admitted at its source must not be admitted from the cache at a mirror.
    source, mirror, key = repo(), repo(), generate_key()
    digest = await pusher.push_random_image(source, "v1")
    await signer.sign_legacy(pusher, source, digest, key)
    await pusher.copy_manifest(source, digest, mirror, "v1")
    sig_tag = f"sha256-{digest[7:]}.sig"
    await pusher.copy_manifest(source, sig_tag, mirror, sig_tag)
    own = policy(key, signedIdentity={"match": "ImageRepository"})
    async with RegistryClient(options_for(registry)) as client:
        verifier = Verifier(client, settings=VerifierSettings(cache=CacheSettings()))
        first = await verifier.verify_image(
            f"{pusher.host}/{source}@{digest}", [own], Deadline.after(20)
        )
        second = await verifier.verify_image(
            f"{pusher.host}/{mirror}@{digest}", [own], Deadline.after(20)
        )
    assert first.allowed
    assert not second.allowed
    assert verifier.verifications == 2


async def test_bundles_name_no_repository(pusher: Pusher, check: Checker) -> None:
    name, key = repo(), generate_key()
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_bundle_v3(pusher, name, digest, key)
    image = f"{pusher.host}/{name}@{digest}"
    assert (await check(image, [policy(key)])).allowed
    decision = await check(image, [policy(key, signedIdentity={"match": "ImageRepository"})])
    assert not decision.allowed
    assert "sigstore bundles name no repository" in decision.reasons[0]


# -- indexCoversChildren ---------------------------------------------------------------------------


async def test_index_signature_covers_children_only_when_asked(
    pusher: Pusher, check: Checker
) -> None:
    name, key = repo(), generate_key()
    index, children = await pusher.push_multiarch_image(name, "v1")
    await signer.sign_legacy(pusher, name, index, key)
    child = children[0]
    plain, covering = policy(key), policy(key, indexCoversChildren=True)

    assert (await check(f"{pusher.host}/{name}:v1", [plain])).allowed
    decision = await check(f"{pusher.host}/{name}:v1@{child}", [plain])
    assert not decision.allowed

    decision = await check(f"{pusher.host}/{name}:v1@{child}", [covering])
    assert decision.allowed, decision.reasons
    assert decision.digest == child  # pinned to what the workload named, not the index
    (outcome,) = decision.outcomes
    assert outcome.via == f"image index {pusher.host}/{name}@{index} (tag v1), which lists it"

    # Without the tag there is no index to look at: denied, with what to write instead.
    decision = await check(f"{pusher.host}/{name}@{child}", [covering])
    assert not decision.allowed
    assert (
        "indexCoversChildren applies to references written repo:tag@sha256:"
        in (decision.reasons[0])
    )


async def test_index_that_does_not_list_the_digest_covers_nothing(
    pusher: Pusher, check: Checker
) -> None:
    name, key = repo(), generate_key()
    index, _ = await pusher.push_multiarch_image(name, "v1")
    await signer.sign_legacy(pusher, name, index, key)
    stray = await pusher.push_random_image(name, "stray")
    decision = await check(
        f"{pusher.host}/{name}:v1@{stray}", [policy(key, indexCoversChildren=True)]
    )
    assert not decision.allowed
    assert f"the tag 'v1' names {index}, which does not list this digest" in decision.reasons[0]


async def test_unsigned_index_covers_nothing(pusher: Pusher, check: Checker) -> None:
    name, key = repo(), generate_key()
    _, children = await pusher.push_multiarch_image(name, "v1")
    decision = await check(
        f"{pusher.host}/{name}:v1@{children[1]}", [policy(key, indexCoversChildren=True)]
    )
    assert not decision.allowed
    assert "no signature found" in decision.reasons[0]


async def test_attestation_conditions_read_the_verified_predicate(
    pusher: Pusher, check: Checker
) -> None:
    name, key = repo(), generate_key()
    digest = await pusher.push_random_image(name, "v1")
    builder = "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1"
    await signer.attest_legacy(
        pusher, name, digest, key, SLSA, {"runDetails": {"builder": {"id": builder}}}
    )
    image = f"{pusher.host}/{name}@{digest}"

    def requiring(condition: dict[str, Any]) -> CompiledPolicy:
        attestation = {"predicateType": SLSA, "conditions": [condition]}
        return policy(key, threshold=0, attestations=[attestation])

    field = "runDetails.builder.id"
    assert (await check(image, [requiring({"field": field, "equals": builder})])).allowed
    pattern = r"https://github\.com/org/app/\.github/workflows/release\.yml@refs/tags/v.*"
    assert (await check(image, [requiring({"field": field, "matches": pattern})])).allowed
    decision = await check(image, [requiring({"field": field, "matches": "https://github.com"})])
    assert not decision.allowed
    assert (
        f"predicate field {field} is '{builder}', not {field} matches /https://github.com/"
        in (decision.reasons[0])
    )
    decision = await check(
        image, [requiring({"field": "buildDefinition.buildType", "oneOf": ["a", "b"]})]
    )
    assert not decision.allowed
    assert "predicate has no field buildDefinition.buildType" in decision.reasons[0]


async def test_a_covered_child_is_warm_after_the_first_admission(
    pusher: Pusher, fault_proxy: FaultProxy
) -> None:
    # The index's child list is cached like a verdict: admitting the same repo:tag@child again
    # must not fetch the index (or anything else) from the registry.
    name, key = repo(), generate_key()
    index, children = await pusher.push_multiarch_image(name, "v1")
    await signer.sign_legacy(pusher, name, index, key)
    covering = policy(key, indexCoversChildren=True)
    async with RegistryClient(
        RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))
    ) as client:
        engine = Verifier(client, settings=VerifierSettings(cache=CacheSettings()))
        image = f"{fault_proxy.host}/{name}:v1@{children[0]}"
        first = await engine.verify_image(image, [covering], Deadline.after(20))
        assert first.allowed, first.reasons
        cold = fault_proxy.count()
        again = await engine.verify_image(image, [covering], Deadline.after(20))
        assert again.allowed
        assert fault_proxy.count() == cold
