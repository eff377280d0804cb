"""Constants and small helpers shared by the prediction modules."""

from __future__ import annotations

import difflib
import math
import re
from typing import Sequence

import numpy as np
import pandas as pd

from .. import data
from ..data._common import _quoted  # noqa: F401 - one helper for name lists, used across predict
from ..errors import DataError


DEFAULT_CHUNKSIZE = 10_000  # rows per step of `shift_report` on an in-memory array
_STAT_ROWS = 2048  # rows preprocessed (and summed for the shift check) per step: bounds the temporaries
_STAT_BYTES = 16 << 20  # and at most this much of float64 values per step (wide tables: fewer rows)


# ── small helpers ────────────────────────────────────────────────────────────────────────────────────────


def natural_key(value) -> list:
    """Sort key of a group value putting B2 before B10 (and 2.0 before 10.0): its text split into digit runs,
    compared as numbers, and the rest."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(value))]


def _names(value) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


def _not_found(flag: str, name: str, columns: Sequence[str]) -> DataError:
    hint = difflib.get_close_matches(name, list(columns), n=1)
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    return DataError(f"{flag} column {name!r} not found{did_you_mean}; the table has {len(columns)} columns "
                     f"({_quoted(columns, 4)})")


def _label_keys(values: np.ndarray, missing: str = "NA") -> np.ndarray:
    """Labels as matching keys, as in training (1, 1.0 and "1" all give "1"); missing -> ``missing``."""
    return np.asarray([missing if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA
                       else data._label_key(v) for v in values], dtype=object)


# What training names the rows without a batch when a batch is called "NA" already (``data.dataset``)
MISSING_BATCH = "NA (missing)"


def missing_batch_name(trained_batches) -> str:
    """The name a cohort's rows without a batch take: the one the model's training gave them ("NA (missing)" when
    a training batch was called "NA"), so that a site named NA and the rows without a batch stay apart here too."""
    return MISSING_BATCH if MISSING_BATCH in set(trained_batches or ()) else "NA"
