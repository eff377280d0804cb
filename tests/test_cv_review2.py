"""`mlpcli cv`, second review: help worded for every task, a rare class refused before any fit with the fold
named, leave-batch-out for regression targets, and the patients that tie batches into one fold."""

import json

import pytest

from mlpcli import data
from mlpcli.model_selection import cross_validation, splits
from tables import make_table
from cli_helpers import run, assert_clean_error

FAST = ["--hidden", "4", "--epochs", "3", "--patience", "3", "--member-folds", "1", "--quiet"]


def _rare_table(tmp_path, rare_patients=("P000", "P003", "P006")):
    """24 patients of 2 samples; the class 'rare' lives in ``rare_patients`` only."""
    df = make_table("multiclass", n_patients=24, per_patient=2, n_features=4, seed=1)
    df.loc[df["patient_id"].isin(rare_patients), "label"] = "rare"
    path = tmp_path / "rare.csv"
    df.to_csv(path, index=False)
    return str(path)


def test_cv_help_does_not_promise_stratification_or_coverage_to_every_task():
    """`cv --help` said "grouped, stratified K-fold" and "StratifiedGroupKFold" for every target, and that
    --leave-batch-out reports coverage and OOD rates: regression folds are not stratified and get neither."""
    out = " ".join(run(["cv", "--help"]).output.split())  # unwrapped
    assert "stratified for class targets" in out and "GroupKFold for regression" in out
    assert "stratified by class for class targets" in out  # --folds
    assert "(classifiers: also prediction" in out
    assert "for classifiers, the calibration" in out
    assert "grouped, stratified" not in " ".join(run(["--help"]).output.split())  # the command list's summary


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
