"""msign (rank-aware polar factor) and the quintic Newton-Schulz iteration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refopt import exact
from refopt.optim import NS5_COEFFICIENTS, default_rtol, msign, newton_schulz, ns_polynomial


def random_rank(m: int, n: int, r: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, r)) @ rng.standard_normal((r, n))


@pytest.mark.parametrize("shape", [(5, 5), (7, 3), (3, 8)])
def test_full_rank_is_orthogonal_and_matches_scipy_polar(shape) -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    M = np.random.default_rng(1).standard_normal(shape)
    O = msign(M)
    k = min(shape)
    G = O.T @ O if shape[0] >= shape[1] else O @ O.T
    np.testing.assert_allclose(G, np.eye(k), atol=1e-13)
    U, _ = scipy_linalg.polar(M)  # right polar decomposition M = U P
    np.testing.assert_allclose(O, U, atol=1e-12)


def test_rank_deficient_gives_UrVr_and_scipy_adds_null_space() -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    M = random_rank(6, 4, 2, seed=2)
    O = msign(M)
    assert np.linalg.norm(O) ** 2 == pytest.approx(2.0, abs=1e-12)  # Frobenius^2 = rank
    np.testing.assert_allclose(np.linalg.svd(O, compute_uv=False), [1, 1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(O @ O.T @ M, M, atol=1e-12)  # O O^T projects on the column space
    np.testing.assert_allclose(M @ O.T @ O, M, atol=1e-12)  # O^T O projects on the row space
    assert np.trace(O.T @ M) == pytest.approx(np.linalg.svd(M, compute_uv=False).sum(), rel=1e-12)
    U, _ = scipy_linalg.polar(M)
    assert np.linalg.norm(U) ** 2 == pytest.approx(4.0, abs=1e-9)  # SciPy: full partial isometry


def test_zero_matrix_maps_to_zero_unlike_scipy() -> None:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    Z = np.zeros((3, 4))
    O = msign(Z)
    assert O.shape == (3, 4) and not O.any()
    U, _ = scipy_linalg.polar(Z)
    assert np.abs(U).sum() > 0  # scipy returns a partial identity
    assert not msign(np.zeros((0, 3))).size


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), c=st.floats(1e-200, 1e200))
def test_positive_scaling_invariance(seed: int, c: float) -> None:
    M = np.random.default_rng(seed).standard_normal((4, 6))
    np.testing.assert_allclose(msign(c * M), msign(M), atol=1e-12)
    np.testing.assert_allclose(msign(-M), -msign(M), atol=1e-12)


def test_rtol_controls_the_rank() -> None:
    M = np.diag([1.0, 1e-10, 0.0])
    np.testing.assert_allclose(msign(M), np.diag([1.0, 1.0, 0.0]), atol=0)
    np.testing.assert_allclose(msign(M, rtol=1e-8), np.diag([1.0, 0.0, 0.0]), atol=0)
    assert default_rtol((3, 7)) == 7 * 2.0**-52


def test_ns5_rank_one_comes_out_near_070() -> None:
    M = np.outer([1.0, 2.0, -1.0], [0.5, 0.25])
    X = newton_schulz(M)
    s = np.linalg.svd(X, compute_uv=False)
    # p(p(p(p(p(1))))) with p(x) = 3.4445x - 4.7750x^3 + 2.0315x^5, evaluated by hand in steps
    a, b, c = NS5_COEFFICIENTS
    x = 1.0
    for _ in range(5):
        x = a * x + b * x**3 + c * x**5
    assert s[0] == pytest.approx(x, rel=1e-6) and 0.69 < s[0] < 0.71
    assert s[1] < 1e-12
    np.testing.assert_allclose(X / s[0], msign(M), atol=1e-9)  # same singular vectors


def test_ns5_singular_values_follow_the_polynomial_map() -> None:
    rng = np.random.default_rng(3)
    U, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    V, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    sig = np.array([3.0, 1.0, 0.3, 0.1, 0.01])
    M = U[:, :5] @ np.diag(sig) @ V.T
    X = newton_schulz(M, eps=0.0)
    expected = ns_polynomial(sig / np.linalg.norm(sig))
    np.testing.assert_allclose(X, U[:, :5] @ np.diag(expected) @ V.T, atol=1e-12)
    grid = ns_polynomial(np.linspace(0.05, 1.0, 2000))
    assert 0.68 < grid.min() and grid.max() < 1.21  # NS5 is not U V^T
    assert not newton_schulz(np.zeros((2, 3))).any()


def test_ns_iterate_precision_rounds_iterates() -> None:
    M = np.random.default_rng(4).standard_normal((6, 4))
    X = newton_schulz(M, precision="bf16")
    assert all(exact(float(v), "bf16") == v for v in X.ravel())
    assert np.abs(X - newton_schulz(M)).max() < 0.05
    with pytest.raises(ValueError, match="stochastic"):
        newton_schulz(M, precision="bf16", rounding="stochastic")


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        msign(np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        msign(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="rtol"):
        msign(np.eye(2), rtol=-1.0)
    with pytest.raises(ValueError, match="steps"):
        newton_schulz(np.eye(2), steps=-1)
    with pytest.raises(TypeError):
        msign(np.eye(2, dtype=int))
    with pytest.raises(TypeError, match="precision"):
        newton_schulz(np.eye(2), precision=3)  # type: ignore[arg-type]
