"""The auxiliary bounds (i), (ii), (iv) of refopt-lemma-descent-direction, with tight cases.

The lemma's main inequality is checked in test_theory_adam.py (its error allowance is
within a factor of about 2.5 of what is needed); the bounds (i), (ii) and (iv) that turn
its error terms into the theorem's constants are checked here, pathwise, on deterministic
gradient sequences (then P = N_new and sigma^2 = g_j^2) with random and worst-case
relative errors, and each is shown attained (0.99 < ratio <= 1) by an explicit sequence,
so a halved constant fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_theory_adam import MODES, draws  # the relative-error draws shared by the lemma tests


def parts(g, b2, eps, gam, nu, n, k):
    """For steps j = n - k .. n (1-based) of a scalar quantized second moment, return
    (D_n, D~, N_new, g_j, hat g) with P = N_new (deterministic gradients)."""
    ghat = (1 + gam) * g
    v = [0.0]
    for t in range(len(g)):
        v.append((1 + nu[t]) * (b2 * v[-1] + ghat[t] ** 2))
    j = n - k
    q_v = np.abs(nu).max()
    b2t = b2 * (1 - q_v)
    n_new = sum(b2 ** (n - l) * np.prod(1 + nu[l - 1:n]) * ghat[l - 1] ** 2
                for l in range(j, n + 1))  # summed directly: no cancellation
    d_tilde = eps + b2t ** (k + 1) * v[j - 1] + n_new
    return eps + v[n], d_tilde, n_new, g[j - 1], ghat


def bounds(b2, R, q_G, q_V, k):
    b2t, b2h = b2 * (1 - q_V), b2 * (1 + q_V)
    c_hi, c_lo = (1 + q_V) * (1 + q_G) ** 2, (1 - q_V) * (1 - q_G) ** 2
    sqrt_p = math.sqrt(c_hi) * R * math.sqrt(k + 1) * max(1.0, b2h) ** (k / 2)  # (i)
    sig_over = R / math.sqrt(b2t**k * c_lo)                                    # (ii)
    return sqrt_p, sig_over, c_hi, b2h


@pytest.mark.parametrize("mode", MODES)
def test_parts_i_ii_iv_hold(mode):
    rng = np.random.default_rng(20)
    for _ in range(200):
        b2 = rng.uniform(0.3, 0.999)
        q_G, q_V = rng.choice([0.0, 0.01, 0.1]), rng.choice([0.0, 0.01, 0.1])
        eps = 10.0 ** rng.uniform(-10, 0)
        N = int(rng.integers(1, 30))
        n = int(rng.integers(1, N + 1))
        k = int(rng.integers(0, n))
        R = rng.uniform(0.5, 3.0)
        g = rng.uniform(-1, 1, N) * (R - math.sqrt(eps)) * rng.choice([1.0, 0.1, 0.0], N)
        gam, nu = draws(rng, N, q_G, mode), draws(rng, N, q_V, mode)
        D, Dt, n_new, gj, ghat = parts(g, b2, eps, gam, nu, n, k)
        sqrt_p, sig_over, c_hi, b2h = bounds(b2, R, q_G, q_V, k)
        assert math.sqrt(n_new) <= sqrt_p * (1 + 1e-12)                       # (i)
        if gj != 0:
            assert gj**2 / math.sqrt(Dt) <= sig_over * (1 + 1e-12)             # (ii), first
        r_v = (1 + q_V) / (1 - q_V)
        u_hat2 = []
        vv = [0.0]
        for t in range(n):
            vv.append((1 + nu[t]) * (b2 * vv[-1] + ghat[t] ** 2))
            u_hat2.append(ghat[t] ** 2 / (eps + vv[-1]))
        rhs = (1 + q_V) * sum(r_v ** (n - l) * u_hat2[l - 1] for l in range(n - k, n + 1))
        assert n_new / D <= rhs * (1 + 1e-12)                                  # (ii), second
        omega_hat = math.sqrt(sum(b2h**l for l in range(n)))
        assert math.sqrt(Dt) <= R * math.sqrt(c_hi) * omega_hat * (1 + 1e-12)  # (iv)


def test_part_i_is_attained():
    """|g| = R - sqrt(eps), every error +q, beta2 (1 + q_V) = 1, eps -> 0."""
    q_G, q_V, eps, R, k = 2.0**-5, 2.0**-4, 1e-30, 1.0, 7
    b2 = 1 / (1 + q_V)
    g = np.full(k + 1, R - math.sqrt(eps))
    _, _, n_new, _, _ = parts(g, b2, eps, np.full(k + 1, q_G), np.full(k + 1, q_V), k + 1, k)
    assert 0.99 < math.sqrt(n_new) / bounds(b2, R, q_G, q_V, k)[0] <= 1 + 1e-12


def test_part_ii_is_attained():
    """One gradient R at step j, zeros after it, every error -q, eps -> 0."""
    q_G, q_V, eps, R, b2, k = 2.0**-5, 2.0**-4, 1e-30, 2.0, 0.9, 5
    g = np.zeros(k + 1)
    g[0] = R
    _, Dt, _, gj, _ = parts(g, b2, eps, np.full(k + 1, -q_G), np.full(k + 1, -q_V), k + 1, k)
    assert 0.99 < gj**2 / math.sqrt(Dt) / bounds(b2, R, q_G, q_V, k)[1] <= 1 + 1e-12
    # and the second bound of (ii): k = 0, error +q_V on v
    g = np.array([1.0])
    D, _, n_new, _, ghat = parts(g, b2, eps, np.zeros(1), np.full(1, q_V), 1, 0)
    assert (n_new / D) / ((1 + q_V) * ghat[0] ** 2 / D) == pytest.approx(1.0, rel=1e-12)


def test_part_iv_is_attained():
    """Exact arithmetic, |g| = R - sqrt(eps) throughout, eps small: sqrt(D~) ~ R Omega_n."""
    eps, R, b2, n = 1e-12, 1.5, 0.95, 40
    g = np.full(n, R - math.sqrt(eps))
    _, Dt, _, _, _ = parts(g, b2, eps, np.zeros(n), np.zeros(n), n, 3)
    omega = math.sqrt(sum(b2**l for l in range(n)))
    assert 0.99 < math.sqrt(Dt) / (R * omega) <= 1 + 1e-12
