"""The ``signgate`` command line: ``verify``, ``serve``, ``explain``, ``audit`` and ``crd``.

`main` is the console script. Modules: `parser` (the arguments and exit statuses), `options`
(arguments to policies, registry options, trusted root and engine: one builder for every
command), `records` (a verdict as JSON), and one module per command.
"""

from signgate.cli.main import main
from signgate.cli.parser import EXIT_ALLOWED, EXIT_DENIED, EXIT_USAGE, build_parser

__all__ = ["EXIT_ALLOWED", "EXIT_DENIED", "EXIT_USAGE", "build_parser", "main"]
