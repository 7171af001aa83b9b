"""docs/trustpolicy-reference.md, generated from the TrustPolicy model.

`signgate.policy.model` is the one source of truth for what a TrustPolicy may say; this module
turns it into the reference a person reads, as `signgate.policy.generate.crd` turns it into the CRD:

- one section per object, in the order of the model, named by its path in YAML
  (``spec.authorities[].keyless``; ``[]`` is "each entry of the list");
- for each field, its YAML name (the alias), its type, whether it is required or its default,
  its limits (lengths, patterns, bounds, numbers of entries) and its ``Field(description=...)``;
- the rules that span fields, as the CRD states them (its CEL ``x-kubernetes-validations``), and
  the ``status`` the operator writes and the ``kubectl get`` columns, read from the CRD.

A JSON-schema keyword this module does not know raises `ReferenceDocError`, so that a model
change the reference would not describe fails the generator (and the drift test) instead of
being dropped. Regenerate with::

    uv run python -m signgate.policy.generate.reference_doc > docs/trustpolicy-reference.md
"""

from __future__ import annotations

import re
import sys
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Final

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from signgate.errors import SigngateError
from signgate.policy.generate.crd import trust_policy_crd
from signgate.policy.model import API_VERSION, KIND, PLURAL, SHORT_NAMES, TrustPolicy

REGENERATE: Final = (
    "uv run python -m signgate.policy.generate.reference_doc > docs/trustpolicy-reference.md"
)

JSONObject = dict[str, Any]

_DASH: Final = "\N{EN DASH}"  # between the bounds of a range: 1-63

# Keywords that carry nothing a reader needs here, or that the code below reads on purpose.
_IGNORED: Final = frozenset({"title", "description", "default", "required", "format"})
_HANDLED: Final = frozenset(
    {
        "type",
        "$ref",
        "anyOf",
        "allOf",
        "const",
        "enum",
        "items",
        "properties",
        "additionalProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "nullable",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-validations",
    }
)


class ReferenceDocError(SigngateError):
    """The model uses a construct the reference generator cannot describe."""


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")


def _title(path: str) -> str:
    return path or KIND


def _link(path: str) -> str:
    return f"[`{_title(path)}`](#{_anchor(_title(path))})"


def _markdown(text: str) -> str:
    """Docstring and description text as Markdown on one line.

    RST literals (````x````) become code spans; outside them, the characters Markdown would read
    as emphasis or HTML (``*``, ``_``, ``<``, ``>``) are escaped.
    """
    parts = " ".join(text.replace("``", "`").split()).split("`")
    for index in range(0, len(parts), 2):  # even parts are outside code spans
        parts[index] = re.sub(r"([*_<>\\])", r"\\\1", parts[index])
    return "`".join(parts)


