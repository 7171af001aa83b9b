"""The in-memory registry (`support.memory_registry`) answers like the real ones.

The unit tests trust `MemoryRegistry` to behave like a registry; here it is held to that. The same
content (byte for byte: Ed25519 signatures are deterministic) goes into the fake and into a real
registry, and the same requests get the same answers from both, through the same `RoundTrip`
interface: CNCF distribution 2.8 (no referrers API) against the fake with the API off, and
go-containerregistry's registry (with the API) against the fake with it on. Only cases where both
real registries agree are compared (they differ on unknown repositories and on ``Accept``; see
the fake's docstring). The tests after those check what only the fake does.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from signgate.registry import Response
from signgate.registry._http import AiohttpRoundTrip, RoundTrip
from signgate.registry.client import _no_such_route
from support import signer
from support.formats import fallback_tag, generate_key
from support.memory_registry import MemoryRegistry
from support.push import (
    MANIFEST_ACCEPT,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Pusher,
    descriptor,
    go_json,
)
from support.registry import RegistryServer

REPO = "parity/app"
KEY = generate_key("ed25519")
CONFIG = go_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
LAYER = b"not really a tarball"
MANIFEST = go_json(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, CONFIG),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", LAYER)],
    }
)
ZERO = "sha256:" + "0" * 64


async def push_world(pusher: Pusher) -> dict[str, str]:
    """The same image, v3 signature and legacy signature, byte for byte, wherever it goes."""
    await pusher.push_blob(REPO, CONFIG)
    await pusher.push_blob(REPO, LAYER)
    digest = await pusher.push_manifest(REPO, "v1", MANIFEST, OCI_MANIFEST)
    bundle = await signer.sign_bundle_v3(pusher, REPO, digest, KEY, created="2026-01-01T00:00:00Z")
    await signer.sign_legacy(pusher, REPO, digest, KEY, docker_reference="parity.test/app")
    config = json.loads(MANIFEST)["config"]["digest"]
    return {"digest": digest, "referrer": bundle.manifest_digest, "config": config}


async def answer(round_trip: RoundTrip, method: str, url: str, accept: str) -> tuple[Any, ...]:
    """What a client can tell from an answer: status, media type, digest and content (parsed
    JSON), or an error's code; for a 404 also whether it says "no such route"."""
    response: Response = await round_trip(
        method,
        url,
        headers={"Accept": accept} if accept else {},
        tls=False,
        max_bytes=1 << 20,
        error_bytes=4096,
        max_redirects=0,
        on_status=lambda _: None,
    )
    if response.status >= 400:
        try:
            code = json.loads(response.body)["errors"][0]["code"]
        except (ValueError, KeyError, IndexError, TypeError):
            code = None
        return response.status, code, _no_such_route(response) if method == "GET" else None
    media_type = response.headers.get("Content-Type", "").split(";")[0]
    body: Any = response.body
    if "/blobs/" in url:
        return response.status, body  # (a blob's Content-Type varies: octet-stream, sniffed)
    if media_type.endswith("json") and body:
        body = json.loads(body)
        for entry in body.get("manifests", ()) if isinstance(body, dict) else ():
            # ggcr's referrers API lists config.mediaType as the artifactType (a quirk, see
            # support.registry); the fake lists the manifest's own, as the OCI spec says.
            if "/referrers/" in url:
                entry.pop("artifactType", None)
    digest = response.headers.get("Docker-Content-Digest") if "/manifests/" in url else None
    return response.status, media_type, digest, body


