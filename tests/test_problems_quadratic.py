"""Separable quadratics: L is the true largest eigenvalue; gradient; noise."""

import numpy as np
import pytest

from refopt.problems import Quadratic


def test_L_is_the_lipschitz_constant_of_the_gradient():
    q = Quadratic.logspaced((4, 5), L=3.0, condition=50.0)
    assert q.L == pytest.approx(3.0) and q.mu == pytest.approx(3.0 / 50)
    # Hessian by finite differences of the gradient: eigenvalues are the curvatures
    h = 1e-4
    n = 20
    hess = np.empty((n, n))
    w = np.random.default_rng(0).standard_normal((4, 5))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        hess[:, j] = ((q.grad(w + e.reshape(4, 5)) - q.grad(w - e.reshape(4, 5))) / (2 * h)).ravel()
    assert np.linalg.eigvalsh((hess + hess.T) / 2).max() == pytest.approx(q.L, rel=1e-8)


def test_value_grad_minimiser():
    t = np.arange(6.0).reshape(2, 3)
    q = Quadratic(np.full((2, 3), 2.0), target=t)
    assert q.value(t) == 0 and not np.any(q.grad(t))
    w = t + 1
    assert q.value(w) == pytest.approx(0.5 * 2 * 6)  # hand value: 1/2 * sum 2 * 1^2
    np.testing.assert_array_equal(q.grad(w), np.full((2, 3), 2.0))
    assert np.array_equal(q.minimizer(), t)


def test_noise_unbiased():
    q = Quadratic(np.ones((10, 10)), noise=1.0)
    rng = np.random.default_rng(1)
    g = np.mean([q.stochastic_grad(np.ones((10, 10)), rng) for _ in range(500)], axis=0)
    assert np.abs(g - 1).mean() < 0.1


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([1.0, 0.0],), {}, "positive"),
        (([1.0, np.inf],), {}, "positive"),
        (([1.0, 2.0],), {"target": [1.0]}, "target"),
        (([1.0],), {"noise": -1}, "noise"),
    ],
)
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Quadratic(*args, **kwargs)
    with pytest.raises(ValueError, match="condition"):
        Quadratic.logspaced((2,), condition=0.5)
