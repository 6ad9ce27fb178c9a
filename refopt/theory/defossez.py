"""Défossez, Bottou, Bach and Usunier (TMLR 2022): the full-precision bounds, exactly.

Numbering follows the published TMLR version (OpenReview ZPQhzTSWA7; titles and hypotheses
checked against its text): Theorem 1 is Adagrad without momentum, Theorem 2 Adam without
momentum, Theorem 3 Adagrad with heavy-ball momentum, Theorem 4 Adam with heavy-ball
momentum. Earlier arXiv versions may number differently, and some secondary sources call
the two Adam theorems "Theorem 1 (b1 = 0)" and "Theorem 2 (0 <= b1 < b2 < 1)":

=============================================  ===========  ============================
function                                       TMLR number  also called
=============================================  ===========  ============================
:func:`~refopt.theory.defossez_adagrad`        Theorem 1    the Adagrad bound
:func:`~refopt.theory.defossez_adam`           Theorem 2    Theorem 1 (b1 = 0)
:func:`~refopt.theory.defossez_adam_momentum`  Theorem 4    Theorem 2 (0 <= b1 < b2 < 1)
=============================================  ===========  ============================

Theorem 3 is left out (refopt has its constants from no second source). All three bound
:math:`\\mathbb{E}\\|\\nabla F(x_\\tau)\\|_2^2` for the iterate :math:`x_\\tau` drawn with
:math:`P[\\tau = j] \\propto 1 - \\beta_1^{N-j}`, :math:`j = 0, \\dots, N-1` (uniform when
:math:`\\beta_1 = 0`).
"""

from __future__ import annotations

import math

from refopt.theory.result import BoundResult, check_count, check_real

__all__ = ["defossez_adagrad", "defossez_adam", "defossez_adam_momentum"]

_REF = "Défossez 2022"


def problem_inputs(N: object, alpha: object, eps: object, d: object, R: object,
                   L: object, delta: object) -> tuple[int, float, float, int, float, float, float]:
    """Check the inputs every Adam/Adagrad bound shares; return them as (int or float)."""
    return (check_count("N", N), check_real("alpha", alpha, lo=0.0, lo_open=True),
            check_real("eps", eps, lo=0.0, lo_open=True), check_count("d", d),
            check_real("R", R, lo=0.0, lo_open=True), check_real("L", L, lo=0.0),
            check_real("delta", delta, lo=0.0))


def r_condition(R: float, eps: float) -> tuple[bool, str]:
    """The condition R >= sqrt(eps) of the gradient assumption, with its reason."""
    ok = R >= math.sqrt(eps)
    return ok, (f"R = {R:g} >= sqrt(eps) = {math.sqrt(eps):g}: the gradient bound "
                "||grad f||_inf <= R - sqrt(eps) is satisfiable")


def n_condition(N: int, b1: float) -> tuple[bool, str]:
    """The condition N > b1/(1-b1) of the momentum bounds (N~ > 0), with its reason."""
    return N > b1 / (1.0 - b1), f"N = {N}, b1/(1-b1) = {b1 / (1.0 - b1):.4g}"


def geometric_sum(log_b: float, n: int) -> float:
    """Return :math:`\\sum_{l=0}^{n-1} b^l` from :math:`\\log b`, accurately near b = 1.

    Parameters
    ----------
    log_b : float
        :math:`\\log b` (any sign).
    n : int
        Number of terms.

    Returns
    -------
    float
        :math:`(b^n - 1)/(b - 1)`, or ``n`` when :math:`b = 1`.
    """
    if log_b == 0.0:
        return float(n)
    if n * log_b > 700.0:
        return math.inf
    return math.expm1(n * log_b) / math.expm1(log_b)


