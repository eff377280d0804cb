"""`evaluate` warns when the model's temperature makes its probabilities worse on a labelled table (log loss beyond
two standard errors of the paired difference, patients as clusters, and the ECE too): fitted on out-of-fold rows each
scored by one member, a temperature above 1 moderated the members' mean further (log loss 0.352 → 0.411, ECE 0.057 →
0.115 on exchangeable samples) without a word."""

from __future__ import annotations

import json

import pytest

from cli_helpers import run
from mlpcli import model_io
from tables import make_table


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tempered")
    make_table("multiclass", n_patients=60, seed=0, signal=1.5).to_csv(tmp / "train.csv", index=False)
    make_table("multiclass", n_patients=100, seed=1, signal=1.5).to_csv(tmp / "new.csv", index=False)
    assert run(["train", str(tmp / "train.csv"), "--hidden", "", "--folds", "3", "--seed", "0", "-o",
                str(tmp / "m.mlp")]).exit_code == 0
    return tmp


def _warnings(files, T: float | None) -> list[str]:
    model = model_io.load(files / "m.mlp")
    if T is not None:
        model.temperature = T
    model_io.save(model, files / "t.mlp")
    res = run(["evaluate", str(files / "t.mlp"), str(files / "new.csv"), "--json"])
    assert res.exit_code == 0, res.output
    return [w for w in json.loads(res.stdout)["warnings"] if "temperature" in w]


@pytest.mark.parametrize("T, words", [(3.0, "too moderate here"), (0.1, "too extreme here")])
def test_a_temperature_that_hurts_is_named_with_the_remedy(files, T, words):
    found = _warnings(files, T)
    assert len(found) == 1, found
    assert f"the model's temperature ({T:.3g}) makes its probabilities worse on this table: log loss" in found[0]
    assert words in found[0] and "patients as clusters" in found[0] and "mlpcli recalibrate" in found[0]
    assert ("members' mean it is applied to is less extreme" in found[0]) == (T > 1)


def test_the_fitted_temperature_on_exchangeable_samples_is_not_warned_of(files):
    assert model_io.load(files / "m.mlp").temperature is not None
    assert _warnings(files, None) == []
