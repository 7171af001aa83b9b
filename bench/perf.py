"""Benchmark of signgate: warm and cold admission, fan-out, negative path, cosign, ceiling, memory.

One command (``scripts/bench``) does everything on this machine and prints a table; it measures,
it asserts nothing about time (it exits 1 only when an answer was wrong or a process failed):

1. starts two real CNCF distribution registries on loopback (``tests/support/registry.py``): an
   anonymous plain-HTTP one and a Bearer-token HTTPS one, each also behind
   ``tests/support/fault_proxy.py``, which counts every request the registry receives; pushes
   signed images (cosign's legacy ``.sig`` format and v3 bundles, ``tests/support/signer.py``) and
   unsigned ones, and writes one TrustPolicy trusting the signing key;
2. starts ``signgate serve --policy`` pinned to CPU 0 (``taskset -c 0``; TLS from a throw-away CA;
   ``bench/_harness.py``, shared with ``bench/load.py``) and drives it from a separate client
   process pinned to CPU 1 (``bench/_driver.py``) over HTTPS keep-alive with real AdmissionReviews;
3. repeats ``--repeat`` times: warm latency and throughput (Pods of 1 and 10 containers), the same
   throughput against a bare aiohttp endpoint with the same TLS setup (``bench/_ceiling.py``), cold
   admissions of never-seen digests (latency, registry requests per image, and the sum of those
   requests' round trips replayed directly), 500 concurrent admissions of one Deployment's Pods,
   an unsigned image admitted 1 + 100 times, and ``cosign verify --key`` (real cosign v3.1.2)
   against ``signgate verify`` and ``signgate serve`` on the same images;
4. once: resident memory of a fresh ``signgate serve`` holding 10,000 cached verdicts.

Latencies are pooled over all repetitions (p50, p99); per-run figures (throughput, request counts,
ratios) are shown as the median run and the worst run. ``--json FILE`` writes every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import json
import math
import os
import platform
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _bulk import push_signed_images  # noqa: E402
from _harness import (  # noqa: E402
    Server,
    describe_machine,
    die_with_parent,
    percentile,
    progress,
    push_image,
    scrape_metrics,
    serve_command,
    signgate_command,
    start_registry_behind_proxy,
    stop_process,
    taskset,
    workdir,
    write_policy,
    write_serve_tls,
)

from support import reviews  # noqa: E402
from support.fault_proxy import FaultProxy  # noqa: E402
from support.formats import PrivateKey, generate_key, public_key_pem  # noqa: E402
from support.push import MANIFEST_ACCEPT, OCI_INDEX, Pusher  # noqa: E402
from support.registry import RegistryKind, RegistryServer  # noqa: E402
from support.tls import new_ca  # noqa: E402

TITLE = "signgate benchmark"
COSIGN_VERSION = "v3.1.2"
MIN_EXTRAPOLATION = 2000
"""Fewer distinct digests than this (``--quick``) give a memory figure too noisy to judge."""
ECDSA_P256_VERIFY_MS = 0.13
"""One ECDSA P-256 signature check, as the issue's cold-latency target counts it."""
_CEILING_PORT = re.compile(r"listening on https://127\.0\.0\.1:(\d+)")
FORMATS = ("legacy", "bundle")
KINDS = ("anonymous", "token")


# -- processes -------------------------------------------------------------------------------------


def _can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def pin_process(pid: int, cpu: int) -> None:
    """Put every thread of ``pid`` on ``cpu`` (affinity is per thread on Linux)."""
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), {cpu})


