"""`mlpcli recalibrate`: a model's probabilities updated for a new population on a labelled cohort of it — the
intercept update (recalibration in the large), logistic recalibration, the closed test that chooses between them —
and the recalibrated model in predict, evaluate, explain and info."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from cli_helpers import assert_clean_error, run
from mlpcli import metrics, model_io
from mlpcli import recalibration as recal
from mlpcli.errors import ModelFileError
from mlpcli.explain import integrated_gradients, load_samples
from tables import make_table
from test_risk_calibration import _cohort


def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def test_binary_fits_are_the_calibration_intercept_and_slope_evaluate_reports():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 3000)
    p = 1 / (1 + np.exp(-z))
    y = (rng.random(3000) < 1 / (1 + np.exp(-(0.5 + 0.7 * z)))).astype(int)
    fitted = recal.fit(p[:, None], y, "sigmoid")
    reference = metrics.logistic_recalibration(y, p)
    assert fitted.intercept[1] == pytest.approx(reference["intercept"][0], abs=1e-6)
    assert fitted.logistic_slope == pytest.approx(reference["slope"][0], abs=1e-6)
    assert fitted.logistic_intercept[0] == 0 and 0.35 < fitted.logistic_intercept[1] < 0.65
    kept, a, b, test = recal.choose(fitted, "auto")
    assert kept == "logistic" and b == fitted.logistic_slope and test["p_slope"] < 0.001
    # the update brings the mean risk to the event rate (the intercept's score equation), and undo takes it back
    update = recal.Recalibration(kept, a, b)
    q = update.apply(p[:, None], "sigmoid")
    assert q.shape == (3000, 1) and q.mean() == pytest.approx(y.mean(), abs=1e-6)
    np.testing.assert_allclose(update.undo(q, "sigmoid"), p[:, None], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("truth, expected", [((0.0, 1.0), "none"), ((0.8, 1.0), "intercept"), ((0.0, 0.5), "logistic")])
def test_the_closed_test_keeps_the_simplest_update_the_cohort_does_not_reject(truth, expected):
    """Classes drawn from softmax(b log P + a) of given probabilities P: no update, an intercept, a slope."""
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(4) * 0.7, 4000)
    shift, slope = truth
    a = np.array([0.0, shift, -shift, 0.5 * shift])
    Q = _softmax(slope * np.log(P) + a)
    y = (Q.cumsum(axis=1) > rng.random((4000, 1))).argmax(axis=1)
    fitted = recal.fit(P, y, "softmax")
    kept, intercept, b, test = recal.choose(fitted, "auto")
    assert kept == expected, test
    if expected != "none":
        np.testing.assert_allclose(intercept, a, atol=0.15)
        assert b == pytest.approx(slope, abs=0.08)
    assert fitted.log_loss_logistic <= fitted.log_loss_intercept <= fitted.log_loss_none + 1e-12
    # a method given is kept whatever the test says
    assert recal.choose(fitted, "logistic")[0] == "logistic" and recal.choose(fitted, "intercept")[2] == 1.0


def test_a_model_that_ranks_the_cohort_backwards_is_refused():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, 500)
    y = (rng.random(500) > p).astype(int)  # the outcome against the risks
    with pytest.raises(ValueError, match="no better than chance"):
        recal.fit(p[:, None], y, "sigmoid")


@pytest.fixture(scope="module")
def binary_runs(tmp_path_factory):
    """A binary model trained on one population, and labelled cohorts of another with a lower baseline risk."""
    tmp = tmp_path_factory.mktemp("recal")
    _cohort(500, 1).to_csv(tmp / "dev.csv", index=False)
    _cohort(1500, 2, shift=-0.9).to_csv(tmp / "site.csv", index=False)
    _cohort(1500, 3, shift=-0.9).to_csv(tmp / "site_more.csv", index=False)
    for folds in ("5", "1"):
        res = run(["train", str(tmp / "dev.csv"), "--id", "pid", "--positive", "event", "--hidden", "16", "--folds",
                   folds, "-q", "-o", str(tmp / f"m{folds}.mlp")])
        assert res.exit_code == 0, res.output
    return tmp


@pytest.mark.parametrize("folds", ["5", "1"])
def test_a_recalibrated_model_predicts_the_update_of_the_original_and_fits_the_new_population(binary_runs, folds):
    tmp = binary_runs
    original, new = tmp / f"m{folds}.mlp", tmp / f"m{folds}_site.mlp"
    res = run(["recalibrate", str(original), str(tmp / "site.csv"), "--id", "pid", "-o", str(new), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["kept"] in ("intercept", "logistic") and doc["test"]["p_overall"] < 0.001
    assert doc["figures"]["none"]["observed_expected"] < 0.8
    assert doc["figures"][doc["kept"]]["observed_expected"] == pytest.approx(1.0, abs=1e-4)
    assert doc["cohort"]["n"] == 1500 and doc["cohort"]["class_counts"]["event"] + doc["cohort"]["class_counts"]["none"] == 1500
    before, after = model_io.load(str(original)), model_io.load(str(new))
    assert before.recalibration is None and after.recalibration.method == doc["kept"]
    X = load_samples(before, str(tmp / "site_more.csv")).X
    np.testing.assert_allclose(after.predict_output(X), after.recalibration.apply(before.predict_output(X), "sigmoid"),
                               rtol=1e-6, atol=1e-9)
    # the balanced rule now calls 'event' at the site's share of events
    share = doc["cohort"]["class_counts"]["event"] / 1500
    assert after.decision.threshold("binary") == pytest.approx(share) or after.decision.rule == "argmax"
    # on other samples of the site: the risks hold there, where the original's were too high
    scored = {}
    for name, path in (("before", original), ("after", new)):
        res = run(["evaluate", str(path), str(tmp / "site_more.csv"), "--id", "pid", "--json"])
        assert res.exit_code == 0, res.output
        scored[name] = json.loads(res.stdout)
    assert scored["before"]["metrics"]["observed_expected"] < 0.8
    assert 0.85 < scored["after"]["metrics"]["observed_expected"] < 1.15
    assert scored["after"]["metrics"]["log_loss"] < scored["before"]["metrics"]["log_loss"]
    assert not [w for w in scored["after"]["warnings"] if "systematically" in w]
    assert scored["after"]["calibration"]["recalibration"]["method"] == doc["kept"]
    # evaluate's "before" undoes both the update and the temperature: the original network's own log loss
    assert scored["after"]["calibration"]["log_loss_before"] == pytest.approx(
        scored["before"]["calibration"]["log_loss_before"], rel=1e-6)
    info = run(["info", str(new)]).output
    assert "recalibrated" in info and "site.csv" in info


def test_a_cohort_like_the_training_population_keeps_the_model_as_it_is(binary_runs, tmp_path):
    """Outcomes drawn from the model's own risks: a population it fits as it is."""
    cohort = _cohort(800, 7)
    model = model_io.load(str(binary_runs / "m5.mlp"))
    risk = model.predict_output(load_samples(model, cohort).X)[:, 0]
    cohort["label"] = np.where(np.random.default_rng(7).random(800) < risk, "event", "none")
    cohort.to_csv(tmp_path / "same.csv", index=False)
    res = run(["recalibrate", str(binary_runs / "m5.mlp"), str(tmp_path / "same.csv"), "--id", "pid", "-o",
               str(tmp_path / "same.mlp")])
    assert res.exit_code == 0, res.output
    assert "kept: no update" in res.output
    model = model_io.load(str(tmp_path / "same.mlp"))
    assert model.recalibration is None
    # a method given fits it anyway
    res = run(["recalibrate", str(binary_runs / "m5.mlp"), str(tmp_path / "same.csv"), "--id", "pid", "--method",
               "intercept", "-o", str(tmp_path / "forced.mlp")])
    assert res.exit_code == 0 and model_io.load(str(tmp_path / "forced.mlp")).recalibration.slope == 1.0


