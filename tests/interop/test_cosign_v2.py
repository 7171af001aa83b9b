"""The real cosign v2.6.5 signs (legacy ``.sig`` tag, and ``--registry-referrers-mode=oci-1-1``);
signgate verifies, and agrees with ``cosign verify``. Nothing leaves the machine
(``--tlog-upload=false``).

Each case runs against distribution (no referrers API: ``oci-1-1`` mode writes the ``sha256-<hex>``
fallback index) and against go-containerregistry's registry with the OCI 1.1 referrers API
(``referrers-api``: no fallback tag, so the referrer is found through the API, by both)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from pathlib import Path

import pytest

from support import cli
from support.cli import signgate_verify
from support.formats import fallback_tag
from support.push import Pusher
from support.registry import RegistryServer

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign


def cosign2(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cli.run_cosign("v2.6.5", home, *args, check=check)


@pytest.mark.parametrize(
    ("sign_extra", "verify_extra", "fmt"),
    [
        ((), (), "cosign .sig tag"),
        (
            ("--registry-referrers-mode=oci-1-1",),
            ("--experimental-oci11",),
            "cosign OCI 1.1 referrer",
        ),
    ],
    ids=["v2-legacy", "v2-oci11-referrer"],
)
@pytest.mark.parametrize("any_registry", ["distribution", "referrers-api"], indirect=True)
async def test_cosign_v2_signatures_verify_and_agree_with_cosign(
    any_registry: RegistryServer,
    any_pusher: Pusher,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    sign_extra: tuple[str, ...],
    verify_extra: tuple[str, ...],
    fmt: str,
) -> None:
    pusher = any_pusher
    await asyncio.to_thread(cosign2, tmp_path, "generate-key-pair")
    name = f"cosign2/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    image = f"{pusher.host}/{name}@{digest}"
    await asyncio.to_thread(
        cosign2, tmp_path, "sign", "--key", "cosign.key", "--tlog-upload=false",
        "--allow-insecure-registry", "--yes", *sign_extra, image,
    )  # fmt: skip
    record = await signgate_verify(image, tmp_path / "cosign.pub", pusher.host)
    assert record["allowed"] is True, record["reasons"]
    authorities = record["authorities"]
    assert isinstance(authorities, list)
    assert authorities[0]["format"] == fmt
    verified = await asyncio.to_thread(
        cosign2, tmp_path, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog",
        "--allow-insecure-registry", *verify_extra, image, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr[-1000:]

    if any_registry.implementation != "distribution":
        # The referrers API answered cosign's probe: no fallback tag, and signgate needed none.
        assert fallback_tag(digest) not in await pusher.list_tags(name)
        assert await pusher.find_manifest(name, fallback_tag(digest)) is None
        notes = record["notes"]
        assert isinstance(notes, list)
        assert not any("used the fallback tag" in str(note) for note in notes), notes

    # Another key: both refuse.
    other = tmp_path_factory.mktemp("cosign2-other")
    await asyncio.to_thread(cosign2, other, "generate-key-pair")
    refused = await signgate_verify(image, other / "cosign.pub", pusher.host)
    assert refused["allowed"] is False
    rejected = await asyncio.to_thread(
        cosign2, tmp_path, "verify", "--key", str(other / "cosign.pub"), "--insecure-ignore-tlog",
        "--allow-insecure-registry", *verify_extra, image, check=False,
    )  # fmt: skip
    assert rejected.returncode != 0
