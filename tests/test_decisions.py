"""One rule decides the class from the probabilities, wherever a label is written or scored
(metrics.predicted_class): a binary model's positive class at P >= threshold, a multiclass model's most
probable class."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from mlpcli import metrics
from mlpcli.estimators import MLPClassifier


def test_binary_positive_at_the_threshold_itself_in_every_layout():
    p = np.array([0.2, 0.5, 0.7])
    expected = [0, 1, 1]
    assert metrics.predicted_class("binary", p).tolist() == expected  # (n,)
    assert metrics.predicted_class("binary", p[:, None]).tolist() == expected  # (n, 1) sigmoid
    assert metrics.predicted_class("binary", np.column_stack([1 - p, p])).tolist() == expected  # (n, 2)
    assert metrics.predicted_class("binary", p, threshold=0.71).tolist() == [0, 0, 0]
    assert metrics.predicted_class("binary", np.zeros((0, 1))).shape == (0,)


def test_multiclass_most_probable_class():
    P = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    assert metrics.predicted_class("multiclass", P).tolist() == [1, 0]


def test_estimator_labels_as_predict_decides_at_an_even_probability():
    X, y = make_blobs(n_samples=60, centers=2, random_state=0)
    est = MLPClassifier(hidden=(), epochs=2, random_state=0).fit(X, y)
    for W in est.network_.parameters().values():  # every logit 0: P(positive) exactly 0.5
        W[...] = 0.0
    P = est.predict_proba(X)
    assert np.all(P[:, 1] == 0.5)
    # the positive class, as `mlpcli predict` and the metrics give it (an argmax of [0.5, 0.5] gave class 0)
    assert (est.predict(X) == est.classes_[1]).all()


# ── the decision rule (mlpcli.decision): argmax or balanced, chosen at training, stored in the model ────────────

import json  # noqa: E402

import pandas as pd  # noqa: E402

from mlpcli import model_io  # noqa: E402
from mlpcli.decision import Decision, choose  # noqa: E402
from mlpcli.predict.evaluation import evaluate  # noqa: E402

from cli_helpers import assert_clean_error, run  # noqa: E402
from model_files import rewrite_model  # noqa: E402
from tables import make_table  # noqa: E402


def test_balanced_calls_a_rare_class_when_it_is_likely_for_its_share():
    P = np.array([[0.5, 0.4, 0.1], [0.9, 0.05, 0.05]])
    rule = Decision("balanced", shares=(0.8, 0.1, 0.1))
    assert rule.classes("multiclass", P).tolist() == [1, 0]  # 0.4 / 0.1 beats 0.5 / 0.8
    assert Decision("argmax", shares=(0.8, 0.1, 0.1)).classes("multiclass", P).tolist() == [0, 0]
    binary = Decision("balanced", shares=(0.7, 0.3))
    assert binary.threshold("binary") == 0.3  # P(pos) / 0.3 >= (1 - P(pos)) / 0.7  <=>  P(pos) >= 0.3
    assert binary.classes("binary", np.array([[0.29], [0.3]])).tolist() == [0, 1]
    assert binary.classes("binary", np.array([[0.29], [0.3]]), threshold=0.5).tolist() == [0, 0]


def test_auto_takes_balanced_only_when_it_scores_higher_on_the_held_out_rows():
    shares = np.array([0.8, 0.2])
    y = np.array([0, 0, 0, 0, 1])
    rare_found = np.array([[0.1], [0.1], [0.1], [0.1], [0.3]])  # the rare sample at 0.3: argmax misses it
    d = choose("binary", y, rare_found, shares, "auto")
    assert d.rule == "balanced" and d.chosen == "auto"
    assert d.held_out == {"argmax": 0.5, "balanced": 1.0}
    no_gain = np.array([[0.1], [0.1], [0.1], [0.1], [0.9]])
    assert choose("binary", y, no_gain, shares, "auto").rule == "argmax"  # a tie keeps the most probable class
    assert choose("multiclass", y, np.column_stack([1 - rare_found, rare_found]), shares, "argmax").rule == "argmax"
    assert choose("regression", y, rare_found, shares, "auto") is None


def _imbalanced(tmp_path, n_patients=60, seed=0, name="rare.csv"):
    """3 classes in 70 / 20 / 10 % of 60 patients (2 samples each), a weak signal: argmax under-calls the rare."""
    rng = np.random.default_rng(seed)
    cls = rng.choice(3, size=n_patients, p=[0.7, 0.2, 0.1])
    cls[:3] = [0, 1, 2]
    cls[3:9] = [1, 1, 2, 2, 2, 2]
    cls = np.repeat(cls, 2)
    X = rng.normal(size=(len(cls), 8))
    X[np.arange(len(cls)), cls] += 1.0
    df = pd.DataFrame(X, columns=[f"g{i}" for i in range(8)])
    df.insert(0, "label", np.array(["common", "middle", "rare"])[cls])
    df.insert(0, "patient_id", [f"P{i // 2:03d}" for i in range(len(cls))])
    df.insert(0, "sample_id", [f"S{i:03d}" for i in range(len(cls))])
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path), df


@pytest.fixture(scope="module")
def balanced_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("decision")
    table, df = _imbalanced(tmp)
    model, oof = tmp / "m.mlp", tmp / "oof.csv"
    res = run(["train", table, "-o", str(model), "--epochs", "8", "--hidden", "", "--decision", "balanced",
               "--oof", str(oof), "--json", "-q"])
    assert res.exit_code == 0, res.output
    return {"table": table, "df": df, "model": str(model), "oof": str(oof), "doc": json.loads(res.stdout), "tmp": tmp}


def test_a_balanced_model_labels_by_its_rule_in_predict_evaluate_and_the_oof_file(balanced_model, tmp_path):
    b = balanced_model
    model = model_io.load(b["model"])
    shares = np.array([0.0, 0.0, 0.0])
    for k, c in enumerate(model.classes):
        shares[k] = np.mean(b["df"]["label"] == c)
    assert model.decision.rule == "balanced" and np.allclose(model.decision.shares, shares)

    out = tmp_path / "pred.csv"
    assert run(["predict", b["model"], b["table"], "-o", str(out), "-q"]).exit_code == 0
    pred = pd.read_csv(out)
    P = pred[[f"prob_{c}" for c in model.classes]].to_numpy()
    by_rule = np.asarray(model.classes)[(P / shares).argmax(axis=1)]
    assert (pred["pred_label"].to_numpy() == by_rule).all()
    argmax_out = tmp_path / "argmax.csv"
    assert run(["predict", b["model"], b["table"], "--decision", "argmax", "-o", str(argmax_out), "-q"]).exit_code == 0
    by_argmax = pd.read_csv(argmax_out)["pred_label"].to_numpy()
    assert (by_argmax == np.asarray(model.classes)[P.argmax(axis=1)]).all()
    assert (by_argmax != by_rule).any()  # the rule made a difference on this table: the test can tell them apart

    # evaluate counts the same labels: its confusion matrix is that of the predicted labels
    result = evaluate(model, b["table"])
    truth = b["df"]["label"].map({c: k for k, c in enumerate(model.classes)}).to_numpy()
    called = pd.Series(by_rule).map({c: k for k, c in enumerate(model.classes)}).to_numpy()
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (truth, called), 1)
    assert result.metrics["confusion_matrix"] == confusion.tolist()

    # the out-of-fold file is labelled by the rule, and train's reported figure is the file's balanced accuracy
    oof = pd.read_csv(b["oof"])
    Po = oof[[f"prob_{c}" for c in model.classes]].to_numpy()
    assert (oof["pred_label"].to_numpy() == np.asarray(model.classes)[(Po / shares).argmax(axis=1)]).all()
    from sklearn.metrics import balanced_accuracy_score

    assert b["doc"]["validation_metrics"]["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(oof["label"], oof["pred_label"]))
    assert b["doc"]["network"]["decision"]["rule"] == "balanced"
    info = run(["info", b["model"]])
    assert info.exit_code == 0 and "balanced (the most probable class relative to its training share)" in info.output


def test_a_binary_balanced_model_thresholds_at_the_positive_share(tmp_path):
    df = make_table("binary", n_patients=30, seed=4)
    df = df[~((df["label"] == "case") & (df.index % 3 != 0))]  # cases thinned to about a quarter of the rows
    table, model = tmp_path / "b.csv", tmp_path / "b.mlp"
    df.to_csv(table, index=False)
    assert run(["train", str(table), "-o", str(model), "--epochs", "3", "--folds", "1", "--decision", "balanced",
                "--positive", "case", "-q"]).exit_code == 0
    share = float(np.mean(df["label"] == "case"))
    res = run(["predict", str(model), str(table), "--json", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["threshold"] == pytest.approx(share) and summary["decision"] == "balanced"
    assert summary["threshold_source"] == "decision rule"
    shown = run(["predict", str(model), str(table), "-o", str(tmp_path / "p2.csv")])
    assert "its share of the training samples: the balanced decision rule" in " ".join(shown.output.split())
    p = pd.read_csv(tmp_path / "p.csv")
    assert ((p["prob_case"] >= share) == (p["pred_label"] == "case")).all()
    # an explicit threshold and a rule both deciding: a usage error, no output
    both = run(["predict", str(model), str(table), "--decision", "argmax", "--threshold", "0.4", "-o",
                str(tmp_path / "q.csv")])
    assert_clean_error(both, "--decision", "--threshold", code=2)
    assert not (tmp_path / "q.csv").exists()


def test_decision_errors_name_the_option(balanced_model, tmp_path):
    b = balanced_model
    reg = make_table("regression", n_patients=10, seed=1)
    reg.to_csv(tmp_path / "r.csv", index=False)
    res = run(["train", str(tmp_path / "r.csv"), "-o", str(tmp_path / "r.mlp"), "--decision",
               "balanced", "--epochs", "2"])
    assert_clean_error(res, "--decision balanced", "regression", code=2)
    assert not (tmp_path / "r.mlp").exists()
    # a file written before the rule was stored (format 8) decides by argmax, and cannot divide by shares it lacks
    old = rewrite_model(b["model"], tmp_path / "old.mlp", lambda m: m.update(format_version=8), lambda a: a)
    assert model_io.load(old).decision is None
    res = run(["predict", old, b["table"], "--decision", "balanced", "-o", str(tmp_path / "o.csv")])
    assert_clean_error(res, "--decision balanced", "train it again", code=2)
    assert run(["predict", old, b["table"], "-o", str(tmp_path / "o.csv"), "-q"]).exit_code == 0
    # a hostile file: a rule no mlpcli writes, shares of the wrong length
    for change, needle in ((lambda m: m["decision"].update(rule="random"), "decision.rule"),
                           (lambda m: m["decision"].update(shares=[0.5, 0.5]), "decision.shares")):
        bad = rewrite_model(b["model"], tmp_path / "bad.mlp", change, lambda a: a)
        assert_clean_error(run(["predict", bad, b["table"], "-o", str(tmp_path / "x.csv")]), needle, code=1)
        assert not (tmp_path / "x.csv").exists()


def test_cv_scores_each_fold_by_its_model_rule(balanced_model, tmp_path):
    b = balanced_model
    oof = tmp_path / "cv_oof.csv"
    res = run(["cv", b["table"], "--folds", "3", "--member-folds", "1", "--epochs", "5", "--hidden", "",
               "--decision", "balanced", "--oof", str(oof), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    frame = pd.read_csv(oof)
    from sklearn.metrics import balanced_accuracy_score

    assert doc["pooled"]["value"] == pytest.approx(balanced_accuracy_score(frame["label"], frame["pred_label"]))


def test_class_weights_are_not_corrected_twice(tmp_path):
    """With --class-weight balanced the network already learned equal class shares: the balanced rule divides by
    those (equal), so it labels as argmax does, not twice towards the rare class."""
    table, df = _imbalanced(tmp_path)
    model_path = tmp_path / "w.mlp"
    res = run(["train", table, "-o", str(model_path), "--epochs", "4", "--hidden", "", "--folds", "1",
               "--class-weight", "balanced", "--decision", "balanced", "-q"])
    assert res.exit_code == 0, res.output
    model = model_io.load(model_path)
    assert np.allclose(model.decision.shares, 1 / 3)
    P = model.predict_output(df.filter(like="g").to_numpy())
    assert (model.predict_classes(P) == P.argmax(axis=1)).all()


def test_tune_can_vary_the_decision_rule(balanced_model):
    res = run(["tune", balanced_model["table"], "--grid", "decision=argmax,balanced", "--folds", "2",
               "--epochs", "2", "--hidden", "", "--json"])
    assert res.exit_code == 0, res.output
    settings = [p["setting"] for p in json.loads(res.stdout)["points"]]
    assert {s["decision"] for s in settings} == {"argmax", "balanced"}


def test_min_confidence_under_the_balanced_rule_says_why_rare_calls_abstain(balanced_model, tmp_path):
    b = balanced_model
    res = run(["predict", b["model"], b["table"], "--min-confidence", "0.6", "-o", str(tmp_path / "a.csv")])
    assert res.exit_code == 0, res.output
    assert "a label of the balanced decision rule is often a rarer class" in " ".join(res.output.split())
    res = run(["predict", b["model"], b["table"], "--min-confidence", "0.6", "--decision", "argmax",
               "-o", str(tmp_path / "b.csv")])
    assert res.exit_code == 0 and "balanced decision rule is often" not in " ".join(res.output.split())
