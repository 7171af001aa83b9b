"""JSON Pointers (RFC 6901) and the image-pinning JSONPatch (RFC 6902) of the mutating webhook.

The mutating webhook rewrites ``nginx:1.27`` to ``nginx:1.27@sha256:…``: the kubelet then pulls
exactly the manifest that was verified (a tag can move between admission and pull), and people
still see the tag. Only ``replace`` operations are ever produced, so `apply_patch` implements only
``replace``: the server uses it to check, before answering, that the patch lands where intended.

No I/O happens in this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from signgate.errors import PatchError, truncate
from signgate.reference import parse_digest

if TYPE_CHECKING:
    from signgate.admission.images import ImageField

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


def pin_patch(fields: Sequence[ImageField], digests: Mapping[str, str]) -> list[dict[str, object]]:
    """JSONPatch operations that pin each unpinned image to its verified digest.

    A field whose image already carries a digest (``@``) gets no operation, so the patch is
    idempotent under webhook reinvocation; so does a field whose image is not in ``digests``.

    On UPDATE, pass only the fields whose image is new (`new_images`): rewriting an unchanged
    image of a running Pod restarts its container, and of a workload template starts a rollout.

    Args:
        fields: from `extract_images` of the same request.
        digests: image string (exactly as in the object) to ``sha256:<64 hex>``.

    Returns:
        ``[{"op": "replace", "path": pointer, "value": "image@sha256:…"}, ...]`` in field order.

    Raises:
        InvalidReferenceError: a digest in ``digests`` is not a sha256 digest.
    """
    ops: list[dict[str, object]] = []
    for field in fields:
        if "@" in field.image or field.image not in digests:
            continue
        digest = parse_digest(digests[field.image])
        ops.append({"op": "replace", "path": field.pointer, "value": f"{field.image}@{digest}"})
    return ops


def _index(container: list[Any], segment: str, pointer: str) -> int:
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


def _replace(document: Any, tokens: list[str], value: object, pointer: str) -> Any:
    """A copy of ``document`` with the value at ``tokens`` replaced; only the path is copied."""
    # Walk down, copying each container on the path, then set the value in the last copy.
    root: Any = value if not tokens else _copy(document, pointer)
    node = root
    for depth, token in enumerate(tokens):
        last = depth == len(tokens) - 1
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {truncate(pointer, 120)!r} does not exist")
            key: str | int = token
        else:
            key = _index(node, token, pointer)
        child = value if last else _copy(node[key], pointer)
        node[key] = child
        node = child
    return root


def _copy(node: Any, pointer: str) -> Any:
    if isinstance(node, dict):
        return dict(node)
    if isinstance(node, list):
        return list(node)
    raise PatchError(f"path {truncate(pointer, 120)!r} goes through a scalar")


def apply_patch(obj: Mapping[str, Any], patch: Sequence[Mapping[str, object]]) -> dict[str, Any]:
    """Apply a JSONPatch made only of ``replace`` operations.

    ``obj`` is not modified; the result shares every subtree the patch does not touch.

    Raises:
        PatchError: an operation other than ``replace``, a missing ``path`` or ``value``, or a
            path that does not exist in the object (RFC 6902 requires it for ``replace``).
    """
    result: Any = dict(obj)
    for number, op in enumerate(patch):
        if op.get("op") != "replace":
            raise PatchError(f"patch operation {number}: only 'replace' is supported")
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"patch operation {number}: 'path' must be a string")
        if "value" not in op:
            raise PatchError(f"patch operation {number}: 'value' is missing")
        result = _replace(result, split_pointer(path), op["value"], path)
    if not isinstance(result, dict):
        raise PatchError("the patch replaces the whole document with something not an object")
    return result
