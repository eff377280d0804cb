"""Review by use of `mlpcli info` (and `gradcheck --model`) on every kind of model file: what info shows must
agree with what train said and with the file."""

from __future__ import annotations

import json

import pytest

from cli_helpers import run
from tables import make_table

FAST = ["--epochs", "3", "--folds", "1", "--seed", "0", "-q"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("gradinfo")
    paths = {}
    for task in ("binary", "multiclass"):
        paths[task] = str(d / f"{task}.csv")
        make_table(task, n_patients=30).to_csv(paths[task], index=False)
    return d, paths


def _train(d, data, name, *args):
    out = str(d / name)
    res = run(["train", data, "-o", out, *args])
    assert res.exit_code == 0, res.output
    return out


def _network_row(model: str) -> str:
    text = run(["info", model], env={"COLUMNS": "400"}).stdout
    return " ".join(line for line in text.splitlines() if "network" in line)


def test_info_names_batchnorm_and_why_a_classifier_has_no_temperature(tables):
    """A --batchnorm model's network row said "relu, dropout 0.3" (BatchNorm, which gradcheck checks in training
    mode and which changes what the network computes, was not shown), and a classifier train had not calibrated
    (24 held-out rows; --no-calibrate) showed no temperature and no word on why."""
    d, paths = tables
    bn = _train(d, paths["binary"], "bn.mlp", *FAST, "--hidden", "8", "--batchnorm")
    row = _network_row(bn)
    assert "relu, BatchNorm, dropout 0.3" in row, row
    assert "not calibrated (18 held-out rows, fewer than the 100 a temperature needs)" in row, row
    doc = json.loads(run(["info", bn, "--json"]).stdout)
    assert doc["network"]["batchnorm"] is True and doc["network"]["not_calibrated"].startswith("18 held-out rows")
    # the check of the same file runs BatchNorm's training mode, as info now says the network has it
    res = run(["gradcheck", "--model", bn, "--data", paths["binary"], "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert any("batch statistics" in r["component"] for r in json.loads(res.stdout)["results"])

    plain = _train(d, paths["binary"], "nocal.mlp", *FAST, "--hidden", "8", "--no-calibrate")
    row = _network_row(plain)
    assert "BatchNorm" not in row and "not calibrated (--no-calibrate)" in row, row
    reg = _train(d, paths["binary"], "reg.mlp", *FAST, "--hidden", "", "--task", "regression", "--target", "f00",
                 "--drop", "label")
    assert "calibrat" not in _network_row(reg)  # a regression has no probabilities to calibrate: nothing to say


def test_info_of_an_ensemble_and_its_refit_says_what_each_figure_is(tables):
    """An ensemble's row read "5 members, each 12 → 16 → 3, …; 1,405 parameters", the total, while train said
    "each … 281 parameters"; a --refit model's prediction sets were "from 90 refit scores", scores the refit
    network does not have (they are the members' out-of-fold ones), and --json counted 29.999999999999996
    patients."""
    d, paths = tables
    ensemble = ["--epochs", "3", "--folds", "3", "--hidden", "16", "--n-jobs", "1", "-q"]
    ens = _train(d, paths["multiclass"], "ens.mlp", *ensemble)
    doc = json.loads(run(["info", ens, "--json"]).stdout)
    net = doc["network"]
    assert net["members"] == 3 and net["parameters"] == 3 * net["parameters_per_member"]
    assert f"{net['parameters']:,} parameters ({net['parameters_per_member']:,} each)" in _network_row(ens)

    refit = _train(d, paths["multiclass"], "refit.mlp", *ensemble, "--refit")
    doc = json.loads(run(["info", refit, "--json"]).stdout)
    sets = doc["trust"]["prediction_sets"]
    assert sets["source"] == "refit" and sets["patients"] == 30
    text = " ".join(run(["info", refit], env={"COLUMNS": "400"}).stdout.split())
    assert (f"from {sets['scores']} out-of-fold scores of the cross-fitted members (30 patients; the refit network "
            "has no held-out rows)") in text, text
    assert "refit scores" not in text
