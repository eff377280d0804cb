"""A class whose name has spaces around it (as Excel leaves labels: '  b ') or holds a comma ('Stage I, early') is
named in --class, --class-weight and --prevalence: as written, by its name without the spaces when no other class has
it, and in double quotes when it holds a comma. No way of writing them was accepted, and the errors squeezed the
spaces ("' b ' is not one of the model's classes (' b ', ...); did you mean ' b '?")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_clean_error, run
from mlpcli.data.weights import class_weights
from mlpcli.errors import ConfigError

CLASSES = ["a", "  b ", "Stage I, early"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("names")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(240, 12))
    labels = np.array(CLASSES)[np.argmax(X[:, :3] + rng.normal(scale=0.5, size=(240, 3)), axis=1)]
    frame = pd.DataFrame(X, columns=[f"g{j}" for j in range(12)]).assign(label=labels)
    frame.to_csv(tmp / "t.csv", index=False)
    assert run(["train", str(tmp / "t.csv"), "--no-group", "--hidden", "", "--folds", "2", "--epochs", "5", "-o",
                str(tmp / "m.mlp")]).exit_code == 0
    return tmp


@pytest.mark.parametrize("spec", ['a=1,  b =3,"Stage I, early"=2', 'a=1,b=3,"Stage I, early"=2',
                                  '"Stage I, early"=2, b=3'])
def test_class_weights_name_spaced_and_comma_classes(spec):
    y = np.array([0, 1, 2, 1])
    assert class_weights(y, 3, spec, CLASSES).tolist() == [1.0, 3.0, 2.0]


def test_a_comma_outside_quotes_and_an_unknown_class_say_how_to_write_them():
    y = np.array([0, 1, 2])
    with pytest.raises(ConfigError, match="""got 'Stage I' \\(a label holding a comma is written in double quotes"""):
        class_weights(y, 3, "a=1,Stage I, early=2", CLASSES)
    with pytest.raises(ConfigError, match="unknown class 'c'.*valid labels: 'a', '  b ', 'Stage I, early'"):
        class_weights(y, 3, "c=2", CLASSES)


def test_explain_and_predict_name_them(files):
    model, table = str(files / "m.mlp"), str(files / "t.csv")
    for written in ("  b ", "b"):
        assert run(["explain", model, table, "--class", written, "-o", str(files / "e.csv")]).exit_code == 0
    res = run(["explain", model, table, "--class", "c", "-o", str(files / "e.csv")])
    assert_clean_error(res, "--class 'c' is not one of the model's classes", "'  b '", code=2)
    res = run(["predict", model, table, "--prevalence", 'b=0.3,"Stage I, early"=0.2', "-o", str(files / "p.csv")])
    assert res.exit_code == 0, res.output
    assert "  b  30 %, Stage I, early 20 %, a 50 %" in res.output
