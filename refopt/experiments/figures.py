"""Figures of the studies (PNG and SVG), drawn with matplotlib's object API (Agg canvas).

Every function takes a study's records and a path stem and writes ``<stem>.png`` and
``<stem>.svg``; nothing touches pyplot's global state, so figures can be drawn in any
process, with any interactive backend active. Diverged runs are drawn as crosses at
the top of the axis.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from refopt.experiments.records import finite, group, param

__all__ = ["FIGURES", "plot_study"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]


def _figure(ncols: int, width: float = 4.2, height: float = 3.4) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save(fig: Any, stem: Path) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=110)
    fig.savefig(paths[1], metadata={"Date": None})
    return paths


def _tail(recs: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Median, min and max of the tail gradient norm over repetitions (inf if any diverged)."""
    vals = [r["result"]["tail_grad_norm"] for r in recs]
    if not all(finite(v) for v in vals):
        return math.inf, math.inf, math.inf
    return float(np.median(vals)), float(min(vals)), float(max(vals))


def _mark_diverged(ax: Any, xs: list[float], ys: list[float], color: str) -> None:
    bad = [x for x, y in zip(xs, ys) if not finite(y)]
    if bad:
        top = ax.get_ylim()[1]
        ax.plot(bad, [top] * len(bad), "x", color=color, ms=8, clip_on=False)


