"""The largest value a feature or target may hold, and the one message for a value beyond it.

A float32 network cannot take values beyond float32's range; such a value in a table is almost surely a
data error (units, a parsing slip, a sentinel value). Used by the training reader, the preprocessing and
predict's reader alike."""

from __future__ import annotations

import numpy as np

__all__ = ["VALUE_LIMIT", "first_beyond_limit", "value_limit_message"]

# Within the limit every training statistic stays finite in float64 (squares < 1e78).
VALUE_LIMIT = float(np.finfo(np.float32).max)


def first_beyond_limit(X: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of X's (n, d) first entry beyond ±VALUE_LIMIT in row order (infinities included), or
    None; NaN passes. Two NaN-ignoring reductions when all is well (no temporary the size of X)."""
    if X.size == 0:
        return None
    if np.fmax.reduce(X, axis=None) <= VALUE_LIMIT and np.fmin.reduce(X, axis=None) >= -VALUE_LIMIT:
        return None
    with np.errstate(invalid="ignore"):
        beyond = np.argwhere(np.abs(X) > VALUE_LIMIT)
    return (int(beyond[0][0]), int(beyond[0][1])) if len(beyond) else None  # all NaN: nothing beyond


def value_limit_message(what: str, column: str, value: float, where: str) -> str:
    """The one message for a value beyond ±VALUE_LIMIT: `what` ("feature column", "target column"),
    `where` ("row 12 (id 'S3')")."""
    return (f"{what} {column!r} holds {value:.4g} at {where}, beyond ±{VALUE_LIMIT:.3g}, the largest value a "
            "float32 network can take; it is almost surely a data error (units, a parsing slip, a sentinel "
            "value): fix it, or drop the column")
