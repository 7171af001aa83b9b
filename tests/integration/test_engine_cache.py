"""The engine's caches against a real registry: fast when it may be, never wrong.

Time is a `FakeClock` the tests advance (``Verifier(monotonic=...)``): a TTL passes when a test says
so, never by sleeping, so a busy machine cannot make a cached answer outlive its test.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace

from multidict import CIMultiDict, CIMultiDictProxy

from signgate.deadline import Deadline
from signgate.engine import CacheSettings, Verifier, VerifierSettings
from signgate.policy.compiled import CompiledPolicy
from signgate.registry import RegistryClient, RegistryOptions, Response
from signgate.registry.client import _no_such_route
from support import signer
from support.clock import FakeClock
from support.engine import key_policy
from support.fault_proxy import FaultProxy
from support.formats import generate_key
from support.push import Pusher


def verifier(
    client: RegistryClient, *, monotonic: FakeClock | None = None, **cache: float
) -> Verifier:
    """An engine with these cache settings; its caches read ``monotonic`` (a fresh clock at 0 that
    only a test moves, unless given)."""
    return Verifier(
        client,
        settings=VerifierSettings(cache=CacheSettings(**cache)),  # type: ignore[arg-type]
        monotonic=monotonic or FakeClock(),
    )


async def test_concurrent_admissions_of_one_image_cause_one_verification(
    pusher: Pusher, fault_proxy: FaultProxy
) -> None:
    name = f"cache/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    await signer.sign_legacy(pusher, name, digest, key)
    policy = key_policy(key)
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))) as c:
        engine = verifier(c)
        image = f"{fault_proxy.host}/{name}:v1"
        decisions = await asyncio.gather(
            *(engine.verify_image(image, [policy], Deadline.after(20)) for _ in range(200))
        )
        assert all(d.allowed for d in decisions)
        assert engine.verifications == 1
        cold = fault_proxy.count()
        # Resolve, .sig manifest, blob, referrers API, fallback tag, plus the one-off http probe.
        assert cold <= 6
        again = await engine.verify_image(image, [policy], Deadline.after(5))
        assert again.allowed
        assert fault_proxy.count() == cold  # warm: tag and verdict both cached


async def test_a_moved_tag_is_denied_once_the_tag_ttl_passes(pusher: Pusher) -> None:
    name = f"cache/{secrets.token_hex(4)}"
    signed = await pusher.push_random_image(name, "v1")
    key = generate_key()
    await signer.sign_legacy(pusher, name, signed, key)
    policy = key_policy(key)
    clock = FakeClock()
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({pusher.host}))) as c:
        engine = verifier(c, monotonic=clock, tag_ttl=10)
        image = f"{pusher.host}/{name}:v1"
        first = await engine.verify_image(image, [policy], Deadline.after(10))
        assert first.allowed
        unsigned = await pusher.push_random_image(name, "v1")  # the tag moves
        clock.advance(9.9)
        within = await engine.verify_image(image, [policy], Deadline.after(10))
        assert within.allowed  # the tag's digest is reused for up to tag_ttl
        assert within.digest == signed
        clock.advance(0.1)
        second = await engine.verify_image(image, [policy], Deadline.after(10))
        assert not second.allowed
        assert second.digest == unsigned
        assert "no signature found" in second.reasons[0]
        # The signed digest keeps its cached verdict: what was pinned stays admissible.
        pinned = await engine.verify_image(
            f"{pusher.host}/{name}@{signed}", [policy], Deadline.after(10)
        )
        assert pinned.allowed


async def test_a_signature_added_later_is_seen_after_the_short_negative_ttl(pusher: Pusher) -> None:
    name = f"cache/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    policy = key_policy(key)
    clock = FakeClock()
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({pusher.host}))) as c:
        engine = verifier(c, monotonic=clock, unverified_ttl=30)
        image = f"{pusher.host}/{name}@{digest}"
        assert not (await engine.verify_image(image, [policy], Deadline.after(10))).allowed
        await signer.sign_legacy(pusher, name, digest, key)
        clock.advance(29.9)
        assert not (
            await engine.verify_image(image, [policy], Deadline.after(10))
        ).allowed  # cached
        clock.advance(0.1)
        assert (await engine.verify_image(image, [policy], Deadline.after(10))).allowed


async def test_a_changed_policy_never_reuses_an_old_verdict(pusher: Pusher) -> None:
    name = f"cache/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    old, new = generate_key(), generate_key()
    await signer.sign_legacy(pusher, name, digest, old)
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({pusher.host}))) as c:
        engine = verifier(c)
        image = f"{pusher.host}/{name}@{digest}"
        assert (await engine.verify_image(image, [key_policy(old)], Deadline.after(10))).allowed
        # Same policy name, key rotated: a different identity, so a fresh (denying) verdict.
        assert not (await engine.verify_image(image, [key_policy(new)], Deadline.after(10))).allowed
        assert engine.forget_policy(key_policy(old).identity) == 1


async def test_registry_failures_are_never_cached(pusher: Pusher, fault_proxy: FaultProxy) -> None:
    name = f"cache/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    await signer.sign_legacy(pusher, name, digest, key)
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))) as c:
        engine = verifier(c)
        image = f"{fault_proxy.host}/{name}@{digest}"
        fault_proxy.status(r"\.sig$", 503)
        fault_proxy.status(r"/referrers/|/manifests/sha256-", 503)
        failed = await engine.verify_image(image, [key_policy(key)], Deadline.after(10))
        assert not failed.allowed
        assert "503" in failed.reasons[0]
        fault_proxy.clear()
        assert (await engine.verify_image(image, [key_policy(key)], Deadline.after(10))).allowed


async def test_work_outlives_a_short_deadline_and_the_next_request_reuses_it(
    pusher: Pusher, fault_proxy: FaultProxy
) -> None:
    # A slow registry and short deadlines: the first admission is denied at its deadline, but the
    # verification it started finishes and is cached, so admissions recover instead of each one
    # starting the same doomed work again (found by scripts/load).
    name = f"cache/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    await signer.sign_legacy(pusher, name, digest, key)
    policy = key_policy(key)
    fault_proxy.delay(r"\.sig$", 1.5)
    try:
        async with RegistryClient(
            RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))
        ) as c:
            engine = verifier(c)
            image = f"{fault_proxy.host}/{name}@{digest}"
            first = await engine.verify_image(image, [policy], Deadline.after(0.5))
            assert not first.allowed
            assert "deadline" in first.reasons[0]
            # The shared verification completes in the background and is cached.
            await until_cached(engine, image, [policy])
            second = await engine.verify_image(image, [policy], Deadline.after(0.5))
            assert second.allowed, second.reasons
            assert engine.verifications == 1
    finally:
        fault_proxy.clear()


async def until_cached(
    engine: Verifier, image: str, policies: list[CompiledPolicy], timeout: float = 20
) -> None:
    """Poll until the engine's caches alone decide ``image`` (work finishing, not a TTL)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while engine.cached_decision(image, policies) is None:
        assert loop.time() < give_up, f"{image}: no cached decision after {timeout} s"
        await asyncio.sleep(0.05)


