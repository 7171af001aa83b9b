"""Every configuration check of the command line, in-process through ``signgate.cli.main(argv)``.

Each case must fail before any registry or cluster is contacted: exit 2, nothing on stdout, one
line on stderr (``signgate: error: ...``; for what argparse refuses, ``signgate COMMAND: error:
...``, without the usage). A guard makes any attempt to open a registry client fail the test,
and the cluster's credentials point nowhere. ``tests/integration/test_cli.py`` keeps two of these
cases as a smoke test of the real process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signgate.cli import options
from signgate.cli.main import main
from support.formats import generate_key, public_key_pem

EXAMPLE_POLICY = Path(__file__).resolve().parents[3] / "examples" / "policy.yaml"
ISSUER = "https://issuer.example"
KEYLESS_PAIRS = (
    "keyless verification needs exactly one of --certificate-identity and "
    "--certificate-identity-regexp, and exactly one of --certificate-oidc-issuer and "
    "--certificate-oidc-issuer-regexp"
)
NOTHING_TO_VERIFY = (
    "nothing to verify against: give --key FILE, --certificate-identity and "
    "--certificate-oidc-issuer, or --policy FILE"
)
ATTESTATION_ALONE = (
    "--attestation needs --key or --certificate-identity (policies list theirs in "
    "spec.attestations)"
)
SERVE = ("serve", "--tls-cert", "{dir}/tls.crt", "--tls-key", "{dir}/tls.key")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths the cases name, as ``{placeholder}`` values."""
    root = tmp_path_factory.mktemp("cli")
    (root / "good.pub").write_bytes(public_key_pem(generate_key()))
    (root / "bad.pub").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    (root / "k1.pub").write_bytes(
        ec.generate_private_key(ec.SECP256K1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (root / "bad.yaml").write_text(
        "apiVersion: signgate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: x}\nspec: {}\n"
    )
    (root / "empty.yaml").write_text("# nothing here\n")
    (root / "latin1.yaml").write_bytes(b"metadata: {name: caf\xe9}\n")
    (root / "broken.yaml").write_text("kind: Pod\nmetadata: {name: [unclosed\n")
    (root / "root.json").write_text(json.dumps({"mediaType": "nope"}))
    (root / "config.json").write_text(json.dumps({"auths": {"r.example": {"auth": "!!!"}}}))
    (root / "ca.pem").write_text("not checked before a registry is contacted\n")
    (root / "manifests").mkdir()
    return {"dir": str(root), "policy": str(EXAMPLE_POLICY)}


@pytest.fixture(autouse=True)
def no_registry_no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a registry client fails the test; the cluster's credentials are absent."""

    class Refused:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("a configuration error must come before any registry is used")

    monkeypatch.setattr(options, "RegistryClient", Refused)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def _fail(
    argv: tuple[str, ...], files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """Run ``signgate ARGV`` in-process; check exit 2 and silence on stdout; stderr's lines."""
    try:
        code = main([arg.format(**files) for arg in argv])
    except SystemExit as exc:  # argparse
        code = exc.code  # type: ignore[assignment]
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n")
    return err.splitlines()


def _config_error(
    argv: tuple[str, ...],
    message: str,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A `ConfigError`: exactly one line, ``signgate: error: MESSAGE`` (or starting so, when
    ``message`` ends with ``...``: the rest comes from a library)."""
    (line,) = _fail(argv, files, capsys)
    expected = "signgate: error: " + message.format(**files)
    if expected.endswith("..."):
        assert line.startswith(expected.removesuffix("...")), line
    else:
        assert line == expected


def _usage_error(
    argv: tuple[str, ...],
    message: str,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An argparse error: one line, ``PROG: error: MESSAGE`` (then, for a choice, the choices)."""
    (line,) = _fail(argv, files, capsys)
    assert line.startswith(message), line


# --- verify: options.py (keys, policies, keyless flags, registry flags, trusted root) ----------

VERIFY: dict[str, tuple[tuple[str, ...], str]] = {
    "nothing-to-verify": (("verify", "nginx"), NOTHING_TO_VERIFY),
    "key-absent": (
        ("verify", "--key", "{dir}/absent.pub", "nginx"),
        "cannot read key {dir}/absent.pub: No such file or directory",
    ),
    "key-directory": (
        ("verify", "--key", "{dir}", "nginx"),
        "cannot read key {dir}: Is a directory",
    ),
    "key-not-pem": (
        ("verify", "--key", "{dir}/bad.pub", "nginx"),
        "{dir}/bad.pub: public key is not a valid PKIX SubjectPublicKeyInfo...",
    ),
    "key-unsupported-curve": (
        ("verify", "--key", "{dir}/k1.pub", "nginx"),
        "{dir}/k1.pub: unsupported key: ECDSA secp256k1...",
    ),
    "second-key-bad": (
        ("verify", "--key", "{dir}/good.pub", "--key", "{dir}/bad.pub", "nginx"),
        "{dir}/bad.pub: public key is not a valid PKIX SubjectPublicKeyInfo...",
    ),
    "policy-invalid": (
        ("verify", "--policy", "{dir}/bad.yaml", "nginx"),
        "{dir}/bad.yaml (document 1): invalid TrustPolicy 'x': spec.images: Field required; "
        "spec.authorities: Field required",
    ),
    "policy-absent": (
        ("verify", "--policy", "{dir}/absent.yaml", "nginx"),
        "cannot read policy file {dir}/absent.yaml: No such file or directory",
    ),
    "policy-directory": (
        ("verify", "--policy", "{dir}", "nginx"),
        "cannot read policy file {dir}: Is a directory",
    ),
    "policy-empty": (
        ("verify", "--policy", "{dir}/empty.yaml", "nginx"),
        "{dir}/empty.yaml: contains no TrustPolicy",
    ),
    "policy-not-utf8": (
        ("verify", "--policy", "{dir}/latin1.yaml", "nginx"),
        "{dir}/latin1.yaml: not UTF-8 text",
    ),
    "identity-without-issuer": (("verify", "--certificate-identity", "me", "nginx"), KEYLESS_PAIRS),
    "issuer-without-identity": (
        ("verify", "--certificate-oidc-issuer", ISSUER, "nginx"),
        KEYLESS_PAIRS,
    ),
    "identity-and-identity-regexp": (
        (
            "verify", "--certificate-identity", "me", "--certificate-identity-regexp", "m.*",
            "--certificate-oidc-issuer", ISSUER, "nginx",
        ),
        KEYLESS_PAIRS,
    ),
    "issuer-and-issuer-regexp": (
        (
            "verify", "--certificate-identity", "me", "--certificate-oidc-issuer", ISSUER,
            "--certificate-oidc-issuer-regexp", "https://.*", "nginx",
        ),
        KEYLESS_PAIRS,
    ),
    "identity-regexp-invalid": (
        (
            "verify", "--certificate-identity-regexp", "(", "--certificate-oidc-issuer", ISSUER,
            "nginx",
        ),
        "--certificate-identity-regexp '(' is not a valid regular expression: missing ), "
        "unterminated subpattern at position 0",
    ),
    "issuer-regexp-invalid": (
        ("verify", "--certificate-identity", "me", "--certificate-oidc-issuer-regexp", "(", "x"),
        "--certificate-oidc-issuer-regexp '(' is not a valid regular expression: missing ), "
        "unterminated subpattern at position 0",
    ),
    "key-and-keyless": (
        (
            "verify", "--key", "{dir}/good.pub", "--certificate-identity", "me",
            "--certificate-oidc-issuer", ISSUER, "nginx",
        ),
        "give --key or --certificate-identity/--certificate-oidc-issuer, not both",
    ),
    "attestation-without-signer": (
        ("verify", "--attestation", "slsaprovenance1", "nginx"),
        ATTESTATION_ALONE,
    ),
    "attestation-with-policy-only": (
        ("verify", "--policy", "{policy}", "--attestation", "slsaprovenance1", "nginx"),
        ATTESTATION_ALONE,
    ),
    "registry-ca-without-file": (
        ("verify", "--key", "{dir}/good.pub", "--registry-ca", "nofile", "nginx"),
        "--registry-ca 'nofile': expected HOST:PORT=FILE",
    ),
    "registry-ca-without-host": (
        ("verify", "--key", "{dir}/good.pub", "--registry-ca", "={dir}/ca.pem", "nginx"),
        "--registry-ca '={dir}/ca.pem': expected HOST:PORT=FILE",
    ),
    "registry-ca-empty-file": (
        ("verify", "--key", "{dir}/good.pub", "--registry-ca", "r.example:5000=", "nginx"),
        "--registry-ca 'r.example:5000=': expected HOST:PORT=FILE",
    ),
    "registry-ca-missing-file": (
        (
            "verify", "--key", "{dir}/good.pub", "--registry-ca", "r.example:5000={dir}/none.pem",
            "nginx",
        ),
        "--registry-ca 'r.example:5000={dir}/none.pem': {dir}/none.pem is not a readable file",
    ),
    "registry-ca-directory": (
        ("verify", "--key", "{dir}/good.pub", "--registry-ca", "r.example={dir}", "nginx"),
        "--registry-ca 'r.example={dir}': {dir} is not a readable file",
    ),
    "registry-config-unreadable": (
        ("verify", "--key", "{dir}/good.pub", "--registry-config", "/nonexistent", "nginx"),
        "cannot read registry config /nonexistent: No such file or directory",
    ),
    "registry-config-invalid": (
        ("verify", "--key", "{dir}/good.pub", "--registry-config", "{dir}/config.json", "nginx"),
        "{dir}/config.json: auths['r.example'].auth is not base64",
    ),
    "trusted-root-unreadable": (
        ("verify", "--key", "{dir}/good.pub", "--trusted-root", "{dir}/none.json", "nginx"),
        "cannot read trusted root {dir}/none.json: No such file or directory",
    ),
    "trusted-root-invalid": (
        ("verify", "--key", "{dir}/good.pub", "--trusted-root", "{dir}/root.json", "nginx"),
        "{dir}/root.json: mediaType: not a Sigstore trusted root ('nope')",
    ),
    "timeout-zero": (
        ("verify", "--key", "{dir}/good.pub", "--timeout", "0", "nginx"),
        "--timeout must be positive",
    ),
    "timeout-negative": (
        ("verify", "--policy", "{policy}", "--timeout", "-1", "nginx"),
        "--timeout must be positive",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(VERIFY))
def test_verify_configuration_errors(
    case: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv, message = VERIFY[case]
    _config_error(argv, message, files, capsys)


# --- serve: serve.py (and the options every engine shares) ----------------------------------

SERVE_ERRORS: dict[str, tuple[tuple[str, ...], str]] = {
    "policy-invalid": ((*SERVE, "--policy", "{dir}/bad.yaml"), VERIFY["policy-invalid"][1]),
    "policy-absent": (
        (*SERVE, "--policy", "{dir}/absent.yaml"),
        "cannot read policy file {dir}/absent.yaml: No such file or directory",
    ),
    "trusted-root-unreadable": (
        (*SERVE, "--trusted-root", "{dir}/none.json"),
        "cannot read trusted root {dir}/none.json: No such file or directory",
    ),
    "trusted-root-invalid": (
        (*SERVE, "--policy", "{policy}", "--trusted-root", "{dir}/root.json"),
        "{dir}/root.json: mediaType: not a Sigstore trusted root ('nope')",
    ),
    "registry-ca-format": (
        (*SERVE, "--registry-ca", "{dir}/ca.pem"),
        "--registry-ca '{dir}/ca.pem': expected HOST:PORT=FILE",
    ),
    "registry-ca-missing-file": (
        (*SERVE, "--registry-ca", "r.example={dir}/none.pem"),
        "--registry-ca 'r.example={dir}/none.pem': {dir}/none.pem is not a readable file",
    ),
    "registry-config-unreadable": (
        (*SERVE, "--registry-config", "{dir}/none.json"),
        "cannot read registry config {dir}/none.json: No such file or directory",
    ),
    "pull-secret-without-name": (
        (*SERVE, "--pull-secret", "regcred"),
        "--pull-secret 'regcred': expected NAMESPACE/NAME",
    ),
    "pull-secret-empty-namespace": (
        (*SERVE, "--pull-secret", "/regcred"),
        "--pull-secret '/regcred': expected NAMESPACE/NAME",
    ),
    "pull-secret-empty-name": (
        (*SERVE, "--pull-secret", "ns/"),
        "--pull-secret 'ns/': expected NAMESPACE/NAME",
    ),
    "pull-secret-two-slashes": (
        (*SERVE, "--pull-secret", "ns/a/b"),
        "--pull-secret 'ns/a/b': expected NAMESPACE/NAME",
    ),
    "pull-secret-with-policy": (
        (*SERVE, "--policy", "{policy}", "--pull-secret", "ns/regcred"),
        "--pull-secret needs the operator mode (no --policy)",
    ),
    "deadline-zero": (
        (*SERVE, "--policy", "{policy}", "--deadline", "0"),
        "--deadline must be positive",
    ),
    "deadline-negative": ((*SERVE, "--deadline", "-0.5"), "--deadline must be positive"),
    "tag-ttl-negative": (
        (*SERVE, "--policy", "{policy}", "--tag-ttl", "-1"),
        "--tag-ttl must not be negative",
    ),
    "status-interval-below-1": (
        (*SERVE, "--status-interval", "0.5"),
        "--status-interval must be at least 1 second",
    ),
    "status-interval-zero": (
        (*SERVE, "--policy", "{policy}", "--status-interval", "0"),
        "--status-interval must be at least 1 second",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SERVE_ERRORS))
def test_serve_configuration_errors(
    case: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv, message = SERVE_ERRORS[case]
    _config_error(argv, message, files, capsys)


def test_serve_accepts_a_zero_tag_ttl_and_a_one_second_status_interval(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The bounds themselves are allowed: the run gets as far as the next check."""
    argv = (
        *SERVE, "--tag-ttl", "0", "--status-interval", "1", "--deadline", "0.1",
        "--pull-secret", "bad",
    )  # fmt: skip
    _config_error(argv, "--pull-secret 'bad': expected NAMESPACE/NAME", files, capsys)


# --- explain and audit: explain.py, audit.py (policies are optional: else the cluster's) -------

OTHERS: dict[str, tuple[tuple[str, ...], str]] = {
    "explain-timeout-zero": (
        ("explain", "--key", "{dir}/good.pub", "--timeout", "0", "nginx"),
        "--timeout must be positive",
    ),
    "explain-timeout-negative": (
        ("explain", "--timeout", "-3", "nginx"),
        "--timeout must be positive",
    ),
    "explain-key-not-pem": (
        ("explain", "--key", "{dir}/bad.pub", "nginx"),
        "{dir}/bad.pub: public key is not a valid PKIX SubjectPublicKeyInfo...",
    ),
    "explain-policy-invalid": (
        ("explain", "--policy", "{dir}/bad.yaml", "nginx"),
        VERIFY["policy-invalid"][1],
    ),
    "explain-key-and-keyless": (
        (
            "explain", "--key", "{dir}/good.pub", "--certificate-identity", "me",
            "--certificate-oidc-issuer", ISSUER, "nginx",
        ),
        "give --key or --certificate-identity/--certificate-oidc-issuer, not both",
    ),
    "explain-identity-regexp-invalid": (
        (
            "explain", "--certificate-identity-regexp", "[", "--certificate-oidc-issuer", ISSUER,
            "nginx",
        ),
        "--certificate-identity-regexp '[' is not a valid regular expression: unterminated "
        "character set at position 0",
    ),
    "explain-attestation-without-signer": (
        ("explain", "--attestation", "cyclonedx", "nginx"),
        ATTESTATION_ALONE,
    ),
    "explain-trusted-root-invalid": (
        ("explain", "--key", "{dir}/good.pub", "--trusted-root", "{dir}/root.json", "nginx"),
        "{dir}/root.json: mediaType: not a Sigstore trusted root ('nope')",
    ),
    "explain-registry-config-unreadable": (
        ("explain", "--key", "{dir}/good.pub", "--registry-config", "{dir}", "nginx"),
        "cannot read registry config {dir}: Is a directory",
    ),
    "explain-no-cluster-credentials": (
        ("explain", "nginx"),
        "cannot read the Kubernetes credentials in /nonexistent/kubeconfig: ...",
    ),
    "audit-timeout-zero": (
        ("audit", "--key", "{dir}/good.pub", "--manifests", "{dir}/manifests", "--timeout", "0"),
        "--timeout must be positive",
    ),
    "audit-manifests-missing": (
        ("audit", "--key", "{dir}/good.pub", "--manifests", "{dir}/nope"),
        "--manifests {dir}/nope: no such file or directory",
    ),
    "audit-manifests-second-missing": (
        (
            "audit", "--key", "{dir}/good.pub", "--manifests", "{dir}/manifests", "--manifests",
            "{dir}/nope.yaml",
        ),
        "--manifests {dir}/nope.yaml: no such file or directory",
    ),
    "audit-manifests-not-yaml": (
        ("audit", "--key", "{dir}/good.pub", "--manifests", "{dir}/broken.yaml"),
        "{dir}/broken.yaml: not YAML: ...",
    ),
    "audit-keyless-incomplete": (
        ("audit", "--certificate-identity", "me", "--manifests", "{dir}/manifests"),
        KEYLESS_PAIRS,
    ),
    "audit-attestation-without-signer": (
        ("audit", "--attestation", "spdx", "--manifests", "{dir}/manifests"),
        ATTESTATION_ALONE,
    ),
    "audit-key-absent": (
        ("audit", "--key", "{dir}/absent.pub", "--manifests", "{dir}/manifests"),
        "cannot read key {dir}/absent.pub: No such file or directory",
    ),
    "audit-registry-ca-format": (
        (
            "audit", "--key", "{dir}/good.pub", "--registry-ca", "x",
            "--manifests", "{dir}/manifests",
        ),
        "--registry-ca 'x': expected HOST:PORT=FILE",
    ),
    "audit-trusted-root-unreadable": (
        (
            "audit", "--key", "{dir}/good.pub", "--trusted-root", "{dir}/none.json",
            "--manifests", "{dir}/manifests",
        ),
        "cannot read trusted root {dir}/none.json: No such file or directory",
    ),
    "audit-no-cluster-credentials": (
        ("audit",),
        "cannot read the Kubernetes credentials in /nonexistent/kubeconfig: ...",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(OTHERS))
def test_explain_and_audit_configuration_errors(
    case: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv, message = OTHERS[case]
    _config_error(argv, message, files, capsys)


# --- parser.py: what argparse refuses (one line too: the parser prints no usage) ---------------

USAGE: dict[str, tuple[tuple[str, ...], str]] = {
    "no-command": ((), "signgate: error: the following arguments are required: command"),
    "unknown-command": (
        ("frobnicate",),
        "signgate: error: argument command: invalid choice: 'frobnicate'",
    ),
    "log-format": (
        ("--log-format", "xml", "crd"),
        "signgate: error: argument --log-format: invalid choice: 'xml'",
    ),
    "verify-no-image": (
        ("verify", "--key", "{dir}/good.pub"),
        "signgate verify: error: the following arguments are required: IMAGE",
    ),
    # The choice is refused before the (bad) key file is read.
    "verify-output": (
        ("verify", "--key", "{dir}/bad.pub", "--output", "yaml", "nginx"),
        "signgate verify: error: argument --output: invalid choice: 'yaml'",
    ),
    "verify-tlog": (
        ("verify", "--key", "{dir}/good.pub", "--tlog", "always", "nginx"),
        "signgate verify: error: argument --tlog: invalid choice: 'always'",
    ),
    "verify-unmatched": (
        ("verify", "--key", "{dir}/good.pub", "--unmatched", "ignore", "nginx"),
        "signgate verify: error: argument --unmatched: invalid choice: 'ignore'",
    ),
    "verify-timeout-not-a-number": (
        ("verify", "--key", "{dir}/good.pub", "--timeout", "soon", "nginx"),
        "signgate verify: error: argument --timeout: invalid float value: 'soon'",
    ),
    "verify-unknown-flag": (
        ("verify", "--key", "{dir}/good.pub", "--frobnicate", "nginx"),
        "signgate: error: unrecognized arguments: --frobnicate",
    ),
    "serve-no-tls-key": (
        ("serve", "--tls-cert", "{dir}/tls.crt"),
        "signgate serve: error: the following arguments are required: --tls-key",
    ),
    "serve-no-tls": (
        ("serve", "--policy", "{policy}"),
        "signgate serve: error: the following arguments are required: --tls-cert, --tls-key",
    ),
    "serve-unmatched": (
        (*SERVE, "--unmatched", "maybe"),
        "signgate serve: error: argument --unmatched: invalid choice: 'maybe'",
    ),
    "serve-port": (
        (*SERVE, "--port", "https"),
        "signgate serve: error: argument --port: invalid int value: 'https'",
    ),
    "serve-deadline": (
        (*SERVE, "--deadline", "8s"),
        "signgate serve: error: argument --deadline: invalid float value: '8s'",
    ),
    "serve-tag-ttl": (
        (*SERVE, "--tag-ttl", "ten"),
        "signgate serve: error: argument --tag-ttl: invalid float value: 'ten'",
    ),
    "serve-status-interval": (
        (*SERVE, "--status-interval", ""),
        "signgate serve: error: argument --status-interval: invalid float value: ''",
    ),
    "explain-no-image": (
        ("explain", "--key", "{dir}/good.pub"),
        "signgate explain: error: the following arguments are required: IMAGE",
    ),
    "explain-two-images": (
        ("explain", "--key", "{dir}/good.pub", "a", "b"),
        "signgate: error: unrecognized arguments: b",
    ),
    "explain-output": (
        ("explain", "--key", "{dir}/good.pub", "--output", "table", "nginx"),
        "signgate explain: error: argument --output: invalid choice: 'table'",
    ),
    "audit-output": (
        ("audit", "--key", "{dir}/good.pub", "--output", "text"),
        "signgate audit: error: argument --output: invalid choice: 'text'",
    ),
    "audit-timeout": (
        ("audit", "--timeout", "1m"),
        "signgate audit: error: argument --timeout: invalid float value: '1m'",
    ),
    "crd-output": (
        ("crd", "--output", "toml"),
        "signgate crd: error: argument --output: invalid choice: 'toml'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(USAGE))
def test_usage_errors(case: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    argv, message = USAGE[case]
    _usage_error(argv, message.format(**files), files, capsys)


def test_crd_needs_nothing_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """The one command that never fails on configuration (its output: tests/unit/policy)."""
    assert main(["crd", "--output", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["kind"] == "CustomResourceDefinition"
    assert err == ""


# --- serve: client certificates (--client-ca, --client-name) -------------------------------


@pytest.fixture(scope="module")
def client_ca_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA, a leaf certificate it issued and a file of text, as ``{placeholder}`` values."""
    root = tmp_path_factory.mktemp("client-ca")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    ca.issue_cert("apiserver").cert_chain_pems[0].write_to_path(str(root / "leaf.pem"))
    (root / "text.pem").write_text("not a certificate\n")
    return {"ca_dir": str(root)}


CLIENT_AUTH_ERRORS: dict[str, tuple[tuple[str, ...], str]] = {
    "client-name-without-client-ca": (
        (*SERVE, "--client-name", "kube-apiserver-webhook-client"),
        "--client-name needs --client-ca (the CA that issued those names)",
    ),
    "client-name-without-client-ca-with-policy": (
        (*SERVE, "--policy", "{policy}", "--client-name", "a", "--client-name", "b"),
        "--client-name needs --client-ca (the CA that issued those names)",
    ),
    "client-name-empty": (
        (*SERVE, "--client-ca", "{ca_dir}/ca.pem", "--client-name", ""),
        "--client-name must not be empty",
    ),
    "client-ca-absent": (
        (*SERVE, "--client-ca", "{ca_dir}/absent.pem"),
        "cannot read client CA {ca_dir}/absent.pem: No such file or directory",
    ),
    "client-ca-directory": (
        (*SERVE, "--policy", "{policy}", "--client-ca", "{ca_dir}"),
        "cannot read client CA {ca_dir}: Is a directory",
    ),
    "client-ca-not-pem": (
        (*SERVE, "--client-ca", "{ca_dir}/text.pem"),
        "client CA {ca_dir}/text.pem holds no PEM certificate",
    ),
    "client-ca-a-leaf": (
        (*SERVE, "--client-ca", "{ca_dir}/leaf.pem", "--client-name", "apiserver"),
        "client CA {ca_dir}/leaf.pem holds no CA certificate",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CLIENT_AUTH_ERRORS))
def test_serve_client_certificate_errors(
    case: str,
    files: dict[str, str],
    client_ca_files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv, message = CLIENT_AUTH_ERRORS[case]
    _config_error(argv, message, {**files, **client_ca_files}, capsys)
