"""Columns that identify the rows rather than measure them: a column of row numbers among the features (named
"id", pandas' index written as "index"), or a number column named as a role's column is (Batch, Patient_ID), is
warned about when training (the file's order, the batch or the patient then reads as a measurement); a text
column with a different value in every row, or named as a role's, is named in the "must be numeric" error with
its option."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlpcli import data
from mlpcli.errors import DataError
from cli_helpers import run
from tables import make_table


def _sorted_by_class(tmp_path, column: str, values) -> str:
    """The 60-row table sorted by its label, `column` first; sample_id dropped (no id column)."""
    df = make_table(task="binary", n_patients=20, n_features=5, seed=1).sort_values("label", kind="stable")
    df = df.drop(columns=["sample_id"]).reset_index(drop=True)
    df.insert(0, column, values if values is not None else np.arange(len(df)))
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    return str(path)


def _row_number_warnings(path: str, **kw) -> list[str]:
    ds, _notes = data.load_dataset(path, **kw)
    return [w for w in ds.warnings if "numbers the rows" in w or "number the rows" in w]


def test_a_column_of_row_numbers_is_named_with_both_remedies(tmp_path):
    path = _sorted_by_class(tmp_path, "id", None)
    [warning] = _row_number_warnings(path)
    assert "feature column 'id' numbers the rows (0 to 59, rising down the file, each value once)" in warning
    assert "--id id" in warning and "--drop id" in warning
    # numbered from 1 and in another order (a subset, a sort): the same
    path = _sorted_by_class(tmp_path, "index", np.random.default_rng(0).permutation(60) + 1)
    [warning] = _row_number_warnings(path)
    assert "'index' numbers the rows (1 to 60" in warning


def test_the_warning_reaches_train_and_names_the_column(tmp_path):
    path = _sorted_by_class(tmp_path, "id", None)
    res = run(["train", path, "--epochs", "2", "--folds", "2", "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "feature column 'id' numbers the rows" in res.output
    # given its role, it is no feature and no warning
    res = run(["train", path, "--id", "id", "--epochs", "2", "--folds", "2", "-q", "-o", str(tmp_path / "m2.mlp")])
    assert res.exit_code == 0 and "numbers the rows" not in res.output


@pytest.mark.parametrize("values, why", [
    (np.random.default_rng(5).permutation(60) * 2, "distinct integers, not consecutive, in no order"),
    (np.r_[np.arange(59), 0], "consecutive but one repeats"),
    (np.arange(60) + 0.5, "consecutive but not integers"),
])
def test_measured_integers_are_not_row_numbers(tmp_path, values, why):
    assert _row_number_warnings(_sorted_by_class(tmp_path, "counts", values)) == [], why


def test_a_small_table_is_not_judged(tmp_path):
    df = make_table(task="binary", n_patients=6, per_patient=3, n_features=4, seed=2).drop(columns=["sample_id"])
    df.insert(0, "id", np.arange(len(df)))  # 18 rows: a run of consecutive counts is possible by chance
    df.to_csv(tmp_path / "s.csv", index=False)
    assert _row_number_warnings(str(tmp_path / "s.csv")) == []


def test_prediction_tables_are_not_judged(tmp_path):
    """A model trained with the column needs it; the warning was the training's to give."""
    path = _sorted_by_class(tmp_path, "id", None)
    ds, _notes = data.load_dataset(path)
    frame = pd.read_csv(path)
    again = data.Dataset.from_frame(frame, ds.roles, classes=ds.classes)
    assert not [w for w in again.warnings if "numbers the rows" in w]


