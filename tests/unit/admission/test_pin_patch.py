"""The pinning JSONPatch pins exactly the unpinned images, once, where they are written."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from signgate.admission import apply_patch, extract_images, parse_review, pin_patch
from signgate.admission.pointer import split_pointer
from signgate.errors import InvalidReferenceError, PatchError
from support.reviews import (
    DIGEST,
    KINDS,
    OTHER_DIGEST,
    fixture,
    pod_spec,
    request_of,
    review,
    workload,
)

PINNED = f"ghcr.io/acme/proxy:2@{OTHER_DIGEST}"
SPEC = pod_spec(
    [("web", "nginx:1.27"), ("sidecar", PINNED), ("again", "nginx:1.27")],
    init=[("migrate", "registry.example.com/shop/migrate:2.4.1")],
    ephemeral=[("debugger", "busybox:1.36")],
    volumes=[("models", "ghcr.io/acme/models:v3")],
)
DIGESTS = {
    "nginx:1.27": DIGEST,
    "registry.example.com/shop/migrate:2.4.1": DIGEST,
    "busybox:1.36": OTHER_DIGEST,
    "ghcr.io/acme/models:v3": OTHER_DIGEST,
    PINNED: DIGEST,  # never used: the field already carries a digest
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_pin_then_apply_pins_exactly_the_unpinned_images_and_is_idempotent(kind: str) -> None:
    obj = workload(kind, SPEC)
    original = copy.deepcopy(obj)
    fields = extract_images(request_of(review(obj)))
    patch = pin_patch(fields, DIGESTS)
    prefix = KINDS[kind][3]
    assert patch == [
        {"op": "replace", "path": f"{prefix}/containers/0/image", "value": f"nginx:1.27@{DIGEST}"},
        {"op": "replace", "path": f"{prefix}/containers/2/image", "value": f"nginx:1.27@{DIGEST}"},
        {
            "op": "replace",
            "path": f"{prefix}/initContainers/0/image",
            "value": f"registry.example.com/shop/migrate:2.4.1@{DIGEST}",
        },
        {
            "op": "replace",
            "path": f"{prefix}/ephemeralContainers/0/image",
            "value": f"busybox:1.36@{OTHER_DIGEST}",
        },
        {
            "op": "replace",
            "path": f"{prefix}/volumes/1/image/reference",
            "value": f"ghcr.io/acme/models:v3@{OTHER_DIGEST}",
        },
    ]

    patched = apply_patch(obj, patch)
    assert obj == original  # the input is not modified
    after = extract_images(request_of(review(patched)))
    assert [f.image for f in after] == [
        f"nginx:1.27@{DIGEST}",
        PINNED,
        f"nginx:1.27@{DIGEST}",
        f"registry.example.com/shop/migrate:2.4.1@{DIGEST}",
        f"busybox:1.36@{OTHER_DIGEST}",
        f"ghcr.io/acme/models:v3@{OTHER_DIGEST}",
    ]
    assert [f.pointer for f in after] == [f.pointer for f in fields]
    # Only the image strings changed.
    for field in after:
        _put(patched, field.pointer, "X")
        _put(original, field.pointer, "X")
    assert patched == original

    # Reinvocation (the apiserver may call a mutating webhook twice): nothing more to do.
    assert pin_patch(after, {**DIGESTS, **{f.image: DIGEST for f in after}}) == []


def _put(obj: Any, pointer: str, value: str) -> None:
    *parents, last = split_pointer(pointer)
    for token in parents:
        obj = obj[int(token)] if isinstance(obj, list) else obj[token]
    obj[int(last) if isinstance(obj, list) else last] = value


def test_real_pod_pins_everything_but_the_already_pinned_sidecar() -> None:
    request = parse_review(fixture("pod_create.json")).request
    fields = extract_images(request)
    digests = {f.image: DIGEST for f in fields}
    patch = pin_patch(fields, digests)
    assert [op["path"] for op in patch] == [
        "/spec/containers/0/image",
        "/spec/containers/1/image",
        "/spec/initContainers/0/image",
        "/spec/volumes/1/image/reference",
    ]
    assert request.object is not None
    patched = apply_patch(request.object, patch)
    assert patched["spec"]["containers"][0]["image"] == f"nginx:1.27@{DIGEST}"
    assert request.object["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_images_without_a_digest_get_no_operation() -> None:
    fields = extract_images(request_of(review(workload("Pod", SPEC))))
    assert pin_patch(fields, {}) == []
    assert [op["value"] for op in pin_patch(fields, {"busybox:1.36": DIGEST})] == [
        f"busybox:1.36@{DIGEST}"
    ]


@pytest.mark.parametrize(
    "digest", ["sha256:abc", "sha512:" + "a" * 128, "latest", "", "SHA256:" + "a" * 64]
)
def test_a_digest_that_is_not_sha256_is_refused(digest: str) -> None:
    fields = extract_images(request_of(review(workload("Pod", pod_spec([("web", "nginx:1")])))))
    with pytest.raises(InvalidReferenceError):
        pin_patch(fields, {"nginx:1": digest})


def test_apply_patch_replaces_nested_values_and_shares_untouched_parts() -> None:
    obj: dict[str, Any] = {"a": {"b": [1, {"c": 2}]}, "d": {"e": 3}}
    patched = apply_patch(obj, [{"op": "replace", "path": "/a/b/1/c", "value": 9}])
    assert patched == {"a": {"b": [1, {"c": 9}]}, "d": {"e": 3}}
    assert obj == {"a": {"b": [1, {"c": 2}]}, "d": {"e": 3}}
    assert patched["d"] is obj["d"]


def test_apply_patch_follows_rfc_6901_escapes() -> None:
    obj = {"a/b": {"m~n": 1}, "~1": 2}
    assert apply_patch(obj, [{"op": "replace", "path": "/a~1b/m~0n", "value": 5}]) == {
        "a/b": {"m~n": 5},
        "~1": 2,
    }
    assert apply_patch(obj, [{"op": "replace", "path": "/~01", "value": 3}])["~1"] == 3


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ({"op": "replace", "path": "/spec/missing", "value": 1}, "does not exist"),
        ({"op": "replace", "path": "/spec/containers/5/image", "value": 1}, "out of range"),
        ({"op": "replace", "path": "/spec/containers/-/image", "value": 1}, "not an index"),
        ({"op": "replace", "path": "/spec/containers/01/image", "value": 1}, "not an index"),
        ({"op": "replace", "path": "/spec/containers/" + "9" * 5000, "value": 1}, "out of range"),
        ({"op": "replace", "path": "/spec/restartPolicy/x", "value": 1}, "through a scalar"),
        ({"op": "replace", "path": "spec", "value": 1}, "does not start with '/'"),
        ({"op": "replace", "path": "/spec/~2", "value": 1}, "bad '~' escape"),
        ({"op": "replace", "path": "/spec/~", "value": 1}, "bad '~' escape"),
        ({"op": "replace", "path": "", "value": 1}, "not an object"),
        ({"op": "replace", "path": "/spec"}, "'value' is missing"),
        ({"op": "replace", "value": 1}, "'path' must be a string"),
        ({"op": "add", "path": "/spec/x", "value": 1}, "only 'replace'"),
        ({"path": "/spec", "value": 1}, "only 'replace'"),
    ],
)
def test_apply_patch_refuses_what_it_cannot_apply(op: dict[str, object], expected: str) -> None:
    obj = workload("Pod", pod_spec([("web", "nginx:1")]))
    with pytest.raises(PatchError, match=expected):
        apply_patch(obj, [op])


def test_apply_patch_can_replace_the_whole_document_with_an_object() -> None:
    assert apply_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}]) == {"b": 2}
