"""Batches on different scales: a table merged from runs of which one holds raw values (intensities, counts) and
the others log values, or another normalisation.

``--log1p`` and the scaling apply to the whole table, not batch by batch, so such a batch stays apart from the
others by orders of magnitude after them: the network learns the batch, and `diagnose` reads the failure as too
little data. The shift check of ``predict`` tells a cohort on another scale from the training one (``one_way``);
this is the same test between the batches of a training table, before training:

    per batch of at least MIN_BATCH samples (a spaced sample of at most SAMPLED_ROWS) and per feature (of at most
    SAMPLED_FEATURES), the
    median and the interquartile range; against the other batches' (their pooled median of medians and IQRs):
    on another scale when at least SAME_WAY_SHARE of the features sit on one side by more than SHIFT_IQRS of the
    others' IQR and the median ratio of the IQRs is SPREAD_RATIO or more (either way)

A batch effect that moves the values (an offset of a log unit or two) keeps the spreads alike and is not flagged.
"""

from __future__ import annotations

import numpy as np

__all__ = ["batch_scale_warning", "column_quartiles", "MIN_BATCH", "SAME_WAY_SHARE", "SHIFT_IQRS", "SPREAD_RATIO"]

MIN_BATCH = 5
SAMPLED_FEATURES = 2000
SAMPLED_ROWS = 200  # per batch (quartiles of 200 rows are close enough for a 10 x test)
MAX_BATCHES = 20  # the largest batches compared, when there are more (one per donor, say)
SAME_WAY_SHARE = 0.9
SHIFT_IQRS = 2.0
SPREAD_RATIO = 10.0


def column_quartiles(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(median, IQR) per column of M (rows, columns), NaN ignored (a column without a value: NaN): np.nanpercentile's
    values, bit for bit (tested), from np.percentile of the sorted values of the columns with as many values, a call
    per count: nanpercentile called NumPy's quantile once per column, 0.09 s for 200 x 2,000 against 0.01 s."""
    S = np.sort(M, axis=0)  # NaN last
    valid = np.count_nonzero(~np.isnan(M), axis=0)
    q = np.full((3, M.shape[1]), np.nan)
    for k in np.unique(valid[valid > 0]):
        cols = np.flatnonzero(valid == k)
        q[:, cols] = np.percentile(S[:k, cols], [25, 50, 75], axis=0)
    q1, med, q3 = q
    return med, q3 - q1


def batch_scale_warning(ds) -> str | None:
    """A warning naming the batches of ``ds`` (a Dataset with a batch column, dense X) whose values look on another
    scale than the other batches' (the module docstring's test), with how far; None otherwise."""
    from ..centred_rows import is_sparse

    if ds.batches is None or ds.X is None or is_sparse(ds.X):
        return None
    names, b = np.unique(np.asarray(ds.batches, dtype=str), return_inverse=True)
    b = b.reshape(-1)
    sizes = np.bincount(b, minlength=len(names))
    large = np.flatnonzero(sizes >= MIN_BATCH)
    if len(large) < 2:
        return None
    if len(large) > MAX_BATCHES:
        large = np.sort(large[np.argsort(-sizes[large], kind="stable")[:MAX_BATCHES]])
    d = ds.X.shape[1]
    cols = np.unique(np.linspace(0, d - 1, min(d, SAMPLED_FEATURES)).astype(np.int64))
    stats = {}
    for i in large:  # a spaced sample of each batch's rows: quartiles need no more (and 200,000 rows no copy)
        rows = np.flatnonzero(b == i)
        rows = rows[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), SAMPLED_ROWS)).astype(np.int64))]
        stats[int(i)] = column_quartiles(np.asarray(ds.X[np.ix_(rows, cols)], dtype=np.float64))
    said = []
    for i in large:
        others = [stats[int(j)] for j in large if j != i]
        med_rest = np.median(np.stack([m for m, _ in others]), axis=0)
        iqr_rest = np.median(np.stack([q for _, q in others]), axis=0)
        med, iqr = stats[int(i)]
        ok = np.isfinite(med) & np.isfinite(med_rest) & (iqr_rest > 0) & (iqr > 0)
        if ok.sum() < 10:
            continue
        shift = (med[ok] - med_rest[ok]) / iqr_rest[ok]
        up, down = int((shift > SHIFT_IQRS).sum()), int((shift < -SHIFT_IQRS).sum())
        way, k = ("higher", up) if up >= down else ("lower", down)
        spread = float(np.median(iqr[ok] / iqr_rest[ok]))
        if k >= SAME_WAY_SHARE * ok.sum() and (spread >= SPREAD_RATIO or spread <= 1 / SPREAD_RATIO):
            said.append(f"{str(names[i])!r} ({k} of {int(ok.sum())} features {way}, with {spread:.2g} x the others' spread)")
    if not said:
        return None
    column = ds.roles.batch if getattr(ds, "roles", None) is not None and ds.roles.batch else "batch"
    return (f"{column} {', '.join(said[:3])}{' …' if len(said) > 3 else ''} look{'s' * (len(said) == 1)} on "
            "another scale than the other batches — raw values among log-transformed ones, or another normalisation: --log1p and the scaling "
            "apply to the whole table, not batch by batch, so the network can tell the batch apart; put every batch "
            "on one scale before training")
