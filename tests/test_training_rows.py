"""A model keeps fingerprints of its training rows (format 8): predict and evaluate say which samples it was
trained on, and evaluate gives the metrics on the others alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cli_helpers import assert_clean_error, assert_same_figures, run
from model_files import rewrite_model
from mlpcli import data, model_io
from mlpcli.data.copies import fingerprint_weights, kept_fingerprints, row_fingerprints
from tables import make_table

FAST = ["--epochs", "5", "--hidden", "8", "--folds", "2", "--seed", "1", "-q"]


# ── the fingerprints ─────────────────────────────────────────────────────────────────────────────────────


def test_a_row_gives_one_fingerprint_whatever_its_storage():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 25))
    X[X < 0.4] = 0.0  # sparse-like
    X[7, 3] = np.nan
    X[11] = X[4]
    got = row_fingerprints(X)
    assert got.dtype == np.uint64 and got.shape == (60,)
    assert np.array_equal(got, row_fingerprints(X.astype(np.float32)))  # compared at float32 precision
    assert np.array_equal(got, row_fingerprints(sp.csr_matrix(X)))  # zeros add nothing
    assert np.array_equal(got, row_fingerprints(np.asfortranarray(X)))
    assert got[11] == got[4] and len(np.unique(got)) == 59
    other_nan = X.copy()
    other_nan[7, 3] = np.float64(np.nan) * -1  # a NaN with another sign bit: still missing, still the same row
    assert np.array_equal(got, row_fingerprints(other_nan))
    moved = X.copy()
    moved[4, 0], moved[4, 1] = X[4, 1], X[4, 0]  # the same values in other columns: another row
    assert row_fingerprints(moved)[4] != got[4]


def test_kept_columns_alone_give_what_a_table_of_those_columns_gives():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 12))
    kept = np.array([0, 3, 4, 9])
    whole = kept_fingerprints(X, kept)
    assert np.array_equal(whole, row_fingerprints(X[:, kept], fingerprint_weights(12)[kept]))
    changed = X.copy()
    changed[:, 5] += 1.0  # a column the model does not use
    assert np.array_equal(kept_fingerprints(changed, kept), whole)
    assert np.array_equal(kept_fingerprints(sp.csr_matrix(X), kept), whole)


def test_a_dataset_fingerprints_its_rows_once_and_anew_for_a_new_matrix():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 15)).astype(np.float32)
    X[9] = X[2]
    ds = data.Dataset(X=X, y=None, feature_names=[f"g{j}" for j in range(15)], task=None)
    first = ds.row_fingerprints()
    assert np.array_equal(first, row_fingerprints(X)) and ds.row_fingerprints() is first  # computed once
    assert data.twin_rows(X, fingerprints=first) == data.twin_rows(X) == [(2, 9)]
    ds.X = ds.X[:, ::-1]  # the columns reordered (to a model's order): the rows fingerprint otherwise
    assert np.array_equal(ds.row_fingerprints(), row_fingerprints(ds.X))
    assert not np.array_equal(ds.row_fingerprints(), first)
    with pytest.raises(ValueError, match="shape"):
        data.twin_rows(X, fingerprints=first[:-1])


def test_a_model_without_a_constant_column_keeps_its_rows_over_the_kept_columns(tmp_path):
    table = make_table("multiclass", n_patients=30, per_patient=2, n_features=20, seed=3)
    table["f05"] = 2.5  # constant: dropped by the preprocessing, so not among the model's inputs
    train = tmp_path / "train.csv"
    table.to_csv(train, index=False)
    res = run(["train", str(train), "--group", "patient_id", *FAST, "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    model = model_io.load(tmp_path / "m.mlp")
    kept = model.preprocessor.kept_index_
    X = table.filter(like="f").to_numpy()
    assert X.shape[1] == 20 and len(kept) == 19 and 5 not in kept
    assert np.array_equal(model.training_rows, np.unique(kept_fingerprints(X, kept)))
    assert not np.array_equal(model.training_rows, np.unique(row_fingerprints(X)))


# ── predict and evaluate ─────────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("seen")
    table = make_table("multiclass", n_patients=30, per_patient=2, n_features=20, seed=0)
    train = d / "train.csv"
    table.to_csv(train, index=False)
    new = make_table("multiclass", n_patients=15, per_patient=2, n_features=20, seed=7)
    new["sample_id"] = [f"N{i:03d}" for i in range(len(new))]
    new["patient_id"] = [f"Q{i // 2:03d}" for i in range(len(new))]
    mixed = pd.concat([new, table.iloc[[3, 10, 41]]], ignore_index=True)
    mixed = mixed[list(mixed.columns[::-1])]  # the columns in another order
    (d / "new.csv").write_text(new.to_csv(index=False))
    (d / "mixed.csv").write_text(mixed.to_csv(index=False))
    model = d / "m.mlp"
    res = run(["train", str(train), "--group", "patient_id", *FAST, "-o", str(model)])
    assert res.exit_code == 0, res.output
    return {"dir": d, "train": str(train), "new": str(d / "new.csv"), "mixed": str(d / "mixed.csv"),
            "model": str(model), "table": table}


def test_the_model_file_holds_one_fingerprint_per_distinct_training_row(trained):
    model = model_io.load(trained["model"])
    assert model.format_version == model_io.FORMAT_VERSION
    X = trained["table"].filter(like="f").to_numpy()
    expected = np.unique(kept_fingerprints(X, model.preprocessor.kept_index_))
    assert np.array_equal(model.training_rows, expected) and len(expected) == len(X)


def test_predict_names_the_training_samples_among_new_ones(trained):
    out = trained["dir"] / "p.csv"
    res = run(["predict", trained["model"], trained["mixed"], "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["seen_in_training"] == 3
    note = next(n for n in doc["notes"] if "trained on" in n)
    assert note.startswith("3 of 33 samples are rows the model was trained on")
    assert "'S0003'" in note and "'S0010'" in note and "'S0041'" in note
    assert len(pd.read_csv(out)) == 33  # predicted all the same
    res = run(["predict", trained["model"], trained["new"], "-o", str(trained["dir"] / "q.csv"), "--json"])
    doc = json.loads(res.stdout)
    assert doc["seen_in_training"] == 0 and not any("trained on" in n for n in doc["notes"])


def test_evaluate_on_the_training_table_says_it_measures_the_fit(trained):
    res = run(["evaluate", trained["model"], trained["train"], "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["seen_in_training"] == 60 and doc["unseen_metrics"] is None
    warning = next(w for w in doc["warnings"] if "trained on" in w)
    held_out = model_io.load(trained["model"]).fit["held_out_metrics"]["balanced_accuracy"]
    assert warning.startswith("all 60 samples are rows the model was trained on")
    assert f"out-of-fold balanced accuracy at training was {held_out:.3f}" in warning


def test_evaluate_gives_the_metrics_on_the_new_samples_alone(trained):
    mixed = json.loads(run(["evaluate", trained["model"], trained["mixed"], "--json"]).stdout)
    alone = json.loads(run(["evaluate", trained["model"], trained["new"], "--json"]).stdout)
    assert mixed["seen_in_training"] == 3 and alone["seen_in_training"] == 0
    assert_same_figures(mixed["unseen_metrics"], alone["metrics"])
    warning = next(w for w in mixed["warnings"] if "trained on" in w)
    assert f"on the 30 other samples alone, balanced accuracy {alone['metrics']['balanced_accuracy']:.3f}" in warning
    assert not any("trained on" in w for w in alone["warnings"])


def test_a_changed_value_makes_a_new_sample(trained):
    table = trained["table"].copy()
    table.loc[5, "f07"] += 1e-3
    path = trained["dir"] / "changed.csv"
    table.to_csv(path, index=False)
    doc = json.loads(run(["evaluate", trained["model"], str(path), "--json"]).stdout)
    assert doc["seen_in_training"] == 59


def test_val_data_rows_count_as_training_rows(trained, tmp_path):
    model = tmp_path / "v.mlp"
    res = run(["train", trained["train"], "--val-data", trained["new"], "--group", "patient_id", "--epochs", "3",
               "--hidden", "8", "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    doc = json.loads(run(["evaluate", str(model), trained["mixed"], "--json"]).stdout)
    assert doc["seen_in_training"] == 33


def test_older_files_and_damaged_fingerprints(trained, tmp_path):
    old = rewrite_model(trained["model"], tmp_path / "old.mlp", lambda m: m.update(format_version=7), dict)
    doc = json.loads(run(["evaluate", old, trained["train"], "--json"]).stdout)
    assert doc["seen_in_training"] is None and not any("trained on" in w for w in doc["warnings"])

    def shuffled(arrays):
        arrays["training_rows"] = arrays["training_rows"][::-1].copy()
        return arrays

    bad = rewrite_model(trained["model"], tmp_path / "bad.mlp", lambda m: None, shuffled)
    assert_clean_error(run(["predict", bad, trained["new"], "-o", str(tmp_path / "x.csv")]), "bad.mlp",
                       "training_rows", "not sorted")
    assert not (tmp_path / "x.csv").exists()


def test_sparse_cells_are_recognised_from_their_stored_values(tmp_path):
    anndata = pytest.importorskip("anndata")
    rng = np.random.default_rng(2)
    counts = rng.poisson(0.5, size=(90, 30)).astype(np.float32)
    types = np.array(["T", "B", "NK"])[np.arange(90) % 3]
    for t in range(3):
        counts[types == ["T", "B", "NK"][t], 3 * t:3 * t + 3] += 4
    obs = pd.DataFrame({"cell_type": types, "donor_id": [f"D{i % 6}" for i in range(90)]},
                       index=[f"c{i}" for i in range(90)])
    var = pd.DataFrame(index=[f"G{j}" for j in range(30)])
    path = tmp_path / "cells.h5ad"
    anndata.AnnData(X=sp.csr_matrix(counts), obs=obs, var=var).write_h5ad(path)
    model = tmp_path / "c.mlp"
    assert run(["train", str(path), "--target", "cell_type", *FAST, "-o", str(model)]).exit_code == 0
    dense = pd.DataFrame(counts.astype(np.float64), columns=var.index)
    dense.insert(0, "sample_id", obs.index)
    dense.iloc[:20].to_csv(tmp_path / "cells.csv", index=False)
    for table, expected in ((str(path), 90), (str(tmp_path / "cells.csv"), 20)):
        res = run(["predict", str(model), table, "-o", str(tmp_path / "p.csv"), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["seen_in_training"] == expected


def test_rows_a_sample_sheet_leaves_out_are_not_counted(trained, tmp_path):
    mixed = pd.read_csv(trained["mixed"])
    sheet = mixed[["sample_id", "label"]]
    sheet = sheet[sheet["sample_id"].str.startswith("N") | (sheet["sample_id"] == "S0010")]
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    mixed.drop(columns=["label"]).to_csv(tmp_path / "matrix.csv", index=False)
    res = run(["evaluate", trained["model"], str(tmp_path / "matrix.csv"), "--samples", str(tmp_path / "sheet.csv"),
               "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["n"] == 31 and doc["seen_in_training"] == 1
    assert any(w.startswith("1 of 31 samples is a row the model was trained on (identical feature values: "
                            "'S0010')") for w in doc["warnings"])


# ── features of few values: new samples repeat training rows by chance ───────────────────────────────────


def _scores_table(n_patients: int, seed: int, prefix: str) -> pd.DataFrame:
    """Cytology-like scores (MASS::biopsy): 9 features of 1-3, most rows near all 1s, one sample per patient."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_patients)
    X = 1 + (rng.random((n_patients, 9)) < (0.1 + 0.5 * y[:, None])) * rng.integers(1, 3, (n_patients, 9))
    table = pd.DataFrame(X, columns=[f"V{j}" for j in range(1, 10)])
    table.insert(0, "patient_id", [f"{prefix}{i:03d}" for i in range(n_patients)])
    table.insert(0, "sample_id", [f"{prefix}S{i:03d}" for i in range(n_patients)])
    table["label"] = np.where(y == 1, "malignant", "benign")
    return table


