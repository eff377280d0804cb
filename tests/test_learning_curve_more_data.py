"""`diagnose --learning-curve`'s more-data answer: a rise per doubling within the scatter of the sizes' scores
about their trend is "unclear" (random labels read "more data still helps" at +0.034 per doubling), a steady rise
beyond it "helps"."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from cli_helpers import run


def _curve(tmp_path, frame: pd.DataFrame) -> dict:
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["diagnose", "--learning-curve", str(tmp_path / "t.csv"), "--no-group", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_random_labels_do_not_read_as_more_data_helping(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(1000, 20)), columns=[f"f{i}" for i in range(20)])
    doc = _curve(tmp_path, frame.assign(label=np.where(rng.integers(0, 2, 1000), "A", "B")))
    assert doc["more_data"]["verdict"] in ("unclear", "plateaued")
    if doc["more_data"]["verdict"] == "unclear":
        assert "within the scatter of the sizes' scores about their trend" in doc["more_data"]["text"]
        assert "more data still helps" not in doc["bias_variance"]["text"]


def test_a_steady_rise_helps(tmp_path):
    X, y = make_classification(n_samples=1500, n_features=40, n_informative=20, n_redundant=0, class_sep=0.6,
                               flip_y=0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(40)]).assign(label=np.where(y == 1, "A", "B"))
    doc = _curve(tmp_path, frame)
    scores = [p["val_score"] for p in doc["sizes"]]
    assert scores == sorted(scores)  # rising at every size
    assert doc["more_data"]["verdict"] == "helps"


def test_a_bias_verdict_says_early_stopping_may_cap_the_training_score(tmp_path):
    """Noisy labels on one gene: "mostly bias ... a more flexible model" from a training score taken at the epoch
    early stopping kept; on modeldata's cells, 512-256 units moved validation by 0.01, within its noise."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 10))
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    doc = _curve(tmp_path, frame.assign(label=np.where(X[:, 0] + rng.normal(0, 1, 1500) > 0, "A", "B")))
    bias = doc["bias_variance"]
    assert bias["verdict"] == "bias"
    assert bias["caveat"].startswith("Caveat: at the largest size the training score is that of the epoch early "
                                     "stopping kept (")
    assert "a more flexible model may not lift validation" in bias["caveat"]
