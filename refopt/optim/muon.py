"""Quantized Muon for matrix parameters: momentum, then an (approximate) polar factor.

Signatures::

    muon(lr, beta=0.95, *, momentum="ema", nesterov=False, orthogonalize="svd", rtol=None,
         ns_steps=5, ns_coefficients=NS5_COEFFICIENTS, ns_precision=None, scale="none",
         weight_decay=0.0, precision=None, master_weights=True, nonfinite="raise",
         dtype=np.float64) -> Muon
    Muon.init(params) -> MuonState(count, m)
    Muon.update(params, grads, state) -> (params, state)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import numpy as np

from refopt.formats import FloatFormat
from refopt.formats import format as resolve_format
from refopt.optim._common import (
    F64,
    Params,
    all_finite,
    as_tree,
    check_beta,
    check_bool,
    check_choice,
    check_nonnegative,
    check_positive,
    get,
    keys_of,
    label,
)
from refopt.optim.base import Optimizer, as_precision, check_dtype, check_nonfinite_policy
from refopt.optim.msign import NS5_COEFFICIENTS, msign, newton_schulz
from refopt.optim.precision import Precision

__all__ = ["MOMENTUM_FORMS", "ORTHOGONALIZERS", "SCALES", "Muon", "MuonState", "muon", "shape_scale"]

MOMENTUM_FORMS = ("ema", "sum")
ORTHOGONALIZERS = ("svd", "newton_schulz")
SCALES = ("none", "rows_over_cols", "rms")


class MuonState(NamedTuple):
    """State of :class:`refopt.optim.Muon`.

    Attributes
    ----------
    count : int
        Number of steps taken.
    m : numpy.ndarray or dict
        Momentum :math:`M` (stored quantized in the ``m`` format).
    """

    count: int
    m: np.ndarray | dict[str, np.ndarray]


def shape_scale(shape: tuple[int, int], scale: str) -> float:
    r"""The factor Muon multiplies the orthogonalized update by.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the weight: rows = output dimension, cols = input
        dimension (the layer computes :math:`y = Wx`).
    scale : {"none", "rows_over_cols", "rms"}
        ``"none"``: 1; ``"rows_over_cols"``: :math:`\sqrt{\max(1, \text{rows}/\text{cols})}`
        (Keller Jordan's Muon); ``"rms"``: :math:`0.2\sqrt{\max(\text{rows}, \text{cols})}`
        (matches the update RMS of AdamW, Moonshot's Muon).

    Returns
    -------
    float
        The factor.

    Raises
    ------
    ValueError
        If ``scale`` is unknown.
    """
    check_choice("scale", scale, SCALES)
    rows, cols = shape
    if scale == "rows_over_cols":
        return math.sqrt(max(1.0, rows / cols))
    if scale == "rms":
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class Muon(Optimizer):
    """Quantized Muon; build it with :func:`refopt.optim.muon` (which documents it)."""

    lr: float
    beta: float
    momentum: str
    nesterov: bool
    orthogonalize: str
    rtol: float | None
    ns_steps: int
    ns_coefficients: tuple[float, float, float]
    ns_precision: FloatFormat | None
    scale: str
    weight_decay: float
    precision: Precision
    master_weights: bool
    nonfinite: str
    dtype: np.dtype = F64
    name = "muon"
    state_type = MuonState

    def init(self, params: np.ndarray | dict[str, np.ndarray]) -> MuonState:
        """Zero momentum shaped like ``params`` (every leaf must be 2-D).

        Parameters
        ----------
        params : numpy.ndarray or dict of numpy.ndarray
            Matrix parameters.

        Returns
        -------
        MuonState
            ``MuonState(0, zeros)``.

        Raises
        ------
        ValueError
            If a parameter is not 2-D.
        """
        params = as_tree(params, "params", self.dtype)
        self._check_matrices(params)
        return super().init(params)

    @staticmethod
    def _check_matrices(params: Params) -> None:
        for k in keys_of(params):
            a = get(params, k)
            if a.ndim != 2:
                raise ValueError(
                    f"Muon needs 2-D parameters, {label('params', k)} has shape {a.shape}; "
                    "use refopt.optim.muon_adam for models with 1-D parameters"
                )

    def _check_state(self, params: Params, state: Any) -> None:
        self._check_matrices(params)
        super()._check_state(params, state)

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments except ``precision``.

        Returns
        -------
        dict
            JSON-serialisable values (``ns_precision`` as a format name or field dict).
        """
        out = super().hyperparameters()
        out["ns_coefficients"] = list(self.ns_coefficients)
        if self.ns_precision is not None:
            fmt = self.ns_precision
            out["ns_precision"] = {f.name: getattr(fmt, f.name) for f in dataclasses.fields(fmt)}
        return out

    def orthogonalized(self, D: np.ndarray) -> np.ndarray:
        """The orthogonalization of a direction ``D`` under this optimizer's settings.

        Parameters
        ----------
        D : numpy.ndarray
            A 2-D matrix.

        Returns
        -------
        numpy.ndarray
            :func:`refopt.optim.msign` or :func:`refopt.optim.newton_schulz` of ``D``;
            all NaN when ``D`` holds a NaN or infinity (e.g. a momentum that overflowed
            its format), which ``step`` then reports or skips.
        """
        if not all_finite(D):
            return np.full_like(D, np.nan)
        if self.orthogonalize == "svd":
            return msign(D, self.rtol)
        return newton_schulz(D, self.ns_steps, coefficients=self.ns_coefficients, precision=self.ns_precision)

    def _leaf(self, t: int, w: np.ndarray, g: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        P, beta, lr, wd = self.precision, self.beta, self.lr, self.weight_decay
        # [docs:muon:start]
        c = 1.0 - beta if self.momentum == "ema" else 1.0
        m_new = P.quantize_m(beta * m + c * g)  # [prf:refopt-algorithm-muon] M = Q_M(beta M + (1-beta) G^Q)
        d = c * g + beta * m_new if self.nesterov else m_new  # Nesterov look-ahead (exact)
        u = (lr * shape_scale(w.shape, self.scale)) * self.orthogonalized(d)  # float64
        u = u.astype(w.dtype, copy=False)  # one rounding when dtype is float32
        w_new = w * (1.0 - lr * wd) if wd else w  # decoupled weight decay
        w_new = w_new - u
        if not self.master_weights:
            w_new = P.quantize_weights(w_new)
        # [docs:muon:end]
        return w_new, m_new, u


def muon(
    lr: float,
    beta: float = 0.95,
    *,
    momentum: str = "ema",
    nesterov: bool = False,
    orthogonalize: str = "svd",
    rtol: float | None = None,
    ns_steps: int = 5,
    ns_coefficients: tuple[float, float, float] = NS5_COEFFICIENTS,
    ns_precision: str | FloatFormat | None = None,
    scale: str = "none",
    weight_decay: float = 0.0,
    precision: Precision | None = None,
    master_weights: bool = True,
    nonfinite: str = "raise",
    dtype: type | str | np.dtype = np.float64,
) -> Muon:
    r"""Muon (momentum + orthogonalized update) with quantized weights, gradients and momentum.

    Parameters
    ----------
    lr : float
        Step size :math:`\eta > 0`.
    beta : float, default 0.95
        Momentum :math:`\beta \in [0, 1)`.
    momentum : {"ema", "sum"}, default "ema"
        ``"ema"``: :math:`M = Q_M(\beta M + (1-\beta) G^Q)`; ``"sum"``:
        :math:`M = Q_M(\beta M + G^Q)`.
    nesterov : bool, default False
        Orthogonalize :math:`c\,G^Q + \beta M` (``c`` = :math:`1-\beta` for ``"ema"``,
        1 for ``"sum"``) instead of :math:`M`.
    orthogonalize : {"svd", "newton_schulz"}, default "svd"
        Exact :func:`refopt.optim.msign` (the analysed algorithm) or the quintic
        iteration :func:`refopt.optim.newton_schulz`.
    rtol : float, optional
        Rank tolerance of ``"svd"`` (default :func:`refopt.optim.default_rtol`).
    ns_steps : int, default 5
        Newton-Schulz iterations.
    ns_coefficients : tuple of 3 floats, default ``NS5_COEFFICIENTS``
        Newton-Schulz polynomial coefficients.
    ns_precision : str or FloatFormat, optional
        Format of the Newton-Schulz iterates (round-to-nearest-even), e.g. ``"bf16"``.
    scale : {"none", "rows_over_cols", "rms"}, default "none"
        Shape scaling of the update, see :func:`refopt.optim.shape_scale` (rows =
        output dimension = ``shape[0]``).
    weight_decay : float, default 0.0
        Decoupled weight decay :math:`\lambda`: :math:`W \leftarrow W(1-\eta\lambda)`
        before the step.
    precision : Precision, optional
        Quantization policy (the ``v`` component is not used).
    master_weights : bool, default True
        False stores the weights in the W format: :math:`W \leftarrow Q_W(W - u)`.
    nonfinite : {"raise", "skip"}, default "raise"
        What a NaN or infinity in the gradient, momentum or weights does.
    dtype : {numpy.float64, numpy.float32}, default numpy.float64
        Working precision of the momentum arithmetic, the master weights and the
        stored momentum (see Notes).

    Returns
    -------
    Muon
        An optimizer with ``init(params) -> MuonState(count, m)``, ``update`` and
        ``step`` (see :class:`refopt.optim.Optimizer`). Every parameter must be
        2-D.

    Raises
    ------
    ValueError
        For out-of-range or unknown arguments, including a ``dtype`` other than
        float64/float32 and, with ``dtype=float32``, a ``precision`` component that
        is a callable or a format that does not fit float32 (named in the message).
    TypeError
        For arguments of the wrong type.

    Notes
    -----
    One step of :prf:ref:`refopt-algorithm-muon`, with the quantized gradient
    :math:`G^Q` computed at :math:`Q_W(W)` (:prf:ref:`paper-framework`):

    .. math::

        M_t = Q_M(\beta M_{t-1} + (1-\beta) G^Q_t), \qquad
        W_{t+1} = W_t(1 - \eta\lambda) - \eta\, s\, \mathrm{msign}(M_t),

    with :math:`s` the shape scale. The update reported by ``Muon.step`` is
    :math:`\eta s\,\mathrm{msign}(\cdot)`. With exact orthogonalization the step
    length is fixed, :math:`\|\eta s\,\mathrm{msign}(M_t)\|_2 = \eta s` (for
    :math:`M_t \ne 0`), and ``msign`` ignores positive rescaling of :math:`M_t`:
    quantization errors of :math:`M` can turn the step but never lengthen it.

    **Working precision.** ``dtype=numpy.float64`` (the default) is the paper's model:
    near-exact arithmetic between the quantization points. With
    ``dtype=numpy.float32`` (the practitioner's arithmetic, provenance: refopt) the
    momentum update, weight decay and weight update are float32 operations, each
    adding a float32 rounding the theory does not model; the orthogonalization is
    still computed in float64 and :math:`\eta s\,\mathrm{msign}(\cdot)` is rounded
    once to float32. Every precision component must then be exact or a format
    that fits float32.

    Provenance: paper (quantized Muon with exact orthogonalization, Theorem 4.6's
    algorithm in outline; the exact form here is refopt's reconstruction); options
    from public Muon implementations.
    """
    steps = ns_steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"ns_steps must be an integer >= 0, got {ns_steps!r}")
    coeffs = tuple(float(c) for c in ns_coefficients)
    if len(coeffs) != 3:
        raise ValueError(f"ns_coefficients must be three numbers, got {ns_coefficients!r}")
    if ns_precision is not None and not isinstance(ns_precision, (str, FloatFormat)):
        kind = type(ns_precision).__name__
        raise TypeError(f"ns_precision must be None, a format name or a FloatFormat, got {kind}")
    return Muon(
        lr=check_positive("lr", lr),
        beta=check_beta("beta", beta),
        momentum=check_choice("momentum", momentum, MOMENTUM_FORMS),
        nesterov=check_bool("nesterov", nesterov),
        orthogonalize=check_choice("orthogonalize", orthogonalize, ORTHOGONALIZERS),
        rtol=None if rtol is None else check_nonnegative("rtol", rtol),
        ns_steps=int(steps),
        ns_coefficients=coeffs,  # type: ignore[arg-type]
        ns_precision=None if ns_precision is None else resolve_format(ns_precision),
        scale=check_choice("scale", scale, SCALES),
        weight_decay=check_nonnegative("weight_decay", weight_decay),
        precision=as_precision(precision),
        master_weights=check_bool("master_weights", master_weights),
        nonfinite=check_nonfinite_policy(nonfinite),
        dtype=check_dtype(dtype, as_precision(precision)),
    )
