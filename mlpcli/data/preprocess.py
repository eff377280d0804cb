"""Preprocessing fitted on training rows only: log1p, imputation, constant-feature removal,
top-variance selection, standardisation; stored in the model without pickle. Sparse input: ``preprocess_sparse``;
the statistics it fits: ``column_stats``; the scaling's kernels: ``scaling``; its messages: ``preprocess_messages``."""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError, DataError, ModelFileError
from .sources import short_reason
from .conventions import IMPUTE_METHODS
from ..text import count_of, quoted
from ..centred_rows import CentredRows
from ..centred_rows import is_sparse
from .row_view import feature_block
from .limits import VALUE_LIMIT, first_beyond_limit, value_limit_message
from .blocks import TILE_ROWS, as_matrix, column_blocks, kept_parts, rows_per_block
from .column_stats import column_percentiles, column_sd, nan_median, quartile_rows, random_rows, tied_columns, varies
from .scaling import CLIP_AT, UNCLIPPED_LIMIT, robust_scale, scale_in_place
from .preprocess_messages import check_non_negative, constant_message, empty_message, missing_message, negative_message
from .preprocess_sparse import SparsePreprocessing, canonical_csr


SCALINGS = ("standard", "robust")


# A value this many training scales from its feature's centre is no measurement of the training kind (a typo, another
# unit): ``Preprocessor.far_scales``
FAR_SCALES = 1000.0


# after log1p: a value a million times the feature's typical one, and 10 training scales beyond it, is far
FAR_FACTOR = 1e6


FAR_LOG_SCALES = 10.0


# A new value is far only when also this many times as far from the centre as the training values reached (after
# log1p: this many times the farthest training value); in a table a model trains on, only a value this many times as
# far as the next one inward (``data.far_values``)
FAR_RANGE = 100.0


@dataclass
class PreprocessConfig:
    log1p: bool = False  # log(1 + x) first; counts/TPM are heavy-tailed
    top_var: int | None = None  # keep the N most variable features (on training rows)
    standardize: bool = True  # centre and scale with training statistics
    impute: str | None = None  # None (missing values are an error) | "median" | "mean" | "zero" | "min"
    scaling: str = "standard"  # standard: mean and SD | robust: median and IQR, then smooth clipping

    def validate(self) -> None:
        if self.impute is not None and self.impute not in IMPUTE_METHODS:
            raise ConfigError(f"--impute {self.impute!r} is not one of {', '.join(IMPUTE_METHODS)}")
        if self.scaling not in SCALINGS:
            raise ConfigError(f"--scaling {self.scaling!r} is not one of {', '.join(SCALINGS)}")
        if self.top_var is not None and (isinstance(self.top_var, bool) or not isinstance(self.top_var, (int, np.integer))
                                         or self.top_var < 1):
            raise ConfigError(f"--top-var must be a positive whole number, got {self.top_var!r}")


_STATE_ARRAYS = ("kept_index", "impute_values", "center", "scale", "train_mean", "train_sd")


_STATE_VERSION = 1


