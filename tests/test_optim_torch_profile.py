"""The bf16 PyTorch Adam/AdamW profile: bit-exact against torch, and its float32 FMA."""

from __future__ import annotations

import importlib
import os
from fractions import Fraction

import numpy as np
import pytest

from refopt import quantize
from refopt.optim import fma_fp32, quantized_grad, torch_adam_bf16


def rne_fp32(x: Fraction) -> float:
    """Round a rational once to float32 (normal range), by hand: ties to even."""
    if x == 0:
        return 0.0
    e = abs(x).numerator.bit_length() - abs(x).denominator.bit_length()
    if Fraction(2) ** e > abs(x):
        e -= 1
    quantum = Fraction(2) ** (e - 23)
    n = x / quantum
    k = n.numerator // n.denominator  # floor
    rest = n - k
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and k % 2 == 1):
        k += 1
    return float(k * quantum)


def test_fma_fp32_is_correctly_rounded() -> None:
    rng = np.random.default_rng(0)
    a = np.asarray(quantize(rng.standard_normal(2000), "fp32"))
    b = np.asarray(quantize(rng.standard_normal(2000), "fp32"))
    # c close to -a*b: heavy cancellation, the hard cases for double rounding
    c = np.asarray(quantize(-a * b * (1 + rng.standard_normal(2000) * 2.0**-20), "fp32"))
    got = fma_fp32(a, b, c)
    for i in range(2000):
        want = rne_fp32(Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i])))
        assert got[i] == want


def test_fma_fp32_beats_double_rounding_on_a_hand_built_case() -> None:
    # a*b = (1 + 2**-12)(1 - 2**-12 + 2**-24) = 1 + 2**-36 exactly; with c = 2**24 the exact
    # sum 2**24 + 1 + 2**-36 lies just above the float32 midpoint 2**24 + 1 (float32 spacing 2
    # there), so fma rounds up to 2**24 + 2. Float64 first rounds the sum to the midpoint
    # itself, and a second round-to-nearest-even would give 2**24.
    a, b, c = 1 + 2.0**-12, 1 - 2.0**-12 + 2.0**-24, 2.0**24
    assert Fraction(a) * Fraction(b) == 1 + Fraction(1, 2**36)
    assert float(fma_fp32(a, b, c)) == 2.0**24 + 2
    assert float(quantize(a * b + c, "fp32")) == 2.0**24  # the double-rounding trap


def test_profile_checks_inputs_are_bf16() -> None:
    opt = torch_adam_bf16()
    w = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match="params must hold bf16 values"):
        opt.update(w + 2.0**-12, w, opt.init(w))
    with pytest.raises(ValueError, match="grads must hold bf16 values"):
        opt.update(w, w / 3, opt.init(w))
    with pytest.raises(ValueError, match="vector_width"):
        torch_adam_bf16(vector_width=0)
    assert all(opt.precision.format_of(c).name == "bf16" for c in ("weights", "grads", "m", "v"))


def test_adamw_decay_vanishes_in_bf16() -> None:
    """1 - lr*wd = 1 - 1e-4 rounds back: w(1 - 1e-4) is within half a bf16 ulp of w."""
    w = np.asarray(quantize(np.linspace(0.5, 4.0, 32), "bf16"))
    opt = torch_adam_bf16(1e-3, weight_decay=0.1, decoupled=True)
    zero = np.zeros_like(w)
    new, _ = opt.update(w, zero, opt.init(w))
    np.testing.assert_array_equal(new, w)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("decoupled", "wd", "lr", "b1", "shape"),
    [
        (False, 0.0, 1e-3, 0.9, (2000,)),
        (True, 0.1, 1e-3, 0.9, (2000,)),
        (True, 1.0, 1e-2, 0.9, (37, 5)),
        (False, 0.1, 1e-3, 0.9, (2000,)),
        (False, 0.0, 1e-2, 0.3, (100,)),
    ],
)
def test_bit_exact_against_torch_50_steps(decoupled: bool, wd: float, lr: float, b1: float, shape) -> None:
    torch = importlib.import_module("torch") if os.environ.get("CI") else pytest.importorskip("torch")  # CI must run it
    if wd and not decoupled and torch.backends.cpu.get_cpu_capability() != "AVX512":
        pytest.skip("the L2-decay scalar tail width was measured on AVX512 only")
    rng = np.random.default_rng(1)
    p0 = np.asarray(quantize(rng.standard_normal(shape), "bf16"))
    grads = [np.asarray(quantize(rng.standard_normal(shape) * 10.0 ** rng.uniform(-4, 1, shape), "bf16"))
             for _ in range(50)]
    tp = torch.tensor(p0).to(torch.bfloat16).requires_grad_()
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    topt = cls([tp], lr=lr, betas=(b1, 0.999), weight_decay=wd, foreach=False)
    opt = torch_adam_bf16(lr, b1, 0.999, weight_decay=wd, decoupled=decoupled)
    w, s = p0, opt.init(p0)
    for t, g in enumerate(grads, 1):
        tp.grad = torch.tensor(g).to(torch.bfloat16)
        topt.step()
        w, s = opt.update(w, quantized_grad(lambda _: g, w, opt.precision), s)
        st = topt.state[tp]
        for name, ours, theirs in (("param", w, tp), ("exp_avg", s.m, st["exp_avg"]), ("exp_avg_sq", s.v, st["exp_avg_sq"])):
            t_np = theirs.detach().to(torch.float64).numpy()
            bad = np.flatnonzero(ours != t_np)
            assert bad.size == 0, f"step {t}: {name} differs at {bad[:5]}"
