"""Image references: parse and normalise exactly as the kubelet and containerd do.

The reference is the one ``github.com/distribution/reference`` (v0.6.0) makes with
``ParseDockerRef(ParseNormalizedNamed(s))``: ``nginx`` is ``docker.io/library/nginx:latest``,
``index.docker.io/x/y`` is ``docker.io/x/y``, ``localhost:5000/app@sha256:…`` keeps its host and
port, ``[::1]:5000/app`` is an IPv6 host. Every reference signgate accepts names the same registry
host (as Go writes it), repository, tag and digest as Go does; the Go differential test
(``tests/integration/test_reference_differential.py``) checks that over more than 100,000 strings.
A digest with a tag keeps the tag here for display only: the digest is what is verified and pulled
(Go drops the tag).

signgate refuses, with the rule, everything Go refuses, and some references Go accepts but that
would not mean what a policy author reads in them:

- a 64-hex string, or a name ``sha256`` (``sha384``, ``sha512``) written without a registry, such
  as ``sha256:<hex>``: containerd's CRI reads those as a local image ID (or its prefix), not as
  ``docker.io/library/sha256``, and runs a local image without pulling anything;
- a registry host with uppercase letters (``Docker.io/x``, ``INDEX.DOCKER.IO/x``): Go keeps the
  host as written, so it is neither Docker Hub's ``docker.io`` (no ``library/``, no rewrite to
  ``registry-1.docker.io``) nor the lowercase host to containerd's per-host configuration;
- a host with a character outside ASCII (U+212A KELVIN SIGN lower-cases to an ASCII ``k``);
- a host that can be spelled another way: a port with a leading zero or outside 1-65535, an IPv6
  address not in its RFC 5952 form (``[::1]``, not ``[0:0::1]``), a host ending in a numeric label
  that is not a dotted-quad IPv4 address (``127.1``, ``0x7f.1``);
- a one-component repository on a Docker Hub host other than ``docker.io`` and
  ``index.docker.io`` (``registry-1.docker.io/nginx``): Go reads ``nginx``, Docker Hub may serve
  ``library/nginx``.

Hosts that name the same registry are the same to policy patterns (`host_spellings`): ``host``
and ``host:443`` (containerd connects to 443 when no port is written), and Docker Hub's hosts
``docker.io``, ``index.docker.io``, ``registry-1.docker.io`` and ``registry.hub.docker.com``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import NewType

from signgate.errors import InvalidReferenceError

Digest = NewType("Digest", str)
"""``sha256:<64 lowercase hex>``; made only by `parse_digest` or `digest_of`."""

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DOCKER_HUB_HOSTS = frozenset(
    {DOCKER_HUB, "index.docker.io", DOCKER_HUB_API_HOST, "registry.hub.docker.com"}
)
"""The hosts of Docker Hub's registry (a reference's ``index.docker.io`` becomes ``docker.io``)."""
HTTPS_PORT = "443"
DIGEST_ALGORITHMS = frozenset({"sha256", "sha384", "sha512"})
"""The digest algorithms containerd's image ID lookup understands (``sha256:<hex>`` is an ID)."""
MAX_NAME_LENGTH = 255
MAX_REFERENCE_LENGTH = 4096

# distribution/reference/regexp.go, spelled out so each piece can be checked on its own.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = re.compile(rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_ANY = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")
_IPV4_LIKE = re.compile(r"(?:.*\.)?(?:[0-9]+|0x[0-9a-f]*)", re.ASCII)
_IPV4_OCTET = re.compile(r"0|[1-9][0-9]{0,2}", re.ASCII)


def parse_digest(text: str) -> Digest:
    """Return ``text`` as a `Digest` if it is a well-formed sha256 digest.

    Raises:
        InvalidReferenceError: not ``sha256:`` followed by 64 lowercase hex digits.
    """
    if _SHA256.fullmatch(text):
        return Digest(text)
    if _DIGEST_ANY.fullmatch(text):
        algorithm = text.split(":", 1)[0]
        if algorithm != "sha256":
            raise InvalidReferenceError(text, f"unsupported digest algorithm {algorithm!r}")
        raise InvalidReferenceError(text, "sha256 digest must be 64 lowercase hex digits")
    raise InvalidReferenceError(text, "not a digest of the form sha256:<64 hex>")


