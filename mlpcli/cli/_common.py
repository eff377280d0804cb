"""Plumbing shared by every command: consoles, error handling, shared options, atomic writes."""

from __future__ import annotations

import _thread
import errno
import functools
import io
import json
import math
import os
import signal
import stat
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table as _RichTable
from rich.text import Text

from .. import interrupts
from .._entry import CLOSED_STREAMS, STOP_SIGNALS, quiet_exit
from ..errors import DataError, MlpcliError, OptionError
from ..fileio import descriptor_of
from ..jsonable import json_default

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Table(_RichTable):
    """A rich table whose string cells are shown as written: names from the data (a class 'T [naive]', a
    gradcheck component 'loss:ce[large logits]', a file 'run[2].csv') would be read as rich markup and their
    bracketed parts dropped. A cell that wants styling passes a ``Text`` (``Text.from_markup``) or the row's
    ``style``."""

    def add_row(self, *renderables, **kwargs) -> None:
        super().add_row(*(Text(r) if isinstance(r, str) else r for r in renderables), **kwargs)


class _StdoutConsole(Console):
    """Standard output's console: a reader that closes the pipe early (``| head``) ends the command as it ends
    a command writing rows, exit 141 (rich's own rule is exit 1, which reads as an error)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        silence_stdout()
        raise SystemExit(141)

    def print(self, *objects, **kwargs) -> None:
        # Not a terminal (a pipe, a log): nothing to fit, so a table wider than the default width gets the
        # width it needs instead of columns squeezed to nothing (cv --leave-batch-out has 13); a COLUMNS the user
        # set is kept (wrapped cells, not a wider table)
        if not self.is_terminal and columns_env() is None:
            unbounded = self.options.update(max_width=10_000)
            widest = max((self.measure(o, options=unbounded).maximum for o in objects if isinstance(o, Table)),
                         default=0)
            if widest > self.width:
                self.width = widest
        with stdout_errors():
            super().print(*objects, **kwargs)


@contextmanager
def stdout_errors(what: str = "standard output"):
    """Within the block only standard output is written: a failed write (``> FILE`` on a full disk or quota)
    is an error naming it, not a bare "[Errno 28] No space left on device"; a closed pipe stays a
    BrokenPipeError (exit 141). What stays in the buffer is dropped, so the exit's own flush fails no more."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        if getattr(exc, "filename", None):
            raise
        silence_stdout()
        reason = exc.strerror or type(exc).__name__
        raise click.ClickException(f"cannot write {what}: {reason[:1].lower() + reason[1:]}") from None


PIPE_WIDTH = 140  # standard output's width in a pipe or file when COLUMNS does not say


def columns_env() -> int | None:
    """The width the COLUMNS environment variable sets (a positive whole number), or None."""
    columns = os.environ.get("COLUMNS", "").strip()
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def _colours_only(stream) -> dict:
    """Console settings for ``stream`` under FORCE_COLOR: it asks for colours (force-color.org), but rich takes
    it for a terminal, so a batch job's log file got the live progress bar's frames (ten a second, cursor codes
    and all) and tables wrapped at 80 columns. Where the stream is no terminal, the console is told so and keeps
    the colours. TTY_COMPATIBLE, rich's own setting for a log viewer that renders a terminal, is left to rich."""
    env = os.environ
    if env.get("FORCE_COLOR", "") == "" or env.get("TTY_COMPATIBLE", "") in ("0", "1"):
        return {}
    try:
        if stream.isatty():
            return {}
    except (AttributeError, ValueError, OSError):
        pass
    return {"force_terminal": False, "color_system": "standard"}


def stdout_console() -> Console:
    """Standard output's console. Piped output (logs, CI) gets a wide fixed width rather than wrapping tables at
    80 columns: COLUMNS when set (a user who exports it for a narrow log viewer), else PIPE_WIDTH."""
    console = _StdoutConsole(file=sys.stdout, soft_wrap=False, **_colours_only(sys.stdout))
    if not console.is_terminal:
        console = _StdoutConsole(file=sys.stdout, soft_wrap=False, width=columns_env() or PIPE_WIDTH,
                                 **_colours_only(sys.stdout))
    return console


def binary_stdin():
    """Standard input as bytes (for '-' as the data file). Click 8.5 deprecates
    ``click.get_binary_stream``; on POSIX it was ``sys.stdin.buffer`` anyway, and Click's test runner
    gives its stdin a ``buffer`` too. A standard input the command started with closed (``<&-``, as a batch
    script may leave it; ``_entry`` reopened it on /dev/null) is a DataError saying so, not "is empty"."""
    if "stdin" in CLOSED_STREAMS:
        raise DataError("DATA -: standard input is closed (the command started without one, as `<&-` leaves it); "
                        "pipe a table into it, or give DATA a file")
    return getattr(sys.stdin, "buffer", sys.stdin)


