"""Review 17 of learning-curve diagnosis, by use: runs built to be each case, history files in every format and
damaged, the Python API a notebook uses, --plot without matplotlib, the sample-size learning curve's caveat."""

from __future__ import annotations

import json
import pathlib
import re
import sys

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run
from tables import write_table

import curves
from mlpcli.cli import cli
from mlpcli.diagnosis import diagnose
from mlpcli.errors import DataError
from mlpcli.history import curves_from_history, diagnose_curves, read_curves

# A wide network without regularisation on 2,000 genes x 64 rows (mlpcli train --hidden 256 --dropout 0 --l2 0
# --weight-decay 0): it memorises its rows within epochs (training loss 1.1 -> 2e-8) while validation climbs from
# 0.83 at epoch 1, its best, to 5.2 and settles near 4.9
WIDE_TRAIN = 1.1 * 10 ** (-(np.arange(100) * 8 / 99))
WIDE_VAL = np.concatenate([[0.83, 1.93, 2.81, 3.46, 3.9, 4.3, 4.6, 4.8, 5.0, 5.1], np.linspace(5.2, 4.88, 90)])
WIDE_BASELINE = 0.6976


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small model file with its history: one network, 8 epochs."""
    tmp = tmp_path_factory.mktemp("model")
    data = write_table(tmp, n_patients=20, per_patient=3, n_features=6)
    out = tmp / "m.mlp"
    res = run(["train", data, "--folds", "1", "--epochs", "8", "--hidden", "none", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


# --- what the verdict says --------------------------------------------------------------------------------------------


def test_a_memorised_training_loss_is_not_reported_below_zero():
    """The last-quarter line of a training loss falling to 2e-8 ended below zero: "while the training loss stayed
    near -1.121e-07", and train_final -1.1e-07 in the evidence."""
    d = diagnose(WIDE_TRAIN, WIDE_VAL, baseline=WIDE_BASELINE)
    assert d.label == "overfit"
    assert 0 <= d.evidence["train_final"] <= WIDE_TRAIN[-25:].max()
    assert "stayed near -" not in d.summary


def test_a_validation_loss_best_at_epoch_1_is_quoted_at_its_value():
    """The smoothed minimum at epoch 1 averaged in the later, worse epochs: "lowest around epoch 1 (3.763)" for a
    validation loss of 0.83 there (the epoch train kept), and the rise after it was understated (181 % of the scale
    for a climb from 0.83 to 4.9, 580 %)."""
    d = diagnose(WIDE_TRAIN, WIDE_VAL, baseline=WIDE_BASELINE)
    assert d.evidence["divergence_epoch"] == 1 and d.evidence["best_val"] == pytest.approx(0.83)
    assert "lowest around epoch 1 (0.83)" in d.summary
    assert d.evidence["val_rise"] > (4.8 - 0.83) / WIDE_BASELINE


def test_a_run_stopped_early_says_which_epochs_were_still_improving():
    epochs = np.arange(1, 61)
    d = diagnose(np.exp(-epochs / 80), np.exp(-epochs / 90) + 0.02)
    assert d.label == "underfit_stopped_early"
    assert d.evidence["window_first_epoch"] == 46 and "over epochs 46-60" in d.summary
    assert "per 10 % of the run, i.e. per 5.9 epochs" in d.summary and "epochs 46-60" in d.advice[0]


def _train_options() -> set[str]:
    import click

    train = cli.get_command(click.Context(cli), "train")
    return {opt for p in train.params for opt in (*p.opts, *getattr(p, "secondary_opts", ()))}