class Preprocessor(SparsePreprocessing):
    """log1p -> impute -> drop constant features -> top-variance filter -> centre and scale.

    Scaling ``standard`` gives z-scores. ``robust`` (RealMLP-TD's default) centres on the median, divides
    by the interquartile range (half the range when the IQR is 0), or by NORMAL_IQR SDs where that is smaller (a
    bimodal marker gene: ``scaling.robust_scale``), and then clips smoothly,
    z -> z / sqrt(1 + (z/3)^2), so a few extreme samples cannot dominate the first layer; it then subtracts
    the clipped training values' mean (``offset_``), so that every input has mean 0 on the training rows, as
    z-scores have. The median of a skewed column (log counts of lowly expressed genes) is not its mean, and the
    clip is not symmetric about it. Off-zero inputs mislead the first gradient steps from small weights: they
    move each class's weights along the mean input in proportion to how far the class's share is from 1/K, and
    with tens of thousands of genes that direction outweighs the class differences; early stopping keeps a
    network near those first steps. On a 300 x 60,000 table of counts (4 classes of 23-30 %) a softmax
    regression's out-of-fold balanced accuracy rose from 0.68 to 0.81 with the offset, and scikit-learn's
    LogisticRegression on the same inputs (whose default tolerance stops it after one step there) from 0.27
    to 0.75.

    Every parameter is fitted on the training rows only; `transform` applies them to any rows and never
    refits. Fitted arrays are per kept feature, shape (d_kept,).

    Sparse input (a scipy.sparse matrix, an .h5ad file's counts) is fitted on its stored values and never
    densified as a whole. Its centre is 0, the scale the SD (standard) or the IQR of the whole column,
    implicit zeros included (robust; half the range where the IQR is 0, as for dense data), the smooth clip
    as for dense data: every step so far is elementwise and maps 0 to 0, so the scaled training matrix stays
    sparse. It is centred by the offset alone (the scaled training values' mean, with both scalings), which
    `transform(..., sparse=True)` leaves to the fit loop: it returns the sparse matrix and the offset as
    ``training.CentredRows``, and the loop subtracts the offset from each minibatch as it densifies it.
    Subtracting it from the whole matrix would store every implicit zero, 10 to 30 times the sparse size for
    single-cell counts. Dense results (prediction, the shift check) subtract it as for dense input, so dense
    and sparse rows of the same values give the same inputs. Uncentred (as sparse fits were until
    2026-12), a softmax regression on 3,000 synthetic cells x 20,000 genes (6 types of 5-35 %) started at a training
    loss of ~30 (the no-skill loss: 1.6): the first-layer biases do not absorb a missing offset in the steps
    early stopping allows, as they do at a convex optimum. Out-of-fold balanced accuracy 0.29, centred 0.33
    (0.47 with the learning rate scaled to the width as well: ``auto_defaults.auto_lr``).
    """

    def __init__(self, config: PreprocessConfig | None = None):
        self.config = config if config is not None else PreprocessConfig()
        self.config.validate()
        self.feature_names_in: list[str] = []
        self.kept_features: list[str] = []
        self.dropped_constant: list[str] = []
        self.without_values: list[str] = []  # features missing in every training row (--impute; dropped as constant)
        self.warnings: list[str] = []
        self.kept_index_: np.ndarray | None = None  # (d_kept,) int64 columns of the input that are kept
        self.impute_values_: np.ndarray | None = None  # (d_kept,) NaN when impute is off
        self.center_: np.ndarray | None = None  # (d_kept,) subtracted (0 when standardize is off)
        self.scale_: np.ndarray | None = None  # (d_kept,) divided by (1 when standardize is off)
        self.offset_: np.ndarray | None = None  # (d_kept,) subtracted after the robust clip (0 otherwise)
        self.train_mean_: np.ndarray | None = None  # (d_kept,) of the transformed training rows
        self.train_sd_: np.ndarray | None = None  # (d_kept,)
        # (d_kept,) share of the training rows whose raw value is exactly 0 (missing values are not 0), over
        # `train_rows_` rows: what the shift check needs to tell a gene the new cohort never measured (0 in
        # every sample) from one often 0 anyway. None in models written before it was kept.
        self.train_zero_share_: np.ndarray | None = None
        self.train_rows_: int | None = None
        # (d_kept,) with robust scaling: the SD of the scaled training values before the smooth clip, which
        # squeezes a wider spread (a feature's SD doubled read as x1.7 after it): the shift check's spread test
        # (``predict.shift``). None without the clip, and in models written before format 11.
        self.train_sd_unclipped_: np.ndarray | None = None
        # (d_kept,) the kurtosis of the values before the clip (``unclipped_kurtosis``; None: no clip, sparse input, or a
        # model before format 17): how far the shift check's SD ratio moves by chance
        self.train_kurtosis_: np.ndarray | None = None
        # ((d_kept,), (d_kept,)) how far the training values reach below and above each kept feature's centre, in
        # training scales before the clip (None: no clip, sparse input, or a model before format 17): a new value is far
        # only well beyond them (``far_scales``)
        self.train_reach_: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n_features_in(self) -> int:
        return len(self.feature_names_in)

    def fit(self, X, feature_names: Sequence[str]) -> "Preprocessor":
        """Fit on training rows X (n, d): an ndarray or a RowView (``Dataset.subset``). Does not modify X."""
        self._fit(X, feature_names, None)
        return self

    def _fit(self, X, feature_names: Sequence[str], dtype, order: str = "F") -> np.ndarray | None:
        """Fit; with a `dtype`, also return the transformed training rows (n, d_kept) in it (and `order`).

        Memory: X is read in blocks of columns (blocks.BLOCK_VALUES values), each copied, log1p'd and imputed in
        place: pass 1 finds what needs every column (infinities, negative values, missing values, the
        imputation values, constant columns, the variances for --top-var), pass 2 the scaling of the kept
        columns and, for ``fit_transform``, their transformed values. Every statistic is per column and
        computed on the same values, in the same layout, as on the whole matrix, so blocks change nothing.
        """
        cfg = self.config
        names = [str(n) for n in feature_names]
        X = as_matrix(X)
        if X.ndim != 2 or X.shape[1] != len(names):
            raise DataError(f"preprocessing expects a 2-D array with {len(names)} feature columns, got shape {X.shape}")
        if X.shape[0] == 0:
            raise DataError("no training rows to fit the preprocessing on")
        n, d = X.shape
        self.feature_names_in = names
        self.warnings, self.without_values = [], []
        if is_sparse(X):
            return self._fit_sparse(canonical_csr(X), names, dtype)

        # pass 1: per column, over every row. Without --top-var a block's kept columns are known as soon as
        # the block is read (the non-constant ones), so the scaling and the transformed values are made from
        # the same copy (one pass: one float64 copy and one log1p per value, not two)
        one_pass = cfg.top_var is None
        infinite = np.zeros(d, dtype=bool)
        negative = np.zeros(d, dtype=bool)
        first_negative_min = np.nan
        nan_counts = np.zeros(d, dtype=np.int64)
        zero_counts = np.zeros(d, dtype=np.int64)
        impute_values = np.full(d, np.nan)
        variable = np.zeros(d, dtype=bool)
        variances = np.zeros(d) if cfg.top_var is not None else None
        fitted = _Scaling(d) if one_pass else None  # per input column, filled for the kept ones
        out = _Output(n, d, dtype, order) if one_pass and dtype is not None else None
        scaling = _Beside()
        for cols, B in column_blocks(X):  # B (n, w) float64, ours
            # the extremes first: min and max carry a missing value (NaN) into their column's, and without one they
            # show infinities, values beyond the limit and negative values, so a block without a missing value (the
            # usual case) needs no pass of its own for those (three fewer passes of this core, which the blocks'
            # scaling beside it had waited for)
            low, high = B.min(axis=0), B.max(axis=0)
            complete = not np.isnan(low).any()
            infinite[cols] = (np.isinf(low) | np.isinf(high)) if complete else np.isinf(B).any(axis=0)
            if infinite.any():
                continue  # an error: only the columns with infinities are needed now
            if not complete or (high > VALUE_LIMIT).any() or (low < -VALUE_LIMIT).any():
                at = first_beyond_limit(B)
                if at is not None:
                    raise DataError(value_limit_message("feature column", names[cols.start + at[1]], B[at],
                                                        f"training row {at[0] + 1}"))
            if cfg.log1p:
                neg = (low < 0) if complete else (B < 0).any(axis=0)  # NaN compares False: missing values pass
                if neg.any() and not negative.any():
                    first_negative_min = float(np.nanmin(B[:, np.flatnonzero(neg)[0]]))
                negative[cols] = neg
                if negative.any():
                    continue
                np.log1p(B, out=B)
            nan_mask = None if complete and cfg.impute is None else np.isnan(B)
            nan_counts[cols] = 0 if nan_mask is None else nan_mask.sum(axis=0)
            # log1p keeps 0 at 0 (and a value above 0 above it); before imputation. A complete block whose minima are
            # all above 0 (intensities, microarrays, TPM without zeros) holds none: no pass (0.04 s at 6,400 x 5,000)
            no_zero = complete and bool((low > 0).all())
            zero_counts[cols] = 0 if no_zero else np.count_nonzero(B == 0, axis=0)
            if cfg.impute is None:
                if nan_counts.any():
                    continue
            else:
                impute_values[cols] = _fill_missing(B, nan_mask, nan_counts[cols], cfg.impute)
            del nan_mask
            if cfg.log1p or not complete:  # (else B is as its extremes were taken)
                low, high = B.min(axis=0), B.max(axis=0)
            variable[cols] = varies(low, high)
            local = np.flatnonzero(variable[cols])
            if variances is not None:
                variances[cols.start + local] = B[:, local].var(axis=0)
            if fitted is not None and local.size:
                every = local.size == B.shape[1]
                Xk, scratch = _columns_to_scale(B, None if every else local)
                del B
                # a slice where every column is kept: with an index array each copy into the training matrix was a
                # fancy assignment (0.19 s of a 6,400 x 5,000 fit, against 0.12 s)
                where = cols if every else cols.start + local
                # the transformed values are copied into the output here, once scaled beside: the scaling alone
                # took a core longer than the rest of the pass took this one (0.64 against 0.44 s at 6,400 x 5,000)
                scaling.add(self._scale_columns, Xk, scratch, where, fitted, None,
                            low if every else low[local], high if every else high[local],
                            then=None if out is None else functools.partial(out.put, where, Xk))
                del Xk, scratch
        scaling.finish()
        if infinite.any():
            raise DataError(f"feature columns hold infinite values: {quoted(np.asarray(names)[infinite])}; replace them")
        if negative.any():
            raise DataError(negative_message(names, negative, first_negative_min))
        if cfg.impute is None and nan_counts.any():
            raise DataError(missing_message(names, nan_counts, " (counted in the training rows)"))
        empty = nan_counts == n
        if cfg.impute is not None and empty.any():
            impute_values[empty] = 0.0  # no training value at all: the column is constant, and dropped
            self.without_values = [str(v) for v in np.asarray(names)[empty]]
            self.warnings.append(empty_message(self.without_values))

        self.dropped_constant = [names[j] for j in np.flatnonzero(~variable)]
        if self.constant_only:  # (the features without a value are said apart, above)
            self.warnings.append(constant_message(self.constant_only))
        if not variable.any():
            raise DataError("the feature is constant on the training rows; nothing to learn from" if len(names) == 1 else
                            f"all {count_of(len(names), 'feature')} are constant on the training rows; nothing to "
                            "learn from")
        kept = self._select_top_var(variances, np.flatnonzero(variable))

        if fitted is None:
            # pass 2 (--top-var): the kept columns' scaling, and their transformed values
            fitted = _Scaling(len(kept))
            out = None if dtype is None else _Output(n, len(kept), dtype, order)
            for part in kept_parts(kept, n):  # slices of `kept`
                Xk = feature_block(X, slice(None), kept[part])  # (n, w) column-major, as X[:, kept]
                if cfg.log1p:
                    np.log1p(Xk, out=Xk)
                _fill(Xk, impute_values[kept[part]])
                Xk, scratch = _columns_to_scale(Xk, None)  # column-major already: the same array
                scaling.add(self._scale_columns, Xk, scratch, part, fitted, out)
                del Xk, scratch
            scaling.finish()
            chosen = slice(None)
        else:
            chosen = kept
        self.center_, self.scale_, self.offset_ = fitted.center[chosen], fitted.scale[chosen], fitted.offset[chosen]
        self.train_mean_, self.train_sd_ = fitted.mean[chosen], fitted.sd[chosen]
        self.train_sd_unclipped_ = fitted.sd_unclipped[chosen] if self.clips else None
        self.train_kurtosis_ = fitted.kurtosis[chosen] if self.clips else None
        self.train_reach_ = (fitted.reach_low[chosen], fitted.reach_high[chosen]) if self.clips else None
        self.kept_index_ = kept.astype(np.int64)
        self.impute_values_ = impute_values[kept]
        self.kept_features = [names[j] for j in kept]
        self.train_zero_share_, self.train_rows_ = zero_counts[kept] / n, n
        return None if out is None else out.columns(kept if one_pass else None)

    def _scale_columns(self, Xk: np.ndarray, scratch: np.ndarray, where, fitted: "_Scaling",
                       out: "_Output | None", low: np.ndarray | None = None, high: np.ndarray | None = None) -> None:
        """The scaling of kept columns Xk (``_fit_scaling``; ``scratch`` its work space; ``low``, ``high`` their
        minima and maxima when known) into ``fitted`` at ``where``, and their transformed values into ``out``."""
        fitted.put(where, self._fit_scaling(Xk, scratch, low, high))  # Xk is transformed in place
        if out is not None:
            out.put(where, Xk)

    def _fit_scaling(self, Xk: np.ndarray, scratch: np.ndarray | None = None, low: np.ndarray | None = None,
                     high: np.ndarray | None = None
                     ) -> tuple[np.ndarray, ...]:
        """(centre, scale, offset, mean, SD, SD before the clip, kurtosis before the clip (``unclipped_kurtosis``), the
        farthest values below and above the centre in training scales (``train_reach_``)) (w,) each of kept columns Xk (n, w): float64,
        column-major, log1p'd and imputed, ours; Xk is scaled (and clipped) in place, the mean and SD are of the
        result, the last of the scaled values before the robust clip (the SD of the result without it). scratch: an array of Xk's shape and layout for the temporaries (the
        percentiles' partitioned copy, the clip's, the deviations), so that none is allocated here (None:
        allocated). low, high: Xk's column minima and maxima, when the caller has them (computed else)."""
        cfg = self.config
        w = Xk.shape[1]
        center, scale = np.zeros(w), np.ones(w)
        if cfg.standardize and cfg.scaling == "robust":
            (q25, median, q75), equal = column_percentiles(Xk, (25.0, 50.0, 75.0), scratch, neighbours_equal=True,
                                                           rows=quartile_rows(Xk.shape[0]))
            if low is None or high is None:
                high, low = Xk.max(axis=0), Xk.min(axis=0)
            half_range = (high - low) / 2  # >= TINY_SPREAD / 2: constant columns are gone
            sd = column_sd(Xk, scratch)  # (in scratch: a copy would stay in a thread's heap)
            center, scale = median, robust_scale(np.where(varies(q25, q75), q75 - q25, half_range), sd)
            tied = tied_columns(Xk, (q25, median, q75), scratch, candidates=equal)
            if tied.any():  # the quartiles fall on one value: its extent, not the spread (see TIED_SHARE)
                center = np.where(tied, Xk.mean(axis=0), center)
                scale = np.where(tied, sd, scale)  # > 0: constant columns are gone
        elif cfg.standardize:
            center, scale = Xk.mean(axis=0), column_sd(Xk, scratch)  # sd > 0: constant columns are gone
        # the spread before the clip, for the shift check: the SD of (x - centre) / scale, each value held within
        # ±UNCLIPPED_LIMIT as ``unclipped`` holds a new cohort's (beyond it the clip's inverse loses its digits)
        unclipped, kurtosis, reach = None, np.full(w, np.nan), (np.full(w, np.nan), np.full(w, np.nan))
        if self.clips:  # SD(x) / scale; the few columns reaching past the limit held within it
            unclipped = sd / scale
            far = np.flatnonzero(np.maximum(high - center, center - low) > UNCLIPPED_LIMIT * scale)
            if far.size:
                unclipped[far] = np.clip((Xk[:, far] - center[far]) / scale[far], -UNCLIPPED_LIMIT,
                                         UNCLIPPED_LIMIT).std(axis=0)
            kurtosis = unclipped_kurtosis(Xk, center, scale)
            with np.errstate(over="ignore"):
                reach = (np.maximum((center - low) / scale, 0.0), np.maximum((high - center) / scale, 0.0))
        scale_in_place(Xk, center, scale, self.clips, scratch)  # robust: a huge z/IQR overflows, then clips
        offset = np.zeros(w)
        if self.clips:  # the clipped values' mean (see the class docstring), subtracted: mean 0
            offset = Xk.mean(axis=0)
            Xk -= offset
        sd = column_sd(Xk, scratch)
        return center, scale, offset, Xk.mean(axis=0), sd, sd if unclipped is None else unclipped, kurtosis, *reach

    def _select_top_var(self, variances: np.ndarray | None, candidates: np.ndarray) -> np.ndarray:
        """Column indices to keep (sorted): the `top_var` most variable of `candidates`, or all of them."""
        n_keep = self.config.top_var
        if n_keep is None:
            return candidates
        if n_keep >= len(candidates):
            if n_keep > len(candidates):
                self.warnings.append(f"--top-var {n_keep} is more than the {len(candidates)} non-constant "
                                     "features; keeping all of them")
            return candidates
        # stable sort on -variance: ties keep the earlier column, so the choice is deterministic
        order = np.argsort(-variances[candidates], kind="stable")[:n_keep]
        return np.sort(candidates[order])

    def check_width(self, X):
        """X (n, d_in) as given, or a DataError unless it is 2-D with the ``n_features_in`` columns fit saw."""
        if X.ndim != 2 or X.shape[1] != self.n_features_in:
            raise DataError(f"expected {self.n_features_in} feature columns, got shape {X.shape}; "
                            "the table's features must match the ones the model was trained on")
        return X

    def transform(self, X, dtype=np.float64, order: str = "F", sparse: bool = False) -> np.ndarray:
        """(n, d_in) -> (n, d_kept) with the fitted parameters; X (an ndarray, a RowView or a sparse matrix)
        is not modified. Rows go through in blocks, so the float64 working copy stays small however many
        rows X holds.

        order: the result's layout; "F" is how selecting the kept columns (X[:, kept]) lays them out, "C"
        what training wants (it would copy anything else: ``training.fit``).
        sparse: a sparse X gives a sparse result (training's inputs) when the fitted transformation maps 0 to 0
        up to the offset (centre 0: fitted on sparse data, or --no-standardize): a CSR matrix, or with an
        offset ``training.CentredRows`` (the CSR matrix and the offset the fit loop subtracts as it densifies a
        minibatch); otherwise, and by default, a dense one, made block by block through the dense code, so
        dense and sparse rows of the same values give the same result."""
        if self.kept_index_ is None:
            raise RuntimeError("Preprocessor.transform called before fit")
        X = self.check_width(as_matrix(X))
        if is_sparse(X):
            if sparse and self.center_ is not None and not np.any(self.center_):
                if not self._offsets:
                    return self._transform_sparse(X, dtype)
                return CentredRows(self._transform_sparse(X, np.float64), self.offset_, np.dtype(dtype))
            return self._transform_sparse_dense(X, dtype, order)
        kept = self.kept_index_
        if isinstance(kept, slice) or X.shape[0] <= rows_per_block(len(kept)):
            # one block (a chunk of predict, or a slice selection that transforms its scratch input in place)
            Xk = X[:, kept] if isinstance(X, np.ndarray) else feature_block(X, slice(None), kept)
            out = self._transform_in_place(np.asarray(Xk, dtype=np.float64), dtype)  # fancy indexing copies
            return np.ascontiguousarray(out) if order == "C" else out
        n, step = X.shape[0], rows_per_block(len(kept))
        out = np.empty((n, len(kept)), dtype=dtype, order=order)
        blocks = _Beside()  # each block transformed on a second core while the next is copied
        try:
            for i in range(0, n, step):
                block = feature_block(X, slice(i, i + step), self.kept_index_)  # a copy: X is left alone
                blocks.add(self._transform_into, out, slice(i, i + step), block,
                           np.empty_like(block) if self.clips else None)
                del block
            blocks.finish()
        except DataError as exc:
            self._raise_for_rows(X, exc)  # the message counts every row, not one block's
        return out

    def _transform_into(self, out: np.ndarray, rows: slice, block: np.ndarray, scratch: np.ndarray | None) -> None:
        """out[rows] = the transformed rows ``block`` (float64, ours; ``scratch``: the clip's work space, of its
        shape and layout), converted to out's dtype as they are copied."""
        out[rows] = self._transform_in_place(block, np.float64, scratch=scratch)

    def transform_kept(self, Xk, dtype=np.float64, logged: bool = False, scratch: bool = False) -> np.ndarray:
        """(n, d_kept) raw values of the kept features only, in ``kept_features`` order -> (n, d_kept).

        logged: log1p has been applied already (an ensemble shares it: it has no parameters).
        scratch: Xk is a float64 array the caller gives away, transformed in place; otherwise it is copied."""
        if self.kept_index_ is None:
            raise RuntimeError("Preprocessor.transform_kept called before fit")
        Xk = np.asarray(Xk, dtype=np.float64) if scratch else np.array(Xk, dtype=np.float64)
        if Xk.ndim != 2 or Xk.shape[1] != len(self.kept_features):
            raise DataError(f"expected {len(self.kept_features)} kept feature columns, got shape {Xk.shape}")
        return self._transform_in_place(Xk, dtype, logged)

    def _transform_in_place(self, Xk: np.ndarray, dtype, logged: bool = False,
                            scratch: np.ndarray | None = None) -> np.ndarray:
        if self.config.log1p and not logged:
            check_non_negative(Xk, self.kept_features)
            np.log1p(Xk, out=Xk)
        nan_mask = np.isnan(Xk)
        if nan_mask.any():
            if self.config.impute is None:
                raise DataError(missing_message(self.kept_features, nan_mask.sum(axis=0), fitted=True))
            rows, cols = np.nonzero(nan_mask)
            Xk[rows, cols] = self.impute_values_[cols]
        scale_in_place(Xk, self.center_, self.scale_, self.clips, scratch)
        if self._offsets:
            Xk -= self.offset_
        if not self.clips:
            self._check_inputs(Xk)
        return Xk.astype(dtype, copy=False)

    def jacobian(self, Xk) -> np.ndarray:
        """dz/dx (n, d_kept) of ``transform_kept`` at raw values Xk (n, d_kept) of the kept features: every
        step acts on one feature at a time, so the Jacobian is diagonal per row and this is its diagonal,
        the chain rule of the steps below (each next to its forward in ``_transform_in_place``):

            log1p           1 / (1 + x)
            imputation      0 where x is missing (the network sees a constant)
            centre, scale   1 / scale
            robust clip     (1 + (u / CLIP_AT)^2)^(-3/2)   at u = (x' - centre) / scale

        Features the preprocessing drops have no column: their derivative is exactly 0. Used to take a
        gradient with respect to the network's inputs back to the raw features (``mlpcli.explain``)."""
        X = np.array(Xk, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.kept_features):
            raise DataError(f"expected {len(self.kept_features)} kept feature columns, got shape {X.shape}")
        missing = np.isnan(X)
        J = np.ones_like(X)
        if self.config.log1p:
            check_non_negative(X, self.kept_features)
            J /= 1.0 + X
            np.log1p(X, out=X)
        if missing.any():
            rows, cols = np.nonzero(missing)
            X[rows, cols] = self.impute_values_[cols]
            J[missing] = 0.0
        J /= self.scale_
        if self.clips:
            U = (X - self.center_) / self.scale_
            U /= CLIP_AT
            np.square(U, out=U)
            U += 1.0
            J *= U ** -1.5
        return J

    def _check_inputs(self, Z: np.ndarray, row_of: tuple[int, int] | None = None) -> None:
        """Unclipped network inputs (n, d_kept) must lie within ±VALUE_LIMIT: beyond it a float32 network
        sees infinities and predicts NaN. Only a value absurdly far outside a feature's training spread gets
        there (the raw values are within the limit), which is a data error worth naming. ``row_of``: (the row,
        0-based, of how many) the error names, for a caller checking one row of a larger matrix as ``Z``."""
        if Z.size == 0 or (Z.max() <= VALUE_LIMIT and Z.min() >= -VALUE_LIMIT):
            return
        i, j = first_beyond_limit(Z)
        name, z = self.kept_features[j], Z[i, j]
        row, n_rows = (i, len(Z)) if row_of is None else row_of
        where = f"row {row + 1} of the {count_of(n_rows, 'row')} transformed"
        if self.config.standardize:
            raise DataError(f"feature {name!r} has a value {z:.3g} training SDs from its training mean at {where} "
                            f"(training SD {self.scale_[j]:.3g}), beyond the ±{VALUE_LIMIT:.3g} a network input "
                            "can be; check the units of that column")
        raise DataError(value_limit_message("feature column", name, z, where))

    @property
    def constant_only(self) -> list[str]:
        """The features dropped as constant that had values on the training rows (``dropped_constant`` less
        ``without_values``, which their own warning names): what the constant-feature warning lists."""
        without = set(self.without_values)
        return [n for n in self.dropped_constant if n not in without]

    def restricted(self, names: Sequence[str]) -> "Preprocessor":
        """A copy keeping only the kept features ``names`` (a subset, in kept order): same parameters."""
        wanted = set(names)
        keep = np.array([j for j, n in enumerate(self.kept_features) if n in wanted], dtype=np.int64)
        if len(keep) != len(wanted):
            raise ValueError("restricted: every name must be one of the kept features")
        out = Preprocessor(self.config)
        out.feature_names_in = list(self.feature_names_in)
        out.dropped_constant = list(self.dropped_constant)
        out.without_values = list(self.without_values)
        out.warnings = list(self.warnings)
        out.kept_features = [self.kept_features[j] for j in keep]
        for attr in ("kept_index_", "impute_values_", "center_", "scale_", "offset_", "train_mean_", "train_sd_"):
            setattr(out, attr, getattr(self, attr)[keep].copy())
        if self.train_zero_share_ is not None:
            out.train_zero_share_, out.train_rows_ = self.train_zero_share_[keep].copy(), self.train_rows_
        if self.train_sd_unclipped_ is not None:
            out.train_sd_unclipped_ = self.train_sd_unclipped_[keep].copy()
        if self.train_kurtosis_ is not None:
            out.train_kurtosis_ = self.train_kurtosis_[keep].copy()
        if self.train_reach_ is not None:
            out.train_reach_ = (self.train_reach_[0][keep].copy(), self.train_reach_[1][keep].copy())
        return out

    @property
    def keeps_zeros(self) -> bool:
        """Whether the fitted transformation maps 0 to 0 (no centring and no offset: --no-standardize, or a
        model file that stored none), so that sparse inputs stay sparse matrices without an offset."""
        return self.center_ is not None and not np.any(self.center_) and not self._offsets

    @property
    def clips(self) -> bool:
        """Whether the scaled values are smoothly clipped (robust scaling): a shift measured on them is of the clipped
        values, and the training SD and kurtosis before the clip are kept for the checks."""
        return self.config.standardize and self.config.scaling == "robust"

    @property
    def _offsets(self) -> bool:
        """Whether an offset is subtracted after the scaling (and clip): robust scaling of dense data, either
        scaling of sparse data; 0 in model files written before it (format 9 and older; sparse fits: 10)."""
        return self.offset_ is not None and bool(np.any(self.offset_))

    def far_scales(self, seen: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(d_kept,) float64 each: how many training scales below and above its centre a kept feature's value lies
        before it is far beyond the feature's training values (inf: never, as with --no-standardize, or below the centre
        after log1p): a typo (1e30) or another unit, which robust scaling's smooth clip holds within a hair of its
        ceiling, so the network reads it as the edge of its range and nothing stands out. Far is more than FAR_SCALES
        training scales (IQRs or SDs) from the centre; after log1p, where 1e30 is 69 and lies only ~40 scales out,
        above the centre by a factor of FAR_FACTOR and FAR_LOG_SCALES scales more (a mostly-zero gene's tiny scale would
        make a count of 100 look far). With ``seen`` (a new table), also FAR_RANGE times as far as the training values
        reached (``train_reach_``; after log1p FAR_RANGE times the farthest training value): a heavy-tailed feature's
        training values reach 1,000s of IQRs out themselves (pd_speech's -999 beside a median of 0.3), and a new value
        among them is no typo."""
        d = len(self.kept_features)
        if not self.config.standardize:
            return np.full(d, np.inf), np.full(d, np.inf)
        scale = np.maximum(np.asarray(self.scale_, dtype=np.float64), np.finfo(np.float64).tiny)
        if self.config.log1p:
            below, above = np.full(d, np.inf), math.log(FAR_FACTOR) / scale + FAR_LOG_SCALES
        else:
            below, above = np.full(d, FAR_SCALES), np.full(d, FAR_SCALES)
        if seen and self.train_reach_ is not None:
            low, high = self.train_reach_
            if self.config.log1p:
                above = np.maximum(above, high + math.log(FAR_RANGE) / scale)
            else:
                below, above = np.maximum(below, FAR_RANGE * low), np.maximum(above, FAR_RANGE * high)
        return below, above

    def scales_from_centre(self, values: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """Raw values (n, k) of the kept features at positions ``kept`` (k,) as training scales from each one's
        centre, before the clip and its offset: (log1p(x) or x - centre) / scale, float64."""
        values = np.asarray(values, dtype=np.float64)
        if self.config.log1p:
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.log1p(values)
        scale = np.maximum(np.asarray(self.scale_, dtype=np.float64)[kept], np.finfo(np.float64).tiny)
        return (values - self.center_[kept]) / scale

    def far_bounds(self, seen: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(d_kept,) float64 each: the raw values (before log1p) below and above which a value of each kept feature is
        far (``far_scales``), so that a table can be checked without transforming it."""
        below, above = self.far_scales(seen)
        if not self.config.standardize:
            return -below, above
        center = np.asarray(self.center_, dtype=np.float64)
        scale = np.maximum(np.asarray(self.scale_, dtype=np.float64), np.finfo(np.float64).tiny)
        with np.errstate(over="ignore", invalid="ignore"):
            high = center + above * scale
            if self.config.log1p:
                return np.full(len(center), -np.inf), np.expm1(high)
            return center - below * scale, high

    def unscale(self, Z: np.ndarray) -> np.ndarray:
        """Scaled values (..., d_kept) back to the scale before centring (after log1p and imputation):
        the inverse of the centring, scaling and (robust) clipping."""
        Z = np.array(Z, dtype=np.float64)
        if self._offsets:
            Z += self.offset_
        if self.clips:  # z / sqrt(1 + (z/c)^2) = u  <=>  z = u / sqrt(1 - (u/c)^2), |u| < c
            Z = Z / np.sqrt(np.maximum(1.0 - (Z / CLIP_AT) ** 2, 1e-12))
        return self.center_ + self.scale_ * Z

    def unclipped(self, Z: np.ndarray) -> np.ndarray:
        """Transformed values Z (n, d_kept) as they were before the robust clip: ((x - centre) / scale, float64),
        held within ±UNCLIPPED_LIMIT, whose training SDs are ``train_sd_unclipped_`` (the shift check's spread
        test). Without the clip, Z plus the offset."""
        U = np.array(Z, dtype=np.float64)
        if self._offsets:
            U += self.offset_
        if self.clips:  # z / sqrt(1 + (z/c)^2) = u  <=>  z = u / sqrt(1 - (u/c)^2), |u| < c
            with np.errstate(divide="ignore", invalid="ignore"):
                room = 1.0 - (U / CLIP_AT) ** 2
                U /= np.sqrt(np.maximum(room, 0.0))
            # far out the clip's result is CLIP_AT to the last digit and its inverse loses them (1e12 IQRs came
            # back as inf): held within ±UNCLIPPED_LIMIT, as the training SDs' values are
            np.clip(U, -UNCLIPPED_LIMIT, UNCLIPPED_LIMIT, out=U)
        return U

    def fit_transform(self, X, feature_names: Sequence[str], dtype=np.float64, order: str = "F") -> np.ndarray:
        """``fit(X).transform(X, dtype, order)`` in one pass over X (the same values: the fit computes them)."""
        return self._fit(X, feature_names, dtype, order)

    def _raise_for_rows(self, X, exc: DataError) -> None:
        """The error ``_transform_in_place`` raised for one block, counted over every row of X (``exc``
        itself when it is not about negative or missing values: an input beyond the network's range)."""
        kept, step = self.kept_index_, rows_per_block(len(self.kept_index_))
        negative = np.zeros(len(kept), dtype=bool)
        nan_counts = np.zeros(len(kept), dtype=np.int64)
        for i in range(0, X.shape[0], step):
            block = feature_block(X, slice(i, i + step), kept)
            negative |= (block < 0).any(axis=0)
            nan_counts += np.isnan(block).sum(axis=0)
        if self.config.log1p and negative.any():
            j = int(np.flatnonzero(negative)[0])
            column = np.concatenate([feature_block(X, slice(i, i + step), kept[j:j + 1]).ravel()
                                     for i in range(0, X.shape[0], step)])
            first_min = float(column[~np.isnan(column)].min())
            raise DataError(negative_message(self.kept_features, negative, first_min))
        if self.config.impute is None and nan_counts.any():
            raise DataError(missing_message(self.kept_features, nan_counts, fitted=True))
        raise exc

    # ── sparse input ─────────────────────────────────────────────────────────────────────────────────────
    #
    # A CSR matrix's stored values are read SPARSE_CHUNK at a time, each chunk copied to float64 (log1p'd,
    # imputed, scaled) and dropped: the temporaries are a few chunks (8 MiB each), not copies of the whole
    # matrix. Per-column sums are accumulated with np.add.at in the stored values' order, the order in which
    # np.bincount over all of them adds, so every statistic is the number a whole-matrix pass gives.

    def state(self, checks: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able meta, arrays) for the model file; arrays are plain numeric, loadable without pickle. ``checks``
        False: without the statistics only the model's own preprocessing serves (the kurtosis and reach the shift and
        far-value checks read), as an ensemble member's is saved: five members' copies were 15 % of the sample data's
        model file (240 of 288 KB)."""
        if self.kept_index_ is None:
            raise RuntimeError("Preprocessor.state called before fit")
        meta = {
            "version": _STATE_VERSION,
            "config": asdict(self.config),
            "feature_names_in": list(self.feature_names_in),
            "kept_features": list(self.kept_features),
            "dropped_constant": list(self.dropped_constant),
            "warnings": list(self.warnings),
        }
        if self.train_rows_ is not None:
            meta["train_rows"] = int(self.train_rows_)
        meta["offset"] = True  # model format 10: the robust clip's offset is stored
        arrays = {
            "kept_index": self.kept_index_.copy(),
            "impute_values": self.impute_values_.copy(),
            "center": self.center_.copy(),
            "scale": self.scale_.copy(),
            "offset": self.offset_.copy(),
            "train_mean": self.train_mean_.copy(),
            "train_sd": self.train_sd_.copy(),
        }
        if self.train_zero_share_ is not None:
            arrays["train_zero_share"] = self.train_zero_share_.copy()
        if self.train_sd_unclipped_ is not None:
            meta["sd_unclipped"] = True  # model format 11
            arrays["train_sd_unclipped"] = self.train_sd_unclipped_.copy()
        if self.train_kurtosis_ is not None and checks:
            meta["kurtosis"] = True  # model format 17
            arrays["train_kurtosis"] = self.train_kurtosis_.copy()
        if self.train_reach_ is not None and checks:
            meta["reach"] = True  # model format 17
            arrays["train_reach_low"], arrays["train_reach_high"] = (r.copy() for r in self.train_reach_)
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "Preprocessor":
        """Rebuild a fitted Preprocessor; inconsistent state raises ModelFileError."""
        try:
            if meta.get("version") != _STATE_VERSION:
                raise ModelFileError(f"unknown preprocessing state version {meta.get('version')!r}")
            pre = cls(PreprocessConfig(**meta["config"]))
            names = [str(n) for n in meta["feature_names_in"]]
            kept_names = [str(n) for n in meta["kept_features"]]
            missing = [k for k in _STATE_ARRAYS if k not in arrays]
            if missing:
                raise ModelFileError(f"preprocessing arrays missing from the model file: {quoted(missing)}")
            loaded = {k: np.asarray(arrays[k]) for k in _STATE_ARRAYS}
        except (KeyError, TypeError, ConfigError) as exc:
            raise ModelFileError(f"preprocessing state in the model file is malformed: {short_reason(exc)}") from None
        kept = loaded["kept_index"].astype(np.int64)
        d_kept = len(kept_names)
        if any(loaded[k].shape != (d_kept,) for k in _STATE_ARRAYS):
            raise ModelFileError(f"preprocessing arrays in the model file do not match its {d_kept} kept features")
        if d_kept and (kept.min() < 0 or kept.max() >= len(names) or [names[j] for j in kept] != kept_names):
            raise ModelFileError("preprocessing feature indices in the model file do not match its feature names")
        pre.feature_names_in = names
        pre.kept_features = kept_names
        pre.dropped_constant = [str(n) for n in meta.get("dropped_constant", [])]
        pre.warnings = [str(w) for w in meta.get("warnings", [])]
        pre.kept_index_ = kept
        pre.impute_values_ = loaded["impute_values"].astype(np.float64)
        pre.center_ = loaded["center"].astype(np.float64)
        pre.scale_ = loaded["scale"].astype(np.float64)
        pre.offset_ = np.zeros(d_kept)  # files before format 10: no offset
        if meta.get("offset"):
            offset = np.asarray(arrays.get("offset", np.empty(0)))
            if offset.shape != (d_kept,) or not np.issubdtype(offset.dtype, np.floating) or not np.all(np.isfinite(offset)):
                raise ModelFileError("preprocessing arrays in the model file: offset is missing or malformed (one "
                                     f"finite number per kept feature, {d_kept})")
            pre.offset_ = offset.astype(np.float64)
        pre.train_mean_ = loaded["train_mean"].astype(np.float64)
        pre.train_sd_ = loaded["train_sd"].astype(np.float64)
        share, rows = arrays.get("train_zero_share"), meta.get("train_rows")
        if share is not None:  # optional: older model files lack it
            share = np.asarray(share)
            if (share.shape != (d_kept,) or not np.issubdtype(share.dtype, np.floating) or not np.all((share >= 0) & (share <= 1))
                    or isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
                raise ModelFileError("preprocessing arrays in the model file: train_zero_share is malformed (one "
                                     f"share in [0, 1] per kept feature, {d_kept}, and a training row count)")
            pre.train_zero_share_, pre.train_rows_ = share.astype(np.float64), rows
        if meta.get("sd_unclipped"):  # format 11
            sd = np.asarray(arrays.get("train_sd_unclipped", np.empty(0)))
            if sd.shape != (d_kept,) or not np.issubdtype(sd.dtype, np.floating) or not np.all(sd >= 0):
                raise ModelFileError("preprocessing arrays in the model file: train_sd_unclipped is missing or "
                                     f"malformed (one SD >= 0 per kept feature, {d_kept})")
            pre.train_sd_unclipped_ = sd.astype(np.float64)
        if meta.get("kurtosis"):  # format 17
            kurtosis = np.asarray(arrays.get("train_kurtosis", np.empty(0)))
            if (kurtosis.shape != (d_kept,) or not np.issubdtype(kurtosis.dtype, np.floating)
                    or not np.all(kurtosis >= 1)):
                raise ModelFileError("preprocessing arrays in the model file: train_kurtosis is missing or malformed "
                                     f"(one kurtosis >= 1 per kept feature, {d_kept})")
            pre.train_kurtosis_ = kurtosis.astype(np.float64)
        if meta.get("reach"):  # format 17
            reach = [np.asarray(arrays.get(f"train_reach_{side}", np.empty(0))) for side in ("low", "high")]
            if any(r.shape != (d_kept,) or not np.issubdtype(r.dtype, np.floating) or not np.all(r >= 0) for r in reach):
                raise ModelFileError("preprocessing arrays in the model file: train_reach_low / train_reach_high are "
                                     f"missing or malformed (one distance >= 0 per kept feature each, {d_kept})")
            pre.train_reach_ = (reach[0].astype(np.float64), reach[1].astype(np.float64))
        return pre


# The rows a feature's kurtosis before the clip is read from (``unclipped_kurtosis``): all of them up to twice this many,
# else this many at random. Only its order of magnitude counts (3 normal, ~30 for a value off its main one in 3 % of
# rows), and over 2,048 rows it cost 0.10 s of a 0.79 s preprocessing of 8,000 x 5,000
KURTOSIS_ROWS = 512


def unclipped_kurtosis(Xk: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(w,) the kurtosis E[(u - mean)^4] / SD^4 of each column of Xk (n, w; log1p'd and imputed) as values before the
    robust clip, u = (x - centre) / scale held within ±UNCLIPPED_LIMIT (``Preprocessor.unclipped``), over up to
    2 x KURTOSIS_ROWS rows (else KURTOSIS_ROWS at random, with a fixed seed); 3 for a normal feature, about 1 / p for
    one at a single value but a share p. A column without spread there: 1, the least there is. (The kurtosis does not
    depend on the scale: the values are held within centre ± UNCLIPPED_LIMIT x scale, not divided.)"""
    n = Xk.shape[0]
    U = Xk[random_rows(n, KURTOSIS_ROWS)] if n >= 2 * KURTOSIS_ROWS else np.array(Xk)
    np.clip(U, center - UNCLIPPED_LIMIT * scale, center + UNCLIPPED_LIMIT * scale, out=U)
    U -= U.mean(axis=0)
    var = np.einsum("ij,ij->j", U, U) / U.shape[0]
    np.multiply(U, U, out=U)
    fourth = np.einsum("ij,ij->j", U, U) / U.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, np.maximum(fourth / np.maximum(var, np.finfo(np.float64).tiny) ** 2, 1.0), 1.0)


