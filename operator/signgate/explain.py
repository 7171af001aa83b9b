"""``signgate explain IMAGE``: what signgate sees for one image, step by step.

The verdict at the end is the engine's own (`Verifier.verify_image`, the path admission takes),
so an explanation can never disagree with what the webhook would answer. The steps before it
re-read the registry to show their working: the digest, every signature found and what it
claims, which policies govern the image and why, and how each authority judged each signature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from signgate.deadline import Deadline
from signgate.discovery import discover_signatures
from signgate.errors import InvalidReferenceError, RegistryError
from signgate.policy.compiled import CompiledPolicy
from signgate.policy.evaluate import ImageDecision, failed
from signgate.reference import Digest, ImageReference, parse_reference
from signgate.signatures.describe import SignatureFacts, describe_signature
from signgate.signatures.verify import (
    PreparedSignature,
    VerifiedAttestation,
    VerifiedSignature,
    prepare,
    verify_attestation,
    verify_with_authority,
)
from signgate.verifier import Verifier


@dataclass(frozen=True, slots=True)
class PolicyMatch:
    """Whether one policy governs the image, and why."""

    policy: str
    source: str
    mode: str
    governs: bool
    why: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Findings:
    """What one signature repository holds for the digest."""

    repository: str
    signatures: tuple[SignatureFacts, ...] = ()
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    """Parts that could not be read (the rest were), or why nothing could be."""


@dataclass(frozen=True, slots=True)
class Check:
    """How one authority (or one required attestation) of a policy judged the signatures."""

    policy: str
    subject: str
    """``authority <name> (<signer>)`` or ``attestation <predicateType>``."""
    satisfied_by: int | None
    """Index (from 1, in `Findings.signatures` order) of the signature that counted."""
    signer: str = ""
    rejections: tuple[tuple[int, str], ...] = ()
    """(signature index, why it did not count)."""


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything ``signgate explain`` shows for one image."""

    image: str
    reference: str | None
    digest: Digest | None
    resolved: str
    """How the digest was found (or why it could not be)."""
    policies: tuple[PolicyMatch, ...]
    findings: tuple[Findings, ...]
    checks: tuple[Check, ...]
    decision: ImageDecision
    namespace: str | None = None
    unmatched: str = "deny"


def _match(policy: CompiledPolicy, name: str, labels: Mapping[str, str] | None) -> PolicyMatch:
    include = next((p.text for p in policy.images if p.matches(name)), None)
    exclude = next((p.text for p in policy.exclude_images if p.matches(name)), None)
    common = {"policy": policy.name, "source": policy.source, "mode": policy.mode}
    if include is None:
        patterns = ", ".join(repr(p.text) for p in policy.images) or "none"
        return PolicyMatch(
            **common, governs=False, why=f"no images pattern matches (patterns: {patterns})"
        )
    if exclude is not None:
        why = f"images {include!r} matches, but excludeImages {exclude!r}"
        return PolicyMatch(**common, governs=False, why=why)
    if not policy.selects_namespace(labels):
        return PolicyMatch(
            **common, governs=False, why=f"images {include!r} matches; namespaceSelector does not"
        )
    return PolicyMatch(
        **common, governs=True, why=f"images pattern {include!r} matches", error=policy.error
    )


async def explain_image(
    engine: Verifier,
    image: str,
    policies: Sequence[CompiledPolicy],
    deadline: Deadline,
    *,
    namespace: str | None = None,
    namespace_labels: Mapping[str, str] | None = None,
) -> Explanation:
    """Show the engine's working on ``image`` under ``policies``. Never raises for bad input."""
    try:
        ref = parse_reference(image)
    except InvalidReferenceError as exc:
        decision = failed(image, str(exc))
        return Explanation(image, None, None, str(exc), (), (), (), decision, namespace)
    matches = tuple(_match(p, ref.name, namespace_labels) for p in policies)
    governing = [p for p, m in zip(policies, matches, strict=True) if m.governs]
    decision = await engine.verify_image(
        image, policies, deadline, namespace_labels=namespace_labels
    )
    unmatched = engine.settings.unmatched
    if not governing:
        return Explanation(
            image, str(ref), None, "not looked up: no policy governs it", matches, (), (),
            decision, namespace, unmatched,
        )  # fmt: skip
    try:
        digest = await engine.resolve(ref, deadline)
    except RegistryError as exc:
        return Explanation(
            image, str(ref), None, f"cannot resolve: {exc}", matches, (), (), decision,
            namespace, unmatched,
        )  # fmt: skip
    resolved = (
        "given in the reference" if ref.digest is not None else f"tag {ref.tag!r} resolves to it"
    )
    findings, checks = await _working(engine, ref, digest, governing, deadline)
    return Explanation(
        image, str(ref), digest, resolved, matches, findings, checks, decision, namespace,
        unmatched,
    )  # fmt: skip


