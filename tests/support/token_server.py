"""A Docker/OCI Bearer token endpoint for the ``token`` registry variant (Docker Hub/Harbor flow).

The registry answers ``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``. A client
then calls ``GET <realm>?service=…&scope=repository:<name>:pull[,push]`` (optionally with Basic
credentials) and retries with ``Authorization: Bearer <token>``. This server implements that
endpoint (and the OAuth2 ``POST`` password grant) over HTTPS on 127.0.0.1.

What distribution 2.8 needs to accept a token (``registry/auth/token/token.go`` at v2.8.2):
  * a compact JWS, ``alg`` ES256/RS256 (libtrust); ES256 signatures are raw ``r||s``, not DER;
  * a header with ``x5c`` (std base64 DER, leaf first) whose chain verifies against the
    ``rootcertbundle`` PEM (``x509.Verify`` with ``ExtKeyUsageAny``), or a ``kid`` equal to the
    libtrust key ID of a bundle key. We use ``x5c`` with a leaf issued by a dedicated signing CA;
  * ``iss`` == configured issuer, ``aud`` a *string* == configured service (2.8 has no list form),
    ``exp``/``nbf`` within 60 s of leeway, and ``access`` entries covering the request
    (GET/HEAD: pull; POST/PUT/PATCH: pull+push; DELETE: delete).

Tests assert on :attr:`TokenServer.requests` (e.g. token caching) and inject faults with
:attr:`TokenServer.fault`.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from support._threaded import STOPPING, ThreadedApp
from support.tls import server_ssl_context

Algorithm = Literal["ES256", "RS256"]

DEFAULT_SERVICE = "signgate-test-registry"
DEFAULT_ISSUER = "signgate-test-token-issuer"
#: Actions an authenticated user may be granted (distribution uses pull, push, delete).
GRANTABLE_ACTIONS = frozenset({"pull", "push", "delete", "*"})


class TokenFault(enum.Enum):
    """Ways the token endpoint can misbehave (see :attr:`TokenServer.fault`)."""

    SERVER_ERROR = "server_error"
    """HTTP 500 with a short text body."""
    GARBAGE = "garbage"
    """HTTP 200, ``Content-Type: application/json``, body that is not JSON."""
    NO_TOKEN = "no_token"
    """HTTP 200 with JSON that has neither ``token`` nor ``access_token``."""
    EXPIRED = "expired"
    """A correctly signed token whose ``exp`` lies an hour in the past (beyond the 60 s leeway)."""
    UNTRUSTED_SIGNER = "untrusted_signer"
    """A token signed by a key that does not chain to the registry's ``rootcertbundle``."""
    WRONG_AUDIENCE = "wrong_audience"
    """A correctly signed token for another service."""
    UNAUTHORIZED = "unauthorized"
    """HTTP 401 even for good credentials."""
    HANG = "hang"
    """Never answer (until the client gives up or the server stops)."""


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """One request the token endpoint received, as recorded for assertions."""

    method: str
    user: str | None
    """Username from Basic credentials or the password grant; None when anonymous."""
    scopes: tuple[str, ...]
    service: str | None
    status: int
    granted: tuple[tuple[str, tuple[str, ...]], ...]
    """``(repository, actions)`` pairs put in the token's ``access`` claim."""
    at: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _JWTSigner:
    """A signing key plus the ``x5c`` chain that proves it to the registry."""

    def __init__(self, ca: trustme.CA, algorithm: Algorithm) -> None:
        key_type = trustme.KeyType.RSA if algorithm == "RS256" else trustme.KeyType.ECDSA
        leaf = ca.issue_cert(
            "token-signer.signgate.test",
            common_name="signgate test token signer",
            key_type=key_type,
        )
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise TypeError(f"unexpected token signing key type {type(key).__name__}")
        self.key = key
        self.algorithm = algorithm
        self.x5c = [
            base64.b64encode(
                x509.load_pem_x509_certificate(pem.bytes()).public_bytes(serialization.Encoding.DER)
            ).decode("ascii")
            for pem in leaf.cert_chain_pems
        ]

    def sign(self, claims: Mapping[str, Any]) -> str:
        header = {"typ": "JWT", "alg": self.algorithm, "x5c": self.x5c}
        signing_input = f"{_b64url(_compact_json(header))}.{_b64url(_compact_json(claims))}"
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(
                self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
            )
            size = (self.key.curve.key_size + 7) // 8
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        else:
            signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


_UNSET: Any = object()


