"""Sample ids checked to name each row of a streamed table once: a 64-bit hash of each id in sorted runs, a repeated
hash confirmed by comparing the ids themselves (read again from the table, or from a compact copy of them)."""

from __future__ import annotations

import bisect
import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..data.dataset import missing_id_hint
from ..data.labels import label_key
from ..data.parquet import parquet_metadata
from ..data.streamed_frames import StreamedFrame, StreamedH5ad, StreamedParquet
from ..errors import DataError


def id_keys(ids) -> tuple[list[str], int | None]:
    """The ids (n,) as the strings they are matched by, as training matches them (1, 1.0 and "1" are one
    id; text ids are compared as they read), up to the first empty one, and that one's position (or None)."""
    keys = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
    for i, value in enumerate(keys):
        if not isinstance(value, str):
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                return keys[:i], i
            keys[i] = label_key(value)
    return keys, None


def hash_keys(keys: list[str]) -> np.ndarray:
    """A 64-bit hash (n,) uint64 of each id key (pandas' SipHash of the UTF-8 text, with a fixed key: the
    same for the same id in every run)."""
    return pd.util.hash_array(np.asarray(keys, dtype=object), categorize=False)


class _KeyStore:
    """Ids kept compactly, for a table that cannot be read twice (text, standard input): per piece, its ids'
    UTF-8 bytes joined and their end offsets (about the ids' length + 4 bytes each, against ~100 for a
    Python string in a dict)."""

    def __init__(self):
        self.first_rows: list[int] = []
        self.blobs: list[bytes] = []
        self.ends: list[np.ndarray] = []

    def add(self, keys: list[str], first_row: int) -> None:
        blob = "".join(keys).encode("utf-8")
        lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        if len(blob) != lengths.sum():  # characters beyond ASCII: lengths in bytes
            lengths = np.fromiter((len(k.encode("utf-8")) for k in keys), dtype=np.int64, count=len(keys))
        self.first_rows.append(first_row)
        self.blobs.append(blob)
        self.ends.append(np.cumsum(lengths).astype(np.uint32 if len(blob) < 2**32 else np.int64))

    def __call__(self, rows: np.ndarray) -> list[str]:
        out = []
        for row in np.asarray(rows, dtype=np.int64).tolist():
            k = bisect.bisect_right(self.first_rows, row) - 1
            i = row - self.first_rows[k]
            ends = self.ends[k]
            out.append(self.blobs[k][(int(ends[i - 1]) if i else 0):int(ends[i])].decode("utf-8"))
        return out


