"""The registry client (`RegistryClient`) on the in-memory registry: the auth flow, retries within
the deadline, caps, lies, and the memory of a missing referrers API.

Every request is answered by `support.memory_registry.MemoryRegistry` below the client's
`RoundTrip`, so everything above it (the 401 → token flow, back-off, digest checks) is production
code. Back-off pauses are recorded (the ``backoff`` fixture), not slept.
"""

from __future__ import annotations

import json

import pytest

from signgate.deadline import Deadline
from signgate.errors import (
    DigestMismatchError,
    NotFoundError,
    RegistryAuthError,
    RegistryHTTPError,
    RegistryUnavailableError,
    ResponseTooLargeError,
)
from signgate.reference import Digest, ImageReference, parse_reference
from signgate.registry import (
    Credentials,
    CredentialStore,
    RegistryClient,
    RegistryLimits,
    RegistryOptions,
    client,
)
from support import signer
from support.formats import generate_key
from support.memory_registry import ManualClock, MemoryPusher, MemoryRegistry

REPO = "team/app"


def ref(registry: MemoryRegistry, tail: str = ":v1", repo: str = REPO) -> ImageReference:
    return parse_reference(f"{registry.host}/{repo}{tail}")


def with_credentials(registry: MemoryRegistry, user: str, password: str) -> RegistryOptions:
    store = CredentialStore({registry.host: Credentials(user, password)})
    return RegistryOptions(credentials=store)


# -- auth ------------------------------------------------------------------------------------------


async def test_bearer_flow_costs_one_token_then_warm_requests_carry_it(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    tokens = memory_registry.require_bearer()

    assert await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10)) == digest
    assert await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10)) == digest

    assert [(r.host, r.method, r.status) for r in memory_registry.requests] == [
        ("registry.test", "HEAD", 401),
        ("auth.test", "GET", 200),
        ("registry.test", "HEAD", 200),
        ("registry.test", "HEAD", 200),  # warm: the token goes up front
    ]
    token_request = memory_registry.requests[1]
    assert token_request.query == {"scope": f"repository:{REPO}:pull", "service": "registry.test"}
    assert "Authorization" not in token_request.headers  # anonymous
    assert tokens.issued == 1


async def test_each_repository_gets_its_own_token(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    await memory_pusher.push_random_image("team/a", "v1")
    await memory_pusher.push_random_image("team/b", "v1")
    tokens = memory_registry.require_bearer(realm="https://registry.test/token")
    deadline = Deadline.after(10)

    for name in ("team/a", "team/b", "team/a", "team/b"):
        await registry_client.resolve_digest(ref(memory_registry, repo=name), deadline)

    assert tokens.issued == 2
    assert memory_registry.count(r"^/token$", host="registry.test") == 2


async def test_a_token_the_registry_stops_accepting_is_replaced_once(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    await memory_pusher.push_random_image(REPO, "v1")
    tokens = memory_registry.require_bearer()
    await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10))
    tokens.revoke()
    memory_registry.reset_counts()

    await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10))

    assert [r.status for r in memory_registry.requests] == [401, 200, 200]
    assert tokens.issued == 2