@pytest.mark.parametrize("any_registry", ["distribution", "referrers-api"], indirect=True)
async def test_the_memory_registry_answers_like_the_real_ones(
    any_registry: RegistryServer, any_pusher: Pusher
) -> None:
    real_world = await push_world(any_pusher)
    has_api = await any_pusher.referrers_api_supported(REPO, real_world["digest"])
    fake = MemoryRegistry(referrers_api=has_api)
    fake_world = await push_world(fake.pusher())
    assert fake_world == real_world
    digest, referrer, config = real_world["digest"], real_world["referrer"], real_world["config"]
    requests = [
        ("GET", f"{REPO}/manifests/v1", MANIFEST_ACCEPT),
        ("HEAD", f"{REPO}/manifests/v1", MANIFEST_ACCEPT),
        ("GET", f"{REPO}/manifests/{digest}", MANIFEST_ACCEPT),
        ("GET", f"{REPO}/manifests/{referrer}", MANIFEST_ACCEPT),
        ("GET", f"{REPO}/manifests/nope", MANIFEST_ACCEPT),
        ("GET", f"{REPO}/manifests/{fallback_tag(digest)}", OCI_INDEX),
        ("GET", f"{REPO}/blobs/{config}", ""),
        ("GET", f"{REPO}/blobs/{ZERO}", ""),
        ("GET", f"parity/none/blobs/{ZERO}", ""),
        ("GET", f"{REPO}/referrers/{digest}", OCI_INDEX),
        ("GET", f"{REPO}/referrers/{ZERO}", OCI_INDEX),
    ]
    real = AiohttpRoundTrip()
    try:
        for method, path, accept in requests:
            expected = await answer(real, method, f"{any_registry.url}/v2/{path}", accept)
            got = await answer(fake, method, f"https://{fake.host}/v2/{path}", accept)
            assert got == expected, f"{method} {path}"
    finally:
        await real.close()


# -- what only the fake does ---------------------------------------------------------------------


async def test_the_referrers_api_filters_by_artifact_type_and_says_so() -> None:
    fake = MemoryRegistry()
    world = await push_world(fake.pusher())
    url = f"https://{fake.host}/v2/{REPO}/referrers/{world['digest']}"
    bundle = "application/vnd.dev.sigstore.bundle.v0.3+json"

    async def listed(query: str) -> tuple[list[str], str | None]:
        response = await fake(
            "GET", url + query, headers={}, tls=True, max_bytes=1 << 20, error_bytes=None,
            max_redirects=0, on_status=lambda _: None,
        )  # fmt: skip
        digests = [d["digest"] for d in json.loads(response.body)["manifests"]]
        return digests, response.headers.get("OCI-Filters-Applied")

    assert await listed("") == ([world["referrer"]], None)
    assert await listed(f"?artifactType={quote(bundle)}") == ([world["referrer"]], "artifactType")
    assert await listed("?artifactType=application/spdx%2Bjson") == ([], "artifactType")


async def test_a_manifest_type_the_client_did_not_accept_is_unknown() -> None:
    fake = MemoryRegistry()
    await push_world(fake.pusher())
    statuses: list[int] = []
    for accept in (OCI_MANIFEST, OCI_INDEX, f"{OCI_INDEX}, */*"):
        response = await fake(
            "GET", f"https://{fake.host}/v2/{REPO}/manifests/v1", headers={"Accept": accept},
            tls=True, max_bytes=1 << 20, error_bytes=4096, max_redirects=0,
            on_status=statuses.append,
        )  # fmt: skip
        assert response.body == (MANIFEST if response.status == 200 else response.body)
    assert statuses == [200, 404, 200]


async def test_requests_are_recorded_and_pushes_are_not() -> None:
    fake = MemoryRegistry()
    await push_world(fake.pusher())
    assert fake.requests == []

    await fake(
        "HEAD", f"https://{fake.host}/v2/{REPO}/manifests/v1?x=1", headers={"Accept": OCI_MANIFEST},
        tls=True, max_bytes=1024, error_bytes=None, max_redirects=0, on_status=lambda _: None,
    )  # fmt: skip

    (request,) = fake.requests
    assert (request.method, request.host, request.path, request.query, request.status) == (
        "HEAD",
        fake.host,
        f"/v2/{REPO}/manifests/v1",
        {"x": "1"},
        200,
    )
    assert fake.count(r"/manifests/", method="HEAD") == 1
    assert fake.count(r"/blobs/") == 0
