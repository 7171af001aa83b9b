"""The cluster's TrustPolicies as the webhook sees them: Kopf's in-memory indices, no API calls.

Kopf fills two indices from its watches — TrustPolicies by name, and namespace labels by name (for
``namespaceSelector``) — and keeps them current. Readiness is a separate fact: Kopf runs regular
handlers only after every index has seen its initial listing, so the first namespace event (every
cluster has namespaces) marks the moment the policies are all known. Until then the webhook denies,
because an empty index at start-up is not "no policies".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from signgate.errors import PolicyError
from signgate.policy.compiled import CompiledPolicy, broken_policy, compile_policy
from signgate.policy.loading import describe_validation_error
from signgate.policy.model import TrustPolicy

log = logging.getLogger(__name__)


IndexLike = Mapping[str, Iterable[Any]]
"""What signgate needs of a ``kopf.Index``: keys mapped to collections of values."""


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One TrustPolicy from the cluster: compiled, or broken with the reason."""

    name: str
    policy: CompiledPolicy | None
    """None only when the object is not even a TrustPolicy shape (then nothing is governed)."""
    error: str | None
    generation: int | None
    authorities: int
    secret_refs: tuple[tuple[str, str | None, str, str], ...] = ()
    """(authority, namespace, name, key) of keys held in Secrets."""
    key_fingerprint: str | None = None
    """What those Secrets held when this entry was made (None without secretRefs)."""
    annotated_fingerprint: str | None = None
    """The fingerprint the policy's annotation records: what its reported status reflects."""


def secret_refs(body: Mapping[str, Any]) -> list[tuple[str, str | None, str, str]]:
    """(authority, namespace, name, key) for every key authority whose key lives in a Secret."""
    spec = body.get("spec") or {}
    found = []
    for authority in spec.get("authorities") or ():
        if not isinstance(authority, Mapping):
            continue
        ref = (
            (authority.get("key") or {}).get("secretRef")
            if isinstance(authority.get("key"), Mapping)
            else None
        )
        if isinstance(ref, Mapping) and ref.get("name"):
            found.append(
                (
                    str(authority.get("name")),
                    ref.get("namespace"),
                    str(ref["name"]),
                    str(ref.get("key") or "cosign.pub"),
                )
            )
    return found


def policy_entry(
    body: Mapping[str, Any],
    *,
    resolved_keys: Mapping[str, str] | None = None,
    key_errors: Sequence[str] = (),
) -> PolicyEntry:
    """Validate and compile one TrustPolicy object; never raises (errors are kept as data).

    Args:
        body: the object.
        resolved_keys: PEM by authority name, for keys read from Secrets.
        key_errors: why some Secret keys could not be read; any makes the policy broken.
    """
    metadata = body.get("metadata") or {}
    name = str(metadata.get("name", "?"))
    generation = metadata.get("generation")
    document = {key: body.get(key) for key in ("apiVersion", "kind", "metadata", "spec")}
    spec = body.get("spec")
    raw_spec: Mapping[str, Any] = spec if isinstance(spec, Mapping) else {}
    try:
        model = TrustPolicy.model_validate(document)
    except ValidationError as exc:
        error = describe_validation_error(exc)
        broken = broken_policy(name, raw_spec, error, generation=generation, source="cluster")
        return PolicyEntry(name, broken, error, generation, 0)
    authorities = len(model.spec.authorities)
    if key_errors:
        error = "; ".join(key_errors)
        broken = broken_policy(name, raw_spec, error, generation=generation, source="cluster")
        return PolicyEntry(name, broken, error, generation, authorities)
    try:
        compiled = compile_policy(model, source="cluster", resolved_keys=resolved_keys)
    except PolicyError as exc:
        broken = broken_policy(name, raw_spec, str(exc), generation=generation, source="cluster")
        return PolicyEntry(name, broken, str(exc), generation, authorities)
    return PolicyEntry(name, compiled, None, generation, authorities)


class ClusterPolicySource:
    """A `PolicySource` backed by Kopf indices (attached once Kopf has started)."""

    def __init__(self) -> None:
        self._policies: IndexLike | None = None
        self._namespaces: IndexLike | None = None
        self._ready = False

    def attach(self, *, policies: IndexLike, namespaces: IndexLike) -> None:
        """Hand over Kopf's live index views (from a startup handler)."""
        self._policies = policies
        self._namespaces = namespaces

    def mark_ready(self) -> None:
        """Every index has seen its initial listing."""
        if not self._ready:
            log.info("TrustPolicies indexed: %d", len(self.current()))
        self._ready = True

    def ready(self) -> bool:
        """Whether the policies are known."""
        return self._ready and self._policies is not None

    def entries(self) -> list[PolicyEntry]:
        """Every indexed TrustPolicy, broken ones included."""
        if self._policies is None:
            return []
        found: list[PolicyEntry] = []
        for key in list(self._policies):
            store: Iterable[PolicyEntry] = self._policies.get(key) or ()
            found.extend(store)
        return found

    def current(self) -> Sequence[CompiledPolicy]:
        """The policies in force (broken ones deny what they govern)."""
        return [entry.policy for entry in self.entries() if entry.policy is not None]

    def namespace_labels(self, namespace: str | None) -> Mapping[str, str] | None:
        """Labels of ``namespace`` from the index; a namespace not (yet) seen has only its name."""
        if not namespace:
            return None
        if self._namespaces is not None:
            for labels in self._namespaces.get(namespace) or ():
                return dict(labels)
        return {"kubernetes.io/metadata.name": namespace}
