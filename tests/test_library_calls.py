"""The library as a notebook calls it: a DataFrame's named index is its sample ids (it was trained on as a gene);
arguments of the wrong kind are errors of the project's family naming what is wanted (a path for a Model, a dict for
TrainOptions, a Plan out of range that trained and recorded -3 threads); complex regression targets are refused
without NumPy's ComplexWarning."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from mlpcli import pipeline
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError
from mlpcli.model_selection import fit_model, holdout, kfold
from mlpcli.model_selection.cross_validation import cross_validate
from mlpcli.model_selection.learning_curve import learning_curve
from mlpcli.model_selection.tuning import tune
from mlpcli.parallel import Plan
from mlpcli.predict import evaluate, predict_stream, prepare
from mlpcli.predict.recalibrate import recalibrate

HERE = Plan(n_jobs=1)


def frame(n: int = 90, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"GENE{i}" for i in range(5)])
    df["label"] = np.array(list("ABC"))[rng.integers(0, 3, n)]
    return df


def test_a_named_index_is_the_sample_ids_in_training_and_prediction():
    df = frame()
    df.index = pd.Index(np.arange(5000, 5000 + len(df)), name="donor_no")
    model = pipeline.train(df, TrainOptions(epochs=2, folds=2), plan=HERE).model
    assert model.feature_names == [f"GENE{i}" for i in range(5)]  # the index is no gene
    assert model.roles["id"] == "donor_no"
    cohort = frame(20, 1)
    cohort.index = pd.Index([f"cell{i}" for i in range(20)], name="cell")
    out = pd.concat(list(predict_stream(model, cohort)))
    assert out.columns[0] == "cell" and out["cell"].tolist() == [f"cell{i}" for i in range(20)]
    text = frame()  # pd.read_csv(f, index_col=0) of a first column "sample": was "feature columns must be numeric"
    text.index = pd.Index([f"S{i}" for i in range(len(text))], name="sample")
    assert pipeline.train(text, TrainOptions(epochs=2, folds=2), plan=HERE).model.roles["id"] == "sample"


@pytest.mark.parametrize("call, message", [
    (lambda df: pipeline.train(df, {"epochs": 3}, plan=HERE), "options must be a TrainOptions"),
    (lambda df: pipeline.train(df, TrainOptions(epochs=2), plan="loky"), "plan must be a parallel.Plan"),
    (lambda df: pipeline.train(df, TrainOptions(epochs=2), plan=Plan(n_jobs=1, threads=-3)), "--threads must be >= 1"),
    (lambda df: pipeline.train(df, TrainOptions(epochs=2), plan=Plan(n_jobs=0)), "--n-jobs must not be 0"),
    (lambda df: pipeline.train(df, TrainOptions(epochs=2), plan=Plan(n_jobs="2")), "whole numbers"),
    (lambda df: pipeline.train(df, TrainOptions(epochs=2), plan=HERE, progress=5), "progress must be a function"),
    (lambda df: pipeline.train_dataset(df, TrainOptions(epochs=2), plan=HERE), "takes a data.Dataset"),
    (lambda df: list(predict_stream("m.mlp", df)), "predict_stream takes an mlpcli Model, got a str: load it first"),
])
def test_arguments_of_the_wrong_kind_are_config_errors(call, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(frame())


def test_integrated_gradients_names_a_path_given_for_the_model():
    from mlpcli.explain.attribution import integrated_gradients

    with pytest.raises(ConfigError, match=r"integrated_gradients takes an mlpcli Model, got a str: load it first"):
        integrated_gradients("m.mlp", np.zeros((2, 5)), target="A")


def test_a_complex_regression_target_is_refused_without_a_warning():
    from mlpcli.estimators import MLPRegressor

    X = np.random.default_rng(0).normal(size=(40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's ComplexWarning came first
        with pytest.raises(ValueError, match="Complex data not supported: y must be real numbers"):
            MLPRegressor(epochs=3).fit(X, X[:, 0] + 0j)


@pytest.mark.parametrize("who", ["prepare", "shift_report", "evaluate", "recalibrate", "explain"])
def test_the_documented_calls_name_a_path_given_for_the_model(who):
    """They failed with "AttributeError: 'str' object has no attribute 'preprocessor'" (or 'task') from deep inside,
    where predict_stream said what to do."""
    from mlpcli.explain import explain
    from mlpcli.predict import evaluate, prepare, shift_report
    from mlpcli.predict.recalibrate import recalibrate

    call = {"prepare": prepare, "shift_report": shift_report, "evaluate": evaluate, "recalibrate": recalibrate,
            "explain": explain}[who]
    with pytest.raises(ConfigError, match=rf"^{who} takes an mlpcli Model, got a str: load it first, "
                                          r"model_io.load\('m.mlp'\)$"):
        call("m.mlp", frame(10))
    with pytest.raises(ConfigError, match=rf"^{who} takes an mlpcli Model, got a NoneType$"):
        call(None, frame(10))


@pytest.mark.parametrize("call, message", [
    (lambda df: pipeline.load_dataset(df, {"epochs": 3}), "load_dataset takes a TrainOptions for its options"),
    (lambda df: fit_model(df, TrainOptions(epochs=2)), "fit_model takes a data.Dataset, got a DataFrame: read it "
                                                       "first, pipeline.load_dataset(table, options)"),
    (lambda df: fit_model(pipeline.load_dataset(df, TrainOptions())[0], {"epochs": 2}),
     "fit_model takes a TrainOptions"),
    (lambda df: cross_validate("table.csv", TrainOptions(epochs=2)), "cross_validate takes a data.Dataset, got a str"),
    (lambda df: tune(df, TrainOptions(epochs=2), {"l2": [0.0, 0.1]}), "tune takes a data.Dataset"),
    (lambda df: learning_curve(df, None), "learning_curve takes a TrainOptions"),
    (lambda df: kfold(df, 5), "kfold takes a data.Dataset"),
    (lambda df: holdout(df, 0.2), "holdout takes a data.Dataset"),
])
def test_model_selection_calls_name_a_table_or_options_of_the_wrong_kind(call, message):
    """The README's model-selection calls failed with "AttributeError: 'str' object has no attribute 'y'" (or 'dict'
    object has no attribute 'validate' / 'no_group') when given a path, a DataFrame or a dict of options."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(frame())


