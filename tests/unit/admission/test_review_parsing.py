"""AdmissionReview v1 bodies parse into typed requests; anything else is one clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signgate.admission import parse_review
from signgate.errors import AdmissionRequestError, SigngateError
from support.reviews import encode, fixture, pod_spec, review, workload


def _pod_review(**kwargs: Any) -> dict[str, Any]:
    return review(workload("Pod", pod_spec([("web", "nginx:1.27")])), **kwargs)


def test_real_pod_create_review_parses_with_every_field_we_read() -> None:
    request = parse_review(fixture("pod_create.json")).request
    assert request.uid == "3f9c2b1e-8d4a-4f6b-9a57-2c1e0d7b6a41"
    assert (request.kind.group, request.kind.version, request.kind.kind) == ("", "v1", "Pod")
    assert request.resource.resource == "pods"
    assert request.request_kind is not None and request.request_kind.kind == "Pod"
    assert request.sub_resource is None
    assert request.name == ""  # generateName: the apiserver has not named it yet
    assert request.namespace == "shop"
    assert request.operation == "CREATE"
    assert request.user_info is not None
    assert request.user_info["username"].endswith("replicaset-controller")
    assert request.object is not None and request.object["kind"] == "Pod"
    assert request.old_object is None
    assert request.dry_run is False


def test_ephemeral_containers_review_keeps_its_subresource() -> None:
    request = parse_review(fixture("pod_ephemeralcontainers.json")).request
    assert request.operation == "UPDATE"
    assert request.sub_resource == "ephemeralcontainers"
    assert request.request_sub_resource == "ephemeralcontainers"
    assert request.old_object is not None


@pytest.mark.parametrize(("sent", "parsed"), [(True, True), (False, False), (None, False)])
def test_dry_run_is_parsed_and_defaults_to_false(sent: bool | None, parsed: bool) -> None:
    assert parse_review(encode(_pod_review(dry_run=sent))).request.dry_run is parsed


def test_unknown_fields_are_tolerated_anywhere() -> None:
    body = _pod_review()
    body["futureTopLevel"] = {"x": 1}
    body["request"]["futureField"] = [1, 2]
    body["request"]["kind"]["futureKindField"] = "y"
    body["response"] = {"uid": "ignored", "allowed": True}
    assert parse_review(encode(body)).request.uid == body["request"]["uid"]


def test_core_group_may_be_omitted() -> None:
    body = _pod_review()
    del body["request"]["kind"]["group"]
    del body["request"]["resource"]["group"]
    assert parse_review(encode(body)).request.kind.group == ""


def _error(body: bytes, **kwargs: Any) -> str:
    with pytest.raises(AdmissionRequestError) as info:
        parse_review(body, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert len(message) < 400
    return message


def _mutated(change: Any) -> bytes:
    body = _pod_review()
    change(body)
    return encode(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "body is empty"),
        (b"   \n", "body is empty"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got an array"),
        (b'"AdmissionReview"', "must be a JSON object, got a string"),
        (b"null", "must be a JSON object, got null"),
        (b'{"apiVersion": NaN}', "not valid JSON: NaN is not allowed"),
        (b'{"a": 1e999}', "not valid JSON: number 1e999 overflows"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'{"kind": "AdmissionReview", "request": {}}', "unsupported AdmissionReview apiVersion"),
        (
            b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}',
            "v1beta1 is not supported; set admissionReviewVersions: [v1]",
        ),
        (
            b'{"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview"}',
            "unsupported AdmissionReview apiVersion 'admission.k8s.io/v2'",
        ),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}', "not an AdmissionReview"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
            "has no request object",
        ),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": []}',
            "has no request object",
        ),
        (_mutated(lambda b: b["request"].pop("uid")), "request.uid: Field required"),
        (_mutated(lambda b: b["request"].update(uid="")), "request.uid: String should have at"),
        (_mutated(lambda b: b["request"].update(uid=42)), "request.uid: Input should be a valid"),
        (_mutated(lambda b: b["request"].update(object=[1])), "request.object: Input should be"),
        (_mutated(lambda b: b["request"].update(object="{}")), "request.object: Input should be"),
        (_mutated(lambda b: b["request"].update(oldObject=3)), "request.oldObject: Input should"),
        (_mutated(lambda b: b["request"].update(operation="PATCH")), "request.operation: Input"),
        (_mutated(lambda b: b["request"].update(dryRun="true")), "request.dryRun: Input should"),
        (_mutated(lambda b: b["request"].pop("kind")), "request.kind: Field required"),
        (_mutated(lambda b: b["request"]["kind"].update(kind=7)), "request.kind.kind: Input"),
        (_mutated(lambda b: b["request"].update(subResource=1)), "request.subResource: Input"),
        (_mutated(lambda b: b["request"].update(namespace=[])), "request.namespace: Input"),
    ],
)
def test_malformed_reviews_are_one_clear_error(body: bytes, expected: str) -> None:
    assert expected in _error(body)


def test_several_problems_are_counted() -> None:
    def break_three(body: dict[str, Any]) -> None:
        body["request"].update(uid=1, operation="X", dryRun="no")

    assert "(and 2 more problems)" in _error(_mutated(break_three))


def test_duplicate_keys_are_refused_at_any_depth() -> None:
    top = b'{"apiVersion": "admission.k8s.io/v1", "apiVersion": "admission.k8s.io/v1"}'
    assert "duplicate key 'apiVersion'" in _error(top)
    # Two readers picking different "image" values is a classic bypass.
    text = json.dumps(_pod_review())
    smuggled = text.replace('"image": "nginx:1.27"', '"image": "evil:1", "image": "nginx:1.27"')
    assert smuggled != text
    assert "duplicate key 'image'" in _error(smuggled.encode())


def test_huge_body_is_refused_before_parsing() -> None:
    body = encode(_pod_review())
    assert "over the 100-byte limit" in _error(body, max_bytes=100)
    padded = body[:-1] + b"," + b'"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    assert "over the 3145728-byte limit" in _error(padded)


def test_error_is_a_signgate_error() -> None:
    assert issubclass(AdmissionRequestError, SigngateError)
