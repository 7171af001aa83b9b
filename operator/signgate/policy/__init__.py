"""TrustPolicies: what they may say, and how they judge an image.

* `model`: the ``TrustPolicy`` custom resource as strict pydantic models (the wire format, and
  the one source of truth the CRD and reference doc are generated from by `generate`);
  `loading` reads them from YAML files.
* `compiled`: a policy ready to evaluate (`compile_policy` → `CompiledPolicy`): keys parsed,
  patterns compiled, an identity that changes whenever the policy does.
* `evaluate`: the one decision loop (`evaluate_policy` → `Evaluation`) and the combination of
  every governing policy into an `ImageDecision` (`decide`, `failed`, `unmatched`); `advice`
  says what to do about a denial. No I/O, like the verification core it builds on.
* `patterns`: anchored image patterns; `sources`: where the webhook gets its policies.

This face imports neither pydantic nor YAML: ``signgate verify --key`` needs neither.
"""

from signgate.policy.compiled import CompiledPolicy, compile_policy
from signgate.policy.evaluate import (
    Evaluation,
    ImageDecision,
    PolicyOutcome,
    decide,
    evaluate_policy,
    failed,
    unmatched,
)

__all__ = [
    "CompiledPolicy",
    "Evaluation",
    "ImageDecision",
    "PolicyOutcome",
    "compile_policy",
    "decide",
    "evaluate_policy",
    "failed",
    "unmatched",
]
