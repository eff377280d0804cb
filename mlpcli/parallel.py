"""Running independent training jobs (folds, grid points) in this process, on local cores with
joblib's loky backend, or on a Dask cluster as the client's own futures (``_run_on_dask``).

    tasks [(fn, args), ...] ─run(plan)─▶ [fn(*args), ...]   in the order given, whatever the backend

Each task is self-contained: it gets its rows and options (with its own seed) as arguments and
returns its result, so where and in which order tasks run cannot change what they return.

BLAS threads are capped inside every task (threadpoolctl), to the same number whatever the
backend: 1 by default, ``threads`` when given. The same number matters twice over. OpenBLAS
splits a matrix product differently for different thread counts, which changes float32 results in
the last bits (log-losses differed at the 8th digit between 1 and 2 threads on the sample data),
so only a fixed count makes sequential, ``--n-jobs 2`` and Dask runs identical. And N workers with
one thread each never oversubscribe N cores; the networks are small enough that running fits side
by side uses cores far better than threading each product (on a busy 2-core machine one fit took
0.6 s with 1 BLAS thread and 8.8 s with 2).

The same default, one BLAS thread per network, holds for every command (train, cv, tune, diagnose,
predict, evaluate) and the estimators' ``threads=None``: ``benchmarks/bench_threads.py`` measured a
training epoch of 600 x 2,000 float32 rows at 0.010 s with one thread and 0.059 s with two for a 64-unit
network, 0.086 s and 0.362 s for 512-256, 0.48 s and 1.51 s for 1024-512 (a busy 2-core machine); only
the forward pass of the largest network gained a little from a second thread (1.27 s and 1.07 s per
10,000 rows). ``usable_cores`` is what this process may use, not ``os.cpu_count()``: asking for more
threads than that is a warning.


Reaching a Dask scheduler is ``dask_connect``'s; work beside the caller on a spare core in this process is
``background``'s.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence

from . import dask_connect, interrupts
from .dask_connect import connect, quiet_dask_client, wait_for_a_worker
from .background import POOL_TASK
from .errors import ConfigError, TrainingError, one_line
from .resources import address_space_limit, address_space_words, cores_words, usable_cores


__all__ = ["Plan", "run", "member_plan", "member_processes", "fits_plan", "MEMBER_COPY_BYTES", "default_blas_threads",
           "blas_env_note", "BLAS_THREAD_VARIABLES", "threads_warning", "workers_warning", "local_workers",
           "BACKENDS", "DEFAULT_BLAS_THREADS"]


BACKENDS = ("loky", "dask")
DASK_POLL = 0.05  # seconds between looks at a Dask run's finished fits and its workers

# BLAS threads per network when --threads is not given, in every command (train, cv, tune, diagnose, predict,
# evaluate) and the estimators: see the module docstring and benchmarks/bench_threads.py (on networks of
# the sample data's size a second thread does not pay, and on a busy node it costs many times over).
DEFAULT_BLAS_THREADS = 1


@dataclass(frozen=True)
class Plan:
    """How to run tasks.

    backend : "loky" (local processes; ``n_jobs=1`` runs in this process) or "dask".
    n_jobs : parallel workers for loky (-1: all cores). Dask ignores it: the cluster runs as many tasks at
        once as its workers have threads, whatever n_jobs says (None there).
    scheduler : the Dask scheduler's address, e.g. ``tcp://10.0.0.5:8786`` (dask only).
    threads : BLAS threads per task, in every backend (None: 1).
    auto : n_jobs was not asked for (``train`` without --n-jobs): ``member_processes`` may then train the
        ensemble's members in this process instead, when worker processes would each copy large data.
    """

    backend: str = "loky"
    n_jobs: int | None = 1
    scheduler: str | None = None
    threads: int | None = None
    auto: bool = False

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.n_jobs == 0:
            raise ConfigError("--n-jobs must not be 0; use 1 for no parallelism or -1 for all cores")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("--threads must be >= 1")
        if self.backend == "dask" and not self.scheduler:
            raise ConfigError("--backend dask needs --scheduler tcp://HOST:PORT (the address `dask scheduler` prints)")
        if self.backend != "dask" and self.scheduler:
            raise ConfigError("--scheduler applies to --backend dask only")

    @property
    def blas_threads(self) -> int:
        return self.threads or DEFAULT_BLAS_THREADS

    def describe(self, tasks: int | None = None) -> str:
        """One line for the user: where the fits run and with how many BLAS threads each. ``tasks``: the fits
        to run, when known (``--n-jobs 8`` for 3 folds starts 3 worker processes: ``local_workers``)."""
        threads = f"{self.blas_threads} BLAS thread{'s' if self.blas_threads > 1 else ''} per fit"
        note = blas_env_note(self.threads)
        if note:
            threads += f" ({note})"
        if self.backend == "dask":  # a fit per worker thread: its BLAS threads on the worker's cores, not here
            per_core = (f"; start each worker with --nthreads = its cores / {self.blas_threads}, or its fits "
                        "oversubscribe them" if self.blas_threads > 1 else "")
            return f"the Dask cluster at {self.scheduler}, {threads}{per_core}"
        workers = local_workers(self.n_jobs, tasks)
        where = "this process" if workers == 1 else f"{workers} local worker processes (joblib loky)"
        cores = usable_cores()
        if workers * self.blas_threads > cores:
            threads += f" — {workers * self.blas_threads} threads on {cores} cores oversubscribe them"
        return f"{where}, {threads}"


# The variables a user sets to choose BLAS threads (OpenMP, OpenBLAS, MKL, BLIS, Apple's Accelerate): the
# threadpoolctl cap replaces them inside mlpcli, and ``blas_env_note`` says so.
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                         "VECLIB_MAXIMUM_THREADS")


# The variable OpenBLAS (NumPy's and SciPy's wheels each bundle one, built with pthreads) reads when it is loaded,
# before OMP_NUM_THREADS and GOTO_NUM_THREADS, for the threads it starts then (``blas_threads_at_load``).
BLAS_LOAD_VARIABLE = "OPENBLAS_NUM_THREADS"

# What the user's environment held for the variables the command line set when it started (None: unset), so that
# ``blas_env_note`` still speaks of the user's value; empty in a library caller, which sets nothing.
_USERS_BLAS_VARIABLES: dict[str, str | None] = {}


def blas_threads_at_load() -> None:
    """Load OpenBLAS with DEFAULT_BLAS_THREADS thread (OPENBLAS_NUM_THREADS, read once, when NumPy and SciPy load
    their OpenBLAS): the command line's first step, before NumPy is imported.

    OpenBLAS starts a thread per core when it is loaded and reserves a 32 MiB buffer for each, with the thread's
    stack (8 MiB under the usual ``ulimit -s``): 40 MiB of address space per core, twice over where SciPy's copy is
    loaded too. On a 64-core node that was 2.6 GB per library before the first line was read, and under a ``ulimit
    -v`` below it (an HPC job's address-space limit) OpenBLAS ended the command with its own "Memory allocation
    still failed after 10 retries" or "return code from pthread_create() is 11", or stalled inside the import,
    deaf to Ctrl-C and SIGTERM. Every command caps BLAS at --threads (default 1) before it computes anything
    (``threads_context``), and threadpoolctl raises the count when --threads asks for more, with the same bits as
    a library loaded with them all (the split of a product depends on the threads it runs on, not on how many were
    started); worker processes get theirs from joblib (``inner_max_num_threads``). A value the user set is replaced
    too (it is not used: ``blas_env_note`` still names it), and nothing is done once NumPy is loaded."""
    if "numpy" in sys.modules or BLAS_LOAD_VARIABLE in _USERS_BLAS_VARIABLES:
        return
    _USERS_BLAS_VARIABLES[BLAS_LOAD_VARIABLE] = os.environ.get(BLAS_LOAD_VARIABLE)
    os.environ[BLAS_LOAD_VARIABLE] = str(DEFAULT_BLAS_THREADS)


def _users_blas_variable(name: str) -> str:
    """``name``'s value as the user set it ("" when unset): the environment, unless the command line replaced it
    at its start (``blas_threads_at_load``) and it still holds that value."""
    value = os.environ.get(name, "")
    if name in _USERS_BLAS_VARIABLES and value == str(DEFAULT_BLAS_THREADS):
        return _USERS_BLAS_VARIABLES[name] or ""
    return value


def blas_env_note(threads: int | None) -> str | None:
    """A note when the environment asks for another number of BLAS threads than each network gets (``threads``,
    None: the default): ``OMP_NUM_THREADS=8`` exported by a batch script does not apply inside mlpcli, whose
    thread count is part of what makes a model reproducible; None when none is set or they agree."""
    used = threads or DEFAULT_BLAS_THREADS
    for name in BLAS_THREAD_VARIABLES:
        value = _users_blas_variable(name).strip()
        if not value.isdigit() or int(value) < 1 or int(value) == used:  # unset, OpenMP's nested "4,2", garbage
            continue
        if threads is None:
            usable = min(int(value), usable_cores())  # more than the job's cores: a --threads that warns
            offer = f"; pass --threads {usable} to use {usable}" if usable > used else ""
            return (f"{name}={value} is not used: each network's BLAS runs on {used} thread, mlpcli's default, "
                    f"faster for networks of this size{offer}")
        return f"{name}={value} is not used: each network's BLAS runs on the --threads {threads} asked for"
    return None


def default_blas_threads() -> int:
    """BLAS threads per network when none is asked for: DEFAULT_BLAS_THREADS, never more than the usable cores."""
    return min(DEFAULT_BLAS_THREADS, usable_cores())


def threads_warning(threads: int | None, workers: int = 1) -> str | None:
    """A warning when `workers` processes of `threads` BLAS threads each ask for more cores than this process
    may use (``usable_cores``): the threads then wait for each other, which on a busy node costs many times
    the run time; None when they fit (or `threads` is None: the default fits by construction)."""
    if threads is None:
        return None
    cores = usable_cores()
    total = threads * max(1, workers)
    if total <= cores:
        return None
    asked = f"--threads {threads}" + (f" x {workers} worker processes" if workers > 1 else "")
    return (f"{asked} asks for {total} cores but this process may use {cores_words(cores)}: oversubscribed BLAS "
            f"threads slow the run down many times; use --threads "
            f"{max(1, cores // max(1, workers))} or leave it out")


def workers_warning(n_jobs: int | None, threads: int | None, tasks: int | None = None) -> str | None:
    """A warning when the local worker processes that ``n_jobs`` (joblib's convention) starts for ``tasks`` fits,
    of ``threads`` BLAS threads each, ask for more cores than this process may use, while each alone fits
    (``threads_warning`` covers --threads alone): ``--n-jobs 8`` for 8 fits on a 2-core allocation, or
    ``--n-jobs 2 --threads 2``. joblib starts a worker per task at most, so ``--n-jobs 8`` for 2 folds runs 2
    workers, and ``tasks=0`` (nothing run side by side) none; None: not known yet, ``n_jobs`` workers."""
    asked = local_workers(n_jobs, tasks, available=True)
    workers = local_workers(n_jobs, tasks)
    if asked > 1 and workers == 1:  # processes cannot be started here: the fits run one after another
        return (f"--n-jobs {n_jobs}: worker processes cannot be started here (JOBLIB_MULTIPROCESSING=0, or no "
                "writable /dev/shm for their semaphores): the fits run one after another in this process")
    per_worker = threads or 1
    cores = usable_cores()
    if workers <= 1 or per_worker > cores or workers * per_worker <= cores:
        return None
    capped = tasks is not None and workers == tasks < local_workers(n_jobs)  # --n-jobs 8 for 3 fits: 3 workers
    capped_words = f" (one for each of the {tasks} fits)" if capped else ""
    return (f"--n-jobs {n_jobs}: {workers} worker processes{capped_words} x {per_worker} BLAS "
            f"thread{'s' * (per_worker > 1)} ask for up to {workers * per_worker} cores but this process may use "
            f"{cores_words(cores)}: workers beyond them wait for each other; use --n-jobs "
            f"{max(1, cores // per_worker)} or leave it out")


def local_workers(n_jobs: int | None, tasks: int | None = None, available: bool = False) -> int:
    """Worker processes for ``n_jobs`` on this machine (joblib's convention: -1 is every core), at most one per
    task when the number of ``tasks`` is known (``--n-jobs 64`` for 3 folds starts 3 processes); 1 where worker
    processes cannot be started (``processes_available``) unless ``available`` asks for the count regardless."""
    cores = usable_cores()
    n = 1 if n_jobs is None else int(n_jobs)
    if n < 0:
        n = max(1, cores + 1 + n)
    if tasks is not None:
        n = min(n, tasks)
    if n > 1 and not available and not processes_available():
        return 1
    return max(1, n)


def processes_available() -> bool:
    """Whether joblib can start worker processes (its loky backend): not with JOBLIB_MULTIPROCESSING=0, nor where
    multiprocessing's semaphores cannot be made (a read-only /dev/shm), where joblib fell back to threads with a
    warning and then refused the BLAS cap every worker is given ("internal error (AssertionError ...)")."""
    import warnings as _warnings

    with _warnings.catch_warnings():  # "... joblib will operate in serial mode", said when joblib is imported
        _warnings.simplefilter("ignore")
        import joblib.parallel
    return "loky" in joblib.parallel.BACKENDS


# Members in processes or here, one after the other (``member_processes``; the rule is for an unasked
# --n-jobs only): worker processes when each would copy at most this many bytes of rows (the raw matrix it
# is sent plus its member's preprocessed training and validation rows), this process otherwise. A worker
# is an interpreter of 114 MB (mlpcli, NumPy, joblib imported) plus that copy: at 64 MB two workers add
# 2 x 178 MB, about the 300 MB that issue 13's bar (train within 3 x data + 300 MB) leaves above the data.
MEMBER_COPY_BYTES = 64 * 2**20


def member_plan(n_jobs: int | None = None, threads: int | None = None) -> Plan:
    """Where an ensemble's members train (``train``, and ``pipeline.train`` by default): without ``n_jobs``, one
    process per usable core (the affinity mask honours SLURM and cgroup allocations), each with ``threads`` BLAS
    threads (default 1), or this process when the workers would each copy large data (``member_processes``); an
    ``n_jobs`` given is obeyed. The model is the same either way."""
    auto = n_jobs is None
    if auto:  # fill the usable cores, each process with `threads` BLAS threads, no more
        n_jobs = max(1, usable_cores() // (threads or 1))
    return Plan(backend="loky", n_jobs=n_jobs, threads=threads, auto=auto)


def member_processes(plan: Plan, n_tasks: int, copy_bytes: int) -> int:
    """Local processes to train ``n_tasks`` independent networks in (1: here, one after the other), each
    worker copying ``copy_bytes`` of rows. An explicit --n-jobs (``plan.auto`` False) is obeyed; otherwise
    the plan's workers (one per usable core, at most ``n_tasks``), unless the copies exceed MEMBER_COPY_BYTES.

    Why processes, and why not threads, measured with ``benchmarks/bench_train.py`` on the project's 2-core
    machine (shared with other jobs, so side by side in one run):

    - Small data and networks (the sample data, 488 training rows x 2,000 genes, at most a 128-unit layer):
      an epoch is a few small matrix products that a second BLAS thread does not speed up (0.010 s with
      one thread, 0.059 s with two for a 64-unit layer: ``bench_threads.py``), while two processes of one
      thread train two members at once. Each worker costs an interpreter (~100 MB) and a copy of the rows
      (~10 MB here).
    - Large data (8,000 x 5,000 float32, 160 MB): each worker holds the 160 MB matrix it is sent and its
      member's 160 MB of preprocessed rows; two workers took the command to 1.1 GB (largest process
      750 MB), above issue 13's bar of 3 x data + 300 MB = 780 MB. Members trained here one after the
      other peak at 661 MB while they train (the process's high-water mark, --epochs 2), the level of
      one network.
    - More BLAS threads in one process instead (the issue's "large networks: threads") would change the
      model: OpenBLAS splits a float32 product differently for 1 and 2 threads, and the weights after
      three epochs differ in the last bits (488 x 2,000 -> 128 and 6,400 x 5,000 -> 128; a softmax
      regression happens to agree). Nor did it pay: on the shared machine a workload-A epoch (8,000 x
      5,000 -> 512-256) took 1.3-2.1 s with one BLAS thread and 6.1 s with two, the second thread
      waiting for a core another job held. The members therefore keep the same BLAS threads (--threads,
      default 1) whichever way they run, and processes or not, the model is byte-identical; --threads
      remains the user's choice of a different (and documented) result.
    """
    if plan.backend == "dask":
        return 0  # not local processes: the cluster decides
    workers = local_workers(plan.n_jobs, n_tasks)
    if plan.auto and workers > 1 and copy_bytes > MEMBER_COPY_BYTES:
        return 1
    return workers


def fits_plan(plan: Plan, n_tasks: int, copy_bytes: int) -> Plan:
    """The plan ``n_tasks`` independent fits (cv's folds, tune's grid points, a learning curve's sizes, an
    ensemble's members) run on, each worker copying ``copy_bytes`` of rows: an asked-for plan (``plan.auto`` False,
    --n-jobs given) or a Dask one as it is; the commands' default (``member_plan``, auto) on ``member_processes``'
    workers — one per usable core, at most one per fit — or in this process when each would copy more than
    MEMBER_COPY_BYTES."""
    if plan.backend != "loky" or not plan.auto:
        return plan
    return replace(plan, n_jobs=member_processes(plan, n_tasks, copy_bytes))


# Stop signals a local worker process ignores while it runs a task. A batch scheduler signals every process
# of the job (SLURM: SIGTERM to all, SIGKILL after a grace period) and Ctrl-C the terminal's whole process
# group: the parent turns the signal into an interrupt, keeps the results it has and ends its workers
# (joblib kills them); a worker that died of the signal first would instead surface as a "worker terminated"
# error racing with that interrupt. They stay ignored once the task has returned: the worker then sends its
# result to the parent, and a worker killed half-way through that message would leave the parent's result
# reader waiting forever for the rest of it (a hang seen with SIGTERM to the whole job as two members
# finished together). The worker still ends with the parent: joblib kills it, or it sees the parent gone.
_WORKER_IGNORED = tuple(getattr(signal, n) for n in interrupts.STOP_SIGNAL_NAMES if hasattr(signal, n))


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Stop signals held back in this thread for the block: a process started within it (a pool's worker,
    forked here or by a thread started here) inherits them blocked for its whole life, so a Ctrl-C to the
    whole process group while a worker's interpreter is still starting (before ``_call_capped`` can ignore
    them) cannot kill it with a traceback. The parent receives a signal sent meanwhile as the block ends."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    from multiprocessing import resource_tracker

    # started now, not within the block: starting it unblocks SIGINT and SIGTERM in the calling thread
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_IGNORED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


_POOLS = None
_CAP_LOCK = threading.Lock()


_CAP: dict = {"depth": 0, "limiter": None}  # blocks running now, and the first one's limiter


@contextmanager
def blas_cap(threads: int) -> Iterator[None]:
    """BLAS capped at ``threads`` within the block, from threads side by side too (a notebook's thread pool,
    joblib's threading backend, dask's threaded scheduler, each fitting a model): the first block to start caps and
    keeps what was there, the last to finish puts it back, and a block that starts meanwhile sets its cap (the
    newest holds). ``threadpool_limits`` per call unwound out of order there and left the process at 1 BLAS thread
    for good (threadpoolctl >= 3.6 also lets only the thread that set a limit change it)."""
    with _CAP_LOCK:
        if _CAP["depth"] == 0:
            _free_blas_control()
            _CAP["limiter"] = _thread_pools().limit(limits=threads)
        else:
            _thread_pools().limit(limits=threads)  # the newest cap holds; the first limiter keeps the original
        _CAP["depth"] += 1
    try:
        yield
    finally:
        with _CAP_LOCK:
            _CAP["depth"] -= 1
            if _CAP["depth"] == 0:
                _free_blas_control()  # the last to finish may not be the thread that capped
                limiter, _CAP["limiter"] = _CAP["limiter"], None
                limiter.restore_original_limits()
                _free_blas_control()  # for the caller's own threadpool_limits afterwards


def _free_blas_control() -> None:
    """Let this thread set OpenBLAS's threads: threadpoolctl >= 3.6 lets only the first thread that set them set
    them again (pthreads OpenBLAS, one pool per process), and silently ignores the others."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # threadpoolctl < 3.6: any thread sets them
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def _thread_pools():
    """One threadpoolctl controller for the process: making one scans every loaded library (3 ms, 85 % of
    predicting one row); its ``limit`` caps the BLAS and OpenMP pools it found."""
    global _POOLS
    if _POOLS is None:
        from threadpoolctl import ThreadpoolController

        _POOLS = ThreadpoolController()
    return _POOLS


def _call_capped(fn: Callable, blas_threads: int, args: tuple, parent: int | None = None) -> Any:
    """Run ``fn(*args)`` with BLAS capped at ``blas_threads`` (inside the worker). ``parent``: the pid of
    the process that started a local worker; in another process the stop signals are ignored from then on."""
    if parent is not None and os.getpid() != parent and threading.current_thread() is threading.main_thread():
        for s in _WORKER_IGNORED:  # for the rest of this worker's life, the sending of the result included
            signal.signal(s, signal.SIG_IGN)
        _exit_with_parent(parent)
    with blas_cap(blas_threads):  # a Dask worker's tasks are threads side by side
        return fn(*args)


_WATCHED: set[int] = set()  # the parents this worker process watches (one watcher per process)


PARENT_POLL = 0.5  # seconds between a worker's looks at whether its parent is still alive


def _exit_with_parent(parent: int) -> None:
    """End this worker process (os._exit) as soon as ``parent`` is no longer its parent: a parent that died
    without ending its pool (the out-of-memory killer's SIGKILL, a segfault in BLAS under ``ulimit -v``) left
    its workers alive for good, deaf to the stop signals they ignore (``_WORKER_IGNORED``), one of them blocked
    writing its result into a pipe no one reads; only ``kill -9`` removed them. A thread of the worker looks
    every PARENT_POLL seconds (it runs beside a task, or a write, that holds no interpreter lock)."""
    if parent in _WATCHED or not hasattr(os, "getppid"):
        return
    _WATCHED.add(parent)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="mlpcli-parent-watch", daemon=True).start()


def _indexed(i: int, fn: Callable, blas_threads: int, args: tuple, parent: int | None) -> tuple[int, Any]:
    """A task in a pool's worker (a loky process, a Dask worker's thread): its cores are its siblings' too,
    so nothing in it runs ``beside`` (``spare_core``)."""
    POOL_TASK.active = True
    try:
        return i, _call_capped(fn, blas_threads, args, parent)
    except Exception as exc:
        sendable = _sendable(exc)
        if sendable is exc:
            raise
        raise sendable from None
    finally:
        POOL_TASK.active = False


@dataclass(frozen=True)
class _Failed:
    """A local worker's task that raised, sent back as a result (``_indexed_or_failed``) so that ``run`` knows which."""

    error: Exception


def _indexed_or_failed(i: int, fn: Callable, blas_threads: int, args: tuple, parent: int | None
                       ) -> tuple[int, Any]:
    """``_indexed`` in a local worker process, its exception (made sendable) returned as ``_Failed``, not raised."""
    try:
        return _indexed(i, fn, blas_threads, args, parent)
    except Exception as exc:  # (``_indexed`` sent it through ``_sendable`` already)
        return i, _Failed(exc)


def _dask_result(future, client, plan: Plan) -> Any:
    """A finished Dask future's result. Cancelled while the client is still connected to its scheduler: the
    workers that held the scattered data left (the only worker died, its job ended) — said as that, not as a
    lost scheduler (``_scheduler_lost``), which is what a cancellation means once the connection is gone."""
    from concurrent.futures import CancelledError

    try:
        return future.result()
    except CancelledError:
        if client.status == "running":
            raise TrainingError(f"--scheduler {plan.scheduler}: the Dask workers left while fits ran (a worker died or "
                                "its job ended), and the data sent to them went with them; start workers with "
                                f"`dask worker {plan.scheduler}` and run again (or run the fits here with --n-jobs)") \
                from None
        raise


def _indexed_spread(i: int, fn: Callable, blas_threads: int, *args: Any) -> tuple[int, Any]:
    """``_indexed`` on a Dask worker, the task's arguments spread out so that the cluster hands it the scattered
    ones (``_run_on_dask``)."""
    return _indexed(i, fn, blas_threads, args, None)


def _sendable(exc: Exception) -> Exception:
    """``exc`` if the parent can rebuild it from its pickle, else a RuntimeError with its type and message: an
    exception whose ``__init__`` takes other arguments than its ``args`` fails to unpickle there, and joblib
    then reports only "A result has failed to un-serialize", losing the error."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__} in a worker process: {exc}")
    return exc


@contextmanager
def _backend(plan: Plan, n_tasks: int) -> Iterator[None]:
    """Configure joblib for a local ``plan`` (nothing to do for a sequential run): local workers for at most
    ``n_tasks`` tasks (``--n-jobs 64`` for 3 folds starts 3 processes, not 64 idle interpreters)."""
    import joblib

    workers = local_workers(plan.n_jobs, n_tasks)
    if workers == 1:
        yield
        return
    # each worker watches this process from its start (``_exit_with_parent``), not only once a task reaches it: the
    # parent killed outright while its workers were starting left them waiting for a task until loky's idle
    # timeout (300 s), and the resource trackers with them
    created = _folders_joblib_may_create()
    try:
        with joblib.parallel_config(backend="loky", n_jobs=workers, inner_max_num_threads=plan.blas_threads,
                                    initializer=_exit_with_parent, initargs=(os.getpid(),)):
            yield
    finally:  # also when a stop signal (raised as KeyboardInterrupt) or an error ends the run
        _remove_empty_folders(created)


# The folders of JOBLIB_TEMP_FOLDER that did not exist when a run started, deepest first: joblib creates them (its
# os.makedirs of the folder it shares the arrays in) and removes only that folder, so `JOBLIB_TEMP_FOLDER=$TMPDIR/
# joblib` left an empty joblib/ behind each run. Removed, when empty, after the run, and at exit (after joblib's own
# exit handler, which removes its folder when the run could not: ``_remove_at_exit``).
_CREATED_FOLDERS: list[str] = []


def _folders_joblib_may_create() -> list[str]:
    """The folders of JOBLIB_TEMP_FOLDER (as joblib reads it) that do not exist, deepest first."""
    folder = os.environ.get("JOBLIB_TEMP_FOLDER")
    if not folder:
        return []
    missing = []
    path = os.path.abspath(os.path.expanduser(folder))
    while not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    if missing:
        _remove_at_exit()
        _CREATED_FOLDERS.extend(f for f in missing if f not in _CREATED_FOLDERS)
    return missing


def _remove_empty_folders(folders: Sequence[str]) -> None:
    """Remove each of ``folders`` (deepest first) that exists and is empty; one still in use (joblib's folder not
    yet removed, another process's files in it) is left, and so its parents."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            pass
        except OSError:  # not empty, or not ours to remove
            continue
        if folder in _CREATED_FOLDERS:
            _CREATED_FOLDERS.remove(folder)


_AT_EXIT: list[bool] = []


def _remove_at_exit() -> None:
    """Register, once and before joblib registers its own (exit handlers run last registered first), the removal
    of the folders a run created that were still there when it ended."""
    if not _AT_EXIT:
        import atexit

        atexit.register(lambda: _remove_empty_folders(sorted(_CREATED_FOLDERS, key=len, reverse=True)))
        _AT_EXIT.append(True)


def _run_on_dask(tasks: Sequence[tuple[Callable, tuple]], plan: Plan, shared: Sequence[Any],
                 record: Callable[[int, Any], None]) -> None:
    """Every task on the cluster at ``plan.scheduler``, as futures of the client's own, their results handed to
    ``record(i, result)`` as they finish; the unfinished ones are cancelled when this ends early (an error, Ctrl-C).

    Not through joblib's Dask backend: joblib runs every task in the calling process when the cluster has one
    worker thread in all (its "one job: run sequentially" shortcut), so a batch job's single worker sat idle while
    the fits ran on the login node; and when the scheduler and its workers ended together it could wait forever
    for results that a lost connection had cancelled. ``shared`` objects go to the cluster once (scattered) and
    tasks receive them from there."""
    client = connect(plan.scheduler)  # (first: without distributed, the one-line error naming the extra)
    from distributed import as_completed

    futures: list = []
    try:
        wait_for_a_worker(client, plan.scheduler)
        with quiet_dask_client():
            scattered = {id(obj): future for obj, future in
                         zip(shared, client.scatter(list(shared), hash=False))} if shared else {}
            futures = [client.submit(_indexed_spread, i, fn, plan.blas_threads,
                                     *[scattered.get(id(a), a) for a in args], pure=False)
                       for i, (fn, args) in enumerate(tasks)]
            arriving = as_completed(futures, loop=client.loop)
            seen_a_worker = time.monotonic()
            while not arriving.is_empty():
                if arriving.has_ready():
                    for future in arriving.next_batch(block=False):
                        record(*_dask_result(future, client, plan))
                    continue
                if client.scheduler_info().get("workers"):
                    seen_a_worker = time.monotonic()
                elif time.monotonic() - seen_a_worker > dask_connect.WORKER_TIMEOUT:
                    left = sum(not f.done() for f in futures)
                    waited = dask_connect.WORKER_TIMEOUT
                    raise TrainingError(
                        f"--scheduler {plan.scheduler}: no Dask worker for {waited:g} s while {left} "
                        f"fit{'s' * (left != 1)} remained (the workers stopped, or their jobs ended); start workers "
                        f"with `dask worker {plan.scheduler}` and run again (or run the fits here with --n-jobs)")
                time.sleep(DASK_POLL)
    finally:
        with quiet_dask_client():  # closing a client whose scheduler has gone logs it again
            unfinished = [f for f in futures if not f.done()]
            if unfinished and client.status == "running":
                client.cancel(unfinished)
            client.close()


def run(tasks: Sequence[tuple[Callable, tuple]], plan: Plan = Plan(), shared: Sequence[Any] = (),
        progress: Callable[[int, int], None] | None = None, on_result: Callable[[Any], None] | None = None,
        keep_partial: bool = False) -> list:
    """``[fn(*args) for fn, args in tasks]``, run as ``plan`` says; results in the order of ``tasks``.

    ``shared`` lists large arguments used by many tasks (the dataset): Dask sends them to each
    worker once instead of with every task. ``progress(done, total)`` is called in this process
    as results arrive, and ``on_result(result)`` with each result. An exception in a task is
    raised here unchanged (one that could not be rebuilt here as a RuntimeError with its type and
    message); a local worker process that dies (the out-of-memory killer's SIGKILL, a crash) is a
    one-line TrainingError naming how it ended.

    Ctrl-C (a KeyboardInterrupt, which the command line also raises for SIGTERM and SIGHUP) stops the
    run and ends the workers; with ``keep_partial`` the results finished by then are returned, None in
    place of the others, instead of the interrupt being raised. Tasks run here (one worker) stop the run
    the same way when a fit in them ends early on the interrupt (``interrupts``): their result is cut short.
    """
    plan.validate()
    total = len(tasks)
    results: list = [None] * total
    done = 0

    def record(i: int, result: Any) -> None:
        nonlocal done
        results[i], done = result, done + 1
        if on_result:
            on_result(result)
        if progress:
            progress(done, total)

    try:
        if plan.backend == "dask":
            _run_on_dask(tasks, plan, shared, record)
            return results
        with _backend(plan, total):
            if local_workers(plan.n_jobs, total) <= 1:
                for i, (fn, args) in enumerate(tasks):
                    before = interrupts.count()
                    result = _call_capped(fn, plan.blas_threads, args)
                    if interrupts.count() != before:  # a fit in it ended on Ctrl-C / SIGTERM: the task is cut short
                        raise KeyboardInterrupt
                    record(i, result)
                return results
            from joblib import Parallel, delayed

            calls = (delayed(_indexed_or_failed)(i, fn, plan.blas_threads, args, os.getpid())
                     for i, (fn, args) in enumerate(tasks))
            failed: dict[int, Exception] = {}
            finished: set[int] = set()
            with warnings.catch_warnings():
                # stopped early (Ctrl-C, an error): joblib cancels the rest and would warn about it on stderr
                warnings.filterwarnings("ignore", message=".*tasks (have been|which were)", category=UserWarning)
                # as they finish, so an interrupted run keeps every finished task, not only a prefix
                with _stop_signals_blocked():  # the workers, started by the first dispatch, are born deaf
                    arriving = Parallel(return_as="generator_unordered")(calls)
                try:
                    for i, result in arriving:
                        finished.add(i)
                        if isinstance(result, _Failed):
                            failed[i] = result.error
                        else:
                            record(i, result)
                        # a failed task: the error is the first task's that fails, as one after the other (which
                        # fold's error a user reads no longer depends on which worker was quicker): the tasks before
                        # it, dispatched before it, are waited for; the rest are cancelled
                        if failed and all(j in finished for j in range(min(failed))):
                            break
                finally:  # cancelled here, inside the filter: left to the garbage collector, the generator warned
                    arriving.close()  # after the block, on stderr (a no-op once every task is in)
            if failed:
                raise failed[min(failed)]
    except KeyboardInterrupt:
        if not keep_partial:
            raise
    except Exception as exc:  # joblib's BrokenProcessPool (a local worker died), Dask's KilledWorker
        lost = _worker_lost(exc) or _scheduler_lost(exc, plan) or _no_room_to_share(exc)
        if lost is None:
            raise
        raise lost from None
    return results


# What a full or limited disk says: no space, over quota, beyond the file-size limit (``ulimit -f``)
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _no_room_to_share(exc: BaseException) -> TrainingError | None:
    """A one-line error when joblib could not write the arrays it shares with the worker processes (a memory-mapped
    copy in its temporary folder: /dev/shm, JOBLIB_TEMP_FOLDER or TMPDIR) for want of room: it surfaced as "internal
    error (PicklingError: Could not pickle the task ...)", with the OSError underneath. None for any other error."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in _NO_ROOM:
            return _no_room_error(cause.strerror or os.strerror(cause.errno))
        # (joblib's folder named in it: a task's own PermissionError is not about the folder)
        if isinstance(cause, OSError) and cause.errno in _UNUSABLE and "joblib" in str(cause.filename):
            return _unusable_folder_error(cause.strerror or os.strerror(cause.errno), cause.filename)
        # loky's feeder thread hands the OSError on as its traceback's text (a _RemoteTraceback)
        remote = re.search(r"(?:OSError|Error): \[Errno (\d+)\] ([^\n:]*)", str(cause)) if "Traceback" in str(cause) \
            else None
        if remote is not None and int(remote.group(1)) in _NO_ROOM:
            return _no_room_error(remote.group(2).strip())
        if remote is not None and int(remote.group(1)) in _UNUSABLE and "joblib" in str(cause):
            return _unusable_folder_error(remote.group(2).strip(), None)
        cause = cause.__cause__ or cause.__context__
    return None


# What a temporary folder that cannot be written says: read-only, not a directory (a file by that name), no permission
_UNUSABLE = {errno.EROFS, errno.ENOTDIR, errno.EACCES, errno.EPERM}


def _unusable_folder_error(reason: str, filename) -> TrainingError:
    """The one-line error when joblib's temporary folder (JOBLIB_TEMP_FOLDER, else /dev/shm or TMPDIR) cannot take
    the arrays shared with the worker processes."""
    folder = os.environ.get("JOBLIB_TEMP_FOLDER")
    where = (f"JOBLIB_TEMP_FOLDER={folder}" if folder else
             "joblib's temporary folder" + (f" ({os.path.dirname(str(filename))})" if filename else ""))
    return TrainingError(f"cannot share the data with the worker processes that run fits side by side: {where} "
                         f"cannot be written ({reason.lower()}); point JOBLIB_TEMP_FOLDER at a writable folder (or "
                         "unset it), or run the fits in this process with --n-jobs 1")


def _no_room_error(reason: str) -> TrainingError:
    return TrainingError(f"no room to share the data with the worker processes that run fits side by side ({reason}, "
                         "in joblib's temporary folder: a full or limited /dev/shm or TMPDIR, a quota, ulimit -f); "
                         "point JOBLIB_TEMP_FOLDER at a folder with room, or run the fits in this process with --n-jobs 1")


def _worker_lost(exc: BaseException) -> TrainingError | None:
    """A one-line error for a local worker process that died under a task (joblib's ``TerminatedWorkerError``,
    whose message spans five lines and reads as an internal error), naming how it ended and the remedy; None
    for any other error. A SIGKILL is, on a batch node, most often the out-of-memory killer at the job's limit."""
    if "distributed" in sys.modules:
        from distributed.scheduler import KilledWorker

        if isinstance(exc, KilledWorker):  # the scheduler gave up on a task whose workers kept dying under it
            return TrainingError("Dask workers died running a fit, each time it was tried (most often their memory "
                                 "limit): give the workers more memory (dask worker --memory-limit), or fewer "
                                 "threads each, or run the fits here with --n-jobs 1")
    if "joblib" not in sys.modules:  # no pool was started
        return None
    from concurrent.futures.process import BrokenProcessPool

    from joblib.externals.loky.process_executor import TerminatedWorkerError

    if isinstance(exc, BrokenProcessPool) and not isinstance(exc, TerminatedWorkerError):
        # a worker could not rebuild its task: a package installed anew, or mlpcli's source edited, while the
        # command ran (a worker imports them when it starts), or another Python environment in the workers
        cause = exc.__cause__ or exc.__context__  # the worker's traceback as text: its last line names the error
        lines = [line for line in str(cause or "").splitlines() if line.strip() and line.strip() != '"""']
        why = lines[-1].strip() if lines else one_line(exc)
        limit = address_space_limit()
        if limit is not None and re.search(r"MemoryError|failed to map segment|Cannot allocate memory|can't start new "
                                           r"thread", why):  # its imports, beyond the limit
            return TrainingError(f"a worker process running fits side by side could not start ({why}) within the "
                                 f"address-space limit ({address_space_words(limit)}), which counts memory reserved, "
                                 "not only used, and binds each process: raise it (or lift it: ulimit -v unlimited)")
        return TrainingError(f"a worker process running fits side by side could not read its task ({why}): was "
                             "mlpcli or a package it uses installed anew or changed while this ran? Run again, or run "
                             "the fits in this process with --n-jobs 1")
    if not isinstance(exc, TerminatedWorkerError):
        return None
    codes = re.search(r"exit codes of the workers are \{([^}]*)\}", str(exc))
    how = f" ({codes.group(1)})" if codes else ""
    limit = address_space_limit()
    if limit is not None and "SIG" not in how:  # OpenBLAS ends a process with exit(1) when the limit refuses it memory
        return TrainingError(f"a worker process running fits side by side ended unexpectedly{how}, most likely at the "
                             f"address-space limit ({address_space_words(limit)}), where BLAS ends a process that it "
                             "cannot give memory; the limit counts memory reserved, not only used, and binds each "
                             "process: raise it (or lift it: ulimit -v unlimited)")
    if "SIGKILL" in how:
        advice = ("a SIGKILL usually comes from the out-of-memory killer at the job's memory limit: run fewer fits "
                  "side by side (--n-jobs) or ask for more memory")
    else:
        advice = "rerun with --n-jobs 1 to run the fits in this process and see the error"
    return TrainingError(f"a worker process running fits side by side ended unexpectedly{how}; {advice}")


def _scheduler_lost(exc: BaseException, plan: Plan) -> TrainingError | None:
    """A one-line error when the Dask scheduler went away while fits ran (its node crashed, its batch job ended):
    the client cancels every future ("scheduler-connection-lost") or finds its connection closed, which read as
    "internal error (FutureCancelledError ...)" under two tracebacks of distributed's logging. None for any other
    error, and for a run that did not use Dask."""
    if plan.backend != "dask" or "distributed" not in sys.modules:
        return None
    from concurrent.futures import CancelledError  # distributed's FutureCancelledError derives from it

    from distributed.comm.core import CommClosedError

    if not isinstance(exc, (CancelledError, CommClosedError)):
        return None
    return TrainingError(f"--scheduler {plan.scheduler}: lost the connection to the Dask scheduler while fits ran "
                         "(it stopped, or its job ended); check that it is running, then run again (or run the fits "
                         "here with --n-jobs)")


def shutdown_workers() -> None:
    """End the local worker processes a run started, now: joblib keeps them for the next run, to be ended
    by an exit handler while the interpreter shuts down, where a stop signal (a scheduler's SIGTERM to the
    whole job as the command ends) would interrupt the handler and leave a traceback or its queues'
    semaphores behind. The command line calls this once its command is done. (Killing the idle workers instead,
    loky's ``kill_workers``, saved the 0.2 s this waits for them; it was tried and left out: one run in about
    seventy then ended with the resource tracker's "leaked semlock objects" warning on stderr.)"""
    if "joblib" not in sys.modules:
        return
    from joblib.externals.loky import reusable_executor

    with reusable_executor._executor_lock:
        executor, reusable_executor._executor = reusable_executor._executor, None
    if executor is not None:
        executor.shutdown(wait=True)
