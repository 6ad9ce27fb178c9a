"""The cell functions of the studies: pure functions of ``(params, seed)``.

Each function validates its parameters, runs one optimisation and returns a
JSON-serialisable dict. They are module-level (picklable) so the runner can execute
them in worker processes or on a Dask cluster. Random streams are spawned from the
cell's :class:`numpy.random.SeedSequence`: one for stochastic rounding, one for data
(initialisation and minibatches), one for gradient noise.

Format specifications used in parameters: ``"exact"`` (no quantization), ``"M<k>"``
(a ``k``-bit mantissa with float64's exponent range,
:meth:`refopt.FloatFormat.mantissa_only`, the paper's experimental model) or any
preset name of :func:`refopt.list_formats` (``"bf16"``, ``"fp16"``, ...).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from refopt.experiments.runner import CellFn, single_threaded_blas

__all__ = [
    "CELLS",
    "DEFAULTS",
    "condition_cell",
    "condition_ratio",
    "q_for_rho",
    "mlp_cell",
    "resolve_format",
    "trajectory_cell",
]

OPTIMIZERS = ("adam", "muon")


def _cell(fn: CellFn) -> CellFn:
    """Make ``fn`` run with single-threaded BLAS wherever it is called from (the runner,
    ``refopt run``, a tutorial), so a cell gives the same bits as its stored record."""

    @functools.wraps(fn)
    def cell(params: dict[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
        with single_threaded_blas():
            return fn(params, seed)

    return cell
ROUNDINGS = ("stochastic", "nearest_even")
COMPONENTS = "WGmv"


def resolve_format(spec: str | None) -> Any:
    """Return the :class:`refopt.FloatFormat` named by a cell's format spec.

    Parameters
    ----------
    spec : str or None
        ``None`` / ``"exact"``, ``"M<k>"`` (``0 <= k <= 52``) or a preset name.

    Returns
    -------
    refopt.FloatFormat or None
        None for exact arithmetic.

    Raises
    ------
    ValueError
        For an unknown preset or a bad mantissa length.
    """
    from refopt import FloatFormat, format

    if spec is None or spec == "exact":
        return None
    if not isinstance(spec, str):
        raise ValueError(f"format must be 'exact', 'M<bits>' or a preset name, got {spec!r}")
    if spec[:1] == "M" and spec[1:].isdigit():
        bits = int(spec[1:])
        if not 0 <= bits <= 52:
            raise ValueError(f"mantissa length must be in 0..52, got {bits}")
        return FloatFormat.mantissa_only(bits)
    return format(spec)


def _validated(params: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
    p = {**defaults, **params}
    for key in ("steps", "every"):
        if not isinstance(p[key], int) or p[key] <= 0:
            raise ValueError(f"{where}: {key} must be a positive integer, got {p[key]!r}")
    if p.get("optimizer", "adam") not in OPTIMIZERS:
        raise ValueError(f"{where}: optimizer must be one of {OPTIMIZERS}, got {p['optimizer']!r}")
    if p.get("rounding", "nearest_even") not in ROUNDINGS:
        raise ValueError(f"{where}: rounding must be one of {ROUNDINGS}, got {p['rounding']!r}")
    comps = p.get("components", "")
    if not isinstance(comps, str) or set(comps) - set(COMPONENTS):
        raise ValueError(f"{where}: components must be a subset of {COMPONENTS!r}, got {comps!r}")
    if where.startswith("trajectory") and p["optimizer"] == "muon" and "v" in comps:
        raise ValueError(f"{where}: Muon has no second moment; drop 'v' from components")
    if not p.get("lr", 1.0) > 0:
        raise ValueError(f"{where}: lr must be positive, got {p['lr']!r}")
    return p


def _precision(p: Mapping[str, Any], rng: np.random.Generator) -> Any:
    from refopt.optim import Precision

    fmt = resolve_format(p["format"])
    pick = {c: (fmt if c in p["components"] else None) for c in COMPONENTS}
    return Precision(
        weights=pick["W"], grads=pick["G"], m=pick["m"], v=pick["v"], rounding=p["rounding"], rng=rng
    )


def _optimizer(p: Mapping[str, Any], precision: Any) -> Any:
    from refopt import optim

    if p["optimizer"] == "adam":
        return optim.adam(
            p["lr"], b1=p["b1"], b2=p["b2"], eps=p["eps"], variant=p["variant"], precision=precision
        )
    return optim.muon(p["lr"], beta=p["beta"], precision=precision)


def _problem(p: Mapping[str, Any]) -> Any:
    from refopt.problems import Quadratic, Rosenbrock

    shape = tuple(p["shape"])
    if p["problem"] == "rosenbrock":
        return Rosenbrock(shape, noise=p["noise"])
    if p["problem"] == "quadratic":
        target = np.random.default_rng(p["problem_seed"]).standard_normal(shape) * p["target_scale"]
        return Quadratic.logspaced(shape, L=p["L"], condition=p["condition"], target=target, noise=p["noise"])
    raise ValueError(f"problem must be 'rosenbrock' or 'quadratic', got {p['problem']!r}")


_OPTIMIZER_DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 1e-3,
    "b1": 0.9,
    "b2": 0.999,
    "beta": 0.95,
    "eps": 1e-8,
    "format": "exact",
    "components": "WGmv",
    "rounding": "stochastic",
}

#: Defaults of :func:`trajectory_cell` (every key a cell may set).
TRAJECTORY_DEFAULTS: dict[str, Any] = {
    "problem": "rosenbrock",
    "shape": [50, 100],
    "start": "zeros",
    "noise": 0.0,
    "L": 1.0,
    "condition": 100.0,
    "target_scale": 1.0,
    "problem_seed": 0,
    **_OPTIMIZER_DEFAULTS,
    "variant": "practical",
    "grad_scale": 1.0,
    "steps": 1000,
    "every": 10,
    "rep": 0,
}


@_cell
def trajectory_cell(params: Mapping[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Run Adam or Muon with a precision policy on Rosenbrock or a quadratic.

    Parameters
    ----------
    params : mapping
        Keys of ``TRAJECTORY_DEFAULTS`` (unset keys take those defaults). ``format``
        and ``components`` (a subset of ``"WGmv"``) select what is quantized;
        ``grad_scale`` multiplies the oracle's gradient (and Adam's ``eps``), the
        classic loss-scaling fix for underflow, which leaves exact Adam unchanged.
    seed : numpy.random.SeedSequence
        The cell seed.

    Returns
    -------
    dict
        ``t`` (recorded steps: 0, 1 and every ``every``-th), ``grad_norm`` (Frobenius
        norm of the exact gradient at
        the master weights), ``loss``, ``v_zero`` (fraction of second-moment entries
        equal to 0, Adam only), ``final_grad_norm``, ``tail_grad_norm`` (median over
        the last 20% of records), ``final_loss``, ``max_grad_inf`` (largest
        :math:`|\\nabla f|` entry the oracle returned, before scaling), ``max_weight_norm``
        (largest :math:`\\|W_t\\|_F`), ``diverged`` (non-finite values or an optimizer
        error) and ``error`` (its message).

    Raises
    ------
    ValueError
        For unknown parameters, optimizer, rounding, format or components, or
        non-positive ``steps``/``every``/``lr``.
    """
    p = _validated(params, TRAJECTORY_DEFAULTS, "trajectory cell")
    from refopt.optim import quantized_grad

    noise_ss, quant_ss = seed.spawn(2)
    problem = _problem(p)
    precision = _precision(p, np.random.default_rng(quant_ss))
    scaled = {**p, "eps": p["eps"] * p["grad_scale"]}
    opt = _optimizer(scaled, precision)
    noise_rng = np.random.default_rng(noise_ss)
    scale = p["grad_scale"]

    seen = {"grad_inf": 0.0, "weight_norm": 0.0}

    def oracle(w: np.ndarray) -> np.ndarray:  # called at Q_W(w); its output is then Q_G-rounded
        g = problem.stochastic_grad(w, noise_rng) if p["noise"] > 0 else problem.grad(w)
        seen["grad_inf"] = max(seen["grad_inf"], float(np.max(np.abs(g))))
        return scale * g if scale != 1.0 else g

    w = np.zeros(problem.shape) if p["start"] == "zeros" else problem.initial_point(p["start"])
    state = opt.init(w)
    out: dict[str, Any] = {"t": [], "grad_norm": [], "loss": [], "v_zero": []}
    error = ""

    def record(t: int, w: np.ndarray, state: Any) -> None:
        out["t"].append(t)
        out["grad_norm"].append(float(np.linalg.norm(problem.grad(w))))
        out["loss"].append(problem.value(w))
        v = getattr(state, "v", None)
        out["v_zero"].append(float(np.mean(v == 0)) if t > 0 and isinstance(v, np.ndarray) else None)

    record(0, w, state)
    with np.errstate(all="ignore"):
        for t in range(1, p["steps"] + 1):
            try:
                g = quantized_grad(oracle, w, precision)  # [prf:paper-framework]
                w, state = opt.update(w, g, state)
            except (ValueError, FloatingPointError, OverflowError, np.linalg.LinAlgError) as exc:
                error = f"step {t}: {exc}"
                break
            if not np.all(np.isfinite(w)):
                error = f"step {t}: non-finite weights"
                break
            seen["weight_norm"] = max(seen["weight_norm"], float(np.linalg.norm(w)))
            if t % p["every"] == 0 or t == p["steps"] or t == 1:
                record(t, w, state)
    out["max_grad_inf"] = seen["grad_inf"]
    out["max_weight_norm"] = seen["weight_norm"]
    return _summarise(out, error)


