"""The ``signgate`` command line.

``signgate verify IMAGE...`` checks images the way the admission webhook would, from a shell or a
CI pipeline. Exit status: 0 every image admitted, 1 at least one denied, 2 bad usage or
configuration (with a one-line error on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from signgate import __version__
from signgate.deadline import Deadline
from signgate.errors import ConfigError, KeyFormatError, SigngateError
from signgate.policy.compiled import (
    CompiledPolicy,
    adhoc_key_policy,
    adhoc_keyless_policy,
    compile_policy,
)
from signgate.policy.evaluate import ImageDecision
from signgate.policy.loading import load_policy_file
from signgate.registry import CredentialStore, RegistryClient, RegistryOptions
from signgate.signatures.authority import CertificateIdentity
from signgate.signatures.found import PREDICATE_TYPE_SHORTHANDS
from signgate.signatures.keys import PublicKey, load_public_key_pem
from signgate.signatures.trusted_root import TrustedRoot, default_trusted_root, load_trusted_root
from signgate.verifier import CacheSettings, Verifier, VerifierSettings

if TYPE_CHECKING:
    from signgate.kube.api import KubeApi

log = logging.getLogger("signgate")

EXIT_ALLOWED = 0
EXIT_DENIED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = _Parser(prog="signgate", description="Admit only images signed by signers you trust.")
    parser.add_argument("--version", action="version", version=f"signgate {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per line, with the admission request's uid when there is one",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    verify = commands.add_parser(
        "verify",
        help="verify image signatures against TrustPolicies or keys",
        description="Resolve each IMAGE to its digest, find its cosign signatures and check them "
        "against --policy files and/or --key public keys. Exit 0 if every image is admitted, 1 if "
        "any is denied, 2 on bad usage or configuration.",
    )
    verify.add_argument("images", nargs="+", metavar="IMAGE")
    _add_policy_arguments(verify)
    _add_registry_arguments(verify)
    verify.add_argument("--output", choices=("text", "json"), default="text")
    verify.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="one deadline for the whole run (default 30)",
    )

    serve = commands.add_parser(
        "serve",
        help="serve the admission webhook (/validate, /mutate) over HTTPS",
        description="Serve the validating and mutating admission webhook. With --policy, "
        "TrustPolicies come from files and no Kubernetes API is needed.",
    )
    serve.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="FILE",
        help="TrustPolicy YAML (repeatable)",
    )
    serve.add_argument("--tls-cert", required=True, metavar="FILE")
    serve.add_argument("--tls-key", required=True, metavar="FILE")
    serve.add_argument("--address", default="0.0.0.0", help="listen address (default 0.0.0.0)")  # noqa: S104
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument(
        "--deadline",
        type=float,
        default=8.0,
        metavar="SECONDS",
        help="time to answer one admission request (default 8, below the apiserver's 10)",
    )
    serve.add_argument(
        "--tag-ttl",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long a tag's digest may be reused (default 10)",
    )
    serve.add_argument(
        "--trusted-root",
        metavar="FILE",
        help="Sigstore trusted_root.json for keyless and transparency-log checks, re-read when "
        "it changes (default: the public-good root shipped with signgate)",
    )
    serve.add_argument(
        "--unmatched",
        choices=("deny", "warn", "allow"),
        default="deny",
        help="what to do with images no policy governs (default deny)",
    )
    serve.add_argument(
        "--pull-secret",
        metavar="NAMESPACE/NAME",
        help="operator mode: an image pull secret used for every workload, after its own "
        "imagePullSecrets and its ServiceAccount's",
    )
    serve.add_argument(
        "--status-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="operator mode: how often each TrustPolicy's status.recentDecisions may be written "
        "(default 30)",
    )
    serve.add_argument(
        "--status-last-denial",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="operator mode: name the last denial (image, object, reason) in each TrustPolicy's "
        "status; --no-status-last-denial keeps only the counts, for clusters whose tenants may "
        "read TrustPolicies but not each other's workloads",
    )
    _add_registry_arguments(serve)

    explain = commands.add_parser(
        "explain",
        help="show step by step what signgate sees for an image and why it would be admitted",
        description="Show, step by step, what signgate sees for IMAGE: its digest, every signature "
        "found (format, signer, transparency log), which policies govern it and why, how each "
        "authority judged each signature, and the verdict. Policies come from --policy/--key, "
        "or else from the cluster ($KUBECONFIG). Exit 0 if it would be admitted, 1 if not.",
    )
    explain.add_argument("image", metavar="IMAGE")
    explain.add_argument(
        "--namespace", metavar="NS", help="judge it as if in this namespace (namespaceSelector)"
    )
    _add_policy_arguments(explain)
    _add_registry_arguments(explain)
    explain.add_argument("--output", choices=("text", "json"), default="text")
    explain.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")

    audit = commands.add_parser(
        "audit",
        help="report which workloads a TrustPolicy would deny, before switching it to Enforce",
        description="Read every workload in the cluster (or the manifests under --manifests) and "
        "report, per namespace and workload, which images would be denied. Policies are the "
        "cluster's TrustPolicies, or proposed ones given with --policy/--key; by default each is "
        "judged as if in Enforce mode. Exit 0 if nothing would be denied, 1 otherwise.",
    )
    audit.add_argument(
        "--manifests",
        action="append",
        default=[],
        metavar="PATH",
        help="YAML/JSON manifest files or directories to audit instead of the live cluster",
    )
    audit.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="only these namespaces (repeatable; default all)",
    )
    audit.add_argument(
        "--current-modes",
        action="store_true",
        help="judge each policy in its own mode (Warn/Audit policies then deny nothing)",
    )
    _add_policy_arguments(audit)
    _add_registry_arguments(audit)
    audit.add_argument("--output", choices=("table", "json"), default="table")
    audit.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="deadline per workload (default 30)",
    )
    audit.add_argument("--quiet", action="store_true", help="no progress on stderr")

    crd = commands.add_parser(
        "crd",
        help="print the TrustPolicy CustomResourceDefinition",
        description="Print the TrustPolicy CRD generated from the policy model "
        "(deploy/crds/ holds its output).",
    )
    crd.add_argument("--output", choices=("yaml", "json"), default="yaml")
    return parser


def _add_policy_arguments(verify: argparse.ArgumentParser) -> None:
    verify.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="FILE",
        help="TrustPolicy YAML (repeatable)",
    )
    verify.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="FILE",
        help="PEM public key; any one valid signature admits the image, like cosign verify",
    )
    verify.add_argument(
        "--attestation",
        action="append",
        default=[],
        metavar="TYPE",
        help="with --key: require a verified attestation of this predicate type (a URI, or a "
        "cosign --type shorthand such as slsaprovenance1 or cyclonedx) instead of a signature, "
        "like cosign verify-attestation (repeatable)",
    )
    verify.add_argument(
        "--certificate-identity",
        metavar="ID",
        help="keyless: the signing certificate's identity (SAN: email or URI), exactly",
    )
    verify.add_argument(
        "--certificate-identity-regexp",
        metavar="RE",
        help="keyless: a regular expression the whole identity must match",
    )
    verify.add_argument(
        "--certificate-oidc-issuer",
        metavar="URL",
        help="keyless: the OIDC issuer in the certificate, exactly "
        "(e.g. https://token.actions.githubusercontent.com)",
    )
    verify.add_argument(
        "--certificate-oidc-issuer-regexp",
        metavar="RE",
        help="keyless: a regular expression the whole OIDC issuer must match",
    )
    verify.add_argument(
        "--trusted-root",
        metavar="FILE",
        help="Sigstore trusted_root.json for keyless and transparency-log checks "
        "(default: the public-good root shipped with signgate)",
    )
    verify.add_argument(
        "--tlog",
        choices=("require", "ignore"),
        default="ignore",
        help="transparency log for --key signatures (default: ignore, for air-gapped use)",
    )
    verify.add_argument(
        "--unmatched",
        choices=("deny", "warn", "allow"),
        default="deny",
        help="what to do with images no policy governs (default deny)",
    )


def _add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="allow plain HTTP and unverified TLS for this registry (repeatable)",
    )
    parser.add_argument(
        "--registry-ca",
        action="append",
        default=[],
        metavar="HOST:PORT=FILE",
        help="trust this PEM CA bundle for one registry, on top of the system CAs (repeatable)",
    )
    parser.add_argument(
        "--registry-config", metavar="DOCKER_CONFIG_JSON", help="credentials, as in docker login"
    )


def _read_key(path: str) -> PublicKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key {path}: {exc.strerror}") from exc
    try:
        return load_public_key_pem(data)
    except KeyFormatError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _file_policies(paths: Sequence[str]) -> list[CompiledPolicy]:
    return [
        compile_policy(policy, source=path) for path in paths for policy in load_policy_file(path)
    ]


def _policies(args: argparse.Namespace, *, allow_none: bool = False) -> list[CompiledPolicy]:
    """The policies the command line names; with ``allow_none``, [] means "the cluster's"."""
    policies = _file_policies(args.policy)
    attestations = [PREDICATE_TYPE_SHORTHANDS.get(t, t) for t in args.attestation]
    keyless = _keyless_identity(args)
    if args.key and keyless is not None:
        raise ConfigError(
            "give --key or --certificate-identity/--certificate-oidc-issuer, not both"
        )
    if args.key:
        keys = [
            (f"key-{i}" if len(args.key) > 1 else "key", _read_key(p))
            for i, p in enumerate(args.key, 1)
        ]
        policies.append(
            adhoc_key_policy(keys, requires_tlog=args.tlog == "require", attestations=attestations)
        )
    elif keyless is not None:
        policies.append(adhoc_keyless_policy(keyless, attestations=attestations))
    elif args.attestation:
        raise ConfigError(
            "--attestation needs --key or --certificate-identity (policies list theirs in "
            "spec.attestations)"
        )
    if not policies and not allow_none:
        raise ConfigError(
            "nothing to verify against: give --key FILE, --certificate-identity and "
            "--certificate-oidc-issuer, or --policy FILE"
        )
    return policies


def _keyless_identity(args: argparse.Namespace) -> CertificateIdentity | None:
    """The identity the --certificate-* flags name (cosign's flags, full-match regexps)."""
    subject = (args.certificate_identity, args.certificate_identity_regexp)
    issuer = (args.certificate_oidc_issuer, args.certificate_oidc_issuer_regexp)
    if not any(subject) and not any(issuer):
        return None
    if sum(v is not None for v in subject) != 1 or sum(v is not None for v in issuer) != 1:
        raise ConfigError(
            "keyless verification needs exactly one of --certificate-identity and "
            "--certificate-identity-regexp, and exactly one of --certificate-oidc-issuer and "
            "--certificate-oidc-issuer-regexp"
        )
    for flag, value in (
        ("--certificate-identity-regexp", args.certificate_identity_regexp),
        ("--certificate-oidc-issuer-regexp", args.certificate_oidc_issuer_regexp),
    ):
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ConfigError(
                    f"{flag} {value!r} is not a valid regular expression: {exc}"
                ) from exc
    return CertificateIdentity(
        issuer=args.certificate_oidc_issuer,
        issuer_regexp=args.certificate_oidc_issuer_regexp,
        subject=args.certificate_identity,
        subject_regexp=args.certificate_identity_regexp,
    )


def _registry_options(args: argparse.Namespace) -> RegistryOptions:
    ca_files: dict[str, str] = {}
    for item in args.registry_ca:
        host, sep, path = item.partition("=")
        if not sep or not host or not path:
            raise ConfigError(f"--registry-ca {item!r}: expected HOST:PORT=FILE")
        if not Path(path).is_file():
            raise ConfigError(f"--registry-ca {item!r}: {path} is not a readable file")
        ca_files[host.lower()] = path
    credentials = (
        CredentialStore.from_docker_config_file(args.registry_config)
        if args.registry_config
        else CredentialStore.empty()
    )
    insecure = frozenset(
        h.lower().removeprefix("http://").removeprefix("https://") for h in args.insecure_registry
    )
    return RegistryOptions(insecure_hosts=insecure, ca_files=ca_files, credentials=credentials)


def _trusted_root(args: argparse.Namespace) -> TrustedRoot:
    if not args.trusted_root:
        return default_trusted_root()
    try:
        data = Path(args.trusted_root).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read trusted root {args.trusted_root}: {exc.strerror}") from exc
    try:
        return load_trusted_root(data)
    except SigngateError as exc:
        raise ConfigError(f"{args.trusted_root}: {exc}") from exc


def _print_text(decisions: Sequence[ImageDecision], *, verbose: bool) -> None:
    for decision in decisions:
        target = decision.pinned or decision.reference or decision.image
        arrow = f" -> {target}" if decision.pinned and target != decision.image else ""
        if decision.allowed:
            signers = ", ".join(
                f"{o.policy}/{s.authority} ({s.signer}, {s.format})"
                for o in decision.outcomes
                for s in o.signatures
            )
            attested = ", ".join(
                f"{a.predicate_type} by {o.policy}/{a.authority} ({a.format})"
                for o in decision.outcomes
                for a in o.attestations
            )
            print(
                f"ALLOWED {decision.image}{arrow}"
                + (f"\n  signed by: {signers}" if signers else "")
                + (f"\n  attested: {attested}" if attested else "")
            )
            for outcome in decision.outcomes:
                if outcome.via:
                    print(f"  {outcome.policy}: covered by {outcome.via}")
        else:
            print(f"DENIED  {decision.image}{arrow}")
        for reason in decision.reasons:
            print(f"  reason: {reason}")
        for warning in decision.warnings:
            print(f"  warning: {warning}")
        for note in decision.audit:
            print(f"  audit: {note}")
        if verbose or not decision.allowed:
            for note in decision.notes:
                print(f"  note: {note}")


def decision_record(decision: ImageDecision) -> dict[str, object]:
    """One image's verdict as ``verify --output json`` prints it (also inside explain/audit)."""
    return {
        "image": decision.image,
        "reference": decision.reference,
        "digest": decision.digest,
        "pinned": decision.pinned,
        "allowed": decision.allowed,
        "reasons": list(decision.reasons),
        "warnings": list(decision.warnings),
        "audit": list(decision.audit),
        "authorities": [
            {
                "policy": o.policy,
                "authority": s.authority,
                "signer": s.signer,
                "format": str(s.format),
                "source": s.source,
                "tlogIndex": s.tlog_index,
            }
            for o in decision.outcomes
            for s in o.signatures
        ],
        "attestations": [
            {
                "policy": o.policy,
                "authority": a.authority,
                "predicateType": a.predicate_type,
                "signer": a.signer,
                "format": str(a.format),
                "source": a.source,
                "tlogIndex": a.tlog_index,
            }
            for o in decision.outcomes
            for a in o.attestations
        ],
        "coveredBy": {o.policy: o.via for o in decision.outcomes if o.via},
        "notes": list(decision.notes),
    }


def _print_json(decisions: Sequence[ImageDecision]) -> None:
    for decision in decisions:
        print(json.dumps(decision_record(decision), sort_keys=False))


async def run_verify(args: argparse.Namespace) -> int:
    """``signgate verify``: returns the exit status."""
    policies = _policies(args)
    options = _registry_options(args)
    trusted_root = _trusted_root(args)
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    async with RegistryClient(options) as client:
        verifier = Verifier(
            client, trusted_root=trusted_root, settings=VerifierSettings(unmatched=args.unmatched)
        )
        decisions = await verifier.verify_images(
            args.images, policies, Deadline.after(args.timeout)
        )
    if args.output == "json":
        _print_json(decisions)
    else:
        _print_text(decisions, verbose=args.verbose > 0)
    return EXIT_ALLOWED if all(d.allowed for d in decisions) else EXIT_DENIED


async def _cluster_view(
    args: argparse.Namespace, policies: list[CompiledPolicy], need_cluster: bool
) -> tuple[KubeApi | None, list[CompiledPolicy], dict[str, dict[str, str]] | None]:
    """(API client, policies, namespace labels): from the command line, else from the cluster."""
    if policies and not need_cluster:
        return None, policies, None
    from signgate.kube import snapshot  # Kopf is only imported when a cluster is used
    from signgate.kube.api import KubeApiError

    api = snapshot.connect()
    try:
        labels = await snapshot.namespace_labels(api)
        if not policies:
            namespace = os.environ.get("POD_NAMESPACE") or "signgate"
            policies = await snapshot.cluster_policies(api, namespace)
    except KubeApiError as exc:
        await api.close()
        raise ConfigError(f"cannot read the cluster: {exc}") from exc
    return api, policies, labels


async def run_explain(args: argparse.Namespace) -> int:
    """``signgate explain``: returns 0 if the image would be admitted, 1 if not."""
    from signgate.explain import explain_image, render_text, to_json

    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    policies = _policies(args, allow_none=True)
    options = _registry_options(args)
    trusted_root = _trusted_root(args)
    api, policies, labels = await _cluster_view(args, policies, need_cluster=False)
    if api is not None:
        await api.close()
    namespace_labels = None
    if args.namespace:
        namespace_labels = (labels or {}).get(
            args.namespace, {"kubernetes.io/metadata.name": args.namespace}
        )
    async with RegistryClient(options) as client:
        verifier = Verifier(
            client, trusted_root=trusted_root, settings=VerifierSettings(unmatched=args.unmatched)
        )
        explanation = await explain_image(
            verifier,
            args.image,
            policies,
            Deadline.after(args.timeout),
            namespace=args.namespace,
            namespace_labels=namespace_labels,
        )
    if args.output == "json":
        print(json.dumps(to_json(explanation, decision_record(explanation.decision)), indent=2))
    else:
        sys.stdout.write(render_text(explanation))
    return EXIT_ALLOWED if explanation.decision.allowed else EXIT_DENIED


async def run_audit(args: argparse.Namespace) -> int:
    """``signgate audit``: returns 0 if nothing would be denied, 1 otherwise."""
    from signgate import audit

    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    policies = _policies(args, allow_none=True)
    options = _registry_options(args)
    trusted_root = _trusted_root(args)
    workloads, skipped = audit.workloads_from_manifests(args.manifests)
    api, policies, labels = await _cluster_view(args, policies, need_cluster=not args.manifests)
    try:
        if api is not None and not args.manifests:
            from signgate.kube import snapshot
            from signgate.kube.api import KubeApiError

            progress_line("signgate audit: listing workloads", args.quiet)
            try:
                listed = await snapshot.cluster_workloads(api, args.namespace)
            except KubeApiError as exc:
                raise ConfigError(f"cannot list workloads: {exc}") from exc
            for kind, body in listed:
                body = {"apiVersion": kind.api_version, "kind": kind.kind, **body}
                workload = audit.workload_of(body, "cluster", "default")
                if workload is not None:
                    workloads.append(workload)
        if args.namespace:
            workloads = [w for w in workloads if w.namespace in args.namespace]
        credentials_for = None
        if api is not None and not args.manifests:
            from signgate.kube.pullsecrets import PullSecretResolver

            credentials_for = PullSecretResolver(api)
        async with RegistryClient(options) as client:
            verifier = Verifier(
                client,
                trusted_root=trusted_root,
                settings=VerifierSettings(unmatched=args.unmatched),
            )
            report = await audit.run_audit(
                workloads,
                engine=verifier,
                policies=policies,
                namespace_labels=labels,
                as_enforce=not args.current_modes,
                deadline_seconds=args.timeout,
                credentials_for=credentials_for,
                progress=None if args.quiet else audit.progress_printer(),
                skipped=skipped,
            )
    finally:
        if api is not None:
            await api.close()
    if args.output == "json":
        audit.dump_json(audit.to_json(report, decision_record), sys.stdout)
    else:
        audit.render_table(report, sys.stdout)
    return EXIT_ALLOWED if all(r.allowed for r in report.results) else EXIT_DENIED


def progress_line(text: str, quiet: bool) -> None:
    """A progress line on stderr, unless ``--quiet``."""
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _pull_secret(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ConfigError(f"--pull-secret {value!r}: expected NAMESPACE/NAME")
    return namespace, name


async def run_serve(args: argparse.Namespace) -> int:
    """``signgate serve``: serve until SIGTERM or SIGINT; returns the exit status.

    With ``--policy`` the TrustPolicies come from files; without, this is the operator: Kopf
    watches TrustPolicies (and namespaces) in the cluster it is logged into.
    """
    # The webhook server, its metrics and their dependencies load only for `serve`: `verify` is
    # run once per CI step, and every import is start-up time.
    from signgate.admission.server import ServerSettings, make_app, running_server
    from signgate.metrics import Metrics
    from signgate.policy.sources import StaticPolicySource
    from signgate.trusted_root_file import TrustedRootFile

    policies = _file_policies(args.policy)
    options = _registry_options(args)
    trusted_root = _trusted_root(args)
    _pull_secret(args.pull_secret)
    if args.policy and args.pull_secret:
        raise ConfigError("--pull-secret needs the operator mode (no --policy)")
    if args.deadline <= 0:
        raise ConfigError("--deadline must be positive")
    if args.tag_ttl < 0:
        raise ConfigError("--tag-ttl must not be negative")
    if args.status_interval < 1:
        raise ConfigError("--status-interval must be at least 1 second")
    settings = ServerSettings(
        tls_cert=Path(args.tls_cert),
        tls_key=Path(args.tls_key),
        address=args.address,
        port=args.port,
        deadline_seconds=args.deadline,
    )
    engine_settings = VerifierSettings(
        unmatched=args.unmatched, cache=CacheSettings(tag_ttl=args.tag_ttl)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with RegistryClient(options) as client:
        engine = Verifier(client, trusted_root=trusted_root, settings=engine_settings)
        root_watch: asyncio.Task[None] | None = None
        if args.trusted_root:
            root_file = TrustedRootFile(Path(args.trusted_root), engine)
            root_watch = asyncio.create_task(root_file.watch(stop), name="trusted-root-watch")
        try:
            if not args.policy:
                from signgate.kube.run import run_operator  # Kopf is only imported when needed

                await run_operator(
                    engine=engine,
                    server=settings,
                    stop=stop,
                    global_pull_secret=_pull_secret(args.pull_secret),
                    status_interval=args.status_interval,
                    status_last_denial=args.status_last_denial,
                )
                return 0
            app = make_app(
                engine=engine,
                policies=StaticPolicySource(policies),
                settings=settings,
                metrics=Metrics(engine),
            )
            async with running_server(app, settings) as (_, _, port):
                log.info(
                    "serving /validate and /mutate on https://%s:%d with %d TrustPolicies from %s",
                    args.address,
                    port,
                    len(policies),
                    ", ".join(args.policy),
                )
                await stop.wait()
                log.info("stopping")
        except OSError as exc:
            raise ConfigError(f"cannot listen on {args.address}:{args.port}: {exc}") from exc
        finally:
            if root_watch is not None:
                root_watch.cancel()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``signgate`` console script."""
    args = build_parser().parse_args(argv)
    base = logging.INFO if args.command == "serve" else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        from pythonjsonlogger.json import JsonFormatter  # a Kopf dependency

        # Kopf's log records carry objects of its own in ``extra``: write those as text rather
        # than failing the whole record.
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True, json_default=str
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=base - 10 * min(args.verbose, 2), handlers=[handler])
    try:
        if args.command == "verify":
            return asyncio.run(run_verify(args))
        if args.command == "serve":
            return asyncio.run(run_serve(args))
        if args.command == "explain":
            return asyncio.run(run_explain(args))
        if args.command == "audit":
            return asyncio.run(run_audit(args))
        if args.command == "crd":
            from signgate.policy.crd import render_crd

            sys.stdout.write(render_crd(args.output))
            return 0
    except ConfigError as exc:
        print(f"signgate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unknown command {args.command}")  # pragma: no cover
