"""run/Trace, the oracle checker end to end, golden vectors and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from refopt import exact
from refopt.cli import main
from refopt.optim import (
    Precision,
    Trace,
    adam,
    check_trace,
    muon,
    muon_adam,
    optimizer_from_config,
    run,
    sample_gradient,
    ulp_distance,
    worst_case,
    write_vectors,
)

H = np.linspace(0.5, 3.0, 12)


def oracle(wq: np.ndarray, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    return 0.5 * float(np.sum(H * wq * wq)), H * wq + 0.05 * rng.standard_normal(wq.shape)


def stochastic_adam(seed: int):
    P = Precision("bf16", "bf16", "bf16", "fp16", rounding="stochastic", rng=seed)
    return adam(0.05, variant="practical", precision=P)


def test_run_records_the_framework_order() -> None:
    P = Precision(weights="bf16", grads="fp8_e4m3fn", m="bf16", v="bf16")
    tr = run(oracle, adam(0.05, precision=P), np.linspace(-1, 1, 12), 8, rng=0)
    assert tr.names == ["w", "wq", "g", "gq", "m", "v", "update", "loss"]
    assert tr["w"].shape == (8, 12) and list(tr.steps) == list(range(1, 9))
    for i in range(8):
        np.testing.assert_array_equal(tr["wq"][i], [exact(float(x), "bf16") for x in tr["w"][i]])
        np.testing.assert_array_equal(tr["gq"][i], [exact(float(x), "fp8_e4m3fn") for x in tr["g"][i]])
        assert tr["loss"][i] == pytest.approx(0.5 * np.sum(H * tr["wq"][i] ** 2))
    for i in range(7):  # master weights: w_{t+1} = w_t - update_t exactly
        np.testing.assert_array_equal(tr["w"][i + 1], tr["w"][i] - tr["update"][i])
    np.testing.assert_array_equal(tr.final, tr["w"][7] - tr["update"][7])


def test_same_seed_identical_traces_different_seed_differs(tmp_path) -> None:
    w0 = np.linspace(-1, 1, 12)
    a = run(oracle, stochastic_adam(1), w0, 15, rng=3)
    b = run(oracle, stochastic_adam(1), w0, 15, rng=3)
    c = run(oracle, stochastic_adam(2), w0, 15, rng=3)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    assert not np.array_equal(a.arrays["m"], c.arrays["m"])
    a.save(tmp_path / "a.npz")
    back = Trace.load(tmp_path / "a.npz")
    assert back.config == json.loads(json.dumps(a.config))
    for k in a.arrays:
        np.testing.assert_array_equal(back.arrays[k], a.arrays[k])


def test_record_subset_and_every() -> None:
    tr = run(lambda w: w, muon(0.1), np.eye(3), 10, rng=None, record=("w", "m"), every=3)
    assert list(tr.steps) == [1, 4, 7, 10] and tr.names == ["w", "m"]
    with pytest.raises(KeyError, match="not recorded"):
        tr["v"]
    with pytest.raises(ValueError, match="cannot record"):
        run(lambda w: w, muon(0.1), np.eye(3), 2, rng=None, record=("w", "grad"))
    with pytest.raises(ValueError, match="every"):
        run(lambda w: w, muon(0.1), np.eye(3), 2, rng=None, every=0)
    with pytest.raises(ValueError, match="gradient"):
        run(lambda w: w[:1], muon(0.1), np.eye(3), 2, rng=None)


def test_config_round_trip_rebuilds_equal_optimizers() -> None:
    P = Precision(weights="bf16", m=worst_case(2.0**-6, "-"), v="fp16")
    for opt in (adam(0.1, 0.8, precision=P, weight_decay=0.1, decoupled=True, master_weights=False),
                muon(0.05, nesterov=True, orthogonalize="newton_schulz", ns_precision="bf16", precision=P),
                muon_adam(muon(0.05, precision=P), adam(0.1, precision=P))):
        cfg = json.loads(json.dumps(opt.config()))
        assert optimizer_from_config(cfg).config() == opt.config()
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizer_from_config({"optimizer": "sgd", "precision": Precision().config()})


def test_checker_finds_a_planted_divergence(tmp_path) -> None:
    """Play 'another implementation': perturb one value and be told exactly where."""
    tr = run(oracle, stochastic_adam(9), np.linspace(-1, 1, 12), 20, rng=4)
    assert check_trace(tr).ok
    path = tmp_path / "theirs.npz"
    v = tr.arrays["v"][12, 5]
    tr.arrays["v"][12, 5] = v + 2.0 ** (math.frexp(v)[1] - 1 - 10)  # the next fp16 number
    tr.save(path)
    report = check_trace(path)
    d = report.divergence
    assert not report.ok and (d.step, d.component, d.index) == (13, "v", (5,))
    assert d.format_name == "fp16" and d.ulps == pytest.approx(1.0, abs=0.01)
    assert "step 13" in str(report) and "v[5]" in str(report)
    assert check_trace(path, ulps=1).ok  # within the tolerance


def test_checker_dict_params_and_against(tmp_path) -> None:
    P = Precision("bf16", "bf16", "bf16", "bf16")
    opt = muon_adam(muon(0.02, precision=P), adam(1e-2, variant="practical", precision=P))
    w0 = {"W": np.eye(3), "b": np.ones(3)}

    def g(w, rng):
        return {k: v - 0.5 + 0.1 * rng.standard_normal(v.shape) for k, v in w.items()}

    ref = run(g, opt, w0, 6, rng=1)
    ref.save(tmp_path / "ref.npz")
    theirs = Trace.load(tmp_path / "ref.npz")
    theirs.arrays["gq/b"][3, 2] += 2.0**-6
    r = check_trace(theirs, against=tmp_path / "ref.npz")
    assert (r.divergence.step, r.divergence.component, r.divergence.key, r.divergence.index) == (4, "gq", "b", (2,))
    assert check_trace(theirs).divergence.component == "gq"  # recomputed reference agrees


def test_checker_needs_replayable_traces() -> None:
    tr = run(lambda w: w, adam(0.1), np.ones(2), 4, rng=None, record=("w", "m"))
    with pytest.raises(ValueError, match="'g'"):
        check_trace(tr)
    tr = run(lambda w: w, adam(0.1), np.ones(2), 4, rng=None, every=2)
    with pytest.raises(ValueError, match="every=1"):
        check_trace(tr)
    tr = run(lambda w: w, adam(0.1, precision=Precision(m=np.round)), np.ones(2), 2, rng=None)
    assert tr.config["optimizer"] is None
    with pytest.raises(ValueError, match="no optimizer config"):
        check_trace(tr)


def test_ulp_distance() -> None:
    assert ulp_distance(1.0, 1.0 + 2.0**-7, "bf16") == 1.0
    assert ulp_distance(1.0, 1.0 + 2.0**-52) == 1.0
    assert ulp_distance(0.0, 2.0**-149, "fp32") == 1.0  # subnormal spacing
    assert ulp_distance(np.nan, np.nan) == 0.0 and ulp_distance(1.0, np.nan) == np.inf


def test_sample_gradient_returns_all_framework_values() -> None:
    P = Precision(weights="fp16", grads="bf16")
    s = sample_gradient(lambda w: (1.5, w / 3), np.array([1.0 + 2.0**-12]), P)
    assert s.wq[0] == 1.0 and s.g[0] == 1 / 3 and s.gq[0] == exact(1 / 3, "bf16") and s.loss == 1.5


def test_golden_vectors_and_cli(tmp_path, capsys) -> None:
    out = tmp_path / "vec"
    assert main(["vectors", "--out", str(out), "--steps", "4"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    q = np.load(out / "quantize.npz")
    # spot-check the quantizer vectors against the scalar oracle and the bit patterns
    for name in ("bf16", "fp8_e4m3fn", "fp4_e2m1fn"):
        x = q[f"{name}/input"]
        for mode in manifest["quantize"]["modes"]:
            y = q[f"{name}/{mode}/output"]
            np.testing.assert_array_equal(y, [exact(float(v), name, mode) for v in x])
    assert q["bf16/nearest_even/output_bits"][list(q["bf16/input"]).index(1.0)] == "0x3f80"
    assert len(manifest["traces"]) == 13
    for entry in manifest["traces"]:  # every array described; the seeds regenerate the problem
        with np.load(out / entry["file"]) as data:
            assert set(entry["arrays"]) == set(data.files) - {"config", "steps"}
    entry = next(e for e in manifest["traces"] if e["file"] == "adam_analysed_exact.npz")
    rng = np.random.default_rng(entry["problem_seed"])
    rng.uniform(size=64), rng.standard_normal(64)  # h, target
    np.testing.assert_array_equal(Trace.load(out / entry["file"])["w"][0], rng.standard_normal(64))
    for entry in manifest["traces"]:
        path = out / entry["file"]
        assert main(["check", str(path)]) == 0
    theirs = Trace.load(out / "muon_bf16.npz")
    theirs.arrays["m"][2, 1, 1] *= -1
    theirs.save(tmp_path / "bad.npz")
    capsys.readouterr()
    assert main(["check", str(tmp_path / "bad.npz")]) == 1
    assert "step 3, m[1, 1]" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "bad.npz"), "--ulps", "-1"]) == 2


def test_write_vectors_bad_input(tmp_path) -> None:
    with pytest.raises(ValueError, match="steps"):
        write_vectors(tmp_path, steps=0)


def another_adamw(golden: Trace, m_rounding_from: int | None = None) -> Trace:
    """'Another implementation': scalar AdamW in plain Python floats, from the golden config.

    It reads the hyper-parameters and formats from the golden trace's JSON config, rounds
    with the integer oracle ``refopt.exact`` and consumes the golden oracle gradients
    ``g``. From step ``m_rounding_from`` on it has a planted bug: the first moment is
    rounded toward zero instead of to nearest.
    """
    cfg = golden.config["optimizer"]
    P = cfg["precision"]
    fmt = {c: P[c]["format"]["name"] for c in ("weights", "grads", "m", "v")}
    lr, b1, b2, eps, wd = (cfg[k] for k in ("lr", "b1", "b2", "eps", "weight_decay"))
    assert cfg["variant"] == "practical" and cfg["decoupled"] and P["rounding"] == "nearest_even"
    w = [float(x) for x in golden["w"][0]]
    m, v = [0.0] * len(w), [0.0] * len(w)
    rows: dict[str, list[list[float]]] = {k: [] for k in ("w", "wq", "g", "gq", "m", "v", "update")}
    for t, g in enumerate(golden["g"], start=1):
        mode = "toward_zero" if m_rounding_from is not None and t >= m_rounding_from else "nearest_even"
        wq = [exact(x, fmt["weights"]) for x in w]
        gq = [exact(float(x), fmt["grads"]) for x in g]
        bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
        u = [0.0] * len(w)
        rows["w"].append(list(w))
        for i in range(len(w)):  # the documented operation order of adam(variant="practical")
            m[i] = exact((1.0 - b1) * gq[i] + b1 * m[i], fmt["m"], mode)
            v[i] = exact(gq[i] * gq[i] * (1.0 - b2) + v[i] * b2, fmt["v"])
            u[i] = m[i] * (lr / bc1) / (math.sqrt(v[i]) / math.sqrt(bc2) + eps)
            w[i] = w[i] * (1.0 - lr * wd) - u[i]
        for name, row in (("wq", wq), ("g", list(g)), ("gq", gq), ("m", m), ("v", v), ("update", u)):
            rows[name].append(list(row))
    config = dict(golden.config, record=list(rows))
    arrays = {k: np.array(r) for k, r in rows.items()}
    arrays["final"] = np.array(w)
    return Trace(config, golden.steps, arrays)


def test_oracle_workflow_end_to_end_with_another_implementation(tmp_path, capsys) -> None:
    """vectors -> an independent implementation -> check: it agrees, then a planted bug is located."""
    out = tmp_path / "vec"
    assert main(["vectors", "--out", str(out), "--steps", "12"]) == 0
    golden_path = out / "adam_practical_fp8_grads.npz"
    golden = Trace.load(golden_path)
    theirs = another_adamw(golden)
    theirs.save(tmp_path / "theirs.npz")
    for extra in ([], ["--against", str(golden_path)]):
        assert main(["check", str(tmp_path / "theirs.npz"), *extra]) == 0

    buggy = another_adamw(golden, m_rounding_from=7)
    buggy.save(tmp_path / "buggy.npz")
    # where the bug first shows, found from the two independent runs alone
    differs = buggy["m"] != theirs["m"]
    step_i, index = np.argwhere(differs)[0]
    capsys.readouterr()
    assert main(["check", str(tmp_path / "buggy.npz")]) == 1
    report = capsys.readouterr().out
    assert f"step {step_i + 1}, m[{index}]" in report and "of bf16" in report
    d = check_trace(tmp_path / "buggy.npz").divergence
    assert (d.step, d.component, d.index) == (step_i + 1, "m", (index,)) and step_i + 1 >= 7
    assert (d.theirs, d.ours) == (buggy["m"][step_i, index], theirs["m"][step_i, index])
    assert d.ulps in (0.5, 1.0)  # toward zero vs nearest: one bf16 spacing apart