class _Scaling:
    """The fitted scaling of d columns, filled a block of columns at a time."""

    def __init__(self, d: int):
        self.center, self.scale, self.offset = np.zeros(d), np.ones(d), np.zeros(d)
        self.mean, self.sd, self.sd_unclipped, self.kurtosis = np.empty(d), np.empty(d), np.empty(d), np.empty(d)
        self.reach_low, self.reach_high = np.empty(d), np.empty(d)

    def put(self, where, values: tuple[np.ndarray, ...]) -> None:
        (self.center[where], self.scale[where], self.offset[where], self.mean[where], self.sd[where],
         self.sd_unclipped[where], self.kurtosis[where], self.reach_low[where], self.reach_high[where]) = values


class _Beside:
    """Calls run on the cores the caller leaves idle (``background.beside``: threads) while the caller prepares the
    next ones, at most _IN_FLIGHT at a time; each call writes its own columns or rows of the results, so the
    numbers are those of one thread. ``add`` and ``finish`` raise an error of a call (the earliest call's).

    Used for the blocks of the dense fit (their scaling: the robust percentiles' partitions, the clip, the
    statistics of the result, the copy into the training matrix, two thirds of a fit) and of ``transform``.
    Memory: whatever a call needs that is large (the block's copy, its scratch space) is allocated by the
    caller, and the calls allocate nothing large: glibc gives each thread a heap of its own, which keeps what
    the thread frees (``malloc_trim`` releases only part of it), so temporaries made in the threads stayed
    resident through training (+75 MB at 8,000 x 5,000)."""

    _IN_FLIGHT = 2

    def __init__(self):
        from ..background import spare_core

        self.threaded = spare_core()
        self.pending: list = []

    def add(self, fn, *args, then: Callable[[], None] | None = None) -> None:
        """``fn(*args)`` beside; ``then()`` here once it is done (the caller's share of the work, e.g. copying the
        call's result into place, which balances the two cores)."""
        from ..background import beside

        self.pending.append((beside(fn, *args, threaded=self.threaded), then))
        while len(self.pending) > self._IN_FLIGHT:
            self._settle()

    def finish(self) -> None:
        """Wait for every call."""
        while self.pending:
            self._settle()

    def _settle(self) -> None:
        done, then = self.pending.pop(0)
        done()
        if then is not None:
            then()


