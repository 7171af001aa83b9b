"""Registry authentication: the 401 challenge → token flow, on top of one capped, retried HTTP
exchange (`signgate.registry._http.Exchanger`).

`Transport.request` is the only place signgate talks to a registry. It answers 401 challenges
(Bearer token flow or Basic) and reuses cached tokens up front, so a warm client spends no round
trip on auth; tokens are cached per credentials and never serve another tenant. The whole operation,
retries included, never outlives its deadline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from signgate.deadline import Deadline
from signgate.errors import (
    DeadlineExceededError,
    RegistryAuthError,
    RegistryError,
    truncate,
)
from signgate.registry._http import (
    Exchanger,
    RegistryLimits,
    RegistryOptions,
    Response,
    RoundTrip,
    describe_connection_error,
    error_detail,
)
from signgate.registry.auth import (
    Challenge,
    Credentials,
    CredentialStore,
    TokenCache,
    parse_challenges,
)


class Transport:
    """Authenticated requests to registries; holds the auth state and token cache."""

    def __init__(
        self,
        options: RegistryOptions,
        *,
        round_trip: RoundTrip | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.options = options
        self.http = Exchanger(options, round_trip, sleep)
        self._challenges: dict[str, Challenge] = {}
        self._tokens = TokenCache()
        self._token_locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}

    @property
    def requests_sent(self) -> int:
        """Every HTTP request sent, token requests included (benchmarks and tests read it)."""
        return self.http.requests_sent

    @property
    def responses(self) -> Mapping[str, int]:
        """Answers by HTTP status ("200", "429", ...), and "error" for no answer (metrics)."""
        return self.http.responses

    async def close(self) -> None:
        """Release connections."""
        await self.http.close()

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
        if parts.scheme == "http" and not (
            self.http.is_insecure(host) or self.http.is_insecure(realm_host)
        ):
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
        tls = self.http.ssl_for(realm_host, fallback_host=host)
        limit = self.options.limits.max_token_response_bytes
        for attempt in range(1, self.options.limits.max_attempts + 1):
            try:
                response = await self.http.once(
                    method,
                    url,
                    headers=headers,
                    tls=tls,
                    max_bytes=limit,
                    error_bytes=None,
                    max_redirects=0,
                    data=data,
                )
            except aiohttp.ClientError as exc:
                if attempt < self.options.limits.max_attempts:
                    await self.http.backoff(
                        attempt, None, deadline, realm, "token endpoint unreachable"
                    )
                    continue
                raise RegistryAuthError(
                    f"token endpoint {realm_host} unreachable: {describe_connection_error(exc)}"
                ) from exc
            status, body = response.status, response.body
            retry_after = response.headers.get("Retry-After")
            if (status == 429 or status >= 500) and attempt < self.options.limits.max_attempts:
                why = f"token endpoint answered HTTP {status}"
                await self.http.backoff(attempt, retry_after, deadline, realm, why)
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
        response = await self.http.send(
            method, host, path, deadline, accept, max_bytes, authorization
        )
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
            response = await self.http.send(
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


__all__ = [
    "RegistryError",
    "RegistryLimits",
    "RegistryOptions",
    "Response",
    "Transport",
]
