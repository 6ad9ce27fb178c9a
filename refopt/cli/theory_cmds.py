"""Sub-commands ``refopt bound`` and ``refopt mantissa`` (the theory calculators).

``refopt bound adam|muon|defossez`` prints a bound's term table for the default example
problem (:data:`refopt.theory.EXAMPLES`) under the paper's schedule, with optional
formats or mantissa lengths per component; ``refopt mantissa`` prints the mantissa budget
per component and the preset formats that meet it, or, with ``--formats``, the largest
horizon for which the given formats stay within the tolerance.
"""

from __future__ import annotations

import argparse
import math

from refopt.formats import FloatFormat
from refopt.theory import (
    EXAMPLES,
    component_errors,
    defossez_adagrad,
    defossez_adam,
    defossez_adam_momentum,
    largest_horizon,
    mantissa_budget,
    paper_schedule,
    scheduled_bound,
)
from refopt.theory.result import check_q

__all__ = ["register"]


def _horizon(text: str) -> int:
    try:
        val = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not val >= 1 or val != int(val):
        raise argparse.ArgumentTypeError(f"T must be an integer >= 1, got {text!r}")
    return int(val)


def _spec(text: str) -> dict[str, object]:
    """Parse ``W=bf16,G=fp8_e5m2,m=7,v=exact`` (a format name, mantissa bits or exact)."""
    out: dict[str, object] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, val = item.partition("=")
        if not sep or not key or not val:
            raise ValueError(f"--formats expects COMPONENT=FORMAT items, got {item!r}")
        out[key.strip()] = (None if val in ("exact", "none", "fp64-exact")
                            else int(val) if val.isdigit() else val.strip())
    return out


def _constants(args: argparse.Namespace, optimizer: str) -> dict[str, float]:
    consts = dict(EXAMPLES[optimizer])
    for key in consts:
        val = getattr(args, key, None)
        if val is not None:
            consts[key] = val
    if getattr(args, "weight_norm", None) is not None:
        consts["weight_norm"] = args.weight_norm
    return consts


def _schedule(args: argparse.Namespace, optimizer: str):  # noqa: ANN202
    def sched(T: int) -> dict[str, float]:
        hyper = paper_schedule(optimizer, T)
        if args.lr is not None:
            hyper["alpha" if optimizer == "adam" else "eta"] = args.lr
        if optimizer == "adam" and args.b2 is not None:
            hyper["b2"] = args.b2
        if optimizer == "muon" and args.beta is not None:
            hyper["beta"] = args.beta
        return hyper
    return sched


def _errors(args: argparse.Namespace) -> dict[str, float]:
    q = component_errors(_spec(args.formats), args.rounding) if args.formats else {}
    for comp in ("W", "G", "M", "V"):
        val = getattr(args, f"q_{comp.lower()}")
        if val is not None:
            q[comp] = check_q(f"--q-{comp.lower()}", val)
    return q


def _bits(q: float, rounding: str) -> str:
    """The mantissa length whose unit roundoff is ``q`` (``exact`` for 0)."""
    if q == 0.0:
        return "exact"
    return f"{math.log2(FloatFormat.mantissa_only(0).unit_roundoff(rounding) / q):.3g}"


def _bound(args: argparse.Namespace) -> int:
    for T in args.T:
        if args.which == "defossez":
            consts = _constants(args, "adam")
            hyper = _schedule(args, "adam")(T)
            common = dict(eps=consts["eps"], d=consts["d"], R=consts["R"], L=consts["L"],
                          delta=consts["delta"])
            if args.theorem == 1:
                res = defossez_adagrad(T, hyper["alpha"], **common)
            elif args.theorem == 2:
                res = defossez_adam(T, hyper["alpha"], hyper["b2"], **common)
            else:
                res = defossez_adam_momentum(T, hyper["alpha"], consts["b1"], hyper["b2"], **common)
        else:
            q = _errors(args)
            if args.which == "muon":
                q.pop("V", None)
            consts, sched = _constants(args, args.which), _schedule(args, args.which)
            res = scheduled_bound(args.which, T, q, consts, sched)
            if q:
                print(f"relative errors ({args.rounding}):")
                for comp, val in q.items():
                    print(f"  q_{comp} = {val:.3g}  (~{_bits(val, args.rounding)} mantissa bits)")
        print(res)
        if args.which != "defossez" and q and res.valid:
            full = scheduled_bound(args.which, T, None, consts, sched).value
            print(f"  full precision (all q = 0): {full:.4g}; quantized / full = "
                  f"{res.value / full:.4g}")
    return 0


