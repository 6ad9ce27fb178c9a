"""Rosenbrock on a matrix: value, gradient (exact rational, finite differences, torch),
chain conventions and the noisy oracle."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refopt.problems import Rosenbrock


def exact_value_and_grad(x: list[Fraction], a: Fraction) -> tuple[Fraction, list[Fraction]]:
    """Term-by-term rational evaluation of one chain (independent of refopt's formula)."""
    val = Fraction(0)
    grad = [Fraction(0)] * len(x)
    for i in range(len(x) - 1):
        r = x[i + 1] - x[i] * x[i]
        val += a * r * r + (1 - x[i]) ** 2
        # d/dx_i and d/dx_{i+1} of this single term, by the chain rule
        grad[i] += a * 2 * r * (-2 * x[i]) - 2 * (1 - x[i])
        grad[i + 1] += a * 2 * r
    return val, grad


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 4),
    cols=st.integers(1, 5),
    chain=st.sampled_from(["flat", "rows"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_value_and_grad_match_exact_rational_arithmetic(rows, cols, chain, seed):
    w = np.random.default_rng(seed).uniform(-2, 2, (rows, cols))
    f = Rosenbrock((rows, cols), chain=chain)
    chains = [w.ravel()] if chain == "flat" else list(w)
    val, grad = Fraction(0), []
    for c in chains:
        v, g = exact_value_and_grad([Fraction(t) for t in c], Fraction(100))
        val += v
        grad += g
    assert f.value(w) == pytest.approx(float(val), rel=1e-13, abs=1e-13)
    np.testing.assert_allclose(f.grad(w).ravel(), [float(g) for g in grad], rtol=1e-12, atol=1e-12)


def test_grad_matches_central_differences_on_paper_size():
    f = Rosenbrock((50, 100))
    rng = np.random.default_rng(1)
    w = rng.uniform(-1.5, 1.5, (50, 100))
    g = f.grad(w)
    h = 1e-6
    for _ in range(5):  # directional derivatives along random directions
        d = rng.standard_normal((50, 100))
        fd = (f.value(w + h * d) - f.value(w - h * d)) / (2 * h)
        assert fd == pytest.approx(np.sum(g * d), rel=1e-6)
    for idx in [(0, 0), (0, 99), (1, 0), (49, 99), (17, 42)]:  # coordinates, incl. row seams
        e = np.zeros((50, 100))
        e[idx] = h
        fd = (f.value(w + e) - f.value(w - e)) / (2 * h)
        assert fd == pytest.approx(g[idx], rel=1e-5, abs=1e-4)


def test_grad_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    f = Rosenbrock((5, 7))
    w = np.random.default_rng(2).uniform(-2, 2, (5, 7))
    x = torch.tensor(w.ravel(), dtype=torch.float64, requires_grad=True)
    val = torch.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    val.backward()
    assert f.value(w) == pytest.approx(val.item(), rel=1e-14)
    np.testing.assert_allclose(f.grad(w).ravel(), x.grad.numpy(), rtol=1e-13)


def test_minimiser_flat_vs_rows_and_start():
    f, g = Rosenbrock(), Rosenbrock(chain="rows")
    ones = f.minimizer()
    assert ones.shape == (50, 100)
    assert f.value(ones) == 0 == g.value(ones)
    assert not np.any(f.grad(ones)) and not np.any(g.grad(ones))
    w = np.random.default_rng(3).uniform(-1, 1, (50, 100))
    # the flat chain = the row chains + the 49 seam terms linking row r's last to row r+1's first
    seams = sum(100 * (w[r + 1, 0] - w[r, -1] ** 2) ** 2 + (1 - w[r, -1]) ** 2 for r in range(49))
    assert f.value(w) == pytest.approx(g.value(w) + seams, rel=1e-12)
    x0 = f.initial_point()
    assert x0.ravel()[0] == -1.2 and x0.ravel()[1] == 1.0
    # classic start: F(-1.2, 1) = 24.2 per pair for d=2; check a 1 x 2 instance
    assert Rosenbrock((1, 2)).value(Rosenbrock((1, 2)).initial_point()) == pytest.approx(24.2)


@pytest.mark.parametrize("kind", ["gaussian", "uniform"])
def test_noisy_oracle_is_unbiased_with_stated_variance(kind):
    f = Rosenbrock((20, 30), noise=0.5, noise_kind=kind)
    w = np.random.default_rng(4).uniform(-1, 1, (20, 30))
    rng = np.random.default_rng(5)
    draws = np.stack([f.stochastic_grad(w, rng) for _ in range(400)]) - f.grad(w)
    assert abs(draws.mean()) < 4 * 0.5 / np.sqrt(draws.size)
    assert draws.var() == pytest.approx(0.25, rel=0.03)
    if kind == "uniform":
        assert np.abs(draws).max() <= 0.5 * np.sqrt(3) + 1e-12
    # explicit generator -> reproducible
    a = f.stochastic_grad(w, np.random.default_rng(9))
    b = f.stochastic_grad(w, np.random.default_rng(9))
    assert np.array_equal(a, b)


def test_inputs_never_mutated():
    f = Rosenbrock((3, 4), noise=1.0)
    w = np.random.default_rng(0).standard_normal((3, 4))
    w0 = w.copy()
    f.value(w), f.grad(w), f.stochastic_grad(w, np.random.default_rng(0))
    assert np.array_equal(w, w0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (0, 3)}, "shape"),
        ({"shape": (3,)}, "shape"),
        ({"chain": "cols"}, "chain"),
        ({"noise": -1.0}, "noise"),
        ({"noise_kind": "cauchy"}, "noise_kind"),
        ({"a": -1.0}, "a must"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Rosenbrock(**kwargs)


def test_bad_call_arguments():
    f = Rosenbrock((2, 3))
    with pytest.raises(ValueError, match="shape"):
        f.grad(np.zeros((3, 2)))
    with pytest.raises(TypeError, match="Generator"):
        f.stochastic_grad(np.zeros((2, 3)), 0)
    with pytest.raises(ValueError, match="kind"):
        f.initial_point("random")
