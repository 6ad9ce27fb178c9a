"""Running an optimizer in the framework's order, and recording what happened.

Signatures::

    quantized_grad(grad_fn, w, precision, *args, **kwargs) -> grads
    sample_gradient(grad_fn, w, precision, *args, **kwargs) -> GradSample(wq, g, gq, loss)
    run(grad_fn, opt, w0, steps, *, rng, record=RECORDABLE, every=1) -> Trace
    Trace.save(path); Trace.load(path) -> Trace

The trace file layout is described in :class:`refopt.optim.Trace`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from refopt.optim._common import F64, as_tree, check_same_structure, get, keys_of
from refopt.optim.base import Optimizer, as_precision
from refopt.optim.precision import Precision

__all__ = ["GradSample", "RECORDABLE", "Trace", "quantized_grad", "run", "sample_gradient"]

RECORDABLE = ("w", "wq", "g", "gq", "m", "v", "update", "loss")
"""Quantities :func:`refopt.optim.run` can record."""


class GradSample(NamedTuple):
    """One call of the gradient oracle in the framework's order.

    Attributes
    ----------
    wq : numpy.ndarray or dict
        :math:`W^Q = Q_W(w)`, where the gradient was computed.
    g : numpy.ndarray or dict
        The oracle's gradient at ``wq``.
    gq : numpy.ndarray or dict
        :math:`g^Q = Q_G(g)`.
    loss : float or None
        The loss, when the oracle returned ``(loss, grad)``.
    """

    wq: np.ndarray | dict[str, np.ndarray]
    g: np.ndarray | dict[str, np.ndarray]
    gq: np.ndarray | dict[str, np.ndarray]
    loss: float | None


def _policy(precision: object) -> tuple[Precision, np.dtype]:
    """The precision and the dtype of the gradient path: an optimizer's own, or float64."""
    if isinstance(precision, Optimizer):
        return precision.precision, precision.dtype
    if precision is not None and not isinstance(precision, Precision):
        kind = type(precision).__name__
        raise TypeError(f"precision must be a refopt.optim.Precision, a refopt optimizer or None, got {kind}")
    return as_precision(precision), F64


def sample_gradient(
    grad_fn: Callable[..., Any],
    w: np.ndarray | dict[str, np.ndarray],
    precision: Precision | Optimizer | None,
    *args: Any,
    **kwargs: Any,
) -> GradSample:
    """Quantize the weights, call the oracle there, quantize its gradient.

    Parameters
    ----------
    grad_fn : callable
        ``grad_fn(wq, *args, **kwargs)`` returning the gradient (an array or dict
        like ``w``) or a pair ``(loss, gradient)``.
    w : numpy.ndarray or dict
        The (master) weights.
    precision : Precision, Optimizer or None
        The policy whose ``weights`` and ``grads`` components are applied. A
        Precision or None: ``w`` and the gradient are converted exactly to float64.
        An optimizer: its ``precision``, and ``w`` and the gradient are converted to
        its working ``dtype`` (float32 for ``dtype=numpy.float32``: ``grad_fn``
        then receives float32 arrays, as in a float32 framework).
    *args, **kwargs
        Passed on to ``grad_fn`` (e.g. a Generator for a stochastic oracle).

    Returns
    -------
    GradSample
        ``(wq, g, gq, loss)``, arrays of float64 or of the optimizer's ``dtype``.

    Raises
    ------
    TypeError, ValueError
        If the gradient is not real floating-point data shaped like ``w``.
    """
    P, dtype = _policy(precision)
    w = as_tree(w, "w", dtype)
    # [docs:framework:start]
    wq = P.quantize_weights(w)  # [prf:paper-framework] W^Q = Q_W(W)
    out = grad_fn(wq, *args, **kwargs)  # gradient computed at the quantized copy
    loss, g = out if isinstance(out, tuple) else (None, out)
    g = as_tree(g, "gradient", dtype)
    gq = P.quantize_grads(g)  # [prf:paper-framework] g^Q = Q_G(g)
    # [docs:framework:end]
    check_same_structure(w, g, "w", "gradient")
    return GradSample(wq, g, gq, None if loss is None else float(loss))


