"""Défossez et al. 2022 calculators against an independent mpmath evaluation."""

from __future__ import annotations

import math

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refopt.theory import defossez_adagrad, defossez_adam, defossez_adam_momentum

mpmath.mp.dps = 50

POINTS = [
    dict(N=1000, alpha=0.01, b1=0.9, b2=0.999, eps=1e-8, d=10, R=1.0, L=1.0, delta=1.0),
    dict(N=10**6, alpha=1e-3, b1=0.5, b2=1 - 1e-6, eps=1e-6, d=3, R=2.5, L=10.0, delta=0.3),
    dict(N=50, alpha=0.5, b1=0.0, b2=0.9, eps=1e-4, d=1, R=0.5, L=0.1, delta=7.0),
    dict(N=20, alpha=2.0, b1=0.3, b2=0.35, eps=1.0, d=100, R=3.0, L=0.0, delta=0.0),
]


def mp_theorem4(N, alpha, b1, b2, eps, d, R, L, delta):
    N, alpha, b1, b2, eps, d, R, L, delta = map(mpmath.mpf, (N, alpha, b1, b2, eps, d, R, L, delta))
    nt = N - b1 / (1 - b1)
    a = b1 / b2
    E = (alpha * d * R * L * (1 - b1) / ((1 - a) * (1 - b2))
         + 12 * d * R**2 * mpmath.sqrt(1 - b1) / ((1 - a) ** mpmath.mpf(1.5) * mpmath.sqrt(1 - b2))
         + 2 * alpha**2 * d * L**2 * b1 / ((1 - a) * (1 - b2) ** mpmath.mpf(1.5)))
    return (2 * R * delta / (alpha * nt)
            + E * (mpmath.log(1 + R**2 / ((1 - b2) * eps)) / nt - N / nt * mpmath.log(b2)))


def mp_theorem2(N, alpha, b2, eps, d, R, L, delta):
    N, alpha, b2, eps, d, R, L, delta = map(mpmath.mpf, (N, alpha, b2, eps, d, R, L, delta))
    E = 4 * d * R**2 / mpmath.sqrt(1 - b2) + alpha * d * R * L / (1 - b2)
    return 2 * R * delta / (alpha * N) + E * (mpmath.log(1 + R**2 / ((1 - b2) * eps)) / N - mpmath.log(b2))


def mp_theorem1(N, alpha, eps, d, R, L, delta):
    N, alpha, eps, d, R, L, delta = map(mpmath.mpf, (N, alpha, eps, d, R, L, delta))
    return (2 * R * delta / (alpha * mpmath.sqrt(N))
            + (4 * d * R**2 + alpha * d * R * L) * mpmath.log(1 + N * R**2 / eps) / mpmath.sqrt(N))


@pytest.mark.parametrize("p", POINTS)
def test_theorem4_matches_mpmath(p):
    got = defossez_adam_momentum(**p).value
    assert got == pytest.approx(float(mp_theorem4(**p)), rel=1e-12)


@pytest.mark.parametrize("p", POINTS)
def test_theorem2_matches_mpmath(p):
    q = {k: v for k, v in p.items() if k != "b1"}
    assert defossez_adam(**q).value == pytest.approx(float(mp_theorem2(**q)), rel=1e-12)


@pytest.mark.parametrize("p", POINTS)
def test_theorem1_matches_mpmath(p):
    q = {k: v for k, v in p.items() if k not in ("b1", "b2")}
    assert defossez_adagrad(**q).value == pytest.approx(float(mp_theorem1(**q)), rel=1e-12)


def test_theorem4_at_b1_zero_is_three_times_theorem2_adaptivity():
    p = dict(POINTS[0], b1=0.0)
    t4 = defossez_adam_momentum(**p).terms
    t2 = defossez_adam(**{k: v for k, v in p.items() if k != "b1"}).terms
    assert t4["adaptivity (d R^2)"] == pytest.approx(3 * t2["adaptivity (d R^2)"], rel=1e-14)
    assert t4["smoothness (alpha d R L)"] == pytest.approx(t2["smoothness (alpha d R L)"], rel=1e-14)


