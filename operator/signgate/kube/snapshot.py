"""A one-off read of a cluster, for ``signgate audit`` and ``signgate explain``.

The operator learns the cluster through Kopf's watches; these commands only need a snapshot: the
TrustPolicies in force (compiled exactly as the operator compiles them, Secret-held keys included),
namespace labels, and the workloads that run images. They log in the way kubectl does
(``$KUBECONFIG`` or ``~/.kube/config``), or as the Pod's service account inside a cluster.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import kopf

from signgate.errors import ConfigError
from signgate.kube.api import KubeApi
from signgate.kube.handlers import resolve_secret_keys
from signgate.kube.source import policy_entry, secret_refs
from signgate.policy.compiled import CompiledPolicy
from signgate.policy.model import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)


def connect() -> KubeApi:
    """A client logged in like kubectl (or as the Pod's service account).

    Raises:
        ConfigError: no credentials found.
    """
    settings = kopf.OperatorSettings()
    try:
        info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
            settings=settings
        )
    except Exception as exc:  # Kopf raises its own errors for broken kubeconfigs
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise ConfigError(f"cannot read the Kubernetes credentials in {where}: {exc}") from exc
    if info is None:
        raise ConfigError(
            "no Kubernetes credentials: set $KUBECONFIG (or ~/.kube/config), or give --policy "
            "and --manifests to work without a cluster"
        )
    return KubeApi(info)


async def cluster_policies(api: KubeApi, secret_namespace: str) -> list[CompiledPolicy]:
    """Every TrustPolicy in the cluster, compiled as the operator would (broken ones included)."""
    policies: list[CompiledPolicy] = []
    for body in await api.list_all(f"/apis/{GROUP}/{VERSION}/{PLURAL}"):
        refs = secret_refs(body)
        resolved, errors = await resolve_secret_keys(api, refs, secret_namespace)
        entry = policy_entry(body, resolved_keys=resolved, key_errors=errors)
        if entry.policy is not None:
            policies.append(entry.policy)
    return policies


async def namespace_labels(api: KubeApi) -> dict[str, dict[str, str]]:
    """Labels of every namespace, by name."""
    found: dict[str, dict[str, str]] = {}
    for ns in await api.list_all("/api/v1/namespaces"):
        metadata = ns.get("metadata") or {}
        labels = metadata.get("labels") or {}
        found[str(metadata.get("name"))] = {str(k): str(v) for k, v in labels.items()}
    return found


@dataclass(frozen=True, slots=True)
class WorkloadKind:
    """A kind of object that runs images, and where to list it."""

    group: str
    version: str
    kind: str
    plural: str

    @property
    def api_version(self) -> str:
        """``apps/v1``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None) -> str:
        """The list endpoint, cluster-wide or in one namespace."""
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        where = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{where}/{self.plural}"


WORKLOAD_KINDS: tuple[WorkloadKind, ...] = (
    WorkloadKind("apps", "v1", "Deployment", "deployments"),
    WorkloadKind("apps", "v1", "StatefulSet", "statefulsets"),
    WorkloadKind("apps", "v1", "DaemonSet", "daemonsets"),
    WorkloadKind("apps", "v1", "ReplicaSet", "replicasets"),
    WorkloadKind("batch", "v1", "CronJob", "cronjobs"),
    WorkloadKind("batch", "v1", "Job", "jobs"),
    WorkloadKind("", "v1", "ReplicationController", "replicationcontrollers"),
    WorkloadKind("", "v1", "Pod", "pods"),
)
"""Listed in this order: a controller comes before what it makes, so what it makes can be
folded into it (a Deployment's ReplicaSets and Pods are reported as the Deployment)."""

_CONTROLLERS = {k.kind for k in WORKLOAD_KINDS}


def controlled_by_listed_kind(obj: dict[str, Any]) -> bool:
    """Whether a workload the audit already reports (its controller) made this object."""
    for owner in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if not isinstance(owner, dict) or not owner.get("controller"):
            continue
        if owner.get("kind") in _CONTROLLERS:
            return True
    return False


async def cluster_workloads(
    api: KubeApi, namespaces: Sequence[str]
) -> list[tuple[WorkloadKind, dict[str, Any]]]:
    """Every top-level workload, cluster-wide or in ``namespaces``: objects made by another
    listed workload (a Deployment's ReplicaSets, their Pods) are left to their controller."""
    found: list[tuple[WorkloadKind, dict[str, Any]]] = []
    for kind in WORKLOAD_KINDS:
        where: Sequence[str | None] = list(namespaces) or [None]
        for namespace in where:
            for obj in await api.list_all(kind.path(namespace)):
                if not controlled_by_listed_kind(obj):
                    found.append((kind, obj))
    return found
