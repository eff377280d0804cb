"""The scikit-learn estimators fitting awkward data as a notebook gives it: rare classes in cross-validation,
patient groups incomplete or of mixed types, weight decay with optimizers that ignore it, BatchNorm on one row,
and regressors given class labels."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_score

from mlpcli.errors import DataError
from mlpcli.estimators import MLPClassifier, MLPRegressor
from mlpcli.model_selection import holdout, holdout_keeping_scarce


FAST = dict(hidden=(8,), epochs=15, lr=1e-2)


def _rare_class_data(n_common: int = 30, n_rare: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.array(["A"] * n_common + ["B"] * n_common + ["rare"] * n_rare)
    X = rng.normal(size=(len(y), 4))
    X[y == "B", 0] += 2.0
    X[y == "rare", 1] += 4.0
    return X, y


def test_class_weight_dict_may_name_a_class_absent_from_a_cv_fold():
    """A weight for every class, one of them rare: the fold whose training rows lack it refused the dict
    ("class_weight names labels not in y"); scikit-learn accepts it (compute_class_weight's rule)."""
    X, y = _rare_class_data()
    weights = {"A": 1.0, "B": 1.0, "rare": 10.0}
    scores = cross_val_score(MLPClassifier(**FAST, class_weight=weights), X, y,
                             cv=StratifiedKFold(3, shuffle=True, random_state=0), error_score="raise")
    assert scores.shape == (3,)
    # a label that is not in y while a class of y has no weight is still a typo, as in scikit-learn
    with pytest.raises(ValueError, match="class_weight names labels not in y"):
        MLPClassifier(**FAST, class_weight={"A": 1.0, "Bee": 2.0}).fit(X, y)


def test_an_infinite_class_weight_is_refused_by_name():
    """inf passed the "> 0" check and surfaced as "training diverged ... lower lr"."""
    X, y = _rare_class_data(n_common=20, n_rare=0)
    with pytest.raises(ValueError, match="class_weight values must be finite numbers > 0"):
        MLPClassifier(**FAST, class_weight={"A": np.inf}).fit(X, y)


def _patients_with_a_rare_class(rare_patients: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20 patients of classes A/B and ``rare_patients`` of a rare class, 3 samples each."""
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(20 + rare_patients), 3)
    y = np.array(["A"] * 10 + ["B"] * 10 + ["rare"] * rare_patients)[patients]
    X = rng.normal(size=(len(y), 4))
    X[y == "B", 0] += 2.0
    X[y == "rare", 1] += 3.0
    return X, y, patients


def test_grouped_early_stopping_trains_on_a_class_seen_in_one_patient_only():
    """A class from one patient cannot be on both sides of a grouped split; every fit was refused, so a
    GroupKFold CV with the groups passed on failed in each fold whose training part held one such patient."""
    X, y, patients = _patients_with_a_rare_class(rare_patients=1)
    from mlpcli import data

    codes = np.unique(y, return_inverse=True)[1]
    ds = data.Dataset(X=X, y=codes, feature_names=list("abcd"), task="multiclass", classes=["A", "B", "rare"],
                      groups=patients, roles=data.Roles(target=[], group="patient"))
    with pytest.raises(DataError, match="all from 1 group"):
        holdout(ds, 0.2, 0)  # train's split refuses such data, naming the class
    for seed in range(5):
        tr, va = holdout_keeping_scarce(ds, 0.2, seed)  # the estimators' early stopping
        assert len(va) and len(tr) + len(va) == len(y)
        assert not set(patients[tr]) & set(patients[va])  # no patient on both sides
        assert "rare" in set(y[tr])  # the rare class's only patient trains
        assert {"A", "B"} <= set(y[va])  # the others are still held out by class
    clf = MLPClassifier(**FAST).fit(X, y, groups=patients)
    assert list(clf.classes_) == ["A", "B", "rare"]

    X, y, patients = _patients_with_a_rare_class(rare_patients=2)
    scores = cross_val_score(MLPClassifier(**FAST), X, y, groups=patients, cv=GroupKFold(4),
                             params={"groups": patients}, error_score="raise")
    assert scores.shape == (4,)


def test_groups_with_a_missing_value_are_an_error_naming_the_row():
    """None in groups was a TypeError from inside np.unique; NaN was silently one more patient."""
    X, y, patients = _patients_with_a_rare_class(rare_patients=0)
    for missing in (None, np.nan):
        groups = patients.astype(object)
        groups[4] = missing
        with pytest.raises(ValueError, match=r"groups has a missing value \(None or NaN\) at row 4"):
            MLPClassifier(**FAST).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="at row 4"):
        MLPClassifier(**FAST).fit(X, y, groups=np.where(np.arange(len(y)) == 4, np.nan, patients))


def test_groups_of_mixed_types_are_compared_as_text():
    """Patient ids of mixed types (ints and strings, as a half-cleaned sample sheet gives) could not be sorted:
    a TypeError from inside NumPy."""
    X, y, patients = _patients_with_a_rare_class(rare_patients=0)
    groups = np.array([p if p % 2 else f"P{p}" for p in patients], dtype=object)
    clf = MLPClassifier(**FAST).fit(X, y, groups=groups)
    assert clf.predict(X).shape == y.shape


def test_a_single_class_is_named_as_written():
    X, _ = _rare_class_data(n_common=10, n_rare=0)
    with pytest.raises(ValueError, match=r"y has 1 class \('A'\)$"):
        MLPClassifier(**FAST).fit(X, np.full(len(X), "A"))
    with pytest.raises(ValueError, match=r"y has 1 class \(0\.0\)$"):
        MLPClassifier(**FAST).fit(X, np.zeros(len(X)))


TINY = dict(hidden=(4,), epochs=3, lr=1e-2)


def blobs(n=40, centers=2, seed=0):
    return make_blobs(n, n_features=3, centers=centers, random_state=seed)


# ── weight_decay is AdamW's: never silently ignored ──────────────────────────────────────────────────


@pytest.mark.parametrize("estimator", [MLPClassifier, MLPRegressor], ids=["classifier", "regressor"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weight_decay_with_an_optimizer_that_ignores_it_is_refused_at_fit(estimator, optimizer):
    X, y = blobs()
    model = estimator(**TINY, optimizer=optimizer, weight_decay=0.1)  # construction accepts anything
    assert clone(model).get_params()["weight_decay"] == 0.1
    expected = rf"weight_decay=0.1 applies to optimizer='adamw' only.*optimizer='{optimizer}' would ignore it"
    with pytest.raises(ValueError, match=expected):
        model.fit(X, y)
    assert not hasattr(model, "network_")


def test_weight_decay_defaults_still_fit_and_none_is_adamws_decay():
    X, y = blobs()
    MLPClassifier(**TINY).fit(X, y)  # the default adam, no decay asked for
    MLPClassifier(**TINY, optimizer="sgd", weight_decay=0).fit(X, y)  # 0 is true of sgd: accepted

    def proba(**kw):
        return MLPClassifier(**TINY, early_stopping=False, optimizer="adamw", **kw).fit(X, y).predict_proba(X)

    default = proba()
    np.testing.assert_array_equal(default, proba(weight_decay=0.01))  # None: the 0.01 it was before
    assert not np.allclose(default, proba(weight_decay=5.0))  # and a value given with adamw is used


# ── errors a user causes name the parameter or the value ────────────────────────────────────────────


def test_regressor_given_class_labels_names_the_label_and_the_classifier():
    X, y = blobs()
    with pytest.raises(ValueError, match="MLPRegressor: y must be numbers, got 'b'; for class labels use MLPClass"):
        MLPRegressor(**TINY).fit(X, np.array(["a", "b"])[y[np.argsort(y)[::-1]]])


@pytest.mark.parametrize("early_stopping, n", [(True, 2), (False, 1)], ids=["one-row-after-hold-out", "one-row"])
def test_batchnorm_on_one_training_row_says_so_not_a_batch_size_flag(early_stopping, n):
    X, y = blobs(n=n)
    with pytest.raises(ValueError, match="batchnorm=True needs 2 or more training rows.*got 1 sample") as info:
        MLPRegressor(**TINY, batchnorm=True, early_stopping=early_stopping).fit(X, y.astype(float))
    assert "--" not in str(info.value)
    # scikit-learn's own check of one-sample fits (imported here: loky workers import this module, and it is slow)
    from sklearn.utils.estimator_checks import check_fit2d_1sample

    check_fit2d_1sample("MLPRegressor", MLPRegressor(**TINY, batchnorm=True, early_stopping=False))


# ── the Python API ──────────────────────────────────────────────────────────────────────────────────────


def test_the_estimators_grouped_early_stopping_error_says_it_once():
    from mlpcli.estimators import MLPClassifier

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    with pytest.raises(ValueError) as info:
        MLPClassifier(hidden=(4,), epochs=3).fit(X, y, groups=np.where(y == 0, "P1", "P2"))
    message = str(info.value)
    assert message.count("cannot hold out whole groups") == 1
    assert "a class whose samples all come from one group" in message and "groupss" not in message
