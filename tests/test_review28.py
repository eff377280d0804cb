"""Review 28, by use: what a model fitted by L-BFGS shows in `diagnose` (its curves are per iteration, its weights the
last iterate's, not early stopping's)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from mlpcli.history import read_curves


@pytest.fixture(scope="module")
def lbfgs_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lbfgs")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=120) > 0, "a", "b")
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(8)])
    frame.insert(0, "label", y)
    frame.to_csv(tmp / "t.csv", index=False)
    for name, extra in (("lbfgs", ["--optimizer", "lbfgs"]), ("adam", ["--optimizer", "adam", "--epochs", "12"])):
        res = run(["train", str(tmp / "t.csv"), *extra, "--folds", "1", "--no-group", "--hidden", "4", "-q",
                   "-o", str(tmp / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    return tmp


def test_lbfgs_curves_are_iterations(lbfgs_model):
    """The panel said "13 epochs; weights kept from epoch 13" and the chart "kept epoch" for L-BFGS iterations."""
    c = read_curves(lbfgs_model / "lbfgs.mlp")
    assert c.step == "iteration" and any("per L-BFGS iteration" in n for n in c.notes)
    res = run(["diagnose", str(lbfgs_model / "lbfgs.mlp")])
    assert res.exit_code == 0, res.output
    assert f"{len(c.train)} iterations; weights kept from iteration {c.checkpoint_epoch}" in res.output
    assert f"kept iteration {c.checkpoint_epoch}" in res.output and "  iteration" in res.output
    doc = json.loads(run(["diagnose", str(lbfgs_model / "lbfgs.mlp"), "--json"]).output)
    assert any("L-BFGS" in n for n in doc["notes"])


def test_minibatch_curves_stay_epochs(lbfgs_model):
    c = read_curves(lbfgs_model / "adam.mlp")
    assert c.step == "epoch" and not any("L-BFGS" in n for n in c.notes)
    res = run(["diagnose", str(lbfgs_model / "adam.mlp")])
    assert res.exit_code == 0, res.output
    assert "12 epochs" in res.output and "iteration" not in res.output
