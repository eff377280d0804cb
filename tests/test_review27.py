"""Fixes from the twenty-seventh session's reviews by use (evaluate, predict's shift check, model files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_clean_error, run
from tables import make_table

FAST = ["--hidden", "8", "--epochs", "15", "--folds", "1", "--quiet"]


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    """A 3-class model and its table."""
    d = tmp_path_factory.mktemp("three")
    df = make_table("multiclass", n_patients=60, seed=3)
    df.to_csv(d / "train.csv", index=False)
    assert run(["train", str(d / "train.csv"), "-o", str(d / "m.mlp"), *FAST]).exit_code == 0
    return d, df


def test_evaluate_says_f1_macro_counts_an_absent_class_it_predicted_as_zero(three_classes):
    """A cohort without class C in which the model still calls some samples C: F1 macro (scikit-learn's
    convention) counts C as 0 and sat at 0.59 beside a balanced accuracy of 0.83 with nothing to say why."""
    d, df = three_classes
    cohort = df[df.label != "typeC"].copy()
    cohort.loc[cohort.index[:5], "f02"] += 8.0  # five samples pushed towards class C: predicted C, never true
    cohort.to_csv(d / "no_c.csv", index=False)
    r = run(["evaluate", str(d / "m.mlp"), str(d / "no_c.csv"), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    per_class = {row["class"]: row for row in doc["metrics"]["per_class"]}
    called = doc["metrics"]["confusion_matrix"][0][2] + doc["metrics"]["confusion_matrix"][1][2]
    assert called >= 1 and per_class["typeC"]["f1"] == 0.0 and per_class["typeC"]["support"] == 0
    note = next(n for n in doc["notes"] if "absent from the table" in n)
    assert f"F1 macro counts 'typeC' (predicted for {called:,} sample" in note and "as 0" in note
    # never called: no such clause (its F1 is left out of the mean)
    df[df.label != "typeC"].to_csv(d / "no_c_clean.csv", index=False)
    doc = json.loads(run(["evaluate", str(d / "m.mlp"), str(d / "no_c_clean.csv"), "--json"]).stdout)
    if doc["metrics"]["confusion_matrix"][0][2] + doc["metrics"]["confusion_matrix"][1][2] == 0:
        assert not any("F1 macro counts" in n for n in doc["notes"])


def test_a_batch_offset_on_values_with_negatives_is_not_called_raw_counts(three_classes):
    """The table's features are Gaussian (negative values): +1.5 on every gene is an offset, not counts."""
    d, df = three_classes
    shifted = df.copy()
    feats = [c for c in df.columns if c.startswith("f")]
    shifted[feats] += 1.5
    shifted.to_csv(d / "offset.csv", index=False)
    r = run(["predict", str(d / "m.mlp"), str(d / "offset.csv"), "-o", str(d / "p.csv")])
    assert r.exit_code == 0, r.output
    assert "higher than in training" in r.output and "carries a batch offset" in r.output
    assert "raw counts" not in r.output
