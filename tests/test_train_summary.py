"""What `train` says about its held-out figures: how many samples they rest on and how far one sample moves them,
each regression target's figures, class weights, a model that calls every sample the majority class, validation
tables shifted like a batch, and copies of one sample in two patients."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, pipeline, rough_metrics
from mlpcli.config import TrainOptions
from cli_helpers import run, table_cells, table_rows
from tables import make_table


FAST = ["--epochs", "3", "--hidden", "4", "--n-jobs", "1"]


def _flat(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def _write(tmp_path, frame: pd.DataFrame, name: str = "t.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


# ── how many samples the held-out metrics rest on ──────────────────────────────────────────────────────────


@pytest.mark.parametrize("task, y, classes, words", [
    ("binary", [0] * 10 + [1] * 2, ["A", "B"], "class 'B' (2 held out) more or less right moves the balanced "
                                                "accuracy by 0.250"),
    ("multiclass", [0, 1, 2] * 4, ["x", "y", "z"], "by 0.083"),
    ("binary", [0] * 250 + [1] * 5, ["ctrl", "case"], "class 'case' (5 held out)"),  # 1:50: rough however many
    ("binary", [0, 1] * 40, ["A", "B"], None),  # 40 of each: one sample moves it by 0.0125
    ("regression", [[0.5]] * 12, ["age"], "vary widely"),
    ("regression", [[0.5]] * 40, ["age"], None),
], ids=["rare-class-of-2", "twelve-samples-3-classes", "imbalanced-1-to-50", "eighty-balanced", "regression-12",
        "regression-40"])
def test_the_caveat_says_how_far_one_sample_moves_the_balanced_accuracy(task, y, classes, words):
    caveat = rough_metrics.held_out_caveat(task, np.array(y), classes)
    if words is None:
        assert caveat is None
    else:
        assert caveat is not None and words in caveat, caveat


def test_the_caveat_counts_patients_whose_samples_go_together():
    """15 cells of a type from 2 donors: counting cells said nothing, but one donor's cells, called right or wrong
    together, move the balanced accuracy of 9 types by about 0.06."""
    y = np.repeat(np.arange(9), [120] * 8 + [15])
    groups = np.concatenate([np.arange(960) // 4, 1000 + np.arange(15) // 8])  # the last class: 2 donors (8 + 7)
    caveat = rough_metrics.held_out_caveat("multiclass", y, [f"t{i}" for i in range(9)], groups)
    assert caveat == (f"one patient of class 't8' (2 patients, 15 samples held out) more or less right moves the "
                      f"balanced accuracy by {8 / 15 / 9:.3f}")
    assert rough_metrics.held_out_caveat("multiclass", y, [f"t{i}" for i in range(9)]) is None  # by samples: 1 / 135
    many = np.arange(len(y))  # a patient per sample: the samples' own figure
    assert rough_metrics.held_out_caveat("multiclass", y, [f"t{i}" for i in range(9)], many) is None


def test_multilabel_caveat_names_the_rarer_side_of_a_label():
    Y = np.array([[1, 0]] * 3 + [[0, 1]] * 37)  # label a: 3 positives of 40
    caveat = rough_metrics.held_out_caveat("multilabel", Y, ["a", "b"])
    assert caveat is not None and "one positive sample of label 'a' (3 held out)" in caveat
    assert f"{1 / (2 * 2 * 3):.3f}" in caveat


def test_a_tiny_table_shows_the_held_out_count_and_caveat_in_summary_json_and_library(tmp_path):
    """Twelve samples printed "balanced accuracy 0.667, ROC AUC 0.667, ..." with no count and nothing to say that
    one sample more or less right moved it by 0.083."""
    data = _write(tmp_path, make_table("binary", n_patients=12, per_patient=1))
    res = run(["train", data, *FAST, "--folds", "2", "-q", "-o", str(tmp_path / "m.mlp")], terminal_width=250)
    assert res.exit_code == 0, res.output
    text = _flat(res.stdout)
    assert "out-of-fold samples 12; rough: one sample of class" in text, text
    assert "moves the balanced accuracy by 0.083" in text  # 6 of each class, 2 classes: 1 / (2 × 6)
    res = run(["train", data, *FAST, "--folds", "2", "--json", "-o", str(tmp_path / "m.mlp")])
    doc = json.loads(res.stdout)
    assert doc["metrics_caveat"] and "0.083" in doc["metrics_caveat"]
    assert any(n.startswith("rough held-out metrics: 12 out-of-fold samples") for n in doc["notes"]), doc["notes"]
    outcome = pipeline.train(data, TrainOptions(epochs=2, hidden=[4], folds=2))
    assert outcome.metrics_caveat == doc["metrics_caveat"]


# ── regression: the target named, each target's figures, the loss's units ────────────────────────────────


def _regression_frame(n: int = 40) -> pd.DataFrame:
    df = make_table("regression", n_patients=n, per_patient=1)
    df["dose_mg"] = df["label"] * 100.0  # another target in other units
    return df


def test_regression_summary_names_the_target_and_says_the_loss_is_standardised(tmp_path):
    """It printed "regression (1 outputs)", and "validation loss 0.78 ... baseline 0.65" beside an RMSE of 3.47,
    with nothing to say the loss is the standardised target's."""
    data = _write(tmp_path, _regression_frame())
    res = run(["train", data, *FAST, "--folds", "2", "-q", "-o", str(tmp_path / "m.mlp")], terminal_width=250)
    assert res.exit_code == 0, res.output
    text = _flat(res.stdout)
    assert "regression (target label)" in text and "outputs" not in text, text
    assert "mse (half the squared error) of the standardised target, not in its units" in text


