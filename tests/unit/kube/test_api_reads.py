"""The small Kubernetes client reads whole answers, however they arrive, and pages lists.

An aiohttp server on loopback stands in for the apiserver: what matters here is HTTP framing
(chunks that arrive apart, pages linked by ``continue``), which no emulator varies on purpose.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import kopf
import pytest
from aiohttp import web

from signgate.kube.api import KubeApi, KubeApiError

ITEMS = 250
PAGE = 100


async def _pods(request: web.Request) -> web.StreamResponse:
    start = int(request.query.get("continue") or 0)
    limit = int(request.query["limit"])
    end = min(start + limit, ITEMS)
    items = [{"metadata": {"name": f"pod-{i}"}, "pad": "x" * 4000} for i in range(start, end)]
    body = json.dumps(
        {"items": items, "metadata": {"continue": str(end) if end < ITEMS else ""}}
    ).encode()
    response = web.StreamResponse()  # chunked, as the apiserver sends large lists
    await response.prepare(request)
    for offset in range(0, len(body), 7000):
        await response.write(body[offset : offset + 7000])
        await asyncio.sleep(0)  # each piece leaves apart, so one read() sees only a part
    await response.write_eof()
    return response


async def _huge(request: web.Request) -> web.Response:
    return web.json_response({"items": [], "pad": "x" * (2 * 1024 * 1024)})


@pytest.fixture
async def api() -> AsyncIterator[KubeApi]:
    app = web.Application()
    app.router.add_get("/api/v1/pods", _pods)
    app.router.add_get("/api/v1/secrets/huge", _huge)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = KubeApi(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"))
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()


async def test_a_chunked_list_is_read_whole_and_page_by_page(api: KubeApi) -> None:
    items = await api.list_all("/api/v1/pods", page=PAGE)
    assert [i["metadata"]["name"] for i in items] == [f"pod-{i}" for i in range(ITEMS)]


async def test_an_answer_over_the_cap_is_an_error_not_a_partial_read(api: KubeApi) -> None:
    with pytest.raises(KubeApiError, match="response over 1048576 bytes"):
        await api.read("/api/v1/secrets/huge")