def _mantissa(args: argparse.Namespace) -> int:
    consts = _constants(args, args.optimizer)
    sched = _schedule(args, args.optimizer)
    if args.formats:
        spec = _spec(args.formats)
        T = largest_horizon(args.optimizer, spec, rho=args.rho, rounding=args.rounding,
                            constants=consts, schedule=sched)
        print(f"largest T with {args.formats} ({args.rounding}) within rho = {args.rho:g} "
              f"of full precision: {T}")
        return 0
    for T in args.T:
        print(mantissa_budget(args.optimizer, T, rho=args.rho, rounding=args.rounding,
                              constants=consts, schedule=sched))
    return 0


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--T", type=_horizon, nargs="+", default=[10_000],
                   help="horizon(s), e.g. --T 1e3 1e4 (default 1e4)")
    p.add_argument("--rounding", default="nearest_even",
                   help="rounding mode that sets q = unit roundoff (default nearest_even)")
    p.add_argument("--formats", default=None,
                   help="per component FORMAT, mantissa bits or 'exact', "
                        "e.g. W=bf16,G=fp8_e5m2,m=bf16,v=fp16 or W=23,G=7")
    p.add_argument("--lr", type=float, default=None,
                   help="step size (default: the paper's schedule, 1/sqrt(T) or T^-3/4)")
    p.add_argument("--b2", type=float, default=None, help="Adam beta2 (default 1 - 1/T)")
    p.add_argument("--beta", type=float, default=None, help="Muon momentum (default 1 - T^-1/2)")
    for key in sorted({k for ex in EXAMPLES.values() for k in ex}):
        conv = int if key in ("d", "rank") else float
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, type=conv, default=None,
                       help=f"problem constant {key} (example default: "
                            f"{EXAMPLES['adam'].get(key, EXAMPLES['muon'].get(key))})")
    p.add_argument("--weight-norm", type=float, default=None,
                   help="bound on the weight norm (default: worst-case growth from x0/w0 norm)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bound`` and ``mantissa`` to the ``refopt`` command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-parser collection of the main parser.
    """
    p = subparsers.add_parser(
        "bound", help="print a convergence bound's term table",
        description="Evaluate a bound for the default example problem under the paper's "
                    "schedule and print its terms and conditions.")
    p.add_argument("which", choices=("adam", "muon", "defossez"))
    _add_common(p)
    for comp in ("w", "g", "m", "v"):
        p.add_argument(f"--q-{comp}", type=float, default=None,
                       help=f"relative error q_{comp.upper()} (overrides --formats)")
    p.add_argument("--theorem", type=int, choices=(1, 2, 4), default=4,
                   help="defossez, TMLR numbering: 1 = Adagrad; 2 = Adam with b1 = 0 (called "
                        "'Theorem 1 (b1 = 0)' elsewhere); 4 = Adam with 0 <= b1 < b2 < 1 "
                        "('Theorem 2' elsewhere). Default 4")
    p.set_defaults(func=_bound)

    m = subparsers.add_parser(
        "mantissa", help="mantissa bits per component for a horizon T (or the largest T)",
        description="Minimal mantissa length per component so that refopt's bound stays "
                    "within a fraction rho of the full-precision bound; with --formats, the "
                    "largest horizon for which the given formats do.")
    m.add_argument("--optimizer", choices=("adam", "muon"), default="adam")
    m.add_argument("--rho", type=float, default=0.1, help="tolerance (default 0.1)")
    _add_common(m)
    m.set_defaults(func=_mantissa)
