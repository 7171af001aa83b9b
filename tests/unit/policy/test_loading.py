"""TrustPolicy YAML is validated strictly and errors name the file, policy and field."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signgate.errors import PolicyError
from signgate.policy.compiled import compile_policy
from signgate.policy.loading import load_policy_file, parse_policies

KEY = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGmsWpZNuu+SUX70n3lVK4JLsaoV7\n"
    "T+rhea2rQUu29EQiatoLB06QdsmSd+GsQGlQzfcDtsKPzb+B2zLggrWZjg==\n"
    "-----END PUBLIC KEY-----\n"
)


REPOSITORY = Path(__file__).resolve().parents[3]


def policy_yaml(name: str = "release", extra: str = "", authorities: str | None = None) -> str:
    indented = "\n".join("            " + line for line in KEY.strip().splitlines())
    authorities = (
        authorities
        or f"""
    - name: release-key
      key:
        pem: |
{indented}"""
    )
    return f"""
apiVersion: signgate.dev/v1alpha1
kind: TrustPolicy
metadata:
  name: {name}
spec:
  images: ["registry.example.com/release/**"]
  authorities:{authorities}
{extra}
"""


def test_a_valid_policy_loads_and_compiles(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(policy_yaml() + "---\n" + policy_yaml("second"))
    policies = load_policy_file(path)
    assert [p.metadata.name for p in policies] == ["release", "second"]
    compiled = compile_policy(policies[0], source=str(path))
    assert compiled.mode == "Enforce"
    assert compiled.threshold == 1
    assert compiled.governs("registry.example.com/release/app")
    assert not compiled.governs("registry.example.com/dev/app")
    authority = compiled.authorities[0]
    assert authority.name == "release-key"
    assert authority.requires_tlog is False  # default for keys: air-gapped clusters


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  threshold: 2", "threshold 2 exceeds the number of authorities"),
        ("  threshold: 0", "threshold 0 needs at least one entry in 'attestations'"),
        ("  threshold: -1", "spec.threshold"),
        ("  required: [nobody]", "unknown authorities: nobody"),
        ("  mode: enforce", "spec.mode"),
        ("  imagse: []", "imagse"),
        (
            "  attestations: [{predicateType: x, authorities: [ghost]}]",
            "unknown authorities: ghost",
        ),
    ],
)
def test_invalid_policies_name_the_problem(extra: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policies(policy_yaml(extra=extra), "p.yaml")
    text = str(info.value)
    assert "p.yaml (document 1)" in text
    assert "'release'" in text
    assert message in text


def test_authority_needs_exactly_one_kind() -> None:
    both = """
    - name: a
      key: {pem: "x"}
      keyless: {issuer: "i", subject: "s"}"""
    with pytest.raises(PolicyError, match="exactly one of 'key', 'keyless' and 'certificateA"):
        parse_policies(policy_yaml(authorities=both), "p.yaml")


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("not pem", "certificateAuthority.pem: not PEM certificates"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "not PEM certificates"),
    ],
)
def test_certificate_authority_pem_is_checked_when_compiled(pem: str, message: str) -> None:
    authorities = f"""
    - name: corp
      certificateAuthority: {{pem: "{pem}"}}"""
    (policy,) = parse_policies(policy_yaml(authorities=authorities), "p.yaml")
    with pytest.raises(PolicyError, match=message):
        compile_policy(policy)


def _ca_pem_with_a_malformed_name() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corp-root")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    # The CN's UTF8String tagged [APPLICATION 19]: the names parse only when first read.
    cn = b"\x06\x03\x55\x04\x03\x0c"
    der = certificate.public_bytes(serialization.Encoding.DER).replace(cn, cn[:-1] + b"\x73")
    body = base64.b64encode(der).decode()
    return f"-----BEGIN CERTIFICATE-----\\n{body}\\n-----END CERTIFICATE-----\\n"


def test_certificate_authority_with_a_malformed_name_is_a_policy_error() -> None:
    # Found by scripts/fuzz: finding the self-signed root read the names, which raised ValueError.
    authorities = f"""
    - name: corp
      certificateAuthority: {{pem: "{_ca_pem_with_a_malformed_name()}"}}"""
    (policy,) = parse_policies(policy_yaml(authorities=authorities), "p.yaml")
    with pytest.raises(PolicyError, match=r"certificateAuthority\.pem: not PEM certificates"):
        compile_policy(policy)


def test_a_line_break_in_a_field_name_stays_out_of_the_message() -> None:
    # Found by scripts/fuzz: pydantic names an unknown field by its key, line breaks included.
    secret = """
    - name: release-key
      key: {secretRef: {name: cosign, "name\\nrelease-key": x}}"""
    with pytest.raises(PolicyError) as info:
        parse_policies(policy_yaml(authorities=secret), "p.yaml")
    assert "name release-key: Extra inputs are not permitted" in str(info.value)
    assert "\n" not in str(info.value)


def test_duplicate_authority_names_are_rejected() -> None:
    twice = """
    - name: a
      key: {pem: "x"}
    - name: a
      key: {pem: "y"}"""
    with pytest.raises(PolicyError, match="repeated: a"):
        parse_policies(policy_yaml(authorities=twice), "p.yaml")


def test_unparseable_key_fails_compilation_with_policy_and_authority() -> None:
    bad = """
    - name: release-key
      key: {pem: "-----BEGIN PUBLIC KEY-----\\nnot base64!\\n-----END PUBLIC KEY-----\\n"}"""
    (policy,) = parse_policies(policy_yaml(authorities=bad), "p.yaml")
    with pytest.raises(
        PolicyError, match="TrustPolicy 'release', authority 'release-key': invalid key"
    ):
        compile_policy(policy)


def test_secret_ref_outside_a_cluster_is_explained() -> None:
    secret = """
    - name: release-key
      key: {secretRef: {name: cosign, namespace: signgate}}"""
    (policy,) = parse_policies(policy_yaml(authorities=secret), "p.yaml")
    with pytest.raises(PolicyError, match="secretRef is resolved by the operator"):
        compile_policy(policy)


def test_bad_regexp_in_keyless_identity_is_rejected() -> None:
    keyless = """
    - name: ci
      keyless: {issuer: "https://issuer.example", subjectRegExp: "(unclosed"}"""
    with pytest.raises(PolicyError, match="subjectRegExp is not a valid regular expression"):
        parse_policies(policy_yaml(authorities=keyless), "p.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("key: [unclosed", "not valid YAML"),
        ("- a\n- b", "expected a TrustPolicy object"),
        ("kind: ConfigMap\napiVersion: v1", "kind is 'ConfigMap'"),
        # Found while writing the fuzz target: PyYAML's own exceptions besides YAMLError.
        ("kind: TrustPolicy\ncreated: 2024-02-30", "not valid YAML: day is out of range"),
        ("[" * 2000, "not valid YAML: maximum recursion depth"),
    ],
)
def test_malformed_files_are_policy_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policies(text, "p.yaml")


@pytest.mark.parametrize("metadata", ["/nsiag", "[1]", "7"])
def test_metadata_that_is_not_an_object_is_a_policy_error(metadata: str) -> None:
    # Found by scripts/fuzz: naming the invalid policy read metadata.name with dict.get.
    text = f"apiVersion: signgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {metadata}\n"
    with pytest.raises(PolicyError, match=r"invalid TrustPolicy '\?': .*metadata"):
        parse_policies(text, "p.yaml")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy_file(tmp_path / "absent.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("---\n")
    with pytest.raises(PolicyError, match="contains no TrustPolicy"):
        load_policy_file(empty)


def test_signature_repository_must_be_a_repository() -> None:
    with pytest.raises(PolicyError, match="not a tag or digest"):
        compile_policy(
            parse_policies(policy_yaml(extra="  signatureRepository: ghcr.io/sigs:v1"), "p")[0]
        )
    compiled = compile_policy(
        parse_policies(policy_yaml(extra="  signatureRepository: ghcr.io/org/sigs"), "p")[0]
    )
    assert compiled.signature_repository == "ghcr.io/org/sigs"


def test_namespace_selector_semantics() -> None:
    extra = """  namespaceSelector:
    matchLabels: {tier: prod}
    matchExpressions:
      - {key: team, operator: In, values: [a, b]}
      - {key: sandbox, operator: DoesNotExist}"""
    compiled = compile_policy(parse_policies(policy_yaml(extra=extra), "p")[0])
    assert compiled.selects_namespace({"tier": "prod", "team": "a"})
    assert not compiled.selects_namespace({"tier": "dev", "team": "a"})
    assert not compiled.selects_namespace({"tier": "prod", "team": "c"})
    assert not compiled.selects_namespace({"tier": "prod", "team": "a", "sandbox": "1"})
    assert compiled.selects_namespace(None)  # outside a cluster every policy applies


@pytest.mark.parametrize(
    "path",
    sorted(
        str(p.relative_to(REPOSITORY))
        for folder in ("deploy/examples", "examples")
        for p in (REPOSITORY / folder).glob("*.yaml")
    ),
)
def test_shipped_example_policies_load_and_compile(path: str) -> None:
    # Examples are what users copy: each must be a valid TrustPolicy that compiles as written.
    text = (REPOSITORY / path).read_text()
    policies = parse_policies(text, path)
    assert policies
    for policy in policies:
        if all(a.key is None or a.key.secret_ref is None for a in policy.spec.authorities):
            compile_policy(policy)
