"""Proof that the token server speaks the Docker token flow and distribution 2.8 accepts it."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from cryptography import x509

from support.push import Pusher
from support.rawhttp import fetch_token
from support.registry import RegistryServer, start_registry
from support.tls import settle_tls_shutdowns
from support.token_server import TokenFault, TokenServer


def _jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _server(registry: RegistryServer) -> TokenServer:
    assert registry.token_server is not None
    return registry.token_server


async def _registry_status(registry: RegistryServer, token: str, path: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            registry.url + path,
            headers={"Authorization": f"Bearer {token}"},
            ssl=registry.aiohttp_ssl,
        ) as resp,
    ):
        return resp.status


async def _token(
    registry: RegistryServer, scope: str, *, password: str | None = None, anonymous: bool = False
) -> tuple[int, dict[str, Any] | bytes]:
    async with aiohttp.ClientSession() as session:
        answer = await fetch_token(
            session,
            registry,
            scope,
            username=None if anonymous else registry.username,
            password=password if password is not None else registry.password,
        )
    try:
        return answer.status, json.loads(answer.body)
    except ValueError:
        return answer.status, answer.body


async def test_token_with_credentials_carries_x5c_claims_and_is_accepted_for_push(
    registry_token: RegistryServer,
) -> None:
    server = _server(registry_token)
    status, body = await _token(registry_token, "repository:support/token-push:pull,push")
    assert status == 200
    assert isinstance(body, dict)
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == server.expires_in
    header, claims = _jwt_part(body["token"], 0), _jwt_part(body["token"], 1)
    assert header["alg"] == "ES256"
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    root = x509.load_pem_x509_certificate(server.rootcertbundle.read_bytes())
    assert leaf.issuer == root.subject
    assert claims["iss"] == server.issuer
    assert claims["aud"] == server.service
    assert claims["sub"] == registry_token.username
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert claims["jti"]
    assert claims["access"] == [
        {"type": "repository", "name": "support/token-push", "actions": ["pull", "push"]}
    ]
    # distribution accepts it for a push-scoped request (POST starts a blob upload).
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{registry_token.url}/v2/support/token-push/blobs/uploads/",
            headers={"Authorization": f"Bearer {body['token']}"},
            ssl=registry_token.aiohttp_ssl,
        ) as resp,
    ):
        assert resp.status == 202


async def test_token_for_another_repository_gets_insufficient_scope(
    registry_token: RegistryServer,
) -> None:
    status, body = await _token(registry_token, "repository:support/one:pull")
    assert status == 200
    assert isinstance(body, dict)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{registry_token.url}/v2/support/two/tags/list",
            headers={"Authorization": f"Bearer {body['token']}"},
            ssl=registry_token.aiohttp_ssl,
        ) as resp,
    ):
        assert resp.status == 401
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]


async def test_wrong_password_is_refused_by_the_token_server(
    registry_token: RegistryServer,
) -> None:
    server = _server(registry_token)
    before = server.request_count
    status, body = await _token(registry_token, "repository:support/x:pull", password="nope")
    assert status == 401
    assert body == {"details": "incorrect username or password"}
    assert server.request_count == before + 1
    assert server.requests[-1].status == 401


async def test_anonymous_pull_is_granted_only_when_enabled(registry_token: RegistryServer) -> None:
    server = _server(registry_token)
    async with Pusher.for_registry(registry_token) as pusher:
        await pusher.push_random_image("support/public", "v1")
    status, body = await _token(registry_token, "repository:support/public:pull", anonymous=True)
    assert status == 200
    assert isinstance(body, dict)
    assert _jwt_part(body["token"], 1)["access"] == [
        {"type": "repository", "name": "support/public", "actions": []}
    ]
    assert (
        await _registry_status(registry_token, body["token"], "/v2/support/public/tags/list") == 401
    )
    with server.configured(anonymous_pull=True):
        status, body = await _token(
            registry_token, "repository:support/public:pull,push", anonymous=True
        )
        assert isinstance(body, dict)
        assert _jwt_part(body["token"], 1)["access"][0]["actions"] == ["pull"]
        assert (
            await _registry_status(registry_token, body["token"], "/v2/support/public/tags/list")
            == 200
        )
    assert server.anonymous_pull is False  # restored
    assert server.requests[-1].user is None


async def test_pusher_caches_one_token_per_repository(registry_token: RegistryServer) -> None:
    server = _server(registry_token)
    before = server.request_count
    async with Pusher.for_registry(registry_token) as pusher:
        await pusher.push_random_image("support/cache-a", "v1")
        await pusher.push_random_image("support/cache-a", "v2")
        await pusher.push_random_image("support/cache-b", "v1")
        assert pusher.token_requests == 2
    assert server.request_count == before + 2
    scopes = [r.scopes for r in server.requests[before:]]
    assert scopes == [
        ("repository:support/cache-a:pull,push,delete",),
        ("repository:support/cache-b:pull,push,delete",),
    ]


@pytest.mark.parametrize(
    "fault", [TokenFault.EXPIRED, TokenFault.UNTRUSTED_SIGNER, TokenFault.WRONG_AUDIENCE]
)
async def test_registry_rejects_bad_tokens_from_injected_faults(
    registry_token: RegistryServer, fault: TokenFault
) -> None:
    server = _server(registry_token)
    with server.configured(fault=fault, fault_times=1):
        status, body = await _token(registry_token, "repository:support/bad:pull")
    assert status == 200
    assert isinstance(body, dict)
    path = "/v2/support/bad/tags/list"
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            registry_token.url + path,
            headers={"Authorization": f"Bearer {body['token']}"},
            ssl=registry_token.aiohttp_ssl,
        ) as resp,
    ):
        assert resp.status == 401
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    if fault is TokenFault.EXPIRED:
        assert _jwt_part(body["token"], 1)["exp"] < time.time() - 60


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (TokenFault.SERVER_ERROR, 500),
        (TokenFault.UNAUTHORIZED, 401),
        (TokenFault.GARBAGE, 200),
        (TokenFault.NO_TOKEN, 200),
    ],
)
async def test_token_server_fault_modes_answer_as_configured_then_recover(
    registry_token: RegistryServer, fault: TokenFault, status: int
) -> None:
    server = _server(registry_token)
    with server.configured(fault=fault, fault_times=1):
        got, body = await _token(registry_token, "repository:support/f:pull")
        assert got == status
        if fault is TokenFault.GARBAGE:
            assert isinstance(body, bytes)
        if fault is TokenFault.NO_TOKEN:
            assert isinstance(body, dict)
            assert "token" not in body
            assert "access_token" not in body
        got, body = await _token(registry_token, "repository:support/f:pull")
        assert got == 200
        assert isinstance(body, dict)
        assert "token" in body


async def test_hanging_token_server_never_answers(registry_token: RegistryServer) -> None:
    server = _server(registry_token)
    with server.configured(fault=TokenFault.HANG, fault_times=1):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as session:
            with pytest.raises(TimeoutError):
                await fetch_token(
                    session, registry_token, "repository:support/h:pull", username=None
                )
            await settle_tls_shutdowns()


async def test_expires_in_is_configurable_and_sets_exp(registry_token: RegistryServer) -> None:
    with _server(registry_token).configured(expires_in=7):
        status, body = await _token(registry_token, "repository:support/e:pull")
    assert status == 200
    assert isinstance(body, dict)
    assert body["expires_in"] == 7
    claims = _jwt_part(body["token"], 1)
    assert claims["exp"] - claims["iat"] == 7


async def test_oauth2_password_grant_returns_access_token(registry_token: RegistryServer) -> None:
    server = _server(registry_token)
    form = {
        "grant_type": "password",
        "username": registry_token.username or "",
        "password": registry_token.password or "",
        "service": server.service,
        "scope": "repository:support/oauth:pull",
        "client_id": "signgate-tests",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.realm, data=form, ssl=registry_token.aiohttp_ssl) as resp,
    ):
        assert resp.status == 200
        body = await resp.json()
    assert "token" not in body
    assert _jwt_part(body["access_token"], 1)["access"][0]["name"] == "support/oauth"


@pytest.mark.registry
async def test_rs256_tokens_are_accepted_too(tmp_path: Path, tls_ca: trustme.CA) -> None:
    server = start_registry("token", tmp_path / "rs256", tls_ca=tls_ca, token_algorithm="RS256")
    try:
        async with Pusher.for_registry(server) as pusher:
            digest = await pusher.push_random_image("support/rsa", "v1")
            fetched = await pusher.get_manifest("support/rsa", "v1")
        assert fetched.digest == digest
        token = _server(server).issue("x", [("support/rsa", ["pull"])])
        assert _jwt_part(token, 0)["alg"] == "RS256"
        assert await _registry_status(server, token, "/v2/support/rsa/tags/list") == 200
    finally:
        server.stop()
