"""Muon for the matrices of a model, Adam for its other parameters.

Signatures::

    muon_adam(muon_opt, adam_opt) -> MuonAdam
    MuonAdam.init(params) -> MuonAdamState(count, muon, adam)
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np

from refopt.optim._common import Params, StepResult, as_tree, keys_of
from refopt.optim.adam import Adam, AdamState
from refopt.optim.base import Optimizer
from refopt.optim.muon import Muon, MuonState
from refopt.optim.precision import Precision

__all__ = ["MuonAdam", "MuonAdamState", "muon_adam", "split_matrices"]


class MuonAdamState(NamedTuple):
    """State of :class:`refopt.optim.MuonAdam`.

    Attributes
    ----------
    count : int
        Number of steps taken.
    muon : MuonState
        State of the Muon part (2-D parameters).
    adam : AdamState or None
        State of the Adam part (the other parameters; None if there are none).
    """

    count: int
    muon: MuonState | None
    adam: AdamState | None


def split_matrices(params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Sorted keys of the 2-D parameters and of the others.

    Parameters
    ----------
    params : dict of numpy.ndarray
        Named parameters.

    Returns
    -------
    tuple of two lists
        ``(matrix_keys, other_keys)``.
    """
    keys = sorted(params)
    return [k for k in keys if params[k].ndim == 2], [k for k in keys if params[k].ndim != 2]


def _sub(tree: Params, keys: list[str]) -> dict[str, Any] | None:
    return {k: tree[k] for k in keys} if keys else None  # type: ignore[index]


@dataclasses.dataclass(frozen=True, eq=False)
class MuonAdam(Optimizer):
    """Muon on 2-D parameters, Adam on the rest; build with :func:`refopt.optim.muon_adam`."""

    muon: Muon
    adam: Adam
    precision: Precision
    name = "muon_adam"

    @property
    def nonfinite(self) -> str:  # type: ignore[override]
        """The non-finite policy (shared by both parts)."""
        return self.muon.nonfinite

    @property
    def dtype(self) -> np.dtype:  # type: ignore[override]
        """The working dtype (shared by both parts)."""
        return self.muon.dtype

    def _check_params(self, params: object) -> dict[str, Any]:
        tree = as_tree(params, "params", self.dtype)
        if not isinstance(tree, dict):
            raise TypeError("muon_adam needs params as a dict of named arrays")
        return tree

    def init(self, params: np.ndarray | dict[str, np.ndarray]) -> MuonAdamState:
        """Initial states of both parts.

        Parameters
        ----------
        params : dict of numpy.ndarray
            Named parameters; the 2-D ones go to Muon, the others to Adam.

        Returns
        -------
        MuonAdamState
            ``MuonAdamState(0, muon_state, adam_state)``.

        Raises
        ------
        TypeError
            If ``params`` is not a dict.
        """
        tree = self._check_params(params)
        mats, rest = split_matrices(tree)
        m = _sub(tree, mats)
        a = _sub(tree, rest)
        return MuonAdamState(
            0, None if m is None else self.muon.init(m), None if a is None else self.adam.init(a)
        )

    def _check_state(self, params: Params, state: Any) -> None:
        if not isinstance(state, MuonAdamState):
            raise TypeError(f"state must be a MuonAdamState (from MuonAdam.init), got {type(state).__name__}")
        tree = self._check_params(params)
        mats, rest = split_matrices(tree)
        for keys, sub, opt in ((mats, state.muon, self.muon), (rest, state.adam, self.adam)):
            if (sub is None) != (not keys):
                raise ValueError("state does not match the parameters' split into matrices and others")
            if keys:
                opt._check_state(_sub(tree, keys), sub)  # type: ignore[arg-type]

    def moments(self, state: MuonAdamState) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
        """The momentum of every parameter (``"m"``) and Adam's second moments (``"v"``).

        Parameters
        ----------
        state : MuonAdamState
            A state of this optimizer.

        Returns
        -------
        dict
            ``{"m": {...all keys...}, "v": {...Adam keys...}}`` (``"v"`` absent when
            every parameter is a matrix).
        """
        m: dict[str, Any] = {}
        out: dict[str, Params] = {"m": m}
        if state.muon is not None:
            m.update(state.muon.m)  # type: ignore[arg-type]
        if state.adam is not None:
            m.update(state.adam.m)  # type: ignore[arg-type]
            out["v"] = state.adam.v
        out["m"] = {k: m[k] for k in sorted(m)}
        return out

    def hyperparameters(self) -> dict[str, Any]:
        """Both parts' configurations (without the shared precision).

        Returns
        -------
        dict
            ``{"muon": {...}, "adam": {...}}``.
        """
        return {"muon": self.muon.hyperparameters(), "adam": self.adam.hyperparameters()}

    def _step(self, params: Params, grads: Params, state: MuonAdamState) -> StepResult:
        mats, rest = split_matrices(params)  # type: ignore[arg-type]
        new_p: dict[str, Any] = {}
        upd: dict[str, Any] = {}
        sm, sa = state.muon, state.adam
        if mats:
            r = self.muon._step(_sub(params, mats), _sub(grads, mats), state.muon)  # type: ignore[arg-type]
            new_p.update(r.params)
            upd.update(r.update)
            sm = r.state
        if rest:
            r = self.adam._step(_sub(params, rest), _sub(grads, rest), state.adam)  # type: ignore[arg-type]
            new_p.update(r.params)
            upd.update(r.update)
            sa = r.state
        order = keys_of(params)
        new_state = MuonAdamState(state.count + 1, sm, sa)
        return StepResult({k: new_p[k] for k in order}, new_state, {k: upd[k] for k in order})


