"""Samples that are copies of one another: identical feature rows under two ids (a GEO sample deposited in two
series, a file concatenated with itself), which a split can put on both sides; and the row fingerprints that find
them, which a model also keeps of its training rows so that `predict` and `evaluate` can tell a training sample
from a new one."""

from __future__ import annotations

import numpy as np

from ..centred_rows import is_sparse

__all__ = ["MIN_FEATURES", "chance_share", "fingerprint_weights", "kept_fingerprints", "row_fingerprints", "twin_rows"]

# Identical feature rows mean a copied sample only when there are enough features for them not to repeat by chance.
MIN_FEATURES = 10
# Values fingerprinted at a time: 2 MB of uint64 temporaries, which stay in cache (8,000 x 5,000 float32: 0.04 s,
# against 0.08 s in blocks of 4 Mi values).
_BLOCK_VALUES = 1 << 18


def fingerprint_weights(d: int) -> np.ndarray:
    """(d,) uint64 odd multipliers, one per feature column, for ``row_fingerprints``: drawn from a fixed seed, so
    a model's stored fingerprints and a new table's agree."""
    return np.random.default_rng(0).integers(1, 2**62, size=d, dtype=np.uint64) | np.uint64(1)


def row_fingerprints(X, weights: np.ndarray | None = None) -> np.ndarray:
    """(n,) uint64: a 64-bit fingerprint of each row of X (n, d), dense or CSR, float32 or float64: the
    float32 bits of each value times its column's weight (``fingerprint_weights``; a weight of 0 leaves the
    column out), summed modulo 2^64. Values are compared as float32 (the precision a float32 table holds), with
    every NaN alike, so a row gives the same fingerprint from a CSV, a parquet or a sparse
    .h5ad file, and a zero adds nothing (a sparse row's stored values are enough). Two different rows share
    a fingerprint with probability about 2^-64."""
    n, d = X.shape
    weights = fingerprint_weights(d) if weights is None else np.asarray(weights, dtype=np.uint64)
    if weights.shape != (d,):
        raise ValueError(f"weights must have shape ({d},), got {weights.shape}")
    out = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if is_sparse(X):
            X = X.tocsr()
            step = max(1, _BLOCK_VALUES // max(1, int(X.nnz / max(n, 1))))
            for start in range(0, n, step):
                block = X[start:start + step]
                bits = _canonical_bits(block.data) * weights[block.indices]
                ends = block.indptr[1:]
                sums = np.add.reduceat(np.append(bits, np.uint64(0)), block.indptr[:-1]) if len(ends) else bits[:0]
                sums[block.indptr[:-1] == ends] = 0  # rows with no stored value
                out[start:start + len(ends)] = sums
        else:
            step = max(1, _BLOCK_VALUES // max(1, d))
            for start in range(0, n, step):
                bits = _canonical_bits(np.asarray(X[start:start + step]))  # (b, d)
                bits *= weights
                out[start:start + step] = bits.sum(axis=1, dtype=np.uint64)
    return out


def kept_fingerprints(X, kept: np.ndarray) -> np.ndarray:
    """(n,) uint64 ``row_fingerprints`` of X (n, d) over its columns ``kept`` (the others weigh nothing): what
    the same rows give when a table holds only those columns, in that order, fingerprinted with
    ``fingerprint_weights(d)[kept]`` (how ``predict`` fingerprints a new table's rows of a model's inputs)."""
    weights = np.zeros(X.shape[1], dtype=np.uint64)
    weights[kept] = fingerprint_weights(X.shape[1])[kept]
    return row_fingerprints(X, weights)


def _canonical_bits(values: np.ndarray) -> np.ndarray:
    """``values`` (any shape) as float32 bits in uint64, every NaN as one NaN (the bits of -0.0 stay its own:
    files keep the sign, and a check for it would cost a third of the pass)."""
    v = np.ascontiguousarray(values, dtype=np.float32)  # a view of a C-ordered float32 block, else a copy
    bits = v.view(np.uint32).astype(np.uint64)
    if v.size and np.isnan(np.minimum.reduce(v, axis=None)):  # a min propagates NaN: one cheap pass
        bits[np.isnan(v)] = np.float32(np.nan).view(np.uint32)
    return bits


def twin_rows(X, groups: np.ndarray | None = None, fingerprints: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of rows of X (n, d) with identical feature values (NaN matching NaN) whose groups
    differ (every pair without groups): the same sample twice under two ids (a GEO sample deposited in two
    series, a file concatenated with itself), which a split can put on both sides, so that one copy is scored by
    a member trained on the other. Only tables of MIN_FEATURES features or more are checked (a few
    clinical or discrete columns repeat by chance); rows of one value (all zero) are not counted. Equal
    ``row_fingerprints`` narrow the candidates; each pair is then compared value by value. A sparse X (single-cell counts, where identical low-count cells are no copies) is
    not checked: []. About 0.1 s at 8,000 x 5,000 float32, a few MB of temporaries. fingerprints: X's
    ``row_fingerprints`` when the caller has them (``Dataset.row_fingerprints``), else computed."""
    if is_sparse(X) or X.shape[0] < 2 or X.shape[1] < MIN_FEATURES:
        return []
    X = np.asarray(X)
    n = X.shape[0]
    fingerprint = row_fingerprints(X) if fingerprints is None else np.asarray(fingerprints, dtype=np.uint64)
    if fingerprint.shape != (n,):
        raise ValueError(f"fingerprints must have shape ({n},), got {fingerprint.shape}")
    order = np.argsort(fingerprint, kind="stable")
    ranked = fingerprint[order]
    starts = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1]  # the runs of equal fingerprints
    first = np.repeat(starts, np.diff(np.r_[starts, n]))  # (n,) where each sorted row's run starts
    pairs = []
    for k in np.flatnonzero(first != np.arange(n)):  # every row of a run compared with the run's first
        i, j = sorted((int(order[first[k]]), int(order[k])))
        if (groups is None or groups[i] != groups[j]) and np.array_equal(X[i], X[j], equal_nan=True) \
                and not (X[i] == X[i][0]).all():  # rows of one value (all zero: no reads) are no evidence of a copy
            pairs.append((i, j))
    return sorted(pairs)


def chance_share(fingerprints: np.ndarray, groups: np.ndarray | None = None) -> float:
    """The share of rows whose ``row_fingerprints`` (n,) another row's repeat, another group's when ``groups`` (n,)
    are given (a patient's own repeats are the same sample): how often a new sample of the same population has a
    training row's exact values by chance alone. 0 for continuous features, where rows never repeat; 40 % of
    MASS::biopsy's rows (9 cytology scores of 1-10) share their scores with another patient's, and 48 of 134 rows
    of held-out patients were "training rows" by their values alone (``predict.seen``)."""
    fingerprints = np.asarray(fingerprints, dtype=np.uint64)
    if len(fingerprints) < 2:
        return 0.0
    if groups is None:
        _, inverse, counts = np.unique(fingerprints, return_inverse=True, return_counts=True)
        return float(np.mean(counts[inverse] > 1))
    _, group_codes = np.unique(np.asarray(groups), return_inverse=True)
    pairs = np.unique(np.stack([fingerprints, group_codes.astype(np.uint64)], axis=1), axis=0)  # (value, group)
    values, groups_holding = np.unique(pairs[:, 0], return_counts=True)  # groups that hold each value
    shared = values[groups_holding > 1]
    return float(np.mean(np.isin(fingerprints, shared)))