def _plot_mantissa(records: list[dict[str, Any]], stem: Path) -> list[Path]:
    """Study 1: tail gradient norm vs M, and curves vs iteration for a few M."""
    fig, (ax, ax_a, ax_m) = _figure(3)
    ms = sorted({int(param(r, "format")[1:]) for r in records})
    pos = {m: i for i, m in enumerate(ms)}
    for (opt, rnd), recs in sorted(group(records, "optimizer", "rounding").items()):
        color = _COLORS[0] if opt == "adam" else _COLORS[2]
        by_m = dict(sorted(group(recs, "format").items(), key=lambda kv: int(kv[0][0][1:])))
        xs = [pos[int(f[1:])] for (f,) in by_m]
        ys = [_tail(v)[0] for v in by_m.values()]
        style = "-o" if rnd == "stochastic" else "--s"
        ax.plot(xs, [y if finite(y) else np.nan for y in ys], style, color=color, ms=4,
                label=f"{opt}, {'SR' if rnd == 'stochastic' else 'RN'}", alpha=1 if rnd == "stochastic" else 0.7)
        _mark_diverged(ax, xs, ys, color)
    ax.set_xticks(range(len(ms)), [str(m) for m in ms], fontsize=7)
    ax.set(yscale="log", xlabel="mantissa bits M", ylabel="final ||grad F|| (tail median)",
           title="(a) final gradient norm vs M")
    ax.legend(fontsize=8)
    show = [m for m in (2, 4, 8, 16, 52) if m in ms] or ms[:: max(1, len(ms) // 4)]
    for axis, opt in ((ax_a, "adam"), (ax_m, "muon")):
        for j, m in enumerate(show):
            for r in records:
                if param(r, "optimizer") == opt and param(r, "rounding") == "stochastic" and param(r, "format") == f"M{m}":
                    res = r["result"]
                    axis.plot(res["t"], res["grad_norm"], color=_COLORS[j], lw=1, label=f"M = {m}")
        axis.set(yscale="log", xlabel="iteration", ylabel="||grad F(W_t)||",
                 title=f"({'b' if opt == 'adam' else 'c'}) {opt.capitalize()}, stochastic rounding")
        axis.legend(fontsize=8)
    return _save(fig, stem)


def _plot_ablation(records: list[dict[str, Any]], stem: Path) -> list[Path]:
    """Study 2: tail gradient norm per quantized component, relative to no quantization."""
    fig, axes = _figure(2)
    for ax, opt in zip(axes, ("adam", "muon")):
        recs = [r for r in records if param(r, "optimizer") == opt]
        fmts = list(group(recs, "format"))
        order = ["", "W", "G", "m", "v", "WGm", "WGmv"]
        comps = sorted(group(recs, "components"), key=lambda c: order.index(c[0]) if c[0] in order else len(order))
        width = 0.8 / max(1, len(fmts))
        for j, (f,) in enumerate(fmts):
            base = _tail([r for r in recs if param(r, "components") == "" and param(r, "format") == f])[0]
            stats = [_tail([r for r in recs if param(r, "components") == c and param(r, "format") == f]) for (c,) in comps]
            med = np.array([s[0] for s in stats]) / base
            err = np.array([[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]]) / base
            xs = np.arange(len(comps)) + (j - (len(fmts) - 1) / 2) * width
            ax.bar(xs, np.where(np.isfinite(med), med, np.nan), width, yerr=np.where(np.isfinite(err), err, 0),
                   color=_COLORS[j], label=f"M = {f[1:]}", capsize=2)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(range(len(comps)), [c or "none" for (c,) in comps])
        ax.set(xlabel="quantized component(s)", ylabel="final ||grad F|| / unquantized",
               title=f"{'(a)' if opt == 'adam' else '(b)'} {opt.capitalize()}: one component at a time")
        ax.legend(fontsize=8)
    return _save(fig, stem)


def _plot_beta2(records: list[dict[str, Any]], stem: Path) -> list[Path]:
    """Study 3: tail gradient norm vs 1 - b2 for exact and quantized runs."""
    fig, (ax, ax2) = _figure(2)
    for i, ((f, c, rnd), recs) in enumerate(group(records, "format", "components", "rounding").items()):
        label = "exact" if f == "exact" else f"{c} in {f}, {'SR' if rnd == 'stochastic' else 'RN'}"
        recs = sorted(recs, key=lambda r: param(r, "b2"))
        xs = [1 - param(r, "b2") for r in recs]
        ys = [r["result"]["tail_grad_norm"] for r in recs]
        ax.plot(xs, [y if finite(y) else np.nan for y in ys], "-o", color=_COLORS[i], label=label)
        _mark_diverged(ax, xs, ys, _COLORS[i])
        last = max(recs, key=lambda r: param(r, "b2"))["result"]
        ax2.plot(last["t"], last["grad_norm"], color=_COLORS[i], lw=1, label=label)
    ax.set(xscale="log", yscale="log", xlabel="1 - b2", ylabel="final ||grad F|| (tail median)",
           title="(a) final gradient norm vs b2")
    ax.legend(fontsize=8)
    b2max = max(param(r, "b2") for r in records)
    ax2.set(yscale="log", xlabel="iteration", ylabel="||grad F(W_t)||", title=f"(b) curves at b2 = {b2max}")
    ax2.legend(fontsize=8)
    return _save(fig, stem)


def _family(rec: dict[str, Any]) -> str:
    qm, qv = param(rec, "q_m", "condition"), param(rec, "q_v", "condition")
    return "none" if qm == qv == 0 else "q_M = q_V" if qm == qv else "q_M only" if qv == 0 else "q_V only"


def growth_rate(res: dict[str, Any]) -> float:
    """Per-step growth rate of the normalised step over the second half of a run.

    Parameters
    ----------
    res : dict
        A condition cell's result.

    Returns
    -------
    float
        :math:`\\log(r_T / r_{T/2}) / (T - T/2)` for the recorded ratios :math:`r`
        (``inf`` for a run that blew up).
    """
    t, r = res["t"], res["ratio"]
    if res["diverged"] or len(r) < 2:
        return math.inf
    h = len(r) // 2
    return float(np.log(r[-1] / r[h]) / (t[-1] - t[h]))


def _plot_condition(records: list[dict[str, Any]], stem: Path) -> list[Path]:
    """Study 4: behaviour vs rho on the quadratic, and step growth on the decaying toy."""
    fig, (ax, ax2, ax3) = _figure(3)
    fams = ["q_M only", "q_V only", "q_M = q_V"]
    for problem, axes in (("quadratic", ((ax, "final_grad_norm"), (ax2, "max_ratio"))), ("decaying", ((ax3, None),))):
        recs = [r for r in records if param(r, "problem", "condition") == problem]
        for i, name in enumerate(fams):
            fam = sorted((r for r in recs if _family(r) == name), key=lambda r: r["result"]["rho"])
            xs = [r["result"]["rho"] for r in fam]
            for axis, key in axes:
                ys = [r["result"][key] if key else growth_rate(r["result"]) for r in fam]
                axis.plot(xs, [y if finite(y) else np.nan for y in ys], "-o", color=_COLORS[i], label=name, ms=4)
                _mark_diverged(axis, xs, ys, _COLORS[i])
        base = [r for r in recs if _family(r) == "none"]
        for axis, key in axes:
            if base and key:
                axis.axhline(base[0]["result"][key], color="k", lw=0.8, ls=":", label="no quantization")
            axis.axvline(1.0, color="k", lw=1, ls="--")
            axis.set(xlabel="rho = b1^2 (1+q_M)^2 / (b2 (1-q_V))")
            axis.legend(fontsize=8)
    rho = np.linspace(min(r["result"]["rho"] for r in records), max(r["result"]["rho"] for r in records), 100)
    ax3.plot(rho, 0.5 * np.log(rho), "k--", lw=1, label="prediction: (1/2) log rho")
    ax3.legend(fontsize=8)
    ax.set(yscale="log", ylabel="final ||grad F||", title="(a) quadratic: final gradient norm")
    ax2.set(yscale="log", ylabel="max_t max_i |m_i| / sqrt(eps + v_i)", title="(b) quadratic: largest step")
    ax3.set(ylabel="growth rate of the step per iteration", title="(c) g_t = 0.5^t: step growth")
    return _save(fig, stem)


def _plot_floors(records: list[dict[str, Any]], stem: Path, bounds: dict[str, list[float]] | None = None) -> list[Path]:
    """Study 5: tail gradient norm vs horizon T per format, with the bound's prediction."""
    fig, (ax, ax2) = _figure(2)
    for i, ((f,), recs) in enumerate(group(records, "format").items()):
        recs = sorted(recs, key=lambda r: param(r, "steps"))
        xs = [param(r, "steps") for r in recs]
        ys = [r["result"]["tail_grad_norm"] for r in recs]
        ax.plot(xs, [y if finite(y) else np.nan for y in ys], "-o", color=_COLORS[i], label=f, ms=4)
        _mark_diverged(ax, xs, ys, _COLORS[i])
        if bounds and f in bounds:
            applies = any(finite(b) for b in bounds[f])
            ax2.plot(xs, bounds[f], "--", color=_COLORS[i], label=f if applies else f"{f}: n/a (a condition fails)")
    ax.set(xscale="log", yscale="log", xlabel="horizon T (lr = 0.5/sqrt(T), b2 = 1 - 1/T)",
           ylabel="final ||grad F|| (tail median)", title="(a) measured")
    ax.legend(fontsize=8)
    ax2.set(xscale="log", yscale="log", xlabel="horizon T", ylabel="sqrt of the bound on E||grad F(x_tau)||^2",
            title="(b) the bound's prediction" if bounds else "(b) bound unavailable")
    if bounds:
        ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: the curves fill the panel
    return _save(fig, stem)


def _plot_underflow(records: list[dict[str, Any]], stem: Path) -> list[Path]:
    """Study 6: loss and fraction of zero second-moment entries vs steps."""
    fig, (ax, ax2) = _figure(2)
    for i, r in enumerate(records):
        res = r["result"]
        f, s = param(r, "format"), param(r, "grad_scale")
        label = "exact" if f == "exact" else f"v in {f}" + (f", grads x {s:g}" if s != 1 else "")
        ax.plot(res["t"], res["loss"], color=_COLORS[i], lw=1.2, label=label + (" (diverged)" if res["diverged"] else ""))
        if f != "exact":
            ax2.plot(res["t"], res["v_zero"], color=_COLORS[i], lw=1.2, label=label)
    ax.set(yscale="log", xlabel="iteration", ylabel="F(W_t)", title="(a) loss")
    ax.legend(fontsize=8)
    ax2.set(xlabel="iteration", ylabel="fraction of v entries equal to 0", title="(b) flushed second moments",
            ylim=(-0.02, 1.02))
    ax2.legend(fontsize=8)
    return _save(fig, stem)


def _plot_mlp(records: list[dict[str, Any]], stem: Path) -> list[Path]:
    """Study 7: training loss and test accuracy vs steps, per optimizer and format."""
    fig, (ax, ax2) = _figure(2)
    fmts = list(group(records, "format", cell="mlp"))
    for r in records:
        res = r["result"]
        opt, f = param(r, "optimizer", "mlp"), param(r, "format", "mlp")
        color = _COLORS[fmts.index((f,))]
        ls = "-" if opt == "adam" else "--"
        ax.plot(res["t"], res["train_loss"], ls, color=color, lw=1.2, label=f"{opt}, {f}")
        ax2.plot(res["t"], res["test_acc"], ls, color=color, lw=1.2, label=f"{opt}, {f}")
    ds = records[0]["result"]["dataset"] if records else "?"
    ax.set(yscale="log", xlabel="step", ylabel="training loss (minibatch mean)", title=f"(a) loss, {ds}")
    ax2.set(xlabel="step", ylabel="test accuracy", title=f"(b) test accuracy, {ds}")
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, stem)


#: The figure function of each study: ``fn(records, stem, **kwargs) -> [png, svg]``.
FIGURES = {
    "mantissa": _plot_mantissa,
    "ablation": _plot_ablation,
    "beta2": _plot_beta2,
    "condition": _plot_condition,
    "floors": _plot_floors,
    "underflow": _plot_underflow,
    "mlp": _plot_mlp,
}


def plot_study(name: str, records: list[dict[str, Any]], out: Path, **kwargs: Any) -> list[Path]:
    """Draw a study's figure into ``out/<name>.png`` and ``out/<name>.svg``.

    Parameters
    ----------
    name : str
        The study name (a key of ``FIGURES``).
    records : list of dict
        Its records.
    out : pathlib.Path
        The figure directory (created if needed).
    **kwargs
        Passed to the figure function (``bounds`` for ``floors``: per format, the
        bound's prediction at each horizon, drawn on a second panel).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    ValueError
        For an unknown study name.
    """
    if name not in FIGURES:
        raise ValueError(f"unknown study {name!r}; choose from {', '.join(FIGURES)}")
    out.mkdir(parents=True, exist_ok=True)
    return FIGURES[name](records, out / name, **kwargs)
