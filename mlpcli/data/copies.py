"""Samples that are copies of one another: identical feature rows under two ids (a GEO sample deposited in two
series, a file concatenated with itself), which a split can put on both sides."""

from __future__ import annotations

import numpy as np

from .dataset import is_sparse

__all__ = ["MIN_FEATURES", "twin_rows"]

# Identical feature rows mean a copied sample only when there are enough features for them not to repeat by chance.
MIN_FEATURES = 10


def twin_rows(X, groups: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, of rows of X (n, d) with identical feature values (NaN matching NaN) whose groups
    differ (every pair without groups): the same sample twice under two ids (a GEO sample deposited in two
    series, a file concatenated with itself), which a split can put on both sides, so that one copy is scored by
    a member trained on the other. Only tables of MIN_FEATURES features or more are checked (a few
    clinical or discrete columns repeat by chance); rows of one value (all zero) are not counted. Each row's
    float bits weighted by random odd integers and summed modulo 2^64 (exact integer arithmetic, whatever the
    row's memory alignment) narrow the candidates; each pair is then
    compared value by value. A sparse X (single-cell counts, where identical low-count cells are no copies) is
    not checked: []. About 0.1 s at 8,000 x 5,000 float32, a few MB of temporaries."""
    if is_sparse(X) or X.shape[0] < 2 or X.shape[1] < MIN_FEATURES:
        return []
    X = np.asarray(X)
    n, d = X.shape
    bits_type = {4: np.uint32, 8: np.uint64}.get(X.dtype.itemsize)
    if bits_type is None:
        return []
    weights = np.random.default_rng(0).integers(1, 2**62, size=d, dtype=np.uint64) | np.uint64(1)  # (d,)
    fingerprint = np.empty(n, dtype=np.uint64)
    step = max(1, (4 << 20) // d)  # rows per block: ~32 MB of uint64 temporaries
    with np.errstate(over="ignore"):
        for start in range(0, n, step):
            block = np.ascontiguousarray(X[start:start + step]).view(bits_type).astype(np.uint64)  # (b, d)
            block *= weights
            fingerprint[start:start + step] = block.sum(axis=1, dtype=np.uint64)
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
