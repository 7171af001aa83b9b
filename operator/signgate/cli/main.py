"""Dispatch: parse the arguments, set up logging, run one command, map errors to exit statuses.

Each command's module is imported only when that command runs: ``signgate verify`` in a CI step
pays for the engine, not for the webhook server, Kopf or the CRD generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import Iterator, Sequence

from signgate.cli.parser import EXIT_USAGE, build_parser
from signgate.errors import ConfigError


def _setup_logging(command: str, verbose: int, log_format: str) -> None:
    base = logging.INFO if command == "serve" else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
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
    logging.basicConfig(level=base - 10 * min(verbose, 2), handlers=[handler])


@contextlib.contextmanager
def _one_shot_imports(whole_process: bool) -> Iterator[None]:
    """Around the import of a one-shot command's module, in a process that runs only that command.

    The import makes ~60k objects (modules, classes, functions) that live until the process exits.
    The garbage collector need not walk them while they are made, nor in any later collection or
    at exit (`gc.freeze`): 60-80 ms of a ``signgate verify`` process (issue 14). Objects made
    afterwards are collected as usual. A caller's process (``main(argv)`` in tests) is left alone.
    """
    if not whole_process:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``signgate`` console script and ``python -m signgate``.

    Without ``argv`` (the process's own arguments) the process is taken to be this command's.
    """
    args = build_parser().parse_args(argv)
    _setup_logging(args.command, args.verbose, args.log_format)
    whole_process = argv is None
    try:
        if args.command == "verify":
            with _one_shot_imports(whole_process):
                from signgate.cli.verify import run_verify

            return asyncio.run(run_verify(args))
        if args.command == "serve":
            from signgate.cli.serve import run_serve

            return asyncio.run(run_serve(args))
        if args.command == "explain":
            with _one_shot_imports(whole_process):
                from signgate.cli.explain import run_explain

            return asyncio.run(run_explain(args))
        if args.command == "audit":
            with _one_shot_imports(whole_process):
                from signgate.cli.audit import run_audit

            return asyncio.run(run_audit(args))
        if args.command == "crd":
            from signgate.cli.crd import run_crd

            return run_crd(args)
    except ConfigError as exc:
        print(f"signgate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unknown command {args.command}")  # pragma: no cover
