"""The real cosign attests (``cosign attest``); signgate checks the attestations, and every verdict
is compared with ``cosign verify-attestation`` (and ``cosign verify``) on the same image.

cosign v2.6.5 stores an attestation as a layer of the legacy ``sha256-<hex>.att`` tag -- also on
a registry with the OCI 1.1 referrers API, since its default ``--registry-referrers-mode`` is
``legacy``. cosign v3.1.2 pushes a sigstore bundle (a DSSE envelope over an in-toto statement)
as an OCI referrer: through the ``sha256-<hex>`` fallback index on distribution, through the API
on the ``referrers-api`` registry.

Nothing leaves the machine. cosign v2: ``--tlog-upload=false``. cosign v3 ``attest`` has no
``--tlog-upload`` and, with ``--use-signing-config=false``, still posts to the public Rekor; it is
given a signing config that names no Rekor, no TSA and no CA instead (`OFFLINE_SIGNING_CONFIG`).

One documented difference, asserted as such (``deliberate difference: attestation-as-signature``):
cosign v3 ``verify --key`` accepts an image whose only referrer is an attestation bundle (it
verifies the bundle's DSSE envelope and does not look at the predicate type); signgate does not
count an attestation as an image signature. cosign v2 ``verify`` agrees with signgate there.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support import cli
from support.cli import signgate_verify
from support.formats import BUNDLE_V03_MEDIA_TYPE, fallback_tag, signature_tag
from support.push import OCI_INDEX, Pusher
from support.registry import RegistryServer

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

V2 = "v2.6.5"
V3 = "v3.1.2"

SLSA = "https://slsa.dev/provenance/v1"
CYCLONEDX = "https://cyclonedx.org/bom"

#: A sigstore signing config with no CA, no Rekor and no TSA: cosign v3 signs with the key only.
OFFLINE_SIGNING_CONFIG = {
    "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
    "caUrls": [],
    "oidcUrls": [],
    "rekorTlogUrls": [],
    "tsaUrls": [],
    "rekorTlogConfig": {"selector": "ANY"},
    "tsaConfig": {"selector": "ANY"},
}
PREDICATES = {
    "slsa.json": {
        "buildDefinition": {"buildType": "https://example.com/t", "externalParameters": {}},
        "runDetails": {"builder": {"id": "https://example.com/b"}},
    },
    "bom.json": {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": []},
}


@dataclass(frozen=True)
class Attester:
    """How one cosign version attests and signs offline, and how signgate names what it wrote."""

    version: str
    attest_extra: tuple[str, ...]
    attestation_format: str
    signature_format: str
    verify_accepts_attestation: bool
    """Whether ``cosign verify --key`` admits an image that carries only an attestation."""


ATTESTERS = {
    "v2-att-tag": Attester(
        V2,
        attest_extra=("--tlog-upload=false",),
        attestation_format="cosign .att tag",
        signature_format="cosign .sig tag",
        verify_accepts_attestation=False,
    ),
    "v3-bundle": Attester(
        V3,
        attest_extra=("--signing-config", "offline-signing-config.json"),
        attestation_format="sigstore bundle",
        signature_format="sigstore bundle",
        verify_accepts_attestation=True,
    ),
}


@pytest.fixture(scope="module")
def cosign_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Key pairs ``cosign.*`` and ``other.*``, the offline signing config and the predicates."""
    home = tmp_path_factory.mktemp("attest")
    cli.run_cosign(V3, home, "generate-key-pair")
    cli.run_cosign(V3, home, "generate-key-pair", "--output-key-prefix", "other")
    (home / "offline-signing-config.json").write_text(json.dumps(OFFLINE_SIGNING_CONFIG))
    for file, predicate in PREDICATES.items():
        (home / file).write_text(json.dumps(predicate))
    return home


def cosign_attest(a: Attester, home: Path, image: str, kind: str, predicate: str) -> None:
    cli.run_cosign(
        a.version, home, "attest", "--key", "cosign.key", "--type", kind, "--predicate", predicate,
        "--allow-insecure-registry", "--yes", *a.attest_extra, image,
    )  # fmt: skip


def cosign_sign(a: Attester, home: Path, image: str) -> None:
    cli.cosign_sign(a.version, home, image)


def cosign_verify(a: Attester, home: Path, image: str, key: str = "cosign.pub") -> bool:
    return cli.cosign_verifies(a.version, home, image, key=key)


