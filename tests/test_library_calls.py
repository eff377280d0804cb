"""The library as a notebook calls it: a DataFrame's named index is its sample ids (it was trained on as a gene);
arguments of the wrong kind are errors of the project's family naming what is wanted (a path for a Model, a dict for
TrainOptions, a Plan out of range that trained and recorded -3 threads); complex regression targets are refused
without NumPy's ComplexWarning."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mlpcli import pipeline
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError
from mlpcli.parallel import Plan
from mlpcli.predict import predict_stream

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
