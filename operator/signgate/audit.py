"""``signgate audit``: which running (or about to be applied) workloads a policy would refuse.

Each workload is judged by the admission path itself (`decide_review` on a CREATE request for the
object), so the audit answers exactly what the webhook would. By default every policy is treated
as if it were in Enforce mode: the question an audit answers is "what breaks if I switch to
Enforce?". The engine's caches make each distinct image cost one verification however many
workloads run it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from signgate.admission.decide import decide_review
from signgate.admission.images import SUPPORTED_KINDS
from signgate.admission.review import AdmissionRequest
from signgate.engine.verifier import Verifier
from signgate.errors import ConfigError
from signgate.policy.compiled import CompiledPolicy
from signgate.policy.evaluate import ImageDecision
from signgate.registry import CredentialStore

if TYPE_CHECKING:
    from signgate.kube.api import KubeApi

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
CONCURRENT_WORKLOADS = 16


@dataclass(frozen=True, slots=True)
class Workload:
    """One object that runs images."""

    namespace: str
    group: str
    version: str
    kind: str
    name: str
    body: dict[str, Any]
    origin: str
    """``cluster`` or the manifest file it came from."""

    @property
    def label(self) -> str:
        """``Deployment/web``."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class WorkloadResult:
    """The verdict on one workload."""

    workload: Workload
    allowed: bool
    images: tuple[ImageDecision, ...]
    problem: str | None = None
    """Why the workload as a whole is refused (unreadable object, undecided images)."""


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Everything ``signgate audit`` found."""

    results: tuple[WorkloadResult, ...]
    skipped: tuple[str, ...]
    """Manifests that run no images (Services, ConfigMaps, …), as ``Kind/name (file)``."""
    modes: Mapping[str, str]
    """Each policy's own mode."""
    as_enforce: bool
    seconds: float


def _group_version(api_version: object) -> tuple[str, str]:
    text = api_version if isinstance(api_version, str) else ""
    group, _, version = text.rpartition("/")
    return group, version


def workload_of(body: Mapping[str, Any], origin: str, default_namespace: str) -> Workload | None:
    """The workload ``body`` describes, or None if its kind runs no images."""
    group, version = _group_version(body.get("apiVersion"))
    kind = body.get("kind")
    if not isinstance(kind, str) or (group, kind) not in SUPPORTED_KINDS:
        return None
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    namespace = metadata.get("namespace") or default_namespace
    name = metadata.get("name") or metadata.get("generateName") or "?"
    return Workload(str(namespace), group, version, kind, str(name), dict(body), origin)


