"""``signgate explain IMAGE``: what signgate sees for one image, step by step, and its verdict.
Exit 0 if it would be admitted, 1 if not, 2 on bad usage."""

from __future__ import annotations

import argparse
import json
import sys

from signgate.cli.options import cluster_view, command_line_policies, engine_setup, require_positive
from signgate.cli.parser import EXIT_ALLOWED, EXIT_DENIED
from signgate.cli.records import decision_record
from signgate.deadline import Deadline
from signgate.explain import explain_image, render_text, to_json


async def run_explain(args: argparse.Namespace) -> int:
    """``signgate explain``: returns 0 if the image would be admitted, 1 if not."""
    require_positive(args.timeout, "--timeout")
    setup = engine_setup(args, command_line_policies(args, allow_none=True))
    api, policies, labels = await cluster_view(setup.policies, need_cluster=False)
    if api is not None:
        await api.close()
    namespace_labels = None
    if args.namespace:
        namespace_labels = (labels or {}).get(
            args.namespace, {"kubernetes.io/metadata.name": args.namespace}
        )
    async with setup.engine() as engine:
        explanation = await explain_image(
            engine,
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
