"""The periodic re-sync of TrustPolicies: what the watch failed to report stops being enforced.

Kopf learns of a deletion only from the watch. When the watch is down (an API outage, a network
partition) and a TrustPolicy is deleted meanwhile, the re-list Kopf makes on reconnecting delivers
every policy that exists and nothing about the one that went: it stays in the index and keeps
governing — denying what it no longer should, or admitting under rules since withdrawn. A watch
that hangs silently misses changes the same way.

Every few minutes this lists the TrustPolicies and compares them with what is in force:

* a policy in force *before* the list began and absent from it was deleted (a consistent list
  cannot miss an object that exists): it is removed from force, its cached verdicts forgotten,
  and a warning names it. A policy indexed while the list was in flight is left alone: the list
  may predate it.
* a policy whose listed ``resourceVersion`` differs from the one in force changed without the
  index seeing it (or the event is in flight): the listed version is compiled and enforced until
  Kopf's index holds anything newer than what it held then.

A list that fails (the API is down) changes nothing: enforcement stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from signgate.kube.api import KubeApi, KubeApiError
from signgate.kube.source import ClusterPolicySource, PolicyEntry
from signgate.policy.model import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 300.0
"""How often the policies are re-listed: the longest a missed deletion goes on being enforced."""

POLICIES_PATH = f"/apis/{GROUP}/{VERSION}/{PLURAL}"

Rebuild = Callable[[Mapping[str, Any]], Awaitable[PolicyEntry]]
"""Turns a listed TrustPolicy into its index entry (`signgate.kube.handlers.index_entry`)."""
Forget = Callable[[str], int]
"""Drops the cached verdicts of a policy identity (`signgate.engine.Verifier.forget_policy`)."""


@dataclass(frozen=True, slots=True)
class Resync:
    """What one re-sync did."""

    listed: int = 0
    removed: tuple[str, ...] = ()
    """Names of the policies taken out of force."""
    refreshed: tuple[str, ...] = ()
    """Names of the policies enforced at a newer version than the index had."""
    failed: str | None = None
    """Why the list failed (then nothing changed)."""
    forgotten: int = 0
    """Cached verdicts dropped."""
    skipped: bool = False
    """The policies were not loaded yet, or the API not connected: nothing to compare."""


async def resync_policies(
    source: ClusterPolicySource,
    api: KubeApi,
    *,
    rebuild: Rebuild,
    forget: Forget | None = None,
    interval: float = INTERVAL_SECONDS,
) -> None:
    """Re-sync every ``interval`` seconds (`resync_once`) until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            await resync_once(source, api, rebuild=rebuild, forget=forget)
        except Exception:
            log.exception("re-syncing TrustPolicies failed; trying again in %.0fs", interval)


async def resync_once(
    source: ClusterPolicySource,
    api: KubeApi,
    *,
    rebuild: Rebuild,
    forget: Forget | None = None,
) -> Resync:
    """List the TrustPolicies once and bring what is in force in line with them."""
    if not source.ready() or not api.connected:
        return Resync(skipped=True)
    before = source.in_force()  # taken before the list starts: see the module docstring
    try:
        items = await api.list_all(POLICIES_PATH)
    except KubeApiError as exc:
        log.warning("TrustPolicies could not be re-listed (%s); nothing changed", exc)
        return Resync(failed=str(exc))
    listed: dict[str, Mapping[str, Any]] = {}
    for item in items:
        uid = (item.get("metadata") or {}).get("uid")
        if isinstance(uid, str) and uid:
            listed[uid] = item

    removed = source.remove(uid for uid in before if uid not in listed)
    for entry in removed:
        log.warning(
            "TrustPolicy %r (uid %s) no longer exists, but its deletion never reached the "
            "watch; it no longer governs anything",
            entry.name,
            entry.uid,
        )

    refreshed: list[str] = []
    for uid, (indexed_version, entry) in before.items():
        body = listed.get(uid)
        version = (body.get("metadata") or {}).get("resourceVersion") if body else None
        if body is None or version is None or str(version) == entry.resource_version:
            continue
        fresh = await rebuild(body)
        source.refresh(uid, indexed_version, fresh)
        refreshed.append(entry.name)
        log.info(
            "TrustPolicy %r changed (resourceVersion %s, was %s) before the watch reported it; "
            "enforcing the listed version",
            entry.name,
            version,
            entry.resource_version,
        )
    source.prune()

    forgotten = 0
    if forget is not None and removed:
        still = {entry.policy.identity for entry in source.entries() if entry.policy is not None}
        for identity in {e.policy.identity for e in removed if e.policy is not None} - still:
            forgotten += forget(identity)
    return Resync(
        listed=len(items),
        removed=tuple(entry.name for entry in removed),
        refreshed=tuple(refreshed),
        forgotten=forgotten,
    )