async def _working(
    engine: Verifier,
    ref: ImageReference,
    digest: Digest,
    governing: Sequence[CompiledPolicy],
    deadline: Deadline,
) -> tuple[tuple[Findings, ...], tuple[Check, ...]]:
    findings: list[Findings] = []
    prepared_by_repo: dict[str, list[tuple[int, PreparedSignature]]] = {}
    for repository in sorted({p.signature_repository or ref.name for p in governing}):
        try:
            discovery = await discover_signatures(
                engine.client,
                parse_reference(repository),
                digest,
                deadline,
                limits=engine.settings.discovery,
                attestations=True,
            )
        except RegistryError as exc:
            findings.append(Findings(repository, errors=(f"cannot read signatures: {exc}",)))
            continue
        facts = []
        usable: list[tuple[int, PreparedSignature]] = []
        for number, found in enumerate(discovery.signatures, 1):
            prepared = prepare(found)
            facts.append(describe_signature(found, prepared))
            if isinstance(prepared, PreparedSignature):
                usable.append((number, prepared))
        prepared_by_repo[repository] = usable
        findings.append(Findings(repository, tuple(facts), discovery.notes, discovery.errors))
    checks: list[Check] = []
    for policy in governing:
        if policy.error is not None:
            continue
        candidates = prepared_by_repo.get(policy.signature_repository or ref.name, [])
        checks.extend(_policy_checks(engine, policy, ref, digest, candidates))
    return tuple(findings), tuple(checks)


def _policy_checks(
    engine: Verifier,
    policy: CompiledPolicy,
    ref: ImageReference,
    digest: Digest,
    candidates: Sequence[tuple[int, PreparedSignature]],
) -> list[Check]:
    checks: list[Check] = []
    if policy.threshold > 0 or policy.required:
        for authority in policy.authorities:
            rejections: list[tuple[int, str]] = []
            counted: tuple[int, VerifiedSignature] | None = None
            for number, signature in candidates:
                result = verify_with_authority(
                    signature,
                    authority,
                    digest=digest,
                    trusted_root=engine.trusted_root,
                    signed_identity=policy.signed_identity,
                    repository=ref.name,
                )
                if isinstance(result, VerifiedSignature):
                    counted = (number, result)
                    break
                rejections.append((number, result.reason))
            checks.append(
                Check(
                    policy.name,
                    f"authority {authority.name} ({authority.describe})",
                    counted[0] if counted else None,
                    counted[1].signer if counted else "",
                    tuple(rejections),
                )
            )
    for rule in policy.attestations:
        rejections = []
        attested: tuple[int, VerifiedAttestation] | None = None
        for number, signature in candidates:
            for authority in rule.authorities:
                outcome = verify_attestation(
                    signature,
                    authority,
                    digest=digest,
                    predicate_type=rule.predicate_type,
                    trusted_root=engine.trusted_root,
                    conditions=rule.conditions,
                )
                if isinstance(outcome, VerifiedAttestation):
                    attested = (number, outcome)
                    break
                rejections.append((number, f"{authority.name}: {outcome.reason}"))
            if attested is not None:
                break
        checks.append(
            Check(
                policy.name,
                f"attestation {rule.predicate_type}",
                attested[0] if attested else None,
                attested[1].signer if attested else "",
                tuple(rejections),
            )
        )
    return checks


