"""Convergence-bound calculators for (quantized) Adam and Muon, and mantissa budgets.

Every calculator returns a :class:`refopt.theory.BoundResult`: the total ``value``, the
named ``terms``, the ``conditions`` it needs (``value`` is ``inf`` when one fails) and its
provenance. Three kinds of results live here, labelled by the provenance rule:

* Défossez et al. 2022, exact (:func:`refopt.theory.defossez_adagrad`,
  :func:`refopt.theory.defossez_adam`, :func:`refopt.theory.defossez_adam_momentum`);
* what the paper states (:func:`refopt.theory.adam_condition`,
  :func:`refopt.theory.muon_factor`, :func:`refopt.theory.paper_schedule`,
  :data:`refopt.theory.PAPER_ORDERS`);
* refopt's own bounds, proven in the docs and checked by tests
  (:func:`refopt.theory.adam_bound`, :func:`refopt.theory.muon_bound`), and the mantissa
  budgets built on them (:func:`refopt.theory.mantissa_budget`,
  :func:`refopt.theory.largest_horizon`).
"""

from refopt.theory.adam_bound import adam_bound, adam_update_bound, adam_weight_norm_bound
from refopt.theory.budget import (
    COMPONENTS,
    EXAMPLES,
    MantissaBudget,
    component_errors,
    largest_horizon,
    mantissa_budget,
    scheduled_bound,
)
from refopt.theory.defossez import defossez_adagrad, defossez_adam, defossez_adam_momentum
from refopt.theory.muon_bound import muon_bound
from refopt.theory.paper import (
    PAPER_ORDERS,
    PAPER_RATES,
    adam_condition,
    muon_factor,
    paper_schedule,
)
from refopt.theory.result import BoundResult

__all__ = [
    "COMPONENTS",
    "EXAMPLES",
    "PAPER_ORDERS",
    "PAPER_RATES",
    "BoundResult",
    "MantissaBudget",
    "adam_bound",
    "adam_condition",
    "adam_update_bound",
    "adam_weight_norm_bound",
    "component_errors",
    "defossez_adagrad",
    "defossez_adam",
    "defossez_adam_momentum",
    "largest_horizon",
    "mantissa_budget",
    "muon_bound",
    "muon_factor",
    "paper_schedule",
    "scheduled_bound",
]
