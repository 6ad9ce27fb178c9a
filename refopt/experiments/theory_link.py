"""The bound's prediction for study 5, from :func:`refopt.theory.adam_bound`."""

from __future__ import annotations

import math
from typing import Any

from refopt.experiments.records import group, param

__all__ = ["floor_bounds"]


def floor_bounds(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Return, per format, the square root of refopt's Adam bound at each horizon.

    Parameters
    ----------
    records : list of dict
        The floors study's records (analysed Adam on a quadratic).

    Returns
    -------
    dict of str to list of float
        For each format, in increasing order of the horizon ``T``:
        :math:`\\sqrt{B}` where :math:`B` bounds :math:`\\mathbb{E}\\|\\nabla F(x_\\tau)\\|^2`
        (``inf`` when a condition of the bound fails, or the run diverged). The
        problem constants are ``d`` = entries, ``L`` from the problem,
        :math:`F(x_0) - F^\\star` = the first recorded loss; ``R`` and the weight-norm
        bound are the largest values measured along the run.

    Notes
    -----
    Provenance: refopt (the bound of :func:`refopt.theory.adam_bound`).
    """
    from refopt.theory import adam_bound, component_errors

    out: dict[str, list[float]] = {}
    for (fmt,), recs in group(records, "format").items():
        vals = []
        for r in sorted(recs, key=lambda r: param(r, "steps")):
            res = r["result"]
            if res["diverged"]:
                vals.append(math.inf)
                continue
            spec = None if fmt == "exact" else (int(fmt[1:]) if fmt[0] == "M" else fmt)
            q = component_errors({c: spec for c in ("W", "G", "M", "V")}, param(r, "rounding"))
            eps = param(r, "eps")
            shape = param(r, "shape")
            b = adam_bound(
                param(r, "steps"), param(r, "lr"), param(r, "b1"), param(r, "b2"), eps,
                shape[0] * shape[1], res["max_grad_inf"] + math.sqrt(eps), param(r, "L"), res["loss"][0],
                q_G=q.get("G", 0.0), q_W=q.get("W", 0.0), q_M=q.get("M", 0.0), q_V=q.get("V", 0.0),
                weight_norm=max(res["max_weight_norm"], 1e-300),
            )
            vals.append(math.sqrt(b.value))
        out[fmt] = vals
    return out
