"""The scikit-learn estimators: sklearn's own estimator checks, and use in Pipeline,
cross_validate and GridSearchCV with patient groups."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_regression
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlpcli.estimators import MLPClassifier, MLPRegressor

# Small networks and few epochs keep the checks fast; lr=1e-2 lets them learn in that budget.
FAST = dict(hidden=(16,), epochs=60, lr=1e-2)
CHECKED = [
    MLPClassifier(**FAST),  # the default: early stopping on a held-out 10 %
    MLPClassifier(**FAST, early_stopping=False),  # all rows, fixed epochs
    MLPRegressor(**FAST),
]

# Checks expected to fail, with the reason. Everything else in scikit-learn's suite passes.
# (scikit-learn itself also skips, for every estimator here: the array-API checks unless
# SCIPY_ARRAY_API=1, and the decision_function checks, as these classifiers have none.)
_MINIBATCH = ("early stopping is not weight/repeat equivalent: repeating a row changes the held-out split (and, on "
              "more rows than a batch, adds a minibatch step), whereas a weight of 2 does neither; full-batch "
              "training passes, as scikit-learn's own MLP does only then (test_sample_weights_act_as_repeated_rows_...)")


def expected_failures(estimator):
    # without early stopping the check's few rows are one minibatch: full-batch training, which passes
    failures = {"check_sample_weight_equivalence_on_dense_data": _MINIBATCH,
                "check_sample_weight_equivalence_on_sparse_data": _MINIBATCH} if estimator.early_stopping else {}
    if isinstance(estimator, MLPClassifier) and estimator.early_stopping:
        failures["check_class_weight_classifiers"] = (
            "a deliberately noisy 50-row problem leaves 5 rows for early stopping; with weights 1000 vs "
            "1e-4 they make the validation loss restore an early epoch. Passes with early_stopping=False "
            "(the second classifier checked)")
    return failures


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [MLPClassifier(hidden=(), epochs=2000, optimizer="lbfgs", l2=0.01),
                                       MLPClassifier(hidden=(16,), epochs=200, optimizer="lbfgs"),
                                       MLPRegressor(hidden=(16,), epochs=200, optimizer="lbfgs"),
                                       MLPRegressor(hidden=(), epochs=2000, optimizer="lbfgs", l2=0.01)],
                         ids=["softmax_l2", "clf_hidden", "reg_hidden", "reg_linear_l2"])
def test_sample_weights_act_as_repeated_rows_in_full_batch_training(estimator):
    """The weighted loss was a sum over n rows: the weights' scale moved the data term against l2 (weights x 10
    fitted another model; a weight of 2 was not a repeated row: 0.03 apart in probability), and a regression's
    targets were standardised unweighted. Full-batch training now passes scikit-learn's equivalence checks."""
    from sklearn.utils.estimator_checks import (check_sample_weight_equivalence_on_dense_data,
                                                check_sample_weight_equivalence_on_sparse_data)

    check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)
    check_sample_weight_equivalence_on_sparse_data(type(estimator).__name__, estimator)
    if isinstance(estimator, MLPClassifier):  # and the scale of the weights is no setting of its own
        X, y = blobs(60, centers=2)
        plain = estimator.fit(X, y).predict_proba(X)
        np.testing.assert_allclose(estimator.fit(X, y, sample_weight=np.full(60, 10.0)).predict_proba(X), plain,
                                   atol=1e-12)


# ── behaviour beyond the generic checks ────────────────────────────────────────────────────────────────


def blobs(n=120, centers=3, seed=0):
    X, y = make_blobs(n, n_features=5, centers=centers, random_state=seed)
    return StandardScaler().fit_transform(X), y


def test_same_random_state_same_model_and_different_seed_differs():
    X, y = blobs()
    a = MLPClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    b = MLPClassifier(**FAST, random_state=3).fit(X, y).predict_proba(X)
    c = MLPClassifier(**FAST, random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_predict_log_proba_is_the_log_of_predict_proba():
    """scikit-learn classifiers with predict_proba offer predict_log_proba (cross_val_predict asks for it by name)."""
    from sklearn.model_selection import cross_val_predict

    X, y = blobs()
    clf = MLPClassifier(**FAST, random_state=0).fit(X, y)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X), rtol=1e-12)
    assert cross_val_predict(MLPClassifier(**FAST), X, y, cv=3, method="predict_log_proba").shape == (len(X), 3)


