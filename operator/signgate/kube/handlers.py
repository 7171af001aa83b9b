"""Kopf handlers: index TrustPolicies and namespaces, report each policy's health in its status.

The handlers are registered on a registry passed in (not Kopf's global one), so that tests and the
CLI build exactly the operator they mean.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import kopf

from signgate.kube.api import KubeApi, KubeApiError
from signgate.kube.source import ClusterPolicySource, PolicyEntry, policy_entry, secret_refs
from signgate.policy.model import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

KEYS_ANNOTATION = "keys.signgate.dev/fingerprint"
"""A fingerprint of a policy's Secret-held keys; changing it makes Kopf re-index the policy.

Not under ``signgate.dev/``: Kopf ignores changes to annotations under its own storage prefix,
and this one must count as a change, so that the policy's status is reported again.
"""

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


SecretRef = tuple[str, str | None, str, str]


LastGoodKeys = dict[tuple[str, str, str], str]
"""(namespace, Secret, key) → the PEM last read from it."""


async def resolve_secret_keys(
    api: KubeApi,
    refs: Sequence[SecretRef],
    default_namespace: str,
    last_good: LastGoodKeys | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Read the Secret-held keys of a policy: (PEM by authority, errors).

    With ``last_good``, a read that fails for a passing reason (a timeout, a 5xx, a 429) gives
    the key read last time instead of breaking the policy: Kopf re-indexes a policy on every
    event, its status writes included, and a blip of the API must not make an Enforce policy
    deny everything it governs. A Secret that is gone (404) or forbidden (403) is an error.
    """
    resolved: dict[str, str] = {}
    errors: list[str] = []
    for authority, namespace, name, key in refs:
        ns = namespace or default_namespace
        where = f"{ns}/{name}"
        try:
            data = await api.read_secret(ns, name)
        except KubeApiError as exc:
            remembered = (last_good or {}).get((ns, name, key))
            if exc.status not in (403, 404) and remembered is not None:
                log.warning("Secret %s not read (%s); using the key read before", where, exc)
                resolved[authority] = remembered
                continue
            reason = {404: "not found", 403: "not readable (RBAC)"}.get(exc.status, str(exc))
            errors.append(f"authority {authority!r}: Secret {where}: {reason}")
            continue
        if key not in data:
            errors.append(f"authority {authority!r}: Secret {where} has no key {key!r}")
            continue
        try:
            resolved[authority] = data[key].decode("utf-8")
            if last_good is not None:
                last_good[(ns, name, key)] = resolved[authority]
        except UnicodeDecodeError:
            errors.append(f"authority {authority!r}: Secret {where} key {key!r} is not a PEM text")
    return resolved, errors