def test_several_regression_targets_show_each_targets_figures(tmp_path):
    """Two targets in different units gave one pooled RMSE (mixing mg and years) and "Pearson r —"."""
    data = _write(tmp_path, _regression_frame())
    model = tmp_path / "m.mlp"
    res = run(["train", data, "--target", "label,dose_mg", *FAST, "--folds", "2", "-q", "-o", str(model)],
              terminal_width=250)
    assert res.exit_code == 0, res.output
    text = _flat(res.stdout)
    assert "regression (2 targets: label, dose_mg)" in text, text
    assert "Pearson r —" not in text and "pooled over the 2 targets' units" in text
    rows = table_rows(res.stdout)
    assert rows["label"].startswith("RMSE ") and rows["dose_mg"].startswith("RMSE "), rows
    assert float(rows["dose_mg"].split()[1].rstrip(",")) > 10 * float(rows["label"].split()[1].rstrip(","))
    info = run(["info", str(model)], terminal_width=250)
    assert "pooled over the 2 targets' units" in _flat(info.stdout)


# ── class weights: the validation loss, info and --json ─────────────────────────────────────────────────


def test_class_weights_are_said_in_the_summary_info_and_json(tmp_path):
    """With --class-weight balanced the validation loss (weighted) sat beside the log loss (not) unexplained, and
    `info` said "loss bce": nothing in the model's description showed it had been trained with class weights."""
    df = make_table("binary", n_patients=30, per_patient=1)
    df = pd.concat([df[df.label == "ctrl"], df[df.label == "case"].head(5)])  # 15 : 5
    data = _write(tmp_path, df)
    model = tmp_path / "m.mlp"
    res = run(["train", data, *FAST, "--folds", "2", "--class-weight", "balanced", "-q", "-o", str(model)],
              terminal_width=250)
    assert res.exit_code == 0, res.output
    text = _flat(res.stdout)
    assert "loss bce (class weights balanced)" in text, text
    assert "weighted by class as in training, unlike the log loss below" in text
    assert "loss bce (class weights balanced)" in _flat(run(["info", str(model)], terminal_width=250).stdout)
    doc = json.loads(run(["info", str(model), "--json"]).stdout)
    assert doc["network"]["loss_words"] == "bce (class weights balanced)"


def test_train_json_carries_the_network_the_summary_shows(tmp_path):
    """`train --json` had no architecture: which network --hidden auto chose was only in the rendered summary."""
    data = _write(tmp_path, make_table("multiclass", n_patients=18, per_patient=1, n_features=6))
    model = tmp_path / "m.mlp"
    res = run(["train", data, "--epochs", "2", "--hidden", "5", "--folds", "2", "--n-jobs", "1", "--json",
               "-o", str(model)])
    doc = json.loads(res.stdout)
    assert doc["network"]["layers"] == [6, 5, 3] and doc["network"]["members"] == 2
    assert doc["positive_class"] is None and doc["network"]["loss_words"] == "ce"
    assert doc["network"] == json.loads(run(["info", str(model), "--json"]).stdout)["network"]


def test_multilabel_split_table_counts_positives_per_label(tmp_path):
    data = _write(tmp_path, make_table("multilabel", n_patients=16, per_patient=1))
    res = run(["train", data, "--target", "lab0,lab1,lab2", *FAST, "--folds", "2", "-q", "-o",
               str(tmp_path / "m.mlp")], terminal_width=250)
    assert res.exit_code == 0, res.output
    text = _flat(res.stdout)
    assert "label lab0 (positives)" in text and "class lab0" not in text
    assert "multilabel (3 labels)" in text


# ── the same sample twice under two ids ─────────────────────────────────────────────────────────────────