class _StderrConsole(Console):
    """Standard error's console: a reader that closes the pipe early (``2>&1 | head``) ends the command as on
    standard output, exit 141 (128 + SIGPIPE), leaving no partial output. Rich's own rule ended it with exit 1,
    an error with nothing said, after pointing standard *output* at /dev/null."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _silence(2)  # what is still to be said (the exit's own lines) goes nowhere, without another error
        if threading.current_thread() is threading.main_thread():
            raise SystemExit(141)

    def print(self, *objects, **kwargs) -> None:
        # Standard error that cannot take a line (a batch job's log on a full disk or over its quota, EIO on a
        # network file system): the notes are lost, not the run. The first note used to end the command, exit 1
        # with nothing said anywhere, before its outputs (on another file system) were written; shell tools
        # ignore such failures of their diagnostics too. The exit code still tells any error.
        try:
            super().print(*objects, **kwargs)
        except BrokenPipeError:  # rich calls on_broken_pipe itself from 13.8 on; before, the error came here
            self.on_broken_pipe()
        except OSError:
            self.quiet = True
            _silence(2)


def stderr_console(quiet: bool = False) -> Console:
    colours = _colours_only(sys.stderr)
    console = _StderrConsole(file=sys.stderr, quiet=quiet, highlight=False, **colours)
    if not console.is_terminal:  # logs of batch jobs: one warning per line, not wrapped at 80 columns
        console = _StderrConsole(file=sys.stderr, quiet=quiet, highlight=False, width=1000, soft_wrap=True,
                                 **colours)
    return console


class StderrBar:
    """Base of the progress renderers: a transient rich bar on a terminal (``self.bar``, set by the
    subclass), otherwise plain lines (``say``) or nothing; usable as a context manager. In a log, a line at least
    every ``SECONDS`` (``heartbeat``'s, from a thread) while the run prints none of its own: a batch job's log
    said nothing for minutes while an ensemble's members trained in worker processes."""

    SECONDS = 60.0

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.console = stderr_console(quiet)
        self.bar = None
        self.started = self.printed = time.monotonic()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def wants_bar(self) -> bool:
        return not self.quiet and self.console.is_terminal

    def __enter__(self):
        if self.bar:
            self.bar.start()
        elif not self.quiet and not self.console.is_terminal:
            self._beat = threading.Thread(target=self._heartbeat, name="mlpcli-progress", daemon=True)
            self._beat.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.bar:
            self.bar.stop()

    def say(self, line: str) -> None:
        """A progress line in a log (standard error gone: dropped, the exit code still tells)."""
        self.printed = time.monotonic()
        try:
            self.console.print(line)
        except OSError:
            pass

    def heartbeat(self, minutes: float) -> str | None:
        """The line a log gets after ``SECONDS`` without one (None: none)."""
        return None

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(0.05, min(self.SECONDS, 5.0))):
            if time.monotonic() - self.printed >= self.SECONDS:
                line = self.heartbeat((time.monotonic() - self.started) / 60)
                if line is None:
                    self.printed = time.monotonic()
                else:
                    self.say(line)


def _debug_enabled() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.meta.get("mlpcli.debug") or ctx.params.get("debug"):
            return True
        ctx = ctx.parent
    return False


# --------------------------------------------------------------------------- signals
# Batch schedulers stop jobs with SIGTERM (SLURM's scancel and time limits, then SIGKILL after a grace
# period) and a closed terminal sends SIGHUP. Both are turned into ``Terminated``, a KeyboardInterrupt,
# so they unwind exactly like Ctrl-C: atomic writes remove their temporary files, the fit loop keeps the
# best weights so far, and the command exits 128 + the signal's number (130 SIGINT, 129 SIGHUP, 143 SIGTERM).
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


def interrupted_exit(exc: BaseException | None = None, what: str = "") -> None:
    """Say how the command was stopped (with ``what`` it kept, if anything) and exit 128 + the signal."""
    signum = stop_signal(exc) or int(signal.SIGINT)
    name = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    _state["said"] = True
    _say(f"Interrupted{name}{': ' + what if what else '.'}")
    sys.exit(128 + signum)


def _say(line: str) -> None:
    """One line on standard error, the command's last (its error or how it was stopped): a reader of standard
    error that has gone does not turn it into a traceback (the exit code still says it)."""
    try:
        click.echo(line, err=True)
    except OSError:  # BrokenPipeError, a full disk under 2> FILE
        _silence(2)


# What makes each command's run smaller, for its out-of-memory error (the options it has).
_SMALLER = "make the run smaller"
_FITS = "--hidden, --batch-size, --top-var, or --n-jobs 1 so that fewer fits hold their data at once"
MEMORY_REMEDIES = {
    "train": f"{_SMALLER} ({_FITS})",
    "cv": f"{_SMALLER} ({_FITS})",
    "tune": f"{_SMALLER} ({_FITS}; a smaller --grid)",
    "diagnose": f"{_SMALLER} ({_FITS})",
    "predict": f"{_SMALLER} (--chunk-mb or --chunksize: fewer rows at a time)",
    "evaluate": f"{_SMALLER} (--chunk-mb or --chunksize: fewer rows at a time)",
    "recalibrate": f"{_SMALLER} (--chunk-mb or --chunksize: fewer rows at a time)",
    "explain": f"{_SMALLER}: explain reads the table whole, so give it fewer samples (a subset of the rows)",
    "gradcheck": f"{_SMALLER} (--rows)",
}


