"""RFC 3161 timestamps from a timestamp authority (TSA): a trusted time for a signature. No I/O.

A TSA countersigns a hash of the signature bytes at a time it states (``genTime``). That time is
only worth something once the token is shown to be (cosign-formats §1.2, §3.4, §5.5, §5.6):

1. for *this* signature: the message imprint is the hash (SHA-256, -384 or -512; cosign and
   sigstore-go use SHA-256) of the raw signature bytes;
2. signed: the token's CMS signature verifies with the TSA's signing certificate;
3. by a TSA we trust: that certificate has the critical ``timeStamping`` EKU and chains, signature
   by signature and through CA certificates only, to one of the trusted root's
   ``timestampAuthorities``, every certificate valid at ``genTime``;
4. while we trusted it: the authority's ``validFor`` covers ``genTime``.

Steps 2 and 3 are done by `rfc3161-client` (Trail of Bits; what sigstore-python uses): it parses
the DER strictly and verifies the CMS SignedData and the chain with OpenSSL at ``genTime``, for
the timestamp-signing purpose. This module adds what it leaves to the caller: accepting a bare
token as well as a ``TimeStampResp``, the one-authority-at-a-time trust decision with the
authority's ``validFor``, and errors a person can read. The nonce is not checked: it only binds a
response to its request, which a verifier never saw.

A trusted root lists each TSA's chain as sigstore-go reads it: the TSA's signing certificate first
when it is there (it is then pinned: a token must be signed by exactly that certificate, and may
leave it out), then intermediates, then the root.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import rfc3161_client
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from rfc3161_client import (
    PKIStatus,
    TimeStampResponse,
    VerificationError,
    Verifier,
    VerifierBuilder,
)

from signgate.errors import TimestampError, truncate
from signgate.signatures import _json
from signgate.signatures.trusted_root import CertificateAuthority, TrustedRoot

MAX_TOKEN_SIZE = 64 * 1024
"""Real tokens are 0.5-3 KiB (a few more with embedded certificates); refuse anything far larger."""

SHA256 = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
SHA384 = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.2")
SHA512 = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.3")
_HASHES = {
    SHA256: ("SHA-256", "sha256"),
    SHA384: ("SHA-384", "sha384"),
    SHA512: ("SHA-512", "sha512"),
}
"""Imprint hash algorithms accepted: OID -> (name for people, hashlib name)."""

_GRANTED = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo ::= SEQUENCE { status granted(0) }
_STAMP = "%Y-%m-%dT%H:%M:%SZ"
# OpenSSL's error stack inside the library's messages: reason "…" and, for chain failures, the
# verify error text in data (e.g. "Verify error:certificate has expired").
_OPENSSL_REASON = re.compile(r'reason: "([^"]+)"')
_OPENSSL_VERIFY = re.compile(r"Verify error:\s*([^\"]+)")


def parse_cosign_timestamp_annotation(text: str) -> bytes:
    """Read cosign's legacy ``dev.sigstore.cosign/rfc3161timestamp`` layer annotation (§1.2).

    ``{"SignedRFC3161Timestamp": "<base64 DER>"}`` (Go ``bundle.RFC3161Timestamp``). cosign
    stores the TSA's whole ``TimeStampResp`` there, as a bundle's ``signedTimestamp`` does;
    `verify_rfc3161` takes either that or a bare token.

    Args:
        text: the annotation value.

    Returns:
        The DER bytes, for `verify_rfc3161`.

    Raises:
        TimestampError: not JSON, no ``SignedRFC3161Timestamp`` string, or not base64.
    """
    doc = _json.JsonObject(
        _json.loads(text, what="cosign rfc3161timestamp annotation", error=TimestampError),
        path="rfc3161timestamp",
        error=TimestampError,
    )
    return doc.b64("SignedRFC3161Timestamp")


def verify_rfc3161(token_der: bytes, signature: bytes, root: TrustedRoot) -> datetime:
    """Verify an RFC 3161 timestamp over ``signature`` and return the time it vouches for.

    Args:
        token_der: a DER ``TimeStampResp`` (a bundle's ``signedTimestamp``, cosign's annotation)
            or a bare ``TimeStampToken`` (CMS ContentInfo).
        signature: the raw signature bytes that were timestamped (the message signature, the
            DSSE signature, or the base64-decoded ``dev.cosignproject.cosign/signature``).
        root: the trusted root whose ``timestamp_authorities`` may have signed.

    Returns:
        The authenticated ``genTime``, timezone-aware UTC.

    Raises:
        TimestampError: the first check that fails, in words a person can act on.
    """
    response = _parse(token_der)
    gen_time, digest = _check_token(response, signature)
    stamp = f"{gen_time:{_STAMP}}"
    if not root.timestamp_authorities:
        raise TimestampError("the trusted root has no timestamp authority to check the timestamp")
    problems: list[str] = []
    for number, authority in enumerate(root.timestamp_authorities, 1):
        label = authority.uri or f"timestamp authority #{number}"
        verifier = _verifier(authority)
        if isinstance(verifier, str):
            problems.append(f"{label}: {verifier}")
            continue
        try:
            verifier.verify(response, digest)
        except (VerificationError, ValueError) as exc:
            problems.append(f"{label}: {_explain(exc)}")
            continue
        if authority.valid_at(gen_time):
            return gen_time
        problems.append(
            f"{label} signed it, but the trusted root trusts that authority only "
            f"{_period(authority)}, not at {stamp}"
        )
    raise TimestampError(
        f"the timestamp ({stamp}) is not from a trusted timestamp authority: "
        + "; ".join(problems[:3])
    )


@dataclass(frozen=True)
class _Chain:
    """One trusted-root TSA entry, split the way `VerifierBuilder` takes it."""

    signer: x509.Certificate | None
    intermediates: tuple[x509.Certificate, ...]
    root: x509.Certificate


def _parse(token_der: bytes) -> TimeStampResponse:
    if len(token_der) > MAX_TOKEN_SIZE:
        raise TimestampError(
            f"the timestamp is {len(token_der)} bytes, more than the {MAX_TOKEN_SIZE} allowed"
        )
    kind = _outer_kind(token_der)
    if kind == "token":
        # A bare TimeStampToken: wrap it in a granted TimeStampResp, which the parser expects.
        token_der = _der_sequence(_GRANTED + token_der)
    elif kind != "response":
        raise TimestampError(
            "not an RFC 3161 timestamp (neither a DER TimeStampResp nor a TimeStampToken)"
        )
    try:
        return rfc3161_client.decode_timestamp_response(token_der)
    except ValueError as exc:
        raise TimestampError(
            f"the timestamp does not parse as RFC 3161 DER: {truncate(str(exc), 160)}"
        ) from exc


def _check_token(response: TimeStampResponse, signature: bytes) -> tuple[datetime, bytes]:
    """Check the status and that the token is for ``signature``; return (genTime, digest)."""
    if response.status != PKIStatus.GRANTED:
        texts = "; ".join(truncate(text, 100) for text in response.status_string[:3])
        raise TimestampError(
            f"the timestamp authority did not grant the timestamp (status {_status(response)}"
            + (f": {texts}" if texts else "")
            + ")"
        )
    try:
        info = response.tst_info
        gen_time = info.gen_time.astimezone(UTC)
        algorithm = info.message_imprint.hash_algorithm
        imprint = info.message_imprint.message
    except ValueError as exc:
        raise TimestampError(
            f"the timestamp token is malformed: {truncate(str(exc), 160)}"
        ) from exc
    _check_embedded_certificates(response)
    if algorithm not in _HASHES:
        raise TimestampError(
            f"the timestamp uses hash algorithm {algorithm.dotted_string}; "
            "only SHA-256, SHA-384 and SHA-512 are accepted"
        )
    name, hashlib_name = _HASHES[algorithm]
    digest = hashlib.new(hashlib_name, signature).digest()
    if imprint != digest:
        raise TimestampError(
            f"the timestamp is for other data: its message imprint is not the {name} of this "
            "signature"
        )
    return gen_time, digest


def _check_embedded_certificates(response: TimeStampResponse) -> None:
    """Every certificate the token carries parses, extensions included.

    The library loads them with `cryptography` while it verifies; a malformed one would raise
    whatever `cryptography` raises there, so it is turned away here first, with a clear reason.
    """
    try:
        embedded = response.signed_data.certificates
    except ValueError as exc:
        raise TimestampError(
            f"the timestamp token is malformed: {truncate(str(exc), 160)}"
        ) from exc
    for der in embedded:
        try:
            _ = x509.load_der_x509_certificate(der).extensions
        except (
            ValueError,
            TypeError,
            UnsupportedAlgorithm,
            x509.InvalidVersion,
            x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType,
        ) as exc:
            raise TimestampError(
                f"the timestamp token embeds a malformed certificate: {truncate(str(exc), 120)}"
            ) from exc


def _verifier(authority: CertificateAuthority) -> Verifier | str:
    """A verifier that trusts exactly this authority's chain, or why there is none."""
    chain = _split_chain(authority.certificates)
    if isinstance(chain, str):
        return chain
    builder = VerifierBuilder(roots=[chain.root], intermediates=list(chain.intermediates))
    if chain.signer is not None:
        builder = builder.tsa_certificate(chain.signer)
    return builder.build()


