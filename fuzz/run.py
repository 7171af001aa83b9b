"""Run the coverage-guided fuzz job: atheris (libFuzzer) over every target, one process each.

``scripts/fuzz [--inputs N] [--seed S] [--workdir DIR] [TARGET...]`` (default: 100,000 inputs in
total, shared equally between the targets). Each target starts from its seed corpus
(``fuzz/corpus/<target>``; new inputs libFuzzer finds go to the work directory, never into the
repository). A crash is any exception a target does not accept, an accepted error whose message is
not one line, a hang (20 s for one input) or running out of memory (2 GiB); the worker records the
first input of each distinct crash (type and signgate source line) and goes on fuzzing. Exit status
1 when any target crashed.

``python -m fuzz.run --worker TARGET CRASHES_FILE LIBFUZZER_ARGS...`` is one target's process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from fuzz import harness

DEFAULT_INPUTS = 100_000
TIMEOUT_SECONDS = 20
RSS_LIMIT_MB = 2048
INSTRUMENTED = ["signgate", "yaml"]

_DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.MULTILINE)
_STATUS = re.compile(
    r"^#(\d+)\s+\w+\s+(?:cov: (\d+) )?(?:ft: \d+ )?(?:corp: (\d+)/)?", re.MULTILINE
)
_DEADLY = re.compile(r"ERROR: libFuzzer: (.+)")


def _worker(name: str, crashes: Path, libfuzzer_args: list[str]) -> None:
    import atheris  # the fuzz dependency group; never imported by the default test suite

    atheris.enabled_hooks.add("str")
    with atheris.instrument_imports(include=INSTRUMENTED):
        target = harness.load(name)
    seen: set[str] = set()

    def one_input(data: bytes) -> None:
        crash = harness.check(target, data)
        if crash is None or crash.signature in seen:
            return
        seen.add(crash.signature)
        path = crashes.parent / f"input-{name}-{hashlib.sha1(data).hexdigest()[:16]}"  # noqa: S324
        path.write_bytes(data)
        record = {
            "target": name,
            "signature": crash.signature,
            "message": crash.message,
            "input": str(path),
            "traceback": crash.traceback,
        }
        with crashes.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        print(f"\n=== crash in {name}: {crash.signature}\n{crash.traceback}", file=sys.stderr)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


@dataclass
class Result:
    """One target's run."""

    name: str
    inputs: int = 0
    seconds: float = 0.0
    coverage: int | None = None
    corpus: int | None = None
    crashes: list[dict[str, str]] = field(default_factory=list)
    log: Path | None = None


def _share(total: int, count: int, index: int) -> int:
    return total // count + (1 if index < total % count else 0)


def _fuzz_target(name: str, runs: int, workdir: Path, seed: int | None) -> Result:
    target_dir = workdir / name
    corpus = target_dir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes = target_dir / "crashes.jsonl"
    crashes.touch()
    log = target_dir / "libfuzzer.log"
    args = [
        f"-runs={runs}",
        "-len_control=0",
        f"-timeout={TIMEOUT_SECONDS}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-artifact_prefix={target_dir}/",
        "-print_final_stats=1",
        *([f"-seed={seed}"] if seed is not None else []),
        str(corpus),
        str(harness.CORPUS_DIR / name),
    ]
    command = [sys.executable, "-m", "fuzz.run", "--worker", name, str(crashes)]
    started = time.monotonic()
    with log.open("wb") as out:
        completed = subprocess.run(  # noqa: S603 - our own interpreter and module
            [*command, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            cwd=harness.FUZZ_DIR.parent,
        )
    result = Result(name, seconds=time.monotonic() - started, log=log)
    output = log.read_text(encoding="utf-8", errors="replace")
    done = _DONE.search(output)
    statuses = _STATUS.findall(output)
    if done:
        result.inputs = int(done.group(1))
    elif statuses:
        result.inputs = int(statuses[-1][0])
    for _, cov, corp in statuses:
        result.coverage = int(cov) if cov else result.coverage
        result.corpus = int(corp) if corp else result.corpus
    result.crashes = [json.loads(line) for line in crashes.read_text().splitlines() if line]
    deadly = _DEADLY.search(output)
    if completed.returncode != 0 or not done:
        reason = deadly.group(1) if deadly else f"worker exited with status {completed.returncode}"
        artifacts = sorted(
            str(p)
            for p in target_dir.glob("*-*")
            if p.name.split("-")[0] in {"crash", "timeout", "oom", "leak", "slow"}
        )
        result.crashes.append(
            {
                "target": name,
                "signature": f"libFuzzer: {reason}",
                "message": reason,
                "input": artifacts[-1] if artifacts else "(none)",
                "traceback": "",
            }
        )
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        _worker(argv[1], Path(argv[2]), argv[3:])
        return 0  # not reached: libFuzzer exits the process
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="default: every target")
    parser.add_argument("--inputs", type=int, default=DEFAULT_INPUTS, help="in total (100000)")
    parser.add_argument("--seed", type=int, help="libFuzzer's random seed (default: random)")
    parser.add_argument("--workdir", type=Path, help="for corpora, logs, crash inputs")
    args = parser.parse_args(argv)
    names = args.targets or list(harness.TARGETS)
    unknown = [n for n in names if n not in harness.TARGETS]
    if unknown:
        parser.error(f"unknown target: {' '.join(unknown)}")
    if args.inputs < len(names):
        parser.error(f"--inputs must be at least {len(names)} (one per target)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="signgate-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"fuzzing {len(names)} targets, {args.inputs} inputs in total; work dir {workdir}")
    print(f"{'target':<14} {'inputs':>8} {'crashes':>8} {'seconds':>8} {'cov':>6} {'corpus':>7}")
    started = time.monotonic()
    results: list[Result] = []
    for index, name in enumerate(names):
        result = _fuzz_target(name, _share(args.inputs, len(names), index), workdir, args.seed)
        results.append(result)
        print(
            f"{name:<14} {result.inputs:>8} {len(result.crashes):>8} {result.seconds:>8.1f} "
            f"{result.coverage or '-':>6} {result.corpus or '-':>7}",
            flush=True,
        )
    total_inputs = sum(r.inputs for r in results)
    total_crashes = sum(len(r.crashes) for r in results)
    elapsed = time.monotonic() - started
    print(f"{'total':<14} {total_inputs:>8} {total_crashes:>8} {elapsed:>8.1f}")
    for result in results:
        for crash in result.crashes:
            print(f"\nCRASH {crash['target']}: {crash['signature']}\n  {crash['message'][:300]}")
            print(f"  input: {crash['input']}\n  log: {result.log}")
    if total_crashes:
        print(f"\n{total_crashes} crash(es); inputs and logs are in {workdir}", file=sys.stderr)
        return 1
    if total_inputs < args.inputs:
        print(f"only {total_inputs} of {args.inputs} inputs ran", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