def cosign_verify_attestation(
    a: Attester, home: Path, image: str, kind: str, key: str = "cosign.pub"
) -> bool:
    """``cosign verify-attestation --key --type``; a refusal must name missing attestations."""
    result = cli.run_cosign(
        a.version, home, "verify-attestation", "--key", key, "--type", kind,
        "--insecure-ignore-tlog", "--allow-insecure-registry", image, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        assert "attestation" in result.stderr, result.stderr[-1000:]
    return result.returncode == 0


def write_policy(path: Path, home: Path, *, threshold: int, attestations: Sequence[str]) -> Path:
    """A TrustPolicy file for every image: one inline-key authority ``release``."""
    document = {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": path.stem},
        "spec": {
            "images": ["**"],
            "authorities": [{"name": "release", "key": {"pem": (home / "cosign.pub").read_text()}}],
            "threshold": threshold,
            "attestations": [{"predicateType": t} for t in attestations],
        },
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def reasons(record: Mapping[str, object]) -> str:
    found = record["reasons"]
    assert isinstance(found, list)
    return "\n".join(str(r) for r in found)


def attested(record: Mapping[str, object]) -> dict[str, str]:
    """Predicate type to format, from the ``attestations`` of a JSON record."""
    items = record["attestations"]
    assert isinstance(items, list)
    return {a["predicateType"]: a["format"] for a in items}


def signed(record: Mapping[str, object]) -> list[str]:
    items = record["authorities"]
    assert isinstance(items, list)
    return [a["format"] for a in items]


async def referrer_annotations(
    registry: RegistryServer, pusher: Pusher, repo: str, digest: str
) -> list[dict[str, str]]:
    """The manifest annotations of the referrers of ``digest`` (API, or fallback index)."""
    if registry.implementation == "distribution":
        index = await pusher.find_manifest(repo, fallback_tag(digest))
        manifests = index.json()["manifests"] if index is not None else []
    else:
        assert await pusher.find_manifest(repo, fallback_tag(digest)) is None
        _, _, body = await pusher.request(
            "GET", f"/v2/{repo}/referrers/{digest}", repo=repo, headers={"Accept": OCI_INDEX}
        )
        manifests = json.loads(body)["manifests"]
    # The fallback index of distribution lists no annotations: read them from each manifest.
    docs = [(await pusher.get_manifest(repo, m["digest"])).json() for m in manifests]
    return [dict(doc.get("annotations") or {}) for doc in docs]


async def assert_stored(
    a: Attester,
    registry: RegistryServer,
    pusher: Pusher,
    repo: str,
    digest: str,
    predicate_types: Sequence[str],
) -> None:
    """cosign v2 wrote ``.att`` layers (on either registry) and no referrer; v3 bundle referrers."""
    att = await pusher.find_manifest(repo, signature_tag(digest, "att"))
    referrers = await referrer_annotations(registry, pusher, repo, digest)
    if a.version == V2:
        assert att is not None
        layers = att.json()["layers"]
        assert sorted(layer["annotations"]["predicateType"] for layer in layers) == sorted(
            predicate_types
        )
        assert referrers == []
    else:
        assert att is None
        assert sorted(r.get("dev.sigstore.bundle.predicateType", "") for r in referrers) == sorted(
            predicate_types
        )
        if registry.implementation == "distribution":
            index = await pusher.get_manifest(repo, fallback_tag(digest))
            assert {m.get("artifactType") for m in index.json()["manifests"]} == {
                BUNDLE_V03_MEDIA_TYPE
            }


@pytest.mark.parametrize("attester_id", list(ATTESTERS))
@pytest.mark.parametrize("any_registry", ["distribution", "referrers-api"], indirect=True)
async def test_cosign_attestations_agree_with_cosign_verify_attestation(
    cosign_home: Path,
    any_registry: RegistryServer,
    any_pusher: Pusher,
    tmp_path: Path,
    attester_id: str,
) -> None:
    a, home, pusher = ATTESTERS[attester_id], cosign_home, any_pusher
    host, key, other = pusher.host, cosign_home / "cosign.pub", cosign_home / "other.pub"
    name = f"attest/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    image = f"{host}/{name}@{digest}"

    # -- only a SLSA provenance attestation --------------------------------------------------------
    await asyncio.to_thread(cosign_attest, a, home, image, "slsaprovenance1", "slsa.json")
    await assert_stored(a, any_registry, pusher, name, digest, [SLSA])
    (as_signature, as_slsa, as_cyclonedx, by_other), cosign_says = await asyncio.gather(
        asyncio.gather(
            signgate_verify(image, key, host),
            signgate_verify(image, key, host, "--attestation", "slsaprovenance1"),
            signgate_verify(image, key, host, "--attestation", "cyclonedx"),
            signgate_verify(image, other, host, "--attestation", "slsaprovenance1"),
        ),
        asyncio.gather(
            asyncio.to_thread(cosign_verify, a, home, image),
            asyncio.to_thread(cosign_verify_attestation, a, home, image, "slsaprovenance1"),
            asyncio.to_thread(cosign_verify_attestation, a, home, image, "cyclonedx"),
            asyncio.to_thread(
                cosign_verify_attestation, a, home, image, "slsaprovenance1", "other.pub"
            ),
        ),
    )
    cosign_signature, cosign_slsa, cosign_cyclonedx, cosign_other = cosign_says

    # An attestation is not an image signature.
    assert as_signature["allowed"] is False
    assert "needs valid signatures from 1 of [key], has none" in reasons(as_signature)
    if a.verify_accepts_attestation:
        # deliberate difference: attestation-as-signature -- cosign v3 verify admits the image on
        # the strength of the attestation bundle alone; signgate requires a signature.
        assert cosign_signature is True
        assert f"attestation of type {SLSA}, not a signature" in reasons(as_signature)
    else:
        assert cosign_signature is False  # cosign v2: "no signatures found", as signgate

    # The provenance verifies with the key, for both.
    assert as_slsa["allowed"] is True, as_slsa["reasons"]
    assert attested(as_slsa) == {SLSA: a.attestation_format}
    assert signed(as_slsa) == []
    assert cosign_slsa is True

    # There is no CycloneDX SBOM: both refuse.
    assert as_cyclonedx["allowed"] is False
    assert f"needs an attestation {CYCLONEDX}" in reasons(as_cyclonedx)
    assert cosign_cyclonedx is False

    # Another key: both refuse.
    assert by_other["allowed"] is False
    assert f"needs an attestation {SLSA}" in reasons(by_other)
    assert cosign_other is False

    # -- and a CycloneDX SBOM: a policy that needs both attestations and no signature ------------
    await asyncio.to_thread(cosign_attest, a, home, image, "cyclonedx", "bom.json")
    await assert_stored(a, any_registry, pusher, name, digest, [SLSA, CYCLONEDX])
    both_policy = write_policy(
        tmp_path / "attested.yaml", home, threshold=0, attestations=[SLSA, CYCLONEDX]
    )
    both, cosign_cyclonedx = await asyncio.gather(
        signgate_verify(image, None, host, "--policy", str(both_policy)),
        asyncio.to_thread(cosign_verify_attestation, a, home, image, "cyclonedx"),
    )
    assert both["allowed"] is True, both["reasons"]
    assert attested(both) == {SLSA: a.attestation_format, CYCLONEDX: a.attestation_format}
    assert signed(both) == []
    assert cosign_cyclonedx is True

    # -- threshold 1 and the provenance: a signature is needed as well --------------------------
    signed_policy = write_policy(tmp_path / "signed.yaml", home, threshold=1, attestations=[SLSA])
    before, cosign_before = await asyncio.gather(
        signgate_verify(image, None, host, "--policy", str(signed_policy)),
        asyncio.to_thread(cosign_verify, a, home, image),
    )
    assert before["allowed"] is False
    assert "needs valid signatures from 1 of [release], has none" in reasons(before)
    # deliberate difference: attestation-as-signature (cosign v3 only; v2 agrees with signgate).
    assert cosign_before is a.verify_accepts_attestation

    await asyncio.to_thread(cosign_sign, a, home, image)
    after, cosign_after = await asyncio.gather(
        signgate_verify(image, None, host, "--policy", str(signed_policy)),
        asyncio.to_thread(cosign_verify, a, home, image),
    )
    assert after["allowed"] is True, after["reasons"]
    assert signed(after) == [a.signature_format]
    assert attested(after) == {SLSA: a.attestation_format}
    assert cosign_after is True
