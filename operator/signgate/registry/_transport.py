"""One HTTP exchange with a registry, done safely: TLS, auth, retries, caps, and the deadline.

`Transport.request` is the only place signgate talks to a registry. It:
- picks https (verified, with a per-host CA) or, for hosts the user marked insecure, https without
  verification falling back to plain http, as Docker does;
- answers 401 challenges (Bearer token flow or Basic) and reuses cached tokens up front, so a warm
  client spends no round trip on auth;
- retries 429 (honouring Retry-After), 5xx and dropped connections, but only while the one deadline
  of the operation allows it;
- reads bodies with a hard byte cap, and never lets a response outlive the deadline.
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from multidict import CIMultiDictProxy

from signgate import __version__
from signgate.deadline import Deadline
from signgate.errors import (
    DeadlineExceededError,
    RegistryAuthError,
    RegistryError,
    RegistryHTTPError,
    RegistryUnavailableError,
    ResponseTooLargeError,
    truncate,
)
from signgate.registry.auth import (
    Challenge,
    Credentials,
    CredentialStore,
    TokenCache,
    parse_challenges,
)

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


class Transport:
    """HTTP to registries; holds the session, TLS contexts, auth state and token cache."""

    def __init__(self, options: RegistryOptions, *, session: aiohttp.ClientSession | None = None):
        self.options = options
        self._session = session
        self._owns_session = session is None
        self._ssl_contexts: dict[str, ssl.SSLContext | bool] = {}
        self._schemes: dict[str, str] = {}
        self._challenges: dict[str, Challenge] = {}
        self._tokens = TokenCache()
        self._token_locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}
        self.requests_sent = 0
        self.responses: Counter[str] = Counter()
        """Answers by HTTP status ("200", "429", ...), and "error" for no answer (metrics)."""
        """Every HTTP request sent, token requests included (benchmarks and tests read it)."""

    async def close(self) -> None:
        """Close the session if this transport created it."""
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

    def is_insecure(self, host: str) -> bool:
        """Whether the user allowed plain HTTP and unverified TLS for ``host``."""
        return host.lower() in self.options.insecure_hosts

    def _ssl_for(self, host: str, *, fallback_host: str | None = None) -> ssl.SSLContext | bool:
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

    # -- public ------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        host: str,
        repository: str,
        path: str,
        *,
        deadline: Deadline,
        accept: tuple[str, ...] = (),
        max_bytes: int,
        credentials: CredentialStore | None = None,
    ) -> Response:
        """Send ``method`` to ``https://host/v2/{path}`` (or a full URL) and read the response.

        ``credentials`` replace the configured ones for this request (e.g. a Pod's
        imagePullSecrets); tokens are cached per credentials, never shared across them.

        ``path`` may also be an absolute URL on the same host (pagination links). 2xx, 3xx-handled
        and 4xx other than 401/403/429 come back to the caller; everything else raises.

        Raises:
            DeadlineExceededError: the deadline passed first.
            RegistryAuthError: authentication failed or access was denied.
            RegistryHTTPError: 429 past the deadline, 5xx after the affordable retries.
            RegistryUnavailableError: connection or TLS failure.
            ResponseTooLargeError: the body went past ``max_bytes``.
        """
        try:
            async with asyncio.timeout_at(deadline.at):
                store = credentials if credentials is not None else self.options.credentials
                return await self._request_with_auth(
                    method, host, repository, path, deadline, accept, max_bytes, store
                )
        except TimeoutError as exc:
            raise DeadlineExceededError(
                f"deadline exceeded waiting for {host} ({method} {path.split('?')[0]})"
            ) from exc

    # -- auth ----------------------------------------------------------------------------------

    def _scope(self, repository: str) -> str:
        return f"repository:{repository}:pull"

    def _token_key(
        self, challenge: Challenge, repository: str, credentials: Credentials | None
    ) -> tuple[str, str, str, str]:
        # A token obtained with one tenant's credentials must never serve another tenant.
        who = credentials.identity if credentials is not None else "anonymous"
        realm, service = challenge.realm or "", challenge.params.get("service", "")
        return (realm, service, self._scope(repository), who)

    async def _authorization(
        self,
        host: str,
        repository: str,
        deadline: Deadline,
        store: CredentialStore,
        *,
        refresh: bool,
    ) -> str | None:
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        credentials = store.for_registry(host)
        if challenge.scheme == "basic":
            header = credentials.basic_header() if credentials else None
            if header is None:
                raise RegistryAuthError(
                    f"{host} requires a username and password (Basic auth) and none is configured"
                    " (use --registry-config)"
                )
            return header
        if challenge.scheme != "bearer":
            raise RegistryAuthError(f"{host} asks for unsupported auth scheme {challenge.scheme!r}")
        key = self._token_key(challenge, repository, credentials)
        loop = asyncio.get_running_loop()
        if refresh:
            self._tokens.discard(key)
        token = self._tokens.get(key, loop.time())
        if token is None:
            lock = self._token_locks.setdefault(key, asyncio.Lock())
            async with lock:
                token = self._tokens.get(key, loop.time())
                if token is None:
                    token, lifetime = await self._fetch_token(
                        host, challenge, repository, credentials, deadline
                    )
                    self._tokens.put(key, token, loop.time() + lifetime)
            if len(self._token_locks) > 4096:
                self._token_locks.clear()
        return f"Bearer {token}"

    async def _fetch_token(
        self,
        host: str,
        challenge: Challenge,
        repository: str,
        credentials: Credentials | None,
        deadline: Deadline,
    ) -> tuple[str, float]:
        realm = challenge.realm
        if not realm:
            raise RegistryAuthError(f"{host} sent a Bearer challenge without a realm")
        parts = urlsplit(realm)
        realm_host = parts.netloc.lower()
        if parts.scheme not in ("https", "http") or not realm_host:
            raise RegistryAuthError(f"{host} named an invalid token realm {truncate(realm, 100)!r}")
        if parts.scheme == "http" and not (self.is_insecure(host) or self.is_insecure(realm_host)):
            raise RegistryAuthError(
                f"{host} named a plain-http token realm {realm_host}; refusing to send credentials"
                " without TLS (mark the host with --insecure-registry to allow it)"
            )
        params = {"scope": self._scope(repository)}
        if "service" in challenge.params:
            params["service"] = challenge.params["service"]
        headers = {"Accept": "application/json"}
        data: dict[str, str] | None = None
        method = "GET"
        if credentials is not None and credentials.identity_token:
            method = "POST"
            data = {
                "grant_type": "refresh_token",
                "refresh_token": credentials.identity_token,
                "client_id": "signgate",
                **params,
            }
        elif credentials is not None and (basic := credentials.basic_header()):
            headers["Authorization"] = basic
        url = (
            realm
            if data is not None
            else f"{realm}{'&' if '?' in realm else '?'}{urlencode(params)}"
        )
        ssl_ctx = self._ssl_for(realm_host, fallback_host=host)
        limit = self.options.limits.max_token_response_bytes
        for attempt in range(1, self.options.limits.max_attempts + 1):
            self.requests_sent += 1
            try:
                async with self._client().request(
                    method, url, headers=headers, data=data, ssl=ssl_ctx, allow_redirects=False
                ) as resp:
                    self.responses[str(resp.status)] += 1
                    body = await self._read_capped(resp, limit, url)
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
            except aiohttp.ClientError as exc:
                self.responses["error"] += 1
                if attempt < self.options.limits.max_attempts:
                    await self._backoff(
                        attempt, None, deadline, realm, "token endpoint unreachable"
                    )
                    continue
                raise RegistryAuthError(
                    f"token endpoint {realm_host} unreachable: {describe_connection_error(exc)}"
                ) from exc
            if (status == 429 or status >= 500) and attempt < self.options.limits.max_attempts:
                why = f"token endpoint answered HTTP {status}"
                await self._backoff(attempt, retry_after, deadline, realm, why)
                continue
            if status == 429 or status >= 500:
                raise RegistryAuthError(
                    f"token endpoint {realm_host} failed for {repository} after {attempt} "
                    f"attempts (HTTP {status}: {error_detail(body)})"
                )
            if status != 200:
                who = "anonymous" if credentials is None else "the configured credentials"
                raise RegistryAuthError(
                    f"token endpoint {realm_host} refused {who} for {repository} "
                    f"(HTTP {status}: {error_detail(body)})"
                )
            return self._parse_token(body, realm_host)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _parse_token(body: bytes, realm_host: str) -> tuple[str, float]:
        try:
            doc: Any = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise RegistryAuthError(f"token endpoint {realm_host} returned non-JSON") from exc
        if not isinstance(doc, dict):
            raise RegistryAuthError(f"token endpoint {realm_host} returned a non-object")
        token = doc.get("token") or doc.get("access_token")
        if not isinstance(token, str) or not token or not token.isprintable() or " " in token:
            raise RegistryAuthError(f"token endpoint {realm_host} returned no usable token")
        expires_in = doc.get("expires_in", 60)
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            expires_in = 60
        # The token spec's floor is 60 s; a shorter or negative lifetime is treated as "use once".
        lifetime = float(expires_in) if expires_in > 0 else 0.0
        return token, lifetime

    # -- the exchange ----------------------------------------------------------------------------

    async def _request_with_auth(
        self,
        method: str,
        host: str,
        repository: str,
        path: str,
        deadline: Deadline,
        accept: tuple[str, ...],
        max_bytes: int,
        store: CredentialStore,
    ) -> Response:
        authorization = await self._authorization(host, repository, deadline, store, refresh=False)
        response = await self._send(method, host, path, deadline, accept, max_bytes, authorization)
        if response.status == 401:
            challenges = parse_challenges(",".join(response.headers.getall("WWW-Authenticate", [])))
            usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
            if not usable:
                raise RegistryAuthError(f"{host} answered 401 without a usable auth challenge")
            had_auth = authorization is not None
            self._challenges[host] = next((c for c in usable if c.scheme == "bearer"), usable[0])
            authorization = await self._authorization(
                host, repository, deadline, store, refresh=had_auth
            )
            response = await self._send(
                method, host, path, deadline, accept, max_bytes, authorization
            )
            if response.status == 401:
                challenge = self._challenges.get(host)
                credentials = store.for_registry(host)
                if challenge is not None:
                    self._tokens.discard(self._token_key(challenge, repository, credentials))
                if credentials is None:
                    raise RegistryAuthError(
                        f"{host} requires credentials to pull {repository} and none are configured"
                        " for it (use --registry-config)"
                    )
                if challenge is not None and challenge.scheme == "bearer":
                    # The token endpoint accepted us and issued a token; the registry rejects it.
                    realm = urlsplit(challenge.realm or "").netloc or "its token endpoint"
                    raise RegistryAuthError(
                        f"{host} refused our credentials for {repository}: HTTP 401 with a fresh "
                        f"token from {realm} (expired, for another service, or signed by a key "
                        "the registry does not trust)"
                    )
                raise RegistryAuthError(
                    f"{host} refused our credentials for {repository} (HTTP 401 after auth)"
                )
        if response.status == 403:
            raise RegistryAuthError(
                f"{host} denied access to {repository} (HTTP 403: {error_detail(response.body)})"
            )
        return response

    def _url(self, scheme: str, host: str, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path
        return f"{scheme}://{host}/v2/{path}"

    async def _send(
        self,
        method: str,
        host: str,
        path: str,
        deadline: Deadline,
        accept: tuple[str, ...],
        max_bytes: int,
        authorization: str | None,
    ) -> Response:
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
                response = await self._exchange(method, url, host, headers, max_bytes)
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
                    await self._backoff(attempt, None, deadline, url, f"connection failed: {why}")
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
                    await self._backoff(attempt, retry_after, deadline, url, why)
                    continue
                what = "rate limited" if response.status == 429 else "server error"
                detail = error_detail(response.body)
                raise RegistryHTTPError(
                    url,
                    response.status,
                    f"{what} after {attempt} attempts" + (f": {detail}" if detail else ""),
                )
            return response

    async def _exchange(
        self, method: str, url: str, host: str, headers: dict[str, str], max_bytes: int
    ) -> Response:
        self.requests_sent += 1
        try:
            return await self._exchange_counted(method, url, host, headers, max_bytes)
        except aiohttp.ClientError:
            self.responses["error"] += 1
            raise

    async def _exchange_counted(
        self, method: str, url: str, host: str, headers: dict[str, str], max_bytes: int
    ) -> Response:
        async with self._client().request(
            method,
            url,
            headers=headers,
            ssl=self._ssl_for(host),
            max_redirects=self.options.limits.max_redirects,
        ) as resp:
            self.responses[str(resp.status)] += 1
            if resp.status >= 400:
                body = await self._read_capped(
                    resp, self.options.limits.max_error_body_bytes, url, truncate_ok=True
                )
            elif method == "HEAD":
                body = b""
            else:
                body = await self._read_capped(resp, max_bytes, url)
            return Response(resp.status, resp.headers, body, str(resp.url))

    @staticmethod
    async def _read_capped(
        resp: aiohttp.ClientResponse, limit: int, url: str, *, truncate_ok: bool = False
    ) -> bytes:
        declared = resp.content_length
        if declared is not None and declared > limit and not truncate_ok:
            raise ResponseTooLargeError(
                f"{url.split('?')[0]}: response of {declared} bytes exceeds the {limit}-byte limit"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await resp.content.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                if truncate_ok:
                    chunks.append(chunk[: limit - (size - len(chunk))])
                    break
                raise ResponseTooLargeError(
                    f"{url.split('?')[0]}: response exceeds the {limit}-byte limit"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def _backoff(
        self, attempt: int, retry_after: str | None, deadline: Deadline, url: str, why: str
    ) -> None:
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
        await asyncio.sleep(delay)


__all__ = [
    "RegistryError",
    "RegistryLimits",
    "RegistryOptions",
    "Response",
    "Transport",
]
