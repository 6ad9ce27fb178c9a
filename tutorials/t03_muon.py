"""
Quantized Muon: the polar factor, Newton-Schulz, and why rounding errors stay small
===================================================================================

Muon steps along the *orthogonalized* momentum :math:`\\operatorname{msign}(M)`: the
matrix with the singular vectors of :math:`M` and all singular values equal to one
(:prf:ref:`refopt-def-msign`). This tutorial computes it exactly by SVD, compares it
with SciPy's polar decomposition and with the quintic Newton-Schulz iteration (NS5) that
practical Muon implementations use, and shows why quantizing the momentum does little
harm.
"""

# %%
# The exact polar factor, rank-aware
# ----------------------------------
# :func:`refopt.optim.msign` keeps only the singular values above a relative tolerance
# and maps the zero matrix to zero:
#
# .. literalinclude:: ../../refopt/optim/msign.py
#    :language: python
#    :start-after: # [docs:msign:start]
#    :end-before: # [docs:msign:end]
#    :dedent:
#
# For a full-rank matrix this is the orthogonal polar factor, and it agrees with
# ``scipy.linalg.polar``. For a rank-deficient matrix the polar factor is not unique:
# SciPy completes it with arbitrary directions of the null spaces, while ``msign``
# leaves them out (:math:`\|O\|_F^2 = \operatorname{rank} M`,
# :prf:ref:`refopt-lemma-msign`); for zero SciPy returns a partial identity.

import matplotlib.pyplot as plt
import numpy as np
from scipy.linalg import polar

from refopt.optim import NS5_COEFFICIENTS, Precision, msign, muon, newton_schulz, ns_polynomial, run

rng = np.random.default_rng(0)
full = rng.standard_normal((6, 4))
low = rng.standard_normal((6, 2)) @ rng.standard_normal((2, 4))
print("full rank: max |msign - scipy polar| =", np.abs(msign(full) - polar(full)[0]).max())
for name, M in (("rank 2", low), ("zero", np.zeros((6, 4)))):
    print(f"{name:7s}: ||msign||_F^2 = {np.linalg.norm(msign(M))**2:.3f},"
          f"  ||scipy polar||_F^2 = {np.linalg.norm(polar(M)[0])**2:.3f}")

# %%
# Newton-Schulz is not the polar factor
# -------------------------------------
# NS5 normalizes :math:`X_0 = M/\|M\|_F` and applies five times
# :math:`X \leftarrow aX + (bA + cA^2)X` with :math:`A = XX^\top`:
#
# .. literalinclude:: ../../refopt/optim/msign.py
#    :language: python
#    :start-after: # [docs:newton-schulz:start]
#    :end-before: # [docs:newton-schulz:end]
#    :dedent:
#
# Each step maps every singular value :math:`\sigma` through the odd polynomial
# :math:`p(\sigma) = a\sigma + b\sigma^3 + c\sigma^5` with
# :math:`(a, b, c) = (3.4445, -4.7750, 2.0315)`. The coefficients make :math:`p` steep at
# zero, so small singular values grow fast, but :math:`p` has no fixed point at 1: after
# five steps the outputs oscillate in roughly :math:`[0.68, 1.2]` instead of converging.

s = np.linspace(0, 1, 1001)
fig, ax = plt.subplots(figsize=(6, 3.5))
for k in (1, 2, 3, 5):
    ax.plot(s, ns_polynomial(s, k), label=f"{k} step{'s' * (k > 1)}")
ax.plot(s, np.sign(s), "k:", label="msign (SVD)")
ax.set_xlabel(r"normalized singular value $\sigma / \|M\|_F$")
ax.set_ylabel("output singular value")
ax.legend()
fig.tight_layout()

a, b, c = NS5_COEFFICIENTS
rank1 = np.outer([1.0, 2.0, 2.0], [3.0, 4.0])
print("rank-1 input: NS5 singular value", np.linalg.svd(newton_schulz(rank1), compute_uv=False)[0],
      "= p(p(p(p(p(1)))))", ns_polynomial(1.0, 5))

