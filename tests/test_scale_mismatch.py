"""Values on another scale than the model learned: a model trained on a 10x directory's raw counts warns when an
.h5ad file's .X (scanpy keeps log-normalised values there) is read instead of its counts, and the cohort-shift
check calls a table whose every feature moved the same way a shift, however few features pass the mean test's
bar (log-normalised single cells against a counts model: 3 % beyond the bar, "cohort shift: none")."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from tables import write_cellranger

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def tenx_model(tmp_path_factory):
    anndata = pytest.importorskip("anndata")
    tmp = tmp_path_factory.mktemp("tenx_scale")
    cells = anndata.read_h5ad(SAMPLE / "single_cell.h5ad")
    counts = cells.layers["counts"].tocsr()
    tenx = tmp / "tenx"
    write_cellranger(tenx, counts, ids=cells.var_names, symbols=cells.var_names, barcodes=cells.obs_names, integer=True)
    sheet = pd.DataFrame({"barcode": cells.obs_names, "cell_type": cells.obs["cell_type"].astype(str).to_numpy(),
                          "donor_id": cells.obs["donor_id"].astype(str).to_numpy()})
    sheet.to_csv(tmp / "cells.csv", index=False)
    res = run(["train", str(tenx), "--samples", str(tmp / "cells.csv"), "--target", "cell_type", "--folds", "1",
               "--epochs", "3", "--hidden", "8", "-q", "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    return tmp


def test_an_h5ad_X_that_is_not_counts_is_warned_of(tenx_model):
    res = run(["predict", str(tenx_model / "m.mlp"), str(SAMPLE / "single_cell.h5ad"), "-q",
               "-o", str(tenx_model / "p.csv")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stderr.split())
    assert "warning: features from .X, whose values are not counts" in text
    assert "trained on the raw counts of a 10x directory (tenx)" in text and "layer 'counts'" in text


def test_the_counts_layer_is_not_warned_of(tenx_model):
    res = run(["predict", str(tenx_model / "m.mlp"), str(SAMPLE / "single_cell.h5ad"), "--layer", "counts", "-q",
               "-o", str(tenx_model / "q.csv")])
    assert res.exit_code == 0, res.output
    assert "whose values are not counts" not in res.stderr


def test_info_says_the_model_was_trained_on_a_10x_directory(tenx_model):
    res = run(["info", str(tenx_model / "m.mlp")])
    assert "tenx (a 10x Genomics directory: raw counts)" in " ".join(res.output.split())


def test_every_feature_moving_one_way_is_a_shift(tmp_path):
    rng = np.random.default_rng(0)
    genes = [f"g{j}" for j in range(40)]
    train = pd.DataFrame(rng.normal(size=(200, 40)), columns=genes).assign(label=np.tile(["A", "B"], 100))
    train.to_csv(tmp_path / "train.csv", index=False)
    res = run(["train", str(tmp_path / "train.csv"), "--no-group", "--folds", "1", "--epochs", "2", "--hidden", "4",
               "--no-log1p", "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    same = pd.DataFrame(rng.normal(size=(12, 40)), columns=genes)
    args = ["predict", str(tmp_path / "m.mlp"), "-o", str(tmp_path / "p.csv")]
    assert "cohort shift │ none" in " ".join(run([*args[:2], _csv(tmp_path / "same.csv", same), *args[2:]]).output.split())
    # another scale on 12 samples (too few for the spread and 0.5 SD tests): every gene 0.3 SD lower, a third the SD
    rescaled = same * 0.3 - 0.3
    res = run([*args[:2], _csv(tmp_path / "rescaled.csv", rescaled), *args[2:]])
    text = " ".join(res.output.split())
    assert "warning: cohort shift:" in text and "of the 40 features have a mean lower than in training" in text
    assert "and a median SD 2x or more off (warning when 90% move one way)" in text
    assert re.search(r"; (3[6-9]|40) of 40 lower than in training\)", text), text
    res = run([*args[:2], str(tmp_path / "rescaled.csv"), *args[2:], "--fail-on-shift", "shift"])
    assert res.exit_code == 1 and "lower than in training with SDs 2x off (the rule: 90% of them one way" in \
        " ".join(res.output.split())
    # an offset with the spreads as they were is no other scale: 5,000 samples 0.1 SD higher everywhere
    offset = pd.DataFrame(rng.normal(size=(5000, 40)), columns=genes) + 0.1
    res = run([*args[:2], _csv(tmp_path / "offset.csv", offset), *args[2:], "--fail-on-shift", "shift"])
    assert res.exit_code == 0, res.output
    assert "cohort shift │ none" in " ".join(res.output.split())


def _csv(path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def test_one_to_four_samples_on_another_scale_are_a_shift(tmp_path):
    """Fewer than 5 rows skipped the check with a note (-q hides it): one patient's sample of log values given to a
    model of counts, or counts 1,000 x the training scale, predicted without a warning. Nearly every gene moving one
    way, well beyond the bar raised for so few rows, is a shift from one sample on; an ordinary sample is not."""
    rng = np.random.default_rng(0)
    genes = [f"g{j}" for j in range(40)]
    mu = np.exp(rng.normal(4, 2, 40))

    def counts(n):
        return pd.DataFrame(rng.negative_binomial(1.5, 1.5 / (1.5 + mu), size=(n, 40)).astype(float), columns=genes)

    train = counts(120).assign(label=np.tile(["A", "B"], 60))
    train.to_csv(tmp_path / "train.csv", index=False)
    res = run(["train", str(tmp_path / "train.csv"), "--no-group", "--folds", "1", "--epochs", "2", "--hidden", "4",
               "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    new = counts(4)
    args = ["predict", str(tmp_path / "m.mlp"), "-o", str(tmp_path / "p.csv")]
    for frame, rows in ((new.iloc[:1], 1), (new, 4)):
        res = run([*args[:2], _csv(tmp_path / "same.csv", frame), *args[2:]])
        assert res.exit_code == 0 and "cohort shift:" not in res.output, res.output
        assert f"cohort-shift check skipped: {rows} row" in res.output
    logged = np.log1p(new.iloc[:1])
    res = run([*args[:2], _csv(tmp_path / "logged.csv", logged), *args[2:]])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "warning: cohort shift:" in text, text
    assert "the 1 SD bar raised for 1 sample:" in text and "as when the values are already log-transformed" in text
    assert "SD x" not in text  # one sample has no spread to compare
    res = run([*args[:2], _csv(tmp_path / "scaled.csv", new.iloc[:3] * 1000), *args[2:]])
    assert "warning: cohort shift:" in res.output and "higher than in training" in res.output, res.output
    res = run([*args[:2], str(tmp_path / "logged.csv"), *args[2:], "--fail-on-shift", "shift"])
    assert res.exit_code == 1 and "could not judge" not in res.output, res.output
