"""What `predict` and `evaluate` say labelled the rows: a binary model's `--threshold` is neither decision rule, so
their JSON's `decision` says `threshold` and `--min-confidence`'s note does not blame the balanced rule; and the
no-patient-column warning speaks of calibrated probabilities only where there are some."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run


def _binary(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.2
    X = rng.normal(size=(n, 10))
    X[:, :3] += 1.0 * y[:, None]
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(10)])
    frame.insert(0, "label", np.where(y, "case", "ctrl"))
    frame.insert(0, "patient_id", [f"P{i}" for i in range(n)])
    return frame


@pytest.fixture(scope="module")
def balanced_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labels")
    _binary(300, 1).to_csv(tmp / "train.csv", index=False)
    _binary(120, 2).to_csv(tmp / "test.csv", index=False)
    res = run(["train", str(tmp / "train.csv"), "--decision", "balanced", "--hidden", "8", "--epochs", "15", "-q",
               "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    return tmp


def test_predict_names_the_threshold_not_the_models_rule(balanced_model):
    tmp = balanced_model
    res = run(["predict", str(tmp / "m.mlp"), str(tmp / "test.csv"), "--threshold", "0.5", "--json",
               "-o", str(tmp / "p.csv")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["decision"], doc["threshold"], doc["threshold_source"]) == ("threshold", 0.5, "--threshold")
    res = run(["predict", str(tmp / "m.mlp"), str(tmp / "test.csv"), "--json", "-o", str(tmp / "q.csv")])
    assert json.loads(res.stdout)["decision"] == "balanced"


def test_evaluate_names_the_threshold_not_the_models_rule(balanced_model):
    tmp = balanced_model
    doc = json.loads(run(["evaluate", str(tmp / "m.mlp"), str(tmp / "test.csv"), "--threshold", "0.5", "--json",
                          "-q"]).stdout)
    assert doc["decision"] == "threshold" and doc["threshold"] == 0.5
    doc = json.loads(run(["evaluate", str(tmp / "m.mlp"), str(tmp / "test.csv"), "--json", "-q"]).stdout)
    assert doc["decision"] == "balanced"


def test_min_confidence_under_a_threshold_does_not_blame_the_balanced_rule(balanced_model):
    tmp = balanced_model
    args = ["predict", str(tmp / "m.mlp"), str(tmp / "test.csv"), "--min-confidence", "0.9", "-o", str(tmp / "r.csv")]
    under_rule = " ".join(run(args).stderr.split())
    assert "a label of the balanced decision rule is often a rarer class" in under_rule  # the model's own rule
    under_threshold = " ".join(run([*args, "--threshold", "0.5"]).stderr.split())
    assert "below --min-confidence 0.9" in under_threshold
    assert "balanced decision rule" not in under_threshold


def test_the_no_patient_warning_of_a_regression_speaks_of_no_probabilities(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 6))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(6)]).assign(label=2 * X[:, 0] + rng.normal(size=200))
    frame.to_csv(tmp_path / "reg.csv", index=False)
    res = run(["train", str(tmp_path / "reg.csv"), "--hidden", "4", "--epochs", "5", "--folds", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stderr.split())
    assert "samples are treated as independent; if several come from one patient, validation is optimistic — " \
           "pass --group COLUMN" in text
    assert "probabilities" not in text
