"""``signgate audit``: which workloads of the cluster (or of manifest files) the TrustPolicies
would deny. Exit 0 if none would be, 1 otherwise, 2 on bad usage."""

from __future__ import annotations

import argparse
import sys

from signgate import audit
from signgate.cli.options import cluster_view, command_line_policies, engine_setup, require_positive
from signgate.cli.parser import EXIT_ALLOWED, EXIT_DENIED
from signgate.cli.records import decision_record


async def run_audit(args: argparse.Namespace) -> int:
    """``signgate audit``: returns 0 if nothing would be denied, 1 otherwise."""
    require_positive(args.timeout, "--timeout")
    setup = engine_setup(args, command_line_policies(args, allow_none=True))
    workloads, skipped = audit.workloads_from_manifests(args.manifests)
    api, policies, labels = await cluster_view(setup.policies, need_cluster=not args.manifests)
    try:
        credentials_for = None
        if api is not None and not args.manifests:
            workloads += await audit.cluster_workloads(api, args.namespace, quiet=args.quiet)
            from signgate.kube.pullsecrets import PullSecretResolver

            credentials_for = PullSecretResolver(api)
        if args.namespace:
            workloads = [w for w in workloads if w.namespace in args.namespace]
        async with setup.engine() as engine:
            report = await audit.run_audit(
                workloads,
                engine=engine,
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
