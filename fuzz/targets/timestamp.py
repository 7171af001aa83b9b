"""RFC 3161 timestamps (`signgate.signatures.timestamp`): a bundle's ``signedTimestamp`` or the
legacy ``dev.sigstore.cosign/rfc3161timestamp`` annotation, verified against the public-good
trusted root's timestamp authorities for a given signature.

Input: two fields (see `fuzz.harness.fields`): the signature that was timestamped, then the
token (DER ``TimeStampResp`` or bare ``TimeStampToken``, or the annotation's JSON).
"""

from __future__ import annotations

from fuzz import fixtures
from fuzz.harness import fields, text
from signgate.errors import SignatureError
from signgate.signatures.timestamp import parse_cosign_timestamp_annotation, verify_rfc3161

ACCEPTED: tuple[type[Exception], ...] = (SignatureError,)

_ROOT = fixtures.trusted_root()


def run(data: bytes) -> None:
    signature, token = fields(data, 2)
    if token.startswith(b"{"):
        token = parse_cosign_timestamp_annotation(text(token))
    when = verify_rfc3161(token, signature, _ROOT)
    assert when.tzinfo is not None