def test_explain_attributions_sum_to_the_recalibrated_probability(tmp_path):
    for task in ("multiclass", "binary"):
        data = tmp_path / f"{task}.csv"
        make_table(task, n_patients=30, seed=2).to_csv(data, index=False)
        path = tmp_path / f"{task}.mlp"
        res = run(["train", str(data), "-o", str(path), "--hidden", "8", "--folds", "2", "--dtype", "float64",
                   "--epochs", "20", "-q"])
        assert res.exit_code == 0, res.output
        model = model_io.load(str(path))
        k = 2 if task == "binary" else 3
        model.recalibration = recal.Recalibration("logistic", np.r_[0.0, np.linspace(0.7, -0.4, k - 1)], 0.6)
        X = load_samples(model, str(data)).X
        A, gap = integrated_gradients(model, X, output="prob", return_gap=True)
        assert gap.max() < 1e-3, (task, gap.max())


def test_a_recalibrated_model_file_round_trips_and_its_fields_are_checked(binary_runs, tmp_path):
    path = binary_runs / "m5_site.mlp"
    if not path.exists():
        assert run(["recalibrate", str(binary_runs / "m5.mlp"), str(binary_runs / "site.csv"), "--id", "pid", "-o",
                    str(path), "-q"]).exit_code == 0
    model = model_io.load(str(path))
    again = tmp_path / "again.mlp"
    model_io.save(model, str(again))
    assert model_io.load(str(again)).recalibration.to_dict() == model.recalibration.to_dict()

    def tampered(change):
        with zipfile.ZipFile(path) as zf:
            items = {name: zf.read(name) for name in zf.namelist()}
        meta = json.loads(items["model.json"])
        change(meta)
        items["model.json"] = json.dumps(meta).encode()
        out = tmp_path / "tampered.mlp"
        with zipfile.ZipFile(out, "w") as zf:
            for name, data in items.items():
                zf.writestr(name, data)
        return str(out)

    for change, needle in ((lambda m: m["recalibration"].update(slope=-0.5), "recalibration.slope"),
                           (lambda m: m["recalibration"].update(intercept=[0.0]), "recalibration.intercept"),
                           (lambda m: m["recalibration"].update(method="isotonic"), "recalibration.method"),
                           (lambda m: m.update(format_version=13), "format version 14")):
        with pytest.raises(ModelFileError, match=needle.replace(".", r"\.")):
            model_io.load(tampered(change))