class Driver:
    """The client process (``bench/_driver.py``), one JSON command per line."""

    def __init__(self, ca_file: Path, cpu: int | None) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - this very script
            [*taskset(cpu), sys.executable, str(Path(__file__).resolve()), "_drive", str(ca_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=die_with_parent(),  # prctl only, resolved before fork
        )

    def call(self, op: str, port: int, requests: Sequence[Request], **extra: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        command = {
            "op": op,
            "host": "127.0.0.1",
            "port": port,
            "requests": [[r.path, r.body, r.expected] for r in requests],
            **extra,
        }
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the client process died")
        answer: dict[str, Any] = json.loads(line)
        if "failed" in answer:
            raise RuntimeError(f"the client process failed: {answer['failed']}")
        return answer

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.close()
        stop_process(self.proc)


# -- requests --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    body: str
    expected: bool | None


_uids = iter(range(1, 1 << 62))


def pod_review(images: Sequence[str], name: str, expected: bool | None) -> Request:
    """An AdmissionReview of a Pod CREATE with one container per image, to ``/validate``."""
    obj = reviews.workload("Pod", reviews.pod_spec(images), name=name, namespace="bench")
    uid = f"00000000-0000-4000-8000-{next(_uids):012x}"
    body = json.dumps(reviews.review(obj, uid=uid), separators=(",", ":"))
    return Request("/validate", body, expected)


# -- measurements ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    """Every sample: latencies pooled over runs (ms), and one value per run for the rest."""

    pooled: dict[str, list[float]] = field(default_factory=dict)
    runs: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, key: str, *values: float) -> None:
        self.pooled.setdefault(key, []).extend(values)

    def run(self, key: str, value: float) -> None:
        self.runs.setdefault(key, []).append(value)

    def check(self, what: str, answer: dict[str, Any]) -> None:
        if answer.get("errors"):
            self.errors.append(
                f"{what}: {answer['errors']} wrong answers: {answer['error_samples']}"
            )


def _ms(seconds: Sequence[float]) -> list[float]:
    """Seconds as milliseconds, to the microsecond (the JSON file holds every sample)."""
    return [round(s * 1000, 3) for s in seconds]


@dataclass(frozen=True, slots=True)
class Histogram:
    """``signgate_admission_duration_seconds{webhook="validate"}`` at one moment."""

    buckets: tuple[tuple[float, float], ...]
    total: float
    count: float

    @classmethod
    def of(cls, metrics: dict[str, float]) -> Histogram:
        buckets: list[tuple[float, float]] = []
        for name, value in metrics.items():
            match = re.fullmatch(
                r'signgate_admission_duration_seconds_bucket\{le="([^"]+)",webhook="validate"\}',
                name,
            )
            if match:
                buckets.append((float(match.group(1)), value))
        base = 'signgate_admission_duration_seconds_{}{{webhook="validate"}}'
        return cls(
            tuple(sorted(buckets)),
            metrics.get(base.format("sum"), 0.0),
            metrics.get(base.format("count"), 0.0),
        )

    def since(self, before: Histogram) -> Histogram:
        old = dict(before.buckets)
        return Histogram(
            tuple((le, value - old.get(le, 0.0)) for le, value in self.buckets),
            self.total - before.total,
            self.count - before.count,
        )

    def mean_ms(self) -> float:
        return self.total / self.count * 1000 if self.count else math.nan

    def p99_bound_ms(self) -> float:
        """The upper bound (ms) of the first bucket holding 99 % of the answers."""
        for le, value in self.buckets:
            if self.count and value >= 0.99 * self.count:
                return le * 1000
        return math.nan


def counter(metrics: dict[str, float], name: str) -> float:
    return metrics.get(name, 0.0)


# -- the world -------------------------------------------------------------------------------------


@dataclass(slots=True)
class World:
    work: Path
    key: PrivateKey
    """The signing key (its public half is ``key_file`` and the policy's)."""
    ca_file: Path
    tls_cert: Path
    tls_key: Path
    policy: Path
    key_file: Path
    registry_config: Path
    anonymous: RegistryServer
    token: RegistryServer
    proxies: dict[str, FaultProxy]
    """``anonymous`` and ``token``: the proxy in front of that registry."""
    warm: list[str] = field(default_factory=list)
    """10 signed images (anonymous registry, by tag), legacy and bundle alternately."""
    cold: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    """(kind, format, route) -> fresh images; the first of each is the warm-up."""
    fanout: list[str] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)
    memory: list[str] = field(default_factory=list)

    def host(self, kind: str, route: str) -> str:
        registry = self.anonymous if kind == "anonymous" else self.token
        return registry.host if route == "direct" else self.proxies[kind].host

    def registry(self, kind: str) -> RegistryServer:
        return self.anonymous if kind == "anonymous" else self.token


