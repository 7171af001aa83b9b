"""The README's first command: signgate admitting a signed image into Kubernetes and refusing an
unsigned one, everything real and on loopback, in well under two minutes once set up.

1. starts a CNCF distribution registry (``docker-registry``) on loopback;
2. makes a key pair with the real cosign (v3.1.2, built by ``scripts/install-cosign``);
3. pushes two tiny images and signs one of them with ``cosign sign`` (offline: no Rekor upload);
4. runs ``signgate verify`` on both, as a CI pipeline would;
5. starts etcd and a real kube-apiserver (``scripts/install-kube-tools``);
6. installs the TrustPolicy CRD, starts ``signgate serve`` in operator mode (no ``--policy``,
   ``$KUBECONFIG`` pointing at that apiserver), applies a TrustPolicy naming the demo key with
   ``kubectl apply`` and registers the Helm chart's two webhook configurations;
7. ``kubectl apply`` of a Pod with the signed image: admitted, and stored pinned to its digest;
8. ``kubectl apply`` of a Pod with the unsigned image: refused with signgate's reason; then
   ``kubectl get trustpolicies``.

Every command is printed as ``$ …`` the way a user would type it (paths relative to the demo's
work directory, printed first), each step with the seconds elapsed. Fallbacks, each announced with
its reason: without the cosign binary the key pair and signature are made by signgate's test
signer (``tests/support/signer.py``, cosign's exact formats); without kube tools, or if the
apiserver does not start, ``signgate serve --policy FILE`` runs instead and AdmissionReview
requests are POSTed to it over HTTPS (what the apiserver would send), showing its answers.
``--without-cosign`` and ``--without-cluster`` take those paths on purpose.

Everything it starts (registry, etcd, kube-apiserver, signgate) is stopped and the work directory
removed on success, on failure and on Ctrl-C or SIGTERM. Exit status 0 only if every expected
outcome happened; otherwise the last line says ``demo FAILED`` and why (130/143 when interrupted).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import trustme
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from support import cli, signer
from support.cosign_key import encrypt_cosign_private_key
from support.formats import public_key_pem
from support.kubeapi import KubeAPIServer, find_kube_tools, pinned_version, start_apiserver
from support.push import Pusher
from support.registry import (
    _LIVE,
    _LIVE_LOCK,
    MissingToolError,
    RegistryKind,
    RegistryServer,
    _pdeathsig_preexec,
    _terminate,
    start_registry,
)
from support.reviews import pod_spec, review, workload
from support.tls import write_ca, write_server_cert

ROOT = Path(__file__).resolve().parents[1]
COSIGN_VERSION = "v3.1.2"
STEPS = 8
REPO = "demo/app"
POLICY = "demo-release"
CRD = ROOT / "deploy" / "crds" / "trustpolicies.signgate.dev.yaml"
HELM = cli.TOOLS / "helm-v3.17.2" / "helm"
READ_NEXT = (
    ("README.md, “TrustPolicy”", "writing policies: keys, keyless identities, attestations, modes"),
    ("README.md, “signgate serve”", "the webhook's answers, operator mode, metrics"),
    ("README.md, “In a cluster”", "helm install charts/signgate, for real"),
    ("README.md, “signgate verify”", "every flag of the CI command"),
    ("docs/keyless.md", "keyless signatures and transparency logs, checked offline"),
    ("docs/cosign-differences.md", "where signgate and `cosign verify` differ, on purpose"),
    ("docs/hardening.md", "the attacks considered and the tests that show the controls hold"),
    ("scripts/test", "every check CI runs"),
)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; unwinds like Ctrl-C so every ``finally`` runs."""


class DemoError(Exception):
    """Something the demo needs did not work; the message says what."""


@dataclass
class Images:
    host: str
    signed_digest: str = ""
    unsigned_digest: str = ""
    signed_with: str = ""

    @property
    def signed(self) -> str:
        return f"{self.host}/{REPO}:v1"

    @property
    def unsigned(self) -> str:
        return f"{self.host}/{REPO}:unsigned"


