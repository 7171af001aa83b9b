"""Proof that Kopf 1.45 runs against the fake cluster (kmock's emulator, tests/support/kube.py).

The operator here is a throwaway one defined in the tests, not signgate's: an index of
TrustPolicies, a namespace event handler that records what the index held when it ran, a status
reporter and an Event poster.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kmock
import kopf
import pytest
from kopf._core.engines.activities import ActivityError  # not exported by kopf 1.45

from support.kube import (
    NAMESPACES,
    TRUSTPOLICIES,
    FakeCluster,
    KubeApiError,
    eventually,
    namespace,
    run_kopf,
    trust_policy,
)

TP = (TRUSTPOLICIES.group, TRUSTPOLICIES.version, TRUSTPOLICIES.plural)


@dataclass
class Seen:
    """What the operator's handlers saw; written in Kopf's thread, read in the test's."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    indexed_at: dict[str, float] = field(default_factory=dict)
    # (namespace name, event type, sorted policy names in the index at that moment, time)
    namespace_events: list[tuple[str, str | None, list[str], float]] = field(default_factory=list)

    def namespaces(self) -> list[tuple[str, str | None, list[str], float]]:
        with self.lock:
            return list(self.namespace_events)


def make_registry(
    seen: Seen, *, index_delay: float = 0.0, hold: Mapping[str, threading.Event] | None = None
) -> kopf.OperatorRegistry:
    """The throwaway operator. The first indexing of each policy can be slowed down or held."""
    registry = kopf.OperatorRegistry()
    holds = dict(hold or {})

    @kopf.index(*TP, registry=registry, id="policies")
    async def policies(name: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
        with seen.lock:
            first = name not in seen.indexed_at
        if first and index_delay:  # an ungated handler would run before this finishes
            await asyncio.sleep(index_delay)
        if first and name in holds:
            await asyncio.to_thread(holds[name].wait, 10)
        with seen.lock:
            seen.indexed_at.setdefault(name, time.monotonic())
        return {name: dict(spec)}

    @kopf.on.event("", "v1", "namespaces", registry=registry, id="policies-loaded")
    def namespace_event(name: str, type: str | None, policies: kopf.Index, **_: Any) -> None:
        with seen.lock:
            seen.namespace_events.append((name, type, sorted(policies), time.monotonic()))

    @kopf.on.resume(*TP, registry=registry, id="status")
    @kopf.on.create(*TP, registry=registry, id="status")
    @kopf.on.update(*TP, registry=registry, id="status")
    def report(body: kopf.Body, spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
        ready = "True" if spec.get("valid", True) else "False"
        patch.status["observedGeneration"] = body.metadata["generation"]
        patch.status["conditions"] = [{"type": "Ready", "status": ready, "reason": "Tested"}]
        if ready == "False":
            kopf.warn(body, reason="InvalidTrustPolicy", message=f"{body.metadata.name} is bad")

    return registry


async def test_cluster_basics(kube: FakeCluster) -> None:
    """The emulator itself: namespaces, versions, status subresource, errors, injected faults."""
    names = {ns["metadata"]["name"]: ns for ns in await kube.list(NAMESPACES)}
    assert set(names) == {"default", "kube-system"}
    assert names["default"]["metadata"]["labels"] == {"kubernetes.io/metadata.name": "default"}

    created = await kube.create(trust_policy("p", {"a": 1}) | {"status": {"ignored": True}})
    assert "status" not in created  # a create ignores .status (status subresource)
    assert created["metadata"]["generation"] == 1
    rv = int(created["metadata"]["resourceVersion"])

    patched = await kube.patch(TRUSTPOLICIES, "p", {"spec": {"a": 2}, "status": {"x": 1}})
    assert patched["spec"] == {"a": 2}
    assert "status" not in patched  # the main resource ignores .status
    assert patched["metadata"]["generation"] == 2
    assert int(patched["metadata"]["resourceVersion"]) > rv

    status = await kube.patch(TRUSTPOLICIES, "p", {"status": {"x": 1}}, subresource="status")
    assert status["status"] == {"x": 1}
    assert status["metadata"]["generation"] == 2  # status changes do not bump the generation
    same = await kube.patch(TRUSTPOLICIES, "p", {"status": {"x": 1}}, subresource="status")
    assert same["metadata"]["resourceVersion"] == status["metadata"]["resourceVersion"]

    with pytest.raises(KubeApiError) as conflict:
        await kube.create(trust_policy("p"))
    assert conflict.value.status == 409
    stale = [{"op": "test", "path": "/metadata/resourceVersion", "value": str(rv)}]
    with pytest.raises(KubeApiError) as invalid:
        await kube.patch(TRUSTPOLICIES, "p", [*stale, {"op": "remove", "path": "/spec/a"}])
    assert invalid.value.status == 422

    # Finalizers hold a deletion until they are removed.
    await kube.patch(TRUSTPOLICIES, "p", {"metadata": {"finalizers": ["test/hold"]}})
    deleting = await kube.delete(TRUSTPOLICIES, "p")
    assert deleting["metadata"]["deletionTimestamp"]
    assert await kube.find(TRUSTPOLICIES, "p") is not None
    await kube.patch(TRUSTPOLICIES, "p", {"metadata": {"finalizers": None}})
    assert await kube.find(TRUSTPOLICIES, "p") is None
    with pytest.raises(KubeApiError) as gone:
        await kube.get(TRUSTPOLICIES, "p")
    assert gone.value.status == 404

    # A fault injected with kmock's DSL fails the write, and the write is not applied.
    kube.emulator[kmock.method.PATCH, TRUSTPOLICIES.ref, kmock.name("q")][:1] << 500
    await kube.create(trust_policy("q", {"a": 1}))
    with pytest.raises(KubeApiError) as injected:
        await kube.patch(TRUSTPOLICIES, "q", {"spec": {"a": 2}})
    assert injected.value.status == 500
    assert (await kube.get(TRUSTPOLICIES, "q"))["spec"] == {"a": 1}
    assert (await kube.patch(TRUSTPOLICIES, "q", {"spec": {"a": 2}}))["spec"] == {"a": 2}


async def test_index_gates_handlers_and_follows_changes(kube: FakeCluster) -> None:
    """Kopf runs no regular handler before every index has its initial listing indexed.

    The indexer sleeps 0.3 s per policy, the namespace handler is instant: without the gate
    (checked by patching it out of Kopf's processing) the first namespace event sees no policies.
    """
    # Two policies exist before the operator starts: they come in the initial listing.
    await kube.create(trust_policy("alpha", {"images": ["a/*"]}))
    await kube.create(trust_policy("beta", {"images": ["b/*"]}))
    seen = Seen()
    registry = make_registry(seen, index_delay=0.3)

    async with run_kopf(kube, registry=registry) as op:
        first = await eventually(seen.namespaces, message="namespace events")
        # Kopf held the namespace handler until both (slow) index entries were in.
        assert first[0][2] == ["alpha", "beta"]
        assert first[0][3] > max(seen.indexed_at.values())
        events = await eventually(lambda: len(seen.namespaces()) >= 2 and seen.namespaces())
        assert {name for name, *_ in events} == {"default", "kube-system"}
        assert all(policies == ["alpha", "beta"] for _, _, policies, _ in events)
        assert await op.index("policies") == {
            "alpha": [{"images": ["a/*"]}],
            "beta": [{"images": ["b/*"]}],
        }

        # An update replaces the indexed value.
        await kube.patch(TRUSTPOLICIES, "alpha", {"spec": {"images": ["a/*", "c/*"]}})

        async def alpha_updated() -> bool:
            return (await op.index("policies")).get("alpha") == [{"images": ["a/*", "c/*"]}]

        await eventually(alpha_updated, message="index update")

        # A deletion removes it.
        await kube.delete(TRUSTPOLICIES, "beta")

        async def beta_gone() -> bool:
            return "beta" not in await op.index("policies")

        await eventually(beta_gone, message="index deletion")

        # A new namespace is seen with the current index.
        await kube.create(namespace("team-a"))
        new = await eventually(lambda: [e for e in seen.namespaces() if e[0] == "team-a"])
        assert new[0][1] == "ADDED"
        assert new[0][2] == ["alpha"]


async def test_gating_is_only_at_startup(kube: FakeCluster) -> None:
    """Once the indices were complete, Kopf no longer holds handlers for new index entries."""
    seen = Seen()
    release = threading.Event()
    registry = make_registry(seen, hold={"late": release})
    async with run_kopf(kube, registry=registry) as op:
        await eventually(lambda: len(seen.namespaces()) >= 2)  # no policies: nothing to wait for
        await kube.create(trust_policy("late"))
        await kube.create(namespace("team-b"))
        event = await eventually(lambda: [e for e in seen.namespaces() if e[0] == "team-b"])
        assert event[0][2] == []  # ran while "late" was still being indexed
        release.set()

        async def late_indexed() -> bool:
            return "late" in await op.index("policies")

        await eventually(late_indexed)


async def test_status_and_events(kube: FakeCluster) -> None:
    await kube.create(trust_policy("good", {"valid": True}))
    seen = Seen()
    async with run_kopf(kube, registry=make_registry(seen)):
        # on.create (a policy never handled before, found by the initial listing) writes the
        # status through the status subresource.
        body = await kube.wait_for_object(
            TRUSTPOLICIES, "good", lambda b: b.get("status", {}).get("conditions")
        )
        assert body["status"]["conditions"] == [
            {"type": "Ready", "status": "True", "reason": "Tested"}
        ]
        assert body["status"]["observedGeneration"] == 1

        # on.create: a new policy; kopf.warn() posts an Event for it.
        await kube.create(trust_policy("bad", {"valid": False}))
        bad = await kube.wait_for_object(
            TRUSTPOLICIES, "bad", lambda b: b.get("status", {}).get("conditions")
        )
        assert bad["status"]["conditions"][0]["status"] == "False"
        events = await kube.eventually(lambda: kube.events(reason="InvalidTrustPolicy"))
        assert events[0]["type"] == "Warning"
        assert events[0]["message"] == "bad is bad"
        assert events[0]["involvedObject"]["kind"] == "TrustPolicy"
        assert events[0]["involvedObject"]["name"] == "bad"
        assert events[0]["metadata"]["namespace"] == "default"  # cluster-scoped object

        # on.update: a spec change bumps the generation; the status follows it.
        await kube.patch(TRUSTPOLICIES, "good", {"spec": {"valid": False}})
        good = await kube.wait_for_object(
            TRUSTPOLICIES, "good", lambda b: b["status"]["observedGeneration"] == 2
        )
        assert good["status"]["conditions"][0]["status"] == "False"


async def test_injected_api_fault_is_retried(kube: FakeCluster) -> None:
    """A status patch answered 500 (kmock's DSL) is retried by Kopf and then succeeds."""
    status_patch = kube.emulator[kmock.method.PATCH, TRUSTPOLICIES.ref, kmock.subresource("status")]
    status_patch[:1] << 500  # only the first one fails
    await kube.create(trust_policy("p"))
    async with run_kopf(kube, registry=make_registry(Seen())):
        body = await kube.wait_for_object(TRUSTPOLICIES, "p", lambda b: "status" in b)
    assert body["status"]["conditions"][0]["status"] == "True"
    attempts = [r for r in kube.writes if r.url.path.endswith("/p/status")]
    assert len(attempts) == 2


async def test_operator_failure_is_raised(kube: FakeCluster) -> None:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def broken(**_: Any) -> None:
        raise kopf.PermanentError("no good")

    with pytest.raises(ActivityError, match="One or more handlers failed"):
        async with run_kopf(kube, registry=registry):
            pytest.fail("the operator should not have started")
