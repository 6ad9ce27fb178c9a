"""The seven studies: one builder per study, each returning its grid and settings.

:func:`refopt.experiments.studies.get_study` takes a study name and the scale
(``"quick"`` or ``"full"``) and returns a :class:`refopt.experiments.studies.Study`:
which cell function to run, the list of cells, the study seed, and the settings with
the reason for each choice (copied into the report). Hyper-parameters are common defaults or were fixed from full-precision
behaviour only, never tuned toward a claimed result; the paper's own values are
unknown.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from refopt.experiments.cells import q_for_rho

__all__ = ["SCALES", "STUDIES", "Study", "get_study"]

SCALES = ("quick", "full")


@dataclass(frozen=True)
class Study:
    """One study: a named grid of cells for one cell function.

    Attributes
    ----------
    name : str
        Short identifier (results go to ``cells/<name>/``).
    number : int
        Position in the report (1..7).
    title : str
        Report heading.
    question : str
        What the study shows, in one sentence.
    cell : str
        Key of :data:`refopt.experiments.cells.CELLS`.
    cells : list of dict
        The grid.
    seed : int
        The study seed all cell seeds derive from.
    settings : dict of str to str
        Each fixed setting with the reason it was chosen.
    """

    name: str
    number: int
    title: str
    question: str
    cell: str
    cells: list[dict[str, Any]]
    seed: int
    settings: dict[str, str] = field(default_factory=dict)


_ROSENBROCK = {
    "problem": "Generalized Rosenbrock (a = 100) on a 50 x 100 matrix, one chain over the row-major "
    "flattening (the d = 5000 function; Muon sees the matrix); exact gradients, so quantization is "
    "the only source of noise",
    "start": "W0 = 0 (F = 4999): the usual start of the chained function, exactly representable in "
    "every format",
    "Adam": "PyTorch-style Adam (EMA moments, bias correction, eps = 1e-8 outside the root), "
    "lr = 1e-3, b1 = 0.9, b2 = 0.999: the common defaults, not tuned",
    "Muon": "SVD orthogonalisation U V^T (the analysed form), EMA momentum beta = 0.95 (common "
    "default), lr = 3e-3: the best of {3e-3, 1e-2, 3e-2, 1e-1} for full-precision Muon on this "
    "problem (chosen before any quantized run)",
    "metric": "Frobenius norm of the exact gradient at the full-precision master weights; 'tail' "
    "= median over the last 20% of the recorded points (less sensitive to the last step's noise)",
    "quantization points": "the paper's framework: gradient at Q_W(W), then Q_G, stored moments "
    "Q_M / Q_V, full-precision master weights and exact arithmetic in between",
}


def _rosenbrock_horizon(full: bool) -> tuple[int, int]:
    """(steps, every) of the Rosenbrock studies: the paper's 10,000 steps at full scale."""
    return (10_000, 50) if full else (400, 10)


def _rosenbrock_cell(opt: str, bits: int, components: str, rounding: str, steps: int, every: int) -> dict[str, Any]:
    """A Rosenbrock trajectory cell with the optimizer's fixed lr (see ``_ROSENBROCK``)."""
    return {
        "optimizer": opt,
        "lr": 1e-3 if opt == "adam" else 3e-3,
        "format": f"M{bits}",
        "components": components,
        "rounding": rounding,
        "steps": steps,
        "every": every,
    }


def _mantissa(full: bool, data: str | None) -> Study:
    """Study 1, the paper's Figs. 3-4: final gradient norm vs mantissa length M.

    Adam and Muon, all of W, G, m (and v) quantized to an M-bit mantissa, stochastic
    rounding and round-to-nearest-even.
    """
    ms = [*range(1, 24), 52] if full else [2, 4, 6, 8, 10, 12, 16, 23, 52]
    steps, every = _rosenbrock_horizon(full)
    cells = [
        _rosenbrock_cell(opt, m, "WGmv" if opt == "adam" else "WGm", r, steps, every)
        for opt in ("adam", "muon")
        for r in ("stochastic", "nearest_even")
        for m in ms
    ]
    return Study(
        "mantissa",
        1,
        "Rosenbrock mantissa sweep (paper Figs. 3-4)",
        "How the final gradient norm falls as the mantissa length M grows, for quantized Adam and "
        "quantized Muon, with stochastic rounding (as in the paper) and round-to-nearest.",
        "trajectory",
        cells,
        seed=1,
        settings={
            **_ROSENBROCK,
            "formats": "M-bit mantissa with float64's exponent range (the paper's emulation), "
            f"M in {ms}",
            "iterations": f"{steps} ({'the paper' if full else 'quick scale; the paper uses 10,000'})",
        },
    )


