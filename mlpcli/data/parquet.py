"""Parquet tables: read whole, or the feature columns straight into one matrix."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .conventions import DEFAULT_ID
from .feature_rows import samples_from_feature_rows
from .float32 import feature_dtype
from .header import check_unique_header
from .sources import PARSE_ERRORS, Source, short_reason


_METADATA: dict[bytes, object] = {}  # the last footer read, by its bytes: see parquet_metadata


def parquet_metadata(path: str):
    """The footer of the parquet file at ``path`` (pyarrow's FileMetaData: schema, row groups), parsed once for
    the footer's bytes as they are now: parsing costs ~0.1 s at 5,000 columns, and a `train` looks at the header
    (``pipeline.needs_scikit_learn``) before it reads the table. The footer's bytes are read again each time (a
    file rewritten in between, even to the same size within the same clock tick, is parsed again); the last
    file's only is kept. Raises OSError, or what ``pyarrow.parquet.read_metadata`` raises."""
    import pyarrow.parquet as pq

    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        footer = None
        if size >= 12:
            fh.seek(size - 8)
            tail = fh.read(8)
            length = int.from_bytes(tail[:4], "little")
            if tail[4:] == b"PAR1" and length <= size - 12:
                fh.seek(size - 8 - length)
                footer = fh.read(length)
    if footer is None:  # not a plain parquet footer (encrypted, truncated, not parquet): pyarrow says what it is
        return pq.read_metadata(path)
    if footer not in _METADATA:
        import pyarrow as pa

        # parsed from the bytes read above, not the file again: what is cached is what those bytes say
        metadata = pq.read_metadata(pa.BufferReader(b"PAR1" + footer + tail))
        _METADATA.clear()
        _METADATA[footer] = metadata
    return _METADATA[footer]


