"""What every fuzz target shares: running one input, and telling a crash from an accepted error.

A target module defines ``ACCEPTED``, a tuple of exception types its parsers document (an input
that raises one of them was refused, which is fine), and ``run(data: bytes) -> None``. Anything
else that escapes ``run`` is a crash, and so is an accepted error whose message is empty or longer
than one line (every signgate message ends up in a denial reason, a log line or an HTTP 400).

This module imports nothing from signgate, so that the fuzz worker can import the targets (and
through them signgate) under atheris' instrumentation.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import cast

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_DIR = FUZZ_DIR / "corpus"

TARGETS = (
    "reference",
    "admission",
    "oci",
    "bundle",
    "dsse",
    "simplesigning",
    "tlog",
    "certificate",
    "keys",
    "timestamp",
    "verify",
    "predicate",
    "policy",
    "trusted_root",
)
"""Every target, in the order the runner fuzzes them (``fuzz/targets/<name>.py``)."""


@dataclass(frozen=True)
class Target:
    """A loaded target module."""

    name: str
    accepted: tuple[type[Exception], ...]
    run: Callable[[bytes], None]

    @property
    def corpus(self) -> Path:
        """``fuzz/corpus/<name>``: the seed inputs."""
        return CORPUS_DIR / self.name

    def seeds(self) -> list[Path]:
        """The seed files, in name order."""
        return sorted(p for p in self.corpus.iterdir() if p.is_file())


def load(name: str) -> Target:
    """Import ``fuzz.targets.<name>``."""
    if name not in TARGETS:
        raise ValueError(f"unknown fuzz target {name!r} (known: {', '.join(TARGETS)})")
    module: ModuleType = importlib.import_module(f"fuzz.targets.{name}")
    accepted = cast(tuple[type[Exception], ...], module.ACCEPTED)
    run = cast(Callable[[bytes], None], module.run)
    return Target(name, accepted, run)


@dataclass(frozen=True)
class Crash:
    """One input that made a target misbehave."""

    target: str
    kind: str
    """The exception type (``KeyError``), or ``bad message`` for an accepted error."""
    where: str
    """``file:line`` of the innermost signgate frame (else the innermost frame)."""
    message: str
    traceback: str

    @property
    def signature(self) -> str:
        """What identifies the bug, for de-duplication: the exception type and where."""
        return f"{self.kind} at {self.where}"


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/signgate/" in f.filename] or frames
    if not ours:
        return "?"
    frame = ours[-1]
    path = frame.filename
    for anchor in ("/signgate/", "/fuzz/", "/site-packages/"):
        if anchor in path:
            path = path[path.rindex(anchor) + 1 :]
            break
    return f"{path}:{frame.lineno}"


def _crash(target: str, exc: BaseException, kind: str | None = None) -> Crash:
    return Crash(
        target=target,
        kind=kind or type(exc).__name__,
        where=_where(exc),
        message=f"{type(exc).__name__}: {exc}"[:500],
        traceback="".join(traceback.format_exception(exc)),
    )


class BadMessageError(Exception):
    """An accepted error whose message is empty or more than one line."""


def check_message(exc: Exception) -> None:
    """Raise `BadMessageError` unless ``exc``'s message is one non-empty line."""
    message = str(exc)
    if not message or "\n" in message or "\r" in message:
        raise BadMessageError(f"{type(exc).__name__} message is not one line: {message!r}") from exc


@contextmanager
def refused(*accepted: type[Exception]) -> Iterator[None]:
    """A step of a target whose ``accepted`` errors are refusals, not crashes (their message is
    checked); for targets that go on after one parser refused an input."""
    try:
        yield
    except accepted as exc:
        check_message(exc)


def check(target: Target, data: bytes) -> Crash | None:
    """Run ``target`` on one input; None when it passed or raised an accepted, well-formed error."""
    try:
        with refused(*target.accepted):
            target.run(data)
    except BadMessageError as exc:
        return _crash(target.name, exc.__cause__ or exc, "bad message")
    except Exception as exc:  # noqa: BLE001 - any other exception is what we look for
        return _crash(target.name, exc)
    return None


# -- helpers for the targets -------------------------------------------------------------------


def text(data: bytes) -> str:
    """``data`` as text: UTF-8, with undecodable bytes as lone surrogates (as JSON can carry)."""
    return data.decode("utf-8", "surrogateescape")


def fields(data: bytes, count: int) -> list[bytes]:
    """Split ``data`` into ``count`` fields: each but the last is prefixed by its length in two
    big-endian bytes; the last takes the rest. Missing fields are empty."""
    out: list[bytes] = []
    rest = data
    for _ in range(count - 1):
        size = int.from_bytes(rest[:2], "big")
        out.append(rest[2 : 2 + size])
        rest = rest[2 + size :]
    out.append(rest)
    return out


def pack(*parts: bytes) -> bytes:
    """The inverse of `fields`: how seeds of multi-field targets are written."""
    head = b"".join(len(p).to_bytes(2, "big") + p for p in parts[:-1])
    return head + (parts[-1] if parts else b"")
