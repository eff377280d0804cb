"""A table's feature columns as a numeric matrix, checked: text that is not a number named by its cell (with
the decimal comma or thousands separator that would read it), infinities and values beyond float32's range,
and integer columns that number the rows (an id left among the features)."""

from __future__ import annotations

import shlex
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..text import count_of, counted, quoted
from ..centred_rows import is_sparse
from .cells import (THOUSANDS_DECIMAL, THOUSANDS_NUMBER, CellPlace, decimal_advice, first_non_number, is_text_dtype,
                    non_number_cells)
from .conventions import DECIMAL_ATTR, DEFAULT_ID, SOURCE_ATTR
from .limits import first_beyond_limit, value_limit_message
from .roles import ROLE_WORDS, role_name_flag
from .row_view import sparse_first_beyond_limit


# The first cell of Perseus's annotation rows under the header ("#!{Type}", "#!{C:Group}"), which it writes in its text
# exports: a row of column types (E, N, T, C) or of categories, not a sample
PERSEUS_ROW = "#!{"


def feature_matrix(df: pd.DataFrame, names: list[str], notes: list[str], id_column: str | None = None,
                   roles: dict[str, str | None] | None = None) -> np.ndarray:
    """(n, d) float64 of the feature columns; non-numeric columns and infinities are errors, NaN is noted.
    A column of numbers with a few cells that are not (a "0.5" among decimal commas, a typo) is an error
    naming the first such cell: its row (and sample id) and value, as the text reader parsed it."""
    frame = df[names]
    decimal = df.attrs.get(DECIMAL_ATTR, ".")
    text_table = DECIMAL_ATTR in df.attrs  # read from text, where --decimal and --sep say how numbers are written
    # dtype first: fetching 60,000 columns one by one is slow, only object columns need a look inside
    bad = [n for n, t in zip(names, frame.dtypes) if not pd.api.types.is_numeric_dtype(t)
           and not _numbers_in_objects(frame[n], decimal)]
    if bad:
        source = f"{df.attrs[SOURCE_ATTR]}: " if SOURCE_ATTR in df.attrs else ""
        # a column of text, not one whose only value is a stray cell: a second header row (Perseus's "#!{Type}" row of
        # E, N, T, C) over a column of missing values made that column "text", and the error named 34 such proteins
        # as columns to --drop, where one row was to blame
        text = [n for n in bad if non_number_cells(frame[n], decimal).sum() == frame[n].notna().sum() > 1
                or (frame[n].notna().sum() == 1 and len(bad) == 1)]
        if not text:  # every such column holds numbers: name the first cell that is not one
            row, j, value, count = first_non_number(frame, bad, decimal)
            stray = [n for n in bad if n != bad[j]]
            row_id = str(df[id_column].iloc[row]) if id_column else None
            where = f"row {row + 1}" + (f" (id {row_id!r})" if id_column else "")
            more = (f" ({count_of(count, 'such cell')} in the column"
                    f"{f', and more in {quoted(stray, 3)}' if stray else ''})") if count > 1 or stray else ""
            annotation = (f"; row {row + 1} is a Perseus annotation row ({row_id!r}): delete the rows whose first cell "
                          "begins with '#!{'" if row_id is not None and row_id.startswith(PERSEUS_ROW) else "")
            raise DataError(f"{source}feature column {bad[j]!r} holds the non-numeric value {str(value)!r} at "
                            f"{where}{more}; features must be numbers{decimal_advice(value, decimal, text_table)}"
                            f"{annotation}")
        ids = [n for n in text if frame[n].notna().all() and frame[n].is_unique] if id_column is None else []
        id_hint = (f"{ids[0]!r} holds a different value in every row, as sample ids do (the id column is "
                   f"{DEFAULT_ID!r} by default): pass --id {shlex.quote(ids[0])}; ") if ids and len(df) > 1 else ""
        named = [(n, role_name_flag(n)) for n in text if role_name_flag(n) and not (ids and n == ids[0])]
        if named:  # Patient_ID, Batch: a role's column, spelt otherwise than the option's default
            # (where the role already has a column of the user's choosing, --group site, that column is what it names)
            taken = roles or {}
            id_hint += "".join(f"{n!r} is named like {ROLE_WORDS[flag]}, and {flag} is {taken[flag]!r}: pass "
                               f"--drop {shlex.quote(n)}; " if taken.get(flag) else
                               f"{n!r} is named like {ROLE_WORDS[flag]}: pass {flag} {shlex.quote(n)}; "
                               for n, flag in named[:3])
        perseus = [n for n in text if str(n).startswith(PERSEUS_ROW)]
        if perseus:  # genes x samples: the annotation row became a column
            id_hint += (f"{perseus[0]!r} is a Perseus annotation row (its first cell begins with '#!{{'): delete such "
                        "rows from the file, or ")
        raise DataError(
            f"{source}feature columns must be numeric: {quoted(text)} ({len(text)} column{'s' * (len(text) != 1)}); "
            f"{id_hint}{_decimal_comma_hint(frame[text[0]], text_table) if decimal == '.' else ''}pass them to "
            "--drop, or use --id/--batch/--group for their role"
        )
    from .float32 import exact_dtypes

    # float32 where every column holds float32 numbers (a float32 parquet file): the same values in half the memory
    return frame.to_numpy(dtype=np.float32 if exact_dtypes(frame.dtypes) else np.float64, na_value=np.nan)  # (n, d)


