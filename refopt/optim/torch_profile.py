"""A bit-exact emulation of PyTorch 2.13's CPU single-tensor Adam/AdamW on bf16 tensors.

Signatures::

    torch_adam_bf16(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, *, weight_decay=0.0,
                    decoupled=False, nonfinite="raise") -> TorchAdamBF16
    fma_fp32(a, b, c) -> ndarray

Pure-bf16 training in PyTorch keeps parameters, gradients and both moments as bf16
tensors and runs every elementwise operation in float32 ("opmath"), rounding its
result to bf16 once per operation. The rounding is therefore per *operation*, not per
quantization point as in the framework of :class:`refopt.optim.Precision`: this module
reproduces those roundings exactly with :func:`refopt.quantize`, so a user can check a
PyTorch run (or their own kernel mimicking it) step by step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from refopt.optim._common import (
    Params,
    check_beta,
    check_bool,
    check_nonnegative,
    check_positive,
    get,
    keys_of,
    label,
)
from refopt.optim.adam import Adam
from refopt.optim.base import check_nonfinite_policy
from refopt.optim.precision import Precision
from refopt.quantize import quantize

__all__ = ["TorchAdamBF16", "fma_fp32", "torch_adam_bf16"]

_STEP_CAP = 2.0**24  # torch's float32 step counter stops at 2**24 (2**24 + 1 rounds down)


def _f32(x: Any) -> np.ndarray:
    """Round float64 values to float32 values (kept in float64)."""
    return np.asarray(quantize(np.asarray(x, dtype=np.float64), "fp32"))


def _bf16(x: Any) -> np.ndarray:
    return np.asarray(quantize(np.asarray(x, dtype=np.float64), "bf16"))


def fma_fp32(a: Any, b: Any, c: Any) -> np.ndarray:
    r"""The float32 fused multiply-add :math:`\mathrm{RN}_{32}(ab + c)`, emulated in float64.

    Parameters
    ----------
    a, b, c : array_like
        float32 values (held in float64); ``a * b`` must be exact in float64 (true
        when the significands of ``a`` and ``b`` have at most 53 bits together, e.g.
        float32 times float32) and stay in the normal range.

    Returns
    -------
    numpy.ndarray
        The correctly rounded float32 result, as float64.

    Notes
    -----
    The float64 sum :math:`s = \mathrm{RN}_{64}(ab + c)` and its exact error
    :math:`e` (Knuth's TwoSum) give the round-to-odd value of :math:`ab + c` in
    float64: :math:`s` itself if :math:`e = 0` or :math:`s` is odd, otherwise its
    neighbour towards :math:`e`. Rounding a round-to-odd result with
    :math:`p \ge q + 2` bits to :math:`q` bits by round-to-nearest is the same as
    rounding the exact value once (Boldo & Melquiond), and :math:`53 \ge 24 + 2`.

    Provenance: refopt.
    """
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    p = a * b
    s = p + c
    z = s - p
    e = (p - (s - z)) + (c - z)
    even = (s.view(np.int64) & 1) == 0 if s.ndim else (np.array(s).view(np.int64) & 1) == 0
    fix = (e != 0) & even & np.isfinite(s)
    s = np.where(fix, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    return _f32(s)


def _check_bf16(tree: Params, name: str) -> None:
    for k in keys_of(tree):
        a = get(tree, k)
        q = _bf16(a)
        if not np.array_equal(q, a, equal_nan=True):
            hint = "round them with refopt.quantize(x, 'bf16')"
            raise ValueError(f"{label(name, k)} must hold bf16 values ({hint})")


@dataclasses.dataclass(frozen=True, eq=False)
class TorchAdamBF16(Adam):
    """PyTorch 2.13 CPU Adam/AdamW on bf16; build with :func:`refopt.optim.torch_adam_bf16`."""

    vector_width: int = 32
    name = "torch_adam_bf16"

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments.

        Returns
        -------
        dict
            ``lr, b1, b2, eps, weight_decay, decoupled, nonfinite, vector_width``.
        """
        fields = ("lr", "b1", "b2", "eps", "weight_decay", "decoupled", "nonfinite", "vector_width")
        return {f: getattr(self, f) for f in fields}

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description (the precision is implied: bf16 everywhere).

        Returns
        -------
        dict
            ``{"optimizer": "torch_adam_bf16", **hyperparameters}``.
        """
        return {"optimizer": self.name, **self.hyperparameters()}

    def _check_inputs(self, params: Params, grads: Params, state: Any) -> None:
        _check_bf16(params, "params")
        _check_bf16(grads, "grads")
        super()._check_inputs(params, grads, state)

    def _add_alpha(self, g: np.ndarray, p: np.ndarray, alpha: float) -> np.ndarray:
        """``g.add(p, alpha=alpha)``: float32 on the vectorized body, bf16 ops on the tail."""
        out = _bf16(_f32(g + alpha * p))  # alpha * p is exact: 8-bit times 8-bit significands
        tail = g.size - g.size % self.vector_width
        if tail < g.size:
            flat, gf, pf = out.reshape(-1), g.reshape(-1), p.reshape(-1)
            flat[tail:] = _bf16(gf[tail:] + _bf16(alpha * pf[tail:]))
        return out

    def _leaf(
        self, t: int, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lr, b1, b2, wd = self.lr, self.b1, self.b2, self.weight_decay
        # [docs:torch-adam-bf16:start]
        if wd and self.decoupled:
            p = _bf16(_f32(p * _f32(1.0 - lr * wd)))  # param.mul_(1 - lr*wd)
        elif wd:
            g = self._add_alpha(g, p, float(_bf16(wd)))  # grad.add(param, alpha=wd)
        w = float(_f32(1.0 - b1))  # exp_avg.lerp_(grad, 1 - b1)
        d = _f32(g - m)
        m = _bf16(fma_fp32(w, d, m) if w < 0.5 else fma_fp32(-d, _f32(1.0 - w), g))
        v = _bf16(_f32(v * _f32(b2)))  # exp_avg_sq.mul_(b2)
        v = _bf16(fma_fp32(_f32(_f32(1.0 - b2) * g), g, v))  # .addcmul_(grad, grad, value=1-b2)
        step = min(float(t), _STEP_CAP)  # float32 step counter
        step_size = lr / (1.0 - b1**step)  # Python float64 scalars
        bc2_sqrt = (1.0 - b2**step) ** 0.5
        denom = _bf16(_f32(np.sqrt(v)))  # exp_avg_sq.sqrt()
        denom = _bf16(_f32(denom / _f32(bc2_sqrt)))  # / bias_correction2_sqrt
        denom = _bf16(_f32(denom + _f32(self.eps)))  # .add_(eps)
        u = _f32(_f32(_f32(step_size) * m) / denom)  # addcdiv_: value * t1 / t2 in float32
        p_new = _bf16(_f32(p - u))  # param.addcdiv_(exp_avg, denom, value=-step_size)
        # [docs:torch-adam-bf16:end]
        return p_new, m, v, u


def torch_adam_bf16(
    lr: float = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    nonfinite: str = "raise",
    vector_width: int = 32,
) -> TorchAdamBF16:
    r"""Bit-exact ``torch.optim.Adam`` / ``AdamW`` (2.13, CPU, ``foreach=False``) on bf16.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate.
    b1, b2 : float, default 0.9, 0.999
        Betas in :math:`[0, 1)`.
    eps : float, default 1e-8
        Added outside the root, as in PyTorch.
    weight_decay : float, default 0.0
        Weight decay.
    decoupled : bool, default False
        False: ``torch.optim.Adam`` (L2 decay added to the gradient); True:
        ``torch.optim.AdamW`` (``param.mul_(1 - lr * weight_decay)`` first).
    nonfinite : {"raise", "skip"}, default "raise"
        What a NaN or infinity does (see :func:`refopt.optim.adam`).
    vector_width : int, default 32
        Elements per iteration of PyTorch's vectorized CPU loop (32 measured on an
        AVX512 machine). Only the L2 decay of ``Adam`` (``grad.add(param,
        alpha=wd)``) depends on it: its last ``n % vector_width`` elements (in C
        order) go through a scalar path that rounds ``alpha * param`` to bf16 before
        adding.

    Returns
    -------
    TorchAdamBF16
        An Adam-shaped optimizer (``init``, ``update``, ``step``; state
        :class:`refopt.optim.AdamState`) whose parameters, gradients and moments are
        bf16 values held in float64 arrays. Its ``precision`` is bf16 for every
        component (use it with :func:`refopt.optim.quantized_grad`).

    Raises
    ------
    ValueError
        For out-of-range arguments, or (at each step) parameters or gradients that
        are not bf16 values.

    Notes
    -----
    PyTorch's single-tensor Adam on CPU runs, per parameter tensor::

        param.mul_(1 - lr * wd)                        # AdamW only
        grad = grad.add(param, alpha=wd)               # Adam with wd only
        exp_avg.lerp_(grad, 1 - b1)
        exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (exp_avg_sq.sqrt() / sqrt(1 - b2**t)).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-lr / (1 - b1**t))

    Each operation converts its bf16 operands and Python scalars to float32, computes
    in float32 and rounds the result once to bf16 (round to nearest even). Rules that
    matter bit for bit: ``lerp_`` is ``fma(w, end - self, self)`` (for :math:`w <
    1/2`); ``addcmul_`` is ``fma(value * t1, t2, self)``; ``add(alpha=a)`` rounds
    ``a`` to bf16 first; ``addcdiv_`` computes ``self + value * t1 / t2`` in float32
    operations; the bias corrections are Python float64 scalars rounded to float32 when
    used; the scalar tail of ``add(alpha=a)`` (see ``vector_width``) computes
    ``bf16(self + bf16(a * other))``. The float32 results are emulated exactly: float64 arithmetic on float32
    operands is correctly rounded to float32 after one more rounding (53 >= 2*24 + 2),
    and the fused multiply-adds go through :func:`refopt.optim.fma_fp32`.

    A consequence worth knowing: ``AdamW``'s decay does nothing to bf16 weights of
    moderate size, since :math:`w(1 - \mathrm{lr}\,\lambda)` rounds back to
    :math:`w` whenever :math:`\mathrm{lr}\,\lambda < 2^{-9}` (half a bf16 unit).

    Provenance: refopt (an emulation checked against PyTorch 2.13).
    """
    return TorchAdamBF16(
        lr=check_positive("lr", lr),
        b1=check_beta("b1", b1),
        b2=check_beta("b2", b2),
        eps=check_nonnegative("eps", eps),
        variant="practical",
        weight_decay=check_nonnegative("weight_decay", weight_decay),
        decoupled=check_bool("decoupled", decoupled),
        precision=Precision("bf16", "bf16", "bf16", "bf16"),
        master_weights=False,
        nonfinite=check_nonfinite_policy(nonfinite),
        vector_width=_check_width(vector_width),
    )


def _check_width(vector_width: object) -> int:
    if isinstance(vector_width, bool) or not isinstance(vector_width, (int, np.integer)) or vector_width < 1:
        raise ValueError(f"vector_width must be a positive integer, got {vector_width!r}")
    return int(vector_width)
