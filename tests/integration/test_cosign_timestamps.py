"""RFC 3161 timestamps the real cosign (v2 and v3) obtains from the fake TSA
(``support.fake_sigstore``, Node.js) for a keyless signature: they verify against the fakes'
trusted root, for the signature they were made for and no other, and not against public-good.

Moved from ``tests/unit/signatures/test_timestamp.py`` (which holds the byte-level cases) because
it needs cosign, Node.js and a registry; the unit tests run with only the Python dependencies.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from signgate.errors import SignatureError, TimestampError
from signgate.signatures.bundle import parse_bundle
from signgate.signatures.timestamp import parse_cosign_timestamp_annotation, verify_rfc3161
from signgate.signatures.trusted_root import TrustedRoot, load_trusted_root
from support.fake_sigstore import FakeSigstore, sign_keyless
from support.formats import (
    BUNDLE_V03_MEDIA_TYPE,
    RFC3161_ANNOTATION,
    SIGNATURE_ANNOTATION,
    fallback_tag,
    signature_tag,
)
from support.push import Pusher
from support.vectors import PRODUCTION_ROOT

pytestmark = pytest.mark.cosign


def error(token_der: bytes, signature: bytes, root: TrustedRoot) -> str:
    with pytest.raises(TimestampError) as caught:
        verify_rfc3161(token_der, signature, root)
    assert isinstance(caught.value, SignatureError)
    return str(caught.value)


async def _signed_material(
    version: str, pusher: Pusher, sigstore: FakeSigstore, home: Path
) -> tuple[bytes, bytes]:
    """Keyless-sign a fresh image with the real cosign and read back (timestamp DER, signature)."""
    repo = f"timestamp/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(repo, "v1")
    image = f"{pusher.host}/{repo}@{digest}"
    await asyncio.to_thread(sign_keyless, version, home, image, sigstore, "dev@signgate.test")
    if version.startswith("v2."):
        manifest = (await pusher.get_manifest(repo, signature_tag(digest))).json()
        (layer,) = manifest["layers"]
        annotations = layer["annotations"]
        der = parse_cosign_timestamp_annotation(annotations[RFC3161_ANNOTATION])
        return der, base64.b64decode(annotations[SIGNATURE_ANNOTATION])
    index = (await pusher.get_manifest(repo, fallback_tag(digest))).json()
    (descriptor,) = [d for d in index["manifests"] if d["artifactType"] == BUNDLE_V03_MEDIA_TYPE]
    manifest = (await pusher.get_manifest(repo, descriptor["digest"])).json()
    (layer,) = manifest["layers"]
    bundle = parse_bundle(await pusher.get_blob(repo, layer["digest"]))
    (der,) = bundle.rfc3161_timestamps
    return der, bundle.signature


@pytest.mark.parametrize("version", ["v3.1.2", "v2.6.5"], ids=["v3-bundle", "v2-annotation"])
async def test_real_cosign_timestamp_from_the_fake_tsa(
    fake_sigstore: FakeSigstore,
    pusher: Pusher,
    tmp_path: Path,
    vectors: Path,
    version: str,
) -> None:
    assert fake_sigstore.tsa_url is not None
    production_root = load_trusted_root((vectors / PRODUCTION_ROOT).read_bytes())
    before = datetime.now(UTC).replace(microsecond=0)
    der, signature = await _signed_material(version, pusher, fake_sigstore, tmp_path)
    after = datetime.now(UTC)
    root = load_trusted_root(fake_sigstore.trusted_root_path.read_bytes())

    gen_time = verify_rfc3161(der, signature, root)
    assert before - timedelta(seconds=1) <= gen_time <= after
    assert "message imprint" in error(der, signature + b"\x00", root)
    assert "is not from a trusted timestamp authority" in error(der, signature, production_root)
