"""Whether a table looks like raw counts or TPM (non-negative, right-skewed features), the check behind
``--log1p auto``: the median per-feature skewness, on a spaced sample of a dense table's rows or from a
sparse matrix's stored values, never densified."""

from __future__ import annotations

import numpy as np

from . import preprocess
from .dataset import is_sparse
from .preprocess import TINY_SPREAD, _as_matrix, _column_sd, _rows_per_block, _spans

__all__ = ["COUNTS_SKEW", "SKEW_ROWS", "looks_like_counts"]

# A median per-feature skewness above this on non-negative data looks like raw counts or TPM, for which
# log1p is the usual first step (the sample data sits near 2.7; log-scale microarray data near 0).
COUNTS_SKEW = 1.0
# Rows (evenly spaced) the skewness of a dense table is computed on. Measured against every row (the
# median skewness of 8,000-20,000-row tables, 20-5,000 features): at 2,000 rows the median moved by at most
# 0.03 near the threshold (lognormal data with a median skewness of 0.77-1.13: the decision changed for
# none), while heavy-tailed tables far above it read lower (5.2 -> 4.7 on lognormal(1, 1) values); at 1,000
# rows the median moved by up to 0.19 and the decision changed for two of ten near-threshold tables.
# Tables of up to 2,000 rows use every row, as before. Costs ~0.1 s at 5,000 features, whatever the rows.
SKEW_ROWS = 2000


def looks_like_counts(X) -> float | None:
    """The median per-feature skewness of X (n, d) when it looks like raw counts or TPM (no negative value,
    median skewness above COUNTS_SKEW), else None. Rows with missing (or infinite) values are left out of
    the skewness.

    Dense X (an ndarray or a RowView): every value is checked for negativity (one pass in its own dtype, no
    float64 copy), but the skewness is computed on SKEW_ROWS rows evenly spaced among the complete ones
    (all of them in a smaller table), a column block at a time. Sparse X: from its stored values (moments
    with the implicit zeros counted), never densified."""
    if is_sparse(X):
        return _sparse_counts_skew(X.tocsr())
    X = _as_matrix(X)
    n, d = X.shape
    complete = np.empty(n, dtype=bool)
    step = _rows_per_block(d)
    for i in range(0, n, step):
        B = np.asarray(X[i:i + step])  # (rows, d) in X's dtype: a view, or a copy of a RowView's rows
        if B.size and np.fmin.reduce(B, axis=None) < 0:  # NaN ignored; -inf is negative
            return None
        complete[i:i + step] = np.isfinite(B).all(axis=1)
    rows = np.flatnonzero(complete)
    if len(rows) < 3:
        return None
    if len(rows) > SKEW_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, SKEW_ROWS).round().astype(np.int64)]
    m = len(rows)
    width = max(2, preprocess._BLOCK_VALUES // m)  # the module's block size, read now
    skews = []
    for j in range(0, d, width):
        B = np.asarray(X[rows, j:j + width], dtype=np.float64)  # (m, w) a copy of the rows' columns
        B -= B.mean(axis=0)
        sd = _column_sd(B)
        ok = sd >= TINY_SPREAD
        with np.errstate(over="ignore", invalid="ignore"):  # beyond ~1e102 SDs a cube is inf (NaN if both signs)
            if ok.all():
                B /= sd
                z = B
            else:
                z = B[:, ok] / sd[ok]
            cube = z * z
            cube *= z
            skews.append(cube.mean(axis=0))
        del B, z, cube
    skew = np.concatenate(skews)
    if not skew.size:
        return None
    median = float(np.median(skew))
    return median if median > COUNTS_SKEW else None


def _sparse_counts_skew(X) -> float | None:
    """``looks_like_counts`` of a CSR matrix: the same moments (mean, SD, third central moment per column)
    from sums over the stored values, the implicit zeros added in closed form; a chunk of stored values at a
    time (the sums in the order a whole-matrix np.bincount adds them)."""
    n, d = X.shape
    bad = ~np.isfinite(X.data)
    if bad.any():  # rows with missing (or infinite) values are left out, as for dense input
        rows = np.unique(np.searchsorted(X.indptr, np.flatnonzero(bad), side="right") - 1)
        X = X[np.setdiff1d(np.arange(n), rows)]
        n = X.shape[0]
    del bad
    if n < 3:
        return None
    data, cols = X.data[:X.indptr[-1]], X.indices
    if data.size and data.min() < 0:
        return None
    spans = list(_spans(data.size))
    stored, sums = np.zeros(d, dtype=np.int64), np.zeros(d)
    for a, b in spans:
        stored += np.bincount(cols[a:b], minlength=d)
        np.add.at(sums, cols[a:b], data[a:b].astype(np.float64))
    zeros = n - stored
    mean = sums / n
    s2, s3 = np.zeros(d), np.zeros(d)
    for a, b in spans:
        c = data[a:b].astype(np.float64)
        c -= mean[cols[a:b]]
        c2 = c * c
        np.add.at(s2, cols[a:b], c2)
        c2 *= c
        np.add.at(s3, cols[a:b], c2)
    m2 = (s2 + zeros * mean ** 2) / n
    with np.errstate(over="ignore", invalid="ignore"):
        m3 = (s3 - zeros * mean ** 3) / n
        sd = np.sqrt(m2)
        ok = sd >= TINY_SPREAD
        skew = m3[ok] / sd[ok] ** 3
    if not skew.size:
        return None
    median = float(np.median(skew))
    return median if median > COUNTS_SKEW else None
