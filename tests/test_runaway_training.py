"""Training that blows up stops with a one-line TrainingError naming --lr and the figures (exit 1, no model
file), for single networks and ensemble members, in this process and in member processes; healthy runs
never trip it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlpcli import data
from mlpcli.config import TrainOptions
from mlpcli.engine import MLP
from mlpcli.errors import ConfigError, TrainingError
from mlpcli.model_selection.fitting import fit_run
from mlpcli.model_selection.splits import holdout
from mlpcli.training import FitConfig, no_skill_loss
from mlpcli.early_stopping import BLOWUP_FACTOR, DIVERGENCE_EPOCHS, DIVERGENCE_FACTOR, DivergenceCheck
from cli_helpers import assert_clean_error, run
from tables import make_table, write_table

TARGETS = {"multilabel": ["lab0", "lab1", "lab2"]}


def _dataset(tmp_path, task: str, **kw) -> data.Dataset:
    path = tmp_path / f"{task}.csv"
    make_table(task, **kw).to_csv(path, index=False)
    ds, _ = data.load_dataset(str(path), target=TARGETS.get(task, ["label"]))
    return ds


def _fit(ds: data.Dataset, **options):
    tr, va, _ = holdout(ds, 0.2, 0)
    return fit_run(ds.subset(tr), ds.subset(va), TrainOptions(**options))


# ── the rule, on loss sequences ──────────────────────────────────────────────────────────────────────────


def _net() -> MLP:
    return MLP(3, [], 2, seed=0)


def _feed(check: DivergenceCheck, ratios, net=None) -> None:
    net = net or _net()
    for epoch, r in enumerate(ratios, start=1):
        check.update(epoch, [r * check.no_skill], net)
    check.finish(len(ratios))


def test_an_exploding_loss_stops_after_three_epochs_naming_lr_and_the_figures():
    check = DivergenceCheck(0.69, FitConfig(lr=1e10, optimizer="adam"))
    with pytest.raises(TrainingError) as err:
        _feed(check, [0.9, 5e3, 2e4, 1e6, 1e8])
    text = str(err.value)
    assert "epoch 4" in text and "--lr (now 1e+10)" in text and "no-skill loss 0.69" in text and "1e+06 x" in text


def test_sgd_advice_names_momentum_too():
    check = DivergenceCheck(1.0, FitConfig(lr=1.0, optimizer="sgd", momentum=0.999))
    with pytest.raises(TrainingError, match=r"--momentum \(now 0.999\)"):
        _feed(check, [2e3] * DIVERGENCE_EPOCHS)


@pytest.mark.parametrize("ratios", [
    [0.8, 0.5] + [DIVERGENCE_FACTOR * 2] * (DIVERGENCE_EPOCHS - 1) + [0.5] + [DIVERGENCE_FACTOR * 2] * 2,  # never 3 in a row
    [11.0, 111, 53, 65, 131, 173, 139, 80, 150, 92, 28, 41, 25, 15, 10.5, 8.5, 4.7, 2.0, 1.3, 0.6, 0.3],  # recovered
    [1.5, 1.3, 1.2, 1.1] + [3.0] * 40,  # never blew up: worse than a constant, but that is underfitting
])
def test_runs_that_recover_or_never_blow_up_pass(ratios):
    _feed(DivergenceCheck(0.69, FitConfig()), ratios)


def test_a_blow_up_never_recovered_from_fails_at_the_end():
    ratios = [0.7, 1.0, 26, 95, 74, 60, 12, 6.9, 8.6, 27, 16, 31, 6.9, 5.2, 14, 8.7, 4.4, 12, 9.4]
    check = DivergenceCheck(0.69, FitConfig(lr=1.0, optimizer="sgd", momentum=0.999))
    for epoch, r in enumerate(ratios, start=1):
        check.update(epoch, [r * 0.69], _net())  # no error while it runs: it may still recover
    with pytest.raises(TrainingError, match=rf"stayed over {BLOWUP_FACTOR:g} x .* from epoch 3 .*never came back"):
        check.finish(len(ratios))


def test_the_lower_of_the_training_mode_and_inference_mode_loss_decides():
    """Dropout or input noise can raise the training-mode loss alone; the weights are fine then."""
    check = DivergenceCheck(1.0, FitConfig())
    for epoch in range(1, 10):
        check.update(epoch, [5e3, 0.4], _net())
    check.finish(9)


def test_non_finite_weights_or_loss_stop_at_once():
    net = _net()
    net.flat_params[0] = np.inf
    with pytest.raises(TrainingError, match="epoch 1: the weights overflowed"):
        DivergenceCheck(1.0, FitConfig()).update(1, [0.5], net)
    with pytest.raises(TrainingError, match="epoch 2: the training loss is nan"):
        DivergenceCheck(1.0, FitConfig()).update(2, [float("nan")], _net())


def test_no_skill_loss_is_never_below_a_fresh_networks_start():
    """A rare class makes the prior's loss small; the bar is then the loss of all-zero outputs (log K)."""
    net = MLP(4, [], 2, seed=0)
    from mlpcli.engine import losses

    y = np.array([0] * 99 + [1])
    prior = np.log(np.array([0.99, 0.01]))
    value = no_skill_loss(net, losses.get("ce"), y, baseline_output=prior)
    assert value == pytest.approx(np.log(2), rel=1e-6)


