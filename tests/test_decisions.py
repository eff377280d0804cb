"""One rule decides the class from the probabilities, wherever a label is written or scored
(metrics.predicted_class): a binary model's positive class at P >= threshold, a multiclass model's most
probable class."""

from dataclasses import replace

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import balanced_accuracy_score

from mlpcli import data, metrics
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError
from mlpcli.estimators import MLPClassifier
from mlpcli.model_selection import cross_validation as cv, tuning
from mlpcli.model_selection.baseline import fit_linear_baseline
from mlpcli.model_selection.learning_curve import learning_curve
from mlpcli.model_selection.tuning import PointResult
from mlpcli.model_summary import decision_words


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


def test_a_pos_weight_models_share_is_said_as_the_weight_counts_it(tmp_path):
    """Under --pos-weight the balanced rule divides by the positive class's weighted share (a 15 % class weighted 5
    has 0.47): the summaries called it "its share of the training samples"."""
    df = make_table("binary", n_patients=30, seed=4)
    df = df[~((df["label"] == "case") & (df.index % 3 != 0))]
    table, model = tmp_path / "b.csv", tmp_path / "b.mlp"
    df.to_csv(table, index=False)
    assert run(["train", str(table), "-o", str(model), "--epochs", "3", "--folds", "1", "--decision", "balanced",
                "--positive", "case", "--pos-weight", "2", "-q"]).exit_code == 0
    share = float(np.mean(df["label"] == "case"))
    info = json.loads(run(["info", str(model), "--json"]).stdout)["network"]["decision_words"]
    assert "its share of the training samples as --pos-weight weighs them, not 0.5" in info
    res = run(["predict", str(model), str(table), "--json", "-o", str(tmp_path / "p.csv")])
    summary = json.loads(res.stdout)
    assert summary["weighted_by"] == "--pos-weight" and summary["threshold"] > share + 0.1
    shown = " ".join(run(["predict", str(model), str(table), "-o", str(tmp_path / "p2.csv")]).output.split())
    assert "its share of the training samples as --pos-weight weighs them: the balanced decision rule" in shown


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


# ── the words (mlpcli.decision.Decision.describe) ─────────────────────────────────────────────────────────────

def test_binary_balanced_words_name_the_threshold_and_that_the_label_may_be_the_less_probable_class():
    d = Decision("balanced", shares=(0.86, 0.14), chosen="auto", held_out={"argmax": 0.627, "balanced": 0.753})
    words = d.describe("binary", ["common", "rare"], "out-of-fold")
    assert "'rare' when P(rare) >= 0.14" in words and "not 0.5" in words
    assert "called 'rare' while 'common' is more probable" in words
    assert "auto chose it on the networks' own out-of-fold predictions, balanced accuracy 0.753 against 0.627 by argmax" in words
    argmax = Decision("argmax", shares=(0.86, 0.14), chosen="auto", held_out={"argmax": 0.7, "balanced": 0.6})
    assert "'rare' when P(rare) >= 0.5" in argmax.describe("binary", ["common", "rare"], "validation")


def test_multiclass_balanced_words_give_the_shares_rarest_first():
    d = Decision("balanced", shares=(0.74, 0.2, 0.06), chosen="option")
    words = d.describe("multiclass", ["A", "B", "C"])
    assert "rarest first: C 6 %, B 20 %, A 74 %" in words and "rarer class than its most probable one" in words
    many = Decision("balanced", shares=tuple([0.1] * 10), chosen="option").describe("multiclass", list("ABCDEFGHIJ"))
    assert "and 5 more" in many  # 10 cell types: the row stays readable


