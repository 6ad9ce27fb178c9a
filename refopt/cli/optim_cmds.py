"""``refopt vectors`` (golden vectors) and ``refopt check`` (the oracle checker)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``vectors`` and ``check`` sub-commands to ``subparsers``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``refopt`` parser's sub-command registry.
    """
    p = subparsers.add_parser(
        "vectors",
        help="write golden vectors (quantizer edge sets, optimizer traces) and a JSON manifest",
        description="Write golden vectors other implementations can test against without Python: "
        "quantize.npz (every preset format and deterministic rounding mode on an edge set, bit "
        "patterns as hex), one .npz trace per optimizer and precision policy, and manifest.json.",
    )
    p.add_argument("--out", required=True, help="output directory (created if needed)")
    p.add_argument("--steps", type=int, default=20, help="steps of each optimizer trace (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the test problems (default 0)")
    p.set_defaults(func=_vectors)

    c = subparsers.add_parser(
        "check",
        help="find the first divergence of a trace from refopt's reference",
        description="Recompute refopt's reference for THEIR_TRACE.npz from the inputs it stores (its "
        "config, first weights and per-step oracle gradients), or compare with a reference trace "
        "(--against), and report the first divergence: step, component, index, both values and "
        "their distance in ULPs of the component's format. Exit status 0 when they agree, 1 when "
        "they diverge, 2 for unusable input.",
    )
    c.add_argument("trace", help="the trace to check (.npz in refopt's trace layout)")
    c.add_argument("--against", default=None, help="a reference trace to compare with instead of recomputing")
    c.add_argument("--ulps", type=float, default=0.0, help="tolerance in ULPs of each component's format (default 0)")
    c.set_defaults(func=_check)


def _vectors(args: argparse.Namespace) -> int:
    from refopt.optim import write_vectors

    manifest = write_vectors(args.out, steps=args.steps, seed=args.seed)
    n = len(manifest["traces"])
    print(f"wrote quantize.npz, {n} optimizer traces and manifest.json to {args.out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from refopt.optim import check_trace

    report = check_trace(args.trace, against=args.against, ulps=args.ulps)
    print(report)
    return 0 if report.ok else 1
