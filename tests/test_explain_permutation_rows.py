"""Permutation importance: scored by balanced accuracy it counts the labels the model gives (its decision rule, as
`predict` and `evaluate` label), and run on rows the model was trained on it says so, in any file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from mlpcli.model_io import load as load_model
from mlpcli.explain import feature_rng, permutation_importance


def _rare(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    y = np.where(rng.random(n) < 0.5, "A", "B")
    rare = rng.random(n) < 0.08
    y = np.where(rare, "R", y)
    X[y == "A", 2] += 1.5
    X[rare, 4] += 1.6
    return pd.DataFrame(X, columns=[f"G{j}" for j in range(8)]).assign(label=y)


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain_rule")
    _rare(400, 0).to_csv(tmp / "train.csv", index=False)
    res = run(["train", str(tmp / "train.csv"), "--decision", "balanced", "--no-group", "--hidden", "8",
               "--epochs", "30", "-q", "-o", str(tmp / "m.mlp")])
    assert res.exit_code == 0, res.output
    return load_model(str(tmp / "m.mlp")), _rare(300, 1)


def _recall(model, X: np.ndarray, y: np.ndarray, c: int) -> float:
    pred = model.predict_classes(model.predict_output(X))
    return float(np.mean(pred[y == c] == c))


def test_the_drop_in_a_rare_class_recall_is_that_of_the_models_own_labels(balanced):
    model, test = balanced
    X = test[[f"G{j}" for j in range(8)]].to_numpy()
    y = np.array([list(model.classes).index(v) for v in test["label"]])
    r = list(model.classes).index("R")
    drops, _ = permutation_importance(model, X, test["label"].to_numpy(), repeats=3, seed=0,
                                      scoring="balanced_accuracy")
    base = _recall(model, X, y, r)
    assert base > 0.3  # the balanced rule calls the rare class; argmax would barely
    rng = feature_rng(0, "G4")
    by_hand = []
    for perm in [rng.permutation(len(X)) for _ in range(3)]:
        Xs = X.copy()
        Xs[:, 4] = X[perm, 4]
        by_hand.append(base - _recall(model, Xs, y, r))
    assert drops[:, 4, r] == pytest.approx(by_hand, abs=1e-9)
    assert drops[:, 4, r].mean() > 0.2


def test_permutation_on_training_rows_is_warned_of_in_any_file(tmp_path):
    """The training rows are recognised by the model's fingerprints, in a file of another name and length, and
    counted (the check used to compare the file's name and number of samples only)."""
    _rare(200, 0).to_csv(tmp_path / "train.csv", index=False)
    res = run(["train", str(tmp_path / "train.csv"), "--no-group", "--hidden", "4", "--epochs", "5", "--folds", "2",
               "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    mixed = pd.concat([_rare(200, 0).iloc[:30], _rare(50, 5)], ignore_index=True)
    mixed.to_csv(tmp_path / "cohort.csv", index=False)
    res = run(["explain", str(tmp_path / "m.mlp"), str(tmp_path / "cohort.csv"), "--method", "permutation",
               "--repeats", "1", "-o", str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stderr.split())
    assert ("warning: 30 of 80 samples are rows the model was trained on (identical feature values: row 1, row 2, "
            "row 3, …): permutation importance on training samples rewards what the networks memorised") in text
    _rare(50, 5).to_csv(tmp_path / "new.csv", index=False)
    res = run(["explain", str(tmp_path / "m.mlp"), str(tmp_path / "new.csv"), "--method", "permutation",
               "--repeats", "1", "-o", str(tmp_path / "s.csv")])
    assert res.exit_code == 0 and "trained on" not in res.stderr
