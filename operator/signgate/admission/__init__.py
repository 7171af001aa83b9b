"""The admission edge: AdmissionReview parsing, image extraction, the pinning JSONPatch.

Everything here is pure (no I/O); the aiohttp server and the verification engine build on it.
"""

from signgate.admission.images import (
    SUPPORTED_KINDS,
    ImageField,
    ImageRole,
    extract_images,
    new_images,
)
from signgate.admission.patch import apply_patch, pin_patch
from signgate.admission.pointer import json_pointer, split_pointer
from signgate.admission.review import (
    MAX_REVIEW_BYTES,
    AdmissionRequest,
    AdmissionReview,
    GroupVersionKind,
    GroupVersionResource,
    Operation,
    parse_review,
    review_response,
)

__all__ = [
    "MAX_REVIEW_BYTES",
    "SUPPORTED_KINDS",
    "AdmissionRequest",
    "AdmissionReview",
    "GroupVersionKind",
    "GroupVersionResource",
    "ImageField",
    "ImageRole",
    "Operation",
    "apply_patch",
    "extract_images",
    "json_pointer",
    "new_images",
    "parse_review",
    "pin_patch",
    "review_response",
    "split_pointer",
]
