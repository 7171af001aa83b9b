"""Rekor entry body consistency checks (internal; public entry point is `tlog.verify_entry_body`).

cosign ``VerifyBundle`` / sigstore-go ``VerifyTlogEntry`` (cosign-formats §1.4 step 2, §5.2): a
valid SET or inclusion proof only shows that *some* entry is in the log. The entry must also name
this signature, this key or certificate, and this artifact, or a log entry for another artifact
could be replayed next to our signature.
"""

from __future__ import annotations

from signgate.errors import TransparencyLogError, truncate
from signgate.signatures import _json, _pem

MAX_DSSE_SIGNATURES = 16
_SUPPORTED = frozenset({("hashedrekord", "0.0.1"), ("dsse", "0.0.1")})


def _verifier_der(content: bytes, *, path: str) -> bytes:
    """DER of the single PEM key or certificate that Rekor stores base64-encoded."""
    block = _pem.read_single_block(
        content, labels=("CERTIFICATE", "PUBLIC KEY"), what=path, error=TransparencyLogError
    )
    return block.der


def _check_hash(hash_obj: _json.JsonObject, expected: bytes | None, *, what: str) -> None:
    if expected is None:
        raise TransparencyLogError(f"cannot check the entry's {what}: no digest was given")
    algorithm = hash_obj.string("algorithm")
    if algorithm != "sha256":
        raise hash_obj.fail("algorithm", f"unsupported hash algorithm {truncate(algorithm, 40)!r}")
    # Rekor stores lowercase hex; anything else is not the digest we computed.
    if hash_obj.string("value") != expected.hex():
        raise TransparencyLogError(f"the entry's {what} does not match the signed artifact")


def _hashedrekord(
    spec: _json.JsonObject,
    *,
    signature: bytes,
    signed_bytes_sha256: bytes | None,
    verifier_der: bytes,
) -> None:
    sig = spec.obj("signature")
    if sig.b64("content") != signature:
        raise TransparencyLogError("the entry's signature is not the signature being verified")
    public_key = sig.obj("publicKey")
    der = _verifier_der(public_key.b64("content"), path=f"{public_key.path}.content")
    if der != verifier_der:
        raise TransparencyLogError(
            "the entry's public key or certificate is not the one being verified"
        )
    _check_hash(spec.obj("data").obj("hash"), signed_bytes_sha256, what="artifact hash (data.hash)")


def _dsse(
    spec: _json.JsonObject,
    *,
    signature: bytes,
    verifier_der: bytes,
    dsse_payload_sha256: bytes | None,
) -> None:
    _check_hash(spec.obj("payloadHash"), dsse_payload_sha256, what="DSSE payloadHash")
    for item in spec.objects("signatures", max_items=MAX_DSSE_SIGNATURES):
        if item.b64("signature") != signature:
            continue
        if _verifier_der(item.b64("verifier"), path=f"{item.path}.verifier") == verifier_der:
            return
    raise TransparencyLogError(
        "no signature in the DSSE entry matches the signature and key or certificate being verified"
    )


def verify_body(
    body: bytes,
    *,
    kind: str,
    kind_version: str,
    signature: bytes,
    signed_bytes_sha256: bytes | None,
    verifier_der: bytes,
    dsse_payload_sha256: bytes | None,
) -> None:
    """Check a canonicalized Rekor body; see `tlog.verify_entry_body`.

    Raises:
        TransparencyLogError: an unsupported kind, a malformed body, or a mismatch.
    """
    if (kind, kind_version) not in _SUPPORTED:
        raise TransparencyLogError(
            f"unsupported entry kind {truncate(kind, 40)} {truncate(kind_version, 20)}"
        )
    doc = _json.JsonObject(
        _json.loads(body, what="transparency log entry body", error=TransparencyLogError),
        path="body",
        error=TransparencyLogError,
    )
    # The kind the bundle claims must be the kind the log recorded.
    body_kind, body_version = doc.string("kind"), doc.string("apiVersion")
    if (body_kind, body_version) != (kind, kind_version):
        raise TransparencyLogError(
            f"entry body is {truncate(body_kind, 40)} {truncate(body_version, 20)}, "
            f"the entry claims {kind} {kind_version}"
        )
    spec = doc.obj("spec")
    if (kind, kind_version) == ("hashedrekord", "0.0.1"):
        _hashedrekord(
            spec,
            signature=signature,
            signed_bytes_sha256=signed_bytes_sha256,
            verifier_der=verifier_der,
        )
    else:
        _dsse(
            spec,
            signature=signature,
            verifier_der=verifier_der,
            dsse_payload_sha256=dsse_payload_sha256,
        )
