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
        # Only port 443 is the port of a host written without one.
        ("registry.example.com/release/**", "registry.example.com:4443/release/app"),
        ("registry.example.com:443/**", "registry.example.com:8443/app"),
        # Docker Hub's hosts are Docker Hub's only as hosts, not inside another name or port.
        ("docker.io/**", "docker.io.evil.example/library/nginx"),
        ("docker.io/**", "evil.example/docker.io/nginx"),
        ("nginx", "registry-1.docker.io:5000/library/nginx"),
        ("registry-1.docker.io/**", "registry-2.docker.io/library/nginx"),
    ],
)
def test_pattern_does_not_match(pattern: str, image: str) -> None:
    assert not governs(pattern, image)


# Issue 15: a host written with ":443", or one of Docker Hub's hosts, is the registry the kubelet
# pulls from when the host is written without the port, or as docker.io; a pattern for one
# spelling governs every other, in both directions, so no spelling escapes a policy.


@pytest.mark.parametrize(
    ("pattern", "image"),
    [
        ("registry.example.com/release/**", "registry.example.com:443/release/app"),
        ("registry.example.com:443/release/**", "registry.example.com/release/app"),
        ("*.trusted.example/**", "a.trusted.example:443/app"),
        ("*.trusted.example:443/**", "a.trusted.example/app"),
        ("[::1]/**", "[::1]:443/app"),
        ("registry.example.com/release/app", "registry.example.com:443/release/app:v1"),
    ],
)
def test_port_443_is_the_host_without_a_port(pattern: str, image: str) -> None:
    assert governs(pattern, image)


HUB_SPELLINGS = [
    "nginx",
    "library/nginx",
    "docker.io/nginx",
    "docker.io/library/nginx",
    "index.docker.io/nginx",
    "index.docker.io/library/nginx",
    "docker.io:443/library/nginx",
    "index.docker.io:443/library/nginx",
    "registry-1.docker.io/library/nginx",
    "registry-1.docker.io:443/library/nginx",
    "registry.hub.docker.com/library/nginx:1.27",
    "registry.hub.docker.com:443/library/nginx",
]


@pytest.mark.parametrize("image", HUB_SPELLINGS)
@pytest.mark.parametrize(
    "pattern",
    [
        "nginx",
        "docker.io/library/nginx",
        "index.docker.io/library/nginx",
        "index.docker.io/nginx",
        "registry-1.docker.io/library/nginx",
        "registry-1.docker.io/nginx",
        "docker.io:443/library/*",
        "registry.hub.docker.com/**",
        "*.docker.io/library/**",
    ],
)
def test_every_docker_hub_host_is_docker_hub(pattern: str, image: str) -> None:
    assert governs(pattern, image)


def test_an_excluded_hub_image_stays_excluded_under_another_host() -> None:
    excluded = compile_pattern("docker.io/library/busybox")
    assert excluded.matches(parse_reference("registry-1.docker.io/library/busybox").name)
    assert not excluded.matches(parse_reference("registry-1.docker.io/library/nginx").name)


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
        # A host no reference may be written with: the pattern would govern nothing.
        ("registry.example.com:0443/**", "leading zeros"),
        ("[0:0::1]:5000/**", "RFC 5952"),
        ("127.1:5000/**", "not an IPv4 address"),
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
