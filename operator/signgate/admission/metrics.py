"""Prometheus metrics of the webhook, in a registry of its own (one per server, so tests and
several servers in one process never collide)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from signgate.engine.verifier import Verifier

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
"""Warm admissions take a fraction of a millisecond: the sub-millisecond buckets show which."""

WEBHOOKS = ("validate", "mutate")
REFUSALS = ("no-certificate", "name")
"""Why a caller was refused: no verified client certificate, or one whose names are not allowed."""
ADMISSION_DECISIONS = ("allowed", "denied")
IMAGE_DECISIONS = ("allowed", "warned", "denied", "pending")


class _EngineCollector(Collector):
    """Reads the engine's own counters at scrape time (no hot-path bookkeeping)."""

    def __init__(self, engine: Verifier) -> None:
        self._engine = engine

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        engine = self._engine
        cache = CounterMetricFamily(
            "signgate_cache_lookups", "Verdict and tag cache lookups", labels=["cache", "result"]
        )
        for name, stats in (("verdict", engine.outcomes.stats), ("tag", engine.tags.stats)):
            cache.add_metric([name, "hit"], stats.hits)
            cache.add_metric([name, "miss"], stats.misses)
        yield cache
        yield CounterMetricFamily(
            "signgate_verifications",
            "Signature evaluations run (not served from cache or coalesced)",
            value=engine.verifications,
        )
        yield CounterMetricFamily(
            "signgate_registry_requests",
            "HTTP requests sent to registries and token endpoints",
            value=engine.client.requests_sent,
        )
        responses = CounterMetricFamily(
            "signgate_registry_responses",
            "Registry and token endpoint answers by HTTP status ('error': no answer)",
            labels=["status"],
        )
        for status, count in sorted(engine.client.responses.items()):
            responses.add_metric([status], count)
        yield responses
        entries = GaugeMetricFamily(
            "signgate_cache_entries", "Live cache entries", labels=["cache"]
        )
        entries.add_metric(["verdict"], len(engine.outcomes))
        entries.add_metric(["tag"], len(engine.tags))
        yield entries


class Metrics:
    """The webhook's metrics."""

    def __init__(self, engine: Verifier) -> None:
        self.registry = CollectorRegistry()
        self.admissions = Counter(
            "signgate_admissions",
            "Admission reviews answered",
            ["webhook", "decision"],
            registry=self.registry,
        )
        self.images = Counter(
            "signgate_image_decisions",
            "Per-image verdicts",
            ["decision"],
            registry=self.registry,
        )
        self.bad_requests = Counter(
            "signgate_bad_requests", "Malformed AdmissionReviews (HTTP 400)", registry=self.registry
        )
        self.refused_callers = Counter(
            "signgate_refused_callers",
            "Requests to /validate or /mutate refused (HTTP 403) before reading them: no verified "
            "client certificate, or one whose names are not allowed",
            ["webhook", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "signgate_admission_duration_seconds",
            "Time to answer an admission review, inside the server",
            ["webhook"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_EngineCollector(engine))
        # Looking a labelled child up costs a lock and a dict per call; these are on the hot path.
        self.admission = {
            (w, d): self.admissions.labels(w, d) for w in WEBHOOKS for d in ADMISSION_DECISIONS
        }
        self.image = {d: self.images.labels(d) for d in IMAGE_DECISIONS}
        self.duration = {w: self.latency.labels(w) for w in WEBHOOKS}
        self.refused_caller = {
            (w, r): self.refused_callers.labels(w, r) for w in WEBHOOKS for r in REFUSALS
        }
