"""`train`'s held-out estimate, cross-fitted: each part of a member's held-out rows is scored at the early-stopping
epoch and by the architecture the other parts chose (``model_selection.crossed``), so that the luck of a choice on the
rows it was made on does not lift the estimate."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, metrics
from mlpcli.config import TrainOptions
from mlpcli.model_selection.crossfit import fit_model
from mlpcli.model_selection.splits import crossing_parts
from mlpcli.training import FitConfig, fit
from mlpcli.early_stopping import CrossedStopping

from cli_helpers import run


def _dataset(frame: pd.DataFrame, **roles) -> data.Dataset:
    r, _ = data.resolve_roles(frame.columns, **roles)
    return data.Dataset.from_frame(frame, r)


def _random_labels(seed: int, n: int = 160, d: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(200 + seed)
    frame = pd.DataFrame(rng.normal(size=(n, d)), columns=[f"g{i}" for i in range(d)])
    frame.insert(0, "label", rng.permutation(["a", "b"] * (n // 2)))
    return frame


def test_on_random_labels_the_estimate_stays_at_chance_where_the_choices_on_its_rows_lifted_it():
    """Six tables of random labels: the members' own out-of-fold predictions (each early-stopped on the rows it
    scores) read 0.529 balanced accuracy on average; the cross-fitted estimate 0.493."""
    own, crossed = [], []
    for seed in range(6):
        ds = _dataset(_random_labels(seed), no_group=True)
        fitted = fit_model(ds, TrainOptions(no_group=True, epochs=30, seed=seed))
        y = fitted.scored.y

        def score(proba, labels):
            return metrics.compute("binary", y, proba, ds.classes, predicted=labels)["balanced_accuracy"]

        own.append(score(fitted.proba, fitted.model.predict_classes(fitted.proba)))
        crossed.append(score(fitted.estimate.proba, fitted.estimate.predicted))
        assert fitted.estimate.crossed_epochs == ds.n_samples  # every member held out several parts
    assert np.mean(crossed) < np.mean(own) - 0.015, (own, crossed)
    assert abs(np.mean(crossed) - 0.5) < 0.03, crossed


def test_train_reports_the_cross_fitted_estimate_and_writes_it_to_oof(tmp_path):
    frame = _random_labels(2)
    frame.to_csv(tmp_path / "null.csv", index=False)
    oof = tmp_path / "oof.csv"
    res = run(["train", str(tmp_path / "null.csv"), "--no-group", "--epochs", "30", "--seed", "2", "-o",
               str(tmp_path / "m.mlp"), "--oof", str(oof), "--json", "-q"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    said = [n for n in doc["notes"] if "estimate cross-fitted" in n]
    assert said and "the early-stopping epoch" in said[0], doc["notes"]
    held = pd.read_csv(oof)
    truth = (held["label"] == "b").to_numpy().astype(int)
    called = (held["pred_label"] == "b").to_numpy().astype(int)
    recall = [np.mean(called[truth == c] == c) for c in (0, 1)]
    reported = doc["validation_metrics"]["balanced_accuracy"]
    assert np.mean(recall) == pytest.approx(reported, abs=1e-9)  # the file holds what the summary scored


def test_crossing_parts_keep_a_patient_whole_and_spread_each_class():
    rng = np.random.default_rng(0)
    patients = np.repeat([f"P{i}" for i in range(40)], rng.integers(1, 5, 40))
    label = {p: c for p, c in zip(np.unique(patients), rng.permutation(["x", "y"] * 20))}
    frame = pd.DataFrame({"label": [label[p] for p in patients], "patient_id": patients,
                          "g0": rng.normal(size=len(patients))})
    ds = _dataset(frame)
    held = [np.arange(0, len(patients), 2), np.arange(1, len(patients), 4)]  # rows 3, 7, ... in no fold
    parts = crossing_parts(ds, held, 4, seed=3)
    assert set(np.unique(parts[held[0]])) == {0, 1, 2, 3}
    outside = np.setdiff1d(np.arange(len(patients)), np.concatenate(held))
    assert (parts[outside] == -1).all()
    for rows in held:
        for p in np.unique(patients[rows]):  # a patient's rows of a fold in one part
            assert len(set(parts[rows][patients[rows] == p])) == 1
        for c in (0, 1):  # each class in every part, about evenly
            counts = np.bincount(parts[rows][np.asarray(ds.y)[rows] == c], minlength=4)
            assert counts.max() - counts.min() <= 4, counts
    assert (crossing_parts(ds, held, 4, seed=3) == parts).all()
    assert not (crossing_parts(ds, held, 4, seed=4) == parts).all()
    one = crossing_parts(ds, [np.flatnonzero(patients == "P0")], 4)  # one patient: one part
    assert len(np.unique(one[patients == "P0"])) == 1


def test_crossed_stopping_scores_each_part_at_the_epoch_the_others_chose():
    parts = np.array([0, 0, 1, 1, 2, 2])
    crossing = CrossedStopping(parts)
    # the loss outside each part, epoch by epoch: outside part 0 lowest at epoch 1, outside 1 at 2, outside 2 at 3
    for epoch, losses in enumerate([(0.5, 0.9, 0.9), (0.6, 0.4, 0.8), (0.7, 0.5, 0.3)], start=1):
        crossing.update(epoch, losses, np.full((6, 2), float(epoch)))
    assert crossing.epochs == [1, 2, 3]
    out = crossing.outputs()
    assert (out[:, 0] == [1, 1, 2, 2, 3, 3]).all()

    class MeanOf:  # the mean of the rows' outputs as a loss: the rows outside each part
        @staticmethod
        def forward(outputs, y, w):
            return float(np.mean(outputs))

    values = np.arange(6.0)[:, None]
    assert crossing.losses(MeanOf, values, np.zeros(6), None) == pytest.approx((3.5, 2.5, 1.5))


def test_parts_of_identical_rows_choose_the_epoch_early_stopping_keeps():
    """Two parts, each a copy of the same validation rows: each finds the run's own best epoch, and the crossed
    outputs are the restored network's."""
    from mlpcli.engine import MLP
    from mlpcli.engine.losses import CrossEntropy

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(np.int64)
    X_val, y_val = np.vstack([X[:40], X[:40]]), np.concatenate([y[:40], y[:40]])
    net = MLP(6, [16], 2, seed=0)
    result = fit(net, CrossEntropy(), X[40:], y[40:], X_val, y_val,
                 FitConfig(epochs=40, patience=10, lr=0.05, batch_size=32, seed=0),
                 val_parts=np.repeat([0, 1], 40))
    assert result.crossed_epochs == (result.best_epoch, result.best_epoch)
    assert result.crossed_outputs == pytest.approx(net.forward(X_val.astype(net.dtype)), rel=1e-5, abs=1e-6)
    assert "crossed_outputs" not in result.to_dict()
    plain = fit(MLP(6, [16], 2, seed=0), CrossEntropy(), X[40:], y[40:], X_val, y_val,
                FitConfig(epochs=5, seed=0))
    assert plain.crossed_outputs is None and plain.crossed_epochs is None


