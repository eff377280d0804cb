"""Per-column statistics of a feature matrix as the preprocessing fits them: whether a spread is a real one
(``varies``), quartiles from a random sample of rows (``quartile_rows``, ``column_percentiles``), columns tied at
one value (``tied_columns``), SDs (``column_sd``), NaN-skipping medians (``nan_median``) and the quantiles of a
sparse matrix's columns, implicit zeros included (``sparse_quantiles``)."""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np


# Robust scaling takes the mean and SD instead of the median and IQR for a feature where one value holds at least
# this share of the training rows: its quartiles then fall on that value (the zeros of single-cell expression, the
# lowest of a few score levels), and the IQR measures where the tie ends, not the spread: a marker gene expressed
# in 30 % of the cells was divided by the small IQR of its lowest values and its expressed cells all clipped near
# +3. Measured on the benchmark's single cells (scanpy's pbmc68k_reduced, 93 % of genes tied), 3 seeds x 5 folds:
# balanced accuracy 0.701 against 0.675 (logistic regression 0.692); the sets without ties are unchanged. Dense
# data only: sparse data is scaled without centring (see Preprocessor), where the SD of a zero-inflated gene
# measured no better than its IQR or half range (the same cells' log-normalised values as a sparse .h5ad: 0.721 /
# 0.724 against 0.729 / 0.715 over two seeds, log loss 0.421 / 0.416 against 0.413 / 0.410).
TIED_SHARE = 0.25


# Feature values beyond float32's range are refused where tables are read (limits.VALUE_LIMIT).
# A feature whose training values span less than this is constant for float64 arithmetic: its spread would
# be a subnormal number (a few significant bits, or 0), so scaling by it gives noise or infinities.
TINY_SPREAD = float(np.finfo(np.float64).tiny) * 2.0**52


# So is one whose values differ by no more than float64's rounding of their size (the same number computed
# two ways: 0.1 + 0.2 and 0.3): scaled by that spread, any other value would be ~1e15 spreads away, and the
# network would learn from rounding noise (scikit-learn's StandardScaler takes such a feature as constant).
ROUNDING_SPREAD = 16 * float(np.finfo(np.float64).eps)