async def _push_world(world: World, key: PrivateKey, args: argparse.Namespace) -> None:
    gate = asyncio.Semaphore(16)
    # One image at a time per repository: concurrent uploads of the same blob (a bundle referrer's
    # empty config) into one repository race in distribution.
    locks: dict[tuple[int, str], asyncio.Lock] = {}

    async def one(pusher: Pusher, repo: str, tag: str, how: str | None) -> str:
        async with locks.setdefault((id(pusher), repo), asyncio.Lock()), gate:
            await push_image(pusher, key, repo, tag, how)
        return f"{repo}:{tag}"

    async with (
        Pusher.for_registry(world.anonymous) as anonymous,
        Pusher.for_registry(world.token) as token,
    ):
        pushers = {"anonymous": anonymous, "token": token}
        jobs: dict[str, Any] = {}
        for i in range(10):
            jobs[f"warm/{i}"] = one(anonymous, f"bench/warm-{i}", "v1", FORMATS[i % 2])
        tags = ["warmup"] + [f"r{r}-{i}" for r in range(args.repeat) for i in range(args.cold)]
        for kind in KINDS:
            for fmt in FORMATS:
                for route in ("direct", "proxy"):
                    for tag in tags:
                        repo = f"bench/cold-{fmt}-{route}"
                        jobs[f"cold/{kind}/{fmt}/{route}/{tag}"] = one(
                            pushers[kind], repo, tag, fmt
                        )
        for r in range(args.repeat):
            jobs[f"fanout/{r}"] = one(anonymous, "bench/fanout", f"r{r}", "legacy")
            jobs[f"unsigned/{r}"] = one(anonymous, "bench/unsigned", f"r{r}", None)
        names = list(jobs)
        refs = dict(zip(names, await asyncio.gather(*jobs.values()), strict=True))
        anon_host = world.anonymous.host
        world.warm = [f"{anon_host}/{refs[f'warm/{i}']}" for i in range(10)]
        for kind in KINDS:
            for fmt in FORMATS:
                for route in ("direct", "proxy"):
                    host = world.host(kind, route)
                    world.cold[(kind, fmt, route)] = [
                        f"{host}/{refs[f'cold/{kind}/{fmt}/{route}/{tag}']}" for tag in tags
                    ]
        proxy_host = world.proxies["anonymous"].host
        world.fanout = [f"{proxy_host}/{refs[f'fanout/{r}']}" for r in range(args.repeat)]
        world.unsigned = [f"{proxy_host}/{refs[f'unsigned/{r}']}" for r in range(args.repeat)]
        count = args.memory_images
        if count:
            per_repo = 500 if count >= 2000 else max(1, count // 4)
            repos = [f"bench/mem-{i:02d}" for i in range(math.ceil(count / per_repo))]
            progress(f"pushing {len(repos) * per_repo:,} signed images for the memory measurement")
            pushed = await push_signed_images(
                anonymous,
                key,
                repositories=repos,
                per_repository=per_repo,
                progress=lambda n: progress(f"  {n:,} pushed"),
            )
            world.memory = [f"{anon_host}/{repo}@{digest}" for repo, digest in pushed][:count]


def build_world(work: Path, args: argparse.Namespace, stack: contextlib.ExitStack) -> World:
    ca = new_ca()
    progress("starting two CNCF distribution registries on loopback (anonymous, Bearer token)")
    anonymous, anonymous_proxy = start_registry_behind_proxy(
        stack, RegistryKind.ANONYMOUS, work / "registry-anonymous"
    )
    token, token_proxy = start_registry_behind_proxy(
        stack, RegistryKind.TOKEN, work / "registry-token", tls_ca=ca
    )
    proxies = {"anonymous": anonymous_proxy, "token": token_proxy}
    key = generate_key()
    key_file = work / "cosign.pub"
    key_file.write_bytes(public_key_pem(key))
    tls_cert, tls_key, ca_file = write_serve_tls(ca, work)
    assert token.username is not None
    assert token.password is not None
    auth = f"{token.username}:{token.password}".encode()
    entry = {"auth": base64.b64encode(auth).decode()}
    registry_config = work / "docker-config.json"
    registry_config.write_text(
        json.dumps({"auths": {token.host: entry, proxies["token"].host: entry}})
    )
    hosts = [anonymous.host, token.host, proxies["anonymous"].host, proxies["token"].host]
    world = World(
        work=work,
        key=key,
        ca_file=ca_file,
        tls_cert=tls_cert,
        tls_key=tls_key,
        policy=write_policy(work / "policy.yaml", key, hosts, "bench"),
        key_file=key_file,
        registry_config=registry_config,
        anonymous=anonymous,
        token=token,
        proxies=proxies,
    )
    progress("pushing signed (legacy .sig and v3 bundle) and unsigned images")
    asyncio.run(_push_world(world, key, args))
    return world


def start_signgate(world: World, name: str, args: argparse.Namespace, cpu: int | None) -> Server:
    command = serve_command(
        world.policy,
        world.tls_cert,
        world.tls_key,
        [
            "--insecure-registry",
            world.anonymous.host,
            "--insecure-registry",
            world.proxies["anonymous"].host,
            "--registry-ca",
            f"{world.token.host}={world.ca_file}",
            "--registry-ca",
            f"{world.proxies['token'].host}={world.ca_file}",
            "--registry-config",
            str(world.registry_config),
        ],
        cpu=cpu,
        use_uvloop=args.uvloop,
    )
    progress(f"starting signgate serve ({name}){' on CPU ' + str(cpu) if cpu is not None else ''}")
    return Server(name, command, world.work / f"serve-{name}.log")


def start_ceiling(world: World, args: argparse.Namespace, cpu: int | None) -> Server:
    command = [
        *taskset(cpu),
        sys.executable,
        str(Path(__file__).resolve()),
        "_ceiling",
        str(world.tls_cert),
        str(world.tls_key),
        *(["--uvloop"] if args.uvloop else []),
    ]
    progress("starting the bare aiohttp endpoint (ceiling)")
    return Server("ceiling", command, world.work / "ceiling.log", _CEILING_PORT)


# -- the sections ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Bench:
    world: World
    args: argparse.Namespace
    server: Server
    ceiling: Server
    driver: Driver
    results: Results
    names: Iterator[int] = field(default_factory=lambda: iter(range(1 << 62)))

    def metrics(self, server: Server | None = None) -> dict[str, float]:
        return scrape_metrics((server or self.server).port, self.world.ca_file)

    def name(self, prefix: str) -> str:
        return f"{prefix}-{next(self.names):06d}"

    # 1. and 6. warm path and ceiling

    def warm(self) -> None:
        args, results = self.args, self.results
        for containers in (1, 10):
            images = self.world.warm[:containers]
            pods = [pod_review(images, self.name("warm"), True) for _ in range(20)]
            before = Histogram.of(self.metrics())
            answer = self.driver.call("seq", self.server.port, pods, repeat=args.sequential // 20)
            after = Histogram.of(self.metrics())
            results.check(f"warm {containers}", answer)
            key = f"warm{containers}"
            results.add(f"{key}.client_ms", *_ms(answer["latencies"]))
            results.run(f"{key}.client_p50_ms", percentile(_ms(answer["latencies"]), 50))
            delta = after.since(before)
            results.run(f"{key}.server_mean_ms", delta.mean_ms())
            results.run(f"{key}.server_p99_bound_ms", delta.p99_bound_ms())
            for target, server in (("warm", self.server), ("ceiling", self.ceiling)):
                answer = self.driver.call(
                    "load",
                    server.port,
                    pods,
                    concurrency=args.concurrency,
                    duration=args.duration,
                    warmup=min(1.0, args.duration / 4),
                    server_pid=server.pid,
                )
                results.check(f"{target} load {containers}", answer)
                elapsed = answer["elapsed"]
                key = f"{target}{containers}"
                results.run(f"{key}.rps", answer["answers"] / elapsed)
                server_cpu = answer["server_cpu"]
                results.run(f"{key}.server_cpu", server_cpu / elapsed)
                results.run(f"{key}.per_cpu_second", answer["answers"] / max(server_cpu, 1e-9))
                results.run(f"{key}.client_cpu", answer["cpu"] / elapsed)
                others = answer["machine_cpu"] - server_cpu - answer["cpu"]
                results.run(f"{key}.others_cpu", max(0.0, others) / elapsed)
                results.add(f"{key}.load_ms", *_ms(answer["latencies"]))
            warm_rps = results.runs[f"warm{containers}.rps"][-1]
            ceiling_rps = results.runs[f"ceiling{containers}.rps"][-1]
            results.run(f"warm{containers}.fraction", warm_rps / ceiling_rps)
            results.run(
                f"warm{containers}.fraction_cpu",
                results.runs[f"warm{containers}.per_cpu_second"][-1]
                / results.runs[f"ceiling{containers}.per_cpu_second"][-1],
            )

    # 2. cold path

    def _replay(self, kind: str, requests: Sequence[tuple[str, str]]) -> float:
        """Send ``requests`` straight to the registry, one keep-alive connection: total ms."""
        registry = self.world.registry(kind)
        conn: http.client.HTTPConnection
        headers: dict[str, str] = {}
        if kind == "token":
            context = ssl.create_default_context(cafile=str(self.world.ca_file))
            conn = http.client.HTTPSConnection("127.0.0.1", registry.port, context=context)
            repos = {path.split("/v2/", 1)[1].rsplit("/", 2)[0] for _, path in requests}
            headers["Authorization"] = f"Bearer {self._token(registry, sorted(repos)[0])}"
        else:
            conn = http.client.HTTPConnection("127.0.0.1", registry.port)
        try:
            conn.request("GET", "/v2/", headers=headers)
            conn.getresponse().read()
            total = 0.0
            for method, path in requests:
                send = dict(headers)
                if "/manifests/" in path:
                    send["Accept"] = MANIFEST_ACCEPT
                elif "/referrers/" in path:
                    send["Accept"] = OCI_INDEX
                begun = time.perf_counter()
                conn.request(method, path, headers=send)
                conn.getresponse().read()
                total += time.perf_counter() - begun
        finally:
            conn.close()
        return total * 1000

    def _token(self, registry: RegistryServer, repo: str) -> str:
        server = registry.token_server
        assert server is not None
        assert registry.username is not None
        query = urllib.parse.urlencode(
            {"service": server.service, "scope": f"repository:{repo}:pull"}
        )
        request = urllib.request.Request(f"{server.realm}?{query}")  # noqa: S310 - our own https
        credentials = f"{registry.username}:{registry.password}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(credentials).decode())
        context = ssl.create_default_context(cafile=str(self.world.ca_file))
        with urllib.request.urlopen(request, context=context, timeout=10) as resp:  # noqa: S310
            doc = json.loads(resp.read())
        return str(doc.get("token") or doc["access_token"])

    def warm_up_cold_routes(self) -> None:
        """Admit one image per route first: the HTTPS probe of a plain-HTTP registry, the auth
        challenge and the repository's token are then cached, as they are in a running server."""
        pods = [
            pod_review([images[0]], self.name("warmup"), True)
            for images in self.world.cold.values()
        ]
        answer = self.driver.call("seq", self.server.port, pods)
        self.results.check("cold warm-up", answer)

    def cold(self, rep: int) -> None:
        args, results, world = self.args, self.results, self.world
        for kind in KINDS:
            for fmt in FORMATS:
                key = f"cold.{kind}.{fmt}"
                start = 1 + rep * args.cold
                direct = world.cold[(kind, fmt, "direct")][start : start + args.cold]
                pods = [pod_review([image], self.name("cold"), True) for image in direct]
                before = Histogram.of(self.metrics())
                answer = self.driver.call("seq", self.server.port, pods)
                after = Histogram.of(self.metrics())
                results.check(key, answer)
                results.add(f"{key}.client_ms", *_ms(answer["latencies"]))
                results.run(f"{key}.client_p50_ms", percentile(_ms(answer["latencies"]), 50))
                results.run(f"{key}.server_mean_ms", after.since(before).mean_ms())
                proxy = world.proxies[kind]
                token_server = world.registry(kind).token_server
                for image in world.cold[(kind, fmt, "proxy")][start : start + args.cold]:
                    pod = pod_review([image], self.name("cold"), True)
                    metrics_before = self.metrics()
                    proxy.reset_counts()
                    tokens_before = token_server.request_count if token_server else 0
                    answer = self.driver.call("seq", self.server.port, [pod])
                    seen = proxy.requests
                    tokens = (token_server.request_count if token_server else 0) - tokens_before
                    metrics_after = self.metrics()
                    results.check(f"{key} (proxy)", answer)
                    name = "signgate_registry_requests_total"
                    results.add(f"{key}.registry_requests", float(len(seen)))
                    results.add(f"{key}.token_requests", float(tokens))
                    results.add(
                        f"{key}.signgate_requests",
                        counter(metrics_after, name) - counter(metrics_before, name),
                    )
                    results.add(f"{key}.rtt_sum_ms", self._replay(kind, seen))
                    results.notes.setdefault(f"{key}.requests", [f"{m} {p}" for m, p in seen])

    # 3. fan-out

    def fanout(self, rep: int) -> None:
        args, results = self.args, self.results
        image = self.world.fanout[rep]
        pods = [pod_review([image], f"web-7d4b9c-{i:05d}", True) for i in range(args.fanout)]
        proxy = self.world.proxies["anonymous"]
        before = self.metrics()
        proxy.reset_counts()
        answer = self.driver.call("burst", self.server.port, pods, concurrency=len(pods))
        requests = proxy.count()
        after = self.metrics()
        results.check("fan-out", answer)
        results.run(
            "fanout.verifications",
            counter(after, "signgate_verifications_total")
            - counter(before, "signgate_verifications_total"),
        )
        results.run("fanout.registry_requests", float(requests))
        name = "signgate_registry_requests_total"
        results.run("fanout.signgate_requests", counter(after, name) - counter(before, name))
        results.run("fanout.allowed", float(answer["allowed"]))
        results.add("fanout.client_ms", *_ms(answer["latencies"]))

    # 4. negative path

    def negative(self, rep: int) -> None:
        args, results = self.args, self.results
        image = self.world.unsigned[rep]
        proxy = self.world.proxies["anonymous"]
        proxy.reset_counts()
        first = self.driver.call(
            "seq", self.server.port, [pod_review([image], self.name("unsigned"), False)]
        )
        first_requests = proxy.count()
        proxy.reset_counts()
        pods = [pod_review([image], self.name("unsigned"), False) for _ in range(args.negative)]
        rest = self.driver.call("seq", self.server.port, pods)
        results.check("negative (first)", first)
        results.check("negative (next)", rest)
        results.notes["negative.count"] = args.negative
        results.run("negative.first_requests", float(first_requests))
        results.run("negative.next_requests", float(proxy.count()))
        results.add("negative.first_ms", *_ms(first["latencies"]))
        results.add("negative.next_ms", *_ms(rest["latencies"]))

    # 5. cosign side by side

    def cosign(self, cosign: Path | None) -> None:
        results, world = self.results, self.world
        cpu = 0 if self.args.pin else None
        for fmt, image in zip(FORMATS, world.warm[:2], strict=True):
            command = [
                *taskset(cpu),
                *signgate_command(["verify", "--key", str(world.key_file), image]),
                "--insecure-registry",
                world.anonymous.host,
            ]
            seconds = self.timed_process(command, f"signgate verify {fmt}")
            results.run(f"cli.signgate.{fmt}_ms", seconds * 1000)
            if cosign is None:
                continue
            command = [
                *taskset(cpu),
                str(cosign),
                "verify",
                "--key",
                str(world.key_file),
                "--insecure-ignore-tlog=true",
                "--allow-insecure-registry",
                "--allow-http-registry",
                image,
            ]
            seconds = self.timed_process(command, f"cosign verify {fmt}", cosign_env(world.work))
            results.run(f"cli.cosign.{fmt}_ms", seconds * 1000)
            serve_cold = results.runs[f"cold.anonymous.{fmt}.client_p50_ms"][-1]
            serve_warm = results.runs["warm1.client_p50_ms"][-1]
            cosign_ms = seconds * 1000
            results.run(f"ratio.cold_serve.{fmt}", serve_cold / cosign_ms)
            results.run(
                f"ratio.cold_cli.{fmt}", results.runs[f"cli.signgate.{fmt}_ms"][-1] / cosign_ms
            )
            results.run(f"ratio.warm.{fmt}", serve_warm / cosign_ms)

    def timed_process(
        self, command: list[str], what: str, env: dict[str, str] | None = None
    ) -> float:
        begun = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - our own CLI, or the real cosign
            command, capture_output=True, text=True, timeout=120, check=False, env=env
        )
        seconds = time.perf_counter() - begun
        if done.returncode != 0:
            self.results.errors.append(f"{what} exited {done.returncode}: {done.stderr[-500:]}")
        return seconds


def cosign_env(work: Path) -> dict[str, str]:
    home = work / "cosign-home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), TUF_ROOT=str(home / "tuf"), COSIGN_PASSWORD="")
    env.pop("DOCKER_CONFIG", None)
    return env


def cosign_binary() -> Path | None:
    tools = Path(os.environ.get("SIGNGATE_TOOLS_CACHE", Path.home() / ".cache/signgate-test-tools"))
    binary = tools / f"cosign-{COSIGN_VERSION}" / "cosign"
    return binary if binary.is_file() else None


# 7. memory


def measure_memory(
    world: World, args: argparse.Namespace, driver: Driver, results: Results
) -> None:
    cpu = 0 if args.pin else None
    server = start_signgate(world, "memory", args, cpu)
    try:
        results.notes["memory.rss_start_mib"] = server.rss_mib()
        answer = driver.call("seq", server.port, [pod_review(world.warm[:1], "memory-first", True)])
        results.check("memory (first)", answer)
        first = server.rss_mib()
        results.notes["memory.rss_after_first_mib"] = first
        images = world.memory
        pods = [
            pod_review(images[i : i + 10], f"memory-{i:06d}", True)
            for i in range(0, len(images), 10)
        ]
        curve: list[tuple[int, float]] = [(0, first)]
        chunks = 10
        step = max(1, math.ceil(len(pods) / chunks))
        progress(f"admitting {len(images):,} distinct signed digests (Pods of 10 containers)")
        for begin in range(0, len(pods), step):
            chunk = pods[begin : begin + step]
            answer = driver.call("each", server.port, chunk, concurrency=8)
            results.check("memory", answer)
            admitted = min(len(images), (begin + len(chunk)) * 10)
            curve.append((admitted, server.rss_mib()))
            progress(f"  {admitted:,} digests cached, RSS {curve[-1][1]:.0f} MiB")
        metrics = scrape_metrics(server.port, world.ca_file)
        entries = counter(metrics, 'signgate_cache_entries{cache="verdict"}')
        results.notes["memory.curve"] = curve
        results.notes["memory.verdicts_cached"] = entries
        if entries < min(len(images), 10_000):
            results.errors.append(
                f"memory: only {entries:g} verdicts cached after admitting {len(images)} digests"
            )
        results.notes["memory.images"] = len(images)
        last = curve[-1][1]
        per_entry = (last - first) / max(1, len(images))
        if len(curve) > 2:
            # The first tenth also pays for the connections and the code paths a cold
            # verification first touches: the slope after it is the cost of a cached result.
            (after_n, after_rss), (n, rss) = curve[1], curve[-1]
            per_entry = max(0.0, (rss - after_rss) / max(1, n - after_n))
        results.notes["memory.per_result_kib"] = per_entry * 1024
        if len(images) >= 10_000:
            results.notes["memory.rss_10000_mib"] = last
            results.notes["memory.extrapolated"] = False
        else:
            results.notes["memory.rss_10000_mib"] = first + per_entry * 10_000
            results.notes["memory.extrapolated"] = True
    finally:
        exit_status = server.stop()
        if exit_status != 0:
            results.errors.append(f"memory server exited {exit_status}")


# -- the report ------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _runs(results: Results, key: str, *, worst: str) -> tuple[str, str]:
    values = results.runs.get(key, [])
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-", "-"
    bad = max(values) if worst == "max" else min(values)
    return _fmt(statistics.median(values)), _fmt(bad)


def _pooled(results: Results, key: str) -> tuple[str, str]:
    values = results.pooled.get(key, [])
    return _fmt(percentile(values, 50)), _fmt(percentile(values, 99))


def _median(results: Results, key: str) -> float:
    values = [v for v in results.runs.get(key, results.pooled.get(key, [])) if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def table(results: Results, args: argparse.Namespace) -> str:
    rows: list[tuple[str, str, str] | str] = []

    def pooled(label: str, key: str) -> None:
        rows.append((label, *_pooled(results, key)))

    def runs(label: str, key: str, worst: str = "max") -> None:
        rows.append((label, *_runs(results, key, worst=worst)))

    rows.append("1. warm path (verdict cached), one replica on one core")
    for c in (1, 10):
        label = f"Pod, {c} container{'s' if c > 1 else ''}"
        pooled(f"  {label}: latency, sequential, client side (ms)", f"warm{c}.client_ms")
        runs(f"  {label}: time in server, histogram mean (ms)", f"warm{c}.server_mean_ms")
        runs(f"  {label}: time in server, p99 bucket bound (ms)", f"warm{c}.server_p99_bound_ms")
        runs(f"  {label}: reviews/s ({args.concurrency} connections)", f"warm{c}.rps", "min")
        pooled(f"  {label}: latency under that load (ms)", f"warm{c}.load_ms")
        runs(f"  {label}: server CPU under load (cores)", f"warm{c}.server_cpu", "min")
        runs(f"  {label}: reviews per server CPU-second", f"warm{c}.per_cpu_second", "min")
        runs(f"  {label}: client CPU under load (cores)", f"warm{c}.client_cpu")
        runs(f"  {label}: other processes' CPU meanwhile (cores)", f"warm{c}.others_cpu")
    rows.append("2. cold path (a digest this server never saw; tokens and probes cached)")
    for kind in KINDS:
        for fmt in FORMATS:
            key = f"cold.{kind}.{fmt}"
            label = f"{kind} registry, {fmt}"
            pooled(f"  {label}: latency per image, client side (ms)", f"{key}.client_ms")
            runs(f"  {label}: time in server, histogram mean (ms)", f"{key}.server_mean_ms")
            pooled(f"  {label}: registry requests per image", f"{key}.registry_requests")
            pooled(f"  {label}: token requests per image", f"{key}.token_requests")
            pooled(f"  {label}: signgate's own request count", f"{key}.signgate_requests")
            pooled(f"  {label}: sum of those requests' round trips (ms)", f"{key}.rtt_sum_ms")
    rows.append(f"3. fan-out: {args.fanout} concurrent admissions of one Deployment's Pods")
    runs("  verifications", "fanout.verifications")
    runs("  registry requests", "fanout.registry_requests")
    runs("  signgate's own request count", "fanout.signgate_requests")
    runs("  allowed", "fanout.allowed", "min")
    pooled("  latency (ms)", "fanout.client_ms")
    rows.append(f"4. negative path: an unsigned image, admitted 1 + {args.negative} times")
    runs("  registry requests, first admission", "negative.first_requests")
    runs(f"  registry requests, next {args.negative} admissions", "negative.next_requests")
    pooled("  latency, first admission (ms)", "negative.first_ms")
    pooled(f"  latency, next {args.negative} admissions (ms)", "negative.next_ms")
    rows.append(f"5. cosign verify --key (cosign {COSIGN_VERSION}) vs signgate, same images")
    for fmt in FORMATS:
        runs(f"  {fmt}: cosign verify process (ms)", f"cli.cosign.{fmt}_ms")
        runs(f"  {fmt}: signgate verify process (ms)", f"cli.signgate.{fmt}_ms")
        runs(f"  {fmt}: ratio signgate verify / cosign (cold)", f"ratio.cold_cli.{fmt}")
        runs(f"  {fmt}: ratio signgate serve cold / cosign", f"ratio.cold_serve.{fmt}")
        runs(f"  {fmt}: ratio signgate serve warm / cosign", f"ratio.warm.{fmt}")
    rows.append("6. ceiling: bare aiohttp HTTPS endpoint, same TLS, same core")
    for c in (1, 10):
        label = f"Pod, {c} container{'s' if c > 1 else ''}"
        runs(f"  {label}: reviews/s", f"ceiling{c}.rps", "min")
        runs(f"  {label}: server CPU (cores)", f"ceiling{c}.server_cpu", "min")
        runs(f"  {label}: reviews per server CPU-second", f"ceiling{c}.per_cpu_second", "min")
        runs(f"  {label}: client CPU (cores)", f"ceiling{c}.client_cpu")
        runs(f"  {label}: other processes' CPU meanwhile (cores)", f"ceiling{c}.others_cpu")
        runs(f"  {label}: signgate warm / ceiling, reviews/s", f"warm{c}.fraction", "min")
        runs(f"  {label}: signgate warm / ceiling, per CPU-second", f"warm{c}.fraction_cpu", "min")
    rows.append("7. memory: signgate serve resident size (VmRSS)")
    notes = results.notes
    images = notes.get("memory.images", 0)
    for label, value in (
        ("  at start (MiB)", notes.get("memory.rss_start_mib")),
        ("  after the first admission (MiB)", notes.get("memory.rss_after_first_mib")),
        ("  verdicts cached (signgate_cache_entries)", notes.get("memory.verdicts_cached")),
        (
            f"  with {images:,} distinct digests admitted (MiB)",
            (notes.get("memory.curve") or [[0, None]])[-1][1],
        ),
        ("  per cached result (KiB)", notes.get("memory.per_result_kib")),
        *(
            [("  with 10,000 cached results, EXTRAPOLATED (MiB)", notes["memory.rss_10000_mib"])]
            if notes.get("memory.extrapolated")
            else []
        ),
    ):
        rows.append((label, _fmt(value) if value is not None else "-", ""))
    width = max(len(r[0]) for r in rows if isinstance(r, tuple))
    lines = [
        f"{TITLE}: {args.repeat} repetition{'s' if args.repeat != 1 else ''}"
        f"{' (--quick)' if args.quick else ''}",
        f"  {describe_machine()}",
        "  server "
        + ("pinned to CPU 0, client and registries to CPU 1" if args.pin else "not pinned")
        + f"{'; server on uvloop' if args.uvloop else ''}",
        "  latencies: p50 and p99 of all samples; per-run figures: median run and worst run",
        "",
        f"{'':<{width}}  {'median':>10}  {'p99/worst':>10}",
    ]
    for row in rows:
        if isinstance(row, str):
            lines.append(row)
        else:
            lines.append(f"{row[0]:<{width}}  {row[1]:>10}  {row[2]:>10}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Target:
    target: str
    measured: str
    met: bool | None


def targets(results: Results) -> list[Target]:
    out: list[Target] = []

    def med(key: str) -> float:
        return _median(results, key)

    for c in (1, 10):
        fraction = med(f"warm{c}.fraction")
        per_cpu = med(f"warm{c}.fraction_cpu")
        out.append(
            Target(
                f"warm throughput >= 50% of bare endpoint ({c} container{'s' if c > 1 else ''})",
                f"{per_cpu:.0%} per server CPU-second; {fraction:.0%} per second "
                f"({med(f'warm{c}.rps'):,.0f} vs {med(f'ceiling{c}.rps'):,.0f}/s)",
                per_cpu >= 0.5 if not math.isnan(per_cpu) else None,
            )
        )
    for c in (1, 10):
        bound = max(results.runs.get(f"warm{c}.server_p99_bound_ms", [math.nan]))
        client = percentile(results.pooled.get(f"warm{c}.client_ms", []), 99)
        best = min(bound, client)
        out.append(
            Target(
                f"warm p99 inside the server <= 2 ms ({c} container{'s' if c > 1 else ''})",
                f"<= {_fmt(bound, 1)} ms (histogram); client p99 {client:.2f} ms",
                best <= 2.0 if not math.isnan(best) else None,
            )
        )
    requests: list[str] = []
    worst = 0.0
    for kind in KINDS:
        for fmt in FORMATS:
            key = f"cold.{kind}.{fmt}"
            n = med(f"{key}.registry_requests") + med(f"{key}.token_requests")
            worst = max(worst, n)
            requests.append(f"{kind[:4]} {fmt} {n:g}")
    out.append(
        Target(
            "cold <= 3 registry requests per image (token cached)",
            ", ".join(requests),
            worst <= 3 if requests else None,
        )
    )
    for kind in KINDS:
        for fmt in FORMATS:
            key = f"cold.{kind}.{fmt}"
            latency = med(f"{key}.client_ms")
            bound = 2 * (med(f"{key}.rtt_sum_ms") + ECDSA_P256_VERIFY_MS)
            out.append(
                Target(
                    f"cold latency <= 2 x (round trips + 0.13 ms), {kind[:4]} {fmt}",
                    f"{latency:.2f} ms (server {med(f'{key}.server_mean_ms'):.2f}) "
                    f"vs {bound:.2f} ms",
                    latency <= bound if not math.isnan(latency * bound) else None,
                )
            )
    verifications = results.runs.get("fanout.verifications", [])
    out.append(
        Target(
            "fan-out: 1 verification",
            f"{max(verifications):g} verifications, {med('fanout.registry_requests'):g} requests"
            if verifications
            else "-",
            max(verifications) == 1 if verifications else None,
        )
    )
    nxt = results.runs.get("negative.next_requests", [])
    out.append(
        Target(
            "negative: cached 'not signed' sends no requests",
            f"first {med('negative.first_requests'):g}, next "
            f"{results.notes.get('negative.count', 0)}: {max(nxt):g}"
            if nxt
            else "-",
            max(nxt) == 0 if nxt else None,
        )
    )
    for fmt in FORMATS:
        cold = med(f"ratio.cold_serve.{fmt}")
        cli = med(f"ratio.cold_cli.{fmt}")
        out.append(
            Target(
                f">= 5x faster than cosign verify, cold ({fmt})",
                f"serve {_speed(cold)}; verify CLI {_speed(cli)}",
                (1 / cold >= 5) if not math.isnan(cold) else None,
            )
        )
    for fmt in FORMATS:
        warm = med(f"ratio.warm.{fmt}")
        out.append(
            Target(
                f">= 100x faster than cosign verify, warm ({fmt})",
                f"serve {_speed(warm)}",
                (1 / warm >= 100) if not math.isnan(warm) else None,
            )
        )
    rss = results.notes.get("memory.rss_10000_mib")
    images = int(results.notes.get("memory.images", 0))
    measured, met = "-", None
    if rss is not None:
        measured = f"{rss * 1.048576:.0f} MB ({rss:.0f} MiB)"
        met = rss * 1.048576 <= 150
        if results.notes.get("memory.extrapolated"):
            measured += f", extrapolated from {images:,} digests"
            if images < MIN_EXTRAPOLATION:
                measured += ": too few to judge"
                met = None
    out.append(Target("<= 150 MB resident with 10,000 cached results", measured, met))
    return out


def _speed(ratio: float) -> str:
    if math.isnan(ratio):
        return "-"
    if ratio <= 1:
        return f"{1 / ratio:,.1f}x faster"
    return f"{ratio:,.1f}x slower"


def target_table(found: Sequence[Target]) -> str:
    width = max(len(t.target) for t in found)
    measured = max(len(t.measured) for t in found)
    lines = [f"{'target':<{width}}  {'measured':<{measured}}  met?"]
    for t in found:
        met = "-" if t.met is None else ("yes" if t.met else "NO")
        lines.append(f"{t.target:<{width}}  {t.measured:<{measured}}  {met}")
    return "\n".join(lines)


def request_lists(results: Results) -> str:
    """The registry requests one cold admission made, as the registry saw them."""
    lines = [
        "registry requests of one cold admission (as the proxy in front of the registry saw them)"
    ]
    for kind in KINDS:
        for fmt in FORMATS:
            seen = results.notes.get(f"cold.{kind}.{fmt}.requests", [])
            lines.append(f"  {kind}, {fmt}:")
            for request in seen:
                lines.append("    " + re.sub(r"([0-9a-f]{12})[0-9a-f]{52}", r"\1…", request))
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (5)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small N, 1 repetition")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per throughput run (5)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="connections in throughput runs (32)"
    )
    parser.add_argument(
        "--sequential", type=int, default=1000, help="sequential warm admissions per run (1000)"
    )
    parser.add_argument("--cold", type=int, default=5, help="cold images per kind and run (5)")
    parser.add_argument("--fanout", type=int, default=500, help="concurrent admissions (500)")
    parser.add_argument("--negative", type=int, default=100, help="repeated unsigned (100)")
    parser.add_argument(
        "--memory-images",
        type=int,
        default=10_000,
        help="distinct signed digests to cache for the memory figure (10000; 0 skips it)",
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no taskset")
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="experiment: signgate serve and the ceiling on uvloop (uv run --with uvloop)",
    )
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument(
        "--workdir", type=Path, help="keep registries, logs and policy here (default: temporary)"
    )
    return parser


def _settle(args: argparse.Namespace) -> None:
    if args.quick:
        args.repeat = 1
        args.duration = 1.0
        args.sequential = 200
        args.cold = 2
        args.fanout = 50
        args.negative = 20
        args.memory_images = min(args.memory_images, 200)
        args.concurrency = min(args.concurrency, 16)
    args.pin = args.pin and _can_pin() and shutil.which("taskset") is not None
    if args.repeat < 1 or args.duration <= 0 or args.sequential < 20 or args.cold < 1:
        raise SystemExit(
            "scripts/bench: --repeat, --duration and --cold must be positive, --sequential >= 20"
        )


def run(args: argparse.Namespace, work: Path) -> Results:
    results = Results()
    with contextlib.ExitStack() as stack:
        world = build_world(work, args, stack)
        if args.pin:
            # Everything of ours (this process and its threads: the proxies, the token server) and
            # the registries on CPU 1; the servers under test alone on CPU 0.
            for pid in (os.getpid(), world.anonymous.pid, world.token.pid):
                if pid is not None:
                    pin_process(pid, 1)
        server_cpu = 0 if args.pin else None
        server = start_signgate(world, "main", args, server_cpu)
        stack.callback(server.stop)
        ceiling = start_ceiling(world, args, server_cpu)
        stack.callback(ceiling.stop)
        driver = Driver(world.ca_file, 1 if args.pin else None)
        stack.callback(driver.stop)
        bench = Bench(world, args, server, ceiling, driver, results)
        progress("warming up: warm images, and one image per cold route")
        answer = driver.call("seq", server.port, [pod_review(world.warm, "warmup-warm", True)])
        results.check("warm-up", answer)
        bench.warm_up_cold_routes()
        cosign = cosign_binary()
        if cosign is None:
            results.errors.append(
                f"cosign {COSIGN_VERSION} is not installed: run scripts/install-cosign"
            )
        else:  # the first run of each binary reads it from disk: not measured
            bench.timed_process([str(cosign), "version"], "cosign version", cosign_env(work))
        bench.timed_process(signgate_command(["--version"]), "signgate")
        for rep in range(args.repeat):
            progress(f"repetition {rep + 1}/{args.repeat}: warm path and ceiling")
            bench.warm()
            progress(f"repetition {rep + 1}/{args.repeat}: cold path, fan-out, negative path")
            bench.cold(rep)
            bench.fanout(rep)
            bench.negative(rep)
            progress(f"repetition {rep + 1}/{args.repeat}: cosign verify vs signgate")
            bench.cosign(cosign)
        ceiling.stop()
        server_status = server.stop()
        if server_status != 0:
            results.errors.append(f"signgate serve exited {server_status} on SIGTERM")
        results.errors.extend(f"server log: {line}" for line in server.log_errors(300))
        if args.memory_images:
            progress("memory: a fresh signgate serve")
            measure_memory(world, args, driver, results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_drive"]:
        from _driver import main as drive

        return drive(argv[1])
    if argv[:1] == ["_ceiling"]:
        from _ceiling import main as ceiling

        return ceiling(argv[1], argv[2], use_uvloop="--uvloop" in argv[3:])
    args = _parser().parse_args(argv)
    _settle(args)
    with contextlib.ExitStack() as stack:
        results = run(args, workdir(stack, args.workdir, "signgate-bench-"))
    found = targets(results)
    print(table(results, args))
    print()
    print(target_table(found))
    print()
    print(request_lists(results))
    if results.errors:
        print("\nERRORS:", file=sys.stderr)
        for error in results.errors:
            print(f"  {error}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "machine": describe_machine(),
                    "python": platform.python_version(),
                    "arguments": {k: str(v) for k, v in vars(args).items()},
                    "pooled": results.pooled,
                    "runs": results.runs,
                    "notes": results.notes,
                    "targets": [
                        {"target": t.target, "measured": t.measured, "met": t.met} for t in found
                    ],
                    "errors": results.errors,
                },
                indent=1,
            )
        )
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
