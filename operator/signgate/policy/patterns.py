"""Image patterns of a TrustPolicy: anchored, host and path matched separately.

A pattern names repositories, never tags or digests. It is normalised like a reference (``nginx``
means ``docker.io/library/nginx``) and then matched in two anchored parts:

- the registry host (with its port, if any): ``*`` stands for the characters of one DNS label, so
  ``*.trusted.example`` matches ``a.trusted.example`` but neither ``a.b.trusted.example`` nor
  ``evil.example/x.trusted.example``;
- the repository path: ``*`` stands for characters within one path segment and a ``**`` segment
  for any number of segments (``release/**`` matches ``release``, ``release/app`` and
  ``release/a/b``).

The pattern ``**`` on its own matches every image.

A registry is matched under every host that names it (`signgate.reference.host_spellings`):
``registry.example.com/**`` governs ``registry.example.com:443/app`` and the other way round, and
a pattern for one of Docker Hub's hosts (``docker.io``, ``index.docker.io``,
``registry-1.docker.io``, ``registry.hub.docker.com``, each with or without ``:443``) governs the
images written with any of them, so no spelling of a host escapes a pattern. A literal host must
be written the one way a reference may write it (`signgate.reference.host_problem`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from signgate.errors import PolicyError
from signgate.reference import DOCKER_HUB, host_problem, host_spellings, is_docker_hub

_HOST_CHARS = re.compile(r"[a-z0-9.\-*:\[\]]+")
_PATH_CHARS = re.compile(r"[a-z0-9._\-*/]+")


@dataclass(frozen=True, slots=True)
class ImagePattern:
    """A compiled image pattern; `matches` takes a normalised ``registry/repository``."""

    text: str
    normalised: str
    _regex: re.Pattern[str]

    def matches(self, name: str) -> bool:
        """Whether ``name`` (``ImageReference.name``) is governed by this pattern.

        It is, if the pattern matches ``name`` written with any host that names its registry.
        """
        return _matches_any_spelling(self._regex, name)


# Cached: every governing check on the warm admission path asks this for each pattern of each
# policy and each image; trying every host spelling costs ten times one match.
@functools.lru_cache(maxsize=16384)
def _matches_any_spelling(regex: re.Pattern[str], name: str) -> bool:
    host, _, path = name.partition("/")
    return any(regex.fullmatch(f"{h}/{path}") for h in host_spellings(host))


def _split_host(pattern: str) -> tuple[str, str]:
    first, sep, rest = pattern.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, pattern
    if host == "index.docker.io":
        host = DOCKER_HUB
    if is_docker_hub(host) and "/" not in path and "*" not in path:
        path = f"library/{path}"  # Docker Hub's official images, under any of its hosts
    return host, path


def _host_regex(host: str, text: str) -> str:
    if "**" in host:
        raise PolicyError(f"image pattern {text!r}: '**' is not allowed in the registry host")
    if not _HOST_CHARS.fullmatch(host):
        raise PolicyError(f"image pattern {text!r}: invalid registry host {host!r}")
    problem = None if "*" in host else host_problem(host)
    if problem is not None:
        # No reference can be written with this host, so the pattern would govern nothing.
        raise PolicyError(f"image pattern {text!r}: {problem}")
    # One DNS label per '*': never crosses a '.', ':' or '/'.
    return "".join("[a-z0-9-]*" if ch == "*" else re.escape(ch) for ch in host)


def _segment_regex(segment: str) -> str:
    return "".join("[^/]*" if ch == "*" else re.escape(ch) for ch in segment)


def _path_regex(path: str, text: str) -> str:
    if not path or not _PATH_CHARS.fullmatch(path):
        raise PolicyError(
            f"image pattern {text!r}: the repository path may contain only lowercase letters, "
            "digits, '.', '_', '-', '/' and '*'"
        )
    segments = path.split("/")
    if any(not s for s in segments):
        raise PolicyError(f"image pattern {text!r}: empty path segment")
    for segment in segments:
        if "**" in segment and segment != "**":
            raise PolicyError(f"image pattern {text!r}: '**' must be a whole path segment")
    out = ""
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            if len(segments) == 1:
                out += "[^/]+(?:/[^/]+)*"
            elif last:
                out = out[:-1] + "(?:/[^/]+)*"  # swallow the '/' we added after the previous one
            else:
                out += "(?:[^/]+/)*"
        else:
            out += _segment_regex(segment) + ("" if last else "/")
    return out


def compile_pattern(text: str) -> ImagePattern:
    """Compile one pattern of ``spec.images`` / ``spec.excludeImages``.

    Raises:
        PolicyError: the pattern carries a tag or digest, uses uppercase, or breaks the grammar.
    """
    if not text or text != text.strip():
        raise PolicyError(f"image pattern {text!r}: empty or surrounded by whitespace")
    if "@" in text:
        raise PolicyError(f"image pattern {text!r}: patterns name repositories, not digests")
    if text.lower() != text:
        raise PolicyError(f"image pattern {text!r}: must be lowercase, as repository names are")
    if text == "**":
        return ImagePattern(text, text, re.compile(r"[^/]+/[^/]+(?:/[^/]+)*"))
    host, path = _split_host(text)
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        raise PolicyError(f"image pattern {text!r}: patterns name repositories, not tags")
    regex = _host_regex(host, text) + "/" + _path_regex(path, text)
    return ImagePattern(text, f"{host}/{path}", re.compile(regex))
