"""The TrustPolicy CRD is generated from the model, is structural, and agrees with the model.

What the apiserver does with the CRD is emulated here offline: the openAPIV3Schema is checked
with jsonschema (after pruning nulls, as the apiserver does), list-type maps for unique keys, and
every ``x-kubernetes-validations`` rule is evaluated with a CEL interpreter.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import cel
import pytest
import yaml
from jsonschema import Draft4Validator
from pydantic import BaseModel, Field, ValidationError

from signgate.cli import main
from signgate.policy.generate.crd import (
    HEADER,
    CRDSchemaError,
    render_crd,
    structural_schema,
    trust_policy_crd,
)
from signgate.policy.model import CRD_NAME, TrustPolicy

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "deploy" / "crds" / f"{CRD_NAME}.yaml"
REGENERATE = f"uv run signgate crd > {COMMITTED.relative_to(ROOT)}"

KEY = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGmsWpZNuu+SUX70n3lVK4JLsaoV7\n"
    "T+rhea2rQUu29EQiatoLB06QdsmSd+GsQGlQzfcDtsKPzb+B2zLggrWZjg==\n"
    "-----END PUBLIC KEY-----\n"
)
GITHUB = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main"

JSON = dict[str, Any]


@pytest.fixture(scope="module")
def crd() -> JSON:
    return trust_policy_crd()


def openapi(crd: JSON) -> JSON:
    schema: JSON = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def policy(spec: JSON, name: str = "release-images") -> JSON:
    return {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def design_spec() -> JSON:
    """The shape of design.md's TrustPolicy, every field set."""
    return {
        "images": ["registry.example.com/release/**"],
        "excludeImages": ["registry.example.com/release/scratch/*"],
        "namespaceSelector": {
            "matchLabels": {"signgate.dev/enforce": "true"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["prod"]}],
        },
        "mode": "Enforce",
        "authorities": [
            {"name": "release-key", "key": {"pem": KEY}, "transparencyLog": "Ignore"},
            {"name": "ci", "keyless": {"issuer": GITHUB, "subject": WORKFLOW}},
        ],
        "threshold": 1,
        "required": [],
        "signatureRepository": "",
        "requireDigest": False,
        "attestations": [
            {"predicateType": "https://slsa.dev/provenance/v1", "authorities": ["ci"]}
        ],
    }


# --- an offline stand-in for the apiserver's validation of a custom resource ---------------------