async def test_the_warm_path_answers_exactly_what_the_engine_would(pusher: Pusher) -> None:
    """`cached_decision` (no await, no I/O) is the engine's decision from its caches, or None."""
    name = f"cache/{secrets.token_hex(4)}"
    signed = await pusher.push_random_image(name, "v1")
    await pusher.push_random_image(name, "unsigned")
    key = generate_key()
    await signer.sign_legacy(pusher, name, signed, key)
    policy = key_policy(key)
    # (A compiled policy's identity covers requireDigest; this hand-made one needs its own.)
    strict = replace(policy, name="by-digest", require_digest=True, identity="by-digest")
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({pusher.host}))) as c:
        engine = verifier(c)
        for tag in ("v1", "unsigned"):
            image = f"{pusher.host}/{name}:{tag}"
            assert engine.cached_decision(image, [policy]) is None  # nothing known yet
            slow = await engine.verify_image(image, [policy], Deadline.after(10))
            assert engine.cached_decision(image, [policy]) == slow
            assert engine.cached_decision(f"{pusher.host}/{name}@{slow.digest}", [policy]) == (
                await engine.verify_image(
                    f"{pusher.host}/{name}@{slow.digest}", [policy], Deadline.after(10)
                )
            )
        # A policy that needs no signatures to decide (a tag where a digest is required).
        image = f"{pusher.host}/{name}:v1"
        fast = engine.cached_decision(image, [policy, strict])
        assert fast == await engine.verify_image(image, [policy, strict], Deadline.after(10))
        assert fast is not None and not fast.allowed
        # An image no policy governs, and a reference that does not parse.
        elsewhere = "registry.invalid/other:v1"
        unmatched = engine.cached_decision(elsewhere, [])
        assert unmatched == await engine.verify_image(elsewhere, [], Deadline.after(1))
        assert unmatched is not None and "no TrustPolicy governs" in unmatched.reasons[0]
        assert engine.cached_decision("UPPER/Case:v1", [policy]) is None
        # Another policy (another identity) has no verdict cached: the slow path decides.
        other = key_policy(generate_key())
        assert engine.cached_decision(image, [other]) is None


async def test_a_registry_without_the_referrers_api_is_not_asked_again_for_a_while(
    pusher: Pusher, fault_proxy: FaultProxy
) -> None:
    """Distribution has no referrers API: after its first "404" the fallback tag is read
    directly, one request fewer for every later cold image on that host."""
    key = generate_key()
    names = [f"cache/{secrets.token_hex(4)}" for _ in range(3)]
    for name in names:
        digest = await pusher.push_random_image(name, "v1")
        await signer.sign_bundle_v3(pusher, name, digest, key)
    policy = key_policy(key)
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))) as c:
        engine = verifier(c)
        counts = []
        for name in names:
            before = fault_proxy.count()
            decision = await engine.verify_image(
                f"{fault_proxy.host}/{name}:v1", [policy], Deadline.after(10)
            )
            assert decision.allowed, decision.reasons  # the bundle is still found, by its tag
            assert any("no referrers API" in note for note in decision.notes)
            counts.append(fault_proxy.count() - before)
        assert counts[1] == counts[2] < counts[0]
        assert fault_proxy.count(r"/referrers/") == 1


def _answer(status: int, body: bytes) -> Response:
    return Response(status, CIMultiDictProxy(CIMultiDict()), body, "https://r.example/v2/x")


def test_only_a_missing_endpoint_marks_a_registry_as_without_the_api() -> None:
    """A repository that does not exist (an OCI error document) says nothing about the registry:
    remembering it would let anyone who names a missing repository turn the API off for a host."""
    assert _no_such_route(_answer(404, b"404 page not found\n"))  # distribution
    assert _no_such_route(_answer(405, b""))
    unknown = b'{"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}'
    assert not _no_such_route(_answer(404, unknown))
    assert not _no_such_route(_answer(404, b'{"errors": [{"code": "DENIED"}]}'))
    assert not _no_such_route(_answer(400, b"bad request"))