def _split_chain(certificates: tuple[bytes, ...]) -> _Chain | str:
    if not certificates:
        return "its certificate chain is empty"
    try:
        loaded = [x509.load_der_x509_certificate(der) for der in certificates]
    except ValueError:
        return "its certificate chain holds something that is not a certificate"
    # sigstore-go: the first certificate is the TSA's signing (leaf) certificate unless it is a CA.
    signer = loaded[0] if len(loaded) > 1 and not _is_ca(loaded[0]) else None
    cas = loaded[1:] if signer is not None else loaded
    return _Chain(signer=signer, intermediates=tuple(cas[:-1]), root=cas[-1])


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):  # absent or malformed: not a usable CA
        return False


def _explain(exc: Exception) -> str:
    """The library's reason in plain words, without OpenSSL's error-stack dump."""
    message = str(exc)
    verify_error = _OPENSSL_VERIFY.search(message)
    if verify_error:
        reason = verify_error[1].strip()
        if "purpose" in reason:  # OpenSSL's timestamp-signing purpose: the EKU rules of RFC 3161
            reason += " (the signing certificate needs a critical EKU of timeStamping only)"
        return (
            f"the TSA certificate chain does not verify: {reason}, checked at the timestamp's time"
        )
    reasons = _OPENSSL_REASON.findall(message)
    if "signer certificate not found" in reasons:
        return "it was not signed by this authority (signer certificate not found)"
    if reasons:
        return "its signature does not verify (" + ", ".join(dict.fromkeys(reasons)) + ")"
    if "does not match the one in the Verification Options" in message:
        return "it was signed by another certificate than the TSA certificate the root names"
    return truncate(message.rstrip("."), 200)


