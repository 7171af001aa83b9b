"""Load test of ``signgate serve``: many concurrent admissions against one server process.

One command (``scripts/load``) does everything on this machine:

1. starts a real CNCF distribution registry on loopback (``tests/support/registry.py``), pushes
   signed images (half in cosign's legacy ``.sig`` format, half as cosign v3 bundles) and a few
   unsigned ones, and writes a TrustPolicy that trusts the signing key;
2. for each phase, starts ``signgate serve --policy FILE`` as its own process (TLS from a throw-away
   CA, ``--port 0``; the port is read from its log line: ``bench/_harness.py``, shared with
   ``bench/perf.py``), so every phase starts with cold caches;
3. drives it from a separate load process (this script, ``_drive``): ``--concurrency`` workers
   over as many keep-alive HTTPS connections post AdmissionReviews for ``--duration`` seconds —
   Pods with 1-3 images, mostly signed, some unsigned, half to ``/validate`` and half to
   ``/mutate`` — and check every answer;
4. samples the server's resident memory (``VmRSS``) every second while it runs;
5. phases: the registry as it is, then the registry behind ``tests/support/fault_proxy.py`` delaying
   every request by ``--slow-ms`` (200 ms), once per ``--slow-deadline`` (default: ``--deadline``).

It prints one table and exits 1 when any request failed (transport error, HTTP status other than
200, an answer that is not a valid AdmissionReview response for the request) or any answer was wrong
(a Pod with an unsigned image allowed, a fully signed Pod denied for a reason other than the
deadline, a ``/mutate`` answer that allows a tag without pinning it), or when the server logged an
error or did not stop cleanly. Latency and memory are measurements: nothing is asserted about them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import aiohttp
from _harness import (
    Server,
    cpu_seconds,
    describe_machine,
    die_with_parent,
    machine_cpu_seconds,
    percentile,
    progress,
    push_image,
    rss_kib,
    scrape_metrics,
    serve_command,
    start_registry_behind_proxy,
    stop_process,
    workdir,
    write_policy,
    write_serve_tls,
)

from support import reviews
from support.fault_proxy import FaultProxy
from support.formats import PrivateKey, generate_key
from support.push import Pusher
from support.registry import RegistryKind, RegistryServer
from support.tls import new_ca

UID_PLACEHOLDER = "00000000-load-uid-placeholder-000000"
ENGINE_DEADLINE = "deadline exceeded"
"""A registry request the engine gave up on at the deadline (``DeadlineExceededError``)."""
MARGIN_DEADLINE = "before the request's deadline passed"
"""The webhook's safety margin (deadline + 0.5 s) fired: an image was still being verified."""
TABLE_TITLE = "signgate serve under load"


# -- the plan the load process follows -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """One AdmissionReview body (with a placeholder uid) and what a correct answer is."""

    endpoint: str
    body: str
    images: int
    signed: bool
    """Every image is signed: a correct answer allows it unless the deadline passed first."""
    pins: bool
    """A ``/mutate`` review naming an image by tag only: an answer allowing it must pin it."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the load process does (written as JSON, read by ``_drive``)."""

    url: str
    ca_file: str
    duration: float
    concurrency: int
    deadline: float
    client_timeout: float
    seed: int
    pods: list[PodTemplate]


@dataclass(slots=True)
class DriveResult:
    """What the load process measured (its JSON answer)."""

    elapsed: float = 0.0
    cpu_seconds: float = 0.0
    """CPU time of the load process itself."""
    requests: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    allowed: int = 0
    denied: int = 0
    denied_unsigned: int = 0
    denied_deadline: int = 0
    denied_deadline_margin: int = 0
    """Of those, answered by the webhook's safety margin (deadline + 0.5 s), not by the engine."""
    denied_other: int = 0
    denied_other_samples: list[str] = field(default_factory=list)
    fail_open: int = 0
    fail_open_samples: list[str] = field(default_factory=list)
    unpinned: int = 0
    """``/mutate`` allowed a tag-only image without the patch that pins it to its digest."""
    images: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    latency_steady_ms: dict[str, float] = field(default_factory=dict)
    """The same for requests sent after the warm-up (the first quarter of the run, at most 10 s)."""
    loop_lag_ms: dict[str, float] = field(default_factory=dict)
    """How late the load process's own event loop ran (its share of the measured latency)."""
    beyond_deadline: int = 0
    """Answers that took longer than the server's deadline plus 0.5 s (queueing, not verifying)."""
    timeline: list[dict[str, float]] = field(default_factory=list)
    """Per second of the run: answers, deadline denials, p99 and max latency (ms)."""


