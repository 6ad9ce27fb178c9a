"""What the paper is known to state (Tang, Li, Zou 2026): conditions, schedules, orders.

Only items the paper states (or its reviewers quote) live here, with the paper's numbers.
The paper's full quantization term (its Eq. A.43) is not available to refopt; the bounds
refopt evaluates are its own (:func:`refopt.theory.adam_bound`,
:func:`refopt.theory.muon_bound`).
"""

from __future__ import annotations

import math

from refopt.theory.result import check_count, check_q, check_real

__all__ = ["PAPER_ORDERS", "PAPER_RATES", "adam_condition", "muon_factor", "paper_schedule"]

#: Required error orders of the paper's theorems: ``q_c = O(T**-p)`` for the listed ``p``.
#: Provenance: paper (Theorem 4.5 for Adam, Theorem 4.6 for Muon).
PAPER_ORDERS: dict[str, dict[str, float]] = {
    "adam": {"G": 1.0, "M": 1.0, "W": 2.0, "V": 2.0},
    "muon": {"G": 0.5, "W": 0.5, "M": 0.5},
}

#: The rates the paper states, in gradient norm (not squared), up to log factors.
#: Provenance: paper (Theorems 4.5 and 4.6).
PAPER_RATES: dict[str, str] = {
    "adam": "O~(T^-1/4) in ||grad F|| (Theorem 4.5)",
    "muon": "O(T^-1/4) in the nuclear norm of grad F (Theorem 4.6)",
}


def adam_condition(b1: object, b2: object, q_M: object, q_V: object) -> tuple[bool, float]:
    """The strict inequality :math:`\\beta_1^2(1+q_M)^2 < \\beta_2(1-q_V)` of Theorem 4.5.

    Parameters
    ----------
    b1 : float
        :math:`\\beta_1 \\in [0, 1)`.
    b2 : float
        :math:`\\beta_2 \\in (0, 1)`.
    q_M, q_V : float
        Relative errors of the first- and second-moment quantizers, in [0, 1).

    Returns
    -------
    tuple of (bool, float)
        Whether it holds, and the margin :math:`\\beta_2(1-q_V) - \\beta_1^2(1+q_M)^2`.

    Raises
    ------
    TypeError, ValueError
        For inputs outside their ranges.

    Notes
    -----
    Provenance: paper (Theorem 4.5), :prf:ref:`paper-theorem-4-5`. refopt's own Adam bound
    needs it and more (:prf:ref:`refopt-theorem-adam-quantized`). A second moment that
    underflows to zero has relative error 1, so :math:`q_V = 1` and the condition fails.
    """
    beta1 = check_real("b1", b1, lo=0.0, hi=1.0, hi_open=True)
    beta2 = check_real("b2", b2, lo=0.0, lo_open=True, hi=1.0, hi_open=True)
    qm, qv = check_q("q_M", q_M), check_q("q_V", q_V)
    margin = beta2 * (1.0 - qv) - beta1**2 * (1.0 + qm) ** 2
    return margin > 0.0, margin


def muon_factor(beta: float, q_M: float) -> float:
    """The factor :math:`q_M\\beta/(1-\\beta(1+q_M))` of the paper's Theorem 4.6.

    Parameters
    ----------
    beta : float
        Momentum parameter :math:`\\beta \\in [0, 1)`.
    q_M : float
        Relative error of the momentum quantizer, in [0, 1).

    Returns
    -------
    float
        The factor, or ``inf`` when :math:`\\beta(1+q_M) \\ge 1`.

    Raises
    ------
    TypeError, ValueError
        For inputs outside their ranges.

    Notes
    -----
    Provenance: paper (the factor appears in Theorem 4.6, :prf:ref:`paper-theorem-4-6`).
    In refopt's bound it multiplies the accumulated momentum-quantization error
    (:prf:ref:`refopt-lemma-muon-momentum-error`). With :math:`q_M = c_q T^{-1/2}` and
    :math:`1-\\beta = c_\\beta T^{-1/2}` it tends to :math:`c_q/(c_\\beta - c_q)`, a
    constant: it does not vanish.
    """
    b = check_real("beta", beta, lo=0.0, hi=1.0, hi_open=True)
    q = check_q("q_M", q_M)
    denom = 1.0 - b * (1.0 + q)
    return math.inf if denom <= 0.0 else q * b / denom


def paper_schedule(optimizer: str, T: object, *, c_lr: float = 1.0, c_beta: float = 1.0,
                   c_q: float = 1.0) -> dict[str, float]:
    """The hyper-parameter schedule and error levels of the paper's rate statements.

    Parameters
    ----------
    optimizer : {"adam", "muon"}
        Which theorem.
    T : int
        Horizon.
    c_lr, c_beta, c_q : float, default 1
        The constants hidden in the Theta/O of the schedule.

    Returns
    -------
    dict of str to float
        Adam: ``alpha = c_lr/sqrt(T)``, ``b2 = 1 - c_beta/T`` and ``q_G, q_M = c_q/T``,
        ``q_W, q_V = c_q/T**2``. Muon: ``eta = c_lr T**-3/4``,
        ``beta = 1 - c_beta T**-1/2`` and ``q_G = q_W = q_M = c_q T**-1/2``.

    Raises
    ------
    ValueError
        For an unknown optimizer, ``T < 1`` or a schedule leaving the valid range.

    Notes
    -----
    Provenance: paper (Theorems 4.5 and 4.6), :prf:ref:`paper-theorem-4-5`,
    :prf:ref:`paper-theorem-4-6`. The constants are refopt's choice (the paper's are
    not known).
    """
    n = check_count("T", T)
    for name, val in (("c_lr", c_lr), ("c_beta", c_beta), ("c_q", c_q)):
        check_real(name, val, lo=0.0, lo_open=True)
    orders = PAPER_ORDERS.get(optimizer)
    if orders is None:
        raise ValueError(f"optimizer must be 'adam' or 'muon', got {optimizer!r}")
    qs = {f"q_{c}": c_q * n ** -p for c, p in orders.items()}
    if optimizer == "adam":
        out = {"alpha": c_lr / math.sqrt(n), "b2": 1.0 - c_beta / n}
        key, val = "b2", out["b2"]
    else:
        out = {"eta": c_lr * n ** -0.75, "beta": 1.0 - c_beta / math.sqrt(n)}
        key, val = "beta", out["beta"]
    if not 0.0 <= val < 1.0 or any(q >= 1.0 for q in qs.values()):
        raise ValueError(f"T = {n} is too small for c_beta = {c_beta}, c_q = {c_q}: "
                         f"{key} = {val:g}, {qs}")
    out.update(qs)
    return out
