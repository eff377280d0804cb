"""The console script's first code, before anything heavy is imported.

A stop signal (Ctrl-C, SLURM's SIGTERM, SIGHUP) that arrives while the command line is still importing
(about half a second) or after its command has finished (while the interpreter shuts down, joblib's
worker processes included) has nothing to stop or to keep: the process says so on one line and ends with
128 + the signal, instead of a traceback from inside an import or from an exit handler; after the last exit
handler, when CPython has put the default handlers back, the signal is ignored and the command's own exit code
stands (``ignore_stop_signals``). In between, the command line's own handling
(``cli.signals.stop_signals_as_interrupts``) is in force.
"""

from __future__ import annotations

import os
import signal
import sys

from . import allocator
from .interrupts import STOP_SIGNAL_NAMES

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

STOP_SIGNALS = tuple(getattr(signal, n) for n in STOP_SIGNAL_NAMES if hasattr(signal, n))


# Whether the command has ended and succeeded (``main``): a stop signal from then on found its outputs complete,
# which the message says (a job log that ended in a bare "Interrupted by SIGTERM." after train's summary read as "no model")
_ended = False


def quiet_exit(signum, frame) -> None:
    """End the process at once: "Interrupted." (with the signal's name unless it is SIGINT), 128 + signum."""
    name = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    after = " after the command had ended: its outputs and the lines above are complete" if _ended else ""
    try:
        os.write(2, f"Interrupted{name}{after}.\n".encode())
    except OSError:  # stderr closed: the exit code still says it
        pass
    os._exit(128 + signum)


# The standard streams that were closed when the command started (`>&-`, `2>&-`, `<&-`, as a batch script
# may leave them): reopened on /dev/null, and named here for the command line's checks.
CLOSED_STREAMS: set[str] = set()


def _usable(fd: int, mode: str) -> bool:
    """Whether descriptor ``fd`` is open for ``mode`` ("r" or "w"). A wrapper script run with ``2>&-`` (pyenv's
    ``python`` shim is one) hands Python its own script, opened for reading, as descriptor 2: open, yet every
    note written there failed ("Bad file descriptor") and ended the command before its work was done."""
    try:
        if fcntl is None:  # pragma: no cover - Windows: whether it is open is all it tells
            return os.fstat(fd) is not None
        access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        return False
    return access == os.O_RDWR or access == (os.O_RDONLY if mode == "r" else os.O_WRONLY)


def open_standard_streams() -> None:
    """Reopen a closed standard stream (file descriptor 0, 1 or 2), or one open only the other way (``_usable``),
    on /dev/null, so that no file the command opens later takes its number (a model file opened as descriptor 2
    would receive the notes), and give Python a stream object for it (it has None, which joblib's worker
    launcher and rich then trip over)."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if _usable(fd, mode):
            continue
        null = os.open(os.devnull, os.O_RDONLY if mode == "r" else os.O_WRONLY)  # the lowest free number: fd
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        os.set_inheritable(fd, True)  # as a standard stream is: worker processes write to it too
        CLOSED_STREAMS.add(name)
        setattr(sys, name, open(fd, mode, closefd=False, encoding="utf-8", errors="replace"))


def tolerant_environment() -> None:
    """What the process inherits and the command cannot change, made harmless: output in an encoding that
    cannot write a dash or an ellipsis (PYTHONIOENCODING=latin-1) writes a replacement character instead of
    failing after the work is done; an OMP_NUM_THREADS in OpenMP's nested form (4,2) or garbage, which
    numexpr (imported by pandas) cannot read, no longer stops every command with "invalid literal for
    int()": numexpr is given its own setting (it computes nothing here)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="replace")
            except (ValueError, OSError):  # a stream that cannot be reconfigured is left as it is
                pass
    omp = os.environ.get("OMP_NUM_THREADS")
    positive = omp is not None and omp.strip().isdigit() and int(omp) > 0
    if omp is not None and not positive and "NUMEXPR_NUM_THREADS" not in os.environ:  # 0 too: "Error." from numexpr
        os.environ["NUMEXPR_NUM_THREADS"] = "1"


