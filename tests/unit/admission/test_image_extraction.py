"""Every image a request would run is found, with a pointer; what cannot be read is refused."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest

from signgate.admission import (
    SUPPORTED_KINDS,
    AdmissionRequest,
    ImageField,
    changed_fields,
    extract_images,
    parse_review,
)
from signgate.admission.pointer import split_pointer
from signgate.errors import AdmissionRequestError
from support.reviews import (
    DIGEST,
    KINDS,
    WORKLOAD_KINDS,
    fixture,
    pod_spec,
    request_of,
    review,
    workload,
)

FULL_SPEC = pod_spec(
    [("web", "nginx:1.27"), ("sidecar", "ghcr.io/acme/proxy:2")],
    init=[("migrate", "registry.example.com/shop/migrate:2.4.1")],
    ephemeral=[("debugger", "busybox:1.36")],
    volumes=[("models", "ghcr.io/acme/models:v3")],
)


def _resolve(obj: Any, pointer: str) -> Any:
    for token in split_pointer(pointer):
        obj = obj[int(token)] if isinstance(obj, list) else obj[token]
    return obj


def _error(value: dict[str, Any]) -> str:
    request = request_of(value)
    with pytest.raises(AdmissionRequestError) as info:
        extract_images(request)
    return str(info.value)


def test_real_pod_create_lists_containers_init_containers_and_image_volumes() -> None:
    request = parse_review(fixture("pod_create.json")).request
    fields = extract_images(request)
    assert fields == [
        ImageField("nginx:1.27", "/spec/containers/0/image", "web", "container"),
        ImageField(
            "registry.example.com/shop/exporter:0.9",
            "/spec/containers/1/image",
            "metrics",
            "container",
        ),
        ImageField(
            "registry.example.com/shop/migrate:2.4.1",
            "/spec/initContainers/0/image",
            "migrate",
            "initContainer",
        ),
        ImageField(
            "docker.io/fluent/fluent-bit:3.0@sha256:"
            "4f5d7c0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6",
            "/spec/initContainers/1/image",
            "log-shipper",
            "initContainer",
        ),
        ImageField(
            "ghcr.io/acme/models:v3", "/spec/volumes/1/image/reference", "models", "imageVolume"
        ),
    ]
    assert request.object is not None
    for field in fields:
        assert _resolve(request.object, field.pointer) == field.image


def test_ephemeral_container_subresource_lists_the_whole_pod_and_only_the_debugger_is_new() -> None:
    request = parse_review(fixture("pod_ephemeralcontainers.json")).request
    fields = extract_images(request)
    assert [(f.role, f.container, f.pointer) for f in fields] == [
        ("container", "web", "/spec/containers/0/image"),
        ("ephemeralContainer", "debugger-q7tnm", "/spec/ephemeralContainers/0/image"),
    ]
    assert _changed(request, fields) == {"busybox:1.36"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_yields_every_image_with_a_pointer_into_its_pod_spec(kind: str) -> None:
    obj = workload(kind, FULL_SPEC)
    request = request_of(review(obj))
    fields = extract_images(request)
    prefix = KINDS[kind][3]
    assert [(f.role, f.container, f.image, f.pointer) for f in fields] == [
        ("container", "web", "nginx:1.27", f"{prefix}/containers/0/image"),
        ("container", "sidecar", "ghcr.io/acme/proxy:2", f"{prefix}/containers/1/image"),
        (
            "initContainer",
            "migrate",
            "registry.example.com/shop/migrate:2.4.1",
            f"{prefix}/initContainers/0/image",
        ),
        ("ephemeralContainer", "debugger", "busybox:1.36", f"{prefix}/ephemeralContainers/0/image"),
        ("imageVolume", "models", "ghcr.io/acme/models:v3", f"{prefix}/volumes/1/image/reference"),
    ]
    for field in fields:
        assert _resolve(obj, field.pointer) == field.image


@pytest.mark.parametrize("kind", list(KINDS))
def test_any_version_of_the_right_group_is_read(kind: str) -> None:
    group = KINDS[kind][0]
    request = request_of(review(workload(kind, FULL_SPEC), group_version=(group, "v1beta9")))
    assert len(extract_images(request)) == 5


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("apps", "Foo"),
        ("", "Deployment"),  # right kind, wrong group
        ("batch", "Pod"),
        ("extensions", "Deployment"),
        ("argoproj.io", "Rollout"),
        ("", "EphemeralContainers"),  # the pre-1.23 shape of pods/ephemeralcontainers
        ("policy", "Eviction"),
    ],
)
def test_a_kind_we_cannot_read_is_an_error_not_an_empty_list(group: str, kind: str) -> None:
    obj = workload("Deployment", FULL_SPEC) | {"kind": kind}
    message = _error(review(obj, kind=kind, group_version=(group, "v1")))
    assert f"cannot read the images of kind {kind!r}" in message
    assert {("", "Pod"), ("batch", "CronJob"), ("", "PodTemplate")} <= SUPPORTED_KINDS


def test_ephemeralcontainers_subresource_of_something_else_is_refused() -> None:
    value = review(
        workload("Deployment", FULL_SPEC), operation="UPDATE", sub_resource="ephemeralcontainers"
    )
    value["request"]["oldObject"] = value["request"]["object"]
    assert "is not a Pod" in _error(value)


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_delete_and_connect_run_nothing(operation: str) -> None:
    obj = workload("Pod", FULL_SPEC)
    request = request_of(review(None, kind="Pod", operation=operation, old=obj))
    assert extract_images(request) == []
    assert _changed(request, []) == set()
    # CONNECT of pods/exec carries a PodExecOptions, a kind we otherwise refuse.
    exec_request = request_of(
        review(
            {"kind": "PodExecOptions", "command": ["sh"]},
            kind="PodExecOptions",
            operation=operation,
        )
    )
    assert extract_images(exec_request) == []


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_missing_object_on_create_or_update_is_an_error(operation: str) -> None:
    assert f"{operation} request has no object" in _error(
        review(None, kind="Pod", operation=operation)
    )


def test_object_whose_kind_contradicts_the_request_is_refused() -> None:
    obj = workload("Pod", FULL_SPEC) | {"kind": "ConfigMap"}
    assert "object has kind 'ConfigMap' but the request is for 'Pod'" in _error(
        review(obj, kind="Pod")
    )


def test_object_without_a_kind_field_is_read_by_the_request_kind() -> None:
    obj = workload("Deployment", FULL_SPEC)
    del obj["kind"]
    assert len(extract_images(request_of(review(obj, kind="Deployment")))) == 5


def _without(obj: dict[str, Any], *path: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    node = obj
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return obj


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Deployment", ("spec",)),
        ("Deployment", ("spec", "template")),
        ("StatefulSet", ("spec", "template")),
        ("CronJob", ("spec", "jobTemplate")),
        ("CronJob", ("spec", "jobTemplate", "spec")),
        ("CronJob", ("spec", "jobTemplate", "spec", "template")),
        ("PodTemplate", ("template",)),
    ],
)
def test_workload_without_a_template_runs_nothing(kind: str, path: tuple[str, ...]) -> None:
    obj = _without(workload(kind, FULL_SPEC), *path)
    assert extract_images(request_of(review(obj))) == []


def test_null_containers_as_the_apiserver_writes_an_empty_template_run_nothing() -> None:
    obj = workload("PodTemplate", {"containers": None})
    assert extract_images(request_of(review(obj))) == []


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        (
            "Deployment",
            ("spec", "template", "spec", "containers"),
            "spec.template.spec has no containers field",
        ),
        ("Job", ("spec", "template", "spec"), "spec.template has no spec"),
        ("Pod", ("spec",), "object has no spec"),
        ("Pod", ("spec", "containers"), "spec has no containers field"),
    ],
)
def test_template_without_containers_is_invalid(
    kind: str, path: tuple[str, ...], expected: str
) -> None:
    obj = _without(workload(kind, FULL_SPEC), *path)
    assert expected in _error(review(obj))


def _set(obj: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    tokens = split_pointer(pointer)
    node: Any = obj
    for token in tokens[:-1]:
        node = node[int(token)] if isinstance(node, list) else node[token]
    last = tokens[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return obj


@pytest.mark.parametrize(
    ("pointer", "value", "expected"),
    [
        (
            "/spec/template/spec/containers/1/image",
            42,
            "container 'sidecar': image is not a string",
        ),
        ("/spec/template/spec/containers/1/image", None, "container 'sidecar' has no image"),
        ("/spec/template/spec/containers/1/image", "", "container 'sidecar' has an empty image"),
        ("/spec/template/spec/containers/1/image", ["nginx"], "image is not a string"),
        ("/spec/template/spec/initContainers/0/image", {"x": 1}, "initContainer 'migrate': image"),
        ("/spec/template/spec/ephemeralContainers/0/image", 1.5, "ephemeralContainer 'debugger'"),
        ("/spec/template/spec/volumes/1/image/reference", 7, "image volume 'models': image is not"),
        ("/spec/template/spec/volumes/1/image", "ghcr.io/x", "image volume 'models': image is not"),
        (
            "/spec/template/spec/volumes/1/image/reference",
            None,
            "image volume 'models' has no image",
        ),
        (
            "/spec/template/spec/containers",
            {"web": {}},
            "spec.template.spec.containers is not a list",
        ),
        (
            "/spec/template/spec/initContainers",
            "x",
            "spec.template.spec.initContainers is not a list",
        ),
        ("/spec/template/spec/volumes", {}, "spec.template.spec.volumes is not a list"),
        ("/spec/template/spec/containers/0", "nginx", "spec.template.spec.containers[0] is not an"),
        ("/spec/template/spec/volumes/0", None, "spec.template.spec.volumes[0] is not an object"),
        ("/spec/template/spec", [], "spec.template.spec is not an object"),
        ("/spec/template", "x", "spec.template is not an object"),
        ("/spec", 3, "spec is not an object"),
    ],
)
def test_unreadable_image_fields_are_errors_naming_the_place(
    pointer: str, value: Any, expected: str
) -> None:
    obj = _set(workload("Deployment", FULL_SPEC), pointer, value)
    assert expected in _error(review(obj))


def test_container_without_a_name_is_named_by_position() -> None:
    obj = workload("Pod", FULL_SPEC)
    del obj["spec"]["containers"][1]["name"]
    fields = extract_images(request_of(review(obj)))
    assert fields[1].container == "containers[1]"
    message = _error(review(_set(obj, "/spec/containers/1/image", 5)))
    assert "container 'containers[1]': image is not a string" in message


def test_other_volume_types_are_not_images() -> None:
    obj = workload("Pod", pod_spec([("web", "nginx:1.27")]))
    obj["spec"]["volumes"].append({"name": "tmp", "emptyDir": {}, "image": None})
    assert [f.role for f in extract_images(request_of(review(obj)))] == ["container"]


def test_pointer_tokens_are_escaped() -> None:
    # Names cannot contain "/" or "~" in Kubernetes, but the pointer must be right regardless.
    obj = workload("Pod", pod_spec([("web", "nginx:1.27")]))
    request = request_of(review(obj))
    assert extract_images(request)[0].pointer == "/spec/containers/0/image"
    from signgate.admission import json_pointer

    assert json_pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"
    assert split_pointer("/a~1b/c~0d/0") == ["a/b", "c~d", "0"]


# -- changed_fields -----------------------------------------------------------------------------


def _changed(request: AdmissionRequest, fields: Sequence[ImageField]) -> set[str]:
    return {field.image for field in changed_fields(request, fields)}


def _three(images: tuple[str, str, str]) -> dict[str, Any]:
    return pod_spec([("api", images[0]), ("worker", images[1]), ("proxy", images[2])])


@pytest.mark.parametrize("kind", list(KINDS))
def test_update_changing_one_of_three_images_makes_only_it_new(kind: str) -> None:
    old = workload(kind, _three(("app/api:1", "app/worker:1", "envoy:1.30")))
    new = workload(kind, _three(("app/api:1", "app/worker:2", "envoy:1.30")))
    request = request_of(review(new, operation="UPDATE", old=old))
    fields = extract_images(request)
    assert len(fields) == 3
    assert _changed(request, fields) == {"app/worker:2"}


def test_update_that_changes_no_image_has_nothing_new() -> None:
    obj = workload("Deployment", FULL_SPEC)
    changed = copy.deepcopy(obj)
    changed["spec"]["replicas"] = 10
    request = request_of(review(changed, operation="UPDATE", old=obj))
    assert _changed(request, extract_images(request)) == set()


def test_create_makes_every_image_new() -> None:
    request = request_of(review(workload("Deployment", FULL_SPEC)))
    assert _changed(request, extract_images(request)) == {
        "nginx:1.27",
        "ghcr.io/acme/proxy:2",
        "registry.example.com/shop/migrate:2.4.1",
        "busybox:1.36",
        "ghcr.io/acme/models:v3",
    }


def test_pinning_an_image_makes_it_new() -> None:
    old = workload("Pod", pod_spec([("web", "nginx:1.27")]))
    new = workload("Pod", pod_spec([("web", f"nginx:1.27@{DIGEST}")]))
    request = request_of(review(new, operation="UPDATE", old=old))
    assert _changed(request, extract_images(request)) == {f"nginx:1.27@{DIGEST}"}


@pytest.mark.parametrize(
    "old",
    [
        None,
        {"kind": "Pod", "spec": {"containers": [{"name": "web", "image": 3}]}},
        {"kind": "Pod", "spec": "garbage"},
        {"kind": "ConfigMap", "data": {}},
        {"kind": "Pod"},
    ],
)
def test_unreadable_old_object_makes_every_image_new(old: dict[str, Any] | None) -> None:
    new = workload("Pod", pod_spec([("web", "nginx:1.27"), ("side", "envoy:1")]))
    request = request_of(review(new, operation="UPDATE", old=old))
    assert _changed(request, extract_images(request)) == {"nginx:1.27", "envoy:1"}


def test_the_same_image_in_another_container_is_checked_there() -> None:
    # Issue 15: the string ran in the web container, unpinned; its tag may since point elsewhere.
    # A debug container (or `kubectl set image` on a sidecar) running it is checked on its own.
    old = workload("Pod", pod_spec([("web", "nginx:1.27")]))
    new = workload("Pod", pod_spec([("web", "nginx:1.27")], ephemeral=[("dbg", "nginx:1.27")]))
    request = request_of(
        review(new, operation="UPDATE", old=old, sub_resource="ephemeralcontainers")
    )
    changed = changed_fields(request, extract_images(request))
    assert [(f.role, f.container) for f in changed] == [("ephemeralContainer", "dbg")]


def test_set_image_on_one_container_checks_it_whatever_the_others_ran() -> None:
    old = workload("Deployment", pod_spec([("web", "app:v1"), ("side", "envoy:1")]))
    new = workload("Deployment", pod_spec([("web", "app:v1"), ("side", "app:v1")]))
    request = request_of(review(new, operation="UPDATE", old=old))
    changed = changed_fields(request, extract_images(request))
    assert [(f.container, f.image) for f in changed] == [("side", "app:v1")]


def test_a_container_that_kept_its_image_stays_exempt() -> None:
    # A finalizer removal on an old Pod must not need the registry.
    old = workload("Pod", pod_spec([("web", "app:v1"), ("side", "envoy:1")]))
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = []
    request = request_of(review(new, operation="UPDATE", old=old))
    assert changed_fields(request, extract_images(request)) == []


def test_workload_kinds_cover_every_controller_that_makes_pods() -> None:
    assert set(WORKLOAD_KINDS) == {
        "PodTemplate",
        "ReplicationController",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
    }
    assert {kind for _, kind in SUPPORTED_KINDS} == {"Pod", *WORKLOAD_KINDS}
