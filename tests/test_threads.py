"""One --threads rule for every command and the estimators (issue 16, item 3): the usable cores are the
affinity mask, the cgroup quota and SLURM_CPUS_PER_TASK; the default is 1 BLAS thread everywhere (measured:
benchmarks/bench_threads.py); asking for more threads than usable cores is a warning."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from mlpcli import parallel, pipeline, resources
from mlpcli.cli.shared_options import threads_context, THREADS_DEFAULT
from mlpcli.cli.cv import fits_where
from mlpcli.cli.train import member_plan
from mlpcli.config_file import read_config_file
from mlpcli.errors import DataError
from mlpcli.estimators import MLPClassifier, MLPRegressor
from mlpcli.model_selection import cross_validation, learning_curve, tuning
from mlpcli.parallel import Plan
from cli_helpers import assert_clean_error, run
from tables import make_table, write_table

pytestmark = pytest.mark.blas_as_found  # tests of the default BLAS threads: the process's own, not the suite's cap


def blas_threads() -> int:
    return min((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)


def test_usable_cores_honour_slurm_and_the_cgroup_quota(monkeypatch, tmp_path):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(resources, "CGROUP_ROOT", str(tmp_path))  # no quota files: the affinity mask
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert resources.usable_cores() == affinity
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert resources.usable_cores() == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "512")  # never more than the affinity mask
    assert resources.usable_cores() == affinity
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    (tmp_path / "cpu.max").write_text("max 100000\n")  # cgroup v2 without a limit
    assert resources.usable_cores() == affinity
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: one whole core
    assert resources.usable_cores() == 1
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()  # cgroup v1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert resources.usable_cores() == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert resources.usable_cores() == affinity


def test_default_is_one_blas_thread_and_more_than_the_cores_is_a_warning(monkeypatch):
    assert parallel.default_blas_threads() == 1
    with threads_context(None):  # every command's default, whatever the machine's core count
        assert blas_threads() == 1
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    assert parallel.threads_warning(None) is None and parallel.threads_warning(2) is None
    message = parallel.threads_warning(4)
    assert "--threads 4" in message and "may use 2" in message and "--threads 2" in message
    assert "2 worker processes" in parallel.threads_warning(2, workers=2)


@pytest.mark.parametrize("command", ["train", "cv", "tune", "diagnose", "predict", "evaluate"])
def test_every_command_documents_the_one_default(command):
    res = run([command, "--help"], terminal_width=400)
    text = " ".join(res.output.split())
    assert " ".join(THREADS_DEFAULT.split()) in text
    assert "(default: all cores)" not in text and text.count("--threads INTEGER") == 1


def test_threads_beyond_the_usable_cores_warn_in_every_command(monkeypatch, tmp_path):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 1)
    path = tmp_path / "t.csv"
    make_table("binary", n_patients=12).to_csv(path, index=False)
    model = tmp_path / "m.mlp"
    res = run(["train", str(path), "--threads", "2", "--epochs", "2", "--folds", "1", "-q", "-o", str(model)])
    assert res.exit_code == 0, res.output
    assert "warning: --threads 2 asks for 2 cores but this process may use 1" in res.output
    res = run(["predict", str(model), str(path), "--threads", "3", "-q", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "--threads 3 asks for 3 cores" in res.output
    res = run(["predict", str(model), str(path), "-q", "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "warning" not in res.output


def test_estimators_take_threads(monkeypatch):
    X = np.random.default_rng(0).normal(size=(60, 5))
    y = (X[:, 0] > 0).astype(int)
    seen = []
    import mlpcli.estimators as est

    real_fit = est.fit

    def spying_fit(*args, **kwargs):
        seen.append(blas_threads())
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(est, "fit", spying_fit)
    clf = MLPClassifier(hidden=(4,), epochs=2, early_stopping=False)
    assert clf.get_params()["threads"] is None
    clf.fit(X, y)
    assert seen == [1]  # the default: one BLAS thread, as on the command line
    MLPRegressor(hidden=(4,), epochs=2, early_stopping=False, threads=2).fit(X, X[:, 0])
    assert seen[-1] == min(2, max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas") or 2)
    with pytest.raises(ValueError, match="threads must be None"):
        MLPClassifier(threads=0).fit(X, y)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 1)
    with pytest.warns(UserWarning, match="threads 2 asks for 2 cores but this process may use 1"):
        MLPClassifier(hidden=(4,), epochs=1, early_stopping=False, threads=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MLPClassifier(hidden=(4,), epochs=1, early_stopping=False, threads=1).fit(X, y).predict(X)


def test_workers_times_threads_beyond_the_cores_draw_a_warning(tmp_path, monkeypatch):
    """--n-jobs 2 --threads 2 (or --n-jobs 8) on 2 usable cores drew no warning; --threads 4 alone did."""
    from tables import write_table
    from cli_helpers import run

    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    table = write_table(tmp_path)
    fast = ["--epochs", "2", "--hidden", "4", "--folds", "2", "--member-folds", "2", "-q"]
    for extra, asked in ((["--n-jobs", "2", "--threads", "2"], "up to 4 cores"),
                         (["--n-jobs", "8", "--folds", "3"], "3 worker processes")):  # one per fold at most
        res = run(["cv", table, *fast, *extra])
        assert res.exit_code == 0 and asked in res.stderr and "may use 2" in res.stderr, res.stderr
    res = run(["cv", table, *fast, "--n-jobs", "2"])
    assert "warning" not in res.stderr
    res = run(["cv", table, *fast, "--threads", "4"])
    assert res.stderr.count("warning:") == 1  # the --threads warning alone, not both


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
    res = run(["cv", table, "--folds", "2", "--member-folds", "1", "--n-jobs", "1", *FAST])
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


def test_cv_warns_once_about_a_class_holding_a_bar(tmp_path):
    df = make_table(n_patients=12)
    df["label"] = df["label"].replace({"typeB": "HER2|ERBB2"})
    df.to_csv(tmp_path / "bar.csv", index=False)
    res = run(["cv", str(tmp_path / "bar.csv"), "--folds", "2", "--member-folds", "1", *FAST, "-q"])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("holds '|'") == 1


def _cgroup(tmp_path, monkeypatch, line: str) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text(line)
    monkeypatch.setattr(resources, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(resources, "PROC_CGROUP", str(proc))
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))  # a big node


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_cpu_quota_above_the_process_cgroup_limits_the_cores(tmp_path, monkeypatch, version):
    """systemd-run -p CPUQuota=200%, a Kubernetes pod or a job's cgroup set the quota on a cgroup above the
    process's own, whose cpu.max reads "max": only the leaf was read, so 64 workers went to a 2-CPU quota."""
    if version == "v2":
        job = tmp_path / "system.slice" / "job_7"
        (job / "step_0").mkdir(parents=True)
        (job / "cpu.max").write_text("200000 100000\n")
        (job / "step_0" / "cpu.max").write_text("max 100000\n")
        line = "0::/system.slice/job_7/step_0\n"
    else:
        job = tmp_path / "cpu" / "slurm" / "job_7"
        (job / "step_0").mkdir(parents=True)
        (job / "cpu.cfs_quota_us").write_text("200000\n")
        (job / "cpu.cfs_period_us").write_text("100000\n")
        (job / "step_0" / "cpu.cfs_quota_us").write_text("-1\n")
        (job / "step_0" / "cpu.cfs_period_us").write_text("100000\n")
        line = "4:cpu,cpuacct:/slurm/job_7/step_0\n3:memory:/slurm/job_7/step_0\n"
    _cgroup(tmp_path, monkeypatch, line)
    assert resources.usable_cores() == 2
    assert parallel.local_workers(-1) == 2
    assert "may use 2" in parallel.workers_warning(8, None)


