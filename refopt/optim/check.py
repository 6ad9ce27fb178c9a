"""The oracle checker: where does another implementation's trace first diverge?

Signatures::

    check_trace(theirs, *, against=None, ulps=0.0) -> CheckReport
    ulp_distance(a, b, fmt=None) -> float

Another implementation (PyTorch, JAX, CUDA...) records its run in the trace layout of
:class:`refopt.optim.Trace` (the ``config`` JSON names the optimizer and its precision as
``opt.config()`` does; golden vectors from ``refopt vectors`` carry ready-made configs).
:func:`refopt.optim.check_trace` replays the same optimizer from the trace's own inputs (the first
weights and the oracle's gradient ``g`` at every step), in the framework's order, and
compares every recorded quantity, step by step, in the order it is computed:
``w, wq, gq, m, v, update`` and finally ``final``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from refopt.formats import FloatFormat
from refopt.formats import format as resolve_format
from refopt.optim._common import check_nonnegative
from refopt.optim.base import Optimizer
from refopt.optim.registry import optimizer_from_config
from refopt.optim.trace import Trace, run

__all__ = ["CheckReport", "Divergence", "check_trace", "ulp_distance"]

COMPARED = ("w", "wq", "gq", "m", "v", "update")
"""Per-step quantities compared, in computation order."""


def ulp_distance(a: float, b: float, fmt: FloatFormat | str | None = None) -> float:
    r"""Distance between two numbers in units in the last place of a format.

    Parameters
    ----------
    a, b : float
        The two values.
    fmt : FloatFormat or str, optional
        The format whose ULP is the unit (default fp64).

    Returns
    -------
    float
        :math:`|a - b| / \mathrm{ulp}(\max(|a|, |b|))` where
        :math:`\mathrm{ulp}(x) = 2^{\max(\lfloor\log_2 x\rfloor, e_{\min}) - M}`;
        0 for equal values (and for two NaNs), infinity when exactly one is NaN or
        the values are unequal infinities.
    """
    fmt = resolve_format("fp64" if fmt is None else fmt)
    a, b = float(a), float(b)
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    big = max(abs(a), abs(b))
    e = max(math.frexp(big)[1] - 1, fmt.emin)
    return abs(a - b) / math.ldexp(1.0, e - fmt.mantissa_bits)


@dataclass(frozen=True)
class Divergence:
    """The first place two traces disagree.

    Attributes
    ----------
    step : int
        The step :math:`t` (1-based; ``steps + 1`` for ``final``).
    component : str
        ``w``, ``wq``, ``gq``, ``m``, ``v``, ``update`` or ``final``.
    key : str or None
        The parameter name for dict parameters.
    index : tuple of int
        The element's index within the parameter.
    theirs, ours : float
        The two values.
    ulps : float
        Their distance in ULPs of ``format_name``.
    format_name : str
        The format the component is stored in (fp64 when unquantized).
    """

    step: int
    component: str
    key: str | None
    index: tuple[int, ...]
    theirs: float
    ours: float
    ulps: float
    format_name: str

    def __str__(self) -> str:
        where = self.component if self.key is None else f"{self.component}[{self.key!r}]"
        return (
            f"first divergence at step {self.step}, {where}{list(self.index)}: theirs {self.theirs!r} "
            f"({self.theirs.hex()}), reference {self.ours!r} ({self.ours.hex()}), "
            f"{self.ulps:.6g} ULP of {self.format_name}"
        )


@dataclass(frozen=True)
class CheckReport:
    """Outcome of :func:`refopt.optim.check_trace`.

    Attributes
    ----------
    ok : bool
        True when every compared value agrees (within ``ulps``).
    steps : int
        Number of steps compared.
    compared : tuple of str
        The components compared.
    divergence : Divergence or None
        The first disagreement.
    """

    ok: bool
    steps: int
    compared: tuple[str, ...]
    divergence: Divergence | None

    def __str__(self) -> str:
        head = f"compared {', '.join(self.compared)} over {self.steps} steps"
        return f"OK: {head}; all values agree" if self.ok else f"DIVERGED: {head}; {self.divergence}"


def _format_name(fmt: FloatFormat | None) -> str:
    return "fp64" if fmt is None else (fmt.name or repr(fmt))


def _formats(opt: Optimizer | None) -> dict[str, FloatFormat | None]:
    if opt is None:
        return {}
    P = opt.precision
    storage = not getattr(opt, "master_weights", getattr(getattr(opt, "muon", None), "master_weights", True))
    return {
        "w": P.format_of("weights") if storage else None,
        "final": P.format_of("weights") if storage else None,
        "wq": P.format_of("weights"),
        "gq": P.format_of("grads"),
        "m": P.format_of("m"),
        "v": P.format_of("v"),
    }


def _first_difference(
    theirs: Any, ours: Any, tol: float, fmt: FloatFormat | None
) -> tuple[tuple[int, ...], float, float, float] | None:
    a = np.asarray(theirs, dtype=np.float64)
    b = np.asarray(ours, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape {a.shape} in the trace, {b.shape} in the reference")
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if tol > 0:
        idx = np.flatnonzero(~same)
        dist = [ulp_distance(a.flat[i], b.flat[i], fmt) for i in idx]
        bad = [i for i, d in zip(idx, dist) if d > tol]
    else:
        bad = np.flatnonzero(~same)[:1].tolist()
    if not len(bad):
        return None
    i = int(bad[0])
    x, y = float(a.flat[i]), float(b.flat[i])
    return tuple(int(j) for j in np.unravel_index(i, a.shape)), x, y, ulp_distance(x, y, fmt)


def _row(trace: Trace, name: str, key: str | None, i: int) -> np.ndarray | None:
    flat = name if key is None else f"{name}/{key}"
    arr = trace.arrays.get(flat)
    return None if arr is None else arr[i]


def _replay(theirs: Trace) -> tuple[Optimizer, Trace]:
    cfg = theirs.config
    if cfg.get("optimizer") is None:
        raise ValueError("the trace has no optimizer config; pass --against a reference trace")
    if int(cfg.get("every", 1)) != 1:
        raise ValueError("recomputing needs a trace recorded at every step (every=1)")
    record = cfg.get("record", [])
    opt = optimizer_from_config(cfg["optimizer"])
    keys: list[str | None] = list(cfg.get("keys") or []) or [None]
    for need in ("w", "g"):
        if need not in record:
            raise ValueError(f"recomputing needs {need!r} recorded at every step")
    w0 = {k: _row(theirs, "w", k, 0) for k in keys} if keys != [None] else _row(theirs, "w", None, 0)
    grads = [
        {k: _row(theirs, "g", k, i) for k in keys} if keys != [None] else _row(theirs, "g", None, i)
        for i in range(len(theirs.steps))
    ]
    feed = iter(grads)
    ref = run(lambda wq: next(feed), opt, w0, len(grads), rng=None, record=record)
    return opt, ref


def check_trace(
    theirs: Trace | str | os.PathLike[str],
    *,
    against: Trace | str | os.PathLike[str] | None = None,
    ulps: float = 0.0,
) -> CheckReport:
    """Find the first place a trace diverges from refopt's reference.

    Parameters
    ----------
    theirs : Trace or path
        The trace to check (a :class:`refopt.optim.Trace` or an ``.npz`` file).
    against : Trace or path, optional
        A reference trace to compare with directly. When omitted, the reference is
        recomputed: the optimizer named in ``theirs.config`` is rebuilt
        (:func:`refopt.optim.optimizer_from_config`, including the recorded state of
        a stochastic-rounding generator) and run from ``theirs``'s first weights,
        fed with ``theirs``'s oracle gradients ``g`` step by step; this needs ``w``
        and ``g`` recorded at every step.
    ulps : float, default 0
        Tolerance: values at most this many ULPs apart (in the component's format)
        count as equal. 0 demands bit-identical values (NaN equals NaN).

    Returns
    -------
    CheckReport
        ``ok`` and, if not, the first :class:`refopt.optim.Divergence`
        (step, component, parameter key, index, both values, ULP distance).

    Raises
    ------
    ValueError
        If the trace cannot be replayed (no config, not recorded at every step,
        ``w``/``g`` missing) or shapes disagree.

    Notes
    -----
    Quantities are compared step by step in the order they are computed,
    ``w, wq, gq, m, v, update``, and ``final`` last, so the report names the first
    operation that went wrong rather than its consequences. ULP distances use the
    component's storage format (fp64 for unquantized ones). With a stochastic
    rounding policy the replay reproduces refopt's own draws (the generator state is
    in the config); another implementation can only match that with the same
    generator, so check it with deterministic rounding modes.
    """
    tol = check_nonnegative("ulps", ulps)
    theirs = theirs if isinstance(theirs, Trace) else Trace.load(theirs)
    if against is None:  # recompute the reference from their inputs
        opt, ref = _replay(theirs)
    else:
        ref = against if isinstance(against, Trace) else Trace.load(against)
        cfg = ref.config.get("optimizer")
        opt = optimizer_from_config(cfg) if cfg else None
    fmts = _formats(opt)
    keys: list[str | None] = list(theirs.config.get("keys") or []) or [None]
    names = [n for n in COMPARED if n in theirs.config.get("record", []) and n in ref.config.get("record", [])]
    steps = min(len(theirs.steps), len(ref.steps))
    if len(theirs.steps) and not np.array_equal(theirs.steps[:steps], ref.steps[:steps]):
        raise ValueError("the two traces recorded different steps")
    # [docs:check-loop:start]
    for i in range(steps):  # step by step, in the order the quantities are computed
        for name in names:
            for k in keys:
                a, b = _row(theirs, name, k, i), _row(ref, name, k, i)
                if a is None or b is None:
                    continue
                diff = _first_difference(a, b, tol, fmts.get(name))
                if diff is not None:
                    div = Divergence(int(theirs.steps[i]), name, k, *diff, _format_name(fmts.get(name)))
                    return CheckReport(False, i + 1, tuple(names), div)
    # [docs:check-loop:end]
    final_step = int(theirs.config.get("steps", steps)) + 1
    for k in keys:
        a, b = _row_final(theirs, k), _row_final(ref, k)
        if a is not None and b is not None and steps == len(theirs.steps) == len(ref.steps):
            diff = _first_difference(a, b, tol, fmts.get("final"))
            if diff is not None:
                div = Divergence(final_step, "final", k, *diff, _format_name(fmts.get("final")))
                return CheckReport(False, steps, tuple(names), div)
    return CheckReport(True, steps, tuple(names), None)


def _row_final(trace: Trace, key: str | None) -> np.ndarray | None:
    return trace.arrays.get("final" if key is None else f"final/{key}")