def _status(response: TimeStampResponse) -> str:
    try:
        return PKIStatus(response.status).name.lower()
    except ValueError:
        return str(response.status)


def _period(authority: CertificateAuthority) -> str:
    start = f"{authority.valid_from:{_STAMP}}"
    if authority.valid_until is None:
        return f"from {start}"
    return f"from {start} to {authority.valid_until:{_STAMP}}"


def _outer_kind(der: bytes) -> str | None:
    """``"response"`` for a TimeStampResp (SEQUENCE whose first element is a SEQUENCE),
    ``"token"`` for a ContentInfo (first element an OID), None for anything else.

    Only the two outer headers are read; the library parses (and rejects) everything else.
    """
    outer = _header(der, 0)
    if outer is None or outer[0] != 0x30 or outer[1] + outer[2] != len(der):
        return None
    first = _header(der, outer[1])
    if first is None:
        return None
    return {0x30: "response", 0x06: "token"}.get(first[0])


def _header(der: bytes, offset: int) -> tuple[int, int, int] | None:
    """(tag, offset of the content, content length) of the DER element at ``offset``."""
    if offset + 2 > len(der):
        return None
    tag, first = der[offset], der[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(der):
            return None  # indefinite (BER) or absurd lengths: not DER
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    if start + length > len(der):
        return None
    return tag, start, length


def _der_sequence(content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return b"\x30" + bytes([length]) + content
    size = (length.bit_length() + 7) // 8
    return b"\x30" + bytes([0x80 | size]) + length.to_bytes(size, "big") + content
