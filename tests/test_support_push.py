"""Proof that the pusher writes images and indexes that every registry variant stores and serves."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from support.push import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Pusher,
    RegistryHTTPError,
    go_json,
    run_sync,
    sha256_digest,
)
from support.rawhttp import raw_get
from support.registry import RegistryServer

VARIANTS = ["registry", "registry_basic", "registry_token"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("docker_media_types", [False, True])
async def test_random_image_is_stored_with_its_config_and_layer(
    variant: str, docker_media_types: bool, request: pytest.FixtureRequest
) -> None:
    server: RegistryServer = request.getfixturevalue(variant)
    async with Pusher.for_registry(server) as pusher:
        digest = await pusher.push_random_image(
            "support/image", "v1", docker_media_types=docker_media_types
        )
    by_tag = await raw_get(server, "/v2/support/image/manifests/v1")
    assert by_tag.status == 200
    assert by_tag.headers["Docker-Content-Digest"] == digest
    assert sha256_digest(by_tag.body) == digest
    manifest = json.loads(by_tag.body)
    expected = (
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
        if docker_media_types
        else (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    )
    assert by_tag.headers["Content-Type"] == expected[0]
    assert manifest["mediaType"] == expected[0]
    assert manifest["config"]["mediaType"] == expected[1]
    assert [layer["mediaType"] for layer in manifest["layers"]] == [expected[2]]
    config = await raw_get(server, f"/v2/support/image/blobs/{manifest['config']['digest']}")
    layer = await raw_get(server, f"/v2/support/image/blobs/{manifest['layers'][0]['digest']}")
    assert sha256_digest(config.body) == manifest["config"]["digest"]
    assert len(layer.body) == manifest["layers"][0]["size"]
    # The layer is a real gzipped tar whose uncompressed digest is the config's diff ID.
    tar_bytes = gzip.decompress(layer.body)
    assert json.loads(config.body)["rootfs"]["diff_ids"] == [sha256_digest(tar_bytes)]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        assert tar.getnames() == ["random.bin"]


async def test_each_random_image_is_different(pusher: Pusher) -> None:
    first = await pusher.push_random_image("support/random")
    second = await pusher.push_random_image("support/random")
    assert first != second
    assert (await pusher.list_tags("support/random")) == []  # pushed by digest only


async def test_index_lists_children_with_their_platforms(
    pusher: Pusher, registry: RegistryServer
) -> None:
    index_digest, children = await pusher.push_multiarch_image(
        "support/multi", "latest", [("linux", "amd64"), ("linux", "arm64")]
    )
    answer = await raw_get(registry, "/v2/support/multi/manifests/latest")
    assert answer.headers["Content-Type"] == OCI_INDEX
    assert answer.headers["Docker-Content-Digest"] == index_digest
    index = json.loads(answer.body)
    assert [m["digest"] for m in index["manifests"]] == children
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    assert {m["mediaType"] for m in index["manifests"]} == {OCI_MANIFEST}


async def test_docker_manifest_list_over_docker_children(pusher: Pusher) -> None:
    child = await pusher.push_random_image("support/list", docker_media_types=True)
    digest = await pusher.push_index("support/list", "v1", [child], docker_media_types=True)
    fetched = await pusher.get_manifest("support/list", "v1")
    assert (fetched.media_type, fetched.digest) == (DOCKER_MANIFEST_LIST, digest)
    assert fetched.json()["manifests"][0]["mediaType"] == DOCKER_MANIFEST


async def test_manifest_round_trips_byte_for_byte_and_delete_removes_it(pusher: Pusher) -> None:
    await pusher.push_blob("support/raw", b"{}")
    body = go_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": 2, "digest": sha256_digest(b"{}")},
            "layers": [],
            "annotations": {"a": "<&>"},
        }
    )
    assert b"\\u003c\\u0026\\u003e" in body  # Go's HTML-safe escaping
    digest = await pusher.push_manifest("support/raw", "t", body, OCI_MANIFEST)
    assert (await pusher.get_manifest("support/raw", digest)).body == body
    assert (await pusher.head_descriptor("support/raw", "t")) == {
        "mediaType": OCI_MANIFEST,
        "size": len(body),
        "digest": digest,
    }
    await pusher.delete_manifest("support/raw", digest)
    assert await pusher.find_manifest("support/raw", "t") is None
    with pytest.raises(RegistryHTTPError) as err:
        await pusher.get_manifest("support/raw", digest)
    assert err.value.status == 404


async def test_blob_push_is_idempotent_and_content_addressed(pusher: Pusher) -> None:
    data = b"hello blob"
    assert await pusher.push_blob("support/blob", data) == sha256_digest(data)
    assert await pusher.push_blob("support/blob", data) == sha256_digest(data)
    assert await pusher.get_blob("support/blob", sha256_digest(data)) == data


async def test_unauthenticated_pusher_is_refused_by_basic_registry(
    registry_basic: RegistryServer,
) -> None:
    async with Pusher.for_registry(registry_basic, authenticated=False) as pusher:
        with pytest.raises(RegistryHTTPError) as err:
            await pusher.push_random_image("support/denied", "v1")
    assert err.value.status == 401


def test_run_sync_drives_the_pusher_from_sync_code(registry: RegistryServer) -> None:
    async def push() -> str:
        async with Pusher.for_registry(registry) as pusher:
            return await pusher.push_random_image("support/sync", "v1")

    digest = run_sync(push())
    assert digest.startswith("sha256:")


async def test_run_sync_also_works_inside_a_running_loop(registry: RegistryServer) -> None:
    async def push() -> str:
        async with Pusher.for_registry(registry) as pusher:
            return await pusher.push_random_image("support/sync", "v2")

    assert run_sync(push()).startswith("sha256:")