def test_a_forced_rule_keeps_both_figures_and_says_when_auto_would_have_taken_the_other():
    y = np.array([0, 0, 0, 0, 1])
    rare_found = np.array([[0.1], [0.1], [0.1], [0.1], [0.3]])
    forced = choose("binary", y, rare_found, np.array([0.8, 0.2]), "argmax")
    assert forced.rule == "argmax" and forced.chosen == "option"
    assert forced.held_out == {"argmax": 0.5, "balanced": 1.0}  # was {}: nothing to compare the forced rule with
    words = forced.describe("binary", ["ctrl", "case"], "out-of-fold")
    assert "(--decision argmax; out-of-fold balanced accuracy 0.500, 1.000 by balanced, which --decision auto " \
           "would have taken)" in words
    kept = choose("binary", y, np.array([[0.1], [0.1], [0.1], [0.1], [0.9]]), np.array([0.8, 0.2]), "argmax")
    assert "would have taken" not in kept.describe("binary", ["ctrl", "case"])


@pytest.mark.parametrize("held_out", [{"argmax": 0.5}, {"argmax": "x", "balanced": 0.7}, {"other": 1.0}],
                         ids=["one-rule", "not-a-number", "unknown-key"])
def test_incomplete_held_out_figures_leave_the_comparison_out_instead_of_failing(held_out):
    d = Decision("balanced", shares=(0.7, 0.3), chosen="auto", held_out=held_out)
    words = d.describe("binary", ["ctrl", "case"])  # was a KeyError: `info` of such a file died with a traceback
    assert words.startswith("balanced (") and "auto chose" not in words


# ── end to end: train, info, evaluate, tune ───────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def rare_binary(tmp_path_factory):
    """A binary table with 'case' in about a quarter of the rows, a model deciding by the balanced rule."""
    tmp = tmp_path_factory.mktemp("review21")
    df = make_table("binary", n_patients=30, seed=4)
    df = df[~((df["label"] == "case") & (df.index % 3 != 0))]
    table, model = tmp / "b.csv", tmp / "b.mlp"
    df.to_csv(table, index=False)
    res = run(["train", str(table), "-o", str(model), "--epochs", "3", "--folds", "1",  # --hidden auto: 2 candidates
               "--decision", "balanced", "--positive", "case", "--json", "-q"])
    assert res.exit_code == 0, res.output
    share = float(np.mean(df["label"] == "case"))
    return {"table": str(table), "model": str(model), "doc": json.loads(res.stdout), "share": share, "tmp": tmp}


def test_train_and_info_say_what_the_balanced_rule_does_to_this_models_classes(rare_binary):
    b = rare_binary
    net = b["doc"]["network"]
    assert net["decision"]["rule"] == "balanced" and set(net["decision"]["held_out"]) == {"argmax", "balanced"}
    assert f"'case' when P(case) >= {b['share']:.3g}" in net["decision_words"]
    assert "validation balanced accuracy" in net["decision_words"]  # one network: the validation rows, not "held-out"
    info = run(["info", b["model"], "--json"])
    assert info.exit_code == 0 and json.loads(info.stdout)["network"]["decision_words"] == net["decision_words"]
    # the candidates' scores are of their most probable class: said, beside the rule's higher figure
    table = run(["info", b["model"]]).stdout
    row = next(line for line in table.splitlines() if "architecture choice" in line)
    assert "scored by the most probable class, before the decision rule" in row


def test_an_old_file_says_why_it_decides_by_argmax(rare_binary, tmp_path):
    old = rewrite_model(rare_binary["model"], tmp_path / "old.mlp",
                        lambda m: (m.update(format_version=8), m.pop("decision", None)), lambda a: a)
    words = decision_words(model_io.load(old))
    assert words.startswith("argmax") and "predates the stored decision rule" in words
    assert "--decision" not in words  # it was never given: the old file had no rule at all


def test_info_of_a_file_with_partial_held_out_figures_has_no_traceback(rare_binary, tmp_path):
    bad = rewrite_model(rare_binary["model"], tmp_path / "partial.mlp",
                        lambda m: m["decision"].update(chosen="auto", held_out={"argmax": 0.5}), lambda a: a)
    res = run(["info", bad])
    assert res.exit_code == 0, res.output
    assert "balanced (the most probable class relative to its training share)" in res.output


def _title(res) -> str:
    return next(line for line in res.stdout.splitlines() if line.startswith("Metrics on"))


