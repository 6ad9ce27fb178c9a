"""Scalar ground-truth quantizer: exact rounding of one number into a format.

:func:`refopt.exact` is the specification that :func:`refopt.quantize` implements fast.

**What it is built on.** Exact rational arithmetic, never floating-point arithmetic on
the value being rounded. The input is read as an exact dyadic rational :math:`m\\,2^{e}`
(integers ``m``, ``e``): a float through :meth:`float.as_integer_ratio`, a Python or
NumPy integer as itself, an :class:`mpmath.mpf` (of any precision) through its exact
mantissa and exponent. Every decision (the quantum, the neighbours, ties, the
stochastic threshold, overflow) is then taken with Python integers and
:class:`fractions.Fraction`; the only float operation is the final, exact
:func:`math.ldexp` of the chosen integer significand. This is the same exact
integer-mantissa reasoning mpmath's ``libmp`` layer is made of, written out directly so
that every rule of the docstring below can be read in the code.

**How it is verified** (``tests/test_exact.py``), against references that share no code
with it: (1) mpmath's own correct rounding, ``mpmath.libmp.mpf_pos`` to ``M + 1`` bits
with rounding ``'n'``, ``'f'``, ``'c'``, ``'d'`` in the normal range and fixed-point
rounding with ``mpmath.floor``/``mpmath.ceil`` below it, for every preset and custom
test format, every rounding mode, on the edge inputs (every midpoint and midpoint
:math:`\\pm` tiny, subnormals, the overflow threshold, specials) and random inputs;
(2) bisection in the sorted set of all values of each format of at most 12 bits;
(3) hand-derived values and NumPy's correctly rounded float32/float16 casts.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np

from refopt.formats import FloatFormat, check_rounding
from refopt.formats import format as _as_format

__all__ = ["exact"]

# A remainder below 2**-_STICKY_BITS quanta compares like any other such remainder: with
# 1/2 (below), with 0 (above) and with every float64 uniform u (u < it only for u = 0).
_STICKY_BITS = 1100


def _decompose(x: object) -> tuple[int, int, int] | float:
    """Return ``(sign, m, e)`` with ``|x| = m * 2**e`` (``m >= 0``), or ``x`` as float if NaN/inf."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(
        x, (int, float, np.integer, np.floating, mpmath.mpf)
    ):
        raise TypeError(
            "x must be a real scalar (Python int/float, NumPy real scalar or mpmath.mpf); "
            f"got {type(x).__name__}"
        )
    if isinstance(x, mpmath.mpf):
        if not mpmath.isfinite(x):
            return float(x)
        man, exp = x.man_exp
        return (-1 if x < 0 else 1), abs(int(man)), int(exp)
    if isinstance(x, (int, np.integer)):
        n = int(x)
        return (-1 if n < 0 else 1), abs(n), 0
    if not math.isfinite(x):
        return float(x)
    num, den = x.as_integer_ratio()  # exact; den is a power of two
    sign = -1 if math.copysign(1.0, float(x)) < 0 else 1
    return sign, abs(num), -(den.bit_length() - 1)


def _check_u(u: object, rounding: str) -> Fraction | None:
    if rounding != "stochastic":
        if u is not None:
            raise ValueError(f"u is only used with rounding='stochastic'; got rounding={rounding!r}")
        return None
    if u is None:
        raise ValueError("rounding='stochastic' needs u, a uniform draw in [0, 1)")
    if isinstance(u, (bool, np.bool_)) or not isinstance(u, (int, float, np.integer, np.floating)):
        raise TypeError(f"u must be a real number in [0, 1); got {type(u).__name__}")
    if not 0 <= u < 1:
        raise ValueError(f"u must be in [0, 1); got {u!r}")
    return Fraction(u)