def _prune_nulls(schema: JSON, value: Any) -> Any:
    """The apiserver drops null values of non-nullable fields before it validates."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else {})
            if item is None and not sub.get("nullable"):
                continue
            out[key] = _prune_nulls(sub, item)
        return out
    if isinstance(value, list):
        return [_prune_nulls(schema.get("items", {}), item) for item in value]
    return value


def _extension_errors(schema: JSON, value: Any, path: str) -> Iterator[str]:
    """List-type map keys and CEL rules, evaluated bottom-up like the apiserver does."""
    if isinstance(value, dict) and schema.get("type") == "object":
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                yield from _extension_errors(sub, item, f"{path}.{key}")
    if isinstance(value, list) and schema.get("type") == "array":
        for index, item in enumerate(value):
            yield from _extension_errors(schema["items"], item, f"{path}[{index}]")
        if schema.get("x-kubernetes-list-type") == "map":
            keys = schema["x-kubernetes-list-map-keys"]
            seen = [tuple(item.get(k) for k in keys) for item in value if isinstance(item, dict)]
            for repeated in sorted({k for k in seen if seen.count(k) > 1}):
                yield f"{path}: Duplicate value: {repeated}"
    for rule in schema.get("x-kubernetes-validations", []):
        try:
            ok = cel.evaluate(rule["rule"], {"self": value})
        except Exception as exc:  # an evaluation error rejects the object, as in the apiserver
            yield f"{path}: rule {rule['rule']!r} failed to evaluate: {exc}"
            continue
        if ok is not True:
            yield f"{path}: {rule['message']}"


def apiserver_errors(crd: JSON, obj: JSON) -> list[str]:
    """Why the apiserver would refuse ``obj`` (after pruning nulls); empty if it admits it."""
    schema = openapi(crd)
    obj = _prune_nulls(schema, copy.deepcopy(obj))
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in Draft4Validator(schema).iter_errors(obj)
    ]
    return errors + list(_extension_errors(schema, obj, ""))


def model_error(obj: JSON) -> str | None:
    try:
        TrustPolicy.model_validate(obj)
    except ValidationError as exc:
        return str(exc)
    return None


# --- the committed file and the CLI ---------------------------------------------------------------


def test_committed_crd_is_what_signgate_crd_prints() -> None:
    assert COMMITTED.is_file(), f"{COMMITTED} is missing; generate it with: {REGENERATE}"
    assert COMMITTED.read_text() == render_crd("yaml"), (
        f"{COMMITTED.relative_to(ROOT)} has drifted from the TrustPolicy model; "
        f"regenerate it with: {REGENERATE}"
    )


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_signgate_crd_prints_the_crd(
    output: Literal["yaml", "json"], capsys: pytest.CaptureFixture[str], crd: JSON
) -> None:
    assert main(["crd", "--output", output]) == 0
    printed = capsys.readouterr().out
    assert (yaml.safe_load if output == "yaml" else json.loads)(printed) == crd


def test_yaml_output_starts_with_the_do_not_edit_header() -> None:
    text = render_crd("yaml")
    assert text.startswith("# generated by `signgate crd`; do not edit\n")
    assert text.startswith(HEADER)


# --- what the CRD declares ------------------------------------------------------------------------


def test_crd_declares_a_cluster_scoped_trustpolicy_with_one_stored_version(crd: JSON) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "trustpolicies.signgate.dev"
    spec = crd["spec"]
    assert spec["group"] == "signgate.dev"
    assert spec["scope"] == "Cluster"
    assert spec["names"] == {
        "kind": "TrustPolicy",
        "listKind": "TrustPolicyList",
        "plural": "trustpolicies",
        "singular": "trustpolicy",
        "shortNames": ["tp"],
    }
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns_show_mode_authorities_ready_recent_decisions_and_age(crd: JSON) -> None:
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0)) for c in columns] == [
        ("Mode", "string", ".spec.mode", 0),
        ("Authorities", "integer", ".status.authorities", 0),
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Allowed(1h)", "integer", ".status.recentDecisions.allowed", 0),
        ("Denied(1h)", "integer", ".status.recentDecisions.denied", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
        # -o wide only: a reason is long.
        ("Last Denial", "string", ".status.recentDecisions.lastDenial.reason", 1),
    ]


def test_status_has_conditions_and_counters_and_keeps_unknown_fields(crd: JSON) -> None:
    status = openapi(crd)["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert status["properties"]["observedGeneration"]["type"] == "integer"
    assert status["properties"]["authorities"]["type"] == "integer"
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }


def test_the_status_the_operator_writes_is_valid(crd: JSON) -> None:
    obj = policy(design_spec())
    obj["status"] = {
        "observedGeneration": 3,
        "authorities": 2,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "Invalid",
                "message": "authority 'release-key': not a PEM public key",
                "observedGeneration": 3,
                "lastTransitionTime": "2026-11-22T02:42:46Z",
            }
        ],
        "kopf": {"progress": {}},
    }
    assert apiserver_errors(crd, obj) == []
    obj["status"]["conditions"][0]["status"] = "false"
    assert apiserver_errors(crd, obj) != []


def test_every_field_has_a_description_for_kubectl_explain(crd: JSON) -> None:
    undocumented = [
        path
        for path, node in walk(openapi(crd)["properties"]["spec"], ".spec")
        if not path.endswith("[]") and not path.endswith("[*]") and not node.get("description")
    ]
    assert undocumented == []


# --- structural schema ----------------------------------------------------------------------------

# JSONSchemaProps of apiextensions.k8s.io/v1 (the keywords a CRD schema may use at all).
K8S_KEYWORDS = {
    "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties", "required", "items",
    "allOf", "oneOf", "anyOf", "not", "properties", "additionalProperties", "nullable",
    "example", "externalDocs", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations",
}  # fmt: skip
# Forbidden inside anyOf/oneOf/allOf/not (structural schema rule 3).
NOT_IN_JUNCTORS = {"description", "type", "default", "additionalProperties", "nullable"}


def walk(node: JSON, path: str) -> Iterator[tuple[str, JSON]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}[*]")


def structural_problems(schema: JSON) -> list[str]:
    """What the apiserver would object to in a CRD's openAPIV3Schema (the checks we can do)."""
    problems = []
    for path, node in walk(schema, ""):
        where = path or "."
        for key in set(node) - K8S_KEYWORDS:
            problems.append(f"{where}: {key!r} is not a Kubernetes schema keyword")
        if "title" in node:
            problems.append(f"{where}: title (dropped by convention)")
        if not (
            isinstance(node.get("type"), str)
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ):
            problems.append(f"{where}: no type")
        if node.get("additionalProperties") is False:
            problems.append(f"{where}: additionalProperties: false")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: properties and additionalProperties together")
        if node.get("uniqueItems"):
            problems.append(f"{where}: uniqueItems: true")
        for junctor in ("anyOf", "oneOf", "allOf"):
            for member in node.get(junctor, []):
                if set(member) & NOT_IN_JUNCTORS and not node.get("x-kubernetes-int-or-string"):
                    problems.append(
                        f"{where}: {junctor} member sets {set(member) & NOT_IN_JUNCTORS}"
                    )
                for name in member.get("properties", {}):
                    if name not in node.get("properties", {}):
                        problems.append(f"{where}: {junctor} field {name} not declared outside")
        if isinstance(node.get("not"), dict) and set(node["not"]) & NOT_IN_JUNCTORS:
            problems.append(f"{where}: not sets {set(node['not']) & NOT_IN_JUNCTORS}")
        if node.get("x-kubernetes-list-type") == "map":
            items = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                if (
                    key not in items.get("required", [])
                    and "default" not in items["properties"][key]
                ):
                    problems.append(
                        f"{where}: list map key {key} is neither required nor defaulted"
                    )
        for rule in node.get("x-kubernetes-validations", []):
            if not (isinstance(rule.get("rule"), str) and isinstance(rule.get("message"), str)):
                problems.append(f"{where}: CEL rule without rule and message: {rule}")
        if "default" in node and list(Draft4Validator(node).iter_errors(node["default"])):
            problems.append(f"{where}: default {node['default']!r} does not validate")
    metadata = schema.get("properties", {}).get("metadata", {})
    if set(metadata.get("properties", {})) - {"name", "generateName"}:
        problems.append(".metadata: only name and generateName may be restricted")
    return problems


