"""Image references (`signgate.reference`) and the image patterns policies match them with.

Every image string of every admitted object goes through `parse_reference`; its output is what
policy patterns are matched against, so besides "only InvalidReferenceError" this checks that
normalisation is idempotent and that a host wildcard never matches across a '.', ':' or '/'.
"""

from __future__ import annotations

import re

from fuzz.harness import refused, text
from signgate.errors import InvalidReferenceError
from signgate.policy.patterns import compile_pattern
from signgate.reference import parse_digest, parse_reference

ACCEPTED: tuple[type[Exception], ...] = (InvalidReferenceError,)

_PATTERNS = [
    compile_pattern(p)
    for p in (
        "**",
        "nginx",
        "*.trusted.example/**",
        "registry.example.com/release/**",
        "localhost:5000/*/app",
        "[::1]:5000/**",
        "docker.io/library/*",
    )
]
_ONE_LABEL = re.compile(r"[a-z0-9-]*\.trusted\.example")


def run(data: bytes) -> None:
    value = text(data)
    with refused(*ACCEPTED):
        parse_digest(value)
    ref = parse_reference(value)
    assert parse_reference(str(ref)) == ref, f"{value!r} -> {ref} does not parse back to itself"
    assert ref.tag is not None or ref.digest is not None
    _ = ref.api_host, ref.hostname
    if ref.digest is not None:
        _ = ref.pinned
    for pattern in _PATTERNS:
        if pattern.matches(ref.name) and pattern.text == "*.trusted.example/**":
            assert _ONE_LABEL.fullmatch(ref.registry), f"{ref.name} matched {pattern.text}"
