"""Many signed images, cheaply, for ``bench/perf.py``'s memory measurement (10,000 digests).

Every image of a repository shares one config and one layer blob; what makes each manifest (and
so its digest) distinct is one annotation. Each is signed in cosign's legacy ``.sig`` format, as
``support.signer.sign_legacy`` writes a first signature (a simple-signing payload layer, ggcr's
appended config, the manifest under ``sha256-<hex>.sig``), but without its read-before-append
round trips (distribution 2.8 has no single-request upload: each blob is a ``POST`` and a
``PUT``). That is 6 registry requests per signed image, sent with ``concurrency`` in flight.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import os
import tarfile
import time
from collections.abc import Callable
from urllib.parse import urljoin

from support.formats import (
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    Layer,
    PrivateKey,
    append_to_config,
    image_manifest,
    sign_bytes,
    signature_tag,
    simple_signing_payload,
)
from support.push import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Pusher, descriptor, go_json
from support.push import sha256_digest as digest_of


async def _post_blob(pusher: Pusher, repo: str, data: bytes) -> str:
    """Upload ``data`` in two requests (``POST``, then ``PUT <location>?digest=``), unchecked."""
    digest = digest_of(data)
    _, headers, _ = await pusher.request(
        "POST", f"/v2/{repo}/blobs/uploads/", repo=repo, expected=(202,)
    )
    location = urljoin(pusher.base_url + "/", headers["Location"])
    separator = "&" if "?" in location else "?"
    await pusher.request(
        "PUT",
        f"{location}{separator}digest={digest}",
        repo=repo,
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        expected=(201,),
    )
    return digest


def _tar(data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("random.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


async def push_signed_images(
    pusher: Pusher,
    key: PrivateKey,
    *,
    repositories: list[str],
    per_repository: int,
    concurrency: int = 32,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, str]]:
    """Push ``per_repository`` legacy-signed images to each repository: ``[(repo, digest)]``."""
    gate = asyncio.Semaphore(concurrency)
    layer_tar = _tar(os.urandom(256))
    layer = gzip.compress(layer_tar, mtime=0)
    config = go_json(
        {
            "architecture": "amd64",
            "created": "1970-01-01T00:00:00Z",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer_tar)]},
            "config": {},
        }
    )
    done = 0
    last_report = time.monotonic()

    async def one(repo: str, number: int) -> tuple[str, str]:
        nonlocal done, last_report
        manifest = image_manifest(
            descriptor(OCI_CONFIG, config),
            [descriptor(OCI_LAYER_GZIP, layer)],
            media_type=OCI_MANIFEST,
            annotations={"dev.signgate.bench/image": f"{repo}#{number}"},  # distinct digests
        )
        digest = digest_of(manifest)
        payload = simple_signing_payload(f"{pusher.host}/{repo}", digest)
        signature = sign_bytes(key, payload)
        sig_layer = Layer(
            payload,
            SIMPLESIGNING_MEDIA_TYPE,
            {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
        )
        sig_config = append_to_config({}, sig_layer.digest)
        sig_manifest = image_manifest(
            descriptor(OCI_CONFIG, sig_config), [sig_layer.descriptor()], media_type=OCI_MANIFEST
        )
        async with gate:
            await pusher.push_manifest(repo, digest, manifest, OCI_MANIFEST)
            await _post_blob(pusher, repo, payload)
            await _post_blob(pusher, repo, sig_config)
            await pusher.push_manifest(repo, signature_tag(digest), sig_manifest, OCI_MANIFEST)
        done += 1
        if progress is not None and time.monotonic() - last_report > 5:
            last_report = time.monotonic()
            progress(done)
        return repo, digest

    for repo in repositories:  # the shared blobs, once per repository
        await _post_blob(pusher, repo, layer)
        await _post_blob(pusher, repo, config)
    return list(
        await asyncio.gather(
            *(one(repo, n) for repo in repositories for n in range(per_repository))
        )
    )
