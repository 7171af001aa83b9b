"""The image-pinning JSONPatch (RFC 6902) of the mutating webhook.

The mutating webhook rewrites ``nginx:1.27`` to ``nginx:1.27@sha256:…``: the kubelet then pulls
exactly the manifest that was verified (a tag can move between admission and pull), and people
still see the tag. Only ``replace`` operations are ever produced, so `apply_patch` implements only
``replace``: the server uses it to check, before answering, that the patch lands where intended.

No I/O happens in this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from signgate.admission.images import ImageField
from signgate.admission.pointer import array_index, split_pointer
from signgate.errors import PatchError, truncate
from signgate.reference import parse_digest


def pin_patch(fields: Sequence[ImageField], digests: Mapping[str, str]) -> list[dict[str, object]]:
    """JSONPatch operations that pin each unpinned image to its verified digest.

    A field whose image already carries a digest (``@``) gets no operation, so the patch is
    idempotent under webhook reinvocation; so does a field whose image is not in ``digests``.

    On UPDATE, pass only the fields whose image changed (`changed_fields`): rewriting an unchanged
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
            key = array_index(node, token, pointer)
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
