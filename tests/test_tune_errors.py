"""`tune` as a batch job meets trouble: a setting whose training diverges, the model on standard output, grids too
large or mistaken, and errors that name their outer fold before any fit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, model_io
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError, DataError, OptionError, TrainingError
from mlpcli.model_selection import cross_validation, grid, tuning
from cli_helpers import assert_clean_error, run
from tables import make_table, write_table


ROOT = Path(__file__).resolve().parents[1]


FAST = ["--hidden", "8", "--epochs", "8", "--patience", "4", "--quiet"]


OPTIONS = TrainOptions(hidden=[8], epochs=8, patience=4)


def dataset(n_patients=24):
    df = make_table(n_patients=n_patients)
    return data.Dataset.from_frame(df, data.resolve_roles(df.columns)[0])


def counting(monkeypatch, fail=lambda label: False):
    """Replace the tuning's fits by the real ones, counted; a fit whose label ``fail`` picks diverges."""
    calls = []
    real = cross_validation.fit_and_score

    def fit(ds_, train_rows, test_rows, options, label=()):
        calls.append(label)
        if fail(label):
            raise TrainingError(f"training diverged at epoch 2: simulated for {label}; lower --lr (now {options.lr:g})")
        return real(ds_, train_rows, test_rows, options, label)

    monkeypatch.setattr(cross_validation, "fit_and_score", fit)
    return calls


# ── a setting that diverges ─────────────────────────────────────────────────────────────────────────────────


def test_a_diverging_setting_is_ranked_last_without_a_score_and_never_refitted(tmp_path):
    """`--grid lr=1e-3,50`: the blow-up at lr=50 ended the whole tuning with "training diverged"; now lr=50 is
    ranked last with no mean and its reason, the others are scored, and --refit trains lr=1e-3."""
    path = write_table(tmp_path, n_patients=18)
    results, model = tmp_path / "tuning.csv", tmp_path / "best.mlp"
    res = run(["tune", path, "--optimizer", "adam", "--grid", "lr=1e-3,50", "--folds", "2", "--results", str(results), "--refit",
               "-o", str(model), "--member-folds", "2", *FAST[:-1]])
    assert res.exit_code == 0, res.output
    assert "diverged" in res.output and "1 of 2 settings failed and is ranked last, without a score: lr=50" in res.output
    table = pd.read_csv(results)
    assert list(table["lr"]) == [0.001, 50] and list(table["rank"]) == [1, 2]
    assert table["mean_balanced_accuracy"].notna().tolist() == [True, False]
    assert pd.isna(table["failed"][0]) and "training diverged" in table["failed"][1]
    assert model_io.load(model).config["lr"] == pytest.approx(1e-3)

    res = run(["tune", path, "--optimizer", "adam", "--grid", "lr=1e-3,50", "--folds", "2", "--json", *FAST])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["best"]["setting"] == {"lr": 0.001} and doc["best"]["failed"] is None
    last = doc["points"][1]
    assert last["setting"] == {"lr": 50.0} and last["mean"] is None and "training diverged" in last["failed"]
    assert any("ranked last" in n for n in doc["notes"])


def test_every_setting_diverging_is_one_line_error_and_writes_nothing(tmp_path):
    path = write_table(tmp_path, n_patients=18)
    results, model = tmp_path / "tuning.csv", tmp_path / "best.mlp"
    res = run(["tune", path, "--optimizer", "adam", "--grid", "lr=30,50", "--folds", "2", "--results", str(results), "--refit",
               "-o", str(model), *FAST])
    assert_clean_error(res, "every setting of the grid failed (2 of 2); lr=30: training diverged", code=1)
    assert not results.exists() and not model.exists() and not list(tmp_path.glob(".*.tmp"))


