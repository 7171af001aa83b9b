"""End to end: ``signgate audit`` and ``signgate explain`` against a real kube-apiserver.

Both log in as kubectl does ($KUBECONFIG), read the TrustPolicies (compiled as the operator would),
namespace labels and workloads, and judge images in the real registry. No webhook is registered
here, so the workloads (some unsigned) can be created first, as in a cluster about to adopt
signgate.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from support import signer
from support.formats import generate_key, public_key_pem
from support.kubeapi import KubeAPIServer
from support.push import Pusher

ROOT = Path(__file__).resolve().parents[2]


def run(
    apiserver: KubeAPIServer, *args: str, kubeconfig: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig or str(apiserver.kubeconfig)}
    if kubeconfig is not None:
        env["HOME"] = "/nonexistent"
    return subprocess.run(
        [sys.executable, "-m", "signgate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_audit_and_explain_read_the_cluster(apiserver: KubeAPIServer, pusher: Pusher) -> None:
    apiserver.kubectl(
        "apply", "-f", str(ROOT / "deploy/crds/trustpolicies.signgate.dev.yaml"), check=True
    )
    apiserver.kubectl(
        "wait", "--for=condition=Established", "crd/trustpolicies.signgate.dev", check=True
    )
    key = generate_key()
    repo = f"audit/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(repo, "v1")
    await pusher.push_random_image(repo, "unsigned")
    await signer.sign_legacy(pusher, repo, digest, key)
    signed, unsigned = f"{pusher.host}/{repo}:v1", f"{pusher.host}/{repo}:unsigned"

    # The key lives in a Secret, as the operator would read it.
    policy = f"audit-{secrets.token_hex(3)}"
    apiserver.kubectl(
        "create", "secret", "generic", f"{policy}-key", "-n", "default",
        f"--from-literal=cosign.pub={public_key_pem(key).decode()}", check=True,
    )  # fmt: skip
    apiserver.apply(
        "apiVersion: signgate.dev/v1alpha1\nkind: TrustPolicy\n"
        f"metadata: {{name: {policy}}}\n"
        f'spec:\n  images: ["{pusher.host}/{repo}"]\n  mode: Warn\n  authorities:\n'
        "    - name: release-key\n"
        f"      key: {{secretRef: {{name: {policy}-key, namespace: default}}}}\n"
    )
    namespace = apiserver.create_namespace("audit")
    apiserver.apply(
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: web, namespace: {namespace}}}\n"
        "spec:\n  selector: {matchLabels: {app: web}}\n  template:\n"
        "    metadata: {labels: {app: web}}\n"
        f"    spec: {{containers: [{{name: web, image: '{unsigned}'}}]}}\n"
        "---\napiVersion: v1\nkind: Pod\n"
        f"metadata: {{name: tool, namespace: {namespace}}}\n"
        f"spec: {{containers: [{{name: tool, image: '{signed}'}}]}}\n",
        namespace=namespace,
    )
    # No controller-manager runs: make the Deployment's ReplicaSet by hand, owned by it.
    owner = apiserver.get_json("deployment", "web", "-n", namespace)["metadata"]["uid"]
    apiserver.apply(
        "apiVersion: apps/v1\nkind: ReplicaSet\n"
        f"metadata:\n  name: web-1\n  namespace: {namespace}\n  ownerReferences:\n"
        f"    - {{apiVersion: apps/v1, kind: Deployment, name: web, uid: {owner}, "
        "controller: true}\n"
        "spec:\n  selector: {matchLabels: {app: web}}\n  template:\n"
        "    metadata: {labels: {app: web}}\n"
        f"    spec: {{containers: [{{name: web, image: '{unsigned}'}}]}}\n",
        namespace=namespace,
    )
    insecure = ("--insecure-registry", pusher.host)

    audit = run(apiserver, "audit", "--namespace", namespace, *insecure)
    assert audit.returncode == 1, audit.stderr
    rows = [line.split() for line in audit.stdout.splitlines()]
    assert [namespace, "Deployment/web", "DENY", unsigned] == rows[1][:4]
    assert [namespace, "Pod/tool", "ok", signed] == rows[2][:4]
    # The ReplicaSet belongs to the Deployment: reported once, as the Deployment.
    assert not any("ReplicaSet" in line for line in audit.stdout.splitlines())
    assert f"{namespace}: 1 of 2 workload(s) would be denied" in audit.stdout
    assert f"{policy}=Warn" in audit.stdout
    assert "workloads checked" in audit.stderr

    # In their own modes (Warn), nothing is denied today.
    today = run(apiserver, "audit", "--namespace", namespace, "--current-modes", *insecure)
    assert today.returncode == 0, today.stdout

    as_json = run(apiserver, "audit", "--namespace", namespace, "--output", "json", *insecure)
    report = json.loads(as_json.stdout)
    assert {(w["kind"], w["allowed"]) for w in report["workloads"]} == {
        ("Deployment", False),
        ("Pod", True),
    }

    explained = run(apiserver, "explain", unsigned, *insecure)
    assert explained.returncode == 0, explained.stdout  # Warn mode: admitted, with a warning
    assert f"{policy} (Warn, cluster): governs it" in explained.stdout
    assert "none (no cosign .sig tag, no OCI referrers)" in explained.stdout
    assert "warning:" in explained.stdout
    explained = run(apiserver, "explain", signed, *insecure)
    assert explained.returncode == 0
    assert f"[ok] {policy}: authority release-key" in explained.stdout
    assert f"ALLOWED {pusher.host}/{repo}@{digest}" in explained.stdout

    refused = run(apiserver, "explain", signed, *insecure, kubeconfig="/nonexistent/config")
    assert refused.returncode == 2
    assert refused.stderr.startswith("signgate: error:")