async def test_credentials_go_to_the_realm_as_basic_and_open_a_private_repository(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, backoff: list[float]
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.require_bearer(users={"alice": "pw"}, private={REPO})
    options = with_credentials(memory_registry, "alice", "pw")

    async with RegistryClient(options, round_trip=memory_registry, sleep=backoff) as alice:
        assert await alice.resolve_digest(ref(memory_registry), Deadline.after(10)) == digest
    (token_request,) = [r for r in memory_registry.requests if r.host == "auth.test"]
    assert token_request.headers["Authorization"].startswith("Basic ")

    async with RegistryClient(
        RegistryOptions(), round_trip=memory_registry, sleep=backoff
    ) as anonymous:
        with pytest.raises(RegistryAuthError) as refused:
            await anonymous.resolve_digest(ref(memory_registry), Deadline.after(10))
    assert str(refused.value) == (
        f"registry.test requires credentials to pull {REPO} and none are configured for it"
        " (use --registry-config)"
    )


async def test_a_wrong_password_at_the_token_endpoint_is_an_auth_error(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher
) -> None:
    await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.require_bearer(users={"alice": "pw"}, anonymous=False)

    async with RegistryClient(
        with_credentials(memory_registry, "alice", "wrong"), round_trip=memory_registry
    ) as client_:
        with pytest.raises(RegistryAuthError) as refused:
            await client_.resolve_digest(ref(memory_registry), Deadline.after(10))

    assert str(refused.value).startswith(
        f"token endpoint auth.test refused the configured credentials for {REPO} (HTTP 401"
    )


async def test_an_identity_token_uses_the_refresh_token_grant(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.require_bearer(identity_tokens={"refresh-me": "alice"}, anonymous=False)
    config = {"auths": {memory_registry.host: {"identitytoken": "refresh-me"}}}
    options = RegistryOptions(
        credentials=CredentialStore.from_docker_config(json.dumps(config).encode())
    )

    async with RegistryClient(options, round_trip=memory_registry) as client_:
        assert await client_.resolve_digest(ref(memory_registry), Deadline.after(10)) == digest

    (token_request,) = [r for r in memory_registry.requests if r.host == "auth.test"]
    assert token_request.method == "POST"


async def test_a_plain_http_realm_gets_no_credentials(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.require_bearer(realm="http://auth.test/token")

    with pytest.raises(RegistryAuthError, match="refusing to send credentials without TLS"):
        await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10))
    assert memory_registry.count(host="auth.test") == 0


async def test_basic_auth_is_learnt_from_one_challenge(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher
) -> None:
    await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.require_basic("ci", "s3cret")

    async with RegistryClient(
        with_credentials(memory_registry, "ci", "s3cret"), round_trip=memory_registry
    ) as ci:
        for _ in range(3):
            await ci.resolve_digest(ref(memory_registry), Deadline.after(10))
    assert [r.status for r in memory_registry.requests] == [401, 200, 200, 200]

    async with RegistryClient(RegistryOptions(), round_trip=memory_registry) as anonymous:
        with pytest.raises(RegistryAuthError, match=r"requires a username and password \(Basic"):
            await anonymous.resolve_digest(ref(memory_registry), Deadline.after(10))


async def test_access_denied_is_an_auth_error_with_the_registrys_words(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.deny(REPO)

    with pytest.raises(RegistryAuthError) as denied:
        await registry_client.fetch_manifest(ref(memory_registry), digest, Deadline.after(10))
    assert str(denied.value) == (
        f"registry.test denied access to {REPO} (HTTP 403: DENIED requested access to the"
        " resource is denied)"
    )


# -- retries and the deadline ----------------------------------------------------------------------


async def test_429_is_retried_after_the_retry_after_the_registry_asks_for(
    memory_registry: MemoryRegistry,
    memory_pusher: MemoryPusher,
    registry_client: RegistryClient,
    backoff: list[float],
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.status(r"/manifests/v1$", 429, retry_after="2", times=1)

    assert await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10)) == digest
    assert backoff == [2.0]
    assert memory_registry.count(r"/manifests/v1$") == 2


async def test_server_errors_back_off_exponentially_then_give_up(
    memory_registry: MemoryRegistry,
    memory_pusher: MemoryPusher,
    registry_client: RegistryClient,
    backoff: list[float],
) -> None:
    await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.status(r"/manifests/v1$", 503, body=b"maintenance")

    with pytest.raises(RegistryHTTPError) as failed:
        await registry_client.fetch_manifest(ref(memory_registry), "v1", Deadline.after(10))

    assert failed.value.status == 503
    assert failed.value.detail == "server error after 4 attempts: maintenance"
    assert backoff == [0.25, 0.5, 1.0]
    assert memory_registry.count(r"/manifests/v1$") == 4


async def test_a_retry_after_past_the_deadline_fails_at_once(
    memory_registry: MemoryRegistry,
    memory_pusher: MemoryPusher,
    registry_client: RegistryClient,
    backoff: list[float],
) -> None:
    await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.status(r"/manifests/v1$", 429, retry_after="120")

    with pytest.raises(RegistryHTTPError, match=r"Retry-After 120s is past the deadline"):
        await registry_client.resolve_digest(ref(memory_registry), Deadline.after(5))
    assert backoff == []
    assert memory_registry.count() == 1


async def test_no_retry_is_attempted_that_the_deadline_cannot_afford(
    memory_registry: MemoryRegistry,
    memory_pusher: MemoryPusher,
    registry_client: RegistryClient,
    backoff: list[float],
) -> None:
    # 0.6 s affords the first pause (0.25 s) but not the second (0.5 s) after it.
    await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.status(r"/manifests/v1$", 502)

    with pytest.raises(RegistryUnavailableError, match="no time left in the deadline to retry"):
        await registry_client.resolve_digest(ref(memory_registry), Deadline.after(0.6))
    assert backoff == [0.25]
    assert memory_registry.count() == 2

    # Retry-After counts the same way: 3 s of a 5 s deadline spent, the next 3 s do not fit.
    memory_registry.clear()
    memory_registry.status(r"/manifests/v1$", 429, retry_after="3")
    past = r"Retry-After 3s is past the deadline \([12]\.\ds left\)"
    with pytest.raises(RegistryHTTPError, match=past):
        await registry_client.resolve_digest(ref(memory_registry), Deadline.after(5))
    assert backoff == [0.25, 3.0]


async def test_dropped_connections_are_retried_then_named(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.drop(r"/manifests/v1$", times=2)
    assert await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10)) == digest
    assert memory_registry.count() == 3
    assert registry_client.responses["error"] == 2

    memory_registry.drop(r"/manifests/v1$")
    with pytest.raises(RegistryUnavailableError) as lost:
        await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10))
    assert str(lost.value) == (
        "lost the connection to registry.test: connection closed without a complete answer"
    )


