"""AnnData .h5ad input and output, end to end on small generated files: roles from .obs, features from .X /
a layer / .raw, sparse matrices kept sparse, backed prediction in row ranges, predictions written back
into .obs, and the one-line errors of bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

anndata = pytest.importorskip("anndata")  # the test extra installs it: never skipped in CI
import scipy.sparse as sp  # noqa: E402

from mlpcli import data, model_io  # noqa: E402
from mlpcli.errors import DataError  # noqa: E402
from mlpcli.data.h5ad import EXTRA_HINT  # noqa: E402
from mlpcli.data.preprocess import PreprocessConfig, Preprocessor  # noqa: E402
from mlpcli.centred_rows import CentredRows  # noqa: E402

from cli_helpers import assert_clean_error, run  # noqa: E402

TYPES = ("T", "B", "NK")
FAST = ["--epochs", "10", "--hidden", "", "--folds", "2", "--seed", "1"]


def make_adata(n_cells: int = 240, n_genes: int = 40, seed: int = 0, dense: bool = False, raw: bool = True):
    """Cells of three types (each with 5 marker genes) from 8 donors in 2 batches: Poisson counts (about
    70 % zeros) in layer 'counts', log-normalised .X, Ensembl-like var_names with symbols in var['symbol']."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, len(TYPES), size=n_cells)
    donors = rng.integers(0, 8, size=n_cells)
    rates = rng.gamma(0.4, 1.0, size=n_genes)[None, :] * np.ones((n_cells, 1))
    for t in range(len(TYPES)):
        rates[types == t, 5 * t:5 * t + 5] += 6.0
    counts = rng.poisson(rates).astype(np.float32)
    logged = np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 100).astype(np.float32)
    obs = pd.DataFrame({"cell_type": pd.Categorical([TYPES[t] for t in types]),
                        "donor_id": pd.Categorical([f"D{d}" for d in donors]),
                        "batch": pd.Categorical(["b1" if d < 4 else "b2" for d in donors])},
                       index=[f"c{i:04d}" for i in range(n_cells)])
    var = pd.DataFrame({"symbol": [f"G{j}" for j in range(n_genes)]}, index=[f"ENSG{j:05d}" for j in range(n_genes)])
    X = logged if dense else sp.csr_matrix(logged)
    adata = anndata.AnnData(X=X, obs=obs, var=var, layers={"counts": sp.csr_matrix(counts)})
    if raw:
        adata.raw = anndata.AnnData(X=sp.csr_matrix(counts), var=var.copy())
    return adata


def write(adata, path: Path) -> str:
    adata.write_h5ad(path)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("h5ad")
    sparse = write(make_adata(), d / "cells.h5ad")
    model = str(d / "cells.mlp")
    result = run(["train", sparse, "--target", "cell_type", "--layer", "counts", *FAST, "-o", model, "--quiet"])
    assert result.exit_code == 0, result.output
    return {"dir": d, "sparse": sparse, "model": model}


def leftovers(directory) -> list[str]:
    return [p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp")]


# ── reading and training ─────────────────────────────────────────────────────────────────────────────────


def test_roles_come_from_obs_and_a_sparse_matrix_stays_csr(files):
    ds, notes = data.load_dataset(files["sparse"], target="cell_type", layer="counts")
    assert sp.isspmatrix_csr(ds.X) and ds.X.dtype == np.float32
    assert ds.task == "multiclass" and ds.classes == sorted(TYPES)  # a categorical obs column as the target
    assert ds.roles.group == "donor_id" and ds.roles.id == "obs_names" and ds.roles.batch == "batch"
    assert ds.ids[0] == "c0000" and ds.feature_names[0] == "ENSG00000"
    assert any("donor_id (default" in n for n in notes)
    # a subset (a fold) is a CSR copy of its rows, the split works on it unchanged
    sub = ds.subset(np.arange(10))
    assert sp.isspmatrix_csr(sub.X) and sub.X.shape == (10, 40)
    raw, _ = data.load_dataset(files["sparse"], target="cell_type", raw=True)
    assert np.array_equal(raw.X.toarray(), ds.X.toarray())
    named, _ = data.load_dataset(files["sparse"], target="cell_type", var_names="symbol")
    assert named.feature_names[:2] == ["G0", "G1"]


def test_training_densifies_one_minibatch_at_a_time(files, monkeypatch):
    """No step of training a sparse table densifies more than a few thousand rows at once."""
    from scipy.sparse._compressed import _cs_matrix

    widest = []
    original = _cs_matrix.toarray

    def recording(self, *args, **kwargs):
        widest.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_cs_matrix, "toarray", recording)
    big = write(make_adata(n_cells=5000, n_genes=30, seed=3), files["dir"] / "big.h5ad")
    from mlpcli import pipeline
    from mlpcli.config import TrainOptions

    outcome = pipeline.train(big, TrainOptions(target=["cell_type"], epochs=2, hidden=[8], folds=1, batch_size=64))
    assert widest and max(widest) <= 4096 < 5000
    assert outcome.model.provenance["n_samples"] == 5000


