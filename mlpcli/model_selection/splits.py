"""Grouped splits with one leakage guard: the train/validation hold-out and the K folds of
cross-fitting and cross-validation.

No group (patient) ever has rows on both sides of any split made here; ``check_disjoint`` is the one
place that is checked, and it raises rather than asserts, so it holds under ``python -O`` too.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..config import offset_seed
from ..data import CLASSIFICATION_TASKS, Dataset, SplitLeakageError
from ..data.labels import label_key
from ..text import agreeing, count_of, quoted
from ..data.sources import short_reason
from ..errors import ConfigError, DataError

# ── the hold-out ───────────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class SplitSummary:
    """What a split did, JSON-able via dataclasses.asdict."""

    strategy: str
    n_train: int
    n_val: int
    n_groups_train: int | None
    n_groups_val: int | None
    class_counts_train: dict[str, int]  # per class (binary/multiclass) or positives per label (multilabel)
    class_counts_val: dict[str, int]
    batch_counts_train: dict[str, int]
    batch_counts_val: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def group_name(dataset: Dataset) -> str:
    return dataset.roles.group if dataset.roles is not None and dataset.roles.group else "group"


def single_group_labels(dataset: Dataset) -> list[str]:
    """A multi-label table: a warning naming the labels whose positives (or negatives) all come from one group
    (patient). No split can train on such a label and hold it out too: its held-out figures are of members that
    never saw it (a label of one patient's three samples read ROC AUC 0.14), and the model cannot tell it from the
    patient. A binary or multiclass class of one patient is an error (``validation_rows``); one label among
    several is not, the others being learnable."""
    if dataset.task != "multilabel" or dataset.y is None or dataset.groups is None:
        return []
    Y = np.asarray(dataset.y).reshape(dataset.n_samples, -1)
    groups = np.asarray(dataset.groups)
    said = []
    for j, name in enumerate(dataset.classes):
        for value, what in ((1, "positives"), (0, "negatives")):
            held = np.unique(groups[Y[:, j] == value])
            if len(held) == 1:
                said.append(f"{str(name)!r} ({what}: {group_name(dataset)} {str(held[0])!r})")
    if not said:
        return []
    return [f"a label's positives (or negatives) all come from one {group_name(dataset)}: {', '.join(said[:5])}"
            f"{' …' if len(said) > 5 else ''} — no split can train on such a label and hold it out, so its held-out "
            "figures are of networks that never saw it, and the model cannot tell it from that patient; collect more "
            "patients, or leave it out of --target"]


def require_dataset(ds, who: str) -> None:
    """A ConfigError unless ``ds`` is a data.Dataset: a table's path or a DataFrame given instead (as
    ``pipeline.train`` and ``learning_curve`` take them) failed with an AttributeError deep inside ('str' object has no
    attribute 'y'). ``who``: what takes it, e.g. "fit_model takes"."""
    if isinstance(ds, Dataset):
        return
    hint = ": read it first, pipeline.load_dataset(table, options)" if isinstance(ds, (str, os.PathLike)) or \
        type(ds).__name__ == "DataFrame" else ""
    raise ConfigError(f"{who} a data.Dataset, got a {type(ds).__name__}{hint}")


def _check_val_size(val_size: float) -> None:
    ok = isinstance(val_size, (int, float, np.floating)) and not isinstance(val_size, bool) and 0 < val_size < 1
    if not ok:
        raise ConfigError(f"--val-size must be a fraction between 0 and 1 (exclusive), got {val_size!r}")


def holdout(dataset: Dataset, val_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, SplitSummary]:
    """Sorted (train_idx, val_idx) row indices and a summary; no group ever has rows on both sides.

    Groups + classification: StratifiedGroupKFold with j of k folds held out, j / k as near val_size as the
    groups and the largest class allow (``fold_fraction``: one of round(1 / val_size) folds where that is
    val_size); the first j consecutive folds that keep every class on both sides (the first j if none do).
    Groups otherwise:
    GroupShuffleSplit. No groups: StratifiedShuffleSplit (classification) or ShuffleSplit.
    """
    require_dataset(dataset, "holdout takes")
    _check_val_size(val_size)
    if dataset.n_samples < 2:
        raise DataError(f"{dataset.n_samples} sample(s) cannot be split into training and validation rows")
    classify = dataset.task in CLASSIFICATION_TASKS and dataset.y is not None
    try:
        if dataset.groups is not None:
            train, val, strategy = (_grouped_classification_split if classify else _grouped_shuffle_split)(
                dataset, val_size, seed)
        else:
            train, val, strategy = _ungrouped_split(dataset, val_size, seed, classify)
    except ValueError as exc:  # a constraint of sklearn's splitters not anticipated by the checks below
        raise DataError(f"cannot split the data with --val-size {val_size:g}: {short_reason(exc)}") from None
    train, val = np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))
    check_disjoint(dataset, train, val, "the validation split")
    summary = _summary(_side_counts(dataset, train), _side_counts(dataset, val), strategy)
    return train, val, summary


def holdout_keeping_scarce(dataset: Dataset, val_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train_idx, val_idx) as ``holdout`` gives them, except that a class too scarce to be on both
    sides — one sample, or with groups one group — trains whole (with groups: every group holding one of its
    samples) instead of refusing the data; the other rows are held out as ``holdout`` would (whole groups,
    stratified where they allow it, else at random), about ``val_size`` of all rows.

    For a fit that must see every class and cannot ask its caller to merge one: a scikit-learn estimator's
    early stopping inside someone's cross-validation loop, where a rare class of a few patients is left with
    one in some folds' training part. ``train`` refuses such data instead, naming the class. Raises
    DataError when nothing but scarce classes is left to hold out."""
    classify = dataset.task in CLASSIFICATION_TASKS and dataset.y is not None and np.ndim(dataset.y) == 1
    strata = np.asarray(dataset.y, dtype=np.int64) if classify else None
    groups = dataset.groups
    if strata is not None:
        units = groups if groups is not None else np.arange(len(strata))
        scarce = np.array([len(np.unique(units[strata == c])) < 2 for c in range(int(strata.max()) + 1)])
        keep = scarce[strata]
        if groups is not None:
            keep = np.isin(groups, groups[keep])  # whole groups: no group on both sides
    else:
        keep = np.zeros(dataset.n_samples, dtype=bool)
    if not keep.any():
        try:
            train, val, _ = holdout(dataset, val_size, seed)
            return train, val
        except DataError:
            if groups is not None or strata is None:
                raise
    pool, alone = np.flatnonzero(~keep), np.flatnonzero(keep)
    n_units = len(np.unique(groups[pool])) if groups is not None else len(pool)
    if n_units < 2:
        if groups is not None:
            raise DataError(f"cannot hold out whole groups: a class whose samples all come from one group (of "
                            f"{group_name(dataset)!r}) keeps it in training, and fewer than 2 other groups are left "
                            "to hold out")
        pool, alone = np.arange(dataset.n_samples), np.zeros(0, dtype=np.int64)  # singletons only: at random
    n = dataset.n_samples
    share = min(max(val_size * n, 1.0), len(pool) - 1.0) / len(pool)  # val_size of all rows, from the pool
    dummy = np.empty((len(pool), 0))  # the splitters need only the rows' count, classes and groups
    part = Dataset(X=dummy, y=None if strata is None else strata[pool], feature_names=[], task=dataset.task,
                   classes=dataset.classes, groups=None if groups is None else groups[pool], roles=dataset.roles)
    try:
        train, val, _ = holdout(part, share, seed)
    except DataError:  # classes too small to stratify: at random
        plain = Dataset(X=dummy, y=None, feature_names=[], task=None, classes=[],
                        groups=part.groups, roles=dataset.roles)
        train, val, _ = holdout(plain, share, seed)
    train, val = np.sort(np.concatenate([pool[train], alone])), pool[val]
    check_disjoint(dataset, train, val, "the validation split")
    return train, val


