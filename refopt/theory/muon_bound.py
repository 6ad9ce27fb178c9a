"""refopt's convergence bound for Muon with exact orthogonalization, quantized and not.

The method (:prf:ref:`refopt-algorithm-muon`), for :math:`t = 0, \\dots, T-1`
with :math:`M_{-1} = 0`, on a matrix variable with :math:`\\min(p, q) \\le r`:

.. math::

   \\hat G_t = Q_G(\\nabla f(Q_W(W_t); \\xi_t)),\\quad
   M_t = Q_M(\\beta M_{t-1} + (1-\\beta)\\hat G_t),\\quad
   W_{t+1} = W_t - \\eta\\, \\mathrm{msign}(M_t),

where :math:`\\mathrm{msign}(M) = U V^\\top` from the thin SVD of :math:`M` (rank
aware, 0 for :math:`M = 0`). The analysis follows the usual full-precision argument of
:cite:t:`shen2025muon` and :cite:t:`li2025muon` (nuclear-norm descent plus a
momentum-error recursion); the statement, constants and proof are refopt's own
(:prf:ref:`refopt-theorem-muon-quantized`).
"""

from __future__ import annotations

import math

from refopt.theory.paper import muon_factor
from refopt.theory.result import BoundResult, check_count, check_q, check_real

__all__ = ["muon_bound"]


