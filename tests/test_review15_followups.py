"""Review 15 follow-ups: where the fits run ("in this process"), one --n-jobs rule on the command line and in
--config, the BLAS-variable note in every command with --threads, coverage levels printed as given, class names
holding '|', and a calibration temperature stopped at an end of its range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlpcli import data, parallel
from mlpcli.cli.cv import fits_where
from mlpcli.cli.train import member_plan
from mlpcli.config import TrainOptions, read_config_file
from mlpcli.model_selection import fit_model
from mlpcli.parallel import Plan
from cli_helpers import assert_clean_error, run
from tables import make_table, write_table

FAST = ["--hidden", "8", "--epochs", "3"]
NOTE = "OMP_NUM_THREADS=3 is not used"


@pytest.fixture
def no_blas_variables(monkeypatch):
    for name in parallel.BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small classifier with its prediction sets and OOD flags, and a table to predict on."""
    folder = tmp_path_factory.mktemp("followups")
    table = write_table(folder, n_patients=40)
    model = str(folder / "m.mlp")
    res = run(["train", table, "-o", model, "--folds", "2", *FAST, "-q"])
    assert res.exit_code == 0, res.output
    return table, model


# ── 1. "fits in this process" ──────────────────────────────────────────────────────────────────────────


def test_fits_run_in_this_process_on_local_workers_or_on_the_cluster(monkeypatch, no_blas_variables):
    """cv and tune said "4 fits on this process"."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 4)
    assert fits_where(Plan(n_jobs=1)).startswith("in this process, 1 BLAS thread per fit")
    assert fits_where(Plan(n_jobs=2)).startswith("on 2 local worker processes")
    assert fits_where(Plan(backend="dask", n_jobs=None, scheduler="tcp://10.0.0.5:8786")).startswith(
        "on the Dask cluster at tcp://10.0.0.5:8786")


def test_cv_says_its_fits_run_in_this_process(trained, no_blas_variables):
    table, _ = trained
    res = run(["cv", table, "--folds", "2", "--member-folds", "1", *FAST])
    assert res.exit_code == 0, res.output
    assert "2 fits in this process" in res.stderr and "fits on this process" not in res.stderr


# ── 2. one --n-jobs rule ───────────────────────────────────────────────────────────────────────────────


def test_n_jobs_counts_back_from_the_cores_in_a_config_file_as_on_the_command_line(tmp_path, monkeypatch):
    """n_jobs = -2 in --config was refused ("must be -1 or >= 1") while --n-jobs -2 meant all cores but one."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 4)
    cfg = tmp_path / "c.toml"
    cfg.write_text("n-jobs = -2\n")
    assert read_config_file(str(cfg)) == {"n_jobs": -2}
    assert parallel.local_workers(member_plan(-2, None).n_jobs) == 3  # all cores but one, as joblib counts
    for value in (0,):
        cfg.write_text(f"n-jobs = {value}\n")
        with pytest.raises(Exception, match="n-jobs' must"):
            read_config_file(str(cfg))


