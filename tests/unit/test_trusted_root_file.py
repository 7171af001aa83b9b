"""The served trusted root follows its file (a ConfigMap refreshed out of band)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from signgate.engine.trusted_root_file import TrustedRootFile, default_trusted_root
from signgate.engine.verifier import Verifier
from signgate.registry import RegistryClient, RegistryOptions

PUBLIC_GOOD = json.loads(
    (
        Path(__file__).resolve().parents[2] / "operator/signgate/data/public-good-trusted-root.json"
    ).read_text()
)


async def test_a_changed_file_replaces_the_root_and_a_broken_one_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(PUBLIC_GOOD))
    async with RegistryClient(RegistryOptions()) as client:
        engine = Verifier(client, trusted_root=default_trusted_root())
        watched = TrustedRootFile(path, engine)
        assert watched.check() is False  # unchanged since it was read

        engine.outcomes.put(("policy", "sha256:" + "0" * 64, ""), object(), 60)  # type: ignore[arg-type]
        smaller = dict(PUBLIC_GOOD, ctlogs=[])
        path.write_text(json.dumps(smaller))
        os.utime(path, (1, 1))  # a new mtime, whatever the clock's resolution
        assert watched.check() is True
        assert engine.trusted_root is not None
        assert engine.trusted_root.ctlogs == ()
        assert len(engine.outcomes) == 0  # verdicts under the old root are forgotten

        before = engine.trusted_root
        path.write_text("{not json")
        os.utime(path, (2, 2))
        assert watched.check() is False
        assert engine.trusted_root is before  # the last good root stays in force
        path.unlink()
        assert watched.check() is False
        assert engine.trusted_root is before
