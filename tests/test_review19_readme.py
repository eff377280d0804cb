"""Review 19, the README and --help as a newcomer reads them: every example a help text shows runs, and what a
help text says an option does is what the command does."""

from __future__ import annotations

import re
import shlex

import pytest

from cli_helpers import assert_clean_error, run
from mlpcli.interrupts import STOP_SIGNAL_NAMES
from tables import make_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("review19")
    path = root / "train.csv"
    make_table("multiclass", n_patients=40, per_patient=2, n_features=8, seed=2).to_csv(path, index=False)
    model = root / "m.mlp"
    res = run(["train", str(path), "--folds", "1", "--epochs", "3", "--hidden", "4", "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    new = root / "new.csv"
    make_table("multiclass", n_patients=30, per_patient=2, n_features=8, seed=5).to_csv(new, index=False)
    return root, str(path), str(model), str(new)


def test_every_predict_help_example_runs(trained, tmp_path):
    """`predict --help` showed `--coverage 0.9 --ood --abstain-on-empty-set` without `--conformal-score lac`:
    copied as shown it was a usage error (abstention on empty sets is refused with APS, the default)."""
    _, _, model, new = trained
    examples = [line.split("Example:", 1)[1] for line in run(["predict", "--help"]).output.splitlines()
                if "Example:" in line and "new.csv" in line]
    assert examples
    for example in examples:
        args = shlex.split(example.replace("subtypes.mlp", model).replace("new.csv", new)
                           .replace("p.csv", str(tmp_path / "p.csv")))
        res = run(args[1:] + ["-q"])
        assert res.exit_code == 0, (example, res.output)


def test_fail_on_shift_help_says_the_shift_report_is_still_written(trained, tmp_path):
    """The help said "writing no output file", but the --shift-report file is written (the evidence of the
    failure); it also named only the shift levels, not the absent genes that fail it at either level."""
    _, _, model, new = trained
    text = " ".join(run(["predict", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "writing no output file" not in text
    assert "a --shift-report is still written" in text and "0 in every sample" in text
    import pandas as pd

    shifted = pd.read_csv(new)
    features = [c for c in shifted.columns if c.startswith("f")]
    shifted[features] = shifted[features] * 10 + 30
    data, out, report = tmp_path / "shifted.csv", tmp_path / "p.csv", tmp_path / "shift.csv"
    shifted.to_csv(data, index=False)
    res = run(["predict", model, str(data), "-o", str(out), "--fail-on-shift", "--shift-report", str(report)])
    assert_clean_error(res, "reaches --fail-on-shift")
    assert report.exists() and not out.exists()


@pytest.mark.parametrize("option", ["--folds 3", "--refit", "--no-calibrate"])
def test_diagnose_help_marks_the_train_options_the_learning_curve_refuses(trained, option):
    """`diagnose --help` showed --folds, --refit and --calibrate with train's help (an ensemble, a refit, a
    temperature) although --learning-curve refuses each; the help now says so, and they are refused."""
    _, data, _, _ = trained
    text = " ".join(run(["diagnose", "--help"], env={"COLUMNS": "200"}).output.split())
    flag = option.split()[0].replace("--no-", "--")
    assert re.search(re.escape(flag) + r"(?: / --no-\w+| \S+) (?:\(classifiers\) )?Not with --learning-curve", text), flag
    res = run(["diagnose", "--learning-curve", data, *option.split()])
    assert res.exit_code == 2 and "does not apply with --learning-curve" in res.output


def test_diagnose_help_says_what_hidden_auto_and_val_size_do_in_the_learning_curve():
    text = " ".join(run(["diagnose", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "auto, with --learning-curve: one hidden layer of 128" in text
    assert re.search(r"--val-size \S+ --learning-curve: the fixed validation hold", text)


def test_top_level_help_names_every_stop_signal():
    """The README lists SIGUSR1 / SIGUSR2 (sbatch --signal) and SIGXCPU beside SIGTERM and SIGHUP, and exit 138;
    `mlpcli --help` named only SIGTERM and SIGHUP."""
    text = " ".join(run(["--help"], env={"COLUMNS": "200"}).output.split())
    for name in STOP_SIGNAL_NAMES:
        if name != "SIGINT":  # Ctrl-C
            assert name in text, name
    assert "138 SIGUSR1" in text
    train = " ".join(run(["train", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "SIGUSR1 / SIGUSR2" in train and "138" in train
