"""Quantized Adam and Muon on a chained Rosenbrock function, Monte-Carlo estimate below the bound.

F(x) = sum_i (1 - x_i)^2 + b (x_{i+1} - x_i^2)^2 is not globally smooth, so the bounds
are applied on a box |x_i| <= c that provably contains every point the iteration
evaluates: the master weights move by at most alpha_bar u_max per Adam step
(refopt-lemma-bounded-update) or eta sqrt(r) per Muon step, and Q_W scales a coordinate
by at most 1 + q_W. On that box, hand-derived constants:

* gradient: |d_i F| <= 2(1 + c) + 4 b c (c + c^2) + 2 b (c + c^2);
* Hessian (Gershgorin, l2): L <= 2 + 2b + 12 b c^2 + 4 b c + 8 b c.

Noise is added to the gradient (Rademacher for Adam, so the l_inf bound R holds surely;
Gaussian for Muon, variance sigma^2 = s^2 d). Quantizers: the worst case (|delta| = q
with the harmful sign) and real formats with stochastic rounding (q = 2^-M).
"""

from __future__ import annotations

import math

import numpy as np

from refopt.quantize import quantize
from refopt.theory import adam_bound, adam_update_bound, muon_bound

B = 2.0  # Rosenbrock coupling


def grad(x):
    """Gradient of the chained Rosenbrock function along the last axis."""
    g = -2.0 * (1.0 - x)
    inner = x[..., 1:] - x[..., :-1] ** 2
    g[..., :-1] += -4.0 * B * x[..., :-1] * inner
    g[..., 1:] += 2.0 * B * inner
    return g


def value(x):
    return float(np.sum((1 - x) ** 2) + B * np.sum((x[1:] - x[:-1] ** 2) ** 2))


def box_constants(c):
    """(gradient l_inf bound, l2 smoothness) on the box |x_i| <= c."""
    return (2 * (1 + c) + 4 * B * c * (c + c * c) + 2 * B * (c + c * c),
            2 + 2 * B + 12 * B * c * c + 4 * B * c + 8 * B * c)


def test_box_constants_hold():
    """The hand-derived constants dominate the exact gradient and Hessian on the box."""
    rng = np.random.default_rng(0)
    c, d = 1.3, 5
    gmax, L = box_constants(c)
    for _ in range(200):
        x = rng.uniform(-c, c, d)
        assert np.abs(grad(x)).max() <= gmax
        h = 1e-6
        H = np.array([(grad(x + h * e) - grad(x - h * e)) / (2 * h) for e in np.eye(d)])
        assert np.linalg.norm(H, 2) <= L * (1 + 1e-6)


def adam_runs(rng, x0, *, N, alpha, b1, b2, eps, s, q, quantizer, runs):
    x = np.tile(x0, (runs, 1))
    m, v = np.zeros_like(x), np.zeros_like(x)
    norms = np.empty((runs, N))
    for n in range(1, N + 1):
        norms[:, n - 1] = np.sum(grad(x) ** 2, axis=1)
        g = grad(quantizer(x, "W", x)) + s * rng.choice([-1.0, 1.0], x.shape)
        gh = quantizer(g, "G", grad(x))
        m = quantizer(b1 * m + gh, "M", grad(x))
        v = quantizer(b2 * v + gh**2, "V", None)
        x = x - alpha * (1 - b1) * math.sqrt((1 - b2**n) / (1 - b2)) * m / np.sqrt(eps + v)
    w = 1 - b1 ** (N - np.arange(N))
    return norms @ w / w.sum(), np.abs(x).max()