def test_nested_outer_folds_whose_tuning_or_refit_diverged_have_no_score(monkeypatch):
    """Outer fold 1: every setting diverges in its inner tuning; outer fold 2: the chosen setting diverges when
    refitted on the outer training part. Both have no score (said in a warning), the estimate is over fold 3,
    and a setting that failed is never chosen."""
    calls = counting(monkeypatch, lambda label: label[:2] in (("inner", 0), ("outer", 1)))
    res = tuning.tune(dataset(), OPTIONS, grid.parse_grid("lr=1e-3,3e-2"), folds=2, nested=True, outer_folds=3)
    first, second, third = res.nested
    assert first.chosen is None and first.failed.startswith("every setting failed") and all(p.failed for p in first.inner)
    assert not any(c[:2] == ("outer", 0) for c in calls)  # nothing to refit there
    assert second.chosen is not None and "failed when refitted" in second.failed and np.isnan(second.score)
    assert third.failed is None and np.isfinite(third.score)
    assert any("the honest estimate is one network's" in n for n in res.notes)  # not the ensemble --refit ships
    summary = res.nested_summary()
    assert summary["scored"] == 1 and summary["folds"] == 3 and summary["mean"] == pytest.approx(third.score)
    assert sum("has no score" in w for w in res.warnings) == 2
    json.dumps(res.to_dict(), allow_nan=False)  # the --json document stays strict JSON


def test_nested_failures_show_in_the_table(tmp_path, monkeypatch):
    counting(monkeypatch, lambda label: label[:2] == ("inner", 0))
    path = write_table(tmp_path, n_patients=24)
    # --n-jobs 1: the fits in this process, where the failing fit is patched in (worker processes import their own)
    res = run(["tune", path, "--grid", "lr=1e-3,3e-2", "--folds", "2", "--nested", "--outer-folds", "3", "--n-jobs", "1",
               *FAST])
    assert res.exit_code == 0, res.output
    assert "none: every setting failed" in res.output and "over 2 of 3 outer folds" in res.output
    assert "outer fold 1 (--nested) has no score" in res.output


def test_a_refit_that_diverges_names_the_refit_and_writes_nothing(tmp_path, monkeypatch):
    from mlpcli import pipeline

    def diverge(*args, **kwargs):
        raise TrainingError("training diverged at epoch 4: simulated; lower --lr (now 0.001)")

    monkeypatch.setattr(pipeline, "refit_tuned", diverge)
    path = write_table(tmp_path, n_patients=18)
    results, model = tmp_path / "tuning.csv", tmp_path / "best.mlp"
    res = run(["tune", path, "--grid", "lr=1e-3", "--folds", "2", "--results", str(results), "--refit", "-o",
               str(model), *FAST])
    assert_clean_error(res, "--refit of the best setting lr=0.001: training diverged at epoch 4", "no model written")
    assert not results.exists() and not model.exists()


def test_a_stop_during_the_refit_says_the_tuning_it_ends(tmp_path, monkeypatch):
    """SIGTERM during --refit, after every fit of the tuning: "Interrupted by SIGTERM." alone, the ranking lost.
    Nothing is written still (the outputs are all or none), but the stop says the best setting and its score."""
    from mlpcli import pipeline

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "refit_tuned", stopped)
    path = write_table(tmp_path, n_patients=18)
    results, model = tmp_path / "tuning.csv", tmp_path / "best.mlp"
    res = run(["tune", path, "--grid", "lr=1e-3", "--folds", "2", "--results", str(results), "--refit", "-o",
               str(model), *FAST])
    assert res.exit_code == 130, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Interrupted: during --refit; the tuning had ended — best lr=0.001, balanced accuracy ")
    assert "neither the model nor --results was written" in last
    assert not results.exists() and not model.exists()


# ── the model on standard output ────────────────────────────────────────────────────────────────────────────


