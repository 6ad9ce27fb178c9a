"""
Quantized Adam: the framework, two forms, and what rounding does to small updates
=================================================================================

This tutorial runs Adam with low-precision weights, gradients and moments, using the
code of :func:`refopt.optim.adam` (shown below from the library source, not copied).
It then looks at the two effects that make low-precision Adam hard in practice: updates
smaller than half a unit in the last place (ULP) of the weights are rounded away, and
decoupled weight decay vanishes entirely in bf16.
"""

# %%
# The framework's order
# ---------------------
# In the framework of :prf:ref:`paper-framework` the optimizer keeps full-precision
# master weights :math:`W`; the gradient is computed at a *quantized copy*
# :math:`Q_W(W)` and then quantized itself. :func:`refopt.optim.quantized_grad` does
# exactly this, in this order:
#
# .. literalinclude:: ../../refopt/optim/trace.py
#    :language: python
#    :start-after: # [docs:framework:start]
#    :end-before: # [docs:framework:end]
#    :dedent:
#
# A :class:`refopt.optim.Precision` says which format and rounding each of the four
# components uses (``None`` keeps a component exact):

import matplotlib.pyplot as plt
import numpy as np

from refopt import quantize
from refopt.optim import Precision, adam, quantized_grad, run, torch_adam_bf16

policy = Precision(weights="bf16", grads="bf16", m="bf16", v="bf16")
print(policy)
for c in ("weights", "grads", "m", "v"):
    print(f"  q_{c} = {policy.unit_roundoff(c):.3g}  (round to nearest: 2**-(M+1), M = 7)")

# %%
# The analysed form
# -----------------
# The update of ``variant="analysed"`` is Défossez et al.'s weighted-sum Adam
# (:prf:ref:`refopt-algorithm-adam-analysed`) with the quantization points
# :math:`Q_M, Q_V` on the stored moments. This is the code that runs:
#
# .. literalinclude:: ../../refopt/optim/adam.py
#    :language: python
#    :start-after: # [docs:adam-analysed:start]
#    :end-before: # [docs:adam-analysed:end]
#    :dedent:
#
# and then the weights move (kept in float64 unless ``master_weights=False``):
#
# .. literalinclude:: ../../refopt/optim/adam.py
#    :language: python
#    :start-after: # [docs:adam-weights:start]
#    :end-before: # [docs:adam-weights:end]
#    :dedent:
#
# A noisy quadratic :math:`F(w) = \tfrac12 \sum_i h_i w_i^2` in 200 dimensions, run
# for 400 steps in exact arithmetic, with every component in bf16, and with fp8 (E4M3)
# gradients next to bf16 weights and moments:

h = np.logspace(-1, 1, 200)


def oracle(wq, rng):
    return 0.5 * float(np.sum(h * wq * wq)), h * wq + 0.01 * rng.standard_normal(wq.shape)


w0 = np.random.default_rng(0).uniform(-1, 1, 200)
traces = {}
for name, prec in {"exact": Precision(), "bf16": policy,
                   "fp8 grads": Precision("bf16", "fp8_e4m3fn", "bf16", "bf16")}.items():
    traces[name] = run(oracle, adam(0.01, b2=0.99, precision=prec), w0, 400, rng=1, record=("loss",))

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, tr in traces.items():
    ax.semilogy(tr.steps, tr["loss"], label=name)
ax.set_xlabel("step")
ax.set_ylabel("loss at $Q_W(W)$")
ax.legend()
fig.tight_layout()

# %%
# Updates below half an ULP are rounded away
# ------------------------------------------
# Round to nearest moves a value only if the change is at least half the spacing of the
# format there (:prf:ref:`refopt-lemma-unit-roundoff`): for a bf16 weight near 1 the
# spacing is :math:`2^{-7}`, so any update smaller than :math:`2^{-8} \approx 0.0039`
# leaves it where it is. Adam's steps (practical form, a gradient of constant sign) have
# size about the learning rate, so with
# ``lr=1e-3`` and the weights *stored* in bf16 (``master_weights=False``,
# :math:`W \leftarrow Q_W(W - u)`) training stagnates. Float64 master weights
# accumulate the small steps; stochastic rounding of the stored weights moves them by
# the right amount *on average*.

target = np.full(100, 0.5)


def pull(wq):
    return wq - target  # gradient of |w - 1/2|^2 / 2


start = np.ones(100)
variants = {
    "bf16 storage, round to nearest": adam(
        1e-3, variant="practical", precision=Precision(weights="bf16"), master_weights=False),
    "bf16 storage, stochastic rounding": adam(
        1e-3, variant="practical", precision=Precision(weights="bf16", rounding="stochastic", rng=0),
        master_weights=False),
    "float64 master weights, bf16 copy": adam(1e-3, variant="practical", precision=Precision(weights="bf16")),
}
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, opt in variants.items():
    tr = run(lambda wq: pull(wq), opt, start, 300, rng=None, record=("w",))
    ax.plot(tr.steps, tr["w"].mean(axis=1), label=name)
    print(f"{name:36s} mean w after 300 steps: {tr.final.mean():.4f}")
ax.axhline(1.0 - 300e-3, color="gray", lw=0.8, ls=":", label="300 exact steps of size 1e-3")
ax.set_xlabel("step")
ax.set_ylabel("mean weight")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Decoupled weight decay vanishes in bf16
# ---------------------------------------
# Pure-bf16 training in PyTorch keeps parameters and moments in bf16 and rounds after
# every operation. :func:`refopt.optim.torch_adam_bf16` reproduces PyTorch 2.13's CPU
# Adam/AdamW bit for bit (the test suite compares 50 steps against torch). Its update:
#
# .. literalinclude:: ../../refopt/optim/torch_profile.py
#    :language: python
#    :start-after: # [docs:torch-adam-bf16:start]
#    :end-before: # [docs:torch-adam-bf16:end]
#    :dedent:
#
# AdamW's first operation multiplies the weights by :math:`1 - \mathrm{lr}\cdot\lambda
# = 1 - 10^{-4}`. The relative change :math:`10^{-4}` is far below half a bf16 ULP
# (:math:`2^{-8}` relative, at best), so every weight rounds back to itself: with a
# zero gradient, 1000 steps of AdamW leave bf16 weights untouched, while the same decay
# on float64 weights shrinks them by :math:`(1 - 10^{-4})^{1000} \approx 0.905`.

w = np.asarray(quantize(np.linspace(0.5, 4.0, 8), "bf16"))
opt = torch_adam_bf16(1e-3, weight_decay=0.1, decoupled=True)
state = opt.init(w)
wb = w
for _ in range(1000):
    wb, state = opt.update(wb, quantized_grad(lambda x: np.zeros_like(x), wb, opt.precision), state)
exact_decay = adam(1e-3, variant="practical", weight_decay=0.1, decoupled=True)
wf, sf = w, exact_decay.init(w)
for _ in range(1000):
    wf, sf = exact_decay.update(wf, np.zeros_like(wf), sf)
print("bf16 AdamW   :", wb)
print("float64 AdamW:", np.round(wf, 4))
print("ratio float64/start:", np.round(wf / w, 4))
