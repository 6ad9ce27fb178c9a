"""Quantized Adam: the analysed (Défossez) form and PyTorch's practical form.

Signatures::

    adam(lr, b1=0.9, b2=0.999, eps=1e-8, *, variant="analysed", weight_decay=0.0,
         decoupled=False, precision=None, master_weights=True, nonfinite="raise",
         dtype=np.float64) -> Adam
    Adam.init(params) -> AdamState(count, m, v)
    Adam.update(params, grads, state) -> (params, state)
    Adam.step(params, grads, state) -> StepResult(params, state, update, skipped)
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from refopt.optim._common import (
    F64,
    check_beta,
    check_bool,
    check_choice,
    check_nonnegative,
    check_positive,
)
from refopt.optim.base import Optimizer, as_precision, check_dtype, check_nonfinite_policy
from refopt.optim.precision import Precision

__all__ = ["ADAM_VARIANTS", "Adam", "AdamState", "adam", "analysed_step_size"]

ADAM_VARIANTS = ("analysed", "practical")


class AdamState(NamedTuple):
    """State of :class:`refopt.optim.Adam`.

    Attributes
    ----------
    count : int
        Number of steps taken.
    m : numpy.ndarray or dict
        First moment (stored quantized in the ``m`` format).
    v : numpy.ndarray or dict
        Second moment (stored quantized in the ``v`` format).
    """

    count: int
    m: np.ndarray | dict[str, np.ndarray]
    v: np.ndarray | dict[str, np.ndarray]


def analysed_step_size(lr: float, b1: float, b2: float, t: int) -> float:
    r"""Défossez's step size :math:`\alpha_t = \alpha(1-\beta_1)\sqrt{\sum_{j=0}^{t-1}\beta_2^j}`.

    Parameters
    ----------
    lr : float
        The base step size :math:`\alpha`.
    b1, b2 : float
        The moment decay rates, in :math:`[0, 1)`.
    t : int
        The step number, :math:`t \ge 1`.

    Returns
    -------
    float
        :math:`\alpha(1-\beta_1)\sqrt{(1-\beta_2^t)/(1-\beta_2)}`.

    Notes
    -----
    With weighted-sum moments :math:`m_t = \sum_k \beta_1^{t-k} g_k` this step size
    makes the update scale-free like PyTorch's bias-corrected one
    (:prf:ref:`refopt-algorithm-adam-analysed`).

    Provenance: Défossez 2022.
    """
    with np.errstate(divide="ignore"):
        geometric = -math.expm1(t * math.log(b2)) / (1.0 - b2) if b2 > 0 else 1.0
    return lr * (1.0 - b1) * math.sqrt(geometric)


@dataclasses.dataclass(frozen=True, eq=False)
class Adam(Optimizer):
    """Quantized Adam; build it with :func:`refopt.optim.adam` (which documents it)."""

    lr: float
    b1: float
    b2: float
    eps: float
    variant: str
    weight_decay: float
    decoupled: bool
    precision: Precision
    master_weights: bool
    nonfinite: str
    dtype: np.dtype = F64
    name = "adam"
    state_type = AdamState

    def _leaf(
        self, t: int, w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        P, b1, b2, lr, wd = self.precision, self.b1, self.b2, self.lr, self.weight_decay
        if wd and not self.decoupled:
            g = g + wd * w  # L2 regularisation: the decay enters the gradient
        # In-place arithmetic on fresh arrays: 4 allocations per step instead of ~12.
        # Python-float scalars keep the arrays' dtype (NEP 50): float32 stays float32.
        if self.variant == "analysed":
            # [docs:adam-analysed:start]
            # m = Q_M(b1 m + g^Q)    [prf:refopt-algorithm-adam-analysed]
            m_new = np.multiply(m, b1)
            m_new += g
            m_new = P.quantize_m(m_new)
            # v = Q_V(b2 v + (g^Q)^2)
            v_new = np.multiply(g, g)
            u = np.multiply(v, b2)
            v_new += u
            v_new = P.quantize_v(v_new)
            # u = alpha_t m / sqrt(eps + v), eps inside the root
            alpha_t = analysed_step_size(lr, b1, b2, t)
            den = np.add(v_new, self.eps, out=u)
            np.sqrt(den, out=den)
            w_new = np.multiply(m_new, alpha_t)
            u = np.divide(w_new, den, out=den)
            # [docs:adam-analysed:end]
        else:
            # [docs:adam-practical:start]
            # m = Q_M(b1 m + (1 - b1) g^Q)    [prf:refopt-algorithm-adam-practical]
            m_new = np.multiply(g, 1.0 - b1)
            u = np.multiply(m, b1)
            m_new += u
            m_new = P.quantize_m(m_new)
            # v = Q_V(b2 v + (1 - b2) (g^Q)^2)
            v_new = np.multiply(g, g)
            v_new *= 1.0 - b2
            np.multiply(v, b2, out=u)
            v_new += u
            v_new = P.quantize_v(v_new)
            # u = lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), eps outside
            bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
            den = np.sqrt(v_new, out=u)
            den /= math.sqrt(bc2)
            den += self.eps
            w_new = np.multiply(m_new, lr / bc1)
            u = np.divide(w_new, den, out=den)
            # [docs:adam-practical:end]
        # [docs:adam-weights:start]
        # w <- w (1 - lr wd) - u (decoupled decay) or w - u; stored in W format if no master
        if wd and self.decoupled:
            np.multiply(w, 1.0 - lr * wd, out=w_new)
            w_new -= u
        else:
            np.subtract(w, u, out=w_new)
        if not self.master_weights:
            w_new = P.quantize_weights(w_new)  # [prf:paper-framework] weights stored in the W format
        # [docs:adam-weights:end]
        return w_new, m_new, v_new, u


def adam(
    lr: float,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    variant: str = "analysed",
    weight_decay: float = 0.0,
    decoupled: bool = False,
    precision: Precision | None = None,
    master_weights: bool = True,
    nonfinite: str = "raise",
    dtype: type | str | np.dtype = np.float64,
) -> Adam:
    r"""Adam with quantized weights, gradients and moments.

    Parameters
    ----------
    lr : float
        Step size :math:`\alpha > 0`.
    b1, b2 : float, default 0.9, 0.999
        Moment decay rates in :math:`[0, 1)`.
    eps : float, default 1e-8
        :math:`\varepsilon \ge 0` (inside the root for ``"analysed"``, outside for
        ``"practical"``).
    variant : {"analysed", "practical"}, default "analysed"
        The recursion (see Notes).
    weight_decay : float, default 0.0
        Weight decay :math:`\lambda \ge 0`.
    decoupled : bool, default False
        False: L2 decay, :math:`\lambda w` is added to the quantized gradient. True:
        decoupled (AdamW) decay, :math:`w \leftarrow w(1 - \alpha\lambda)` before the
        Adam step.
    precision : Precision, optional
        The quantization policy (None: exact). The ``grads`` and ``weights``
        components are applied by :func:`refopt.optim.quantized_grad` before
        ``Adam.update``; the update applies ``m``, ``v`` and (with
        ``master_weights=False``) ``weights``.
    master_weights : bool, default True
        True: the optimizer keeps master weights (of ``dtype``) and :math:`Q_W` only makes
        the copy the gradient is computed at (the paper's framework). False: the
        weights themselves are stored in the W format, :math:`w \leftarrow Q_W(w -
        u)`, so updates smaller than half a unit in the last place are rounded away.
    nonfinite : {"raise", "skip"}, default "raise"
        What a NaN or infinity in the gradient, a new moment or new weights does:
        raise :class:`FloatingPointError` naming it, or skip the step (parameters and
        state unchanged, the step count not advanced).
    dtype : {numpy.float64, numpy.float32}, default numpy.float64
        Working precision of the update arithmetic, the master weights and the
        stored moments (see Notes). ``params`` and ``grads`` are converted to it
        and the new parameters and state are of it.

    Returns
    -------
    Adam
        An optimizer with ``init(params) -> AdamState(count, m, v)``,
        ``update(params, grads, state) -> (params, state)`` and ``step`` (also
        returning the update :math:`u`), see :class:`refopt.optim.Optimizer`.

    Raises
    ------
    ValueError
        If ``lr <= 0``, a beta is outside :math:`[0, 1)`, ``eps < 0``,
        ``weight_decay < 0``, ``variant``/``nonfinite`` is unknown, ``dtype`` is not
        float64 or float32, or ``dtype=float32`` and a ``precision`` component is a
        callable or a format that does not fit float32 (the message names it).
    TypeError
        If an argument has the wrong type.

    Notes
    -----
    Both variants take the quantized gradient :math:`g^Q_t = Q_G(\nabla f(Q_W(w_t)))`
    (:prf:ref:`paper-framework`) and store their moments quantized; arithmetic
    between quantization points is exact (float64).

    ``"analysed"`` is Défossez et al.'s weighted-sum form (:prf:ref:`refopt-algorithm-adam-analysed`)
    with the framework's quantization points:

    .. math::

        m_t = Q_M(\beta_1 m_{t-1} + g^Q_t), \quad
        v_t = Q_V(\beta_2 v_{t-1} + (g^Q_t)^2), \quad
        w_{t+1} = w_t - \alpha_t \frac{m_t}{\sqrt{\varepsilon + v_t}},

    with :math:`\alpha_t` from :func:`refopt.optim.analysed_step_size`.

    ``"practical"`` follows ``torch.optim.Adam`` / ``AdamW``
    (:prf:ref:`refopt-algorithm-adam-practical`):

    .. math::

        m_t = Q_M(\beta_1 m_{t-1} + (1-\beta_1) g^Q_t), \quad
        v_t = Q_V(\beta_2 v_{t-1} + (1-\beta_2) (g^Q_t)^2), \quad
        w_{t+1} = w_t - \frac{\alpha}{1-\beta_1^t}
        \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \varepsilon}.

    In exact arithmetic, without weight decay and with :math:`\varepsilon = 0`, the
    practical update equals the analysed one divided by :math:`1 - \beta_1^t` (the EMA
    states are the weighted sums times :math:`1-\beta_1` and :math:`1-\beta_2`;
    Défossez's form omits the momentum bias correction; see
    :prf:ref:`refopt-lemma-ema-sum-equivalence` for the quantized case).

    **Working precision.** ``dtype=numpy.float64`` (the default) is the paper's model:
    near-exact arithmetic between the quantization points, so that the only
    rounding errors are those of :math:`Q_W, Q_G, Q_M, Q_V`. ``dtype=numpy.float32``
    is the practitioner's arithmetic (PyTorch's on float32 parameters): master
    weights, moments and every operation of the update are float32, so each
    operation adds a float32 rounding (relative error up to :math:`2^{-24}`)
    between the quantization points, which the theory does not model; the
    quantization points still apply, and every precision component must then be
    exact or a format that fits float32 (bf16, fp16, the fp8 formats, fp32...).
    The float32 mode matches ``torch.optim.Adam``/``AdamW`` closely (relative
    differences of a few float32 units after many steps) but not bit for bit: the
    operation order differs. Provenance of the option: refopt.

    The update :math:`u` reported by ``Adam.step`` is the adaptive term
    :math:`\alpha_t m_t/\sqrt{\varepsilon + v_t}` (resp. the practical one), without
    the decoupled weight decay.

    Provenance: Défossez 2022 (analysed form) with the paper's quantization points
    (:prf:ref:`paper-framework`); PyTorch (practical form).

    Examples
    --------
    >>> import numpy as np
    >>> from refopt.optim import adam, Precision
    >>> opt = adam(0.1, precision=Precision(m="bf16", v="bf16"))
    >>> w = np.array([1.0, -2.0])
    >>> state = opt.init(w)
    >>> w, state = opt.update(w, np.array([0.5, -0.25]), state)
    >>> state.count, state.m
    (1, array([ 0.5 , -0.25]))
    """
    return Adam(
        lr=check_positive("lr", lr),
        b1=check_beta("b1", b1),
        b2=check_beta("b2", b2),
        eps=check_nonnegative("eps", eps),
        variant=check_choice("variant", variant, ADAM_VARIANTS),
        weight_decay=check_nonnegative("weight_decay", weight_decay),
        decoupled=check_bool("decoupled", decoupled),
        precision=as_precision(precision),
        master_weights=check_bool("master_weights", master_weights),
        nonfinite=check_nonfinite_policy(nonfinite),
        dtype=check_dtype(dtype, as_precision(precision)),
    )
