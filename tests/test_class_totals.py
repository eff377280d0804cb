"""A class whose probabilities add up far from its count: the one temperature that calibrates every class together
can sharpen a rare class's probabilities to a quarter of its count; class weights inflate them on purpose; a
cohort with another class mix (prior shift) gets training's. The top-label ECE shows none of it (it bins
max(p, 1 - p)), so `train` and `evaluate` say it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli.calibration import class_totals, class_totals_off
from cli_helpers import run
from tables import make_table


def test_calibrated_probabilities_are_not_flagged():
    rng = np.random.default_rng(0)
    flagged = 0
    for _ in range(300):
        logits = rng.normal(size=(400, 3)) * 2 + [0.0, 0.0, -4.0]  # a rare third class
        P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        y = np.array([rng.choice(3, p=p) for p in P])  # drawn from the probabilities themselves
        flagged += bool(class_totals(P, y))
    assert flagged <= 3  # a 3-SD test and a factor of 2: about never by chance


def test_a_sharpened_rare_class_is_flagged_with_its_uncalibrated_total():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 3)) + [2.0, 2.0, -2.0]
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in P])
    assert class_totals_off(logits, y, "softmax", None) == []  # the networks' own probabilities match the counts
    off = class_totals_off(logits, y, "softmax", 0.4)  # sharpened: the rare class's probabilities shrink
    assert [t.index for t in off] == [2]
    t = off[0]
    assert t.observed == int((y == 2).sum()) and t.ratio < 0.5
    assert 0.5 < t.before / t.observed < 2  # before the temperature it was near its count
    np.testing.assert_allclose(t.expected, np.sum(np.exp(logits / 0.4)[:, 2] / np.exp(logits / 0.4).sum(axis=1)))


def test_binary_probabilities_count_both_classes():
    p = np.full(600, 0.35)
    y = (np.arange(600) < 25).astype(int)  # 4 % positives where the probabilities say 35 %
    off = class_totals(p, y)
    assert [t.index for t in off] == [1] and off[0].observed == 25 and off[0].expected == pytest.approx(210)
    assert class_totals(p.reshape(-1, 1), y) == off
    assert class_totals_off(np.zeros((10, 2)), np.zeros(10), "sigmoid", None) == []  # multi-label: no class mix


@pytest.fixture(scope="module")
def balanced_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("prior")
    make_table("binary", n_patients=150, per_patient=2, n_features=8, seed=1, signal=1.0).to_csv(d / "train.csv",
                                                                                                  index=False)
    new = make_table("binary", n_patients=300, per_patient=2, n_features=8, seed=2, signal=1.0)
    new.to_csv(d / "same_mix.csv", index=False)
    pd.concat([new[new.label == "ctrl"], new[new.label == "case"].iloc[:16]]).to_csv(d / "rare_here.csv", index=False)
    res = run(["train", str(d / "train.csv"), "--epochs", "30", "--hidden", "8", "-q", "-o", str(d / "m.mlp")])
    assert res.exit_code == 0, res.output
    return d


def test_evaluate_names_a_cohort_whose_class_mix_differs(balanced_model):
    d = balanced_model
    res = run(["evaluate", str(d / "m.mlp"), str(d / "rare_here.csv"), "--json"])
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if w.startswith("the probabilities of 'case' add up to")]
    assert len(said) == 1, res.stdout
    assert "where 16 of the 316 samples are of it" in said[0]
    assert "('case' 50.0% in training, 5.1% here)" in said[0] and "(prior shift)" in said[0]
    same = run(["evaluate", str(d / "m.mlp"), str(d / "same_mix.csv"), "--json"])
    assert not [w for w in json.loads(same.stdout)["warnings"] if "add up to" in w]


def test_train_says_class_weights_move_the_probabilities(tmp_path):
    table = make_table("binary", n_patients=200, per_patient=3, n_features=8, seed=5, signal=1.5)
    keep = (table["label"] == "ctrl") | (table["patient_id"].str[1:].astype(int) < 40)  # ~10 % cases
    table[keep].to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--pos-weight", "19", "--positive", "case", "--epochs", "30",
               "--hidden", "8", "--folds", "3", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "the held-out probabilities of 'case' add up to" in text, text
    assert "--pos-weight 19 weighs the classes in the loss, which moves their probabilities on purpose" in text
    plain = run(["train", str(tmp_path / "t.csv"), "--positive", "case", "--epochs", "30", "--hidden", "8",
                 "--folds", "3", "-o", str(tmp_path / "p.mlp")])
    assert "add up to" not in plain.output