def test_string_labels_proba_columns_follow_classes():
    X, y = blobs()
    names = np.array(["LumB", "Basal", "HER2"])[y]
    clf = MLPClassifier(**FAST).fit(X, names)
    assert list(clf.classes_) == ["Basal", "HER2", "LumB"]
    P = clf.predict_proba(X)
    assert P.shape == (len(X), 3) and np.allclose(P.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[P.argmax(axis=1)])
    assert clf.score(X, names) > 0.9


@pytest.mark.parametrize("loss", ["auto", "ce", "focal", "hinge"])
def test_binary_losses(loss):
    X, y = blobs(centers=2)
    clf = MLPClassifier(**FAST, loss=loss).fit(X, np.where(y == 1, "case", "ctrl"))
    P = clf.predict_proba(X)
    assert P.shape == (len(X), 2) and np.allclose(P.sum(axis=1), 1)
    assert clf.n_outputs_ == (2 if loss == "ce" else 1)
    assert clf.score(X, np.where(y == 1, "case", "ctrl")) > 0.9


def test_multilabel_target():
    X, y = blobs()
    Y = np.column_stack([y == 0, y == 1, y != 1]).astype(int)
    clf = MLPClassifier(**FAST, class_weight="balanced").fit(X, Y)
    assert clf.predict(X).shape == Y.shape and clf.predict_proba(X).shape == Y.shape
    assert clf.loss_ == "bce" and list(clf.classes_) == [0, 1, 2]
    assert clf.score(X, Y) > 0.8  # subset accuracy


def test_class_weight_dict_and_balanced_shift_predictions():
    X, y = make_blobs(200, n_features=2, centers=2, cluster_std=4, random_state=1)
    X = StandardScaler().fit_transform(X)
    plain = MLPClassifier(**FAST, early_stopping=False).fit(X, y)
    heavy = MLPClassifier(**FAST, early_stopping=False, class_weight={0: 20.0}).fit(X, y)
    assert (heavy.predict(X) == 0).mean() > (plain.predict(X) == 0).mean()
    MLPClassifier(**FAST, class_weight="balanced").fit(X, y)
    with pytest.raises(ValueError, match="class_weight names labels not in y"):
        MLPClassifier(**FAST, class_weight={7: 2.0}).fit(X, y)


def test_unit_sample_weights_change_nothing_and_others_do():
    X, y = blobs(centers=2)
    plain = MLPClassifier(**FAST).fit(X, y).predict_proba(X)
    ones = MLPClassifier(**FAST).fit(X, y, sample_weight=np.ones(len(y))).predict_proba(X)
    np.testing.assert_array_equal(plain, ones)
    w = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    weighted = MLPClassifier(**FAST).fit(X, y, sample_weight=w).predict_proba(X)
    assert not np.allclose(plain, weighted)


def test_regressor_multi_output_and_target_scale():
    X, y = make_regression(150, 6, n_targets=2, noise=1.0, random_state=0)
    y = y + 1000.0  # far from zero: targets are standardised inside
    reg = MLPRegressor(**FAST).fit(X, y)
    assert reg.predict(X).shape == (150, 2)
    assert reg.score(X, y) > 0.8
    reg1 = MLPRegressor(**FAST, loss="huber").fit(X, y[:, 0])
    assert reg1.predict(X).shape == (150,)


@pytest.mark.parametrize("params,needle", [
    (dict(dropout=1.0), "dropout"),
    (dict(hidden="64"), "hidden"),
    (dict(activation="softmax"), "activation"),
    (dict(loss="mse"), "loss"),
    (dict(lr=0), "lr"),
    (dict(lr_schedule="plateau", early_stopping=False), "lr_schedule"),
    (dict(loss="bce", label_smoothing=0.1), "label_smoothing"),
    (dict(class_weight="heavy"), "class_weight"),
])
def test_bad_parameters_raise_value_error_naming_them(params, needle):
    X, y = blobs(centers=2)
    with pytest.raises(ValueError, match=needle):
        MLPClassifier(**{**FAST, **params}).fit(X, y)


def test_multiclass_rejects_binary_only_loss():
    X, y = blobs(centers=3)
    with pytest.raises(ValueError, match=r"Only binary classification is supported with loss='bce' .*use loss='ce'"):
        MLPClassifier(**FAST, loss="bce").fit(X, y)


