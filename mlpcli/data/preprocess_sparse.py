"""The preprocessing of a sparse (CSR) feature matrix: fitted on its stored values, a chunk of them at a
time, never densified as a whole (see ``Preprocessor``: centre 0, scaled by the SD or the IQR with the
implicit zeros, the offset subtracted per minibatch)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DataError
from ..text import count_of, quoted
from ..centred_rows import CentredRows
from .limits import VALUE_LIMIT, first_beyond_limit, value_limit_message
from . import blocks
from .blocks import rows_per_block
from .column_stats import sparse_quantiles, varies
from .scaling import UNCLIPPED_LIMIT, robust_scale, scale_in_place
from .preprocess_messages import constant_message, empty_message, missing_message, negative_message


# Stored values of a sparse matrix handled at a time: 8 MiB per float64 temporary.
SPARSE_CHUNK = 1 << 20


def value_spans(nnz: int) -> list[tuple[int, int]]:
    """(a, b) ranges of SPARSE_CHUNK stored values covering 0..nnz."""
    nnz = int(nnz)
    return [(a, min(nnz, a + SPARSE_CHUNK)) for a in range(0, nnz, SPARSE_CHUNK)]


def _row_of(indptr: np.ndarray, k: int) -> int:
    """The row of a CSR matrix's k-th stored value."""
    return int(np.searchsorted(indptr, k, side="right") - 1)


def _stored_values(raw: np.ndarray, log1p: bool, fill: np.ndarray | None = None,
                   cols: np.ndarray | None = None) -> np.ndarray:
    """Stored values (m,) as the fit sees them: a float64 copy, log1p'd, missing ones imputed from `fill`
    (per input column, with the values' columns `cols`)."""
    v = raw.astype(np.float64)
    if log1p:
        np.log1p(v, out=v)
    if fill is not None:
        nan = np.isnan(v)
        if nan.any():
            v[nan] = fill[cols[nan]]
    return v


def _first_negative_min(X, negative: np.ndarray) -> float:
    """The smallest stored value of the first column flagged in `negative` (d,) (one that holds negatives)."""
    first = int(np.flatnonzero(negative)[0])
    lowest = np.inf
    for a, b in value_spans(X.indptr[-1]):
        raw = X.data[a:b]
        here = (X.indices[a:b] == first) & (raw < 0)
        if here.any():
            lowest = min(lowest, float(raw[here].min()))
    return lowest


class _SparseResult:
    """The transformed CSR matrix (n, d_kept) of `dtype`, filled a chunk of X's stored values at a time:
    `put(a, b, k, Z)` writes the kept ones among X's stored values a..b (their kept columns k, values Z)."""

    def __init__(self, X, position: np.ndarray, n_kept_stored: int, d_kept: int, dtype):
        self.X, self.position, self.d_kept = X, position, d_kept
        self.every = bool(np.all(position >= 0))
        self.data = np.empty(n_kept_stored, dtype=dtype)
        self.indices = np.empty(n_kept_stored, dtype=X.indices.dtype)
        self.indptr = X.indptr.copy() if self.every else np.zeros_like(X.indptr)
        self.filled = 0

    def put(self, a: int, b: int, k: np.ndarray, Z: np.ndarray) -> None:
        m = len(k)
        self.data[self.filled:self.filled + m] = Z
        self.indices[self.filled:self.filled + m] = k
        if not self.every:  # indptr[i]: kept stored values before row i's first stored value
            indptr = self.X.indptr
            kept = np.cumsum(self.position[self.X.indices[a:b]] >= 0) + self.filled
            lo, hi = np.searchsorted(indptr, [a, b], side="right")
            self.indptr[lo:hi] = kept[indptr[lo:hi] - a - 1]
        self.filled += m

    def matrix(self):
        import scipy.sparse as sp

        out = sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.X.shape[0], self.d_kept))
        out.has_sorted_indices = self.X.has_sorted_indices  # kept columns keep their order
        return out


