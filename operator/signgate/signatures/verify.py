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

from signgate.errors import BundleFormatError, SignatureError, TransparencyLogError
from signgate.reference import Digest
from signgate.signatures.authority import AuthorityMaterial, KeyAuthority
from signgate.signatures.bundle import SigstoreBundle, parse_bundle
from signgate.signatures.dsse import IN_TOTO_PAYLOAD_TYPE, parse_statement
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
from signgate.signatures.simplesigning import parse_simple_signing
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


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature that counts for ``authority``."""

    authority: str
    signer: str
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
    signature: bytes
    signed_bytes: bytes | None
    """What the signature covers: the simple-signing payload or the DSSE PAE."""
    signed_digest: bytes | None
    """For a bundle ``messageSignature``: the sha256 the signature covers (the image digest)."""
    payload: bytes
    """The claim to read once the signature verifies (payload or in-toto statement)."""
    bundle: SigstoreBundle | None = None
    legacy_tlog_annotation: str | None = None


def _decode_signature(text: str | None, source: str) -> bytes | Rejection:
    if text is None or text == "":
        return Rejection(
            source, RejectionKind.NOT_A_SIGNATURE, "layer has no cosign signature annotation"
        )
    try:
        return b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return Rejection(source, RejectionKind.MALFORMED, "signature annotation is not base64")


def prepare(found: FoundSignature) -> PreparedSignature | Rejection:
    """Decode a discovered signature; malformed input becomes a `Rejection`, never an exception."""
    if isinstance(found, UnusableSignature):
        return Rejection(found.source, RejectionKind.MALFORMED, found.reason)
    if isinstance(found, LegacySignature):
        signature = _decode_signature(found.signature_b64, found.source)
        if isinstance(signature, Rejection):
            return signature
        return PreparedSignature(
            source=found.source,
            format=found.format,
            signature=signature,
            signed_bytes=found.payload,
            signed_digest=None,
            payload=found.payload,
            legacy_tlog_annotation=found.annotations.get(ANNOTATION_BUNDLE),
        )
    return _prepare_bundle(found)


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
        envelope = bundle.dsse
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            return Rejection(
                found.source,
                RejectionKind.NOT_A_SIGNATURE,
                f"DSSE payload type is {envelope.payload_type!r}, not an in-toto statement",
            )
        if len(envelope.signatures) != 1:
            return Rejection(
                found.source,
                RejectionKind.MALFORMED,
                f"DSSE envelope has {len(envelope.signatures)} signatures (exactly 1 expected)",
            )
        return PreparedSignature(
            source=found.source,
            format=SignatureFormat.BUNDLE,
            signature=envelope.signatures[0],
            signed_bytes=envelope.pae(),
            signed_digest=None,
            payload=envelope.payload,
            bundle=bundle,
        )
    message = bundle.message_signature
    if message is None:  # parse_bundle guarantees one of the two; stay closed anyway
        return Rejection(found.source, RejectionKind.MALFORMED, "bundle has no signature")
    return PreparedSignature(
        source=found.source,
        format=SignatureFormat.BUNDLE,
        signature=message.signature,
        signed_bytes=None,
        signed_digest=b"",  # filled per image: the signature covers the image manifest itself
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


def _check_claim(prepared: PreparedSignature, digest: Digest) -> Rejection | None:
    """After the signature verified: does its claim bind to ``digest``, as a signature?"""
    source = prepared.source
    if prepared.bundle is None:
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
        return None
    if prepared.signed_digest is not None:
        return None  # messageSignature: verified over the digest itself
    try:
        statement = parse_statement(prepared.payload)
    except BundleFormatError as exc:
        return Rejection(source, RejectionKind.MALFORMED, f"invalid in-toto statement: {exc}")
    if statement.predicate_type != COSIGN_SIGNATURE_PREDICATE:
        return Rejection(
            source,
            RejectionKind.NOT_A_SIGNATURE,
            f"attestation of type {statement.predicate_type}, not a signature "
            f"(predicate {COSIGN_SIGNATURE_PREDICATE})",
        )
    hex_digest = digest.removeprefix("sha256:")
    if hex_digest not in statement.subject_digests("sha256"):
        subjects = ", ".join(
            sorted(f"sha256:{d[:12]}…" for d in statement.subject_digests("sha256"))
        )
        return Rejection(
            source,
            RejectionKind.WRONG_DIGEST,
            f"signature is for {subjects or 'no sha256 subject'}, not {digest}",
        )
    return None


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
                        if prepared.signed_digest is not None
                        else None
                    ),
                    verifier_der=key.der,
                    dsse_payload_sha256=(
                        hashlib.sha256(prepared.payload).digest()
                        if prepared.signed_digest is None
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


def verify_with_authority(
    prepared: PreparedSignature,
    authority: AuthorityMaterial,
    *,
    digest: Digest,
    trusted_root: TrustedRoot | None,
) -> VerifiedSignature | Rejection:
    """Check one prepared signature against one authority for the image ``digest``."""
    if not isinstance(authority, KeyAuthority):
        return Rejection(
            prepared.source,
            RejectionKind.UNSUPPORTED,
            f"authority {authority.name!r}: keyless verification is not available in this release",
        )
    key = authority.key
    if prepared.signed_digest is not None:
        ok = _verify_prehashed_sha256(
            key, prepared.signature, bytes.fromhex(digest.removeprefix("sha256:"))
        )
    else:
        assert prepared.signed_bytes is not None
        ok = key.verify(prepared.signature, prepared.signed_bytes)
    if not ok:
        return Rejection(
            prepared.source,
            RejectionKind.UNKNOWN_KEY,
            f"signature does not verify with {authority.describe}",
        )
    rejection = _check_claim(prepared, digest)
    if rejection is not None:
        return rejection
    tlog_index: int | None = None
    if authority.requires_tlog:
        checked = _check_tlog(prepared, key, digest, trusted_root)
        if isinstance(checked, Rejection):
            return checked
        tlog_index = checked
    return VerifiedSignature(
        authority=authority.name,
        signer=authority.describe,
        format=prepared.format,
        source=prepared.source,
        tlog_index=tlog_index,
    )
