"""Review 16, how many workers a command runs and what it warns: joblib starts a worker per fit at most (so
--n-jobs 8 for 2 folds is not oversubscription), and a Dask cluster ignores --n-jobs and runs --threads on
its own cores (so this machine's cores are no rule for either there). No test here starts a worker process:
the fits are replaced by a stub that stops the command once it has said what it would run."""

from __future__ import annotations

import pytest

from mlpcli import parallel, pipeline
from mlpcli.errors import DataError
from mlpcli.model_selection import cross_validation, learning_curve, tuning
from mlpcli.parallel import Plan
from cli_helpers import assert_clean_error, run
from tables import write_table

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
    monkeypatch.setattr(parallel, "_CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(parallel, "_PROC_CGROUP", str(tmp_path / "cgroup"))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    assert parallel.usable_cores() == 1
    assert "may use 1 (the cgroup CPU quota of 1.5 CPUs): " in parallel.threads_warning(2)
    (tmp_path / "job" / "cpu.max").write_text("max 100000\n")
    assert "may use 8 (SLURM_CPUS_PER_TASK=8): " in parallel.workers_warning(16, None, tasks=20)