def _documents(path: Path) -> Iterable[tuple[Mapping[str, Any], str]]:
    try:
        text = path.read_text(encoding="utf-8")
        documents = list(yaml.safe_load_all(text))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read manifest {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from exc
    for document in documents:
        if not isinstance(document, dict):
            continue
        if document.get("kind") == "List" or str(document.get("kind", "")).endswith("List"):
            for item in document.get("items") or ():
                if isinstance(item, dict):
                    yield item, str(path)
        else:
            yield document, str(path)


def manifest_files(paths: Sequence[str]) -> list[Path]:
    """The manifest files under ``paths`` (files, or directories searched recursively)."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"--manifests {text}: no such file or directory")
    return files


def workloads_from_manifests(
    paths: Sequence[str], default_namespace: str = "default"
) -> tuple[list[Workload], list[str]]:
    """(workloads, skipped objects) from YAML or JSON manifest files and directories."""
    workloads: list[Workload] = []
    skipped: list[str] = []
    for path in manifest_files(paths) if paths else ():
        for body, origin in _documents(path):
            workload = workload_of(body, origin, default_namespace)
            if workload is None:
                name = (body.get("metadata") or {}).get("name", "?")
                skipped.append(f"{body.get('kind', '?')}/{name} ({origin})")
            else:
                workloads.append(workload)
    return workloads, skipped


async def cluster_workloads(
    api: KubeApi, namespaces: Sequence[str], *, quiet: bool = False
) -> list[Workload]:
    """Every workload in the cluster (in ``namespaces``, or all), controllers folding in what they
    control: a Deployment's ReplicaSets and Pods are reported as the Deployment.

    Raises:
        ConfigError: the cluster cannot be listed.
    """
    # Kopf (under signgate.kube) is imported only when a cluster is read, not for --manifests.
    from signgate.kube import snapshot
    from signgate.kube.api import KubeApiError

    if not quiet:
        print("signgate audit: listing workloads", file=sys.stderr, flush=True)
    try:
        listed = await snapshot.cluster_workloads(api, namespaces)
    except KubeApiError as exc:
        raise ConfigError(f"cannot list workloads: {exc}") from exc
    workloads: list[Workload] = []
    for kind, body in listed:
        workload = workload_of(
            {"apiVersion": kind.api_version, "kind": kind.kind, **body}, "cluster", "default"
        )
        if workload is not None:
            workloads.append(workload)
    return workloads


class _Policies:
    """The admission path's view of the policies being audited."""

    def __init__(
        self, policies: Sequence[CompiledPolicy], labels: Mapping[str, Mapping[str, str]] | None
    ) -> None:
        self._policies = policies
        self._labels = labels

    def ready(self) -> bool:
        return True

    def current(self) -> Sequence[CompiledPolicy]:
        return self._policies

    async def namespace_labels(self, namespace: str | None) -> Mapping[str, str] | None:
        if not namespace:
            return None
        if self._labels is not None and namespace in self._labels:
            return self._labels[namespace]
        return {"kubernetes.io/metadata.name": namespace}


def _request(workload: Workload, number: int) -> AdmissionRequest:
    plural = workload.kind.lower() + "s"
    return AdmissionRequest.model_validate(
        {
            "uid": f"signgate-audit-{number}",
            "kind": {"group": workload.group, "version": workload.version, "kind": workload.kind},
            "resource": {"group": workload.group, "version": workload.version, "resource": plural},
            "name": workload.name,
            "namespace": workload.namespace,
            "operation": "CREATE",
            "object": workload.body,
            "dryRun": True,
        }
    )


CredentialsFor = Callable[[AdmissionRequest], Awaitable[CredentialStore | None]]
Progress = Callable[[int, int, int], None]
"""(checked, total, denied so far)."""


async def run_audit(
    workloads: Sequence[Workload],
    *,
    engine: Verifier,
    policies: Sequence[CompiledPolicy],
    namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
    as_enforce: bool = True,
    deadline_seconds: float = 30.0,
    credentials_for: CredentialsFor | None = None,
    progress: Progress | None = None,
    skipped: Sequence[str] = (),
) -> AuditReport:
    """Judge every workload as the webhook would (as if in Enforce mode, by default)."""
    started = time.monotonic()
    judged = [replace(p, mode="Enforce") for p in policies] if as_enforce else list(policies)
    source = _Policies(judged, namespace_labels)
    gate = asyncio.Semaphore(CONCURRENT_WORKLOADS)
    done = 0
    denied = 0

    async def judge(number: int, workload: Workload) -> WorkloadResult:
        nonlocal done, denied
        async with gate:
            request = _request(workload, number)
            credentials = await credentials_for(request) if credentials_for else None
            verdict = await decide_review(
                request,
                mutate=False,
                engine=engine,
                policies=source,
                deadline_seconds=deadline_seconds,
                credentials=credentials,
            )
        problem = None
        if not verdict.allowed and not verdict.images and not verdict.pending:
            problem = verdict.message or "refused"
        elif verdict.pending:
            problem = f"not verified within {deadline_seconds:.0f}s: {', '.join(verdict.pending)}"
        done += 1
        denied += not verdict.allowed
        if progress is not None:
            progress(done, len(workloads), denied)
        return WorkloadResult(workload, verdict.allowed, verdict.images, problem)

    results = await asyncio.gather(*(judge(i, w) for i, w in enumerate(workloads, 1)))
    ordered = sorted(results, key=lambda r: (r.workload.namespace, r.workload.label))
    return AuditReport(
        tuple(ordered),
        tuple(skipped),
        {p.name: p.mode for p in policies},
        as_enforce,
        time.monotonic() - started,
    )


def _verdict(decision: ImageDecision) -> str:
    if not decision.allowed:
        return "DENY"
    if decision.warnings or decision.audit:  # failed, let through by Warn or Audit mode
        return "warn"
    return "ok"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def render_table(report: AuditReport, out: TextIO) -> None:
    """One row per image of each workload, then a summary per namespace and overall."""
    rows: list[tuple[str, str, str, str, str]] = []
    for result in report.results:
        w = result.workload
        if result.problem is not None:
            rows.append((w.namespace, w.label, "DENY", "-", _one_line(result.problem)))
        for decision in result.images:
            why = decision.reasons or decision.warnings or decision.audit
            target = decision.image
            rows.append(
                (w.namespace, w.label, _verdict(decision), target, _one_line(why[0]) if why else "")
            )
    header = ("NAMESPACE", "WORKLOAD", "VERDICT", "IMAGE", "REASON")
    widths = [
        max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
        for i in range(4)
    ]
    for row in (header, *rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        out.write("  ".join([*cells, row[4]]).rstrip() + "\n")
    out.write("\n" + summary(report) + "\n")


def summary(report: AuditReport) -> str:
    """Counts per namespace and overall, and how the policies were judged."""
    lines: list[str] = []
    namespaces: dict[str, list[WorkloadResult]] = {}
    for result in report.results:
        namespaces.setdefault(result.workload.namespace, []).append(result)
    for namespace, results in namespaces.items():
        refused = sum(not r.allowed for r in results)
        lines.append(f"{namespace}: {refused} of {len(results)} workload(s) would be denied")
    total = len(report.results)
    refused = sum(not r.allowed for r in report.results)
    images = {d.image for r in report.results for d in r.images}
    bad = {d.image for r in report.results for d in r.images if not d.allowed}
    how = (
        "as if every TrustPolicy were in Enforce mode"
        if report.as_enforce
        else "with each TrustPolicy in its own mode"
    )
    modes = ", ".join(f"{name}={mode}" for name, mode in sorted(report.modes.items())) or "none"
    lines.append(
        f"{refused} of {total} workload(s) would be denied ({len(bad)} of {len(images)} distinct "
        f"image(s)), judged {how} (policies: {modes}); {report.seconds:.1f}s"
    )
    if report.skipped:
        lines.append(f"{len(report.skipped)} object(s) run no images and were skipped")
    return "\n".join(lines)


def to_json(
    report: AuditReport, record: Callable[[ImageDecision], Mapping[str, object]]
) -> dict[str, object]:
    """The report as a JSON-ready object; ``record`` renders one image decision."""
    return {
        "asEnforce": report.as_enforce,
        "policies": dict(report.modes),
        "summary": {
            "workloads": len(report.results),
            "denied": sum(not r.allowed for r in report.results),
            "seconds": round(report.seconds, 3),
        },
        "workloads": [
            {
                "namespace": r.workload.namespace,
                "kind": r.workload.kind,
                "name": r.workload.name,
                "origin": r.workload.origin,
                "allowed": r.allowed,
                "problem": r.problem,
                "images": [dict(record(d)) for d in r.images],
            }
            for r in report.results
        ],
        "skipped": list(report.skipped),
    }


def progress_printer(stream: TextIO = sys.stderr, every: float = 2.0) -> Progress:
    """A progress callback that writes a line at most every ``every`` seconds, and the last one."""
    last = 0.0

    def show(checked: int, total: int, denied: int) -> None:
        nonlocal last
        now = time.monotonic()
        if checked < total and now - last < every:
            return
        last = now
        stream.write(f"signgate audit: {checked}/{total} workloads checked, {denied} denied\n")
        stream.flush()

    return show


def dump_json(document: Mapping[str, object], out: TextIO) -> None:
    """Write ``document`` as indented JSON."""
    json.dump(document, out, indent=2)
    out.write("\n")
