"""Rebuilding an optimizer from its JSON configuration (``opt.config()``).

Signature::

    optimizer_from_config(config) -> Optimizer
"""

from __future__ import annotations

from typing import Any

from refopt.formats import FloatFormat
from refopt.optim.adam import Adam, adam
from refopt.optim.base import Optimizer
from refopt.optim.combined import muon_adam
from refopt.optim.muon import Muon, muon
from refopt.optim.precision import Precision
from refopt.optim.torch_profile import torch_adam_bf16

__all__ = ["optimizer_from_config"]


def _adam(hyper: dict[str, Any], precision: Precision) -> Adam:
    lr = hyper.pop("lr")
    return adam(lr, **hyper, precision=precision)


def _muon(hyper: dict[str, Any], precision: Precision) -> Muon:
    lr = hyper.pop("lr")
    if isinstance(hyper.get("ns_precision"), dict):
        hyper["ns_precision"] = FloatFormat(**hyper["ns_precision"])
    hyper["ns_coefficients"] = tuple(hyper.get("ns_coefficients", ()))
    return muon(lr, **hyper, precision=precision)


def optimizer_from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild the optimizer described by ``opt.config()``.

    Parameters
    ----------
    config : dict
        A configuration as produced by the ``config()`` method of
        :func:`refopt.optim.adam`, :func:`refopt.optim.muon`,
        :func:`refopt.optim.muon_adam` or :func:`refopt.optim.torch_adam_bf16`
        optimizers (possibly after a JSON round trip).

    Returns
    -------
    Optimizer
        An equivalent optimizer; a stochastic-rounding precision gets a fresh
        generator in the recorded state.

    Raises
    ------
    ValueError
        If the optimizer name is unknown or a field is malformed.
    """
    if not isinstance(config, dict) or "optimizer" not in config:
        raise ValueError("an optimizer config must be a dict with an 'optimizer' name")
    cfg = dict(config)
    name = cfg.pop("optimizer")
    try:
        if name == "torch_adam_bf16":
            return torch_adam_bf16(cfg.pop("lr"), **cfg)
        precision = Precision.from_config(cfg.pop("precision"))
        if name == "adam":
            return _adam(cfg, precision)
        if name == "muon":
            return _muon(cfg, precision)
        if name == "muon_adam":
            return muon_adam(_muon(dict(cfg["muon"]), precision), _adam(dict(cfg["adam"]), precision))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed {name!r} optimizer config: {exc}") from None
    raise ValueError(f"unknown optimizer {name!r}; known: adam, muon, muon_adam, torch_adam_bf16")
