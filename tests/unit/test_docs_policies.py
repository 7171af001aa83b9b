"""Every TrustPolicy in the documentation is valid and compiles, as written.

The YAML blocks of docs/*.md and README.md are what people copy. Each block with
``kind: TrustPolicy`` is read the way ``signgate verify --policy`` reads a file
(`parse_policies`: YAML, the model, unique names) and every TrustPolicy in it is compiled
(`compile_policy`: patterns, keys, CA certificates, the signature repository). Other documents in
a block (a Secret, a ConfigMap) are left alone.

Keys must be real: a PEM in the docs has to parse. A ``secretRef`` key is compiled with a
throw-away key standing in for the Secret's content, as the operator compiles it with the
Secret's. The README's field tour is the one exception: its PEM is an illustration (``...``),
so its keys are replaced the same way, and everything else in it must still compile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from signgate.policy.compiled import compile_policy
from signgate.policy.loading import parse_policies
from signgate.policy.model import TrustPolicy

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```ya?ml[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)

# A throw-away P-256 public key (its private half was never kept).
STAND_IN_KEY = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJZxl7kwT6JIiCcLTGg04x0I6IhxI\n"
    "EkjG+jD5zTlg3aqBLDdbiLxpru+tyiZlzlhemkVtYq1ctTB4I01NynUObQ==\n"
    "-----END PUBLIC KEY-----\n"
)

ILLUSTRATIVE_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----\s*\.\.\.\s*-----END PUBLIC KEY-----")
"""The README's placeholder key: the only PEM allowed not to parse, and only in README.md."""


@dataclass(frozen=True)
class Block:
    source: Path
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}"


def yaml_blocks(path: Path) -> list[Block]:
    """The fenced ```yaml blocks of a Markdown file, dedented, with the line each starts on."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        blocks.append(Block(path, text.count("\n", 0, match.start()) + 1, body))
    return blocks


def policy_blocks() -> list[Block]:
    return [
        block
        for source in SOURCES
        for block in yaml_blocks(source)
        if re.search(r"^\s*kind:\s*TrustPolicy\s*$", block.text, re.MULTILINE)
    ]


BLOCKS = policy_blocks()


def trust_policy_documents(block: Block) -> str:
    """The block's TrustPolicy documents as one YAML stream (other kinds dropped)."""
    documents = [d for d in yaml.safe_load_all(block.text) if isinstance(d, dict)]
    return yaml.safe_dump_all([d for d in documents if d.get("kind") == "TrustPolicy"])


def stand_in_keys(policy: TrustPolicy, *, illustrative: bool) -> dict[str, str]:
    """Keys to compile with, by authority: for secretRef keys (and README placeholders)."""
    keys = {}
    for authority in policy.spec.authorities:
        if authority.key is None:
            continue
        pem = authority.key.pem
        if pem is None or (illustrative and ILLUSTRATIVE_PEM.search(pem)):
            keys[authority.name] = STAND_IN_KEY
    return keys


def test_the_docs_hold_trust_policies() -> None:
    # Guards the parametrised test against finding nothing (a changed fence, a moved folder).
    where = {block.source.name for block in BLOCKS}
    assert {"README.md", "recipes.md"} <= where, where
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS, ids=[block.where for block in BLOCKS])
def test_documented_policy_is_valid_and_compiles(block: Block) -> None:
    policies = parse_policies(trust_policy_documents(block), block.where)
    assert policies, f"{block.where}: no TrustPolicy parsed"
    illustrative = block.source.name == "README.md"
    for policy in policies:
        compile_policy(
            policy,
            source=block.where,
            resolved_keys=stand_in_keys(policy, illustrative=illustrative),
        )


def test_fenced_blocks_are_found_with_their_indentation(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n\n```yaml\nkind: TrustPolicy\n```\n\n1. step\n\n   ```yaml\n   a: 1\n   ```\n"
        "\n```sh\nkind: TrustPolicy\n```\n",
        encoding="utf-8",
    )
    blocks = yaml_blocks(doc)
    assert [(b.line, b.text) for b in blocks] == [(3, "kind: TrustPolicy\n"), (9, "a: 1\n")]
