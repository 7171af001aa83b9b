"""One HTTP exchange with a registry, capped and retried.

`Exchanger.send` is the only way signgate's registry client puts a request on the wire. It:
- picks https (verified, with a per-host CA) or, for hosts the user marked insecure, https without
  verification falling back to plain http, as Docker does;
- retries 429 (honouring Retry-After), 5xx and dropped connections, but only while the one deadline
  of the operation allows it;
- reads bodies with a hard byte cap (`read_capped`).

Authentication (401 challenges, the token flow) is the layer above: `signgate.registry._transport`.
Below is a `RoundTrip`: one request and its whole, capped answer. Production uses aiohttp
(`AiohttpRoundTrip`); unit tests use an in-memory registry that implements the same protocol
(``tests/support/memory_registry.py``), so everything above the socket runs as in production.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import aiohttp
from multidict import CIMultiDictProxy

from signgate import __version__
from signgate.deadline import Deadline
from signgate.errors import (
    RegistryHTTPError,
    RegistryUnavailableError,
    ResponseTooLargeError,
    truncate,
)
from signgate.registry.auth import CredentialStore

log = logging.getLogger(__name__)

USER_AGENT = f"signgate/{__version__}"
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class RegistryLimits:
    """Caps on everything fetched from a registry; one place to tune them."""

    max_manifest_bytes: int = 4 * 1024 * 1024
    """Manifests, indexes and referrers pages."""
    max_blob_bytes: int = 1024 * 1024
    """Signature payloads and bundles (cosign allows 128 MiB; no real signature nears 1 MiB)."""
    max_token_response_bytes: int = 64 * 1024
    max_error_body_bytes: int = 4 * 1024
    max_layers_per_manifest: int = 128
    """cosign appends up to 1000 signature layers; past this cap the manifest is refused."""
    max_referrers: int = 256
    max_referrer_pages: int = 8
    max_attempts: int = 4
    """Attempts per request for 429, 5xx and dropped connections (the deadline still rules)."""
    max_redirects: int = 3


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to reach registries: TLS trust, insecure hosts, credentials and limits."""

    insecure_hosts: frozenset[str] = frozenset()
    """``host[:port]`` values allowed plain HTTP and unverified TLS (``--insecure-registry``)."""
    ca_files: Mapping[str, str] = field(default_factory=dict)
    """Extra CA bundle (PEM file) per ``host[:port]``, added to the system trust store."""
    credentials: CredentialStore = field(default_factory=CredentialStore.empty)
    limits: RegistryLimits = field(default_factory=RegistryLimits)


@dataclass(frozen=True, slots=True)
class Response:
    """A fully read response (the body is within its cap)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: str


class RoundTrip(Protocol):
    """One HTTP request and its whole answer, the body read under a cap."""

    async def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        tls: ssl.SSLContext | bool,
        max_bytes: int,
        error_bytes: int | None,
        max_redirects: int,
        on_status: Callable[[int], None],
        data: Mapping[str, str] | None = None,
    ) -> Response:
        """Send the request and read the answer.

        ``error_bytes``: an error status's body is cut to this many bytes instead of refused;
        None reads it under ``max_bytes`` like any other. A HEAD answer has no body.
        ``max_redirects`` 0 returns a redirect as it is. ``on_status`` is called with the status
        as soon as it is known (metrics count an answer even when its body then fails).

        Raises:
            aiohttp.ClientError: no (complete) answer: connection, TLS or protocol failure.
            ResponseTooLargeError: the body went past ``max_bytes``.
        """

    async def close(self) -> None:
        """Release connections."""


async def read_capped(
    resp: aiohttp.ClientResponse, limit: int, *, truncate_over: bool = False
) -> bytes | None:
    """The whole body, or None once it passes ``limit`` bytes (with ``truncate_over``: its first
    ``limit`` bytes instead). One ``read`` returns only what is buffered, which for a large or
    chunked answer is a part of it: read to the end."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await resp.content.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            if truncate_over:
                chunks.append(chunk[: limit - (size - len(chunk))])
                return b"".join(chunks)
            return None
        chunks.append(chunk)


