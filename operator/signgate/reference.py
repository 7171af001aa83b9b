"""Image references: parse and normalise like distribution/reference (the Docker grammar).

``nginx`` becomes ``docker.io/library/nginx:latest``; ``localhost:5000/app@sha256:…`` keeps its
host and port; ``[::1]:5000/app`` is an IPv6 host. Anything outside the grammar is rejected with
the rule it broke, because a reference we "fix up" silently is a reference a policy pattern may
not match the way its author expected.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import NewType

from signgate.errors import InvalidReferenceError

Digest = NewType("Digest", str)
"""``sha256:<64 lowercase hex>``; made only by `parse_digest` or `digest_of`."""

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
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

    ``registry`` is the host as users write it (``docker.io``, ``127.0.0.1:5000``, ``[::1]:5000``);
    ``repository`` is the path inside it (``library/nginx``). At least one of ``tag`` and
    ``digest`` is set; a reference with neither gets the tag ``latest`` when parsed.
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


def _split_domain(name: str) -> tuple[str, str]:
    # distribution/reference normalize.go splitDockerDomain: the first component is a host only
    # if it looks like one (a dot, a port, "localhost", or uppercase, which a path may not have).
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, remainder = first, rest
    else:
        domain, remainder = DOCKER_HUB, name
    # Host names are case-insensitive; lower-case them so policy patterns cannot be sidestepped by
    # writing TRUSTED.example instead of trusted.example.
    domain = domain.lower()
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in remainder:
        remainder = f"library/{remainder}"
    return domain, remainder


@functools.lru_cache(maxsize=4096)
def parse_reference(text: str) -> ImageReference:
    """Parse and normalise an image reference the way Docker and the kubelet do.

    Raises:
        InvalidReferenceError: the reference breaks the grammar; the message says which rule.
    """
    if not text:
        raise InvalidReferenceError(text, "empty reference")
    if len(text) > MAX_REFERENCE_LENGTH:
        raise InvalidReferenceError(text, f"longer than {MAX_REFERENCE_LENGTH} characters")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReferenceError(text, "contains whitespace")

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
    domain, path = _split_domain(remainder)
    if not _HOST.fullmatch(domain):
        raise InvalidReferenceError(text, f"invalid registry host {domain!r}")
    if domain != DOCKER_HUB and "." not in domain and ":" not in domain and domain != "localhost":
        # A host only by its uppercase letters ("MyHost/app"): lowercased, it would name Docker
        # Hub's myhost/app, so the normalised name policies match would be another registry's.
        raise InvalidReferenceError(
            text, f"registry host {domain!r} needs a '.' or a port (or is 'localhost')"
        )
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
    if len(domain) + 1 + len(path) > MAX_NAME_LENGTH:
        raise InvalidReferenceError(text, f"repository name longer than {MAX_NAME_LENGTH}")

    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(registry=domain, repository=path, tag=tag, digest=digest)