def test_refit_model_to_standard_output_as_train_does(tmp_path):
    """`tune --refit -o -` wrote a file named '-' and printed the ranked table on standard output; `-o
    /dev/stdout` mixed the table into the model's bytes. Now both put the model alone there (the tables on
    stderr), as `train -o -` does."""
    path = write_table(tmp_path, n_patients=18)
    base = [sys.executable, "-m", "mlpcli", "tune", path, "--grid", "lr=1e-3", "--folds", "2", "--hidden", "4",
            "--epochs", "3", "--refit", "--member-folds", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    dashed = subprocess.run([*base, "-o", "-"], capture_output=True, cwd=tmp_path, env=env, timeout=300)
    assert dashed.returncode == 0, dashed.stderr.decode()
    assert not (tmp_path / "-").exists() and b"Tuning: 1 of 1 grid points" in dashed.stderr
    model = tmp_path / "m.mlp"
    model.write_bytes(dashed.stdout)
    assert model_io.load(model).config["lr"] == pytest.approx(1e-3)
    named = subprocess.run([*base, "-o", "/dev/stdout", "-q"], capture_output=True, cwd=tmp_path, env=env, timeout=300)
    assert named.returncode == 0 and named.stdout == dashed.stdout


@pytest.mark.parametrize("other", [["--json"], ["--results", "-"]])
def test_model_on_standard_output_with_another_stdout_writer_is_refused(tmp_path, other):
    path = write_table(tmp_path, n_patients=18)
    res = run(["tune", path, "--grid", "lr=1e-3", "--folds", "2", "--refit", "-o", "-", *other, *FAST])
    assert_clean_error(res, "-o and", "would both write to standard output", code=2)
    assert not (tmp_path / "-").exists()


# ── grids ───────────────────────────────────────────────────────────────────────────────────────────────────

BIG = "lr=.01,.02,.03,.04,.05,.06,.07,.08,.09,.1; l2=1,2,3,4,5,6,7,8,9,10; dropout=0,.1,.2,.3,.4,.5,.6,.7,.8,.9; " \
      "batch-size=1,2,3,4,5,6,7,8,9,10; patience=1,2,3,4,5,6,7,8,9,10"


@pytest.mark.parametrize("extra, needle", [
    ([], "--grid has 100,000 points, more than the 10,000 settings one tuning evaluates"),
    (["--random", "20000"], "--random 20000 is more than the 10,000 settings"),
])
def test_a_grid_too_large_is_refused_before_the_data_is_read(tmp_path, extra, needle):
    """A grid of 10 values for each of 7 options never started: listing its 10^7 points ran for ever."""
    res = run(["tune", str(tmp_path / "not_read.csv"), "--grid", BIG, *extra, *FAST])
    assert_clean_error(res, needle, code=2)


def test_random_points_from_a_grid_beyond_numpy_integers_is_a_clear_error():
    space = {k: list(range(100_000)) for k in ("lr", "l2", "dropout", "momentum")}  # 10^20 points
    with pytest.raises(OptionError, match="too many to draw --random points from"):
        grid.choose_points(space, 2)  # was OverflowError: Python int too large to convert to C long
    with pytest.raises(OptionError, match="more than the 10,000"):
        grid.choose_points({"lr": list(range(10_001))})


@pytest.mark.parametrize("text, needle", [
    ("folds=1,3", "'folds' cannot be tuned: tune's --folds is the CV that scores every setting; the members of "
                  "each model are member-folds"),
    ("member-folds=0", "--grid: member-folds=0: must be >= 1"),  # as the user wrote it
    ("batch_size=0", "--grid: batch_size=0: must be >= 1"),
    ("refit=true", "'refit' cannot be tuned: tune's --refit trains the best setting"),  # not "a column role"
    ("LR=1e-3", "unknown option 'LR' (did you mean 'lr'?)"),
])
def test_grid_key_messages(text, needle):
    with pytest.raises(ConfigError) as exc:
        grid.parse_grid(text)
    assert needle in str(exc.value)


def test_member_folds_is_the_grids_name_for_the_models_members(tmp_path):
    """tune's --folds is its CV, so train's --folds is --member-folds on tune's command line and in --config;
    the grid took "folds" for the members (a user tuning folds=5,10 trained 5- and 10-member ensembles in
    every fold) and refused member-folds."""
    assert grid.parse_grid("member-folds=1,2") == {"folds": [1, 2]}
    path = write_table(tmp_path, n_patients=18)
    results = tmp_path / "tuning.csv"
    res = run(["tune", path, "--grid", "member-folds=1,2", "--folds", "2", "--results", str(results), *FAST[:-1]])
    assert res.exit_code == 0, res.output
    assert "member-folds" in res.output and "one network per fold (as train --folds 1" not in res.output
    table = pd.read_csv(results)
    assert sorted(table["member_folds"]) == [1, 2]
    assert grid.parse_grid("member_folds=" + ",".join(map(str, table["member_folds"])))["folds"]  # round trip


# ── mistakes found before any fit ───────────────────────────────────────────────────────────────────────────


def test_a_grid_value_that_does_not_fit_the_data_is_refused_before_any_fit(monkeypatch):
    """class-weight naming an unknown class (or loss=mse for a class target) failed only when its setting's
    first fit ran, after every fit before it, and named --class-weight rather than --grid."""
    calls = counting(monkeypatch)
    ds = dataset(18)
    with pytest.raises(ConfigError, match=r"--grid: the setting lr=0.001 class-weight=typeA=2,nope=1 does not fit the "
                                          r"data: --class-weight names unknown class 'nope'"):
        tuning.tune(ds, OPTIONS, grid.parse_grid("lr=1e-3,1e-2; class-weight=none|typeA=2,nope=1"), folds=2)
    with pytest.raises(ConfigError, match="--grid: the setting lr=0.001 loss=mse does not fit the data"):
        tuning.tune(ds, OPTIONS, grid.parse_grid("lr=1e-3,1e-2; loss=ce,mse"), folds=2)
    with pytest.raises(ConfigError, match=r"^--loss mse is a regression loss"):  # the command line's own option
        tuning.tune(ds, TrainOptions(hidden=[8], epochs=8, loss="mse"), grid.parse_grid("lr=1e-3,1e-2"), folds=2)
    assert calls == []


def test_a_nested_inner_fold_too_small_names_its_outer_fold_before_any_fit(monkeypatch):
    """An inner training part with one patient of a class failed inside a fit with "class 'typeA' has 3
    samples, all from 1 group", naming neither the outer nor the inner fold."""
    calls = counting(monkeypatch)
    with pytest.raises(DataError, match=r"^outer fold 1 \(--nested\): inner fold \d: class 'type[ABC]' has 1 group"):
        tuning.tune(dataset(18), OPTIONS, grid.parse_grid("lr=1e-3,1e-2"), folds=2, nested=True, outer_folds=2)
    assert calls == []


def test_val_data_is_refused_before_the_data_is_read(tmp_path):
    """--val-data (cv and tune take each fold's early-stopping rows from its training part) was refused only
    after the whole table had been read."""
    path = write_table(tmp_path, n_patients=18)
    res = run(["tune", str(tmp_path / "not_read.csv"), "--grid", "lr=1e-3", "--val-data", path, *FAST])
    assert_clean_error(res, "--val-data does not apply here", code=2)


def test_member_folds_in_a_config_file_without_refit_is_refused_as_on_the_command_line(tmp_path):
    """`member-folds = 3` in --config was accepted and ignored by a tune without --refit (the flag was refused)."""
    config = tmp_path / "run.toml"
    config.write_text("member-folds = 3\n")
    res = run(["tune", str(tmp_path / "never_read.csv"), "--config", str(config), "--grid", "l2=0,1e-3"])
    assert res.exit_code == 2 and "member-folds" in res.output and "--refit" in res.output, res.output


def test_out_in_a_config_file_without_refit_is_refused_as_on_the_command_line(tmp_path):
    """`out = "best.mlp"` in --config was accepted and ignored by a tune without --refit: no model was written, exit 0
    (`-o best.mlp` on the command line was refused)."""
    config = tmp_path / "run.toml"
    config.write_text('out = "best.mlp"\n')
    res = run(["tune", str(tmp_path / "never_read.csv"), "--config", str(config), "--grid", "l2=0,1e-3"])
    assert_clean_error(res, f"out in --config {config} names the model written by --refit; add --refit", code=2)
