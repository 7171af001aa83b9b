"""Where the real cosign and Sigstore signatures are: vendored in ``tests/vectors/data``.

Byte-for-byte copies of upstream test data (``containers-image/derived/`` only re-packages copied
files), one folder per source project with its licence; the folder's README.md names each upstream
repository and commit and says what every file is.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from support import signer
from support.formats import Layer
from support.push import Pusher

# Folders and files under `vectors_dir()`.
CONFORMANCE = "sigstore-conformance/test/assets/bundle-verify"
CONTAINERS = "containers-image/signature"
PRODUCTION_ROOT = "sigstore-python/sigstore/_store/tuf-repo-cdn.sigstore.dev/trusted_root.json"
PUBLIC_GOOD_ROOT = "sigstore-go/pkg/testing/data/trusted-roots/public-good.json"

REKOR_V1_LOG_ID = bytes.fromhex("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
"""The log ID of the public-good Rekor v1 log (rekor.sigstore.dev), as the vectors name it."""


def vectors_dir() -> Path:
    """``<repository>/tests/vectors/data``: the vendored vectors (see its README.md)."""
    return Path(__file__).resolve().parents[1] / "vectors" / "data"


async def push_conformance_bundle(
    pusher: Pusher, vectors: Path, case: str, digest: str | None = None
) -> str:
    """Attach a conformance bundle as a v3 referrer of the 'image' whose digest is sha256(a.txt).

    The bundle's messageSignature covers a.txt; a message signature on an image covers the image
    manifest, known by its digest, so a.txt plays the manifest here. Returns the image reference.
    """
    artifact = (vectors / CONFORMANCE / "a.txt").read_bytes()
    digest = digest or "sha256:" + hashlib.sha256(artifact).hexdigest()
    bundle = (vectors / CONFORMANCE / case / "bundle.sigstore.json").read_bytes()
    name = f"vectors/{secrets.token_hex(4)}"
    subject = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": len(artifact),
        "digest": digest,
    }
    media_type = "application/vnd.dev.sigstore.bundle.v0.3+json"
    await signer.push_referrer(
        pusher, name, subject, [Layer(bundle, media_type)], artifact_type=media_type
    )
    return f"{pusher.host}/{name}@{digest}"
