"""An in-memory OCI registry that speaks signgate's own transport interface.

Why it exists: the registry client's lowest layer is a `signgate.registry.RoundTrip` (one request,
its whole capped answer). `MemoryRegistry` is one, so ``RegistryClient(options,
round_trip=MemoryRegistry())`` runs everything above the socket exactly as in production (the auth
flow, retries, caps, digest checks, the referrers fallback, discovery, the verifier and its caches)
in milliseconds, with no ``docker-registry`` process. The tests against real registries
(``tests/integration``) remain the proof that the real thing behaves as this fake says; what only a
fake can do (a registry that hangs, lies or rate-limits) is armed here per request, like
`support.fault_proxy.FaultProxy`, whose API this mirrors.

It serves any number of hosts (``registry.test``, ``mirror.test:5000``...), each with:

* the read API: ``GET``/``HEAD /v2/<repo>/manifests/<tag|digest>`` (``Docker-Content-Digest``,
  ``Content-Type`` = the media type it was pushed with, ``Accept`` honoured as distribution 2.8
  does for OCI manifests: a type the client did not list is 404 ``MANIFEST_UNKNOWN``; no
  ``Accept`` at all serves anything), ``GET``/``HEAD /v2/<repo>/blobs/<digest>``,
  ``GET /v2/<repo>/referrers/<digest>[?artifactType=]`` (an OCI 1.1 index, optionally paged with
  ``Link``), ``GET /v2/<repo>/tags/list``, ``GET /v2/``, and OCI error documents
  (``NAME_UNKNOWN``, ``MANIFEST_UNKNOWN``, ``BLOB_UNKNOWN``, ``DIGEST_INVALID``, ``UNAUTHORIZED``,
  ``DENIED``). With the referrers API switched off (`MemoryRegistry.referrers_api`) that path
  answers what distribution 2.8 answers, a plain-text ``404 page not found``, so clients fall back
  to the ``sha256-<hex>`` tag;
* the write API `support.push.Pusher` uses (blob uploads, ``PUT``/``DELETE`` manifests), reached
  through `MemoryRegistry.pusher`: a real ``Pusher`` whose requests go straight to memory (no auth,
  no faults, not recorded), so `support.signer` writes cosign's exact formats here with real keys,
  exactly as it does to a real registry;
* optional auth: Basic (`require_basic`) or the Bearer token flow with an in-memory token endpoint
  on the same or another host (`require_bearer`, returning the `TokenService` to inspect or revoke);
* faults (`status`, `hang`, `drop`, `truncate`, `huge`, `replace_body`, `wrong_digest_header`,
  `unreachable`), matched by a regex on the path like the proxy's, optionally per method and host,
  for the first ``times`` requests.

Every request the client sends (token requests and redirects included) is recorded in
`MemoryRegistry.requests`; `MemoryRegistry.count` counts them like ``FaultProxy.count``.

``tests/test_support_memory_registry.py`` holds it to the real registries: the same content and
requests, the same answers, wherever distribution 2.8 and go-containerregistry agree. Where they
do not, the fake follows the OCI spec: an unknown repository's manifests and referrers are
``NAME_UNKNOWN`` (distribution 2.8 says ``MANIFEST_UNKNOWN``; the client treats every 404 alike),
and the referrers API lists each referrer's own ``artifactType`` (go-containerregistry lists its
``config.mediaType``).

What it does not check: that a manifest's blobs exist (distribution does; here a test may store a
manifest whose blobs are missing on purpose) and TLS trust (any ``tls`` argument is accepted; a host
made with ``tls=False`` answers only plain HTTP, to exercise ``--insecure-registry``).

Unlike the rest of ``support``, this module imports signgate: it implements signgate's
`RoundTrip` protocol and must raise its `ResponseTooLargeError` at the cap, as production does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import aiohttp
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from signgate.errors import ResponseTooLargeError
from signgate.registry import Response
from support.push import OCI_INDEX, Pusher, RegistryHTTPError, go_json, sha256_digest

DEFAULT_HOST = "registry.test"
DEFAULT_AUTH_HOST = "auth.test"
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ROUTES = (
    ("uploads", re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<session>[^/]*)$")),
    ("manifests", re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")),
    ("blobs", re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<ref>[^/]+)$")),
    ("referrers", re.compile(r"^/v2/(?P<repo>.+)/referrers/(?P<ref>[^/]+)$")),
    ("tags", re.compile(r"^/v2/(?P<repo>.+)/tags/list$")),
)

Headers = CIMultiDict[str]
Answer = tuple[int, Headers, bytes]


class ManualClock:
    """A monotonic clock that moves only when told: ``Verifier(..., monotonic=clock)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


