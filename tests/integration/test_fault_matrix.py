"""The fault matrix of issue 7 (docs/fault-matrix.md), one test per row that had none.

Every test puts a real registry (CNCF distribution, or the referrers-API registry) behind the
fault, through the fault proxy where the registry itself cannot misbehave, and checks the three
things the table promises: in Enforce mode the image is denied with a reason a person can act on
(and the engine's catch-all "internal error" never fires: nothing raised), the bytes read stay
bounded by the cap that applies, and the next request after the fault clears is admitted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signgate.admission.metrics import Metrics
from signgate.admission.server import ServerSettings, make_app, running_server
from signgate.engine import CacheSettings, Verifier, VerifierSettings
from signgate.kube.api import KubeApi
from signgate.kube.run import run_operator
from signgate.kube.source import ClusterPolicySource
from signgate.policy.compiled import CompiledPolicy, compile_policy
from signgate.policy.evaluate import ImageDecision
from signgate.policy.loading import parse_policies
from signgate.policy.sources import StaticPolicySource
from signgate.registry import RegistryClient, RegistryLimits, RegistryOptions
from support import reviews, signer
from support.engine import Checker, key_policy, options_for
from support.fault_proxy import FaultProxy, MiB
from support.formats import (
    BUNDLE_V03_MEDIA_TYPE,
    CERTIFICATE_ANNOTATION,
    COSIGN_SIGN_PREDICATE_TYPE,
    INTOTO_PAYLOAD_TYPE,
    SIGNATURE_ANNOTATION,
    Layer,
    PrivateKey,
    fallback_tag,
    generate_key,
    pae,
    public_key_pem,
    sign_bytes,
    signature_tag,
    statement_v1,
)
from support.kube import TRUSTPOLICIES, FakeCluster, operator_thread, trust_policy
from support.push import Pusher
from support.registry import RegistryServer
from support.token_server import TokenFault

KEY = generate_key()
LIMITS = RegistryLimits()
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SIG_MANIFEST = r"/manifests/sha256-[0-9a-f]{64}\.sig$"
SLACK = 16 * MiB
"""What the kernel's socket buffers may hold on loopback beyond what the client read."""


# -- helpers ---------------------------------------------------------------------------------------


def repo() -> str:
    return f"matrix/{secrets.token_hex(4)}"


def assert_denied(decision: ImageDecision, *fragments: str) -> str:
    """Denied, with every fragment in the reasons, and not by the engine's catch-all."""
    text = " | ".join(decision.reasons)
    assert not decision.allowed, decision
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    assert "internal error" not in text, text  # verify_image caught an exception: a bug
    return text


def assert_admitted(decision: ImageDecision) -> None:
    assert decision.allowed, decision.reasons


@contextlib.asynccontextmanager
async def client_via(proxy: FaultProxy) -> AsyncIterator[Checker]:
    """The engine, talking to the registry through ``proxy`` (a plain-HTTP registry)."""
    options = RegistryOptions(insecure_hosts=frozenset({proxy.host}))
    async with RegistryClient(options) as client:
        yield Checker(client)


async def signed_legacy(pusher: Pusher) -> tuple[str, str]:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    await signer.sign_legacy(pusher, name, digest, KEY)
    return name, digest


async def stops_growing(proxy: FaultProxy) -> int:
    """Wait until the streaming faults stop writing; return the bytes they sent."""
    before = -1
    while before != proxy.bytes_sent:
        before = proxy.bytes_sent
        await asyncio.sleep(0.3)
    return before


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class TcpRelay:
    """A TCP forwarder on one fixed loopback port, so that a server can go away and come back.

    ``stop()`` makes the target unreachable (new connections are refused, open ones are cut, as
    when a Pod or a node dies); ``start()`` makes it reachable again at the same address.
    """

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for transport in list(self._transports):
            transport.abort()
        if self._pipes:
            await asyncio.wait(set(self._pipes))
        if server is not None:
            await server.wait_closed()  # (3.12+ waits for the connections cut above)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        ends = {writer.transport, up_writer.transport}
        self._transports |= ends
        pipes = {
            asyncio.ensure_future(self._pipe(reader, up_writer)),
            asyncio.ensure_future(self._pipe(up_reader, writer)),
        }
        self._pipes |= pipes
        try:
            await asyncio.wait(pipes)
        finally:
            self._pipes -= pipes
            self._transports -= ends
            for transport in ends:
                transport.abort()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(64 * 1024):
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.transport.abort()


