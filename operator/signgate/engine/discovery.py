"""Find every cosign signature attached to a digest: the ``.sig`` tag and OCI 1.1 referrers.

This is the I/O half of signature handling; it produces `FoundSignature` values and decides
nothing. Both storage schemes are always consulted (an image may have been signed by cosign v2 and
again by v3, e.g. during a key rotation), concurrently, and a failure of one scheme is reported
without hiding what the other found.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from signgate.deadline import Deadline
from signgate.errors import DeadlineExceededError, MalformedResponseError, RegistryError
from signgate.reference import Digest, ImageReference
from signgate.registry import CredentialStore, RegistryClient
from signgate.registry.oci import (
    MANIFEST_MEDIA_TYPES,
    OCI_EMPTY,
    Descriptor,
    Manifest,
    parse_manifest,
)
from signgate.signatures.found import (
    ANNOTATION_SIGNATURE,
    BundleSignature,
    Discovery,
    FoundSignature,
    LegacySignature,
    SignatureFormat,
    UnusableSignature,
)
from signgate.signatures.simplesigning import SIMPLE_SIGNING_MEDIA_TYPE

COSIGN_SIG_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"
BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"


@dataclass(frozen=True, slots=True)
class DiscoveryLimits:
    """How much of a registry's word we are willing to read per image."""

    max_signatures: int = 32
    """Signature layers and referrers examined per image and signature repository."""
    max_concurrent_fetches: int = 8


DSSE_LAYER_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


def legacy_tag(digest: Digest, suffix: str = "sig") -> str:
    """cosign's tag for ``digest``: ``sha256-<hex>.sig`` (signatures), ``.att`` (attestations)."""
    return digest.replace(":", "-", 1) + "." + suffix


def _may_be_signature(descriptor: Descriptor) -> bool:
    # Skipping a referrer can only lose a signature, never admit an image, so it is safe to skip
    # what declares itself as something else (SBOMs, Notary, ...). Old ggcr wrote the config media
    # type (OCI_EMPTY for bundles) into the fallback index, and some registries omit it: keep those.
    kind = descriptor.artifact_type
    return (
        kind is None
        or kind in (COSIGN_SIG_ARTIFACT_TYPE, OCI_EMPTY)
        or kind.startswith(BUNDLE_MEDIA_TYPE_PREFIX)
    )


