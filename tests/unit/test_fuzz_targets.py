"""The fuzz targets run on their seed corpora without a crash, so they cannot rot.

The fuzz job itself (atheris, 100,000 inputs) is ``scripts/fuzz``, not part of the default run;
this only replays ``fuzz/corpus/<target>/`` through each target, in-process and in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
if str(REPOSITORY) not in sys.path:
    sys.path.append(str(REPOSITORY))

from fuzz import harness  # noqa: E402

from signgate.errors import SigngateError  # noqa: E402

MAX_SEED_BYTES = 16 * 1024


def test_every_target_module_is_listed() -> None:
    modules = {p.stem for p in (REPOSITORY / "fuzz" / "targets").glob("*.py")} - {"__init__"}
    assert modules == set(harness.TARGETS)
    assert {p.name for p in harness.CORPUS_DIR.iterdir()} == set(harness.TARGETS)


@pytest.mark.parametrize("name", harness.TARGETS)
def test_target_passes_its_seed_corpus(name: str) -> None:
    target = harness.load(name)
    assert all(issubclass(error, SigngateError) for error in target.accepted)
    seeds = target.seeds()
    assert seeds, f"fuzz/corpus/{name} is empty"
    assert all(p.stat().st_size <= MAX_SEED_BYTES for p in seeds)

    crashes = [(p.name, harness.check(target, p.read_bytes())) for p in seeds]

    assert [(seed, c.signature, c.message) for seed, c in crashes if c is not None] == []


def _raise(error: Exception) -> None:
    raise error


def test_the_harness_tells_crashes_from_accepted_errors() -> None:
    accepted = (SigngateError,)
    assert harness.check(harness.Target("t", accepted, lambda _: None), b"") is None
    refused = harness.Target("t", accepted, lambda _: _raise(SigngateError("no, because x")))
    assert harness.check(refused, b"") is None

    crash = harness.check(harness.Target("t", accepted, lambda d: _raise(KeyError(d))), b"k")
    assert crash is not None
    assert crash.kind == "KeyError"
    assert "test_fuzz_targets.py" in crash.where

    two_lines = harness.Target("t", accepted, lambda _: _raise(SigngateError("a\nb")))
    bad = harness.check(two_lines, b"")
    assert bad is not None
    assert bad.kind == "bad message"


def test_fields_round_trip() -> None:
    parts = [b"control", b"", b"x" * 300, b"rest\x00of it"]

    assert harness.fields(harness.pack(*parts), 4) == parts
    assert harness.fields(b"", 3) == [b"", b"", b""]
