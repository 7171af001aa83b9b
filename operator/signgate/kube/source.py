"""The cluster's TrustPolicies as the webhook sees them: Kopf's in-memory indices.

Kopf fills two indices from its watches — TrustPolicies by name, and namespace labels by name (for
``namespaceSelector``) — and keeps them current. Readiness is a separate fact: Kopf runs regular
handlers only after every index has seen its initial listing, so the first namespace event (every
cluster has namespaces) marks the moment the policies are all known. Until then the webhook denies,
because an empty index at start-up is not "no policies".

Where the watches fall short, and what is done about it:

* A TrustPolicy deleted while the watch is down is never reported: Kopf's re-list after an outage
  delivers what exists, not what went, so the index keeps it and it would govern for ever. A
  periodic re-sync (`signgate.kube.resync`) lists the policies and removes from force every
  indexed one that no longer exists (`remove`, by uid), and enforces the newer version of one
  whose change the index missed (`refresh`). A failed list removes nothing.
* A namespace created a moment ago may not have reached the namespace index when its first Pod is
  admitted. Its labels are then read from the API (`namespace_labels`), because a policy that
  selects namespaces by label must not be skipped: whoever may create namespaces (with the labels
  that an admission policy gives every new namespace, say) could otherwise race the watch. When
  that read fails and any policy has a namespaceSelector, the labels are unknown and the admission
  is denied, saying so (`NamespaceLabelsUnknownError`). Treating unknown labels as "every selector
  matches" is not safe: a selected Audit- or Warn-mode policy would then govern an image that,
  with the real labels, no policy governs, which is denied by default (``unmatched: deny``); and
  the read fails only when the API server that is asking us cannot answer a GET, which is rare
  and retried by every controller.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from signgate.cache import SingleFlight, TTLCache
from signgate.errors import NamespaceLabelsUnknownError, PolicyError
from signgate.kube.api import KubeApi, KubeApiError
from signgate.policy.compiled import CompiledPolicy, broken_policy, compile_policy
from signgate.policy.loading import describe_validation_error
from signgate.policy.model import TrustPolicy
from signgate.policy.sources import NAMESPACE_NAME_LABEL

log = logging.getLogger(__name__)


NAMESPACE_READ_SECONDS = 1.0
"""How long an admission waits to read a namespace the watch has not delivered yet.

It counts against the admission's one deadline (8 s in the chart, inside the apiserver's
``timeoutSeconds`` of 10 s): it must stay short. One namespace from the apiserver that is asking
us takes milliseconds.
"""
NAMESPACE_READ_TTL = 10.0
"""How long labels read that way are used (the watch normally delivers within a second)."""
NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""An RFC 1123 label: the only shape a namespace name has, checked before it goes into a URL."""

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
    uid: str | None = None
    """``metadata.uid``: which object this is (a policy deleted and re-created has a new one)."""
    resource_version: str | None = None
    """``metadata.resourceVersion`` of the object this entry was made from."""


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


def _text(value: object) -> str | None:
    return str(value) if value is not None else None


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
    uid, version = _text(metadata.get("uid")), _text(metadata.get("resourceVersion"))
    document = {key: body.get(key) for key in ("apiVersion", "kind", "metadata", "spec")}
    spec = body.get("spec")
    raw_spec: Mapping[str, Any] = spec if isinstance(spec, Mapping) else {}
    try:
        model = TrustPolicy.model_validate(document)
    except ValidationError as exc:
        error = describe_validation_error(exc)
        broken = broken_policy(name, raw_spec, error, generation=generation, source="cluster")
        return PolicyEntry(name, broken, error, generation, 0, uid=uid, resource_version=version)
    authorities = len(model.spec.authorities)
    if key_errors:
        error = "; ".join(key_errors)
        broken = broken_policy(name, raw_spec, error, generation=generation, source="cluster")
        return PolicyEntry(
            name, broken, error, generation, authorities, uid=uid, resource_version=version
        )
    try:
        compiled = compile_policy(model, source="cluster", resolved_keys=resolved_keys)
    except PolicyError as exc:
        broken = broken_policy(name, raw_spec, str(exc), generation=generation, source="cluster")
        return PolicyEntry(
            name, broken, str(exc), generation, authorities, uid=uid, resource_version=version
        )
    return PolicyEntry(
        name, compiled, None, generation, authorities, uid=uid, resource_version=version
    )


