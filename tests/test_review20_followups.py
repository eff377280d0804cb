"""Follow-ups of the twentieth round of reviews by use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blas_threads import numpy_blas_threads


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


def test_a_repeated_target_or_drop_adds_names_instead_of_keeping_the_last(tmp_path):
    """`train --target age --target ic50` trained on ic50 alone, silently (Click keeps an option's last use): a
    list option may now be repeated, as `--target age,ic50`, in train, in a config file's string or array, and in
    evaluate's role options."""
    import json

    from cli_helpers import run

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 4)), columns=[f"g{j}" for j in range(4)])
    df["age"] = 3 * df["g0"] + rng.normal(size=60)
    df["ic50"] = df["g1"] + rng.normal(size=60)
    df["note"] = "x"
    table = tmp_path / "t.csv"
    df.to_csv(table, index=False)
    fast = ["--epochs", "2", "--folds", "1", "-q", "--json"]
    res = run(["train", str(table), "--target", "age", "--target", "ic50", "--drop", "note", "--drop", "g3",
               "-o", str(tmp_path / "m.mlp"), *fast])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["task"] == "regression" and doc["classes"] == ["age", "ic50"], doc
    for value in ('"age,ic50"', '["age", "ic50"]'):
        (tmp_path / "c.toml").write_text(f"target = {value}\n")
        res = run(["train", str(table), "--config", str(tmp_path / "c.toml"), "--drop", "note", "-o",
                   str(tmp_path / "c.mlp"), *fast])
        assert res.exit_code == 0 and json.loads(res.stdout)["classes"] == ["age", "ic50"], res.output
    res = run(["evaluate", str(tmp_path / "m.mlp"), str(table), "--target", "age", "--target", "ic50", "--json"])
    assert res.exit_code == 0, res.output
    assert [t["target"] for t in json.loads(res.stdout)["metrics"]["per_target"]] == ["age", "ic50"]
