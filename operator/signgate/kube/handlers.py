"""Kopf handlers: index TrustPolicies and namespaces, report each policy's health in its status.

The handlers are registered on a registry passed in (not Kopf's global one), so that tests and the
CLI build exactly the operator they mean.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from signgate.kube.source import ClusterPolicySource, PolicyEntry, policy_entry
from signgate.policy.crd import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

MAX_CONDITION_MESSAGE = 4096
"""metav1.Condition allows 32768 bytes; a longer status patch is refused by the apiserver."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy_status(entry: PolicyEntry, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The status a TrustPolicy should carry: a Ready condition, counts, observedGeneration."""
    ready = entry.error is None and entry.policy is not None
    condition = {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "Compiled" if ready else "Invalid",
        "message": "keys and patterns are valid"
        if ready
        else (entry.error or "invalid")[:MAX_CONDITION_MESSAGE],
        "observedGeneration": entry.generation,
        "lastTransitionTime": _now(),
    }
    for old in (previous or {}).get("conditions") or ():
        # The transition time moves only when the status does (metav1.Condition semantics).
        if (
            isinstance(old, Mapping)
            and old.get("type") == "Ready"
            and old.get("status") == condition["status"]
        ):
            condition["lastTransitionTime"] = (
                old.get("lastTransitionTime") or condition["lastTransitionTime"]
            )
    return {
        "observedGeneration": entry.generation,
        "authorities": entry.authorities,
        "conditions": [condition],
    }


def register_handlers(
    registry: kopf.OperatorRegistry, source: ClusterPolicySource, *, login: bool = True
) -> None:
    """Register signgate's handlers on ``registry``, feeding ``source``.

    ``login=False`` leaves authentication to handlers the caller registered (tests).
    """
    if login:

        @kopf.on.login(registry=registry, id="login")
        def authenticate(**kwargs: Any) -> kopf.ConnectionInfo | None:
            # In a Pod: the service account; elsewhere: $KUBECONFIG or ~/.kube/config.
            return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="trustpolicies")
    def index_policy(name: str, body: kopf.Body, **_: Any) -> dict[str, PolicyEntry]:
        return {name: policy_entry(body)}

    @kopf.index("", "v1", "namespaces", registry=registry, id="namespaces")
    def index_namespace(name: str, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    @kopf.on.startup(registry=registry, id="attach-indices")
    def attach(**kwargs: Any) -> None:
        # Kopf passes each index as a keyword argument named after its handler id.
        source.attach(policies=kwargs["trustpolicies"], namespaces=kwargs["namespaces"])

    # Kopf runs regular handlers only once every index has its initial listing, and every
    # cluster has namespaces: the first namespace event therefore means "policies loaded".
    @kopf.on.event("", "v1", "namespaces", registry=registry, id="policies-loaded")
    def loaded(**_: Any) -> None:
        source.mark_ready()

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="status")
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="status")
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="status")
    def report(body: kopf.Body, patch: kopf.Patch, status: kopf.Status, **_: Any) -> None:
        entry = policy_entry(body)
        wanted = policy_status(entry, status)
        # Writing an identical status yields no new resourceVersion, and Kopf would then hold
        # this object's next change for its consistency timeout: write only what changed.
        for key, value in wanted.items():
            if status.get(key) != value:
                patch.status[key] = value
        if entry.error is not None:
            kopf.warn(body, reason="InvalidTrustPolicy", message=entry.error[:1000])
