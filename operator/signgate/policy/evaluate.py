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
from datetime import datetime
from typing import Literal

from signgate.policy.advice import attestation_advice, signature_advice
from signgate.policy.compiled import CompiledPolicy, Mode
from signgate.reference import Digest
from signgate.signatures.found import Discovery
from signgate.signatures.results import (
    PreparedSignature,
    Rejection,
    RejectionKind,
    VerifiedAttestation,
    VerifiedSignature,
)
from signgate.signatures.trusted_root import TrustedRoot
from signgate.signatures.verify import verify_attestation, verify_with_authority

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


@dataclass(frozen=True, slots=True)
class AuthorityCheck:
    """How one authority of a policy judged the image's signatures, in the order tried."""

    authority: str
    describe: str
    """The key's fingerprint, the keyless identity or the CA (`AuthorityMaterial.describe`)."""
    verified: VerifiedSignature | None
    """The signature that counted; None if none did."""
    verified_index: int | None
    """Its position (from 1) among the signatures found, as `Evaluation` numbers them."""
    rejections: tuple[tuple[int, Rejection], ...]
    """(signature position, why it did not count), for every signature tried before."""


@dataclass(frozen=True, slots=True)
class AttestationCheck:
    """How one required attestation of a policy was looked for, in the order tried."""

    predicate_type: str
    verified: VerifiedAttestation | None
    verified_index: int | None
    rejections: tuple[tuple[int, str, Rejection], ...]
    """(signature position, authority, why it did not count)."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A policy's verdict on an image and the working behind it: every check that ran.

    The engine caches the outcome; ``signgate explain`` renders the checks. Both come from the
    one loop in `evaluate_policy`, so an explanation cannot disagree with admission.
    """

    outcome: PolicyOutcome
    authorities: tuple[AuthorityCheck, ...] = ()
    attestations: tuple[AttestationCheck, ...] = ()


def _check_attestations(
    policy: CompiledPolicy,
    digest: Digest,
    candidates: Sequence[tuple[int, PreparedSignature]],
    unusable: Sequence[Rejection],
    trusted_root: TrustedRoot | None,
    image: str,
    now: datetime,
) -> tuple[tuple[AttestationCheck, ...], list[str]]:
    checks: list[AttestationCheck] = []
    problems: list[str] = []
    for rule in policy.attestations:
        tried: list[tuple[int, str, Rejection]] = []
        verified: tuple[int, VerifiedAttestation] | None = None
        for number, signature in candidates:
            for authority in rule.authorities:
                result = verify_attestation(
                    signature,
                    authority,
                    digest=digest,
                    predicate_type=rule.predicate_type,
                    trusted_root=trusted_root,
                    conditions=rule.conditions,
                    now=now,
                )
                if isinstance(result, VerifiedAttestation):
                    verified = (number, result)
                    break
                tried.append((number, authority.name, result))
            if verified is not None:
                break
        checks.append(
            AttestationCheck(
                rule.predicate_type,
                verified[1] if verified else None,
                verified[0] if verified else None,
                tuple(tried),
            )
        )
        if verified is not None:
            continue
        rejections = [rejection for _, _, rejection in tried]
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
    return tuple(checks), problems


def evaluate_policy(
    policy: CompiledPolicy,
    *,
    digest: Digest,
    discoveries: Sequence[Discovery],
    prepared: Sequence[PreparedSignature | Rejection],
    trusted_root: TrustedRoot | None,
    now: datetime,
    repository: str | None = None,
) -> Evaluation:
    """Judge one image digest against one policy, given its prepared signatures.

    Steps:

    1. a broken policy admits nothing;
    2. each authority (when the policy counts signatures) tries the signatures in order until
       one verifies (`verify_with_authority`); every rejection before it is kept;
    3. each required attestation tries every signature with each of its authorities the same way;
    4. the policy is satisfied by ``threshold`` distinct authorities, every ``required`` one
       among them, and every required attestation; otherwise the reason names what is missing,
       what was found instead, and what to do.

    ``prepared`` holds one entry per signature found, in discovery order: positions (from 1) in
    the returned checks refer to it. ``repository`` is the image's ``registry/repository``, for
    policies that match the repository named inside signatures. ``now`` is the time of the
    admission (or ``verify`` run), read once by the caller.
    """
    if policy.error is not None:
        return Evaluation(
            PolicyOutcome(policy.name, policy.mode, False, reason=broken_reason(policy))
        )
    verified: dict[str, VerifiedSignature] = {}
    unusable = [p for p in prepared if isinstance(p, Rejection)]
    rejections: list[Rejection] = list(unusable)
    candidates = [
        (number, p) for number, p in enumerate(prepared, 1) if isinstance(p, PreparedSignature)
    ]
    checks: list[AuthorityCheck] = []
    signature_rule_applies = policy.threshold > 0 or bool(policy.required)
    for authority in policy.authorities if signature_rule_applies else ():
        tried: list[tuple[int, Rejection]] = []
        counted: tuple[int, VerifiedSignature] | None = None
        for number, signature in candidates:
            result = verify_with_authority(
                signature,
                authority,
                digest=digest,
                trusted_root=trusted_root,
                signed_identity=policy.signed_identity,
                repository=repository,
                now=now,
            )
            if isinstance(result, VerifiedSignature):
                counted = (number, result)
                verified[authority.name] = result
                break
            tried.append((number, result))
            rejections.append(result)
        checks.append(
            AuthorityCheck(
                authority.name,
                authority.describe,
                counted[1] if counted else None,
                counted[0] if counted else None,
                tuple(tried),
            )
        )
    image = f"{repository}@{digest}" if repository else digest
    attestation_checks, attestation_problems = _check_attestations(
        policy, digest, candidates, unusable, trusted_root, image, now
    )
    outcome = _outcome(
        policy, verified, rejections, candidates, discoveries, image, attestation_checks,
        attestation_problems,
    )  # fmt: skip
    return Evaluation(outcome, tuple(checks), attestation_checks)


def _outcome(
    policy: CompiledPolicy,
    verified: Mapping[str, VerifiedSignature],
    rejections: Sequence[Rejection],
    candidates: Sequence[tuple[int, PreparedSignature]],
    discoveries: Sequence[Discovery],
    image: str,
    attestation_checks: Sequence[AttestationCheck],
    attestation_problems: Sequence[str],
) -> PolicyOutcome:
    attestations = tuple(c.verified for c in attestation_checks if c.verified is not None)
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
            _signature_problem(
                policy, verified, rejections, [p for _, p in candidates], discoveries, image
            )
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
