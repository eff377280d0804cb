"""`mlpcli diagnose`, second review: help worded for regression too, a 3-epoch run read at the epoch it kept,
a failed rise said by the number that fell short, a flat history without a baseline, RMSE named as such."""

import json

import pandas as pd

from mlpcli.diagnosis import diagnose
from tables import make_table
from cli_helpers import run


def _json(args):
    res = run(["diagnose", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _history(tmp_path, name, **columns):
    n = len(next(iter(columns.values())))
    path = tmp_path / name
    pd.DataFrame({"epoch": range(1, n + 1), **columns}).to_csv(path, index=False)
    return str(path)


def test_baseline_help_is_right_for_regression_models_too():
    """--baseline said "default: the model's class-prior loss"; a regression model's baseline is the loss of
    predicting the training mean."""
    out = " ".join(run(["diagnose", "--help"]).output.split())
    assert "class-prior loss" not in out
    assert "for regression the training mean" in out  # --baseline and SOURCE
    assert out.count("training mean") >= 2


def test_a_run_stopped_after_three_epochs_is_read_at_the_epoch_it_kept(tmp_path):
    """`train --patience 1` stopped after epoch 3 and kept epoch 2 (validation 0.90, 0.66, 1.26); the width-3
    smoother took epoch 2's dip for a spike and said "lowest around epoch 1 (0.8397)", a value no epoch had, and
    advised restoring epoch 1."""
    path = _history(tmp_path, "h.csv", train_loss=[32.4, 0.506, 0.553], val_loss=[0.8995, 0.6601, 1.2634],
                    best_epoch=[1, 2, 2])
    doc = _json([path, "--baseline", "1.255"])
    assert doc["label"] == "overfit" and doc["best_epoch"] == 2
    ev = doc["evidence"]
    assert ev["best_epoch"] == 2 and ev["divergence_epoch"] == 2 and ev["best_val"] == 0.6601
    assert "lowest around epoch 2 (0.6601)" in doc["summary"] and "epoch 2" in doc["advice"][0]


def test_longer_runs_are_still_smoothed():
    """A one-epoch dip on a 40-epoch run stays a spike, not the best epoch."""
    train = [1.0 * 0.9 ** e + 0.2 for e in range(40)]
    val = [1.0 * 0.9 ** e + 0.3 for e in range(40)]
    val[30] = 0.05  # one wild epoch
    d = diagnose(train, val, baseline=1.2)
    assert d.evidence["best_epoch"] != 31


def test_a_rise_that_falls_short_says_which_number_fell_short(tmp_path):
    """Without a baseline the first epoch's blown-up training loss (32.4) is the scale, so validation's rise is
    1.9 % of it: the summary said "did not clearly rise after its lowest value (1.9 % of the scale, 1.093e+07
    s.e.)", ten million standard errors read as a reason."""
    path = _history(tmp_path, "h.csv", train_loss=[32.4, 0.506, 0.553], val_loss=[0.8995, 0.6601, 1.2634])
    summary = _json([path])["summary"]
    assert "rose by only 1.9 % of the scale after its lowest value (a rise counts from 4.0 %)" in summary
    assert "did not clearly" not in summary and "s.e.)" not in summary


def test_a_flat_history_without_a_baseline_is_not_called_a_high_loss(tmp_path):
    """Curves flat at a cross-entropy of 0.05 from epoch 1 were "flat at a high loss" with the advice to add
    capacity: without a baseline the first epochs' level is taken as no skill, which the verdict now says, with
    --baseline as the way to tell; given the baseline, the same curves are a good fit."""
    train = [0.050 + 0.001 * ((7 * e) % 5 - 2) for e in range(30)]
    val = [0.060 + 0.001 * ((3 * e) % 5 - 2) for e in range(30)]
    path = _history(tmp_path, "flat.csv", train_loss=train, val_loss=val)
    doc = _json([path])
    assert doc["label"] == "underfit_capacity"
    assert "high loss" not in doc["summary"] and "taken as no skill without a baseline" in doc["summary"]
    assert "--baseline" in doc["advice"][0] and "ln K" in doc["advice"][0]
    assert _json([path, "--baseline", "1.1"])["label"] == "good_fit"


def test_a_flat_run_with_a_baseline_keeps_its_advice():
    d = diagnose([0.69] * 20, [0.69] * 20, baseline=0.69)
    assert d.label == "underfit_capacity" and d.advice[0].startswith("Increase model capacity")
    assert "high loss" in d.summary


def test_regression_learning_curve_names_rmse_in_capitals(tmp_path):
    """The answers said "validation rmse improves by ..." and the caption "no-skill rmse"; diagnose and the table
    header say RMSE."""
    df = make_table("regression", n_patients=20, per_patient=2, n_features=4)
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    args = ["diagnose", "--learning-curve", str(path), "--hidden", "4", "--epochs", "3", "--fractions", "0.5,1"]
    res = run([*args, "--json", "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert "validation RMSE" in doc["more_data"]["text"] and "rmse" not in doc["more_data"]["text"]
    assert "training RMSE" in doc["bias_variance"]["text"]
    res = run([*args, "-q"])
    assert res.exit_code == 0 and "no-skill RMSE" in res.stdout and "rmse" not in res.stdout


def test_the_kept_epoch_is_said_beside_the_evidence_best_epoch(tmp_path):
    """The panel's best_epoch row (the first epoch within the noise of the best) read 1 while `--json`'s best_epoch
    (the epoch whose weights train kept) read 9, with nothing saying the two differ; both now name the kept one."""
    val = [0.95, 0.97, 0.84, 0.79, 1.02, 0.74, 1.09, 0.74, 0.72, 0.81, 0.85, 0.91]
    train = [1.13, 0.35, 0.21, 0.21, 0.26, 0.32, 0.34, 0.24, 0.26, 0.23, 0.23, 0.21]
    path = _history(tmp_path, "h.csv", train_loss=train, val_loss=val, best_epoch=[1, 1, 3, 4, 4, 6, 6, 6, 9, 9, 9, 9])
    doc = _json([path, "--baseline", "1.255"])
    assert doc["kept_epoch"] == doc["best_epoch"] == 9 and doc["evidence"]["best_epoch"] != 9
    res = run(["diagnose", path, "--baseline", "1.255", "--no-chart"])
    assert res.exit_code == 0 and "weights kept from epoch 9" in res.stdout
    no_kept = _history(tmp_path, "plain.csv", train_loss=train, val_loss=val)
    assert _json([no_kept])["kept_epoch"] is None


def test_the_stopped_early_caveat_applies_to_a_variance_verdict_too():
    """At the largest size the run was still improving and the answer was "Mostly variance", yet the caveat
    said to train longer "before reading bias from it"."""
    from mlpcli.model_selection.learning_curve import SizePoint, _bias_variance

    point = SizePoint(fraction=1, n_train=488, n_groups=159, train_score=0.925, val_score=0.79, train_loss=0.38,
                      val_loss=0.51, baseline_val_loss=1.25, best_epoch=10, epochs_run=10, seconds=0,
                      curve_label="underfit_stopped_early")
    out = _bias_variance([point], True, 0.25, 0.75, "balanced_accuracy")
    assert out["verdict"] == "variance" and "before reading bias or variance" in out["caveat"]
