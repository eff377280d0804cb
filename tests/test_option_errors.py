"""Option values out of range are usage errors (exit 2) naming the option, in every command; a network that
cannot fit in memory is refused before anything is allocated, with the figure."""

from __future__ import annotations

import json
import os

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli.cli import all_commands, cli
from mlpcli.config import TrainOptions, check_unused, flag_name, option_fields
from mlpcli.auto_defaults import resolve
from mlpcli.data import class_weights
from mlpcli.errors import ConfigError, OptionError
from mlpcli.estimators import MLPClassifier
from mlpcli.model_selection.fitting import check_memory
from mlpcli.resources import available_memory
from mlpcli.training import FitConfig, fit_memory
from cli_helpers import assert_clean_error, run, write_tenx
from tables import SAMPLE, write_table

# How each command that trains is called; ``cv`` and ``tune`` call train's --folds --member-folds.
TRAINING_COMMANDS = {
    "train": (["train", "data.csv"], {}),
    "cv": (["cv", "data.csv"], {"folds": "--member-folds"}),
    "tune": (["tune", "data.csv", "--grid", "lr=1e-3"], {"folds": "--member-folds"}),
    "diagnose": (["diagnose", "--learning-curve", "data.csv"], {}),
}


def _outside(meta: dict) -> list[str]:
    """Values just outside a declared range, as command-line text."""
    low, high, integer = meta["low"], meta["high"], meta["kind"] == "int"
    values = []
    if low is not None:
        values.append(str(int(low) if integer else low) if meta["low_open"] else str(int(low) - 1 if integer else low - 0.5))
    if high is not None:
        values.append(str(high) if meta["high_open"] else str(int(high) + 1 if integer else high + 0.5))
    if integer:
        values.append("3.7")
    return values


RANGE_CASES = [(name, f.name, value) for name in TRAINING_COMMANDS for f in option_fields()
               if f.metadata["kind"] in ("int", "float") for value in _outside(f.metadata)]


@pytest.mark.parametrize("command, field, value", RANGE_CASES)
def test_every_declared_range_boundary_is_a_usage_error_naming_the_flag(command, field, value):
    args, rename = TRAINING_COMMANDS[command]
    flag = rename.get(field, flag_name(field))
    res = run([*args, flag, value])
    assert_clean_error(res, flag, code=2)


@pytest.mark.parametrize("command", list(TRAINING_COMMANDS))
@pytest.mark.parametrize("flag, value", [("--hidden", "8,,8"), ("--hidden", "0"), ("--hidden", "8,-1"), ("--seed", "-1"),
                                         ("--val-size", "1"), ("--dropout", "1.0"), ("--lr", "0"), ("--l2", "-1"),
                                         ("--epochs", "0"), ("--batch-size", "0"), ("--patience", "0"),
                                         ("--lr", "nan"), ("--lr", "inf")])
def test_the_issues_examples(command, flag, value):
    args, _ = TRAINING_COMMANDS[command]
    res = run([*args, flag, value])
    assert_clean_error(res, flag, code=2)
    other = [f for f in ("--val-size", "--seed", "--hidden") if f != flag]
    assert not any(f in res.output.splitlines()[-1] for f in other), res.output  # blames the right option


def _range_params():
    """Every Click option of every command with a numeric range, and a value outside it."""
    for name, command in all_commands().items():
        for p in command.params:
            if not isinstance(p, click.Option) or not isinstance(p.type, (click.IntRange, click.FloatRange)):
                continue
            t = p.type
            integer = isinstance(t, click.IntRange)
            if t.min is not None:
                yield name, p.opts[0], str(t.min if t.min_open else (t.min - 1 if integer else t.min - 0.5))
            if t.max is not None:
                yield name, p.opts[0], str(t.max if t.max_open else (t.max + 1 if integer else t.max + 0.5))


ARGS = {"predict": ["m.mlp", "data.csv"], "evaluate": ["m.mlp", "data.csv"], "train": ["data.csv"],
        "cv": ["data.csv"], "tune": ["data.csv", "--grid", "lr=1e-3"], "diagnose": ["--learning-curve", "data.csv"],
        "gradcheck": [], "info": ["m.mlp"], "explain": ["m.mlp", "data.csv"],
        "recalibrate": ["m.mlp", "data.csv", "-o", "new.mlp"]}


@pytest.mark.parametrize("command, flag, value", list(_range_params()))
def test_every_click_range_of_every_command(command, flag, value):
    res = run([command, *ARGS[command], flag, value])
    assert_clean_error(res, flag, code=2)


def test_the_command_list_is_covered():
    assert set(ARGS) == set(all_commands())
    names = {(c, f) for c, f, _ in _range_params()}
    for expected in [("predict", "--chunksize"), ("predict", "--threshold"), ("evaluate", "--threshold"),
                     ("evaluate", "--seed"), ("gradcheck", "--seed"), ("cv", "--folds"), ("tune", "--top")]:
        assert expected in names


