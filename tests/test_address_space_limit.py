"""An address-space limit (``ulimit -v``, RLIMIT_AS, set per job on many HPC clusters): OpenBLAS reserved a 32 MiB
buffer and a thread stack per core when NumPy loaded it, twice over with SciPy's copy (2.6 GB each on a 64-core
node), and ended the command with its own "Memory allocation still failed" whenever the limit refused it memory,
mid-run too (a second thread's first BLAS call maps a second buffer). The command line loads OpenBLAS with one thread,
keeps BLAS in one thread per process under a limit, has the allocators reserve less there, and names the limit in
its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlpcli import parallel, resources
from mlpcli.errors import TrainingError
from cli_helpers import assert_clean_error, run
from tables import write_table

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

pytestmark = pytest.mark.skipif(resource is None or not hasattr(resource, "RLIMIT_AS") or sys.platform != "linux",
                                reason="RLIMIT_AS as Linux enforces it")

GiB = 1024 ** 3


def _child(code: str, limit: int | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -c code`` in a process of its own, under an address-space limit of ``limit`` bytes when given."""

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    clean = {k: v for k, v in os.environ.items() if k not in parallel.BLAS_THREAD_VARIABLES
             and not k.startswith(("MALLOC_", "MIMALLOC_"))}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=120, preexec_fn=limited if limit is not None else None)


# The command line's start (``_entry.main``) up to its command, which reports what NumPy's OpenBLAS was loaded with
_STARTED = """
import json, os, sys, types
fake = types.ModuleType("mlpcli.cli")
def report():
    import numpy
    from threadpoolctl import threadpool_info, threadpool_limits
    from mlpcli import parallel
    loaded = [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]
    with threadpool_limits(limits=2):  # --threads 2
        raised = [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]
    print(json.dumps({"loaded": loaded, "raised": raised, "note": parallel.blas_env_note(None)}))
fake.main = report
sys.modules["mlpcli.cli"] = fake
from mlpcli import _entry
_entry.main()
"""