def _advice_of_every_shape() -> dict[str, str]:
    """The advice for every label, plain and with dropout, one network and an ensemble's members."""
    out: dict[str, list[str]] = {}
    for label in curves.LABELS:
        for seed in range(3):
            case = curves.make_case(label, seed, seed=1)
            for stochastic in (False, True):
                for spread in (None, np.full(len(case.train), 0.3 * np.nanmean(case.val))):
                    d = diagnose(case.train, case.val, baseline=case.baseline, train_eval_loss=case.train_eval,
                                 stochastic_regularisation=stochastic, member_spread=spread)
                    out.setdefault(d.label, []).extend(d.advice)
    return {label: " ".join(advice) for label, advice in out.items()}


def test_every_remedy_names_options_as_train_help_spells_them():
    """The remedies said "Add regularisation: L2 weight decay and/or dropout", "Reduce model capacity (fewer units or
    layers)", "increase the patience (or lower min_delta)", "Use a larger validation set": now each names the option
    that does it, and every option named is one of train's."""
    advice = _advice_of_every_shape()
    options = _train_options()
    named = set(re.findall(r"--[a-z][a-z0-9-]*", " ".join(advice.values())))
    assert named and named <= options | {"--baseline"}, named - options
    for label, wanted in {"overfit": ("--l2", "--dropout", "--hidden"), "underfit_capacity": ("--hidden", "--lr"),
                          "underfit_stopped_early": ("--epochs", "--patience", "--min-delta"),
                          "unrepresentative_validation_noisy": ("--val-size", "--folds"),
                          "unrepresentative_train": ("--group",)}.items():
        for option in wanted:
            assert option in advice[label], (label, option, advice[label])


def test_the_learning_curve_remedies_name_options_too(tmp_path):
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection.learning_curve import learning_curve

    data = write_table(tmp_path)
    result = learning_curve(data, TrainOptions(epochs=5), fractions=(0.5, 1))
    bv, last = result.bias_variance, result.points[-1]
    assert bv["verdict"] == "variance" and "--l2" in bv["text"] and "--hidden" in bv["text"]
    # 5 epochs: validation was still at its best in the last one, so the levels are not final, whatever the
    # curves' label at that size (here not underfit_stopped_early, which had the only caveat)
    assert last.best_epoch == last.epochs_run == 5 and last.curve_label != "underfit_stopped_early"
    assert bv["caveat"] and "(5 of 5)" in bv["caveat"] and "--epochs" in bv["caveat"]


# --- history files and sources ---------------------------------------------------------------------------------------


def test_metric_curves_that_are_empty_name_the_metric_columns(tmp_path):
    """--metric metric on a table whose metric columns are empty said "need at least 3 epochs where both train_loss
    and val_loss are finite", naming the loss columns it had not read."""
    path = tmp_path / "h.csv"
    pd.DataFrame({"epoch": [1, 2, 3, 4], "train_loss": [0.9, 0.7, 0.6, 0.5], "val_loss": [1.0, 0.8, 0.7, 0.65],
                  "train_metric": [np.nan] * 4, "val_metric": [np.nan] * 4}).to_csv(path, index=False)
    res = run(["diagnose", str(path), "--metric", "metric"])
    assert_clean_error(res, str(path), "train_metric and val_metric")
    assert "train_loss" not in res.output


def test_an_empty_member_cell_is_called_empty(tmp_path):
    """It said "member nan in row 4 is not a member number (1, 2, ...)", for a cell left empty."""
    path = tmp_path / "h.csv"
    path.write_text("member,epoch,train_loss,val_loss\n1,1,0.5,0.6\n1,2,0.4,0.5\n1,3,0.3,0.4\n,1,0.5,0.6\n")
    res = run(["diagnose", str(path)])
    assert_clean_error(res, str(path), "row 4: the cell is empty")


def test_an_ensemble_whose_mean_curve_is_too_short_says_why(tmp_path):
    """One member ran 3 epochs, the other 1: "got 1" epoch while the file shows 3, with nothing saying the mean
    curve ends where half the members stopped."""
    path = tmp_path / "h.csv"
    path.write_text("member,epoch,train_loss,val_loss\n1,1,0.5,0.6\n1,2,0.4,0.5\n1,3,0.3,0.4\n2,1,0.5,0.6\n")
    assert_clean_error(run(["diagnose", str(path)]), str(path), "got 1", "members ran 1-3 epochs")


