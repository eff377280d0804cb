"""Counts in the messages a user reads: singular for one ("1 cell", not "1 cells") and a thousands separator
("1,000 of the model's 1,000 features", as elsewhere: 2,000), through ``text.count_of``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlpcli import predict as lib
from mlpcli.config import TrainOptions
from mlpcli.pipeline import train
from mlpcli.text import count_of

anndata = pytest.importorskip("anndata")  # the test extra installs it: never skipped in CI


def test_count_of():
    assert count_of(1, "cell") == "1 cell" and count_of(0, "gene") == "0 genes"
    assert count_of(2000, "gene") == "2,000 genes" and count_of(3, "class", "classes") == "3 classes"


def test_one_cell_and_a_thousand_features_are_counted_as_written(tmp_path):
    """An .h5ad file of one cell read "1 cells × 300 genes"; a model of 1,000 genes "1000 of the model's 1000
    features found"."""
    rng = np.random.default_rng(0)
    genes = [f"G{j:04d}" for j in range(1000)]
    X = rng.normal(5.0, 1.0, (40, len(genes)))
    table = pd.DataFrame(X, columns=genes)
    table.insert(0, "label", np.where(X[:, 0] > 5, "a", "b"))
    model = train(table, TrainOptions(hidden=[], epochs=1, folds=1, seed=0, no_group=True)).model
    obs = pd.DataFrame({"label": ["a"]}, index=["c1"])
    anndata.AnnData(X[:1].astype(np.float32), obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(tmp_path / "one.h5ad")
    prepared = lib.prepare(model, str(tmp_path / "one.h5ad"))
    text = " | ".join(prepared.notes)
    assert "1 cell × 1,000 genes" in text, text
    assert "1,000 of the model's 1,000 features found" in text, text
