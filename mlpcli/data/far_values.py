"""Values far beyond their feature's training values — a typo (1e30 for 1.3), a value in another unit — found in a
table to predict or in the one a model trains on (``Preprocessor.far_scales``), and the one wording of it.

Robust scaling's clip holds such a value within a hair of its ceiling, so the network reads it as the edge of its
range and nothing stands out; ``predict`` warns of them, and ``train`` of those in its own training table."""

from __future__ import annotations

import numpy as np

from ..centred_rows import is_sparse
from .preprocess import FAR_FACTOR, FAR_LOG_SCALES, FAR_RANGE, FAR_SCALES

__all__ = ["FAR_RANGE", "far_cells", "far_training_values", "far_words"]


def far_words(log1p: bool, reach: bool = False) -> str:
    """What "far" means for a model's preprocessing (``log1p``: its features were log-transformed; ``reach``: a new
    value is judged against how far the training values reached, too)."""
    if log1p:
        return (f"more than {FAR_FACTOR:,.0f} times its feature's typical training value (and {FAR_LOG_SCALES:g} "
                "training spreads beyond it on the log scale" + (f", and {FAR_RANGE:g} times its largest training value)"
                                                                 if reach else ")"))
    return (f"more than {FAR_SCALES:,.0f} training spreads from its feature's training centre"
            + (f" (and {FAR_RANGE:g} times as far as its training values reached)" if reach else ""))


# In a table a model trains on, a value far by the rule above is a typo only when it also stands apart: FAR_RANGE
# times as far from its feature's centre as the next value inward on its side (a unit slip, x 1,000, of a value 3
# spreads out puts it 3,000 out beside the others' 3; the two largest of a Pareto tail of index a are this far apart
# with chance 100^-a). Heavy-tailed features of real tables hold values 1,000 IQRs out in a tail that thins gradually
# (pd_speech's wavelet skewness, -2.07, -1.29, -0.63 beside an IQR of 1.6e-4; its entropy coefficients -999, -595,
# -374 beside a median of 0.3; a hepatic-injury assay's 9,600 beside 3,650): a typo (1e30 for 1.3) has no such
# neighbours


def _apart(distance: np.ndarray, bound: float, log_gap: float | None = None) -> np.ndarray:
    """(m,) bool: which of the distances from the centre (m,) >= 0 (training scales), all on one side, stand apart —
    beyond ``bound`` and beyond a gap where a value is FAR_RANGE times as far as the next one inward (every value
    past the innermost such gap). After log1p (``log_gap``: log(FAR_RANGE) in training scales) the gap is between
    the values themselves: FAR_RANGE times the next one's (1 + x)."""
    order = np.argsort(-distance, kind="stable")
    d = distance[order]
    nxt = np.append(d[1:], 0.0)
    gap = d - nxt >= log_gap if log_gap is not None else d > FAR_RANGE * nxt
    gaps = np.flatnonzero((d > bound) & gap)
    out = np.zeros(len(d), dtype=bool)
    if len(gaps):
        out[order[: gaps[-1] + 1]] = True
    return out


def far_cells(X, preprocessor, seen: bool = False) -> tuple[int, tuple[int, int] | None]:
    """(how many values of X's kept features lie far, (row, kept feature) of the first in row order or None): X (n, d)
    holds raw values in the columns the ``preprocessor``'s ``kept_index_`` picks (all of them for ``predict``'s
    ``kept_only`` one), dense or sparse. Far: beyond ``Preprocessor.far_scales`` from the centre; with ``seen`` (a new
    table, for a model that keeps its training values' reach) well beyond where the training values reached, else (X
    holds the rows the preprocessor was fitted on) standing apart from the feature's other values (``_apart``). Two
    reductions over X when nothing is far (the columns' extremes against ``Preprocessor.far_bounds``), then a look at
    the few columns that hold such values."""
    low, high = preprocessor.far_bounds(seen)
    if X is None or X.shape[0] == 0 or not len(low) or not (np.isfinite(low).any() or np.isfinite(high).any()):
        return 0, None
    kept = preprocessor.kept_index_
    kept = np.arange(X.shape[1]) if isinstance(kept, slice) else kept
    sparse = is_sparse(X)
    if sparse:  # the stored values' extremes; an implicit 0 is within the bounds (a centre 1,000 scales from 0 is
        X = X.tocsc()  # no sparse feature's)
        top, bottom = np.full(X.shape[1], -np.inf), np.full(X.shape[1], np.inf)
        stored = np.flatnonzero(np.diff(X.indptr))
        if len(stored):
            top[stored] = np.fmax.reduceat(X.data, X.indptr[stored])
            bottom[stored] = np.fmin.reduceat(X.data, X.indptr[stored])
    else:
        X = np.asarray(X)  # NaN-ignoring extremes over every column (no copy of the kept ones): missing values pass
        top, bottom = np.fmax.reduce(X, axis=0), np.fmin.reduce(X, axis=0)
    with np.errstate(invalid="ignore"):
        suspect = np.flatnonzero((top[kept] > high) | (bottom[kept] < low))
    if not len(suspect):
        return 0, None
    columns = X[:, kept[suspect]]
    columns = columns.toarray() if sparse else columns
    if seen:
        with np.errstate(invalid="ignore"):
            far = (columns > high[suspect]) | (columns < low[suspect])
    else:
        z = preprocessor.scales_from_centre(columns, suspect)  # (n, k)
        below, above = (u[suspect] for u in preprocessor.far_scales())
        log_gaps = (np.log(FAR_RANGE) / np.maximum(preprocessor.scale_[suspect], np.finfo(np.float64).tiny)
                    if preprocessor.config.log1p else [None] * len(suspect))
        far = np.zeros(z.shape, dtype=bool)
        for k in range(z.shape[1]):
            col = z[:, k]
            for side, bound in ((col > 0, above[k]), (col < 0, below[k])):  # (NaN: on neither side)
                rows = np.flatnonzero(side)
                far[rows[_apart(np.abs(col[rows]), bound, log_gaps[k])], k] = True
    hits = np.argwhere(far)  # row order
    if not len(hits):
        return 0, None
    return len(hits), (int(hits[0][0]), int(suspect[hits[0][1]]))


def far_training_values(ds, preprocessor, what: str = "the training table") -> str | None:
    """A warning naming the first of the values of ``ds`` (a ``data.Dataset``: ``what``) that lie far beyond their
    feature's training values by ``preprocessor``'s rule (``far_cells``), else None. A 1e30 typed for 1.3 trained
    without a word: the robust scaling held it at the edge of the range; with standard scaling a single value this
    far sets its feature's SD (so it is seen only on the log scale there: a value inflates the spread it is judged
    by)."""
    count, first = far_cells(ds.X, preprocessor)
    if first is None:
        return None
    row, j = first
    ids = getattr(ds, "ids", None)
    where = f"sample {str(ids[row])!r}" if ids is not None else f"row {row + 1}"
    some = "a value lies" if count == 1 else f"{count:,} values lie"
    return (f"{what}: {some} {far_words(bool(preprocessor.config.log1p))} — the first in "
            f"{preprocessor.kept_features[j]!r} of {where} —, a typo or a value in another unit? The scaling holds it at "
            "the edge of its feature's range, so the model trains on it as the most extreme value of its kind: check "
            "the cell, or leave the sample out")
