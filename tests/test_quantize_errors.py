"""refopt.quantize and refopt.exact reject bad input with an error that names the argument.

The issue's list: unknown format name (the message lists the valid names), exponent or
mantissa bits out of range, unknown rounding, stochastic rounding without ``rng``,
complex/object/bool input, a format too wide for a float32 input.
"""

from __future__ import annotations

import numpy as np
import pytest

from refopt import ROUNDING_MODES, FloatFormat, exact, list_formats, quantize


@pytest.mark.parametrize("fn", [quantize, exact], ids=["quantize", "exact"])
def test_unknown_format_name_lists_the_valid_names(fn) -> None:
    with pytest.raises(ValueError, match="^fmt: unknown format 'fp9'") as info:
        fn(1.0, "fp9")
    for name in list_formats():
        assert name in str(info.value)


@pytest.mark.parametrize("fmt", [3, None, 1.5, ("fp16",)])
def test_format_of_wrong_type(fmt: object) -> None:
    with pytest.raises(TypeError, match="^fmt must be a preset name or a FloatFormat"):
        quantize([1.0], fmt)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"exponent_bits": 12, "mantissa_bits": 3}, "exponent_bits must be in 1..11"),
        ({"exponent_bits": 0, "mantissa_bits": 3}, "exponent_bits must be in 1..11"),
        ({"exponent_bits": 5, "mantissa_bits": 53}, "mantissa_bits must be in 0..52"),
        ({"exponent_bits": 5, "mantissa_bits": -1}, "mantissa_bits must be in 0..52"),
    ],
)
def test_bits_out_of_range(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FloatFormat(**kwargs)


@pytest.mark.parametrize("rounding", ["nearest", "RNE", "", "stochastic_rounding"])
def test_unknown_rounding_lists_the_modes(rounding: str) -> None:
    with pytest.raises(ValueError, match="rounding") as info:
        quantize([1.0], "bf16", rounding)
    assert ", ".join(ROUNDING_MODES) in str(info.value)


@pytest.mark.parametrize("rounding", [0, None])
def test_rounding_of_wrong_type(rounding: object) -> None:
    with pytest.raises(TypeError, match="rounding"):
        quantize([1.0], "bf16", rounding)  # type: ignore[arg-type]


def test_stochastic_needs_rng() -> None:
    with pytest.raises(ValueError, match="^rng"):
        quantize([1.0], "bf16", "stochastic")


def test_negative_seed() -> None:
    with pytest.raises(ValueError, match="rng"):
        quantize([1.0], "bf16", "stochastic", rng=-1)


@pytest.mark.parametrize("rng", ["seed", 1.5, True, np.random.RandomState(0)])
@pytest.mark.parametrize("rounding", ["stochastic", "up"])
def test_bad_rng(rng: object, rounding: str) -> None:
    """rng must be a Generator or an int seed; deterministic modes validate it too."""
    with pytest.raises(TypeError, match="rng"):
        quantize([1.0], "bf16", rounding, rng=rng)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "x",
    [np.array([1 + 2j]), np.array([1.0], dtype=object), np.array([True, False]), True,
     np.bool_(False), "1.0", np.array(["1.0"]), 1 + 0j, ["a"], None],
    ids=["complex", "object", "bool-array", "bool", "np-bool", "str", "str-array",
         "complex-scalar", "str-list", "None"],
)
def test_non_real_input_is_a_type_error(x: object) -> None:
    with pytest.raises(TypeError, match="^x"):
        quantize(x, "bf16")


def test_integers_must_be_exact_in_float64() -> None:
    with pytest.raises(ValueError, match="x"):
        quantize(2**53 + 1, "fp64")
    with pytest.raises(ValueError, match="x"):
        quantize(np.array([2**62 + 1], dtype=np.int64), "fp64")
    assert quantize(np.array([2**62], dtype=np.int64), "fp64") == 2.0**62


@pytest.mark.parametrize("fmt", ["fp64", FloatFormat.mantissa_only(3), FloatFormat(8, 24),
                                 FloatFormat(9, 7), FloatFormat(9, 10)])
def test_float32_input_with_a_format_too_wide_is_an_error(fmt: object) -> None:
    with pytest.raises(ValueError) as info:
        quantize(np.ones(3, dtype=np.float32), fmt)  # type: ignore[arg-type]
    assert "fmt" in str(info.value) and "float32" in str(info.value)
    assert quantize(np.ones(3), fmt).dtype == np.float64  # fine for a float64 input


@pytest.mark.parametrize("name", ["fp32", "tf32", "bf16", "fp16", "fp8_e4m3fn", "fp4_e2m1fn"])
def test_float32_input_with_a_format_that_fits(name: str) -> None:
    x = np.float32([0.1, -3.0e5, 1e-40, np.inf, np.nan])
    got = quantize(x, name)
    assert got.dtype == np.float32
    want = [exact(float(v), name) for v in x.astype(np.float64)]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float32))
