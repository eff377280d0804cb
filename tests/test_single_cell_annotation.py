"""Single-cell inputs and outputs by use: a CSR matrix storing a gene twice for one cell, an .h5ad re-annotated by
another model (probabilities of classes it lacks removed, another target's kept), hand-written 10x files, and
cell sheets joined beside an obs column sample_id."""

import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlpcli import data
from cli_helpers import assert_clean_error, run
from tables import cell_counts, write_cellranger

anndata = pytest.importorskip('anndata')


N_CELLS, N_GENES = 120, 20


def _h5ad(path, names=("B", "NK", "T"), counts=None, target="cell_type"):
    """Counts in .X (CSR, or `counts` as given), the cell types under `target` with `names`, 6 donors."""
    X, types = cell_counts(N_CELLS, N_GENES, dtype=np.float32)
    obs = pd.DataFrame({target: pd.Categorical([names[t] for t in types]),
                        "donor_id": pd.Categorical([f"D{i % 6}" for i in range(N_CELLS)])},
                       index=[f"AAAC{i:06d}-1" for i in range(N_CELLS)])
    var = pd.DataFrame(index=[f"GENE{j}" for j in range(N_GENES)])
    anndata.AnnData(X=sp.csr_matrix(X) if counts is None else counts, obs=obs, var=var).write_h5ad(path)
    return str(path)


def _doubled(X: np.ndarray) -> sp.csr_matrix:
    """`X` as CSR storing each non-zero value as two entries of half of it at the same position (sorted)."""
    C = sp.csr_matrix(X)
    rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
    r, c = np.concatenate([rows, rows]), np.concatenate([C.indices, C.indices])
    d = np.concatenate([C.data / 2, C.data / 2]).astype(np.float32)
    order = np.lexsort((c, r))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=C.shape[0]))])
    return sp.csr_matrix((d[order], c[order], indptr), shape=C.shape)


def test_a_csr_matrix_storing_a_position_twice_trains_as_its_sums(tmp_path):
    """A CSR matrix with two entries at one position (another tool's writer) means their sum, as a dense read
    gives it. Training preprocessed the stored values one by one (log1p of each half, squares of each for the
    SD): the SD came out NaN and the model file was refused on loading ('not finite')."""
    X, _ = cell_counts(N_CELLS, N_GENES, dtype=np.float32)
    D = _doubled(X)
    assert not D.has_canonical_format and np.array_equal(D.toarray(), X)
    path = _h5ad(tmp_path / "dup.h5ad", counts=D)
    with data.h5ad.H5ad(path) as h:
        M = h.read_matrix()
    assert M.has_canonical_format and M.nnz == np.count_nonzero(X)
    np.testing.assert_array_equal(M.toarray(), X)

    clean = _h5ad(tmp_path / "clean.h5ad")
    preds = {}
    for name, source in (("dup", path), ("clean", clean)):
        model = str(tmp_path / f"{name}.mlp")
        res = run(["train", source, "--target", "cell_type", "--epochs", "3", "--folds", "1", "--seed", "1",
                   "-o", model, "-q"])
        assert res.exit_code == 0, res.output
        assert "RuntimeWarning" not in res.output
        out = tmp_path / f"{name}.csv"
        res = run(["predict", model, clean, "-o", str(out), "-q"])
        assert res.exit_code == 0, res.output
        preds[name] = pd.read_csv(out)
    pd.testing.assert_frame_equal(preds["dup"], preds["clean"])


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    """(directory, file annotated by a model of classes B/DC/T with --obs-probs, a model of B/NK/T for the
    same target, one of B/NK/T for another target 'lineage')."""
    d = tmp_path_factory.mktemp("obs_probs")
    models = {}
    for key, names, target in (("old", ("B", "DC", "T"), "cell_type"), ("new", ("B", "NK", "T"), "cell_type"),
                               ("other", ("B", "NK", "T"), "lineage")):
        source = _h5ad(d / f"{key}.h5ad", names=names, target=target)
        models[key] = str(d / f"{key}.mlp")
        res = run(["train", source, "--target", target, "--epochs", "3", "--folds", "1", "-o", models[key], "-q"])
        assert res.exit_code == 0, res.output
    cells = _h5ad(d / "cells.h5ad", target="truth")
    first = str(d / "first.h5ad")
    res = run(["predict", models["old"], cells, "-o", first, "--obs-probs", "-q"])
    assert res.exit_code == 0, res.output
    assert {"mlpcli_prob_B", "mlpcli_prob_DC", "mlpcli_prob_T"} <= set(anndata.read_h5ad(first).obs.columns)
    return d, first, models


