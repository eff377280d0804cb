"""Regression and multi-label review: what held for classification but not for the other tasks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cli_helpers import run


def _regression_candidates(unit: float):
    """Two --hidden auto candidates scored on the same rows, the target in `unit`s: the hidden layer's RMSE is
    a third below the linear one's (0.27 against 0.40 target SDs), a clear win whatever the unit."""
    from mlpcli.model_selection.crossfit import Candidate, _Fitted, _score

    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 1)) * unit
    linear_out = y + rng.normal(size=y.shape) * 0.4 * unit
    hidden_out = y + rng.normal(size=y.shape) * 0.27 * unit
    linear = _Fitted(Candidate((), 0.0), [], linear_out, _score("regression", y, linear_out, 1))
    hidden = _Fitted(Candidate((128,), 0.0), [], hidden_out, _score("regression", y, hidden_out, 1))
    return linear, hidden, y


def test_hidden_auto_for_regression_does_not_depend_on_the_targets_unit():
    """The tie margin was 0.005 in the target's units: a target in kg (RMSE 0.012 against 0.008) always kept
    no hidden layer (R² 0.76), the same target in g (11.8 against 7.8) took the hidden layer (R² 0.89)."""
    from mlpcli.model_selection.crossfit import _choose

    chosen = []
    for unit in (1e-3, 1.0, 1e3):
        linear, hidden, y = _regression_candidates(unit)
        notes: list[str] = []
        best, _ = _choose([linear, hidden], notes, "out-of-fold score", y, "regression")
        chosen.append(best.spec.hidden)
        assert "the tie margin" in notes[0] and "RMSE" in notes[0]
    assert chosen == [(128,)] * 3
    linear, hidden, y = _regression_candidates(1e-3)  # a real tie stays a tie: the simpler one wins
    hidden.score = linear.score * (1 - 0.001)
    assert _choose([linear, hidden], [], "out-of-fold score", y, "regression")[0] is linear


def test_diagnose_names_regression_metric_curves_in_the_targets_units(tmp_path):
    """diagnose --metric metric called a regression model's RMSE curves "rmse (standardised targets)" beside a
    baseline of 23.8 in the target's units: the history has held target units since the history fix. Its loss
    baseline (and train's summary) said "always predicting the training prior" for a regression's mean."""
    from mlpcli import history as hist

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(4)])
    df["label"] = 1000.0 + 200.0 * X[:, 0] + rng.normal(size=120) * 20.0
    path, model = tmp_path / "t.csv", str(tmp_path / "m.mlp")
    df.to_csv(path, index=False)
    res = run(["train", str(path), "--no-group", "--folds", "1", "--epochs", "6", "--hidden", "8", "-o", model, "-q"])
    assert res.exit_code == 0, res.output
    assert hist.read_curves(model, "metric").name == "rmse"
    assert hist.read_curves(model, "loss").baseline_note == "loss of always predicting the training mean"
    res = run(["diagnose", model, "--metric", "metric", "--no-chart"])
    assert res.exit_code == 0, res.output
    assert "RMSE curves" in res.output and "rmse" not in res.output and "standardised" not in res.output


def test_a_label_without_positives_has_no_average_precision():
    """A multi-label label absent from the table showed ROC AUC '—' (undefined) but average precision 0.000,
    the worst score, for a model that rightly predicted it for no sample."""
    from mlpcli import metrics

    rng = np.random.default_rng(0)
    Y = np.column_stack([rng.integers(0, 2, 40), np.zeros(40, dtype=int)])
    P = np.column_stack([np.clip(Y[:, 0] * 0.6 + rng.random(40) * 0.4, 0, 1), rng.random(40) * 0.2])
    per_label = metrics.compute("multilabel", Y, P, ["a", "b"])["per_label"]
    assert per_label[1]["roc_auc"] is None and per_label[1]["average_precision"] is None
    assert per_label[0]["average_precision"] is not None and per_label[0]["average_precision"] > 0.5
    binary = metrics.compute("binary", np.zeros(6, dtype=int), np.linspace(0.1, 0.9, 6).reshape(-1, 1), ["a", "b"])
    assert binary["roc_auc"] is None and binary["average_precision"] is None


def test_a_regression_loss_on_a_multilabel_target_suggests_losses_it_takes(tmp_path):
    """The message said "use ce, bce, focal or hinge", and --loss ce is refused for a multi-label target."""
    from cli_helpers import assert_clean_error
    from tables import make_table

    path = tmp_path / "ml.csv"
    make_table("multilabel", seed=0, n_patients=20, n_features=4).to_csv(path, index=False)
    res = run(["train", str(path), "--target", "lab0,lab1,lab2", "--loss", "mse", "--epochs", "2", "--folds", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "--loss mse", "use bce, focal or hinge")
    assert "ce, bce" not in res.output and not (tmp_path / "m.mlp").exists()