def handle_errors(fn):
    """Turn library errors into one-line Click errors (exit 1), and Ctrl-C, SIGTERM and SIGHUP into exit
    128 + the signal (see ``stop_signals_as_interrupts``)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as exc:
            if _debug_enabled():
                raise
            interrupted_exit(exc, getattr(exc, "on_stop", ""))  # what a command said of its outputs, if anything
        except BrokenPipeError as exc:  # `mlpcli predict ... -o - | head`: the reader has all it wanted
            silence_stdout()
            if _received:  # the reader went with a stop signal the command had received (a job's whole group
                # stopped): the stop is how it ended, with what the command said of its outputs
                interrupted_exit(exc, getattr(exc, "on_stop", ""))
            sys.exit(141)  # 128 + SIGPIPE, as a shell tool stopped by the closed pipe would
        except Exception as exc:
            if _debug_enabled():
                raise
            known = isinstance(exc, (MlpcliError, ValueError, OSError))
            if stop_signal(exc) is not None:
                # After a stop signal an error is its consequence (a worker process killed by the same SIGTERM,
                # a write cut short): the exit code says how the command ended; a user-facing error still shows.
                if known:
                    _say(f"Error: {_one_line(exc)}")
                interrupted_exit(exc)
            if isinstance(exc, OptionError):  # an option's value that cannot work: a usage error (exit 2)
                raise click.UsageError(_one_line(exc)) from exc
            if isinstance(exc, MemoryError) or out_of_memory(exc):  # the job's memory (RAM, cgroup, ulimit -v) ran out
                raise click.ClickException(
                    "out of memory: the job's memory limit (RAM, the batch job's allocation or `ulimit -v`) is "
                    f"too small for this run; ask for more, or {MEMORY_REMEDIES.get(fn.__name__, _SMALLER)}") from exc
            if known:
                raise click.ClickException(_one_line(exc)) from exc
            # an engine bug should still not dump a traceback on users
            raise click.ClickException(
                f"internal error ({type(exc).__name__}: {_one_line(exc)}); rerun with --debug for the traceback"
            ) from exc

    return wrapper


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the job's memory running out in another guise than a MemoryError: a thread that cannot
    get its stack ("can't start new thread"), a shared library that cannot be mapped (an import under `ulimit -v`:
    "failed to map segment from shared object"), an allocation the system refused (ENOMEM)."""
    text = str(exc).lower()
    if isinstance(exc, RuntimeError) and "can't start new thread" in text:
        return True
    if isinstance(exc, ImportError) and ("failed to map segment" in text or "cannot allocate memory" in text):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.ENOMEM


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe."""
    _silence(1)


def _silence(fd: int) -> None:
    """Point the standard stream ``fd`` (1 or 2) at /dev/null: what Python still holds buffered for it, and
    anything written later, goes there without another error."""
    stream = sys.stdout if fd == 1 else sys.stderr
    try:
        target = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != target:
            os.dup2(devnull, target)
            os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def one_stdout_writer(writers: dict[str, bool]) -> None:
    """A usage error when more than one of the outputs ``writers`` (option text: whether it goes to standard
    output) would write to standard output: a pipe would get one document after the other, readable as
    neither."""
    on = [name for name, to_stdout in writers.items() if to_stdout]
    if on:
        check_stdout_open(on[0])
    if len(on) > 1:
        on = [name + (" (the default)" if _by_default(name.split()[0]) else "") for name in on]
        raise click.UsageError(f"{', '.join(on[:-1])} and {on[-1]} would {'both' if len(on) == 2 else 'all'} write "
                               "to standard output; give all but one of them a file name")


def _by_default(flag: str) -> bool:
    """Whether the current command's option ``flag`` (-o) has its default value, not one the user gave: an error
    that names ``-o -`` must say so when the user never typed it (predict writes to standard output by default)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    for param in ctx.command.params:
        if flag in getattr(param, "opts", ()):
            return ctx.get_parameter_source(param.name) == click.core.ParameterSource.DEFAULT
    return False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def debug_option(fn):
    return click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")(fn)


def quiet_option(fn):
    return click.option("-q", "--quiet", is_flag=True, help="No progress or notes on stderr (warnings still show).")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON document on stdout.")(fn)


def threads_context(threads: int | None):
    """Cap BLAS threads (threadpoolctl) for the command: --threads, else the one default of every command
    (``parallel.default_blas_threads``: 1, never more than the usable cores), so HPC jobs stay within their
    allocation and a busy node is not oversubscribed. A batch script's OMP_NUM_THREADS (or another BLAS
    variable) asking for another count is said in a note (``blas_note``), hidden by the command's -q."""
    from threadpoolctl import threadpool_limits

    from ..parallel import default_blas_threads

    note = blas_note(threads)
    if note is not None:
        ctx = click.get_current_context(silent=True)
        report([note], [], bool(ctx is not None and ctx.params.get("quiet")))
    return threadpool_limits(limits=threads or default_blas_threads())


