"""Running ``signgate verify`` as a user would, in its own process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

TOOLS = Path(os.environ.get("SIGNGATE_TOOLS_CACHE", Path.home() / ".cache/signgate-test-tools"))


def cosign_binary(version: str) -> Path:
    """The cosign built by scripts/install-cosign (fails the test, never skips, if absent)."""
    binary = TOOLS / f"cosign-{version}" / "cosign"
    if not binary.is_file():
        pytest.fail(
            f"cosign {version} is not installed at {binary}: run scripts/install-cosign",
            pytrace=False,
        )
    return binary


def run_cosign(
    version: str,
    home: Path,
    *args: str,
    check: bool = True,
    env_extra: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run cosign with an empty key password, in ``home``, offline (its own TUF cache);
    ``env_extra`` adds variables (e.g. cosign v2's trust environment)."""
    env = dict(
        os.environ,
        COSIGN_PASSWORD="",
        HOME=str(home),
        TUF_ROOT=str(home / "tuf"),
        COSIGN_EXPERIMENTAL="1",
        **(env_extra or {}),
    )
    env.pop("DOCKER_CONFIG", None)
    result = subprocess.run(
        [str(cosign_binary(version)), *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"cosign {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result


async def signgate(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``signgate ARGS`` in its own process: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signgate",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def signgate_verify(
    image: str, key: Path | None, registry: str, *extra: str
) -> dict[str, object]:
    """`signgate verify [--key KEY] IMAGE --output json [EXTRA...]` against an insecure registry.

    Returns the JSON record of the (single) image; ``extra`` may add e.g. ``--policy FILE``.
    """
    key_args = ("--key", str(key)) if key is not None else ()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signgate", "verify", *key_args, image,
        "--insecure-registry", registry, "--output", "json", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode in (0, 1), err.decode()
    record: dict[str, object] = json.loads(out)
    assert record["allowed"] is (proc.returncode == 0)
    return record


#: What keeps each cosign ``sign`` on this machine: no Rekor upload (v3 also needs its signing
#: config off, which names the public Rekor).
OFFLINE_SIGN = {
    "v2.6.5": ("--tlog-upload=false",),
    "v3.1.2": ("--tlog-upload=false", "--use-signing-config=false"),
}


def cosign_sign(version: str, home: Path, image: str, *extra: str, key: str = "cosign.key") -> None:
    """``cosign sign --key KEY`` offline, against an insecure registry."""
    run_cosign(
        version, home, "sign", "--key", key, *OFFLINE_SIGN[version], "--allow-insecure-registry",
        "--yes", *extra, image,
    )  # fmt: skip


def cosign_verifies(
    version: str, home: Path, image: str, *extra: str, key: str = "cosign.pub"
) -> bool:
    """Whether ``cosign verify --key KEY`` admits ``image``; a refusal must be cosign saying it
    found no (matching) signature, never another failure."""
    result = run_cosign(
        version, home, "verify", "--key", key, "--insecure-ignore-tlog",
        "--allow-insecure-registry", *extra, image, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        assert (
            "no signatures found" in result.stderr or "no matching signatures" in result.stderr
        ), result.stderr[-1000:]
    return result.returncode == 0