def test_new_patients_with_scores_like_training_ones_are_no_training_rows(tmp_path):
    # 9 scores of few values: about a third of new patients' rows repeat a training patient's scores exactly, which
    # said "the metrics include rows it was trained on, which flatters it" of a held-out set of other patients
    train, new = tmp_path / "train.csv", tmp_path / "new.csv"
    _scores_table(240, 0, "P").to_csv(train, index=False)
    _scores_table(80, 1, "Q").to_csv(new, index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(train), *FAST, "-o", str(model)]).exit_code == 0
    chance = model_io.load(str(model)).extra["training_rows_chance"]
    assert 0.2 < chance < 0.8
    doc = json.loads(run(["evaluate", str(model), str(new), "--json"]).stdout)
    assert doc["seen_in_training"] > 10  # the matches are still counted, and the metrics on the others given
    assert doc["unseen_metrics"] is not None
    assert not any("trained on" in w for w in doc["warnings"]), doc["warnings"]
    assert any("about what chance gives on this table" in n for n in doc["notes"]), doc["notes"]
    doc = json.loads(run(["predict", str(model), str(new), "-o", str(tmp_path / "p.csv"), "--json"]).stdout)
    assert any("about what chance gives" in n for n in doc["notes"]) and not any("trained on" in n for n in doc["notes"])
    # the training table itself is recognised as before: all of it, far beyond chance
    doc = json.loads(run(["evaluate", str(model), str(train), "--json"]).stdout)
    assert any(w.startswith("all 240 samples are rows the model was trained on") for w in doc["warnings"])


