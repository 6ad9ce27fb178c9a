"""``refopt formats`` and ``refopt quantize``: the formats and the quantizer as teaching tools."""

from __future__ import annotations

import argparse
import math
import re
from decimal import Decimal
from fractions import Fraction

_MANTISSA_ONLY = re.compile(r"mantissa_only\((\d+)\)$")
_DIGITS_SHOWN = 40
_NEGATIVE_VALUE = re.compile(
    r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^-(inf|infinity|nan)$|^-0[xX][0-9a-fA-F.]+([pP][+-]?\d+)?$",
    re.IGNORECASE,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``formats`` and ``quantize`` to the ``refopt`` command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The sub-command registry of the ``refopt`` parser.
    """
    from refopt.formats import ROUNDING_MODES

    f = subparsers.add_parser(
        "formats",
        help="list the floating-point format presets and their ranges",
        description="Print every preset of refopt.list_formats() with its exponent bits E, "
        "mantissa bits M, bias, exponent range, smallest normal and subnormal, largest "
        "value, machine epsilon, what the top binade holds and the overflow policy.",
    )
    f.set_defaults(func=_formats)

    q = subparsers.add_parser(
        "quantize",
        help="round numbers into a format and show the bits and the error",
        description="Round each VALUE (read as the nearest float64; decimal, 'inf', 'nan' or "
        "a hex float such as 0x1.8p-3) once into --format, and show the result, its exact "
        "decimal value, its bit fields, and the relative error next to the unit roundoff.",
    )
    # negative VALUEs such as -1e-9, -inf or -0x1p-3 are values, not options
    q._negative_number_matcher = _NEGATIVE_VALUE  # the hook argparse itself consults
    q.add_argument("values", nargs="+", metavar="VALUE", help="numbers to round")
    q.add_argument("--format", "-f", dest="fmt", required=True, metavar="NAME",
                   help="a preset (see 'refopt formats') or mantissa_only(M)")
    q.add_argument("--rounding", "-r", default="nearest_even", choices=ROUNDING_MODES,
                   help="rounding mode (default: %(default)s)")
    q.add_argument("--seed", type=int, default=None,
                   help="seed of the uniform draws; required with --rounding stochastic")
    q.set_defaults(func=_quantize)


def _parse_format(text: str):  # -> FloatFormat
    from refopt.formats import FloatFormat, format

    match = _MANTISSA_ONLY.match(text.replace(" ", ""))
    if match:
        return FloatFormat.mantissa_only(int(match.group(1)))
    return format(text)


def _parse_value(text: str) -> float:
    try:
        if re.fullmatch(r"[+-]?0[xX].*", text.strip()):
            return float.fromhex(text)
        return float(text)
    except ValueError:
        raise ValueError(
            f"VALUE {text!r} is not a number (use decimal, inf, nan or a hex float like 0x1.8p-3)"
        ) from None


def _pow2(value: float) -> str:
    """``2^k`` for an exact power of two, else a short decimal."""
    m, e = math.frexp(value)
    return f"2^{e - 1}" if m == 0.5 else f"{value:.6g}"


def _formats(args: argparse.Namespace) -> int:
    from refopt.formats import list_formats

    header = ("name", "E", "M", "bias", "emin", "emax", "xmin", "xmin_sub", "xmax", "eps",
              "top", "overflow")
    rows = [
        (name, str(f.exponent_bits), str(f.mantissa_bits), str(f.bias), str(f.emin),
         str(f.emax), _pow2(f.xmin), _pow2(f.xmin_subnormal), f"{f.xmax:.6g}", _pow2(f.eps),
         f.top_binade + ("" if f.has_nan else ", no NaN"), f.overflow)
        for name, f in list_formats().items()
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    left = {0, 10, 11}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for row in rows:
        print(line(row))
    print()
    print("xmin: smallest normal; xmin_sub: smallest positive value (subnormal); "
          "eps = 2^-M; unit roundoff: eps/2 for nearest modes, eps otherwise.")
    print("top binade: ieee = inf/NaN codes; fn = finite (NaN only at all-ones); "
          "fnuz = finite, NaN at -0, no negative zero.")
    print("Also available: mantissa_only(M) = M mantissa bits with float64's exponent range.")
    return 0


def _exact_decimal(value: float) -> str:
    """All digits of a float's exact decimal value (abbreviated when very long)."""
    if not math.isfinite(value) or value == 0 or 1e-5 <= abs(value) < 1e16:
        text, exponent = format(Decimal(value), "f"), ""
    else:
        text, _, exponent = format(Decimal(value), "e").partition("e")
        text, exponent = (text.rstrip("0").rstrip(".") if "." in text else text), f"e{exponent}"
    digits = sum(ch.isdigit() for ch in text)
    if digits <= _DIGITS_SHOWN:
        return text + exponent
    return f"{text[:_DIGITS_SHOWN + 2]}...{exponent}  ({digits} digits)"


def _bit_fields(fmt, q: float) -> str:  # fmt: FloatFormat
    try:
        code = fmt.encode(q)
    except ValueError:
        return f"(no encoding: {fmt.name or 'this format'} has no NaN code)"
    E, M = fmt.exponent_bits, fmt.mantissa_bits
    bits = f"{code:0{fmt.bits}b}"
    hex_width = (fmt.bits + 3) // 4
    mant = bits[1 + E:] if M else "-"
    return f"{bits[0]} | {bits[1:1 + E]} | {mant}   (sign | exponent | mantissa)   0x{code:0{hex_width}X}"


def _value_class(fmt, q: float) -> str:  # fmt: FloatFormat
    if math.isnan(q):
        return "NaN"
    if math.isinf(q):
        return "infinity"
    if q == 0:
        return "zero"
    a = abs(q)
    if a < fmt.xmin:
        return f"subnormal: {Fraction(a) / Fraction(fmt.xmin_subnormal)} x 2^{fmt.emin - fmt.mantissa_bits}"
    e = math.frexp(a)[1] - 1
    return f"normal: 2^{e} x {a / 2.0**e!r}"


def _describe(fmt, x: float, q: float, u: float) -> list[str]:  # fmt: FloatFormat
    lines = [
        f"x = {x!r}",
        f"  input (float64)  {_exact_decimal(x)}",
        f"  quantized        {q!r}",
        f"  exact decimal    {_exact_decimal(q)}",
        f"  bit fields       {_bit_fields(fmt, q)}",
        f"  class            {_value_class(fmt, q)}",
    ]
    if math.isfinite(x) and math.isfinite(q):
        err = abs(Fraction(q) - Fraction(x))
        lines.append(f"  abs error        {float(err):.6g}")
        if x != 0:
            rel = err / abs(Fraction(x))
            lines.append(f"  rel error        {float(rel):.6g}  = {float(rel / Fraction(u)):.4g} u")
        if x != 0 and not fmt.xmin <= abs(x) <= fmt.xmax:
            lines.append("  note             |x| is outside [xmin, xmax]: the relative-error "
                         "bound u (paper's Assumption 3.1) does not apply")
    elif math.isfinite(x):
        lines.append(f"  overflow         |x| > xmax = {fmt.xmax!r}; policy {fmt.overflow!r}")
    elif math.isinf(x) and not fmt.has_inf:
        lines.append(f"  note             the format has no infinity; policy {fmt.overflow!r}")
    return lines


def _quantize(args: argparse.Namespace) -> int:
    import numpy as np

    from refopt.quantize import quantize

    fmt = _parse_format(args.fmt)
    if args.rounding == "stochastic" and args.seed is None:
        raise ValueError("--rounding stochastic needs --seed N (the uniform draws come from it)")
    xs = [_parse_value(v) for v in args.values]
    qs = quantize(np.array(xs, dtype=np.float64), fmt, args.rounding,
                  rng=args.seed if args.rounding == "stochastic" else None)
    u = fmt.unit_roundoff(args.rounding)
    print(f"{fmt}")
    print(f"rounding {args.rounding}"
          + (f" (seed {args.seed}, one uniform per value in order)" if args.rounding == "stochastic" else "")
          + f"; unit roundoff u = {_pow2(u)} = {u!r}")
    for x, q in zip(xs, qs.tolist()):
        print()
        print("\n".join(_describe(fmt, x, q, u)))
    return 0