def test_reannotating_removes_the_probability_of_a_class_the_new_model_lacks(annotated):
    """The old model's `mlpcli_prob_DC` stayed beside the new model's labels and probabilities, which then
    summed to up to 2 per cell; it is an earlier prediction's column of the target written now, removed with a
    note."""
    d, first, models = annotated
    out = d / "second.h5ad"
    res = run(["predict", models["new"], first, "-o", str(out), "--obs-probs"])
    assert res.exit_code == 0, res.output
    assert "removed the obs column 'mlpcli_prob_DC'" in " ".join(res.output.split())
    obs = anndata.read_h5ad(out).obs
    probs = [c for c in obs.columns if c.startswith("mlpcli_prob_")]
    assert sorted(probs) == ["mlpcli_prob_B", "mlpcli_prob_NK", "mlpcli_prob_T"]
    np.testing.assert_allclose(obs[probs].sum(axis=1), 1.0, atol=1e-5)
    assert list(obs["mlpcli_cell_type"].cat.categories) == ["B", "NK", "T"]


def test_another_targets_probabilities_are_neither_overwritten_nor_removed(annotated):
    """A model of another target ('lineage') whose classes share names with the earlier prediction's wrote
    its `mlpcli_prob_B` over the earlier one's, leaving a mix of two models' probabilities (B and T of one,
    DC of the other); without --obs-probs it removed B and T and kept DC. Now the first is an error naming the
    columns and --obs-prefix, leaving no file, and the second keeps the earlier prediction's whole set."""
    d, first, models = annotated
    out = d / "mixed.h5ad"
    res = run(["predict", models["other"], first, "-o", str(out), "--obs-probs"])
    assert_clean_error(res, "'mlpcli_prob_B'", "'mlpcli_cell_type'", "--obs-prefix")
    assert not out.exists() and not [f for f in os.listdir(d) if f.startswith(".mixed")]

    res = run(["predict", models["other"], first, "-o", str(out)])
    assert res.exit_code == 0, res.output
    obs = anndata.read_h5ad(out).obs
    assert {"mlpcli_prob_B", "mlpcli_prob_DC", "mlpcli_prob_T", "mlpcli_cell_type", "mlpcli_lineage"} <= \
        set(obs.columns)
    before = anndata.read_h5ad(first).obs
    pd.testing.assert_series_equal(obs["mlpcli_prob_B"], before["mlpcli_prob_B"])

    res = run(["predict", models["other"], first, "-o", str(d / "apart.h5ad"), "--obs-probs",
               "--obs-prefix", "lin_"])
    assert res.exit_code == 0, res.output


def _tenx(directory, X, features_header: str | None = None, barcodes_header: str | None = None,
          transposed: bool = False):
    """Cell Ranger's three gzipped files for `X` (cells × genes), as a hand-written export may get them: a
    header line in features.tsv.gz or barcodes.tsv.gz, the matrix cells × features."""
    write_cellranger(directory, X, integer=True, features_header=features_header, barcodes_header=barcodes_header,
                     transposed=transposed)
    return str(directory)


@pytest.fixture(scope="module")
def tenx_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("tenx_model")
    model = str(d / "m.mlp")
    res = run(["train", _h5ad(d / "cells.h5ad"), "--target", "cell_type", "--epochs", "3", "--folds", "1",
               "-o", model, "-q"])
    assert res.exit_code == 0, res.output
    return model


