"""
Rosenbrock on a matrix: quantized Adam and Muon
===============================================

The paper's first experiment optimises the generalized Rosenbrock function on a
50 x 100 matrix variable and shows that the final gradient norm falls as the mantissa
length :math:`M` grows. This tutorial builds that experiment from refopt's pieces:
the problem (:class:`refopt.problems.Rosenbrock`), the optimizers
(:mod:`refopt.optim`) under a precision policy, and the cell function the
``refopt reproduce`` command sweeps (:func:`refopt.experiments.cells.trajectory_cell`).
"""

# %%
# The objective and how it applies to a matrix
# --------------------------------------------
# refopt flattens the matrix row-major into :math:`x \in \mathbb R^{5000}` and uses one
# chain :math:`F = \sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`, the standard
# :math:`d = 5000` function (minimum 0 at the all-ones matrix). Muon still sees the
# 50 x 100 shape. A central-difference check of the gradient:

import numpy as np

from refopt.problems import Rosenbrock

f = Rosenbrock((50, 100))
rng = np.random.default_rng(0)
w = rng.uniform(-1, 1, f.shape)
d = rng.standard_normal(f.shape)
h = 1e-6
fd = (f.value(w + h * d) - f.value(w - h * d)) / (2 * h)
print(f"directional derivative: analytic {np.sum(f.grad(w) * d):.8g}, finite difference {fd:.8g}")
print(f"F(0) = {f.value(np.zeros(f.shape)):g},  F(1) = {f.value(f.minimizer()):g}")

# %%
# One quantized run
# -----------------
# A cell is a pure function of its parameters and a seed. Here Adam with every
# component (weights W, gradients G, moments m and v) rounded stochastically to a
# 4-bit mantissa, for 300 steps from :math:`W_0 = 0`:

from refopt.experiments.cells import trajectory_cell

run = trajectory_cell({"format": "M4", "rounding": "stochastic", "steps": 300, "every": 10},
                      np.random.SeedSequence(0))
print(f"final gradient norm {run['final_grad_norm']:.3g}, final loss {run['final_loss']:.1f}")

# %%
# A small mantissa sweep
# ----------------------
# The same run for a few :math:`M`, for Adam and Muon (Muon has no second moment, so
# only W, G and m are quantized). The gradient norm is measured at the full-precision
# master weights.

ms = [1, 2, 4, 8, 16, 52]
sweep = {}
for opt, comps, lr in (("adam", "WGmv", 1e-3), ("muon", "WGm", 3e-3)):
    sweep[opt] = [
        trajectory_cell({"optimizer": opt, "lr": lr, "components": comps, "format": f"M{m}",
                         "steps": 300, "every": 10}, np.random.SeedSequence(m))
        for m in ms
    ]
    print(opt, [f"M={m}: {r['tail_grad_norm']:.3g}" for m, r in zip(ms, sweep[opt])])

# %%
# Plot: final gradient norm vs :math:`M`, and the curves.

import matplotlib.pyplot as plt

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
for opt, runs in sweep.items():
    ax1.plot(range(len(ms)), [r["tail_grad_norm"] for r in runs], "-o", label=opt)
    for m, r in zip(ms, runs):
        if opt == "adam":
            ax2.plot(r["t"], r["grad_norm"], label=f"M = {m}")
ax1.set(xticks=range(len(ms)), xticklabels=ms, yscale="log", xlabel="mantissa bits M",
        ylabel="final ||grad F||")
ax1.legend()
ax2.set(yscale="log", xlabel="iteration", ylabel="||grad F(W_t)||", title="Adam, stochastic rounding")
ax2.legend(fontsize=8)
plt.show()

# %%
# With only 300 steps the optimisation itself, not the rounding, limits the gradient
# norm once :math:`M` is moderate; ``refopt reproduce --full`` runs the paper's 10,000
# iterations over :math:`M = 1, \dots, 23, 52`.
