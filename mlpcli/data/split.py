"""Grouped, stratified train/validation splits with a leakage guard; class weights; checksums."""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .io import _short_reason
from ._common import CLASSIFICATION_TASKS, SplitLeakageError, _label_key, _quoted
from .dataset import Dataset

# ── splits ───────────────────────────────────────────────────────────────────────────────────────────────


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


def _group_name(dataset: Dataset) -> str:
    return dataset.roles.group if dataset.roles is not None and dataset.roles.group else "group"


def _check_val_size(val_size: float) -> None:
    ok = isinstance(val_size, (int, float, np.floating)) and not isinstance(val_size, bool) and 0 < val_size < 1
    if not ok:
        raise ConfigError(f"--val-size must be a fraction between 0 and 1 (exclusive), got {val_size!r}")


def split(dataset: Dataset, val_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, SplitSummary]:
    """Sorted (train_idx, val_idx) row indices and a summary; no group ever has rows on both sides.

    Groups + classification: StratifiedGroupKFold(round(1/val_size) folds); a fold that keeps every class on
    both sides is held out (the first such fold; the first fold if none does). Groups otherwise:
    GroupShuffleSplit. No groups: StratifiedShuffleSplit (classification) or ShuffleSplit.
    """
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
        raise DataError(f"cannot split the data with --val-size {val_size:g}: {_short_reason(exc)}") from None
    train, val = np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))
    if dataset.groups is not None:
        _assert_no_shared_group(dataset.groups[train], dataset.groups[val])
    summary = _summary(_side_counts(dataset, train), _side_counts(dataset, val), strategy)
    return train, val, summary


def _assert_no_shared_group(train_groups: np.ndarray, val_groups: np.ndarray) -> None:
    shared = np.intersect1d(train_groups, val_groups)
    if shared.size:  # explicit raise, not assert: must hold under python -O too
        raise SplitLeakageError(f"internal error: groups on both sides of the split: {_quoted(shared)}")


def _class_label(dataset: Dataset, index: int) -> str:
    return _label_key(dataset.classes[index]) if index < len(dataset.classes) else str(index)


