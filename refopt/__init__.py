"""refopt: adaptive optimizers under floating-point quantization, as a reference.

refopt is a pure-NumPy reference implementation of the framework of Tang, Li and Zou,
"A Convergence Analysis of Adaptive Optimizers under Floating-point Quantization"
(arXiv 2510.21314, ICLR 2026): a correctly rounded floating-point quantizer
(:func:`refopt.quantize`, checked against the mpmath oracle :func:`refopt.exact`),
quantized Adam and Muon (:mod:`refopt.optim`), closed-form convergence-bound
calculators (:mod:`refopt.theory`), test problems (:mod:`refopt.problems`) and the
experiments that reproduce the paper's figures (:mod:`refopt.experiments`).
"""

from refopt.formats import FloatFormat, format, list_formats
from refopt.quantize import ROUNDING_MODES, quantize
from refopt.exact import exact

__version__ = "0.1.0"

__all__ = [
    "FloatFormat",
    "ROUNDING_MODES",
    "__version__",
    "exact",
    "format",
    "list_formats",
    "quantize",
]
