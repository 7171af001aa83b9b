"""Rekor entries (`signgate.signatures.tlog`, `_checkpoint`, `_entry_body`).

Each input is read as the legacy ``dev.sigstore.cosign/bundle`` annotation, as a bundle's
``tlogEntries[]`` item and as a checkpoint; whatever parses is then verified offline against the
public-good trusted root (SET, inclusion proof, checkpoint signature) and checked against the
signature, certificate and payload of the real keyless vector, as `verify` would.
"""

from __future__ import annotations

import hashlib

from fuzz import fixtures
from fuzz.harness import refused, text
from signgate.errors import SignatureError
from signgate.signatures import _checkpoint, _json
from signgate.signatures.tlog import (
    TlogEntry,
    parse_bundle_tlog_entry,
    parse_cosign_bundle_annotation,
    verify_entry_body,
    verify_inclusion_proof,
    verify_set,
    verify_tlog_entry,
)

ACCEPTED: tuple[type[Exception], ...] = (SignatureError,)

_ROOT = fixtures.trusted_root()
_SIGNATURE = fixtures.rekor_signature()
_CERTIFICATE = fixtures.rekor_certificate_der()
_PAYLOAD_SHA256 = hashlib.sha256(fixtures.read("rekor-payload")).digest()


def _verify(entry: TlogEntry) -> None:
    for check in (verify_set, verify_inclusion_proof):
        with refused(*ACCEPTED):
            check(entry, _ROOT)
    with refused(*ACCEPTED):
        verify_entry_body(
            entry,
            signature=_SIGNATURE,
            signed_bytes_sha256=_PAYLOAD_SHA256,
            verifier_der=_CERTIFICATE,
            dsse_payload_sha256=_PAYLOAD_SHA256,
        )
    verify_tlog_entry(
        entry,
        _ROOT,
        require_inclusion_proof=False,
        signature=_SIGNATURE,
        signed_bytes_sha256=_PAYLOAD_SHA256,
        verifier_der=_CERTIFICATE,
    )


def _bundle_entry(value: str) -> TlogEntry:
    return parse_bundle_tlog_entry(_json.loads(value, what="tlog entry", error=SignatureError))


def run(data: bytes) -> None:
    value = text(data)
    with refused(*ACCEPTED):
        checkpoint = _checkpoint.parse_checkpoint(value)
        for log in _ROOT.tlogs:
            with refused(*ACCEPTED):
                _checkpoint.verify_checkpoint(checkpoint, log_id=log.log_id, key=log.public_key)
    with refused(*ACCEPTED):
        _verify(parse_cosign_bundle_annotation(value))
    _verify(_bundle_entry(value))
