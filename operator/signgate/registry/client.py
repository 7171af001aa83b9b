"""The OCI distribution API operations signgate needs: resolve, manifests, blobs, referrers.

Everything fetched by digest is checked against that digest before anyone reads it; everything has
a size cap; every call takes the operation's one `Deadline`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

from signgate.deadline import Deadline
from signgate.errors import (
    DigestMismatchError,
    InvalidReferenceError,
    MalformedResponseError,
    NotFoundError,
    RegistryHTTPError,
)
from signgate.reference import Digest, ImageReference, parse_digest
from signgate.registry._http import RegistryOptions, Response, RoundTrip, error_detail
from signgate.registry._transport import Transport
from signgate.registry.auth import CredentialStore
from signgate.registry.oci import (
    ALL_MANIFEST_MEDIA_TYPES,
    INDEX_MEDIA_TYPES,
    OCI_INDEX,
    Descriptor,
    media_type_of,
    parse_index,
)

NO_API_SECONDS = 300.0
"""How long a registry that has no referrers API is not asked again."""
MAX_REMEMBERED_HOSTS = 1024


def _no_such_route(response: Response) -> bool:
    """Whether an answer to a referrers request says the *registry* has no such endpoint.

    A registry with the API answers a 404 for a repository it does not know (or hides) with an
    OCI error document (``NAME_UNKNOWN``, ``DENIED``…): that says nothing about the registry, and
    remembering it would let anyone who names a missing repository switch the API off for the
    whole host. A registry without the API answers like any web server for an unknown path.
    """
    if response.status not in (404, 405):
        return False
    try:
        doc = json.loads(response.body)
    except ValueError:
        return True
    return not (isinstance(doc, dict) and isinstance(doc.get("errors"), list))


_LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    """A manifest or index exactly as served, with its verified digest."""

    digest: Digest
    media_type: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Referrers:
    """What points at a digest, and where we learned it (the OCI 1.1 API or the fallback tag)."""

    descriptors: tuple[Descriptor, ...]
    source: Literal["api", "tag", "none"]


def fallback_tag(digest: Digest) -> str:
    """The OCI 1.1 referrers fallback tag, ``sha256-<hex>``."""
    return digest.replace(":", "-", 1)


def _check_digest(expected: Digest, body: bytes, what: str) -> None:
    actual = "sha256:" + hashlib.sha256(body).hexdigest()
    if actual != expected:
        raise DigestMismatchError(
            f"{what}: registry returned content with digest {actual}, not the requested {expected}"
        )


class RegistryClient:
    """Async, read-only OCI registry client. One per process; safe for concurrent use."""

    def __init__(
        self,
        options: RegistryOptions | None = None,
        *,
        round_trip: RoundTrip | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``round_trip`` replaces the network (an in-memory registry in unit tests);
        ``monotonic`` and ``sleep`` the clock and the pause between retries (virtual time)."""
        self.options = options or RegistryOptions()
        self._transport = Transport(self.options, round_trip=round_trip, sleep=sleep)
        self._monotonic = monotonic
        self._no_referrers_api: dict[str, float] = {}
        """Hosts whose referrers API answered "not supported", until when (monotonic time)."""

    @property
    def responses(self) -> Mapping[str, int]:
        """Registry answers by HTTP status, and "error" for requests that got none."""
        return self._transport.responses

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, token requests included."""
        return self._transport.requests_sent

    async def close(self) -> None:
        """Release connections."""
        await self._transport.close()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _get(
        self,
        repo: ImageReference,
        path: str,
        deadline: Deadline,
        *,
        accept: tuple[str, ...] = (),
        max_bytes: int,
        method: str = "GET",
        credentials: CredentialStore | None = None,
    ) -> Response:
        return await self._transport.request(
            method,
            repo.api_host,
            repo.repository,
            path,
            deadline=deadline,
            accept=accept,
            max_bytes=max_bytes,
            credentials=credentials,
        )

    async def resolve_digest(
        self, ref: ImageReference, deadline: Deadline, *, credentials: CredentialStore | None = None
    ) -> Digest:
        """The digest ``ref`` names: its own digest, or what its tag points at right now.

        HEAD first (free on Docker Hub's rate limit), GET when HEAD gives no usable digest.

        Raises:
            NotFoundError: the tag does not exist.
            RegistryError: any other failure to learn the digest.
        """
        if ref.digest is not None:
            return ref.digest
        assert ref.tag is not None
        path = f"{ref.repository}/manifests/{ref.tag}"
        limit = self.options.limits.max_manifest_bytes
        head = await self._get(
            ref,
            path,
            deadline,
            accept=ALL_MANIFEST_MEDIA_TYPES,
            max_bytes=limit,
            method="HEAD",
            credentials=credentials,
        )
        if head.status == 404:
            raise NotFoundError(f"{ref}: tag {ref.tag!r} not found in {ref.name}")
        header = head.headers.get("Docker-Content-Digest")
        if head.status == 200 and header:
            try:
                return parse_digest(header)
            except InvalidReferenceError:
                pass  # a digest we cannot use; fall back to GET and hash it ourselves
        got = await self._get(
            ref,
            path,
            deadline,
            accept=ALL_MANIFEST_MEDIA_TYPES,
            max_bytes=limit,
            credentials=credentials,
        )
        if got.status == 404:
            raise NotFoundError(f"{ref}: tag {ref.tag!r} not found in {ref.name}")
        if got.status != 200:
            raise RegistryHTTPError(got.url, got.status, error_detail(got.body))
        digest = Digest("sha256:" + hashlib.sha256(got.body).hexdigest())
        claimed = got.headers.get("Docker-Content-Digest")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise DigestMismatchError(
                f"{ref}: registry claims digest {claimed} but served content with digest {digest}"
            )
        return digest

    async def fetch_manifest(
        self,
        repo: ImageReference,
        reference: Digest | str,
        deadline: Deadline,
        *,
        accept: tuple[str, ...] = ALL_MANIFEST_MEDIA_TYPES,
        credentials: CredentialStore | None = None,
    ) -> FetchedManifest | None:
        """GET a manifest by digest or tag; None on 404.

        By digest, the bytes are checked against it. By tag, the digest is computed from the bytes.

        Raises:
            DigestMismatchError: the bytes do not hash to the requested digest.
            RegistryError: any failure other than "not found".
        """
        path = f"{repo.repository}/manifests/{reference}"
        response = await self._get(
            repo,
            path,
            deadline,
            accept=accept,
            max_bytes=self.options.limits.max_manifest_bytes,
            credentials=credentials,
        )
        if response.status == 404:
            return None
        if response.status != 200:
            raise RegistryHTTPError(response.url, response.status, error_detail(response.body))
        what = (
            f"{repo.name}@{reference}"
            if reference.startswith("sha256:")
            else f"{repo.name}:{reference}"
        )
        if reference.startswith("sha256:"):
            _check_digest(Digest(reference), response.body, what)
            digest = Digest(reference)
        else:
            digest = Digest("sha256:" + hashlib.sha256(response.body).hexdigest())
        media_type = media_type_of(response.body) or response.headers.get("Content-Type") or ""
        return FetchedManifest(digest, media_type.split(";")[0].strip(), response.body)

    async def fetch_blob(
        self,
        repo: ImageReference,
        digest: Digest,
        deadline: Deadline,
        *,
        max_bytes: int | None = None,
        credentials: CredentialStore | None = None,
    ) -> bytes:
        """GET a blob by digest and check it hashes to that digest.

        Raises:
            NotFoundError: the blob does not exist.
            DigestMismatchError, ResponseTooLargeError, RegistryError.
        """
        limit = max_bytes if max_bytes is not None else self.options.limits.max_blob_bytes
        response = await self._get(
            repo,
            f"{repo.repository}/blobs/{digest}",
            deadline,
            max_bytes=limit,
            credentials=credentials,
        )
        if response.status == 404:
            raise NotFoundError(f"blob {digest} not found in {repo.name}")
        if response.status != 200:
            raise RegistryHTTPError(response.url, response.status, error_detail(response.body))
        _check_digest(digest, response.body, f"blob {repo.name}@{digest}")
        return response.body

    async def list_referrers(
        self,
        repo: ImageReference,
        digest: Digest,
        deadline: Deadline,
        *,
        credentials: CredentialStore | None = None,
    ) -> Referrers:
        """Everything that names ``digest`` as its subject: OCI 1.1 API, else the fallback tag.

        The caller must still fetch and inspect each referrer: neither source is authenticated, and
        old ggcr wrote the wrong ``artifactType`` into fallback indexes.

        Raises:
            MalformedResponseError: an index that does not parse, or too many entries or pages.
            RegistryError: any failure other than "the registry has no referrers API".
        """
        limits = self.options.limits
        # A registry without the API answers so for every image: after one such answer, go
        # straight to the fallback tag for a while (a request saved per cold image), then ask
        # again in case the registry was upgraded.
        if self._no_referrers_api.get(repo.api_host, 0.0) > self._monotonic():
            return await self._referrers_from_tag(repo, digest, deadline, credentials)
        url: str = f"{repo.repository}/referrers/{digest}"
        found: list[Descriptor] = []
        first = True
        for _page in range(limits.max_referrer_pages):
            response = await self._get(
                repo,
                url,
                deadline,
                accept=(OCI_INDEX,),
                max_bytes=limits.max_manifest_bytes,
                credentials=credentials,
            )
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            if response.status != 200 or content_type != OCI_INDEX:
                if first and response.status in (200, 400, 404, 405, 406):
                    if _no_such_route(response):
                        self._remember_no_api(repo.api_host)
                    return await self._referrers_from_tag(repo, digest, deadline, credentials)
                raise RegistryHTTPError(response.url, response.status, error_detail(response.body))
            first = False
            index = parse_index(
                response.body,
                f"referrers of {repo.name}@{digest}",
                max_manifests=limits.max_referrers,
            )
            found.extend(index.manifests)
            if len(found) > limits.max_referrers:
                raise MalformedResponseError(
                    f"{repo.name}@{digest} has more than {limits.max_referrers} referrers"
                )
            next_url = self._next_link(response)
            if next_url is None:
                return Referrers(tuple(found), "api")
            url = next_url
        raise MalformedResponseError(
            f"referrers of {repo.name}@{digest} span more than {limits.max_referrer_pages} pages"
        )

    def _remember_no_api(self, host: str) -> None:
        now = self._monotonic()
        if len(self._no_referrers_api) >= MAX_REMEMBERED_HOSTS:
            self._no_referrers_api = {h: t for h, t in self._no_referrers_api.items() if t > now}
            if len(self._no_referrers_api) >= MAX_REMEMBERED_HOSTS:
                return
        self._no_referrers_api[host] = now + NO_API_SECONDS

    @staticmethod
    def _next_link(response: Response) -> str | None:
        headers: list[str] = response.headers.getall("Link", [])
        for header in headers:
            match = _LINK_NEXT.search(header)
            if match:
                target: str = urljoin(response.url, match.group(1))
                here, there = urlsplit(response.url), urlsplit(target)
                if (here.scheme, here.netloc) != (there.scheme, there.netloc):
                    raise MalformedResponseError(
                        f"referrers pagination points to another host ({there.netloc})"
                    )
                return target
        return None

    async def _referrers_from_tag(
        self,
        repo: ImageReference,
        digest: Digest,
        deadline: Deadline,
        credentials: CredentialStore | None,
    ) -> Referrers:
        fetched = await self.fetch_manifest(
            repo, fallback_tag(digest), deadline, accept=INDEX_MEDIA_TYPES, credentials=credentials
        )
        if fetched is None:
            return Referrers((), "none")
        index = parse_index(
            fetched.raw,
            f"referrers tag {repo.name}:{fallback_tag(digest)}",
            max_manifests=self.options.limits.max_referrers,
        )
        return Referrers(index.manifests, "tag")
