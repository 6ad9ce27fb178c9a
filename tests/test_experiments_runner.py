"""The sweep runner: seeds, determinism across job counts and executors, atomic
records, resume after kill -9, dask."""

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from refopt.experiments.runner import (
    cell_key,
    cell_seed,
    load_records,
    run_cells,
    single_threaded_blas,
    write_json_atomic,
)


def noisy_cell(params, seed):
    """A cell whose result depends on its parameters, its seed and some BLAS work."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((40, 40)) * params["scale"]
    return {"x": float(np.linalg.norm(a @ a.T)), "draws": rng.random(3).tolist()}


GRID = [{"scale": s, "rep": r} for s in (0.5, 1.0, 2.0) for r in range(3)]


def test_seed_depends_on_cell_not_order():
    a = cell_seed(7, "s", {"x": 1, "y": 2})
    b = cell_seed(7, "s", {"y": 2, "x": 1})
    assert a.generate_state(4).tolist() == b.generate_state(4).tolist()
    assert cell_seed(8, "s", {"x": 1, "y": 2}).generate_state(1) != a.generate_state(1)
    assert cell_seed(7, "t", {"x": 1, "y": 2}).generate_state(1) != a.generate_state(1)
    assert cell_key({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_bit_identical_across_job_counts_and_executors(tmp_path):
    r1 = run_cells(noisy_cell, GRID, tmp_path / "j1", study="t", seed=3, jobs=1, progress=False)
    r2 = run_cells(noisy_cell, GRID, tmp_path / "j2", study="t", seed=3, jobs=2, progress=False)
    with cf.ThreadPoolExecutor(3) as ex:
        r3 = run_cells(noisy_cell, GRID[::-1], tmp_path / "t3", study="t", seed=3, executor=ex, progress=False)
    res = lambda rs: {cell_key(r["params"]): r["result"] for r in rs}  # noqa: E731
    assert res(r1) == res(r2) == res(r3)
    assert [r["params"] for r in r1] == GRID  # grid order kept
    # the files on disk are identical too (apart from timing)
    for f in (tmp_path / "j1" / "cells" / "t").glob("*.json"):
        a, b = json.loads(f.read_text()), json.loads((tmp_path / "j2" / "cells" / "t" / f.name).read_text())
        assert a["result"] == b["result"]
    # a different study seed changes the results
    r4 = run_cells(noisy_cell, GRID, tmp_path / "s4", study="t", seed=4, progress=False)
    assert res(r4) != res(r1)


def test_finished_cells_are_not_recomputed(tmp_path):
    calls = []

    def counting(params, seed):
        calls.append(params["rep"])
        return {"v": params["rep"]}

    run_cells(counting, GRID[:4], tmp_path, study="c", progress=False)
    assert len(calls) == 4
    run_cells(counting, GRID, tmp_path, study="c", progress=False)
    assert len(calls) == 4 + 5
    assert len(load_records(tmp_path, "c")) == 9
    # a corrupt record (e.g. edited by hand) is recomputed rather than trusted
    victim = next((tmp_path / "cells" / "c").glob("*.json"))
    victim.write_text("{not json")
    run_cells(counting, GRID, tmp_path, study="c", progress=False)
    assert len(calls) == 10


def test_atomic_write_leaves_no_temp_and_survives_failure(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": [1.5, float("nan")]})
    assert json.loads((tmp_path / "a.json").read_text())["x"][0] == 1.5
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "a.json", {"x": object()})
    assert json.loads((tmp_path / "a.json").read_text())["x"][0] == 1.5  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time, os
    import numpy as np
    from refopt.experiments.runner import run_cells

    LOG = sys.argv[2]

    def slow(params, seed):
        with open(LOG, "a") as fh:
            fh.write(f"{params['i']}\\n")
        time.sleep(0.06)
        return {"v": float(np.random.default_rng(seed).random()), "i": params["i"]}

    if __name__ == "__main__":
        run_cells(slow, [{"i": i} for i in range(40)], sys.argv[1], study="k",
                  jobs=int(sys.argv[3]), progress=False)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_resume_after_kill_9(tmp_path, jobs):
    script = tmp_path / "sweep.py"
    script.write_text(KILL_SCRIPT)
    out, log = tmp_path / "out", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(log), str(jobs)], env=env, start_new_session=True)
    cells = out / "cells" / "k"
    deadline = time.time() + 30
    while time.time() < deadline and (not cells.is_dir() or len(list(cells.glob("*.json"))) < 5):
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the runner and its workers
    proc.wait()
    finished = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in cells.glob("*.json")}
    assert 5 <= len(finished) < 40
    for _, data in finished.values():
        json.loads(data)  # every record on disk is complete
    done_ids = {json.loads(b)["params"]["i"] for _, b in finished.values()}
    log.write_text("")
    subprocess.run([sys.executable, str(script), str(out), str(log), str(jobs)], env=env, check=True, timeout=60)
    rerun = [int(s) for s in log.read_text().split()]
    assert not set(rerun) & done_ids  # no finished cell recomputed
    assert sorted(rerun) == sorted(set(range(40)) - done_ids)
    for name, (mtime, data) in finished.items():  # and none rewritten
        assert (cells / name).stat().st_mtime_ns == mtime and (cells / name).read_bytes() == data
    # same final results as an uninterrupted run
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, str(script), str(clean), str(tmp_path / "c.log"), "1"], env=env, check=True, timeout=60)
    a = {k: r["result"] for k, r in load_records(out, "k").items()}
    b = {k: r["result"] for k, r in load_records(clean, "k").items()}
    assert a == b and len(a) == 40


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    from refopt.experiments.cells import trajectory_cell

    # a real sweep too: stochastic rounding, Adam and Muon (SVD) on a small Rosenbrock
    real = [{"shape": [4, 6], "steps": 30, "every": 10, "format": f"M{m}", "optimizer": o,
             "components": "WGm", "rounding": "stochastic"} for m in (2, 4) for o in ("adam", "muon")]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            rd = run_cells(noisy_cell, GRID, tmp_path / "dask", study="t", seed=3,
                           executor=client.get_executor(), progress=False)
            sd = run_cells(trajectory_cell, real, tmp_path / "dask", study="r", seed=5,
                           executor=client.get_executor(), progress=False)
    r1 = run_cells(noisy_cell, GRID, tmp_path / "one", study="t", seed=3, progress=False)
    s1 = run_cells(trajectory_cell, real, tmp_path / "one", study="r", seed=5, progress=False)
    assert [r["result"] for r in rd] == [r["result"] for r in r1]
    assert [r["result"] for r in sd] == [r["result"] for r in s1]


def test_single_threaded_blas_limits_and_restores():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = lambda: [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]  # noqa: E731
    before = blas()
    with single_threaded_blas():
        assert blas() and set(blas()) == {1}
    assert blas() == before


def test_progress_bar_to_stderr(tmp_path, capsys):
    pytest.importorskip("tqdm")
    run_cells(noisy_cell, GRID[:2], tmp_path, study="p", progress=True)
    err = capsys.readouterr().err
    assert "p:" in err and "2/2" in err


@pytest.mark.parametrize(
    "kwargs, match",
    [({"jobs": 0}, "jobs"), ({"seed": -1}, "seed"), ({"study": "a/b"}, "study"), ({"study": ""}, "study")],
)
def test_bad_arguments(tmp_path, kwargs, match):
    args = {"study": "s", **kwargs}
    with pytest.raises(ValueError, match=match):
        run_cells(noisy_cell, GRID, tmp_path, **args)
    with pytest.raises(TypeError):
        run_cells(noisy_cell, [{"x": object()}], tmp_path, study="s")