# -- registry down -------------------------------------------------------------------------------


async def test_registry_down_denies_and_the_next_request_after_it_returns_is_admitted(
    pusher: Pusher, registry: RegistryServer
) -> None:
    name, _ = await signed_legacy(pusher)
    relay = TcpRelay(registry.host)  # not started: nothing listens on its port
    options = RegistryOptions(insecure_hosts=frozenset({relay.host}))
    image = f"{relay.host}/{name}:v1"
    async with RegistryClient(options) as client:
        check = Checker(client)
        down = await check(image, [key_policy(KEY)], timeout=5)
        assert_denied(down, f"cannot reach {relay.host}", "Connection refused", "cannot resolve")
        # Bounded: the configured attempts (one more for Docker's https-then-http), no storm.
        assert client.requests_sent <= LIMITS.max_attempts + 1
        await relay.start()
        try:
            assert_admitted(await check(image, [key_policy(KEY)], timeout=5))
        finally:
            await relay.stop()


# -- connection reset mid-body, truncated bodies ---------------------------------------------------


@pytest.mark.parametrize(
    ("arm", "how"), [("reset", "connection reset"), ("truncate", "connection closed")]
)
async def test_body_cut_off_mid_way_denies_and_recovers(
    fault_proxy: FaultProxy, pusher: Pusher, arm: str, how: str
) -> None:
    name, _ = await signed_legacy(pusher)
    image = f"{fault_proxy.host}/{name}:v1"
    getattr(fault_proxy, arm)(SIG_MANIFEST, keep=10)
    async with client_via(fault_proxy) as check:
        decision = await check(image, [key_policy(KEY)])
        text = assert_denied(
            decision,
            "could not read all signatures",
            f"lost the connection to {fault_proxy.host}: {how} after 10 of",
        )
        assert "ContentLengthError" not in text  # aiohttp's parser, not the registry's answer
        # Each attempt got 10 bytes; every retry is counted and there are no more than allowed.
        attempts = fault_proxy.count(SIG_MANIFEST)
        assert 1 < attempts <= LIMITS.max_attempts
        assert fault_proxy.bytes_sent == 10 * attempts
        fault_proxy.clear()
        assert_admitted(await check(image, [key_policy(KEY)]))


# -- 429, 500, 502, 503 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, None, "registry answered HTTP 429 for"),
        (429, "120", "Retry-After 120s is past the deadline"),
        (500, None, "registry answered HTTP 500 for"),
        (502, None, "registry answered HTTP 502 for"),
        (503, None, "registry answered HTTP 503 for"),
    ],
    ids=["429", "429-retry-after", "500", "502", "503"],
)
async def test_error_statuses_deny_with_bounded_retries_then_recover(
    fault_proxy: FaultProxy,
    pusher: Pusher,
    status: int,
    retry_after: str | None,
    expected: str,
) -> None:
    name, _ = await signed_legacy(pusher)
    image = f"{fault_proxy.host}/{name}:v1"
    fault_proxy.status(r"/manifests/v1$", status, retry_after=retry_after)
    async with client_via(fault_proxy) as check:
        decision = await check(image, [key_policy(KEY)], timeout=8)
        text = assert_denied(decision, "cannot resolve the digest", expected)
        if retry_after is None:
            what = "rate limited" if status == 429 else "server error"
            assert f"{what} after {LIMITS.max_attempts} attempts" in text
            assert not text.endswith(": "), text  # no empty "detail" tacked on
            # (One of the attempts may be Docker's TLS probe of an insecure registry.)
            assert 1 < fault_proxy.count(r"/manifests/v1$") <= LIMITS.max_attempts
        else:
            assert fault_proxy.count(r"/manifests/v1$") == 1  # no wait it could not afford
        fault_proxy.clear()
        assert_admitted(await check(image, [key_policy(KEY)]))