def test_evaluate_names_the_rule_that_labelled_the_samples(rare_binary):
    b = rare_binary
    res = run(["evaluate", b["model"], b["table"], "-q"])
    assert res.exit_code == 0, res.output
    assert "the positive class's training share (the balanced decision rule)" in _title(res)
    doc = json.loads(run(["evaluate", b["model"], b["table"], "--json", "-q"]).stdout)
    assert doc["decision"] == "balanced" and doc["threshold"] == pytest.approx(b["share"])
    res = run(["evaluate", b["model"], b["table"], "--decision", "argmax", "-q"])
    assert "balanced" not in _title(res) and "threshold 0.5" in _title(res)
    doc = json.loads(run(["evaluate", b["model"], b["table"], "--decision", "argmax", "--json", "-q"]).stdout)
    assert doc["decision"] == "argmax"
    # --threshold decides instead of the rule: the title no longer calls it the training share
    res = run(["evaluate", b["model"], b["table"], "--threshold", "0.3", "-q"])
    assert "training share" not in _title(res)


def test_evaluate_of_a_multiclass_balanced_model_says_so_in_its_title(tmp_path):
    df = make_table("multiclass", n_patients=24, seed=2)
    table, model = tmp_path / "m.csv", tmp_path / "m.mlp"
    df.to_csv(table, index=False)
    assert run(["train", str(table), "-o", str(model), "--epochs", "3", "--folds", "1", "--hidden", "",
                "--decision", "balanced", "-q"]).exit_code == 0
    res = run(["evaluate", str(model), str(table), "-q"])
    assert res.exit_code == 0, res.output
    assert "labelled by the balanced decision rule" in _title(res)
    assert json.loads(run(["evaluate", str(model), str(table), "--json", "-q"]).stdout)["decision"] == "balanced"


def test_tune_refit_reports_the_rule_of_the_model_it_writes(rare_binary):
    b = rare_binary
    out = b["tmp"] / "tuned.mlp"
    args = ["tune", b["table"], "--grid", "l2=0", "--folds", "2", "--epochs", "2", "--hidden", "", "--refit",
            "--member-folds", "1", "--decision", "balanced", "--positive", "case", "-o", str(out)]
    res = run(args + ["-q"])
    assert res.exit_code == 0, res.output
    assert "it labels by the balanced rule" in res.output
    doc = json.loads(run(args + ["--json", "-q"]).stdout)
    assert doc["refit"]["decision"]["rule"] == "balanced"
    assert doc["refit"]["decision"]["shares"][-1] == pytest.approx(b["share"])


def test_binary_balanced_words_name_the_class_that_can_be_called_against_the_odds():
    """`--positive` defaults to the class that sorts last, often the common one (`other`, `ctrl`): its share, the
    balanced rule's threshold, is then above 0.5, and it is the *negative* (rarer) class that a sample can get
    while the positive one is more probable. The labels row of `train` and `info` said the reverse, a call the
    rule can never make ("can be called 'other' while 'HER2' is more probable" at P(other) >= 0.917)."""
    common_positive = Decision("balanced", shares=(0.083, 0.917), chosen="option")
    words = common_positive.describe("binary", ["HER2", "other"])
    assert "'other' when P(other) >= 0.917" in words
    assert "called 'HER2' while 'other' is more probable" in words
    assert "called 'other' while" not in words
    rare_positive = Decision("balanced", shares=(0.86, 0.14), chosen="option").describe("binary", ["ctrl", "case"])
    assert "called 'case' while 'ctrl' is more probable" in rare_positive
    even = Decision("balanced", shares=(0.5, 0.5), chosen="option").describe("binary", ["a", "b"])
    assert "more probable" not in even  # at 0.5 the rule is argmax: no label goes against the odds


def test_equal_shares_do_not_promise_a_label_against_the_odds():
    """Under `--class-weight balanced` the shares the rule divides by are equal, so `--decision balanced` labels as
    argmax does. The labels row read "'ctrl' when P(ctrl) >= 0.5, its share of the training samples, not 0.5", and
    for a multiclass model "so a sample can be called a rarer class than its most probable one": neither can be."""
    binary = Decision("balanced", shares=(0.5, 0.5), chosen="option").describe("binary", ["case", "ctrl"])
    assert "'ctrl' when P(ctrl) >= 0.5" in binary and "not 0.5" not in binary and "more probable" not in binary
    assert "the same labels as argmax" in binary
    multi = Decision("balanced", shares=(0.25,) * 4, chosen="option").describe("multiclass", list("ABCD"))
    assert "rarer class" not in multi and "the same labels as argmax" in multi and "A 25 %" in multi


