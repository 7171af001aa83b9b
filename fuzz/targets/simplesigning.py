"""The cosign simple-signing payload (`parse_simple_signing`): what a ``.sig`` layer signs."""

from __future__ import annotations

from signgate.errors import SignatureError
from signgate.signatures.simplesigning import COSIGN_SIGNATURE_TYPE, parse_simple_signing

ACCEPTED: tuple[type[Exception], ...] = (SignatureError,)


def run(data: bytes) -> None:
    payload = parse_simple_signing(data)
    assert isinstance(payload.manifest_digest, str)
    assert payload.manifest_digest
    assert payload.signature_type == COSIGN_SIGNATURE_TYPE
