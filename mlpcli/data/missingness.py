"""Whether a value is missing, read as information: features whose missingness follows the class or the batch.

Mass-spectrometry proteomics and metabolomics leave values out when they fall below the detection limit, and a
run or a plate can miss a feature altogether. With ``--impute`` every such value is filled, and a network then
learns from *whether* a feature was measured as much as from its level: a protein missing in every sample of one
class becomes that class's strongest marker (``explain`` ranks it first, and its values there are fills). That can
be biology (the protein is below detection in that class) or an artefact (one batch, one pipeline); either way the
user should know. The features whose missingness is tied to the labels or to the batches are found on the whole
table before training:

    for each feature with missing values: the table missing x group over the groups of at least MIN_GROUP samples,
    its chi-square statistic and Cramér's V = sqrt(chi2 / n); tied when V >= TIED_V, p < TIED_P / (features tested)
    (Bonferroni) and the group where it is most often missing holds at least MIN_MISSING of its missing values

Groups of fewer than MIN_GROUP samples are left out, and so is a tie of fewer than MIN_MISSING values: the
chi-square's p means nothing at expected counts near 0 (one NaN in a batch of 3 read V 0.57; missingness at random
over 100 batches of 3 samples flagged 53 features). Samples are counted one by one: a patient's replicates share
their missingness, which makes p smaller than it should be; V, the size of the tie, decides first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..distributions import chi2_sf
from ..text import agreeing, count_of
from .conventions import CLASSIFICATION_TASKS

__all__ = ["TIED_V", "TIED_P", "MIN_GROUP", "MIN_MISSING", "TiedFeature", "tied_missingness", "missingness_warnings",
           "binary_among_continuous", "label_copies", "empty_rows_warning", "ZERO_GAP_SD", "ZERO_MIN_SHARE", "ZERO_MIN_DISTINCT", "ZERO_MIN_FEATURES",
           "zeros_as_missing_warning"]

# A feature's missingness is tied to the class (batch) from Cramér's V of 0.5 (a strong association by the usual
# reading: a protein missing in 60 % of one class and 10 % of another of equal size is V 0.51) and a Bonferroni p
# below 0.001 over the features tested.
TIED_V = 0.5
TIED_P = 1e-3
MIN_GROUP = 5  # samples a group needs to be compared
MIN_MISSING = 5  # missing values the group of the tie needs
# Columns read at a time: the group counts of a block are (groups x BLOCK_COLUMNS), whatever the table's width
BLOCK_COLUMNS = 256


@dataclass(frozen=True)
class TiedFeature:
    """A feature whose missingness is tied to a grouping: its ``name``, Cramér's ``v``, the ``group`` (a class or
    batch name) where it is most often missing, its missing share there (``share``) and elsewhere (``others``)."""

    name: str
    v: float
    group: str
    share: float
    others: float


def tied_missingness(X, missing: np.ndarray | None, labels: np.ndarray, names: list[str],
                     group_names: list[str] | None = None) -> list[TiedFeature]:
    """The features of X (n, d) dense whose missing values (NaN) are tied to ``labels`` (n,) integer groups (classes
    or batches), strongest first. ``missing`` (d,): each feature's count of missing values (``Dataset.missing``), so
    that only those columns are read, a block at a time; ``names`` (d,) the features', ``group_names`` the groups'
    (default: their numbers)."""
    if missing is None or not np.any(missing) or X is None or not hasattr(X, "shape"):
        return []
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    k = int(labels.max()) + 1 if labels.size else 0
    sizes = np.bincount(labels, minlength=k)
    compared = np.flatnonzero(sizes >= MIN_GROUP)  # the groups large enough to tell a tie from chance
    if len(compared) < 2:
        return []
    rows = np.flatnonzero(np.isin(labels, compared))
    position = np.full(k, -1)
    position[compared] = np.arange(len(compared))
    onehot = np.zeros((len(rows), len(compared)), dtype=np.float32)
    onehot[np.arange(len(rows)), position[labels[rows]]] = 1.0
    sizes = sizes[compared].astype(np.float64)  # (g,)
    n = float(sizes.sum())
    cols = np.flatnonzero(np.asarray(missing) > 0)
    whole = len(rows) == labels.size
    found = []  # (v, column, top group, share there, share elsewhere)
    tested = max(1, cols.size)
    for start in range(0, cols.size, BLOCK_COLUMNS):
        block = cols[start:start + BLOCK_COLUMNS]
        values = np.asarray(X[:, block]) if whole else np.asarray(X[:, block])[rows]
        counts = (onehot.T @ np.isnan(np.asarray(values)).astype(np.float32)).astype(np.float64)  # (g, b)
        total = counts.sum(axis=0)  # (b,)
        expected_missing = sizes[:, None] * total[None, :] / n
        expected_present = sizes[:, None] * (n - total)[None, :] / n
        with np.errstate(divide="ignore", invalid="ignore"):
            chi2 = np.nansum((counts - expected_missing) ** 2 / expected_missing
                             + ((sizes[:, None] - counts) - expected_present) ** 2 / expected_present, axis=0)
        chi2 = np.where((total > 0) & (total < n), chi2, 0.0)  # missing everywhere: nothing ties it to a group
        v = np.sqrt(chi2 / n)  # (a 2-column table: min(r, c) - 1 = 1)
        p = chi2_sf(chi2, len(compared) - 1)
        shares = counts / sizes[:, None]
        top = shares.argmax(axis=0)
        at_top = counts[top, np.arange(len(block))]
        for t in np.flatnonzero((v >= TIED_V) & (p < TIED_P / tested) & (at_top >= MIN_MISSING)):
            rest = n - sizes[top[t]]
            others = float((total[t] - at_top[t]) / rest) if rest > 0 else 0.0
            found.append((float(v[t]), int(block[t]), int(compared[top[t]]), float(shares[top[t], t]), others))
    found.sort(key=lambda f: -f[0])
    return [TiedFeature(str(names[c]), v, str(group_names[g]) if group_names is not None else str(g), share, others)
            for v, c, g, share, others in found]


def missingness_warnings(ds, shown: int = 3) -> list[str]:
    """Warnings for ``train``/``cv``/``tune`` with --impute on the Dataset ``ds``: the features whose missingness is
    tied to the class, and those tied to the batch column (``tied_missingness``), each with where they are missing.
    A sparse matrix (its implicit zeros are values, not missing) and tables without missing values give none."""
    from ..centred_rows import is_sparse

    if ds.missing is None or not np.any(ds.missing) or is_sparse(ds.X):
        return []
    out = []
    if ds.task in CLASSIFICATION_TASKS and ds.y is not None:
        tied = tied_missingness(ds.X, ds.missing, ds.y, ds.feature_names, [str(c) for c in ds.classes])
        if tied:
            out.append(f"whether a value is missing follows the class in {_counted(tied)} ({_listed(tied, shown)}): "
                       "with --impute the network learns from whether a feature was measured, which is biology when "
                       "it falls below detection in that class and an artefact when a batch or pipeline left it out; "
                       "check which (`mlpcli explain` ranks such features as genes; --drop leaves one out)")
    if ds.batches is not None:
        names, b = np.unique(np.asarray(ds.batches, dtype=str), return_inverse=True)
        tied = tied_missingness(ds.X, ds.missing, b, ds.feature_names, [str(x) for x in names])
        if tied:
            column = ds.roles.batch if getattr(ds, "roles", None) is not None and ds.roles.batch else "batch"
            out.append(f"whether a value is missing follows {column!r} in {_counted(tied)} ({_listed(tied, shown)}): "
                       "a run that did not measure them, whose samples get the fill; a model relying on them scores "
                       "that batch by its fills (`mlpcli cv --leave-batch-out` shows it)")
    return out


def _counted(tied: list[TiedFeature]) -> str:
    return count_of(len(tied), "feature")


def _listed(tied: list[TiedFeature], shown: int) -> str:
    parts = [f"{t.name!r} missing in {t.share:.0%} of {t.group!r}, {t.others:.0%} of the others" for t in tied[:shown]]
    return "; ".join(parts) + (f"; and {len(tied) - shown} more" if len(tied) > shown else "")


# A table whose features are continuous but for a few 0/1 columns: at most this many of them, and this share
BINARY_AMONG_CONTINUOUS_MAX = 10
BINARY_AMONG_CONTINUOUS_SHARE = 0.1


def binary_among_continuous(ds, block_columns: int = BLOCK_COLUMNS) -> str | None:
    """A warning naming the few feature columns that hold only 0 and 1 in a table of otherwise continuous features
    (at most BINARY_AMONG_CONTINUOUS_MAX of them, and BINARY_AMONG_CONTINUOUS_SHARE of the features): other label
    columns or clinical flags, which every column but the roles' becomes. Training on `mutA` of a table holding
    `mutB`, `pathX` and `rare` used them as inputs and `explain` ranked another target among the genes. None for a
    sparse matrix, or when there are none or many (a matrix of mutations is 0/1 throughout)."""
    from ..centred_rows import is_sparse
    from .row_view import feature_block

    X = ds.X
    if X is None or is_sparse(X) or X.shape[1] < 20:
        return None
    # only a column whose smallest value is 0 and largest 1 (missing values aside) can be one: two passes over the
    # whole matrix, without temporaries, rule out the others, where the test of every value took eight (0.13-0.17 s
    # at 8,000 x 5,000, against 0.03 s)
    d = X.shape[1]
    if isinstance(X, np.ndarray):
        low, high = np.fmin.reduce(X, axis=0), np.fmax.reduce(X, axis=0)
    else:  # rows of a larger table (``Dataset.subset``): a block of their columns copied at a time
        low, high = np.empty(d), np.empty(d)
        for start in range(0, d, block_columns):
            B = feature_block(X, slice(None), slice(start, start + block_columns))
            np.fmin.reduce(B, axis=0, out=low[start:start + block_columns])
            np.fmax.reduce(B, axis=0, out=high[start:start + block_columns])
    candidates = np.flatnonzero((low == 0) & (high == 1))
    binary = []
    for start in range(0, len(candidates), block_columns):
        columns = candidates[start:start + block_columns]
        B = X[:, columns] if isinstance(X, np.ndarray) else feature_block(X, slice(None), columns)
        zero, one = (B == 0), (B == 1)
        flags = np.all(zero | one | np.isnan(B), axis=0) & zero.any(axis=0) & one.any(axis=0)
        binary += [int(j) for j in columns[flags]]
        if len(binary) > BINARY_AMONG_CONTINUOUS_MAX:
            return None
    if not binary or len(binary) > BINARY_AMONG_CONTINUOUS_SHARE * X.shape[1]:
        return None
    binary = [j for j in binary if j not in set(_copy_columns(ds, np.array(binary)).tolist())]  # (``label_copies``')
    if not binary:
        return None
    names = ", ".join(repr(str(ds.feature_names[j])) for j in binary[:5]) + (" …" if len(binary) > 5 else "")
    return (f"{count_of(len(binary), 'feature column')} of the {X.shape[1]:,} {agreeing(len(binary), 'holds', 'hold')} "
            f"only 0 and 1 among continuous ones ({names}): other label columns or clinical flags? Every column but "
            "the target, id, group and batch is a feature; --drop them if they are outcomes, which would leak")


def label_copies(ds, block_columns: int = BLOCK_COLUMNS) -> str | None:
    """A warning naming the feature columns that hold one value per class, another for each class: the target written
    again under another name (a 1/2 or case/control code, a column derived from the outcome), which every column but
    the roles' becomes. A copy of a binary label coded 1 and 2 trained without a word (only 0/1 columns are named, by
    ``binary_among_continuous``, and among 20 features or more) to an out-of-fold score that the features could not
    give, and a model that needs the copy to predict. None for a regression or multi-label target, a sparse matrix,
    or when there is none."""
    from ..centred_rows import is_sparse

    X = ds.X
    if X is None or is_sparse(X):
        return None
    copies = _copy_columns(ds, np.arange(X.shape[1]), block_columns)
    if not len(copies):
        return None
    y = np.asarray(ds.y).reshape(-1).astype(np.int64)
    classes = [str(ds.classes[k]) if k < len(ds.classes) else str(k) for k in np.unique(y)]
    first = np.array([np.flatnonzero(y == k)[0] for k in np.unique(y)])
    values = _rows(X, first, copies[:1])[:, 0]  # the first copy's code of each class
    coded = ", ".join(f"{v:g} for {c!r}" for v, c in list(zip(values, classes))[:4]) + (" …" if len(classes) > 4 else "")
    names = ", ".join(repr(str(ds.feature_names[c])) for c in copies[:5]) + (" …" if len(copies) > 5 else "")
    k = len(copies)
    return (f"{k} feature column{'s' * (k > 1)} ({names}) hold{'s' * (k == 1)} one value per class, another for each "
            f"({coded}{' in the first' if k > 1 else ''}): a copy of the target under another name? The model learns it "
            "and little else, and needs it to predict; --drop it if it comes from the outcome")


def _rows(X, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(len(rows), len(columns)) float64: those cells of X (an ndarray, or a RowView, whose rows index to one)."""
    return np.asarray(np.asarray(X[rows])[:, columns], dtype=np.float64)