def _round_up_magnitude(rounding: str, sign: int, n: int, rem: int, den: int, u: Fraction | None) -> bool:
    """Whether ``|x| = (n + rem/den) * quantum`` (``0 < rem < den``) rounds to ``n + 1``."""
    if rounding == "nearest_even":
        return 2 * rem > den or (2 * rem == den and n % 2 == 1)
    if rounding == "nearest_away":
        return 2 * rem >= den
    if rounding == "toward_zero":
        return False
    if rounding == "up":
        return sign > 0
    if rounding == "down":
        return sign < 0
    if rounding == "odd":
        return n % 2 == 0
    # stochastic, on the signed neighbours lo < x < hi: hi iff u < (x - lo) / (hi - lo)
    frac = Fraction(rem, den)
    assert u is not None
    if sign > 0:
        return u < frac
    return not u < 1 - frac


def _overflow(fmt: FloatFormat, rounding: str, sign: int) -> float:
    """Result for a value whose unbounded-exponent rounding exceeds ``xmax``."""
    bounded = (
        rounding in ("toward_zero", "odd")
        or (rounding == "up" and sign < 0)
        or (rounding == "down" and sign > 0)
    )
    if bounded or fmt.overflow == "saturate":
        return sign * fmt.xmax
    if fmt.overflow == "inf":
        return sign * math.inf
    return math.nan


def _signed_zero(fmt: FloatFormat, sign: int) -> float:
    return -0.0 if sign < 0 and fmt.has_negative_zero else 0.0


