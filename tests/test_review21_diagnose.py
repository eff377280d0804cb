"""Review 21 of learning-curve diagnosis, by use: an underfit_capacity verdict whose curves say capacity is not
what is missing (a short run still learning; a network that fits noisy labels) must not advise more capacity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import run
from mlpcli.diagnosis import diagnose

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


def test_keras_csv_logger_table_is_read(tmp_path):
    """Keras's CSVLogger writes epoch,loss,val_loss (from epoch 0): its 'loss' is the training loss. That was
    "has no 'train_loss' column" although the README says Keras's epoch numbering is read."""
    t = np.arange(40)
    train = 0.3 + 0.4 * np.exp(-t / 8)
    val = train + 0.02
    keras = tmp_path / "keras_log.csv"
    keras.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n"
                     + "".join(f"{i},0.9,{a},0.9,{b}\n" for i, (a, b) in enumerate(zip(train, val))))
    ours = tmp_path / "history.csv"
    ours.write_text("epoch,train_loss,val_loss\n" + "".join(f"{i + 1},{a},{b}\n" for i, (a, b) in
                                                            enumerate(zip(train, val))))
    res = run(["diagnose", str(keras), "--json"])
    assert res.exit_code == 0, res.output
    doc, same = json.loads(res.stdout), json.loads(run(["diagnose", str(ours), "--json"]).stdout)
    assert doc["label"] == same["label"] and doc["evidence"] == same["evidence"]
    assert any("'loss' as the training loss" in n for n in doc["notes"])
    # a table with neither is still an error naming what it has
    bad = tmp_path / "bad.csv"
    bad.write_text("epoch,loss\n0,0.5\n1,0.4\n2,0.3\n")
    res = run(["diagnose", str(bad)])
    assert res.exit_code == 1 and "has no 'train_loss' or 'val_loss' column" in res.output


def test_learning_curve_names_fractions_below_one_percent(tmp_path):
    """--fractions 0.125,1 showed 12.5 % as "12%" (whole percents: 0.001 was "0%"), and one size as "1 sizes"."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    label = np.where(X[:, 0] + X[:, 1] > 0, "A", "B")
    table = tmp_path / "t.csv"
    table.write_text("label," + ",".join(f"g{j}" for j in range(4)) + "\n"
                     + "".join(f"{c}," + ",".join(f"{v:.4f}" for v in row) + "\n" for c, row in zip(label, X)))
    res = run(["diagnose", "--learning-curve", str(table), "--no-group", "--epochs", "3",
               "--fractions", "0.125,1"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "training at 2 sizes (12.5%, 100%)" in res.output
    assert "12.5% of the training groups" in res.output and "│ 12.5% │" in res.output
    one = run(["diagnose", "--learning-curve", str(table), "--no-group", "--epochs", "3", "--fractions", "1"])
    assert one.exit_code == 0 and "training at 1 size (100%)" in one.output