def test_openapi_schema_is_structural(crd: JSON) -> None:
    assert structural_problems(openapi(crd)) == []
    assert "$ref" not in json.dumps(openapi(crd))


def test_the_structural_check_would_catch_pydantics_own_schema() -> None:
    raw = TrustPolicy.model_json_schema(by_alias=True)
    raw.pop("$defs")
    problems = "\n".join(structural_problems(raw))
    assert "'$ref' is not a Kubernetes schema keyword" in problems
    assert "additionalProperties: false" in problems
    assert "title" in problems
    assert ": no type" in problems  # an anyOf [X, null] node


# --- the converter on constructs the TrustPolicy model does not (yet) use ---------------------


class _Inner(BaseModel):
    """Inner's docstring."""

    a: int = 1


class _Constructs(BaseModel):
    defaulted_optional: int | None = 5
    required_optional: int | None
    none_optional: _Inner | None = Field(default=None, description="the field's own words")
    int_or_string: int | str = 3
    positive: float = Field(default=1.0, gt=0)
    constant: Literal["only"] = "only"
    names: set[str] = Field(default_factory=set)
    free_form: dict[str, object] = Field(default_factory=dict)


def test_converter_maps_each_pydantic_construct() -> None:
    schema = structural_schema(_Constructs)
    props = schema["properties"]
    assert schema["required"] == ["required_optional"]
    # null is a value of its own when the default is something else, or there is none
    assert props["defaulted_optional"] == {"type": "integer", "nullable": True, "default": 5}
    assert props["required_optional"] == {"type": "integer", "nullable": True}
    # a None default is just absence: no nullable, no default, the field's description wins
    assert props["none_optional"] == {
        "description": "the field's own words",
        "type": "object",
        "properties": {"a": {"type": "integer", "default": 1}},
    }
    assert props["int_or_string"] == {"x-kubernetes-int-or-string": True, "default": 3}
    assert props["positive"] == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "default": 1.0,
    }
    assert props["constant"] == {"type": "string", "enum": ["only"], "default": "only"}
    assert props["names"]["x-kubernetes-list-type"] == "set"
    assert props["free_form"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert structural_problems(schema) == []


class _Node(BaseModel):
    children: list[_Node] = []


class _Union(BaseModel):
    value: int | str | bytes


class _Tuple(BaseModel):
    pair: tuple[int, str]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_Node, "recursive model _Node cannot be inlined"),
        (_Union, "a union other than"),
        (_Tuple, "'prefixItems' has no structural-schema equivalent"),
    ],
)
def test_converter_refuses_what_a_structural_schema_cannot_express(
    model: type[BaseModel], message: str
) -> None:
    with pytest.raises(CRDSchemaError, match=message):
        structural_schema(model)


