"""Registries that misbehave. The faults come from a proxy in front of the real registry, because
distribution itself cannot be made to hang, rate-limit, lie or stream forever. Every case must end
in a clear error (and, through the verifier, a denial), within the deadline and the byte caps."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from signgate.deadline import Deadline
from signgate.errors import (
    DeadlineExceededError,
    DigestMismatchError,
    MalformedResponseError,
    RegistryHTTPError,
    RegistryUnavailableError,
    ResponseTooLargeError,
)
from signgate.reference import parse_reference
from signgate.registry import RegistryClient, RegistryOptions
from support import signer
from support.engine import Checker, key_policy
from support.fault_proxy import FaultProxy
from support.formats import generate_key
from support.push import Pusher

KEY = generate_key()


@pytest.fixture
async def signed(pusher: Pusher) -> tuple[str, str]:
    """A signed image on the real registry: (repository, digest)."""
    name = f"faults/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, KEY)
    return name, digest


@pytest.fixture
async def client(fault_proxy: FaultProxy) -> AsyncIterator[RegistryClient]:
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))) as c:
        yield c


def ref_via(proxy: FaultProxy, name: str, tail: str = ":v1") -> str:
    return f"{proxy.host}/{name}{tail}"


async def elapsed(coro: object) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await coro  # type: ignore[misc]
    finally:
        pass
    return loop.time() - started


async def test_clean_proxy_verifies(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    decision = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)])
    assert decision.allowed, decision.reasons


async def test_hanging_registry_is_denied_by_the_deadline_quickly(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.hang(r"/manifests/")
    loop = asyncio.get_running_loop()
    started = loop.time()
    decision = await Checker(client)(
        ref_via(fault_proxy, signed[0]), [key_policy(KEY)], timeout=1.0
    )
    assert loop.time() - started < 2.5
    assert not decision.allowed
    assert "deadline exceeded" in decision.reasons[0]


async def test_stall_after_headers_is_cut_by_the_deadline(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.stall_after_headers(r"/blobs/")
    decision = await Checker(client)(
        ref_via(fault_proxy, signed[0]), [key_policy(KEY)], timeout=1.0
    )
    assert not decision.allowed
    assert "deadline exceeded" in " ".join(decision.reasons)


async def test_429_with_retry_after_is_retried_within_the_deadline(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.status(r"/manifests/v1", 429, retry_after="1", times=1)
    decision = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)], timeout=5)
    assert decision.allowed, decision.reasons
    assert fault_proxy.count(r"/manifests/v1") == 2


async def test_429_with_retry_after_past_the_deadline_fails_fast(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.status(r"/manifests/v1", 429, retry_after="120")
    loop = asyncio.get_running_loop()
    started = loop.time()
    decision = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)], timeout=5)
    assert loop.time() - started < 1.5  # no point waiting for a retry we cannot afford
    assert not decision.allowed
    assert "Retry-After 120s is past the deadline" in decision.reasons[0]


async def test_429_without_retry_after_backs_off_then_succeeds(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.status(r"/manifests/v1", 429, times=2)
    decision = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)], timeout=5)
    assert decision.allowed, decision.reasons


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried_then_reported(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str], status: int
) -> None:
    fault_proxy.status(r"/manifests/v1", status, times=1)
    assert (await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)])).allowed
    fault_proxy.status(r"/manifests/v1", status)
    with pytest.raises(RegistryHTTPError, match=f"HTTP {status}"):
        await client.resolve_digest(
            parse_reference(ref_via(fault_proxy, signed[0])), Deadline.after(10)
        )


async def test_registry_down_is_denied_with_the_reason(client: RegistryClient) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = RegistryOptions(insecure_hosts=frozenset({f"127.0.0.1:{port}"}))
    async with RegistryClient(options) as down:
        decision = await Checker(down)(f"127.0.0.1:{port}/app:v1", [key_policy(KEY)], timeout=3)
    assert not decision.allowed
    assert "cannot reach 127.0.0.1" in decision.reasons[0]


async def test_manifest_bytes_that_do_not_match_the_digest(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    name, digest = signed
    fault_proxy.replace_body(rf"/manifests/{digest}", b'{"schemaVersion":2}')
    with pytest.raises(DigestMismatchError, match=f"not the requested {digest}"):
        await client.fetch_manifest(
            parse_reference(ref_via(fault_proxy, name)), digest, Deadline.after(5)
        )


async def test_signature_blob_that_does_not_match_is_not_a_signature(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.replace_body(r"/blobs/", lambda body: body.replace(b"cosign", b"COSIGN"))
    decision = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)])
    assert not decision.allowed
    assert "registry returned content with digest" in decision.reasons[0]


async def test_lying_digest_header_on_get_fallback(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    # HEAD unusable, GET says one digest but serves bytes of another: refuse.
    fault_proxy.status(r"/manifests/v1", 405, method="HEAD")
    fault_proxy.wrong_digest_header(r"/manifests/v1", method="GET")
    with pytest.raises(DigestMismatchError, match="claims digest sha256:0000"):
        await client.resolve_digest(
            parse_reference(ref_via(fault_proxy, signed[0])), Deadline.after(5)
        )


async def test_head_without_digest_falls_back_to_get(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.status(r"/manifests/v1", 405, method="HEAD")
    digest = await client.resolve_digest(
        parse_reference(ref_via(fault_proxy, signed[0])), Deadline.after(5)
    )
    assert digest == signed[1]
    assert fault_proxy.count(r"/manifests/v1", method="GET") == 1


@pytest.mark.parametrize("declare_length", [True, False])
async def test_huge_bodies_hit_the_cap(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str], declare_length: bool
) -> None:
    name, digest = signed
    fault_proxy.huge(r"/manifests/sha256-", size=50 * 1024 * 1024, declare_length=declare_length)
    with pytest.raises(ResponseTooLargeError, match="exceeds the 4194304-byte limit"):
        await client.fetch_manifest(
            parse_reference(ref_via(fault_proxy, name)),
            digest.replace(":", "-") + ".sig",
            Deadline.after(10),
        )


async def test_endless_body_hits_the_cap_not_the_memory(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.endless(r"/blobs/")
    decision = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)], timeout=10)
    assert not decision.allowed
    assert "exceeds the 1048576-byte limit" in decision.reasons[0]


async def test_truncated_body_is_an_error(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    name, digest = signed
    fault_proxy.truncate(rf"/manifests/{digest}", keep=10)
    with pytest.raises((RegistryUnavailableError, DigestMismatchError)):
        await client.fetch_manifest(
            parse_reference(ref_via(fault_proxy, name)), digest, Deadline.after(5)
        )


async def test_garbage_signature_manifest_is_a_reason_not_a_crash(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.garbage_json(r"/manifests/sha256-.*\.sig")
    decision = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)])
    assert not decision.allowed
    assert "not valid JSON" in decision.reasons[0]


async def test_garbage_referrers_index(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str], pusher: Pusher
) -> None:
    name, digest = signed
    await signer.sign_bundle_v3(pusher, name, digest, generate_key())
    fault_proxy.garbage_json(r"/manifests/sha256-[0-9a-f]+$")
    with pytest.raises(MalformedResponseError):
        await client.list_referrers(
            parse_reference(ref_via(fault_proxy, name)), digest, Deadline.after(5)
        )
    # The legacy signature is still found and verified: one broken source does not hide the other.
    decision = await Checker(client)(ref_via(fault_proxy, name), [key_policy(KEY)])
    assert decision.allowed, decision.reasons
    assert any("could not read all signatures" in n for n in decision.notes)


async def test_dropped_connections_are_retried(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.drop(r"/manifests/v1", times=1)
    decision = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)])
    assert decision.allowed, decision.reasons


async def test_next_request_recovers_after_faults(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.hang(r"/manifests/", times=1)
    first = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)], timeout=0.5)
    assert not first.allowed
    second = await Checker(client)(ref_via(fault_proxy, signed[0]), [key_policy(KEY)], timeout=5)
    assert second.allowed, second.reasons


async def test_deadline_error_type(
    fault_proxy: FaultProxy, client: RegistryClient, signed: tuple[str, str]
) -> None:
    fault_proxy.hang(r"/manifests/v1")
    with pytest.raises(DeadlineExceededError):
        await client.resolve_digest(
            parse_reference(ref_via(fault_proxy, signed[0])), Deadline.after(0.3)
        )
