"""Under class weights the no-skill loss the learning curves are read against is the best constant under the
weighted loss: the unweighted prior of a class of 8 % scored 1.29 there, and a run worse than predicting 0.5 for
everyone (0.74 against ln 2 = 0.69) was read as having learned and then overfitted (advice: a lower --lr)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from cli_helpers import run


def test_the_weighted_no_skill_loss_is_the_weighted_prior(tmp_path):
    rng = np.random.default_rng(33)
    frame = pd.DataFrame(rng.normal(size=(400, 40)), columns=[f"G{i}" for i in range(40)])
    frame.insert(0, "label", np.where(rng.random(400) < 0.1, "case", "ctrl"))
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = tmp_path / "w.mlp"
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "1", "--epochs", "15", "--hidden", "32",
               "--class-weight", "balanced", "-o", str(model)])
    assert res.exit_code == 0, res.output
    baseline = model_io.load(model).baseline
    # balanced weights: near 0.5 is the best constant, ln 2 on rows weighed as the training rows were (the hold-out's
    # own class mix moves it a little); the unweighted prior of 8-10 % scored 1.29 here
    assert 0.6 < baseline["val_loss"] < 0.75
    assert "as the class weights weigh it" in " ".join(res.output.split())
    # unweighted, the prior as before
    plain = tmp_path / "p.mlp"
    assert run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "1", "--epochs", "3", "--hidden", "32",
                "-q", "-o", str(plain)]).exit_code == 0
    share = (frame["label"] == "case").mean()
    expected = -(share * np.log(share) + (1 - share) * np.log(1 - share))
    assert model_io.load(plain).baseline["val_loss"] == pytest.approx(expected, abs=0.03)