def exact(
    x: float,
    fmt: str | FloatFormat,
    rounding: str = "nearest_even",
    *,
    u: float | None = None,
) -> float:
    """Round one real number into a floating-point format, exactly.

    Parameters
    ----------
    x : int, float, NumPy real scalar or mpmath.mpf
        The value to round; its exact binary value is used (a Python ``int`` or an
        ``mpmath.mpf`` need not be a float64 value).
    fmt : str or FloatFormat
        Target format: a preset name (see :func:`refopt.list_formats`) or a
        :class:`refopt.FloatFormat`.
    rounding : str, default "nearest_even"
        One of ``"nearest_even"``, ``"nearest_away"``, ``"toward_zero"``, ``"up"``,
        ``"down"``, ``"odd"``, ``"stochastic"``.
    u : float, optional
        The uniform draw in :math:`[0, 1)` for ``rounding="stochastic"`` (required
        there, rejected otherwise).

    Returns
    -------
    float
        The rounded value: a value of ``fmt``, or ``±inf``/NaN as described below.

    Raises
    ------
    TypeError
        If ``x`` or ``u`` is not a real scalar, or ``fmt`` is neither a name nor a format.
    ValueError
        If ``fmt`` or ``rounding`` is unknown, ``u`` is missing for stochastic rounding,
        given for another mode, or outside :math:`[0, 1)`.

    Notes
    -----
    **Grid.** Let :math:`e = \\lfloor \\log_2 |x| \\rfloor` (read exactly from the bits).
    With subnormals the quantum is :math:`2^{\\max(e, e_{\\min}) - M}`; with
    ``subnormals=False`` it is :math:`2^{e - M}` for :math:`|x| \\ge x_{\\min}` and
    :math:`x_{\\min} = 2^{e_{\\min}}` below, so :math:`(-x_{\\min}, x_{\\min})` rounds on
    the grid :math:`\\{0, \\pm x_{\\min}\\}` in which 0 is the even and :math:`x_{\\min}` the
    odd multiple. There is no upper limit on the exponent at this stage.

    **Modes.** If :math:`|x|` lies strictly between the multiples :math:`n` and
    :math:`n + 1` of the quantum: ``nearest_even`` takes the nearer, ties to the even
    multiple; ``nearest_away`` the nearer, ties away from zero; ``toward_zero`` the
    smaller magnitude; ``up`` / ``down`` the neighbour towards :math:`+\\infty` /
    :math:`-\\infty`; ``odd`` the odd multiple (so a nonzero :math:`x` never rounds to
    zero); ``stochastic``, with the signed neighbours :math:`lo < x < hi`, gives
    :math:`hi` if :math:`u < (x - lo)/(hi - lo)` and :math:`lo` otherwise (the
    comparison is exact, so with a uniform :math:`u` the probability of :math:`hi` is
    the distance ratio).

    **Overflow.** If the magnitude so obtained exceeds ``fmt.xmax``: ``toward_zero``
    and ``odd`` give :math:`\\pm x_{\\max}`; ``up`` gives :math:`-x_{\\max}` for negative
    :math:`x` and ``down`` gives :math:`+x_{\\max}` for positive :math:`x`; otherwise
    (nearest modes, stochastic, ``up`` for positive, ``down`` for negative :math:`x`) the
    result follows ``fmt.overflow``: :math:`\\pm\\infty` (``"inf"``), NaN (``"nan"``) or
    :math:`\\pm x_{\\max}` (``"saturate"``). For example ``fp8_e4m3fn`` under
    ``nearest_even`` maps 464 to 448 (tie, 448 is even) and 465 to NaN.

    **Arithmetic and verification.** The value of ``x`` is read exactly as
    :math:`m\\,2^{e}` (integers :math:`m, e`) and rounded with Python integers and
    ``fractions.Fraction`` only: no floating-point operation touches it before the
    final, exact ``math.ldexp``. The tests check it, for every preset and test format
    and every mode, against mpmath's own correct rounding (``mpmath.libmp.mpf_pos`` to
    :math:`M + 1` bits with rounding ``'n'``, ``'f'``, ``'c'``, ``'d'`` in the normal
    range, ``mpmath.floor``/``mpmath.ceil`` on the subnormal grid) and against
    bisection in the set of all values of every format of at most 12 bits.

    **Special values.** NaN gives NaN (also for formats without a NaN code). Infinity
    gives the same infinity in formats that have one (``top_binade="ieee"``, whatever
    ``overflow`` says); otherwise NaN under ``overflow="nan"`` and :math:`\\pm x_{\\max}`
    under ``"saturate"``. Zeros, and results that round to zero, keep the sign of
    :math:`x`, except in ``"fnuz"`` formats, which have no negative zero and give
    ``+0.0``.

    Examples
    --------
    >>> from refopt import exact
    >>> exact(464.0, "fp8_e4m3fn"), exact(465.0, "fp8_e4m3fn")
    (448.0, nan)
    >>> exact(1 + 2**-9, "bf16", "up")
    1.0078125
    >>> exact(0.3, "fp4_e2m1fn", "stochastic", u=0.5)
    0.5
    """
    fmt = _as_format(fmt, arg="fmt")
    rounding = check_rounding(rounding)
    uf = _check_u(u, rounding)
    parts = _decompose(x)
    if isinstance(parts, float):  # NaN or infinity
        if math.isnan(parts) or fmt.has_inf:
            return parts
        return math.nan if fmt.overflow == "nan" else math.copysign(fmt.xmax, parts)
    sign, m, e = parts
    if m == 0:
        return _signed_zero(fmt, sign)
    # [docs:exact-round:start]
    M = fmt.mantissa_bits
    ex = m.bit_length() - 1 + e  # 2**ex <= |x| < 2**(ex + 1)
    if ex >= fmt.emin:
        qexp = ex - M
    else:
        qexp = fmt.emin - M if fmt.subnormals else fmt.emin
    shift = qexp - e
    if shift > m.bit_length() + _STICKY_BITS:  # |x| far below the quantum (huge mpf exponents)
        m, e, shift = 1, qexp - _STICKY_BITS, _STICKY_BITS  # same outcome in every mode
    if shift <= 0:
        n = m << -shift
    else:
        den = 1 << shift
        n, rem = divmod(m, den)
        n += rem != 0 and _round_up_magnitude(rounding, sign, n, rem, den, uf)
    # an exponent above emax means |Q(x)| >= 2**(emax + 1) > xmax whatever the mode
    if ex > fmt.emax or (ex == fmt.emax and Fraction(n) * Fraction(2) ** qexp > Fraction(fmt.xmax)):
        return _overflow(fmt, rounding, sign)
    if n == 0:
        return _signed_zero(fmt, sign)
    return sign * math.ldexp(n, qexp)
    # [docs:exact-round:end]
