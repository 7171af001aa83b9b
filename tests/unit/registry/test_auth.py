"""WWW-Authenticate parsing, Docker config credentials and the token cache."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signgate.errors import ConfigError
from signgate.registry.auth import CredentialStore, TokenCache, parse_challenges


def test_bearer_challenge_with_quoted_commas() -> None:
    (challenge,) = parse_challenges(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example/token"
    assert challenge.params["service"] == "registry.example"
    assert challenge.params["scope"] == "repository:a/b:pull,push"


def test_multiple_challenges_and_case_and_escapes() -> None:
    challenges = parse_challenges('Basic realm="x \\"y\\"", BEARER Realm=https://a/t, service=s')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].realm == 'x "y"'
    assert challenges[1].realm == "https://a/t"
    assert challenges[1].params["service"] == "s"


@given(st.text(max_size=200))
def test_challenge_parser_never_raises(header: str) -> None:
    for challenge in parse_challenges(header):
        assert challenge.scheme


def config(auths: dict[str, object]) -> bytes:
    return json.dumps({"auths": auths}).encode()


def test_docker_config_auth_and_aliases() -> None:
    store = CredentialStore.from_docker_config(
        config(
            {
                "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
                "127.0.0.1:5000": {"username": "u", "password": "p:with:colons"},
                "https://ghcr.io": {"identitytoken": "refresh"},
            }
        )
    )
    hub = store.for_registry("docker.io")
    assert hub is not None and (hub.username, hub.password) == ("hub", "pw")
    local = store.for_registry("127.0.0.1:5000")
    assert local is not None and local.password == "p:with:colons"
    assert local.basic_header() == "Basic " + base64.b64encode(b"u:p:with:colons").decode()
    ghcr = store.for_registry("ghcr.io")
    assert ghcr is not None and ghcr.identity_token == "refresh"
    # Exact host only: no credentials leak to a look-alike or another port.
    assert store.for_registry("127.0.0.1:5001") is None
    assert store.for_registry("ghcr.io.evil.example") is None
    # Secrets never show in a repr that might end up in a log.
    assert "pw" not in repr(hub) and "refresh" not in repr(ghcr)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "top level"),
        (config({"h": {"auth": "!!!"}}), "not base64"),
        (config({"h": {"auth": base64.b64encode(b"nocolon").decode()}}), "user:password"),
        (config({"h": "x"}), "must be an object"),
    ],
)
def test_bad_docker_config_is_a_config_error(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CredentialStore.from_docker_config(data)


def test_token_cache_expires_with_margin_and_is_bounded() -> None:
    cache = TokenCache(max_entries=2, margin_seconds=10)
    key = ("realm", "svc", "repository:a:pull", "anonymous")
    cache.put(key, "t", expires_at=100.0)
    assert cache.get(key, now=80.0) == "t"
    assert cache.get(key, now=91.0) is None  # inside the margin: refetch rather than race expiry
    cache.put(("r", "s", "1", "anonymous"), "a", 1e9)
    cache.put(("r", "s", "2", "anonymous"), "b", 1e9)
    cache.put(("r", "s", "3", "anonymous"), "c", 1e9)
    assert len(cache) == 2
    assert cache.get(("r", "s", "1", "anonymous"), 0) is None
