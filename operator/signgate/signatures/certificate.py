"""Fulcio-style signing certificates: identity, chain to a trusted CA, embedded SCTs. No I/O.

A keyless signature carries its own certificate, so nothing about it is trusted until the
certificate chains to a CA from the configuration (the trusted root, or a policy's own CA) *at the
time the signature was made* — a verified transparency-log time, not now: Fulcio certificates live
ten minutes. Only then are its identity claims (the SAN and the OIDC issuer extension) read.
Chains that travel with a signature (cosign's ``dev.sigstore.cosign/chain`` annotation) are never
trust anchors (cosign-formats §5.1).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.certificate_transparency import LogEntryType, SignedCertificateTimestamp
from cryptography.x509.oid import ExtendedKeyUsageOID

from signgate.errors import SignatureError, truncate
from signgate.signatures.authority import CertificateIdentity
from signgate.signatures.keys import PublicKey
from signgate.signatures.trusted_root import TrustedRoot

OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
"""Deprecated: the OIDC issuer as raw bytes."""
OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
"""The OIDC issuer as a DER UTF8String."""
OID_OTHERNAME_SAN = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
"""Fulcio's OtherName SAN (a username), a DER UTF8String."""
MAX_CHAIN = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_SANS = 32


class CertificateError(SignatureError):
    """A certificate that does not parse, chain, or carry what a signing certificate must."""


@dataclass(frozen=True, slots=True)
class SigningCertificate:
    """The parts of a signing certificate that verification uses."""

    der: bytes
    certificate: x509.Certificate
    public_key: PublicKey
    not_before: datetime
    not_after: datetime
    subjects: tuple[str, ...]
    """Every SAN: emails, URIs, DNS names, Fulcio OtherName usernames."""
    issuer: str | None
    """The OIDC issuer (extension .1.8, else .1.1); None when absent."""

    @property
    def describe(self) -> str:
        """How a person recognises this signer."""
        who = ", ".join(self.subjects) or "no SAN"
        return f"certificate for {who}" + (f" from {self.issuer}" if self.issuer else "")


