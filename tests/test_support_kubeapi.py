"""Proof that the real control plane starts, serves kubectl and CRDs, calls webhooks, and stops.

The webhook here is a tiny aiohttp server defined in this file (not signgate): it denies Pods that
run ``deny.example/x`` and allows everything else; its ``/mutate`` adds an annotation.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from aiohttp import web

from support._threaded import ThreadedApp
from support.formats import generate_key, public_key_pem
from support.kubeapi import (
    INSTALL_SCRIPT,
    WORKLOAD_RULES,
    KubeAPIServer,
    find_kube_tools,
    pinned_version,
    start_apiserver,
)
from support.registry import MissingToolError
from support.tls import server_ssl_context

REPO_ROOT = Path(__file__).resolve().parents[1]
CRD = REPO_ROOT / "deploy" / "crds" / "trustpolicies.signgate.dev.yaml"
DENIED_IMAGE = "deny.example/x"
MUTATED = "signgate.test/mutated"


# -- a webhook for this test only ------------------------------------------------------------------


class DenyingWebhook:
    """Deny Pods with :data:`DENIED_IMAGE`; allow the rest; record every AdmissionReview."""

    def __init__(self, tls_ca: trustme.CA) -> None:
        self.reviews: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        app = web.Application()
        app.router.add_post("/validate", self._validate)
        app.router.add_post("/mutate", self._mutate)
        self.server = ThreadedApp(app, name="test-webhook", ssl_context=server_ssl_context(tls_ca))

    def seen(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [request for p, request in self.reviews if p == path]

    async def _review(self, request: web.Request) -> dict[str, Any]:
        review = await request.json()
        assert review["apiVersion"] == "admission.k8s.io/v1"
        with self._lock:
            self.reviews.append((request.path, review["request"]))
        return dict(review["request"])

    async def _validate(self, request: web.Request) -> web.Response:
        req = await self._review(request)
        obj = req.get("object") or {}
        spec = obj.get("spec", {}) if req["kind"]["kind"] == "Pod" else {}
        images = [
            c.get("image")
            for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []
        ]
        response: dict[str, Any] = {"uid": req["uid"], "allowed": DENIED_IMAGE not in images}
        if not response["allowed"]:
            response["status"] = {
                "code": 403,
                "message": f"test webhook: image {DENIED_IMAGE} is not allowed",
            }
        return web.json_response(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        )

    async def _mutate(self, request: web.Request) -> web.Response:
        req = await self._review(request)
        key = MUTATED.replace("/", "~1")  # JSON Pointer escaping
        patch: list[dict[str, Any]] = [
            {"op": "add", "path": f"/metadata/annotations/{key}", "value": "true"}
        ]
        if not (req.get("object") or {}).get("metadata", {}).get("annotations"):
            patch.insert(0, {"op": "add", "path": "/metadata/annotations", "value": {}})
        response = {
            "uid": req["uid"],
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(patch).encode()).decode("ascii"),
        }
        return web.json_response(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        )


@pytest.fixture
def webhook(tls_ca: trustme.CA) -> Iterator[DenyingWebhook]:
    hook = DenyingWebhook(tls_ca)
    hook.server.start()
    try:
        yield hook
    finally:
        hook.server.stop()


def pod_yaml(name: str, image: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": image}]},
        }
    )


# -- the control plane -----------------------------------------------------------------------------


def test_apiserver_answers_kubectl_get_ns(apiserver: KubeAPIServer) -> None:
    result = apiserver.kubectl("get", "ns", "-o", "name", check=True)
    assert {"namespace/default", "namespace/kube-system"} <= set(result.stdout.split())
    assert apiserver.get_raw("/readyz") == (200, "ok")
    assert apiserver.url.startswith("https://127.0.0.1:")
    version = json.loads(apiserver.kubectl("version", "-o", "json", check=True).stdout)
    assert version["serverVersion"]["gitVersion"] == f"v{pinned_version('KUBE_APISERVER_VERSION')}"
    print(f"control plane ready in {apiserver.startup_seconds:.1f}s")


def test_admin_is_system_masters_and_rbac_is_on(apiserver: KubeAPIServer) -> None:
    assert apiserver.kubectl("auth", "can-i", "*", "*", check=True).stdout.strip() == "yes"
    stranger = apiserver.kubectl(
        "auth", "can-i", "create", "pods", "--as=stranger", "-n", "default"
    )
    assert (stranger.returncode, stranger.stdout.strip()) == (1, "no")  # RBAC grants nothing


def test_trustpolicy_crd_installs_and_serves(apiserver: KubeAPIServer) -> None:
    apiserver.kubectl("apply", "-f", str(CRD), check=True)
    apiserver.kubectl(
        "wait", "--for=condition=Established", "crd/trustpolicies.signgate.dev", "--timeout=30s",
        check=True,
    )  # fmt: skip
    assert apiserver.kubectl("get", "trustpolicies", check=True).returncode == 0

    pem = "\n".join(
        "          " + line for line in public_key_pem(generate_key()).decode().strip().splitlines()
    )
    policy = f"""
