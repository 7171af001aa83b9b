"""Multi-arch images (an OCI index over two platform manifests) signed by the real cosign, with and
without ``--recursive``; signgate's verdicts compared with ``cosign verify`` on the same references.

``cosign sign INDEX`` signs the index digest only; ``cosign sign --recursive INDEX`` signs the
index and each platform manifest it lists (each with its own signature). cosign v3 writes sigstore
bundle referrers (a ``sha256-<hex>`` fallback index per signed digest on distribution, the
referrers API on the ``referrers-api`` registry), cosign v2 the legacy ``sha256-<hex>.sig`` tags.

One documented difference, asserted as such (``deliberate difference: index-covers-children``):
a TrustPolicy with ``indexCoversChildren: true`` admits ``repo:tag@sha256:<child>`` when the tag
names a signed index that lists the child; cosign has no such option and refuses the child
digest (it drops the tag of a ``repo:tag@digest`` reference).

Nothing leaves the machine (``--tlog-upload=false``, and ``--use-signing-config=false`` for v3).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support import cli
from support.cli import signgate_verify
from support.formats import fallback_tag, signature_tag
from support.push import OCI_INDEX, Pusher
from support.registry import RegistryServer

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

V2 = "v2.6.5"
V3 = "v3.1.2"

REGISTRIES = pytest.mark.parametrize(
    "any_registry", ["distribution", "referrers-api"], indirect=True
)


@dataclass(frozen=True)
class Scheme:
    """How a cosign version signs offline, and signgate's name for what it writes."""

    version: str
    format: str


SCHEMES = {
    "v3-bundle": Scheme(V3, "sigstore bundle"),
    "v2-legacy": Scheme(V2, "cosign .sig tag"),
}
SCHEME = pytest.mark.parametrize("scheme_id", list(SCHEMES))


@pytest.fixture(scope="module")
def cosign_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("multiarch")
    cli.run_cosign(V3, home, "generate-key-pair")
    return home


@pytest.fixture(scope="module")
def covering_policy(cosign_home: Path) -> Path:
    """A TrustPolicy file for every image, the cosign key, and ``indexCoversChildren: true``."""
    path = cosign_home / "covering.yaml"
    document = {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "covering"},
        "spec": {
            "images": ["**"],
            "authorities": [
                {"name": "release", "key": {"pem": (cosign_home / "cosign.pub").read_text()}}
            ],
            "indexCoversChildren": True,
        },
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def cosign_sign(scheme: Scheme, home: Path, image: str, *extra: str) -> None:
    cli.cosign_sign(scheme.version, home, image, *extra)


def cosign_verify(scheme: Scheme, home: Path, image: str) -> bool:
    return cli.cosign_verifies(scheme.version, home, image)


async def signed_digests(
    registry: RegistryServer, pusher: Pusher, repo: str, digests: list[str]
) -> list[bool]:
    """Which of ``digests`` carry a signature where this scheme and registry put it."""
    tags = set(await pusher.list_tags(repo))
    found = []
    for digest in digests:
        if signature_tag(digest) in tags or fallback_tag(digest) in tags:
            found.append(True)
        elif registry.implementation != "distribution":
            _, _, body = await pusher.request(
                "GET", f"/v2/{repo}/referrers/{digest}", repo=repo, headers={"Accept": OCI_INDEX}
            )
            found.append(bool(json.loads(body)["manifests"]))
        else:
            found.append(False)
    return found


def verdict(record: Mapping[str, object]) -> bool:
    allowed = record["allowed"]
    assert isinstance(allowed, bool)
    return allowed


def signature_formats(record: Mapping[str, object]) -> list[str]:
    authorities = record["authorities"]
    assert isinstance(authorities, list)
    return [a["format"] for a in authorities]


def reasons(record: Mapping[str, object]) -> str:
    found = record["reasons"]
    assert isinstance(found, list)
    return "\n".join(str(r) for r in found)


