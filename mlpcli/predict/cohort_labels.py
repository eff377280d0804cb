"""A labelled cohort's target read in the model's encoding, a piece of the table at a time (``evaluate``,
``recalibrate``, ``explain``): class indices, or 0/1 or value columns; a missing label, a label the model does not
know or a cell it cannot score named by its file and row, the same whatever the piece size; with ``--novel-labels``
the rows of an unknown class kept apart instead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import data
from ..data.cells import is_text_dtype, one_number_groups
from ..data.labels import label_key
from ..data.limits import first_beyond_limit, value_limit_message
from ..errors import DataError
from ..model_io import Model
from .columns import row_label


def encode_target(frame: pd.DataFrame, targets: list[str], model: Model, source: str, first_row: int,
                   ids: np.ndarray | None, decimal: str | None = None, rows: np.ndarray | None = None,
                   unknown_hint: str = "") -> np.ndarray:
    """y for the rows of `frame` (a piece of the table from 0-based `first_row`; `ids`: its ids or None), or
    for its `rows` (indices) only, in the model's encoding (class indices, or 0/1 or value columns). A
    missing label is a DataError naming the file and its row, the first one, as every piece is checked in
    turn: a count per piece would change with --chunksize. Labels the model does not know are a DataError
    naming them, and so is a regression target beyond float32's range (naming its row). Target columns read
    as text are typed as written first (``data.typed_as_written``; `decimal`: the table's decimal mark).
    ``unknown_hint`` is added to the message of an unknown label (evaluate names --novel-labels there).
    Uses Dataset.from_frame, which needs a feature column, hence the placeholder."""
    index = np.arange(len(frame)) if rows is None else np.asarray(rows)
    frame = frame[list(targets)]  # the target columns alone: what follows copies its frame (a whole table, in explain)
    if rows is not None:
        frame = frame.iloc[index].reset_index(drop=True)
    missing = frame[targets].isna().to_numpy()  # (n, k)
    if missing.any():
        i, j = np.argwhere(missing)[0]  # row order, then column order
        # every target with one in this piece, not only the first's (a count would change with --chunksize)
        also = [repr(str(targets[c])) for c in np.flatnonzero(missing.any(axis=0)) if c != j]
        more = f" (and {', '.join(also)} too)" if also else ""
        raise DataError(f"{source}: the target {targets[j]!r} has missing values (empty, or NA / NULL: read as "
                        f"missing), the first at "
                        f"{row_label(first_row, index[i], ids)}{more}; drop the rows without a label, or predict "
                        "them with `mlpcli predict`")
    # a model whose classes include one number written differently ('1', '01', '1.0': text at training) reads a
    # cohort's labels as text too: typed, '1' and '1.0' became one number, and every '1.0' row the class '1'
    as_text = bool(one_number_groups([c for c in model.classes if isinstance(c, str)]))
    typed = {t: data.typed_as_written(frame[t], decimal) for t in targets if is_text_dtype(frame[t].dtype) and not as_text}
    if typed:
        frame = frame.assign(**typed)
    if model.task == "regression":
        values = frame[targets].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        at = first_beyond_limit(values)
        if at is not None:
            raise DataError(f"{source}: " + value_limit_message("target column", targets[at[1]], values[at],
                                                                 row_label(first_row, index[at[0]], ids)))
    sub = frame[targets].copy()
    sub["__mlpcli_placeholder__"] = 0.0
    try:
        ds = data.Dataset.from_frame(sub, data.Roles(target=list(targets)), task=model.task, classes=model.classes)
    except DataError as exc:
        if model.task in ("regression", "multilabel"):  # a cell that does not fit: named by file, row and value
            _check_target_cells(frame, targets, model.task, source, first_row, index, ids)  # (only on failure)
            raise
        # a label the model does not know: the file, and the row of the first one, as for every other cell
        where = _first_unknown_label(sub[targets[0]], model, first_row, index, ids)
        said = str(exc) if str(exc).startswith(f"{source}: ") else f"{source}: {exc}"  # a whole table's frame names it
        raise DataError(said + (f"; the first at {where}{unknown_hint}" if where else "")) from None
    return ds.y


# evaluate's hint, in the message of a label the model does not know
NOVEL_LABELS_HINT = "; --novel-labels scores the other rows and reports these apart (flagged ood, sets, taken for)"


def encode_known(frame: pd.DataFrame, targets: list[str], model: Model, source: str, first_row: int,
                  ids: np.ndarray | None, decimal: str | None, rows: np.ndarray | None,
                  novel: np.ndarray) -> np.ndarray:
    """As ``encode_target`` (a classifier's one target), but a label the model does not know is no error: its rows
    get class 0 in y (a placeholder) and their label, as the model's classes are matched (``data.labels.label_key`` of
    the value as written), in ``novel`` (len(rows or frame),) object, None elsewhere. Each distinct label is tried
    alone, as ``Dataset.from_frame`` matches it, so a row's verdict does not depend on the piece it is read in."""
    index = np.arange(len(frame)) if rows is None else np.asarray(rows)
    try:
        return encode_target(frame, targets, model, source, first_row, ids, decimal, rows=rows)
    except DataError:
        labels = frame[targets[0]].iloc[index].reset_index(drop=True)
        if is_text_dtype(labels.dtype):
            labels = data.typed_as_written(labels, decimal)
        unknown = _unknown_labels(labels, model)
        if not unknown:  # another error (a missing label): as without the option
            raise
    hit = labels.map(lambda v: v in unknown).to_numpy(dtype=bool)
    y = np.zeros(len(index), dtype=np.int64)
    if (~hit).any():  # a missing label among the others is the usual error, naming its row
        y[~hit] = encode_target(frame, targets, model, source, first_row, ids, decimal, rows=index[~hit])
    novel[hit] = [label_key(v) for v in labels[hit]]
    return y


def _first_unknown_label(labels: pd.Series, model: Model, first_row: int, index: np.ndarray,
                         ids: np.ndarray | None) -> str | None:
    """Where the first label of a classifier's target column (n,) that the model cannot encode is ("row 4 (id
    'S3')"), each distinct label tried as evaluate matches them (``Dataset.from_frame``); None if none is."""
    unknown = _unknown_labels(labels, model)
    hits = np.flatnonzero(labels.map(lambda v: v in unknown).to_numpy(dtype=bool)) if unknown else []
    return row_label(first_row, int(index[hits[0]]), ids) if len(hits) else None


def _unknown_labels(labels: pd.Series, model: Model) -> set:
    """The distinct values of a classifier's target column (n,) that the model cannot encode, each tried alone as
    evaluate matches them (``Dataset.from_frame``); missing values are not labels and never among them."""
    unknown = set()
    for value in pd.unique(labels.to_numpy(dtype=object)):
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            continue
        one = pd.DataFrame({"t": pd.Series([value], dtype=labels.dtype), "__mlpcli_placeholder__": [0.0]})
        try:
            data.Dataset.from_frame(one, data.Roles(target=["t"]), task=model.task, classes=model.classes)
        except DataError:
            unknown.add(value)
    return unknown


def _check_target_cells(frame: pd.DataFrame, targets: list[str], task: str, source: str, first_row: int,
                        index: np.ndarray, ids: np.ndarray | None) -> None:
    """A DataError naming the first target cell (row order, then column order) that a regression model
    (a number) or a multi-label one (0 or 1) cannot score, with its file, row and value: the dataset's own
    check names neither the file nor the row of this piece."""
    sub = frame[targets]
    if task == "regression":
        off = sub.apply(pd.to_numeric, errors="coerce").isna().to_numpy()  # missing cells were refused before
        what = "a number"
    else:
        def zero_one(col: pd.Series) -> np.ndarray:
            if pd.api.types.is_bool_dtype(col.dtype):
                return np.ones(len(col), dtype=bool)
            numbers = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
            return np.isin(numbers, (0.0, 1.0)) & ~(col.map(type) == str).to_numpy()
        off = ~np.column_stack([zero_one(sub[t]) for t in targets])
        what = "0 or 1"
    if off.any():
        i, j = np.argwhere(off)[0]
        raise DataError(f"{source}: the target {targets[j]!r} holds {str(sub.iloc[i, j])!r} at "
                        f"{row_label(first_row, index[i], ids)}, where the model's {task} target takes {what}")