def quantized_grad(
    grad_fn: Callable[..., Any],
    w: np.ndarray | dict[str, np.ndarray],
    precision: Precision | Optimizer | None,
    *args: Any,
    **kwargs: Any,
) -> np.ndarray | dict[str, np.ndarray]:
    """The quantized gradient :math:`g^Q = Q_G(\\nabla f(Q_W(w)))` in one call.

    Parameters
    ----------
    grad_fn : callable
        ``grad_fn(wq, *args, **kwargs)`` returning the gradient or ``(loss, gradient)``.
    w : numpy.ndarray or dict
        The (master) weights.
    precision : Precision, Optimizer or None
        The policy (its ``weights`` then ``grads`` components are applied); an
        optimizer stands for its ``precision`` and working ``dtype``, see
        :func:`refopt.optim.sample_gradient`.
    *args, **kwargs
        Passed on to ``grad_fn``.

    Returns
    -------
    numpy.ndarray or dict
        :math:`g^Q`, ready for ``opt.update(w, g_q, state)``.

    Raises
    ------
    TypeError, ValueError
        If the gradient is not real floating-point data shaped like ``w``.

    Notes
    -----
    The order is the framework's (:prf:ref:`paper-framework`): the gradient is
    evaluated at the quantized weights, not at the master weights, and then
    quantized. See :func:`refopt.optim.sample_gradient` for all intermediate values.

    Examples
    --------
    >>> import numpy as np
    >>> from refopt.optim import Precision, quantized_grad
    >>> p = Precision(weights="bf16", grads="fp8_e4m3fn")
    >>> quantized_grad(lambda w: 3.0 * w, np.array([1.0 + 2.0**-10]), p)
    array([3.])
    """
    return sample_gradient(grad_fn, w, precision, *args, **kwargs).gq