@SCHEME
@REGISTRIES
async def test_index_signature_and_its_children(
    cosign_home: Path,
    covering_policy: Path,
    any_registry: RegistryServer,
    any_pusher: Pusher,
    scheme_id: str,
) -> None:
    scheme, home, pusher = SCHEMES[scheme_id], cosign_home, any_pusher
    host, key = pusher.host, home / "cosign.pub"
    name = f"multiarch/{secrets.token_hex(4)}"
    index, children = await pusher.push_multiarch_image(name, "v1")
    await asyncio.to_thread(cosign_sign, scheme, home, f"{host}/{name}@{index}")
    assert await signed_digests(any_registry, pusher, name, [index, *children]) == [
        True,
        False,
        False,
    ]

    by_digest = [f"{host}/{name}@{d}" for d in (index, *children)]
    with_tag = [f"{host}/{name}:v1@{c}" for c in children]
    policy = ("--policy", str(covering_policy))
    records, cosign_says, covered, untagged = await asyncio.gather(
        asyncio.gather(*(signgate_verify(i, key, host) for i in by_digest + with_tag)),
        asyncio.gather(
            *(asyncio.to_thread(cosign_verify, scheme, home, i) for i in by_digest + with_tag)
        ),
        asyncio.gather(*(signgate_verify(i, None, host, *policy) for i in with_tag)),
        asyncio.gather(*(signgate_verify(i, None, host, *policy) for i in by_digest[1:])),
    )
    # Without the knob: the index is signed, its children are not -- both agree on all five
    # references (the children by digest, and as repo:tag@child).
    assert [verdict(r) for r in records] == [True, False, False, False, False]
    assert cosign_says == [True, False, False, False, False]
    assert signature_formats(records[0]) == [scheme.format]
    for denied in records[1:]:
        assert "has none" in reasons(denied)

    # With indexCoversChildren: repo:tag@child is admitted through the signed index the tag names,
    # pinned to the child.
    for record, child in zip(covered, children, strict=True):
        assert record["allowed"] is True, record["reasons"]
        assert record["digest"] == child
        assert record["coveredBy"] == {
            "covering": f"image index {host}/{name}@{index} (tag v1), which lists it"
        }
        assert signature_formats(record) == [scheme.format]
    # deliberate difference: index-covers-children -- cosign has no such option: for the very same
    # repo:tag@child references it verifies the child digest, and refuses.
    assert cosign_says[3:] == [False, False]

    # Without a tag there is no index to look at: the knob changes nothing, denied by both.
    for record in untagged:
        assert record["allowed"] is False
        assert "indexCoversChildren applies to references written repo:tag@sha256:" in reasons(
            record
        )
    assert cosign_says[1:3] == [False, False]


@SCHEME
@REGISTRIES
async def test_recursive_signature_covers_every_platform(
    cosign_home: Path,
    any_registry: RegistryServer,
    any_pusher: Pusher,
    scheme_id: str,
) -> None:
    scheme, home, pusher = SCHEMES[scheme_id], cosign_home, any_pusher
    host, key = pusher.host, home / "cosign.pub"
    name = f"multiarch/{secrets.token_hex(4)}"
    index, children = await pusher.push_multiarch_image(name, "v1")
    await asyncio.to_thread(cosign_sign, scheme, home, f"{host}/{name}@{index}", "--recursive")
    assert await signed_digests(any_registry, pusher, name, [index, *children]) == [True] * 3

    images = [f"{host}/{name}@{d}" for d in (index, *children)]
    records, cosign_says = await asyncio.gather(
        asyncio.gather(*(signgate_verify(i, key, host) for i in images)),
        asyncio.gather(*(asyncio.to_thread(cosign_verify, scheme, home, i) for i in images)),
    )
    for record in records:
        assert record["allowed"] is True, record["reasons"]
        assert signature_formats(record) == [scheme.format]
        assert record["coveredBy"] == {}
    assert cosign_says == [True, True, True]
