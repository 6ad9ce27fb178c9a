"""Properties of refopt.quantize that hold for every format and input (hypothesis)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refopt import ROUNDING_MODES, FloatFormat, quantize

DETERMINISTIC = tuple(m for m in ROUNDING_MODES if m != "stochastic")
SYMMETRIC = ("nearest_even", "nearest_away", "toward_zero", "odd")
EXAMPLES = settings(max_examples=100, deadline=None)


def _near_range(fmt: FloatFormat) -> st.SearchStrategy[float]:
    """Floats concentrated on the format's range (subnormals to past overflow), both signs."""
    lo = max(fmt.emin - fmt.mantissa_bits - 3, -1074)
    hi = min(fmt.emax + 2, 1023)
    return st.builds(
        lambda m, e, neg: (-1) ** neg * math.ldexp(m, e),
        st.floats(0.5, 1.0, exclude_max=True),
        st.integers(lo, hi),
        st.booleans(),
    )


def _inputs(fmt: FloatFormat) -> st.SearchStrategy[float]:
    return st.one_of(_near_range(fmt), st.floats(allow_nan=False))


def _draw_format(data: st.DataObject, oracle) -> FloatFormat:
    return oracle.formats[data.draw(st.sampled_from(sorted(oracle.formats)))]


def _draw(data: st.DataObject, oracle, max_size: int = 8, min_size: int = 1) -> tuple[FloatFormat, np.ndarray]:
    """A test format and an array of inputs for it."""
    fmt = _draw_format(data, oracle)
    return fmt, np.array(data.draw(st.lists(_inputs(fmt), min_size=min_size, max_size=max_size)))


def _q(x: object, fmt: FloatFormat, mode: str, seed: int = 0) -> np.ndarray:
    return quantize(x, fmt, mode, rng=seed if mode == "stochastic" else None)


@EXAMPLES
@given(data=st.data(), mode=st.sampled_from(ROUNDING_MODES))
def test_idempotent(data: st.DataObject, mode: str, quantize_oracle) -> None:
    fmt, x = _draw(data, quantize_oracle)
    once = _q(x, fmt, mode)
    twice = _q(once, fmt, mode, seed=1)
    np.testing.assert_array_equal(once, twice)


@EXAMPLES
@given(data=st.data(), mode=st.sampled_from(DETERMINISTIC))
def test_monotone(data: st.DataObject, mode: str, quantize_oracle) -> None:
    fmt, x = _draw(data, quantize_oracle, min_size=2)
    x = np.sort(x)
    q = _q(x, fmt, mode)
    finite = q[~np.isnan(q)]  # NaN marks overflow under the "nan" policy
    assert np.all(finite[1:] >= finite[:-1]), (x, q)


@EXAMPLES
@given(data=st.data())
def test_negation_symmetry(data: st.DataObject, quantize_oracle) -> None:
    fmt, x = _draw(data, quantize_oracle)
    for mode in SYMMETRIC:
        np.testing.assert_array_equal(_q(-x, fmt, mode), -_q(x, fmt, mode))
    np.testing.assert_array_equal(_q(-x, fmt, "up"), -_q(x, fmt, "down"))


@EXAMPLES
@given(data=st.data(), mode=st.sampled_from(ROUNDING_MODES))
def test_results_are_representable(data: st.DataObject, mode: str, quantize_oracle) -> None:
    fmt, x = _draw(data, quantize_oracle)
    for r in _q(x, fmt, mode).tolist():
        if math.isfinite(r):
            fmt.encode(r)  # ValueError if r is not a value of fmt
        else:
            assert math.isnan(r) or fmt.has_inf


@EXAMPLES
@given(data=st.data(), mode=st.sampled_from(ROUNDING_MODES))
def test_relative_error_bound_paper_assumption_3_1(data: st.DataObject, mode: str, quantize_oracle) -> None:
    """|Q(x) - x| <= q |x| for x in the normal range, q = fmt.unit_roundoff(mode).

    Provenance: paper (Assumption 3.1), with refopt's mode-dependent q: 2**-(M+1) for
    round-to-nearest, 2**-M for the others (the paper's q = 2**-M covers all of them).
    """
    fmt = _draw_format(data, quantize_oracle)
    x = data.draw(_near_range(fmt))
    assume(fmt.xmin <= abs(x) <= fmt.xmax)
    q = float(_q(x, fmt, mode, seed=data.draw(st.integers(0, 2**32))))
    assert abs(Fraction(q) - Fraction(x)) <= Fraction(fmt.unit_roundoff(mode)) * abs(Fraction(x))


@EXAMPLES
@given(data=st.data())
def test_directed_modes_are_directed(data: st.DataObject, quantize_oracle) -> None:
    fmt, x = _draw(data, quantize_oracle)
    x = x[np.isfinite(x)]  # infinities follow the format's policy, not a direction
    up, down, rz = _q(x, fmt, "up"), _q(x, fmt, "down"), _q(x, fmt, "toward_zero")
    directed = (np.abs(x) <= fmt.xmax) | (fmt.overflow != "saturate")  # saturation caps
    with np.errstate(invalid="ignore"):
        assert not np.any((up < x) & directed) and not np.any((down > x) & directed)
        assert np.all(np.abs(rz) <= np.abs(x))
    assert not np.isnan(rz).any()  # toward zero never overflows (to inf or NaN)


@EXAMPLES
@given(data=st.data(), mode=st.sampled_from(ROUNDING_MODES))
def test_agrees_with_exact_on_random_inputs(data: st.DataObject, mode: str, quantize_oracle) -> None:
    fmt, x = _draw(data, quantize_oracle, 16)
    seed = data.draw(st.integers(0, 2**32))
    u = np.random.default_rng(seed).random(x.size) if mode == "stochastic" else None
    want = quantize_oracle.exact_array(x, fmt, mode, u)
    quantize_oracle.assert_same_bits(_q(x, fmt, mode, seed), want, x, f"{fmt} {mode}")
