"""Cell functions and study grids: properties, determinism, bad input."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refopt.experiments.cells import (
    condition_cell,
    condition_ratio,
    mlp_cell,
    q_for_rho,
    resolve_format,
    trajectory_cell,
)
from refopt.experiments.runner import cell_seed
from refopt.experiments.studies import SCALES, STUDIES, get_study

SMALL = {"shape": [4, 6], "steps": 30, "every": 10}


def seed(i=0):
    return np.random.SeedSequence(i)


def test_resolve_format():
    assert resolve_format("exact") is None and resolve_format(None) is None
    f = resolve_format("M5")
    assert f.mantissa_bits == 5 and f == resolve_format("M5")
    assert resolve_format("bf16").mantissa_bits == 7
    for bad in ("M53", "fp99", 3):
        with pytest.raises(ValueError):
            resolve_format(bad)


def test_condition_ratio_hand_values():
    assert condition_ratio(0.9, 0.81, 0.0, 0.0) == pytest.approx(1.0)
    assert condition_ratio(0.9, 0.9, 0.1, 0.1) == pytest.approx(0.81 * 1.21 / (0.9 * 0.9))
    assert condition_ratio(0.9, 0.99, 0.0, 1.0) == math.inf


@settings(max_examples=50, deadline=None)
@given(rho=st.floats(0.9, 1.5), family=st.sampled_from(["m", "v", "both"]))
def test_q_for_rho_inverts_the_ratio(rho, family):
    b1, b2 = 0.9, 0.9
    q_m, q_v = q_for_rho(rho, b1, b2, family)
    assert q_m >= 0 and 0 <= q_v < 1
    assert condition_ratio(b1, b2, q_m, q_v) == pytest.approx(rho, rel=1e-12)


def test_q_for_rho_rejects_unknown_family_and_unreachable_ratio():
    with pytest.raises(ValueError, match="family"):
        q_for_rho(1.0, 0.9, 0.9, "w")
    # Without errors the ratio is b1^2 / b2 = 0.9: a smaller one needs q_m < 0.
    with pytest.raises(ValueError, match="not reachable"):
        q_for_rho(0.5, 0.9, 0.9, "m")


def test_trajectory_is_deterministic_and_seed_dependent():
    p = {**SMALL, "format": "M3", "rounding": "stochastic"}
    a = trajectory_cell(p, seed(1))
    b = trajectory_cell(p, seed(1))
    c = trajectory_cell(p, seed(2))
    assert a == b
    assert a["grad_norm"] != c["grad_norm"]  # stochastic rounding draws differ
    rn = {**p, "rounding": "nearest_even"}
    assert trajectory_cell(rn, seed(1)) == trajectory_cell(rn, seed(2))  # no randomness left
    assert a["t"] == [0, 1, 10, 20, 30]


def test_exact_format_matches_unquantized_and_loss_scaling_is_invisible_in_exact_adam():
    base = trajectory_cell({**SMALL, "format": "exact"}, seed())
    off = trajectory_cell({**SMALL, "format": "M52", "components": ""}, seed())
    assert base["grad_norm"] == off["grad_norm"]
    scaled = trajectory_cell({**SMALL, "format": "exact", "grad_scale": 1024.0}, seed())
    np.testing.assert_allclose(scaled["grad_norm"], base["grad_norm"], rtol=1e-9)


def test_rosenbrock_trajectory_decreases_the_loss_and_records_v():
    r = trajectory_cell({**SMALL, "steps": 200, "every": 50}, seed())
    assert r["loss"][-1] < r["loss"][0] and not r["diverged"]
    assert r["v_zero"][0] is None and all(0 <= z <= 1 for z in r["v_zero"][1:])
    m = trajectory_cell({**SMALL, "optimizer": "muon", "lr": 3e-3, "components": "WGm"}, seed())
    assert m["loss"][-1] < m["loss"][0]
    assert all(z is None for z in m["v_zero"])


def test_fp16_second_moment_flushes_to_zero():
    p = {"problem": "quadratic", "shape": [5, 8], "L": 1e-3, "condition": 100.0, "lr": 1e-2, "format": "fp16",
         "components": "v", "rounding": "nearest_even", "steps": 3, "every": 1}
    r = trajectory_cell(p, seed())
    # (1 - b2) g^2 <= 1e-3 * 1e-6 * 9 < 2^-24 (fp16's smallest subnormal): every entry flushes
    assert r["v_zero"][1] == 1.0
    fixed = trajectory_cell({**p, "format": "bf16"}, seed())
    assert fixed["v_zero"][1] == 0.0


def test_condition_cell_decaying_toy_growth_rate():
    b1 = b2 = 0.9
    for rho, sign in ((0.95, -1), (1.1, 1)):
        q_m, q_v = q_for_rho(rho, b1, b2, "both")
        r = condition_cell({"problem": "decaying", "q_m": q_m, "q_v": q_v, "b1": b1, "b2": b2, "eps": 1e-300,
                            "steps": 100, "every": 1}, seed())
        rate = math.log(r["ratio"][-1] / r["ratio"][49]) / (r["t"][-1] - r["t"][49])
        assert np.sign(rate) == sign
        assert rate == pytest.approx(0.5 * math.log(rho), abs=1e-6)
        assert r["rho"] == pytest.approx(rho)


def test_mlp_cell_learns_digits():
    pytest.importorskip("sklearn")
    p = {"hidden": [16, 16, 16], "steps": 100, "every": 50, "batch": 32, "lr": 1e-2}
    a = mlp_cell(p, seed())
    assert a["dataset"] == "digits"
    assert a["test_loss"][-1] < a["test_loss"][0] and a["final_test_acc"] > 0.5
    m = mlp_cell({**p, "optimizer": "muon", "format": "bf16"}, seed())
    assert m["final_test_acc"] > 0.5 and not m["diverged"]
    assert mlp_cell(p, seed()) == a


def test_every_study_builds_at_both_scales():
    for name in STUDIES:
        for scale in SCALES:
            s = get_study(name, scale)
            assert s.name == name and s.cells and s.settings
            assert len({str(sorted(c.items())) for c in s.cells}) == len(s.cells)  # no duplicate cells
    full = get_study("mantissa", "full")
    assert {c["format"] for c in full.cells} == {f"M{m}" for m in [*range(1, 24), 52]}
    assert {c["steps"] for c in full.cells} == {10_000}


@pytest.mark.parametrize(
    "fn, params, match",
    [
        (trajectory_cell, {"optimizer": "sgd"}, "optimizer"),
        (trajectory_cell, {"format": "fp99"}, "fp99"),
        (trajectory_cell, {"steps": 0}, "steps"),
        (trajectory_cell, {"steps": -5}, "steps"),
        (trajectory_cell, {"every": 0}, "every"),
        (trajectory_cell, {"lr": 0.0}, "lr"),
        (trajectory_cell, {"rounding": "up"}, "rounding"),
        (trajectory_cell, {"components": "WX"}, "components"),
        (trajectory_cell, {"optimizer": "muon", "components": "v"}, "second moment"),
        (trajectory_cell, {"problem": "himmelblau"}, "problem"),
        (trajectory_cell, {"colour": 1}, "unknown parameter"),
        (condition_cell, {"q_v": 1.0}, "q_v"),
        (condition_cell, {"problem": "x"}, "problem"),
        (mlp_cell, {"batch": 0}, "batch"),
        (mlp_cell, {"optimizer": "lion"}, "optimizer"),
    ],
)
def test_bad_parameters(fn, params, match):
    with pytest.raises(ValueError, match=match):
        fn(params, seed())


def test_bad_study_and_scale():
    with pytest.raises(ValueError, match="unknown study"):
        get_study("nope")
    with pytest.raises(ValueError, match="scale"):
        get_study("mantissa", "huge")


def test_cell_seed_reaches_cells():
    s = get_study("mantissa")
    a = trajectory_cell({**s.cells[0], "steps": 5, "every": 5}, cell_seed(s.seed, s.name, s.cells[0]))
    assert math.isfinite(a["final_grad_norm"])


def test_real_cells_bit_identical_for_1_and_2_jobs(tmp_path):
    from refopt.experiments.runner import run_cells

    grid = [{**SMALL, "format": f"M{m}", "rounding": "stochastic", "optimizer": o,
             "components": "WGm" if o == "muon" else "WGmv", "lr": 3e-3}
            for m in (2, 5) for o in ("adam", "muon")]
    one = run_cells(trajectory_cell, grid, tmp_path / "a", study="s", seed=11, jobs=1, progress=False)
    two = run_cells(trajectory_cell, grid, tmp_path / "b", study="s", seed=11, jobs=2, progress=False)
    assert [r["result"] for r in one] == [r["result"] for r in two]


def test_mlp_cell_on_a_tiny_cifar_directory(tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, 20)]}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
    r = mlp_cell({"dataset": "cifar10", "data": str(tmp_path), "hidden": [8, 8, 8], "steps": 6, "every": 3,
                  "batch": 16, "optimizer": "muon", "format": "bf16"}, seed())
    assert r["dataset"] == "cifar10" and r["t"] == [0, 3, 6] and not r["diverged"]