# -- endless and gigabyte bodies -------------------------------------------------------------------


async def test_endless_body_stops_at_the_cap_and_recovers(
    fault_proxy: FaultProxy, pusher: Pusher
) -> None:
    name, _ = await signed_legacy(pusher)
    image = f"{fault_proxy.host}/{name}:v1"
    fault_proxy.endless(r"/blobs/")
    async with client_via(fault_proxy) as check:
        decision = await check(image, [key_policy(KEY)])
        assert_denied(decision, f"exceeds the {LIMITS.max_blob_bytes}-byte limit")
        sent = await stops_growing(fault_proxy)  # the client hung up: the stream ended
        assert LIMITS.max_blob_bytes <= sent <= LIMITS.max_blob_bytes + SLACK
        fault_proxy.clear()
        assert_admitted(await check(image, [key_policy(KEY)]))


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
async def test_gigabyte_manifest_is_refused_at_the_cap_and_recovers(
    fault_proxy: FaultProxy, pusher: Pusher, declare_length: bool
) -> None:
    name, _ = await signed_legacy(pusher)
    image = f"{fault_proxy.host}/{name}:v1"
    size = 1024 * MiB
    fault_proxy.huge(SIG_MANIFEST, size=size, declare_length=declare_length)
    async with client_via(fault_proxy) as check:
        decision = await check(image, [key_policy(KEY)])
        limit = f"exceeds the {LIMITS.max_manifest_bytes}-byte limit"
        text = assert_denied(decision, "could not read all signatures", limit)
        if declare_length:
            assert f"response of {size} bytes" in text  # refused from the header, unread
        sent = await stops_growing(fault_proxy)
        assert sent <= LIMITS.max_manifest_bytes + SLACK  # not a gigabyte
        fault_proxy.clear()
        assert_admitted(await check(image, [key_policy(KEY)]))


# -- manifest bytes that do not match their digest ------------------------------------------------


async def test_referrer_manifest_that_does_not_match_its_digest_is_denied_and_recovers(
    fault_proxy: FaultProxy, pusher: Pusher
) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    pushed = await signer.sign_bundle_v3(pusher, name, digest, KEY)
    image = f"{fault_proxy.host}/{name}:v1"
    # The registry swaps in other bytes for the signature manifest it names by digest.
    other = pushed.manifest.replace(b'"size":', b'"size": ', 1)
    fault_proxy.replace_body(rf"/manifests/{pushed.manifest_digest}$", other)
    async with client_via(fault_proxy) as check:
        decision = await check(image, [key_policy(KEY)])
        actual = "sha256:" + hashlib.sha256(other).hexdigest()
        assert_denied(
            decision,
            "cannot fetch referrer",
            f"registry returned content with digest {actual}, not the requested "
            f"{pushed.manifest_digest}",
        )
        fault_proxy.clear()
        assert_admitted(await check(image, [key_policy(KEY)]))


# -- a referrers index with 10,000 entries --------------------------------------------------------


def huge_referrers_index(entries: int) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "size": 1000,
                    "digest": "sha256:" + hashlib.sha256(b"%d" % i).hexdigest(),
                    "artifactType": BUNDLE_V03_MEDIA_TYPE,
                }
                for i in range(entries)
            ],
        }
    ).encode()


