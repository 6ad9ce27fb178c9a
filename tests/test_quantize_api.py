"""API contract of refopt.quantize: dtypes, shapes, memory layouts, scalars, inputs never
mutated, randomness only from ``rng`` and bounded memory (errors: test_quantize_errors.py).

The exactness of the values is verified against refopt.exact in the format tests; here a
few samples are checked against it only for the input paths those tests do not take
(float32/float16 input, non-contiguous layouts, the order of the stochastic draws).
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refopt
from refopt import FloatFormat, exact, quantize

MODES = refopt.ROUNDING_MODES


def wide_values(shape: int | tuple[int, ...], seed: int = 0, decades: float = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * 10.0 ** rng.uniform(-decades, decades, shape)


def kwargs(mode: str, seed: int = 3) -> dict[str, int]:
    return {"rng": seed} if mode == "stochastic" else {}


def same(a: float, b: float) -> bool:
    """Equal as float64 values, including the sign of zero and NaN == NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


# ------------------------------------------------------------------ dtypes and scalars


@pytest.mark.parametrize("dtype, fmt", [(np.float64, "bf16"), (np.float32, "bf16"),
                                        (np.float32, "fp32"), (np.float16, "fp8_e4m3"),
                                        (np.float16, "fp16")])
def test_float_dtype_is_kept(dtype: type, fmt: str) -> None:
    x = wide_values((5, 7), decades=4).astype(dtype)
    q = quantize(x, fmt)
    assert q.dtype == dtype
    assert q.shape == x.shape


def test_python_numbers_and_ints_give_float64() -> None:
    assert quantize([1, 2, 3], "fp4_e2m1fn").dtype == np.float64
    assert quantize(np.arange(4, dtype=np.int32), "bf16").dtype == np.float64
    assert type(quantize(3, "fp16")) is np.float64
    assert type(quantize(0.1, "fp16")) is np.float64
    assert same(float(quantize(2**60 + 2**8, "bf16")), exact(2**60 + 2**8, "bf16"))
    nested = quantize([[0.1, 7], [5, -0.0]], "fp4_e2m1fn")  # hand-derived: ties to even
    assert nested.shape == (2, 2)
    np.testing.assert_array_equal(nested, [[0.0, 6.0], [4.0, -0.0]])
    assert np.signbit(nested[1, 1])


@pytest.mark.parametrize("scalar", [0.1, np.float64(0.1), np.float32(0.1), np.array(0.1)])
def test_scalar_in_numpy_scalar_out(scalar: object) -> None:
    q = quantize(scalar, "bf16")
    assert isinstance(q, np.floating) and not isinstance(q, np.ndarray)
    assert q.dtype == np.asarray(scalar).dtype
    assert same(float(q), exact(float(np.asarray(scalar)), "bf16"))


def test_byte_order_and_subclasses() -> None:
    x = wide_values(200, seed=6)
    expected = quantize(x, "fp8_e5m2", "odd")
    swapped = x.astype(x.dtype.newbyteorder(">" if x.dtype.byteorder != ">" else "<"))
    assert np.array_equal(quantize(swapped, "fp8_e5m2", "odd"), expected)
    masked = quantize(np.ma.masked_array(x, mask=x > 0), "fp8_e5m2", "odd")  # the data
    assert type(masked) is np.ndarray and np.array_equal(masked, expected)


def test_empty_arrays_keep_their_shape() -> None:
    for shape in [(0,), (3, 0), (0, 2, 5)]:
        q = quantize(np.empty(shape), "fp8_e4m3fn", "stochastic", rng=0)
        assert q.shape == shape and q.dtype == np.float64


# ------------------------------------------------------------------ layouts


def layouts() -> list[np.ndarray]:
    base = wide_values((6, 40, 9), seed=1)
    return [
        base,
        np.asfortranarray(base),
        base.transpose(2, 0, 1),
        base[:, ::-3, 1::2],
        base[::-1],
        np.ascontiguousarray(base.reshape(-1)[::5]),
    ]


