"""Verify discovered signatures against one authority of a policy. No I/O: bytes in, results out.

The order of checks matters for what we tell a person. A signature is first checked with the
policy's key over the exact bytes that were fetched; only a signature that verifies has its claims
read, because an unverified payload can claim anything. Then the claim must bind to the exact
digest being admitted, and must be a signature, not an attestation. Then, if the authority asks for
it, the transparency-log entry must verify against the trusted root.
"""

from __future__ import annotations

import binascii
import hashlib
from base64 import b64decode
from dataclasses import dataclass
from enum import StrEnum

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
from signgate.signatures import _json
from signgate.signatures.authority import AuthorityMaterial, KeyAuthority, SignedIdentityRule
from signgate.signatures.bundle import SigstoreBundle, parse_bundle
from signgate.signatures.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    DsseEnvelope,
    InTotoStatement,
    parse_envelope,
    parse_statement,
)
from signgate.signatures.found import (
    ANNOTATION_BUNDLE,
    COSIGN_SIGNATURE_PREDICATE,
    BundleSignature,
    FoundSignature,
    LegacySignature,
    SignatureFormat,
    UnusableSignature,
)
from signgate.signatures.keys import PublicKey
from signgate.signatures.simplesigning import SimpleSigningPayload, parse_simple_signing
from signgate.signatures.tlog import parse_cosign_bundle_annotation, verify_tlog_entry
from signgate.signatures.trusted_root import TrustedRoot

MIN_BUNDLE_VERSION = (0, 3)


class RejectionKind(StrEnum):
    """Why a signature did not count, in words a metric label or a test can use."""

    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown-key"
    WRONG_DIGEST = "wrong-digest"
    NOT_A_SIGNATURE = "not-a-signature"
    TLOG = "tlog"
    UNSUPPORTED = "unsupported"
    WRONG_IDENTITY = "wrong-identity"
    NOT_AN_ATTESTATION = "not-an-attestation"
    OTHER_PREDICATE = "other-predicate"


class ClaimKind(StrEnum):
    """What a signature's signed bytes claim, and so how the claim binds to an image digest."""

    SIMPLE_SIGNING = "simple-signing"
    """A simple-signing payload naming ``docker-manifest-digest``."""
    IN_TOTO = "in-toto"
    """A DSSE envelope over an in-toto statement whose subject names the digest."""
    MESSAGE_DIGEST = "message-digest"
    """A bundle ``messageSignature`` over the image manifest itself (no statement)."""


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature that counts for ``authority``."""

    authority: str
    signer: str
    format: SignatureFormat
    source: str
    tlog_index: int | None = None


@dataclass(frozen=True, slots=True)
class VerifiedAttestation:
    """An attestation of ``predicate_type`` that counts for ``authority``."""

    authority: str
    signer: str
    predicate_type: str
    format: SignatureFormat
    source: str
    tlog_index: int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A signature that does not count, and why."""

    source: str
    kind: RejectionKind
    reason: str


@dataclass(frozen=True, slots=True)
class PreparedSignature:
    """A signature decoded once, ready to be checked against any number of authorities."""

    source: str
    format: SignatureFormat
    claim: ClaimKind
    signature: bytes
    signed_bytes: bytes | None
    """What the signature covers: the simple-signing payload or the DSSE PAE; None for
    `ClaimKind.MESSAGE_DIGEST`, whose signature covers the image digest being checked."""
    payload: bytes
    """The claim to read once the signature verifies (payload or in-toto statement)."""
    bundle: SigstoreBundle | None = None
    legacy_tlog_annotation: str | None = None


def _decode_signature(text: str | None, source: str) -> bytes | Rejection:
    if text is None or text == "":
        return Rejection(
            source, RejectionKind.NOT_A_SIGNATURE, "layer has no cosign signature annotation"
        )
    # Go's base64 decoder skips CR and LF, and `cosign attach signature` stores the file it is
    # given verbatim: a signature saved by `cosign sign-blob` ends with a newline.
    try:
        return b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return Rejection(source, RejectionKind.MALFORMED, "signature annotation is not base64")


