"""TTL cache and single-flight mechanics."""

from __future__ import annotations

import asyncio

import pytest

from signgate.cache import SingleFlight, TTLCache
from support.clock import FakeClock


def test_entries_expire_individually_and_lru_is_bounded() -> None:
    clock = FakeClock()
    cache: TTLCache[str, int] = TTLCache(max_entries=2, clock=clock)
    cache.put("short", 1, ttl=1)
    cache.put("long", 2, ttl=100)
    assert cache.get("short") == 1
    clock.advance(2)
    assert cache.get("short") is None
    assert cache.get("long") == 2
    cache.put("a", 3, ttl=100)
    cache.put("b", 4, ttl=100)  # evicts the least recently used ("long")
    assert cache.get("long") is None
    assert len(cache) == 2
    assert cache.stats.hits == 2


def test_zero_ttl_stores_nothing_and_discard_where() -> None:
    cache: TTLCache[tuple[str, str], int] = TTLCache(max_entries=10, clock=FakeClock())
    cache.put(("p", "d"), 1, ttl=0)
    assert cache.get(("p", "d")) is None
    cache.put(("p1", "d"), 1, ttl=10)
    cache.put(("p2", "d"), 2, ttl=10)
    assert cache.discard_where(lambda k: k[0] == "p1") == 1
    assert cache.get(("p1", "d")) is None
    assert cache.get(("p2", "d")) == 2


async def test_single_flight_coalesces_and_shares_errors() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiters = [asyncio.create_task(flight.run("k", compute)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == [42] * 50
    assert calls == 1
    assert flight.stats.coalesced == 49
    assert len(flight) == 0

    async def boom() -> int:
        raise ValueError("registry down")

    with pytest.raises(ValueError, match="registry down"):
        await flight.run("e", boom)
    # Errors are not remembered: the next call computes again.
    assert await flight.run("e", compute) == 42


async def test_a_cancelled_caller_does_not_cancel_the_shared_work() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    gate = asyncio.Event()

    async def compute() -> int:
        await gate.wait()
        return 7

    first = asyncio.create_task(flight.run("k", compute))
    second = asyncio.create_task(flight.run("k", compute))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == 7
    with pytest.raises(asyncio.CancelledError):
        await first
