"""``signgate explain IMAGE``: what signgate sees for one image, step by step.

The verdict and the working shown before it come from one traced run of the engine
(`Verifier.verify_image`, the path admission takes, with a `Trace`): the digest, every signature
found and what it claims, and how each authority judged each signature are what the verdict was
reached from, so an explanation cannot disagree with what the webhook would answer. Only which
policies govern the image, and why, is worked out here: it is a description of the patterns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from signgate.deadline import Deadline
from signgate.engine.trace import Computation, Trace
from signgate.engine.verifier import Verifier
from signgate.errors import InvalidReferenceError
from signgate.policy.compiled import CompiledPolicy
from signgate.policy.evaluate import ImageDecision, failed
from signgate.reference import Digest, parse_reference
from signgate.signatures.describe import SignatureFacts, describe_signature


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
    """Decide ``image`` under ``policies`` as admission would, and show the working.

    One traced verification (`Verifier.verify_image` with a `Trace`): the registry is read once,
    and the findings and checks shown are the ones the verdict came from. Never raises for bad
    input.
    """
    try:
        ref = parse_reference(image)
    except InvalidReferenceError as exc:
        decision = failed(image, str(exc))
        return Explanation(image, None, None, str(exc), (), (), (), decision, namespace)
    matches = tuple(_match(p, ref.name, namespace_labels) for p in policies)
    trace = Trace()
    decision = await engine.verify_image(
        image, policies, deadline, namespace_labels=namespace_labels, trace=trace
    )
    unmatched = engine.settings.unmatched
    if not any(m.governs for m in matches):
        resolved = "not looked up: no policy governs it"
    elif trace.resolve_error is not None:
        resolved = f"cannot resolve: {trace.resolve_error}"
    elif trace.digest is None:
        resolved = "not looked up"
    elif ref.digest is not None:
        resolved = "given in the reference"
    else:
        resolved = f"tag {ref.tag!r} resolves to it"
    own = next((c for c in trace.computations if c.digest == trace.digest), None)
    findings = _findings(own) if own is not None else ()
    checks = _checks(own, policies) if own is not None else ()
    return Explanation(
        image, str(ref), trace.digest, resolved, matches, findings, checks, decision, namespace,
        unmatched,
    )  # fmt: skip


def _findings(computation: Computation) -> tuple[Findings, ...]:
    findings: list[Findings] = []
    for found in computation.repositories:
        if found.discovery is None:
            error = f"cannot read signatures: {found.error}"
            findings.append(Findings(found.repository, errors=(error,)))
            continue
        facts = tuple(
            describe_signature(signature, prepared)
            for signature, prepared in zip(found.discovery.signatures, found.prepared, strict=True)
        )
        discovery = found.discovery
        findings.append(Findings(found.repository, facts, discovery.notes, discovery.errors))
    return tuple(findings)


def _checks(computation: Computation, policies: Sequence[CompiledPolicy]) -> tuple[Check, ...]:
    checks: list[Check] = []
    for policy in policies:
        evaluation = computation.evaluations.get(policy.identity)
        if evaluation is None:
            continue
        for authority in evaluation.authorities:
            checks.append(
                Check(
                    policy.name,
                    f"authority {authority.authority} ({authority.describe})",
                    authority.verified_index,
                    authority.verified.signer if authority.verified else "",
                    tuple((number, r.reason) for number, r in authority.rejections),
                )
            )
        for rule in evaluation.attestations:
            checks.append(
                Check(
                    policy.name,
                    f"attestation {rule.predicate_type}",
                    rule.verified_index,
                    rule.verified.signer if rule.verified else "",
                    tuple((number, f"{name}: {r.reason}") for number, name, r in rule.rejections),
                )
            )
    return tuple(checks)


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
