"""Test problems: Rosenbrock on a matrix, quadratics, a 4-layer MLP and its data.

* :class:`refopt.problems.Rosenbrock` -- the generalized Rosenbrock function on a
  50 x 100 matrix (row-major chain), exact gradient and a noisy oracle.
* :class:`refopt.problems.Quadratic` -- separable quadratics with known ``L``.
* :class:`refopt.problems.MLP` -- a 4-layer ReLU network with softmax cross-entropy.
* :func:`refopt.problems.load_dataset` -- CIFAR-10 (safe loader) or the digits fallback.

These modules need NumPy only; the digits fallback needs scikit-learn.
"""

from refopt.problems.data import DataError, Dataset, load_cifar10, load_dataset, load_digits
from refopt.problems.mlp import MLP
from refopt.problems.quadratic import Quadratic
from refopt.problems.rosenbrock import Rosenbrock

__all__ = [
    "MLP",
    "DataError",
    "Dataset",
    "Quadratic",
    "Rosenbrock",
    "load_cifar10",
    "load_dataset",
    "load_digits",
]