def test_metrics_count_labels_given_in_place_of_the_rule():
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.9, 0.8, 0.7, 0.6])  # every row called positive at 0.5
    assert metrics.compute("binary", y, proba, ["a", "b"])["balanced_accuracy"] == 0.5
    given = metrics.compute("binary", y, proba, ["a", "b"], predicted=np.array([0, 0, 1, 1]))
    assert given["balanced_accuracy"] == 1.0 and given["roc_auc"] == 0.0  # the ranking is the probabilities'
    P = np.array([[0.6, 0.4], [0.6, 0.4], [0.6, 0.4], [0.4, 0.6]])
    assert metrics.compute("multiclass", y, P, ["a", "b"], predicted=np.array([0, 0, 1, 1]))["accuracy"] == 1.0


def test_members_of_one_patient_each_say_their_estimate_is_not_cross_fitted(tmp_path):
    """Five patients, five folds: no member has other held-out rows to choose its epoch on; the summary says so."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 6))
    frame = pd.DataFrame(X, columns=[f"g{i}" for i in range(6)])
    frame["label"] = np.where(X[:, 0] > 0, "x", "y")
    frame["patient_id"] = np.repeat([f"P{i}" for i in range(5)], 6)
    frame.to_csv(tmp_path / "few.csv", index=False)
    res = run(["train", str(tmp_path / "few.csv"), "--folds", "5", "--epochs", "10", "-o", str(tmp_path / "m.mlp"),
               "--json", "-q"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert any(n.startswith("out-of-fold estimate not cross-fitted: each member held out a single patient")
               for n in notes), notes
    assert not any("estimate cross-fitted" in n for n in notes)


def test_one_network_crosses_its_validation_rows(tmp_path):
    _random_labels(3).to_csv(tmp_path / "null.csv", index=False)
    res = run(["train", str(tmp_path / "null.csv"), "--no-group", "--folds", "1", "--epochs", "20", "-o",
               str(tmp_path / "m.mlp"), "--json", "-q"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert any(n.startswith("validation estimate cross-fitted: the validation rows cut in 4 parts") for n in notes), notes


def test_crossing_parts_of_single_samples_deal_each_class_evenly():
    """Without patients every unit is one row: each class's rows, and the parts' totals, differ by one at most."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"label": rng.choice(["a", "b", "c"], 203, p=[0.6, 0.3, 0.1]), "g0": rng.normal(size=203)})
    ds = _dataset(frame, no_group=True)
    held = [np.arange(0, 203, 2), np.arange(1, 203, 2)]
    parts = crossing_parts(ds, held, 4, seed=0)
    for rows in held:
        totals = np.bincount(parts[rows], minlength=4)
        assert totals.max() - totals.min() <= 1, totals
        for c in range(3):
            counts = np.bincount(parts[rows][np.asarray(ds.y)[rows] == c], minlength=4)
            assert counts.max() - counts.min() <= 1, (c, counts)


def test_the_note_names_only_what_was_chosen_and_kept():
    from mlpcli.model_selection.crossed import CrossedEstimate

    est = CrossedEstimate(proba=np.zeros((8, 1)), predicted=None, parts=np.repeat([0, 1, 2, 3], 2), chosen=(0,) * 4,
                          crossed_epochs=8)
    regression = est.words("out-of-fold", 2, early_stopped=True, grouped=False, calibrated=False, decided=False)
    assert "at the early-stopping epoch and by the architecture the other parts chose" in regression
    assert "patient" not in regression and "temperature" not in regression and "balanced accuracy" not in regression
    lbfgs = est.words("out-of-fold", 2, early_stopped=False, grouped=True)
    assert "each scored by the architecture the other parts chose" in lbfgs and "(a patient in one)" in lbfgs
    assert est.words("out-of-fold", 1, early_stopped=False) is None  # nothing was chosen on the held-out rows
    binary = est.words("validation", 1, calibrated=True, decided=True)
    assert binary.startswith("validation estimate cross-fitted: the validation rows cut in up to 4 parts (a patient in one)")
    assert "(the temperature and the decision rule, fitted on all the rows, are the model's)" in binary
    assert "reads a little low on average" in binary
