"""The optimizers' working dtype: float64 (the paper's model) and float32 (PyTorch's arithmetic)."""

from __future__ import annotations

import importlib
import math
import os

import numpy as np
import pytest

from refopt import FloatFormat, exact
from refopt.optim import (
    Precision,
    adam,
    check_trace,
    muon,
    muon_adam,
    optimizer_from_config,
    quantized_grad,
    run,
    worst_case,
)

f32 = np.float32


def q32(fmt: str | None):
    """Scalar quantizer on the mpmath/integer oracle, returning a float32 scalar."""
    return (lambda x: x) if fmt is None else (lambda x: f32(exact(float(x), fmt)))


def hand_float32(w0, grads, lr, b1, b2, eps, wd, variant, decoupled, fm):
    """Adam one float32 scalar at a time: every operation rounds to float32 (numpy scalars)."""
    QM, QV = q32(fm[0]), q32(fm[1])
    w, m, v = [f32(x) for x in w0], [f32(0)] * len(w0), [f32(0)] * len(w0)
    for t, gt in enumerate(grads, start=1):
        for i in range(len(w)):
            g = f32(gt[i])
            if wd and not decoupled:
                g = g + f32(wd) * w[i]
            if variant == "analysed":
                m[i] = QM(m[i] * f32(b1) + g)
                v[i] = QV(g * g + v[i] * f32(b2))
                alpha = lr * (1 - b1) * math.sqrt((1 - b2**t) / (1 - b2))
                u = m[i] * f32(alpha) / np.sqrt(v[i] + f32(eps))
            else:
                m[i] = QM(g * f32(1 - b1) + m[i] * f32(b1))
                v[i] = QV(g * g * f32(1 - b2) + v[i] * f32(b2))
                den = np.sqrt(v[i]) / f32(math.sqrt(1 - b2**t)) + f32(eps)
                u = m[i] * f32(lr / (1 - b1**t)) / den
            w[i] = (w[i] * f32(1 - lr * wd) if wd and decoupled else w[i]) - u
    return np.array(w), np.array(m), np.array(v)


RNG = np.random.default_rng(7)
W0 = RNG.standard_normal(12)
GRADS = [RNG.standard_normal(12) * 10.0 ** RNG.uniform(-3, 1, 12) for _ in range(40)]


@pytest.mark.parametrize("fm", [(None, None), ("bf16", "fp16")], ids=["exact", "bf16-fp16"])
@pytest.mark.parametrize(
    ("variant", "wd", "decoupled"),
    [("analysed", 0.0, False), ("analysed", 0.01, False), ("practical", 0.05, False), ("practical", 0.05, True)],
)
def test_float32_is_every_operation_rounded_to_float32(variant, wd, decoupled, fm) -> None:
    opt = adam(1e-2, 0.9, 0.99, 1e-8, variant=variant, weight_decay=wd, decoupled=decoupled,
               precision=Precision(m=fm[0], v=fm[1]), dtype=np.float32)
    w, s = W0.astype(f32), opt.init(W0.astype(f32))
    for g in GRADS:
        w, s = opt.update(w, g.astype(f32), s)
    hw, hm, hv = hand_float32(W0, GRADS, 1e-2, 0.9, 0.99, 1e-8, wd, variant, decoupled, fm)
    # Same operation order, IEEE float32 operations: equal to the last bit.
    for ours, hand in ((w, hw), (s.m, hm), (s.v, hv)):
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, hand)


def test_float32_differs_from_float64_by_float32_roundings_only() -> None:
    common = dict(variant="practical", weight_decay=0.05, decoupled=True, precision=Precision(m="bf16", v="bf16"))
    o64, o32 = adam(1e-2, **common), adam(1e-2, **common, dtype=np.float32)
    w64, s64 = W0, o64.init(W0)
    w32, s32 = W0.astype(f32), o32.init(W0.astype(f32))
    for g in GRADS[:5]:
        w64, s64 = o64.update(w64, g.astype(f32), s64)
        w32, s32 = o32.update(w32, g.astype(f32), s32)
    assert not np.array_equal(w32, w64)  # the float32 roundings are there...
    np.testing.assert_allclose(w32, w64, rtol=1e-5, atol=0)  # ...and small


