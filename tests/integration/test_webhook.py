"""The webhook over HTTPS: real AdmissionReview v1 JSON posted to /validate and /mutate, images in
the real registry, signatures in cosign's formats."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import secrets
import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from signgate.admission.metrics import Metrics
from signgate.admission.server import (
    CertificateReloader,
    ServerSettings,
    make_app,
    running_server,
)
from signgate.engine import Verifier, VerifierSettings
from signgate.policy.compiled import CompiledPolicy, compile_policy
from signgate.policy.loading import parse_policies
from signgate.policy.sources import StaticPolicySource
from signgate.registry import RegistryClient, RegistryOptions
from support import reviews, signer
from support.formats import PrivateKey, generate_key, public_key_pem
from support.push import Pusher
from support.registry import RegistryServer

KEY = generate_key()


def policy_yaml(
    host: str,
    key: PrivateKey,
    *,
    name: str = "release",
    mode: str = "Enforce",
    images: str = "hook/**",
) -> str:
    pem = "\n".join(
        "          " + line for line in public_key_pem(key).decode().strip().splitlines()
    )
    return f"""
apiVersion: signgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: {name}}}
spec:
  images: ["{host}/{images}"]
  mode: {mode}
  authorities:
    - name: release-key
      key:
        pem: |
{pem}
"""


@dataclass
class Webhook:
    url: str
    session: aiohttp.ClientSession
    engine: Verifier
    metrics: Metrics

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with self.session.post(self.url + path, data=data) as resp:
            text = await resp.read()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    async def admit(self, review: dict[str, Any], *, mutate: bool = False) -> dict[str, Any]:
        status, answer = await self.post("/mutate" if mutate else "/validate", review)
        assert status == 200, answer
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["kind"] == "AdmissionReview"
        response = answer["response"]
        assert response["uid"] == review["request"]["uid"]
        return response  # type: ignore[no-any-return]


StartWebhook = Callable[..., Awaitable[Webhook]]


@pytest.fixture
async def start_webhook(
    tls_ca: trustme.CA, tmp_path: Path, registry: RegistryServer
) -> AsyncIterator[StartWebhook]:
    stack: list[Any] = []

    async def start(
        policies: Sequence[CompiledPolicy],
        *,
        deadline: float = 8.0,
        insecure: Sequence[str] = (),
        client_ca: Path | None = None,
        client_names: Sequence[str] = (),
        **hooks: Any,
    ) -> Webhook:
        cert = tls_ca.issue_cert("127.0.0.1", "localhost")
        cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        settings = ServerSettings(
            cert_file,
            key_file,
            "127.0.0.1",
            0,
            deadline,
            cert_check_interval=0.1,
            client_ca=client_ca,
            client_names=tuple(client_names),
        )
        client = RegistryClient(
            RegistryOptions(insecure_hosts=frozenset({registry.host, *insecure}))
        )
        engine = Verifier(client, settings=VerifierSettings())
        metrics = Metrics(engine)
        app = make_app(
            engine=engine,
            policies=StaticPolicySource(policies),
            settings=settings,
            metrics=metrics,
            **hooks,
        )
        server = running_server(app, settings)
        _, _, port = await server.__aenter__()
        context = ssl.create_default_context()
        tls_ca.configure_trust(context)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        stack.append((server, client, session))
        return Webhook(f"https://127.0.0.1:{port}", session, engine, metrics)

    yield start
    for server, client, session in reversed(stack):
        await session.close()
        await server.__aexit__(None, None, None)
        await client.close()


def compiled(text: str) -> CompiledPolicy:
    return compile_policy(parse_policies(text, "inline")[0])


async def signed_image(
    pusher: Pusher, *, key: PrivateKey = KEY, tag: str = "v1"
) -> tuple[str, str]:
    name = f"hook/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, tag)
    await signer.sign_bundle_v3(pusher, name, digest, key)
    return f"{pusher.host}/{name}:{tag}", digest


async def unsigned_image(pusher: Pusher) -> tuple[str, str]:
    name = f"hook/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    return f"{pusher.host}/{name}:v1", digest


@pytest.mark.parametrize("kind", list(reviews.KINDS))
async def test_every_workload_kind_is_allowed_signed_and_denied_unsigned(
    start_webhook: StartWebhook, pusher: Pusher, kind: str
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    good, _ = await signed_image(pusher)
    bad, bad_digest = await unsigned_image(pusher)

    allowed = await hook.admit(reviews.review(reviews.workload(kind, reviews.pod_spec([good]))))
    assert allowed["allowed"] is True
    assert "status" not in allowed
    evidence = allowed["auditAnnotations"]["image-0"]
    assert "release/release-key" in evidence
    assert "@sha256:" in evidence

    denied = await hook.admit(
        reviews.review(reviews.workload(kind, reviews.pod_spec([good], init=[bad])))
    )
    assert denied["allowed"] is False
    assert denied["status"]["code"] == 403
    message = denied["status"]["message"]
    assert message.startswith("signgate denied 1 of 2 image(s)")
    assert bad.rsplit(":", 1)[0] + "@" + bad_digest in message
    assert "TrustPolicy 'release'" in message
    assert "no signature found" in message


async def test_all_failing_images_are_named(start_webhook: StartWebhook, pusher: Pusher) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    good, _ = await signed_image(pusher)
    bad1, _ = await unsigned_image(pusher)
    bad2, _ = await signed_image(pusher, key=generate_key())
    spec = reviews.pod_spec([good, bad1], ephemeral=[bad2], volumes=[good])
    response = await hook.admit(reviews.review(reviews.workload("Pod", spec)))
    message = response["status"]["message"]
    assert message.startswith("signgate denied 2 of 3 image(s)")
    assert bad1.rsplit(":", 1)[0] in message
    assert bad2.rsplit(":", 1)[0] in message
    assert "does not verify with key" in message


async def test_ephemeral_containers_subresource_is_checked(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    good, _ = await signed_image(pusher)
    bad, _ = await unsigned_image(pusher)
    pod = reviews.workload("Pod", reviews.pod_spec([good], ephemeral=[bad]))
    request = reviews.review(
        pod,
        operation="UPDATE",
        old=reviews.workload("Pod", reviews.pod_spec([good])),
        sub_resource="ephemeralcontainers",
    )
    response = await hook.admit(request)
    assert response["allowed"] is False
    assert "1 of 1" in response["status"]["message"]  # the new ephemeral container


async def test_update_that_swaps_in_an_unsigned_image_is_denied(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    good, _ = await signed_image(pusher)
    bad, _ = await unsigned_image(pusher)
    old = reviews.workload("Deployment", reviews.pod_spec([good, good]))
    new = reviews.workload("Deployment", reviews.pod_spec([good, bad]))
    response = await hook.admit(reviews.review(new, operation="UPDATE", old=old))
    assert response["allowed"] is False
    assert "1 of 1 image(s)" in response["status"]["message"]  # only the new image was checked
    same = await hook.admit(reviews.review(old, operation="UPDATE", old=old))
    assert same["allowed"] is True


async def test_update_leaves_images_already_running_alone(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    # An object created before the policy (or while its image was admissible) can still be
    # updated, e.g. by a controller removing a finalizer, without re-verifying or re-pinning.
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    legacy, _ = await unsigned_image(pusher)
    good, digest = await signed_image(pusher)
    old = reviews.workload("Deployment", reviews.pod_spec([legacy]))
    new = reviews.workload("Deployment", reviews.pod_spec([legacy], init=[good]))
    response = await hook.admit(reviews.review(new, operation="UPDATE", old=old), mutate=True)
    assert response["allowed"] is True
    patch = json.loads(base64.b64decode(response["patch"]))
    assert patch == [
        {
            "op": "replace",
            "path": "/spec/template/spec/initContainers/0/image",
            "value": f"{good}@{digest}",
        }
    ]


async def test_update_adding_a_moved_tag_to_another_container_is_checked(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    # Issue 15: the stored Deployment runs app:v1 unpinned (created before signgate, or under a
    # Warn policy); the tag then moves to unsigned content, and `kubectl set image` puts app:v1
    # in the sidecar. The sidecar is checked (and denied); the web container, unchanged, is not.
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    image, _ = await signed_image(pusher)
    name = image.rsplit(":", 1)[0].split("/", 1)[1]
    await pusher.push_random_image(name, "v1")  # the tag moves to unsigned content
    old = reviews.workload("Deployment", reviews.pod_spec([("web", image), ("side", "envoy:1")]))
    new = reviews.workload("Deployment", reviews.pod_spec([("web", image), ("side", image)]))
    response = await hook.admit(reviews.review(new, operation="UPDATE", old=old))
    assert response["allowed"] is False
    assert "signgate denied 1 of 1 image(s)" in response["status"]["message"]
    assert "no signature found" in response["status"]["message"]


async def test_mutate_pins_tags_to_verified_digests_idempotently(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    good, digest = await signed_image(pusher)
    obj = reviews.workload("Deployment", reviews.pod_spec([good], init=[f"{good}@{digest}"]))
    response = await hook.admit(reviews.review(obj), mutate=True)
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    assert patch == [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": f"{good}@{digest}",
        }
    ]
    # Reinvocation with the patched object: nothing left to pin.
    pinned = reviews.workload(
        "Deployment", reviews.pod_spec([f"{good}@{digest}"], init=[f"{good}@{digest}"])
    )
    again = await hook.admit(reviews.review(pinned), mutate=True)
    assert again["allowed"] is True
    assert "patch" not in again


async def test_mutate_denies_unsigned_and_does_not_patch(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    bad, _ = await unsigned_image(pusher)
    response = await hook.admit(
        reviews.review(reviews.workload("Pod", reviews.pod_spec([bad]))), mutate=True
    )
    assert response["allowed"] is False
    assert "patch" not in response


async def test_warn_and_audit_modes(start_webhook: StartWebhook, pusher: Pusher) -> None:
    warn = compiled(policy_yaml(pusher.host, KEY, name="sandbox", mode="Warn"))
    hook = await start_webhook([warn])
    bad, _ = await unsigned_image(pusher)
    response = await hook.admit(reviews.review(reviews.workload("Pod", reviews.pod_spec([bad]))))
    assert response["allowed"] is True
    assert response["warnings"]
    assert all(len(w) <= 120 for w in response["warnings"])
    assert response["warnings"][0].startswith("signgate: ")

    audit = compiled(policy_yaml(pusher.host, KEY, name="observe", mode="Audit"))
    hook2 = await start_webhook([audit])
    response = await hook2.admit(reviews.review(reviews.workload("Pod", reviews.pod_spec([bad]))))
    assert response["allowed"] is True
    assert "warnings" not in response or not response["warnings"]
    assert any("TrustPolicy 'observe'" in v for v in response["auditAnnotations"].values())


async def test_dry_run_is_answered_the_same(start_webhook: StartWebhook, pusher: Pusher) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    bad, _ = await unsigned_image(pusher)
    response = await hook.admit(
        reviews.review(reviews.workload("Pod", reviews.pod_spec([bad])), dry_run=True)
    )
    assert response["allowed"] is False


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["team-a", "team-b", "missing"])), ids="-".join
)
async def test_a_warm_server_answers_what_a_fresh_one_does_for_one_digest_in_two_repositories(
    start_webhook: StartWebhook, pusher: Pusher, order: tuple[str, ...]
) -> None:
    # Issue 15: one digest, signed in team-a, unsigned in team-b, and a repository that does not
    # exist (asked with a dry run, which costs an attacker nothing). A verdict cached by the
    # digest alone admitted team-b after team-a, and denied team-a for 30 s after team-b.
    base = f"hook/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(f"{base}/team-a", "v1")
    await signer.sign_legacy(pusher, f"{base}/team-a", digest, KEY)
    await pusher.copy_manifest(f"{base}/team-a", digest, f"{base}/team-b", "v1")
    images = {name: f"{pusher.host}/{base}/{name}@{digest}" for name in ("team-a", "team-b")}
    images["missing"] = f"{pusher.host}/{base}/missing@{digest}"
    policies = [compiled(policy_yaml(pusher.host, KEY))]

    async def verdict(hook: Webhook, name: str) -> bool:
        pod = reviews.workload("Pod", reviews.pod_spec([images[name]]))
        response = await hook.admit(reviews.review(pod, dry_run=name == "missing"))
        return bool(response["allowed"])

    fresh = {name: await verdict(await start_webhook(policies), name) for name in images}
    assert fresh == {"team-a": True, "team-b": False, "missing": False}
    warm = await start_webhook(policies)
    for _ in range(2):
        assert {name: await verdict(warm, name) for name in order} == fresh


async def test_unmatched_images_are_denied(start_webhook: StartWebhook, pusher: Pusher) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    response = await hook.admit(
        reviews.review(reviews.workload("Pod", reviews.pod_spec(["nginx:1.27"])))
    )
    assert response["allowed"] is False
    assert "no TrustPolicy governs docker.io/library/nginx:1.27" in response["status"]["message"]


async def test_delete_is_allowed_without_work(start_webhook: StartWebhook, pusher: Pusher) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    old = reviews.workload("Pod", reviews.pod_spec(["nginx"]))
    response = await hook.admit(reviews.review(None, operation="DELETE", old=old))
    assert response["allowed"] is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", ""),
        (
            json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1beta1",
                    "kind": "AdmissionReview",
                    "request": {"uid": "x"},
                }
            ).encode(),
            "v1beta1",
        ),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
            "request",
        ),
    ],
)
async def test_malformed_reviews_get_400_with_a_reason(
    start_webhook: StartWebhook, pusher: Pusher, body: bytes, message: str
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    for path in ("/validate", "/mutate"):
        status, answer = await hook.post(path, body)
        assert status == 400
        assert message in answer["error"]


async def test_unknown_kind_is_denied_not_allowed(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    request = reviews.review(reviews.workload("Deployment", reviews.pod_spec(["nginx"])))
    request["request"]["kind"] = {"group": "example.com", "version": "v1", "kind": "Widget"}
    response = await hook.admit(request)
    assert response["allowed"] is False
    assert "Widget" in response["status"]["message"]


async def test_unknown_paths_are_404_never_allowed(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    body = reviews.review(reviews.workload("Pod", reviews.pod_spec(["nginx"])))
    for path in ("/", "/validate/", "/check_images", "/mutate/x", "/VALIDATE"):
        status, answer = await hook.post(path, body)
        assert status == 404, path
        assert b"allowed" not in (
            answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        )


async def test_health_readiness_and_metrics(start_webhook: StartWebhook, pusher: Pusher) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    good, _ = await signed_image(pusher)
    await hook.admit(reviews.review(reviews.workload("Pod", reviews.pod_spec([good]))))
    async with hook.session.get(hook.url + "/healthz") as resp:
        assert resp.status == 200
    async with hook.session.get(hook.url + "/readyz") as resp:
        assert resp.status == 200
        assert "1 TrustPolicies" in await resp.text()
    async with hook.session.get(hook.url + "/metrics") as resp:
        text = await resp.text()
    assert 'signgate_admissions_total{decision="allowed",webhook="validate"} 1.0' in text
    assert "signgate_verifications_total 1.0" in text
    assert "signgate_admission_duration_seconds_bucket" in text
    assert 'signgate_registry_responses_total{status="200"}' in text


async def test_registry_hanging_past_the_deadline_denies_naming_the_image(
    start_webhook: StartWebhook,
    pusher: Pusher,
    make_fault_proxy: Callable[..., Any],
    registry: RegistryServer,
) -> None:
    proxy = make_fault_proxy(registry)
    hook = await start_webhook(
        [compiled(policy_yaml(proxy.host, KEY))], deadline=1.0, insecure=[proxy.host]
    )
    good, _ = await signed_image(pusher)
    slow = good.replace(pusher.host, proxy.host)
    proxy.hang(r"/manifests/")
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await hook.admit(reviews.review(reviews.workload("Pod", reviews.pod_spec([slow]))))
    assert loop.time() - started < 3
    assert response["allowed"] is False
    assert slow in response["status"]["message"]
    assert "deadline exceeded" in response["status"]["message"]


async def test_registry_down_denies_with_the_reason(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    hook = await start_webhook([compiled(policy_yaml(dead, KEY))], insecure=[dead])
    response = await hook.admit(
        reviews.review(reviews.workload("Pod", reviews.pod_spec([f"{dead}/hook/app:v1"])))
    )
    assert response["allowed"] is False
    assert "cannot reach" in response["status"]["message"]


async def test_one_deployments_pods_cause_one_verification(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    good, _ = await signed_image(pusher)
    pod = reviews.workload("Pod", reviews.pod_spec([good]))
    responses = await asyncio.gather(*(hook.admit(reviews.review(pod)) for _ in range(200)))
    assert all(r["allowed"] for r in responses)
    assert hook.engine.verifications == 1


async def test_certificate_rotation_without_dropping_connections(
    start_webhook: StartWebhook, pusher: Pusher, tmp_path: Path
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    async with hook.session.get(hook.url + "/healthz") as resp:
        assert resp.status == 200
    # Rotate: a new CA and certificate on disk; the open keep-alive connection keeps working.
    new_ca = trustme.CA()
    cert = new_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    await asyncio.sleep(0.5)
    async with hook.session.get(hook.url + "/healthz") as resp:
        assert resp.status == 200  # the existing connection was not dropped
    context = ssl.create_default_context()
    new_ca.configure_trust(context)
    connector = aiohttp.TCPConnector(ssl=context)
    async with (
        aiohttp.ClientSession(connector=connector) as fresh,
        fresh.get(hook.url + "/healthz") as resp,
    ):
        assert resp.status == 200  # new handshakes present the new certificate


async def test_require_digest_denies_tags_and_admits_digests(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    text = policy_yaml(pusher.host, KEY) + "  requireDigest: true\n"
    hook = await start_webhook([compiled(text)])
    good, digest = await signed_image(pusher)
    by_tag = await hook.admit(reviews.review(reviews.workload("Pod", reviews.pod_spec([good]))))
    assert by_tag["allowed"] is False
    assert "requires images by digest" in by_tag["status"]["message"]
    assert f"@{digest}" in by_tag["status"]["message"]  # tells the person exactly what to write
    pinned = f"{good.rsplit(':', 1)[0]}@{digest}"
    by_digest = await hook.admit(
        reviews.review(reviews.workload("Pod", reviews.pod_spec([pinned])))
    )
    assert by_digest["allowed"] is True


async def test_oversized_and_deeply_nested_reviews_are_refused_never_allowed(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    # Bigger than the apiserver could ever send (3 MiB): refused before it is parsed.
    big = reviews.review(reviews.workload("Pod", reviews.pod_spec(["nginx"])))
    big["request"]["object"]["metadata"]["annotations"] = {"padding": "x" * (4 * 1024 * 1024)}
    async with hook.session.post(
        hook.url + "/validate", data=io.BytesIO(json.dumps(big).encode())
    ) as resp:
        status, answer = resp.status, await resp.read()
    assert status in (400, 413), (status, answer)
    # A nesting bomb inside the object: a clear 400, not a crash or a 500.
    nested = (
        b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":'
        + (b"[" * 100_000 + b"]" * 100_000)
        + b"}"
    )
    status, answer = await hook.post("/validate", nested)
    assert status == 400, (status, answer)
    # The server is still answering.
    good, _ = await unsigned_image(pusher)
    response = await hook.admit(reviews.review(reviews.workload("Pod", reviews.pod_spec([good]))))
    assert response["allowed"] is False


async def test_tls_below_1_2_is_refused(
    start_webhook: StartWebhook, pusher: Pusher, tls_ca: trustme.CA
) -> None:
    hook = await start_webhook([compiled(policy_yaml(pusher.host, KEY))])
    port = int(hook.url.rsplit(":", 1)[1])

    async def handshake(version: ssl.TLSVersion) -> str | None:
        context = ssl.create_default_context()
        tls_ca.configure_trust(context)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client offers whatever it can
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 on purpose
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = version
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        except (ssl.SSLError, ConnectionResetError):
            return None
        negotiated = writer.get_extra_info("ssl_object").version()
        writer.close()
        return str(negotiated)

    assert await handshake(ssl.TLSVersion.TLSv1_1) is None
    assert await handshake(ssl.TLSVersion.TLSv1) is None
    assert await handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert await handshake(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"


# -- only the apiserver may call /validate and /mutate (issue 15, item 4) ------------------------

APISERVER_NAME = "kube-apiserver-webhook-client"
"""The client certificate's name in docs/operations.md, and the chart's default allowed name."""


def caller(
    server_ca: trustme.CA, cert: trustme.LeafCert | None, tls: ssl.TLSVersion | None = None
) -> aiohttp.ClientSession:
    """A client that trusts the webhook and presents ``cert`` (None: no certificate)."""
    context = ssl.create_default_context()
    if tls is not None:
        context.maximum_version = tls
    server_ca.configure_trust(context)
    if cert is not None:
        cert.configure_cert(context)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))


async def post_as(
    hook: Webhook,
    server_ca: trustme.CA,
    cert: trustme.LeafCert | None,
    path: str,
    body: Any,
    tls: ssl.TLSVersion | None = None,
) -> tuple[int, Any]:
    """POST ``body`` on a fresh connection presenting ``cert``; (status, parsed JSON or bytes)."""
    async with caller(server_ca, cert, tls) as session:
        return await Webhook(hook.url, session, hook.engine, hook.metrics).post(path, body)


def refused_count(hook: Webhook, webhook: str, reason: str) -> float:
    value = hook.metrics.registry.get_sample_value(
        "signgate_refused_callers_total", {"webhook": webhook, "reason": reason}
    )
    assert value is not None
    return value


def assert_refusal(answer: Any, path: str, why: str) -> None:
    """A one-line error, also shaped as a Kubernetes Status (what the apiserver shows); never an
    AdmissionReview."""
    assert isinstance(answer, dict), answer
    assert "response" not in answer and answer["kind"] == "Status", answer
    assert answer["code"] == 403 and answer["reason"] == "Forbidden"
    assert answer["error"] == answer["message"]
    assert f"only the kube-apiserver may call {path}" in answer["error"]
    assert why in answer["error"]
    assert "\n" not in answer["error"]


@dataclass
class Effects:
    """What the operator's hooks would have done: read pull secrets, post Events, count."""

    calls: list[str]

    async def credentials_for(self, request: Any) -> None:
        self.calls.append(f"pull secrets of {request.namespace}")

    def on_denied(self, request: Any, message: str) -> None:
        self.calls.append(f"Event on {request.name}")

    def on_verdict(self, request: Any, decisions: Any) -> None:
        self.calls.append(f"status counts for {request.name}")

    def hooks(self) -> dict[str, Any]:
        return {
            "credentials_for": self.credentials_for,
            "on_denied": self.on_denied,
            "on_verdict": self.on_verdict,
        }


