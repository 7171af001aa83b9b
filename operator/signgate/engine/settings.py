"""The engine's settings: what it does with ungoverned images, how long it may reuse what it
learned, and how far shared work may outlive the request that started it. Caching rules and why
they are safe: docs/adr/0001-verdict-cache-keys.md."""

from __future__ import annotations

from dataclasses import dataclass, field

from signgate.engine.discovery import DiscoveryLimits
from signgate.policy.evaluate import UnmatchedAction


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """How long the engine may reuse what it learned. Zero disables a cache."""

    tag_ttl: float = 10.0
    """tag → digest. Short: a moved tag is seen within this many seconds."""
    verified_ttl: float = 3600.0
    """A satisfied (policy, digest) outcome."""
    unverified_ttl: float = 30.0
    """An unsatisfied outcome ("not signed", "bad signature"): a new signature is seen this soon."""
    max_entries: int = 10_000


@dataclass(frozen=True, slots=True)
class VerifierSettings:
    """Engine-wide choices."""

    unmatched: UnmatchedAction = "deny"
    """What happens to an image no TrustPolicy governs."""
    discovery: DiscoveryLimits = field(default_factory=DiscoveryLimits)
    cache: CacheSettings = field(default_factory=CacheSettings)


WORK_SECONDS = 30.0
"""How long shared work (a tag resolution, a verification) may go on after the request that started
it stopped waiting: what it learns is cached for the requests that follow."""
