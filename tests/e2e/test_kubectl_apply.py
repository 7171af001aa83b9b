"""End to end: a real kube-apiserver calls signgate; ``kubectl apply`` is admitted or refused.

signgate runs as a user would run it (``signgate serve --policy FILE`` in its own process), the
apiserver reaches it over HTTPS through Validating- and MutatingWebhookConfigurations, and the
images, signatures and registry are real. No scheduler or kubelet runs, so Pods stay Pending:
admission is all that is being tested.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from support import signer
from support.chart import chart_webhooks
from support.formats import generate_key, public_key_pem
from support.kubeapi import KubeAPIServer
from support.push import Pusher

# Renders the chart with the real helm (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.helm

KEY = generate_key()


@pytest.fixture
async def signgate_serve(pusher: Pusher, tls_ca: trustme.CA, tmp_path: Path) -> AsyncIterator[int]:
    """``signgate serve --policy`` with a policy governing the test registry; yields its port."""
    pem = "\n".join(
        "          " + line for line in public_key_pem(KEY).decode().strip().splitlines()
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: signgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: release}\n"
        f'spec:\n  images: ["{pusher.host}/e2e/**"]\n  authorities:\n'
        f"    - name: release-key\n      key:\n        pem: |\n{pem}\n"
    )
    cert = tls_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signgate", "serve", "--policy", str(policy),
        "--tls-cert", str(tmp_path / "tls.crt"), "--tls-key", str(tmp_path / "tls.key"),
        "--address", "127.0.0.1", "--port", "0", "--insecure-registry", pusher.host,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "signgate serve exited before serving"
            match = re.search(r"on https://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        yield port
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


def pod(namespace: str, name: str, image: str) -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
        f"spec:\n  containers:\n    - name: app\n      image: {image}\n"
    )


def deployment(namespace: str, name: str, image: str) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\n"
        "spec:\n  replicas: 1\n  selector: {matchLabels: {app: x}}\n"
        "  template:\n    metadata: {labels: {app: x}}\n"
        f"    spec:\n      containers:\n        - name: app\n          image: {image}\n"
    )


async def test_kubectl_apply_is_denied_for_unsigned_and_pinned_for_signed(
    apiserver: KubeAPIServer, signgate_serve: int, pusher: Pusher, tls_ca: trustme.CA
) -> None:
    name = f"e2e/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    await pusher.push_random_image(name, "unsigned")
    await signer.sign_legacy(pusher, name, digest, KEY)
    signed, unsigned = f"{pusher.host}/{name}:v1", f"{pusher.host}/{name}:unsigned"
    namespace = apiserver.create_namespace("e2e")

    def run(yaml_text: str) -> subprocess.CompletedProcess[str]:
        return apiserver.apply(yaml_text, namespace=namespace, check=False)

    with chart_webhooks(apiserver, port=signgate_serve, ca_pem=tls_ca.cert_pem.bytes()):
        refused = await asyncio.to_thread(run, pod(namespace, "unsigned", unsigned))
        assert refused.returncode != 0
        assert "denied the request" in refused.stderr
        assert "signgate denied 1 of 1 image(s)" in refused.stderr
        assert f"{pusher.host}/{name}@sha256:" in refused.stderr
        assert "no signature found" in refused.stderr

        admitted = await asyncio.to_thread(run, pod(namespace, "signed", signed))
        assert admitted.returncode == 0, admitted.stderr
        stored = await asyncio.to_thread(apiserver.get_json, "pod", "signed", "-n", namespace)
        # The mutating webhook pinned the tag to the digest that was verified.
        assert stored["spec"]["containers"][0]["image"] == f"{signed}@{digest}"

        # Workloads are checked where a person applies them, not only when Pods appear.
        refused_deployment = await asyncio.to_thread(run, deployment(namespace, "web", unsigned))
        assert refused_deployment.returncode != 0
        assert "signgate denied" in refused_deployment.stderr
        good_deployment = await asyncio.to_thread(run, deployment(namespace, "web", signed))
        assert good_deployment.returncode == 0, good_deployment.stderr

        # An ephemeral debug container is an image too (`kubectl debug`).
        debug = await asyncio.to_thread(
            apiserver.kubectl,
            "debug", "signed", "-n", namespace, f"--image={unsigned}", "--container=dbg",
        )  # fmt: skip
        assert debug.returncode != 0
        assert "signgate denied" in debug.stderr

        # A server-side dry run is answered the same way.
        dry = await asyncio.to_thread(
            apiserver.kubectl,
            "apply", "--dry-run=server", "-n", namespace, "-f", "-",
            input=pod(namespace, "dry", unsigned),
        )  # fmt: skip
        assert dry.returncode != 0
        assert "signgate denied" in dry.stderr
    listed = await asyncio.to_thread(apiserver.get_json, "pods", "-n", namespace)
    assert sorted(p["metadata"]["name"] for p in listed["items"]) == ["signed"]
