"""What a signature says about itself, for people (``signgate explain``). No I/O.

Everything here is read from *unverified* bytes: it tells a person what a signature claims (which
digest, which repository, which predicate, which certificate identity, which log entry) so that a
denial can be understood. Nothing here decides anything; verification lives in `verify`.
"""

from __future__ import annotations

from dataclasses import dataclass

from signgate.errors import SigngateError
from signgate.signatures.certificate import parse_signing_certificate
from signgate.signatures.dsse import parse_statement
from signgate.signatures.found import COSIGN_SIGNATURE_PREDICATE, FoundSignature, UnusableSignature
from signgate.signatures.results import ClaimKind, PreparedSignature, Rejection
from signgate.signatures.simplesigning import parse_simple_signing
from signgate.signatures.tlog import TlogEntry, parse_cosign_bundle_annotation


@dataclass(frozen=True, slots=True)
class SignatureFacts:
    """One discovered signature as it presents itself (unverified)."""

    source: str
    format: str
    kind: str
    """``signature``, ``attestation <predicateType>``, or ``unusable``."""
    claimed_digest: str | None = None
    """The image digest the signed claim names (simple-signing or in-toto subject)."""
    claimed_repository: str | None = None
    """The simple-signing ``docker-reference`` (legacy signatures only)."""
    signer: str = ""
    """The certificate identity for keyless signatures, else "a key (...)"."""
    tlog: str = "none"
    timestamps: int = 0
    problem: str | None = None
    """Why it cannot be used at all (malformed, unsupported), if so."""


def _tlog(prepared: PreparedSignature) -> str:
    entries: tuple[TlogEntry, ...] = ()
    if prepared.bundle is not None:
        entries = prepared.bundle.tlog_entries
    elif prepared.legacy_tlog_annotation:
        try:
            entries = (parse_cosign_bundle_annotation(prepared.legacy_tlog_annotation),)
        except SigngateError as exc:
            return f"unreadable Rekor bundle annotation ({exc})"
    if not entries:
        return "none"
    described = []
    for entry in entries:
        proofs = [
            name
            for name, present in (
                ("SET", entry.signed_entry_timestamp is not None),
                ("inclusion proof", entry.inclusion_proof is not None),
            )
            if present
        ]
        described.append(
            f"Rekor {entry.kind} {entry.kind_version} entry, logIndex {entry.log_index}"
            + (f" ({', '.join(proofs)})" if proofs else " (no SET or proof)")
        )
    return "; ".join(described)


def _signer(prepared: PreparedSignature) -> str:
    if prepared.certificate is None:
        hint = prepared.bundle.public_key_hint if prepared.bundle is not None else None
        shown = f", hint sha256:{hint.hex()[:16]}…" if hint and len(hint) == 32 else ""
        return f"a public key (identified only by verifying with a policy's key{shown})"
    try:
        cert = parse_signing_certificate(prepared.certificate)
    except SigngateError as exc:
        return f"a certificate that does not parse ({exc})"
    subjects = ", ".join(cert.subjects) or "no SAN"
    issuer = cert.issuer or "no OIDC issuer extension"
    return (
        f"certificate for {subjects} (issuer {issuer}), valid "
        f"{cert.not_before:%Y-%m-%dT%H:%M:%SZ} to {cert.not_after:%Y-%m-%dT%H:%M:%SZ}"
    )


def _claim(prepared: PreparedSignature) -> tuple[str, str | None, str | None, str | None]:
    """(kind, claimed digest, claimed repository, problem)."""
    if prepared.claim is ClaimKind.SIMPLE_SIGNING:
        try:
            payload = parse_simple_signing(prepared.payload)
        except SigngateError as exc:
            return "signature", None, None, f"payload does not parse: {exc}"
        return "signature", payload.manifest_digest, payload.docker_reference, None
    if prepared.claim is ClaimKind.MESSAGE_DIGEST:
        message = prepared.bundle.message_signature if prepared.bundle is not None else None
        digest = f"sha256:{message.digest.hex()}" if message is not None else None
        return "signature (over the manifest bytes)", digest, None, None
    try:
        statement = parse_statement(prepared.payload)
    except SigngateError as exc:
        return "in-toto statement", None, None, f"statement does not parse: {exc}"
    digests = [f"sha256:{s.digests['sha256']}" for s in statement.subjects if "sha256" in s.digests]
    kind = (
        "signature"
        if statement.predicate_type == COSIGN_SIGNATURE_PREDICATE
        else f"attestation {statement.predicate_type}"
    )
    return kind, ", ".join(digests) or None, None, None


def describe_signature(
    found: FoundSignature, prepared: PreparedSignature | Rejection
) -> SignatureFacts:
    """What ``found`` claims to be, from its unverified bytes."""
    fmt = "unusable" if isinstance(found, UnusableSignature) else str(found.format)
    if isinstance(prepared, Rejection):
        return SignatureFacts(found.source, fmt, "unusable", problem=prepared.reason)
    kind, digest, repository, problem = _claim(prepared)
    return SignatureFacts(
        source=prepared.source,
        format=str(prepared.format),
        kind=kind,
        claimed_digest=digest,
        claimed_repository=repository,
        signer=_signer(prepared),
        tlog=_tlog(prepared),
        timestamps=len(prepared.timestamps),
        problem=problem,
    )
