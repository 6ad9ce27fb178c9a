"""Mantissa budgets, their inverse, the paper's statements, and the theory CLI."""

from __future__ import annotations

import math
import re

import pytest

from refopt.cli import main
from refopt.formats import list_formats
from refopt.theory import (
    EXAMPLES,
    PAPER_ORDERS,
    adam_bound,
    adam_condition,
    component_errors,
    largest_horizon,
    mantissa_budget,
    muon_bound,
    paper_schedule,
    scheduled_bound,
)


def direct_adam(T, comp=None, q=0.0):
    """The example's bound written out by hand (schedule alpha = 1/sqrt T, b2 = 1 - 1/T)."""
    ex = EXAMPLES["adam"]
    kw = {f"q_{comp}": q} if comp else {}
    return adam_bound(T, 1 / math.sqrt(T), ex["b1"], 1 - 1 / T, ex["eps"], ex["d"], ex["R"],
                      ex["L"], ex["delta"], x0_norm=ex["x0_norm"], **kw).value


@pytest.mark.parametrize("T", [10**3, 10**5])
def test_budget_is_minimal_per_component(T):
    b = mantissa_budget("adam", T, rho=0.1)
    base = direct_adam(T)
    assert b.full_precision == base
    for comp, m in b.bits.items():
        assert m is not None
        q = 2.0 ** -(m + 1)                     # round to nearest: unit roundoff 2^-(M+1)
        assert b.q[comp] == q
        assert direct_adam(T, comp, q) <= (1 + 0.1 / 4) * base
        if m > 0:
            assert direct_adam(T, comp, 2.0 ** -m) > (1 + 0.1 / 4) * base
    assert b.quantized <= 1.1 * base


def test_budget_formats_are_exactly_those_meeting_q():
    b = mantissa_budget("muon", 10**4, rho=0.2)
    for comp, names in b.formats.items():
        for name, f in list_formats().items():
            assert (name in names) == (2.0 ** -(f.mantissa_bits + 1) <= b.q[comp])


def test_budgets_grow_slowly_with_T_and_v_needs_more_than_m():
    bits = [mantissa_budget("adam", T).bits for T in (10**3, 10**4, 10**5, 10**6)]
    for comp in "WGMV":
        seq = [b[comp] for b in bits]
        assert seq == sorted(seq)
        assert seq[-1] - seq[0] <= 25          # logarithmic in T, not polynomial
    assert all(b["V"] > b["M"] >= b["G"] for b in bits)


def test_stochastic_rounding_costs_one_bit():
    near = mantissa_budget("adam", 10**4, rounding="nearest_even").bits
    stoch = mantissa_budget("adam", 10**4, rounding="stochastic").bits
    assert {c: m + 1 for c, m in near.items()} == stoch


def test_largest_horizon_is_the_boundary():
    spec = {"W": "fp32", "G": "bf16", "M": "bf16", "V": "fp32"}
    T = largest_horizon("adam", spec, rho=0.1)
    q = component_errors(spec)

    def ok(t):
        base = scheduled_bound("adam", t).value
        return scheduled_bound("adam", t, q).value <= 1.1 * base

    assert 16 <= T < 10**12 and ok(T) and not ok(T + 1)
    assert largest_horizon("adam", {"G": None}, T_max=10**6) == 10**6
    assert largest_horizon("adam", {"V": 1}, rho=1e-6) == 15   # fails at T_min


def test_component_errors():
    q = component_errors({"W": "bf16", "g": 7, "m": None, "v": "fp16"})
    assert q == {"W": 2.0**-8, "G": 2.0**-8, "M": 0.0, "V": 2.0**-11}
    assert component_errors({"W": "bf16"}, "toward_zero") == {"W": 2.0**-7}
    with pytest.raises(ValueError, match="component"):
        component_errors({"X": "bf16"})
    with pytest.raises(ValueError):
        component_errors({"W": "bf17"})


def test_scheduled_bound_rejects_unknown():
    with pytest.raises(ValueError, match="optimizer"):
        scheduled_bound("sgd", 100)
    with pytest.raises(ValueError, match="component"):
        scheduled_bound("muon", 100, {"V": 0.1})
    with pytest.raises(ValueError, match="rho"):
        mantissa_budget("adam", 100, rho=0.0)


def test_paper_statements():
    s = paper_schedule("adam", 10**4)
    assert s == {"alpha": 0.01, "b2": 1 - 1e-4, "q_G": 1e-4, "q_M": 1e-4, "q_W": 1e-8,
                 "q_V": 1e-8}
    s = paper_schedule("muon", 10**4)
    assert s["eta"] == pytest.approx(1e-3) and s["beta"] == pytest.approx(0.99)
    assert s["q_M"] == pytest.approx(1e-2)
    assert PAPER_ORDERS["adam"]["V"] == 2.0 and PAPER_ORDERS["muon"]["M"] == 0.5
    assert adam_condition(0.9, 0.999, 0.0, 0.0)[0]
    assert not adam_condition(0.9, 0.81, 0.0, 0.0)[0]          # equality is not enough
    with pytest.raises(ValueError, match="too small"):
        paper_schedule("muon", 1)
    with pytest.raises(ValueError, match="optimizer"):
        paper_schedule("lion", 100)