def digest_of(data: bytes) -> Digest:
    """The sha256 digest of ``data``, as registries name content."""
    import hashlib

    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A normalised image reference.

    ``registry`` is the host as the kubelet reads it (``docker.io``, ``127.0.0.1:5000``,
    ``[::1]:5000``, ``ghcr.io:443``); ``repository`` is the path inside it (``library/nginx``).
    At least one of ``tag`` and ``digest`` is set; a reference with neither gets the tag
    ``latest`` when parsed.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """``registry/repository``: what TrustPolicy patterns are matched against."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host to send registry API requests to (Docker Hub's API lives elsewhere)."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def hostname(self) -> str:
        """The registry host without port or IPv6 brackets."""
        host = self.registry
        if host.startswith("["):
            return host[1 : host.index("]")]
        return host.rsplit(":", 1)[0] if ":" in host else host

    def with_digest(self, digest: Digest) -> ImageReference:
        """The same repository pinned to ``digest`` (the tag is kept for display)."""
        return ImageReference(self.registry, self.repository, self.tag, digest)

    def in_repository(self, name: str) -> ImageReference:
        """This reference's tag and digest in another ``registry/repository`` (signature repos)."""
        other = parse_reference(name)
        return ImageReference(other.registry, other.repository, self.tag, self.digest)

    @property
    def pinned(self) -> str:
        """``registry/repository@sha256:…``, the form the kubelet must pull; requires a digest."""
        if self.digest is None:
            raise ValueError(f"{self} has no digest")
        return f"{self.name}@{self.digest}"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _split_domain(name: str) -> tuple[str | None, str]:
    # distribution/reference normalize.go splitDockerDomain: the first component is a host only
    # if it looks like one (a dot, a port, "localhost", or uppercase, which a path may not have).
    # None: no host was written, the name is Docker Hub's.
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        if first in (DOCKER_HUB, "index.docker.io"):  # exactly these: Go keeps "Docker.io"
            return DOCKER_HUB, _official(rest)
        return first, rest
    return None, _official(name)


def _official(path: str) -> str:
    # Docker Hub's official images live in library/ ("docker.io/nginx" is docker.io/library/nginx).
    return path if "/" in path else f"library/{path}"


def split_port(host: str) -> tuple[str, str | None]:
    """``host`` as (host name or bracketed IPv6 address, port or None)."""
    name, colon, port = host.rpartition(":")
    if not colon or "]" in port:  # no ':', or the last ':' is inside an IPv6 address
        return host, None
    return name, port


def host_problem(host: str) -> str | None:
    """Why the registry ``host`` (``ImageReference.registry``, no wildcard) is refused, or None.

    Beyond the grammar, a host must have one spelling, so that a policy pattern written for it
    governs every way of writing it: ASCII, lowercase, a port without leading zeros within
    1-65535, IPv6 in its RFC 5952 form, and an IPv4 address as four decimal octets.
    """
    if not host.isascii():
        return f"registry host {host!r} has characters outside ASCII"
    if not _HOST.fullmatch(host):
        return f"invalid registry host {host!r}"
    name, port = split_port(host)
    if "." not in name and port is None and name.lower() != "localhost" and ":" not in name:
        # A host only by its uppercase letters ("MyHost/app"): lowercased, it would name Docker
        # Hub's myhost/app, so the normalised name policies match would be another registry's.
        return f"registry host {host!r} needs a '.' or a port (or is 'localhost')"
    if host.lower() != host:
        return (
            f"registry host {host!r} has uppercase letters: the kubelet keeps a host as written, "
            f"so this is not {host.lower()!r} (containerd's per-host configuration and Docker "
            "Hub's normalisation do not apply to it); write it in lowercase"
        )
    if port is not None and not (
        port.isdigit() and not port.startswith("0") and 1 <= int(port) <= 65535
    ):
        return f"registry port {port!r} is not a number from 1 to 65535 without leading zeros"
    if name.startswith("["):
        address = name[1:-1]
        try:
            canonical = ipaddress.IPv6Address(address).compressed
        except ipaddress.AddressValueError:
            return f"registry host {name!r} is not an IPv6 address"
        if canonical != address:
            return f"IPv6 registry host {name!r} must be written {f'[{canonical}]'!r} (RFC 5952)"
    elif _IPV4_LIKE.fullmatch(name):
        octets = name.split(".")
        if len(octets) != 4 or not all(_IPV4_OCTET.fullmatch(o) and int(o) <= 255 for o in octets):
            return (
                f"registry host {name!r} ends in a numeric label but is not an IPv4 address "
                "written as four decimal numbers from 0 to 255"
            )
    return None


