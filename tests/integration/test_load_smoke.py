"""``scripts/load`` keeps working: a 3-second run at concurrency 20 (the real one is 60 s at 1,000).

The script starts its own registry, pushes signed and unsigned images, runs ``signgate serve`` as a
process (once against the registry, once behind a proxy adding 200 ms per request) and loads it
from another process. Here only correctness is checked: no errors, no wrong answers, the table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# The load script starts its own registry.
pytestmark = pytest.mark.registry

LOAD = Path(__file__).resolve().parents[2] / "bench" / "load.py"


def test_load_script_runs_without_errors(tmp_path: Path) -> None:
    report = tmp_path / "load.json"
    args = ["--duration", "3", "--concurrency", "20", "--signed", "6", "--unsigned", "2"]
    result = subprocess.run(
        [sys.executable, str(LOAD), *args, "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signgate serve under load: 20 concurrent admissions" in result.stdout
    for row in ("ERRORS (transport, non-200)", "latency p99 (ms)", "server RSS peak (MiB)"):
        assert row in result.stdout, result.stdout
    phases = json.loads(report.read_text())["phases"]
    assert [phase["name"] for phase in phases] == ["direct", "+200 ms"]
    for phase in phases:
        drive = phase["drive"]
        assert drive["errors"] == 0, drive["error_samples"]
        assert drive["fail_open"] == 0
        assert drive["denied_other"] == 0, drive["denied_other_samples"]
        assert drive["allowed"] > 0
        assert drive["denied_unsigned"] > 0
        assert phase["server_exit"] == 0
        assert phase["server_log_errors"] == []
        assert phase["rss_kib"], "the server's memory was not sampled"
