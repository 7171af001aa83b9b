"""``signgate crd``: print the TrustPolicy CustomResourceDefinition generated from the model."""

from __future__ import annotations

import argparse
import sys

from signgate.cli.parser import EXIT_ALLOWED
from signgate.policy.generate.crd import render_crd


def run_crd(args: argparse.Namespace) -> int:
    """Write the CRD as YAML or JSON to stdout."""
    sys.stdout.write(render_crd(args.output))
    return EXIT_ALLOWED