def test_a_model_file_through_standard_input_or_a_pipe_is_read_as_a_model(model):
    """`cat m.mlp | mlpcli diagnose -` (and `<(zcat m.mlp.gz)`) said "cannot parse standard input as CSV: not UTF-8
    text": a pipe was read as a history table only."""
    res = run(["diagnose", "-", "--json"], input=model.read_bytes())
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    direct = json.loads(run(["diagnose", str(model), "--json"]).stdout)
    assert doc["source"] == "standard input" and doc["kind"] == "model"
    assert doc["label"] == direct["label"] and doc["baseline"] == direct["baseline"]
    damaged = run(["diagnose", "-"], input=model.read_bytes()[:2000])
    assert_clean_error(damaged, "standard input", "model file")
    assert "/proc/self/fd" not in damaged.output


def test_a_history_table_through_standard_input_still_reads(tmp_path):
    text = "epoch,train_loss,val_loss\n" + "".join(f"{e},{1 / e:.4f},{1.1 / e + 0.05:.4f}\n" for e in range(1, 13))
    res = run(["diagnose", "-", "--json"], input=text)
    assert res.exit_code == 0 and json.loads(res.stdout)["kind"] == "history"
    res = run(["diagnose", "-"], input="a,b\n1,2\n")
    assert_clean_error(res, "standard input has no 'train_loss' or 'val_loss' column")


# --- the Python API a notebook uses ----------------------------------------------------------------------------------


def test_read_curves_takes_a_pathlib_path(model, tmp_path):
    """read_curves(Path("m.mlp")) raised AttributeError: 'PosixPath' object has no attribute 'lower'."""
    c = read_curves(pathlib.Path(model))
    assert c.kind == "model" and diagnose_curves(c).label
    history = tmp_path / "h.csv"
    pd.DataFrame({"epoch": range(1, 6), "train_loss": [1, .8, .6, .5, .45], "val_loss": [1.1, .9, .7, .65, .6]}).to_csv(
        history, index=False)
    assert read_curves(history).kind == "history"


def test_curves_from_rows_without_the_curve_columns_is_a_data_error():
    """Rows from a Keras-like log (``loss``) raised a bare KeyError: 'train_loss'."""
    with pytest.raises(DataError, match=r"row 1 has no train_loss or val_loss \(it has epoch, loss\)"):
        curves_from_history([{"epoch": 1, "loss": 0.3}])
    with pytest.raises(DataError, match="train_metric or val_metric"):
        curves_from_history([{"epoch": 1, "train_loss": 0.3, "val_loss": 0.4}], "metric")


# --- --plot without matplotlib ---------------------------------------------------------------------------------------


@pytest.fixture
def no_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError; find_spec: None


def test_plot_without_matplotlib_is_a_one_line_error_naming_what_to_install(model, tmp_path, no_matplotlib):
    """It was "Error: internal error (ModuleNotFoundError: No module named 'matplotlib')"."""
    out = tmp_path / "curves.png"
    res = run(["diagnose", str(model), "--plot", str(out)])
    assert_clean_error(res, "--plot", "matplotlib", "pip install matplotlib")
    assert "internal error" not in res.output and not out.exists()


def test_the_learning_curve_says_so_before_training(tmp_path, no_matplotlib):
    """--learning-curve trained every size and only then failed to draw."""
    data = write_table(tmp_path, n_patients=20, per_patient=2, n_features=6)
    res = run(["diagnose", "--learning-curve", data, "--epochs", "3", "--plot", str(tmp_path / "lc.svg")])
    assert_clean_error(res, "--plot", "pip install matplotlib")
    assert "training at" not in res.output and "of the training groups" not in res.output
