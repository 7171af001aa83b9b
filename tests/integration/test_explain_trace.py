"""``signgate explain`` and admission give the same verdict, from the same decision loop.

explain no longer re-implements the authority-by-signature loop: it renders the `Trace` the engine
fills while it decides. These tests hold that promise against a real registry: for every kind of
image (signed, unsigned, signed by a stranger, both policies failing in different modes), the
verdict explain shows equals the one the admission path (`decide_review`) answers; what explain
shows as checked is what the verdict counted; and explain reads the registry no more than the
verdict alone costs.
"""

from __future__ import annotations

import json
import secrets

import pytest

from signgate.admission.decide import decide_review
from signgate.admission.review import parse_review
from signgate.deadline import Deadline
from signgate.engine.verifier import Verifier
from signgate.explain import explain_image
from signgate.policy.compiled import CompiledPolicy, compile_policy
from signgate.policy.loading import parse_policies
from signgate.policy.sources import StaticPolicySource
from signgate.registry import RegistryClient
from support import reviews, signer
from support.engine import options_for
from support.formats import PrivateKey, generate_key, public_key_pem
from support.push import Pusher
from support.registry import RegistryServer


def _policy(name: str, pattern: str, mode: str, *keys: PrivateKey) -> CompiledPolicy:
    authorities = "".join(
        f"    - name: key-{i}\n      key:\n        pem: |\n"
        + "".join(f"          {line}\n" for line in public_key_pem(k).decode().splitlines())
        for i, k in enumerate(keys, 1)
    )
    text = (
        f"apiVersion: signgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {{name: {name}}}\n"
        f'spec:\n  images: ["{pattern}"]\n  mode: {mode}\n  authorities:\n{authorities}'
    )
    (policy,) = parse_policies(text, source="test")
    return compile_policy(policy, source="test")


@pytest.fixture
async def world(pusher: Pusher) -> tuple[dict[str, str], list[CompiledPolicy]]:
    """Images of every kind under one repository, and two policies that govern them all."""
    name = f"trace/{secrets.token_hex(4)}"
    release, audit, stranger = generate_key(), generate_key(), generate_key()
    both = await pusher.push_random_image(name, "both")
    release_only = await pusher.push_random_image(name, "release-only")
    await pusher.push_random_image(name, "unsigned")
    strangers = await pusher.push_random_image(name, "stranger")
    await signer.sign_legacy(pusher, name, both, release)
    await signer.sign_bundle_v3(pusher, name, both, audit)
    await signer.sign_bundle_v3(pusher, name, release_only, release)
    await signer.sign_legacy(pusher, name, strangers, stranger)
    pattern = f"{pusher.host}/trace/**"
    policies = [
        _policy("release", pattern, "Enforce", release),
        _policy("audited", pattern, "Audit", audit, stranger),
    ]
    tags = ("both", "release-only", "unsigned", "stranger")
    images = {tag: f"{pusher.host}/{name}:{tag}" for tag in tags}
    images["by-digest"] = f"{pusher.host}/{name}@{both}"
    images["missing"] = f"{pusher.host}/{name}:no-such-tag"
    return images, policies


@pytest.mark.parametrize(
    "case", ["both", "release-only", "unsigned", "stranger", "by-digest", "missing"]
)
async def test_explain_and_admission_reach_the_same_verdict_from_the_same_checks(
    registry: RegistryServer,
    world: tuple[dict[str, str], list[CompiledPolicy]],
    case: str,
) -> None:
    images, policies = world
    image = images[case]
    options = options_for(registry)

    # The admission path, in a fresh engine: a Pod that runs the image.
    body = reviews.review(reviews.workload("Pod", reviews.pod_spec([image])))
    request = parse_review(json.dumps(body).encode()).request
    async with RegistryClient(options) as client:
        admitting = Verifier(client)
        verdict = await decide_review(
            request,
            mutate=False,
            engine=admitting,
            policies=StaticPolicySource(policies),
            deadline_seconds=20,
        )
        admission_requests = client.requests_sent
    (admitted,) = verdict.images

    async with RegistryClient(options) as client:
        explaining = Verifier(client)
        explanation = await explain_image(explaining, image, policies, Deadline.after(20))
        explain_requests = client.requests_sent

    # 1. The same verdict, reasons, warnings and audit notes, signer for signer.
    assert explanation.decision == admitted
    assert verdict.allowed is admitted.allowed
    # 2. What explain shows as counted is what the verdict counted, and nothing else.
    counted = {(c.policy, c.subject.split(" ")[1]) for c in explanation.checks if c.satisfied_by}
    assert counted == {(o.policy, s.authority) for o in admitted.outcomes for s in o.signatures}
    for check in explanation.checks:
        if check.satisfied_by is None:
            # An authority that counted nothing says, per signature tried, why not.
            tried = sum(len(f.signatures) for f in explanation.findings)
            assert len(check.rejections) <= tried
    # 3. The registry is read once: explaining costs exactly what deciding costs.
    assert explain_requests == admission_requests


async def test_explain_shows_each_rejection_the_verdict_was_reached_from(
    registry: RegistryServer, world: tuple[dict[str, str], list[CompiledPolicy]]
) -> None:
    images, policies = world
    async with RegistryClient(options_for(registry)) as client:
        explanation = await explain_image(
            Verifier(client), images["stranger"], policies, Deadline.after(20)
        )
    assert not explanation.decision.allowed
    (findings,) = explanation.findings
    assert len(findings.signatures) == 1
    by_subject = {(c.policy, c.subject.split(" ")[1]): c for c in explanation.checks}
    # The release key did not make the signature: one rejection, of signature [1].
    release = by_subject["release", "key-1"]
    assert release.satisfied_by is None
    assert [number for number, _ in release.rejections] == [1]
    assert "does not verify with" in release.rejections[0][1]
    # The audited policy's second key did: signature [1] counts for it.
    assert by_subject["audited", "key-2"].satisfied_by == 1
    # The denial is the release policy's; the audited policy is satisfied, so adds nothing.
    (reason,) = explanation.decision.reasons
    assert "TrustPolicy 'release'" in reason
    assert not explanation.decision.audit
