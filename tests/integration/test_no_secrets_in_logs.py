"""Hardening: registry passwords and Bearer tokens never reach the logs, even at DEBUG, whether a
verification succeeds or fails (a wrong password, an unsigned image)."""

from __future__ import annotations

import base64
import json
import logging
import secrets

import pytest

from signgate.registry import CredentialStore, RegistryClient
from support import signer
from support.engine import Checker, key_policy, options_for
from support.formats import generate_key
from support.push import Pusher
from support.registry import RegistryServer


@pytest.mark.parametrize("kind", ["registry_basic", "registry_token"])
async def test_credentials_and_tokens_stay_out_of_debug_logs(
    kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    registry: RegistryServer = request.getfixturevalue(kind)
    assert registry.username is not None and registry.password is not None
    name = f"secrets/{secrets.token_hex(4)}"
    key = generate_key()
    async with Pusher.for_registry(registry) as pusher:
        digest = await pusher.push_random_image(name, "v1")
        await pusher.push_random_image(name, "unsigned")
        await signer.sign_legacy(pusher, name, digest, key)
    caplog.set_level(logging.DEBUG)  # every logger: signgate's and aiohttp's
    async with RegistryClient(options_for(registry)) as client:
        check = Checker(client)
        assert (await check(f"{registry.host}/{name}:v1", [key_policy(key)])).allowed
        assert not (await check(f"{registry.host}/{name}:unsigned", [key_policy(key)])).allowed
    # Wrong credentials: the denial says why without echoing them.
    config = {"auths": {registry.host: {"username": registry.username, "password": "wrong-pw"}}}
    wrong = CredentialStore.from_docker_config(json.dumps(config).encode())
    async with RegistryClient(options_for(registry, credentials=wrong)) as client:
        decision = await Checker(client)(f"{registry.host}/{name}:v1", [key_policy(key)])
    assert not decision.allowed
    text = "\n".join(
        [record.getMessage() for record in caplog.records] + [caplog.text] + list(decision.reasons)
    )
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    for secret in (registry.password, "wrong-pw", basic):
        assert secret not in text
    assert "eyJ" not in text  # no JWT (Bearer token) in any log line or reason
    assert "Authorization" not in text
