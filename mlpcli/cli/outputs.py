"""A command's output files, checked before any work and written all or none: names that cannot be written, two
outputs (or an output and an input) naming one file, standard output as an output, a model named as a table."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click

from ..fileio import descriptor_of
from .console import check_stdout_open


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
