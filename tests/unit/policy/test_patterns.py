"""Image patterns are anchored, host and path matched separately."""

from __future__ import annotations

import pytest

from signgate.errors import PolicyError
from signgate.policy.patterns import compile_pattern
from signgate.reference import parse_reference


def governs(pattern: str, image: str) -> bool:
    return compile_pattern(pattern).matches(parse_reference(image).name)


@pytest.mark.parametrize(
    ("pattern", "image"),
    [
        ("registry.example.com/release/**", "registry.example.com/release/app:v1"),
        ("registry.example.com/release/**", "registry.example.com/release/a/b/c"),
        ("registry.example.com/release/**", "registry.example.com/release"),
        ("*.trusted.example/**", "a.trusted.example/app"),
        ("nginx", "nginx:1.27"),
        ("nginx", "docker.io/library/nginx"),
        ("docker.io/library/*", "redis"),
        ("myorg/*", "docker.io/myorg/app"),
        ("**", "anything.example/x/y"),
        ("**", "nginx"),
        ("127.0.0.1:5000/**", "127.0.0.1:5000/app"),
        ("[::1]:5000/app", "[::1]:5000/app:v1"),
        ("ghcr.io/org/app-*", "ghcr.io/org/app-frontend"),
        ("ghcr.io/**/base", "ghcr.io/a/b/base"),
        ("ghcr.io/**/base", "ghcr.io/base"),
        ("ghcr.io/a/**/z", "ghcr.io/a/z"),
    ],
)
def test_pattern_matches(pattern: str, image: str) -> None:
    assert governs(pattern, image)


@pytest.mark.parametrize(
    ("pattern", "image"),
    [
        # The attack this module exists to stop: the trusted name hidden in the path.
        ("*.trusted.example/**", "evil.example/x.trusted.example/app"),
        ("*.trusted.example/**", "a.b.trusted.example/app"),
        ("*.trusted.example/**", "trusted.example.evil.example/app"),
        ("*.trusted.example/**", "a.trusted.example:5000/app"),
        ("registry.example.com/release/**", "registry.example.com/releases/app"),
        ("registry.example.com/release/**", "registry.example.com:443/release/app"),
        ("registry.example.com/release/**", "evil.com/registry.example.com/release/app"),
        ("nginx", "docker.io/evil/nginx"),
        ("nginx", "ghcr.io/library/nginx"),
        ("docker.io/library/*", "docker.io/library/a/b"),
        ("myorg/*", "ghcr.io/myorg/app"),
        ("ghcr.io/org/app", "ghcr.io/org/app2"),
        ("ghcr.io/org/app", "ghcr.io/org/app/sub"),
        ("127.0.0.1:5000/**", "127.0.0.1:50000/app"),
        ("127.0.0.1/**", "127.0.0.1:5000/app"),
        ("ghcr.io/a.b/**", "ghcr.io/axb/c"),
    ],
)
def test_pattern_does_not_match(pattern: str, image: str) -> None:
    assert not governs(pattern, image)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("ghcr.io/app:v1", "not tags"),
        ("ghcr.io/app@sha256:" + "a" * 64, "not digests"),
        ("GHCR.io/app", "lowercase"),
        ("**.example.com/app", "not allowed in the registry host"),
        ("ghcr.io/a**/b", "whole path segment"),
        ("ghcr.io//b", "empty path segment"),
        ("ghcr.io/a b", "whitespace"[:0] or "may contain only"),
        ("", "empty"),
        ("ghcr.io/(a|b)", "may contain only"),
    ],
)
def test_bad_patterns_are_policy_errors(pattern: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(")):
        compile_pattern(pattern)


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/org/../evil/app",  # traversal-like segments are not repository names
        "ghcr.io/org/./app",
        "ghcr.io//org/app",
        "ghcr.io/org/app/",
        "ghcr.io/Org/app",  # upper case is not a repository name (a host may be, in any case)
        "[::1/app",
        "ghcr.io:notaport/app",
        "ghcr.io/org/app:tag:other",
        "ghcr.io/org/app@sha256:short",
        "ghcr.io/org%2Fapp",
    ],
)
def test_references_that_could_smuggle_a_name_are_invalid(image: str) -> None:
    # An unparseable reference is denied before any pattern is consulted (see verifier.py), so
    # none of these can be matched by a pattern for another repository.
    from signgate.errors import InvalidReferenceError

    with pytest.raises(InvalidReferenceError):
        parse_reference(image)