FAST = TrainOptions(hidden=[8], epochs=15, patience=50, seed=0)


def rare_class(n_patients=90, genes=8, seed=2, sep=0.6, regression=False) -> pd.DataFrame:
    """Three classes of shares 0.7 / 0.2 / 0.1 that overlap (argmax seldom calls the rare one), 2 samples a patient."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, sep, (3, genes))
    labels = rng.choice(3, n_patients, p=[0.7, 0.2, 0.1])
    rows = []
    for p, k in enumerate(labels):
        for s in range(2):
            x = centres[k] + rng.normal(0, 1, genes)
            rows.append({"sample_id": f"P{p:03d}_{s}", "patient_id": f"P{p:03d}",
                         "label": float(x[0] + rng.normal()) if regression else ("common", "mid", "rare")[k],
                         **{f"g{j}": x[j] for j in range(genes)}})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("sel22") / "rare.csv"
    rare_class().to_csv(path, index=False)
    return str(path)


def dataset(path) -> data.Dataset:
    df = pd.read_csv(path)
    roles, _ = data.resolve_roles(df.columns)
    return data.Dataset.from_frame(df, roles)


# --- diagnose --learning-curve ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curves(table):
    return {rule: learning_curve(table, replace(FAST, decision=rule), (0.5, 1.0)) for rule in ("argmax", "balanced", "auto")}


def test_learning_curve_labels_by_the_decision_rule(curves):
    """`diagnose --learning-curve --decision balanced` printed the very same balanced accuracies as `--decision
    argmax`: every size was scored by the most probable class whatever the option said, and `auto`'s curve was not
    the one of the model train would ship. The networks are the same under every rule (same losses, same epochs);
    only the labels the scores count differ, and auto's score at each size is the one of the rule it chose."""
    argmax, balanced, auto = curves["argmax"], curves["balanced"], curves["auto"]
    for a, b, c in zip(argmax.points, balanced.points, auto.points):
        assert a.val_loss == b.val_loss == c.val_loss and a.best_epoch == b.best_epoch == c.best_epoch
        assert (a.decision, b.decision) == ("argmax", "balanced") and c.decision in ("argmax", "balanced")
        assert c.val_score == {"argmax": a, "balanced": b}[c.decision].val_score
        assert c.train_score == {"argmax": a, "balanced": b}[c.decision].train_score
    assert any(a.val_score != b.val_score for a, b in zip(argmax.points, balanced.points))
    assert (argmax.decision, balanced.decision, auto.decision) == ("argmax", "balanced", "auto")
    assert any("--decision balanced: the balanced accuracies count each size's labels by the balanced rule" in n
               for n in balanced.notes)
    assert any(n.startswith("--decision auto: each size's rule is chosen on the validation rows") for n in auto.notes)


def test_learning_curve_output_names_the_rule_and_refuses_it_for_regression(table, tmp_path):
    """The table and --json say which labels the scores count; a rule for a regression target is a usage error
    naming --decision (it was silently ignored)."""
    args = ["diagnose", "--learning-curve", table, "--hidden", "8", "--epochs", "3", "--fractions", "0.5,1"]
    res = run(args + ["--decision", "balanced"])
    assert res.exit_code == 0, res.output
    assert "labels by the balanced rule" in " ".join(res.stdout.split())
    assert "(balanced labels)" in res.stderr
    doc = json.loads(run(args + ["--decision", "balanced", "--json"]).stdout)
    assert doc["decision"] == "balanced" and {s["decision"] for s in doc["sizes"]} == {"balanced"}
    reg = tmp_path / "reg.csv"
    rare_class(regression=True).to_csv(reg, index=False)
    res = run(["diagnose", "--learning-curve", str(reg), "--hidden", "8", "--epochs", "3", "--decision", "balanced"])
    assert_clean_error(res, "--decision balanced", "regression", code=2)
    doc = json.loads(run(["diagnose", "--learning-curve", str(reg), "--hidden", "8", "--epochs", "3", "--json"]).stdout)
    assert doc["decision"] is None and {s["decision"] for s in doc["sizes"]} == {None}