def _block(X, start: int, stop: int) -> np.ndarray:
    from .row_view import feature_block

    return feature_block(X, slice(None), slice(start, stop))


def _copy_columns(ds, columns: np.ndarray, block_columns: int = BLOCK_COLUMNS) -> np.ndarray:
    """(k,) the ones of ``columns`` (feature indices, dense ds.X) that hold one value per class of ds.y (1-D class
    indices, two classes or more, each row's value its class's first row's), distinct across the classes: the
    candidates from the first and last row of each class, then every row of those, a block of columns at a time.
    A missing value is no copy (NaN equals nothing)."""
    X = ds.X
    if getattr(ds, "task", None) not in CLASSIFICATION_TASKS or getattr(ds, "y", None) is None:
        return np.zeros(0, dtype=np.int64)
    y = np.asarray(ds.y).reshape(-1).astype(np.int64)
    present, where = np.unique(y, return_inverse=True)
    if len(present) < 2 or len(y) <= len(present) or not len(columns):
        return np.zeros(0, dtype=np.int64)
    first = np.array([np.flatnonzero(y == k)[0] for k in present])
    last = np.array([np.flatnonzero(y == k)[-1] for k in present])
    # candidates first, from two rows of each class (a few rows of every column, not a pass over the table): a
    # continuous column differs between them
    sample = _rows(X, np.concatenate([first, last]), columns)
    V, W = sample[:len(first)], sample[len(first):]
    columns = np.asarray(columns)[np.all(V == W, axis=0) & np.all(np.diff(np.sort(V, axis=0), axis=0) != 0, axis=0)]
    found = []
    for start in range(0, len(columns), block_columns):
        cols = np.asarray(columns[start:start + block_columns])
        B = X[:, cols] if isinstance(X, np.ndarray) else np.column_stack([_block(X, c, c + 1) for c in cols])
        V = B[first]  # (K, w) each class's value
        same = np.all(B == V[where.reshape(-1)], axis=0)
        ordered = np.sort(V, axis=0)
        distinct = np.all(np.diff(ordered, axis=0) != 0, axis=0)
        found += cols[same & distinct].tolist()
    return np.asarray(found, dtype=np.int64)


