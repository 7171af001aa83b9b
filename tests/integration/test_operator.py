"""Operator mode: TrustPolicies from a (fake) Kubernetes API, the webhook answering from them.

The API is kmock's emulator (tests/support/kube.py): Kopf lists, watches and patches it for real,
but it never calls webhooks, so "kubectl apply is denied" is proven elsewhere, against a real
kube-apiserver. Here: the index, readiness, status, broken policies, and changes without restart.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import ssl
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
import trustme

from signgate.admission.server import ServerSettings
from signgate.engine import CacheSettings, Verifier, VerifierSettings
from signgate.kube.api import KubeApi
from signgate.kube.run import run_operator
from signgate.kube.source import ClusterPolicySource
from signgate.registry import RegistryClient, RegistryOptions
from support import reviews, signer
from support.formats import PrivateKey, generate_key, public_key_pem
from support.kube import (
    TRUSTPOLICIES,
    FakeCluster,
    add_login,
    operator_thread,
    secret,
    trust_policy,
)
from support.push import Pusher
from support.registry import RegistryServer


def key_spec(
    host: str, key: PrivateKey | None, *, pem: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "images": [f"{host}/op/**"],
        "authorities": [
            {
                "name": "release-key",
                "key": {"pem": pem if pem is not None else public_key_pem(key).decode()},
            }  # type: ignore[arg-type]
        ],
        **extra,
    }


@dataclass
class Running:
    url: str
    session: aiohttp.ClientSession
    source: ClusterPolicySource

    async def admit(self, image: str) -> dict[str, Any]:
        body = reviews.review(reviews.workload("Pod", reviews.pod_spec([image])))
        async with self.session.post(self.url + "/validate", json=body) as resp:
            assert resp.status == 200
            return json.loads(await resp.read())["response"]  # type: ignore[no-any-return]

    async def ready(self) -> bool:
        async with self.session.get(self.url + "/readyz") as resp:
            return resp.status == 200


@pytest.fixture
async def operator(
    kube: FakeCluster,
    registry: RegistryServer,
    registry_basic: RegistryServer,
    tls_ca: trustme.CA,
    tmp_path: Path,
) -> AsyncIterator[Running]:
    cert = tls_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    server = ServerSettings(tmp_path / "tls.crt", tmp_path / "tls.key", "127.0.0.1", 0, 8.0)
    kopf_registry = kopf.OperatorRegistry()
    add_login(kopf_registry, kube)
    serving = threading.Event()
    found: dict[str, Any] = {}

    def on_serving(port: int, source: ClusterPolicySource) -> None:
        found.update(port=port, source=source)
        serving.set()

    async def main(stop: asyncio.Event) -> None:
        # The htpasswd registry is trusted (its CA) but has no credentials configured: only a
        # workload's imagePullSecrets can open it.
        options = RegistryOptions(
            insecure_hosts=frozenset({registry.host}),
            ca_files={registry_basic.host: str(registry_basic.ca_file)},
        )
        # No verdict caching: these tests change policies and signatures and look again.
        no_cache = CacheSettings(tag_ttl=0, verified_ttl=0, unverified_ttl=0)
        async with RegistryClient(options) as client:
            engine = Verifier(client, settings=VerifierSettings(cache=no_cache))
            await run_operator(
                engine=engine,
                server=server,
                stop=stop,
                registry=kopf_registry,
                api=KubeApi(kopf.ConnectionInfo(server=kube.url)),
                secret_namespace="default",
                secret_check_interval=0.3,
                on_serving=on_serving,
                status_interval=0.3,
                resync_interval=0.3,  # often: every test here also runs beside the re-sync
            )

    async with operator_thread(main):
        assert await asyncio.to_thread(serving.wait, 15), "the webhook did not start"
        context = ssl.create_default_context()
        tls_ca.configure_trust(context)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            running = Running(f"https://127.0.0.1:{found['port']}", session, found["source"])
            await kube.eventually(running.ready, message="policies never became ready")
            yield running


async def test_policies_from_the_cluster_decide_admission(
    kube: FakeCluster, operator: Running, pusher: Pusher
) -> None:
    key = generate_key()
    name = f"op/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    await pusher.push_random_image(name, "unsigned")
    await signer.sign_legacy(pusher, name, digest, key)
    signed, unsigned = f"{pusher.host}/{name}:v1", f"{pusher.host}/{name}:unsigned"

    # Before any policy: nothing governs the image, so it is denied.
    assert (await operator.admit(signed))["allowed"] is False
    await kube.create(trust_policy("release", key_spec(pusher.host, key)))
    await kube.eventually(lambda: len(operator.source.current()) == 1)
    assert (await operator.admit(signed))["allowed"] is True
    denied = await operator.admit(unsigned)
    assert denied["allowed"] is False
    assert "TrustPolicy 'release'" in denied["status"]["message"]

    # Status: Ready, one authority, the generation it describes.
    body = await kube.wait_for_object(
        TRUSTPOLICIES, "release", lambda b: b.get("status", {}).get("conditions")
    )
    status = body["status"]
    assert status["authorities"] == 1
    assert status["observedGeneration"] == body["metadata"]["generation"]
    (ready,) = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Compiled")

    # Recent decisions: one admitted, one denied with its reason, per replica and summed.
    body = await kube.wait_for_object(
        TRUSTPOLICIES,
        "release",
        lambda b: b.get("status", {}).get("recentDecisions", {}).get("denied") == 1,
    )
    recent = body["status"]["recentDecisions"]
    assert (recent["allowed"], recent["denied"], recent["warned"]) == (1, 1, 0)
    assert recent["windowSeconds"] == 3600
    assert recent["lastDenial"]["image"].startswith(f"{pusher.host}/{name}@sha256:")
    assert recent["lastDenial"]["object"].startswith("Pod ")
    assert "no signature found" in recent["lastDenial"]["reason"]
    (mine,) = recent["replicas"].values()
    assert (mine["allowed"], mine["denied"]) == (1, 1)

    # Rotate the key in place: decisions follow without a restart.
    other = generate_key()
    await kube.patch(TRUSTPOLICIES, "release", {"spec": key_spec(pusher.host, other)})

    async def rotated() -> bool:
        return (await operator.admit(signed))["allowed"] is False

    await kube.eventually(rotated, message="the rotated key was never used")

    # Delete it: the image is governed by nothing again.
    await kube.delete(TRUSTPOLICIES, "release")
    await kube.eventually(lambda: not operator.source.current())
    gone = await operator.admit(signed)
    assert "no TrustPolicy governs" in gone["status"]["message"]


async def test_what_the_watch_missed_is_re_synced(
    kube: FakeCluster, operator: Running, pusher: Pusher
) -> None:
    # kmock cannot take a watch down, so the fake API changes and then deletes the policy without
    # a watch event: exactly what Kopf sees of a change while its watch hangs, and of a deletion
    # during an outage (its re-list on reconnecting reports what exists, never what went).
    key = generate_key()
    name = f"op/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, key)
    signed = f"{pusher.host}/{name}:v1"
    await kube.create(trust_policy("release", key_spec(pusher.host, key)))

    async def settled() -> bool:
        # Kopf and signgate have written all they write about a new policy, and the index holds
        # that last version: from here on, only the re-sync can tell the index what changes.
        body = await kube.get(TRUSTPOLICIES, "release")
        annotations = body["metadata"].get("annotations") or {}
        status = body.get("status") or {}
        versions = [e.resource_version for e in operator.source.entries()]
        return (
            "signgate.dev/last-handled-configuration" in annotations
            and bool(status.get("conditions"))
            and "recentDecisions" in status
            and versions == [body["metadata"]["resourceVersion"]]
        )

    await kube.eventually(settled, message="the new policy never settled")
    (before,) = operator.source.current()

    await kube.unannounced(
        TRUSTPOLICIES, "release", {"spec": key_spec(pusher.host, generate_key())}
    )
    await kube.eventually(
        lambda: [p.identity for p in operator.source.current()] not in ([], [before.identity]),
        message="a change the watch missed was never enforced",
    )
    denied = await operator.admit(signed)
    assert denied["allowed"] is False
    assert "TrustPolicy 'release'" in denied["status"]["message"]

    await kube.unannounced(TRUSTPOLICIES, "release", None)
    await kube.eventually(
        lambda: not operator.source.current(), message="a deleted policy is still enforced"
    )
    gone = await operator.admit(signed)
    assert "no TrustPolicy governs" in gone["status"]["message"]


async def test_a_broken_policy_denies_its_images_and_leaves_others_alone(
    kube: FakeCluster, operator: Running, pusher: Pusher
) -> None:
    key = generate_key()
    good_name = f"op/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(good_name, "v1")
    await signer.sign_legacy(pusher, good_name, digest, key)
    bad_pem = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
    broken = key_spec(pusher.host, None, pem=bad_pem)
    broken["images"] = [f"{pusher.host}/op/broken/**"]
    await kube.create(trust_policy("broken", broken))
    await kube.create(
        trust_policy(
            "release", key_spec(pusher.host, key, excludeImages=[f"{pusher.host}/op/broken/**"])
        )
    )
    await kube.eventually(lambda: len(operator.source.current()) == 2)

    assert (await operator.admit(f"{pusher.host}/{good_name}:v1"))["allowed"] is True
    denied = await operator.admit(f"{pusher.host}/op/broken/app@sha256:{'a' * 64}")
    assert denied["allowed"] is False
    message = denied["status"]["message"]
    assert "TrustPolicy 'broken' is invalid" in message
    assert "release-key" in message

    body = await kube.wait_for_object(
        TRUSTPOLICIES, "broken", lambda b: b.get("status", {}).get("conditions")
    )
    (ready,) = body["status"]["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "Invalid")
    assert "invalid key" in ready["message"]
    events = await kube.events(reason="InvalidTrustPolicy")
    assert events


async def test_a_policy_with_an_invalid_shape_is_reported(
    kube: FakeCluster, operator: Running
) -> None:
    # The emulator does not apply the CRD's schema, as a real apiserver would; the operator's own
    # validation still reports the problem.
    await kube.create(trust_policy("typo", {"images": ["x.example/**"], "authoritees": []}))
    body = await kube.wait_for_object(
        TRUSTPOLICIES, "typo", lambda b: b.get("status", {}).get("conditions")
    )
    (ready,) = body["status"]["conditions"]
    assert ready["status"] == "False"
    assert "authorities" in ready["message"]


def ready_condition(body: dict[str, Any]) -> dict[str, Any] | None:
    for condition in body.get("status", {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition  # type: ignore[no-any-return]
    return None


async def test_keys_from_secrets_are_read_and_followed(
    kube: FakeCluster, operator: Running, pusher: Pusher
) -> None:
    key, rotated = generate_key(), generate_key()
    name = f"op/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, key)
    image = f"{pusher.host}/{name}:v1"
    spec = {
        "images": [f"{pusher.host}/op/**"],
        "authorities": [{"name": "release-key", "key": {"secretRef": {"name": "cosign-keys"}}}],
    }
    # The Secret does not exist yet: the policy is broken, says why, and denies.
    await kube.create(trust_policy("from-secret", spec))
    body = await kube.wait_for_object(TRUSTPOLICIES, "from-secret", ready_condition)
    condition = ready_condition(body)
    assert condition is not None
    assert condition["status"] == "False"
    assert "Secret default/cosign-keys: not found" in condition["message"]
    denied = await operator.admit(image)
    assert "Secret default/cosign-keys: not found" in denied["status"]["message"]

    # The Secret appears: picked up without touching the policy.
    await kube.create(
        secret("default", "cosign-keys", {"cosign.pub": public_key_pem(key).decode()})
    )

    async def admitted() -> bool:
        return bool((await operator.admit(image))["allowed"])

    await kube.eventually(admitted, timeout=10, message="the Secret's key was never used")
    await kube.wait_for_object(
        TRUSTPOLICIES, "from-secret", lambda b: (ready_condition(b) or {}).get("status") == "True"
    )

    # The Secret's key is rotated: the old signature stops counting.
    new_data = secret("default", "x", {"cosign.pub": public_key_pem(rotated).decode()})["data"]
    await kube.patch("secrets", "cosign-keys", {"data": new_data}, namespace="default")

    async def refused() -> bool:
        return not (await operator.admit(image))["allowed"]

    await kube.eventually(refused, timeout=10, message="the rotated Secret was never read")


async def test_denials_leave_events_on_the_pod_and_its_owner(
    kube: FakeCluster, operator: Running, pusher: Pusher
) -> None:
    await kube.create(trust_policy("release", key_spec(pusher.host, generate_key())))
    await kube.eventually(lambda: len(operator.source.current()) == 1)
    name = f"op/{secrets.token_hex(4)}"
    await pusher.push_random_image(name, "v1")
    pod = reviews.workload("Pod", reviews.pod_spec([f"{pusher.host}/{name}:v1"]), name="web-1")
    pod["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": "rs-1",
            "controller": True,
        }
    ]
    async with operator.session.post(operator.url + "/validate", json=reviews.review(pod)) as resp:
        assert json.loads(await resp.read())["response"]["allowed"] is False

    async def both() -> bool:
        events = await kube.events(reason="ImageNotVerified")
        return {"Pod", "ReplicaSet"} <= {e["involvedObject"]["kind"] for e in events}

    await kube.eventually(both, message="no ImageNotVerified events on the Pod and ReplicaSet")
    events = await kube.events(reason="ImageNotVerified")
    assert all(e["type"] == "Warning" for e in events)
    assert all("signgate denied" in e["message"] for e in events)

    # A dry run is answered the same way but leaves no trace.
    before = len(events)
    dry = reviews.review(pod, dry_run=True)
    async with operator.session.post(operator.url + "/validate", json=dry) as resp:
        assert json.loads(await resp.read())["response"]["allowed"] is False
    await asyncio.sleep(0.3)
    assert len(await kube.events(reason="ImageNotVerified")) == before


async def test_a_workloads_image_pull_secrets_open_a_private_registry(
    kube: FakeCluster, operator: Running, registry_basic: RegistryServer, tmp_path: Path
) -> None:
    key = generate_key()
    name = f"op/{secrets.token_hex(4)}"
    async with Pusher.for_registry(registry_basic) as private:
        digest = await private.push_random_image(name, "v1")
        await signer.sign_bundle_v3(private, name, digest, key)
    await kube.create(trust_policy("private", key_spec(registry_basic.host, key)))
    await kube.eventually(lambda: len(operator.source.current()) == 1)
    image = f"{registry_basic.host}/{name}:v1"

    # Without credentials the registry says no, and so does signgate, saying why.
    denied = await operator.admit(image)
    assert denied["allowed"] is False
    assert "requires a username and password" in denied["status"]["message"]

    config = registry_basic.docker_config(tmp_path / "config.json").read_bytes()
    pull_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "regcred", "namespace": "default"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(config).decode()},
    }
    await kube.create(pull_secret)
    pod = reviews.workload("Pod", reviews.pod_spec([image]))
    pod["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
    async with operator.session.post(operator.url + "/validate", json=reviews.review(pod)) as resp:
        answer = json.loads(await resp.read())["response"]
    assert answer["allowed"] is True, answer

    # A Deployment's template carries them the same way.
    deployment = reviews.workload("Deployment", pod["spec"])
    async with operator.session.post(
        operator.url + "/validate", json=reviews.review(deployment)
    ) as resp:
        assert json.loads(await resp.read())["response"]["allowed"] is True


async def test_service_account_pull_secrets_are_used(
    kube: FakeCluster, operator: Running, registry_basic: RegistryServer, tmp_path: Path
) -> None:
    key = generate_key()
    name = f"op/{secrets.token_hex(4)}"
    async with Pusher.for_registry(registry_basic) as private:
        digest = await private.push_random_image(name, "v1")
        await signer.sign_legacy(private, name, digest, key)
    await kube.create(trust_policy("private", key_spec(registry_basic.host, key)))
    await kube.eventually(lambda: len(operator.source.current()) == 1)
    config = registry_basic.docker_config(tmp_path / "config.json").read_bytes()
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "builder-creds", "namespace": "default"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(config).decode()},
        }
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "builder", "namespace": "default"},
            "imagePullSecrets": [{"name": "builder-creds"}],
        }
    )
    pod = reviews.workload("Pod", reviews.pod_spec([f"{registry_basic.host}/{name}:v1"]))
    pod["spec"]["serviceAccountName"] = "builder"
    async with operator.session.post(operator.url + "/validate", json=reviews.review(pod)) as resp:
        answer = json.loads(await resp.read())["response"]
    assert answer["allowed"] is True, answer
    # The same Pod under the default ServiceAccount has no way in.
    del pod["spec"]["serviceAccountName"]
    async with operator.session.post(operator.url + "/validate", json=reviews.review(pod)) as resp:
        assert json.loads(await resp.read())["response"]["allowed"] is False
