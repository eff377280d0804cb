"""Review by use of model selection as a paper reports it: `cv`, `tune`, `diagnose --learning-curve` on small
tables with a known answer (patient-private signatures and a random label, a linear problem, a label confounded
with the batch), checked against scikit-learn computed by hand."""

import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

from mlpcli import data
from mlpcli.cli.cv import baseline_line
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError
from mlpcli.model_selection import cross_validation as cv
from mlpcli.model_selection.crossfit import fit_model
from mlpcli.model_selection.grid import parse_grid
from cli_helpers import assert_clean_error, run

FAST = ["--hidden", "8", "--epochs", "3", "--member-folds", "1"]


def private_signature(n_patients=24, samples=3, genes=8, seed=0) -> pd.DataFrame:
    """Each patient's samples share a private signature; the label is drawn per patient, independent of it."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        signature, label = rng.normal(0, 3, genes), ("case", "ctrl")[p % 2]
        for s in range(samples):
            rows.append({"sample_id": f"P{p:02d}_{s}", "patient_id": f"P{p:02d}", "label": label,
                         **{f"g{j}": signature[j] + rng.normal(0, 0.3) for j in range(genes)}})
    return pd.DataFrame(rows)


def confounded(seed=0) -> pd.DataFrame:
    """A label with no biology: the batch shifts the genes, and batch B1 is mostly cases, B2 mostly controls."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(40):
        label = ("ctrl", "case")[p % 2]
        batch = ("B1" if rng.random() < 0.9 else "B2") if label == "case" else ("B2" if rng.random() < 0.9 else "B1")
        for s in range(2):
            x = rng.normal(size=6) + (1.0 if batch == "B1" else 0.0)
            rows.append({"sample_id": f"P{p}_{s}", "patient_id": f"P{p}", "batch": batch, "label": label,
                         **{f"g{j}": x[j] for j in range(6)}})
    return pd.DataFrame(rows)


def dataset(df: pd.DataFrame) -> data.Dataset:
    roles, _ = data.resolve_roles(df.columns)
    return data.Dataset.from_frame(df, roles)


def test_folds_are_sklearns_patient_grouped_folds_and_the_oof_predictions_are_the_fold_models():
    ds = dataset(private_signature())
    options = TrainOptions(hidden=[8], epochs=3, folds=1, seed=3, log1p=False, scaling="standard")
    result = cv.cross_validate(ds, options, folds=3, repeats=2, baseline=True)
    # scikit-learn < 1.8 shuffles StratifiedGroupKFold's groups out of step with their counts (its PR #32540)
    fixed_shuffle = tuple(int(x) for x in sklearn.__version__.split(".")[:2]) >= (1, 8)
    for r in range(2):
        expected = StratifiedGroupKFold(3, shuffle=True, random_state=3 + r).split(ds.X, ds.y, ds.groups)
        for f, (_, test) in zip([f for f in result.folds if f.repeat == r], expected):
            if fixed_shuffle:
                assert np.array_equal(np.sort(f.test_rows), np.sort(test))
            train = np.setdiff1d(np.arange(ds.n_samples), f.test_rows)
            assert not set(ds.groups[train]) & set(ds.groups[f.test_rows])  # no patient on both sides
    fold = result.folds[4]  # repeat 2, fold 2: seeded seed + 1
    train = np.setdiff1d(np.arange(ds.n_samples), fold.test_rows)
    refitted = fit_model(ds.subset(train), cv.with_seed(options, fold.repeat), folds_flag="--member-folds")
    assert np.array_equal(refitted.model.predict_output(ds.subset(fold.test_rows).X), fold.proba)
    # the mean ± SD is over the 6 fold scores, and the paired difference is on the same folds
    scores = np.array([f.score for f in result.folds])
    linear = np.array([f.baseline.score for f in result.folds])
    summary, base = result.summary()["balanced_accuracy"], result.baseline_summary()
    assert summary["mean"] == pytest.approx(scores.mean()) and summary["sd"] == pytest.approx(scores.std(ddof=1))
    assert base["difference"]["mean"] == pytest.approx((scores - linear).mean())
    assert base["difference"]["sd"] == pytest.approx((scores - linear).std(ddof=1))
    assert base["difference"]["better"] == int(np.sum(scores > linear))
    # each fold's baseline is scikit-learn's logistic regression on the fold's own standardisation
    for f in result.folds:
        train = np.setdiff1d(np.arange(ds.n_samples), f.test_rows)
        scaler = StandardScaler().fit(ds.X[train])
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(ds.X[train]), ds.y[train])
        by_hand = balanced_accuracy_score(ds.y[f.test_rows], lr.predict(scaler.transform(ds.X[f.test_rows])))
        assert f.baseline.score == pytest.approx(by_hand)


