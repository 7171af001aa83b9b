"""docs/fault-matrix.md cites a test for every row, and every test it cites exists.

A citation is ``tests/<path>.py::<name>`` (a test function, or a class's method); the name must be
defined at the top level of that file (or in a class in it). Renaming or deleting a test without
updating the table fails here.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "fault-matrix.md"
CITATION = re.compile(r"(tests/[\w/]+\.py)::(\w+)")

FAULTS = (
    "Registry down",
    "Connection reset mid-body",
    "Hanging past the deadline",
    "429 with Retry-After",
    "429 without Retry-After",
    "500 / 502 / 503",
    "Truncated body",
    "Endless body",
    "Gigabyte body",
    "Manifest bytes not matching the digest",
    "Referrers index with 10,000 entries",
    "`.sig` manifest with 1,000 layers",
    "Malformed JSON",
    "Malformed base64",
    "Malformed PEM",
    "Malformed DER",
    "Wrong certificates",
    "Token endpoint failing",
    "Token endpoint returning expired tokens",
    "Kubernetes API unreachable while policies are indexed",
    "TrustPolicy whose key cannot be parsed",
    "TLS certificate rotation while serving",
)
"""Issue 7, part 1: every fault it names has a row."""


@cache
def defined_tests(path: str) -> frozenset[str]:
    """Names of the functions defined at the top level of ``path`` or in its classes."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return frozenset(names)


def table_rows() -> list[list[str]]:
    """The cells of each row of the matrix table (header and separator excluded)."""
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith(("| Fault ", "|---")):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_every_cited_test_exists() -> None:
    citations = CITATION.findall(DOC.read_text(encoding="utf-8"))
    assert len(citations) > 20
    missing = [
        f"{path}::{name}"
        for path, name in citations
        if not (ROOT / path).is_file() or name not in defined_tests(path)
    ]
    assert not missing, f"docs/fault-matrix.md cites tests that do not exist: {missing}"


def test_every_fault_of_the_issue_has_a_row_with_a_test() -> None:
    rows = table_rows()
    assert [row[0] for row in rows] == list(FAULTS)
    for row in rows:
        # fault, how, decision, crash, fail-open, bound, recovery, tests
        assert len(row) == 8, row[0]
        fault, _, decision, crash, fail_open, _, recovery, tests = row
        assert (crash, fail_open) == ("no", "no"), fault
        assert decision and recovery, fault
        assert CITATION.search(tests), f"row {fault!r} cites no test"


def test_the_citation_check_sees_a_missing_test() -> None:
    assert "test_every_cited_test_exists" in defined_tests("tests/unit/test_fault_matrix_doc.py")
    assert "no_such_test" not in defined_tests("tests/unit/test_fault_matrix_doc.py")
