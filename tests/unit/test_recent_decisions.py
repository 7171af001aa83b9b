"""A policy's recent decisions (status.recentDecisions): counts, the window, merging replicas."""

from __future__ import annotations

from signgate.kube.recent import Counts, RecentDecisions, counts_of, status_of
from signgate.kube.recent_status import merged_status
from signgate.policy.evaluate import ImageDecision, PolicyOutcome, failed


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def decision(*outcomes: PolicyOutcome, allowed: bool) -> ImageDecision:
    return ImageDecision(
        "app:v1",
        "docker.io/library/app:v1",
        "sha256:" + "a" * 64,
        allowed,
        outcomes=outcomes,
        reasons=() if allowed else ("denied",),
        name="docker.io/library/app",
        governed_by=tuple((o.policy, o.mode) for o in outcomes),
    )


def test_counts_per_policy_by_outcome_and_mode() -> None:
    recent = RecentDecisions(clock=Clock())
    ok = PolicyOutcome("release", "Enforce", True)
    bad = PolicyOutcome("release", "Enforce", False, reason="no signature found")
    warn = PolicyOutcome("sandbox", "Warn", False, reason="unsigned")
    recent.record([decision(ok, warn, allowed=True)], "Pod a/x")
    recent.record([decision(bad, allowed=False)], "Pod a/y")
    release = recent.counts("release")
    assert (release.allowed, release.denied, release.warned) == (1, 1, 0)
    assert release.last_denial is not None
    assert release.last_denial.object == "Pod a/y"
    assert release.last_denial.reason == "no signature found"
    assert release.last_denial.image == "docker.io/library/app@sha256:" + "a" * 64
    sandbox = recent.counts("sandbox")
    assert (sandbox.allowed, sandbox.denied, sandbox.warned) == (0, 0, 1)
    assert sandbox.last_denial is None


def test_failures_without_an_outcome_count_by_each_policys_mode() -> None:
    recent = RecentDecisions(clock=Clock())
    timeout = failed("app:v1", "deadline exceeded", policies=())
    # A registry failure under an Enforce and a Warn policy: denied for one, warned for the other.
    mixed = ImageDecision(
        "app:v1",
        None,
        None,
        False,
        reasons=("registry down",),
        governed_by=(("release", "Enforce"), ("sandbox", "Warn")),
    )
    recent.record([timeout, mixed], "Deployment a/web")
    assert recent.counts("release").denied == 1
    assert recent.counts("release").last_denial is not None
    assert recent.counts("sandbox").warned == 1
    assert recent.policies() == ["release", "sandbox"]


def test_old_decisions_leave_the_window() -> None:
    clock = Clock()
    recent = RecentDecisions(clock=clock, window=3600, bucket=60)
    bad = PolicyOutcome("release", "Enforce", False, reason="unsigned")
    recent.record([decision(bad, allowed=False)], "Pod a/x")
    clock.now += 1800
    recent.record([decision(PolicyOutcome("release", "Enforce", True), allowed=True)], "Pod a/y")
    assert recent.counts("release") == Counts(1, 1, 0, recent.counts("release").last_denial)
    clock.now += 1900  # the denial is now 3700 s old, the admission 1900 s
    counts = recent.counts("release")
    assert (counts.allowed, counts.denied, counts.last_denial) == (1, 0, None)


def test_status_round_trip_and_replica_merge() -> None:
    clock = Clock()
    recent = RecentDecisions(clock=clock)
    bad = PolicyOutcome("release", "Enforce", False, reason="unsigned")
    recent.record([decision(bad, allowed=False)], "Pod a/x")
    mine = status_of(recent.counts("release"), 3600)
    assert counts_of(mine) == recent.counts("release")
    other = {
        "allowed": 5,
        "denied": 2,
        "warned": 0,
        "lastDenial": {
            "time": "2020-01-01T00:00:00Z",
            "image": "old",
            "object": "Pod b/z",
            "reason": "older",
        },
        "updated": "2027-01-15T07:59:00Z",
    }
    stale = {**other, "updated": "2020-01-01T00:00:00Z"}
    patch = merged_status(
        mine,
        {"replicas": {"b": other, "gone": stale, "me": {"allowed": 99}}},
        replica="me",
        now=clock.now,
        window=3600,
    )
    # The sum covers this replica and the fresh one; the stale one is removed (merge-patch null).
    assert (patch["allowed"], patch["denied"]) == (5, 3)
    assert patch["lastDenial"]["reason"] == "unsigned"  # type: ignore[index]
    replicas = patch["replicas"]
    assert isinstance(replicas, dict)
    assert replicas["gone"] is None
    assert replicas["me"]["denied"] == 1
    assert "b" not in replicas  # other replicas' entries are theirs to write


def test_counts_without_the_last_denial_when_asked() -> None:
    recent = RecentDecisions(clock=Clock(), last_denial=False)
    bad = PolicyOutcome("release", "Enforce", False, reason="unsigned")
    recent.record([decision(bad, allowed=False)], "Pod tenant-a/secret-project")
    counts = recent.counts("release")
    assert (counts.denied, counts.last_denial) == (1, None)
    assert status_of(counts, 3600)["lastDenial"] is None
