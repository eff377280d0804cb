"""Proteomics and metabolomics tables: values missing below a detection limit (--impute min), missingness that
follows the class or the batch (a network learns from whether a value was measured), a label confounded with the
batch, which `train` now says as `cv` did, and technical replicates named after their sample without a patient
column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlpcli.data.missingness import tied_missingness
from mlpcli.data.preprocess import PreprocessConfig, Preprocessor
from cli_helpers import run
from tables import make_table


def test_missingness_tied_to_a_group_is_found_and_random_missingness_is_not():
    rng = np.random.default_rng(0)
    n = 300
    y = np.repeat([0, 1, 2], n // 3)
    X = rng.normal(size=(n, 4))
    X[y == 1, 0] = np.nan  # missing in every sample of class 1, never elsewhere
    X[rng.random(n) < 0.2, 1] = np.nan  # missing at random
    X[(y == 2) & (rng.random(n) < 0.5), 2] = np.nan  # half of class 2: a tie, weaker
    missing = np.isnan(X).sum(axis=0)
    tied = tied_missingness(X, missing, y, ["f0", "f1", "f2", "f3"], ["a", "b", "c"])
    assert [t.name for t in tied] == ["f0", "f2"]  # strongest first; f1 (at random) and f3 (none) are not
    assert tied[0].group == "b" and tied[0].share == 1.0 and tied[0].others == 0.0 and tied[0].v == pytest.approx(1.0)
    assert tied[1].group == "c" and 0.3 < tied[1].share < 0.7
    assert tied_missingness(X, np.zeros(4), y, ["f0", "f1", "f2", "f3"]) == []  # no missing values: nothing read


def test_chance_missingness_in_small_groups_is_not_a_tie():
    # the chi-square's p means nothing at expected counts near 0: one NaN in a batch of 3 read V 0.57, and
    # missingness at random over 100 batches of ~3 samples flagged 53 features
    rng = np.random.default_rng(1)
    for n, d, k, rate in ((300, 2000, 100, 0.02), (200, 2000, 40, 0.01), (120, 500, 3, 0.005)):
        X = rng.normal(size=(n, d)).astype(np.float32)
        X[rng.random((n, d)) < rate] = np.nan
        assert tied_missingness(X, np.isnan(X).sum(axis=0), rng.integers(0, k, n), [f"g{j}" for j in range(d)]) == []
    X = rng.normal(size=(120, 10))
    groups = np.repeat([0, 1, 2], [58, 59, 3])
    X[119, 0] = np.nan  # one NaN, in the batch of three
    assert tied_missingness(X, np.isnan(X).sum(axis=0), groups, [f"g{j}" for j in range(10)]) == []


@pytest.fixture(scope="module")
def proteins(tmp_path_factory):
    """A 3-class table of log2 intensities with values missing below a per-sample detection limit, one feature
    missing in every 'typeB' sample, one missing in the whole of batch B2, and batches tied to the classes in a
    second table."""
    d = tmp_path_factory.mktemp("proteins")
    table = make_table("multiclass", n_patients=60, per_patient=2, n_features=30, seed=4, signal=1.5)
    features = [c for c in table.columns if c.startswith("f")]
    rng = np.random.default_rng(4)
    values = table[features].to_numpy() + 20.0  # log2 intensities
    limit = rng.normal(19.0, 0.3, size=(len(table), 1))  # below the sample's detection limit: not measured
    values[values < limit] = np.nan
    table[features] = values
    table.loc[table.label == "typeB", "f29"] = np.nan
    table.loc[table.batch == "B2", "f28"] = np.nan
    table.to_csv(d / "proteins.csv", index=False)
    confounded = make_table("multiclass", n_patients=60, per_patient=2, n_features=10, seed=5)
    confounded["batch"] = confounded["label"].map({"typeA": "B1", "typeB": "B2", "typeC": "B3"})
    confounded.to_csv(d / "confounded.csv", index=False)
    return d


def _train(path, *args):
    res = run(["train", str(path), "--epochs", "5", "--hidden", "8", "--folds", "1", "--json", "-o",
               str(path.parent / "m.mlp"), *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_train_says_which_features_missingness_follows_the_class_and_the_batch(proteins):
    warnings = _train(proteins / "proteins.csv", "--impute", "min")["warnings"]
    by_class = [w for w in warnings if w.startswith("whether a value is missing follows the class")]
    assert len(by_class) == 1 and "'f29' missing in 100% of 'typeB'" in by_class[0], warnings
    by_batch = [w for w in warnings if w.startswith("whether a value is missing follows 'batch'")]
    assert len(by_batch) == 1 and "'f28' missing in 100% of 'B2'" in by_batch[0], warnings
    # without the two, below-detection missingness (every class alike) is no warning
    quiet = _train(proteins / "proteins.csv", "--impute", "min", "--drop", "f28,f29")["warnings"]
    assert not [w for w in quiet if w.startswith("whether a value is missing")], quiet


def test_train_warns_of_a_label_confounded_with_the_batch_as_cv_does(proteins):
    warnings = _train(proteins / "confounded.csv")["warnings"]
    said = [w for w in warnings if w.startswith("the label is confounded with 'batch'")]
    assert len(said) == 1 and "`mlpcli cv --leave-batch-out`" in said[0], warnings
    assert not [w for w in _train(proteins / "proteins.csv", "--impute", "min")["warnings"] if "confounded" in w]


def test_impute_min_fills_with_the_smallest_training_value():
    X = np.array([[3.0, 1.0], [np.nan, 2.0], [5.0, np.nan], [4.0, 7.0]])
    pre = Preprocessor(PreprocessConfig(impute="min")).fit(X, ["a", "b"])
    assert pre.impute_values_.tolist() == [3.0, 1.0]
    # sparse: the implicit zeros are values too, so a column holding one has 0 as its smallest
    S = sp.csr_matrix(np.array([[3.0, 1.0], [np.nan, 0.0], [5.0, np.nan], [4.0, 7.0]]))
    pre = Preprocessor(PreprocessConfig(impute="min")).fit(S, ["a", "b"])
    assert pre.impute_values_.tolist() == [3.0, 0.0]


def test_impute_min_reaches_the_model_and_predict(proteins, tmp_path):
    table = pd.read_csv(proteins / "proteins.csv").drop(columns=["f28", "f29"])
    table.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--impute", "min", "--no-log1p", "--epochs", "3", "--hidden", "4",
               "--folds", "1", "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    info = json.loads(run(["info", str(tmp_path / "m.mlp"), "--json"]).stdout)
    assert "min" in json.dumps(info)
    pred = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv"), "-q"])
    assert pred.exit_code == 0, pred.output
    assert pd.read_csv(tmp_path / "p.csv").notna().all().all()


def test_replicate_ids_without_a_patient_column_are_named(tmp_path):
    table = make_table("multiclass", n_patients=30, per_patient=2, n_features=8, seed=2).drop(columns=["patient_id"])
    table["sample_id"] = [f"PT{i // 2:03d}_R{i % 2 + 1}" for i in range(len(table))]
    table.to_csv(tmp_path / "t.csv", index=False)
    warnings = _train(tmp_path / "t.csv")["warnings"]
    said = [w for w in warnings if "samples are treated as independent" in w]
    assert len(said) == 1 and "the ids look like replicates of fewer samples (60 of 60" in said[0], warnings
    assert "'PT000_R1', 'PT000_R2'" in said[0]
    from mlpcli.data.dataset import replicate_ids_hint

    for plain in ([f"Tumor{i}" for i in range(1, 41)], [f"cell_{i}" for i in range(40)], [f"GSM{1000 + i}" for i in
                  range(40)], [f"TCGA-AB-{i:04d}-01A" for i in range(40)], [f"AAAC{i:04d}-1" for i in range(40)]):
        assert replicate_ids_hint(plain) == "", plain  # numbered ids, not replicates: one stem of all, or none
    assert "'S1_1', 'S1_2' of 'S1'" in replicate_ids_hint([f"S{i}_{r}" for i in range(1, 15) for r in (1, 2)])
    table["sample_id"] = [f"S{i:04d}" for i in range(len(table))]  # plain ids: the warning as before
    table.to_csv(tmp_path / "t.csv", index=False)
    plain = [w for w in _train(tmp_path / "t.csv")["warnings"] if "samples are treated as independent" in w]
    assert len(plain) == 1 and "replicates" not in plain[0]


def test_predict_says_when_zeros_stand_where_training_had_missing_values(proteins, tmp_path):
    table = pd.read_csv(proteins / "proteins.csv").drop(columns=["f28", "f29"])
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run(["train", str(tmp_path / "t.csv"), "--impute", "min", "--epochs", "3", "--hidden", "4", "--folds", "1",
                "-q", "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    zeros = table.fillna(0.0)  # a lab writing "not detected" as 0
    zeros.to_csv(tmp_path / "zeros.csv", index=False)
    res = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "zeros.csv"), "-o", str(tmp_path / "p.csv"),
               "--json"])
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if "never 0 in training" in w and "--impute" in w]
    assert len(said) == 1 and "write those cells as missing" in said[0], res.stdout
    # the same warning, naming the same features, however the table is read: whole, or in pieces of 10 rows (the
    # share of zeros was counted in the first piece only, and read 0 in every later row of every feature)
    pieces = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "zeros.csv"), "-o", str(tmp_path / "p.csv"),
                  "--json", "--chunksize", "10"])
    assert [w for w in json.loads(pieces.stdout)["warnings"] if "never 0 in training" in w] == said
    for chunks in ([], ["--chunksize", "10"]):
        same = run(["predict", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "-o", str(tmp_path / "p.csv"),
                    "--json", *chunks])
        assert not [w for w in json.loads(same.stdout)["warnings"] if "never 0 in training" in w and "--impute" in w]


def test_features_without_a_value_are_one_warning_for_the_members_and_the_folds(tmp_path):
    table = make_table("multiclass", n_patients=40, per_patient=2, n_features=12, seed=8)
    table.loc[table.index[2:], ["f10", "f11"]] = np.nan  # measured in one patient only: none in the member holding it out
    table.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--impute", "median", "--epochs", "3", "--hidden", "4", "--json",
               "-o", str(tmp_path / "m.mlp")])
    warnings = json.loads(res.stdout)["warnings"]
    said = [w for w in warnings if "have no values on" in w]
    assert len(said) == 1 and "per member" in said[0] and "'f10'" in said[0], warnings
    constant = [w for w in warnings if "constant on the training rows" in w]
    assert all("'f10'" not in w or "per member" in w for w in constant)  # only where a member had a value of it
    res = run(["cv", str(tmp_path / "t.csv"), "--impute", "median", "--epochs", "3", "--hidden", "4", "--folds", "3",
               "-q", "--json"])
    lines = [w for w in json.loads(res.stdout)["warnings"] if "have no values on" in w]
    assert len(lines) == 1, lines  # one line, naming the other folds, not one per fold


def test_a_batch_on_another_scale_is_named_and_an_offset_is_not(tmp_path):
    table = make_table("multiclass", n_patients=45, per_patient=2, n_features=20, seed=9)
    features = [c for c in table.columns if c.startswith("f")]
    table[features] = table[features] + 20.0  # log2 intensities
    offset = table.copy()
    offset.loc[offset.batch == "B2", features] += 1.5  # an ordinary batch effect: the spread is the same
    offset.to_csv(tmp_path / "offset.csv", index=False)
    assert not [w for w in _train(tmp_path / "offset.csv")["warnings"] if "another scale" in w]
    raw = table.copy()
    raw.loc[raw.batch == "B3", features] = 2.0 ** raw.loc[raw.batch == "B3", features]  # one run's raw values
    raw.to_csv(tmp_path / "raw.csv", index=False)
    said = [w for w in _train(tmp_path / "raw.csv")["warnings"] if "another scale" in w]
    assert len(said) == 1 and said[0].startswith("batch 'B3' (20 of 20 features higher"), said
