"""Proof that the fault proxy forwards faithfully and produces every fault it advertises."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import aiohttp
import pytest

from support.fault_proxy import FaultProxy, MiB
from support.push import MANIFEST_ACCEPT, Pusher, sha256_digest
from support.registry import RegistryServer

ACCEPT = {"Accept": MANIFEST_ACCEPT}


async def _image(registry: RegistryServer, repo: str = "support/proxied") -> str:
    async with Pusher.for_registry(registry) as pusher:
        return await pusher.push_random_image(repo, "v1")


async def _get(
    proxy: FaultProxy, path: str, *, deadline: float = 5.0, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=deadline)) as session,
        session.request(method, proxy.url + path, headers=ACCEPT) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


async def test_unfaulted_traffic_passes_through_including_blob_uploads(
    fault_proxy: FaultProxy, registry: RegistryServer
) -> None:
    async with Pusher(fault_proxy.url) as pusher:
        digest = await pusher.push_random_image("support/through-proxy", "v1")
        fetched = await pusher.get_manifest("support/through-proxy", "v1")
    assert fetched.digest == digest
    # Upload Locations pointed back at the proxy, so the PUTs went through it too.
    assert fault_proxy.count(r"/blobs/uploads/.+", method="PUT") == 2
    async with Pusher.for_registry(registry) as direct:
        assert (await direct.get_manifest("support/through-proxy", digest)).digest == digest


async def test_head_keeps_the_real_content_length(
    fault_proxy: FaultProxy, registry: RegistryServer
) -> None:
    digest = await _image(registry)
    status, headers, body = await _get(
        fault_proxy, f"/v2/support/proxied/manifests/{digest}", method="HEAD"
    )
    _, _, real = await _get(fault_proxy, f"/v2/support/proxied/manifests/{digest}")
    assert status == 200
    assert body == b""
    assert int(headers["Content-Length"]) == len(real)
    assert headers["Docker-Content-Digest"] == digest


async def test_hang_never_answers(fault_proxy: FaultProxy) -> None:
    fault = fault_proxy.hang(r"/manifests/")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await _get(fault_proxy, "/v2/support/proxied/manifests/v1", deadline=0.3)
    assert time.monotonic() - started < 2
    assert fault.hits == 1


async def test_stall_after_headers_sends_headers_then_nothing(
    fault_proxy: FaultProxy, registry: RegistryServer
) -> None:
    await _image(registry)
    fault_proxy.stall_after_headers(r"/manifests/")
    async with aiohttp.ClientSession() as session:
        resp = await session.get(
            f"{fault_proxy.url}/v2/support/proxied/manifests/v1", headers=ACCEPT
        )
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) > 0
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await resp.read()
        resp.close()


@pytest.mark.parametrize("retry_after", ["2", None])
async def test_429_for_the_first_n_requests_then_pass_through(
    fault_proxy: FaultProxy, registry: RegistryServer, retry_after: str | None
) -> None:
    await _image(registry)
    fault = fault_proxy.status(r"/manifests/v1$", 429, retry_after=retry_after, times=2)
    path = "/v2/support/proxied/manifests/v1"
    for _ in range(2):
        status, headers, _ = await _get(fault_proxy, path)
        assert status == 429
        assert headers.get("Retry-After") == retry_after
    status, _, _ = await _get(fault_proxy, path)
    assert status == 200
    assert fault.hits == 2
    assert fault_proxy.count(r"/manifests/v1$") == 3


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_server_errors(fault_proxy: FaultProxy, code: int) -> None:
    fault_proxy.status(r"/blobs/", code, body=b"upstream exploded")
    status, _, body = await _get(fault_proxy, "/v2/support/proxied/blobs/sha256:" + "0" * 64)
    assert (status, body) == (code, b"upstream exploded")


async def test_truncated_body_breaks_off_mid_response(
    fault_proxy: FaultProxy, registry: RegistryServer
) -> None:
    await _image(registry)
    fault_proxy.truncate(r"/manifests/", keep=10)
    with pytest.raises(aiohttp.ClientPayloadError):
        await _get(fault_proxy, "/v2/support/proxied/manifests/v1")


async def test_endless_body_streams_past_any_cap(
    fault_proxy: FaultProxy, registry: RegistryServer
) -> None:
    await _image(registry)
    fault_proxy.endless(r"/manifests/")
    async with aiohttp.ClientSession() as session:
        resp = await session.get(
            f"{fault_proxy.url}/v2/support/proxied/manifests/v1", headers=ACCEPT
        )
        assert resp.status == 200
        assert "Content-Length" not in resp.headers
        received = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            received += len(chunk)
            if received > 4 * MiB:
                break
        resp.close()
    assert received > 4 * MiB


@pytest.mark.parametrize("declare_length", [True, False])
async def test_huge_body_has_the_requested_size(
    fault_proxy: FaultProxy, registry: RegistryServer, declare_length: bool
) -> None:
    await _image(registry)
    fault_proxy.huge(r"/manifests/", declare_length=declare_length)
    status, headers, body = await _get(fault_proxy, "/v2/support/proxied/manifests/v1")
    assert status == 200
    assert len(body) == 50 * MiB
    assert headers.get("Content-Length") == (str(50 * MiB) if declare_length else None)


async def test_replaced_body_keeps_headers_so_the_digest_no_longer_matches(
    fault_proxy: FaultProxy, registry: RegistryServer
) -> None:
    digest = await _image(registry)
    fault_proxy.replace_body(r"/manifests/", lambda real: real.replace(b"tar+gzip", b"tar+zstd"))
    status, headers, body = await _get(fault_proxy, f"/v2/support/proxied/manifests/{digest}")
    assert status == 200
    assert headers["Docker-Content-Digest"] == digest
    assert sha256_digest(body) != digest
    assert int(headers["Content-Length"]) == len(body)


async def test_wrong_digest_header_with_the_real_body(
    fault_proxy: FaultProxy, registry: RegistryServer
) -> None:
    digest = await _image(registry)
    fault_proxy.wrong_digest_header(r"/manifests/")
    _, headers, body = await _get(fault_proxy, f"/v2/support/proxied/manifests/{digest}")
    assert sha256_digest(body) == digest
    assert headers["Docker-Content-Digest"] == "sha256:" + "0" * 64


async def test_garbage_json_keeps_the_json_content_type(
    fault_proxy: FaultProxy, registry: RegistryServer
) -> None:
    await _image(registry)
    fault_proxy.garbage_json(r"/manifests/")
    _, headers, body = await _get(fault_proxy, "/v2/support/proxied/manifests/v1")
    assert headers["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


async def test_drop_closes_the_connection_without_an_answer(fault_proxy: FaultProxy) -> None:
    fault_proxy.drop(r"/v2/")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await _get(fault_proxy, "/v2/")


async def test_delay_answers_late_but_correctly(fault_proxy: FaultProxy) -> None:
    fault_proxy.delay(r"^/v2/$", 0.3, times=1)
    started = time.monotonic()
    status, _, _ = await _get(fault_proxy, "/v2/")
    assert status == 200
    assert time.monotonic() - started >= 0.3


async def test_faults_match_method_and_path_and_can_be_cleared(fault_proxy: FaultProxy) -> None:
    fault_proxy.status(r"^/v2/$", 503, method="HEAD")
    assert (await _get(fault_proxy, "/v2/"))[0] == 200
    assert (await _get(fault_proxy, "/v2/", method="HEAD"))[0] == 503
    fault_proxy.clear()
    assert (await _get(fault_proxy, "/v2/", method="HEAD"))[0] == 200
    assert fault_proxy.count(r"^/v2/$") == 3
    assert fault_proxy.count(r"^/v2/$", method="HEAD") == 2
    fault_proxy.reset_counts()
    assert fault_proxy.requests == []


async def test_tls_proxy_in_front_of_the_basic_registry(
    make_fault_proxy: Callable[..., FaultProxy], registry_basic: RegistryServer
) -> None:
    proxy = make_fault_proxy(registry_basic, tls=True)
    assert proxy.url.startswith("https://")
    async with Pusher(
        proxy.url,
        ca_file=registry_basic.ca_file,
        username=registry_basic.username,
        password=registry_basic.password,
    ) as pusher:
        digest = await pusher.push_random_image("support/tls-proxy", "v1")
        proxy.status(r"/manifests/v1$", 503, times=1)
        status, _, _ = await pusher.request(
            "GET", "/v2/support/tls-proxy/manifests/v1", repo="support/tls-proxy", expected=(503,)
        )
        assert status == 503
        assert (await pusher.get_manifest("support/tls-proxy", "v1")).digest == digest


async def test_proxy_in_front_of_the_token_registry_keeps_the_bearer_flow(
    make_fault_proxy: Callable[..., FaultProxy], registry_token: RegistryServer
) -> None:
    proxy = make_fault_proxy(registry_token)
    async with Pusher(
        proxy.url,
        ca_file=registry_token.ca_file,
        username=registry_token.username,
        password=registry_token.password,
    ) as pusher:
        digest = await pusher.push_random_image("support/token-proxy", "v1")
        assert pusher.token_requests == 1
    assert proxy.count(r"/manifests/v1$", method="PUT") == 1
    assert digest.startswith("sha256:")
