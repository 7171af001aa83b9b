"""From an AdmissionReview to an AdmissionReview response: which images, what verdict, what patch.

One deadline per request: every image of the request is verified concurrently under it, and when
it passes the answer is a denial naming the images still pending — never an apiserver timeout
(which, with ``failurePolicy: Fail``, would also deny, but without saying why).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from signgate.admission.images import changed_fields, extract_images
from signgate.admission.patch import pin_patch
from signgate.admission.review import (
    MAX_AUDIT_ANNOTATIONS,
    AdmissionRequest,
    review_response,
    status_message,
)
from signgate.deadline import Deadline
from signgate.engine.verifier import Verifier
from signgate.errors import AdmissionRequestError, NamespaceLabelsUnknownError, truncate
from signgate.policy.compiled import CompiledPolicy
from signgate.policy.evaluate import ImageDecision
from signgate.registry import CredentialStore

log = logging.getLogger(__name__)

MAX_REASONS_IN_MESSAGE = 20


class PolicySource(Protocol):
    """Where the webhook gets its TrustPolicies: files, or the operator's in-memory index."""

    def ready(self) -> bool:
        """Whether policies are loaded (an empty index at start-up is not "no policies")."""

    def current(self) -> Sequence[CompiledPolicy]:
        """The policies in force now (broken ones included, as policies that deny)."""

    async def namespace_labels(self, namespace: str | None) -> Mapping[str, str] | None:
        """Labels of ``namespace`` for namespaceSelector, or None for a cluster-scoped object.

        Raises:
            NamespaceLabelsUnknownError: they cannot be known and might matter (deny).
        """


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the webhook answered, for metrics and logs."""

    response: dict[str, object]
    """The AdmissionReview answer, as sent."""
    allowed: bool
    images: tuple[ImageDecision, ...]
    pending: tuple[str, ...] = ()
    message: str = ""
    """Why it was denied (the answer's ``status.message``); empty when allowed."""


def _message(denied: Sequence[ImageDecision], pending: Sequence[str], total: int) -> str:
    count = len(denied) + len(pending)
    parts: list[str] = []
    for decision in denied:
        parts.extend(decision.reasons)
    parts.extend(
        f"{image}: not verified before the request's deadline passed; still waiting on the registry"
        for image in pending
    )
    shown = parts[:MAX_REASONS_IN_MESSAGE]
    more = len(parts) - len(shown)
    text = f"signgate denied {count} of {total} image(s): " + " | ".join(shown)
    if more:
        text += f" | and {more} more"
    return text


def _evidence(decisions: Sequence[ImageDecision]) -> dict[str, str]:
    """Release evidence for every admitted image (what ran, which policy admitted it, who signed
    it) and every Audit-mode failure, as the review's audit annotations.

    The apiserver takes at most `MAX_AUDIT_ANNOTATIONS` keys: past that, the rest are merged into
    the last one (a Pod of 65 images, or 33 under an Audit policy, used to raise, and the webhook
    answered HTTP 500 — an unexplained denial, though Audit must never deny).
    """
    entries: list[tuple[str, str]] = []
    for number, decision in enumerate(decisions):
        if decision.allowed and decision.pinned:
            signers = ", ".join(
                f"{o.policy}/{s.authority} ({s.signer})"
                for o in decision.outcomes
                for s in o.signatures
            )
            entries.append(
                (f"image-{number}", f"{decision.pinned} verified by {signers or 'no policy'}")
            )
        entries.extend((f"audit-{number}-{i}", note) for i, note in enumerate(decision.audit))
    if len(entries) <= MAX_AUDIT_ANNOTATIONS:
        return dict(entries)
    kept, rest = entries[: MAX_AUDIT_ANNOTATIONS - 1], entries[MAX_AUDIT_ANNOTATIONS - 1 :]
    merged = f"{len(rest)} more: " + " | ".join(f"{key}: {value}" for key, value in rest)
    return {**dict(kept), "more": merged}


def internal_error(request: AdmissionRequest, exc: Exception) -> Verdict:
    """The answer when deciding itself failed (a bug): a denial that says so, never an HTTP 500."""
    message = status_message(
        f"signgate could not decide ({type(exc).__name__}: {truncate(str(exc), 200)}); denied to "
        "be safe; what to do: retry, and report it with signgate's log if it persists"
    )
    return Verdict(
        review_response(request.uid, allowed=False, message=message), False, (), message=message
    )


async def decide_review(
    request: AdmissionRequest,
    *,
    mutate: bool,
    engine: Verifier,
    policies: PolicySource,
    deadline_seconds: float,
    credentials: CredentialStore | None = None,
) -> Verdict:
    """Answer one admission request. Never raises for bad input (cancellation excepted)."""
    # One deadline for the whole admission, from the start: a namespace read counts against it.
    deadline = Deadline.after(deadline_seconds)
    uid = request.uid
    try:
        fields = extract_images(request)
    except AdmissionRequestError as exc:
        message = status_message(f"signgate: {exc}")
        response = review_response(uid, allowed=False, message=message)
        return Verdict(response, False, (), message=message)
    if request.operation == "UPDATE":
        # Only containers whose image the update changes are checked (and pinned), each on its
        # own (docs/adr/0002). A container that kept its image was admitted when it arrived;
        # re-checking it would let a registry outage block every update (controllers removing
        # finalizers included), and re-pinning it would restart running containers and roll out
        # workloads nobody changed.
        fields = changed_fields(request, fields)
    if not fields:
        return Verdict(review_response(uid, allowed=True), True, ())
    images = list(dict.fromkeys(field.image for field in fields))
    if not policies.ready():
        message = (
            "signgate: TrustPolicies are not loaded yet, so nothing can be verified; "
            f"denied {len(images)} image(s), retry shortly"
        )
        response = review_response(uid, allowed=False, message=message)
        return Verdict(response, False, (), message=message)

    try:
        labels = await policies.namespace_labels(request.namespace)
    except NamespaceLabelsUnknownError as exc:
        message = status_message(f"signgate: {exc}; denied {len(images)} image(s), retry shortly")
        response = review_response(uid, allowed=False, message=message)
        return Verdict(response, False, (), message=message)
    current = policies.current()
    decisions: dict[str, ImageDecision] = {}
    for image in images:
        cached = engine.cached_decision(
            image, current, namespace_labels=labels, credentials=credentials
        )
        if cached is not None:
            decisions[image] = cached
    pending: tuple[str, ...] = ()
    missing = [image for image in images if image not in decisions]
    if missing:
        # One time for the whole admission: every image is judged at the same moment, whichever
        # order the registry answers in.
        now = engine.clock()
        tasks = {
            image: asyncio.ensure_future(
                engine.verify_image(
                    image,
                    current,
                    deadline,
                    namespace_labels=labels,
                    credentials=credentials,
                    now=now,
                    # A dry run must not change what a later real request is answered.
                    remember_denials=not request.dry_run,
                )
            )
            for image in missing
        }
        # The engine honours the deadline itself; this margin only catches a bug that would not.
        done, waiting = await asyncio.wait(tasks.values(), timeout=deadline.remaining() + 0.5)
        for task in waiting:
            task.cancel()
        decisions.update((image, task.result()) for image, task in tasks.items() if task in done)
        pending = tuple(image for image, task in tasks.items() if task in waiting)
    ordered = tuple(decisions[image] for image in images if image in decisions)

    denied = [d for d in ordered if not d.allowed]
    allowed = not denied and not pending
    warnings = [f"signgate: {w}" for d in ordered for w in d.warnings]
    audit = _evidence(ordered)
    if not allowed:
        message = status_message(_message(denied, pending, len(images)))
        response = review_response(
            uid, allowed=False, message=message, warnings=warnings, audit_annotations=audit
        )
        return Verdict(response, False, ordered, pending, message)
    patch = None
    if mutate:
        digests = {d.image: d.digest for d in ordered if d.digest is not None}
        patch = pin_patch(fields, digests) or None
    response = review_response(
        uid, allowed=True, warnings=warnings, audit_annotations=audit, patch=patch
    )
    return Verdict(response, True, ordered)
