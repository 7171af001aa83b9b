"""Attestation predicate conditions (`signgate.signatures.predicate`).

The predicate comes from a verified attestation, so its signer chooses it; the field path comes
from a TrustPolicy (any text its model accepts). Evaluation never raises: a field that is absent
or not a scalar fails the condition with a reason.

Input: two fields (see `fuzz.harness.fields`): the field path, then the predicate (JSON).
"""

from __future__ import annotations

from fuzz.harness import fields, text
from signgate.errors import BundleFormatError
from signgate.policy.model import PredicateConditionSpec
from signgate.signatures import _json
from signgate.signatures.predicate import PredicateCondition, first_failure

ACCEPTED: tuple[type[Exception], ...] = ()


def _conditions(field: str) -> list[PredicateCondition]:
    # Only paths the policy model accepts reach evaluation.
    try:
        PredicateConditionSpec.model_validate({"field": field, "equals": "x"})
    except ValueError:
        field = "buildDefinition.buildType"
    return [
        PredicateCondition(field, "equals", ("true",)),
        PredicateCondition(field, "matches", (r"https://github\.com/.*",)),
        PredicateCondition(field, "oneOf", ("1", "a", "null")),
    ]


def run(data: bytes) -> None:
    path, raw = fields(data, 2)
    try:
        predicate = _json.loads(raw, what="predicate", error=BundleFormatError)
    except BundleFormatError:
        return
    conditions = _conditions(text(path))
    for condition in conditions:
        condition.describe()
        reason = condition.failure(predicate)
        assert reason is None or reason
    first_failure(conditions, predicate)
