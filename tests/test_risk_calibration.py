"""A binary model's risks on a cohort, as an external validation reports them (Van Calster et al. 2019; TRIPOD):
observed / expected events, the calibration intercept and slope with their intervals, the scaled Brier score,
specificity and NPV beside PPV and sensitivity, and a warning when the risks are systematically off — which the
top-label ECE did not show (O/E 0.67 read "ECE 0.021")."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tables import risk_cohort
from cli_helpers import run
from mlpcli import metrics
from mlpcli.metrics import logistic_recalibration


def _risks(n=4000, seed=0, scale=1.0, shift=0.0):
    """Outcomes drawn from true log-odds z, and risks whose log-odds are scale * z + shift."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-0.5, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return y, 1 / (1 + np.exp(-(scale * z + shift)))


def test_intercept_and_slope_recover_the_distortion():
    y, p = _risks(scale=2.0)  # too extreme: slope 1/2
    fit = {k: float(v[0]) for k, v in logistic_recalibration(y, p).items()}
    assert fit["slope"] == pytest.approx(0.5, abs=0.04) and fit["slope_se"] < 0.03
    y, p = _risks(shift=0.8)  # too high by 0.8 on the log-odds: intercept -0.8, slope 1
    fit = {k: float(v[0]) for k, v in logistic_recalibration(y, p).items()}
    assert fit["intercept"] == pytest.approx(-0.8, abs=0.08) and fit["slope"] == pytest.approx(1.0, abs=0.08)
    # as an unpenalised logistic regression of y on logit p fits it
    from sklearn.linear_model import LogisticRegression

    z = np.log(p / (1 - p))
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=1000).fit(z[:, None], y)
    assert fit["slope"] == pytest.approx(float(ref.coef_[0, 0]), rel=1e-6)
    # weights count rows: weight 2 equals the row twice
    w = np.ones(len(y))
    w[:100] = 2.0
    twice = np.r_[np.arange(len(y)), np.arange(100)]
    a = logistic_recalibration(y, p, w[None])
    b = logistic_recalibration(y[twice], p[twice])
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9)


def test_undefined_without_both_outcomes_or_without_spread_in_the_risks():
    one = logistic_recalibration(np.zeros(50), np.linspace(0.1, 0.9, 50))
    assert np.isnan(one["intercept"][0]) and np.isnan(one["slope"][0])
    flat = logistic_recalibration(np.r_[np.zeros(25), np.ones(25)], np.full(50, 0.3))
    assert np.isfinite(flat["intercept"][0]) and np.isnan(flat["slope"][0])
    separated = logistic_recalibration(np.r_[np.zeros(25), np.ones(25)], np.r_[np.full(25, 0.2), np.full(25, 0.8)])
    assert np.isnan(separated["slope"][0])  # the slope grows without end: no estimate


def test_the_binary_metric_set():
    y, p = _risks(shift=-0.6, seed=2)
    m = metrics.compute("binary", y, p, ["no", "yes"], 0.3)
    pred = p >= 0.3
    tn, fn = np.sum(~pred & (y == 0)), np.sum(~pred & (y == 1))
    assert m["specificity"] == pytest.approx(tn / np.sum(y == 0)) and m["npv"] == pytest.approx(tn / (tn + fn))
    assert m["observed_expected"] == pytest.approx(y.sum() / p.sum()) and m["observed_expected"] > 1.2
    rate = y.mean()
    assert m["brier_scaled"] == pytest.approx(1 - np.mean((y - p) ** 2) / (rate * (1 - rate)))
    cal = m["calibration"]
    assert cal["observed"] == y.sum() and cal["intercept"] > 0.4 and "calibration_intercept" not in m
    assert cal["intercept_ci"][0] < cal["intercept"] < cal["intercept_ci"][1]
    assert cal["slope_ci"][0] < 1 < cal["slope_ci"][1]


_cohort = risk_cohort  # (other modules import it by this name)


