"""`cv` reports a linear baseline on the same folds: logistic regression (ridge for regression) fitted on each
fold's training part with the run's own preprocessing, scored on the same test part."""

import json
from dataclasses import replace

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from mlpcli import data, metrics
from mlpcli.config import TrainOptions
from mlpcli.model_selection import cross_validation as cv
from mlpcli.model_selection import splits
from mlpcli.model_selection.baseline import LINEAR_BASELINE, fit_linear_baseline, linear_baseline
from tables import make_table, write_table
from cli_helpers import run

OPTIONS = TrainOptions(hidden=[8], epochs=5, patience=4, folds=1)
FAST = ["--hidden", "8", "--epochs", "5", "--patience", "4", "--member-folds", "1", "--quiet"]


def dataset(task="multiclass", **kw):
    df = make_table(task, **kw)
    target = "lab0,lab1,lab2" if task == "multilabel" else "label"
    roles, _ = data.resolve_roles(df.columns, target=target)
    return data.Dataset.from_frame(df, roles)


def _parts(ds):
    fold = splits.kfold(ds, 4, seed=0)[0][0]
    return fold, ds.subset(fold.train), ds.subset(fold.test)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_the_baseline_is_scikit_learns_logistic_regression_on_the_folds_own_preprocessing(task):
    ds = dataset(task, n_patients=30)
    _, train, test = _parts(ds)
    options = TrainOptions(log1p=False, scaling="standard")
    # by hand: the preprocessing fitted on the training part alone, then scikit-learn's default logistic regression
    pre = data.Preprocessor(data.PreprocessConfig(log1p=False, scaling="standard"))
    Z_train = pre.fit_transform(train.X, train.feature_names, dtype="float32", order="C")
    Z_test = pre.transform(test.X, dtype="float32", order="C")
    expected = LogisticRegression(C=1.0, max_iter=1000).fit(Z_train, train.y).predict_proba(Z_test)

    fitted, warnings = fit_linear_baseline(train, options)
    np.testing.assert_allclose(fitted.predict_output(test.X), expected, rtol=1e-6, atol=1e-9)
    assert warnings == []
    score = linear_baseline(train, test, options)
    m = metrics.compute(task, test.y, metrics.as_task_proba(task, expected), list(ds.classes))
    assert score.score == pytest.approx(m["balanced_accuracy"])
    assert score.model == LINEAR_BASELINE[task]


def test_the_baseline_never_sees_the_test_part():
    ds = dataset("multiclass", n_patients=30)
    fold, train, test = _parts(ds)
    X = np.array(ds.X, dtype=np.float64)
    X[fold.test] = X[fold.test][::-1] * 100.0  # the test rows' values change, the training rows' do not
    ruined = replace(ds, X=X)
    a = fit_linear_baseline(train, OPTIONS)[0].models[0]
    b = fit_linear_baseline(ruined.subset(fold.train), OPTIONS)[0].models[0]
    np.testing.assert_array_equal(a.coef_, b.coef_)  # its coefficients come from the training rows alone
    assert linear_baseline(ruined.subset(fold.train), ruined.subset(fold.test), OPTIONS).score != \
        linear_baseline(train, test, OPTIONS).score  # while the test rows' predictions follow the test rows


def test_class_weights_of_the_run_weight_the_baseline_too():
    df = make_table("binary", n_patients=40, signal=0.6)
    df = df[~((df["label"] == "case") & (df.index % 4 != 0))].reset_index(drop=True)  # cases rare
    roles, _ = data.resolve_roles(df.columns, target="label")
    ds = data.Dataset.from_frame(df, roles)
    case = list(ds.classes).index("case")
    plain = fit_linear_baseline(ds, OPTIONS)[0].predict_output(ds.X)[:, case].mean()
    balanced = fit_linear_baseline(ds, TrainOptions(hidden=[8], class_weight="balanced"))[0].predict_output(ds.X)[:, case].mean()
    assert balanced > plain + 0.05  # the rare class's probability rises as it does for the network


