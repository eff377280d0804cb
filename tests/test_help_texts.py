"""What the --help texts say: every example they show runs, and what a help text says an option does is what the
command does."""

import re
import shlex

import pytest

from mlpcli.interrupts import STOP_SIGNAL_NAMES
from cli_helpers import assert_clean_error, run
from tables import make_table


def test_cv_help_does_not_promise_stratification_or_coverage_to_every_task():
    """`cv --help` said "grouped, stratified K-fold" and "StratifiedGroupKFold" for every target, and that
    --leave-batch-out reports coverage and OOD rates: regression folds are not stratified and get neither."""
    out = " ".join(run(["cv", "--help"]).output.split())  # unwrapped
    assert "stratified for class targets" in out and "GroupKFold for regression" in out
    assert "stratified by class for class targets" in out  # --folds
    assert "(classifiers: also prediction" in out
    assert "for classifiers, the calibration" in out
    assert "grouped, stratified" not in " ".join(run(["--help"]).output.split())  # the command list's summary


# --- 5. classifier-only options say so ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "cv", "tune", "diagnose"])
def test_classifier_only_options_are_marked_in_the_help(command):
    out = " ".join(run([command, "--help"]).output.split())
    for marked in ("--positive TEXT (binary) The positive class", "--calibrate / --no-calibrate (classifiers) ",
                   "--class-weight TEXT (classifiers) ", "--pos-weight FLOAT (binary, multi-label) ",
                   "--focal-gamma FLOAT (binary, multi-label) ", "--focal-alpha FLOAT (binary, multi-label) ",
                   "--label-smoothing FLOAT (classifiers) "):
        if command == "diagnose" and marked.startswith("--calibrate"):
            continue  # diagnose refuses it in either mode: not listed
        assert marked in out, (command, marked)


def test_lr_schedule_help_says_what_each_schedule_does():
    res = run(["train", "--help"])
    text = " ".join(res.output.split())
    assert "plateau: halve the rate" in text and "cosine: anneal it from --lr towards 1e-6" in text


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
def test_diagnose_help_leaves_out_the_train_options_it_always_refuses(trained, option):
    """`diagnose --help` showed --folds, --refit and --calibrate with train's help (an ensemble, a refit, a
    temperature), then marked "Not with --learning-curve"; without it they are refused too ("applies only with
    --learning-curve"), so no use of them works: not listed, and each use refused with its reason."""
    _, data, _, _ = trained
    text = run(["diagnose", "--help"], env={"COLUMNS": "200"}).output
    flag = option.split()[0].replace("--no-", "--")
    assert not re.search(r"^\s+" + re.escape(flag) + r"[\s/]", text, re.M), flag  # no option line (prose may say it)
    assert re.search(r"^\s+--fractions\s", text, re.M)  # (the pattern finds option lines)
    res = run(["diagnose", "--learning-curve", data, *option.split()])
    assert res.exit_code == 2 and "does not apply with --learning-curve" in res.output
    assert run(["diagnose", data, *option.split()]).exit_code == 2


@pytest.mark.parametrize("command", ["cv", "tune"])
def test_cv_and_tune_help_leave_out_val_data_which_they_refuse(trained, command):
    _, data, _, _ = trained
    assert "--val-data" not in run([command, "--help"]).output
    res = run([command, data, "--val-data", data, *(["--grid", "lr=1e-3"] if command == "tune" else [])])
    assert_clean_error(res, "--val-data does not apply here", code=2)


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


def test_tune_member_folds_help_says_it_needs_refit():
    """`tune --member-folds 1` without --refit is a usage error ("add --refit"); its help, train's, did not say so."""
    text = " ".join(run(["tune", "--help"]).output.split())
    assert "--member-folds INTEGER|AUTO With --refit (a usage error without it)" in text
