"""Marginal prediction sets promise `--coverage` over all samples, not per class: a class rarer than 1 - level
can be left out of the sets for most of its samples while the promise holds (a class of 1.2 % covered for 0 of
its 10 new samples at 0.9, overall 0.888). `predict` and `evaluate` name such classes and point to --mondrian."""

from __future__ import annotations

import json

import pytest

from cli_helpers import run
from tables import make_table


@pytest.fixture(scope="module")
def rare(tmp_path_factory):
    d = tmp_path_factory.mktemp("rare_sets")
    table = make_table("multiclass", n_patients=90, per_patient=2, n_features=6, seed=3)
    patient = table["patient_id"].str[1:].astype(int)
    table = table[(table["label"] != "typeC") | (patient < 12)]  # typeC: 4 patients, 8 of 128 samples
    table.to_csv(d / "t.csv", index=False)
    res = run(["train", str(d / "t.csv"), "--epochs", "10", "--hidden", "8", "-q", "-o", str(d / "m.mlp")])
    assert res.exit_code == 0, res.output
    return d, (table["label"] == "typeC").mean()


def _notes(res) -> list[str]:
    assert res.exit_code == 0, res.output
    return [n for n in json.loads(res.stdout)["notes"] if "is a share of all samples, not of each class" in n]


def test_marginal_sets_name_the_classes_rarer_than_one_minus_the_level(rare, tmp_path):
    d, share = rare
    said = _notes(run(["evaluate", str(d / "m.mlp"), str(d / "t.csv"), "--coverage", "0.9", "--json"]))
    assert len(said) == 1 and f"'typeC' ({share:.1%})" in said[0] and "--mondrian" in said[0]
    assert "'typeA'" not in said[0] and "'typeB'" not in said[0]
    out = tmp_path / "p.csv"
    res = run(["predict", str(d / "m.mlp"), str(d / "t.csv"), "--coverage", "0.9", "-o", str(out)])
    assert res.exit_code == 0 and "is a share of all samples, not of each class" in " ".join(res.output.split())
    # a level whose 1 - level is below the class's share, or per-class sets: nothing to say; a low level names
    # the rare classes only (every class is rarer than 1 - 0.5)
    assert _notes(run(["evaluate", str(d / "m.mlp"), str(d / "t.csv"), "--coverage", "0.9", "--mondrian",
                       "--json"])) == []
    assert _notes(run(["evaluate", str(d / "m.mlp"), str(d / "t.csv"), "--coverage", "0.95", "--json"])) == []
    low = _notes(run(["evaluate", str(d / "m.mlp"), str(d / "t.csv"), "--coverage", "0.5", "--json"]))
    assert len(low) == 1 and "rarer than 10% of the training samples — 'typeC'" in low[0] and "'typeA'" not in low[0]
