"""Two signers on one image, signed by the real cosign, judged by TrustPolicy ``threshold`` and
``required``.

cosign v2 appends the second signature as a second layer of the ``sha256-<hex>.sig`` manifest;
cosign v3 pushes a second sigstore-bundle referrer. signgate must count both signers in either
case, and in a mix of the two schemes. ``cosign verify`` has no threshold: the comparison is that
it admits the image with each key exactly when signgate counts that key's authority.

Every ``signgate verify`` is a fresh process, so "a signature added later" is seen without any
cache in the way. Nothing leaves the machine (``--tlog-upload=false``).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support import cli
from support.cli import signgate_verify
from support.formats import BUNDLE_V03_MEDIA_TYPE, fallback_tag, signature_tag
from support.push import Pusher

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

V2 = "v2.6.5"
V3 = "v3.1.2"


@dataclass(frozen=True)
class Scheme:
    """How a cosign version stores a signature."""

    version: str
    sign_extra: tuple[str, ...]
    format: str
    """signgate's name for the format (``format`` in the JSON record)."""


LEGACY = Scheme(V2, (), "cosign .sig tag")
BUNDLE = Scheme(V3, ("--use-signing-config=false",), "sigstore bundle")
SCHEMES = {"v2-legacy": LEGACY, "v3-bundle": BUNDLE}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cosign home with two key pairs, ``a.key``/``a.pub`` and ``b.key``/``b.pub``."""
    home = tmp_path_factory.mktemp("signers")
    for name in ("a", "b"):
        cli.run_cosign(V3, home, "generate-key-pair", "--output-key-prefix", name)
    return home


def cosign_sign(scheme: Scheme, home: Path, signer: str, image: str) -> None:
    cli.run_cosign(
        scheme.version, home, "sign", "--key", f"{signer}.key", "--tlog-upload=false",
        "--allow-insecure-registry", "--yes", *scheme.sign_extra, image,
    )  # fmt: skip


def cosign_verify(
    version: str, home: Path, signer: str, image: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return cli.run_cosign(
        version, home, "verify", "--key", f"{signer}.pub", "--insecure-ignore-tlog",
        "--allow-insecure-registry", *extra, image, check=False,
    )  # fmt: skip


def cosign_admits(scheme: Scheme, home: Path, signer: str, image: str, *extra: str) -> bool:
    """Whether ``cosign verify --key <signer>.pub`` admits the image (a refusal must be a
    "no matching signatures/attestations", never another failure)."""
    result = cosign_verify(scheme.version, home, signer, image, *extra)
    if result.returncode != 0:
        assert "Error: no matching " in result.stderr, result.stderr[-1000:]
    return result.returncode == 0


def write_policy(
    path: Path,
    home: Path,
    signers: Sequence[str],
    *,
    threshold: int = 1,
    required: Sequence[str] = (),
) -> Path:
    """A TrustPolicy YAML file governing every image, with one inline-key authority per signer."""
    spec: dict[str, object] = {
        "images": ["**"],
        "authorities": [
            {"name": name, "key": {"pem": (home / f"{name}.pub").read_text()}} for name in signers
        ],
        "threshold": threshold,
    }
    if required:
        spec["required"] = list(required)
    document = {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": path.stem},
        "spec": spec,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


async def policy_verify(image: str, host: str, policy: Path) -> dict[str, object]:
    return await signgate_verify(image, None, host, "--policy", str(policy))


def signers_of(record: Mapping[str, object]) -> dict[str, str]:
    """Authority name to signature format, from a ``signgate verify`` JSON record."""
    authorities = record["authorities"]
    assert isinstance(authorities, list)
    return {a["authority"]: a["format"] for a in authorities}


def only_reason(record: Mapping[str, object]) -> str:
    reasons = record["reasons"]
    assert isinstance(reasons, list) and len(reasons) == 1, reasons
    reason = reasons[0]
    assert isinstance(reason, str)
    return reason


async def stored_signatures(pusher: Pusher, repo: str, digest: str) -> dict[str, int]:
    """How many signatures cosign stored, per place: ``.sig`` layers and bundle referrers."""
    sig = await pusher.find_manifest(repo, signature_tag(digest))
    index = await pusher.find_manifest(repo, fallback_tag(digest))
    bundles = [
        m
        for m in (index.json()["manifests"] if index is not None else [])
        if m.get("artifactType") == BUNDLE_V03_MEDIA_TYPE
    ]
    return {
        "sig layers": len(sig.json()["layers"]) if sig is not None else 0,
        "bundles": len(bundles),
    }


def expected_count(scheme: Scheme, n: int) -> dict[str, int]:
    return {"sig layers": n, "bundles": 0} if scheme is LEGACY else {"sig layers": 0, "bundles": n}


async def fresh_image(pusher: Pusher) -> tuple[str, str, str]:
    """Push a random image; ``(repo, digest, image reference by digest)``."""
    repo = f"signers/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(repo, "v1")
    return repo, digest, f"{pusher.host}/{repo}@{digest}"


@pytest.mark.parametrize("scheme_id", list(SCHEMES))
async def test_threshold_two_needs_both_signers(
    keys: Path, pusher: Pusher, tmp_path: Path, scheme_id: str
) -> None:
    scheme = SCHEMES[scheme_id]
    repo, digest, image = await fresh_image(pusher)
    policy = write_policy(tmp_path / "two-of-two.yaml", keys, ["a", "b"], threshold=2)

    # difference: threshold (cosign has no threshold or required signer)
    # Only a has signed: signgate counts 1 of the 2 needed; cosign agrees a signed and b did not.
    await asyncio.to_thread(cosign_sign, scheme, keys, "a", image)
    assert await stored_signatures(pusher, repo, digest) == expected_count(scheme, 1)
    one, cosign_a, cosign_b = await asyncio.gather(
        policy_verify(image, pusher.host, policy),
        asyncio.to_thread(cosign_admits, scheme, keys, "a", image),
        asyncio.to_thread(cosign_admits, scheme, keys, "b", image),
    )
    assert one["allowed"] is False
    reason = only_reason(one)
    assert "TrustPolicy 'two-of-two' needs valid signatures from 2 of [a, b], has 1 (a)" in reason
    assert signers_of(one) == {"a": scheme.format}  # what did verify, even when denied
    assert (cosign_a, cosign_b) == (True, False)

    # b signs too (a second .sig layer, or a second referrer): 2 of 2, and cosign admits each key.
    await asyncio.to_thread(cosign_sign, scheme, keys, "b", image)
    assert await stored_signatures(pusher, repo, digest) == expected_count(scheme, 2)
    both, cosign_a, cosign_b = await asyncio.gather(
        policy_verify(image, pusher.host, policy),
        asyncio.to_thread(cosign_admits, scheme, keys, "a", image),
        asyncio.to_thread(cosign_admits, scheme, keys, "b", image),
    )
    assert both["allowed"] is True, both["reasons"]
    assert signers_of(both) == {"a": scheme.format, "b": scheme.format}
    assert (cosign_a, cosign_b) == (True, True)


@pytest.mark.parametrize("scheme_id", list(SCHEMES))
async def test_required_signer_added_later(
    keys: Path, pusher: Pusher, tmp_path: Path, scheme_id: str
) -> None:
    scheme = SCHEMES[scheme_id]
    repo, digest, image = await fresh_image(pusher)
    policy = write_policy(tmp_path / "needs-b.yaml", keys, ["a", "b"], required=["b"])

    # a's signature meets threshold 1, but b is required: denied, naming b.
    await asyncio.to_thread(cosign_sign, scheme, keys, "a", image)
    before, cosign_b = await asyncio.gather(
        policy_verify(image, pusher.host, policy),
        asyncio.to_thread(cosign_admits, scheme, keys, "b", image),
    )
    assert before["allowed"] is False
    reason = only_reason(before)
    assert "needs valid signatures from 1 of [a, b] including b, has 1 (a)" in reason
    assert "required authority missing: b" in reason
    assert cosign_b is False

    # b signs later; a new signgate process (no cache) sees the added signature.
    await asyncio.to_thread(cosign_sign, scheme, keys, "b", image)
    assert await stored_signatures(pusher, repo, digest) == expected_count(scheme, 2)
    after, cosign_b = await asyncio.gather(
        policy_verify(image, pusher.host, policy),
        asyncio.to_thread(cosign_admits, scheme, keys, "b", image),
    )
    assert after["allowed"] is True, after["reasons"]
    assert signers_of(after) == {"a": scheme.format, "b": scheme.format}
    assert cosign_b is True


async def test_legacy_and_bundle_signatures_count_together(
    keys: Path, pusher: Pusher, tmp_path: Path
) -> None:
    """a signs with cosign v2 (.sig tag), b with cosign v3 (bundle referrer): 2 of 2."""
    repo, digest, image = await fresh_image(pusher)
    policy = write_policy(tmp_path / "mixed.yaml", keys, ["a", "b"], threshold=2)
    await asyncio.to_thread(cosign_sign, LEGACY, keys, "a", image)
    await asyncio.to_thread(cosign_sign, BUNDLE, keys, "b", image)
    assert await stored_signatures(pusher, repo, digest) == {"sig layers": 1, "bundles": 1}

    record, v3_b, v3_a_legacy, v3_a_default, v2_a = await asyncio.gather(
        policy_verify(image, pusher.host, policy),
        asyncio.to_thread(cosign_admits, BUNDLE, keys, "b", image),
        asyncio.to_thread(cosign_admits, BUNDLE, keys, "a", image, "--new-bundle-format=false"),
        asyncio.to_thread(cosign_admits, BUNDLE, keys, "a", image),
        asyncio.to_thread(cosign_verify, V2, keys, "a", image),
    )
    assert record["allowed"] is True, record["reasons"]
    assert signers_of(record) == {"a": LEGACY.format, "b": BUNDLE.format}
    # difference: mixed-schemes
    # cosign v3 admits the image with each key, but reads one scheme per run: bundles whenever
    # there are any, the .sig tag only when told --new-bundle-format=false.
    assert (v3_b, v3_a_legacy) == (True, True)
    assert v3_a_default is False
    # cosign v2.6.5 switches to the bundle format as soon as it sees a bundle referrer, and then
    # insists on a trusted root (offline: none), so it no longer checks a's own .sig signature.
    assert v2_a.returncode != 0
    assert "Error: trusted root is required when using new bundle format" in v2_a.stderr
