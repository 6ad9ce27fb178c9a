"""Mantissa budgets: how many mantissa bits each component needs for a horizon T, and back.

The relative error of an ``M``-bit mantissa is the unit roundoff of the rounding mode,
:math:`q = 2^{-(M+1)}` (round to nearest) or :math:`2^{-M}` (directed, odd, stochastic),
from :meth:`refopt.formats.FloatFormat.unit_roundoff`. The exponent range is ignored, as in
the paper's Assumption 3.1 (:prf:ref:`paper-assumption-3-1`): a named format "meets" a
budget when its mantissa does; whether its range avoids underflow and overflow on a given
problem is a separate question.

The tolerance is relative: the quantized bound may exceed the full-precision bound (same
``T``, same schedule, all ``q = 0``) by at most a fraction ``rho``
(:prf:ref:`refopt-def-mantissa-budget`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from refopt.formats import FloatFormat, format as get_format, list_formats
from refopt.theory.adam_bound import adam_bound
from refopt.theory.muon_bound import muon_bound
from refopt.theory.paper import paper_schedule
from refopt.theory.result import BoundResult, check_count, check_real

__all__ = [
    "COMPONENTS",
    "EXAMPLES",
    "MantissaBudget",
    "component_errors",
    "largest_horizon",
    "mantissa_budget",
    "scheduled_bound",
]

#: Quantized components per optimizer: weights, gradients, first and second moment.
COMPONENTS: dict[str, tuple[str, ...]] = {"adam": ("W", "G", "M", "V"), "muon": ("W", "G", "M")}

#: The default example problems (refopt's choice, documented in the theory pages).
EXAMPLES: dict[str, dict[str, float]] = {
    "adam": {"d": 10, "R": 1.0, "L": 1.0, "eps": 1e-8, "delta": 1.0, "b1": 0.9,
             "x0_norm": 1.0},
    "muon": {"rank": 10, "L": 1.0, "sigma": 1.0, "delta": 1.0, "grad_norm": 1.0,
             "w0_norm": 1.0},
}


def _optimizer(optimizer: str) -> str:
    if optimizer not in COMPONENTS:
        raise ValueError(f"optimizer must be 'adam' or 'muon', got {optimizer!r}")
    return optimizer


def scheduled_bound(optimizer: str, T: object, q: Mapping[str, float] | None = None,
                    constants: Mapping[str, float] | None = None,
                    schedule: Callable[[int], Mapping[str, float]] | None = None, *,
                    bits: Mapping[str, int | None] | None = None,
                    rounding: str = "nearest_even") -> BoundResult:
    """Evaluate refopt's bound at horizon ``T`` under a hyper-parameter schedule.

    Parameters
    ----------
    optimizer : {"adam", "muon"}
        Which bound.
    T : int
        Horizon (number of iterations).
    q : mapping of str to float, optional
        Relative errors per component (keys from :data:`refopt.theory.COMPONENTS`);
        missing components are exact.
    constants : mapping of str to float, optional
        Problem constants, overriding :data:`refopt.theory.EXAMPLES`.
    schedule : callable, optional
        ``T -> {"alpha": ..., "b2": ...}`` (Adam) or ``{"eta": ..., "beta": ...}``
        (Muon). Default: the paper's schedule (:func:`refopt.theory.paper_schedule`)
        with unit constants.
    bits : mapping of str to int or None, optional
        Mantissa lengths ``M`` per component (None: exact), the paper's variable; turned
        into :math:`q` by :func:`refopt.theory.component_errors` with ``rounding``.
        A component may not be given both in ``q`` and in ``bits``.
    rounding : str, default "nearest_even"
        Rounding mode for ``bits``.

    Returns
    -------
    BoundResult
        From :func:`refopt.theory.adam_bound` or :func:`refopt.theory.muon_bound`.

    Raises
    ------
    ValueError
        For an unknown optimizer or component, or a component in both ``q`` and ``bits``.

    Examples
    --------
    >>> from refopt.theory import scheduled_bound
    >>> res = scheduled_bound("muon", 10**4, bits={"W": 7, "G": 7, "M": 10})
    >>> res.inputs["q_M"] == 2.0**-11      # round to nearest: q = 2^-(M+1)
    True
    """
    opt = _optimizer(optimizer)
    n = check_count("T", T)
    consts = dict(EXAMPLES[opt])
    consts.update(constants or {})
    hyper = dict(schedule(n) if schedule is not None else paper_schedule(opt, n))
    q = dict(q or {})
    for comp, val in component_errors(bits or {}, rounding).items():
        if comp in q:
            raise ValueError(f"component {comp!r} is given both in q and in bits")
        q[comp] = val
    errs = {}
    for comp, val in q.items():
        if comp not in COMPONENTS[opt]:
            raise ValueError(f"component must be one of {COMPONENTS[opt]}, got {comp!r}")
        errs[f"q_{comp}"] = val
    if opt == "adam":
        return adam_bound(n, hyper["alpha"], consts["b1"], hyper["b2"], consts["eps"],
                          consts["d"], consts["R"], consts["L"], consts["delta"],
                          weight_norm=consts.get("weight_norm"), x0_norm=consts.get("x0_norm"),
                          **errs)
    return muon_bound(n, hyper["eta"], hyper["beta"], consts["rank"], consts["L"],
                      consts["sigma"], consts["delta"], consts["grad_norm"],
                      weight_norm=consts.get("weight_norm"), w0_norm=consts.get("w0_norm"),
                      **errs)


def component_errors(spec: Mapping[str, object], rounding: str = "nearest_even") -> dict[str, float]:
    """Relative errors per component from formats or mantissa lengths.

    Parameters
    ----------
    spec : mapping
        Component (``"W"``, ``"G"``, ``"M"``/``"m"``, ``"V"``/``"v"``) to a preset name,
        a :class:`refopt.formats.FloatFormat`, an int ``M`` (mantissa bits, the paper's
        model) or None (exact).
    rounding : str, default "nearest_even"
        Rounding mode; fixes :math:`q` through
        :meth:`refopt.formats.FloatFormat.unit_roundoff`.

    Returns
    -------
    dict of str to float
        Upper-case component to :math:`q`.

    Raises
    ------
    TypeError, ValueError
        For unknown components, formats or rounding modes.
    """
    out: dict[str, float] = {}
    for key, val in spec.items():
        comp = str(key).upper()
        if comp not in ("W", "G", "M", "V"):
            raise ValueError(f"component must be one of W, G, M, V, got {key!r}")
        if val is None:
            out[comp] = 0.0
        elif isinstance(val, int) and not isinstance(val, bool):
            out[comp] = FloatFormat.mantissa_only(val).unit_roundoff(rounding)
        else:
            out[comp] = get_format(val).unit_roundoff(rounding)  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class MantissaBudget:
    """Minimal mantissa bits per component for one horizon, and the formats that meet them.

    Parameters
    ----------
    optimizer : str
        ``"adam"`` or ``"muon"``.
    T : int
        Horizon.
    rho : float
        Allowed relative excess of the quantized over the full-precision bound.
    rounding : str
        Rounding mode.
    bits : dict of str to int or None
        Minimal mantissa bits per component (None: more than 52 bits needed).
    q : dict of str to float
        The unit roundoff at those bits.
    formats : dict of str to list of str
        Preset formats whose unit roundoff is at most ``q``.
    full_precision : float
        The bound with all components exact.
    quantized : float
        The bound with every component at its budget (at most
        ``(1 + rho) * full_precision`` when all budgets exist).
    """

    optimizer: str
    T: int
    rho: float
    rounding: str
    bits: dict[str, int | None]
    q: dict[str, float]
    formats: dict[str, list[str]]
    full_precision: float
    quantized: float

    def __str__(self) -> str:
        lines = [f"mantissa budget: {self.optimizer}, T = {self.T}, rho = {self.rho:g}, "
                 f"rounding = {self.rounding}",
                 f"  full-precision bound {self.full_precision:.4g}; with these budgets "
                 f"{self.quantized:.4g}",
                 f"  M = stored mantissa bits; q = unit roundoff of {self.rounding} at M bits"]
        for comp, m in self.bits.items():
            label = f"{_LABELS[comp]:<16}"
            if m is None:
                lines.append(f"  {label} needs more than 52 mantissa bits (no format)")
                continue
            fmts = ", ".join(self.formats[comp]) or "none of the presets"
            lines.append(f"  {label} M >= {m:2d} bits (q = {self.q[comp]:.3g}); meets: {fmts}")
        return "\n".join(lines)


_LABELS = {"W": "W (weights):", "G": "G (gradients):", "M": "m (momentum):",
           "V": "v (2nd moment):"}


def _q_bits(m: int, rounding: str) -> float:
    return FloatFormat.mantissa_only(m).unit_roundoff(rounding)


def _excess(optimizer: str, T: int, q: Mapping[str, float], constants: Mapping[str, float] | None,
            schedule: Callable[[int], Mapping[str, float]] | None, base: float) -> float:
    val = scheduled_bound(optimizer, T, q, constants, schedule).value
    return val / base - 1.0


def mantissa_budget(optimizer: str, T: object, *, rho: float = 0.1,
                    rounding: str = "nearest_even",
                    constants: Mapping[str, float] | None = None,
                    schedule: Callable[[int], Mapping[str, float]] | None = None) -> MantissaBudget:
    """Minimal mantissa length per component so the bound stays within ``rho``.

    Parameters
    ----------
    optimizer : {"adam", "muon"}
        Which bound.
    T : int
        Horizon.
    rho : float, default 0.1
        Tolerance: quantized bound at most ``(1 + rho)`` times the full-precision bound.
    rounding : str, default "nearest_even"
        Rounding mode (sets :math:`q` per mantissa length).
    constants, schedule : optional
        As for :func:`refopt.theory.scheduled_bound`.

    Returns
    -------
    MantissaBudget
        Per component, the least ``M`` with the component alone at ``M`` bits
        costing at most ``rho / k`` (``k`` components); then all components together are
        checked against ``rho`` and, while they fail, the component whose error costs most
        on its own gets one more bit.

    Raises
    ------
    ValueError
        For bad inputs, or when the full-precision bound itself is infinite.

    Notes
    -----
    Provenance: refopt, :prf:ref:`refopt-def-mantissa-budget`. The bound is
    non-decreasing in each :math:`q` (hence in :math:`2^{-M}`), so each minimum is
    found by bisection over ``M`` in 0..52.
    """
    opt = _optimizer(optimizer)
    n = check_count("T", T)
    tol = check_real("rho", rho, lo=0.0, lo_open=True)
    base = scheduled_bound(opt, n, None, constants, schedule)
    if not math.isfinite(base.value):
        raise ValueError(f"the full-precision bound is infinite at T = {n}: {base.failed}")
    comps = COMPONENTS[opt]
    share = tol / len(comps)
    bits: dict[str, int | None] = {}
    for comp in comps:
        def ok(m: int, comp: str = comp) -> bool:
            return _excess(opt, n, {comp: _q_bits(m, rounding)}, constants, schedule,
                           base.value) <= share
        if not ok(52):
            bits[comp] = None
            continue
        lo, hi = -1, 52          # ok(hi) holds; find the least such m
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if mid >= 0 and ok(mid):
                hi = mid
            else:
                lo = mid
        bits[comp] = hi

    def joint(b: Mapping[str, int | None]) -> float:
        q = {c: _q_bits(m, rounding) for c, m in b.items() if m is not None}
        return scheduled_bound(opt, n, q, constants, schedule).value

    quantized = joint(bits)
    while quantized > (1.0 + tol) * base.value:
        # the terms interact a little: add a bit to the component that costs most alone
        costs = {c: _excess(opt, n, {c: _q_bits(m, rounding)}, constants, schedule, base.value)
                 for c, m in bits.items() if m is not None and m < 52}
        if not costs:
            break
        worst = max(costs, key=lambda c: costs[c])
        bits[worst] = bits[worst] + 1  # type: ignore[operator]
        quantized = joint(bits)
    qs = {c: _q_bits(m, rounding) for c, m in bits.items() if m is not None}
    presets = sorted(list_formats().items(), key=lambda kv: kv[1].mantissa_bits)
    fmts = {c: [name for name, f in presets if f.unit_roundoff(rounding) <= qs[c]]
            for c in qs}
    fmts.update({c: [] for c, m in bits.items() if m is None})
    return MantissaBudget(opt, n, tol, rounding, bits, qs, fmts, base.value, quantized)


def largest_horizon(optimizer: str, spec: Mapping[str, object], *, rho: float = 0.1,
                    rounding: str = "nearest_even",
                    constants: Mapping[str, float] | None = None,
                    schedule: Callable[[int], Mapping[str, float]] | None = None,
                    T_min: int = 16, T_max: int = 10**12) -> int:
    """The largest horizon ``T`` for which given formats stay within ``rho`` of full precision.

    Parameters
    ----------
    optimizer : {"adam", "muon"}
        Which bound.
    spec : mapping
        Component to format, mantissa length or None, as for
        :func:`refopt.theory.component_errors`.
    rho : float, default 0.1
        Tolerance on the relative excess of the bound.
    rounding : str, default "nearest_even"
        Rounding mode.
    constants, schedule : optional
        As for :func:`refopt.theory.scheduled_bound`.
    T_min, T_max : int
        Search range.

    Returns
    -------
    int
        The largest ``T`` in ``[T_min, T_max]`` such that every horizon from ``T_min``
        up to it that the search visits passes (``T_min - 1`` if ``T_min`` already fails,
        ``T_max`` if nothing fails). The search doubles ``T`` and then bisects, which is
        exact when the relative excess grows with ``T`` (it does for the paper's
        schedules: the quantization terms decay more slowly than the full-precision
        bound).

    Raises
    ------
    ValueError
        For bad inputs.

    Notes
    -----
    Provenance: refopt, :prf:ref:`refopt-def-mantissa-budget`.
    """
    opt = _optimizer(optimizer)
    tol = check_real("rho", rho, lo=0.0, lo_open=True)
    t_lo, t_hi = check_count("T_min", T_min), check_count("T_max", T_max)
    q = component_errors(spec, rounding)

    def ok(t: int) -> bool:
        base = scheduled_bound(opt, t, None, constants, schedule).value
        return _excess(opt, t, q, constants, schedule, base) <= tol

    if not ok(t_lo):
        return t_lo - 1
    good, t = t_lo, t_lo
    while True:
        nxt = min(2 * t, t_hi)
        if not ok(nxt):
            bad = nxt
            break
        good = nxt
        if nxt == t_hi:
            return t_hi
        t = nxt
    while bad - good > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good
