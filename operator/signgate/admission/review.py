"""AdmissionReview v1 (``admission.k8s.io/v1``): parse the request, build the response.

The request is validated once, here, into frozen pydantic models. Unknown fields are tolerated
(the apiserver adds fields over time, e.g. ``options``), but every field signgate reads is typed
strictly: a ``uid`` that is a number or an ``object`` that is a list is a malformed review, never
something coerced. ``v1beta1`` is refused with a message that says how to fix the webhook
configuration: signgate speaks v1 only (the apiserver sends v1 whenever the configuration's
``admissionReviewVersions`` lists it, and requires the answer in the request's version).

The response builder enforces the apiserver's limits so that what we send is what the user sees:
warnings are short single lines (the apiserver drops invalid ones and truncates long ones), audit
annotation keys are valid label-style names, and denial messages are bounded.

No I/O happens in this module.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from signgate.errors import AdmissionRequestError, truncate
from signgate.strictjson import json_kind, loads

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
MAX_REVIEW_BYTES = 3 * 1024 * 1024
"""Default body cap. The apiserver's own request limit is 3 MiB, so a review cannot be larger."""

MAX_WARNING_CHARS = 120
"""Kubernetes asks webhooks to keep each warning within 120 characters."""
MAX_WARNINGS = 32
"""The apiserver truncates a response's warnings at 4 KiB in total; 32 x 120 fits."""
MAX_AUDIT_VALUE_BYTES = 10 * 1024
"""Total UTF-8 size of all audit annotation values in one response."""
MAX_AUDIT_ANNOTATIONS = 64
MAX_MESSAGE_BYTES = 8 * 1024
"""UTF-8 size cap of ``status.message``."""
DEFAULT_DENY_CODE = 403

_AUDIT_KEY = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_ELLIPSIS = "…"

JsonObject = dict[str, Any]
"""A decoded JSON object (a Kubernetes object inside the review)."""
Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


class _Wire(BaseModel):
    # Lenient about unknown fields (the apiserver adds them), strict about the ones we declare.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class GroupVersionKind(_Wire):
    """``request.kind`` / ``request.requestKind``: the core group is ``""``."""

    group: StrictStr = ""
    version: StrictStr = Field(min_length=1)
    kind: StrictStr = Field(min_length=1)


class GroupVersionResource(_Wire):
    """``request.resource`` / ``request.requestResource``."""

    group: StrictStr = ""
    version: StrictStr = Field(min_length=1)
    resource: StrictStr = Field(min_length=1)


class AdmissionRequest(_Wire):
    """``AdmissionReview.request``: what is being admitted.

    ``object`` and ``old_object`` stay plain decoded JSON: `signgate.admission.images` reads them
    field by field with its own checks, so nothing in them is trusted to have any shape.
    """

    uid: StrictStr = Field(min_length=1, max_length=256)
    kind: GroupVersionKind
    resource: GroupVersionResource
    sub_resource: StrictStr | None = Field(default=None, alias="subResource")
    request_kind: GroupVersionKind | None = Field(default=None, alias="requestKind")
    request_resource: GroupVersionResource | None = Field(default=None, alias="requestResource")
    request_sub_resource: StrictStr | None = Field(default=None, alias="requestSubResource")
    name: StrictStr = ""
    namespace: StrictStr | None = None
    operation: Operation
    user_info: dict[str, Any] | None = Field(default=None, alias="userInfo")
    object: JsonObject | None = None
    old_object: JsonObject | None = Field(default=None, alias="oldObject")
    dry_run: StrictBool = Field(default=False, alias="dryRun")


class AdmissionReview(_Wire):
    """An ``admission.k8s.io/v1`` AdmissionReview carrying a request."""

    api_version: Literal["admission.k8s.io/v1"] = Field(alias="apiVersion")
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


# -- parsing ------------------------------------------------------------------------------------


def _loads(body: bytes) -> object:
    return loads(body, what="AdmissionReview", error=AdmissionRequestError)


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "AdmissionReview"
    more = len(errors) - 1
    extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"malformed AdmissionReview: {truncate(where, 120)}: {first['msg']}{extra}"


def parse_review(body: bytes, *, max_bytes: int = MAX_REVIEW_BYTES) -> AdmissionReview:
    """Parse and validate an AdmissionReview v1 request body.

    Args:
        body: the raw HTTP request body.
        max_bytes: refuse bodies larger than this (the server should also cap its read).

    Returns:
        The validated review; ``review.request.uid`` is a non-empty string.

    Raises:
        AdmissionRequestError: not JSON (or with a duplicate key), too large, not an
            ``admission.k8s.io/v1`` AdmissionReview, or a field of the wrong type; the message is
            one line naming the problem.
    """
    if len(body) > max_bytes:
        raise AdmissionRequestError(
            f"AdmissionReview body is {len(body)} bytes, over the {max_bytes}-byte limit"
        )
    if not body.strip():
        raise AdmissionRequestError("AdmissionReview body is empty")
    data = _loads(body)
    if not isinstance(data, dict):
        raise AdmissionRequestError(f"AdmissionReview must be a JSON object, got {json_kind(data)}")
    api_version = data.get("apiVersion")
    if api_version == "admission.k8s.io/v1beta1":
        raise AdmissionRequestError(
            "AdmissionReview admission.k8s.io/v1beta1 is not supported; "
            "set admissionReviewVersions: [v1] in the webhook configuration"
        )
    if api_version != API_VERSION:
        got = repr(truncate(api_version, 64)) if isinstance(api_version, str) else "none"
        raise AdmissionRequestError(
            f"unsupported AdmissionReview apiVersion {got} (expected {API_VERSION!r})"
        )
    if data.get("kind") != KIND:
        raise AdmissionRequestError(f"not an AdmissionReview (kind must be {KIND!r})")
    if not isinstance(data.get("request"), dict):
        raise AdmissionRequestError("AdmissionReview has no request object")
    try:
        return AdmissionReview.model_validate(data)
    except ValidationError as exc:
        raise AdmissionRequestError(_describe(exc)) from exc