@pytest.mark.parametrize("any_registry", ["distribution", "referrers-api"], indirect=True)
async def test_referrers_index_with_10000_entries_is_refused_without_fetching_them(
    any_registry: RegistryServer,
    any_pusher: Pusher,
    make_fault_proxy: Callable[..., FaultProxy],
) -> None:
    proxy = make_fault_proxy(any_registry)
    name = repo()
    digest = await any_pusher.push_random_image(name, "v1")
    await signer.sign_bundle_v3(any_pusher, name, digest, KEY)
    image = f"{proxy.host}/{name}:v1"
    # Where the referrers are listed: the OCI 1.1 API, or (distribution) the fallback tag. The
    # registry answers for real; the proxy swaps in 10,000 entries (distribution refuses to store
    # an index whose children it does not hold, and 10,000 real referrers take minutes to push).
    api = any_registry.implementation != "distribution"
    listing = r"/referrers/" if api else rf"/manifests/{fallback_tag(digest)}$"
    body = huge_referrers_index(10_000)
    assert len(body) < LIMITS.max_manifest_bytes  # the entry cap, not the byte cap, refuses it
    proxy.replace_body(listing, body)
    async with client_via(proxy) as check:
        decision = await check(image, [key_policy(KEY)])
        assert_denied(
            decision,
            "could not read all signatures",
            f"10000 entries (limit {LIMITS.max_referrers})",
        )
        assert proxy.count(listing) == 1
        assert proxy.count(r"/manifests/sha256:") == 0  # not one of the 10,000 was fetched
        proxy.clear()
        assert_admitted(await check(image, [key_policy(KEY)]))


# -- a .sig manifest with 1,000 layers -------------------------------------------------------------


async def test_sig_manifest_with_1000_layers_is_refused_without_fetching_them(
    fault_proxy: FaultProxy, pusher: Pusher
) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    signed = await signer.sign_legacy(pusher, name, digest, KEY)
    junk = Layer(signed.layer.blob, annotations={SIGNATURE_ANNOTATION: "AAAA"})
    await signer.push_signature_manifest(pusher, name, signature_tag(digest), [junk] * 1000)
    image = f"{fault_proxy.host}/{name}:v1"
    async with client_via(fault_proxy) as check:
        decision = await check(image, [key_policy(KEY)])
        limit = LIMITS.max_layers_per_manifest
        assert_denied(decision, "sig manifest refused", f"1000 layers (limit {limit})")
        assert fault_proxy.count(r"/blobs/") == 0  # refused before a single payload was read
        await signer.push_signature_manifest(pusher, name, signature_tag(digest), [signed.layer])
        assert_admitted(await check(image, [key_policy(KEY)]))


# -- malformed JSON, base64, PEM, DER, certificates ------------------------------------------------

