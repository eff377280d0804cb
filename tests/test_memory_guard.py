"""The memory guard (``fitting.check_memory``) on every path that trains networks: `cv` and `tune` (their
folds side by side: processes x one fit's memory) and the scikit-learn estimators refuse a network that
cannot fit, before any fold starts or anything is allocated, with one line naming what to change."""

from __future__ import annotations

import numpy as np
import pytest

from mlpcli import auto_defaults
from mlpcli.config import TrainOptions
from mlpcli.estimators import MLPClassifier, MLPRegressor
from mlpcli.model_selection.fitting import check_memory
from cli_helpers import assert_clean_error, run
from tables import _labelled, make_table, write_table

ABSURD = "100000000"


def one_line_usage_error(result, *needles):
    """Exit 2 (a usage error: Click's usage lines, then one Error line naming the option)."""
    assert_clean_error(result, *needles, code=2)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and all(n in errors[0] for n in needles), result.output


@pytest.mark.parametrize("args", [
    ["cv", "--folds", "3"],
    ["cv", "--folds", "3", "--n-jobs", "2"],
    ["cv", "--folds", "3", "--repeats", "2", "--member-folds", "1"],
    ["tune", "--grid", "l2=0,1e-4", "--folds", "2"],
    ["tune", "--grid", "l2=0,1e-4", "--folds", "2", "--n-jobs", "2", "--nested", "--outer-folds", "2"],
])
def test_cv_and_tune_refuse_an_absurd_network_before_any_fold(tmp_path, args):
    data = write_table(tmp_path)
    res = run([args[0], data, *args[1:], "--hidden", ABSURD, "-q"])
    one_line_usage_error(res, f"--hidden {ABSURD}", "GB", "available")


def test_tune_refuses_an_absurd_width_in_its_grid(tmp_path):
    data = write_table(tmp_path)
    res = run(["tune", data, "--grid", f"hidden=8|{ABSURD}", "--folds", "2", "--n-jobs", "2", "-q"])
    one_line_usage_error(res, f"--hidden {ABSURD}", "GB")


@pytest.mark.parametrize("command", ["cv", "tune"])
def test_folds_side_by_side_are_refused_when_together_they_cannot_fit(tmp_path, command):
    """One fit fits in the job's memory (SLURM's --mem here), two at once do not: --n-jobs is named."""
    data = write_table(tmp_path)  # 120 rows: each fold trains on fewer

    def need(width: int, n_rows: int) -> int:
        return check_memory(auto_defaults.resolve(TrainOptions(hidden=[width]), n_rows), 12, 3, n_rows,
                            available=1 << 62)["total"]

    width = 100_000
    largest, smallest = need(width, 120), need(width, 40)  # any fit of the table needs between the two
    assert 2 * smallest > largest
    limit_mb = (largest + 2 * smallest) // 2 >> 20  # room for one fit, not for two
    extra = ["--grid", "l2=0,1e-4"] if command == "tune" else ["--member-folds", "1"]
    res = run([command, data, "--folds", "3", *extra, "--hidden", str(width), "--epochs", "1", "--n-jobs", "2", "-q"],
              env={"SLURM_MEM_PER_NODE": str(limit_mb)})
    one_line_usage_error(res, "--n-jobs: 2 networks trained at once", "each", "available", "train fewer at once")


@pytest.mark.parametrize("command", ["cv", "tune", "train"])
def test_without_n_jobs_the_fits_run_as_many_at_once_as_the_memory_holds(tmp_path, command, monkeypatch):
    """The default plan (the usable cores, no --n-jobs) where one fit fits in the job's memory and two do not: the
    fits run one at a time, with a note, where an --n-jobs given is refused (above)."""
    from mlpcli import parallel

    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    data = write_table(tmp_path)

    def need(width: int, n_rows: int) -> int:
        return check_memory(auto_defaults.resolve(TrainOptions(hidden=[width]), n_rows), 12, 3, n_rows,
                            available=1 << 62)["total"]

    width = 100_000
    largest, smallest = need(width, 120), need(width, 40)
    limit_mb = (largest + 2 * smallest) // 2 >> 20  # room for one fit, not for two
    extra = {"tune": ["--grid", "l2=0,1e-4"], "cv": ["--member-folds", "1"], "train": ["-o", str(tmp_path / "m.mlp")]}
    res = run([command, data, "--folds", "3", *extra[command], "--hidden", str(width), "--epochs", "1"],
              env={"SLURM_MEM_PER_NODE": str(limit_mb)})
    assert res.exit_code == 0, res.output
    assert "the fits ran one at a time, not 2: more side by side would not fit in the memory available" in \
        " ".join(res.output.split())


@pytest.mark.parametrize("estimator", [MLPClassifier(hidden=(int(ABSURD),)), MLPRegressor(hidden=int(ABSURD)),
                                       MLPClassifier(hidden=(40_000, 40_000))])
def test_the_estimators_refuse_a_network_that_cannot_fit(estimator):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = np.arange(40) % 2 if isinstance(estimator, MLPClassifier) else rng.normal(size=40)
    with pytest.raises(ValueError, match=rf"^{type(estimator).__name__}: hidden [0-9,]+ needs ~[0-9.]+ GB .*available$"):
        estimator.fit(X, y)
    assert not hasattr(estimator, "network_")


def test_the_estimators_still_fit_a_network_that_fits():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    model = MLPClassifier(hidden=(8,), epochs=3).fit(X, np.arange(40) % 2)
    assert model.predict(X).shape == (40,)


@pytest.mark.parametrize("error", [RuntimeError("can't start new thread"),
                                   ImportError("libx.so: failed to map segment from shared object"),
                                   OSError(12, "Cannot allocate memory")])
def test_memory_running_out_in_other_guises_is_the_out_of_memory_error(tmp_path, monkeypatch, error):
    """Under `ulimit -v` a thread's stack or a library's mapping fails first: "internal error (RuntimeError: can't
    start new thread)" instead of the out-of-memory message a MemoryError gets."""
    from mlpcli import pipeline

    make_table("multiclass", n_patients=20).to_csv(tmp_path / "t.csv", index=False)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipeline, "train_dataset", fail)
    assert_clean_error(run(["train", str(tmp_path / "t.csv"), "-o", str(tmp_path / "m.mlp")]),
                       "out of memory: the job's memory limit")


# ── out of memory, at scale ──────────────────────────────────────────────────────────────────────────────


def test_every_command_that_can_run_out_of_memory_names_its_own_remedies():
    """The error named --chunk-mb to train and --hidden, --batch-size, --top-var and --chunk-mb to explain, options
    neither has."""
    import click

    from mlpcli.cli import cli
    from mlpcli.cli.exits import MEMORY_REMEDIES

    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        remedy = MEMORY_REMEDIES.get(command.callback.__name__)
        if name == "info":
            continue
        assert remedy is not None, name
        offered = {p.opts[0] for p in command.params if p.opts and p.opts[0].startswith("--")}
        for option in {w.strip("(),;:") for w in remedy.split() if w.startswith(("--", "(--"))}:
            assert option in offered, (name, option)


def test_train_out_of_memory_names_train_options(tmp_path, monkeypatch):
    from mlpcli import pipeline

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(pipeline, "train_dataset", no_memory)
    _labelled(tmp_path / "t.csv", ["a", "b"])
    res = run(["train", str(tmp_path / "t.csv"), "--no-group", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1 and "out of memory" in res.output, res.output
    assert "--n-jobs 1" in res.output and "--chunk-mb" not in res.output