# ── real runs ────────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression"])
@pytest.mark.parametrize("lr, optimizer, hidden", [(1e3, "adam", []), (1e6, "adam", [16]), (1e10, "adamw", [16]),
                                                   (1e3, "sgd", [16])])
def test_huge_learning_rates_fail_for_every_task(tmp_path, task, lr, optimizer, hidden):
    ds = _dataset(tmp_path, task)
    # AdamW without decay: with it, lr x weight decay >= 1 is refused before training (config.check_decay)
    decay = {"weight_decay": 0.0} if optimizer == "adamw" else {}
    with pytest.raises(TrainingError, match=r"training diverged at epoch \d+: .*lower --lr"):
        _fit(ds, lr=lr, optimizer=optimizer, hidden=hidden, epochs=40, **decay)


def test_adamw_decay_beyond_one_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="lr x weight decay"):
        _fit(_dataset(tmp_path, "binary"), lr=1e10, optimizer="adamw", hidden=[16], epochs=40)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_sgd_with_huge_momentum_fails(tmp_path, task):
    ds = _dataset(tmp_path, task)
    with pytest.raises(TrainingError, match="--momentum"):
        _fit(ds, lr=10.0, optimizer="sgd", momentum=0.999, hidden=[64], epochs=40)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression"])
@pytest.mark.parametrize("settings", [
    {},  # the defaults (AdamW, lr auto)
    {"optimizer": "adam", "lr": 3e-2},
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    {"dropout": 0.9, "augment_noise": 2.0},
    {"batchnorm": True, "lr": 0.1},
])
def test_healthy_runs_never_trip_it(tmp_path, task, settings):
    ds = _dataset(tmp_path, task)
    run_ = _fit(ds, hidden=[32], epochs=60, **settings)
    assert run_.result.epochs_run >= 1 and not run_.result.interrupted


def test_healthy_on_the_sample_data_with_a_range_of_learning_rates():
    from threadpoolctl import threadpool_limits

    ds, _ = data.load_dataset("sample_data/tumour_subtypes.csv.gz")
    # one BLAS thread, as `train` fits by default (--threads 1): a second one only competed with the suite's other
    # worker for its 2 cores (5 s alone, 30 s there)
    with threadpool_limits(limits=1):
        for lr, hidden in ((1e-2, []), (3e-3, [128]), (3e-2, [128])):
            _fit(ds, lr=lr, hidden=hidden, epochs=60)


# ── the command line ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("extra", [
    ["--folds", "1"],  # one network
    ["--folds", "3", "--n-jobs", "1"],  # ensemble members one after the other
    ["--folds", "3", "--n-jobs", "2"],  # ensemble members in parallel processes
])
def test_train_exits_1_without_a_model_file(tmp_path, extra):
    table = write_table(tmp_path)
    out = tmp_path / "m.mlp"
    res = run(["train", table, "-o", str(out), "--lr", "1e10", "--optimizer", "adam", "--hidden", "16",
               "--epochs", "30", *extra])
    assert_clean_error(res, "training diverged at epoch", "--lr (now 1e+10)", "no-skill loss")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_regression_train_exits_1(tmp_path):
    table = write_table(tmp_path, task="regression")
    out = tmp_path / "m.mlp"
    res = run(["train", table, "-o", str(out), "--lr", "1e3", "--optimizer", "adam", "--folds", "1", "--epochs", "30"])
    assert_clean_error(res, "training diverged", "--lr (now 1000)")
    assert not out.exists()