def _summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)  # once: sorting the sorted list again in percentile() is linear
    return {
        name: round(percentile(ordered, q) * 1000, 1)
        for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
    }


class _Recorder:
    """Classifies every answer of the load process."""

    def __init__(self, deadline: float, started: float, warmup: float) -> None:
        self.result = DriveResult()
        self.latencies: list[float] = []
        self.steady: list[float] = []
        self.lags: list[float] = []
        self.warmup = warmup
        self.per_second: dict[int, list[float]] = {}
        self.deadline_per_second: dict[int, int] = {}
        self.deadline = deadline
        self.started = started

    def error(self, kind: str, detail: str) -> None:
        result = self.result
        result.requests += 1
        result.errors += 1
        result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
        if len(result.error_samples) < 5:
            result.error_samples.append(f"{kind}: {detail}"[:500])

    def answer(self, pod: PodTemplate, uid: str, raw: bytes, sent: float, now: float) -> None:
        try:
            response = json.loads(raw)["response"]
            allowed, answered_uid = response["allowed"], response["uid"]
            patched = bool(response.get("patch"))
            message = str(response.get("status", {}).get("message", "")) if not allowed else ""
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.error("malformed answer", f"{type(exc).__name__}: {exc}; {raw[:200]!r}")
            return
        if answered_uid != uid or not isinstance(allowed, bool):
            self.error("malformed answer", f"uid {answered_uid!r}, allowed {allowed!r}")
            return
        result = self.result
        result.requests += 1
        result.images += pod.images
        latency = now - sent
        self.latencies.append(latency)
        if sent - self.started >= self.warmup:
            self.steady.append(latency)
        self.per_second.setdefault(int(now - self.started), []).append(latency)
        if latency > self.deadline + 0.5:
            result.beyond_deadline += 1
        if allowed:
            result.allowed += 1
            if pod.pins and not patched:
                result.unpinned += 1
            if not pod.signed:
                result.fail_open += 1
                if len(result.fail_open_samples) < 5:
                    result.fail_open_samples.append(pod.body[:500])
            return
        result.denied += 1
        if MARGIN_DEADLINE in message or ENGINE_DEADLINE in message:
            result.denied_deadline += 1
            result.denied_deadline_margin += int(MARGIN_DEADLINE in message)
            second = int(now - self.started)
            self.deadline_per_second[second] = self.deadline_per_second.get(second, 0) + 1
        elif not pod.signed:
            result.denied_unsigned += 1
        else:
            result.denied_other += 1
            if len(result.denied_other_samples) < 5:
                result.denied_other_samples.append(message[:500])

    def finish(self, elapsed: float) -> DriveResult:
        result = self.result
        result.elapsed = elapsed
        result.cpu_seconds = time.process_time()
        result.latency_ms = _summary(self.latencies)
        result.latency_steady_ms = _summary(self.steady)
        result.loop_lag_ms = _summary(self.lags)
        for second in sorted(self.per_second):
            values = sorted(self.per_second[second])
            result.timeline.append(
                {
                    "second": second,
                    "answers": len(values),
                    "deadline_denials": self.deadline_per_second.get(second, 0),
                    "p99_ms": round(percentile(values, 99) * 1000, 1),
                    "max_ms": round(values[-1] * 1000, 1),
                }
            )
        return result


