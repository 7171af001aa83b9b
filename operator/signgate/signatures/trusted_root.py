"""The Sigstore trusted root (``trusted_root.json``, cosign-formats §5.6), parsed into frozen types.

The file is configuration (mounted and refreshed out of band), so a malformed one is a
`ConfigError`. Entries we cannot use (an unsupported key type, a non-SHA-256 log) are skipped,
not fatal, and the reason is kept in `TrustedRoot.skipped`: a newer root may list logs this
version does not understand, and the logs it does understand must keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from signgate.errors import ConfigError, KeyFormatError, truncate
from signgate.signatures import _json
from signgate.signatures.keys import PublicKey, load_public_key_pem, public_key_from_der

MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.trustedroot"
MAX_ENTRIES = 64
MAX_CHAIN_CERTIFICATES = 10

FOREVER_START = datetime.min.replace(tzinfo=UTC)
"""``valid_from`` of keys that were configured without a validity period."""

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE
)


@dataclass(frozen=True)
class TransparencyLogKey:
    """A trusted transparency log (Rekor) or certificate-transparency log key.

    Attributes:
        log_id: the log ID (``logId.keyId``); for Rekor v1 this is sha256 of the SPKI DER.
        public_key: the log's key (ECDSA for Rekor v1 and CT, Ed25519 for Rekor v2).
        base_url: the log's URL (informational; signgate never calls it).
        valid_from: start of the period in which the key may have signed.
        valid_until: end of that period, or None if still current.
    """

    log_id: bytes
    public_key: PublicKey
    base_url: str
    valid_from: datetime
    valid_until: datetime | None

    def valid_at(self, when: datetime) -> bool:
        """True if ``when`` lies in ``[valid_from, valid_until]`` (sigstore-go's rule)."""
        return self.valid_from <= when and (self.valid_until is None or when <= self.valid_until)


@dataclass(frozen=True)
class CertificateAuthority:
    """A Fulcio CA or an RFC 3161 timestamp authority.

    Attributes:
        uri: the authority's URI (may be empty).
        certificates: DER certificates as listed in ``certChain``: issuing CA first, root last.
        valid_from: start of the period in which the authority may have issued.
        valid_until: end of that period, or None if still current.
    """

    uri: str
    certificates: tuple[bytes, ...]
    valid_from: datetime
    valid_until: datetime | None

    def valid_at(self, when: datetime) -> bool:
        """True if ``when`` lies in ``[valid_from, valid_until]``."""
        return self.valid_from <= when and (self.valid_until is None or when <= self.valid_until)


@dataclass(frozen=True)
class TrustedRoot:
    """Every authority signgate may trust for keyless and transparency-log checks.

    Attributes:
        tlogs: Rekor logs.
        ctlogs: certificate-transparency logs (for SCTs).
        certificate_authorities: Fulcio CAs.
        timestamp_authorities: RFC 3161 TSAs.
        skipped: one line per entry that was ignored, and why.
    """

    tlogs: tuple[TransparencyLogKey, ...]
    ctlogs: tuple[TransparencyLogKey, ...] = ()
    certificate_authorities: tuple[CertificateAuthority, ...] = ()
    timestamp_authorities: tuple[CertificateAuthority, ...] = ()
    skipped: tuple[str, ...] = ()

    def tlog_keys(self, log_id: bytes) -> tuple[TransparencyLogKey, ...]:
        """All Rekor keys with ``log_id`` (a rotated key may be listed with several periods)."""
        return tuple(log for log in self.tlogs if log.log_id == log_id)

    def tlog_key(self, log_id: bytes) -> TransparencyLogKey | None:
        """The first Rekor key with ``log_id``, or None."""
        return next(iter(self.tlog_keys(log_id)), None)

    def ctlog_key(self, log_id: bytes) -> TransparencyLogKey | None:
        """The first CT log key with ``log_id``, or None."""
        return next((log for log in self.ctlogs if log.log_id == log_id), None)


def parse_rfc3339(text: str, *, path: str) -> datetime:
    """Parse a protobuf JSON Timestamp (RFC 3339, up to nanoseconds) into an aware UTC datetime.

    Raises:
        ConfigError: not an RFC 3339 timestamp.
    """
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ConfigError(f"{path}: not an RFC 3339 timestamp: {truncate(text, 40)!r}")
    base, fraction, zone = match.groups()
    base, zone = base.upper(), zone.upper()
    # Python keeps microseconds; the nanosecond digits beyond are dropped.
    micro = f".{(fraction or '0')[:6]}"
    try:
        parsed = datetime.fromisoformat(f"{base}{micro}{'+00:00' if zone == 'Z' else zone}")
    except ValueError as exc:
        raise ConfigError(f"{path}: invalid timestamp {text!r}") from exc
    return parsed.astimezone(UTC)


def _validity(entry: _json.JsonObject, key: str) -> tuple[datetime, datetime | None]:
    period = entry.obj(key)
    start = parse_rfc3339(period.string("start"), path=f"{period.path}.start")
    end_text = period.optional_string("end")
    end = parse_rfc3339(end_text, path=f"{period.path}.end") if end_text else None
    if end is not None and end < start:
        raise period.fail("end", "ends before it starts")
    return start, end


def _parse_log(entry: _json.JsonObject, skipped: list[str]) -> TransparencyLogKey | None:
    base_url = entry.optional_string("baseUrl") or ""
    log_id = entry.obj("logId").b64("keyId")
    label = f"{entry.path} ({base_url or log_id.hex()})"
    hash_algorithm = entry.optional_string("hashAlgorithm") or "SHA2_256"
    if hash_algorithm != "SHA2_256":
        skipped.append(f"{label}: unsupported hashAlgorithm {hash_algorithm}")
        return None
    key = entry.obj("publicKey")
    valid_from, valid_until = _validity(key, "validFor")
    der = key.optional_b64("rawBytes")
    if der is None:
        skipped.append(f"{label}: no public key bytes")
        return None
    try:
        public_key = public_key_from_der(der)
    except KeyFormatError as exc:
        details = key.optional_string("keyDetails") or "no keyDetails"
        skipped.append(f"{label}: {exc} ({details})")
        return None
    return TransparencyLogKey(log_id, public_key, base_url, valid_from, valid_until)


def _parse_authority(entry: _json.JsonObject) -> CertificateAuthority:
    certificates: list[bytes] = []
    chain = entry.obj("certChain")
    for item in chain.objects("certificates", max_items=MAX_CHAIN_CERTIFICATES):
        der = item.b64("rawBytes")
        try:
            x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise item.fail("rawBytes", "not a DER X.509 certificate") from exc
        certificates.append(der)
    valid_from, valid_until = _validity(entry, "validFor")
    return CertificateAuthority(
        uri=entry.optional_string("uri") or "",
        certificates=tuple(certificates),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def load_trusted_root(raw: bytes) -> TrustedRoot:
    """Parse ``trusted_root.json``.

    Args:
        raw: the file's bytes.

    Returns:
        The trusted root. Unusable log entries are skipped and listed in ``skipped``.

    Raises:
        ConfigError: not JSON, an unknown media type, or a malformed entry.
    """
    doc = _json.JsonObject(
        _json.loads(raw, what="trusted root", error=ConfigError), path="", error=ConfigError
    )
    media_type = doc.string("mediaType")
    if not media_type.startswith(MEDIA_TYPE_PREFIX):
        raise doc.fail("mediaType", f"not a Sigstore trusted root ({truncate(media_type, 80)!r})")
    skipped: list[str] = []
    sections: dict[str, list[TransparencyLogKey]] = {"tlogs": [], "ctlogs": []}
    for section, logs in sections.items():
        if doc.has(section):
            for entry in doc.objects(section, max_items=MAX_ENTRIES, allow_empty=True):
                log = _parse_log(entry, skipped)
                if log is not None:
                    logs.append(log)
    authorities: dict[str, tuple[CertificateAuthority, ...]] = {
        section: tuple(
            _parse_authority(entry)
            for entry in doc.objects(section, max_items=MAX_ENTRIES, allow_empty=True)
        )
        if doc.has(section)
        else ()
        for section in ("certificateAuthorities", "timestampAuthorities")
    }
    return TrustedRoot(
        tlogs=tuple(sections["tlogs"]),
        ctlogs=tuple(sections["ctlogs"]),
        certificate_authorities=authorities["certificateAuthorities"],
        timestamp_authorities=authorities["timestampAuthorities"],
        skipped=tuple(skipped),
    )


def trusted_root_from_rekor_key(pem: bytes) -> TrustedRoot:
    """A trusted root holding only one Rekor v1 key, valid forever (for a bare ``rekor.pub``).

    Args:
        pem: the Rekor public key PEM.

    Returns:
        A root whose one tlog has logID = sha256(SPKI DER), as Rekor v1 computes it.

    Raises:
        KeyFormatError: not a PEM public key, or not ECDSA (Rekor v1 signs SETs with ECDSA;
            containers/image refuses other key types for the same reason).
    """
    key = load_public_key_pem(pem)
    if not isinstance(key.key, ec.EllipticCurvePublicKey):
        raise KeyFormatError(f"a Rekor v1 key must be ECDSA, found {key.algorithm}")
    log = TransparencyLogKey(key.key_id, key, "", FOREVER_START, None)
    return TrustedRoot(tlogs=(log,))
