"""
refopt as a ground-truth oracle: traces, golden vectors, and finding a bug
==========================================================================

You have written a low-precision optimizer (a PyTorch extension, a JAX function, a
CUDA kernel) and want to know whether it computes what it should. refopt runs the
same steps exactly and tells you the first place yours diverges: the step, the
quantity, the element, both values and their distance in units in the last place
(ULPs) of that quantity's format. This tutorial records a trace, writes golden
vectors, and then plays "another implementation" with a planted bug.
"""

# %%
# Recording a trace
# -----------------
# :func:`refopt.optim.run` runs an optimizer in the framework's order
# (:prf:ref:`paper-framework`) and records, per step, the weights :math:`W`, their
# quantized copy :math:`W^Q`, the oracle's gradient :math:`g` at :math:`W^Q`, its
# quantization :math:`g^Q`, the moments after the step, the update and the loss:

import tempfile
from pathlib import Path

import numpy as np

from refopt import quantize
from refopt.cli import main as refopt_cli
from refopt.optim import Precision, Trace, adam, check_trace, run, write_vectors

h = np.logspace(-1, 1, 16)


def oracle(wq, rng):
    return 0.5 * float(np.sum(h * wq * wq)), h * wq + 0.1 * rng.standard_normal(wq.shape)


policy = Precision(weights="bf16", grads="fp8_e4m3fn", m="bf16", v="bf16")
opt = adam(0.05, variant="practical", precision=policy)
trace = run(oracle, opt, np.linspace(-1, 1, 16), 30, rng=0)
print(trace)
print("g^Q at step 1 (fp8 values):", trace["gq"][0][:4])

workdir = Path(tempfile.mkdtemp())
trace.save(workdir / "reference.npz")

# %%
# The trace file is a plain ``.npz``: a JSON ``config`` (optimizer, hyper-parameters,
# formats, rounding, the starting state of a stochastic-rounding generator) and one
# array per quantity with a leading step axis; see :class:`refopt.optim.Trace` for the
# layout. The config rebuilds the optimizer:

print(trace.config["optimizer"]["variant"], trace.config["optimizer"]["precision"]["grads"]["format"]["name"])

# %%
# Golden vectors
# --------------
# ``refopt vectors --out DIR`` (:func:`refopt.optim.write_vectors`) writes test data for
# implementations that cannot call Python: the quantizer on an edge set for every
# preset format and deterministic rounding mode (with bit patterns as hex strings), and
# optimizer traces for Adam (both forms), Muon and the bf16 PyTorch profile under named
# precision policies, described by ``manifest.json``.

manifest = write_vectors(workdir / "golden", steps=10)
q = np.load(workdir / "golden" / "quantize.npz")
x = q["fp8_e4m3fn/input"]
i = int(np.flatnonzero(x == 464.0)[0])  # the e4m3fn overflow threshold: ties to 448
print("e4m3fn RNE of", x[i], "->", q["fp8_e4m3fn/nearest_even/output"][i],
      "bits", q["fp8_e4m3fn/nearest_even/output_bits"][i])
print([t["file"] for t in manifest["traces"]][:5], "...")

# %%
# Another implementation, with a planted bug
# ------------------------------------------
# Here is an independent bf16/fp8 Adam written the way a fused kernel might be: it
# reads the golden trace's first weights and per-step gradients, applies the same
# quantization points, and records its own trace in the same layout. Its bug: the
# update divides by the *unrounded* second moment, while the stored state is rounded
# correctly. Most values barely change, which is exactly why such bugs survive.


def their_adam(golden: Trace, fixed: bool) -> Trace:
    cfg = golden.config["optimizer"]
    lr, b1, b2, eps = cfg["lr"], cfg["b1"], cfg["b2"], cfg["eps"]
    w = golden["w"][0].copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    rows = {k: [] for k in ("w", "wq", "g", "gq", "m", "v", "update")}
    for t in range(1, len(golden.steps) + 1):
        g = golden["g"][t - 1]  # the oracle's gradient, taken from the golden trace
        wq = np.asarray(quantize(w, "bf16"))
        gq = np.asarray(quantize(g, "fp8_e4m3fn"))
        m = np.asarray(quantize(b1 * m + (1 - b1) * gq, "bf16"))
        v_acc = b2 * v + (1 - b2) * gq * gq  # the accumulator before rounding
        v = np.asarray(quantize(v_acc, "bf16"))
        denom = np.sqrt(v if fixed else v_acc) / np.sqrt(1 - b2**t) + eps  # BUG unless fixed
        u = lr / (1 - b1**t) * m / denom
        for k, val in zip(rows, (w, wq, g, gq, m, v, u)):
            rows[k].append(val)
        w = w - u
    arrays = {k: np.stack(r) for k, r in rows.items()}
    arrays["final"] = w
    return Trace(golden.config, golden.steps, arrays)


golden = Trace.load(workdir / "reference.npz")
theirs = their_adam(golden, fixed=False)
theirs.save(workdir / "theirs.npz")

# %%
# The checker recomputes refopt's reference from the inputs stored in *their* trace
# (the optimizer rebuilt from the config, their first weights, their oracle gradients)
# and walks both traces in computation order, reporting the first value that differs:
#
# .. literalinclude:: ../../refopt/optim/check.py
#    :language: python
#    :start-after: # [docs:check-loop:start]
#    :end-before: # [docs:check-loop:end]
#    :dedent:
#
# From Python, or ``refopt check theirs.npz`` on the command line (exit status 1):

report = check_trace(workdir / "theirs.npz")
print(report)
status = refopt_cli(["check", str(workdir / "theirs.npz")])
print("exit status:", status)

# %%
# It points at ``update`` in the first step where rounding ``v`` mattered, at one
# element, with the difference in float64 ULPs: the stored states were fine, the
# division was not. With the bug fixed the traces agree exactly, every value of every
# step:

print(check_trace(their_adam(golden, fixed=True)))

# %%
# Unquantized float64 arithmetic in another order (say ``sqrt(v / c)`` instead of
# ``sqrt(v) / sqrt(c)``) legitimately differs in the last bits; ``ulps=`` (``--ulps`` on
# the command line) sets a tolerance in ULPs of each component's format, so such
# differences pass while a real bug, thousands of ULPs away, still stands out.
