"""What the preprocessing says of features it cannot use as they are: missing in every training row,
constant, negative where log1p needs counts, missing values without --impute."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DataError
from .conventions import IMPUTE_METHODS
from ..text import agreeing, count_of, counted, quoted


EMPTY_WORDS = "features have no values on the training rows"


EMPTY_WORDS_MEMBERS = "features have no values on a member's training rows"


def _per_member(names: Sequence[str], per_member: Sequence[int] | None) -> str | None:
    """"2–5 per member (5 members), 8 in all" when an ensemble's members differ in how many of ``names`` (their union)
    each had; None when there is one count, that of every name (one network, or members alike)."""
    if per_member is None or len(set(per_member)) == 1 and per_member[0] == len(names):
        return None
    low, high = min(per_member), max(per_member)
    each = f"{low}" if low == high else f"{low}–{high}"
    return f"{each} per member ({len(per_member)} members), {len(names)} in all"


def empty_message(names: Sequence[str], per_member: Sequence[int] | None = None) -> str:
    """The warning for feature columns missing in every training row (with --impute: filled with 0, constant, and
    dropped); ``per_member``: how many each member of an ensemble had, when ``names`` is their union."""
    counted = _per_member(names, per_member)
    if counted is None:
        return f"{len(names)} {EMPTY_WORDS}: {quoted(list(names))}"
    return f"{EMPTY_WORDS_MEMBERS}: {counted}: {quoted(list(names))} (dropped there as constant)"


def is_empty_message(text: str) -> bool:
    """Whether ``text`` is an ``empty_message`` warning."""
    return EMPTY_WORDS in text or EMPTY_WORDS_MEMBERS in text


def is_constant_message(text: str) -> bool:
    """Whether ``text`` is a ``constant_message`` warning."""
    return text.startswith("dropped ") and "features constant on the training rows" in text


def constant_message(dropped: Sequence[str], per_member: Sequence[int] | None = None) -> str:
    """The warning for features dropped as constant on the training rows (``Preprocessor.dropped_constant``);
    ``per_member``: how many each member of an ensemble dropped, when ``dropped`` is their union (the members'
    training rows differ, and so do their constant features: one warning for all of them, not one each)."""
    counted = _per_member(dropped, per_member)
    if counted is None:
        k = len(dropped)
        return f"dropped {count_of(k, 'feature')} constant on the training rows: {quoted(list(dropped))}"
    return f"dropped features constant on the training rows: {counted}: {quoted(list(dropped))}"


def check_non_negative(X: np.ndarray, names: Sequence[str]) -> None:
    negative = (X < 0).any(axis=0)  # NaN compares False, so missing values pass
    if negative.any():
        raise DataError(negative_message(names, negative, float(np.nanmin(X[:, np.flatnonzero(negative)[0]]))))


def negative_message(names: Sequence[str], negative: np.ndarray, first_min: float) -> str:
    cols = np.flatnonzero(negative)
    return (f"log1p needs non-negative input, but {count_of(len(cols), 'feature column')} "
            f"{agreeing(len(cols), 'holds', 'hold')} "
            "negative values "
            f"(first {names[cols[0]]!r}, min {first_min:.4g}); drop --log1p if the data is already on a log scale")


# The --impute choices as the missing-values error names them (min: values missing below a detection limit)
IMPUTE_HINT = "|".join(IMPUTE_METHODS) + " (min for values below a detection limit)"


def missing_message(names: Sequence[str], nan_counts: np.ndarray, counted_in: str = "", fitted: bool = False) -> str:
    """The error for missing values (nan_counts (d,) per column of `names`) without --impute. counted_in: which rows the counts are of (" in the training rows": a member's, which a warning on the
    whole table counts differently). fitted: the rows are a fitted preprocessing's new rows (a model's input),
    for which --impute is not an option to pass but a retraining."""
    cols = np.flatnonzero(nan_counts)
    pairs = [(names[j], int(nan_counts[j])) for j in cols]
    remedy = (f"the model was trained without --impute, so fill them or retrain with --impute {IMPUTE_HINT}" if fitted
              else f"pass --impute {IMPUTE_HINT} or remove them")
    return f"missing values in {count_of(len(cols), 'feature column')}: {counted(pairs)}{counted_in}; {remedy}"
