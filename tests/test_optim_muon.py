"""Quantized Muon and the Muon + Adam combination against hand-written recursions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refopt import exact
from refopt.optim import MuonState, Precision, adam, msign, muon, muon_adam, quantized_grad, shape_scale

TARGET = np.random.default_rng(0).standard_normal((5, 3))


def grad(w: np.ndarray) -> np.ndarray:
    return 2.0 * (w - TARGET)


def q_elementwise(fmt, rounding="nearest_even"):
    if fmt is None:
        return lambda a: a
    return lambda a: np.vectorize(lambda x: exact(float(x), fmt, rounding))(a)


def polar_by_hand(D: np.ndarray) -> np.ndarray:
    scipy_linalg = pytest.importorskip("scipy.linalg")
    return scipy_linalg.polar(D)[0]  # full rank here: the unique polar factor


def hand_muon(w0, steps, lr, beta, *, form, nesterov, scale_factor, wd, fm, master=True, rounding="nearest_even"):
    QW, QG, QM = (q_elementwise(f, rounding) for f in fm)
    w, m = w0.copy(), np.zeros_like(w0)
    c = 1 - beta if form == "ema" else 1.0
    for _ in range(steps):
        g = QG(grad(QW(w)))
        m = QM(beta * m + c * g)
        d = c * g + beta * m if nesterov else m
        w = w * (1 - lr * wd) - lr * scale_factor * polar_by_hand(d)
        if not master:
            w = QW(w)
    return w, m


@pytest.mark.parametrize(
    ("form", "nesterov", "scale", "wd", "fm", "master"),
    [
        ("ema", False, "none", 0.0, (None, None, None), True),
        ("ema", True, "rows_over_cols", 0.1, ("bf16", "bf16", "bf16"), True),
        ("sum", False, "rms", 0.0, ("fp16", "fp8_e4m3fn", "bf16"), True),
        ("sum", True, "none", 0.05, ("bf16", None, "fp16"), False),
    ],
)
def test_muon_matches_hand_recursion(form, nesterov, scale, wd, fm, master) -> None:
    w0 = np.random.default_rng(1).standard_normal((5, 3))
    opt = muon(0.02, 0.9, momentum=form, nesterov=nesterov, scale=scale, weight_decay=wd,
               precision=Precision(*fm), master_weights=master)
    w, s = w0, opt.init(w0)
    for _ in range(15):
        w, s = opt.update(w, quantized_grad(grad, w, opt.precision), s)
    factor = {"none": 1.0, "rows_over_cols": math.sqrt(5 / 3), "rms": 0.2 * math.sqrt(5)}[scale]
    hw, hm = hand_muon(w0, 15, 0.02, 0.9, form=form, nesterov=nesterov, scale_factor=factor, wd=wd, fm=fm,
                       master=master)
    np.testing.assert_allclose(s.m, hm, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(w, hw, rtol=1e-11, atol=1e-13)


def test_shape_scale_convention_rows_are_outputs() -> None:
    assert shape_scale((8, 2), "rows_over_cols") == 2.0
    assert shape_scale((2, 8), "rows_over_cols") == 1.0
    assert shape_scale((16, 4), "rms") == pytest.approx(0.8)
    assert shape_scale((16, 4), "none") == 1.0
    with pytest.raises(ValueError, match="scale"):
        shape_scale((2, 2), "spectral")


def test_momentum_is_representable_and_update_is_orthogonal() -> None:
    opt = muon(0.1, precision=Precision(grads="fp8_e5m2", m="fp8_e4m3fn", rounding="stochastic", rng=2))
    w = np.random.default_rng(5).standard_normal((4, 6))
    s = opt.init(w)
    for _ in range(10):
        r = opt.step(w, quantized_grad(lambda x: x - 1.0, w, opt.precision), s)
        w, s = r.params, r.state
        assert all(exact(float(x), "fp8_e4m3fn", "toward_zero") == x for x in s.m.ravel())
        u = r.update / 0.1
        np.testing.assert_allclose(u @ u.T, np.eye(4), atol=1e-12)


def test_newton_schulz_option_and_zero_gradient() -> None:
    opt = muon(0.1, orthogonalize="newton_schulz")
    w = np.eye(3)
    r = opt.step(w, np.zeros((3, 3)), opt.init(w))
    np.testing.assert_array_equal(r.params, w)  # zero momentum: zero update
    g = np.diag([1.0, 0.0, 0.0])
    r = opt.step(w, g, opt.init(w))
    assert 0.069 < r.update[0, 0] < 0.071  # rank-1 NS5 value 0.70, times lr
    svd = muon(0.1).step(w, g, muon(0.1).init(w))
    np.testing.assert_allclose(svd.update, 0.1 * msign(g), atol=0)


def test_muon_adam_equals_separate_optimizers() -> None:
    P = Precision("bf16", "bf16", "bf16", "bf16")
    mu, ad = muon(0.02, precision=P), adam(1e-3, variant="practical", precision=P)
    opt = muon_adam(mu, ad)
    rng = np.random.default_rng(7)
    p = {"w2": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4), "w1": rng.standard_normal((4, 2))}
    g = {k: np.asarray(P.quantize_grads(rng.standard_normal(v.shape))) for k, v in p.items()}
    new, s = opt.update(p, g, opt.init(p))
    mats = {k: p[k] for k in ("w1", "w2")}
    m_new, _ = mu.update(mats, {k: g[k] for k in mats}, mu.init(mats))
    a_new, _ = ad.update(p["b1"], g["b1"], ad.init(p["b1"]))
    for k in mats:
        np.testing.assert_array_equal(new[k], m_new[k])
    np.testing.assert_array_equal(new["b1"], a_new)
    assert s.count == 1 and sorted(opt.moments(s)["m"]) == ["b1", "w1", "w2"]
    assert sorted(opt.moments(s)["v"]) == ["b1"]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        muon(0.1).init(np.ones(3))
    with pytest.raises(ValueError, match="2-D"):
        muon(0.1).init({"a": np.ones((2, 2)), "b": np.ones(2)})
    with pytest.raises(ValueError, match="beta"):
        muon(0.1, beta=1.0)
    with pytest.raises(ValueError, match="lr"):
        muon(0.0)
    with pytest.raises(ValueError, match="orthogonalize"):
        muon(0.1, orthogonalize="qr")
    with pytest.raises(ValueError, match="momentum"):
        muon(0.1, momentum="nesterov")
    with pytest.raises(ValueError, match="ns_steps"):
        muon(0.1, ns_steps=-2)
    with pytest.raises(TypeError, match="nesterov"):
        muon(0.1, nesterov="yes")
    with pytest.raises(TypeError, match="MuonState"):
        muon(0.1).update(np.eye(2), np.eye(2), (0, np.eye(2)))
    with pytest.raises(ValueError, match="share one precision"):
        muon_adam(muon(0.1, precision=Precision(m="bf16")), adam(0.1))
    with pytest.raises(TypeError, match="muon_opt"):
        muon_adam(adam(0.1), adam(0.1))
    with pytest.raises(TypeError, match="dict"):
        muon_adam(muon(0.1), adam(0.1)).init(np.eye(2))
    w = np.eye(2)
    with pytest.raises(FloatingPointError, match="grads"):
        muon(0.1).update(w, np.full((2, 2), np.inf), MuonState(0, w))


def test_inputs_never_mutated() -> None:
    P = Precision("bf16", "bf16", "bf16")
    opt = muon(0.1, nesterov=True, weight_decay=0.1, precision=P, master_weights=False)
    w = np.random.default_rng(2).standard_normal((3, 4))
    g = np.random.default_rng(3).standard_normal((3, 4))
    state = opt.update(w, g, opt.init(w))[1]
    copies = (w.copy(), g.copy(), state.m.copy())
    opt.update(w, g, state)
    for a, b in zip((w, g, state.m), copies):
        np.testing.assert_array_equal(a, b)
