"""Deliberately minimal registry reads over plain aiohttp, independent of :class:`Pusher`.

The proof tests read back what the pusher and signer wrote through this second, tiny client, so a
bug in the pusher's auth or parsing cannot hide itself. It also spells out the token flow step by
step: ``GET /v2/`` -> 401 challenge -> ``GET realm?service&scope`` -> ``Authorization: Bearer``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from support.push import MANIFEST_ACCEPT
from support.registry import RegistryServer

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` -> ``("bearer", {"realm": …, "service": …})``."""
    scheme, _, params = header.partition(" ")
    return scheme.lower(), dict(_PARAM.findall(params))


@dataclass(frozen=True, slots=True)
class RawResponse:
    """Status, headers and body of one response."""

    status: int
    headers: Mapping[str, str]
    body: bytes


async def fetch_token(
    session: aiohttp.ClientSession,
    registry: RegistryServer,
    scope: str,
    *,
    username: str | None = None,
    password: str | None = None,
) -> RawResponse:
    """Run the token flow's first two steps and return the token endpoint's raw answer."""
    async with session.get(f"{registry.url}/v2/", ssl=registry.aiohttp_ssl) as resp:
        scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
    assert scheme == "bearer", f"{registry.kind} registry did not ask for a Bearer token"
    headers = (
        {"Authorization": aiohttp.encode_basic_auth(username, password or "")}
        if username is not None
        else {}
    )
    async with session.get(
        params["realm"],
        params={"service": params["service"], "scope": scope},
        headers=headers,
        ssl=registry.aiohttp_ssl,
    ) as resp:
        return RawResponse(resp.status, dict(resp.headers), await resp.read())


async def raw_get(
    registry: RegistryServer,
    path: str,
    *,
    accept: str = MANIFEST_ACCEPT,
    method: str = "GET",
    repo: str | None = None,
) -> RawResponse:
    """One request with the registry's own credentials (Basic, or a freshly fetched Bearer token).

    ``repo`` selects the token scope ``repository:<repo>:pull``; it defaults to the name in
    ``/v2/<name>/manifests|blobs|tags/…``.
    """
    headers = {"Accept": accept}
    async with aiohttp.ClientSession() as session:
        if registry.kind == "basic":
            headers["Authorization"] = aiohttp.encode_basic_auth(
                registry.username or "", registry.password or ""
            )
        elif registry.kind == "token":
            name = repo or re.sub(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)/.*$", r"\1", path)
            answer = await fetch_token(
                session,
                registry,
                f"repository:{name}:pull",
                username=registry.username,
                password=registry.password,
            )
            assert answer.status == 200, answer.body
            headers["Authorization"] = f"Bearer {json.loads(answer.body)['token']}"
        async with session.request(
            method, registry.url + path, headers=headers, ssl=registry.aiohttp_ssl
        ) as resp:
            return RawResponse(resp.status, dict(resp.headers), await resp.read())
