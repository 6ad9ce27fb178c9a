"""
A 4-layer MLP with quantized Adam and Muon
==========================================

The paper's second experiment trains a 4-layer fully connected network with Adam and
with Muon (Newton-Schulz orthogonalisation for the 2-D weights, an auxiliary Adam for
the 1-D biases), all quantized. This tutorial uses refopt's NumPy network
(:class:`refopt.problems.MLP`) on scikit-learn's 8 x 8 digits, which ship with
scikit-learn (CIFAR-10 is used by ``refopt reproduce --full --data PATH``).
"""

# %%
# The network and its gradient
# ----------------------------
# Parameters are a dict of arrays: ``W1..W4`` (2-D, shape ``(fan_out, fan_in)``) and
# ``b1..b4`` (1-D), so a combined optimizer can route them. A finite-difference check
# of one weight's gradient:

import numpy as np

from refopt.problems import MLP, load_dataset

data = load_dataset("digits")
print(f"dataset: {data.name}, train {data.x_train.shape}, test {data.x_test.shape}")
net = MLP((64, 32, 32, 32, 10))
params = net.init(np.random.default_rng(0))
x, y = data.x_train[:32].astype(np.float64), data.y_train[:32]
loss, grads = net.loss_and_grad(params, x, y)
h = 1e-6
bumped = {**params, "W2": params["W2"].copy()}
bumped["W2"][3, 5] += h
print(f"dL/dW2[3,5]: backprop {grads['W2'][3, 5]:.8g}, finite difference {(net.evaluate(bumped, x, y)[0] - loss) / h:.8g}")

# %%
# Training under quantization
# ---------------------------
# :func:`refopt.experiments.cells.mlp_cell` trains the network with a precision policy
# for W, G, m and v. ``"M2"`` is a 2-bit mantissa with float64's exponent range (the
# paper's emulation); ``"bf16"`` is the real format.

from refopt.experiments.cells import mlp_cell

runs = {}
for opt in ("adam", "muon"):
    for fmt in ("exact", "bf16", "M2"):
        runs[opt, fmt] = mlp_cell({"optimizer": opt, "format": fmt, "hidden": [32, 32, 32], "steps": 200,
                                   "every": 20}, np.random.SeedSequence(1))
        r = runs[opt, fmt]
        print(f"{opt:5s} {fmt:6s} test accuracy {100 * r['final_test_acc']:.1f}%  "
              f"train loss {r['final_train_loss']:.3f}")

# %%
# Loss and accuracy vs steps.

import matplotlib.pyplot as plt

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
for (opt, fmt), r in runs.items():
    ls = "-" if opt == "adam" else "--"
    ax1.plot(r["t"], r["train_loss"], ls, label=f"{opt}, {fmt}")
    ax2.plot(r["t"], r["test_acc"], ls, label=f"{opt}, {fmt}")
ax1.set(yscale="log", xlabel="step", ylabel="training loss")
ax2.set(xlabel="step", ylabel="test accuracy")
ax1.legend(fontsize=8)
plt.show()
