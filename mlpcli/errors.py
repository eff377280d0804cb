"""The small exception family that the CLI turns into one-line messages.

Library code raises these for every failure a user can cause; `cli.py` converts them to
`click.ClickException` (exit 1) so no traceback reaches the user unless `--debug` is given.
"""

import re


class MlpcliError(Exception):
    """Base class: a failure caused by the user's input, with a message fit for one line."""


class DataError(MlpcliError):
    """A table that cannot be read or does not fit the task (bad file, column, value)."""


class ConfigError(MlpcliError):
    """Options that contradict each other or the data (checked beyond what Click can)."""


class OptionError(ConfigError):
    """An option's value that cannot work (e.g. a network too large for this machine's memory): the CLI
    reports it as a usage error (exit 2)."""


class ModelFileError(MlpcliError):
    """A model file that is missing, truncated, tampered with, foreign or of an unknown version."""


class TrainingError(MlpcliError):
    """Training that cannot go on (the loss diverged to inf or NaN)."""


class OutputError(MlpcliError, OSError):
    """An output file that cannot be written (disk full, quota, read-only, permissions); still an OSError
    for callers that catch those, with a message naming the file."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (each line break, with the spaces around it, as one space; other spaces
    kept: a class named '  b ' is quoted as it is; its class name when it has none), an OSError's as "FILE:
    reason"."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return re.sub(r"[ \t]*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+\s*", " ", text)


class SplitLeakageError(RuntimeError):
    """Internal bug: a group ended up on both sides of a split. Never a user error, so not an MlpcliError."""