def test_recalibrate_refuses_what_it_cannot_update(binary_runs, tmp_path):
    m5 = str(binary_runs / "m5.mlp")
    site = str(binary_runs / "site.csv")
    out = tmp_path / "out.mlp"
    # too few of a class: a handful of events
    small = _cohort(200, 9, shift=-3.0)
    small.to_csv(tmp_path / "few.csv", index=False)
    assert (small["label"] == "event").sum() < 10
    assert_clean_error(run(["recalibrate", m5, str(tmp_path / "few.csv"), "--id", "pid", "-o", str(out)]),
                       "few.csv", "'event'", "at least 10", code=1)
    assert not out.exists()
    # the model itself as the output, no output, a bad level
    assert_clean_error(run(["recalibrate", m5, site, "--id", "pid", "-o", m5]), "--out", code=2)
    assert run(["recalibrate", m5, site, "--id", "pid"]).exit_code == 2
    assert run(["recalibrate", m5, site, "--id", "pid", "--alpha", "1.5", "-o", str(out)]).exit_code == 2
    # an update on top of another
    assert run(["recalibrate", m5, site, "--id", "pid", "-o", str(out), "-q"]).exit_code == 0
    assert_clean_error(run(["recalibrate", str(out), site, "--id", "pid", "-o", str(tmp_path / "twice.mlp")]),
                       "already recalibrated on site.csv", code=2)
    # tasks without one set of class probabilities
    for task, target in (("regression", []), ("multilabel", ["--target", "lab0,lab1,lab2"])):
        make_table(task, n_patients=20).to_csv(tmp_path / f"{task}.csv", index=False)
        model = tmp_path / f"{task}.mlp"
        res = run(["train", str(tmp_path / f"{task}.csv"), "--epochs", "3", "-q", "-o", str(model), *target])
        assert res.exit_code == 0, res.output
        assert_clean_error(run(["recalibrate", str(model), str(tmp_path / f"{task}.csv"), "-o", str(out), *target]),
                           task, code=2)
    assert not os.path.exists(tmp_path / "twice.mlp")
