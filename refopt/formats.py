"""Binary floating-point formats: the :class:`refopt.FloatFormat` value object and presets.

A format is described by its exponent bits ``E``, mantissa bits ``M`` (without the
hidden bit), the exponent bias, whether subnormals exist, what the top exponent binade
holds and what happens on overflow. Every value of a format is a float64 value, so the
quantizer can return float64 arrays that are exactly representable in the format.

Bit layout (used by :meth:`refopt.FloatFormat.encode` and
:meth:`refopt.FloatFormat.decode`): ``sign | exponent field (E bits) | mantissa field
(M bits)``, ``1 + E + M`` bits in all. An exponent field ``f >= 1`` encodes the normal
value :math:`(-1)^s\\, 2^{f - \\mathrm{bias}} (1 + m 2^{-M})`; the field ``f = 0``
encodes zero and the subnormals :math:`(-1)^s\\, 2^{e_{\\min}} m 2^{-M}`. The top
binade (``f = 2^E - 1``) depends on ``top_binade``:

``"ieee"``
    IEEE 754: mantissa 0 is infinity, any other mantissa is NaN.
``"fn"``
    finite (OCP FP8 ``E4M3``, FP6, FP4): the top binade holds finite values; when
    ``has_nan`` the single all-ones pattern (mantissa all ones) is NaN, otherwise the
    format has no NaN at all. No infinities.
``"fnuz"``
    finite, unsigned zero: the top binade is finite, the negative-zero pattern
    (sign 1, all other bits 0) is the only NaN, and there is no negative zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

__all__ = [
    "ROUNDING_MODES",
    "FloatFormat",
    "check_rounding",
    "format",
    "list_formats",
]

#: The rounding modes understood by :func:`refopt.quantize` and :func:`refopt.exact`.
ROUNDING_MODES: tuple[str, ...] = (
    "nearest_even",
    "nearest_away",
    "toward_zero",
    "up",
    "down",
    "odd",
    "stochastic",
)

_NEAREST_MODES = frozenset({"nearest_even", "nearest_away"})

TOP_BINADES: tuple[str, ...] = ("ieee", "fn", "fnuz")
OVERFLOW_POLICIES: tuple[str, ...] = ("inf", "nan", "saturate")

_MAX_ENUMERATED_BITS = 16


def check_rounding(rounding: object) -> str:
    """Return *rounding* if it names a rounding mode, else raise.

    Parameters
    ----------
    rounding : str
        One of :data:`refopt.formats.ROUNDING_MODES`.

    Returns
    -------
    str
        The validated mode.

    Raises
    ------
    TypeError
        If ``rounding`` is not a string.
    ValueError
        If ``rounding`` is not one of the known modes (the message lists them).
    """
    if not isinstance(rounding, str):
        raise TypeError(
            f"rounding must be a str, one of {', '.join(ROUNDING_MODES)}; "
            f"got {type(rounding).__name__}"
        )
    if rounding not in ROUNDING_MODES:
        raise ValueError(
            f"unknown rounding {rounding!r}; allowed values: {', '.join(ROUNDING_MODES)}"
        )
    return rounding


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int in {lo}..{hi}; got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}; got {value}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool; got {type(value).__name__}")


def _allowed_overflow(top_binade: str, has_nan: bool) -> tuple[str, ...]:
    if top_binade == "ieee":
        return ("inf", "saturate", "nan")
    if top_binade == "fnuz" or has_nan:
        return ("nan", "saturate")
    return ("saturate",)


@dataclass(frozen=True)
class FloatFormat:
    """An immutable, hashable description of a binary floating-point format.

    Parameters
    ----------
    exponent_bits : int
        Number of exponent bits ``E``, 1..11 (an ``"ieee"`` format needs ``E >= 2``).
    mantissa_bits : int
        Number of stored mantissa (fraction) bits ``M``, 0..52, without the hidden bit.
    bias : int, optional
        Exponent bias; ``None`` gives the IEEE bias :math:`2^{E-1} - 1`. The resolved
        value is stored.
    subnormals : bool, default True
        Whether the format has subnormal numbers (gradual underflow). Without them the
        interval :math:`(-x_{\\min}, x_{\\min})` holds only zero; how values there round
        is defined in :func:`refopt.exact`.
    top_binade : {"ieee", "fn", "fnuz"}, default "ieee"
        What the top exponent binade holds (see :mod:`refopt.formats`).
    has_nan : bool, default True
        Whether the format has a NaN encoding. Must be True for ``"ieee"`` and
        ``"fnuz"``; ``False`` describes the OCP FP6/FP4 formats (no NaN, no infinity).
    overflow : {"inf", "nan", "saturate"}, optional
        What a finite value too large for the format becomes under round-to-nearest:
        ``"inf"`` (signed infinity), ``"nan"`` or ``"saturate"`` (:math:`\\pm x_{\\max}`).
        Allowed: ``"ieee"``: inf, saturate, nan (default inf); ``"fn"`` with NaN: nan,
        saturate (default nan); ``"fn"`` without NaN: saturate only; ``"fnuz"``: nan,
        saturate (default nan). ``None`` selects the default.
    name : str, optional
        Display name; not part of equality or hashing.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If an argument is out of range, the combination is inconsistent, the format has
        no finite normal binade, or its values would not all be float64 values.

    Notes
    -----
    With :math:`e_{\\min} = 1 - \\mathrm{bias}`, every finite value is
    :math:`\\pm n\\, 2^{e - M}` with an integer significand :math:`n < 2^{M+1}` and
    :math:`e_{\\min} \\le e \\le e_{\\max}`; normal values have :math:`n \\ge 2^M`.

    Examples
    --------
    >>> from refopt import FloatFormat
    >>> e4m3fn = FloatFormat(4, 3, top_binade="fn")
    >>> e4m3fn.xmax, e4m3fn.xmin, e4m3fn.xmin_subnormal
    (448.0, 0.015625, 0.001953125)
    >>> FloatFormat.mantissa_only(7).unit_roundoff("nearest_even")
    0.00390625
    """

    exponent_bits: int
    mantissa_bits: int
    bias: int | None = None
    subnormals: bool = True
    top_binade: str = "ieee"
    has_nan: bool = True
    overflow: str | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check_int("exponent_bits", self.exponent_bits, 1, 11)
        _check_int("mantissa_bits", self.mantissa_bits, 0, 52)
        object.__setattr__(self, "exponent_bits", int(self.exponent_bits))
        object.__setattr__(self, "mantissa_bits", int(self.mantissa_bits))
        E, M = self.exponent_bits, self.mantissa_bits
        if self.bias is None:
            object.__setattr__(self, "bias", 2 ** (E - 1) - 1)
        elif isinstance(self.bias, bool) or not isinstance(self.bias, (int, np.integer)):
            raise TypeError(f"bias must be an int or None; got {type(self.bias).__name__}")
        object.__setattr__(self, "bias", int(self.bias))
        _check_bool("subnormals", self.subnormals)
        _check_bool("has_nan", self.has_nan)
        object.__setattr__(self, "subnormals", bool(self.subnormals))
        object.__setattr__(self, "has_nan", bool(self.has_nan))
        if not isinstance(self.top_binade, str) or self.top_binade not in TOP_BINADES:
            raise ValueError(
                f"top_binade must be one of {', '.join(TOP_BINADES)}; got {self.top_binade!r}"
            )
        if self.top_binade in ("ieee", "fnuz") and not self.has_nan:
            raise ValueError(
                f"has_nan=False is only allowed with top_binade='fn'; "
                f"top_binade={self.top_binade!r} always has NaN"
            )
        allowed = _allowed_overflow(self.top_binade, self.has_nan)
        if self.overflow is None:
            object.__setattr__(self, "overflow", allowed[0])
        elif not isinstance(self.overflow, str) or self.overflow not in allowed:
            raise ValueError(
                f"overflow must be one of {', '.join(allowed)} for "
                f"top_binade={self.top_binade!r}, has_nan={self.has_nan}; "
                f"got {self.overflow!r}"
            )
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a str or None; got {type(self.name).__name__}")
        if self.top_binade == "ieee" and E < 2:
            raise ValueError("an IEEE format (top_binade='ieee') needs exponent_bits >= 2")
        if self._finite_normal_codes() < 1:
            raise ValueError(
                f"format E={E}, M={M}, top_binade={self.top_binade!r}, has_nan={self.has_nan} "
                "has no finite normal value"
            )
        if self.emax > 1023 or self.emin - M < -1074:
            raise ValueError(
                f"bias={self.bias} gives emin={self.emin}, emax={self.emax}: the format's "
                "values must all be float64 values (need emax <= 1023 and "
                "emin - mantissa_bits >= -1074)"
            )

    # ------------------------------------------------------------------ derived values
    def _finite_normal_codes(self) -> int:
        E, M = self.exponent_bits, self.mantissa_bits
        if self.top_binade == "ieee":
            return (2**E - 2) * 2**M
        if self.top_binade == "fn" and self.has_nan:
            return (2**E - 1) * 2**M - 1
        return (2**E - 1) * 2**M

    @property
    def bits(self) -> int:
        """Total width ``1 + E + M`` of an encoding, in bits."""
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def precision(self) -> int:
        """Significand precision ``M + 1`` in bits, counting the hidden bit."""
        return self.mantissa_bits + 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal binade, ``1 - bias``."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest binade that holds a finite value.

        ``2^E - 2 - bias`` for ``"ieee"``; ``2^E - 1 - bias`` for ``"fn"`` and
        ``"fnuz"`` (except an ``"fn"`` format with NaN and ``M = 0``, whose top binade
        holds only NaN: ``2^E - 2 - bias``).
        """
        top = 2**self.exponent_bits - 1 - self.bias
        if self.top_binade == "ieee" or (
            self.top_binade == "fn" and self.has_nan and self.mantissa_bits == 0
        ):
            return top - 1
        return top

    @property
    def _max_significand(self) -> int:
        """Integer significand of ``xmax`` in units of ``2**(emax - M)``."""
        M = self.mantissa_bits
        if self.top_binade == "fn" and self.has_nan and M > 0:
            return 2 ** (M + 1) - 2
        return 2 ** (M + 1) - 1

    @property
    def xmax(self) -> float:
        """Largest finite value."""
        return math.ldexp(self._max_significand, self.emax - self.mantissa_bits)

    @property
    def xmin(self) -> float:
        """Smallest positive normal value :math:`2^{e_{\\min}}`."""
        return math.ldexp(1.0, self.emin)

    @property
    def xmin_subnormal(self) -> float:
        """Smallest positive representable value.

        :math:`2^{e_{\\min} - M}` when the format has subnormals; equal to
        :attr:`xmin` when ``subnormals=False``.
        """
        if self.subnormals:
            return math.ldexp(1.0, self.emin - self.mantissa_bits)
        return self.xmin

    @property
    def eps(self) -> float:
        """Machine epsilon :math:`2^{-M}`: the gap between 1 and the next value."""
        return math.ldexp(1.0, -self.mantissa_bits)

    @property
    def has_inf(self) -> bool:
        """Whether the format encodes infinities (only ``top_binade="ieee"``)."""
        return self.top_binade == "ieee"

    @property
    def has_negative_zero(self) -> bool:
        """Whether ``-0`` is a distinct value (False only for ``"fnuz"``)."""
        return self.top_binade != "fnuz"

    @property
    def fits_float32(self) -> bool:
        """Whether every value of the format is a float32 value.

        Then a float32 input can be quantized and returned as float32 without a second
        rounding: ``M <= 23``, ``emax <= 127`` and ``emin - M >= -149``.
        """
        M = self.mantissa_bits
        return M <= 23 and self.emax <= 127 and self.emin - M >= -149

    def unit_roundoff(self, rounding: str = "nearest_even") -> float:
        """Relative error bound ``q`` of the paper's Assumption 3.1 for a rounding mode.

        Parameters
        ----------
        rounding : str, default "nearest_even"
            One of :data:`refopt.formats.ROUNDING_MODES`.

        Returns
        -------
        float
            :math:`2^{-(M+1)}` for ``"nearest_even"`` and ``"nearest_away"``;
            :math:`2^{-M}` for ``"toward_zero"``, ``"up"``, ``"down"``, ``"odd"`` and
            ``"stochastic"``.

        Raises
        ------
        ValueError
            If ``rounding`` is not a known mode.

        Notes
        -----
        For :math:`x` in the normal range, :math:`|Q(x) - x| \\le q |x|`
        (:prf:ref:`paper-assumption-3-1`). A round-to-nearest result is at most half a
        quantum :math:`2^{e-M}` away from :math:`|x| \\ge 2^e`; the other modes can be a
        whole quantum away.
        """
        # [prf:paper-assumption-3-1] q: half a quantum for nearest, a whole one otherwise
        if check_rounding(rounding) in _NEAREST_MODES:
            return math.ldexp(1.0, -(self.mantissa_bits + 1))
        return self.eps

    @classmethod
    def mantissa_only(cls, M: int) -> FloatFormat:
        """An ``M``-bit mantissa with float64's exponent range (the paper's model).

        Parameters
        ----------
        M : int
            Mantissa bits, 0..52.

        Returns
        -------
        FloatFormat
            ``FloatFormat(11, M)``: IEEE top binade, bias 1023, subnormals, overflow to
            infinity, named ``"mantissa_only(M)"``.

        Raises
        ------
        TypeError, ValueError
            If ``M`` is not an int in 0..52.
        """
        _check_int("M", M, 0, 52)
        return cls(11, int(M), name=f"mantissa_only({int(M)})")

    # ------------------------------------------------------------------ bit patterns
    def _code_parts(self, code: int) -> tuple[int, int, int]:
        if isinstance(code, bool) or not isinstance(code, (int, np.integer)):
            raise TypeError(f"code must be an int; got {type(code).__name__}")
        code = int(code)
        if not 0 <= code < 2**self.bits:
            raise ValueError(f"code must be in 0..{2**self.bits - 1}; got {code}")
        M = self.mantissa_bits
        return code >> (self.bits - 1), (code >> M) & (2**self.exponent_bits - 1), code & (2**M - 1)

    def decode(self, code: int) -> float:
        """Value of a bit pattern.

        Parameters
        ----------
        code : int
            Unsigned integer holding ``sign | exponent | mantissa`` (``bits`` wide).

        Returns
        -------
        float
            The value (NaN for NaN patterns, ``±inf`` for IEEE infinities).

        Raises
        ------
        ValueError
            If ``code`` is out of range, or is a subnormal pattern of a format with
            ``subnormals=False``.
        """
        sign, ef, mf = self._code_parts(code)
        E, M = self.exponent_bits, self.mantissa_bits
        s = -1.0 if sign else 1.0
        if self.top_binade == "fnuz" and sign and ef == 0 and mf == 0:
            return math.nan
        if ef == 2**E - 1:
            if self.top_binade == "ieee":
                return s * math.inf if mf == 0 else math.nan
            if self.top_binade == "fn" and self.has_nan and mf == 2**M - 1:
                return math.nan
        if ef == 0:
            if mf and not self.subnormals:
                raise ValueError(f"code {code:#x} is a subnormal pattern; this format has none")
            return s * math.ldexp(mf, self.emin - M)
        return s * math.ldexp(2**M + mf, ef - self.bias - M)

    def encode(self, value: float) -> int:
        """Bit pattern of a representable value.

        Parameters
        ----------
        value : float
            A value of the format, or NaN (if ``has_nan``), or ``±inf`` (if
            ``has_inf``). ``-0.0`` encodes as ``+0`` in ``"fnuz"`` formats. NaN encodes
            as the canonical pattern: IEEE quiet NaN (mantissa MSB set), ``fn`` all ones
            with sign 0, ``fnuz`` the negative-zero pattern.

        Returns
        -------
        int
            The unsigned code.

        Raises
        ------
        TypeError
            If ``value`` is not a real number.
        ValueError
            If ``value`` is not representable in the format.
        """
        if isinstance(value, (bool, complex)) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise TypeError(f"value must be a real number; got {type(value).__name__}")
        E, M = self.exponent_bits, self.mantissa_bits
        top = 2**E - 1
        x = float(value)
        if math.isnan(x):
            if self.top_binade == "ieee" and M > 0:
                return (top << M) | (1 << (M - 1))
            if self.top_binade == "fn" and self.has_nan:
                return (top << M) | (2**M - 1)
            if self.top_binade == "fnuz":
                return 1 << (self.bits - 1)
            raise ValueError(f"NaN is not representable in {self}")
        sign = int(math.copysign(1.0, x) < 0)
        if x == 0:
            return 0 if self.top_binade == "fnuz" else sign << (self.bits - 1)
        a = abs(x)
        if math.isinf(a):
            if not self.has_inf:
                raise ValueError(f"{x} is not representable in {self}")
            return (sign << (self.bits - 1)) | (top << M)
        ex = math.frexp(a)[1] - 1  # a in [2**ex, 2**(ex+1))
        e = max(ex, self.emin)
        n = Fraction(a) / Fraction(2) ** (e - M)
        if (
            n.denominator != 1
            or e > self.emax
            or (ex < self.emin and not self.subnormals)
            or a > self.xmax
        ):
            raise ValueError(f"{x!r} is not representable in {self}")
        n = int(n)
        ef = e + self.bias if n >= 2**M else 0
        return (sign << (self.bits - 1)) | (ef << M) | (n & (2**M - 1))

    def all_values(self) -> np.ndarray:
        """The value of every code, indexed by code (formats of at most 16 bits).

        Returns
        -------
        numpy.ndarray
            float64 array of length ``2**bits``; entry ``c`` is ``decode(c)``. Subnormal
            patterns of a ``subnormals=False`` format are NaN (they are not values).

        Raises
        ------
        ValueError
            If the format is wider than 16 bits.
        """
        if self.bits > _MAX_ENUMERATED_BITS:
            raise ValueError(
                f"all_values() needs a format of at most {_MAX_ENUMERATED_BITS} bits; "
                f"{self} has {self.bits}"
            )
        M = self.mantissa_bits
        out = np.empty(2**self.bits)
        for code in range(out.size):
            sub = (code >> M) & (2**self.exponent_bits - 1) == 0 and code & (2**M - 1)
            out[code] = math.nan if sub and not self.subnormals else self.decode(code)
        return out

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        return (
            f"FloatFormat(exponent_bits={self.exponent_bits}, mantissa_bits={self.mantissa_bits}, "
            f"bias={self.bias}, subnormals={self.subnormals}, top_binade={self.top_binade!r}, "
            f"has_nan={self.has_nan}, overflow={self.overflow!r}, name={self.name!r})"
        )

    def __str__(self) -> str:
        label = self.name or f"E{self.exponent_bits}M{self.mantissa_bits}"
        extras = [f"bias {self.bias}", self.top_binade]
        if not self.has_nan:
            extras.append("no NaN")
        if not self.subnormals:
            extras.append("no subnormals")
        extras.append(f"overflow -> {self.overflow}")
        return f"{label} (E{self.exponent_bits}M{self.mantissa_bits}, {', '.join(extras)})"


