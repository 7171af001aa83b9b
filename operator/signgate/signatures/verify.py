"""Verify discovered signatures against one authority of a policy. No I/O: bytes in, results out.

The order of checks matters for what we tell a person. A signature is first checked with the
policy's key over the exact bytes that were fetched; only a signature that verifies has its claims
read, because an unverified payload can claim anything. Then the claim must bind to the exact
digest being admitted, and must be a signature, not an attestation. Then, if the authority asks for
it, the transparency-log entry must verify against the trusted root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signgate.errors import (
    BundleFormatError,
    InvalidReferenceError,
    SignatureError,
    TransparencyLogError,
    truncate,
)
from signgate.reference import Digest, parse_reference
from signgate.signatures.authority import (
    AuthorityMaterial,
    CertificateAuthorityAuthority,
    CertificateIdentity,
    KeyAuthority,
    SignedIdentityRule,
)
from signgate.signatures.certificate import (
    CertificateError,
    SigningCertificate,
    identity_mismatch,
    parse_signing_certificate,
    verify_fulcio,
    verify_with_ca_pool,
)
from signgate.signatures.dsse import InTotoStatement, parse_statement
from signgate.signatures.found import COSIGN_SIGNATURE_PREDICATE
from signgate.signatures.keys import PublicKey
from signgate.signatures.predicate import PredicateCondition, first_failure
from signgate.signatures.results import (
    ClaimKind,
    PreparedSignature,
    Rejection,
    RejectionKind,
    VerifiedAttestation,
    VerifiedSignature,
)
from signgate.signatures.simplesigning import SimpleSigningPayload, parse_simple_signing
from signgate.signatures.tlog import (
    VerifiedTlogEntry,
    parse_cosign_bundle_annotation,
    verify_tlog_entry,
)
from signgate.signatures.trusted_root import TrustedRoot


def _verify_prehashed_sha256(key: PublicKey, signature: bytes, digest: bytes) -> bool:
    """Verify a signature over a message known only by its sha256 (bundle messageSignature)."""
    prehashed = Prehashed(hashes.SHA256())
    material = key.key
    try:
        if isinstance(material, ec.EllipticCurvePublicKey):
            material.verify(signature, digest, ec.ECDSA(prehashed))
            return True
        if isinstance(material, rsa.RSAPublicKey):
            try:
                material.verify(signature, digest, padding.PKCS1v15(), prehashed)
            except InvalidSignature:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                material.verify(signature, digest, pss, prehashed)
            return True
    except InvalidSignature:
        return False
    return False


def _check_signed_identity(
    payload: SimpleSigningPayload, rule: SignedIdentityRule, repository: str | None, source: str
) -> Rejection | None:
    if rule.match == "Any":
        return None
    signed = payload.docker_reference
    if not signed:
        return Rejection(
            source,
            RejectionKind.WRONG_IDENTITY,
            "signature names no repository (critical.identity.docker-reference) and the policy "
            "matches signed identities",
        )
    try:
        name = parse_reference(signed).name
    except InvalidReferenceError as exc:
        return Rejection(
            source,
            RejectionKind.WRONG_IDENTITY,
            f"signed docker-reference {truncate(signed, 200)!r} is not a reference: {exc.reason}",
        )
    if rule.match == "ImageRepository":
        if name == repository:
            return None
        wanted = f"the image's repository {repository}"
    else:
        if any(p.matches(name) for p in rule.repositories):
            return None
        wanted = "a repository in the policy's signedIdentity.repositories"
    return Rejection(
        source,
        RejectionKind.WRONG_IDENTITY,
        f"signature was made for {name}, not {wanted}",
    )


def _statement(prepared: PreparedSignature) -> InTotoStatement | Rejection:
    try:
        return parse_statement(prepared.payload)
    except BundleFormatError as exc:
        return Rejection(
            prepared.source, RejectionKind.MALFORMED, f"invalid in-toto statement: {exc}"
        )


def _what(statement: InTotoStatement) -> str:
    if statement.predicate_type == COSIGN_SIGNATURE_PREDICATE:
        return "signature"
    return f"attestation of type {statement.predicate_type}"


def _check_subject(statement: InTotoStatement, digest: Digest, source: str) -> Rejection | None:
    hex_digest = digest.removeprefix("sha256:")
    if hex_digest in statement.subject_digests("sha256"):
        return None
    subjects = ", ".join(sorted(f"sha256:{d[:12]}…" for d in statement.subject_digests("sha256")))
    return Rejection(
        source,
        RejectionKind.WRONG_DIGEST,
        f"{_what(statement)} is for {subjects or 'no sha256 subject'}, not {digest}",
    )


def _check_claim(
    prepared: PreparedSignature,
    digest: Digest,
    rule: SignedIdentityRule,
    repository: str | None,
) -> Rejection | None:
    """After the signature verified: does its claim bind to ``digest``, as a signature?"""
    source = prepared.source
    if prepared.claim is ClaimKind.SIMPLE_SIGNING:
        try:
            payload = parse_simple_signing(prepared.payload)
        except SignatureError as exc:
            return Rejection(source, RejectionKind.MALFORMED, str(exc))
        if payload.manifest_digest != digest:
            return Rejection(
                source,
                RejectionKind.WRONG_DIGEST,
                f"signature is for {payload.manifest_digest}, not {digest}",
            )
        return _check_signed_identity(payload, rule, repository, source)
    if rule.match != "Any":
        return Rejection(
            source,
            RejectionKind.WRONG_IDENTITY,
            "sigstore bundles name no repository and the policy matches signed identities",
        )
    if prepared.claim is ClaimKind.MESSAGE_DIGEST:
        return None  # verified over the digest itself
    statement = _statement(prepared)
    if isinstance(statement, Rejection):
        return statement
    if statement.predicate_type != COSIGN_SIGNATURE_PREDICATE:
        return Rejection(
            source,
            RejectionKind.NOT_A_SIGNATURE,
            f"attestation of type {statement.predicate_type}, not a signature "
            f"(a signature has predicate type {COSIGN_SIGNATURE_PREDICATE})",
        )
    return _check_subject(statement, digest, source)


def _check_tlog(
    prepared: PreparedSignature,
    verifier_der: bytes,
    digest: Digest,
    trusted_root: TrustedRoot | None,
) -> VerifiedTlogEntry | Rejection:
    source = prepared.source
    if trusted_root is None:
        return Rejection(
            source, RejectionKind.TLOG, "transparency log required but no trusted root configured"
        )
    try:
        if prepared.bundle is None:
            if not prepared.legacy_tlog_annotation:
                return Rejection(
                    source,
                    RejectionKind.TLOG,
                    "transparency log required but the signature has no Rekor bundle",
                )
            entry = parse_cosign_bundle_annotation(prepared.legacy_tlog_annotation)
            # A .sig layer is logged as hashedrekord over the payload; a .att layer (cosign v2
            # attest) as dsse over the envelope's payload. The older intoto kind is refused as an
            # unsupported entry kind.
            payload_sha256 = hashlib.sha256(prepared.payload).digest()
            in_toto = prepared.claim is ClaimKind.IN_TOTO
            return verify_tlog_entry(
                entry,
                trusted_root,
                require_inclusion_proof=False,
                signature=prepared.signature,
                signed_bytes_sha256=None if in_toto else payload_sha256,
                verifier_der=verifier_der,
                dsse_payload_sha256=payload_sha256 if in_toto else None,
            )
        bundle = prepared.bundle
        if not bundle.tlog_entries:
            return Rejection(
                source, RejectionKind.TLOG, "transparency log required but the bundle has no entry"
            )
        problems: list[str] = []
        for entry in bundle.tlog_entries:
            try:
                verified = verify_tlog_entry(
                    entry,
                    trusted_root,
                    require_inclusion_proof=bundle.version >= (0, 2),
                    signature=prepared.signature,
                    signed_bytes_sha256=(
                        bytes.fromhex(digest.removeprefix("sha256:"))
                        if prepared.claim is ClaimKind.MESSAGE_DIGEST
                        else None
                    ),
                    verifier_der=verifier_der,
                    dsse_payload_sha256=(
                        hashlib.sha256(prepared.payload).digest()
                        if prepared.claim is ClaimKind.IN_TOTO
                        else None
                    ),
                )
            except TransparencyLogError as exc:
                problems.append(str(exc))
                continue
            return verified
        return Rejection(source, RejectionKind.TLOG, "; ".join(problems))
    except (TransparencyLogError, BundleFormatError) as exc:
        return Rejection(source, RejectionKind.TLOG, f"transparency log entry: {exc}")


def _verify_crypto(prepared: PreparedSignature, key: PublicKey, digest: Digest) -> bool:
    if prepared.claim is ClaimKind.MESSAGE_DIGEST:
        return _verify_prehashed_sha256(
            key, prepared.signature, bytes.fromhex(digest.removeprefix("sha256:"))
        )
    assert prepared.signed_bytes is not None
    return key.verify(prepared.signature, prepared.signed_bytes)


@dataclass(frozen=True, slots=True)
class _Signer:
    """Who made a signature, once its bytes verified: the authority's key or a certificate."""

    describe: str
    verifier_der: bytes
    """What the transparency-log entry must name: the key's SPKI or the certificate."""
    certificate: SigningCertificate | None = None


