"""Shared pieces of the quantizer verification tests: formats under test, edge sets, oracle.

The fixture ``qformat`` is parametrized over :data:`QFORMATS` (every preset plus custom
formats that exercise the corners: ``M = 0``, emin > M, no subnormals, saturating and
NaN overflow policies, the paper's mantissa-only model). ``quantize_oracle`` gives the
helpers as a namespace so test modules share them without importing from each other.
"""

from __future__ import annotations

import functools
import math
import types
from fractions import Fraction

import numpy as np
import pytest

from refopt import FloatFormat, exact, list_formats

DETERMINISTIC_MODES = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd")

QFORMATS: dict[str, FloatFormat] = {
    **list_formats(),
    "E3M1": FloatFormat(3, 1),
    "E3M0": FloatFormat(3, 0),
    "E2M0fn": FloatFormat(2, 0, top_binade="fn"),
    "E6M5": FloatFormat(6, 5),
    "E3M2_emin2": FloatFormat(3, 2, bias=-1),  # smallest normal 4: emin > M
    "E5M2_nosub": FloatFormat(5, 2, subnormals=False),
    "E5M2_sat": FloatFormat(5, 2, overflow="saturate"),
    "E5M2_nan": FloatFormat(5, 2, overflow="nan"),
    "e4m3fn_sat": FloatFormat(4, 3, top_binade="fn", overflow="saturate"),
    "e4m3fn_nosub": FloatFormat(4, 3, top_binade="fn", subnormals=False),
    "e4m3fnuz_sat_nosub": FloatFormat(
        4, 3, bias=8, top_binade="fnuz", overflow="saturate", subnormals=False
    ),
    "fp16_nosub": FloatFormat(5, 10, subnormals=False),
    "mantissa_only(0)": FloatFormat.mantissa_only(0),
    "mantissa_only(3)": FloatFormat.mantissa_only(3),
    "mantissa_only(10)": FloatFormat.mantissa_only(10),
}

_RANDOM_CODES = {8: 0, 16: 700}  # random extra codes by width (<= key bits); wider: 250
_EXTREMES = (
    5e-324, 1e-320, 2.2250738585072014e-308, 1e-300, 1e-100, 1e-30, 1e30, 1e100, 1e300,
    1.7976931348623157e308, 2.0**1023, 2.0**-1022 * 1.5,
)


