"""Every cosign storage format and key type, written to a real registry and verified by signgate."""

from __future__ import annotations

import secrets

import pytest

from support import signer
from support.engine import Checker, key_policy
from support.formats import KeyKind, generate_key
from support.push import Pusher


def repo() -> str:
    return f"formats/{secrets.token_hex(4)}"


async def test_unsigned_image_is_denied_with_where_we_looked(
    pusher: Pusher, check: Checker
) -> None:
    name = repo()
    await pusher.push_random_image(name, "v1")
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(generate_key())])
    assert not decision.allowed
    (reason,) = decision.reasons
    assert reason.startswith(f"{pusher.host}/{name}@sha256:")
    assert "no signature found" in reason
    assert "TrustPolicy 'command-line'" in reason


@pytest.mark.parametrize("docker_media_types", [False, True], ids=["oci", "docker"])
async def test_legacy_sig_tag(pusher: Pusher, check: Checker, docker_media_types: bool) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1", docker_media_types=docker_media_types)
    key = generate_key()
    await signer.sign_legacy(pusher, name, digest, key, docker_media_types=docker_media_types)
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    assert decision.allowed, decision.reasons
    assert decision.digest == digest
    assert decision.pinned == f"{pusher.host}/{name}@{digest}"
    (outcome,) = decision.outcomes
    (signature,) = outcome.signatures
    assert signature.format == "cosign .sig tag"
    assert signature.source.endswith(".sig layer 1")


async def test_v2_oci_referrer(pusher: Pusher, check: Checker) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    await signer.sign_referrer_v2(pusher, name, digest, key)
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    assert decision.allowed, decision.reasons
    assert decision.outcomes[0].signatures[0].format == "cosign OCI 1.1 referrer"
    assert any("no referrers API" in note for note in decision.notes)


@pytest.mark.parametrize("old_ggcr", [False, True], ids=["ggcr-fixed", "ggcr<=0.21.5"])
async def test_v3_bundle_referrer(pusher: Pusher, check: Checker, old_ggcr: bool) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    await signer.sign_bundle_v3(pusher, name, digest, key, old_ggcr_fallback=old_ggcr)
    decision = await check(f"{pusher.host}/{name}:v1", [key_policy(key)])
    assert decision.allowed, decision.reasons
    assert decision.outcomes[0].signatures[0].format == "sigstore bundle"


async def test_v3_message_signature_bundle(pusher: Pusher, check: Checker) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    key = generate_key()
    await signer.sign_bundle_v3(pusher, name, digest, key, message_signature=True)
    decision = await check(f"{pusher.host}/{name}@{digest}", [key_policy(key)])
    assert decision.allowed, decision.reasons


@pytest.mark.parametrize(
    "kind", ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-4096", "ed25519"]
)
async def test_every_key_type_in_both_formats(
    pusher: Pusher, check: Checker, kind: KeyKind
) -> None:
    key = generate_key(kind)
    legacy, bundle = repo(), repo()
    legacy_digest = await pusher.push_random_image(legacy, "v1")
    bundle_digest = await pusher.push_random_image(bundle, "v1")
    # cosign signs legacy payloads with Ed25519ph and DSSE with pure Ed25519.
    await signer.sign_legacy(pusher, legacy, legacy_digest, key, ed25519ph=kind == "ed25519")
    await signer.sign_bundle_v3(pusher, bundle, bundle_digest, key)
    policy = key_policy(key)
    for name in (legacy, bundle):
        decision = await check(f"{pusher.host}/{name}:v1", [policy])
        assert decision.allowed, (kind, name, decision.reasons)
    other = key_policy(generate_key(kind))
    for name in (legacy, bundle):
        decision = await check(f"{pusher.host}/{name}:v1", [other])
        assert not decision.allowed
        assert "does not verify with key" in decision.reasons[0]


async def test_ecdsa_p384_signed_with_sha256_still_verifies(pusher: Pusher, check: Checker) -> None:
    # cosign verify --key used SHA-256 for every curve until 2026-07; old signatures exist.
    from cryptography.hazmat.primitives import hashes

    key = generate_key("ecdsa-p384")
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, key, ecdsa_hash=hashes.SHA256())
    assert (await check(f"{pusher.host}/{name}:v1", [key_policy(key)])).allowed


async def test_signatures_in_both_formats_from_two_keys(pusher: Pusher, check: Checker) -> None:
    old, new = generate_key(), generate_key()
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, old)
    await signer.sign_bundle_v3(pusher, name, digest, new)
    ref = f"{pusher.host}/{name}:v1"
    assert (await check(ref, [key_policy(old)])).allowed
    assert (await check(ref, [key_policy(new)])).allowed


async def test_signature_repository_elsewhere(pusher: Pusher, check: Checker) -> None:
    from signgate.policy.compiled import compile_policy
    from signgate.policy.loading import parse_policies
    from support.formats import public_key_pem

    key = generate_key()
    name, sigs = repo(), repo()
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, key, sig_repo=sigs)
    pem = public_key_pem(key).decode()
    indented = "\n".join("          " + line for line in pem.strip().splitlines())
    text = f"""
apiVersion: signgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: moved}}
spec:
  images: ["{pusher.host}/formats/**"]
  signatureRepository: {pusher.host}/{sigs}
  authorities:
    - name: k
      key:
        pem: |
{indented}
"""
    policy = compile_policy(parse_policies(text, "inline")[0])
    assert (await check(f"{pusher.host}/{name}:v1", [policy])).allowed
    # Without signatureRepository the signatures are not where we look.
    assert not (await check(f"{pusher.host}/{name}:v1", [key_policy(key)])).allowed
