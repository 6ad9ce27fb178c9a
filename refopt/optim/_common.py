"""Shared plumbing of the optimizers: parameter trees, argument checks, finiteness.

Parameters are either one array or a ``dict`` mapping names to arrays, of the
optimizer's working dtype (float64 by default, or float32). Every function here walks
dicts in **sorted key order**, so the order of the random draws of stochastic rounding
does not depend on how a dict was built.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Union

import numpy as np

Params = Union[np.ndarray, dict[str, np.ndarray]]
"""One array or a dict of named arrays (the optimizers' parameter "tree")."""

NONFINITE_POLICIES = ("raise", "skip")
F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)


class StepResult(NamedTuple):
    """What one optimizer step produced.

    Attributes
    ----------
    params : numpy.ndarray or dict
        The new parameters.
    state : NamedTuple
        The new optimizer state.
    update : numpy.ndarray or dict
        The step the optimizer subtracted (before the weight storage rounding and
        without the weight-decay term, see each optimizer); zeros for a skipped step.
    skipped : bool
        True when the step was skipped because of non-finite values
        (``nonfinite="skip"``); then ``params`` and ``state`` are the inputs.
    """

    params: Any
    state: Any
    update: Any
    skipped: bool = False


def check_real(name: str, value: object) -> float:
    """Return ``value`` as a finite float, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return v


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float > 0, or raise naming ``name``."""
    v = check_real(name, value)
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {v!r}")
    return v


def check_nonnegative(name: str, value: object) -> float:
    """Return ``value`` as a float >= 0, or raise naming ``name``."""
    v = check_real(name, value)
    if not v >= 0:
        raise ValueError(f"{name} must be >= 0, got {v!r}")
    return v


def check_beta(name: str, value: object) -> float:
    """Return ``value`` as a float in [0, 1), or raise naming ``name``."""
    v = check_real(name, value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {v!r}")
    return v


def check_choice(name: str, value: object, allowed: tuple[Any, ...]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise naming ``name``."""
    if not isinstance(value, (str, bool, type(None))) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool, else raise naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def as_float(x: object, name: str, dtype: np.dtype = F64) -> np.ndarray:
    """Return ``x`` as an array of ``dtype`` (float64 or float32) or raise naming ``name``.

    Real floating arrays of any width and sequences of real numbers are accepted and
    converted with NumPy's rounding to nearest (exact when ``dtype`` is at least as
    wide as the input); an array already of ``dtype`` is returned as is. Bool, integer
    arrays, complex and object data are refused.
    """
    if isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            raise TypeError(f"{name} must be a real floating-point array, got dtype {x.dtype}")
        return x if x.dtype == dtype else x.astype(dtype)
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be real floating-point data, got bool")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged sequences
        raise TypeError(f"{name} must be array-like real numbers: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be real floating-point data, got dtype {arr.dtype}")
    return arr.astype(dtype)


def keys_of(tree: Params) -> list[str | None]:
    """Sorted keys of a dict tree, ``[None]`` for a single array."""
    return sorted(tree) if isinstance(tree, dict) else [None]


def get(tree: Params, key: str | None) -> np.ndarray:
    """Leaf ``key`` of ``tree`` (``None`` for a single array)."""
    return tree if key is None else tree[key]  # type: ignore[index,return-value]


def build(keys: list[str | None], leaves: list[np.ndarray]) -> Params:
    """Inverse of :func:`keys_of`: one array, or a dict of the leaves."""
    if keys == [None]:
        return leaves[0]
    return dict(zip(keys, leaves))  # type: ignore[arg-type]


def tree_map(fn: Callable[[np.ndarray], np.ndarray], tree: Params) -> Params:
    """Apply ``fn`` to every leaf, in sorted key order."""
    keys = keys_of(tree)
    return build(keys, [fn(get(tree, k)) for k in keys])


def label(name: str, key: str | None) -> str:
    """Human-readable name of a leaf, e.g. ``grads['w1']``."""
    return name if key is None else f"{name}[{key!r}]"


def as_tree(tree: object, name: str, dtype: np.dtype = F64) -> Params:
    """Validate a parameter tree and return it with leaves of ``dtype`` (see :func:`as_float`).

    Raises
    ------
    TypeError
        If ``tree`` is neither array-like nor a dict of array-likes with str keys, or
        a leaf is not real floating-point data.
    ValueError
        If a dict is empty.
    """
    if isinstance(tree, Mapping):
        if not tree:
            raise ValueError(f"{name} must not be an empty dict")
        out = {}
        for k in tree:
            if not isinstance(k, str):
                raise TypeError(f"{name} keys must be str, got {type(k).__name__}")
            out[k] = as_float(tree[k], label(name, k), dtype)
        return out
    return as_float(tree, name, dtype)


def check_same_structure(ref: Params, other: Params, ref_name: str, name: str) -> None:
    """Raise ValueError unless ``other`` has the keys and leaf shapes of ``ref``."""
    if isinstance(ref, dict) != isinstance(other, dict):
        kind = "a dict" if isinstance(ref, dict) else "a single array"
        raise ValueError(f"{name} must be {kind} like {ref_name}")
    if isinstance(ref, dict) and sorted(ref) != sorted(other):  # type: ignore[arg-type]
        raise ValueError(f"{name} keys {sorted(other)} differ from {ref_name} keys {sorted(ref)}")
    for k in keys_of(ref):
        a, b = get(ref, k), get(other, k)
        if a.shape != b.shape:
            raise ValueError(f"{label(name, k)} has shape {b.shape}, {label(ref_name, k)} has {a.shape}")


def all_finite(x: np.ndarray) -> bool:
    """True if every element of ``x`` is finite (fast path: one reduction)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(np.add.reduce(x, axis=None))):
            return True
    return bool(np.isfinite(x).all())


def first_nonfinite(tree: Params, name: str) -> str | None:
    """Label of the first leaf holding a NaN or infinity, or None."""
    for k in keys_of(tree):
        if not all_finite(get(tree, k)):
            return label(name, k)
    return None


def nonfinite_error(what: str, step: int) -> FloatingPointError:
    """The error raised for a non-finite value under ``nonfinite="raise"``."""
    return FloatingPointError(
        f"{what} contains NaN or infinity at step {step}; pass nonfinite='skip' to skip such steps"
    )
