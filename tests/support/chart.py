"""The Helm chart as the tests use it: rendered with the real helm, pieces applied to a real
kube-apiserver."""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml

from support.kubeapi import KubeAPIServer

ROOT = Path(__file__).resolve().parents[2]
HELM = Path(os.environ.get("SIGNGATE_TOOLS_CACHE", Path.home() / ".cache/signgate-test-tools"))
HELM = HELM / "helm-v3.17.2" / "helm"
WEBHOOK_KINDS: tuple[Literal["validating"], Literal["mutating"]] = ("validating", "mutating")


def render_chart(*values: str) -> list[dict[str, Any]]:
    """``helm template signgate charts/signgate -n signgate [--set VALUE]...``, as documents."""
    sets = [arg for value in values for arg in ("--set", value)]
    rendered = subprocess.run(
        [str(HELM), "template", "signgate", str(ROOT / "charts/signgate"), "-n", "signgate", *sets],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@contextlib.contextmanager
def chart_webhooks(apiserver: KubeAPIServer, *, port: int, ca_pem: bytes) -> Iterator[None]:
    """The chart's own webhook configurations, with a ``url:`` clientConfig to the local server.

    Everything else (rules, failurePolicy, matchPolicy, sideEffects, reinvocationPolicy,
    namespaceSelector, timeouts) is exactly what ``helm install`` would create.
    """
    configs = [doc for doc in render_chart() if doc["kind"].endswith("WebhookConfiguration")]
    assert len(configs) == 2
    for config in configs:
        config["metadata"]["name"] = "signgate-e2e"
        for hook in config["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {
                "url": f"https://127.0.0.1:{port}{path}",
                "caBundle": base64.b64encode(ca_pem).decode(),
            }
    apiserver.apply(yaml.safe_dump_all(configs))
    for kind in WEBHOOK_KINDS:
        apiserver._wait_for_webhook_informer(kind)
    try:
        yield
    finally:
        for kind in WEBHOOK_KINDS:
            apiserver.kubectl("delete", f"{kind}webhookconfiguration", "signgate-e2e", check=True)
            apiserver._wait_for_webhook_informer(kind)
