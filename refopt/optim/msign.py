"""Matrix sign (the polar factor U V^T) by SVD, and the Newton-Schulz approximation.

Signatures::

    msign(M, rtol=None) -> ndarray
    default_rtol(shape) -> float
    newton_schulz(M, steps=5, *, coefficients=NS5_COEFFICIENTS, eps=1e-7, precision=None,
                  rounding="nearest_even") -> ndarray
    ns_polynomial(s, steps=5, coefficients=NS5_COEFFICIENTS) -> ndarray
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refopt.formats import FloatFormat, check_rounding
from refopt.formats import format as resolve_format
from refopt.optim._common import as_float, check_nonnegative
from refopt.quantize import quantize

__all__ = ["NS5_COEFFICIENTS", "default_rtol", "msign", "newton_schulz", "ns_polynomial"]

NS5_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
"""The quintic Newton-Schulz coefficients :math:`(a, b, c)` used by Muon implementations."""


def _as_matrix(M: object, name: str = "M") -> np.ndarray:
    A = as_float(M, name)
    if A.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got {A.ndim}-D with shape {A.shape}")
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return A


def default_rtol(shape: tuple[int, int]) -> float:
    r"""The default relative tolerance of :func:`refopt.optim.msign`.

    Parameters
    ----------
    shape : tuple of int
        The matrix shape :math:`(m, n)`.

    Returns
    -------
    float
        :math:`\max(m, n)\,\varepsilon_{64}` with :math:`\varepsilon_{64} = 2^{-52}`,
        the rank tolerance of :func:`numpy.linalg.matrix_rank`: singular values below
        :math:`\max(m,n)\,\varepsilon_{64}\,\sigma_{\max}` are indistinguishable from
        the rounding errors of the SVD itself.
    """
    return max(shape) * float(np.finfo(np.float64).eps)


def msign(M: object, rtol: float | None = None) -> np.ndarray:
    r"""The matrix sign (polar factor) :math:`U_r V_r^\top` of a real matrix.

    Parameters
    ----------
    M : array_like, shape (m, n)
        A finite real matrix.
    rtol : float, optional
        Singular values :math:`\sigma_i \le \mathrm{rtol}\cdot\sigma_{\max}` count as
        zero. Default :func:`refopt.optim.default_rtol` (``max(m, n) * 2**-52``).

    Returns
    -------
    numpy.ndarray, shape (m, n)
        :math:`U_r V_r^\top`, where :math:`M = U \Sigma V^\top` is a thin SVD and
        :math:`r` counts the singular values above the tolerance. Exactly zero for a
        zero (or empty) matrix.

    Raises
    ------
    ValueError
        If ``M`` is not a finite 2-D matrix or ``rtol`` is negative.
    TypeError
        If ``M`` is not real floating-point data.

    Notes
    -----
    :math:`U_r V_r^\top` is the unique matrix with the row and column spaces of
    :math:`M` and all nonzero singular values equal to 1; it maximises
    :math:`\langle M, O\rangle` over the spectral-norm unit ball, with value
    :math:`\|M\|_*`, and it is invariant under :math:`M \mapsto cM`, :math:`c > 0`.
    For full-rank :math:`M` it is the orthogonal polar factor (what
    ``scipy.linalg.polar`` returns); for rank-deficient :math:`M` the polar
    factor is not unique and SciPy fills the null spaces with arbitrary directions,
    while this function leaves them out (the zero matrix maps to zero). This is the
    exact orthogonalization of quantized Muon (:prf:ref:`refopt-def-msign`,
    :prf:ref:`refopt-lemma-msign`).

    Provenance: refopt (definition; the rank-aware choice is refopt's).

    Examples
    --------
    >>> import numpy as np
    >>> from refopt.optim import msign
    >>> msign(np.diag([3.0, 0.5]))
    array([[1., 0.],
           [0., 1.]])
    >>> msign(np.zeros((2, 3)))
    array([[0., 0., 0.],
           [0., 0., 0.]])
    """
    A = _as_matrix(M)
    tol = default_rtol(A.shape) if rtol is None else check_nonnegative("rtol", rtol)
    if A.size == 0:
        return np.zeros_like(A)
    # [docs:msign:start]
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    r = int(np.count_nonzero(s > tol * s[0])) if s[0] > 0 else 0
    return U[:, :r] @ Vt[:r]  # [prf:refopt-def-msign] U_r V_r^T
    # [docs:msign:end]


def _iterate_quantizer(
    precision: str | FloatFormat | Callable[[np.ndarray], np.ndarray] | None, rounding: str
) -> Callable[[np.ndarray], np.ndarray] | None:
    if precision is None or callable(precision):
        return precision
    if isinstance(precision, (str, FloatFormat)):
        fmt = resolve_format(precision)
        check_rounding(rounding)
        if rounding == "stochastic":
            raise ValueError("newton_schulz precision does not take rounding='stochastic'")
        return lambda X: np.asarray(quantize(X, fmt, rounding))
    raise TypeError(
        f"precision must be None, a format name, a FloatFormat or a callable, got {type(precision).__name__}"
    )


def newton_schulz(
    M: object,
    steps: int = 5,
    *,
    coefficients: tuple[float, float, float] = NS5_COEFFICIENTS,
    eps: float = 1e-7,
    precision: str | FloatFormat | Callable[[np.ndarray], np.ndarray] | None = None,
    rounding: str = "nearest_even",
) -> np.ndarray:
    r"""Approximate :math:`U V^\top` by the quintic Newton-Schulz iteration.

    Parameters
    ----------
    M : array_like, shape (m, n)
        A finite real matrix.
    steps : int, default 5
        Number of iterations (>= 0).
    coefficients : tuple of 3 floats, default ``NS5_COEFFICIENTS``
        :math:`(a, b, c)` of the odd polynomial
        :math:`p(\sigma) = a\sigma + b\sigma^3 + c\sigma^5`.
    eps : float, default 1e-7
        Added to the Frobenius norm in the pre-normalisation (so zero maps to zero).
    precision : str, FloatFormat or callable, optional
        Quantizer of the iterates: the normalised input :math:`X_0` and, in every
        step, :math:`A = XX^\top`, :math:`B = bA + cA^2` and the new :math:`X` are
        rounded to this format (emulating, e.g., a bf16 iteration with matrix
        products accumulated in higher precision). None keeps everything in float64.
    rounding : str, default "nearest_even"
        Rounding mode of a format ``precision`` (deterministic modes only).

    Returns
    -------
    numpy.ndarray, shape (m, n)
        :math:`X_{\mathrm{steps}}`, with the singular vectors of :math:`M` (up to the
        iterate rounding) and singular values :math:`p^{\circ k}(\sigma_i/(\|M\|_F +
        \mathrm{eps}))`.

    Raises
    ------
    ValueError
        If ``M`` is not a finite 2-D matrix, ``steps`` is negative, or ``eps`` is
        negative.
    TypeError
        For wrong argument types.

    Notes
    -----
    With :math:`X_0 = M/(\|M\|_F + \mathrm{eps})` (all singular values in
    :math:`[0, 1]`), each step computes

    .. math::

        A = X X^\top, \qquad X \leftarrow aX + (bA + cA^2) X,

    on the transposed matrix when :math:`m > n` (so :math:`A` is the smaller Gram
    matrix). The coefficients :math:`(3.4445, -4.7750, 2.0315)` make :math:`p` steep
    at zero (:math:`p'(0) = a`) at the price of not converging: after five steps the
    singular values that started in :math:`[0.05, 1]` lie in about :math:`[0.68, 1.21]`
    rather than at 1 (see
    :func:`refopt.optim.ns_polynomial`); in particular a rank-1 input comes out with
    singular value :math:`p^{\circ 5}(1/(1 + \mathrm{eps}/\sigma))\approx 0.70`.

    Provenance: refopt (the iteration as used by Muon implementations).
    """
    A = _as_matrix(M)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if len(coefficients) != 3:
        raise ValueError(f"coefficients must be three numbers (a, b, c), got {coefficients!r}")
    a, b, c = (float(x) for x in coefficients)
    eps = check_nonnegative("eps", eps)
    q = _iterate_quantizer(precision, rounding)
    keep = (lambda X: X) if q is None else q
    transposed = A.shape[0] > A.shape[1]
    # [docs:newton-schulz:start]
    X = A.T if transposed else A
    X = keep(X / (np.linalg.norm(X) + eps))
    for _ in range(int(steps)):
        G = keep(X @ X.T)
        B = keep(b * G + c * (G @ G))
        X = keep(a * X + B @ X)
    # [docs:newton-schulz:end]
    return np.ascontiguousarray(X.T) if transposed else X


def ns_polynomial(
    s: object, steps: int = 5, coefficients: tuple[float, float, float] = NS5_COEFFICIENTS
) -> np.ndarray:
    r"""The map :math:`\sigma \mapsto p^{\circ k}(\sigma)` that Newton-Schulz applies to singular values.

    Parameters
    ----------
    s : array_like
        Normalised singular values (in :math:`[0, 1]` after the Frobenius scaling).
    steps : int, default 5
        Number of compositions :math:`k`.
    coefficients : tuple of 3 floats, default ``NS5_COEFFICIENTS``
        :math:`(a, b, c)` of :math:`p(\sigma) = a\sigma + b\sigma^3 + c\sigma^5`.

    Returns
    -------
    numpy.ndarray
        :math:`p^{\circ k}(\sigma)` elementwise.

    Notes
    -----
    Because :math:`XX^\top` and :math:`X` share singular vectors, one step maps every
    singular value by :math:`p`, so the exact-arithmetic output of
    :func:`refopt.optim.newton_schulz` is :math:`U\,p^{\circ k}(\Sigma/\|M\|_F)\,V^\top`.

    Provenance: refopt.
    """
    a, b, c = (float(x) for x in coefficients)
    x = as_float(s, "s")
    for _ in range(int(steps)):
        x2 = x * x
        x = x * (a + x2 * (b + c * x2))
    return x
