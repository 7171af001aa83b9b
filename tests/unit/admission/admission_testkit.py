"""AdmissionReview v1 requests shaped like the ones the apiserver sends.

Objects are written the way the apiserver serialises them after defaulting: ``creationTimestamp:
null``, ``resources: {}``, ``terminationMessagePath``, ``options`` with the operation's kind, and
``oldObject: null`` on CREATE. Verbatim examples live in ``reviews/*.json``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from signgate.admission import AdmissionRequest, parse_review

REVIEWS = Path(__file__).parent / "reviews"
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32

# kind -> (group, version, resource, pointer to the pod spec)
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
    containers: Sequence[tuple[str, str]],
    *,
    init: Sequence[tuple[str, str]] = (),
    ephemeral: Sequence[tuple[str, str]] = (),
    image_volumes: Sequence[tuple[str, str]] = (),
    restart_policy: str = "Always",
) -> dict[str, Any]:
    """A defaulted PodSpec; each list holds (name, image) pairs."""
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
        *(
            {"name": name, "image": {"reference": ref, "pullPolicy": "IfNotPresent"}}
            for name, ref in image_volumes
        ),
    ]
    spec: dict[str, Any] = {
        "volumes": volumes,
        "containers": [container(n, i) for n, i in containers],
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler",
    }
    if init:
        spec["initContainers"] = [container(n, i) for n, i in init]
    if ephemeral:
        spec["ephemeralContainers"] = [
            {**container(n, i), "targetContainerName": containers[0][0]} for n, i in ephemeral
        ]
    return spec


def _template(spec: dict[str, Any] | None) -> dict[str, Any]:
    return {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}}, "spec": spec}


def workload(
    kind: str, spec: dict[str, Any], *, name: str = "web", namespace: str = "shop"
) -> dict[str, Any]:
    """A ``kind`` object whose pod template has ``spec``."""
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
    uid: str = "705ab4f5-6393-11e8-b7cc-42010a800002",
    group_version: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """An AdmissionReview v1 request for ``obj`` (its kind, unless ``kind`` is given)."""
    kind = kind or (obj or {}).get("kind") or "Pod"
    group, version, resource, _ = KINDS.get(kind, ("apps", "v1", kind.lower() + "s", ""))
    if group_version is not None:
        group, version = group_version
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
        "name": "web",
        "namespace": "shop",
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


def encode(value: object) -> bytes:
    return json.dumps(value).encode()


def request_of(value: dict[str, Any]) -> AdmissionRequest:
    """Encode ``value`` and parse it the way the server does."""
    return parse_review(encode(value)).request


def fixture(name: str) -> bytes:
    return (REVIEWS / name).read_bytes()