def varies(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Whether spreads high - low (w,) (ranges, IQRs; within ±VALUE_LIMIT: no overflow) are real ones: at
    least TINY_SPREAD and more than ROUNDING_SPREAD times the values' size."""
    spread = high - low
    return (spread >= TINY_SPREAD) & (spread > ROUNDING_SPREAD * np.maximum(np.abs(low), np.abs(high)))


# Robust scaling's quartiles are read from QUARTILE_ROWS training rows drawn at random when there are twice as
# many or more (``quartile_rows``): the partitions of every row were half the dense preprocessing (0.46 of 1.04
# CPU seconds at 6,400 x 5,000); an IQR from 2,048 random rows is within ~2 % of the whole column's (its standard
# error for normal values), far below what the scaling has to be right to. Earlier models: every row.
QUARTILE_ROWS = 2048


def tied_columns(X: np.ndarray, quartiles: Sequence[np.ndarray], scratch: np.ndarray | None = None,
                  candidates: np.ndarray | None = None) -> np.ndarray:
    """(w,) bool: the columns of X (n, w) where the value at a quartile (q25, median or q75, each (w,)) holds at
    least TIED_SHARE of the rows. Any value that holds more than a quarter of the rows (plus two) lies at a
    quartile, between two equal order statistics, so these are the columns whose quartiles mark where a tie
    ends (zero-inflated counts, scores on a few levels, scaled single cells). candidates: (w,) bool, the columns
    with equal order statistics around a quartile (``column_percentiles``); the others are not counted (no pass
    over continuous data). scratch: work space of X's shape (its first n x w bytes hold the comparisons), or None."""
    if candidates is not None and not candidates.all():  # (all of them: counted below, in scratch)
        tied = np.zeros(X.shape[1], dtype=bool)
        if candidates.any():
            local = np.flatnonzero(candidates)
            tied[local] = tied_columns(X[:, local], [q[local] for q in quartiles])
        return tied
    n, w = X.shape
    if scratch is not None and scratch.flags.f_contiguous == X.flags.f_contiguous:
        order = "F" if X.flags.f_contiguous else "C"
        equal = scratch.reshape(-1, order="A").view(np.bool_)[:n * w].reshape((n, w), order=order)
    else:
        equal = np.empty((n, w), dtype=bool)
    most = np.zeros(w, dtype=np.int64)
    for q in quartiles:
        np.equal(X, q, out=equal)
        np.maximum(most, np.count_nonzero(equal, axis=0), out=most)
    return most >= TIED_SHARE * n


def column_sd(X: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """Per-column standard deviation (d,) of X (n, d), X.std(axis=0) except where the deviations are so small
    that their squares leave float64's normal range (SD below 1e-150): those columns are computed on
    deviations divided by their largest magnitude, then scaled back, so the result is not 0 or subnormal
    noise. scratch: an array of X's shape and layout for the deviations (``_std``)."""
    sd = X.std(axis=0) if scratch is None else _std(X, scratch)
    small = np.flatnonzero(sd < 1e-150)
    if small.size:
        D = X[:, small] - X[:, small].mean(axis=0)
        m = np.abs(D).max(axis=0)
        m[m == 0] = 1.0
        sd[small] = m * (D / m).std(axis=0)
    return sd


def _std(X: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """X.std(axis=0) of X (n, d), the same numbers (numpy's steps: the mean kept as (1, d), the deviations,
    squared, summed, divided by n, the root), with the deviations in ``scratch`` (X's shape and layout, so
    they are summed in the same order) instead of a new array."""
    n = X.shape[0]
    mean = np.add.reduce(X, axis=0, keepdims=True)
    np.true_divide(mean, n, out=mean, casting="unsafe")
    np.subtract(X, mean, out=scratch)
    np.square(scratch, out=scratch)
    var = np.add.reduce(scratch, axis=0)
    np.true_divide(var, n, out=var, casting="unsafe")
    return np.sqrt(var, out=var)


def quartile_rows(n: int) -> np.ndarray | None:
    """The rows (sorted indices) of n training rows that robust scaling's quartiles are read from: QUARTILE_ROWS
    of them drawn at random with a fixed seed (the same rows for every column and every run) from
    2 x QUARTILE_ROWS rows on, else None (all of them). At random, not every k-th row: tables come ordered
    (paired normal / tumour rows, one patient's samples together, sorted by class), and rows of one phase of
    such a pattern gave a marker feature the normal rows' median and IQR (0.01 and 1.36 where all rows give
    1.95 and 3.95)."""
    if n < 2 * QUARTILE_ROWS:
        return None
    return random_rows(n, QUARTILE_ROWS)


@functools.lru_cache(maxsize=4)
def random_rows(n: int, m: int) -> np.ndarray:
    """m of n row indices, sorted, drawn with seed 0; cached (read-only): every column block of a fit asks for the
    same rows (31 draws of 0.6 ms each at 6,400 x 5,000)."""
    rows = np.sort(np.random.default_rng(0).choice(n, m, replace=False))
    rows.flags.writeable = False
    return rows


def column_percentiles(X: np.ndarray, qs: Sequence[float], scratch: np.ndarray | None = None,
                       neighbours_equal: bool = False, rows: np.ndarray | None = None):
    """``np.percentile(X, qs, axis=0)`` (linear interpolation) of X (n, d) without missing values: (k, d),
    the same numbers, in about half the time. np.percentile partitions a copy of X at the order statistics
    the percentiles need and also at the first and last (the minimum, the maximum, to find NaN); here only at
    those needed, then numpy's interpolation formula (``_lerp``) is applied to them as numpy applies it
    (tests/test_memory_time.py compares the two bit for bit). scratch: an array of X's shape and layout that
    is partitioned instead of a copy of X. neighbours_equal: also return, per column, whether the two order
    statistics some percentile is interpolated between are equal (a tie there: ``tied_columns``).
    rows: the percentiles of X[rows] instead (m row indices), gathered into the first m x d values of scratch
    (a copy of its own without scratch)."""
    if rows is not None:
        m, d = len(rows), X.shape[1]
        if scratch is not None and scratch.size >= m * d and scratch.dtype == np.float64:
            P = scratch.reshape(-1, order="A")[:m * d].reshape((m, d), order="F")
            # column by column for column-major X (its transpose's rows: 6 times faster than taking X's rows,
            # 0.013 against 0.077 s for 31 blocks of 6,400 x 164); mode "raise" would buffer the result
            if X.flags.f_contiguous:
                np.take(X.T, rows, axis=1, out=P.T, mode="clip")
            else:
                np.take(X, rows, axis=0, out=P, mode="clip")
        else:
            P = np.array(X[rows], dtype=np.float64, order="F")  # fancy indexing: a copy, never X itself
        return column_percentiles(P, qs, P, neighbours_equal)
    n = X.shape[0]
    q = np.asarray(qs, dtype=np.float64) / 100.0
    virtual = (n - 1) * q  # numpy's virtual index of method "linear"
    previous = np.floor(virtual)
    gamma = virtual - previous
    last = virtual >= n - 1  # numpy takes the maximum there
    lo = np.where(last, n - 1, previous).astype(np.intp)
    hi = np.where(last, n - 1, previous + 1).astype(np.intp)
    if scratch is None:
        P = np.array(X, dtype=np.float64, order="F" if X.flags.f_contiguous else "C")  # ours to partition
    else:  # X's shape and layout
        P = scratch
        if P is not X:
            np.copyto(P, X)
    # sorted, not partitioned: the same order statistics, and NumPy's vectorised sort (along contiguous
    # values) took 0.08 s for a 6,400 x 5,000 fit's 31 blocks of 2,048 rows where a partition at six
    # positions took 0.30 s
    (P.T if P.flags.f_contiguous else P).sort(axis=1 if P.flags.f_contiguous else 0)
    out = np.empty((len(q), X.shape[1]))
    for i in range(len(q)):
        a, b = P[lo[i]], P[hi[i]]
        diff = b - a
        out[i] = b - diff * (1.0 - gamma[i]) if gamma[i] >= 0.5 else a + diff * gamma[i]
    if neighbours_equal:  # the two order statistics each percentile lies between, equal in some: (d,) bool
        return out, np.logical_or.reduce([P[lo[i]] == P[hi[i]] for i in range(len(q))])
    return out


def sparse_quantiles(C, n: int, columns: np.ndarray, qs: Sequence[float], skip_nan: bool = False) -> np.ndarray:
    """Percentiles `qs` (k,) of the whole columns `columns` of a CSC matrix C with n rows, implicit zeros
    included, as np.percentile (linear interpolation) gives them on the dense column: (k, len(columns)).
    skip_nan: missing values are left out (a column without any value gives NaN)."""
    out = np.empty((len(qs), len(columns)))
    fractions = np.asarray(qs, dtype=np.float64) / 100.0
    for i, j in enumerate(np.asarray(columns).tolist()):
        s = np.sort(C.data[C.indptr[j]:C.indptr[j + 1]])  # NaN sort last
        missing = int(np.isnan(s).sum()) if skip_nan else 0
        if missing:
            s = s[:len(s) - missing]
        z = n - missing - len(s)  # implicit zeros
        total = len(s) + z
        if total == 0:
            out[:, i] = np.nan
            continue
        if not len(s):
            out[:, i] = 0.0
            continue
        negative = int(np.searchsorted(s, 0.0, side="left"))
        pos = fractions * (total - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, total - 1)
        last = len(s) - 1

        def at(r: np.ndarray) -> np.ndarray:  # the r-th smallest value of the whole column (zeros in place)
            return np.where(r < negative, s[np.minimum(r, last)],
                            np.where(r < negative + z, 0.0, s[np.clip(r - z, 0, last)]))

        a, b = at(lo), at(hi)
        out[:, i] = a + (b - a) * (pos - lo)
    return out


def nan_median(X: np.ndarray, nan_mask: np.ndarray, nan_counts: np.ndarray) -> np.ndarray:
    """Column medians (d,) ignoring NaN, vectorised (np.nanmedian loops in Python over columns with NaN)."""
    values = np.empty(X.shape[1])
    full = nan_counts == 0
    if full.any():
        values[full] = np.median(X[:, full], axis=0)
    holed = np.flatnonzero(~full)
    if holed.size:
        block = np.sort(X[:, holed], axis=0)  # NaN sort last
        k = X.shape[0] - nan_counts[holed]  # non-missing values per column
        lo, hi = np.maximum((k - 1) // 2, 0), np.maximum(k // 2, 0)
        cols = np.arange(holed.size)
        values[holed] = np.where(k > 0, (block[lo, cols] + block[hi, cols]) / 2, np.nan)
    return values