def test_muon_example_through_scheduled_bound():
    T = 10**4
    s = paper_schedule("muon", T)
    ex = EXAMPLES["muon"]
    direct = muon_bound(T, s["eta"], s["beta"], ex["rank"], ex["L"], ex["sigma"], ex["delta"],
                        ex["grad_norm"], q_M=1e-3)
    assert scheduled_bound("muon", T, {"M": 1e-3}).value == direct.value


# -- CLI -----------------------------------------------------------------------------------

def test_cli_bound_tables(capsys):
    assert main(["bound", "adam", "--T", "1e4", "--formats", "W=bf16,G=fp8_e5m2,m=bf16,v=fp16"]) == 0
    out = capsys.readouterr().out
    assert "refopt quantized Adam" in out and "TOTAL" in out and "q_G=0.125" in out
    assert main(["bound", "muon", "--T", "1e3", "1e4", "--q-m", "1e-3"]) == 0
    out = capsys.readouterr().out
    assert out.count("refopt quantized Muon") == 2 and "q_M b/(1-b(1+q_M))" in out
    for th, name in ((1, "Theorem 1"), (2, "Theorem 2"), (4, "Theorem 4")):
        assert main(["bound", "defossez", "--theorem", str(th)]) == 0
        assert name in capsys.readouterr().out


def test_cli_bound_matches_library(capsys):
    main(["bound", "defossez", "--T", "1000", "--d", "3"])
    out = capsys.readouterr().out
    ex = dict(EXAMPLES["adam"], d=3)
    from refopt.theory import defossez_adam_momentum

    val = defossez_adam_momentum(1000, 1 / math.sqrt(1000), ex["b1"], 1 - 1e-3, ex["eps"], 3,
                                 ex["R"], ex["L"], ex["delta"]).value
    assert f"{val:.4g}" in out


def test_cli_mantissa(capsys):
    assert main(["mantissa", "--T", "1e4", "--optimizer", "adam"]) == 0
    out = capsys.readouterr().out
    b = mantissa_budget("adam", 10**4)
    for comp, m in b.bits.items():
        label = {"W": "W (weights):", "G": "G (gradients):", "M": "m (momentum):",
                 "V": "v (2nd moment):"}[comp]
        assert re.search(rf"^  {re.escape(label)} +M >= {m:2d} bits", out, re.M)
    assert main(["mantissa", "--optimizer", "muon", "--formats", "W=bf16,G=bf16,M=bf16"]) == 0
    T = largest_horizon("muon", {"W": "bf16", "G": "bf16", "M": "bf16"})
    assert f": {T}" in capsys.readouterr().out


def test_cli_errors(capsys):
    assert main(["bound", "adam", "--b2", "2"]) == 2
    assert "b2" in capsys.readouterr().err
    assert main(["bound", "adam", "--formats", "W"]) == 2
    assert "--formats" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["mantissa", "--T", "0.5"])


def test_cli_shows_mantissa_bits(capsys):
    main(["bound", "adam", "--formats", "W=bf16,G=10,m=exact", "--rounding", "stochastic"])
    out = capsys.readouterr().out
    assert "relative errors (stochastic):" in out
    assert "q_W = 0.00781  (~7 mantissa bits)" in out
    assert "q_G = 0.000977  (~10 mantissa bits)" in out and "q_M = 0  (~exact mantissa bits)" in out
    full = scheduled_bound("adam", 10**4).value
    assert f"full precision (all q = 0): {full:.4g}" in out


@pytest.mark.parametrize("argv, name", [
    (["bound", "adam", "--q-v", "1.2"], "--q-v"), (["bound", "adam", "--q-g", "-0.1"], "--q-g"),
    (["bound", "adam", "--d", "0"], "d must be an integer >= 1"),
    (["bound", "adam", "--R", "-1"], "R must lie in (0, inf)"),
    (["bound", "adam", "--L", "inf"], "L must be finite"),
    (["bound", "adam", "--b2", "1"], "b2 must lie in (0, 1)"),
    (["bound", "muon", "--beta", "1"], "beta must lie in [0, 1)"),
    (["bound", "defossez", "--delta", "nan"], "delta must be finite"),
    (["mantissa", "--rho", "-1"], "rho"),
])
def test_cli_bad_input_names_the_argument(capsys, argv, name):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert name in captured.err and captured.out == ""


@pytest.mark.parametrize("T", ["0", "-3", "nan", "2.5"])
def test_cli_bad_horizon(capsys, T):
    with pytest.raises(SystemExit):
        main(["bound", "adam", "--T", T])
    assert "T must be an integer >= 1" in capsys.readouterr().err


def test_bits_are_an_explicit_input():
    """M (mantissa bits) enters through q = 2^-(M+1) (nearest) or 2^-M (stochastic)."""
    res = scheduled_bound("adam", 10**4, bits={"W": 23, "G": 7, "m": 10, "v": None})
    assert (res.inputs["q_W"], res.inputs["q_G"], res.inputs["q_M"], res.inputs["q_V"]) == (
        2.0**-24, 2.0**-8, 2.0**-11, 0.0)
    sr = scheduled_bound("adam", 10**4, bits={"G": 7}, rounding="stochastic")
    assert sr.inputs["q_G"] == 2.0**-7
    assert sr.value > scheduled_bound("adam", 10**4, bits={"G": 7}).value
    with pytest.raises(ValueError, match="both"):
        scheduled_bound("adam", 10**4, {"G": 1e-3}, bits={"G": 7})
