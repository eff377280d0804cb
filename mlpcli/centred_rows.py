"""Sparse rows as the preprocessing hands them to the fit loop (``CentredRows``: a CSR matrix centred as it is
densified, a minibatch at a time), and the one test of sparseness every module uses (``is_sparse``). NumPy only:
a dense run never imports scipy.sparse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CentredRows:
    """Sparse rows whose columns are centred as they are densified: row i is ``matrix[i] - offset``.

    matrix: scipy.sparse CSR (n, d) float64, the preprocessed values of the stored entries (implicit zeros
    stay 0); offset: (d,) float64, each column's training mean; out_dtype: the dense rows' dtype (the
    network's). Centring a sparse matrix as a whole would store every implicit zero (10 to 30 times its
    size for single-cell counts); the fit loop densifies a minibatch at a time anyway, and centres it there.
    The subtraction is made in float64 and then rounded, as the dense preprocessing does, so a dense row
    here is bit for bit what ``Preprocessor.transform`` gives the same raw row (float64 stored values: 8
    bytes more per stored value than float32 would take). Rows ``X[idx]`` stay CentredRows."""

    matrix: object
    offset: np.ndarray
    out_dtype: np.dtype

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.out_dtype)

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    def __getitem__(self, rows) -> "CentredRows":
        return CentredRows(self.matrix[rows], self.offset, self.out_dtype)

    def toarray(self, out: np.ndarray | None = None) -> np.ndarray:
        """(n, d) dense in ``out_dtype``, into ``out`` when given. An implicit zero becomes -offset, rounded
        once; a stored value z becomes z - offset, computed in float64 and rounded: what the dense
        preprocessing gives, without a float64 copy of the block."""
        n, d = self.shape
        out = np.empty((n, d), dtype=self.dtype) if out is None else out
        out[...] = np.negative(self.offset)
        m = self.matrix
        rows = np.repeat(np.arange(n), np.diff(m.indptr))
        out[rows, m.indices] = m.data - self.offset[m.indices]
        return out


def is_sparse(X) -> bool:
    """Whether X is a scipy.sparse matrix or CentredRows (told without importing scipy: a dense run never needs
    scipy.sparse). The one test of sparseness for every module."""
    return isinstance(X, CentredRows) or hasattr(X, "tocsr") and hasattr(X, "nnz")


def dense_rows(X, start: int, stop: int) -> np.ndarray:
    """Rows start..stop of X as a dense array (a sparse X densified for these rows only)."""
    return X[start:stop].toarray() if is_sparse(X) else X[start:stop]
