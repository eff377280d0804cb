"""Standard output and standard error as every command writes them: rich consoles that end a command cleanly
when the reader has gone (exit 141) and keep a batch job's log readable, notes and warnings by one rule, the JSON
document, the progress bar's base, and the command's last line."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from contextlib import contextmanager

import click
from rich.console import Console, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table as _RichTable
from rich.text import Text

from .._entry import CLOSED_STREAMS
from ..errors import DataError
from ..jsonable import json_default


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
        if not self.is_terminal:
            if columns_env() is None:
                unbounded = self.options.update(max_width=10_000)
                widest = max((self.measure(o, options=unbounded).maximum for o in objects if isinstance(o, Table)),
                             default=0)
                if widest > self.width:
                    self.width = widest
            objects = for_a_file(objects)
        with stdout_errors():
            super().print(*objects, **kwargs)


def for_a_file(objects: tuple) -> tuple:
    """What a console prints to a pipe or a file, laid out for it: tables without their outer frame, whose right
    edge stood after each cell's padding to its column's width (every row of train's summary 450 characters wide in a
    log read at 80 to 200 columns), and no line ending in the spaces that pad it to that width (rich pads a table's
    title and caption to the table's width: 430 spaces after "Training summary"), and panels without their box,
    whose right border stood at the console's width after every line (diagnose's verdict: 140 columns of spaces and
    a border in a SLURM log), their title a line above their body."""
    for o in objects:
        if isinstance(o, _RichTable):
            o.show_edge = False
    objects = tuple(_unboxed(o) if isinstance(o, Panel) else o for o in objects)
    return tuple(o if isinstance(o, (str, Text)) or not hasattr(o, "__rich_console__") else _Trimmed(o)
                 for o in objects)


def _unboxed(panel: Panel) -> Group:
    """A panel's title, body and subtitle, one after the other, without its box (a title given as a string is
    markup, as the panel reads it)."""
    def line(title) -> list:
        if not title:
            return []
        return [Text.from_markup(title, style="bold") if isinstance(title, str) else title]

    return Group(*line(panel.title), panel.renderable, *line(panel.subtitle))


class _Trimmed:
    """A renderable (a table) drawn as it is, without the spaces that pad its lines to its width: rich pads a
    table's title and caption to the table's width, which in a pipe or a file is trailing whitespace."""

    def __init__(self, renderable) -> None:
        self.renderable = renderable

    def __rich_measure__(self, console: Console, options) -> Measurement:
        return Measurement.get(console, options, self.renderable)

    def __rich_console__(self, console: Console, options):
        for line in console.render_lines(self.renderable, options, pad=False):
            while line and not line[-1].control and not line[-1].text.rstrip(" "):
                line.pop()
            if line and not line[-1].control:
                last = line[-1]
                line[-1] = Segment(last.text.rstrip(" "), last.style, last.control)
            yield from line
            yield Segment.line()


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
        from ..data.sources import closed_stdin

        raise DataError(f"DATA -: {closed_stdin(into='it')}")
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
        if not self.is_terminal:  # a log: laid out as standard output's tables are in one
            objects = for_a_file(objects)
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


def say_line(line: str) -> None:
    """One line on standard error, the command's last (its error or how it was stopped): a reader of standard
    error that has gone does not turn it into a traceback (the exit code still says it)."""
    try:
        click.echo(line, err=True)
    except OSError:  # BrokenPipeError, a full disk under 2> FILE
        _silence(2)


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


def render_notes(console: Console, notes, warnings) -> None:
    for n in notes:  # the library's words, names from the data among them: never markup
        console.print(f"[dim]·[/] {escape(str(n))}")
    for w in warnings:
        console.print(f"[yellow]warning:[/] {escape(str(w))}")


def report(notes, warnings, quiet: bool) -> None:
    """Notes and warnings on stderr, by the one rule of every command: -q hides notes, never warnings."""
    render_notes(stderr_console(quiet), notes, [])
    render_notes(stderr_console(False), [], warnings)
