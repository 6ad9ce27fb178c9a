"""The shape every refopt optimizer shares (optax-like, pure, explicit state).

An optimizer is an immutable object with

- ``init(params) -> state``: a NamedTuple whose first field is the step ``count``;
- ``update(params, grads, state) -> (params, state)``: one step, given the gradient
  **already quantized**, :math:`g^Q = Q_G(\\nabla f(Q_W(w)))` (use
  :func:`refopt.optim.quantized_grad` to get it in the framework's order);
- ``step(params, grads, state) -> StepResult``: the same, also returning the update;
- ``config() -> dict``: a JSON-serialisable description (see
  :func:`refopt.optim.optimizer_from_config`).

Inputs are never modified; results are new float64 arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refopt.optim._common import (
    NONFINITE_POLICIES,
    StepResult,
    as_tree,
    check_choice,
    check_same_structure,
    first_nonfinite,
    nonfinite_error,
    tree_map,
)
from refopt.optim.precision import Precision

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

    Subclasses set ``name`` and implement ``init``, ``_check_state``, ``_step`` (the
    update on validated inputs), ``moments`` and ``hyperparameters``.
    """

    name: str = ""
    precision: Precision
    nonfinite: str = "raise"

    def init(self, params: np.ndarray | dict[str, np.ndarray]) -> Any:  # pragma: no cover - abstract
        """Return the initial state for ``params``."""
        raise NotImplementedError

    def _check_state(
        self, params: np.ndarray | dict[str, np.ndarray], state: Any
    ) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(
        self,
        params: np.ndarray | dict[str, np.ndarray],
        grads: np.ndarray | dict[str, np.ndarray],
        state: Any,
    ) -> StepResult:  # pragma: no cover
        raise NotImplementedError

    def moments(
        self, state: Any
    ) -> dict[str, np.ndarray | dict[str, np.ndarray]]:  # pragma: no cover - abstract
        """The stored moments of ``state`` by component name (``"m"``, ``"v"``)."""
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """The constructor arguments except ``precision`` (JSON-serialisable)."""
        raise NotImplementedError

    def step(
        self,
        params: np.ndarray | dict[str, np.ndarray],
        grads: np.ndarray | dict[str, np.ndarray],
        state: Any,
    ) -> StepResult:
        """One optimizer step, also returning the update.

        Parameters
        ----------
        params : numpy.ndarray or dict of numpy.ndarray
            Current parameters (real floating-point; converted exactly to float64).
        grads : numpy.ndarray or dict of numpy.ndarray
            The quantized gradient :math:`g^Q`, same structure and shapes as
            ``params``.
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
            If an input is not real floating-point data.
        FloatingPointError
            If ``grads`` or a new state or parameter is NaN or infinite and
            ``nonfinite="raise"`` (the default).
        """
        params = as_tree(params, "params")
        grads = as_tree(grads, "grads")
        check_same_structure(params, grads, "params", "grads")
        self._check_state(params, state)
        t = int(state.count) + 1
        bad = first_nonfinite(grads, "grads")
        if bad is None:
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # reported below
                result = self._step(params, grads, state)
            bad = first_nonfinite(result.params, "params")
            for name, tree in self.moments(result.state).items():
                bad = bad or first_nonfinite(tree, name)
            if bad is None:
                return result
        if self.nonfinite == "skip":
            return StepResult(params, state, tree_map(np.zeros_like, params), True)
        raise nonfinite_error(bad, t)

    def update(
        self,
        params: np.ndarray | dict[str, np.ndarray],
        grads: np.ndarray | dict[str, np.ndarray],
        state: Any,
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