_NAN, _INF = math.nan, math.inf
#: Hand-derived (format, rounding, x, expected) cases: worked out on paper from the
#: format's grid, not from refopt's output.
HAND_CASES: tuple[tuple[str, str, float, float], ...] = (
    # OCP e4m3fn: top binade quantum 32, 448 = 14*32 (even), 480 = 15*32 would be next
    ("fp8_e4m3fn", "nearest_even", 464.0, 448.0),
    ("fp8_e4m3fn", "nearest_even", 465.0, _NAN),
    ("fp8_e4m3fn", "nearest_even", -464.0, -448.0),
    ("fp8_e4m3fn", "nearest_even", 449.0, 448.0),
    ("fp8_e4m3fn", "nearest_away", 464.0, _NAN),
    ("fp8_e4m3fn", "toward_zero", 1e6, 448.0),
    ("fp8_e4m3fn", "odd", 1e6, 448.0),
    ("fp8_e4m3fn", "up", 1e6, _NAN),
    ("fp8_e4m3fn", "up", -1e6, -448.0),
    ("fp8_e4m3fn", "down", -1e6, _NAN),
    ("fp8_e4m3fn", "down", 1e6, 448.0),
    ("fp8_e4m3fn", "nearest_even", _INF, _NAN),
    ("fp8_e4m3fn", "toward_zero", -_INF, _NAN),
    ("fp8_e4m3fn", "nearest_even", _NAN, _NAN),
    ("e4m3fn_sat", "nearest_even", 465.0, 448.0),
    ("e4m3fn_sat", "nearest_even", _INF, 448.0),
    ("e4m3fn_sat", "up", -_INF, -448.0),
    # e4m3fn subnormals: quantum 2**-9; 2**-10 is half the smallest subnormal
    ("fp8_e4m3fn", "nearest_even", 2.0**-10, 0.0),
    ("fp8_e4m3fn", "nearest_even", -(2.0**-10), -0.0),
    ("fp8_e4m3fn", "nearest_even", 3 * 2.0**-11, 2.0**-9),
    ("fp8_e4m3fn", "nearest_away", 2.0**-10, 2.0**-9),
    ("fp8_e4m3fn", "toward_zero", 2.0**-10, 0.0),
    ("fp8_e4m3fn", "up", 2.0**-30, 2.0**-9),
    ("fp8_e4m3fn", "up", -(2.0**-30), -0.0),
    ("fp8_e4m3fn", "down", -(2.0**-30), -(2.0**-9)),
    ("fp8_e4m3fn", "odd", 2.0**-30, 2.0**-9),
    ("fp8_e4m3fn", "nearest_even", 7.5 * 2.0**-9, 2.0**-6),  # largest-subnormal carry
    ("fp8_e4m3fn", "nearest_even", 6.5 * 2.0**-9, 6 * 2.0**-9),
    # fnuz: no negative zero, NaN instead of infinity; 248 ties 240 (15*16) with 256
    ("fp8_e4m3fnuz", "nearest_even", -0.0, 0.0),
    ("fp8_e4m3fnuz", "nearest_even", -(2.0**-12), 0.0),
    ("fp8_e4m3fnuz", "toward_zero", -(2.0**-11), 0.0),
    ("fp8_e4m3fnuz", "nearest_even", 248.0, _NAN),
    ("fp8_e4m3fnuz", "nearest_even", 247.0, 240.0),
    ("fp8_e4m3fnuz", "nearest_even", -_INF, _NAN),
    ("e4m3fnuz_sat_nosub", "nearest_even", -_INF, -240.0),
    ("e4m3fnuz_sat_nosub", "nearest_even", -(2.0**-9), 0.0),  # below xmin/2 = 2**-8
    # IEEE-like e4m3 (max 240) and e5m2: overflow threshold is the tie above xmax
    ("fp8_e4m3", "nearest_even", 248.0, _INF),
    ("fp8_e4m3", "nearest_even", 247.99, 240.0),
    ("fp8_e4m3", "toward_zero", 1e4, 240.0),
    ("fp8_e4m3", "toward_zero", _INF, _INF),
    ("fp8_e5m2", "nearest_even", 61440.0, _INF),
    ("fp8_e5m2", "nearest_even", -61439.0, -57344.0),
    ("fp8_e5m2", "up", 57345.0, _INF),
    ("fp8_e5m2", "down", 57345.0, 57344.0),
    ("E5M2_sat", "nearest_even", 1e9, 57344.0),
    ("E5M2_sat", "nearest_even", -_INF, -_INF),
    ("E5M2_nan", "nearest_even", -1e9, _NAN),
    ("E5M2_nan", "nearest_even", _INF, _INF),
    # fp6 / fp4: saturating, no NaN code (NaN still gives NaN)
    ("fp6_e2m3fn", "nearest_even", 7.75, 7.5),
    ("fp6_e2m3fn", "nearest_even", -_INF, -7.5),
    ("fp6_e2m3fn", "nearest_even", _NAN, _NAN),
    ("fp6_e2m3fn", "nearest_even", 0.0625, 0.0),
    ("fp6_e3m2fn", "nearest_even", 30.0, 28.0),
    ("fp4_e2m1fn", "nearest_even", 5.0, 4.0),
    ("fp4_e2m1fn", "nearest_even", 5.0001, 6.0),
    ("fp4_e2m1fn", "nearest_even", 7.0, 6.0),
    ("fp4_e2m1fn", "nearest_even", 2.5, 2.0),
    ("fp4_e2m1fn", "nearest_even", 0.25, 0.0),
    ("fp4_e2m1fn", "nearest_even", 0.75, 1.0),
    ("fp4_e2m1fn", "nearest_even", 1.25, 1.0),
    ("fp4_e2m1fn", "nearest_away", 1.25, 1.5),
    ("fp4_e2m1fn", "odd", 1.25, 1.5),
    ("fp4_e2m1fn", "odd", 2.5, 3.0),
    ("fp4_e2m1fn", "odd", 0.1, 0.5),
    # bf16 and fp16 ties and subnormals
    ("bf16", "nearest_even", 1 + 2.0**-8, 1.0),
    ("bf16", "nearest_even", 1 + 2.0**-8 + 2.0**-40, 1 + 2.0**-7),
    ("bf16", "nearest_even", 1 + 3 * 2.0**-8, 1 + 2.0**-6),
    ("bf16", "nearest_away", 1 + 2.0**-8, 1 + 2.0**-7),
    ("fp16", "nearest_even", 65520.0, _INF),
    ("fp16", "nearest_even", 65519.99, 65504.0),
    ("fp16", "nearest_even", 2.0**-25, 0.0),
    ("fp16", "nearest_even", 2.0**-25 * (1 + 2.0**-40), 2.0**-24),
    ("fp16", "nearest_even", 3 * 2.0**-26, 2.0**-24),
    ("fp16", "odd", 2.0**-30, 2.0**-24),
    ("fp16", "toward_zero", -(2.0**-30), -0.0),
    # no subnormals: (-xmin, xmin) rounds on the grid {0, xmin} (0 even, xmin odd)
    ("fp16_nosub", "nearest_even", 2.0**-15, 0.0),
    ("fp16_nosub", "nearest_away", 2.0**-15, 2.0**-14),
    ("fp16_nosub", "nearest_even", 1.5 * 2.0**-15, 2.0**-14),
    ("fp16_nosub", "nearest_even", 2.0**-16, 0.0),
    ("fp16_nosub", "odd", 2.0**-20, 2.0**-14),
    ("fp16_nosub", "up", 2.0**-20, 2.0**-14),
    ("fp16_nosub", "down", -(2.0**-20), -(2.0**-14)),
    ("fp16_nosub", "toward_zero", -(2.0**-20), -0.0),
    # M = 0 and emin > M
    ("E3M0", "nearest_even", 3.0, 4.0),
    ("E3M0", "nearest_even", 12.0, _INF),
    ("E3M0", "nearest_even", 0.125, 0.0),
    ("E3M0", "odd", 3.0, 2.0),
    ("E3M2_emin2", "nearest_even", 0.5, 0.0),
    ("E3M2_emin2", "nearest_even", 2.5, 2.0),
    ("E3M2_emin2", "nearest_even", 3.5, 4.0),
    # the paper's model: 3 mantissa bits, float64's exponent range
    ("mantissa_only(3)", "nearest_even", 1.0625, 1.0),
    ("mantissa_only(3)", "nearest_even", 5e-324, 0.0),
    ("mantissa_only(3)", "odd", 5e-324, 2.0**-1025),
    ("mantissa_only(3)", "nearest_even", 1.9375 * 2.0**1023, _INF),
    ("mantissa_only(3)", "nearest_even", 1.9 * 2.0**1023, 1.875 * 2.0**1023),
    ("fp64", "nearest_even", 0.1, 0.1),
    ("fp64", "odd", -5e-324, -5e-324),
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "qformat" in metafunc.fixturenames:
        metafunc.parametrize("qformat", list(QFORMATS.values()), ids=list(QFORMATS))


def _exact_float(value: Fraction) -> float | None:
    """``value`` as a float64 if it is exactly one, else None."""
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) and Fraction(f) == value else None