def muon_adam(muon_opt: Muon, adam_opt: Adam) -> MuonAdam:
    """Combine Muon (for 2-D parameters) and Adam (for the others) under one precision.

    Parameters
    ----------
    muon_opt : Muon
        From :func:`refopt.optim.muon`.
    adam_opt : Adam
        From :func:`refopt.optim.adam`; must have the same precision policy (equal
        components and rounding, and the same generator object), the same
        ``nonfinite`` policy and the same ``dtype``.

    Returns
    -------
    MuonAdam
        An optimizer over dicts of parameters: each 2-D array is updated by Muon,
        every other array by Adam; the step count is shared. Parameters are visited
        in sorted key order within each part, Muon's part first.

    Raises
    ------
    TypeError
        If the arguments are not a Muon and an Adam optimizer.
    ValueError
        If their precision or ``nonfinite`` policies or their ``dtype`` differ.

    Notes
    -----
    This is the arrangement of Muon experiments on networks (and of the paper's MLP
    experiment): Muon's orthogonalized update is only defined for matrices, so
    biases and other vectors use (quantized) Adam.

    Provenance: refopt (the standard Muon + auxiliary Adam arrangement).
    """
    if not isinstance(muon_opt, Muon):
        raise TypeError(f"muon_opt must be a Muon optimizer, got {type(muon_opt).__name__}")
    if not isinstance(adam_opt, Adam):
        raise TypeError(f"adam_opt must be an Adam optimizer, got {type(adam_opt).__name__}")
    if muon_opt.precision != adam_opt.precision:
        raise ValueError("muon_opt and adam_opt must share one precision policy (pass the same Precision)")
    if muon_opt.nonfinite != adam_opt.nonfinite:
        raise ValueError("muon_opt and adam_opt must have the same nonfinite policy")
    if muon_opt.dtype != adam_opt.dtype:
        raise ValueError(f"muon_opt and adam_opt must have the same dtype, got {muon_opt.dtype} and {adam_opt.dtype}")
    return MuonAdam(muon_opt, adam_opt, muon_opt.precision)