def prepare(found: FoundSignature) -> PreparedSignature | Rejection:
    """Decode a discovered signature; malformed input becomes a `Rejection`, never an exception."""
    if isinstance(found, UnusableSignature):
        return Rejection(found.source, RejectionKind.MALFORMED, found.reason)
    if isinstance(found, LegacySignature):
        if found.format is SignatureFormat.LEGACY_ATTESTATION:
            return _prepare_legacy_attestation(found)
        signature = _decode_signature(found.signature_b64, found.source)
        if isinstance(signature, Rejection):
            return signature
        return PreparedSignature(
            source=found.source,
            format=found.format,
            claim=ClaimKind.SIMPLE_SIGNING,
            signature=signature,
            signed_bytes=found.payload,
            payload=found.payload,
            legacy_tlog_annotation=found.annotations.get(ANNOTATION_BUNDLE),
        )
    return _prepare_bundle(found)


def _prepare_dsse(
    envelope: DsseEnvelope, source: str, fmt: SignatureFormat, bundle: SigstoreBundle | None
) -> PreparedSignature | Rejection:
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        return Rejection(
            source,
            RejectionKind.NOT_A_SIGNATURE,
            f"DSSE payload type is {envelope.payload_type!r}, not an in-toto statement",
        )
    if len(envelope.signatures) != 1:
        return Rejection(
            source,
            RejectionKind.MALFORMED,
            f"DSSE envelope has {len(envelope.signatures)} signatures (exactly 1 expected)",
        )
    return PreparedSignature(
        source=source,
        format=fmt,
        claim=ClaimKind.IN_TOTO,
        signature=envelope.signatures[0],
        signed_bytes=envelope.pae(),
        payload=envelope.payload,
        bundle=bundle,
    )


def _prepare_legacy_attestation(found: LegacySignature) -> PreparedSignature | Rejection:
    # The layer's own signature annotation is "" by design: the signature is in the envelope.
    try:
        envelope = parse_envelope(
            _json.loads(found.payload, what="DSSE envelope", error=BundleFormatError)
        )
    except BundleFormatError as exc:
        return Rejection(found.source, RejectionKind.MALFORMED, f"invalid DSSE envelope: {exc}")
    return _prepare_dsse(envelope, found.source, found.format, None)


def _prepare_bundle(found: BundleSignature) -> PreparedSignature | Rejection:
    try:
        bundle = parse_bundle(found.raw)
    except BundleFormatError as exc:
        return Rejection(found.source, RejectionKind.MALFORMED, f"invalid sigstore bundle: {exc}")
    if bundle.version < MIN_BUNDLE_VERSION:
        # cosign reads OCI-attached bundles only from v0.3 on; older ones are not cosign's.
        return Rejection(
            found.source,
            RejectionKind.UNSUPPORTED,
            f"sigstore bundle v{bundle.version[0]}.{bundle.version[1]} (need v0.3 or later)",
        )
    if bundle.dsse is not None:
        return _prepare_dsse(bundle.dsse, found.source, SignatureFormat.BUNDLE, bundle)
    message = bundle.message_signature
    if message is None:  # parse_bundle guarantees one of the two; stay closed anyway
        return Rejection(found.source, RejectionKind.MALFORMED, "bundle has no signature")
    return PreparedSignature(
        source=found.source,
        format=SignatureFormat.BUNDLE,
        claim=ClaimKind.MESSAGE_DIGEST,
        signature=message.signature,
        signed_bytes=None,
        payload=b"",
        bundle=bundle,
    )


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
    key: PublicKey,
    digest: Digest,
    trusted_root: TrustedRoot | None,
) -> int | Rejection:
    source = prepared.source
    if trusted_root is None:
        return Rejection(
            source, RejectionKind.TLOG, "transparency log required but no trusted root configured"
        )
    try:
        if prepared.bundle is None:
            if prepared.claim is not ClaimKind.SIMPLE_SIGNING:
                # Legacy .att entries are Rekor intoto/dsse bodies over the envelope; not read yet.
                return Rejection(
                    source,
                    RejectionKind.UNSUPPORTED,
                    "transparency-log checks of legacy .att attestations are not supported "
                    "(attest with cosign v3 bundles, or set transparencyLog: Ignore)",
                )
            if not prepared.legacy_tlog_annotation:
                return Rejection(
                    source,
                    RejectionKind.TLOG,
                    "transparency log required but the signature has no Rekor bundle",
                )
            entry = parse_cosign_bundle_annotation(prepared.legacy_tlog_annotation)
            verified = verify_tlog_entry(
                entry,
                trusted_root,
                require_inclusion_proof=False,
                signature=prepared.signature,
                signed_bytes_sha256=hashlib.sha256(prepared.payload).digest(),
                verifier_der=key.der,
            )
            return verified.log_index
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
                    verifier_der=key.der,
                    dsse_payload_sha256=(
                        hashlib.sha256(prepared.payload).digest()
                        if prepared.claim is ClaimKind.IN_TOTO
                        else None
                    ),
                )
            except TransparencyLogError as exc:
                problems.append(str(exc))
                continue
            return verified.log_index
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