def _signer_hint(prepared: PreparedSignature) -> str:
    """What the signature says about who made it (unverified, for the message only)."""
    if prepared.certificate is not None:
        return " (it is a keyless signature, with a certificate instead of a key)"
    hint = prepared.bundle.public_key_hint if prepared.bundle is not None else None
    if hint is not None and len(hint) == 32:
        # cosign's hint is the sha256 of the signer's SPKI, which is what a key fingerprint is.
        return f" (the bundle names key sha256:{hint.hex()[:12]}… as its signer)"
    return ""


def _authenticate(
    prepared: PreparedSignature, authority: AuthorityMaterial, digest: Digest, what: str
) -> _Signer | Rejection:
    """Verify the signature over the exact bytes with the authority's key or, for keyless, with
    the key of the certificate that travels with it (trusted only later, by `_check_signer`)."""
    source = prepared.source
    if isinstance(authority, KeyAuthority):
        if not _verify_crypto(prepared, authority.key, digest):
            return Rejection(
                source,
                RejectionKind.UNKNOWN_KEY,
                f"{what} does not verify with {authority.describe}{_signer_hint(prepared)}",
            )
        return _Signer(authority.describe, authority.key.der)
    if prepared.certificate is None:
        return Rejection(
            source,
            RejectionKind.UNKNOWN_KEY,
            f"{what} has no certificate (signed with a key), so it is not from "
            f"{authority.describe}",
        )
    try:
        cert = parse_signing_certificate(prepared.certificate)
    except CertificateError as exc:
        return Rejection(source, RejectionKind.MALFORMED, f"{what} certificate: {exc}")
    if not _verify_crypto(prepared, cert.public_key, digest):
        return Rejection(
            source, RejectionKind.MALFORMED, f"{what} does not verify with its own certificate"
        )
    return _Signer(cert.describe, cert.der, cert)


