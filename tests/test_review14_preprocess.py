"""Preprocessing review: --log1p auto on log-normalised single cells, mean imputation of a constant column,
the fitted scalings against scikit-learn's, and --class-weight pairs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_selection import VarianceThreshold
from sklearn.preprocessing import RobustScaler, StandardScaler

from mlpcli.data import PreprocessConfig, Preprocessor, class_weights, looks_like_counts
from mlpcli.errors import ConfigError


def _cells(n: int = 300, d: int = 40, depth: float = 0.2, seed: int = 0):
    """(raw counts, log-normalised values) (n, d) of zero-inflated single cells, as scanpy's
    normalize_total(target_sum=1e4) + log1p make them."""
    rng = np.random.default_rng(seed)
    mu = depth * rng.lognormal(0.0, 1.0, d) * rng.lognormal(0.0, 0.5, (n, 1))
    counts = rng.negative_binomial(2, 2 / (2 + mu)).astype(np.float64)
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return counts, np.log1p(counts / totals * 1e4)


def _with_stored_zeros(X: np.ndarray, seed: int):
    """X as CSR with some explicit zeros stored as well (an .h5ad file may hold them)."""
    rng = np.random.default_rng(seed)
    S = sp.csr_matrix(X).tocoo()
    rows, cols = np.nonzero(X == 0)
    pick = rng.choice(len(rows), 30, replace=False)
    return sp.csr_matrix((np.concatenate([S.data, np.zeros(30)]),
                          (np.concatenate([S.row, rows[pick]]), np.concatenate([S.col, cols[pick]]))), shape=X.shape)


@pytest.mark.parametrize("layout", ["dense", "sparse", "sparse with stored zeros"])
def test_log1p_auto_leaves_log_normalised_single_cells_alone(layout):
    counts, lognorm = _cells()
    z = (lognorm - lognorm.mean(axis=0)) / lognorm.std(axis=0)
    assert np.median((z ** 3).mean(axis=0)) > 1.0  # the zeros make the log values skewed: what misled the rule
    as_given = {"dense": lambda X: X, "sparse": sp.csr_matrix,
                "sparse with stored zeros": lambda X: _with_stored_zeros(X, 1)}[layout]
    assert looks_like_counts(as_given(lognorm)) is None  # log1p is not applied a second time
    assert looks_like_counts(as_given(counts)) > 1.0  # the counts still get it


def test_log1p_auto_still_takes_whole_counts_and_unlogged_values():
    rng = np.random.default_rng(3)
    counts = np.where(rng.random((200, 20)) < 0.7, 0.0, rng.integers(1, 40, (200, 20)))  # non-zero values uniform
    assert looks_like_counts(counts) is not None and looks_like_counts(sp.csr_matrix(counts)) is not None
    tpm = np.where(rng.random((200, 20)) < 0.2, 0.0, rng.lognormal(2.0, 1.0, (200, 20)))  # skewed non-zero values
    assert looks_like_counts(tpm) is not None and looks_like_counts(sp.csr_matrix(tpm)) is not None


@pytest.mark.parametrize("log1p", [False, True], ids=["raw", "log1p"])
@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_mean_imputation_keeps_a_constant_column_constant(log1p, layout):
    """The mean of equal values summed in floating point can land an ulp beside them; the column then had an
    SD of ~1e-16 and a new value of it became a network input of ~1e15."""
    rng = np.random.default_rng(0)
    for value in (0.1, 0.7, 7.3):
        X = np.column_stack([rng.normal(size=40) ** 2, np.full(40, value)])
        X[::7, 1] = np.nan
        pre = Preprocessor(PreprocessConfig(impute="mean", scaling="standard", log1p=log1p))
        pre.fit(sp.csr_matrix(X) if layout == "sparse" else X, ["a", "flat"])
        assert pre.dropped_constant == ["flat"] and pre.kept_features == ["a"], value
        assert np.all(np.abs(pre.transform(np.array([[1.0, value + 1.0]]))) < 10)


def test_scalings_and_constant_features_match_scikit_learn():
    rng = np.random.default_rng(4)
    X = rng.lognormal(0.0, 1.0, (60, 5)) * [1, 10, 0.1, 5, 1] + [0, 3, 2, 100, 0]
    X[:, 4] = 2.5  # constant: dropped, as VarianceThreshold() drops it
    X[:50, 0] = 0.0  # IQR 0 (mostly zeros, like a gene in single cells)
    names = list("abcde")
    kept = VarianceThreshold().fit(X).get_support()
    standard = Preprocessor(PreprocessConfig(scaling="standard")).fit(X, names)
    assert standard.kept_features == [n for n, k in zip(names, kept) if k]
    assert np.allclose(standard.transform(X), StandardScaler().fit_transform(X[:, kept]), atol=1e-12)
    robust = Preprocessor(PreprocessConfig(scaling="robust")).fit(X, names)
    reference = RobustScaler().fit(X[:, kept])
    # column a is 0 in 50 of 60 rows: its quartiles fall on the tie, so it is scaled by its mean and SD
    # (preprocess.TIED_SHARE); the others as scikit-learn's RobustScaler
    assert np.allclose(robust.center_[1:], reference.center_[1:])
    assert np.allclose(robust.scale_[1:], reference.scale_[1:])
    assert np.isclose(robust.center_[0], X[:, 0].mean()) and np.isclose(robust.scale_[0], X[:, 0].std())
    Z = robust.transform(X)
    assert np.all(np.abs(Z) < 3.0)  # clipped smoothly


def test_class_weight_pairs_with_another_separator_say_to_use_commas():
    y = np.array([0, 0, 1, 2])
    with pytest.raises(ConfigError, match=r"unknown class 'A=1;B' \(pairs are separated by commas"):
        class_weights(y, 3, "A=1;B=2", ["A", "B", "C"])
    with pytest.raises(ConfigError, match=r"unknown class 'D'; valid labels: 'A', 'B', 'C'$"):
        class_weights(y, 3, "D=2", ["A", "B", "C"])
    assert class_weights(y, 3, "C=4", ["A", "B", "C"]).tolist() == [1.0, 1.0, 4.0]


@pytest.mark.parametrize("scaling", ["standard", "robust"])
@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_spreads_of_float_rounding_are_no_spread(scaling, layout):
    """0.1 + 0.2 and 0.3 differ in the last bit: a column of the two is constant (it was scaled by 5e-17, and
    a new value of 0.31 reached the network as 2e14); an IQR of that size is 0 (half the range instead)."""
    rng = np.random.default_rng(5)
    n = 40
    rounding = np.where(np.arange(n) % 2 == 0, 0.1 + 0.2, 0.3)
    mostly = rounding.copy()
    mostly[:4] = [2.0, 5.0, 9.0, 12.0]  # a few real values among the rounding noise
    X = np.column_stack([rng.normal(size=n) ** 2, rounding, mostly])
    pre = Preprocessor(PreprocessConfig(scaling=scaling))
    pre.fit(sp.csr_matrix(X) if layout == "sparse" else X, ["a", "flat", "mostly"])
    assert pre.dropped_constant == ["flat"] and pre.kept_features == ["a", "mostly"]
    if scaling == "robust" and layout == "sparse":
        assert pre.scale_[1] == pytest.approx((12.0 - 0.3) / 2)
    elif scaling == "robust":  # the two roundings of 0.3 hold 36 of 40 rows: a tie, scaled by the SD (TIED_SHARE)
        assert pre.scale_[1] == pytest.approx(X[:, 2].std())
    assert np.all(np.abs(pre.transform(np.array([[1.0, 0.31, 0.31]]))) < 10)
