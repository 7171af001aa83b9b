"""Transparency-log checkpoints: C2SP signed notes carrying a tree size and root (internal).

Format (cosign-formats §5.4, C2SP ``signed-note`` and ``tlog-checkpoint``)::

    <origin>\\n<tree size>\\n<base64 root hash>\\n[<extension line>\\n...]
    \\n
    \\u2014 <key name> <base64(4-byte key hint || signature)>\\n   (one or more lines)

The signature covers the note body: every byte up to and including the newline before the blank
line. For Rekor v1 the key hint is the first 4 bytes of the logID (sha256 of the SPKI DER) and the
signature is ECDSA-SHA256; for Rekor v2 the logID is the C2SP Ed25519 key ID, whose first 4 bytes
are again the hint, and the signature is pure Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from signgate.errors import TransparencyLogError, truncate
from signgate.signatures.keys import PublicKey

MAX_CHECKPOINT_CHARS = 64 * 1024
MAX_NOTE_SIGNATURES = 16
_KEY_HINT_SIZE = 4
_SIGNATURE_PREFIX = "\u2014 "
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_STD_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note."""

    name: str
    key_hint: bytes
    signature: bytes


@dataclass(frozen=True)
class Checkpoint:
    """A parsed, not yet verified, checkpoint.

    Attributes:
        origin: the log's origin line.
        tree_size: the tree size the root is for.
        root_hash: the tree root.
        body: the signed bytes (the note text up to and including the last body newline).
        signatures: the signature lines.
    """

    origin: str
    tree_size: int
    root_hash: bytes
    body: bytes
    signatures: tuple[NoteSignature, ...]


def _b64(text: str, what: str) -> bytes:
    if not _STD_B64.fullmatch(text):
        raise TransparencyLogError(f"checkpoint {what} is not base64")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise TransparencyLogError(f"checkpoint {what} is not base64") from exc


def _parse_signature(line: str) -> NoteSignature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise TransparencyLogError(
            f"checkpoint signature line is malformed: {truncate(line, 60)!r}"
        )
    name, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).rpartition(" ")
    if not name or " " in name:
        raise TransparencyLogError(
            f"checkpoint signature line is malformed: {truncate(line, 60)!r}"
        )
    blob = _b64(encoded, "signature")
    if len(blob) <= _KEY_HINT_SIZE:
        raise TransparencyLogError("checkpoint signature is too short")
    return NoteSignature(name, blob[:_KEY_HINT_SIZE], blob[_KEY_HINT_SIZE:])


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint envelope.

    Raises:
        TransparencyLogError: any deviation from the signed-note / checkpoint format.
    """
    if len(text) > MAX_CHECKPOINT_CHARS:
        raise TransparencyLogError("checkpoint is too large")
    body_text, separator, signature_text = text.partition("\n\n")
    if not separator or not signature_text.endswith("\n"):
        raise TransparencyLogError(
            "checkpoint is not a signed note (no blank line or final newline)"
        )
    lines = body_text.split("\n")
    if len(lines) < 3 or not all(lines):
        raise TransparencyLogError("checkpoint body needs origin, tree size and root hash lines")
    origin, size_text, root_text = lines[:3]
    if not _DECIMAL.fullmatch(size_text):
        raise TransparencyLogError(
            f"checkpoint tree size is not a number: {truncate(size_text, 30)!r}"
        )
    signature_lines = signature_text[:-1].split("\n")
    if len(signature_lines) > MAX_NOTE_SIGNATURES:
        raise TransparencyLogError("checkpoint has too many signatures")
    try:
        body = (body_text + "\n").encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TransparencyLogError("checkpoint is not valid Unicode") from exc
    return Checkpoint(
        origin=origin,
        tree_size=int(size_text),
        root_hash=_b64(root_text, "root hash"),
        body=body,
        signatures=tuple(_parse_signature(line) for line in signature_lines),
    )


def verify_checkpoint(checkpoint: Checkpoint, *, log_id: bytes, key: PublicKey) -> None:
    """Require a valid signature by ``key`` among the checkpoint's signatures.

    Only lines whose key hint equals the first 4 bytes of ``log_id`` are tried, as Rekor and
    sigstore-go do; other lines (witness cosignatures) are ignored.

    Raises:
        TransparencyLogError: no line for this log, or none that verifies.
    """
    hint = log_id[:_KEY_HINT_SIZE]
    candidates = [sig for sig in checkpoint.signatures if sig.key_hint == hint]
    if not candidates:
        raise TransparencyLogError(
            f"checkpoint has no signature from the log (key hint {hint.hex()} not found)"
        )
    if not any(key.verify(sig.signature, checkpoint.body) for sig in candidates):
        raise TransparencyLogError(
            f"checkpoint signature does not verify with the log key {key.fingerprint}"
        )
