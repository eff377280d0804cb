"""Robust scaling of tied features: where one value holds a quarter of the training rows or more (zero-inflated
expression, a few score levels), the quartiles fall on the tie, so the feature is scaled by its mean and SD."""

import numpy as np
import pytest
import scipy.sparse as sp

from mlpcli.data import PreprocessConfig, Preprocessor
from mlpcli.data.preprocess import TIED_SHARE


def _robust(X, names=None):
    names = names or [f"g{j}" for j in range(X.shape[1])]
    return Preprocessor(PreprocessConfig(scaling="robust")).fit(X, names)


def test_a_zero_inflated_marker_is_scaled_by_its_sd_and_its_expressed_cells_keep_their_order():
    rng = np.random.default_rng(0)
    n = 400
    marker = np.zeros(n)
    expressed = rng.random(n) < 0.1  # a rare cell type's marker: 0 in ~90 % of the cells
    marker[expressed] = rng.lognormal(1.0, 0.5, expressed.sum())
    marker[np.argmax(marker)] = 40.0  # one outlier: the half range it set used to squash the others
    smooth = rng.normal(size=n)
    pre = _robust(np.column_stack([marker, smooth]))
    assert pre.center_[0] == pytest.approx(marker.mean()) and pre.scale_[0] == pytest.approx(marker.std())
    Z = pre.transform(np.column_stack([marker, smooth]))
    z = Z[expressed, 0]
    # before, scale = half the range (20): the expressed cells sat within 0.4 of the zeros; now they stand apart
    assert np.median(z) - Z[~expressed, 0].max() > 1.0
    assert np.all(np.diff(z[np.argsort(marker[expressed])]) >= 0)  # the smooth clip keeps their order
    # a continuous feature without ties keeps the median and IQR
    q25, q50, q75 = np.percentile(smooth, [25, 50, 75])
    assert pre.center_[1] == pytest.approx(q50) and pre.scale_[1] == pytest.approx(q75 - q25)


@pytest.mark.parametrize("share, tied", [(TIED_SHARE - 0.05, False), (TIED_SHARE, True), (0.6, True)])
def test_the_rule_starts_at_a_quarter_of_the_rows_at_one_value(share, tied):
    rng = np.random.default_rng(1)
    n = 200
    x = rng.normal(size=n)
    k = int(round(share * n))
    x[rng.permutation(n)[:k]] = 1.5  # one value, at some quartile, in k rows
    pre = _robust(np.column_stack([x]))
    if tied:
        assert pre.center_[0] == pytest.approx(x.mean()) and pre.scale_[0] == pytest.approx(x.std())
    else:
        q25, q50, q75 = np.percentile(x, [25, 50, 75])
        assert pre.center_[0] == pytest.approx(q50) and pre.scale_[0] == pytest.approx(q75 - q25)


def test_sparse_input_keeps_the_iqr_or_half_range_without_centring():
    X = np.zeros((40, 2))
    X[:6, 0] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    X[:, 1] = np.arange(40.0)
    pre = _robust(sp.csr_matrix(X))
    assert np.all(pre.center_ == 0)
    assert pre.scale_[0] == pytest.approx(3.0)  # IQR 0: half the range, as before
    assert pre.scale_[1] == pytest.approx(np.percentile(X[:, 1], 75) - np.percentile(X[:, 1], 25))
