"""``signgate verify`` starts without what only other commands or inputs need (issue 14).

Importing the command's module in a fresh interpreter loads none of `support.start_up
.NOT_AT_START_UP` (pydantic, YAML, rfc3161-client, PyNaCl, Kopf, the webhook...); the same holds
for a whole process against a real registry (tests/integration/test_verify_start_up.py). And the
process keeps its import-time objects out of the garbage collector's work. No timing is asserted.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from signgate.cli import EXIT_USAGE, main
from support.start_up import VERIFY_NEEDS, unwanted


def test_importing_the_verify_command_loads_only_what_verify_needs() -> None:
    code = "import json, sys; import signgate.cli.verify; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    modules = set(json.loads(done.stdout))
    assert unwanted(modules) == []
    assert set(VERIFY_NEEDS) <= modules


def test_the_console_script_entry_point_loads_no_command_before_it_runs() -> None:
    """``signgate --help`` and usage errors cost argparse, not the engine."""
    code = "import json, sys; import signgate.cli; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    modules = set(json.loads(done.stdout))
    assert unwanted(modules) == []
    assert not {m for m in modules if m.startswith(("signgate.engine", "signgate.registry"))}
    assert "aiohttp" not in modules


def test_a_verify_process_freezes_its_imports_but_a_caller_of_main_keeps_its_collector(
    tmp_path: Path,
) -> None:
    """The console script (``main()``, the process's own arguments) keeps the engine's import-time
    objects out of the garbage collector's work (`gc.freeze`); ``main(argv)`` in someone else's
    process, such as this one, leaves its collector as it was."""
    argv = ["verify", "--key", str(tmp_path / "absent.pub"), "registry.test/app:1"]
    code = (
        "import gc; from signgate.cli import main; "
        "status = main(); print(status, gc.get_freeze_count(), gc.isenabled())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    status, frozen, enabled = done.stdout.split()
    assert "cannot read key" in done.stderr  # it got past the import, to the command
    assert (int(status), enabled) == (EXIT_USAGE, "True")
    assert int(frozen) > 10_000

    frozen_before = gc.get_freeze_count()
    assert main(argv) == EXIT_USAGE
    assert gc.get_freeze_count() == frozen_before
    assert gc.isenabled()