def check_disjoint(dataset: Dataset, a: np.ndarray, b: np.ndarray, where: str) -> None:
    """The leakage guard: rows ``a`` and ``b`` of ``dataset`` share no group (patient)."""
    if dataset.groups is None:
        return
    ga, gb = dataset.groups[a], dataset.groups[b]
    shared = np.intersect1d(ga, gb)
    if ga.dtype.kind == "f" and np.isnan(ga).any() and np.isnan(gb).any():  # NaN never equals NaN in intersect1d
        shared = np.append(shared, np.nan)
    if shared.size:  # explicit raise, not assert: must hold under python -O too
        raise SplitLeakageError(f"internal error: groups on both sides of {where}: {quoted(shared)}")


def _class_label(dataset: Dataset, index: int) -> str:
    return label_key(dataset.classes[index]) if index < len(dataset.classes) else str(index)


def fold_fraction(val_size: float, most_folds: int) -> tuple[int, int]:
    """(k, j): hold out j of k grouped folds for a validation share of ``val_size``: the j / k nearest to it
    with 2 <= k <= ``most_folds`` (ties: the fewest folds). 1 / round(1 / v) as before wherever that is
    within 0.01 of v (0.1, 0.2, 0.25, 1/3, 0.5, ...); 0.4 is 2 of 5 folds and 0.8 4 of 5, where one fold of
    round(1 / v) held out 50 % and 20 %."""
    k0 = max(2, round(1 / val_size))
    if k0 <= most_folds and abs(1 / k0 - val_size) <= 0.01 + 1e-9:
        return k0, 1
    best = None
    for k in range(2, max(2, most_folds) + 1):
        j = min(k - 1, max(1, round(val_size * k)))
        err = abs(j / k - val_size)
        if best is None or err < best[0] - 1e-9:
            best = (err, k, j)
    return best[1], best[2]


