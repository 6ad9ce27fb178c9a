"""
Floating-point formats: from bit fields to the relative-error model
===================================================================

Everything in the paper's analysis rests on one line: a quantizer :math:`Q` has a
bounded *relative* error, :math:`|Q(x) - x| \\le q|x|`
(:prf:ref:`paper-assumption-3-1`). This tutorial builds that line up from the bits of a
format: what the fields mean, why round-to-nearest has :math:`q = 2^{-(M+1)}` and every
other mode :math:`q = 2^{-M}`, where the model breaks (underflow, overflow), why casting
through float32 can round wrongly, and why stochastic rounding is unbiased.
"""

# %%
# Bit fields
# ----------
# A format with :math:`E` exponent bits and :math:`M` mantissa bits stores a sign, an
# exponent field :math:`f` and a mantissa field :math:`m`. For :math:`f \ge 1` the value
# is :math:`\pm 2^{f - \mathrm{bias}}(1 + m\,2^{-M})`; :math:`f = 0` holds zero and the
# *subnormals* :math:`\pm 2^{e_{\min}}\, m\, 2^{-M}`. :class:`refopt.FloatFormat`
# describes a format and :meth:`refopt.FloatFormat.decode` reads a bit pattern. Here is
# OCP ``fp8_e4m3fn`` (:cite:p:`ocp2023fp8`), whose top binade holds finite values up to 448:

import math

import matplotlib.pyplot as plt
import numpy as np

import refopt
from refopt import FloatFormat, exact, quantize

e4m3fn = refopt.format("fp8_e4m3fn")
print(repr(e4m3fn))
print(f"emin={e4m3fn.emin} emax={e4m3fn.emax} xmin={e4m3fn.xmin} "
      f"smallest subnormal={e4m3fn.xmin_subnormal} xmax={e4m3fn.xmax}")
for code in (0x01, 0x07, 0x08, 0x38, 0x39, 0x7E, 0x7F, 0x80):
    bits = f"{code:08b}"
    print(f"0x{code:02X} = {bits[0]} {bits[1:5]} {bits[5:]} -> {e4m3fn.decode(code)!r}")

# %%
# ``0x07`` is the largest subnormal, ``0x08`` the smallest normal :math:`2^{-6}`; between
# them the spacing does not change, which is what makes gradual underflow gradual.
# ``0x7F`` (all ones) is the only NaN and ``0x80`` is :math:`-0`. All presets at a
# glance (also ``refopt formats`` on the command line):

for name, fmt in refopt.list_formats().items():
    print(f"{name:13s} E={fmt.exponent_bits:2d} M={fmt.mantissa_bits:2d} "
          f"xmin={fmt.xmin:<10.4g} xmax={fmt.xmax:<12.6g} {fmt.top_binade:4s} "
          f"overflow={fmt.overflow}")

# %%
# The grid of representable values is uniform inside each binade
# :math:`[2^e, 2^{e+1})`, with spacing (the *quantum*) :math:`2^{e-M}`, and doubles from
# one binade to the next. On a log scale the eight values of a binade repeat the same
# pattern; the subnormals (grey) are evenly spaced below :math:`2^{-6}`:

values = e4m3fn.all_values()
pos = np.unique(values[np.isfinite(values) & (values > 0)])
fig, ax = plt.subplots(figsize=(8, 1.8))
sub = pos < e4m3fn.xmin
ax.vlines(pos[sub], 0, 1, color="0.6", lw=1, label="subnormal")
ax.vlines(pos[~sub], 0, 1, color="C0", lw=1, label="normal")
ax.set_xscale("log", base=2)
ax.set_yticks([])
ax.set_title("the positive values of fp8_e4m3fn")
ax.legend(loc="upper left", fontsize=8)
fig.tight_layout()

# %%
# Rounding, and the unit roundoff
# -------------------------------
# :func:`refopt.exact` rounds one number with exact integer arithmetic; this is the
# heart of it (the real code): find the binade exponent from the bits, split
# :math:`|x|` into a multiple :math:`n` of the quantum and a remainder, and let the mode
# decide whether :math:`n` goes up by one.
#
# .. literalinclude:: ../../refopt/exact.py
#    :language: python
#    :start-after: # [docs:exact-round:start]
#    :end-before: # [docs:exact-round:end]
#    :dedent:
#
# If :math:`2^e \le |x| < 2^{e+1}` is in the normal range, round-to-nearest lands at
# most half a quantum away, :math:`|Q(x) - x| \le 2^{e-M-1} \le 2^{-(M+1)}|x|`, while a
# directed, odd or stochastic rounding can be a whole quantum away: :math:`q = 2^{-M}`.
# That is :meth:`refopt.FloatFormat.unit_roundoff`. The paper states
# :prf:ref:`paper-assumption-3-1` with :math:`q = 2^{-M}`, which covers every mode. The
# plot shows the relative error over the whole range of ``bf16``:

