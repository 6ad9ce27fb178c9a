"""Quantized Muon and the Muon + Adam combination against hand-written recursions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refopt import exact, quantize
from refopt.optim import (
    MuonState,
    Precision,
    adam,
    msign,
    muon,
    muon_adam,
    quantized_grad,
    shape_scale,
    torch_adam_bf16,
)

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
    with pytest.raises(ValueError, match="ns_coefficients"):
        muon(0.1, ns_coefficients=(3.4445, -4.775))
    with pytest.raises(TypeError, match="ns_precision"):
        muon(0.1, ns_precision=16)
    with pytest.raises(ValueError, match="scale must be one of"):
        muon(0.1, scale="spectral")
    with pytest.raises(ValueError, match="rtol must be >= 0"):
        muon(0.1, rtol=-1e-3)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        muon(0.1, weight_decay=-0.1)
    w = np.eye(2)
    opt = muon(0.1)
    with pytest.raises(ValueError, match=r"grads has shape \(2, 3\)"):
        opt.update(w, np.ones((2, 3)), opt.init(w))
    with pytest.raises(ValueError, match=r"params has shape \(4,\)"):
        opt.update(np.ones(4), np.ones(4), MuonState(0, np.ones(4)))
    with pytest.raises(TypeError, match="grads must be a real floating-point array"):
        opt.update(w, np.eye(2, dtype=np.int32), opt.init(w))
    with pytest.raises(FloatingPointError, match="grads"):
        opt.update(w, np.full((2, 2), np.inf), MuonState(0, w))
    fp16 = muon(0.1, precision=Precision(m="fp16"))  # 0.05 * 1e7 overflows fp16: M = inf
    with pytest.raises(FloatingPointError, match="m contains NaN or infinity at step 1"):
        fp16.update(w, np.full((2, 2), 1e7), fp16.init(w))
    skip = muon(0.1, nonfinite="skip")
    r = skip.step(w, np.full((2, 2), np.nan), skip.init(w))
    assert r.skipped and r.state.count == 0 and r.params is w


def _copies(tree):
    return {k: v.copy() for k, v in tree.items()} if isinstance(tree, dict) else tree.copy()


def _arrays(tree):
    return list(tree.values()) if isinstance(tree, dict) else [tree]


OPTIMIZERS = {
    "adam-analysed-l2": lambda P: adam(0.1, weight_decay=0.1, precision=P),
    "adam-practical-adamw-storage": lambda P: adam(0.1, variant="practical", weight_decay=0.1, decoupled=True,
                                                   precision=P, master_weights=False),
    "muon-nesterov-wd-storage": lambda P: muon(0.1, nesterov=True, weight_decay=0.1, precision=P,
                                               master_weights=False),
    "muon-ns": lambda P: muon(0.1, orthogonalize="newton_schulz", ns_precision="bf16", precision=P),
    "muon_adam": lambda P: muon_adam(muon(0.1, precision=P), adam(0.1, precision=P)),
    "torch_adam_bf16": lambda P: torch_adam_bf16(0.1, weight_decay=0.1),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("quantized", [False, True])
def test_inputs_never_mutated(name: str, quantized: bool) -> None:
    P = Precision("bf16", "bf16", "bf16", "bf16") if quantized else None
    opt = OPTIMIZERS[name](P)
    rng = np.random.default_rng(2)
    shapes = {"W": (3, 4), "b": (4,)} if name == "muon_adam" else {"W": (3, 4)}
    w = {k: np.asarray(quantize(rng.standard_normal(s), "bf16")) for k, s in shapes.items()}
    g = {k: np.asarray(quantize(rng.standard_normal(s), "bf16")) for k, s in shapes.items()}
    if name != "muon_adam":
        w, g = w["W"], g["W"]
    state = opt.update(w, g, opt.init(w))[1]  # non-zero moments
    inputs = (w, g, *opt.moments(state).values())
    before = [_copies(x) for x in inputs]
    new_w, new_state = opt.update(w, g, state)
    for x, y in zip(inputs, before):
        for a, b in zip(_arrays(x), _arrays(y)):
            np.testing.assert_array_equal(a, b)
    outputs = (new_w, *opt.moments(new_state).values())
    for out in (a for x in outputs for a in _arrays(x)):
        assert not any(np.shares_memory(out, a) for x in inputs for a in _arrays(x))


def test_newton_schulz_options_reach_muon() -> None:
    """Coefficients, step count, Frobenius pre-normalisation and iterate precision of muon(...)."""
    scipy_linalg = pytest.importorskip("scipy.linalg")
    M = np.random.default_rng(6).standard_normal((5, 3))
    w = np.zeros((5, 3))
    lr = 0.125

    def update(**kw):
        opt = muon(lr, 0.0, momentum="sum", orthogonalize="newton_schulz", **kw)
        return opt.step(w, M, opt.init(w)).update

    # the classical cubic iteration X <- 1.5 X - 0.5 X X^T X converges to the polar factor
    np.testing.assert_allclose(update(ns_coefficients=(1.5, -0.5, 0.0), ns_steps=40),
                               lr * scipy_linalg.polar(M)[0], atol=1e-13)
    # zero steps: only the pre-normalisation X_0 = M / (||M||_F + 1e-7)
    frob = math.sqrt(sum(float(x) ** 2 for x in M.ravel()))
    np.testing.assert_allclose(update(ns_steps=0), lr * M / (frob + 1e-7), rtol=1e-15)
    # bf16 iterates: the update is lr (a power of two) times bf16 numbers, close to float64 NS5
    u = update(ns_precision="bf16")
    assert all(exact(float(x), "bf16") == x for x in (u / lr).ravel())
    assert 0 < np.abs(u - update()).max() < 0.05 * lr


