"""The interface shared by the matrix test problems, and their additive noise model.

:class:`refopt.problems.Rosenbrock` and :class:`refopt.problems.Quadratic` derive from
:class:`refopt.problems.objective.Objective`, which checks the point, evaluates the
value and the exact gradient, and adds the noise of the stochastic oracle.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Objective"]

NOISE_KINDS = ("gaussian", "uniform")


def check_noise(noise: float, noise_kind: str) -> None:
    """Raise ``ValueError`` for a negative ``noise`` or unknown ``noise_kind``."""
    if noise_kind not in NOISE_KINDS:
        raise ValueError(f"noise_kind must be one of {NOISE_KINDS}, got {noise_kind!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be non-negative, got {noise!r}")


def additive_noise(
    shape: tuple[int, ...], sigma: float, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """Return ``sigma`` times i.i.d. zero-mean unit-variance noise of ``shape``.

    One draw per entry in C order (also when ``sigma == 0``); ``"uniform"`` draws from
    ``[-sqrt(3), sqrt(3)]`` so the variance is 1 and the noise is bounded.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if kind == "gaussian":
        xi = rng.standard_normal(shape)
    else:
        xi = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), shape)
    return sigma * xi


class Objective:
    """Base class of the matrix test problems: value, exact gradient, noisy oracle.

    A subclass sets ``shape``, ``noise`` and ``noise_kind`` and implements ``_value(w)``
    and ``_grad(w)`` for a float64 array ``w`` already checked to have ``shape``.

    Notes
    -----
    The noise model is additive and independent of :math:`W`:
    :math:`g(W; \\xi) = \\nabla F(W) + \\sigma \\xi` with i.i.d. zero-mean unit-variance
    entries :math:`\\xi` (``noise`` :math:`= \\sigma`), so :math:`\\mathbb{E}[g] = \\nabla F`
    and :math:`\\mathbb{E}\\|g - \\nabla F\\|_F^2 = \\sigma^2` times the number of entries.

    Provenance: refopt.
    """

    shape: tuple[int, ...]
    noise: float
    noise_kind: str

    @property
    def fstar(self) -> float:
        """float: The minimum value, 0."""
        return 0.0

    def _check(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        if w.shape != self.shape:
            raise ValueError(f"w must have shape {self.shape}, got {w.shape}")
        return w

    def _value(self, w: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _grad(self, w: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def value(self, w: np.ndarray) -> float:
        """Return :math:`F(W)`.

        Parameters
        ----------
        w : array_like
            The point: real numbers of ``shape``, converted to float64.

        Returns
        -------
        float
            The objective value at ``w``.

        Raises
        ------
        ValueError
            If ``w`` does not have ``shape``.
        """
        return self._value(self._check(w))

    def grad(self, w: np.ndarray) -> np.ndarray:
        """Return the exact gradient :math:`\\nabla F(W)` (formula in the class docs).

        Parameters
        ----------
        w : array_like
            Where to differentiate (as in :meth:`value`).

        Returns
        -------
        numpy.ndarray
            The gradient, a new float64 array shaped like ``w``.

        Raises
        ------
        ValueError
            For a point of another shape.
        """
        return self._grad(self._check(w))

    def stochastic_grad(self, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the unbiased noisy gradient :math:`\\nabla F(W) + \\sigma \\xi` (class Notes).

        Parameters
        ----------
        w : array_like
            A point of ``shape``.
        rng : numpy.random.Generator
            The source of the noise; one draw per entry in C order (even when
            ``noise == 0``, so streams stay aligned across settings).

        Returns
        -------
        numpy.ndarray
            The noisy gradient (a new float64 array).

        Raises
        ------
        TypeError
            If ``rng`` is not a :class:`numpy.random.Generator`.
        ValueError
            If ``w`` does not have ``shape``.
        """
        return self.grad(w) + additive_noise(self.shape, self.noise, self.noise_kind, rng)
