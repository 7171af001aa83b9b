"""Decode a discovered signature once, into what every authority's check needs. No I/O.

Each format carries its signature, the bytes it covers and its claim differently (cosign's legacy
``.sig`` layer with annotations, a ``.att`` layer holding a DSSE envelope, a Sigstore bundle with a
message signature or a DSSE envelope); `prepare` turns all of them into one `PreparedSignature`.
Nothing is trusted yet: malformed input becomes a `Rejection`, never an exception.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import replace

from signgate.errors import BundleFormatError, SignatureError
from signgate.signatures import _json, _pem
from signgate.signatures.bundle import SigstoreBundle, parse_bundle
from signgate.signatures.dsse import IN_TOTO_PAYLOAD_TYPE, DsseEnvelope, parse_envelope
from signgate.signatures.found import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_RFC3161,
    BundleSignature,
    FoundSignature,
    LegacySignature,
    SignatureFormat,
    UnusableSignature,
)
from signgate.signatures.results import ClaimKind, PreparedSignature, Rejection, RejectionKind

MIN_BUNDLE_VERSION = (0, 3)
"""cosign reads OCI-attached bundles only from v0.3 on (docs/adr)."""


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
        certificate = _annotation_certificate(found)
        if isinstance(certificate, Rejection):
            return certificate
        if found.format is SignatureFormat.LEGACY_ATTESTATION:
            prepared = _prepare_legacy_attestation(found)
        else:
            signature = _decode_signature(found.signature_b64, found.source)
            if isinstance(signature, Rejection):
                return signature
            prepared = PreparedSignature(
                source=found.source,
                format=found.format,
                claim=ClaimKind.SIMPLE_SIGNING,
                signature=signature,
                signed_bytes=found.payload,
                payload=found.payload,
            )
        if isinstance(prepared, Rejection):
            return prepared
        timestamps = _annotation_timestamps(found)
        if isinstance(timestamps, Rejection):
            return timestamps
        attestation = found.format is SignatureFormat.LEGACY_ATTESTATION
        return replace(
            prepared,
            legacy_tlog_annotation=found.annotations.get(ANNOTATION_BUNDLE),
            certificate=certificate,
            timestamps=timestamps,
            timestamped=found.payload if attestation else prepared.signature,
        )
    return _prepare_bundle(found)


def _annotation_timestamps(found: LegacySignature) -> tuple[bytes, ...] | Rejection:
    text = found.annotations.get(ANNOTATION_RFC3161)
    if not text:
        return ()
    # Imported on first use: rfc3161-client is start-up time, and few signatures carry a timestamp.
    from signgate.signatures.timestamp import parse_cosign_timestamp_annotation

    try:
        return (parse_cosign_timestamp_annotation(text),)
    except SignatureError as exc:
        return Rejection(found.source, RejectionKind.MALFORMED, f"timestamp annotation: {exc}")


def _annotation_certificate(found: LegacySignature) -> bytes | Rejection | None:
    # The chain annotation is never read: trust comes from the trusted root's CA chains.
    text = found.annotations.get(ANNOTATION_CERTIFICATE)
    if not text:
        return None
    try:
        return _pem.read_single_block(
            text, labels=("CERTIFICATE",), what="certificate annotation", error=SignatureError
        ).der
    except SignatureError as exc:
        return Rejection(found.source, RejectionKind.MALFORMED, str(exc))


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
        prepared = _prepare_dsse(bundle.dsse, found.source, SignatureFormat.BUNDLE, bundle)
        if isinstance(prepared, Rejection):
            return prepared
        return replace(
            prepared,
            certificate=bundle.certificate_chain[0] if bundle.certificate_chain else None,
            timestamps=bundle.rfc3161_timestamps,
            timestamped=prepared.signature,
        )
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
        certificate=bundle.certificate_chain[0] if bundle.certificate_chain else None,
        timestamps=bundle.rfc3161_timestamps,
        timestamped=message.signature,
    )