async def test_a_host_name_that_does_not_resolve_is_not_retried(
    memory_registry: MemoryRegistry, registry_client: RegistryClient, backoff: list[float]
) -> None:
    memory_registry.unreachable(dns=True)

    with pytest.raises(RegistryUnavailableError, match=r"cannot reach registry.test: host name"):
        await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10))
    assert (memory_registry.count(), backoff) == (1, [])


async def test_a_failing_token_endpoint_is_retried_like_the_registry(
    memory_registry: MemoryRegistry,
    memory_pusher: MemoryPusher,
    registry_client: RegistryClient,
    backoff: list[float],
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.require_bearer()
    memory_registry.status(r"^/token$", 503, times=1)
    memory_registry.drop(r"^/token$", times=1)

    assert await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10)) == digest
    assert memory_registry.count(host="auth.test") == 3
    assert backoff == [0.25, 0.5]


async def test_an_insecure_plain_http_registry_is_found_once(
    memory_registry: MemoryRegistry, backoff: list[float]
) -> None:
    plain = memory_registry.add_host("plain.test:5000", tls=False)
    pusher = memory_registry.pusher(plain.name)
    digest = await pusher.push_random_image(REPO, "v1")
    image = parse_reference(f"{plain.name}/{REPO}:v1")

    options = RegistryOptions(insecure_hosts=frozenset({plain.name}))
    async with RegistryClient(options, round_trip=memory_registry, sleep=backoff) as insecure:
        for _ in range(2):
            assert await insecure.resolve_digest(image, Deadline.after(10)) == digest
    # TLS first (as Docker does), then plain HTTP, remembered for the next request.
    assert [r.url.split(":")[0] for r in memory_registry.requests] == ["https", "http", "http"]

    async with RegistryClient(
        RegistryOptions(), round_trip=memory_registry, sleep=backoff
    ) as strict:
        with pytest.raises(RegistryUnavailableError, match="WRONG_VERSION_NUMBER"):
            await strict.resolve_digest(image, Deadline.after(10))


# -- caps and lies ---------------------------------------------------------------------------------


