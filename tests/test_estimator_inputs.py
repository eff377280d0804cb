"""What the scikit-learn estimators accept and refuse as scikit-learn code feeds them: labels with blanks or of
mixed types, seeds and dtypes written the NumPy way, sparse X and targets, values beyond float32, options an
optimizer ignores, and the errors of the parallel runner."""

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


FAST = dict(hidden=(4,), epochs=3, lr=1e-2)


def table(n=40, d=3, seed=0):
    X = np.random.default_rng(seed).normal(size=(n, d))
    return X, (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("kind", ["array", "frame", "csr"])
def test_a_value_beyond_float32_with_dtype_float32_names_its_place_not_the_learning_rate(kind):
    X, y = table()
    X[7, 1] = -1e39  # finite in float64, inf once cast for the float32 network
    given = {"array": X, "frame": pd.DataFrame(X, columns=["a", "b", "c"]), "csr": sp.csr_matrix(X)}[kind]
    column = "column 'b'" if kind == "frame" else "column 1"
    with pytest.raises(ValueError, match=rf"MLPClassifier: X holds -1e\+39 at row 7.*{column}.*dtype='float64'") as e:
        MLPClassifier(**FAST, dtype="float32").fit(given, y)
    assert "lr" not in str(e.value)
    assert not hasattr(MLPClassifier(**FAST, dtype="float32"), "network_")


def test_a_value_beyond_float32_still_fits_with_dtype_float64():
    X, y = table()
    X[7, 1] = 1e39
    clf = MLPClassifier(**FAST).fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()


@pytest.mark.parametrize("scale", [1.0, 1e200, 1e300])
def test_regression_targets_whose_square_overflows_are_predicted_in_their_units_not_inf(scale):
    X, _ = table(60)
    y = (3 * X[:, 0] + 10) * scale
    pred = MLPRegressor(hidden=(8,), epochs=40, lr=1e-2, early_stopping=False).fit(X, y).predict(X)
    assert np.isfinite(pred).all()
    # the same fit in other units: the model is fitted on standardised targets, so only the scale differs
    base = MLPRegressor(hidden=(8,), epochs=40, lr=1e-2, early_stopping=False).fit(X, y / scale).predict(X)
    np.testing.assert_allclose(pred / scale, base, rtol=1e-9, atol=1e-9)


def test_fits_side_by_side_in_threads_cap_blas_and_leave_the_process_as_it_was(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info, threadpool_limits

    import mlpcli.estimators as est

    def blas():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen, real_fit = [], est.fit

    def spying_fit(*args, **kwargs):
        seen.append(max(blas()))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(est, "fit", spying_fit)
    X, y = table(60)
    with threadpool_limits(limits=2):
        before = blas()
        with ThreadPoolExecutor(4) as pool:  # as joblib's threading backend or dask's threads run them
            fitted = list(pool.map(lambda s: MLPClassifier(**FAST, random_state=s).fit(X, y), range(8)))
            list(pool.map(lambda m: m.predict_proba(X), fitted))
        assert blas() == before  # it was left at 1 thread for good
    assert len(seen) == 8 and set(seen) == {1}


@pytest.mark.parametrize("kind", ["frame", "array"])
def test_a_text_column_left_in_X_is_named_with_its_row(kind):
    X, y = table()
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(batch=np.where(np.arange(40) % 3, "b1", "b2"))
    given = frame if kind == "frame" else frame.to_numpy()
    column = "column 'batch'" if kind == "frame" else "column 3"
    message = rf"MLPClassifier: X {column} holds text: 'b2' at row 0 \(0-based\) and 39 more rows; .* OneHotEncoder"
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**FAST).fit(given, y)
    clf = MLPClassifier(**FAST).fit(frame[["a", "b", "c"]], y)
    with pytest.raises(ValueError, match=r"MLPClassifier: X column 'b' holds text: 'x' at row 2 \(0-based\);"):
        clf.predict(frame[["a", "b", "c"]].astype(object).assign(b=[0.1, 0.2, "x"] + [0.3] * 37))
    assert clf.predict(frame[["a", "b", "c"]].astype(str)).shape == (40,)  # numbers written as text still read


@pytest.mark.parametrize("y", [pd.Series(["low", "high"] * 20), pd.Series(["low", "high"] * 20, dtype="category"),
                               pd.DataFrame({"dose": [1.0] * 40, "arm": ["low", "high"] * 20})],
                         ids=["series", "category", "frame"])
def test_a_pandas_target_of_text_names_the_label_and_the_classifier(y):
    X, _ = table()
    with pytest.raises(ValueError, match=r"MLPRegressor: y must be numbers, got '(low|high)'; for class labels use "
                                         "MLPClassifier"):
        MLPRegressor(**FAST).fit(X, y)