class ParquetTable:
    """A parquet table read a group of columns at a time: ``read_features`` reads the feature columns straight
    into one C-ordered matrix (float32 when every value is a float32 number, ``feature_dtype``), a few hundred
    columns at a time (float columns through Arrow's row-major conversion, others column by column), so that
    neither a pandas frame of every column nor a float64 copy of a float32 table is made (a 8,000 x 5,000
    float32 file: ~0.4 s and one 160 MB matrix, against ~1.7 s and 160 MB + 320 MB through ``pd.read_parquet``
    and ``to_numpy``). The same interface as ``TextTable`` for ``read_dataset``."""

    row_names = False

    def __init__(self, src: Source, file, names: list[str]):
        self.src, self.file, self.names = src, file, names
        self.notes: list[str] = []

    @classmethod
    def open(cls, src: Source) -> "ParquetTable | None":
        """The table's schema; None when the file is best read whole (``read_table``): a stored pandas index
        (it becomes a column) or a column without a name (the header rules need its values)."""
        try:
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - pyarrow is a declared dependency
            raise DataError("reading .parquet tables needs pyarrow; pip install pyarrow") from None
        try:
            file = pq.ParquetFile(src.name, metadata=parquet_metadata(src.name))
            schema = file.schema_arrow
            meta = schema.pandas_metadata or {}
        except PARSE_ERRORS as exc:
            raise DataError(f"cannot parse {src.name} as parquet: {short_reason(exc)}") from None
        names = [str(n) for n in schema.names]
        stored_index = any(not isinstance(c, dict) for c in meta.get("index_columns", []))
        if stored_index or any(n.startswith("__index_level_") or not n.strip() for n in names):
            return None
        check_unique_header(names, src.name, False)
        return cls(src, file, names)

    def read_frame(self, text: Sequence[str] = (), ids: Sequence[str] = ()) -> pd.DataFrame:
        """The whole table as a DataFrame, as ``read_table`` gives it (text stays text: `text` and `ids` are
        the text tables')."""
        from .io import read_table_with_notes  # read_table reads parquet files with read_parquet_frame

        frame, notes = read_table_with_notes(self.src.name)
        self.notes += notes
        return frame

    def read_features(self, features: Sequence[str], text: Sequence[str] = (),
                      ids: Sequence[str] = ()) -> tuple[pd.DataFrame, np.ndarray] | None:
        """(the other columns as a DataFrame, the `features` columns as one C-ordered matrix (n, d)); None when
        a feature column is not numbers (int, float or bool; the caller reads the frame whole and names it).
        The values are those ``pd.read_parquet`` gives (missing values NaN)."""
        import pyarrow as pa

        features = list(features)
        types = {f.name: f.type for f in self.file.schema_arrow}
        if not all(pa.types.is_integer(types[f]) or pa.types.is_floating(types[f]) or pa.types.is_boolean(types[f])
                   for f in features):
            return None
        feature_set = set(features)
        others = [n for n in self.names if n not in feature_set]
        n = self.file.metadata.num_rows
        if n == 0:
            raise DataError(f"{self.src.name} has a header but no data rows")
        try:
            frame = self.file.read(columns=others).to_pandas() if others else pd.DataFrame(index=pd.RangeIndex(n))
            X = self._matrix(features, n)
        except PARSE_ERRORS as exc:
            raise DataError(f"cannot parse {self.src.name} as parquet: {short_reason(exc)}") from None
        finally:
            # Arrow's allocator keeps the freed column groups for reuse; nothing else reads with it now
            # (measured: ~110 MB held after the 8,000 x 5,000 table)
            release = getattr(pa.default_memory_pool(), "release_unused", None)
            if release is not None:
                release()
        frame.columns = [str(c) for c in frame.columns]
        return frame.reset_index(drop=True), X

    def _matrix(self, features: list[str], n: int) -> np.ndarray:
        """The `features` columns (n rows) as one C-ordered matrix, float32 until a value needs float64."""
        X = np.empty((n, len(features)), dtype=np.float32)
        step = max(1, PARQUET_GROUP_BYTES // (8 * n))  # columns per read
        for j0, table in _read_ahead(self.file, features, step):
            if _as_tensors(table):
                # Arrow's own row-major conversion (C++, the interpreter lock released): two calls per record
                # batch where the column-by-column path below makes five per column, each of which waits for
                # the lock while scikit-learn is imported beside the reading (0.95 -> 0.80 s, 8,000 x 5,000)
                try:
                    r0 = 0
                    for batch in table.to_batches():
                        block = batch_rows(batch)
                        X = _widened(X, [block])
                        X[r0:r0 + len(block), j0:j0 + block.shape[1]] = block
                        r0 += len(block)
                    continue
                except (TypeError, ValueError, NotImplementedError):  # a pyarrow without some of it (pyarrow's
                    pass  # errors derive from these): the group column by column, every row again
            for k0 in range(0, table.num_columns, _TILE):
                columns = [_column_values(table.column(k)) for k in range(k0, min(table.num_columns, k0 + _TILE))]
                at = j0 + k0
                X = _widened(X, columns)
                # (w, n) -> X's columns: contiguous rows first, then one transposing copy
                X[:, at:at + len(columns)] = np.stack(columns).T
        return X


def _read_ahead(file, features: list[str], step: int):
    """(first column, Arrow table) of each group of `step` columns of `features`, in order, the next group read
    in a thread while the caller copies this one into its matrix: Arrow's decoding and the copy (both without
    the interpreter lock) overlap on two cores (8,000 x 5,000 float32: 0.83 -> 0.67 s). One group read ahead at
    most, one read at a time (a ParquetFile is not safe for reads side by side): a group's memory more."""
    from concurrent.futures import ThreadPoolExecutor

    starts = list(range(0, len(features), step))
    with ThreadPoolExecutor(1, thread_name_prefix="mlpcli-parquet") as reader:
        ahead = reader.submit(file.read, columns=features[:step])
        try:
            for i, j0 in enumerate(starts):
                table = ahead.result()
                if i + 1 < len(starts):
                    ahead = reader.submit(file.read, columns=features[starts[i + 1]:starts[i + 1] + step])
                yield j0, table
                del table
        finally:
            ahead.cancel()  # (a read under way finishes before the pool's exit returns)


def _widened(X: np.ndarray, blocks: list[np.ndarray]) -> np.ndarray:
    """X, or a float64 copy of it (at most once per table) when a value of `blocks` (values about to be
    written into it) is not a float32 number; the values already in X are float32 numbers, copied exactly."""
    if X.dtype == np.float32 and feature_dtype(blocks) is np.float64:
        # the part not yet written is np.empty's memory: a signalling-NaN bit pattern there made NumPy warn
        # "invalid value encountered in cast" (it is written over next)
        with np.errstate(invalid="ignore"):
            return X.astype(np.float64)
    return X


def batch_rows(batch) -> np.ndarray:
    """A record batch of float columns as a row-major matrix (rows, columns), missing values NaN."""
    return np.asarray(batch.to_tensor(null_to_nan=True, row_major=True))


def _as_tensors(table) -> bool:
    """Whether a group of columns is read through ``RecordBatch.to_tensor`` (pyarrow 16 and later): float32
    or float64 columns only (missing values become NaN, as pandas reads them); other types (integers,
    booleans, float16) go column by column, where ``feature_dtype`` judges their values as they are."""
    import pyarrow as pa

    return hasattr(pa.RecordBatch, "to_tensor") and table.num_columns > 0 and all(
        pa.types.is_floating(f.type) and f.type.bit_width in (32, 64) for f in table.schema)


# Columns read at a time: Arrow decodes a group in ~2-3 times its size (measured on 8,000 x 5,000 float32: 64 MiB
# groups peaked 190 MB above the matrix, 16 MiB 80 MB, in the same time)
PARQUET_GROUP_BYTES = 16 << 20
_TILE = 64  # columns transposed into the matrix at a time (their rows stay in the CPU caches)


def _column_values(column) -> np.ndarray:
    """A numeric pyarrow column as a NumPy array, missing values NaN (as pandas reads them). A float column of
    one chunk without missing values is a view of its data buffer: ChunkedArray.to_numpy costs ~60 us a
    column (0.3 s at 5,000 columns) and releases the GIL each time, so beside the import of scikit-learn each
    column waited for it (0.4 s of reading became 1.7 s)."""
    import pyarrow as pa

    if column.null_count:  # pyarrow's conversion puts NaN where values are missing
        return column.cast(pa.float64()).to_numpy()
    if column.num_chunks == 1 and pa.types.is_floating(column.type) and column.type.bit_width in (32, 64):
        chunk = column.chunk(0)
        width = column.type.bit_width // 8
        return np.frombuffer(chunk.buffers()[1], dtype=np.float32 if width == 4 else np.float64,
                             count=len(chunk), offset=chunk.offset * width)
    return column.to_numpy()


def parquet_columns(schema, path: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The columns every reader sees in a parquet file with this (pyarrow) schema, as (name, the file's field)
    pairs in order (a name given twice is the caller's error to name), and a note on its stored pandas index.

    ``DataFrame.to_parquet`` stores any index but a plain range as fields: a named index under its name, an
    unnamed one as ``__index_level_0__`` (one per level). The index comes first, as it does in pandas. A
    single unnamed one is the row names, which usually hold the sample ids
    (``set_index("sample_id").rename_axis(None)``), so it is read as `sample_id`, as R's row names are; when
    a column has that name (the index then numbers the rows of a filtered frame), or for the levels of an
    unnamed multi-index, it is left out. Without this rule ``train`` saw a column 'index' that ``predict``
    did not."""
    names = [str(n) for n in schema.names]
    meta = schema.pandas_metadata or {}
    stored = [str(c) for c in meta.get("index_columns", []) if isinstance(c, str) and str(c) in names]
    stored += [n for n in names if n.startswith("__index_level_") and n not in stored]
    unnamed = [n for n in stored if n.startswith("__index_level_")]
    rename = {unnamed[0]: DEFAULT_ID} if len(stored) == 1 and unnamed and DEFAULT_ID not in names else {}
    order = [*stored, *(n for n in names if n not in stored)]
    columns = [(rename.get(n, n), n) for n in order if n in rename or n not in unnamed]
    notes = []
    if rename:
        notes.append(f"{path}: its stored pandas index has no name: read as the sample ids, {DEFAULT_ID!r}")
    elif unnamed:
        why = f"the table has a {DEFAULT_ID!r} column" if DEFAULT_ID in names else "levels of a multi-index"
        notes.append(f"{path}: ignored its stored pandas index without a name ({why}); name it to use it")
    return columns, notes


def read_parquet_frame(path: str, features_in_rows: bool, text: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """(the whole parquet table, its columns named as ``parquet_columns`` names them; notes)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a declared dependency
        raise DataError("reading .parquet tables needs pyarrow; pip install pyarrow") from None
    try:
        schema = parquet_metadata(path).schema.to_arrow_schema()
        columns, notes = parquet_columns(schema, path)
        check_unique_header([n for n, _ in columns], path, features_in_rows)
        # not pd.read_parquet: its threaded dataset reader, on a 60,000-column file in a process pinned to one
        # core (taskset, a SLURM job), took 25 s and 14.8 GB for 40 rows; one ParquetFile read, 3.3 s and 0.6 GB
        with pq.ParquetFile(path, metadata=parquet_metadata(path)) as parquet:
            frame = parquet.read(use_pandas_metadata=True).to_pandas()
    except PARSE_ERRORS as exc:
        raise DataError(f"cannot parse {path} as parquet: {short_reason(exc)}") from None
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        # a stored index: its levels become columns, first, named as the file's fields are (an index named
        # like a column, sample_id beside sample_id, is stored as __index_level_0__ but read back named)
        stored = [str(c) for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)]
        levels = stored if len(stored) == frame.index.nlevels else \
            [n if n is not None else f"__index_level_{i}__" for i, n in enumerate(frame.index.names)]
        frame = frame.rename_axis(levels).reset_index()
    frame.columns = [str(c) for c in frame.columns]
    fields = {f for _, f in columns}
    for field in [c for c in frame.columns if c not in fields]:
        del frame[field]  # in place: no copy of the table
    renamed = {f: n for n, f in columns if n != f}
    frame.columns = [renamed.get(c, c) for c in frame.columns]  # in place: no copy of the table
    if frame.shape[0] == 0:
        raise DataError(f"{path} has a header but no {'feature' if features_in_rows else 'data'} rows")
    return (samples_from_feature_rows(frame, path, text) if features_in_rows else frame), notes
