"""TrustPolicies (`signgate.policy`): YAML files (``--policy``) parsed, validated and compiled.

A policy is configuration, not attacker input, but a bad one must still be refused with a
`PolicyError` naming the file and the field (exit status 2), never a traceback. Every document
that is a mapping with a ``spec`` is also fed to `broken_policy`, the operator's fallback for a
TrustPolicy that does not validate, which must not raise either.
"""

from __future__ import annotations

import json

import yaml

from fuzz.harness import refused, text
from signgate.errors import PolicyError
from signgate.policy.compiled import broken_policy, compile_policy
from signgate.policy.loading import parse_policies

ACCEPTED: tuple[type[Exception], ...] = (PolicyError,)


def _as_custom_resource(document: object) -> object:
    """What the apiserver would hand the operator: JSON (string keys, no YAML-only types)."""
    return json.loads(json.dumps(document, default=str))


def _broken(value: str) -> None:
    try:
        documents = list(yaml.safe_load_all(value))
    except (yaml.YAMLError, ValueError, RecursionError):
        return
    for document in documents:
        resource = _as_custom_resource(document) if isinstance(document, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("spec"), dict):
            broken_policy("fuzz", resource["spec"], "does not validate", source="fuzz.yaml")


def run(data: bytes) -> None:
    value = text(data)
    _broken(value)
    for policy in parse_policies(value, "fuzz.yaml"):
        with refused(*ACCEPTED):
            compiled = compile_policy(policy, source="fuzz.yaml")
            compiled.governs("registry.example.com/release/app")
