"""`evaluate --operating-points`: sensitivity, specificity, PPV and NPV of a binary model at several risk thresholds
at once, as a clinical report tabulates them, with patient-bootstrap intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from cli_helpers import assert_clean_error, run
from mlpcli import metrics
from tables import make_table
from test_risk_calibration import _cohort


def test_operating_points_by_hand_and_by_resample():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.25).astype(int)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, 400), 0, 1)
    t = np.array([0.2, 0.5, 1.0 - 1e-9])  # the last calls nobody
    op = metrics.operating_points(y, p, t)
    for j, tj in enumerate(t[:2]):
        tn, fp, fn, tp = confusion_matrix(y, (p >= tj).astype(int), labels=[0, 1]).ravel()
        assert op["sensitivity"][j] == pytest.approx(tp / (tp + fn))
        assert op["specificity"][j] == pytest.approx(tn / (tn + fp))
        assert op["ppv"][j] == pytest.approx(tp / (tp + fp))
        assert op["npv"][j] == pytest.approx(tn / (tn + fn))
        assert op["called"][j] == pytest.approx((tp + fp) / 400)
    assert op["called"][2] == 0 and np.isnan(op["ppv"][2]) and op["sensitivity"][2] == 0  # nobody called
    assert op["specificity"][2] == 1 and op["npv"][2] == pytest.approx(1 - y.mean())
    unit_of = np.arange(400) // 4  # patients of four rows
    M = np.zeros((2, 100))
    M[0] = 1.0  # every patient once: the table itself
    M[1, 5:15] = 10.0  # ten patients, ten times each
    draws = metrics.operating_points(y, p, t, unit_of, M)
    np.testing.assert_allclose(draws["sensitivity"][0], op["sensitivity"])
    rows = np.repeat(np.arange(20, 60), 10)
    again = metrics.operating_points(y[rows], p[rows], t)
    for k in ("sensitivity", "specificity", "npv", "called"):
        np.testing.assert_allclose(draws[k][1], again[k])


def test_evaluate_reports_operating_points_that_agree_with_its_own_threshold(risk_model, tmp_path):
    _cohort(700, 2).to_csv(tmp_path / "new.csv", index=False)
    own = json.loads(run(["evaluate", risk_model, str(tmp_path / "new.csv"), "--id", "pid",
                          "--json"]).stdout)
    t0 = own["threshold"]
    res = run(["evaluate", risk_model, str(tmp_path / "new.csv"), "--id", "pid", "--operating-points",
               f"0.6,{t0!r},0.1", "--bootstrap", "200", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    rows = doc["operating_points"]
    assert [r["threshold"] for r in rows] == sorted([0.1, t0, 0.6])
    at_own = next(r for r in rows if r["threshold"] == t0)
    assert at_own["sensitivity"] == pytest.approx(own["metrics"]["recall"])
    assert at_own["specificity"] == pytest.approx(own["metrics"]["specificity"])
    assert at_own["ppv"] == pytest.approx(own["metrics"]["precision"])
    assert doc["metrics"] == own["metrics"]  # the option reports; it changes no other figure
    sens = [r["sensitivity"] for r in rows]
    spec = [r["specificity"] for r in rows]
    assert sens == sorted(sens, reverse=True) and spec == sorted(spec)  # a higher threshold calls fewer
    assert [r["called"] for r in rows] == sorted((r["called"] for r in rows), reverse=True)
    for r in rows:
        for k in ("sensitivity", "specificity", "ppv", "npv"):
            lo, hi = r[f"{k}_ci"]
            assert lo <= r[k] <= hi and hi - lo > 0
    table = run(["evaluate", risk_model, str(tmp_path / "new.csv"), "--id", "pid",
                 "--operating-points", "0.2,0.4"]).output
    assert "Operating points" in table and "sensitivity" in table and "NPV" in table and " of 700 " in table


@pytest.fixture(scope="module")
def multiclass_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mc")
    make_table("multiclass", n_patients=30).to_csv(tmp / "mc.csv", index=False)
    # one small network: the options are refused for any multiclass model, before a sample is scored
    assert run(["train", str(tmp / "mc.csv"), "--epochs", "3", "--hidden", "4", "--folds", "1", "-q", "-o",
                str(tmp / "mc.mlp")]).exit_code == 0
    return str(tmp / "mc.mlp"), str(tmp / "mc.csv")


@pytest.mark.parametrize("option,bad,word", [("--operating-points", ("0,0.2", "1", "0.2,-0.5"), "high"),
                                             ("--net-benefit", ("0,0.2", "1", "0.2,1.5"), "a")])
def test_threshold_options_that_cannot_apply(risk_model, multiclass_model, tmp_path, option, bad, word):
    _cohort(300, 1).to_csv(tmp_path / "dev.csv", index=False)
    for value in bad:
        res = run(["evaluate", risk_model, str(tmp_path / "dev.csv"), "--id", "pid", option, value])
        assert_clean_error(res, option, "between 0 and 1", code=2)
    assert_clean_error(run(["evaluate", risk_model, str(tmp_path / "dev.csv"), "--id", "pid", option, word]),
                       option, code=2)
    model, table = multiclass_model
    assert_clean_error(run(["evaluate", model, table, option, "0.2"]), option, "multiclass", code=2)


def test_a_table_of_one_patient_gets_no_interval(risk_model, tmp_path):
    one = _cohort(100, 9)
    one["patient"] = "P1"
    one.to_csv(tmp_path / "one.csv", index=False)
    # The module's shared binary model of the same kind of cohort (the test trained its own of 8 hidden units on
    # _cohort(300, 1)): a table of one patient has no patients to resample, whatever the model's risks.
    res = run(["evaluate", risk_model, str(tmp_path / "one.csv"), "--id", "pid", "--group", "patient",
               "--operating-points", "0.2,0.5", "--net-benefit", "0.2", "--bootstrap", "100", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert all(r["sensitivity_ci"] is None and r["npv_ci"] is None for r in doc["operating_points"])
    assert all(r["model_ci"] is None for r in doc["net_benefit"])
    too_many = ",".join(str(i / 1000) for i in range(1, 200))
    assert_clean_error(run(["evaluate", risk_model, str(tmp_path / "one.csv"), "--id", "pid",
                            "--operating-points", too_many]), "--operating-points", "at most 100", code=2)


def test_a_target_finds_the_threshold_that_first_reaches_it():
    rng = np.random.default_rng(2)
    y = (rng.random(600) < 0.3).astype(int)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 600), 0, 1)
    for target in (0.5, 0.9, 1.0):
        at = metrics.at_target(y, p, "sensitivity", target)
        t = at["threshold"][0]
        here = metrics.operating_points(y, p, [t])
        assert here["sensitivity"][0] >= target and at["specificity"][0] == pytest.approx(here["specificity"][0])
        higher = p[p > t]
        if len(higher):  # the next risk up falls short: the highest threshold that reaches it
            assert metrics.operating_points(y, p, [higher.min()])["sensitivity"][0] < target
        at = metrics.at_target(y, p, "specificity", target)
        t = at["threshold"][0]
        assert metrics.operating_points(y, p, [t])["specificity"][0] >= target
        lower = p[p < t]
        if len(lower):
            assert metrics.operating_points(y, p, [lower.max()])["specificity"][0] < target
    # resamples: row weights (a resample drawing each row once is the table)
    W = np.vstack([np.ones(600), rng.integers(0, 3, 600)])
    both = metrics.at_target(y, p, "sensitivity", 0.9, W)
    assert both["threshold"][0] == metrics.at_target(y, p, "sensitivity", 0.9)["threshold"][0]
    rows = np.repeat(np.arange(600), W[1].astype(int))
    assert both["threshold"][1] == metrics.at_target(y[rows], p[rows], "sensitivity", 0.9)["threshold"][0]


def test_a_resample_chooses_a_targets_threshold_among_the_risks_it_holds():
    # rows a resample did not draw (weight 0) are no candidates: the lowest threshold keeping specificity 1 among the
    # drawn risks 0.1, 0.2 (negatives) and 0.9 (positive) is 0.9, not the undrawn 0.3 below it (the same calls, but
    # a threshold, and an interval of it, too low)
    y, p = np.array([0, 0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4, 0.9])
    W = np.array([[1.0, 1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0, 0.0]])
    for figure, level in (("specificity", 1.0), ("specificity", 0.5), ("sensitivity", 0.5)):
        got = metrics.at_target(y, p, figure, level, W)
        for b, w in enumerate(W):
            alone = metrics.at_target(y[w > 0], p[w > 0], figure, level)
            np.testing.assert_equal(got["threshold"][b], alone["threshold"][0], err_msg=f"{figure} {level} {b}")
    # (the second resample holds no positive: no sensitivity to reach, NaN both ways)
    # nobody reaches it: just above the highest risk the resample holds (0.3), not the table's (0.9)
    assert metrics.at_target(y, p, "specificity", 1.0, W)["threshold"][1] == np.nextafter(0.3, 1.0)
    rng = np.random.default_rng(5)
    y = (rng.random(300) < 0.4).astype(int)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0, 1)
    W = rng.integers(0, 3, size=(20, 300)).astype(float)
    got = metrics.at_target(y, p, "specificity", 0.9, W)["threshold"]
    rows = [np.repeat(np.arange(300), w.astype(int)) for w in W]
    np.testing.assert_array_equal(got, [metrics.at_target(y[r], p[r], "specificity", 0.9)["threshold"][0] for r in rows])


def test_evaluate_reports_targets_beside_thresholds(risk_model, tmp_path):
    _cohort(700, 2).to_csv(tmp_path / "new.csv", index=False)
    res = run(["evaluate", risk_model, str(tmp_path / "new.csv"), "--id", "pid", "--operating-points",
               "0.3,sens=0.9,spec=0.95", "--bootstrap", "200", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["operating_points"]
    assert [r["target"] for r in rows] == [None, "sensitivity >= 0.9", "specificity >= 0.95"]
    assert rows[1]["sensitivity"] >= 0.9 and rows[2]["specificity"] >= 0.95
    assert rows[1]["threshold_ci"][0] <= rows[1]["threshold"] <= rows[1]["threshold_ci"][1]
    table = run(["evaluate", risk_model, str(tmp_path / "new.csv"), "--id", "pid", "--operating-points",
                 "sens=0.9"]).output
    assert "(sensitivity >= 0.9)" in table and "chosen on these rows" in table
    for bad in ("sens=1.5", "ppv=0.9", "sens=x"):
        assert_clean_error(run(["evaluate", risk_model, str(tmp_path / "new.csv"), "--id", "pid",
                                "--operating-points", bad]), "--operating-points", "sens=", code=2)


def test_a_cohort_of_one_class_has_no_target_threshold_and_says_what_its_balanced_accuracy_is(risk_model, tmp_path):
    """Controls alone: "sensitivity >= 0.9" chose a threshold (0.456) and gave figures at it, and the balanced accuracy
    (their specificity) stood as the main metric without a word."""
    table = _cohort(700, 2)
    table[table["label"] == "none"].to_csv(tmp_path / "controls.csv", index=False)
    res = run(["evaluate", risk_model, str(tmp_path / "controls.csv"), "--id", "pid", "--operating-points",
               "0.3,sens=0.9,spec=0.9", "--bootstrap", "100", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    sens, spec = doc["operating_points"][1], doc["operating_points"][2]
    assert sens["threshold"] is None and sens["called"] is None and sens["specificity"] is None, sens
    assert spec["threshold"] is not None and spec["specificity"] >= 0.9  # non-events there: a threshold exists
    assert any("the balanced accuracy is 'none''s recall alone (specificity)" in n for n in doc["notes"]), doc["notes"]
    res = run(["evaluate", risk_model, str(tmp_path / "controls.csv"), "--id", "pid", "--operating-points", "sens=0.9"])
    assert res.exit_code == 0 and "nan" not in res.output and "— (sensitivity >= 0.9)" in res.output, res.output
    at = metrics.at_target(np.zeros(5), np.linspace(0.1, 0.9, 5), "sensitivity", 0.9)
    assert all(np.isnan(v[0]) for v in at.values())
