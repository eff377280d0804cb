"""Training's read of a text table: its feature columns as float64 row blocks, through the reader ``predict``
uses (``streamed_text``), so that training and prediction see the same numbers, bit for bit; its other columns
typed as ``pd.read_csv`` types them."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .io import as_written_na, tokens_as_missing
from .pieces import DEFAULT_CHUNK_BYTES, PieceSize
from .streamed_text import TextPiece, open_stream
from .streamed import open_file


@dataclass(frozen=True)
class _TextRoles:
    target: tuple = ()  # no column typed by the reader (``_Layout.targets``): every other column is text
    # read as written, only an empty cell missing: the sample id, group and batch columns, and the labels, whose
    # missing-value tokens ``_typed_as_pandas`` then makes missing (noted)
    written: tuple = ()


@dataclass
class _TrainingColumns:
    """The column plan of a training table (the interface of ``ColumnPlan`` the text reader uses): the
    features as numbers, every other column as text, typed afterwards (``_typed_as_pandas``)."""

    present_names: list
    label_columns: list
    roles: _TextRoles = _TextRoles()

    def usecols(self) -> list[str]:
        return [*self.present_names, *self.label_columns]

    def dtypes(self) -> dict:
        return {c: str for c in self.label_columns}


class _NotNumbers(Exception):
    """A piece read by pandas holds a feature cell that is not a number."""


def read_text_features(name: str, source, names: Sequence[str], features: Sequence[str], sep: str, decimal: str,
                       add_block: Callable[[np.ndarray], None], text: Sequence[str] = (),
                       ids: Sequence[str] = ()) -> pd.DataFrame | None:
    """A text table's other columns as ``pd.read_csv`` types them (n, len(names) - len(features)), its
    feature columns given to `add_block` as float64 row blocks (rows_i, len(features)) in the order of
    `features`, top to bottom: the reader ``predict`` uses (``open_table``: pieces parsed in threads by the
    tokenizer, pyarrow's or pandas' parser), so training and prediction read the same numbers, bit for
    bit (pyarrow's parser: correctly rounded). A whole-table CSV parser costs more per column than per
    value (measured on 2,000 x 5,000 / 500 x 20,000 / 200 x 60,000 values: 0.45 / 0.37 / 0.6 s, against
    1.4 / 2.7 / 6.9 s for pandas in row chunks and 1.0 / 1.5 / 4.4 s for pyarrow's streaming reader).

    None when a feature cell is not a number, or the text is not one this reader reads (its error): the
    caller then reads the table with pandas, which names the cell or the fault; the blocks given so far are
    to be dropped. `name`: the file, or "standard input" (`source` then a binary stream of its bytes);
    `names`: the column names, one per field (the header line is read past); `text`: columns typed as
    written (strings); `ids`: the columns read as written, only an empty cell missing (the sample id, group and
    batch columns: ``io.written_columns``); the other `text` columns' missing-value tokens are missing, and noted
    (``io.tokens_as_missing``)."""
    names = [str(n) for n in names]  # a header cell may hold a line end: the reader reads the header record whole
    features = [str(f) for f in features]
    feature_set = set(features)
    others = [n for n in names if n not in feature_set]
    ids = [str(i) for i in dict.fromkeys(ids) if i is not None and str(i) in set(others)]
    # the labels too, their tokens made missing once read (``_typed_as_pandas``), so that their message can name them
    labels = [str(t) for t in text if str(t) in set(others) and str(t) not in set(ids)]
    plan = _TrainingColumns(features, others, _TextRoles(written=(*ids, *labels)))
    try:
        if isinstance(source, (str, os.PathLike)):
            table = open_file(source, None, check_header=False, sep=sep, decimal=decimal)
        else:
            table = open_stream(name, source, None, False, sep, decimal)
    except DataError:
        return None
    if len(table.columns) != len(names):  # the same, in a cell `names` holds as a stand-in (a blank cell)
        table.close()
        return None
    table.columns = names
    raw: dict[str, list[np.ndarray]] = {o: [] for o in others}

    def convert(parsed, first_row: int) -> tuple[np.ndarray, dict]:  # in the reading threads
        if isinstance(parsed, TextPiece):
            return parsed.values, {o: parsed.columns[o].to_numpy(zero_copy_only=False) for o in others}
        if isinstance(parsed, pd.DataFrame):  # pandas' inferred types: a feature column of text holds a non-number
            values = parsed[features]
            if not all(t.kind in "iuf" for t in values.dtypes):
                raise _NotNumbers
            return values.to_numpy(dtype=np.float64), {o: parsed[o].to_numpy(dtype=object) for o in others}
        X = np.empty((parsed.num_rows, len(features)))
        for k0 in range(0, len(features), 64):  # (w, rows) -> X's columns, a tile at a time
            X[:, k0:k0 + 64] = np.stack([parsed.column(f).to_numpy(zero_copy_only=False)
                                         for f in features[k0:k0 + 64]]).T
        return X, {o: parsed.column(o).to_numpy(zero_copy_only=False) for o in others}

    n = 0
    try:
        for values, columns in table.pieces(PieceSize(nbytes=DEFAULT_CHUNK_BYTES), plan, convert):
            add_block(values)
            n += len(values)
            for o in others:
                raw[o].append(columns[o])
            del values, columns
    except (_NotNumbers, DataError):
        return None
    return _typed_as_pandas(raw, n, others, sep, decimal, text, ids)


def _typed_as_pandas(raw: dict[str, list[np.ndarray]], n: int, others: list[str], sep: str, decimal: str,
                     text: Sequence[str], ids: Sequence[str] = ()) -> pd.DataFrame:
    """The other columns (their text, None where missing; n rows) typed as ``pd.read_csv`` types a whole file:
    written back as a small table and read by pandas, with its missing values, decimal mark and the `text`
    columns as strings. The readers' missing-value tokens are pandas' own; the `ids` columns keep them as
    written, their missing cells (None) written empty; the other `text` columns (labels) are read as written too,
    their tokens then made missing and noted (``io.tokens_as_missing``), as ``TextTable.read_frame`` reads them."""
    if not others:
        return pd.DataFrame(index=pd.RangeIndex(n))
    if n == 0:
        return pd.DataFrame(columns=others)
    columns = []
    for o in others:
        values = np.concatenate(raw[o]).astype(object, copy=False)
        values[pd.isna(values)] = None
        columns.append(values)
    buffer = io.StringIO()
    # "\r\n": the csv module quotes a field holding a character of its line terminator only, and pandas
    # ends a line at a lone carriage return, so a quoted "S\r1" would otherwise split its row
    csv.writer(buffer, delimiter=sep, lineterminator="\r\n").writerows(zip(*columns))
    buffer.seek(0)
    kept = set(others)
    labels = [c for c in text if c in kept and c not in set(ids)]
    frame = pd.read_csv(buffer, sep=sep, decimal=decimal, header=None, names=others, low_memory=False,
                        dtype={c: str for c in text if c in kept} or None, skip_blank_lines=False,
                        **as_written_na(others, [*ids, *labels]))
    return tokens_as_missing(frame, labels)
