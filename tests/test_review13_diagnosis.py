"""Learning-curve diagnosis, review 13: verdicts checked on runs whose truth is known. A network that never left
its random start (--lr 1e-6) was told to add capacity; so was a run whose own --hidden auto had already tried a
larger network on a noise-dominated target; a validation table of its own (--val-data) was first answered with
"collect more training data"; an ensemble history of one member read "mean of 1 members"."""

import math

import numpy as np
import pandas as pd
import pytest

from mlpcli.diagnosis import diagnose
from mlpcli.history import capacity_tried
from cli_helpers import run

BASELINE = 0.6582  # binary cross-entropy of predicting a 63/37 class prior (breast cancer)


def _flat(level: float, n: int = 30, wiggle: float = 0.002, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return (level + wiggle * rng.standard_normal(n)).tolist()


def test_a_network_worse_than_a_constant_prediction_is_told_to_fix_the_optimisation():
    """Real run (bc.csv, --hidden 32 --lr 1e-6 --epochs 30): both curves flat at 1.105 / 1.124 against a no-skill
    loss of 0.658. The advice was "Increase model capacity", and the summary read "-67.9 % and -70.8 % of the way
    from no skill to perfect": the output bias alone reaches the no-skill loss, so the run never learned."""
    d = diagnose(_flat(1.105), _flat(1.124, seed=1), baseline=BASELINE)
    assert d.label == "underfit_capacity" and d.evidence["cause"] == "not_learning"
    assert "Increase model capacity" not in " ".join(d.advice)
    above = f"{-100 * d.evidence['train_distance_from_baseline']:.1f} % of the scale above"  # ~68 %
    assert d.advice[0].startswith("The network has not learned") and above in d.advice[0]
    assert "--lr" in d.advice[1] and "--epochs" in d.advice[1]
    assert "-6" not in d.summary and above + " the no-skill loss" in d.summary
    # dropout lifting only the training loss above the baseline is no sign of a network that never learned
    assert diagnose(_flat(0.70), _flat(0.62, seed=1), baseline=BASELINE).evidence["cause"] != "not_learning"
    # the same for a score (balanced accuracy below chance): its words follow the direction
    s = diagnose(_flat(0.40), _flat(0.41, seed=1), baseline=0.5, higher_is_better=True, name="balanced accuracy")
    assert s.evidence["cause"] == "not_learning" and "below the no-skill balanced accuracy" in s.advice[0]


def test_curves_flat_at_the_no_skill_loss_keep_the_capacity_advice_and_say_so_without_a_minus_sign():
    """Real run (concentric circles, --hidden none): training 0.6934 and validation 0.6947 against ln 2 read
    "-0.0 % and -0.2 % of the way from no skill to perfect". A linear model on circles is the notes' capacity case."""
    d = diagnose(_flat(0.6934, wiggle=0.0003), _flat(0.6947, wiggle=0.0003, seed=1), baseline=math.log(2))
    assert d.label == "underfit_capacity" and d.evidence["cause"] is None
    assert d.advice[0].startswith("Increase model capacity")
    assert "-0." not in d.summary and "worse than no skill" in d.summary


def test_a_larger_network_the_run_already_tried_turns_the_advice_to_the_features():
    """Real run (breast cancer with 40 % of labels flipped, --hidden auto): the linear model won (validation balanced
    accuracy 0.550 against 0.546 for hidden 128), the curves sat near the baseline and the advice was "Increase
    model capacity", which the run had just tried."""
    fit = {"metric": "balanced_accuracy", "folds": 1,
           "portfolio": [{"hidden": [], "augment_noise": 0.0, "score": 0.55},
                         {"hidden": [128], "augment_noise": 0.0, "score": 0.5463}]}
    tried = capacity_tried(fit, {"hidden": "auto", "resolved": {"hidden": []}})
    assert tried == ("--hidden auto also trained hidden 128: validation balanced accuracy 0.546, against 0.550 for "
                     "the network it chose (no hidden layer)")
    d = diagnose(_flat(0.654), _flat(0.699, seed=1), baseline=0.6918, capacity_tried=tried)
    assert d.label == "underfit_capacity" and d.evidence["cause"] == "larger_model_tried"
    assert tried in d.advice[0] and "Increase model capacity" not in " ".join(d.advice)
    # regression scores are stored negated (higher is better): the RMSE is shown as such
    reg = {"metric": "rmse", "folds": 5, "portfolio": [{"hidden": [], "augment_noise": 0.0, "score": -0.9843},
                                                      {"hidden": [128], "augment_noise": 0.0, "score": -0.9864}]}
    assert "out-of-fold RMSE 0.9864, against 0.9843" in capacity_tried(reg, {"resolved": {"hidden": []}})


@pytest.mark.parametrize("fit, config", [
    ({"portfolio": [{"hidden": [], "score": 0.78}, {"hidden": [128], "augment_noise": 2.0, "score": 0.84}]},
     {"resolved": {"hidden": [128]}}),  # the chosen network is the largest
    ({"portfolio": None}, {"hidden": [64]}),  # a given --hidden: nothing else was tried
    ({}, {}),  # a model file without either
    ({"portfolio": [{"hidden": ["x"], "score": 0.9}, {"hidden": [], "score": 0.5}]}, {"hidden": []}),  # edited by hand
    ({"portfolio": "oops"}, {"resolved": None}),
], ids=["chosen-is-largest", "no-portfolio", "empty", "bad-widths", "bad-types"])
def test_no_larger_network_tried_means_no_sentence(fit, config):
    assert capacity_tried(fit, config) is None


def _gap_curves(n: int = 40):
    e = np.arange(1, n + 1)
    train = 0.08 + 0.6 * np.exp(-e / 3)
    val = 0.90 + 0.3 * np.exp(-e / 3) + 0.004 * np.sin(e)
    return train.tolist(), val.tolist()


def test_a_separate_validation_table_leads_the_advice_with_the_mismatch():
    """Real run (digits, --val-data a noisier copy of the second half): a wide, stable gap, unrepresentative_train,
    whose first advice was to collect more training data; with a validation table of its own the two tables differ
    by construction, which is what to check first."""
    train, val = _gap_curves()
    plain = diagnose(train, val, baseline=2.30)
    assert plain.label == "unrepresentative_train" and plain.advice[0].startswith("Collect more training data")
    d = diagnose(train, val, baseline=2.30, validation_table="cohort_b.csv")
    assert d.label == "unrepresentative_train"
    assert d.advice[0].startswith("Check the validation table first: cohort_b.csv is a separate table")
    assert any(a.startswith("Collect more training data") for a in d.advice[1:])


def test_one_member_history_is_not_called_a_mean_of_one_members(tmp_path):
    e = np.arange(1, 31)
    path = tmp_path / "one.csv"
    pd.DataFrame({"member": 1, "epoch": e, "train_loss": 0.1 + 0.6 * np.exp(-e / 4),
                  "val_loss": 0.15 + 0.55 * np.exp(-e / 4), "best_epoch": 25}).to_csv(path, index=False)
    plot = tmp_path / "one.svg"
    res = run(["diagnose", str(path), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.stdout.split())
    assert "mean of 1" not in out and "30 epochs of member 1, kept epoch 25" in out
    svg = plot.read_text()
    assert "mean of 1" not in svg and "members (1)" not in svg


def test_a_model_file_carries_the_larger_candidate_and_the_validation_table(tmp_path):
    """End to end on a real run: a --val-data model whose --hidden auto chose the linear network."""
    rng = np.random.default_rng(3)
    def table(n):
        x = rng.standard_normal((n, 4))
        return pd.DataFrame({**{f"g{i}": x[:, i] for i in range(4)}, "label": np.where(rng.random(n) < 0.5, "a", "b")})
    tr, va = tmp_path / "tr.csv", tmp_path / "va.csv"
    table(24).to_csv(tr, index=False)
    table(12).to_csv(va, index=False)
    model = tmp_path / "m.mlp"
    res = run(["train", str(tr), "--val-data", str(va), "--epochs", "3", "--hidden", "auto", "--no-group", "-o", str(model), "-q"])
    assert res.exit_code == 0, res.output
    from mlpcli.history import read_curves

    c = read_curves(str(model))
    assert c.validation_table == str(va)
    assert c.capacity_tried.startswith("--hidden auto also trained hidden 128: validation balanced accuracy ")
    assert c.capacity_tried.endswith("for the network it chose (no hidden layer)")
    res = run(["diagnose", str(model), "--json"])
    assert res.exit_code == 0, res.output
    # train's own verdict, stored in the model, reads the same context as diagnose MODEL: the same advice
    import json

    from mlpcli import model_io

    doc = json.loads(res.stdout)
    stored = model_io.load(model).extra["diagnosis"]
    assert stored["label"] == doc["label"] and stored["advice"] == doc["advice"]


def test_the_header_says_how_many_epochs_the_verdict_could_read(tmp_path):
    """'40 epochs' for a history whose validation column is empty in 10 of them: the header counts rows."""
    epochs = np.arange(1, 41)
    frame = pd.DataFrame({"epoch": epochs, "train_loss": 1 / np.sqrt(epochs), "val_loss": 1 / np.sqrt(epochs) + 0.05})
    frame.loc[5:14, "val_loss"] = np.nan
    frame.to_csv(tmp_path / "h.csv", index=False)
    res = run(["diagnose", str(tmp_path / "h.csv")])
    assert res.exit_code == 0, res.output
    assert "40 epochs (30 with both values)" in res.output
    frame.dropna().to_csv(tmp_path / "full.csv", index=False)
    assert "with both values" not in run(["diagnose", str(tmp_path / "full.csv")]).output