@pytest.mark.parametrize("kind", ["features", "barcodes"])
def test_a_header_line_in_a_hand_written_10x_file_is_named(tmp_path, tenx_model, kind):
    """A features or barcodes file written with its column names (pandas' to_csv, R's write.table) has one
    line more than the matrix: the error said the files 'do not belong together'; it now shows the line and
    says to remove it."""
    X, _ = cell_counts(N_CELLS, N_GENES, dtype=np.float32)
    header = "gene_id\tgene_name\tfeature_type" if kind == "features" else "barcode"
    directory = _tenx(tmp_path / "tenx", X, **{f"{kind}_header": header})
    res = run(["predict", tenx_model, directory, "--var-names", "gene_symbols", "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, f"{kind}.tsv.gz", "looks like a header", "remove that line")
    assert "do not belong together" not in res.output
    assert not (tmp_path / "p.csv").exists()


def test_a_10x_matrix_written_cells_by_features_says_to_transpose_it(tmp_path, tenx_model):
    """scipy.io.mmwrite(path, adata.X) writes cells × genes; Cell Ranger's matrix is features × barcodes. The
    error compared 120 'features' with the 20 listed; it now says the matrix is transposed, in train (with a
    sample sheet) and predict alike."""
    X, types = cell_counts(N_CELLS, N_GENES, dtype=np.float32)
    directory = _tenx(tmp_path / "tenx", X, transposed=True)
    res = run(["predict", tenx_model, directory, "--var-names", "gene_symbols", "-o", str(tmp_path / "p.csv")])
    assert_clean_error(res, "matrix.mtx.gz", "cells × features", "features × barcodes", "adata.X.T")
    sheet = tmp_path / "cells.csv"
    pd.DataFrame({"barcode": [f"AAAC{i:06d}-1" for i in range(N_CELLS)], "cell_type": types}).to_csv(sheet,
                                                                                                      index=False)
    res = run(["train", directory, "--samples", str(sheet), "--target", "cell_type", "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "cells × features")
    assert not (tmp_path / "m.mlp").exists()
    # the right way round reads, and the same cells get the same predictions as from the .h5ad file
    good = _tenx(tmp_path / "good", X)
    res = run(["predict", tenx_model, good, "--var-names", "gene_symbols", "-o", str(tmp_path / "p.csv"), "-q"])
    assert res.exit_code == 0, res.output


def test_a_sheet_joins_cells_by_their_names_beside_an_obs_column_sample_id(tmp_path):
    """Single-cell files often have an obs column `sample_id`: the sample each cell came from. A sheet of one
    row per cell whose id column is not `sample_id` was joined on that obs column, not on obs_names ('no
    sample has a row'), in train and predict; it is joined on the cell names now. A sheet of one row per
    sample joined on it (sample_id → condition) was called a 'duplicate sample id' of the .h5ad file; the
    error now says the join is one row per cell and how to add per-sample annotations to .obs."""
    path = _h5ad(tmp_path / "cells.h5ad")
    a = anndata.read_h5ad(path)
    a.obs["sample_id"] = pd.Categorical([f"S{i % 4}" for i in range(N_CELLS)])
    a.write_h5ad(path)
    sheet = tmp_path / "samples.csv"
    pd.DataFrame({"sample_id": [f"S{i}" for i in range(4)], "condition": ["ctrl", "case"] * 2}).to_csv(sheet,
                                                                                                     index=False)
    res = run(["train", path, "--samples", str(sheet), "--target", "cell_type", "--batch", "condition",
               "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "'sample_id'", "'S0'", "one row per cell", "obs_names", str(sheet), ".obs")
    assert "duplicate sample id" not in res.output
    # a sheet of one row per cell is still joined on the cell names
    pd.DataFrame({"cell": a.obs_names, "condition": ["ctrl", "case"] * (N_CELLS // 2)}).to_csv(sheet, index=False)
    model = str(tmp_path / "m.mlp")
    res = run(["train", path, "--samples", str(sheet), "--target", "cell_type", "--batch", "condition",
               "--epochs", "3", "--folds", "1", "-o", model])
    assert res.exit_code == 0, res.output
    assert "joined on" in res.output and "'obs_names' to the sheet's 'cell'" in " ".join(res.output.split())
    res = run(["predict", model, path, "--samples", str(sheet), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert f"{N_CELLS} of the {N_CELLS} samples" in " ".join(res.output.split())


def test_a_cell_sheet_with_a_sample_id_column_names_its_cell_column_and_joins_with_id(tmp_path):
    """A sheet of cells (cell or barcode, then the sample each came from, the type) has a `sample_id` column,
    which the default rule takes as the id: 'duplicate sample id' with no way out named; for an .h5ad file
    `--id cell` was refused ('not a column of cells.h5ad'), so the sheet could not be joined at all. The
    error now names the first column and --id, and --id joins it to obs_names in train and predict."""
    path = _h5ad(tmp_path / "cells.h5ad")
    a = anndata.read_h5ad(path)
    a.obs = a.obs.drop(columns=["cell_type"])
    a.write_h5ad(path)
    _, types = cell_counts(N_CELLS, N_GENES, dtype=np.float32)
    sheet = tmp_path / "cells.csv"
    pd.DataFrame({"cell": a.obs_names, "sample_id": [f"S{i % 4}" for i in range(N_CELLS)],
                  "cell_type": [("B", "NK", "T")[t] for t in types]}).to_csv(sheet, index=False)
    model = str(tmp_path / "m.mlp")
    res = run(["train", path, "--samples", str(sheet), "--target", "cell_type", "-o", model])
    assert_clean_error(res, "duplicate sample id 'S0'", "'sample_id'", "--id cell")
    res = run(["train", path, "--samples", str(sheet), "--id", "cell", "--target", "cell_type", "--epochs", "3",
               "--folds", "1", "-o", model])
    assert res.exit_code == 0, res.output
    assert "'obs_names' to the sheet's 'cell'" in " ".join(res.output.split())
    out = tmp_path / "p.csv"
    res = run(["evaluate", model, path, "--samples", str(sheet), "--id", "cell"])
    assert res.exit_code == 0, res.output
    res = run(["predict", model, path, "--samples", str(sheet), "--id", "cell", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out)["obs_names"].tolist() == list(a.obs_names)
    # a 10x directory: the same sheet by barcode
    directory = _tenx(tmp_path / "tenx", cell_counts(N_CELLS, N_GENES, dtype=np.float32)[0])
    res = run(["train", directory, "--samples", str(sheet), "--target", "cell_type", "-o", model])
    assert_clean_error(res, "--id cell")