def test_regression_baseline_is_ridge_and_multilabel_keeps_a_constant_label():
    ds = dataset("regression", n_patients=30)
    _, train, test = _parts(ds)
    options = TrainOptions(log1p=False, scaling="standard")
    pre = data.Preprocessor(data.PreprocessConfig(log1p=False, scaling="standard"))
    Z = pre.fit_transform(train.X, train.feature_names, dtype="float32", order="C")
    expected = Ridge(alpha=1.0).fit(Z, train.y[:, 0]).predict(pre.transform(test.X, dtype="float32", order="C"))
    out = fit_linear_baseline(train, options)[0].predict_output(test.X)
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-5)
    assert linear_baseline(train, test, options).model == LINEAR_BASELINE["regression"]

    ml = dataset("multilabel", n_patients=30)
    ml.y[:, 1] = 1.0  # a label every training sample carries
    out = fit_linear_baseline(ml, TrainOptions(log1p=False))[0].predict_output(ml.X)
    assert out.shape == (ml.n_samples, 3) and np.all(out[:, 1] == 1.0)
    assert np.all((out[:, 0] > 0) & (out[:, 0] < 1))


def test_a_class_missing_from_the_training_part_gets_probability_zero():
    ds = dataset("multiclass", n_patients=30)
    train = ds.subset(np.flatnonzero(ds.y != 2))
    out = fit_linear_baseline(train, OPTIONS)[0].predict_output(ds.X)
    assert out.shape == (ds.n_samples, 3) and np.all(out[:, 2] == 0)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_cross_validate_compares_fold_by_fold():
    ds = dataset("multiclass", n_patients=24)
    result = cv.cross_validate(ds, OPTIONS, folds=3, baseline=True)
    base = result.baseline_summary()
    diffs = [f.score - f.baseline.score for f in result.folds]
    assert base["difference"]["mean"] == pytest.approx(np.mean(diffs))
    assert base["difference"]["better"] == sum(d > 0 for d in diffs)
    assert base["difference"]["worse"] == sum(d < 0 for d in diffs)
    assert base["summary"]["balanced_accuracy"]["mean"] == pytest.approx(np.mean([f.baseline.score for f in result.folds]))
    doc = result.to_dict()
    assert doc["baseline"]["model"] == LINEAR_BASELINE["multiclass"]
    assert all("baseline" in f for f in doc["per_fold"])
    assert cv.cross_validate(ds, OPTIONS, folds=3).baseline_summary() is None  # off by default in the library


def test_lower_is_better_metrics_count_folds_the_right_way():
    ds = dataset("regression", n_patients=24)
    result = cv.cross_validate(ds, OPTIONS, folds=3, baseline=True)
    assert result.metric == "rmse" and not result.higher_is_better
    diffs = [f.score - f.baseline.score for f in result.folds]
    assert result.baseline_summary()["difference"]["better"] == sum(d < 0 for d in diffs)


def test_cli_reports_the_baseline_by_default_and_not_with_no_baseline(tmp_path):
    path = write_table(tmp_path, n_patients=24)
    out = run(["cv", path, "--folds", "3", *FAST])
    assert out.exit_code == 0, out.output
    assert "linear bal. acc." in out.output
    assert "linear baseline, logistic regression (multinomial, L2, C=1), on the same folds" in out.output
    assert "mlpcli minus it: " in out.output and " of 3, worse in " in out.output

    doc = json.loads(run(["cv", path, "--folds", "3", *FAST, "--json"]).stdout)
    assert set(doc["baseline"]) == {"model", "summary", "difference"}
    assert doc["baseline"]["difference"]["folds"] == 3

    off = run(["cv", path, "--folds", "3", *FAST, "--no-baseline"])
    assert off.exit_code == 0 and "linear" not in off.output
    assert "baseline" not in json.loads(run(["cv", path, "--folds", "3", *FAST, "--no-baseline", "--json"]).stdout)