def _preset(name: str, E: int, M: int, **kw: object) -> FloatFormat:
    return FloatFormat(E, M, name=name, **kw)  # type: ignore[arg-type]


_PRESETS: dict[str, FloatFormat] = {
    f.name: f  # type: ignore[misc]
    for f in (
        _preset("fp64", 11, 52),
        _preset("fp32", 8, 23),
        _preset("tf32", 8, 10),
        _preset("bf16", 8, 7),
        _preset("fp16", 5, 10),
        _preset("fp8_e4m3", 4, 3),
        _preset("fp8_e4m3fn", 4, 3, top_binade="fn"),
        _preset("fp8_e4m3fnuz", 4, 3, bias=8, top_binade="fnuz"),
        _preset("fp8_e5m2", 5, 2),
        _preset("fp8_e5m2fnuz", 5, 2, bias=16, top_binade="fnuz"),
        _preset("fp8_e3m4", 3, 4),
        _preset("fp6_e2m3fn", 2, 3, top_binade="fn", has_nan=False),
        _preset("fp6_e3m2fn", 3, 2, top_binade="fn", has_nan=False),
        _preset("fp4_e2m1fn", 2, 1, top_binade="fn", has_nan=False),
    )
}


def list_formats() -> dict[str, FloatFormat]:
    """The named presets.

    Returns
    -------
    dict of str to FloatFormat
        A new dict, in a stable order: ``fp64``, ``fp32``, ``tf32``, ``bf16``, ``fp16``,
        ``fp8_e4m3`` (IEEE-like, max 240), ``fp8_e4m3fn`` (OCP, max 448, NaN on
        overflow), ``fp8_e4m3fnuz`` (max 240), ``fp8_e5m2`` (max 57344, infinities),
        ``fp8_e5m2fnuz`` (max 57344), ``fp8_e3m4`` (IEEE-like, max 15.5),
        ``fp6_e2m3fn`` (max 7.5), ``fp6_e3m2fn`` (max 28) and ``fp4_e2m1fn`` (max 6);
        the last three have no NaN and saturate. ``fnuz`` presets use bias
        :math:`2^{E-1}`.
    """
    return dict(_PRESETS)


def format(name: str | FloatFormat, *, arg: str | None = None) -> FloatFormat:  # noqa: A001 - public API name
    """Look up a preset by name; a :class:`refopt.FloatFormat` passes through.

    Parameters
    ----------
    name : str or FloatFormat
        A preset name (see :func:`refopt.list_formats`) or a format.
    arg : str, optional
        The caller's argument name, to be named in error messages (``"fmt"`` for
        :func:`refopt.quantize` and :func:`refopt.exact`).

    Returns
    -------
    FloatFormat
        The preset, or ``name`` itself if it already is a format.

    Raises
    ------
    TypeError
        If ``name`` is neither a str nor a FloatFormat.
    ValueError
        If ``name`` is not a preset name (the message lists the valid names).
    """
    if isinstance(name, FloatFormat):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"{arg or 'format'} must be a preset name or a FloatFormat; got {type(name).__name__}"
        )
    try:
        return _PRESETS[name]
    except KeyError:
        where = f"{arg}: " if arg else ""
        raise ValueError(
            f"{where}unknown format {name!r}; valid names: {', '.join(_PRESETS)} "
            "(or pass a FloatFormat, e.g. FloatFormat.mantissa_only(M))"
        ) from None
