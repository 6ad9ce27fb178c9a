"""refopt.exact against hand-derived values, a set-based Fraction reference and an mpmath reference."""

from __future__ import annotations

import bisect
import functools
import math
from fractions import Fraction
from typing import Any, Callable

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refopt import FloatFormat, ROUNDING_MODES, exact, format, list_formats


def _same(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1.0, got) == math.copysign(1.0, want)


# ---------------------------------------------------------------------------------
# The rules around the one rounding, written out once for both references below:
# NaN, infinities, overflow (IEEE semantics for the directed modes), signed zeros.


def by_the_rules(x: float, fmt: FloatFormat, mode: str, rounded: Callable[[], Any]) -> float:
    """``rounded()`` (the signed rounding of a finite ``x != 0`` with an unbounded
    exponent range, exact) turned into the result the format can hold."""
    if math.isnan(x):
        return math.nan
    if math.isinf(x):  # the format's infinity, else its overflow policy
        if fmt.top_binade == "ieee":
            return x
        return math.nan if fmt.overflow == "nan" else math.copysign(fmt.xmax, x)
    negative = math.copysign(1.0, x) < 0
    zero = 0.0 if fmt.top_binade == "fnuz" or not negative else -0.0
    if x == 0:
        return zero
    r = rounded()
    if abs(r) > fmt.xmax:  # a directed rounding towards zero stays finite
        finite = mode in ("toward_zero", "odd") or mode == ("up" if negative else "down")
        if finite or fmt.overflow == "saturate":
            return math.copysign(fmt.xmax, x)
        return math.nan if fmt.overflow == "nan" else math.copysign(math.inf, x)
    return zero if r == 0 else float(r)


# ---------------------------------------------------------------------------------
# An independent reference: round by searching the sorted set of representable values.


@functools.lru_cache(maxsize=None)
def _grid(fmt: FloatFormat) -> list[Fraction]:
    """Nonnegative finite values of ``fmt`` plus the next point of the unbounded grid."""
    vals = sorted({Fraction(v) for v in fmt.all_values() if math.isfinite(v) and v >= 0})
    vals.append(vals[-1] + Fraction(2) ** (fmt.emax - fmt.mantissa_bits))
    return vals


def _set_round(X: Fraction, fmt: FloatFormat, mode: str, u: float | None) -> Fraction:
    """Bisection in the value set; beyond its last point any value above xmax will do.

    Parity for ties and round-to-odd: the neighbours ``lo < hi`` are consecutive
    multiples of ``q = hi - lo``; ``lo/q`` and ``hi/q`` give the parities.
    """
    grid = _grid(fmt)
    a = abs(X)
    i = bisect.bisect_left(grid, a)
    if i < len(grid) and grid[i] == a:
        return X
    if i == len(grid):  # beyond the first point above xmax: every rounding exceeds xmax
        return X
    lo, hi = grid[i - 1], grid[i]
    lo_odd = (lo / (hi - lo)).numerator % 2 == 1
    s_lo, s_hi = (-hi, -lo) if X < 0 else (lo, hi)  # signed neighbours
    if mode == "nearest_even":
        d = (a - lo) - (hi - a)
        mag = lo if d < 0 or (d == 0 and not lo_odd) else hi
    elif mode == "nearest_away":
        mag = lo if (a - lo) < (hi - a) else hi
    elif mode == "toward_zero":
        mag = lo
    elif mode == "odd":
        mag = lo if lo_odd else hi
    elif mode == "up":
        return s_hi
    elif mode == "down":
        return s_lo
    else:
        return s_hi if Fraction(u) < (X - s_lo) / (s_hi - s_lo) else s_lo
    return -mag if X < 0 else mag


def reference(x: float, fmt: FloatFormat, mode: str, u: float | None = None) -> float:
    """Correct rounding by bisection in the value set (formats of at most 12 bits)."""
    return by_the_rules(x, fmt, mode, lambda: _set_round(Fraction(x), fmt, mode, u))


