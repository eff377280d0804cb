"""Sparse inputs after the centring offset, reviewed by use: what follows a sparse fit agrees with itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlpcli import data
from mlpcli.config import TrainOptions
from mlpcli.pipeline import train_dataset
from mlpcli.training import CentredRows

from cli_helpers import run
from tables import cell_counts


@pytest.fixture(scope="module")
def cells():
    """(counts CSR (n, 20) float32, cell types (n,), donors (n,)): 3 types, 6 donors."""
    X, types = cell_counts(n_cells=120, n_genes=20, seed=3)
    donors = np.array([f"D{i % 6}" for i in range(len(types))])
    return sp.csr_matrix(X), types, donors


@pytest.fixture(scope="module")
def sparse_model(cells):
    X, types, donors = cells
    ds = data.Dataset(X=X, y=types.astype(np.int64), feature_names=[f"g{j}" for j in range(X.shape[1])],
                      task="multiclass", classes=["A", "B", "C"], groups=donors)
    return train_dataset(ds, TrainOptions(folds=1, epochs=3, hidden=[])).model


@pytest.mark.parametrize("fmt", ["coo", "dia", "csc", "lil"])
def test_model_predicts_any_scipy_format_as_its_csr(sparse_model, cells, fmt):
    """Model.predict_output read rows X[s:s + step] of a sparse X: a COO matrix (what scipy.io.mmread gives)
    raised TypeError: 'coo_matrix' object is not subscriptable."""
    X = cells[0]
    expected = sparse_model.predict_output(X)
    got = sparse_model.predict_output(X.asformat(fmt))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(expected, sparse_model.predict_output(X.toarray()))


def _with_repeated_entries(X: sp.csr_matrix) -> sp.csr_matrix:
    """X stored with each value split into two halves at the same position (a non-canonical CSR)."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    data_ = np.repeat(X.data / 2, 2)
    indices = np.repeat(X.indices, 2)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=X.shape[0]) * 2)])
    out = sp.csr_matrix((data_, indices, indptr), shape=X.shape)
    assert not out.has_canonical_format and np.array_equal(out.toarray(), X.toarray())
    return out


@pytest.mark.parametrize("log1p", [False, True], ids=["plain", "log1p"])
def test_repeated_entries_are_summed_before_preprocessing(cells, log1p):
    """A CSR matrix with two stored values at one position (built by hand from data/indices/indptr) means their
    sum, as its dense copy does; the sparse fit took them as two values (log1p of each half, two counts in the
    quantiles): scales off by up to 4 SDs against the same matrix stored once per position."""
    X = cells[0].astype(np.float64)
    names = [f"g{j}" for j in range(X.shape[1])]
    twice = _with_repeated_entries(X)
    before = twice.data.copy()
    ref = data.Preprocessor(data.PreprocessConfig(log1p=log1p))
    Z_ref = ref.fit_transform(X, names, order="C")
    pre = data.Preprocessor(data.PreprocessConfig(log1p=log1p))
    Z = pre.fit_transform(twice, names, order="C")
    assert isinstance(Z, CentredRows)
    np.testing.assert_allclose(Z.toarray(), Z_ref.toarray(), atol=1e-12)
    np.testing.assert_allclose(pre.transform(twice, sparse=True).toarray(), Z_ref.toarray(), atol=1e-12)
    np.testing.assert_array_equal(twice.data, before)  # the caller's matrix is left as it was


@pytest.fixture(scope="module")
def tables(tmp_path_factory, cells):
    """The same cells as a training CSV (donors D2-D5) and a validation .h5ad (D0, D1), and the reverse."""
    anndata = pytest.importorskip("anndata")
    X, types, donors = cells
    root = tmp_path_factory.mktemp("valdata")
    ids = np.array([f"c{i}" for i in range(len(types))])
    genes = [f"g{j}" for j in range(X.shape[1])]
    labels = np.array(["A", "B", "C"])[types]
    val = np.isin(donors, ["D0", "D1"])
    for name, rows in (("train", ~val), ("val", val)):
        frame = pd.DataFrame(X[rows].toarray(), columns=genes)
        frame.insert(0, "sample_id", ids[rows])
        frame.insert(1, "cell_type", labels[rows])
        frame.insert(2, "donor_id", donors[rows])
        frame.to_csv(root / f"{name}.csv", index=False)
        obs = pd.DataFrame({"cell_type": labels[rows], "donor_id": donors[rows]}, index=ids[rows])
        anndata.AnnData(X=X[rows], obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(root / f"{name}.h5ad")
    return root


@pytest.mark.parametrize("train_ext,val_ext,id_column", [("csv", "h5ad", "obs_names"), ("h5ad", "csv", "sample_id")],
                         ids=["csv-with-h5ad-val", "h5ad-with-csv-val"])
def test_val_data_of_the_other_format_uses_its_own_id_default(tables, tmp_path, train_ext, val_ext, id_column):
    """--val-data read the training table's default id column as if given: a CSV's `sample_id` against an .h5ad
    validation file (obs_names) failed with "--id column 'sample_id' not found", no --id having been given."""
    oof = tmp_path / "oof.csv"
    res = run(["train", str(tables / f"train.{train_ext}"), "--target", "cell_type", "--val-data",
               str(tables / f"val.{val_ext}"), "--folds", "1", "--hidden", "", "--epochs", "3", "--oof", str(oof),
               "-o", str(tmp_path / "m.mlp"), "-q"])
    assert res.exit_code == 0, res.output
    held = pd.read_csv(oof)
    assert held.columns[0] == id_column
    assert set(held.donor_id) == {"D0", "D1"} and len(held) == 40


def test_an_id_given_for_val_data_must_be_there(tables, tmp_path):
    """--id, when given, names the column in both tables: a validation table without it is still an error."""
    res = run(["train", str(tables / "train.csv"), "--target", "cell_type", "--id", "sample_id", "--val-data",
               str(tables / "val.h5ad"), "--folds", "1", "--hidden", "", "--epochs", "3", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1, res.output
    assert "--val-data" in res.output and "sample_id" in res.output and "Traceback" not in res.output
