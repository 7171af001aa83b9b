"""A small registry writer for tests (aiohttp), using only the registry's normal HTTP API.

Blobs go up with ``POST /v2/<name>/blobs/uploads/`` then ``PUT <location>?digest=…`` (monolithic);
manifests with ``PUT /v2/<name>/manifests/<tag or digest>``. Authentication follows whatever the
registry asks for on ``GET /v2/``: none, Basic, or the Bearer token flow (scope
``repository:<name>:pull,push,delete``, with Basic credentials at the realm when configured).

Use it as an async context manager (the aiohttp session belongs to the running loop)::

    async with Pusher.for_registry(registry) as pusher:
        digest = await pusher.push_random_image("team/app", "v1")

From sync code (fixtures), wrap a coroutine with :func:`run_sync`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin

import aiohttp

from support.tls import client_ssl_context

if TYPE_CHECKING:
    from support.registry import RegistryServer

T = TypeVar("T")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
#: What to send as ``Accept`` when fetching any manifest (distribution 2.8 hides OCI manifests
#: from clients that do not list the OCI types).
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
#: The OCI empty JSON blob ``{}``.
EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def go_json(obj: Any) -> bytes:
    """Serialize like Go's ``json.Marshal``: compact, UTF-8, ``<``/``>``/``&`` escaped.

    Dicts are emitted in insertion order; build struct-shaped dicts in Go's field order and sort
    map-shaped dicts (annotations) yourself, as Go sorts map keys.
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode()


