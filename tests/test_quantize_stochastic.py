"""Stochastic rounding: two neighbours only, unbiased, reproducible, equal to exact per uniform.

The variant (stated in the :func:`refopt.quantize` docstring): with signed neighbours
``lo < x < hi`` and ``u = rng.random()``, one per element in C order, the result is ``hi``
iff ``u < (x - lo) / (hi - lo)``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from refopt import FloatFormat, exact, format, quantize

# (format, x): normal, subnormal, negative, gap of a format without subnormals, near xmax
CASES = [
    ("bf16", 1 / 3),
    ("bf16", -2.0**-130 * 1.3),
    ("fp8_e4m3fn", 0.3),
    ("fp8_e4m3fn", -0.003),
    ("fp8_e4m3fn", 430.0),
    ("fp4_e2m1fn", 2.2),
    ("fp16", 1e-6),
    (FloatFormat(5, 2, subnormals=False), 0.3 * 2.0**-14),
    (FloatFormat.mantissa_only(3), math.pi),
]


def _neighbours(fmt: object, x: float) -> tuple[float, float]:
    return exact(x, fmt, "down"), exact(x, fmt, "up")


@pytest.mark.parametrize(("fmt", "x"), CASES, ids=[f"{f}-{x:.3g}" for f, x in CASES])
def test_only_neighbours_and_unbiased(fmt: object, x: float) -> None:
    """Over 10**6 draws only lo and hi occur and the mean is within 4 sigma of x."""
    n = 10**6
    lo, hi = _neighbours(fmt, x)
    assert lo < x < hi
    q = quantize(np.full(n, x), fmt, "stochastic", rng=12345)
    k = np.count_nonzero(q == hi)
    assert k + np.count_nonzero(q == lo) == n  # nothing but the two neighbours
    p = float((Fraction(x) - Fraction(lo)) / (Fraction(hi) - Fraction(lo)))  # P(hi)
    assert abs(k - n * p) <= 4 * math.sqrt(n * p * (1 - p)), (k, n * p)
    mean = lo + (hi - lo) * k / n
    assert abs(mean - x) <= 4 * (hi - lo) * math.sqrt(p * (1 - p) / n)


def test_same_seed_same_bits_and_seed_forms() -> None:
    x = np.random.default_rng(0).standard_normal(50_000) * 1e-3
    a = quantize(x, "fp8_e5m2", "stochastic", rng=7)
    b = quantize(x, "fp8_e5m2", "stochastic", rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.view(np.uint64), b.view(np.uint64))
    c = quantize(x, "fp8_e5m2", "stochastic", rng=8)
    assert np.count_nonzero(a != c) > 1000
    gen = np.random.default_rng(7)
    first = quantize(x, "fp8_e5m2", "stochastic", rng=gen)
    second = quantize(x, "fp8_e5m2", "stochastic", rng=gen)  # the generator advanced
    np.testing.assert_array_equal(first, a)
    assert np.count_nonzero(first != second) > 1000


def test_agrees_with_exact_given_the_same_uniforms(qformat: FloatFormat, quantize_oracle) -> None:
    """One uniform per element, also for representable ones, drawn in C order."""
    x = quantize_oracle.edge_inputs(qformat)
    if x.size > 2000:
        x = np.random.default_rng(6).choice(x, 2000, replace=False)
    seed = 2024
    u = np.random.default_rng(seed).random(x.size)
    want = quantize_oracle.exact_array(x, qformat, "stochastic", u)
    got = quantize(x, qformat, "stochastic", rng=seed)
    quantize_oracle.assert_same_bits(got, want, x, f"{qformat} stochastic")


@pytest.mark.parametrize("order", ["C", "F"])
def test_draw_order_is_c_order_of_the_logical_array(order: str) -> None:
    fmt = format("fp8_e4m3fn")
    x = np.asarray(np.random.default_rng(3).uniform(-3, 3, (7, 5)), order=order)
    u = np.random.default_rng(99).random(x.size)
    want = np.array([exact(float(v), fmt, "stochastic", u=float(w)) for v, w in zip(x.ravel(order="C"), u)])
    got = quantize(x, fmt, "stochastic", rng=99)
    np.testing.assert_array_equal(got.ravel(order="C"), want)


@pytest.mark.parametrize("name", ["fp16", "bf16", "fp8_e4m3fn", "fp4_e2m1fn"])
def test_threshold_is_strict_and_exact(name: str) -> None:
    """x = u * s (s the smallest subnormal) has fraction exactly u: u < u is false -> 0;
    one float64 ulp more gives s. Hand-derived, independent of exact."""
    fmt = format(name)
    s = fmt.xmin_subnormal
    u = np.random.default_rng(31).random(1000)
    x = u * s  # exact: scaling by a power of two
    assert np.all(quantize(x, fmt, "stochastic", rng=31) == 0.0)
    above = np.nextafter(x, np.inf)
    assert np.all(quantize(above, fmt, "stochastic", rng=31) == s)
    # negatives: lo = -s, hi = -0, fraction 1 - u, so -0 iff u < 1 - u
    neg = quantize(-x, fmt, "stochastic", rng=31)
    np.testing.assert_array_equal(neg, np.where(u < 0.5, -0.0, -s))
    assert np.all(np.signbit(neg))