def muon_bound(T: object, eta: object, beta: object, rank: object, L: object, sigma: object,
               delta: object, grad_norm: object, *, grad0: object = None, q_G: object = 0.0,
               q_W: object = 0.0, q_M: object = 0.0, weight_norm: object = None,
               w0_norm: object = None) -> BoundResult:
    """refopt's bound on the average nuclear gradient norm of (quantized) Muon.

    Parameters
    ----------
    T : int
        Number of iterations :math:`T \\ge 1`.
    eta : float
        Step size :math:`\\eta > 0`.
    beta : float
        Momentum :math:`\\beta \\in [0, 1)` (EMA form).
    rank : int
        :math:`r \\ge \\min(p, q)` for the :math:`p \\times q` variable.
    L : float
        Frobenius smoothness constant of :math:`F`.
    sigma : float
        :math:`\\mathbb{E}\\|\\nabla f(W;\\xi) - \\nabla F(W)\\|_F^2 \\le \\sigma^2` at every
        point (quantized points included).
    delta : float
        :math:`F(W_0) - F_*`.
    grad_norm : float
        :math:`G \\ge \\|\\nabla F(W)\\|_F` at every point; enters only through the
        quantization terms and the default of ``grad0``.
    grad0 : float, optional
        :math:`\\|\\nabla F(W_0)\\|_F` (default ``grad_norm``).
    q_G, q_W, q_M : float, default 0
        Relative errors of the gradient, weight and momentum quantizers, in [0, 1).
    weight_norm : float, optional
        :math:`B_W \\ge \\|W_t\\|_F` for :math:`t < T`; used when ``q_W > 0``. Default:
        :math:`\\|W_0\\|_F + \\eta T \\sqrt r` from ``w0_norm``.
    w0_norm : float, optional
        :math:`\\|W_0\\|_F`.

    Returns
    -------
    BoundResult
        ``value`` bounds :math:`\\frac1T\\sum_{t<T}\\mathbb{E}\\|\\nabla F(W_t)\\|_*`
        (a norm, not a squared norm); ``inf`` when :math:`\\beta(1+q_M) \\ge 1`. At
        :math:`q = 0` it is refopt's full-precision Muon bound
        (:prf:ref:`refopt-theorem-muon-fp`).

    Raises
    ------
    TypeError, ValueError
        For bad inputs, or ``q_W > 0`` with neither ``weight_norm`` nor ``w0_norm``.

    Notes
    -----
    Provenance: refopt, :prf:ref:`refopt-theorem-muon-quantized` (hypotheses in
    :prf:ref:`refopt-def-muon-setting`; orders in :math:`T` and the critic's case in
    :prf:ref:`refopt-theorem-muon-orders`). With
    :math:`\\bar G = G + \\sigma` and :math:`\\Phi = q_M\\beta/(1-\\beta(1+q_M))`:

    .. math::

       \\frac1T\\sum_t \\mathbb{E}\\|\\nabla F(W_t)\\|_* \\le
       \\frac{F(W_0)-F_*}{\\eta T} + \\frac{L\\eta r}{2}
       + 2\\sqrt r\\Big(\\frac{\\beta G_0}{(1-\\beta)T} + \\frac{L\\eta\\sqrt r\\,\\beta}{1-\\beta}
       + \\sigma\\sqrt{\\tfrac{1-\\beta}{1+\\beta}} + L q_W B_W + q_G \\bar G
       + q_M(1+q_G)\\bar G + \\Phi (1+q_M)(1+q_G)\\bar G\\Big).
    """
    n = check_count("T", T)
    e = check_real("eta", eta, lo=0.0, lo_open=True)
    b = check_real("beta", beta, lo=0.0, hi=1.0, hi_open=True)
    r = check_count("rank", rank)
    lip = check_real("L", L, lo=0.0)
    sig = check_real("sigma", sigma, lo=0.0)
    dl = check_real("delta", delta, lo=0.0)
    g = check_real("grad_norm", grad_norm, lo=0.0)
    g0 = g if grad0 is None else check_real("grad0", grad0, lo=0.0)
    qg, qw, qm = (check_q(k, v) for k, v in (("q_G", q_G), ("q_W", q_W), ("q_M", q_M)))
    inputs = {"T": n, "eta": e, "beta": b, "rank": r, "L": lip, "sigma": sig, "delta": dl,
              "grad_norm": g, "grad0": g0, "q_G": qg, "q_W": qw, "q_M": qm}
    b_w = 0.0
    if qw > 0.0:
        if weight_norm is not None:
            b_w = check_real("weight_norm", weight_norm, lo=0.0)
        elif w0_norm is not None:
            b_w = check_real("w0_norm", w0_norm, lo=0.0) + e * n * math.sqrt(r)
        else:
            raise ValueError("q_W > 0 needs weight_norm (a bound on ||W_t||_F) or w0_norm")
    conds = {"beta (1+q_M) < 1 (Theorem 4.6 factor finite)": (
        b * (1.0 + qm) < 1.0, f"beta (1+q_M) = {b * (1.0 + qm):.6g}")}
    extra = {"B_W": b_w}
    if not conds["beta (1+q_M) < 1 (Theorem 4.6 factor finite)"][0]:
        return BoundResult.build("refopt quantized Muon: (1/T) sum E||grad F(W_t)||_*", None,
                                 conds, "refopt", "refopt-theorem-muon-quantized", inputs, extra)
    two_sr = 2.0 * math.sqrt(r)
    g_bar = g + sig
    phi = muon_factor(b, qm)                     # [prf:paper-theorem-4-6]
    terms = {   # [prf:refopt-lemma-muon-descent]
        "initial gap": dl / (e * n),
        "curvature (L eta r)": lip * e * r / 2.0,
        # [prf:refopt-lemma-muon-momentum-error]
        "momentum start": two_sr * b * g0 / ((1.0 - b) * n),
        "momentum drift (L eta)": two_sr * lip * e * math.sqrt(r) * b / (1.0 - b),
        "noise (sigma)": two_sr * sig * math.sqrt((1.0 - b) / (1.0 + b)),
        "Q_W: gradient at Q_W(W)": two_sr * lip * qw * b_w,
        "Q_G: gradient rounding": two_sr * qg * g_bar,
        "Q_M: fresh rounding": two_sr * qm * (1.0 + qg) * g_bar,
        "Q_M: accumulated, q_M b/(1-b(1+q_M))": two_sr * phi * (1.0 + qm) * (1.0 + qg) * g_bar,
    }
    extra["factor q_M b/(1-b(1+q_M))"] = phi
    return BoundResult.build("refopt quantized Muon: (1/T) sum E||grad F(W_t)||_*", terms, conds,
                             "refopt", "refopt-theorem-muon-quantized", inputs, extra)
