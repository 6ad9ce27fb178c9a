"""Round to nearest even block by block: ordinary values, zeros, and specials among them.

refopt.quantize rounds a block whose values are all ordinary (zero, or of magnitude in
[2**emin, xmax]) with one short sequence of float64 operations, and a block holding any
other value (below the smallest normal, beyond xmax, inf, NaN) with the general steps,
that block and the rest of the call (see the Notes of ``refopt.quantize``). These tests
compare every element with :func:`refopt.exact`: blocks of ties, their neighbours and
signed zeros; each special edge value and NaNs of many payloads alone among ordinary
values; specials in later blocks; float32 and strided inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import refopt
from refopt import FloatFormat, quantize

BLOCK = 32768  # elements per block of refopt.quantize
NAMES = ["bf16", "fp16", "fp32", "tf32", "fp8_e4m3fn", "fp8_e5m2", "fp8_e4m3fnuz"]
# NaN bit patterns: quiet and signalling, both signs, payload bits low, high or all.
NAN_BITS = [
    0x7FF0000000000001, 0xFFF0000000000001, 0x7FF8000000000000, 0xFFF8000000000000,
    0x7FF0000000001000, 0x7FF0000000800000, 0x7FF0200000000000, 0x7FF7FFFFFFFFFFFF,
    0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 0x7FF000000000FFFF, 0x7FF4000000000001,
]


def _nans(rng: np.random.Generator, extra: int = 20) -> np.ndarray:
    payload = rng.integers(1, 2**52, extra, dtype=np.uint64)
    sign = rng.integers(0, 2, extra, dtype=np.uint64) << np.uint64(63)
    random_nans = payload | sign | np.uint64(0x7FF << 52)
    return np.concatenate([np.array(NAN_BITS, dtype=np.uint64), random_nans]).view(np.float64)


def _edges(name: str, oracle) -> tuple[FloatFormat, np.ndarray, np.ndarray]:
    """The format, its ordinary edge inputs (signed zeros included) and the special ones."""
    fmt = refopt.format(name)
    x = oracle.edge_inputs(fmt)
    mag = np.abs(x)
    ordinary = (x == 0) | np.isfinite(x) & (mag >= 2.0**fmt.emin) & (mag <= fmt.xmax)
    special = np.concatenate([x[~ordinary], _nans(np.random.default_rng(0)), [5e-324, -5e-324]])
    return fmt, np.concatenate([x[ordinary], [-0.0]]), special


def _check(got: np.ndarray, x: np.ndarray, fmt: FloatFormat, oracle, context: str) -> None:
    """Compare with refopt.exact, computed once per distinct input bit pattern."""
    x64 = np.asarray(x, dtype=np.float64).ravel()
    keys, inverse = np.unique(x64.view(np.uint64), return_inverse=True)
    want = oracle.exact_array(keys.view(np.float64), fmt, "nearest_even")[inverse]
    oracle.assert_same_bits(np.asarray(got).ravel(), want, x64, context)


def test_blocks_of_ties_neighbours_and_zeros(quantize_oracle) -> None:
    """Ties, their float64 neighbours and other points in every binade, and signed zeros."""
    rng = np.random.default_rng(4)
    formats = [refopt.format(n) for n in ("bf16", "fp16", "tf32")]
    for fmt in (*formats, FloatFormat(8, 1), FloatFormat(10, 50)):
        m = fmt.mantissa_bits
        e = rng.integers(fmt.emin, fmt.emax, BLOCK)  # below the top binade: no overflow
        k = rng.integers(2**m, 2 ** (m + 1), BLOCK).astype(np.float64)
        tie = np.ldexp(k + 0.5, e - m)  # exact: m + 2 <= 53 bits
        x = np.select(
            [rng.random(BLOCK) < p for p in (0.25, 0.4, 0.55, 0.7)],
            [tie, np.nextafter(tie, np.inf), np.nextafter(tie, -np.inf), np.ldexp(k, e - m)],
            np.ldexp(k + 0.25, e - m),
        ) * rng.choice([-1.0, 1.0], BLOCK)
        x[::97], x[::101] = 0.0, -0.0
        _check(quantize(x, fmt), x, fmt, quantize_oracle, f"{fmt} ordinary")


@pytest.mark.parametrize("name", NAMES)
def test_each_special_alone_among_ordinary_values(name: str, quantize_oracle) -> None:
    fmt, ordinary, special = _edges(name, quantize_oracle)
    rng = np.random.default_rng(1)
    inputs, results = [], []
    for value in special:
        x = rng.choice(ordinary, 64)
        x[rng.integers(64)] = value
        inputs.append(x)
        results.append(quantize(x, fmt))
    _check(np.concatenate(results), np.concatenate(inputs), fmt, quantize_oracle, name)
    _check(quantize(ordinary, fmt), ordinary, fmt, quantize_oracle, f"{name} ordinary")


@pytest.mark.parametrize("name", ["bf16", "fp16", "fp8_e4m3fn"])
def test_specials_in_later_blocks(name: str, quantize_oracle) -> None:
    fmt, ordinary, special = _edges(name, quantize_oracle)
    rng = np.random.default_rng(2)
    for value in rng.choice(special, 6, replace=False):
        x = rng.choice(ordinary, 3 * BLOCK + 5)
        x[[BLOCK + rng.integers(BLOCK), -1]] = value
        _check(quantize(x, fmt), x, fmt, quantize_oracle, f"{name} x={value!r} in block 2")


@pytest.mark.parametrize("name", ["bf16", "fp16", "tf32"])
def test_float32_and_strided_inputs(name: str, quantize_oracle) -> None:
    fmt, ordinary, special = _edges(name, quantize_oracle)
    rng = np.random.default_rng(3)
    x = rng.choice(ordinary, 2 * BLOCK + 5)
    x[BLOCK + 7] = rng.choice(special)
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)  # float32 neighbours of the edge values, and specials
    for inputs in (x32[: BLOCK + 3], x32):
        got = quantize(inputs, fmt)
        assert got.dtype == np.float32
        _check(got, inputs, fmt, quantize_oracle, f"{name} float32")
    wide = np.stack([x, -x[::-1]], axis=1)  # strided columns and a transposed view
    for view in (wide[:, 0], wide[::-1, 1], wide.T):
        _check(quantize(view, fmt), view, fmt, quantize_oracle, f"{name} strided")
