"""Where the real cosign and Sigstore signatures of ../shared/vectors are (see its MANIFEST.md)."""

from __future__ import annotations

import os
from pathlib import Path


def vectors_dir() -> Path:
    """``<repository>/../shared/vectors``, or ``$SIGNGATE_VECTORS``."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
    return Path(os.environ.get("SIGNGATE_VECTORS", default))
