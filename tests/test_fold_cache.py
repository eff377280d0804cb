"""The portfolio's candidates preprocess each fold once: `fit_run` takes a fold already preprocessed
(`prepare_fold`) when it applies, `FoldCache` keeps folds within a byte budget, and an ensemble trained with
the folds shared is the model trained without them, in this process and in worker processes alike."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mlpcli import data, model_io, parallel, pipeline
from mlpcli.config import TrainOptions
from mlpcli.model_selection import crossfit
from mlpcli.model_selection.fitting import FoldCache, fit_run, prepare_fold
from tables import make_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("fold_cache") / "t.csv"
    # more features than a member's training rows: --hidden auto tries five candidates (two learning rates and
    # L-BFGS for the softmax regression, the hidden layer with and without input noise)
    make_table("multiclass", n_patients=15, per_patient=2, n_features=40, seed=3).to_csv(path, index=False)
    return path


def _dataset(path, options):
    ds, _ = pipeline.load_dataset(str(path), options)
    return ds


def _halves(ds):
    rows = np.arange(ds.n_samples)
    return ds.subset(rows[rows % 3 != 0]), ds.subset(rows[rows % 3 == 0])


def test_a_prepared_fold_is_used_as_it_is_and_gives_the_same_run(table):
    options = TrainOptions(hidden=[8], epochs=3, log1p=False)
    train_ds, val_ds = _halves(_dataset(table, options))
    fold = prepare_fold(train_ds, val_ds, options)
    shared = fit_run(train_ds, val_ds, options, prepared=fold)
    assert shared.X_train is fold.X_train and shared.X_val is fold.X_val and shared.preprocessor is fold.preprocessor
    alone = fit_run(train_ds, val_ds, options)
    assert alone.X_train is not fold.X_train
    np.testing.assert_array_equal(alone.X_train, fold.X_train)
    np.testing.assert_array_equal(shared.network.flat_params, alone.network.flat_params)
    assert shared.val_shift == alone.val_shift


@pytest.mark.parametrize("change", [dict(dtype="float64"), dict(standardize=False), dict(top_var=10)])
def test_a_fold_preprocessed_otherwise_is_not_used(table, change):
    options = TrainOptions(hidden=[8], epochs=2, log1p=False)
    ds = _dataset(table, options)
    train_ds, val_ds = _halves(ds)
    fold = prepare_fold(train_ds, val_ds, options)
    other = replace(options, **change)
    run = fit_run(train_ds, val_ds, other, prepared=fold)
    assert run.X_train is not fold.X_train and run.preprocessor is not fold.preprocessor
    assert not fold.applies_to(train_ds, other)
    # another fold's rows (as many of them) are not this fold's either
    assert not fold.applies_to(val_ds, options)


def test_the_cache_keeps_folds_within_its_budget_and_lets_them_go(table):
    options = TrainOptions(log1p=False)
    train_ds, val_ds = _halves(_dataset(table, options))
    made = []

    def make():
        made.append(1)
        return prepare_fold(train_ds, val_ds, options)

    size = prepare_fold(train_ds, val_ds, options).nbytes
    assert size == train_ds.n_samples * 40 * 4 + val_ds.n_samples * 40 * 4  # float32 rows, every feature kept
    cache = FoldCache(2 * size)
    first = cache.get(1, make)
    assert cache.get(1, make) is first and len(made) == 1
    cache.get(2, make)
    assert cache.used == 2 * size
    # beyond the budget: made each time it is asked for, the folds kept stay (no eviction)
    third = cache.get(3, make)
    assert cache.get(3, make) is not third and len(made) == 4
    assert set(cache.folds) == {1, 2}
    cache.release([1, 3])
    assert set(cache.folds) == {2} and cache.used == size
    assert cache.get(3, make) is cache.get(3, make) and len(made) == 5
    assert FoldCache(0).get(1, make) is not FoldCache(0).get(1, make)


def test_an_ensemble_trained_here_preprocesses_each_fold_once_for_all_its_candidates(table, monkeypatch):
    options = TrainOptions(epochs=3, folds=3, log1p=False)
    fits = []
    original = data.Preprocessor.fit_transform

    def counted(self, *args, **kwargs):
        fits.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(data.Preprocessor, "fit_transform", counted)
    outcome = pipeline.train(str(table), options, plan=parallel.Plan(n_jobs=1))
    assert len(outcome.fitted.portfolio) >= 3 and len(outcome.fitted.members) == 3
    # one preprocessing per fold (five candidates x three folds made fifteen)
    assert len(fits) == 3


def test_a_stop_in_a_later_fold_chooses_among_every_candidate_on_the_folds_all_finished(table):
    """Trained here, fold by fold: a stop while the third candidate trains on the second fold keeps the first fold's
    members of every candidate and chooses among them there (the second fold's two finished members go)."""
    options = TrainOptions(epochs=3, folds=3, log1p=False)

    def stop(row):
        if row.get("member") == 2 and row.get("candidate") == 3 and row.get("epoch") == 2:
            raise KeyboardInterrupt

    outcome = pipeline.train(str(table), options, progress=stop, plan=parallel.Plan(n_jobs=1))
    n_candidates = len(outcome.fitted.portfolio)
    assert outcome.interrupted and len(outcome.model.members) == 1
    assert outcome.fitted.held_out_by.tolist() == [1] * len(outcome.fitted.scored_rows)
    assert any(f"chosen among the {n_candidates} architectures on the 1 fold each of them finished" in n
               for n in outcome.notes), outcome.notes
    # what it scored are the first fold's held-out rows, each candidate on them
    assert all(entry["score"] is not None for entry in outcome.fitted.portfolio)


def test_members_in_worker_processes_sharing_folds_give_the_model_trained_here(table):
    options = TrainOptions(epochs=3, folds=3, log1p=False)
    here = pipeline.train(str(table), options, plan=parallel.Plan(n_jobs=1)).model
    workers = pipeline.train(str(table), options, plan=parallel.Plan(n_jobs=2, auto=True)).model
    assert model_io.to_bytes(workers) == model_io.to_bytes(here)


@pytest.fixture
def copies_too_large(monkeypatch):
    """Two usable cores, and every worker process's copy of the rows over the limit: the default plan trains the
    members here, each fold's candidates side by side in threads."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    monkeypatch.setattr(parallel, "MEMBER_COPY_BYTES", 0)


def test_a_folds_candidates_in_threads_give_the_model_trained_one_after_the_other(table, copies_too_large):
    options = TrainOptions(epochs=3, folds=3, log1p=False)
    events = []
    threaded = pipeline.train(str(table), options, progress=events.append, plan=parallel.member_plan())
    done = [e["done"] for e in events if e.get("event") == "run_done"]
    n_runs = len(threaded.fitted.portfolio) * 3
    assert done == list(range(1, n_runs + 1))  # a count of networks, not interleaved epoch rows
    assert not any("epoch" in e for e in events)
    alone = pipeline.train(str(table), options, plan=parallel.Plan(n_jobs=1))
    assert model_io.to_bytes(threaded.model) == model_io.to_bytes(alone.model)


def test_a_stop_while_candidates_train_in_threads_keeps_what_they_learnt(table, copies_too_large):
    """Ctrl-C (SIGINT to the process) reaches the main thread only, which waits for the fold's threads: they end at
    their next epoch with their best weights, and the model keeps the members trained by then."""
    import os
    import signal
    import threading

    import time

    options = TrainOptions(epochs=100_000, patience=100_000, folds=3, log1p=False)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        outcome = pipeline.train(str(table), options, plan=parallel.member_plan())
    finally:
        timer.cancel()
    assert time.monotonic() - started < 30  # not the 100,000 epochs: the threads stopped at their next epoch
    assert outcome.interrupted
    assert 1 <= len(outcome.model.members) < 3  # the first fold's members, chosen among (L-BFGS's may have converged)