def test_pickle_round_trip_keeps_a_consistent_network():
    X, y = blobs()
    clf = MLPClassifier(**FAST).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    # the unpickled network's layer views share its flat parameter buffer again
    back.network_.flat_params[:] = 0
    assert np.allclose(back.network_.parameters()["dense0.W"], 0)
    assert hasattr(clf, "network_")  # pickling must not strip the live estimator


@pytest.mark.parametrize("estimator", [MLPClassifier, MLPRegressor])
def test_early_stopping_holds_out_whole_groups(estimator, monkeypatch):
    """The estimators' early-stopping split is model selection's grouped hold-out: whole groups, and
    every class on both sides for a classifier."""
    from mlpcli import training

    groups = np.repeat(np.arange(30), 4)
    y = np.repeat(np.arange(30) % 3, 4)
    X = np.random.default_rng(0).normal(size=(len(y), 3)) + y[:, None]
    seen = []
    real_fit = training.fit

    def spy(net, loss, X_tr, y_tr, X_va, y_va, *a, **k):
        seen.append((X_tr.copy(), X_va.copy(), y_tr.copy(), y_va.copy()))
        return real_fit(net, loss, X_tr, y_tr, X_va, y_va, *a, **k)

    monkeypatch.setattr("mlpcli.estimators.fit", spy)
    row_of = {tuple(np.round(r, 12)): i for i, r in enumerate(X)}
    for seed in range(3):
        estimator(hidden=(4,), epochs=2, random_state=seed).fit(X, y, groups=groups)
        X_tr, X_va, y_tr, y_va = seen[-1]
        tr = [row_of[tuple(np.round(r, 12))] for r in X_tr]
        va = [row_of[tuple(np.round(r, 12))] for r in X_va]
        assert len(va) and len(tr) + len(va) == len(groups)
        assert not set(groups[tr]) & set(groups[va])
        if estimator is MLPClassifier:
            assert set(y[va]) == set(y) == set(y[tr])


def test_fit_with_groups_in_pipeline_cross_validate_and_grid_search():
    X, y = blobs(n=120)
    groups = np.arange(120) // 3
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden=(8,), epochs=30, lr=1e-2))
    res = cross_validate(pipe, X, y, groups=groups, cv=GroupKFold(3), params={"mlpclassifier__groups": groups})
    assert res["test_score"].shape == (3,) and res["test_score"].mean() > 0.8

    search = GridSearchCV(pipe, {"mlpclassifier__dropout": [0.0, 0.3], "mlpclassifier__l2": [0.0, 1e-3]},
                          cv=GroupKFold(3))
    search.fit(X, y, groups=groups, mlpclassifier__groups=groups)
    assert set(search.best_params_) == {"mlpclassifier__dropout", "mlpclassifier__l2"}
    assert search.best_estimator_.predict(X).shape == (120,)


def test_regressor_in_grid_search():
    X, y = make_regression(90, 4, noise=0.5, random_state=2)
    search = GridSearchCV(make_pipeline(StandardScaler(), MLPRegressor(hidden=(8,), epochs=40, lr=1e-2)),
                          {"mlpregressor__hidden": [(8,), (16, 8)]}, cv=3)
    search.fit(X, y)
    assert search.best_score_ > 0.5


def test_auto_settings_are_resolved_for_the_data_as_train_resolves_them():
    """"auto" is a valid value of the train options the estimators mirror; it was accepted, then crashed."""
    X, y = make_blobs(n_samples=120, centers=3, n_features=6, random_state=0)
    auto = MLPClassifier(hidden=(8,), augment_noise="auto", lr="auto", l2="auto", batch_size="auto", epochs="auto",
                         random_state=0).fit(X, y)
    assert auto.predict_proba(X).shape == (120, 3) and auto.score(X, y) > 0.9
    assert MLPRegressor(hidden=(4,), epochs="auto", random_state=0).fit(*make_regression(60, 4, random_state=0))


# ---------------------------------------------------------------- a fit that fails or is interrupted
def _subtype_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = np.array(["Basal", "HER2", "LumA"])[np.arange(n) % 3]
    X[np.arange(n), np.arange(n) % 3] += 2.0
    return X, y