@pytest.fixture
def client_ca_file(tmp_path: Path) -> tuple[trustme.CA, Path]:
    """The CA that issues the apiserver's client certificate, and its PEM on disk."""
    ca = trustme.CA(organization_name="signgate test webhook clients")
    path = tmp_path / "client-ca.crt"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


async def test_review_paths_refuse_callers_without_a_client_certificate_before_reading(
    start_webhook: StartWebhook,
    pusher: Pusher,
    tls_ca: trustme.CA,
    client_ca_file: tuple[trustme.CA, Path],
) -> None:
    # A forged review naming another namespace's object: without client authentication it makes
    # signgate read that namespace's pull secrets, post an Event there and count a decision.
    _, ca_path = client_ca_file
    effects = Effects([])
    hook = await start_webhook(
        [compiled(policy_yaml(pusher.host, KEY))],
        client_ca=ca_path,
        client_names=[APISERVER_NAME],
        **effects.hooks(),
    )
    bad, _ = await unsigned_image(pusher)
    forged = reviews.review(reviews.workload("Pod", reviews.pod_spec([bad])))
    forged["request"]["namespace"] = "payments"
    for path in ("/validate", "/mutate"):
        for body in (forged, b"not even JSON"):  # refused before the body is parsed, or read
            status, answer = await post_as(hook, tls_ca, None, path, body)
            assert status == 403, (path, answer)
            assert_refusal(answer, path, "none was presented")
    assert effects.calls == []  # no Secret read, no Event, no status count
    assert hook.engine.client.requests_sent == 0  # no registry request, so no cache entry
    assert len(hook.engine.outcomes) == 0
    assert len(hook.engine.tags) == 0
    assert refused_count(hook, "validate", "no-certificate") == 2
    assert refused_count(hook, "mutate", "no-certificate") == 2
    assert refused_count(hook, "validate", "name") == 0


