"""Where a Dask run's fits really run, and how it ends when the cluster goes away (``parallel.run``).

Through joblib's Dask backend, a cluster of one worker thread in all ran every fit in the calling process (joblib's
"one job: run sequentially" shortcut) — on a batch system, the login node — and a scheduler that ended together
with its workers could leave the run waiting forever. The run now submits futures of its own."""

import os
import signal
import subprocess
import sys
import threading
import time

import distributed  # the test extra installs dask and distributed
import pytest

from mlpcli import dask_connect, parallel
from mlpcli.errors import TrainingError
from mlpcli.parallel import Plan, run


def _pid(i):
    return os.getpid()


def test_a_cluster_of_one_worker_thread_runs_the_fits_there_not_here():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  host="127.0.0.1") as cluster:
        (worker,) = cluster.scheduler_info["workers"].values()
        pids = parallel.run([(_pid, (i,)) for i in range(3)], Plan(backend="dask", scheduler=cluster.scheduler_address))
    assert pids == [pids[0]] * 3
    assert pids[0] != os.getpid()
    assert worker["id"] is not None


def test_shared_arguments_reach_the_tasks_once_scattered():
    big = list(range(100_000))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  host="127.0.0.1") as cluster:
        out = parallel.run([(sum, (big,)), (len, (big,))], Plan(backend="dask", scheduler=cluster.scheduler_address),
                           shared=[big])
    assert out == [sum(big), len(big)]


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*args):
    return subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def separate_cluster():
    """A scheduler and one worker in processes of their own (as on a batch system), to kill. Their tasks are
    functions of the standard library: these processes cannot import this test module."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
    procs = [scheduler]
    try:
        with distributed.Client(address, timeout="30s") as client:  # waits for the scheduler to listen
            procs.append(_start("distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny",
                                "--no-dashboard"))
            client.wait_for_workers(1, timeout=60)
        yield address, procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _kill_later(procs, delay):
    def kill():
        time.sleep(delay)
        for p in procs:
            p.kill()

    threading.Thread(target=kill, daemon=True).start()


@pytest.mark.parametrize("which", ["scheduler", "both"])
def test_a_scheduler_killed_while_fits_run_ends_the_run_at_once_in_one_line(separate_cluster, which):
    address, (scheduler, worker) = separate_cluster
    _kill_later([scheduler] if which == "scheduler" else [scheduler, worker], 1.0)
    started = time.monotonic()
    with pytest.raises(TrainingError, match=rf"--scheduler {address}: lost the connection to the Dask scheduler"):
        parallel.run([(time.sleep, (5.0,)) for _ in range(4)], Plan(backend="dask", scheduler=address))
    # not the 20 s the fits would take, nor forever; the slack is for a loaded machine (the suite's two workers
    # beside the cluster's processes: 11.1 s once against a bound of 10 with 12 s of fits)
    assert time.monotonic() - started < 14


def test_no_worker_left_while_fits_remain_is_an_error_after_the_worker_timeout(separate_cluster, monkeypatch):
    address, (scheduler, worker) = separate_cluster
    monkeypatch.setattr(dask_connect, "WORKER_TIMEOUT", 2.0)
    _kill_later([worker], 1.0)
    started = time.monotonic()
    with pytest.raises(TrainingError, match=rf"--scheduler {address}: no Dask worker for 2 s while 4 fits remained"):
        parallel.run([(time.sleep, (5.0,)) for _ in range(4)], Plan(backend="dask", scheduler=address))
    assert time.monotonic() - started < 15


def test_the_only_worker_killed_with_the_data_it_held_is_named_as_workers_not_the_scheduler(separate_cluster):
    """Losing the worker that held the scattered table cancels every future while the scheduler is still there:
    that read as "lost the connection to the Dask scheduler"."""
    import numpy as np

    address, (scheduler, worker) = separate_cluster
    shared = np.random.default_rng(0).normal(size=(600, 600))
    _kill_later([worker], 2.0)
    with pytest.raises(TrainingError, match=rf"--scheduler {address}: the Dask workers left while fits ran"):
        parallel.run([(np.linalg.eigvals, (shared,)) for _ in range(200)], Plan(backend="dask", scheduler=address),
                     shared=[shared])
    assert scheduler.poll() is None  # the scheduler is still running


# ── the parallel runner: a worker's failure comes back as one clear error ────────────────────────────────


def test_an_exception_that_cannot_be_unpickled_keeps_its_message():
    # defined here, so that they travel by value and the workers need not import this module (seconds)
    class TwoArgumentError(Exception):
        def __init__(self, column, row):  # pickled as its args, one message: it cannot be rebuilt from them
            super().__init__(f"column {column!r} is bad at row {row}")

    def fails_with_two_arguments(i):
        if i == 1:
            raise TwoArgumentError("GENE_7", 3)
        return i

    with pytest.raises(RuntimeError, match=r"TwoArgumentError in a worker process: column 'GENE_7' is bad at row 3"):
        run([(fails_with_two_arguments, (i,)) for i in range(2)], Plan(n_jobs=2))


def test_a_worker_killed_by_sigkill_is_one_line_naming_memory_and_n_jobs():
    tasks = [(signal.raise_signal, (signal.SIGKILL,)), (sorted, ([2, 1],))]
    with pytest.raises(TrainingError) as info:
        run(tasks, Plan(n_jobs=2))
    message = str(info.value)
    assert "\n" not in message and "SIGKILL" in message
    assert "out-of-memory" in message and "--n-jobs" in message


def _killed_worker(key):
    from distributed.scheduler import KilledWorker

    raise KilledWorker(key, "tcp://127.0.0.1:1", "worker died")


def test_a_dask_task_whose_workers_kept_dying_is_one_line_naming_memory():
    """distributed's KilledWorker (the scheduler gives up on a task after its workers died under it, most often
    at their memory limit) reached the command line as an 'internal error'."""
    pytest.importorskip("distributed")
    with pytest.raises(TrainingError) as info:
        run([(_killed_worker, ("fit-1",))], Plan(n_jobs=1))
    message = str(info.value)
    assert "\n" not in message and "memory" in message and "--n-jobs 1" in message


def _cancelled(i):
    """A fit whose future the client cancels, as it does every future when the scheduler's connection is lost."""
    from concurrent.futures import CancelledError

    raise CancelledError("batch_of__indexed_1_calls cancelled for reason: scheduler-connection-lost")


def test_a_dask_scheduler_lost_while_fits_run_is_one_line():
    """The scheduler gone mid-run (its node crashed, its job ended): `cv --backend dask` ended in "internal error
    (FutureCancelledError ...)"; `parallel.run` now says which scheduler was lost and what to do."""
    distributed = pytest.importorskip("distributed")
    from mlpcli import parallel
    from mlpcli.errors import TrainingError
    from mlpcli.parallel import Plan

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  host="127.0.0.1") as cluster:
        plan = Plan(backend="dask", scheduler=cluster.scheduler_address)
        # cancelled while the client is still connected: the workers (and the data they held) are what went (a
        # scheduler really lost: tests/test_dask_runs.py)
        with pytest.raises(TrainingError, match=rf"--scheduler {cluster.scheduler_address}: the Dask workers left "
                                                r"while fits ran"):
            parallel.run([(_cancelled, (0,)), (_cancelled, (1,))], plan)
    with pytest.raises(Exception) as info:  # without Dask the same error is the task's own
        parallel.run([(_cancelled, (0,))], Plan())
    assert not isinstance(info.value, TrainingError)
