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
from signgate.admission.server import ServerSettings, make_app, running_server
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
        policies: Sequence[CompiledPolicy], *, deadline: float = 8.0, insecure: Sequence[str] = ()
    ) -> Webhook:
        cert = tls_ca.issue_cert("127.0.0.1", "localhost")
        cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        settings = ServerSettings(
            cert_file, key_file, "127.0.0.1", 0, deadline, cert_check_interval=0.1
        )
        client = RegistryClient(
            RegistryOptions(insecure_hosts=frozenset({registry.host, *insecure}))
        )
        engine = Verifier(client, settings=VerifierSettings())
        metrics = Metrics(engine)
        app = make_app(
            engine=engine, policies=StaticPolicySource(policies), settings=settings, metrics=metrics
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