@dataclass
class RecordedRequest:
    """One request the client sent, as the registry saw it."""

    method: str
    url: str
    host: str
    path: str
    """Without the query string."""
    query: dict[str, str]
    headers: dict[str, str]
    status: int | None = None
    """What was answered; None when the request got no answer (a dropped connection...)."""


# -- faults ----------------------------------------------------------------------------------------


class FaultKind(Enum):
    """What an armed fault does to a matching request."""

    STATUS = "status"
    """Answer a fixed status (429, 500, 503, a 307 redirect...) without looking at the content."""
    HANG = "hang"
    """Never answer, until the deadline cuts it (or `MemoryRegistry.close` drops it)."""
    DROP = "drop"
    """No answer: the connection closes (``aiohttp.ServerDisconnectedError`` by default)."""
    TRUNCATE = "truncate"
    """The status, then a body cut short (``aiohttp.ClientPayloadError``)."""
    HUGE = "huge"
    """The real status and headers, and a body of ``size`` bytes."""
    REPLACE_BODY = "replace_body"
    """The real status and headers (``Docker-Content-Digest`` included), other body bytes."""
    WRONG_DIGEST_HEADER = "wrong_digest_header"
    """The real body with another ``Docker-Content-Digest``."""


@dataclass
class Fault:
    """An armed fault; ``hits`` counts how often it fired."""

    kind: FaultKind
    path: re.Pattern[str]
    method: str | None = None
    host: str | None = None
    times: int | None = None
    status: int = 503
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | Callable[[bytes], bytes] = b""
    size: int = 0
    error: Callable[[], aiohttp.ClientError] | None = None
    hits: int = 0

    def take(self, method: str, host: str, path: str) -> bool:
        """Whether this fault applies to the request; consumes one of ``times`` if so."""
        if self.method is not None and self.method != method:
            return False
        if self.host is not None and self.host != host:
            return False
        if not self.path.search(path):
            return False
        if self.times is not None:
            if self.times <= 0:
                return False
            self.times -= 1
        self.hits += 1
        return True


# -- auth ------------------------------------------------------------------------------------------


@dataclass
class _Grant:
    service: str
    repositories: frozenset[str]
    who: str


