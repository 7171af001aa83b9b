"""A dry run changes nothing a later request is answered (issue 15, item 6).

``kubectl apply --dry-run=server`` costs an attacker nothing. A denial reached for a dry run used
to be cached for 30 s like any other, so asking about an image just before its signature landed
kept the real release out for 30 s. Real requests still cache denials for that long (the
documented bound: docs/adr/0001); dry runs do not.
"""

from __future__ import annotations

from signgate.admission.decide import decide_review
from signgate.engine import Verifier
from signgate.policy.sources import StaticPolicySource
from signgate.registry import RegistryClient
from support import reviews, signer
from support.engine import key_policy
from support.formats import generate_key
from support.memory_registry import ManualClock, MemoryPusher

KEY = generate_key()
POLICY = key_policy(KEY)


async def _admitted(engine: Verifier, image: str, *, dry_run: bool) -> bool:
    body = reviews.review(reviews.workload("Pod", reviews.pod_spec([image])), dry_run=dry_run)
    verdict = await decide_review(
        reviews.request_of(body),
        mutate=False,
        engine=engine,
        policies=StaticPolicySource([POLICY]),
        deadline_seconds=10,
    )
    return verdict.allowed


async def test_a_dry_run_denial_does_not_keep_the_release_out_once_it_is_signed(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    digest = await memory_pusher.push_random_image("team/app", "v1")
    image = f"{memory_pusher.host}/team/app@{digest}"
    engine = Verifier(registry_client, monotonic=clock)

    assert not await _admitted(engine, image, dry_run=True)
    await signer.sign_legacy(memory_pusher, "team/app", digest, KEY)
    assert await _admitted(engine, image, dry_run=False)


async def test_a_real_denial_is_cached_for_its_bound(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    # The contrast: the same sequence without the dry run is denied until the bound passes.
    digest = await memory_pusher.push_random_image("team/app", "v1")
    image = f"{memory_pusher.host}/team/app@{digest}"
    engine = Verifier(registry_client, monotonic=clock)

    assert not await _admitted(engine, image, dry_run=False)
    await signer.sign_legacy(memory_pusher, "team/app", digest, KEY)
    assert not await _admitted(engine, image, dry_run=False)
    clock.advance(engine.settings.cache.unverified_ttl)
    assert await _admitted(engine, image, dry_run=False)
