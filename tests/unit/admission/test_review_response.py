"""The AdmissionReview v1 response: the right shape, and within what the apiserver accepts."""

from __future__ import annotations

import base64
import json
from typing import Any, cast

import pytest

from signgate.admission import review_response
from signgate.admission.review import (
    MAX_AUDIT_VALUE_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
)

UID = "705ab4f5-6393-11e8-b7cc-42010a800002"


def _response(body: dict[str, object]) -> dict[str, Any]:
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["kind"] == "AdmissionReview"
    json.dumps(body)  # JSON-ready as is
    return cast("dict[str, Any]", body["response"])


def test_allowed_response_echoes_the_uid_and_nothing_else() -> None:
    assert _response(review_response(UID, allowed=True)) == {"uid": UID, "allowed": True}


def test_denial_carries_code_403_and_the_message() -> None:
    response = _response(review_response(UID, allowed=False, message="nginx:1.27: not signed"))
    assert response == {
        "uid": UID,
        "allowed": False,
        "status": {"code": 403, "message": "nginx:1.27: not signed"},
    }


def test_denial_code_can_be_chosen_but_must_be_an_error_status() -> None:
    response = _response(review_response(UID, allowed=False, message="bad object", code=400))
    assert response["status"]["code"] == 400
    with pytest.raises(ValueError, match="not an HTTP error status"):
        review_response(UID, allowed=False, message="x", code=200)


def test_denial_without_a_message_still_says_something() -> None:
    response = _response(review_response(UID, allowed=False))
    assert response["status"]["message"]


def test_caller_mistakes_are_value_errors() -> None:
    with pytest.raises(ValueError, match="uid"):
        review_response("", allowed=True)
    with pytest.raises(ValueError, match="ignored when allowed"):
        review_response(UID, allowed=True, message="why")
    op = {"op": "replace", "path": "/spec/containers/0/image", "value": "x@" + "sha256:" + "a" * 64}
    with pytest.raises(ValueError, match="cannot carry a patch"):
        review_response(UID, allowed=False, message="no", patch=[op])


def test_patch_is_base64_json_with_its_type() -> None:
    ops = [
        {
            "op": "replace",
            "path": "/spec/containers/0/image",
            "value": "nginx:1.27@sha256:" + "a" * 64,
        }
    ]
    response = _response(review_response(UID, allowed=True, patch=ops))
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"], validate=True)) == ops


@pytest.mark.parametrize("patch", [None, []])
def test_empty_patch_is_left_out(patch: list[dict[str, object]] | None) -> None:
    response = _response(review_response(UID, allowed=True, patch=patch))
    assert "patch" not in response
    assert "patchType" not in response


def test_warnings_are_single_lines_of_at_most_120_characters() -> None:
    long = "w" * 500
    response = _response(
        review_response(UID, allowed=True, warnings=["short", long, "two\nlines\tand\x00nul", ""])
    )
    warnings = response["warnings"]
    assert warnings[0] == "short"
    assert len(warnings[1]) == MAX_WARNING_CHARS == 120
    assert warnings[1].endswith("…")
    assert warnings[2] == "two lines and nul"
    assert len(warnings) == 3  # the empty one is dropped (the apiserver would drop it)


def test_too_many_warnings_end_with_a_count() -> None:
    response = _response(review_response(UID, allowed=True, warnings=[f"w{i}" for i in range(100)]))
    warnings = response["warnings"]
    assert len(warnings) == MAX_WARNINGS
    assert warnings[-2] == f"w{MAX_WARNINGS - 2}"
    assert warnings[-1] == f"… and {100 - MAX_WARNINGS + 1} more warnings"


def test_warnings_can_accompany_a_denial() -> None:
    response = _response(review_response(UID, allowed=False, message="no", warnings=["careful"]))
    assert response["warnings"] == ["careful"]


@pytest.mark.parametrize("key", ["image-0", "verified-digests", "a", "a.b-c9", "x" * 63])
def test_valid_audit_annotation_keys_are_kept(key: str) -> None:
    response = _response(review_response(UID, allowed=True, audit_annotations={key: "v"}))
    assert response["auditAnnotations"] == {key: "v"}


@pytest.mark.parametrize(
    "key", ["", "Image", "image_0", "-image", "image-", "signgate/image", "x" * 64, "a b", "ü"]
)
def test_invalid_audit_annotation_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="invalid audit annotation key"):
        review_response(UID, allowed=True, audit_annotations={key: "v"})


def test_audit_annotation_values_share_a_bounded_budget() -> None:
    annotations = {"a": "x" * 8000, "b": "é" * 4000, "c": "never shown", "d": ""}
    response = _response(review_response(UID, allowed=True, audit_annotations=annotations))
    kept = response["auditAnnotations"]
    assert kept["a"] == "x" * 8000
    assert kept["b"].endswith("…") and kept["b"].startswith("éé")
    total = sum(len(v.encode()) for v in kept.values())
    assert total <= MAX_AUDIT_VALUE_BYTES
    assert kept["c"] == ""  # the budget was spent; keys stay so the audit log shows they existed
    assert set(kept) == set(annotations)


def test_no_audit_annotations_are_left_out() -> None:
    assert "auditAnnotations" not in _response(review_response(UID, allowed=True))


def test_long_message_is_cut_with_a_note() -> None:
    response = _response(review_response(UID, allowed=False, message="€" * 10_000))
    message = response["status"]["message"]
    assert len(message.encode()) <= MAX_MESSAGE_BYTES
    assert message.endswith("… (truncated)")
    assert message.startswith("€€€")


def test_failures_are_joined_and_the_rest_counted_when_over_the_bound() -> None:
    few = _response(review_response(UID, allowed=False, message=["a: unsigned", "b: unsigned"]))
    assert few["status"]["message"] == "a: unsigned; b: unsigned"

    failures = [
        f"registry.example.com/app-{i}:v1 (container c{i}): no signature" for i in range(500)
    ]
    message = _response(review_response(UID, allowed=False, message=failures))["status"]["message"]
    assert len(message.encode()) <= MAX_MESSAGE_BYTES
    shown = message.count("no signature")
    assert 100 < shown < 500
    assert message.endswith(f"; … and {500 - shown} more failures")
    assert message.startswith(failures[0])


def test_a_single_huge_failure_is_cut_and_the_rest_counted() -> None:
    failures = ["x" * 20_000, "second", "third"]
    message = _response(review_response(UID, allowed=False, message=failures))["status"]["message"]
    assert len(message.encode()) <= MAX_MESSAGE_BYTES
    assert message.endswith("…; … and 2 more failures")
