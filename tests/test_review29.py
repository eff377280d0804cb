"""Review 29, by use: what `diagnose` reads from a history file and the faults this session's reviews found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run
from mlpcli.history import read_curves


@pytest.fixture(scope="module")
def histories(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("histories")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=120) > 0, "a", "b")
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(8)])
    frame.insert(0, "label", y)
    frame.to_csv(tmp / "t.csv", index=False)
    for name, extra in (("lbfgs", ["--optimizer", "lbfgs"]), ("adam", ["--optimizer", "adam", "--epochs", "12"])):
        res = run(["train", str(tmp / "t.csv"), *extra, "--folds", "1", "--no-group", "--hidden", "4", "-q",
                   "--history", str(tmp / f"{name}.csv"), "-o", str(tmp / f"{name}.mlp")])
        assert res.exit_code == 0, res.output
    return tmp


def test_an_lbfgs_history_file_is_read_in_iterations(histories):
    """The model file said iterations; its --history file, diagnosed on its own, said epochs."""
    c = read_curves(histories / "lbfgs.csv")
    assert c.step == "iteration" and any("per L-BFGS iteration" in n for n in c.notes)
    res = run(["diagnose", str(histories / "lbfgs.csv")])
    assert res.exit_code == 0, res.output
    assert f"{len(c.train)} iterations" in res.output


def test_a_minibatch_history_file_and_a_hand_made_one_stay_epochs(histories, tmp_path):
    assert read_curves(histories / "adam.csv").step == "epoch"
    # a table of one's own, with no lr column and none of train's bookkeeping, is not taken for L-BFGS
    pd.read_csv(histories / "adam.csv")[["epoch", "train_loss", "val_loss"]].to_csv(tmp_path / "own.csv", index=False)
    c = read_curves(tmp_path / "own.csv")
    assert c.step == "epoch" and not any("L-BFGS" in n for n in c.notes)
