"""``signgate verify IMAGE...``: check images the way the admission webhook would, from a shell or
a CI pipeline. Exit 0 if every image is admitted, 1 if any is denied, 2 on bad usage."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from signgate.cli.options import command_line_policies, engine_setup, require_positive
from signgate.cli.parser import EXIT_ALLOWED, EXIT_DENIED
from signgate.cli.records import decision_record
from signgate.deadline import Deadline
from signgate.policy.evaluate import ImageDecision


async def run_verify(args: argparse.Namespace) -> int:
    """``signgate verify``: returns the exit status."""
    setup = engine_setup(args, command_line_policies(args))
    require_positive(args.timeout, "--timeout")
    async with setup.engine() as engine:
        decisions = await engine.verify_images(
            args.images, setup.policies, Deadline.after(args.timeout)
        )
    if args.output == "json":
        _print_json(decisions)
    else:
        _print_text(decisions, verbose=args.verbose > 0)
    return EXIT_ALLOWED if all(d.allowed for d in decisions) else EXIT_DENIED


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


def _print_json(decisions: Sequence[ImageDecision]) -> None:
    for decision in decisions:
        print(json.dumps(decision_record(decision), sort_keys=False))
