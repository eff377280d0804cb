"""`--positive LABEL`: which class of a binary target the positive-class metrics, --threshold and
--pos-weight describe (by default the class that sorts last: 'ctrl' of case / ctrl)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.metrics import precision_score, recall_score

from mlpcli import model_io
from cli_helpers import assert_clean_error, run
from tables import make_table, write_table

FAST = ["--epochs", "6", "--folds", "2", "--hidden", "", "--seed", "0", "-q"]


def _train(tmp_path, name, *args):
    data = write_table(tmp_path, task="binary", n_patients=40)
    out = tmp_path / name
    res = run(["train", data, "-o", str(out), "--json", *FAST, *args])
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_positive_class_is_chosen_stored_and_reported_everywhere(tmp_path):
    default, doc = _train(tmp_path, "default.mlp")
    assert doc["classes"] == ["case", "ctrl"] and doc["validation_metrics"]["positive_class"] == "ctrl"
    chosen, doc = _train(tmp_path, "case.mlp", "--positive", "case")
    assert doc["classes"] == ["ctrl", "case"] and doc["validation_metrics"]["positive_class"] == "case"
    assert model_io.load(chosen).config["positive"] == "case"

    test = tmp_path / "test.csv"
    make_table("binary", n_patients=20, seed=5).to_csv(test, index=False)
    ev = json.loads(run(["evaluate", str(chosen), str(test), "--json"]).stdout)
    pred_path = tmp_path / "pred.csv"
    res = run(["predict", str(chosen), str(test), "-o", str(pred_path), "--json"])
    assert json.loads(res.stdout)["positive_class"] == "case"
    truth = pd.read_csv(test)["label"]
    pred = pd.read_csv(pred_path)["pred_label"]
    metrics = ev["metrics"]
    assert metrics["positive_class"] == "case"
    # precision and recall describe 'case', not the class that sorts last
    assert metrics["recall"] == recall_score(truth, pred, pos_label="case")
    assert metrics["precision"] == precision_score(truth, pred, pos_label="case")
    # --threshold acts on the positive class's probability
    strict = tmp_path / "pred_strict.csv"
    assert run(["predict", str(chosen), str(test), "-o", str(strict), "--threshold", "0.9", "-q"]).exit_code == 0
    probs, labels = pd.read_csv(strict)["prob_case"], pd.read_csv(strict)["pred_label"]
    assert ((probs >= 0.9) == (labels == "case")).all()

    assert "positive class ctrl" in run(["train", str(tmp_path / "data.csv"), "-o", str(tmp_path / "x.mlp"),
                                         *FAST[:-1]]).stdout
    assert "positive class" in run(["info", str(chosen)]).stdout


def test_positive_from_a_config_file(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('positive = "case"\n')
    _, doc = _train(tmp_path, "m.mlp", "--config", str(config))
    assert doc["validation_metrics"]["positive_class"] == "case"


def test_positive_errors_name_the_option(tmp_path):
    data = write_table(tmp_path, task="binary", n_patients=20)
    assert_clean_error(run(["train", data, "--positive", "tumour", *FAST]), "--positive", "'tumour'", "case", "ctrl")
    multi = write_table(tmp_path, "multi.csv", n_patients=20)
    assert_clean_error(run(["train", multi, "--positive", "A", *FAST]), "--positive", "multiclass", code=2)
    assert not list(tmp_path.glob("*.mlp"))


def test_cv_scores_the_chosen_positive_class(tmp_path):
    data = write_table(tmp_path, task="binary", n_patients=20)
    res = run(["cv", data, "--positive", "case", "--folds", "2", "--epochs", "3", "--hidden", "", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["classes"] == ["ctrl", "case"]
    assert "positive class case" in run(["cv", data, "--positive", "case", "--folds", "2", "--epochs", "3",
                                         "--hidden", ""]).stdout


def test_a_class_named_none_can_be_the_positive_class(tmp_path):
    """--positive None was read as "not given" (the option's none words), so the class 'None' could never be positive."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    frame = pd.DataFrame(X, columns=["g0", "g1", "g2"]).assign(label=np.where(X[:, 0] > 0, "None", "Response"))
    frame.to_csv(tmp_path / "r.csv", index=False)
    res = run(["train", str(tmp_path / "r.csv"), "--positive", "None", "--no-group", "--epochs", "1", "--folds", "1",
               "-o", str(tmp_path / "r.mlp"), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(run(["info", str(tmp_path / "r.mlp"), "--json"]).output)
    assert info["positive_class"] == "None"


def test_a_default_positive_class_that_is_the_common_one_is_said(tmp_path):
    """36 cases among 600 case/control samples made 'control' positive: the headline precision, F1 and AP
    described the controls with no word of it."""
    table = make_table("binary", n_patients=100, per_patient=2, n_features=6, seed=2)
    table["label"] = np.where(table["label"] == "case", "case", "control")
    rare = table[(table["label"] == "control") | (table["patient_id"].str[1:].astype(int) < 20)]
    rare.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp"), "--json", *FAST])
    notes = json.loads(res.stdout)["notes"]
    said = [n for n in notes if n.startswith("positive class 'control' (it sorts last) is the common one")]
    share = np.mean(rare["label"] == "control")
    assert len(said) == 1 and f"({share:.0%} of the samples)" in said[0], notes
    assert "--positive case to make the rare class 'case' positive" in said[0]
    chosen = run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "c.mlp"), "--json", *FAST,
                  "--positive", "control"])  # chosen, not defaulted: nothing to say
    assert not [n for n in json.loads(chosen.stdout)["notes"] if "is the common one" in n]
    balanced = write_table(tmp_path, task="binary", n_patients=40)
    doc = json.loads(run(["train", balanced, "-o", str(tmp_path / "b.mlp"), "--json", *FAST]).stdout)
    assert not [n for n in doc["notes"] if "is the common one" in n]
