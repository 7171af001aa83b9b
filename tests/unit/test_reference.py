"""Image references parse and normalise like distribution/reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signgate.errors import InvalidReferenceError
from signgate.reference import (
    DOCKER_HUB_HOSTS,
    digest_of,
    host_spellings,
    parse_digest,
    parse_reference,
    split_port,
)

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
        ("a.b/c__d/e-f/g.h_i:T_a.g-1", "a.b", "c__d/e-f/g.h_i", "T_a.g-1", None),
        # As distribution/reference reads them (the host as written, :443 and all); policy
        # patterns treat each of these like its plain docker.io / host spelling.
        ("index.docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        (
            "registry-1.docker.io/library/nginx",
            "registry-1.docker.io",
            "library/nginx",
            "latest",
            None,
        ),
        ("docker.io:443/library/nginx", "docker.io:443", "library/nginx", "latest", None),
        ("ghcr.io:443/org/app", "ghcr.io:443", "org/app", "latest", None),
        ("10.0.0.1:65535/app", "10.0.0.1:65535", "app", "latest", None),
        ("[2001:db8::1]:5000/app", "[2001:db8::1]:5000", "app", "latest", None),
        (f"{'a' * 64}:v1", "docker.io", f"library/{'a' * 64}", "v1", None),
        (f"library/sha256:{'a' * 64}", "docker.io", "library/sha256", "a" * 64, None),
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


# Issue 15: compared with github.com/distribution/reference v0.6.0 (what containerd and the
# kubelet parse with), signgate read these differently; each is now refused with the reason.


@pytest.mark.parametrize(
    "text",
    [
        "\u212aube.example/app",  # KELVIN SIGN: lower-cased, it was the ASCII host kube.example
        "ghcr.\u212aube.example:5000/app:v1",
        "reg\u0130stry.example/app",  # LATIN CAPITAL I WITH DOT ABOVE
        "\uff47hcr.io/app",  # FULLWIDTH g
    ],
)
def test_a_host_outside_ascii_is_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError, match="outside ASCII"):
        parse_reference(text)


@pytest.mark.parametrize(
    "text",
    [
        "Docker.io/x",  # Go: host Docker.io, repository x (not docker.io/library/x)
        "INDEX.DOCKER.IO/x",  # Go: host INDEX.DOCKER.IO, repository x
        "Index.docker.io/library/nginx",
        "Registry.Example.com/app",
        "LOCALHOST/app",
        "[FE80::1]/app",
        "ghcr.IO:443/org/app",
    ],
)
def test_a_host_with_uppercase_letters_is_refused(text: str) -> None:
    # Go keeps such a host as written: it is not Docker Hub's docker.io, and not the lowercase
    # host to containerd's per-host configuration. Lower-casing it named another place.
    with pytest.raises(InvalidReferenceError, match="uppercase letters"):
        parse_reference(text)


@pytest.mark.parametrize(
    "text",
    [
        f"sha256:{'a' * 64}",  # containerd's CRI: the local image with this ID, never pulled
        "sha256:0123abcd",  # a prefix of an image ID
        f"sha512:{'b' * 128}",
        f"sha256@{D}",
        "sha256",
    ],
)
def test_an_image_id_written_as_a_digest_is_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError, match="local image ID to containerd"):
        parse_reference(text)


def test_a_bare_64_hex_image_id_is_refused() -> None:
    with pytest.raises(InvalidReferenceError, match="local image ID to containerd"):
        parse_reference("0123456789abcdef" * 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ghcr.io:0443/org/app", "leading zeros"),
        ("ghcr.io:00443/org/app", "leading zeros"),
        ("localhost:05000/app", "leading zeros"),
        ("localhost:0/app", "from 1 to 65535"),
        ("localhost:65536/app", "from 1 to 65535"),
        ("[0:0:0:0:0:0:0:1]:5000/app", r"must be written '\[::1\]'"),
        ("[::0001]/app", r"must be written '\[::1\]'"),
        ("[::1::2]/app", "not an IPv6 address"),
        ("127.1:5000/app", "not an IPv4 address"),
        ("127.000.000.001/app", "not an IPv4 address"),
        ("0x7f.0.0.1/app", "not an IPv4 address"),
        ("256.0.0.1/app", "not an IPv4 address"),
        ("2130706433:5000/app", "not an IPv4 address"),
        ("registry-1.docker.io/nginx", "one-component repository"),
        ("registry.hub.docker.com/nginx:1.27", "one-component repository"),
        ("docker.io:443/nginx", "one-component repository"),
        ("index.docker.io:443/nginx", "one-component repository"),
    ],
)
def test_a_host_with_another_spelling_is_refused(text: str, message: str) -> None:
    # The kubelet would pull these from the same place as their one spelling (port 0443 is 443,
    # [0:0::1] is [::1], 127.1 is 127.0.0.1 to the resolver), where a pattern naming that spelling
    # would not see them.
    with pytest.raises(InvalidReferenceError, match=message):
        parse_reference(text)


def test_host_spellings_name_one_registry() -> None:
    hub = {
        f"{host}{port}"
        for host in (
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "registry.hub.docker.com",
        )
        for port in ("", ":443")
    }
    assert set(host_spellings("docker.io")) == hub
    assert set(host_spellings("registry-1.docker.io:443")) == hub
    assert host_spellings("ghcr.io") == ("ghcr.io", "ghcr.io:443")
    assert host_spellings("ghcr.io:443") == ("ghcr.io:443", "ghcr.io")
    assert host_spellings("[::1]") == ("[::1]", "[::1]:443")
    assert host_spellings("ghcr.io:5000") == ("ghcr.io:5000",)
    assert host_spellings("docker.io:5000") == ("docker.io:5000",)
    # Only on port 443 is a Docker Hub host Docker Hub; elsewhere it is an ordinary host.
    assert parse_reference("docker.io:5000/x").name == "docker.io:5000/x"


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
    st.from_regex(
        r"[a-z0-9]{1,10}(\.[a-z][a-z0-9]{0,9}){1,2}(:[1-9][0-9]{0,3})?", fullmatch=True
    ).filter(lambda host: split_port(host)[0] not in DOCKER_HUB_HOSTS),
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
def test_valid_references_round_trip(host: str, path: str, tag: str) -> None:
    ref = parse_reference(f"{host}/{path}:{tag}")
    assert parse_reference(str(ref)) == ref
    assert ref.tag == tag