def _grouped_classification_split(dataset: Dataset, val_size: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    groups, y, gname = dataset.groups, dataset.y, group_name(dataset)
    n_groups = len(np.unique(groups))
    largest = int(np.bincount(y).max())
    _check_enough_groups(n_groups, gname)
    if largest < 2:  # sklearn refuses when every class is smaller than the number of folds
        raise DataError("too few samples for a grouped --val-size split: every class has 1 sample; add data")
    # Each class must occur in >= 2 groups, else whole groups cannot place it on both sides (said first: no
    # --val-size helps then, where the share's message below would suggest one)
    for c in np.unique(y):
        members = groups[y == c]
        n_class_groups = len(np.unique(members))
        if n_class_groups < 2:
            raise DataError(
                f"class {_class_label(dataset, c)!r} has {count_of(len(members), 'sample')}, "
                f"{'all ' * (len(members) != 1)}from 1 group in {gname!r}; "
                "it cannot appear on both the training and validation sides — merge or drop the class, or add "
                "samples from more groups"
            )
    # the folds cannot outnumber the groups, nor the largest class (sklearn refuses then)
    n_splits, n_val = fold_fraction(val_size, min(n_groups, largest, max(10, round(1 / min(val_size, 1 - val_size)))))
    nearest = n_val / n_splits
    if abs(nearest - val_size) > 0.05 + 1e-9:  # the share asked for is out of reach: say what is within it
        why = (f"{n_groups} groups in {gname!r} are too few" if n_groups <= largest else
               f"the largest class has {largest} samples, too few")
        raise DataError(f"{why} for --val-size {val_size:g}: the nearest share whole groups allow is {n_val} of "
                        f"{n_splits} folds ({nearest:.2f}); use --val-size {nearest:.2f}, or add data")
    folds = [va for _, va in stratified_group_folds(y, groups, n_splits, seed) if len(va)]
    if len(folds) < 2:
        raise DataError(f"cannot form a grouped split of {n_groups} groups in {gname!r}; add data or raise --val-size")
    n_val = min(n_val, len(folds) - 1)
    present = np.unique(y)

    def sides(start: int):  # n_val consecutive folds (cyclically) from fold `start` as validation
        chosen = [(start + i) % len(folds) for i in range(n_val)]
        val = np.concatenate([folds[i] for i in chosen])
        return np.setdiff1d(np.arange(len(y)), val), val, chosen

    train, val, chosen = next((s for s in map(sides, range(len(folds)))
                               if np.isin(present, y[s[0]]).all() and np.isin(present, y[s[1]]).all()), None) or sides(0)
    which = (f"fold {chosen[0] + 1}" if n_val == 1 else "folds " + ", ".join(str(i + 1) for i in chosen)
             if n_val <= 4 else f"folds {chosen[0] + 1}–{chosen[-1] + 1}" if chosen[-1] > chosen[0] else
             f"{n_val} folds from fold {chosen[0] + 1}")
    strategy = f"StratifiedGroupKFold by {gname} ({which} of {len(folds)} as validation)"
    if abs(n_val / len(folds) - val_size) > 0.02 + 1e-9:  # few groups (or a small largest class): the nearest share
        strategy += (f"; {n_val} of {len(folds)} folds is the nearest to --val-size {val_size:g} that {n_groups} "
                     f"groups allow")
    return train, val, strategy


def _check_enough_groups(n_groups: int, gname: str) -> None:
    """A grouped split needs two groups at least (how many a share needs, the split itself says)."""
    if n_groups < 2:
        raise DataError(f"only 1 group in {gname!r}; a grouped split needs at least 2 — add data, or pass "
                        "--no-group if the samples are independent")


def _grouped_shuffle_split(dataset: Dataset, val_size: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import GroupShuffleSplit

    groups, gname = dataset.groups, group_name(dataset)
    n_groups = len(np.unique(groups))
    _check_enough_groups(n_groups, gname)
    n_val_groups = math.ceil(val_size * n_groups)
    if n_val_groups >= n_groups:
        raise DataError(f"--val-size {val_size:g} of {n_groups} groups in {gname!r} leaves no training group; "
                        "lower --val-size or add data")
    splitter = GroupShuffleSplit(n_splits=1, test_size=val_size, random_state=seed)
    train, val = next(splitter.split(np.zeros((len(groups), 1)), groups=groups))
    return train, val, f"GroupShuffleSplit by {gname}"


def _ungrouped_split(dataset: Dataset, val_size: float, seed: int, classify: bool) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    n = dataset.n_samples
    n_val = math.ceil(val_size * n)  # sklearn's rounding for a fractional test_size
    n_train = n - n_val
    if n_train < 1:
        raise DataError(f"--val-size {val_size:g} of {n} samples leaves no training rows; lower --val-size")
    X_dummy = np.zeros((n, 1))
    if not classify:
        train, val = next(ShuffleSplit(n_splits=1, test_size=val_size, random_state=seed).split(X_dummy))
        return train, val, "ShuffleSplit (no group column)"
    y = dataset.y
    counts = np.bincount(y)
    for c in np.flatnonzero((counts > 0) & (counts < 2)):
        raise DataError(
            f"class {_class_label(dataset, c)!r} has 1 sample; it cannot appear on both the training and "
            "validation sides — merge or drop the class, or add data"
        )
    n_present = int((counts > 0).sum())
    if min(n_val, n_train) < n_present:
        side = "validation" if n_val < n_train else "training"
        raise DataError(f"--val-size {val_size:g} gives {count_of(min(n_val, n_train), side + ' sample')}, fewer "
                        f"than the {n_present} classes; {'raise' if side == 'validation' else 'lower'} --val-size or "
                        "add data")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=val_size, random_state=seed)
    train, val = next(splitter.split(X_dummy, y))
    train, val = _cover_every_class(train, val, y, seed)
    return train, val, "StratifiedShuffleSplit (no group column)"


def _cover_every_class(train: np.ndarray, val: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Swap single samples so every class with >= 2 samples is on both sides.

    StratifiedShuffleSplit rounds class shares, so a class of 2-3 samples can land entirely on one side;
    a rare class missing from validation makes its metrics silently absent. Each swap trades a sample of
    the missing class for one of the side's most common class (>= 2 there), so sizes and coverage of the
    other classes are kept.
    """
    rng = np.random.default_rng(seed)
    train, val = train.copy(), val.copy()
    for c in np.flatnonzero(np.bincount(y) >= 2):
        for src, dst in ((train, val), (val, train)):
            if np.any(y[dst] == c):
                continue
            counts = np.bincount(y[dst], minlength=c + 1)
            donor = int(np.argmax(counts))
            if counts[donor] < 2:  # cannot happen when dst holds at least as many samples as classes
                continue
            i = rng.choice(np.flatnonzero(y[src] == c))
            j = rng.choice(np.flatnonzero(y[dst] == donor))
            src[i], dst[j] = dst[j], src[i]
    return train, val


@dataclass
class _Side:
    """Counts for one side of a split."""

    n: int
    n_groups: int | None
    classes: dict[str, int]  # samples per class, or positives per label (``multilabel``)
    batches: dict[str, int]
    multilabel: bool = False


def _side_counts(dataset: Dataset, idx: np.ndarray | None = None) -> _Side:
    idx = np.arange(dataset.n_samples) if idx is None else idx
    classes: dict[str, int] = {}
    if dataset.y is not None and dataset.task in CLASSIFICATION_TASKS:
        counts = np.bincount(dataset.y[idx], minlength=len(dataset.classes))
        classes = {label_key(c): int(counts[i]) for i, c in enumerate(dataset.classes)}
    elif dataset.y is not None and dataset.task == "multilabel":
        positives = dataset.y[idx].sum(axis=0)
        classes = {str(name): int(positives[j]) for j, name in enumerate(dataset.classes)}
    batches: dict[str, int] = {}
    if dataset.batches is not None:
        batches = {str(b): int(k) for b, k in sorted(Counter(dataset.batches[idx]).items())}
    n_groups = None if dataset.groups is None else int(len(np.unique(dataset.groups[idx])))
    return _Side(n=int(len(idx)), n_groups=n_groups, classes=classes, batches=batches,
                 multilabel=dataset.task == "multilabel")


def _one_side_only(kind: str, key: str, count: int, side: str, multilabel: bool) -> str:
    """The warning for a class (a label's positives, a batch) found on one ``side`` of a split only. A multi-label
    label is in every row, present or absent: "class 'C' is only in the training rows (4 samples)" said of a label
    whose 4 positives all trained, as if the label were a class of 4 samples."""
    where = f"only in the {side} rows"
    if kind == "class" and multilabel:
        what = f"label {key!r} has positives {where} ({count} positive{'s' if count != 1 else ''})"
    else:
        what = f"{kind} {key!r} is {where} ({count_of(count, 'sample')})"
    if side == "training":
        return f"{what}; " + ("validation metrics do not cover it" if kind == "class" else "validation does not test it")
    return f"{what}; the model never trains on it"


def _summary(train: _Side, val: _Side, strategy: str) -> SplitSummary:
    warn: list[str] = []
    multilabel = train.multilabel or val.multilabel
    for kind, tr, va in (("class", train.classes, val.classes), ("batch", train.batches, val.batches)):
        for key in list(dict.fromkeys([*tr, *va])):
            k_tr, k_va = tr.get(key, 0), va.get(key, 0)
            if k_tr and not k_va:
                warn.append(_one_side_only(kind, key, k_tr, "training", multilabel))
            elif k_va and not k_tr:
                warn.append(_one_side_only(kind, key, k_va, "validation", multilabel))
    return SplitSummary(
        strategy=strategy, n_train=train.n, n_val=val.n, n_groups_train=train.n_groups,
        n_groups_val=val.n_groups, class_counts_train=train.classes, class_counts_val=val.classes,
        batch_counts_train=train.batches, batch_counts_val=val.batches, warnings=warn,
    )


def summarize_folds(dataset: Dataset, strategy: str, held_out: np.ndarray | None = None,
                    n_members: int | None = None) -> SplitSummary:
    """Summary for cross-fitting: every row trains some members and is held out by exactly one, so both
    sides hold all rows. ``held_out`` (row indices) and ``n_members``: what an interrupted run kept, its first
    members, whose held-out rows alone were scored: the validation side is those rows, the training side the
    rows that trained a kept member (all but the held-out ones for one member, every row for two or more)."""
    every = _side_counts(dataset)
    if held_out is None or len(held_out) == dataset.n_samples:
        return _summary(every, every, strategy)
    trained = np.setdiff1d(np.arange(dataset.n_samples), held_out) if n_members == 1 else None
    return _summary(_side_counts(dataset, trained), _side_counts(dataset, np.asarray(held_out)), strategy)


def summarize_split(train: Dataset, val: Dataset, strategy: str = "explicit validation table") -> SplitSummary:
    """Summary for a validation table given explicitly (--val-data); a group in both tables is an error."""
    if train.groups is not None and val.groups is not None:
        shared = np.intersect1d(train.groups, val.groups)
        if shared.size:
            raise DataError(
                f"{count_of(shared.size, 'group')} in {group_name(train)!r} "
                f"{agreeing(shared.size, 'appears', 'appear')} in both the training and the --val-data table: "
                f"{quoted(shared)}; a patient on both sides inflates validation scores — remove "
                f"{agreeing(shared.size, 'it', 'them')} from one table"
            )
    return _summary(_side_counts(train), _side_counts(val), strategy)


# ── K folds ────────────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Fold:
    repeat: int  # 0-based
    fold: int  # 0-based
    train: np.ndarray  # (n_train,) sorted row indices
    test: np.ndarray  # (n_test,) sorted row indices
    held_out: str | None = None  # leave-batch-out: the batches of the test part ("B1+B2")


def class_label(ds: Dataset, k: int) -> str:
    return str(ds.classes[k]) if k < len(ds.classes) else str(k)


def _workable_folds(m: int, outer: bool) -> int:
    """The most folds a class of ``m`` groups (samples) allows: m; for the outer folds of cv and tune, whose every
    training part trains a model that holds some of each class out again, the most F leaving m - ceil(m / F) >= 2
    of them in each training part (0: none)."""
    if not outer:
        return m if m >= 2 else 0
    return max((f for f in range(2, m + 1) if m - -(-m // f) >= 2), default=0)


def check_fold_count(ds: Dataset, n_folds: int, flag: str, outer: bool = False) -> None:
    """One-line errors, naming ``flag``, for fold counts the data cannot support (before any fit). ``outer``: the
    folds of cv or tune, whose training parts are split again (the advice then names a count that works there)."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"{flag} must be a whole number >= 2, got {n_folds!r}")
    classify = ds.task in CLASSIFICATION_TASKS
    if ds.groups is not None:
        gname = group_name(ds)
        n_groups = len(np.unique(ds.groups))
        if n_groups < 2:  # ("use --folds 1 or fewer" led to "a grouped split needs at least 2")
            raise DataError(f"{flag} {n_folds}: the table has one group in {gname!r}, and a grouped split needs 2 or "
                            "more; give samples of more patients, or --no-group if its samples are independent")
        if n_folds > n_groups:
            raise DataError(f"{flag} {n_folds} is more than the {n_groups} groups in {gname!r}; each test fold "
                            f"needs whole groups — use {flag} {n_groups} or fewer")
        if classify:
            # the class in the fewest groups: the first one short of the folds gave a count the next one refused
            m, k = min((len(np.unique(ds.groups[ds.y == k])), k) for k in np.unique(ds.y))
            if m < n_folds:
                most = _workable_folds(m, outer)  # none: no fold count can hold the class
                fewer = f"use {flag} {most} or fewer, or " if most >= 2 else ""
                raise DataError(f"{flag} {n_folds}: class {class_label(ds, k)!r} has {m} group(s) in {gname!r}, "
                                f"fewer than the folds, so some test folds would lack it — {fewer}merge the class "
                                "or leave its samples out")
        return
    if n_folds > ds.n_samples:
        raise DataError(f"{flag} {n_folds} is more than the {ds.n_samples} samples; use {flag} {ds.n_samples} or fewer")
    if classify:
        counts = np.bincount(ds.y, minlength=len(ds.classes))
        short = np.flatnonzero((counts > 0) & (counts < n_folds))
        for k in short[np.argsort(counts[short], kind="stable")][:1]:  # the rarest class (see above)
            most = _workable_folds(int(counts[k]), outer)
            fewer = f"use {flag} {most} or fewer, or " if most >= 2 else ""
            raise DataError(f"{flag} {n_folds}: class {class_label(ds, k)!r} has {counts[k]} sample(s), fewer than the "
                            f"folds, so some test folds would lack it — {fewer}merge the class or leave its samples out")


def max_folds(ds: Dataset) -> int:
    """The most grouped (stratified) folds ``ds`` supports: every test fold can hold whole groups and,
    for classification, every class (each class needs as many groups — or samples without groups — as
    there are folds)."""
    classify = ds.task in CLASSIFICATION_TASKS and ds.y is not None
    if ds.groups is not None:
        limit = len(np.unique(ds.groups))
        if classify:
            limit = min([limit, *(len(np.unique(ds.groups[ds.y == k])) for k in np.unique(ds.y))])
        return int(limit)
    if classify:
        counts = np.bincount(ds.y)
        return int(counts[counts > 0].min())
    return int(ds.n_samples)


def _shuffled_group_kfold(groups: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold's balancing (largest groups first, each to the lightest fold) with ties broken by a
    seeded shuffle, so repeats differ (sklearn's GroupKFold gained ``shuffle`` only in 1.6)."""
    rng = np.random.default_rng(seed)
    uniq, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = rng.permutation(len(uniq))
    order = order[np.argsort(-sizes[order], kind="stable")]
    load = np.zeros(n_folds, dtype=np.int64)
    fold_of = np.empty(len(uniq), dtype=np.int64)
    for g in order:
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    row_fold = fold_of[inverse]
    return [(np.flatnonzero(row_fold != f), np.flatnonzero(row_fold == f)) for f in range(n_folds)]


def stratified_group_folds(y: np.ndarray, groups: np.ndarray, n_folds: int,
                           seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's ``StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)``: the same folds as
    its 1.8 release, one (train, test) pair of sorted row indices per fold.

    y: (n,) class codes; groups: (n,) group labels. Groups, shuffled by ``RandomState(seed)``, are taken in
    decreasing spread of their class counts (a stable sort, so the shuffle breaks ties) and each goes to
    the fold where adding it leaves the per-class fold shares least spread (the mean over classes of the
    SD over folds of count / class total); among equally good folds (``np.isclose``), the first with the
    fewest rows.

    Why not sklearn's class: before 1.8 its shuffle desynchronised groups from their counts, giving folds
    that were not stratified (scikit-learn PR #32540), so the folds, and the models, depended on the
    installed version; and it scores each fold in a Python loop, 0.6 s for 4,000 patients. Here the folds
    are scored together; each score is computed by the same NumPy reductions in the same order, so the
    choices are identical bit for bit (tested against scikit-learn).
    """
    y, groups = np.asarray(y), np.asarray(groups)
    _, y_inv, y_cnt = np.unique(y, return_inverse=True, return_counts=True)
    _, groups_inv, groups_cnt = np.unique(groups, return_inverse=True, return_counts=True)
    y_inv, groups_inv = y_inv.reshape(-1), groups_inv.reshape(-1)
    n_groups, n_classes = len(groups_cnt), len(y_cnt)
    counts = np.bincount(groups_inv * n_classes + y_inv, minlength=n_groups * n_classes)
    counts = counts.reshape(n_groups, n_classes).astype(np.float64)  # (groups, classes): rows of each class
    perm = np.arange(n_groups)
    np.random.RandomState(seed).shuffle(perm)
    counts = counts[perm]
    inv_perm = np.empty_like(perm)
    inv_perm[perm] = np.arange(n_groups)
    groups_inv = inv_perm[groups_inv]
    order = np.argsort(-np.std(counts, axis=1), kind="stable")

    per_fold = np.zeros((n_folds, n_classes))  # (folds, classes): rows of each class in each fold
    trial = np.empty((n_folds, n_folds, n_classes))  # trial[i]: per_fold with the group added to fold i
    eye = np.eye(n_folds).reshape(n_folds, n_folds, 1)
    added = np.empty_like(trial)  # added[i, f]: the group's counts where f == i, else 0 (x + 0.0 is x)
    totals = y_cnt.reshape(1, 1, -1)
    fold_of = np.empty(n_groups, dtype=np.int64)
    # np.mean(np.std(trial / totals, axis=1), axis=1) as NumPy computes it (the same ufuncs, reductions and
    # layouts, so the same bits), into arrays made once: the wrappers' overhead was most of the 0.15 s that
    # 4,000 patients took
    shares = np.empty_like(trial)
    centre = np.empty((n_folds, 1, n_classes))
    sd = np.empty((n_folds, n_classes))
    spread = np.empty(n_folds)
    sizes = [0.0] * n_folds  # rows in each fold: whole numbers, exact whatever the order they are summed in
    group_rows = counts.sum(axis=1).tolist()
    for g in order:
        np.multiply(eye, counts[g], out=added)
        np.add(per_fold, added, out=trial)
        np.true_divide(trial, totals, out=shares)
        np.add.reduce(shares, axis=1, keepdims=True, out=centre)
        np.true_divide(centre, n_folds, out=centre, casting="unsafe")
        np.subtract(shares, centre, out=shares)
        np.multiply(shares, shares, out=shares)
        np.add.reduce(shares, axis=1, out=sd)
        np.true_divide(sd, n_folds, out=sd, casting="unsafe")
        np.sqrt(sd, out=sd)
        np.add.reduce(sd, axis=1, out=spread)
        np.true_divide(spread, n_classes, out=spread, casting="unsafe")
        best, best_spread, best_size = 0, math.inf, math.inf
        for i, (value, size) in enumerate(zip(spread.tolist(), sizes)):
            # sklearn's test: value < best, or np.isclose(value, best) (|a - b| <= 1e-8 + 1e-5 |b|) and fewer rows
            close = best_spread != math.inf and abs(value - best_spread) <= 1e-8 + 1e-5 * abs(best_spread)
            if value < best_spread or (close and size < best_size):
                best, best_spread, best_size = i, value, size
        per_fold[best] += counts[g]
        sizes[best] += group_rows[g]
        fold_of[g] = best
    row_fold = fold_of[groups_inv]
    return [(np.flatnonzero(row_fold != f), np.flatnonzero(row_fold == f)) for f in range(n_folds)]


def kfold(ds: Dataset, n_folds: int = 5, repeats: int = 1, seed: int = 0,
               flag: str = "--folds", outer: bool = False) -> tuple[list[Fold], str]:
    """Folds for ``repeats`` shuffles (repeat r uses ``seed + r``) and a description of the strategy.

    Groups: StratifiedGroupKFold for classification, a shuffled GroupKFold otherwise; no group is
    ever in both the training and the test part of a fold. No groups: StratifiedKFold / KFold.
    Multi-label targets are not stratified (no single class per sample).
    """
    require_dataset(ds, "kfold takes")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ConfigError(f"--repeats must be a whole number >= 1, got {repeats!r}")
    check_fold_count(ds, n_folds, flag, outer)
    classify = ds.task in CLASSIFICATION_TASKS
    dummy = np.zeros((ds.n_samples, 1))
    out: list[Fold] = []
    for r in range(repeats):
        s = offset_seed(seed, r)
        if ds.groups is not None and classify:
            pairs = stratified_group_folds(ds.y, ds.groups, n_folds, s)
            strategy = f"StratifiedGroupKFold by {group_name(ds)}"
        elif ds.groups is not None:
            pairs = _shuffled_group_kfold(ds.groups, n_folds, s)
            strategy = f"GroupKFold by {group_name(ds)} (shuffled)"
        elif classify:
            from sklearn.model_selection import StratifiedKFold  # (imported where used: ~1 s, grouped tables need none)

            pairs = list(StratifiedKFold(n_folds, shuffle=True, random_state=s).split(dummy, ds.y))
            strategy = "StratifiedKFold (no group column)"
        else:
            from sklearn.model_selection import KFold

            pairs = list(KFold(n_folds, shuffle=True, random_state=s).split(dummy))
            strategy = "KFold (no group column)"
        for f, (tr, te) in enumerate(pairs):
            tr, te = np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)
            if len(tr) == 0 or len(te) == 0:
                raise DataError(f"{flag} {n_folds}: fold {f + 1} has no {'test' if len(te) == 0 else 'training'} "
                                f"rows; use fewer folds")
            check_disjoint(ds, tr, te, f"fold {f + 1}")
            out.append(Fold(r, f, tr, te))
    if repeats > 1:
        strategy += f", {n_folds} folds × {repeats} repeats"
    else:
        strategy += f", {n_folds} folds"
    return out, strategy


# ── leave one batch out ────────────────────────────────────────────────────────────────────────────────────


def batch_components(batches: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, list[list[str]]]:
    """The connected components of batches linked by patients: two batches are in one component when a
    patient has samples in both (directly or through a chain of such patients). Returns each row's component
    (n,) int64 and each component's batches (sorted), components ordered by their first batch."""
    names, b = np.unique(np.asarray(batches, dtype=str), return_inverse=True)
    b = b.reshape(-1)
    parent = list(range(len(names)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if groups is not None:
        _, g = np.unique(np.asarray(groups), return_inverse=True)
        g = g.reshape(-1)
        first: dict[int, int] = {}
        for gi, bi in zip(g.tolist(), b.tolist()):  # union each patient's batches with the first one seen
            root = first.setdefault(gi, bi)
            ra, rb = find(root), find(bi)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(len(names))])
    order = {r: k for k, r in enumerate(sorted(set(roots.tolist())))}
    component = np.array([order[r] for r in roots])[b]
    members = [[str(names[i]) for i in range(len(names)) if order[roots[i]] == k] for k in range(len(order))]
    return component.astype(np.int64), members


def leave_batch_out(ds: Dataset) -> tuple[list[Fold], str]:
    """One fold per batch held out (``cv --leave-batch-out``): its test part is the batch's rows, and with
    them every batch connected to it through a patient (a patient whose samples span batches goes with all
    of them, so no patient is on both sides). Raises a ConfigError without a batch column and a DataError
    when fewer than two components exist."""
    if ds.batches is None:
        raise ConfigError("--leave-batch-out needs a batch column (--batch NAME, default 'batch')")
    n_batches = len(np.unique(ds.batches))
    if n_batches < 2:
        name = ds.roles.batch if ds.roles is not None and ds.roles.batch else None
        column = f"the batch column {name!r} (--batch)" if name else "the batch column (--batch)"
        raise DataError(f"--leave-batch-out: {column} holds one batch ({quoted(np.unique(ds.batches))}); holding "
                        "batches out needs at least two (--batch NAME names another column)")
    component, members = batch_components(ds.batches, ds.groups)
    if len(members) < 2:
        raise DataError(f"--leave-batch-out: the {n_batches} batches are all linked through "
                        f"patients who span them, so no batch can be held out with its patients whole")
    folds = []
    for k, names in enumerate(members):
        te = np.flatnonzero(component == k).astype(np.int64)
        tr = np.flatnonzero(component != k).astype(np.int64)
        check_disjoint(ds, tr, te, f"held-out batch {'+'.join(names)}")
        folds.append(Fold(0, k, tr, te, held_out="+".join(names)))
    joined = sum(len(m) > 1 for m in members)
    strategy = (f"leave one batch out ({len(members)} folds"
                + (f"; {joined} of them {'holds' if joined == 1 else 'hold'} several batches linked by patients"
                   if joined else "") + ")")
    return folds, strategy


def batch_spanning_groups(ds: Dataset) -> list[tuple[str, list[str]]]:
    """The groups (patients) with samples in more than one batch, each with its batches (sorted): what ties
    batches into one ``leave_batch_out`` fold. Empty without groups or batches."""
    if ds.groups is None or ds.batches is None:
        return []
    group_names, g = np.unique(np.asarray(ds.groups), return_inverse=True)
    batch_names, b = np.unique(np.asarray(ds.batches, dtype=str), return_inverse=True)
    pairs = np.unique(np.stack([g.reshape(-1), b.reshape(-1)], axis=1), axis=0)  # (n_pairs, 2): each group's batches
    spanning = np.flatnonzero(np.bincount(pairs[:, 0]) > 1)
    return [(str(group_names[k]), [str(batch_names[j]) for j in pairs[pairs[:, 0] == k, 1]]) for k in spanning]


def check_training_parts(ds: Dataset, folds: list[Fold], flag: str = "--folds") -> None:
    """Before any fit: every class in a fold's training part must be there in 2 groups (rows without a group
    column) at least, since the fold's model holds some of them out for its early stopping (``train``'s
    hold-out or its cross-fitted members), which needs each class on both sides. A class with one patient
    in a fold's training part failed inside the fit with "class 'X' has 2 samples, all from 1 group",
    which names neither the fold nor a remedy. A class with no training rows at all is left to the
    fold warnings (the model cannot predict it; its test samples count as errors)."""
    if ds.task not in CLASSIFICATION_TASKS or ds.y is None:
        return
    grouped = ds.groups is not None
    units = ds.groups if grouped else np.arange(ds.n_samples)
    unit = f"group in {group_name(ds)!r}" if grouped else "sample"
    repeated = len({f.repeat for f in folds}) > 1
    fewest = _fewest_units(ds, units)
    for f in folds:
        y, u = ds.y[f.train], units[f.train]
        short = [k for k in np.unique(y) if len(np.unique(u[y == k])) < 2]
        for k in sorted(short, key=lambda k: len(np.unique(units[ds.y == k])))[:1]:  # the rarest: the real blocker
            total = len(np.unique(units[ds.y == k]))
            if f.held_out is not None:
                where, fix = f"held-out batch {f.held_out}", ""
            else:
                where = f"repeat {f.repeat + 1} fold {f.fold + 1}" if repeated else f"fold {f.fold + 1}"
                n_folds = len({g.fold for g in folds})
                # only a count every class allows: 120 classes of 2-3 samples were told "use --folds 3" for a class
                # of 3, which the classes of 2 then refused as "fewer than the folds"
                fix = (f"use {flag} {total} (more folds leave more of its {unit.split(' ')[0]}s to train on), or "
                       if 3 <= total <= fewest and n_folds < total else "")
            raise DataError(f"{where}: class {class_label(ds, k)!r} has 1 {unit} in the fold's training part (of its "
                            f"{total}), but the fold's model holds some of every class out for early stopping, "
                            f"so it needs 2 — {fix}merge the class or leave its samples out")


def _fewest_units(ds: Dataset, units: np.ndarray) -> int:
    """The groups (samples, without a group column) of the class that has the fewest: the most folds that
    ``check_fold_count`` lets every class through, so the most that ``check_training_parts`` may advise."""
    return min(len(np.unique(units[ds.y == k])) for k in np.unique(ds.y))


def crossing_parts(ds: Dataset, held_out: list[np.ndarray], n_parts: int = 2, seed: int = 0) -> np.ndarray:
    """Each of ``held_out`` (the held-out rows of each fold, indices into ``ds``) cut into ``n_parts`` parts: (n,)
    int8, the part of each held-out row, -1 for rows no fold holds out. A patient's rows (``ds.groups``) stay in one part, and
    each class is spread evenly over them (a patient counted under its most common class; multi-label and regression
    targets by size alone): units go one by one, larger first within a class in a random order drawn from ``seed``,
    to the part with the fewest rows of their class (then the fewest rows). A fold of fewer patients than
    ``n_parts`` leaves parts empty.

    The parts are what the cross-fitted held-out estimate chooses on (``model_selection.crossed``): a choice made on
    the rest (the early-stopping epoch, the architecture) scores each part."""
    out = np.full(ds.n_samples, -1, dtype=np.int8)
    y = None
    if ds.task in ("binary", "multiclass") and ds.y is not None:
        y = np.asarray(ds.y).reshape(-1).astype(np.int64)
    for k, rows in enumerate(held_out):
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            continue
        rng = np.random.default_rng(np.random.SeedSequence([offset_seed(seed, k), 3]))
        if ds.groups is not None:
            _, unit = np.unique(np.asarray(ds.groups)[rows], return_inverse=True)
        else:
            unit = np.arange(len(rows))
        n_units = int(unit.max()) + 1
        size = np.bincount(unit, minlength=n_units)
        if y is not None:  # each unit's most common class
            counts = np.zeros((n_units, int(y.max()) + 1), dtype=np.int64)
            np.add.at(counts, (unit, y[rows]), 1)
            stratum = counts.argmax(axis=1)
        else:
            stratum = np.zeros(n_units, dtype=np.int64)
        order = rng.permutation(n_units)
        order = order[np.lexsort((-size[order], stratum[order]))]  # by class, larger first, else random
        out[rows] = (_single_parts(order, stratum, n_parts) if (size == 1).all() else
                     _greedy_parts(order, stratum, size, n_parts))[unit]
    return out


def _greedy_parts(order: np.ndarray, stratum: np.ndarray, size: np.ndarray, n_parts: int) -> np.ndarray:
    """Units in ``order`` each to the part with the fewest rows of its stratum, then the fewest rows (the first of
    equals): (n_units,) int8."""
    by_class = np.zeros((n_parts, int(stratum.max()) + 1), dtype=np.int64)
    total = np.zeros(n_parts, dtype=np.int64)
    part = np.empty(len(order), dtype=np.int8)
    for u in order:
        s = stratum[u]
        j = min(range(n_parts), key=lambda p: (by_class[p, s], total[p]))
        part[u] = j
        by_class[j, s] += size[u]
        total[j] += size[u]
    return part


def _single_parts(order: np.ndarray, stratum: np.ndarray, n_parts: int) -> np.ndarray:
    """``_greedy_parts`` for units of one row each, a stratum at a time (a Python step per unit took 0.5 s for 80,000
    ungrouped rows): within a stratum the greedy rule deals its units round the parts in the order of their rows so
    far (then their index), as the parts' totals never differ by more than one."""
    part = np.empty(len(order), dtype=np.int8)
    total = np.zeros(n_parts, dtype=np.int64)
    ordered = stratum[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(order)]):
        cycle = np.lexsort((np.arange(n_parts), total))  # the fewest rows first, then the lowest index
        dealt = cycle[np.arange(b - a) % n_parts]
        part[order[a:b]] = dealt
        total += np.bincount(dealt, minlength=n_parts)
    return part
