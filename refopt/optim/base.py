"""The shape every refopt optimizer shares (optax-like, pure, explicit state).

An optimizer is an immutable object with

- ``init(params) -> state``: a NamedTuple whose first field is the step ``count``;
- ``update(params, grads, state) -> (params, state)``: one step, given the gradient
  **already quantized**, :math:`g^Q = Q_G(\\nabla f(Q_W(w)))` (use
  :func:`refopt.optim.quantized_grad` to get it in the framework's order);
- ``step(params, grads, state) -> StepResult``: the same, also returning the update;
- ``config() -> dict``: a JSON-serialisable description (see
  :func:`refopt.optim.optimizer_from_config`).

Inputs are never modified; results are new arrays of the optimizer's working
``dtype`` (float64 by default: the paper's near-exact arithmetic; float32 on request,
see :func:`check_dtype`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from refopt.formats import FloatFormat
from refopt.optim._common import (
    F32,
    F64,
    NONFINITE_POLICIES,
    Params,
    StepResult,
    as_tree,
    build,
    check_choice,
    check_same_structure,
    first_nonfinite,
    get,
    keys_of,
    nonfinite_error,
    tree_map,
)
from refopt.optim.precision import COMPONENTS, Precision

__all__ = ["Optimizer"]


def as_precision(precision: object) -> Precision:
    """Return ``precision`` (None -> exact policy) or raise TypeError."""
    if precision is None:
        return Precision()
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a refopt.optim.Precision or None, got {type(precision).__name__}")
    return precision


class Optimizer:
    """Base class of the refopt optimizers (see the module docstring for the protocol).

    A subclass is a frozen dataclass that sets ``name`` and ``state_type`` (a
    NamedTuple ``(count, *moments)``, one parameter-shaped tree per moment) and
    implements ``_leaf(t, w, g, *moments) -> (w, *moments, u)``, the update of one
    parameter array at step ``t``. The base class walks the parameters in sorted key
    order, validates inputs and checks the results for non-finite values.
    """

    name: str = ""
    state_type: Any = None
    precision: Precision
    nonfinite: str = "raise"
    dtype: np.dtype = F64

    def init(self, params: np.ndarray | dict[str, np.ndarray]) -> Any:
        """Zero moments shaped like ``params``.

        Parameters
        ----------
        params : numpy.ndarray or dict of numpy.ndarray
            The parameters (real floating-point).

        Returns
        -------
        NamedTuple
            ``state_type(0, zeros, ...)``: step count 0 and one zero tree per moment,
            of the optimizer's ``dtype``.
        """
        params = as_tree(params, "params", self.dtype)
        zeros = [tree_map(np.zeros_like, params) for _ in self.state_type._fields[1:]]
        return self.state_type(0, *zeros)

    def _check_state(self, params: Params, state: Any) -> None:
        kind = self.state_type.__name__
        if not isinstance(state, self.state_type):
            got = type(state).__name__
            raise TypeError(f"state must be of type {kind} (from {type(self).__name__}.init), got {got}")
        for field in state._fields[1:]:
            moment = as_tree(getattr(state, field), f"state.{field}", self.dtype)  # no copy for our own state
            check_same_structure(params, moment, "params", f"state.{field}")

    def _check_inputs(self, params: Params, grads: Params, state: Any) -> None:
        """Check the (converted) ``params`` against ``grads`` and ``state``; subclasses add checks."""
        check_same_structure(params, grads, "params", "grads")
        self._check_state(params, state)

    def _leaf(
        self, t: int, w: np.ndarray, g: np.ndarray, *moments: np.ndarray
    ) -> tuple[np.ndarray, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, params: Params, grads: Params, state: Any) -> StepResult:
        """The update on validated inputs: :meth:`_leaf` on every parameter."""
        t = int(state.count) + 1
        old = [as_tree(getattr(state, f), f"state.{f}", self.dtype) for f in state._fields[1:]]
        keys = keys_of(params)
        leaves = [self._leaf(t, get(params, k), get(grads, k), *(get(m, k) for m in old)) for k in keys]
        w, *moments, u = (build(keys, list(col)) for col in zip(*leaves))
        return StepResult(w, self.state_type(t, *moments), u)

    def moments(self, state: Any) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
        """The stored moments of ``state`` by component name.

        Parameters
        ----------
        state : NamedTuple
            A state of this optimizer.

        Returns
        -------
        dict
            ``{"m": state.m}`` for Muon, ``{"m": state.m, "v": state.v}`` for Adam.
        """
        return {f: getattr(state, f) for f in state._fields[1:]}

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments except ``precision`` (JSON-serialisable).

        Returns
        -------
        dict
            Field name to value (``dtype`` as its name, ``"float64"`` or ``"float32"``).
        """
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        out = {f.name: getattr(self, f.name) for f in fields if f.name != "precision"}
        if "dtype" in out:
            out["dtype"] = out["dtype"].name
        return out

    def step(
        self, params: np.ndarray | dict[str, np.ndarray], grads: np.ndarray | dict[str, np.ndarray], state: Any
    ) -> StepResult:
        """One optimizer step, also returning the update.

        Parameters
        ----------
        params : numpy.ndarray or dict of numpy.ndarray
            Current parameters (real floating-point), converted to the optimizer's
            ``dtype``: exactly for float64; for float32, wider inputs are rounded to
            nearest, as ``torch.Tensor.float()`` would.
        grads : numpy.ndarray or dict of numpy.ndarray
            The quantized gradient :math:`g^Q`, same structure and shapes as
            ``params``. Floating-point widths may differ from ``params`` (every
            input is converted to ``dtype``, and the results are of ``dtype``);
            integer, bool, complex or object data is refused.
        state : NamedTuple
            The optimizer state from :meth:`init` or a previous step.

        Returns
        -------
        StepResult
            ``(params, state, update, skipped)``.

        Raises
        ------
        ValueError
            If structures or shapes disagree, or the state does not belong to this
            optimizer.
        TypeError
            If an input (``params``, ``grads`` or a state array) is not real
            floating-point data; the message names it.
        FloatingPointError
            If ``grads`` or a new state or parameter is NaN or infinite and
            ``nonfinite="raise"`` (the default).
        """
        params = as_tree(params, "params", self.dtype)
        grads = as_tree(grads, "grads", self.dtype)
        self._check_inputs(params, grads, state)
        t = int(state.count) + 1
        bad = first_nonfinite(grads, "grads")
        if bad is None:
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # reported below
                result = self._step(params, grads, state)
            for name, tree in (*self.moments(result.state).items(), ("params", result.params)):
                bad = bad or first_nonfinite(tree, name)  # a moment first: the cause, not its effect
            if bad is None:
                return result
        if self.nonfinite == "skip":
            return StepResult(params, state, tree_map(np.zeros_like, params), True)
        raise nonfinite_error(bad, t)

    def update(
        self, params: np.ndarray | dict[str, np.ndarray], grads: np.ndarray | dict[str, np.ndarray], state: Any
    ) -> tuple[np.ndarray | dict[str, np.ndarray], Any]:
        """One optimizer step.

        Parameters
        ----------
        params : numpy.ndarray or dict of numpy.ndarray
            Current parameters.
        grads : numpy.ndarray or dict of numpy.ndarray
            The quantized gradient :math:`g^Q` (see :func:`refopt.optim.quantized_grad`).
        state : NamedTuple
            The optimizer state.

        Returns
        -------
        tuple
            ``(new_params, new_state)``.

        Raises
        ------
        ValueError, TypeError, FloatingPointError
            As :meth:`step`.
        """
        result = self.step(params, grads, state)
        return result.params, result.state

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description: name, hyper-parameters and precision.

        Returns
        -------
        dict
            ``{"optimizer": name, **hyperparameters, "precision": precision.config()}``.

        Raises
        ------
        ValueError
            If the precision holds a callable that cannot be serialised.
        """
        return {"optimizer": self.name, **self.hyperparameters(), "precision": self.precision.config()}


def check_nonfinite_policy(nonfinite: object) -> str:
    """Validate the ``nonfinite`` argument."""
    return check_choice("nonfinite", nonfinite, NONFINITE_POLICIES)


def check_dtype(dtype: object, precision: Precision) -> np.dtype:
    """Validate the ``dtype`` argument of an optimizer against its ``precision``.

    Parameters
    ----------
    dtype : numpy.float64 or numpy.float32 (or their names or ``numpy.dtype``)
        The working precision of the optimizer's arithmetic and stored state.
    precision : Precision
        The optimizer's quantization policy.

    Returns
    -------
    numpy.dtype
        ``float64`` or ``float32``.

    Raises
    ------
    TypeError
        If ``dtype`` is not a dtype-like object.
    ValueError
        If ``dtype`` is neither float64 nor float32; or it is float32 and a
        component of ``precision`` is a callable quantizer or a format whose values
        are not all float32 values (e.g. ``"fp64"``): its results would be rounded a
        second time, to float32. The message names the component.
    """
    expected = "dtype must be numpy.float64 or numpy.float32"
    if not isinstance(dtype, (str, type, np.dtype)):
        raise TypeError(f"{expected}, got {type(dtype).__name__}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{expected}, got {dtype!r}") from None
    if dt not in (F64, F32):
        raise ValueError(f"{expected}, got {dt.name}")
    if dt == F32:
        for name in COMPONENTS:
            c = precision.component(name)
            if isinstance(c, FloatFormat) and c.fits_float32 or c is None:
                continue
            what = f"the format {c.name or c!r}" if isinstance(c, FloatFormat) else "a callable quantizer"
            raise ValueError(
                f"dtype=float32 needs every precision component to be exact or a format whose values "
                f"are float32 values, but component {name!r} is {what}: its results would be rounded "
                f"again to float32; use dtype=float64"
            )
    return dt
