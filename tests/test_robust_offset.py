"""Robust scaling ends with an offset: the clipped training values' mean is subtracted, so every network input
has mean 0 on the training rows (model format 10). Without it, a skewed column's median sat off its mean, and
on wide tables of counts the first gradient steps went along the mean input instead of the class differences."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cli_helpers import assert_clean_error, run
from mlpcli import data, model_io
from mlpcli.config import TrainOptions
from mlpcli.centred_rows import CentredRows
from model_files import model_parts, rewrite_model, saved_model
from tables import write_table


def _counts(n: int = 150, p: int = 40, seed: int = 0) -> np.ndarray:
    """Skewed counts (many zeros and small values), as a table of lowly expressed genes holds."""
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(0.5, 1.2, p)
    return rng.negative_binomial(3, 3 / (3 + mu[None, :]), size=(n, p)).astype(np.float64)


def _names(p: int) -> list[str]:
    return [f"g{j}" for j in range(p)]


def test_robust_inputs_have_mean_zero_on_the_training_rows():
    X = _counts()
    pre = data.Preprocessor(data.PreprocessConfig(log1p=True, scaling="robust"))
    Z = pre.fit_transform(X, _names(X.shape[1]))
    assert np.abs(Z.mean(axis=0)).max() < 1e-12
    assert np.abs(pre.offset_).max() > 0.05  # skewed columns: the median is not the mean
    np.testing.assert_allclose(pre.train_mean_, 0.0, atol=1e-12)
    np.testing.assert_array_equal(pre.transform(X), Z)  # the same arithmetic on any rows
    # the offset comes last: within the clip's range shifted by it, and undone by unscale
    assert (Z + pre.offset_).max() < 3.0 and (Z + pre.offset_).min() > -3.0
    np.testing.assert_allclose(pre.unscale(Z), np.log1p(X), atol=1e-9)
    assert not pre.keeps_zeros  # 0 no longer maps to 0: sparse rows go through the dense arithmetic


def test_standard_scaling_keeps_no_offset_and_sparse_fits_leave_theirs_to_the_fit_loop():
    X = _counts()
    standard = data.Preprocessor(data.PreprocessConfig(log1p=True, scaling="standard"))
    standard.fit(X, _names(X.shape[1]))
    assert not np.any(standard.offset_)  # centred on the mean already
    for scaling in ("robust", "standard"):
        sparse = data.Preprocessor(data.PreprocessConfig(log1p=True, scaling=scaling))
        out = sparse.fit_transform(sp.csr_matrix(X), _names(X.shape[1]))
        # the matrix stays sparse (0 maps to 0); the offset is subtracted from each densified minibatch
        assert isinstance(out, CentredRows) and sp.issparse(out.matrix) and np.all(sparse.offset_ > 0)
        assert not sparse.keeps_zeros
        dense = sparse.transform(X)
        np.testing.assert_array_equal(out.toarray(), dense)  # float64: the dense arithmetic exactly
        assert np.abs(dense.mean(axis=0)).max() < 1e-12
        rows = sparse.transform(sp.csr_matrix(X[:7]), sparse=True)
        np.testing.assert_array_equal(rows[[1, 4]].toarray(), dense[[1, 4]])
    unscaled = data.Preprocessor(data.PreprocessConfig(log1p=True, standardize=False))
    out = unscaled.fit_transform(sp.csr_matrix(X), _names(X.shape[1]))
    assert sp.issparse(out) and unscaled.keeps_zeros  # --no-standardize: no centring at all


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("offset")
    table = write_table(tmp, n_patients=15, n_features=30)
    return {"tmp": tmp, "table": table, "model": saved_model(table, tmp / "m.mlp", TrainOptions(hidden=[4], epochs=3,
                                                                                                 folds=2))}


def test_the_model_file_keeps_the_offset_and_predicts_as_trained(model_file):
    meta, arrays = model_parts(model_file["model"])
    assert meta["format_version"] == model_io.FORMAT_VERSION >= 10
    offsets = [k for k in arrays if k.endswith("preprocessor/offset")]
    assert offsets and any(np.any(arrays[k]) for k in offsets)
    model = model_io.load(model_file["model"])
    assert np.any(model.preprocessor.offset_)
    assert all(np.array_equal(m.preprocessor.offset_, arrays.get(f"members/{i}/preprocessor/offset",
                                                                  m.preprocessor.offset_))
               for i, m in enumerate(model.members))


def test_a_file_of_format_9_loads_without_an_offset(model_file, tmp_path):
    old = rewrite_model(model_file["model"], tmp_path / "old.mlp", lambda m: m.update(format_version=9), lambda a: a)
    meta, arrays = model_parts(old)
    assert not any(k.endswith("/offset") for k in arrays)
    model = model_io.load(old)
    assert all(not np.any(m.preprocessor.offset_) for m in model.members)  # as mlpcli 9 predicted with it
    res = run(["predict", str(old), model_file["table"], "-o", str(tmp_path / "p.csv"), "-q"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("damage", ["nan", "shape"])
def test_a_damaged_offset_is_a_clean_model_error(model_file, tmp_path, damage):
    def arrays_fn(arrays):
        arrays = dict(arrays)
        key = next(k for k in arrays if k.endswith("preprocessor/offset"))
        arrays[key] = np.full_like(arrays[key], np.nan) if damage == "nan" else arrays[key][:-1]
        return arrays

    bad = rewrite_model(model_file["model"], tmp_path / "bad.mlp", lambda m: None, arrays_fn)
    out = tmp_path / "p.csv"
    res = run(["predict", str(bad), model_file["table"], "-o", str(out)])
    assert_clean_error(res, "bad.mlp", "offset", code=1)
    assert not out.exists()


def test_a_file_claiming_an_older_format_with_an_offset_is_refused(model_file, tmp_path):
    """An offset belongs to format 10: a file that says 9 and holds one was not written by mlpcli."""
    import json
    import zipfile

    bad = tmp_path / "claims9.mlp"
    with zipfile.ZipFile(model_file["model"]) as src, zipfile.ZipFile(bad, "w") as dst:
        meta = json.loads(src.read("model.json"))
        meta["format_version"] = 9
        dst.writestr("model.json", json.dumps(meta))
        dst.writestr("weights.npz", src.read("weights.npz"))
    res = run(["info", str(bad)])
    assert_clean_error(res, "claims9.mlp", "offset", "format version 10", code=1)


def test_a_wide_sparse_table_trains_from_centred_inputs(tmp_path):
    """3,000 skewed sparse genes, 4 classes of 5-50 %: uncentred (sparse fits before the offset), a softmax
    regression's first epochs ran at a validation loss above twice the no-skill loss (2.65 at epoch 1); centred
    by the offset in each minibatch, they start near it, as a dense table's do."""
    anndata = pytest.importorskip("anndata")
    import pandas as pd

    rng = np.random.default_rng(0)
    n, p = 300, 3000
    y = rng.choice(4, size=n, p=[0.5, 0.3, 0.15, 0.05])
    rates = np.exp(rng.normal(-2, 1.5, p))[None, :] * np.exp(rng.normal(0, 0.3, (n, 1)))
    for k in range(4):
        rates[y == k, 20 * k:20 * k + 20] *= 3
    X = sp.csr_matrix(rng.poisson(rates).astype(np.float32))
    obs = pd.DataFrame({"cell_type": [f"T{k}" for k in y]}, index=[f"c{i}" for i in range(n)])
    path = tmp_path / "wide.h5ad"
    anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(p)])).write_h5ad(path)
    history = tmp_path / "h.csv"
    res = run(["train", str(path), "--target", "cell_type", "--no-group", "--hidden", "", "--folds", "1",
               "--epochs", "3", "--history", str(history), "-o", str(tmp_path / "m.mlp"), "-q"])
    assert res.exit_code == 0, res.output
    shares = np.bincount(y) / n
    no_skill = float(-(shares * np.log(shares)).sum())  # 1.14
    val = pd.read_csv(history, comment="#")["val_loss"]
    assert val.max() < 1.4 * no_skill, list(val)
    model = model_io.load(tmp_path / "m.mlp")
    assert np.all(model.members[0].preprocessor.offset_ > 0)  # stored: prediction subtracts it as training did
