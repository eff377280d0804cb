"""`pipeline.train`, the call a notebook makes, gives the model file `mlpcli train` writes: the same member plan
(processes on the usable cores, one BLAS thread each) and the same BLAS cap, whatever the caller's threads."""

from __future__ import annotations

from pathlib import Path

from threadpoolctl import threadpool_limits

from cli_helpers import run
from mlpcli import model_io, parallel, pipeline
from mlpcli.config import TrainOptions
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
