"""Where signgate and ``cosign verify`` decide differently, on purpose, shown with the real cosign.

docs/cosign-differences.md lists every difference under an id; each id is asserted by a test that
carries the marker ``difference: <id>`` (this file for the payload checks, the other interop files
for the rest). The last test keeps the list and the tests in step.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from pathlib import Path

import pytest

from support import cli
from support.cli import signgate_verify
from support.push import Pusher

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

V2 = "v2.6.5"
ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cosign-differences.md"


@pytest.fixture(scope="module")
def cosign_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cosign-differences")
    cli.run_cosign(V2, home, "generate-key-pair")
    return home


def attach(home: Path, image: str, payload: bytes) -> None:
    """Sign ``payload`` with ``cosign sign-blob`` and attach it with ``cosign attach signature``:
    the way to give an image a signature over a payload cosign itself would not write."""
    name = secrets.token_hex(4)
    (home / f"{name}.json").write_bytes(payload)
    signed = cli.run_cosign(
        V2, home, "sign-blob", "--key", "cosign.key", "--tlog-upload=false", "--yes",
        f"{name}.json",
    )  # fmt: skip
    # Saved as sign-blob prints it, newline included, as a user would.
    (home / f"{name}.sig").write_text(signed.stdout)
    cli.run_cosign(
        V2, home, "attach", "signature", "--payload", f"{name}.json", "--signature",
        f"{name}.sig", "--allow-insecure-registry", image,
    )  # fmt: skip


def cosign_admits(home: Path, image: str) -> bool:
    return cli.cosign_verifies(V2, home, image)


def payload_text(reference: str, digest: str, kind: str) -> bytes:
    template = (
        '{"critical":{"identity":{"docker-reference":"REF"},"image":{"docker-manifest-digest":'
        '"DIGEST"},"type":"KIND"},"optional":null}'
    )
    return (
        template.replace("REF", reference).replace("DIGEST", digest).replace("KIND", kind).encode()
    )


async def fresh_image(pusher: Pusher) -> tuple[str, str]:
    name = f"differences/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    return f"{pusher.host}/{name}", digest


async def test_attached_cosign_payload_agrees(cosign_home: Path, pusher: Pusher) -> None:
    # The control: a well-formed payload attached the same way is admitted by both.
    repository, digest = await fresh_image(pusher)
    image = f"{repository}@{digest}"
    payload = payload_text(repository, digest, "cosign container image signature")
    await asyncio.to_thread(attach, cosign_home, image, payload)
    record = await signgate_verify(image, cosign_home / "cosign.pub", pusher.host)
    assert record["allowed"] is True, record["reasons"]
    assert await asyncio.to_thread(cosign_admits, cosign_home, image)


async def test_payload_of_another_type_is_refused(cosign_home: Path, pusher: Pusher) -> None:
    # difference: payload-type
    repository, digest = await fresh_image(pusher)
    image = f"{repository}@{digest}"
    await asyncio.to_thread(
        attach, cosign_home, image, payload_text(repository, digest, "atomic container signature")
    )
    record = await signgate_verify(image, cosign_home / "cosign.pub", pusher.host)
    assert record["allowed"] is False
    assert "simple-signing payload type is 'atomic container signature'" in str(record["reasons"])
    assert await asyncio.to_thread(cosign_admits, cosign_home, image)  # cosign never reads type


async def test_ambiguous_payload_is_refused(cosign_home: Path, pusher: Pusher) -> None:
    # difference: ambiguous-payload
    repository, digest = await fresh_image(pusher)
    other = await pusher.push_random_image(repository.split("/", 1)[1], "other")
    image = f"{repository}@{digest}"
    # Two digest claims differing only in case: Go's decoder takes the last match, so cosign
    # reads the digest being verified; another JSON reader could take the first.
    template = (
        '{"critical":{"identity":{"docker-reference":"REF"},"image":{"Docker-manifest-digest":'
        '"OTHER","docker-manifest-digest":"DIGEST"},"type":"cosign container image signature"},'
        '"optional":null}'
    )
    payload = (
        template.replace("REF", repository).replace("OTHER", other).replace("DIGEST", digest)
    ).encode()
    json.loads(payload)  # valid JSON: the ambiguity is in the meaning, not the syntax
    await asyncio.to_thread(attach, cosign_home, image, payload)
    record = await signgate_verify(image, cosign_home / "cosign.pub", pusher.host)
    assert record["allowed"] is False
    assert "has 2 'docker-manifest-digest' fields" in str(record["reasons"])
    assert await asyncio.to_thread(cosign_admits, cosign_home, image)


def _documented_ids() -> list[str]:
    return re.findall(r"^\| `([a-z0-9-]+)` \|", DOC.read_text(), flags=re.MULTILINE)


def test_every_documented_difference_has_a_test_and_every_marker_is_documented() -> None:
    documented = _documented_ids()
    assert documented, f"no differences table in {DOC}"
    assert len(documented) == len(set(documented)), "an id is listed twice"
    marked: dict[str, list[str]] = {}
    marker = re.compile(r"difference: ([a-z0-9-]+)")
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for found in marker.findall(path.read_text()):
            marked.setdefault(found, []).append(path.name)
    assert sorted(set(documented) - marked.keys()) == [], "documented but not tested"
    assert sorted(marked.keys() - set(documented)) == [], "tested but not documented"
