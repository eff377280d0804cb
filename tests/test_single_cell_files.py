"""Single-cell files as GEO and scanpy hand them out: an empty AnnData layer, .raw's var names, 10x matrices
without entries, and GEO's prefixed 10x file names."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlpcli import data
from mlpcli.errors import DataError
from cli_helpers import assert_clean_error, run
from tables import cell_counts, write_cellranger

anndata = pytest.importorskip('anndata')


N_CELLS, N_GENES = 120, 20


def _h5ad(path, *, empty_layer: bool = False, raw: bool = False):
    """A scanpy-like file: log-normalised CSR .X, int32 CSC counts layer, categorical obs, obs_names '0', '1',
    ...; var_names symbols with gene_ids and feature_name columns; optionally an all-zero layer and a .raw
    with more genes (its var without feature_name, as scanpy's .raw keeps var as it was)."""
    X, types = cell_counts(N_CELLS, N_GENES, dtype=np.int32)
    obs = pd.DataFrame({"cell_type": pd.Categorical([f"type{t}" for t in types]),
                        "donor_id": pd.Categorical([f"D{i % 6}" for i in range(N_CELLS)])},
                       index=[str(i) for i in range(N_CELLS)])
    symbols = [f"GENE{j}" for j in range(N_GENES)]
    var = pd.DataFrame({"gene_ids": [f"ENSG{j:011d}" for j in range(N_GENES)], "feature_name": symbols},
                       index=symbols)
    a = anndata.AnnData(X=sp.csr_matrix(np.log1p(X).astype(np.float32)), obs=obs, var=var)
    a.layers["counts"] = sp.csc_matrix(X)
    if empty_layer:
        a.layers["empty"] = sp.csr_matrix((N_CELLS, N_GENES), dtype=np.float32)
    if raw:
        more = np.hstack([X, np.ones((N_CELLS, 3), np.int32)]).astype(np.float32)
        a.raw = anndata.AnnData(X=sp.csr_matrix(more), obs=obs,
                                var=pd.DataFrame(index=symbols + ["EXTRA0", "EXTRA1", "EXTRA2"]))
    a.write_h5ad(path)
    return str(path)


def _tenx(directory, prefix: str = "", X=None):
    """Cell Ranger's three gzipped files, each name with `prefix` (GEO's GSM..._), in `directory`."""
    X = cell_counts(N_CELLS, N_GENES, dtype=np.int32)[0] if X is None else X
    write_cellranger(directory, X, prefix=prefix)
    return str(directory)


def test_an_empty_layer_is_an_error_naming_it_in_train_and_predict(tmp_path):
    """An all-zero placeholder layer trained on said 'all 60 features are constant' without naming the layer,
    and predicted one class for every cell with exit 0; now both name the layer and list the file's matrices."""
    path = _h5ad(tmp_path / "cells.h5ad", empty_layer=True)
    model = str(tmp_path / "m.mlp")
    result = run(["train", path, "--target", "cell_type", "--layer", "empty", "--epochs", "3", "--folds", "1",
                  "-o", model])
    assert_clean_error(result, "layer 'empty' stores no values", "layer 'counts'")
    assert not os.path.exists(model)
    assert run(["train", path, "--target", "cell_type", "--layer", "counts", "--epochs", "3", "--folds", "1",
                "--hidden", "none", "-q", "-o", model]).exit_code == 0
    out = tmp_path / "p.csv"
    assert_clean_error(run(["predict", model, path, "--layer", "empty", "-o", str(out)]),
                       "layer 'empty' stores no values")
    assert not out.exists()
    # the layers with values are read as before
    with data.h5ad.H5ad(path, layer="counts") as h:
        assert h.read_matrix().nnz > 0


def test_a_10x_matrix_without_entries_is_an_error(tmp_path):
    directory = _tenx(tmp_path / "run", X=np.zeros((N_CELLS, N_GENES), np.int32))
    with pytest.raises(DataError, match=r"matrix\.mtx\.gz holds no counts \(0 entries"):
        data.tenx.TenX(directory)


def test_geo_prefixed_10x_files_read_as_the_plain_directory(tmp_path):
    """GEO hands out one sample's files as GSM123_s1_matrix.mtx.gz, ...: they were 'no matrix.mtx.gz'; now the
    one prefix is read (with a note), and predictions equal those of the plain directory."""
    plain = _tenx(tmp_path / "plain")
    geo = _tenx(tmp_path / "GSE1", prefix="GSM1_s1_")
    a, b = data.tenx.TenX(plain), data.tenx.TenX(geo)
    assert (a.read_matrix() != b.read_matrix()).nnz == 0
    assert list(a.barcodes) == list(b.barcodes) and a.feature_names == b.feature_names
    assert any("prefix 'GSM1_s1_'" in n for n in b.notes)

    X, types = cell_counts(N_CELLS, N_GENES, dtype=np.int32)
    sheet = tmp_path / "cells.csv"
    pd.DataFrame({"barcode": [f"AAAC{i:06d}-1" for i in range(N_CELLS)],
                  "cell_type": [f"type{t}" for t in types]}).to_csv(sheet, index=False)
    model = str(tmp_path / "m.mlp")
    assert run(["train", geo, "--samples", str(sheet), "--target", "cell_type", "--epochs", "3", "--folds", "1",
                "--hidden", "none", "-q", "-o", model]).exit_code == 0
    for directory, out in ((plain, "p1.csv"), (geo, "p2.csv")):
        assert run(["predict", model, directory, "-q", "-o", str(tmp_path / out)]).exit_code == 0
    p1, p2 = pd.read_csv(tmp_path / "p1.csv"), pd.read_csv(tmp_path / "p2.csv")
    pd.testing.assert_frame_equal(p1, p2)
    assert (p1["pred_cell_type"] == [f"type{t}" for t in types]).mean() > 0.9


def test_geo_prefixed_10x_files_of_several_samples_or_a_missing_one_are_errors(tmp_path):
    geo = _tenx(tmp_path / "GSE1", prefix="GSM1_s1_")
    shutil.copy(os.path.join(geo, "GSM1_s1_matrix.mtx.gz"), os.path.join(geo, "GSM2_s2_matrix.mtx.gz"))
    with pytest.raises(DataError, match=r"matrices of 2 samples.*GSM1_s1_matrix\.mtx\.gz, GSM2_s2_matrix"):
        data.tenx.TenX(geo)
    os.remove(os.path.join(geo, "GSM2_s2_matrix.mtx.gz"))
    os.remove(os.path.join(geo, "GSM1_s1_barcodes.tsv.gz"))
    with pytest.raises(DataError, match=r"has GSM1_s1_matrix\.mtx\.gz but no GSM1_s1_barcodes\.tsv\.gz"):
        data.tenx.TenX(geo)
    # a directory without any matrix keeps its message
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DataError, match=r"has no matrix\.mtx\.gz"):
        data.tenx.TenX(tmp_path / "empty")


def test_raw_var_names_column_only_in_var_says_so(tmp_path):
    """`--raw --var-names feature_name` said 'no such var column' while .var has it: .raw's genes are named by
    .raw.var, which the message now names, with the fix."""
    path = _h5ad(tmp_path / "cells.h5ad", raw=True)
    result = run(["train", path, "--target", "cell_type", "--raw", "--var-names", "feature_name", "--epochs", "3",
                  "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(result, "no such .raw.var column", ".var has it", "leave out --var-names or --raw")
    with data.h5ad.H5ad(path, var_names="feature_name") as h:  # .X's genes by the column: as before
        assert h.feature_names[:2] == ["GENE0", "GENE1"]
    with pytest.raises(DataError, match=r"no such var column .* its var columns: 'gene_ids', 'feature_name'"):
        data.h5ad.H5ad(path, var_names="symbol")