def test_a_text_column_of_distinct_values_is_named_as_the_id(tmp_path):
    df = make_table(task="binary", n_patients=20, n_features=5, seed=1).rename(columns={"sample_id": "ID"})
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"'ID' holds a different value in every row, as sample ids do .*"
                                        r"pass --id ID; "):
        data.load_dataset(tmp_path / "t.csv")
    res = run(["train", str(tmp_path / "t.csv"), "--id", "ID", "--epochs", "1", "--folds", "2", "-q",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    # a text column that repeats (a tissue) is no id: the error does not suggest one
    df = make_table(task="binary", n_patients=20, n_features=5, seed=1)
    df["tissue"] = np.where(np.arange(len(df)) % 2, "lung", "liver")
    df.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="must be numeric: 'tissue'") as info:
        data.load_dataset(tmp_path / "x.csv")
    assert "--id" not in str(info.value).split("pass them to --drop")[0]


@pytest.mark.parametrize("column, flag", [("Batch", "--batch"), ("Patient_ID", "--group"), ("subject", "--group"),
                                          ("Sample ID", "--id")])
def test_a_number_column_named_as_a_role_column_is_warned_about(tmp_path, column, flag):
    """A batch number confounded with the class in a column 'Batch' (not 'batch') was a feature without a word:
    out-of-fold balanced accuracy rose from 0.683 to 0.750 on the batch alone."""
    df = make_table(task="binary", n_patients=20, n_features=5, seed=1)
    df[column] = np.where(df["label"] == "case", 1, 2) + np.arange(len(df)) % 2 * 10  # not the row numbers
    df.to_csv(tmp_path / "t.csv", index=False)
    ds, _notes = data.load_dataset(tmp_path / "t.csv")
    [warning] = [w for w in ds.warnings if "named like a role's column" in w]
    assert f"{column!r} is named like a" in warning and f"pass {flag} " in warning
    res = run(["train", str(tmp_path / "t.csv"), "--epochs", "2", "--folds", "2", "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0 and "named like a role's column" in res.output
    # given its role (or dropped), no warning
    ds, _notes = data.load_dataset(tmp_path / "t.csv", drop=[column])
    assert not [w for w in ds.warnings if "named like a role's column" in w]


def test_a_text_column_named_as_a_role_column_is_named_in_the_error(tmp_path):
    df = make_table(task="binary", n_patients=20, n_features=5, seed=1).rename(columns={"patient_id": "Patient ID"})
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"'Patient ID' is named like a patient column \(--group\): "
                                        r"pass --group 'Patient ID'"):
        data.load_dataset(tmp_path / "t.csv")
    # grouped by another column on purpose (a coarser --group, the site): "pass --group 'Patient ID'" undid the choice
    df.assign(site=df["batch"]).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match=r"'Patient ID' is named like a patient column \(--group\), and --group is "
                                        r"'site': pass --drop 'Patient ID'"):
        data.load_dataset(tmp_path / "s.csv", group="site")


def test_a_filtered_then_reset_index_is_row_numbers_too(tmp_path):
    """A table sorted by class, some rows filtered out, then `reset_index()`: its 'index' (0 to 219 with gaps) was no
    warning, and the model read balanced accuracy 0.615 from features without signal (0.551 without it)."""
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(rng.normal(size=(220, 8)), columns=[f"G{i}" for i in range(8)])
    frame.insert(0, "label", np.repeat(["ctrl", "tumour"], 110))
    frame[rng.random(220) > 0.1].reset_index().to_csv(tmp_path / "t.csv", index=False)
    [warning] = _row_number_warnings(str(tmp_path / "t.csv"))
    assert "'index' numbers the rows (0 to 219, rising down the file, each value once)" in warning
    # a measured integer that only rises by chance in its first rows is no row number
    frame = make_table(task="binary", n_patients=20, n_features=5, seed=1).drop(columns=["sample_id"])
    counts = np.sort(rng.poisson(50, len(frame)))
    counts[-1] = counts[0]  # falls once: not monotone
    frame.insert(0, "reads", counts)
    frame.to_csv(tmp_path / "c.csv", index=False)
    assert _row_number_warnings(str(tmp_path / "c.csv")) == []
