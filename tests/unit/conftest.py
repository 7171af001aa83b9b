"""Fixtures for unit tests of the registry client and the engine on the in-memory registry.

``tests/unit`` runs with only the Python dependencies (no registry, cosign, kube-apiserver, helm
or Node.js; ``tests/conftest.py`` refuses to collect a unit test that needs one). The registry
here is `support.memory_registry.MemoryRegistry`, plugged in below the real client as its
`RoundTrip`, so the auth flow, retries, caps and digest checks above it run as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from signgate.registry import RegistryClient, RegistryOptions
from support.memory_registry import ManualClock, MemoryPusher, MemoryRegistry


@pytest.fixture
def memory_registry() -> MemoryRegistry:
    """A fresh in-memory registry on ``registry.test`` with the referrers API."""
    return MemoryRegistry()


@pytest.fixture
def memory_pusher(memory_registry: MemoryRegistry) -> MemoryPusher:
    """Writes into ``memory_registry`` (for ``support.signer``); not counted in its requests."""
    return memory_registry.pusher()


@pytest.fixture
async def backoff(monkeypatch: pytest.MonkeyPatch) -> VirtualSleep:
    """The registry client's pauses between retries, recorded and skipped in virtual time.

    `Exchanger.backoff` still decides everything (the delay, Retry-After, whether the deadline
    affords the pause); only the sleep it is given (``RegistryClient(sleep=...)``) is virtual: the
    test's event loop clock jumps by the pause instead of waiting, so deadlines (on that clock)
    see the time as spent. A test of four attempts with 0.25 + 0.5 + 1 s of back-off takes no
    time, and "the deadline affords the first pause but not the second" does not depend on how
    fast the machine is.
    """
    loop = asyncio.get_running_loop()
    sleep = VirtualSleep()
    real_time = loop.time
    monkeypatch.setattr(loop, "time", lambda: real_time() + sum(sleep))
    return sleep


class VirtualSleep(list[float]):
    """A sleep that records its delays and returns at once (the loop clock adds them up)."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
async def registry_client(
    memory_registry: MemoryRegistry, backoff: VirtualSleep, clock: ManualClock
) -> AsyncIterator[RegistryClient]:
    """The real client, default options (verified https), on ``memory_registry``, with the
    virtual back-off and the manual clock."""
    async with RegistryClient(
        RegistryOptions(), round_trip=memory_registry, monotonic=clock, sleep=backoff
    ) as client:
        yield client


@pytest.fixture
def clock() -> ManualClock:
    """A monotonic clock for the engine's caches that moves only when a test says so."""
    return ManualClock()