async def test_the_apiserver_certificate_gets_the_normal_answers(
    start_webhook: StartWebhook,
    pusher: Pusher,
    tls_ca: trustme.CA,
    client_ca_file: tuple[trustme.CA, Path],
) -> None:
    client_ca, ca_path = client_ca_file
    effects = Effects([])
    hook = await start_webhook(
        [compiled(policy_yaml(pusher.host, KEY))],
        client_ca=ca_path,
        client_names=["other-client", APISERVER_NAME],
        **effects.hooks(),
    )
    good, digest = await signed_image(pusher)
    bad, _ = await unsigned_image(pusher)
    by_cn = client_ca.issue_cert("apiserver.example", common_name=APISERVER_NAME)
    by_dns = client_ca.issue_cert("other-client", common_name="something else")
    for cert in (by_cn, by_dns):
        status, answer = await post_as(
            hook,
            tls_ca,
            cert,
            "/mutate",
            reviews.review(reviews.workload("Pod", reviews.pod_spec([good]))),
        )
        assert status == 200, answer
        assert answer["response"]["allowed"] is True
        assert json.loads(base64.b64decode(answer["response"]["patch"]))[0]["value"] == (
            f"{good}@{digest}"
        )
    status, answer = await post_as(
        hook,
        tls_ca,
        by_cn,
        "/validate",
        reviews.review(reviews.workload("Pod", reviews.pod_spec([bad]))),
    )
    assert status == 200, answer
    assert answer["response"]["allowed"] is False
    assert "no signature found" in answer["response"]["status"]["message"]
    assert any(call.startswith("Event on") for call in effects.calls)  # behind the apiserver
    assert refused_count(hook, "validate", "no-certificate") == 0
    assert refused_count(hook, "mutate", "name") == 0


