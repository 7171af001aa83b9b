"""The OCI 1.1 referrers API path, and how much we ask a registry per image.

distribution 2.8 has no referrers API, so its /referrers/ answers are played by the fault proxy (a
mock of that one endpoint); the referrer manifests and bundles themselves come from the real
registry.
"""

from __future__ import annotations

import json
import secrets

import pytest

from signgate.deadline import Deadline
from signgate.engine.verifier import Verifier
from signgate.errors import MalformedResponseError
from signgate.policy.compiled import compile_policy
from signgate.policy.loading import parse_policies
from signgate.reference import parse_reference
from signgate.registry import RegistryClient, RegistryOptions
from support import signer
from support.engine import key_policy
from support.fault_proxy import FaultProxy
from support.formats import PrivateKey, fallback_tag, generate_key, public_key_pem
from support.push import Pusher

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def index(manifests: list[dict[str, object]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()


async def two_signed_referrers(
    pusher: Pusher,
) -> tuple[str, str, list[dict[str, object]], PrivateKey, PrivateKey]:
    name = f"refapi/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    a, b = generate_key(), generate_key()
    await signer.sign_bundle_v3(pusher, name, digest, a)
    await signer.sign_bundle_v3(pusher, name, digest, b)
    entries = (await pusher.get_manifest(name, fallback_tag(digest))).json()["manifests"]
    assert len(entries) == 2
    return name, digest, entries, a, b


def both_keys_policy(host: str, a: PrivateKey, b: PrivateKey) -> object:
    def pem(key: PrivateKey) -> str:
        lines = public_key_pem(key).decode().strip().splitlines()
        return "\n".join("          " + line for line in lines)

    text = f"""
apiVersion: signgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: both}}
spec:
  images: ["{host}/refapi/**"]
  threshold: 2
  authorities:
    - name: a
      key:
        pem: |
{pem(a)}
    - name: b
      key:
        pem: |
{pem(b)}
"""
    return compile_policy(parse_policies(text, "inline")[0])


async def test_paginated_referrers_are_all_read(pusher: Pusher, fault_proxy: FaultProxy) -> None:
    name, digest, entries, a, b = await two_signed_referrers(pusher)
    page2 = f"/v2/{name}/referrers/{digest}?n=1&last={entries[0]['digest']}"
    fault_proxy.status(
        r"/referrers/",
        200,
        body=index(entries[:1]),
        headers={"Content-Type": OCI_INDEX, "Link": f'<{page2}>; rel="next"'},
        times=1,
    )
    fault_proxy.status(
        r"/referrers/", 200, body=index(entries[1:]), headers={"Content-Type": OCI_INDEX}, times=1
    )
    options = RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))
    async with RegistryClient(options) as client:
        image = f"{fault_proxy.host}/{name}:v1"
        decision = await Verifier(client).verify_image(
            image,
            [both_keys_policy(fault_proxy.host, a, b)],
            Deadline.after(10),  # type: ignore[list-item]
        )
    assert decision.allowed, decision.reasons
    assert fault_proxy.count(r"/referrers/") == 2
    assert fault_proxy.count(rf"/manifests/{fallback_tag(digest)}$") == 0  # the API answered


async def test_pagination_is_bounded_and_stays_on_the_host(
    pusher: Pusher, fault_proxy: FaultProxy
) -> None:
    name, digest, entries, _, _ = await two_signed_referrers(pusher)
    options = RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))
    ref = parse_reference(f"{fault_proxy.host}/{name}:v1")
    fault_proxy.status(
        r"/referrers/",
        200,
        body=index(entries[:1]),
        headers={
            "Content-Type": OCI_INDEX,
            "Link": f'</v2/{name}/referrers/{digest}?again>; rel="next"',
        },
    )
    async with RegistryClient(options) as client:
        with pytest.raises(MalformedResponseError, match="more than 8 pages"):
            await client.list_referrers(ref, digest, Deadline.after(10))
    fault_proxy.clear()
    fault_proxy.status(
        r"/referrers/",
        200,
        body=index(entries[:1]),
        headers={"Content-Type": OCI_INDEX, "Link": '<https://evil.example/v2/x>; rel="next"'},
    )
    async with RegistryClient(options) as client:
        with pytest.raises(MalformedResponseError, match="another host"):
            await client.list_referrers(ref, digest, Deadline.after(10))


async def test_a_referrers_answer_with_the_wrong_content_type_falls_back_to_the_tag(
    pusher: Pusher, fault_proxy: FaultProxy
) -> None:
    name, digest, _, _, _ = await two_signed_referrers(pusher)
    fault_proxy.status(
        r"/referrers/", 200, body=b"<html>hello</html>", headers={"Content-Type": "text/html"}
    )
    options = RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))
    async with RegistryClient(options) as client:
        result = await client.list_referrers(
            parse_reference(f"{fault_proxy.host}/{name}:v1"), digest, Deadline.after(10)
        )
    assert result.source == "tag"
    assert len(result.descriptors) == 2


async def test_signature_manifest_is_fetched_once_for_all_keys_and_policies(
    pusher: Pusher, fault_proxy: FaultProxy
) -> None:
    name = f"refapi/{secrets.token_hex(4)}"
    digest = await pusher.push_random_image(name, "v1")
    keys = [generate_key() for _ in range(4)]
    for key in keys:
        await signer.sign_legacy(pusher, name, digest, key)
    await signer.sign_bundle_v3(pusher, name, digest, keys[0])
    policies = [key_policy(keys[0], keys[1]), key_policy(keys[2], keys[3])]
    options = RegistryOptions(insecure_hosts=frozenset({fault_proxy.host}))
    async with RegistryClient(options) as client:
        decision = await Verifier(client).verify_image(
            f"{fault_proxy.host}/{name}:v1", policies, Deadline.after(10)
        )
        sent = client.requests_sent
    assert decision.allowed, decision.reasons
    assert fault_proxy.count(r"\.sig$") == 1
    assert fault_proxy.count(r"/blobs/", method="GET") == 4 + 1  # four payloads, one bundle
    # Cold cost on a registry without the referrers API: resolve (1), .sig manifest (1),
    # referrers API + fallback tag (2), one referrer manifest (1), blobs (5), plus the one-off
    # https-then-http probe of an insecure registry (1).
    assert sent == 11
