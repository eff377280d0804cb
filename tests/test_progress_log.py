"""What train and cv write to a log while they run: a line at least once a minute, also while members train in
other processes or no fold finishes, and the plan line saying why a large table gets one network."""

import numpy as np
import pandas as pd

from cli_helpers import run
from tables import _labelled


# ── progress of long runs ────────────────────────────────────────────────────────────────────────────────


def test_train_logs_progress_at_least_once_a_minute(tmp_path, monkeypatch):
    """In a log (no terminal) train printed a line per run and every 25 epochs: a wide network on 40,000 cells was
    silent for minutes. Now also whenever a minute has passed since the last line."""
    from mlpcli.cli import train as train_cli

    path = _labelled(tmp_path / "t.csv", ["a", "b"])
    args = ["train", str(path), "--no-group", "--folds", "1", "--hidden", "4", "--epochs", "6", "--patience", "50",
            "-o", str(tmp_path / "m.mlp")]
    quiet = run(args)
    # the first epoch, and the last, which a run that ends between the 25-epoch lines had no line for (a review)
    assert quiet.exit_code == 0 and quiet.output.count("network: epoch") == 2, quiet.output
    assert "network: epoch 6 " in quiet.output and "(its last epoch)" in quiet.output
    monkeypatch.setattr(train_cli.TrainProgress, "SECONDS", 0.0)  # every epoch is a minute later
    chatty = run(args)
    assert chatty.exit_code == 0, chatty.output
    assert [f"network: epoch {k} " in chatty.output for k in range(1, 7)] == [True] * 6, chatty.output
    assert "(its last epoch)" not in chatty.output  # said already


def test_the_plan_line_says_why_a_large_table_gets_one_network(tmp_path):
    rng = np.random.default_rng(5)
    n = 20_001
    frame = pd.DataFrame(rng.normal(size=(n, 3)).astype(np.float32), columns=["g0", "g1", "g2"])
    frame.insert(0, "label", np.where(frame["g0"] > 0, "a", "b"))
    frame.to_parquet(tmp_path / "big.parquet")
    res = run(["train", str(tmp_path / "big.parquet"), "--no-group", "--hidden", "", "--epochs", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    plan = next(line for line in res.output.splitlines() if "training/held out" in line)
    assert "one network, not 5 members: more than 20,000 samples (--folds to choose)" in plan


def test_cv_logs_a_line_while_no_fold_finishes(tmp_path, monkeypatch):
    """`cv` on a wide table printed "3 fits in this process" and then nothing for minutes in a batch job's log."""
    from mlpcli.cli import cv as cv_cli

    monkeypatch.setattr(cv_cli.FitProgress, "SECONDS", 0.05)
    path = _labelled(tmp_path / "t.csv", ["a", "b"], n=80)
    res = run(["cv", str(path), "--no-group", "--folds", "2", "--member-folds", "2", "--hidden", "64", "--epochs", "150",
               "--patience", "150", "--n-jobs", "1"])  # 300 epochs of a network a fold: some tenths of a second
    assert res.exit_code == 0, res.output
    assert "folds: 0/2 done, running for 0 min" in res.output and "folds: 2/2 done" in res.output


def test_train_logs_a_line_a_minute_while_members_train_in_other_processes(capsys, monkeypatch):
    """Members in worker processes report only when each is done: a log said nothing for two minutes."""
    import time

    from mlpcli.cli import train as train_cli

    monkeypatch.setattr(train_cli.TrainProgress, "SECONDS", 0.1)
    with train_cli.TrainProgress(quiet=False) as progress:
        progress({"event": "run_done", "done": 1, "runs": 5})
        time.sleep(0.5)
    err = capsys.readouterr().err
    assert "1/5 networks trained" in err and "still training, 0 min in (last: 1/5 networks trained)" in err
    with train_cli.TrainProgress(quiet=True) as progress:
        time.sleep(0.3)
    assert "still training" not in capsys.readouterr().err
