"""
Reading the bounds: term tables, orders in T, where M enters, mantissa budgets
==============================================================================

:mod:`refopt.theory` evaluates every bound of the theory pages as a table of named terms.
This tutorial reads those tables: which term dominates, how each term scales with the
horizon :math:`T` under the paper's schedule, where the mantissa length :math:`M` enters,
and how many mantissa bits each component needs (:doc:`../theory/budget`). All bounds
here are refopt's own (:prf:ref:`refopt-theorem-adam-quantized`,
:prf:ref:`refopt-theorem-muon-quantized`) or Défossez et al.'s
(:prf:ref:`defossez-adam-momentum`).
"""

# %%
# A term table
# ------------
# At :math:`q = 0` refopt's quantized Adam bound is Défossez et al.'s Theorem 4, bit for
# bit. With bf16 weights and moments and an fp16 second moment, new terms appear; the
# table shows each term's share of the total.

import matplotlib.pyplot as plt
import numpy as np

from refopt.formats import FloatFormat
from refopt.theory import (
    adam_bound,
    component_errors,
    defossez_adam_momentum,
    largest_horizon,
    mantissa_budget,
    muon_bound,
    paper_schedule,
)

T = 10_000
s = paper_schedule("adam", T)  # alpha = 1/sqrt(T), b2 = 1 - 1/T
problem = dict(eps=1e-8, d=10, R=1.0, L=1.0, delta=1.0)
exact = adam_bound(T, s["alpha"], 0.9, s["b2"], **problem)
print("equal to Défossez Theorem 4:",
      exact.value == defossez_adam_momentum(T, s["alpha"], 0.9, s["b2"], **problem).value)
q = component_errors({"W": "bf16", "G": "bf16", "M": "bf16", "V": "fp16"})
print(adam_bound(T, s["alpha"], 0.9, s["b2"], **problem, x0_norm=1.0,
                 **{f"q_{c}": v for c, v in q.items()}))

# %%
# The weight term dominates. Its size comes from the worst-case weight bound
# :math:`B_W` of :prf:ref:`refopt-lemma-bounded-update`, which grows like :math:`T`. If
# the weights are known to stay bounded (here :math:`\|x\|_2 \le 10`), say so:

print(adam_bound(T, s["alpha"], 0.9, s["b2"], **problem, weight_norm=10.0,
                 **{f"q_{c}": v for c, v in q.items()}).terms["Q_W: gradient at Q_W(x)"])

# %%
# Orders in T
# -----------
# Under the paper's schedule the full-precision bound decays like
# :math:`\ln T/\sqrt T`. With the paper's error orders (:math:`q_G, q_M = 1/T`,
# :math:`q_W, q_V = 1/T^2`) the quantized bound follows it; with a fixed precision
# (every component at :math:`q = 2^{-24}`, fp32-like) the floors grow like
# :math:`\sqrt T` and take over.

Ts = np.logspace(3, 9, 13).astype(int)


def adam_at(T, q):
    s = paper_schedule("adam", T)
    return adam_bound(T, s["alpha"], 0.9, s["b2"], **problem, x0_norm=1.0, **q).value


full = [adam_at(t, {}) for t in Ts]
orders = [adam_at(t, dict(q_G=1 / t, q_M=1 / t, q_W=t**-2.0, q_V=t**-2.0)) for t in Ts]
fixed = [adam_at(t, {f"q_{c}": 2.0**-24 for c in "GMWV"}) for t in Ts]
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(Ts, full, "k-", label="full precision (Défossez Thm 4)")
ax.loglog(Ts, orders, "C0--", label="paper's orders q = 1/T, 1/T^2")
ax.loglog(Ts, fixed, "C3-", label="fixed q = 2^-24")
ax.set_xlabel("horizon T")
ax.set_ylabel("bound on E||grad F||^2")
ax.legend()
fig.tight_layout()

# %%
# Muon and the factor of Theorem 4.6
# ----------------------------------
# refopt's Muon bound shows the factor :math:`q_M\beta/(1-\beta(1+q_M))` of the paper's
# Theorem 4.6 as its own term. With :math:`1-\beta = 2T^{-1/2}` and
# :math:`q_M = T^{-1/2}` the factor tends to 1 and that term stops decreasing
# (:prf:ref:`refopt-theorem-muon-orders`); :math:`q_M = T^{-3/4}` restores the
# :math:`T^{-1/4}` rate.

for t in (10**4, 10**6, 10**8):
    sm = paper_schedule("muon", t, c_beta=2.0)
    crit = muon_bound(t, sm["eta"], sm["beta"], 10, 1.0, 1.0, 1.0, 1.0, q_M=t**-0.5)
    fine = muon_bound(t, sm["eta"], sm["beta"], 10, 1.0, 1.0, 1.0, 1.0, q_M=t**-0.75)
    print(f"T = {t:>9}: q_M = T^-1/2 -> {crit.value:7.3f} "
          f"(factor {crit.extra['factor q_M b/(1-b(1+q_M))']:.3f}, dominant: {crit.dominant()});"
          f"  q_M = T^-3/4 -> {fine.value:.3f}")

# %%
# Where M enters
# --------------
# A component stored with an :math:`M`-bit mantissa has relative error
# :math:`q = 2^{-(M+1)}` under round to nearest and :math:`2^{-M}` under stochastic
# rounding (:meth:`refopt.formats.FloatFormat.unit_roundoff`). Sweeping :math:`M` for the
# second moment alone shows the bound approaching full precision as :math:`M` grows:

Ms = np.arange(2, 30)
excess = [adam_bound(T, s["alpha"], 0.9, s["b2"], **problem,
                     q_V=FloatFormat.mantissa_only(int(m)).unit_roundoff()).value / exact.value - 1
          for m in Ms]
fig, ax = plt.subplots(figsize=(6, 4))
ax.semilogy(Ms, excess, "o-")
ax.axhline(0.1 / 4, color="k", ls=":", label="budget share rho/4 = 0.025")
ax.set_xlabel("mantissa bits M of the second moment")
ax.set_ylabel("relative excess over full precision")
ax.legend()
fig.tight_layout()

# %%
# Mantissa budgets for T = 10^3 ... 10^6
# --------------------------------------
# The least number of bits per component that keeps refopt's bound within 10% of full
# precision, and the preset formats meeting it (exponent range ignored, as in the
# paper's Assumption 3.1):

for t in (10**3, 10**4, 10**5, 10**6):
    print(mantissa_budget("adam", t))
print(mantissa_budget("muon", 10**6))

# %%
# The budgets grow like :math:`\log_2 T`, the second moment needs more bits than the
# first, and Adam's weights need the most because of the worst-case weight growth. These
# are worst-case guarantees: training in bf16 usually works far beyond the horizons these
# bounds certify.
print("largest T certified for fp32 weights and second moment, bf16 gradient and momentum:",
      largest_horizon("adam", {"W": "fp32", "G": "bf16", "M": "bf16", "V": "fp32"}))
