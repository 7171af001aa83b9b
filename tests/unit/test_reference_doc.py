"""docs/trustpolicy-reference.md is generated from the TrustPolicy model and names every field.

The drift test compares the committed file with `render_reference()`. The coverage test walks the
model on its own (``model_fields``, not the generator's walk) and finds each field, by its YAML
name, in the section of the object that holds it.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from pydantic import BaseModel

from signgate.policy.generate.reference_doc import REGENERATE, ReferenceDocError, render_reference
from signgate.policy.model import SignedIdentity, TrustPolicy, TrustPolicySpec

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "trustpolicy-reference.md"


@cache
def rendered() -> str:
    return render_reference()


def _inner_model(annotation: object) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds, and whether as the entries of a list."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _inner_model(inner[0]) if len(inner) == 1 else (None, False)
    if origin is list:
        model, _ = _inner_model(args[0])
        return model, model is not None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def model_fields(
    model: type[BaseModel] = TrustPolicy, section: str = "TrustPolicy", path: str = ""
) -> Iterator[tuple[str, str]]:
    """(section title, YAML field name) for every field of the model, nested ones included."""
    for name, field in model.model_fields.items():
        alias = field.alias or name
        yield section, alias
        nested, in_list = _inner_model(field.annotation)
        if nested is not None:
            child = f"{path}.{alias}" if path else alias
            child += "[]" if in_list else ""
            yield from model_fields(nested, child, child)


def sections(text: str) -> dict[str, str]:
    """The text under each ``## `title` `` heading, by title."""
    parts = re.split(r"^## `([^`]+)`$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_committed_reference_is_what_the_generator_prints() -> None:
    assert DOC.is_file(), f"{DOC.relative_to(ROOT)} is missing; generate it with: {REGENERATE}"
    assert DOC.read_text(encoding="utf-8") == rendered(), (
        f"{DOC.relative_to(ROOT)} has drifted from the TrustPolicy model "
        f"(operator/signgate/policy/model.py); regenerate it with: {REGENERATE}"
    )


FIELDS = sorted(set(model_fields()))


def test_the_walk_finds_the_whole_model() -> None:
    # Guards the coverage test below against a walk that silently finds nothing.
    assert len(FIELDS) > 40
    assert ("spec.authorities[].keyless", "subjectRegExp") in FIELDS
    assert ("spec.attestations[].conditions[]", "oneOf") in FIELDS
    assert ("spec.namespaceSelector.matchExpressions[]", "operator") in FIELDS


@pytest.mark.parametrize(("section", "field"), FIELDS, ids=[f"{s}.{f}" for s, f in FIELDS])
def test_every_field_of_the_model_is_in_its_section(section: str, field: str) -> None:
    found = sections(rendered())
    assert section in found, f"no section '## `{section}`' in the reference"
    assert f"- **`{field}`** — " in found[section], f"{section}: field {field!r} not documented"


def test_every_field_description_is_in_the_reference() -> None:
    text = rendered()
    for model in (TrustPolicy, TrustPolicySpec, SignedIdentity):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            words = field.description.split()[:3]
            assert " ".join(words) in text, f"{model.__name__}.{name}: description missing"


def test_defaults_types_limits_and_rules_are_stated() -> None:
    spec = sections(rendered())["spec"]
    assert "- **`mode`** — one of `Enforce`, `Warn`, `Audit` · default `Enforce`" in spec
    assert "- **`images`** — list of strings · **required** · 1\N{EN DASH}256 entries" in spec
    assert "- **`threshold`** — integer · default `1` · at least 0" in spec
    assert "entries unique by `name`" in spec  # the CRD's list-map key
    assert "- threshold exceeds the number of authorities" in spec  # a CEL rule's message
    assert "`{match: Any, repositories: []}`" in spec  # a default made by a factory
    authority = sections(rendered())["spec.authorities[]"]
    assert "pattern `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`" in authority
    assert "- **`transparencyLog`** — one of `Require`, `Ignore` · optional" in authority


def test_status_and_columns_come_from_the_crd() -> None:
    found = sections(rendered())
    assert "- **`conditions`** — list of objects" in found["status"]
    assert (
        "- **`lastTransitionTime`** — string (date-time) · always set"
        in found["status.conditions[]"]
    )
    assert "| Mode | `.spec.mode` |" in found["kubectl get trustpolicies"]


def test_markdown_special_characters_in_descriptions_are_escaped() -> None:
    spec = sections(rendered())["spec"]
    assert r"repo:tag@sha256:\<child\>" in spec  # not an HTML tag that would vanish
    assert r"'\*\*' any number of segments" in spec  # not emphasis


def test_a_model_the_generator_cannot_describe_fails_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import signgate.policy.generate.reference_doc as reference_doc

    class Odd(BaseModel):
        value: int | str = 0

    def odd_sections(
        model: type[BaseModel] = Odd, path: str = ""
    ) -> Iterator[tuple[str, type[BaseModel]]]:
        yield "", Odd

    monkeypatch.setattr(reference_doc, "model_sections", odd_sections)
    with pytest.raises(ReferenceDocError, match="union"):
        reference_doc.render_reference()
