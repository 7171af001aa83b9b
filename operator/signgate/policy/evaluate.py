"""Turn verification results into decisions a person can act on. No I/O.

Semantics (design.md): an image must satisfy every TrustPolicy that governs it (AND across
policies); within one policy it needs valid signatures from at least ``threshold`` distinct
authorities, including every ``required`` one; an image no policy governs is denied unless the
server says otherwise. Warn and Audit policies never deny: their failures become warnings and audit
notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from signgate.policy.advice import attestation_advice, signature_advice
from signgate.policy.compiled import CompiledPolicy, Mode
from signgate.reference import Digest
from signgate.signatures.found import Discovery
from signgate.signatures.trusted_root import TrustedRoot
from signgate.signatures.verify import (
    PreparedSignature,
    Rejection,
    RejectionKind,
    VerifiedAttestation,
    VerifiedSignature,
    verify_attestation,
    verify_with_authority,
)

UnmatchedAction = Literal["deny", "warn", "allow"]
MAX_DETAILS = 4


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """How one policy judged one image."""

    policy: str
    mode: Mode
    satisfied: bool
    signatures: tuple[VerifiedSignature, ...] = ()
    """One verified signature per authority that counted."""
    reason: str = ""
    """Why it is not satisfied (empty when satisfied)."""
    attestations: tuple[VerifiedAttestation, ...] = ()
    """One verified attestation per required predicate type that was found."""
    via: str = ""
    """How the image came to be covered, when not by its own signatures (e.g. its index)."""


@dataclass(frozen=True, slots=True)
class ImageDecision:
    """The verdict on one image, with everything needed to explain it."""

    image: str
    """As the user or the workload wrote it."""
    reference: str | None
    """Normalised, e.g. ``docker.io/library/nginx:1.27``; None if it did not parse."""
    digest: Digest | None
    allowed: bool
    outcomes: tuple[PolicyOutcome, ...] = ()
    reasons: tuple[str, ...] = ()
    """Why it is denied: one line per failing Enforce policy (or the error that stopped us)."""
    warnings: tuple[str, ...] = ()
    audit: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    name: str | None = None
    """``registry/repository``; None if the reference did not parse."""
    governed_by: tuple[tuple[str, Mode], ...] = ()
    """(name, mode) of every policy that governs the image, judged or not (failures)."""

    @property
    def pinned(self) -> str | None:
        """``registry/repository@sha256:…`` when the digest is known."""
        if self.name is None or self.digest is None:
            return None
        return f"{self.name}@{self.digest}"

    @property
    def authorities(self) -> tuple[str, ...]:
        """``policy/authority`` for every authority whose signature counted."""
        return tuple(
            f"{outcome.policy}/{sig.authority}"
            for outcome in self.outcomes
            for sig in outcome.signatures
        )


REASON_ORDER = (
    RejectionKind.WRONG_DIGEST,
    RejectionKind.CONDITION,
    RejectionKind.WRONG_SIGNER,
    RejectionKind.WRONG_IDENTITY,
    RejectionKind.CERTIFICATE,
    RejectionKind.OTHER_PREDICATE,
    RejectionKind.NOT_A_SIGNATURE,
    RejectionKind.NOT_AN_ATTESTATION,
    RejectionKind.TLOG,
    RejectionKind.UNSUPPORTED,
    RejectionKind.UNKNOWN_KEY,
    RejectionKind.MALFORMED,
)
"""Which rejections a denial names first: a signature by a trusted signer that binds elsewhere
says more than a signature by a stranger."""


def _summarise(rejections: Sequence[Rejection]) -> str:
    ranked = sorted(
        rejections,
        key=lambda r: REASON_ORDER.index(r.kind) if r.kind in REASON_ORDER else len(REASON_ORDER),
    )
    seen: list[str] = []
    for rejection in ranked:
        line = f"{rejection.source}: {rejection.reason}"
        if line not in seen:
            seen.append(line)
    shown = seen[:MAX_DETAILS]
    more = len(seen) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def broken_reason(policy: CompiledPolicy) -> str:
    """Why an image governed by a broken policy is not admitted."""
    return (
        f"TrustPolicy {policy.name!r} is invalid, so nothing it governs is admitted: "
        f"{policy.error}; what to do: fix the policy (its status says the same)"
    )


def _attestation_problems(
    policy: CompiledPolicy,
    digest: Digest,
    candidates: Sequence[PreparedSignature],
    unusable: Sequence[Rejection],
    trusted_root: TrustedRoot | None,
    image: str,
) -> tuple[tuple[VerifiedAttestation, ...], list[str]]:
    found: list[VerifiedAttestation] = []
    problems: list[str] = []
    for rule in policy.attestations:
        rejections: list[Rejection] = []
        verified: VerifiedAttestation | None = None
        for signature in candidates:
            for authority in rule.authorities:
                result = verify_attestation(
                    signature,
                    authority,
                    digest=digest,
                    predicate_type=rule.predicate_type,
                    trusted_root=trusted_root,
                    conditions=rule.conditions,
                )
                if isinstance(result, VerifiedAttestation):
                    verified = result
                    break
                rejections.append(result)
            if verified is not None:
                break
        if verified is not None:
            found.append(verified)
            continue
        # Signatures and attestations of other types are expected company, not problems.
        relevant = [
            r
            for r in rejections
            if r.kind not in (RejectionKind.NOT_AN_ATTESTATION, RejectionKind.OTHER_PREDICATE)
        ] + list(unusable)  # what could not be read may have been the attestation
        signers = ", ".join(a.name for a in rule.authorities)
        others = len({r.source for r in rejections} - {r.source for r in relevant})
        if relevant:
            detail = _summarise(relevant)
        elif others:
            detail = f"none of this type ({others} other signature(s) or attestation(s) attached)"
        else:
            detail = "none attached to the image"
        if not any(r.kind is RejectionKind.CONDITION for r in relevant):
            advice = attestation_advice(policy, image, rule.predicate_type, rule.authorities)
            detail += f"; what to do: {advice}"
        problems.append(
            f"needs an attestation {rule.predicate_type} from one of [{signers}]: {detail}"
        )
    return tuple(found), problems


def evaluate_policy(
    policy: CompiledPolicy,
    *,
    digest: Digest,
    discoveries: Sequence[Discovery],
    prepared: Sequence[PreparedSignature | Rejection],
    trusted_root: TrustedRoot | None,
    repository: str | None = None,
) -> PolicyOutcome:
    """Judge one image digest against one policy, given its prepared signatures.

    ``repository`` is the image's ``registry/repository``, for policies that match the repository
    named inside signatures.
    """
    if policy.error is not None:
        return PolicyOutcome(policy.name, policy.mode, False, reason=broken_reason(policy))
    verified: dict[str, VerifiedSignature] = {}
    unusable = [p for p in prepared if isinstance(p, Rejection)]
    rejections: list[Rejection] = list(unusable)
    candidates = [p for p in prepared if isinstance(p, PreparedSignature)]
    signature_rule_applies = policy.threshold > 0 or bool(policy.required)
    for authority in policy.authorities if signature_rule_applies else ():
        for signature in candidates:
            result = verify_with_authority(
                signature,
                authority,
                digest=digest,
                trusted_root=trusted_root,
                signed_identity=policy.signed_identity,
                repository=repository,
            )
            if isinstance(result, VerifiedSignature):
                verified[authority.name] = result
                break
            rejections.append(result)
    image = f"{repository}@{digest}" if repository else digest
    attestations, attestation_problems = _attestation_problems(
        policy, digest, candidates, unusable, trusted_root, image
    )
    # A rejection "does not verify with key A" is noise once key B verified the same signature.
    verified_sources = {v.source for v in verified.values()}
    rejections = [
        r
        for r in rejections
        if not (r.kind is RejectionKind.UNKNOWN_KEY and r.source in verified_sources)
    ]
    missing_required = sorted(policy.required - verified.keys())
    signatures_ok = len(verified) >= policy.threshold and not missing_required
    if policy.threshold == 0 and not policy.required and not policy.attestations:
        # The model refuses such a policy; should one be built some other way, it must not
        # admit images that have nothing verified at all.
        signatures_ok = False
    if signatures_ok and not attestation_problems:
        return PolicyOutcome(
            policy.name, policy.mode, True, tuple(verified.values()), attestations=attestations
        )

    parts: list[str] = []
    if not signatures_ok:
        parts.append(
            _signature_problem(policy, verified, rejections, candidates, discoveries, image)
        )
    parts.extend(attestation_problems)
    unread = [error for d in discoveries for error in d.errors]
    if unread:
        parts[-1] += "; could not read all signatures: " + "; ".join(unread)
    reason = f"TrustPolicy {policy.name!r} " + "; and ".join(parts)
    return PolicyOutcome(
        policy.name, policy.mode, False, tuple(verified.values()), reason, attestations
    )


def _signature_problem(
    policy: CompiledPolicy,
    verified: Mapping[str, VerifiedSignature],
    rejections: Sequence[Rejection],
    candidates: Sequence[PreparedSignature],
    discoveries: Sequence[Discovery],
    image: str,
) -> str:
    names = ", ".join(a.name for a in policy.authorities)
    needs = f"needs valid signatures from {policy.threshold} of [{names}]"
    if policy.required:
        needs += f" including {', '.join(sorted(policy.required))}"
    got = f"has {len(verified)} ({', '.join(sorted(verified))})" if verified else "has none"
    repositories = ", ".join(sorted({d.repository for d in discoveries})) or "?"
    if not candidates and not rejections:
        detail = f"no signature found in {repositories} (cosign .sig tag or OCI referrers)"
    else:
        detail = _summarise(rejections) if rejections else "no usable signature"
    missing_required = sorted(policy.required - verified.keys())
    if missing_required:
        detail += f"; required authority missing: {', '.join(missing_required)}"
    advice = signature_advice(policy, image, {r.kind for r in rejections}, missing_required)
    return f"{needs}, {got}: {detail}; what to do: {advice}"


def decide(
    image: str,
    reference: str,
    name: str,
    digest: Digest,
    outcomes: Sequence[PolicyOutcome],
    *,
    notes: Sequence[str] = (),
    prefix: str = "",
) -> ImageDecision:
    """Combine the outcomes of every governing policy (AND), honouring each policy's mode.

    ``prefix`` starts every reason, warning and audit note (the image and digest).
    """
    reasons: list[str] = []
    warnings: list[str] = []
    audit: list[str] = []
    for outcome in outcomes:
        if outcome.satisfied:
            continue
        if outcome.mode == "Enforce":
            reasons.append(prefix + outcome.reason)
        elif outcome.mode == "Warn":
            warnings.append(prefix + outcome.reason)
        else:
            audit.append(prefix + outcome.reason)
    return ImageDecision(
        image=image,
        reference=reference,
        digest=digest,
        allowed=not reasons,
        outcomes=tuple(outcomes),
        reasons=tuple(reasons),
        warnings=tuple(warnings),
        audit=tuple(audit),
        notes=tuple(notes),
        name=name,
        governed_by=tuple((outcome.policy, outcome.mode) for outcome in outcomes),
    )


def failed(
    image: str,
    reason: str,
    *,
    reference: str | None = None,
    name: str | None = None,
    digest: Digest | None = None,
    policies: Sequence[CompiledPolicy] = (),
) -> ImageDecision:
    """The decision when we could not decide (bad reference, registry failure, deadline, bug).

    Fail closed for Enforce policies; Warn and Audit policies stay non-blocking, by their contract.
    With no policy known (e.g. an unparseable reference), deny.
    """
    governed = tuple((p.name, p.mode) for p in policies)
    if not policies or any(p.mode == "Enforce" for p in policies):
        return ImageDecision(
            image, reference, digest, False, reasons=(reason,), name=name, governed_by=governed
        )
    if any(p.mode == "Warn" for p in policies):
        return ImageDecision(
            image, reference, digest, True, warnings=(reason,), name=name, governed_by=governed
        )
    return ImageDecision(
        image, reference, digest, True, audit=(reason,), name=name, governed_by=governed
    )


def unmatched(image: str, reference: str, name: str, action: UnmatchedAction) -> ImageDecision:
    """The decision for an image that no TrustPolicy governs."""
    reason = (
        f"no TrustPolicy governs {reference}; images not covered by a policy are denied; what "
        f"to do: add a TrustPolicy whose spec.images matches {name}"
    )
    if action == "deny":
        return ImageDecision(image, reference, None, False, reasons=(reason,), name=name)
    if action == "warn":
        warning = f"no TrustPolicy governs {reference}; allowed without verification"
        return ImageDecision(image, reference, None, True, warnings=(warning,), name=name)
    return ImageDecision(image, reference, None, True, name=name)