def test_adam_rosenbrock_below_bound():
    rng = np.random.default_rng(1)
    d, N, b1, b2, eps, alpha, s, runs = 4, 150, 0.9, 0.99, 1e-8, 0.002, 0.5, 100
    x0 = np.array([-0.5, 0.4, 0.8, -0.3])
    fmts = {"W": "bf16", "G": "bf16", "M": "fp16", "V": "bf16"}
    worst_q = {"W": 2.0**-8, "G": 2.0**-4, "M": 2.0**-8, "V": 2.0**-8}
    sr_q = {c: 2.0 ** -get for c, get in zip("WGMV", (7, 7, 10, 7))}  # q = 2^-M, stochastic

    def worst(x, comp, ref):
        q = worst_q[comp]
        if comp in ("G", "M"):
            return x * (1 - q * np.sign(x * ref))   # shorten along grad F
        return x * (1 - q) if comp == "V" else x * (1 + q)

    def real(x, comp, ref):
        return quantize(x, fmts[comp], "stochastic", rng=rng)

    for q, quant in ((worst_q, worst), (sr_q, real)):
        alpha_bar = alpha * (1 - b1) / math.sqrt(1 - b2)
        reach = np.abs(x0).max() + N * alpha_bar * adam_update_bound(b1, q["M"], q["V"], b2)
        c = reach * (1 + q["W"])
        gmax, L = box_constants(c)
        est, xmax = adam_runs(rng, x0, N=N, alpha=alpha, b1=b1, b2=b2, eps=eps, s=s, q=q,
                              quantizer=quant, runs=runs)
        assert xmax <= reach
        res = adam_bound(N, alpha, b1, b2, eps, d, gmax + s + math.sqrt(eps), L, value(x0),
                         q_G=q["G"], q_W=q["W"], q_M=q["M"], q_V=q["V"],
                         weight_norm=math.sqrt(d) * reach)
        upper = est.mean() + 3 * est.std(ddof=1) / math.sqrt(runs)
        assert 0 < upper <= res.value


def msign(M):
    U, sv, Vt = np.linalg.svd(M, full_matrices=False)
    keep = sv > sv.max(initial=0.0) * max(M.shape) * np.finfo(float).eps
    return U[:, keep] @ Vt[keep]


def test_muon_rosenbrock_below_bound():
    """Matrix variable (3 x 4), Rosenbrock chained along the flattened entries."""
    rng = np.random.default_rng(2)
    p, q_, T, eta, beta, s, runs = 3, 4, 100, 0.004, 0.9, 0.3, 20
    r, d = min(p, q_), p * q_
    W0 = rng.uniform(-0.6, 0.6, (p, q_))
    fmts = {"W": "bf16", "G": "bf16", "M": "bf16"}
    worst_q = {"W": 2.0**-8, "G": 2.0**-4, "M": 2.0**-8}
    sr_q = {"W": 2.0**-7, "G": 2.0**-7, "M": 2.0**-7}
    gradm = lambda W: grad(W.reshape(-1)).reshape(W.shape)  # noqa: E731
    for q, mode in ((worst_q, "worst"), (sr_q, "formats")):
        reach = np.abs(W0).max() + eta * T * math.sqrt(r)   # entry-wise <= Frobenius step
        c = reach * (1 + q["W"])
        gmax, L = box_constants(c)
        vals = np.empty(runs)
        for k in range(runs):
            W, M, acc = W0.copy(), np.zeros_like(W0), 0.0
            for _ in range(T):
                acc += np.linalg.norm(gradm(W), "nuc")
                if mode == "worst":
                    Gh = (gradm(W * (1 + q["W"])) + s * rng.standard_normal(W.shape)) * (1 - q["G"])
                    M = (beta * M + (1 - beta) * Gh) * (1 + q["M"])
                else:
                    Wq = quantize(W, fmts["W"], "stochastic", rng=rng)
                    Gh = quantize(gradm(Wq) + s * rng.standard_normal(W.shape), fmts["G"],
                                  "stochastic", rng=rng)
                    M = quantize(beta * M + (1 - beta) * Gh, fmts["M"], "stochastic", rng=rng)
                W = W - eta * msign(M)
            assert np.abs(W).max() <= reach
            vals[k] = acc / T
        res = muon_bound(T, eta, beta, r, L, s * math.sqrt(d), value(W0.reshape(-1)),
                         math.sqrt(d) * gmax, grad0=float(np.linalg.norm(gradm(W0))),
                         q_G=q["G"], q_W=q["W"], q_M=q["M"],
                         weight_norm=math.sqrt(d) * reach)
        assert vals.mean() + 3 * vals.std(ddof=1) / math.sqrt(runs) <= res.value
