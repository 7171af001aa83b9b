"""One image's verdict as JSON: ``verify --output json`` prints it, ``explain`` and ``audit``
embed it, so the three commands describe a decision in the same words."""

from __future__ import annotations

from signgate.policy.evaluate import ImageDecision


def decision_record(decision: ImageDecision) -> dict[str, object]:
    """One image's verdict as ``verify --output json`` prints it (also inside explain/audit)."""
    return {
        "image": decision.image,
        "reference": decision.reference,
        "digest": decision.digest,
        "pinned": decision.pinned,
        "allowed": decision.allowed,
        "reasons": list(decision.reasons),
        "warnings": list(decision.warnings),
        "audit": list(decision.audit),
        "authorities": [
            {
                "policy": o.policy,
                "authority": s.authority,
                "signer": s.signer,
                "format": str(s.format),
                "source": s.source,
                "tlogIndex": s.tlog_index,
            }
            for o in decision.outcomes
            for s in o.signatures
        ],
        "attestations": [
            {
                "policy": o.policy,
                "authority": a.authority,
                "predicateType": a.predicate_type,
                "signer": a.signer,
                "format": str(a.format),
                "source": a.source,
                "tlogIndex": a.tlog_index,
            }
            for o in decision.outcomes
            for a in o.attestations
        ],
        "coveredBy": {o.policy: o.via for o in decision.outcomes if o.via},
        "notes": list(decision.notes),
    }