_BLAS_NOTE_SAID = "mlpcli.blas_note_said"  # ctx.meta: the command has said (or handed on) the BLAS note


def blas_note(threads: int | None) -> str | None:
    """``parallel.blas_env_note`` the first time a command asks for it, None afterwards: train's notes, cv's
    and tune's "fits in/on" line and ``threads_context`` each say it, and a run says it once."""
    from ..parallel import blas_env_note

    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        if ctx.meta.get(_BLAS_NOTE_SAID):
            return None
        ctx.meta[_BLAS_NOTE_SAID] = True
    return blas_env_note(threads)


# The one --n-jobs rule (``config.n_jobs_problem``), in the help of every command that takes it.
N_JOBS_FROM_END = ("Negative values count back as in joblib: -1 every core this job may use, -2 all but one, ... "
                   "(0, and values past the last core, are refused).")


def check_n_jobs(n_jobs: int, local: bool = True) -> None:
    """A usage error for an --n-jobs value that leaves no worker (``config.n_jobs_problem``), naming --n-jobs,
    or the file and its key when a --config file gave it. ``local`` False: the fits go to a Dask cluster, where
    joblib runs as many at once as the workers have threads whatever the value (only 0 is refused there): a
    value given draws a warning that it has no effect (a note when a config file gave it, which may be meant
    for local runs). Call it where the backend is known."""
    from ..config import n_jobs_problem

    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source("n_jobs") if ctx is not None else None
    config = None
    if source == click.core.ParameterSource.DEFAULT_MAP:  # --config FILE.toml's n-jobs
        from .options import CONFIG_META

        config = ctx.meta.get(CONFIG_META)
    problem = n_jobs_problem(n_jobs, local)
    if problem is not None:
        if config is not None:
            raise click.BadParameter(f"{config}: key 'n-jobs' {problem}", param_hint="'--config'")
        raise click.BadParameter(problem, param_hint="--n-jobs")
    if local or source in (None, click.core.ParameterSource.DEFAULT):
        return
    said = (f"{config}: key 'n-jobs' ({n_jobs})" if config is not None else f"--n-jobs {n_jobs}") + (
        " does not apply to --backend dask: the cluster runs as many fits at once as its "
        "workers have threads (dask worker --nthreads), whatever --n-jobs says")
    if config is not None:
        report([said], [], bool(ctx.params.get("quiet")))
    else:
        render_notes(stderr_console(False), [], [said + "; leave it out"])


# The one --threads rule, in every command's help.
THREADS_HELP = ("BLAS threads per network (each fit, each prediction pass); more than the cores this job may use "
                "(affinity, cgroup quota, SLURM_CPUS_PER_TASK) draws a warning.")
THREADS_DEFAULT = "  [default: 1: small networks gain nothing from more, see benchmarks/bench_threads.py]"


def warn_workers(n_jobs: int | None, threads: int | None, tasks: int | None = None) -> None:
    """The local worker processes --n-jobs starts for ``tasks`` fits (one per fit at most; 0: none run side by
    side), times --threads, beyond the usable cores: a warning (always shown) before any fit."""
    from ..parallel import workers_warning

    warning = workers_warning(n_jobs, threads, tasks)
    if warning is not None:
        render_notes(stderr_console(False), [], [warning])


def _warn_threads(ctx, param, value):
    """--threads beyond the usable cores: a warning (always shown, as every warning) before any work. Not in
    a command that can send its fits to a Dask cluster (a --backend option): their threads run on the
    cluster's cores, not this machine's, so that command warns once it knows where (``warn_threads``)."""
    if any(p.name == "backend" for p in ctx.command.params):
        return value
    warn_threads(value)
    return value


def warn_threads(threads: int | None) -> None:
    """``parallel.threads_warning`` for --threads on this machine's cores, shown (always) before any fit."""
    from ..parallel import threads_warning

    warning = threads_warning(threads)
    if warning is not None:
        render_notes(stderr_console(False), [], [warning])


def threads_option(fn=None, *, extra: str = ""):
    """--threads, the same option in every command (``THREADS_HELP``); `extra`: a command's own sentence."""
    def decorate(f):
        return click.option("--threads", type=click.IntRange(min=1), default=None, callback=_warn_threads,
                            help=THREADS_HELP + (" " + extra if extra else "") + THREADS_DEFAULT)(f)

    return decorate if fn is None else decorate(fn)