def _docstring(model: type[BaseModel]) -> str:
    """The model's docstring, paragraph by paragraph."""
    doc = model.__doc__ or ""
    paragraphs = [p for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
    return "\n\n".join(_markdown(p) for p in paragraphs)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (directly, optionally, or as list entries), and if in a list."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _nested_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _nested_model(members[0])
        return None, False
    if origin is list:
        inner, _ = _nested_model(typing.get_args(annotation)[0])
        return inner, inner is not None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def field_path(path: str, name: str, field: FieldInfo) -> str:
    """The YAML path of a field's nested object (``spec.authorities[]``), or of the field."""
    _, in_list = _nested_model(field.annotation)
    return _join(path, (field.alias or name) + ("[]" if in_list else ""))


def model_sections(
    model: type[BaseModel] = TrustPolicy, path: str = ""
) -> Iterator[tuple[str, type[BaseModel]]]:
    """Every object of the model with its YAML path, depth first in field order."""
    yield path, model
    for name, field in model.model_fields.items():
        nested, _ = _nested_model(field.annotation)
        if nested is not None:
            yield from model_sections(nested, field_path(path, name, field))


def _unwrap(node: Mapping[str, Any]) -> JSONObject:
    """``X | None`` as X, a single ``allOf`` as its member; siblings (the description) kept."""
    out = dict(node)
    if "anyOf" in out:
        members = [m for m in out.pop("anyOf") if m != {"type": "null"}]
        if len(members) != 1:
            raise ReferenceDocError(f"a union other than 'X | None': {node}")
        out = {**members[0], **out}
    if "allOf" in out:
        members = out.pop("allOf")
        if len(members) != 1:
            raise ReferenceDocError(f"allOf with several schemas: {node}")
        out = {**members[0], **out}
    unknown = sorted(set(out) - _HANDLED - _IGNORED)
    if unknown:
        raise ReferenceDocError(f"JSON-schema keywords the reference cannot describe: {unknown}")
    return out


def _scalar(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    if node.get("format") == "date-time":
        return "string (date-time)"
    if isinstance(kind, str):
        return kind
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return "object"
    raise ReferenceDocError(f"a schema without a single type: {node}")


def _type(node: Mapping[str, Any], child: str, has_section: bool) -> str:
    """What a value is: ``string``, ``one of `A`, `B```, ``list of strings``, a link..."""
    node = _unwrap(node)
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if "$ref" in node or (has_section and node.get("type") == "object"):
        return f"object, see {_link(child)}"
    if node.get("type") == "array":
        items = _unwrap(node["items"])
        if "$ref" in items or (has_section and items.get("type") == "object"):
            return f"list of objects, see {_link(child)}"
        if "enum" in items:
            return "list, each " + _type(items, child, has_section=False)
        return f"list of {_scalar(items)}s"
    if node.get("type") == "object":
        values = node.get("additionalProperties")
        if isinstance(values, Mapping) and values:
            return f"map of string to {_scalar(_unwrap(values))}"
        return "object (any fields)"
    return _scalar(node)


def _count(low: int | None, high: int | None, one: str, many: str) -> str | None:
    """E.g. ``1-63 characters`` (with an en dash), ``at most 64 entries``; None if unbounded."""
    if low is not None and high is not None:
        return (
            f"{low}{_DASH}{high} {many}"
            if low != high
            else f"exactly {low} {one if low == 1 else many}"
        )
    if high is not None:
        return f"at most {high} {one if high == 1 else many}"
    if low is not None and low > 0:
        return f"at least {low} {one if low == 1 else many}"
    return None


def _limits(node: Mapping[str, Any]) -> list[str]:
    """A value's constraints in words, e.g. ``at most 512 characters``, ``pattern `^...$```."""
    node = _unwrap(node)
    limits: list[str] = []
    length = _count(node.get("minLength"), node.get("maxLength"), "character", "characters")
    if length:
        limits.append(length)
    if "pattern" in node:
        limits.append(f"pattern `{node['pattern']}`")
    if "minimum" in node:
        limits.append(f"at least {node['minimum']}")
    if "maximum" in node:
        limits.append(f"at most {node['maximum']}")
    if node.get("type") == "array":
        entries = _count(node.get("minItems"), node.get("maxItems"), "entry", "entries")
        if entries:
            limits.append(entries)
        items = _unwrap(node["items"])
        if "$ref" not in items and items.get("type") != "object":
            each = _limits(items)
            if each:
                limits.append("each " + ", ".join(each))
    if node.get("x-kubernetes-list-type") == "map":
        keys = ", ".join(f"`{k}`" for k in node.get("x-kubernetes-list-map-keys", ()))
        limits.append(f"entries unique by {keys}")
    elif node.get("x-kubernetes-list-type") == "set":
        limits.append("no repeated entries")
    return limits


def _yaml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, int | float):
        return str(value)
    flow = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 16)
    return flow.strip()