def test_sparse_preprocessing_equals_dense_arithmetic():
    """Fitted on sparse data: centre 0 and an offset (the scaled training mean) left to the fit loop, and the
    same transformation of dense and sparse rows; log1p auto and --top-var read sparse data as they read the
    dense matrix of the same values."""
    X = make_adata(n_cells=300, n_genes=25, seed=5).layers["counts"]
    D = X.toarray().astype(np.float64)
    names = [f"g{j}" for j in range(25)]
    assert data.looks_like_counts(X) == pytest.approx(data.looks_like_counts(D), rel=1e-9)
    for scaling in ("standard", "robust"):
        pre = Preprocessor(PreprocessConfig(log1p=True, scaling=scaling, top_var=10))
        Z = pre.fit_transform(X, names, dtype=np.float32, order="C")
        assert isinstance(Z, CentredRows) and sp.isspmatrix_csr(Z.matrix) and Z.shape == (300, 10)
        assert not np.any(pre.center_) and np.all(pre.offset_ > 0)  # log counts: the mean is above 0
        dense_fit = Preprocessor(PreprocessConfig(log1p=True, scaling=scaling, top_var=10)).fit(D, names)
        assert pre.kept_features == dense_fit.kept_features  # the same variances choose the same genes
        assert np.array_equal(pre.transform(D), pre.transform(X))
        assert np.allclose(Z.toarray(), pre.transform(D), rtol=1e-6, atol=1e-7)
        assert np.array_equal(Z.toarray(), pre.transform(D, dtype=np.float32))  # the dense rounding exactly
        assert np.allclose(pre.train_mean_, pre.transform(D).mean(axis=0)) and not np.any(pre.train_mean_)
        assert np.allclose(pre.train_sd_, pre.transform(D).std(axis=0))
    # a preprocessor fitted on dense data (centred) applied to sparse rows gives the dense result
    dense_pre = Preprocessor(PreprocessConfig(log1p=True)).fit(D, names)
    assert np.array_equal(dense_pre.transform(X, sparse=True), dense_pre.transform(D))


def test_dense_csv_and_sparse_h5ad_give_the_same_predictions(files, tmp_path):
    """The model file is applied identically to a dense table and a sparse .h5ad of the same values."""
    adata = anndata.read_h5ad(files["sparse"])
    counts = adata.layers["counts"].toarray()
    frame = pd.DataFrame(counts, columns=list(adata.var_names))
    frame.insert(0, "sample_id", list(adata.obs_names))
    frame.insert(1, "cell_type", list(adata.obs["cell_type"]))
    csv = tmp_path / "cells.csv"
    frame.to_csv(csv, index=False, float_format="%.9g")
    out_h5ad, out_csv = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run(["predict", files["model"], files["sparse"], "-o", str(out_h5ad), "--quiet"]).exit_code == 0
    assert run(["predict", files["model"], str(csv), "-o", str(out_csv), "--quiet"]).exit_code == 0
    a, b = pd.read_csv(out_h5ad), pd.read_csv(out_csv)
    assert list(a["obs_names"]) == list(b["sample_id"])
    assert (a["pred_cell_type"] == b["pred_cell_type"]).all()
    assert np.allclose(a.filter(like="prob_").to_numpy(), b.filter(like="prob_").to_numpy(), rtol=1e-6, atol=1e-7)
    # and a model trained on the dense table predicts the sparse file alike
    dense_model = tmp_path / "dense.mlp"
    assert run(["train", str(csv), "--target", "cell_type", "--no-group", *FAST, "-o", str(dense_model),
                "--quiet"]).exit_code == 0
    assert run(["predict", str(dense_model), files["sparse"], "--layer", "counts", "-o", str(out_h5ad),
                "--quiet"]).exit_code == 0
    assert run(["predict", str(dense_model), str(csv), "-o", str(out_csv), "--quiet"]).exit_code == 0
    a, b = pd.read_csv(out_h5ad), pd.read_csv(out_csv)
    assert np.allclose(a.filter(like="prob_").to_numpy(), b.filter(like="prob_").to_numpy(), rtol=1e-6, atol=1e-7)


def test_every_command_reads_h5ad(files, tmp_path):
    f, model = files["sparse"], files["model"]
    dense = write(make_adata(dense=True, seed=2), tmp_path / "dense.h5ad")
    for args in (["cv", f, "--target", "cell_type", "--folds", "2", "--member-folds", "2", "--epochs", "2",
                  "--hidden", "4", "--layer", "counts"],
                 ["tune", f, "--target", "cell_type", "--folds", "2", "--epochs", "2",
                  "--grid", "lr=1e-3,1e-2", "--hidden", "4", "--no-group"],
                 ["diagnose", "--learning-curve", f, "--target", "cell_type", "--fractions", "0.5,1", "--epochs", "2",
                  "--hidden", "4"],
                 ["train", dense, "--target", "cell_type", "--epochs", "2", "--hidden", "4", "--folds", "1",
                  "--no-group", "--val-data", f, "-o", str(tmp_path / "v.mlp")],
                 ["evaluate", model, f, "--target", "cell_type", "--by", "batch"],
                 ["gradcheck", "--model", model, "--data", f]):
        result = run([*args, "--quiet"] if args[0] not in ("gradcheck", "evaluate") else args)
        assert result.exit_code == 0, (args[0], result.output)