def test_learning_curve_under_balanced_class_weights_says_the_rule_is_argmax(table):
    result = learning_curve(table, replace(FAST, epochs=3, decision="balanced", class_weight="balanced"), (1.0,))
    assert any("so the balanced rule labels as argmax" in n for n in result.notes)


# --- cv: the linear baseline ------------------------------------------------------------------------------------


def test_cv_baseline_labels_by_the_fold_models_rule(table):
    """`cv --decision balanced` compared the network's balanced-rule labels with the logistic regression's argmax
    labels: "mlpcli minus it: +0.096, better in 3 of 3" on a table where the regression labelled by the same rule
    scored within 0.012 of the network. The baseline now labels each fold as the fold model does."""
    ds = dataset(table)
    options = replace(FAST, epochs=5, folds=1, decision="balanced")
    result = cv.cross_validate(ds, options, folds=3, baseline=True)
    all_rows = np.arange(ds.n_samples)
    moved = False
    for f in result.folds:
        assert f.decision.rule == "balanced" and f.baseline.decision == "balanced"
        test = np.sort(f.test_rows)
        linear, _ = fit_linear_baseline(ds.subset(np.setdiff1d(all_rows, test)), options)
        P = linear.predict_output(ds.subset(test).X)  # (n_test, 3)
        by_rule = balanced_accuracy_score(ds.y[test], f.decision.classes(ds.task, P))
        assert f.baseline.score == pytest.approx(by_rule, abs=1e-12)
        moved |= abs(by_rule - balanced_accuracy_score(ds.y[test], P.argmax(axis=1))) > 1e-9
    assert moved  # the table exercises the rule: argmax labels would score otherwise


def test_cv_command_pooled_and_baseline_agree_with_the_oof_file(table, tmp_path):
    """The pooled figure is the balanced accuracy of the --oof file's labels (recomputed with scikit-learn), which
    follow the rule; the baseline line says it labelled by that rule too."""
    oof = tmp_path / "oof.csv"
    args = ["cv", table, "--folds", "3", "--member-folds", "1", "--hidden", "8", "--epochs", "5",
            "--decision", "balanced", "--oof", str(oof)]
    res = run(args)
    assert res.exit_code == 0, res.output
    assert "on the same folds, preprocessing and decision rule (the balanced rule)" in " ".join(res.stdout.split())
    doc = json.loads(run(args + ["--json", "-q"]).stdout)
    frame = pd.read_csv(oof)
    assert doc["pooled"]["value"] == pytest.approx(balanced_accuracy_score(frame["label"], frame["pred_label"]))
    for f in doc["per_fold"]:
        rows = frame[frame["fold"] == f["fold"]]
        assert f["score"] == pytest.approx(balanced_accuracy_score(rows["label"], rows["pred_label"]))
        assert f["decision"] == f["baseline"]["decision"] == "balanced"


# --- tune --------------------------------------------------------------------------------------------------------


def test_tune_records_each_folds_rule_and_explains_a_decision_tie(table):
    """`--grid "decision=auto,balanced"` tied in every fold and the note said only that "the grid does not choose
    between them": auto had chosen balanced in every fold, which nothing in the output showed."""
    ds = dataset(table)
    result = tuning.tune(ds, replace(FAST, epochs=5), {"decision": ["argmax", "balanced"]}, folds=2)
    for p in result.points:
        assert p.decisions == [p.setting["decision"]] * 2 and p.to_dict()["decisions"] == p.decisions
    best = PointResult(0, {"decision": "auto"}, [0.7, 0.8], 0.75, 0.07, rank=1, decisions=["balanced", "balanced"])
    other = PointResult(1, {"decision": "balanced"}, [0.7, 0.8], 0.75, 0.07, rank=2, decisions=["balanced", "balanced"])
    assert "(decision=auto chose balanced in every fold, so they trained the same networks and labelled them " \
           "alike)" in tuning.tie_note([best, other], "balanced_accuracy")
    forced = PointResult(0, {"decision": "argmax"}, [0.7, 0.8], 0.75, 0.07, rank=1, decisions=["argmax", "argmax"])
    assert "so the balanced rule labels as argmax" in tuning.tie_note([forced, other], "balanced_accuracy", "balanced")
    assert "labels as argmax" not in tuning.tie_note([forced, other], "balanced_accuracy")