def test_a_failed_refit_leaves_the_fitted_estimator_as_it_was():
    """Refitting on another target that cannot be split (one site) fails: the estimator must still be the
    first model, not the new labels on the old network."""
    X, subtype = _subtype_data()
    clf = MLPClassifier(hidden=(8,), epochs=5).fit(X, subtype)
    before = clf.predict(X[:10]), clf.predict_proba(X[:10]), clf.classes_.copy()
    stage = np.array(["I", "II", "III"])[np.arange(120) % 3]
    with pytest.raises(ValueError, match="at least 2 groups"):
        clf.fit(X, stage, groups=np.zeros(120))
    np.testing.assert_array_equal(clf.classes_, before[2])
    np.testing.assert_array_equal(clf.predict(X[:10]), before[0])
    np.testing.assert_array_equal(clf.predict_proba(X[:10]), before[1])

    reg = MLPRegressor(hidden=(8,), epochs=5).fit(X, 60 + 10 * X[:, 0])
    expected = reg.predict(X[:5])
    with pytest.raises(ValueError):
        reg.fit(X, 1000 * X[:, 0], groups=np.zeros(120))
    np.testing.assert_array_equal(reg.predict(X[:5]), expected)

    fresh = MLPClassifier(hidden=(8,), epochs=5)
    with pytest.raises(ValueError):
        fresh.fit(X, stage, groups=np.zeros(120))
    assert not hasattr(fresh, "classes_") and not hasattr(fresh, "n_features_in_")


def test_ctrl_c_during_fit_propagates_and_keeps_the_previous_model(monkeypatch):
    """The fit loop keeps what it trained when interrupted (the CLI saves it); a library call must stop
    instead, as any Python call does on Ctrl-C, and not report a truncated model as fitted."""
    import mlpcli.estimators as estimators

    X, y = _subtype_data()
    clf = MLPClassifier(hidden=(8,), epochs=5).fit(X, y)
    expected = clf.predict_proba(X[:5])
    real_fit = estimators.fit

    def interrupted_fit(*args, **kwargs):
        result = real_fit(*args, **kwargs)
        result.interrupted = True  # what the loop returns after absorbing a KeyboardInterrupt
        return result

    monkeypatch.setattr(estimators, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X[:5]), expected)


def test_random_state_beyond_numpy_seeds_is_refused_by_name():
    X, y = _subtype_data()
    for early_stopping in (True, False):
        with pytest.raises(ValueError, match=r"random_state must be None, a whole number in \[0, 2\*\*32 - 1\]"):
            MLPClassifier(hidden=(8,), epochs=2, random_state=2**32, early_stopping=early_stopping).fit(X, y)
    MLPClassifier(hidden=(8,), epochs=2, random_state=2**32 - 1).fit(X, y)


def test_early_stopping_errors_name_the_estimators_parameters():
    X, y = _subtype_data(n=60)
    patients = np.repeat(np.arange(5), 12)
    with pytest.raises(ValueError) as info:
        MLPClassifier(hidden=(8,), epochs=2, validation_fraction=0.1).fit(X, y, groups=patients)
    message = str(info.value)
    assert "validation_fraction 0.1" in message and "'groups'" in message and "early_stopping=False" in message
    assert "--" not in message and "val_size" not in message and message.count("add ") <= 1


def test_grouped_early_stopping_holds_out_the_fraction_asked_for():
    """validation_fraction 0.4 of the groups is 2 of 5 grouped folds, not 1 of round(1 / 0.4) = 2 (50 %)."""
    from mlpcli import data
    from mlpcli.model_selection import holdout

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(100), 4)
    y = (groups % 3).astype(np.int64)
    ds = data.Dataset(X=rng.normal(size=(400, 3)), y=y, feature_names=["a", "b", "c"], task="multiclass",
                      classes=["a", "b", "c"], groups=groups)
    for fraction in (0.1, 0.2, 0.3, 0.4, 0.6, 0.8):
        train, val, summary = holdout(ds, fraction, seed=0)
        assert len(val) / 400 == pytest.approx(fraction, abs=0.02)
        assert not set(groups[train]) & set(groups[val])
    assert holdout(ds, 0.2, seed=0)[2].strategy.endswith("(fold 1 of 5 as validation)")  # as before
    assert holdout(ds, 0.4, seed=0)[2].strategy.endswith("(folds 1, 2 of 5 as validation)")


