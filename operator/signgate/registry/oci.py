"""OCI and Docker manifests, indexes and descriptors, parsed strictly enough to be safe.

Only the fields signgate reads are modelled; unknown fields are tolerated and ignored (registries
and signers add their own). Every count is capped so that a hostile manifest costs bounded work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from signgate.errors import InvalidReferenceError, MalformedResponseError
from signgate.reference import Digest, parse_digest
from signgate.strictjson import loads

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ALL_MANIFEST_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

MAX_ANNOTATIONS = 64
MAX_ANNOTATION_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A content descriptor: what a manifest says about a blob or another manifest."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """An image manifest (OCI or Docker schema 2), with the exact bytes it was parsed from."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: Mapping[str, str]
    raw: bytes
    digest: Digest


@dataclass(frozen=True, slots=True)
class Index:
    """An image index or manifest list: the children it names."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes


def _fail(what: str, reason: str) -> MalformedResponseError:
    return MalformedResponseError(f"malformed {what}: {reason}")


def _strict_json(raw: bytes, what: str) -> dict[str, Any]:
    value = loads(raw, what=what, error=MalformedResponseError)
    if not isinstance(value, dict):
        raise _fail(what, "top level is not a JSON object")
    return value


def _str(obj: Mapping[str, Any], key: str, what: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(what, f"{key!r} must be a non-empty string")
    return value


def _annotations(obj: Mapping[str, Any], what: str) -> dict[str, str]:
    value = obj.get("annotations")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(what, "'annotations' must be an object")
    if len(value) > MAX_ANNOTATIONS:
        raise _fail(what, f"more than {MAX_ANNOTATIONS} annotations")
    total = 0
    for key, item in value.items():
        if not isinstance(item, str):
            raise _fail(what, f"annotation {key!r} is not a string")
        total += len(key) + len(item)
    if total > MAX_ANNOTATION_BYTES:
        raise _fail(what, f"annotations larger than {MAX_ANNOTATION_BYTES} bytes")
    return dict(value)


def parse_descriptor(obj: object, what: str = "descriptor") -> Descriptor:
    """Parse one descriptor object.

    Raises:
        MalformedResponseError: a required field is missing or of the wrong type.
    """
    if not isinstance(obj, dict):
        raise _fail(what, "not an object")
    media_type = _str(obj, "mediaType", what)
    digest_text = _str(obj, "digest", what)
    if media_type is None or digest_text is None:  # unreachable: both are required=True
        raise _fail(what, "missing mediaType or digest")
    try:
        digest = parse_digest(digest_text)
    except InvalidReferenceError as exc:
        raise _fail(what, exc.reason) from exc
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _fail(what, "'size' must be a non-negative integer")
    artifact_type = _str(obj, "artifactType", what, required=False)
    return Descriptor(media_type, digest, size, _annotations(obj, what), artifact_type)


def parse_manifest(raw: bytes, digest: Digest, *, max_layers: int) -> Manifest:
    """Parse an image manifest; ``digest`` must already have been checked against ``raw``.

    Raises:
        MalformedResponseError: not an OCI/Docker image manifest, or over ``max_layers`` layers.
    """
    what = f"manifest {digest}"
    obj = _strict_json(raw, what)
    if obj.get("schemaVersion") != 2:
        raise _fail(what, "schemaVersion is not 2")
    media_type = obj.get("mediaType", OCI_MANIFEST)
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise _fail(what, f"media type {media_type!r} is not an image manifest")
    layers_obj = obj.get("layers")
    if not isinstance(layers_obj, list):
        raise _fail(what, "'layers' must be a list")
    if len(layers_obj) > max_layers:
        raise _fail(what, f"{len(layers_obj)} layers (limit {max_layers})")
    subject_obj = obj.get("subject")
    return Manifest(
        media_type=media_type,
        config=parse_descriptor(obj.get("config"), f"{what} config"),
        layers=tuple(parse_descriptor(item, f"{what} layer") for item in layers_obj),
        subject=None if subject_obj is None else parse_descriptor(subject_obj, f"{what} subject"),
        artifact_type=_str(obj, "artifactType", what, required=False),
        annotations=_annotations(obj, what),
        raw=raw,
        digest=digest,
    )


def parse_index(raw: bytes, what: str, *, max_manifests: int) -> Index:
    """Parse an image index (also a referrers response or a fallback referrers tag).

    Raises:
        MalformedResponseError: not an index, or more than ``max_manifests`` entries.
    """
    obj = _strict_json(raw, what)
    if obj.get("schemaVersion") != 2:
        raise _fail(what, "schemaVersion is not 2")
    media_type = obj.get("mediaType", OCI_INDEX)
    if media_type not in INDEX_MEDIA_TYPES:
        raise _fail(what, f"media type {media_type!r} is not an index")
    items = obj.get("manifests")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise _fail(what, "'manifests' must be a list")
    if len(items) > max_manifests:
        raise _fail(what, f"{len(items)} entries (limit {max_manifests})")
    return Index(media_type, tuple(parse_descriptor(item, f"{what} entry") for item in items), raw)


def media_type_of(raw: bytes) -> str | None:
    """The ``mediaType`` a manifest declares, or None if it declares none or does not parse."""
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    value = obj.get("mediaType") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None