SIGNER = "release@corp.example"


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    def policy(self, host: str) -> CompiledPolicy:
        document = {
            "apiVersion": "signgate.dev/v1alpha1",
            "kind": "TrustPolicy",
            "metadata": {"name": "corp"},
            "spec": {
                "images": [f"{host}/matrix/**"],
                "authorities": [
                    {
                        "name": "corp-pki",
                        "certificateAuthority": {"pem": pem(self.root), "subject": SIGNER},
                    }
                ],
            },
        }
        return compile_policy(parse_policies(json.dumps(document), "inline")[0])


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(SIGNER)]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.sign(signer_key, hashes.SHA256())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def pki() -> Pki:
    """A private CA (a certificateAuthority authority) and a codeSigning leaf it issued."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate("Corp Root", root_key, _name("Corp Root"), root_key, ca=True)
    leaf = _certificate("release", leaf_key, root.subject, root_key, ca=False)
    return Pki(root, leaf, leaf_key)


def _stranger_certificate(key: ec.EllipticCurvePrivateKey) -> str:
    """A well-formed codeSigning certificate for the right SAN, from a CA nobody trusts."""
    stranger = ec.generate_private_key(ec.SECP256R1())
    # Same issuer name as the real root (a look-alike), another key.
    return pem(_certificate("release", key, _name("Corp Root"), stranger, ca=False))


def _bundle(statement_signer: PrivateKey, material: dict[str, Any], digest: str) -> bytes:
    """A v0.3 bundle, correctly signed, with ``material`` as its verificationMaterial."""
    statement = statement_v1(digest, COSIGN_SIGN_PREDICATE_TYPE, None)
    signature = sign_bytes(statement_signer, pae(INTOTO_PAYLOAD_TYPE, statement))
    return json.dumps(
        {
            "mediaType": BUNDLE_V03_MEDIA_TYPE,
            "verificationMaterial": material,
            "dsseEnvelope": {
                "payload": base64.b64encode(statement).decode(),
                "payloadType": INTOTO_PAYLOAD_TYPE,
                "signatures": [{"sig": base64.b64encode(signature).decode()}],
            },
        }
    ).encode()


MALFORMED = [
    "json-payload",
    "json-bundle",
    "base64-signature",
    "base64-bundle",
    "pem",
    "der",
    "der-bundle",
    "certificate",
]


async def _push_malformed(case: str, pki: Pki, pusher: Pusher, name: str, digest: str) -> str:
    """Attach a signature malformed in the way ``case`` names; return the reason to expect."""
    good_cert = {CERTIFICATE_ANNOTATION: pem(pki.leaf)}
    if case == "json-payload":  # correctly signed by the right certificate, but not JSON
        await signer.sign_legacy(
            pusher, name, digest, pki.leaf_key, payload_override=b"{not json", annotations=good_cert
        )
        return "simple-signing payload is not valid JSON"
    if case == "base64-signature":
        signed = await signer.sign_legacy(pusher, name, digest, pki.leaf_key, annotations=good_cert)
        layer = Layer(
            signed.layer.blob, annotations={**good_cert, SIGNATURE_ANNOTATION: "not base64!"}
        )
        await signer.push_signature_manifest(pusher, name, signature_tag(digest), [layer])
        return "signature annotation is not base64"
    if case in ("pem", "der", "certificate"):
        text = {
            "pem": "-----BEGIN CERTIFICATE-----\n@@@ not base64 @@@\n-----END CERTIFICATE-----\n",
            "der": "-----BEGIN CERTIFICATE-----\n"
            + base64.b64encode(b"not a certificate").decode()
            + "\n-----END CERTIFICATE-----\n",
            "certificate": _stranger_certificate(pki.leaf_key),
        }[case]
        await signer.sign_legacy(
            pusher, name, digest, pki.leaf_key, annotations={CERTIFICATE_ANNOTATION: text}
        )
        return {
            "pem": "certificate annotation: PEM CERTIFICATE block contains non-base64 text",
            "der": "signature certificate: not a usable X.509 certificate",
            "certificate": "the issuer of the signing certificate, is not among the policy's CA",
        }[case]
    material = {
        "json-bundle": None,
        "base64-bundle": {"certificate": {"rawBytes": "@@@ not base64 @@@"}},
        "der-bundle": {"certificate": {"rawBytes": base64.b64encode(b"not DER").decode()}},
    }[case]
    blob = (
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": '
        if material is None
        else _bundle(pki.leaf_key, material, digest)
    )
    subject = await pusher.head_descriptor(name, digest)
    assert subject is not None
    await signer.push_referrer(
        pusher,
        name,
        subject,
        [Layer(blob, BUNDLE_V03_MEDIA_TYPE)],
        artifact_type=BUNDLE_V03_MEDIA_TYPE,
        config_artifact_type=BUNDLE_V03_MEDIA_TYPE,
    )
    return {
        "json-bundle": "invalid sigstore bundle: sigstore bundle is not valid JSON",
        "base64-bundle": "invalid sigstore bundle: verificationMaterial.certificate.rawBytes: "
        "not base64",
        "der-bundle": "invalid sigstore bundle: verificationMaterial.certificate.rawBytes: "
        "not a DER X.509 certificate",
    }[case]


@pytest.mark.parametrize("case", MALFORMED)
async def test_malformed_signature_material_is_a_reason_and_a_good_signature_still_counts(
    pusher: Pusher, check: Checker, pki: Pki, case: str
) -> None:
    name = repo()
    digest = await pusher.push_random_image(name, "v1")
    expected = await _push_malformed(case, pki, pusher, name, digest)
    image = f"{pusher.host}/{name}:v1"
    policy = pki.policy(pusher.host)
    decision = await check(image, [policy])
    assert_denied(decision, "TrustPolicy 'corp'", expected)
    # Recovery: a well-formed signature by the CA-issued certificate, next to the malformed one.
    await signer.sign_legacy(
        pusher, name, digest, pki.leaf_key, annotations={CERTIFICATE_ANNOTATION: pem(pki.leaf)}
    )
    assert_admitted(await check(image, [policy]))


# -- token endpoint failing or issuing expired tokens ---------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (TokenFault.SERVER_ERROR, "failed for"),
        (TokenFault.GARBAGE, "returned non-JSON"),
        (TokenFault.EXPIRED, "HTTP 401 with a fresh token from"),
    ],
    ids=["http-500", "garbage", "expired-token"],
)
async def test_token_endpoint_faults_deny_and_the_next_request_gets_a_good_token(
    registry_token: RegistryServer, fault: TokenFault, expected: str
) -> None:
    name = repo()
    async with Pusher.for_registry(registry_token) as pusher:
        digest = await pusher.push_random_image(name, "v1")
        await signer.sign_legacy(pusher, name, digest, KEY)
    server = registry_token.token_server
    assert server is not None
    image = f"{registry_token.host}/{name}:v1"
    async with RegistryClient(options_for(registry_token)) as client:
        check = Checker(client)
        before = server.request_count
        with server.configured(fault=fault):
            decision = await check(image, [key_policy(KEY)], timeout=8)
        assert_denied(decision, "cannot resolve the digest", expected)
        assert server.request_count - before <= LIMITS.max_attempts  # bounded retries
        assert_admitted(await check(image, [key_policy(KEY)], timeout=8))


# -- TLS certificate rotation while serving --------------------------------------------------------


@dataclass
class Webhook:
    url: str

    async def admit(self, session: aiohttp.ClientSession, image: str) -> dict[str, Any]:
        body = reviews.review(reviews.workload("Pod", reviews.pod_spec([image])))
        async with session.post(self.url + "/validate", json=body) as resp:
            assert resp.status == 200
            response: dict[str, Any] = json.loads(await resp.read())["response"]
            return response


def write_pair(cert: trustme.LeafCert, cert_file: Path, key_file: Path | None) -> None:
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    if key_file is not None:
        cert.private_key_pem.write_to_path(str(key_file))


def trusting(*cas: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for ca in cas:
        ca.configure_trust(context)
    return context


async def handshake(context: ssl.SSLContext, port: int) -> bool:
    """Whether a brand-new TLS connection to the webhook succeeds."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=context), 5
        )
    except (ssl.SSLError, OSError):
        return False
    writer.close()
    with contextlib.suppress(ssl.SSLError, OSError):
        await writer.wait_closed()
    return True


