"""`train --samples` on an .h5ad file: cell annotations kept in a sheet beside the cells (issue 13: the sheet
joins "any table"). `predict`, `evaluate` and `explain` took a sheet with an .h5ad file; `train`, `cv`, `tune`
and `diagnose --learning-curve` refused it ("add the sheet's columns to .obs instead")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

anndata = pytest.importorskip("anndata")  # the test extra installs it: never skipped in CI

from mlpcli import data  # noqa: E402
from cli_helpers import assert_clean_error, run  # noqa: E402
from test_h5ad import make_adata  # noqa: E402


@pytest.fixture()
def cells(tmp_path):
    """Cells without their type in .obs, and a sheet holding it for all but the last 40 cells."""
    adata = make_adata(n_cells=200, raw=False)
    sheet = pd.DataFrame({"cell": adata.obs_names, "annotation": adata.obs["cell_type"].astype(str)})
    sheet = sheet.iloc[:160]
    adata.obs = adata.obs.drop(columns=["cell_type"])
    adata.write_h5ad(tmp_path / "cells.h5ad")
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    return {"h5ad": str(tmp_path / "cells.h5ad"), "sheet": str(tmp_path / "sheet.csv"), "frame": sheet}


def test_the_sheet_gives_the_labels_and_unlisted_cells_are_left_out(cells):
    ds, notes = data.load_dataset(cells["h5ad"], samples=cells["sheet"], target="annotation", layer="counts")
    assert ds.n_samples == 160 and ds.n_features == 40
    assert list(ds.ids) == list(cells["frame"]["cell"])
    assert [ds.classes[k] for k in ds.y] == list(cells["frame"]["annotation"])
    assert set(ds.groups) <= {f"D{d}" for d in range(8)}  # the donors still come from .obs
    assert any("40 samples of" in n and "left out" in n for n in ds.warnings), ds.warnings
    # the same cells as the sheet's rows of the counts, in the file's order
    full = anndata.read_h5ad(cells["h5ad"])
    np.testing.assert_array_equal(ds.X.toarray(), full.layers["counts"][:160].toarray())


def test_train_then_predict_with_the_sheet(cells, tmp_path):
    model = str(tmp_path / "m.mlp")
    res = run(["train", cells["h5ad"], "--samples", cells["sheet"], "--target", "annotation", "--layer", "counts",
               "--folds", "1", "--epochs", "3", "--hidden", "8", "-o", model, "-q"])
    assert res.exit_code == 0, res.output
    res = run(["evaluate", model, cells["h5ad"], "--samples", cells["sheet"], "--layer", "counts", "--json"])
    assert res.exit_code == 0, res.output


def test_a_sheet_that_matches_no_cell_is_an_error_naming_both(cells, tmp_path):
    bad = tmp_path / "other.csv"
    cells["frame"].assign(cell=[f"x{i}" for i in range(160)]).to_csv(bad, index=False)
    res = run(["train", cells["h5ad"], "--samples", str(bad), "--target", "annotation", "--layer", "counts",
               "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "other.csv", "cells.h5ad")
    assert not (tmp_path / "m.mlp").exists()


def test_a_target_in_neither_the_obs_nor_the_sheet_names_both(cells, tmp_path):
    res = run(["train", cells["h5ad"], "--samples", cells["sheet"], "--target", "subtype", "--layer", "counts",
               "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "subtype", "sheet.csv")


def test_a_missing_label_in_the_sheet_names_the_sheet_and_the_cell(cells, tmp_path):
    """An empty label cell in the sheet was "target has missing values ... row 6", naming neither file (with an
    .h5ad or a 10x directory; a text table's join named the sheet)."""
    bad = tmp_path / "gaps.csv"
    frame = cells["frame"].reset_index(drop=True)
    frame.loc[5, "annotation"] = None
    frame.to_csv(bad, index=False)
    res = run(["train", cells["h5ad"], "--samples", str(bad), "--target", "annotation", "--layer", "counts",
               "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "--samples", "gaps.csv", "missing values", f"sample with id {frame['cell'][5]!r}")
    assert not (tmp_path / "m.mlp").exists()


def test_info_names_the_matrix_an_h5ad_model_was_trained_on(cells, tmp_path):
    """predict warns when --layer/--raw read another matrix than in training; info did not say which one that was."""
    import json

    model = str(tmp_path / "m.mlp")
    assert run(["train", cells["h5ad"], "--samples", cells["sheet"], "--target", "annotation", "--layer", "counts",
                "--folds", "1", "--epochs", "2", "--hidden", "4", "-o", model, "-q"]).exit_code == 0
    res = run(["info", model, "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["matrix"] == "layer 'counts'", res.output
    assert "layer 'counts' of an .h5ad file" in run(["info", model]).output
