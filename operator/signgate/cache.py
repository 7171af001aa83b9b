"""Bounded TTL caches and single-flight for the verification engine.

What may be cached, and for how long, is a security decision made by the caller (`verifier.py`):
results are keyed by digest and by the policy's identity, never by tag; failures to decide are
never cached. This module only provides the mechanics: per-entry expiry on the event loop's
monotonic clock, a size bound with least-recently-used eviction, and coalescing of concurrent
identical computations.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class CacheStats:
    """Counters for metrics and tests."""

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    """Callers that waited for an identical computation already in flight."""


class TTLCache(Generic[K, V]):
    """A least-recently-used cache whose entries each carry their own expiry time."""

    def __init__(self, *, max_entries: int, clock: Callable[[], float] | None = None) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock
        self.stats = CacheStats()

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    def get(self, key: K) -> V | None:
        """The live value for ``key``, or None (counted as a hit or a miss)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._now():
            if entry is not None:
                del self._entries[key]
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry[1]

    def peek(self, key: K) -> V | None:
        """Like `get`, but not counted in the stats (the caller counts what it uses)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._now():
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        """Keep ``value`` for ``ttl`` seconds (a non-positive ttl stores nothing)."""
        if ttl <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (self._now() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def discard_where(self, predicate: Callable[[K], bool]) -> int:
        """Drop every entry whose key matches; returns how many went."""
        doomed = [key for key in self._entries if predicate(key)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class SingleFlight(Generic[K, V]):
    """Run one computation per key at a time; concurrent callers share its result or error.

    The computation runs in its own task, so one caller being cancelled (its client went away)
    does not cancel the work the others are waiting for.
    """

    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Future[V]] = {}
        self.stats = CacheStats()

    async def run(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        """The result of ``compute()``, shared with every concurrent caller using ``key``."""
        future = self._inflight.get(key)
        if future is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(future)

        async def runner() -> V:
            return await compute()

        task = asyncio.get_running_loop().create_task(runner(), name=f"singleflight:{key!r:.80}")
        self._inflight[key] = task

        def finished(done: asyncio.Future[V]) -> None:
            self._inflight.pop(key, None)
            if not done.cancelled():
                done.exception()  # retrieved: callers that went away must not leave it unread

        task.add_done_callback(finished)
        return await asyncio.shield(task)

    def __len__(self) -> int:
        return len(self._inflight)
