"""`train` names a value of its own table that lies far beyond its feature's other values — a typo (1e30 for 1.3), a
value in another unit — by the rule `predict` applies to a new cohort; the robust scaling had held it at the edge of
the range, and 1e30 in a gene's column trained without a word. A heavy tail that thins gradually is no typo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from cli_helpers import run
from mlpcli.data import Preprocessor
from mlpcli.data.far_values import far_cells
from mlpcli.data.preprocess import PreprocessConfig


def _table(tmp_path, values: np.ndarray, name: str = "t.csv"):
    frame = pd.DataFrame(values, columns=[f"G{j}" for j in range(values.shape[1])])
    frame.insert(0, "label", np.where(values[:, 0] > np.median(values[:, 0]), "hi", "lo"))
    frame.insert(0, "sample_id", [f"s{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def _train(path, *options: str):
    res = run(["train", str(path), "--no-group", "--folds", "1", "--hidden", "none", "--epochs", "2",
               "-o", str(path.with_suffix(".mlp")), *options])
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())


def test_a_typo_in_a_table_of_counts_is_named_by_sample_and_gene(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.poisson(np.exp(rng.normal(3, 1, size=(1, 12))), size=(90, 12)).astype(float)
    counts[17, 4] = 1e30
    text = _train(_table(tmp_path, counts), "--log1p")
    assert ("the training table: a value lies more than 1,000,000 times its feature's typical training value (and 10 "
            "training spreads beyond it on the log scale) — the first in 'G4' of sample 's17'") in text, text


def test_typos_in_measurements_on_their_own_scale_are_counted(tmp_path):
    values = np.random.default_rng(1).normal(5, 1, size=(80, 6))
    values[3, 2], values[40, 5] = 5e6, -7e5  # another unit; a sign slip in another unit
    text = _train(_table(tmp_path, values))
    assert "the training table: 2 values lie more than 1,000 training spreads from its feature's training centre — " \
           "the first in 'G2' of sample 's3'" in text, text


def test_a_heavy_tail_that_thins_gradually_is_no_typo(tmp_path):
    """A column whose largest values lie thousands of IQRs out, each a few times the next (pd_speech's entropy
    coefficients: -999, -595, -374 beside a median of 0.3), holds real measurements."""
    values = np.random.default_rng(2).normal(5, 1, size=(120, 5))
    values[:10, 1] = [30, 100, 300, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6]
    pre = Preprocessor(PreprocessConfig(scaling="robust")).fit(values, [f"G{j}" for j in range(5)])
    assert (values[:, 1] > pre.far_bounds()[1][1]).sum() >= 5  # beyond the scales: what the test is about
    assert far_cells(values, pre) == (0, None)
    assert "the training table:" not in _train(_table(tmp_path, values), "--no-log1p")
    values[17, 1] = 1e9  # a thousand times the tail's end: apart
    assert far_cells(values, pre) == (1, (17, 1))


def test_sparse_and_dense_tables_agree(tmp_path):
    rng = np.random.default_rng(3)
    counts = rng.poisson(3, size=(2000, 20)).astype(float)
    counts[1055, 7] = 1e25
    counts[12, 3] = 4e20
    pre = Preprocessor(PreprocessConfig(log1p=True, scaling="robust")).fit(counts, [f"G{j}" for j in range(20)])
    dense = far_cells(counts, pre)
    assert dense == (2, (12, 3))
    assert far_cells(sp.csr_matrix(counts), pre) == dense
    # nothing flagged without standardisation: values keep their units, no scale to judge by
    raw = Preprocessor(PreprocessConfig(log1p=True, standardize=False)).fit(counts, [f"G{j}" for j in range(20)])
    assert far_cells(counts, raw) == (0, None)


def test_a_new_value_within_a_heavy_tails_training_reach_is_no_typo(tmp_path):
    """pd_speech's voice features reach 1,000s of IQRs out in training: a new sample's value among them was named as
    "more than 1,000 training spreads from its feature's training centre ... check the cell" on every random fifth of
    the table. A model keeps how far its training values reached (format 17); a new value is far only 100 times beyond."""
    values = np.random.default_rng(4).normal(5, 1, size=(120, 5))
    values[:10, 1] = [30, 100, 300, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6]
    path = _table(tmp_path, values)
    _train(path, "--no-log1p")
    cohort = pd.read_csv(path).iloc[:40].copy()
    cohort["sample_id"] = [f"n{i}" for i in range(40)]
    cohort.loc[3, "G1"] = 5e5  # within the training tail: no typo
    cohort.to_csv(tmp_path / "c.csv", index=False)
    res = run(["predict", str(path.with_suffix(".mlp")), str(tmp_path / "c.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "training spreads" not in res.output, res.output
    cohort.loc[7, "G1"] = 1e30  # a typo is still named
    cohort.to_csv(tmp_path / "c.csv", index=False)
    res = run(["predict", str(path.with_suffix(".mlp")), str(tmp_path / "c.csv"), "-o", str(tmp_path / "p.csv")])
    assert "a value lies more than 1,000 training spreads from its feature's training centre (and 100 times as far as " \
           "its training values reached) — the first in 'G1' at row 8 (id 'n7')" in " ".join(res.output.split())


def test_a_model_before_format_17_judges_new_values_by_the_training_scale_alone(tmp_path):
    from model_files import rewrite_model

    values = np.random.default_rng(4).normal(5, 1, size=(120, 5))
    values[:10, 1] = [30, 100, 300, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6]
    path = _table(tmp_path, values)
    _train(path, "--no-log1p")
    old = rewrite_model(path.with_suffix(".mlp"), tmp_path / "v16.mlp", lambda m: m.update(format_version=16),
                        lambda a: a)
    cohort = pd.read_csv(path).iloc[:40].copy()
    cohort.loc[3, "G1"] = 5e5
    cohort.to_csv(tmp_path / "c.csv", index=False)
    res = run(["predict", old, str(tmp_path / "c.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0
    assert "7 values lie more than 1,000 training spreads from its feature's training centre — the first in 'G1' at " \
           "row 4" in " ".join(res.output.split())  # the training tail's own values, and the new one
