"""A parquet file written as one large row group (pandas' default up to a million rows) is predicted a block of
columns at a time, with the same predictions as a file of small row groups."""

from __future__ import annotations

import pandas as pd
import pytest

from cli_helpers import run
from mlpcli import model_io
from mlpcli.data import streamed_frames
from mlpcli.predict import predict_stream
from tables import make_table


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("rowgroups")
    train = d / "train.csv"
    make_table("multiclass", n_patients=30, per_patient=2, n_features=40, seed=2).to_csv(train, index=False)
    model = d / "m.mlp"
    assert run(["train", str(train), "--epochs", "3", "--hidden", "8", "--folds", "2", "-q", "-o", str(model)]).exit_code == 0
    new = make_table("multiclass", n_patients=200, per_patient=2, n_features=40, seed=9)
    new = new.set_index("sample_id")  # stored as a pandas index: read back as the id column
    whole, small = d / "whole.parquet", d / "small.parquet"
    new.to_parquet(whole)  # one row group of 400 rows
    new.to_parquet(small, row_group_size=30)
    return model_io.load(model), str(whole), str(small)


def _predicted(model, path: str) -> pd.DataFrame:
    with predict_stream(model, path, chunksize=50) as stream:
        return pd.concat(list(stream), ignore_index=True)


def test_one_large_row_group_predicts_as_small_ones(model_and_data, monkeypatch):
    model, whole, small = model_and_data
    expected = _predicted(model, small)
    assert len(expected) == 400 and expected["sample_id"].iloc[0] == "S0000"
    pd.testing.assert_frame_equal(_predicted(model, whole), expected)
    monkeypatch.setattr(streamed_frames, "COLUMN_BLOCK_BYTES", 1)  # one column at a time
    pd.testing.assert_frame_equal(_predicted(model, whole), expected)
