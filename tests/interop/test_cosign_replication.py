"""Replicated images (the Harbor seed scenario): signed by the real cosign at registry A, copied
with their signatures to registry B, verified at B.

A is distribution (no referrers API), B is the registry with the referrers API, as a Harbor 2.x
replica would be. A legacy signature's ``docker-reference`` names A; it must not cause a denial at B
unless the policy asks for it (``signedIdentity``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from support import cli
from support.cli import signgate_verify
from support.push import Pusher
from support.replicate import replicate

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

V2, V3 = "v2.6.5", "v3.1.2"


@pytest.fixture(scope="module")
def cosign_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cosign-replication")
    cli.run_cosign(V3, home, "generate-key-pair")
    return home


def sign(home: Path, version: str, image: str) -> None:
    cli.cosign_sign(version, home, image)


def cosign_verify(home: Path, image: str) -> bool:
    return cli.cosign_verifies(V3, home, image)


def policy_file(home: Path, name: str, signed_identity: dict[str, Any] | None) -> str:
    spec: dict[str, Any] = {
        "images": ["**"],
        "authorities": [{"name": "release", "key": {"pem": (home / "cosign.pub").read_text()}}],
    }
    if signed_identity is not None:
        spec["signedIdentity"] = signed_identity
    path = home / f"{name}.yaml"
    document = {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    path.write_text(json.dumps(document))
    return str(path)


async def verify_at(image: str, host: str, policy: str) -> dict[str, object]:
    return await signgate_verify(image, None, host, "--policy", policy)


@pytest.mark.parametrize(
    ("version", "fmt"),
    [(V2, "cosign .sig tag"), (V3, "sigstore bundle")],
    ids=["v2-legacy", "v3-bundle"],
)
async def test_replicated_image_verifies_at_the_replica(
    cosign_home: Path, pusher: Pusher, referrers_pusher: Pusher, version: str, fmt: str
) -> None:
    name = f"harbor/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    at_a = f"{pusher.host}/{name}@{digest}"
    at_b = f"{referrers_pusher.host}/replica/{name}@{digest}"
    await asyncio.to_thread(sign, cosign_home, version, at_a)
    await replicate(pusher, referrers_pusher, name, f"replica/{name}", digest, "v1")

    # Default (signedIdentity Any, as cosign): the signature naming A does not matter at B.
    default = policy_file(cosign_home, "default", None)
    record = await verify_at(at_b, referrers_pusher.host, default)
    assert record["allowed"] is True, record["reasons"]
    authorities = record["authorities"]
    assert isinstance(authorities, list)
    assert authorities[0]["format"] == fmt
    assert await asyncio.to_thread(cosign_verify, cosign_home, at_b)

    # signedIdentity: ImageRepository — the replica is refused, the source still admitted.
    # difference: signed-identity (cosign never reads docker-reference)
    own = policy_file(cosign_home, "own", {"match": "ImageRepository"})
    assert (await verify_at(at_a, pusher.host, own))["allowed"] is (version == V2)
    refused = await verify_at(at_b, referrers_pusher.host, own)
    assert refused["allowed"] is False
    reasons = refused["reasons"]
    assert isinstance(reasons, list)
    if version == V2:
        assert (
            f"signature was made for {pusher.host}/{name}, not the image's repository "
            f"{referrers_pusher.host}/replica/{name}" in reasons[0]
        )
    else:
        # difference: bundle-names-no-repository -- cosign v3 bundles carry no
        # docker-reference, so a policy that matches signed identities cannot accept them.
        assert "sigstore bundles name no repository" in reasons[0]

    # signedIdentity: Repositories naming the source registry — what a replica's policy says.
    source = policy_file(
        cosign_home, "source", {"match": "Repositories", "repositories": [f"{pusher.host}/**"]}
    )
    record = await verify_at(at_b, referrers_pusher.host, source)
    assert record["allowed"] is (version == V2), record["reasons"]


async def test_cosign_copy_carries_legacy_signatures(
    cosign_home: Path, pusher: Pusher, referrers_pusher: Pusher
) -> None:
    # cosign's own replication tool, for the format it can copy.
    name = f"harbor/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    await asyncio.to_thread(sign, cosign_home, V2, f"{pusher.host}/{name}@{digest}")
    destination = f"{referrers_pusher.host}/copied/{name}"
    await asyncio.to_thread(
        cli.run_cosign, V2, cosign_home, "copy", "--allow-insecure-registry",
        "--allow-http-registry", f"{pusher.host}/{name}@{digest}", destination,
    )  # fmt: skip
    at_b = f"{destination}@{digest}"
    record = await verify_at(at_b, referrers_pusher.host, policy_file(cosign_home, "d", None))
    assert record["allowed"] is True, record["reasons"]
    assert await asyncio.to_thread(cosign_verify, cosign_home, at_b)
