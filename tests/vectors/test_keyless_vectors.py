"""Keyless signatures made against the public Sigstore (vendored in tests/vectors/data), pushed
through a real registry and verified offline against the production trusted root: the Fulcio chain
at the logged time, codeSigning, the embedded SCT, the Rekor SET (and inclusion proof for bundles),
and the identity the policy names."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from signgate.deadline import Deadline
from signgate.engine.verifier import Verifier
from signgate.policy.compiled import CompiledPolicy, compile_policy
from signgate.policy.evaluate import ImageDecision
from signgate.policy.loading import parse_policies
from signgate.registry import RegistryClient, RegistryOptions
from signgate.signatures.trusted_root import TrustedRoot, load_trusted_root
from support import signer
from support.formats import SIMPLESIGNING_MEDIA_TYPE, Layer, signature_tag
from support.push import Pusher
from support.registry import RegistryServer
from support.vectors import push_conformance_bundle

TESTDATA = "containers-image/signature/internal/testdata"
CONFORMANCE = "sigstore-conformance/test/assets/bundle-verify"
PRODUCTION_ROOT = "sigstore-python/sigstore/_store/tuf-repo-cdn.sigstore.dev/trusted_root.json"
LEGACY_DIGEST = "sha256:fa93b01658e3a5a1686dc3ae55f170d8de487006fb53a28efcd12ab0710a2e5f"
LEGACY_SUBJECT, LEGACY_ISSUER = "mitr@redhat.com", "https://github.com/login/oauth"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ACTIONS = "https://token.actions.githubusercontent.com"


def keyless_policy(identity: dict[str, str], **spec: object) -> CompiledPolicy:
    document = {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "keyless"},
        "spec": {"images": ["**"], "authorities": [{"name": "ci", "keyless": identity}], **spec},
    }
    (parsed,) = parse_policies(json.dumps(document), "test")
    return compile_policy(parsed)


@pytest.fixture(scope="module")
def production_root(vectors: Path) -> TrustedRoot:
    return load_trusted_root((vectors / PRODUCTION_ROOT).read_bytes())


@pytest.fixture
async def client(registry: RegistryServer) -> AsyncIterator[RegistryClient]:
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({registry.host}))) as c:
        yield c


async def check(
    client: RegistryClient, image: str, policy: CompiledPolicy, root: TrustedRoot | None
) -> ImageDecision:
    return await Verifier(client, trusted_root=root).verify_image(
        image, [policy], Deadline.after(10)
    )


async def push_legacy_keyless(pusher: Pusher, vectors: Path) -> str:
    """The cosign keyless legacy signature: payload, signature, certificate and Rekor bundle
    annotation exactly as cosign wrote them, as one layer of the ``.sig`` manifest."""
    base = vectors / TESTDATA
    layer = Layer(
        (base / "rekor-payload").read_bytes(),
        SIMPLESIGNING_MEDIA_TYPE,
        {
            "dev.cosignproject.cosign/signature": (base / "rekor-sig").read_text().strip(),
            "dev.sigstore.cosign/certificate": (base / "rekor-cert").read_text(),
            "dev.sigstore.cosign/chain": "",
            "dev.sigstore.cosign/bundle": (base / "rekor-set").read_text(),
        },
    )
    name = f"keyless/{secrets.token_hex(4)}"
    await signer.push_signature_manifest(pusher, name, signature_tag(LEGACY_DIGEST), [layer])
    return f"{pusher.host}/{name}@{LEGACY_DIGEST}"


async def test_legacy_keyless_signature_verifies_by_identity(
    vectors: Path, pusher: Pusher, client: RegistryClient, production_root: TrustedRoot
) -> None:
    image = await push_legacy_keyless(pusher, vectors)
    exact = keyless_policy({"subject": LEGACY_SUBJECT, "issuer": LEGACY_ISSUER})
    decision = await check(client, image, exact, production_root)
    assert decision.allowed, decision.reasons
    (signature,) = decision.outcomes[0].signatures
    assert signature.tlog_index == 8949589
    assert signature.signer == f"certificate for {LEGACY_SUBJECT} from {LEGACY_ISSUER}"

    regexps = keyless_policy(
        {"subjectRegExp": r".*@redhat\.com", "issuerRegExp": r"https://github\.com/.*"}
    )
    assert (await check(client, image, regexps, production_root)).allowed


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        (
            {"subject": "someone@redhat.com", "issuer": LEGACY_ISSUER},
            f"identity is {LEGACY_SUBJECT}, not someone@redhat.com",
        ),
        (
            {"subject": LEGACY_SUBJECT, "issuer": ACTIONS},
            f"issuer is {LEGACY_ISSUER}, not {ACTIONS}",
        ),
        # difference: regexp-full-match -- a prefix of the identity is not the identity.
        (
            {"subjectRegExp": "mitr", "issuer": LEGACY_ISSUER},
            f"identity {LEGACY_SUBJECT} does not match /mitr/",
        ),
        (
            {"subject": LEGACY_SUBJECT, "issuerRegExp": "https://github.com"},
            f"issuer {LEGACY_ISSUER} does not match /https://github.com/",
        ),
    ],
    ids=["other-subject", "other-issuer", "partial-subject-regexp", "partial-issuer-regexp"],
)
async def test_legacy_keyless_signature_for_another_identity_is_refused(
    vectors: Path,
    pusher: Pusher,
    client: RegistryClient,
    production_root: TrustedRoot,
    identity: dict[str, str],
    reason: str,
) -> None:
    image = await push_legacy_keyless(pusher, vectors)
    decision = await check(client, image, keyless_policy(identity), production_root)
    assert not decision.allowed
    assert reason in decision.reasons[0]


async def test_keyless_needs_the_trusted_roots_ca_and_log(
    vectors: Path, pusher: Pusher, client: RegistryClient, production_root: TrustedRoot
) -> None:
    image = await push_legacy_keyless(pusher, vectors)
    policy = keyless_policy({"subject": LEGACY_SUBJECT, "issuer": LEGACY_ISSUER})

    no_cas = TrustedRoot(tlogs=production_root.tlogs, ctlogs=production_root.ctlogs)
    decision = await check(client, image, policy, no_cas)
    assert not decision.allowed
    assert "no certificate authority valid at 2022-12-12T18:48:19Z" in decision.reasons[0]

    no_ct = TrustedRoot(
        tlogs=production_root.tlogs,
        certificate_authorities=production_root.certificate_authorities,
    )
    decision = await check(client, image, policy, no_ct)
    assert not decision.allowed
    assert "no valid SCT from a trusted CT log" in decision.reasons[0]

    no_rekor = TrustedRoot(
        tlogs=(),
        ctlogs=production_root.ctlogs,
        certificate_authorities=production_root.certificate_authorities,
    )
    decision = await check(client, image, policy, no_rekor)
    assert not decision.allowed
    assert "entry is from an untrusted log (logID c0d23d6ad406973f" in decision.reasons[0]

    decision = await check(client, image, policy, None)
    assert not decision.allowed
    assert "no trusted root configured" in decision.reasons[0]


async def test_key_policy_does_not_accept_a_keyless_signature(
    vectors: Path, pusher: Pusher, client: RegistryClient, production_root: TrustedRoot
) -> None:
    # The certificate's key is not a policy key: a certificate that travels with a signature is
    # never trusted on its own.
    from signgate.policy.compiled import adhoc_key_policy
    from signgate.signatures.keys import load_public_key_pem

    image = await push_legacy_keyless(pusher, vectors)
    key = load_public_key_pem(
        (vectors / CONFORMANCE / "managed-key-happy-path/key.pub").read_bytes()
    )
    decision = await check(
        client, image, adhoc_key_policy([("k", key)], requires_tlog=False), production_root
    )
    assert not decision.allowed
    assert "does not verify with key" in decision.reasons[0]


async def test_keyless_bundle_verifies_with_inclusion_proof_and_sct(
    vectors: Path, pusher: Pusher, client: RegistryClient, production_root: TrustedRoot
) -> None:
    image = await push_conformance_bundle(pusher, vectors, "happy-path-v0.3")
    policy = keyless_policy({"subject": BEACON, "issuer": ACTIONS})
    decision = await check(client, image, policy, production_root)
    assert decision.allowed, decision.reasons
    assert decision.outcomes[0].signatures[0].signer == f"certificate for {BEACON} from {ACTIONS}"
    other = keyless_policy({"subjectRegExp": r"https://github\.com/sigstore/.*", "issuer": ACTIONS})
    decision = await check(client, image, other, production_root)
    assert not decision.allowed
    assert "does not match" in decision.reasons[0]


async def test_keyless_slsa_attestation_satisfies_an_attestation_policy(
    vectors: Path, pusher: Pusher, client: RegistryClient, production_root: TrustedRoot
) -> None:
    image = await push_conformance_bundle(pusher, vectors, "happy-path-intoto-in-dsse-v3")
    identity = {"subject": BEACON, "issuer": ACTIONS}
    signature_policy = keyless_policy(identity)
    decision = await check(client, image, signature_policy, production_root)
    assert not decision.allowed  # an attestation, not a signature
    attestation_policy = keyless_policy(
        identity, threshold=0, attestations=[{"predicateType": "https://slsa.dev/provenance/v1"}]
    )
    decision = await check(client, image, attestation_policy, production_root)
    assert decision.allowed, decision.reasons
    (attestation,) = decision.outcomes[0].attestations
    assert attestation.tlog_index is not None


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        # A v0.1 bundle: cosign reads OCI-attached bundles from v0.3 on, and so does signgate.
        ("signature-mismatch_fail", "sigstore bundle v0.1 (need v0.3 or later)"),
        ("dsse-invalid-sig_fail", "does not verify with its own certificate"),
    ],
)
async def test_conformance_failures_are_refused(
    vectors: Path,
    pusher: Pusher,
    client: RegistryClient,
    production_root: TrustedRoot,
    case: str,
    reason: str,
) -> None:
    image = await push_conformance_bundle(pusher, vectors, case)
    identity = {"subject": BEACON, "issuer": ACTIONS}
    for policy in (
        keyless_policy(identity),
        keyless_policy(
            identity,
            threshold=0,
            attestations=[{"predicateType": "https://slsa.dev/provenance/v1"}],
        ),
    ):
        decision = await check(client, image, policy, production_root)
        assert not decision.allowed
        assert reason in decision.reasons[0]
