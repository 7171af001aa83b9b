"""Your own PKI (cosign's --certificate / --certificate-chain): the real cosign signs with a key
whose certificate a private CA issued; a policy's certificateAuthority authority admits it by the
certificate's SAN, and ``cosign verify --certificate-chain`` agrees."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support import cli
from support.cli import signgate_verify
from support.push import Pusher

# Signs or verifies with the real cosign (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.cosign

V2, V3 = "v2.6.5", "v3.1.2"
SIGNER = "release@corp.example"


@dataclass(frozen=True)
class Pki:
    home: Path
    root_pem: bytes
    chain_pem: Path
    """Intermediate then root, as cosign --certificate-chain wants it."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    home = tmp_path_factory.mktemp("own-pki")
    root_key, ca_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _ca("Corp Root", root_key, "Corp Root", root_key)
    intermediate = _ca("Corp Signing CA", ca_key, "Corp Root", root_key)
    now = datetime.now(UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("release"))
        .issuer_name(intermediate.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(SIGNER)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (home / "leaf.pem").write_bytes(_pem(leaf))
    (home / "chain.pem").write_bytes(_pem(intermediate) + _pem(root))
    (home / "leaf-private.pem").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cli.run_cosign(
        V2, home, "import-key-pair", "--key", "leaf-private.pem", "--output-key-prefix", "leaf"
    )
    return Pki(home, _pem(root) + _pem(intermediate), home / "chain.pem")


def policy(pki: Pki, **authority: str) -> str:
    document = {
        "apiVersion": "signgate.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "corp"},
        "spec": {
            "images": ["**"],
            "authorities": [
                {
                    "name": "corp-pki",
                    "certificateAuthority": {"pem": pki.root_pem.decode(), **authority},
                }
            ],
        },
    }
    path = pki.home / f"policy-{secrets.token_hex(3)}.json"
    path.write_text(json.dumps(document))
    return str(path)


def cosign_admits(pki: Pki, version: str, image: str, identity: str) -> bool:
    # cosign v3 takes a bundle's CA only from a trusted root (not --certificate-chain); build one
    # with `cosign trusted-root create`, as a private-PKI user would.
    if version == V3:
        trust: tuple[str, ...] = ("--trusted-root", str(pki.home / "trusted_root.json"))
        if not (pki.home / "trusted_root.json").exists():
            cli.run_cosign(
                V3, pki.home, "trusted-root", "create", "--fulcio",
                f"url=https://ca.corp.example,certificate-chain={pki.chain_pem}",
                "--out", "trusted_root.json",
            )  # fmt: skip
    else:
        trust = ("--certificate-chain", str(pki.chain_pem))
    result = cli.run_cosign(
        version, pki.home, "verify", *trust,
        "--certificate-identity", identity, "--certificate-oidc-issuer-regexp", ".*",
        "--insecure-ignore-tlog", "--insecure-ignore-sct", "--allow-insecure-registry", image,
        check=False,
    )  # fmt: skip
    return result.returncode == 0


@pytest.mark.parametrize(
    ("version", "fmt"),
    [(V2, "cosign .sig tag"), (V3, "sigstore bundle")],
    ids=["v2-legacy", "v3-bundle"],
)
async def test_certificate_from_own_ca_is_admitted_by_its_san(
    pki: Pki, pusher: Pusher, version: str, fmt: str
) -> None:
    name = f"pki/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    image = f"{pusher.host}/{name}@{digest}"
    await asyncio.to_thread(
        cli.cosign_sign, version, pki.home, image,
        "--certificate", "leaf.pem", "--certificate-chain", str(pki.chain_pem), key="leaf.key",
    )  # fmt: skip

    record = await signgate_verify(
        image, None, pusher.host, "--policy", policy(pki, subject=SIGNER)
    )
    assert record["allowed"] is True, record["reasons"]
    listed = record["authorities"]
    assert isinstance(listed, list)
    (authority,) = listed
    assert authority["format"] == fmt
    assert authority["signer"] == f"certificate for {SIGNER}"
    assert await asyncio.to_thread(cosign_admits, pki, version, image, SIGNER)

    other = await signgate_verify(
        image, None, pusher.host, "--policy", policy(pki, subject="intern@corp.example")
    )
    assert other["allowed"] is False
    assert f"identity is {SIGNER}, not intern@corp.example" in str(other["reasons"])
    assert not await asyncio.to_thread(cosign_admits, pki, version, image, "intern@corp.example")

    # A CA the policy does not name: refused.
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _pem(_ca("Other Root", stranger_key, "Other Root", stranger_key))
    foreign = Pki(pki.home, stranger, pki.chain_pem)
    refused = await signgate_verify(image, None, pusher.host, "--policy", policy(foreign))
    assert refused["allowed"] is False
    assert "is not among the policy's CA certificates" in str(refused["reasons"])