def _ablation(full: bool, data: str | None) -> Study:
    """Study 2: quantize one component at a time (W, G, m, v for Adam; W, G, m for Muon).

    Each single component (and none, and all) at M = 4 (and M = 7 at full scale, to
    show whether the ranking is robust), stochastic rounding, one run per setting.
    """
    steps, every = _rosenbrock_horizon(full)
    reps = 1
    ms = [4, 7] if full else [4]
    sets = {"adam": ["", "W", "G", "m", "v", "WGmv"], "muon": ["", "W", "G", "m", "WGm"]}
    cells = [
        {**_rosenbrock_cell(opt, m, comps, "stochastic", steps, every), "rep": rep}
        for opt, comp_sets in sets.items()
        for comps in comp_sets
        for m in ms
        for rep in range(reps)
    ]
    return Study(
        "ablation",
        2,
        "Per-component ablation",
        "Which quantized component (weights W, gradients G, first moment m, second moment v) hurts "
        "most, compared with the ranking implied by the theory's error-level requirements.",
        "trajectory",
        cells,
        seed=2,
        settings={
            **_ROSENBROCK,
            "format": f"M in {ms} bits of mantissa (M = 4: large enough an error to show within the quick "
            "horizon; M = 7 is bfloat16's mantissa), float64 exponent range, stochastic rounding; only the "
            "named component is quantized",
            "theory ranking": "Theorem 4.5's schedule asks q_W, q_V = O(1/T^2) but q_G, q_M = O(1/T) "
            "for Adam, so W and v are predicted to be the sensitive ones; Theorem 4.6 asks the same "
            "O(T^-1/2) of q_G, q_W, q_M for Muon (no ranking)",
            "iterations": f"{steps}, {reps} repetition(s) with different rounding streams",
        },
    )


def _beta2(full: bool, data: str | None) -> Study:
    """Study 3: sensitivity to b2 under weight and second-moment quantization.

    Adam with b2 in {0.9, 0.99, 0.999, 0.9999}, exact vs W and v quantized to M = 4 (and
    M = 7 at full scale) with stochastic rounding and with round-to-nearest.
    """
    steps, every = _rosenbrock_horizon(full)
    b2s = [0.9, 0.99, 0.999, 0.9999]
    ms = [4, 7] if full else [4]
    configs = [("exact", "", "stochastic")] + [
        (f"M{m}", "Wv", r) for m in ms for r in ("stochastic", "nearest_even")
    ]
    cells = [
        {"b2": b2, "format": f, "components": c, "rounding": r, "steps": steps, "every": every}
        for f, c, r in configs
        for b2 in b2s
    ]
    return Study(
        "beta2",
        3,
        "b2 sensitivity",
        "How b2 -> 1 and a fixed b2 < 1 behave when the weights and the second moment are "
        "quantized (stochastic rounding vs round-to-nearest).",
        "trajectory",
        cells,
        seed=3,
        settings={
            **_ROSENBROCK,
            "grid": f"b2 in {b2s}; 1 - 1/T = {1 - 1 / steps:g} is the theory's schedule",
            "format": f"W and v quantized to M in {ms} mantissa bits (M = 7 is bfloat16's), host exponent "
            "range",
            "why round-to-nearest matters": "with b2 near 1 the EMA increment (1-b2)(g^2 - v) is "
            "below half an ulp of v once 1 - b2 < 2^-(M+1), so round-to-nearest can freeze v; "
            "stochastic rounding keeps it unbiased",
            "iterations": str(steps),
        },
    )


