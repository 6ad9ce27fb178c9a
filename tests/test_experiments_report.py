"""The report's findings follow its stated rules on hand-made records."""

import math

from refopt.experiments import report
from refopt.experiments.studies import get_study


def rec(params, **result):
    base = {"tail_grad_norm": 1.0, "final_grad_norm": 1.0, "diverged": False, "error": "", "t": [0, 1],
            "grad_norm": [1.0, 1.0], "loss": [2.0, 1.0], "v_zero": [None, 0.0], "max_grad_inf": 1.0,
            "max_weight_norm": 1.0, "final_loss": 1.0}
    return {"params": params, "result": {**base, **result}}


def test_mantissa_rules_detect_disagreement_with_the_paper():
    spec = get_study("mantissa")
    recs = []
    for opt, sens in (("adam", 2.0), ("muon", 10.0)):  # Muon made MORE sensitive on purpose
        for r in ("stochastic", "nearest_even"):
            recs.append(rec({"optimizer": opt, "rounding": r, "format": "M2"}, tail_grad_norm=sens))
            recs.append(rec({"optimizer": opt, "rounding": r, "format": "M52"}, tail_grad_norm=1.0))
    s = report._mantissa(spec, recs)
    text = " ".join(s["findings"])
    assert "NOT less sensitive" in text
    assert s["rows"][0] == ["2", "2", "2", "10", "10"]
    # factors within 20% of each other (2.3 vs 2.0) are not called either way
    recs = [r if r["params"]["optimizer"] == "adam" or r["params"]["format"] == "M52"
            else rec(r["params"], tail_grad_norm=2.3) for r in recs]
    text = " ".join(report._mantissa(spec, recs)["findings"])
    assert "too close to call" in text and "less sensitive" not in text


def test_floor_rule_and_bound_statement():
    spec = get_study("floors")
    recs = [rec({"format": "M3", "steps": t}, tail_grad_norm=v) for t, v in ((100, 1.0), (300, 0.5), (1000, 0.45))]
    recs += [rec({"format": "exact", "steps": t}, tail_grad_norm=v) for t, v in ((100, 1.0), (300, 0.1), (1000, 0.01))]
    bounds = {"M3": [math.inf] * 3, "exact": [50.0, 40.0, 30.0]}
    s = report._floors(spec, recs, bounds)
    text = " ".join(s["findings"])
    assert "M3: 1 at T = 100 -> 0.45 at T = 1000; the floor has stopped falling" in text
    assert "exact: 1 at T = 100 -> 0.01 at T = 1000; still falling" in text
    assert "x3e+03 .. x3e+03 above" in text and "For M3 a condition of the bound fails" in text
    # a bound below a measurement is reported as a contradiction
    s = report._floors(spec, recs, {"M3": [math.inf] * 3, "exact": [50.0, 40.0, 0.001]})
    assert "contradict" in " ".join(s["findings"])


def test_condition_separation_rule():
    spec = get_study("condition")
    recs = [rec({"problem": "quadratic", "q_m": q, "q_v": 0.0, "b1": 0.9, "b2": 0.9}, rho=rho, final_grad_norm=g,
                max_ratio=1.0, ratio=[1.0], diverged=not math.isfinite(g))
            for q, rho, g in ((0.01, 0.95, 1e-3), (0.06, 1.05, 1e-3), (0.2, 1.3, math.inf))]
    text = " ".join(report._condition(spec, recs)["findings"])
    assert "rho < 1: 1 of 1 runs stayed finite" in text
    assert "rho > 1: 1 of 2 runs blew up" in text
    assert "sufficient, not necessary" in text
