"""10x Genomics output directories (issue 13, item 6): `train` with a sample sheet of labels per barcode,
`predict`, gene ids or symbols (--var-names, as for .h5ad, with the same mismatch message), Cell Ranger 2's
genes.tsv.gz, and bad directories: each a one-line error naming the file, exit 1, nothing written."""

from __future__ import annotations

import gzip
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from mlpcli import data
from mlpcli.data.tenx import TenX
from mlpcli.errors import DataError
from cli_helpers import assert_clean_error, run, write_tenx
from tables import write_cellranger

N_CELLS, N_GENES = 240, 30


def write_10x(directory, n_cells: int = N_CELLS, n_genes: int = N_GENES, seed: int = 0, legacy: bool = False,
              compressed: bool = True):
    """A Cell Ranger-like directory (matrix.mtx.gz features × barcodes, features.tsv.gz id/symbol/type,
    barcodes.tsv.gz) of Poisson counts whose 3 cell types raise 5 genes each; returns (barcodes, types, X)."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, 3, n_cells)
    rate = np.full((3, n_genes), 0.5)
    for t in range(3):
        rate[t, t * 5:(t + 1) * 5] = 4.0
    X = rng.poisson(rate[types])  # (cells, genes)
    barcodes = write_cellranger(directory, X, legacy=legacy, compressed=compressed)
    return barcodes, types, X


def write_sheet(path, barcodes, types, id_column: str = "barcode"):
    pd.DataFrame({id_column: barcodes, "cell_type": [f"type{t}" for t in types],
                  "donor": [f"D{i % 12}" for i in range(len(barcodes))]}).to_csv(path, index=False)
    return str(path)


@pytest.fixture()
def tenx(tmp_path):
    barcodes, types, X = write_10x(tmp_path / "run")
    sheet = write_sheet(tmp_path / "cells.csv", barcodes, types)
    return tmp_path, str(tmp_path / "run"), sheet, X


TRAIN = ["--target", "cell_type", "--group", "donor", "--folds", "1", "--epochs", "3", "--hidden", "", "-q"]


def test_dataset_from_a_10x_directory_is_sparse_cells_by_genes(tenx):
    _, run_dir, sheet, X = tenx
    ds, notes = data.load_dataset(run_dir, target="cell_type", group="donor", samples=sheet)
    assert data.is_sparse(ds.X) and ds.X.dtype == np.float32 and ds.X.shape == (N_CELLS, N_GENES)
    assert np.array_equal(ds.X.toarray(), X)
    assert ds.feature_names[0] == "ENSG00000000000" and ds.ids[0] == "AAAC000000-1"
    assert any("10x Genomics" in n for n in notes)
    symbols, _ = data.load_dataset(run_dir, target="cell_type", no_group=True, samples=sheet,
                                   var_names="gene_symbols")
    assert symbols.feature_names[:2] == ["GENE0", "GENE1"]


def test_the_sheet_id_column_is_matched_to_the_barcodes_whatever_its_name(tmp_path):
    barcodes, types, _ = write_10x(tmp_path / "run")
    keep = barcodes[: N_CELLS // 2]
    sheet = write_sheet(tmp_path / "cells.csv", keep, types[: N_CELLS // 2], id_column="cell")
    ds, notes = data.load_dataset(str(tmp_path / "run"), target="cell_type", no_group=True, samples=sheet)
    assert ds.n_samples == N_CELLS // 2 and list(ds.ids) == keep
    assert any("have no row in the sheet (left out)" in n for n in ds.warnings)


@pytest.mark.parametrize("legacy, compressed", [(False, True), (True, True), (False, False)])
def test_train_then_predict_on_10x_directories(tmp_path, legacy, compressed):
    barcodes, types, _ = write_10x(tmp_path / "run", legacy=legacy, compressed=compressed)
    sheet = write_sheet(tmp_path / "cells.csv", barcodes, types)
    model = str(tmp_path / "m.mlp")
    res = run(["train", str(tmp_path / "run"), "--samples", sheet, *TRAIN, "--epochs", "40", "-o", model])
    assert res.exit_code == 0, res.output
    out = tmp_path / "p.csv"
    res = run(["predict", model, str(tmp_path / "run"), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(out)
    assert list(pred["barcode"]) == barcodes
    accuracy = (pred["pred_cell_type"] == [f"type{t}" for t in types]).mean()
    assert accuracy > 0.8  # the marker genes are learnt: the rows and genes line up


def test_symbols_chosen_in_training_are_the_default_in_predict_and_a_mismatch_names_the_option(tenx):
    tmp, run_dir, sheet, _ = tenx
    by_symbol, by_id = str(tmp / "s.mlp"), str(tmp / "i.mlp")
    assert run(["train", run_dir, "--samples", sheet, *TRAIN, "--var-names", "gene_symbols", "-o", by_symbol]).exit_code == 0
    assert run(["train", run_dir, "--samples", sheet, *TRAIN, "-o", by_id]).exit_code == 0
    assert run(["predict", by_symbol, run_dir, "-o", str(tmp / "a.csv"), "-q"]).exit_code == 0
    out = tmp / "b.csv"
    res = run(["predict", by_id, run_dir, "-o", str(out), "--var-names", "gene_symbols", "-q"])
    assert_clean_error(res, "gene identifiers differ", "var_names (the var index)", "leave out --var-names")
    assert not out.exists()
    res = run(["predict", by_symbol, run_dir, "-o", str(out), "--var-names", "var_names", "-q"])
    assert_clean_error(res, "gene identifiers differ", "var column 'gene_symbols'", "pass --var-names gene_symbols")
    res = run(["predict", by_id, run_dir, "-o", str(out), "--var-names", "symbol", "-q"])
    assert_clean_error(res, "--var-names 'symbol'", "gene_symbols")
    assert not out.exists()


def _truncate_matrix(d):
    raw = gzip.decompress((d / "matrix.mtx.gz").read_bytes())
    (d / "matrix.mtx.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))


def _cut_gzip(d):
    (d / "matrix.mtx.gz").write_bytes((d / "matrix.mtx.gz").read_bytes()[:200])


def _drop_feature(d):
    lines = gzip.open(d / "features.tsv.gz", "rt").read().splitlines()
    with gzip.open(d / "features.tsv.gz", "wt") as fh:
        fh.write("\n".join(lines[:-1]) + "\n")


def _add_barcode(d):
    with gzip.open(d / "barcodes.tsv.gz", "at") as fh:
        fh.write("TTTT000000-1\n")


def _not_matrix_market(d):
    with gzip.open(d / "matrix.mtx.gz", "wt") as fh:
        fh.write("hello\n1 2 3\n")


def _decimal_under_integer_header(d):
    """Log-normalised values under Cell Ranger's 'integer' header: scipy's reader truncated 3.32 to 3."""
    lines = gzip.open(d / "matrix.mtx.gz", "rt").read().splitlines()
    assert "integer" in lines[0]
    k = next(i for i, line in enumerate(lines) if not line.startswith("%")) + 3  # the third entry
    row, col, _ = lines[k].split()
    lines[k] = f"{row} {col} 3.3202283"
    with gzip.open(d / "matrix.mtx.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def _size_line_without_entries(d):
    lines = gzip.open(d / "matrix.mtx.gz", "rt").read().splitlines()
    k = next(i for i, line in enumerate(lines) if not line.startswith("%"))
    lines[k] = " ".join(lines[k].split()[:2])
    with gzip.open(d / "matrix.mtx.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def _plain_text_named_gz(d):
    (d / "features.tsv.gz").write_bytes(gzip.decompress((d / "features.tsv.gz").read_bytes()))


@pytest.mark.parametrize("damage, needles", [
    (lambda d: (d / "matrix.mtx.gz").unlink(), ["has no matrix.mtx.gz"]),
    (_decimal_under_integer_header, ["matrix.mtx.gz", "header says the values are integers", "'3.3202283'", "real"]),
    (_size_line_without_entries, ["matrix.mtx.gz", "should hold three numbers"]),
    (_plain_text_named_gz, ["features.tsv.gz", "not gzip-compressed"]),
    (lambda d: (d / "features.tsv.gz").unlink(), ["has no features.tsv.gz", "genes.tsv.gz"]),
    (lambda d: (d / "barcodes.tsv.gz").unlink(), ["has no barcodes.tsv.gz"]),
    (_truncate_matrix, ["matrix.mtx.gz", "truncated or corrupt"]),
    (_cut_gzip, ["matrix.mtx.gz"]),
    (_drop_feature, ["matrix.mtx.gz has 30 features", "features.tsv.gz lists 29"]),
    (_add_barcode, ["barcodes.tsv.gz lists 241"]),
    (_not_matrix_market, ["matrix.mtx.gz", "Matrix Market"]),
])
@pytest.mark.parametrize("command", ["train", "predict"])
def test_bad_10x_directories_are_one_line_errors_naming_the_file(tenx, damage, needles, command):
    tmp, run_dir, sheet, _ = tenx
    model = str(tmp / "m.mlp")
    if command == "predict":
        assert run(["train", run_dir, "--samples", sheet, *TRAIN, "-o", model]).exit_code == 0
    bad = tmp / "bad"
    shutil.copytree(run_dir, bad)
    damage(bad)
    out = tmp / ("out.mlp" if command == "train" else "out.csv")
    args = (["train", str(bad), "--samples", sheet, *TRAIN, "-o", str(out)] if command == "train"
            else ["predict", model, str(bad), "-o", str(out), "-q"])
    res = run(args)
    assert_clean_error(res, *needles, code=1)
    assert not out.exists() and not [p for p in os.listdir(tmp) if p.startswith(".") or p.endswith(".tmp")]


def test_cell_ranger_outs_directory_points_to_the_matrix_folder(tmp_path):
    (tmp_path / "outs" / "filtered_feature_bc_matrix").mkdir(parents=True)
    barcodes, types, _ = write_10x(tmp_path / "x")
    sheet = write_sheet(tmp_path / "cells.csv", barcodes, types)
    res = run(["train", str(tmp_path / "outs"), "--samples", sheet, *TRAIN, "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "did you mean", "filtered_feature_bc_matrix")


def test_train_on_10x_needs_a_sample_sheet_and_refuses_h5ad_options(tenx):
    tmp, run_dir, sheet, _ = tenx
    out = tmp / "m.mlp"
    assert_clean_error(run(["train", run_dir, "--target", "cell_type", "-o", str(out)]), "--samples FILE",
                       "10x Genomics directory", code=1)
    assert_clean_error(run(["train", run_dir, "--samples", sheet, *TRAIN, "--layer", "counts", "-o", str(out)]),
                       "--layer does not apply", code=2)  # an option that does not apply to the input: usage
    assert not out.exists()


def test_cv_tune_and_evaluate_read_a_10x_directory_too(tenx):
    """Every command that reads a labelled table takes the directory (labels from the sheet)."""
    tmp, run_dir, sheet, _ = tenx
    res = run(["cv", run_dir, "--samples", sheet, *TRAIN, "--folds", "2", "--json"])
    assert res.exit_code == 0, res.output
    res = run(["tune", run_dir, "--samples", sheet, *TRAIN, "--folds", "2", "--grid", "lr=1e-3,3e-3"])
    assert res.exit_code == 0, res.output
    model = str(tmp / "m.mlp")
    assert run(["train", run_dir, "--samples", sheet, *TRAIN, "-o", model]).exit_code == 0
    res = run(["evaluate", model, run_dir, "--samples", sheet, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == len(pd.read_csv(sheet))
    res = run(["explain", model, run_dir, "--samples", sheet, "--top", "5", "--json"])
    assert res.exit_code == 0, res.output
    ranked = json.loads(res.stdout)
    assert ranked["grouped_by"] == "label"  # the sheet's cell types, joined by barcode
    assert ranked["n_samples"] == pd.read_csv(sheet)["cell_type"].value_counts().to_dict()
    # diagnose --learning-curve too (its SOURCE had refused every directory, against the README's word); without the
    # flag SOURCE is a model or a history, and a directory is said to be neither
    res = run(["diagnose", "--learning-curve", run_dir, "--samples", sheet, "--target", "cell_type", "--group", "donor",
               "--fractions", "0.5,1", "--epochs", "3", "--hidden", "", "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert [p["fraction"] for p in json.loads(res.stdout)["sizes"]] == [0.5, 1.0]
    assert_clean_error(run(["diagnose", run_dir]), "is a directory", "--learning-curve", code=2)
    not_10x = tmp / "empty_dir"
    not_10x.mkdir()
    assert_clean_error(run(["cv", str(not_10x), "--samples", sheet, *TRAIN, "--folds", "2"]), "empty_dir", "matrix.mtx.gz")
    assert_clean_error(run(["cv", str(not_10x), *TRAIN, "--folds", "2"]), "empty_dir", "matrix.mtx.gz")  # not "add a sheet"


def test_a_features_file_of_ids_alone_has_no_symbols_to_choose(tenx):
    """features.tsv with one column: --var-names gene_symbols is an error naming the columns there are (it
    trained on the ids under the symbols' name, and the model then matched nothing)."""
    tmp, run_dir, sheet, _ = tenx
    path = os.path.join(run_dir, "features.tsv.gz")
    with gzip.open(path, "rt") as fh:
        ids = [line.split("\t")[0] for line in fh.read().splitlines()]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(ids) + "\n")
    res = run(["train", run_dir, "--samples", sheet, "--var-names", "gene_symbols", *TRAIN, "-o", str(tmp / "m.mlp")])
    assert_clean_error(res, "--var-names 'gene_symbols'", "no such var column", "'gene_ids'")
    assert not (tmp / "m.mlp").exists()
    assert run(["train", run_dir, "--samples", sheet, *TRAIN, "-o", str(tmp / "m.mlp")]).exit_code == 0


