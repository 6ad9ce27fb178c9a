"""Precision policies: which format and rounding each quantized quantity uses.

:class:`refopt.optim.Precision` names the four quantization points of the
low-precision training framework (:prf:ref:`paper-framework`): the weight copy
:math:`W^Q = Q_W(W)` at which the gradient is computed, the gradient
:math:`g^Q = Q_G(g)`, the first moment (Adam's :math:`m`, Muon's momentum :math:`M`)
and Adam's second moment :math:`v`. :func:`refopt.optim.worst_case` builds quantizers
that meet the relative-error model of :prf:ref:`paper-assumption-3-1` with equality,
for tests of the theory.

Signatures::

    Precision(weights=None, grads=None, m=None, v=None, *, rounding="nearest_even", rng=None)
    worst_case(q, sign="plus", *, reference=None, rng=None) -> WorstCase
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from refopt.formats import FloatFormat, check_rounding
from refopt.formats import format as resolve_format
from refopt.optim._common import check_real, tree_map
from refopt.quantize import quantize

__all__ = ["COMPONENTS", "Precision", "WorstCase", "worst_case"]

COMPONENTS = ("weights", "grads", "m", "v")
"""The quantized components of a :class:`refopt.optim.Precision`, in framework order."""

Quantizer = Callable[[np.ndarray], np.ndarray]

WORST_CASE_SIGNS = ("plus", "minus", "adversarial", "random")
_SIGN_ALIASES = {"+": "plus", "-": "minus"}


def _as_generator(rng: object, name: str) -> np.random.Generator | None:
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def _format_config(fmt: FloatFormat) -> dict[str, Any]:
    return {f.name: getattr(fmt, f.name) for f in dataclasses.fields(fmt)}


def _split_products(a: np.ndarray | float, b: np.ndarray) -> np.ndarray:
    """Rounding error of ``a * b`` (Dekker's TwoProduct), exact for normal-range products."""
    split = 134217729.0  # 2**27 + 1

    def halves(x: Any) -> tuple[Any, Any]:
        c = split * x
        hi = c - (c - x)
        return hi, x - hi

    ah, al = halves(a)
    bh, bl = halves(b)
    return ((ah * bh - a * b) + ah * bl + al * bh) + al * bl


@dataclasses.dataclass(frozen=True, eq=False)
class WorstCase:
    """A quantizer with relative error exactly ``q``: ``x -> x (1 + s q)``, ``s = +-1``.

    Build it with :func:`refopt.optim.worst_case`, which documents the parameters.
    """

    q: float
    sign: str
    reference: np.ndarray | Quantizer | None = None
    rng: np.random.Generator | None = None

    def signs(self, x: np.ndarray) -> np.ndarray | float:
        """The sign :math:`s` used for each element of ``x`` (``+1`` or ``-1``).

        Parameters
        ----------
        x : numpy.ndarray
            The values about to be quantized.

        Returns
        -------
        numpy.ndarray or float
            ``+1.0`` / ``-1.0`` per element (a scalar for the fixed signs).

        Raises
        ------
        ValueError
            If the reference direction's shape differs from ``x``'s.
        """
        if self.sign == "plus":
            return 1.0
        if self.sign == "minus":
            return -1.0
        if self.sign == "random":
            assert self.rng is not None
            return np.where(self.rng.random(x.shape) < 0.5, -1.0, 1.0)
        ref = self.reference(x) if callable(self.reference) else self.reference
        d = np.asarray(ref, dtype=np.float64)
        if d.shape != x.shape:
            raise ValueError(f"worst_case reference has shape {d.shape}, the quantized value has {x.shape}")
        return np.where(x * d < 0, -1.0, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Quantize ``x``: ``x (1 + s q)`` with ``|Q(x) - x| <= q |x|``.

        Parameters
        ----------
        x : numpy.ndarray
            Values to perturb (float64).

        Returns
        -------
        numpy.ndarray
            The perturbed values (a new array).
        """
        x = np.asarray(x, dtype=np.float64)
        sq = self.signs(x) * self.q
        with np.errstate(all="ignore"):
            y = x + sq * x
            # Error-free check that |y - x| <= q |x|: y - x is exact (Sterbenz, q <= 1/2),
            # q |x| = hi + lo exactly (TwoProduct); pull y one float64 toward x if it overshot.
            ax = np.abs(x)
            hi = self.q * ax
            lo = _split_products(self.q, ax)
            for _ in range(3):
                over = (np.abs(y - x) - hi) > lo
                if not over.any():
                    break
                y = np.where(over, np.nextafter(y, x), y)
        return y

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description (``reference`` must be absent or an array).

        Returns
        -------
        dict
            ``{"worst_case": {"q": ..., "sign": ..., "reference": [...] or None}}``.

        Raises
        ------
        ValueError
            If the reference direction is a callable (it cannot be stored).
        """
        if callable(self.reference):
            raise ValueError("a worst_case quantizer with a callable reference cannot be serialised")
        ref = None if self.reference is None else np.asarray(self.reference).tolist()
        return {"worst_case": {"q": self.q, "sign": self.sign, "reference": ref}}


def worst_case(
    q: float,
    sign: str = "plus",
    *,
    reference: np.ndarray | Quantizer | None = None,
    rng: np.random.Generator | int | None = None,
) -> WorstCase:
    r"""A quantizer meeting the relative-error model with equality, for theory tests.

    Parameters
    ----------
    q : float
        The relative error, :math:`0 \le q \le 1/2` (every format with at least one
        mantissa bit has :math:`q \le 1/2`).
    sign : {"plus", "minus", "adversarial", "random"}, default "plus"
        How the sign :math:`s_i \in \{-1, +1\}` of each element's error is chosen
        (``"+"`` and ``"-"`` are accepted for ``"plus"`` and ``"minus"``):

        - ``"plus"``: :math:`s_i = +1`, every magnitude grows by the factor
          :math:`1 + q`;
        - ``"minus"``: :math:`s_i = -1`, every magnitude shrinks by :math:`1 - q`;
        - ``"adversarial"``: the error points along a given **reference direction**
          :math:`d`: :math:`s_i = \operatorname{sign}(x_i d_i)` (``+1`` where
          :math:`x_i d_i = 0`), so :math:`Q(x)_i - x_i = q |x_i| \operatorname{sign}(d_i)`.
          Passing the gradient (or the current step direction) as :math:`d` pushes
          the quantized quantity against the descent direction by the full amount
          the model allows;
        - ``"random"``: independent fair signs, one uniform ``u = rng.random()`` per
          element in C order of the input, :math:`s_i = -1` if :math:`u < 1/2` else
          :math:`+1`.
    reference : numpy.ndarray or callable, optional
        Required for ``"adversarial"`` (ignored otherwise): the direction :math:`d`,
        an array of the quantized value's shape, or a callable ``d = reference(x)``.
    rng : numpy.random.Generator or int, optional
        Required for ``"random"``: the generator (or seed) of the sign draws.

    Returns
    -------
    WorstCase
        A callable ``Q(x)`` usable as any component of :class:`refopt.optim.Precision`.

    Raises
    ------
    ValueError
        If ``q`` is outside :math:`[0, 1/2]`, ``sign`` is unknown, or ``reference``
        / ``rng`` is missing for the sign rule that needs it.
    TypeError
        If ``rng`` is neither a Generator nor an int.

    Notes
    -----
    :prf:ref:`paper-assumption-3-1` asks :math:`|Q(x) - x| \le q |x|`; this quantizer
    returns the float64 number nearest to :math:`x(1 + s q)` that does not exceed the
    bound, so :math:`q|x| - u_{64}|Q(x)| \le |Q(x) - x| \le q|x|` with
    :math:`u_{64} = 2^{-52}` (equality whenever :math:`x(1+sq)` is a float64 number,
    e.g. for :math:`q = 2^{-k}` and short mantissas of :math:`x`). The guarantee holds
    for :math:`x` in float64's normal range; zeros stay zero and NaN/infinity pass
    through. Unlike a real format, the result is not idempotent: quantizing twice
    applies the error twice.

    Provenance: refopt (a test device for :prf:ref:`paper-assumption-3-1`).

    Examples
    --------
    >>> import numpy as np
    >>> from refopt.optim import worst_case
    >>> worst_case(2.0**-8, "minus")(np.array([1.0, -3.0]))
    array([ 0.99609375, -2.98828125])
    """
    qv = check_real("q", q)
    if not 0.0 <= qv <= 0.5:
        raise ValueError(f"q must be in [0, 1/2], got {qv!r}")
    sign = _SIGN_ALIASES.get(sign, sign) if isinstance(sign, str) else sign
    if sign not in WORST_CASE_SIGNS:
        raise ValueError(f"sign must be one of {WORST_CASE_SIGNS} (or '+', '-'), got {sign!r}")
    if sign == "adversarial" and reference is None:
        raise ValueError("sign='adversarial' needs a reference direction (array or callable)")
    gen = _as_generator(rng, "rng")
    if sign == "random" and gen is None:
        raise ValueError("sign='random' needs rng (a numpy.random.Generator or an int seed)")
    if isinstance(reference, np.ndarray) or (reference is not None and not callable(reference)):
        reference = np.array(reference, dtype=np.float64)
    return WorstCase(qv, sign, reference if sign == "adversarial" else None, gen if sign == "random" else None)


class Precision:
    r"""Which format and rounding each quantized quantity of an optimizer uses.

    Parameters
    ----------
    weights, grads, m, v : str, FloatFormat, callable or None, optional
        The quantizer of each component: ``None`` keeps it exact (float64); a preset
        name (see :func:`refopt.list_formats`) or a :class:`refopt.FloatFormat` rounds
        it with :func:`refopt.quantize` in the policy's ``rounding``; a callable
        ``Q(x) -> array`` (e.g. :func:`refopt.optim.worst_case`) is applied as is.
        ``weights`` is :math:`Q_W` (the copy the gradient is computed at, and the
        storage format when an optimizer has ``master_weights=False``), ``grads`` is
        :math:`Q_G`, ``m`` the first moment (Adam) or momentum (Muon), ``v`` Adam's
        second moment.
    rounding : str, default "nearest_even"
        A mode of :data:`refopt.ROUNDING_MODES`, used by every format component.
    rng : numpy.random.Generator or int, optional
        The shared random stream of stochastic rounding (an int seeds
        :func:`numpy.random.default_rng` once, at construction). Required when
        ``rounding="stochastic"`` and a component is a format.

    Raises
    ------
    TypeError
        If a component is not a str, FloatFormat, callable or None, or ``rng`` has the
        wrong type.
    ValueError
        If a format name or rounding mode is unknown, or stochastic rounding has no
        ``rng``.

    Notes
    -----
    **Order of random draws.** The stream advances by one uniform per element
    quantized, never for an exact component. An optimizer step consumes it in this
    order: :func:`refopt.optim.quantized_grad` quantizes the weights then the gradient
    (each for the parameters in sorted key order); the update then walks the
    parameters in sorted key order and for each quantizes :math:`m`, then :math:`v`
    (Adam), then the stored weights (``master_weights=False``). A Precision object is
    therefore stateful through its generator: build a new one (or use
    :meth:`replace` with a fresh ``rng``) to replay a run.

    Provenance: paper (the framework's quantization points, :prf:ref:`paper-framework`).

    Examples
    --------
    >>> import numpy as np
    >>> from refopt.optim import Precision
    >>> p = Precision(weights="bf16", grads="bf16", m="bf16", v="fp32")
    >>> float(p.quantize_weights(np.array(1.0 + 2.0**-9)))
    1.0
    >>> p.unit_roundoff("v") == 2.0**-24
    True
    """

    __slots__ = ("_components", "_rounding", "_rng")

    def __init__(
        self,
        weights: str | FloatFormat | Quantizer | None = None,
        grads: str | FloatFormat | Quantizer | None = None,
        m: str | FloatFormat | Quantizer | None = None,
        v: str | FloatFormat | Quantizer | None = None,
        *,
        rounding: str = "nearest_even",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        given = {"weights": weights, "grads": grads, "m": m, "v": v}
        comps: dict[str, FloatFormat | Quantizer | None] = {}
        for name, c in given.items():
            if c is None or isinstance(c, FloatFormat):
                comps[name] = c
            elif isinstance(c, str):
                try:
                    comps[name] = resolve_format(c)
                except ValueError as exc:
                    raise ValueError(f"precision component {name!r}: {exc}") from None
            elif callable(c):
                comps[name] = c
            else:
                raise TypeError(
                    f"precision component {name!r} must be None, a format name, a FloatFormat "
                    f"or a callable quantizer, got {type(c).__name__}"
                )
        self._components = comps
        self._rounding = check_rounding(rounding)
        self._rng = _as_generator(rng, "rng")
        needs_rng = any(isinstance(c, FloatFormat) for c in comps.values())
        if self._rounding == "stochastic" and needs_rng and self._rng is None:
            raise ValueError("rounding='stochastic' needs rng (a numpy.random.Generator or an int seed)")

    @classmethod
    def worst_case(
        cls,
        q: float | dict[str, float],
        sign: str | dict[str, str] = "plus",
        *,
        reference: np.ndarray | Quantizer | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> Precision:
        """A policy whose components are :func:`refopt.optim.worst_case` quantizers.

        Parameters
        ----------
        q : float or dict
            One level for every component, or a dict ``{component: q}`` (components
            not named stay exact).
        sign : str or dict, default "plus"
            The sign rule, for all components or per component.
        reference : numpy.ndarray or callable, optional
            Reference direction for ``"adversarial"`` signs.
        rng : numpy.random.Generator or int, optional
            Generator (shared by all components) for ``"random"`` signs.

        Returns
        -------
        Precision
            The policy (its ``unit_roundoff`` of each component is its ``q``).

        Raises
        ------
        ValueError
            If a dict names an unknown component, or as :func:`refopt.optim.worst_case`.
        """
        levels = q if isinstance(q, dict) else dict.fromkeys(COMPONENTS, q)
        signs = sign if isinstance(sign, dict) else dict.fromkeys(COMPONENTS, sign)
        bad = sorted((set(levels) | set(signs)) - set(COMPONENTS))
        if bad:
            raise ValueError(f"unknown precision component(s) {bad}; components are {COMPONENTS}")
        gen = _as_generator(rng, "rng")
        comps = {
            c: worst_case(levels[c], signs.get(c, "plus"), reference=reference, rng=gen) if c in levels else None
            for c in COMPONENTS
        }
        return cls(**comps, rng=gen)

    @property
    def rounding(self) -> str:
        """The rounding mode of the format components."""
        return self._rounding

    @property
    def rng(self) -> np.random.Generator | None:
        """The shared generator of stochastic rounding (None if not given)."""
        return self._rng

    @property
    def is_exact(self) -> bool:
        """True when no component is quantized."""
        return all(c is None for c in self._components.values())

    def component(self, name: str) -> FloatFormat | Quantizer | None:
        """The quantizer of a component: a FloatFormat, a callable or None.

        Parameters
        ----------
        name : {"weights", "grads", "m", "v"}
            The component.

        Returns
        -------
        FloatFormat, callable or None
            What ``name`` is quantized with.

        Raises
        ------
        ValueError
            If ``name`` is not a component.
        """
        if name not in self._components:
            raise ValueError(f"unknown precision component {name!r}; components are {COMPONENTS}")
        return self._components[name]

    def format_of(self, name: str) -> FloatFormat | None:
        """The format of a component, or None when it is exact or a callable.

        Parameters
        ----------
        name : {"weights", "grads", "m", "v"}
            The component.

        Returns
        -------
        FloatFormat or None
            The component's format.
        """
        c = self.component(name)
        return c if isinstance(c, FloatFormat) else None

    def unit_roundoff(self, name: str) -> float:
        """The relative error level :math:`q` of a component (0 when exact).

        Parameters
        ----------
        name : {"weights", "grads", "m", "v"}
            The component.

        Returns
        -------
        float
            ``fmt.unit_roundoff(rounding)`` for a format, ``q`` for a
            :func:`refopt.optim.worst_case` quantizer, 0.0 for an exact component.

        Raises
        ------
        ValueError
            For a callable other than a worst-case quantizer (its level is unknown).
        """
        c = self.component(name)
        if c is None:
            return 0.0
        if isinstance(c, FloatFormat):
            return c.unit_roundoff(self._rounding)
        if isinstance(c, WorstCase):
            return c.q
        raise ValueError(f"the relative error of the callable quantizer of {name!r} is unknown")

    def quantize(
        self, name: str, x: np.ndarray | dict[str, np.ndarray]
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Quantize ``x`` (an array or a dict of arrays) as component ``name``.

        Parameters
        ----------
        name : {"weights", "grads", "m", "v"}
            The component.
        x : numpy.ndarray or dict of numpy.ndarray
            Float64 values, or float32 values for format components that fit
            float32 (dict leaves are processed in sorted key order).

        Returns
        -------
        numpy.ndarray or dict
            The quantized values (new arrays of the input's dtype for a format,
            float64 for a callable; for an exact component, ``x`` itself).

        Raises
        ------
        ValueError
            If ``name`` is not a component, or a callable quantizer changed a shape.
        """
        c = self.component(name)
        if c is None:
            return x
        if isinstance(c, FloatFormat):
            fmt, rounding, rng = c, self._rounding, self._rng
            return tree_map(lambda a: np.asarray(quantize(a, fmt, rounding, rng=rng)), x)

        def apply(a: np.ndarray) -> np.ndarray:
            out = np.asarray(c(a), dtype=np.float64)  # type: ignore[operator]
            if out.shape != a.shape:
                raise ValueError(f"the quantizer of {name!r} returned shape {out.shape} for input {a.shape}")
            return out

        return tree_map(apply, x)

    def quantize_weights(self, w: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        """:math:`Q_W(w)`, see :meth:`quantize`."""
        return self.quantize("weights", w)

    def quantize_grads(self, g: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        """:math:`Q_G(g)`, see :meth:`quantize`."""
        return self.quantize("grads", g)

    def quantize_m(self, m: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        """:math:`Q_M(m)`, see :meth:`quantize`."""
        return self.quantize("m", m)

    def quantize_v(self, v: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        """:math:`Q_V(v)`, see :meth:`quantize`."""
        return self.quantize("v", v)

    def replace(self, **changes: Any) -> Precision:
        """A copy with some components, ``rounding`` or ``rng`` replaced.

        Parameters
        ----------
        **changes
            Any of ``weights``, ``grads``, ``m``, ``v``, ``rounding``, ``rng``.

        Returns
        -------
        Precision
            The new policy (the generator object is shared unless replaced).

        Raises
        ------
        ValueError
            If a keyword is not one of the above.
        """
        allowed = (*COMPONENTS, "rounding", "rng")
        bad = sorted(set(changes) - set(allowed))
        if bad:
            raise ValueError(f"unknown precision field(s) {bad}; allowed: {allowed}")
        kw: dict[str, Any] = {**self._components, "rounding": self._rounding, "rng": self._rng}
        kw.update(changes)
        return Precision(**kw)

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description, restored by :meth:`from_config`.

        Returns
        -------
        dict
            Each component as ``None``, ``{"format": {...FloatFormat fields...}}`` or a
            worst-case description; ``rounding``; and ``rng_state``, the generator's
            current ``bit_generator.state`` (None without a generator).

        Raises
        ------
        ValueError
            If a component is a callable that cannot be described.
        """
        out: dict[str, Any] = {}
        for name, c in self._components.items():
            if c is None:
                out[name] = None
            elif isinstance(c, FloatFormat):
                out[name] = {"format": _format_config(c)}
            elif isinstance(c, WorstCase):
                out[name] = c.config()
            else:
                raise ValueError(f"the callable quantizer of {name!r} cannot be serialised")
        out["rounding"] = self._rounding
        out["rng_state"] = None if self._rng is None else _jsonable(self._rng.bit_generator.state)
        return out

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Precision:
        """Rebuild a policy (and its generator's state) from :meth:`config`.

        Parameters
        ----------
        config : dict
            A dict produced by :meth:`config`.

        Returns
        -------
        Precision
            An equivalent policy with a fresh generator in the recorded state.

        Raises
        ------
        ValueError
            If the dict names an unknown field or has a malformed component.
        """
        allowed = (*COMPONENTS, "rounding", "rng_state")
        bad = sorted(set(config) - set(allowed))
        if bad:
            raise ValueError(f"unknown precision config field(s) {bad}; allowed: {allowed}")
        rng = None
        if config.get("rng_state") is not None:
            state = config["rng_state"]
            bitgen = getattr(np.random, state["bit_generator"])()
            bitgen.state = state
            rng = np.random.Generator(bitgen)
        comps: dict[str, Any] = {}
        for name in COMPONENTS:
            c = config.get(name)
            if c is None:
                comps[name] = None
            elif isinstance(c, dict) and "format" in c:
                comps[name] = FloatFormat(**c["format"])
            elif isinstance(c, dict) and "worst_case" in c:
                wc = c["worst_case"]
                comps[name] = worst_case(wc["q"], wc["sign"], reference=wc.get("reference"), rng=rng)
            else:
                raise ValueError(f"malformed precision config for {name!r}: {c!r}")
        return cls(**comps, rounding=config.get("rounding", "nearest_even"), rng=rng)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Precision):
            return NotImplemented
        return (
            self._rounding == other._rounding
            and self._rng is other._rng
            and all(_same_component(self._components[k], other._components[k]) for k in COMPONENTS)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [f"{k}={_describe(c)}" for k, c in self._components.items() if c is not None]
        parts.append(f"rounding={self._rounding!r}")
        if self._rng is not None:
            parts.append("rng=<Generator>")
        return f"Precision({', '.join(parts)})"


def _same_component(a: object, b: object) -> bool:
    if isinstance(a, FloatFormat) and isinstance(b, FloatFormat):
        return a == b
    return a is b


def _describe(c: object) -> str:
    if isinstance(c, FloatFormat):
        return repr(c.name) if c.name else repr(c)
    if isinstance(c, WorstCase):
        return f"worst_case({c.q!r}, {c.sign!r})"
    return repr(c)


def _jsonable(obj: Any) -> Any:
    """Convert NumPy integers inside a bit-generator state to Python ints."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