@pytest.fixture(scope="module")
def small_model():
    return pipeline.train(frame(), TrainOptions(epochs=2, folds=2), plan=HERE).model


@pytest.mark.parametrize("call, error, message", [
    (lambda m, df: recalibrate(m, df, alpha="0.1"), "OptionError", "--alpha must lie strictly between 0 and 1, got '0.1'"),
    (lambda m, df: recalibrate(m, df, alpha=None), "OptionError", "--alpha must lie strictly between 0 and 1, got None"),
    (lambda m, df: evaluate(m, df, by=["batch"]), "ConfigError", "--by takes one column name, got a list: ['batch']"),
    (lambda m, df: prepare(m, df.to_numpy()), "TypeError", "a table is a file's path (str or os.PathLike), '-' for "
                                                           "standard input, or a pandas DataFrame; got numpy.ndarray"),
])
def test_arguments_of_the_wrong_type_are_named_not_failed_on_inside(small_model, call, error, message):
    """recalibrate's alpha as text or None failed with "'<' not supported between instances of 'float' and 'str'",
    evaluate's by as a list with "unhashable type: 'list'", and prepare given a NumPy array with "expected str, bytes
    or os.PathLike object, not ndarray" from the .h5ad check, where predict_stream says what a table may be."""
    import mlpcli.errors

    kind = getattr(mlpcli.errors, error, None) or TypeError
    with pytest.raises(kind, match=re.escape(message)):
        call(small_model, frame(20, 1))


def test_an_option_given_a_table_names_its_type_on_one_line():
    """TrainOptions(val_data=df).validate() said "--val-data: must be text, got" and then the frame's whole repr over
    many lines."""
    with pytest.raises(ConfigError) as caught:
        TrainOptions(val_data=frame(), folds=1).validate()
    assert str(caught.value) == "--val-data: must be text, got a pandas.DataFrame"
    with pytest.raises(ConfigError, match=r"^--epochs: must be a whole number, got '3'$"):  # short values as they were
        TrainOptions(epochs="3").validate()


def test_a_files_path_is_as_good_as_its_name_for_the_options_that_name_files(tmp_path):
    """TrainOptions(val_data=Path("v.csv")) was refused as "must be text", where pipeline.train takes a Path for the
    table itself."""
    from pathlib import Path

    options = TrainOptions(val_data=Path(tmp_path / "v.csv"), samples=Path(tmp_path / "s.csv"), folds=1)
    options.validate()
    assert options.val_data == str(tmp_path / "v.csv") and options.samples == str(tmp_path / "s.csv")


@pytest.mark.parametrize("proba", [0.3, np.full((2, 2, 2), 0.5)])
def test_prevalence_adjust_names_probabilities_of_the_wrong_shape(proba):
    """A single number failed with an IndexError; a 3-D array came back reshaped, as if it were rows."""
    from mlpcli import prevalence
    from mlpcli.errors import OptionError

    with pytest.raises(OptionError, match=r"one row per sample, \(n,\) or \(n, k\), got shape"):
        prevalence.adjust(proba, np.array([0.5, 0.5]), np.array([0.2, 0.8]))


def test_one_share_given_for_several_classes_is_said_in_the_singular():
    from mlpcli.errors import OptionError
    from mlpcli.prevalence import given

    with pytest.raises(OptionError, match="1 share for the model's 3 classes"):
        given([0.3], ["a", "b", "c"], np.array([0.2, 0.3, 0.5]))