def _tlog_if_required(
    prepared: PreparedSignature,
    authority: KeyAuthority,
    digest: Digest,
    trusted_root: TrustedRoot | None,
) -> int | Rejection | None:
    """The verified log index when the authority requires the transparency log, else None."""
    if not authority.requires_tlog:
        return None
    return _check_tlog(prepared, authority.key, digest, trusted_root)


_ANY_IDENTITY = SignedIdentityRule()


def verify_with_authority(
    prepared: PreparedSignature,
    authority: AuthorityMaterial,
    *,
    digest: Digest,
    trusted_root: TrustedRoot | None,
    signed_identity: SignedIdentityRule = _ANY_IDENTITY,
    repository: str | None = None,
) -> VerifiedSignature | Rejection:
    """Check one prepared signature against one authority for the image ``digest``.

    ``repository`` (the image's ``registry/repository``) is needed when ``signed_identity``
    matches the image's own repository.
    """
    if not isinstance(authority, KeyAuthority):
        return Rejection(
            prepared.source,
            RejectionKind.UNSUPPORTED,
            f"authority {authority.name!r}: keyless verification is not available in this release",
        )
    key = authority.key
    if not _verify_crypto(prepared, key, digest):
        return Rejection(
            prepared.source,
            RejectionKind.UNKNOWN_KEY,
            f"signature does not verify with {authority.describe}",
        )
    rejection = _check_claim(prepared, digest, signed_identity, repository)
    if rejection is not None:
        return rejection
    tlog_index = _tlog_if_required(prepared, authority, digest, trusted_root)
    if isinstance(tlog_index, Rejection):
        return tlog_index
    return VerifiedSignature(
        authority=authority.name,
        signer=authority.describe,
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
) -> VerifiedAttestation | Rejection:
    """Check that ``prepared`` is an attestation of ``predicate_type`` about ``digest``, signed
    by ``authority`` (``cosign verify-attestation --type``)."""
    source = prepared.source
    if prepared.claim is not ClaimKind.IN_TOTO:
        return Rejection(
            source, RejectionKind.NOT_AN_ATTESTATION, "a signature, not an in-toto attestation"
        )
    if not isinstance(authority, KeyAuthority):
        return Rejection(
            source,
            RejectionKind.UNSUPPORTED,
            f"authority {authority.name!r}: keyless verification is not available in this release",
        )
    if not _verify_crypto(prepared, authority.key, digest):
        return Rejection(
            source,
            RejectionKind.UNKNOWN_KEY,
            f"attestation does not verify with {authority.describe}",
        )
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
    tlog_index = _tlog_if_required(prepared, authority, digest, trusted_root)
    if isinstance(tlog_index, Rejection):
        return tlog_index
    return VerifiedAttestation(
        authority=authority.name,
        signer=authority.describe,
        predicate_type=predicate_type,
        format=prepared.format,
        source=source,
        tlog_index=tlog_index,
    )
