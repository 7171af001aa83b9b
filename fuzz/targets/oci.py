"""OCI and Docker manifests, indexes and descriptors (`signgate.registry.oci`).

The registry serves these bytes; a signer chooses the ``.sig`` manifests and referrers. Each input
is parsed as a manifest, as an index and for its declared media type.
"""

from __future__ import annotations

from fuzz.harness import refused
from signgate.errors import MalformedResponseError
from signgate.reference import digest_of
from signgate.registry.oci import media_type_of, parse_index, parse_manifest

ACCEPTED: tuple[type[Exception], ...] = (MalformedResponseError,)

MAX_LAYERS = 128
MAX_MANIFESTS = 1024


def run(data: bytes) -> None:
    media_type_of(data)
    with refused(*ACCEPTED):
        manifest = parse_manifest(data, digest_of(data), max_layers=MAX_LAYERS)
        assert len(manifest.layers) <= MAX_LAYERS
        assert all(d.digest.startswith("sha256:") and d.size >= 0 for d in manifest.layers)
    index = parse_index(data, "referrers index", max_manifests=MAX_MANIFESTS)
    assert len(index.manifests) <= MAX_MANIFESTS
