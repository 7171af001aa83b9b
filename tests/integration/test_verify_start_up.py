"""A whole ``signgate verify --key`` process, start to exit, loads none of `support.start_up
.NOT_AT_START_UP` (pydantic, YAML, rfc3161-client, PyNaCl, Kopf, the webhook...) while it
discovers and verifies real signatures in a real registry (issue 14: start-up time).

tests/unit/cli/test_start_up_imports.py checks the import alone; this one also covers what is
imported while the command runs. No timing is asserted.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from support.formats import generate_key, public_key_pem
from support.push import Pusher
from support.signer import sign_bundle_v3, sign_legacy
from support.start_up import VERIFY_NEEDS, unwanted

# The console script's `main` on argv[2:]; then sys.modules, as JSON, into the file argv[1].
_RUN_MAIN = """
import json, sys
from signgate.cli import main
status = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
sys.exit(status)
"""


async def test_a_whole_verify_key_process_loads_none_of_them(
    pusher: Pusher, tmp_path: Path
) -> None:
    """A .sig-tag signature and a v0.3 bundle (ECDSA, no timestamp), both verified."""
    key = generate_key()
    key_file = tmp_path / "cosign.pub"
    key_file.write_bytes(public_key_pem(key))
    legacy = await pusher.push_random_image("start-up/legacy")
    await sign_legacy(pusher, "start-up/legacy", legacy, key)
    bundled = await pusher.push_random_image("start-up/bundle")
    await sign_bundle_v3(pusher, "start-up/bundle", bundled, key)
    images = [f"{pusher.host}/start-up/legacy@{legacy}", f"{pusher.host}/start-up/bundle@{bundled}"]
    record = tmp_path / "modules.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _RUN_MAIN, str(record), "verify", "--key", str(key_file), *images,
        "--insecure-registry", pusher.host,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out + err).decode()
    assert out.decode().count("ALLOWED ") == 2, out.decode()
    modules = set(json.loads(record.read_text()))
    assert unwanted(modules) == []
    assert set(VERIFY_NEEDS) <= modules