SMALL_FORMATS = [f for f in ("fp8_e4m3", "fp8_e4m3fn", "fp8_e4m3fnuz", "fp8_e5m2",
                             "fp8_e5m2fnuz", "fp8_e3m4", "fp6_e2m3fn", "fp6_e3m2fn",
                             "fp4_e2m1fn", "E3M1", "E3M0", "E2M0fn", "E3M2_emin2",
                             "E5M2_nosub", "E5M2_sat", "E5M2_nan", "e4m3fn_sat",
                             "e4m3fn_nosub", "e4m3fnuz_sat_nosub", "mantissa_only(0)")]


@pytest.mark.parametrize("name", SMALL_FORMATS)
def test_exact_matches_set_reference_on_edges(name: str, quantize_oracle) -> None:
    fmt = quantize_oracle.formats[name]
    xs = quantize_oracle.edge_inputs(fmt)
    if xs.size > 1500:  # a sample keeps this under a second per format
        xs = np.random.default_rng(1).choice(xs, 1500, replace=False)
    rng = np.random.default_rng(2)
    for mode in ROUNDING_MODES:
        us = rng.random(xs.size) if mode == "stochastic" else [None] * xs.size
        for x, u in zip(xs, us):
            got = exact(float(x), fmt, mode, u=u)
            want = reference(float(x), fmt, mode, u)
            assert _same(got, want), (name, mode, float(x), u, got, want)


@pytest.mark.parametrize("name", ["fp4_e2m1fn", "E3M1", "fp8_e4m3fn", "E5M2_nosub"])
def test_stochastic_probability_is_exact(name: str, quantize_oracle) -> None:
    """For x = lo + (k/16) q, exactly k of the 16 uniforms j/16 round up (in magnitude for x > 0)."""
    fmt = quantize_oracle.formats[name]
    vals = sorted({0.0, *(v for v in fmt.all_values() if math.isfinite(v) and v > 0)})
    for lo, hi in zip(vals[:-1], vals[1:]):
        for k in range(1, 16):
            x = lo + (hi - lo) * k / 16
            ups = sum(exact(x, fmt, "stochastic", u=j / 16) == hi for j in range(16))
            assert ups == k, (lo, hi, k)
            # x < 0: hi (signed) = -lo is taken iff u < (x - (-hi)) / (hi - lo) = 1 - k/16
            downs = sum(exact(-x, fmt, "stochastic", u=j / 16) == -hi for j in range(16))
            assert downs == k


def test_hand_derived_values(quantize_oracle) -> None:
    for name, mode, x, want in quantize_oracle.hand_cases:
        got = exact(x, quantize_oracle.formats[name], mode)
        assert _same(got, want), (name, mode, x, got, want)


# ---------------------------------------------------------------------------------
# A second, independent reference built on mpmath: mpmath's own correct rounding to
# M + 1 significant bits (libmp.mpf_pos with rounding 'n', 'f', 'c', 'd') in the
# normal range, fixed-point rounding (mpmath.floor / mpmath.ceil of x / quantum) below
# it, then by_the_rules. It shares no code with refopt.exact (integers and Fractions)
# and covers every format.

_MP_PREC = 2300  # every float64 (2**-1074 .. 2**1024) and every grid gap, exactly
_MP_RND = {"nearest_even": "n", "toward_zero": "d", "up": "c", "down": "f"}


def _mp_to_bits(X: mpmath.mpf, bits: int, rnd: str) -> mpmath.mpf:
    """``X`` correctly rounded by mpmath to ``bits`` significant bits (unbounded exponent)."""
    return mpmath.mpf(mpmath.libmp.mpf_pos(X._mpf_, bits, rnd))


def _mp_neighbours(X: mpmath.mpf, fmt: FloatFormat) -> tuple[mpmath.mpf, mpmath.mpf, mpmath.mpf]:
    """Signed neighbours ``lo <= X <= hi`` on the unbounded-exponent grid, and its quantum."""
    M = fmt.mantissa_bits
    xmin = mpmath.ldexp(1, fmt.emin)
    if abs(X) >= xmin:  # normal: mpmath rounds the binary value to M + 1 bits
        lo, hi = (_mp_to_bits(X, M + 1, r) for r in "fc")
        return lo, hi, mpmath.ldexp(1, mpmath.frexp(X)[1] - 1 - M)  # X's binade
    q = mpmath.ldexp(1, fmt.emin - M) if fmt.subnormals else xmin
    return mpmath.floor(X / q) * q, mpmath.ceil(X / q) * q, q


