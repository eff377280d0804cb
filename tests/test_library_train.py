"""`pipeline.train`, the call a notebook makes, gives the model file `mlpcli train` writes: the same member plan
(processes on the usable cores, one BLAS thread each) and the same BLAS cap, whatever the caller's threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from mlpcli import model_io, parallel, pipeline
from mlpcli.config import TrainOptions
from blas_threads import numpy_blas_threads
from cli_helpers import run
from tables import make_table


def test_the_library_call_writes_the_command_s_model(tmp_path):
    path = tmp_path / "t.csv"
    make_table("multiclass", n_patients=24, per_patient=2, n_features=30, seed=4).to_csv(path, index=False)
    command = tmp_path / "cli.mlp"
    res = run(["train", str(path), "--epochs", "4", "--hidden", "16", "--folds", "3", "-q", "-o", str(command)])
    assert res.exit_code == 0, res.output
    options = dict(epochs=4, hidden=[16], folds=3)
    with threadpool_limits(limits=2):  # a notebook's BLAS threads: the call caps them as the command does
        default = pipeline.train(str(path), TrainOptions(**options)).model
    assert default.provenance["threads"] == 1
    assert model_io.to_bytes(default) == Path(command).read_bytes()
    here = pipeline.train(str(path), TrainOptions(**options), plan=parallel.Plan(n_jobs=1)).model  # in this process
    assert model_io.to_bytes(here) == Path(command).read_bytes()


def test_the_default_plan_fills_the_usable_cores():
    plan = parallel.member_plan()
    assert plan.auto and plan.backend == "loky" and plan.blas_threads == 1
    assert plan.n_jobs == parallel.usable_cores()
    assert parallel.member_plan(threads=2).n_jobs == max(1, parallel.usable_cores() // 2)
    given = parallel.member_plan(n_jobs=3, threads=1)
    assert not given.auto and given.n_jobs == 3


def test_fit_model_caps_blas_threads_as_the_commands_do():
    """The README's notebook call fit_model(ds, TrainOptions()) left BLAS its default thread count (every core):
    on a busy 2-core machine 268 s against 34 s, for products too small to share. It now runs with the plan's
    BLAS threads (default 1, as every command), whatever the caller's setting."""
    from threadpoolctl import threadpool_limits

    from blas_threads import numpy_blas_threads

    from mlpcli import data as data_lib
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection import fit_model
    from mlpcli.parallel import Plan

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(40, 4)), columns=[f"g{j}" for j in range(4)])
    df["label"] = np.array(["a", "b"])[np.arange(40) % 2]
    roles, _ = data_lib.resolve_roles(df.columns, no_group=True)
    ds = data_lib.Dataset.from_frame(df, roles)

    if not numpy_blas_threads():
        pytest.skip("NumPy's BLAS is not one threadpoolctl can see")
    seen = []

    def progress(row):
        seen.append(numpy_blas_threads()[0])

    with threadpool_limits(limits=2):
        fit_model(ds, TrainOptions(hidden=[4], epochs=2, folds=2), progress=progress)
        assert seen and set(seen) == {1}
        seen.clear()
        fit_model(ds, TrainOptions(hidden=[4], epochs=2, folds=2), progress=progress, plan=Plan(threads=2))
        assert set(seen) == {2}


def test_fit_model_in_threads_side_by_side_leaves_blas_as_it_was():
    """A notebook fitting several models in a thread pool: each fit capped BLAS with threadpool_limits and put
    back what it had found when it ended, out of order across threads, which left the process at 1 BLAS thread
    for good (and threadpoolctl >= 3.6 lets only the thread that set a limit change it)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from mlpcli import data as data_lib
    from mlpcli.config import TrainOptions
    from mlpcli.model_selection import fit_model

    if not numpy_blas_threads():
        pytest.skip("NumPy's BLAS is not one threadpoolctl can see")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(40, 4)), columns=[f"g{j}" for j in range(4)])
    df["label"] = np.array(["a", "b"])[np.arange(40) % 2]
    roles, _ = data_lib.resolve_roles(df.columns, no_group=True)
    ds = data_lib.Dataset.from_frame(df, roles)
    seen = []
    with threadpool_limits(limits=2):
        before = numpy_blas_threads()
        with ThreadPoolExecutor(3) as pool:
            fitted = list(pool.map(
                lambda s: fit_model(ds, TrainOptions(hidden=[4], epochs=3, folds=1, seed=s),
                                    progress=lambda row: seen.append(numpy_blas_threads()[0])),
                range(6)))
        assert len(fitted) == 6 and seen and set(seen) == {1}  # each fit at the commands' 1 thread
        assert numpy_blas_threads() == before
