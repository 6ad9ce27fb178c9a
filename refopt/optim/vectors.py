"""Golden vectors: reference outputs other implementations can test against without Python.

Signatures::

    edge_set(fmt) -> ndarray
    POLICIES: dict[str, Callable[[], Precision]]
    write_vectors(out, *, steps=20, seed=0) -> dict   (the manifest)

``write_vectors`` writes into a directory:

- ``quantize.npz``: for every preset format, the edge set of :func:`refopt.optim.edge_set` and
  its rounding in every deterministic mode, with bit patterns as hex strings;
- one trace per optimizer and precision policy (``<optimizer>_<policy>.npz`` in the
  layout of :class:`refopt.optim.Trace`), with the config another implementation
  needs and the oracle gradients it should consume;
- ``manifest.json`` describing every file and array, the seed, formats and roundings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from refopt.formats import ROUNDING_MODES, FloatFormat, list_formats
from refopt.formats import format as resolve_format
from refopt.optim.adam import adam
from refopt.optim.base import Optimizer
from refopt.optim.muon import muon
from refopt.optim.precision import Precision
from refopt.optim.torch_profile import torch_adam_bf16
from refopt.optim.trace import Trace, run
from refopt.quantize import quantize

__all__ = ["DETERMINISTIC_MODES", "POLICIES", "edge_set", "write_vectors"]

DETERMINISTIC_MODES = tuple(m for m in ROUNDING_MODES if m != "stochastic")

POLICIES: dict[str, Callable[[], Precision]] = {
    "exact": lambda: Precision(),
    "bf16": lambda: Precision("bf16", "bf16", "bf16", "bf16"),
    "fp8_grads": lambda: Precision(weights="bf16", grads="fp8_e4m3fn", m="bf16", v="fp32"),
    "m4_toward_zero": lambda: Precision(*(4 * [FloatFormat.mantissa_only(4)]), rounding="toward_zero"),
}
"""Named precision policies of the golden optimizer traces."""


def edge_set(fmt: FloatFormat | str) -> np.ndarray:
    """Float64 inputs where quantizers go wrong, for one format.

    Parameters
    ----------
    fmt : FloatFormat or str
        The target format.

    Returns
    -------
    numpy.ndarray
        Sorted-by-construction float64 values, both signs: zeros, the smallest
        subnormal and half of it, the largest subnormal, the tie between it and the
        smallest normal, the smallest normal, ties and near-ties around 1, the largest
        finite value, the overflow threshold and its neighbours, twice the largest
        value, infinities and NaN (each tie also at its float64 neighbours).
    """
    f = resolve_format(fmt)
    q = f.eps  # ulp of 1
    sub = f.xmin_subnormal
    big_ulp = np.ldexp(1.0, f.emax - f.mantissa_bits)
    with np.errstate(over="ignore"):
        ties = [sub / 2, f.xmin - sub / 2, 1 + q / 2, 1 + 3 * q / 2, 1 - q / 4, f.xmax + big_ulp / 2]
        values = [0.0, sub, 0.75 * sub, f.xmin - sub, f.xmin, 1.0, 1 + q, 1.5, 3.0, f.xmax, 2 * f.xmax, np.inf]
        for t in ties:
            values += [t, np.nextafter(t, 0.0), np.nextafter(t, np.inf)]
    pos = np.array([v for v in values if v >= 0 and not np.isnan(v)], dtype=np.float64)
    return np.concatenate([pos, -pos, [np.nan]])


def _hex_bits(values: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Bit patterns as hex strings; ``"none"`` for a value the format cannot encode (NaN in fp6/fp4)."""
    width = (fmt.bits + 3) // 4

    def bits(v: float) -> str:
        if np.isnan(v) and not fmt.has_nan:
            return "none"
        return f"0x{fmt.encode(v):0{width}x}"

    return np.array([bits(float(v)) for v in values])


def _f64_bits(values: np.ndarray) -> np.ndarray:
    return np.array([f"0x{int(b):016x}" for b in np.asarray(values, dtype=np.float64).view(np.uint64)])