@pytest.mark.parametrize("args, flag", [
    (["tune", "DATA", "--grid", "lr=0"], "--grid"),
    (["tune", "DATA", "--grid", "hidden=8,,8"], "--grid"),
    (["tune", "DATA", "--grid", "dropout=0.2,1.5"], "--grid"),
    (["diagnose", "--learning-curve", "DATA", "--fractions", "0,2"], "--fractions"),
    (["diagnose", "--learning-curve", "DATA", "--n-jobs", "0"], "--n-jobs"),
    (["train", "DATA", "--n-jobs", "0"], "--n-jobs"),
    (["cv", "DATA", "--n-jobs", "0"], "--n-jobs"),
    (["train", "DATA", "--val-data", "DATA", "--refit"], "--refit"),  # it was ignored silently
    (["tune", "DATA", "--grid", "lr=1e-3", "--val-data", "DATA"], "--val-data"),
    (["evaluate", "MODEL", "DATA", "--seed", "5"], "--bootstrap"),  # it seeds nothing without resamples: was silent
])
def test_other_option_values_are_usage_errors_too(tmp_path, args, flag):
    table = write_table(tmp_path)
    model = str(tmp_path / "absent.mlp")  # usage errors come before the model is read
    res = run([table if a == "DATA" else model if a == "MODEL" else a for a in args])
    assert_clean_error(res, flag, code=2)


@pytest.mark.parametrize("command", list(TRAINING_COMMANDS))
def test_a_one_column_task_with_several_targets_is_a_usage_error(tmp_path, command):
    """--task binary (or multiclass) with several --target columns contradicts itself whatever the table holds; it
    was a data error (exit 1) raised once the table had been read."""
    args, _ = TRAINING_COMMANDS[command]
    table = write_table(tmp_path)
    res = run([table if a == "data.csv" else a for a in args] + ["--task", "binary", "--target", "label,batch"])
    assert_clean_error(res, "--task binary takes one --target column, got 2 ('label', 'batch')", code=2)


@pytest.mark.parametrize("args, flag, advice", [
    (["train", "DATA", "--optimizer", "adam", "--weight-decay", "0.1"], "--weight-decay", "--l2"),
    (["train", "DATA", "--optimizer", "sgd", "--weight-decay", "0.1"], "--weight-decay", "--l2"),
    (["train", "DATA", "--momentum", "0.5"], "--momentum", "adamw"),  # the default optimizer ignores it
    (["cv", "DATA", "--optimizer", "sgd", "--adam-beta2", "0.9"], "--adam-beta2", "sgd"),
    (["diagnose", "--learning-curve", "DATA", "--optimizer", "adam", "--weight-decay", "2"], "--weight-decay", "adam"),
    (["tune", "DATA", "--optimizer", "adam", "--grid", "weight_decay=0.1,1"], "--grid: weight-decay", "adam"),
    (["tune", "DATA", "--grid", "optimizer=adam,sgd", "--weight-decay", "0.2"], "--weight-decay", "adam or sgd"),
])
def test_an_option_the_optimizer_never_reads_is_a_usage_error(tmp_path, args, flag, advice):
    """--optimizer adam --weight-decay 0.1 trained exactly as without the decay, and said nothing."""
    table = write_table(tmp_path)
    res = run([table if a == "DATA" else a for a in args])
    assert_clean_error(res, flag, advice, code=2)


