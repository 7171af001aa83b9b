"""One deadline per operation, shared by every request made on its behalf."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Deadline:
    """An absolute point on the event loop's monotonic clock.

    An admission review or a ``signgate verify`` run creates one and passes it down; every registry
    call wraps itself in ``asyncio.timeout_at(deadline.at)`` so that retries, token fetches and body
    reads together can never outlive it.
    """

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now on the running loop's clock."""
        return cls(asyncio.get_running_loop().time() + seconds)

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - asyncio.get_running_loop().time())

    def expired(self) -> bool:
        """True once no time is left."""
        return self.remaining() <= 0.0
