"""The generalized Rosenbrock function on a matrix variable, with an optional noisy oracle.

How the function is applied to a matrix
---------------------------------------
The paper optimises "the generalized Rosenbrock function on a 50 x 100 matrix
variable". refopt states the convention it uses precisely: the matrix
:math:`W \\in \\mathbb{R}^{m \\times n}` is flattened **row-major** (C order) into
:math:`x = \\operatorname{vec}_C(W) \\in \\mathbb{R}^{d}`, :math:`d = mn`, and

.. math::

    F(W) = \\sum_{i=1}^{d-1} \\bigl[\\,a (x_{i+1} - x_i^2)^2 + (1 - x_i)^2\\,\\bigr],
    \\qquad a = 100.

This is *the* generalized Rosenbrock function of dimension :math:`d = 5000` evaluated
at :math:`\\operatorname{vec}_C(W)`, so its known facts carry over unchanged (unique
global minimiser :math:`W^\\star = \\mathbf{1}`, :math:`F^\\star = 0`, a curved
valley that first-order methods follow slowly), while Muon sees the 50 x 100 matrix
shape. The alternative ``chain="rows"`` (one independent chain per row, the last
entry of a row not coupled to the first of the next) is offered for comparison; it
has the same minimiser and differs from the flat chain by the :math:`m - 1`
cross-row terms only.
"""

from __future__ import annotations

import numpy as np

from refopt.problems.objective import Objective, check_noise

__all__ = ["Rosenbrock"]

_CHAINS = ("flat", "rows")


class Rosenbrock(Objective):
    """Generalized Rosenbrock objective on an ``m x n`` matrix variable.

    Parameters
    ----------
    shape : tuple of int, default (50, 100)
        The shape of the matrix variable (the paper's size is 50 x 100).
    a : float, default 100.0
        The valley's curvature coefficient.
    chain : {"flat", "rows"}, default "flat"
        ``"flat"``: one chain over the row-major flattening (the default, see the
        module docstring); ``"rows"``: an independent chain per row.
    noise : float, default 0.0
        Standard deviation :math:`\\sigma` per coordinate of the noisy oracle
        :meth:`stochastic_grad`; 0 makes the oracle exact.
    noise_kind : {"gaussian", "uniform"}, default "gaussian"
        Distribution of the additive noise: ``"gaussian"`` draws
        :math:`\\mathcal{N}(0, \\sigma^2)`; ``"uniform"`` draws from
        :math:`[-\\sqrt{3}\\sigma, \\sqrt{3}\\sigma]` (same variance, bounded, so the
        almost-sure gradient bound of the Adam analysis can hold).

    Raises
    ------
    ValueError
        If the shape is not two positive integers, ``a`` or ``noise`` is negative or
        ``chain``/``noise_kind`` is not one of the allowed values.

    Notes
    -----
    The noise model of :meth:`stochastic_grad` is additive and independent of :math:`W`
    (:class:`refopt.problems.objective.Objective`):
    :math:`\\mathbb{E}\\|g - \\nabla F\\|_F^2 = mn\\sigma^2`.

    Gradient (flat chain, :math:`x = \\operatorname{vec}_C(W)`):

    .. math::

        \\partial_i F = -4a x_i (x_{i+1} - x_i^2) - 2(1 - x_i)
                        + 2a (x_i - x_{i-1}^2),

    where the first two terms exist for :math:`i < d` and the last for :math:`i > 1`.

    Provenance: refopt (the paper names the function and the matrix size only).
    """

    def __init__(
        self,
        shape: tuple[int, int] = (50, 100),
        a: float = 100.0,
        *,
        chain: str = "flat",
        noise: float = 0.0,
        noise_kind: str = "gaussian",
    ) -> None:
        if (
            not isinstance(shape, tuple | list)
            or len(shape) != 2
            or not all(isinstance(s, int | np.integer) and s >= 1 for s in shape)
        ):
            raise ValueError(f"shape must be two positive integers, got {shape!r}")
        if chain not in _CHAINS:
            raise ValueError(f"chain must be one of {_CHAINS}, got {chain!r}")
        if not a >= 0:
            raise ValueError(f"a must be non-negative, got {a!r}")
        check_noise(noise, noise_kind)
        self.shape = (int(shape[0]), int(shape[1]))
        self.a = float(a)
        self.chain = chain
        self.noise = float(noise)
        self.noise_kind = noise_kind

    def minimizer(self) -> np.ndarray:
        """Return the global minimiser, the all-ones matrix.

        Returns
        -------
        numpy.ndarray
            ``np.ones(shape)``.
        """
        return np.ones(self.shape)

    def initial_point(self, kind: str = "classic") -> np.ndarray:
        """Return a standard starting point.

        Parameters
        ----------
        kind : {"classic", "zeros"}, default "classic"
            ``"classic"``: entries alternate -1.2, 1.0 along the chain (the textbook
            start of Rosenbrock's problem); ``"zeros"``: the zero matrix.

        Returns
        -------
        numpy.ndarray
            A new float64 array of ``shape``.

        Raises
        ------
        ValueError
            For an unknown ``kind``.
        """
        if kind == "zeros":
            return np.zeros(self.shape)
        if kind == "classic":
            x = np.ones(self.shape[0] * self.shape[1])
            x[0::2] = -1.2
            return x.reshape(self.shape)
        raise ValueError(f"kind must be 'classic' or 'zeros', got {kind!r}")

    def _chains(self, w: np.ndarray) -> np.ndarray:
        return w.reshape(1, -1) if self.chain == "flat" else w

    def _value(self, w: np.ndarray) -> float:
        x = self._chains(w)
        head, tail = x[:, :-1], x[:, 1:]
        return float(np.sum(self.a * (tail - head**2) ** 2 + (1.0 - head) ** 2))

    def _grad(self, w: np.ndarray) -> np.ndarray:
        x = self._chains(w)
        head, tail = x[:, :-1], x[:, 1:]
        r = tail - head**2
        g = np.zeros_like(x)
        g[:, :-1] = -4.0 * self.a * head * r - 2.0 * (1.0 - head)
        g[:, 1:] += 2.0 * self.a * r
        return g.reshape(self.shape)

    def __repr__(self) -> str:
        return (
            f"Rosenbrock(shape={self.shape}, a={self.a}, chain={self.chain!r}, "
            f"noise={self.noise}, noise_kind={self.noise_kind!r})"
        )