def log_factor(R: float, eps: float, N: int, b2: float, *, c_hi: float = 1.0,
               q_V: float = 0.0) -> float:
    """The factor :math:`\\Lambda` of the Adam bounds (Défossez's form at ``q_V = 0``).

    Parameters
    ----------
    R, eps : float
        Gradient bound and the :math:`\\epsilon` of the update.
    N : int
        Number of iterations.
    b2 : float
        :math:`\\beta_2`.
    c_hi : float, default 1
        :math:`(1 + q_V)(1 + q_G)^2`, the upper sandwich factor of the second moment.
    q_V : float, default 0
        Relative error of the second-moment quantizer.

    Returns
    -------
    float
        :math:`\\ln(1 + c_{hi} R^2 S / \\epsilon) - N \\ln(\\beta_2 (1 - q_V))` with
        :math:`S = 1/(1 - \\beta_2(1+q_V))` when that is below 1 and the finite sum
        :math:`\\sum_{l<N} (\\beta_2 (1+q_V))^l` otherwise. At :math:`q = 0` this is
        :math:`\\ln(1 + R^2/((1-\\beta_2)\\epsilon)) - N \\ln \\beta_2`
        (:prf:ref:`refopt-lemma-sum-of-ratios`).
    """
    b2hat = b2 * (1.0 + q_V)
    if b2hat < 1.0:
        ratio = R**2 * c_hi / ((1.0 - b2hat) * eps)
    else:
        ratio = R**2 * c_hi * geometric_sum(math.log(b2) + math.log1p(q_V), N) / eps
    return math.log1p(ratio) - N * (math.log(b2) + math.log1p(-q_V))


def adam_terms(*, N: int, alpha: float, b1: float, b2: float, d: int, R: float, L: float,
               delta: float, lam: float, a_quad: float, a_adapt: float) -> dict[str, float]:
    """The four terms of Défossez's Adam bounds, in the form refopt's bound reuses.

    Parameters
    ----------
    N, alpha, b1, b2, d, R, L, delta : int or float
        Iterations, step size, momentum parameters, dimension, gradient bound,
        smoothness and :math:`F(x_0) - F_*`.
    lam : float
        The factor :math:`\\Lambda` from :func:`refopt.theory.defossez.log_factor`.
    a_quad, a_adapt : float
        The ratio playing the role of :math:`\\beta_1/\\beta_2` in the smoothness and
        drift terms and in the adaptivity term (both :math:`\\beta_1/\\beta_2` for
        Défossez's theorems).

    Returns
    -------
    dict of str to float
        ``"initial gap"``, ``"smoothness (alpha d R L)"``, ``"adaptivity (d R^2)"`` and,
        for :math:`\\beta_1 > 0`, ``"momentum drift (alpha^2 d L^2)"``.

    Notes
    -----
    With :math:`\\tilde N = N - \\beta_1/(1-\\beta_1)` the terms are
    :math:`2R(F(x_0)-F_*)/(\\alpha \\tilde N)` and :math:`E_k \\Lambda / \\tilde N` for
    the three constants :math:`E_k` of Défossez's :math:`E`; for :math:`\\beta_1 = 0`
    the adaptivity constant is Theorem 2's :math:`4 d R^2/\\sqrt{1-\\beta_2}` instead of
    Theorem 4's :math:`12 d R^2 \\ldots`.
    """
    n_tilde = N - b1 / (1.0 - b1)
    per = lam / n_tilde
    terms = {"initial gap": 2.0 * R * delta / (alpha * n_tilde)}
    terms["smoothness (alpha d R L)"] = (
        alpha * d * R * L * (1.0 - b1) / ((1.0 - a_quad) * (1.0 - b2)) * per)
    if b1 == 0.0:
        terms["adaptivity (d R^2)"] = 4.0 * d * R**2 / math.sqrt(1.0 - b2) * per
    else:
        terms["adaptivity (d R^2)"] = (
            12.0 * d * R**2 * math.sqrt(1.0 - b1)
            / ((1.0 - a_adapt) ** 1.5 * math.sqrt(1.0 - b2)) * per)
        terms["momentum drift (alpha^2 d L^2)"] = (
            2.0 * alpha**2 * d * L**2 * b1 / ((1.0 - a_quad) * (1.0 - b2) ** 1.5) * per)
    return terms


