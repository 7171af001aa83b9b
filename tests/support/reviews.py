"""AdmissionReview v1 requests shaped like the ones the apiserver sends.

One kit for every test that needs a review: the parser and image-extraction unit tests, the
webhook, operator and fault-matrix integration tests, the fuzz corpus, the benchmarks and the demo.

Objects are written the way the apiserver serialises them after defaulting: ``creationTimestamp:
null``, ``resources: {}``, ``terminationMessagePath``, ``options`` with the operation's kind, and
``oldObject: null`` on CREATE. Verbatim examples recorded from a real apiserver live in
``tests/unit/admission/reviews/*.json`` (:func:`fixture`).

Typical use::

    body = review(workload("Deployment", pod_spec(["nginx:1.27"], init=[("migrate", image)])))

Only :func:`request_of` imports ``signgate`` (to parse a review the way the server does).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from signgate.admission import AdmissionRequest

REVIEWS = Path(__file__).resolve().parents[1] / "unit" / "admission" / "reviews"
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
UID = "705ab4f5-6393-11e8-b7cc-42010a800002"
"""The default ``request.uid`` (the one in the Kubernetes documentation's example)."""
NAME = "web"
NAMESPACE = "default"

# kind -> (group, version, resource, JSON pointer to the pod spec)
KINDS: dict[str, tuple[str, str, str, str]] = {
    "Pod": ("", "v1", "pods", "/spec"),
    "PodTemplate": ("", "v1", "podtemplates", "/template/spec"),
    "ReplicationController": ("", "v1", "replicationcontrollers", "/spec/template/spec"),
    "Deployment": ("apps", "v1", "deployments", "/spec/template/spec"),
    "ReplicaSet": ("apps", "v1", "replicasets", "/spec/template/spec"),
    "StatefulSet": ("apps", "v1", "statefulsets", "/spec/template/spec"),
    "DaemonSet": ("apps", "v1", "daemonsets", "/spec/template/spec"),
    "Job": ("batch", "v1", "jobs", "/spec/template/spec"),
    "CronJob": ("batch", "v1", "cronjobs", "/spec/jobTemplate/spec/template/spec"),
}
WORKLOAD_KINDS = [kind for kind in KINDS if kind != "Pod"]

Image = str | tuple[str, str]
"""An image reference (the container is named by its place: ``c0``, ``i0``, ``e0``, ``v0``), or
a ``(name, image)`` pair."""


def _named(images: Sequence[Image], prefix: str) -> list[tuple[str, str]]:
    return [
        (f"{prefix}{i}", image) if isinstance(image, str) else image
        for i, image in enumerate(images)
    ]


def container(name: str, image: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def pod_spec(
    containers: Sequence[Image],
    *,
    init: Sequence[Image] = (),
    ephemeral: Sequence[Image] = (),
    volumes: Sequence[Image] = (),
    restart_policy: str = "Always",
) -> dict[str, Any]:
    """A defaulted PodSpec.

    Each list holds images or ``(name, image)`` pairs; ``volumes`` are image volumes, listed after
    a ``config`` ConfigMap volume (so the first image volume is ``/volumes/1``).
    """
    named = _named(containers, "c")
    volume_list: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
        *(
            {"name": name, "image": {"reference": ref, "pullPolicy": "IfNotPresent"}}
            for name, ref in _named(volumes, "v")
        ),
    ]
    spec: dict[str, Any] = {
        "volumes": volume_list,
        "containers": [container(n, i) for n, i in named],
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler",
    }
    if init:
        spec["initContainers"] = [container(n, i) for n, i in _named(init, "i")]
    if ephemeral:
        spec["ephemeralContainers"] = [
            {**container(n, i), "targetContainerName": named[0][0]}
            for n, i in _named(ephemeral, "e")
        ]
    return spec


def _template(spec: dict[str, Any] | None) -> dict[str, Any]:
    return {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}}, "spec": spec}


