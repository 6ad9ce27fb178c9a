"""refopt's Adam and Muon bounds against their documented statements, evaluated in mpmath.

The lemma tests (test_theory_adam.py, test_theory_muon.py) check each inequality and its
constant on sequences; these tests tie the *calculators* to the theorem statements on the
docs pages (refopt-theorem-adam-quantized, refopt-theorem-muon-quantized), transcribed
here term by term in 50-digit arithmetic. Any changed constant in the code (a halved
rounding floor, a dropped factor) fails here even when it would stay below a simulation.
The momentum-rounding constant rho is written in the lemma's first (difference) form, not
the simplified form the code uses.
"""

from __future__ import annotations

import mpmath
import pytest

from refopt.theory import adam_bound, muon_bound

mp = mpmath.mp.clone()
mp.dps = 50
F = mp.mpf


def statement_adam(N, alpha, b1, b2, eps, d, R, L, delta, qG, qW, qM, qV, BW):
    """(sqrt(B_Q) + L q_W B_W)^2 of refopt-theorem-adam-quantized."""
    N, alpha, b1, b2, eps, d, R, L, delta, qG, qW, qM, qV, BW = map(
        F, (N, alpha, b1, b2, eps, d, R, L, delta, qG, qW, qM, qV, BW))
    b2t, b2h = b2 * (1 - qV), b2 * (1 + qV)
    rV = (1 + qV) / (1 - qV)
    clo, chi = (1 - qV) * (1 - qG) ** 2, (1 + qV) * (1 + qG) ** 2
    k0 = b1 / mp.sqrt(b2t)
    k = k0 * (1 + qM)
    aq = b1 * (1 + qM) / b2t
    ahat = b1 * max(mp.sqrt(max(1, b2h)), rV**2) / b2t
    geo = lambda b: mp.nsum(lambda j: b**j, [0, N - 1])  # noqa: E731
    phi = mp.sqrt(geo(b2) / geo(b2h))
    S = 1 / (1 - b2h) if b2h < 1 else geo(b2h)
    lam = mp.log(1 + chi * R**2 * S / eps) - N * mp.log(b2t)
    E1 = lambda a: alpha * d * R * L * (1 - b1) / ((1 - a) * (1 - b2))  # noqa: E731
    E2 = lambda a: (4 * d * R**2 / mp.sqrt(1 - b2) if b1 == 0 else  # noqa: E731
                    12 * d * R**2 * mp.sqrt(1 - b1) / ((1 - a) ** F(1.5) * mp.sqrt(1 - b2)))
    E3 = lambda a: 2 * alpha**2 * d * L**2 * b1 / ((1 - a) * (1 - b2) ** F(1.5))  # noqa: E731
    fu = (1 + qM) ** 2 * (1 - b1) / (1 - b1 * (1 + qM))
    fU = max(mp.sqrt(chi) / (1 - qG) ** 2, (1 + qV) / mp.sqrt(clo))
    sn = mp.sqrt(1 - qV) * (1 - qG)
    rho = ((1 + qG) * (1 + qM) / (1 - k) - 1 / (1 - k0)) / sn
    theta = (2 * qV / (1 - qV)) / (sn * (1 - k0 * rV) * (1 - k0))
    omega = mp.sqrt(d) * L * qW * BW / (sn * (1 - k0))
    Nt = N - b1 / (1 - b1)
    BQ = mp.sqrt(chi) / phi * (
        2 * R * delta / (alpha * Nt)
        + lam / ((1 - qV) * Nt) * (fu * E1(aq) + fU * E2(ahat) + fu * E3(aq))
        + 2 * R * (1 - b1) * N / (Nt * mp.sqrt(1 - b2)) * (d * R * rho + d * R * theta + omega))
    return (mp.sqrt(BQ) + L * qW * BW) ** 2


