"""``refopt reproduce`` and ``refopt run``: the experiments from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``reproduce`` and ``run`` to the ``refopt`` command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-command registry of the ``refopt`` parser.
    """
    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's experiments and write figures, results.json and report.md",
        description="Run the seven studies (Rosenbrock mantissa sweep, ablation, b2, the condition, "
        "fixed-precision floors, fp16 underflow, MLP), resuming finished cells found in --out.",
    )
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--quick", dest="scale", action="store_const", const="quick",
                       help="about a minute on two cores (default)")
    scale.add_argument("--full", dest="scale", action="store_const", const="full",
                       help="the paper's scale: 10,000 Rosenbrock iterations, CIFAR-10 when given")
    p.set_defaults(scale="quick")
    p.add_argument("--out", default="refopt-results", help="results directory (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of CPUs, %(default)s)")
    p.add_argument("--data", default=None,
                   help="CIFAR-10 python-version directory or tarball (default: $REFOPT_DATA; "
                   "without it the MLP study uses scikit-learn's digits)")
    p.add_argument("--study", action="append", dest="studies", metavar="NAME",
                   help="run only this study (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (for CI); errors still print")
    p.set_defaults(func=_reproduce)

    r = subparsers.add_parser(
        "run",
        help="run one cell of a study and print its result as JSON",
        description="Run a single cell. Parameters default to the study's first cell; override them "
        "with KEY=VALUE (VALUE parsed as JSON when possible, e.g. steps=500 format=\"M8\").",
    )
    r.add_argument("study", help="study name (mantissa, ablation, beta2, condition, floors, underflow, mlp)")
    r.add_argument("params", nargs="*", metavar="KEY=VALUE", help="cell parameters to override")
    r.add_argument("--scale", choices=("quick", "full"), default="quick", help="grid the defaults come from")
    r.add_argument("--seed", type=int, default=None, help="study seed (default: the study's own)")
    r.add_argument("--data", default=None, help="CIFAR-10 location (mlp study)")
    r.add_argument("--series", action="store_true", help="include the recorded series, not only final values")
    r.set_defaults(func=_run)


def _reproduce(args: argparse.Namespace) -> int:
    from refopt.experiments.reproduce import reproduce

    reproduce(args.out, scale=args.scale, jobs=args.jobs, data=args.data, studies=args.studies,
              progress=not args.quiet, log=sys.stderr)
    return 0


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _run(args: argparse.Namespace) -> int:
    from refopt.experiments.cells import CELLS
    from refopt.experiments.runner import cell_seed
    from refopt.experiments.studies import get_study

    spec = get_study(args.study, args.scale, args.data)
    params = dict(spec.cells[0])
    for item in args.params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"parameters must be KEY=VALUE, got {item!r}")
        params[key] = _parse_value(value)
    fn = CELLS[spec.cell][0]
    seed = spec.seed if args.seed is None else args.seed
    if seed < 0:
        raise ValueError(f"--seed must be non-negative, got {seed}")
    result = fn(params, cell_seed(seed, spec.name, params))
    if not args.series:
        result = {k: v for k, v in result.items() if not isinstance(v, list)}
    json.dump({"study": spec.name, "params": params, "result": result}, sys.stdout, indent=1)
    print()
    return 0
