"""Review 13: the scikit-learn estimators and the parallel runner, as a scikit-learn user drives them."""

import signal

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs

from mlpcli.errors import TrainingError
from mlpcli.estimators import MLPClassifier, MLPRegressor
from mlpcli.parallel import Plan, run

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


def test_early_stopping_rows_all_of_weight_zero_are_an_error_not_epoch_one():
    X, y = make_blobs(60, n_features=4, centers=2, random_state=0)
    weights = np.zeros(60)
    weights[:3] = 1  # with random_state=1 none of them is among the 6 validation rows
    with pytest.raises(ValueError, match=r"samples held out for early stopping \(6 of 60\) all have sample_weight 0"):
        MLPClassifier(hidden=(4,), epochs=5, random_state=1).fit(X, y, sample_weight=weights)
    MLPClassifier(hidden=(4,), epochs=5, random_state=1, early_stopping=False).fit(X, y, sample_weight=weights)


# ── the parallel runner: a worker's failure comes back as one clear error ────────────────────────────────


def test_an_exception_that_cannot_be_unpickled_keeps_its_message():
    # defined here, so that they travel by value and the workers need not import this module (seconds)
    class TwoArgumentError(Exception):
        def __init__(self, column, row):  # pickled as its args, one message: it cannot be rebuilt from them
            super().__init__(f"column {column!r} is bad at row {row}")

    def fails_with_two_arguments(i):
        if i == 1:
            raise TwoArgumentError("GENE_7", 3)
        return i

    with pytest.raises(RuntimeError, match=r"TwoArgumentError in a worker process: column 'GENE_7' is bad at row 3"):
        run([(fails_with_two_arguments, (i,)) for i in range(2)], Plan(n_jobs=2))


def test_a_worker_killed_by_sigkill_is_one_line_naming_memory_and_n_jobs():
    tasks = [(signal.raise_signal, (signal.SIGKILL,)), (sorted, ([2, 1],))]
    with pytest.raises(TrainingError) as info:
        run(tasks, Plan(n_jobs=2))
    message = str(info.value)
    assert "\n" not in message and "SIGKILL" in message
    assert "out-of-memory" in message and "--n-jobs" in message


def _killed_worker(key):
    from distributed.scheduler import KilledWorker

    raise KilledWorker(key, "tcp://127.0.0.1:1", "worker died")


def test_a_dask_task_whose_workers_kept_dying_is_one_line_naming_memory():
    """distributed's KilledWorker (the scheduler gives up on a task after its workers died under it, most often
    at their memory limit) reached the command line as an 'internal error'."""
    pytest.importorskip("distributed")
    with pytest.raises(TrainingError) as info:
        run([(_killed_worker, ("fit-1",))], Plan(n_jobs=1))
    message = str(info.value)
    assert "\n" not in message and "memory" in message and "--n-jobs 1" in message
