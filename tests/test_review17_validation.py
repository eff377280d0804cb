"""Review 17, honest validation: grouped CV against leaks, folds isolated, repeats, out-of-fold rows, metric
definitions against scikit-learn, and tune's grid notes (settings that train one model, a grid of one)."""

import json
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mlpcli import data, metrics
from mlpcli.config import TrainOptions
from mlpcli.errors import DataError
from mlpcli.model_selection import fit_model, kfold
from mlpcli.model_selection import cross_validation as cv
from mlpcli.model_selection import tuning
from cli_helpers import run

OPTIONS = TrainOptions(hidden=[8], epochs=6, patience=3, folds=1)


def signature_table(n_patients=24, per_patient=4, n_features=12, seed=0) -> pd.DataFrame:
    """Each patient's samples share a strong private signature; the label is drawn per patient at random."""
    rng = np.random.default_rng(seed)
    rows = []
    labels = np.array(["A", "B"] * (n_patients // 2))
    rng.shuffle(labels)
    for p in range(n_patients):
        signature = rng.normal(0, 3, n_features)
        for s in range(per_patient):
            x = signature + rng.normal(0, 0.3, n_features)
            rows.append({"sample_id": f"P{p}_{s}", "patient_id": f"P{p}", "label": labels[p],
                         **{f"g{j}": x[j] for j in range(n_features)}})
    return pd.DataFrame(rows)


def dataset(df, no_group=False):
    roles, _ = data.resolve_roles(df.columns, target="label", no_group=no_group,
                                  drop=["patient_id"] if no_group else [])
    return data.Dataset.from_frame(df, roles)


def test_grouped_cv_stays_near_chance_where_split_samples_leak_the_patient():
    df = signature_table()
    options = replace(OPTIONS, hidden=[32], epochs=30, patience=30, lr=1e-2)
    grouped = cv.cross_validate(dataset(df), options, folds=4).summary()["balanced_accuracy"]["mean"]
    leaky = cv.cross_validate(dataset(df, no_group=True), options, folds=4).summary()["balanced_accuracy"]["mean"]
    assert grouped < 0.65 and leaky > 0.75  # 0.33 and 0.83 with seed 0


def test_fold_models_are_fitted_on_the_training_part_alone_and_oof_rows_are_theirs():
    ds = dataset(signature_table(n_patients=18, per_patient=2, seed=1))
    result = cv.cross_validate(ds, OPTIONS, folds=3, repeats=2, keep_predictions=True)
    folds, _ = kfold(ds, 3, 2, OPTIONS.seed)
    # the same folds as kfold with the seed, different ones in the second repeat
    assert [sorted(f.test) for f in folds] == [sorted(s.test_rows) for s in result.folds]
    assert sorted(folds[0].test) != sorted(folds[3].test)
    # each fold's predictions are those of a model trained on its training rows only (preprocessing included)
    for f, s in zip(folds, result.folds):
        model = fit_model(ds.subset(f.train), replace(OPTIONS, seed=OPTIONS.seed + f.repeat),
                          folds_flag="--member-folds").model
        np.testing.assert_array_equal(model.predict_output(ds.subset(f.test).X), s.proba)
    oof = result.oof_frame(ds)
    assert len(oof) == 2 * len(ds.y) and oof.groupby("repeat")["sample_id"].nunique().tolist() == [36, 36]
    # mean ± SD over the 6 fold scores (sample SD), and each fold's score recomputed from the oof rows
    scores = [s.score for s in result.folds]
    summary = result.summary()["balanced_accuracy"]
    assert summary["mean"] == pytest.approx(np.mean(scores)) and summary["sd"] == pytest.approx(np.std(scores, ddof=1))
    for (r, k), part in oof.groupby(["repeat", "fold"]):
        expected = skm.balanced_accuracy_score(part["label"], part["pred_label"])
        assert result.folds[(r - 1) * 3 + k - 1].score == pytest.approx(expected)


def test_a_class_with_fewer_patients_than_folds_is_a_clear_error():
    df = signature_table(n_patients=24, per_patient=2, seed=2)
    df.loc[df.patient_id.isin(["P0", "P1"]), "label"] = "R"
    with pytest.raises(DataError, match=r"--folds 5: class 'R' has 2 group"):
        cv.cross_validate(dataset(df), OPTIONS, folds=5)


# ── metrics against scikit-learn ─────────────────────────────────────────────────────────────────────────


def test_multiclass_metrics_match_sklearn_with_a_class_never_predicted():
    y = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    P = np.array([[.7, .2, .1], [.6, .3, .1], [.2, .7, .1], [.3, .6, .1], [.5, .4, .1], [.1, .8, .1],
                  [.9, .05, .05], [.4, .5, .1]])
    m = metrics.compute("multiclass", y, P, ["a", "b", "c"])
    pred = P.argmax(axis=1)
    assert 2 not in pred
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
        assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
        assert m["log_loss"] == pytest.approx(skm.log_loss(y, P))
        assert m["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, P, multi_class="ovr"))
    # multiclass Brier: summed over classes, 0 to 2
    assert m["brier"] == pytest.approx(np.mean(((np.eye(3)[y] - P) ** 2).sum(axis=1)))
    # top-label ECE, 15 equal-width bins
    conf, correct = P.max(axis=1), (pred == y)
    bins = np.minimum((conf * 15).astype(int), 14)
    expected = sum((bins == b).mean() * abs(correct[bins == b].mean() - conf[bins == b].mean())
                   for b in np.unique(bins))
    assert m["ece"] == pytest.approx(expected)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_single_class_fold_leaves_mcc_and_auc_undefined_and_keeps_the_rest(task):
    y = np.array([1, 1, 1])
    P = np.array([[.2, .7, .1], [.6, .3, .1], [.1, .1, .8]]) if task == "multiclass" else np.array([[.2], [.7], [.9]])
    m = metrics.compute(task, y, P, ["a", "b", "c"][: 3 if task == "multiclass" else 2])
    assert m["mcc"] is None and m.get("roc_auc", m.get("roc_auc_ovr")) is None
    pred = P.argmax(axis=1) if task == "multiclass" else (P[:, 0] >= 0.5).astype(int)
    assert m["balanced_accuracy"] == pytest.approx(np.mean(pred == 1))


# ── tune: what the grid does not tune ────────────────────────────────────────────────────────────────────


def test_settings_an_optimizer_ignores_are_said_to_train_one_model_and_counted_once():
    points = [(i, {"optimizer": o, "momentum": m}) for i, (o, m) in
              enumerate([("adam", 0.5), ("adam", 0.9), ("sgd", 0.5), ("sgd", 0.9)])]
    notes = tuning.grid_notes(points)
    assert len(notes) == 1 and notes[0].startswith("1 of 4 settings trains the same networks")
    assert "momentum applies to optimizer=sgd only" in notes[0]
    scored = [tuning.PointResult(index=i, setting=s, scores=[0.5], mean=0.5, sd=0.0) for i, s in points]
    assert tuning.chosen_among(scored) == 3
    assert tuning.grid_notes([(0, {"lr": 0.1}), (1, {"lr": 0.01})]) == []


def test_a_grid_of_one_setting_says_nothing_is_chosen_and_how_to_list_hidden_values(tmp_path):
    path = tmp_path / "t.csv"
    signature_table(n_patients=12, per_patient=2).to_csv(path, index=False)
    result = run(["tune", str(path), "--grid", "hidden=8,4", "--folds", "2", "--epochs", "2", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    note = [n for n in doc["notes"] if "one setting" in n]
    assert note and "hidden=8,4 is one network of 2 hidden layers" in note[0] and "hidden=8|4" in note[0]
    assert not any("optimistic" in n for n in doc["notes"])


def test_info_describes_what_tune_refit_chose(tmp_path):
    """`tune --refit` stored the grid, the setting and its scores in the model, and neither `info` nor `info --json`
    showed them."""
    from cli_helpers import run
    from tables import make_table

    path = tmp_path / "t.csv"
    make_table("multiclass", n_patients=20, per_patient=2, n_features=12, seed=5).to_csv(path, index=False)
    model = tmp_path / "tuned.mlp"
    res = run(["tune", str(path), "--grid", "lr=0.001,0.01", "--folds", "2", "--refit", "-o", str(model), "-q",
               "--epochs", "3", "--hidden", "4"])
    assert res.exit_code == 0, res.output
    doc = json.loads(run(["info", str(model), "--json"]).stdout)
    tuning = doc["tuning"]
    assert tuning["grid"] == {"lr": [0.001, 0.01]} and tuning["setting"]["lr"] in (0.001, 0.01)
    text = " ".join(run(["info", str(model)]).output.split())
    assert f"chose lr={tuning['setting']['lr']:g} (" in text.replace("│ ", "")
    assert "optimistic: the best of 2 on the same folds" in text.replace("│ ", "")
