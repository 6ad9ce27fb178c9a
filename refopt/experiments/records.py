"""Small helpers to read study records (parameters with defaults filled in)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from refopt.experiments.cells import DEFAULTS

__all__ = ["finite", "group", "param"]


def param(rec: dict[str, Any], key: str, cell: str = "trajectory") -> Any:
    """Return a record's parameter, falling back to the cell function's default.

    Parameters
    ----------
    rec : dict
        A runner record.
    key : str
        The parameter name.
    cell : str, default "trajectory"
        The cell function the record belongs to.

    Returns
    -------
    object
        The value.
    """
    return rec["params"].get(key, DEFAULTS[cell][key])


def group(records: Iterable[dict[str, Any]], *keys: str, cell: str = "trajectory") -> dict[tuple, list[dict[str, Any]]]:
    """Group records by the values of some parameters, keeping first-seen order.

    Parameters
    ----------
    records : iterable of dict
        Runner records.
    *keys : str
        Parameter names.
    cell : str, default "trajectory"
        The cell function the records belong to.

    Returns
    -------
    dict of tuple to list of dict
        ``{(value, ...): [record, ...]}``.
    """
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(tuple(param(r, k, cell) for k in keys), []).append(r)
    return out


def finite(x: float) -> bool:
    """Return whether ``x`` is a finite number (not None, NaN or infinite).

    Parameters
    ----------
    x : float or None
        A value.

    Returns
    -------
    bool
        The answer.
    """
    return x is not None and math.isfinite(x)