@settings(max_examples=60, deadline=None)
@given(b1=st.floats(0.0, 0.95), gap=st.floats(0.01, 0.99), N=st.integers(100, 10**7),
       L=st.floats(0.0, 10.0), d=st.integers(1, 1000))
def test_theorem4_monotone(b1, gap, N, L, d):
    """Increasing b1 (at fixed b2), L, d or F(x0)-F* never decreases the bound."""
    b2 = b1 + gap * (1 - b1)
    base = dict(N=N, alpha=0.01, b1=b1, b2=b2, eps=1e-8, d=d, R=1.0, L=L, delta=1.0)
    v = defossez_adam_momentum(**base).value
    if not math.isfinite(v):
        return
    assert defossez_adam_momentum(**dict(base, L=L + 1)).value >= v
    assert defossez_adam_momentum(**dict(base, d=d + 1)).value >= v
    assert defossez_adam_momentum(**dict(base, delta=2.0)).value >= v
    b1_up = b1 + 0.5 * (b2 - b1)
    up = defossez_adam_momentum(**dict(base, b1=b1_up)).value
    assert up >= v * (1 - 1e-12)


def test_adagrad_rate_and_schedule_rate():
    """Adagrad decays like ln N / sqrt N; Adam with alpha = 1/sqrt N, b2 = 1-1/N too."""
    for f in (lambda N: defossez_adagrad(N, 1.0, 1e-8, 10, 1.0, 1.0, 1.0).value,
              lambda N: defossez_adam(N, 1 / math.sqrt(N), 1 - 1 / N, 1e-8, 10, 1.0, 1.0, 1.0).value):
        r = [f(N) * math.sqrt(N) / math.log(N) for N in (10**4, 10**6, 10**8)]
        assert max(r) / min(r) < 1.6


def test_conditions_give_inf_with_name():
    res = defossez_adam_momentum(100, 0.1, 0.9, 0.8, 1e-8, 1, 1.0, 1.0, 1.0)
    assert res.value == math.inf and res.failed == ["b1 < b2"] and res.terms == {}
    res = defossez_adam_momentum(5, 0.1, 0.9, 0.99, 1e-8, 1, 1.0, 1.0, 1.0)
    assert res.value == math.inf and res.failed == ["N > b1/(1-b1)"]
    res = defossez_adam(5, 0.1, 0.99, 1.0, 1, 0.5, 1.0, 1.0)
    assert res.failed == ["R >= sqrt(eps)"]
    assert "FAILED" in str(res)


@pytest.mark.parametrize("kw, msg", [
    (dict(b2=1.0), "b2"), (dict(b2=0.0), "b2"), (dict(b1=-0.1), "b1"), (dict(b1=1.0), "b1"),
    (dict(N=0), "N"), (dict(N=10.5), "N"), (dict(alpha=-1.0), "alpha"), (dict(eps=0.0), "eps"),
    (dict(L=math.nan), "L"), (dict(R=math.inf), "R"), (dict(delta=-1.0), "delta"),
    (dict(d=0), "d"),
])
def test_bad_input(kw, msg):
    p = dict(POINTS[0], **kw)
    with pytest.raises(ValueError, match=msg):
        defossez_adam_momentum(**p)


def test_type_errors():
    with pytest.raises(TypeError, match="alpha"):
        defossez_adagrad(10, "0.1", 1e-8, 1, 1.0, 1.0, 1.0)
    with pytest.raises(TypeError, match="N"):
        defossez_adagrad(True, 0.1, 1e-8, 1, 1.0, 1.0, 1.0)


def test_result_table_lists_terms_and_total():
    res = defossez_adam_momentum(**POINTS[0])
    text = str(res)
    for key in res.terms:
        assert key in text
    assert "TOTAL" in text and "defossez-adam-momentum" in text
    assert res.value == pytest.approx(math.fsum(res.terms.values()), rel=1e-15)
    assert res.dominant() == max(res.terms, key=res.terms.get)
