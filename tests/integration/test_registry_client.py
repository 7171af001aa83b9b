"""The registry client against real CNCF distribution registries: anonymous, Basic and Bearer."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from signgate.deadline import Deadline
from signgate.errors import (
    NotFoundError,
    RegistryAuthError,
    RegistryUnavailableError,
)
from signgate.reference import parse_reference
from signgate.registry import CredentialStore, RegistryClient, RegistryOptions
from support import signer
from support.engine import options_for
from support.formats import generate_key
from support.push import Pusher
from support.registry import RegistryServer
from support.token_server import TokenFault

VARIANTS = ["registry", "registry_basic", "registry_token"]


def repo() -> str:
    return f"client/{secrets.token_hex(4)}"


@pytest.fixture(params=VARIANTS)
def any_registry(request: pytest.FixtureRequest) -> RegistryServer:
    server: RegistryServer = request.getfixturevalue(request.param)
    return server


async def test_resolve_fetch_and_referrers_on_every_auth_variant(
    any_registry: RegistryServer,
) -> None:
    name = repo()
    async with Pusher.for_registry(any_registry) as pusher:
        digest = await pusher.push_random_image(name, "v1")
        await pusher.push_random_image(name, "u")
        await signer.sign_bundle_v3(pusher, name, digest, generate_key())
    async with RegistryClient(options_for(any_registry)) as client:
        deadline = Deadline.after(20)
        ref = parse_reference(f"{any_registry.host}/{name}:v1")
        assert await client.resolve_digest(ref, deadline) == digest
        fetched = await client.fetch_manifest(ref, digest, deadline)
        assert fetched is not None and fetched.digest == digest
        referrers = await client.list_referrers(ref, digest, deadline)
        assert referrers.source == "tag"  # distribution 2.8 has no referrers API
        assert len(referrers.descriptors) == 1
        unsigned = await client.resolve_digest(
            parse_reference(f"{any_registry.host}/{name}:u"), deadline
        )
        none = await client.list_referrers(ref, unsigned, deadline)
        assert (none.source, none.descriptors) == ("none", ())
        with pytest.raises(NotFoundError, match="tag 'nope' not found"):
            await client.resolve_digest(
                parse_reference(f"{any_registry.host}/{name}:nope"), deadline
            )


async def test_bearer_tokens_are_cached_per_repository(registry_token: RegistryServer) -> None:
    name = repo()
    async with Pusher.for_registry(registry_token) as pusher:
        await pusher.push_random_image(name, "v1")
    server = registry_token.token_server
    assert server is not None
    async with RegistryClient(options_for(registry_token)) as client:
        before = server.request_count
        ref = parse_reference(f"{registry_token.host}/{name}:v1")
        for _ in range(5):
            await client.resolve_digest(ref, Deadline.after(10))
        assert server.request_count - before == 1
        # A warm client sends the token up front: one request per resolve, no 401 round trip.
        sent = client.requests_sent
        await client.resolve_digest(ref, Deadline.after(10))
        assert client.requests_sent - sent == 1


async def test_concurrent_requests_share_one_token_fetch(registry_token: RegistryServer) -> None:
    name = repo()
    async with Pusher.for_registry(registry_token) as pusher:
        await pusher.push_random_image(name, "v1")
    server = registry_token.token_server
    assert server is not None
    async with RegistryClient(options_for(registry_token)) as client:
        ref = parse_reference(f"{registry_token.host}/{name}:v1")
        await client.resolve_digest(ref, Deadline.after(10))  # learn the challenge
        other = parse_reference(f"{registry_token.host}/{repo()}:v1")
        before = server.request_count
        results = await asyncio.gather(
            *(client.fetch_manifest(other, "v1", Deadline.after(10)) for _ in range(20))
        )
        assert results == [None] * 20
        assert server.request_count - before == 1


async def test_expired_token_lifetime_is_refetched(registry_token: RegistryServer) -> None:
    name = repo()
    async with Pusher.for_registry(registry_token) as pusher:
        await pusher.push_random_image(name, "v1")
    server = registry_token.token_server
    assert server is not None
    with server.configured(expires_in=1):
        async with RegistryClient(options_for(registry_token)) as client:
            ref = parse_reference(f"{registry_token.host}/{name}:v1")
            before = server.request_count
            await client.resolve_digest(ref, Deadline.after(10))
            await client.resolve_digest(ref, Deadline.after(10))
            # A 1-second token is inside the safety margin: each use fetches a fresh one.
            assert server.request_count - before == 2


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (TokenFault.SERVER_ERROR, "HTTP 500"),
        (TokenFault.GARBAGE, "returned non-JSON"),
        (TokenFault.NO_TOKEN, "returned no usable token"),
        (TokenFault.EXPIRED, "refused our credentials"),
        (TokenFault.UNTRUSTED_SIGNER, "refused our credentials"),
        (TokenFault.UNAUTHORIZED, "refused the configured credentials"),
    ],
)
async def test_token_endpoint_faults_are_auth_errors(
    registry_token: RegistryServer, fault: TokenFault, message: str
) -> None:
    server = registry_token.token_server
    assert server is not None
    with server.configured(fault=fault):
        async with RegistryClient(options_for(registry_token)) as client:
            ref = parse_reference(f"{registry_token.host}/{repo()}:v1")
            with pytest.raises(RegistryAuthError, match=message):
                await client.resolve_digest(ref, Deadline.after(5))


async def test_token_endpoint_that_hangs_is_cut_by_the_deadline(
    registry_token: RegistryServer,
) -> None:
    server = registry_token.token_server
    assert server is not None
    with server.configured(fault=TokenFault.HANG):
        async with RegistryClient(options_for(registry_token)) as client:
            ref = parse_reference(f"{registry_token.host}/{repo()}:v1")
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(Exception, match="deadline exceeded"):
                await client.resolve_digest(ref, Deadline.after(1.0))
            assert loop.time() - started < 3


async def test_anonymous_pull_refused_without_credentials(registry_token: RegistryServer) -> None:
    options = RegistryOptions(ca_files={registry_token.host: str(registry_token.ca_file)})
    async with RegistryClient(options) as client:
        ref = parse_reference(f"{registry_token.host}/{repo()}:v1")
        with pytest.raises(
            RegistryAuthError, match=r"requires credentials to pull .* none are configured"
        ):
            await client.resolve_digest(ref, Deadline.after(5))


async def test_basic_auth_wrong_password_and_missing_credentials(
    registry_basic: RegistryServer, tmp_path: Path
) -> None:
    config = registry_basic.docker_config(tmp_path / "c.json", password="wrong")
    options = RegistryOptions(
        ca_files={registry_basic.host: str(registry_basic.ca_file)},
        credentials=CredentialStore.from_docker_config_file(config),
    )
    ref = parse_reference(f"{registry_basic.host}/{repo()}:v1")
    async with RegistryClient(options) as client:
        with pytest.raises(RegistryAuthError, match="refused our credentials"):
            await client.resolve_digest(ref, Deadline.after(5))
    bare = RegistryOptions(ca_files={registry_basic.host: str(registry_basic.ca_file)})
    async with RegistryClient(bare) as client:
        with pytest.raises(RegistryAuthError, match="requires a username and password"):
            await client.resolve_digest(ref, Deadline.after(5))


async def test_tls_registry_needs_its_ca(registry_basic: RegistryServer) -> None:
    ref = parse_reference(f"{registry_basic.host}/{repo()}:v1")
    async with RegistryClient(RegistryOptions()) as client:
        with pytest.raises(RegistryUnavailableError, match="is not trusted"):
            await client.resolve_digest(ref, Deadline.after(5))


async def test_insecure_registry_tries_tls_then_plain_http(registry_basic: RegistryServer) -> None:
    # The same flag works for an HTTPS registry with an unknown CA (TLS without verification)...
    name = repo()
    async with Pusher.for_registry(registry_basic) as pusher:
        digest = await pusher.push_random_image(name, "v1")
    config = registry_basic.docker_config(registry_basic.workdir / "insecure.json")
    options = RegistryOptions(
        insecure_hosts=frozenset({registry_basic.host}),
        credentials=CredentialStore.from_docker_config_file(config),
    )
    async with RegistryClient(options) as client:
        ref = parse_reference(f"{registry_basic.host}/{name}:v1")
        assert await client.resolve_digest(ref, Deadline.after(5)) == digest


async def test_plain_http_registry_is_refused_unless_marked_insecure(
    registry: RegistryServer,
) -> None:
    ref = parse_reference(f"{registry.host}/{repo()}:v1")
    async with RegistryClient(RegistryOptions()) as client:
        with pytest.raises(RegistryUnavailableError, match=f"cannot reach {registry.host}"):
            await client.resolve_digest(ref, Deadline.after(3))


async def test_tokens_are_never_shared_between_credentials(
    registry_token: RegistryServer, tmp_path: Path
) -> None:
    # One client, two tenants: a token fetched with one tenant's credentials must not serve a
    # request made with the other's (here: none at all).
    name = repo()
    async with Pusher.for_registry(registry_token) as pusher:
        digest = await pusher.push_random_image(name, "v1")
    config = registry_token.docker_config(tmp_path / "tenant.json")
    tenant = CredentialStore.from_docker_config_file(config)
    options = RegistryOptions(ca_files={registry_token.host: str(registry_token.ca_file)})
    async with RegistryClient(options) as client:
        ref = parse_reference(f"{registry_token.host}/{name}:v1")
        assert await client.resolve_digest(ref, Deadline.after(10), credentials=tenant) == digest
        with pytest.raises(RegistryAuthError, match="requires credentials to pull"):
            await client.resolve_digest(ref, Deadline.after(10))
        assert await client.resolve_digest(ref, Deadline.after(10), credentials=tenant) == digest
