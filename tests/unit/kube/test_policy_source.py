"""The cluster policy source and the status it reports, without a cluster."""

from __future__ import annotations

from typing import Any

from signgate.admission.decide import decide_review
from signgate.admission.review import parse_review
from signgate.engine.verifier import Verifier
from signgate.kube.handlers import MAX_CONDITION_MESSAGE, policy_status
from signgate.kube.source import ClusterPolicySource, policy_entry
from signgate.registry import RegistryClient
from support import reviews

PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGmsWpZNuu+SUX70n3lVK4JLsaoV7\n"
    "T+rhea2rQUu29EQiatoLB06QdsmSd+GsQGlQzfcDtsKPzb+B2zLggrWZjg==\n"
    "-----END PUBLIC KEY-----\n"
)


def body(spec: dict[str, Any], generation: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "p", "generation": generation, "uid": "u-1"},
        "spec": spec,
        "status": {"conditions": []},
    }


def test_entries_compile_or_keep_their_error() -> None:
    good = policy_entry(
        body({"images": ["r.example/**"], "authorities": [{"name": "k", "key": {"pem": PEM}}]})
    )
    assert good.error is None
    assert good.policy is not None
    assert good.authorities == 1
    broken = policy_entry(
        body({"images": ["r.example/**"], "authorities": [{"name": "k", "key": {"pem": "x"}}]})
    )
    assert broken.policy is not None and broken.policy.error is not None
    assert broken.policy.governs("r.example/app")
    shapeless = policy_entry(body({"images": []}))
    assert shapeless.policy is not None
    assert shapeless.policy.images == ()  # nothing to govern: its images fall to "unmatched"
    assert "spec.images" in (shapeless.error or "")


def test_a_policy_that_fails_validation_still_governs_its_images() -> None:
    # Dropping it would silently remove a constraint that AND across policies relies on.
    invalid = policy_entry(
        body(
            {
                "images": ["r.example/prod/**", "NOT A PATTERN"],
                "excludeImages": ["also bad!"],
                "mode": "enforce",
                "threshold": 5,
                "authorities": [{"name": "k", "key": {"pem": PEM}}],
            }
        )
    )
    policy = invalid.policy
    assert policy is not None
    assert policy.error is not None
    assert "spec.mode" in policy.error
    assert policy.mode == "Enforce"  # an unreadable mode errs towards enforcing
    assert policy.governs("r.example/prod/app")
    assert not policy.governs("r.example/dev/app")
    warn = policy_entry(body({"images": ["r.example/**"], "mode": "Warn", "threshold": 0}))
    assert warn.policy is not None and warn.policy.mode == "Warn"


def test_status_keeps_transition_time_while_the_state_holds() -> None:
    entry = policy_entry(
        body({"images": ["r.example/**"], "authorities": [{"name": "k", "key": {"pem": PEM}}]})
    )
    first = policy_status(entry, None)
    assert first["observedGeneration"] == 3
    previous = {
        "conditions": [{**first["conditions"][0], "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    }
    again = policy_status(entry, previous)
    assert again["conditions"][0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    long_error = policy_entry(
        body(
            {
                "images": ["r.example/**"],
                "authorities": [{"name": "k", "key": {"pem": "x" * 50_000}}],
            }
        )
    )
    message = policy_status(long_error, previous)["conditions"][0]["message"]
    assert len(message) <= MAX_CONDITION_MESSAGE


async def test_source_is_not_ready_until_indexed_and_reads_namespace_labels() -> None:
    source = ClusterPolicySource()
    assert not source.ready()
    assert source.current() == []
    entry = policy_entry(
        body({"images": ["r.example/**"], "authorities": [{"name": "k", "key": {"pem": PEM}}]})
    )
    source.attach(policies={"p": [entry]}, namespaces={"prod": [{"tier": "prod"}]})
    assert not source.ready()
    source.mark_ready()
    assert source.ready()
    assert len(source.current()) == 1
    assert await source.namespace_labels("prod") == {"tier": "prod"}
    # No policy selects namespaces: a namespace not seen yet needs no read, its name will do.
    assert await source.namespace_labels("new") == {"kubernetes.io/metadata.name": "new"}
    assert await source.namespace_labels(None) is None


async def test_webhook_denies_while_policies_are_not_loaded() -> None:
    source = ClusterPolicySource()
    review = parse_review(
        __import__("json")
        .dumps(reviews.review(reviews.workload("Pod", reviews.pod_spec(["nginx"]))))
        .encode()
    )
    async with RegistryClient() as client:
        verdict = await decide_review(
            review.request,
            mutate=False,
            engine=Verifier(client),
            policies=source,
            deadline_seconds=1,
        )
    assert verdict.allowed is False
    message = verdict.response["response"]["status"]["message"]  # type: ignore[index]
    assert "not loaded yet" in message
