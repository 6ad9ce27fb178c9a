"""refopt's Muon bound: reduction, the Theorem 4.6 factor, orders, lemmas, simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refopt.theory import muon_bound, muon_factor, paper_schedule

BASE = dict(T=10_000, eta=1e-3, beta=0.99, rank=10, L=1.0, sigma=1.0, delta=1.0, grad_norm=1.0)


def msign(M):
    """U V^T from numpy's SVD, dropping zero singular values (independent of refopt.optim)."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(M.shape) * np.finfo(float).eps
    return U[:, keep] @ Vt[keep]


def test_q_zero_is_the_full_precision_bound():
    res = muon_bound(**BASE)
    T, eta, b, r = BASE["T"], BASE["eta"], BASE["beta"], BASE["rank"]
    expect = (1 / (eta * T) + eta * r / 2
              + 2 * math.sqrt(r) * (b / ((1 - b) * T) + eta * math.sqrt(r) * b / (1 - b)
                                    + math.sqrt((1 - b) / (1 + b))))
    assert res.value == pytest.approx(expect, rel=1e-14)
    assert all(v == 0 for k, v in res.terms.items() if k.startswith("Q_"))


@settings(max_examples=60, deadline=None)
@given(comp=st.sampled_from(["q_G", "q_W", "q_M"]), q=st.floats(1e-12, 1e-3))
def test_monotone_and_continuous_in_q(comp, q):
    p = dict(BASE, w0_norm=1.0)
    v0, v1, v2 = (muon_bound(**p, **{comp: x}).value for x in (0.0, q, 2 * q))
    assert v0 <= v1 <= v2
    assert muon_bound(**p, **{comp: 1e-15}).value == pytest.approx(v0, rel=1e-9)


def test_factor_is_its_own_term_and_condition():
    assert muon_factor(0.9, 0.1) == pytest.approx(0.09 / (1 - 0.99))
    assert muon_factor(0.9, 0.2) == math.inf
    res = muon_bound(**dict(BASE, beta=0.9), q_M=0.2)
    assert res.value == math.inf and res.failed
    res = muon_bound(**BASE, q_M=1e-3)
    key = "Q_M: accumulated, q_M b/(1-b(1+q_M))"
    phi = muon_factor(BASE["beta"], 1e-3)
    assert res.terms[key] == pytest.approx(2 * math.sqrt(10) * phi * 1.001 * 2.0, rel=1e-14)


def test_critics_case_factor_is_theta_one_and_bound_does_not_vanish():
    """q_M = c/sqrt(T), 1-beta = c'/sqrt(T): the factor tends to c/(c'-c); the bound's
    Q_M term stays Theta(1) while q_M = T^-3/4 restores O(T^-1/4)."""
    vals, ok_vals = [], []
    for T in (10**4, 10**6, 10**8):
        s = paper_schedule("muon", T, c_beta=2.0)
        phi = muon_factor(s["beta"], 1 / math.sqrt(T))
        b = s["beta"]
        assert phi == pytest.approx(b / (2 - b), rel=1e-9)  # -> c_q / (c_beta - c_q) = 1
        vals.append(muon_bound(T, s["eta"], s["beta"], 10, 1, 1, 1, 1, q_M=T**-0.5).value)
        ok_vals.append(muon_bound(T, s["eta"], s["beta"], 10, 1, 1, 1, 1, q_M=T**-0.75).value
                       * T**0.25)
    assert vals[-1] > 0.9 * vals[0]                   # no decay
    assert max(ok_vals) / min(ok_vals) < 1.3          # O(T^-1/4)


def test_paper_orders_for_G_and_W_keep_the_rate():
    vals = []
    for T in (10**4, 10**6, 10**8):
        s = paper_schedule("muon", T)
        vals.append(muon_bound(T, s["eta"], s["beta"], 10, 1, 1, 1, 1, q_G=T**-0.5,
                               q_W=T**-0.5, w0_norm=1.0).value * T**0.25)
    assert max(vals) / min(vals) < 1.3


def test_bad_inputs():
    with pytest.raises(ValueError, match="weight_norm"):
        muon_bound(**BASE, q_W=1e-3)
    with pytest.raises(ValueError, match="beta"):
        muon_bound(**dict(BASE, beta=1.0))
    with pytest.raises(ValueError, match="T"):
        muon_bound(**dict(BASE, T=0))
    with pytest.raises(ValueError, match="sigma"):
        muon_bound(**dict(BASE, sigma=-1.0))
    with pytest.raises(TypeError, match="rank"):
        muon_bound(**dict(BASE, rank="10"))


