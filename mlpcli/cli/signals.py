"""Stop signals as interrupts: Ctrl-C, SIGTERM and SIGHUP end a command as one unwinding, with exit 128 + the
signal.

Batch schedulers stop jobs with SIGTERM (SLURM's scancel and time limits, then SIGKILL after a grace period) and a
closed terminal sends SIGHUP. Both are turned into ``Terminated``, a KeyboardInterrupt, so they unwind exactly like
Ctrl-C: atomic writes remove their temporary files, the fit loop keeps the best weights so far, and the command exits
128 + the signal's number (130 SIGINT, 129 SIGHUP, 143 SIGTERM)."""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

from .. import interrupts
from .._entry import STOP_SIGNALS, quiet_exit
from .console import say_line


_received: list[int] = []  # stop signals this process received, in order (those raised as interrupts)


class Interrupted(KeyboardInterrupt):
    """A stop signal raised as an exception in the main thread: a KeyboardInterrupt to every ``except``, but
    never KeyboardInterrupt itself. CPython remembers a KeyboardInterrupt of exactly that class that leaves
    code run by ``exec()`` or ``eval()`` of a string (``collections.namedtuple``, ``dataclasses`` and
    ``typing`` run such code, in the imports a command makes as it goes) as unhandled, however it is caught
    afterwards; ``python -m mlpcli`` then ended, after its "Interrupted." and exit 130, by killing itself
    with SIGINT (exit status -2). A subclass is not remembered."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Terminated(Interrupted):
    """A stop signal other than Ctrl-C (SIGTERM, SIGHUP) raised as an exception in the main thread."""


# A stop signal that arrives while the command is already stopping (a double Ctrl-C) waits for the cleanup
# this many seconds after the signal that started the stop; later, the stop is evidently stuck and the
# process ends at once.
_REPEAT_GRACE = 2.0


_state = {"since": 0.0, "said": False}


def _on_stop_signal(signum, frame):
    if _received and _stopping():
        _repeated()
        return
    _received.append(signum)
    _state["since"] = time.monotonic()
    exc = Interrupted(signum) if signum == signal.SIGINT else Terminated(signum)
    if interrupts.holding():  # a step not to cut in two (creating a temporary file): raised as it ends
        interrupts.defer(exc)
        return
    raise exc


def _on_lost_interrupt(unraisable) -> None:
    """``sys.unraisablehook`` while stop signals are interrupts. A signal that lands in a ``__del__`` method or
    a weakref callback (the garbage collector runs them between any two steps) raises its interrupt where
    Python cannot propagate it: it printed "Exception ignored in ..." and the command went on to the end,
    exit 0, as if the signal had never come (and SLURM's SIGKILL followed its SIGTERM). The interrupt is
    delivered again, as a new signal, once the main thread is back in ordinary code."""
    exc = unraisable.exc_value
    if isinstance(exc, Interrupted) and threading.current_thread() is threading.main_thread():
        if exc.signum in _received:
            _received.remove(exc.signum)  # it is received again, as if for the first time
        # From another thread, after a moment: raised from here, the handler would run inside this hook
        # (itself a place Python cannot propagate from) before it returns.
        again = threading.Timer(0.01, _thread.interrupt_main, args=(exc.signum,))
        again.daemon = True
        again.start()
        return
    _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook


def _stopping() -> bool:
    """Whether the command is already stopping: an interrupt waits to be raised (``interrupts.held``), is
    being raised or handled (its cleanup: ``except`` and ``finally`` blocks, the exit it became) or has been
    said. Not when the interrupt was absorbed (a fit keeping its best weights) or lost (in a ``__del__``):
    the command goes on, and a signal stops it as the first did."""
    if _state["said"] or interrupts.holding():
        return True
    exc = sys.exc_info()[1]
    while exc is not None:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            return True
        exc = exc.__context__
    return False


def _repeated() -> None:
    """A stop signal while the command is stopping: its cleanup (removing a temporary file, writing the
    weights kept) is not cut short by the same request arriving twice. Long after the signal that started
    the stop, it is evidently stuck: the process ends now, its temporary files removed, with 128 + that
    signal."""
    if time.monotonic() - _state["since"] < _REPEAT_GRACE:
        return
    from ..fileio import discard_temporaries

    discard_temporaries()
    if _state["said"]:  # "Interrupted." is on stderr already
        os._exit(128 + _received[-1])
    else:
        quiet_exit(_received[-1], None)  # says so, then os._exit(128 + the signal)


# the stop signals this process ignores because a command of it was stopped (``stop_signals_as_interrupts``), not
# because its caller ignored them: a later command in the process (a test runner's) handles them again
_own_ignore: set = set()


@contextmanager
def stop_signals_as_interrupts():
    """Within the block, SIGTERM and SIGHUP raise ``Terminated`` and SIGINT ``Interrupted`` (both
    KeyboardInterrupts), each remembered for the exit code; one that arrives while the command is already
    stopping is not raised, so that its cleanup runs to the end (``_stopping``, ``_repeated``), and none cuts
    an ``interrupts.held`` step in two. Afterwards the previous handlers come back, unless a stop
    signal was received: the process is then ending with 128 + that signal, and further stop signals stay
    ignored to the end (the interpreter's teardown puts Python's handlers back to the default action, which
    a signal arriving then would carry out: death by the signal instead of exit 128 + the first). The
    command line's entry point wraps every command in it; the library never installs handlers (a notebook
    keeps its own)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _previous_unraisablehook
    _received.clear()
    _state["said"] = False
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        # keep an ignored SIGINT ignored (a background job's); the console script's own early handler (_entry)
        # gives way. Any other stop signal the caller ignores stays ignored too: `nohup mlpcli train ... &` ignores
        # SIGHUP so that the job outlives the terminal, and a handler put over it stopped the job at logout (exit
        # 129, a model of the members trained by then)
        if s == signal.SIGINT:
            if previous[s] in (signal.default_int_handler, quiet_exit):
                signal.signal(s, _on_stop_signal)
        elif previous[s] != signal.SIG_IGN or s in _own_ignore:
            signal.signal(s, _on_stop_signal)
    _previous_unraisablehook, sys.unraisablehook = sys.unraisablehook, _on_lost_interrupt
    try:
        yield
    finally:
        sys.unraisablehook = _previous_unraisablehook
        for s, handler in previous.items():
            if _received:  # ending: ignored to the end (below), by us, not by the caller
                signal.signal(s, signal.SIG_IGN)
                _own_ignore.add(s)
            else:
                signal.signal(s, handler)


def stop_signal(exc: BaseException | None = None) -> int | None:
    """The signal that stopped the command: ``exc``'s, else the last one received (an error that follows a
    signal, such as a worker process killed by the same SIGTERM, is its consequence), else SIGINT for a
    plain KeyboardInterrupt; None when no signal is involved."""
    if isinstance(exc, Interrupted):
        return exc.signum
    if _received:
        return _received[-1]
    if isinstance(exc, KeyboardInterrupt):
        return int(signal.SIGINT)
    return None


def interrupted_exit(exc: BaseException | None = None, what: str = "", ended: bool = False) -> None:
    """Say how the command was stopped (with ``what`` it kept, if anything; ``ended``: after it had ended, its
    outputs written, as the console script's own handler says of a signal in the exit handlers) and exit 128 + the
    signal."""
    signum = stop_signal(exc) or int(signal.SIGINT)
    name = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    _state["said"] = True
    if ended:
        what = ""
        name += " after the command had ended: its outputs and the lines above are complete"
    say_line(f"Interrupted{name}{': ' + what if what else '.'}")
    sys.exit(128 + signum)