def _sparse_column_quantiles(X, columns: np.ndarray, qs: Sequence[float], log1p: bool, fill: np.ndarray | None,
                             skip_nan: bool = False) -> np.ndarray:
    """``sparse_quantiles`` (k, len(columns)) of X's `columns` (input column indices) with the values as the
    fit sees them (``_stored_values``), a block of columns of about 2 blocks.BLOCK_VALUES stored values at a time
    in column order (CSC), so the column-ordered copy stays a block's (~50 MB)."""
    import scipy.sparse as sp

    n = X.shape[0]
    columns = np.asarray(columns, dtype=np.int64)
    per_column = np.zeros(X.shape[1], dtype=np.int64)
    for a, b in value_spans(X.indptr[-1]):
        per_column += np.bincount(X.indices[a:b], minlength=X.shape[1])
    out = np.empty((len(qs), len(columns)))
    start = 0
    while start < len(columns):
        sizes = np.cumsum(per_column[columns[start:]])
        stop = start + max(1, int(np.searchsorted(sizes, 2 * blocks.BLOCK_VALUES, side="right")))
        block = columns[start:stop]
        sub = X[:, block]  # CSR of the block's columns (sorted `columns`: their order kept)
        v = _stored_values(sub.data, log1p, None if fill is None else fill[block], sub.indices)
        C = sp.csr_matrix((v, sub.indices, sub.indptr), shape=(n, len(block))).tocsc()
        del sub, v
        out[:, start:stop] = sparse_quantiles(C, n, np.arange(len(block)), qs, skip_nan=skip_nan)
        start = stop
    return out


def canonical_csr(X):
    """X as CSR with one stored value per position: entries repeated at a position (a matrix built by hand
    from data/indices/indptr) are summed, as a dense copy sums them, in a copy (the caller's matrix is left
    as it is). The sparse code works on the stored values, and log1p of two halves is not log1p of the sum."""
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


