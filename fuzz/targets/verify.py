"""The verification core (`signgate.signatures.verify`): `prepare`, then `verify_with_authority`
and `verify_attestation`, on fuzzed legacy layers and bundles, for every kind of authority.

Both are documented never to raise: malformed input becomes a `Rejection`. So nothing is
accepted here; any exception is a crash.

Input: four fields (see `fuzz.harness.fields`):

1. control: byte 0 the mode, byte 1 the authority, byte 2 the signed-identity rule (its high
   bit adds predicate conditions to the attestation checks);
2. the payload (``.sig`` blob, ``.att`` envelope, bundle, in-toto statement, or a bundle's
   ``verificationMaterial`` additions, by mode);
3. a JSON object: the layer annotations (legacy modes) or ``verificationMaterial`` additions
   (signed bundle modes);
4. the image digest being admitted (``sha256:<hex>``; anything else means the vector's).

"Signed" modes sign the fuzzed payload with the harness key (`fuzz.fixtures.harness_sign`), so
the checks that only run after a signature verified (the claim, the signed identity, the
statement, the transparency log, the predicate) are fuzzed too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from fuzz import fixtures
from fuzz.harness import fields, text
from signgate.errors import InvalidReferenceError
from signgate.policy.patterns import compile_pattern
from signgate.reference import Digest, parse_digest
from signgate.signatures.authority import (
    AuthorityMaterial,
    CertificateAuthorityAuthority,
    CertificateIdentity,
    KeyAuthority,
    KeylessAuthority,
    SignedIdentityRule,
)
from signgate.signatures.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from signgate.signatures.found import (
    ANNOTATION_SIGNATURE,
    COSIGN_SIGNATURE_PREDICATE,
    BundleSignature,
    FoundSignature,
    LegacySignature,
    SignatureFormat,
    UnusableSignature,
)
from signgate.signatures.predicate import PredicateCondition
from signgate.signatures.prepare import prepare
from signgate.signatures.results import Rejection, VerifiedAttestation, VerifiedSignature
from signgate.signatures.verify import verify_attestation, verify_with_authority

ACCEPTED: tuple[type[Exception], ...] = ()

MODES = (
    "legacy",  # a .sig layer as found: payload and annotations
    "legacy-signed",  # the same, its signature annotation replaced by the harness's
    "attestation",  # a .att layer as found: a DSSE envelope
    "attestation-signed",  # a .att layer the harness makes around the payload (a statement)
    "bundle",  # a bundle as found
    "bundle-signed",  # a v0.3 DSSE bundle the harness signs around the payload (a statement)
    "bundle-message",  # a v0.3 message-signature bundle over the digest (payload: material)
    "unusable",
)

_NOW = datetime(2025, 1, 1, tzinfo=UTC)
_REPOSITORY = "192.168.64.2:5000/cosign-signed-single-sample"
_AUTHORITIES: tuple[AuthorityMaterial, ...] = (
    KeyAuthority("harness", fixtures.harness_key(), requires_tlog=False),
    KeyAuthority("harness-tlog", fixtures.harness_key(), requires_tlog=True),
    KeyAuthority("vector", fixtures.vector_key(), requires_tlog=False),
    KeyAuthority("managed", fixtures.managed_key(), requires_tlog=True),
    KeylessAuthority(
        "conformance",
        CertificateIdentity(
            issuer=fixtures.CONFORMANCE_ISSUER, subject=fixtures.CONFORMANCE_SUBJECT
        ),
        requires_tlog=True,
    ),
    KeylessAuthority(
        "anyone", CertificateIdentity(issuer_regexp=".*", subject_regexp=".*"), requires_tlog=True
    ),
    CertificateAuthorityAuthority(
        "own-ca",
        (fixtures.fulcio_root_der(),),
        subject=None,
        subject_regexp=".*",
        requires_tlog=False,
        label="O=sigstore.dev,CN=sigstore",
    ),
)
_RULES = (
    SignedIdentityRule(),
    SignedIdentityRule("ImageRepository"),
    SignedIdentityRule("Repositories", (compile_pattern("192.168.64.2:5000/**"),)),
)
_PREDICATE_TYPES = (COSIGN_SIGNATURE_PREDICATE, "https://slsa.dev/provenance/v1")
_CONDITIONS = (
    PredicateCondition("buildDefinition.buildType", "matches", (r"https://.*",)),
    PredicateCondition("runDetails.builder.id", "equals", ("https://example.com/builder",)),
    PredicateCondition("buildDefinition.resolvedDependencies.0.uri", "oneOf", ("a", "b")),
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _annotations(raw: bytes) -> dict[str, str]:
    """Layer annotations as discovery gives them (a descriptor's string map)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str)}


def _json_object(raw: bytes) -> dict[str, object]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _envelope(statement: bytes) -> dict[str, object]:
    signature = fixtures.harness_sign(pae(IN_TOTO_PAYLOAD_TYPE, statement))
    return {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": _b64(statement),
        "signatures": [{"keyid": "", "sig": _b64(signature)}],
    }


def _bundle(material: Mapping[str, object], content: Mapping[str, object]) -> bytes:
    hint = _b64(fixtures.harness_key().key_id)
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": hint}, **material},
        **content,
    }
    return json.dumps(bundle).encode()