def test_predict_and_evaluate_join_a_sheet_to_the_barcodes_whatever_its_id_columns_name(tenx):
    """As train does: the sheet's first column holds the barcodes under any name (it was refused unless
    named 'barcode')."""
    tmp, run_dir, sheet, _ = tenx
    model = str(tmp / "m.mlp")
    assert run(["train", run_dir, "--samples", sheet, *TRAIN, "-o", model]).exit_code == 0
    renamed = tmp / "cells_sid.csv"
    pd.read_csv(sheet).rename(columns={"barcode": "sample_id"}).to_csv(renamed, index=False)
    res = run(["evaluate", model, run_dir, "--samples", str(renamed), "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == len(pd.read_csv(sheet))
    out = tmp / "p.csv"
    assert run(["predict", model, run_dir, "--samples", str(renamed), "-o", str(out), "-q"]).exit_code == 0
    assert list(pd.read_csv(out)["barcode"]) == list(pd.read_csv(sheet)["barcode"])
    res = run(["explain", model, run_dir, "--samples", str(renamed), "--json", "-q"])  # its labels from the sheet
    assert res.exit_code == 0, res.output
    counts = pd.read_csv(sheet)["cell_type"].value_counts()
    assert json.loads(res.stdout)["n_samples"] == {str(k): int(v) for k, v in counts.items()}


def test_gradcheck_reads_a_10x_directory_with_its_sheet_as_predict_does(tenx):
    """gradcheck --data takes what predict takes: the directory, the labels from the sheet (the loss's
    targets), the model's gene identifiers by default, and -q for its notes."""
    tmp, run_dir, sheet, _ = tenx
    model = str(tmp / "m.mlp")
    assert run(["train", run_dir, "--samples", sheet, *TRAIN, "--var-names", "gene_symbols", "-o", model]).exit_code == 0
    res = run(["gradcheck", "--model", model, "--data", run_dir, "--samples", sheet, "--rows", "8", "--entries", "4",
               "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["passed"] and all("no target column" not in r["note"] for r in doc["results"])
    res = run(["gradcheck", "--model", model, "--data", run_dir, "--rows", "8", "--entries", "4"])
    assert res.exit_code == 0, res.output
    assert "no target column: checked against the model's own predictions" in res.stdout
    assert "gene_symbols" in res.stderr  # the note on the gene names used
    quiet = run(["gradcheck", "--model", model, "--data", run_dir, "--rows", "8", "--entries", "4", "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    res = run(["gradcheck", "--model", model, "--data", run_dir, "--var-names", "var_names"])
    assert_clean_error(res, "gene identifiers differ", "pass --var-names gene_symbols")
    assert_clean_error(run(["gradcheck", "--samples", sheet]), "--samples", "--data", code=2)


def test_val_data_can_be_a_10x_directory_labelled_by_the_same_sheet(tenx, tmp_path):
    """--val-data is read as the training data is: a 10x directory takes its labels from --samples."""
    tmp, run_dir, sheet, _ = tenx
    other = tmp_path / "other"
    barcodes, types, _ = write_10x(other, n_cells=90, seed=5)
    renamed = [b.replace("AAAC", "TTTG") for b in barcodes]
    with gzip.open(other / "barcodes.tsv.gz", "wt") as fh:
        fh.write("\n".join(renamed) + "\n")
    both = tmp_path / "both.csv"
    new_donors = pd.read_csv(write_sheet(tmp_path / "o.csv", renamed, types)).assign(donor=lambda f: "E" + f["donor"])
    pd.concat([pd.read_csv(sheet), new_donors]).to_csv(both, index=False)
    model = tmp_path / "v.mlp"
    res = run(["train", run_dir, "--samples", str(both), *TRAIN, "--val-data", str(other), "-o", str(model), "--json"])
    assert res.exit_code == 0, res.output
    split = json.loads(run(["info", str(model), "--json"]).stdout)["split"]
    assert "explicit validation table" in split["strategy"] and "90" in json.dumps(split)


def test_predict_on_10x_with_a_model_trained_on_a_layer_notes_what_it_reads(tenx):
    """A model trained with --layer counts, predicting a 10x directory, said "features from layer 'counts', as in
    training": a 10x directory has no layers; the note says it reads the 10x matrix's counts."""
    anndata = pytest.importorskip("anndata")
    tmp, run_dir, sheet, X = tenx
    frame = pd.read_csv(sheet)
    adata = anndata.AnnData(X=np.log1p(X).astype(np.float32), layers={"counts": sp.csr_matrix(X.astype(np.float32))},
                            obs=pd.DataFrame({"cell_type": frame["cell_type"].to_numpy(), "donor": frame["donor"].to_numpy()},
                                             index=frame["barcode"].to_numpy()),
                            var=pd.DataFrame(index=[f"ENSG{j:011d}" for j in range(N_GENES)]))
    path, model, out = tmp / "cells.h5ad", str(tmp / "m.mlp"), tmp / "p.csv"
    adata.write_h5ad(path)
    assert run(["train", str(path), *TRAIN, "--layer", "counts", "-o", model]).exit_code == 0
    res = run(["predict", model, run_dir, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "layer 'counts', as in training" not in res.output
    assert "features from the 10x matrix (its counts); the model was trained on layer 'counts'" in res.output
    assert len(pd.read_csv(out)) == N_CELLS


def test_cell_ranger_2_folder_per_genome_is_pointed_to(tmp_path):
    genome = tmp_path / "outs" / "filtered_gene_bc_matrices" / "hg19"
    os.makedirs(genome)
    with gzip.open(genome / "matrix.mtx.gz", "wb") as fh:
        scipy.io.mmwrite(fh, sp.coo_matrix(np.ones((2, 3))), field="integer")
    for directory in (tmp_path / "outs", genome.parent):
        with pytest.raises(DataError, match=f"did you mean {genome}\\?"):
            TenX(directory)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("r19f")
    rng = np.random.default_rng(1)
    genes = [f"G{j}" for j in range(5)]
    df = pd.DataFrame(rng.poisson(3.0, (40, 5)), columns=genes)
    df["label"] = np.array(["a", "b"])[np.arange(40) % 2]
    df.to_csv(tmp / "t.csv", index=False)
    model = tmp / "m.mlp"
    assert run(["train", str(tmp / "t.csv"), "--folds", "1", "--epochs", "2", "-q", "-o", str(model)]).exit_code == 0
    return str(model), genes


def test_a_file_of_a_10x_directory_given_alone_names_the_directory(tmp_path, small_model):
    from cli_helpers import assert_clean_error

    model, genes = small_model
    tenx = tmp_path / "filtered"
    write_tenx(tenx, genes)
    for name, needle in (("matrix.mtx.gz", "give the directory that holds the three"),
                         ("features.tsv.gz", "is the features file of a 10x Genomics matrix, not a table"),
                         ("barcodes.tsv.gz", "is the barcodes file of a 10x Genomics matrix")):
        for command in ("predict", "evaluate"):
            assert_clean_error(run([command, model, str(tenx / name)]), needle, str(tenx))
    # the directory itself predicts; evaluated without a sample sheet, the labels are asked for there
    assert run(["predict", model, str(tenx), "-o", str(tmp_path / "p.csv"), "-q"]).exit_code == 0
    assert_clean_error(run(["evaluate", model, str(tenx)]), "10x Genomics directory, which holds no labels",
                       "--samples FILE")


def test_10x_counts_against_a_model_of_log_normalised_x_warn(tmp_path):
    """A model trained on an .h5ad file's .X (log-normalised, no log1p) predicting a 10x directory (raw counts)
    had only the shift warning; a layer or .raw chosen against .X is warned of, and so is this now. A model that
    applies log1p learned counts-like values: no warning."""
    anndata = pytest.importorskip("anndata")
    from test_tenx import write_10x

    barcodes, types, X = write_10x(tmp_path / "run", n_cells=90, n_genes=12)
    obs = pd.DataFrame({"cell_type": [f"type{t}" for t in types], "donor": [f"D{i % 6}" for i in range(90)]},
                       index=barcodes)
    var = pd.DataFrame(index=[f"ENSG{j:011d}" for j in range(12)])
    for name, values in (("log.h5ad", np.log1p(X)), ("counts.h5ad", X)):
        anndata.AnnData(X=sp.csr_matrix(values.astype(np.float32)), obs=obs, var=var).write_h5ad(tmp_path / name)
    fast = ["--target", "cell_type", "--group", "donor", "--folds", "1", "--epochs", "2", "--hidden", "", "-q"]
    for name, extra in (("log", []), ("counts", ["--log1p"])):
        res = run(["train", str(tmp_path / f"{name}.h5ad"), *fast, *extra, "-o", str(tmp_path / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    res = run(["predict", str(tmp_path / "log.mlp"), str(tmp_path / "run"), "-o", str(tmp_path / "p.csv"), "--json"])
    assert res.exit_code == 0, res.output
    warnings = json.loads(res.stdout)["warnings"]
    assert any("10x matrix (its raw counts), but the model was trained on .X" in w for w in warnings), warnings
    res = run(["predict", str(tmp_path / "counts.mlp"), str(tmp_path / "run"), "-o", str(tmp_path / "q.csv"), "--json"])
    assert res.exit_code == 0, res.output
    assert not any("10x matrix" in w for w in json.loads(res.stdout)["warnings"])


def test_a_10x_directory_with_both_forms_of_a_file_names_the_one_read(tmp_path):
    """matrix.mtx.gz and matrix.mtx side by side (gunzip -k) with other contents: one was read silently, and the
    note said "matrix.mtx" whichever it was."""
    import gzip

    from mlpcli import data

    tenx = tmp_path / "pbmc"
    write_tenx(tenx, [f"G{j}" for j in range(5)], cells=8)
    (tenx / "matrix.mtx").write_bytes(gzip.decompress((tenx / "matrix.mtx.gz").read_bytes()))
    sheet = tmp_path / "cells.csv"
    sheet.write_text("barcode,cell_type\n" + "".join(f"AAAC{i}-1,{'BT'[i % 2]}\n" for i in range(8)))
    _, notes = data.load_dataset(str(tenx), samples=str(sheet), id="barcode", target=["cell_type"])
    (note,) = [n for n in notes if "from 10x Genomics" in n]
    assert "from 10x Genomics matrix.mtx.gz (sparse)" in note and "also there and not read: pbmc/matrix.mtx" in note


@pytest.mark.parametrize("ids_repeat, symbols_repeat", [(True, False), (False, True), (True, True)])
def test_repeated_gene_names_point_to_the_names_that_work(tenx, ids_repeat, symbols_repeat):
    """Each error named the other option as the way out; with both the ids and the symbols repeating (a hand-made
    features file), they sent the user from one to the other, and one spoke of anndata's var_names_make_unique."""
    tmp, run_dir, sheet, _ = tenx
    path = os.path.join(run_dir, "features.tsv.gz")
    with gzip.open(path, "rt") as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh]
    if ids_repeat:
        rows[1][0] = rows[0][0]
    if symbols_repeat:
        rows[3][1] = rows[2][1]
    with gzip.open(path, "wt") as fh:
        fh.write("".join("\t".join(r) + "\n" for r in rows))
    model = str(tmp / "m.mlp")
    by_ids = run(["train", run_dir, "--samples", sheet, *TRAIN, "-o", model])
    by_symbols = run(["train", run_dir, "--samples", sheet, *TRAIN, "--var-names", "gene_symbols", "-o", model])
    if ids_repeat and not symbols_repeat:
        assert_clean_error(by_ids, "the feature ids repeat gene names: 'ENSG00000000000' (×2)",
                           "pass --var-names gene_symbols (unique)")
        assert by_symbols.exit_code == 0, by_symbols.output
    elif symbols_repeat and not ids_repeat:
        assert by_ids.exit_code == 0, by_ids.output
        assert_clean_error(by_symbols, "var column 'gene_symbols' (--var-names) repeats gene names: 'GENE2' (×2)",
                           "leave out --var-names to name genes by the feature ids (unique)")
    else:
        for res in (by_ids, by_symbols):
            assert_clean_error(res, "neither the ids nor the symbols of features.tsv.gz name every gene once",
                               "keep one line of each gene in it")
            assert "--var-names COLUMN" not in res.output and "var_names_make_unique" not in res.output
    assert not os.path.exists(model) or (by_ids.exit_code == 0 or by_symbols.exit_code == 0)
