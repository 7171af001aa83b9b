"""A verdict is the same function of (policy, image reference, registry contents) on every
replica, fresh or warm (issue 15, item 1; docs/adr/0001).

One digest D lives in two repositories: ``team-a/app@D`` is signed by the trusted key,
``team-b/app@D`` is not, and ``missing/app@D`` names a repository that does not exist.
Signatures are read from the image's own repository, so these are three different questions; a
cache keyed by the digest alone answered one with another's verdict (team-b admitted after
team-a; team-a denied for 30 s after someone asked about team-b). Each test here failed on that
cache.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Callable, Mapping

import pytest

from signgate.deadline import Deadline
from signgate.engine import Verifier
from signgate.engine.trusted_root_file import default_trusted_root
from signgate.registry import RegistryClient, RegistryOptions, Response
from support import signer
from support.engine import key_policy
from support.formats import generate_key
from support.memory_registry import ManualClock, MemoryPusher, MemoryRegistry

KEY = generate_key()
POLICY = key_policy(KEY)
EXPECTED = {"team-a": True, "team-b": False, "missing": False}


async def _three_images(pusher: MemoryPusher) -> dict[str, str]:
    digest = await pusher.push_random_image("team-a/app", "v1")
    await signer.sign_legacy(pusher, "team-a/app", digest, KEY)
    assert await pusher.copy_manifest("team-a/app", digest, "team-b/app", "v1") == digest
    host = pusher.host
    return {
        "team-a": f"{host}/team-a/app@{digest}",
        "team-b": f"{host}/team-b/app@{digest}",
        "missing": f"{host}/missing/app@{digest}",
    }


async def _fresh_verdict(registry: MemoryRegistry, image: str) -> bool:
    async with RegistryClient(RegistryOptions(), round_trip=registry) as client:
        decision = await Verifier(client).verify_image(image, [POLICY], Deadline.after(10))
    return decision.allowed


@pytest.mark.parametrize("order", list(itertools.permutations(EXPECTED)))
async def test_a_warm_engine_answers_what_a_fresh_one_does_in_every_order(
    memory_pusher: MemoryPusher,
    memory_registry: MemoryRegistry,
    registry_client: RegistryClient,
    clock: ManualClock,
    order: tuple[str, ...],
) -> None:
    images = await _three_images(memory_pusher)
    fresh = {name: await _fresh_verdict(memory_registry, image) for name, image in images.items()}
    assert fresh == EXPECTED

    warm = Verifier(registry_client, monotonic=clock)
    for _ in range(2):  # the second round is answered from the caches
        for name in order:
            decision = await warm.verify_image(images[name], [POLICY], Deadline.after(10))
            assert decision.allowed is fresh[name], (name, order, decision.reasons)
            cached = warm.cached_decision(images[name], [POLICY])
            assert cached is not None
            assert cached.allowed is fresh[name]
        team_b = warm.cached_decision(images["team-b"], [POLICY])
        assert team_b is not None
        assert not team_b.authorities  # never "signed by the release key" on another's say-so


async def test_concurrent_checks_of_one_digest_in_two_repositories_keep_their_own_verdicts(
    memory_pusher: MemoryPusher, registry_client: RegistryClient, clock: ManualClock
) -> None:
    images = await _three_images(memory_pusher)
    warm = Verifier(registry_client, monotonic=clock)
    names = list(images) * 3
    decisions = await asyncio.gather(
        *(warm.verify_image(images[n], [POLICY], Deadline.after(10)) for n in names)
    )
    assert [d.allowed for d in decisions] == [EXPECTED[n] for n in names]
    for name, image in images.items():
        cached = warm.cached_decision(image, [POLICY])
        assert cached is not None
        assert cached.allowed is EXPECTED[name]


class _PausingRoundTrip:
    """The in-memory registry, holding every request whose URL matches until released."""

    def __init__(self, registry: MemoryRegistry, matches: Callable[[str], bool]) -> None:
        self.registry = registry
        self.matches = matches
        self.paused = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        tls: ssl.SSLContext | bool,
        max_bytes: int,
        error_bytes: int | None,
        max_redirects: int,
        on_status: Callable[[int], None],
        data: Mapping[str, str] | None = None,
    ) -> Response:
        if self.matches(url):
            self.paused.set()
            await self.release.wait()
        return await self.registry(
            method,
            url,
            headers=headers,
            tls=tls,
            max_bytes=max_bytes,
            error_bytes=error_bytes,
            max_redirects=max_redirects,
            on_status=on_status,
            data=data,
        )

    async def close(self) -> None:
        await self.registry.close()


async def test_a_verdict_reached_under_a_replaced_trusted_root_is_not_kept(
    memory_pusher: MemoryPusher, memory_registry: MemoryRegistry, clock: ManualClock
) -> None:
    # A check that started under the old root finishes after the new root is in force: its
    # verdict must not be served under the new root (it used to be, for an hour).
    images = await _three_images(memory_pusher)
    pausing = _PausingRoundTrip(memory_registry, lambda url: url.endswith(".sig"))
    async with RegistryClient(RegistryOptions(), round_trip=pausing) as client:
        engine = Verifier(client, trusted_root=default_trusted_root(), monotonic=clock)
        check = asyncio.ensure_future(
            engine.verify_image(images["team-a"], [POLICY], Deadline.after(10))
        )
        await pausing.paused.wait()
        engine.trusted_root = default_trusted_root()  # a reload: same content, new root
        pausing.release.set()
        assert (await check).allowed
        assert engine.cached_decision(images["team-a"], [POLICY]) is None
        # Asked again under the new root, it is checked and then cached under that root.
        assert (await engine.verify_image(images["team-a"], [POLICY], Deadline.after(10))).allowed
        assert engine.cached_decision(images["team-a"], [POLICY]) is not None
