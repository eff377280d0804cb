"""A notebook's pandas DataFrame where the library takes a table: `pipeline.train` trains on it as on the same
table written to a file, and `predict.shift_report` matches its columns to the model by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io, parallel, pipeline
from mlpcli.config import TrainOptions
from mlpcli.errors import DataError, OptionError
from mlpcli.predict import shift_report
from tables import make_table

OPTIONS = dict(epochs=3, hidden=[8], folds=2)
HERE = parallel.Plan(n_jobs=1)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_table("multiclass", n_patients=24, per_patient=2, n_features=10, seed=3)


@pytest.fixture(scope="module")
def trained(table):
    return pipeline.train(table, TrainOptions(**OPTIONS), plan=HERE).model


def test_a_dataframe_trains_the_model_its_file_trains(tmp_path, table, trained):
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    from_file = pipeline.train(str(path), TrainOptions(**OPTIONS), plan=HERE).model
    assert trained.provenance["data_file"] == "(in memory)" and from_file.provenance["data_file"] == "t.csv"
    assert trained.provenance["data_sha256"] == from_file.provenance["data_sha256"]
    assert "data_kind" not in trained.provenance and from_file.provenance.pop("data_kind") == "text"
    from_file.provenance["data_file"] = "(in memory)"
    assert model_io.to_bytes(trained) == model_io.to_bytes(from_file)
    assert trained.roles["group"] == "patient_id" and trained.roles["id"] == "sample_id"


def test_sample_ids_in_the_index_are_the_id_column(table, trained):
    indexed = table.set_index("sample_id")
    model = pipeline.train(indexed, TrainOptions(**OPTIONS), plan=HERE).model
    assert model.provenance["data_sha256"] == trained.provenance["data_sha256"]
    assert "sample_id" not in model.feature_names and model.roles["id"] == "sample_id"
    unnamed = indexed.rename_axis(None)  # pd.read_csv(..., index_col=0) of a file whose first header cell is empty
    assert pipeline.train(unnamed, TrainOptions(**OPTIONS), plan=HERE).model.roles["id"] == "sample_id"


def test_an_integer_index_is_row_positions_not_ids(table, trained):
    kept = table.drop(index=[0, 1])  # filtered: the index has gaps
    model = pipeline.train(kept.drop(columns=["sample_id"]), TrainOptions(**OPTIONS), plan=HERE).model
    assert model.feature_names == trained.feature_names and model.roles["id"] is None
    assert model.provenance["n_samples"] == len(kept)


def test_the_callers_frame_is_not_changed(table):
    frame = table.set_index("sample_id").copy()
    frame.columns = [c if c != "f00" else 0 for c in frame.columns]  # a column name that is not text
    before = frame.copy()
    model = pipeline.train(frame, TrainOptions(**OPTIONS), plan=HERE).model
    assert "0" in model.feature_names
    pd.testing.assert_frame_equal(frame, before)
    assert frame.attrs == {} and frame.index.name == "sample_id"


def test_a_frame_the_readers_would_refuse_is_one_line_error(table):
    twice = table.copy()
    twice.columns = [*table.columns[:-1], "f00"]
    with pytest.raises(DataError, match=r"the DataFrame has 1 column name\(s\) more than once: 'f00'"):
        pipeline.train(twice, TrainOptions(**OPTIONS), plan=HERE)
    text = table.assign(f03=table["f03"].astype(str).where(table.index != 5, "high"))
    with pytest.raises(DataError, match=r"^the DataFrame: feature column 'f03' holds the non-numeric value 'high' "
                                        r"at row 6"):
        pipeline.train(text, TrainOptions(**OPTIONS), plan=HERE)
    with pytest.raises(OptionError, match=r"^sep='semicolon' says how to read a file; a DataFrame is already read"):
        pipeline.train(table, TrainOptions(**OPTIONS, sep="semicolon"), plan=HERE)
    with pytest.raises(OptionError, match=r"features_in_rows=True .* \(pass df\.T"):
        pipeline.train(table, TrainOptions(**OPTIONS, features_in_rows=True), plan=HERE)


def test_shift_report_matches_a_dataframe_by_name(table, trained):
    X = table[trained.feature_names].to_numpy()
    by_position = shift_report(trained, X)
    reordered = table[table.columns[::-1]]  # ids, patients and labels too: left out
    by_name = shift_report(trained, reordered)
    np.testing.assert_array_equal(by_name.new_mean, by_position.new_mean)
    np.testing.assert_array_equal(by_name.new_sd, by_position.new_sd)
    assert by_name.level == by_position.level
    names = list(reversed(trained.feature_names))
    np.testing.assert_array_equal(shift_report(trained, X[:, ::-1], features=names).new_mean, by_position.new_mean)
    with pytest.raises(DataError, match=r"X lacks 1 of the features the model uses, e.g. 'f04'"):
        shift_report(trained, table.drop(columns=["f04"]))


def test_targets_held_as_pandas_strings_are_typed_as_text_columns_are(table):
    """pandas 3 reads a text column as its string dtype, not object: a check for object alone left a numeric
    target as text (a regression read as 79 classes; 0/1 labels "neither 0/1"). A DataFrame built with the string
    dtype meets the same checks under pandas 2."""
    frame = table.drop(columns=["label"]).assign(
        age=pd.Series([f"{v:.2f}" for v in np.linspace(20, 80, len(table))], dtype="string"))
    model = pipeline.train(frame, TrainOptions(**OPTIONS, target=["age"], task="regression"), plan=HERE).model
    assert model.task == "regression"
    labels = table.drop(columns=["label"]).assign(
        grade=pd.Series(np.arange(len(table)) % 2, dtype="int64").astype(str).astype("string"),
        y2=pd.Series((np.arange(len(table)) // 3) % 2).astype(str).astype("string"))
    model = pipeline.train(labels, TrainOptions(**OPTIONS, target=["grade", "y2"]), plan=HERE).model
    assert model.task == "multilabel"



def test_a_numpy_array_given_as_a_table_says_what_a_table_may_be():
    """pipeline.train(X) and predict_stream(model, X) with a NumPy array failed in os.fspath ("expected str, bytes
    or os.PathLike object, not ndarray"); the error says a path or a DataFrame, and how to make one."""
    with pytest.raises(TypeError, match=r"a table is a file's path .* or a pandas DataFrame; got numpy.ndarray: "
                                        r"pd.DataFrame\(X, columns=feature_names\)"):
        pipeline.train(np.zeros((10, 3)), TrainOptions())