ADAM_POINTS = [
    # N, alpha, b1, b2, eps, d, R, L, delta, q_G, q_W, q_M, q_V, B_W
    (10_000, 0.01, 0.9, 0.9999, 1e-8, 10, 1.0, 1.0, 1.0, 2.0**-8, 2.0**-24, 2.0**-8, 2.0**-11, 30.0),
    (1000, 0.03, 0.5, 0.999, 1e-6, 3, 2.0, 5.0, 0.5, 0.01, 0.001, 0.02, 0.003, 4.0),
    (500, 0.1, 0.0, 0.99, 1e-4, 50, 0.5, 0.2, 3.0, 2.0**-4, 2.0**-8, 2.0**-8, 2.0**-11, 7.0),
    (200, 0.05, 0.3, 0.9, 1e-2, 1, 1.5, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0),
    # beta2 (1 + q_V) > 1: the finite geometric sum branch of Lambda and of phi
    (300, 0.01, 0.9, 1 - 1e-5, 1e-8, 4, 1.0, 1.0, 1.0, 2.0**-8, 0.0, 2.0**-8, 2.0**-11, 0.0),
]


@pytest.mark.parametrize("p", ADAM_POINTS)
def test_adam_bound_is_its_statement(p):
    N, alpha, b1, b2, eps, d, R, L, delta, qG, qW, qM, qV, BW = p
    res = adam_bound(N, alpha, b1, b2, eps, d, R, L, delta, q_G=qG, q_W=qW, q_M=qM,
                     q_V=qV, weight_norm=BW)
    assert res.valid
    assert res.value == pytest.approx(float(statement_adam(*p)), rel=1e-10)


def test_adam_floors_are_the_lemma_constants():
    """The three floors on their own (L = 0, delta = 0 leave the Lambda terms and the
    floors; q_V alone, q_G alone): each equals the statement's term."""
    for qs in (dict(qG=2.0**-6, qW=0.0, qM=0.0, qV=0.0), dict(qG=0.0, qW=0.0, qM=2.0**-6, qV=0.0),
               dict(qG=0.0, qW=0.0, qM=0.0, qV=2.0**-9)):
        args = (2000, 0.02, 0.9, 0.999, 1e-8, 5, 1.0, 0.0, 0.0)
        got = adam_bound(*args, q_G=qs["qG"], q_W=qs["qW"], q_M=qs["qM"], q_V=qs["qV"]).value
        want = statement_adam(*args, qs["qG"], qs["qW"], qs["qM"], qs["qV"], 0.0)
        assert got == pytest.approx(float(want), rel=1e-10)


def statement_muon(T, eta, beta, r, L, sigma, delta, G, G0, qG, qW, qM, BW):
    """The right side of refopt-theorem-muon-quantized."""
    T, eta, beta, r, L, sigma, delta, G, G0, qG, qW, qM, BW = map(
        F, (T, eta, beta, r, L, sigma, delta, G, G0, qG, qW, qM, BW))
    Gb = G + sigma
    fp = (delta / (eta * T) + L * eta * r / 2
          + 2 * mp.sqrt(r) * (beta * G0 / ((1 - beta) * T) + L * eta * mp.sqrt(r) * beta / (1 - beta)
                              + sigma * mp.sqrt((1 - beta) / (1 + beta))))
    q = 2 * mp.sqrt(r) * (L * qW * BW + qG * Gb + qM * (1 + qG) * Gb
                          + qM * beta / (1 - beta * (1 + qM)) * (1 + qM) * (1 + qG) * Gb)
    return fp + q


MUON_POINTS = [
    # T, eta, beta, r, L, sigma, delta, G, G0, q_G, q_W, q_M, B_W
    (10_000, 1e-3, 0.99, 10, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0**-4, 2.0**-8, 2.0**-8, 12.0),
    (200, 0.02, 0.9, 3, 2.0, 0.5, 4.0, 10.0, 3.0, 0.01, 0.001, 0.05, 5.0),
    (50, 0.1, 0.0, 1, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.3, 0.0),
]


@pytest.mark.parametrize("p", MUON_POINTS)
def test_muon_bound_is_its_statement(p):
    T, eta, beta, r, L, sigma, delta, G, G0, qG, qW, qM, BW = p
    res = muon_bound(T, eta, beta, r, L, sigma, delta, G, grad0=G0, q_G=qG, q_W=qW, q_M=qM,
                     weight_norm=BW)
    assert res.value == pytest.approx(float(statement_muon(*p)), rel=1e-12)
