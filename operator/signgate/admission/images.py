"""Every image an admitted object would run, with a JSON Pointer to where it is written.

Each workload kind embeds a Pod spec at a known place; from it we read every field that names an
image: ``containers``, ``initContainers`` (sidecars included), ``ephemeralContainers`` (``kubectl
debug``, via the ``pods/ephemeralcontainers`` subresource, whose object is the whole Pod) and
image volumes (``volumes[].image.reference``, Kubernetes 1.31+). Ephemeral containers and image
UPDATEs are known bypass routes of admission controllers, so they are read on every request.

This module fails closed. A kind it does not know, an object it cannot read, or a container
whose image is not a string raises `AdmissionRequestError`: "no images found" must only ever mean
"this object runs nothing", never "we did not understand it". Absent or ``null`` optional lists
are empty (the apiserver writes ``"containers": null`` for an empty template).

No I/O happens in this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from signgate.admission.pointer import json_pointer
from signgate.admission.review import AdmissionRequest, JsonObject
from signgate.errors import AdmissionRequestError, truncate

ImageRole = Literal["container", "initContainer", "ephemeralContainer", "imageVolume"]

_CONTAINER_LISTS: tuple[tuple[str, ImageRole], ...] = (
    ("containers", "container"),
    ("initContainers", "initContainer"),
    ("ephemeralContainers", "ephemeralContainer"),
)

# (API group, kind) -> path from the object to the object holding the Pod spec (its "template").
# Any version of the group is accepted, so `matchPolicy: Equivalent` conversions are read too.
_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (),
    ("", "PodTemplate"): ("template",),
    ("", "ReplicationController"): ("spec", "template"),
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}

SUPPORTED_KINDS: frozenset[tuple[str, str]] = frozenset(_TEMPLATES)
"""The (API group, kind) pairs `extract_images` can read."""


@dataclass(frozen=True, slots=True)
class ImageField:
    """One image string in the admitted object.

    Attributes:
        image: the string exactly as written (``nginx:1.27``); not normalised.
        pointer: RFC 6901 pointer to it inside ``request.object``
            (``/spec/template/spec/containers/0/image``).
        container: the container's name, or the volume's for an image volume; ``containers[2]``
            style when the object gives no usable name.
        role: which list the image came from.
    """

    image: str
    pointer: str
    container: str
    role: ImageRole


def _where(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return truncate(text or "object", 160)


def _kind_of(request: AdmissionRequest) -> tuple[str, ...]:
    group, kind = request.kind.group, request.kind.kind
    template = _TEMPLATES.get((group, kind))
    if template is None:
        gvk = f"{group}/{request.kind.version}" if group else request.kind.version
        raise AdmissionRequestError(
            f"cannot read the images of kind {truncate(kind, 64)!r} ({truncate(gvk, 64)}); "
            "signgate does not admit what it cannot inspect"
        )
    if request.sub_resource == "ephemeralcontainers" and kind != "Pod":
        raise AdmissionRequestError(
            f"subresource 'ephemeralcontainers' of kind {truncate(kind, 64)!r} is not a Pod"
        )
    return template


def _optional_list(spec: JsonObject, key: str, path: list[str | int]) -> list[Any]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise AdmissionRequestError(f"{_where([*path, key])} is not a list")
    return value


def _name(item: JsonObject, key: str, index: int) -> str:
    name = item.get("name")
    return name if isinstance(name, str) and name else f"{key}[{index}]"


def _image(value: object, where: str) -> str:
    if value is None:
        raise AdmissionRequestError(f"{where} has no image")
    if not isinstance(value, str):
        raise AdmissionRequestError(f"{where}: image is not a string")
    if not value:
        raise AdmissionRequestError(f"{where} has an empty image")
    return value


def _pod_spec_images(spec: JsonObject, path: list[str | int]) -> list[ImageField]:
    fields: list[ImageField] = []
    if "containers" not in spec:
        # The apiserver always writes the key (null when empty); a missing one is not a Pod spec.
        raise AdmissionRequestError(f"{_where(path)} has no containers field")
    for key, role in _CONTAINER_LISTS:
        for index, item in enumerate(_optional_list(spec, key, path)):
            item_path = [*path, key, index]
            if not isinstance(item, dict):
                raise AdmissionRequestError(f"{_where(item_path)} is not an object")
            name = _name(item, key, index)
            image = _image(item.get("image"), f"{role} {truncate(name, 64)!r}")
            fields.append(ImageField(image, json_pointer([*item_path, "image"]), name, role))
    for index, volume in enumerate(_optional_list(spec, "volumes", path)):
        item_path = [*path, "volumes", index]
        if not isinstance(volume, dict):
            raise AdmissionRequestError(f"{_where(item_path)} is not an object")
        source = volume.get("image")
        if source is None:
            continue  # some other volume type
        name = _name(volume, "volumes", index)
        where = f"image volume {truncate(name, 64)!r}"
        if not isinstance(source, dict):
            raise AdmissionRequestError(f"{where}: image is not an object")
        reference = _image(source.get("reference"), where)
        pointer = json_pointer([*item_path, "image", "reference"])
        fields.append(ImageField(reference, pointer, name, "imageVolume"))
    return fields


def _images_in(obj: JsonObject, template_path: tuple[str, ...]) -> list[ImageField]:
    node: Any = obj
    path: list[str | int] = []
    for key in template_path:
        node = node.get(key)
        path.append(key)
        if node is None:
            return []  # no template yet: a workload that runs nothing
        if not isinstance(node, dict):
            raise AdmissionRequestError(f"{_where(path)} is not an object")
    # The template exists, so it must say what it runs.
    spec = node.get("spec")
    if spec is None:
        raise AdmissionRequestError(f"{_where(path)} has no spec")
    path.append("spec")
    if not isinstance(spec, dict):
        raise AdmissionRequestError(f"{_where(path)} is not an object")
    return _pod_spec_images(spec, path)


def _check_object(obj: JsonObject | None, request: AdmissionRequest, which: str) -> JsonObject:
    if obj is None:
        raise AdmissionRequestError(f"{request.operation} request has no {which}")
    kind = obj.get("kind")
    # Objects in reviews carry their kind; one that contradicts request.kind is not what we think.
    if kind is not None and kind != request.kind.kind:
        shown = truncate(kind, 64) if isinstance(kind, str) else "a non-string"
        raise AdmissionRequestError(
            f"{which} has kind {shown!r} but the request is for {request.kind.kind!r}"
        )
    return obj


def extract_images(request: AdmissionRequest) -> list[ImageField]:
    """Every image the admitted object would run, in document order.

    DELETE and CONNECT run nothing and give ``[]``. A workload without a Pod template yet gives
    ``[]``. Otherwise every container, init container, ephemeral container and image volume is
    listed, whatever the subresource (``pods/ephemeralcontainers`` carries the whole Pod).

    Raises:
        AdmissionRequestError: a kind signgate cannot read, no ``object`` on CREATE/UPDATE, an
            object whose kind contradicts the request, a malformed Pod spec, or a container
            whose image is missing or not a string (the message names the container).
    """
    if request.operation in ("DELETE", "CONNECT"):
        return []
    template = _kind_of(request)
    obj = _check_object(request.object, request, "object")
    return _images_in(obj, template)


def changed_fields(request: AdmissionRequest, fields: Sequence[ImageField]) -> list[ImageField]:
    """The fields of ``fields`` whose container (or image volume) did not run that image before.

    On UPDATE these are the images that must be verified (and pinned); on CREATE every field is
    new. Containers are compared one by one, by list and name: a container whose image string did
    not change stays exempt (an UPDATE that removes a finalizer from an old Pod must not depend
    on the registry), and every other container is checked whatever its neighbours ran — the same
    string in another container is no evidence (issue 15: ``kubectl set image`` adding an
    unpinned tag that another container held would otherwise skip verification after the tag
    moved). When the old object cannot be read, every field is new (fail closed).

    Args:
        request: the request ``fields`` were extracted from.
        fields: `extract_images` of ``request``.
    """
    if request.operation != "UPDATE" or request.old_object is None:
        return list(fields)
    try:
        template = _kind_of(request)
        old = _images_in(_check_object(request.old_object, request, "oldObject"), template)
    except AdmissionRequestError:
        return list(fields)
    before = {(f.role, f.container): f.image for f in old}
    return [f for f in fields if before.get((f.role, f.container)) != f.image]


def pod_spec_of(request: AdmissionRequest) -> Mapping[str, Any] | None:
    """The Pod spec inside the admitted object (for imagePullSecrets), or None if there is none.

    Never raises: whatever cannot be read here has already been refused by `extract_images`.
    """
    template = _TEMPLATES.get((request.kind.group, request.kind.kind))
    node: Any = request.object
    if template is None or not isinstance(node, dict):
        return None
    for key in (*template, "spec"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None