def _check_signer(
    prepared: PreparedSignature,
    authority: AuthorityMaterial,
    signer: _Signer,
    digest: Digest,
    trusted_root: TrustedRoot | None,
    now: datetime,
) -> int | Rejection | None:
    """The transparency log (when required) and, for certificates, the chain at signing time.

    Returns the verified log index (None when the log was not required).
    """
    source = prepared.source
    entry: VerifiedTlogEntry | None = None
    if authority.requires_tlog:
        checked = _check_tlog(prepared, signer.verifier_der, digest, trusted_root)
        if isinstance(checked, Rejection):
            return checked
        entry = checked
    if isinstance(authority, KeyAuthority):
        return entry.log_index if entry is not None else None
    cert = signer.certificate
    assert cert is not None  # _authenticate gives certificate signers their certificate
    if isinstance(authority, CertificateAuthorityAuthority):
        return _check_ca_certificate(prepared, authority, cert, entry, now)
    if trusted_root is None:
        return Rejection(
            source, RejectionKind.TLOG, "keyless signature but no trusted root configured"
        )
    times = _signing_times(prepared, entry, trusted_root)
    if isinstance(times, Rejection):
        return times
    # The certificate must have been good at every trusted time the signature carries.
    for when in times:
        try:
            verify_fulcio(cert, trusted_root, when)
        except CertificateError as exc:
            return Rejection(source, RejectionKind.CERTIFICATE, str(exc))
    mismatch = identity_mismatch(cert, authority.identity)
    if mismatch is not None:
        return Rejection(
            source, RejectionKind.WRONG_SIGNER, f"signed by {cert.describe}: {mismatch}"
        )
    return entry.log_index if entry is not None else None


def _signing_times(
    prepared: PreparedSignature, entry: VerifiedTlogEntry | None, trusted_root: TrustedRoot
) -> list[datetime] | Rejection:
    """The times a trusted party vouches the signature existed: the log's integratedTime (from
    its SET) and every RFC 3161 timestamp that verifies. A Fulcio certificate lives minutes, so
    without one of these nothing says the key was certified when it signed."""
    times: list[datetime] = []
    if entry is not None and entry.integrated_time is not None:
        times.append(datetime.fromtimestamp(entry.integrated_time, UTC))
    problems: list[str] = []
    if prepared.timestamps:
        # Imported on first use: rfc3161-client is start-up time, and few signatures carry one.
        from signgate.signatures.timestamp import verify_rfc3161

        for token in prepared.timestamps:
            try:
                times.append(verify_rfc3161(token, prepared.timestamped, trusted_root))
            except SignatureError as exc:
                problems.append(str(exc))
    if times:
        return times
    detail = f": {'; '.join(problems)}" if problems else ""
    return Rejection(
        prepared.source,
        RejectionKind.TLOG,
        "no trusted signing time: neither a transparency-log entry timestamp nor a verified "
        f"RFC 3161 timestamp{detail}",
    )


