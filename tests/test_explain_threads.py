"""`explain` keeps the one --threads rule of every command: BLAS on one core by default (it used every visible core
under SLURM_CPUS_PER_TASK=1), --threads N for more."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from cli_helpers import run
from mlpcli.cli.shared_options import THREADS_DEFAULT

pytestmark = pytest.mark.blas_as_found  # tests of the default BLAS threads: the process's own, not the suite's cap


def _blas_threads() -> int:
    return min((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)


def test_explain_documents_and_keeps_the_one_default(tmp_path, monkeypatch):
    text = " ".join(run(["explain", "--help"], terminal_width=400).output.split())
    assert " ".join(THREADS_DEFAULT.split()) in text and text.count("--threads INTEGER") == 1
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(80, 5)), columns=[f"g{j}" for j in range(5)])
    frame.assign(label=np.where(frame["g0"] > 0, "A", "B")).to_csv(tmp_path / "t.csv", index=False)
    assert run(["train", str(tmp_path / "t.csv"), "--no-group", "--folds", "1", "--epochs", "2", "-q",
                "-o", str(tmp_path / "m.mlp")]).exit_code == 0
    import mlpcli.explain as lib

    seen, explain = [], lib.explain

    def recording(*args, **kwargs):
        seen.append(_blas_threads())
        return explain(*args, **kwargs)

    monkeypatch.setattr(lib, "explain", recording)
    for given, expected in ((None, 1), ("2", 2)):
        extra = [] if given is None else ["--threads", given]
        res = run(["explain", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "-q", *extra,
                   "-o", str(tmp_path / "r.csv")])
        assert res.exit_code == 0, res.output
        assert seen[-1] == min(expected, os.cpu_count() or 1)  # --threads is not cut to the usable cores: warned
