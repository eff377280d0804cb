"""Whether a table looks like raw counts or TPM (non-negative, right-skewed features), the check behind
``--log1p auto``: the median per-feature skewness, on a spaced sample of a dense table's rows or from a
sparse matrix's stored values, never densified.

A column of mostly zeros is right-skewed whatever the scale of its other values, so the zeros of
single-cell data made log-normalised values (an ``.h5ad`` file's ``.X``) look like counts, and they got
log1p a second time. Such a table is told apart by its non-zero values: not whole numbers, and not skewed
(median skewness 0.3 on the sample data's ``.X``, 3.1 for its counts layer; 0.1-0.3 on simulated
log-normalised cells of 3-85 % non-zero values, 2.5-4.4 for their counts)."""

from __future__ import annotations

import numpy as np

from . import blocks
from ..centred_rows import is_sparse
from .blocks import as_matrix, rows_per_block
from .column_stats import TINY_SPREAD
from .preprocess_sparse import value_spans

__all__ = ["COUNTS_SKEW", "NONZERO_MIN", "SKEW_ROWS", "LOGGED_NOTE", "FEW_NEGATIVE_SHARE", "looks_like_counts",
           "counts_like", "whole_counts"]

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
# Non-zero values a feature needs for the skewness of its non-zero values to count (all the rows read, in a
# table of fewer rows): the skewness of k values is at most (k - 2) / sqrt(k - 1), 0.71 for 3 values, so
# features with a few non-zero values would pull the median below COUNTS_SKEW whatever the data's scale.
NONZERO_MIN = 10


# What ``looks_like_counts`` tells a caller that asks, when it declines values skewed only by their zeros
LOGGED_NOTE = ("--log1p auto: not applied, the values look log-normalised already (skewed by their zeros alone: "
               "the other values are neither whole numbers nor skewed); --log1p to apply it")


def looks_like_counts(X, notes: list[str] | None = None, warnings: list[str] | None = None,
                      names: list[str] | None = None) -> float | None:
    """The median per-feature skewness of X (n, d) when it looks like raw counts or TPM (no negative value,
    median skewness above COUNTS_SKEW), else None. Rows with missing (or infinite) values are left out.
    Also None for values log-transformed already (log-normalised single cells, skewed by their zeros):
    zeros, values that are not all whole numbers, and the features' non-zero values not skewed (median
    skewness at most COUNTS_SKEW, over the features with at least NONZERO_MIN non-zero values).

    Dense X (an ndarray or a RowView): every value is checked for negativity (one pass in its own dtype, no
    float64 copy), but the skewness is computed on SKEW_ROWS rows evenly spaced among the complete ones
    (all of them in a smaller table), a column block at a time. Sparse X: from its stored values (moments
    with the implicit zeros counted), never densified. ``notes`` (when given) gets LOGGED_NOTE when values
    that look skewed are declined as log-normalised already: the surprising "no". Values that look like counts
    but for a few negative ones (entry errors) are declined with a line in ``warnings`` (``notes`` without it):
    a model trained without the log1p the table needs, which -q's hidden note had not said; negatives confined to
    columns where they are common are named (``names``: X's column names) as signed features, not entry errors."""
    skew = _sparse_counts_skew(X.tocsr()) if is_sparse(X) else _dense_counts_skew(X)
    if skew == _LOGGED:
        if notes is not None:
            notes.append(LOGGED_NOTE)
        return None
    said = warnings if warnings is not None else notes
    if skew is None and said is not None:
        note = _few_negatives_note(X, names)
        if note:
            said.append(note)
    return skew


def whole_counts(values: np.ndarray) -> tuple[bool, float | None]:
    """(whether `values` are whole numbers >= 0, as raw counts are; the first that is not, or None). NaN counts as
    neither (a missing value)."""
    values = np.asarray(values, dtype=np.float64)
    odd = np.flatnonzero(~np.isnan(values) & ((values < 0) | (values != np.round(values))))
    return (not odd.size, float(values[odd[0]]) if odd.size else None)


