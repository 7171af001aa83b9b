"""Each policy's recent decisions: counts over the last hour and the last denial. No I/O.

The webhook records every (non-dry-run) validation here; the operator publishes the numbers in
each TrustPolicy's ``status.recentDecisions`` so that ``kubectl get trustpolicies`` answers "is this
policy refusing things right now, and what?" without anyone reading logs or metrics.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from signgate.policy.evaluate import ImageDecision

WINDOW_SECONDS = 3600
BUCKET_SECONDS = 60
MAX_POLICIES = 10_000
MAX_REASON_CHARS = 1024


@dataclass(frozen=True, slots=True)
class Denial:
    """The last denial a policy caused."""

    time: float
    """Unix seconds."""
    image: str
    object: str
    """``Kind namespace/name`` of what was being admitted."""
    reason: str


@dataclass(frozen=True, slots=True)
class Counts:
    """A policy's decisions within the window."""

    allowed: int = 0
    denied: int = 0
    warned: int = 0
    """Failed, but let through by Warn or Audit mode."""
    last_denial: Denial | None = None

    def __add__(self, other: Counts) -> Counts:
        latest = max(
            (d for d in (self.last_denial, other.last_denial) if d is not None),
            key=lambda d: d.time,
            default=None,
        )
        return Counts(
            self.allowed + other.allowed,
            self.denied + other.denied,
            self.warned + other.warned,
            latest,
        )


class RecentDecisions:
    """Per-policy counts in one-minute buckets over a sliding window."""

    def __init__(
        self,
        *,
        window: float = WINDOW_SECONDS,
        bucket: float = BUCKET_SECONDS,
        clock: Callable[[], float] = time.time,
        last_denial: bool = True,
    ) -> None:
        self.window = window
        self._keep_denials = last_denial
        """Whether the last denial (image, object, reason) is kept: in a multi-tenant cluster,
        anyone who may read TrustPolicies would see other namespaces' workloads in it."""
        self._bucket = bucket
        self._clock = clock
        self._buckets: dict[str, dict[int, list[int]]] = {}
        self._last_denial: dict[str, Denial] = {}
        self.version = 0
        """Grows with every recorded decision (to tell whether anything changed)."""

    def _add(self, policy: str, slot: int, which: int) -> None:
        if policy not in self._buckets and len(self._buckets) >= MAX_POLICIES:
            return
        counts = self._buckets.setdefault(policy, {}).setdefault(slot, [0, 0, 0])
        counts[which] += 1

    def record(self, decisions: Iterable[ImageDecision], obj: str) -> None:
        """Count one admission's image decisions against every policy that governed them."""
        now = self._clock()
        slot = int(now // self._bucket)
        for decision in decisions:
            judged = {outcome.policy: outcome for outcome in decision.outcomes}
            for policy, mode in decision.governed_by:
                outcome = judged.get(policy)
                if outcome is not None and outcome.satisfied:
                    self._add(policy, slot, 0)
                    continue
                if mode != "Enforce":
                    self._add(policy, slot, 2)
                    continue
                self._add(policy, slot, 1)
                if not self._keep_denials:
                    continue
                reason = outcome.reason if outcome is not None and outcome.reason else ""
                reason = reason or (decision.reasons[0] if decision.reasons else "denied")
                self._last_denial[policy] = Denial(
                    now, decision.pinned or decision.image, obj, reason[:MAX_REASON_CHARS]
                )
            self.version += 1

    def counts(self, policy: str) -> Counts:
        """``policy``'s decisions within the window (older buckets are dropped)."""
        now = self._clock()
        oldest = int((now - self.window) // self._bucket) + 1
        buckets = self._buckets.get(policy, {})
        for slot in [s for s in buckets if s < oldest]:
            del buckets[slot]
        totals = [sum(c[i] for c in buckets.values()) for i in range(3)]
        denial = self._last_denial.get(policy)
        if denial is not None and denial.time < now - self.window:
            denial = None
        return Counts(totals[0], totals[1], totals[2], denial)

    def policies(self) -> Sequence[str]:
        """Every policy with decisions recorded (recently or not)."""
        return list(self._buckets)


def _timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def status_of(counts: Counts, window: float) -> dict[str, object]:
    """``counts`` as the ``status.recentDecisions`` fields."""
    status: dict[str, object] = {
        "windowSeconds": int(window),
        "allowed": counts.allowed,
        "denied": counts.denied,
        "warned": counts.warned,
    }
    denial = counts.last_denial
    status["lastDenial"] = (
        {
            "time": _timestamp(denial.time),
            "image": denial.image,
            "object": denial.object,
            "reason": denial.reason,
        }
        if denial is not None
        else None
    )
    return status


def counts_of(status: Mapping[str, object]) -> Counts:
    """The inverse of `status_of` (for other replicas' published numbers); lenient."""

    def number(key: str) -> int:
        value = status.get(key)
        return value if isinstance(value, int) and value >= 0 else 0

    denial = status.get("lastDenial")
    last = None
    if isinstance(denial, Mapping):
        try:
            when: float | None = calendar.timegm(
                time.strptime(str(denial.get("time")), "%Y-%m-%dT%H:%M:%SZ")
            )
        except ValueError:
            when = None
        if when is not None:
            last = Denial(
                when,
                str(denial.get("image", "")),
                str(denial.get("object", "")),
                str(denial.get("reason", "")),
            )
    return Counts(number("allowed"), number("denied"), number("warned"), last)
