"""Tables whose values are already in columns, read in pieces: a DataFrame (``StreamedFrame``), a parquet file
(``StreamedParquet``: row batches of the needed columns only) and an .h5ad file or 10x directory (``StreamedH5ad``:
row ranges of its matrix, densified range by range)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from .. import data
from ..errors import DataError
from .feature_rows import raise_annotation_columns, raise_names_elsewhere
from .parquet import parquet_columns, parquet_metadata
from .pieces import END, StreamedTable, check_unique_columns, read_ahead


class StreamedFrame(StreamedTable):
    """An in-memory DataFrame (a notebook's, or a transposed file read whole)."""

    def __init__(self, frame: pd.DataFrame, name: str, notes: Sequence[str] = ()):
        self.frame = frame
        self.name = name
        self.notes = tuple(notes)
        self.columns = [str(c) for c in frame.columns]
        if list(frame.columns) != self.columns:
            self.frame = frame.set_axis(self.columns, axis=1)
        check_unique_columns(self.columns, name)

    def first_cells(self, limit: int) -> list[str]:
        return [str(v) for v in self.frame.iloc[:limit, 0]] if self.frame.shape[1] else []

    def check_feature_names(self, wanted: Sequence[str]) -> None:
        raise_names_elsewhere(self.frame, wanted, self.name)

    def pieces(self, size, plan, convert):
        # a transposed file's text columns (gene symbols beside the ids): said now, after the column plan has
        # told a samples x features table given with --features-in-rows by the model's names
        raise_annotation_columns(self.frame)
        sub = self.frame[plan.usecols()]
        n = size.frame_rows(sub.shape[1])
        for start in range(0, len(sub), n):
            yield convert(sub.iloc[start:start + n], start)


# The column chunks of a large parquet row group read at a time (StreamedParquet._batches), by their uncompressed
# size (the row group's total_byte_size over its columns).
COLUMN_BLOCK_BYTES = 16 << 20


class StreamedParquet(StreamedTable):
    """A parquet file, read by row batches of only the needed columns."""

    reading_threads = 1

    def __init__(self, path: str):
        import pyarrow.parquet as pq

        self.name = path
        self.total_bytes = os.path.getsize(path)
        self._done = 0
        try:
            self._file = pq.ParquetFile(path, metadata=parquet_metadata(path))
            schema = self._file.schema_arrow
        except (ValueError, OSError) as exc:
            raise DataError(f"cannot parse {path} as parquet: {data.sources.short_reason(exc)}") from None
        # the columns as every reader names them ({name: field}): a stored pandas index among them
        columns, self.notes = parquet_columns(schema, path)
        self.columns = [n for n, _ in columns]
        check_unique_columns(self.columns, path)
        self.fields, self._names = dict(columns), {f: n for n, f in columns}
        # a stored index (it moves first) is read as columns: without the pandas metadata, which would make it
        # the frame's index again
        self._stored_index = columns != [(str(n), str(n)) for n in schema.names]

    def first_cells(self, limit: int) -> list[str]:
        if not self.columns or self._file.metadata.num_row_groups == 0:
            return []
        try:
            column = self._file.read_row_group(0, columns=[self.fields[self.columns[0]]]).column(0)
        except (ValueError, OSError):
            return []  # the reader names a damaged file when it gets there
        return [str(v) for v in column.slice(0, limit).to_pylist()]

    def pieces(self, size, plan, convert):
        import pyarrow as pa

        batches = self._batches(size.frame_rows(len(plan.usecols())), [self.fields[c] for c in plan.usecols()])
        schema = self._file.schema_arrow
        # numeric features go to numpy column by column, as text input's do (a wide batch through pandas costs
        # a second); a feature of another type goes through pandas, which names the cell that is not a number
        numeric = all(pa.types.is_integer(t) or pa.types.is_floating(t)
                      for t in (schema.field(self.fields[c]).type for c in plan.present_names))
        text = [c for c in plan.label_columns if not pa.types.is_string(schema.field(self.fields[c]).type)]

        def read_one():  # in the read-ahead thread: the next batch, converted
            try:
                batch = next(batches, None)
            except (ValueError, OSError) as exc:
                raise DataError(f"cannot parse {self.name} as parquet: {data.sources.short_reason(exc)}") from None
            if batch is None:
                return END
            first = self._done
            self._done += batch.num_rows
            if self._stored_index:  # the same arrays without the metadata (RecordBatch.rename_columns: pyarrow 16+)
                batch = pa.RecordBatch.from_arrays(batch.columns, names=[self._names[f] for f in batch.schema.names])
            if numeric and not text:
                return convert(pa.Table.from_batches([batch]), first)
            return convert(batch.to_pandas(), first)

        yield from read_ahead(read_one)

    def _batches(self, rows: int, fields: list[str]):
        """Record batches of at most ``rows`` rows of the columns ``fields``. pyarrow decodes a row group's column
        chunks whole (a chunk is often one page), so a row-wise batch of a wide file held the whole row group,
        compressed and decoded: pandas writes one row group per million rows, and 20,000 x 2,000 float32 in one
        row group took 542 MiB of pyarrow memory to read 4,000 rows (888 MiB for `predict` in all). A row group
        of more than two batches is therefore read COLUMN_BLOCK_BYTES of columns at a time, its decoded columns
        (the data's own size) then cut into batches: 190 MiB for that file (predict 888 -> 432 MiB)."""
        import pyarrow as pa

        meta = self._file.metadata
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            if group.num_rows <= 2 * rows:
                yield from self._file.iter_batches(batch_size=rows, row_groups=[i], columns=fields)
                continue
            per_column = max(1, group.total_byte_size // max(1, group.num_columns))
            width = max(1, COLUMN_BLOCK_BYTES // per_column)
            columns = []
            for s in range(0, len(fields), width):
                columns.extend(self._file.read_row_group(i, columns=fields[s:s + width]).columns)
            yield from pa.Table.from_arrays(columns, names=fields).to_batches(max_chunksize=rows)

    @property
    def bytes_read(self):
        return int(self.total_bytes * self._done / max(self._file.metadata.num_rows, 1))

    def close(self):
        self._file.close()


class H5adPiece:
    """A piece of an .h5ad file, as `TextPiece` holds a piece of text: `values` (n, d_present) float64, the
    features in plan.present_names order, and `columns`, the plan's other columns (obs columns)."""

    def __init__(self, values: np.ndarray, frame: pd.DataFrame):
        self.values = values
        self.columns = {c: _SeriesColumn(frame[c]) for c in frame.columns}

    def __len__(self) -> int:
        return self.values.shape[0]


class _SeriesColumn:
    """A pandas Series with the two methods the converters call on a pyarrow column."""

    def __init__(self, series: pd.Series):
        self.series = series.reset_index(drop=True)

    def to_numpy(self, zero_copy_only: bool = False) -> np.ndarray:
        return self.series.to_numpy(dtype=object)

    def to_pandas(self) -> pd.Series:
        return self.series


class StreamedH5ad(StreamedTable):
    """An AnnData .h5ad file (``data.h5ad``), read in row ranges of the chosen matrix (a CSR one from the
    file, backed: memory holds one range, whatever the number of cells), only the genes the model uses,
    densified range by range. Its columns are obs_names (the default id), the obs columns and the genes."""

    reading_threads = 1

    def __init__(self, path: str, layer: str | None, raw: bool, var_names: str | None,
                 var_names_fallback: bool = False, reader=None, needed: frozenset | None = None):
        from .h5ad import OBS_NAMES, H5ad

        # reader: data.tenx.TenX for a 10x Genomics directory (the same interface)
        self.h = (reader or H5ad)(path, layer, raw, var_names, var_names_fallback=var_names_fallback, needed=needed)
        self.name = path
        self.columns = self.h.columns
        self.feature_columns = self.h.named_features
        self.default_id = getattr(self.h, "default_id", OBS_NAMES)
        self.notes = list(self.h.notes)
        self._done = 0
        self.total_bytes = self.h.n_obs  # progress in rows: "bytes" of this table are its cells

    def check_features(self, wanted, given_var_names: str | None) -> None:
        """A DataError explaining a gene-identifier mismatch with the model (``H5ad.check_feature_names``)."""
        self.h.check_feature_names(wanted, given_var_names)

    def pieces(self, size, plan, convert):
        index = {n: j for j, n in enumerate(self.h.feature_names)}
        present = list(plan.present_names)
        present_set = set(present)
        others = [c for c in plan.usecols() if c not in present_set]
        genes = [c for c in others if c in index]  # --by naming a gene the network does not use
        obs_names = [c for c in others if c not in index]  # read range by range, as the matrix
        columns = np.array([index[c] for c in present + genes], dtype=np.int64)
        # the dense block read from a dense matrix is as wide as the file; a sparse one only the genes used
        width = self.h.shape[1] if self.h.kind == "dense" else len(columns)
        step = size.frame_rows(width)
        n = self.h.n_obs
        starts = iter(range(0, n, step))

        def read_one():  # in the read-ahead thread: the next range of rows, converted
            start = next(starts, None)
            if start is None:
                return END
            stop = min(n, start + step)
            values = self.h.rows(start, stop, columns)
            frame = self.h.obs_frame(obs_names, start, stop)
            if genes:
                frame = frame.assign(**{g: values[:, len(present) + k] for k, g in enumerate(genes)})
                values = np.ascontiguousarray(values[:, :len(present)])
            self._done = stop
            return convert(H5adPiece(values, frame), start)

        yield from read_ahead(read_one)

    @property
    def bytes_read(self):
        return self._done

    def close(self):
        self.h.close()