class SparsePreprocessing:
    """``Preprocessor``'s methods for a CSR matrix (its base class): the fit on the stored values, the transform
    to a sparse matrix (the offset left to the fit loop) or to dense rows, and their checks. They read and set
    the fitted state ``Preprocessor`` declares (``kept_index_``, ``scale_``, ``offset_``, ...)."""

    def _fit_sparse(self, X, names: list[str], dtype=None):
        """Fit on a CSR matrix X (n, d) from its stored values, implicit zeros counted where they matter
        (means, SDs, ranges, quantiles); the centre is 0, the offset the scaled values' mean (see the class
        docstring). With a `dtype`, also returns the transformed training rows (``transform(X, dtype,
        sparse=True)``), made in the same pass as their statistics. Memory: the result and chunk temporaries; quantiles (robust scaling, median imputation)
        read a block of columns at a time."""
        cfg = self.config
        n, d = X.shape
        data, cols = X.data, X.indices
        spans = list(value_spans(X.indptr[-1]))
        infinite = np.zeros(d, dtype=bool)
        for a, b in spans:
            inf = np.isinf(data[a:b])
            if inf.any():
                infinite[cols[a:b][inf]] = True
        if infinite.any():
            raise DataError(f"feature columns hold infinite values: {quoted(np.asarray(names)[infinite])}; replace them")
        for a, b in spans:
            at = first_beyond_limit(data[a:b].reshape(1, -1))
            if at is not None:
                k = a + at[1]
                raise DataError(value_limit_message("feature column", names[int(cols[k])], data[k],
                                                    f"training row {_row_of(X.indptr, k) + 1}"))
        # pass 1: negative values under log1p, missing values (and the sums for mean imputation)
        negative = np.zeros(d, dtype=bool)
        nan_counts = np.zeros(d, dtype=np.int64)
        nonzero_counts = np.zeros(d, dtype=np.int64)  # stored values other than 0 (NaN included: not a 0)
        present_sums = np.zeros(d) if cfg.impute in ("mean", "min") else None
        present_range = (np.full(d, np.inf), np.full(d, -np.inf))  # of the stored values (mean, min imputation)
        for a, b in spans:
            raw, c = data[a:b], cols[a:b]
            nonzero_counts += np.bincount(c[raw != 0], minlength=d)
            if cfg.log1p:
                neg = raw < 0  # NaN compares False
                if neg.any():
                    negative[c[neg]] = True
            nan = np.isnan(raw)
            if nan.any():
                nan_counts += np.bincount(c[nan], minlength=d)
            if present_sums is not None and not negative.any():
                v = _stored_values(raw, cfg.log1p)
                np.add.at(present_sums, c[~nan], v[~nan])
                np.fmin.at(present_range[0], c, v)  # fmin, fmax: NaN ignored
                np.fmax.at(present_range[1], c, v)
        if negative.any():
            raise DataError(negative_message(names, negative, _first_negative_min(X, negative)))
        if cfg.impute is None and nan_counts.any():
            raise DataError(missing_message(names, nan_counts, " (counted in the training rows)"))
        impute_values = np.full(d, np.nan)
        if cfg.impute is not None:
            if cfg.impute == "zero":
                impute_values = np.zeros(d)
            elif cfg.impute == "min":  # the smallest value measured, implicit zeros included
                implicit = np.bincount(cols[:X.indptr[-1]], minlength=d) < n
                impute_values = np.where(implicit, np.minimum(present_range[0], 0.0), present_range[0])
            elif cfg.impute == "mean":
                with np.errstate(invalid="ignore", divide="ignore"):
                    impute_values = present_sums / (n - nan_counts)
                # within the present values' range, implicit zeros included (as for dense data: an ulp
                # beside equal values, the mean would make a constant column vary)
                implicit = np.bincount(cols[:X.indptr[-1]], minlength=d) < n  # columns with implicit zeros
                low = np.where(implicit, np.minimum(present_range[0], 0.0), present_range[0])
                high = np.where(implicit, np.maximum(present_range[1], 0.0), present_range[1])
                impute_values = np.clip(impute_values, low, high)
            else:
                impute_values = _sparse_column_quantiles(X, np.arange(d), [50.0], cfg.log1p, None, skip_nan=True)[0]
            empty = nan_counts == n
            impute_values[empty] = 0.0
            if empty.any():
                self.without_values = [str(v) for v in np.asarray(names)[empty]]
                self.warnings.append(empty_message(self.without_values))
        fill = impute_values if nan_counts.any() else None  # by input column

        # pass 2: stored values per column, sums, ranges (implicit zeros included); pass 3: variances
        stored = np.zeros(d, dtype=np.int64)
        sums, top, bottom = np.zeros(d), np.full(d, -np.inf), np.full(d, np.inf)
        for a, b in spans:
            c, v = cols[a:b], _stored_values(data[a:b], cfg.log1p, fill, cols[a:b])
            stored += np.bincount(c, minlength=d)
            np.add.at(sums, c, v)
            np.maximum.at(top, c, v)
            np.minimum.at(bottom, c, v)
        has_zeros = stored < n
        top = np.where(has_zeros, np.maximum(top, 0.0), top)
        bottom = np.where(has_zeros, np.minimum(bottom, 0.0), bottom)
        variable = varies(bottom, top)
        mean = sums / n
        squares = np.zeros(d)
        for a, b in spans:
            c, v = cols[a:b], _stored_values(data[a:b], cfg.log1p, fill, cols[a:b])
            v -= mean[c]
            np.multiply(v, v, out=v)
            np.add.at(squares, c, v)
        variances = (squares + (n - stored) * mean ** 2) / n

        self.dropped_constant = [names[j] for j in np.flatnonzero(~variable)]
        if self.constant_only:  # (the features without a value are said apart, above)
            self.warnings.append(constant_message(self.constant_only))
        if not variable.any():
            raise DataError("the feature is constant on the training rows; nothing to learn from" if len(names) == 1 else
                            f"all {count_of(len(names), 'feature')} are constant on the training rows; nothing to "
                            "learn from")
        kept = self._select_top_var(variances if cfg.top_var is not None else None, np.flatnonzero(variable))

        d_kept = len(kept)
        center, scale = np.zeros(d_kept), np.ones(d_kept)
        if cfg.standardize:
            half_range = (top[kept] - bottom[kept]) / 2  # >= TINY_SPREAD / 2: constant columns are gone
            if cfg.scaling == "robust":
                q25, q75 = _sparse_column_quantiles(X, kept, [25.0, 75.0], cfg.log1p, fill)
                scale = robust_scale(np.where(varies(q25, q75), q75 - q25, half_range), np.sqrt(variances[kept]))
            else:
                sd = np.sqrt(variances[kept])
                scale = np.where(sd > 0, sd, half_range)  # an SD below 1e-154 squares to 0
        self.center_, self.scale_, self.offset_ = center, scale, np.zeros(d_kept)  # the offset comes below
        # before the clip (robust scaling), for the shift check: the centre is 0; each value within ±UNCLIPPED_LIMIT
        self.train_sd_unclipped_ = self._sparse_unclipped_sd(X, kept, scale, fill, spans) if self.clips else None
        self.kept_index_ = kept.astype(np.int64)
        self.impute_values_ = impute_values[kept]
        self.kept_features = [names[j] for j in kept]
        self.train_zero_share_, self.train_rows_ = (n - nonzero_counts[kept]) / n, n

        # statistics of the transformed training values (the shift check's reference), and the result
        position = np.full(d, -1, dtype=np.int64)
        position[kept] = np.arange(d_kept)
        # standardised: centred by the offset as densified, from float64 values (``training.CentredRows``)
        out = None if dtype is None else _SparseResult(X, position, int(stored[kept].sum()), d_kept,
                                                        np.float64 if cfg.standardize else dtype)
        z_sums = np.zeros(d_kept)
        for a, b, k, Z in self._scaled_chunks(X, position, spans):
            np.add.at(z_sums, k, Z)
            if out is not None:
                self._check_sparse_limit(Z, k, X, a, b, position)
                out.put(a, b, k, Z)
        train_mean = z_sums / n
        z_squares = np.zeros(d_kept)
        for _, _, k, Z in self._scaled_chunks(X, position, spans):
            Z -= train_mean[k]
            np.multiply(Z, Z, out=Z)
            np.add.at(z_squares, k, Z)
        zeros = n - stored[kept]
        self.train_sd_ = np.sqrt((z_squares + zeros * train_mean ** 2) / n)
        if cfg.standardize:  # centred by the offset (see the class docstring): mean 0 on the training rows
            self.offset_, self.train_mean_ = train_mean, np.zeros(d_kept)
        else:
            self.train_mean_ = train_mean
        if out is None:
            return None
        if self._offsets:
            return CentredRows(out.matrix(), self.offset_, np.dtype(dtype))
        return out.matrix().astype(dtype, copy=False)  # an offset of 0: no column varies

    def _sparse_unclipped_sd(self, X, kept: np.ndarray, scale: np.ndarray, fill, spans) -> np.ndarray:
        """(d_kept,) the SDs of a CSR X's kept columns divided by ``scale`` (the centre is 0), implicit zeros
        counted, each value held within ±UNCLIPPED_LIMIT (``unclipped``)."""
        d_kept, n = len(kept), X.shape[0]
        position = np.full(X.shape[1], -1, dtype=np.int64)
        position[kept] = np.arange(d_kept)
        sums, squares = np.zeros(d_kept), np.zeros(d_kept)
        for a, b in spans:
            k = position[X.indices[a:b]]
            mine = k >= 0
            v = _stored_values(X.data[a:b], self.config.log1p, fill, X.indices[a:b])[mine]
            u = np.clip(v / scale[k[mine]], -UNCLIPPED_LIMIT, UNCLIPPED_LIMIT)
            # value by value in storage order (np.add.at), so the sums do not depend on the chunks' size
            np.add.at(sums, k[mine], u)
            np.add.at(squares, k[mine], u * u)
        mean = sums / n
        return np.sqrt(np.maximum(squares / n - mean ** 2, 0.0))

    def _scaled_chunks(self, X, position: np.ndarray, spans):
        """(a, b, k, Z) per chunk a..b of X's stored values: the kept ones' kept-column indices k (m,) and their
        transformed values Z (m,) float64 (log1p, imputation, scaling without centring, the robust clip), as
        the fitted parameters give them."""
        data, cols = X.data, X.indices
        every = bool(np.all(position >= 0))
        for a, b in spans:
            k = position[cols[a:b]]
            raw = data[a:b]
            if not every:
                used = k >= 0
                k, raw = k[used], raw[used]
            Z = raw.astype(np.float64)
            if self.config.log1p:
                np.log1p(Z, out=Z)
            nan = np.isnan(Z)
            if nan.any():
                Z[nan] = self.impute_values_[k[nan]]
            scale_in_place(Z, 0.0, self.scale_[k], self.clips)
            yield a, b, k, Z

    def _check_sparse_limit(self, Z: np.ndarray, k: np.ndarray, X, a: int, b: int, position: np.ndarray) -> None:
        """Unclipped network inputs beyond ±VALUE_LIMIT (``_check_inputs``) among a chunk's transformed stored
        values Z (kept columns k), the chunk starting at X's stored value a: the error names the row."""
        if self.clips or not Z.size or (Z.max() <= VALUE_LIMIT and Z.min() >= -VALUE_LIMIT):
            return
        j = int(np.flatnonzero(np.abs(Z) > VALUE_LIMIT)[0])
        stored = a + int(np.flatnonzero(position[X.indices[a:b]] >= 0)[j])  # the chunk's j-th kept value
        i = _row_of(X.indptr, stored)
        row = np.zeros((1, len(self.kept_features)))
        row[0, k[j]] = Z[j]
        self._check_inputs(row, row_of=(i, X.shape[0]))

    def _kept_position(self) -> np.ndarray:
        """(d_in,) each input column's kept-column index, -1 where dropped."""
        position = np.full(self.n_features_in, -1, dtype=np.int64)
        position[self.kept_index_] = np.arange(len(self.kept_index_))
        return position

    def _transform_sparse(self, X, dtype):
        """CSR (n, d_in) -> CSR (n, d_kept) of `dtype`, transforming the stored values only (the fitted
        transformation maps 0 to 0), a chunk at a time into the result. Negative values under log1p and
        missing values without --impute are DataErrors counted over every row, as for dense input."""
        X = canonical_csr(X)
        position = self._kept_position()
        self._check_sparse(X, position)
        kept_stored = X.indptr[-1] if np.all(position >= 0) else int(np.count_nonzero(position[X.indices] >= 0))
        out = _SparseResult(X, position, kept_stored, len(self.kept_features), dtype)
        for a, b, k, Z in self._scaled_chunks(X, position, value_spans(X.indptr[-1])):
            self._check_sparse_limit(Z, k, X, a, b, position)
            out.put(a, b, k, Z)
        return out.matrix()

    def _transform_sparse_dense(self, X, dtype, order: str) -> np.ndarray:
        """A sparse X transformed into a dense (n, d_kept) result, block by block through the dense code (the
        same arithmetic as dense rows of the same values); the blocks' errors counted over every row. Each
        block's kept columns are taken from its rows only (no copy of the whole matrix)."""
        X = X.tocsr()
        self._check_sparse(X, self._kept_position())
        n, width = X.shape[0], len(self.kept_features)
        step = rows_per_block(width)
        out = np.empty((n, width), dtype=dtype, order=order)
        for i in range(0, n, step):
            block = X[i:i + step][:, self.kept_index_].toarray().astype(np.float64, copy=False)
            out[i:i + step] = self._transform_in_place(block, dtype)
        return out

    def _check_sparse(self, X, position: np.ndarray) -> None:
        """Negative values under log1p, missing values without --impute: DataErrors over every stored value
        of the kept columns (`position`: each input column's kept index, -1 where dropped)."""
        d_kept = len(self.kept_features)
        negative = np.zeros(d_kept, dtype=bool)
        nan_counts = np.zeros(d_kept, dtype=np.int64)
        for a, b in value_spans(X.indptr[-1]):
            k, raw = position[X.indices[a:b]], X.data[a:b]
            if self.config.log1p:
                neg = (raw < 0) & (k >= 0)
                if neg.any():
                    negative[k[neg]] = True
            if self.config.impute is None:
                nan = np.isnan(raw) & (k >= 0)
                if nan.any():
                    nan_counts += np.bincount(k[nan], minlength=d_kept)
        if negative.any():
            first = int(self.kept_index_[np.flatnonzero(negative)[0]])
            by_input = np.zeros(self.n_features_in, dtype=bool)
            by_input[first] = True
            raise DataError(negative_message(self.kept_features, negative, _first_negative_min(X, by_input)))
        if nan_counts.any():
            raise DataError(missing_message(self.kept_features, nan_counts, fitted=True))
