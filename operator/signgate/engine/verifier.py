"""resolve → discover → verify → decide, for one image or many, under one deadline.

The `Verifier` is the engine shared by ``signgate verify``, ``signgate serve`` and the operator. It
never raises for a bad image, registry or signature: every failure becomes an `ImageDecision` with
its reason, and in Enforce mode that decision is a denial.

Caching (what makes admission fast, and what must not make it wrong; docs/adr/0001):
- tag → digest: a few seconds at most, because tags move;
- policy outcomes: keyed by everything a verdict is a function of: the policy's identity (it
  changes whenever the policy does), the digest, where the signatures were read (the image's own
  ``registry/repository`` or the policy's ``signatureRepository``), the image's repository when
  the policy judges it (``signedIdentity``), and the trusted root in force — never by tag. So a
  warm replica answers what a fresh one would. Satisfied outcomes live long (content under a
  digest is immutable); unsatisfied ones briefly, so a signature added later is found soon;
  outcomes that came from a registry failure (timeout, 5xx, 429) are never cached;
- concurrent identical work (the pods of one Deployment) is coalesced into one computation. That
  computation runs in its own task, for up to `WORK_SECONDS` past the deadline of the request that
  started it, and caches what it learns; every request still waits only until its own deadline.
  Otherwise, with a slow registry, each request's work would be thrown away at its deadline and
  started again by the next one, and the cache would never fill.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from signgate.cache import SingleFlight, TTLCache
from signgate.deadline import Deadline
from signgate.engine.discovery import discover_signatures
from signgate.engine.settings import WORK_SECONDS, VerifierSettings
from signgate.engine.trace import Computation, RepositoryFindings, Trace
from signgate.errors import (
    DeadlineExceededError,
    InvalidReferenceError,
    MalformedResponseError,
    RegistryError,
)
from signgate.policy.advice import registry_advice
from signgate.policy.compiled import CompiledPolicy
from signgate.policy.evaluate import (
    Evaluation,
    ImageDecision,
    PolicyOutcome,
    broken_reason,
    decide,
    evaluate_policy,
    failed,
    unmatched,
)
from signgate.reference import Digest, ImageReference, parse_reference
from signgate.registry import CredentialStore, RegistryClient
from signgate.registry.oci import INDEX_MEDIA_TYPES, parse_index
from signgate.signatures.found import Discovery
from signgate.signatures.prepare import prepare
from signgate.signatures.results import PreparedSignature, Rejection
from signgate.signatures.trusted_root import TrustedRoot

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Question:
    """One caller's question as it travels through the engine: under which deadline, with which
    registry credentials, at what time, and what it may leave behind."""

    deadline: Deadline
    credentials: CredentialStore | None
    now: datetime
    trace: Trace | None = None
    """Record the working here, and compute afresh (explain)."""
    remember_denials: bool = True
    """Whether an unsatisfied verdict may be cached. A dry run's may not: asking must not change
    what a later real request is answered (issue 15)."""

    @property
    def who(self) -> str:
        """Whose credentials: work done with some is never shared with others."""
        return self.credentials.identity if self.credentials is not None else "configured"


@dataclass(frozen=True, slots=True)
class _Computed:
    outcomes: tuple[tuple[CompiledPolicy, PolicyOutcome, bool], ...]
    """(policy, outcome, cacheable)."""
    notes: tuple[str, ...]


def wall_clock() -> datetime:
    """The current time, read once per admission or ``verify`` run (never inside a check)."""
    return datetime.now(UTC)


class Verifier:
    """Checks images against compiled TrustPolicies using one registry client."""

    def __init__(
        self,
        client: RegistryClient,
        *,
        trusted_root: TrustedRoot | None = None,
        settings: VerifierSettings | None = None,
        clock: Callable[[], datetime] = wall_clock,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` gives the time a verification judges at (certificates of your own CA);
        ``monotonic`` times cache entries (default: the event loop's clock). Tests inject both."""
        self.client = client
        self.settings = settings or VerifierSettings()
        self._trusted_root = trusted_root
        self._root_generation = 0
        """Bumped whenever the trusted root changes: part of every verdict's cache key, so that a
        check that started under the old root cannot leave its verdict behind for the new one."""
        self.clock = clock
        limit = self.settings.cache.max_entries
        self.tags: TTLCache[tuple[str, str, str, str], Digest] = TTLCache(
            max_entries=limit, clock=monotonic
        )
        self.outcomes: TTLCache[OutcomeKey, PolicyOutcome] = TTLCache(
            max_entries=limit, clock=monotonic
        )
        self.index_children: TTLCache[tuple[str, Digest], frozenset[str]] = TTLCache(
            max_entries=limit, clock=monotonic
        )
        self._resolving: SingleFlight[tuple[str, str, str, str], Digest] = SingleFlight()
        self._verifying: SingleFlight[tuple[Digest, str, str, tuple[str, ...], int], _Computed] = (
            SingleFlight()
        )
        self.verifications = 0
        """Signature evaluations actually run (not served from cache or coalesced)."""

    @property
    def trusted_root(self) -> TrustedRoot | None:
        """The Sigstore trusted root keyless and transparency-log checks use."""
        return self._trusted_root

    @trusted_root.setter
    def trusted_root(self, root: TrustedRoot | None) -> None:
        # Verdicts reached under the old root are forgotten now, and any still being reached are
        # written under the old generation, where no lookup finds them.
        self._trusted_root = root
        self._root_generation += 1
        self.outcomes.clear()

    def _outcome_key(
        self, policy: CompiledPolicy, digest: Digest, ref: ImageReference, generation: int
    ) -> OutcomeKey:
        # Signatures are read from the image's own repository unless the policy names one, so the
        # same digest in two repositories is two questions (issue 15: one repository's verdict
        # must never answer for another's). The image's repository is judged too when the policy
        # matches the repository named inside signatures.
        return (
            policy.identity,
            digest,
            policy.signature_repository or ref.name,
            ref.name if policy.outcome_scope else "",
            generation,
        )

    def forget_policy(self, identity: str) -> int:
        """Drop every cached outcome of one policy version (e.g. when it is deleted)."""
        return self.outcomes.discard_where(lambda key: key[0] == identity)

    async def verify_images(
        self,
        images: Sequence[str],
        policies: Sequence[CompiledPolicy],
        deadline: Deadline,
        *,
        namespace_labels: Mapping[str, str] | None = None,
        credentials: CredentialStore | None = None,
        now: datetime | None = None,
    ) -> list[ImageDecision]:
        """Decide every image concurrently, at one time; repeated images are checked once."""
        unique = list(dict.fromkeys(images))
        now = now or self.clock()
        decisions = await asyncio.gather(
            *(
                self.verify_image(
                    i,
                    policies,
                    deadline,
                    namespace_labels=namespace_labels,
                    credentials=credentials,
                    now=now,
                )
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
        credentials: CredentialStore | None = None,
        now: datetime | None = None,
        trace: Trace | None = None,
        remember_denials: bool = True,
    ) -> ImageDecision:
        """Decide one image. Never raises (except on cancellation).

        ``credentials`` (e.g. the Pod's imagePullSecrets) replace the configured registry
        credentials for this image; work done with other credentials is never shared with it.
        ``now`` is the time of the admission (read from ``clock`` when not given). With a
        ``trace``, the verdict is computed afresh (no cached verdict, no shared work) and the
        working is recorded in it. Without ``remember_denials`` (dry runs), an unsatisfied verdict
        is not cached.
        """
        ask = _Question(deadline, credentials, now or self.clock(), trace, remember_denials)
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
            return await self._verify_governed(image, ref, governing, ask)
        except RegistryError as exc:
            return failed(
                image,
                f"{ref}: {exc}; what to do: {registry_advice(exc)}",
                reference=str(ref),
                name=ref.name,
                policies=governing,
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

    def cached_decision(
        self,
        image: str,
        policies: Sequence[CompiledPolicy],
        *,
        namespace_labels: Mapping[str, str] | None = None,
        credentials: CredentialStore | None = None,
    ) -> ImageDecision | None:
        """The decision on ``image`` from the caches alone, or None if anything is missing.

        The warm path of admission: no task, no await, no I/O. It is exactly what `verify_image`
        would answer from the same caches (the slow path takes over for everything else: an
        unparseable reference, an unresolved tag, a verdict not cached, an image index to look
        at).
        """
        try:
            ref = parse_reference(image)
        except InvalidReferenceError:
            return None
        governing = [
            p for p in policies if p.governs(ref.name) and p.selects_namespace(namespace_labels)
        ]
        if not governing:
            return unmatched(image, str(ref), ref.name, self.settings.unmatched)
        digest = ref.digest
        lookups = verdicts = 0
        if digest is None:
            assert ref.tag is not None
            who = credentials.identity if credentials is not None else "configured"
            digest = self.tags.peek((ref.api_host, ref.repository, ref.tag, who))
            if digest is None:
                return None
            lookups += 1
        outcomes: list[PolicyOutcome] = []
        for policy in governing:
            fixed = _fixed_outcome(policy, ref, digest)
            if fixed is None:
                key = self._outcome_key(policy, digest, ref, self._root_generation)
                fixed = self.outcomes.peek(key)
                if fixed is None or (policy.index_covers_children and not fixed.satisfied):
                    return None  # the slow path looks again, and counts its lookups
                verdicts += 1
            outcomes.append(fixed)
        self.tags.stats.hits += lookups
        self.outcomes.stats.hits += verdicts
        return decide(image, str(ref), ref.name, digest, outcomes, prefix=f"{ref.name}@{digest}: ")

    async def resolve(
        self, ref: ImageReference, deadline: Deadline, credentials: CredentialStore | None = None
    ) -> Digest:
        """The digest of ``ref``: its own, a recently resolved one, or the registry's answer now.

        Raises:
            RegistryError: the registry could not tell.
        """
        if ref.digest is not None:
            return ref.digest
        assert ref.tag is not None
        # A tag's digest is public once resolved, but whether it can be resolved at all depends on
        # the credentials: keep them in the key.
        who = credentials.identity if credentials is not None else "configured"
        key = (ref.api_host, ref.repository, ref.tag, who)
        cached = self.tags.get(key)
        if cached is not None:
            return cached

        work = _work_deadline(deadline)

        async def fetch() -> Digest:
            digest = await self.client.resolve_digest(ref, work, credentials=credentials)
            self.tags.put(key, digest, self.settings.cache.tag_ttl)
            return digest

        return await _until(deadline, self._resolving.run(key, fetch), f"resolving {ref}")

    async def _verify_governed(
        self,
        image: str,
        ref: ImageReference,
        governing: Sequence[CompiledPolicy],
        ask: _Question,
    ) -> ImageDecision:
        trace = ask.trace
        try:
            digest = await self.resolve(ref, ask.deadline, ask.credentials)
        except RegistryError as exc:
            if trace is not None:
                trace.resolve_error = str(exc)
            return failed(
                image,
                f"{ref}: cannot resolve the digest: {exc}; what to do: {registry_advice(exc)}",
                reference=str(ref),
                name=ref.name,
                policies=governing,
            )
        if trace is not None:
            trace.digest = digest
        outcomes: dict[str, PolicyOutcome] = {}
        checkable: list[CompiledPolicy] = []
        for policy in governing:
            fixed = _fixed_outcome(policy, ref, digest)
            if fixed is not None:
                outcomes[policy.identity] = fixed
            else:
                checkable.append(policy)
        computed, notes = await self._policy_outcomes(ref, digest, checkable, ask)
        outcomes.update(computed)
        uncovered = [
            p for p in checkable if p.index_covers_children and not outcomes[p.identity].satisfied
        ]
        if uncovered:
            covered, index_notes = await self._covered_by_index(
                ref, digest, [(p, outcomes[p.identity]) for p in uncovered], ask
            )
            outcomes.update(covered)
            notes += index_notes
        ordered = [outcomes[p.identity] for p in governing]
        # Every reason starts with the image and digest: the first thing a person needs.
        prefix = f"{ref.name}@{digest}: "
        return decide(image, str(ref), ref.name, digest, ordered, notes=notes, prefix=prefix)

    async def _policy_outcomes(
        self,
        ref: ImageReference,
        digest: Digest,
        policies: Sequence[CompiledPolicy],
        ask: _Question,
    ) -> tuple[dict[str, PolicyOutcome], tuple[str, ...]]:
        """Each policy's verdict on ``digest``: cached, or computed (once for concurrent askers;
        afresh when traced, so that the working shown is work really done)."""
        trace = ask.trace
        outcomes: dict[str, PolicyOutcome] = {}
        missing: list[CompiledPolicy] = []
        generation = self._root_generation
        for policy in policies:
            key = self._outcome_key(policy, digest, ref, generation)
            cached = None if trace else self.outcomes.get(key)
            if cached is None:
                missing.append(policy)
            else:
                outcomes[policy.identity] = cached
        notes: tuple[str, ...] = ()
        if missing:
            # Shared work is shared only by askers of the same question: the same repository (the
            # signatures may be read from it), the same credentials and the same trusted root.
            identities = tuple(sorted(p.identity for p in missing))
            work_key = (digest, ref.name, ask.who, identities, generation)
            work = replace(ask, deadline=_work_deadline(ask.deadline))
            root = self.trusted_root

            async def compute() -> _Computed:
                computed = await self._compute(ref, digest, missing, work, root)
                cache = self.settings.cache
                for policy, outcome, cacheable in computed.outcomes:
                    if cacheable and (outcome.satisfied or ask.remember_denials):
                        ttl = cache.verified_ttl if outcome.satisfied else cache.unverified_ttl
                        key = self._outcome_key(policy, digest, ref, generation)
                        self.outcomes.put(key, outcome, ttl)
                return computed

            shared = compute() if trace is not None else self._verifying.run(work_key, compute)
            computed = await _until(ask.deadline, shared, f"verifying {ref.name}@{digest}")
            notes = computed.notes
            for policy, outcome, _ in computed.outcomes:
                outcomes[policy.identity] = outcome
        return outcomes, notes

    async def _index_children(
        self,
        index_ref: ImageReference,
        index_digest: Digest,
        ask: _Question,
    ) -> frozenset[str]:
        """The digests an image index lists. Cached like a verdict: content under a digest is
        immutable, and without the cache every admission of a covered child would fetch it."""
        key = (index_ref.name, index_digest)
        cached = self.index_children.get(key)
        if cached is not None:
            return cached
        fetched = await self.client.fetch_manifest(
            index_ref,
            index_digest,
            ask.deadline,
            accept=INDEX_MEDIA_TYPES,
            credentials=ask.credentials,
        )
        if fetched is None:
            raise MalformedResponseError(f"{index_ref.name}@{index_digest} disappeared")
        index = parse_index(
            fetched.raw,
            f"image index {index_ref.name}@{index_digest}",
            max_manifests=self.client.options.limits.max_referrers,
        )
        children = frozenset(child.digest for child in index.manifests)
        self.index_children.put(key, children, self.settings.cache.verified_ttl)
        return children

    async def _covered_by_index(
        self,
        ref: ImageReference,
        digest: Digest,
        uncovered: Sequence[tuple[CompiledPolicy, PolicyOutcome]],
        ask: _Question,
    ) -> tuple[dict[str, PolicyOutcome], tuple[str, ...]]:
        """indexCoversChildren: the verdicts of the image index that ``ref``'s tag names, for a
        ``repo:tag@sha256:<child>`` reference whose child digest that index lists.

        The tag is only a pointer to a candidate index: what counts is that a signed index (an
        immutable digest) lists the child, which holds whatever the tag later points to.
        """
        if ref.tag is None or ref.digest is None:
            hint = (
                "; indexCoversChildren applies to references written repo:tag@sha256:<digest>, "
                "whose tag names the signed image index"
            )
            return _amended(uncovered, hint), ()
        index_ref = ImageReference(ref.registry, ref.repository, ref.tag)
        try:
            index_digest = await self.resolve(index_ref, ask.deadline, ask.credentials)
            if index_digest == digest:
                return {}, ()
            children = await self._index_children(index_ref, index_digest, ask)
        except RegistryError as exc:
            note = f"indexCoversChildren: cannot read the image index of tag {ref.tag!r}: {exc}"
            return {}, (note,)
        if digest not in children:
            hint = f"; the tag {ref.tag!r} names {index_digest}, which does not list this digest"
            return _amended(uncovered, hint), ()
        policies = [policy for policy, _ in uncovered]
        outcomes, notes = await self._policy_outcomes(
            index_ref.with_digest(index_digest), index_digest, policies, ask
        )
        via = f"image index {index_ref.name}@{index_digest} (tag {ref.tag}), which lists it"
        covered = {
            identity: replace(outcome, via=via)
            for identity, outcome in outcomes.items()
            if outcome.satisfied
        }
        return covered, notes

    async def _compute(
        self,
        ref: ImageReference,
        digest: Digest,
        policies: Sequence[CompiledPolicy],
        ask: _Question,
        trusted_root: TrustedRoot | None,
    ) -> _Computed:
        self.verifications += 1
        trace = ask.trace
        repositories = sorted({p.signature_repository or ref.name for p in policies})
        wants_attestations = {
            p.signature_repository or ref.name for p in policies if p.attestations
        }
        found = await asyncio.gather(
            *(
                self._discover(repository, digest, ask, repository in wants_attestations)
                for repository in repositories
            ),
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
        notes: list[str] = []
        for result in discovered.values():
            if isinstance(result, Discovery):
                notes.extend(result.notes)
                notes.extend(f"could not read all signatures: {e}" for e in result.errors)
        computed: list[tuple[CompiledPolicy, PolicyOutcome, bool]] = []
        evaluations: dict[str, Evaluation] = {}
        for policy in policies:
            repository = policy.signature_repository or ref.name
            result = discovered[repository]
            if isinstance(result, RegistryError):
                reason = (
                    f"TrustPolicy {policy.name!r}: cannot read signatures from {repository}: "
                    f"{result}; what to do: {registry_advice(result)}"
                )
                computed.append(
                    (policy, PolicyOutcome(policy.name, policy.mode, False, reason=reason), False)
                )
                continue
            evaluation = evaluate_policy(
                policy,
                digest=digest,
                discoveries=[result],
                prepared=prepared[repository],
                trusted_root=trusted_root,
                now=ask.now,
                repository=ref.name,
            )
            evaluations[policy.identity] = evaluation
            outcome = evaluation.outcome
            # An unsatisfied verdict reached while part of the registry failed is not a fact about
            # the image, only about that moment: never cache it.
            cacheable = outcome.satisfied or not result.errors
            computed.append((policy, outcome, cacheable))
        if trace is not None:
            findings = tuple(
                RepositoryFindings(repository, result, tuple(prepared[repository]))
                if isinstance(result, Discovery)
                else RepositoryFindings(repository, None, error=result)
                for repository, result in discovered.items()
            )
            trace.computations.append(Computation(ref.name, digest, findings, evaluations))
        return _Computed(tuple(computed), tuple(notes))

    async def _discover(
        self,
        repository: str,
        digest: Digest,
        ask: _Question,
        attestations: bool,
    ) -> Discovery:
        repo = parse_reference(repository)
        return await discover_signatures(
            self.client,
            repo,
            digest,
            ask.deadline,
            limits=self.settings.discovery,
            credentials=ask.credentials,
            attestations=attestations,
        )


T = TypeVar("T")


def _work_deadline(deadline: Deadline) -> Deadline:
    return Deadline(max(deadline.at, asyncio.get_running_loop().time() + WORK_SECONDS))


async def _until(deadline: Deadline, work: Awaitable[T], what: str) -> T:
    try:
        async with asyncio.timeout_at(deadline.at):
            return await work
    except TimeoutError as exc:
        raise DeadlineExceededError(f"deadline exceeded {what}") from exc


OutcomeKey = tuple[str, Digest, str, str, int]
"""(policy identity, digest, where the signatures were read, image repository if judged, trusted
root generation)."""


def _fixed_outcome(
    policy: CompiledPolicy, ref: ImageReference, digest: Digest
) -> PolicyOutcome | None:
    """A policy's verdict when no signature can change it (a broken policy, a tag where a digest
    is required); None when the signatures decide."""
    if policy.error is not None:
        return PolicyOutcome(policy.name, policy.mode, False, reason=broken_reason(policy))
    if policy.require_digest and ref.digest is None:
        reason = (
            f"TrustPolicy {policy.name!r} requires images by digest: write "
            f"{ref.name}@{digest} instead of the tag {ref.tag!r}"
        )
        return PolicyOutcome(policy.name, policy.mode, False, reason=reason)
    return None


def _amended(
    outcomes: Sequence[tuple[CompiledPolicy, PolicyOutcome]], hint: str
) -> dict[str, PolicyOutcome]:
    """The policies' verdicts with ``hint`` added to their reasons."""
    return {
        policy.identity: replace(outcome, reason=outcome.reason + hint)
        for policy, outcome in outcomes
    }
