"""Follow-ups of review 14: AdamW's decay refused where it would wreck the weights, an empty --only of
gradcheck, the --lr-schedule help."""

from __future__ import annotations

import pytest

from mlpcli.config import TrainOptions, resolve
from mlpcli.errors import ConfigError
from cli_helpers import run


@pytest.mark.parametrize("lr, decay", [(0.5, 4.0), (0.1, 10.0)])
def test_adamw_decay_that_zeroes_or_flips_the_weights_is_refused(lr, decay):
    """`--lr 0.5 --weight-decay 4` multiplied the weights by 1 - 2 = -1 every step: training ended with exit 0
    and a model at chance (AUC 0.47)."""
    with pytest.raises(ConfigError, match=r"--weight-decay .* with --lr .*: AdamW shrinks the weights"):
        TrainOptions(lr=lr, weight_decay=decay).validate()
    res = run(["train", "x.csv", "--lr", str(lr), "--weight-decay", str(decay)])
    assert res.exit_code == 2 and "lr x weight decay" in res.output
    TrainOptions(lr=lr, weight_decay=decay, optimizer="adam").validate()  # Adam has no decoupled decay
    TrainOptions(lr=0.01, weight_decay=1.0).validate()  # the defaults' kind of product, 0.01


def test_an_auto_learning_rate_is_checked_once_resolved():
    options = TrainOptions(hidden=[], weight_decay=200.0)  # lr auto: 0.01 for softmax regression -> 2
    options.validate()
    with pytest.raises(ConfigError, match="lr x weight decay = 2"):
        resolve(options, n_train=100, n_features=50)  # the rate depends on the kept width


def test_gradcheck_only_empty_is_a_usage_error():
    """An empty shell variable (`--only "$WHICH"`) ran the whole suite."""
    res = run(["gradcheck", "--only", ""])
    assert res.exit_code == 2 and "'--only'" in res.output and "is empty" in res.output


def test_lr_schedule_help_says_what_each_schedule_does():
    res = run(["train", "--help"])
    text = " ".join(res.output.split())
    assert "plateau: halve the rate" in text and "cosine: anneal it from --lr towards 1e-6" in text


@pytest.mark.parametrize("key, mean, sd, text", [
    ("log_loss", 1.2823, 0.043, "1.282 ± 0.043"),  # was "1.282 ± 0.04300"
    ("log_loss", 4.567, 0.7785, "4.567 ± 0.778"),
    ("balanced_accuracy", 0.812, 0.031, "0.812 ± 0.031"),
    ("balanced_accuracy", 0.812, 0.0004, "0.812 ± 0.0004"),  # a finer SD keeps its first digit
])
def test_mean_and_sd_are_written_to_the_same_decimals(key, mean, sd, text):
    from mlpcli.cli._common import fmt_mean_sd

    assert fmt_mean_sd(key, mean, sd) == text


def test_a_refit_replays_the_members_cosine_schedule(tmp_path):
    """`--refit --lr-schedule cosine` trained the refit for the members' median best epoch with the cosine
    annealed over those few epochs, down to 1e-6 at their end, where the members at that epoch were still near
    --lr: the refit trained with another schedule than the one its epoch count was chosen on."""
    import numpy as np

    from mlpcli.pipeline import train
    from tables import make_table

    df = make_table("multiclass", n_patients=30)
    df["label"] = np.random.default_rng(0).permutation(df["label"].to_numpy())  # no signal: an early best epoch
    df.to_csv(tmp_path / "t.csv", index=False)
    out = train(str(tmp_path / "t.csv"), TrainOptions(hidden=[16], epochs=40, folds=2, refit=True, lr=0.03,
                                                      lr_schedule="cosine", seed=0, patience=3))
    *members, refit = out.fitted.runs
    last = refit.result.history[-1]
    assert last["epoch"] == out.fitted.refit_epochs < members[0].options.epochs
    at_that_epoch = [row["lr"] for row in members[0].result.history if row["epoch"] == last["epoch"]]
    assert last["lr"] == pytest.approx(at_that_epoch[0], rel=1e-12) and last["lr"] > 0.5 * 0.03


def test_an_option_only_the_grid_gives_is_blamed_on_the_grid():
    """`--grid "momentum=0.5,0.9"` with AdamW said "--momentum: only --optimizer sgd uses it", an option the
    user never gave."""
    res = run(["tune", "x.csv", "--grid", "momentum=0.5,0.9"])
    assert res.exit_code == 2 and "--grid: momentum: only --optimizer sgd uses it" in res.output
    res = run(["tune", "x.csv", "--grid", "weight-decay=0.1,1", "--optimizer", "adam"])
    assert res.exit_code == 2 and "--grid: weight-decay: only --optimizer adamw uses it" in res.output


def test_log1p_auto_says_when_it_declines_log_normalised_values():
    """--log1p auto declined log-normalised single cells (skewed by their zeros alone) without a word: the user
    could not tell it had looked, nor why it said no where the zeros look like counts."""
    import numpy as np
    import scipy.sparse as sp

    from mlpcli import data

    rng = np.random.default_rng(0)
    counts = rng.poisson(0.15, size=(300, 50)).astype(float)  # mostly zeros, as single cells
    logged = np.where(counts > 0, rng.normal(2.0, 0.3, size=counts.shape), 0.0)  # non-zero values not skewed
    for X in (logged, sp.csr_matrix(logged)):
        notes: list[str] = []
        assert data.looks_like_counts(X, notes) is None and notes == [data.counts.LOGGED_NOTE]
    notes = []
    assert data.looks_like_counts(counts, notes) is not None and notes == []  # counts: applied, no such note


@pytest.mark.parametrize("args, flag", [
    (["--loss", "focal", "--label-smoothing", "0.1"], "--label-smoothing applies to --loss ce only"),
    (["--loss", "ce", "--pos-weight", "3"], "--pos-weight applies to --loss bce only"),
    (["--loss", "bce", "--focal-gamma", "1"], "--focal-gamma applies to --loss focal only"),
])
def test_options_of_another_loss_are_refused_before_the_data_is_read(args, flag):
    """An explicit --loss with an option of another loss was refused only once the table had been read (and on
    a large table, after reading it): the conflict is in the options alone."""
    res = run(["train", "no_such_table.csv", *args])
    assert res.exit_code == 2 and flag in res.output, res.output


def test_a_class_of_one_patient_is_named_before_the_validation_share(tmp_path):
    """Three patients, class B in one of them: train said "3 groups are too few for --val-size 0.2 ... use
    --val-size 0.33", an option the user never gave and a value that fails too; the class is the reason."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = [{"sample_id": f"{p}_{k}", "patient_id": p, "label": label, **{f"g{j}": rng.normal() for j in range(12)}}
            for p, label in (("P1", "A"), ("P2", "B"), ("P3", "A")) for k in range(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    res = run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp"), "--epochs", "2"])
    assert res.exit_code == 1 and "class 'B' has 4 samples, all from 1 group in 'patient_id'" in res.output
    assert "--val-size" not in res.output.splitlines()[-1]
