"""Additive noise shared by the problems' stochastic oracles (private)."""

from __future__ import annotations

import numpy as np

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
