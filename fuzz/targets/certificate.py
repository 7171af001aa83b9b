"""Signing certificates (`signgate.signatures.certificate`): what travels with a keyless signature.

The certificate is untrusted until it chains to a trusted CA, but it is parsed first: its key,
SANs and OIDC issuer extensions are read, then it is checked against the public-good Fulcio CAs
(with the embedded SCT), against a policy's own CA pool, and against a certificate identity.
Input: DER, or PEM text (as in the ``dev.sigstore.cosign/certificate`` annotation).
"""

from __future__ import annotations

from datetime import timedelta

from fuzz import fixtures
from fuzz.harness import refused
from signgate.errors import SignatureError
from signgate.signatures import _pem
from signgate.signatures.authority import CertificateIdentity
from signgate.signatures.certificate import (
    chain_to,
    identity_mismatch,
    parse_signing_certificate,
    verify_fulcio,
    verify_with_ca_pool,
)

ACCEPTED: tuple[type[Exception], ...] = (SignatureError,)

_ROOT = fixtures.trusted_root()
_POOL = (fixtures.fulcio_root_der(),)
_IDENTITIES = (
    CertificateIdentity(issuer=fixtures.CONFORMANCE_ISSUER, subject=fixtures.CONFORMANCE_SUBJECT),
    CertificateIdentity(issuer_regexp=r"https://.*", subject_regexp=r".*@example\.com"),
)


def run(data: bytes) -> None:
    der = data
    if data.startswith(b"-----"):
        der = _pem.read_single_block(
            data, labels=("CERTIFICATE",), what="certificate annotation", error=SignatureError
        ).der
    cert = parse_signing_certificate(der)
    _ = cert.describe
    for identity in _IDENTITIES:
        identity_mismatch(cert, identity)
    for when in (cert.not_before, cert.not_before + timedelta(seconds=1), cert.not_after):
        chain_to(cert.certificate, _POOL, when)
        with refused(*ACCEPTED):
            verify_fulcio(cert, _ROOT, when)
        with refused(*ACCEPTED):
            verify_with_ca_pool(cert, _POOL, when)
