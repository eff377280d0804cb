"""Constants and message helpers shared by the data modules."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np



TASKS = ("binary", "multiclass", "multilabel", "regression")
CLASSIFICATION_TASKS = ("binary", "multiclass")
IMPUTE_METHODS = ("median", "mean", "zero")

SUPPORTED_FORMATS = ".csv, .tsv, .txt (each optionally .gz, .bz2, .xz or .zip), .parquet, .h5ad (AnnData), or '-' for standard input"
_TEXT_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}

# Defaults of the column roles (see design.md, "Conventions every command shares").
DEFAULT_TARGET = "label"
DEFAULT_GROUP = "patient_id"
DEFAULT_GROUPS = (DEFAULT_GROUP, "donor_id")  # donor_id: the CELLxGENE name of the patient
DEFAULT_ID = "sample_id"
DEFAULT_BATCH = "batch"

# Task inference: a numeric target with more distinct values than both limits is taken as regression.
_REGRESSION_MIN_DISTINCT = 10
_REGRESSION_MIN_DISTINCT_FRACTION = 0.05
# A class with fewer training samples than this gets a warning (rare classes make noisy estimates).
_RARE_CLASS_SAMPLES = 5


class SplitLeakageError(RuntimeError):
    """Internal bug: a group ended up on both sides of a split. Never a user error, so not an MlpcliError."""




# ── small formatting helpers ─────────────────────────────────────────────────────────────────────────────


def _quoted(names: Iterable[Any], limit: int = 5) -> str:
    """"'a', 'b', 'c' and 4 more" — keeps messages one line however many names there are."""
    names = list(names)
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    rest = len(names) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def _counted(pairs: Sequence[tuple[Any, int]], limit: int = 5) -> str:
    """"'g1' (3), 'g2' (1) and 8 more" from (name, count) pairs."""
    shown = ", ".join(f"{str(name)!r} ({count})" for name, count in pairs[:limit])
    rest = len(pairs) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def _label_key(value: Any) -> str:
    """String form of a class label used for matching: 1, 1.0, np.int64(1) and "1" all give "1"."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plain(value: Any) -> Any:
    """numpy scalar -> Python scalar, integral float -> int, so labels are JSON-able and print nicely."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
