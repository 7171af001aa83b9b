"""End to end: only the kube-apiserver may call signgate's ``/validate`` and ``/mutate``.

The session's apiserver presents a client certificate to webhooks, configured as
docs/operations.md tells a cluster admin to ("Only the apiserver may call the webhook"): an
AdmissionConfiguration whose kubeconfig user ``*`` holds a certificate from a CA of its own
(``tests/support/kubeapi.py``). ``signgate serve --client-ca`` (that CA) decides what ``kubectl
apply`` sends through the apiserver, and refuses a forged AdmissionReview posted straight to its
port: the request a Pod in the cluster could send to make signgate read another namespace's pull
secrets, post Events there and count decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from support import reviews, signer
from support.chart import chart_webhooks
from support.formats import generate_key, public_key_pem
from support.kubeapi import WEBHOOK_CLIENT_NAME, KubeAPIServer
from support.push import Pusher

# Renders the chart's webhook configurations with the real helm (other binaries: by fixture).
pytestmark = pytest.mark.helm

KEY = generate_key()
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Signgate:
    """A running ``signgate serve`` process: its port and what it has logged so far."""

    port: int
    log: list[str] = field(default_factory=list)

    async def post(
        self, tls_ca: trustme.CA, path: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """POST ``body`` as a Pod in the cluster could: trusting the server, no certificate."""
        context = ssl.create_default_context()
        tls_ca.configure_trust(context)
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
            session.post(f"https://127.0.0.1:{self.port}{path}", json=body) as resp,
        ):
            return resp.status, json.loads(await resp.read())


def policy_file(pusher: Pusher, tmp_path: Path) -> Path:
    """A TrustPolicy file: the test registry's ``e2e/**``, signed with KEY."""
    pem = "\n".join(
        "          " + line for line in public_key_pem(KEY).decode().strip().splitlines()
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: signgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: release}\n"
        f'spec:\n  images: ["{pusher.host}/e2e/**"]\n  authorities:\n'
        f"    - name: release-key\n      key:\n        pem: |\n{pem}\n"
    )
    return policy


@contextlib.asynccontextmanager
async def signgate_serve(
    tls_ca: trustme.CA,
    tmp_path: Path,
    *args: str,
    ready: str = r"on https://127\.0\.0\.1:(\d+)",
    env: dict[str, str] | None = None,
) -> AsyncIterator[Signgate]:
    """``signgate serve ARGS`` in its own process, until its log matches ``ready``."""
    cert = tls_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signgate", "serve",
        "--tls-cert", str(tmp_path / "tls.crt"), "--tls-key", str(tmp_path / "tls.key"),
        "--address", "127.0.0.1", "--port", "0", *args,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    stderr = proc.stderr
    served = Signgate(0)

    async def drain() -> None:  # keep reading, so that logging never blocks on a full pipe
        while line := await stderr.readline():
            served.log.append(line.decode())

    reader = asyncio.create_task(drain())
    try:
        for _ in range(1200):  # 60 s
            if re.search(ready, "".join(served.log)) or reader.done():
                break
            await asyncio.sleep(0.05)
        port = re.search(r"on https://127\.0\.0\.1:(\d+)", "".join(served.log))
        assert port and re.search(ready, "".join(served.log)), "".join(served.log)
        served.port = int(port.group(1))
        yield served
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        await reader


def pod(namespace: str, name: str, image: str) -> str:
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
        f"spec:\n  containers:\n    - name: app\n      image: {image}\n"
    )


async def signed_and_unsigned(pusher: Pusher) -> tuple[str, str, str]:
    """A signed tag, its digest, and an unsigned tag of the same repository."""
    name = f"e2e/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    await pusher.push_random_image(name, "unsigned")
    await signer.sign_legacy(pusher, name, digest, KEY)
    return f"{pusher.host}/{name}:v1", digest, f"{pusher.host}/{name}:unsigned"