class AiohttpRoundTrip:
    """`RoundTrip` over one aiohttp session (made on first use)."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owns_session = session is None

    async def close(self) -> None:
        """Close the session if this object created it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=60),
                headers={"User-Agent": USER_AGENT},
                auto_decompress=False,
            )
        return self._session

    async def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        tls: ssl.SSLContext | bool,
        max_bytes: int,
        error_bytes: int | None,
        max_redirects: int,
        on_status: Callable[[int], None],
        data: Mapping[str, str] | None = None,
    ) -> Response:
        redirects = (
            {"max_redirects": max_redirects} if max_redirects else {"allow_redirects": False}
        )
        async with self._client().request(
            method, url, headers=dict(headers), data=data, ssl=tls, **redirects
        ) as resp:
            on_status(resp.status)
            where = url.split("?")[0]
            if resp.status >= 400 and error_bytes is not None:
                body = await read_capped(resp, error_bytes, truncate_over=True) or b""
            elif method == "HEAD":
                body = b""
            else:
                declared = resp.content_length
                if declared is not None and declared > max_bytes:
                    raise ResponseTooLargeError(
                        f"{where}: response of {declared} bytes exceeds the {max_bytes}-byte limit"
                    )
                read = await read_capped(resp, max_bytes)
                if read is None:
                    raise ResponseTooLargeError(
                        f"{where}: response exceeds the {max_bytes}-byte limit"
                    )
                body = read
            return Response(resp.status, resp.headers, body, str(resp.url))


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_RECEIVED = re.compile(r"received (\d+) of (\d+) bytes")


