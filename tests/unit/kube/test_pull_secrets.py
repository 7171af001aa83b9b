"""Pull-secret formats and precedence, without a cluster."""

from __future__ import annotations

import base64
import json

import pytest

from signgate.errors import ConfigError
from signgate.kube.pullsecrets import store_from_secret
from signgate.registry import CredentialStore


def auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def user_of(store: CredentialStore, host: str) -> str | None:
    credentials = store.for_registry(host)
    return credentials.username if credentials is not None else None


def test_dockerconfigjson_and_legacy_dockercfg() -> None:
    modern = store_from_secret(
        {
            ".dockerconfigjson": json.dumps(
                {"auths": {"r.example": {"auth": auth("a", "1")}}}
            ).encode()
        },
        "Secret ns/a",
    )
    legacy = store_from_secret(
        {".dockercfg": json.dumps({"r.example": {"auth": auth("b", "2")}}).encode()}, "Secret ns/b"
    )
    assert user_of(modern, "r.example") == "a"
    assert user_of(legacy, "r.example") == "b"
    with pytest.raises(ConfigError, match="not an image pull secret"):
        store_from_secret({"token": b"x"}, "Secret ns/c")


def test_earlier_sources_win_and_identities_differ() -> None:
    first = CredentialStore.from_docker_config(
        json.dumps({"auths": {"r.example": {"auth": auth("pod", "1")}}}).encode()
    )
    second = CredentialStore.from_docker_config(
        json.dumps(
            {
                "auths": {
                    "r.example": {"auth": auth("sa", "2")},
                    "o.example": {"auth": auth("sa", "2")},
                }
            }
        ).encode()
    )
    merged = first.overlaid_on(second)
    assert user_of(merged, "r.example") == "pod"
    assert user_of(merged, "o.example") == "sa"
    assert (
        len({first.identity, second.identity, merged.identity, CredentialStore.empty().identity})
        == 4
    )
    assert CredentialStore.empty().identity == "anonymous"
