"""A namespace the watch has not delivered yet: its labels are read, or the admission is denied.

Someone allowed to create namespaces must not win a race against the namespace watch: until the
watch delivers a new namespace, the index knows only its name, and a TrustPolicy that selects it
by label would be skipped. The API is an aiohttp server on loopback (the real client reads it);
against a real kube-apiserver, see tests/e2e/test_operator_cluster.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest
from aiohttp import web

from signgate.admission.decide import decide_review
from signgate.admission.review import parse_review
from signgate.engine.verifier import Verifier
from signgate.errors import NamespaceLabelsUnknownError
from signgate.kube.api import KubeApi
from signgate.kube.source import ClusterPolicySource, policy_entry
from signgate.registry import RegistryClient
from support import reviews

PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGmsWpZNuu+SUX70n3lVK4JLsaoV7\n"
    "T+rhea2rQUu29EQiatoLB06QdsmSd+GsQGlQzfcDtsKPzb+B2zLggrWZjg==\n"
    "-----END PUBLIC KEY-----\n"
)
NAME_LABEL = "kubernetes.io/metadata.name"


def tp(name: str, selector: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "images": ["r.example/**"],
        "authorities": [{"name": "k", "key": {"pem": PEM}}],
    }
    if selector is not None:
        spec["namespaceSelector"] = selector
    return {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"},
        "spec": spec,
    }


STRICT = tp("strict", {"matchLabels": {"tier": "prod"}})


@dataclass
class Api:
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    status: int = 200
    hang: bool = False
    reads: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def api() -> AsyncIterator[tuple[Api, KubeApi]]:
    state = Api()

    async def read(request: web.Request) -> web.Response:
        state.reads += 1
        name = request.match_info["name"]
        if state.hang:
            await state.released.wait()  # until the test ends
        if state.status != 200:
            return web.json_response({"message": "unavailable"}, status=state.status)
        if name not in state.namespaces:
            return web.json_response({"message": f"namespaces {name!r} not found"}, status=404)
        labels = {NAME_LABEL: name, **state.namespaces[name]}
        return web.json_response(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        )

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{name}", read)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    client = KubeApi(kopf.ConnectionInfo(server=f"http://127.0.0.1:{runner.addresses[0][1]}"))
    try:
        yield state, client
    finally:
        state.released.set()
        await client.close()
        await runner.cleanup()


def source_with(
    client: KubeApi | None, *bodies: dict[str, Any], namespaces: dict[str, Any] | None = None
) -> ClusterPolicySource:
    source = ClusterPolicySource(client, namespace_read_seconds=0.3)
    index = {body["metadata"]["name"]: [policy_entry(body)] for body in bodies}
    source.attach(policies=index, namespaces=namespaces if namespaces is not None else {})
    source.mark_ready()
    return source


async def test_a_namespace_not_yet_watched_is_read_so_its_label_selected_policy_governs(
    api: tuple[Api, KubeApi],
) -> None:
    state, client = api
    state.namespaces["fresh"] = {"tier": "prod"}
    watched: dict[str, list[dict[str, str]]] = {}
    source = source_with(client, STRICT, namespaces=watched)
    (strict,) = source.current()

    # A Deployment's worth of Pods in the new namespace at once: one read, shared.
    answers = await asyncio.gather(*(source.namespace_labels("fresh") for _ in range(20)))
    assert all(labels == {NAME_LABEL: "fresh", "tier": "prod"} for labels in answers)
    assert strict.selects_namespace(answers[0])
    assert state.reads == 1
    assert await source.namespace_labels("fresh") == answers[0]  # kept for a while
    assert state.reads == 1

    # Once the watch has delivered it, the index answers (it follows later label changes).
    watched["fresh"] = [{NAME_LABEL: "fresh", "tier": "dev"}]
    labels = await source.namespace_labels("fresh")
    assert labels == {NAME_LABEL: "fresh", "tier": "dev"}
    assert not strict.selects_namespace(labels)
    assert state.reads == 1


async def test_without_a_namespace_selector_nothing_is_read(api: tuple[Api, KubeApi]) -> None:
    state, client = api
    source = source_with(client, tp("everywhere"))
    assert await source.namespace_labels("fresh") == {NAME_LABEL: "fresh"}
    assert await source.namespace_labels(None) is None
    assert state.reads == 0


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("500", "HTTP 500"),
        ("403", "HTTP 403"),
        ("missing", "HTTP 404"),
        ("hang", "no answer within 0.3s"),
        ("offline", "not connected to the Kubernetes API"),
        ("bad-name", "not a namespace name"),
    ],
)
async def test_labels_that_cannot_be_read_deny_when_a_policy_selects_namespaces(
    api: tuple[Api, KubeApi], failure: str, reason: str
) -> None:
    # Failing closed: treating unknown labels as "no label" would skip the label-selected policy.
    state, client = api
    namespace = "fresh"
    if failure in ("500", "403"):
        state.status = int(failure)
        state.namespaces[namespace] = {"tier": "prod"}
    state.hang = failure == "hang"
    if failure == "bad-name":
        namespace = "Not/A/Name"
    source = source_with(None if failure == "offline" else client, STRICT)
    with pytest.raises(NamespaceLabelsUnknownError, match=reason):
        await source.namespace_labels(namespace)

    review = reviews.review(
        reviews.workload("Pod", reviews.pod_spec(["r.example/app:v1"]), namespace=namespace)
    )
    async with RegistryClient() as registry:
        verdict = await decide_review(
            parse_review(json.dumps(review).encode()).request,
            mutate=False,
            engine=Verifier(registry),
            policies=source,
            deadline_seconds=5,
        )
    assert verdict.allowed is False
    assert f"the labels of namespace {namespace!r} are not known" in verdict.message
    assert "namespaceSelector may govern it" in verdict.message
    assert reason in verdict.message

    # A failure is not remembered: the next admission reads again.
    state.status, state.hang = 200, False
    state.namespaces[namespace] = {"tier": "prod"}
    if failure not in ("offline", "bad-name"):
        assert await source.namespace_labels(namespace) == {NAME_LABEL: namespace, "tier": "prod"}
