"""Registry authentication: challenges, credentials from a Docker config.json, and a token cache.

The flow is the distribution token spec: a 401 carries ``WWW-Authenticate: Bearer realm=…,
service=…,scope=…``; we ask the realm for a token (with Basic credentials when we have them) and
retry with ``Authorization: Bearer``. Credentials belong to one registry host and are never sent to
another one, except to the token realm that host named in its own challenge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from signgate.errors import ConfigError

# An RFC 9110 "token" (the grammar word), not a secret.
_HTTP_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # noqa: S105
# RFC 9110 wants unquoted values to be tokens; some registries send realm=https://… unquoted.
_AUTH_PARAM = re.compile(
    rf"\s*({_HTTP_TOKEN})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|([^\s,\"]+))\s*(?:,|$)", re.DOTALL
)
_SCHEME = re.compile(rf"\s*({_HTTP_TOKEN})(?:\s+|$)")

DOCKER_HUB_CONFIG_KEYS = (
    "https://index.docker.io/v1/",
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
)


@dataclass(frozen=True, slots=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge."""

    scheme: str  # lower-cased: "bearer" or "basic"
    params: Mapping[str, str]

    @property
    def realm(self) -> str | None:
        """The token endpoint (Bearer) or protection space (Basic)."""
        return self.params.get("realm")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header value (RFC 9110 §11.6.1) into its challenges.

    Malformed parts end the parse: what was understood so far is returned, and an empty list means
    nothing usable was offered.
    """
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(header):
        scheme_match = _SCHEME.match(header, pos)
        if not scheme_match:
            break
        scheme = scheme_match.group(1).lower()
        pos = scheme_match.end()
        params: dict[str, str] = {}
        while pos < len(header):
            param = _AUTH_PARAM.match(header, pos)
            if not param:
                break
            name = param.group(1).lower()
            quoted, bare = param.group(2), param.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            params.setdefault(name, value)
            pos = param.end()
        challenges.append(Challenge(scheme, params))
        # Skip a separating comma between challenges, if any.
        while pos < len(header) and header[pos] in ", ":
            pos += 1
        if pos < len(header) and not _SCHEME.match(header, pos):
            break
    return challenges


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a Docker config.json holds for one registry host.

    ``repr`` hides the secrets so that a stray log line cannot leak them.
    """

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None

    def __repr__(self) -> str:
        user = self.username or ""
        kind = "identity-token" if self.identity_token else "password"
        return f"Credentials(username={user!r}, {kind}=***)"

    @property
    def identity(self) -> str:
        """A short, non-reversible name for these credentials (for cache keys, never logged)."""
        material = f"{self.username}\0{self.password}\0{self.identity_token}".encode()
        return hashlib.sha256(material).hexdigest()[:16]

    def basic_header(self) -> str | None:
        """The ``Authorization: Basic`` value, if username and password are known."""
        if self.username is None or self.password is None:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def _normalise_config_host(key: str) -> str:
    host = key.strip()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    host = host.split("/", 1)[0]
    return "docker.io" if host in DOCKER_HUB_CONFIG_KEYS else host.lower()


@dataclass(frozen=True, slots=True)
class CredentialStore:
    """Credentials by registry host (``docker.io``, ``127.0.0.1:5000``), exact match only."""

    by_host: Mapping[str, Credentials]

    @classmethod
    def empty(cls) -> CredentialStore:
        """A store with no credentials: anonymous access everywhere."""
        return cls({})

    def overlaid_on(self, fallback: CredentialStore) -> CredentialStore:
        """These credentials, and ``fallback``'s for hosts these do not cover."""
        return CredentialStore({**fallback.by_host, **self.by_host})

    @property
    def identity(self) -> str:
        """Names this set of credentials in cache keys ("anonymous" when empty)."""
        if not self.by_host:
            return "anonymous"
        parts = sorted(f"{host}={creds.identity}" for host, creds in self.by_host.items())
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def for_registry(self, registry: str) -> Credentials | None:
        """Credentials for ``registry`` as written in an image reference, if any."""
        return self.by_host.get(_normalise_config_host(registry))

    @classmethod
    def from_docker_config(cls, data: bytes, source: str = "config.json") -> CredentialStore:
        """Read the ``auths`` section of a Docker config.json.

        Raises:
            ConfigError: the file is not JSON, or an ``auth`` entry is not base64 ``user:password``.
        """
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc.__class__.__name__})") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: top level must be an object")
        auths = doc.get("auths", {})
        if not isinstance(auths, dict):
            raise ConfigError(f"{source}: 'auths' must be an object")
        by_host: dict[str, Credentials] = {}
        for key, entry in auths.items():
            if not isinstance(entry, dict):
                raise ConfigError(f"{source}: auths[{key!r}] must be an object")
            by_host[_normalise_config_host(key)] = _credentials_from_entry(entry, key, source)
        return cls(by_host)

    @classmethod
    def from_docker_config_file(cls, path: str | Path) -> CredentialStore:
        """Like `from_docker_config`, reading the file at ``path``.

        Raises:
            ConfigError: the file cannot be read or does not parse.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read registry config {path}: {exc.strerror}") from exc
        return cls.from_docker_config(data, str(path))


def _credentials_from_entry(entry: Mapping[str, object], key: str, source: str) -> Credentials:
    username = entry.get("username")
    password = entry.get("password")
    auth = entry.get("auth")
    token = entry.get("identitytoken")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: auths[{key!r}].auth is not base64") from exc
        user, sep, secret = decoded.partition(":")
        if not sep:
            raise ConfigError(f"{source}: auths[{key!r}].auth is not 'user:password'")
        username, password = user, secret
    return Credentials(
        username=username if isinstance(username, str) and username else None,
        password=password if isinstance(password, str) else None,
        identity_token=token if isinstance(token, str) and token else None,
    )


@dataclass(frozen=True, slots=True)
class CachedToken:
    """A bearer token and the loop time after which it must not be used."""

    token: str
    expires_at: float


class TokenCache:
    """Bearer tokens by (realm, service, scope), dropped a margin before they expire.

    Bounded: the oldest entries go first when it is full, so a flood of distinct repositories cannot
    grow it without limit.
    """

    def __init__(self, *, max_entries: int = 1024, margin_seconds: float = 10.0) -> None:
        self._entries: dict[tuple[str, str, str, str], CachedToken] = {}
        self._max_entries = max_entries
        self._margin = margin_seconds

    def get(self, key: tuple[str, str, str, str], now: float) -> str | None:
        """A cached token still valid at loop time ``now``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at - self._margin <= now:
            del self._entries[key]
            return None
        return entry.token

    def put(self, key: tuple[str, str, str, str], token: str, expires_at: float) -> None:
        """Remember ``token`` until ``expires_at`` (loop time)."""
        if key not in self._entries and len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = CachedToken(token, expires_at)

    def discard(self, key: tuple[str, str, str, str]) -> None:
        """Forget a token the registry refused."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