def _der_utf8(value: bytes) -> str | None:
    # A DER UTF8String: tag 0x0c, then a short or long form length.
    if len(value) < 2 or value[0] != 0x0C:
        return None
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            return None
        length, offset = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if len(value) != offset + length:
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _extension_bytes(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _oidc_issuer(cert: x509.Certificate) -> str | None:
    v2 = _extension_bytes(cert, OID_ISSUER_V2)
    if v2 is not None:
        issuer = _der_utf8(v2)
        if issuer is None:
            raise CertificateError("the OIDC issuer extension (1.3.6.1.4.1.57264.1.8) is malformed")
        return issuer
    v1 = _extension_bytes(cert, OID_ISSUER_V1)
    if v1 is None:
        return None
    try:
        return v1.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CertificateError("the OIDC issuer extension (…57264.1.1) is not UTF-8") from exc


def _subjects(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = []
    names.extend(san.get_values_for_type(x509.RFC822Name))
    names.extend(san.get_values_for_type(x509.UniformResourceIdentifier))
    names.extend(san.get_values_for_type(x509.DNSName))
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == OID_OTHERNAME_SAN:
            value = _der_utf8(other.value)
            if value is not None:
                names.append(value)
    if len(names) > MAX_SANS:
        raise CertificateError(f"certificate has {len(names)} SANs (limit {MAX_SANS})")
    return tuple(names)


def parse_signing_certificate(der: bytes) -> SigningCertificate:
    """Parse a leaf certificate and read its identity (not yet trusted: see `verify_fulcio`).

    Raises:
        CertificateError: not a certificate, an unsupported key, or a malformed extension.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        key = PublicKey.from_key(cert.public_key())
        # Names and extensions are parsed lazily (then cached): a malformed, duplicate or
        # unsupported one raises here, not later from the identity, chain or SCT checks.
        _ = cert.issuer, cert.subject, cert.extensions
    except (
        ValueError,
        TypeError,
        UnsupportedAlgorithm,
        x509.InvalidVersion,
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
    ) as exc:
        raise CertificateError(f"not a usable X.509 certificate: {exc}") from exc
    except SignatureError as exc:
        raise CertificateError(f"certificate key: {exc}") from exc
    return SigningCertificate(
        der=der,
        certificate=cert,
        public_key=key,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        subjects=_subjects(cert),
        issuer=_oidc_issuer(cert),
    )


def _check_code_signing(cert: x509.Certificate) -> None:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertificateError(
            "certificate has no extended key usage (codeSigning needed)"
        ) from exc
    if ExtendedKeyUsageOID.CODE_SIGNING not in usages:
        raise CertificateError("certificate is not for code signing (EKU codeSigning missing)")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _within(cert: x509.Certificate, when: datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def chain_to(
    leaf: x509.Certificate, chain: Sequence[bytes], when: datetime
) -> tuple[x509.Certificate, ...] | str:
    """Check that ``leaf`` was issued through ``chain`` (issuing CA first, anchor last) and that
    every certificate was valid at ``when``. Returns the CA path (issuer first) or why not."""
    if not chain or len(chain) > MAX_CHAIN:
        return "the CA chain is empty or too long"
    try:
        cas = tuple(x509.load_der_x509_certificate(der) for der in chain)
    except ValueError:
        return "the CA chain holds something that is not a certificate"
    child = leaf
    for parent in cas:
        if not _is_ca(parent):
            return f"{parent.subject.rfc4514_string()} is not a CA"
        if not _issued_by(child, parent):
            return f"not issued by {parent.subject.rfc4514_string()}"
        if not _within(parent, when):
            return f"{parent.subject.rfc4514_string()} was not valid at {when:%Y-%m-%dT%H:%M:%SZ}"
        child = parent
    return cas


def verify_with_ca_pool(cert: SigningCertificate, pool: Sequence[bytes], when: datetime) -> str:
    """The certificate was issued, through ``pool`` (roots and intermediates a policy supplies),
    by a self-signed root in it, everything valid at ``when``, and is for code signing.

    Returns the root's subject.

    Raises:
        CertificateError: the first check that fails.
    """
    stamp = f"{when:%Y-%m-%dT%H:%M:%SZ}"
    if not cert.not_before <= when <= cert.not_after:
        raise CertificateError(
            f"the certificate is not valid at {stamp} "
            f"({cert.not_before:%Y-%m-%dT%H:%M:%SZ} to {cert.not_after:%Y-%m-%dT%H:%M:%SZ})"
        )
    _check_code_signing(cert.certificate)
    try:
        cas = [x509.load_der_x509_certificate(der) for der in pool]
    except ValueError as exc:
        raise CertificateError("the policy's CA certificates do not parse") from exc
    child = cert.certificate
    for _ in range(MAX_CHAIN):
        parent = next((ca for ca in cas if _is_ca(ca) and _issued_by(child, ca)), None)
        if parent is None:
            issued = "the signing certificate"
            if child is not cert.certificate:
                issued = child.subject.rfc4514_string()
            raise CertificateError(
                f"{child.issuer.rfc4514_string()}, the issuer of {issued}, is not among the "
                "policy's CA certificates"
            )
        if not _within(parent, when):
            raise CertificateError(f"{parent.subject.rfc4514_string()} was not valid at {stamp}")
        if parent.issuer == parent.subject:
            return parent.subject.rfc4514_string()
        child = parent
    raise CertificateError("the certificate chain is too long")


def verify_fulcio(
    cert: SigningCertificate, root: TrustedRoot, when: datetime, *, require_sct: bool = True
) -> None:
    """The certificate was issued by a trusted Fulcio CA and usable for code signing at ``when``.

    Checks: validity covers ``when``; EKU codeSigning; a chain to one of the trusted root's CAs
    whose ``validFor`` covers ``when``; an embedded SCT from a trusted CT log (cosign's default).

    Raises:
        CertificateError: the first check that fails, in words a person can act on.
    """
    stamp = f"{when:%Y-%m-%dT%H:%M:%SZ}"
    if not cert.not_before <= when <= cert.not_after:
        raise CertificateError(
            f"the signature was logged at {stamp}, outside the certificate's validity "
            f"({cert.not_before:%Y-%m-%dT%H:%M:%SZ} to {cert.not_after:%Y-%m-%dT%H:%M:%SZ})"
        )
    _check_code_signing(cert.certificate)
    candidates = [ca for ca in root.certificate_authorities if ca.valid_at(when)]
    if not candidates:
        raise CertificateError(f"the trusted root has no certificate authority valid at {stamp}")
    problems: list[str] = []
    for authority in candidates:
        path = chain_to(cert.certificate, authority.certificates, when)
        if isinstance(path, str):
            problems.append(f"{authority.uri or 'CA'}: {path}")
            continue
        if require_sct:
            verify_embedded_sct(cert.certificate, path[0], root)
        return
    raise CertificateError(
        "the certificate does not chain to a trusted certificate authority ("
        + "; ".join(problems[:3])
        + ")"
    )


def _sct_signed_data(
    sct: SignedCertificateTimestamp, cert: x509.Certificate, issuer: x509.Certificate
) -> bytes:
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    tbs = cert.tbs_precertificate_bytes
    timestamp_ms = (sct.timestamp.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
    extensions = sct.extension_bytes
    return (
        b"\x00\x00"
        + struct.pack(">Q", timestamp_ms)
        + b"\x00\x01"
        + issuer_key_hash
        + len(tbs).to_bytes(3, "big")
        + tbs
        + len(extensions).to_bytes(2, "big")
        + extensions
    )


def verify_embedded_sct(
    cert: x509.Certificate, issuer: x509.Certificate, root: TrustedRoot
) -> None:
    """At least one embedded SCT verifies under a trusted CT log key (RFC 6962 precert entry).

    Raises:
        CertificateError: no embedded SCT, or none from a trusted log verifies.
    """
    try:
        scts = cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound as exc:
        raise CertificateError(
            "certificate has no embedded SCT (certificate transparency)"
        ) from exc
    problems: list[str] = []
    for sct in scts:
        if sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            problems.append("an SCT that is not for a precertificate")
            continue
        log = root.ctlog_key(sct.log_id)
        if log is None:
            problems.append(f"an SCT from unknown CT log {sct.log_id.hex()[:16]}…")
            continue
        if not log.valid_at(sct.timestamp.replace(tzinfo=UTC)):
            problems.append(f"an SCT from CT log {sct.log_id.hex()[:16]}… outside its validity")
            continue
        signed = _sct_signed_data(sct, cert, issuer)
        if _verify_sct_signature(log.public_key, sct, signed):
            return
        problems.append(f"an SCT from CT log {sct.log_id.hex()[:16]}… that does not verify")
    raise CertificateError(
        "no valid SCT from a trusted CT log: " + ("; ".join(problems[:3]) or "none embedded")
    )


def _verify_sct_signature(key: PublicKey, sct: SignedCertificateTimestamp, signed: bytes) -> bool:
    algorithm = sct.signature_hash_algorithm
    if not isinstance(algorithm, hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
        return False
    material = key.key
    try:
        if isinstance(material, ec.EllipticCurvePublicKey):
            material.verify(sct.signature, signed, ec.ECDSA(algorithm))
            return True
        if isinstance(material, rsa.RSAPublicKey):
            material.verify(sct.signature, signed, padding.PKCS1v15(), algorithm)
            return True
    except InvalidSignature:
        return False
    return False


def identity_mismatch(cert: SigningCertificate, identity: CertificateIdentity) -> str | None:
    """Why ``cert`` is not ``identity`` (None when it is). Regexps match the whole value."""
    issuer = cert.issuer
    if identity.issuer is not None and issuer != identity.issuer:
        return f"issuer is {issuer or 'absent'}, not {identity.issuer}"
    if identity.issuer_regexp is not None and (
        issuer is None or re.fullmatch(identity.issuer_regexp, issuer) is None
    ):
        return f"issuer {issuer or '(absent)'} does not match /{identity.issuer_regexp}/"
    subjects = cert.subjects
    if identity.subject is not None and identity.subject not in subjects:
        return f"identity is {_names(subjects)}, not {identity.subject}"
    if identity.subject_regexp is not None and not any(
        re.fullmatch(identity.subject_regexp, s) for s in subjects
    ):
        return f"identity {_names(subjects)} does not match /{identity.subject_regexp}/"
    return None


def _names(subjects: Sequence[str]) -> str:
    return ", ".join(truncate(s, 200) for s in subjects) or "(no SAN)"
