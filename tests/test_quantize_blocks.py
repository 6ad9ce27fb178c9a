"""Round to nearest even on long arrays of ordinary values with rare special ones.

refopt.quantize rounds most values of a 32768-element block with one short sequence
of operations and sends the rare others (zeros, values below the smallest normal,
overflow, inf, NaN) through the general steps, or the whole block when they are many
(see ``refopt.quantize`` Notes). These tests build inputs of several blocks in which
the edge-set values inside the normal range are the bulk and the other edge values and
NaNs of many payloads are scattered, at block boundaries, or packed into one block,
and compare every element with :func:`refopt.exact`.
"""

from __future__ import annotations

import numpy as np
import pytest

import refopt
from refopt import FloatFormat, quantize

BLOCK = 32768  # elements per block of refopt.quantize
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


def _split_edges(name: str, oracle) -> tuple[FloatFormat, np.ndarray, np.ndarray]:
    """The format, its edge inputs with magnitude in [2**emin, xmax], and the others."""
    fmt = refopt.format(name)
    x = oracle.edge_inputs(fmt)
    ordinary = np.isfinite(x) & (np.abs(x) >= 2.0**fmt.emin) & (np.abs(x) <= fmt.xmax)
    return fmt, x[ordinary], x[~ordinary]


def _check(got: np.ndarray, x: np.ndarray, fmt: FloatFormat, oracle, context: str) -> None:
    """Compare with refopt.exact, computed once per distinct input bit pattern."""
    x64 = np.asarray(x, dtype=np.float64).ravel()
    keys, inverse = np.unique(x64.view(np.uint64), return_inverse=True)
    want = oracle.exact_array(keys.view(np.float64), fmt, "nearest_even")[inverse]
    oracle.assert_same_bits(np.asarray(got).ravel(), want, x64, context)


def _scatter(bulk: np.ndarray, rare: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values drawn from ``bulk`` with ``rare`` at random places and block edges."""
    x = rng.choice(bulk, n)
    edges = [i for b in range(BLOCK, n, BLOCK) for i in (b - 1, b)]
    places = np.concatenate([edges, rng.choice(n, max(rare.size - len(edges), 0), replace=False)])
    x[places[: rare.size]] = rare[: places.size]
    return x


@pytest.mark.parametrize("name", ["bf16", "fp16", "fp32", "tf32", "fp8_e4m3fn", "fp8_e5m2"])
def test_rare_specials_among_ordinary_values(name: str, quantize_oracle) -> None:
    fmt, ordinary, others = _split_edges(name, quantize_oracle)
    rng = np.random.default_rng(1)
    rare = np.concatenate([others, _nans(rng), [0.0, -0.0, 5e-324, -5e-324]])
    n = 3 * BLOCK + 123
    for chunk in np.array_split(rng.permutation(rare), max(1, rare.size // 60)):
        x = _scatter(ordinary, chunk, n, rng)  # at most ~60 rare values in 3 blocks
        _check(quantize(x, fmt), x, fmt, quantize_oracle, f"{name} scattered")


@pytest.mark.parametrize("name", ["bf16", "fp16", "fp8_e4m3fn"])
def test_a_block_of_mostly_specials_between_ordinary_blocks(name: str, quantize_oracle) -> None:
    fmt, ordinary, others = _split_edges(name, quantize_oracle)
    rng = np.random.default_rng(2)
    dense = rng.choice(np.concatenate([others, _nans(rng)]), BLOCK)
    x = np.concatenate([rng.choice(ordinary, BLOCK), dense, rng.choice(ordinary, BLOCK + 7)])
    _check(quantize(x, fmt), x, fmt, quantize_oracle, f"{name} dense block")


@pytest.mark.parametrize("name", ["bf16", "fp16", "tf32"])
def test_float32_and_strided_inputs(name: str, quantize_oracle) -> None:
    fmt, ordinary, others = _split_edges(name, quantize_oracle)
    rng = np.random.default_rng(3)
    x = _scatter(ordinary, rng.permutation(others)[:40], 2 * BLOCK + 5, rng)
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)  # float32 neighbours of the edge values, and specials
    got32 = quantize(x32, fmt)
    assert got32.dtype == np.float32
    _check(got32, x32, fmt, quantize_oracle, f"{name} float32")
    wide = np.stack([x, -x[::-1]], axis=1)  # strided columns and a transposed view
    for view in (wide[:, 0], wide[::-1, 1], wide.T):
        _check(quantize(view, fmt), view, fmt, quantize_oracle, f"{name} strided")


def test_blocks_without_specials(quantize_oracle) -> None:
    """Ties, their float64 neighbours and other points, in every binade below the top."""
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
        _check(quantize(x, fmt), x, fmt, quantize_oracle, f"{fmt} ordinary")