def _condition(full: bool, data: str | None) -> Study:
    """Study 4: the condition b1^2 (1+q_M)^2 < b2 (1-q_V) on both sides of it.

    Analysed Adam with worst-case quantizers that inflate m by exactly q_M and deflate v
    by exactly q_V, on a 10 x 10 quadratic and on a geometrically decaying gradient
    sequence; rho from 0.92 to 1.3 in three families (q_M only, q_V only, q_M = q_V).
    """
    b1, b2 = 0.9, 0.9
    steps = 10_000 if full else 2_000
    rhos = [0.92, 0.96, 0.99, 1.01, 1.04, 1.08, 1.15, 1.3]
    toys = {
        "quadratic": {"problem": "quadratic", "steps": steps, "every": 10},
        "decaying": {"problem": "decaying", "decay": 0.5, "eps": 1e-300, "steps": 200, "every": 2},
    }
    cells = []
    for toy in toys.values():
        for family in ("m", "v", "both"):
            for rho in rhos:
                q_m, q_v = q_for_rho(rho, b1, b2, family)
                cells.append({**toy, "q_m": round(q_m, 12), "q_v": round(q_v, 12), "b1": b1, "b2": b2})
        cells.append({**toy, "q_m": 0.0, "q_v": 0.0, "b1": b1, "b2": b2})
    return Study(
        "condition",
        4,
        "The condition b1^2 (1+q_M)^2 < b2 (1-q_V)",
        "Whether Theorem 4.5's condition is real: a toy run just below and just above rho = 1 "
        "with quantizers whose relative errors equal q_M and q_V exactly.",
        "condition",
        cells,
        seed=4,
        settings={
            "problem": "separable quadratic on a 10 x 10 matrix, curvatures log-spaced in [0.1, 1] "
            "(L = 1), minimiser drawn once from N(0, 1)",
            "optimizer": f"analysed Adam (Défossez's weighted-sum form, eps inside the root), lr = 1e-2, "
            f"b1 = {b1}, b2 = {b2} (so rho = {b1**2 / b2:.4f} without quantization). b2 = 0.9 keeps "
            "rho = 1 away from b1 (1 + q_M) = 1, where the momentum sum itself stops converging; with b2 "
            "near 1 the two boundaries nearly coincide for the q_M-only family",
            "quantizers": "worst case: m stored as m (1 + q_M) (always inflated), v as v (1 - q_V) "
            "(always deflated), the adversary of the condition",
            "grid": f"rho in {rhos} in three families: q_M only, q_V only, q_M = q_V",
            "second toy": "a gradient sequence g_t = 0.5^t (all entries), independent of the iterate, "
            "200 steps, eps = 1e-300 so it does not mask v: here refopt's unrolling predicts the normalised "
            "step max_i |m_i|/sqrt(eps + v_i) to grow like rho^(t/2) exactly when rho > 1 (and to shrink "
            "when rho < 1), the quantity the bound's proof must keep bounded",
            "metric": "final gradient norm and the largest normalised step max_i |m_i| / sqrt(eps + v_i); "
            "for the second toy, its growth rate per step over the second half of the run",
            "iterations": f"{steps} on the quadratic, 200 on the gradient sequence",
        },
    )