async def test_half_written_certificate_rotation_never_stops_the_webhook(
    pusher: Pusher, registry: RegistryServer, tmp_path: Path
) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    write_pair(old_ca.issue_cert("127.0.0.1"), cert_file, key_file)
    settings = ServerSettings(cert_file, key_file, "127.0.0.1", 0, 8.0, cert_check_interval=0.05)
    good_name, _ = await signed_legacy(pusher)
    unsigned = repo()
    await pusher.push_random_image(unsigned, "v1")
    policy = key_policy(KEY)
    async with RegistryClient(RegistryOptions(insecure_hosts=frozenset({registry.host}))) as rc:
        engine = Verifier(rc)
        app = make_app(
            engine=engine,
            policies=StaticPolicySource([policy]),
            settings=settings,
            metrics=Metrics(engine),
        )
        async with (
            running_server(app, settings) as (_, reloader, port),
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=trusting(old_ca, new_ca), limit=1)
            ) as session,
        ):
            hook = Webhook(f"https://127.0.0.1:{port}")

            async def still_deciding() -> None:
                assert (await hook.admit(session, f"{pusher.host}/{good_name}:v1"))["allowed"]
                denied = await hook.admit(session, f"{pusher.host}/{unsigned}:v1")
                assert denied["allowed"] is False
                assert "no signature found" in denied["status"]["message"]

            await still_deciding()
            loads = reloader.reloads
            # Rotation, half-written: the new certificate lands, its key not yet (a copy in
            # progress, two kubectl cp's, a Secret updated key by key...).
            new_leaf = new_ca.issue_cert("127.0.0.1")
            write_pair(new_leaf, cert_file, None)
            await asyncio.sleep(0.5)  # ten checks see a certificate that does not match its key
            assert reloader.reloads == loads
            assert await handshake(trusting(old_ca), port)  # new connections: the old pair
            await still_deciding()
            # The key lands: new handshakes present the new certificate; open connections go on.
            write_pair(new_leaf, cert_file, key_file)
            for _ in range(100):
                if reloader.reloads > loads:
                    break
                await asyncio.sleep(0.05)
            assert reloader.reloads == loads + 1
            assert await handshake(trusting(new_ca), port)
            assert not await handshake(trusting(old_ca), port)
            await still_deciding()


