"""``refopt reproduce`` / ``refopt run`` end to end, and their bad-input errors."""

import json
import struct

import pytest

from refopt.cli import main
from refopt.experiments import STUDIES, get_study, reproduce


def check_outputs(out, names):
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    for name in names:
        spec = get_study(name)
        assert f"## {spec.number}. {spec.title}" in report
        assert f"figures/{name}.png" in report
        png, svg = out / "figures" / f"{name}.png", out / "figures" / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", png.read_bytes()[16:24])
        assert w > 300 and h > 200
        assert "<svg" in svg.read_text()[:2000]
        study = results["studies"][name]
        assert len(study["records"]) == len(spec.cells)
        assert study["summary"]["findings"] and study["summary"]["rows"]
    return report, results


@pytest.mark.slow
def test_quick_reproduction_contains_every_study(tmp_path, monkeypatch):
    monkeypatch.delenv("REFOPT_DATA", raising=False)
    out = tmp_path / "res"
    reproduce(out, jobs=2, progress=False, log=None)
    report, results = check_outputs(out, list(STUDIES))
    assert "dataset of the MLP study: **digits**" in report
    assert results["meta"]["scale"] == "quick"
    # a second call resumes: nothing is recomputed, the records are untouched
    before = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")}
    reproduce(out, jobs=1, progress=False, log=None)
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")} == before


def test_cli_reproduce_one_study(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["reproduce", "--study", "underflow", "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert "underflow" in err and "report" in err
    check_outputs(out, ["underflow"])


def test_cli_run_prints_json(capsys):
    assert main(["run", "mantissa", "steps=20", "every=10", 'format="M4"', "rounding=nearest_even"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["params"]["format"] == "M4" and res["params"]["steps"] == 20
    assert res["result"]["final_grad_norm"] > 0 and "t" not in res["result"]


def test_cli_run_gives_the_bits_of_the_stored_record(tmp_path, capsys):
    # a Muon cell (an SVD per step): `refopt run` in this process, whatever its BLAS
    # threading, must reproduce what the sweep runner stores
    from refopt.experiments.cells import trajectory_cell
    from refopt.experiments.runner import run_cells

    spec = get_study("mantissa")
    params = {**next(c for c in spec.cells if c["optimizer"] == "muon"), "steps": 30, "every": 10}
    argv = ["run", "mantissa", *(f"{k}={json.dumps(v)}" for k, v in params.items()), "--series"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["params"] == params
    stored = run_cells(trajectory_cell, [params], tmp_path, study=spec.name, seed=spec.seed, jobs=2, progress=False)
    assert printed["result"] == stored[0]["result"]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["reproduce", "--study", "nope"], "unknown study 'nope'"),
        (["reproduce", "--jobs", "0"], "jobs must be a positive integer"),
        (["reproduce", "--data", "/nonexistent/cifar"], "does not exist"),
        (["run", "nope"], "unknown study"),
        (["run", "mantissa", "optimizer=sgd"], "optimizer must be one of"),
        (["run", "mantissa", "format=fp99"], "fp99"),
        (["run", "mantissa", "steps=0"], "steps must be a positive integer"),
        (["run", "mantissa", "steps=-3"], "steps must be a positive integer"),
        (["run", "mantissa", "nonsense"], "KEY=VALUE"),
        (["run", "mlp", "dataset=cifar10"], "needs --data"),
    ],
)
def test_cli_bad_input(tmp_path, capsys, argv, match, monkeypatch):
    monkeypatch.delenv("REFOPT_DATA", raising=False)
    if argv[0] == "reproduce":
        argv = [*argv, "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_data_path_that_is_not_cifar(tmp_path, capsys):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "file.txt").write_text("hello")
    for bad, match in ((tmp_path / "stuff", "not a CIFAR-10"), (tmp_path / "file.txt", "neither")):
        argv = ["reproduce", "--full", "--study", "mlp", "--data", str(bad), "--out", str(tmp_path / "o"), "--quiet"]
        assert main(argv) == 2
        assert match in capsys.readouterr().err


def test_bad_refopt_data_variable_fails_early(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REFOPT_DATA", str(tmp_path / "missing"))
    argv = ["reproduce", "--full", "--out", str(tmp_path / "o"), "--quiet"]
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o" / "cells").exists()  # nothing ran before the check