# -- response -----------------------------------------------------------------------------------

_NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _cut_utf8(text: str, limit: int, marker: str = _ELLIPSIS) -> str:
    """``text`` shortened so that it, with ``marker`` appended when cut, fits ``limit`` bytes."""
    if _utf8_len(text) <= limit:
        return text
    room = max(limit - _utf8_len(marker), 0)
    cut = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
    return cut + marker if _utf8_len(cut + marker) <= limit else ""


def _one_line(text: str) -> str:
    # The apiserver drops a warning that contains control characters (IsValidWarningMessage).
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text).strip()


def _warnings(warnings: Sequence[str]) -> list[str]:
    lines = [_one_line(w) for w in warnings]
    lines = [
        w if len(w) <= MAX_WARNING_CHARS else w[: MAX_WARNING_CHARS - 1] + _ELLIPSIS
        for w in lines
        if w
    ]
    if len(lines) > MAX_WARNINGS:
        dropped = len(lines) - (MAX_WARNINGS - 1)
        lines = [*lines[: MAX_WARNINGS - 1], f"{_ELLIPSIS} and {dropped} more warnings"]
    return lines


def _audit_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    if len(annotations) > MAX_AUDIT_ANNOTATIONS:
        raise ValueError(f"{len(annotations)} audit annotations, at most {MAX_AUDIT_ANNOTATIONS}")
    budget = MAX_AUDIT_VALUE_BYTES
    out: dict[str, str] = {}
    for key, value in annotations.items():
        # The apiserver stores them as "<webhook name>/<key>", which must be a qualified name.
        if len(key) > 63 or not _AUDIT_KEY.fullmatch(key):
            raise ValueError(f"invalid audit annotation key {key!r}")
        kept = _cut_utf8(value, budget)
        out[key] = kept
        budget -= _utf8_len(kept)
    return out


def status_message(message: str | Sequence[str]) -> str:
    """The ``status.message`` a denial carries: ``message`` cut to the apiserver's size cap."""
    if isinstance(message, str):
        return _cut_utf8(message, MAX_MESSAGE_BYTES, f"{_ELLIPSIS} (truncated)")
    failures = [m for m in message if m]
    text = ""
    for index, failure in enumerate(failures):
        candidate = f"{text}; {failure}" if text else failure
        rest = len(failures) - index - 1
        note = f"; {_ELLIPSIS} and {rest} more failures" if rest else ""
        if _utf8_len(candidate) + _utf8_len(note) <= MAX_MESSAGE_BYTES:
            text = candidate
            continue
        if text:
            # The previous round checked that ``text`` plus this very note fits.
            return f"{text}; {_ELLIPSIS} and {rest + 1} more failures"
        # Even the first failure is too long: show its head, then count the rest.
        return _cut_utf8(failure, MAX_MESSAGE_BYTES - _utf8_len(note)) + note
    return text


def review_response(
    uid: str,
    *,
    allowed: bool,
    message: str | Sequence[str] | None = None,
    code: int | None = None,
    warnings: Sequence[str] = (),
    audit_annotations: Mapping[str, str] = _NO_ANNOTATIONS,
    patch: Sequence[Mapping[str, object]] | None = None,
) -> dict[str, object]:
    """Build the AdmissionReview v1 response body for ``uid``.

    Args:
        uid: ``request.uid`` of the review being answered (echoed as ``response.uid``).
        allowed: the decision.
        message: why it was denied: one string, or one string per failure (joined with ``"; "``;
            when over the size cap, the tail is replaced by "… and N more failures"). Only
            meaningful on a denial; the apiserver ignores ``status`` when allowed.
        code: HTTP status the apiserver returns to the client on a denial (default 403).
        warnings: shown by kubectl; made single-line, cut to 120 characters, at most 32.
        audit_annotations: keys like ``image-digests`` (the apiserver prefixes the webhook name);
            values share a 10 KiB budget and are cut, in order, once it is spent.
        patch: JSONPatch operations (mutating webhook); ignored when empty.

    Returns:
        The JSON-ready response object.

    Raises:
        ValueError: a caller bug: empty uid, a message, code or patch on an allowed=False/True
            mismatch, a code outside 400-599, or an invalid audit annotation key.
    """
    if not uid:
        raise ValueError("response needs the request uid")
    response: dict[str, object] = {"uid": uid, "allowed": allowed}
    if allowed:
        if message is not None or code is not None:
            raise ValueError("status message and code are ignored when allowed; use warnings")
    else:
        if code is None:
            code = DEFAULT_DENY_CODE
        if not 400 <= code <= 599:
            raise ValueError(f"denial code {code} is not an HTTP error status")
        text = status_message(message) if message is not None else ""
        response["status"] = {
            "code": code,
            "message": text or "denied by signgate (no reason given)",
        }
        if patch:
            raise ValueError("a denied request cannot carry a patch")
    shown = _warnings(warnings)
    if shown:
        response["warnings"] = shown
    annotations = _audit_annotations(audit_annotations)
    if annotations:
        response["auditAnnotations"] = annotations
    if patch:
        raw = json.dumps([dict(op) for op in patch], separators=(",", ":"), ensure_ascii=True)
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(raw.encode("ascii")).decode("ascii")
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
