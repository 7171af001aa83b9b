"""The admission edge: AdmissionReview parsing, image extraction, the pinning patch, the response.

The body is whatever reaches ``POST /validate``; everything up to the decision must either work
or raise `AdmissionRequestError` (which the server turns into an HTTP 400 or a denial). When it
works, every extracted pointer must lead to the image it names, and pinning every image must
give an object whose images are all pinned.
"""

from __future__ import annotations

from typing import Any

from signgate.admission import (
    apply_patch,
    changed_fields,
    extract_images,
    parse_review,
    pin_patch,
    review_response,
    split_pointer,
)
from signgate.admission.images import pod_spec_of
from signgate.errors import AdmissionRequestError

ACCEPTED: tuple[type[Exception], ...] = (AdmissionRequestError,)

_DIGEST = "sha256:" + "ab" * 32


def run(data: bytes) -> None:
    request = parse_review(data).request
    pod_spec_of(request)
    fields = extract_images(request)
    new = changed_fields(request, fields)
    assert all(field in fields for field in new)
    if not fields:
        return
    assert request.object is not None
    for field in fields:
        node: Any = request.object
        for token in split_pointer(field.pointer):
            node = node[int(token)] if isinstance(node, list) else node[token]
        assert node == field.image, f"{field.pointer} is {node!r}, not {field.image!r}"
    patch = pin_patch(fields, {f.image: _DIGEST for f in fields})
    patched = apply_patch(request.object, patch)
    repinned = extract_images(request.model_copy(update={"object": patched}))
    assert all("@" in f.image for f in repinned), "an image is still unpinned after the patch"
    review_response(request.uid, allowed=True, patch=patch)
    review_response(request.uid, allowed=False, message=[f.image for f in fields])