class UniqueIds:
    """Checks that the id column names each row once, and every row: predictions are joined back to the
    samples by id, so a repeated or missing id would silently pair rows with the wrong samples. Ids are
    matched as training matches them (``id_keys``).

    Memory: a 64-bit hash of each id and its row (12 bytes a row, 16 past 2^32 rows), in sorted runs
    merged as a binary counter does (a merge briefly doubles the runs it joins), however long the ids.
    A repeated hash is confirmed by comparing the two ids themselves before it is called a duplicate, so
    ids that merely share a hash are never an error: the earlier id is read again through ``lookup`` (0-based
    rows -> their ids) — a table that can be read twice offers one —, or, without it, from a compact copy
    of the ids (``_KeyStore``) kept for that purpose.
    """

    MAX_RUN = 1 << 22  # runs are not merged beyond this many ids: a merge's temporary copy stays bounded

    def __init__(self, column: str, source: str, lookup: Callable[[np.ndarray], Any] | None = None,
                 predicting: bool = True):
        self.column, self.source = column, source
        self.predicting = predicting  # predict (which can annotate .h5ad cells in place), not evaluate
        self.store = _KeyStore() if lookup is None else None
        self.lookup = self.store if lookup is None else lookup
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted uint64 hashes, their 0-based rows)

    def add(self, ids: np.ndarray, first_row: int) -> None:
        """The ids (n,) of rows first_row + 1 .. first_row + n; a DataError on the first repeat or gap."""
        keys, empty = id_keys(ids)
        self._add(keys, first_row)
        if empty is not None:  # after the repeats before it, as a row-by-row check finds them
            raise DataError(f"{self.source}: the id column {self.column!r} is empty at row {first_row + empty + 1}; "
                            "every sample needs an id (or pass --id to name another column)")

    def _add(self, keys: list[str], first_row: int) -> None:
        n = len(keys)
        if n == 0:
            return
        hashes = hash_keys(keys)
        order = np.argsort(hashes, kind="stable")  # equal hashes in row order
        h = hashes[order]
        row_dtype = np.uint32 if first_row + n < 2**32 else np.int64
        rows = (first_row + order).astype(row_dtype)
        # candidate pairs (later row, earlier row) whose hashes are equal: within the piece, and with the runs
        later, earlier = [], []
        if n > 1:
            starts = np.flatnonzero(np.concatenate([[True], h[1:] != h[:-1]]))
            sizes = np.diff(np.append(starts, n))
            for s0, k in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist()):  # every pair of a group
                i, j = np.triu_indices(k, 1)
                later.append(rows[s0 + j].astype(np.int64))
                earlier.append(rows[s0 + i].astype(np.int64))
        for run_h, run_rows in self.runs:
            left = np.searchsorted(run_h, h, side="left")
            counts = np.searchsorted(run_h, h, side="right") - left
            hit = np.flatnonzero(counts)
            if hit.size:  # each equal hash of the run (several only after a hash collision)
                k = counts[hit]
                offsets = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
                later.append(np.repeat(rows[hit], k).astype(np.int64))
                earlier.append(run_rows[np.repeat(left[hit], k) + offsets].astype(np.int64))
        if later:
            self._confirm(np.concatenate(later), np.concatenate(earlier), keys, first_row)
        if self.store is not None:
            self.store.add(keys, first_row)
        self._insert(h, rows)

    def _confirm(self, later: np.ndarray, earlier: np.ndarray, keys: list[str], first_row: int) -> None:
        """A DataError for the first pair (in the later row's order) whose ids are equal, not just their hashes."""
        order = np.lexsort((earlier, later))
        later, earlier = later[order], earlier[order]
        before = earlier < first_row
        looked_up: dict[int, str] = {}
        if before.any():
            wanted = np.unique(earlier[before])
            earlier_keys, _ = id_keys(np.asarray(self.lookup(wanted), dtype=object))
            looked_up = dict(zip(wanted.tolist(), earlier_keys))
        for r, e in zip(later.tolist(), earlier.tolist()):
            key = keys[r - first_row]
            if key == (looked_up[e] if e < first_row else keys[e - first_row]):
                where = (f"duplicate sample id {key!r} in {self.source}: rows {e + 1} and {r + 1} of the id column "
                         f"{self.column!r}{missing_id_hint([key])}")
                if self.column == "obs_names" and not self.predicting:
                    # evaluate, explain (an .h5ad file's cells): no -o FILE.h5ad to annotate them by position, and
                    # the fix is the one train names
                    raise DataError(f"{where}; cell names must be unique — cells of several samples concatenated? "
                                    "Make them unique (adata.obs_names_make_unique(), or anndata.concat(..., "
                                    "index_unique='-')), or pass --id COLUMN")
                cells = ("; or write -o FILE.h5ad, which annotates the cells in place, by position"
                         if self.column == "obs_names" and self.predicting else "")
                raise DataError(f"{where}; ids must be unique to join predictions back to samples (or pass --id to "
                                f"name another column){cells}")

    def _insert(self, h: np.ndarray, rows: np.ndarray) -> None:
        self.runs.append((h, rows))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= len(self.runs[-1][0]) and \
                len(self.runs[-2][0]) + len(self.runs[-1][0]) <= self.MAX_RUN:
            (h1, r1), (h2, r2) = self.runs[-2], self.runs[-1]
            merged_h = np.concatenate([h1, h2])
            order = np.argsort(merged_h, kind="stable")  # runs in row order: equal hashes stay in row order
            merged_rows = np.concatenate([r1, r2])[order]
            self.runs[-2:] = [(merged_h[order], merged_rows)]


def id_lookup(table, column: str) -> Callable[[np.ndarray], Any] | None:
    """How `table` reads the ids of earlier rows again (0-based rows (m,) -> their values, as its pieces give
    them), for ``UniqueIds`` to confirm a repeated hash; None for text, which is read once."""
    if isinstance(table, StreamedFrame):
        values = table.frame[column]
        return lambda rows: values.iloc[rows].to_numpy(dtype=object)
    if isinstance(table, StreamedH5ad):
        return lambda rows: [table.h.obs_frame([column], r, r + 1)[column].iloc[0] for r in rows.tolist()]
    if isinstance(table, StreamedParquet):
        return lambda rows: _parquet_values(table.name, table.fields[column], rows)
    return None


def _parquet_values(path: str, field: str, rows: np.ndarray) -> list:
    """The values of the column stored as `field` at 0-based `rows` of a parquet file, through pandas as its
    pieces convert label columns (a string column reads the same either way); a file of its own, not the one
    being streamed. The column alone: a stored pandas index would become the frame's index."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path, metadata=parquet_metadata(path)) as f:
        sizes = [f.metadata.row_group(g).num_rows for g in range(f.metadata.num_row_groups)]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        groups = np.searchsorted(starts, rows, side="right") - 1
        out = []
        for row, g in zip(rows.tolist(), groups.tolist()):
            values = f.read_row_group(g, columns=[field]).column(0).to_pandas()
            out.append(values.iloc[row - int(starts[g])])
        return out
