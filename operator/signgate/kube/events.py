"""Kubernetes Events for denials, on the object and on the workload that owns it.

A Pod denied because of its image is usually created by a ReplicaSet, which a person never looks
at: the Event goes on the Pod (for ``kubectl get events``) and on its controller (for
``kubectl describe replicaset``). Posting is fire-and-forget, bounded, and never delays or changes
an admission answer; dry-run requests post nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from signgate.admission.review import AdmissionRequest
from signgate.kube.api import KubeApi, KubeApiError

log = logging.getLogger(__name__)

REASON = "ImageNotVerified"


def _references(request: AdmissionRequest) -> list[dict[str, Any]]:
    obj = request.object or {}
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    name = request.name or metadata.get("name") or metadata.get("generateName")
    if not name:
        return []
    group = request.kind.group
    refs = [
        {
            "apiVersion": f"{group}/{request.kind.version}" if group else request.kind.version,
            "kind": request.kind.kind,
            "name": name,
            "namespace": request.namespace,
            **({"uid": metadata["uid"]} if isinstance(metadata.get("uid"), str) else {}),
        }
    ]
    for owner in metadata.get("ownerReferences") or ():
        if isinstance(owner, dict) and owner.get("controller") and owner.get("name"):
            refs.append(
                {
                    "apiVersion": owner.get("apiVersion"),
                    "kind": owner.get("kind"),
                    "name": owner["name"],
                    "namespace": request.namespace,
                    **({"uid": owner["uid"]} if isinstance(owner.get("uid"), str) else {}),
                }
            )
    return refs


class EventReporter:
    """Posts a Warning Event for each denial (callable from the webhook)."""

    def __init__(self, api: KubeApi, *, max_pending: int = 100) -> None:
        self._api = api
        self._max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def __call__(self, request: AdmissionRequest, message: str) -> None:
        """Schedule Events for a denied request (not for dry runs or cluster-scoped objects)."""
        if request.dry_run or not request.namespace or not self._api.connected:
            return
        for reference in _references(request):
            if len(self._pending) >= self._max_pending:
                self.dropped += 1  # an Event storm must not become a memory leak
                continue
            task = asyncio.get_running_loop().create_task(
                self._post(request.namespace, reference, message), name="signgate:event"
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _post(self, namespace: str, reference: dict[str, Any], message: str) -> None:
        try:
            await self._api.post_event(
                namespace=namespace, involved=reference, reason=REASON, message=message
            )
        except KubeApiError as exc:
            log.warning(
                "could not record an Event on %s/%s: %s", reference["kind"], reference["name"], exc
            )

    async def drain(self) -> None:
        """Wait briefly (2 s at most) for Events in flight, at shutdown."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=2.0)
