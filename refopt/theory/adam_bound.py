"""refopt's convergence bound for quantized Adam (weighted-sum analysed form).

The method (:prf:ref:`refopt-algorithm-adam-analysed`), for :math:`n = 1, \\dots, N`,
coordinate-wise, with :math:`m_0 = v_0 = 0`:

.. math::

   \\hat g_n = Q_G(\\nabla f_n(Q_W(x_{n-1}))),\\quad
   m_n = Q_M(\\beta_1 m_{n-1} + \\hat g_n),\\quad
   v_n = Q_V(\\beta_2 v_{n-1} + \\hat g_n^2),\\quad
   x_n = x_{n-1} - \\alpha_n \\frac{m_n}{\\sqrt{\\epsilon + v_n}},

with :math:`\\alpha_n = \\alpha(1-\\beta_1)\\sqrt{\\sum_{j<n}\\beta_2^j}` and every
quantizer satisfying :math:`|Q_c(x) - x| \\le q_c |x|`
(:prf:ref:`paper-assumption-3-1`), under the Adam part of :prf:ref:`paper-assumptions-4`
in Défossez's form. The bound and its proof are refopt's own
(:prf:ref:`refopt-theorem-adam-quantized`); at :math:`q = 0` it is exactly Défossez's
Theorem 4 (TMLR numbering; the :math:`0 \\le \\beta_1 < \\beta_2 < 1` theorem that some
sources call "Theorem 2"), and their Theorem 2 (Adam, :math:`\\beta_1 = 0`) when
:math:`\\beta_1 = 0`.
"""

from __future__ import annotations

import math

from refopt.theory.defossez import (
    adam_terms,
    geometric_sum,
    log_factor,
    n_condition,
    problem_inputs,
    r_condition,
)
from refopt.theory.result import BoundResult, check_q, check_real

__all__ = ["adam_bound", "adam_update_bound", "adam_weight_norm_bound"]


def adam_update_bound(b1: float, q_M: float = 0.0, q_V: float = 0.0, b2: float = 1.0) -> float:
    """Largest possible :math:`|u_{n,i}| = |m_{n,i}|/\\sqrt{\\epsilon + v_{n,i}}`.

    Parameters
    ----------
    b1, b2 : float
        Momentum parameters (:math:`\\beta_2` enters through :math:`\\beta_2(1-q_V)`).
    q_M, q_V : float, default 0
        Relative errors of the moment quantizers.

    Returns
    -------
    float
        :math:`(1+q_M)/(\\sqrt{1-q_V}(1-\\kappa))` with
        :math:`\\kappa = \\beta_1(1+q_M)/\\sqrt{\\beta_2(1-q_V)}`; ``inf`` when
        :math:`\\kappa \\ge 1`.

    Notes
    -----
    Provenance: refopt, :prf:ref:`refopt-lemma-bounded-update`.
    """
    kappa = b1 * (1.0 + q_M) / math.sqrt(b2 * (1.0 - q_V))  # [prf:refopt-lemma-bounded-update]
    if kappa >= 1.0:
        return math.inf
    return (1.0 + q_M) / (math.sqrt(1.0 - q_V) * (1.0 - kappa))


def adam_weight_norm_bound(N: int, alpha: float, b1: float, b2: float, d: int,
                           x0_norm: float, q_M: float = 0.0, q_V: float = 0.0) -> float:
    """Worst-case bound :math:`B_W` on :math:`\\|x_n\\|_2`, :math:`n < N`.

    Parameters
    ----------
    N, alpha, b1, b2, d : int or float
        Iterations, step size, momentum parameters and dimension.
    x0_norm : float
        :math:`\\|x_0\\|_2`.
    q_M, q_V : float, default 0
        Relative errors of the moment quantizers.

    Returns
    -------
    float
        :math:`\\|x_0\\|_2 + \\sqrt d\\, u_{\\max} N \\alpha(1-\\beta_1)/\\sqrt{1-\\beta_2}`
        with :math:`u_{\\max}` from :func:`refopt.theory.adam_update_bound`.

    Notes
    -----
    Provenance: refopt, :prf:ref:`refopt-lemma-bounded-update`. It grows linearly in
    :math:`N\\alpha/\\sqrt{1-\\beta_2}`, i.e. like :math:`T` under the paper's schedule;
    this worst case is what makes the bound ask :math:`q_W = O(T^{-2})`.
    """
    alpha_bar = alpha * (1.0 - b1) / math.sqrt(1.0 - b2)
    return x0_norm + math.sqrt(d) * adam_update_bound(b1, q_M, q_V, b2) * N * alpha_bar


