"""A multi-label table with a rare label: its means over labels must be over the same labels, resample by resample
and fold by fold, or say that they are not (a resample without the rare label's positives averaged the others and
lifted the interval's upper end)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import run
from tables import make_table

LABELS = "lab0,lab1,lab2,rare"


@pytest.fixture(scope="module")
def rare_label(tmp_path_factory):
    d = tmp_path_factory.mktemp("rare_label")
    table = make_table("multilabel", n_patients=60, per_patient=2, n_features=10, seed=3)
    patients = table["patient_id"].str[1:].astype(int)
    table["rare"] = patients.isin([3, 41]).astype(int)  # two patients' samples: 4 of 120
    table.loc[table["rare"] == 1, "f05"] += 3.0
    table.to_csv(d / "t.csv", index=False)
    res = run(["train", str(d / "t.csv"), "--target", LABELS, "--folds", "1", "--epochs", "20", "--hidden", "8", "-q",
               "-o", str(d / "m.mlp")])
    assert res.exit_code == 0, res.output
    return d


def test_cv_names_the_folds_whose_test_rows_lack_a_labels_positives(rare_label):
    res = run(["cv", str(rare_label / "t.csv"), "--target", LABELS, "--folds", "5", "--epochs", "5", "--hidden", "4",
               "-q", "--json"])
    assert res.exit_code == 0, res.output
    warned = [w for w in json.loads(res.stdout)["warnings"] if "hold one value only of a label" in w]
    assert len(warned) == 1 and "'rare'" in warned[0], res.stdout  # two patients: at most two folds hold it


def test_evaluate_bootstraps_over_the_tables_labels(rare_label):
    res = run(["evaluate", str(rare_label / "m.mlp"), str(rare_label / "t.csv"), "--bootstrap", "300", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    said = [n for n in doc["notes"] if "resamples lacked both values of some label" in n]
    assert len(said) == 1, doc["notes"]
    lacking = int(said[0].split("bootstrap: ")[1].split(" of ")[0])
    # two patients of 60 hold the rare label: a resample of 60 misses both with chance (58/60)^60 ~ 13 %
    assert 0.04 * 300 < lacking < 0.3 * 300
    low, high = doc["ci"]["balanced_accuracy"]
    assert low <= doc["metrics"]["balanced_accuracy"] <= high


def test_evaluate_names_a_multilabel_ece_as_info_does(rare_label):
    """evaluate's table called a multi-label model's ECE "top-label", which it is not (it bins every
    sample-label call, each at max(p, 1 - p)); `info` of the same model said "every label call"."""
    res = run(["evaluate", str(rare_label / "m.mlp"), str(rare_label / "t.csv"), "-q"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "ECE (every label call)" in res.output and "top-label" not in res.output, res.output


def test_a_label_of_one_patient_is_a_warning_in_train_and_cv(tmp_path):
    table = make_table("multilabel", n_patients=30, per_patient=3, n_features=8, seed=6)
    table["solo"] = (table["patient_id"] == "P000").astype(int)
    table.to_csv(tmp_path / "t.csv", index=False)
    for command in (["train", "--folds", "1", "-o", str(tmp_path / "m.mlp")], ["cv", "--folds", "3"]):
        res = run([command[0], str(tmp_path / "t.csv"), "--target", "lab0,lab1,lab2,solo", "--epochs", "3",
                   "--hidden", "4", "-q", "--json", *command[1:]])
        assert res.exit_code == 0, res.output
        said = [w for w in json.loads(res.stdout)["warnings"] if "all come from one patient_id" in w]
        assert len(said) == 1 and "'solo' (positives: patient_id 'P000')" in said[0], res.stdout


def test_evaluate_names_every_target_with_missing_values(tmp_path):
    table = make_table("multilabel", n_patients=20, per_patient=2, n_features=6, seed=7)
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run(["train", str(tmp_path / "t.csv"), "--target", "lab0,lab1,lab2", "--folds", "1", "--epochs", "2",
                "--hidden", "4", "-q", "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    gaps = table.astype({"lab0": "float64", "lab2": "float64"})
    gaps.loc[5, "lab2"] = np.nan
    gaps.loc[9, "lab0"] = np.nan
    gaps.to_csv(tmp_path / "gaps.csv", index=False)
    res = run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "gaps.csv")])
    assert res.exit_code == 1 and "the target 'lab2' has missing values" in res.output and "the first at row 6" in res.output, res.output
    assert "(and 'lab0' too)" in res.output


@pytest.fixture(scope="module")
def two_targets(tmp_path_factory):
    d = tmp_path_factory.mktemp("two_targets")
    table = make_table("regression", n_patients=60, per_patient=2, n_features=6, seed=2).drop(columns=["label"])
    table["growth"] = 3.0 * table["f00"] + 10.0
    table["dose"] = -2.0 * table["f01"] + 50.0
    table.to_csv(d / "t.csv", index=False)
    res = run(["train", str(d / "t.csv"), "--target", "growth,dose", "--folds", "1", "--epochs", "60", "--hidden", "8",
               "-q", "-o", str(d / "m.mlp")])
    assert res.exit_code == 0, res.output
    return d, table


def test_evaluate_says_when_target_columns_seem_swapped_or_in_other_units(two_targets):
    d, table = two_targets
    renamed = table.rename(columns={"growth": "g", "dose": "x"})
    renamed.to_csv(d / "renamed.csv", index=False)
    good = json.loads(run(["evaluate", str(d / "m.mlp"), str(d / "renamed.csv"), "--target", "g,x", "--json"]).stdout)
    assert not [w for w in good["warnings"] if "read by position" in w or "far from the training target" in w]
    swapped = json.loads(run(["evaluate", str(d / "m.mlp"), str(d / "renamed.csv"), "--target", "x,g",
                              "--json"]).stdout)
    said = [w for w in swapped["warnings"] if "read by position" in w]
    assert len(said) == 1 and "the predictions of 'growth' fit the column read as 'dose' ('g'" in said[0], said
    months = table.assign(growth=table["growth"] * 12)  # another unit
    months.to_csv(d / "months.csv", index=False)
    far = [w for w in json.loads(run(["evaluate", str(d / "m.mlp"), str(d / "months.csv"), "--json"]).stdout)["warnings"]
           if "far from the training target" in w]
    assert len(far) == 1 and far[0].startswith("the truth of 'growth'"), far


def test_each_labels_calls_are_reported_beside_its_ranking(rare_label):
    from sklearn.metrics import f1_score, precision_score, recall_score
    import pandas as pd

    d = rare_label
    res = run(["evaluate", str(d / "m.mlp"), str(d / "t.csv"), "--json"])
    rows = {r["label"]: r for r in json.loads(res.stdout)["metrics"]["per_label"]}
    assert run(["predict", str(d / "m.mlp"), str(d / "t.csv"), "-o", str(d / "p.csv"), "-q"]).exit_code == 0
    truth, calls = pd.read_csv(d / "t.csv"), pd.read_csv(d / "p.csv")
    for label in LABELS.split(","):
        y, p = truth[label].to_numpy(), calls[f"pred_{label}"].to_numpy()
        assert rows[label]["called"] == int(p.sum())
        assert rows[label]["recall"] == pytest.approx(recall_score(y, p))
        if p.sum():
            assert rows[label]["precision"] == pytest.approx(precision_score(y, p))
        else:  # never called: no precision (None), where scikit-learn says 0 with a warning
            assert rows[label]["precision"] is None
        assert rows[label]["f1"] == pytest.approx(f1_score(y, p))
    info = run(["info", str(d / "m.mlp")]).output
    assert "recall" in info and "called)" in info


def test_other_label_columns_left_among_the_features_are_named(tmp_path):
    table = make_table("multilabel", n_patients=30, per_patient=2, n_features=24, seed=4)
    table.to_csv(tmp_path / "t.csv", index=False)
    one = run(["train", str(tmp_path / "t.csv"), "--target", "lab0", "--folds", "1", "--epochs", "2", "--hidden", "4",
               "--json", "-o", str(tmp_path / "m.mlp")])
    said = [w for w in json.loads(one.stdout)["warnings"] if "hold only 0 and 1 among continuous ones" in w]
    assert len(said) == 1 and "('lab1', 'lab2')" in said[0], one.stdout
    every = run(["train", str(tmp_path / "t.csv"), "--target", "lab0,lab1,lab2", "--folds", "1", "--epochs", "2",
                 "--hidden", "4", "--json", "-o", str(tmp_path / "m.mlp")])
    assert not [w for w in json.loads(every.stdout)["warnings"] if "only 0 and 1" in w]


def test_zero_one_columns_are_found_among_missing_values_and_across_column_blocks():
    """``binary_among_continuous`` on a matrix: a 0/1 column with missing values is named, and neither a column of
    missing values only, one of 1s only, one of 0, 1 and 2, nor one of 0 and 0.5 is; the blocks of candidate columns
    it tests (``block_columns``) change nothing, and more than its maximum of 0/1 columns is no warning."""
    from types import SimpleNamespace

    from mlpcli.data.missingness import BINARY_AMONG_CONTINUOUS_MAX, binary_among_continuous

    rng = np.random.default_rng(0)
    X = rng.lognormal(size=(50, 300))
    X[:, 3] = rng.integers(0, 2, 50)
    X[::7, 3] = np.nan
    X[:, 4] = np.nan
    X[:, 5] = 1.0
    X[:, 6] = rng.integers(0, 3, 50)
    X[:, 7] = rng.integers(0, 2, 50) / 2
    X[:, 250] = rng.integers(0, 2, 50)
    X[0, 250], X[1, 250] = 0.0, 1.0
    ds = SimpleNamespace(X=X, feature_names=[f"g{j}" for j in range(300)])
    said = [binary_among_continuous(ds, block_columns=width) for width in (1, 2, 256)]
    assert said[0] == said[1] == said[2] and "2 feature columns of the 300" in said[0] and "('g3', 'g250')" in said[0]
    from mlpcli.data.row_view import RowView  # the rows of a larger table, as ``Dataset.subset`` holds them

    larger = np.vstack([X, rng.lognormal(size=(30, 300))])
    rows = SimpleNamespace(X=RowView.of(larger, np.arange(50)), feature_names=ds.feature_names)
    assert binary_among_continuous(rows, block_columns=64) == said[0]
    many = X.copy()
    many[:, 10:11 + BINARY_AMONG_CONTINUOUS_MAX] = rng.integers(0, 2, (50, BINARY_AMONG_CONTINUOUS_MAX + 1))
    assert binary_among_continuous(SimpleNamespace(X=many, feature_names=ds.feature_names)) is None


def test_a_column_holding_one_value_per_class_is_named_as_a_copy_of_the_target(tmp_path):
    """A copy of a binary target coded 1 and 2 (or case/control as 0/1 in a table of 12 features) trained without a
    word: only 0/1 columns among 20 features or more were named. A column of one value per class, another for each,
    is named once, with its code; a marker that merely separates well is not."""
    table = make_table("binary", n_patients=30, per_patient=2, n_features=12, seed=4)
    classes = sorted(table["label"].unique())
    table["code"] = (table["label"] == classes[1]).astype(float) + 1
    table["marker"] = table["code"] + np.random.default_rng(0).normal(0, 0.01, len(table))
    table.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--folds", "1", "--epochs", "2", "--hidden", "4", "--json",
               "-o", str(tmp_path / "m.mlp")])
    said = [w for w in json.loads(res.stdout)["warnings"] if "one value per class" in w]
    assert len(said) == 1 and "('code')" in said[0] and "marker" not in said[0], res.stdout
    assert f"1 for {classes[0]!r}, 2 for {classes[1]!r}" in said[0]
