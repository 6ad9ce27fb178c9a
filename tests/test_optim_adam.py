"""Quantized Adam against hand-written scalar recursions, the Défossez recursion and PyTorch."""

from __future__ import annotations

import importlib
import math
import os

import numpy as np
import pytest

from refopt import exact
from refopt.optim import AdamState, Precision, adam, quantized_grad, worst_case

H = np.array([0.3, 1.0, 2.5, 0.05, 4.0])
TARGET = np.array([1.0, -2.0, 0.5, 3.0, -0.25])


def grad(w: np.ndarray) -> np.ndarray:
    return H * (w - TARGET)


def scalar_q(fmt: str | None, rounding: str = "nearest_even"):
    """A per-element quantizer built on the mpmath/integer oracle ``refopt.exact``."""
    if fmt is None:
        return lambda x: x
    return lambda x: exact(x, fmt, rounding)


def hand_start(w0):
    """Scalar lists: the weights, and zero m and v."""
    return [float(x) for x in w0], [0.0] * len(w0), [0.0] * len(w0)


def hand_grads(w, QW, QG):
    """The framework's gradient, one scalar at a time: Q_G(grad(Q_W(w)))."""
    return [QG(H[i] * (QW(x) - TARGET[i])) for i, x in enumerate(w)]


def hand_analysed(w0, steps, lr, b1, b2, eps, fq, wd=0.0):
    """Défossez's recursion with the framework's quantization points, one scalar at a time."""
    QW, QG, QM, QV = fq
    w, m, v = hand_start(w0)
    for t in range(1, steps + 1):
        g = hand_grads(w, QW, QG)
        alpha = lr * (1 - b1) * math.sqrt(sum(b2**j for j in range(t)))
        for i in range(len(w)):
            gi = g[i] + wd * w[i]
            m[i] = QM(b1 * m[i] + gi)
            v[i] = QV(b2 * v[i] + gi * gi)
            w[i] = w[i] - alpha * m[i] / math.sqrt(eps + v[i])
    return np.array(w), np.array(m), np.array(v)


def hand_practical(w0, steps, lr, b1, b2, eps, fq, wd=0.0, decoupled=False, master=True):
    QW, QG, QM, QV = fq
    w, m, v = hand_start(w0)
    for t in range(1, steps + 1):
        g = hand_grads(w, QW, QG)
        for i in range(len(w)):
            gi = g[i] if decoupled else g[i] + wd * w[i]
            if decoupled:
                w[i] *= 1 - lr * wd
            m[i] = QM(b1 * m[i] + (1 - b1) * gi)
            v[i] = QV(b2 * v[i] + (1 - b2) * gi * gi)
            mhat = m[i] / (1 - b1**t)
            vhat = v[i] / (1 - b2**t)
            w[i] = w[i] - lr * mhat / (math.sqrt(vhat) + eps)
            if not master:
                w[i] = QW(w[i])
    return np.array(w), np.array(m), np.array(v)


def run_refopt(opt, w0, steps):
    w, state = np.array(w0), opt.init(np.array(w0))
    for _ in range(steps):
        w, state = opt.update(w, quantized_grad(grad, w, opt.precision), state)
    return w, state


W0 = np.array([0.1, 0.2, -0.3, 5.0, 1.5])
FMTS = {"exact": (None,) * 4, "bf16": ("bf16",) * 4, "mixed": ("bf16", "fp8_e4m3fn", "fp16", "fp32")}


@pytest.mark.parametrize("name", sorted(FMTS))
def test_analysed_matches_hand_recursion(name: str) -> None:
    fm = FMTS[name]
    opt = adam(0.05, 0.8, 0.99, 1e-6, weight_decay=0.01, precision=Precision(*fm))
    w, s = run_refopt(opt, W0, 30)
    hw, hm, hv = hand_analysed(W0, 30, 0.05, 0.8, 0.99, 1e-6, [scalar_q(f) for f in fm], wd=0.01)
    np.testing.assert_allclose(w, hw, rtol=1e-13, atol=0)
    np.testing.assert_allclose(s.m, hm, rtol=1e-13, atol=0)
    np.testing.assert_allclose(s.v, hv, rtol=1e-13, atol=0)