def _floors(full: bool, data: str | None) -> Study:
    """Study 5: fixed precision, the gradient-norm floor vs T.

    Adam with the theory's schedule (lr = 0.5/sqrt(T), b2 = 1 - 1/T) on a quadratic with
    known L, every component at the precision of fp32, fp16, bf16, fp8 e4m3 or e5m2
    (mantissa only, float64 range) or in real bf16, round-to-nearest-even, for several
    horizons T.
    """
    horizons = [100, 300, 1000, 3000, 10_000] if full else [100, 300, 1000]
    formats = ["exact", "M23", "M10", "M7", "M3", "M2", "bf16"]
    cells = [
        {
            "problem": "quadratic",
            "L": 1.0,
            "condition": 100.0,
            "variant": "analysed",
            "format": f,
            "rounding": "nearest_even",
            "lr": 0.5 / math.sqrt(t),
            "b2": 1.0 - 1.0 / t,
            "steps": t,
            "every": max(1, t // 50),
        }
        for f in formats
        for t in horizons
    ]
    return Study(
        "floors",
        5,
        "Fixed precision: floors vs T",
        "To which neighbourhood training converges at a fixed format (bf16 / fp16 / fp8), as the "
        "horizon T grows with the theory's schedule, next to the bound's prediction.",
        "trajectory",
        cells,
        seed=5,
        settings={
            "problem": "separable quadratic on a 50 x 100 matrix, curvatures log-spaced in [0.01, 1] "
            "(L = 1 known exactly, which the bound needs; Rosenbrock is not globally L-smooth), "
            "minimiser drawn once from N(0, 1) so it is not representable",
            "optimizer": "analysed Adam (the form the bound is proven for), b1 = 0.9, eps = 1e-8, the "
            "theory's schedule alpha = 0.5/sqrt(T), b2 = 1 - 1/T (the constant 0.5 lets exact Adam "
            "reach the minimiser's neighbourhood at T = 100)",
            "bound": "refopt's quantized-Adam bound (refopt.theory.adam_bound) on E||grad F(x_tau)||^2 "
            "with d = 5000, L = 1, F(x0) - F* from the run, q = each format's unit roundoff for "
            "round-to-nearest in all four components; R and the weight-norm bound B_W are the largest "
            "gradient entry (+ sqrt(eps)) and weight norm measured along the run (so the bound is "
            "evaluated a posteriori, not fully a priori); its square root is drawn",
            "formats": "the precisions of fp32 (M23), fp16 (M10), bf16 (M7), fp8 e4m3 (M3) and fp8 e5m2 "
            "(M2) with float64's exponent range, so Assumption 3.1 (relative error, no underflow) holds "
            "and the bound applies; plus real bf16 (its own range) as a check; all of W, G, m, v, "
            "round-to-nearest-even (what hardware does). Range effects (underflow) are study 6",
            "horizons": str(horizons),
            "metric": "gradient norm at the end (tail median over the last 20% of points)",
        },
    )


def _underflow(full: bool, data: str | None) -> Study:
    """Study 6: fp16 second moments that flush to zero, and two fixes.

    Adam on a quadratic with small gradients (1e-5 .. 1e-3) with v stored in fp16, in
    bf16 (fix 1: more exponent range), in fp16 with the gradient scaled by 2^12 (fix 2:
    loss scaling, eps scaled alike), in fp32, or exactly.
    """
    steps, every = (3000, 10) if full else (600, 5)
    configs = [
        ("exact", 1.0),
        ("fp16", 1.0),
        ("bf16", 1.0),
        ("fp16", 4096.0),
        ("fp32", 1.0),
    ]
    cells = [
        {
            "problem": "quadratic",
            "L": 1e-3,
            "condition": 100.0,
            "lr": 1e-2,
            "format": f,
            "components": "v",
            "rounding": "nearest_even",
            "grad_scale": s,
            "steps": steps,
            "every": every,
        }
        for f, s in configs
    ]
    return Study(
        "underflow",
        6,
        "fp16 second-moment underflow",
        "What happens when fp16 second moments flush to zero (relative error q_V = 1, so the "
        "condition cannot hold), and how another format or gradient scaling fixes it.",
        "trajectory",
        cells,
        seed=6,
        settings={
            "problem": "separable quadratic on a 50 x 100 matrix, curvatures log-spaced in "
            "[1e-5, 1e-3], minimiser from N(0, 1): gradients of 1e-5 .. 1e-3, typical of late "
            "training, so (1 - b2) g^2 is 1e-13 .. 1e-9, below fp16's smallest subnormal 6e-8",
            "optimizer": "PyTorch-style Adam, lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8",
            "quantized": "the second moment only, round-to-nearest-even",
            "fixes": "v in bfloat16 (8 exponent bits); or gradients multiplied by 2^12 before "
            "quantization with eps multiplied alike (exact Adam is invariant to this)",
            "metric": "loss and gradient norm vs steps; fraction of v entries that are exactly 0",
            "iterations": str(steps),
        },
    )


def _mlp(full: bool, data: str | None) -> Study:
    """Study 7: the MLP experiment, Adam vs Muon (+ auxiliary Adam) at several formats.

    4-layer ReLU MLP, formats exact / bf16 / 4-bit / 2-bit mantissa for W, G, m, v with
    stochastic rounding, Adam vs Muon (Newton-Schulz) for 2-D weights + Adam for biases.
    The full scale uses CIFAR-10 when ``data`` is given (or ``REFOPT_DATA`` is set), the
    digits fallback otherwise; the quick scale always uses digits.
    """
    cifar = full and (data is not None or bool(os.environ.get("REFOPT_DATA")))
    if cifar:
        base = {"dataset": "cifar10", "data": None if data is None else str(data), "hidden": [256, 128, 64],
                "batch": 128, "steps": 2000, "every": 100}
    elif full:
        base = {"dataset": "digits", "hidden": [128, 128, 128], "batch": 64, "steps": 2000, "every": 50}
    else:
        base = {"dataset": "digits", "hidden": [64, 64, 64], "batch": 64, "steps": 300, "every": 25}
    formats = ["exact", "bf16", "M4", "M2"]
    cells = [{**base, "optimizer": o, "format": f} for o in ("adam", "muon") for f in formats]
    return Study(
        "mlp",
        7,
        "4-layer MLP: Adam vs Muon at several formats (in outline, after the paper's MLP experiment)",
        "Training loss and test accuracy of quantized Adam and quantized Muon (with an auxiliary "
        "quantized Adam for the biases) on real images.",
        "mlp",
        cells,
        seed=7,
        settings={
            "dataset": "CIFAR-10 (50,000 / 10,000 images, 3,072 features)" if cifar
            else "scikit-learn 8 x 8 digits (1,438 / 359 images, 64 features): CIFAR-10 "
            + ("was not given" if full else "is used at full scale only"),
            "network": f"4 linear layers, hidden widths {base['hidden']}, ReLU, softmax cross-entropy, "
            "He-normal initialisation",
            "Adam": "lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8 (PyTorch defaults)",
            "Muon": "lr = 0.02, beta = 0.95, quintic Newton-Schulz (5 steps) as in the paper's MLP "
            "experiment, for the 2-D weights; the biases use the Adam above (also quantized)",
            "formats": f"{formats} for W, G, m, v with stochastic rounding (the paper's rounding); "
            "'M<k>' is a k-bit mantissa with float64's exponent range, the paper's emulation, so this "
            "study isolates precision (range effects are studies 5 and 6); bf16 is the real format",
            "training": f"{base['steps']} steps of batch {base['batch']}, evaluated every {base['every']}",
        },
    )


#: The studies in report order: name -> builder ``(full, data) -> Study`` (call
#: :func:`refopt.experiments.studies.get_study` rather than a builder).
STUDIES: dict[str, Callable[[bool, str | None], Study]] = {
    "mantissa": _mantissa,
    "ablation": _ablation,
    "beta2": _beta2,
    "condition": _condition,
    "floors": _floors,
    "underflow": _underflow,
    "mlp": _mlp,
}


def get_study(name: str, scale: str = "quick", data: str | None = None) -> Study:
    """Return a study by name.

    Parameters
    ----------
    name : str
        One of :data:`STUDIES`: ``"mantissa"`` (the paper's Figs. 3-4), ``"ablation"``,
        ``"beta2"``, ``"condition"``, ``"floors"``, ``"underflow"``, ``"mlp"`` (the paper's MLP
        experiment in outline).
    scale : {"quick", "full"}
        Grid size: ``"quick"`` shows each study's point in about a minute on 2 cores;
        ``"full"`` runs the paper's scale (10,000 Rosenbrock iterations).
    data : str, optional
        CIFAR-10 location (used by the ``mlp`` study at full scale only; ``REFOPT_DATA``
        also selects CIFAR-10 there).

    Returns
    -------
    refopt.experiments.studies.Study
        The study.

    Raises
    ------
    ValueError
        For an unknown study or scale.
    """
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose from {', '.join(STUDIES)}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return STUDIES[name](scale == "full", data)
