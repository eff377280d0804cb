"""The library's calls refuse arguments they cannot use with the library's own errors, naming the argument, before
any work: what a notebook user meets (found by using the API as one would)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn.datasets import make_classification

from mlpcli import model_io, pipeline, prevalence
from mlpcli.config import TrainOptions
from mlpcli.errors import ConfigError, DataError, MlpcliError, OptionError
from mlpcli.estimators import MLPClassifier
from mlpcli.explain import explain
from mlpcli.predict import evaluate, shift_report
from tables import make_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    table = make_table("binary", n_patients=40, per_patient=2, n_features=12, seed=3)
    outcome = pipeline.train(table, TrainOptions(hidden=[4], epochs=5, folds=2))
    path = tmp / "m.mlp"
    model_io.save(outcome.model, path)
    features = table[list(outcome.model.feature_names)].to_numpy()
    return outcome.model, table, features, path


@pytest.mark.parametrize("option", [dict(l1=0.01), dict(augment_noise=0.1), dict(lr_schedule="cosine"),
                                    dict(batchnorm=True)])
def test_lbfgs_with_what_it_cannot_train_is_a_config_error_before_any_fit(option):
    with pytest.raises(ConfigError, match="--optimizer lbfgs"):
        TrainOptions(optimizer="lbfgs", hidden=[8], **option).validate()


def test_an_estimators_dropout_with_lbfgs_is_refused_as_its_l1_is():
    X, y = make_classification(60, 5, random_state=0)
    for name, value in (("dropout", 0.5), ("l1", 0.01)):
        with pytest.raises(ValueError, match=f"{name}"):
            MLPClassifier(hidden=(4,), epochs=2, optimizer="lbfgs", **{name: value}).fit(X, y)
    assert MLPClassifier(hidden=(4,), epochs=2, optimizer="lbfgs").fit(X, y).predict(X).shape == (60,)


def test_shift_report_refuses_rows_of_the_wrong_width_and_groups_of_the_wrong_length(trained):
    model, _, X, _ = trained
    with pytest.raises(DataError, match=f"expected {X.shape[1]} feature columns"):
        shift_report(model, X[:, :-1])
    with pytest.raises(DataError, match="groups has 2 values"):
        shift_report(model, X, groups=[1, 2])
    assert shift_report(model, X, groups=np.arange(len(X)) // 2).groups == len(X) // 2


def test_explain_names_patients_of_the_wrong_length(trained):
    model, _, X, _ = trained
    with pytest.raises(DataError, match="patients has 3 values for 20 samples"):
        explain(model, X[:20], patients=np.arange(3))


def test_evaluate_reads_operating_points_and_net_benefit_given_as_text(trained):
    model, table, _, _ = trained
    as_text = evaluate(model, table, operating_points="0.3,sens=0.9", net_benefit="0.2, 0.4")
    as_lists = evaluate(model, table, operating_points=[0.3, "sens=0.9"], net_benefit=[0.2, 0.4])
    assert as_text.operating_points == as_lists.operating_points and len(as_text.operating_points) == 2
    assert as_text.net_benefit == as_lists.net_benefit and len(as_text.net_benefit) == 2
    with pytest.raises(OptionError, match="--net-benefit: thresholds must be numbers"):
        evaluate(model, table, net_benefit=["low"])


def test_model_io_names_what_it_needs(trained, tmp_path):
    model, _, _, path = trained
    with pytest.raises(ConfigError, match="by its path"):
        model_io.load(io.BytesIO(path.read_bytes()))
    with pytest.raises(ConfigError, match="got a str"):
        model_io.save("not a model", tmp_path / "x.mlp")
    X, y = make_classification(60, 5, random_state=0)
    with pytest.raises(ConfigError, match="pickle or joblib"):
        model_io.save(MLPClassifier(hidden=(4,), epochs=2).fit(X, y), tmp_path / "e.mlp")
    assert not list(tmp_path.iterdir())


def test_prevalence_adjust_checks_its_mixes():
    P = np.full((2, 4), 0.25)
    with pytest.raises(OptionError, match="one share per class"):
        prevalence.adjust(P, np.ones(3) / 3, np.ones(4) / 4)
    with pytest.raises(OptionError, match="training shares must be positive"):
        prevalence.adjust(P, np.array([0, 0.5, 0.25, 0.25]), np.full(4, 0.25))
    moved = prevalence.adjust(P, np.full(4, 0.25), np.array([0.7, 0.1, 0.1, 0.1]))
    np.testing.assert_allclose(moved, np.tile([0.7, 0.1, 0.1, 0.1], (2, 1)))
    assert issubclass(OptionError, MlpcliError)