@pytest.mark.parametrize("command", ["train", "cv", "tune"])
def test_n_jobs_past_the_last_core_is_a_usage_error_naming_the_option(tmp_path, monkeypatch, command):
    """--n-jobs -3 on 2 cores was taken silently (one worker); now refused, as in a config file."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    extra = {"train": ["-o", str(tmp_path / "m.mlp")], "cv": [], "tune": ["--grid", "lr=1e-3"]}[command]
    res = run([command, str(tmp_path / "absent.csv"), "--n-jobs", "-3", *extra])
    assert_clean_error(res, "--n-jobs", "got -3", "-1 to -2", code=2)
    assert "-2 all but one" in " ".join(run([command, "-h"]).output.split())  # the rule, in the help


# ── 3. the BLAS-variable note in train and the other commands with --threads ──────────────────────────


def test_train_and_predict_say_the_blas_variable_note_once(trained, tmp_path, monkeypatch, no_blas_variables):
    """OMP_NUM_THREADS=8 from a batch script was said by cv and tune only; train and predict replaced it
    without a word."""
    table, model = trained
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    res = run(["train", table, "-o", str(tmp_path / "t.mlp"), "--folds", "2", *FAST])
    assert res.exit_code == 0, res.output
    assert res.stderr.count(NOTE) == 1 and f"warning: {NOTE}" not in res.stderr  # a note, not a warning
    quiet = run(["train", table, "-o", str(tmp_path / "t.mlp"), "--folds", "2", *FAST, "-q"])
    assert NOTE not in quiet.stderr
    res = run(["predict", model, table, "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert res.stderr.count(NOTE) == 1
    assert NOTE not in run(["predict", model, table, "-o", str(tmp_path / "p.csv"), "-q"]).stderr


def test_tune_with_refit_says_the_note_once(trained, tmp_path, monkeypatch, no_blas_variables):
    table, _ = trained
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    res = run(["tune", table, "--folds", "2", "--grid", "lr=1e-3", *FAST, "--refit", "--member-folds", "2",
               "-o", str(tmp_path / "t.mlp")])
    assert res.exit_code == 0, res.output
    assert res.stderr.count(NOTE) == 1


# ── 4. coverage and OOD levels as given ───────────────────────────────────────────────────────────────


def test_evaluate_prints_the_coverage_and_ood_levels_as_given(trained):
    """--coverage 0.999999999 was printed as "level 1", --ood-alpha 0.0100000001 as "p < 0.01"."""
    table, model = trained
    res = run(["evaluate", model, table, "--coverage", "0.999999999", "--ood", "--ood-alpha", "0.0100000001"])
    assert res.exit_code == 0, res.output
    assert "at level 0.999999999" in res.stderr and "(p < 0.0100000001)" in res.stderr  # the notes
    text = " ".join(res.stdout.split())
    assert "level 0.999999999 overall" in text
    res = run(["evaluate", model, table, "--ood", "--ood-alpha", "0.0100000001"])
    assert "Out-of-distribution flags (p < 0.0100000001)" in res.stdout


def test_cv_coverage_column_names_the_level_as_given(trained):
    table, _ = trained
    res = run(["cv", table, "--folds", "2", "--member-folds", "1", *FAST, "--coverage", "0.999999999", "-q"])
    assert res.exit_code == 0, res.output
    assert "cov@0.999999999" in res.stdout


# ── 5. a class holding '|' ───────────────────────────────────────────────────────────────────────────


def test_a_class_holding_a_bar_is_a_warning_when_training():
    """predict --coverage refused such a model only after it was trained."""
    df = make_table(n_patients=12)
    df["label"] = df["label"].replace({"typeB": "HER2|ERBB2"})
    roles, _ = data.resolve_roles(df.columns)
    ds = data.Dataset.from_frame(df, roles)
    said = [w for w in ds.warnings if "'HER2|ERBB2'" in w]
    assert len(said) == 1 and "predict --coverage" in said[0]
    plain = data.Dataset.from_frame(make_table(n_patients=12), roles)
    assert not any("'|'" in w for w in plain.warnings)


def test_cv_warns_once_about_a_class_holding_a_bar(tmp_path):
    df = make_table(n_patients=12)
    df["label"] = df["label"].replace({"typeB": "HER2|ERBB2"})
    df.to_csv(tmp_path / "bar.csv", index=False)
    res = run(["cv", str(tmp_path / "bar.csv"), "--folds", "2", "--member-folds", "1", *FAST, "-q"])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("holds '|'") == 1


# ── 6. the temperature at an end of its range ────────────────────────────────────────────────────────


def _noisy(n: int = 100, classes: int = 2) -> data.Dataset:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 10))
    df = pd.DataFrame(X, columns=[f"g{i}" for i in range(10)])
    if classes == 2:
        df["label"] = np.where(X[:, 0] > 0, "a", "b")
    else:
        df["label"] = np.select([X[:, 0] < -0.4, X[:, 0] > 0.4], ["a", "c"], "b")
    roles, _ = data.resolve_roles(df.columns, no_group=True)
    return data.Dataset.from_frame(df, roles)


@pytest.mark.parametrize("options, end, confident", [
    # unscaled features, no hidden layer, 3 epochs: held-out probabilities far too sure (T wants > 3)
    (dict(hidden=[], epochs=3, standardize=False), "top", "overconfident"),
    # strong label smoothing: right but timid (T wants < 1/3)
    (dict(hidden=[], epochs=10, label_smoothing=0.95, lr=0.1), "bottom", "underconfident"),
], ids=["top", "bottom"])
def test_a_temperature_at_an_end_of_its_range_is_noted(options, end, confident):
    ds = _noisy(classes=2 if end == "top" else 3)
    fitted = fit_model(ds, TrainOptions(folds=2, **options))
    said = [n for n in fitted.notes if "of the range calibration fits" in n]
    assert len(said) == 1 and f"at the {end}" in said[0] and f"more {confident}" in said[0]
    assert fitted.model.temperature == pytest.approx(3.0 if end == "top" else 1 / 3, rel=1e-2)


def test_a_temperature_inside_its_range_is_not_noted():
    fitted = fit_model(_noisy(), TrainOptions(folds=2, hidden=[8], epochs=20, l2=1.0))
    assert 1 / 3 * 1.01 < fitted.model.temperature < 3 / 1.01
    assert not any("of the range calibration fits" in n for n in fitted.notes)


def test_the_missing_patient_column_warning_names_the_calibration_too(tmp_path):
    df = make_table(n_patients=12).drop(columns="patient_id")
    df.to_csv(tmp_path / "t.csv", index=False)
    ds, _ = data.load_dataset(str(tmp_path / "t.csv"))
    said = [w for w in ds.warnings if "no 'patient_id'" in w]
    assert len(said) == 1 and "validation is optimistic" in said[0] and "calibrated on it overconfident" in said[0]