@pytest.mark.skipif(resources.usable_cores() < 2, reason="OpenBLAS starts one thread per core: needs two")
@pytest.mark.parametrize("env", [{}, {"OPENBLAS_NUM_THREADS": "4"}, {"OMP_NUM_THREADS": "4"}],
                         ids=["unset", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"])
def test_the_command_line_loads_openblas_with_one_thread(env):
    """Each thread OpenBLAS starts when it is loaded costs a 32 MiB buffer and a stack of address space before the
    command has read a line; every command caps BLAS at --threads (default 1) anyway, and raises it for more."""
    out = _child(_STARTED, env=env)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if not got["loaded"]:
        pytest.skip("NumPy's BLAS is not OpenBLAS")
    assert got["loaded"] == [1] and got["raised"] == [2]
    if "OPENBLAS_NUM_THREADS" in env:  # the user's value is still the one the note names, not the one set at the start
        assert got["note"].startswith("OPENBLAS_NUM_THREADS=4 is not used")


_THREADS = """
import json
from mlpcli import allocator, background, training
set_ = allocator.reserve_less_under_a_limit()
print(json.dumps({"spare_core": background.spare_core(), "optimizer_threads": training.update_threads(),
                  "reserve_less": set_, "mimalloc": __import__("os").environ.get("MIMALLOC_ARENA_RESERVE"),
                  "arenas": __import__("os").environ.get("MALLOC_ARENA_MAX")}))
"""


@pytest.mark.skipif(resources.usable_cores() < 2, reason="work runs beside the caller only with a spare core")
def test_under_an_address_space_limit_blas_runs_in_one_thread_and_the_allocators_reserve_less():
    """A second thread in BLAS at once made OpenBLAS map a second buffer mid-run, and under the limit its refusal
    ended `train` and `cv` with "OpenBLAS error: Memory allocation still failed after 10 retries" (limits of
    740-840 MB on the sample data); mimalloc's 1 GiB reserve and glibc's 64 MiB arenas took the rest."""
    one = {"OPENBLAS_NUM_THREADS": "1"}  # each BLAS call on one thread, as every command caps it
    free = json.loads(_child(_THREADS, env=one).stdout)
    assert free == {"spare_core": True, "optimizer_threads": 2, "reserve_less": False, "mimalloc": None,
                    "arenas": None}
    out = _child(_THREADS, limit=64 * GiB, env=one)  # a limit that never binds: its presence is what counts
    assert out.returncode == 0, out.stderr
    limited = json.loads(out.stdout)
    assert limited == {"spare_core": False, "optimizer_threads": 1, "reserve_less": True, "mimalloc": "65536",
                       "arenas": "2"}
    mine = json.loads(_child(_THREADS, limit=64 * GiB, env={**one, "MIMALLOC_ARENA_RESERVE": "262144",
                                                            "MALLOC_ARENA_MAX": "4"}).stdout)
    assert (mine["mimalloc"], mine["arenas"], mine["reserve_less"]) == ("262144", "4", False)  # the user's own


_BEYOND = """
import resource, sys
import numpy, pandas, pyarrow, sklearn  # noqa: F401  (what the command imports)
import mlpcli.cli  # noqa: F401
from mlpcli import _entry

size = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:"))  # KiB
limit = (size + 16 * 1024) * 1024  # the interpreter and its imports, and 16 MiB more: too little for the run
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
print(limit // 1024, flush=True)
sys.argv = ["mlpcli", *sys.argv[1:]]
_entry.main()
"""


def test_a_run_beyond_the_limit_is_one_line_naming_it(tmp_path):
    """It said "the job's memory limit (RAM, the batch job's allocation or `ulimit -v`)" and advised --n-jobs 1, which
    puts every fit into the command's own process, the largest: the limit binds each process on its own. The limit
    is set once the interpreter has imported what the command needs (a fixed limit near the floor failed in the
    dynamic loader of one installation and not another, before mlpcli ran)."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("no /proc to read the process's size from")
    table = write_table(tmp_path, n_patients=20)
    res = subprocess.run([sys.executable, "-c", _BEYOND, "cv", table, "--n-jobs", "2", "--epochs", "2"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr and "OpenBLAS" not in res.stderr, res.stderr
    kib = int(res.stdout.split()[0])
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: out of memory: the address-space limit (ulimit -v {kib} KiB)"), last
    assert "raise it" in last and "--n-jobs 1" not in last


def test_out_of_memory_names_the_limit_and_drops_the_n_jobs_advice(tmp_path, monkeypatch):
    from mlpcli import pipeline

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(pipeline, "train_dataset", exhausted)
    table = write_table(tmp_path, n_patients=10)
    args = ["train", table, "-o", str(tmp_path / "m.mlp")]
    monkeypatch.setattr(resources, "address_space_limit", lambda: 2_000_000 * 1024)
    res = run(args)
    assert_clean_error(res, "the address-space limit (ulimit -v 2000000 KiB) is too small", "raise it",
                       "ulimit -v unlimited", "--hidden, --batch-size, --top-var)")
    assert "--n-jobs 1" not in res.output
    monkeypatch.setattr(resources, "address_space_limit", lambda: None)  # no limit: the message as it was
    assert_clean_error(run(args), "the job's memory limit (RAM", "--n-jobs 1 so that fewer fits")


def test_a_worker_that_blas_ended_under_the_limit_is_said_so(monkeypatch):
    """OpenBLAS ends a worker with exit(1) when the limit refuses it a buffer: "ended unexpectedly (EXIT(1)); rerun
    with --n-jobs 1 to ... see the error" said nothing of the limit."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    died = TerminatedWorkerError("A worker process managed by the executor was unexpectedly terminated. This could be "
                                 "caused by a segmentation fault while calling the function or by an excessive memory "
                                 "usage causing the Operating System to kill the worker.\n\nThe exit codes of the "
                                 "workers are {EXIT(1)}")
    monkeypatch.setattr(parallel, "address_space_limit", lambda: 2_000_000 * 1024)
    lost = parallel._worker_lost(died)
    assert isinstance(lost, TrainingError)
    assert "(EXIT(1))" in str(lost) and "address-space limit (ulimit -v 2000000 KiB)" in str(lost)
    assert "raise it" in str(lost) and "\n" not in str(lost)
    monkeypatch.setattr(parallel, "address_space_limit", lambda: None)
    assert "ulimit" not in str(parallel._worker_lost(died))


def test_a_worker_that_could_not_start_under_the_limit_is_not_called_a_changed_install(monkeypatch):
    """A worker whose imports the limit refused read "could not read its task (...): was mlpcli ... installed anew?"."""
    from concurrent.futures.process import BrokenProcessPool

    broken = BrokenProcessPool("A task has failed to un-serialize.")
    broken.__cause__ = RuntimeError('Traceback (most recent call last):\n  File "x.py", line 1\nImportError: '
                                    "/lib/x.so: failed to map segment from shared object\n")
    monkeypatch.setattr(parallel, "address_space_limit", lambda: 700_000 * 1024)
    said = str(parallel._worker_lost(broken))
    assert "could not start" in said and "(ulimit -v 700000 KiB)" in said and "installed anew" not in said
    monkeypatch.setattr(parallel, "address_space_limit", lambda: None)
    assert "installed anew" in str(parallel._worker_lost(broken))