# -- Lemma: descent direction of msign --------------------------------------------------

def test_lemma_muon_descent():
    rng = np.random.default_rng(0)
    for _ in range(300):
        p, q = rng.integers(1, 6, 2)
        G = rng.standard_normal((p, q))
        M = G + rng.standard_normal((p, q)) * rng.uniform(0, 3)
        if rng.random() < 0.2:  # rank-deficient momentum
            M[:, 0] = 0
        r = min(p, q)
        inner = np.sum(G * msign(M))
        nuc = np.linalg.norm(G, "nuc")
        assert inner >= nuc - 2 * np.linalg.norm(G - M, "nuc") - 1e-12
        assert inner >= nuc - 2 * math.sqrt(r) * np.linalg.norm(G - M) - 1e-12


def test_lemma_muon_descent_is_tight():
    """M = -t G with t -> 0: <G, msign M> = -||G||_* = ||G||_* - 2 ||G - M||_* + 2t||G||_*,
    so the constant 2 cannot be lowered."""
    G = np.array([[3.0, 4.0]])
    M = -1e-6 * G
    lhs = np.sum(G * msign(M))
    gap = np.linalg.norm(G, "nuc") - 2 * np.linalg.norm(G - M, "nuc")
    assert lhs >= gap - 1e-12
    assert lhs < np.linalg.norm(G, "nuc") - 1.9 * np.linalg.norm(G - M, "nuc")


# -- Lemma: momentum error with quantization ------------------------------------------------

def run_muon(G_fn, W0, T, eta, beta, qg, qw, qm, sign=1.0):
    """Deterministic quantized Muon with the worst-case quantizer (|delta| = q, sign given)."""
    W, M = W0.copy(), np.zeros_like(W0)
    errs, norms = [], []
    for _ in range(T):
        Wq = W * (1 + sign * qw)
        Gh = G_fn(Wq) * (1 + sign * qg)
        M = (beta * M + (1 - beta) * Gh) * (1 + sign * qm)
        errs.append(np.linalg.norm(M - G_fn(W)))
        norms.append(np.linalg.norm(W))
        W = W - eta * msign(M)
    return np.array(errs), np.array(norms)


def error_bound(t, *, beta, eta, r, L, G, G0, qg, qw, qm, B_W):
    """The lemma's right side for sigma = 0 (pathwise)."""
    phi = qm * beta / (1 - beta * (1 + qm))
    return (beta ** (t + 1) * G0 + L * eta * math.sqrt(r) * beta / (1 - beta) + L * qw * B_W
            + qg * G + qm * (1 + qg) * G + phi * (1 + qm) * (1 + qg) * G)


def test_lemma_momentum_error_on_logcosh():
    rng = np.random.default_rng(1)
    p, q = 4, 6
    r = min(p, q)
    G_fn = np.tanh                       # grad of sum log cosh: L = 1, ||grad||_F <= sqrt(pq)
    for sign in (1.0, -1.0):
        W0 = rng.standard_normal((p, q)) * 2
        T, eta, beta, qg, qw, qm = 300, 0.01, 0.9, 0.05, 0.01, 0.02
        errs, norms = run_muon(G_fn, W0, T, eta, beta, qg, qw, qm, sign)
        B_W = np.linalg.norm(W0) + eta * T * math.sqrt(r)
        assert norms.max() <= B_W
        G = math.sqrt(p * q)
        for t, e in enumerate(errs):
            assert e <= error_bound(t, beta=beta, eta=eta, r=r, L=1.0, G=G,
                                    G0=np.linalg.norm(G_fn(W0)), qg=qg, qw=qw, qm=qm,
                                    B_W=B_W) * (1 + 1e-12)


def test_lemma_momentum_error_tight_for_constant_gradient():
    """A constant gradient (L = 0) with every error +q: the error converges to exactly the
    sum of the three quantization terms, the Theorem 4.6 factor included."""
    Gmat = np.array([[1.0, 0.0], [0.0, 2.0]])
    G = np.linalg.norm(Gmat)
    beta, qg, qm = 0.95, 0.01, 0.02
    errs, _ = run_muon(lambda W: Gmat, np.zeros((2, 2)), 3000, 0.1, beta, qg, 0.0, qm)
    bound = error_bound(10**9, beta=beta, eta=0.0, r=2, L=0.0, G=G, G0=G, qg=qg, qw=0.0,
                        qm=qm, B_W=0.0)
    assert errs[-1] == pytest.approx(bound, rel=1e-9)


# -- simulation below the bound ------------------------------------------------------------

