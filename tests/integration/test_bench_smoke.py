"""``scripts/bench`` keeps working: ``bench/perf.py --quick`` (one repetition, small N).

The benchmark starts its own registries, pushes signed and unsigned images, runs ``signgate serve``
and a bare endpoint as processes and drives them from another process. Here only that it finishes,
answers correctly (exit 0) and prints every section and target with numbers is checked: nothing
about time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

# The benchmark starts its own registries and times the real cosign too.
pytestmark = [pytest.mark.registry, pytest.mark.cosign]

PERF = Path(__file__).resolve().parents[2] / "bench" / "perf.py"
SECTIONS = (
    "1. warm path",
    "2. cold path",
    "3. fan-out",
    "4. negative path",
    "5. cosign verify --key",
    "6. ceiling",
    "7. memory",
)
ROW = re.compile(r"^  (?P<label>\S.*?)\s{2,}(?P<median>\S+)(?:\s+(?P<worst>\S+))?$")


def _number(cell: str) -> float:
    return float(cell.replace(",", ""))


def test_quick_benchmark_prints_every_section_with_numbers(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(PERF), "--quick", "--memory-images", "100", "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    table, _, rest = out.partition("\ntarget ")
    targets = rest.split("\n\n", 1)[0]
    assert targets, out

    lines = table.splitlines()
    starts = [next(i for i, line in enumerate(lines) if line.startswith(s)) for s in SECTIONS]
    assert starts == sorted(starts), out
    for begin, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        rows = [ROW.match(line.rstrip()) for line in lines[begin + 1 : end] if line.strip()]
        assert rows, f"section {lines[begin]!r} has no rows"
        for row in rows:
            assert row is not None, out
            _number(row["median"])  # every figure is a number ("-" would raise)
            if row["worst"]:
                _number(row["worst"])

    verdicts = [line.rsplit(None, 1)[-1] for line in targets.splitlines()[1:]]
    assert len(verdicts) == 16, targets
    # Every target is judged, except memory: 100 digests are too few to extrapolate to 10,000.
    assert set(verdicts[:-1]) <= {"yes", "NO"}, targets
    assert verdicts[-1] == "-", targets
    assert "extrapolated from 100 digests" in targets, targets

    data = json.loads(report.read_text())
    assert data["errors"] == []
    assert data["runs"]["fanout.verifications"] == [1.0]
    assert data["runs"]["negative.next_requests"] == [0.0]
    assert all(t["met"] is not None for t in data["targets"][:-1])
    assert data["notes"]["memory.verdicts_cached"] == 101  # 100 digests and the first image