def check_stdout_not_input(inputs: dict) -> None:
    """A usage error, before any work, when standard output is redirected to one of the command's inputs
    (``fileio.stdout_input``; ``inputs``: option or argument -> path): ``predict m.mlp cohort.csv >> cohort.csv``
    appended the predictions to the table it read and ended with exit 0, and ``info m.mlp >> m.mlp`` wrote its
    summary into the model file; ``train data.csv >> data.csv`` its summary into the table. ``distinct_files``
    checks it for every command that names its inputs there."""
    from ..fileio import stdout_input

    name = stdout_input(inputs)
    if name is None:
        return
    path = inputs[name]
    where = "the file standard input is redirected from" if str(path) == "-" else str(path)
    emptied = "; `>` has emptied it already" if os.fstat(1).st_size == 0 else ""
    raise click.UsageError(f"standard output is redirected to {where}, the input {name}: the command would write "
                           f"into the file it reads{emptied}; redirect standard output to another file")


def distinct_files(outputs: dict[str, str | None], inputs: dict[str, str | None] | None = None) -> None:
    """A usage error when two outputs (option: path) name one file, or an output names an input: the second
    write would silently replace the first (``predict m.mlp data.csv -o data.csv``: the table by its
    predictions). Standard output ('-') and absent options are left out; an input '-' counts as the file
    standard input is redirected from (``predict m.mlp - -o data.csv < data.csv``); paths are compared as the
    files they name (``./a.csv`` and ``a.csv``, a symbolic link and its target, a hard link)."""
    def key(path: str | None, reading: bool = False):
        if path is None or not str(path).strip():  # an empty name (the reader says so), not the directory '' resolves to
            return None
        if str(path) == "-":  # standard input, as an input: the file it was redirected from
            try:
                st = os.fstat(0) if reading else None
            except OSError:
                return None
            return (st.st_dev, st.st_ino) if st is not None and stat.S_ISREG(st.st_mode) else None
        resolved = os.path.realpath(os.path.expanduser(str(path)))
        try:
            st = os.stat(resolved)
        except (OSError, ValueError):
            return resolved  # not there yet: two outputs may still name it
        if stat.S_ISDIR(st.st_mode):
            return resolved  # a 10x directory as DATA, named as an output too
        if not stat.S_ISREG(st.st_mode):
            return None  # /dev/null, a named pipe: written into, never replaced
        return (st.st_dev, st.st_ino)

    from .options import CONFIG_META

    ctx = click.get_current_context(silent=True)
    config = ctx.meta.get(CONFIG_META) if ctx is not None else None  # --config FILE.toml, read as an input
    if inputs is not None:
        check_stdout_not_input({**inputs, "--config": config})
        readers = [f"{name} {path}" for name, path in inputs.items()
                   if path is not None and (str(path) == "-" or os.path.normpath(str(path)) == "/dev/stdin"
                                            or descriptor_of(path) == 0)]
        if len(readers) > 1:  # the first would take every byte, and the second find nothing
            raise click.UsageError(f"{' and '.join(readers)} would both read standard input, which can be read once; "
                                   "give all but one of them a file name")
    seen: dict = {}
    for name, path in {**(inputs or {}), "--config": config}.items():
        k = key(path, reading=True)
        if k is not None:
            seen.setdefault(k, (f"{name} - (standard input is that file)" if str(path) == "-" else name, "input"))
        if isinstance(k, str) and os.path.isdir(k):  # a 10x directory: its files are the input (the counts)
            with os.scandir(k) as entries:
                for entry in entries:
                    inner = key(entry.path, reading=True)
                    if entry.is_file() and inner is not None:
                        seen.setdefault(inner, (f"{name}'s {entry.name}", "input"))
    for flag, path in outputs.items():
        k = key(path)
        if k is None:
            continue
        if k in seen:
            other, kind = seen[k]
            what = f"the input {other}" if kind == "input" else f"{other}'s file"
            raise click.UsageError(f"{flag} {path} is also {what}: one would replace the other; give {flag} "
                                   "another file name")
        seen[k] = (flag, "output")


def model_to_terminal(path, flag: str) -> None:
    """A usage error when a model file (binary: a zip) would be written to standard output and standard output is
    a terminal: a quarter of a megabyte of binary bytes on the screen, exit 0 (as gzip refuses to); a pipe or a
    file is written as asked."""
    if on_standard_output(path) and os.isatty(1):
        raise click.UsageError(f"{flag} {path}: a model file is binary and standard output is a terminal; redirect it "
                               "(> model.mlp), pipe it into another command, or give a file name")


def on_standard_output(path) -> bool:
    """Whether writing ``path`` writes to this process's standard output: "-", a name for it
    (``/dev/stdout``, ``/dev/fd/1``, ``/proc/self/fd/1``), or the very pipe it is (a named pipe or socket
    with its device and inode). Not a regular file standard output is also redirected to (the output keeps
    the format its extension names), nor another opening of a device (``/dev/null``, a terminal: every
    opening has the same inode, but is not this stream)."""
    if path is None:
        return False
    if str(path) == "-" or descriptor_of(path) == 1:
        return True
    try:
        here, there = os.fstat(1), os.stat(path)
    except (OSError, ValueError):
        return False
    if not (stat.S_ISFIFO(there.st_mode) or stat.S_ISSOCK(there.st_mode)):
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def stdout_alias(path):
    """``path``, or "-" when it names standard output (``on_standard_output``): then the command treats it
    as "-" — CSV rows there, its summary on standard error, one writer only — and a pipe gets one table."""
    return "-" if path is not None and str(path) != "-" and on_standard_output(path) else path