async def drive(plan: Plan) -> DriveResult:
    """Post admissions with ``plan.concurrency`` workers for ``plan.duration`` seconds."""
    context = ssl.create_default_context(cafile=plan.ca_file)
    connector = aiohttp.TCPConnector(
        ssl=context, limit=plan.concurrency, limit_per_host=0, keepalive_timeout=300
    )
    timeout = aiohttp.ClientTimeout(total=plan.client_timeout)
    headers = {"Content-Type": "application/json"}
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop_at = started + plan.duration
    recorder = _Recorder(plan.deadline, started, warmup=min(10.0, plan.duration / 4))

    async def watch_lag() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(0.05)
            recorder.lags.append(max(0.0, loop.time() - before - 0.05))

    async def worker(session: aiohttp.ClientSession, number: int) -> None:
        rng = random.Random(plan.seed * 1_000_003 + number)  # noqa: S311 - a workload, no secret
        sent = 0
        while loop.time() < stop_at:
            pod = rng.choice(plan.pods)
            sent += 1
            uid = f"{number:08x}-{sent:04x}-4000-8000-{rng.getrandbits(48):012x}"
            body = pod.body.replace(UID_PLACEHOLDER, uid).encode()
            begun = loop.time()
            try:
                async with session.post(
                    plan.url + pod.endpoint, data=body, headers=headers
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                recorder.error(type(exc).__name__, str(exc))
                await asyncio.sleep(0.05)  # a dead server must not turn this into a busy loop
                continue
            now = loop.time()
            if status != 200:
                recorder.error(f"HTTP {status}", raw[:200].decode("utf-8", "replace"))
                continue
            recorder.answer(pod, uid, raw, begun, now)

    lag = asyncio.create_task(watch_lag())
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session, n) for n in range(plan.concurrency)))
    lag.cancel()
    return recorder.finish(loop.time() - started)


def _drive_main(plan_file: Path, out_file: Path) -> int:
    raw = json.loads(plan_file.read_text())
    raw["pods"] = [PodTemplate(**pod) for pod in raw["pods"]]
    result = asyncio.run(drive(Plan(**raw)))
    out_file.write_text(json.dumps(asdict(result)))
    return 0


# -- the world: registry, images, policy -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Image:
    repository: str
    tag: str
    digest: str
    signed: str | None
    """``legacy``, ``bundle`` or None."""


async def push_images(
    registry: RegistryServer, key: PrivateKey, signed: int, unsigned: int
) -> list[Image]:
    """Push ``signed`` signed images (alternately legacy and bundle) and ``unsigned`` others."""
    plan: list[tuple[str, str | None]] = [
        (f"load/signed-{i:03d}", "legacy" if i % 2 == 0 else "bundle") for i in range(signed)
    ]
    plan += [(f"load/unsigned-{i:03d}", None) for i in range(unsigned)]
    gate = asyncio.Semaphore(16)

    async with Pusher.for_registry(registry) as pusher:

        async def one(repository: str, how: str | None) -> Image:
            async with gate:
                digest = await push_image(pusher, key, repository, "v1", how)
                return Image(repository, "v1", digest, how)

        return list(await asyncio.gather(*(one(r, how) for r, how in plan)))


def make_pods(
    images: Sequence[Image], host: str, *, count: int, unsigned_share: float, seed: int
) -> list[PodTemplate]:
    """``count`` AdmissionReview bodies: Pods with 1-3 images (half by tag+digest when signed)."""
    rng = random.Random(seed)  # noqa: S311 - a workload mix, no secret
    signed = [i for i in images if i.signed]
    unsigned = [i for i in images if not i.signed]
    pods: list[PodTemplate] = []
    for number in range(count):
        refs: list[str] = []
        all_signed = True
        by_tag_only = False
        for _ in range(rng.choices((1, 2, 3), weights=(5, 3, 2))[0]):
            if unsigned and rng.random() < unsigned_share:
                image = rng.choice(unsigned)
                all_signed = False
            else:
                image = rng.choice(signed)
            ref = f"{host}/{image.repository}:{image.tag}"
            if image.signed and rng.random() < 0.2:
                ref += f"@{image.digest}"  # some manifests pin what they run
            else:
                by_tag_only = True
            refs.append(ref)
        obj = reviews.workload(
            "Pod", reviews.pod_spec(refs), name=f"app-{number}", namespace=f"team-{number % 7}"
        )
        body = json.dumps(reviews.review(obj, uid=UID_PLACEHOLDER), separators=(",", ":"))
        endpoint = "/validate" if number % 2 == 0 else "/mutate"
        pins = endpoint == "/mutate" and by_tag_only
        pods.append(PodTemplate(endpoint, body, len(refs), all_signed, pins))
    return pods


