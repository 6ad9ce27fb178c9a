"""The ``refopt`` command line (also ``python -m refopt``).

Each sub-command lives in a small module of this package that exposes
``register(subparsers)``; :func:`main` only assembles them and dispatches.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from refopt.cli import experiment_cmds, optim_cmds, quantize_cmds, theory_cmds

_COMMAND_MODULES = (quantize_cmds, optim_cmds, theory_cmds, experiment_cmds)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``refopt`` command.

    Returns
    -------
    argparse.ArgumentParser
        A parser with one sub-command per registered command module.
    """
    from refopt import __version__

    parser = argparse.ArgumentParser(
        prog="refopt",
        description=(
            "Reference implementation of adaptive optimizers under floating-point "
            "quantization (Tang, Li, Zou; arXiv 2510.21314)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"refopt {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``refopt`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments without the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        The process exit status: 0 on success, 2 for a usage error, other values as
        documented by each sub-command.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"refopt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``refopt formats | head``): stop quietly, as Unix tools
        # do. Point stdout at devnull so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
