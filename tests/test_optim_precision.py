"""Precision policies and the worst-case quantizer, against exact rational arithmetic."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refopt import FloatFormat, exact
from refopt.optim import Precision, worst_case

finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False).filter(
    lambda x: x == 0 or abs(x) > 1e-290
)


@settings(max_examples=300, deadline=None)
@given(x=finite, k=st.integers(2, 30), sign=st.sampled_from(["plus", "minus"]))
def test_worst_case_error_is_q_up_to_one_float64_ulp(x: float, k: int, sign: str) -> None:
    q = 2.0**-k * 1.3  # not a power of two: the product q*x is inexact
    y = float(worst_case(q, sign)(np.array([x]))[0])
    err, bound = abs(Fraction(y) - Fraction(x)), Fraction(q) * abs(Fraction(x))
    assert err <= bound  # Assumption 3.1 holds
    assert bound - err <= Fraction(2.0**-52) * abs(Fraction(y))  # ... with equality up to 1 ulp
    s = 1 if sign == "plus" else -1
    assert (Fraction(y) - Fraction(x)) * s * (1 if x >= 0 else -1) >= 0  # the stated sign


def test_worst_case_power_of_two_q_is_exact_for_short_mantissas() -> None:
    x = np.array([1.0, -3.0, 0.75, 2.0**-20, 0.0])
    q = 2.0**-8
    np.testing.assert_array_equal(worst_case(q, "+")(x), x * (1 + q))
    np.testing.assert_array_equal(worst_case(q, "-")(x), x * (1 - q))


def test_worst_case_adversarial_points_along_reference() -> None:
    x = np.array([1.0, -2.0, 3.0, -4.0, 5.0])
    d = np.array([1.0, 1.0, -1.0, -1.0, 0.0])
    y = worst_case(0.25, "adversarial", reference=d)(x)
    # error = q |x| sign(d), and +q|x| where d == 0 (s = +1)
    np.testing.assert_array_equal(y - x, [0.25, 0.5, -0.75, -1.0, 1.25])
    y2 = worst_case(0.25, "adversarial", reference=lambda v: -v)(x)  # shrink every magnitude
    np.testing.assert_array_equal(y2, x * 0.75)


def test_worst_case_random_uses_one_uniform_per_element() -> None:
    x = np.arange(1.0, 11.0)
    y = worst_case(0.5, "random", rng=7)(x)
    u = np.random.default_rng(7).random(10)
    np.testing.assert_array_equal(y, np.where(u < 0.5, x * 0.5, x * 1.5))


def test_worst_case_bad_input() -> None:
    with pytest.raises(ValueError, match="q must be"):
        worst_case(0.6)
    with pytest.raises(ValueError, match="sign must be"):
        worst_case(0.1, "sideways")
    with pytest.raises(ValueError, match="reference"):
        worst_case(0.1, "adversarial")
    with pytest.raises(ValueError, match="rng"):
        worst_case(0.1, "random")
    with pytest.raises(ValueError, match="shape"):
        worst_case(0.1, "adversarial", reference=np.ones(3))(np.ones(2))


@pytest.mark.parametrize("rounding", ["nearest_even", "toward_zero", "up", "odd"])
def test_precision_rounds_each_component_like_exact(rounding: str) -> None:
    x = np.random.default_rng(0).standard_normal(40) * 10.0 ** np.arange(-20, 20)
    fmts = {"weights": "bf16", "grads": "fp8_e4m3fn", "m": "fp16", "v": FloatFormat.mantissa_only(3)}
    p = Precision(**fmts, rounding=rounding)
    for name, fmt in fmts.items():
        got = p.quantize(name, x)
        want = np.array([exact(float(v), fmt, rounding) for v in x])
        np.testing.assert_array_equal(got, want)
    assert np.array_equal(p.quantize_weights(x), p.quantize("weights", x))


def test_precision_exact_components_and_dicts() -> None:
    p = Precision(m="bf16")
    x = {"b": np.array([1.0 + 2.0**-12]), "a": np.array([[1.0 / 3.0]])}
    assert p.quantize_v(x) is x  # exact: no copy
    q = p.quantize_m(x)
    assert sorted(q) == ["a", "b"] and q["b"][0] == 1.0 and q["a"][0, 0] == exact(1 / 3, "bf16")
    assert x["b"][0] == 1.0 + 2.0**-12  # input not mutated


def test_stochastic_rounding_draws_in_sorted_key_order() -> None:
    x = {"z": np.full(5, 1.0 + 2.0**-9), "a": np.full(3, 1.0 + 2.0**-9)}
    p = Precision(m="bf16", rounding="stochastic", rng=3)
    q = p.quantize_m(x)
    u = np.random.default_rng(3).random(8)
    up = 1.0 + 2.0**-7
    np.testing.assert_array_equal(q["a"], np.where(u[:3] < 0.25, up, 1.0))  # "a" first
    np.testing.assert_array_equal(q["z"], np.where(u[3:] < 0.25, up, 1.0))


def test_unit_roundoff_levels() -> None:
    p = Precision(weights="bf16", grads="bf16", m=worst_case(0.01), rounding="toward_zero")
    assert p.unit_roundoff("weights") == 2.0**-7
    assert p.unit_roundoff("m") == 0.01
    assert p.unit_roundoff("v") == 0.0
    assert Precision(weights="bf16").unit_roundoff("weights") == 2.0**-8
    with pytest.raises(ValueError, match="unknown"):
        Precision(weights=lambda a: a).unit_roundoff("weights")


def test_precision_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown precision component 'w'"):
        Precision().quantize("w", np.ones(2))
    with pytest.raises(ValueError, match="unknown precision field"):
        Precision().replace(moment="bf16")
    with pytest.raises(TypeError, match="component 'grads'"):
        Precision(grads=3.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="component 'm': unknown format 'bf17'"):
        Precision(m="bf17")
    with pytest.raises(ValueError, match="rounding"):
        Precision(m="bf16", rounding="nearest")
    with pytest.raises(TypeError, match="moment"):
        Precision(moment="bf16")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"unknown precision component\(s\) \['moment'\]"):
        Precision.worst_case({"moment": 0.1})
    with pytest.raises(ValueError, match="needs rng"):
        Precision(m="bf16", rounding="stochastic")
    with pytest.raises(TypeError, match="rng"):
        Precision(m="bf16", rounding="stochastic", rng="seed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="returned shape"):
        Precision(m=lambda a: a.ravel()[:1]).quantize_m(np.ones(3))


def test_config_round_trip_restores_generator_state() -> None:
    p = Precision(weights="bf16", m=worst_case(2.0**-5, "random", rng=1), v="fp16", rounding="stochastic", rng=11)
    p.quantize_weights(np.ones(4))  # advance the stream
    cfg = json.loads(json.dumps(p.config()))
    p2 = Precision.from_config(cfg)
    x = np.linspace(1, 2, 50)
    np.testing.assert_array_equal(p2.quantize_v(x), p.quantize_v(x))
    assert p2.format_of("v") == p.format_of("v") and p2.unit_roundoff("m") == 2.0**-5
    with pytest.raises(ValueError, match="cannot be serialised"):
        Precision(m=np.sign).config()
    with pytest.raises(ValueError, match="unknown precision config"):
        Precision.from_config({"moment": None})


def test_stochastic_rounding_keeps_representable_values() -> None:
    x = np.array([1.0, -1.0, 2.0, 0.5, -3.0, 0.0])
    p = Precision(weights="bf16", rounding="stochastic", rng=0)
    np.testing.assert_array_equal(p.quantize_weights(x), x)


def test_worst_case_policy() -> None:
    p = Precision.worst_case({"m": 2.0**-4, "v": 2.0**-6}, {"m": "+", "v": "-"})
    assert p.unit_roundoff("m") == 2.0**-4 and p.unit_roundoff("v") == 2.0**-6 and p.component("grads") is None
    np.testing.assert_array_equal(p.quantize_v(np.array([4.0])), [4.0 * (1 - 2.0**-6)])
    every = Precision.worst_case(0.01, "random", rng=3)
    assert all(every.unit_roundoff(c) == 0.01 for c in ("weights", "grads", "m", "v"))
    with pytest.raises(ValueError, match="unknown precision component"):
        Precision.worst_case({"moment": 0.1})