def _decodable(fmt: FloatFormat, code: int) -> float | None:
    try:
        v = fmt.decode(code)
    except ValueError:  # a subnormal pattern of a format without subnormals
        return None
    return v if math.isfinite(v) else None


def _successor(fmt: FloatFormat, code: int) -> float | None:
    """Value of the next positive code (skipping unused subnormal patterns); None past xmax."""
    for nxt in range(code + 1, 2 ** (fmt.bits - 1)):
        try:
            w = fmt.decode(nxt)
        except ValueError:
            continue
        return w if math.isfinite(w) else None
    return None


def _selected_codes(fmt: FloatFormat, rng: np.random.Generator) -> list[int]:
    """Positive codes to test: all for <= 8-bit formats, else every binade edge plus a sample."""
    E, M = fmt.exponent_bits, fmt.mantissa_bits
    n_pos = 2 ** (E + M)
    if fmt.bits <= 8:
        return list(range(n_pos))
    top = 2**E - 1
    fields = {0, 1, 2, 3, top - 3, top - 2, top - 1, top}
    fields |= {f for f in range(fmt.bias - 2, fmt.bias + 3) if 0 <= f <= top}
    mants = {0, 1, 2, 2**M - 3, 2**M - 2, 2**M - 1, 2 ** (M - 1)} if M >= 2 else {0, 1}
    codes = {(f << M) | m for f in fields for m in mants if 0 <= m < 2**M}
    extra = _RANDOM_CODES[16] if fmt.bits <= 16 else 250
    codes |= {int(c) for c in rng.integers(0, n_pos, extra)}
    if fmt.bits <= 16 and M <= 10:  # every subnormal of a 16-bit format
        codes |= set(range(2**M))
    return sorted(codes)


