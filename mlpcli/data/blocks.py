"""How the preprocessing walks a feature matrix in bounded memory: blocks of columns or of rows of about
``BLOCK_VALUES`` values each. Every statistic is per column, so the block size changes no result."""

from __future__ import annotations

import numpy as np

from ..centred_rows import is_sparse
from .row_view import RowView, feature_block


# Values per block of columns or rows that the preprocessing works on at a time (8 MiB of float64). Each
# statistic is per column, so the block size changes no result; a block's temporaries (its float64 copy,
# the column-major copy, the copy np.percentile partitions, the clip's) come to ~5 blocks, 40 MB.
BLOCK_VALUES = 1 << 20
TILE_ROWS = 128  # rows per tile when a column-major block is copied into row-major rows


def as_matrix(X):
    """X as the preprocessing reads it: an ndarray, a RowView or a sparse matrix as it is, anything else as
    float64."""
    return X if isinstance(X, (np.ndarray, RowView)) or is_sparse(X) else np.asarray(X, dtype=np.float64)


def column_blocks(X):
    """(columns slice, float64 copy of X[:, columns] (n, w) in X's layout) for consecutive blocks of columns."""
    n, d = X.shape
    # at least two columns: numpy sums a single column (contiguous) pairwise but the columns of a wider
    # row-major block one row after the other, as it does the whole matrix's
    width = max(2, BLOCK_VALUES // max(1, n))
    for j in range(0, d, width):
        cols = slice(j, min(d, j + width))
        yield cols, feature_block(X, slice(None), cols)


def kept_parts(kept: np.ndarray, n: int):
    """Slices of the kept columns' list, each of about BLOCK_VALUES values over n rows."""
    width = max(1, BLOCK_VALUES // max(1, n))
    for j in range(0, len(kept), width):
        yield slice(j, min(len(kept), j + width))


def rows_per_block(d: int) -> int:
    """Rows of `d` features in a block of about BLOCK_VALUES values (at least one)."""
    return max(1, BLOCK_VALUES // max(1, d))
