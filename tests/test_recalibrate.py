"""`mlpcli recalibrate`: a model's probabilities updated for a new population on a labelled cohort of it — the
intercept update (recalibration in the large), logistic recalibration, the closed test that chooses between them —
and the recalibrated model in predict, evaluate, explain and info."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pandas as pd
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
    config = run(["info", str(new), "--config-out", "-"]).output
    assert "# then recalibrated on site.csv" in config and "--method auto" in config


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
    for task in ("multiclass", "binary", "multilabel"):
        data = tmp_path / f"{task}.csv"
        make_table(task, n_patients=30, seed=2).to_csv(data, index=False)
        path = tmp_path / f"{task}.mlp"
        target = ["--target", "lab0,lab1,lab2"] if task == "multilabel" else []
        res = run(["train", str(data), "-o", str(path), "--hidden", "8", "--folds", "2", "--dtype", "float64",
                   "--epochs", "20", "-q", *target])
        assert res.exit_code == 0, res.output
        model = model_io.load(str(path))
        k = 2 if task == "binary" else 3
        if task == "multilabel":
            model.recalibration = recal.Recalibration("per label", np.array([0.7, -0.4, 0.0]),
                                                      np.array([0.6, 1.0, 1.0]), labels=["logistic", "intercept", "none"])
        else:
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
                           (lambda m: m["recalibration"]["fit"].update(p_overall="x"), "recalibration.fit.p_overall"),
                           (lambda m: m["recalibration"]["cohort"].update(sha256=12345),
                            "recalibration.cohort.sha256"),
                           (lambda m: m["recalibration"]["cohort"].update(data=5), "recalibration.cohort.data"),
                           (lambda m: m.update(format_version=13), "needs model format version")):
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
                       "already recalibrated on site.csv", code=1)
    # tasks without one set of class probabilities
    make_table("regression", n_patients=20).to_csv(tmp_path / "regression.csv", index=False)
    model = tmp_path / "regression.mlp"
    assert run(["train", str(tmp_path / "regression.csv"), "--epochs", "3", "-q", "-o", str(model)]).exit_code == 0
    assert_clean_error(run(["recalibrate", str(model), str(tmp_path / "regression.csv"), "-o", str(out)]),
                       "regression", code=1)
    # labels the model does not know, and no label column: recalibrate's advice, not evaluate's
    odd = _cohort(300, 5)
    odd.loc[:4, "label"] = "other"
    odd.to_csv(tmp_path / "odd.csv", index=False)
    res = run(["recalibrate", m5, str(tmp_path / "odd.csv"), "--id", "pid", "-o", str(out)])
    assert_clean_error(res, "'other'", "leave rows of other labels out", code=1)
    assert "--novel-labels" not in res.output
    odd.drop(columns="label").to_csv(tmp_path / "unlabelled.csv", index=False)
    res = run(["recalibrate", m5, str(tmp_path / "unlabelled.csv"), "--id", "pid", "-o", str(out)])
    assert_clean_error(res, "recalibration fits the model to the true labels", code=1)
    assert not os.path.exists(tmp_path / "twice.mlp")


def test_classes_the_probabilities_separate_get_no_slope_only_an_intercept():
    """A finite slope where the classes are separated is an accident of where the optimiser stopped (17 on the sample
    data's training table raised the test cohort's log loss from 0.37 to 2.66)."""
    rng = np.random.default_rng(4)
    for gap in (0.0, 0.05, 0.2):
        p = rng.uniform(0.01, 0.99, 600)
        p = p[np.abs(p - 0.5) >= gap / 2]
        y = (p > 0.5).astype(int)
        fitted = recal.fit(p[:, None], y, "sigmoid")
        assert fitted.separated and fitted.logistic_slope is None, gap
        kept, a, b, test = recal.choose(fitted, "auto")
        assert kept in ("none", "intercept") and b == 1.0 and test["df_overall"] == 1 and test["p_slope"] is None
        with pytest.raises(ValueError, match="separate"):
            recal.choose(fitted, "logistic")
    # a few samples well on the wrong side: a finite slope again
    for q in (0.9, 0.8, 0.7):
        y[np.argmin(np.abs(p - q))] = 0
    assert not recal.fit(p[:, None], y, "sigmoid").separated


def test_recalibrating_on_training_rows_is_a_warning_and_evaluating_on_the_cohort_too(binary_runs, tmp_path):
    m5, dev = str(binary_runs / "m5.mlp"), str(binary_runs / "dev.csv")
    res = run(["recalibrate", m5, dev, "--id", "pid", "-o", str(tmp_path / "own.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    assert any("rows the model was trained on" in w for w in json.loads(res.stdout)["warnings"])
    site = binary_runs / "site.csv"
    assert run(["recalibrate", m5, str(site), "--id", "pid", "-o", str(tmp_path / "r.mlp"), "-q"]).exit_code == 0
    same = json.loads(run(["evaluate", str(tmp_path / "r.mlp"), str(site), "--id", "pid", "--json"]).stdout)
    assert any("samples are rows of site.csv, the table the model was recalibrated on: its calibration" in w
               for w in same["warnings"])
    other = json.loads(run(["evaluate", str(tmp_path / "r.mlp"), str(binary_runs / "site_more.csv"), "--id", "pid",
                            "--json"]).stdout)
    assert not any("recalibrated on" in w for w in other["warnings"])


def _baked(model, rc):
    """A one-network model whose last layer holds the update (softmax(s z + a) of its logits z, s = slope / T; a
    multi-label model's sigmoid(s_j z_j + a_j) per label): the same probabilities with no temperature or
    recalibration left to apply."""
    import copy

    baked = copy.deepcopy(model)
    net = baked.members[0].network
    params = net.parameters()
    last = max(k.split(".")[0] for k in params if k.startswith("dense"))
    T = 1.0 if model.temperature is None else np.asarray(model.temperature, dtype=np.float64)
    s = np.asarray(rc.slope, dtype=np.float64) / T
    a = rc.intercept if net.n_outputs > 1 or rc.labels is not None else rc.intercept[1:]
    if np.ndim(s) == 1:
        s = s[:, None] if params[f"{last}.W"].ndim == 2 else s
    params[f"{last}.W"][...] *= s
    params[f"{last}.b"][...] = np.ravel(s) * params[f"{last}.b"] + a if np.ndim(s) else s * params[f"{last}.b"] + a
    baked.temperature, baked.recalibration = None, None
    return baked


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_permutation_importance_scores_the_recalibrated_probabilities(tmp_path, task):
    from mlpcli.explain import permutation_importance

    data = tmp_path / "t.csv"
    make_table(task, n_patients=40, seed=5, signal=1.0).to_csv(data, index=False)
    target = ["--target", "lab0,lab1,lab2"] if task == "multilabel" else []
    assert run(["train", str(data), "-o", str(tmp_path / "m.mlp"), "--hidden", "8", "--folds", "1", "--dtype",
                "float64", "--epochs", "30", "-q", *target]).exit_code == 0
    model = model_io.load(str(tmp_path / "m.mlp"))
    k = 2 if task == "binary" else 3
    if task == "multilabel":
        model.recalibration = recal.Recalibration("per label", np.array([0.9, 0.0, -0.5]), np.array([0.7, 1.0, 1.0]),
                                                  labels=["logistic", "none", "intercept"])
    else:
        model.recalibration = recal.Recalibration("logistic", np.r_[0.0, np.linspace(1.2, -0.8, k - 1)], 0.7)
    baked = _baked(model, model.recalibration)
    samples = load_samples(model, str(data))
    np.testing.assert_allclose(model.predict_output(samples.X), baked.predict_output(samples.X), rtol=1e-9, atol=1e-12)
    for scoring in ("log_loss", "balanced_accuracy"):
        drops, _ = permutation_importance(model, samples.X, samples.y, repeats=2, scoring=scoring)
        expected, _ = permutation_importance(baked, samples.X, samples.y, repeats=2, scoring=scoring)
        np.testing.assert_allclose(drops, expected, rtol=1e-7, atol=1e-9)


def _labels_cohort(n, seed, shift=0.0):
    """Three labels of their own genes; ``shift`` moves the first label's log-odds (another baseline there)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    d = pd.DataFrame(X, columns=[f"g{j}" for j in range(10)])
    d.insert(0, "pid", [f"s{seed}_{i}" for i in range(n)])
    for j, (w, b) in enumerate([(1.5, -0.5), (1.2, 0.0), (1.0, -1.0)]):
        z = b + w * X[:, j] + (shift if j == 0 else 0.0)
        d[f"lab{j}"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return d


LABELS = ["--id", "pid", "--target", "lab0,lab1,lab2"]


@pytest.fixture(scope="module")
def labels_model(tmp_path_factory):
    """A multi-label model of ``_labels_cohort(800, 1)``: the two tests below trained this very model each (the
    same table, options and seed give the same file), and neither changes it (recalibrate writes a new one)."""
    tmp = tmp_path_factory.mktemp("labels")
    _labels_cohort(800, 1).to_csv(tmp / "dev.csv", index=False)
    assert run(["train", str(tmp / "dev.csv"), *LABELS, "--hidden", "16", "-q", "-o", str(tmp / "m.mlp")]).exit_code == 0
    return tmp / "m.mlp"


def test_a_multi_label_model_is_updated_label_by_label(tmp_path, labels_model):
    _labels_cohort(1200, 2, shift=-1.2).to_csv(tmp_path / "site.csv", index=False)
    _labels_cohort(2000, 3, shift=-1.2).to_csv(tmp_path / "more.csv", index=False)
    roles = LABELS
    res = run(["recalibrate", str(labels_model), str(tmp_path / "site.csv"), *roles, "-o",
               str(tmp_path / "r.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["kept"] == "per label" and doc["figures"]["lab0"]["kept"] in ("intercept", "logistic")
    assert doc["figures"]["lab0"]["observed_expected_before"] < 0.75
    assert doc["figures"]["lab0"]["observed_expected_after"] == pytest.approx(1.0, abs=1e-4)
    before, after = model_io.load(str(labels_model)), model_io.load(str(tmp_path / "r.mlp"))
    rc = after.recalibration
    assert rc.labels[0] != "none" and len(rc.intercept) == len(rc.slope) == 3
    X = load_samples(before, str(tmp_path / "more.csv")).X
    np.testing.assert_allclose(after.predict_output(X), rc.apply(before.predict_output(X), "sigmoid"), rtol=1e-6,
                               atol=1e-9)
    untouched = [j for j, m in enumerate(rc.labels) if m == "none"]
    np.testing.assert_allclose(after.predict_output(X)[:, untouched], before.predict_output(X)[:, untouched],
                               rtol=1e-6, atol=1e-9)
    scored = [json.loads(run(["evaluate", str(path), str(tmp_path / "more.csv"), *roles, "--json"]).stdout)
              for path in (labels_model, tmp_path / "r.mlp")]
    loss = [{r["label"]: r["log_loss"] for r in s["metrics"]["per_label"]} for s in scored]
    assert loss[1]["lab0"] < loss[0]["lab0"] - 0.03
    assert "recalibrated" in run(["info", str(tmp_path / "r.mlp")]).output


def test_labels_the_table_cannot_test_are_an_error_and_chance_is_held_to_holms_levels(tmp_path, labels_model):
    roles = LABELS
    few = _labels_cohort(60, 4)
    for label in ("lab0", "lab1", "lab2"):
        few[label] = 0
    few.loc[:4, "lab0"] = 1
    few.to_csv(tmp_path / "few.csv", index=False)
    res = run(["recalibrate", str(labels_model), str(tmp_path / "few.csv"), *roles, "-o",
               str(tmp_path / "out.mlp")])
    assert_clean_error(res, "no label can be recalibrated", "'lab0' (5 positives of 60)", code=1)
    assert not (tmp_path / "out.mlp").exists()
    # outcomes drawn from the model's own probabilities: no label needs an update
    same = _labels_cohort(1500, 6)
    model = model_io.load(str(labels_model))
    P = model.predict_output(load_samples(model, same).X)
    rng = np.random.default_rng(6)
    for j in range(3):
        same[f"lab{j}"] = (rng.random(len(same)) < P[:, j]).astype(int)
    same.to_csv(tmp_path / "same.csv", index=False)
    res = run(["recalibrate", str(labels_model), str(tmp_path / "same.csv"), *roles, "-o",
               str(tmp_path / "same.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["kept"] == "none" and any("Holm's levels" in n for n in doc["notes"])
    # the smallest p-value was not below 0.05 / 3, so no label was updated, and the rest were not tested further
    assert [t["holm_level"] for t in doc["test"]["labels"].values()] == [0.0, 0.0, 0.0]


def test_the_sets_and_the_flag_are_not_calibrated_on_rows_the_model_was_trained_on(binary_runs, tmp_path):
    """A training row is its own nearest neighbour and its fit scores low: calibrated on them, the flag marked every new
    sample (55 of 55 in a review) and the sets covered 0.727 at 0.9. They are left out; with nothing else, the training
    calibration stays."""
    m5, dev, site = binary_runs / "m5.mlp", binary_runs / "dev.csv", binary_runs / "site.csv"
    trained = model_io.load(str(m5))
    res = run(["recalibrate", str(m5), str(dev), "--id", "pid", "-o", str(tmp_path / "own.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert any("keep the training calibration: every row of the table is one the model was trained on" in w
               for w in doc["warnings"]), doc["warnings"]
    own = model_io.load(str(tmp_path / "own.mlp"))
    assert own.conformal.source == trained.conformal.source != "cohort" and own.ood.cohort is None
    assert (own.ood.calibration == trained.ood.calibration).all()
    mixed = tmp_path / "mixed.csv"
    pd.concat([pd.read_csv(dev).iloc[:200], pd.read_csv(site).iloc[:300]]).to_csv(mixed, index=False)
    res = run(["recalibrate", str(m5), str(mixed), "--id", "pid", "-o", str(tmp_path / "mixed.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert any("calibrated on the 300 rows it has not seen" in w for w in doc["warnings"]), doc["warnings"]
    assert any("calibrated on this table's 300 samples it has not seen" in n for n in doc["notes"]), doc["notes"]
    mixed_model = model_io.load(str(tmp_path / "mixed.mlp"))
    assert mixed_model.conformal.source == "cohort" and mixed_model.conformal.n_rows == 300
    assert mixed_model.conformal.cohort["n"] == 300  # the rows the sets are calibrated on, not the table's 500
    assert len(mixed_model.ood.calibration) == 300 and mixed_model.ood.cohort["n"] == 300
    # the flag calibrated on the site's own 300: the site's other samples are flagged near the level, not all
    res = run(["predict", str(tmp_path / "mixed.mlp"), str(binary_runs / "site_more.csv"), "--id", "pid", "--ood",
               "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    flagged = pd.read_csv(tmp_path / "p.csv")["ood"].mean()
    assert flagged < 0.05, flagged


def test_evaluate_on_its_own_recalibration_table_does_not_also_advise_recalibrating_there(binary_runs, tmp_path):
    """The update kept (here the intercept alone, forced) is judged on the table it was fitted on: the in-sample
    warning, not "risks too moderate on this table ... recalibrate on this population", which other samples of the
    site still get."""
    m5 = binary_runs / "m5.mlp"
    for name, seed in (("weak.csv", 11), ("weak_more.csv", 12)):
        table = _cohort(1500, seed)
        table[["prot0", "prot1", "prot2"]] *= 0.3  # a weaker spread there: the model's risks too moderate
        table.to_csv(tmp_path / name, index=False)
    res = run(["recalibrate", str(m5), str(tmp_path / "weak.csv"), "--id", "pid", "--method", "intercept",
               "-o", str(tmp_path / "w.mlp"), "-q"])
    assert res.exit_code == 0, res.output
    own = json.loads(run(["evaluate", str(tmp_path / "w.mlp"), str(tmp_path / "weak.csv"), "--id", "pid",
                          "--json"]).stdout)
    other = json.loads(run(["evaluate", str(tmp_path / "w.mlp"), str(tmp_path / "weak_more.csv"), "--id", "pid",
                            "--json"]).stdout)
    assert any("systematically too moderate" in w for w in other["warnings"]), other["warnings"]
    assert not any("systematically too" in w or "recalibrate on this population" in w.lower() for w in own["warnings"])
    assert any("the table the model was recalibrated on" in w for w in own["warnings"]), own["warnings"]
    # info marks the stored held-out figures as the trained model's (a review read them as the recalibrated one's)
    shown = " ".join(run(["info", str(tmp_path / "w.mlp")], env={"COLUMNS": "400"}).output.split())
    assert "of the model as trained, before its recalibration on weak.csv" in shown
    assert "before its recalibration" not in " ".join(run(["info", str(m5)], env={"COLUMNS": "400"}).output.split())


def test_training_rows_and_recalibration_rows_are_both_left_out_of_the_figures_on_new_samples(binary_runs, tmp_path):
    """Training rows mixed with the recalibration table's: each warning's "other samples alone" was the other
    in-sample set (a review: neither figure was of a single new sample)."""
    m5, dev, site, more = (binary_runs / "m5.mlp", binary_runs / "dev.csv", binary_runs / "site.csv",
                           binary_runs / "site_more.csv")
    assert run(["recalibrate", str(m5), str(site), "--id", "pid", "-o", str(tmp_path / "r.mlp"), "-q"]).exit_code == 0
    parts = [pd.read_csv(dev).iloc[:100], pd.read_csv(site).iloc[:200], pd.read_csv(more).iloc[:150]]
    pd.concat(parts).to_csv(tmp_path / "mixed.csv", index=False)
    doc = json.loads(run(["evaluate", str(tmp_path / "r.mlp"), str(tmp_path / "mixed.csv"), "--id", "pid",
                          "--json"]).stdout)
    assert doc["seen_in_training"] == 100 and doc["cohort_rows_seen"] == 200
    assert doc["unseen_metrics"]["n"] == 150 and doc["cohort_other_metrics"]["n"] == 150
    parts[2].to_csv(tmp_path / "new.csv", index=False)
    alone = json.loads(run(["evaluate", str(tmp_path / "r.mlp"), str(tmp_path / "new.csv"), "--id", "pid",
                            "--json"]).stdout)["metrics"]
    assert doc["cohort_other_metrics"]["log_loss"] == pytest.approx(alone["log_loss"], rel=1e-9)
    pd.concat(parts[:2]).to_csv(tmp_path / "old.csv", index=False)
    doc = json.loads(run(["evaluate", str(tmp_path / "r.mlp"), str(tmp_path / "old.csv"), "--id", "pid",
                          "--json"]).stdout)
    assert doc["unseen_metrics"] is None and doc["cohort_other_metrics"] is None
    assert sum("no sample here is new to the model" in w for w in doc["warnings"]) == 2, doc["warnings"]


def test_recalibrate_s_shift_warning_names_predict_s_report_not_an_option_it_lacks(site_model, tmp_path):
    """recalibrate has no --shift-report: its cohort-shift warning told users to add one ("No such option");
    it names predict's, which writes every feature's figures."""
    res = run(["recalibrate", str(site_model / "m.mlp"), str(site_model / "shifted.csv"), "-o", str(tmp_path / "r.mlp")])
    shift = [line for line in res.output.splitlines() if "cohort shift" in line]
    assert shift and "mlpcli predict MODEL DATA --shift-report FILE for every feature" in " ".join(res.output.split())
    assert "(--shift-report for every feature)" not in " ".join(res.output.split())
    res = run(["predict", str(site_model / "m.mlp"), str(site_model / "shifted.csv"), "-o", str(tmp_path / "p.csv")])
    assert "(--shift-report for every feature)" in " ".join(res.output.split())
