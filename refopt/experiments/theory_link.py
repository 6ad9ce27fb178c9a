"""The bound's prediction for study 5, computed with :mod:`refopt.theory` when available."""

from __future__ import annotations

from typing import Any

__all__ = ["floor_bounds"]


def floor_bounds(records: list[dict[str, Any]]) -> dict[str, list[float]] | None:
    """Return, per format, the bound's prediction at each horizon of study 5 (or None).

    Parameters
    ----------
    records : list of dict
        The floors study's records.

    Returns
    -------
    dict of str to list of float or None
        None when :mod:`refopt.theory` has no Adam bound calculator yet.
    """
    return None