apiVersion: signgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: proof-policy}}
spec:
  images: ["127.0.0.1:5000/team/**"]
  authorities:
    - name: release-key
      key:
        pem: |
{pem}
"""
    try:
        apiserver.apply(policy)
        got = apiserver.get_json("trustpolicies", "proof-policy")
        assert got["spec"]["mode"] == "Enforce"  # the CRD's default, applied by the apiserver
        listed = apiserver.kubectl("get", "tp", "-o", "name", check=True).stdout.split()
        assert "trustpolicy.signgate.dev/proof-policy" in listed
        refused = apiserver.apply(
            policy.replace("proof-policy", "bad-mode") + "  mode: Sometimes\n", check=False
        )
        assert refused.returncode != 0
        assert "Unsupported value" in refused.stderr
    finally:
        apiserver.kubectl("delete", "trustpolicy", "proof-policy", "--ignore-not-found")


# -- webhooks --------------------------------------------------------------------------------------


def test_registered_webhook_denies_and_allows_kubectl_apply(
    apiserver: KubeAPIServer, webhook: DenyingWebhook, tls_ca: trustme.CA, tmp_path: Path
) -> None:
    ns = apiserver.create_namespace("proof")
    denied = tmp_path / "denied-pod.yaml"
    denied.write_text(pod_yaml("denied", DENIED_IMAGE))
    allowed = tmp_path / "pod.yaml"
    allowed.write_text(pod_yaml("allowed", "registry.example/app:v1"))

    with apiserver.webhooks(port=webhook.server.port, ca_bundle=tls_ca.cert_pem.bytes()) as reg:
        configs = apiserver.get_json("validatingwebhookconfiguration", reg.name)
        hook = configs["webhooks"][0]
        assert hook["clientConfig"]["url"] == f"https://127.0.0.1:{webhook.server.port}/validate"
        assert (hook["failurePolicy"], hook["sideEffects"], hook["matchPolicy"]) == (
            "Fail",
            "NoneOnDryRun",
            "Equivalent",
        )
        assert hook["timeoutSeconds"] == 10
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["rules"] == [dict(r) for r in WORKLOAD_RULES]
        mutating = apiserver.get_json("mutatingwebhookconfiguration", reg.name)
        assert mutating["webhooks"][0]["clientConfig"]["url"].endswith("/mutate")

        refused = apiserver.kubectl("apply", "-n", ns, "-f", str(denied))
        assert refused.returncode != 0
        assert f"test webhook: image {DENIED_IMAGE} is not allowed" in refused.stderr
        assert reg.validating is not None
        assert reg.validating in refused.stderr  # "admission webhook "<name>" denied the request"

        created = apiserver.kubectl("apply", "-n", ns, "-f", str(allowed))
        assert created.returncode == 0, created.stderr
        assert "pod/allowed created" in created.stdout

    pod = apiserver.get_json("pod", "allowed", "-n", ns)
    assert pod["metadata"]["annotations"][MUTATED] == "true"  # /mutate was called and applied
    assert pod["status"]["phase"] == "Pending"  # no scheduler, no kubelet
    assert apiserver.kubectl("get", "pod", "denied", "-n", ns).returncode != 0
    validated = {(r["namespace"], r["name"]) for r in webhook.seen("/validate")}
    assert {(ns, "denied"), (ns, "allowed")} <= validated
    assert all(not r["dryRun"] for r in webhook.seen("/validate"))  # the informer probe never came


def test_removed_webhook_is_no_longer_called(
    apiserver: KubeAPIServer, webhook: DenyingWebhook, tls_ca: trustme.CA
) -> None:
    ns = apiserver.create_namespace("proof")
    with apiserver.webhooks(port=webhook.server.port, ca_bundle=tls_ca.cert_pem.bytes()) as reg:
        pass
    assert apiserver.kubectl("get", "validatingwebhookconfiguration", reg.name).returncode != 0
    assert apiserver.kubectl("get", "mutatingwebhookconfiguration", reg.name).returncode != 0
    apiserver.apply(pod_yaml("after", DENIED_IMAGE), namespace=ns)
    assert webhook.seen("/validate") == []


def test_webhook_in_kube_system_is_not_called(
    apiserver: KubeAPIServer, webhook: DenyingWebhook, tls_ca: trustme.CA
) -> None:
    with apiserver.webhooks(port=webhook.server.port, ca_bundle=tls_ca.cert_pem.bytes()):
        apiserver.add_default_service_account("kube-system")
        created = apiserver.kubectl(
            "create", "--dry-run=server", "-n", "kube-system", "-f", "-",
            input=pod_yaml("system", DENIED_IMAGE),
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    assert webhook.seen("/validate") == []


# -- tools and lifecycle ---------------------------------------------------------------------------


def test_missing_binaries_name_the_install_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SIGNGATE_TEST_TOOLS", str(tmp_path))
    with pytest.raises(MissingToolError, match=r"scripts/install-kube-tools") as excinfo:
        find_kube_tools()
    assert str(tmp_path / f"kube-apiserver-v{pinned_version('KUBE_APISERVER_VERSION')}") in str(
        excinfo.value
    )
    assert INSTALL_SCRIPT.is_file()
    assert os.access(INSTALL_SCRIPT, os.X_OK)


@pytest.mark.kube
def test_stop_ends_etcd_and_apiserver_by_pid(tmp_path: Path) -> None:
    server = start_apiserver(tmp_path / "kubeapi")
    try:
        pids = server.pids
        assert len(pids) == 2
        assert server.kubectl("get", "ns", "default", check=True).returncode == 0
    finally:
        server.stop()
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert server.pids == []
