"""Learning-curve diagnosis, third review: regression's bias read in the squared error (1 - R²), metric names
shown as people write them, overfit advice that knows the best weights were restored, significant digits in
the progress lines, classifier-only train options marked in the help, multi-label log loss in the tables."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from mlpcli import metrics, model_io, pipeline
from mlpcli.config import TrainOptions
from mlpcli.diagnosis import diagnose
from mlpcli.model_selection.learning_curve import (
    BIAS_LEVEL, HELPS_PER_DOUBLING, VARIANCE_GAP, SizePoint, _bias_variance, _more_data, learning_curve,
)
from tables import make_table


def _regression_table(path, *, n_patients=100, n_features=12, noise=0.3, coef=(0.4, 0.2), nonlinear=False,
                      seed=0, unit=1.0) -> str:
    """Two samples per patient; the target a learnable function of the first features plus noise of SD ``noise``
    (times ``unit``): linear, or ``coef[0] sin(2 x0) + coef[1] x1 x2``, which no linear model fits."""
    rng = np.random.default_rng(seed)
    n = 2 * n_patients
    X = rng.normal(size=(n, n_features)) + np.repeat(rng.normal(scale=0.3, size=(n_patients, n_features)), 2, axis=0)
    f = coef[0] * np.sin(2 * X[:, 0]) + coef[1] * X[:, 1] * X[:, 2] if nonlinear else coef[0] * X[:, 0] + coef[1] * X[:, 1]
    df = pd.DataFrame({"sample_id": [f"S{i}" for i in range(n)], "patient_id": [f"P{i // 2}" for i in range(n)],
                       "label": (f + rng.normal(scale=noise, size=n)) * unit + 50 * unit})
    df = pd.concat([df, pd.DataFrame(X, columns=[f"f{j:02d}" for j in range(n_features)])], axis=1)
    df.to_csv(path, index=False)
    return str(path)


LC = TrainOptions(seed=0, epochs=150, patience=30)
SIZES = (0.5, 0.75, 1.0)


def _point(train, val, n=160, train_chance=None):
    p = SizePoint(fraction=1, n_train=n, n_groups=None, train_score=train, val_score=val, train_loss=1, val_loss=1,
                  baseline_val_loss=1, best_epoch=1, epochs_run=1, seconds=0, curve_label=None)
    p.train_chance_score = train_chance  # the spread of its own training targets (regression)
    return p


# --- 1. regression's bias and variance in the squared error ------------------------------------------------------


def test_a_training_rmse_below_the_noise_floor_is_not_called_bias():
    """The review's figures: noise SD 0.3, no-skill RMSE 0.55, training RMSE 0.163 (memorised: below the noise),
    validation 0.35. Read as RMSE / no-skill RMSE the training error was 0.30 >= 0.25, "Both bias and variance";
    as 1 - R² it is 0.09: the model fits, the gap is the problem."""
    out = _bias_variance([_point(0.163, 0.35, train_chance=0.55)], False, 0.55, 0.55, "rmse")
    assert out["verdict"] == "variance", out
    assert out["train_error"] == pytest.approx((0.163 / 0.55) ** 2)
    assert "R² 0.91" in out["text"] and "R² 0.60" in out["text"] and "Mostly variance" in out["text"]
    poor = _bias_variance([_point(0.5, 0.52, train_chance=0.55)], False, 0.55, 0.55, "rmse")  # R² 0.17
    assert poor["verdict"] == "bias" and "1 - R²" in poor["error_units"]


def test_the_training_error_is_read_against_the_training_rows_own_spread():
    """A training set more spread than the validation set: 1 - R² of each side, and the gap between the MSEs on
    one scale, so that the spread alone neither hides bias nor fakes a gap."""
    out = _bias_variance([_point(1.7, 1.55, train_chance=1.8)], False, 1.54, 1.54, "rmse")
    assert out["train_error"] == pytest.approx((1.7 / 1.8) ** 2)  # R² 0.11 on its own rows
    assert out["gap"] == pytest.approx((1.55 ** 2 - 1.7 ** 2) / 1.54 ** 2) and out["verdict"] == "bias"


@pytest.mark.parametrize("train, val", [(0.99, 0.97), (1.0, 0.8), (0.7, 0.68), (0.7, 0.55), (0.775, 1.0)])
def test_the_classification_reading_is_unchanged(train, val):
    chance, scale = 1 / 3, 2 / 3
    out = _bias_variance([_point(train, val)], True, chance, scale, "balanced_accuracy")
    tr, va = (1 - train) / scale, (1 - val) / scale
    assert (out["train_error"], out["val_error"], out["gap"]) == pytest.approx((tr, va, va - tr))
    verdict = {(True, True): "both", (True, False): "bias", (False, True): "variance", (False, False): "neither"}
    assert out["verdict"] == verdict[(tr >= BIAS_LEVEL, va - tr >= VARIANCE_GAP)]
    assert "R²" not in out["text"]


def test_the_more_data_slope_still_reads_the_rmse():
    """A validation RMSE falling by a third per doubling near R² 0.98 is real progress: the slope stays in
    RMSE / no-skill RMSE; in 1 - R² the same points move by less than the threshold and would read as a plateau."""
    val, sizes = (0.16, 0.13, 0.11), (80, 120, 160)
    out = _more_data([_point(0.05, v, n=n) for v, n in zip(val, sizes)], False, 1.0, 1.0, "rmse")
    assert out["verdict"] == "helps" and out["slope_per_doubling"] == pytest.approx(np.polyfit(np.log2(sizes), val, 1)[0])
    assert -np.polyfit(np.log2(sizes), np.square(val), 1)[0] < HELPS_PER_DOUBLING
    assert "validation RMSE improves by 0.0" in out["text"]


def test_a_model_that_fits_a_noisy_target_is_not_called_biased(tmp_path):
    """Target: 0.4 x0 + 0.2 x1 + noise of SD 0.3 (the best R² is 0.70). At 160 samples the network's training RMSE
    is 0.234 (below the noise: memorised) and its validation RMSE 0.315; RMSE / no-skill RMSE read the training
    error as 0.43, "Both bias and variance"."""
    result = learning_curve(_regression_table(tmp_path / "t.csv"), replace(LC, hidden=[32]), SIZES)
    bv, p = result.bias_variance, result.points[-1]
    assert p.train_score / result.chance_score >= BIAS_LEVEL  # what the RMSE ratio called poor
    assert bv["verdict"] == "variance", bv["text"]
    assert bv["train_error"] < BIAS_LEVEL and p.train_score < 0.3  # training R² above 0.75, below the noise floor


def test_a_low_noise_target_the_model_fits_has_little_bias_or_variance(tmp_path):
    path = _regression_table(tmp_path / "t.csv", noise=0.05, coef=(1.0, 0.5))
    bv = learning_curve(path, replace(LC, hidden=[32]), SIZES).bias_variance
    assert bv["verdict"] == "neither" and "R² 0.9" in bv["text"], bv["text"]


def test_a_linear_model_of_a_nonlinear_target_is_biased(tmp_path):
    path = _regression_table(tmp_path / "t.csv", coef=(2.0, 1.0), nonlinear=True)
    bv = learning_curve(path, replace(LC, hidden=[]), SIZES).bias_variance
    assert bv["verdict"] == "bias" and bv["train_error"] > 0.8, bv["text"]


def test_a_tiny_training_set_with_many_features_is_variance(tmp_path):
    path = _regression_table(tmp_path / "t.csv", n_patients=25, n_features=200, coef=(1.0, 0.5))
    bv = learning_curve(path, replace(LC, hidden=[128], dropout=0.0), SIZES).bias_variance
    assert bv["verdict"] == "variance" and bv["train_error"] < 0.05 and bv["gap"] > 0.3, bv["text"]


# --- 2. metric names as people write them ----------------------------------------------------------------------


def test_display_names():
    assert [metrics.display_name(k) for k in ("rmse", "r2", "mae", "f1_macro", "roc_auc_ovr", "log_loss", "mcc")] == [
        "RMSE", "R²", "MAE", "F1 macro", "ROC AUC (one-vs-rest)", "log loss", "MCC"]
    assert metrics.display_name("balanced_accuracy", short=True) == "bal. acc."
    assert metrics.display_name("balanced accuracy") == "balanced accuracy"
    assert metrics.display_name("something_new") == "something new"


@pytest.mark.parametrize("task, folds, shown, not_shown", [
    # the fold table's headers read "rmse", "mae", "r2" and its last line "rmse: 3.225 ± 0.405"
    ("regression", "3", ("RMSE", "MAE", "R²", "Pearson r"), ("rmse", "r2")),
    ("binary", "2", ("bal. acc.", "AUC", "F1", "MCC", "log loss"), (" mcc ", " f1 ")),
])
def test_cv_names_metrics_as_written(tmp_path, task, folds, shown, not_shown):
    path = tmp_path / f"{task}.csv"
    make_table(task, n_patients=20, per_patient=2, n_features=4).to_csv(path, index=False)
    res = run(["cv", str(path), "--folds", folds, "--member-folds", "1", "--hidden", "4", "--epochs", "3", "-q"])
    assert res.exit_code == 0, res.output
    header = next(line for line in res.stdout.splitlines() if "best epoch" in line)
    assert all(name in header for name in shown), header
    assert not any(name in header for name in not_shown), header
    if task == "regression":
        assert res.stdout.strip().splitlines()[-1].startswith("RMSE: ")
        assert "rmse" not in res.stdout and "r2" not in res.stdout


def test_the_regression_learning_curve_table_and_answers_say_rmse(tmp_path):
    path = _regression_table(tmp_path / "t.csv", n_patients=30)
    res = run(["diagnose", "--learning-curve", path, "--hidden", "4", "--epochs", "3", "--fractions", "0.5,1", "-q"])
    assert res.exit_code == 0, res.output
    assert "train RMSE" in res.stdout and "no-skill RMSE" in res.stdout and "rmse" not in res.stdout


# --- 3. overfit advice that knows what train kept ---------------------------------------------------------------


def _overfit_curves(n=40):
    e = np.arange(1, n + 1)
    return 0.7 * np.exp(-e / 6) + 0.05, 0.6 * np.exp(-e / 5) + 0.2 + 0.004 * np.maximum(0, e - 12)  # best ~17


def _history(tmp_path, name, train, val, **extra):
    path = tmp_path / name
    pd.DataFrame({"epoch": range(1, len(train) + 1), "train_loss": train, "val_loss": val, **extra}).to_csv(
        path, index=False)
    return str(path)


def _advice(args):
    res = run(["diagnose", *args, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["label"] == "overfit", doc["summary"]
    assert not any("checkpoint" in line for line in doc["advice"])
    return doc["advice"]


def test_overfit_advice_says_the_best_weights_were_kept(tmp_path):
    """`train` restores the best epoch's weights and records the epoch (the model file, `--history`'s best_epoch);
    the advice still said "restore the checkpoint saved there"."""
    train, val = _overfit_curves()
    kept = _history(tmp_path, "kept.csv", train, val, best_epoch=[min(e, 17) for e in range(1, 41)])
    advice = _advice([kept, "--baseline", "0.69"])
    assert advice[0].startswith("Nothing to restore: training kept epoch 17's weights")
    assert not any(line.startswith("Stop early") for line in advice)
    foreign = _history(tmp_path, "keras.csv", train, val)  # no record of what was kept
    advice = _advice([foreign, "--baseline", "0.69"])
    assert advice[0].startswith("Stop early at the divergence point") and "keep that epoch's weights" in advice[0]


def test_overfit_advice_on_a_real_run_names_the_epoch_restored(tmp_path):
    data = tmp_path / "d.csv"
    make_table(n_patients=30, per_patient=2, n_features=50, signal=1.0).to_csv(data, index=False)
    outcome = pipeline.train(str(data), TrainOptions(dropout=0.0, optimizer="adam", hidden=[128], epochs=60,
                                                     patience=200, lr=3e-4, folds=1))
    model_io.save(outcome.model, tmp_path / "m.mlp")
    kept = outcome.model.fit["best_epoch"]
    assert kept > 2
    advice = _advice([str(tmp_path / "m.mlp")])
    # (this run's validation loss never came below the no-skill loss: that is said first, with the epoch kept)
    assert outcome.model.history[kept - 1]["val_loss"] > outcome.model.baseline["val_loss"]
    assert advice[0].startswith(f"Validation never beat the no-skill loss, even at its lowest epoch (training kept "
                                f"epoch {kept}'s weights")


def test_validation_best_at_once_asks_for_a_lower_learning_rate_not_early_stopping(tmp_path):
    e = np.arange(1, 41)
    train, val = 0.7 * np.exp(-e / 6) + 0.05, 0.45 + 0.005 * (e - 1) ** 1.2
    advice = _advice([_history(tmp_path, "h.csv", train, val, best_epoch=[1] * 40), "--baseline", "0.69"])
    assert advice[0].startswith("Lower the learning rate (--lr") and "no earlier epoch to stop at" in advice[0]
    assert advice[1].startswith("Reduce model capacity") and advice[2].startswith("Add regularisation")
    assert not any("Stop early" in line for line in advice)


def test_an_ensemble_names_each_members_kept_epoch():
    train, val = _overfit_curves()
    d = diagnose(train, val, baseline=0.69, kept_epochs=[12, 15, 9])
    assert d.advice[0].startswith("Nothing to restore: each member kept its own best epoch's weights (epochs 12, 15 "
                                  "and 9)")
    assert "the model holds them" not in d.advice[0]  # a --refit model ships another network
    early = diagnose(train, val, baseline=0.69, kept_epochs=[1, 2, 2])
    assert early.advice[0].startswith("Lower the learning rate") and "around epoch 2" in early.advice[0]


# --- 4. significant digits in the learning curve's progress lines ---------------------------------------------


def test_progress_lines_show_a_small_rmse_with_significant_digits(tmp_path):
    """A target in thousandths: every progress line read "validation score 0.000"."""
    path = _regression_table(tmp_path / "t.csv", n_patients=30, unit=1e-3)
    res = run(["diagnose", "--learning-curve", path, "--hidden", "4", "--epochs", "3", "--fractions", "0.5,1"])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if "of the training groups:" in line]
    assert len(lines) == 2
    for line in lines:
        assert "validation RMSE " in line, line
        value = line.split("validation RMSE ")[1].split(",")[0]
        assert float(value) > 0 and len(value.lstrip("0.")) == 4, line  # 4 significant digits


# --- 5. classifier-only options say so ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "cv", "tune", "diagnose"])
def test_classifier_only_options_are_marked_in_the_help(command):
    out = " ".join(run([command, "--help"]).output.split())
    for marked in ("--positive TEXT (binary) The positive class", "--calibrate / --no-calibrate (classifiers) ",
                   "--class-weight TEXT (classifiers) ", "--pos-weight FLOAT (binary, multi-label) ",
                   "--focal-gamma FLOAT (binary, multi-label) ", "--focal-alpha FLOAT (binary, multi-label) ",
                   "--label-smoothing FLOAT (classifiers) "):
        assert marked in out, (command, marked)


# --- 6. multi-label log loss in the tables --------------------------------------------------------------------


def test_multilabel_log_loss_is_a_headline_metric_in_train_and_cv(tmp_path):
    path = tmp_path / "ml.csv"
    make_table("multilabel", n_patients=30, per_patient=2, n_features=6).to_csv(path, index=False)
    common = ["--target", "lab0,lab1,lab2", "--hidden", "4", "--epochs", "4", "-q"]
    res = run(["train", str(path), *common, "--folds", "2", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    row = next(line for line in res.stdout.splitlines() if "out-of-fold metrics" in line)
    assert "log loss 0." in row and "Hamming loss" in row
    res = run(["cv", str(path), *common, "--folds", "2", "--member-folds", "1"])
    assert res.exit_code == 0, res.output
    assert "log loss" in next(line for line in res.stdout.splitlines() if "best epoch" in line)
    mean = next(line for line in res.stdout.splitlines() if "mean" in line)
    assert len(mean.split("│")[-2].strip()) > 1  # a number under log loss, not "—"
