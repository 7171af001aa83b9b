"""The periodic re-sync: a TrustPolicy deleted while the watch was down stops being enforced.

Kopf's index is played by a dict the test changes as Kopf would (Kopf itself, against kmock, is in
tests/integration/test_operator.py). The API is an aiohttp server on loopback, so the real client
lists it; a deletion the watch never reported is simply a policy the list no longer holds.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest
from aiohttp import web

from signgate.kube.api import KubeApi
from signgate.kube.resync import POLICIES_PATH, resync_once
from signgate.kube.source import ClusterPolicySource, PolicyEntry, policy_entry

PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGmsWpZNuu+SUX70n3lVK4JLsaoV7\n"
    "T+rhea2rQUu29EQiatoLB06QdsmSd+GsQGlQzfcDtsKPzb+B2zLggrWZjg==\n"
    "-----END PUBLIC KEY-----\n"
)


def tp(name: str, uid: str, version: int, images: str = "r.example/**") -> dict[str, Any]:
    return {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": name, "uid": uid, "resourceVersion": str(version), "generation": 1},
        "spec": {"images": [images], "authorities": [{"name": "k", "key": {"pem": PEM}}]},
    }


@dataclass
class Cluster:
    """What the API lists, and what Kopf's index holds (which can differ: that is the point)."""

    listed: list[dict[str, Any]] = field(default_factory=list)
    index: dict[str, list[PolicyEntry]] = field(default_factory=dict)
    status: int = 200
    lists: int = 0
    during_list: Callable[[], None] | None = None

    def observe(self, body: dict[str, Any]) -> None:
        """Kopf indexes an event for ``body``."""
        self.index[body["metadata"]["name"]] = [policy_entry(body)]


async def rebuild(body: Mapping[str, Any]) -> PolicyEntry:
    return policy_entry(body)


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Cluster, KubeApi]]:
    state = Cluster()

    async def list_policies(request: web.Request) -> web.Response:
        state.lists += 1
        if state.during_list is not None:
            state.during_list()
        if state.status != 200:
            return web.json_response({"message": "etcd unavailable"}, status=state.status)
        return web.json_response({"items": state.listed, "metadata": {"resourceVersion": "99"}})

    app = web.Application()
    app.router.add_get(POLICIES_PATH, list_policies)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api = KubeApi(kopf.ConnectionInfo(server=f"http://127.0.0.1:{runner.addresses[0][1]}"))
    try:
        yield state, api
    finally:
        await api.close()
        await runner.cleanup()


def source_on(state: Cluster) -> ClusterPolicySource:
    source = ClusterPolicySource()
    source.attach(policies=state.index, namespaces={})
    source.mark_ready()
    return source


def names(source: ClusterPolicySource) -> list[str]:
    return sorted(policy.name for policy in source.current())


async def test_a_policy_deleted_unseen_stops_governing_and_its_verdicts_are_forgotten(
    cluster: tuple[Cluster, KubeApi], caplog: pytest.LogCaptureFixture
) -> None:
    state, api = cluster
    old = tp("old", "uid-old", 1, "r.example/old/**")
    kept = tp("kept", "uid-kept", 2, "r.example/kept/**")
    state.observe(old)
    state.observe(kept)
    state.listed = [kept]  # "old" was deleted while the watch was down: no event, still indexed
    source = source_on(state)
    assert names(source) == ["kept", "old"]
    old_identity = state.index["old"][0].policy.identity  # type: ignore[union-attr]
    forgotten: list[str] = []

    def forget(identity: str) -> int:
        forgotten.append(identity)
        return 3

    with caplog.at_level(logging.WARNING, logger="signgate.kube.resync"):
        result = await resync_once(source, api, rebuild=rebuild, forget=forget)
    assert result.removed == ("old",)
    assert result.forgotten == 3
    assert forgotten == [old_identity]
    assert names(source) == ["kept"]
    assert not any(p.governs("r.example/old/app") for p in source.current())
    assert "TrustPolicy 'old' (uid uid-old) no longer exists" in caplog.text

    # Re-created under the same name, it is another object: the watch's event puts it in force.
    recreated = tp("old", "uid-old-2", 7)
    state.observe(recreated)
    state.listed = [kept, recreated]
    assert names(source) == ["kept", "old"]
    result = await resync_once(source, api, rebuild=rebuild, forget=forget)
    assert result.removed == ()
    assert names(source) == ["kept", "old"]


async def test_a_failed_list_removes_nothing(cluster: tuple[Cluster, KubeApi]) -> None:
    state, api = cluster
    state.observe(tp("p", "uid-p", 1))
    source = source_on(state)
    for status in (500, 503, 403):  # the API is down, or signgate may no longer list policies
        state.status = status
        result = await resync_once(source, api, rebuild=rebuild)
        assert result.failed is not None and f"HTTP {status}" in result.failed
        assert names(source) == ["p"]
    # No answer at all.
    unreachable = KubeApi(kopf.ConnectionInfo(server="http://127.0.0.1:9"))
    try:
        result = await resync_once(source, unreachable, rebuild=rebuild)
    finally:
        await unreachable.close()
    assert result.failed is not None
    assert names(source) == ["p"]


async def test_a_policy_indexed_while_the_list_was_in_flight_is_kept(
    cluster: tuple[Cluster, KubeApi],
) -> None:
    # The list may predate a policy that the watch delivers while the list is being answered:
    # only what was in force before the list began can be found deleted by it.
    state, api = cluster
    state.observe(tp("p", "uid-p", 1))
    state.listed = [tp("p", "uid-p", 1)]
    state.during_list = lambda: state.observe(tp("late", "uid-late", 2))
    source = source_on(state)
    result = await resync_once(source, api, rebuild=rebuild)
    assert result.removed == ()
    assert names(source) == ["late", "p"]


async def test_a_change_the_watch_missed_is_enforced_until_the_index_moves_on(
    cluster: tuple[Cluster, KubeApi],
) -> None:
    state, api = cluster
    state.observe(tp("p", "uid-p", 1, "r.example/old/**"))
    state.listed = [tp("p", "uid-p", 7, "r.example/new/**")]  # a watch that hung missed this
    source = source_on(state)
    result = await resync_once(source, api, rebuild=rebuild)
    assert result.refreshed == ("p",)
    (policy,) = source.current()
    assert policy.governs("r.example/new/app") and not policy.governs("r.example/old/app")
    assert (await resync_once(source, api, rebuild=rebuild)).refreshed == ()  # already in force

    # The watch recovers and delivers a later version: the index is followed again.
    state.observe(tp("p", "uid-p", 9, "r.example/third/**"))
    (policy,) = source.current()
    assert policy.governs("r.example/third/app")
    state.listed = [tp("p", "uid-p", 9, "r.example/third/**")]
    assert (await resync_once(source, api, rebuild=rebuild)).refreshed == ()
    (policy,) = source.current()
    assert policy.governs("r.example/third/app")


async def test_nothing_is_compared_before_the_policies_are_loaded(
    cluster: tuple[Cluster, KubeApi],
) -> None:
    state, api = cluster
    state.observe(tp("p", "uid-p", 1))
    source = ClusterPolicySource()
    source.attach(policies=state.index, namespaces={})
    result = await resync_once(source, api, rebuild=rebuild)
    assert result.skipped and state.lists == 0