def test_evaluate_warns_when_the_risks_are_too_high_on_a_cohort(tmp_path):
    _cohort(500, 1).to_csv(tmp_path / "dev.csv", index=False)
    _cohort(1500, 2, shift=-0.9).to_csv(tmp_path / "lower.csv", index=False)  # a lower baseline risk
    _cohort(1500, 3).to_csv(tmp_path / "same.csv", index=False)
    assert run(["train", str(tmp_path / "dev.csv"), "--id", "pid", "--positive", "event", "--hidden", "128", "-q",
                "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    lower = json.loads(run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "lower.csv"), "--id", "pid",
                            "--json"]).stdout)
    said = [w for w in lower["warnings"] if "systematically too high on average" in w]
    assert len(said) == 1 and "Recalibrate on this population" in said[0], lower["warnings"]
    assert lower["metrics"]["observed_expected"] < 0.8 and lower["metrics"]["calibration"]["intercept"] < -0.4
    same = json.loads(run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "same.csv"), "--id", "pid",
                           "--json"]).stdout)
    assert not [w for w in same["warnings"] if "systematically" in w]
    assert 0.85 < same["metrics"]["observed_expected"] < 1.15
    boot = json.loads(run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "lower.csv"), "--id", "pid",
                           "--bootstrap", "200", "--json"]).stdout)
    for key in ("observed_expected", "brier_scaled", "specificity", "npv"):
        lo, hi = boot["ci"][key]
        assert lo <= boot["metrics"][key] <= hi


def test_evaluate_by_site_names_the_site_whose_risks_are_off(risk_model, tmp_path):
    """Pooled, one site's low baseline risk hides inside the band (O/E 0.83 overall, 0.60 at the site)."""
    a, b = _cohort(800, 11), _cohort(800, 12, shift=-0.9)
    a["site"], b["site"] = "A", "B"
    pd.concat([a, b]).to_csv(tmp_path / "sites.csv", index=False)
    doc = json.loads(run(["evaluate", risk_model, str(tmp_path / "sites.csv"), "--id", "pid", "--by",
                          "site", "--json"]).stdout)
    rows = {g["value"]: g for g in doc["groups"]}
    assert rows["B"]["metrics"]["observed_expected"] < 0.75 and 0.85 < rows["A"]["metrics"]["observed_expected"] < 1.2
    said = [w for w in doc["warnings"] if w.startswith("--by site:") and "systematically" in w]
    assert len(said) == 1 and "'B'" in said[0] and "mlpcli recalibrate" in said[0], doc["warnings"]
    assert rows["B"].get("risks_off") and not rows["A"].get("risks_off")


def test_a_group_with_few_events_is_not_judged_on_its_risks(risk_model, tmp_path):
    d = _cohort(600, 21)
    d["site"] = "big"
    small = _cohort(15, 22)
    small["label"], small["site"] = "event", "small"  # far off, but 15 events and no non-event
    pd.concat([d, small]).to_csv(tmp_path / "t.csv", index=False)
    doc = json.loads(run(["evaluate", risk_model, str(tmp_path / "t.csv"), "--id", "pid", "--by", "site",
                          "--json"]).stdout)
    assert not [w for w in doc["warnings"] if "'small'" in w and "systematically" in w]
    assert {g["value"]: g["risks_off"] for g in doc["groups"]}["small"] is False


def test_risks_still_off_after_prevalence_do_not_advise_prevalence_again(risk_model, tmp_path):
    """With --prevalence given, a warning that the moved risks are still off had gone on to advise --prevalence."""
    _cohort(1500, 2, shift=-0.9).to_csv(tmp_path / "lower.csv", index=False)
    doc = json.loads(run(["evaluate", risk_model, str(tmp_path / "lower.csv"), "--id", "pid", "--prevalence",
                          "event=0.3", "--json"]).stdout)  # (the table's share is 0.22)
    said = [w for w in doc["warnings"] if "systematically" in w]
    assert len(said) == 1 and "after --prevalence moved them" in said[0], doc["warnings"]
    assert "--prevalence moves them" not in said[0]