def _quantize_vectors(path: Path) -> dict[str, Any]:
    arrays: dict[str, np.ndarray] = {}
    formats: dict[str, Any] = {}
    for name, fmt in list_formats().items():
        x = edge_set(fmt)
        arrays[f"{name}/input"] = x
        arrays[f"{name}/input_bits"] = _f64_bits(x)
        formats[name] = {"exponent_bits": fmt.exponent_bits, "mantissa_bits": fmt.mantissa_bits, "bias": fmt.bias,
                         "subnormals": fmt.subnormals, "top_binade": fmt.top_binade, "has_nan": fmt.has_nan,
                         "overflow": fmt.overflow, "bits": fmt.bits}
        for mode in DETERMINISTIC_MODES:
            y = np.asarray(quantize(x, fmt, mode))
            arrays[f"{name}/{mode}/output"] = y
            arrays[f"{name}/{mode}/output_bits"] = _hex_bits(y, fmt)
    np.savez(path, **arrays)
    return {
        "file": path.name,
        "formats": formats,
        "modes": list(DETERMINISTIC_MODES),
        "arrays": {
            "<format>/input": "float64 edge-set inputs (see refopt.optim.vectors.edge_set)",
            "<format>/input_bits": "the inputs' float64 bit patterns, hex strings",
            "<format>/<mode>/output": "refopt.quantize(input, format, mode), as float64",
            "<format>/<mode>/output_bits": "the outputs' bit patterns in the target format, hex strings "
            "('none': NaN input to a format without NaN, which refopt.quantize returns as NaN)",
        },
    }


def _problem(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, Callable[..., Any]]:
    rng = np.random.default_rng(seed)
    h = np.exp(rng.uniform(np.log(0.1), np.log(10.0), shape))
    target = rng.standard_normal(shape)
    w0 = rng.standard_normal(shape)

    def oracle(wq: np.ndarray, noise: np.random.Generator) -> tuple[float, np.ndarray]:
        r = wq - target
        return 0.5 * float(np.sum(h * r * r)), h * r + 0.1 * noise.standard_normal(shape)

    return w0, oracle


def _optimizers(policy: Precision) -> dict[str, tuple[Optimizer, tuple[int, ...]]]:
    return {
        "adam_analysed": (adam(1e-2, precision=policy), (64,)),
        "adam_practical": (
            adam(1e-2, variant="practical", weight_decay=0.01, decoupled=True, precision=policy),
            (64,),
        ),
        "muon": (muon(2e-2, precision=policy), (8, 6)),
    }


def write_vectors(out: str | os.PathLike[str], *, steps: int = 20, seed: int = 0) -> dict[str, Any]:
    """Write the golden vectors into directory ``out`` (created if needed).

    Parameters
    ----------
    out : str or path-like
        Output directory.
    steps : int, default 20
        Steps of every optimizer trace.
    seed : int, default 0
        Seed of the test problems (a noisy diagonal quadratic per trace).

    Returns
    -------
    dict
        The manifest, also written to ``out/manifest.json``.

    Raises
    ------
    ValueError
        If ``steps`` or ``seed`` is invalid.

    Notes
    -----
    To test an optimizer implementation: load a trace, build the optimizer and
    precision from its ``config``, start from ``w[0]``, feed the gradient ``g[t]`` at
    step ``t`` (the oracle's gradient at ``wq[t]``), record ``w, wq, g, gq, m, v,
    update`` in the same layout and run ``refopt check yours.npz --against
    golden.npz`` (or without ``--against``: the reference is recomputed). Muon's
    SVD and any float64 arithmetic may differ in the last bits between libraries:
    use ``--ulps`` for those components.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"seed": seed, "steps": steps, "quantize": _quantize_vectors(root / "quantize.npz")}
    traces = []
    runs: list[tuple[str, str, Optimizer, tuple[int, ...]]] = []
    for policy_name, make in POLICIES.items():
        for opt_name, (opt, shape) in _optimizers(make()).items():
            runs.append((opt_name, policy_name, opt, shape))
    runs.append(("torch_adam_bf16", "bf16_per_op", torch_adam_bf16(1e-2), (64,)))
    for i, (opt_name, policy_name, opt, shape) in enumerate(runs):
        w0, oracle = _problem(shape, seed + i)
        if opt_name == "torch_adam_bf16":
            w0 = np.asarray(quantize(w0, "bf16"))
        trace = run(oracle, opt, w0, steps, rng=seed + 1000 + i)
        name = f"{opt_name}_{policy_name}.npz"
        trace.save(root / name)
        traces.append(_describe_trace(name, opt_name, policy_name, trace, seed + i, seed + 1000 + i))
    manifest["traces"] = traces
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _describe_trace(
    name: str, opt_name: str, policy: str, trace: Trace, seed: int, noise_seed: int
) -> dict[str, Any]:
    return {
        "file": name,
        "optimizer": opt_name,
        "policy": policy,
        "problem": "F(w) = sum h (w - target)^2 / 2 with gradient noise 0.1 N(0, 1); "
        f"h, target, w0 from numpy default_rng({seed}), the noise from default_rng({noise_seed})",
        "problem_seed": seed,
        "noise_seed": noise_seed,
        "config": trace.config,
        "arrays": {
            k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(trace.arrays.items())
        },
        "layout": "see refopt.optim.trace: rows = steps 1..n; w, wq before the step; g, gq, loss at wq; "
        "m, v, update after the step; final = weights after the last step",
    }
