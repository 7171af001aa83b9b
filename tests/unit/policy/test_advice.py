"""Every denial ends with what to do, chosen from the most telling thing that was found."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from signgate.errors import (
    DeadlineExceededError,
    DigestMismatchError,
    NotFoundError,
    RegistryAuthError,
    RegistryError,
    RegistryHTTPError,
)
from signgate.policy.advice import attestation_advice, registry_advice, signature_advice
from signgate.policy.compiled import adhoc_key_policy, adhoc_keyless_policy
from signgate.policy.evaluate import evaluate_policy
from signgate.signatures.authority import CertificateIdentity
from signgate.signatures.found import Discovery
from signgate.signatures.keys import PublicKey
from signgate.signatures.results import RejectionKind as K

IMAGE = "registry.example.com/app@sha256:" + "a" * 64
KEY = PublicKey.from_key(ec.generate_private_key(ec.SECP256R1()).public_key())
POLICY = replace(adhoc_key_policy([("release", KEY)], requires_tlog=False), name="prod")


@pytest.mark.parametrize(
    ("kinds", "missing", "expected"),
    [
        ((), (), "sign it: `cosign sign --key <private key of key sha256:"),
        ((K.UNKNOWN_KEY,), (), "it is signed, but by none of [release]"),
        ((K.UNKNOWN_KEY, K.WRONG_DIGEST), (), "names another digest (was the tag moved"),
        ((K.WRONG_IDENTITY,), (), "allow that repository in spec.signedIdentity"),
        ((K.WRONG_SIGNER,), (), "the certificate names another identity"),
        ((K.CERTIFICATE,), (), "check the trusted root"),
        ((K.TLOG,), (), "transparencyLog: Ignore"),
        ((K.NOT_A_SIGNATURE,), (), "only attestations are attached, no signature"),
        ((K.MALFORMED,), (), "re-sign with cosign v2 or v3"),
        ((K.UNKNOWN_KEY,), ("release",), "add the required signature: `cosign sign --key"),
    ],
)
def test_signature_advice_follows_the_most_telling_rejection(
    kinds: tuple[K, ...], missing: tuple[str, ...], expected: str
) -> None:
    advice = signature_advice(POLICY, IMAGE, set(kinds), missing)
    assert expected in advice
    if "cosign sign" in advice:
        assert f"{IMAGE}`" in advice  # a command to copy, for this very digest


def test_keyless_and_signature_repository_advice_say_how_to_sign() -> None:
    identity = CertificateIdentity(
        issuer="https://token.actions.githubusercontent.com", subject="https://github.com/o/r"
    )
    keyless = adhoc_keyless_policy(identity)
    assert "keyless, as keyless https://github.com/o/r from https://token.actions" in (
        signature_advice(keyless, IMAGE, set(), ())
    )
    elsewhere = replace(POLICY, signature_repository="registry.example.com/signatures")
    assert "COSIGN_REPOSITORY" in signature_advice(elsewhere, IMAGE, set(), ())
    assert "cosign attest --type https://slsa.dev/provenance/v1 --predicate FILE --key" in (
        attestation_advice(POLICY, IMAGE, "https://slsa.dev/provenance/v1", POLICY.authorities)
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RegistryAuthError("401"), "imagePullSecrets"),
        (RegistryHTTPError("https://r/v2/", 403), "imagePullSecrets"),
        (NotFoundError("no such tag"), "exist in that registry"),
        (DigestMismatchError("lies"), "nothing from it can be trusted"),
        (DeadlineExceededError("slow"), "retry; if it persists"),
        (RegistryError("reset"), "retry; if it persists"),
    ],
)
def test_registry_advice(error: RegistryError, expected: str) -> None:
    assert expected in registry_advice(error)


def test_an_unsigned_images_denial_names_what_was_found_and_what_to_do() -> None:
    outcome = evaluate_policy(
        POLICY,
        digest=IMAGE.split("@")[1],
        discoveries=[Discovery("registry.example.com/app", ())],
        prepared=[],
        trusted_root=None,
        repository="registry.example.com/app",
        now=datetime.now(UTC),
    ).outcome
    assert not outcome.satisfied
    reason = outcome.reason
    assert reason.startswith("TrustPolicy 'prod' needs valid signatures from 1 of [release]")
    assert "no signature found in registry.example.com/app" in reason
    command = f"cosign sign --key <private key of {POLICY.authorities[0].describe}> {IMAGE}"
    assert reason.endswith(f"; what to do: sign it: `{command}`")
