"""`cv`, `tune` and `diagnose --learning-curve` without --n-jobs run their fits on the usable cores, as `train` runs
its members (one worker process per fit at most, this process when each worker would copy large data), with the
same results as one after the other; an --n-jobs given is obeyed."""

from __future__ import annotations

import json

import pytest

from mlpcli import parallel
from mlpcli.config import TrainOptions
from mlpcli.model_selection import learning_curve as lc
from mlpcli.parallel import MEMBER_COPY_BYTES, Plan, fits_plan, member_plan
from cli_helpers import run
from tables import make_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("default_workers") / "t.csv"
    make_table("multiclass", n_patients=18, per_patient=2, n_features=8, seed=5).to_csv(path, index=False)
    return path


def test_the_default_plan_takes_a_worker_per_fit_up_to_the_cores_unless_copies_are_large(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 4)
    default = member_plan()
    assert default.auto and default.n_jobs == 4
    assert fits_plan(default, 3, 10).n_jobs == 3  # at most one per fit
    assert fits_plan(default, 12, 10).n_jobs == 4
    assert fits_plan(default, 12, MEMBER_COPY_BYTES + 1).n_jobs == 1  # each worker would copy large data
    given = Plan(n_jobs=2)  # --n-jobs 2: obeyed whatever the copies
    assert fits_plan(given, 12, MEMBER_COPY_BYTES + 1) is given
    dask = Plan(backend="dask", n_jobs=None, scheduler="tcp://127.0.0.1:1", auto=True)
    assert fits_plan(dask, 12, 10) is dask


def _cv(args):
    res = run(["cv", *args])
    assert res.exit_code == 0, res.output
    return res


def test_cv_without_n_jobs_runs_the_folds_on_the_usable_cores_with_the_same_scores(table, monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    common = [str(table), "--folds", "3", "--hidden", "4", "--epochs", "3", "--member-folds", "1"]
    default = _cv([*common, "--json"])
    assert "3 fits on 2 local worker processes" in default.stderr
    doc = json.loads(default.stdout)
    assert doc["parallel"]["n_jobs"] == 2
    here = json.loads(_cv([*common, "--json", "--n-jobs", "1"]).stdout)
    assert here["parallel"]["n_jobs"] == 1
    assert doc["per_fold"] and [f["metrics"] for f in doc["per_fold"]] == [f["metrics"] for f in here["per_fold"]]


def test_cv_without_n_jobs_stays_in_this_process_on_one_core(table, monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 1)
    res = _cv([str(table), "--folds", "2", "--hidden", "4", "--epochs", "2", "--member-folds", "1"])
    assert "2 fits in this process" in res.stderr


def test_tune_without_n_jobs_runs_its_fits_on_the_usable_cores(table, monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    res = run(["tune", str(table), "--folds", "2", "--grid", "lr=1e-3,1e-2", "--hidden", "4", "--epochs", "2"])
    assert res.exit_code == 0, res.output
    assert "4 fits on 2 local worker processes" in res.stderr


def test_a_learning_curve_reports_its_sizes_smallest_first_whatever_order_they_finish_in(table, monkeypatch):
    """Sizes trained side by side finish in any order (the smallest, early-stopped latest, often last): the
    progress (the command's lines) still comes smallest first."""
    real_run = lc.run

    def backwards(tasks, plan, on_result=None, **kwargs):  # the sizes finishing largest first
        results = real_run(tasks, Plan(n_jobs=1, threads=plan.threads), **kwargs)
        for result in reversed(results):
            if on_result is not None:
                on_result(result)
        return results

    monkeypatch.setattr(lc, "run", backwards)
    seen = []
    result = lc.learning_curve(str(table), TrainOptions(hidden=[4], epochs=3), [0.25, 0.5, 1.0], n_jobs=None,
                               progress=lambda p: seen.append(p.fraction))
    assert seen == [0.25, 0.5, 1.0] == [p.fraction for p in result.points]


def test_diagnose_learning_curve_without_n_jobs_says_where_the_sizes_train(table, monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    res = run(["diagnose", "--learning-curve", str(table), "--fractions", "0.5,1", "--hidden", "4", "--epochs", "3"])
    assert res.exit_code == 0, res.output
    assert "side by side on the usable cores (--n-jobs to choose)" in res.stderr
    res = run(["diagnose", "--learning-curve", str(table), "--fractions", "0.5,1", "--hidden", "4", "--epochs", "3",
               "--n-jobs", "1"])
    assert res.exit_code == 0 and "with --n-jobs 1" in res.stderr
