"""The real cosign v3 signs; signgate verifies. Same key, same image, same registry, and the
verdict compared with ``cosign verify`` itself (the first step of the interoperability matrix).

Everything stays on this machine: ``--tlog-upload=false`` with ``--use-signing-config=false``
(cosign v3 refuses the former with its default signing config, which names the public Rekor).

Each signing case runs against distribution (no referrers API: cosign writes the ``sha256-<hex>``
fallback index) and against go-containerregistry's registry with the OCI 1.1 referrers API
(``referrers-api``: cosign writes no fallback tag, so signgate must find the bundle through the
API).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from pathlib import Path

import pytest

from signgate.signatures.keys import PublicKey, load_public_key_pem
from support import cli
from support.cli import signgate_verify
from support.cosign_key import load_cosign_private_key
from support.formats import fallback_tag
from support.push import Pusher
from support.registry import RegistryServer

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

REGISTRIES = pytest.mark.parametrize(
    "any_registry", ["distribution", "referrers-api"], indirect=True
)


@pytest.fixture(scope="module")
def cosign_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cosign")
    run_cosign(home, "generate-key-pair")
    return home


def run_cosign(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cli.run_cosign("v3.1.2", home, *args, check=check)


def cosign_sign(home: Path, image: str, *extra: str) -> None:
    run_cosign(
        home, "sign", "--key", "cosign.key", "--tlog-upload=false", "--use-signing-config=false",
        "--allow-insecure-registry", "--yes", *extra, image,
    )  # fmt: skip


def cosign_verify(home: Path, image: str, key: str = "cosign.pub") -> bool:
    result = run_cosign(
        home, "verify", "--key", key, "--insecure-ignore-tlog", "--allow-insecure-registry", image,
        check=False,
    )  # fmt: skip
    return result.returncode == 0


async def assert_stored_via_the_referrers_api(
    registry: RegistryServer, pusher: Pusher, name: str, digest: str, record: dict[str, object]
) -> None:
    """On the referrers-API registry: no fallback tag written, and signgate did not look for one."""
    if registry.implementation == "distribution":
        return
    assert fallback_tag(digest) not in await pusher.list_tags(name)
    assert await pusher.find_manifest(name, fallback_tag(digest)) is None
    notes = record["notes"]
    assert isinstance(notes, list)
    assert not any("used the fallback tag" in str(note) for note in notes), notes


def test_cosign_generated_key_pair_is_readable(cosign_home: Path) -> None:
    private = load_cosign_private_key((cosign_home / "cosign.key").read_bytes(), b"")
    public = load_public_key_pem((cosign_home / "cosign.pub").read_bytes())
    assert PublicKey.from_key(private.public_key()) == public


@pytest.mark.parametrize(
    ("extra", "fmt"),
    [((), "sigstore bundle"), (("--new-bundle-format=false",), "cosign .sig tag")],
    ids=["v3-bundle", "v3-legacy"],
)
@REGISTRIES
async def test_cosign_v3_signatures_verify_and_agree_with_cosign(
    cosign_home: Path,
    any_registry: RegistryServer,
    any_pusher: Pusher,
    tmp_path: Path,
    extra: tuple[str, ...],
    fmt: str,
) -> None:
    pusher = any_pusher
    name = f"cosign/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    image = f"{pusher.host}/{name}@{digest}"
    await asyncio.to_thread(cosign_sign, cosign_home, image, *extra)
    record = await signgate_verify(image, cosign_home / "cosign.pub", pusher.host)
    assert record["allowed"] is True, record["reasons"]
    authorities = record["authorities"]
    assert isinstance(authorities, list)
    assert authorities[0]["format"] == fmt
    await assert_stored_via_the_referrers_api(any_registry, pusher, name, digest, record)
    assert await asyncio.to_thread(cosign_verify, cosign_home, image)

    # Another key: both refuse.
    other = tmp_path
    await asyncio.to_thread(run_cosign, other, "generate-key-pair")
    refused = await signgate_verify(image, other / "cosign.pub", pusher.host)
    assert refused["allowed"] is False
    assert not await asyncio.to_thread(cosign_verify, cosign_home, image, str(other / "cosign.pub"))


@REGISTRIES
async def test_unsigned_image_is_refused_by_both(cosign_home: Path, any_pusher: Pusher) -> None:
    pusher = any_pusher
    name = f"cosign/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    image = f"{pusher.host}/{name}@{digest}"
    record = await signgate_verify(image, cosign_home / "cosign.pub", pusher.host)
    assert record["allowed"] is False
    assert not await asyncio.to_thread(cosign_verify, cosign_home, image)
