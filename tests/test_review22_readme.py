"""Review 22, the README run as a newcomer would: what its commands print must be what it says they print."""

import pytest

from mlpcli.decision import Decision

from cli_helpers import run
from tables import write_table


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


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readme22")
    data = write_table(tmp, task="binary", seed=3)
    model = str(tmp / "m.mlp")
    res = run(["train", data, "--folds", "1", "--hidden", "4", "--epochs", "3", "--decision", "balanced", "-q",
               "-o", model])
    assert res.exit_code == 0, res.output
    return model, data


@pytest.mark.parametrize("args", [["-o", "-"], ["-o", "{tmp}/p.csv", "--shift-report", "-"]], ids=["rows", "shift"])
def test_predict_to_standard_output_gives_its_summary_on_stderr(binary_model, tmp_path, args):
    """README: "`/dev/stdout` ... is the same as `-`: CSV rows there and the summary on stderr". `predict -o -`
    printed no summary at all: the predicted counts, the positive class and its threshold under the balanced rule,
    the abstentions and OOD flags were lost to a pipeline. Standard output still holds the rows alone."""
    model, data = binary_model
    res = run(["predict", model, data, *[a.format(tmp=tmp_path) for a in args]])
    assert res.exit_code == 0, res.output
    assert "│" not in res.stdout  # no table in the reader's rows
    assert "Predictions" in res.stderr and "positive class" in res.stderr
    assert "its share of the training samples: the balanced decision rule" in res.stderr
    if args[1] == "-":
        assert res.stdout.splitlines()[0].startswith("sample_id,pred_label")
        assert "→ standard output" in res.stderr


def test_explain_to_standard_output_gives_its_summary_on_stderr(binary_model):
    """README: tables written to `-` (`explain -o` among them) put "the summary then ... to stderr". `explain -o -`
    dropped it, and with it the completeness check (how far the attributions are from summing to f(x) - f(baseline))
    and the stability of each ranking. Standard output still holds the ranking alone."""
    model, data = binary_model
    res = run(["explain", model, data, "-o", "-", "--top", "3"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].startswith("class,rank,feature") and "│" not in res.stdout
    assert "completeness: attributions sum to" in res.stderr
    assert "ctrl: top 3 of" in res.stderr and "ranking of 3 rows → standard output" in res.stderr
