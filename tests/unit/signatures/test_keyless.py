"""Keyless (Fulcio) signatures judged against a keyless authority, with a fake Fulcio and Rekor.

Each negative case breaks exactly one step of cosign-formats §5.5 ("minimum a verifier must do")
and checks both the rejection kind and the sentence a person reads. The real public-Sigstore
vectors (tests/vectors/test_keyless_vectors.py) cover the happy paths end to end.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from signgate.policy.evaluate import REASON_ORDER
from signgate.reference import Digest
from signgate.signatures.authority import (
    CertificateAuthorityAuthority,
    CertificateIdentity,
    KeyAuthority,
    KeylessAuthority,
)
from signgate.signatures.found import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_SIGNATURE,
    BundleSignature,
    LegacySignature,
    SignatureFormat,
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
from signgate.signatures.trusted_root import TrustedRoot
from signgate.signatures.verify import verify_attestation, verify_with_authority
from support.cosign_key import sign
from support.memory_sigstore import (
    CA_START,
    DEFAULT_ISSUER,
    OID_ISSUER_V1,
    OID_ISSUER_V2,
    OID_SCT_LIST,
    SIGNED_AT,
    SIGNED_AT_TIME,
    FakeFulcio,
    FakeLog,
    bundle_signature,
    certificate_pem,
    keyless_attestation_document,
    keyless_bundle_document,
    keyless_signature,
)

DIGEST = Digest("sha256:" + "ab" * 32)
ALICE = "alice@example.com"
WORKFLOW = "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main"
SLSA = "https://slsa.dev/provenance/v1"
STAMP = "%Y-%m-%dT%H:%M:%SZ"


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


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def keyless(
    subject: str | None = ALICE,
    issuer: str | None = DEFAULT_ISSUER,
    *,
    subject_regexp: str | None = None,
    issuer_regexp: str | None = None,
    tlog: bool = True,
) -> KeylessAuthority:
    identity = CertificateIdentity(
        issuer=issuer, issuer_regexp=issuer_regexp, subject=subject, subject_regexp=subject_regexp
    )
    return KeylessAuthority("ci", identity, tlog)


def prepared(found: LegacySignature | BundleSignature) -> PreparedSignature:
    result = prepare(found)
    assert isinstance(result, PreparedSignature), result
    return result


def check(
    found: LegacySignature | BundleSignature,
    root: TrustedRoot | None,
    authority: KeylessAuthority | KeyAuthority | None = None,
) -> VerifiedSignature | Rejection:
    return verify_with_authority(
        prepared(found),
        authority or keyless(),
        digest=DIGEST,
        trusted_root=root,
        now=datetime.now(UTC),
    )


def rejected(result: object, kind: RejectionKind) -> str:
    assert isinstance(result, Rejection), result
    assert result.kind is kind, result
    return result.reason


def signed(
    fulcio: FakeFulcio,
    log: FakeLog,
    *,
    integrated_time: int = SIGNED_AT,
    email: str | None = ALICE,
    **issue: Any,
) -> LegacySignature:
    """A keyless signature of `payload()` by a fresh key certified by ``fulcio``; ``issue`` goes
    to `FakeFulcio.issue`."""
    key = new_key()
    certificate = fulcio.issue(key, email=email, **issue)
    return keyless_signature(log, key, certificate, payload(), integrated_time=integrated_time)


@pytest.fixture
def fulcio() -> FakeFulcio:
    return FakeFulcio()


@pytest.fixture
def log(ecdsa_log: FakeLog) -> FakeLog:
    return ecdsa_log


@pytest.fixture
def root(fulcio: FakeFulcio, log: FakeLog) -> TrustedRoot:
    return fulcio.trusted_root(log)


# -- accepted --------------------------------------------------------------------------------------


def test_valid_keyless_signature_counts(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    result = check(signed(fulcio, log), root)
    assert isinstance(result, VerifiedSignature), result
    assert result.authority == "ci"
    assert result.signer == f"certificate for {ALICE} from {DEFAULT_ISSUER}"
    assert result.format is SignatureFormat.LEGACY_TAG
    assert result.tlog_index == 0


def test_regexps_that_match_the_whole_identity_are_accepted(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    authority = keyless(
        None, None, subject_regexp=r".*@example\.com", issuer_regexp=r"https://issuer\.[a-z]+"
    )
    assert isinstance(check(signed(fulcio, log), root, authority), VerifiedSignature)


def test_uri_san_of_a_ci_workflow_is_the_subject(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    found = signed(fulcio, log, email=None, uri=WORKFLOW)
    result = check(found, root, keyless(WORKFLOW))
    assert isinstance(result, VerifiedSignature), result
    assert result.signer == f"certificate for {WORKFLOW} from {DEFAULT_ISSUER}"


def test_fulcio_othername_username_is_matched_as_the_subject(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    # Fulcio's username SAN: OtherName 1.3.6.1.4.1.57264.1.7 holding a UTF8String.
    found = signed(fulcio, log, email=None, username="alice")
    result = check(found, root, keyless("alice"))
    assert isinstance(result, VerifiedSignature), result
    assert result.signer == f"certificate for alice from {DEFAULT_ISSUER}"


@pytest.mark.parametrize("extension", ["v1", "v2", "both"])
def test_issuer_is_read_from_either_oidc_issuer_extension(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot, extension: str
) -> None:
    # .1.8 (DER UTF8String) is current; .1.1 (raw bytes) is deprecated but older certs have only it.
    result = check(signed(fulcio, log, issuer_extension=extension), root)
    assert isinstance(result, VerifiedSignature), result
    assert result.signer == f"certificate for {ALICE} from {DEFAULT_ISSUER}"


@pytest.mark.parametrize(
    "offset", [timedelta(0), timedelta(minutes=10)], ids=["notBefore", "notAfter"]
)
def test_validity_bounds_are_inclusive(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot, offset: timedelta
) -> None:
    # Go's x509: invalid only when now < NotBefore or now > NotAfter.
    start = SIGNED_AT_TIME - timedelta(minutes=5)
    logged = int((start + offset).timestamp())
    found = signed(fulcio, log, not_before=start, integrated_time=logged)
    assert isinstance(check(found, root), VerifiedSignature)


def test_keyless_bundle_with_inclusion_proof_counts(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    key = new_key()
    document = keyless_bundle_document(log, key, fulcio.issue(key, email=ALICE), DIGEST)
    result = check(bundle_signature(document), root)
    assert isinstance(result, VerifiedSignature), result
    assert result.format is SignatureFormat.BUNDLE
    assert result.signer == f"certificate for {ALICE} from {DEFAULT_ISSUER}"
    assert result.tlog_index == 2


def test_keyless_attestation_counts_for_its_predicate_type(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    key = new_key()
    certificate = fulcio.issue(key, email=ALICE)
    document = keyless_attestation_document(log, key, certificate, DIGEST, SLSA)
    attestation = prepared(bundle_signature(document))
    result = verify_attestation(
        attestation,
        keyless(),
        digest=DIGEST,
        predicate_type=SLSA,
        trusted_root=root,
        now=datetime.now(UTC),
    )
    assert isinstance(result, VerifiedAttestation), result
    assert result.signer == f"certificate for {ALICE} from {DEFAULT_ISSUER}"
    assert result.tlog_index is not None

    stranger = verify_attestation(
        attestation,
        keyless("bob@example.com"),
        digest=DIGEST,
        predicate_type=SLSA,
        trusted_root=root,
        now=datetime.now(UTC),
    )
    assert "identity is alice@example.com, not bob@example.com" in rejected(
        stranger, RejectionKind.WRONG_SIGNER
    )
    expired = keyless_attestation_document(
        log, key, certificate, DIGEST, SLSA, integrated_time=SIGNED_AT + 3600
    )
    late = verify_attestation(
        prepared(bundle_signature(expired)),
        keyless(),
        digest=DIGEST,
        predicate_type=SLSA,
        trusted_root=root,
        now=datetime.now(UTC),
    )
    assert "outside the certificate's validity" in rejected(late, RejectionKind.CERTIFICATE)


# -- the identity --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authority", "mismatch"),
    [
        (keyless("bob@example.com"), f"identity is {ALICE}, not bob@example.com"),
        (
            keyless(issuer="https://accounts.google.com"),
            f"issuer is {DEFAULT_ISSUER}, not https://accounts.google.com",
        ),
        # Full match: a prefix (or suffix) of the identity is not the identity.
        (keyless(None, subject_regexp="alice"), f"identity {ALICE} does not match /alice/"),
        (
            keyless(None, subject_regexp=r"example\.com"),
            rf"identity {ALICE} does not match /example\.com/",
        ),
        (
            keyless(issuer=None, issuer_regexp="https://issuer"),
            f"issuer {DEFAULT_ISSUER} does not match /https://issuer/",
        ),
    ],
    ids=["other-subject", "other-issuer", "prefix-regexp", "suffix-regexp", "prefix-issuer"],
)
def test_another_identity_is_the_wrong_signer(
    fulcio: FakeFulcio,
    log: FakeLog,
    root: TrustedRoot,
    authority: KeylessAuthority,
    mismatch: str,
) -> None:
    reason = rejected(check(signed(fulcio, log), root, authority), RejectionKind.WRONG_SIGNER)
    assert reason == f"signed by certificate for {ALICE} from {DEFAULT_ISSUER}: {mismatch}"


def test_certificate_without_an_issuer_extension_matches_no_issuer(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    reason = rejected(
        check(signed(fulcio, log, issuer_extension=None), root), RejectionKind.WRONG_SIGNER
    )
    assert reason == f"signed by certificate for {ALICE}: issuer is absent, not {DEFAULT_ISSUER}"


# -- the certificate at the logged time ---------------------------------------------------------


@pytest.mark.parametrize("hours", [1, -1], ids=["after-notAfter", "before-notBefore"])
def test_certificate_not_valid_when_logged(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot, hours: int
) -> None:
    logged = SIGNED_AT + hours * 3600
    found = signed(fulcio, log, integrated_time=logged)
    reason = rejected(check(found, root), RejectionKind.CERTIFICATE)
    start = SIGNED_AT_TIME - timedelta(minutes=2)
    when = SIGNED_AT_TIME + timedelta(hours=hours)
    assert reason == (
        f"the signature was logged at {when:{STAMP}}, outside the certificate's validity "
        f"({start:{STAMP}} to {start + timedelta(minutes=10):{STAMP}})"
    )


def test_certificate_not_for_code_signing(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    reason = rejected(
        check(signed(fulcio, log, code_signing=False), root), RejectionKind.CERTIFICATE
    )
    assert reason == "certificate is not for code signing (EKU codeSigning missing)"


def test_certificate_without_an_sct(fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot) -> None:
    reason = rejected(check(signed(fulcio, log, sct=False), root), RejectionKind.CERTIFICATE)
    assert reason == "certificate has no embedded SCT (certificate transparency)"


def test_sct_from_an_unknown_ct_log(fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot) -> None:
    stranger = new_key()
    found = signed(fulcio, log, sct_log_key=stranger)
    reason = rejected(check(found, root), RejectionKind.CERTIFICATE)
    stranger_id = FakeFulcio.log_id_of(stranger)
    assert reason == (
        f"no valid SCT from a trusted CT log: an SCT from unknown CT log {stranger_id.hex()[:16]}…"
    )


def test_sct_with_a_tampered_signature(fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot) -> None:
    reason = rejected(check(signed(fulcio, log, corrupt_sct=True), root), RejectionKind.CERTIFICATE)
    assert reason == (
        "no valid SCT from a trusted CT log: an SCT from CT log "
        f"{fulcio.ct_log_id.hex()[:16]}… that does not verify"
    )


def test_sct_made_outside_the_ct_logs_validity(fulcio: FakeFulcio, log: FakeLog) -> None:
    root = TrustedRoot(
        tlogs=log.trusted_root().tlogs,
        ctlogs=(fulcio.ct_log(valid_from=SIGNED_AT_TIME + timedelta(days=1)),),
        certificate_authorities=(fulcio.certificate_authority(),),
    )
    reason = rejected(check(signed(fulcio, log), root), RejectionKind.CERTIFICATE)
    assert reason.endswith("outside its validity")


def test_leaf_issued_by_a_ca_not_in_the_trusted_root(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    impostor = FakeFulcio()  # the same names, other keys
    reason = rejected(check(signed(impostor, log), root), RejectionKind.CERTIFICATE)
    assert reason == (
        "the certificate does not chain to a trusted certificate authority "
        f"({fulcio.uri}: not issued by CN=fake-fulcio-intermediate,O=signgate.test)"
    )


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [
        (CA_START, SIGNED_AT_TIME - timedelta(days=1)),
        (SIGNED_AT_TIME + timedelta(seconds=1), None),
    ],
    ids=["retired-before", "added-after"],
)
def test_trusted_root_ca_not_valid_when_logged(
    fulcio: FakeFulcio, log: FakeLog, valid_from: datetime, valid_until: datetime | None
) -> None:
    root = fulcio.trusted_root(log, ca_valid_from=valid_from, ca_valid_until=valid_until)
    reason = rejected(check(signed(fulcio, log), root), RejectionKind.CERTIFICATE)
    assert reason == (
        f"the trusted root has no certificate authority valid at {SIGNED_AT_TIME:{STAMP}}"
    )


def test_ca_certificate_expired_when_logged(log: FakeLog) -> None:
    expired = FakeFulcio(not_after=SIGNED_AT_TIME - timedelta(days=1))
    root = expired.trusted_root(log)
    # The leaf itself is valid then: only the CA certificates had expired.
    reason = rejected(check(signed(expired, log), root), RejectionKind.CERTIFICATE)
    assert reason == (
        "the certificate does not chain to a trusted certificate authority "
        f"({expired.uri}: CN=fake-fulcio-intermediate,O=signgate.test was not valid at "
        f"{SIGNED_AT_TIME:{STAMP}})"
    )


# -- the transparency log ------------------------------------------------------------------------


def test_rekor_entry_from_an_unknown_log(fulcio: FakeFulcio, log: FakeLog) -> None:
    other = FakeLog(new_key())
    found = signed(fulcio, other)
    reason = rejected(check(found, fulcio.trusted_root(log)), RejectionKind.TLOG)
    assert reason == (
        f"transparency log entry: entry is from an untrusted log (logID {other.log_id.hex()})"
    )


def test_rekor_entry_for_another_certificate(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    # The same key certified twice: the layer carries one certificate, the log names the other.
    key = new_key()
    logged = keyless_signature(log, key, fulcio.issue(key, email="bob@example.com"), payload())
    swapped = LegacySignature(
        logged.source,
        logged.format,
        logged.payload,
        {
            **logged.annotations,
            ANNOTATION_CERTIFICATE: certificate_pem(fulcio.issue(key, email=ALICE)),
        },
    )
    reason = rejected(check(swapped, root), RejectionKind.TLOG)
    assert reason == (
        "transparency log entry: "
        "the entry's public key or certificate is not the one being verified"
    )


def test_bundle_with_a_tampered_inclusion_proof(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    key = new_key()
    document = keyless_bundle_document(log, key, fulcio.issue(key, email=ALICE), DIGEST)
    proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    first = base64.b64decode(proof["hashes"][0])
    proof["hashes"][0] = base64.b64encode(bytes([first[0] ^ 1]) + first[1:]).decode()
    reason = rejected(check(bundle_signature(document), root), RejectionKind.TLOG)
    assert reason.startswith("inclusion proof does not lead to the root hash")


def test_keyless_with_transparency_log_ignored_has_no_time(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    # transparencyLog: Ignore leaves no trusted signing time (and this signature carries no RFC
    # 3161 timestamp), and a Fulcio certificate lives ten minutes: nothing says the key was
    # certified when it signed.
    reason = rejected(check(signed(fulcio, log), root, keyless(tlog=False)), RejectionKind.TLOG)
    assert reason == (
        "no trusted signing time: neither a transparency-log entry timestamp nor a verified "
        "RFC 3161 timestamp"
    )


def test_keyless_without_a_trusted_root(fulcio: FakeFulcio, log: FakeLog) -> None:
    found = signed(fulcio, log)
    required = rejected(check(found, None), RejectionKind.TLOG)
    assert required == "transparency log required but no trusted root configured"
    ignored = rejected(check(found, None, keyless(tlog=False)), RejectionKind.TLOG)
    assert ignored == "keyless signature but no trusted root configured"


def test_keyless_signature_without_a_rekor_bundle(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    found = signed(fulcio, log)
    bare = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {k: v for k, v in found.annotations.items() if k != ANNOTATION_BUNDLE},
    )
    reason = rejected(check(bare, root), RejectionKind.TLOG)
    assert reason == "transparency log required but the signature has no Rekor bundle"


# -- what travels with the signature -------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "reason"),
    [
        ("not a certificate", "certificate annotation: no PEM block found (expected CERTIFICATE)"),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "certificate annotation: expected a PEM CERTIFICATE block, found PUBLIC KEY",
        ),
    ],
    ids=["not-pem", "wrong-label"],
)
def test_malformed_certificate_annotation(
    fulcio: FakeFulcio, log: FakeLog, annotation: str, reason: str
) -> None:
    found = signed(fulcio, log)
    broken = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {**found.annotations, ANNOTATION_CERTIFICATE: annotation},
    )
    result = prepare(broken)
    assert rejected(result, RejectionKind.MALFORMED) == reason


def test_certificate_annotation_that_is_not_a_certificate(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    found = signed(fulcio, log)
    garbage = base64.b64encode(b"\x30\x03\x02\x01\x00").decode()
    broken = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {
            **found.annotations,
            ANNOTATION_CERTIFICATE: f"-----BEGIN CERTIFICATE-----\n{garbage}\n"
            "-----END CERTIFICATE-----\n",
        },
    )
    reason = rejected(check(broken, root), RejectionKind.MALFORMED)
    assert reason.startswith("signature certificate: not a usable X.509 certificate")


def test_malformed_oidc_issuer_extension(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    # .1.8 must be a DER UTF8String; a PrintableString is not what Fulcio writes.
    printable = x509.UnrecognizedExtension(OID_ISSUER_V2, b"\x13\x03abc")
    found = signed(fulcio, log, issuer_extension=None, extra_extensions=[printable])
    reason = rejected(check(found, root), RejectionKind.MALFORMED)
    assert reason == (
        "signature certificate: the OIDC issuer extension (1.3.6.1.4.1.57264.1.8) is malformed"
    )


def _oid_der(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return b"\x06" + bytes([len(body)]) + body


SAN_OID = x509.ObjectIdentifier("2.5.29.17")
BUILD_SIGNER_URI = "1.3.6.1.4.1.57264.1.9"  # DER the same length as .1.8
BROKEN_EXTENSIONS: dict[str, tuple[dict[str, Any], x509.UnrecognizedExtension]] = {
    "malformed-san": (
        {"email": None},
        x509.UnrecognizedExtension(SAN_OID, b"\x30\x03\xff\xff\xff"),
    ),
    # x400Address: a GeneralName type cryptography does not support.
    "x400-san": ({"email": None}, x509.UnrecognizedExtension(SAN_OID, b"\x30\x02\xa3\x00")),
    "malformed-sct-list": (
        {"sct": False},
        x509.UnrecognizedExtension(OID_SCT_LIST, b"\x04\x02\x00\x05"),
    ),
    "issuer-v1-not-utf8": (
        {"issuer_extension": None},
        x509.UnrecognizedExtension(OID_ISSUER_V1, b"\xff\xfe"),
    ),
}
# Byte patches of a valid leaf (its CA signature breaks, but that is checked later).
PATCHES = {
    # .1.9 relabelled as a second .1.8.
    "duplicate-extension": (_oid_der(BUILD_SIGNER_URI), _oid_der(OID_ISSUER_V2.dotted_string)),
    # id-ecPublicKey (1.2.840.10045.2.1) as an unknown key algorithm.
    "unknown-key-algorithm": (_oid_der("1.2.840.10045.2.1"), _oid_der("1.2.840.10045.2.9")),
    # Found by scripts/fuzz: a version other than v1-v3 (cryptography's InvalidVersion).
    "invalid-version": (b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x41"),
    # Found by scripts/fuzz: the issuer's CN tagged [APPLICATION 19]; names parse lazily.
    "malformed-issuer-name": (_oid_der("2.5.4.3") + b"\x0c", _oid_der("2.5.4.3") + b"\x73"),
}


def _broken_leaf(fulcio: FakeFulcio, key: ec.EllipticCurvePrivateKey, how: str) -> bytes:
    if how in BROKEN_EXTENSIONS:
        options, extension = BROKEN_EXTENSIONS[how]
        return fulcio.issue(key, **{"email": ALICE, **options, "extra_extensions": [extension]})
    signer = x509.UnrecognizedExtension(x509.ObjectIdentifier(BUILD_SIGNER_URI), b"\x0c\x00")
    der = fulcio.issue(key, email=ALICE, extra_extensions=[signer])
    old, new = PATCHES[how]
    assert der.count(old) == 1
    return der.replace(old, new)


@pytest.mark.parametrize(
    ("how", "detail"),
    [
        ("malformed-san", "error parsing asn1 value"),
        ("x400-san", "x400Address/EDIPartyName are not supported types"),
        ("malformed-sct-list", "Invalid SCT length"),
        ("duplicate-extension", "Duplicate 1.3.6.1.4.1.57264.1.8 extension found"),
        ("unknown-key-algorithm", "Unknown key type: 1.2.840.10045.2.9"),
        ("issuer-v1-not-utf8", "the OIDC issuer extension (…57264.1.1) is not UTF-8"),
        ("malformed-issuer-name", "error parsing asn1 value"),
    ],
)
def test_leaf_that_cryptography_cannot_read_is_malformed_not_an_error(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot, how: str, detail: str
) -> None:
    # Extensions are parsed lazily: each of these once escaped verify_with_authority as an
    # exception (ValueError, DuplicateExtension, UnsupportedGeneralNameType, UnsupportedAlgorithm)
    # and turned the whole image decision into an internal error.
    key = new_key()
    found = keyless_signature(log, key, _broken_leaf(fulcio, key, how), payload())
    reason = rejected(check(found, root), RejectionKind.MALFORMED)
    assert reason.startswith("signature certificate: ")
    assert detail in reason


@pytest.mark.parametrize("how", ["invalid-version", "malformed-issuer-name"])
@pytest.mark.parametrize("own_pki", [False, True])
def test_leaf_that_cryptography_cannot_read_is_malformed_for_every_authority(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot, how: str, own_pki: bool
) -> None:
    # Found by scripts/fuzz: cryptography's InvalidVersion is no ValueError, and the CA-pool check
    # parsed the leaf's issuer name only to name it in its message; both escaped as exceptions.
    found = signed(fulcio, log)
    broken = base64.b64encode(_broken_leaf(fulcio, new_key(), how)).decode()
    swapped = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {
            **found.annotations,
            ANNOTATION_CERTIFICATE: f"-----BEGIN CERTIFICATE-----\n{broken}\n"
            "-----END CERTIFICATE-----\n",
        },
    )
    authority = own_ca(fulcio) if own_pki else keyless()
    result = verify_with_authority(
        prepared(swapped), authority, digest=DIGEST, trusted_root=root, now=SIGNED_AT_TIME
    )
    assert rejected(result, RejectionKind.MALFORMED).startswith(
        "signature certificate: not a usable X.509 certificate: "
    )


def test_signature_by_another_key_than_the_certificates(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    found = signed(fulcio, log)
    other = fulcio.issue(new_key(), email=ALICE)
    swapped = LegacySignature(
        found.source,
        found.format,
        found.payload,
        {**found.annotations, ANNOTATION_CERTIFICATE: certificate_pem(other)},
    )
    reason = rejected(check(swapped, root), RejectionKind.MALFORMED)
    assert reason == "signature does not verify with its own certificate"


def test_keyless_authority_and_a_key_signature(log: FakeLog, root: TrustedRoot) -> None:
    key = new_key()
    found = LegacySignature(
        "r/app:sha256-ab.sig layer 1",
        SignatureFormat.LEGACY_TAG,
        payload(),
        {ANNOTATION_SIGNATURE: base64.b64encode(sign(key, payload())).decode()},
    )
    reason = rejected(check(found, root), RejectionKind.UNKNOWN_KEY)
    assert reason == (
        "signature has no certificate (signed with a key), so it is not from "
        f"keyless {ALICE} from {DEFAULT_ISSUER}"
    )


def test_key_authority_never_trusts_the_certificates_key(
    fulcio: FakeFulcio, log: FakeLog, root: TrustedRoot
) -> None:
    found = signed(fulcio, log)
    stranger = KeyAuthority("release", PublicKey.from_key(new_key().public_key()), True)
    rejected(check(found, root, stranger), RejectionKind.UNKNOWN_KEY)


def test_reason_order_ranks_every_rejection_kind() -> None:
    assert sorted(REASON_ORDER) == sorted(RejectionKind)
    assert len(set(REASON_ORDER)) == len(REASON_ORDER)


# -- certificate authorities a policy brings (your own PKI) -----------------------------------


def own_ca(
    fulcio: FakeFulcio, *, subject: str | None = None, subject_regexp: str | None = None
) -> CertificateAuthorityAuthority:
    intermediate, root = fulcio.chain
    return CertificateAuthorityAuthority(
        "corp-pki", (root, intermediate), subject, subject_regexp, False, "CN=root"
    )


def test_certificate_from_the_policys_own_ca_counts_without_a_log(
    fulcio: FakeFulcio, log: FakeLog
) -> None:
    found = signed(fulcio, log)
    result = verify_with_authority(
        prepared(found), own_ca(fulcio, subject=ALICE), digest=DIGEST, trusted_root=None,
        now=SIGNED_AT_TIME,
    )  # fmt: skip
    assert isinstance(result, VerifiedSignature), result
    assert result.tlog_index is None
    assert result.signer == f"certificate for {ALICE} from {DEFAULT_ISSUER}"


def test_own_ca_refuses_other_subjects_other_cas_and_expired_certificates(
    fulcio: FakeFulcio, log: FakeLog
) -> None:
    found = prepared(signed(fulcio, log))

    def check_ca(authority: CertificateAuthorityAuthority, now: datetime) -> object:
        return verify_with_authority(found, authority, digest=DIGEST, trusted_root=None, now=now)

    reason = rejected(
        check_ca(own_ca(fulcio, subject_regexp=r"bob@.*"), SIGNED_AT_TIME),
        RejectionKind.WRONG_SIGNER,
    )
    assert f"identity {ALICE} does not match /bob@.*/" in reason
    reason = rejected(check_ca(own_ca(FakeFulcio()), SIGNED_AT_TIME), RejectionKind.CERTIFICATE)
    assert "is not among the policy's CA certificates" in reason
    later = SIGNED_AT_TIME + timedelta(hours=1)
    reason = rejected(check_ca(own_ca(fulcio), later), RejectionKind.CERTIFICATE)
    assert "the certificate is not valid at" in reason
    # A key-signed signature has no certificate to chain.
    key = new_key()
    plain = LegacySignature(
        "r/app:sha256-ab.sig layer 1",
        SignatureFormat.LEGACY_TAG,
        payload(),
        {ANNOTATION_SIGNATURE: base64.b64encode(sign(key, payload())).decode()},
    )
    reason = rejected(
        verify_with_authority(
            prepared(plain), own_ca(fulcio), digest=DIGEST, trusted_root=None, now=SIGNED_AT_TIME
        ),
        RejectionKind.UNKNOWN_KEY,
    )
    assert "has no certificate" in reason
