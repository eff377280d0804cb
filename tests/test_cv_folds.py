"""How `cv` makes and checks its folds: rare classes refused before any fit with the fold named, leave-batch-out
for every task and the patients that tie batches into one fold, repeats, fold errors named by fold, grouped
folds against patient leaks, and metric definitions against scikit-learn's on awkward folds."""

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
from mlpcli.model_selection import cross_validation, fit_model, kfold, splits
from mlpcli.model_selection import cross_validation as cv
from cli_helpers import assert_clean_error, run
from tables import make_table


FAST = ["--hidden", "4", "--epochs", "3", "--patience", "3", "--member-folds", "1", "--quiet"]


def _rare_table(tmp_path, rare_patients=("P000", "P003", "P006")):
    """24 patients of 2 samples; the class 'rare' lives in ``rare_patients`` only."""
    df = make_table("multiclass", n_patients=24, per_patient=2, n_features=4, seed=1)
    df.loc[df["patient_id"].isin(rare_patients), "label"] = "rare"
    path = tmp_path / "rare.csv"
    df.to_csv(path, index=False)
    return str(path)


def test_a_class_with_one_patient_left_in_a_folds_training_part_is_refused_before_any_fit(tmp_path, monkeypatch):
    """'rare' in 3 patients, --folds 2: a test fold takes 2 of them and leaves 1 to train on, which the fold's
    early-stopping split cannot place on both sides. It failed inside the fit with "class 'rare' has 2 samples,
    all from 1 group" (the user's table has 3), naming neither the fold nor a fix."""
    path = _rare_table(tmp_path)

    def no_fit(*args, **kwargs):
        raise AssertionError("a fold was fitted before the folds were checked")

    monkeypatch.setattr(cross_validation, "fit_and_score", no_fit)
    res = run(["cv", path, "--folds", "2", *FAST])
    assert_clean_error(res, "fold 1: class 'rare' has 1 group in 'patient_id' in the fold's training part (of its 3)",
                       "use --folds 3", code=1)


def test_with_enough_folds_the_rare_class_trains_in_every_fold(tmp_path):
    path = _rare_table(tmp_path)
    res = run(["cv", path, "--folds", "3", "--json", *FAST])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)["per_fold"]) == 3


def test_a_class_of_two_patients_cannot_be_cross_validated_and_no_more_folds_are_suggested(tmp_path):
    res = run(["cv", _rare_table(tmp_path, ("P000", "P003")), "--folds", "2", *FAST])
    assert_clean_error(res, "class 'rare' has 1 group", "(of its 2)", "merge the class or leave its samples out")
    assert "use --folds" not in res.output


def test_leave_batch_out_on_a_regression_target_compares_with_the_inner_score(tmp_path):
    """For classifiers leave-batch-out printed each fold model's out-of-fold score on its training batches and the
    "new-batch forecast" beside it; a regression got neither (the inner score was computed with the coverage
    only), so the comparison the option is for was missing."""
    df = make_table("regression", n_patients=30, per_patient=2, n_features=4)
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    res = run(["cv", str(path), "--leave-batch-out", "--json", *FAST])
    assert res.exit_code == 0, res.output
    folds = json.loads(res.stdout)["per_fold"]
    assert len(folds) == 3 and all(f["inner_score"] is not None and "trust" not in f for f in folds)
    res = run(["cv", str(path), "--leave-batch-out", *FAST])
    assert res.exit_code == 0, res.output
    assert "inner OOF" in res.stdout and "cov@" not in res.stdout
    forecast = next(line for line in res.stdout.splitlines() if line.startswith("new-batch forecast"))
    # RMSE: worse is higher, not "a drop"
    assert "higher on held-out batches means a new site will fare worse" in forecast and "drop" not in forecast
    assert "on a grouped validation split within the training batches" in forecast  # --member-folds 1: no OOF


