"""The keyless test infrastructure works: the real cosign signs keyless against the fake Fulcio,
Rekor and TSA (``support.fake_sigstore``), entirely on this machine, and cosign itself verifies
the result against the fakes' ``trusted_root.json``.

Only cosign and plain parsing here (``cryptography``): the certificate (SAN, issuer extensions,
EKU, chain to the trusted CA, the SCT against the trusted CT log), the Rekor SET, the inclusion
proof and the checkpoint are checked as cosign-formats.md §5 describes, so a verifier can rely on
what these fakes produce.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, ObjectIdentifier

from support import fake_sigstore
from support.fake_sigstore import (
    FakeSigstore,
    attest_keyless,
    cosign_verify_attestation_keyless,
    cosign_verify_keyless,
    run_cosign_keyless,
    sign_keyless,
    start_fake_sigstore,
)
from support.formats import (
    BUNDLE_ANNOTATION,
    BUNDLE_V03_MEDIA_TYPE,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    COSIGN_SIGN_PREDICATE_TYPE,
    RFC3161_ANNOTATION,
    fallback_tag,
    signature_tag,
)
from support.push import Pusher
from support.registry import MissingToolError

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

V3, V2 = "v3.1.2", "v2.6.5"
EMAIL = "dev@signgate.test"
WORKFLOW = "https://github.com/signgate/app/.github/workflows/release.yml@refs/heads/main"
ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
PREDICATE = {
    "buildDefinition": {
        "buildType": "https://signgate.test/build/v1",
        "externalParameters": {"ref": "refs/heads/main"},
    },
    "runDetails": {"builder": {"id": "https://signgate.test/builder"}},
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "cosign-home"
    path.mkdir()
    return path


async def push_image(pusher: Pusher, name: str) -> tuple[str, str, str]:
    """A fresh image: ``(repo, digest, image reference by digest)``."""
    repo = f"keyless/{name}-{secrets.token_hex(3)}"
    digest = await pusher.push_random_image(repo, "v1")
    return repo, digest, f"{pusher.host}/{repo}@{digest}"


# -- plain parsing and the checks of cosign-formats.md §5 ------------------------------------------


def trusted_root(sigstore: FakeSigstore) -> dict[str, Any]:
    root: dict[str, Any] = json.loads(sigstore.trusted_root_path.read_text())
    return root


def public_key(raw_b64: str) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(base64.b64decode(raw_b64))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def ca_chain(sigstore: FakeSigstore) -> list[x509.Certificate]:
    """The trusted Fulcio chain, intermediate first."""
    (ca,) = trusted_root(sigstore)["certificateAuthorities"]
    return [
        x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"]))
        for c in ca["certChain"]["certificates"]
    ]


def check_fulcio_certificate(
    cert: x509.Certificate, sigstore: FakeSigstore, subject: str, issuer: str
) -> None:
    """SAN, issuer extensions, EKU, validity, the chain to the trusted CA and the SCT."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    if "@" in subject and "://" not in subject:
        assert san.value.get_values_for_type(x509.RFC822Name) == [subject]
    else:
        assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [subject]
    assert cert.subject == x509.Name([])
    raw_issuer = cert.extensions.get_extension_for_oid(ISSUER_V1).value
    der_issuer = cert.extensions.get_extension_for_oid(ISSUER_V2).value
    assert isinstance(raw_issuer, x509.UnrecognizedExtension)
    assert isinstance(der_issuer, x509.UnrecognizedExtension)
    assert raw_issuer.value == issuer.encode()  # .1.1: the raw URL
    assert der_issuer.value == bytes([0x0C, len(issuer)]) + issuer.encode()  # .1.8: UTF8String
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CODE_SIGNING in eku
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(minutes=10)
    intermediate, root = ca_chain(sigstore)
    cert.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    check_sct(cert, intermediate, sigstore)