# -- processes -------------------------------------------------------------------------------------


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped because a listen queue was full (all sockets)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            value = counters.get("ListenOverflows")
            return int(value) if value is not None else None
    return None


class RssSampler:
    """Samples a process's resident memory every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            value = rss_kib(self.pid)
            if value is not None:
                self.samples.append((round(time.monotonic() - self._started, 1), value))
            if self._stop.wait(self.interval):
                return


@dataclass(slots=True)
class Phase:
    """One server process under one load run, and everything measured about it."""

    name: str
    registry: str
    deadline: float
    drive: DriveResult
    rss_kib: list[tuple[float, int]]
    server_cpu: float
    """CPU seconds the server used while loaded, per second of the run (1.0: one core busy)."""
    driver_cpu: float
    helpers_cpu: float
    """The registry and this script's fault proxy."""
    machine_cpu: float
    """Every process on the machine (the rest belongs to whatever else runs there)."""
    server_p99_bucket: str
    """The server's own view (its latency histogram): the bucket holding its p99."""
    listen_overflows: int | None
    """Connections the kernel dropped at a full listen queue meanwhile (machine-wide counter)."""
    server_exit: int | None
    server_log_errors: list[str]
    verifications: int | None
    registry_requests: int | None
    registry_responses: dict[str, int]
    """What signgate got back from the registry, by HTTP status (``error``: no answer)."""
    proxy_requests: int | None

    @property
    def failures(self) -> int:
        d = self.drive
        crashed = 0 if self.server_exit == 0 else 1
        logged = len(self.server_log_errors)
        return d.errors + d.fail_open + d.unpinned + d.denied_other + crashed + logged


@dataclass(frozen=True, slots=True)
class World:
    work: Path
    policy: Path
    tls_cert: Path
    tls_key: Path
    ca_file: Path
    images: list[Image]


def _histogram_p99(metrics: dict[str, float]) -> str:
    """``≤ LE s`` for the first bucket of the server's latency histogram holding 99 % of answers."""
    buckets: dict[float, float] = {}
    for name, value in metrics.items():
        match = re.fullmatch(
            r'signgate_admission_duration_seconds_bucket\{le="([^"]+)",webhook="\w+"\}', name
        )
        if match:
            le = float(match.group(1))
            buckets[le] = buckets.get(le, 0.0) + value
    if not buckets or max(buckets.values()) == 0:
        return "-"
    total = buckets[math.inf]
    for le in sorted(buckets):
        if buckets[le] >= 0.99 * total:
            return f"<= {le:g} s" if le != math.inf else "> 10 s"
    return "-"


