"""Attacks and bad signatures, each built from real parts in a real registry: each must be denied
with a reason that says what was wrong."""

from __future__ import annotations

import base64
import secrets
import time

from signgate.policy.compiled import compile_policy
from signgate.policy.loading import parse_policies
from support import signer
from support.engine import Checker, key_policy
from support.formats import (
    SIGNATURE_ANNOTATION,
    Layer,
    PrivateKey,
    generate_key,
    public_key_pem,
    signature_tag,
    simple_signing_payload,
)
from support.push import Pusher


def repo() -> str:
    return f"attacks/{secrets.token_hex(4)}"


async def test_wrong_key(pusher: Pusher, check: Checker) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, generate_key())
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(generate_key())])
    assert not decision.allowed
    assert "signature does not verify with key sha256:" in decision.reasons[0]


async def test_tampered_payload(pusher: Pusher, check: Checker) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    signed = await signer.sign_legacy(pusher, name, digest, key)
    # Same signature, payload with one byte changed (extra whitespace after the JSON).
    tampered = Layer(signed.layer.blob + b" ", annotations=dict(signed.layer.annotations))
    await signer.push_signature_manifest(pusher, name, signature_tag(digest), [tampered])
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    assert not decision.allowed
    assert "does not verify" in decision.reasons[0]


async def test_signature_copied_from_another_image(pusher: Pusher, check: Checker) -> None:
    name = repo()
    signed_digest = await pusher.push_random_image(name, "signed")
    victim_digest = await pusher.push_random_image(name, "victim")
    key = generate_key()
    await signer.sign_legacy(pusher, name, signed_digest, key)
    # Replay: the valid .sig manifest of one image under the other image's .sig tag.
    await pusher.copy_manifest(
        name, signature_tag(signed_digest), name, signature_tag(victim_digest)
    )
    decision = await check(f"{pusher.host}/{name}:victim", [key_policy(key)])
    assert not decision.allowed
    assert f"signature is for {signed_digest}, not {victim_digest}" in decision.reasons[0]
    # The genuine image still verifies.
    assert (await check(f"{pusher.host}/{name}:signed", [key_policy(key)])).allowed


async def test_bundle_for_another_digest_is_replayed(pusher: Pusher, check: Checker) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    other = await pusher.push_random_image(name, "other")
    key = generate_key()
    # A valid bundle whose statement names the other image, attached to this one.
    await signer.sign_bundle_v3(pusher, name, digest, key, subject_digest=other)
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    assert not decision.allowed
    assert f"signature is for sha256:{other[7:19]}…, not {digest}" in decision.reasons[0]


async def test_attestation_is_not_a_signature(pusher: Pusher, check: Checker) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    await signer.sign_bundle_v3(
        pusher,
        name,
        digest,
        key,
        predicate_type="https://slsa.dev/provenance/v1",
        predicate={"buildDefinition": {"buildType": "x"}},
    )
    await signer.attest_legacy(pusher, name, digest, key, "https://cyclonedx.org/bom", {})
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    assert not decision.allowed
    assert (
        "attestation of type https://slsa.dev/provenance/v1, not a signature" in decision.reasons[0]
    )


async def test_non_signature_layer_with_signature_annotation(
    pusher: Pusher, check: Checker
) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    signed = await signer.sign_legacy(pusher, name, digest, key)
    # The same, validly signed bytes, but declared as text/plain: not a cosign payload.
    layer = Layer(signed.layer.blob, media_type="text/plain", annotations=signed.layer.annotations)
    await signer.push_signature_manifest(pusher, name, signature_tag(digest), [layer])
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    assert not decision.allowed
    assert "'text/plain' carries a signature annotation but is not a cosign" in decision.reasons[0]


async def test_thousand_layer_signature_manifest_is_refused_quickly(
    pusher: Pusher, check: Checker
) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    signed = await signer.sign_legacy(pusher, name, digest, key)
    junk = Layer(signed.layer.blob, annotations={SIGNATURE_ANNOTATION: "AAAA"})
    await signer.push_signature_manifest(pusher, name, signature_tag(digest), [junk] * 1000)
    started = time.monotonic()
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    elapsed = time.monotonic() - started
    assert not decision.allowed
    # difference: limits
    assert "1000 layers (limit 128)" in decision.reasons[0]
    assert elapsed < 10  # generous: one manifest fetch, no blob fetches


async def test_many_signatures_are_capped_but_a_valid_one_in_range_counts(
    pusher: Pusher, check: Checker
) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    signed = await signer.sign_legacy(pusher, name, digest, key)
    bogus = Layer(signed.layer.blob, annotations={SIGNATURE_ANNOTATION: "AAAA"})
    layers = [bogus] * 40 + [signed.layer]
    await signer.push_signature_manifest(pusher, name, signature_tag(digest), layers)
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    # difference: limits
    assert not decision.allowed  # the valid one is the 41st: past the cap of 32
    assert any("examined the first 32" in note for note in decision.notes)
    await signer.push_signature_manifest(
        pusher, name, signature_tag(digest), [signed.layer, *layers]
    )
    assert (await check(f"{pusher.host}/{name}:v1", [key_policy(key)])).allowed


