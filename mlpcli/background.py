"""Work beside the caller in this process when a core is spare (``beside``, ``Deferred``, ``import_beside``):
the same result either way, computed in a thread while the caller goes on, or here and now when no core is
spare (one usable core, BLAS already using both, or inside a pool's worker)."""

from __future__ import annotations

import importlib
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable

from .resources import address_space_limit, usable_cores


def beside(fn: Callable[..., Any], *args: Any, threaded: bool | None = None) -> Callable[[], Any]:
    """``fn(*args)`` run now: in a background thread while the caller goes on, when ``threaded`` (None:
    ``spare_core()``), else here before returning. Returns the function that gives the result (waiting for
    the thread; an error raised in it is raised there, in the caller's thread).

    For work that releases the GIL (hashing, NumPy's loops, BLAS) beside a caller that leaves a core idle:
    ``train`` runs its BLAS on one thread by default. The thread is a daemon: a Ctrl-C in the caller does
    not wait for it."""
    if not (spare_core() if threaded is None else threaded):
        try:
            value = fn(*args)
        except Exception as exc:  # raised where the result is asked for, as from the thread
            error = exc

            def fail() -> Any:
                raise error

            return fail
        return lambda: value
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # handed to the caller, in its thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="mlpcli-beside", daemon=True)
    thread.start()

    def result() -> Any:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["result"]

    return result


# The interpreter's switch interval while NumPy or pyarrow work runs beside Python code (Python's default: 5 ms).
# Each NumPy or pyarrow call of the work releases the interpreter lock and must wait for the Python thread to give it
# back, up to one interval each time: at 0.2 ms, reading 8,000 x 5,000 float32 parquet beside scikit-learn's import
# took 1.19-1.53 s (median 1.47) against 1.37-2.80 s (median 2.13) at 5 ms, five alternating runs; --log1p auto's
# look at that table beside the grouped split, 0.28 s against 0.17 s alone.
QUICK_SWITCH_INTERVAL = 0.0002


@contextmanager
def quick_switches():
    """The switch interval at QUICK_SWITCH_INTERVAL (when it is longer) for the block, then as it was."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, QUICK_SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


class Deferred:
    """``fn(*args)`` for later, on the spare core once it is free: ``start()`` begins it there (``beside``: a thread
    with a spare core, else here and now), and calling the object gives the result (computed here and now when it
    was never started). For work whose result is needed only at the end: started at once, it takes the spare core
    from work needed sooner (``train``'s checksum and table-wide checks had run beside the --log1p decision the
    preprocessing waits for, and beside the preprocessing's own threads: 0.2-0.4 s later at 8,000 x 5,000)."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self._call: tuple[Callable[..., Any], tuple] = (fn, args)
        self._result: Callable[[], Any] | None = None

    @property
    def started(self) -> bool:
        return self._result is not None

    def start(self) -> None:
        """Begin the work (once; later calls do nothing)."""
        if self._result is None:
            fn, args = self._call
            self._result = beside(fn, *args)

    def __call__(self) -> Any:
        if self._result is None:
            fn, args = self._call
            self._result = beside(fn, *args, threaded=False)
        return self._result()


def import_beside(*modules: str) -> Callable[[], None]:
    """Import ``modules`` in a background thread while the caller goes on; returns the function that waits
    for it (an import error is raised there).

    For Python-heavy imports (scikit-learn: ~1 s, most of it scipy.stats) beside work that releases the GIL,
    such as reading a table with pyarrow or NumPy. The caller must not import the same packages before it
    waits: two threads importing one package at once can see it half initialised."""

    def load() -> None:
        for name in modules:
            importlib.import_module(name)

    return beside(load, threaded=True)


def spare_core() -> bool:
    """Whether work beside the caller's has a core of its own: the cores this process may use
    (``usable_cores``) hold two of its BLAS thread cap (the caller's work and the other each as many), and
    the caller is not a task of a pool whose workers share those cores (``run``).

    Never under an address-space limit (``ulimit -v``): the first time two threads of a process are in BLAS at
    once, OpenBLAS maps a second 32 MiB buffer, and where the limit refuses it OpenBLAS ends the process then and
    there ("Memory allocation still failed after 10 retries"), without a Python error to report or files to clean
    up; each thread also reserves its stack and, often, an allocator arena. In one thread an allocation the limit
    refuses is a MemoryError, said as the one-line out-of-memory error."""
    if getattr(POOL_TASK, "active", False) or address_space_limit() is not None:
        return False
    return usable_cores() >= 2 * _blas_threads()


POOL_TASK = threading.local()  # .active: this thread runs a task of a pool's worker (``_indexed``)


def _blas_threads() -> int:
    """The threads a BLAS call of this process runs with now: the threadpoolctl cap in force (1 without BLAS).
    The smallest over the BLAS libraries loaded: a cap applies to those loaded when it was set, and one loaded
    later (scipy's, when scikit-learn is first imported during training) starts with a thread per core."""
    return min([int(lib.num_threads or 1) for lib in _blas_libraries()], default=1)


_BLAS_LIBRARIES: tuple[int, list] | None = None  # (len(sys.modules) when scanned, the BLAS libraries' controllers)


def _blas_libraries() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded, whose ``num_threads`` asks each library now.
    Scanning the loaded libraries costs 3-5 ms, and a small ``train`` asked 8 times: scanned again only when
    modules were imported since (a BLAS library comes with the extension module that links it: scipy's)."""
    global _BLAS_LIBRARIES
    if _BLAS_LIBRARIES is None or _BLAS_LIBRARIES[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _BLAS_LIBRARIES = (len(sys.modules), ThreadpoolController().select(user_api="blas").lib_controllers)
    return _BLAS_LIBRARIES[1]