def test_info_counts_distinct_training_rows_as_distinct(tmp_path):
    """9 scores of few values: 80 patients' rows give fewer distinct fingerprints, and info said "recognising the 65
    rows it was trained on" of a model trained on 80; with --val-data, its rows are counted among them too."""
    train, val = tmp_path / "train.csv", tmp_path / "val.csv"
    _scores_table(80, 0, "P").to_csv(train, index=False)
    _scores_table(30, 1, "Q").to_csv(val, index=False)
    model, with_val = tmp_path / "m.mlp", tmp_path / "v.mlp"
    assert run(["train", str(train), *FAST, "-o", str(model)]).exit_code == 0
    assert run(["train", str(train), "--val-data", str(val), "--epochs", "3", "--hidden", "8", "-q",
                "-o", str(with_val)]).exit_code == 0
    for path, rows, seen_as in ((model, 80, "trained on"), (with_val, 110, "trained or validated on")):
        distinct = len(model_io.load(str(path)).training_rows)
        assert distinct < rows
        info = " ".join(run(["info", str(path)]).output.split())
        assert f"recognising the {distinct} distinct rows of the {rows} it was {seen_as} (" in info, info
        doc = json.loads(run(["info", str(path), "--json"]).stdout)
        assert (doc["trust"]["training_rows"], doc["trust"]["training_rows_of"]) == (distinct, rows)