def check_stdout_open(what: str) -> None:
    """An error (exit 1) when ``what`` is to go to standard output and the command started with it closed
    (``>&-``, reopened on /dev/null by ``_entry``): the result would be lost without a word."""
    if "stdout" in CLOSED_STREAMS:
        raise click.ClickException(f"{what} writes to standard output, which was closed when the command "
                                   "started; redirect it to a file (> FILE) instead")


def json_text(doc) -> str:
    """A command's JSON document as text, for standard output or a file alike: NumPy values as plain numbers
    (``json_default``), and no NaN or infinity, which JSON parsers refuse (undefined values are null); a file name
    that is not UTF-8 (its bytes kept by Python as lone surrogates, "m\udce9.mlp") with U+FFFD for those bytes,
    as strict JSON readers refuse a lone surrogate."""
    return json.dumps(_without_surrogates(doc), indent=2, default=json_default, allow_nan=False)


def _without_surrogates(value):
    """``value`` with every string (and dict key) whose undecodable bytes Python kept as lone surrogates
    (surrogateescape) made valid text, the bytes replaced by U+FFFD; everything else as it is."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_surrogates(v) for v in value]
    return value


def print_json(doc) -> None:
    check_stdout_open("--json")
    with stdout_errors("the JSON document to standard output"):
        click.echo(json_text(doc))


# --------------------------------------------------------------------------- shared option groups
def role_options(fn):
    """Column roles of predict and evaluate: each defaults to the model's training role, then to the usual
    column name (train declares its own, with the train options)."""
    decorators = [
        click.option("--target", multiple=True, metavar="NAMES", callback=named_column,
                     help="Target column(s), where the command reads labels (evaluate's truth, the classes "
                          "explain and gradcheck explain toward); predict ignores it. Comma-separated, or repeated  "
                          "[default: the model's target]"),
        click.option("--group", default=None, callback=named_column,
                     help="Group column (samples of one patient), counted as patients: by the shift check, "
                          "evaluate's and explain's bootstrap  [default: the model's, else patient_id when present]"),
        click.option("--no-group", is_flag=True,
                     help="No group column: samples count as independent (bootstraps resample samples, not "
                          "patients)."),
        click.option("--id", "id_col", default=None, callback=named_column,
                     help="Sample id column, naming the samples in outputs and messages  [default: the model's, "
                          "else sample_id when present]"),
        click.option("--batch", default=None, callback=named_column,
                     help="Batch / site column: predict's and evaluate's shift check compares it with the training "
                          "batches  [default: the model's, else batch when present]"),
        click.option("--drop", multiple=True, help="Comma-separated columns to ignore (or repeat it)."),
        click.option("--features-in-rows", is_flag=True, help="The table is features x samples (genes in rows)."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    from .options import declared_options  # declared with the train options

    return declared_options("samples", "sep", "decimal", "layer", "raw", "var_names")(fn)



def write_text_atomic(path: str, text: str) -> None:
    from ..fileio import write_text_atomic as _write

    _write(path, text)


def write_together(files: dict[str, bytes], last=None) -> None:
    """Write the files (path: content) and run ``last`` (an output with a writer of its own: a plot, an .h5ad
    copy), all or none: each file goes to a temporary file beside it, on disk (fsync) before the next is
    started, and the temporaries are renamed into place only once ``last`` has succeeded, innermost first. An
    error in any output so leaves no new file behind, and every file an earlier run left where it was. Devices
    and open descriptors (/dev/null, /dev/stderr), which cannot be taken back, are written last before ``last``."""
    from ..fileio import atomic_write, is_special_file

    regular = [(path, content) for path, content in files.items() if not is_special_file(path)]
    special = [(path, content) for path, content in files.items() if is_special_file(path)]

    class _Last(Exception):  # carries an error of ``last`` past the files' writers, which would take a
        pass                 # full disk's OSError for their own

    def from_(i: int) -> None:
        if i == len(regular):
            for path, content in special:  # before anything is put in place: a failure (/dev/full) leaves nothing
                atomic_write(path, lambda fh, content=content: fh.write(content))
            if last is not None:
                try:
                    last()
                except OSError as exc:
                    raise _Last(exc) from None
            return
        path, content = regular[i]

        def write(fh) -> None:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())  # a full disk (NFS, quota) shows now, while nothing is in place yet
            from_(i + 1)

        atomic_write(path, write)

    try:
        from_(0)
    except _Last as wrapped:
        raise wrapped.args[0] from None



# The suffixes of what a model file is not: a table, a report, a figure, a config file. `train -o rr.csv` wrote a zip
# archive under a table's name, which the next script read as a table (predict refuses `-o x.mlp` alike)
NOT_MODEL_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".h5ad", ".json", ".toml", ".png", ".svg", ".pdf", ".h5",
                      ".xlsx", ".feather")


def check_model_name(path: str, flag: str) -> None:
    """A usage error when the model file ``path`` (``flag``'s) is named as a table, report, figure or config file."""
    from ..data.sources import format_suffix

    if str(path) == "-":
        return
    ext, _ = format_suffix(path)
    if ext in NOT_MODEL_SUFFIXES:
        raise click.UsageError(f"{flag}: {os.path.basename(os.fspath(path))!r} is named as a {ext} file, and {flag} "
                               "writes a model (a zip archive that predict, evaluate and info read); name it .mlp")


def check_writable(path: str, flag: str) -> None:
    """Fail before a long run, not after it, when an output cannot be written."""
    from ..errors import OutputError
    from ..fileio import NAME_MAX, check_file_name

    def shown(p) -> str:  # a name holding a line break (or a tab) is shown quoted: the error stays one line
        text = str(p)
        return repr(text) if any(c in text for c in "\n\r\t") else text

    try:
        check_file_name(path)  # before descriptor_of, whose normpath reads "sub/" as "sub"
    except OutputError as exc:  # the name given is a directory's: a usage error, as Click's own check of one is
        raise click.UsageError(f"{flag}: {exc}") from None
    fd = descriptor_of(path)
    if fd is not None:  # /dev/stderr, /dev/fd/3: written into (``fileio.atomic_write``), if open
        try:
            os.fstat(fd)
        except OSError:
            raise click.ClickException(f"{flag}: {shown(path)} names file descriptor {fd}, which is not open "
                                       f"(open it in the shell, e.g. {fd}> FILE, or give a file name)") from None
        return
    name = Path(path).name
    if len(os.fsencode(name)) > NAME_MAX:
        raise click.ClickException(f"{flag}: the file name is {len(os.fsencode(name))} bytes long, more than the "
                                   f"{NAME_MAX} a file system allows ({name[:40]}...)")
    try:
        parent = Path(path).expanduser().resolve().parent
    except (RuntimeError, OSError):  # Python 3.11's resolve() raises RuntimeError on a loop, 3.13 OSError
        raise click.ClickException(f"{flag}: {shown(path)} is a symbolic link that leads back to itself (a loop); "
                                   "give a file name") from None
    if parent.exists() and not parent.is_dir():
        raise click.ClickException(f"{flag}: {shown(parent)} is a file, not a directory")
    if not parent.is_dir():
        raise click.ClickException(f"{flag}: directory {shown(parent)} does not exist")
    if not os.access(parent, os.W_OK):
        raise click.ClickException(f"{flag}: directory {shown(parent)} is not writable")
    if Path(path).is_dir():
        raise click.ClickException(f"{flag}: {shown(path)} is a directory")



def check_table_output(path: str | None, flag: str) -> None:
    """Before any work: a table output (``--oof``, ``--history``, ``--results``, ``--shift-report``, ``explain -o``)
    has a format its extension names (a usage error naming ``flag`` else) and, unless it is "-" (standard
    output), a directory it can be written to."""
    if not path:
        return
    from ..errors import DataError, OutputError
    from ..fileio import check_file_name
    from ..predict.output import output_format

    try:
        check_file_name(path)  # a name ending in "/" first: its format would read as "unsupported ''"
    except OutputError as exc:  # a directory's name: a usage error, as in check_writable
        raise click.UsageError(f"{flag}: {exc}") from None

    try:
        output_format(path, tables_only=True)
    except DataError as exc:
        raise click.UsageError(f"{flag}: {exc}") from None
    if path != "-":
        check_writable(path, flag)


def render_notes(console: Console, notes, warnings) -> None:
    for n in notes:  # the library's words, names from the data among them: never markup
        console.print(f"[dim]·[/] {escape(str(n))}")
    for w in warnings:
        console.print(f"[yellow]warning:[/] {escape(str(w))}")


def report(notes, warnings, quiet: bool) -> None:
    """Notes and warnings on stderr, by the one rule of every command: -q hides notes, never warnings."""
    render_notes(stderr_console(quiet), notes, [])
    render_notes(stderr_console(False), [], warnings)



# One format per kind of figure, in every summary (train, evaluate, cv, tune, diagnose, info):
#   metric  — scores (accuracy, balanced accuracy, AUC, F1, MCC, R², correlations): 3 decimals, 0.710
#   loss    — losses and errors (log loss, Brier, ECE, RMSE, MAE, Hamming loss): 4 significant digits, 0.3037
#   seconds — 1 decimal, 2.3
#   number  — anything else (temperatures, settings): 4 significant digits, trailing zeros dropped
LOSS_METRICS = frozenset({"log_loss", "brier", "ece", "rmse", "mae", "mse", "hamming_loss", "loss"})


def metric_kind(key: str) -> str:
    """"loss" for a metric where lower is better and whose size matters (losses, errors), else "metric"."""
    return "loss" if key in LOSS_METRICS or key.endswith("_loss") else "metric"


def named_file(ctx, param, value):
    """Click callback: an output option's file name must not be empty (``--shift-report "$REPORT"`` with the
    variable unset would else write nothing, silently)."""
    if value is not None and not str(value).strip():
        raise click.BadParameter("an empty file name; give a file name, or leave the option out", ctx=ctx,
                                 param=param)
    return value


def named_column(ctx, param, value):
    """Click callback: a column option's name must not be empty (``--group "$COL"`` with the variable unset), as
    train's declared options refuse it; for a repeatable one (--target), none of its names."""
    names = value if isinstance(value, tuple) else () if value is None else (value,)
    if any(not str(v).strip() for v in names):
        raise click.BadParameter("an empty value (an unset shell variable?); give a column name, or leave the option "
                                 "out", ctx=ctx, param=param)
    return value


def finite_option(ctx, param, value):
    """Click callback: a float option's value must be a finite number (FloatRange lets inf and nan through)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a finite number", ctx=ctx, param=param)
    return value


def fmt(v, kind: str = "number") -> str:
    """A figure for people, by its kind (see above); None and NaN are "—", whole numbers and text as they are."""
    if v is None or isinstance(v, bool):
        return "—" if v is None else str(v)
    if isinstance(v, (int, np.integer)):
        return str(v)
    if not isinstance(v, (float, np.floating)):
        return str(v)
    v = float(v)
    if not np.isfinite(v):
        return "—" if np.isnan(v) else str(v)
    if kind == "metric":
        return f"{v:.3f}"
    if kind == "seconds":
        return f"{v:.1f}"
    if kind == "loss":
        if v == 0:
            return "0.000"
        magnitude = int(np.floor(np.log10(abs(v))))
        if -4 <= magnitude < 6:
            return f"{v:.{max(0, 3 - magnitude)}f}"
        return f"{v:.3e}"
    return f"{v:.4g}"


# Classes listed by the train summary's and info's recall rows; beyond, the lowest recalls (the ones a reader looks for)
RECALL_SHOWN = 12


def per_class_recall(rows: list[dict]) -> str:
    """"A 0.963 (296), B 0.975 (198), R 0.500 (6)": each class's recall and samples, in the classes' order; with
    more than RECALL_SHOWN classes the lowest recalls, lowest first, and how many more."""
    rows = [r for r in rows if r.get("support")]
    key = "label" if rows and "label" in rows[0] else "class"  # a multi-label model's labels (their positives)
    shown = rows if len(rows) <= RECALL_SHOWN else sorted(
        rows, key=lambda r: (r["recall"] is None, r["recall"] if r["recall"] is not None else 0))[:RECALL_SHOWN]
    text = ", ".join(f"{r[key]} {fmt_metric('recall', r['recall'])} ({r['support']})" for r in shown)
    what = "labels" if key == "label" else "classes"
    return text + (f"; the {RECALL_SHOWN} lowest of {len(rows)} {what} (--json: all)" if len(shown) < len(rows) else "")


def fmt_metric(key: str, v) -> str:
    """A metric's value in its kind's format (``metric_kind``)."""
    return fmt(v, metric_kind(key))


def fmt_sd(key: str, mean, sd) -> str:
    """A metric's SD over folds beside its ``mean``: to the mean's decimals (a loss's four significant digits
    gave "1.115" over "0.1417", an MAE "0.4512" over "0.005865"), or to the SD's own first significant digit when
    that is finer; in the metric's own format without a mean, or when the mean needs an exponent."""
    mean_text = fmt_metric(key, mean)
    if not isinstance(sd, (float, np.floating)) or not np.isfinite(sd) or "." not in mean_text or "e" in mean_text:
        return fmt_metric(key, sd)  # no mean (or an undefined one) to align with, or one with an exponent
    decimals = len(mean_text.split(".")[1])
    if sd > 0:
        decimals = max(decimals, -int(np.floor(np.log10(float(sd)))))
    return f"{float(sd):.{decimals}f}"


def fmt_mean_sd(key: str, mean, sd) -> str:
    """"0.812 ± 0.031": a metric's mean and SD over folds, the SD as ``fmt_sd`` gives it beside the mean; "0.812 (one
    value, no SD)" when the SD is undefined (None)."""
    if mean is None:
        return "—"
    if sd is None:
        return f"{fmt_metric(key, mean)} (one value, no SD)"
    return f"{fmt_metric(key, mean)} ± {fmt_sd(key, mean, sd)}"


def fmt_interval(key: str, ci) -> str:
    """"0.781 – 0.842": a 95 % interval in the metric's format."""
    return "—" if not ci else f"{fmt_metric(key, ci[0])} – {fmt_metric(key, ci[1])}"


def fmt_ci(key: str, ci, level: float = 0.95) -> str:
    """"95 % CI 0.781 – 0.842": an interval at ``level`` in the metric's format, as train, cv and info say it."""
    return f"{level * 100:.3g} % CI {fmt_interval(key, ci)}"