async def test_malformed_signature_annotation_and_payload(pusher: Pusher, check: Checker) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    payload = simple_signing_payload(f"{pusher.host}/{name}", digest)
    layers = [
        Layer(payload, annotations={SIGNATURE_ANNOTATION: "not base64!"}),
        Layer(payload, annotations={}),
        Layer(b"{not json", annotations={SIGNATURE_ANNOTATION: base64.b64encode(b"x").decode()}),
    ]
    await signer.push_signature_manifest(pusher, name, signature_tag(digest), layers)
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    assert not decision.allowed
    reason = decision.reasons[0]
    assert "signature annotation is not base64" in reason
    assert "layer has no cosign signature annotation" in reason


async def test_signed_garbage_payload_is_refused_after_verification(
    pusher: Pusher, check: Checker
) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    for payload, message in [
        (b"[]", "not an object"),
        (b'{"critical":{"image":{}},"optional":null}', "no critical.image.docker-manifest-digest"),
        (
            b'{"critical":{"identity":{},"image":{"docker-manifest-digest":"%s"},'
            b'"type":"something else"}}' % digest.encode(),
            "payload type is 'something else'",
        ),
        (
            b'{"critical":{"image":{"docker-manifest-digest":"%s","Docker-Manifest-Digest":"x"},'
            b'"type":"cosign container image signature"}}' % digest.encode(),
            "2 'docker-manifest-digest' fields",
        ),
    ]:
        sub = repo()
        sub_digest = await pusher.push_random_image(sub, "v1")
        await signer.sign_legacy(
            pusher,
            sub,
            sub_digest,
            key,
            payload_override=payload.replace(digest.encode(), sub_digest.encode()),
        )
        decision = await check(f"{pusher.host}/{sub}:v1", [key_policy(key)])
        assert not decision.allowed
        assert message in decision.reasons[0], decision.reasons


def two_authority_policy(host: str, a: PrivateKey, b: PrivateKey, extra: str) -> str:
    def pem(key: PrivateKey) -> str:
        return "\n".join(
            "          " + line for line in public_key_pem(key).decode().strip().splitlines()
        )

    return f"""
apiVersion: signgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: two-signers}}
spec:
  images: ["{host}/attacks/**"]
  authorities:
    - name: release
      key:
        pem: |
{pem(a)}
    - name: security
      key:
        pem: |
{pem(b)}
{extra}
"""


async def test_threshold_and_required_signers(pusher: Pusher, check: Checker) -> None:
    release, security = generate_key(), generate_key()
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, release)
    ref = f"{pusher.host}/{name}:v1"

    def policy(extra: str):  # type: ignore[no-untyped-def]
        text = two_authority_policy(pusher.host, release, security, extra)
        return compile_policy(parse_policies(text, "inline")[0])

    assert (await check(ref, [policy("")])).allowed
    two = await check(ref, [policy("  threshold: 2")])
    assert not two.allowed
    assert "needs valid signatures from 2 of [release, security], has 1 (release)" in two.reasons[0]
    required = await check(ref, [policy("  required: [security]")])
    assert not required.allowed
    assert "required authority missing: security" in required.reasons[0]
    # The same key twice does not make two authorities.
    await signer.sign_bundle_v3(pusher, name, digest, release)
    assert not (await check(ref, [policy("  threshold: 2")])).allowed
    await signer.sign_bundle_v3(pusher, name, digest, security)
    both = await check(ref, [policy("  threshold: 2\n  required: [security]")])
    assert both.allowed, both.reasons
    assert set(both.authorities) == {"two-signers/release", "two-signers/security"}


async def test_every_governing_policy_must_be_satisfied(pusher: Pusher, check: Checker) -> None:
    a, b = generate_key(), generate_key()
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, a)
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(a), key_policy(b)])
    assert not decision.allowed
    assert len(decision.reasons) == 1
    assert [o.satisfied for o in decision.outcomes] == [True, False]


async def test_warn_and_audit_modes_allow_with_a_record(pusher: Pusher, check: Checker) -> None:
    a = generate_key()
    name = repo()
    await pusher.push_random_image(name, "v1")
    ref = f"{pusher.host}/{name}:v1"
    for mode, field in [("Warn", "warnings"), ("Audit", "audit")]:
        text = two_authority_policy(pusher.host, a, a, f"  mode: {mode}").replace(
            "name: security", "name: other"
        )
        policy = compile_policy(parse_policies(text, "inline")[0])
        decision = await check(ref, [policy])
        assert decision.allowed
        assert "no signature found" in getattr(decision, field)[0]
        assert decision.reasons == ()


async def test_unmatched_image_is_denied_by_default(pusher: Pusher, check: Checker) -> None:
    text = two_authority_policy(pusher.host, generate_key(), generate_key(), "")
    policy = compile_policy(parse_policies(text, "inline")[0])
    decision = await check(f"{pusher.host}/elsewhere/app:v1", [policy])
    assert not decision.allowed
    assert "no TrustPolicy governs" in decision.reasons[0]
