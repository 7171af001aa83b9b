"""resolve → discover → verify → decide, for one image or many, under one deadline.

The `Verifier` is the engine shared by ``signgate verify``, ``signgate serve`` and the operator. It
never raises for a bad image, registry or signature: every failure becomes an `ImageDecision` with
its reason, and in Enforce mode that decision is a denial.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from signgate.deadline import Deadline
from signgate.discovery import DiscoveryLimits, discover_signatures
from signgate.errors import InvalidReferenceError, RegistryError
from signgate.policy.compiled import CompiledPolicy
from signgate.policy.evaluate import (
    ImageDecision,
    PolicyOutcome,
    UnmatchedAction,
    decide,
    evaluate_policy,
    failed,
    unmatched,
)
from signgate.reference import Digest, ImageReference, parse_reference
from signgate.registry import RegistryClient
from signgate.signatures.found import Discovery
from signgate.signatures.trusted_root import TrustedRoot
from signgate.signatures.verify import PreparedSignature, Rejection, prepare

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VerifierSettings:
    """Engine-wide choices."""

    unmatched: UnmatchedAction = "deny"
    """What happens to an image no TrustPolicy governs."""
    discovery: DiscoveryLimits = field(default_factory=DiscoveryLimits)


class Verifier:
    """Checks images against compiled TrustPolicies using one registry client."""

    def __init__(
        self,
        client: RegistryClient,
        *,
        trusted_root: TrustedRoot | None = None,
        settings: VerifierSettings | None = None,
    ) -> None:
        self.client = client
        self.trusted_root = trusted_root
        self.settings = settings or VerifierSettings()

    async def verify_images(
        self,
        images: Sequence[str],
        policies: Sequence[CompiledPolicy],
        deadline: Deadline,
        *,
        namespace_labels: Mapping[str, str] | None = None,
    ) -> list[ImageDecision]:
        """Decide every image concurrently; repeated images are checked once."""
        unique = list(dict.fromkeys(images))
        decisions = await asyncio.gather(
            *(
                self.verify_image(i, policies, deadline, namespace_labels=namespace_labels)
                for i in unique
            )
        )
        by_image = dict(zip(unique, decisions, strict=True))
        return [by_image[i] for i in images]

    async def verify_image(
        self,
        image: str,
        policies: Sequence[CompiledPolicy],
        deadline: Deadline,
        *,
        namespace_labels: Mapping[str, str] | None = None,
    ) -> ImageDecision:
        """Decide one image. Never raises (except on cancellation)."""
        try:
            ref = parse_reference(image)
        except InvalidReferenceError as exc:
            return failed(image, str(exc))
        governing = [
            p for p in policies if p.governs(ref.name) and p.selects_namespace(namespace_labels)
        ]
        if not governing:
            return unmatched(image, str(ref), ref.name, self.settings.unmatched)
        try:
            return await self._verify_governed(image, ref, governing, deadline)
        except RegistryError as exc:
            return failed(
                image, f"{ref}: {exc}", reference=str(ref), name=ref.name, policies=governing
            )
        except Exception as exc:
            log.exception("internal error while verifying %s", ref)
            return failed(
                image,
                f"{ref}: internal error while verifying ({type(exc).__name__}); denied to be safe",
                reference=str(ref),
                name=ref.name,
                policies=governing,
            )

    async def _verify_governed(
        self,
        image: str,
        ref: ImageReference,
        governing: Sequence[CompiledPolicy],
        deadline: Deadline,
    ) -> ImageDecision:
        try:
            digest = await self.client.resolve_digest(ref, deadline)
        except RegistryError as exc:
            return failed(
                image,
                f"{ref}: cannot resolve the digest: {exc}",
                reference=str(ref),
                name=ref.name,
                policies=governing,
            )
        repositories = sorted({p.signature_repository or ref.name for p in governing})
        found = await asyncio.gather(
            *(self._discover(repository, digest, deadline) for repository in repositories),
            return_exceptions=True,
        )
        discovered: dict[str, Discovery | RegistryError] = {}
        for repository, result in zip(repositories, found, strict=True):
            if isinstance(result, RegistryError | Discovery):
                discovered[repository] = result
            else:
                raise result
        prepared: dict[str, list[PreparedSignature | Rejection]] = {
            repository: [prepare(s) for s in result.signatures]
            for repository, result in discovered.items()
            if isinstance(result, Discovery)
        }
        outcomes: list[PolicyOutcome] = []
        notes: list[str] = []
        for result in discovered.values():
            if isinstance(result, Discovery):
                notes.extend(result.notes)
                notes.extend(f"could not read all signatures: {e}" for e in result.errors)
        for policy in governing:
            repository = policy.signature_repository or ref.name
            result = discovered[repository]
            if isinstance(result, RegistryError):
                outcomes.append(
                    PolicyOutcome(
                        policy.name,
                        policy.mode,
                        False,
                        reason=f"TrustPolicy {policy.name!r}: cannot read signatures "
                        f"from {repository}: {result}",
                    )
                )
                continue
            outcomes.append(
                evaluate_policy(
                    policy,
                    digest=digest,
                    discoveries=[result],
                    prepared=prepared[repository],
                    trusted_root=self.trusted_root,
                )
            )
        decision = decide(image, str(ref), ref.name, digest, outcomes, notes=notes)
        return _with_image_prefix(decision, ref, digest)

    async def _discover(self, repository: str, digest: Digest, deadline: Deadline) -> Discovery:
        repo = parse_reference(repository)
        return await discover_signatures(
            self.client, repo, digest, deadline, limits=self.settings.discovery
        )


def _with_image_prefix(
    decision: ImageDecision, ref: ImageReference, digest: Digest
) -> ImageDecision:
    """Start every reason with the image and digest: it is the first thing a person needs."""
    prefix = f"{ref.name}@{digest}: "
    return replace(
        decision,
        reasons=tuple(prefix + r for r in decision.reasons),
        warnings=tuple(prefix + w for w in decision.warnings),
        audit=tuple(prefix + a for a in decision.audit),
    )
