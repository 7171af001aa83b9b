"""Hardening on a real kube-apiserver: what happens when every signgate replica is down (the chart
fails closed), the break-glass procedure, and the chart's Pod against the restricted Pod Security
Standard. See docs/hardening.md."""

from __future__ import annotations

import base64
import socket
from typing import Any

import pytest
import trustme
import yaml

from support.chart import WEBHOOK_KINDS, render_chart
from support.kubeapi import KubeAPIServer

# Renders the chart with the real helm (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.helm


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there, as when every replica is down


def _pod(namespace: str, name: str, image: str = "registry.example/app:v1") -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
        f"spec:\n  containers:\n    - name: app\n      image: {image}\n"
    )


def test_every_replica_down_fails_closed_and_break_glass_restores_deployments(
    apiserver: KubeAPIServer, tls_ca: trustme.CA
) -> None:
    port = _unused_port()
    configs = [doc for doc in render_chart() if doc["kind"].endswith("WebhookConfiguration")]
    for config in configs:
        config["metadata"]["name"] = "signgate-down"
        for hook in config["webhooks"]:
            hook["clientConfig"] = {
                "url": f"https://127.0.0.1:{port}{hook['clientConfig']['service']['path']}",
                "caBundle": base64.b64encode(tls_ca.cert_pem.bytes()).decode(),
            }
            hook["timeoutSeconds"] = 2
    apiserver.apply(yaml.safe_dump_all(configs))
    for kind in WEBHOOK_KINDS:
        apiserver._wait_for_webhook_informer(kind)
    namespace = apiserver.create_namespace("down")
    try:
        refused = apiserver.apply(_pod(namespace, "blocked"), check=False)
        assert refused.returncode != 0
        assert "failed calling webhook" in refused.stderr, refused.stderr  # fail closed
        # kube-system is never sent to the webhook: the control plane's own Pods keep working.
        apiserver.add_default_service_account("kube-system")
        apiserver.apply(_pod("kube-system", "system-ok"))
    finally:
        # Break glass (docs/hardening.md): remove the webhook configurations; `helm upgrade`
        # puts them back once signgate runs again.
        for kind in WEBHOOK_KINDS:
            apiserver.kubectl("delete", f"{kind}webhookconfiguration", "signgate-down", check=True)
            apiserver._wait_for_webhook_informer(kind)
    apiserver.apply(_pod(namespace, "after-break-glass"))
    apiserver.kubectl("delete", "pod", "-n", "kube-system", "system-ok", check=True)


def test_chart_pod_meets_the_restricted_pod_security_standard(apiserver: KubeAPIServer) -> None:
    deployment = next(doc for doc in render_chart() if doc["kind"] == "Deployment")
    namespace = apiserver.create_namespace("restricted")
    apiserver.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", check=True
    )
    template: dict[str, Any] = deployment["spec"]["template"]
    account = template["spec"].get("serviceAccountName", "default")
    apiserver.apply(
        "apiVersion: v1\nkind: ServiceAccount\n"
        f"metadata: {{name: {account}, namespace: {namespace}}}\n"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "signgate-psa", "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }
    created = apiserver.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod))
    assert created.returncode == 0, created.stderr
    assert "violate" not in created.stderr
    # The namespace really enforces it: a container without the restricted settings is refused.
    plain = dict(pod, metadata={"name": "plain", "namespace": namespace})
    plain["spec"] = {"containers": [{"name": "x", "image": "registry.example/x:1"}]}
    refused = apiserver.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(plain))
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr
