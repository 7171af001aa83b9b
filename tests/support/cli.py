"""Running ``signgate verify`` as a user would, in its own process."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path


async def signgate_verify(image: str, key: Path, registry: str) -> dict[str, object]:
    """`signgate verify --key KEY IMAGE --output json` against an insecure registry; the record."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signgate", "verify", "--key", str(key), image,
        "--insecure-registry", registry, "--output", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode in (0, 1), err.decode()
    record: dict[str, object] = json.loads(out)
    assert record["allowed"] is (proc.returncode == 0)
    return record