def descriptor(
    media_type: str,
    data: bytes,
    *,
    annotations: Mapping[str, str] | None = None,
    artifact_type: str | None = None,
    platform: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An OCI descriptor for ``data`` in ggcr's field order (mediaType, size, digest, …)."""
    return go_descriptor(
        {
            "mediaType": media_type,
            "size": len(data),
            "digest": sha256_digest(data),
            "annotations": dict(annotations) if annotations else None,
            "platform": dict(platform) if platform else None,
            "artifactType": artifact_type,
        }
    )


_DESCRIPTOR_FIELDS = ("mediaType", "size", "digest", "data", "urls", "annotations", "platform")


def go_descriptor(desc: Mapping[str, Any]) -> dict[str, Any]:
    """Re-emit a descriptor the way ggcr's ``v1.Descriptor`` marshals it.

    Known fields in struct order, empty optionals dropped, annotation keys sorted, unknown fields
    dropped (ggcr decodes into a struct and re-encodes).
    """
    out: dict[str, Any] = {}
    for name in (*_DESCRIPTOR_FIELDS, "artifactType"):
        value = desc.get(name)
        if name in ("mediaType", "size", "digest"):
            out[name] = value if value is not None else ("" if name != "size" else 0)
        elif value:
            out[name] = dict(sorted(value.items())) if name == "annotations" else value
    return out


@dataclass(frozen=True, slots=True)
class Fetched:
    """A manifest or blob as the registry served it."""

    body: bytes
    media_type: str
    digest: str
    """``Docker-Content-Digest`` if sent, else sha256 of the body."""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class RegistryHTTPError(Exception):
    """The registry answered with an unexpected status."""

    def __init__(self, method: str, url: str, status: int, body: bytes) -> None:
        self.method, self.url, self.status, self.body = method, url, status, body
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:256]!r}")


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class Pusher:
    """Authenticated read/write access to one registry, for building test fixtures.

    Attributes:
        token_requests: how many tokens this pusher fetched (Bearer registries only).
    """

    def __init__(
        self,
        base_url: str,
        *,
        ca_file: Path | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Point at a registry; nothing is sent until the first call.

        Args:
            base_url: ``http(s)://127.0.0.1:PORT``.
            ca_file: CA PEM to trust for HTTPS.
            username: Basic credentials (for the registry or its token realm).
            password: the password for ``username``.
            timeout: total seconds per HTTP request.
        """
        self.base_url = base_url.rstrip("/")
        self._ssl = client_ssl_context(ca_file)
        self._basic = (
            aiohttp.encode_basic_auth(username, password or "") if username is not None else None
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[str, str] = {}
        self.token_requests = 0

    @classmethod
    def for_registry(cls, registry: RegistryServer, *, authenticated: bool = True) -> Pusher:
        """A pusher with the registry's URL, CA and (unless ``authenticated=False``) account."""
        return cls(
            registry.url,
            ca_file=registry.ca_file,
            username=registry.username if authenticated else None,
            password=registry.password if authenticated else None,
        )

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of references (and of docker-reference)."""
        return self.base_url.split("://", 1)[1]

    async def __aenter__(self) -> Pusher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    # -- auth ----------------------------------------------------------------------------------

    async def _discover_challenge(self) -> tuple[str, dict[str, str]]:
        if self._challenge is None:
            async with self._http().get(f"{self.base_url}/v2/") as resp:
                await resp.read()
                header = resp.headers.get("WWW-Authenticate", "") if resp.status == 401 else ""
            scheme, _, params = header.partition(" ")
            self._challenge = (scheme.lower(), dict(_CHALLENGE_PARAM.findall(params)))
        return self._challenge

    async def _authorization(self, repo: str | None, *, refresh: bool = False) -> str | None:
        scheme, params = await self._discover_challenge()
        if scheme == "basic":
            return self._basic
        if scheme != "bearer":
            return None
        scope = f"repository:{repo}:pull,push,delete" if repo else ""
        if refresh or scope not in self._tokens:
            query = {"service": params.get("service", "")}
            if scope:
                query["scope"] = scope
            headers = {"Authorization": self._basic} if self._basic is not None else {}
            async with self._http().get(params["realm"], params=query, headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RegistryHTTPError("GET", params["realm"], resp.status, body)
            self.token_requests += 1
            answer = json.loads(body)
            self._tokens[scope] = answer.get("token") or answer["access_token"]
        return f"Bearer {self._tokens[scope]}"

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        repo: str | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        expected: Iterable[int] = (200,),
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one authenticated request and return ``(status, headers, body)``.

        Args:
            method: HTTP method.
            path_or_url: ``/v2/…`` path or an absolute URL (e.g. an upload ``Location``).
            repo: repository the request is about (selects the Bearer token scope).
            data: request body.
            headers: extra headers.
            expected: statuses that are not errors.

        Raises:
            RegistryHTTPError: the status is not in ``expected``.
        """
        url = urljoin(self.base_url + "/", path_or_url)
        expected = tuple(expected)
        for attempt in range(2):
            send = dict(headers or {})
            authorization = await self._authorization(repo, refresh=attempt > 0)
            if authorization is not None:
                send["Authorization"] = authorization
            async with self._http().request(method, url, data=data, headers=send) as resp:
                body = await resp.read()
                status, resp_headers = resp.status, resp.headers
            if (
                status == 401
                and attempt == 0
                and self._challenge
                and self._challenge[0] == "bearer"
            ):
                continue  # token expired or scope changed: fetch a fresh one once
            break
        if status not in expected:
            raise RegistryHTTPError(method, url, status, body)
        return status, resp_headers, body

    # -- blobs ---------------------------------------------------------------------------------

    async def blob_exists(self, repo: str, digest: str) -> bool:
        """``HEAD /v2/<repo>/blobs/<digest>`` is 200."""
        status, _, _ = await self.request(
            "HEAD", f"/v2/{repo}/blobs/{digest}", repo=repo, expected=(200, 404)
        )
        return status == 200

    async def push_blob(self, repo: str, data: bytes) -> str:
        """Upload ``data`` (skipped if already present) and return its digest."""
        digest = sha256_digest(data)
        if await self.blob_exists(repo, digest):
            return digest
        _, headers, _ = await self.request(
            "POST", f"/v2/{repo}/blobs/uploads/", repo=repo, expected=(202,)
        )
        location = urljoin(self.base_url + "/", headers["Location"])
        separator = "&" if "?" in location else "?"
        _, headers, _ = await self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            repo=repo,
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            expected=(201,),
        )
        if headers.get("Docker-Content-Digest", digest) != digest:
            raise AssertionError(f"registry stored blob as {headers['Docker-Content-Digest']}")
        return digest

    async def get_blob(self, repo: str, digest: str) -> bytes:
        """Download a blob."""
        _, _, body = await self.request("GET", f"/v2/{repo}/blobs/{digest}", repo=repo)
        return body

    # -- manifests -----------------------------------------------------------------------------

    async def push_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        """``PUT`` a manifest or index by tag or digest; return its digest."""
        digest = sha256_digest(body)
        _, headers, _ = await self.request(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            repo=repo,
            data=body,
            headers={"Content-Type": media_type},
            expected=(201,),
        )
        if headers.get("Docker-Content-Digest", digest) != digest:
            raise AssertionError(f"registry stored manifest as {headers['Docker-Content-Digest']}")
        return digest

    async def find_manifest(
        self, repo: str, ref: str, *, accept: str = MANIFEST_ACCEPT
    ) -> Fetched | None:
        """``GET`` a manifest by tag or digest, or None on 404."""
        status, headers, body = await self.request(
            "GET",
            f"/v2/{repo}/manifests/{ref}",
            repo=repo,
            headers={"Accept": accept},
            expected=(200, 404),
        )
        if status == 404:
            return None
        return Fetched(
            body=body,
            media_type=headers.get("Content-Type", "").split(";")[0].strip(),
            digest=headers.get("Docker-Content-Digest", sha256_digest(body)),
        )

    async def get_manifest(self, repo: str, ref: str, *, accept: str = MANIFEST_ACCEPT) -> Fetched:
        """``GET`` a manifest by tag or digest.

        Raises:
            RegistryHTTPError: it does not exist (404) or another error.
        """
        found = await self.find_manifest(repo, ref, accept=accept)
        if found is None:
            raise RegistryHTTPError("GET", f"{self.base_url}/v2/{repo}/manifests/{ref}", 404, b"")
        return found

    async def head_descriptor(self, repo: str, ref: str) -> dict[str, Any] | None:
        """``HEAD`` a manifest: ``{mediaType, size, digest}`` (a subject descriptor) or None."""
        status, headers, _ = await self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{ref}",
            repo=repo,
            headers={"Accept": MANIFEST_ACCEPT},
            expected=(200, 404),
        )
        if status == 404:
            return None
        return {
            "mediaType": headers["Content-Type"].split(";")[0].strip(),
            "size": int(headers["Content-Length"]),
            "digest": headers["Docker-Content-Digest"],
        }

    async def delete_manifest(self, repo: str, digest: str) -> None:
        """``DELETE`` a manifest by digest (distribution 2.8 cannot delete by tag)."""
        await self.request("DELETE", f"/v2/{repo}/manifests/{digest}", repo=repo, expected=(202,))

    async def list_tags(self, repo: str) -> list[str]:
        """Tags of a repository (empty if the repository does not exist)."""
        status, _, body = await self.request(
            "GET", f"/v2/{repo}/tags/list", repo=repo, expected=(200, 404)
        )
        return [] if status == 404 else list(json.loads(body).get("tags") or [])

    async def referrers_api_supported(self, repo: str, digest: str) -> bool:
        """Whether ``GET /v2/<repo>/referrers/<digest>`` answers 200 (never on distribution 2.8)."""
        status, _, _ = await self.request(
            "GET",
            f"/v2/{repo}/referrers/{digest}",
            repo=repo,
            headers={"Accept": OCI_INDEX},
            expected=(200, 400, 404, 405, 406),
        )
        return status == 200

    async def copy_manifest(self, src_repo: str, src_ref: str, dst_repo: str, dst_ref: str) -> str:
        """Copy a manifest's exact bytes (and its config and layer blobs) to another place.

        Indexes are copied without their children, so the children must already exist in
        ``dst_repo``. Returns the digest (unchanged, since the bytes are identical).
        """
        fetched = await self.get_manifest(src_repo, src_ref)
        doc = fetched.json()
        if src_repo != dst_repo:
            for desc in [doc.get("config"), *doc.get("layers", [])]:
                if desc:
                    await self.push_blob(dst_repo, await self.get_blob(src_repo, desc["digest"]))
        return await self.push_manifest(dst_repo, dst_ref, fetched.body, fetched.media_type)

    # -- images --------------------------------------------------------------------------------

    async def push_random_image(
        self,
        repo: str,
        tag: str | None = None,
        *,
        docker_media_types: bool = False,
        platform: tuple[str, str] = ("linux", "amd64"),
        layer_size: int = 512,
    ) -> str:
        """Push a tiny image: a config and one gzipped tar layer with random content.

        Args:
            repo: repository name.
            tag: tag to push to; None pushes by digest only.
            docker_media_types: Docker schema 2 instead of OCI media types.
            platform: ``(os, architecture)`` written into the config.
            layer_size: bytes of random file content in the layer.

        Returns:
            The manifest digest.
        """
        layer_tar = _tar_with_file("random.bin", os.urandom(layer_size))
        layer = gzip.compress(layer_tar, mtime=0)
        config = go_json(
            {
                "architecture": platform[1],
                "created": "1970-01-01T00:00:00Z",
                "os": platform[0],
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar)]},
                "config": {},
            }
        )
        await self.push_blob(repo, layer)
        await self.push_blob(repo, config)
        media_type = DOCKER_MANIFEST if docker_media_types else OCI_MANIFEST
        manifest = go_json(
            {
                "schemaVersion": 2,
                "mediaType": media_type,
                "config": descriptor(DOCKER_CONFIG if docker_media_types else OCI_CONFIG, config),
                "layers": [
                    descriptor(DOCKER_LAYER_GZIP if docker_media_types else OCI_LAYER_GZIP, layer)
                ],
            }
        )
        ref = tag if tag is not None else sha256_digest(manifest)
        return await self.push_manifest(repo, ref, manifest, media_type)

    async def push_index(
        self,
        repo: str,
        tag: str | None,
        children: Iterable[str],
        *,
        docker_media_types: bool = False,
    ) -> str:
        """Push a multi-arch index over existing child manifests (platform read from their configs).

        Returns:
            The index digest.
        """
        entries = []
        for child in children:
            fetched = await self.get_manifest(repo, child)
            doc = fetched.json()
            config = json.loads(await self.get_blob(repo, doc["config"]["digest"]))
            entries.append(
                go_descriptor(
                    {
                        "mediaType": fetched.media_type,
                        "size": len(fetched.body),
                        "digest": fetched.digest,
                        "platform": {"architecture": config["architecture"], "os": config["os"]},
                    }
                )
            )
        media_type = DOCKER_MANIFEST_LIST if docker_media_types else OCI_INDEX
        index = go_json({"schemaVersion": 2, "mediaType": media_type, "manifests": entries})
        ref = tag if tag is not None else sha256_digest(index)
        return await self.push_manifest(repo, ref, index, media_type)

    async def push_multiarch_image(
        self,
        repo: str,
        tag: str | None,
        platforms: Iterable[tuple[str, str]] = (("linux", "amd64"), ("linux", "arm64")),
    ) -> tuple[str, list[str]]:
        """Push one random image per platform and an index over them: ``(index, children)``."""
        children = [await self.push_random_image(repo, platform=p) for p in platforms]
        return await self.push_index(repo, tag, children), children


def _tar_with_file(name: str, content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code (e.g. a sync fixture).

    Uses ``asyncio.run`` directly, or a worker thread when this thread already runs a loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