def test_the_chance_share_counts_repeats_across_patients_only():
    from mlpcli.data.copies import chance_share

    fingerprints = np.array([1, 1, 2, 2, 3, 4], dtype=np.uint64)
    assert chance_share(fingerprints) == pytest.approx(4 / 6)
    # rows 2 and 3 are one patient's (a sample measured twice): no chance match for a new patient
    assert chance_share(fingerprints, np.array(["a", "b", "c", "c", "d", "e"])) == pytest.approx(2 / 6)
    assert chance_share(np.arange(5, dtype=np.uint64)) == 0.0


def test_copies_in_a_table_of_many_features_stay_training_rows(tmp_path):
    # dslabs' tissue_gene_expression holds 4 pairs of identical samples (500 genes): copies, not chance, so a new
    # table's copy of a training row is that row, however many the training table itself repeats
    table = make_table("multiclass", n_patients=60, per_patient=1, n_features=12, seed=3)
    table = pd.concat([table, table.iloc[:6].assign(sample_id=[f"C{i}" for i in range(6)],
                                                     patient_id=[f"CP{i}" for i in range(6)])], ignore_index=True)
    table.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "train.csv"), *FAST, "-o", str(model)]).exit_code == 0
    assert "training_rows_chance" not in model_io.load(str(model)).extra
    table.iloc[[10, 11]].to_csv(tmp_path / "new.csv", index=False)
    doc = json.loads(run(["evaluate", str(model), str(tmp_path / "new.csv"), "--json"]).stdout)
    assert any(w.startswith("all 2 samples are rows the model was trained on") for w in doc["warnings"])
