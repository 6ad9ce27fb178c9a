"""A resumable, executor-agnostic sweep runner with per-cell seeds and atomic records.

A *cell* is one point of a study's grid: a JSON-serialisable dict of parameters. The
study's cell function ``fn(params, seed) -> dict`` must be a pure function of its
parameters and the :class:`numpy.random.SeedSequence` it is given, and picklable (a
module-level function), so it can run in another process or on another machine.

Determinism
    Each cell's seed is ``SeedSequence(study_seed, spawn_key=words(sha256(key)))``
    where ``key`` is the cell's canonical JSON; it depends on the cell only, never on
    the order or the worker that runs it, so results are bit-identical whatever the
    job count or executor. Cells run with BLAS limited to one thread (when
    ``threadpoolctl`` is installed) so matrix products do not depend on threading.

Records and resume
    Each finished cell is written as ``<out>/cells/<study>/<digest>.json``: written to a
    temporary file in the same directory, flushed, ``fsync``-ed, then renamed over the
    target with :func:`os.replace` (atomic on POSIX and Windows). A run killed at any
    moment (even ``kill -9``) leaves only complete records, and a rerun skips them.

Executors
    ``executor=None`` with ``jobs=1`` runs cells in the calling process; with
    ``jobs > 1`` a :class:`concurrent.futures.ProcessPoolExecutor` of that size is
    used. Any other :class:`concurrent.futures.Executor` can be passed, e.g. a
    ``dask.distributed`` cluster through ``Client(...).get_executor()``::

        from dask.distributed import Client, LocalCluster
        with LocalCluster(n_workers=4) as cluster, Client(cluster) as client:
            run_cells(fn, cells, out, study="rosenbrock", executor=client.get_executor())
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cell_key", "cell_seed", "load_records", "run_cells", "write_json_atomic"]

CellFn = Callable[[dict[str, Any], np.random.SeedSequence], dict[str, Any]]


def cell_key(params: Mapping[str, Any]) -> str:
    """Return the canonical JSON text of a cell's parameters (sorted keys, no spaces).

    Parameters
    ----------
    params : mapping
        JSON-serialisable cell parameters.

    Returns
    -------
    str
        The key.

    Raises
    ------
    TypeError
        If a value is not JSON-serialisable.
    """
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _digest(study: str, key: str) -> str:
    return hashlib.sha256(f"{study}\n{key}".encode()).hexdigest()


def cell_seed(study_seed: int, study: str, params: Mapping[str, Any]) -> np.random.SeedSequence:
    """Return the seed of a cell, derived from the study seed and the cell key.

    Parameters
    ----------
    study_seed : int
        The study's root seed (non-negative).
    study : str
        The study name (part of the key, so studies never share streams).
    params : mapping
        The cell's parameters.

    Returns
    -------
    numpy.random.SeedSequence
        ``SeedSequence(study_seed, spawn_key=...)`` with the spawn key made of the eight
        32-bit words of ``sha256(study + "\\n" + cell_key(params))``.
    """
    digest = bytes.fromhex(_digest(study, cell_key(params)))
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4))
    return np.random.SeedSequence(int(study_seed), spawn_key=words)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temp file, fsync, ``os.replace``).

    Parameters
    ----------
    path : str or path-like
        The destination; its directory must exist.
    obj : object
        A JSON-serialisable object (NaN and infinities are written as ``NaN`` /
        ``Infinity``, which Python's :mod:`json` reads back).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (when ``threadpoolctl`` is installed).

    Matrix products then do not depend on how many threads the caller's BLAS uses, and
    small products (Muon's SVD, the MLP's layers) do not slow down when several
    processes share the cores.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _execute(fn: CellFn, params: dict[str, Any], seed: np.random.SeedSequence) -> tuple[dict[str, Any], float]:
    """Run one cell with single-threaded BLAS; return its result and wall time."""
    start = time.perf_counter()
    with single_threaded_blas():
        result = fn(params, seed)
    return result, time.perf_counter() - start


def load_records(out: str | os.PathLike[str], study: str) -> dict[str, dict[str, Any]]:
    """Return the finished records of a study, keyed by cell key.

    Parameters
    ----------
    out : str or path-like
        The results directory.
    study : str
        The study name.

    Returns
    -------
    dict of str to dict
        ``{cell_key: record}``; a record holds ``study``, ``params``, ``seed``,
        ``result`` and ``seconds``. Unreadable files (impossible with atomic writes,
        but e.g. edited by hand) are ignored, so their cells are recomputed.
    """
    d = Path(out) / "cells" / study
    records: dict[str, dict[str, Any]] = {}
    if not d.is_dir():
        return records
    for f in sorted(d.glob("*.json")):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            key = cell_key(rec["params"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if f.stem == _digest(study, key):
            records[key] = rec
    return records


def run_cells(
    fn: CellFn,
    cells: Iterable[Mapping[str, Any]],
    out: str | os.PathLike[str],
    *,
    study: str,
    seed: int = 0,
    jobs: int = 1,
    executor: cf.Executor | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> list[dict[str, Any]]:
    """Run every unfinished cell of a study and return all records in grid order.

    Parameters
    ----------
    fn : callable
        The cell function ``fn(params, seed) -> dict`` (picklable; JSON-serialisable
        result).
    cells : iterable of mapping
        The grid; duplicate cells are run once.
    out : str or path-like
        The results directory (created if needed).
    study : str
        The study name (records go to ``<out>/cells/<study>/``).
    seed : int, default 0
        The study seed every cell seed is derived from (:func:`cell_seed`).
    jobs : int, default 1
        Worker processes when no ``executor`` is given (1: run in this process).
    executor : concurrent.futures.Executor, optional
        Where to run the cells (a process pool, a dask executor, ...); not shut down.
    progress : bool, default True
        Show a tqdm progress bar with ETA (on stderr) when tqdm is installed.
    desc : str, optional
        The progress bar's label (default: the study name).

    Returns
    -------
    list of dict
        One record per distinct cell, in the order of ``cells``.

    Raises
    ------
    ValueError
        If ``jobs < 1``, ``seed < 0`` or ``study`` is empty or not a plain name.
    """
    if not isinstance(jobs, int | np.integer) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not study or not study.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"study must be a non-empty name of letters, digits, '_' or '-', got {study!r}")
    grid: dict[str, dict[str, Any]] = {}
    for c in cells:
        grid.setdefault(cell_key(c), dict(c))
    d = Path(out) / "cells" / study
    d.mkdir(parents=True, exist_ok=True)
    done = load_records(out, study)
    todo = [k for k in grid if k not in done]

    bar = _progress_bar(len(grid), len(grid) - len(todo), desc or study, progress)

    def finish(key: str, result: dict[str, Any], seconds: float) -> None:
        rec = {"study": study, "params": grid[key], "seed": int(seed), "result": result, "seconds": seconds}
        write_json_atomic(d / f"{_digest(study, key)}.json", rec)
        done[key] = rec
        if bar is not None:
            bar.update(1)

    try:
        if executor is None and jobs == 1:
            for k in todo:
                finish(k, *_execute(fn, grid[k], cell_seed(seed, study, grid[k])))
        elif todo:
            own = executor is None
            ex = cf.ProcessPoolExecutor(max_workers=jobs) if own else executor
            try:
                futures = {ex.submit(_execute, fn, grid[k], cell_seed(seed, study, grid[k])): k for k in todo}
                for fut in cf.as_completed(futures):
                    finish(futures[fut], *fut.result())
            finally:
                if own:
                    ex.shutdown(cancel_futures=True)
    finally:
        if bar is not None:
            bar.close()
    return [done[k] for k in grid]


def _progress_bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - optional
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit="cell", dynamic_ncols=True, leave=True)