def is_docker_hub(host: str) -> bool:
    """Whether the registry ``host`` is Docker Hub's: one of `DOCKER_HUB_HOSTS`, on port 443."""
    name, port = split_port(host)
    return name in DOCKER_HUB_HOSTS and port in (None, HTTPS_PORT)


# Cached: every policy pattern asks for the image's host spellings on the warm admission path.
@functools.lru_cache(maxsize=1024)
def host_spellings(host: str) -> tuple[str, ...]:
    """Every way of writing the registry ``host`` that names the same registry, ``host`` first.

    ``host`` and ``host:443`` (containerd connects to port 443 when none is written); Docker Hub's
    hosts (`DOCKER_HUB_HOSTS`), with and without ``:443``. Policy patterns match an image if they
    match any of them, so that no spelling escapes a pattern.
    """
    name, port = split_port(host)
    if port not in (None, HTTPS_PORT):
        return (host,)
    names = sorted(DOCKER_HUB_HOSTS) if is_docker_hub(host) else [name]
    spellings = [host] + [f"{n}{suffix}" for n in names for suffix in ("", ":" + HTTPS_PORT)]
    return tuple(dict.fromkeys(spellings))


@functools.lru_cache(maxsize=4096)
def parse_reference(text: str) -> ImageReference:
    """Parse and normalise an image reference the way the kubelet and containerd do.

    Raises:
        InvalidReferenceError: the reference breaks the grammar, or would be read differently by
            the kubelet or containerd (see the module's docstring); the message says which rule.
    """
    if not text:
        raise InvalidReferenceError(text, "empty reference")
    if len(text) > MAX_REFERENCE_LENGTH:
        raise InvalidReferenceError(text, f"longer than {MAX_REFERENCE_LENGTH} characters")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReferenceError(text, "contains whitespace")
    if _IMAGE_ID.fullmatch(text):
        raise InvalidReferenceError(
            text, "64 hex digits are a local image ID to containerd, not a repository name"
        )

    remainder, at, digest_text = text.partition("@")
    if at and "@" in digest_text:
        raise InvalidReferenceError(text, "more than one '@'")
    try:
        digest = parse_digest(digest_text) if at else None
    except InvalidReferenceError as exc:
        raise InvalidReferenceError(text, exc.reason) from exc

    # A tag is whatever follows the last ':' after the last '/'; an earlier ':' is a port.
    tag: str | None = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReferenceError(
                text, f"invalid tag {tag!r} (letters, digits, '_', '.', '-'; at most 128)"
            )

    if not remainder:
        raise InvalidReferenceError(text, "missing repository name")
    if remainder in DIGEST_ALGORITHMS:
        raise InvalidReferenceError(
            text,
            f"{remainder!r} written without a registry is a local image ID to containerd "
            f"({remainder}:<hex>), not docker.io/library/{remainder}",
        )
    written, path = _split_domain(remainder)
    if not path:
        raise InvalidReferenceError(text, "missing repository name")
    for component in path.split("/"):
        if _PATH_COMPONENT.fullmatch(component):
            continue
        if component.lower() != component and _PATH_COMPONENT.fullmatch(component.lower()):
            raise InvalidReferenceError(text, "repository name must be lowercase")
        raise InvalidReferenceError(
            text,
            f"invalid path component {component!r} (lowercase letters and digits, "
            "separated by '.', '_', '__' or '-')",
        )
    domain = DOCKER_HUB if written is None else written
    if written is not None:
        problem = host_problem(written)
        if problem is not None:
            raise InvalidReferenceError(text, problem)
        if "/" not in path and is_docker_hub(written) and written != DOCKER_HUB:
            raise InvalidReferenceError(
                text,
                f"one-component repository {path!r} on the Docker Hub host {written!r}: the "
                f"kubelet reads {written}/{path}, Docker Hub may serve library/{path}; "
                f"write docker.io/library/{path} or docker.io/<namespace>/{path}",
            )
    if len(domain) + 1 + len(path) > MAX_NAME_LENGTH:
        raise InvalidReferenceError(text, f"repository name longer than {MAX_NAME_LENGTH}")

    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry=domain, repository=path, tag=tag, digest=digest)
