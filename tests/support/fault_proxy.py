"""A fault-injecting reverse proxy in front of a real registry.

Why it exists: the real registry (distribution 2.8) cannot be made to hang, rate-limit, send a
truncated, endless, huge or swapped body, or lie in ``Docker-Content-Digest``. signgate must survive
all of these within its deadline and byte caps, so tests put this proxy between signgate and the
registry and arm faults per request path.

Everything not matched by a fault is forwarded unchanged (method, path, query, body, headers minus
hop-by-hop ones). ``X-Forwarded-Host``/``X-Forwarded-Proto`` are set so the registry builds upload
``Location`` URLs that point back at the proxy. Bearer realms still point at the token server.

Faults match ``re.search(path_regex, request.path)`` (path without query) and an optional method,
are tried in the order they were added, and apply to the first ``times`` matching requests
(``None``: all of them). Every request is counted, faulted or not.

    proxy = FaultProxy.for_registry(registry); proxy.start()
    proxy.status(r"/manifests/", 429, retry_after="1", times=2)
    proxy.replace_body(r"/blobs/", b"evil")  # keeps Docker-Content-Digest: a digest mismatch
    assert proxy.count(r"/manifests/") == 3

Streaming faults (truncate, reset, huge, endless) count the body bytes they managed to hand to the
client in ``Fault.sent`` (and all of them together in ``FaultProxy.bytes_sent``): a client that
stops reading at its cap makes the proxy stop writing soon after, so ``sent`` stays near the cap
(plus what the kernel's socket buffers hold) instead of growing without end.
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import trustme
from aiohttp import web
from multidict import CIMultiDict

from support._threaded import STOPPING, ThreadedApp
from support.tls import client_ssl_context, server_ssl_context

if TYPE_CHECKING:
    from pathlib import Path

    from support.registry import RegistryServer

MiB = 1024 * 1024
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)
_UPSTREAM: web.AppKey[aiohttp.ClientSession] = web.AppKey("upstream", aiohttp.ClientSession)


class FaultKind(enum.Enum):
    """What an armed fault does to a matching request."""

    HANG = "hang"
    """Never answer: no status line, no headers (until the client gives up or the proxy stops)."""
    STALL_AFTER_HEADERS = "stall_after_headers"
    """Send the upstream status and headers (with the real Content-Length), then no body."""
    STATUS = "status"
    """Answer with a fixed status (429, 500, 502, 503, …) without asking upstream."""
    DELAY = "delay"
    """Wait, then forward normally."""
    TRUNCATE = "truncate"
    """Upstream headers and Content-Length, only part of the body, then close the connection."""
    ENDLESS = "endless"
    """Upstream status/headers, then a chunked body that never ends."""
    HUGE = "huge"
    """Upstream status/headers, then a body of ``size`` bytes (declared or chunked)."""
    REPLACE_BODY = "replace_body"
    """Upstream status/headers (incl. Docker-Content-Digest), but other body bytes."""
    WRONG_DIGEST_HEADER = "wrong_digest_header"
    """The real body, with a different ``Docker-Content-Digest`` header."""
    DROP = "drop"
    """Close the connection without answering."""
    RESET = "reset"
    """Upstream status/headers and Content-Length, part of the body, then a TCP reset (RST)."""


@dataclass
class Fault:
    """An armed fault. ``hits`` counts how often it fired."""

    kind: FaultKind
    path: re.Pattern[str]
    method: str | None = None
    times: int | None = None
    status: int = 503
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | Callable[[bytes], bytes] | None = None
    size: int = 50 * MiB
    declare_length: bool = True
    seconds: float = 0.0
    keep: int | None = None
    hits: int = 0
    sent: int = 0
    """Body bytes written to clients by this fault (streaming faults only)."""

    def take(self, method: str, path: str) -> bool:
        """Whether this fault applies to the request; consumes one of ``times`` if so."""
        if self.method is not None and self.method != method:
            return False
        if not self.path.search(path):
            return False
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
        self.hits += 1
        return True


class FaultProxy:
    """Reverse proxy on 127.0.0.1 (own thread and loop) with per-path fault injection."""

    def __init__(
        self,
        upstream_url: str,
        *,
        upstream_ca_file: Path | None = None,
        tls_ca: trustme.CA | None = None,
    ) -> None:
        """Prepare the proxy; call :meth:`start` to serve.

        Args:
            upstream_url: the registry base URL.
            upstream_ca_file: CA PEM for an HTTPS upstream.
            tls_ca: serve HTTPS with a certificate from this CA (default: plain HTTP).
        """
        self.upstream_url = upstream_url.rstrip("/")
        self._upstream_ssl = client_ssl_context(upstream_ca_file)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._requests: list[tuple[str, str]] = []
        app = web.Application(client_max_size=64 * MiB)
        app.on_startup.append(self._open_upstream)
        app.on_cleanup.append(self._close_upstream)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        ssl_context = server_ssl_context(tls_ca) if tls_ca is not None else None
        self._server = ThreadedApp(app, name="fault-proxy", ssl_context=ssl_context)

    @classmethod
    def for_registry(
        cls, registry: RegistryServer, *, tls_ca: trustme.CA | None = None
    ) -> FaultProxy:
        """A proxy in front of a running :class:`~support.registry.RegistryServer`."""
        return cls(registry.url, upstream_ca_file=registry.ca_file, tls_ca=tls_ca)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start serving; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging and endless responses are cut. Idempotent."""
        self._server.stop()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the proxy (use it instead of the registry's)."""
        return self._server.url

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` of the proxy (the registry part of image references)."""
        return self._server.host

    # -- observation ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request received, in order."""
        with self._lock:
            return list(self._requests)

    def count(self, path: str | None = None, *, method: str | None = None) -> int:
        """Requests whose path matches the regex ``path`` (all if None) and ``method``."""
        pattern = re.compile(path) if path is not None else None
        return sum(
            1
            for m, p in self.requests
            if (method is None or m == method) and (pattern is None or pattern.search(p))
        )

    @property
    def bytes_sent(self) -> int:
        """Body bytes written to clients by all streaming faults armed so far."""
        with self._lock:
            return sum(fault.sent for fault in self._faults)

    def reset_counts(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self._requests.clear()

    # -- arming faults -------------------------------------------------------------------------

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def add(self, fault: Fault) -> Fault:
        """Arm a fault (the helpers below build one for you)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def _arm(self, kind: FaultKind, path: str, **kwargs: Any) -> Fault:
        return self.add(Fault(kind, re.compile(path), **kwargs))

    def hang(self, path: str, *, method: str | None = None, times: int | None = None) -> Fault:
        """Never answer matching requests."""
        return self._arm(FaultKind.HANG, path, method=method, times=times)

    def stall_after_headers(
        self, path: str, *, method: str | None = None, times: int | None = None
    ) -> Fault:
        """Answer status and headers, then stall forever before the body."""
        return self._arm(FaultKind.STALL_AFTER_HEADERS, path, method=method, times=times)

    def status(
        self,
        path: str,
        status: int,
        *,
        retry_after: str | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Answer ``status`` (e.g. 429 with/without ``Retry-After``, 500, 502, 503)."""
        all_headers = dict(headers or {})
        if retry_after is not None:
            all_headers["Retry-After"] = retry_after
        return self._arm(
            FaultKind.STATUS,
            path,
            status=status,
            body=body,
            headers=all_headers,
            method=method,
            times=times,
        )

    def delay(
        self, path: str, seconds: float, *, method: str | None = None, times: int | None = None
    ) -> Fault:
        """Forward after ``seconds``."""
        return self._arm(FaultKind.DELAY, path, seconds=seconds, method=method, times=times)

    def truncate(
        self,
        path: str,
        *,
        keep: int | None = None,
        method: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Send only ``keep`` bytes (default half) of the real body, then close the connection."""
        return self._arm(FaultKind.TRUNCATE, path, keep=keep, method=method, times=times)

    def reset(
        self,
        path: str,
        *,
        keep: int | None = None,
        method: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Send ``keep`` bytes (default half) of the real body, then reset the connection (RST)."""
        return self._arm(FaultKind.RESET, path, keep=keep, method=method, times=times)

    def endless(self, path: str, *, method: str | None = None, times: int | None = None) -> Fault:
        """Stream a body that never ends."""
        return self._arm(FaultKind.ENDLESS, path, method=method, times=times)

    def huge(
        self,
        path: str,
        *,
        size: int = 50 * MiB,
        declare_length: bool = True,
        method: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Stream ``size`` bytes, with ``Content-Length`` (or chunked if not ``declare_length``)."""
        return self._arm(
            FaultKind.HUGE,
            path,
            size=size,
            declare_length=declare_length,
            method=method,
            times=times,
        )

    def replace_body(
        self,
        path: str,
        body: bytes | Callable[[bytes], bytes],
        *,
        method: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Keep upstream headers but send other bytes (or ``body(real_body)``)."""
        return self._arm(FaultKind.REPLACE_BODY, path, body=body, method=method, times=times)

    def garbage_json(
        self,
        path: str,
        *,
        body: bytes = b'{"schemaVersion": 2, "layers": [{"mediaType": ',
        method: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Keep upstream headers (JSON content type) but send JSON that does not parse."""
        return self.replace_body(path, body, method=method, times=times)

    def wrong_digest_header(
        self,
        path: str,
        *,
        digest: str = "sha256:" + "0" * 64,
        method: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Send the real body with ``Docker-Content-Digest: digest``."""
        return self._arm(
            FaultKind.WRONG_DIGEST_HEADER,
            path,
            headers={"Docker-Content-Digest": digest},
            method=method,
            times=times,
        )

    def drop(self, path: str, *, method: str | None = None, times: int | None = None) -> Fault:
        """Close the connection without any response."""
        return self._arm(FaultKind.DROP, path, method=method, times=times)

    # -- serving -------------------------------------------------------------------------------

    async def _open_upstream(self, app: web.Application) -> None:
        connector = aiohttp.TCPConnector(
            ssl=self._upstream_ssl if self._upstream_ssl is not None else True
        )
        app[_UPSTREAM] = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def _close_upstream(self, app: web.Application) -> None:
        await app[_UPSTREAM].close()

    def _match(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self._requests.append((method, path))
            for fault in self._faults:
                if fault.take(method, path):
                    return fault
        return None

    async def _forward(self, request: web.Request) -> tuple[int, CIMultiDict[str], bytes]:
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
        )
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        data = await request.read()
        async with request.app[_UPSTREAM].request(
            request.method,
            self.upstream_url + request.path_qs,
            headers=headers,
            data=data or None,
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            out = CIMultiDict(
                (k, v) for k, v in resp.headers.items() if k.lower() not in _HOP_BY_HOP
            )
            # HEAD has no body but must keep the real length.
            if request.method == "HEAD" and "Content-Length" in resp.headers:
                out["Content-Length"] = resp.headers["Content-Length"]
            return resp.status, out, body

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._match(request.method, request.path)
        kind = fault.kind if fault is not None else None
        if fault is None or kind is FaultKind.DELAY:
            if fault is not None:
                await asyncio.sleep(fault.seconds)
            return self._plain(*await self._forward(request))
        if kind is FaultKind.HANG:
            await request.app[STOPPING].wait()
            raise asyncio.CancelledError
        if kind is FaultKind.DROP:
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError
        if kind is FaultKind.STATUS:
            body = fault.body if isinstance(fault.body, bytes) else b""
            return web.Response(status=fault.status, body=body, headers=fault.headers)

        status, headers, body = await self._forward(request)
        if kind is FaultKind.WRONG_DIGEST_HEADER:
            headers.update(fault.headers)
            return self._plain(status, headers, body)
        if kind is FaultKind.REPLACE_BODY:
            new = fault.body(body) if callable(fault.body) else (fault.body or b"")
            return self._plain(status, headers, new)
        headers.pop("Content-Length", None)
        resp = web.StreamResponse(status=status, headers=headers)
        if kind is FaultKind.STALL_AFTER_HEADERS:
            resp.content_length = len(body)
            await resp.prepare(request)
            await request.app[STOPPING].wait()
            raise asyncio.CancelledError
        if kind is FaultKind.TRUNCATE or kind is FaultKind.RESET:
            resp.content_length = len(body)
            await resp.prepare(request)
            part = body[: fault.keep if fault.keep is not None else len(body) // 2]
            await resp.write(part)
            fault.sent += len(part)
            transport = request.transport
            assert transport is not None
            if kind is FaultKind.TRUNCATE:
                transport.close()
            else:
                sock = transport.get_extra_info("socket")
                if sock is not None:  # linger 0: close() sends RST instead of FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            raise asyncio.CancelledError
        if kind is FaultKind.HUGE and fault.declare_length:
            resp.content_length = fault.size
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = os.urandom(64 * 1024)
        remaining = fault.size if kind is FaultKind.HUGE else -1
        while remaining != 0:
            piece = chunk if remaining < 0 else chunk[:remaining]
            await resp.write(piece)
            fault.sent += len(piece)
            remaining = remaining - len(piece) if remaining > 0 else remaining
        await resp.write_eof()
        return resp

    @staticmethod
    def _plain(status: int, headers: CIMultiDict[str], body: bytes) -> web.Response:
        if "Content-Length" in headers and not body:
            # A HEAD answer: aiohttp must not recompute the length from the empty body.
            return web.Response(status=status, headers=headers)
        headers.pop("Content-Length", None)
        return web.Response(status=status, headers=headers, body=body)