def _mp_round(X: mpmath.mpf, fmt: FloatFormat, mode: str, u: float | None) -> mpmath.mpf:
    lo, hi, q = _mp_neighbours(X, fmt)
    if lo == hi:
        return X
    if mode in _MP_RND and abs(X) >= mpmath.ldexp(1, fmt.emin):
        return _mp_to_bits(X, fmt.mantissa_bits + 1, _MP_RND[mode])
    toward_zero, away = (lo, hi) if X > 0 else (hi, lo)
    below, above = X - lo, hi - X
    odd = lo if int(lo / q) % 2 else hi  # lo / q and hi / q are consecutive integers
    if mode == "nearest_even":
        return lo if below < above else hi if above < below else (hi if odd == lo else lo)
    if mode == "nearest_away":
        return lo if below < above else hi if above < below else away
    if mode == "toward_zero":
        return toward_zero
    if mode == "up":
        return hi
    if mode == "down":
        return lo
    if mode == "odd":
        return odd
    return hi if mpmath.mpf(u) * (hi - lo) < below else lo


def mp_reference(x: float, fmt: FloatFormat, mode: str, u: float | None = None) -> float:
    """Correct rounding of the float64 ``x`` into ``fmt``, by mpmath (see above)."""
    with mpmath.workprec(_MP_PREC):
        return by_the_rules(x, fmt, mode, lambda: _mp_round(mpmath.mpf(x), fmt, mode, u))


def _mixed_inputs(fmt: FloatFormat, n: int, seed: int) -> np.ndarray:
    """Random float64 values spread over the whole range of ``fmt`` and a little beyond."""
    rng = np.random.default_rng(seed)
    lo_exp = max(fmt.emin - fmt.mantissa_bits - 4, -1074)
    hi_exp = min(fmt.emax + 2, 1023)
    x = rng.uniform(1, 2, n) * np.exp2(rng.integers(lo_exp, hi_exp + 1, n).astype(np.float64))
    return np.where(rng.random(n) < 0.5, -x, x)


def test_exact_matches_mpmath_reference(qformat: FloatFormat, quantize_oracle) -> None:
    """Every format, every mode: edge inputs (ties, midpoints +- tiny, subnormals, overflow) and random ones."""
    edges = quantize_oracle.edge_inputs(qformat)
    rng = np.random.default_rng(3)
    if edges.size > 500:
        edges = rng.choice(edges, 500, replace=False)
    xs = np.concatenate([edges, _mixed_inputs(qformat, 100, 4)])
    # uniforms: half random, half multiples of 1/16 (these hit u == (x - lo)/(hi - lo))
    u_all = np.where(rng.random(xs.size) < 0.5, rng.random(xs.size), rng.integers(0, 16, xs.size) / 16)
    for mode in ROUNDING_MODES:
        us = u_all if mode == "stochastic" else [None] * xs.size
        for x, u in zip(xs, us):
            got = exact(float(x), qformat, mode, u=u)
            want = mp_reference(float(x), qformat, mode, u)
            assert _same(got, want), (mode, float(x), u, got, want)


@settings(max_examples=400, deadline=None)
@given(st.data(), st.floats(allow_nan=False), st.sampled_from(ROUNDING_MODES), st.floats(0, 1, exclude_max=True))
def test_exact_matches_mpmath_reference_anywhere(quantize_oracle, data, x: float, mode: str, u: float) -> None:
    fmt = data.draw(st.sampled_from(list(quantize_oracle.formats.values())))
    u_or_none = u if mode == "stochastic" else None
    assert _same(exact(x, fmt, mode, u=u_or_none), mp_reference(x, fmt, mode, u_or_none))


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False), st.sampled_from(ROUNDING_MODES), st.floats(0, 1, exclude_max=True))
def test_fp64_is_the_identity(x: float, mode: str, u: float) -> None:
    got = exact(x, "fp64", mode, u=u if mode == "stochastic" else None)
    assert _same(got, x)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, width=32), st.sampled_from(["nearest_even", "odd", "down"]))
