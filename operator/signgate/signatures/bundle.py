"""Sigstore bundles (protobuf-specs ``sigstore_bundle.proto`` in JSON, cosign-formats §3.4).

`parse_bundle` turns bundle bytes into a frozen `SigstoreBundle` and enforces the structural rules
of sigstore-go's ``pkg/bundle``: a known media type below v0.4, exactly one kind of verification
material and exactly one kind of content, an inclusion promise on every entry of a v0.1 bundle,
an inclusion proof on every entry from v0.2, no certificate chain in v0.3, and exactly one DSSE
signature. Nothing is verified here; `raw` keeps the exact bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509

from signgate.errors import BundleFormatError, truncate
from signgate.signatures import _json
from signgate.signatures.dsse import DsseEnvelope, parse_envelope
from signgate.signatures.tlog import TlogEntry, parse_bundle_tlog_entry

MAX_TLOG_ENTRIES = 64
MAX_TIMESTAMPS = 32  # sigstore-python's MAX_ALLOWED_TIMESTAMP
MAX_CERTIFICATES = 10

# protobuf-specs HashAlgorithm names and their digest sizes.
DIGEST_SIZES = {"SHA2_256": 32, "SHA2_384": 48, "SHA2_512": 64, "SHA3_256": 32, "SHA3_384": 48}

_LEGACY_MEDIA_TYPE = re.compile(r"application/vnd\.dev\.sigstore\.bundle\+json;version=0\.([123])")
_MEDIA_TYPE = re.compile(r"application/vnd\.dev\.sigstore\.bundle\.v(\d{1,4})\.(\d{1,4})\+json")
_SUPPORTED_VERSIONS = frozenset({(0, 1), (0, 2), (0, 3)})


@dataclass(frozen=True)
class MessageSignature:
    """A signature over the artifact bytes themselves.

    Attributes:
        digest_algorithm: e.g. ``"SHA2_256"``; ``""`` if the bundle gives no digest.
        digest: the artifact digest the signer claims; unauthenticated, recompute it.
            ``b""`` if absent.
        signature: the raw signature over the artifact bytes.
    """

    digest_algorithm: str
    digest: bytes
    signature: bytes


@dataclass(frozen=True)
class SigstoreBundle:
    """A parsed, not yet verified, Sigstore bundle.

    Attributes:
        media_type: as written in the bundle.
        version: (0, 1), (0, 2) or (0, 3).
        public_key_hint: decoded ``publicKey.hint`` (cosign: sha256 of the SPKI DER); None for
            keyless bundles, or when the hint is absent or not base64 (it is only a hint).
        certificate_chain: DER certificates, leaf first; empty for key-signed bundles.
        tlog_entries: transparency-log entries.
        rfc3161_timestamps: DER ``TimeStampResp`` tokens.
        message_signature: set for a signature over artifact bytes.
        dsse: set for a DSSE envelope (exactly one of the two is set, with one signature).
        raw: the exact bundle bytes.
    """

    media_type: str
    version: tuple[int, int]
    public_key_hint: bytes | None
    certificate_chain: tuple[bytes, ...]
    tlog_entries: tuple[TlogEntry, ...]
    rfc3161_timestamps: tuple[bytes, ...]
    message_signature: MessageSignature | None
    dsse: DsseEnvelope | None
    raw: bytes

    @property
    def signature(self) -> bytes:
        """The one signature the bundle carries (message signature or the DSSE signature).

        Raises:
            BundleFormatError: neither is set (only possible for a hand-built instance).
        """
        if self.message_signature is not None:
            return self.message_signature.signature
        if self.dsse is not None and self.dsse.signatures:
            return self.dsse.signatures[0]
        raise BundleFormatError("bundle carries no signature")


def _version(media_type: str) -> tuple[int, int]:
    legacy = _LEGACY_MEDIA_TYPE.fullmatch(media_type)
    if legacy:
        return 0, int(legacy.group(1))
    current = _MEDIA_TYPE.fullmatch(media_type)
    if current:
        version = int(current.group(1)), int(current.group(2))
        if version in _SUPPORTED_VERSIONS:
            return version
        raise BundleFormatError(
            f"mediaType: unsupported bundle version {version[0]}.{version[1]} "
            "(supported: 0.1 to 0.3)"
        )
    raise BundleFormatError(
        f"mediaType: not a Sigstore bundle media type: {truncate(media_type, 100)!r}"
    )


def _certificate(item: _json.JsonObject) -> bytes:
    der = item.b64("rawBytes")
    try:
        x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion) as exc:
        raise item.fail("rawBytes", "not a DER X.509 certificate") from exc
    return der


def _key_material(
    material: _json.JsonObject, version: tuple[int, int]
) -> tuple[bytes | None, tuple[bytes, ...]]:
    """Return (public key hint, certificate chain) from the one verification-material choice."""
    present = [
        key for key in ("publicKey", "certificate", "x509CertificateChain") if material.has(key)
    ]
    if len(present) != 1:
        found = ", ".join(present) or "none"
        raise BundleFormatError(
            "verificationMaterial: needs exactly one of publicKey, certificate, "
            f"x509CertificateChain (found {found})"
        )
    if present[0] == "publicKey":
        hint = material.obj("publicKey").optional_string("hint")
        try:
            decoded = _json.b64decode(hint, path="hint", error=BundleFormatError) if hint else None
        except BundleFormatError:
            decoded = None  # an unauthenticated hint that is not base64 is simply no hint
        return decoded or None, ()
    if present[0] == "certificate":
        return None, (_certificate(material.obj("certificate")),)
    if version >= (0, 3):
        raise BundleFormatError(
            "verificationMaterial.x509CertificateChain is not allowed in a v0.3 bundle"
        )
    chain = material.obj("x509CertificateChain")
    return None, tuple(
        _certificate(item) for item in chain.objects("certificates", max_items=MAX_CERTIFICATES)
    )


def _tlog_entries(material: _json.JsonObject, version: tuple[int, int]) -> tuple[TlogEntry, ...]:
    if not material.has("tlogEntries"):
        return ()
    items = material.array("tlogEntries", max_items=MAX_TLOG_ENTRIES, allow_empty=True)
    entries = tuple(
        parse_bundle_tlog_entry(item, path=f"verificationMaterial.tlogEntries[{index}]")
        for index, item in enumerate(items)
    )
    for index, entry in enumerate(entries):
        where = f"verificationMaterial.tlogEntries[{index}]"
        # sigstore-go bundle.validate: v0.1 carries SETs, from v0.2 every entry has a proof.
        if version == (0, 1) and entry.signed_entry_timestamp is None:
            raise BundleFormatError(f"{where}: a v0.1 bundle needs an inclusionPromise")
        if version >= (0, 2) and entry.inclusion_proof is None:
            raise BundleFormatError(f"{where}: a v0.{version[1]} bundle needs an inclusionProof")
    return entries


def _timestamps(material: _json.JsonObject) -> tuple[bytes, ...]:
    data = material.optional_obj("timestampVerificationData")
    if data is None or not data.has("rfc3161Timestamps"):
        return ()
    return tuple(
        item.b64("signedTimestamp")
        for item in data.objects("rfc3161Timestamps", max_items=MAX_TIMESTAMPS, allow_empty=True)
    )


def _message_signature(doc: _json.JsonObject) -> MessageSignature:
    message = doc.obj("messageSignature")
    digest = message.optional_obj("messageDigest")
    algorithm, value = "", b""
    if digest is not None:
        algorithm = digest.string("algorithm")
        if algorithm not in DIGEST_SIZES:
            raise digest.fail(
                "algorithm", f"unsupported digest algorithm {truncate(algorithm, 40)!r}"
            )
        value = digest.b64("digest")
        if len(value) != DIGEST_SIZES[algorithm]:
            raise digest.fail(
                "digest", f"{len(value)} bytes, {algorithm} has {DIGEST_SIZES[algorithm]}"
            )
    return MessageSignature(
        digest_algorithm=algorithm, digest=value, signature=message.b64("signature")
    )


def parse_bundle(raw: bytes) -> SigstoreBundle:
    """Parse a Sigstore bundle (v0.1 to v0.3) from its JSON bytes.

    Args:
        raw: the bundle bytes (e.g. the referrer layer blob).

    Returns:
        The bundle, keeping ``raw``.

    Raises:
        BundleFormatError: naming the first field that breaks the format or the version rules.
    """
    doc = _json.JsonObject(
        _json.loads(raw, what="sigstore bundle", error=BundleFormatError),
        path="",
        error=BundleFormatError,
    )
    media_type = doc.string("mediaType")
    version = _version(media_type)
    material = doc.obj("verificationMaterial")
    hint, chain = _key_material(material, version)
    tlog_entries = _tlog_entries(material, version)
    timestamps = _timestamps(material)
    has_message, has_dsse = doc.has("messageSignature"), doc.has("dsseEnvelope")
    if has_message == has_dsse:
        raise BundleFormatError(
            "bundle needs exactly one of messageSignature and dsseEnvelope "
            f"(found {'both' if has_message else 'neither'})"
        )
    dsse: DsseEnvelope | None = None
    if has_dsse:
        dsse = parse_envelope(doc.raw("dsseEnvelope"))
        # sigstore-go: a bundle's DSSE envelope carries exactly one signature.
        if len(dsse.signatures) != 1:
            raise BundleFormatError(
                "dsseEnvelope.signatures: a bundle needs exactly one signature, "
                f"found {len(dsse.signatures)}"
            )
    return SigstoreBundle(
        media_type=media_type,
        version=version,
        public_key_hint=hint,
        certificate_chain=chain,
        tlog_entries=tlog_entries,
        rfc3161_timestamps=timestamps,
        message_signature=_message_signature(doc) if has_message else None,
        dsse=dsse,
        raw=raw,
    )
