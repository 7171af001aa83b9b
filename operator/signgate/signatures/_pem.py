"""Strict PEM (RFC 7468) reading and writing (internal, no stability promise).

We parse PEM ourselves instead of letting a loader guess, so that we can say precisely what was
found ("a CERTIFICATE block, not a PUBLIC KEY") and insist on exactly one block. Text outside the
blocks is ignored, as Go's ``pem.Decode`` (used by cosign) and OpenSSL do; encapsulated headers
(RFC 1421 ``Proc-Type:``) are refused because nothing cosign writes has them.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from signgate.errors import SigngateError, truncate

_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_END = re.compile(r"-----END ([A-Z0-9 ]+)-----")
_B64_LINE = re.compile(r"[A-Za-z0-9+/=]*")


@dataclass(frozen=True)
class PemBlock:
    """One decoded PEM block."""

    label: str
    der: bytes


def _as_text(data: bytes | str, *, what: str, error: type[SigngateError]) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise error(f"{what}: not PEM text (found non-ASCII bytes; DER is not accepted)") from exc


def read_blocks(data: bytes | str, *, what: str, error: type[SigngateError]) -> list[PemBlock]:
    """Decode every PEM block in ``data``.

    Args:
        data: PEM text.
        what: what the input is, for messages (``"public key"``).
        error: the `SigngateError` subclass to raise.

    Returns:
        The blocks in order (possibly none).

    Raises:
        SigngateError: of type ``error`` for an unterminated block, a label mismatch, headers, or a
            body that is not base64.
    """
    text = _as_text(data, what=what, error=error)
    blocks: list[PemBlock] = []
    label: str | None = None
    body: list[str] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if label is None:
            begin = _BEGIN.fullmatch(line)
            if begin:
                label, body = begin.group(1), []
            continue
        end = _END.fullmatch(line)
        if end:
            if end.group(1) != label:
                raise error(f"{what}: PEM block BEGIN {label} ends with END {end.group(1)}")
            blocks.append(PemBlock(label, _decode_body(body, label=label, what=what, error=error)))
            label = None
        elif ":" in line:
            raise error(f"{what}: PEM headers are not supported ({truncate(line, 40)!r})")
        elif not _B64_LINE.fullmatch(line):
            raise error(f"{what}: PEM {label} block contains non-base64 text")
        else:
            body.append(line)
    if label is not None:
        raise error(f"{what}: PEM {label} block is truncated (no END line)")
    return blocks


def _decode_body(lines: list[str], *, label: str, what: str, error: type[SigngateError]) -> bytes:
    joined = "".join(lines)
    try:
        der = base64.b64decode(joined, validate=True)
    except binascii.Error as exc:
        raise error(f"{what}: PEM {label} block is not valid base64") from exc
    if not der:
        raise error(f"{what}: PEM {label} block is empty")
    return der


def read_single_block(
    data: bytes | str, *, labels: tuple[str, ...], what: str, error: type[SigngateError]
) -> PemBlock:
    """Decode exactly one PEM block whose label is one of ``labels``.

    Raises:
        SigngateError: of type ``error`` if there is no block, more than one, or the wrong label.
    """
    blocks = read_blocks(data, what=what, error=error)
    wanted = " or ".join(labels)
    if not blocks:
        raise error(f"{what}: no PEM block found (expected {wanted})")
    if len(blocks) > 1:
        found = ", ".join(block.label for block in blocks)
        raise error(f"{what}: expected exactly one PEM block, found {len(blocks)} ({found})")
    block = blocks[0]
    if block.label not in labels:
        raise error(f"{what}: expected a PEM {wanted} block, found {block.label}")
    return block


def write_block(label: str, der: bytes) -> bytes:
    """Encode one PEM block with 64-column lines, as Go's ``pem.Encode`` does."""
    encoded = base64.b64encode(der).decode("ascii")
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return (
        f"-----BEGIN {label}-----\n"
        + "".join(f"{ln}\n" for ln in lines)
        + f"-----END {label}-----\n"
    ).encode("ascii")
