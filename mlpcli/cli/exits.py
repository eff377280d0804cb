"""How a failed command ends: a library error, an option that cannot work or memory that ran out is one line on
standard error with exit 1 (2 for usage), a stop signal exit 128 + the signal, a closed pipe exit 141; a traceback
only with ``--debug``."""

from __future__ import annotations

import errno
import functools
import os
import re
import sys

import click

from ..errors import ConfigError, DataError, MlpcliError, OptionError, one_line
from .console import say_line, silence_stdout
from .signals import interrupted_exit, stop_signal


def _debug_enabled() -> bool:
    """Whether the command (or its group) was given --debug: the traceback, not the one line."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.meta.get("mlpcli.debug") or ctx.params.get("debug"):
            return True
        ctx = ctx.parent
    return False


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
            if stop_signal() is not None:  # the reader went with a stop signal the command had received (a job's whole group
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
                    say_line(f"Error: {one_line(exc)}")
                interrupted_exit(exc)
            filed = _config_keys(exc)
            if filed:  # an option the --config file set cannot work: a usage error naming the file and key (exit 2)
                raise click.UsageError(f"{one_line(exc)} ({filed})") from exc
            if isinstance(exc, OptionError):  # an option's value that cannot work: a usage error (exit 2)
                raise click.UsageError(one_line(exc)) from exc
            if isinstance(exc, MemoryError) or out_of_memory(exc):  # the job's memory (RAM, cgroup, ulimit -v) ran out
                raise click.ClickException(out_of_memory_message(fn.__name__)) from exc
            if known:
                raise click.ClickException(_of_the_data(exc)) from exc
            # an engine bug should still not dump a traceback on users
            raise click.ClickException(
                f"internal error ({type(exc).__name__}: {one_line(exc)}); rerun with --debug for the traceback"
            ) from exc

    return wrapper


def _config_keys(exc: BaseException) -> str | None:
    """"--config FILE: key = value" for the options a ConfigError's message names by their flag that the --config
    file set (not the command line); None when it names none or the message says the file already. The checks
    that run once the table is read (a column given two roles, --decimal comma on a comma-separated table) name
    the flag alone: with --drop or --decimal in the file, "given two roles (--target and --drop)" named no file,
    and --decimal's ConfigError exited 1, where the options' own checks name the file and key and exit 2."""
    from click.core import ParameterSource

    from ..config import toml_text
    from .options import CONFIG_META

    ctx = click.get_current_context(silent=True)
    path = None if ctx is None else ctx.meta.get(CONFIG_META)
    if path is None or not isinstance(exc, ConfigError):
        return None
    text = one_line(exc)
    if f"--config {path}" in text:
        return None
    said = []
    for p in ctx.command.params:
        flags = [o for o in getattr(p, "opts", []) if o.startswith("--")]
        if not flags or ctx.get_parameter_source(p.name) != ParameterSource.DEFAULT_MAP:
            continue
        if any(re.search(rf"{re.escape(f)}(?![\w-])", text) for f in flags):
            said.append(f"{flags[0][2:]} = {toml_text((ctx.default_map or {}).get(p.name, ctx.params.get(p.name)))}")
    return f"--config {path}: {', '.join(said)}" if said else None


DATA_META = "mlpcli.data_file"  # where a command keeps the table it reads (``reading``), for its errors


def reading(path: str) -> None:
    """Say that the running command reads the table at ``path``: its data errors that name no file and no option
    ("all 20 features are constant on the training rows", "class 'Rare' has 1 sample") are said of it."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[DATA_META] = path


def _of_the_data(exc: BaseException) -> str:
    """``exc`` in one line; a DataError that names neither a file nor an option, prefixed with the command's table."""
    text = one_line(exc)
    ctx = click.get_current_context(silent=True)
    path = None if ctx is None else ctx.meta.get(DATA_META)
    if path is None or not isinstance(exc, DataError) or isinstance(exc, OptionError):
        return text
    shown = "standard input" if path == "-" else str(path)
    head = text.split(": ", 1)[0]
    names_one = text.startswith("--") or "/" in head or "." in head or os.path.basename(shown.rstrip("/")) in text \
        or "standard input" in text
    return text if names_one else f"{shown}: {text}"


def out_of_memory_message(command: str) -> str:
    """The out-of-memory error of ``command``, with its remedies (MEMORY_REMEDIES). Under an address-space limit
    (``ulimit -v``) it names the limit, which counts memory reserved as well as used and binds each process on its own:
    raising it is the remedy, and --n-jobs 1 is none (the fits then run in the command's own process, the largest)."""
    from ..resources import address_space_limit, address_space_words

    remedies = MEMORY_REMEDIES.get(command, _SMALLER)
    limit = address_space_limit()
    if limit is None:
        return ("out of memory: the job's memory limit (RAM, the batch job's allocation or `ulimit -v`) is too small "
                f"for this run; ask for more, or {remedies}")
    remedies = remedies.replace(", or --n-jobs 1 so that fewer fits hold their data at once", "")
    return (f"out of memory: the address-space limit ({address_space_words(limit)}) is too small for this run (it "
            "counts memory reserved as well as used, in each process); raise it (or lift it: ulimit -v unlimited), or "
            f"{remedies}")


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
