"""refopt.quantize: clear errors for bad input, no mutation, dtype/shape/layout kept."""

from __future__ import annotations

import numpy as np
import pytest

from refopt import FloatFormat, exact, list_formats, quantize


def test_unknown_format_name_lists_the_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        quantize([1.0], "fp9")
    for name in list_formats():
        assert name in str(info.value)


@pytest.mark.parametrize("fmt", [3, None, 1.5, ("fp16",)])
def test_format_of_wrong_type(fmt: object) -> None:
    with pytest.raises(TypeError, match="FloatFormat"):
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
    with pytest.raises(ValueError, match="rounding.*nearest_even, nearest_away, toward_zero, up, down, odd, stochastic"):
        quantize([1.0], "bf16", rounding)


def test_rounding_of_wrong_type() -> None:
    with pytest.raises((TypeError, ValueError), match="rounding"):
        quantize([1.0], "bf16", 0)  # type: ignore[arg-type]


def test_stochastic_needs_rng() -> None:
    with pytest.raises(ValueError, match="rng"):
        quantize([1.0], "bf16", "stochastic")


@pytest.mark.parametrize("rng", ["seed", 1.5, True, np.random.RandomState(0)])
def test_bad_rng(rng: object) -> None:
    with pytest.raises(TypeError, match="rng"):
        quantize([1.0], "bf16", "stochastic", rng=rng)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "x",
    [
        np.array([1 + 2j]),
        np.array([1.0], dtype=object),
        np.array([True, False]),
        True,
        np.bool_(False),
        "1.0",
        np.array(["1.0"]),
        1 + 0j,
    ],
    ids=["complex", "object", "bool-array", "bool", "np-bool", "str", "str-array", "complex-scalar"],
)
def test_non_real_input_is_a_type_error(x: object) -> None:
    with pytest.raises(TypeError, match="x"):
        quantize(x, "bf16")


@pytest.mark.parametrize("fmt", ["fp64", FloatFormat.mantissa_only(3), FloatFormat(8, 24), FloatFormat(9, 10)])
def test_float32_input_with_a_format_too_wide_is_an_error(fmt: object) -> None:
    x = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match="float32"):
        quantize(x, fmt)


@pytest.mark.parametrize("name", ["fp32", "tf32", "bf16", "fp16", "fp8_e4m3fn", "fp4_e2m1fn"])
def test_float32_input_with_a_format_that_fits(name: str) -> None:
    x = np.float32([0.1, -3.0e5, 1e-40, np.inf, np.nan])
    got = quantize(x, name)
    assert got.dtype == np.float32
    want = [exact(float(v), name) for v in x.astype(np.float64)]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float32))


@pytest.mark.parametrize("rounding", ["nearest_even", "odd", "stochastic"])
def test_input_is_never_mutated(rounding: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 33)) * 10.0 ** rng.uniform(-10, 10, (64, 33))
    before = x.copy()
    quantize(x, "fp8_e4m3fn", rounding, rng=1)
    quantize(x[::2, ::-3], "bf16", rounding, rng=1)
    np.testing.assert_array_equal(x, before)
    x.flags.writeable = False  # read-only input is fine
    quantize(x, "bf16", rounding, rng=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
def test_dtype_shape_and_order_preserved(dtype: type, order: str) -> None:
    x = np.asarray(np.random.default_rng(1).standard_normal((5, 4, 3)), dtype=dtype, order=order)
    got = quantize(x, "bf16")
    assert got.dtype == dtype and got.shape == x.shape
    assert got.flags[order + "_CONTIGUOUS"]
    want = np.array([exact(float(v), "bf16") for v in x.ravel(order="C")]).reshape(x.shape)
    np.testing.assert_array_equal(got, want.astype(dtype))


def test_strided_views_and_empty_arrays() -> None:
    base = np.random.default_rng(2).standard_normal((10, 12))
    view = base[1::3, ::-2]
    got = quantize(view, "fp8_e5m2")
    assert got.shape == view.shape
    want = np.array([exact(float(v), "fp8_e5m2") for v in view.ravel()]).reshape(view.shape)
    np.testing.assert_array_equal(got, want)
    empty = quantize(np.empty((0, 3)), "bf16")
    assert empty.shape == (0, 3) and empty.dtype == np.float64


def test_scalars_and_sequences() -> None:
    got = quantize(0.1, "bf16")
    assert isinstance(got, np.float64) and got == exact(0.1, "bf16")
    got = quantize(np.float32(0.1), "bf16")
    assert isinstance(got, np.float32)
    got = quantize(np.array(0.1), "bf16")
    assert isinstance(got, np.float64) and np.ndim(got) == 0
    got = quantize(3, "fp4_e2m1fn")
    assert got.dtype == np.float64 and got == 3.0
    got = quantize([[0.1, 7], [5, -0.0]], "fp4_e2m1fn")
    assert got.dtype == np.float64 and got.shape == (2, 2)
    np.testing.assert_array_equal(got, [[0.0, 6.0], [4.0, -0.0]])
