"""Signatures judged against one authority: binding, attestations, and the transparency log."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec

from signgate.reference import Digest
from signgate.signatures.authority import KeyAuthority, SignedIdentityRule
from signgate.signatures.found import (
    ANNOTATION_BUNDLE,
    ANNOTATION_SIGNATURE,
    LegacySignature,
    SignatureFormat,
    UnusableSignature,
)
from signgate.signatures.keys import PublicKey
from signgate.signatures.prepare import prepare
from signgate.signatures.results import (
    PreparedSignature,
    Rejection,
    RejectionKind,
    VerifiedAttestation,
    VerifiedSignature,
)
from signgate.signatures.verify import verify_attestation, verify_with_authority
from support.cosign_key import sign
from support.formats import public_key_pem
from support.memory_sigstore import FakeLog, hashedrekord_body

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
        prepared(legacy(key, payload())),
        authority(key),
        digest=DIGEST,
        trusted_root=None,
        now=datetime.now(UTC),
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
        now=datetime.now(UTC),
    )
    assert isinstance(result, Rejection)
    assert result.kind is RejectionKind.UNKNOWN_KEY


def test_unusable_signatures_become_rejections() -> None:
    result = prepare(UnusableSignature("somewhere", "layer too big"))
    assert isinstance(result, Rejection)
    assert result.reason == "layer too big"


def rekor_annotation(log: FakeLog, key: ec.EllipticCurvePrivateKey, found: LegacySignature) -> str:
    signature = base64.b64decode(found.annotations[ANNOTATION_SIGNATURE])
    body = hashedrekord_body(signature, public_key_pem(key), hashlib.sha256(found.payload).digest())
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
        now=datetime.now(UTC),
    )
    assert isinstance(result, VerifiedSignature), result
    assert result.tlog_index == 0


def test_required_tlog_refuses_missing_foreign_or_mismatched_entries() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    log = FakeLog(ec.generate_private_key(ec.SECP256R1()))
    other_log = FakeLog(ec.generate_private_key(ec.SECP256R1()))
    found = legacy(key, payload())

    missing = verify_with_authority(
        prepared(found),
        authority(key, tlog=True),
        digest=DIGEST,
        trusted_root=log.trusted_root(),
        now=datetime.now(UTC),
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
        now=datetime.now(UTC),
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
        prepared(swapped),
        authority(key, tlog=True),
        digest=DIGEST,
        trusted_root=log.trusted_root(),
        now=datetime.now(UTC),
    )
    assert isinstance(mismatch, Rejection)
    assert mismatch.kind is RejectionKind.TLOG

    no_root = verify_with_authority(
        prepared(annotated),
        authority(key, tlog=True),
        digest=DIGEST,
        trusted_root=None,
        now=datetime.now(UTC),
    )
    assert isinstance(no_root, Rejection)
    assert "no trusted root configured" in no_root.reason

    garbage = LegacySignature(
        found.source, found.format, found.payload, {**found.annotations, ANNOTATION_BUNDLE: "{"}
    )
    broken = verify_with_authority(
        prepared(garbage),
        authority(key, tlog=True),
        digest=DIGEST,
        trusted_root=log.trusted_root(),
        now=datetime.now(UTC),
    )
    assert isinstance(broken, Rejection)
    assert broken.kind is RejectionKind.TLOG


def test_ignored_tlog_does_not_look_at_the_annotation() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    found = legacy(key, payload(), **{ANNOTATION_BUNDLE: "not even json"})
    result = verify_with_authority(
        prepared(found), authority(key), digest=DIGEST, trusted_root=None, now=datetime.now(UTC)
    )
    assert isinstance(result, VerifiedSignature)


# -- attestations and signed identities ------------------------------------------------------------


def legacy_attestation(
    key: ec.EllipticCurvePrivateKey, predicate_type: str, digest: str = DIGEST
) -> LegacySignature:
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "subject": [{"name": "registry.example/app", "digest": {"sha256": digest[7:]}}],
            "predicateType": predicate_type,
            "predicate": {},
        }
    ).encode()
    pae = b"DSSEv1 28 application/vnd.in-toto+json %d %b" % (len(statement), statement)
    envelope = json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(statement).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(sign(key, pae)).decode()}],
        }
    ).encode()
    return LegacySignature(
        "r/app:sha256-ab.att layer 1",
        SignatureFormat.LEGACY_ATTESTATION,
        envelope,
        {ANNOTATION_SIGNATURE: "", "predicateType": predicate_type},
    )


SLSA = "https://slsa.dev/provenance/v1"


def test_legacy_attestation_counts_only_as_its_predicate_type() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    attestation = prepared(legacy_attestation(key, SLSA))
    verified = verify_attestation(
        attestation,
        authority(key),
        digest=DIGEST,
        predicate_type=SLSA,
        trusted_root=None,
        now=datetime.now(UTC),
    )
    assert isinstance(verified, VerifiedAttestation)
    assert verified.format is SignatureFormat.LEGACY_ATTESTATION

    other = verify_attestation(
        attestation,
        authority(key),
        digest=DIGEST,
        predicate_type="https://cyclonedx.org/bom",
        trusted_root=None,
        now=datetime.now(UTC),
    )
    assert isinstance(other, Rejection)
    assert other.kind is RejectionKind.OTHER_PREDICATE
    assert other.reason == f"attestation of type {SLSA}, not https://cyclonedx.org/bom"

    as_signature = verify_with_authority(
        attestation, authority(key), digest=DIGEST, trusted_root=None, now=datetime.now(UTC)
    )
    assert isinstance(as_signature, Rejection)
    assert as_signature.kind is RejectionKind.NOT_A_SIGNATURE

    signature = prepared(legacy(key, payload()))
    as_attestation = verify_attestation(
        signature,
        authority(key),
        digest=DIGEST,
        predicate_type=SLSA,
        trusted_root=None,
        now=datetime.now(UTC),
    )
    assert isinstance(as_attestation, Rejection)
    assert as_attestation.kind is RejectionKind.NOT_AN_ATTESTATION


def test_legacy_attestation_for_another_digest_or_key_is_refused() -> None:
    key, stranger = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    elsewhere = prepared(legacy_attestation(key, SLSA, "sha256:" + "cd" * 32))
    result = verify_attestation(
        elsewhere,
        authority(key),
        digest=DIGEST,
        predicate_type=SLSA,
        trusted_root=None,
        now=datetime.now(UTC),
    )
    assert isinstance(result, Rejection)
    assert result.kind is RejectionKind.WRONG_DIGEST
    unknown = verify_attestation(
        prepared(legacy_attestation(stranger, SLSA)),
        authority(key),
        digest=DIGEST,
        predicate_type=SLSA,
        trusted_root=None,
        now=datetime.now(UTC),
    )
    assert isinstance(unknown, Rejection)
    assert unknown.kind is RejectionKind.UNKNOWN_KEY


def test_legacy_attestation_logged_as_intoto_cannot_satisfy_a_required_log() -> None:
    # difference: intoto-entries -- cosign v1-era attestations were logged as intoto 0.0.2
    # entries; signgate checks dsse entries (cosign v2 and v3) only.
    key = ec.generate_private_key(ec.SECP256R1())
    log = FakeLog(ec.generate_private_key(ec.SECP256R1()))
    found = legacy_attestation(key, SLSA)
    body = json.dumps(
        {"apiVersion": "0.0.2", "kind": "intoto", "spec": {"content": {}}},
        separators=(",", ":"),
    ).encode()
    index = log.append(body)
    entry = log.entry(index, with_proof=False)
    assert entry.signed_entry_timestamp is not None
    annotation = json.dumps(
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
    logged = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {**found.annotations, ANNOTATION_BUNDLE: annotation},
    )
    result = verify_attestation(
        prepared(logged),
        authority(key, tlog=True),
        digest=DIGEST,
        predicate_type=SLSA,
        trusted_root=log.trusted_root(),
        now=datetime.now(UTC),
    )
    assert isinstance(result, Rejection)
    assert result.kind is RejectionKind.TLOG
    assert "unsupported entry kind intoto 0.0.2" in result.reason

    unlogged = verify_attestation(
        prepared(found),
        authority(key, tlog=True),
        digest=DIGEST,
        predicate_type=SLSA,
        trusted_root=log.trusted_root(),
        now=datetime.now(UTC),
    )
    assert isinstance(unlogged, Rejection)
    assert "has no Rekor bundle" in unlogged.reason


def test_malformed_legacy_attestation_is_a_rejection() -> None:
    found = LegacySignature(
        "r/app:sha256-ab.att layer 1", SignatureFormat.LEGACY_ATTESTATION, b"{not json", {}
    )
    result = prepare(found)
    assert isinstance(result, Rejection)
    assert result.kind is RejectionKind.MALFORMED
    assert result.reason.startswith("invalid DSSE envelope")


class Matcher:
    def __init__(self, *names: str) -> None:
        self.names = names

    def matches(self, name: str) -> bool:
        return name in self.names


def test_signed_identity_rules() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signature = prepared(legacy(key, payload()))  # docker-reference registry.example/app

    def check(rule: SignedIdentityRule, repository: str) -> VerifiedSignature | Rejection:
        return verify_with_authority(
            signature,
            authority(key),
            digest=DIGEST,
            trusted_root=None,
            signed_identity=rule,
            repository=repository,
            now=datetime.now(UTC),
        )

    assert isinstance(check(SignedIdentityRule(), "mirror.example/app"), VerifiedSignature)
    own = SignedIdentityRule("ImageRepository")
    assert isinstance(check(own, "registry.example/app"), VerifiedSignature)
    moved = check(own, "mirror.example/app")
    assert isinstance(moved, Rejection)
    assert moved.kind is RejectionKind.WRONG_IDENTITY
    assert moved.reason == (
        "signature was made for registry.example/app, not the image's repository mirror.example/app"
    )
    listed = SignedIdentityRule("Repositories", (Matcher("registry.example/app"),))
    assert isinstance(check(listed, "mirror.example/app"), VerifiedSignature)
    unlisted = SignedIdentityRule("Repositories", (Matcher("other.example/app"),))
    assert isinstance(check(unlisted, "mirror.example/app"), Rejection)


def test_signed_identity_with_a_tag_or_docker_hub_short_name_is_normalised() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = payload().replace(b'"registry.example/app"', b'"nginx:1.27"')
    result = verify_with_authority(
        prepared(legacy(key, body)),
        authority(key),
        digest=DIGEST,
        trusted_root=None,
        signed_identity=SignedIdentityRule("ImageRepository"),
        repository="docker.io/library/nginx",
        now=datetime.now(UTC),
    )
    assert isinstance(result, VerifiedSignature)


def test_signature_annotation_with_a_trailing_newline_decodes_like_cosign() -> None:
    # `cosign attach signature --signature FILE` stores the file as written by sign-blob, newline
    # included; Go's base64 decoder skips it.
    key = ec.generate_private_key(ec.SECP256R1())
    found = legacy(key, payload())
    with_newline = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {ANNOTATION_SIGNATURE: found.annotations[ANNOTATION_SIGNATURE] + "\n"},
    )
    result = verify_with_authority(
        prepared(with_newline),
        authority(key),
        digest=DIGEST,
        trusted_root=None,
        now=datetime.now(UTC),
    )
    assert isinstance(result, VerifiedSignature)
