"""Quantized optimizers: Adam and Muon as pure functions, with traces and an oracle checker.

The optimizers follow optax's shape: ``opt = adam(...)``, ``state = opt.init(w)``,
``w, state = opt.update(w, g_q, state)``, where ``g_q`` is the quantized gradient
computed at the quantized weights (:func:`refopt.optim.quantized_grad`). A
:class:`refopt.optim.Precision` says which format and rounding each quantized quantity
uses (:prf:ref:`paper-framework`).

Public API (exact signatures in each module's docstring):

- policies: :class:`refopt.optim.Precision`, :func:`refopt.optim.worst_case`;
- optimizers: :func:`refopt.optim.adam`, :func:`refopt.optim.muon`,
  :func:`refopt.optim.muon_adam`, :func:`refopt.optim.torch_adam_bf16`;
- orthogonalization: :func:`refopt.optim.msign`, :func:`refopt.optim.newton_schulz`,
  :func:`refopt.optim.ns_polynomial`;
- running and checking: :func:`refopt.optim.quantized_grad`,
  :func:`refopt.optim.sample_gradient`, :func:`refopt.optim.run`,
  :class:`refopt.optim.Trace`, :func:`refopt.optim.check_trace`,
  :func:`refopt.optim.write_vectors`.
"""

from refopt.optim._common import StepResult
from refopt.optim.adam import ADAM_VARIANTS, Adam, AdamState, adam, analysed_step_size
from refopt.optim.base import Optimizer
from refopt.optim.check import CheckReport, Divergence, check_trace, ulp_distance
from refopt.optim.combined import MuonAdam, MuonAdamState, muon_adam
from refopt.optim.msign import NS5_COEFFICIENTS, default_rtol, msign, newton_schulz, ns_polynomial
from refopt.optim.muon import Muon, MuonState, muon, shape_scale
from refopt.optim.precision import COMPONENTS, Precision, WorstCase, worst_case
from refopt.optim.registry import optimizer_from_config
from refopt.optim.torch_profile import TorchAdamBF16, fma_fp32, torch_adam_bf16
from refopt.optim.vectors import POLICIES, edge_set, write_vectors
from refopt.optim.trace import RECORDABLE, GradSample, Trace, quantized_grad, run, sample_gradient

__all__ = [
    "ADAM_VARIANTS",
    "COMPONENTS",
    "NS5_COEFFICIENTS",
    "POLICIES",
    "RECORDABLE",
    "Adam",
    "AdamState",
    "CheckReport",
    "Divergence",
    "GradSample",
    "Muon",
    "MuonAdam",
    "MuonAdamState",
    "MuonState",
    "Optimizer",
    "Precision",
    "StepResult",
    "TorchAdamBF16",
    "Trace",
    "WorstCase",
    "adam",
    "analysed_step_size",
    "check_trace",
    "default_rtol",
    "edge_set",
    "fma_fp32",
    "msign",
    "muon",
    "muon_adam",
    "newton_schulz",
    "ns_polynomial",
    "optimizer_from_config",
    "quantized_grad",
    "run",
    "sample_gradient",
    "shape_scale",
    "torch_adam_bf16",
    "ulp_distance",
    "worst_case",
    "write_vectors",
]