class _Fetcher:
    def __init__(
        self,
        client: RegistryClient,
        repo: ImageReference,
        digest: Digest,
        deadline: Deadline,
        limits: DiscoveryLimits,
        credentials: CredentialStore | None,
    ) -> None:
        self.credentials = credentials
        self.client = client
        self.repo = repo
        self.digest = digest
        self.deadline = deadline
        self.limits = limits
        self.notes: list[str] = []
        self._gate = asyncio.Semaphore(limits.max_concurrent_fetches)

    async def blob(self, descriptor: Descriptor, source: str) -> bytes | UnusableSignature:
        max_bytes = self.client.options.limits.max_blob_bytes
        if descriptor.size > max_bytes:
            return UnusableSignature(
                source, f"payload of {descriptor.size} bytes exceeds the {max_bytes}-byte limit"
            )
        try:
            async with self._gate:
                return await self.client.fetch_blob(
                    self.repo, descriptor.digest, self.deadline, credentials=self.credentials
                )
        except DeadlineExceededError:
            raise
        except RegistryError as exc:
            return UnusableSignature(source, f"cannot fetch payload: {exc}")

    async def layers(
        self, manifest: Manifest, source: str, fmt: SignatureFormat
    ) -> list[FoundSignature]:
        candidates: list[tuple[Descriptor, str]] = []
        found: list[FoundSignature] = []
        for number, layer in enumerate(manifest.layers, start=1):
            where = f"{source} layer {number}"
            if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE:
                if ANNOTATION_SIGNATURE in layer.annotations:
                    found.append(
                        UnusableSignature(
                            where,
                            f"layer of type {layer.media_type!r} carries a signature annotation "
                            "but "
                            "is not a cosign simple-signing payload",
                        )
                    )
                continue
            candidates.append((layer, where))
        if len(candidates) > self.limits.max_signatures:
            self.notes.append(
                f"{source} has {len(candidates)} signatures; examined the first "
                f"{self.limits.max_signatures}"
            )
            candidates = candidates[: self.limits.max_signatures]
        blobs = await asyncio.gather(*(self.blob(layer, where) for layer, where in candidates))
        for (layer, where), blob in zip(candidates, blobs, strict=True):
            if isinstance(blob, UnusableSignature):
                found.append(blob)
            else:
                found.append(LegacySignature(where, fmt, blob, dict(layer.annotations)))
        return found

    async def tagged_manifest(self, suffix: str) -> tuple[str, Manifest | UnusableSignature | None]:
        """cosign's ``sha256-<hex>.<suffix>`` manifest, if any, and where it came from."""
        tag = legacy_tag(self.digest, suffix)
        source = f"{self.repo.name}:{tag}"
        fetched = await self.client.fetch_manifest(
            self.repo, tag, self.deadline, accept=MANIFEST_MEDIA_TYPES, credentials=self.credentials
        )
        if fetched is None:
            return source, None
        try:
            manifest = parse_manifest(
                fetched.raw,
                fetched.digest,
                max_layers=self.client.options.limits.max_layers_per_manifest,
            )
        except MalformedResponseError as exc:
            return source, UnusableSignature(source, f"{suffix} manifest refused: {exc}")
        return source, manifest

    async def legacy_attestations(self) -> list[FoundSignature]:
        source, manifest = await self.tagged_manifest("att")
        if manifest is None or isinstance(manifest, UnusableSignature):
            return [manifest] if manifest is not None else []
        candidates = [
            (layer, f"{source} layer {number}")
            for number, layer in enumerate(manifest.layers, start=1)
            if layer.media_type == DSSE_LAYER_MEDIA_TYPE
        ]
        if len(candidates) > self.limits.max_signatures:
            self.notes.append(
                f"{source} has {len(candidates)} attestations; examined the first "
                f"{self.limits.max_signatures}"
            )
            candidates = candidates[: self.limits.max_signatures]
        blobs = await asyncio.gather(*(self.blob(layer, where) for layer, where in candidates))
        return [
            blob
            if isinstance(blob, UnusableSignature)
            else LegacySignature(
                where, SignatureFormat.LEGACY_ATTESTATION, blob, dict(layer.annotations)
            )
            for (layer, where), blob in zip(candidates, blobs, strict=True)
        ]

    async def legacy(self) -> list[FoundSignature]:
        source, manifest = await self.tagged_manifest("sig")
        if manifest is None or isinstance(manifest, UnusableSignature):
            return [manifest] if manifest is not None else []
        return await self.layers(manifest, source, SignatureFormat.LEGACY_TAG)

    async def referrer(self, descriptor: Descriptor) -> list[FoundSignature]:
        source = f"{self.repo.name}@{descriptor.digest} (referrer)"
        try:
            async with self._gate:
                fetched = await self.client.fetch_manifest(
                    self.repo,
                    descriptor.digest,
                    self.deadline,
                    accept=MANIFEST_MEDIA_TYPES,
                    credentials=self.credentials,
                )
        except DeadlineExceededError:
            raise
        except RegistryError as exc:
            return [UnusableSignature(source, f"cannot fetch referrer: {exc}")]
        if fetched is None:
            return []  # listed but gone: a stale fallback index, common after deletions
        try:
            manifest = parse_manifest(
                fetched.raw,
                fetched.digest,
                max_layers=self.client.options.limits.max_layers_per_manifest,
            )
        except MalformedResponseError:
            return []  # not an image manifest, so not a cosign signature
        if manifest.subject is None or manifest.subject.digest != self.digest:
            named = (
                "no subject" if manifest.subject is None else f"subject {manifest.subject.digest}"
            )
            return [UnusableSignature(source, f"referrer has {named}, not {self.digest}")]
        kind = manifest.artifact_type or manifest.config.media_type
        if kind == COSIGN_SIG_ARTIFACT_TYPE:
            return await self.layers(manifest, source, SignatureFormat.LEGACY_REFERRER)
        bundle_layers = [
            layer
            for layer in manifest.layers
            if layer.media_type.startswith(BUNDLE_MEDIA_TYPE_PREFIX)
        ]
        if not bundle_layers:
            return []  # an SBOM, a Notary signature, ...: not ours to judge
        if len(manifest.layers) != 1:
            return [UnusableSignature(source, "bundle referrer must have exactly one layer")]
        blob = await self.blob(bundle_layers[0], source)
        if isinstance(blob, UnusableSignature):
            return [blob]
        hint = manifest.annotations.get(BUNDLE_PREDICATE_ANNOTATION)
        return [BundleSignature(source, blob, hint)]

    async def referrers(self) -> list[FoundSignature]:
        listing = await self.client.list_referrers(
            self.repo, self.digest, self.deadline, credentials=self.credentials
        )
        if listing.source == "tag":
            self.notes.append(f"{self.repo.registry} has no referrers API; used the fallback tag")
        descriptors = [d for d in listing.descriptors if _may_be_signature(d)]
        if len(descriptors) > self.limits.max_signatures:
            self.notes.append(
                f"{len(descriptors)} referrers; examined the first {self.limits.max_signatures}"
            )
            descriptors = descriptors[: self.limits.max_signatures]
        results = await asyncio.gather(*(self.referrer(d) for d in descriptors))
        return [sig for found in results for sig in found]


async def discover_signatures(
    client: RegistryClient,
    repo: ImageReference,
    digest: Digest,
    deadline: Deadline,
    *,
    limits: DiscoveryLimits | None = None,
    credentials: CredentialStore | None = None,
    attestations: bool = False,
) -> Discovery:
    """Everything that may be a cosign signature of ``digest``, stored in ``repo``.

    Referrers include v3 attestations (bundles) anyway; ``attestations`` also reads the legacy
    ``.att`` tag, a request spent only when a policy asks for attestations.

    Raises:
        RegistryError: neither the ``.sig`` tag nor the referrers could be read (the first error),
            or the deadline passed.
    """
    fetcher = _Fetcher(client, repo, digest, deadline, limits or DiscoveryLimits(), credentials)
    schemes = [fetcher.legacy(), fetcher.referrers()]
    if attestations:
        schemes.append(fetcher.legacy_attestations())
    results = await asyncio.gather(*schemes, return_exceptions=True)
    signatures: list[FoundSignature] = []
    errors: list[RegistryError] = []
    for result in results:
        if isinstance(result, RegistryError):
            errors.append(result)
        elif isinstance(result, BaseException):
            raise result  # cancellation, or a bug: the caller denies with "internal error"
        else:
            signatures.extend(result)
    if len(errors) == len(results):
        raise errors[0]
    return Discovery(repo.name, tuple(signatures), tuple(fetcher.notes), tuple(map(str, errors)))
