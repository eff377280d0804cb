"""Interrupts a fit absorbed: ``training.fit`` ends on Ctrl-C (or the SIGTERM / SIGHUP the command line turns
into one) with the best weights so far instead of raising, so that ``train`` can keep them. Code that runs
many fits one after the other in this process (``parallel.run`` without workers: cross-validation, tuning,
learning curves) must still stop, and asks here whether a fit was cut short while it ran.

Also the few steps a stop signal must not cut in two (``held``): the command line's signal handler
(``cli.signals``) raises its interrupt once such a step is done rather than in the middle of it; and the steps
that complete what is already paid for (``finishing``: a trained model's calibration, metrics, its writing),
after which a stop is recorded, not raised, so that the caller keeps the result and then stops."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

# The signals that stop a command as Ctrl-C does (128 + the signal's number): a terminal's SIGINT and SIGHUP, a
# batch scheduler's SIGTERM (SLURM's scancel and time limit), the SIGUSR1 / SIGUSR2 that `sbatch --signal=USR1@120`
# sends ahead of the time limit so that a job can stop in order (train then writes the best weights so far), and
# SIGXCPU at a CPU-time limit (ulimit -t). Their default action would kill the process, leaving temporary files.
STOP_SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGXCPU")

_lock = threading.Lock()
_count = 0
# Set while fits in other threads of this process are to stop (a signal reaches the main thread only): each ends at
# its next epoch as an interrupt would end it there (``training.fit``)
_stop_threads = threading.Event()


def request_stop() -> None:
    """Ask the fits running in other threads of this process to stop at their next epoch, keeping their best weights
    so far (``crossfit``'s members in threads, on the main thread's Ctrl-C or SIGTERM). Until ``clear_stop``."""
    _stop_threads.set()


def stop_requested() -> bool:
    """Whether ``request_stop`` asked the fits in threads to stop (False in the main thread: a signal stops it)."""
    return _stop_threads.is_set() and threading.current_thread() is not threading.main_thread()


def clear_stop() -> None:
    _stop_threads.clear()


def absorbed() -> None:
    """Record that a fit ended early on an interrupt instead of raising it."""
    global _count
    with _lock:
        _count += 1


def count() -> int:
    """How many fits in this process have ended on an interrupt so far (compare before and after a call)."""
    return _count


_held = 0  # nesting depth of `held` blocks in the main thread (where Python runs signal handlers)
_deferred: list[BaseException] = []  # the interrupt a handler left to be raised as the outermost block ends


@contextmanager
def held() -> Iterator[None]:
    """A step a stop signal does not cut in two, such as creating a temporary file and learning its name (an
    interrupt in between would leave the file behind, nameless). Under the command line's signal handling a
    signal that arrives within the block is raised as the block ends; elsewhere (a notebook's Ctrl-C, another
    thread) the block changes nothing."""
    global _held
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _deferred:
            exc = _deferred.pop()
            _deferred.clear()
            raise exc


def holding() -> bool:
    """Whether the main thread is inside a ``held`` block now (asked by a signal handler, in that thread)."""
    return _held > 0


def defer(exc: BaseException) -> None:
    """Raise ``exc`` as the current ``held`` block ends (a signal handler's interrupt)."""
    _deferred.append(exc)


@contextmanager
def finishing(stops: list[BaseException]) -> Iterator[None]:
    """A step that completes a result already paid for (the members are trained; what is left makes and writes
    the model): a stop signal that arrives within it is held to its end (``held``), then appended to ``stops``
    and counted as absorbed, not raised, so the caller finishes, keeps the result and stops afterwards. An
    interrupt that cuts the step short (no command-line handler: a notebook's Ctrl-C) is raised as ever."""
    done = False
    try:
        with held():
            yield
            done = True
    except KeyboardInterrupt as exc:
        if not done:
            raise
        stops.append(exc)
        absorbed()