def run_phase(
    name: str,
    world: World,
    registry: RegistryServer,
    *,
    host: str,
    deadline: float,
    args: argparse.Namespace,
    proxy: FaultProxy | None,
    index: int,
) -> Phase:
    """Start a fresh server (cold caches), load it from another process, stop it."""
    progress(f"{name}: starting signgate serve (deadline {deadline:g} s)")
    command = serve_command(
        world.policy,
        world.tls_cert,
        world.tls_key,
        [
            "--insecure-registry",
            host,
            "--deadline",
            f"{deadline:g}",
            "--tag-ttl",
            f"{args.tag_ttl:g}",
        ],
    )
    server = Server(name, command, world.work / f"serve-{index}.log")
    port = server.port
    driver: subprocess.Popen[bytes] | None = None
    try:
        pods = make_pods(
            world.images,
            host,
            count=args.pod_templates,
            unsigned_share=args.unsigned_share,
            seed=args.seed + index,
        )
        plan = Plan(
            url=f"https://127.0.0.1:{port}",
            ca_file=str(world.ca_file),
            duration=args.duration,
            concurrency=args.concurrency,
            deadline=deadline,
            client_timeout=deadline + 30,
            seed=args.seed + index,
            pods=pods,
        )
        plan_file = world.work / f"plan-{index}.json"
        out_file = world.work / f"result-{index}.json"
        plan_file.write_text(json.dumps(asdict(plan)))
        if proxy is not None:
            proxy.reset_counts()
        sampler = RssSampler(server.pid)
        sampler.start()
        server_cpu_before = cpu_seconds(server.pid) or 0.0
        registry_pid = registry.pid or 0
        helpers_before = (cpu_seconds(registry_pid) or 0.0) + time.process_time()
        machine_before = machine_cpu_seconds()
        overflows_before = listen_overflows()
        wall_before = time.monotonic()
        progress(
            f"{name}: {args.concurrency} concurrent admissions for {args.duration:g} s "
            f"(https://127.0.0.1:{port}, load from a separate process)"
        )
        driver = subprocess.Popen(  # noqa: S603 - this very script
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "_drive",
                str(plan_file),
                str(out_file),
            ],
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),  # prctl only, resolved before fork
        )
        status = driver.wait(args.duration + deadline + 120)
        server_cpu = (cpu_seconds(server.pid) or 0.0) - server_cpu_before
        helpers_cpu = (cpu_seconds(registry_pid) or 0.0) + time.process_time() - helpers_before
        machine_cpu = machine_cpu_seconds() - machine_before
        overflows_after = listen_overflows()
        wall = time.monotonic() - wall_before
        sampler.stop()
        if status != 0:
            raise RuntimeError(f"the load process failed (exit status {status})")
        raw = json.loads(out_file.read_text())
        result = DriveResult(**raw)
        metrics: dict[str, float] = {}
        if server.running():
            with contextlib.suppress(OSError):
                metrics = scrape_metrics(port, world.ca_file)
        proxy_requests = proxy.count() if proxy is not None else None
    finally:
        if driver is not None and driver.poll() is None:
            stop_process(driver)
        exit_status = server.stop()
    verifications = metrics.get("signgate_verifications_total")
    registry_requests = metrics.get("signgate_registry_requests_total")
    return Phase(
        name=name,
        registry=host,
        deadline=deadline,
        drive=result,
        rss_kib=sampler.samples,
        server_cpu=round(server_cpu / max(result.elapsed, 1e-9), 2),
        driver_cpu=round(result.cpu_seconds / max(result.elapsed, 1e-9), 2),
        helpers_cpu=round(helpers_cpu / wall, 2),
        machine_cpu=round(machine_cpu / wall, 2),
        server_p99_bucket=_histogram_p99(metrics),
        listen_overflows=(
            overflows_after - overflows_before
            if overflows_after is not None and overflows_before is not None
            else None
        ),
        server_exit=exit_status,
        server_log_errors=server.log_errors(),
        verifications=int(verifications) if verifications is not None else None,
        registry_requests=int(registry_requests) if registry_requests is not None else None,
        registry_responses={
            match.group(1): int(value)
            for name, value in metrics.items()
            if (match := re.fullmatch(r'signgate_registry_responses_total\{status="(\w+)"\}', name))
        },
        proxy_requests=proxy_requests,
    )


# -- the report ------------------------------------------------------------------------------------


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def _ms(summary: dict[str, float], key: str) -> str:
    value = summary.get(key, math.nan)
    return "-" if math.isnan(value) else f"{value:,.1f}"