@pytest.mark.torch
@pytest.mark.parametrize("decoupled", [False, True], ids=["Adam", "AdamW"])
def test_practical_float32_close_to_torch_float32(decoupled: bool) -> None:
    torch = importlib.import_module("torch") if os.environ.get("CI") else pytest.importorskip("torch")  # CI must run it
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(200).astype(f32)
    grads = [(rng.standard_normal(200) * 10.0 ** rng.uniform(-3, 1, 200)).astype(f32) for _ in range(100)]
    tp = torch.tensor(w0, dtype=torch.float32, requires_grad=True)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    topt = cls([tp], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, foreach=False)
    opt = adam(1e-2, 0.9, 0.99, 1e-8, variant="practical", weight_decay=0.05, decoupled=decoupled,
               dtype=np.float32)
    w, s = w0, opt.init(w0)
    for g in grads:
        tp.grad = torch.tensor(g)
        topt.step()
        w, s = opt.update(w, g, s)
    st = topt.state[tp]
    # Close, not bitwise: the operation order differs (torch: lerp_, addcmul_, addcdiv_).
    for ours, theirs in ((w, tp), (s.m, st["exp_avg"]), (s.v, st["exp_avg_sq"])):
        t = theirs.detach().numpy()
        assert ours.dtype == np.float32
        assert np.max(np.abs(ours - t)) <= 1e-5 * np.max(np.abs(t))  # normwise: m crosses zero


def _optimizers(dtype):
    P = Precision("bf16", "bf16", "bf16", "fp16")
    return {
        "adam": adam(1e-2, precision=P, dtype=dtype),
        "adam-practical": adam(1e-2, variant="practical", weight_decay=0.1, decoupled=True,
                               master_weights=False, precision=P, dtype=dtype),
        "muon": muon(0.02, nesterov=True, weight_decay=0.1, precision=P, dtype=dtype),
        "muon_adam": muon_adam(muon(0.02, precision=P, dtype=dtype), adam(1e-2, precision=P, dtype=dtype)),
    }


def _params(name):
    rng = np.random.default_rng(1)
    if name == "muon":
        return {"a": rng.standard_normal((4, 3))}
    return {"a": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}


@pytest.mark.parametrize("name", sorted(_optimizers(np.float64)))
def test_float32_state_and_results_are_float32_and_inputs_untouched(name) -> None:
    opt = _optimizers(np.float32)[name]
    w = _params(name)  # float64 inputs are rounded to float32 on entry
    state = opt.init(w)
    g = {k: np.cos(a) for k, a in w.items()}
    copies = [{k: a.copy() for k, a in tree.items()} for tree in (w, g)]
    for _ in range(3):
        r = opt.step(w, g, state)
        for tree in (r.params, r.update, *opt.moments(r.state).values()):
            assert {a.dtype for a in tree.values()} == {np.dtype(np.float32)}
        for tree, copy in zip((w, g), copies):
            for k in tree:
                np.testing.assert_array_equal(tree[k], copy[k])
        state = r.state
    assert opt.config()["optimizer"] and optimizer_from_config(opt.config()).config() == opt.config()


@pytest.mark.parametrize("name", sorted(_optimizers(np.float64)))
def test_default_dtype_is_float64(name) -> None:
    # The float64 results themselves are checked against hand recursions in the other test files.
    default = _optimizers(np.float64)[name]
    assert default.dtype == np.float64 and default.config()["optimizer"]
    w32 = {k: a.astype(f32) for k, a in _params(name).items()}
    r = default.step(w32, {k: np.cos(a) for k, a in w32.items()}, default.init(w32))
    for tree in (r.params, r.update, *default.moments(r.state).values()):
        assert {a.dtype for a in tree.values()} == {np.dtype(np.float64)}