@dataclass
class Demo:
    """The transcript, the expectations and everything that must be stopped at the end."""

    work: Path
    started: float = field(default_factory=time.monotonic)
    step_no: int = 0
    failures: list[str] = field(default_factory=list)
    results: list[tuple[str, str]] = field(default_factory=list)
    cleanups: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    path: str = ""
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, title: str) -> None:
        self.step_no += 1
        print(f"\n==> [{self.step_no}/{STEPS}] {title}  ({self.elapsed():.1f} s)", flush=True)

    def say(self, text: str) -> None:
        for line in text.splitlines():
            print(f"# {line}", flush=True)

    def expect(self, ok: bool, what: str, got: str = "") -> bool:
        """Record an expected outcome; an unexpected one is printed at once and fails the demo."""
        if not ok:
            failure = f"expected {what}" + (f", got {got}" if got else "")
            self.failures.append(failure)
            print(f"!! UNEXPECTED: {failure}", flush=True)
        return ok

    def on_cleanup(self, what: str, stop: Callable[[], None]) -> None:
        self.cleanups.append((what, stop))

    def run(
        self,
        argv: Sequence[str],
        *,
        shown: str | None = None,
        stdin: str | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Print ``$ shown`` (default: argv as typed); run argv in the work dir; show its output."""
        print(f"$ {shown or shlex.join(argv)}", flush=True)
        result = subprocess.run(  # noqa: S603 - the demo's own fixed commands
            list(argv),
            cwd=self.work,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        for text in (result.stdout, result.stderr):
            if text.strip():
                print(text.rstrip("\n"), flush=True)
        return result


# -- 1-3: registry, key pair, images ---------------------------------------------------------------


def start_the_registry(demo: Demo) -> RegistryServer:
    demo.step("starting a CNCF distribution registry on loopback")
    registry = start_registry(RegistryKind.ANONYMOUS, demo.work / "registry")
    demo.on_cleanup(f"the registry (pid {registry.pid})", registry.stop)
    demo.say(f"docker-registry serve, plain HTTP at {registry.url}, pid {registry.pid}")
    return registry


def cosign_path(args: argparse.Namespace) -> Path | None:
    """The cosign binary scripts/install-cosign built, or None if it is absent or not wanted."""
    binary = cli.TOOLS / f"cosign-{COSIGN_VERSION}" / "cosign"
    if args.without_cosign:
        return None
    return binary if os.access(binary, os.X_OK) else None


def cosign(demo: Demo, *args: str) -> subprocess.CompletedProcess[str]:
    print(f"$ {shlex.join(['cosign', *args])}", flush=True)
    result = cli.run_cosign(COSIGN_VERSION, demo.work, *args, check=False)
    for text in (result.stdout, result.stderr):
        if text.strip():
            print(text.rstrip("\n"), flush=True)
    if result.returncode != 0:
        raise DemoError(f"cosign {args[0]} exited {result.returncode}")
    return result


def make_key_pair(demo: Demo, args: argparse.Namespace) -> ec.EllipticCurvePrivateKey | None:
    """cosign.key/cosign.pub in the work dir; the private key object only without cosign."""
    binary = cosign_path(args)
    if binary is not None:
        demo.step(f"making a key pair with cosign {COSIGN_VERSION}")
        demo.say(f"the real cosign, built by scripts/install-cosign: {binary}")
        print("$ export COSIGN_PASSWORD=''   # the demo's throw-away key has no password")
        cosign(demo, "generate-key-pair")
        return None
    demo.step("making a key pair in cosign's format (cosign is not used)")
    why = (
        "--without-cosign was given"
        if args.without_cosign
        else f"cosign {COSIGN_VERSION} is not installed at "
        f"{cli.TOOLS / f'cosign-{COSIGN_VERSION}' / 'cosign'} (scripts/install-cosign builds it)"
    )
    demo.say(
        f"FALLBACK: {why}.\n"
        "signgate's test signer (tests/support/signer.py) makes the key pair and the signature\n"
        "instead, in cosign's exact formats (cosign.key encrypted as cosign does, a cosign v3\n"
        "sigstore bundle)."
    )
    key = ec.generate_private_key(ec.SECP256R1())
    (demo.work / "cosign.key").write_bytes(encrypt_cosign_private_key(key, b""))
    (demo.work / "cosign.pub").write_bytes(public_key_pem(key))
    demo.say("wrote cosign.key and cosign.pub (ECDSA P-256, what `cosign generate-key-pair` makes)")
    return key


def push_and_sign(
    demo: Demo, registry: RegistryServer, key: ec.EllipticCurvePrivateKey | None
) -> Images:
    demo.step("pushing two images, then signing one of them")
    images = Images(registry.host)

    async def push() -> None:
        async with Pusher.for_registry(registry) as pusher:
            images.signed_digest = await pusher.push_random_image(REPO, "v1")
            images.unsigned_digest = await pusher.push_random_image(REPO, "unsigned")

    asyncio.run(push())
    demo.say("two tiny random images, pushed through the registry's HTTP API (as `docker push`):")
    demo.say(f"  {images.signed:<40} {images.signed_digest}")
    demo.say(f"  {images.unsigned:<40} {images.unsigned_digest}")
    by_digest = f"{registry.host}/{REPO}@{images.signed_digest}"
    if key is None:
        demo.say("offline: no upload to the public Rekor log (signgate's default is --tlog ignore)")
        cosign(
            demo, "sign", "--key", "cosign.key", *cli.OFFLINE_SIGN[COSIGN_VERSION],
            "--allow-insecure-registry", "--yes", by_digest,
        )  # fmt: skip
        images.signed_with = f"cosign {COSIGN_VERSION}"
    else:

        async def sign() -> None:
            async with Pusher.for_registry(registry) as pusher:
                await signer.sign_bundle_v3(pusher, REPO, images.signed_digest, key)

        asyncio.run(sign())
        demo.say(f"signed {by_digest} with cosign.key (a cosign v3 sigstore bundle)")
        images.signed_with = "signgate's test signer (cosign v3 format)"
    demo.say(f"{images.unsigned} stays unsigned")
    return images


# -- 4: signgate verify ----------------------------------------------------------------------------


def signgate_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "signgate", *args]


def verify(demo: Demo, images: Images) -> None:
    demo.step("signgate verify: the same check in a shell or a CI pipeline")
    args = [
        "verify", "--key", "cosign.pub", images.signed, images.unsigned,
        "--insecure-registry", images.host,
    ]  # fmt: skip
    result = demo.run(signgate_argv(*args), shown=shlex.join(["signgate", *args]))
    demo.say(f"exit status {result.returncode}: 1 = at least one image denied (0 = all admitted)")
    demo.expect(
        result.returncode == 1
        and f"ALLOWED {images.signed}" in result.stdout
        and f"DENIED  {images.unsigned}" in result.stdout,
        "`signgate verify` to allow the signed image, deny the unsigned one and exit 1",
        f"exit status {result.returncode}",
    )


# -- 5: the control plane --------------------------------------------------------------------------


def start_control_plane(demo: Demo, args: argparse.Namespace) -> KubeAPIServer | None:
    """etcd + kube-apiserver, or None (with the reason printed) for the no-cluster path."""
    demo.step("starting a Kubernetes control plane: etcd and kube-apiserver on loopback")
    reason = "--without-cluster was given" if args.without_cluster else ""
    apiserver = None
    if not reason:
        try:
            find_kube_tools()
            apiserver = start_apiserver(demo.work / "kube")
        except MissingToolError as exc:
            reason = f"kube tools are not installed ({exc})"
        except RuntimeError as exc:
            reason = f"kube-apiserver did not start: {str(exc).splitlines()[0]}"
    if apiserver is None:
        demo.say(
            f"FALLBACK: {reason}.\n"
            "Instead: `signgate serve --policy FILE` (no cluster needed), with AdmissionReview\n"
            "requests POSTed to it over HTTPS exactly as the apiserver would send them."
        )
        demo.path = "no cluster: `signgate serve --policy FILE`, AdmissionReviews sent directly"
        return None
    demo.on_cleanup(
        f"kube-apiserver and etcd (pids {', '.join(map(str, apiserver.pids))})", apiserver.stop
    )
    version = pinned_version("KUBE_APISERVER_VERSION")
    demo.say(
        f"kube-apiserver v{version} at {apiserver.url}, ready in {apiserver.startup_seconds:.1f} s"
        " (a throw-away CA;\nno scheduler or kubelet, so Pods stay Pending: admission is what"
        " this shows)"
    )
    kubeconfig = apiserver.kubeconfig.relative_to(demo.work)
    print(f"$ export KUBECONFIG=$PWD/{kubeconfig}", flush=True)
    demo.env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    demo.env["KUBECONFIG"] = str(apiserver.kubeconfig)
    demo.env["KUBECACHEDIR"] = str(demo.work / "kube" / "kubectl-cache")
    demo.env["NO_PROXY"] = demo.env["no_proxy"] = "127.0.0.1,localhost"
    demo.path = (
        f"a real kube-apiserver v{version}, `signgate serve` in operator mode"
        " (TrustPolicy custom resources)"
    )
    return apiserver


# -- 6: signgate serve -----------------------------------------------------------------------------


@dataclass
class Webhook:
    port: int
    ca_file: Path

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=30, context=self.context()
        )
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def start_signgate(demo: Demo, images: Images, *serve_args: str) -> Webhook:
    """``signgate serve`` in the background, on a free port; returns once /readyz answers 200."""
    ca = trustme.CA(organization_name="signgate demo")
    ca_file = write_ca(ca, demo.work / "ca.crt")
    write_server_cert(ca, demo.work, "webhook")
    args = [
        "serve", *serve_args, "--tls-cert", "webhook.crt", "--tls-key", "webhook.key",
        "--address", "127.0.0.1", "--port", "0", "--insecure-registry", images.host,
    ]  # fmt: skip
    print(f"$ {shlex.join(['signgate', *args])} > signgate.log 2>&1 &", flush=True)
    log = demo.work / "signgate.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            signgate_argv(*args),
            cwd=demo.work,
            env=demo.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_pdeathsig_preexec(),  # prctl resolved before fork
        )
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc  # reaped at exit even if everything else fails
    demo.on_cleanup(f"signgate serve (pid {proc.pid})", lambda: _terminate(proc, timeout=10.0))

    def tail() -> str:
        return "\n".join(log.read_text(errors="replace").splitlines()[-15:])

    deadline = time.monotonic() + 60
    port = None
    while port is None:
        match = re.search(r"on https://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        port = int(match.group(1)) if match else None
        if proc.poll() is not None:
            raise DemoError(f"signgate serve exited with status {proc.returncode}:\n{tail()}")
        if time.monotonic() > deadline:
            raise DemoError(f"signgate serve did not start listening in 60 s:\n{tail()}")
        time.sleep(0.05)
    webhook = Webhook(port, ca_file)
    answer = ""
    while True:
        try:
            status, body = webhook.request("GET", "/readyz")
        except (OSError, http.client.HTTPException) as exc:
            status, body = 0, repr(exc).encode()
        answer = body.decode(errors="replace").strip()
        if status == 200:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise DemoError(f"signgate never became ready (last /readyz: {answer}):\n{tail()}")
        time.sleep(0.1)
    demo.say(f"pid {proc.pid}, serving https://127.0.0.1:{port}; GET /readyz answers {answer!r}")
    return webhook


def trust_policy(demo: Demo, images: Images) -> str:
    """The TrustPolicy naming the demo key (inline PEM) for every image under demo/."""
    pem = (demo.work / "cosign.pub").read_text().strip()
    indented = "\n".join("          " + line for line in pem.splitlines())
    return (
        "apiVersion: signgate.dev/v1alpha1\n"
        "kind: TrustPolicy\n"
        f"metadata:\n  name: {POLICY}\n"
        "spec:\n"
        f'  images: ["{images.host}/demo/**"]\n'
        "  mode: Enforce\n"
        "  authorities:\n"
        "    - name: demo-key\n"
        "      key:\n"
        "        pem: |\n"
        f"{indented}\n"
    )


def heredoc(command: str, text: str) -> str:
    return f"{command} <<'EOF'\n{text.rstrip()}\nEOF"


def kubectl(
    demo: Demo, apiserver: KubeAPIServer, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    shown = shlex.join(["kubectl", *args])
    if stdin is not None:
        shown = heredoc(shown, stdin)
    return demo.run([apiserver.tools.kubectl, *args], shown=shown, stdin=stdin)


def must(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        raise DemoError(f"{what}: exit status {result.returncode}")


def start_operator(demo: Demo, apiserver: KubeAPIServer, images: Images) -> Webhook:
    demo.step("signgate as an operator: the TrustPolicy CRD, a TrustPolicy, the webhooks")
    must(kubectl(demo, apiserver, "apply", "-f", str(CRD)), "installing the CRD")
    must(
        kubectl(demo, apiserver, "wait", "--for=condition=Established", f"crd/{CRD.stem}"),
        "waiting for the CRD",
    )
    demo.say(
        "operator mode: no --policy, so signgate reads TrustPolicies from the cluster it finds in\n"
        "$KUBECONFIG; a throw-away CA issued its serving certificate (the webhooks' caBundle)"
    )
    webhook = start_signgate(demo, images, "--status-interval", "2")
    demo.say("a TrustPolicy: images under demo/ must be signed by the demo key (cosign.pub)")
    must(kubectl(demo, apiserver, "apply", "-f", "-", stdin=trust_policy(demo, images)), "apply")
    ready = ("wait", "--for=condition=Ready", f"trustpolicy/{POLICY}", "--timeout=60s")
    must(kubectl(demo, apiserver, *ready), "waiting for the TrustPolicy to be Ready")
    register_webhooks(demo, apiserver, webhook)
    return webhook


def register_webhooks(demo: Demo, apiserver: KubeAPIServer, webhook: Webhook) -> None:
    """The chart's Validating- and MutatingWebhookConfigurations, calling the local signgate."""
    url = f"https://127.0.0.1:{webhook.port}"
    ca_bundle = base64.b64encode(webhook.ca_file.read_bytes()).decode()
    if not os.access(HELM, os.X_OK):
        demo.say(
            f"helm is not installed at {HELM}, so the webhook configurations are written by\n"
            "tests/support/kubeapi.py instead of taken from the chart"
        )
        apiserver.register_webhooks(ca_bundle=webhook.ca_file.read_bytes(), port=webhook.port)
        return
    rendered = subprocess.run(  # noqa: S603 - helm, fixed arguments
        [str(HELM), "template", "signgate", str(ROOT / "charts/signgate"), "-n", "signgate"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    configs = [
        doc
        for doc in yaml.safe_load_all(rendered)
        if doc and doc["kind"].endswith("WebhookConfiguration")
    ]
    for config in configs:
        for hook in config["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"{url}{path}", "caBundle": ca_bundle}
    (demo.work / "webhooks.yaml").write_text(yaml.safe_dump_all(configs))
    demo.say(
        "the Helm chart's two webhook configurations (`helm template charts/signgate`), their\n"
        f"clientConfig pointed at {url} instead of the in-cluster Service"
    )
    must(kubectl(demo, apiserver, "apply", "-f", "webhooks.yaml"), "registering the webhooks")
    # The apiserver reads webhook configurations through an informer: wait until it uses them.
    apiserver._wait_for_webhook_informer("mutating")
    apiserver._wait_for_webhook_informer("validating")


# -- 7-8 with a cluster: kubectl apply -------------------------------------------------------------


def pod_yaml(name: str, image: str) -> str:
    return (
        "apiVersion: v1\nkind: Pod\n"
        f"metadata:\n  name: {name}\n"
        f"spec:\n  containers:\n    - name: app\n      image: {image}\n"
    )


def apply_signed(demo: Demo, apiserver: KubeAPIServer, images: Images) -> None:
    demo.step("kubectl apply: a Pod with the signed image")
    manifest = pod_yaml("app-signed", images.signed)
    result = kubectl(demo, apiserver, "apply", "-f", "-", stdin=manifest)
    demo.expect(
        result.returncode == 0,
        f"`kubectl apply` to admit the Pod with {images.signed}",
        first_line(result.stderr),
    )
    stored = kubectl(
        demo, apiserver, "get", "pod", "app-signed", "-o", "jsonpath={.spec.containers[0].image}"
    )
    pinned = f"{images.signed}@{images.signed_digest}"
    if demo.expect(
        stored.stdout.strip() == pinned,
        f"the stored Pod's image to be pinned: {pinned}",
        repr(stored.stdout.strip()),
    ):
        demo.say(
            "admitted, and pinned by signgate's mutating webhook to the digest it verified:\n"
            "the kubelet will pull exactly what was verified, whatever the tag points at later"
        )
        demo.results.append(("admitted", f"{images.signed}, stored as {pinned}"))


def apply_unsigned(demo: Demo, apiserver: KubeAPIServer, images: Images) -> None:
    demo.step("kubectl apply: a Pod with the unsigned image")
    result = kubectl(
        demo, apiserver, "apply", "-f", "-", stdin=pod_yaml("app-unsigned", images.unsigned)
    )
    refused = result.returncode != 0 and "signgate denied" in result.stderr
    if demo.expect(
        refused,
        f"signgate to refuse the Pod with {images.unsigned}",
        f"exit status {result.returncode} {first_line(result.stderr)}".strip(),
    ):
        demo.say(
            f"refused (kubectl exit status {result.returncode}): the apiserver passes on"
            " signgate's message verbatim\n— which image (pinned), which TrustPolicy, and why"
        )
        demo.results.append(("denied", f"{images.unsigned}: {short_reason(result.stderr)}"))
    demo.say("why, step by step: signgate explain reads the same TrustPolicies from $KUBECONFIG")
    args = ["explain", images.unsigned, "--insecure-registry", images.host]
    explained = demo.run(signgate_argv(*args), shown=shlex.join(["signgate", *args]))
    demo.expect(
        explained.returncode == 1
        and f"{POLICY} (Enforce, cluster): governs it" in explained.stdout,
        "`signgate explain` to show the policy governing the unsigned image and deny it",
        f"exit status {explained.returncode}",
    )
    demo.say(
        "each TrustPolicy's status counts its recent decisions (`kubectl get trustpolicies -o wide`"
        "\nalso shows the last denial); this demo's signgate writes them every 2 s"
    )
    kubectl(
        demo, apiserver, "wait", "--for=jsonpath={.status.recentDecisions.denied}=1",
        f"trustpolicy/{POLICY}", "--timeout=30s",
    )  # fmt: skip
    listed = kubectl(demo, apiserver, "get", "trustpolicies")
    demo.expect(
        listed.returncode == 0 and POLICY in listed.stdout,
        f"`kubectl get trustpolicies` to list {POLICY}",
    )
    pods = kubectl(demo, apiserver, "get", "pods")
    demo.expect(
        "app-signed" in pods.stdout and "app-unsigned" not in pods.stdout,
        "only the Pod with the signed image to exist",
    )


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def short_reason(message: str) -> str:
    for reason in ("no signature found", "no signature", "does not verify"):
        if reason in message:
            return reason
    return "see above"


# -- 6-8 without a cluster: AdmissionReviews sent directly -----------------------------------------


def start_file_mode(demo: Demo, images: Images) -> Webhook:
    demo.step("signgate serve --policy FILE: the webhook without a cluster")
    (demo.work / "trustpolicy.yaml").write_text(trust_policy(demo, images))
    demo.say("trustpolicy.yaml: images under demo/ must be signed by the demo key (cosign.pub)")
    print(heredoc("$ cat > trustpolicy.yaml", trust_policy(demo, images)), flush=True)
    return start_signgate(demo, images, "--policy", "trustpolicy.yaml")


def post_review(demo: Demo, webhook: Webhook, name: str, image: str, path: str) -> dict[str, Any]:
    """POST an AdmissionReview for a Pod with ``image`` to ``path``; print and return .response."""
    file = f"review-{name}.json"
    body = json.dumps(review(workload("Pod", pod_spec([image]), name=name)), indent=2)
    (demo.work / file).write_text(body + "\n")
    print(
        "$ curl -s --cacert ca.crt -H 'Content-Type: application/json' "
        f"--data-binary @{file} https://127.0.0.1:{webhook.port}{path}"
        "   # sent by the demo itself",
        flush=True,
    )
    status, answer = webhook.request("POST", path, body.encode())
    if status != 200:
        raise DemoError(f"POST {path} answered HTTP {status}: {answer[:500]!r}")
    response: dict[str, Any] = json.loads(answer)["response"]
    shown = {k: v for k, v in response.items() if k in ("allowed", "status", "patchType", "patch")}
    print(json.dumps({"response": shown}, indent=2, ensure_ascii=False), flush=True)
    if "patch" in response:
        demo.say(f"the patch, base64-decoded: {base64.b64decode(response['patch']).decode()}")
    return response


def review_signed(demo: Demo, webhook: Webhook, images: Images) -> None:
    demo.step("an AdmissionReview for a Pod with the signed image: /validate, then /mutate")
    validated = post_review(demo, webhook, "app-signed", images.signed, "/validate")
    demo.expect(validated.get("allowed") is True, f"/validate to allow {images.signed}")
    mutated = post_review(demo, webhook, "app-signed", images.signed, "/mutate")
    pinned = f"{images.signed}@{images.signed_digest}"
    patch = base64.b64decode(mutated.get("patch", "")).decode()
    if demo.expect(
        mutated.get("allowed") is True and pinned in patch, f"/mutate to pin the image: {pinned}"
    ):
        demo.say("allowed, and /mutate pins the image to the digest it verified")
        demo.results.append(("admitted", f"{images.signed}, pinned to {pinned}"))


def review_unsigned(demo: Demo, webhook: Webhook, images: Images) -> None:
    demo.step("an AdmissionReview for a Pod with the unsigned image: /validate")
    response = post_review(demo, webhook, "app-unsigned", images.unsigned, "/validate")
    message = str(response.get("status", {}).get("message", ""))
    if demo.expect(
        response.get("allowed") is False and "signgate denied" in message,
        f"/validate to refuse {images.unsigned}",
    ):
        demo.say("refused: status.message is what kubectl would print after “denied the request:”")
        demo.results.append(("denied", f"{images.unsigned}: {short_reason(message)}"))


# -- the whole run ---------------------------------------------------------------------------------


def run(demo: Demo, args: argparse.Namespace) -> None:
    registry = start_the_registry(demo)
    key = make_key_pair(demo, args)
    images = push_and_sign(demo, registry, key)
    verify(demo, images)
    apiserver = start_control_plane(demo, args)
    if apiserver is not None:
        start_operator(demo, apiserver, images)
        apply_signed(demo, apiserver, images)
        apply_unsigned(demo, apiserver, images)
    else:
        webhook = start_file_mode(demo, images)
        review_signed(demo, webhook, images)
        review_unsigned(demo, webhook, images)
    demo.results.insert(0, ("signed with", images.signed_with))


def clean_up(demo: Demo) -> None:
    print(f"\n==> cleaning up  ({demo.elapsed():.1f} s)", flush=True)
    for what, stop in reversed(demo.cleanups):
        began = time.monotonic()
        try:
            stop()
        except Exception as exc:  # noqa: BLE001 - keep stopping the others, then fail
            demo.failures.append(f"stopping {what} ({exc})")
            print(f"!! could not stop {what}: {exc}", flush=True)
        else:
            print(f"# stopped {what} in {time.monotonic() - began:.1f} s", flush=True)
    shutil.rmtree(demo.work, ignore_errors=True)
    if demo.work.exists():
        demo.failures.append(f"removing {demo.work}")
    else:
        print(f"# removed {demo.work}", flush=True)


def summary(demo: Demo, interrupted: str | None) -> int:
    print(f"\n==> summary  ({demo.elapsed():.1f} s in all)", flush=True)
    if demo.path:
        print(f"  {'path':<12} {demo.path}")
    for label, text in demo.results:
        print(f"  {label:<12} {text}")
    if interrupted:
        print(f"\ndemo INTERRUPTED by {interrupted}: stopped everything it started", flush=True)
        return 130 if interrupted == "SIGINT" else 143
    if demo.failures:
        print(f"\ndemo FAILED: {'; '.join(demo.failures)}", flush=True)
        return 1
    print("\nRead next:")
    for where, what in READ_NEXT:
        print(f"  {where:<30} {what}")
    print(
        f"\ndemo OK in {demo.elapsed():.0f} s: the signed image was admitted and pinned, the"
        " unsigned one refused",
        flush=True,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="signgate's demo: a signed image admitted into Kubernetes, an unsigned one "
        "refused, everything real and on loopback (see the module docstring)."
    )
    parser.add_argument(
        "--without-cosign", action="store_true", help="sign with the test signer, not cosign"
    )
    parser.add_argument(
        "--without-cluster",
        action="store_true",
        help="no kube-apiserver: signgate serve --policy, AdmissionReviews sent directly",
    )
    args = parser.parse_args(argv)
    received: list[str] = []

    def ignore_signals() -> None:
        # While cleaning up: every stop is bounded, and must not be cut short by a second Ctrl-C.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        ignore_signals()
        raise Interrupted

    demo = Demo(Path(tempfile.mkdtemp(prefix="signgate-demo-")))
    try:
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        print(f"signgate demo; work dir: {demo.work} (removed at the end)", flush=True)
        print(f"$ cd {demo.work}", flush=True)
        run(demo, args)
    except KeyboardInterrupt:
        if not received:
            received.append("SIGINT")
        print(f"\n!! interrupted ({received[0]})", flush=True)
    except DemoError as exc:
        demo.failures.append(str(exc).splitlines()[0])
        print(f"\n!! {exc}", flush=True)
    except Exception as exc:  # noqa: BLE001 - anything else: say what, clean up, exit 1
        first = str(exc).splitlines()[0] if str(exc) else ""
        demo.failures.append(f"{type(exc).__name__}: {first}")
        traceback.print_exc(file=sys.stdout)
    finally:
        ignore_signals()
        clean_up(demo)
    return summary(demo, received[0] if received else None)


if __name__ == "__main__":
    sys.exit(main())