@functools.lru_cache(maxsize=None)
def edge_inputs(fmt: FloatFormat, seed: int = 0) -> np.ndarray:
    """float64 inputs that probe every rounding decision of ``fmt`` (both signs).

    For each selected value ``v`` and its successor ``w`` (the next code, or the
    unbounded-exponent grid point above ``xmax``): ``v``, the midpoint (when it is a
    float64), its float64 neighbours, ``mid * (1 +- 2**-40)``, the float64 neighbours of
    ``v`` and ``w`` inside the gap and an interior point. This covers all codes of small
    formats, midpoints, every subnormal (16-bit and smaller), the largest-subnormal carry,
    half the smallest subnormal, the overflow threshold, plus signed zeros, infinities,
    NaN and extreme float64 values.
    """
    rng = np.random.default_rng(seed)
    xs: set[float] = {0.0, math.inf, *_EXTREMES, fmt.xmax * 2, fmt.xmax * 4}
    for code in _selected_codes(fmt, rng):
        v = _decodable(fmt, code)
        if v is None:
            continue
        w = _successor(fmt, code)
        fw = Fraction(w) if w is not None else None
        if fw is None:  # v is xmax: the next grid point of the unbounded exponent range
            if v != fmt.xmax:
                continue
            fw = Fraction(v) + Fraction(2) ** (fmt.emax - fmt.mantissa_bits)
        fv = Fraction(v)
        xs.add(v)
        mid = _exact_float((fv + fw) / 2)
        if mid is not None:
            xs.update(
                (mid, math.nextafter(mid, math.inf), math.nextafter(mid, -math.inf),
                 mid * (1 + 2.0**-40), mid * (1 - 2.0**-40))
            )
        wf = _exact_float(fw)
        xs.add(math.nextafter(v, math.inf))
        if wf is not None:
            xs.update((wf, math.nextafter(wf, -math.inf), wf * (1 + 2.0**-40)))
        inner = float(fv + (fw - fv) * Fraction(3, 10))
        if math.isfinite(inner):
            xs.add(inner)
    pos = np.array(sorted(x for x in xs if math.isfinite(x) or math.isinf(x)), dtype=np.float64)
    out = np.concatenate([pos, -pos, [math.nan]])
    out.flags.writeable = False  # cached and shared between tests
    return out


def exact_array(x: np.ndarray, fmt: FloatFormat, rounding: str, u: np.ndarray | None = None) -> np.ndarray:
    """:func:`refopt.exact` applied element by element (C order), ``u`` the uniforms."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    if u is None:
        out = [exact(float(v), fmt, rounding) for v in flat]
    else:
        out = [exact(float(v), fmt, rounding, u=float(ui)) for v, ui in zip(flat, u)]
    return np.array(out, dtype=np.float64).reshape(np.shape(x))


def assert_same_bits(got: np.ndarray, want: np.ndarray, x: np.ndarray, context: str) -> None:
    """Assert equal float64 bit patterns (any NaN equals any NaN), listing the first misses."""
    got64 = np.asarray(got, dtype=np.float64).ravel()
    want64 = np.asarray(want, dtype=np.float64).ravel()
    x64 = np.asarray(x, dtype=np.float64).ravel()
    same = (got64.view(np.uint64) == want64.view(np.uint64)) | (np.isnan(got64) & np.isnan(want64))
    if not same.all():
        bad = np.flatnonzero(~same)
        lines = [
            f"x={x64[i]!r} ({float(x64[i]).hex()}): got {got64[i]!r}, expected {want64[i]!r}"
            for i in bad[:12]
        ]
        pytest.fail(f"{context}: {bad.size} of {same.size} differ:\n" + "\n".join(lines))


class _Oracle(types.SimpleNamespace):
    def __repr__(self) -> str:  # keeps hypothesis' falsifying examples short
        return "quantize_oracle"


@pytest.fixture(scope="session")
def quantize_oracle() -> types.SimpleNamespace:
    """Helpers shared by the quantizer tests (see this module)."""
    return _Oracle(
        edge_inputs=edge_inputs,
        exact_array=exact_array,
        assert_same_bits=assert_same_bits,
        deterministic_modes=DETERMINISTIC_MODES,
        formats=QFORMATS,
        hand_cases=HAND_CASES,
    )
