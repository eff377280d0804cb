"""Review 21, the decision rule (`train --decision`) as a user meets it: every summary that names the rule says what
it does to the model's own classes (a label that is not the most probable class must read as the rule, not a bug),
evaluate says which rule labelled the samples it counts, a forced rule shows what auto would have taken, and a
file's held-out figures never crash a summary."""

import json

import numpy as np
import pytest

from mlpcli import model_io
from mlpcli.decision import Decision, choose
from mlpcli.model_summary import decision_words

from cli_helpers import run
from model_files import rewrite_model
from tables import make_table


# ── the words (mlpcli.decision.Decision.describe) ─────────────────────────────────────────────────────────────

def test_binary_balanced_words_name_the_threshold_and_that_the_label_may_be_the_less_probable_class():
    d = Decision("balanced", shares=(0.86, 0.14), chosen="auto", held_out={"argmax": 0.627, "balanced": 0.753})
    words = d.describe("binary", ["common", "rare"], "out-of-fold")
    assert "'rare' when P(rare) >= 0.14" in words and "not 0.5" in words
    assert "called 'rare' while 'common' is more probable" in words
    assert "auto chose it on the out-of-fold predictions, balanced accuracy 0.753 against 0.627 by argmax" in words
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