def describe_connection_error(exc: Exception) -> str:
    """A short, human reason for a connection failure (aiohttp's own text names internals)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "host name not found (DNS)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        # asyncio's strerror is "Connect call failed ('1.2.3.4', 5000)": name the errno instead.
        errno = None if isinstance(os_error, ssl.SSLError) else os_error.errno
        reason = (
            (os.strerror(errno) if errno else None)
            or os_error.strerror
            or str(os_error)
            or type(os_error).__name__
        )
        return f"{reason} (connecting to {exc.host}:{exc.port})"
    if isinstance(exc, aiohttp.ClientPayloadError):
        # aiohttp says "<ContentLengthError: 400, …>", as if the registry had answered 400.
        text = str(exc)
        how = "reset" if "ConnectionResetError" in text else "closed"
        received = _RECEIVED.search(text)
        if received:
            return f"connection {how} after {received[1]} of {received[2]} body bytes"
        return f"connection {how} before the response body was complete"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed without a complete answer"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def error_detail(body: bytes) -> str:
    """The human part of a distribution error body, or the start of whatever else it is."""
    try:
        doc = json.loads(body)
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return truncate(f"{first.get('code', '')} {first.get('message', '')}".strip())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        pass
    return truncate(body.decode("utf-8", "replace"))


class Exchanger:
    """Registry HTTP below authentication: TLS contexts, schemes, retries, counters."""

    def __init__(
        self,
        options: RegistryOptions,
        round_trip: RoundTrip | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``sleep`` waits between retries (tests pass one that only moves virtual time)."""
        self.options = options
        self.round_trip: RoundTrip = round_trip or AiohttpRoundTrip()
        self._sleep = sleep
        self._ssl_contexts: dict[str, ssl.SSLContext | bool] = {}
        self._schemes: dict[str, str] = {}
        self.requests_sent = 0
        """Every HTTP request sent, token requests included (benchmarks and tests read it)."""
        self.responses: Counter[str] = Counter()
        """Answers by HTTP status ("200", "429", ...), and "error" for no answer (metrics)."""

    async def close(self) -> None:
        """Release connections."""
        await self.round_trip.close()

    def is_insecure(self, host: str) -> bool:
        """Whether the user allowed plain HTTP and unverified TLS for ``host``."""
        return host.lower() in self.options.insecure_hosts

    def ssl_for(self, host: str, *, fallback_host: str | None = None) -> ssl.SSLContext | bool:
        """The TLS settings for ``host``: False (unverified) for an insecure host, else a context
        trusting the system CAs plus ``host``'s (or ``fallback_host``'s) configured CA file."""
        key = host.lower()
        if self.is_insecure(key):
            return False
        if key not in self._ssl_contexts:
            ca_file = self.options.ca_files.get(key)
            if ca_file is None and fallback_host is not None:
                ca_file = self.options.ca_files.get(fallback_host.lower())
            context = ssl.create_default_context()
            if ca_file is not None:
                try:
                    context.load_verify_locations(cafile=ca_file)
                except (OSError, ssl.SSLError) as exc:
                    raise RegistryUnavailableError(
                        f"cannot load CA bundle {ca_file} for {host}: {exc}"
                    ) from exc
            self._ssl_contexts[key] = context
        return self._ssl_contexts[key]

    async def once(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        tls: ssl.SSLContext | bool,
        max_bytes: int,
        error_bytes: int | None,
        max_redirects: int,
        data: Mapping[str, str] | None = None,
    ) -> Response:
        """One counted `RoundTrip`, not retried.

        Raises:
            aiohttp.ClientError: no (complete) answer.
            ResponseTooLargeError: the body went past ``max_bytes``.
        """
        self.requests_sent += 1
        try:
            response = await self.round_trip(
                method,
                url,
                headers=headers,
                tls=tls,
                max_bytes=max_bytes,
                error_bytes=error_bytes,
                max_redirects=max_redirects,
                on_status=self._count,
                data=data,
            )
        except aiohttp.ClientError:
            self.responses["error"] += 1
            raise
        return response

    def _count(self, status: int) -> None:
        self.responses[str(status)] += 1

    def _url(self, scheme: str, host: str, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path
        return f"{scheme}://{host}/v2/{path}"

    async def send(
        self,
        method: str,
        host: str,
        path: str,
        deadline: Deadline,
        accept: tuple[str, ...],
        max_bytes: int,
        authorization: str | None,
    ) -> Response:
        """``method`` on ``https://host/v2/{path}`` (or a full URL on ``host``), retried.

        2xx, 3xx and 4xx come back to the caller.

        Raises:
            RegistryHTTPError: 429 or 5xx after the affordable retries.
            RegistryUnavailableError: connection or TLS failure.
            ResponseTooLargeError: the body went past ``max_bytes``.
        """
        headers: dict[str, str] = {}
        if accept:
            headers["Accept"] = ", ".join(accept)
        if authorization:
            headers["Authorization"] = authorization
        limits = self.options.limits
        attempt = 0
        while True:
            attempt += 1
            scheme = self._schemes.get(host, "https")
            url = self._url(scheme, host, path)
            try:
                response = await self.once(
                    method,
                    url,
                    headers=headers,
                    tls=self.ssl_for(host),
                    max_bytes=max_bytes,
                    error_bytes=limits.max_error_body_bytes,
                    max_redirects=limits.max_redirects,
                )
            except aiohttp.ClientConnectorCertificateError as exc:
                raise RegistryUnavailableError(
                    f"TLS certificate of {host} is not trusted ({exc.certificate_error}); "
                    "configure its CA, or --insecure-registry for a test registry"
                ) from exc
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                if (
                    self.is_insecure(host)
                    and scheme == "https"
                    and self._schemes.get(host) != "https"
                ):
                    # Docker's rule for insecure registries: try TLS, then plain HTTP. (Another
                    # request may have found that out already; "https" is only set on success.)
                    self._schemes[host] = "http"
                    continue
                why = describe_connection_error(exc)
                # A name that does not resolve will not resolve in 250 ms either.
                retryable = not isinstance(exc, aiohttp.ClientConnectorDNSError)
                if retryable and attempt < limits.max_attempts:
                    await self.backoff(attempt, None, deadline, url, f"connection failed: {why}")
                    continue
                # Connected and then cut off is not "cannot reach": say which it was.
                failed = (
                    "cannot reach"
                    if isinstance(exc, aiohttp.ClientConnectorError)
                    else "lost the connection to"
                )
                raise RegistryUnavailableError(f"{failed} {host}: {why}") from exc
            if self.is_insecure(host):
                self._schemes.setdefault(host, scheme)
            if response.status == 429 or response.status >= 500:
                if attempt < limits.max_attempts:
                    why = f"HTTP {response.status}"
                    retry_after = response.headers.get("Retry-After")
                    await self.backoff(attempt, retry_after, deadline, url, why)
                    continue
                what = "rate limited" if response.status == 429 else "server error"
                detail = error_detail(response.body)
                raise RegistryHTTPError(
                    url,
                    response.status,
                    f"{what} after {attempt} attempts" + (f": {detail}" if detail else ""),
                )
            return response

    async def backoff(
        self, attempt: int, retry_after: str | None, deadline: Deadline, url: str, why: str
    ) -> None:
        """Sleep before attempt ``attempt + 1``, or raise if the deadline leaves no time.

        Raises:
            RegistryHTTPError: a Retry-After past the deadline.
            RegistryUnavailableError: no time left to retry.
        """
        delay = _retry_after_seconds(retry_after)
        if delay is None:
            delay = min(0.25 * 2 ** (attempt - 1), 2.0)
        remaining = deadline.remaining()
        where = url.split("?")[0]
        if delay >= remaining:
            if retry_after is not None:
                raise RegistryHTTPError(
                    where,
                    429,
                    f"{why}; Retry-After {delay:.0f}s is past the deadline ({remaining:.1f}s left)",
                )
            raise RegistryUnavailableError(f"{where}: {why}; no time left in the deadline to retry")
        log.info("%s: %s; retrying in %.2fs (attempt %d)", where, why, delay, attempt + 1)
        await self._sleep(delay)
