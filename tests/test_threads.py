"""One --threads rule for every command and the estimators (issue 16, item 3): the usable cores are the
affinity mask, the cgroup quota and SLURM_CPUS_PER_TASK; the default is 1 BLAS thread everywhere (measured:
benchmarks/bench_threads.py); asking for more threads than usable cores is a warning."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from mlpcli import parallel
from mlpcli.cli._common import THREADS_DEFAULT, threads_context
from mlpcli.estimators import MLPClassifier, MLPRegressor
from cli_helpers import run
from tables import make_table


def blas_threads() -> int:
    return min((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)


def test_usable_cores_honour_slurm_and_the_cgroup_quota(monkeypatch, tmp_path):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(parallel, "_CGROUP_ROOT", str(tmp_path))  # no quota files: the affinity mask
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert parallel.usable_cores() == affinity
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert parallel.usable_cores() == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "512")  # never more than the affinity mask
    assert parallel.usable_cores() == affinity
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    (tmp_path / "cpu.max").write_text("max 100000\n")  # cgroup v2 without a limit
    assert parallel.usable_cores() == affinity
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: one whole core
    assert parallel.usable_cores() == 1
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()  # cgroup v1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert parallel.usable_cores() == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert parallel.usable_cores() == affinity


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
    fast = ["--epochs", "2", "--hidden", "4", "--folds", "2", "-q"]
    for extra, asked in ((["--n-jobs", "2", "--threads", "2"], "up to 4 cores"),
                         (["--n-jobs", "8", "--folds", "3"], "3 worker processes")):  # one per fold at most
        res = run(["cv", table, *fast, *extra])
        assert res.exit_code == 0 and asked in res.stderr and "may use 2" in res.stderr, res.stderr
    res = run(["cv", table, *fast, "--n-jobs", "2"])
    assert "warning" not in res.stderr
    res = run(["cv", table, *fast, "--threads", "4"])
    assert res.stderr.count("warning:") == 1  # the --threads warning alone, not both