def _presence(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    if value is None:
        return "optional"
    return f"default `{_yaml_value(value)}`"


def _entry(name: str, kind: str, presence: str, limits: list[str], description: str) -> str:
    head = " · ".join([f"- **`{name}`** — {kind}", presence, *limits])
    return f"{head}\n\n  {_markdown(description)}" if description else head


class _Crd:
    """The CRD generated from the same model: the CEL rules, list types and the status."""

    def __init__(self) -> None:
        crd = trust_policy_crd()
        version: JSONObject = crd["spec"]["versions"][0]  # type: ignore[index]
        self.root: JSONObject = version["schema"]["openAPIV3Schema"]
        self.columns: list[JSONObject] = version.get("additionalPrinterColumns", [])

    def node(self, path: str) -> JSONObject | None:
        """The schema node at a YAML path (``spec.authorities[]``), if the CRD describes it."""
        node: JSONObject | None = self.root
        for part in path.split(".") if path else ():
            name, in_list = (part[:-2], True) if part.endswith("[]") else (part, False)
            node = (node or {}).get("properties", {}).get(name)
            if node is not None and in_list:
                node = node.get("items")
            if node is None:
                return None
        return node


def _rules(node: Mapping[str, Any] | None) -> list[str]:
    if node is None:
        return []
    rules = [r["message"] for r in node.get("x-kubernetes-validations", ())]
    if not rules:
        return []
    lines = [
        "Rules across fields, by the error a policy that breaks one gets (the CRD carries them "
        "as CEL rules, so `kubectl apply` refuses such a policy):",
        "",
    ]
    lines += [f"- {rule}" for rule in rules]
    return ["", *lines]


def _model_section(path: str, model: type[BaseModel], crd: _Crd) -> tuple[list[str], list[str]]:
    """The lines of one object's section, and the paths of free-form fields the CRD details."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    properties: Mapping[str, Any] = schema.get("properties", {})
    lines = [f"## `{_title(path)}`", ""]
    doc = _docstring(model)
    if doc:
        lines += [doc, ""]
    extra = model.model_config.get("extra")
    if extra == "forbid":
        lines += ["A field not listed here is an error.", ""]
    elif extra == "allow":
        lines += ["Fields not listed here are accepted and not interpreted.", ""]
    crd_details: list[str] = []
    entries: list[str] = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        child = field_path(path, name, field)
        nested, _ = _nested_model(field.annotation)
        crd_node = crd.node(child.removesuffix("[]"))  # the list itself, for list types
        detailed = nested is None and crd_node is not None and "properties" in crd_node
        if detailed:
            crd_details.append(child)
        node = dict(properties[alias])
        for key in ("x-kubernetes-list-type", "x-kubernetes-list-map-keys"):
            if crd_node is not None and key in crd_node:
                node[key] = crd_node[key]
        entries.append(
            _entry(
                alias,
                _type(node, child, has_section=nested is not None or detailed),
                _presence(field),
                _limits(node),
                field.description or "",
            )
        )
    lines += "\n\n".join(entries).splitlines()
    lines += _rules(crd.node(path))
    return lines, crd_details


def _crd_sections(path: str, crd: _Crd) -> Iterator[tuple[str, list[str]]]:
    """Sections, by path, for an object only the CRD describes (the status the operator writes)
    and for the objects inside it."""
    node = crd.node(path)
    assert node is not None
    lines = [f"## `{_title(path)}`", ""]
    if node.get("description"):
        lines += [_markdown(node["description"]), ""]
    if node.get("x-kubernetes-preserve-unknown-fields"):
        lines += ["The apiserver keeps fields not listed here.", ""]
    required = set(node.get("required", ()))
    entries: list[str] = []
    nested: list[str] = []
    for name, child_node in node.get("properties", {}).items():
        items = child_node.get("items", {})
        in_list = child_node.get("type") == "array" and "properties" in items
        child = _join(path, name + ("[]" if in_list else ""))
        has_section = in_list or "properties" in child_node
        if has_section:
            nested.append(child)
        entries.append(
            _entry(
                name,
                _type(child_node, child, has_section=has_section),
                "always set" if name in required else "optional",
                _limits(child_node),
                child_node.get("description", ""),
            )
        )
    lines += "\n\n".join(entries).splitlines()
    yield path, lines
    for child in nested:
        yield from _crd_sections(child, crd)


def _columns(crd: _Crd) -> list[str]:
    lines = [
        f"## `kubectl get {PLURAL}`",
        "",
        "The columns `kubectl get` shows (`-o wide` adds those marked wide):",
        "",
        "| Column | Value |",
        "|---|---|",
    ]
    for column in crd.columns:
        wide = " (wide)" if column.get("priority", 0) > 0 else ""
        lines.append(f"| {column['name']}{wide} | `{column['jsonPath']}` |")
    return lines


def render_reference() -> str:
    """docs/trustpolicy-reference.md: every field of the TrustPolicy model, as Markdown.

    Raises:
        ReferenceDocError: the model uses a construct the generator cannot describe.
    """
    crd = _Crd()
    sections: list[list[str]] = []
    paths: list[str] = []
    details: list[str] = []
    for path, model in model_sections():
        lines, free_form = _model_section(path, model, crd)
        sections.append(lines)
        paths.append(path)
        details += free_form
    for detail in details:  # the status, after everything a person writes
        for path, lines in _crd_sections(detail, crd):
            sections.append(lines)
            paths.append(path)
    sections.append(_columns(crd))
    shorts = ", ".join(f"`{s}`" for s in SHORT_NAMES)
    head = [
        "# TrustPolicy reference",
        "",
        "For people who write or review TrustPolicies: every field, its type, its default and "
        "its limits.",
        "",
        "<!-- Generated from operator/signgate/policy/model.py; do not edit. Regenerate with:",
        f"     {REGENERATE}",
        "     (tests/unit/test_reference_doc.py fails when this file drifts from the model.) -->",
        "",
        f"A TrustPolicy is a cluster-scoped custom resource (`apiVersion: {API_VERSION}`, "
        f"`kind: {KIND}`, plural `{PLURAL}`, short name {shorts}). `signgate verify --policy` "
        "and `signgate serve --policy` read the same objects from YAML files. What the fields "
        "mean together is in [concepts.md](concepts.md); complete policies for common setups "
        "are in [recipes.md](recipes.md).",
        "",
        "Sections are named by their path in the YAML; `[]` stands for each entry of a list. "
        "Limits are checked when the policy is read, by the apiserver (the CRD is generated from "
        "the same model) and by signgate.",
        "",
        "Contents:",
        "",
    ]
    head += [f"- {_link(path)}" for path in paths]
    head.append(f"- [`kubectl get {PLURAL}`](#{_anchor(f'kubectl get {PLURAL}')})")
    body = "\n\n".join("\n".join(section) for section in sections)
    return "\n".join(head) + "\n\n" + body + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_reference())