def test_the_tightest_quota_on_the_way_up_wins_and_none_means_the_affinity_mask(tmp_path, monkeypatch):
    leaf = tmp_path / "a" / "b"
    leaf.mkdir(parents=True)
    (tmp_path / "a" / "cpu.max").write_text("300000 100000\n")
    (leaf / "cpu.max").write_text("800000 100000\n")
    _cgroup(tmp_path, monkeypatch, "0::/a/b\n")
    assert resources.usable_cores() == 3
    (leaf / "cpu.max").write_text("max 100000\n")
    (tmp_path / "a" / "cpu.max").write_text("max 100000\n")
    assert resources.usable_cores() == 64


# ── OMP_NUM_THREADS and friends ───────────────────────────────────────────────────────────────────────


def test_a_users_blas_thread_variable_that_mlpcli_overrides_is_named(monkeypatch):
    """OMP_NUM_THREADS=8 in a batch script was silently replaced by one BLAS thread per fit."""
    for name in parallel.BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert parallel.blas_env_note(None) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "16")  # (a cap, not a grant: the machine's cores may be fewer)
    cores = parallel.usable_cores()
    note = parallel.blas_env_note(None)
    assert note.startswith("OMP_NUM_THREADS=8 is not used")
    # the threads suggested are within the job's cores: --threads 8 on 2 cores then warned of oversubscription
    assert (f"--threads {min(8, cores)}" in note) if cores > 1 else "--threads" not in note
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert "--threads" not in parallel.blas_env_note(None)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert "OMP_NUM_THREADS=8 is not used" in Plan(n_jobs=1).describe()
    assert parallel.blas_env_note(8) is None  # asked for on the command line: they agree
    assert "--threads 2" in parallel.blas_env_note(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what the default does anyway
    assert parallel.blas_env_note(None) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # OpenMP's nested form: not a BLAS thread count to quote
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    assert parallel.blas_env_note(None).startswith("MKL_NUM_THREADS=4 is not used")


STOPPED = "stopped by the test before any fit"


@pytest.fixture
def two_cores(monkeypatch):
    """A 2-core allocation (SLURM_CPUS_PER_TASK=2, a cgroup quota, taskset) whatever this machine has."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)


@pytest.fixture
def no_fits(monkeypatch):
    """cv, tune and diagnose --learning-curve stop where their fits would start (a data error, exit 1)."""
    def stop(*args, **kwargs):
        raise DataError(STOPPED)

    monkeypatch.setattr(cross_validation, "cross_validate", stop)
    monkeypatch.setattr(tuning, "tune", stop)
    monkeypatch.setattr(learning_curve, "learning_curve", stop)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_table(tmp_path_factory.mktemp("workers"), n_patients=12)


# ── 1. the workers that run, not the workers asked for ─────────────────────────────────────────────────


def test_the_warning_counts_one_worker_per_fit_at_most(two_cores):
    """--n-jobs 8 for 2 folds on 2 cores warned "asks for up to 8 cores": joblib starts 2 workers."""
    assert parallel.workers_warning(8, None, tasks=2) is None
    assert parallel.workers_warning(8, None, tasks=0) is None  # nothing runs side by side (one network)
    message = parallel.workers_warning(8, None, tasks=3)
    assert "--n-jobs 8: 3 worker processes (one for each of the 3 fits)" in message
    assert "up to 3 cores but this process may use 2" in message and "use --n-jobs 2" in message
    assert "up to 8 cores" in parallel.workers_warning(8, None)  # the fits not counted yet: as asked
    assert "2 worker processes x 2 BLAS threads ask for up to 4 cores" in parallel.workers_warning(-1, 2, tasks=5)
    assert parallel.local_workers(-1, tasks=5) == 2 and parallel.local_workers(8, tasks=3) == 3
    assert Plan(n_jobs=8).describe(2) == "2 local worker processes (joblib loky), 1 BLAS thread per fit"


@pytest.mark.parametrize("folds, warned", [(2, False), (3, True)])
def test_cv_warns_about_the_workers_its_folds_start(table, two_cores, no_fits, folds, warned):
    res = run(["cv", table, "--folds", str(folds), "--n-jobs", "8"])
    assert_clean_error(res, STOPPED)
    assert (f"--n-jobs 8: {folds} worker processes" in res.stderr) is warned, res.stderr
    assert "up to 8 cores" not in res.stderr
    assert f"{folds} fits on {folds} local worker processes" in res.stderr  # not "on 8 local worker processes"


@pytest.mark.parametrize("grid, warned", [("lr=1e-3", False), ("lr=1e-3,1e-2", True)])
def test_tune_counts_settings_times_folds(table, two_cores, no_fits, grid, warned):
    res = run(["tune", table, "--grid", grid, "--folds", "2", "--n-jobs", "8"])
    assert_clean_error(res, STOPPED)
    assert ("--n-jobs 8: 4 worker processes (one for each of the 4 fits)" in res.stderr) is warned, res.stderr


def test_a_learning_curve_runs_a_worker_per_size_at_most(table, two_cores, no_fits):
    res = run(["diagnose", "--learning-curve", table, "--fractions", "0.5,1", "--n-jobs", "8"])
    assert_clean_error(res, STOPPED)
    assert "warning" not in res.stderr
    res = run(["diagnose", "--learning-curve", table, "--fractions", "0.25,0.5,1", "--n-jobs", "8"])
    assert "--n-jobs 8: 3 worker processes (one for each of the 3 fits)" in res.stderr


def test_train_warns_once_the_members_are_known(table, tmp_path, two_cores, monkeypatch):
    """One network (--folds 1) runs no worker, whatever --n-jobs; an ensemble a worker per member at most."""
    res = run(["train", table, "--folds", "1", "--n-jobs", "8", "--epochs", "2", "--hidden", "4", "-q",
               "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0 and "warning" not in res.stderr, res.stderr

    def announce_three_members(ds, options, progress=None, **kwargs):
        progress({"event": "plan", "strategy": "3 folds", "sizes": [[20, 10]] * 3, "candidates": ["hidden 4"]})
        raise DataError(STOPPED)

    monkeypatch.setattr(pipeline, "train_dataset", announce_three_members)
    res = run(["train", table, "--n-jobs", "8", "-q", "-o", str(tmp_path / "m.mlp")])
    assert_clean_error(res, STOPPED)
    assert "--n-jobs 8: 3 worker processes (one for each of the 3 fits)" in res.stderr
    res = run(["train", table, "--n-jobs", "2", "-q", "-o", str(tmp_path / "m.mlp")])
    assert "warning" not in res.stderr


# ── 2. a Dask cluster: --n-jobs and --threads are not this machine's ───────────────────────────────────


def test_a_config_files_n_jobs_counts_back_from_the_cores_only_for_local_fits(tmp_path, two_cores):
    """n-jobs = -4 in --config was refused against this machine's 2 cores with --backend dask, where joblib
    ignores it; it is still refused, naming the file and key, when the fits run here."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("n-jobs = -4\n")
    absent = str(tmp_path / "absent.csv")
    res = run(["cv", absent, "--config", str(cfg)])
    assert_clean_error(res, "c.toml: key 'n-jobs' must be -1 to -2", "got -4", code=2)
    res = run(["train", absent, "--config", str(cfg)])
    assert_clean_error(res, "c.toml: key 'n-jobs' must be -1 to -2", code=2)
    res = run(["cv", absent, "--config", str(cfg), "--backend", "dask", "--scheduler", "tcp://127.0.0.1:8786"])
    assert_clean_error(res, "absent.csv", code=1)  # the data, read before the cluster is reached
    assert "c.toml: key 'n-jobs' (-4) does not apply to --backend dask" in res.stderr
    cfg.write_text("n-jobs = 0\n")
    assert_clean_error(run(["cv", absent, "--config", str(cfg), "--backend", "dask", "--scheduler",
                            "tcp://127.0.0.1:8786"]), "key 'n-jobs' must not be 0", code=2)


def test_n_jobs_and_threads_on_a_dask_cluster_are_not_checked_against_this_machine(tmp_path, two_cores):
    """--n-jobs 4 was silently ignored on Dask (joblib runs a fit per worker thread), and --threads 4 warned
    that "this process may use 2" cores: the fits' threads run on the cluster's."""
    absent = str(tmp_path / "absent.csv")
    dask = ["--backend", "dask", "--scheduler", "tcp://127.0.0.1:8786"]
    res = run(["cv", absent, *dask, "--n-jobs", "-4", "--threads", "4"])
    assert_clean_error(res, "absent.csv", code=1)
    assert "warning: --n-jobs -4 does not apply to --backend dask" in res.stderr
    assert "may use 2" not in res.stderr
    res = run(["cv", absent, *dask])
    assert "warning" not in res.stderr  # nothing given, nothing said
    res = run(["cv", absent, "--threads", "4"])  # the fits run here: the warning, once
    assert res.stderr.count("--threads 4 asks for 4 cores but this process may use 2") == 1
    where = Plan(backend="dask", scheduler="tcp://h:8786", threads=2).describe()
    assert "start each worker with --nthreads = its cores / 2, or its fits oversubscribe them" in where


# ── 3. which limit gave the cores ──────────────────────────────────────────────────────────────────────


def test_the_warnings_name_the_limit_that_sets_the_cores(tmp_path, monkeypatch):
    """"this process may use 1 (CPU affinity, cgroup quota, SLURM_CPUS_PER_TASK)" left a user who asked the
    scheduler for 8 CPUs guessing; a CPU quota of 1.5 CPUs gives one whole core."""
    import os

    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "cgroup").write_text("0::/job\n")
    monkeypatch.setattr(resources, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(resources, "PROC_CGROUP", str(tmp_path / "cgroup"))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    assert resources.usable_cores() == 1
    assert "may use 1 (the cgroup CPU quota of 1.5 CPUs): " in parallel.threads_warning(2)
    (tmp_path / "job" / "cpu.max").write_text("max 100000\n")
    assert "may use 8 (SLURM_CPUS_PER_TASK=8): " in parallel.workers_warning(16, None, tasks=20)