def defossez_adagrad(N: object, alpha: object, eps: object, d: object, R: object,
                     L: object, delta: object) -> BoundResult:
    """Défossez et al. 2022, Theorem 1: Adagrad without momentum.

    Parameters
    ----------
    N : int
        Number of iterations (:math:`\\ge 1`; integral floats such as ``1e4`` accepted).
    alpha : float
        Constant step size :math:`\\alpha > 0`.
    eps : float
        :math:`\\epsilon > 0` inside the square root of the update.
    d : int
        Dimension.
    R : float
        Almost-sure bound with :math:`\\|\\nabla f(x)\\|_\\infty \\le R - \\sqrt{\\epsilon}`.
    L : float
        Smoothness constant of :math:`F` (:math:`\\ell_2`).
    delta : float
        :math:`F(x_0) - F_*`.

    Returns
    -------
    BoundResult
        The bound on :math:`\\mathbb{E}\\|\\nabla F(x_\\tau)\\|^2`, :math:`\\tau` uniform.

    Raises
    ------
    TypeError, ValueError
        For non-numeric, non-finite or out-of-range inputs.

    Notes
    -----
    Provenance: Défossez 2022, Theorem 1 of the TMLR version ("the Adagrad bound"),
    :prf:ref:`defossez-adagrad`.

    .. math::

       \\mathbb{E}\\|\\nabla F(x_\\tau)\\|^2 \\le \\frac{2R(F(x_0)-F_*)}{\\alpha\\sqrt N}
       + \\frac{1}{\\sqrt N}\\left(4dR^2 + \\alpha d R L\\right)
       \\ln\\left(1 + \\frac{N R^2}{\\epsilon}\\right).
    """
    n, a, e, dd, r, lip, dl = problem_inputs(N, alpha, eps, d, R, L, delta)
    logt = math.log1p(n * r**2 / e) / math.sqrt(n)
    terms = {"initial gap": 2.0 * r * dl / (a * math.sqrt(n)),
             "adaptivity (d R^2)": 4.0 * dd * r**2 * logt,
             "smoothness (alpha d R L)": a * dd * r * lip * logt}
    return BoundResult.build(
        "Défossez TMLR Theorem 1 (Adagrad): E||grad F(x_tau)||^2", terms,
        {"R >= sqrt(eps)": r_condition(r, e)}, _REF, "defossez-adagrad (TMLR Theorem 1)",
        {"N": n, "alpha": a, "eps": e, "d": dd, "R": r, "L": lip, "delta": dl})


def defossez_adam(N: object, alpha: object, b2: object, eps: object, d: object, R: object,
                  L: object, delta: object) -> BoundResult:
    """Défossez et al. 2022, Theorem 2: Adam without momentum (:math:`\\beta_1 = 0`).

    Parameters
    ----------
    N : int
        Number of iterations.
    alpha : float
        Step size; the method uses
        :math:`\\alpha_n = \\alpha \\sqrt{(1-\\beta_2^n)/(1-\\beta_2)}`.
    b2 : float
        :math:`\\beta_2 \\in (0, 1)`.
    eps, d, R, L, delta : float
        As for :func:`refopt.theory.defossez_adagrad`.

    Returns
    -------
    BoundResult
        The bound on :math:`\\mathbb{E}\\|\\nabla F(x_\\tau)\\|^2`, :math:`\\tau` uniform.

    Raises
    ------
    TypeError, ValueError
        For bad inputs (``b2`` outside (0, 1), negative constants, ``N < 1``...).

    Notes
    -----
    Provenance: Défossez 2022, Theorem 2 of the TMLR version (called "Theorem 1
    (b1 = 0)" by some secondary sources), :prf:ref:`defossez-adam`.

    .. math::

       \\mathbb{E}\\|\\nabla F(x_\\tau)\\|^2 \\le \\frac{2R(F(x_0)-F_*)}{\\alpha N}
       + E\\left(\\frac1N \\ln\\left(1 + \\frac{R^2}{(1-\\beta_2)\\epsilon}\\right)
       - \\ln \\beta_2\\right),\\quad
       E = \\frac{4dR^2}{\\sqrt{1-\\beta_2}} + \\frac{\\alpha d R L}{1-\\beta_2}.
    """
    n, a, e, dd, r, lip, dl = problem_inputs(N, alpha, eps, d, R, L, delta)
    beta2 = check_real("b2", b2, lo=0.0, lo_open=True, hi=1.0, hi_open=True)
    lam = log_factor(r, e, n, beta2)
    terms = adam_terms(N=n, alpha=a, b1=0.0, b2=beta2, d=dd, R=r, L=lip, delta=dl, lam=lam,
                       a_quad=0.0, a_adapt=0.0)
    return BoundResult.build(
        "Défossez TMLR Theorem 2 (Adam, b1 = 0): E||grad F(x_tau)||^2", terms,
        {"R >= sqrt(eps)": r_condition(r, e)}, _REF, "defossez-adam (TMLR Theorem 2)",
        {"N": n, "alpha": a, "b2": beta2, "eps": e, "d": dd, "R": r, "L": lip, "delta": dl},
        {"Lambda": lam})