class ClusterPolicySource:
    """A `PolicySource` backed by Kopf indices (attached once Kopf has started).

    Args:
        api: reads a namespace the watch has not delivered yet (None: such a namespace's
            labels are unknown, which denies when a policy selects namespaces).
        namespace_read_seconds: how long an admission waits for that read.
        namespace_ttl: how long labels read that way are used, until the watch has them.
    """

    def __init__(
        self,
        api: KubeApi | None = None,
        *,
        namespace_read_seconds: float = NAMESPACE_READ_SECONDS,
        namespace_ttl: float = NAMESPACE_READ_TTL,
    ) -> None:
        self._policies: IndexLike | None = None
        self._namespaces: IndexLike | None = None
        self._ready = False
        self._api = api
        self._read_seconds = namespace_read_seconds
        self._ttl = namespace_ttl
        self._read: TTLCache[str, dict[str, str]] = TTLCache(max_entries=4096)
        self._reading: SingleFlight[str, dict[str, str]] = SingleFlight()
        self._gone: set[str] = set()
        """uids of policies found deleted by a re-sync, though Kopf's index still holds them."""
        self._fresher: dict[str, tuple[str | None, PolicyEntry]] = {}
        """uid -> (the resourceVersion Kopf's index has, the newer entry a re-sync made)."""

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

    def _indexed(self) -> list[PolicyEntry]:
        """What Kopf's index holds, deleted policies it was never told about included."""
        if self._policies is None:
            return []
        found: list[PolicyEntry] = []
        for key in list(self._policies):
            store: Iterable[PolicyEntry] = self._policies.get(key) or ()
            found.extend(store)
        return found

    def _in_force(self) -> list[tuple[str | None, PolicyEntry]]:
        """(the resourceVersion in Kopf's index, the entry in force) for each policy in force.

        Kopf's index, less the policies a re-sync found deleted, and with the newer entry a
        re-sync made for a policy whose change the index has not seen (until it sees any).
        """
        found: list[tuple[str | None, PolicyEntry]] = []
        for entry in self._indexed():
            in_force = entry
            if entry.uid is not None:
                if entry.uid in self._gone:
                    continue
                fresher = self._fresher.get(entry.uid)
                if fresher is not None and fresher[0] == entry.resource_version:
                    in_force = fresher[1]
            found.append((entry.resource_version, in_force))
        return found

    def entries(self) -> list[PolicyEntry]:
        """Every TrustPolicy in force, broken ones included."""
        return [entry for _, entry in self._in_force()]

    def current(self) -> Sequence[CompiledPolicy]:
        """The policies in force (broken ones deny what they govern)."""
        return [entry.policy for entry in self.entries() if entry.policy is not None]

    # -- the periodic re-sync (`signgate.kube.resync`) --

    def in_force(self) -> dict[str, tuple[str | None, PolicyEntry]]:
        """uid -> (the resourceVersion in Kopf's index, the entry in force), for a re-sync."""
        return {entry.uid: (v, entry) for v, entry in self._in_force() if entry.uid is not None}

    def remove(self, uids: Iterable[str]) -> list[PolicyEntry]:
        """Stop enforcing the policies with these uids (deleted; Kopf was never told); the
        entries that were in force for them.

        A uid is never reused, so the policy stays removed; one re-created under the same name
        is another object, which the watch indexes as usual.
        """
        wanted = set(uids)
        removed = [entry for uid, (_, entry) in self.in_force().items() if uid in wanted]
        self._gone.update(wanted)
        for uid in wanted:
            self._fresher.pop(uid, None)
        return removed

    def refresh(self, uid: str, indexed_version: str | None, entry: PolicyEntry) -> None:
        """Enforce ``entry`` (made from a newer object) while Kopf's index still holds the
        policy at ``indexed_version``; whatever the index holds next wins again."""
        self._fresher[uid] = (indexed_version, entry)

    def prune(self) -> None:
        """Forget re-sync results that Kopf's index has caught up with."""
        indexed = {e.uid: e.resource_version for e in self._indexed() if e.uid is not None}
        self._gone &= indexed.keys()
        self._fresher = {
            uid: (version, entry)
            for uid, (version, entry) in self._fresher.items()
            if uid in indexed and indexed[uid] == version
        }

    # -- namespace labels --

    async def namespace_labels(self, namespace: str | None) -> Mapping[str, str] | None:
        """Labels of ``namespace`` for namespaceSelector (None for cluster-scoped objects).

        From the watch's index; for a namespace the watch has not delivered yet, read from the
        API (kept ``namespace_ttl`` seconds). When no policy has a namespaceSelector, labels
        change nothing and a namespace not yet seen has only its name label.

        Raises:
            NamespaceLabelsUnknownError: the namespace could not be read while a policy selects
                namespaces by label; the admission is denied (see the module docstring).
        """
        if not namespace:
            return None
        if self._namespaces is not None:
            for labels in self._namespaces.get(namespace) or ():
                return dict(labels)
        if not any(policy.namespace_selector is not None for policy in self.current()):
            return {NAMESPACE_NAME_LABEL: namespace}
        cached = self._read.get(namespace)
        if cached is None:
            cached = await self._reading.run(namespace, lambda: self._read_namespace(namespace))
        return dict(cached)

    async def _read_namespace(self, namespace: str) -> dict[str, str]:
        reason = ""
        if self._api is None or not self._api.connected:
            reason = "not connected to the Kubernetes API"
        elif not NAMESPACE_NAME.fullmatch(namespace):
            reason = "not a namespace name"
        else:
            try:
                async with asyncio.timeout(self._read_seconds):
                    doc = await self._api.read(f"/api/v1/namespaces/{namespace}")
            except KubeApiError as exc:
                reason = str(exc)
            except TimeoutError:
                reason = f"no answer within {self._read_seconds:g}s"
            else:
                labels = _labels_of(doc, namespace)
                if labels is not None:
                    self._read.put(namespace, labels, self._ttl)
                    log.debug("namespace %r read before its watch event: %s", namespace, labels)
                    return labels
                reason = "the answer is not that Namespace"
        log.warning("labels of namespace %r unknown: %s", namespace, reason)
        raise NamespaceLabelsUnknownError(
            f"the labels of namespace {namespace!r} are not known (the watch has not delivered "
            f"it yet, and reading it failed: {reason}), and a TrustPolicy with a "
            "namespaceSelector may govern it"
        )


def _labels_of(doc: object, namespace: str) -> dict[str, str] | None:
    """The labels of a Namespace object read from the API, or None if it is not that one."""
    if not isinstance(doc, Mapping) or doc.get("kind") not in (None, "Namespace"):
        return None
    metadata = doc.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("name") != namespace:
        return None
    labels = metadata.get("labels") or {}
    if not isinstance(labels, Mapping):
        return None
    return {str(key): str(value) for key, value in labels.items()}