def empty_rows_warning(ds, block_columns: int = BLOCK_COLUMNS) -> str | None:
    """A warning naming the samples that hold 0 in every feature (a NaN is no 0): empty droplets, failed runs. The
    network learns to call an empty profile the class most of them carry, and on sparse counts the
    out-of-distribution check reads one as typical, so their calls later rest on no measurement; the duplicate check
    leaves rows of one value out on purpose, so 50 empty cells of 12 donors trained without a word. None when there
    are none."""
    from ..centred_rows import is_sparse

    X = ds.X
    if X is None or X.shape[0] == 0 or X.shape[1] == 0:
        return None
    n = X.shape[0]
    if is_sparse(X):
        X = X.tocsr()
        stored = np.repeat(np.arange(n), np.diff(X.indptr))
        measured = np.bincount(stored[X.data != 0], minlength=n) > 0
    else:
        measured = np.zeros(n, dtype=bool)
        for start in range(0, X.shape[1], block_columns):
            measured |= (np.asarray(X[:, start:start + block_columns]) != 0).any(axis=1)
    empty = np.flatnonzero(~measured)
    if not len(empty):
        return None
    ids = getattr(ds, "ids", None)
    shown = ", ".join(repr(str(ids[i])) if ids is not None else f"row {i + 1}" for i in empty[:3])
    k = len(empty)
    return (f"{'1 sample holds' if k == 1 else f'{k:,} samples hold'} 0 in every one of the {X.shape[1]:,} features "
            f"({shown}{', …' if k > 3 else ''}): empty droplets or failed samples? The model learns to call an empty "
            "profile a class, which later samples like them get from no measurement; remove them before training")


