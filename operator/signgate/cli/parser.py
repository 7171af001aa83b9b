"""The ``signgate`` command line's arguments and exit statuses: declarations only.

Importing this module imports nothing but argparse: ``signgate --help`` and a usage error cost
no start-up time, and each command module imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from signgate import __version__

EXIT_ALLOWED = 0
"""Every image admitted (verify, explain), nothing would be denied (audit), clean stop (serve)."""
EXIT_DENIED = 1
"""At least one image denied, or one workload would be."""
EXIT_USAGE = 2
"""Bad usage or configuration, with a one-line error on stderr."""


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
    add_policy_arguments(verify)
    add_registry_arguments(verify)
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
        "--client-ca",
        metavar="FILE",
        help="only callers presenting a client certificate issued by this CA (PEM) may POST to "
        "/validate and /mutate, i.e. the kube-apiserver when its AdmissionConfiguration sends "
        "one; others get HTTP 403. /healthz, /readyz and /metrics need none",
    )
    serve.add_argument(
        "--client-name",
        action="append",
        default=[],
        metavar="NAME",
        help="with --client-ca: the client certificate's subject CN or a DNS name must be one of "
        "these (repeatable; default: any certificate the CA issued)",
    )
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
    add_registry_arguments(serve)

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
    add_policy_arguments(explain)
    add_registry_arguments(explain)
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
    add_policy_arguments(audit)
    add_registry_arguments(audit)
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


def add_policy_arguments(verify: argparse.ArgumentParser) -> None:
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


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
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
