"""JSON Pointers (RFC 6901): where an image sits in an object, and where a patch writes.

Its own module because both sides need it: image extraction records each image's pointer, and the
pinning patch writes to it (and checks it lands there). No I/O happens in this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from signgate.errors import PatchError, truncate

_BAD_ESCAPE = re.compile(r"~(?![01])")
_INDEX = re.compile(r"0|[1-9][0-9]*")


def json_pointer(tokens: Iterable[str | int]) -> str:
    """The RFC 6901 pointer to ``tokens`` (``~`` becomes ``~0``, then ``/`` becomes ``~1``)."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def split_pointer(pointer: str) -> list[str]:
    """The reference tokens of an RFC 6901 pointer (``""`` is the whole document).

    Raises:
        PatchError: the pointer is neither empty nor starts with ``/``, or has a bad ``~`` escape.
    """
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {truncate(pointer, 120)!r} does not start with '/'")
    # RFC 6901 section 3: '~' may only be followed by '0' or '1'.
    if _BAD_ESCAPE.search(pointer):
        raise PatchError(f"JSON pointer {truncate(pointer, 120)!r} has a bad '~' escape")
    # Section 4: '~1' first, then '~0', so that '~01' decodes to '~1'.
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def array_index(container: list[Any], segment: str, pointer: str) -> int:
    """The existing element of ``container`` that ``segment`` of ``pointer`` names.

    Raises:
        PatchError: not a decimal index without leading zeros, or out of range.
    """
    # RFC 6901 section 4: array indexes are decimal without leading zeros; "-" (past the end)
    # names no existing element, so it cannot be replaced.
    if not _INDEX.fullmatch(segment):
        raise PatchError(
            f"path {truncate(pointer, 120)!r}: {truncate(segment, 40)!r} is not an index"
        )
    index = int(segment) if len(segment) <= 18 else len(container)
    if index >= len(container):
        raise PatchError(
            f"path {truncate(pointer, 120)!r}: index {truncate(segment, 40)} is out of range"
        )
    return index