def test_an_option_the_optimizer_never_reads_is_refused_from_a_config_file_too(tmp_path):
    table = write_table(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text('optimizer = "sgd"\nweight_decay = 0.3\n')
    assert_clean_error(run(["train", table, "--config", str(config)]), "--weight-decay", code=2)
    # the flag wins over the file, and with it the option applies
    res = run(["train", table, "--config", str(config), "--optimizer", "adamw", "--epochs", "2", "--folds", "1",
               "--hidden", "4", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("args", [
    ["--optimizer", "sgd", "--momentum", "0.5"],
    ["--weight-decay", "0.5"],  # adamw, the default, reads it
    ["--optimizer", "adam", "--adam-beta2", "0.99"],
])
def test_options_the_optimizer_reads_are_accepted(tmp_path, args):
    table = write_table(tmp_path)
    res = run(["train", table, *args, "--epochs", "2", "--folds", "1", "--hidden", "4", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output


def test_a_grid_that_tries_an_optimizer_reading_the_option_is_accepted(tmp_path):
    table = write_table(tmp_path)
    res = run(["tune", table, "--grid", "optimizer=adamw,sgd", "--momentum", "0.5", "--weight-decay", "0.2",
               "--epochs", "2", "--hidden", "4", "--folds", "2"])
    assert res.exit_code == 0, res.output


# ── memory ───────────────────────────────────────────────────────────────────────────────────────────────


def test_available_memory_honours_slurm(monkeypatch):
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "1024")
    assert available_memory() == 1024 * 1024 * 1024
    monkeypatch.delenv("SLURM_MEM_PER_NODE")
    assert available_memory() > 1024 * 1024 * 1024


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_available_memory_reads_the_jobs_own_cgroup(tmp_path, monkeypatch, version):
    """A batch job's limit sits on its own cgroup, below the root (which has none): it was not read, so a
    job with 2 GiB was treated as having the machine's RAM."""
    from mlpcli import resources

    limit = 2 * 1024 ** 3
    if version == "v2":
        (tmp_path / "memory.max").write_text("max\n")
        job = tmp_path / "slurm" / "uid_1" / "job_42"
        job.mkdir(parents=True)
        (job / "memory.max").write_text(f"{limit}\n")
        (tmp_path / "slurm" / "memory.max").write_text("max\n")
        line = "0::/slurm/uid_1/job_42/step_0\n"  # the step's cgroup has no limit of its own: the job's counts
    else:
        job = tmp_path / "memory" / "slurm" / "job_42"
        job.mkdir(parents=True)
        (job / "memory.limit_in_bytes").write_text(f"{limit}\n")
        (tmp_path / "memory" / "memory.limit_in_bytes").write_text(f"{1 << 62}\n")
        line = "12:cpuset:/slurm/job_42\n5:memory:/slurm/job_42\n"
    proc = tmp_path / "cgroup"
    proc.write_text(line)
    monkeypatch.setattr(resources, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(resources, "PROC_CGROUP", str(proc))
    monkeypatch.delenv("SLURM_MEM_PER_NODE", raising=False)
    monkeypatch.delenv("SLURM_MEM_PER_CPU", raising=False)
    assert available_memory() == limit


def test_available_memory_honours_slurm_memory_per_cpu(monkeypatch):
    """--mem-per-cpu sets SLURM_MEM_PER_CPU, not SLURM_MEM_PER_NODE: the job has it times its CPUs."""
    monkeypatch.delenv("SLURM_MEM_PER_NODE", raising=False)
    monkeypatch.setenv("SLURM_MEM_PER_CPU", "512")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "2")
    assert available_memory() == 1024 * 1024 * 1024


def test_an_address_space_limit_too_small_for_the_network_is_one_line(tmp_path):
    """A network too large for `ulimit -v` failed mid-run with "internal error (MemoryError)"; it is the
    one-line out-of-memory error naming the remedies (the limit is per process and counts reserved address
    space, so the guard does not try to foresee it)."""
    import resource
    import subprocess
    import sys

    table = write_table(tmp_path)
    limit = 3 * 1024 ** 3

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    res = subprocess.run([sys.executable, "-m", "mlpcli", "train", table, "--hidden", "12000,12000", "--folds", "1",
                          "-o", str(tmp_path / "m.mlp")], cwd=tmp_path, preexec_fn=limited, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 1 and "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    assert "out of memory" in res.stderr and "ulimit -v" in res.stderr
    assert not (tmp_path / "m.mlp").exists()


def test_fit_memory_counts_adam_state_and_activations():
    adam = fit_memory(100, [50], 3, FitConfig(optimizer="adam", batch_size=32), 1000)
    sgd = fit_memory(100, [50], 3, FitConfig(optimizer="sgd", momentum=0.0, batch_size=32), 1000)
    n_params = 100 * 50 + 50 + 50 * 3 + 3
    assert adam["parameters"] - sgd["parameters"] == 2 * 4 * n_params  # m and v in float32
    assert fit_memory(100, [50], 3, FitConfig(batch_size=64), 1000)["activations"] > adam["activations"]
    assert adam["total"] == adam["parameters"] + adam["activations"]


def _options(**kw) -> TrainOptions:
    return resolve(TrainOptions(**kw), 1000)


def test_check_memory_names_the_option_and_the_figures():
    with pytest.raises(OptionError, match=r"--hidden 100000000 needs ~\d+.* GB for the network .*; 8 GB available"):
        check_memory(_options(hidden=[100_000_000]), 2000, 3, 1000, available=8 * 10**9)
    with pytest.raises(OptionError, match=r"--batch-size 4096 needs"):  # fits with smaller batches
        check_memory(_options(hidden=[20_000], batch_size=4096), 50, 3, 100_000, available=2 * 10**9)
    with pytest.raises(OptionError, match=r"--n-jobs: 4 networks trained at once"):
        need = check_memory(_options(hidden=[1000]), 2000, 3, 1000, available=10**12)["total"]
        check_memory(_options(hidden=[1000]), 2000, 3, 1000, processes=4, available=3 * need)
    check_memory(_options(hidden=[128]), 2000, 3, 1000, available=10**9)  # an ordinary network passes


@pytest.mark.parametrize("extra", [["--folds", "1"], ["--folds", "3", "--n-jobs", "1"], ["--folds", "3", "--n-jobs", "2"]])
def test_train_refuses_a_network_that_cannot_fit_before_allocating_it(tmp_path, extra):
    table = write_table(tmp_path)
    out = tmp_path / "m.mlp"
    res = run(["train", table, "-o", str(out), "--hidden", "100000000", *extra])
    assert_clean_error(res, "--hidden 100000000 needs ~", "GB available", code=2)
    assert not out.exists()


def test_cv_and_learning_curve_refuse_it_too(tmp_path):
    table = write_table(tmp_path)
    assert_clean_error(run(["cv", table, "--hidden", "100000000"]), "--hidden 100000000 needs", code=2)
    assert_clean_error(run(["diagnose", "--learning-curve", table, "--hidden", "64,100000000"]),
                       "--hidden 64,100000000 needs", code=2)


def test_running_out_of_memory_midway_is_one_line_naming_the_remedies(tmp_path, monkeypatch):
    """A MemoryError the guard could not foresee (another process took the memory) was an "internal error"."""
    from mlpcli import model_io

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(model_io, "load", exhausted)
    res = run(["info", str(tmp_path / "m.mlp")])
    assert_clean_error(res, "out of memory", "ulimit -v", "make the run smaller")
    assert "internal error" not in res.output
    assert "--hidden" not in res.output  # (info has no such option: each command names its own, MEMORY_REMEDIES)


def test_outputs_that_name_an_input_or_each_other_are_usage_errors(tmp_path, monkeypatch):
    """`predict m.mlp data.csv -o data.csv` replaced the table with its predictions (exit 0), and two outputs
    on one file left only the last; both are usage errors now, before any work."""
    table = write_table(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text("epochs = 2\n")
    model = tmp_path / "m.mlp"
    assert run(["train", table, "-o", str(model), "--hidden", "4", "--epochs", "2", "--folds", "1", "-q"]).exit_code == 0
    before = open(table, "rb").read()
    name = os.path.basename(table)
    for args, needle in (
        (["predict", str(model), table, "-o", f"./{name}"], "is also the input DATA"),
        (["predict", str(model), table, "-o", "p.csv", "--shift-report", "p.csv"], "is also --out's file"),
        (["evaluate", str(model), table, "--plot", "m.mlp"], "is also the input MODEL"),
        (["train", table, "--history", "h.csv", "--oof", "./h.csv", "-o", "n.mlp"], "is also --history's file"),
        (["cv", table, "--oof", table], "is also the input DATA"),
        (["train", table, "--config", "run.toml", "-o", "run.toml"], "is also the input --config"),
        (["explain", str(model), table, "-o", "g.csv", "--plot", "g.csv"], None),
    ):
        res = run(args)
        assert res.exit_code == 2, (args, res.output)
        assert "one would replace the other" in res.output and (needle is None or needle in res.output), res.output
    assert open(table, "rb").read() == before and not (tmp_path / "n.mlp").exists()
    res = run(["train", table, "-o", os.devnull, "--history", "h2.csv", "--oof", "o2.csv", "--hidden", "4",
               "--epochs", "2", "--folds", "1", "-q"])
    assert res.exit_code == 0, res.output  # a device is written into, never replaced
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "h.csv").exists()


@pytest.mark.parametrize("command, flag", [("train", "--samples"), ("train", "--layer"), ("train", "--var-names"),
                                           ("train", "--id"), ("predict", "--samples"), ("predict", "--layer"),
                                           ("predict", "--var-names")])
def test_an_empty_name_is_a_usage_error_not_the_option_left_out(tmp_path, command, flag):
    """`--samples "$SHEET"` with the variable unset ran without the sheet, and `--layer ''` read .X (predict's
    --id is looked up in the table: '' is "not found" there)."""
    args = [command, *(["model.mlp"] if command == "predict" else []), str(tmp_path / "t.csv"), flag, ""]
    res = run(args)
    assert res.exit_code == 2 and "an empty value" in res.output and flag in res.output, res.output


def test_help_names_the_flags_as_the_command_has_them():
    """cv's and tune's --help said --val-size applies "with --folds 1", their CV's --folds; train's is
    --member-folds there. The role options of explain and gradcheck were described as predict's and evaluate's."""
    for command in ("cv", "tune"):
        text = " ".join(run([command, "--help"]).output.split())
        assert "with --member-folds 1" in text and "with --folds 1" not in text
    assert "with --folds 1" in " ".join(run(["train", "--help"]).output.split())
    text = " ".join(run(["explain", "--help"]).output.split())
    assert "evaluate reads the true labels there, predict ignores it" not in text


# ── 2. non-finite option values are usage errors ─────────────────────────────────────────────────────────


@pytest.mark.parametrize("command, option", [
    ("predict", "--threshold"), ("evaluate", "--threshold"), ("predict", "--max-missing"),
    ("predict", "--coverage"), ("predict", "--min-confidence"), ("evaluate", "--ood-alpha"),
    ("explain", "--tol"), ("explain", "--max-missing"),
])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_option_values_are_usage_errors(tiny, command, option, value):
    """predict --threshold nan exited 1 (the library's check), explain --tol nan failed the completeness check
    and --tol inf switched it off."""
    model, data = tiny["binary"]
    res = run([command, model, data, option, value])
    if value == "inf" and option not in ("--tol",):  # a FloatRange bound refuses inf already
        assert res.exit_code == 2, res.output
        return
    assert_clean_error(res, option, code=2)
    if value == "nan" or option == "--tol":
        assert "is not a finite number" in res.output


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


def test_class_weight_pairs_with_another_separator_say_to_use_commas():
    y = np.array([0, 0, 1, 2])
    with pytest.raises(ConfigError, match=r"unknown class 'A=1;B' \(pairs are separated by commas"):
        class_weights(y, 3, "A=1;B=2", ["A", "B", "C"])
    with pytest.raises(ConfigError, match=r"unknown class 'D'; valid labels: 'A', 'B', 'C'$"):
        class_weights(y, 3, "D=2", ["A", "B", "C"])
    assert class_weights(y, 3, "C=4", ["A", "B", "C"]).tolist() == [1.0, 1.0, 4.0]


FAST = ["--epochs", "2", "--no-group"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(4)])
    df["label"] = np.where(X[:, 0] > 0, "A", "B")
    path = tmp_path_factory.mktemp("options") / "t.csv"
    df.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("args, needles", [
    (["--no-standardize", "--scaling", "standard"], ["--scaling", "--no-standardize"]),
    (["--no-standardize", "--scaling", "robust"], ["--scaling", "--no-standardize"]),  # the default, given
    (["--folds", "3", "--val-size", "0.3"], ["--val-size", "--folds 3", "--folds 1"]),
    (["--folds", "1", "--val-data", "{table}", "--val-size", "0.3"], ["--val-size", "--val-data"]),
    (["--hidden", "none", "--dropout", "0.5"], ["--dropout", "--hidden none"]),
    (["--hidden", "", "--batchnorm"], ["--batchnorm", "--hidden none"]),
    (["--hidden", "none", "--activation", "tanh"], ["--activation", "--hidden none"]),
    (["--task", "regression", "--calibrate"], ["--calibrate", "--task regression"]),
    (["--task", "regression", "--class-weight", "balanced"], ["--class-weight", "--task regression"]),
    (["--task", "regression", "--class-weight", "None", "--calibrate"], ["--calibrate"]),  # "none" in any case: fine
    (["--task", "multiclass", "--positive", "A"], ["--positive", "multiclass"]),
    (["--optimizer", "adam", "--momentum", "0.5"], ["--momentum", "--optimizer sgd"]),
], ids=["scaling-standard", "scaling-default", "val-size-folds", "val-size-val-data", "dropout", "batchnorm",
        "activation", "calibrate", "class-weight", "class-weight-none", "positive", "momentum"])
def test_moot_option_is_a_usage_error_naming_both(table, args, needles):
    args = [a.replace("{table}", table) for a in args]
    assert_clean_error(run(["train", table, *FAST, *args]), *needles, code=2)


def test_values_that_ask_for_nothing_go_with_no_hidden_layer(table, tmp_path):
    """--dropout 0 and --no-batchnorm say what softmax regression does anyway: accepted (and so is the
    default --scaling left unsaid with --no-standardize)."""
    out = tmp_path / "m.mlp"
    res = run(["train", table, *FAST, "--folds", "1", "--hidden", "none", "--dropout", "0", "--no-batchnorm",
               "--no-standardize", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert out.exists()


def test_cv_names_its_member_folds(table):
    res = run(["cv", table, *FAST, "--folds", "2", "--member-folds", "3", "--val-size", "0.3"])
    assert_clean_error(res, "--val-size", "--member-folds 3", code=2)


def test_val_size_with_folds_auto_says_it_had_no_effect(table, tmp_path):
    """--folds auto chose an ensemble: --val-size splits nothing, which a note says (it may still apply above
    20,000 samples, so it is not refused)."""
    res = run(["train", table, *FAST, "--hidden", "none", "--val-size", "0.3", "--json",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert any(n.startswith("--val-size 0.3 had no effect: --folds auto trained 5") for n in notes), notes


def _config(tmp_path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text + 'epochs = 2\nhidden = "none"\nno-group = true\n')
    return str(path)


def test_flag_makes_config_value_moot_and_it_is_dropped(table, tmp_path):
    """A lab's config file with scaling, dropout, val-size and momentum; a run with --no-standardize, --hidden
    none, --folds 2 and --optimizer adam: the flags win, the file's values they make moot are dropped."""
    cfg = _config(tmp_path, 'scaling = "standard"\ndropout = 0.4\nval-size = 0.3\nmomentum = 0.5\n')
    res = run(["train", table, "--config", cfg, "--no-standardize", "--hidden", "none", "--folds", "2",
               "--optimizer", "adam", "-o", str(tmp_path / "m.mlp"), "-q"])
    assert res.exit_code == 0, res.output
    # each dropped value said, under -q too: the model is not what the file says (it was silent)
    dropped = [line for line in res.output.splitlines() if "not used, as" in line]
    assert all(line.startswith(f"warning: --config {cfg}: ") for line in dropped), dropped
    assert {line.split(": ")[2].split(" =")[0] for line in dropped} == {"scaling", "dropout", "val-size", "momentum"}
    assert any("momentum = 0.5 not used, as --optimizer on the command line" in line for line in dropped)


def test_config_contradiction_names_the_file_and_its_values(table, tmp_path):
    cfg = _config(tmp_path, "standardize = false\n")
    res = run(["train", table, "--config", cfg, "--scaling", "standard"])
    assert_clean_error(res, "--scaling", "--no-standardize", f"--config {cfg}: standardize = false", code=2)


@pytest.mark.parametrize("key, flags, strategy", [
    # the file's validation table stays with --folds 1, which it needs (it was dropped: a random 20 % split instead)
    ('val-data = "{table}"', ["--folds", "1"], "explicit validation table"),
    # --folds 1 in the file stays with --no-refit (it was dropped: a 5-member ensemble instead of one network)
    ("folds = 1", ["--no-refit"], "StratifiedShuffleSplit"),
])
def test_config_value_that_agrees_with_the_flag_is_kept(table, tmp_path, key, flags, strategy):
    cfg = _config(tmp_path, key.replace("{table}", table) + "\n")
    res = run(["train", table, "--config", cfg, *flags, "--json", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["split"]["strategy"].startswith(strategy)


def test_config_refit_stays_with_folds_flag(table, tmp_path):
    cfg = _config(tmp_path, "refit = true\n")
    res = run(["train", table, "--config", cfg, "--folds", "2", "--json", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["fit"]["refit_epochs"] is not None


def test_library_rule_and_grids():
    """The rule is TrainOptions.validate's for the options given; without them (a tuning grid's settings, the
    estimators) nothing is refused, and a grid is refused only when none of its settings reads the option."""
    moot = TrainOptions(standardize=False, scaling="standard")
    moot.validate()
    with pytest.raises(ConfigError, match="^--scaling: .*--no-standardize"):
        moot.validate(given={"scaling"})
    check_unused(moot, {"scaling"}, grid={"standardize": [True, False]})
    with pytest.raises(ConfigError, match="^--grid: dropout: .*--hidden none"):
        check_unused(TrainOptions(hidden=[]), (), grid={"dropout": [0.0, 0.3]})
    check_unused(TrainOptions(hidden=[]), (), grid={"dropout": [0.0]})


def test_estimator_grids_over_hidden_and_dropout_still_fit():
    """scikit-learn's convention: GridSearchCV crosses hidden=() with dropout=0.3; the estimator fits it."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 3)), np.array([0, 1] * 15)
    MLPClassifier(hidden=(), dropout=0.3, batchnorm=True, activation="tanh", epochs=2).fit(X, y)


def test_tune_applies_the_same_rules_with_its_grid(tmp_path):
    """tune refuses an option no setting of its grid reads, and accepts it when some setting does."""
    from cli_helpers import assert_clean_error, run
    from tables import write_table

    path = write_table(tmp_path, n_patients=12)
    assert_clean_error(run(["tune", path, "--no-standardize", "--scaling", "robust", "--grid", "l2=0,1e-4"]),
                       "--scaling", "--no-standardize", code=2)
    assert_clean_error(run(["tune", path, "--dropout", "0.2", "--grid", "hidden=none"]), "--dropout", code=2)
    ok = run(["tune", path, "--dropout", "0.2", "--grid", "hidden=none|8", "--epochs", "2", "--folds", "2", "-q"])
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("spec, words", [
    ("A=x", "--class-weight for class 'A' must be a positive number, got 'x'"),
    ("Basal=-1", "--class-weight for class 'Basal' must be a positive number, got '-1'"),
    ("garbage", "--class-weight expects 'balanced', 'none' or LABEL=WEIGHT pairs"),
    ("=3", "--class-weight expects"),
    ("Basal=1,Basal=2", "--class-weight gives class 'Basal' twice"),
])
@pytest.mark.parametrize("command", ["train", "cv"])
def test_a_malformed_class_weight_is_a_usage_error_before_the_data_is_read(tmp_path, spec, words, command):
    """Its form needs no data: exit 2 before the table is opened (a table that does not exist shows that the
    check came first)."""
    res = CliRunner().invoke(cli, [command, str(tmp_path / "absent.csv"), "--class-weight", spec])
    assert res.exit_code == 2, res.output
    assert words in res.output and "absent.csv" not in res.output


def test_an_unknown_class_in_class_weight_still_needs_the_data(tmp_path):
    res = CliRunner().invoke(cli, ["train", SAMPLE, "--class-weight", "Z=2", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 1
    assert "--class-weight names unknown class 'Z'; valid labels: 'Basal', 'HER2', 'LumA', 'LumB'" in res.output
    assert not (tmp_path / "m.mlp").exists()


def test_a_malformed_class_weight_in_a_tune_grid_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(cli, ["tune", str(tmp_path / "absent.csv"), "--grid", "class-weight=none|A=-1"])
    assert res.exit_code == 2, res.output
    assert "must be a positive number, got '-1'" in res.output and "does not fit the data" not in res.output


def test_an_option_that_does_not_apply_to_the_input_is_a_usage_error_whatever_the_input(tmp_path, model):
    """--layer on a CSV was exit 2, on a 10x directory exit 1; --features-in-rows on an .h5ad exit 1 in train and 2
    in predict; --feature-types on a table exit 1. Each is a usage error, exit 2, named."""
    ad = pytest.importorskip("anndata")
    import scipy.sparse as sp

    genes = [f"G{j}" for j in range(5)]
    write_tenx(tmp_path / "tenx", genes, cells=8)
    sheet = tmp_path / "sheet.csv"
    pd.DataFrame({"sample_id": [f"AAAC{i}-1" for i in range(8)], "label": ["a", "b"] * 4}).to_csv(sheet, index=False)
    cells = ad.AnnData(sp.random(8, 5, density=0.5, format="csr", random_state=0, dtype=np.float32),
                       obs=pd.DataFrame({"label": ["a", "b"] * 4}, index=[f"c{i}" for i in range(8)]),
                       var=pd.DataFrame(index=genes))
    cells.write_h5ad(tmp_path / "cells.h5ad")
    table = tmp_path / "t.csv"
    pd.DataFrame({"G0": range(8), "G1": range(8), "label": ["a", "b"] * 4}).to_csv(table, index=False)
    out = ["-o", str(tmp_path / "x.mlp")]
    cases = [
        (["train", str(tmp_path / "tenx"), "--samples", str(sheet), "--layer", "counts", *out], "--layer"),
        (["train", str(tmp_path / "tenx"), "--samples", str(sheet), "--raw", *out], "--raw"),
        (["train", str(tmp_path / "tenx"), "--samples", str(sheet), "--features-in-rows", *out], "--features-in-rows"),
        (["train", str(table), "--feature-types", "Gene Expression", *out], "--feature-types"),
        (["train", str(tmp_path / "cells.h5ad"), "--features-in-rows", *out], "--features-in-rows"),
        (["predict", model, str(tmp_path / "cells.h5ad"), "--features-in-rows", "-o", str(tmp_path / "p.csv")],
         "--features-in-rows"),
    ]
    for args, flag in cases:
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2, (args, res.output)
        assert flag in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.mlp").exists() and not (tmp_path / "p.csv").exists()


def test_an_empty_file_name_says_so(three_classes):
    d, _ = three_classes
    assert_clean_error(run(["info", ""]), "model file not found: the name given is empty ('')")
    assert_clean_error(run(["predict", str(d / "m.mlp"), "", "-o", "-"]), "table file not found: the name given is empty")
    assert_clean_error(run(["train", ""]), "table file not found: the name given is empty")


@pytest.mark.parametrize("args", [["info", "{l}"], ["predict", "{l}", "{t}"], ["diagnose", "{l}"], ["info", "{d}/m.mlp"]],
                         ids=["info", "predict", "diagnose", "directory-loop"])
def test_a_model_path_that_is_a_loop_of_symbolic_links_says_so(three_classes, tmp_path, args):
    """`ln -s l2.mlp l1.mlp; ln -s l1.mlp l2.mlp; mlpcli info l1.mlp` said "model file not found: l1.mlp" of a file
    `ls` shows, where `-o l1.mlp` names the loop."""
    d, _ = three_classes
    (tmp_path / "l1.mlp").symlink_to("l2.mlp")
    (tmp_path / "l2.mlp").symlink_to("l1.mlp")
    (tmp_path / "d1").symlink_to("d2")  # a loop in the directory part
    (tmp_path / "d2").symlink_to("d1")
    args = [a.format(l=tmp_path / "l1.mlp", t=d / "train.csv", d=tmp_path / "d1") for a in args]
    res = run(args)
    assert_clean_error(res, f"{args[1]}: its symbolic links lead back to themselves (a loop); give the")
    assert "not found" not in res.output
    assert_clean_error(run(["info", str(tmp_path / "l3.mlp")]), "model file not found:")  # missing: as before


@pytest.mark.parametrize("args", [["train", "{l}"], ["predict", "{m}", "{l}"], ["train", "{t}", "--val-data", "{l}"],
                                  ["train", "{t}", "--samples", "{l}"], ["train", "{t}", "--config", "{c}"]],
                         ids=["train", "predict", "val-data", "samples", "config"])
def test_an_input_path_that_is_a_loop_of_symbolic_links_says_so_as_a_model_path_does(three_classes, tmp_path, args):
    """`ln -s lb.csv la.csv; ln -s la.csv lb.csv; mlpcli train la.csv` said "table file not found: la.csv" (and --config
    "too many levels of symbolic links"), where a model path in a loop is said to be one."""
    d, _ = three_classes
    for a, b in (("la.csv", "lb.csv"), ("la.toml", "lb.toml")):
        (tmp_path / a).symlink_to(b)
        (tmp_path / b).symlink_to(a)
    args = [a.format(l=tmp_path / "la.csv", c=tmp_path / "la.toml", m=d / "m.mlp", t=d / "train.csv") for a in args]
    res = run(args + ["-o", str(tmp_path / "out.mlp" if args[0] == "train" else tmp_path / "p.csv"), "-q"])
    looped = args[-1]
    assert_clean_error(res, f"{looped}: its symbolic links lead back to themselves (a loop); give the",
                       code=2 if "--config" in args else 1)  # (a --config file's problems are usage errors)
    assert "not found" not in res.output and "too many levels" not in res.output


@pytest.mark.parametrize("args", [
    ["train", "{t}", "-o", ""], ["train", "{t}", "--history", ""], ["train", "{t}", "--oof", " "],
    ["cv", "{t}", "--oof", ""], ["tune", "{t}", "--grid", "lr=1e-3", "--results", ""],
    ["tune", "{t}", "--grid", "lr=1e-3", "--refit", "-o", ""], ["diagnose", "{m}", "--plot", ""],
    ["train", "{t}", "--config", ""],
], ids=lambda a: " ".join(a[:1] + a[-2:-1]))
def test_an_empty_output_name_is_a_usage_error(small, tmp_path, args):
    """--history "$H" and --oof "$O" with the variable unset wrote nothing and said nothing (exit 0); -o '' said
    "is a directory" (exit 1)."""
    args = [a.format(t=small / "t.csv", m=small / "m.mlp") for a in args]
    res = run(args + ["--epochs", "1"] if args[0] in ("train", "cv", "tune") else args)
    assert res.exit_code == 2, res.output
    assert "an empty file name" in res.output.splitlines()[-1]


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
@pytest.mark.parametrize("flag", ["--group", "--id", "--batch"])
def test_an_empty_column_name_is_a_usage_error(small, command, flag):
    """predict, evaluate and explain said "--group column '' not found" (exit 1) where train says what it is."""
    res = run([command, str(small / "m.mlp"), str(small / "t.csv"), flag, ""])
    assert res.exit_code == 2, res.output
    assert "an empty value (an unset shell variable?)" in res.output.splitlines()[-1]


def test_diagnose_an_empty_name(small):
    res = run(["diagnose", ""])
    assert res.exit_code == 1 and "the name given is empty" in res.output.splitlines()[-1]


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_huge_chunk_budget_is_a_usage_error(small, command):
    """--chunk-mb 1e308 was "internal error (OverflowError ...)" once counted in bytes."""
    res = run([command, str(small / "m.mlp"), str(small / "t.csv"), "--chunk-mb", "1e308"])
    assert res.exit_code == 2 and "--chunk-mb" in res.output
    assert run([command, str(small / "m.mlp"), str(small / "t.csv"), "--chunk-mb", "1e6"]).exit_code == 0


def test_regression_refuses_class_options_as_usage_errors(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd")).assign(label=rng.normal(size=60))
    frame.to_csv(tmp_path / "r.csv", index=False)
    for args in (["--class-weight", "balanced"], ["--positive", "1"]):
        res = run(["train", str(tmp_path / "r.csv"), "--no-group", "--epochs", "1", *args, "-o", str(tmp_path / "m.mlp")])
        assert res.exit_code == 2 and args[0] in res.output.splitlines()[-1], res.output


@pytest.mark.parametrize("command", ["evaluate", "explain"])
def test_an_empty_target_is_a_usage_error(small, command):
    res = run([command, str(small / "m.mlp"), str(small / "t.csv"), "--target", ""])
    assert res.exit_code == 2 and "an empty value" in res.output.splitlines()[-1]


def test_an_empty_data_name_beside_a_model_file(tmp_path, monkeypatch):
    """`mlpcli train "$DATA"` (unset) in a directory holding model.mlp said "--out model.mlp is also the input DATA's
    model.mlp": the empty name resolved to the directory, whose files were taken for a 10x input's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.mlp").write_bytes(b"x")
    res = run(["train", ""])
    assert res.exit_code == 1 and "table file not found: the name given is empty" in res.output.splitlines()[-1]


def test_weight_decay_auto_given_with_another_optimizer_asks_for_nothing(tmp_path):
    """`--weight-decay auto` (the default, written out, as in a config file) with --optimizer adam was a usage error."""
    from tables import make_table

    make_table("multiclass", n_patients=10, per_patient=2, n_features=4).to_csv(tmp_path / "t.csv", index=False)
    ok = run(["train", str(tmp_path / "t.csv"), "--optimizer", "adam", "--weight-decay", "auto", "--folds", "1",
              "--epochs", "2", "-q", "-o", str(tmp_path / "m.mlp")])
    assert ok.exit_code == 0, ok.output
    bad = run(["train", str(tmp_path / "t.csv"), "--optimizer", "adam", "--weight-decay", "0.5", "--folds", "1",
               "--epochs", "2", "-q", "-o", str(tmp_path / "m.mlp")])
    assert bad.exit_code == 2 and "only --optimizer adamw uses it" in bad.output


def test_a_missing_val_data_table_is_named_as_val_data_not_as_the_training_table(tmp_path):
    """`train ok.csv --val-data nope.csv` said "ok.csv: table file not found: nope.csv", blaming the training table."""
    from tables import make_table

    make_table("binary", n_patients=10, seed=1).to_csv(tmp_path / "ok.csv", index=False)
    res = run(["train", str(tmp_path / "ok.csv"), "--val-data", str(tmp_path / "nope.csv"), "--folds", "1",
               "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, f"--val-data: table file not found: {tmp_path / 'nope.csv'}")
    assert "ok.csv" not in res.output.strip().splitlines()[-1] and not (tmp_path / "m.mlp").exists()