def check_sct(cert: x509.Certificate, issuer: x509.Certificate, sigstore: FakeSigstore) -> None:
    """The embedded SCT verifies under the trusted CT log key (RFC 6962 precert signature)."""
    (ctlog,) = trusted_root(sigstore)["ctlogs"]
    scts = cert.extensions.get_extension_for_oid(
        ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS
    ).value
    assert isinstance(scts, x509.PrecertificateSignedCertificateTimestamps)
    (sct,) = list(scts)
    assert sct.log_id == base64.b64decode(ctlog["logId"]["keyId"])
    millis = (sct.timestamp.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )
    tbs = cert.tbs_precertificate_bytes
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    signed = (
        b"\x00\x00"
        + struct.pack(">Q", millis)
        + b"\x00\x01"
        + issuer_key_hash
        + len(tbs).to_bytes(3, "big")
        + tbs
        + struct.pack(">H", len(sct.extension_bytes))
        + sct.extension_bytes
    )
    public_key(ctlog["publicKey"]["rawBytes"]).verify(
        sct.signature, signed, ec.ECDSA(hashes.SHA256())
    )


def check_set(
    sigstore: FakeSigstore,
    *,
    body_b64: str,
    integrated_time: int,
    log_id_hex: str,
    log_index: int,
    set_b64: str,
) -> None:
    """The SET (§5.3) verifies under the trusted Rekor key picked by logID."""
    (tlog,) = trusted_root(sigstore)["tlogs"]
    assert bytes.fromhex(log_id_hex) == base64.b64decode(tlog["logId"]["keyId"])
    signed = json.dumps(
        {
            "body": body_b64,
            "integratedTime": integrated_time,
            "logID": log_id_hex,
            "logIndex": log_index,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    public_key(tlog["publicKey"]["rawBytes"]).verify(
        base64.b64decode(set_b64), signed, ec.ECDSA(hashes.SHA256())
    )


def _hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to."""
    node, fn, sn = leaf, index, size - 1
    for sibling in proof:
        assert sn != 0
        if fn & 1 or fn == sn:
            node = _hash_children(sibling, node)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = _hash_children(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    return node


def check_inclusion(sigstore: FakeSigstore, body: bytes, proof: dict[str, Any]) -> None:
    """Inclusion proof and signed checkpoint (§5.4)."""
    (tlog,) = trusted_root(sigstore)["tlogs"]
    log_id = base64.b64decode(tlog["logId"]["keyId"])
    root_hash = base64.b64decode(proof["rootHash"])
    tree_size = int(proof["treeSize"])
    leaf = hashlib.sha256(b"\x00" + body).digest()
    hashes_ = [base64.b64decode(h) for h in proof.get("hashes", [])]
    index = int(proof.get("logIndex", "0"))  # protojson omits a zero
    assert merkle_root(leaf, index, tree_size, hashes_) == root_hash
    envelope: str = proof["checkpoint"]["envelope"]
    note, _, signatures = envelope.partition("\n\n")
    origin, size, root_b64, *_other = note.split("\n")
    assert (int(size), base64.b64decode(root_b64)) == (tree_size, root_hash)
    (signature_line,) = signatures.strip("\n").split("\n")
    dash, name, hint_and_sig = signature_line.split(" ")
    assert dash == "\u2014"
    assert origin.startswith(name + " - ")  # Rekor v1: "<host> - <tree ID>"
    raw = base64.b64decode(hint_and_sig)
    assert raw[:4] == log_id[:4]
    public_key(tlog["publicKey"]["rawBytes"]).verify(
        raw[4:], (note + "\n").encode(), ec.ECDSA(hashes.SHA256())
    )


async def fetch_bundles(pusher: Pusher, repo: str, digest: str) -> list[dict[str, Any]]:
    """The sigstore bundles cosign v3 attached to ``digest`` (distribution: the fallback index)."""
    index = (await pusher.get_manifest(repo, fallback_tag(digest))).json()
    bundles = []
    for desc in index["manifests"]:
        if desc.get("artifactType") != BUNDLE_V03_MEDIA_TYPE:
            continue
        manifest = (await pusher.get_manifest(repo, desc["digest"])).json()
        assert manifest["subject"]["digest"] == digest
        (layer,) = manifest["layers"]
        assert layer["mediaType"] == BUNDLE_V03_MEDIA_TYPE
        bundles.append(json.loads(await pusher.get_blob(repo, layer["digest"])))
    return bundles


def check_bundle(
    bundle: dict[str, Any], sigstore: FakeSigstore, subject: str, issuer: str
) -> dict[str, Any]:
    """A v0.3 keyless bundle: certificate, one Rekor v1 entry (SET + proof), one TSA timestamp
    (when the fakes have a TSA).

    Returns the Rekor entry body.
    """
    assert bundle["mediaType"] == BUNDLE_V03_MEDIA_TYPE
    material = bundle["verificationMaterial"]
    cert = x509.load_der_x509_certificate(base64.b64decode(material["certificate"]["rawBytes"]))
    check_fulcio_certificate(cert, sigstore, subject, issuer)
    (entry,) = material["tlogEntries"]
    body = base64.b64decode(entry["canonicalizedBody"])
    check_set(
        sigstore,
        body_b64=entry["canonicalizedBody"],
        integrated_time=int(entry["integratedTime"]),
        log_id_hex=base64.b64decode(entry["logId"]["keyId"]).hex(),
        log_index=int(entry["logIndex"]),
        set_b64=entry["inclusionPromise"]["signedEntryTimestamp"],
    )
    check_inclusion(sigstore, body, entry["inclusionProof"])
    not_before = cert.not_valid_before_utc.timestamp()
    assert not_before <= int(entry["integratedTime"]) <= cert.not_valid_after_utc.timestamp()
    if sigstore.tsa_url is not None:
        (timestamp,) = material["timestampVerificationData"]["rfc3161Timestamps"]
        assert base64.b64decode(timestamp["signedTimestamp"])[:1] == b"\x30"  # a DER SEQUENCE
    else:
        assert "timestampVerificationData" not in material
    rekor_body: dict[str, Any] = json.loads(body)
    leaf_pem = cert.public_bytes(serialization.Encoding.PEM)
    if rekor_body["kind"] == "hashedrekord":
        verifier = rekor_body["spec"]["signature"]["publicKey"]["content"]
        assert base64.b64decode(verifier) == leaf_pem
        assert (
            rekor_body["spec"]["signature"]["content"] == (bundle["messageSignature"]["signature"])
        )
    else:
        # Rekor's canonical dsse entry (§5.2), not the proposed one.
        assert set(rekor_body["spec"]) == {"envelopeHash", "payloadHash", "signatures"}
        (signature,) = rekor_body["spec"]["signatures"]
        assert base64.b64decode(signature["verifier"]) == leaf_pem
        assert signature["signature"] == bundle["dsseEnvelope"]["signatures"][0]["sig"]
        payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
        assert rekor_body["spec"]["payloadHash"] == {
            "algorithm": "sha256",
            "value": hashlib.sha256(payload).hexdigest(),
        }
    return rekor_body


# -- the infrastructure --------------------------------------------------------------------------


def test_trusted_root_trusts_exactly_the_fakes(fake_sigstore: FakeSigstore) -> None:
    root = trusted_root(fake_sigstore)
    assert root["mediaType"] == "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    (tlog,) = root["tlogs"]
    (ctlog,) = root["ctlogs"]
    for log in (tlog, ctlog):
        key = base64.b64decode(log["publicKey"]["rawBytes"])
        assert base64.b64decode(log["logId"]["keyId"]) == hashlib.sha256(key).digest()
        assert log["publicKey"]["keyDetails"] == "PKIX_ECDSA_P256_SHA_256"
    assert tlog["baseUrl"] == fake_sigstore.rekor_url
    (ca,) = root["certificateAuthorities"]
    assert ca["uri"] == fake_sigstore.fulcio_url
    intermediate, fulcio_root = ca_chain(fake_sigstore)
    assert intermediate.issuer == fulcio_root.subject
    assert fake_sigstore.tsa_url is not None
    (tsa,) = root["timestampAuthorities"]
    assert tsa["uri"] == fake_sigstore.tsa_url
    assert len(tsa["certChain"]["certificates"]) == 2
    config = json.loads(fake_sigstore.signing_config_path.read_text())
    assert config["mediaType"] == "application/vnd.dev.sigstore.signingconfig.v0.2+json"
    assert [s["url"] for s in config["caUrls"]] == [fake_sigstore.fulcio_url]
    assert [s["url"] for s in config["rekorTlogUrls"]] == [fake_sigstore.rekor_url]
    assert [s["url"] for s in config["tsaUrls"]] == [fake_sigstore.tsa_url]


def test_missing_sigstore_mock_is_a_clear_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fake_sigstore, "TOOLS", tmp_path / "no-tools")
    with pytest.raises(MissingToolError, match="run scripts/install-sigstore-mock"):
        start_fake_sigstore(tmp_path / "work")


@pytest.mark.parametrize("subject", [EMAIL, WORKFLOW], ids=["email", "uri"])
async def test_cosign_v3_keyless_signature(
    pusher: Pusher, fake_sigstore: FakeSigstore, home: Path, subject: str
) -> None:
    repo, digest, image = await push_image(pusher, "v3")
    await asyncio.to_thread(sign_keyless, V3, home, image, fake_sigstore, subject)

    (bundle,) = await fetch_bundles(pusher, repo, digest)
    rekor_body = check_bundle(bundle, fake_sigstore, subject, fake_sigstore.issuer)
    # cosign v3 signs an image as an in-toto statement in DSSE, logged as a dsse entry.
    assert (rekor_body["kind"], rekor_body["apiVersion"]) == ("dsse", "0.0.1")
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == COSIGN_SIGN_PREDICATE_TYPE
    assert statement["subject"][0]["digest"] == {"sha256": digest.split(":", 1)[1]}

    def verifies(identity: str, issuer: str | None = None) -> bool:
        return cosign_verify_keyless(V3, home, image, fake_sigstore, identity, issuer)

    assert await asyncio.to_thread(verifies, subject)
    assert not await asyncio.to_thread(verifies, "someone-else@signgate.test")
    assert not await asyncio.to_thread(verifies, subject, "https://other-issuer.signgate.test")


async def test_cosign_v3_keyless_attestation(
    pusher: Pusher, fake_sigstore: FakeSigstore, home: Path
) -> None:
    repo, digest, image = await push_image(pusher, "v3-attest")
    predicate = home / "predicate.json"
    predicate.write_text(json.dumps(PREDICATE))
    await asyncio.to_thread(attest_keyless, V3, home, image, fake_sigstore, WORKFLOW, predicate)

    (bundle,) = await fetch_bundles(pusher, repo, digest)
    rekor_body = check_bundle(bundle, fake_sigstore, WORKFLOW, fake_sigstore.issuer)
    assert (rekor_body["kind"], rekor_body["apiVersion"]) == ("dsse", "0.0.1")
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == SLSA_PROVENANCE_V1
    assert statement["subject"][0]["digest"] == {"sha256": digest.split(":", 1)[1]}

    def verifies(identity: str) -> bool:
        return cosign_verify_attestation_keyless(
            V3, home, image, fake_sigstore, identity, None, "--type", "slsaprovenance1"
        )

    assert await asyncio.to_thread(verifies, WORKFLOW)
    assert not await asyncio.to_thread(verifies, EMAIL)


async def test_cosign_v3_checks_the_timestamp_authority(
    pusher: Pusher, fake_sigstore: FakeSigstore, home: Path
) -> None:
    """Without the tlog, the RFC 3161 timestamp is the only time: it verifies under the trusted
    TSA, and not under a trusted root without it."""
    _, _, image = await push_image(pusher, "v3-tsa")
    await asyncio.to_thread(sign_keyless, V3, home, image, fake_sigstore, EMAIL)
    no_tsa = home / "trusted_root_without_tsa.json"
    root = trusted_root(fake_sigstore)
    del root["timestampAuthorities"]
    no_tsa.write_text(json.dumps(root))

    def verifies(trusted_root_path: Path) -> bool:
        result = run_cosign_keyless(
            V3, home, fake_sigstore, "verify", "--certificate-identity", EMAIL,
            "--certificate-oidc-issuer", fake_sigstore.issuer, "--trusted-root",
            str(trusted_root_path), "--insecure-ignore-tlog=true", "--use-signed-timestamps",
            "--allow-insecure-registry", image, check=False,
        )  # fmt: skip
        return result.returncode == 0

    assert await asyncio.to_thread(verifies, fake_sigstore.trusted_root_path)
    assert not await asyncio.to_thread(verifies, no_tsa)


@pytest.mark.parametrize("subject", [EMAIL, WORKFLOW], ids=["email", "uri"])
async def test_cosign_v2_keyless_legacy_signature(
    pusher: Pusher, fake_sigstore: FakeSigstore, home: Path, subject: str
) -> None:
    repo, digest, image = await push_image(pusher, "v2")
    await asyncio.to_thread(sign_keyless, V2, home, image, fake_sigstore, subject)
    requests = fake_sigstore.requests()[-3:]  # cosign v2 speaks Fulcio's API v1
    assert requests == [
        "fulcio: POST /api/v1/signingCert -> 201",
        "tsa: POST /api/v1/timestamp -> 201",
        "rekor: POST /api/v1/log/entries -> 201",
    ]

    manifest = (await pusher.get_manifest(repo, signature_tag(digest))).json()
    (layer,) = manifest["layers"]
    annotations = layer["annotations"]
    cert = x509.load_pem_x509_certificate(annotations[CERTIFICATE_ANNOTATION].encode())
    check_fulcio_certificate(cert, fake_sigstore, subject, fake_sigstore.issuer)
    chain = x509.load_pem_x509_certificates(annotations[CHAIN_ANNOTATION].encode())
    assert chain == ca_chain(fake_sigstore)  # intermediate, root
    rekor = json.loads(annotations[BUNDLE_ANNOTATION])
    payload = rekor["Payload"]
    check_set(
        fake_sigstore,
        body_b64=payload["body"],
        integrated_time=payload["integratedTime"],
        log_id_hex=payload["logID"],
        log_index=payload["logIndex"],
        set_b64=rekor["SignedEntryTimestamp"],
    )
    body = json.loads(base64.b64decode(payload["body"]))
    assert body["kind"] == "hashedrekord"
    assert body["spec"]["signature"]["content"] == annotations["dev.cosignproject.cosign/signature"]
    timestamp = json.loads(annotations[RFC3161_ANNOTATION])
    assert base64.b64decode(timestamp["SignedRFC3161Timestamp"])[:1] == b"\x30"

    def verifies(identity: str, issuer: str | None = None, *extra: str) -> bool:
        return cosign_verify_keyless(V2, home, image, fake_sigstore, identity, issuer, *extra)

    assert await asyncio.to_thread(verifies, subject)
    assert not await asyncio.to_thread(verifies, "someone-else@signgate.test")
    assert not await asyncio.to_thread(verifies, subject, "https://other-issuer.signgate.test")
    # The RFC 3161 timestamp alone (SIGSTORE_TSA_CERTIFICATE_FILE), and v2's --trusted-root.
    tsa_only = ("--insecure-ignore-tlog", "--use-signed-timestamps")
    assert await asyncio.to_thread(verifies, subject, None, *tsa_only)
    trusted_root_flag = ("--trusted-root", str(fake_sigstore.trusted_root_path))
    assert await asyncio.to_thread(verifies, subject, None, *trusted_root_flag)


async def test_cosign_v2_keyless_attestation(
    pusher: Pusher, fake_sigstore: FakeSigstore, home: Path
) -> None:
    repo, digest, image = await push_image(pusher, "v2-attest")
    predicate = home / "predicate.json"
    predicate.write_text(json.dumps(PREDICATE))
    await asyncio.to_thread(attest_keyless, V2, home, image, fake_sigstore, EMAIL, predicate)

    manifest = (await pusher.get_manifest(repo, signature_tag(digest, "att"))).json()
    (layer,) = manifest["layers"]
    annotations = layer["annotations"]
    cert = x509.load_pem_x509_certificate(annotations[CERTIFICATE_ANNOTATION].encode())
    check_fulcio_certificate(cert, fake_sigstore, EMAIL, fake_sigstore.issuer)
    envelope = json.loads(await pusher.get_blob(repo, layer["digest"]))
    payload = base64.b64decode(envelope["payload"])
    assert json.loads(payload)["predicateType"] == SLSA_PROVENANCE_V1
    rekor = json.loads(annotations[BUNDLE_ANNOTATION])
    check_set(
        fake_sigstore,
        body_b64=rekor["Payload"]["body"],
        integrated_time=rekor["Payload"]["integratedTime"],
        log_id_hex=rekor["Payload"]["logID"],
        log_index=rekor["Payload"]["logIndex"],
        set_b64=rekor["SignedEntryTimestamp"],
    )
    body = json.loads(base64.b64decode(rekor["Payload"]["body"]))
    assert (body["kind"], body["apiVersion"]) == ("dsse", "0.0.1")  # cosign v2.6: not intoto
    assert body["spec"]["payloadHash"]["value"] == hashlib.sha256(payload).hexdigest()
    (signature,) = body["spec"]["signatures"]
    assert signature["signature"] == envelope["signatures"][0]["sig"]

    def verifies(identity: str) -> bool:
        return cosign_verify_attestation_keyless(
            V2, home, image, fake_sigstore, identity, None, "--type", "slsaprovenance1"
        )

    assert await asyncio.to_thread(verifies, EMAIL)
    assert not await asyncio.to_thread(verifies, WORKFLOW)


async def test_github_workflow_claims_become_fulcio_extensions(
    pusher: Pusher, fake_sigstore: FakeSigstore, home: Path
) -> None:
    """A GitHub-Actions-like token: the claims land in the ``1.3.6.1.4.1.57264.1.x`` extensions
    (legacy raw ones and DER UTF8Strings), with the issuer given to the token."""
    repo, digest, image = await push_image(pusher, "github")
    issuer = "https://token.actions.githubusercontent.com"
    claims = {
        "repository": "signgate/app",
        "ref": "refs/heads/main",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "workflow_ref": "signgate/app/.github/workflows/release.yml@refs/heads/main",
        "event_name": "push",
    }
    await asyncio.to_thread(
        sign_keyless, V3, home, image, fake_sigstore, WORKFLOW, issuer=issuer, claims=claims
    )
    (bundle,) = await fetch_bundles(pusher, repo, digest)
    check_bundle(bundle, fake_sigstore, WORKFLOW, issuer)
    cert = x509.load_der_x509_certificate(
        base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"])
    )

    def extension(n: int) -> bytes:
        value = cert.extensions.get_extension_for_oid(
            ObjectIdentifier(f"1.3.6.1.4.1.57264.1.{n}")
        ).value
        assert isinstance(value, x509.UnrecognizedExtension)
        return value.value

    def utf8(text: str) -> bytes:
        return bytes([0x0C, len(text)]) + text.encode()

    assert extension(5) == b"signgate/app"  # legacy GitHubWorkflowRepository: raw
    assert extension(12) == utf8("https://github.com/signgate/app")  # SourceRepositoryURI
    assert extension(14) == utf8("refs/heads/main")  # SourceRepositoryRef
    assert extension(18) == utf8(f"https://github.com/{claims['workflow_ref']}")  # BuildConfigURI
    assert extension(20) == utf8("push")  # BuildTrigger
    assert await asyncio.to_thread(
        cosign_verify_keyless, V3, home, image, fake_sigstore, WORKFLOW, issuer
    )
    assert not await asyncio.to_thread(
        cosign_verify_keyless, V3, home, image, fake_sigstore, WORKFLOW
    )


async def test_fakes_without_a_timestamp_authority(
    pusher: Pusher, tmp_path: Path, home: Path
) -> None:
    """``start_fake_sigstore(tsa=False)``: no TSA in the signing config or the trusted root; the
    Rekor integrated time is the only time."""
    sigstore = start_fake_sigstore(tmp_path / "no-tsa", tsa=False)
    try:
        assert sigstore.tsa_url is None
        assert "timestampAuthorities" not in trusted_root(sigstore)
        repo, digest, image = await push_image(pusher, "no-tsa")
        await asyncio.to_thread(sign_keyless, V3, home, image, sigstore, EMAIL)
        (bundle,) = await fetch_bundles(pusher, repo, digest)
        check_bundle(bundle, sigstore, EMAIL, sigstore.issuer)
        assert not any(line.startswith("tsa:") for line in sigstore.requests())
        assert await asyncio.to_thread(cosign_verify_keyless, V3, home, image, sigstore, EMAIL)
    finally:
        sigstore.stop()
