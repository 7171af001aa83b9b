"""Property tests: no body makes the admission edge raise anything but AdmissionRequestError.

Any other exception type (KeyError, TypeError, AttributeError, RecursionError...) would leave
the server's error handling, so the outcome would depend on how it is caught. Inputs are arbitrary
bytes, arbitrary JSON, well-formed reviews with an arbitrary object, and real reviews with one
node replaced.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signgate.admission import (
    apply_patch,
    changed_fields,
    extract_images,
    parse_review,
    pin_patch,
    review_response,
)
from signgate.admission.pointer import split_pointer
from signgate.admission.review import (
    MAX_AUDIT_VALUE_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
)
from signgate.errors import AdmissionRequestError
from support.reviews import DIGEST, KINDS, encode, fixture, pod_spec, review, workload

FUZZ = settings(
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow],
)

_text = st.text(st.characters() | st.sampled_from(["\ud800", "\x00", "/", "~", "@"]), max_size=12)
_keys = _text | st.sampled_from(
    [
        "spec",
        "template",
        "jobTemplate",
        "containers",
        "initContainers",
        "ephemeralContainers",
        "volumes",
        "image",
        "reference",
        "name",
        "kind",
    ]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
    | st.sampled_from(["nginx:1.27", "", "Pod", "CREATE"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=5),
    max_leaves=20,
)
_kinds = st.sampled_from(
    [(g, k) for k, (g, *_) in KINDS.items()] + [("apps", "Foo"), ("", "Deployment")]
)
_operations = st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT"])


def _run(body: bytes) -> None:
    """parse, extract, compare, pin, re-apply: success or AdmissionRequestError, nothing else."""
    try:
        request = parse_review(body).request
        fields = extract_images(request)
        new = changed_fields(request, fields)
    except AdmissionRequestError as exc:
        message = str(exc)
        assert message
        assert "\n" not in message
        return
    assert all(field in fields for field in new)
    if not fields:
        return
    assert request.object is not None
    for field in fields:
        node: Any = request.object
        for token in split_pointer(field.pointer):
            node = node[int(token)] if isinstance(node, list) else node[token]
        assert node == field.image
    patch = pin_patch(fields, {f.image: DIGEST for f in fields})
    patched = apply_patch(request.object, patch)
    assert all(
        "@" in f.image for f in extract_images(request.model_copy(update={"object": patched}))
    )
    review_response(request.uid, allowed=True, patch=patch)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(body: bytes) -> None:
    _run(body)


@FUZZ
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    _run(json.dumps(value).encode())


@FUZZ
@given(
    _kinds,
    _operations,
    json_values,
    json_values,
    st.sampled_from([None, "ephemeralcontainers", "status"]),
)
def test_well_formed_review_with_arbitrary_objects(
    kind: tuple[str, str], operation: str, obj: Any, old: Any, sub_resource: str | None
) -> None:
    value = review(None, kind=kind[1], operation=operation, sub_resource=sub_resource)
    value["request"]["kind"]["group"] = kind[0]
    value["request"]["object"] = obj
    value["request"]["oldObject"] = old
    _run(encode(value))


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _nodes(child, (*path, index))
    return found


_REAL = [
    json.loads(fixture("pod_create.json")),
    json.loads(fixture("pod_ephemeralcontainers.json")),
    *(
        review(
            workload(kind, pod_spec([("a", "x:1")], init=[("b", "y:1")], volumes=[("v", "z:1")]))
        )
        for kind in KINDS
    ),
]


@FUZZ
@given(st.data(), json_values, st.booleans())
def test_real_reviews_with_one_node_replaced_or_removed(
    data: st.DataObject, replacement: Any, remove: bool
) -> None:
    value = copy.deepcopy(data.draw(st.sampled_from(_REAL)))
    path = data.draw(st.sampled_from(_nodes(value)[1:]))
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    _run(encode(value))


@FUZZ
@given(
    st.booleans(),
    st.one_of(st.none(), st.text(), st.lists(st.text(), max_size=50)),
    st.lists(st.text(), max_size=60),
    st.dictionaries(
        st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?", fullmatch=True),
        st.text(max_size=3000),
        max_size=8,
    ),
)
def test_responses_stay_within_kubernetes_limits(
    allowed: bool, message: str | list[str] | None, warnings: list[str], annotations: dict[str, str]
) -> None:
    body = review_response(
        "uid",
        allowed=allowed,
        message=None if allowed else message,
        warnings=warnings,
        audit_annotations=annotations,
    )
    json.dumps(body)
    response: Any = body["response"]
    assert response["uid"] == "uid"
    assert response["allowed"] is allowed
    shown = response.get("warnings", [])
    assert len(shown) <= MAX_WARNINGS
    assert all(0 < len(w) <= MAX_WARNING_CHARS for w in shown)
    assert not any(unicodedata.category(ch) == "Cc" for w in shown for ch in w)
    values = response.get("auditAnnotations", {}).values()
    assert sum(len(v.encode("utf-8", "surrogatepass")) for v in values) <= MAX_AUDIT_VALUE_BYTES
    if allowed:
        assert "status" not in response
    else:
        text = response["status"]["message"]
        assert text
        assert len(text.encode("utf-8", "surrogatepass")) <= MAX_MESSAGE_BYTES
    assert "patch" not in response
