"""Separable quadratics with a known smoothness constant L.

.. math::

    F(W) = \\tfrac12 \\sum_{ij} h_{ij} (W_{ij} - W^\\star_{ij})^2,
    \\qquad \\nabla F(W) = h \\odot (W - W^\\star),
    \\qquad L = \\max_{ij} h_{ij},\\ \\mu = \\min_{ij} h_{ij}.

The Hessian is diagonal in the entry basis, so :math:`L` is exact (the largest
eigenvalue), :math:`F^\\star = 0` and the minimiser is :math:`W^\\star`.
"""

from __future__ import annotations

import numpy as np

from refopt.problems.objective import Objective, check_noise

__all__ = ["Quadratic"]


class Quadratic(Objective):
    """A separable quadratic :math:`\\tfrac12 \\sum h_{ij}(W_{ij}-W^\\star_{ij})^2`.

    Parameters
    ----------
    curvatures : array_like
        The positive diagonal Hessian :math:`h` (its shape is the variable's shape).
    target : array_like, optional
        The minimiser :math:`W^\\star` (zeros when omitted); same shape as ``curvatures``.
    noise : float, default 0.0
        Standard deviation per entry of the additive noise of :meth:`stochastic_grad`
        (noise model: :class:`refopt.problems.objective.Objective`).
    noise_kind : {"gaussian", "uniform"}, default "gaussian"
        Noise distribution (``"uniform"`` is bounded, same variance).

    Raises
    ------
    ValueError
        If a curvature is not positive and finite, shapes disagree, or the noise
        settings are invalid.

    Notes
    -----
    Provenance: refopt (standard test problem).
    """

    def __init__(
        self,
        curvatures: np.ndarray,
        target: np.ndarray | None = None,
        *,
        noise: float = 0.0,
        noise_kind: str = "gaussian",
    ) -> None:
        h = np.array(curvatures, dtype=np.float64)
        if h.size == 0 or not np.all(np.isfinite(h)) or not np.all(h > 0):
            raise ValueError("curvatures must be a non-empty array of positive finite numbers")
        t = np.zeros_like(h) if target is None else np.array(target, dtype=np.float64)
        if t.shape != h.shape:
            raise ValueError(f"target must have shape {h.shape}, got {t.shape}")
        check_noise(noise, noise_kind)
        self.curvatures = h
        self.target = t
        self.noise = float(noise)
        self.noise_kind = noise_kind

    @classmethod
    def logspaced(
        cls,
        shape: tuple[int, ...],
        L: float = 1.0,
        condition: float = 100.0,
        *,
        target: np.ndarray | None = None,
        noise: float = 0.0,
        noise_kind: str = "gaussian",
    ) -> Quadratic:
        """Return a quadratic whose curvatures are log-spaced in ``[L/condition, L]``.

        Parameters
        ----------
        shape : tuple of int
            The variable's shape.
        L : float, default 1.0
            The largest curvature (the smoothness constant).
        condition : float, default 100.0
            The ratio ``L / mu`` (>= 1).
        target, noise, noise_kind
            As in :class:`refopt.problems.Quadratic`.

        Returns
        -------
        refopt.problems.Quadratic
            Curvatures in C order from ``L`` down to ``L / condition``.

        Raises
        ------
        ValueError
            If ``L <= 0`` or ``condition < 1``.
        """
        if not L > 0:
            raise ValueError(f"L must be positive, got {L!r}")
        if not condition >= 1:
            raise ValueError(f"condition must be >= 1, got {condition!r}")
        n = int(np.prod(shape))
        h = L * np.logspace(0.0, -np.log10(condition), n).reshape(shape)
        return cls(h, target, noise=noise, noise_kind=noise_kind)

    @property
    def shape(self) -> tuple[int, ...]:
        """tuple of int: The variable's shape."""
        return self.curvatures.shape

    @property
    def L(self) -> float:
        """float: The smoothness constant, the largest curvature."""
        return float(self.curvatures.max())

    @property
    def mu(self) -> float:
        """float: The strong-convexity constant, the smallest curvature."""
        return float(self.curvatures.min())

    def minimizer(self) -> np.ndarray:
        """Return a copy of the minimiser :math:`W^\\star`.

        Returns
        -------
        numpy.ndarray
            The target.
        """
        return self.target.copy()

    def _value(self, w: np.ndarray) -> float:
        d = w - self.target
        return float(0.5 * np.sum(self.curvatures * d * d))

    def _grad(self, w: np.ndarray) -> np.ndarray:
        return self.curvatures * (w - self.target)

    def __repr__(self) -> str:
        return f"Quadratic(shape={self.shape}, L={self.L:g}, mu={self.mu:g}, noise={self.noise})"
