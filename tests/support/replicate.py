"""Copy an image and everything attached to it from one registry to another, byte for byte.

What Harbor replication, ``oras copy -r`` or ``crane cp`` plus a referrers walk do: the image
manifest, its ``.sig``/``.att`` tags, and every OCI 1.1 referrer (found through the referrers API or
the ``sha256-<hex>`` fallback tag), each with its blobs. ``cosign copy`` cannot be used for bundle
referrers: v3.1.2 copies the *image* manifest under the fallback tag name instead of the index, and
``cosign save`` leaves bundles out.
"""

from __future__ import annotations

import json
from typing import Any

from support.push import OCI_INDEX, Pusher


async def _copy_one(
    source: Pusher, destination: Pusher, src_repo: str, dst_repo: str, ref: str, dst_ref: str
) -> dict[str, Any] | None:
    fetched = await source.find_manifest(src_repo, ref)
    if fetched is None:
        return None
    doc: dict[str, Any] = fetched.json()
    for desc in [doc.get("config"), *doc.get("layers", [])]:
        if desc and not await destination.blob_exists(dst_repo, desc["digest"]):
            await destination.push_blob(dst_repo, await source.get_blob(src_repo, desc["digest"]))
    await destination.push_manifest(dst_repo, dst_ref, fetched.body, fetched.media_type)
    return doc


async def _referrers(source: Pusher, repo: str, digest: str) -> list[str]:
    if await source.referrers_api_supported(repo, digest):
        _, _, body = await source.request(
            "GET",
            f"/v2/{repo}/referrers/{digest}",
            repo=repo,
            headers={"Accept": OCI_INDEX},
            expected=(200,),
        )
        return [d["digest"] for d in json.loads(body).get("manifests", [])]
    fallback = await source.find_manifest(repo, digest.replace(":", "-", 1))
    if fallback is None:
        return []
    return [d["digest"] for d in fallback.json().get("manifests", [])]


async def replicate(
    source: Pusher, destination: Pusher, src_repo: str, dst_repo: str, digest: str, tag: str
) -> None:
    """Copy ``src_repo@digest`` (a single-platform image) and its signatures to ``dst_repo:tag``.

    On a destination without the referrers API, the fallback tag is copied too (as replication
    tools do); with the API, the registry indexes the referrers by their ``subject`` itself.
    """
    await _copy_one(source, destination, src_repo, dst_repo, digest, tag)
    stem = digest.replace(":", "-", 1)
    for suffix in (".sig", ".att"):
        await _copy_one(source, destination, src_repo, dst_repo, stem + suffix, stem + suffix)
    for referrer in await _referrers(source, src_repo, digest):
        await _copy_one(source, destination, src_repo, dst_repo, referrer, referrer)
    if not await destination.referrers_api_supported(dst_repo, digest):
        await _copy_one(source, destination, src_repo, dst_repo, stem, stem)
