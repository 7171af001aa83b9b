"""Publish each TrustPolicy's recent decisions in its ``status.recentDecisions``.

Every webhook replica sees only the admissions sent to it, so each writes its own numbers under
``recentDecisions.replicas.<replica>`` and, next to them, the sum over every replica whose entry is
fresh. A replica writes only when its own numbers changed (new decisions, or old ones leaving the
window), so an idle cluster costs no API calls. Two replicas writing at once may leave the sum a
little behind until the next write; the per-replica entries are always exact.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

from signgate.kube.api import KubeApi, KubeApiError
from signgate.kube.recent import Counts, RecentDecisions, counts_of, status_of
from signgate.kube.source import ClusterPolicySource
from signgate.policy.model import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 30.0


def replica_name() -> str:
    """This replica's name in the status: its Pod name, else the host name."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _parse_stamp(value: object) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def merged_status(
    mine: Mapping[str, object],
    published: Mapping[str, Any],
    *,
    replica: str,
    now: float,
    window: float,
) -> dict[str, object]:
    """The ``recentDecisions`` merge patch: this replica's numbers, the sum over fresh replicas,
    and ``null`` for entries of replicas gone for longer than the window."""
    replicas = published.get("replicas")
    others: dict[str, Counts] = {}
    gone: list[str] = []
    for name, entry in (replicas or {}).items() if isinstance(replicas, Mapping) else ():
        if name == replica:
            continue
        updated = _parse_stamp(entry.get("updated")) if isinstance(entry, Mapping) else None
        if updated is None or updated < now - window:
            gone.append(str(name))
        else:
            others[str(name)] = counts_of(entry)
    total = counts_of(mine)
    for counts in others.values():
        total = total + counts
    patch = status_of(total, window)
    entries: dict[str, object] = dict.fromkeys(gone)
    entries[replica] = {**mine, "updated": _stamp(now)}
    patch["replicas"] = entries
    return patch


async def publish_once(
    recent: RecentDecisions,
    source: ClusterPolicySource,
    api: KubeApi,
    *,
    replica: str,
    published: dict[str, dict[str, object]],
) -> int:
    """Write the status of every policy whose numbers changed here; returns how many."""
    written = 0
    for entry in source.entries():
        mine = status_of(recent.counts(entry.name), recent.window)
        if published.get(entry.name) == mine:
            continue
        path = f"/apis/{GROUP}/{VERSION}/{PLURAL}/{entry.name}"
        try:
            body = await api.read(path)
            status = body.get("status") if isinstance(body, dict) else None
            current = status.get("recentDecisions") if isinstance(status, dict) else None
            patch = merged_status(
                mine,
                current if isinstance(current, Mapping) else {},
                replica=replica,
                now=time.time(),
                window=recent.window,
            )
            await api.patch_status(path, {"recentDecisions": patch})
        except KubeApiError as exc:
            if exc.status != 404:  # a policy deleted meanwhile has no status to write
                log.warning("could not write the recent decisions of %r: %s", entry.name, exc)
            continue
        published[entry.name] = mine
        written += 1
    return written


async def publish_recent_decisions(
    recent: RecentDecisions,
    source: ClusterPolicySource,
    api: KubeApi,
    *,
    replica: str,
    changed: asyncio.Event,
    interval: float = INTERVAL_SECONDS,
) -> None:
    """Publish until cancelled: soon after ``changed`` is set, then at most once per ``interval``
    (and every ``interval`` anyway, as old decisions leave the window)."""
    published: dict[str, dict[str, object]] = {}
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout=interval)
        changed.clear()
        if api.connected and source.ready():
            try:
                await publish_once(recent, source, api, replica=replica, published=published)
            except Exception:
                log.exception("publishing recent decisions failed; trying again in %.0fs", interval)
        await asyncio.sleep(interval)