def _check_ca_certificate(
    prepared: PreparedSignature,
    authority: CertificateAuthorityAuthority,
    cert: SigningCertificate,
    entry: VerifiedTlogEntry | None,
    now: datetime,
) -> int | Rejection | None:
    # Your own PKI issues certificates that outlive a signature: without a logged time, the
    # certificate must be valid now (cosign --certificate-chain does the same).
    logged = entry.integrated_time if entry is not None else None
    when = datetime.fromtimestamp(logged, UTC) if logged is not None else now
    try:
        verify_with_ca_pool(cert, authority.certificates, when)
    except CertificateError as exc:
        return Rejection(prepared.source, RejectionKind.CERTIFICATE, str(exc))
    mismatch = identity_mismatch(
        cert,
        CertificateIdentity(subject=authority.subject, subject_regexp=authority.subject_regexp),
    )
    if mismatch is not None:
        return Rejection(
            prepared.source, RejectionKind.WRONG_SIGNER, f"signed by {cert.describe}: {mismatch}"
        )
    return entry.log_index if entry is not None else None


_ANY_IDENTITY = SignedIdentityRule()


def verify_with_authority(
    prepared: PreparedSignature,
    authority: AuthorityMaterial,
    *,
    digest: Digest,
    trusted_root: TrustedRoot | None,
    signed_identity: SignedIdentityRule = _ANY_IDENTITY,
    repository: str | None = None,
    now: datetime,
) -> VerifiedSignature | Rejection:
    """Check one prepared signature against one authority for the image ``digest``.

    Steps, each ending in a `Rejection` that says why when it fails:

    1. the signature verifies over the exact fetched bytes with the authority's key, or (keyless,
       your own CA) with the key of the certificate that travels with it;
    2. only then is its claim read: it must name ``digest``, be a signature rather than an
       attestation, and match ``signed_identity`` (``repository``, the image's
       ``registry/repository``, is needed when that rule names the image's own repository);
    3. the transparency-log entry verifies against ``trusted_root``, when the authority requires it;
    4. a certificate chains to a trusted CA at a trusted signing time (the log's, or an RFC 3161
       timestamp's; for your own CA with neither, at ``now``) and names the expected identity.

    ``now`` is read once per admission (or ``verify`` run) by the engine and passed down: nothing
    in the verification core reads the clock.
    """
    signer = _authenticate(prepared, authority, digest, "signature")
    if isinstance(signer, Rejection):
        return signer
    rejection = _check_claim(prepared, digest, signed_identity, repository)
    if rejection is not None:
        return rejection
    tlog_index = _check_signer(prepared, authority, signer, digest, trusted_root, now)
    if isinstance(tlog_index, Rejection):
        return tlog_index
    return VerifiedSignature(
        authority=authority.name,
        signer=signer.describe,
        format=prepared.format,
        source=prepared.source,
        tlog_index=tlog_index,
    )


def verify_attestation(
    prepared: PreparedSignature,
    authority: AuthorityMaterial,
    *,
    digest: Digest,
    predicate_type: str,
    trusted_root: TrustedRoot | None,
    conditions: Sequence[PredicateCondition] = (),
    now: datetime,
) -> VerifiedAttestation | Rejection:
    """Check that ``prepared`` is an attestation of ``predicate_type`` about ``digest``, signed
    by ``authority`` (``cosign verify-attestation --type``)."""
    source = prepared.source
    if prepared.claim is not ClaimKind.IN_TOTO:
        return Rejection(
            source, RejectionKind.NOT_AN_ATTESTATION, "a signature, not an in-toto attestation"
        )
    signer = _authenticate(prepared, authority, digest, "attestation")
    if isinstance(signer, Rejection):
        return signer
    statement = _statement(prepared)
    if isinstance(statement, Rejection):
        return statement
    if statement.predicate_type != predicate_type:
        return Rejection(
            source,
            RejectionKind.OTHER_PREDICATE,
            f"{_what(statement)}, not {predicate_type}",
        )
    rejection = _check_subject(statement, digest, source)
    if rejection is not None:
        return rejection
    tlog_index = _check_signer(prepared, authority, signer, digest, trusted_root, now)
    if isinstance(tlog_index, Rejection):
        return tlog_index
    # Only a verified statement's predicate is read.
    failure = first_failure(conditions, statement.predicate)
    if failure is not None:
        return Rejection(source, RejectionKind.CONDITION, failure)
    return VerifiedAttestation(
        authority=authority.name,
        signer=signer.describe,
        predicate_type=predicate_type,
        format=prepared.format,
        source=source,
        tlog_index=tlog_index,
    )