async def test_a_certificate_from_the_ca_with_another_name_is_refused(
    start_webhook: StartWebhook,
    pusher: Pusher,
    tls_ca: trustme.CA,
    client_ca_file: tuple[trustme.CA, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # E.g. a kubelet's or an admin's certificate, when the client CA is the cluster's own CA.
    client_ca, ca_path = client_ca_file
    effects = Effects([])
    hook = await start_webhook(
        [compiled(policy_yaml(pusher.host, KEY))],
        client_ca=ca_path,
        client_names=[APISERVER_NAME],
        **effects.hooks(),
    )
    good, _ = await signed_image(pusher)
    intruder = client_ca.issue_cert("node-1.example", common_name="system:node:node-1")
    review = reviews.review(reviews.workload("Pod", reviews.pod_spec([good])))
    review["request"]["object"]["metadata"]["annotations"] = {"note": "attacker text"}
    with caplog.at_level("WARNING", logger="signgate.admission.server"):
        for path in ("/validate", "/mutate"):
            status, answer = await post_as(hook, tls_ca, intruder, path, review)
            assert status == 403, (path, answer)
            assert_refusal(answer, path, "its names are not allowed")
    assert effects.calls == []
    assert hook.engine.client.requests_sent == 0
    assert refused_count(hook, "validate", "name") == 1
    assert refused_count(hook, "mutate", "name") == 1
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 2
    assert "'system:node:node-1'" in lines[0]
    assert all("attacker text" not in line and good not in line for line in lines)
    # Without client_names, any certificate the CA issued is the apiserver's.
    anyone = await start_webhook([compiled(policy_yaml(pusher.host, KEY))], client_ca=ca_path)
    status, answer = await post_as(anyone, tls_ca, intruder, "/validate", review)
    assert status == 200
    assert answer["response"]["allowed"] is True


async def test_a_certificate_from_another_ca_fails_the_handshake(
    start_webhook: StartWebhook,
    pusher: Pusher,
    tls_ca: trustme.CA,
    client_ca_file: tuple[trustme.CA, Path],
) -> None:
    _, ca_path = client_ca_file
    effects = Effects([])
    hook = await start_webhook(
        [compiled(policy_yaml(pusher.host, KEY))],
        client_ca=ca_path,
        client_names=[APISERVER_NAME],
        **effects.hooks(),
    )
    forged = trustme.CA().issue_cert(common_name=APISERVER_NAME)  # the right name, wrong issuer
    review = reviews.review(reviews.workload("Pod", reviews.pod_spec(["nginx"])))
    for path in ("/validate", "/healthz"):  # a certificate that is sent must verify, on any path
        # TLS 1.2: the handshake fails, so no request is ever sent. The server answers the
        # certificate with the alert "unknown CA" and closes; the client sees the alert or, as
        # the close may overtake it, a reset.
        with pytest.raises(aiohttp.ClientConnectorError) as failed:
            await post_as(hook, tls_ca, forged, path, review, ssl.TLSVersion.TLSv1_2)
        cause = failed.value.os_error
        assert isinstance(cause, ConnectionResetError) or "UNKNOWN_CA" in str(cause), cause
        # TLS 1.3: the client's handshake completes before the server has checked the
        # certificate; the server then refuses it the same way, so the request gets no answer.
        with pytest.raises(aiohttp.ClientOSError) as closed:
            await post_as(hook, tls_ca, forged, path, review, ssl.TLSVersion.TLSv1_3)
        assert not isinstance(closed.value, aiohttp.ClientResponseError)
    assert effects.calls == []
    assert refused_count(hook, "validate", "no-certificate") == 0  # never reached the handler


async def test_probes_and_metrics_need_no_client_certificate(
    start_webhook: StartWebhook,
    pusher: Pusher,
    tls_ca: trustme.CA,
    client_ca_file: tuple[trustme.CA, Path],
) -> None:
    _, ca_path = client_ca_file
    hook = await start_webhook(
        [compiled(policy_yaml(pusher.host, KEY))], client_ca=ca_path, client_names=[APISERVER_NAME]
    )
    assert (await post_as(hook, tls_ca, None, "/validate", b"{}"))[0] == 403
    async with caller(tls_ca, None) as session:  # the kubelet and Prometheus present none
        async with session.get(hook.url + "/healthz") as resp:
            assert resp.status == 200
        async with session.get(hook.url + "/readyz") as resp:
            assert resp.status == 200
        async with session.get(hook.url + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    assert 'signgate_refused_callers_total{reason="no-certificate",webhook="validate"} 1.0' in text


async def test_the_systems_roots_verify_no_client_certificate(
    start_webhook: StartWebhook,
    pusher: Pusher,
    tls_ca: trustme.CA,
    tmp_path: Path,
    client_ca_file: tuple[trustme.CA, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the client CA verifies client certificates: were the system's roots trusted as well,
    # a certificate from a public CA (which may allow client authentication) would pass, and
    # only client_names would stand in the way.
    client_ca, ca_path = client_ca_file
    public = trustme.CA()  # a root in the system's trust store (OpenSSL's SSL_CERT_FILE)
    public.cert_pem.write_to_path(str(tmp_path / "system-roots.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "system-roots.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-directory"))
    hook = await start_webhook(
        [compiled(policy_yaml(pusher.host, KEY))], client_ca=ca_path, client_names=[APISERVER_NAME]
    )
    review = reviews.review(reviews.workload("Pod", reviews.pod_spec(["nginx"])))
    public_cert = public.issue_cert(common_name=APISERVER_NAME)
    with pytest.raises(aiohttp.ClientConnectorError):
        await post_as(hook, tls_ca, public_cert, "/validate", review, ssl.TLSVersion.TLSv1_2)
    apiserver = client_ca.issue_cert(common_name=APISERVER_NAME)
    status, _ = await post_as(hook, tls_ca, apiserver, "/validate", review, ssl.TLSVersion.TLSv1_2)
    assert status == 200
    # Without a client CA no certificate is asked for.
    off = CertificateReloader(tmp_path / "tls.crt", tmp_path / "tls.key")
    assert off.context.verify_mode == ssl.CERT_NONE


async def test_certificate_rotation_keeps_client_certificates_required(
    start_webhook: StartWebhook,
    pusher: Pusher,
    tmp_path: Path,
    client_ca_file: tuple[trustme.CA, Path],
) -> None:
    client_ca, ca_path = client_ca_file
    hook = await start_webhook(
        [compiled(policy_yaml(pusher.host, KEY))], client_ca=ca_path, client_names=[APISERVER_NAME]
    )
    good, _ = await signed_image(pusher)
    review = reviews.review(reviews.workload("Pod", reviews.pod_spec([good])))
    new_ca = trustme.CA()
    cert = new_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    for _ in range(100):  # until new handshakes present the new certificate
        try:
            status, _ = await post_as(hook, new_ca, None, "/validate", review)
            break
        except aiohttp.ClientConnectorCertificateError:
            await asyncio.sleep(0.05)
    else:
        pytest.fail("the rotated certificate was not served")
    assert status == 403
    apiserver = client_ca.issue_cert(common_name=APISERVER_NAME)
    status, answer = await post_as(hook, new_ca, apiserver, "/validate", review)
    assert status == 200
    assert answer["response"]["allowed"] is True


async def test_a_denial_is_reported_once_whichever_webhook_denies(
    start_webhook: StartWebhook, pusher: Pusher
) -> None:
    # With the chart's two webhooks, /mutate runs first; when it denies, the apiserver never calls
    # /validate, so the denial's Event must come from /mutate (it never did).
    denials: list[str] = []
    hook = await start_webhook(
        [compiled(policy_yaml(pusher.host, KEY))],
        on_denied=lambda request, message: denials.append(message),
    )
    bad, _ = await unsigned_image(pusher)
    body = reviews.review(reviews.workload("Pod", reviews.pod_spec([bad])))

    assert (await hook.admit(body, mutate=True))["allowed"] is False
    assert len(denials) == 1
    assert "no signature found" in denials[0]
    assert (await hook.admit(body))["allowed"] is False  # a validating-only configuration
    assert len(denials) == 2