@pytest.mark.parametrize(
    ("component", "quantizer", "what"),
    [
        ("m", "fp64", "'fp64'"),
        ("grads", FloatFormat.mantissa_only(30), "mantissa_only"),
        ("v", worst_case(2.0**-8), "callable"),
        ("weights", FloatFormat(11, 10), "format"),  # fp16 mantissa, float64's exponent range
    ],
)
@pytest.mark.parametrize("build", ["adam", "muon"])
def test_float32_refuses_components_that_do_not_fit(component, quantizer, what, build) -> None:
    if build == "muon" and component == "v":
        component = "m"
    P = Precision(**{component: quantizer})
    make = (lambda **kw: adam(1e-2, **kw)) if build == "adam" else (lambda **kw: muon(0.02, **kw))
    with pytest.raises(ValueError, match=f"component {component!r} is .*{what}"):
        make(precision=P, dtype=np.float32)
    assert make(precision=P).dtype == np.float64  # fine in float64
    make(precision=Precision(*["fp32"] * 4), dtype="float32")  # fp32 itself fits


@pytest.mark.parametrize(
    ("dtype", "err"),
    [(None, TypeError), (3, TypeError), ("not-a-dtype", TypeError),
     (np.float16, ValueError), (np.int64, ValueError), ("complex128", ValueError)],
)
def test_bad_dtype_names_the_argument(dtype, err) -> None:
    for make in (lambda: adam(1e-2, dtype=dtype), lambda: muon(0.02, dtype=dtype)):
        with pytest.raises(err, match="dtype must be numpy.float64 or numpy.float32"):
            make()


def test_quantized_grad_given_an_optimizer_works_in_its_dtype() -> None:
    P = Precision(weights="bf16", grads="fp8_e4m3fn")
    opt = adam(1e-2, precision=P, dtype=np.float32)
    w = np.array([1.0 + 2.0**-10, -3.3], dtype=np.float64)
    seen = []

    def oracle(wq):
        seen.append(wq.dtype)
        return 3.0 * wq

    g32 = quantized_grad(oracle, w, opt)
    g64 = quantized_grad(oracle, w, P)
    assert seen == [np.float32, np.float64] and g32.dtype == np.float32 and g64.dtype == np.float64
    # Q_W then Q_G: bf16(1 + 2**-10) = 1, 3 -> 3; bf16(-3.3) = -3.296875, times 3 -> fp8_e4m3fn 10
    np.testing.assert_array_equal(g32, [3.0, -10.0])
    np.testing.assert_array_equal(g64, g32)
    with pytest.raises(TypeError, match="precision must be"):
        quantized_grad(oracle, w, "bf16")


def test_muon_adam_needs_one_dtype() -> None:
    with pytest.raises(ValueError, match="same dtype"):
        muon_adam(muon(0.02), adam(1e-2, dtype=np.float32))


def test_run_and_check_trace_keep_the_working_dtype(tmp_path) -> None:
    opt = _optimizers(np.float32)["muon_adam"]
    w0 = _params("muon_adam")
    trace = run(lambda w: {k: np.sin(a) for k, a in w.items()}, opt, w0, 6, rng=None)
    assert trace["w"]["a"].dtype == np.float32 and trace.final["b"].dtype == np.float32
    for name in ("wq", "g", "gq", "m", "update"):
        assert trace[name]["b"].dtype == np.float32
    np.testing.assert_array_equal(trace["w"]["a"][0], w0["a"].astype(f32))  # w0 as the optimizer sees it
    trace.save(tmp_path / "t.npz")
    report = check_trace(type(trace).load(tmp_path / "t.npz"))
    assert report.ok, str(report)
