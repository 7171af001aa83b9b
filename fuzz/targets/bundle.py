"""Sigstore bundles (`signgate.signatures.bundle.parse_bundle`): cosign v3 referrer blobs."""

from __future__ import annotations

from signgate.errors import BundleFormatError
from signgate.signatures.bundle import parse_bundle

ACCEPTED: tuple[type[Exception], ...] = (BundleFormatError,)


def run(data: bytes) -> None:
    bundle = parse_bundle(data)
    assert bundle.version in ((0, 1), (0, 2), (0, 3))
    assert (bundle.dsse is None) != (bundle.message_signature is None)
    assert bundle.signature
    if bundle.dsse is not None:
        bundle.dsse.pae()