def _with_copies(same_patient: bool) -> pd.DataFrame:
    df = make_table("binary", n_patients=16, per_patient=1)
    copies = df.iloc[[0, 1]].copy()
    copies["sample_id"] = ["GSM_copy0", "GSM_copy1"]
    if not same_patient:
        copies["patient_id"] = ["P900", "P901"]
    return pd.concat([df, copies], ignore_index=True)


def test_identical_samples_in_different_patients_draw_a_warning_naming_them(tmp_path):
    """A sample deposited twice (two ids, two patient codes) trained with no word: one copy held out while the
    other trains inflates the out-of-fold metrics."""
    data = _write(tmp_path, _with_copies(same_patient=False))
    ds, _ = pipeline.load_dataset(data, TrainOptions())
    twins = [w for w in ds.warnings if "repeat another sample's feature values exactly" in w]
    assert len(twins) == 1 and "2 samples" in twins[0] and "'GSM_copy0' = 'S0000'" in twins[0], ds.warnings
    assert "in another patient_id" in twins[0] and "optimistic" in twins[0]
    res = run(["train", data, *FAST, "--folds", "2", "-q", "-o", str(tmp_path / "m.mlp")])  # -q keeps warnings
    assert res.exit_code == 0 and "'GSM_copy0' = 'S0000'" in res.stderr, res.stderr


def test_copies_within_one_patient_or_distinct_rows_draw_no_warning(tmp_path):
    """Technical replicates of one patient never straddle a grouped split: nothing to say."""
    ds, _ = pipeline.load_dataset(_write(tmp_path, _with_copies(same_patient=True)), TrainOptions())
    assert not any("feature values exactly" in w for w in ds.warnings), ds.warnings
    X = np.arange(48, dtype=np.float32).reshape(4, 12)
    assert data.twin_rows(np.zeros((3, 12))) == [] and data.twin_rows(np.ones((3, 2))) == []
    assert data.twin_rows(X) == []
    X[3] = X[1]
    X64 = X.astype(np.float64)
    X64[[1, 3], 0] = np.nan  # a missing value in the same place is the same row
    assert data.twin_rows(X) == [(1, 3)] and data.twin_rows(X64) == [(1, 3)]
    assert data.twin_rows(X, groups=np.array(["a", "b", "c", "b"])) == []


def test_train_shows_each_targets_mae(tmp_path):
    df = make_table("regression", seed=1, n_patients=20, n_features=6)
    df["other"] = df["label"] * 1000.0 + 5.0
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    res = run(["train", str(path), "--target", "label,other", "--hidden", "8", "--epochs", "4", "--folds", "1",
               "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    rows = [cells for cells in map(table_cells, res.output.splitlines()) if cells[0] in ("other", "label")]
    assert len(rows) == 2 and all("MAE" in r[1] for r in rows), res.output


def test_the_summary_gives_each_classs_held_out_recall(tmp_path):
    """A class of 6 samples recalled for 3 read as balanced accuracy 0.813 and nothing else: its recall was in
    --json only."""
    table = make_table("multiclass", n_patients=60, per_patient=2, n_classes=3, seed=2)
    data = _write(tmp_path, table)
    res = run(["train", data, *FAST, "--folds", "2", "-o", str(tmp_path / "m.mlp")], terminal_width=300)
    assert res.exit_code == 0, res.output
    doc = json.loads(run(["train", data, *FAST, "--folds", "2", "--json", "-o", str(tmp_path / "m.mlp")]).stdout)
    rows = doc["validation_metrics"]["per_class"]
    expected = ", ".join(f"{r['class']} {r['recall']:.3f} ({r['support']})" for r in rows)
    assert f"out-of-fold recall {expected}" in _flat(res.stdout), _flat(res.stdout)
    info = run(["info", str(tmp_path / "m.mlp")], terminal_width=300)  # the model keeps it (info --json: per_class)
    assert f"out-of-fold recall {expected}" in _flat(info.stdout)
    stored = json.loads(run(["info", str(tmp_path / "m.mlp"), "--json"]).stdout)["held_out"]["per_class"]
    assert [r["recall"] for r in stored] == [r["recall"] for r in rows]
    many = _write(tmp_path, make_table("multiclass", n_patients=70, per_patient=2, n_classes=14, n_features=16,
                                       seed=2), "t14.csv")
    res = run(["train", many, *FAST, "--folds", "2", "-o", str(tmp_path / "m14.mlp")], terminal_width=400)
    line = next(l for l in res.stdout.splitlines() if "out-of-fold recall" in l)
    assert "the 12 lowest of 14 classes (--json: all)" in line and line.count("(10)") == 12