def _cells(p: Phase) -> list[tuple[str, str]]:
    """One column of the table: (row label, value) for one phase."""
    d = p.drive
    rss = [v for _, v in p.rss_kib]
    others = max(0.0, p.machine_cpu - p.server_cpu - p.driver_cpu - p.helpers_cpu)
    statuses = " ".join(f"{k}:{v}" for k, v in sorted(p.registry_responses.items()))
    return [
        ("registry", p.name),
        ("server --deadline (s)", f"{p.deadline:g}"),
        ("duration (s)", f"{d.elapsed:.1f}"),
        ("requests", f"{d.requests:,}"),
        ("requests/s", f"{d.requests / max(d.elapsed, 1e-9):,.0f}"),
        ("images checked", f"{d.images:,}"),
        ("ERRORS (transport, non-200)", f"{d.errors:,}"),
        ("allowed", f"{d.allowed:,}"),
        ("denied", f"{d.denied:,}"),
        ("  unsigned image (correct)", f"{d.denied_unsigned:,}"),
        ("  deadline denials", f"{d.denied_deadline:,}"),
        ("    of which at deadline + 0.5 s", f"{d.denied_deadline_margin:,}"),
        ("  WRONG: signed Pod denied", f"{d.denied_other:,}"),
        ("WRONG: unsigned Pod allowed", f"{d.fail_open:,}"),
        ("WRONG: /mutate allowed, no pin", f"{d.unpinned:,}"),
        ("latency p50 (ms)", _ms(d.latency_ms, "p50")),
        ("latency p90 (ms)", _ms(d.latency_ms, "p90")),
        ("latency p99 (ms)", _ms(d.latency_ms, "p99")),
        ("latency max (ms)", _ms(d.latency_ms, "max")),
        ("p99 after warm-up (ms)", _ms(d.latency_steady_ms, "p99")),
        ("max after warm-up (ms)", _ms(d.latency_steady_ms, "max")),
        ("answers > deadline + 0.5 s", f"{d.beyond_deadline:,}"),
        ("server's own p99 (histogram)", p.server_p99_bucket),
        ("load process loop lag p99 (ms)", _ms(d.loop_lag_ms, "p99")),
        ("listen queue overflows (kernel)", f"{p.listen_overflows}"),
        ("server CPU (cores busy)", f"{p.server_cpu:.2f}"),
        ("load process CPU (cores busy)", f"{p.driver_cpu:.2f}"),
        ("registry + proxy CPU (cores busy)", f"{p.helpers_cpu:.2f}"),
        ("other processes (cores busy)", f"{others:.2f}"),
        ("server RSS start (MiB)", _mib(rss[0]) if rss else "-"),
        ("server RSS peak (MiB)", _mib(max(rss)) if rss else "-"),
        ("server RSS end (MiB)", _mib(rss[-1]) if rss else "-"),
        ("signature verifications", f"{p.verifications}"),
        ("registry requests (signgate)", f"{p.registry_requests}"),
        ("registry answers by status", statuses or "-"),
        (
            "requests through the proxy",
            "-" if p.proxy_requests is None else f"{p.proxy_requests:,}",
        ),
        ("server errors logged", f"{len(p.server_log_errors)}"),
        ("server exit on SIGTERM", f"{p.server_exit}"),
    ]


def table(phases: Sequence[Phase], args: argparse.Namespace) -> str:
    """The results, one column per phase."""
    columns = [_cells(p) for p in phases]
    rows = [
        (label, [column[i][1] for column in columns]) for i, (label, _) in enumerate(columns[0])
    ]
    width = max(len(label) for label, _ in rows)
    cols = [max(len(cells[i]) for _, cells in rows) for i in range(len(phases))]
    lines = [
        f"{TABLE_TITLE}: {args.concurrency} concurrent admissions, {args.duration:g} s per phase",
        f"  {describe_machine()}",
        f"  {args.signed} signed images (legacy + bundle), {args.unsigned} unsigned; Pods of 1-3 "
        f"images, {args.unsigned_share:.0%} of images unsigned; tag TTL {args.tag_ttl:g} s",
        "",
    ]
    for label, cells in rows:
        lines.append(
            f"{label:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, cols, strict=True))
        )
    return "\n".join(lines)


