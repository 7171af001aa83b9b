"""DSSE envelopes and the in-toto statements inside them (cosign-formats §6.1, §6.2).

A DSSE signature covers ``PAE(payloadType, payload)``, never the JSON envelope, so the envelope is
parsed into bytes first and the statement is parsed from the exact payload bytes that were signed
(style: "verify the exact fetched bytes, then parse them").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from signgate.errors import BundleFormatError, truncate
from signgate.signatures import _json

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""The only payloadType cosign accepts for attestations (``verifyOCIAttestation``)."""

STATEMENT_TYPES = frozenset(
    {"https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"}
)

MAX_SIGNATURES = 16
MAX_SUBJECTS = 1024
MAX_DIGESTS_PER_SUBJECT = 16

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_EMPTY: Mapping[str, object] = MappingProxyType({})


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding, the bytes a DSSE signature covers.

    ``"DSSEv1" SP len(type) SP type SP len(body) SP body``, lengths as ASCII decimal byte counts.

    Raises:
        BundleFormatError: ``payload_type`` cannot be encoded as UTF-8.
    """
    try:
        type_bytes = payload_type.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BundleFormatError("DSSE payloadType is not valid Unicode") from exc
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


@dataclass(frozen=True)
class DsseEnvelope:
    """A parsed DSSE envelope.

    Attributes:
        payload_type: e.g. `IN_TOTO_PAYLOAD_TYPE`.
        payload: the base64-decoded payload, exactly as signed.
        signatures: raw signatures (``keyid`` hints are dropped: they are unauthenticated).
    """

    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]

    def pae(self) -> bytes:
        """The signed bytes: `pae` of this envelope's type and payload."""
        return pae(self.payload_type, self.payload)


def parse_envelope(obj: object, *, path: str = "dsseEnvelope") -> DsseEnvelope:
    """Parse an already-decoded DSSE envelope JSON object.

    Args:
        obj: the decoded JSON value.
        path: field path used in messages.

    Returns:
        The envelope. At least one and at most `MAX_SIGNATURES` signatures.

    Raises:
        BundleFormatError: wrong types, a missing field, base64 that does not decode, an empty
            signature, or too many signatures.
    """
    doc = _json.JsonObject(obj, path=path, error=BundleFormatError)
    payload_type = doc.string("payloadType")
    payload = doc.b64("payload", allow_empty=True)
    signatures = tuple(
        item.b64("sig") for item in doc.objects("signatures", max_items=MAX_SIGNATURES)
    )
    return DsseEnvelope(payload_type=payload_type, payload=payload, signatures=signatures)


@dataclass(frozen=True)
class Subject:
    """One in-toto subject.

    Attributes:
        name: the subject name; ``""`` when absent (cosign v3 writes no name, §3.1).
        digests: algorithm to digest; sha256 values are exactly 64 lowercase hex characters.
        annotations: the subject's ``annotations`` (cosign puts ``-a key=value`` here, §6.3).
    """

    name: str
    digests: Mapping[str, str]
    annotations: Mapping[str, object] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class InTotoStatement:
    """A parsed in-toto Statement (v0.1 or v1).

    Attributes:
        statement_type: the ``_type`` URI.
        subjects: at least one subject.
        predicate_type: the ``predicateType`` URI (never empty).
        predicate: the decoded ``predicate`` JSON value (None if absent); treat as read-only.
        raw: the exact statement bytes that were parsed (and signed).
    """

    statement_type: str
    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: object
    raw: bytes

    def subject_digests(self, algorithm: str = "sha256") -> frozenset[str]:
        """Every subject digest for ``algorithm``, for a claim check against an image digest."""
        return frozenset(s.digests[algorithm] for s in self.subjects if algorithm in s.digests)


def _parse_subject(item: _json.JsonObject) -> Subject:
    name = item.optional_string("name") or ""
    digest = item.obj("digest")
    raw_digests = digest.keys()
    if not raw_digests:
        raise item.fail("digest", "must not be empty")
    if len(raw_digests) > MAX_DIGESTS_PER_SUBJECT:
        raise item.fail("digest", f"more than {MAX_DIGESTS_PER_SUBJECT} digests")
    digests: dict[str, str] = {}
    for algorithm in raw_digests:
        value = digest.string(algorithm)
        # A claim check compares digests as strings, so the one we match on must be canonical.
        if algorithm == "sha256" and not _SHA256_HEX.fullmatch(value):
            raise digest.fail(
                algorithm, f"expected 64 lowercase hex characters, got {truncate(value, 80)!r}"
            )
        digests[algorithm] = value
    annotations = item.optional_obj("annotations")
    return Subject(
        name=name,
        digests=MappingProxyType(digests),
        annotations=MappingProxyType(annotations.raw_dict()) if annotations else _EMPTY,
    )


def parse_statement(raw: bytes) -> InTotoStatement:
    """Parse an in-toto Statement from the exact DSSE payload bytes.

    Strict JSON (no duplicate keys, no NaN), ``_type`` v0.1 or v1, a non-empty ``subject`` list
    whose items each have a non-empty ``digest`` object, and a non-empty ``predicateType``.

    Args:
        raw: the statement bytes.

    Returns:
        The statement, keeping ``raw``.

    Raises:
        BundleFormatError: with the first violated rule.
    """
    doc = _json.JsonObject(
        _json.loads(raw, what="in-toto statement", error=BundleFormatError),
        path="statement",
        error=BundleFormatError,
    )
    statement_type = doc.string("_type")
    if statement_type not in STATEMENT_TYPES:
        raise doc.fail("_type", f"unsupported statement type {truncate(statement_type, 80)!r}")
    subjects = tuple(
        _parse_subject(item) for item in doc.objects("subject", max_items=MAX_SUBJECTS)
    )
    return InTotoStatement(
        statement_type=statement_type,
        subjects=subjects,
        predicate_type=doc.string("predicateType"),
        predicate=doc.raw("predicate"),
        raw=raw,
    )
