"""Rows of a feature matrix without copying it (``RowView``, what ``Dataset.subset`` holds), blocks of rows and
columns read from it (``feature_block``), and a sparse matrix's rows and values checked alike."""

from __future__ import annotations

import numpy as np

from .limits import first_beyond_limit


class RowView:
    """Rows `rows` of a feature matrix `base` (n, d), without copying them: what ``Dataset.subset`` holds
    as X, so that a training / validation split or a fold does not add a float64 copy of its rows to the
    whole table's. The preprocessing reads it a block at a time (``block``); anything else that needs an
    array gets the rows copied (``np.asarray(view)``), and indexing its rows gives an ndarray. Pickles as
    that copy (a worker process gets the rows, not the whole table)."""

    __slots__ = ("base", "rows")

    def __init__(self, base: np.ndarray, rows: np.ndarray):
        self.base = base
        self.rows = rows  # (n_rows,) int64 indices into base

    @classmethod
    def of(cls, X, idx) -> "RowView":
        """Rows `idx` (indices or a boolean mask) of an ndarray or of another RowView."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False)
        if isinstance(X, RowView):
            return cls(X.base, X.rows[idx])
        return cls(X, idx)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.base.shape[1])

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self):
        return self.base.dtype

    def __len__(self) -> int:
        return len(self.rows)

    def __array__(self, dtype=None, copy=None):
        out = self.base[self.rows]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key):
        """Rows (an int, slice, indices or mask) -> ndarray; (rows, columns) selects both in one copy."""
        rows, cols = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        picked = self.rows[rows]
        if not cols:
            return self.base[picked]
        if len(cols) == 1 and isinstance(cols[0], slice):
            return self.base[picked, cols[0]]
        return self.base[picked][(slice(None), *cols)]

    def block(self, rows: slice = slice(None), cols=slice(None)) -> np.ndarray:
        """A float64 copy of some rows and columns (slices or index arrays), owned by the caller."""
        picked = self.rows[rows]
        if isinstance(cols, slice):
            return np.asarray(self.base[picked, cols], dtype=np.float64)
        # column-major, as selecting the columns of the rows' copy (X[rows][:, cols]) lays them out
        return np.asfortranarray(self.base[np.ix_(picked, np.asarray(cols))], dtype=np.float64)

    def __reduce__(self):
        return (np.asarray, (self.__array__(),))


def feature_block(X, rows: slice = slice(None), cols=slice(None)) -> np.ndarray:
    """A float64 copy (owned by the caller, free to change in place) of rows and columns of X, an ndarray
    or a RowView. Index-array columns give the layout numpy's fancy indexing gives (column-major), as
    ``X[:, kept]`` always did, so that statistics sum in the same order."""
    if isinstance(X, RowView):
        return X.block(rows, cols)
    block = X[rows, cols] if isinstance(cols, slice) else X[rows][:, np.asarray(cols)]
    if np.may_share_memory(block, X):  # a view: copy it, keeping its layout
        return np.array(block, dtype=np.float64, copy=True)
    return np.asarray(block, dtype=np.float64)


def sparse_rows(X, idx):
    """Rows `idx` (indices or a boolean mask) of a sparse matrix, as CSR (a copy of their stored values)."""
    idx = np.asarray(idx)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    return X.tocsr()[idx.astype(np.int64, copy=False)]


def sparse_first_beyond_limit(X) -> tuple[int, int] | None:
    """``limits.first_beyond_limit`` of a CSR matrix: (row, column) of its first stored value beyond
    ±VALUE_LIMIT in row order, or None (implicit zeros are within it)."""
    X = X.tocsr()
    at = first_beyond_limit(X.data.reshape(1, -1)) if X.nnz else None
    if at is None:
        return None
    k = at[1]
    return int(np.searchsorted(X.indptr, k, side="right") - 1), int(X.indices[k])
