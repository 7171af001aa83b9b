"""AdmissionReview v1 requests as the apiserver sends them, for posting to the webhook."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from typing import Any

# group, version, resource, and where the pod spec sits in the object.
KINDS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "Pod": ("", "v1", "pods", ("spec",)),
    "Deployment": ("apps", "v1", "deployments", ("spec", "template", "spec")),
    "ReplicaSet": ("apps", "v1", "replicasets", ("spec", "template", "spec")),
    "StatefulSet": ("apps", "v1", "statefulsets", ("spec", "template", "spec")),
    "DaemonSet": ("apps", "v1", "daemonsets", ("spec", "template", "spec")),
    "Job": ("batch", "v1", "jobs", ("spec", "template", "spec")),
    "CronJob": ("batch", "v1", "cronjobs", ("spec", "jobTemplate", "spec", "template", "spec")),
    "ReplicationController": ("", "v1", "replicationcontrollers", ("spec", "template", "spec")),
}


def pod_spec(
    images: Sequence[str],
    *,
    init: Sequence[str] = (),
    ephemeral: Sequence[str] = (),
    volumes: Sequence[str] = (),
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    }
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": image} for i, image in enumerate(init)]
    if ephemeral:
        spec["ephemeralContainers"] = [
            {"name": f"e{i}", "image": image} for i, image in enumerate(ephemeral)
        ]
    if volumes:
        spec["volumes"] = [
            {"name": f"v{i}", "image": {"reference": image}} for i, image in enumerate(volumes)
        ]
    return spec


def workload(
    kind: str, spec: dict[str, Any], *, name: str = "app", namespace: str = "default"
) -> dict[str, Any]:
    group, version, _, path = KINDS[kind]
    obj: dict[str, Any] = {
        "apiVersion": f"{group}/{version}" if group else version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
    }
    cursor = obj
    for part in path[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[path[-1]] = copy.deepcopy(spec)
    return obj


def review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    sub_resource: str | None = None,
    dry_run: bool = False,
    uid: str | None = None,
) -> dict[str, Any]:
    source = obj or old
    assert source is not None
    kind = source["kind"]
    group, version, resource, _ = KINDS[kind]
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": source["metadata"]["name"],
        "namespace": source["metadata"].get("namespace"),
        "operation": operation,
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"},
    }
    if sub_resource:
        request["subResource"] = sub_resource
        request["requestSubResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