def test_tune_refuses_a_decision_grid_on_a_regression_target_before_any_fit(tmp_path):
    """`--grid "decision=auto,balanced; l2=0,1,2"` on a numeric target trained every auto setting first, then stopped
    with "--decision balanced: ... (leave --decision out)", an option the command line did not have."""
    reg = tmp_path / "reg.csv"
    rare_class(regression=True).to_csv(reg, index=False)
    fits = []
    with pytest.raises(ConfigError, match=r"^--grid: the setting decision=balanced l2=0(\.0)? does not fit"):
        tuning.tune(dataset(reg), replace(FAST, epochs=2), {"decision": ["auto", "balanced"], "l2": [0.0, 1.0]},
                    folds=2, progress=lambda done, total: fits.append(done))
    assert fits == []
    res = run(["tune", str(reg), "--grid", "decision=auto,balanced; l2=0,1", "--hidden", "8", "--epochs", "2"])
    assert_clean_error(res, "--grid: the setting decision=balanced", "leave decision out of --grid", code=2)
    assert "--decision balanced:" not in res.output


def test_tune_takes_a_decision_grid_on_a_multilabel_target(tmp_path):
    """`--decision balanced` labels a multi-label target label by label, in train, cv and tune alike; in --grid it
    was refused as "a decision rule chooses between classes"."""
    path = tmp_path / "ml.csv"  # enough held-out positives per label for a rule (decision.MIN_LABEL_EVENTS)
    make_table("multilabel", n_patients=150, seed=0).to_csv(path, index=False)
    res = run(["tune", str(path), "--target", "lab0,lab1,lab2", "--grid", "decision=argmax,balanced", "--hidden", "",
               "--epochs", "2", "--folds", "2", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert sorted(p["setting"]["decision"] for p in doc["points"]) == ["argmax", "balanced"]
    assert all(p["decisions"] == [p["setting"]["decision"]] * 2 for p in doc["points"])


def test_a_hold_out_divides_by_its_training_rows_shares(tmp_path):
    """train --folds 1: the balanced rule divided by the class shares of the whole table, validation rows included
    (a rare class of 12 samples from 2 patients: 4 % where the network trained on 6 of 237 rows, 2.5 %)."""
    from mlpcli import model_io

    rng = np.random.default_rng(12)
    labels = np.array(["A"] * 150 + ["B"] * 138 + ["R"] * 12)
    X = rng.normal(size=(300, 12))
    for k, c in enumerate("ABR"):
        X[labels == c, 3 * k:3 * k + 3] += 1.5
    patients = [f"P{i // 3}" for i in range(288)] + [f"Q{i % 2}" for i in range(12)]
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(12)]).assign(label=labels, patient_id=patients)
    frame.to_csv(tmp_path / "t.csv", index=False)
    model_path = tmp_path / "m.mlp"
    res = run(["train", str(tmp_path / "t.csv"), "--folds", "1", "--epochs", "3", "--decision", "balanced", "-q",
               "-o", str(model_path), "--oof", str(tmp_path / "oof.csv")])
    assert res.exit_code == 0, res.output
    model = model_io.load(model_path)
    held_out = set(pd.read_csv(tmp_path / "oof.csv")["patient_id"])
    trained = frame[~frame["patient_id"].isin(held_out)]["label"].value_counts(normalize=True)
    assert np.allclose(model.decision.shares, [trained[c] for c in model.classes])