def check_feature_values(X: np.ndarray, names: list[str], notes: list[str],
                          where: "CellPlace | None" = None,
                          ranges: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Infinities are errors naming their columns; missing values a note with counts: the reader does not
    know whether --impute is given, and training without it stops with an error naming it (a warning here
    asked for --impute even when it was given, and -q cannot hide a warning). Column blocks at a time, so
    the checks need no full-size temporary (a sparse X: its stored values). Returns the missing values per
    column (d,). `ranges`: the dense X's ``column_ranges``, if already taken."""
    infinite = np.zeros(X.shape[1], dtype=bool)
    nan_counts = np.zeros(X.shape[1], dtype=np.int64)
    if not is_sparse(X) and X.size:
        lo, hi = column_ranges(X) if ranges is None else ranges
        if np.isfinite(lo).all() and np.isfinite(hi).all():  # the common case, in two passes without temporaries
            return nan_counts
    if is_sparse(X):
        infinite[X.indices[np.isinf(X.data)]] = True
        nan_counts = np.bincount(X.indices[np.isnan(X.data)], minlength=X.shape[1])
    step = max(1, _CHECK_BLOCK // max(1, X.shape[0]))
    for j in range(0, 0 if is_sparse(X) else X.shape[1], step):
        block = X[:, j:j + step]
        infinite[j:j + step] = np.isinf(block).any(axis=0)
        nan_counts[j:j + step] = np.isnan(block).sum(axis=0)
    if infinite.any():
        j = int(np.argmax(infinite))  # the first such cell, by its file, row and sample id (`where`)
        column = X[:, j].toarray().ravel() if is_sparse(X) else X[:, j]
        i = int(np.argmax(np.isinf(column)))
        first = f"; the first, {float(column[i])} in {names[j]!r} at {where.row(i)}" if where is not None else ""
        raise DataError(f"{where.source if where is not None else ''}feature columns hold infinite values: "
                        f"{quoted(np.asarray(names)[infinite])}{first}; "
                        "replace them or pass the columns to --drop")
    if nan_counts.any():
        cols = np.flatnonzero(nan_counts)
        pairs = [(names[j], int(nan_counts[j])) for j in cols]
        notes.append(f"missing values in {count_of(len(cols), 'feature column')}: {counted(pairs)} (filled by "
                     "--impute; "
                     "without it, training stops at them)")
    return nan_counts  # (d,)


_CHECK_BLOCK = 1 << 22  # values per block of the feature checks (32 MiB of float64)


def column_ranges(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's NaN-propagating minimum and maximum, (d,) each, of the dense X (n, d): a column's are
    both finite exactly when every value in it is (a NaN makes both NaN, an infinity is an extreme). Two passes
    without temporaries, as fast as the whole table's two extremes."""
    X = np.asarray(X)
    return np.minimum.reduce(X, axis=0), np.maximum.reduce(X, axis=0)


_ROW_NUMBER_MIN_ROWS = 20  # below, a measured integer column could be a run of consecutive values by chance


def warn_row_numbers(X: np.ndarray, names: list[str], ranges: tuple[np.ndarray, np.ndarray],
                      warn: list[str]) -> list[str]:
    """A warning naming the feature columns of the dense X (n, d) that number the rows: n distinct integers,
    consecutive in any order (a column named "id" of 1, 2, ..., pandas' index written as "index"), or rising (or
    falling) down the file with gaps (the index of a table some rows were filtered out of, then reset). No
    measurement of n samples is; as a feature it carries the file's order, which often follows the class, the batch
    or the date, into the model and its validation (a filtered index on a table sorted by class read balanced
    accuracy 0.615 from features without signal, 0.551 without it). Returns their names. `ranges`:
    ``column_ranges(X)``."""
    n = X.shape[0]
    if n < _ROW_NUMBER_MIN_ROWS:
        return []
    lo, hi = ranges
    head = np.diff(np.asarray(X[:_ROW_NUMBER_MIN_ROWS], dtype=np.float64), axis=0)  # a cheap look first
    monotone = (head > 0).all(axis=0) | (head < 0).all(axis=0)
    candidates = np.flatnonzero((hi - lo == n - 1) | monotone)[:1000]  # the exact tests only there
    found, kinds = [], []
    for j in candidates:
        column = np.asarray(X[:, j], dtype=np.float64)
        if not (column == np.round(column)).all():
            continue
        steps = np.diff(column)
        if (steps > 0).all() or (steps < 0).all():
            found.append(j)
            kinds.append("rising" if steps[0] > 0 else "falling")
        elif hi[j] - lo[j] == n - 1 and len(np.unique(column)) == n:
            found.append(j)
            kinds.append("consecutive")
    if not found:
        return []
    first = shlex.quote(names[found[0]])
    those = quoted([names[j] for j in found], 5)
    are = "number" if len(found) > 1 else "numbers"
    lo_j, hi_j = lo[found[0]], hi[found[0]]
    how = ("each value once" if kinds[0] == "consecutive" else
           f"{'rising' if kinds[0] == 'rising' else 'falling'} down the file, each value once")
    warn.append(f"feature column{'s' * (len(found) > 1)} {those} {are} the rows ({lo_j:g} to {hi_j:g}, {how}): no "
                "measurement does; as a feature it carries the order of the file, which often follows the class, the "
                f"batch or the date, into the model and its validation — pass --id {first} if it holds the sample ids, "
                f"else --drop {first}")
    return [names[j] for j in found]


def _decimal_comma_hint(col: pd.Series, text_table: bool = True) -> str:
    """"they look like numbers with decimal commas ..." when the column's first value is written so. ``text_table``
    False (a parquet file's text column, a DataFrame's): no reading option changes how it is read, so the advice is
    to store the column as numbers."""
    from .dialect import COMMA_NUMBER

    values = col.dropna()
    first = str(values.iloc[0]) if len(values) else ""
    plain = first.strip().replace(',', '')
    if THOUSANDS_DECIMAL.fullmatch(first):  # 8,000.0: thousands separators (8,000 alone could be either)
        return (f"{col.name!r} holds numbers written with thousands separators such as {first!r}"
                + (f": write them without ({plain!r}), or " if text_table else
                   f", stored as text: store the column as numbers ({plain}), or "))
    if THOUSANDS_NUMBER.fullmatch(first):  # 95,823: either
        if not text_table:
            return (f"{col.name!r} holds numbers such as {first!r}, with thousands separators or a decimal comma, "
                    f"stored as text: store the column as numbers ({plain} if the commas separate thousands, "
                    f"{first.strip().replace(',', '.')} if they are decimal marks), or ")
        return (f"{col.name!r} holds numbers such as {first!r}, with thousands separators or a decimal comma: write "
                f"them without separators ({plain!r}), pass --decimal comma (and --sep) if "
                "the commas are decimal marks, or ")
    if COMMA_NUMBER.fullmatch(first):
        if not text_table:
            return (f"{col.name!r} holds numbers with decimal commas such as {first!r}, stored as text: store the "
                    f"column as numbers ({first.strip().replace(',', '.')}), or ")
        return f"{col.name!r} holds numbers with decimal commas such as {first!r}: pass --decimal comma (and --sep), or "
    return ""


def check_value_limit(values: np.ndarray, names: Sequence[str], ids: np.ndarray | None, what: str,
                       place: "CellPlace | None" = None) -> None:
    """A value beyond ±VALUE_LIMIT (float32's range) in `values` (n, k) is a DataError naming the column and
    the row (and sample id; with `place`, the file and the row as ``CellPlace`` says it); missing values pass."""
    at = sparse_first_beyond_limit(values) if is_sparse(values) else first_beyond_limit(values)
    if at is not None:
        i, j = at
        where = place.row(i) if place is not None else f"row {i + 1}" + (f" (id {ids[i]!r})" if ids is not None else "")
        raise DataError((place.source if place is not None else "")
                        + value_limit_message(what, names[j], values[i, j], where))


def _numbers_in_objects(col: pd.Series, decimal: str = ".") -> bool:
    """True for an object column holding only numbers (a frame built in Python, or a row of a genes × samples
    table, numbers but for a cell or two); text columns are not, nor a "0.5" among decimal commas (`decimal`:
    the table's mark), which pandas would take for a number."""
    if not is_text_dtype(col.dtype):
        return False
    converted = pd.to_numeric(col, errors="coerce")
    return bool((converted.notna() == col.notna()).all()) and not non_number_cells(col, decimal).any()