# -- Kubernetes API unreachable while policies are indexed; a policy whose key cannot be parsed ----


@dataclass
class Operator:
    url: str
    session: aiohttp.ClientSession
    source: ClusterPolicySource

    async def admit(self, image: str) -> dict[str, Any]:
        body = reviews.review(reviews.workload("Pod", reviews.pod_spec([image])))
        async with self.session.post(self.url + "/validate", json=body) as resp:
            assert resp.status == 200
            response: dict[str, Any] = json.loads(await resp.read())["response"]
            return response

    async def ready(self) -> bool:
        async with self.session.get(self.url + "/readyz") as resp:
            return resp.status == 200


StartOperator = Callable[[str], Awaitable[Operator]]


@pytest.fixture
async def kube_relay(kube: FakeCluster) -> AsyncIterator[TcpRelay]:
    """The fake API behind a relay the test can stop and start (stopped after the operator)."""
    relay = TcpRelay(kube.url.removeprefix("http://"))
    await relay.start()
    yield relay
    await relay.stop()


@pytest.fixture
async def start_operator(
    registry: RegistryServer, tls_ca: trustme.CA, tmp_path: Path
) -> AsyncIterator[StartOperator]:
    """Start signgate's operator (the real ``run_operator``) against the API at ``api_url``."""
    cert = tls_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    server = ServerSettings(tmp_path / "tls.crt", tmp_path / "tls.key", "127.0.0.1", 0, 8.0)
    async with contextlib.AsyncExitStack() as stack:

        async def start(api_url: str) -> Operator:
            kopf_registry = kopf.OperatorRegistry()

            @kopf.on.login(registry=kopf_registry, id="matrix-login")
            def _login(**_: Any) -> kopf.ConnectionInfo:
                return kopf.ConnectionInfo(server=api_url, default_namespace="default")

            serving = threading.Event()
            found: dict[str, Any] = {}

            def on_serving(port: int, source: ClusterPolicySource) -> None:
                found.update(port=port, source=source)
                serving.set()

            async def main(stop: asyncio.Event) -> None:
                options = RegistryOptions(insecure_hosts=frozenset({registry.host}))
                no_cache = CacheSettings(tag_ttl=0, verified_ttl=0, unverified_ttl=0)
                async with RegistryClient(options) as client:
                    await run_operator(
                        engine=Verifier(client, settings=VerifierSettings(cache=no_cache)),
                        server=server,
                        stop=stop,
                        registry=kopf_registry,
                        api=KubeApi(kopf.ConnectionInfo(server=api_url)),
                        secret_namespace="default",
                        on_serving=on_serving,
                    )

            await stack.enter_async_context(operator_thread(main))
            assert await asyncio.to_thread(serving.wait, 15), "the webhook did not start"
            session = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting(tls_ca)))
            )
            running = Operator(f"https://127.0.0.1:{found['port']}", session, found["source"])
            await eventually(running.ready, timeout=15, message="policies never became ready")
            return running

        yield start