def render_text(explanation: Explanation) -> str:
    """The explanation as numbered steps for a terminal."""
    e = explanation
    lines = [f"signgate explain {e.image}", "", "1. Reference"]
    lines.append(f"   written:    {e.image}")
    lines.append(f"   normalised: {e.reference or '(does not parse)'}")
    if e.namespace:
        lines.append(f"   namespace:  {e.namespace} (for namespaceSelector)")
    lines += ["", "2. Policies"]
    if not e.policies:
        lines.append("   (no TrustPolicies loaded)")
    for match in e.policies:
        mark = "governs it" if match.governs else "does not govern it"
        lines.append(f"   - {match.policy} ({match.mode}, {match.source}): {mark}: {match.why}")
        if match.error:
            lines.append(f"     BROKEN: {match.error}")
    if e.reference and not any(m.governs for m in e.policies):
        lines.append(
            f"   no policy governs it; unmatched images are {e.unmatched}-ed "
            "(--unmatched / the server's setting)"
            if e.unmatched != "deny"
            else "   no policy governs it, so it is denied: add a TrustPolicy whose images "
            "pattern matches its repository"
        )
    lines += ["", "3. Digest", f"   {e.digest or '-'}: {e.resolved}"]
    number = 4
    for found in e.findings:
        lines += ["", f"{number}. Signatures in {found.repository}"]
        number += 1
        if not found.signatures and not found.errors:
            lines.append("   none (no cosign .sig tag, no OCI referrers)")
        for index, facts in enumerate(found.signatures, 1):
            lines.append(f"   [{index}] {facts.kind}: {facts.format}, {facts.source}")
            if facts.problem:
                lines.append(f"       unusable: {facts.problem}")
                continue
            if facts.claimed_digest:
                same = " (this digest)" if facts.claimed_digest == e.digest else " (ANOTHER digest)"
                lines.append(f"       claims digest {facts.claimed_digest}{same}")
            if facts.claimed_repository:
                lines.append(f"       names repository {facts.claimed_repository}")
            lines.append(f"       signer: {facts.signer}")
            lines.append(
                f"       transparency log: {facts.tlog}; RFC 3161 timestamps: {facts.timestamps}"
            )
        lines += [f"   note: {n}" for n in found.notes]
        lines += [f"   error: {err}" for err in found.errors]
    if e.checks:
        lines += ["", f"{number}. Checks (each authority against each signature)"]
        number += 1
        for check in e.checks:
            if check.satisfied_by is not None:
                lines.append(
                    f"   [ok] {check.policy}: {check.subject}: signature [{check.satisfied_by}]"
                    + (f" by {check.signer}" if check.signer else "")
                )
            else:
                lines.append(f"   [no] {check.policy}: {check.subject}")
                if not check.rejections:
                    lines.append("        no signature to check")
                lines += [f"        [{i}] {why}" for i, why in check.rejections]
    decision = e.decision
    lines += ["", f"{number}. Verdict"]
    target = decision.pinned or decision.reference or decision.image
    lines.append(f"   {'ALLOWED' if decision.allowed else 'DENIED'} {target}")
    lines += [f"   reason: {r}" for r in decision.reasons]
    lines += [f"   warning: {w}" for w in decision.warnings]
    lines += [f"   audit: {a}" for a in decision.audit]
    lines += [f"   note: {n}" for n in decision.notes]
    return "\n".join(lines) + "\n"


def to_json(explanation: Explanation, decision_record: Mapping[str, object]) -> dict[str, object]:
    """The explanation as a JSON-ready object (``decision_record`` is ``verify``'s record)."""
    e = explanation
    return {
        "image": e.image,
        "reference": e.reference,
        "namespace": e.namespace,
        "digest": e.digest,
        "resolved": e.resolved,
        "policies": [
            {
                "policy": m.policy,
                "source": m.source,
                "mode": m.mode,
                "governs": m.governs,
                "why": m.why,
                "error": m.error,
            }
            for m in e.policies
        ],
        "repositories": [
            {
                "repository": f.repository,
                "signatures": [
                    {
                        "index": i,
                        "source": s.source,
                        "format": s.format,
                        "kind": s.kind,
                        "claimedDigest": s.claimed_digest,
                        "claimedRepository": s.claimed_repository,
                        "signer": s.signer,
                        "tlog": s.tlog,
                        "timestamps": s.timestamps,
                        "problem": s.problem,
                    }
                    for i, s in enumerate(f.signatures, 1)
                ],
                "notes": list(f.notes),
                "errors": list(f.errors),
            }
            for f in e.findings
        ],
        "checks": [
            {
                "policy": c.policy,
                "subject": c.subject,
                "satisfiedBy": c.satisfied_by,
                "signer": c.signer,
                "rejections": [{"signature": i, "reason": why} for i, why in c.rejections],
            }
            for c in e.checks
        ],
        "decision": dict(decision_record),
    }