async def test_the_apiserver_is_answered_and_a_forged_review_is_refused(
    apiserver: KubeAPIServer, pusher: Pusher, tls_ca: trustme.CA, tmp_path: Path
) -> None:
    signed, digest, unsigned = await signed_and_unsigned(pusher)
    namespace = apiserver.create_namespace("mtls")

    def run(yaml_text: str) -> subprocess.CompletedProcess[str]:
        return apiserver.apply(yaml_text, namespace=namespace, check=False)

    async with signgate_serve(
        tls_ca, tmp_path,
        "--policy", str(policy_file(pusher, tmp_path)), "--insecure-registry", pusher.host,
        "--client-ca", str(apiserver.webhook_client_ca), "--client-name", WEBHOOK_CLIENT_NAME,
    ) as signgate:  # fmt: skip
        with chart_webhooks(apiserver, port=signgate.port, ca_pem=tls_ca.cert_pem.bytes()):
            # Through the apiserver, which presents its certificate: signgate's own answers.
            refused = await asyncio.to_thread(run, pod(namespace, "unsigned", unsigned))
            assert refused.returncode != 0
            assert "denied the request" in refused.stderr
            assert "signgate denied 1 of 1 image(s)" in refused.stderr
            assert "no signature found" in refused.stderr
            admitted = await asyncio.to_thread(run, pod(namespace, "signed", signed))
            assert admitted.returncode == 0, admitted.stderr
            stored = await asyncio.to_thread(apiserver.get_json, "pod", "signed", "-n", namespace)
            assert stored["spec"]["containers"][0]["image"] == f"{signed}@{digest}"

        # Straight to the port, without the apiserver's certificate: refused, never decided.
        forged = reviews.review(
            reviews.workload("Pod", reviews.pod_spec([unsigned]), namespace="kube-system")
        )
        for path in ("/validate", "/mutate"):
            status, answer = await signgate.post(tls_ca, path, forged)
            assert status == 403
            assert "response" not in answer and answer["kind"] == "Status", answer
            assert f"only the kube-apiserver may call {path}" in answer["message"]
        refusals = [line for line in signgate.log if "refused a caller" in line]
        assert len(refusals) == 2, signgate.log
        assert all("without a client certificate" in line for line in refusals)
        assert not any("kube-system" in line for line in signgate.log)  # not decided, not logged


async def test_a_webhook_expecting_another_name_refuses_the_apiserver(
    apiserver: KubeAPIServer, pusher: Pusher, tls_ca: trustme.CA, tmp_path: Path
) -> None:
    # The names are checked on the certificate the apiserver really presents: with a name it
    # does not carry, every call fails (failurePolicy Fail), and signgate logs whose it was.
    signed, _, _ = await signed_and_unsigned(pusher)
    namespace = apiserver.create_namespace("mtls")
    async with signgate_serve(
        tls_ca, tmp_path,
        "--policy", str(policy_file(pusher, tmp_path)), "--insecure-registry", pusher.host,
        "--client-ca", str(apiserver.webhook_client_ca), "--client-name", "someone",
    ) as signgate:  # fmt: skip
        with chart_webhooks(apiserver, port=signgate.port, ca_pem=tls_ca.cert_pem.bytes()):
            refused = await asyncio.to_thread(
                apiserver.apply, pod(namespace, "signed", signed), namespace=namespace, check=False
            )
    assert refused.returncode != 0
    # The apiserver shows signgate's reason (the refusal is shaped as a Kubernetes Status).
    assert "failed calling webhook" in refused.stderr, refused.stderr
    assert "only the kube-apiserver may call /mutate" in refused.stderr
    assert "its names are not allowed" in refused.stderr
    assert "signgate denied" not in refused.stderr
    refusals = [line for line in signgate.log if "refused a caller on /mutate" in line]
    assert refusals, signgate.log
    assert f"'{WEBHOOK_CLIENT_NAME}'" in refusals[0]


async def test_operator_mode_posts_events_only_for_what_the_apiserver_sends(
    apiserver: KubeAPIServer, tls_ca: trustme.CA, tmp_path: Path
) -> None:
    # Operator mode (no --policy) takes the same flags. A forged review naming an object gets
    # no Event on it; the same denial through the apiserver does.
    apiserver.kubectl(
        "apply", "-f", str(ROOT / "deploy/crds/trustpolicies.signgate.dev.yaml"), check=True
    )
    namespace = apiserver.create_namespace("mtls")
    image = "unmatched.invalid/mtls/app:v1"  # no TrustPolicy governs it: denied (--unmatched)
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig), "POD_NAMESPACE": "default"}
    async with signgate_serve(
        tls_ca, tmp_path,
        "--client-ca", str(apiserver.webhook_client_ca), "--client-name", WEBHOOK_CLIENT_NAME,
        ready="TrustPolicies indexed", env=env,
    ) as signgate:  # fmt: skip
        forged = reviews.review(
            reviews.workload("Pod", reviews.pod_spec([image]), name="forged", namespace=namespace)
        )
        status, answer = await signgate.post(tls_ca, "/validate", forged)
        assert status == 403, answer
        # The validating webhook alone: a denial there is what posts the Event.
        with apiserver.webhooks(
            ca_bundle=tls_ca.cert_pem.bytes(), port=signgate.port, mutate=False
        ):
            refused = await asyncio.to_thread(
                apiserver.apply, pod(namespace, "real", image), namespace=namespace, check=False
            )
        assert refused.returncode != 0
        assert "signgate denied" in refused.stderr, refused.stderr

        def events() -> set[str]:
            listed = apiserver.get_json("events", "-n", namespace)
            return {e["involvedObject"]["name"] for e in listed["items"]}

        for _ in range(100):  # Events are posted in the background, in order
            if "real" in await asyncio.to_thread(events):
                break
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(events) == {"real"}  # none on "forged"