def _columns_to_scale(B: np.ndarray, local: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(the kept columns ``local`` (None: all) of block B as a column-major copy, as pass 2 takes them
    (X[:, kept]) so that they sum the same, scratch space of its shape and layout). Column-major whatever the
    block's width: numpy sums a contiguous column pairwise but the columns of a row-major block one row after
    the other, so a row-major block of one kept column (a neighbour dropped as constant) summed differently
    from the same column in a wider one, and the statistics depended on the block size."""
    Xk = np.asfortranarray(B if local is None else B[:, local])
    return Xk, np.empty_like(Xk)


class _Output:
    """The transformed training rows (n, d) in `dtype` and `order`, filled a block of columns at a time; with
    some columns not kept, ``columns`` moves the kept ones to the front in place, so the result never
    needs a second matrix."""

    def __init__(self, n: int, d: int, dtype, order: str):
        self.order = order
        self.buffer = np.empty(n * d, dtype=dtype)  # owns the memory, so that it can shrink in place
        self.matrix = self.buffer.reshape((n, d), order=order)

    def put(self, where, Z: np.ndarray) -> None:
        if self.order == "C" and not Z.flags.c_contiguous:
            # a column-major block into row-major rows: a tile of rows at a time stays in the CPU caches
            # (measured: half the time of one strided copy, 8,000 x 5,000)
            for r in range(0, Z.shape[0], TILE_ROWS):
                self.matrix[r:r + TILE_ROWS, where] = Z[r:r + TILE_ROWS]
        else:
            self.matrix[:, where] = Z

    def columns(self, kept: np.ndarray | None) -> np.ndarray:
        """The matrix of the `kept` columns (sorted indices; None: all of them), (n, len(kept))."""
        M = self.matrix
        n, d = M.shape
        if kept is None or len(kept) == d:
            return M
        k = len(kept)
        flat = self.buffer
        if self.order == "F":  # whole columns move left: column j's values are flat[j n:(j + 1) n]
            for to, j in enumerate(kept.tolist()):
                if to != j:
                    flat[to * n:(to + 1) * n] = flat[j * n:(j + 1) * n]
        else:  # row by row (a block at a time): row i's kept values land at or before where row i starts
            step = rows_per_block(d)
            for i in range(0, n, step):
                rows = M[i:i + step][:, kept]  # a copy, taken before anything is written over these rows
                flat[i * k:i * k + rows.size] = rows.ravel()
        del M, self.matrix
        self.buffer.resize(n * k, refcheck=False)  # the tail goes back to the system
        return self.buffer.reshape((n, k), order=self.order)


def _fill(X: np.ndarray, values: np.ndarray) -> None:
    """In place: NaN in column j becomes values[j]."""
    nan_mask = np.isnan(X)
    if nan_mask.any():
        rows, cols = np.nonzero(nan_mask)
        X[rows, cols] = values[cols]


def _fill_missing(X: np.ndarray, nan_mask: np.ndarray, nan_counts: np.ndarray, method: str) -> np.ndarray:
    """Imputation values (w,) of X's columns by `method`, and X's NaN filled with them in place; a column
    without any value gets 0 (it is then constant, and dropped)."""
    if method == "zero":
        values = np.zeros(X.shape[1])
    elif method == "min":  # the smallest value measured: a value missing below a detection limit is at most that
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns, handled below
            values = np.nanmin(X, axis=0)
    elif method == "mean":
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns, handled below
            # a sum's rounding can put the mean of equal values an ulp beside them: the column would no
            # longer be constant, and its SD of ~1e-16 would make any other value 1e15 SDs away
            values = np.clip(np.nanmean(X, axis=0), np.nanmin(X, axis=0), np.nanmax(X, axis=0))
    else:
        values = nan_median(X, nan_mask, nan_counts)
    values[nan_counts == X.shape[0]] = 0.0
    if nan_counts.any():
        rows, cols = np.nonzero(nan_mask)
        X[rows, cols] = values[cols]
    return values
