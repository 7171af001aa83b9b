"""signgate's reference parser against Go's github.com/distribution/reference, over 120,000 strings.

What the kubelet and containerd pull is what ``reference.ParseDockerRef`` (v0.6.0) reads in an
image string. Every string signgate accepts must mean the same there: the same registry host, as Go
writes it, the same repository path, the same digest, and the same tag when there is no digest
(``ParseDockerRef`` drops a tag beside a digest; signgate keeps it for display, the digest is what
it verifies and pins). signgate may refuse more than Go (the module docstring of
`signgate.reference` says what, and why); it may never accept what Go refuses.

The Go side is tests/differential/reference/main.go, built by
``scripts/install-reference-differential``; one process reads the whole corpus (JSON lines), so
the test takes a few seconds. A missing binary fails the test with the script to run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from signgate.errors import InvalidReferenceError
from signgate.reference import ImageReference, parse_reference
from support.reference_corpus import corpus

pytestmark = pytest.mark.go

SOURCE = Path(__file__).parents[1] / "differential" / "reference"
REFERENCE_VERSION = "v0.6.0"
INSTALL = "scripts/install-reference-differential"
CORPUS_SIZE = 120_000


def differential_binary() -> Path:
    """Where ``scripts/install-reference-differential`` puts the Go program built from SOURCE."""
    tools = Path(os.environ.get("SIGNGATE_TOOLS_CACHE", Path.home() / ".cache/signgate-test-tools"))
    sources = b"".join((SOURCE / name).read_bytes() for name in ("go.mod", "go.sum", "main.go"))
    stamp = hashlib.sha256(sources).hexdigest()[:12]
    return tools / f"reference-differential-{REFERENCE_VERSION}-{stamp}" / "reference-differential"


def go_parse(strings: list[str]) -> list[dict[str, str]]:
    binary = differential_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is not built: run {INSTALL}", pytrace=False)
    lines = "".join(json.dumps(s) + "\n" for s in strings).encode("ascii")
    done = subprocess.run([binary], input=lines, capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(strings)
    return results


@dataclass(frozen=True)
class Read:
    """One string as signgate reads it: a reference, or the reason it is refused."""

    reference: ImageReference | None
    reason: str = ""


def signgate_parse(text: str) -> Read:
    try:
        return Read(parse_reference(text))
    except InvalidReferenceError as exc:
        return Read(None, exc.reason)


def as_go_reads(ref: ImageReference) -> dict[str, str]:
    """What ParseDockerRef must have answered for ``ref``: a tag only without a digest."""
    return {
        "domain": ref.registry,
        "path": ref.repository,
        "tag": (ref.tag or "") if ref.digest is None else "",
        "digest": ref.digest or "",
    }


def category(reason: str) -> str:
    """The rule a refusal names: its reason without the values it quotes or explains."""
    return re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "…", reason).split(": ", 1)[0]


def test_every_reference_signgate_accepts_means_the_same_to_go() -> None:
    strings = corpus(CORPUS_SIZE)
    assert len(set(strings)) == CORPUS_SIZE
    go = go_parse(strings)

    both_accept = both_refuse = 0
    signgate_only_refuses: Counter[str] = Counter()
    examples: dict[str, str] = {}
    disagreements: list[str] = []
    for text, theirs in zip(strings, go, strict=True):
        ours = signgate_parse(text)
        go_refuses = "error" in theirs
        if ours.reference is None:
            if go_refuses:
                both_refuse += 1
            else:
                rule = category(ours.reason)
                signgate_only_refuses[rule] += 1
                examples.setdefault(rule, text)
            continue
        if go_refuses:
            disagreements.append(f"{text!r}: signgate reads {ours.reference}, Go: {theirs}")
            continue
        both_accept += 1
        expected = as_go_reads(ours.reference)
        if theirs != expected:
            disagreements.append(f"{text!r}: signgate reads {expected}, Go reads {theirs}")

    refused_only = sum(signgate_only_refuses.values())
    print(
        f"\n{CORPUS_SIZE} strings: accepted by both {both_accept}, refused by both {both_refuse}, "
        f"refused by signgate only {refused_only}, accepted by signgate only or read "
        f"differently {len(disagreements)}"
    )
    for rule, count in signgate_only_refuses.most_common():
        print(f"  {count:6}  {rule}   e.g. {examples[rule]!r}")
    assert not disagreements, "\n".join(disagreements[:50])
    # The corpus exercises both sides of the grammar, not only its refusals.
    assert both_accept > CORPUS_SIZE // 10
    assert both_refuse > CORPUS_SIZE // 10


def test_the_issue_15_strings_go_reads_differently_are_refused() -> None:
    # The strings the issue reports, with what Go reads in each: signgate refuses them all.
    image_id = "sha256:" + "a" * 64
    cases = ["\u212aube.example/app", "Docker.io/x", "INDEX.DOCKER.IO/x", image_id]
    go = go_parse(cases)
    assert go[0]["error"] == "repository name must be lowercase"
    assert (go[1]["domain"], go[1]["path"]) == ("Docker.io", "x")
    assert (go[2]["domain"], go[2]["path"]) == ("INDEX.DOCKER.IO", "x")
    assert (go[3]["domain"], go[3]["path"], go[3]["tag"]) == (
        "docker.io",
        "library/sha256",
        "a" * 64,
    )
    for text in cases:
        assert signgate_parse(text).reference is None, text