def test_an_overlay_for_a_missing_field_is_an_error() -> None:
    with pytest.raises(CRDSchemaError, match="no field 'nope'"):
        structural_schema(_Inner, {"_Inner": {"nope": {"maxItems": 1}}})
    with pytest.raises(CRDSchemaError, match="not in the schema"):
        structural_schema(_Inner, {"Elsewhere": {"": {"maxItems": 1}}})


# --- the CRD accepts what the model accepts -------------------------------------------------------


def _example_policies() -> list[JSON]:
    documents = list(yaml.safe_load_all((ROOT / "examples" / "policy.yaml").read_text()))
    return [d for d in documents if d]


def test_the_example_policy_file_is_accepted(crd: JSON) -> None:
    for document in _example_policies():
        assert model_error(document) is None
        assert apiserver_errors(crd, document) == []


def test_a_typo_in_an_enum_is_rejected(crd: JSON) -> None:
    spec = design_spec() | {"mode": "enforce"}
    assert any("'enforce' is not one of" in e for e in apiserver_errors(crd, policy(spec)))


def test_a_policy_without_images_is_rejected(crd: JSON) -> None:
    spec = design_spec()
    del spec["images"]
    assert any("'images' is a required property" in e for e in apiserver_errors(crd, policy(spec)))


Mutation = Callable[[JSON], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(spec: JSON) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


_DELETE = object()
REQUIRED = {"images", "authorities"}
KEYLESS_RE = {"issuerRegExp": r"https://token\.actions\..*", "subjectRegExp": ".*@refs/tags/.*"}

# (description, mutation of design_spec(), whether the model accepts the result)
AGREEMENT_CASES: list[tuple[str, Mutation, bool]] = [
    ("design.md shape", _set("mode", "Enforce"), True),
    ("Warn mode", _set("mode", "Warn"), True),
    ("Audit mode", _set("mode", "Audit"), True),
    ("mode typo", _set("mode", "enforce"), False),
    ("only what is required", lambda s: [s.pop(k) for k in set(s) - REQUIRED], True),
    ("no images", _set("images", _DELETE), False),
    ("empty images", _set("images", []), False),
    ("empty pattern", _set("images", [""]), False),
    ("no authorities", _set("authorities", _DELETE), False),
    ("empty authorities", _set("authorities", []), False),
    ("threshold = authorities", _set("threshold", 2), True),
    ("threshold > authorities", _set("threshold", 3), False),
    ("threshold 0 with attestations", _set("threshold", 0), True),
    (
        "threshold 0 without attestations",
        lambda s: [s.update(threshold=0), s.pop("attestations", None)],
        False,
    ),
    ("signedIdentity ImageRepository", _set("signedIdentity", {"match": "ImageRepository"}), True),
    (
        "signedIdentity Repositories",
        _set("signedIdentity", {"match": "Repositories", "repositories": ["a.example/**"]}),
        True,
    ),
    ("signedIdentity Repositories, none", _set("signedIdentity", {"match": "Repositories"}), False),
    (
        "signedIdentity repositories without Repositories",
        _set("signedIdentity", {"repositories": ["a.example/**"]}),
        False,
    ),
    ("signedIdentity typo", _set("signedIdentity", {"match": "imageRepository"}), False),
    ("indexCoversChildren", _set("indexCoversChildren", True), True),
    (
        "certificateAuthority",
        _set("authorities.1", {"name": "ci", "certificateAuthority": {"pem": "x", "subject": "a"}}),
        True,
    ),
    (
        "certificateAuthority and key",
        _set("authorities.0.certificateAuthority", {"pem": "x"}),
        False,
    ),
    (
        "certificateAuthority with subject and subjectRegExp",
        _set(
            "authorities.1",
            {
                "name": "ci",
                "certificateAuthority": {"pem": "x", "subject": "a", "subjectRegExp": "a"},
            },
        ),
        False,
    ),
    (
        "condition equals",
        _set("attestations.0.conditions", [{"field": "runDetails.builder.id", "equals": "x"}]),
        True,
    ),
    (
        "condition oneOf",
        _set("attestations.0.conditions", [{"field": "a.0.b", "oneOf": ["x", "y"]}]),
        True,
    ),
    (
        "condition with two operators",
        _set("attestations.0.conditions", [{"field": "a", "equals": "x", "matches": "x"}]),
        False,
    ),
    ("condition without operator", _set("attestations.0.conditions", [{"field": "a"}]), False),
    (
        "condition on an empty path segment",
        _set("attestations.0.conditions", [{"field": "a..b", "equals": "x"}]),
        False,
    ),
    ("required names an authority", _set("required", ["ci"]), True),
    ("required names both", _set("required", ["ci", "release-key"]), True),
    ("required names a stranger", _set("required", ["ci", "mallory"]), False),
    ("required name not a DNS label", _set("required", ["CI"]), False),
    ("repeated authority name", _set("authorities.1.name", "release-key"), False),
    ("authority name not a DNS label", _set("authorities.0.name", "Release_Key"), False),
    (
        "key and keyless",
        _set("authorities.0.keyless", {"issuer": GITHUB, "subject": WORKFLOW}),
        False,
    ),
    ("neither key nor keyless", _set("authorities.1.keyless", _DELETE), False),
    ("key: null beside keyless", _set("authorities.1.key", None), True),
    (
        "secretRef",
        _set("authorities.0.key", {"secretRef": {"name": "keys", "namespace": "signgate"}}),
        True,
    ),
    ("pem and secretRef", _set("authorities.0.key.secretRef", {"name": "keys"}), False),
    ("neither pem nor secretRef", _set("authorities.0.key", {}), False),
    ("secretRef without name", _set("authorities.0.key", {"secretRef": {"key": "k"}}), False),
    ("keyless regexps", _set("authorities.1.keyless", KEYLESS_RE), True),
    ("issuer and issuerRegExp", _set("authorities.1.keyless.issuerRegExp", ".*"), False),
    ("subject and subjectRegExp", _set("authorities.1.keyless.subjectRegExp", ".*"), False),
    ("no issuer", _set("authorities.1.keyless.issuer", _DELETE), False),
    ("no subject", _set("authorities.1.keyless.subject", _DELETE), False),
    ("transparencyLog typo", _set("authorities.0.transparencyLog", "require"), False),
    ("transparencyLog: null", _set("authorities.0.transparencyLog", None), True),
    ("bad selector operator", _set("namespaceSelector.matchExpressions.0.operator", "in"), False),
    ("non-string label value", _set("namespaceSelector.matchLabels", {"a": 1}), False),
    ("namespaceSelector: null", _set("namespaceSelector", None), True),
    ("long signatureRepository", _set("signatureRepository", "r/" * 300), False),
    ("attestation without predicateType", _set("attestations", [{"authorities": []}]), False),
]


@pytest.mark.parametrize(
    ("mutate", "model_accepts"),
    [pytest.param(m, ok, id=name) for name, m, ok in AGREEMENT_CASES],
)
def test_the_crd_accepts_exactly_what_the_model_accepts(
    crd: JSON, mutate: Mutation, model_accepts: bool
) -> None:
    spec = design_spec()
    mutate(spec)
    obj = policy(spec)
    assert (model_error(obj) is None) is model_accepts, model_error(obj)
    errors = apiserver_errors(crd, obj)
    assert (errors == []) is model_accepts, errors
    assert not any("failed to evaluate" in e for e in errors), errors


def test_every_cel_rule_rejects_at_least_one_case(crd: JSON) -> None:
    messages = set()
    for _, mutate, _ in AGREEMENT_CASES:
        spec = design_spec()
        mutate(spec)
        messages.update(e.split(": ", 1)[1] for e in apiserver_errors(crd, policy(spec)))
    rules = [
        rule["message"]
        for _, node in walk(openapi(crd), "")
        for rule in node.get("x-kubernetes-validations", [])
    ]
    assert len(rules) == 10
    assert set(rules) <= messages


# Where the CRD is knowingly looser than the model: the operator's model validation (reported in
# status, Ready=False) is the backstop for these.
KNOWN_GAPS: list[tuple[str, Mutation]] = [
    # pruned by the apiserver (kubectl's strict field validation rejects it first)
    ("unknown field", _set("mdoe", "Warn")),
    # CEL has no "is this a valid regular expression" check
    ("invalid issuerRegExp", _set("authorities.1.keyless", KEYLESS_RE | {"issuerRegExp": "("})),
    # bounding this rule's cost would take limits the model does not have
    ("attestation names a stranger", _set("attestations.0.authorities", ["mallory"])),
]


@pytest.mark.parametrize("mutate", [pytest.param(m, id=name) for name, m in KNOWN_GAPS])
def test_known_gaps_are_caught_by_the_model_only(crd: JSON, mutate: Mutation) -> None:
    spec = design_spec()
    mutate(spec)
    assert model_error(policy(spec)) is not None
    assert apiserver_errors(crd, policy(spec)) == []