def defossez_adam_momentum(N: object, alpha: object, b1: object, b2: object, eps: object,
                           d: object, R: object, L: object, delta: object) -> BoundResult:
    """Défossez et al. 2022, Theorem 4: Adam with heavy-ball momentum.

    Parameters
    ----------
    N : int
        Number of iterations; the bound needs :math:`N > \\beta_1/(1-\\beta_1)`.
    alpha : float
        Step size; the method uses
        :math:`\\alpha_n = \\alpha(1-\\beta_1)\\sqrt{(1-\\beta_2^n)/(1-\\beta_2)}`.
    b1 : float
        :math:`\\beta_1 \\in [0, 1)`; the theorem needs :math:`\\beta_1 < \\beta_2`.
    b2 : float
        :math:`\\beta_2 \\in (0, 1)`.
    eps, d, R, L, delta : float
        As for :func:`refopt.theory.defossez_adagrad`.

    Returns
    -------
    BoundResult
        The bound on :math:`\\mathbb{E}\\|\\nabla F(x_\\tau)\\|^2`,
        :math:`P[\\tau=j]\\propto 1-\\beta_1^{N-j}`; ``inf`` if :math:`\\beta_1 \\ge \\beta_2`
        or :math:`N \\le \\beta_1/(1-\\beta_1)`.

    Raises
    ------
    TypeError, ValueError
        For bad inputs.

    Notes
    -----
    Provenance: Défossez 2022, Theorem 4 of the TMLR version (called "Theorem 2
    (0 <= b1 < b2 < 1)" by some secondary sources), :prf:ref:`defossez-adam-momentum`. With
    :math:`\\tilde N = N - \\beta_1/(1-\\beta_1)`:

    .. math::

       \\mathbb{E}\\|\\nabla F(x_\\tau)\\|^2 \\le \\frac{2R(F(x_0)-F_*)}{\\alpha\\tilde N}
       + E\\left(\\frac{1}{\\tilde N}\\ln\\left(1+\\frac{R^2}{(1-\\beta_2)\\epsilon}\\right)
       - \\frac{N}{\\tilde N}\\ln\\beta_2\\right),

       E = \\frac{\\alpha d R L (1-\\beta_1)}{(1-\\beta_1/\\beta_2)(1-\\beta_2)}
       + \\frac{12 d R^2\\sqrt{1-\\beta_1}}{(1-\\beta_1/\\beta_2)^{3/2}\\sqrt{1-\\beta_2}}
       + \\frac{2\\alpha^2 d L^2 \\beta_1}{(1-\\beta_1/\\beta_2)(1-\\beta_2)^{3/2}}.
    """
    n, a, e, dd, r, lip, dl = problem_inputs(N, alpha, eps, d, R, L, delta)
    beta1 = check_real("b1", b1, lo=0.0, hi=1.0, hi_open=True)
    beta2 = check_real("b2", b2, lo=0.0, lo_open=True, hi=1.0, hi_open=True)
    conds = {"b1 < b2": (beta1 < beta2, f"b1 = {beta1:g}, b2 = {beta2:g}"),
             "N > b1/(1-b1)": n_condition(n, beta1), "R >= sqrt(eps)": r_condition(r, e)}
    terms = None
    lam = math.nan
    if all(ok for ok, _ in conds.values()):
        lam = log_factor(r, e, n, beta2)
        terms = adam_terms(N=n, alpha=a, b1=beta1, b2=beta2, d=dd, R=r, L=lip, delta=dl,
                           lam=lam, a_quad=beta1 / beta2, a_adapt=beta1 / beta2)
        if beta1 == 0.0:  # Theorem 4 at b1 = 0 keeps its factor 12, unlike Theorem 2
            terms["adaptivity (d R^2)"] *= 3.0
    return BoundResult.build(
        "Défossez TMLR Theorem 4 (Adam with momentum): E||grad F(x_tau)||^2", terms, conds, _REF,
        "defossez-adam-momentum (TMLR Theorem 4)",
        {"N": n, "alpha": a, "b1": beta1, "b2": beta2, "eps": e, "d": dd, "R": r, "L": lip,
         "delta": dl}, {} if math.isnan(lam) else {"Lambda": lam})