def test_leave_batch_out_names_the_patients_that_tie_batches_together(tmp_path):
    """A patient with samples in B1 and B2 makes one fold of both: the strategy said "1 of them hold several
    batches" and nothing said which patient did it (often a mislabelled sample, or a missing batch read as 'NA')."""
    df = make_table("multiclass", n_patients=30, per_patient=2, n_features=4)
    first = df.index[df["batch"] == "B1"][0]
    spanning = df.loc[first, "patient_id"]
    df.loc[first, "batch"] = "B2"
    if (df.loc[df["patient_id"] == spanning, "batch"] == "B2").all():  # its other sample must stay in B1
        df.loc[df.index[(df["patient_id"] == spanning)][1], "batch"] = "B1"
    path = tmp_path / "span.csv"
    df.to_csv(path, index=False)
    roles, _ = data.resolve_roles(df.columns, target="label")
    ds = data.Dataset.from_frame(df, roles)
    folds, strategy = splits.leave_batch_out(ds)
    assert [f.held_out for f in folds] == ["B1+B2", "B3"]
    assert "1 of them holds several batches" in strategy
    assert splits.batch_spanning_groups(ds) == [(spanning, ["B1", "B2"])]
    res = run(["cv", str(path), "--leave-batch-out", *FAST[:-1]])
    assert res.exit_code == 0, res.output
    assert f"1 group has samples in several batches, so those batches are held out together (patient_id: " \
           f"'{spanning}' (B1, B2))" in res.stderr


@pytest.mark.parametrize("held_out", ["B3"])
def test_leave_batch_out_refuses_a_class_left_with_one_patient_in_the_training_batches(tmp_path, held_out):
    """A class with all but one patient in one batch: holding that batch out leaves one patient to train on."""
    df = make_table("multiclass", n_patients=30, per_patient=2, n_features=4)
    patients = df.loc[df["label"] == "typeA", "patient_id"].unique()
    df.loc[df["patient_id"].isin(patients[1:]), "batch"] = held_out
    df.loc[df["patient_id"] == patients[0], "batch"] = "B1"
    path = tmp_path / "lbo.csv"
    df.to_csv(path, index=False)
    res = run(["cv", str(path), "--leave-batch-out", *FAST])
    assert_clean_error(res, f"held-out batch {held_out}: class 'typeA' has 1 group", "merge the class")


def test_fold_warnings_about_several_classes_speak_of_them_in_the_plural(tmp_path):
    """"classes 'typeA', 'typeB' have no training rows ...; the fold's model cannot predict it, so its samples" and
    "classes ... are absent from the test rows; the metrics there do not cover it"."""
    df = make_table("multiclass", n_patients=30, per_patient=2, n_features=4)
    df["batch"] = df["label"].map({"typeA": "b1", "typeB": "b1", "typeC": "b2"})
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    res = run(["cv", str(path), "--leave-batch-out", *FAST])
    assert res.exit_code == 0, res.output
    err = " ".join(res.stderr.split())
    assert ("fold 1 (held-out batch b1): classes 'typeA', 'typeB' have no training rows (only in the held-out part); "
            "the fold's model cannot predict them, so their samples there all count as errors") in err
    assert "classes 'typeA', 'typeB' are absent from the test rows; the metrics there do not cover them" in err
    assert "class 'typeC' is absent from the test rows; the metrics there do not cover it" in err
    # a held-out batch of one class: its balanced accuracy, averaged into the mean, is that class's recall
    assert ("fold 2 (held-out batch b2): classes 'typeA', 'typeB' are absent from the test rows; the metrics there do "
            "not cover them (its balanced accuracy is the recall of class 'typeC' alone)") in err


