"""Image references parse and normalise like distribution/reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signgate.errors import InvalidReferenceError
from signgate.reference import digest_of, parse_digest, parse_reference

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("library/nginx", "docker.io", "library/nginx", "latest", None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/library/nginx", "docker.io", "library/nginx", "latest", None),
        ("ghcr.io/org/app:v1", "ghcr.io", "org/app", "v1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/app", "localhost:5000", "app", "latest", None),
        ("127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000", "a/b/c", "v1", None),
        ("[::1]:5000/app:v1", "[::1]:5000", "app", "v1", None),
        ("[fe80::1]/app", "[fe80::1]", "app", "latest", None),
        (f"ghcr.io/org/app@{D}", "ghcr.io", "org/app", None, D),
        (f"ghcr.io/org/app:v1@{D}", "ghcr.io", "org/app", "v1", D),
        ("Registry.Example.com/app", "registry.example.com", "app", "latest", None),
        ("a.b/c__d/e-f/g.h_i:T_a.g-1", "a.b", "c__d/e-f/g.h_i", "T_a.g-1", None),
    ],
)
def test_references_normalise_like_docker(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("NGINX", "lowercase"),
        ("docker.io/Library/nginx", "lowercase"),
        ("ghcr.io/org/App:v1", "lowercase"),
        ("nginx:", "invalid tag"),
        ("nginx:-bad", "invalid tag"),
        ("nginx:" + "a" * 129, "invalid tag"),
        ("nginx@sha256:abc", "digest"),
        ("nginx@md5:" + "a" * 32, "unsupported digest algorithm"),
        (f"nginx@{D.upper()}", "unsupported digest algorithm 'SHA256'"),
        ("nginx@sha256", "not a digest"),
        ("nginx@sha256:" + "A" * 64, "lowercase hex"),
        ("ghcr.io//app", "path component"),
        ("ghcr.io/app/", "path component"),
        ("ghcr.io/a..b", "path component"),
        ("ghcr.io/-a", "path component"),
        ("ghcr.io:port/app", "registry host"),
        ("-bad.example/app", "registry host"),
        ("nginx latest", "whitespace"),
        (" nginx", "whitespace"),
        (f"a@{D}@{D}", "more than one '@'"),
        ("example.com/" + "a" * 300, "longer than 255"),
        ("ghcr.io/../etc/passwd", "path component"),
    ],
)
def test_invalid_references_are_rejected_with_the_rule(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    assert message in str(info.value)
    assert "invalid image reference" in str(info.value)


@pytest.mark.parametrize(
    "text", ["S/y", f"librYry/nginx@{D}", "MyRegistry/team/app:v1", "[ABC]/app"]
)
def test_a_host_made_only_by_uppercase_letters_is_refused(text: str) -> None:
    # Found by scripts/fuzz: distribution reads "MyRegistry/app" as the registry host MyRegistry,
    # but its normalised form myregistry/app is Docker Hub's, where signatures were then sought.
    with pytest.raises(InvalidReferenceError, match=r"needs a '\.' or a port"):
        parse_reference(text)
    assert parse_reference("LOCALHOST/app").name == "localhost/app"


def test_reference_renders_and_pins() -> None:
    ref = parse_reference("nginx:1.27")
    assert str(ref) == "docker.io/library/nginx:1.27"
    assert ref.api_host == "registry-1.docker.io"
    pinned = ref.with_digest(parse_digest(D))
    assert pinned.pinned == f"docker.io/library/nginx@{D}"
    assert str(pinned) == f"docker.io/library/nginx:1.27@{D}"
    with pytest.raises(ValueError, match="no digest"):
        _ = ref.pinned


def test_ipv6_hostname_strips_brackets_and_port() -> None:
    assert parse_reference("[::1]:5000/app").hostname == "::1"
    assert parse_reference("127.0.0.1:5000/app").hostname == "127.0.0.1"
    assert parse_reference("ghcr.io/app").hostname == "ghcr.io"


def test_digest_of_matches_sha256() -> None:
    assert digest_of(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@given(st.text(max_size=300))
def test_parser_never_raises_anything_but_invalid_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReferenceError:
        return
    # Whatever parses round-trips to a reference that parses to itself.
    assert parse_reference(str(ref)) == ref


@given(
    st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,2}(:[0-9]{1,5})?", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
def test_valid_references_round_trip(host: str, path: str, tag: str) -> None:
    ref = parse_reference(f"{host}/{path}:{tag}")
    assert parse_reference(str(ref)) == ref
    assert ref.tag == tag
