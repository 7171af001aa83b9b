"""A monotonic clock that moves only when a test says so, for everything that expires.

Pass it as ``TTLCache(clock=...)`` or ``Verifier(client, monotonic=...)``: a test then advances time
past a TTL instead of sleeping through it, and stays right on a machine too busy to keep time.
"""

from __future__ import annotations


class FakeClock:
    """Reads ``now`` (seconds, from 0); `advance` moves it forward."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "a monotonic clock never goes back"
        self.now += seconds
