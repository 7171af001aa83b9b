"""What a ``signgate verify --key`` process may load (issue 14: start-up time).

A verify process is mostly Python start-up and imports: pydantic and YAML are for ``--policy``
files and the cluster, rfc3161-client for signatures that carry a timestamp, PyNaCl for Ed25519ph
signatures, Kopf, prometheus-client and the admission server for ``serve``. The tests that use
this (tests/unit/cli/test_start_up_imports.py, tests/integration/test_verify_start_up.py) pin the
modules a fresh interpreter loads, so that an eager import slipping back in fails a test instead
of slowly showing up in bench/perf.py. They assert no timing.
"""

from __future__ import annotations

from collections.abc import Iterable

NOT_AT_START_UP = (
    "kopf",
    "prometheus_client",
    "pythonjsonlogger",
    "pydantic",
    "pydantic_core",
    "yaml",
    "rfc3161_client",
    "nacl",
    "aiohttp.web",
    "signgate.admission",
    "signgate.kube",
    "signgate.audit",
    "signgate.explain",
    "signgate.policy.model",
    "signgate.policy.loading",
    "signgate.policy.generate",
    "signgate.signatures.timestamp",
    "signgate.cli.serve",
    "signgate.cli.explain",
    "signgate.cli.audit",
    "signgate.cli.crd",
)
"""Modules (and their submodules) that ``signgate verify --key`` must not load."""

VERIFY_NEEDS = ("aiohttp", "signgate.engine.verifier", "signgate.signatures.verify")
"""Loaded by every verification: their presence shows the check looked at the right process."""


def unwanted(modules: Iterable[str]) -> list[str]:
    """The modules in ``modules`` that are, or are inside, one of `NOT_AT_START_UP`."""
    return sorted(
        m for m in modules if any(m == n or m.startswith(f"{n}.") for n in NOT_AT_START_UP)
    )