def test_explain_reads_h5ad_and_ranks_each_types_markers(files, tmp_path):
    """explain reads the cells as predict does (the model's layer 'counts', obs_names as the id, the labels
    from obs) and ranks each cell type's own five marker genes first."""
    out = tmp_path / "genes.csv"
    result = run(["explain", files["model"], files["sparse"], "--top", "5", "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    ranking = pd.read_csv(out)
    for t, name in enumerate(TYPES):
        top = ranking[ranking["class"] == name].sort_values("rank")["feature"]
        markers = {f"ENSG{j:05d}" for j in range(5 * t, 5 * t + 5)}
        assert len(markers & set(top)) >= 4, (name, list(top))


def test_prepare_reads_the_cells_and_genes_predict_reads(files):
    from mlpcli import predict

    model = model_io.load(files["model"])
    X, ids, notes, _ = predict.prepare(model, files["sparse"])
    adata = anndata.read_h5ad(files["sparse"])
    assert list(ids) == list(adata.obs_names)
    kept = model.preprocessor.kept_features
    columns = [list(adata.var_names).index(n) for n in kept]
    expected = adata.layers["counts"].toarray()[:, columns]  # the layer the model was trained on
    assert np.array_equal(X[:, model.preprocessor.kept_index_], expected)
    assert any("layer 'counts'" in n for n in notes)
    with pytest.raises(DataError, match="symbol"):  # symbols where the model has Ensembl ids: named
        predict.prepare(model, files["sparse"], roles=predict.RoleFlags(var_names="symbol"))


# ── prediction ───────────────────────────────────────────────────────────────────────────────────────────


def test_predict_reads_row_ranges_in_backed_mode(files, monkeypatch, tmp_path):
    from mlpcli.data.h5ad import H5ad

    ranges = []
    original = H5ad.rows

    def recording(self, start, stop, columns):
        ranges.append(stop - start)
        return original(self, start, stop, columns)

    monkeypatch.setattr(H5ad, "rows", recording)
    monkeypatch.setattr(H5ad, "read_matrix", lambda *a, **k: pytest.fail("the whole matrix was read"))
    out = tmp_path / "p.csv"
    assert run(["predict", files["model"], files["sparse"], "--chunksize", "50", "-o", str(out), "--quiet"]).exit_code == 0
    assert max(ranges) == 50 and sum(ranges) == 240
    whole = tmp_path / "q.csv"
    assert run(["predict", files["model"], files["sparse"], "-o", str(whole), "--quiet"]).exit_code == 0
    assert Path(out).read_bytes() == Path(whole).read_bytes()  # chunking does not change a bit


def test_predict_explain_into_h5ad_adds_the_top_features_column(files, tmp_path):
    """predict --explain K -o FILE.h5ad keeps the explanations, as the CSV does (obs ``<prefix>top_features``)."""
    out, csv = tmp_path / "explained.h5ad", tmp_path / "explained.csv"
    for path in (out, csv):
        result = run(["predict", files["model"], files["sparse"], "-o", str(path), "--explain", "2", "--quiet"])
        assert result.exit_code == 0, result.output
    got = anndata.read_h5ad(out).obs["mlpcli_top_features"]
    assert list(got) == list(pd.read_csv(csv)["top_features"]) and got.str.len().min() > 0


def test_predict_writes_obs_columns_into_a_copy(files, tmp_path):
    out = tmp_path / "annotated.h5ad"
    before = Path(files["sparse"]).read_bytes()
    result = run(["predict", files["model"], files["sparse"], "-o", str(out), "--obs-probs", "--quiet"])
    assert result.exit_code == 0, result.output
    assert Path(files["sparse"]).read_bytes() == before
    src, got = anndata.read_h5ad(files["sparse"]), anndata.read_h5ad(out)
    assert (got.X != src.X).nnz == 0 and (got.layers["counts"] != src.layers["counts"]).nnz == 0
    assert list(got.obs_names) == list(src.obs_names)
    assert isinstance(got.obs["mlpcli_cell_type"].dtype, pd.CategoricalDtype)
    probs = got.obs[[f"mlpcli_prob_{c}" for c in sorted(TYPES)]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(got.obs["mlpcli_cell_type_prob"], probs.max(axis=1))
    assert (got.obs["mlpcli_cell_type"] == got.obs["cell_type"]).mean() > 0.8
    csv = tmp_path / "p.csv"
    run(["predict", files["model"], files["sparse"], "-o", str(csv), "--quiet"])
    assert list(pd.read_csv(csv)["pred_cell_type"]) == list(got.obs["mlpcli_cell_type"].astype(str))
    # again on the annotated file: its own prefixed columns are replaced; --obs-prefix '' would overwrite cell_type
    again = tmp_path / "again.h5ad"
    assert run(["predict", files["model"], str(out), "-o", str(again), "--quiet"]).exit_code == 0
    # this run writes no per-class probabilities: the earlier run's would contradict its labels, so they go
    assert [c for c in anndata.read_h5ad(again).obs.columns if c.startswith("mlpcli_")] == [
        "mlpcli_cell_type", "mlpcli_cell_type_prob"]
    # (said before any cell is predicted, as the option's problem: it had said "pass --obs-prefix" to a user who had)
    assert_clean_error(run(["predict", files["model"], str(out), "-o", str(again), "--obs-prefix", "", "--quiet"]),
                       "--obs-prefix ''", "'cell_type'", "give a prefix", code=2)
    # an empty prefix names the predictions as the target, where the file has no such column: a new cohort annotated
    unlabelled = anndata.read_h5ad(files["sparse"])
    del unlabelled.obs["cell_type"]
    unlabelled.write_h5ad(tmp_path / "unlabelled.h5ad")
    assert run(["predict", files["model"], str(tmp_path / "unlabelled.h5ad"), "-o", str(tmp_path / "named.h5ad"),
                "--obs-prefix", "", "--quiet"]).exit_code == 0
    named = anndata.read_h5ad(tmp_path / "named.h5ad").obs
    assert list(named["cell_type"].astype(str)) == list(got.obs["mlpcli_cell_type"].astype(str))
    # a column of the prefix holding the user's text (a QC note named like the probability column) is not an earlier
    # prediction's: it was overwritten, with a note -q hid
    mine = anndata.read_h5ad(out)
    mine.obs["mlpcli_cell_type_prob"] = "checked by hand"
    mine.write_h5ad(tmp_path / "mine.h5ad")
    assert_clean_error(run(["predict", files["model"], str(tmp_path / "mine.h5ad"), "-o", str(tmp_path / "m2.h5ad"),
                            "--quiet"]), "already has the obs column 'mlpcli_cell_type_prob'", "--obs-prefix")
    assert leftovers(tmp_path) == []


def test_h5ad_output_is_atomic(files, tmp_path, monkeypatch):
    import anndata.io

    def broken(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM (raised as a KeyboardInterrupt by the CLI)

    monkeypatch.setattr(anndata.io, "write_elem", broken)
    out = tmp_path / "out.h5ad"
    result = run(["predict", files["model"], files["sparse"], "-o", str(out), "--quiet"])
    assert result.exit_code == 130
    assert not out.exists() and leftovers(tmp_path) == []


def test_gene_identifier_mismatch_names_the_option(files, tmp_path):
    """Model trained on Ensembl ids; a file with symbols as var_names and the ids in a var column."""
    adata = make_adata(seed=7)
    adata.var = pd.DataFrame({"gene_ids": list(adata.var_names)}, index=[f"G{j}" for j in range(40)])
    swapped = write(adata, tmp_path / "symbols.h5ad")
    out = tmp_path / "p.csv"
    result = run(["predict", files["model"], swapped, "-o", str(out)])
    assert_clean_error(result, "gene identifiers differ", "only 0 of the model's", "--var-names gene_ids")
    assert not out.exists()
    assert run(["predict", files["model"], swapped, "--var-names", "gene_ids", "-o", str(out), "--quiet"]).exit_code == 0
    # the other way round: --var-names given, but the model's names are the var index
    result = run(["predict", files["model"], files["sparse"], "--var-names", "symbol", "-o", str(out)])
    assert_clean_error(result, "gene identifiers differ", "leave out --var-names")
    # nowhere to be found (nor in .raw, which --raw would read), even with --fill-missing mean: never a prediction
    # on no genes
    adata.var = pd.DataFrame(index=[f"X{j}" for j in range(40)])
    del adata.raw
    result = run(["predict", files["model"], write(adata, tmp_path / "other.h5ad"), "--fill-missing", "mean",
                  "-o", str(tmp_path / "q.csv")])
    assert_clean_error(result, "none of the model's")


def test_model_trained_on_symbols_predicts_with_its_var_column(files, tmp_path):
    model = str(tmp_path / "sym.mlp")
    assert run(["train", files["sparse"], "--target", "cell_type", "--var-names", "symbol", *FAST, "-o", model,
                "--quiet"]).exit_code == 0
    assert model_io.load(model).feature_names[0] == "G0"
    out = tmp_path / "p.csv"
    result = run(["predict", model, files["sparse"], "-o", str(out)])  # --var-names symbol comes from the model
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 240


# ── bad input: one line, exit 1, no output ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize("case", ["no_target", "no_layer", "no_raw", "no_var_column", "truncated", "not_hdf5",
                                  "repeated_names", "layer_on_csv"])
def test_bad_input_is_one_line(files, tmp_path, case):
    model_out = tmp_path / "m.mlp"
    base = ["train", files["sparse"], "--target", "cell_type", *FAST, "-o", str(model_out)]
    if case == "no_target":
        args, needles = ["train", files["sparse"], "--target", "label", *FAST, "-o", str(model_out)], ["--target", "label"]
    elif case == "no_layer":
        args, needles = [*base, "--layer", "spliced"], ["--layer 'spliced' not found", "layer 'counts'"]
    elif case == "no_raw":
        args, needles = ["train", write(make_adata(raw=False), tmp_path / "noraw.h5ad"), *base[2:], "--raw"], \
            ["has no .raw"]
    elif case == "no_var_column":
        args, needles = [*base, "--var-names", "gene_symbols"], ["--var-names 'gene_symbols'", "'symbol'"]
    elif case in ("truncated", "not_hdf5"):
        payload = Path(files["sparse"]).read_bytes()
        bad = tmp_path / "bad.h5ad"
        bad.write_bytes(payload[:len(payload) // 2] if case == "truncated" else b"not an hdf5 file at all" * 40)
        args, needles = ["train", str(bad), "--target", "cell_type", *FAST, "-o", str(model_out)], ["bad.h5ad", "corrupt"]
    elif case == "repeated_names":
        adata = make_adata()
        adata.var["symbol"] = ["G0", "G0"] + [f"G{j}" for j in range(2, 40)]
        path = write(adata, tmp_path / "rep.h5ad")
        args, needles = ["train", path, "--target", "cell_type", "--var-names", "symbol", *FAST, "-o", str(model_out)], \
            ["repeats gene names", "'G0' (×2)"]
    else:
        args, needles = ["predict", files["model"], "sample.csv", "--layer", "counts"], ["--layer applies to .h5ad"]
    assert_clean_error(run(args), *needles, code=2 if case == "layer_on_csv" else 1)  # an option, a usage error
    assert not model_out.exists() and leftovers(tmp_path) == []
    # prediction on the same file fails alike, before writing anything
    if case in ("truncated", "not_hdf5", "no_layer", "no_var_column"):
        out = tmp_path / "p.h5ad"
        src = args[1]
        extra = {"no_layer": ["--layer", "spliced"], "no_var_column": ["--var-names", "gene_symbols"]}.get(case, [])
        assert_clean_error(run(["predict", files["model"], src, *extra, "-o", str(out)]), needles[0])
        assert not out.exists() and leftovers(tmp_path) == []


def test_truncated_matrix_fails_while_predicting(files, tmp_path):
    """A file whose header reads but whose matrix data is cut off: the error names the file mid-stream."""
    import h5py

    path = tmp_path / "cut.h5ad"
    path.write_bytes(Path(files["sparse"]).read_bytes())
    with h5py.File(path, "r+") as f:
        data_ = f["layers/counts/data"][()]
        del f["layers/counts/data"]
        f["layers/counts/data"] = data_[: len(data_) // 2]
    out = tmp_path / "p.csv"
    assert_clean_error(run(["predict", files["model"], str(path), "-o", str(out)]), "cut.h5ad")
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("layer", [["--layer", "counts"], []], ids=["layer", "X"])
def test_truncated_matrix_fails_while_training(files, tmp_path, layer):
    """A matrix whose data array is cut short is a damaged file, named, not an internal error in training (anndata
    builds the matrix from the stored arrays without checking them)."""
    import h5py

    path = tmp_path / "cut.h5ad"
    path.write_bytes(Path(files["sparse"]).read_bytes())
    with h5py.File(path, "r+") as f:
        key = "layers/counts/data" if layer else "X/data"
        assert key in f  # the fixture's .X and counts layer are both sparse (CSR)
        data_ = f[key][()]
        del f[key]
        f[key] = data_[: len(data_) // 2]
    model_out = tmp_path / "m.mlp"
    result = run(["train", str(path), "--target", "cell_type", *layer, *FAST, "-o", str(model_out)])
    assert_clean_error(result, "cut.h5ad", "truncated or corrupt")
    assert not model_out.exists() and leftovers(tmp_path) == []


def test_a_var_column_of_measurements_or_flags_is_not_taken_for_gene_names(tmp_path):
    """--var-names len (a float column) trained a model whose genes were '0.0', '3.5', ...; whole numbers (Entrez
    ids) are names."""
    adata = make_adata(raw=False)
    adata.var["length"] = np.arange(adata.n_vars) * 3.5
    adata.var["highly_variable"] = np.arange(adata.n_vars) % 2 == 0
    adata.var["entrez"] = np.arange(adata.n_vars) + 100
    path = write(adata, tmp_path / "v.h5ad")
    out = tmp_path / "m.mlp"
    for column, kind in (("length", "measurements (0.0, 3.5, 7.0, ...)"), ("highly_variable", "true/false flags")):
        assert_clean_error(run(["train", path, "--var-names", column, *FAST, "-o", str(out)]), f"--var-names {column!r}",
                           kind, "not gene names", "'symbol'")
        assert not out.exists()
    assert run(["train", path, "--var-names", "entrez", "--target", "cell_type", *FAST, "-o", str(out), "-q"]).exit_code == 0
    assert model_io.load(out).feature_names[:2] == ["100", "101"]


@pytest.mark.parametrize("name, expected", [("e.h5ad", "an AnnData (HDF5) file"), ("e.parquet", "a parquet file"),
                                            ("e.csv", "a header line and data rows")])
def test_an_empty_file_is_said_in_the_words_of_its_format(tmp_path, name, expected):
    """A 0-byte .h5ad was "empty; expected a header line and data rows", a text table's words."""
    (tmp_path / name).write_bytes(b"")
    assert_clean_error(run(["train", str(tmp_path / name), "-o", str(tmp_path / "m.mlp")]),
                       f"{name} is empty (0 bytes); expected {expected}")


def _damaged(source: str, path: Path, key: str, change) -> str:
    """A copy of `source` whose sparse array layers/counts/`key` is replaced by change(its values)."""
    import h5py

    path.write_bytes(Path(source).read_bytes())
    with h5py.File(path, "r+") as f:
        values = change(f[f"layers/counts/{key}"][()].copy())
        del f[f"layers/counts/{key}"]
        f[f"layers/counts/{key}"] = values
    return str(path)


def _set(i: int, value):
    def change(a):
        a[i] = value
        return a
    return change


@pytest.mark.parametrize("key, change, reason", [
    ("indices", _set(10, 5000), "a column index (5,000) lies outside its 40 columns"),
    ("indices", _set(10, -3), "a column index (-3) lies outside its 40 columns"),
    ("indptr", lambda a: _set(100, a[102] + 5)(a), "its index pointer decreases at row 101"),
    ("indptr", _set(0, 7), "its index pointer starts at 7, not 0"),
], ids=["index_beyond", "negative_index", "pointer_decreases", "pointer_not_at_0"])
@pytest.mark.parametrize("command", ["predict", "train"])
def test_damaged_sparse_index_arrays_are_named_not_read_as_other_values(files, tmp_path, key, change, reason, command):
    """A few damaged bytes in a sparse matrix's index arrays: scipy builds the matrix without looking at them, and
    prediction moved or dropped values (wrong labels, exit 0) while training failed deep in NumPy or C++. Each is
    now the file, the matrix and what is wrong with it, exit 1, nothing written."""
    path = _damaged(files["sparse"], tmp_path / "bad.h5ad", key, change)
    out = tmp_path / ("p.csv" if command == "predict" else "m.mlp")
    args = (["predict", files["model"], path] if command == "predict"
            else ["train", path, "--target", "cell_type", "--layer", "counts", *FAST])
    assert_clean_error(run([*args, "-o", str(out)]), "bad.h5ad", "layer 'counts'", reason, "truncated or corrupt")
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("key, dtype", [("indices", "uint64"), ("indptr", "uint64"), ("data", "float16")])
def test_unsigned_index_arrays_and_half_precision_values_are_read(files, tmp_path, key, dtype):
    """Writers other than anndata store unsigned index arrays or float16 values, which scipy.sparse refuses ("unsupported
    data types", after two warnings on stderr): read as signed indices and exact float32 values, the same
    predictions as the file they were written from."""
    path = _damaged(files["sparse"], tmp_path / "odd.h5ad", key, lambda a: a.astype(dtype))
    if dtype == "float16":  # the fixture's counts are small whole numbers: exact in float16
        path_ref = _damaged(files["sparse"], tmp_path / "ref.h5ad", key, lambda a: a.astype(np.float16).astype(a.dtype))
    else:
        path_ref = files["sparse"]
    outs = []
    for name, source in (("odd", path), ("ref", path_ref)):
        out = tmp_path / f"{name}.csv"
        result = run(["predict", files["model"], source, "-o", str(out), "--quiet"])
        assert result.exit_code == 0 and "Warning" not in result.output, result.output
        outs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(*outs)
    result = run(["train", path, "--target", "cell_type", "--layer", "counts", *FAST, "-o", str(tmp_path / "m.mlp"),
                  "--quiet"])
    assert result.exit_code == 0 and "Warning" not in result.output, result.output


@pytest.mark.filterwarnings("ignore")  # anndata warns, rightly, about the old file it converts
def test_pre_07_layout_names_the_conversion(tmp_path):
    """Files written before anndata 0.7 (scanpy's bundled pbmc68k_reduced among them) keep obs and var as
    compound datasets: the error says so and gives the command that converts the file, which then trains."""
    import h5py

    path = tmp_path / "old.h5ad"
    with h5py.File(path, "w") as f:
        f["X"] = np.random.default_rng(0).random((12, 3)).astype(np.float32)
        f["obs"] = np.array([(f"c{i}".encode(), i % 2) for i in range(12)], dtype=[("index", "S4"), ("cell_type", "i1")])
        f["var"] = np.array([(f"g{j}".encode(),) for j in range(3)], dtype=[("index", "S4")])
        f["uns/cell_type_categories"] = np.array([b"B", b"T"])
    model_out = tmp_path / "m.mlp"
    result = run(["train", str(path), "--target", "cell_type", *FAST, "-o", str(model_out)])
    assert_clean_error(result, "old.h5ad", "before anndata 0.7", "write_h5ad('converted.h5ad')")
    assert not model_out.exists() and leftovers(tmp_path) == []
    anndata.read_h5ad(path).write_h5ad(tmp_path / "converted.h5ad")  # the command the message gives
    assert run(["train", str(tmp_path / "converted.h5ad"), "--target", "cell_type", *FAST, "-o", str(model_out),
                "--quiet"]).exit_code == 0


def test_the_trained_layer_is_named_only_when_the_matrix_is_missing(files, tmp_path):
    """A model trained on layer 'counts' and a file without it: the error says how to choose a matrix; a
    missing file or var column is not blamed on the layer."""
    plain = write(make_adata(raw=False), tmp_path / "plain.h5ad")
    import h5py

    with h5py.File(plain, "r+") as f:
        del f["layers/counts"]
    assert_clean_error(run(["predict", files["model"], plain]), "'counts' not found", "the model was trained on "
                       "layer 'counts'", "--layer X")
    for args in ([str(tmp_path / "none.h5ad")], [files["sparse"], "--var-names", "nocol"]):
        result = run(["predict", files["model"], *args])
        assert_clean_error(result, "none.h5ad" if len(args) == 1 else "nocol")
        assert "trained on" not in result.output


def test_missing_anndata_names_the_extra(files, monkeypatch):
    for name in ("anndata", "anndata.io", "anndata.experimental"):
        monkeypatch.setitem(sys.modules, name, None)  # import anndata fails, as without the extra
    assert_clean_error(run(["train", files["sparse"], "--target", "cell_type", "-o", "x.mlp"]), EXTRA_HINT)
    assert_clean_error(run(["predict", files["model"], files["sparse"]]), EXTRA_HINT)
    assert_clean_error(run(["explain", files["model"], files["sparse"]]), EXTRA_HINT)
    assert_clean_error(run(["predict", files["model"], "typo.h5ad"]), "not found: typo.h5ad")  # said first


def test_sample_single_cell_file():
    path = Path(__file__).resolve().parent.parent / "sample_data" / "single_cell.h5ad"
    assert path.stat().st_size < 5 << 20
    adata = anndata.read_h5ad(path)
    assert adata.shape == (3000, 1000)
    counts = adata.layers["counts"]
    assert sp.isspmatrix_csr(counts) and sp.isspmatrix_csr(adata.X)
    assert np.array_equal(counts.data, np.round(counts.data)) and counts.nnz < 0.5 * 3000 * 1000
    assert {"cell_type", "donor_id", "batch"} <= set(adata.obs.columns)
    shares = adata.obs["cell_type"].value_counts(normalize=True)
    assert shares.min() < 0.03  # a rare cell type
    assert "feature_name" in adata.var.columns


def test_genes_the_model_does_not_use_may_share_a_symbol(tmp_path):
    """Real 10x and .h5ad files repeat a few symbols (two loci, one name). A model trained on symbols predicts
    such a file when the repeated genes are not among its own; a repeat among its genes stays an error."""
    train = make_adata(n_genes=30)
    model = str(tmp_path / "sym.mlp")
    result = run(["train", write(train, tmp_path / "train.h5ad"), "--target", "cell_type", "--layer", "counts",
                  "--var-names", "symbol", *FAST, "-o", model, "--quiet"])
    assert result.exit_code == 0, result.output
    new = make_adata(n_genes=32, seed=1)
    new.var["symbol"] = list(train.var["symbol"]) + ["DUPX", "DUPX"]
    out = tmp_path / "p.csv"
    result = run(["predict", model, write(new, tmp_path / "new.h5ad"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "share 1 name in" in result.output and len(pd.read_csv(out)) == new.n_obs
    clash = make_adata(n_genes=32, seed=1)
    clash.var["symbol"] = list(train.var["symbol"]) + [train.var["symbol"].iloc[0], "OTHER"]
    assert_clean_error(run(["predict", model, write(clash, tmp_path / "clash.h5ad"), "-o", str(tmp_path / "q.csv")]),
                       "repeats gene names")


def test_class_names_with_a_slash_keep_a_probability_column_each(tmp_path):
    """'T/NK' cannot name an HDF5 column; written as 'T_NK' it would overwrite a class named 'T_NK'."""
    adata = make_adata()
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(str).map(
        {TYPES[0]: "T/NK", TYPES[1]: "T_NK", TYPES[2]: TYPES[2]})
    model, out = str(tmp_path / "m.mlp"), tmp_path / "o.h5ad"
    source = write(adata, tmp_path / "cells.h5ad")
    assert run(["train", source, "--target", "cell_type", "--layer", "counts", *FAST, "-o", model, "-q"]).exit_code == 0
    result = run(["predict", model, source, "-o", str(out), "--obs-probs"])
    assert result.exit_code == 0, result.output
    probs = [c for c in anndata.read_h5ad(out).obs.columns if c.startswith("mlpcli_prob_")]
    assert len(probs) == 3 and "mlpcli_prob_T_NK" in probs and "HDF5" in result.output
    # predicted again, without --obs-probs: every probability column of the first prediction goes, the one renamed
    # 'mlpcli_prob_T_NK_2' (beside the class T_NK's) too, which was left behind
    again = tmp_path / "again.h5ad"
    result = run(["predict", model, str(out), "--layer", "counts", "-o", str(again)])
    assert result.exit_code == 0, result.output
    assert not [c for c in anndata.read_h5ad(again).obs.columns if c.startswith("mlpcli_prob_")]


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_obs_probs_of_a_model_without_class_probabilities_is_a_usage_error(tmp_path, task):
    """--obs-probs adds one probability column per class; for a regression model (no probabilities) and a
    multi-label one (each label's <prefix><label>_prob is written anyway) it was ignored without a word."""
    adata = make_adata(n_cells=60, n_genes=12)
    adata.obs["score"] = np.linspace(0.5, 9.5, adata.n_obs)
    adata.obs["is_a"] = (adata.obs["cell_type"] == TYPES[0]).astype(int)
    adata.obs["is_b"] = (adata.obs["cell_type"] == TYPES[1]).astype(int)
    source, model, out = write(adata, tmp_path / "c.h5ad"), str(tmp_path / "m.mlp"), tmp_path / "o.h5ad"
    target = "score" if task == "regression" else "is_a,is_b"
    res = run(["train", source, "--target", target, "--layer", "counts", "--epochs", "2", "--hidden", "",
               "--folds", "1", "-o", model, "-q"])
    assert res.exit_code == 0, res.output
    res = run(["predict", model, source, "-o", str(out), "--obs-probs"])
    assert res.exit_code == 2 and f"--obs-probs applies to binary and multiclass models; this model is {task}" in \
        res.output, res.output
    assert not out.exists() and not leftovers(tmp_path)


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
def test_contradictory_or_inapplicable_input_options_are_usage_errors_in_every_command(files, tmp_path, command):
    """Exit 2 as in train: they exited 1 in predict, evaluate and explain, or (explain) were ignored."""
    model, cells = files["model"], files["sparse"]
    table = tmp_path / "t.csv"
    anndata.read_h5ad(cells).to_df(layer="counts").to_csv(table)
    for data_file, extra, flag in ((cells, ["--raw", "--layer", "counts"], "--raw"),
                                   (cells, ["--features-in-rows"], "--features-in-rows"),
                                   (str(table), ["--layer", "counts"], "--layer")):
        assert_clean_error(run([command, model, data_file, *extra, "-q"]), flag, code=2)


def test_an_obs_prefix_never_removes_the_users_own_columns(files, tmp_path):
    """--obs-prefix cell removed the input's cell_type (it starts with "cell") as "an earlier prediction's"
    column: the ground truth was gone from the output. Only columns a prediction writes are replaced or
    removed; a prefix with "/" (written as "_") re-predicts its own output."""
    import anndata as ad

    out = tmp_path / "a.h5ad"
    assert run(["predict", files["model"], files["sparse"], "-o", str(out), "--obs-prefix", "cell", "-q"]).exit_code == 0
    columns = ad.read_h5ad(out).obs.columns.tolist()
    assert "cell_type" in columns and "batch" in columns and "cellcell_type" in columns
    again = tmp_path / "b.h5ad"
    assert run(["predict", files["model"], str(out), "-o", str(again), "--obs-prefix", "b", "-q"]).exit_code == 0
    assert "batch" in ad.read_h5ad(again).obs.columns
    slash, twice = tmp_path / "s.h5ad", tmp_path / "s2.h5ad"
    assert run(["predict", files["model"], files["sparse"], "-o", str(slash), "--obs-prefix", "a/b_", "-q"]).exit_code == 0
    res = run(["predict", files["model"], str(slash), "-o", str(twice), "--obs-prefix", "a/b_", "-q"])
    assert res.exit_code == 0, res.output
    assert sorted(ad.read_h5ad(twice).obs.columns) == sorted(ad.read_h5ad(slash).obs.columns)


@pytest.mark.parametrize("trained, given, warned", [
    ("counts", ["--layer", "X"], (".X (--layer X)", "trained on layer 'counts'", "leave out --layer X")),
    ("X", ["--layer", "counts"], ("layer 'counts'", "trained on .X", "to read .X as in training")),
    ("X", ["--raw"], (".raw.X (--raw)", "trained on .X")),
    ("counts", ["--layer", "counts"], None),
    ("counts", [], None),
    ("raw", [], None),
    ("X", ["--layer", "X"], None),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_another_matrix_than_in_training_is_a_warning(cells, tmp_path, trained, given, warned):
    """predict --raw on a model trained on --layer counts (values on another scale) had only the note naming
    the matrix read."""
    path, models = cells
    for command, extra in (("predict", ["-o", str(tmp_path / "p.csv")]), ("evaluate", []), ("explain", [])):
        res = run([command, models[trained], path, *given, "-q", *extra])
        assert res.exit_code == 0, res.output
        if warned is None:
            assert "warning: features from" not in res.output, (command, res.output)
        else:
            assert "warning: features from" in res.output, (command, res.output)
            for needle in warned:
                assert needle in res.output, (command, needle, res.output)


@pytest.mark.parametrize("trained, given, read", [
    ("counts", ["--raw"], ".raw.X (--raw), not layer 'counts' as in training"),
    ("raw", ["--layer", "counts"], "layer 'counts' (--layer counts), not .raw.X as in training"),
])
def test_another_matrix_of_raw_counts_for_a_model_of_counts_is_a_note(cells, tmp_path, trained, given, read):
    """A reference trained on its counts layer, a query whose counts are in .raw.X (or .X): "values on another scale
    (raw counts where it learned log-normalised ones, or the reverse)" was warned on every prediction, though both
    matrices held whole numbers and the model records that it learned counts. The note names both."""
    path, models = cells
    res = run(["predict", models[trained], path, *given, "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "warning: features from" not in res.output, res.output
    assert read in res.output and "both hold raw counts" in res.output, res.output


def test_a_model_trained_on_a_table_records_no_matrix(cells, tiny, tmp_path):
    """What the warning compares with (and `info` shows): nothing for a table's model, so no warning there."""
    from mlpcli.model_summary import trained_matrix

    assert trained_matrix(model_io.load(tiny["multiclass"][0])) is None
    assert trained_matrix(model_io.load(cells[1]["X"])) == ".X"


@pytest.mark.parametrize("command", ["train", "predict"])
@pytest.mark.parametrize("flag", [["--sep", "tab"], ["--decimal", "comma"]])
def test_text_reading_options_on_an_h5ad_or_parquet_file_are_usage_errors(files, tmp_path, command, flag):
    """--sep tab with an .h5ad (or parquet) file was ignored without a word, as if it had been read so."""
    parquet = tmp_path / "t.parquet"
    anndata.read_h5ad(files["sparse"]).to_df().assign(cell_type="T").to_parquet(parquet)
    for source, kind in ((files["sparse"], "an .h5ad file"), (str(parquet), "a parquet file")):
        out = tmp_path / ("m.mlp" if command == "train" else "p.csv")
        args = ["train", source, "--target", "cell_type", *FAST] if command == "train" else [
            "predict", files["model"], source]
        assert_clean_error(run([*args, *flag, "-o", str(out)]), f"{flag[0]} applies to text tables", kind, code=2)
        assert not out.exists()


def test_drop_of_a_gene_by_its_symbol_points_to_the_name_it_is_read_by(files, tmp_path):
    """`--drop G3` where genes are named by Ensembl id listed the .obs columns only ("not found"), as if genes could
    not be dropped."""
    res = run(["train", files["sparse"], "--target", "cell_type", "--drop", "G3", *FAST, "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "--drop 'G3' is a value of the var column 'symbol'", "'ENSG00003'", "--var-names symbol")
    ok = run(["train", files["sparse"], "--target", "cell_type", "--drop", "ENSG00003", *FAST, "-q",
              "-o", str(tmp_path / "m.mlp")])
    assert ok.exit_code == 0 and "ENSG00003" not in model_io.load(tmp_path / "m.mlp").feature_names


def test_a_matrix_of_the_other_kind_than_the_models_training_cells_is_a_warning(files, tmp_path):
    """A counts layer holding a copy of the log-normalised .X (or an .X of counts for a model of log-normalised
    cells): the predictions were off with no word (the shift check saw nothing); the model records whether its cells
    were counts, and predict compares."""
    assert model_io.load(files["model"]).provenance["counts"] is True  # trained on the 'counts' layer
    copied = anndata.read_h5ad(files["sparse"])
    copied.layers["counts"] = copied.X.copy()
    path = write(copied, tmp_path / "copied.h5ad")
    res = run(["predict", files["model"], path, "-o", str(tmp_path / "p.csv"), "-q"])
    assert res.exit_code == 0 and "warning: features from layer 'counts', whose values are not counts" in res.output
    same = run(["predict", files["model"], files["sparse"], "-o", str(tmp_path / "p.csv"), "-q"])
    assert "whose values are not counts" not in same.output
    logged = str(tmp_path / "logged.mlp")  # a model of the log-normalised .X, given counts there
    assert run(["train", files["sparse"], "--target", "cell_type", *FAST, "-o", logged, "-q"]).exit_code == 0
    assert model_io.load(logged).provenance["counts"] is False
    counted = anndata.read_h5ad(files["sparse"])
    counted.X = counted.layers["counts"].copy()
    path = write(counted, tmp_path / "counted.h5ad")
    res = run(["predict", logged, path, "-o", str(tmp_path / "p.csv"), "-q"])
    assert "warning: features from .X, whose values are whole numbers (raw counts?)" in res.output


@pytest.mark.parametrize("compression", ["gzip", None])
def test_the_rewritten_obs_keeps_the_inputs_compression(files, tmp_path, compression):
    """predict -o out.h5ad rewrote .obs uncompressed, where the input's (as scanpy writes it) was gzip: every other
    dataset kept its filter."""
    import h5py

    source = tmp_path / "in.h5ad"
    anndata.read_h5ad(files["sparse"]).write_h5ad(source, compression=compression)
    out = tmp_path / "out.h5ad"
    assert run(["predict", files["model"], str(source), "-o", str(out), "-q"]).exit_code == 0

    def filters(path) -> set:
        found = set()
        with h5py.File(path) as f:
            f["obs"].visititems(lambda _, o: found.add(o.compression) if isinstance(o, h5py.Dataset) else None)
        return found

    assert filters(out) == filters(source) == {compression}


@pytest.mark.parametrize("command", ["evaluate", "explain"])
def test_repeated_cell_names_in_evaluate_and_explain_name_the_fix_not_an_h5ad_output(cells, tmp_path, command):
    """Cells of two samples concatenated without index_unique: explain's error offered "-o FILE.h5ad, which annotates
    the cells in place" (explain writes no .h5ad), and evaluate's said ids join predictions back to samples (it
    joins nothing); both now name the fix train names (obs_names_make_unique)."""
    path, models = cells
    adata = anndata.read_h5ad(path)
    adata.obs_names = [f"c{i % 60:04d}" for i in range(adata.n_obs)]
    repeated = write(adata, tmp_path / "concatenated.h5ad")
    res = run([command, models["counts"], repeated, *(["--target", "cell_type"] if command == "evaluate" else [])])
    assert_clean_error(res, "duplicate sample id 'c0000'", "concatenated.h5ad", "obs_names_make_unique()",
                       "--id COLUMN")
    assert "FILE.h5ad" not in res.output and "join predictions back" not in res.output


def test_the_default_portfolio_on_sparse_cells_shares_folds_in_worker_processes(files):
    """Sparse counts under --hidden auto, the members in worker processes that keep a fold's preprocessed rows for its
    other candidates (rows centred as they are densified: sized by their matrix): the model trained one by one here."""
    from mlpcli import parallel, pipeline
    from mlpcli.config import TrainOptions

    options = TrainOptions(target=["cell_type"], layer="counts", folds=3, epochs=2)
    workers = pipeline.train(files["sparse"], options, plan=parallel.Plan(n_jobs=2, auto=True))
    here = pipeline.train(files["sparse"], options, plan=parallel.Plan(n_jobs=1))
    assert len(workers.fitted.portfolio) > 1
    assert model_io.to_bytes(workers.model) == model_io.to_bytes(here.model)