def _summarise(out: dict[str, Any], error: str) -> dict[str, Any]:
    gn = out["grad_norm"]
    tail = gn[-max(1, len(gn) // 5) :]
    out.update(
        final_grad_norm=float("inf") if error else gn[-1],
        tail_grad_norm=float("inf") if error else float(np.median(tail)),
        final_loss=float("inf") if error else out["loss"][-1],
        diverged=bool(error),
        error=error,
    )
    return out


#: Defaults of :func:`condition_cell`.
CONDITION_DEFAULTS: dict[str, Any] = {
    "problem": "quadratic",
    "decay": 0.5,
    "shape": [10, 10],
    "L": 1.0,
    "condition": 10.0,
    "lr": 1e-2,
    "b1": 0.9,
    "b2": 0.99,
    "eps": 1e-8,
    "q_m": 0.0,
    "q_v": 0.0,
    "steps": 2000,
    "every": 10,
    "rep": 0,
}


def condition_ratio(b1: float, b2: float, q_m: float, q_v: float) -> float:
    """Return :math:`\\rho = b_1^2 (1+q_M)^2 / (b_2 (1-q_V))` (the condition is ``rho < 1``).

    Parameters
    ----------
    b1, b2 : float
        Adam's moment parameters.
    q_m, q_v : float
        Relative error levels of the first and second moment.

    Returns
    -------
    float
        The ratio (``inf`` when ``q_v >= 1``).

    Notes
    -----
    Provenance: paper (Theorem 4.5 requires :math:`b_1^2(1+q_M)^2 < b_2(1-q_V)`).
    """
    den = b2 * (1.0 - q_v)
    return math.inf if den <= 0 else b1**2 * (1.0 + q_m) ** 2 / den  # [prf:paper-theorem-4-5]


def q_for_rho(rho: float, b1: float, b2: float, family: str) -> tuple[float, float]:
    """Return the error levels ``(q_m, q_v)`` at which :func:`condition_ratio` equals ``rho``.

    Parameters
    ----------
    rho : float
        The target ratio, ``rho > 0`` (``rho < 1``: the condition holds).
    b1, b2 : float
        Adam's moment parameters, ``0 < b1`` and ``0 < b2 < 1``.
    family : {"m", "v", "both"}
        Which error to use: only the first moment (``q_v = 0``), only the second moment
        (``q_m = 0``), or both at the same level (``q_m = q_v``).

    Returns
    -------
    tuple of float
        ``(q_m, q_v)``.

    Raises
    ------
    ValueError
        If ``family`` is unknown or ``rho`` is not reachable in it with
        ``q_m >= 0`` and ``0 <= q_v < 1``.

    Notes
    -----
    The inverse of :func:`condition_ratio` along each family: ``"m"`` solves
    :math:`b_1^2(1+q)^2 = \\rho b_2`, ``"v"`` solves :math:`b_1^2 = \\rho b_2 (1-q)`, and
    ``"both"`` takes the positive root of
    :math:`b_1^2 q^2 + (2 b_1^2 + \\rho b_2) q + b_1^2 - \\rho b_2 = 0`.
    Provenance: refopt (algebra on the paper's Theorem 4.5 condition).
    """
    if family == "m":
        q_m, q_v = math.sqrt(rho * b2) / b1 - 1.0, 0.0
    elif family == "v":
        q_m, q_v = 0.0, 1.0 - b1**2 / (rho * b2)
    elif family == "both":
        a, b, c = b1**2, 2 * b1**2 + rho * b2, b1**2 - rho * b2
        q_m = q_v = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    else:
        raise ValueError(f"family must be one of 'm', 'v', 'both'; got {family!r}")
    if q_m < 0 or not 0 <= q_v < 1:
        raise ValueError(
            f"rho={rho!r} is not reachable in family {family!r} with b1={b1!r}, b2={b2!r} "
            "(it needs rho >= b1**2 / b2)"
        )
    return q_m, q_v


@_cell
def condition_cell(params: Mapping[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Run analysed Adam with worst-case moment quantizers on a toy problem.

    The first moment is stored as :math:`m(1+q_M)` (magnitude always inflated) and the
    second as :math:`v(1-q_V)` (always deflated) by
    :func:`refopt.optim.worst_case`, so the relative errors equal ``q_m`` and ``q_v``
    exactly at every step: the adversary of the condition
    :math:`b_1^2(1+q_M)^2 < b_2(1-q_V)`.

    Two problems: ``"quadratic"`` (a separable quadratic, minimiser from
    :math:`\\mathcal N(0, 1)`), and ``"decaying"``, a gradient sequence
    :math:`g_t = \\gamma^t \\mathbf 1` (``decay`` :math:`= \\gamma`) independent of the
    iterate. For the latter, with :math:`a = b_1(1+q_M)`, :math:`c = b_2(1-q_V)` and
    :math:`\\gamma^2 < c`, unrolling gives
    :math:`|m_t| / \\sqrt{v_t} \\sim C \\max(a, \\gamma)^t / \\sqrt{c}^{\\,t}`, which stays
    bounded if :math:`a^2 \\le c` (:math:`\\rho \\le 1`) and grows like
    :math:`\\rho^{t/2}` if :math:`\\rho > 1` (provenance: refopt): the condition is exactly
    the boundary of bounded normalised steps there.

    Parameters
    ----------
    params : mapping
        Keys of ``CONDITION_DEFAULTS``.
    seed : numpy.random.SeedSequence
        The cell seed (this cell is deterministic; the seed is unused).

    Returns
    -------
    dict
        ``rho`` (:func:`refopt.experiments.cells.condition_ratio`), recorded ``t``, ``grad_norm`` and
        ``ratio`` (:math:`\\max_i |m_i|/\\sqrt{\\epsilon + v_i}`, the step length in units
        of the step size), ``final_grad_norm``, ``max_ratio``, ``diverged``.

    Raises
    ------
    ValueError
        For unknown parameters or non-positive ``steps``.
    """
    p = _validated(params, CONDITION_DEFAULTS, "condition cell")
    for key in ("q_m", "q_v"):
        if not 0 <= p[key] < 1:
            raise ValueError(f"condition cell: {key} must be in [0, 1), got {p[key]!r}")
    from refopt import optim
    from refopt.problems import Quadratic

    if p["problem"] not in ("quadratic", "decaying"):
        raise ValueError(f"condition cell: problem must be 'quadratic' or 'decaying', got {p['problem']!r}")
    if not 0 < p["decay"] < 1:
        raise ValueError(f"condition cell: decay must be in (0, 1), got {p['decay']!r}")
    shape = tuple(p["shape"])
    target = np.random.default_rng(0).standard_normal(shape)
    problem = Quadratic.logspaced(shape, L=p["L"], condition=p["condition"], target=target)
    decaying = p["problem"] == "decaying"
    precision = optim.Precision(
        m=optim.worst_case(p["q_m"], sign="+") if p["q_m"] else None,
        v=optim.worst_case(p["q_v"], sign="-") if p["q_v"] else None,
    )
    opt = optim.adam(p["lr"], b1=p["b1"], b2=p["b2"], eps=p["eps"], variant="analysed", precision=precision)
    w = np.zeros(shape)
    state = opt.init(w)
    out: dict[str, Any] = {"t": [], "grad_norm": [], "ratio": []}
    error = ""
    with np.errstate(all="ignore"):
        for t in range(1, p["steps"] + 1):
            try:
                g = np.full(shape, p["decay"] ** t) if decaying else problem.grad(w)
                w, state = opt.update(w, g, state)
            except (ValueError, FloatingPointError, OverflowError) as exc:
                error = f"step {t}: {exc}"
                break
            if not np.all(np.isfinite(w)) or np.max(np.abs(w)) > 1e12:
                error = f"step {t}: iterates blew up"
                break
            if t % p["every"] == 0 or t == p["steps"]:
                out["t"].append(t)
                out["grad_norm"].append(float(np.linalg.norm(g if decaying else problem.grad(w))))
                out["ratio"].append(float(np.max(np.abs(state.m) / np.sqrt(p["eps"] + state.v))))
    out["rho"] = condition_ratio(p["b1"], p["b2"], p["q_m"], p["q_v"])
    out["max_ratio"] = float(max(out["ratio"], default=math.inf)) if not error else math.inf
    out["final_ratio"] = out["ratio"][-1] if out["ratio"] and not error else math.inf
    out["final_grad_norm"] = out["grad_norm"][-1] if out["grad_norm"] and not error else math.inf
    out["diverged"] = bool(error)
    out["error"] = error
    return out


#: Defaults of :func:`mlp_cell`.
MLP_DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "data": None,
    "hidden": [64, 64, 64],
    **_OPTIMIZER_DEFAULTS,
    "muon_lr": 0.02,
    "batch": 64,
    "steps": 300,
    "every": 25,
    "eval_rows": 2000,
    "rep": 0,
}


@functools.lru_cache(maxsize=2)
def _dataset(name: str, data: str | None) -> Any:
    from refopt.problems import load_dataset

    return load_dataset(name, data)


@_cell
def mlp_cell(params: Mapping[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Train the 4-layer MLP with Adam, or Muon for 2-D weights plus Adam for biases.

    Parameters
    ----------
    params : mapping
        Keys of ``MLP_DEFAULTS``. ``dataset`` is ``"digits"``, ``"cifar10"`` or
        ``"auto"``; ``data`` the CIFAR-10 location.
    seed : numpy.random.SeedSequence
        The cell seed (initial weights, minibatch order, stochastic rounding).

    Returns
    -------
    dict
        ``dataset`` (the one actually used), recorded ``t``, ``train_loss`` (mean
        minibatch loss since the previous record), ``test_loss``, ``test_acc``,
        ``train_acc`` (on up to ``eval_rows`` training rows), the ``final_*`` values,
        ``diverged`` and ``error``.

    Raises
    ------
    ValueError
        For unknown parameters, optimizer, rounding or format, or non-positive
        ``steps``/``every``/``batch``.
    """
    p = _validated(params, MLP_DEFAULTS, "mlp cell")
    if not isinstance(p["batch"], int) or p["batch"] <= 0:
        raise ValueError(f"mlp cell: batch must be a positive integer, got {p['batch']!r}")
    from refopt import optim
    from refopt.optim import quantized_grad
    from refopt.problems import MLP

    ds = _dataset(p["dataset"], p["data"])
    init_ss, batch_ss, quant_ss = seed.spawn(3)
    net = MLP((ds.x_train.shape[1], *p["hidden"], ds.n_classes))
    params_ = net.init(np.random.default_rng(init_ss))
    precision = _precision(p, np.random.default_rng(quant_ss))
    adam = optim.adam(p["lr"], b1=p["b1"], b2=p["b2"], eps=p["eps"], variant="practical", precision=precision)
    if p["optimizer"] == "adam":
        opt = adam
    else:
        opt = optim.muon_adam(
            optim.muon(p["muon_lr"], beta=p["beta"], precision=precision, orthogonalize="newton_schulz"),
            adam,
        )
    state = opt.init(params_)
    rng = np.random.default_rng(batch_ss)
    n = len(ds.y_train)
    ev = rng.permutation(n)[: p["eval_rows"]]
    out: dict[str, Any] = {"dataset": ds.name, "t": [], "train_loss": [], "test_loss": [], "test_acc": [], "train_acc": []}
    order, pos, running = rng.permutation(n), 0, []
    error = ""

    def record(t: int) -> None:
        train_loss, train_acc = net.evaluate(params_, ds.x_train[ev], ds.y_train[ev])
        test_loss, test_acc = net.evaluate(params_, ds.x_test, ds.y_test)
        out["t"].append(t)
        out["train_loss"].append(float(np.mean(running)) if running else train_loss)
        out["test_loss"].append(test_loss)
        out["test_acc"].append(test_acc)
        out["train_acc"].append(train_acc)
        running.clear()

    record(0)
    with np.errstate(all="ignore"):
        for t in range(1, p["steps"] + 1):
            if pos + p["batch"] > n:
                order, pos = rng.permutation(n), 0
            idx = order[pos : pos + p["batch"]]
            pos += p["batch"]
            losses: list[float] = []

            def oracle(w: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
                loss, grads = net.loss_and_grad(w, ds.x_train[idx], ds.y_train[idx])
                losses.append(loss)
                return grads

            try:
                g = quantized_grad(oracle, params_, precision)
                params_, state = opt.update(params_, g, state)
            except (ValueError, FloatingPointError, OverflowError, np.linalg.LinAlgError) as exc:
                error = f"step {t}: {exc}"
                break
            running.append(losses[-1])
            if not np.isfinite(losses[-1]):
                error = f"step {t}: non-finite loss"
                break
            if t % p["every"] == 0 or t == p["steps"]:
                record(t)
    for key in ("train_loss", "test_loss", "test_acc", "train_acc"):
        out[f"final_{key}"] = out[key][-1] if not error else (0.0 if "acc" in key else math.inf)
    out["diverged"] = bool(error)
    out["error"] = error
    return out


#: Cell functions by name, with their parameter defaults.
CELLS: dict[str, tuple[CellFn, dict[str, Any]]] = {
    "trajectory": (trajectory_cell, TRAJECTORY_DEFAULTS),
    "condition": (condition_cell, CONDITION_DEFAULTS),
    "mlp": (mlp_cell, MLP_DEFAULTS),
}
DEFAULTS = {name: d for name, (_, d) in CELLS.items()}