def _found(mode: str, payload: bytes, extra: bytes, digest: Digest) -> FoundSignature:
    source = f"fuzz {mode}"
    annotations = _annotations(extra)
    if mode in ("legacy", "legacy-signed"):
        if mode == "legacy-signed":
            annotations[ANNOTATION_SIGNATURE] = _b64(fixtures.harness_sign(payload))
        return LegacySignature(source, SignatureFormat.LEGACY_TAG, payload, annotations)
    if mode in ("attestation", "attestation-signed"):
        if mode == "attestation-signed":
            payload = json.dumps(_envelope(payload)).encode()
        annotations.setdefault(ANNOTATION_SIGNATURE, "")
        return LegacySignature(source, SignatureFormat.LEGACY_ATTESTATION, payload, annotations)
    if mode == "bundle":
        return BundleSignature(source, payload)
    if mode == "bundle-signed":
        content = {"dsseEnvelope": _envelope(payload)}
        return BundleSignature(source, _bundle(_json_object(extra), content))
    if mode == "bundle-message":
        digest_bytes = bytes.fromhex(digest.removeprefix("sha256:"))
        signature = fixtures.harness_private_key().sign(
            digest_bytes, ec.ECDSA(Prehashed(hashes.SHA256()))
        )
        content = {
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest_bytes)},
                "signature": _b64(signature),
            }
        }
        return BundleSignature(source, _bundle(_json_object(payload), content))
    return UnusableSignature(source, text(payload)[:200] or "unusable")


def _digest(raw: bytes) -> Digest:
    try:
        return parse_digest(text(raw))
    except InvalidReferenceError:
        return Digest(fixtures.VECTOR_DIGEST)


def run(data: bytes) -> None:
    control, payload, extra, digest_text = fields(data, 4)
    control = control.ljust(3, b"\0")
    mode = MODES[control[0] % len(MODES)]
    authority = _AUTHORITIES[control[1] % len(_AUTHORITIES)]
    rule = _RULES[(control[2] & 0x7F) % len(_RULES)]
    digest = _digest(digest_text)
    found = _found(mode, payload, extra, digest)
    prepared = prepare(found)
    if isinstance(prepared, Rejection):
        assert prepared.reason
        return
    result = verify_with_authority(
        prepared,
        authority,
        digest=digest,
        trusted_root=fixtures.trusted_root(),
        signed_identity=rule,
        repository=_REPOSITORY,
        now=_NOW,
    )
    assert isinstance(result, VerifiedSignature) or result.reason
    for predicate_type in _PREDICATE_TYPES:
        attested = verify_attestation(
            prepared,
            authority,
            digest=digest,
            predicate_type=predicate_type,
            trusted_root=fixtures.trusted_root(),
            conditions=_CONDITIONS if control[2] & 0x80 else (),
            now=_NOW,
        )
        assert isinstance(attested, VerifiedAttestation) or attested.reason
