"""The Helm chart, rendered by the real helm: what it installs is what the product needs.

(That the chart ships the generated CRD needs no helm: tests/unit/test_chart_crd.py.)"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from cryptography import x509

from signgate.admission.server import check_client_ca
from signgate.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "signgate"
HELM = Path(os.environ.get("SIGNGATE_TOOLS_CACHE", Path.home() / ".cache/signgate-test-tools"))
HELM = HELM / "helm-v3.17.2" / "helm"

pytestmark = pytest.mark.helm


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if not HELM.is_file():
        pytest.fail(f"helm is not installed at {HELM}: run scripts/install-helm", pytrace=False)
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, check=check)


def render(
    *sets: str, namespace: str = "signgate", set_files: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    args = ["template", "signgate", str(CHART), "--namespace", namespace]
    for item in sets:
        args += ["--set", item]
    for item in set_files:
        args += ["--set-file", item]
    return [d for d in yaml.safe_load_all(helm(*args).stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def test_chart_lints() -> None:
    result = helm("lint", str(CHART), "--strict")
    assert "0 chart(s) failed" in result.stdout


def test_deploy_manifests_match_the_chart() -> None:
    committed = (ROOT / "deploy" / "signgate.yaml").read_text()
    fresh = helm(
        "template",
        "signgate",
        str(CHART),
        "--namespace",
        "signgate",
        "--include-crds",
        "--set",
        "tls.mode=cert-manager",
    ).stdout
    assert committed.endswith(fresh), (
        "deploy/signgate.yaml drifted from the chart: run scripts/render-deploy"
    )


def test_webhook_configurations_fail_closed_and_exclude_system_namespaces() -> None:
    docs = render("webhook.excludeNamespaces={monitoring}")
    for kind, path in (
        ("ValidatingWebhookConfiguration", "/validate"),
        ("MutatingWebhookConfiguration", "/mutate"),
    ):
        (hook,) = by_kind(docs, kind)["webhooks"]
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "NoneOnDryRun"  # Events and status only for real requests
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["timeoutSeconds"] == 10
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["clientConfig"]["service"]["path"] == path
        (expression,) = hook["namespaceSelector"]["matchExpressions"]
        assert expression["key"] == "kubernetes.io/metadata.name"
        assert expression["operator"] == "NotIn"
        assert set(expression["values"]) == {"kube-system", "signgate", "monitoring"}
        resources = {r for rule in hook["rules"] for r in rule["resources"]}
        assert {
            "pods",
            "pods/ephemeralcontainers",
            "deployments",
            "replicasets",
            "statefulsets",
            "daemonsets",
            "jobs",
            "cronjobs",
            "replicationcontrollers",
        } <= resources
        assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in hook["rules"])
    mutating = by_kind(docs, "MutatingWebhookConfiguration")["webhooks"][0]
    assert mutating["reinvocationPolicy"] == "IfNeeded"


def test_generated_certificate_matches_the_ca_bundle_and_the_service_name() -> None:
    docs = render()
    secret = by_kind(docs, "Secret")
    ca = base64.b64decode(secret["data"]["ca.crt"])
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        bundle = by_kind(docs, kind)["webhooks"][0]["clientConfig"]["caBundle"]
        assert base64.b64decode(bundle) == ca
    ca_cert = x509.load_pem_x509_certificate(ca)
    cert.verify_directly_issued_by(ca_cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "signgate.signgate.svc" in names.get_values_for_type(x509.DNSName)


def test_pods_run_restricted_with_two_replicas_and_probes() -> None:
    docs = render()
    deployment = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["affinity"]["podAntiAffinity"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--deadline=8" in container["args"]
    assert container["resources"]["limits"]["memory"]
    assert by_kind(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_rbac_is_least_privilege() -> None:
    rules = by_kind(render(), "ClusterRole")["rules"]
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
    secrets = [r for r in rules if "secrets" in r["resources"]]
    assert secrets and all(r["verbs"] == ["get"] for r in secrets)  # no list/watch of Secrets
    assert not any(
        "validatingwebhookconfigurations" in r["resources"]
        or "mutatingwebhookconfigurations" in r["resources"]
        for r in rules
    )  # the chart owns the webhook configurations; the operator cannot rewrite them


def test_options_render() -> None:
    docs = render(
        "tls.mode=cert-manager",
        "serviceMonitor.enabled=true",
        "networkPolicy.enabled=true",
        "pullSecret=signgate/regcred",
        "trustedRoot=placeholder-json",
        "webhook.statusLastDenial=false",
    )
    kinds = {d["kind"] for d in docs}
    assert {"Certificate", "Issuer", "ServiceMonitor", "NetworkPolicy", "ConfigMap"} <= kinds
    assert "Secret" not in kinds  # cert-manager writes it
    args = by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--pull-secret=signgate/regcred" in args
    assert "--trusted-root=/trusted-root/trusted_root.json" in args
    assert "--no-status-last-denial" in args
    # The parser takes what the chart passes.
    parsed = build_parser().parse_args(args)
    assert parsed.status_last_denial is False
    default = render()
    args = by_kind(default, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert build_parser().parse_args(args).status_last_denial is True


@pytest.mark.parametrize(
    "bad",
    [
        "webhook.failurePolicy=Maybe",
        "tls.mode=manual",
        "replicaCount=0",
        "pullSecret=x",
        "nope=1",
        "webhook.clientAuth.enable=true",
        "webhook.clientAuth.allowedNames=apiserver",
    ],
)
def test_values_schema_rejects_mistakes(bad: str) -> None:
    result = helm("template", "signgate", str(CHART), "--set", bad, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr


# -- webhook.clientAuth: only the apiserver may call /validate and /mutate ----------------------


def container_and_pod(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    template = by_kind(docs, "Deployment")["spec"]["template"]
    (container,) = template["spec"]["containers"]
    return container, template


def test_client_auth_is_off_by_default() -> None:
    docs = render()
    container, template = container_and_pod(docs)
    assert not any(arg.startswith(("--client-ca", "--client-name")) for arg in container["args"])
    assert "client-ca" not in {v["name"] for v in template["spec"]["volumes"]}
    assert not template["metadata"]["annotations"]
    assert not [d for d in docs if d["metadata"]["name"].endswith("client-ca")]
    assert "NetworkPolicy" not in {d["kind"] for d in docs}  # unchanged: still opt-in


def test_client_auth_with_the_ca_in_values(tmp_path: Path) -> None:
    ca = trustme.CA()
    pem = tmp_path / "ca.crt"
    ca.cert_pem.write_to_path(str(pem))
    docs = render("webhook.clientAuth.enabled=true", set_files=(f"webhook.clientAuth.caPEM={pem}",))
    configmap = next(d for d in docs if d["metadata"]["name"] == "signgate-client-ca")
    assert configmap["kind"] == "ConfigMap"
    assert configmap["data"]["ca.crt"] == ca.cert_pem.bytes().decode()
    container, template = container_and_pod(docs)
    assert "--client-ca=/client-ca/ca.crt" in container["args"]
    assert "--client-name=kube-apiserver-webhook-client" in container["args"]  # the default name
    assert {"name": "client-ca", "mountPath": "/client-ca", "readOnly": True} in container[
        "volumeMounts"
    ]
    (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == "client-ca"]
    assert volume["configMap"] == {
        "name": "signgate-client-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    # An edited CA rolls the Pods: signgate reads it when it starts.
    assert template["metadata"]["annotations"]["checksum/client-ca"]
    # What the chart passes is what signgate serve takes, and the mounted file is a client CA.
    parsed = build_parser().parse_args(container["args"])
    assert parsed.client_ca == "/client-ca/ca.crt"
    assert parsed.client_name == ["kube-apiserver-webhook-client"]
    mounted = tmp_path / "mounted.crt"
    mounted.write_text(configmap["data"]["ca.crt"])
    check_client_ca(mounted)


@pytest.mark.parametrize("kind", ["existingSecret", "existingConfigMap"])
def test_client_auth_with_an_existing_object(kind: str) -> None:
    docs = render(
        "webhook.clientAuth.enabled=true",
        f"webhook.clientAuth.{kind}=apiserver-client-ca",
        "webhook.clientAuth.caKey=ca.pem",
        "webhook.clientAuth.allowedNames={kube-apiserver,system:apiserver}",
    )
    assert not [d for d in docs if d["metadata"]["name"] == "signgate-client-ca"]
    container, template = container_and_pod(docs)
    args = container["args"]
    assert args[args.index("--client-ca=/client-ca/ca.crt") :][1:] == [
        "--client-name=kube-apiserver",
        "--client-name=system:apiserver",
    ]
    (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == "client-ca"]
    items = [{"key": "ca.pem", "path": "ca.crt"}]
    if kind == "existingSecret":
        assert volume["secret"] == {"secretName": "apiserver-client-ca", "items": items}
    else:
        assert volume["configMap"] == {"name": "apiserver-client-ca", "items": items}
    assert "checksum/client-ca" not in (template["metadata"]["annotations"] or {})


@pytest.mark.parametrize(
    "sets",
    [
        ("webhook.clientAuth.enabled=true",),
        (
            "webhook.clientAuth.enabled=true",
            "webhook.clientAuth.existingSecret=a",
            "webhook.clientAuth.existingConfigMap=b",
        ),
    ],
    ids=["no-ca", "two-cas"],
)
def test_client_auth_needs_exactly_one_ca(sets: tuple[str, ...]) -> None:
    args = ["template", "signgate", str(CHART)]
    for item in sets:
        args += ["--set", item]
    result = helm(*args, check=False)
    assert result.returncode != 0
    assert (
        "webhook.clientAuth.enabled needs exactly one of webhook.clientAuth.caPEM, "
        "existingConfigMap and existingSecret"
    ) in result.stderr
