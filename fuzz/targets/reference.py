"""Image references (`signgate.reference`) and the image patterns policies match them with.

Every image string of every admitted object goes through `parse_reference`; its output is what
policy patterns are matched against, so besides "only InvalidReferenceError" this checks that
normalisation is idempotent, that a host wildcard never matches across a '.', ':' or '/', and that
every spelling of a reference's registry (``:443``, Docker Hub's hosts) is governed alike.
"""

from __future__ import annotations

import re

from fuzz.harness import refused, text
from signgate.errors import InvalidReferenceError
from signgate.policy.patterns import compile_pattern
from signgate.reference import host_spellings, parse_digest, parse_reference

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
        "registry-1.docker.io/**",
        "registry.example.com:443/release/*",
        "*.docker.io/library/**",
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
    governed = {pattern.text for pattern in _PATTERNS if pattern.matches(ref.name)}
    if "*.trusted.example/**" in governed:
        host = ref.registry.removesuffix(":443")  # the same host to containerd
        assert _ONE_LABEL.fullmatch(host), f"{ref.name} matched *.trusted.example/**"
    for spelling in host_spellings(ref.registry):
        # Not parsed again: "host:443/app" has the spelling "host/app", which a reference can only
        # write for a host with a '.' (or it is Docker Hub's host/app).
        name = f"{spelling}/{ref.repository}"
        again = {pattern.text for pattern in _PATTERNS if pattern.matches(name)}
        assert again == governed, f"{ref.name} is governed by {governed}, {name} by {again}"