def counts_like(X, sample: int = 100_000) -> bool:
    """Whether the first `sample` stored values of X (n, d) (a sparse matrix's data, a dense one's first rows) are
    raw counts (``whole_counts``): what a model records of its cells, for predict to compare another matrix with."""
    if is_sparse(X):
        values = X.tocsr().data[:sample]
    else:
        X = as_matrix(X)
        values = np.asarray(X[: max(1, sample // max(X.shape[1], 1))]).ravel()
    return whole_counts(values)[0]


# At most this share of the values negative, among values that otherwise look like counts: entry errors, not a
# log scale (``_few_negatives_note``)
FEW_NEGATIVE_SHARE = 1e-3
# A column with at least this share of its values negative (and SIGNED_MIN of them) is a signed measurement, not
# counts with entry errors: an entry error is a cell or two of a column; modeldata's hepatic_injury_qsar has one
# descriptor of 376, 'chem_fp_002', negative in 26 % of its rows (59 values, 0.07 % of the table's: "entry errors?")
SIGNED_SHARE = 0.1
SIGNED_MIN = 3


def _few_negatives_note(X, names: list[str] | None = None) -> str | None:
    """Why --log1p auto declined values that look like counts but for a few negative ones (at most
    FEW_NEGATIVE_SHARE of them): 5 values of -3 among 723,609 counts left log1p out without a word. None when there
    are none, or many (a log or z scale, whose negatives are its own). When every negative value lies in columns
    that are signed (``SIGNED_SHARE``), those columns (named by ``names``) are said to be signed, not entry errors."""
    if is_sparse(X):
        X = X.tocsr()
        negative = int(np.count_nonzero(X.data < 0))
        total = X.shape[0] * X.shape[1]
        per_column = np.bincount(X.indices[X.data < 0], minlength=X.shape[1])
    else:
        X = as_matrix(X)
        negative, step, total = 0, rows_per_block(X.shape[1]), X.shape[0] * X.shape[1]
        per_column = np.zeros(X.shape[1], dtype=np.int64)
        for i in range(0, X.shape[0], step):
            below = np.asarray(X[i:i + step]) < 0
            per_column += np.count_nonzero(below, axis=0)
            negative += int(below.sum())
            if negative > FEW_NEGATIVE_SHARE * total:  # a log or z scale: no need to read on
                return None
    if not negative or negative > FEW_NEGATIVE_SHARE * total:
        return None
    if is_sparse(X):  # the same values, the negative ones at 0: would they look like counts?
        clipped = X.copy()
        np.maximum(clipped.data, 0, out=clipped.data)
        skew = _sparse_counts_skew(clipped)
    else:
        rows = np.linspace(0, X.shape[0] - 1, min(SKEW_ROWS, X.shape[0])).round().astype(np.int64)
        sample = np.array(X[np.unique(rows)], dtype=np.float64)
        np.maximum(sample, 0, out=sample, where=~np.isnan(sample))
        skew = _dense_counts_skew(sample)
    if skew is None or skew == _LOGGED:
        return None
    signed = np.flatnonzero((per_column >= SIGNED_MIN) & (per_column >= SIGNED_SHARE * X.shape[0]))
    if len(signed) and per_column[signed].sum() == negative:  # no stray negative elsewhere: signed features
        def named(j: int) -> str:
            return repr(str(names[j])) if names is not None and j < len(names) else f"column {j + 1}"
        listed = ", ".join(f"{named(j)} ({per_column[j] / X.shape[0]:.0%} of its values)" for j in signed[:3])
        more = f" and {len(signed) - 3} more" if len(signed) > 3 else ""
        one = len(signed) == 1
        return (f"--log1p auto: not applied, though most features look like raw counts or intensities (median "
                f"skewness {skew:.1f}): {'a feature takes' if one else f'{len(signed)} features take'} negative "
                f"values, {listed}{more} — {'a signed measurement' if one else 'signed measurements'}, not counts, "
                "which log(1 + x) cannot take; log1p applies to every feature or none: log-transform the count-like "
                "features yourself to have both, or pass --no-log1p to train on the values as they are")
    some = "1 value is" if negative == 1 else f"{negative:,} values are"
    return (f"--log1p auto: not applied, though the features look like raw counts or intensities (median skewness "
            f"{skew:.1f}): {some} negative, which counts cannot be — entry errors? Correct "
            f"{'it' if negative == 1 else 'them'} (--log1p names the first), or pass --no-log1p to train on the values "
            "as they are")


def _dense_counts_skew(X) -> float | None:
    """``looks_like_counts`` of a dense X; -1.0 for values declined as log-normalised already."""
    X = as_matrix(X)
    n, d = X.shape
    complete = np.empty(n, dtype=bool)
    step = rows_per_block(d)
    for i in range(0, n, step):
        B = np.asarray(X[i:i + step])  # (rows, d) in X's dtype: a view, or a copy of a RowView's rows
        if B.size and np.fmin.reduce(B, axis=None) < 0:  # NaN ignored; -inf is negative
            return None
        complete[i:i + step] = np.isfinite(B).all(axis=1)
    rows = np.flatnonzero(complete)
    gaps = len(rows) < min(SKEW_ROWS, n) // 2
    if gaps:
        # missing values scattered over most rows (5 % of the cells of 300 genes leave few rows whole): each
        # column's own values, of rows evenly spaced among all, where the complete rows alone were too few (under
        # half of those the check reads) and it answered "no" without a word (raw counts trained unlogged under
        # --impute)
        rows = np.arange(n)
    if len(rows) < 3:
        return None
    if len(rows) > SKEW_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, SKEW_ROWS).round().astype(np.int64)]
    m = len(rows)
    width = max(2, blocks.BLOCK_VALUES // m)  # the module's block size, read now
    if gaps:
        skew = np.concatenate([_gapped_skew(np.asarray(X[rows, j:j + width], dtype=np.float64))
                               for j in range(0, d, width)])
        if not skew.size or float(np.median(skew)) <= COUNTS_SKEW:
            return None
        return _LOGGED if _dense_logged(X, rows, width) else float(np.median(skew))
    skews = []
    any_zero, whole = False, True  # (log-normalised values have zeros and values that are not whole numbers)
    for j in range(0, d, width):
        B = np.asarray(X[rows, j:j + width], dtype=np.float64)  # (m, w) a copy of the rows' columns
        any_zero = any_zero or bool((B == 0).any())
        if whole:  # once a value is not whole, the table is not
            whole = bool(np.all(np.rint(B) == B))
        B -= B.mean(axis=0)
        # the sums of squared and cubed deviations in one pass each, without temporaries (the standardised cubes'
        # mean took six passes and two arrays: 0.15 -> 0.07 s at 2,000 x 5,000), as the gapped rows' and the non-zero
        # values' skewness are computed
        with np.errstate(over="ignore", invalid="ignore"):
            skews.append(_skew(np.einsum("ij,ij->j", B, B), np.einsum("ij,ij,ij->j", B, B, B), np.full(B.shape[1], m)))
        del B
    skew = np.concatenate(skews)
    if not skew.size:
        return None
    median = float(np.median(skew))
    if median <= COUNTS_SKEW:
        return None
    # without a zero, or with whole numbers only, they are not log-normalised: no second look (0.09 s at 5,000
    # features)
    return _LOGGED if any_zero and not whole and _dense_logged(X, rows, width) else median


_LOGGED = -1.0  # the helpers' answer for values skewed by their zeros alone (a skewness above COUNTS_SKEW is > 0)


def _gapped_skew(B: np.ndarray) -> np.ndarray:
    """The skewness of each column of B (m, w) over its finite values (missing ones left out), for the columns with
    at least 3 of them and an SD not 0: the same moments as the complete rows' (population SD, mean cubed z)."""
    present = np.isfinite(B)
    k = present.sum(axis=0)
    B[~present] = 0.0
    mean = B.sum(axis=0) / np.maximum(k, 1)
    B -= mean
    B[~present] = 0.0  # a missing value deviates by nothing
    return _skew(np.einsum("ij,ij->j", B, B)[k >= 3], np.einsum("ij,ij,ij->j", B, B, B)[k >= 3], k[k >= 3])


def _dense_logged(X, rows: np.ndarray, width: int) -> bool:
    """Whether non-negative values X[rows] (m, d) look log-transformed already (log-normalised single cells):
    some zeros, some values not whole numbers, and the features' non-zero values not skewed (``_unskewed``).
    A block of `width` columns at a time."""
    m = len(rows)
    least = max(3, min(NONZERO_MIN, m))
    skews, any_zero, whole = [], False, True
    for j in range(0, X.shape[1], width):
        B = np.asarray(X[rows, j:j + width], dtype=np.float64)  # (m, w) a copy of the rows' columns
        present = np.isfinite(B)
        gaps = not present.all()  # (rows with missing values: ``_dense_counts_skew``'s gapped case)
        if gaps:
            B[~present] = 0.0
        if whole:  # once a value is not whole, the table is not
            whole = bool(np.all(np.rint(B) == B))
        zeros = np.count_nonzero(B == 0, axis=0) - (~present).sum(axis=0)  # (w,) (a missing value is no zero)
        any_zero |= bool(zeros.any())
        k = present.sum(axis=0) - zeros  # non-zero values per column
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = B.sum(axis=0) / k  # the zeros add nothing to the sum: the mean of the non-zero values
        if gaps:  # a missing value deviates from the mean by nothing
            B = np.where(present, B, mean)
        B -= mean
        # each zero's deviation from that mean is -mean: its square and cube come off the sums
        s2 = np.einsum("ij,ij->j", B, B) - zeros * mean ** 2
        s3 = np.einsum("ij,ij,ij->j", B, B, B) + zeros * mean ** 3
        enough = k >= least
        skews.append(_skew(s2[enough], s3[enough], k[enough]))
        del B
    return any_zero and not whole and _unskewed(np.concatenate(skews))


def _skew(s2: np.ndarray, s3: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Skewness (w',) of the features whose SD is not 0 for float64, from the sums of squared and cubed
    deviations s2, s3 (w,) of k (w,) values each."""
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        sd = np.sqrt(np.maximum(s2, 0.0) / k)
        ok = sd >= TINY_SPREAD
        return s3[ok] / k[ok] / sd[ok] / sd[ok] / sd[ok]


def _unskewed(nonzero_skews: np.ndarray) -> bool:
    """Whether the features' non-zero values (their skewness, one per feature with NONZERO_MIN of them) are
    not right-skewed: median skewness at most COUNTS_SKEW (False without any such feature)."""
    return bool(nonzero_skews.size) and float(np.median(nonzero_skews)) <= COUNTS_SKEW


def _sparse_counts_skew(X) -> float | None:
    """``looks_like_counts`` of a CSR matrix (_LOGGED for values declined as log-normalised already): the same moments (mean, SD, third central moment per column)
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
    spans = list(value_spans(data.size))
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
    if median <= COUNTS_SKEW:
        return None
    if not np.any(zeros) or _whole(data, spans):
        return median
    # the non-zero values' moments about their own mean, from those of the stored values about the column's:
    # stored zeros (each -mean from it) come off, then the shift by delta to the non-zero values' mean,
    # sum (x - mean - delta)^2 = s2 - k delta^2, sum (x - mean - delta)^3 = s3 - 3 delta s2 + 2 k delta^3
    stored_zeros = np.zeros(d, dtype=np.int64)
    for a, b in spans:
        stored_zeros += np.bincount(cols[a:b][data[a:b] == 0], minlength=d)
    k = stored - stored_zeros
    s2 -= stored_zeros * mean ** 2
    s3 += stored_zeros * mean ** 3
    enough = k >= max(3, min(NONZERO_MIN, n))
    k, s2, s3 = k[enough], s2[enough], s3[enough]
    delta = sums[enough] / k - mean[enough]
    s3 -= 3 * delta * s2 - 2 * k * delta ** 3
    s2 -= k * delta ** 2
    return _LOGGED if _unskewed(_skew(s2, s3, k)) else median


def _whole(data: np.ndarray, spans) -> bool:
    """Whether every stored value is a whole number (stopping at the first chunk with one that is not)."""
    return all(bool(np.all(np.rint(data[a:b]) == data[a:b])) for a, b in spans)