class TokenServer:
    """The Bearer token endpoint, served over HTTPS from a background thread.

    Mutable knobs (safe to change between requests; use :meth:`configured` to restore them):
    :attr:`expires_in`, :attr:`anonymous_pull`, :attr:`users`, :attr:`fault`, :attr:`fault_times`.
    """

    def __init__(
        self,
        *,
        tls_ca: trustme.CA,
        workdir: Path,
        users: Mapping[str, str] | None = None,
        anonymous_pull: bool = False,
        expires_in: int = 300,
        algorithm: Algorithm = "ES256",
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
    ) -> None:
        """Create the signing CA and key; call :meth:`start` to serve.

        Args:
            tls_ca: CA that issues the HTTPS certificate (clients trust its PEM).
            workdir: where ``token-root.pem`` (the registry's ``rootcertbundle``) is written.
            users: ``{username: password}`` accepted via Basic auth or the password grant.
            anonymous_pull: grant ``pull`` to requests without credentials. Otherwise anonymous
                requests still get a token, but with an empty ``access`` list (as Docker Hub does
                for private repositories), so the registry then answers 401.
            expires_in: token lifetime in seconds, also reported as ``expires_in``.
            algorithm: JWS algorithm, ES256 (P-256 key) or RS256 (RSA 2048).
            service: expected ``service`` parameter and the token's ``aud``.
            issuer: the token's ``iss``.
        """
        self.service = service
        self.issuer = issuer
        self.users: dict[str, str] = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.expires_in = expires_in
        self.fault: TokenFault | None = None
        self.fault_times: int | None = None
        """How many more requests get :attr:`fault`; None means every request."""
        self._lock = threading.Lock()
        self._requests: list[TokenRequest] = []

        signing_ca = trustme.CA(
            organization_name="signgate test token CA",
            key_type=trustme.KeyType.RSA if algorithm == "RS256" else trustme.KeyType.ECDSA,
        )
        self._signer = _JWTSigner(signing_ca, algorithm)
        self._untrusted_signer = _JWTSigner(trustme.CA(), algorithm)
        workdir.mkdir(parents=True, exist_ok=True)
        self.rootcertbundle = workdir / "token-root.pem"
        signing_ca.cert_pem.write_to_path(str(self.rootcertbundle))

        app = web.Application()
        app.router.add_get("/token", self._handle_get)
        app.router.add_post("/token", self._handle_post)
        self._server = ThreadedApp(app, name="token-server", ssl_context=server_ssl_context(tls_ca))

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving; :attr:`realm` is valid afterwards."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving. Idempotent."""
        self._server.stop()

    @property
    def realm(self) -> str:
        """The ``realm`` URL the registry puts in its Bearer challenge."""
        return f"{self._server.url}/token"

    # -- observation ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[TokenRequest]:
        """A snapshot of every request received since start or :meth:`reset`."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many token requests arrived since start or :meth:`reset`."""
        with self._lock:
            return len(self._requests)

    def reset(self) -> None:
        """Forget recorded requests (not the knobs)."""
        with self._lock:
            self._requests.clear()

    @contextmanager
    def configured(
        self,
        *,
        expires_in: int = _UNSET,
        anonymous_pull: bool = _UNSET,
        users: Mapping[str, str] = _UNSET,
        fault: TokenFault | None = _UNSET,
        fault_times: int | None = _UNSET,
    ) -> Iterator[TokenServer]:
        """Temporarily change knobs (for one test on a session-scoped server), then restore."""
        changes: dict[str, Any] = {
            "expires_in": expires_in,
            "anonymous_pull": anonymous_pull,
            "users": dict(users) if users is not _UNSET else _UNSET,
            "fault": fault,
            "fault_times": fault_times,
        }
        saved = {name: getattr(self, name) for name in changes}
        try:
            for name, value in changes.items():
                if value is not _UNSET:
                    setattr(self, name, value)
            yield self
        finally:
            for name, value in saved.items():
                setattr(self, name, value)

    # -- minting -------------------------------------------------------------------------------

    def issue(
        self,
        subject: str,
        access: Sequence[tuple[str, Sequence[str]]],
        *,
        expires_in: int | None = None,
        now: float | None = None,
        audience: str | None = None,
        trusted: bool = True,
    ) -> str:
        """Mint a token directly (for tests that craft Authorization headers themselves).

        Args:
            subject: ``sub`` claim.
            access: ``(repository, actions)`` pairs for the ``access`` claim.
            expires_in: lifetime; defaults to :attr:`expires_in`.
            now: issue time (Unix seconds); defaults to the current time.
            audience: ``aud``; defaults to :attr:`service`.
            trusted: sign with the key the registry trusts (False: an unrelated key).
        """
        issued = int(now if now is not None else time.time())
        lifetime = self.expires_in if expires_in is None else expires_in
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience if audience is not None else self.service,
            "exp": issued + lifetime,
            "nbf": issued - 1,
            "iat": issued,
            "jti": secrets.token_hex(16),
            "access": [
                {"type": "repository", "name": name, "actions": list(actions)}
                for name, actions in access
            ],
        }
        return (self._signer if trusted else self._untrusted_signer).sign(claims)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle_get(self, request: web.Request) -> web.StreamResponse:
        user, password = self._basic_credentials(request)
        return await self._answer(
            request,
            user=user,
            password=password,
            scopes=request.query.getall("scope", []),
            service=request.query.get("service"),
            oauth=False,
        )

    async def _handle_post(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if form.get("grant_type") != "password":
            return self._reject(request, 400, "unsupported_grant_type", (), None, None)
        user, password = form.get("username"), form.get("password")
        scope, service = form.get("scope"), form.get("service")
        return await self._answer(
            request,
            user=user if isinstance(user, str) else None,
            password=password if isinstance(password, str) else None,
            scopes=scope.split(" ") if isinstance(scope, str) and scope else [],
            service=service if isinstance(service, str) else None,
            oauth=True,
        )

    @staticmethod
    def _basic_credentials(request: web.Request) -> tuple[str | None, str | None]:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return None, None
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "", None
        return user, password

    def _record(
        self,
        request: web.Request,
        status: int,
        scopes: Sequence[str],
        user: str | None,
        service: str | None,
        granted: Sequence[tuple[str, Sequence[str]]] = (),
    ) -> None:
        entry = TokenRequest(
            method=request.method,
            user=user,
            scopes=tuple(scopes),
            service=service,
            status=status,
            granted=tuple((name, tuple(actions)) for name, actions in granted),
            at=time.time(),
        )
        with self._lock:
            self._requests.append(entry)

    def _reject(
        self,
        request: web.Request,
        status: int,
        details: str,
        scopes: Sequence[str],
        user: str | None,
        service: str | None,
    ) -> web.Response:
        self._record(request, status, scopes, user, service)
        return web.json_response({"details": details}, status=status)

    def _take_fault(self) -> TokenFault | None:
        fault = self.fault
        if fault is None:
            return None
        if self.fault_times is not None:
            if self.fault_times <= 0:
                return None
            self.fault_times -= 1
        return fault

    def _grant(self, user: str | None, scopes: Sequence[str]) -> list[tuple[str, list[str]]]:
        granted: list[tuple[str, list[str]]] = []
        for scope in scopes:
            for item in scope.split(" "):
                kind, _, rest = item.partition(":")
                name, _, actions = rest.rpartition(":")
                if kind != "repository" or not name:
                    continue
                wanted = [a for a in actions.split(",") if a]
                if user is not None:
                    allowed = [a for a in wanted if a in GRANTABLE_ACTIONS]
                else:
                    allowed = [a for a in wanted if a == "pull" and self.anonymous_pull]
                granted.append((name, allowed))
        return granted

    async def _answer(
        self,
        request: web.Request,
        *,
        user: str | None,
        password: str | None,
        scopes: Sequence[str],
        service: str | None,
        oauth: bool,
    ) -> web.StreamResponse:
        fault = self._take_fault()
        if fault is TokenFault.HANG:
            self._record(request, 0, scopes, user, service)
            await request.app[STOPPING].wait()
            raise asyncio.CancelledError
        if fault is TokenFault.SERVER_ERROR:
            self._record(request, 500, scopes, user, service)
            return web.Response(status=500, text="token service exploded (injected fault)")
        if fault is TokenFault.UNAUTHORIZED:
            return self._reject(
                request, 401, "incorrect username or password", scopes, user, service
            )
        if user is not None and self.users.get(user) != password:
            return self._reject(
                request, 401, "incorrect username or password", scopes, user, service
            )
        if service != self.service:
            return self._reject(request, 400, f"unknown service {service!r}", scopes, user, service)
        if fault is TokenFault.GARBAGE:
            self._record(request, 200, scopes, user, service)
            return web.Response(
                status=200, body=b"<html>definitely not json", content_type="application/json"
            )
        if fault is TokenFault.NO_TOKEN:
            self._record(request, 200, scopes, user, service)
            return web.json_response({"expires_in": self.expires_in})

        granted = self._grant(user, scopes)
        now = time.time()
        token = self.issue(
            user or "",
            granted,
            now=now - 7200 if fault is TokenFault.EXPIRED else now,
            expires_in=3600 if fault is TokenFault.EXPIRED else None,
            audience="some-other-service" if fault is TokenFault.WRONG_AUDIENCE else None,
            trusted=fault is not TokenFault.UNTRUSTED_SIGNER,
        )
        self._record(request, 200, scopes, user, service, granted)
        issued_at = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
        body: dict[str, Any] = {"access_token": token, "expires_in": self.expires_in}
        if not oauth:
            body["token"] = token
        body["issued_at"] = issued_at
        return web.json_response(body)