def test_cv_and_learning_curve_report_it_too(tmp_path):
    table = write_table(tmp_path)
    res = run(["cv", table, "--folds", "2", "--member-folds", "1", "--lr", "1e6", "--optimizer", "adam",
               "--epochs", "20", "--hidden", "8"])
    assert_clean_error(res, "training diverged", "--lr")
    res = run(["diagnose", "--learning-curve", table, "--fractions", "0.5,1", "--lr", "1e6", "--optimizer", "adam",
               "--epochs", "20", "--hidden", "8"])
    assert_clean_error(res, "training diverged", "--lr")


def test_a_divergence_from_an_extreme_penalty_names_the_penalty(small):
    """"training diverged ...; lower --lr (now 0.003), or set --clip-norm" for a loss overflowed by --l1 1e308."""
    res = run(["train", str(small / "t.csv"), "--no-group", "--epochs", "2", "--hidden", "4", "--l1", "1e308",
               "-o", str(small / "x.mlp")])
    assert res.exit_code == 1
    assert "lower --l1 (now 1e+308), far beyond usual values" in res.output.splitlines()[-1]
    res = run(["train", str(small / "t.csv"), "--no-group", "--epochs", "2", "--pos-weight", "1e308",
               "-o", str(small / "x.mlp")])
    assert res.exit_code == 2 and "--pos-weight" in res.output.splitlines()[-1]


def test_a_diverged_run_writes_its_history_for_diagnose(tmp_path):
    """The run that most needs `diagnose` wrote nothing: a divergence left no --history."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 30))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(30)])
    frame.insert(0, "label", np.where(X[:, 0] > 0, "a", "b"))
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    history = tmp_path / "h.csv"
    res = run(["train", str(path), "--no-group", "--folds", "1", "--hidden", "64", "--optimizer", "sgd", "--lr", "5",
               "--epochs", "40", "--history", str(history), "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "training diverged" in res.output, res.output
    assert not (tmp_path / "m.mlp").exists() and history.exists()
    rows = pd.read_csv(history)
    assert len(rows) >= 1 and f"the {len(rows)} epochs before it are in {history}" in res.output
    assert run(["diagnose", str(history)]).exit_code in (0, 1)  # readable: a verdict, or a one-line reason


def test_an_ensemble_divergence_names_the_member_and_numbers_its_history(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 30))
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(30)])
    frame.insert(0, "label", np.where(X[:, 0] > 0, "a", "b"))
    frame.to_csv(tmp_path / "t.csv", index=False)
    history = tmp_path / "h.csv"
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "3", "--hidden", "64", "--optimizer", "sgd",
               "--lr", "5", "--epochs", "40", "--n-jobs", "1", "--history", str(history), "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "Error: member 1: training diverged" in res.output, res.output
    rows = pd.read_csv(history)
    assert list(rows.columns[:2]) == ["member", "epoch"] and set(rows["member"]) == {1}


def test_a_member_whose_held_out_rows_overflow_is_a_warning_not_a_failed_run(tmp_path):
    """A feature at 1e25 in one patient's rows (values near 1 elsewhere): the member holding that patient out had an
    infinite validation loss at every epoch, and train failed after training, at the curves' diagnosis, with "the
    run diverged" and no --history, where cv on the same table ran."""
    table = make_table("regression", n_patients=30, per_patient=3, n_features=8, seed=4)
    table.loc[table["patient_id"] == table["patient_id"].iloc[0], "f07"] = 1e25
    table.to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "--hidden", "8", "--folds", "3", "--epochs", "10", "--scaling",
               "standard", "-o", str(tmp_path / "m.mlp"), "--history", str(tmp_path / "h.csv"), "-q"])
    assert res.exit_code == 0, res.output
    assert "learning curves not diagnosed: the validation loss of member" in res.output, res.output
    assert (tmp_path / "m.mlp").exists() and (tmp_path / "h.csv").exists()
