"""The result object every bound calculator returns, and the shared input checks."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["BoundResult"]


@dataclass(frozen=True)
class BoundResult:
    """A convergence bound: its value, its named terms and the conditions it needs.

    Parameters
    ----------
    name : str
        What is bounded and by which result, e.g.
        ``"refopt quantized Adam: E||grad F(x_tau)||^2"``.
    value : float
        The bound: the sum of ``terms`` when every condition holds, ``math.inf``
        otherwise. Never negative, never NaN.
    terms : dict of str to float
        The additive pieces of the bound, each non-negative (empty when a condition
        fails, because the formulas are then meaningless).
    conditions : dict of str to tuple of (bool, str)
        Each hypothesis of the result: whether it holds for the inputs, and why.
    provenance : str
        ``"paper"``, ``"Défossez 2022"`` or ``"refopt"`` (see the provenance rule).
    reference : str
        The docs label of the statement (``"refopt-theorem-adam-quantized"``) and the
        published number where there is one.
    inputs : dict of str to float
        The inputs the value was computed from, for the table.
    extra : dict of str to float
        Derived quantities worth showing (effective parameters, weight-norm bound).

    Notes
    -----
    Build instances with :meth:`BoundResult.build`, which enforces the invariants.
    """

    name: str
    value: float
    terms: dict[str, float]
    conditions: dict[str, tuple[bool, str]]
    provenance: str
    reference: str
    inputs: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        name: str,
        terms: Mapping[str, float] | None,
        conditions: Mapping[str, tuple[bool, str]],
        provenance: str,
        reference: str,
        inputs: Mapping[str, float] | None = None,
        extra: Mapping[str, float] | None = None,
    ) -> BoundResult:
        """Assemble a result, setting ``value = inf`` when a condition fails.

        Parameters
        ----------
        name, provenance, reference : str
            As for the class.
        terms : mapping of str to float or None
            The terms; ignored (may be None) when a condition fails.
        conditions : mapping of str to tuple of (bool, str)
            The hypotheses and whether they hold.
        inputs, extra : mapping of str to float, optional
            Shown in the table.

        Returns
        -------
        BoundResult
            The result.

        Raises
        ------
        ArithmeticError
            If all conditions hold but a term is negative or NaN (a bug, not bad input).
        """
        conds = {k: (bool(ok), str(why)) for k, (ok, why) in conditions.items()}
        if all(ok for ok, _ in conds.values()):
            clean = {k: float(v) for k, v in (terms or {}).items()}
            for key, val in clean.items():
                if math.isnan(val) or val < 0.0:
                    raise ArithmeticError(f"term {key!r} = {val!r} is negative or NaN")
            value = math.fsum(clean.values()) if clean else 0.0
            if math.isinf(value) or any(math.isinf(v) for v in clean.values()):
                value = math.inf
        else:
            clean, value = {}, math.inf
        return cls(name, value, clean, conds, provenance, reference,
                   dict(inputs or {}), dict(extra or {}))

    @property
    def valid(self) -> bool:
        """True when every condition holds (then ``value`` is finite or a true inf)."""
        return all(ok for ok, _ in self.conditions.values())

    @property
    def failed(self) -> list[str]:
        """The names of the conditions that do not hold."""
        return [k for k, (ok, _) in self.conditions.items() if not ok]

    def dominant(self) -> str | None:
        """Return the name of the largest term (None when there are no terms).

        Returns
        -------
        str or None
            The key of ``terms`` with the largest value.
        """
        if not self.terms:
            return None
        return max(self.terms, key=lambda k: self.terms[k])

    def __str__(self) -> str:
        lines = [self.name, f"  provenance: {self.provenance} ({self.reference})"]
        if self.inputs:
            lines.extend(textwrap.wrap(
                ", ".join(f"{k}={_fmt(v)}" for k, v in self.inputs.items()), 88,
                initial_indent="  inputs: ", subsequent_indent="          "))
        width = max([len(k) for k in self.terms] + [len(k) for k in self.extra] + [10])
        if self.terms:
            lines.append(f"  {'term':<{width}}  {'value':>12}  {'share':>7}")
            for key, val in self.terms.items():
                share = val / self.value if self.value > 0 and math.isfinite(self.value) else 0.0
                lines.append(f"  {key:<{width}}  {_fmt(val):>12}  {share:>7.1%}")
        lines.append(f"  {'TOTAL':<{width}}  {_fmt(self.value):>12}")
        for key, val in self.extra.items():
            lines.append(f"  {key:<{width}}  {_fmt(val):>12}")
        lines.append("  conditions:")
        for key, (ok, why) in self.conditions.items():
            lines.append(f"    [{'ok' if ok else 'FAILED'}] {key}: {why}")
        return "\n".join(lines)


def _fmt(x: float) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


# -- input checks shared by the calculators ---------------------------------------------

def check_real(name: str, x: object, *, lo: float = -math.inf, lo_open: bool = False,
               hi: float = math.inf, hi_open: bool = False) -> float:
    """Return ``x`` as a finite float in the given interval, or raise.

    Parameters
    ----------
    name : str
        The argument's name, used in the message.
    x : object
        The value.
    lo, hi : float
        The interval's ends.
    lo_open, hi_open : bool
        Whether the ends are excluded.

    Returns
    -------
    float
        ``float(x)``.

    Raises
    ------
    TypeError
        If ``x`` is not a real number (bool is rejected).
    ValueError
        If ``x`` is not finite or lies outside the interval.
    """
    if isinstance(x, bool) or not isinstance(x, (int, float)) and not hasattr(x, "__float__"):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    val = float(x)  # type: ignore[arg-type]
    if not math.isfinite(val):
        raise ValueError(f"{name} must be finite, got {val!r}")
    bad_lo = val <= lo if lo_open else val < lo
    bad_hi = val >= hi if hi_open else val > hi
    if bad_lo or bad_hi:
        left = "(" if lo_open or math.isinf(lo) else "["
        right = ")" if hi_open or math.isinf(hi) else "]"
        raise ValueError(f"{name} must lie in {left}{lo:g}, {hi:g}{right}, got {val!r}")
    return val


def check_count(name: str, x: object, lo: int = 1) -> int:
    """Return ``x`` as an int >= ``lo`` (integral floats such as ``1e4`` are accepted).

    Parameters
    ----------
    name : str
        The argument's name.
    x : object
        The value.
    lo : int, default 1
        The smallest allowed value.

    Returns
    -------
    int
        The count.

    Raises
    ------
    TypeError
        If ``x`` is not a real number.
    ValueError
        If ``x`` is not integral, not finite, or below ``lo``.
    """
    val = check_real(name, x)
    if val < lo or val != math.floor(val):
        raise ValueError(f"{name} must be an integer >= {lo}, got {x!r}")
    return int(val)


def check_q(name: str, q: object) -> float:
    """Check a relative quantization error level ``q`` in [0, 1).

    Parameters
    ----------
    name : str
        The argument's name (``"q_G"``...).
    q : object
        The value.

    Returns
    -------
    float
        ``float(q)``.

    Raises
    ------
    TypeError, ValueError
        If ``q`` is not a finite real number in [0, 1).
    """
    return check_real(name, q, lo=0.0, hi=1.0, hi_open=True)
