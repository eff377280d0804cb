"""The advice `diagnose` gives for a learning curve: verdicts on runs whose truth is known (a network stuck at its
start, one short of capacity, noisy labels, overfitting with the best weights restored, linear and L-BFGS
models), regression's bias read in 1 - R², and the metric names and digits it prints."""

import json
import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import curves
from mlpcli import metrics, model_io, pipeline
from mlpcli.cli import cli
from mlpcli.config import TrainOptions
from mlpcli.diagnosis import diagnose
from mlpcli.history import capacity_tried
from mlpcli.model_selection.learning_curve import learning_curve, SizePoint
from mlpcli.diagnosis.sample_size import BIAS_LEVEL, HELPS_PER_DOUBLING, VARIANCE_GAP, bias_variance, more_data
from cli_helpers import run
from tables import make_table, write_table


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
    out = bias_variance([_point(0.163, 0.35, train_chance=0.55)], False, 0.55, 0.55, "rmse")
    assert out["verdict"] == "variance", out
    assert out["train_error"] == pytest.approx((0.163 / 0.55) ** 2)
    assert "R² 0.91" in out["text"] and "R² 0.60" in out["text"] and "Mostly variance" in out["text"]
    poor = bias_variance([_point(0.5, 0.52, train_chance=0.55)], False, 0.55, 0.55, "rmse")  # R² 0.17
    assert poor["verdict"] == "bias" and "1 - R²" in poor["error_units"]


def test_the_training_error_is_read_against_the_training_rows_own_spread():
    """A training set more spread than the validation set: 1 - R² of each side, and the gap between the MSEs on
    one scale, so that the spread alone neither hides bias nor fakes a gap."""
    out = bias_variance([_point(1.7, 1.55, train_chance=1.8)], False, 1.54, 1.54, "rmse")
    assert out["train_error"] == pytest.approx((1.7 / 1.8) ** 2)  # R² 0.11 on its own rows
    assert out["gap"] == pytest.approx((1.55 ** 2 - 1.7 ** 2) / 1.54 ** 2) and out["verdict"] == "bias"


@pytest.mark.parametrize("train, val", [(0.99, 0.97), (1.0, 0.8), (0.7, 0.68), (0.7, 0.55), (0.775, 1.0)])
def test_the_classification_reading_is_unchanged(train, val):
    chance, scale = 1 / 3, 2 / 3
    out = bias_variance([_point(train, val)], True, chance, scale, "balanced_accuracy")
    tr, va = (1 - train) / scale, (1 - val) / scale
    assert (out["train_error"], out["val_error"], out["gap"]) == pytest.approx((tr, va, va - tr))
    verdict = {(True, True): "both", (True, False): "bias", (False, True): "variance", (False, False): "neither"}
    assert out["verdict"] == verdict[(tr >= BIAS_LEVEL, va - tr >= VARIANCE_GAP)]
    assert "R²" not in out["text"]


def test_the_more_data_slope_still_reads_the_rmse():
    """A validation RMSE falling by a third per doubling near R² 0.98 is real progress: the slope stays in
    RMSE / no-skill RMSE; in 1 - R² the same points move by less than the threshold and would read as a plateau."""
    val, sizes = (0.16, 0.13, 0.11), (80, 120, 160)
    out = more_data([_point(0.05, v, n=n) for v, n in zip(val, sizes)], False, 1.0, 1.0, "rmse")
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
    # random labels read so too: the labels are the next suspect once a small model fails as well
    assert advice[1].startswith("If a model that small never beats it either: check the target first")


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


BASELINE = 0.6582  # binary cross-entropy of predicting a 63/37 class prior (breast cancer)


