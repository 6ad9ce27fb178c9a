"""Correctly rounded quantization of arrays to a binary floating-point format.

:func:`refopt.quantize` rounds every element of a float64 (or float32, float16) array
once, from its exact value, to a :class:`refopt.FloatFormat`, in any of the modes of
:data:`refopt.ROUNDING_MODES`. It is pure NumPy, works in cache-sized blocks,
and agrees bit for bit with the scalar exact oracle :func:`refopt.exact`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from typing import Any, Callable, NamedTuple

import numpy as np

from refopt.formats import ROUNDING_MODES, FloatFormat, check_rounding
from refopt.formats import format as _resolve_format

__all__ = ["ROUNDING_MODES", "quantize"]

_BLOCK = 32768  # elements per block: the block and scratch buffers stay in the L2 cache
_EXP_MASK = np.uint64(0x7FF0000000000000)
_F64 = np.dtype(np.float64)
_U64 = np.dtype(np.uint64)
# np.clip's Python wrapper costs microseconds per call; the ufunc behind it does not.
_clip_ufunc: Callable[..., Any] = getattr(
    getattr(getattr(np, "_core", None), "umath", None), "clip", None
) or np.clip

# y <- R(y) in place, with scratch d and uniforms u (stochastic only)
_Rounder = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], None]
# dst <- step(y) with the input block x, 2**E as floats tf, scratch d
_Step = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


class _Plan(NamedTuple):
    """Constants and steps for one (format, rounding mode); built by :func:`_plan`."""

    t_lo: float  # 2**emin: lower clamp of each element's binade 2**E
    t_hi: float  # 2**e_top: upper clamp
    a_const: np.uint64  # bits of the scale to integers, a_const - bits(2**E)
    a_mul: float | None  # extra factor of that scale (split scaling) or None
    tiny_fix: bool  # scaled values may underflow (formats with emin >= M)
    bit_rounder: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None  # see _bit_rounder
    magic: np.uint64 | None  # bits added to 2**E to give the magic constant (see _plan)
    rounder: _Rounder  # the rounding R of the scaled values to integers
    negate: bool  # whether the scaled values are -x 2**(M - E) (stochastic rounding)
    steps: tuple[_Step, ...]  # scale back, overflow policy, signs (last writes out)
    inf_result: tuple[float, float]  # results for +inf and -inf inputs
    patch_specials: bool  # whether inf/nan inputs need the explicit results
    gap: tuple[float, float] | None  # (xmin, 1/xmin) when subnormals are off
    signed_zero: bool  # False for "fnuz" formats (no negative zero)
    prescale: tuple[float, float, _Plan, float, float] | None = None  # see _prescaled_plan
    split: tuple[float, float, float] | None = None  # (2**(52 - M) + 1, 2**emin, xmax), see _split


# Which side of the range overflows to the policy's value ("ov") and which side
# saturates at the largest finite value ("sat"), as (positive side, negative side).
_OVERFLOW_SIDES = {
    "nearest_even": ("ov", "ov"),
    "nearest_away": ("ov", "ov"),
    "stochastic": ("ov", "ov"),
    "toward_zero": ("sat", "sat"),
    "odd": ("sat", "sat"),
    "up": ("ov", "sat"),
    "down": ("sat", "ov"),
}


@functools.lru_cache(maxsize=256)
def _check_fits(fmt: FloatFormat, dtype: np.dtype) -> None:
    """Raise ValueError unless every value of ``fmt`` is representable in ``dtype``."""
    info = np.finfo(dtype)
    m, emin, emax = fmt.mantissa_bits, fmt.emin, fmt.emax
    tiny_exp = info.minexp - info.nmant  # exponent of the smallest subnormal
    if m > info.nmant or emax > info.maxexp - 1 or emin - m < tiny_exp:
        raise ValueError(
            f"fmt: {_describe(fmt)} does not fit the input dtype {dtype.name} "
            f"(needs mantissa_bits <= {info.nmant}, emax <= {info.maxexp - 1} and a "
            f"smallest value >= 2**{tiny_exp}); rounding through {dtype.name} would round "
            f"twice, so convert the input to float64 first"
        )


def _describe(fmt: FloatFormat) -> str:
    return fmt.name or f"FloatFormat(E={fmt.exponent_bits}, M={fmt.mantissa_bits})"


@functools.lru_cache(maxsize=256)
def _plan(fmt: FloatFormat, rounding: str) -> _Plan:
    """Precompute the per-format constants of the blocked algorithm (see quantize Notes)."""
    m, emin, emax = fmt.mantissa_bits, fmt.emin, fmt.emax
    if emin < -1022:
        return _prescaled_plan(fmt, rounding)
    xmax = float(fmt.xmax)
    policy = fmt.overflow
    # Binade clamp above: any e_top >= emax + 1 keeps every overflow an overflow, and
    # e_top >= M keeps x * 2**(M - E) finite for every finite x.
    e_top = min(max(emax + 1, m), 1023)
    pos, neg = _OVERFLOW_SIDES[rounding]
    if policy == "saturate":
        pos = neg = "sat"
    # Overflow to +-inf by scaling: times 2**(1023 - emax) the first value above xmax,
    # 2**(emax + 1), becomes 2**1024 = inf, and every finite result scales back exactly.
    ieee_top = xmax == math.ldexp(2.0 - math.ldexp(1.0, -m), emax)
    inf_by_scaling = "ov" in (pos, neg) and policy == "inf" and ieee_top
    s1 = 1023 - emax if inf_by_scaling else 0

    # Direct scaling: 2**(M - E) and 2**(E - M + s1) are normal float64 numbers for
    # every E in [emin, e_top]; otherwise (e.g. mantissa_only) split each into two.
    direct = m - emin <= 1023 and m - e_top >= -1022 and -1022 <= emin - m + s1
    direct = direct and e_top - m + s1 <= 1023
    if not direct and s1 > 1023:  # a tiny format low in the range: mask instead
        inf_by_scaling, s1 = False, 0
        direct = m - emin <= 1023 and m - e_top >= -1022 and -1022 <= emin - m
    # Stochastic rounding works on -y (see _round_stochastic): both scalings carry a
    # minus sign, set in the sign bit of the bit-pattern constants.
    negate = rounding == "stochastic"
    sign_bit = (1 << 63) if negate else 0
    steps: list[_Step] = []
    if direct:
        a_const = np.uint64((((m + 2046) << 52) + sign_bit) % (1 << 64))  # minus t: 2**(m-E)
        a_mul = None
        p_add = np.uint64((((s1 - m) << 52) + sign_bit) % (1 << 64))  # 2**E -> 2**(E-m+s1)
        steps.append(_scale_back_direct(p_add))
    else:
        a_const = np.uint64(2047 << 52)  # 2**(1 - E), then times 2**(m - 1)
        a_mul = -math.ldexp(1.0, m - 1) if negate else math.ldexp(1.0, m - 1)
        steps.append(_scale_back_split(-math.ldexp(1.0, -m) if negate else math.ldexp(1.0, -m)))
        if s1:
            steps.append(_binary(np.multiply, math.ldexp(1.0, s1)))
    scale = math.ldexp(1.0, s1)
    if pos == "sat" and neg == "sat":
        steps.append(_clip(-xmax * scale, xmax * scale))
    elif pos == "sat":
        steps.append(_binary(np.minimum, xmax * scale))
    elif neg == "sat":
        steps.append(_binary(np.maximum, -xmax * scale))
    # Overflow to NaN: with T the midpoint of xmax and the next grid point,
    # r * 2**1024 / T overflows exactly when |r| > xmax (the constant's error, 2**-52
    # relative, stays below the gap 2**-(M+2) for M <= 48), and inf * 0 = nan marks
    # those elements. Multiplying by -0.0 instead of 0.0 also turns -0 into +0 (fnuz).
    nan_over = "ov" in (pos, neg) and not inf_by_scaling and policy == "nan"
    nan_over = nan_over and xmax > 1.0 and m <= 48
    nan_step = _nan_over(
        (2.0**1023 / (xmax + math.ldexp(1.0, emax - m - 1))) * 2.0,
        0.0 if fmt.has_negative_zero else -0.0,
    )
    if "ov" in (pos, neg):
        if inf_by_scaling:
            if s1:
                steps.append(_binary(np.multiply, math.ldexp(1.0, -s1)))
        elif nan_over:
            steps.append(nan_step)
        else:
            steps.append(_over_generic(xmax, {"inf": math.inf, "nan": math.nan}[policy]))
    if not fmt.has_negative_zero and not nan_over:
        steps.append(_binary(np.add, 0.0))  # no negative zero: -0 + 0 = +0

    # Round to nearest even with NaN on overflow is shorter with the magic constant
    # C = 1.5 * 2**(E + 52 - M): x + C rounds x at the quantum 2**(E - M), since
    # |x| < C/3 keeps the sum in C's binade; then - C is exact. The result's zeros are
    # +0, right for fnuz formats and fixed by copysign otherwise.
    magic = None
    if rounding == "nearest_even" and nan_over and direct and e_top == emax + 1 and m <= 50:
        magic = np.uint64(((52 - m) << 52) + (1 << 51))  # 2**E -> 1.5 * 2**(E + 52 - M)
        steps = [nan_step] + ([_copysign] if fmt.has_negative_zero else [])

    if steps[-1] is nan_step:
        # Measured: this step's add writing straight into fresh output pages is slow
        # (about 0.5x a memcopy over the whole array); an extra in-cache copy is not.
        steps.append(_copy)

    plan = _Plan(
        t_lo=math.ldexp(1.0, emin),
        t_hi=math.ldexp(1.0, e_top),
        a_const=a_const,
        a_mul=a_mul,
        tiny_fix=m - emin <= 0,
        bit_rounder=_bit_rounder(fmt, rounding),
        magic=magic,
        rounder=_ROUNDERS[rounding],
        negate=negate,
        steps=tuple(steps),
        inf_result=_infinity_results(fmt),
        patch_specials=True,
        gap=None if fmt.subnormals else (fmt.xmin, 1.0 / fmt.xmin),
        signed_zero=fmt.has_negative_zero,
    )
    # The branch-free steps often get inf and nan right by themselves; patch the
    # special inputs only where they do not.
    special = np.array([math.inf, -math.inf] + [math.nan] * 5)
    special.view(_U64)[3:] = [0x7FF0000000000001, 0xFFF0000000000001, (1 << 63) - 1, (1 << 64) - 1]
    got = np.empty(special.shape)
    with np.errstate(all="ignore"):
        _quantize_block(plan._replace(patch_specials=False), special, got, _Scratch(7),
                        np.random.default_rng(0) if rounding == "stochastic" else None)
    wanted = np.array([*plan.inf_result] + [math.nan] * 5)
    split = None
    if rounding == "nearest_even" and 1 <= m <= 50 and fmt.has_negative_zero:
        split = (math.ldexp(1.0, 52 - m) + 1.0, math.ldexp(1.0, emin), xmax)
    return plan._replace(
        patch_specials=not np.array_equal(got, wanted, equal_nan=True), split=split
    )


def _prescaled_plan(fmt: FloatFormat, rounding: str) -> _Plan:
    r"""Plan for a format whose normal range reaches below float64's (emin < -1022).

    The binade of such values cannot be read from float64 bits, so the input is scaled
    by :math:`2^K`, :math:`K = -1022 - e_{\min}`, into the same format with bias
    lowered by ``K`` (emin = -1022), and the result scaled back; both scalings are
    exact. Inputs at or beyond the first grid point :math:`g` above xmax overflow in
    every mode; they are clipped below :math:`g` (so the scaled values stay finite)
    and their results set afterwards. ``prescale`` holds (clip bound, :math:`2^K`,
    plan of the scaled format, result for :math:`x \ge g`, result for
    :math:`x \le -g`).
    """
    shift = -1022 - fmt.emin
    try:
        inner = dataclasses.replace(fmt, bias=fmt.bias - shift, name=None)
    except ValueError:
        raise ValueError(
            f"fmt: {_describe(fmt)} spans more binades than float64's normal range "
            f"(emin = {fmt.emin}, emax = {fmt.emax}); refopt.quantize does not support it, "
            "refopt.exact does"
        ) from None
    plan = _plan(inner, rounding)
    g = fmt.xmax + math.ldexp(1.0, fmt.emax - fmt.mantissa_bits)
    over = {"inf": math.inf, "nan": math.nan, "saturate": fmt.xmax}[fmt.overflow]
    pos, neg = _OVERFLOW_SIDES[rounding]
    return plan._replace(
        steps=(),
        inf_result=_infinity_results(fmt),
        patch_specials=True,
        split=None,
        prescale=(
            math.nextafter(g, 0.0),
            math.ldexp(1.0, shift),
            plan,
            over if pos == "ov" else fmt.xmax,
            -over if neg == "ov" else -fmt.xmax,
        ),
    )


def _bit_rounder(
    fmt: FloatFormat, rounding: str
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None:
    """Integer rounding of the float64 bit patterns, for formats with float64's range.

    When the format has float64's exponent range and subnormals (for example
    ``FloatFormat.mantissa_only(M)``), its values are the float64 values whose last
    ``s = 52 - M`` bits are zero, also among the subnormals, so rounding is done on
    the bit patterns (sign and magnitude): truncate the last ``s`` bits and decide the
    increment from them; a carry into the exponent field is the correct next binade,
    and the carry past the largest finite value gives the bit pattern of infinity.
    Returns ``f(bits, out_bits, scratch)`` or None if not applicable.
    """
    m = fmt.mantissa_bits
    if not (fmt.emin == -1022 and fmt.emax == 1023 and fmt.has_inf and fmt.subnormals):
        return None
    if m == 52:
        return lambda b, o, t: np.copyto(o, b)  # every float64 is representable
    if m == 0 or (rounding in ("nearest_even", "nearest_away") and fmt.overflow != "inf"):
        return None
    s = 52 - m
    low = np.uint64((1 << s) - 1)
    high = np.uint64(((1 << 64) - 1) ^ ((1 << s) - 1))
    half, one = np.uint64(1 << (s - 1)), np.uint64(1)
    shift, lsb = np.uint64(s), np.uint64(1 << s)

    def nearest_even(b: np.ndarray, o: np.ndarray, t: np.ndarray) -> None:
        np.right_shift(b, shift, out=t)
        np.bitwise_and(t, one, out=t)  # last kept bit: 1 if odd
        np.add(t, b, out=t)
        np.add(t, half - one, out=t)  # carries iff above half, or a tie and odd
        np.bitwise_and(t, high, out=o)

    def nearest_away(b: np.ndarray, o: np.ndarray, t: np.ndarray) -> None:
        np.add(b, half, out=t)
        np.bitwise_and(t, high, out=o)

    def toward_zero(b: np.ndarray, o: np.ndarray, t: np.ndarray) -> None:
        np.bitwise_and(b, high, out=o)

    def odd(b: np.ndarray, o: np.ndarray, t: np.ndarray) -> None:
        np.bitwise_and(b, low, out=t)
        np.add(t, low, out=t)
        np.bitwise_and(t, lsb, out=t)  # the last kept bit iff anything was discarded
        np.bitwise_and(b, high, out=o)
        np.bitwise_or(o, t, out=o)

    return {
        "nearest_even": nearest_even,
        "nearest_away": nearest_away,
        "toward_zero": toward_zero,
        "odd": odd,
    }.get(rounding)


def _infinity_results(fmt: FloatFormat) -> tuple[float, float]:
    """Results for +inf and -inf inputs: exact where the format has infinities."""
    if fmt.has_inf:
        return math.inf, -math.inf
    if fmt.overflow == "nan":
        return math.nan, math.nan
    return fmt.xmax, -fmt.xmax


# ----------------------------------------------------------------------------------
# The steps after rounding; each reads y and writes dst (y itself, or the output).


def _scale_back_direct(p_add: np.uint64) -> _Step:
    def step(y: np.ndarray, dst: np.ndarray, x: np.ndarray, tf: np.ndarray, d: np.ndarray) -> None:
        t = tf.view(_U64)
        np.add(t, p_add, out=t)  # 2**(E - M + s1)
        np.multiply(y, tf, out=dst)  # exact

    return step


def _scale_back_split(factor: float) -> _Step:
    def step(y: np.ndarray, dst: np.ndarray, x: np.ndarray, tf: np.ndarray, d: np.ndarray) -> None:
        np.multiply(y, factor, out=y)  # R * 2**-M
        np.multiply(y, tf, out=dst)  # times 2**E: exact

    return step


def _binary(ufunc: np.ufunc, value: float) -> _Step:
    def step(y: np.ndarray, dst: np.ndarray, x: np.ndarray, tf: np.ndarray, d: np.ndarray) -> None:
        ufunc(y, value, out=dst)

    return step


def _clip(lo: float, hi: float) -> _Step:
    def step(y: np.ndarray, dst: np.ndarray, x: np.ndarray, tf: np.ndarray, d: np.ndarray) -> None:
        _clip_ufunc(y, lo, hi, out=dst)

    return step


def _nan_over(c: float, zero: float) -> _Step:
    def step(y: np.ndarray, dst: np.ndarray, x: np.ndarray, tf: np.ndarray, d: np.ndarray) -> None:
        np.multiply(y, c, out=d)
        np.multiply(d, zero, out=d)  # nan where |r| > xmax, else a zero
        np.add(y, d, out=dst)

    return step


def _copysign(y: np.ndarray, dst: np.ndarray, x: np.ndarray, tf: np.ndarray, d: np.ndarray) -> None:
    np.copysign(y, x, out=dst)


def _copy(y: np.ndarray, dst: np.ndarray, x: np.ndarray, tf: np.ndarray, d: np.ndarray) -> None:
    np.copyto(dst, y)


def _over_generic(xmax: float, value: float) -> _Step:
    def step(y: np.ndarray, dst: np.ndarray, x: np.ndarray, tf: np.ndarray, d: np.ndarray) -> None:
        over = np.abs(y) > xmax
        np.copyto(dst, y)
        dst[over] = np.copysign(value, y[over])

    return step


# ----------------------------------------------------------------------------------
# Rounding of the scaled values y to integers, in place. Zero results keep the sign
# of y.


def _round_stochastic(y: np.ndarray, d: np.ndarray, u: np.ndarray | None) -> None:
    # Works on z = -y and returns -(floor(y) + b), b = [u < y - floor(y)]: as
    # ceil(z) - b this keeps the sign of a zero result (-1 + 1 would give +0).
    np.ceil(y, out=d)  # -floor(y): minus the lower neighbour
    np.subtract(d, y, out=y)  # (x - lo) / (hi - lo), exact
    np.less(u, y, out=y)  # b = 1.0 where u < fraction
    np.subtract(d, y, out=y)


def _round_away(y: np.ndarray, d: np.ndarray, u: np.ndarray | None) -> None:
    # RNA(y) = d - trunc(2 (d - y)) with d = trunc(y): d - y = -f is exact, and
    # trunc(-2f) is -1 (y > 0) or +1 (y < 0) iff |f| >= 1/2.
    np.trunc(y, out=d)
    np.subtract(d, y, out=y)
    np.add(y, y, out=y)
    np.trunc(y, out=y)
    np.subtract(d, y, out=y)


def _round_odd(y: np.ndarray, d: np.ndarray, u: np.ndarray | None) -> None:
    # With h = y/2 and d = floor(h): RO(y) = 2d + ceil(h - d) = (d - floor(d - h)) + d,
    # that is y itself if y is an even integer, else the odd integer in (2d, 2d + 2).
    np.multiply(y, 0.5, out=y)
    np.floor(y, out=d)
    np.subtract(d, y, out=y)
    np.floor(y, out=y)
    np.subtract(d, y, out=y)
    np.add(y, d, out=y)


def _ufunc_rounder(ufunc: np.ufunc) -> _Rounder:
    def rounder(y: np.ndarray, d: np.ndarray, u: np.ndarray | None) -> None:
        ufunc(y, out=y)

    return rounder


_ROUNDERS: dict[str, _Rounder] = {
    "nearest_even": _ufunc_rounder(np.rint),
    "toward_zero": _ufunc_rounder(np.trunc),
    "up": _ufunc_rounder(np.ceil),
    "down": _ufunc_rounder(np.floor),
    "nearest_away": _round_away,
    "odd": _round_odd,
    "stochastic": _round_stochastic,
}


def _aligned(size: int, dtype: np.dtype) -> np.ndarray:
    """An empty array starting on a 64-byte boundary.

    Measured: a binary ufunc on two arrays writing to an array that is not 64-byte
    aligned (NumPy's default alignment is 16) takes about twice as long.
    """
    buf = np.empty(size * dtype.itemsize + 64, np.uint8)
    start = -buf.ctypes.data % 64
    return buf[start : start + size * dtype.itemsize].view(dtype)


class _Scratch:
    """Preallocated block buffers (the only memory used besides the output)."""

    def __init__(self, size: int, need_x: bool = True, need_u: bool = True) -> None:
        empty = np.empty(0, _F64)
        self.x = _aligned(size, _F64) if need_x else empty  # float64 copy of a block
        self.t = _aligned(size, _U64)
        self.y = _aligned(size, _F64)
        self.d = _aligned(size, _F64)
        self.u = _aligned(size, _F64) if need_u else empty  # uniforms
        self.split_ok = True  # cleared at the first block _split cannot round


def _quantize_block(
    plan: _Plan,
    x: np.ndarray,
    out: np.ndarray,
    s: _Scratch,
    rng: np.random.Generator | None,
) -> None:
    """Quantize the 1-d float64 block ``x`` into ``out`` (same length, any float dtype)."""
    n = x.shape[0]
    if plan.prescale is not None:
        bound, factor, inner, over_pos, over_neg = plan.prescale
        scaled = s.x[:n]  # free: only float64 blocks reach formats with emin < -1022
        _clip_ufunc(x, -bound, bound, out=scaled)
        np.multiply(scaled, factor, out=scaled)
        _quantize_block(inner, scaled, out, s, rng)
        np.multiply(out, 1.0 / factor, out=out)
        beyond = np.abs(x) > bound
        if beyond.any():
            out[beyond] = np.where(x[beyond] > 0, over_pos, over_neg)
        _patch_specials(plan, x, out)
        return
    if plan.bit_rounder is not None:
        if rng is not None:
            rng.random(out=s.u[:n])  # the uniforms are drawn in every mode
        plan.bit_rounder(x.view(_U64), out.view(_U64), s.t[:n])
        _patch_specials(plan, x, out)
        return
    if plan.split is not None and s.split_ok:
        s.split_ok = _split(plan, x, out, s)
        if s.split_ok:
            return
    t, y, d = s.t[:n], s.y[:n], s.d[:n]
    tf = t.view(_F64)
    # [docs:quantize-block:start]
    np.bitwise_and(x.view(_U64), _EXP_MASK, out=t)  # 2**e, e = binade of x
    _clip_ufunc(tf, plan.t_lo, plan.t_hi, out=tf)  # 2**E, E = clamp(e, emin, e_top)
    u = None
    if plan.magic is not None:
        np.add(t, plan.magic, out=t)  # C = 1.5 * 2**(E + 52 - M)
        np.add(x, tf, out=y)  # the one rounding, at the quantum 2**(E - M)
        np.subtract(y, tf, out=y)
    else:
        np.subtract(plan.a_const, t, out=y.view(_U64))  # 2**(M - E)
        np.multiply(x, y, out=y)  # y = x * 2**(M - E): exact
        if plan.a_mul is not None:
            np.multiply(y, plan.a_mul, out=y)
        if plan.tiny_fix:
            _fix_tiny(x, y)
        if rng is not None:
            u = s.u[:n]
            rng.random(out=u)  # one uniform per element, in order
        plan.rounder(y, d, u)  # the one rounding: y to a neighbouring integer
    last = len(plan.steps) - 1
    for i, step in enumerate(plan.steps):  # scale back; overflow policy; signs
        step(y, out if i == last else y, x, tf, d)
    # [docs:quantize-block:end]
    if plan.gap is not None:
        _round_gap(plan, x, out, u)
    _patch_specials(plan, x, out)


def _split(plan: _Plan, x: np.ndarray, out: np.ndarray, s: _Scratch) -> bool:
    r"""Round a block to nearest even by Veltkamp's splitting; False if it cannot.

    With :math:`s = 52 - M` and :math:`C = 2^s + 1` (:math:`2 \le s \le 51`), the
    float64 operations :math:`g = C x`, :math:`d = g - x`, :math:`h = g - d` give
    :math:`h` = :math:`x` rounded to nearest even to :math:`M + 1` significant bits
    (Veltkamp's splitting; proved with ties to even in Flocq, ``Pff2Flocq.v``,
    theorem ``Veltkamp_Even``, for any float64 :math:`x` when :math:`g` does not
    overflow). That is the format's rounding, with an unbounded exponent range
    above, of every :math:`x` with :math:`|x| \ge 2^{e_{\min}}`; below, :math:`h` is
    rounded on a finer grid, and :math:`|h| < 2^{e_{\min}}` unless
    :math:`h = 2^{e_{\min}}`, which is then also the format's rounding. And
    :math:`h = \pm 0` exactly for :math:`x = \pm 0` (the order of the subtractions
    keeps the sign). So :math:`h` is the result of every element if each :math:`|h|`
    is 0 or in :math:`[2^{e_{\min}}, x_{\max}]`; otherwise (values below
    :math:`2^{e_{\min}}`, overflow, inf, nan: :math:`g` overflows or :math:`h` is
    nan) False is returned, and the general steps overwrite ``out``.
    """
    c, lo, hi = plan.split  # type: ignore[misc]
    n = x.shape[0]
    g, d = s.y[:n], s.d[:n]
    # Measured: h written straight into fresh output pages is slower (about 13% of the
    # whole call at 10**7 values) than into the aligned scratch and then copied.
    h = s.t[:n].view(_F64)
    np.multiply(x, c, out=g)
    np.subtract(g, x, out=d)
    np.subtract(g, d, out=h)
    np.abs(h, out=d)
    if not np.maximum.reduce(d) <= hi:  # also nan
        return False
    if not np.minimum.reduce(d) >= lo:  # zeros, or values below 2**emin?
        t = g.view(_U64)
        np.subtract(d.view(_U64), np.uint64(1), out=t)  # the zeros wrap to the top
        if np.minimum.reduce(t) < np.float64(lo).view(_U64) - np.uint64(1):
            return False
    np.copyto(out, h)  # exact also into float32 or float16
    return True


def _patch_specials(plan: _Plan, x: np.ndarray, out: np.ndarray) -> None:
    """Set the results of inf and nan inputs where the branch-free steps miss them."""
    if plan.patch_specials and not np.isfinite(np.add.reduce(x)):
        special = ~np.isfinite(x)  # an inf or nan in the block (or just a huge sum)
        values = x[special]
        out[special] = np.where(
            np.isnan(values), np.nan, np.where(values > 0, *plan.inf_result)
        )


def _fix_tiny(x: np.ndarray, y: np.ndarray) -> None:
    """Keep scaled values of tiny nonzero inputs nonzero and halvable.

    For formats with emin >= M (and in the gap below xmin of formats without
    subnormals) the scaled value of a float64 subnormal may underflow. Every rounding
    mode gives the same result for any scaled value in (0, 2**-1000), so those are
    replaced by 2**-1000 with the sign of x.
    """
    small = (np.abs(y) < 2.0**-1000) & (x != 0)
    if small.any():
        y[small] = np.copysign(2.0**-1000, y[small])  # an underflowed y keeps its sign


def _round_gap(plan: _Plan, x: np.ndarray, out: np.ndarray, u: np.ndarray | None) -> None:
    """Without subnormals, values below xmin round between 0 and xmin."""
    xmin, inv = plan.gap  # type: ignore[misc]
    small = np.abs(x) < xmin
    if not small.any():
        return
    sign = -1.0 if plan.negate else 1.0
    y = x[small] * (sign * inv)
    _fix_tiny(x[small], y)
    plan.rounder(y, np.empty_like(y), None if u is None else u[small])
    y *= sign * xmin
    np.copysign(y, x[small], out=y)
    if not plan.signed_zero:
        y += 0.0
    out[small] = y


def _flat_pair(
    arr: np.ndarray, out: np.ndarray, c_order: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """1-d views of ``arr`` and ``out`` in the same element order, if both exist."""
    if arr.flags.c_contiguous and out.flags.c_contiguous:
        return arr.reshape(-1), out.reshape(-1)
    if not c_order and arr.flags.f_contiguous and out.flags.f_contiguous:
        return arr.reshape(-1, order="F"), out.reshape(-1, order="F")
    return None


def _run(plan: _Plan, arr: np.ndarray, out: np.ndarray, rng: np.random.Generator | None) -> None:
    """Quantize ``arr`` into ``out`` block by block."""
    need_x = arr.dtype != _F64 or plan.prescale is not None
    scratch = _Scratch(min(_BLOCK, max(arr.size, 1)), need_x, rng is not None)
    pair = _flat_pair(arr, out, c_order=rng is not None)
    with np.errstate(all="ignore"):
        if pair is None:  # general strides, or C order of a non-C-contiguous array
            iterator = np.nditer(
                [arr, out],
                flags=["external_loop", "buffered", "zerosize_ok"],
                op_flags=[["readonly"], ["writeonly"]],
                op_dtypes=[_F64, _F64],
                order="C" if rng is not None else "K",
                casting="same_kind",
                buffersize=_BLOCK,
            )
            with iterator:
                for block, out_block in iterator:
                    _quantize_block(plan, block, out_block, scratch, rng)
            return
        flat, flat_out = pair
        for start in range(0, flat.shape[0], _BLOCK):
            block = flat[start : start + _BLOCK]
            if block.dtype != _F64:
                block = scratch.x[: block.shape[0]]
                np.copyto(block, flat[start : start + _BLOCK])
            _quantize_block(plan, block, flat_out[start : start + _BLOCK], scratch, rng)


# ----------------------------------------------------------------------------------
# Public API


def _as_float_array(x: Any) -> np.ndarray:
    """Validate ``x`` and return it as a float16/32/64 array (a view when possible)."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError("x: bool values cannot be quantized; pass floats")
    if isinstance(x, numbers.Integral) and not isinstance(x, np.integer):
        value = int(x)
        try:
            as_float = float(value)
        except OverflowError:
            raise ValueError(f"x: the integer {value} is too large for float64") from None
        if int(as_float) != value:
            raise ValueError(f"x: the integer {value} is not exactly representable in float64")
        return np.asarray(as_float, dtype=_F64)
    arr = np.asarray(x)  # subclasses (matrix, masked) become plain arrays
    kind = arr.dtype.kind
    if kind == "b":
        raise TypeError("x: bool arrays cannot be quantized; pass float16, float32 or float64")
    if kind in "iu":
        as_float = arr.astype(_F64)
        big = np.abs(as_float) > 2.0**53
        if big.any() and any(int(f) != int(i) for f, i in zip(as_float[big], arr[big])):
            raise ValueError("x: integers beyond 2**53 must be exactly representable in float64")
        return as_float
    if kind != "f" or arr.dtype.itemsize > 8:
        raise TypeError(
            f"x: cannot quantize dtype {arr.dtype}; pass real numbers as float16, "
            f"float32 or float64 (or Python numbers)"
        )
    if not arr.dtype.isnative:  # the bit manipulation reads native byte order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _check_rng(rng: Any) -> None:
    is_seed = isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(
        rng, (bool, np.bool_)
    )
    if not (is_seed or isinstance(rng, np.random.Generator)):
        raise TypeError(
            f"rng: expected a numpy.random.Generator or an int seed, got {type(rng).__name__}"
        )
    if is_seed and rng < 0:
        raise ValueError(f"rng: an int seed must be non-negative, got {rng}")


def _as_generator(rng: Any) -> np.random.Generator:
    _check_rng(rng)
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(int(rng))


def quantize(
    x: Any,
    fmt: FloatFormat | str,
    rounding: str = "nearest_even",
    *,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray | np.floating:
    r"""Round every element of ``x`` once, from its exact value, to the format ``fmt``.

    Parameters
    ----------
    x : array_like
        Real numbers: a float64, float32 or float16 array of any shape and memory
        layout, a sequence, or a Python or NumPy scalar. Integers are accepted when
        exactly representable in float64; bool, complex and object input is rejected.
    fmt : FloatFormat or str
        Target format, a :class:`refopt.FloatFormat` or a preset name (see
        :func:`refopt.list_formats`).
    rounding : str, optional
        One of :data:`refopt.ROUNDING_MODES`: ``"nearest_even"`` (default),
        ``"nearest_away"``, ``"toward_zero"``, ``"up"`` (toward :math:`+\infty`),
        ``"down"`` (toward :math:`-\infty`), ``"odd"`` or ``"stochastic"``.
    rng : numpy.random.Generator or int, optional
        Source of the uniform draws of ``"stochastic"`` rounding (an int is a seed for
        :func:`numpy.random.default_rng`). Required for ``"stochastic"``; ignored by
        the deterministic modes.

    Returns
    -------
    numpy.ndarray or numpy.floating
        The rounded values, exactly representable in ``fmt``, with the dtype of ``x``
        (float64 for Python numbers and integers) and the shape and memory layout of
        ``x``. A scalar or 0-d input gives a NumPy scalar. ``x`` is never modified.

    Raises
    ------
    ValueError
        If ``rounding`` is not a known mode, ``fmt`` is not a known format,
        ``"stochastic"`` is requested without ``rng``, ``rng`` is a negative seed,
        an integer input is not exactly a float64, or ``fmt`` does not fit the input
        dtype (for example ``fmt="fp32"`` is fine for a float32 array, but ``"fp64"``
        or ``FloatFormat.mantissa_only(10)`` is not: the result could not be
        represented without a second rounding), or ``fmt`` spans more binades than
        float64's normal range (:math:`e_{\max} - e_{\min} > 2045`, only 11-bit
        ``"fn"``/``"fnuz"`` formats with a bias above 1023; :func:`refopt.exact`
        handles those).
    TypeError
        If ``x`` is bool, complex, object or string data, or ``rng`` is neither a
        Generator nor an int.

    Notes
    -----
    **Format.** With :math:`M` mantissa bits and normal exponents
    :math:`e_{\min} \le e \le e_{\max}`, the finite values of ``fmt`` are
    :math:`\pm k\,2^{E-M}` for integers :math:`0 \le k < 2^{M+1}` and
    :math:`E = \max(e, e_{\min})` (subnormals :math:`k < 2^M` at
    :math:`E = e_{\min}`), up to the largest finite value :math:`x_{\max}`
    (``fmt.xmax``).

    **One rounding.** For an input :math:`x` of binade :math:`e = \lfloor\log_2|x|\rfloor`
    (read from the exponent bits) let :math:`E = \min(\max(e, e_{\min}), e_{\mathrm{top}})`
    with a fixed :math:`e_{\mathrm{top}} \ge e_{\max} + 1` (larger inputs overflow
    anyway). The representable neighbours of :math:`x`, with an unbounded exponent
    range above, are consecutive integer multiples of the quantum :math:`2^{E-M}`, so

    .. math::

        Q(x) = R\!\left(x\,2^{M-E}\right) 2^{E-M},

    where :math:`R` rounds a real number to an integer: ``rint`` (ties to even),
    ``trunc``, ``ceil``, ``floor``, ties away, or to odd. Both scalings are by powers
    of two built from the exponent bits, so they are exact, and :math:`R` is a single
    IEEE operation on the exact scaled value: the result is the one correct rounding
    of :math:`x`. Nothing passes through float32 or any intermediate format.
    Subnormals need no special case: below :math:`2^{e_{\min}}` the quantum stays
    :math:`2^{e_{\min}-M}`, and the carry of the largest subnormal into the smallest
    normal (and of :math:`(2 - 2^{-M})2^e` into :math:`2^{e+1}`) is just
    :math:`R` returning :math:`2^{M+1}` or :math:`2^{M}`. Signed zeros are kept (in
    ``"fnuz"`` formats, which have no negative zero, every zero is :math:`+0`). If
    ``fmt.subnormals`` is False, inputs of magnitude below :math:`x_{\min} =
    2^{e_{\min}}` are rounded between :math:`0` and :math:`\pm x_{\min}` (the
    representable neighbours) by the same rule with quantum :math:`x_{\min}`.

    **Stochastic rounding.** With neighbours :math:`lo < x < hi` and one uniform
    :math:`u = k/2^{53}` from ``rng.random()`` per element (drawn for every element,
    representable or not, in C order of the flattened input),

    .. math::

        Q(x) = \begin{cases} hi & \text{if } u < (x - lo)/(hi - lo),\\
                             lo & \text{otherwise,} \end{cases}

    where the fraction is computed exactly, so :math:`P(Q(x) = hi)` is the fraction
    rounded up to a multiple of :math:`2^{-53}`: exactly the fraction, so that
    :math:`\mathbb{E}[Q(x)] = x`, whenever the fraction has at most 53 bits after
    the binary point; for float64 inputs in the normal range of ``fmt`` it has at
    most :math:`52 - M`. The same seed gives the same bits.

    **Overflow.** Rounding is first done with an unbounded exponent range; if the
    result :math:`r` exceeds :math:`x_{\max}` in magnitude the format's policy
    (``fmt.overflow``) decides, with IEEE 754 semantics for the directed modes:

    ======================================  =======================  =======================
    mode                                    :math:`r > x_{\max}`     :math:`r < -x_{\max}`
    ======================================  =======================  =======================
    nearest_even, nearest_away, stochastic  :math:`+\Omega`          :math:`-\Omega`
    toward_zero, odd                        :math:`x_{\max}`         :math:`-x_{\max}`
    up                                      :math:`+\Omega`          :math:`-x_{\max}`
    down                                    :math:`x_{\max}`         :math:`-\Omega`
    ======================================  =======================  =======================

    where :math:`\Omega` is :math:`\infty` for policy ``"inf"``, NaN for ``"nan"``
    and :math:`x_{\max}` for ``"saturate"``. For example ``fp8_e4m3fn`` (policy
    ``"nan"``, :math:`x_{\max} = 448`) rounds 464 to 448 (a tie, to even) and 465 to
    NaN. Infinite inputs stay :math:`\pm\infty` in formats that have infinities
    (``top_binade="ieee"``, any mode and policy); in formats without them they give
    NaN under ``"nan"`` and :math:`\pm x_{\max}` under ``"saturate"``. NaN gives NaN.

    **Implementation.** The input is processed in blocks of 32768 elements with
    in-place ufuncs on preallocated scratch buffers, so the extra memory is about a
    megabyte whatever the size of ``x``; the steps below take no data-dependent
    branch per element. Overflow to infinity is produced by scaling (:math:`2^{e_{\max}+1}`
    times :math:`2^{1023-e_{\max}}` is float64 infinity; finite results scale back
    exactly) and overflow to NaN by :math:`r + (r c)\cdot 0` with a constant
    :math:`c` for which :math:`rc` overflows exactly when :math:`|r| > x_{\max}`.
    For round to nearest even in formats that overflow to NaN, :math:`x + C - C`
    with the "magic" constant :math:`C = 1.5 \cdot 2^{E+52-M}` replaces the two
    scalings: the float64 addition itself rounds :math:`x` once at the quantum
    :math:`2^{E-M}`.
    Formats with float64's exponent range (such as ``FloatFormat.mantissa_only(M)``)
    are rounded directly on the bit patterns in the modes where that is shorter:
    the last :math:`52 - M` bits are cleared and the increment is decided from them,
    and its carry into the exponent field is the next binade (or infinity).
    Round to nearest even with :math:`1 \le M \le 50` (in formats with a negative
    zero) first tries Veltkamp's splitting on each block: with
    :math:`C = 2^{52-M} + 1`, the float64 operations :math:`g = Cx`,
    :math:`h = g - (g - x)` give :math:`x` rounded to nearest even to :math:`M + 1`
    significant bits (Boldo's formal proof, theorem ``Veltkamp_Even`` of Flocq),
    which is :math:`Q(x)` wherever :math:`2^{e_{\min}} \le |h| \le x_{\max}`, and
    :math:`h = \pm 0` for :math:`x = \pm 0`. A block with any other element (below
    :math:`2^{e_{\min}}`, overflow, inf, NaN) takes the general steps above instead,
    and so does the rest of the call. Either way the results are the same.

    Examples
    --------
    >>> import refopt
    >>> float(refopt.quantize(1 + 2**-8, "bf16"))  # a tie: to even
    1.0
    >>> float(refopt.quantize(465.0, "fp8_e4m3fn"))
    nan
    >>> refopt.quantize([0.1, -0.1], "fp8_e4m3", "toward_zero")
    array([ 0.09375, -0.09375])
    """
    check_rounding(rounding)
    fmt = _resolve_format(fmt, arg="fmt")
    generator = None
    if rounding == "stochastic":
        if rng is None:
            raise ValueError(
                "rng: stochastic rounding needs rng=numpy.random.Generator or an int seed"
            )
        generator = _as_generator(rng)
    elif rng is not None:
        _check_rng(rng)
    arr = _as_float_array(x)
    _check_fits(fmt, arr.dtype)
    out = np.empty_like(arr)
    _run(_plan(fmt, rounding), arr, out, generator)
    return out[()] if out.ndim == 0 else out