def test_train_options_take_tuples_for_lists():
    from mlpcli.config import TrainOptions

    options = TrainOptions(hidden=(64, 32), target=("label",))
    options.validate()
    assert options.hidden == [64, 32] and options.target == ["label"]


def test_a_class_with_one_sample_always_trains():
    """Classes too small to stratify the early-stopping split fall back to a random split; a class's only
    sample went to the validation side for some seeds, so the network never saw that class. It trains now:
    a distinct singleton is recognised whatever the seed."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = np.array(["a"] * 20 + ["b"] * 19 + ["c"])
    X[:20, 0] += 3.0
    X[39] = [0.0, 0.0, 0.0, 12.0]  # the only "c", far from the others
    for seed in range(8):
        clf = MLPClassifier(hidden=(16,), epochs=100, lr=1e-2, class_weight="balanced", random_state=seed).fit(X, y)
        assert clf.predict(X[39:40])[0] == "c", seed


def test_grouped_hold_out_with_few_groups_takes_the_nearest_share():
    """With 4 patients, --val-size 0.55 cannot be met exactly: one of two folds is held out (it was refused
    with advice to use --val-size 0.00); 0.9 is out of reach, and the error names what is within it (it
    advised "0.25 or more")."""
    from mlpcli import data
    from mlpcli.model_selection import holdout

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(4), 150).astype(str)
    y = rng.integers(0, 3, size=groups.size)
    ds = data.Dataset(X=rng.normal(size=(600, 4)), y=y, feature_names=list("abcd"), task="multiclass",
                      classes=["A", "B", "C"], groups=groups, roles=data.Roles(target=["label"], group="patient"))
    for fraction in (0.45, 0.55):  # one of two folds: within 0.05 of what was asked
        train, val, summary = holdout(ds, fraction, seed=0)
        assert len(val) / 600 == pytest.approx(0.5, abs=0.13) and not set(groups[train]) & set(groups[val])
    from mlpcli.errors import DataError

    with pytest.raises(DataError, match=r"4 groups in 'patient' are too few for --val-size 0.9: the nearest share "
                                        r"whole groups allow is 3 of 4 folds \(0.75\); use --val-size 0.75"):
        holdout(ds, 0.9, seed=0)


def test_early_stopping_with_many_one_sample_classes_still_fits():
    """Six classes of one sample and two of three: the validation rows come from the larger classes only,
    as many as validation_fraction asks of all rows, and the fit goes on."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = np.array(["a", "b", "c", "d", "e", "f", "g", "g", "g", "h", "h", "h"])
    for fraction in (0.2, 0.5):
        clf = MLPClassifier(hidden=(4,), epochs=3, validation_fraction=fraction).fit(X, y)
        assert list(clf.classes_) == list("abcdefgh")


def test_patience_auto_is_the_adaptive_patience_of_train():
    """patience="auto" passed the parameter check, then fit crashed on int('auto')."""
    from sklearn.datasets import make_classification

    from mlpcli.estimators import MLPClassifier

    X, y = make_classification(n_samples=80, n_features=10, random_state=0)
    clf = MLPClassifier(hidden=(8,), epochs=5, patience="auto", random_state=0).fit(X, y)
    assert clf.predict_proba(X).shape == (80, 2)
    config = clf._fit_config(0, clf._resolved(64, 10))
    assert config.adaptive_patience and config.patience == 20