def _flat(level: float, n: int = 30, wiggle: float = 0.002, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return (level + wiggle * rng.standard_normal(n)).tolist()


def test_a_network_worse_than_a_constant_prediction_is_told_to_fix_the_optimisation():
    """Real run (bc.csv, --hidden 32 --lr 1e-6 --epochs 30): both curves flat at 1.105 / 1.124 against a no-skill
    loss of 0.658. The advice was "Increase model capacity", and the summary read "-67.9 % and -70.8 % of the way
    from no skill to perfect": the output bias alone reaches the no-skill loss, so the run never learned."""
    d = diagnose(_flat(1.105), _flat(1.124, seed=1), baseline=BASELINE)
    assert d.label == "underfit_capacity" and d.evidence["cause"] == "not_learning"
    assert "Increase model capacity" not in " ".join(d.advice)
    above = f"{-100 * d.evidence['train_distance_from_baseline']:.1f} % of the scale above"  # ~68 %
    assert d.advice[0].startswith("The network has not learned") and above in d.advice[0]
    assert "--lr" in d.advice[1] and "--epochs" in d.advice[1]
    assert "-6" not in d.summary and above + " the no-skill loss" in d.summary
    # dropout lifting only the training loss above the baseline is no sign of a network that never learned
    assert diagnose(_flat(0.70), _flat(0.62, seed=1), baseline=BASELINE).evidence["cause"] != "not_learning"
    # the same for a score (balanced accuracy below chance): its words follow the direction
    s = diagnose(_flat(0.40), _flat(0.41, seed=1), baseline=0.5, higher_is_better=True, name="balanced accuracy")
    assert s.evidence["cause"] == "not_learning" and "below the no-skill balanced accuracy" in s.advice[0]


def test_curves_flat_at_the_no_skill_loss_keep_the_capacity_advice_and_say_so_without_a_minus_sign():
    """Real run (concentric circles, --hidden none): training 0.6934 and validation 0.6947 against ln 2 read
    "-0.0 % and -0.2 % of the way from no skill to perfect". A linear model on circles is the notes' capacity case."""
    d = diagnose(_flat(0.6934, wiggle=0.0003), _flat(0.6947, wiggle=0.0003, seed=1), baseline=math.log(2))
    assert d.label == "underfit_capacity" and d.evidence["cause"] is None
    assert d.advice[0].startswith("Increase model capacity")
    assert "-0." not in d.summary and "worse than no skill" in d.summary


def test_a_larger_network_the_run_already_tried_turns_the_advice_to_the_features():
    """Real run (breast cancer with 40 % of labels flipped, --hidden auto): the linear model won (validation balanced
    accuracy 0.550 against 0.546 for hidden 128), the curves sat near the baseline and the advice was "Increase
    model capacity", which the run had just tried."""
    fit = {"metric": "balanced_accuracy", "folds": 1,
           "portfolio": [{"hidden": [], "augment_noise": 0.0, "score": 0.55},
                         {"hidden": [128], "augment_noise": 0.0, "score": 0.5463}]}
    tried = capacity_tried(fit, {"hidden": "auto", "resolved": {"hidden": []}})
    assert tried == ("--hidden auto also trained hidden 128: validation balanced accuracy (each by its most probable "
                     "class) 0.546, against 0.550 for "
                     "the network it chose (no hidden layer)")
    d = diagnose(_flat(0.654), _flat(0.699, seed=1), baseline=0.6918, capacity_tried=tried)
    assert d.label == "underfit_capacity" and d.evidence["cause"] == "larger_model_tried"
    assert tried in d.advice[0] and "Increase model capacity" not in " ".join(d.advice)
    # regression scores are stored negated (higher is better): the RMSE is shown as such
    reg = {"metric": "rmse", "folds": 5, "portfolio": [{"hidden": [], "augment_noise": 0.0, "score": -0.9843},
                                                      {"hidden": [128], "augment_noise": 0.0, "score": -0.9864}]}
    assert "out-of-fold RMSE 0.9864, against 0.9843" in capacity_tried(reg, {"resolved": {"hidden": []}})


@pytest.mark.parametrize("fit, config", [
    ({"portfolio": [{"hidden": [], "score": 0.78}, {"hidden": [128], "augment_noise": 2.0, "score": 0.84}]},
     {"resolved": {"hidden": [128]}}),  # the chosen network is the largest
    ({"portfolio": None}, {"hidden": [64]}),  # a given --hidden: nothing else was tried
    ({}, {}),  # a model file without either
    ({"portfolio": [{"hidden": ["x"], "score": 0.9}, {"hidden": [], "score": 0.5}]}, {"hidden": []}),  # edited by hand
    ({"portfolio": "oops"}, {"resolved": None}),
], ids=["chosen-is-largest", "no-portfolio", "empty", "bad-widths", "bad-types"])
def test_no_larger_network_tried_means_no_sentence(fit, config):
    assert capacity_tried(fit, config) is None


def _gap_curves(n: int = 40):
    e = np.arange(1, n + 1)
    train = 0.08 + 0.6 * np.exp(-e / 3)
    val = 0.90 + 0.3 * np.exp(-e / 3) + 0.004 * np.sin(e)
    return train.tolist(), val.tolist()


def test_a_separate_validation_table_leads_the_advice_with_the_mismatch():
    """Real run (digits, --val-data a noisier copy of the second half): a wide, stable gap, unrepresentative_train,
    whose first advice was to collect more training data; with a validation table of its own the two tables differ
    by construction, which is what to check first."""
    train, val = _gap_curves()
    plain = diagnose(train, val, baseline=2.30)
    assert plain.label == "unrepresentative_train" and plain.advice[0].startswith("Collect more training data")
    d = diagnose(train, val, baseline=2.30, validation_table="cohort_b.csv")
    assert d.label == "unrepresentative_train"
    assert d.advice[0].startswith("Check the validation table first: cohort_b.csv is a separate table")
    assert any(a.startswith("Collect more training data") for a in d.advice[1:])


def test_one_member_history_is_not_called_a_mean_of_one_members(tmp_path):
    e = np.arange(1, 31)
    path = tmp_path / "one.csv"
    pd.DataFrame({"member": 1, "epoch": e, "train_loss": 0.1 + 0.6 * np.exp(-e / 4),
                  "val_loss": 0.15 + 0.55 * np.exp(-e / 4), "best_epoch": 25}).to_csv(path, index=False)
    plot = tmp_path / "one.svg"
    res = run(["diagnose", str(path), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.stdout.split())
    assert "mean of 1" not in out and "30 epochs of member 1, kept epoch 25" in out
    svg = plot.read_text()
    assert "mean of 1" not in svg and "members (1)" not in svg
    # without best_epoch nothing says which weights were kept: the lowest validation loss is named as such
    pd.read_csv(path).drop(columns="best_epoch").to_csv(path, index=False)
    out = " ".join(run(["diagnose", str(path)]).stdout.replace("│", " ").split())  # (the panel's lines, rejoined)
    assert "kept epoch" not in out and "30 epochs of member 1, lowest validation loss at epoch" in out, out


def test_a_model_file_carries_the_larger_candidate_and_the_validation_table(tmp_path):
    """End to end on a real run: a --val-data model whose --hidden auto chose the linear network."""
    rng = np.random.default_rng(3)
    def table(n):
        x = rng.standard_normal((n, 4))
        return pd.DataFrame({**{f"g{i}": x[:, i] for i in range(4)}, "label": np.where(rng.random(n) < 0.5, "a", "b")})
    tr, va = tmp_path / "tr.csv", tmp_path / "va.csv"
    table(24).to_csv(tr, index=False)
    table(12).to_csv(va, index=False)
    model = tmp_path / "m.mlp"
    res = run(["train", str(tr), "--val-data", str(va), "--epochs", "3", "--hidden", "auto", "--no-group", "-o", str(model), "-q"])
    assert res.exit_code == 0, res.output
    from mlpcli.history import read_curves

    c = read_curves(str(model))
    assert c.validation_table == str(va)
    assert c.capacity_tried.startswith("--hidden auto also trained hidden 128: validation balanced accuracy (each by")
    assert c.capacity_tried.endswith("for the network it chose (no hidden layer)")
    res = run(["diagnose", str(model), "--json"])
    assert res.exit_code == 0, res.output
    # train's own verdict, stored in the model, reads the same context as diagnose MODEL: the same advice
    import json

    from mlpcli import model_io

    doc = json.loads(res.stdout)
    stored = model_io.load(model).extra["diagnosis"]
    assert stored["label"] == doc["label"] and stored["advice"] == doc["advice"]


def test_the_header_says_how_many_epochs_the_verdict_could_read(tmp_path):
    """'40 epochs' for a history whose validation column is empty in 10 of them: the header counts rows."""
    epochs = np.arange(1, 41)
    frame = pd.DataFrame({"epoch": epochs, "train_loss": 1 / np.sqrt(epochs), "val_loss": 1 / np.sqrt(epochs) + 0.05})
    frame.loc[5:14, "val_loss"] = np.nan
    frame.to_csv(tmp_path / "h.csv", index=False)
    res = run(["diagnose", str(tmp_path / "h.csv")])
    assert res.exit_code == 0, res.output
    assert "40 epochs (30 with both values)" in res.output
    frame.dropna().to_csv(tmp_path / "full.csv", index=False)
    assert "with both values" not in run(["diagnose", str(tmp_path / "full.csv")]).output


# A wide network without regularisation on 2,000 genes x 64 rows (mlpcli train --hidden 256 --dropout 0 --l2 0
# --weight-decay 0): it memorises its rows within epochs (training loss 1.1 -> 2e-8) while validation climbs from
# 0.83 at epoch 1, its best, to 5.2 and settles near 4.9
WIDE_TRAIN = 1.1 * 10 ** (-(np.arange(100) * 8 / 99))


WIDE_VAL = np.concatenate([[0.83, 1.93, 2.81, 3.46, 3.9, 4.3, 4.6, 4.8, 5.0, 5.1], np.linspace(5.2, 4.88, 90)])


WIDE_BASELINE = 0.6976


# --- what the verdict says --------------------------------------------------------------------------------------------


def test_a_memorised_training_loss_is_not_reported_below_zero():
    """The last-quarter line of a training loss falling to 2e-8 ended below zero: "while the training loss stayed
    near -1.121e-07", and train_final -1.1e-07 in the evidence."""
    d = diagnose(WIDE_TRAIN, WIDE_VAL, baseline=WIDE_BASELINE)
    assert d.label == "overfit"
    assert 0 <= d.evidence["train_final"] <= WIDE_TRAIN[-25:].max()
    assert "stayed near -" not in d.summary


def test_a_validation_loss_best_at_epoch_1_is_quoted_at_its_value():
    """The smoothed minimum at epoch 1 averaged in the later, worse epochs: "lowest around epoch 1 (3.763)" for a
    validation loss of 0.83 there (the epoch train kept), and the rise after it was understated (181 % of the scale
    for a climb from 0.83 to 4.9, 580 %)."""
    d = diagnose(WIDE_TRAIN, WIDE_VAL, baseline=WIDE_BASELINE)
    assert d.evidence["divergence_epoch"] == 1 and d.evidence["best_val"] == pytest.approx(0.83)
    assert "lowest around epoch 1 (0.83)" in d.summary
    assert d.evidence["val_rise"] > (4.8 - 0.83) / WIDE_BASELINE


def test_a_run_stopped_early_says_which_epochs_were_still_improving():
    epochs = np.arange(1, 61)
    d = diagnose(np.exp(-epochs / 80), np.exp(-epochs / 90) + 0.02)
    assert d.label == "underfit_stopped_early"
    assert d.evidence["window_first_epoch"] == 46 and "over epochs 46-60" in d.summary
    assert "per 10 % of the run, i.e. per 5.9 epochs" in d.summary and "epochs 46-60" in d.advice[0]


def _train_options() -> set[str]:
    import click

    train = cli.get_command(click.Context(cli), "train")
    return {opt for p in train.params for opt in (*p.opts, *getattr(p, "secondary_opts", ()))}


def _advice_of_every_shape() -> dict[str, str]:
    """The advice for every label, plain and with dropout, one network and an ensemble's members."""
    out: dict[str, list[str]] = {}
    for label in curves.LABELS:
        for seed in range(3):
            case = curves.make_case(label, seed, seed=1)
            for stochastic in (False, True):
                for spread in (None, np.full(len(case.train), 0.3 * np.nanmean(case.val))):
                    d = diagnose(case.train, case.val, baseline=case.baseline, train_eval_loss=case.train_eval,
                                 stochastic_regularisation=stochastic, member_spread=spread)
                    out.setdefault(d.label, []).extend(d.advice)
    return {label: " ".join(advice) for label, advice in out.items()}


def test_every_remedy_names_options_as_train_help_spells_them():
    """The remedies said "Add regularisation: L2 weight decay and/or dropout", "Reduce model capacity (fewer units or
    layers)", "increase the patience (or lower min_delta)", "Use a larger validation set": now each names the option
    that does it, and every option named is one of train's."""
    advice = _advice_of_every_shape()
    options = _train_options()
    named = set(re.findall(r"--[a-z][a-z0-9-]*", " ".join(advice.values())))
    assert named and named <= options | {"--baseline"}, named - options
    for label, wanted in {"overfit": ("--l2", "--dropout", "--hidden"), "underfit_capacity": ("--hidden", "--lr"),
                          "underfit_stopped_early": ("--epochs", "--patience", "--min-delta"),
                          "unrepresentative_validation_noisy": ("--val-size", "--folds"),
                          "unrepresentative_train": ("--group",)}.items():
        for option in wanted:
            assert option in advice[label], (label, option, advice[label])


def test_the_learning_curve_remedies_name_options_too(tmp_path):
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection.learning_curve import learning_curve

    data = write_table(tmp_path)
    result = learning_curve(data, TrainOptions(epochs=5), fractions=(0.5, 1))
    bv, last = result.bias_variance, result.points[-1]
    assert bv["verdict"] == "variance" and "--l2" in bv["text"] and "--hidden" in bv["text"]
    # 5 epochs: validation was still at its best in the last one, so the levels are not final, whatever the
    # curves' label at that size (here not underfit_stopped_early, which had the only caveat)
    assert last.best_epoch == last.epochs_run == 5 and last.curve_label != "underfit_stopped_early"
    assert bv["caveat"] and "(5 of 5)" in bv["caveat"] and "--epochs" in bv["caveat"]


# mlpcli train on a linearly separable table (400 rows, 10 features) with --hidden 2 --folds 1 --epochs 10: both
# losses near the no-skill 0.6904, validation falling every epoch; with 200 epochs the same 2-unit network reached
# balanced accuracy 1.0. It was labelled underfit_capacity, "both curves are flat", advice "Increase model capacity"
SHORT_TRAIN = [0.690641, 0.682696, 0.698141, 0.668634, 0.669741, 0.658944, 0.655926, 0.648659, 0.656153, 0.655305]


SHORT_VAL = [0.698275, 0.688556, 0.679618, 0.672557, 0.666589, 0.660982, 0.655665, 0.650514, 0.645215, 0.639731]


SHORT_BASELINE = 0.6904


# The mean curves of a 5-member ensemble (hidden 64, 60 epochs) on 400 rows whose labels were 30 % flipped (the
# best possible loss is 0.61, 88 % of the no-skill 0.693): training keeps falling, validation settles at 0.652 and
# the gap widens. It was labelled underfit_capacity with "Increase model capacity" as the first remedy
NOISY_TRAIN = [0.7662, 0.7224, 0.6772, 0.6502, 0.6498, 0.6386, 0.6372, 0.6356, 0.629, 0.6289, 0.6213, 0.6158, 0.6184,
               0.6181, 0.6109, 0.6137, 0.6119, 0.6077, 0.6079, 0.6081, 0.6058, 0.6019, 0.6049, 0.6024, 0.6034, 0.6061,
               0.6015, 0.5996, 0.5993, 0.6007, 0.5997, 0.5957, 0.5961, 0.5965, 0.5962, 0.596, 0.5959, 0.5958, 0.5951,
               0.596, 0.5938, 0.5891, 0.594, 0.5952, 0.589, 0.5911, 0.5885, 0.5914, 0.5893, 0.5903, 0.59, 0.589,
               0.588, 0.5879, 0.5841, 0.5843, 0.5879, 0.5897, 0.585, 0.586]


NOISY_VAL = [0.7217, 0.6925, 0.6795, 0.6717, 0.6665, 0.6638, 0.6624, 0.6608, 0.6584, 0.6587, 0.6583, 0.6574, 0.6561,
             0.6561, 0.655, 0.6548, 0.6543, 0.6536, 0.6533, 0.6535, 0.6535, 0.6528, 0.6524, 0.6523, 0.6526, 0.6528,
             0.6529, 0.6526, 0.6526, 0.652, 0.6523, 0.6527, 0.6526, 0.6521, 0.653, 0.653, 0.6532, 0.6522, 0.6528,
             0.6529, 0.6527, 0.6528, 0.6519, 0.6516, 0.6514, 0.6516, 0.6516, 0.6516, 0.6516, 0.6518, 0.651, 0.6519,
             0.6523, 0.6515, 0.6512, 0.6517, 0.6519, 0.6516, 0.652, 0.6523]


NOISY_BASELINE = 0.6931


def _flat_capacity_curves(n: int = 80, seed: int = 0):
    """A network short of capacity: both losses drop a little, then stay flat and close near the baseline."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    train = 0.62 + 0.07 * np.exp(-t / 4) + rng.normal(0, 0.002, n)
    val = 0.63 + 0.06 * np.exp(-t / 4) + rng.normal(0, 0.002, n)
    return train, val


def test_short_run_still_learning_is_told_to_train_longer_not_to_add_capacity():
    d = diagnose(SHORT_TRAIN, SHORT_VAL, baseline=SHORT_BASELINE)
    assert d.label == "underfit_capacity"
    assert d.evidence["cause"] == "still_improving"
    assert "flat" not in d.summary and "still falling" in d.summary
    assert "--epochs" in d.advice[0] and "Increase model capacity" not in " ".join(d.advice)


def test_network_fitting_noisy_labels_is_pointed_at_labels_and_features():
    d = diagnose(NOISY_TRAIN, NOISY_VAL, baseline=NOISY_BASELINE)
    assert d.label == "underfit_capacity"
    assert d.evidence["cause"] == "training_only_gains"
    text = " ".join(d.advice)
    assert "Increase model capacity" not in text
    assert "labels are noisy" in text and "More capacity is not what is missing" in d.advice[0]


def test_flat_close_curves_keep_the_capacity_advice():
    train, val = _flat_capacity_curves()
    d = diagnose(train, val, baseline=0.6931)
    assert d.label == "underfit_capacity"
    assert d.evidence["cause"] is None
    assert d.advice[0].startswith("Increase model capacity")


@pytest.mark.parametrize("curves, cause", [((SHORT_TRAIN, SHORT_VAL), "still_improving"),
                                           ((NOISY_TRAIN, NOISY_VAL), "training_only_gains")],
                         ids=["short-run", "noisy-labels"])
def test_history_without_baseline_does_not_call_the_curves_flat(tmp_path, curves, cause):
    """From a history table (no baseline): the sentence follows the cause, not "stay flat near their start"."""
    train, val = curves
    path = tmp_path / "history.csv"
    path.write_text("epoch,train_loss,val_loss\n"
                    + "".join(f"{i + 1},{a},{b}\n" for i, (a, b) in enumerate(zip(train, val))))
    res = run(["diagnose", str(path), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["evidence"]["cause"] == cause, doc["summary"]
    assert "stay flat" not in doc["summary"] and "their starting level" in doc["summary"]
    panel = run(["diagnose", str(path), "--no-chart"], env={"COLUMNS": "200"})
    assert panel.exit_code == 0 and "val_slope_z" in panel.output  # the numbers behind the cause are shown


# ── diagnose on real overfitting runs ────────────────────────────────────────────────────────────────────


def _history_file(path, train, val):
    pd.DataFrame({"epoch": np.arange(1, len(train) + 1), "train_loss": train, "val_loss": val}).to_csv(path,
                                                                                                       index=False)
    return str(path)


def _wide_net_curves():
    """A wide network on p >> n: validation lowest at epoch 1, climbing steeply, a later shallow dip, then up."""
    e = np.arange(1, 301)
    train = 0.75 * np.exp(-(e - 1) / 0.5) + 1e-6
    val = np.where(e <= 9, 1.15 + (2.83 - 1.15) * (e - 1) / 8, 2.83 - 0.69 * np.exp(-((e - 35) / 15.0) ** 2) * 1.0)
    val = np.where(e > 35, 2.14 + (3.06 - 2.14) * (e - 35) / 265, val)
    return train, val + 0.002 * np.sin(e)


def test_overfit_quotes_the_validation_minimum_at_epoch_1_not_a_later_dip(tmp_path):
    """The smoother's cut window at the start hid an epoch-1 minimum: "lowest around epoch 36 (2.155)" while the
    model kept epoch 1 (1.15)."""
    import json

    train, val = _wide_net_curves()
    res = run(["diagnose", _history_file(tmp_path / "h.csv", train, val), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    ev = doc["evidence"]
    assert doc["label"] == "overfit" and ev["divergence_epoch"] <= 2 and ev["best_val"] < 1.3, ev


def test_overfit_says_when_validation_never_beat_no_skill(tmp_path):
    import json

    train, val = _wide_net_curves()
    path = _history_file(tmp_path / "h.csv", train, val)
    below = json.loads(run(["diagnose", path, "--baseline", "0.67", "--json"]).output)
    assert below["evidence"]["best_distance_from_baseline"] < 0
    assert "the network learned nothing that carries over to new samples" in below["summary"]
    assert below["advice"][0].startswith("Validation never beat the no-skill loss")
    above = json.loads(run(["diagnose", path, "--baseline", "5", "--json"]).output)  # it did beat this one
    assert above["evidence"]["best_distance_from_baseline"] > 0
    assert "learned nothing" not in above["summary"] and not above["advice"][0].startswith("Validation never")


def test_the_kept_epoch_marker_never_hides_an_axis_number():
    from mlpcli.plotting import terminal_chart

    e = np.arange(1, 31)
    for best in (1, 30):
        chart = terminal_chart(list(0.5 / e), list(0.6 / e), best_epoch=best)
        axis = next(line for line in chart.splitlines() if "▲" in line)
        assert " 1" in " " + axis.replace("▲", " ") and "30" in axis, axis


def test_unrepresentative_advice_knows_the_split_was_grouped_and_when_training_was_memorised():
    from mlpcli.diagnosis import diagnose

    e = np.arange(1, 61)
    train = 0.6 * np.exp(-e / 4) + 0.002  # memorised: near 0
    val = 0.45 + 0.25 * np.exp(-e / 4) + 0.003 * np.sin(e)  # settles well above, gap stable
    grouped = diagnose(train, val, baseline=0.69, grouped_by="patient_id")
    plain = diagnose(train, val, baseline=0.69)
    assert grouped.label == plain.label == "unrepresentative_train"
    assert any("split already kept the samples of each patient_id value on one side" in a for a in grouped.advice)
    assert not any("--group names the column" in a for a in grouped.advice)
    assert any("--group names the column" in a for a in plain.advice)
    assert any("memorises its training rows" in a for a in plain.advice)


def test_never_beat_no_skill_is_judged_on_the_epochs_own_values_and_a_sharp_early_dip_is_found(tmp_path):
    """A noisy run whose kept epoch (0.593) beat the baseline (0.693) was told its kept weights "do worse"; a V over
    epochs 2-4 (0.61, 0.58, then up) was reported "lowest around epoch 1"."""
    from mlpcli.diagnosis import diagnose

    e = np.arange(1, 81)
    rng = np.random.default_rng(11)
    val = np.r_[0.80, 0.61, 0.58, 0.70, 0.76 + 0.12 * (e[4:] - 5) / 75 + rng.normal(0, 0.04, 76)]
    train = 1.0 * np.exp(-e / 15) + 0.05
    d = diagnose(train, val, baseline=0.693)
    assert d.label == "overfit" and d.evidence["divergence_epoch"] == 3, d.evidence
    noisy = np.full(40, 0.75) + rng.normal(0, 0.03, 40)
    noisy[20] = 0.60  # one epoch below the baseline: what early stopping would keep
    d = diagnose(0.5 * np.exp(-np.arange(1, 41) / 5) + 0.01, noisy, baseline=0.693)
    assert d.evidence["best_distance_from_baseline"] > 0 and not any("never beat" in a for a in d.advice)


def test_a_run_stopped_by_its_epoch_limit_is_not_told_to_raise_patience():
    from mlpcli.diagnosis import diagnose

    e = np.arange(1, 41)
    train, val = 0.7 * np.exp(-e / 40) + 0.1, 0.72 * np.exp(-e / 45) + 0.12
    at_limit = diagnose(train, val, baseline=0.69, kept_epochs=[40])
    assert at_limit.label == "underfit_stopped_early"
    assert not any("--patience" in a and "raise" in a.split("--patience")[0][-8:] for a in at_limit.advice)
    assert any("--epochs, not --patience" in a for a in at_limit.advice)
    cut = diagnose(train, val, baseline=0.69, kept_epochs=[30])
    assert any("raise --patience" in a for a in cut.advice)


def test_an_overfit_with_a_flat_bottom_says_where_it_came_within_noise():
    """"lowest around epoch 19" stood beside best_epoch 8 in the evidence table: the smoothed curve came within
    noise of its lowest value at epoch 8 and stayed there to 19. The summary says both."""
    epochs = np.arange(1, 61)
    train = 1.0 * np.exp(-epochs / 8)
    val = np.where(epochs <= 8, 1.0 - 0.06 * epochs, 0.52)
    val = np.where(epochs > 19, 0.52 + 0.02 * (epochs - 19), val) + 0.002 * np.sin(epochs)
    d = diagnose(train, val)
    assert d.label == "overfit"
    best, low = d.evidence["best_epoch"], d.evidence["divergence_epoch"]
    assert best < low - 1, d.evidence
    assert f"around epoch {low} (" in d.summary and f", within noise of it from epoch {best})" in d.summary


def test_a_linear_model_that_never_beat_no_skill_is_not_told_to_let_the_defaults_choose():
    """600 samples of 60,000 genes: --hidden auto chose the softmax regression, it never beat the no-skill loss,
    and the advice ended "or let the defaults choose (--hidden auto)" — the defaults had chosen it, and could only
    add a hidden layer, the opposite of the advice."""
    d = diagnose(WIDE_TRAIN, WIDE_VAL, baseline=WIDE_BASELINE, linear=True)
    first = d.advice[0]
    assert first.startswith("Validation never beat the no-skill") and "it is the linear model already" in first
    assert "--hidden auto" not in first and first.endswith("fewer features (--top-var).")
    assert "--augment-noise" not in first  # auto adds no noise to a linear model
    assert "--hidden auto" in diagnose(WIDE_TRAIN, WIDE_VAL, baseline=WIDE_BASELINE).advice[0]  # a hidden layer: may


def test_a_history_whose_first_epochs_blew_up_says_its_scale_hides_the_levels(tmp_path):
    """Without a baseline the scale is the first epochs' level: 139 from a blown-up start made a run worse than no
    skill (validation 1.20 where ln 3 = 1.10) read "Good fit — Nothing needed" without a word."""
    e = np.arange(1, 41)
    train = np.where(e <= 3, [140.0, 60.0, 20.0][0] / e, 1.185 + 0.01 * np.exp(-e / 5))
    val = np.where(e <= 3, 130.0 / e, 1.203 + 0.01 * np.exp(-e / 5))
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": e, "train_loss": train, "val_loss": val}).to_csv(path, index=False)
    res = run(["diagnose", str(path), "--json"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert any("no baseline" in n and "--baseline LOSS" in n for n in notes), notes
    res = run(["diagnose", str(path), "--json", "--baseline", "1.0986"])
    assert not [n for n in json.loads(res.stdout)["notes"] if "no baseline" in n]


def test_diagnose_of_a_pickle_says_it_is_one(tmp_path):
    """`diagnose p.pkl` answered "unsupported table format ... use .csv", where `info` says it is a Python pickle."""
    import pickle

    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps({"coef": [1.0, 2.0]}))
    res = run(["diagnose", str(path)])
    assert res.exit_code == 1 and "it is a Python pickle" in res.output and "unsupported table" not in res.output