def test_simulation_below_bound():
    from refopt.quantize import quantize

    rng = np.random.default_rng(2)
    runs, p, q, T, eta, beta, s = 40, 3, 4, 200, 0.02, 0.9, 0.3
    r = min(p, q)
    W0 = np.full((p, q), 1.5)
    delta = float(np.sum(np.log(np.cosh(W0))))
    sigma = s * math.sqrt(p * q)
    fmts = {"W": "bf16", "G": "fp8_e4m3", "M": "bf16"}
    for mode in ("worst", "formats"):
        vals = np.empty(runs)
        for k in range(runs):
            W, M, acc = W0.copy(), np.zeros_like(W0), 0.0
            for _ in range(T):
                acc += np.linalg.norm(np.tanh(W), "nuc")
                if mode == "worst":
                    Wq = W * (1 + 2.0**-8)
                    Gh = (np.tanh(Wq) + s * rng.standard_normal((p, q))) * (1 - 2.0**-4)
                    M = (beta * M + (1 - beta) * Gh) * (1 + 2.0**-8)
                else:
                    Wq = quantize(W, fmts["W"], "stochastic", rng=rng)
                    Gh = quantize(np.tanh(Wq) + s * rng.standard_normal((p, q)), fmts["G"],
                                  "stochastic", rng=rng)
                    M = quantize(beta * M + (1 - beta) * Gh, fmts["M"], "stochastic", rng=rng)
                W = W - eta * msign(M)
            vals[k] = acc / T
        qs = dict(q_W=2.0**-7, q_G=2.0**-3, q_M=2.0**-7) if mode == "formats" else dict(
            q_W=2.0**-8, q_G=2.0**-4, q_M=2.0**-8)
        res = muon_bound(T, eta, beta, r, 1.0, sigma, delta, math.sqrt(p * q), w0_norm=np.linalg.norm(W0), **qs)
        assert vals.mean() + 3 * vals.std(ddof=1) / math.sqrt(runs) <= res.value


def test_the_recursion_is_refopt_optim_muon():
    """The iteration the bound is about is the library's quantized Muon (SVD, EMA)."""
    optim = pytest.importorskip("refopt.optim")
    qg, qw, qm = 0.05, 0.01, 0.02
    prec = optim.Precision(weights=optim.worst_case(qw, "plus"), grads=optim.worst_case(qg, "plus"),
                           m=optim.worst_case(qm, "plus"))
    opt = optim.muon(0.01, 0.9, precision=prec)
    W = np.random.default_rng(3).standard_normal((4, 6)) * 2
    state = opt.init(W)
    ours, M = W.copy(), np.zeros_like(W)
    for _ in range(30):
        W, state = opt.update(W, optim.quantized_grad(np.tanh, W, prec), state)
        Gh = np.tanh(ours * (1 + qw)) * (1 + qg)
        M = (0.9 * M + 0.1 * Gh) * (1 + qm)
        ours = ours - 0.01 * msign(M)
        np.testing.assert_allclose(W, ours, rtol=1e-10, atol=1e-12)


def test_simulation_noisy_quadratic_below_bound():
    """F(W) = L ||W||_F^2 / 2 with Gaussian noise: ||grad F|| <= L (1+q_W) B_W on every
    point the iteration can reach, so G is known and the bound applies exactly."""
    rng = np.random.default_rng(4)
    p, q, T, eta, beta, s, L = 3, 5, 150, 0.02, 0.9, 0.2, 2.0
    qs = dict(q_W=2.0**-8, q_G=2.0**-4, q_M=2.0**-8)
    r = min(p, q)
    W0 = rng.standard_normal((p, q))
    B_W = np.linalg.norm(W0) + eta * T * math.sqrt(r)
    G = L * (1 + qs["q_W"]) * B_W
    vals = []
    for _ in range(30):
        W, M, acc = W0.copy(), np.zeros_like(W0), 0.0
        for _ in range(T):
            acc += np.linalg.norm(L * W, "nuc")
            Gh = (L * W * (1 + qs["q_W"]) + s * rng.standard_normal((p, q))) * (1 - qs["q_G"])
            M = (beta * M + (1 - beta) * Gh) * (1 - qs["q_M"])
            W = W - eta * msign(M)
        vals.append(acc / T)
    vals = np.array(vals)
    res = muon_bound(T, eta, beta, r, L, s * math.sqrt(p * q), L * np.sum(W0**2) / 2, G,
                     weight_norm=B_W, **qs)
    assert vals.mean() + 3 * vals.std(ddof=1) / math.sqrt(vals.size) <= res.value
