"""What one traced verification saw and did, for ``signgate explain``.

Admission asks the engine for a verdict; ``explain`` asks for the same verdict with its working.
The engine fills a `Trace` while it decides (bypassing its caches, so the working is really done):
how the digest was found, what each signature repository held, and each policy's `Evaluation`
(the checks `evaluate_policy` ran). Nothing here decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from signgate.errors import RegistryError
from signgate.policy.evaluate import Evaluation
from signgate.reference import Digest
from signgate.signatures.found import Discovery
from signgate.signatures.results import PreparedSignature, Rejection


@dataclass(frozen=True, slots=True)
class RepositoryFindings:
    """What one signature repository held for the digest, or why it could not be read."""

    repository: str
    discovery: Discovery | None
    prepared: tuple[PreparedSignature | Rejection, ...] = ()
    """One per ``discovery.signatures``, in the same order."""
    error: RegistryError | None = None


@dataclass(frozen=True, slots=True)
class Computation:
    """One verification of one digest: its signatures, and every policy's evaluation of them."""

    name: str
    """``registry/repository`` of the image (or of its image index)."""
    digest: Digest
    repositories: tuple[RepositoryFindings, ...]
    evaluations: dict[str, Evaluation]
    """By policy identity."""


@dataclass(slots=True)
class Trace:
    """Filled by `Verifier.verify_image` when one is passed in."""

    digest: Digest | None = None
    resolve_error: str | None = None
    """Why the tag could not be resolved."""
    computations: list[Computation] = field(default_factory=list)
