"""Reading single-cell .h5ad files by use: repeated gene symbols and obs names, anndata 0.7 files, empty layers,
.raw's var names, CSR matrices storing a position twice, sample sheets joined to cells, files held open by
another process, zarr stores, and predictions written back over an earlier annotation."""

import numpy as np
import pandas as pd
import pytest

h5py = pytest.importorskip("h5py")  # with anndata (the h5ad extra); skipped where it is not installed
sp = pytest.importorskip("scipy.sparse")

from mlpcli import data
from mlpcli.data.h5ad import H5ad
from mlpcli.errors import DataError
from cli_helpers import assert_clean_error, run

anndata = pytest.importorskip('anndata')


N_CELLS, N_GENES = 60, 8


def cells(symbols=None, index=None, obs_names=None) -> anndata.AnnData:
    """Poisson counts of 3 cell types; var_names Ensembl-like ids, symbols in var['symbol']."""
    rng = np.random.default_rng(0)
    types = np.arange(N_CELLS) % 3
    X = rng.poisson(np.where(np.arange(N_GENES)[None, :] // 2 == types[:, None], 5.0, 0.5)).astype(np.float32)
    ids = [f"ENSG{j:011d}" for j in range(N_GENES)]
    var = pd.DataFrame({"gene_ids": ids, "symbol": symbols or [f"G{j}" for j in range(N_GENES)]},
                       index=index or ids)
    obs = pd.DataFrame({"cell_type": pd.Categorical([f"T{t}" for t in types]),
                        "donor_id": [f"D{i % 6}" for i in range(N_CELLS)]},
                       index=obs_names or [f"{i:03d}" for i in range(N_CELLS)])
    return anndata.AnnData(sp.csr_matrix(X), obs=obs, var=var)


def write(adata, path) -> str:
    adata.write_h5ad(path)
    return str(path)


REPEATED = [f"G{j}" for j in range(N_GENES - 1)] + ["G2"]  # the last gene shares the symbol of the third


def test_repeated_symbols_name_their_ids_and_the_option_that_tells_them_apart(tmp_path):
    path = write(cells(symbols=REPEATED), tmp_path / "rep.h5ad")
    with pytest.raises(DataError) as err:
        data.load_dataset(path, target="cell_type", no_group=True, var_names="symbol")
    assert "'G2' (×2) ['ENSG00000000002', 'ENSG00000000007']" in str(err.value)
    assert "leave out --var-names" in str(err.value)
    # repeated var_names: the unique var column is the option to pass, not a generic COLUMN
    path = write(cells(index=REPEATED), tmp_path / "index.h5ad")
    with pytest.raises(DataError, match="pass --var-names gene_ids"):
        data.load_dataset(path, target="cell_type", no_group=True)


def test_a_model_gene_repeated_in_another_letter_case_is_an_error_not_a_missing_gene(tmp_path):
    """The model's 'G2' is matched to 'g2' by the name rule: two 'g2' loci are two candidates, not none
    (--fill-missing mean would have filled the gene the file holds twice)."""
    path = write(cells(symbols=[s.lower() if s == "G2" else s for s in REPEATED]), tmp_path / "case.h5ad")
    with pytest.raises(DataError, match="repeats gene names the model uses: 'g2'"):
        H5ad(path, var_names="symbol", needed=frozenset({"G0", "G2"}))
    with H5ad(path, var_names="symbol", needed=frozenset({"G0", "G1"})) as h:  # not the model's: left out
        assert h.feature_names[:2] == ["G0", "G1"] and len(set(h.feature_names)) == N_GENES


def test_repeated_obs_names_are_an_error_naming_the_file_and_the_fix(tmp_path):
    path = write(cells(obs_names=[f"AAAC-{i % (N_CELLS // 2)}" for i in range(N_CELLS)]), tmp_path / "cat.h5ad")
    with pytest.raises(DataError) as err:
        data.load_dataset(path, target="cell_type", no_group=True)
    assert "cat.h5ad" in str(err.value) and "obs_names_make_unique" in str(err.value)
    assert "'AAAC-0' (×2)" in str(err.value)


def write_anndata_07(path, n: int = 30) -> list[str]:
    """An .h5ad as anndata 0.7 with h5py 2 wrote it: attribute names as bytes, a categorical obs column
    stored as a dataset of codes whose "categories" attribute refers to obs/__categories/NAME."""
    labels = ["B", "NK", "T"]
    codes = np.arange(n) % 3
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=rng.poisson(2.0, (n, 4)).astype(np.float32) + codes[:, None])
        for name, columns in (("obs", ["cell_type", "donor"]), ("var", [])):
            g = f.create_group(name)
            g.attrs["_index"] = np.bytes_("index")
            g.attrs["column-order"] = np.array(columns, dtype="S")
            g.attrs["encoding-type"], g.attrs["encoding-version"] = "dataframe", "0.1.0"
        f["obs"].create_dataset("index", data=np.array([f"c{i}" for i in range(n)], dtype="S"))
        f["var"].create_dataset("index", data=np.array([f"G{j}" for j in range(4)], dtype="S"))
        categories = f.create_group("obs/__categories").create_dataset("cell_type", data=np.array(labels, dtype="S"))
        f["obs"].create_dataset("cell_type", data=codes.astype(np.int8)).attrs["categories"] = categories.ref
        f["obs"].create_dataset("donor", data=np.array([f"D{i % 5}" for i in range(n)], dtype="S"))
    return [labels[c] for c in codes]


def test_an_anndata_07_file_gives_its_labels_not_their_codes(tmp_path):
    path = str(tmp_path / "old.h5ad")
    labels = write_anndata_07(path)
    ds, _ = data.load_dataset(path, target="cell_type", group="donor")
    assert list(ds.classes) == ["B", "NK", "T"]
    with H5ad(path) as h:  # predict reads obs in row ranges
        assert h.obs_columns == ["cell_type", "donor"]
        assert list(h.obs_frame(["cell_type"], 5, 9)["cell_type"]) == labels[5:9]


def write_sheet(path, ids, labels) -> str:
    pd.DataFrame({"cell": ids, "label": labels}).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("spelling", ["zeros", "case"])
def test_ids_misspelled_for_some_samples_only_are_an_error_not_left_out(tmp_path, spelling):
    """A spreadsheet that dropped the leading zeros of '000'..'099' (but not of '100'..), or a sheet whose
    ids were upper-cased in part, matched half the cells and trained on them with a note."""
    adata = cells(obs_names=[f"{i:03d}" if spelling == "zeros" else f"c{i}" for i in range(N_CELLS)])
    path = write(adata, tmp_path / "cells.h5ad")
    labels = list(adata.obs["cell_type"].astype(str))
    half = N_CELLS // 2
    if spelling == "zeros":
        ids = [str(int(i)) for i in adata.obs_names[:half]] + list(adata.obs_names[half:])
    else:
        ids = [i.upper() for i in adata.obs_names[:half]] + list(adata.obs_names[half:])
    sheet = write_sheet(tmp_path / "sheet.csv", ids, labels)
    words = "leading zeros" if spelling == "zeros" else "letter case"
    with pytest.raises(DataError, match=f"{half} samples of .* differ only in {words}"):
        data.load_dataset(path, target="label", no_group=True, samples=sheet)


def test_a_sheet_covering_some_cells_still_joins_with_a_note(tmp_path):
    adata = cells(obs_names=[f"{i:03d}" for i in range(N_CELLS)])
    path = write(adata, tmp_path / "cells.h5ad")
    ids = list(adata.obs_names[:40]) + ["999", "0999"]  # unmatched sheet rows unlike the unmatched cells
    sheet = write_sheet(tmp_path / "sheet.csv", ids, ["T0", "T1"] * 21)
    ds, notes = data.load_dataset(path, target="label", no_group=True, samples=sheet)
    # samples left out are data lost: a warning (-q does not hide it), not a note
    assert len(ds.y) == 40 and any("20 samples" in n and "left out" in n for n in ds.warnings)


def test_predict_into_an_h5ad_takes_cells_whose_obs_names_repeat(tmp_path):
    """Concatenated files repeat barcodes: `predict -o out.h5ad` refused them ("ids must be unique to join
    predictions back") although it writes each cell's columns by position; a table output still needs them
    unique, and its error says the .h5ad output is the way."""
    from cli_helpers import assert_clean_error, run

    train_path = write(cells(), tmp_path / "train.h5ad")
    model = str(tmp_path / "m.mlp")
    assert run(["train", train_path, "--target", "cell_type", "--hidden", "4", "--epochs", "3", "--folds", "1",
                "-o", model, "-q"]).exit_code == 0
    names = [f"AAAC-{i % (N_CELLS // 2)}" for i in range(N_CELLS)]
    cohort = write(cells(obs_names=names), tmp_path / "cat.h5ad")
    res = run(["predict", model, cohort, "-o", str(tmp_path / "out.h5ad"), "-q"])
    assert res.exit_code == 0, res.output
    out = anndata.read_h5ad(tmp_path / "out.h5ad")
    assert list(out.obs_names) == names and out.obs["mlpcli_cell_type"].notna().all()
    assert_clean_error(run(["predict", model, cohort, "-o", str(tmp_path / "out.csv")]), "duplicate sample id",
                       "-o FILE.h5ad")
    assert not (tmp_path / "out.csv").exists()


def test_evaluate_on_cells_with_repeated_names_does_not_suggest_predicts_h5ad_output(tmp_path):
    """Repeated obs_names (files concatenated) stop evaluate with the duplicate named; the advice to write
    -o FILE.h5ad is predict's (evaluate's -o is the metrics), so only predict gives it."""
    anndata = pytest.importorskip("anndata")
    rng = np.random.default_rng(0)
    n, d = 60, 6
    X = rng.lognormal(1.0, 0.5, (n, d)).astype(np.float32)
    labels = np.array(["a", "b"])[np.arange(n) % 2]
    X[labels == "b", 0] *= 4
    genes = [f"G{j}" for j in range(d)]
    table = pd.DataFrame(X, columns=genes)
    table["label"] = labels
    table.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "m.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--folds", "1", "--epochs", "3", "-q", "-o", str(model)]).exit_code == 0
    obs = pd.DataFrame({"label": labels}, index=[f"c{i % 30}" for i in range(n)])  # every name twice
    cells = tmp_path / "cells.h5ad"
    anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(cells)
    res = run(["evaluate", str(model), str(cells)])
    assert res.exit_code == 1 and "duplicate sample id" in res.output
    assert "-o FILE.h5ad" not in res.output
    res = run(["predict", str(model), str(cells), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 1 and "-o FILE.h5ad" in res.output


def test_an_h5ad_file_another_process_holds_open_for_writing_is_not_called_corrupt(tmp_path):
    """A notebook holding the file with backed='r+' (HDF5's lock): "is it truncated or corrupt?" sent users to
    re-download an intact file."""
    import subprocess
    import sys

    anndata = pytest.importorskip("anndata")
    import pandas as pd

    path = tmp_path / "cells.h5ad"
    anndata.AnnData(np.ones((6, 3), dtype=np.float32),
                    obs=pd.DataFrame({"cell_type": list("ababab")}, index=[f"c{i}" for i in range(6)])).write_h5ad(path)
    holder = subprocess.Popen([sys.executable, "-c", "import h5py, sys, time; f = h5py.File(sys.argv[1], 'r+'); "
                               "print('open', flush=True); time.sleep(60)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        r = run(["train", str(path), "--target", "cell_type", "-q"], env={"HDF5_USE_FILE_LOCKING": "TRUE"})
        assert_clean_error(r, "HDF5 could not lock it", "HDF5_USE_FILE_LOCKING=FALSE")
        assert "corrupt" not in r.output
    finally:
        holder.kill()
        holder.wait()


def test_an_anndata_zarr_store_is_named_with_its_conversion(tmp_path, three_classes):
    """A .zarr store is a directory too: it read as a 10x directory "without matrix.mtx.gz"."""
    store = tmp_path / "cells.zarr"
    store.mkdir()
    (store / ".zattrs").write_text("{}")
    (store / ".zgroup").write_text('{"zarr_format": 2}')
    d, _ = three_classes
    for args in (["train", str(store), "--target", "cell_type"], ["predict", str(d / "m.mlp"), str(store), "-o", "-"]):
        assert_clean_error(run(args), "is a Zarr store (AnnData's .zarr), not a 10x Genomics directory",
                           "anndata.read_zarr(")


def test_an_h5ad_cell_error_names_the_file(tmp_path):
    """A .h5ad with a missing label: "Error: target has missing values ..." named no file (a CSV's does)."""
    ad = pytest.importorskip("anndata")
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"cell_type": ["a", "b"] * 30}, index=[f"c{i}" for i in range(60)])
    obs.loc["c3", "cell_type"] = np.nan
    ad.AnnData(X=rng.normal(size=(60, 10)).astype(np.float32), obs=obs).write_h5ad(tmp_path / "na.h5ad")
    res = run(["train", str(tmp_path / "na.h5ad"), "--target", "cell_type", "--epochs", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1
    assert res.output.splitlines()[-1].startswith(f"Error: {tmp_path / 'na.h5ad'}: target has missing values")


def test_an_obs_column_named_like_a_gene_is_named_as_such_not_not_found(tmp_path):
    """A label column that shares its name with a gene is read as the gene (the name means the gene): asking for it
    said only "--target column ... not found", without the file or the reason."""
    adata = cells()
    adata.obs[adata.var_names[0]] = adata.obs["cell_type"].astype(str)
    path = write(adata, tmp_path / "c.h5ad")
    res = run(["train", path, "--target", adata.var_names[0], "--hidden", "4", "--epochs", "2", "--folds", "2",
               "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "c.h5ad", "named like a gene", "rename the .obs column")
    res = run(["train", path, "--target", "nosuch", "--hidden", "4", "--epochs", "2", "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "c.h5ad: --target column 'nosuch' not found")
    assert not (tmp_path / "m.mlp").exists()


def test_an_obs_column_called_obs_names_does_not_stand_in_for_the_cells_names(tmp_path):
    """Its values were written as the cells' ids, the default id being obs_names: predictions joined back on the cell
    names matched nothing, or the wrong cells."""
    adata = cells()
    path = write(adata, tmp_path / "c.h5ad")
    assert run(["train", path, "--target", "cell_type", "--hidden", "4", "--epochs", "2", "--folds", "2", "-q",
                "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    adata.obs["obs_names"] = [f"x{name}" for name in adata.obs_names]
    other = write(adata, tmp_path / "o.h5ad")
    res = run(["predict", str(tmp_path / "m.mlp"), other, "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(tmp_path / "p.csv", dtype=str)["obs_names"].tolist() == list(adata.obs_names)
    assert "its .obs column 'obs_names' is not read" in res.output


def test_no_donor_id_but_an_obs_column_named_like_one_is_named_in_the_warning(tmp_path):
    """Without donor_id the warning said "pass --group COLUMN" beside an obs column 'Donor' (or 'patient',
    'subject', 'individual'): it now names it; without such a column it reads as before."""
    adata = cells()
    adata.obs = adata.obs.rename(columns={"donor_id": "Donor"})
    ds, notes = data.load_dataset(write(adata, tmp_path / "donor.h5ad"), target="cell_type")
    said = " ".join(ds.warnings)
    assert "no 'patient_id' or 'donor_id' column" in said and "pass --group Donor ('Donor' is named like a patient " \
        "column), or --no-group" in said, said
    adata.obs = adata.obs.rename(columns={"Donor": "well"})
    ds, notes = data.load_dataset(write(adata, tmp_path / "well.h5ad"), target="cell_type")
    said = " ".join(ds.warnings)
    assert "pass --group COLUMN (or --no-group" in said and "named like a patient" not in said, said


def test_the_column_named_like_a_patient_column_is_read_from_the_roles_not_the_note(tmp_path):
    """The suggested --group column was only in the note's text, which the warning sliced back out: a caller
    reads it from the roles, and the note and the warning say it as before."""
    adata = cells()
    adata.obs = adata.obs.rename(columns={"donor_id": "Donor"})
    path = write(adata, tmp_path / "donor.h5ad")
    ds, notes = data.dataset.read_dataset(path, target="cell_type")
    assert ds.roles.group is None and ds.roles.group_like == ["Donor"]
    assert [n for n in notes if n.startswith("group: none")] == [
        data.roles.NO_GROUP_NOTE + ": --group Donor ('Donor' is named like a patient column)"]
    ds, _ = data.load_dataset(path, target="cell_type")
    assert ds.roles.group_like == ["Donor"]
    assert "— pass --group Donor ('Donor' is named like a patient column), or --no-group" in " ".join(ds.warnings)
    for kwargs in ({"group": "Donor"}, {"no_group": True}):  # a group, or none by choice: nothing to suggest
        assert data.load_dataset(path, target="cell_type", **kwargs)[0].roles.group_like == []


def test_a_column_named_like_a_patient_column_is_suggested_only_where_no_column_is_a_feature():
    """In a table a 'Donor' column is a feature (warned about as one); among .h5ad obs columns it is not."""
    columns = ["label", "Donor", "subject", "g1"]
    roles, notes = data.resolve_roles(columns, suggest_group=True)
    assert roles.group_like == ["Donor", "subject"]
    assert notes[1].endswith(": --group Donor ('Donor', 'subject' are named like a patient column)"), notes
    roles, notes = data.resolve_roles(columns)
    assert roles.group_like == [] and notes[1] == data.roles.NO_GROUP_NOTE