@dataclass
class TokenService:
    """The Bearer token endpoint one registry host trusts (the distribution token spec).

    ``GET <realm>?service=…&scope=repository:<repo>:pull`` with optional Basic credentials, or the
    OAuth2 ``POST`` refresh-token grant, answers ``{"token", "access_token", "expires_in"}``.
    Anonymous callers get tokens (when ``anonymous``) that cover every repository except the
    ``private`` ones, as Docker Hub does; the registry then answers 401 ``insufficient_scope``.
    """

    realm: str
    service: str
    users: dict[str, str] = field(default_factory=dict)
    """username -> password (Basic at the realm)."""
    identity_tokens: dict[str, str] = field(default_factory=dict)
    """refresh token -> username (``identitytoken`` in a Docker config)."""
    anonymous: bool = True
    private: set[str] = field(default_factory=set)
    expires_in: int | None = 300
    """Sent as ``expires_in``; None leaves it out."""
    issued: int = 0
    """Tokens handed out so far."""
    grants: dict[str, _Grant] = field(default_factory=dict)

    def revoke(self) -> None:
        """Forget every token issued (the registry refuses them from now on: "expired")."""
        self.grants.clear()

    def answer(self, method: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
        """Serve one request to the realm."""
        who: str | None = None
        if method == "POST":
            if query.get("grant_type") != "refresh_token":
                return _error(400, "UNSUPPORTED", "only the refresh_token grant is supported")
            who = self.identity_tokens.get(query.get("refresh_token", ""))
            if who is None:
                return _error(401, "UNAUTHORIZED", "invalid refresh token")
        elif (basic := _basic_credentials(headers)) is not None:
            user, password = basic
            if self.users.get(user) != password:
                return _error(401, "UNAUTHORIZED", "invalid username or password")
            who = user
        elif not self.anonymous:
            return _error(401, "UNAUTHORIZED", "authentication required")
        if query.get("service", self.service) != self.service:
            return _error(400, "UNSUPPORTED", f"unknown service {query.get('service')!r}")
        repositories = set()
        for scope in query.get("scope", "").split(" "):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            pullable = kind == "repository" and "pull" in actions.split(",")
            if pullable and (who is not None or name not in self.private):
                repositories.add(name)
        token = secrets.token_urlsafe(16)
        self.grants[token] = _Grant(self.service, frozenset(repositories), who or "anonymous")
        self.issued += 1
        doc: dict[str, Any] = {"token": token, "access_token": token}
        if self.expires_in is not None:
            doc["expires_in"] = self.expires_in
        return 200, CIMultiDict({"Content-Type": "application/json"}), json.dumps(doc).encode()


def _basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    value = headers.get("Authorization", "")
    if not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _error(status: int, code: str, message: str, detail: Any = None) -> Answer:
    """An OCI distribution error document."""
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    body = json.dumps({"errors": [entry]}).encode()
    return status, CIMultiDict({"Content-Type": "application/json; charset=utf-8"}), body


# -- content ---------------------------------------------------------------------------------------


@dataclass
class Repository:
    """One repository's content: blobs and manifests by digest, tags."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """digest -> (media type as pushed, exact bytes)."""
    tags: dict[str, str] = field(default_factory=dict)

    def referrers(self, subject: str) -> list[dict[str, Any]]:
        """The descriptors of every manifest whose ``subject`` is ``subject``, by digest."""
        found = []
        for digest, (media_type, raw) in sorted(self.manifests.items()):
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(doc, dict) or not isinstance(doc.get("subject"), dict):
                continue
            if doc["subject"].get("digest") != subject:
                continue
            entry: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(raw)}
            config = doc.get("config")
            kind = doc.get("artifactType") or (
                config.get("mediaType") if isinstance(config, dict) else None
            )
            if kind:
                entry["artifactType"] = kind
            if doc.get("annotations"):
                entry["annotations"] = doc["annotations"]
            found.append(entry)
        return found


@dataclass
class Host:
    """One registry host: its repositories and how it behaves."""

    name: str
    tls: bool = True
    """Answers https only; False: plain http only."""
    referrers_api: bool = True
    referrers_page_size: int | None = None
    """Page referrers answers (``Link: <…>; rel="next"``) this many descriptors at a time."""
    repositories: dict[str, Repository] = field(default_factory=dict)
    basic: tuple[str, str] | None = None
    bearer: TokenService | None = None
    denied: set[str] = field(default_factory=set)
    """Repositories that answer 403 DENIED whatever the credentials."""
    down: Callable[[], aiohttp.ClientError] | None = None


class MemoryRegistry:
    """In-memory registries on one or more hosts, as a `signgate.registry.RoundTrip`."""

    def __init__(self, *hosts: str, referrers_api: bool = True) -> None:
        """Serve ``hosts`` (default ``registry.test``), each with or without the referrers API."""
        self.hosts: dict[str, Host] = {}
        for name in hosts or (DEFAULT_HOST,):
            self.add_host(name, referrers_api=referrers_api)
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._tokens: dict[tuple[str, str], TokenService] = {}
        self._released = asyncio.Event()
        self._upload_count = 0

    # -- set-up ----------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The first host: the registry part of image references (``registry.test``)."""
        return next(iter(self.hosts))

    def add_host(self, name: str, *, tls: bool = True, referrers_api: bool = True) -> Host:
        """Serve another host (``tls=False``: plain HTTP only)."""
        host = Host(name.lower(), tls=tls, referrers_api=referrers_api)
        self.hosts[host.name] = host
        return host

    def _host(self, name: str | None) -> Host:
        return self.hosts[(name or self.host).lower()]

    def referrers_api(
        self, enabled: bool, *, host: str | None = None, page_size: int | None = None
    ) -> None:
        """Switch the OCI 1.1 referrers API on or off (off: distribution 2.8's plain 404)."""
        target = self._host(host)
        target.referrers_api = enabled
        target.referrers_page_size = page_size

    def pusher(self, host: str | None = None) -> MemoryPusher:
        """A `support.push.Pusher` writing straight into ``host`` (for `support.signer`)."""
        return MemoryPusher(self, self._host(host).name)

    def repository(self, name: str, *, host: str | None = None) -> Repository:
        """The content of one repository (created empty if new)."""
        return self._host(host).repositories.setdefault(name, Repository())

    def require_basic(self, username: str, password: str, *, host: str | None = None) -> None:
        """Answer 401 ``Basic`` unless the request carries these credentials."""
        self._host(host).basic = (username, password)

    def require_bearer(
        self,
        *,
        host: str | None = None,
        realm: str | None = None,
        users: Mapping[str, str] | None = None,
        identity_tokens: Mapping[str, str] | None = None,
        anonymous: bool = True,
        private: Iterable[str] = (),
        expires_in: int | None = 300,
    ) -> TokenService:
        """Require Bearer tokens from a token endpoint at ``realm`` (default
        ``https://auth.test/token``; a realm on a new host adds that host)."""
        target = self._host(host)
        realm = realm or f"https://{DEFAULT_AUTH_HOST}/token"
        parts = urlsplit(realm)
        if parts.netloc.lower() not in self.hosts:
            self.add_host(parts.netloc, tls=parts.scheme == "https")
        service = TokenService(
            realm,
            target.name,
            users=dict(users or {}),
            identity_tokens=dict(identity_tokens or {}),
            anonymous=anonymous,
            private=set(private),
            expires_in=expires_in,
        )
        target.bearer = service
        self._tokens[(parts.netloc.lower(), parts.path)] = service
        return service

    def deny(self, repository: str, *, host: str | None = None) -> None:
        """Answer 403 DENIED for ``repository`` whatever the credentials."""
        self._host(host).denied.add(repository)

    # -- faults ----------------------------------------------------------------------------------

    def add(self, fault: Fault) -> Fault:
        """Arm a fault (the helpers below build one)."""
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault and make every host reachable again."""
        self.faults.clear()
        for host in self.hosts.values():
            host.down = None

    def _arm(
        self,
        kind: FaultKind,
        path: str,
        *,
        method: str | None,
        host: str | None,
        times: int | None,
        **kwargs: Any,
    ) -> Fault:
        where = host.lower() if host is not None else None
        return self.add(Fault(kind, re.compile(path), method, where, times, **kwargs))

    def status(
        self,
        path: str,
        status: int,
        *,
        retry_after: str | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        host: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Answer ``status`` (429 with or without ``Retry-After``, 5xx, a redirect...)."""
        all_headers = dict(headers or {})
        if retry_after is not None:
            all_headers["Retry-After"] = retry_after
        return self._arm(
            FaultKind.STATUS,
            path,
            method=method,
            host=host,
            times=times,
            status=status,
            headers=all_headers,
            body=body,
        )

    def hang(
        self,
        path: str,
        *,
        method: str | None = None,
        host: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Never answer (the client's deadline has to cut the request)."""
        return self._arm(FaultKind.HANG, path, method=method, host=host, times=times)

    def drop(
        self,
        path: str,
        *,
        error: Callable[[], aiohttp.ClientError] = aiohttp.ServerDisconnectedError,
        method: str | None = None,
        host: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Close the connection without an answer (``error()`` is raised to the client)."""
        return self._arm(FaultKind.DROP, path, method=method, host=host, times=times, error=error)

    def truncate(
        self,
        path: str,
        *,
        method: str | None = None,
        host: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Send the status, then only part of the body (``aiohttp.ClientPayloadError``)."""
        return self._arm(FaultKind.TRUNCATE, path, method=method, host=host, times=times)

    def huge(
        self,
        path: str,
        size: int,
        *,
        method: str | None = None,
        host: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Answer the real status and headers with a body of ``size`` bytes."""
        return self._arm(FaultKind.HUGE, path, method=method, host=host, times=times, size=size)

    def replace_body(
        self,
        path: str,
        body: bytes | Callable[[bytes], bytes],
        *,
        method: str | None = None,
        host: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Keep the real headers (digest included) but send ``body`` (or ``body(real)``)."""
        return self._arm(
            FaultKind.REPLACE_BODY, path, method=method, host=host, times=times, body=body
        )

    def wrong_digest_header(
        self,
        path: str,
        *,
        digest: str = "sha256:" + "0" * 64,
        method: str | None = None,
        host: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """Send the real body with ``Docker-Content-Digest: digest``."""
        return self._arm(
            FaultKind.WRONG_DIGEST_HEADER,
            path,
            method=method,
            host=host,
            times=times,
            headers={"Docker-Content-Digest": digest},
        )

    def unreachable(self, host: str | None = None, *, dns: bool = False) -> None:
        """Refuse every connection to ``host`` (``dns``: its name does not resolve)."""
        target = self._host(host)
        name, _, port = target.name.partition(":")
        key = ConnectionKey(name, int(port or 443), True, True, None, None, None, None)
        if dns:
            target.down = lambda: aiohttp.ClientConnectorDNSError(
                key, OSError(-2, "Name or service not known")
            )
        else:
            target.down = lambda: aiohttp.ClientConnectorError(
                key, ConnectionRefusedError(111, "Connection refused")
            )

    # -- observation -----------------------------------------------------------------------------

    def count(
        self, path: str | None = None, *, method: str | None = None, host: str | None = None
    ) -> int:
        """Requests whose path matches the regex ``path`` (all if None), ``method`` and ``host``."""
        pattern = re.compile(path) if path is not None else None
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method)
            and (host is None or r.host == host.lower())
            and (pattern is None or pattern.search(r.path))
        )

    @property
    def paths(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request, in order."""
        return [(r.method, r.path) for r in self.requests]

    def reset_counts(self) -> None:
        """Forget the recorded requests."""
        self.requests.clear()

    # -- RoundTrip -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Drop hanging requests (as a proxy that stops does). The content stays usable."""
        self._released.set()
        self._released = asyncio.Event()

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
        """One request, as `signgate.registry._http.AiohttpRoundTrip` makes it."""
        del tls  # trust is not modelled
        send = dict(headers)
        status, answer_headers, body, fault = await self._exchange(method, url, send, data)
        redirects = 0
        while status in _REDIRECTS and max_redirects and "Location" in answer_headers:
            redirects += 1
            if redirects > max_redirects:
                raise aiohttp.TooManyRedirects(
                    aiohttp.RequestInfo(URL(url), method, CIMultiDictProxy(CIMultiDict())), ()
                )
            target = urljoin(url, answer_headers["Location"])
            if urlsplit(target).netloc != urlsplit(url).netloc:
                send.pop("Authorization", None)  # aiohttp drops it across origins
            method = "GET" if status == 303 else method
            url = target
            status, answer_headers, body, fault = await self._exchange(method, url, send, data)
        on_status(status)
        if fault is not None and fault.kind is FaultKind.TRUNCATE:
            raise aiohttp.ClientPayloadError(
                "Response payload is not completed: <ContentLengthError: 400, message='Not enough"
                f" data to satisfy content length header.'>: received {len(body) // 2} of "
                f"{len(body)} bytes"
            )
        where = url.split("?")[0]
        if method == "HEAD":
            body = b""
        elif status >= 400 and error_bytes is not None:
            body = body[:error_bytes]
        elif len(body) > max_bytes:
            raise ResponseTooLargeError(
                f"{where}: response of {len(body)} bytes exceeds the {max_bytes}-byte limit"
            )
        return Response(status, CIMultiDictProxy(answer_headers), body, url)

    async def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], data: Mapping[str, str] | None
    ) -> tuple[int, Headers, bytes, Fault | None]:
        parts = urlsplit(url)
        host_name = parts.netloc.lower()
        record = RecordedRequest(
            method, url, host_name, parts.path, dict(parse_qsl(parts.query)), dict(headers)
        )
        self.requests.append(record)
        await asyncio.sleep(0)  # a real exchange yields to the loop: let concurrent work interleave
        host = self.hosts.get(host_name)
        if host is None:
            name, _, port = host_name.partition(":")
            key = ConnectionKey(name, int(port or 443), True, True, None, None, None, None)
            raise aiohttp.ClientConnectorDNSError(key, OSError(-2, "Name or service not known"))
        if host.down is not None:
            raise host.down()
        if (parts.scheme == "https") != host.tls:
            if parts.scheme == "https":  # a TLS hello to a plain-HTTP server
                name, _, port = host_name.partition(":")
                key = ConnectionKey(name, int(port or 443), True, True, None, None, None, None)
                raise aiohttp.ClientConnectorSSLError(
                    key, ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
                )
            raise aiohttp.ServerDisconnectedError()  # plain HTTP to a TLS port
        fault = next((f for f in self.faults if f.take(method, host_name, parts.path)), None)
        if fault is not None and fault.kind is FaultKind.HANG:
            await self._released.wait()
            raise aiohttp.ServerDisconnectedError()
        if fault is not None and fault.kind is FaultKind.DROP:
            assert fault.error is not None
            raise fault.error()
        if fault is not None and fault.kind is FaultKind.STATUS:
            body = fault.body if isinstance(fault.body, bytes) else b""
            record.status = fault.status
            return fault.status, CIMultiDict(fault.headers), body, fault
        token_service = self._tokens.get((host_name, parts.path))
        if token_service is not None:
            query = dict(data) if data is not None else record.query
            status, answer_headers, body = token_service.answer(method, query, headers)
        else:
            status, answer_headers, body = self._serve(
                host, method, parts.path, record.query, headers
            )
        if fault is not None:
            if fault.kind is FaultKind.HUGE:
                body = b"x" * fault.size
                answer_headers["Content-Length"] = str(fault.size)
            elif fault.kind is FaultKind.REPLACE_BODY:
                body = fault.body(body) if callable(fault.body) else fault.body
            elif fault.kind is FaultKind.WRONG_DIGEST_HEADER:
                answer_headers.update(fault.headers)
        record.status = status
        return status, answer_headers, body, fault

    # -- the distribution API --------------------------------------------------------------------

    def _authorize(self, host: Host, repo: str, headers: Mapping[str, str]) -> Answer | None:
        """None when the request may proceed, else the 401/403 to answer."""
        if host.basic is not None and _basic_credentials(headers) != host.basic:
            answer = _error(401, "UNAUTHORIZED", "authentication required")
            answer[1]["WWW-Authenticate"] = 'Basic realm="memory-registry"'
            return answer
        service = host.bearer
        if service is not None:
            value = headers.get("Authorization", "")
            grant = service.grants.get(value[7:]) if value.startswith("Bearer ") else None
            if grant is None or grant.service != service.service or repo not in grant.repositories:
                challenge = f'Bearer realm="{service.realm}",service="{service.service}"'
                if repo:
                    challenge += f',scope="repository:{repo}:pull"'
                if grant is not None:
                    challenge += ',error="insufficient_scope"'
                elif value.startswith("Bearer "):
                    challenge += ',error="invalid_token"'
                answer = _error(401, "UNAUTHORIZED", "authentication required")
                answer[1]["WWW-Authenticate"] = challenge
                return answer
        if repo in host.denied:
            return _error(403, "DENIED", "requested access to the resource is denied")
        return None

    def _serve(
        self,
        host: Host,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        admin: bool = False,
    ) -> Answer:
        if path in ("/v2", "/v2/"):
            denied = None if admin else self._authorize(host, "", headers)
            return denied or (200, CIMultiDict({"Content-Type": "application/json"}), b"{}")
        for route, pattern in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            repo = match["repo"]
            if route == "referrers" and not host.referrers_api:
                break  # distribution 2.8 has no such route
            denied = None if admin else self._authorize(host, repo, headers)
            if denied is not None:
                return denied
            handler = getattr(self, f"_{route}")
            answer: Answer = handler(host, method, repo, match.groupdict(), query, headers, body)
            return answer
        return (
            404,
            CIMultiDict({"Content-Type": "text/plain; charset=utf-8"}),
            b"404 page not found\n",
        )

    def _manifests(
        self,
        host: Host,
        method: str,
        repo: str,
        groups: Mapping[str, str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        ref = groups["ref"]
        if method == "PUT":
            return self._put_manifest(host, repo, ref, headers.get("Content-Type", ""), body)
        repository = host.repositories.get(repo)
        if repository is None:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry", repo)
        digest = ref if ref.startswith("sha256:") else repository.tags.get(ref)
        if method == "DELETE":
            if digest is None or repository.manifests.pop(digest, None) is None:
                return _error(404, "MANIFEST_UNKNOWN", "manifest unknown", ref)
            repository.tags = {t: d for t, d in repository.tags.items() if d != digest}
            return 202, CIMultiDict(), b""
        stored = repository.manifests.get(digest) if digest is not None else None
        if stored is None:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"Tag": ref})
        media_type, raw = stored
        accepted = {
            item.split(";")[0].strip() for item in headers.get("Accept", "").split(",") if item
        }
        if accepted and "*/*" not in accepted and media_type not in accepted:
            # distribution: "OCI manifest found, but accept header does not support OCI manifests"
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"Tag": ref})
        answer_headers = CIMultiDict(
            {
                "Content-Type": media_type,
                "Content-Length": str(len(raw)),
                "Docker-Content-Digest": sha256_digest(raw),
            }
        )
        return 200, answer_headers, raw

    def _put_manifest(
        self, host: Host, repo: str, ref: str, media_type: str, body: bytes
    ) -> Answer:
        digest = sha256_digest(body)
        if ref.startswith("sha256:") and ref != digest:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        repository = host.repositories.setdefault(repo, Repository())
        repository.manifests[digest] = (media_type.split(";")[0].strip(), body)
        if not ref.startswith("sha256:"):
            repository.tags[ref] = digest
        headers = CIMultiDict(
            {"Docker-Content-Digest": digest, "Location": f"/v2/{repo}/manifests/{digest}"}
        )
        return 201, headers, b""

    def _blobs(
        self,
        host: Host,
        method: str,
        repo: str,
        groups: Mapping[str, str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        digest = groups["ref"]
        if not _DIGEST.match(digest):
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        repository = host.repositories.get(repo)
        blob = repository.blobs.get(digest) if repository is not None else None
        if blob is None:
            return _error(404, "BLOB_UNKNOWN", "blob unknown to registry", digest)
        answer_headers = CIMultiDict(
            {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(blob)),
                "Docker-Content-Digest": digest,
            }
        )
        return 200, answer_headers, blob

    def _uploads(
        self,
        host: Host,
        method: str,
        repo: str,
        groups: Mapping[str, str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        if method == "POST":
            self._upload_count += 1
            location = f"/v2/{repo}/blobs/uploads/upload-{self._upload_count}"
            return 202, CIMultiDict({"Location": location}), b""
        digest = query.get("digest", "")
        if method != "PUT" or not groups["session"] or sha256_digest(body) != digest:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        self.repository(repo, host=host.name).blobs[digest] = body
        return 201, CIMultiDict({"Docker-Content-Digest": digest}), b""

    def _referrers(
        self,
        host: Host,
        method: str,
        repo: str,
        groups: Mapping[str, str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        digest = groups["ref"]
        if not _DIGEST.match(digest):
            return _error(400, "DIGEST_INVALID", "invalid digest", digest)
        repository = host.repositories.get(repo)
        if repository is None:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry", repo)
        found = repository.referrers(digest)
        answer_headers = CIMultiDict({"Content-Type": OCI_INDEX})
        if "artifactType" in query:
            found = [d for d in found if d.get("artifactType") == query["artifactType"]]
            answer_headers["OCI-Filters-Applied"] = "artifactType"
        if "last" in query:
            found = [d for d in found if d["digest"] > query["last"]]
        size = host.referrers_page_size
        if size is not None and len(found) > size:
            found = found[:size]
            rest = {**query, "last": found[-1]["digest"]}
            answer_headers["Link"] = (
                f'</v2/{repo}/referrers/{digest}?{urlencode(rest)}>; rel="next"'
            )
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}
        return 200, answer_headers, go_json(index)

    def _tags(
        self,
        host: Host,
        method: str,
        repo: str,
        groups: Mapping[str, str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        repository = host.repositories.get(repo)
        if repository is None:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry", repo)
        doc = {"name": repo, "tags": sorted(repository.tags)}
        return 200, CIMultiDict({"Content-Type": "application/json"}), json.dumps(doc).encode()

    def serve_admin(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer a request as the registry's owner: no auth, no faults, not recorded."""
        parts = urlsplit(url)
        host = self._host(parts.netloc)
        return self._serve(
            host, method, parts.path, dict(parse_qsl(parts.query)), headers, body, admin=True
        )


class MemoryPusher(Pusher):
    """A `support.push.Pusher` whose requests are answered by a `MemoryRegistry` directly.

    Everything built on ``Pusher`` (``push_random_image``, ``push_multiarch_image``,
    `support.signer`'s cosign formats) writes into memory unchanged. HEAD on a manifest keeps its
    ``Content-Length``, and ``referrers_api_supported`` sees the host's switch, so the signer keeps
    the fallback index exactly when a real registry without the API would need it.
    """

    def __init__(self, registry: MemoryRegistry, host: str) -> None:
        super().__init__(f"https://{host}")
        self.registry = registry

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        repo: str | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        expected: Iterable[int] = (200,),
    ) -> tuple[int, Mapping[str, str], bytes]:
        url = urljoin(self.base_url + "/", path_or_url)
        status, answer_headers, body = self.registry.serve_admin(
            method, url, headers or {}, data or b""
        )
        if status not in tuple(expected):
            raise RegistryHTTPError(method, url, status, body)
        return status, answer_headers, body