def details(phases: Sequence[Phase]) -> str:
    """Samples of anything that went wrong, and the memory curve."""
    out: list[str] = []
    for p in phases:
        d = p.drive
        label = f"{p.name}, deadline {p.deadline:g} s"
        if p.rss_kib:
            step = max(1, len(p.rss_kib) // 12)
            curve = " ".join(_mib(v) for _, v in p.rss_kib[::step])
            out.append(f"[{label}] RSS every {step} s (MiB): {curve}")
        if d.denied_deadline:
            per_5s: dict[int, int] = {}
            for point in d.timeline:
                bucket = int(point["second"]) // 5 * 5
                per_5s[bucket] = per_5s.get(bucket, 0) + int(point["deadline_denials"])
            counts = " ".join(str(per_5s[k]) for k in sorted(per_5s))
            out.append(f"[{label}] deadline denials per 5 s: {counts}")
        for title, samples in (
            ("errors", [f"{k}: {v}" for k, v in d.error_kinds.items()] + d.error_samples),
            ("signed Pods denied", d.denied_other_samples),
            ("unsigned Pods allowed", d.fail_open_samples),
            ("server log errors", p.server_log_errors[:5]),
        ):
            if samples:
                out.append(f"[{label}] {title}:")
                out.extend(f"    {s}" for s in samples)
    return "\n".join(out)


# -- main ------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/load", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase (60)")
    parser.add_argument("--concurrency", type=int, default=1000, help="admissions in flight (1000)")
    parser.add_argument("--signed", type=int, default=100, help="signed images (100)")
    parser.add_argument("--unsigned", type=int, default=10, help="unsigned images (10)")
    parser.add_argument(
        "--unsigned-share", type=float, default=0.1, help="chance an image is unsigned (0.1)"
    )
    parser.add_argument("--pod-templates", type=int, default=2000, help="distinct Pods (2000)")
    parser.add_argument("--deadline", type=float, default=8.0, help="serve --deadline (8)")
    parser.add_argument("--tag-ttl", type=float, default=10.0, help="serve --tag-ttl (10)")
    parser.add_argument(
        "--slow-ms", type=float, default=200.0, help="registry delay in the slow phases (200)"
    )
    parser.add_argument(
        "--slow-deadline",
        type=float,
        action="append",
        default=None,
        metavar="SECONDS",
        help="one slow phase per value, with this serve --deadline (default: --deadline)",
    )
    parser.add_argument("--no-slow", action="store_true", help="skip the slow-registry phases")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the registry, policy, plans and server logs here (default: a temporary one)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_drive"]:
        return _drive_main(Path(argv[1]), Path(argv[2]))
    args = _parser().parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.signed < 1:
        raise SystemExit("scripts/load: --concurrency, --duration and --signed must be positive")
    slow_deadlines: list[float] = [] if args.no_slow else (args.slow_deadline or [args.deadline])
    phases: list[Phase] = []
    with contextlib.ExitStack() as stack:
        work = workdir(stack, args.workdir, "signgate-load-")
        progress("starting a CNCF distribution registry on loopback")
        registry, proxy = start_registry_behind_proxy(
            stack, RegistryKind.ANONYMOUS, work / "registry"
        )
        key = generate_key()
        progress(f"pushing {args.signed} signed and {args.unsigned} unsigned images")
        images = asyncio.run(push_images(registry, key, args.signed, args.unsigned))
        tls_cert, tls_key, ca_file = write_serve_tls(new_ca(), work)
        world = World(
            work=work,
            policy=write_policy(work / "policy.yaml", key, [registry.host, proxy.host], "load"),
            tls_cert=tls_cert,
            tls_key=tls_key,
            ca_file=ca_file,
            images=images,
        )
        phases.append(
            run_phase(
                "direct",
                world,
                registry,
                host=registry.host,
                deadline=args.deadline,
                args=args,
                proxy=None,
                index=0,
            )
        )
        if slow_deadlines:
            proxy.delay(r"", args.slow_ms / 1000)
        for number, deadline in enumerate(slow_deadlines, start=1):
            phases.append(
                run_phase(
                    f"+{args.slow_ms:g} ms",
                    world,
                    registry,
                    host=proxy.host,
                    deadline=deadline,
                    args=args,
                    proxy=proxy,
                    index=number,
                )
            )
    print(table(phases, args))
    extra = details(phases)
    if extra:
        print("\n" + extra)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "machine": describe_machine(),
                    "arguments": {k: str(v) for k, v in vars(args).items()},
                    "phases": [asdict(p) for p in phases],
                },
                indent=1,
            )
        )
    failures = sum(p.failures for p in phases)
    if failures:
        print(f"\nFAILED: {failures} errors or wrong answers (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