async def eventually(
    condition: Callable[[], Awaitable[object]], *, timeout: float, message: str
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise TimeoutError(message)
        await asyncio.sleep(0.05)


def key_spec(
    host: str, key: PrivateKey | None, *, pem_text: str | None = None, images: str = "matrix/**"
) -> dict[str, Any]:
    if pem_text is None:
        assert key is not None
        pem_text = public_key_pem(key).decode()
    return {
        "images": [f"{host}/{images}"],
        "authorities": [{"name": "release-key", "key": {"pem": pem_text}}],
    }


async def test_kubernetes_api_unreachable_while_indexed_keeps_deciding_from_the_index(
    kube: FakeCluster, kube_relay: TcpRelay, start_operator: StartOperator, pusher: Pusher
) -> None:
    relay = kube_relay
    signed_name, _ = await signed_legacy(pusher)
    unsigned = repo()
    await pusher.push_random_image(unsigned, "v1")
    retiring = f"retiring/{secrets.token_hex(4)}"
    await signer.sign_legacy(pusher, retiring, await pusher.push_random_image(retiring, "v1"), KEY)
    signed, other = f"{pusher.host}/{signed_name}:v1", f"{pusher.host}/{unsigned}:v1"
    old = f"{pusher.host}/{retiring}:v1"
    await kube.create(trust_policy("release", key_spec(pusher.host, KEY)))
    await kube.create(trust_policy("retiring", key_spec(pusher.host, KEY, images="retiring/**")))
    op = await start_operator(f"http://{relay.host}")

    async def policies() -> set[str]:
        return {entry.name for entry in op.source.entries()}

    async def indexed(*names: str) -> bool:
        return await policies() == set(names)

    await eventually(lambda: indexed("release", "retiring"), timeout=10, message="indexing")
    assert (await op.admit(old))["allowed"] is True

    # The API goes away: its watches are cut, every new connection is refused.
    await relay.stop()
    loop = asyncio.get_running_loop()
    for _ in range(3):
        started = loop.time()
        assert (await op.admit(signed))["allowed"] is True
        denied = await op.admit(other)
        assert loop.time() - started < 5  # nothing on the admission path waits for the API
        assert denied["allowed"] is False
        assert "TrustPolicy 'release'" in denied["status"]["message"]
        assert "no signature found" in denied["status"]["message"]
        assert await op.ready()  # the index is still the truth: stay in the Service
    # Changes made meanwhile cannot be seen: the last known policies stay in force.
    await kube.delete(TRUSTPOLICIES, "retiring")
    await kube.create(trust_policy("stricter", key_spec(pusher.host, generate_key())))
    assert await indexed("release", "retiring")
    assert (await op.admit(old))["allowed"] is True

    # The API is back: Kopf resumes its watches and sees both changes; nobody restarted.
    await relay.start()
    await eventually(lambda: indexed("release", "stricter"), timeout=30, message="resync")
    now = await op.admit(signed)  # now also governed by a policy it does not satisfy
    assert now["allowed"] is False
    assert "TrustPolicy 'stricter'" in now["status"]["message"]
    gone = await op.admit(old)
    assert gone["allowed"] is False
    assert "no TrustPolicy governs" in gone["status"]["message"]


async def test_policy_whose_key_cannot_be_parsed_denies_until_it_is_fixed(
    kube: FakeCluster, start_operator: StartOperator, pusher: Pusher
) -> None:
    signed_name, _ = await signed_legacy(pusher)
    signed = f"{pusher.host}/{signed_name}:v1"
    bad_pem = "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
    await kube.create(trust_policy("release", key_spec(pusher.host, None, pem_text=bad_pem)))
    op = await start_operator(kube.url)

    async def broken_indexed() -> bool:
        return any(entry.error for entry in op.source.entries())

    await eventually(broken_indexed, timeout=10, message="broken policy never indexed")
    denied = await op.admit(signed)
    assert denied["allowed"] is False
    message = denied["status"]["message"]
    assert "TrustPolicy 'release' is invalid, so nothing it governs is admitted" in message
    assert "release-key" in message
    # Fixed in place: the very next admission after the re-index is decided by the good key.
    await kube.patch(TRUSTPOLICIES, "release", {"spec": key_spec(pusher.host, KEY)})

    async def admitted() -> bool:
        return bool((await op.admit(signed))["allowed"])

    await eventually(admitted, timeout=10, message="the fixed policy was never used")
