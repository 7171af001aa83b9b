"""Signatures judged against one authority: binding, attestations, and the transparency log."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric import ec
from signatures_testkit import FakeLog, hashedrekord_body, public_pem

from signgate.reference import Digest
from signgate.signatures.authority import KeyAuthority
from signgate.signatures.cosign_key import sign
from signgate.signatures.found import (
    ANNOTATION_BUNDLE,
    ANNOTATION_SIGNATURE,
    LegacySignature,
    SignatureFormat,
    UnusableSignature,
)
from signgate.signatures.keys import PublicKey
from signgate.signatures.verify import (
    PreparedSignature,
    Rejection,
    RejectionKind,
    VerifiedSignature,
    prepare,
    verify_with_authority,
)

DIGEST = Digest("sha256:" + "ab" * 32)


def payload(digest: str = DIGEST) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "registry.example/app"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def legacy(key: ec.EllipticCurvePrivateKey, body: bytes, **annotations: str) -> LegacySignature:
    signature = base64.b64encode(sign(key, body)).decode()
    return LegacySignature(
        "r/app:sha256-ab.sig layer 1",
        SignatureFormat.LEGACY_TAG,
        body,
        {ANNOTATION_SIGNATURE: signature, **annotations},
    )


def authority(key: ec.EllipticCurvePrivateKey, *, tlog: bool = False) -> KeyAuthority:
    return KeyAuthority("release", PublicKey.from_key(key.public_key()), tlog)


def prepared(found: LegacySignature) -> PreparedSignature:
    result = prepare(found)
    assert isinstance(result, PreparedSignature)
    return result


def test_valid_legacy_signature_counts() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    result = verify_with_authority(
        prepared(legacy(key, payload())), authority(key), digest=DIGEST, trusted_root=None
    )
    assert isinstance(result, VerifiedSignature)
    assert result.authority == "release"
    assert result.tlog_index is None


def test_unverified_claims_are_never_read() -> None:
    # A stranger's signature claiming another digest is "unknown key", not "wrong digest".
    key, stranger = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    result = verify_with_authority(
        prepared(legacy(stranger, payload("sha256:" + "00" * 32))),
        authority(key),
        digest=DIGEST,
        trusted_root=None,
    )
    assert isinstance(result, Rejection)
    assert result.kind is RejectionKind.UNKNOWN_KEY


def test_unusable_signatures_become_rejections() -> None:
    result = prepare(UnusableSignature("somewhere", "layer too big"))
    assert isinstance(result, Rejection)
    assert result.reason == "layer too big"


def rekor_annotation(log: FakeLog, key: ec.EllipticCurvePrivateKey, found: LegacySignature) -> str:
    signature = base64.b64decode(found.annotations[ANNOTATION_SIGNATURE])
    body = hashedrekord_body(signature, public_pem(key), hashlib.sha256(found.payload).digest())
    index = log.append(body)
    entry = log.entry(index, with_proof=False)
    assert entry.signed_entry_timestamp is not None
    return json.dumps(
        {
            "SignedEntryTimestamp": base64.b64encode(entry.signed_entry_timestamp).decode(),
            "Payload": {
                "body": base64.b64encode(body).decode(),
                "integratedTime": entry.integrated_time,
                "logIndex": index,
                "logID": log.log_id.hex(),
            },
        }
    )


def test_required_tlog_accepts_a_valid_rekor_bundle_annotation() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    log = FakeLog(ec.generate_private_key(ec.SECP256R1()))
    found = legacy(key, payload())
    with_entry = legacy(key, payload(), **{ANNOTATION_BUNDLE: rekor_annotation(log, key, found)})
    # ECDSA signatures are randomised: reuse the signature the log entry names.
    with_entry = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {**found.annotations, ANNOTATION_BUNDLE: with_entry.annotations[ANNOTATION_BUNDLE]},
    )
    result = verify_with_authority(
        prepared(with_entry),
        authority(key, tlog=True),
        digest=DIGEST,
        trusted_root=log.trusted_root(),
    )
    assert isinstance(result, VerifiedSignature), result
    assert result.tlog_index == 0


def test_required_tlog_refuses_missing_foreign_or_mismatched_entries() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    log = FakeLog(ec.generate_private_key(ec.SECP256R1()))
    other_log = FakeLog(ec.generate_private_key(ec.SECP256R1()))
    found = legacy(key, payload())

    missing = verify_with_authority(
        prepared(found), authority(key, tlog=True), digest=DIGEST, trusted_root=log.trusted_root()
    )
    assert isinstance(missing, Rejection)
    assert "has no Rekor bundle" in missing.reason

    annotated = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {**found.annotations, ANNOTATION_BUNDLE: rekor_annotation(log, key, found)},
    )
    untrusted = verify_with_authority(
        prepared(annotated),
        authority(key, tlog=True),
        digest=DIGEST,
        trusted_root=other_log.trusted_root(),
    )
    assert isinstance(untrusted, Rejection)
    assert untrusted.kind is RejectionKind.TLOG

    # An entry for a different signature (same payload, new randomised ECDSA signature).
    resigned = legacy(key, payload())
    swapped = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {**resigned.annotations, ANNOTATION_BUNDLE: annotated.annotations[ANNOTATION_BUNDLE]},
    )
    mismatch = verify_with_authority(
        prepared(swapped), authority(key, tlog=True), digest=DIGEST, trusted_root=log.trusted_root()
    )
    assert isinstance(mismatch, Rejection)
    assert mismatch.kind is RejectionKind.TLOG

    no_root = verify_with_authority(
        prepared(annotated), authority(key, tlog=True), digest=DIGEST, trusted_root=None
    )
    assert isinstance(no_root, Rejection)
    assert "no trusted root configured" in no_root.reason

    garbage = LegacySignature(
        found.source, found.format, found.payload, {**found.annotations, ANNOTATION_BUNDLE: "{"}
    )
    broken = verify_with_authority(
        prepared(garbage), authority(key, tlog=True), digest=DIGEST, trusted_root=log.trusted_root()
    )
    assert isinstance(broken, Rejection)
    assert broken.kind is RejectionKind.TLOG


def test_ignored_tlog_does_not_look_at_the_annotation() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    found = legacy(key, payload(), **{ANNOTATION_BUNDLE: "not even json"})
    result = verify_with_authority(
        prepared(found), authority(key), digest=DIGEST, trusted_root=None
    )
    assert isinstance(result, VerifiedSignature)
