"""Every valid AdmissionReview gets an answer with a reason, never an HTTP 500 (issue 15, item 5).

With ``failurePolicy: Fail`` an HTTP 500 is a denial that explains nothing, and for an Audit-mode
policy, which must never deny, it is simply wrong. These tests run the real decision path on the
in-memory registry, and the real aiohttp application on a loopback test server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp.test_utils import TestClient, TestServer

from signgate.admission import server as webhook_server
from signgate.admission.decide import Verdict, decide_review
from signgate.admission.metrics import Metrics
from signgate.admission.review import MAX_AUDIT_ANNOTATIONS, AdmissionRequest, review_response
from signgate.admission.server import ServerSettings, make_app
from signgate.engine import Verifier
from signgate.policy.compiled import CompiledPolicy, compile_policy
from signgate.policy.loading import parse_policies
from signgate.policy.sources import StaticPolicySource
from signgate.registry import RegistryClient
from support import reviews
from support.formats import generate_key, public_key_pem
from support.memory_registry import MemoryPusher

KEY = generate_key()


def audit_policy() -> CompiledPolicy:
    document = {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "watch"},
        "spec": {
            "images": ["**"],
            "mode": "Audit",
            "authorities": [{"name": "ci", "key": {"pem": public_key_pem(KEY).decode()}}],
        },
    }
    return compile_policy(parse_policies(json.dumps(document), "test")[0])


async def test_more_audit_annotations_than_the_apiserver_takes_are_merged_not_a_500(
    memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    # 40 unsigned images under an Audit policy: 40 "image-N" evidence entries and 40 audit notes,
    # 80 in all, where the apiserver takes 64.
    digest = await memory_pusher.push_random_image("team/app", "v0")
    images = [f"{memory_pusher.host}/team/app:v{i}" for i in range(40)]
    for i in range(1, 40):
        await memory_pusher.copy_manifest("team/app", digest, "team/app", f"v{i}")
    request = reviews.request_of(reviews.review(reviews.workload("Pod", reviews.pod_spec(images))))

    verdict = await decide_review(
        request,
        mutate=False,
        engine=Verifier(registry_client),
        policies=StaticPolicySource([audit_policy()]),
        deadline_seconds=10,
    )

    assert verdict.allowed  # Audit never denies
    response: Any = verdict.response["response"]
    annotations = response["auditAnnotations"]
    assert len(annotations) == MAX_AUDIT_ANNOTATIONS
    assert "more" in annotations  # the rest, merged into the last key
    assert "image-0" in annotations


@pytest.fixture
async def client(tmp_path: Path, registry_client: RegistryClient) -> TestClient[Any, Any]:
    cert = trustme.CA().issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    engine = Verifier(registry_client)

    def broken_report(*_: object) -> None:
        raise RuntimeError("the Events API is down")

    app = make_app(
        engine=engine,
        policies=StaticPolicySource([audit_policy()]),
        settings=ServerSettings(cert_file, key_file),
        metrics=Metrics(engine),
        on_denied=broken_report,
        on_verdict=broken_report,
    )
    return TestClient(TestServer(app))


async def test_an_exception_while_deciding_is_a_denial_with_a_reason(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def bug(request: AdmissionRequest, **_: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(webhook_server, "decide_review", bug)
    body = reviews.review(reviews.workload("Pod", reviews.pod_spec(["registry.test/a:v1"])))
    async with client:
        answer = await client.post("/validate", data=reviews.encode(body))
        assert answer.status == 200
        response = (await answer.json())["response"]
    assert response["uid"] == body["request"]["uid"]
    assert response["allowed"] is False
    assert "signgate could not decide (KeyError" in response["status"]["message"]
    assert "denied to be safe" in response["status"]["message"]


async def test_a_failing_report_hook_does_not_change_the_answer(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both report hooks raise (see the fixture); the answer is still the decision's, HTTP 200.
    message = "signgate denied 1 of 1 image(s): a reason"

    async def denial(request: AdmissionRequest, **_: object) -> Verdict:
        answer = review_response(request.uid, allowed=False, message=message)
        return Verdict(answer, False, (), message=message)

    monkeypatch.setattr(webhook_server, "decide_review", denial)
    body = reviews.review(reviews.workload("Pod", reviews.pod_spec(["registry.test/a:v1"])))
    async with client:
        answer = await client.post("/validate", data=reviews.encode(body))
        assert answer.status == 200
        response = (await answer.json())["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == message