def adam_bound(N: object, alpha: object, b1: object, b2: object, eps: object, d: object,
               R: object, L: object, delta: object, *, q_G: object = 0.0, q_W: object = 0.0,
               q_M: object = 0.0, q_V: object = 0.0, weight_norm: object = None,
               x0_norm: object = None) -> BoundResult:
    """refopt's bound on the gradient norm of quantized Adam.

    Parameters
    ----------
    N : int
        Number of iterations :math:`N \\ge 1` (integral floats such as ``1e4`` accepted).
    alpha : float
        Step size :math:`\\alpha > 0` (the method uses :math:`\\alpha_n` above).
    b1 : float
        :math:`\\beta_1 \\in [0, 1)`.
    b2 : float
        :math:`\\beta_2 \\in (0, 1)`.
    eps : float
        :math:`\\epsilon > 0`.
    d : int
        Dimension.
    R : float
        :math:`\\|\\nabla f(x)\\|_\\infty \\le R - \\sqrt\\epsilon` almost surely at every
        point, quantized points included.
    L : float
        :math:`\\ell_2` smoothness constant of :math:`F`.
    delta : float
        :math:`F(x_0) - F_*`.
    q_G, q_W, q_M, q_V : float, default 0
        Relative errors (unit roundoffs) of the four quantizers, each in [0, 1). For an
        ``M``-bit mantissa use ``FloatFormat.mantissa_only(M).unit_roundoff(rounding)``
        (:meth:`refopt.formats.FloatFormat.unit_roundoff`).
    weight_norm : float, optional
        :math:`B_W \\ge \\|x_n\\|_2` for :math:`n < N`. Only used when ``q_W > 0``;
        when omitted it is derived from ``x0_norm`` by
        :func:`refopt.theory.adam_weight_norm_bound` (worst case).
    x0_norm : float, optional
        :math:`\\|x_0\\|_2`, needed when ``q_W > 0`` and ``weight_norm`` is omitted.

    Returns
    -------
    BoundResult
        ``value`` bounds :math:`\\mathbb{E}\\|\\nabla F(x_\\tau)\\|_2^2` at the master
        weights, :math:`P[\\tau = j] \\propto 1-\\beta_1^{N-j}`. The term
        ``"master weights (Minkowski)"`` converts the bound at the quantized weights
        (the sum of the other terms) to the master weights; it is 0 when ``q_W = 0``.
        ``inf`` when a condition fails.

    Raises
    ------
    TypeError, ValueError
        For bad inputs, or ``q_W > 0`` with neither ``weight_norm`` nor ``x0_norm``.

    Notes
    -----
    Provenance: refopt, :prf:ref:`refopt-theorem-adam-quantized` (proof on the page
    "refopt's quantized Adam bound"; hypotheses in :prf:ref:`refopt-def-adam-setting`;
    orders in :math:`T` in :prf:ref:`refopt-theorem-adam-orders`). It needs the paper's condition
    :math:`\\beta_1^2(1+q_M)^2 < \\beta_2(1-q_V)` (:prf:ref:`paper-theorem-4-5`), which
    is implied by refopt's stronger :math:`a_q = \\beta_1(1+q_M)/(\\beta_2(1-q_V)) < 1`,
    and :math:`\\hat a < 1` (see the conditions of the result). At
    :math:`q_G = q_W = q_M = q_V = 0` the value equals
    :func:`refopt.theory.defossez_adam_momentum` (``b1 > 0``) or
    :func:`refopt.theory.defossez_adam` (``b1 = 0``) exactly.
    """
    n, a, e, dd, r, lip, dl = problem_inputs(N, alpha, eps, d, R, L, delta)
    beta1 = check_real("b1", b1, lo=0.0, hi=1.0, hi_open=True)
    beta2 = check_real("b2", b2, lo=0.0, lo_open=True, hi=1.0, hi_open=True)
    qg, qw, qm, qv = (check_q(k, v) for k, v in
                      (("q_G", q_G), ("q_W", q_W), ("q_M", q_M), ("q_V", q_V)))
    inputs = {"N": n, "alpha": a, "b1": beta1, "b2": beta2, "eps": e, "d": dd, "R": r,
              "L": lip, "delta": dl, "q_G": qg, "q_W": qw, "q_M": qm, "q_V": qv}

    b2t = beta2 * (1.0 - qv)                     # beta2~ : lower sandwich ratio
    b2h = beta2 * (1.0 + qv)                     # beta2^ : upper sandwich ratio
    r_v = (1.0 + qv) / (1.0 - qv)
    a_q = beta1 * (1.0 + qm) / b2t               # plays beta1/beta2 in the quadratic term
    a_hat = beta1 * max(math.sqrt(max(1.0, b2h)), r_v**2) / b2t   # ... in the adaptivity term
    kappa = beta1 * (1.0 + qm) / math.sqrt(b2t)  # paper's condition <=> kappa < 1
    conds = {
        "Theorem 4.5 condition (paper)": (
            beta1**2 * (1.0 + qm) ** 2 < b2t,
            f"b1^2 (1+q_M)^2 = {beta1**2 * (1 + qm) ** 2:.6g} < b2 (1-q_V) = {b2t:.6g}"),
        "a_q < 1 (refopt)": (a_q < 1.0, f"a_q = b1 (1+q_M)/(b2 (1-q_V)) = {a_q:.6g}"),
        "a_hat < 1 (refopt)": (
            a_hat < 1.0,
            f"a_hat = b1 max(sqrt(max(1, b2(1+q_V))), r_V^2)/(b2(1-q_V)) = {a_hat:.6g}"),
        "N > b1/(1-b1)": n_condition(n, beta1),
        "R >= sqrt(eps)": r_condition(r, e),
    }
    b_w = 0.0
    if qw > 0.0:
        if weight_norm is not None:
            b_w = check_real("weight_norm", weight_norm, lo=0.0)
        elif x0_norm is not None:
            x0 = check_real("x0_norm", x0_norm, lo=0.0)
            b_w = adam_weight_norm_bound(n, a, beta1, beta2, dd, x0, qm, qv)
        else:
            raise ValueError("q_W > 0 needs weight_norm (a bound on ||x_n||_2) or x0_norm")
    extra = {"a_q": a_q, "a_hat": a_hat, "kappa": kappa, "B_W": b_w}
    if not all(ok for ok, _ in conds.values()):
        return BoundResult.build("refopt quantized Adam: E||grad F(x_tau)||^2", None, conds,
                                 "refopt", "refopt-theorem-adam-quantized", inputs, extra)

    c_hi = (1.0 + qv) * (1.0 + qg) ** 2          # [prf:refopt-lemma-moment-sandwich]
    c_lo = (1.0 - qv) * (1.0 - qg) ** 2
    lam = log_factor(r, e, n, beta2, c_hi=c_hi, q_V=qv)  # [prf:refopt-lemma-sum-of-ratios]
    log_b2 = math.log(beta2)
    phi = math.sqrt(geometric_sum(log_b2, n) / geometric_sum(log_b2 + math.log1p(qv), n))
    if phi == 0.0 or math.isinf(lam):
        conds["(b2 (1+q_V))^N finite (refopt)"] = (
            False, "the second-moment upper bound overflows: the bound is vacuous")
        return BoundResult.build("refopt quantized Adam: E||grad F(x_tau)||^2", None, conds,
                                 "refopt", "refopt-theorem-adam-quantized", inputs, extra)
    # The Defossez-form terms with beta1/beta2 replaced by a_q and a_hat ...
    terms = adam_terms(N=n, alpha=a, b1=beta1, b2=beta2, d=dd, R=r, L=lip, delta=dl, lam=lam,
                       a_quad=a_q, a_adapt=a_hat)
    # ... times factors that are exactly 1 at q = 0.   [prf:refopt-theorem-adam-quantized]
    norm = math.sqrt(c_hi) / phi                 # normalisation of the descent sum
    # [prf:refopt-lemma-sum-of-updates]
    f_u = (1.0 + qm) ** 2 * (1.0 - beta1) / (1.0 - beta1 * (1.0 + qm))
    # [prf:refopt-lemma-descent-direction] (i)-(iii), summed with the series of
    # [prf:refopt-lemma-series]
    f_adapt = max(math.sqrt(c_hi) / (1.0 - qg) ** 2, (1.0 + qv) / math.sqrt(c_lo))
    terms["initial gap"] *= norm
    terms["smoothness (alpha d R L)"] *= norm * f_u / (1.0 - qv)
    terms["adaptivity (d R^2)"] *= norm * f_adapt / (1.0 - qv)
    if beta1 > 0.0:
        terms["momentum drift (alpha^2 d L^2)"] *= norm * f_u / (1.0 - qv)
    # Floors: per-step error bounds times sum(alpha_n) <= N alpha_bar, normalised.
    n_tilde = n - beta1 / (1.0 - beta1)
    scale = 2.0 * r * norm * (1.0 - beta1) * n / (n_tilde * math.sqrt(1.0 - beta2))
    kappa0 = beta1 / math.sqrt(b2t)
    self_norm = math.sqrt(1.0 - qv) * (1.0 - qg)  # [prf:refopt-lemma-bounded-update]
    # [prf:refopt-lemma-momentum-rounding]
    rho = ((qg + qm + qg * qm) * (1.0 - kappa0) + kappa0 * qm) / (
        (1.0 - kappa) * (1.0 - kappa0) * self_norm)
    theta = (2.0 * qv / (1.0 - qv)) / ((1.0 - kappa0 * r_v) * (1.0 - kappa0) * self_norm)
    terms["Q_G, Q_M: momentum error"] = scale * dd * r * rho
    terms["Q_V: second-moment drift"] = scale * dd * r * theta
    c_w = lip * qw * b_w                         # [prf:refopt-lemma-quantized-weights]
    terms["Q_W: gradient at Q_W(x)"] = scale * math.sqrt(dd) * c_w / (self_norm * (1.0 - kappa0))
    at_quantized = math.fsum(terms.values())
    terms["master weights (Minkowski)"] = 2.0 * c_w * math.sqrt(at_quantized) + c_w**2
    extra.update({"Lambda": lam, "phi": phi, "N_tilde": n_tilde,
                  "bound at Q_W(x_tau)": at_quantized})
    return BoundResult.build("refopt quantized Adam: E||grad F(x_tau)||^2", terms, conds,
                             "refopt", "refopt-theorem-adam-quantized", inputs, extra)
