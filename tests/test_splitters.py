"""The NumPy splitters in model_selection.splits give exactly scikit-learn's splits for the same seed.

Training, cross-fitting and cross-validation split with these ports (scikit-learn is not imported on the
train path); models trained before the port were split by scikit-learn itself, so the same seed must keep
giving the same folds. Random cases cover balanced and one-sided classes, patients with mixed classes,
many exactly tied groups (two samples of one class per patient, where the fold choice rests on
floating-point near-ties), and string and integer group labels.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.model_selection import (
    GroupShuffleSplit,
    KFold,
    ShuffleSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from mlpcli.model_selection import splits


def _grouped_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Random (y, groups, n_folds) that StratifiedGroupKFold accepts."""
    n_groups = int(rng.integers(4, 120))
    n_classes = int(rng.integers(2, 7))
    shape = rng.integers(0, 3)
    if shape == 0:  # one class per patient, 1-4 samples each (most datasets)
        sizes = rng.integers(1, 5, n_groups)
        y = np.repeat(rng.integers(0, n_classes, n_groups), sizes)
    elif shape == 1:  # exactly tied groups: two samples of one class per patient
        sizes = np.full(n_groups, 2)
        y = np.repeat(rng.integers(0, n_classes, n_groups), 2)
    else:  # mixed classes within patients, skewed class frequencies
        sizes = rng.integers(1, 8, n_groups)
        p = rng.dirichlet(np.full(n_classes, 0.7))
        y = rng.choice(n_classes, size=int(sizes.sum()), p=p)
    groups = np.repeat(np.arange(n_groups), sizes)
    order = rng.permutation(len(y))  # rows of a patient need not be adjacent
    y, groups = y[order], groups[order]
    if rng.random() < 0.5:
        groups = np.array([f"P{g:04d}" for g in groups], dtype=object)
    n_folds = int(rng.integers(2, min(8, n_groups, np.bincount(y).max()) + 1))
    return y, groups, n_folds


def _sklearn_test_sets(splitter, *args) -> list[np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return [np.sort(te) for _, te in splitter.split(np.zeros((len(args[0]), 1)), *args)]


def _ours_test_sets(row_fold: np.ndarray, n_folds: int) -> list[np.ndarray]:
    return [te for _, te in splits._pairs(row_fold, n_folds)]


def _assert_same_folds(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_stratified_group_kfold_gives_sklearns_folds_over_random_cases():
    rng = np.random.default_rng(20261201)
    for case in range(200):
        y, groups, n_folds = _grouped_case(rng)
        seed = int(rng.integers(0, 2**31 - 1))
        expected = _sklearn_test_sets(StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed), y, groups)
        got = _ours_test_sets(splits.stratified_group_kfold(y, groups, n_folds, seed), n_folds)
        _assert_same_folds(got, expected)


def test_stratified_group_kfold_matches_at_the_size_of_a_real_table():
    # 2,000 patients of 2 samples each, 5 classes: ~400 exact ties per class, decided by float near-ties
    rng = np.random.default_rng(7)
    y = np.repeat(rng.integers(0, 5, 2_000), 2)
    groups = np.repeat([f"P{i:05d}" for i in range(2_000)], 2)
    for seed in (0, 1):
        expected = _sklearn_test_sets(StratifiedGroupKFold(5, shuffle=True, random_state=seed), y, groups)
        _assert_same_folds(_ours_test_sets(splits.stratified_group_kfold(y, groups, 5, seed), 5), expected)


def test_stratified_group_kfold_folds_are_grouped_stratified_and_deterministic():
    rng = np.random.default_rng(3)
    y = np.repeat(rng.integers(0, 3, 600), 2)
    groups = np.repeat(np.arange(600), 2)
    folds = splits.stratified_group_kfold(y, groups, 5, seed=11)
    np.testing.assert_array_equal(folds, splits.stratified_group_kfold(y, groups, 5, seed=11))
    assert not np.array_equal(folds, splits.stratified_group_kfold(y, groups, 5, seed=12))
    for g in np.unique(groups):
        assert len(np.unique(folds[groups == g])) == 1  # a patient never spans folds
    shares = np.array([np.bincount(y[folds == f], minlength=3) / np.bincount(y) for f in range(5)])
    assert np.abs(shares - 0.2).max() < 0.02  # each fold holds a fifth of every class


def test_stratified_kfold_and_kfold_give_sklearns_folds():
    rng = np.random.default_rng(5)
    for case in range(200):
        n_classes = int(rng.integers(2, 6))
        n = int(rng.integers(10, 300))
        y = rng.choice(n_classes, size=n, p=rng.dirichlet(np.ones(n_classes)))
        y = np.unique(y, return_inverse=True)[1].reshape(-1)
        if np.bincount(y).max() < 2:
            continue
        n_folds = int(rng.integers(2, min(10, np.bincount(y).max()) + 1))
        seed = int(rng.integers(0, 2**31 - 1))
        expected = _sklearn_test_sets(StratifiedKFold(n_folds, shuffle=True, random_state=seed), y)
        _assert_same_folds(_ours_test_sets(splits.stratified_kfold(y, n_folds, seed), n_folds), expected)
        expected = _sklearn_test_sets(KFold(n_folds, shuffle=True, random_state=seed), y)
        _assert_same_folds(_ours_test_sets(splits.shuffled_kfold(n, n_folds, seed), n_folds), expected)


def test_shuffle_splits_give_sklearns_rows_in_sklearns_order():
    # the order matters: the hold-out's class-coverage swaps pick rows by position
    rng = np.random.default_rng(9)
    for case in range(200):
        n_classes = int(rng.integers(2, 6))
        n = int(rng.integers(10 * n_classes, 300))  # test sides of at least one row per class
        y = rng.integers(0, n_classes, n)
        y[: 2 * n_classes] = np.repeat(np.arange(n_classes), 2)  # every class at least twice
        test_size = float(rng.choice([0.1, 0.2, 0.25, 1 / 3, 0.5]))
        seed = int(rng.integers(0, 2**31 - 1))
        X = np.zeros((n, 1))
        for ours, (tr, te) in (
            (splits.shuffle_split(n, test_size, seed),
             next(ShuffleSplit(1, test_size=test_size, random_state=seed).split(X))),
            (splits.stratified_shuffle_split(y, test_size, seed),
             next(StratifiedShuffleSplit(1, test_size=test_size, random_state=seed).split(X, y))),
        ):
            np.testing.assert_array_equal(ours[0], tr)
            np.testing.assert_array_equal(ours[1], te)
        groups = np.array([f"G{g}" for g in rng.integers(0, max(3, n // 3), n)])
        tr, te = next(GroupShuffleSplit(1, test_size=test_size, random_state=seed).split(X, groups=groups))
        ours = splits.group_shuffle_split(groups, test_size, seed)
        np.testing.assert_array_equal(ours[0], tr)
        np.testing.assert_array_equal(ours[1], te)


def test_splitters_refuse_what_sklearn_refuses():
    with pytest.raises(ValueError):
        splits.stratified_group_kfold(np.array([0, 0, 1, 1]), np.array([1, 1, 2, 2]), 3, 0)  # 2 groups
    with pytest.raises(ValueError):
        splits.stratified_kfold(np.array([0, 1, 2]), 2, 0)  # every class smaller than the folds
    with pytest.raises(ValueError):
        splits.stratified_shuffle_split(np.array([0, 0, 0, 1]), 0.5, 0)  # a class of one sample
