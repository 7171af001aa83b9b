"""The chart against a real kube-apiserver: it installs, the apiserver accepts every object, and
the ServiceAccount can do what the operator needs and nothing more."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from support.kubeapi import KubeAPIServer

# Renders the chart with the real helm (other binaries: marked by fixture, tests/conftest.py).
pytestmark = pytest.mark.helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "signgate"
TOOLS = Path(os.environ.get("SIGNGATE_TOOLS_CACHE", Path.home() / ".cache/signgate-test-tools"))
HELM = TOOLS / "helm-v3.17.2" / "helm"


def helm(apiserver: KubeAPIServer, *args: str) -> subprocess.CompletedProcess[str]:
    if not HELM.is_file():
        pytest.fail(f"helm is not installed at {HELM}: run scripts/install-helm", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return subprocess.run(
        [str(HELM), f"--kubeconfig={apiserver.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_rendered_manifests_pass_kubernetes_validate(tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(
        subprocess.run(
            [str(HELM), "template", "signgate", str(CHART), "-n", "signgate"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    result = subprocess.run(
        ["kubernetes-validate", "--strict", "-k", "1.35.0", str(rendered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed for resource deployment/signgate" in result.stdout + result.stderr


def test_helm_install_is_accepted_and_rbac_is_least_privilege(apiserver: KubeAPIServer) -> None:
    namespace = apiserver.create_namespace("chart")
    release = "signgate"
    installed = helm(apiserver, "install", release, str(CHART), "-n", namespace)
    try:
        assert installed.returncode == 0, installed.stderr
        # Every object the chart makes is really in the cluster, CRD included and established.
        apiserver.kubectl(
            "wait", "--for=condition=Established", "crd/trustpolicies.signgate.dev", check=True
        )
        for kind in ("deployment", "service", "poddisruptionbudget", "secret", "serviceaccount"):
            apiserver.kubectl("get", kind, "signgate" if kind != "secret" else "signgate-tls",
                              "-n", namespace, check=True)  # fmt: skip
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration",
                     "clusterrole", "clusterrolebinding"):  # fmt: skip
            apiserver.kubectl("get", kind, "signgate", check=True)

        account = f"system:serviceaccount:{namespace}:signgate"

        def can(*args: str) -> bool:
            result = apiserver.kubectl("auth", "can-i", *args, "--as", account)
            return result.stdout.strip() == "yes"

        # What the operator needs.
        assert can("watch", "trustpolicies.signgate.dev")
        assert can("patch", "trustpolicies.signgate.dev", "--subresource=status")
        assert can("list", "namespaces")
        assert can("get", "secrets", "-n", "default")
        assert can("get", "serviceaccounts", "-n", "default")
        assert can("create", "events", "-n", "default")
        # And nothing more.
        assert not can("list", "secrets", "--all-namespaces")
        assert not can("watch", "secrets", "-n", "default")
        assert not can("create", "pods", "-n", "default")
        assert not can("delete", "trustpolicies.signgate.dev")
        assert not can("patch", "validatingwebhookconfigurations")
        assert not can("create", "clusterrolebindings")

        # An upgrade keeps the self-signed CA: the webhooks' caBundle must keep matching the
        # certificate the running Pods serve, or every admission would be refused meanwhile.
        def ca_bundles() -> set[str]:
            return {
                hook["clientConfig"]["caBundle"]
                for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration")
                for hook in apiserver.get_json(kind, "signgate")["webhooks"]
            }

        def serving() -> dict[str, str]:
            data = apiserver.get_json("secret", "signgate-tls", "-n", namespace)["data"]
            return dict(data)

        before, secret_before = ca_bundles(), serving()
        assert before == {secret_before["ca.crt"]}
        upgraded = helm(
            apiserver, "upgrade", release, str(CHART), "-n", namespace, "--reuse-values"
        )
        assert upgraded.returncode == 0, upgraded.stderr
        assert ca_bundles() == before
        after = serving()
        assert after["ca.crt"] == secret_before["ca.crt"]
        assert after["ca.key"] == secret_before["ca.key"]
        # A new serving certificate (renewed at every upgrade), from the same CA.
        assert after["tls.crt"] != secret_before["tls.crt"]
        ca = x509.load_pem_x509_certificate(base64.b64decode(after["ca.crt"]))
        leaf = x509.load_pem_x509_certificate(base64.b64decode(after["tls.crt"]))
        leaf.verify_directly_issued_by(ca)
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert f"signgate.{namespace}.svc" in names.get_values_for_type(x509.DNSName)
    finally:
        # The chart's webhooks point at Pods that never run here (no kubelet): remove them so
        # that nothing else in the session is refused by an unreachable webhook.
        uninstalled = helm(apiserver, "uninstall", release, "-n", namespace, "--wait")
        assert uninstalled.returncode == 0, uninstalled.stderr