def test_outputs_that_overflow_float32_are_an_error_naming_the_row_not_class_zero():
    """predict_proba gave NaN rows (and predict classes_[0]) with NumPy warnings when a row's values
    overflowed a float32 network; Model.predict_output already named the row."""
    import warnings

    from sklearn.datasets import make_classification

    from mlpcli.estimators import MLPClassifier

    X, y = make_classification(n_samples=80, n_features=10, random_state=0)
    clf = MLPClassifier(hidden=(8,), epochs=3, dtype="float32", random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"not finite for row \d+ .*float32.*or use dtype='float64'"):
            clf.predict(X * 1e38)
        assert clf.predict_proba(X).shape == (80, 2)
    # a float64 network is told to check the row only (it was told to use float64), and a NaN that
    # assume_finite=True let through is named as one, not as an overflow
    import sklearn

    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    Xw, yw = load_wine(return_X_y=True)
    Xw = StandardScaler().fit_transform(Xw)
    wide = MLPClassifier(hidden=(64, 64), epochs=10, random_state=0).fit(Xw, yw)
    with pytest.raises(ValueError, match=r"overflowed its float64 arithmetic; check that row$"):
        wide.predict(Xw[:2] * 5e307)
    holed = Xw[:3].copy()
    holed[2, 4] = np.nan
    with sklearn.config_context(assume_finite=True):
        with pytest.raises(ValueError, match=r"row 2 \(0-based\) of X holds a missing or infinite value"):
            wide.predict(holed)
        # and in fit, where the gap made training "diverge" with a lower lr as the advice
        from mlpcli.estimators import MLPRegressor

        with pytest.raises(ValueError, match=r"row 2 \(0-based\) of X holds a missing or infinite value .*assume_finite"):
            gapped = Xw.copy()
            gapped[2, 4] = np.nan
            MLPClassifier(hidden=(8,), epochs=3, random_state=0).fit(gapped, yw)
        target = Xw[:60, 0].copy()
        target[7] = np.nan
        with pytest.raises(ValueError, match=r"row 7 \(0-based\) of y holds a missing or infinite value"):
            MLPRegressor(hidden=(8,), epochs=3, random_state=0).fit(Xw[:60], target)


def test_gaps_in_the_held_out_rows_or_weights_are_errors_not_epoch_one():
    """A value sklearn's assume_finite=True let through into the early-stopping rows only made every validation loss
    NaN, and the fit returned epoch 1's network without a word (training accuracy 0.60 for 1.0); a NaN weight and a
    float32 value whose square overflows were "training diverged ... lower lr", which no lr fixes."""
    import sklearn
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for seed in range(4):  # row 0 held out for some seeds, trained on for others: an error either way
        fast = dict(hidden=(16,), lr=1e-2, epochs=8, random_state=seed)
        with sklearn.config_context(assume_finite=True):
            holed = X.copy()
            holed[0, 0] = np.nan
            with pytest.raises(ValueError, match=r"row 0 \(0-based\) of X holds a missing or infinite value"):
                MLPClassifier(**fast).fit(holed, y)
            w = np.ones(len(y))
            w[0] = np.nan
            with pytest.raises(ValueError, match=r"sample_weight\[0\] is nan .*finite weight"):
                MLPClassifier(**fast).fit(X, y, sample_weight=w)
        huge = X.copy()
        huge[0, :] = 3e38
        with pytest.raises(ValueError, match=r"row 0, column 0 \(0-based\) of X holds 3e\+38, whose square overflows "
                                             r"float32.*dtype='float64'"):
            MLPClassifier(**fast, dtype="float32").fit(huge, y)
    assert MLPClassifier(hidden=(16,), lr=1e-2, epochs=8, random_state=0).fit(X, y).score(X, y) > 0.9


def test_a_never_finite_early_stopping_loss_is_an_error():
    """Held-out values large enough to overflow a float64 network's outputs: every validation loss was inf and the fit
    returned epoch 1's network (train goes on with a warning: there its other members score)."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X[0] = 1.5e308  # row 0 is held out for random_state=0 (trained on, it makes training diverge, an error too)
    with pytest.raises(ValueError, match="early-stopping loss was not finite at any of the 4 epochs .*early_stopping=False"):
        MLPClassifier(hidden=(16,), epochs=4, patience=10, random_state=0).fit(X, y)


def test_a_multilabel_matrix_must_hold_zeros_and_ones():
    """-1/+1 (or 0/2) is a "multilabel-indicator" to scikit-learn: the values went to the binary cross-entropy as
    targets, the loss fell without bound and the model predicted 14 % positives for 46 %."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    Y = np.where(X[:, :3] > 0, 1, -1)
    with pytest.raises(ValueError, match=r"multi-label matrix \(3 columns\), whose values must be 0 and 1 .* holds -1, 1"):
        MLPClassifier(hidden=(8,), epochs=3).fit(X, Y)
    with pytest.raises(ValueError, match="holds 0, 2"):
        MLPClassifier(hidden=(8,), epochs=3).fit(X, (Y > 0) * 2)
    assert MLPClassifier(hidden=(8,), epochs=3).fit(X, (Y > 0).astype(bool)).predict(X).shape == (120, 3)