bf16 = refopt.format("bf16")
x = np.logspace(-42, 39, 6000) * np.random.default_rng(0).uniform(1, 1.01, 6000)
fig, ax = plt.subplots(figsize=(8, 3.2))
with np.errstate(invalid="ignore"):
    for mode, color in (("toward_zero", "C1"), ("nearest_even", "C0")):
        rel = np.abs(quantize(x, bf16, mode) - x) / x
        ax.loglog(x, np.minimum(rel, 1.0), ".", ms=1.5, color=color, label=mode)
        ax.axhline(bf16.unit_roundoff(mode), color=color, lw=1, ls="--")
ax.axvspan(x[0], bf16.xmin, color="0.9", label="below xmin (underflow)")
ax.set_xlabel("x")
ax.set_ylabel("|Q(x) - x| / |x|")
ax.set_title("bf16: the relative error stays under q only in the normal range")
ax.legend(fontsize=8, loc="lower left")
fig.tight_layout()

# %%
# Below :math:`x_{\min}` the absolute error is bounded instead, and a value under half
# the smallest subnormal becomes 0 (relative error 1): the relative-error model says
# nothing there, and the paper leaves underflow and overflow out of it.
#
# Overflow follows the format's policy. Rounding first as if the exponent were
# unbounded, ``fp8_e4m3fn`` sends 464 (halfway between 448 and the would-be 480, a tie
# that goes to the even 448) to 448 but 465 to NaN; a saturating variant keeps 448:

sat = FloatFormat(4, 3, top_binade="fn", overflow="saturate")
print(quantize([448.0, 464.0, 465.0, 1e6], e4m3fn))
print(quantize([448.0, 464.0, 465.0, 1e6], sat))
print(quantize([1e6, -1e6], e4m3fn, "toward_zero"), "(toward zero never overflows)")

# %%
# The double-rounding trap
# ------------------------
# A cast through float32 rounds twice. Take :math:`x = 1 + 2^{-8} + 2^{-40}`: just
# above the midpoint between the bf16 neighbours 1 and :math:`1 + 2^{-7}`, so the correct
# result is :math:`1 + 2^{-7}`. Rounded to float32 first, :math:`x` becomes exactly the
# midpoint, which then ties to even: 1. ml_dtypes and ``torch.Tensor.to`` cast this way;
# refopt rounds once from the float64 value, like :func:`refopt.exact`.

trap = 1 + 2.0**-8 + 2.0**-40
print("exact :", exact(trap, "bf16"))
print("refopt:", float(quantize(trap, "bf16")))
try:
    import ml_dtypes

    print("ml_dtypes (float64 input):", float(np.float64(trap).astype(ml_dtypes.bfloat16)))
    mids = 1 + (2 * np.arange(1, 128) + 1) * 2.0**-8  # midpoints in [1, 2)
    probes = np.concatenate([mids * (1 + 2.0**-40), mids * (1 - 2.0**-40)])
    wrong = probes.astype(ml_dtypes.bfloat16).astype(np.float64) != quantize(probes, "bf16")
    print(f"ml_dtypes misrounds {wrong.sum()} of {probes.size} inputs next to a midpoint")
except ImportError:
    print("(ml_dtypes is not installed: its cast would give 1.0)")

# %%
# Stochastic rounding is unbiased
# -------------------------------
# Stochastic rounding returns the upper neighbour with probability equal to the
# distance ratio, so :math:`\mathbb{E}[Q(x)] = x`. refopt draws one uniform per
# element from the ``rng`` it is given (same seed, same bits). A Monte Carlo check:

x0 = 1 + 2.0**-9  # a quarter of the way from 1 to 1 + 2**-7 in bf16
draws = quantize(np.full(200_000, x0), "bf16", "stochastic", rng=0)
print(f"neighbours: {np.unique(draws)}, mean - x = {draws.mean() - x0:.2e} "
      f"(standard error {draws.std() / math.sqrt(draws.size):.1e})")

# %%
# Unbiasedness matters when many small updates accumulate. Adding :math:`10^{-3}` to a
# bf16 accumulator a thousand times: with round-to-nearest every addition to 1 is
# below half a quantum and is rounded away (stagnation); stochastic rounding follows
# the exact sum on average.

steps, inc = 1000, 1e-3
rng = np.random.default_rng(1)
nearest, stochastic = np.empty(steps + 1), np.empty((steps + 1, 20))
nearest[0], stochastic[0] = 1.0, 1.0
for t in range(steps):
    nearest[t + 1] = quantize(nearest[t] + inc, "bf16")
    stochastic[t + 1] = quantize(stochastic[t] + inc, "bf16", "stochastic", rng=rng)
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(1 + inc * np.arange(steps + 1), "k--", lw=1, label="exact")
ax.plot(nearest, color="C0", label="nearest_even")
ax.plot(stochastic, color="C1", lw=0.5, alpha=0.5)
ax.plot(stochastic.mean(axis=1), color="C1", label="stochastic (20 runs, mean bold)")
ax.set_xlabel("additions of 1e-3")
ax.set_ylabel("bf16 accumulator")
ax.legend(fontsize=8)
fig.tight_layout()