@pytest.mark.parametrize("fm", [(None,) * 4, ("bf16", "bf16", "fp16", "bf16")], ids=["exact", "quantized"])
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("master", [True, False])
def test_practical_matches_hand_recursion(decoupled: bool, master: bool, fm) -> None:
    opt = adam(0.01, 0.9, 0.999, 1e-8, variant="practical", weight_decay=0.1, decoupled=decoupled,
               precision=Precision(*fm, rounding="toward_zero"), master_weights=master)
    w, s = run_refopt(opt, W0, 25)
    hw, hm, hv = hand_practical(W0, 25, 0.01, 0.9, 0.999, 1e-8, [scalar_q(f, "toward_zero") for f in fm],
                                wd=0.1, decoupled=decoupled, master=master)
    np.testing.assert_allclose(s.m, hm, rtol=1e-13, atol=0)
    np.testing.assert_allclose(s.v, hv, rtol=1e-13, atol=0)
    np.testing.assert_allclose(w, hw, rtol=1e-12, atol=0)


def test_analysed_step_is_defossez_and_practical_differs_by_momentum_correction() -> None:
    """Exact precision, eps = 0: u_practical = u_analysed / (1 - b1^t) (Défossez omits it)."""
    b1, b2 = 0.9, 0.99
    an, pr = adam(0.1, b1, b2, 0.0), adam(0.1, b1, b2, 0.0, variant="practical")
    sa, sp = an.init(W0), pr.init(W0)
    rng = np.random.default_rng(0)
    for t in range(1, 40):
        g = rng.standard_normal(5)
        ra, rp = an.step(W0, g, sa), pr.step(W0, g, sp)
        sa, sp = ra.state, rp.state
        np.testing.assert_allclose(rp.update * (1 - b1**t), ra.update, rtol=1e-12)


def test_states_are_representable_after_every_step() -> None:
    fm = {"m": "fp8_e4m3fn", "v": "fp16", "weights": "bf16"}
    opt = adam(0.02, variant="practical", precision=Precision(**fm, rounding="stochastic", rng=5),
               master_weights=False)
    w, state = W0, opt.init(W0)
    for _ in range(20):
        w, state = opt.update(w, quantized_grad(grad, w, opt.precision), state)
        for arr, f in ((state.m, "fp8_e4m3fn"), (state.v, "fp16"), (w, "bf16")):
            assert all(exact(float(x), f, "toward_zero") == x for x in arr)


def test_storage_in_bf16_stalls_small_updates_master_weights_do_not() -> None:
    w0 = np.full(4, 1.0)
    g = np.full(4, 1.0)
    opt = adam(1e-3, variant="practical", precision=Precision(weights="bf16"), master_weights=False)
    w, s = w0, opt.init(w0)
    for _ in range(10):  # the update 1e-3 < half a bf16 ulp of 1 (2**-8): rounded away
        w, s = opt.update(w, g, s)
    np.testing.assert_array_equal(w, w0)
    master = adam(1e-3, variant="practical", precision=Precision(weights="bf16"))
    w, s = w0, master.init(w0)
    for _ in range(10):
        w, s = master.update(w, g, s)
    np.testing.assert_allclose(w, 1.0 - 10e-3, rtol=1e-6)


def test_worst_case_quantizers_hit_assumption_with_equality() -> None:
    q = 2.0**-6
    opt = adam(0.1, precision=Precision(m=worst_case(q, "+"), v=worst_case(q, "-")))
    s = opt.init(W0)
    g = np.array([1.0, -2.0, 0.5, 4.0, -0.25])
    r = opt.step(W0, g, s)
    np.testing.assert_array_equal(r.state.m, g * (1 + q))
    np.testing.assert_array_equal(r.state.v, g * g * (1 - q))


def test_dict_params_match_separate_runs() -> None:
    opt = adam(0.01, variant="practical")
    p = {"b": np.array([1.0, 2.0]), "a": np.array([[0.5, -0.5]])}
    g = {"b": np.array([0.1, -0.2]), "a": np.array([[0.3, 0.0]])}
    new, s = opt.update(p, g, opt.init(p))
    for k in p:
        single, _ = opt.update(p[k], g[k], opt.init(p[k]))
        np.testing.assert_array_equal(new[k], single)
    assert isinstance(s, AdamState) and s.count == 1


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"lr": 0.0}, ValueError, "lr must be > 0"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"lr": 0.1, "b1": 1.0}, ValueError, r"b1 must be in \[0, 1\)"),
        ({"lr": 0.1, "b2": -0.1}, ValueError, "b2"),
        ({"lr": 0.1, "eps": -1e-8}, ValueError, "eps must be >= 0"),
        ({"lr": 0.1, "variant": "adamw"}, ValueError, "variant must be one of"),
        ({"lr": 0.1, "weight_decay": -1.0}, ValueError, "weight_decay"),
        ({"lr": 0.1, "nonfinite": "ignore"}, ValueError, "nonfinite"),
        ({"lr": "0.1"}, TypeError, "lr must be a real number"),
        ({"lr": 0.1, "precision": "bf16"}, TypeError, "precision must be"),
        ({"lr": float("nan")}, ValueError, "finite"),
    ],
)
def test_bad_hyperparameters(kwargs, err, match) -> None:
    with pytest.raises(err, match=match):
        adam(**kwargs)


