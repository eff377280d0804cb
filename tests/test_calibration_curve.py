"""The reliability curve `evaluate` reports (`calibration_curve` in --json) and draws (`--calibration-plot`): bins of
equal size by predicted probability, each bin's observed share with its Wilson interval, per class."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_clean_error, run
from mlpcli import metrics
from tables import make_table
from test_risk_calibration import _cohort


def test_the_curve_bins_samples_by_risk_with_wilson_intervals():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 1000)
    y = (rng.random(1000) < p).astype(int)
    rows = metrics.calibration_curve(y, p)
    assert len(rows) == 10 and sum(r["n"] for r in rows) == 1000 and {r["n"] for r in rows} == {100}
    means = [r["mean_predicted"] for r in rows]
    assert means == sorted(means)
    order = np.argsort(p, kind="mergesort")
    first = order[:100]
    assert rows[0]["observed"] == pytest.approx(y[first].mean()) and rows[0]["mean_predicted"] == pytest.approx(p[first].mean())
    for r in rows:  # calibrated risks: every bin's interval holds its mean risk, bar chance
        assert r["observed_ci"][0] <= r["observed"] <= r["observed_ci"][1]
    assert sum(r["observed_ci"][0] <= r["mean_predicted"] <= r["observed_ci"][1] for r in rows) >= 9
    # Wilson's interval by hand: 5 events of 20 -> 0.1119 - 0.4687
    (one,) = metrics.calibration_curve(np.r_[np.ones(5), np.zeros(15)], np.full(20, 0.3))
    assert one["observed_ci"] == pytest.approx([0.1119, 0.4687], abs=1e-4)
    # a small table: fewer bins, at least 20 samples each
    assert [r["n"] for r in metrics.calibration_curve(y[:50], p[:50])] == [25, 25]
    assert metrics.calibration_curve([], []) == []


def test_evaluate_reports_and_draws_the_curve_per_class(risk_model, tmp_path):
    _cohort(600, 2).to_csv(tmp_path / "new.csv", index=False)
    res = run(["evaluate", risk_model, str(tmp_path / "new.csv"), "--id", "pid", "--json",
               "--calibration-plot", str(tmp_path / "cal.png")])
    assert res.exit_code == 0, res.output
    curve = json.loads(res.stdout)["calibration_curve"]
    assert list(curve) == ["event"] and len(curve["event"]) == 10 and sum(r["n"] for r in curve["event"]) == 600
    assert (tmp_path / "cal.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    make_table("multiclass", n_patients=40).to_csv(tmp_path / "mc.csv", index=False)
    # one small network: a curve per class is drawn from any three-class model's probabilities; the default
    # portfolio of 5-member ensembles only took longer to give them
    assert run(["train", str(tmp_path / "mc.csv"), "--epochs", "5", "--hidden", "8", "--folds", "1", "-q", "-o",
                str(tmp_path / "mc.mlp")]).exit_code == 0
    res = run(["evaluate", str(tmp_path / "mc.mlp"), str(tmp_path / "mc.csv"), "--json", "--calibration-plot",
               str(tmp_path / "mc.svg")])
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.stdout)["calibration_curve"]) == {"typeA", "typeB", "typeC"}
    assert b"<svg" in (tmp_path / "mc.svg").read_bytes()[:500]


def test_calibration_plot_options_that_cannot_apply(tmp_path):
    make_table("regression", n_patients=20).to_csv(tmp_path / "reg.csv", index=False)
    assert run(["train", str(tmp_path / "reg.csv"), "--epochs", "3", "-q", "-o", str(tmp_path / "r.mlp")]).exit_code == 0
    res = run(["evaluate", str(tmp_path / "r.mlp"), str(tmp_path / "reg.csv"), "--calibration-plot",
               str(tmp_path / "c.png")])
    assert_clean_error(res, "--calibration-plot", "regression", code=2)
    assert json.loads(run(["evaluate", str(tmp_path / "r.mlp"), str(tmp_path / "reg.csv"), "--json"]).stdout).get(
        "calibration_curve") is None
    res = run(["evaluate", str(tmp_path / "r.mlp"), str(tmp_path / "reg.csv"), "--calibration-plot",
               str(tmp_path / "c.txt")])
    assert_clean_error(res, "--calibration-plot", ".png", code=2)
    res = run(["evaluate", str(tmp_path / "r.mlp"), str(tmp_path / "reg.csv"), "--calibration-plot",
               str(tmp_path / "c.png"), "--plot", str(tmp_path / "c.png")])
    assert_clean_error(res, "--calibration-plot", code=2)
    assert not (tmp_path / "c.png").exists()


def test_a_bin_without_events_or_of_events_only_is_drawn_with_its_interval_at_the_bound(risk_model, tmp_path):
    for m in (25, 28, 35, 50):  # sizes where Wilson's bound missed 0 or 1 by 1e-17 and matplotlib refused the bar
        (none,) = metrics.calibration_curve(np.zeros(m), np.full(m, 0.1), bins=1)
        (every,) = metrics.calibration_curve(np.ones(m), np.full(m, 0.9), bins=1)
        assert none["observed_ci"][0] == 0.0 and every["observed_ci"][1] == 1.0
    one = _cohort(300, 3)
    one["label"] = "none"  # a table of one class: every bin without events
    one.to_csv(tmp_path / "one.csv", index=False)
    # The shared binary model of the same kind of cohort (the test trained its own, of 8 hidden units, on
    # _cohort(500, 1)): whatever the model's risks, a table without events leaves every bin without one.
    res = run(["evaluate", risk_model, str(tmp_path / "one.csv"), "--id", "pid", "--calibration-plot",
               str(tmp_path / "one.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "one.png").exists()
