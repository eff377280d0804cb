"""Review 16: the scikit-learn estimators as scikit-learn code feeds them: labels with blanks, seeds and
dtypes written the NumPy way, sparse multi-label targets."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_blobs

from mlpcli.estimators import MLPClassifier, MLPRegressor

TINY = dict(hidden=(4,), epochs=3, lr=1e-2)


def blobs(n=30, centers=3, seed=0):
    return make_blobs(n, n_features=3, centers=centers, random_state=seed)


# ── class labels with a blank, or text and numbers mixed ─────────────────────────────────────────────


@pytest.mark.parametrize("blank", [None, np.nan, pd.NA], ids=["None", "NaN", "pd.NA"])
def test_a_missing_label_is_an_error_naming_the_row(blank):
    X, y = blobs()
    labels = pd.Series(np.array(["LumA", "LumB", "Basal"], dtype=object)[y], dtype=object)
    labels[7] = blank  # an unlabelled sample in a sample sheet
    model = MLPClassifier(**TINY)
    with pytest.raises(ValueError, match=r"^MLPClassifier: y has a missing label \(None or NaN\) at row 7 "):
        model.fit(X, labels)
    assert not hasattr(model, "classes_")


def test_labels_mixing_text_and_numbers_are_an_error_naming_both():
    X, y = blobs()
    labels = np.array(["LumA", "LumB", "Basal"], dtype=object)[y]
    labels[4] = 3  # a half-cleaned column: an int among strings
    with pytest.raises(ValueError, match=r"y mixes text and number labels \('.+' at row 0, 3 at row 4"):
        MLPClassifier(**TINY).fit(X, labels)


def test_labels_of_one_kind_still_fit_and_come_back_as_given():
    X, y = blobs()
    for labels in (np.array(["a", "b", "c"], dtype=object)[y], y + 10, pd.Series(y).astype("category")):
        model = MLPClassifier(**TINY).fit(X, labels)
        assert set(model.predict(X)) <= set(np.asarray(labels).tolist())


# ── parameters written the NumPy way ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("seed", ["0", 1.5, np.random.default_rng(0)], ids=["text", "float", "Generator"])
@pytest.mark.parametrize("estimator", [MLPClassifier, MLPRegressor], ids=["classifier", "regressor"])
def test_a_random_state_of_another_type_is_refused_by_name(estimator, seed):
    X, y = blobs()
    with pytest.raises(ValueError, match=rf"^{estimator.__name__}: random_state must be None, a whole number"):
        estimator(**TINY, random_state=seed).fit(X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.dtype("float32"), float], ids=["np.float32", "np.dtype", "float"])
def test_numpy_dtypes_are_taken_like_their_names(dtype):
    X, y = blobs()
    model = MLPClassifier(**TINY, dtype=dtype).fit(X, y)
    name = np.dtype(dtype).name
    assert model.get_params()["dtype"] is dtype  # stored as given
    assert model.network_.dtype == np.dtype(name)
    np.testing.assert_array_equal(model.predict_proba(X), MLPClassifier(**TINY, dtype=name).fit(X, y).predict_proba(X))


def test_a_float16_dtype_is_still_refused_by_name():
    X, y = blobs()
    with pytest.raises(ValueError, match=r"dtype: must be one of float32, float64, got 'float16'"):
        MLPClassifier(**TINY, dtype=np.float16).fit(X, y)


# ── a sparse multi-label target (MultiLabelBinarizer(sparse_output=True)) ─────────────────────────────


def test_a_sparse_multilabel_target_fits_like_the_dense_one():
    X, y = blobs()
    Y = np.column_stack([y == 0, y == 1, y != 1]).astype(int)  # (n, 3) 0/1
    dense = MLPClassifier(**TINY).fit(X, Y)
    sparse = MLPClassifier(**TINY).fit(X, sp.csr_matrix(Y))
    assert list(sparse.classes_) == [0, 1, 2]
    np.testing.assert_array_equal(sparse.predict_proba(X), dense.predict_proba(X))


def test_a_sparse_X_fits_and_predicts_as_the_dense_one():
    """Single-cell users pass adata.X (CSR) as scikit-learn's MLP accepts it; it was refused ("dense data is
    required") though the fit loop densifies a minibatch at a time."""
    import scipy.sparse as sp

    from mlpcli.estimators import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.poisson(0.3, (80, 30)).astype(np.float64)
    y = (X[:, 0] + X[:, 1] > 0.5).astype(int)
    params = dict(hidden=(8,), epochs=4, random_state=0)
    dense = MLPClassifier(**params).fit(X, y)
    sparse = MLPClassifier(**params).fit(sp.csr_matrix(X), y)
    np.testing.assert_array_equal(dense.predict_proba(X), sparse.predict_proba(sp.csr_matrix(X)))