def test_balanced_class_weights_with_sample_weights_count_classes_as_scikit_learn_does():
    """class_weight="balanced" divided by the classes' unweighted counts when sample_weight was given; scikit-learn
    (compute_class_weight with sample_weight, as LogisticRegression uses it) divides by their weighted counts: the
    probabilities differed by 3e-2 from LogisticRegression's, 3e-5 now."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from mlpcli.estimators import MLPClassifier

    X, y = make_classification(n_samples=500, n_features=30, n_informative=8, n_classes=3, random_state=4)
    X = (X - X.mean(0)) / X.std(0)
    sw = np.random.default_rng(0).uniform(0.2, 3, 500)
    # LogisticRegression's objective, C sum(w l) + |b|^2 / 2, is ours, sum(w l) / sum(w) + l2 |b|^2 (weights of mean
    # 1: the rows repeated), at l2 = 0.5 / sum(w)
    m = MLPClassifier(hidden=(), optimizer="lbfgs", early_stopping=False, dtype="float64", epochs=1000,
                      class_weight="balanced", random_state=0, l2=0.5 / sw.sum()).fit(X, y, sample_weight=sw)
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000, class_weight="balanced").fit(X, y, sample_weight=sw)
    assert np.abs(m.predict_proba(X) - sk.predict_proba(X)).max() < 1e-3
    with pytest.raises(ValueError, match="total sample_weight, which is 0 for"):
        MLPClassifier(hidden=(), class_weight="balanced", epochs=2).fit(X, y, sample_weight=np.where(y == 0, 0.0, 1.0))


def test_estimator_inputs_named_in_their_errors_and_tags_that_follow_the_loss():
    """A 2-D groups was "y should be a 1d array"; MLPRegressor with a sparse y failed inside NumPy; the tags claimed
    multi-label with loss="ce" (which refuses it) and multiclass with "hinge"/"focal" (which refuse it), so
    scikit-learn's checks fed them targets they refuse."""
    import scipy.sparse as sp
    from sklearn.datasets import make_classification, make_regression

    from mlpcli.estimators import MLPClassifier, MLPRegressor

    X, y = make_classification(n_samples=60, n_features=5, n_classes=3, n_informative=3, random_state=0)
    with pytest.raises(ValueError, match=r"groups should be a 1d array .* shape \(60, 2\)"):
        MLPClassifier(epochs=1).fit(X, y, groups=np.c_[y, y])
    Xr, yr = make_regression(n_samples=60, n_features=4, random_state=0)
    dense = MLPRegressor(hidden=(4,), epochs=3).fit(Xr, yr[:, None])
    sparse = MLPRegressor(hidden=(4,), epochs=3).fit(Xr, sp.csr_matrix(yr[:, None]))
    assert np.array_equal(dense.predict(Xr), sparse.predict(Xr))
    tags = {loss: MLPClassifier(loss=loss).__sklearn_tags__().classifier_tags for loss in ("auto", "ce", "hinge")}
    assert (tags["auto"].multi_class, tags["auto"].multi_label) == (True, True)
    assert (tags["ce"].multi_class, tags["ce"].multi_label) == (True, False)
    assert (tags["hinge"].multi_class, tags["hinge"].multi_label) == (False, True)
    with pytest.raises(ValueError, match=r"Only binary classification is supported with loss='hinge'"):
        MLPClassifier(loss="hinge", epochs=1).fit(X, y)


def test_weight_decay_auto_is_the_command_lines_rule():
    """weight_decay='auto' failed with "could not convert string to float: 'auto'" at fit."""
    from mlpcli.estimators import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = X[:, 0] * 2 + rng.normal(0, 0.1, 120)
    common = dict(optimizer="adamw", hidden=(), epochs=5, random_state=0)
    auto = MLPRegressor(weight_decay="auto", **common).fit(X, y)
    given = MLPRegressor(weight_decay=0.01, **common).fit(X, y)
    np.testing.assert_array_equal(auto.predict(X), given.predict(X))
    labels = (X[:, 0] > 0).astype(int)
    auto = MLPClassifier(weight_decay="auto", **common).fit(X, labels)
    given = MLPClassifier(weight_decay=1.0, **common).fit(X, labels)
    np.testing.assert_array_equal(auto.predict_proba(X), given.predict_proba(X))
    MLPRegressor(weight_decay="auto", optimizer="adam", hidden=(), epochs=2).fit(X, y)  # nothing asked of adam
