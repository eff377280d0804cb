"""`predict --explain` with abstention: an unassigned row's top_features are toward the class the decision rule
chose, which its label no longer names; the `explained_class` column names it (CSV and .h5ad outputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    y = np.where(X[:, 5] > 0.8, "C", np.where(X[:, 3] > 0, "A", "B"))
    return pd.DataFrame(X, columns=[f"G{j}" for j in range(8)]).assign(label=y)


def test_unassigned_rows_name_the_class_their_genes_explain(tmp_path):
    _table(300, 0).to_csv(tmp_path / "train.csv", index=False)
    _table(120, 1).to_csv(tmp_path / "test.csv", index=False)
    res = run(["train", str(tmp_path / "train.csv"), "--no-group", "--folds", "1", "--hidden", "8", "--epochs", "60",
               "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    args = ["predict", str(tmp_path / "m.mlp"), str(tmp_path / "test.csv"), "--explain", "3", "-q"]
    assert run([*args, "-o", str(tmp_path / "plain.csv")]).exit_code == 0
    res = run([*args, "--min-confidence", "0.7", "-o", str(tmp_path / "abstained.csv")])
    assert res.exit_code == 0, res.output
    plain, abstained = pd.read_csv(tmp_path / "plain.csv"), pd.read_csv(tmp_path / "abstained.csv")
    assert "explained_class" not in plain.columns  # no abstention: the label names the class
    unassigned = abstained["pred_label"] == "unassigned"
    assert 0 < unassigned.sum() < len(abstained)
    assert (abstained["explained_class"] == plain["pred_label"]).all()  # the class the rule chose, every row
    assert (abstained["top_features"] == plain["top_features"]).all()
    assert (abstained.loc[~unassigned, "explained_class"] == abstained.loc[~unassigned, "pred_label"]).all()


def test_the_h5ad_output_carries_the_explained_class(tmp_path):
    anndata = pytest.importorskip("anndata")
    cells = SAMPLE / "single_cell.h5ad"
    res = run(["train", str(cells), "--target", "cell_type", "--folds", "1", "--hidden", "8", "--epochs", "3", "-q",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    res = run(["predict", str(tmp_path / "m.mlp"), str(cells), "--explain", "2", "--min-confidence", "0.9", "-q",
               "-o", str(tmp_path / "out.h5ad")])
    assert res.exit_code == 0, res.output
    obs = anndata.read_h5ad(tmp_path / "out.h5ad").obs
    assert {"mlpcli_top_features", "mlpcli_explained_class"} <= set(obs.columns)
    assigned = obs["mlpcli_cell_type"].astype(str) != "unassigned"
    assert (obs.loc[assigned, "mlpcli_explained_class"].astype(str) == obs.loc[assigned, "mlpcli_cell_type"].astype(str)).all()
    assert set(obs["mlpcli_explained_class"].astype(str)) <= set(obs["cell_type"].astype(str))
