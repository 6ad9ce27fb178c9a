"""``refopt reproduce``: run the studies, draw the figures, write the results and report.

Output layout of ``out``::

    cells/<study>/<digest>.json   one record per finished cell (resumable)
    figures/<study>.png|.svg      one figure per study
    results.json                  settings, dataset, every record, summaries
    report.md                     the Markdown report
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from refopt.experiments.cells import CELLS
from refopt.experiments.runner import run_cells, write_json_atomic
from refopt.experiments.studies import SCALES, STUDIES, get_study

__all__ = ["reproduce"]


def reproduce(
    out: str | os.PathLike[str] = "refopt-results",
    *,
    scale: str = "quick",
    jobs: int = 1,
    data: str | os.PathLike[str] | None = None,
    studies: Sequence[str] | None = None,
    executor: cf.Executor | None = None,
    progress: bool = True,
    log: Any = sys.stderr,
) -> Path:
    """Run the studies and write figures, ``results.json`` and ``report.md``.

    Parameters
    ----------
    out : str or path-like, default "refopt-results"
        Results directory; finished cells found there are reused (resume).
    scale : {"quick", "full"}, default "quick"
        ``"quick"``: about a minute on two cores; ``"full"``: the paper's scale.
    jobs : int, default 1
        Worker processes (ignored when ``executor`` is given).
    data : str or path-like, optional
        CIFAR-10 location for the MLP study (else ``REFOPT_DATA``, else digits).
    studies : sequence of str, optional
        A subset of the study names (default: all seven, in order).
    executor : concurrent.futures.Executor, optional
        Where to run cells (shared by all studies; not shut down).
    progress : bool, default True
        Show progress bars.
    log : file object or None, default sys.stderr
        Where to print one line per study (None: silent).

    Returns
    -------
    pathlib.Path
        The report's path.

    Raises
    ------
    ValueError
        For an unknown scale or study, or ``jobs < 1``.
    """
    from refopt.experiments.report import summarize, write_report

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    names = list(STUDIES) if studies is None else list(studies)
    for n in names:
        if n not in STUDIES:
            raise ValueError(f"unknown study {n!r}; choose from {', '.join(STUDIES)}")
    env_data = os.environ.get("REFOPT_DATA") or None
    if data is not None or (env_data and scale == "full" and "mlp" in names):
        from refopt.problems.data import check_cifar10

        check_cifar10(data if data is not None else env_data)  # fail now, not after hours of other studies
        if data is not None and scale == "quick" and log is not None and "mlp" in names:
            print("note: --quick trains the MLP on the digits dataset; --full uses CIFAR-10 from --data",
                  file=log)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_s = None if data is None else str(data)
    specs = [get_study(n, scale, data_s) for n in names]
    own = executor is None and jobs > 1
    ex = cf.ProcessPoolExecutor(max_workers=jobs) if own else executor
    results: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        for spec in specs:
            t0 = time.perf_counter()
            recs = run_cells(CELLS[spec.cell][0], spec.cells, out, study=spec.name, seed=spec.seed,
                             jobs=1, executor=ex, progress=progress, desc=f"{spec.number} {spec.name}")
            summary = summarize(spec, recs, out / "figures")
            results[spec.name] = {"study": spec, "records": recs, "summary": summary,
                                  "seconds": time.perf_counter() - t0}
            if log is not None:
                print(f"[{spec.number}/{len(STUDIES)}] {spec.name}: {summary['headline']}", file=log, flush=True)
    finally:
        if own:
            ex.shutdown()
    meta = {
        "scale": scale,
        "jobs": jobs,
        "seconds": time.perf_counter() - start,
        "python": platform.python_version(),
        "numpy": __import__("numpy").__version__,
        "platform": platform.platform(),
        "data": data_s or os.environ.get("REFOPT_DATA") or None,
    }
    write_json_atomic(out / "results.json", {
        "meta": meta,
        "studies": {
            n: {
                "number": r["study"].number,
                "title": r["study"].title,
                "question": r["study"].question,
                "seed": r["study"].seed,
                "settings": r["study"].settings,
                "summary": {k: v for k, v in r["summary"].items() if k != "figures"},
                "figures": [str(p.relative_to(out)) for p in r["summary"]["figures"]],
                "records": r["records"],
            }
            for n, r in results.items()
        },
    })
    report = write_report(out, results, meta)
    if log is not None:
        print(f"report: {report}", file=log, flush=True)
    return report