class Trace:
    """Recorded quantities of a run, and the ``.npz`` layout other implementations write.

    Parameters
    ----------
    config : dict
        JSON-serialisable run description.
    steps : numpy.ndarray
        Recorded step numbers (1-based).
    arrays : dict of str to numpy.ndarray
        Flat names (``"w"`` or ``"w/key"``, ``"final"``...) to stacked arrays.

    Notes
    -----
    **Trace file layout** (``.npz``, readable without Python's pickle): ``config`` is a
    0-d string array holding JSON: ``{"optimizer": opt.config(), "record": [...],
    "every": k, "steps": n, "params": "array" | "dict", "keys": [...]}``; ``steps`` holds
    the recorded step numbers :math:`t` (1-based); each recorded quantity is stacked along
    a leading axis, one row per recorded step, under its name (``"w"``) or, for dict
    parameters, ``"name/key"`` (``"w/layer1"``); ``final`` (or ``final/key``) holds the
    parameters after the last step. ``w`` and ``wq`` are taken before step :math:`t`;
    ``g`` (the oracle's gradient at ``wq``), ``gq``, ``loss``; ``m``, ``v`` and
    ``update`` after it.
    """

    def __init__(self, config: dict[str, Any], steps: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        self.config = config
        self.steps = np.asarray(steps, dtype=np.int64)
        self.arrays = arrays

    @property
    def names(self) -> list[str]:
        """The recorded quantities (in ``RECORDABLE`` order)."""
        return [n for n in RECORDABLE if n in self.config.get("record", [])]

    def _get(self, name: str) -> np.ndarray | dict[str, np.ndarray]:
        if self.config.get("params") == "dict" and name not in ("loss",):
            out = {k: self.arrays[f"{name}/{k}"] for k in self.config["keys"] if f"{name}/{k}" in self.arrays}
            if not out:
                raise KeyError(name)
            return out
        return self.arrays[name]

    def __getitem__(self, name: str) -> np.ndarray | dict[str, np.ndarray]:
        """A recorded quantity: a stacked array, or a dict of them for dict parameters.

        Parameters
        ----------
        name : str
            One of the recorded names, or ``"final"``.

        Returns
        -------
        numpy.ndarray or dict
            Leading axis = recorded steps (absent for ``"final"``).

        Raises
        ------
        KeyError
            If ``name`` was not recorded.
        """
        if name not in (*self.names, "final"):
            raise KeyError(f"{name!r} was not recorded; recorded: {self.names}")
        return self._get(name)

    @property
    def final(self) -> np.ndarray | dict[str, np.ndarray]:
        """The parameters after the last step."""
        return self._get("final")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the trace to an ``.npz`` file (no pickled objects).

        Parameters
        ----------
        path : str or path-like
            Destination file.
        """
        np.savez(path, config=np.array(json.dumps(self.config)), steps=self.steps, **self.arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a trace written by :meth:`save` (or by another implementation).

        Parameters
        ----------
        path : str or path-like
            An ``.npz`` file.

        Returns
        -------
        Trace
            The trace.

        Raises
        ------
        ValueError
            If the file lacks ``config`` or ``steps`` or its config is not JSON.
        """
        with np.load(path, allow_pickle=False) as data:
            files = set(data.files)
            for required in ("config", "steps"):
                if required not in files:
                    raise ValueError(f"{os.fspath(path)} is not a refopt trace: no {required!r} array")
            try:
                config = json.loads(str(data["config"]))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{os.fspath(path)}: config is not valid JSON: {exc}") from None
            arrays = {k: data[k] for k in files - {"config", "steps"}}
            return cls(config, data["steps"], arrays)

    def __repr__(self) -> str:
        opt = (self.config.get("optimizer") or {}).get("optimizer", "?")
        return f"Trace(optimizer={opt!r}, steps={len(self.steps)}, record={self.names})"


def _check_record(record: Sequence[str], every: object, steps: object) -> tuple[list[str], int, int]:
    if isinstance(record, str):
        raise TypeError("record must be a sequence of names, not a str")
    bad = [r for r in record if r not in RECORDABLE]
    if bad:
        raise ValueError(f"cannot record {bad}; recordable: {RECORDABLE}")
    for name, value in (("every", every), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return [r for r in RECORDABLE if r in record], int(every), int(steps)  # type: ignore[arg-type]


def run(
    grad_fn: Callable[..., Any],
    opt: Optimizer,
    w0: np.ndarray | dict[str, np.ndarray],
    steps: int,
    *,
    rng: np.random.Generator | int | None,
    record: Sequence[str] = RECORDABLE,
    every: int = 1,
) -> Trace:
    """Run ``steps`` optimizer steps in the framework's order and record a trace.

    Parameters
    ----------
    grad_fn : callable
        The gradient oracle. Called as ``grad_fn(wq, rng)`` when ``rng`` is given,
        ``grad_fn(wq)`` when ``rng`` is None; returns the gradient or
        ``(loss, gradient)`` (then the loss can be recorded).
    opt : Optimizer
        A refopt optimizer (its ``precision`` quantizes weights and gradients).
    w0 : numpy.ndarray or dict
        Initial parameters (converted to the optimizer's ``dtype``).
    steps : int
        Number of steps (>= 1).
    rng : numpy.random.Generator, int or None
        The oracle's random stream (an int seeds a new Generator). Stochastic
        rounding uses the precision's own generator, whose starting state is stored
        in the trace's config.
    record : sequence of str, default all of ``RECORDABLE``
        Which of ``w, wq, g, gq, m, v, update, loss`` to record.
    every : int, default 1
        Record steps :math:`t = 1, 1 + k, 1 + 2k, \\dots` (:math:`k` = ``every``).

    Returns
    -------
    Trace
        The recorded quantities; ``trace.final`` holds the last parameters.

    Raises
    ------
    ValueError, TypeError
        For bad arguments; and whatever the optimizer raises (e.g.
        :class:`FloatingPointError` for non-finite values).

    Notes
    -----
    Each step is ``s = sample_gradient(grad_fn, w, opt, ...)`` followed by
    ``opt.step(w, s.gq, state)``. When the optimizer's configuration cannot be
    serialised (callable quantizers), ``config["optimizer"]`` is None and the trace
    cannot be checked by :func:`refopt.optim.check_trace`.

    Recorded arrays keep their dtype: ``w``, ``wq``, ``g``, ``gq``, ``m``, ``v``,
    ``update`` and ``final`` have the optimizer's ``dtype`` (float32 for
    ``dtype=numpy.float32``, where ``grad_fn`` receives float32 weights and its
    gradient is converted to float32); ``loss`` is float64.
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"opt must be a refopt optimizer, got {type(opt).__name__}")
    names, every, steps = _check_record(record, every, steps)
    gen = None if rng is None else (rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng))
    w = as_tree(w0, "w0", opt.dtype)
    try:
        opt_config = opt.config()
    except ValueError:
        opt_config = None
    keys = keys_of(w)
    config = {
        "optimizer": opt_config,
        "record": names,
        "every": every,
        "steps": steps,
        "params": "dict" if isinstance(w, dict) else "array",
        "keys": [k for k in keys if k is not None],
    }
    rows: dict[str, list[Any]] = {}
    recorded: list[int] = []
    state = opt.init(w)
    args = () if gen is None else (gen,)
    for t in range(1, steps + 1):
        s = sample_gradient(grad_fn, w, opt, *args)
        result = opt.step(w, s.gq, state)
        if (t - 1) % every == 0:
            recorded.append(t)
            values: dict[str, Any] = {"w": w, "wq": s.wq, "g": s.g, "gq": s.gq, "update": result.update}
            values.update(opt.moments(result.state))
            values["loss"] = np.nan if s.loss is None else s.loss
            for n in names:
                _append(rows, n, values.get(n))
        w, state = result.params, result.state
    arrays = {k: np.stack(v) for k, v in rows.items()}
    for k in keys:
        arrays["final" if k is None else f"final/{k}"] = np.array(get(w, k))
    return Trace(config, np.array(recorded), arrays)


def _append(rows: dict[str, list[Any]], name: str, value: Any) -> None:
    if value is None:  # e.g. "v" of Muon
        return
    if isinstance(value, dict):
        for k, a in value.items():
            rows.setdefault(f"{name}/{k}", []).append(np.array(a))
    else:
        rows.setdefault(name, []).append(np.array(value))
