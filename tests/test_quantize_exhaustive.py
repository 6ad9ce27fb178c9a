"""refopt.quantize agrees bit for bit with refopt.exact on edge sets of 29 formats.

For every format (all presets and custom corner cases, see ``tests/conftest.py``) and
every deterministic rounding mode, the edge set holds: every value of formats of at most
8 bits (all codes of 16-bit ones' subnormals, binade edges and a sample otherwise), every
midpoint, midpoint +- one float64 ulp and ``mid * (1 +- 2**-40)``, the carry from the
largest subnormal, half the smallest subnormal, the overflow threshold and its
neighbours, +-0, +-inf, NaN and extreme float64 values, with both signs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from refopt import FloatFormat, quantize

MODES = ("nearest_even", "nearest_away", "toward_zero", "up", "down", "odd")


@pytest.mark.parametrize("rounding", MODES)
def test_edge_set_matches_exact(qformat: FloatFormat, rounding: str, quantize_oracle) -> None:
    x = quantize_oracle.edge_inputs(qformat)
    got = quantize(x, qformat, rounding)
    want = quantize_oracle.exact_array(x, qformat, rounding)
    quantize_oracle.assert_same_bits(got, want, x, f"{qformat} {rounding}")


def test_hand_derived_values(quantize_oracle) -> None:
    misses = []
    for name, mode, x, want in quantize_oracle.hand_cases:
        got = float(quantize(x, quantize_oracle.formats[name], mode))
        same = math.isnan(got) and math.isnan(want) or (
            got == want and math.copysign(1, got) == math.copysign(1, want)
        )
        if not same:
            misses.append((name, mode, x, want, got))
    assert not misses, "\n".join(f"{n} {m} x={x!r}: want {w!r} got {g!r}" for n, m, x, w, g in misses)


@pytest.mark.parametrize("rounding", (*MODES, "stochastic"))
def test_every_value_is_a_fixed_point(qformat: FloatFormat, rounding: str) -> None:
    """All codes of <= 8-bit formats (a sample of wider ones) come back unchanged."""
    if qformat.bits <= 12:
        values = qformat.all_values()
    else:
        codes = np.random.default_rng(3).integers(0, 2**qformat.bits, 4000, dtype=np.uint64)
        values = np.array([_value_or_nan(qformat, int(c)) for c in codes])
    values = values[np.isfinite(values)]
    if qformat.top_binade == "fnuz":
        values = values[(values != 0) | ~np.signbit(values)]
    got = quantize(values, qformat, rounding, rng=0 if rounding == "stochastic" else None)
    np.testing.assert_array_equal(got.view(np.uint64), values.view(np.uint64))


def _value_or_nan(fmt: FloatFormat, code: int) -> float:
    try:
        return fmt.decode(code)
    except ValueError:  # subnormal pattern without subnormals
        return math.nan


def test_at_least_twelve_formats_checked(quantize_oracle) -> None:
    formats = quantize_oracle.formats.values()
    assert len(formats) >= 12
    assert {f.top_binade for f in formats} == {"ieee", "fn", "fnuz"}
    assert {f.overflow for f in formats} == {"inf", "nan", "saturate"}
    assert {f.subnormals for f in formats} == {True, False}


def test_edge_sets_contain_the_traps(quantize_oracle) -> None:
    """The named trap inputs are really in the edge sets (guards the generator)."""
    fmts = quantize_oracle.formats
    e4m3fn = set(quantize_oracle.edge_inputs(fmts["fp8_e4m3fn"]).tolist())
    assert {464.0, -464.0, math.nextafter(464.0, math.inf), 2.0**-10, 7.5 * 2.0**-9} <= e4m3fn
    assert {464.0 * (1 + 2.0**-40), 0.0, -0.0, math.inf, -math.inf} <= e4m3fn
    fp16 = set(quantize_oracle.edge_inputs(fmts["fp16"]).tolist())
    subnormals = {k * 2.0**-24 for k in range(1, 1024)}
    assert subnormals <= fp16  # every subnormal
    assert {65520.0, math.nextafter(65520.0, 0.0), 2.0**-25} <= fp16
    assert any(math.isnan(v) for v in quantize_oracle.edge_inputs(fmts["bf16"]))
