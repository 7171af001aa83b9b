"""The engine (`Verifier`) on the in-memory registry: verdicts, the caches and their clocks, and
failing closed.

The cache clock is injected (`ManualClock`), so "ten seconds later" is a call, not a sleep; the
registry records every request, so "served from cache" is checked as "no request sent".
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from signgate.deadline import Deadline
from signgate.engine import CacheSettings, Verifier, VerifierSettings
from signgate.policy.compiled import CompiledPolicy, compile_policy
from signgate.policy.loading import parse_policies
from signgate.registry import Credentials, CredentialStore, RegistryClient, RegistryOptions
from support import signer
from support.engine import key_policy
from support.formats import PrivateKey, generate_key, public_key_pem, signature_tag
from support.memory_registry import ManualClock, MemoryPusher, MemoryRegistry

REPO = "team/app"
KEY = generate_key()
POLICY = key_policy(KEY)
SLSA = "https://slsa.dev/provenance/v1"


def trust_policy(key: PrivateKey, name: str = "release", **spec: Any) -> CompiledPolicy:
    """A TrustPolicy as a user writes it, trusting ``key`` for every image."""
    document = {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": name},
        "spec": {
            "images": ["**"],
            "authorities": [{"name": "ci", "key": {"pem": public_key_pem(key).decode()}}],
            **spec,
        },
    }
    (parsed,) = parse_policies(json.dumps(document), "test")
    return compile_policy(parsed)


def engine(client: RegistryClient, clock: ManualClock, **cache: float) -> Verifier:
    return Verifier(
        client,
        settings=VerifierSettings(cache=CacheSettings(**cache)),  # type: ignore[arg-type]
        monotonic=clock,
    )


async def test_a_signed_image_is_admitted_by_tag_and_pinned_to_its_digest(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)

    decision = await engine(registry_client, clock).verify_image(
        f"{memory_pusher.host}/{REPO}:v1", [POLICY], Deadline.after(10)
    )

    assert decision.allowed, decision.reasons
    assert decision.digest == digest
    assert decision.pinned == f"{memory_pusher.host}/{REPO}@{digest}"
    assert decision.authorities == ("command-line/key-1",)


async def test_a_bundle_signature_admits_like_a_legacy_one(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_bundle_v3(memory_pusher, REPO, digest, KEY)

    decision = await engine(registry_client, clock).verify_image(
        f"{memory_pusher.host}/{REPO}@{digest}", [POLICY], Deadline.after(10)
    )

    assert decision.allowed, decision.reasons


async def test_an_unsigned_image_is_denied_because_no_signature_was_found(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")

    decision = await engine(registry_client, clock).verify_image(
        f"{memory_pusher.host}/{REPO}:v1", [POLICY], Deadline.after(10)
    )

    assert not decision.allowed
    (reason,) = decision.reasons
    assert reason.startswith(f"{memory_pusher.host}/{REPO}@{digest}: TrustPolicy 'command-line'")
    assert f"no signature found in {memory_pusher.host}/{REPO}" in reason


async def test_a_signature_by_another_key_is_denied(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, generate_key())

    decision = await engine(registry_client, clock).verify_image(
        f"{memory_pusher.host}/{REPO}@{digest}", [POLICY], Deadline.after(10)
    )

    assert not decision.allowed
    assert ".sig layer 1: signature does not verify with key sha256:" in decision.reasons[0]
    assert "it is signed, but by none of [key-1]" in decision.reasons[0]


async def test_a_signature_copied_from_another_image_is_denied(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    signed = await memory_pusher.push_random_image(REPO, "signed")
    other = await memory_pusher.push_random_image(REPO, "other")
    await signer.sign_legacy(memory_pusher, REPO, signed, KEY)
    # A valid signature, by the trusted key, replayed under the other image's .sig tag.
    await memory_pusher.copy_manifest(REPO, signature_tag(signed), REPO, signature_tag(other))

    decision = await engine(registry_client, clock).verify_image(
        f"{memory_pusher.host}/{REPO}@{other}", [POLICY], Deadline.after(10)
    )

    assert not decision.allowed
    assert f"signature is for {signed}, not {other}" in decision.reasons[0]


async def test_an_image_no_policy_governs_is_denied_without_asking_the_registry(
    memory_registry: MemoryRegistry, registry_client: RegistryClient, clock: ManualClock
) -> None:
    elsewhere = trust_policy(KEY, images=["other.test/**"])

    decision = await engine(registry_client, clock).verify_image(
        f"{memory_registry.host}/{REPO}:v1", [elsewhere], Deadline.after(10)
    )

    assert not decision.allowed
    assert decision.reasons[0].startswith(f"no TrustPolicy governs {memory_registry.host}/{REPO}")
    assert memory_registry.requests == []


async def test_the_tag_is_resolved_again_only_after_its_ttl(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    signed = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, signed, KEY)
    verifier = engine(registry_client, clock, tag_ttl=10)
    image = f"{memory_pusher.host}/{REPO}:v1"
    assert (await verifier.verify_image(image, [POLICY], Deadline.after(10))).allowed
    unsigned = await memory_pusher.push_random_image(REPO, "v1")  # the tag moves

    clock.advance(9.9)
    still = await verifier.verify_image(image, [POLICY], Deadline.after(10))
    assert (still.allowed, still.digest) == (True, signed)
    assert memory_registry.count(r"/manifests/v1$") == 1

    clock.advance(0.2)
    moved = await verifier.verify_image(image, [POLICY], Deadline.after(10))
    assert (moved.allowed, moved.digest) == (False, unsigned)
    assert memory_registry.count(r"/manifests/v1$") == 2
    # The signed digest keeps its verdict: what was pinned stays admissible.
    pinned = await verifier.verify_image(
        f"{memory_pusher.host}/{REPO}@{signed}", [POLICY], Deadline.after(10)
    )
    assert pinned.allowed


async def test_a_warm_verdict_costs_no_request(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    verifier = engine(registry_client, clock)
    image = f"{memory_pusher.host}/{REPO}:v1"
    await verifier.verify_image(image, [POLICY], Deadline.after(10))
    cold = len(memory_registry.requests)
    # Resolve (HEAD), the .sig manifest and its blob, the referrers API.
    assert cold == 4

    clock.advance(5)
    again = await verifier.verify_image(image, [POLICY], Deadline.after(10))

    assert again.allowed
    assert len(memory_registry.requests) == cold
    assert verifier.verifications == 1


async def test_cached_decision_is_exactly_what_verify_image_answers(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    signed = await memory_pusher.push_random_image(REPO, "signed")
    await memory_pusher.push_random_image(REPO, "unsigned")
    await signer.sign_legacy(memory_pusher, REPO, signed, KEY)
    verifier = engine(registry_client, clock)
    policies = [POLICY, trust_policy(KEY, name="audit", mode="Audit")]
    for tag in ("signed", "unsigned"):
        image = f"{memory_pusher.host}/{REPO}:{tag}"
        assert verifier.cached_decision(image, policies) is None  # nothing known yet
        cold = await verifier.verify_image(image, policies, Deadline.after(10))

        warm = verifier.cached_decision(image, policies)

        assert warm is not None
        assert warm == cold == await verifier.verify_image(image, policies, Deadline.after(10))
    assert verifier.verifications == 2
    clock.advance(10.1)  # the tag TTL: the fast path must not answer for a tag it cannot resolve
    assert verifier.cached_decision(f"{memory_pusher.host}/{REPO}:signed", policies) is None


async def test_an_unsatisfied_verdict_expires_after_the_negative_ttl(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    verifier = engine(registry_client, clock, unverified_ttl=30)
    image = f"{memory_pusher.host}/{REPO}@{digest}"
    assert not (await verifier.verify_image(image, [POLICY], Deadline.after(10))).allowed
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    asked = len(memory_registry.requests)

    clock.advance(29)
    assert not (await verifier.verify_image(image, [POLICY], Deadline.after(10))).allowed
    assert len(memory_registry.requests) == asked

    clock.advance(2)
    assert (await verifier.verify_image(image, [POLICY], Deadline.after(10))).allowed


async def test_a_changed_policy_never_reuses_an_old_verdict(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    verifier = engine(registry_client, clock)
    image = f"{memory_pusher.host}/{REPO}@{digest}"
    assert (await verifier.verify_image(image, [trust_policy(KEY)], Deadline.after(10))).allowed

    # Same name, key rotated: another identity, so a fresh (denying) verdict.
    rotated = trust_policy(generate_key())
    assert not (await verifier.verify_image(image, [rotated], Deadline.after(10))).allowed
    assert verifier.cached_decision(image, [rotated]) is not None
    assert verifier.forget_policy(trust_policy(KEY).identity) == 1


async def test_concurrent_admissions_of_one_image_share_one_verification(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    verifier = engine(registry_client, clock)
    image = f"{memory_pusher.host}/{REPO}:v1"

    decisions = await asyncio.gather(
        *(verifier.verify_image(image, [POLICY], Deadline.after(10)) for _ in range(50))
    )

    assert all(d.allowed for d in decisions)
    assert verifier.verifications == 1
    assert len(memory_registry.requests) == 4  # as for one admission


async def test_a_registry_failure_denies_with_the_reason_and_is_not_cached(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    verifier = engine(registry_client, clock)
    image = f"{memory_pusher.host}/{REPO}@{digest}"
    memory_registry.status(r"\.sig$|/referrers/", 503)

    failed = await verifier.verify_image(image, [POLICY], Deadline.after(10))

    assert not failed.allowed
    assert "HTTP 503" in failed.reasons[0]
    assert "what to do:" in failed.reasons[0]
    assert verifier.cached_decision(image, [POLICY]) is None
    memory_registry.clear()
    assert (await verifier.verify_image(image, [POLICY], Deadline.after(10))).allowed


async def test_a_denial_reached_while_part_of_the_registry_failed_is_not_cached(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    # The .sig tag answers (nothing there), the referrers API fails: the denial says so, and is
    # about that moment, not the image, so the next admission asks again.
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_bundle_v3(memory_pusher, REPO, digest, KEY)
    verifier = engine(registry_client, clock)
    image = f"{memory_pusher.host}/{REPO}@{digest}"
    memory_registry.status(r"/referrers/", 500)

    partial = await verifier.verify_image(image, [POLICY], Deadline.after(10))

    assert not partial.allowed
    assert "could not read all signatures:" in partial.reasons[0]
    assert "HTTP 500" in partial.reasons[0]
    assert verifier.cached_decision(image, [POLICY]) is None
    memory_registry.clear()
    assert (await verifier.verify_image(image, [POLICY], Deadline.after(10))).allowed


async def test_an_unreachable_registry_is_denied_with_the_reason(
    memory_registry: MemoryRegistry, registry_client: RegistryClient, clock: ManualClock
) -> None:
    memory_registry.unreachable()

    decision = await engine(registry_client, clock).verify_image(
        f"{memory_registry.host}/{REPO}:v1", [POLICY], Deadline.after(10)
    )

    assert not decision.allowed
    assert (
        f"cannot resolve the digest: cannot reach {memory_registry.host}: Connection refused"
        in decision.reasons[0]
    )


async def test_a_missing_tag_is_denied_with_the_reason(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    await memory_pusher.push_random_image(REPO, "v1")

    decision = await engine(registry_client, clock).verify_image(
        f"{memory_pusher.host}/{REPO}:nope", [POLICY], Deadline.after(10)
    )

    assert not decision.allowed
    assert "tag 'nope' not found" in decision.reasons[0]


async def test_a_hanging_registry_is_denied_at_the_deadline(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    memory_registry.hang(r"/manifests/")

    decision = await engine(registry_client, clock).verify_image(
        f"{memory_pusher.host}/{REPO}@{digest}", [POLICY], Deadline.after(0.05)
    )

    assert not decision.allowed
    assert "deadline exceeded" in decision.reasons[0]


async def test_warn_and_audit_policies_let_a_registry_failure_through_with_a_record(
    memory_registry: MemoryRegistry, registry_client: RegistryClient, clock: ManualClock
) -> None:
    memory_registry.unreachable()
    verifier = engine(registry_client, clock)
    image = f"{memory_registry.host}/{REPO}:v1"

    warned = await verifier.verify_image(
        image, [trust_policy(KEY, mode="Warn")], Deadline.after(10)
    )
    audited = await verifier.verify_image(
        image, [trust_policy(KEY, mode="Audit")], Deadline.after(10)
    )

    assert warned.allowed and "Connection refused" in warned.warnings[0]
    assert audited.allowed and "Connection refused" in audited.audit[0]


async def test_a_signed_index_covers_a_child_named_by_its_tag_and_digest(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    index, (amd64, _) = await memory_pusher.push_multiarch_image(REPO, "v1")
    stray = await memory_pusher.push_random_image(REPO, "stray")
    await signer.sign_legacy(memory_pusher, REPO, index, KEY)
    policy = trust_policy(KEY, indexCoversChildren=True)
    verifier = engine(registry_client, clock)
    host = memory_pusher.host

    covered, untagged, unlisted = [
        await verifier.verify_image(f"{host}/{REPO}{tail}", [policy], Deadline.after(10))
        for tail in (f":v1@{amd64}", f"@{amd64}", f":v1@{stray}")
    ]

    assert covered.allowed, covered.reasons
    assert covered.outcomes[0].via.startswith(f"image index {host}/{REPO}@{index} (tag v1)")
    assert not untagged.allowed
    hint = "indexCoversChildren applies to references written repo:tag@sha256"
    assert hint in untagged.reasons[0]
    assert not unlisted.allowed
    assert f"the tag 'v1' names {index}, which does not list this digest" in unlisted.reasons[0]


async def test_signatures_are_read_from_the_policys_signature_repository(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY, sig_repo="team/signatures")
    host = memory_pusher.host
    policy = trust_policy(KEY, signatureRepository=f"{host}/team/signatures")

    decision = await engine(registry_client, clock).verify_image(
        f"{host}/{REPO}@{digest}", [policy], Deadline.after(10)
    )

    assert decision.allowed, decision.reasons
    assert memory_registry.count(f"^/v2/{REPO}/manifests/sha256-") == 0


async def test_an_attestation_policy_reads_the_attestation_tag(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.attest_legacy(memory_pusher, REPO, digest, KEY, SLSA, {"builder": {"id": "ci"}})
    verifier = engine(registry_client, clock)
    image = f"{memory_pusher.host}/{REPO}@{digest}"

    wants = trust_policy(KEY, threshold=0, attestations=[{"predicateType": SLSA}])
    signature_only = trust_policy(KEY, name="signed")

    assert (await verifier.verify_image(image, [wants], Deadline.after(10))).allowed
    denied = await verifier.verify_image(image, [signature_only], Deadline.after(10))
    assert not denied.allowed
    assert "no signature found" in denied.reasons[0]


async def test_tags_resolved_with_other_credentials_are_resolved_again(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    # Whether a tag can be resolved at all depends on who asks (a Pod's imagePullSecrets).
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    verifier = engine(registry_client, clock)
    image = f"{memory_pusher.host}/{REPO}:v1"
    tenant = CredentialStore({memory_pusher.host: Credentials("tenant", "secret")})
    await verifier.verify_image(image, [POLICY], Deadline.after(10))

    await verifier.verify_image(image, [POLICY], Deadline.after(10), credentials=tenant)

    assert memory_registry.count(r"/manifests/v1$") == 2
    assert verifier.cached_decision(image, [POLICY], credentials=tenant) is not None


async def test_options_reach_the_registry_through_the_engine(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, clock: ManualClock
) -> None:
    # Basic credentials from a Docker config, the way `signgate verify --registry-config` has them.
    digest = await memory_pusher.push_random_image(REPO, "v1")
    await signer.sign_legacy(memory_pusher, REPO, digest, KEY)
    memory_registry.require_basic("ci", "s3cret")
    config = {"auths": {memory_pusher.host: {"username": "ci", "password": "s3cret"}}}
    options = RegistryOptions(
        credentials=CredentialStore.from_docker_config(json.dumps(config).encode())
    )

    async with RegistryClient(options, round_trip=memory_registry) as client:
        decision = await engine(client, clock).verify_image(
            f"{memory_pusher.host}/{REPO}:v1", [POLICY], Deadline.after(10)
        )

    assert decision.allowed, decision.reasons
    # One 401 taught the client the scheme; every later request carried the credentials.
    assert [r.status for r in memory_registry.requests].count(401) == 1
