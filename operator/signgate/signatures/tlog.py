"""Rekor transparency-log entries: parsing and offline verification (cosign-formats §1.4, §5.2-5.4).

No network: an entry is checked with what it carries and the trusted root.

* SET (inclusion promise, Rekor v1): the log's signature over the canonical JSON of body,
  integratedTime, logID and logIndex. It is the only thing that authenticates integratedTime.
* Inclusion proof: the RFC 6962 audit path from the entry's leaf to a root, plus a checkpoint
  (signed note) in which the log signs that root and tree size.
* Body consistency: the entry must be about *this* signature, key/certificate and artifact.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from signgate.errors import BundleFormatError, TransparencyLogError, truncate
from signgate.signatures import _checkpoint, _json, _merkle
from signgate.signatures._entry_body import verify_body
from signgate.signatures.trusted_root import TrustedRoot
from signgate.strictjson import json_kind

_LOG_ID_HEX = re.compile(r"[0-9a-f]{64}")
# datetime cannot go past year 9999; a later integratedTime is nonsense anyway.
_MAX_UNIX_TIME = 253402300799


@dataclass(frozen=True)
class InclusionProof:
    """An RFC 6962 inclusion proof and the checkpoint that signs its root.

    Attributes:
        log_index: the leaf index inside the proof's tree (for Rekor v1 a shard-local index,
            different from the entry's global ``log_index``).
        root_hash: the tree root the proof leads to.
        tree_size: the size of that tree.
        hashes: the audit path, bottom to top.
        checkpoint: the signed-note text.
    """

    log_index: int
    root_hash: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint: str


@dataclass(frozen=True)
class TlogEntry:
    """One transparency-log entry as carried by a bundle or a cosign bundle annotation.

    Attributes:
        log_index: the global log index.
        log_id: the log's ID; selects the key in the trusted root.
        kind: entry kind (``hashedrekord``, ``dsse``, ...).
        kind_version: entry kind version (``0.0.1``).
        integrated_time: Unix seconds; None when absent or 0 (Rekor v2).
        signed_entry_timestamp: the SET, if any.
        inclusion_proof: the proof, if any.
        canonicalized_body: the entry body bytes (the Merkle leaf).
    """

    log_index: int
    log_id: bytes
    kind: str
    kind_version: str
    integrated_time: int | None
    signed_entry_timestamp: bytes | None
    inclusion_proof: InclusionProof | None
    canonicalized_body: bytes


@dataclass(frozen=True)
class VerifiedTlogEntry:
    """What `verify_tlog_entry` established.

    Attributes:
        log_index: the global log index.
        integrated_time: Unix seconds, **only** when a SET verified (nothing else authenticates
            it); None otherwise, and then the caller needs another time source (RFC 3161).
        log_id: the log's ID.
    """

    log_index: int
    integrated_time: int | None
    log_id: bytes


def _parse_proof(proof: _json.JsonObject) -> InclusionProof:
    # protojson leaves out zero values: no "hashes" in a tree of one entry, no "logIndex" 0.
    listed = (
        proof.array("hashes", max_items=_merkle.MAX_PROOF_HASHES, allow_empty=True)
        if proof.has("hashes")
        else []
    )
    hashes = tuple(_hash(value, f"{proof.path}.hashes[{i}]") for i, value in enumerate(listed))
    root_hash = proof.b64("rootHash")
    if len(root_hash) != _merkle.HASH_SIZE:
        raise proof.fail("rootHash", f"{len(root_hash)} bytes, expected {_merkle.HASH_SIZE}")
    log_index = proof.optional_int64("logIndex", minimum=0) or 0
    tree_size = proof.int64("treeSize", minimum=1)
    if log_index >= tree_size:
        raise proof.fail("logIndex", f"{log_index} is not inside a tree of size {tree_size}")
    return InclusionProof(
        log_index=log_index,
        root_hash=root_hash,
        tree_size=tree_size,
        hashes=hashes,
        checkpoint=proof.obj("checkpoint").string("envelope"),
    )


def _hash(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise BundleFormatError(f"{path}: expected a base64 string, got {json_kind(value)}")
    decoded = _json.b64decode(value, path=path, error=BundleFormatError)
    if len(decoded) != _merkle.HASH_SIZE:
        raise BundleFormatError(f"{path}: {len(decoded)} bytes, expected {_merkle.HASH_SIZE}")
    return decoded


def parse_bundle_tlog_entry(obj: object, *, path: str = "tlogEntry") -> TlogEntry:
    """Parse one ``verificationMaterial.tlogEntries[]`` item of a Sigstore bundle (§3.4).

    Args:
        obj: the decoded JSON value.
        path: field path used in messages.

    Returns:
        The entry (nothing verified yet).

    Raises:
        BundleFormatError: a missing or mistyped field, bad base64, or an impossible proof shape.
    """
    doc = _json.JsonObject(obj, path=path, error=BundleFormatError)
    kind_version = doc.obj("kindVersion")
    promise = doc.optional_obj("inclusionPromise")
    proof = doc.optional_obj("inclusionProof")
    integrated_time = doc.optional_int64("integratedTime", minimum=0)
    if integrated_time is not None and integrated_time > _MAX_UNIX_TIME:
        raise doc.fail("integratedTime", f"{integrated_time} is not a plausible time")
    return TlogEntry(
        log_index=doc.int64("logIndex", minimum=0),
        log_id=doc.obj("logId").b64("keyId"),
        kind=kind_version.string("kind"),
        kind_version=kind_version.string("version"),
        integrated_time=integrated_time or None,  # 0 is proto3's "unset" (Rekor v2)
        signed_entry_timestamp=promise.b64("signedEntryTimestamp") if promise else None,
        inclusion_proof=_parse_proof(proof) if proof else None,
        canonicalized_body=doc.b64("canonicalizedBody"),
    )


def parse_cosign_bundle_annotation(text: str) -> TlogEntry:
    """Parse the legacy ``dev.sigstore.cosign/bundle`` layer annotation (§1.2).

    ``{"SignedEntryTimestamp": b64, "Payload": {"body": b64, "integratedTime": int,
    "logIndex": int, "logID": hex}}``, field names exactly as cosign's Go ``RekorBundle`` writes.

    Args:
        text: the annotation value.

    Returns:
        The entry; kind and version come from the body. It has a SET and no inclusion proof.

    Raises:
        BundleFormatError: malformed JSON, fields, base64 or logID, or a body that is not a Rekor
            entry.
    """
    what = "cosign bundle annotation"
    doc = _json.JsonObject(
        _json.loads(text, what=what, error=BundleFormatError),
        path="bundle",
        error=BundleFormatError,
    )
    payload = doc.obj("Payload")
    # Go's RekorPayload has int64 fields: JSON numbers, never strings.
    numbers = {key: payload.number(key, minimum=0) for key in ("integratedTime", "logIndex")}
    if numbers["integratedTime"] > _MAX_UNIX_TIME:
        raise payload.fail("integratedTime", "is not a plausible time")
    log_id = payload.string("logID")
    if not _LOG_ID_HEX.fullmatch(log_id):
        raise payload.fail(
            "logID", f"expected 64 lowercase hex characters, got {truncate(log_id, 80)!r}"
        )
    body = payload.b64("body")
    header = _json.JsonObject(
        _json.loads(body, what=f"{what} body", error=BundleFormatError),
        path="bundle.Payload.body",
        error=BundleFormatError,
    )
    return TlogEntry(
        log_index=numbers["logIndex"],
        log_id=bytes.fromhex(log_id),
        kind=header.string("kind"),
        kind_version=header.string("apiVersion"),
        integrated_time=numbers["integratedTime"],
        signed_entry_timestamp=doc.b64("SignedEntryTimestamp"),
        inclusion_proof=None,
        canonicalized_body=body,
    )


def _set_payload(entry: TlogEntry, integrated_time: int) -> bytes:
    # §5.3: RFC 8785 canonical JSON. Every value is an ASCII string or an integer, for which
    # sorted keys and no whitespace *is* RFC 8785. The body is re-encoded as std base64, as Rekor
    # (Go []byte) and sigstore-go do.
    payload = {
        "body": base64.b64encode(entry.canonicalized_body).decode("ascii"),
        "integratedTime": integrated_time,
        "logID": entry.log_id.hex(),
        "logIndex": entry.log_index,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("ascii")


def verify_set(entry: TlogEntry, root: TrustedRoot) -> None:
    """Verify the entry's signed entry timestamp (§5.3).

    The key is chosen by logID, and its validity period in the trusted root must cover
    integratedTime (sigstore-go).

    Raises:
        TransparencyLogError: no SET or integratedTime, an unknown log, a key not valid at that
            time, or a signature that does not verify.
    """
    if entry.signed_entry_timestamp is None:
        raise TransparencyLogError("entry has no signed entry timestamp (inclusion promise)")
    if entry.integrated_time is None:
        raise TransparencyLogError("entry has a signed entry timestamp but no integratedTime")
    keys = root.tlog_keys(entry.log_id)
    if not keys:
        raise TransparencyLogError(f"entry is from an untrusted log (logID {entry.log_id.hex()})")
    try:
        when = datetime.fromtimestamp(entry.integrated_time, UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise TransparencyLogError(
            f"integratedTime {entry.integrated_time} is not a representable time"
        ) from exc
    current = [log for log in keys if log.valid_at(when)]
    if not current:
        raise TransparencyLogError(
            f"log key {entry.log_id.hex()} was not valid at integratedTime {when.isoformat()}"
        )
    payload = _set_payload(entry, entry.integrated_time)
    if not any(log.public_key.verify(entry.signed_entry_timestamp, payload) for log in current):
        fingerprint = current[0].public_key.fingerprint
        raise TransparencyLogError(
            f"signed entry timestamp does not verify with the log key {fingerprint}"
        )


def verify_inclusion_proof(entry: TlogEntry, root: TrustedRoot) -> None:
    """Verify the entry's inclusion proof and the checkpoint that signs its root (§5.4).

    Raises:
        TransparencyLogError: no proof, an unknown log, a proof that does not lead to the root,
            a checkpoint for another tree, or a checkpoint signature that does not verify.
    """
    proof = entry.inclusion_proof
    if proof is None:
        raise TransparencyLogError("entry has no inclusion proof")
    keys = root.tlog_keys(entry.log_id)
    if not keys:
        raise TransparencyLogError(f"entry is from an untrusted log (logID {entry.log_id.hex()})")
    leaf = _merkle.leaf_hash(entry.canonicalized_body)
    computed = _merkle.root_from_inclusion_proof(
        proof.log_index, proof.tree_size, leaf, proof.hashes
    )
    if not hmac.compare_digest(computed, proof.root_hash):
        raise TransparencyLogError(
            f"inclusion proof does not lead to the root hash (computed {computed.hex()}, "
            f"expected {proof.root_hash.hex()})"
        )
    checkpoint = _checkpoint.parse_checkpoint(proof.checkpoint)
    # The checkpoint must sign *this* tree, or the proof is only internally consistent.
    if checkpoint.tree_size != proof.tree_size or checkpoint.root_hash != proof.root_hash:
        raise TransparencyLogError(
            f"checkpoint is for tree size {checkpoint.tree_size} root "
            f"{checkpoint.root_hash.hex()}, the proof for tree size {proof.tree_size} root "
            f"{proof.root_hash.hex()}"
        )
    errors: list[TransparencyLogError] = []
    for log in keys:
        try:
            _checkpoint.verify_checkpoint(checkpoint, log_id=entry.log_id, key=log.public_key)
        except TransparencyLogError as exc:
            errors.append(exc)
        else:
            return
    raise errors[0]


def verify_entry_body(
    entry: TlogEntry,
    *,
    signature: bytes,
    signed_bytes_sha256: bytes | None,
    verifier_der: bytes,
    dsse_payload_sha256: bytes | None = None,
) -> None:
    """Check that the entry body is about this signature, key or certificate, and artifact (§5.2).

    Supported: ``hashedrekord`` 0.0.1 (signature, key/cert DER, sha256 of the signed bytes) and
    ``dsse`` 0.0.1 (payload sha256, and one of its signatures with this signature and verifier).

    Args:
        entry: the entry.
        signature: the raw signature the bundle or layer carries.
        signed_bytes_sha256: sha256 of the signed bytes (hashedrekord).
        verifier_der: DER of the verifying public key (SPKI) or certificate.
        dsse_payload_sha256: sha256 of the DSSE payload (dsse).

    Raises:
        TransparencyLogError: an unsupported kind, a malformed body, or any mismatch.
    """
    verify_body(
        entry.canonicalized_body,
        kind=entry.kind,
        kind_version=entry.kind_version,
        signature=signature,
        signed_bytes_sha256=signed_bytes_sha256,
        verifier_der=verifier_der,
        dsse_payload_sha256=dsse_payload_sha256,
    )


def verify_tlog_entry(
    entry: TlogEntry,
    root: TrustedRoot,
    *,
    require_inclusion_proof: bool,
    signature: bytes,
    signed_bytes_sha256: bytes | None,
    verifier_der: bytes,
    dsse_payload_sha256: bytes | None = None,
) -> VerifiedTlogEntry:
    """Run every offline check on one entry (cosign verification step 2, sigstore-go).

    The body is checked first (cheap, and the most telling failure). The SET is verified when
    present, and is required when there is no inclusion proof, because then nothing else shows
    the entry is in the log. The inclusion proof and checkpoint are verified when present and
    required when ``require_inclusion_proof`` (bundles >= v0.2, Rekor v2).

    Args:
        entry: the entry.
        root: trusted logs.
        require_inclusion_proof: fail if the entry has no inclusion proof.
        signature: see `verify_entry_body`.
        signed_bytes_sha256: see `verify_entry_body`.
        verifier_der: see `verify_entry_body`.
        dsse_payload_sha256: see `verify_entry_body`.

    Returns:
        The verified facts; ``integrated_time`` only if a SET vouched for it.

    Raises:
        TransparencyLogError: the first check that fails.
    """
    verify_entry_body(
        entry,
        signature=signature,
        signed_bytes_sha256=signed_bytes_sha256,
        verifier_der=verifier_der,
        dsse_payload_sha256=dsse_payload_sha256,
    )
    if entry.inclusion_proof is None and require_inclusion_proof:
        raise TransparencyLogError("entry has no inclusion proof, and one is required")
    if entry.signed_entry_timestamp is None and entry.inclusion_proof is None:
        raise TransparencyLogError(
            "entry has neither a signed entry timestamp nor an inclusion proof"
        )
    if entry.signed_entry_timestamp is not None:
        verify_set(entry, root)
    if entry.inclusion_proof is not None:
        verify_inclusion_proof(entry, root)
    return VerifiedTlogEntry(
        log_index=entry.log_index,
        integrated_time=entry.integrated_time if entry.signed_entry_timestamp is not None else None,
        log_id=entry.log_id,
    )