def test_the_printed_mean_sd_and_difference_are_the_json_ones(tmp_path):
    path = tmp_path / "private.csv"
    private_signature().to_csv(path, index=False)
    args = ["cv", str(path), "--folds", "3", *FAST]
    doc = json.loads(run([*args, "--json", "--quiet"]).stdout)  # stdout holds the document alone
    printed = run([*args, "--quiet"]).stdout
    mean, sd = doc["summary"]["balanced_accuracy"]["mean"], doc["summary"]["balanced_accuracy"]["sd"]
    assert f"balanced accuracy: {mean:.3f} ± {sd:.3f} over 3 folds" in printed
    diff = doc["baseline"]["difference"]
    assert f"mlpcli minus it: {'+' if diff['mean'] >= 0 else '-'}{abs(diff['mean']):.3f} ± {diff['sd']:.3f}" in printed


def test_the_difference_to_the_baseline_shows_its_sd_to_the_means_decimals():
    # RMSE 25.72 ± 4.413 read as more precise than the mean beside it: every other mean ± SD is "25.72 ± 4.41"
    folds = [SimpleNamespace()] * 3
    linear = {"model": "ridge regression (alpha=1)", "summary": {"rmse": {"mean": 2.853, "sd": 0.575}},
              "difference": {"metric": "rmse", "mean": 25.7212, "sd": 4.41321, "folds": 3, "better": 0, "worse": 3}}
    line = baseline_line(linear, SimpleNamespace(metric="rmse", folds=folds))
    assert "mlpcli minus it: +25.72 ± 4.41 (better in 0 of 3, worse in 3)" in line


def test_val_size_left_without_effect_by_an_auto_ensemble_is_said(tmp_path):
    path = tmp_path / "private.csv"
    private_signature().to_csv(path, index=False)
    base = ["cv", str(path), "--folds", "3", "--hidden", "8", "--epochs", "2", "--val-size", "0.3", "--no-baseline"]
    doc = json.loads(run([*base, "--json", "--quiet"]).stdout)  # --member-folds auto: an ensemble per fold
    assert any("--val-size 0.3 had no effect" in n and "--member-folds" in n for n in doc["notes"]), doc["notes"]
    doc = json.loads(run([*base, "--member-folds", "1", "--json", "--quiet"]).stdout)  # one network reads it
    assert not any("--val-size" in n for n in doc["notes"])


@pytest.mark.parametrize("key, value", [("refit", "true"), ("calibrate", "false"), ("folds", "3")])
def test_learning_curve_refuses_in_a_config_file_what_it_refuses_as_a_flag(tmp_path, key, value):
    table, config = tmp_path / "private.csv", tmp_path / "run.toml"
    private_signature().to_csv(table, index=False)
    config.write_text(f"epochs = 2\n{key} = {value}\n")
    result = run(["diagnose", "--learning-curve", str(table), "--config", str(config), "--hidden", "8", "--quiet"])
    assert_clean_error(result, str(config), f"'{key}'", "--learning-curve", code=2)


def test_a_grid_missing_a_semicolon_says_so():
    with pytest.raises(ConfigError, match="separate options with ';'"):
        parse_grid("lr=1e-3,1e-2 l2=0,1e-4")
    assert len(parse_grid("class-weight=none|case=1,ctrl=3")["class_weight"]) == 2  # its values hold '=' themselves
    assert_clean_error(run(["tune", "x.csv", "--grid", "dropout=0,0.2, l2=0"]), "--grid", "dropout", "';'", code=2)


def test_a_label_confounded_with_the_batch_is_a_warning(tmp_path):
    ds = dataset(confounded())
    warning = cv.batch_confounding(ds)
    assert warning and "confounded with 'batch'" in warning and "--leave-batch-out" in warning
    assert re.search(r"B1 \d+% 'case'", warning) and re.search(r"B2 \d+% 'ctrl'", warning)
    assert "--leave-batch-out" not in cv.batch_confounding(ds, leave_batch_out=True)
    # batches independent of the label: nothing to say
    shuffled = confounded()
    shuffled["batch"] = np.where(shuffled["patient_id"].str[1:].astype(int) % 4 < 2, "B1", "B2")
    assert cv.batch_confounding(dataset(shuffled)) is None
    path = tmp_path / "confounded.csv"
    confounded().to_csv(path, index=False)
    result = run(["cv", str(path), "--folds", "3", *FAST, "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert any("confounded with 'batch'" in w for w in doc["warnings"])
    assert "warning: the label is confounded" in result.stderr  # a warning is never hidden, --json or not