@pytest.mark.parametrize("index", range(6))
def test_memory_order_preserved_like_empty_like(index: int) -> None:
    x = layouts()[index]
    q = quantize(x, "bf16")
    expected = np.empty_like(x)
    assert q.shape == x.shape
    assert np.argsort(q.strides).tolist() == np.argsort(expected.strides).tolist()
    assert q.flags.c_contiguous == expected.flags.c_contiguous
    assert q.flags.f_contiguous == expected.flags.f_contiguous


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index", range(6))
def test_values_do_not_depend_on_layout(mode: str, index: int) -> None:
    # the same seed gives the same bits in every layout: the uniforms are drawn in
    # C order of the elements, whatever the memory order
    x = layouts()[index]
    q = quantize(x, "fp8_e4m3fn", mode, **kwargs(mode))
    reference = quantize(np.ascontiguousarray(x), "fp8_e4m3fn", mode, **kwargs(mode))
    assert np.array_equal(q, reference, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(max_dims=3, max_side=6),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    ),
    st.sampled_from(MODES),
)
def test_elementwise_and_layout_free(x: np.ndarray, mode: str) -> None:
    # each element's result is that of the element alone (the stochastic draw of
    # element i in C order is the i-th uniform of the generator)
    q = quantize(x.T, "fp6_e3m2fn", mode, **kwargs(mode))
    uniforms = np.random.default_rng(3).random(x.size) if mode == "stochastic" else None
    flat = np.ascontiguousarray(x.T).reshape(-1)
    for i, value in enumerate(flat):
        u = None if uniforms is None else float(uniforms[i])
        assert same(float(np.ascontiguousarray(q).reshape(-1)[i]),
                    exact(float(value), "fp6_e3m2fn", mode, u=u))


# ------------------------------------------------------------------ float32/16 inputs


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype, fmt", [(np.float32, "bf16"), (np.float32, "fp8_e5m2"),
                                        (np.float16, "fp8_e4m3fn"), (np.float32, "tf32")])
def test_narrow_float_inputs_round_once(mode: str, dtype: type, fmt: str) -> None:
    x = wide_values(300, seed=4, decades=4 if dtype == np.float16 else 12).astype(dtype)
    x[:4] = [0.0, -0.0, np.inf, np.nan]
    q = quantize(x, fmt, mode, **kwargs(mode))
    uniforms = np.random.default_rng(3).random(x.size) if mode == "stochastic" else None
    for i in range(x.size):
        u = None if uniforms is None else float(uniforms[i])
        assert same(float(q[i]), exact(float(x[i]), fmt, mode, u=u)), (x[i], q[i])


# ------------------------------------------------------------------ inputs untouched


@pytest.mark.parametrize("mode", MODES)
def test_input_not_mutated_and_read_only_ok(mode: str) -> None:
    x = wide_values((50, 30))
    x[0, :3] = [np.nan, np.inf, -0.0]
    before = x.copy()
    x.setflags(write=False)
    quantize(x, "fp8_e4m3", mode, **kwargs(mode))
    quantize(x.T, FloatFormat.mantissa_only(3), mode, **kwargs(mode))
    assert np.array_equal(x, before, equal_nan=True)
    assert np.array_equal(np.signbit(x), np.signbit(before))


def test_result_never_aliases_input() -> None:
    x = wide_values(10)
    q = quantize(x, "fp64")
    assert not np.shares_memory(q, x)
    assert np.array_equal(q, x)


# ------------------------------------------------------------------ randomness


def test_seed_and_generator_are_equivalent_and_reproducible() -> None:
    x = wide_values(1000)
    a = quantize(x, "bf16", "stochastic", rng=42)
    b = quantize(x, "bf16", "stochastic", rng=np.random.default_rng(42))
    c = quantize(x, "bf16", "stochastic", rng=42)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert not np.array_equal(a, quantize(x, "bf16", "stochastic", rng=43))


def test_one_uniform_per_element_in_order() -> None:
    # also exactly representable elements consume their draw
    x = np.array([1.0, 0.1, 2.0, 0.3, 0.0, np.nan, np.inf])
    rng = np.random.default_rng(9)
    quantize(x, "fp16", "stochastic", rng=rng)
    assert rng.random() == np.random.default_rng(9).random(x.size + 1)[-1]


def test_deterministic_modes_ignore_rng() -> None:
    x = wide_values(100)
    assert np.array_equal(quantize(x, "bf16", "up", rng=1), quantize(x, "bf16", "up"))


# ------------------------------------------------------------------ memory


def test_peak_memory_is_bounded_not_proportional() -> None:
    x = wide_values(1_000_000)
    for mode in ("nearest_even", "stochastic"):
        tracemalloc.start()
        try:
            q = quantize(x, "fp8_e4m3fn", mode, rng=0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak - q.nbytes < 2_000_000  # block buffers only, not a copy of x