def _grouped_classification_split(dataset: Dataset, val_size: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import StratifiedGroupKFold

    groups, y, gname = dataset.groups, dataset.y, _group_name(dataset)
    n_groups = len(np.unique(groups))
    n_splits = max(2, round(1 / val_size))
    _check_enough_groups(n_groups, n_splits, gname, val_size)
    largest = int(np.bincount(y).max())
    if largest < n_splits:  # sklearn refuses when every class is smaller than the number of folds
        raise DataError(
            f"too few samples for --val-size {val_size:g}: the largest class has {largest}, fewer than the "
            f"{n_splits} folds; use --val-size {1 / largest:.2f} or more, or add data"
        )
    # Each class must occur in >= 2 groups, else whole groups cannot place it on both sides.
    for c in np.unique(y):
        members = groups[y == c]
        n_class_groups = len(np.unique(members))
        if n_class_groups < 2:
            raise DataError(
                f"class {_class_label(dataset, c)!r} has {len(members)} samples, all from 1 group in {gname!r}; "
                "it cannot appear on both the training and validation sides — merge or drop the class, or add "
                "samples from more groups"
            )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # "least populated class has only k members" — class coverage is checked and reported ourselves
        warnings.simplefilter("ignore", UserWarning)
        folds = [(tr, va) for tr, va in splitter.split(np.zeros((len(y), 1)), y, groups) if len(tr) and len(va)]
    if not folds:
        raise DataError(f"cannot form a grouped split of {n_groups} groups in {gname!r}; add data or raise --val-size")
    present = np.unique(y)
    chosen = next(
        (k for k, (tr, va) in enumerate(folds)
         if np.isin(present, y[tr]).all() and np.isin(present, y[va]).all()),
        0,
    )
    train, val = folds[chosen]
    return train, val, f"StratifiedGroupKFold by {gname} (fold {chosen + 1} of {n_splits} as validation)"


def _check_enough_groups(n_groups: int, n_needed: int, gname: str, val_size: float) -> None:
    if n_groups < 2:
        raise DataError(f"only 1 group in {gname!r}; a grouped split needs at least 2 — add data, or pass "
                        "--no-group if the samples are independent")
    if n_groups < n_needed:
        raise DataError(
            f"{n_groups} groups in {gname!r} are too few for --val-size {val_size:g} ({n_needed} folds); "
            f"use --val-size {1 / n_groups:.2f} or more, or add data"
        )


def _grouped_shuffle_split(dataset: Dataset, val_size: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import GroupShuffleSplit

    groups, gname = dataset.groups, _group_name(dataset)
    n_groups = len(np.unique(groups))
    _check_enough_groups(n_groups, 2, gname, val_size)
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
        raise DataError(f"--val-size {val_size:g} gives {min(n_val, n_train)} {side} samples, fewer than the "
                        f"{n_present} classes; {'raise' if side == 'validation' else 'lower'} --val-size or add data")
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
    classes: dict[str, int]
    batches: dict[str, int]


def _side_counts(dataset: Dataset, idx: np.ndarray | None = None) -> _Side:
    idx = np.arange(dataset.n_samples) if idx is None else idx
    classes: dict[str, int] = {}
    if dataset.y is not None and dataset.task in CLASSIFICATION_TASKS:
        counts = np.bincount(dataset.y[idx], minlength=len(dataset.classes))
        classes = {_label_key(c): int(counts[i]) for i, c in enumerate(dataset.classes)}
    elif dataset.y is not None and dataset.task == "multilabel":
        positives = dataset.y[idx].sum(axis=0)
        classes = {str(name): int(positives[j]) for j, name in enumerate(dataset.classes)}
    batches: dict[str, int] = {}
    if dataset.batches is not None:
        batches = {str(b): int(k) for b, k in sorted(Counter(dataset.batches[idx]).items())}
    n_groups = None if dataset.groups is None else int(len(np.unique(dataset.groups[idx])))
    return _Side(n=int(len(idx)), n_groups=n_groups, classes=classes, batches=batches)


def _summary(train: _Side, val: _Side, strategy: str) -> SplitSummary:
    warn: list[str] = []
    for kind, tr, va, consequence in (
        ("class", train.classes, val.classes, "validation metrics do not cover it"),
        ("batch", train.batches, val.batches, "validation does not test it"),
    ):
        for key in list(dict.fromkeys([*tr, *va])):
            k_tr, k_va = tr.get(key, 0), va.get(key, 0)
            if k_tr and not k_va:
                warn.append(f"{kind} {key!r} is only in the training rows ({k_tr} samples); {consequence}")
            elif k_va and not k_tr:
                warn.append(f"{kind} {key!r} is only in the validation rows ({k_va} samples); the model never "
                            "trains on it")
    return SplitSummary(
        strategy=strategy, n_train=train.n, n_val=val.n, n_groups_train=train.n_groups,
        n_groups_val=val.n_groups, class_counts_train=train.classes, class_counts_val=val.classes,
        batch_counts_train=train.batches, batch_counts_val=val.batches, warnings=warn,
    )


def summarize_split(train: Dataset, val: Dataset, strategy: str = "explicit validation table") -> SplitSummary:
    """Summary for a validation table given explicitly (--val-data); a group in both tables is an error."""
    if train.groups is not None and val.groups is not None:
        shared = np.intersect1d(train.groups, val.groups)
        if shared.size:
            raise DataError(
                f"{shared.size} groups in {_group_name(train)!r} appear in both the training and the --val-data "
                f"table: {_quoted(shared)}; a patient on both sides inflates validation scores — remove them "
                "from one table"
            )
    return _summary(_side_counts(train), _side_counts(val), strategy)


# ── class weights and provenance ─────────────────────────────────────────────────────────────────────────


def class_weights(y: np.ndarray, n_classes: int, spec: str | None, classes: Sequence) -> np.ndarray | None:
    """Per-class loss weights (n_classes,) float64, or None for no weighting.

    spec: None/"none"; "balanced" (sklearn's n / (n_classes * count)); or "A=1,B=3" by class label
    (unnamed classes get 1.0). y holds class indices (n,) or, for multilabel/binary, 0/1 values of any
    shape, weighted as the 2 classes 0 and 1 (pass n_classes=2, classes=[0, 1]).
    """
    if spec is None or str(spec).strip().lower() in ("", "none"):
        return None
    if len(classes) != n_classes:
        raise ValueError(f"class_weights: {len(classes)} class labels given for n_classes={n_classes}")
    text = str(spec).strip()
    if text.lower() == "balanced":
        return _balanced_weights(y, n_classes, classes)
    return _explicit_weights(text, classes)


def _balanced_weights(y: np.ndarray, n_classes: int, classes: Sequence) -> np.ndarray:
    from sklearn.utils.class_weight import compute_class_weight

    flat = np.asarray(y).ravel()
    if flat.size == 0 or not np.all((flat == np.round(flat)) & (flat >= 0) & (flat < n_classes)):
        raise DataError(f"class indices must be whole numbers in 0..{n_classes - 1} to compute class weights")
    flat = flat.astype(np.int64)
    counts = np.bincount(flat, minlength=n_classes)
    absent = [classes[i] for i in np.flatnonzero(counts == 0)]
    if absent:
        raise DataError(f"--class-weight balanced: class {_quoted(absent)} has no training samples; "
                        "give explicit weights (LABEL=WEIGHT) or add data")
    return compute_class_weight("balanced", classes=np.arange(n_classes), y=flat).astype(np.float64)


def _explicit_weights(text: str, classes: Sequence) -> np.ndarray:
    index = {_label_key(c): i for i, c in enumerate(classes)}
    valid = _quoted(index, 10)
    weights = np.ones(len(classes), dtype=np.float64)
    seen: set[str] = set()
    for item in (part.strip() for part in text.split(",")):
        label, sep, value = item.rpartition("=")
        label = label.strip()
        if not sep or not label:
            raise ConfigError(f"--class-weight expects 'balanced', 'none' or LABEL=WEIGHT pairs such as "
                              f"'A=1,B=3', got {item!r}; valid labels: {valid}")
        if label not in index:
            raise ConfigError(f"--class-weight names unknown class {label!r}; valid labels: {valid}")
        if label in seen:
            raise ConfigError(f"--class-weight gives class {label!r} twice")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not math.isfinite(weight) or weight <= 0:
            raise ConfigError(f"--class-weight for class {label!r} must be a positive number, got {value.strip()!r}")
        weights[index[label]] = weight
        seen.add(label)
    return weights


def data_checksum(X: np.ndarray, y: np.ndarray | None) -> str:
    """sha256 hex over dtype, shape and bytes of X and y (None hashes as a marker), for provenance."""
    digest = hashlib.sha256()
    for array in (X, y):
        if array is None:
            digest.update(b"none;")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