def _fingerprint(resolved: Mapping[str, str], errors: list[str]) -> str:
    text = json.dumps({"keys": dict(resolved), "errors": errors}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def watch_secret_keys(
    source: ClusterPolicySource,
    api: KubeApi,
    *,
    default_namespace: str,
    interval: float,
    last_good: LastGoodKeys | None = None,
) -> None:
    """Re-read Secret-held keys every ``interval`` seconds; re-index policies whose keys changed.

    Kopf re-indexes a policy when the policy changes, not when a Secret it names does. When the
    Secrets' contents differ from what the policy's annotation records, the annotation changes,
    which makes Kopf re-index it (and re-report its status). Runs until cancelled.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            await _recheck_secret_keys(source, api, default_namespace, last_good)
        except Exception:
            log.exception("re-reading Secret-held keys failed; trying again in %.0fs", interval)


async def _recheck_secret_keys(
    source: ClusterPolicySource,
    api: KubeApi,
    default_namespace: str,
    last_good: LastGoodKeys | None = None,
) -> None:
    """One pass of `watch_secret_keys`."""
    for entry in source.entries():
        if entry.key_fingerprint is None or not api.connected:
            continue
        resolved, errors = await resolve_secret_keys(
            api, entry.secret_refs, default_namespace, last_good
        )
        fingerprint = _fingerprint(resolved, errors)
        # Compare with the annotation, not with the index: the index is re-read on every event
        # (a status write included) and may already hold the new keys while the policy's status,
        # written only on changes to the object, still reports the old ones.
        if fingerprint == entry.annotated_fingerprint:
            continue
        log.info("keys of TrustPolicy %r changed in their Secrets; re-indexing", entry.name)
        try:
            await api.annotate(
                f"/apis/{GROUP}/{VERSION}/{PLURAL}/{entry.name}", {KEYS_ANNOTATION: fingerprint}
            )
        except KubeApiError as exc:
            log.warning("could not mark TrustPolicy %r for re-indexing: %s", entry.name, exc)


async def index_entry(
    api: KubeApi,
    body: Mapping[str, Any],
    *,
    secret_namespace: str,
    last_good: LastGoodKeys | None = None,
) -> PolicyEntry:
    """The index entry of one TrustPolicy object: its Secret-held keys read, then compiled."""
    refs = tuple(secret_refs(body))
    resolved, errors = await resolve_secret_keys(api, refs, secret_namespace, last_good)
    entry = policy_entry(body, resolved_keys=resolved, key_errors=errors)
    if refs:
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        entry = replace(
            entry,
            secret_refs=refs,
            key_fingerprint=_fingerprint(resolved, errors),
            annotated_fingerprint=annotations.get(KEYS_ANNOTATION),
        )
    return entry


def register_handlers(
    registry: kopf.OperatorRegistry,
    source: ClusterPolicySource,
    *,
    api: KubeApi,
    login: bool = True,
    secret_namespace: str = "signgate",  # noqa: S107 - a namespace name, not a secret
    last_good: LastGoodKeys | None = None,
) -> None:
    """Register signgate's handlers on ``registry``, feeding ``source``.

    Args:
        registry: where to register.
        source: the policy source the webhook reads.
        api: signgate's own API client (Secrets, annotations, Events).
        login: False leaves authentication to handlers the caller registered (tests); ``api``
            must then be connected by the caller.
        secret_namespace: where a ``secretRef`` without a namespace looks.
        last_good: the keys last read from Secrets, shared with `watch_secret_keys`: used when a
            read fails for a passing reason.
    """
    last_good = last_good if last_good is not None else {}
    if login:

        @kopf.on.login(registry=registry, id="login")
        async def authenticate(**kwargs: Any) -> kopf.ConnectionInfo | None:
            # In a Pod: the service account; elsewhere: $KUBECONFIG or ~/.kube/config.
            info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
            if info is not None:
                api.connect(info)
            return info

    async def entry_of(body: Mapping[str, Any]) -> PolicyEntry:
        return await index_entry(api, body, secret_namespace=secret_namespace, last_good=last_good)

    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id="trustpolicies")
    async def index_policy(name: str, body: kopf.Body, **_: Any) -> dict[str, PolicyEntry]:
        return {name: await entry_of(body)}

    @kopf.index("", "v1", "namespaces", registry=registry, id="namespaces")
    async def index_namespace(
        name: str, labels: kopf.Labels, **_: Any
    ) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    @kopf.on.startup(registry=registry, id="attach-indices")
    async def attach(**kwargs: Any) -> None:
        # Kopf passes each index as a keyword argument named after its handler id.
        source.attach(policies=kwargs["trustpolicies"], namespaces=kwargs["namespaces"])

    # All handlers are coroutines: Kopf runs sync ones in a thread pool, which is not needed here.
    # Kopf runs regular handlers only once every index has its initial listing, and every
    # cluster has namespaces: the first namespace event therefore means "policies loaded".
    @kopf.on.event("", "v1", "namespaces", registry=registry, id="policies-loaded")
    async def loaded(**_: Any) -> None:
        source.mark_ready()

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, id="status")
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="status")
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, id="status")
    async def report(body: kopf.Body, patch: kopf.Patch, status: kopf.Status, **_: Any) -> None:
        entry = await entry_of(body)
        wanted = policy_status(entry, status)
        # Writing an identical status yields no new resourceVersion, and Kopf would then hold
        # this object's next change for its consistency timeout: write only what changed.
        for key, value in wanted.items():
            if status.get(key) != value:
                patch.status[key] = value
        if entry.error is not None:
            kopf.warn(body, reason="InvalidTrustPolicy", message=entry.error[:1000])