# %%
# The SVD route and NS5 differ by about 30% in step length for a rank-one momentum and
# by a varying factor per direction in general. Because NS5's output has the singular
# vectors of :math:`M`, it is :math:`U\,p^{\circ 5}(\Sigma/\|M\|_F)\,V^\top`: check it
# against the singular value map (exact arithmetic), and see how much running the
# iterates in bf16 moves the result (a few percent: the steep polynomial amplifies the
# rounding of small singular values):

U, _ = np.linalg.qr(rng.standard_normal((64, 32)))
V, _ = np.linalg.qr(rng.standard_normal((32, 32)))
sig = np.logspace(-3, 0, 32)[::-1]
M = U @ np.diag(sig) @ V.T
predicted = U @ np.diag(ns_polynomial(sig / np.linalg.norm(sig))) @ V.T
print("NS5 vs singular-value map:", np.abs(newton_schulz(M, eps=0.0) - predicted).max())
print("NS5 in bf16 vs float64  :", np.abs(newton_schulz(M, precision="bf16") - newton_schulz(M)).max())

# %%
# Why quantization errors are not amplified
# -----------------------------------------
# A quantized momentum is :math:`Q_M(M) = M + E` with :math:`|E_{ij}| \le q_M |M_{ij}|`.
# Three facts from :prf:ref:`refopt-lemma-msign` limit the damage:
#
# 1. the step always has spectral norm 1 (for :math:`M \ne 0`): no rounding error can
#    make a Muon step *longer*, unlike Adam, where an error that makes :math:`v` too
#    small inflates :math:`m/\sqrt{v}`;
# 2. ``msign`` ignores a common positive factor, so the part of :math:`E` along
#    :math:`M` does nothing;
# 3. the descent inequality :math:`\langle G, \operatorname{msign}(M)\rangle \ge
#    \|G\|_* - 2\|G - M\|_*` sees the error only additively, next to the momentum's own
#    stochastic error.
#
# Measured: the inner product with the true gradient (the descent it buys), relative
# to the ideal :math:`\|G\|_*`, for a momentum equal to the gradient and rounded to
# formats of decreasing precision:

G = rng.standard_normal((64, 32))
nuc = np.linalg.svd(G, compute_uv=False).sum()
for fmt in ("fp32", "bf16", "fp8_e4m3fn", "fp8_e5m2", "fp4_e2m1fn"):
    O = msign(Precision(m=fmt).quantize_m(G))
    print(f"{fmt:11s} q = {Precision(m=fmt).unit_roundoff('m'):.4f}: <G, msign(Q(G))>/||G||_* = "
          f"{np.sum(G * O) / nuc:.5f}, ||msign||_2 = {np.linalg.norm(O, 2):.3f}")

# %%
# The loss of descent is far smaller than :math:`q_M` itself (about :math:`0.1\,q_M^2`
# here), and the step length never changes.

# %%
# A Muon run
# ----------
# Muon with an fp8 momentum and bf16 weights and gradients on a noisy matrix
# quadratic, next to the exact run; :func:`refopt.optim.run` records the loss at the
# quantized weights:

target = rng.standard_normal((32, 16))


def oracle(wq, noise):
    r = wq - target
    return 0.5 * float(np.sum(r * r)), r + 0.05 * noise.standard_normal(r.shape)


fig, ax = plt.subplots(figsize=(6, 3.5))
for name, prec in (("exact", Precision()),
                   ("W, G bf16; M fp8 e4m3", Precision(weights="bf16", grads="bf16", m="fp8_e4m3fn"))):
    tr = run(oracle, muon(0.05, beta=0.9, precision=prec), np.zeros((32, 16)), 200, rng=0, record=("loss",))
    ax.semilogy(tr.steps, tr["loss"], label=name)
ax.set_xlabel("step")
ax.set_ylabel("loss")
ax.legend()
fig.tight_layout()