def test_cv_oof_columns_of_one_name_are_refused_before_any_fit(tmp_path, monkeypatch):
    """An id column named `fold` would have lost its ids to the fold numbers in `cv --oof`."""
    from tables import make_table

    def no_fit(*args, **kwargs):
        raise AssertionError("a fold was fitted before the --oof columns were checked")

    monkeypatch.setattr(cross_validation, "fit_and_score", no_fit)
    path = tmp_path / "t.csv"
    make_table(n_patients=20, per_patient=2, n_features=6).rename(columns={"sample_id": "fold"}).to_csv(path, index=False)
    res = run(["cv", str(path), "--id", "fold", "--folds", "2", "--epochs", "2", "--oof", str(tmp_path / "o.csv")])
    assert_clean_error(res, "--oof", "'fold'", code=2)
    assert not (tmp_path / "o.csv").exists()


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


def test_a_grid_of_one_setting_says_nothing_is_chosen_and_how_to_list_hidden_values(tmp_path):
    path = tmp_path / "t.csv"
    signature_table(n_patients=12, per_patient=2).to_csv(path, index=False)
    result = run(["tune", str(path), "--grid", "hidden=8,4", "--folds", "2", "--epochs", "2", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert "the grid holds one setting, so nothing is chosen: its score is its cross-validated estimate" in doc["notes"]
    assert ('--grid hidden=8,4: one setting, hidden layers 8 and 4 ("|" separates settings: hidden=8|4)'
            in doc["notes"])
    assert not any("optimistic" in n for n in doc["notes"])


def test_fold_advice_names_only_counts_that_work(tmp_path):
    """"use --folds 2 or fewer" for a class of two patients in cv led to the next error (each fold's model holds
    some of every class out again, so its training part needs two of them); a one-patient table was told
    "use --folds 1 or fewer", which a grouped split refuses."""
    from tables import make_table

    table = make_table("multiclass", n_patients=30, per_patient=2, n_features=6, seed=3)
    table.loc[table["patient_id"].isin(["P000", "P001"]), "label"] = "R"  # 4 samples of 2 patients
    table.to_csv(tmp_path / "rare.csv", index=False)
    res = run(["cv", str(tmp_path / "rare.csv"), "--hidden", "4", "--epochs", "2", "--folds", "5"])
    assert_clean_error(res, "class 'R' has 2 group(s)", "merge the class")
    assert "use --folds" not in res.output
    table.loc[table["patient_id"] == "P002", "label"] = "R"  # 3 patients: 3 folds leave 2 in each training part
    table.to_csv(tmp_path / "rare3.csv", index=False)
    res = run(["cv", str(tmp_path / "rare3.csv"), "--hidden", "4", "--epochs", "2", "--folds", "5"])
    assert_clean_error(res, "class 'R' has 3 group(s)", "use --folds 3 or fewer")
    assert run(["cv", str(tmp_path / "rare3.csv"), "--hidden", "4", "--epochs", "2", "--folds", "3"]).exit_code == 0
    table["patient_id"] = "P1"
    table.to_csv(tmp_path / "one.csv", index=False)
    res = run(["train", str(tmp_path / "one.csv"), "--folds", "3", "--epochs", "2", "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "one group in 'patient_id'", "--no-group")
    assert "or fewer" not in res.output


def test_no_fold_count_is_suggested_that_a_rarer_class_refuses(tmp_path):
    """Classes of 3 and of 2 patients, --folds 2: the error named the class of 3 and said "use --folds 3", which the
    class of 2 then refused as "fewer than the folds" (120 cell types of 2-3 samples each went round that loop). It
    names the rarest class, and suggests no count that some class cannot take."""
    df = make_table("multiclass", n_patients=24, per_patient=2, n_features=4, seed=1)
    df.loc[df["patient_id"].isin(["P000", "P003", "P006"]), "label"] = "rare"
    df.loc[df["patient_id"].isin(["P001", "P004"]), "label"] = "z_rarer"
    path = tmp_path / "rarer.csv"
    df.to_csv(path, index=False)
    res = run(["cv", str(path), "--folds", "2", *FAST])
    assert_clean_error(res, "class 'z_rarer' has 1 group", "(of its 2)", "merge the class or leave its samples out")
    assert "use --folds" not in res.output