async def test_a_manifest_over_the_cap_is_refused(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.huge(r"/manifests/", 5000)
    options = RegistryOptions(limits=RegistryLimits(max_manifest_bytes=4096))

    async with RegistryClient(options, round_trip=memory_registry) as capped:
        with pytest.raises(ResponseTooLargeError, match="5000 bytes exceeds the 4096-byte limit"):
            await capped.fetch_manifest(ref(memory_registry), digest, Deadline.after(10))


async def test_manifest_bytes_that_do_not_match_the_digest_are_refused(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    # The same JSON, other bytes: a registry (or a proxy) that re-serialises manifests.
    memory_registry.replace_body(r"/manifests/", lambda real: real + b"\n")

    with pytest.raises(DigestMismatchError, match=f"not the requested {digest}"):
        await registry_client.fetch_manifest(ref(memory_registry), digest, Deadline.after(10))


async def test_a_lying_digest_header_is_caught_when_the_digest_is_computed(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    # No usable HEAD answer, so the tag is resolved by GET and hashed here: the header must agree.
    await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.status(r"/manifests/v1$", 405, method="HEAD")
    memory_registry.wrong_digest_header(r"/manifests/v1$", method="GET")

    with pytest.raises(DigestMismatchError, match="registry claims digest sha256:0000"):
        await registry_client.resolve_digest(ref(memory_registry), Deadline.after(10))


async def test_a_body_cut_short_is_retried(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    digest = await memory_pusher.push_random_image(REPO, "v1")
    memory_registry.truncate(r"/manifests/sha256:", times=1)

    fetched = await registry_client.fetch_manifest(ref(memory_registry), digest, Deadline.after(10))

    assert fetched is not None and fetched.digest == digest
    assert memory_registry.count(r"/manifests/sha256:") == 2


async def test_an_unknown_tag_and_an_unknown_repository_are_not_found(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    await memory_pusher.push_random_image(REPO, "v1")

    with pytest.raises(NotFoundError, match="tag 'v2' not found"):
        await registry_client.resolve_digest(ref(memory_registry, ":v2"), Deadline.after(10))
    missing = ref(memory_registry, repo="team/nothing")
    assert await registry_client.fetch_manifest(missing, "v1", Deadline.after(10)) is None


# -- referrers -------------------------------------------------------------------------------------


async def test_a_registry_without_the_referrers_api_is_not_asked_again(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    memory_registry.referrers_api(False)
    first = Digest(await memory_pusher.push_random_image(REPO, "a"))
    second = Digest(await memory_pusher.push_random_image(REPO, "b"))
    await signer.sign_bundle_v3(memory_pusher, REPO, second, generate_key())

    none = await registry_client.list_referrers(ref(memory_registry), first, Deadline.after(10))
    found = await registry_client.list_referrers(ref(memory_registry), second, Deadline.after(10))

    assert (none.source, found.source, len(found.descriptors)) == ("none", "tag", 1)
    assert memory_registry.count(r"/referrers/") == 1


async def test_the_referrers_api_is_asked_again_after_five_minutes(
    memory_registry: MemoryRegistry,
    memory_pusher: MemoryPusher,
    registry_client: RegistryClient,
    clock: ManualClock,
) -> None:
    # registry_client runs on the manual clock (RegistryClient(monotonic=...)).
    memory_registry.referrers_api(False)
    digest = Digest(await memory_pusher.push_random_image(REPO, "v1"))
    await registry_client.list_referrers(ref(memory_registry), digest, Deadline.after(10))
    memory_registry.referrers_api(True)  # the registry was upgraded

    clock.advance(client.NO_API_SECONDS - 1)
    assert (
        await registry_client.list_referrers(ref(memory_registry), digest, Deadline.after(10))
    ).source == "none"
    clock.advance(2)
    assert (
        await registry_client.list_referrers(ref(memory_registry), digest, Deadline.after(10))
    ).source == "api"
    assert memory_registry.count(r"/referrers/") == 2


async def test_a_missing_repository_does_not_switch_the_referrers_api_off(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, registry_client: RegistryClient
) -> None:
    # NAME_UNKNOWN is the registry's answer about one repository, not about its API.
    digest = Digest(await memory_pusher.push_random_image(REPO, "v1"))
    await signer.sign_bundle_v3(memory_pusher, REPO, digest, generate_key())
    missing = ref(memory_registry, repo="team/nothing")

    nothing = await registry_client.list_referrers(missing, digest, Deadline.after(10))
    found = await registry_client.list_referrers(ref(memory_registry), digest, Deadline.after(10))

    assert (nothing.source, found.source, len(found.descriptors)) == ("none", "api", 1)
    assert memory_registry.count(r"/referrers/") == 2


async def test_referrers_pages_are_followed_and_bounded(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher, backoff: list[float]
) -> None:
    memory_registry.referrers_api(True, page_size=1)
    digest = Digest(await memory_pusher.push_random_image(REPO, "v1"))
    for _ in range(3):
        await signer.sign_bundle_v3(memory_pusher, REPO, digest, generate_key())

    async with RegistryClient(
        RegistryOptions(), round_trip=memory_registry, sleep=backoff
    ) as unbounded:
        listed = await unbounded.list_referrers(ref(memory_registry), digest, Deadline.after(10))
    assert len({d.digest for d in listed.descriptors}) == 3

    options = RegistryOptions(limits=RegistryLimits(max_referrer_pages=2))
    async with RegistryClient(options, round_trip=memory_registry, sleep=backoff) as bounded:
        with pytest.raises(Exception, match="span more than 2 pages"):
            await bounded.list_referrers(ref(memory_registry), digest, Deadline.after(10))


async def test_a_redirect_is_followed_without_the_credentials(
    memory_registry: MemoryRegistry, memory_pusher: MemoryPusher
) -> None:
    # Registries hand blobs to a storage backend on another host; aiohttp drops Authorization
    # when it follows a redirect to another origin, and the fake does the same.
    cdn = memory_registry.add_host("cdn.test")
    blob = b'{"architecture": "amd64"}'
    digest = await memory_pusher.push_blob(REPO, blob)
    await memory_registry.pusher(cdn.name).push_blob(REPO, blob)
    memory_registry.require_basic("ci", "pw")
    memory_registry.status(
        r"/blobs/", 307, headers={"Location": f"https://cdn.test/v2/{REPO}/blobs/{digest}"},
        host=memory_registry.host,
    )  # fmt: skip

    async with RegistryClient(
        with_credentials(memory_registry, "ci", "pw"), round_trip=memory_registry
    ) as ci:
        fetched = await ci.fetch_blob(ref(memory_registry), Digest(digest), Deadline.after(10))

    assert fetched == blob
    (at_cdn,) = [r for r in memory_registry.requests if r.host == "cdn.test"]
    assert "Authorization" not in at_cdn.headers
