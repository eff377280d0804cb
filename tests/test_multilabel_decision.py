"""A multi-label model's decision rule: each label called at P >= 0.5 (argmax) or at P >= its training share of
positives (balanced), chosen by --decision auto on the held-out predictions, stored in the model (format 13) and
applied by predict, evaluate, cv and explain — a 4 % label with a clear signal was called for no sample at 0.5."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run
from model_files import rewrite_model
from mlpcli import model_io
from mlpcli.config import TrainOptions
from mlpcli.decision import Decision, choose, label_threshold_words, threshold_field
from mlpcli.errors import ModelFileError
from mlpcli.metrics import compute
from mlpcli.pipeline import train
from tables import make_table

LABELS = ["lab0", "lab1", "lab2", "rare"]
TARGET = ",".join(LABELS)


def rare_label_table(seed: int = 3, n_patients: int = 150) -> pd.DataFrame:
    """make_table's three labels and a fourth held by 4 % of the patients, whose samples carry a weak signal in
    f05 (ranked well, but rarely above P = 0.5)."""
    table = make_table("multilabel", n_patients=n_patients, per_patient=2, n_features=10, seed=seed)
    patients = table["patient_id"].str[1:].astype(int)
    table["rare"] = (patients % 25 == 3).astype(int)
    table.loc[table["rare"] == 1, "f05"] += 1.5
    return table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("ml_decision")
    table = rare_label_table()
    table.to_csv(d / "t.csv", index=False)
    rare_label_table(seed=11, n_patients=60).to_csv(d / "new.csv", index=False)
    for rule in ("balanced", "argmax"):
        res = run(["train", str(d / "t.csv"), "--target", TARGET, "--group", "patient_id", "--folds", "3",
                   "--epochs", "40", "--hidden", "", "--decision", rule, "-q", "-o", str(d / f"{rule}.mlp")])
        assert res.exit_code == 0, res.output
    return d


def test_balanced_thresholds_are_the_training_shares_of_positives(trained):
    model = model_io.load(trained / "balanced.mlp")
    table = pd.read_csv(trained / "t.csv")
    assert model.task == "multilabel" and model.decision.rule == "balanced" and model.format_version >= 13
    np.testing.assert_allclose(model.decision.shares, table[LABELS].mean().to_numpy())
    np.testing.assert_allclose(model.decider.threshold("multilabel"), table[LABELS].mean().to_numpy())
    argmax = model_io.load(trained / "argmax.mlp")
    assert argmax.decision.rule == "argmax" and argmax.decider.threshold("multilabel") == 0.5


def test_predict_calls_each_label_at_its_threshold_and_says_so(trained):
    out = trained / "pred.csv"
    res = run(["predict", str(trained / "balanced.mlp"), str(trained / "new.csv"), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc, pred = json.loads(res.stdout), pd.read_csv(out)
    shares = pd.read_csv(trained / "t.csv")[LABELS].mean()
    assert doc["decision"] == "balanced" and doc["threshold_source"] == "decision rule"
    assert doc["threshold"] == pytest.approx(shares.to_dict())
    for label in LABELS:
        assert ((pred[f"prob_{label}"] >= shares[label]).astype(int) == pred[f"pred_{label}"]).all()
    # the rare label is called where 0.5 would never call it
    assert 0 < doc["predicted_counts"]["rare"] and (pred["prob_rare"] < 0.5).all()
    assert doc["predicted_counts"]["rare"] == pred["pred_rare"].sum()
    # the table shows the thresholds, rarest first
    shown = run(["predict", str(trained / "balanced.mlp"), str(trained / "new.csv"), "-o", str(trained / "p2.csv")])
    assert "each label present when P >= its training share" in shown.output and "rare 0.04" in shown.output


def test_evaluate_scores_the_rules_labels_and_the_options_override_it(trained):
    model_path, new = str(trained / "balanced.mlp"), str(trained / "new.csv")
    doc = json.loads(run(["evaluate", model_path, new, "--json"]).stdout)
    shares = pd.read_csv(trained / "t.csv")[LABELS].mean()
    rows = {r["label"]: r for r in doc["metrics"]["per_label"]}
    assert doc["decision"] == "balanced" and doc["threshold"] == pytest.approx(shares.to_dict())
    for label in LABELS:
        assert rows[label]["threshold"] == pytest.approx(shares[label])
    assert rows["rare"]["called"] > 0 and rows["rare"]["recall"] > 0
    by_argmax = json.loads(run(["evaluate", model_path, new, "--decision", "argmax", "--json"]).stdout)
    assert by_argmax["decision"] == "argmax" and by_argmax["threshold"] == {label: 0.5 for label in LABELS}
    assert {r["label"]: r for r in by_argmax["metrics"]["per_label"]}["rare"]["called"] == 0
    # the probabilities do not change with the rule: nor do log loss, ECE and AUC
    for key in ("log_loss", "ece"):
        assert by_argmax["metrics"][key] == pytest.approx(doc["metrics"][key])
    fixed = json.loads(run(["evaluate", model_path, new, "--threshold", "0.2", "--json"]).stdout)
    assert fixed["decision"] == "threshold" and fixed["threshold"] == {label: 0.2 for label in LABELS}
    out = trained / "at_rule.csv"
    assert run(["predict", model_path, new, "-o", str(out), "-q"]).exit_code == 0
    probs = pd.read_csv(out)[[f"prob_{c}" for c in LABELS]].to_numpy()
    called = (probs >= 0.2).sum(axis=0)  # (6-digit probabilities: none sits within rounding of 0.2 here)
    assert [r["called"] for r in fixed["metrics"]["per_label"]] == called.tolist()
    res = run(["evaluate", model_path, new, "--threshold", "0.2", "--decision", "argmax"])
    assert_clean_error(res, "--decision and --threshold", "multi-label", code=2)


def test_auto_takes_the_rule_with_the_higher_held_out_balanced_accuracy():
    rng = np.random.default_rng(0)
    Y = (rng.random((400, 3)) < [0.5, 0.3, 0.04]).astype(int)
    # two labels ranked well, their positives' P spread over [0.3, 0.9]; the rare label's positives never reach 0.5
    P = np.where(Y == 1, [0.3, 0.3, 0.1] + rng.uniform(0, 1, Y.shape) * [0.6, 0.6, 0.2],
                 rng.uniform(0, 1, Y.shape) * [0.25, 0.25, 0.06])
    shares = Y.mean(axis=0)
    d = choose("multilabel", Y, P, shares, "auto")
    assert d.rule == "balanced" and d.held_out["balanced"] > d.held_out["argmax"]
    np.testing.assert_allclose(d.threshold("multilabel"), shares)
    # probabilities already centred on 0.5 for every label: argmax is kept (a tie keeps argmax)
    flat = choose("multilabel", Y, np.where(Y == 1, 0.9, 0.1), np.array([0.5, 0.5, 0.5]), "auto")
    assert flat.rule == "argmax"
    forced = choose("multilabel", Y, P, shares, "argmax")
    assert forced.rule == "argmax" and forced.chosen == "option"
    assert set(forced.held_out) == {"argmax", "balanced", "chosen"} and forced.held_out["chosen"] == forced.held_out["argmax"]
    assert choose("regression", Y, P, shares, "auto") is None


def test_a_label_no_training_sample_held_is_called_at_one_half():
    d = Decision("balanced", (0.2, 0.0, 1.0))
    np.testing.assert_array_equal(d.threshold("multilabel"), [0.2, 0.5, 0.5])
    P = np.array([[0.25, 0.4, 0.6], [0.1, 0.6, 0.4]])
    np.testing.assert_array_equal(d.classes("multilabel", P), [[1, 0, 1], [0, 1, 0]])


def test_shares_follow_the_losss_weights():
    table = rare_label_table()
    opts = dict(target=LABELS, group="patient_id", folds=1, epochs=3, hidden=[], seed=0)
    weighted = train(table, TrainOptions(**opts, class_weight="balanced", decision="balanced")).model
    # balanced class weights make every label's weighted share one half: the same calls as argmax
    np.testing.assert_allclose(weighted.decider.threshold("multilabel"), 0.5)
    assert "calls every label at P >= 0.5" in weighted.decision.describe("multilabel", LABELS, "validation")
    positive = train(table, TrainOptions(**opts, pos_weight=3.0, decision="balanced")).model
    raw = train(table, TrainOptions(**opts, decision="balanced")).model
    s = np.asarray(raw.decision.shares)
    np.testing.assert_allclose(positive.decision.shares, 3 * s / (3 * s + 1 - s))


def test_ece_and_log_loss_do_not_depend_on_the_threshold():
    rng = np.random.default_rng(1)
    Y = (rng.random((300, 3)) < 0.3).astype(int)
    P = np.clip(0.4 * Y + rng.uniform(0, 0.5, Y.shape), 0, 1)
    at_half = compute("multilabel", Y, P, ["a", "b", "c"], 0.5)
    per_label = compute("multilabel", Y, P, ["a", "b", "c"], np.array([0.1, 0.3, 0.7]))
    assert per_label["ece"] == pytest.approx(at_half["ece"]) and per_label["log_loss"] == at_half["log_loss"]
    assert per_label["threshold"] == {"a": 0.1, "b": 0.3, "c": 0.7}
    assert at_half["threshold"] == {"a": 0.5, "b": 0.5, "c": 0.5}  # one type whatever the thresholds
    assert per_label["per_label"][0]["called"] == int((P[:, 0] >= 0.1).sum())
    assert per_label["balanced_accuracy"] != at_half["balanced_accuracy"]


def test_words_and_json_of_per_label_thresholds():
    assert threshold_field(0.5, ["a"]) == 0.5
    assert threshold_field(np.array([0.2, 0.7]), ["a", "b"]) == {"a": 0.2, "b": 0.7}
    words = label_threshold_words(np.array([0.7, 0.02, 0.3]), ["a", "rare", "b"], "balanced")
    assert words.endswith("(the balanced decision rule: rare 0.02, b 0.3, a 0.7)")
    assert label_threshold_words(0.2, ["a"], "balanced", by_rule=False) == "each label present when P >= 0.2 (--threshold)"


def test_a_multilabel_decision_in_a_format_12_file_is_refused(trained, tmp_path):
    def as_12(meta):
        meta["format_version"] = 12

    bad = rewrite_model(trained / "balanced.mlp", tmp_path / "old.mlp", as_12, lambda a: a)
    with pytest.raises(ModelFileError, match="'temperature' is a list, which only a multi-label model of format 13"):
        model_io.load(bad)

    def as_12_one_temperature(meta):
        meta["format_version"], meta["temperature"] = 12, 1.0

    bad = rewrite_model(trained / "balanced.mlp", tmp_path / "old1.mlp", as_12_one_temperature, lambda a: a)
    with pytest.raises(ModelFileError, match="decision.*format version 13"):
        model_io.load(bad)

    def older(meta):  # what mlpcli wrote before: no rule and one temperature for a multi-label model
        meta["format_version"], meta["temperature"] = 12, 1.0
        meta.pop("decision")

    old = model_io.load(rewrite_model(trained / "balanced.mlp", tmp_path / "older.mlp", older, lambda a: a))
    assert old.decision is None and old.decider.threshold("multilabel") == 0.5
    res = run(["evaluate", str(tmp_path / "older.mlp"), str(trained / "new.csv"), "--decision", "balanced"])
    assert_clean_error(res, "--decision balanced", "train it again", code=2)


def test_cv_labels_each_fold_by_its_own_rule(trained):
    oof = trained / "cv_oof.csv"
    res = run(["cv", str(trained / "t.csv"), "--target", TARGET, "--group", "patient_id", "--folds", "3",
               "--member-folds", "2", "--epochs", "20", "--hidden", "", "--decision", "balanced", "--json",
               "--oof", str(oof)])
    assert res.exit_code == 0, res.output
    doc, calls = json.loads(res.stdout), pd.read_csv(oof)
    assert doc["folds"] == 3
    for k, fold in enumerate(doc["per_fold"], start=1):
        assert fold["decision"] == "balanced"
        thresholds = fold["metrics"]["threshold"]
        assert set(thresholds) == set(LABELS) and thresholds["lab1"] < 0.5  # a label of 40 % at its share
        rows = calls[calls["fold"] == k]
        for label in LABELS:  # the --oof file's calls are the fold model's
            assert ((rows[f"prob_{label}"] >= thresholds[label]).astype(int) == rows[f"pred_{label}"]).all()


def test_a_label_without_signal_or_with_few_positives_stays_at_one_half():
    rng = np.random.default_rng(2)
    n = 600
    Y = np.column_stack([rng.random(n) < 0.3, rng.random(n) < 0.05, np.zeros(n, dtype=bool)]).astype(int)
    Y[:3, 2] = 1  # three positives: too few to choose a rule for
    P = np.column_stack([np.clip(0.25 * Y[:, 0] + rng.uniform(0.1, 0.45, n), 0, 1),  # ranked, below 0.5
                         rng.uniform(0, 0.1, n),  # no signal
                         rng.uniform(0, 0.02, n)])
    d = choose("multilabel", Y, P, Y.mean(axis=0), "auto")
    assert d.labels == (True, False, False) and d.rule == "balanced"
    t = d.threshold("multilabel")
    assert t[0] == pytest.approx(Y[:, 0].mean()) and t[1] == 0.5 and t[2] == 0.5
    # forced, the balanced rule still leaves the label of three positives at 0.5 (its share would call 30 % of samples)
    forced = choose("multilabel", Y, P, Y.mean(axis=0), "balanced")
    assert forced.labels == (True, True, False) and forced.threshold("multilabel")[2] == 0.5
    words = d.describe("multilabel", ["a", "noise", "three"], "out-of-fold")
    assert words.startswith("balanced for 1 of 3 labels") and "at P >= 0.5: noise, three" in words
    assert Decision.from_dict(d.to_dict()) == d


def test_a_weighted_labels_threshold_moves_with_its_temperature():
    table = rare_label_table()
    opts = dict(target=LABELS, group="patient_id", folds=3, epochs=30, hidden=[], seed=0, decision="balanced")
    model = train(table, TrainOptions(**opts, pos_weight=3.0)).model
    s = table[LABELS].mean().to_numpy()
    weighted = 3 * s / (3 * s + 1 - s)
    T = np.asarray(model.temperature)
    moved = 1 / (1 + np.exp(-(np.log(weighted) - np.log1p(-weighted)) / T))
    np.testing.assert_allclose(model.decision.shares, moved, rtol=1e-9)


def test_a_label_the_balanced_rule_left_at_one_half_is_named_apart_with_why(tmp_path):
    """evaluate's title read "(the balanced decision rule: B 0.38, C 0.5, A 0.52)": C's 0.5 looked like its share,
    where the rule had left it there for want of 10 held-out positives (as `train`'s summary said)."""
    words = label_threshold_words(np.array([0.52, 0.38, 0.5]), ["A", "B", "C"], "balanced")
    assert "(the balanced decision rule: B 0.38, A 0.52); C at P >= 0.5: " in words, words
    assert "fewer than 10 of its positives or negatives" in words and "C 0.5" not in words, words
    assert "fewer than 10" in label_threshold_words(np.array([0.5, 0.5]), ["A", "B"], "balanced")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 6))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(6)])
    frame["A"], frame["B"], frame["C"] = (X[:, 0] > 0.1).astype(int), (X[:, 1] > 0.3).astype(int), (X[:, 2] > 1.75)
    frame["C"] = frame["C"].astype(int)  # 6 positives: fewer than 10 held out
    frame.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--target", "A,B,C", "--no-group", "--hidden", "8", "--epochs", "20",
               "--folds", "2", "--decision", "balanced", "-q", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    shown = run(["evaluate", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv")])
    assert shown.exit_code == 0 and "C at P >= 0.5: the rule leaves a label there" in shown.output, shown.output