def workload(
    kind: str, spec: dict[str, Any], *, name: str = NAME, namespace: str = NAMESPACE
) -> dict[str, Any]:
    """A ``kind`` object (one of `KINDS`) whose pod template has ``spec``."""
    group, version, _, _ = KINDS[kind]
    spec = copy.deepcopy(spec)
    obj: dict[str, Any] = {
        "kind": kind,
        "apiVersion": f"{group}/{version}" if group else version,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": None,
            "labels": {"app": "web"},
        },
    }
    selector = {"matchLabels": {"app": "web"}}
    if kind == "Pod":
        obj["spec"] = spec
        obj["status"] = {}
    elif kind == "PodTemplate":
        obj["template"] = _template(spec)
    elif kind == "ReplicationController":
        obj["spec"] = {"replicas": 2, "selector": {"app": "web"}, "template": _template(spec)}
        obj["status"] = {"replicas": 0}
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        obj["spec"] = {"selector": selector, "template": _template(spec)}
        if kind != "DaemonSet":
            obj["spec"]["replicas"] = 3
        if kind == "Deployment":
            obj["spec"]["strategy"] = {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            }
            obj["spec"]["revisionHistoryLimit"] = 10
            obj["spec"]["progressDeadlineSeconds"] = 600
        if kind == "StatefulSet":
            obj["spec"]["serviceName"] = "web"
            obj["spec"]["podManagementPolicy"] = "OrderedReady"
            obj["spec"]["volumeClaimTemplates"] = [
                {
                    "metadata": {"name": "data", "creationTimestamp": None},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ]
        obj["status"] = {}
    elif kind == "Job":
        obj["spec"] = {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": 6,
            "completionMode": "NonIndexed",
            "suspend": False,
            "template": _template(spec),
        }
        obj["status"] = {}
    elif kind == "CronJob":
        obj["spec"] = {
            "schedule": "*/5 * * * *",
            "concurrencyPolicy": "Forbid",
            "suspend": False,
            "jobTemplate": {
                "metadata": {"creationTimestamp": None},
                "spec": {"backoffLimit": 2, "template": _template(spec)},
            },
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
        }
        obj["status"] = {}
    else:  # pragma: no cover - a typo in a test
        raise KeyError(kind)
    return obj


def review(
    obj: dict[str, Any] | None,
    *,
    kind: str | None = None,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    sub_resource: str | None = None,
    dry_run: bool | None = None,
    uid: str = UID,
    group_version: tuple[str, str] | None = None,
    name: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview v1 request for ``obj`` (or, on DELETE, ``old``).

    ``kind`` defaults to the object's (else Pod); ``name`` and ``namespace`` to its metadata's
    (else `NAME` and `NAMESPACE`). ``dryRun`` is sent only when ``dry_run`` is given.
    """
    source = obj or old
    if not isinstance(source, dict):  # a malformed object under test
        source = {}
    kind = kind or source.get("kind") or "Pod"
    group, version, resource, _ = KINDS.get(kind, ("apps", "v1", kind.lower() + "s", ""))
    if group_version is not None:
        group, version = group_version
    metadata = source.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    options_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions"}.get(
        operation, "DeleteOptions"
    )
    request: dict[str, Any] = {
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": name or _text(metadata.get("name"), NAME),
        "namespace": namespace or _text(metadata.get("namespace"), NAMESPACE),
        "operation": operation,
        "userInfo": {
            "username": "kubernetes-admin",
            "groups": ["kubeadm:cluster-admins", "system:authenticated"],
        },
        "object": obj,
        "oldObject": old,
        "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"},
    }
    if sub_resource is not None:
        request["subResource"] = sub_resource
        request["requestSubResource"] = sub_resource
    if dry_run is not None:
        request["dryRun"] = dry_run
    return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}


def _text(value: object, default: str) -> str:
    return value if isinstance(value, str) else default


def encode(value: object) -> bytes:
    return json.dumps(value).encode()


def request_of(value: dict[str, Any]) -> AdmissionRequest:
    """Encode ``value`` and parse it the way the server does."""
    from signgate.admission import parse_review

    return parse_review(encode(value)).request


def fixture(name: str) -> bytes:
    """A review recorded from a real apiserver (``tests/unit/admission/reviews/NAME``)."""
    return (REVIEWS / name).read_bytes()
