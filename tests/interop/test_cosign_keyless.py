"""Keyless: the real cosign signs (and attests) with a certificate from a fake Fulcio, logged in a
fake Rekor, all on loopback (support.fake_sigstore); signgate verifies offline against the fakes'
trusted_root.json by identity and issuer, and agrees with ``cosign verify``."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest

from support.cli import signgate_verify
from support.fake_sigstore import (
    FakeSigstore,
    attest_keyless,
    cosign_verify_attestation_keyless,
    cosign_verify_keyless,
    run_cosign_keyless,
    sign_keyless,
)
from support.push import Pusher

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

V2, V3 = "v2.6.5", "v3.1.2"
WORKFLOW = "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1.0.0"


async def keyless_verify(
    image: str, host: str, sigstore: FakeSigstore, *identity: str
) -> dict[str, object]:
    return await signgate_verify(
        image, None, host, "--trusted-root", str(sigstore.trusted_root_path), *identity
    )


def reasons(record: dict[str, object]) -> str:
    return " ".join(str(r) for r in record["reasons"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("version", "fmt"),
    [(V2, "cosign .sig tag"), (V3, "sigstore bundle")],
    ids=["v2-legacy", "v3-bundle"],
)
async def test_keyless_signature_is_admitted_by_identity_only(
    fake_sigstore: FakeSigstore, pusher: Pusher, tmp_path: Path, version: str, fmt: str
) -> None:
    name = f"keyless/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    image = f"{pusher.host}/{name}@{digest}"
    await asyncio.to_thread(sign_keyless, version, tmp_path, image, fake_sigstore, WORKFLOW)
    issuer = fake_sigstore.issuer

    record = await keyless_verify(
        image, pusher.host, fake_sigstore,
        "--certificate-identity", WORKFLOW, "--certificate-oidc-issuer", issuer,
    )  # fmt: skip
    assert record["allowed"] is True, record["reasons"]
    listed = record["authorities"]
    assert isinstance(listed, list)
    (authority,) = listed
    assert authority["format"] == fmt
    assert authority["signer"] == f"certificate for {WORKFLOW} from {issuer}"
    assert isinstance(authority["tlogIndex"], int)
    assert await asyncio.to_thread(
        cosign_verify_keyless, version, tmp_path, image, fake_sigstore, WORKFLOW
    )

    regexp = await keyless_verify(
        image, pusher.host, fake_sigstore,
        "--certificate-identity-regexp", r"https://github\.com/org/app/.*@refs/tags/v.*",
        "--certificate-oidc-issuer-regexp", r"https://.*",
    )  # fmt: skip
    assert regexp["allowed"] is True, regexp["reasons"]

    other = WORKFLOW.replace("org/app", "org/other")
    refused = await keyless_verify(
        image, pusher.host, fake_sigstore,
        "--certificate-identity", other, "--certificate-oidc-issuer", issuer,
    )  # fmt: skip
    assert refused["allowed"] is False
    assert f"identity is {WORKFLOW}, not {other}" in reasons(refused)
    assert not await asyncio.to_thread(
        cosign_verify_keyless, version, tmp_path, image, fake_sigstore, other
    )

    wrong_issuer = await keyless_verify(
        image, pusher.host, fake_sigstore,
        "--certificate-identity", WORKFLOW,
        "--certificate-oidc-issuer", "https://token.actions.githubusercontent.com",
    )  # fmt: skip
    assert wrong_issuer["allowed"] is False
    assert f"issuer is {issuer}, not https://token.actions.githubusercontent.com" in reasons(
        wrong_issuer
    )
    assert not await asyncio.to_thread(
        cosign_verify_keyless, version, tmp_path, image, fake_sigstore, WORKFLOW,
        "https://token.actions.githubusercontent.com",
    )  # fmt: skip

    # The public-good root (the default) does not trust the fake Fulcio: refused, offline.
    untrusted = await signgate_verify(
        image, None, pusher.host,
        "--certificate-identity", WORKFLOW, "--certificate-oidc-issuer", issuer,
    )  # fmt: skip
    assert untrusted["allowed"] is False


async def test_identity_regexp_must_match_the_whole_identity(
    fake_sigstore: FakeSigstore, pusher: Pusher, tmp_path: Path
) -> None:
    # difference: regexp-full-match -- cosign's regexp finds "org/app" inside the identity.
    name = f"keyless/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    image = f"{pusher.host}/{name}@{digest}"
    await asyncio.to_thread(sign_keyless, V3, tmp_path, image, fake_sigstore, WORKFLOW)
    partial = await keyless_verify(
        image, pusher.host, fake_sigstore,
        "--certificate-identity-regexp", "org/app",
        "--certificate-oidc-issuer", fake_sigstore.issuer,
    )  # fmt: skip
    assert partial["allowed"] is False
    assert f"identity {WORKFLOW} does not match /org/app/" in reasons(partial)
    # cosign admits the same regexp: it searches for a match anywhere in the identity.
    result = await asyncio.to_thread(
        run_cosign_keyless, V3, tmp_path, fake_sigstore, "verify",
        "--certificate-identity-regexp", "org/app",
        "--certificate-oidc-issuer", fake_sigstore.issuer,
        "--trusted-root", str(fake_sigstore.trusted_root_path),
        "--allow-insecure-registry", image, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-1000:]


@pytest.mark.parametrize("version", [V2, V3], ids=["v2-att", "v3-bundle"])
async def test_keyless_slsa_attestation_with_conditions(
    fake_sigstore: FakeSigstore, pusher: Pusher, tmp_path: Path, version: str
) -> None:
    name = f"keyless/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    image = f"{pusher.host}/{name}@{digest}"
    predicate = tmp_path / "provenance.json"
    builder = "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1.0.0"
    predicate.write_text(
        json.dumps(
            {
                "buildDefinition": {
                    "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
                    "externalParameters": {},
                },
                "runDetails": {"builder": {"id": builder}},
            }
        )
    )
    await asyncio.to_thread(
        attest_keyless, version, tmp_path, image, fake_sigstore, WORKFLOW, predicate
    )

    def policy(condition: dict[str, str]) -> str:
        document = {
            "apiVersion": "signgate.dev/v1alpha1",
            "kind": "TrustPolicy",
            "metadata": {"name": "provenance"},
            "spec": {
                "images": ["**"],
                "authorities": [
                    {
                        "name": "ci",
                        "keyless": {"issuer": fake_sigstore.issuer, "subject": WORKFLOW},
                    }
                ],
                "threshold": 0,
                "attestations": [
                    {"predicateType": "https://slsa.dev/provenance/v1", "conditions": [condition]}
                ],
            },
        }
        path = tmp_path / f"policy-{secrets.token_hex(3)}.json"
        path.write_text(json.dumps(document))
        return str(path)

    trust = ("--trusted-root", str(fake_sigstore.trusted_root_path))
    good = policy({"field": "runDetails.builder.id", "matches": r"https://github\.com/org/.*"})
    record = await signgate_verify(image, None, pusher.host, "--policy", good, *trust)
    assert record["allowed"] is True, record["reasons"]
    listed = record["attestations"]
    assert isinstance(listed, list)
    (attestation,) = listed
    assert attestation["predicateType"] == "https://slsa.dev/provenance/v1"
    assert await asyncio.to_thread(
        cosign_verify_attestation_keyless, version, tmp_path, image, fake_sigstore, WORKFLOW, None,
        "--type", "slsaprovenance1",
    )  # fmt: skip

    bad = policy({"field": "runDetails.builder.id", "equals": "https://evil.example/builder"})
    record = await signgate_verify(image, None, pusher.host, "--policy", bad, *trust)
    assert record["allowed"] is False
    assert f"predicate field runDetails.builder.id is '{builder}'" in reasons(record)


@pytest.mark.parametrize("version", [V2, V3], ids=["v2-legacy", "v3-bundle"])
async def test_rfc3161_timestamp_is_a_signing_time_without_the_log(
    fake_sigstore: FakeSigstore, pusher: Pusher, tmp_path: Path, version: str
) -> None:
    assert fake_sigstore.tsa_url is not None
    name = f"keyless/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    image = f"{pusher.host}/{name}@{digest}"
    await asyncio.to_thread(sign_keyless, version, tmp_path, image, fake_sigstore, WORKFLOW)

    def policy(root: Path) -> tuple[str, ...]:
        document = {
            "apiVersion": "signgate.dev/v1alpha1",
            "kind": "TrustPolicy",
            "metadata": {"name": "tsa"},
            "spec": {
                "images": ["**"],
                "authorities": [
                    {
                        "name": "ci",
                        "keyless": {"issuer": fake_sigstore.issuer, "subject": WORKFLOW},
                        "transparencyLog": "Ignore",
                    }
                ],
            },
        }
        path = tmp_path / f"tsa-{secrets.token_hex(3)}.json"
        path.write_text(json.dumps(document))
        return ("--policy", str(path), "--trusted-root", str(root))

    # The log is ignored: the TSA's time is what says the certificate was valid when it signed.
    record = await signgate_verify(
        image, None, pusher.host, *policy(fake_sigstore.trusted_root_path)
    )
    assert record["allowed"] is True, record["reasons"]
    assert record["authorities"][0]["tlogIndex"] is None  # type: ignore[index]

    # A root without the timestamp authority: no trusted time, refused.
    document = json.loads(fake_sigstore.trusted_root_path.read_text())
    document["timestampAuthorities"] = []
    no_tsa = tmp_path / "no-tsa.json"
    no_tsa.write_text(json.dumps(document))
    record = await signgate_verify(image, None, pusher.host, *policy(no_tsa))
    assert record["allowed"] is False
    assert "no trusted signing time" in reasons(record)
    assert "the trusted root has no timestamp authority to check the timestamp" in reasons(record)
