"""Sparse preprocessing works a chunk of stored values at a time: the chunk size changes no number and no
error, and fitting plus transforming needs little more than the transformed matrix itself."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mlpcli.data.preprocess_sparse as preprocess_sparse
from mlpcli import data
from mlpcli.config import TrainOptions
from mlpcli.data import looks_like_counts
from mlpcli.data.preprocess import PreprocessConfig, Preprocessor
from mlpcli.errors import DataError
from mlpcli.pipeline import train_dataset
from mlpcli.centred_rows import CentredRows
from cli_helpers import run
from tables import cell_counts


def _counts(n: int, d: int, density: float, seed: int, nan_every: int = 0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", dtype=np.float32, random_state=rng)
    X.data = np.round(X.data * 50).astype(np.float32) + 1  # counts >= 1
    cols = X.indices
    X.data[cols == 1] = 0.0  # a stored but constant column: dropped
    if nan_every:
        X.data[::nan_every] = np.nan
    return X


def _outcome(X, cfg: PreprocessConfig, names):
    pre = Preprocessor(cfg)
    try:
        Z = pre.fit_transform(X, names, dtype=np.float32, order="C")
        V = pre.transform(X[::3], dtype=np.float32, sparse=True)
        D = pre.transform(X[1::3])
    except DataError as exc:
        return str(exc)
    # standardised: the CSR matrix and the centring offset training subtracts from each densified minibatch
    assert all(isinstance(M, CentredRows) and sp.isspmatrix_csr(M.matrix) for M in (Z, V))
    return [Z.toarray(), V.toarray(), D, *pre.state()[1].values(), pre.kept_features, pre.warnings]


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return all(np.array_equal(x, y, equal_nan=True) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


def test_chunk_size_changes_no_number_and_no_error(monkeypatch):
    names = [f"g{j}" for j in range(12)]
    cases = [_counts(80, 12, 0.3, 0), _counts(50, 12, 0.5, 1, nan_every=9)]
    bad = _counts(60, 12, 0.3, 2)
    bad.data[[10, 40]] = [-1.0, -3.0]  # negative values: an error under log1p
    cases.append(bad)
    configs = [PreprocessConfig(log1p=log1p, impute=impute, scaling=scaling, top_var=top_var)
               for log1p, impute, scaling, top_var in itertools.product(
                   (True, False), (None, "median", "mean"), ("standard", "robust"), (None, 4))]
    reference = {}
    for i, X in enumerate(cases):
        reference[i] = looks_like_counts(X), [_outcome(X, cfg, names) for cfg in configs]
    for chunk in (1, 7, 64):
        monkeypatch.setattr(preprocess_sparse, "SPARSE_CHUNK", chunk)
        for i, X in enumerate(cases):
            skew, outcomes = reference[i]
            assert looks_like_counts(X) == skew
            for cfg, expected in zip(configs, outcomes):
                assert _same(_outcome(X, cfg, names), expected), (chunk, i, cfg)
    assert any(isinstance(o, str) for o in reference[2][1]) and not any(isinstance(o, str) for o in reference[0][1])


def test_a_value_beyond_the_network_range_names_its_row_whatever_the_chunk(monkeypatch):
    names = [f"g{j}" for j in range(6)]
    X = _counts(40, 6, 0.5, 3).astype(np.float64)
    X.data *= 1e-30  # a training SD near 1e-29
    pre = Preprocessor(PreprocessConfig()).fit(X, names)
    V = _counts(30, 6, 0.5, 4).astype(np.float64)
    row = 17
    V.data[V.indptr[row]] = 1e10  # 1e39 SDs away
    messages = set()
    for chunk in (3, 1 << 20):
        monkeypatch.setattr(preprocess_sparse, "SPARSE_CHUNK", chunk)
        with pytest.raises(DataError, match=f"row {row + 1} of the 30 rows transformed") as info:
            pre.transform(V, dtype=np.float32, sparse=True)
        messages.add(str(info.value))
    assert len(messages) == 1


def test_a_value_beyond_the_network_range_in_a_single_row_names_one_row():
    """"row 1 of the 1 rows transformed": predicting one sample, dense or sparse."""
    names = [f"g{j}" for j in range(6)]
    X = _counts(40, 6, 0.5, 3).astype(np.float64)
    X.data *= 1e-30
    pre = Preprocessor(PreprocessConfig()).fit(X, names)
    V = _counts(1, 6, 1.0, 4).astype(np.float64)
    V.data[0] = 1e10
    for sparse in (True, False):
        with pytest.raises(DataError, match=r"at row 1 of the 1 row transformed \(training SD"):
            pre.transform(V if sparse else V.toarray(), dtype=np.float32, sparse=sparse)


def test_fitting_and_transforming_need_little_more_than_the_result(monkeypatch):
    monkeypatch.setattr(preprocess_sparse, "SPARSE_CHUNK", 1 << 15)  # temporaries of 256 KiB
    X = _counts(20_000, 500, 0.2, 5)  # 2M stored values: 16 MB of CSR
    csr = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    names = [f"g{j}" for j in range(500)]
    assert looks_like_counts(X) is not None
    tracemalloc.start()
    try:
        looks_like_counts(X)
        skew_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        pre = Preprocessor(PreprocessConfig(log1p=True))
        Z = pre.fit_transform(X, names, dtype=np.float32, order="C")
        fit_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    result = Z.matrix.data.nbytes + Z.matrix.indices.nbytes + Z.matrix.indptr.nbytes + Z.offset.nbytes
    assert skew_peak < 0.2 * csr  # was five float64 copies of the stored values: 5 x the CSR
    assert fit_peak < result + 0.3 * csr  # was ~4.5 x the CSR besides the result


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