# A feature's zeros stand apart from its other values when, on the log1p scale, its smallest non-zero value lies more
# than this many SDs of its non-zero values above 0: log2 LFQ intensities (18-32) with 0 for "not detected" lie 30 or
# more SDs above it, raw intensities (2^18 and up) 8 or more, while counts reach 1 (log1p 0.69, an SD or so above 0)
# and log-normalised cells 0.3 or less. Only features whose zeros are not rare (ZERO_MIN_SHARE of the rows read) and
# whose other values are continuous (ZERO_MIN_DISTINCT distinct values, never negative) are judged: a 0/1 column
# (pd_speech's sex) or an assay scored on a coarse grid (hepatic-injury's, 4.0-6.2 in steps of 0.1, 0 in 2 % of the
# compounds) has real zeros, and read as "missing values written as 0" on 2 of the benchmark's 13 real tables before.
# The table is named when ZERO_MIN_FEATURES such features, and half of those judged, have zeros that stand apart.
ZERO_GAP_SD = 4.0
ZERO_MIN_SHARE = 0.05
ZERO_MIN_DISTINCT = 20
ZERO_MIN_FEATURES = 3
ZERO_ROWS = 2000  # rows read (evenly spaced), as --log1p auto's skewness reads them


def zeros_as_missing_warning(ds, block_columns: int = BLOCK_COLUMNS) -> str | None:
    """A warning that the table's zeros look like missing values written as 0 (MaxQuant's proteinGroups, Perseus,
    peak tables write 0 for "not detected"): in most features holding a 0 the other values lie far from 0 (``ZERO_GAP_SD``
    on the log1p scale), as log-scale or raw intensities do. Such a 0 is read as a measurement, the lowest of all by
    far: the scaling, the fills and --log1p auto's decision take it as one (raw intensities with 0 for missing were
    left unlogged, log2 ones trained on a 0 twenty units below the feature's range), and a model trained on it later
    reads a detected sample as unlike its training rows. Read on up to ZERO_ROWS rows evenly spaced (every row of a
    smaller table; 0.6 s at 8,000 x 5,000 of zeros throughout). None for a sparse matrix, or when there is no such
    zero."""
    from ..centred_rows import is_sparse
    from .row_view import feature_block

    X = ds.X
    if X is None or is_sparse(X) or X.shape[0] == 0 or X.shape[1] == 0:
        return None
    n = X.shape[0]
    rows = slice(None) if n <= ZERO_ROWS else np.unique(np.linspace(0, n - 1, ZERO_ROWS).round().astype(np.int64))
    tested, apart = 0, []  # features holding a 0 (and enough other values), those whose 0s stand apart
    for start in range(0, X.shape[1], block_columns):
        B = feature_block(X, rows, slice(start, start + block_columns))  # (m, w) float64, our copy
        zero = np.count_nonzero(B == 0, axis=0)
        with np.errstate(invalid="ignore"):
            negative = (B < 0).any(axis=0)
        positive = np.count_nonzero(B > 0, axis=0)
        candidates = np.flatnonzero((zero >= ZERO_MIN_SHARE * B.shape[0]) & ~negative
                                    & (positive >= ZERO_MIN_DISTINCT))
        if not len(candidates):
            continue
        U = B[:, candidates]
        U[~(U > 0)] = np.nan  # the zeros (and missing values) out: the other values' spread
        U.sort(axis=0)  # NaN last: the distinct non-zero values counted as the steps between sorted neighbours
        with np.errstate(invalid="ignore"):
            distinct = 1 + np.count_nonzero(np.diff(U, axis=0) > 0, axis=0)
        continuous = distinct >= ZERO_MIN_DISTINCT
        candidates, U = candidates[continuous], U[:, continuous]
        tested += len(candidates)
        np.log1p(U, out=U)
        far = np.nanmin(U, axis=0) > ZERO_GAP_SD * np.nanstd(U, axis=0)
        apart += (start + candidates[far]).tolist()
    if len(apart) < ZERO_MIN_FEATURES or len(apart) < 0.5 * tested:
        return None
    column = apart[0]
    values = feature_block(X, slice(None), slice(column, column + 1))[:, 0]  # every row of the first, for its example
    z, values = int(np.count_nonzero(values == 0)), values[values > 0]
    k = len(apart)
    sampled = "" if n <= ZERO_ROWS else f" (of {ZERO_ROWS:,} rows read)"
    return (f"{'1 feature holds' if k == 1 else f'{k:,} of the {X.shape[1]:,} features hold'} 0 far below "
            f"{'its' if k == 1 else 'their'} other values{sampled}, e.g. {str(ds.feature_names[column])!r}: 0 in "
            f"{z:,} of {n:,} rows, its other values {values.min():.4g} – {values.max():.4g}: missing values written as "
            "0, as MaxQuant, Perseus and peak tables write 'not detected'? A 0 is read as a measured value, the lowest "
            "by far (by the scaling, --log1p auto and the fills too): if they are missing values, write them as NA or "
            "empty cells, and --impute min fills them at the detection limit")
