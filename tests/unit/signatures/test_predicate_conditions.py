"""Conditions on attestation predicates: the small form a policy author reads at a glance."""

from __future__ import annotations

import pytest

from signgate.signatures.predicate import PredicateCondition, first_failure

SLSA_V1 = {
    "buildDefinition": {
        "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
        "externalParameters": {"workflow": {"ref": "refs/tags/v1.2.3"}},
        "resolvedDependencies": [{"uri": "git+https://github.com/org/app@refs/tags/v1.2.3"}],
    },
    "runDetails": {"builder": {"id": "https://github.com/actions/runner"}, "metadata": {"n": 3}},
    "reproducible": True,
}


BUILDER, BUILD_TYPE = "runDetails.builder.id", "buildDefinition.buildType"
DEPENDENCY = "buildDefinition.resolvedDependencies.0.uri"
RUNNER = "https://github.com/actions/runner"
C = PredicateCondition
NO_FIELD = "predicate has no field"


@pytest.mark.parametrize(
    ("condition", "failure"),
    [
        (C(BUILDER, "equals", (RUNNER,)), None),
        (C(BUILD_TYPE, "matches", (r"https://slsa-framework\.github\.io/.*",)), None),
        (C(DEPENDENCY, "matches", (r"git\+https://github\.com/org/.*",)), None),
        (C("runDetails.metadata.n", "oneOf", ("2", "3")), None),
        (C("reproducible", "equals", ("true",)), None),
        (
            C(BUILDER, "equals", ("https://evil.example/runner",)),
            f"predicate field {BUILDER} is '{RUNNER}', not {BUILDER} = https://evil.example/runner",
        ),
        # Full match: a prefix is not enough.
        (
            C(BUILDER, "matches", ("https://github.com",)),
            f"not {BUILDER} matches /https://github.com/",
        ),
        (C("runDetails.builder.name", "equals", ("x",)), f"{NO_FIELD} runDetails.builder.name"),
        (C("buildDefinition.resolvedDependencies.5.uri", "equals", ("x",)), NO_FIELD),
        (C("runDetails.builder", "equals", ("x",)), "is not a string, number or boolean"),
        (C("reproducible.deeper", "equals", ("x",)), NO_FIELD),
        # Found while writing the fuzz target: '²' is str.isdigit() but int() refuses it.
        (C("buildDefinition.resolvedDependencies.²", "equals", ("x",)), NO_FIELD),
    ],
)
def test_conditions(condition: PredicateCondition, failure: str | None) -> None:
    result = condition.failure(SLSA_V1)
    if failure is None:
        assert result is None
    else:
        assert result is not None
        assert failure in result


def test_all_conditions_must_hold_and_the_first_failure_is_named() -> None:
    ok = PredicateCondition("reproducible", "equals", ("true",))
    bad = PredicateCondition("runDetails.metadata.n", "equals", ("4",))
    assert first_failure([ok], SLSA_V1) is None
    assert first_failure([ok, bad], SLSA_V1) == (
        "predicate field runDetails.metadata.n is '3', not runDetails.metadata.n = 4"
    )
    assert first_failure([ok], None) == "predicate has no field reproducible"
