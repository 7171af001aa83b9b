"""The admission edge: from an AdmissionReview to its answer.

`review` parses the request (strict JSON, pydantic) and builds the response; `images` finds every
image field of every workload kind, with its JSON `pointer`; `decide` (`decide_review`) runs the
engine on them under one deadline and answers allow, deny with a message, or allow with the
pinning `patch`; `server` is the HTTPS webhook (``/validate``, ``/mutate``, health, metrics) and
`metrics` its Prometheus metrics. Everything but `decide`, `server` and `metrics` is pure.
"""

from signgate.admission.images import (
    SUPPORTED_KINDS,
    ImageField,
    ImageRole,
    changed_fields,
    extract_images,
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
    "changed_fields",
    "extract_images",
    "json_pointer",
    "parse_review",
    "pin_patch",
    "review_response",
    "split_pointer",
]