def test_bad_inputs_to_update() -> None:
    opt = adam(0.1)
    w = np.ones(3)
    s = opt.init(w)
    with pytest.raises(ValueError, match="grads has shape"):
        opt.update(w, np.ones(4), s)
    with pytest.raises(TypeError, match="grads must be a real floating-point array"):
        opt.update(w, np.ones(3, dtype=np.int64), s)
    with pytest.raises(TypeError, match="complex"):
        opt.update(w, np.ones(3, dtype=complex), s)
    with pytest.raises(TypeError, match="grads must be a real floating-point array, got dtype bool"):
        opt.update(w, np.ones(3, dtype=bool), s)
    with pytest.raises(TypeError, match="state.v must be a real floating-point array"):
        opt.update(w, w, AdamState(0, np.zeros(3), np.zeros(3, dtype=np.int64)))
    with pytest.raises(TypeError, match=r"params\['a'\] must be a real floating-point array"):
        opt.update({"a": np.ones(2, dtype=np.int8)}, {"a": np.ones(2)}, opt.init({"a": np.ones(2)}))
    w32, _ = opt.update(w.astype(np.float32), w, s)  # float widths mix: converted exactly
    assert w32.dtype == np.float64
    with pytest.raises(ValueError, match="keys"):
        opt.update({"a": w}, {"b": w}, opt.init({"a": w}))
    with pytest.raises(ValueError, match="must be a dict"):
        opt.update({"a": w}, w, opt.init({"a": w}))
    with pytest.raises(TypeError, match="AdamState"):
        opt.update(w, w, (0, w, w))
    with pytest.raises(ValueError, match="state.m"):
        opt.update(w, w, AdamState(0, np.ones(2), np.ones(3)))


def test_nonfinite_raises_by_default_and_can_skip() -> None:
    w = np.ones(3)
    g = np.array([1.0, np.nan, 0.0])
    opt = adam(0.1)
    with pytest.raises(FloatingPointError, match="grads contains NaN or infinity at step 1"):
        opt.update(w, g, opt.init(w))
    skip = adam(0.1, nonfinite="skip")
    s = skip.init(w)
    r = skip.step(w, g, s)
    assert r.skipped and r.state is s and r.state.count == 0
    np.testing.assert_array_equal(r.params, w)
    # an fp16 second moment overflowing to infinity is reported by name
    fp16 = adam(0.1, precision=Precision(v="fp16"))
    with pytest.raises(FloatingPointError, match="v contains"):
        fp16.update(w, np.full(3, 1e3), fp16.init(w))


@pytest.mark.torch
@pytest.mark.parametrize("decoupled", [False, True])
def test_practical_matches_torch_float64(decoupled: bool) -> None:
    torch = importlib.import_module("torch") if os.environ.get("CI") else pytest.importorskip("torch")  # CI must run it
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(50)
    grads = [rng.standard_normal(50) * 10.0 ** rng.uniform(-3, 1, 50) for _ in range(100)]
    tp = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    topt = cls([tp], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, foreach=False)
    opt = adam(1e-2, 0.9, 0.99, 1e-8, variant="practical", weight_decay=0.05, decoupled=decoupled)
    w, s = w0, opt.init(w0)
    for g in grads:
        tp.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
        w, s = opt.update(w, g, s)
        st = topt.state[tp]
        for ours, theirs in ((w, tp), (s.m, st["exp_avg"]), (s.v, st["exp_avg_sq"])):
            t = theirs.detach().numpy()  # normwise: m crosses zero, where elementwise rtol is meaningless
            assert np.max(np.abs(ours - t)) <= 1e-12 * np.max(np.abs(t))