def test_fp32_fixes_float32_values(x: float, mode: str) -> None:
    assert _same(exact(x, "fp32", mode), x)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([("fp32", np.float32), ("fp16", np.float16)]))
def test_nearest_even_equals_numpy_cast(x: float, target: tuple[str, type]) -> None:
    """NumPy's float64 -> float32/float16 casts round once, correctly (IEEE, overflow to inf)."""
    name, dtype = target
    with np.errstate(over="ignore"):
        want = float(dtype(x))
    assert _same(exact(x, name), want)


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=False), st.sampled_from(sorted(list_formats())), st.sampled_from(ROUNDING_MODES))
def test_results_are_representable(x: float, name: str, mode: str) -> None:
    fmt = format(name)
    r = exact(x, fmt, mode, u=0.5 if mode == "stochastic" else None)
    if math.isfinite(r):
        fmt.encode(r)  # raises ValueError if r is not a value of the format
        assert abs(r) <= fmt.xmax


# ---------------------------------------------------------------------------------
# Inputs beyond float64 and argument checking


def test_exact_reads_the_exact_value_of_ints_and_mpf() -> None:
    # 2**60 + 2**7 + 1 is not a float64 (float() would tie it down to 2**60)
    big = 2**60 + 2**7 + 1
    assert exact(big, "fp64") == 2.0**60 + 2.0**8
    assert exact(big, "fp64", "toward_zero") == 2.0**60
    with mpmath.workprec(100):
        just_above_one = mpmath.mpf(1) + mpmath.mpf(2) ** -60
    assert exact(just_above_one, "fp64", "up") == 1 + 2.0**-52
    assert exact(just_above_one, "fp64", "down") == 1.0
    assert exact(-mpmath.mpf(3.5), "fp4_e2m1fn") == -4.0
    assert exact(10**400, "fp16", "toward_zero") == 65504.0
    assert exact(mpmath.mpf(2) ** (10**9), "bf16") == math.inf
    far_below = mpmath.mpf(2) ** -(10**9)  # must not build a 10**9-bit integer
    assert exact(far_below, "bf16") == 0.0 and exact(-far_below, "bf16", "down") == -(2.0**-133)
    assert exact(far_below, "bf16", "stochastic", u=0.0) == 2.0**-133
    assert exact(far_below, "bf16", "stochastic", u=2.0**-53) == 0.0
    assert exact(-far_below, "bf16", "stochastic", u=1 - 2.0**-53) == -0.0
    assert math.isnan(exact(mpmath.mpf("-inf"), "fp8_e4m3fn"))
    assert exact(np.float32(1.1), "fp32") == float(np.float32(1.1))
    assert exact(np.int64(-7), "fp4_e2m1fn") == -6.0


@pytest.mark.parametrize("bad", [True, 1 + 2j, "1.0", None, np.array([1.0]), [1.0]])
def test_bad_x_type(bad: object) -> None:
    with pytest.raises(TypeError, match="x must be a real scalar"):
        exact(bad, "bf16")  # type: ignore[arg-type]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="nearest_even"):
        exact(1.0, "bf16", "nearest")
    with pytest.raises(TypeError, match="rounding"):
        exact(1.0, "bf16", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fp8_e4m3fn"):
        exact(1.0, "fp9")
    with pytest.raises(ValueError, match="needs u"):
        exact(1.0, "bf16", "stochastic")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        exact(1.0, "bf16", "stochastic", u=1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        exact(1.0, "bf16", "stochastic", u=-0.0 - 1e-300)
    with pytest.raises(TypeError, match="u must be"):
        exact(1.0, "bf16", "stochastic", u=True)
    with pytest.raises(ValueError, match="only used"):
        exact(1.0, "bf16", "up", u=0.5)