def whole_writes() -> None:
    """Under ``python -u`` or PYTHONUNBUFFERED the text layer of sys.stdout and sys.stderr writes into the raw file
    and ignores a short write (a file-size limit or quota reached mid-write): the rest of the bytes was lost
    and the command exited 0. Each such stream is given a raw layer that writes whole (``fileio.WholeWrites``),
    still unbuffered; a buffered stream (the usual case) already writes whole and is left alone."""
    import io

    from .fileio import WholeWrites

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        raw = getattr(stream, "buffer", None)
        if isinstance(stream, io.TextIOWrapper) and isinstance(raw, io.RawIOBase) and not isinstance(raw, WholeWrites):
            setattr(sys, name, io.TextIOWrapper(WholeWrites(raw), encoding=stream.encoding, errors=stream.errors,
                                                newline="\n", line_buffering=stream.line_buffering, write_through=True))


# Where Linux says when a fault on memory marked for transparent huge pages may stop to compact memory
THP_DEFRAG = "/sys/kernel/mm/transparent_hugepage/defrag"


def no_stalling_huge_pages(defrag_path: str = THP_DEFRAG) -> None:
    """Ask NumPy (``NUMPY_MADVISE_HUGEPAGE=0``, read when NumPy is imported, so before it is) not to mark its
    large arrays for transparent huge pages where Linux would then stall to compact memory on their first
    write: the defrag setting ``madvise`` or ``defer+madvise`` (a common default; numpy/numpy#31590). Where no
    free huge page is at hand, as on a long-running or memory-reporting node, each fault then waits for
    compaction: first writes to a new 128 MB array took 0.34 s against a steady 0.05 s with 4 KB pages (0.02 s
    when huge pages are free), and `train` on 8,000 x 5,000 float32 after a few idle seconds spent 0.22 s more
    outside its epochs (system time 1.52 -> 1.09 s; back to back, with free huge pages, no difference; the
    epochs unchanged). Under ``always`` the kernel gives huge pages without the mark, under ``defer`` and
    ``never`` it never stalls for them: left alone. A value the user set is kept; worker processes inherit it."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ or "numpy" in sys.modules:
        return
    try:
        with open(defrag_path) as fh:
            setting = fh.read()
    except OSError:  # not Linux, or no transparent huge pages
        return
    chosen = setting[setting.find("[") + 1:setting.find("]")] if "[" in setting and "]" in setting else ""
    if chosen in ("madvise", "defer+madvise"):
        os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"


def ignore_stop_signals() -> None:
    """The last exit handler (registered first, run last): CPython puts the default handlers back after the exit
    handlers, so a stop signal in the moments left killed the process without a word (1 run in 60 interrupted at
    the end of `predict`, exit -2, its files complete). After every other handler there is nothing to stop or keep:
    from then on the stop signals are ignored and the command's own exit code stands."""
    for s in STOP_SIGNALS:
        try:
            signal.signal(s, signal.SIG_IGN)
        except (OSError, ValueError):  # not the main thread, or a signal this system does not allow
            pass


def main() -> None:
    import atexit

    atexit.register(ignore_stop_signals)  # first registered, last run: after joblib's and every other handler
    for s in STOP_SIGNALS:
        if signal.getsignal(s) is not signal.SIG_IGN:  # a signal ignored by the caller (nohup) stays ignored
            signal.signal(s, quiet_exit)
    open_standard_streams()
    whole_writes()
    tolerant_environment()
    no_stalling_huge_pages()
    allocator.keep_freed_blocks()
    allocator.reserve_less_under_a_limit()  # (before pyarrow's allocator starts)
    from .parallel import blas_threads_at_load

    blas_threads_at_load()  # (before NumPy: OpenBLAS reads it when it loads)
    from .cli import main as cli_main

    global _ended
    try:
        cli_main()
    except SystemExit as exc:
        _ended = exc.code in (0, None)  # a failed command's outputs are not "complete"
        raise
    else:
        _ended = True
