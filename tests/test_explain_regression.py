"""`mlpcli explain` on regression models (attributions in the target's units, ranked per target with their
direction, permutation importance as the rise of RMSE) and on binary models (ranked for the positive class
alone)."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.explain import input_gradients, integrated_gradients, load_samples, permutation_importance
from cli_helpers import assert_clean_error, run
from tables import make_table


FAST = ["--epochs", "20", "--hidden", "", "-q"]


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    """A table with two targets, `label` (up with f00 and f01) and `age` (down with f02), a one-network model and
    a two-member ensemble of it."""
    tmp = tmp_path_factory.mktemp("r18")
    df = make_table("regression", n_patients=30, n_features=6, seed=1)
    df["age"] = 60.0 - 4.0 * df["f02"]
    data = tmp / "reg.csv"
    df.to_csv(data, index=False)
    paths = {}
    for name, folds in (("one", "1"), ("ensemble", "2")):
        paths[name] = str(tmp / f"{name}.mlp")
        res = run(["train", str(data), "--target", "label,age", "--folds", folds, *FAST, "-o", paths[name]])
        assert res.exit_code == 0, res.output
    return paths, str(data), tmp


@pytest.mark.parametrize("which", ["one", "ensemble"])
def test_regression_attributions_are_in_the_targets_units_and_sum_to_the_predicted_change(regression, which):
    paths, data, _ = regression
    model = model_io.load(paths[which])
    X = load_samples(model, data).X
    A = integrated_gradients(model, X)  # (targets, n, d)
    baseline = model.predict_output(_mean_row(model))
    np.testing.assert_allclose(A.sum(axis=-1), (model.predict_output(X) - baseline).T, rtol=1e-3, atol=1e-3)
    # the input gradient is the predicted value's, in the target's units (central differences)
    G = input_gradients(model, X[:3], "age")
    j = model.feature_names.index("f02")
    h = 1e-3
    up, down = X[:3].copy(), X[:3].copy()
    up[:, j] += h
    down[:, j] -= h
    numeric = (model.predict_output(up)[:, 1] - model.predict_output(down)[:, 1]) / (2 * h)
    np.testing.assert_allclose(G[:, j], numeric, rtol=2e-2)


def _mean_row(model):
    from mlpcli.explain import baseline_values

    return baseline_values(model, "mean")[None]


@pytest.mark.parametrize("which", ["one", "ensemble"])
def test_regression_ranks_each_targets_drivers_with_their_direction(regression, which):
    paths, data, tmp = regression
    for method in ("ig", "permutation"):
        res = run(["explain", paths[which], data, "--method", method, "--top", "3", "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert doc["classes"] == ["label", "age"] and doc["n_samples"] == {"label": 90, "age": 90}
        table = pd.DataFrame(doc["rankings"])
        age = table[table["class"] == "age"].set_index("feature")
        assert age["rank"].idxmin() == "f02" and age.loc["f02", "direction"] == "down", (method, age)
        label = table[table["class"] == "label"].set_index("feature")
        assert label["rank"].idxmin() == "f00" and label.loc["f00", "direction"] == "up", (method, label)
        assert (table["score"] > 0).all()
        assert doc["stability"]["age"]["n"] == (20 if which == "one" and method == "ig" else 0 if which == "one" else 2)
    # the scores are in years: a network without hidden layers is additive over the genes, so f02's attribution
    # is the change of the predicted age when f02 alone goes back to the baseline
    doc = json.loads(run(["explain", paths[which], data, "--class", "age", "--json", "--top", "1"]).stdout)
    assert doc["classes"] == ["age"] and doc["output"] == "value" and doc["completeness"]["passed"]
    model = model_io.load(paths[which])
    X = load_samples(model, data).X
    j = model.feature_names.index("f02")
    at_baseline = X.copy()
    at_baseline[:, j] = _mean_row(model)[0, j]
    moved = np.abs(model.predict_output(X)[:, 1] - model.predict_output(at_baseline)[:, 1]).mean()
    assert doc["rankings"][0]["feature"] == "f02"
    np.testing.assert_allclose(doc["rankings"][0]["score"], moved, rtol=1e-4)


def test_regression_summary_plot_and_usage_errors(regression):
    paths, data, tmp = regression
    plot, out = tmp / "genes.png", tmp / "genes.csv"
    res = run(["explain", paths["one"], data, "--top", "2", "--plot", str(plot), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert plot.stat().st_size > 0
    # the file's first column names the targets ranked: a regression model has no classes (it was "class")
    written = pd.read_csv(out)
    assert list(written.columns[:3]) == ["target", "rank", "feature"] and "class" not in written.columns
    assert list(written["target"]) == ["label", "label", "age", "age"]
    text = " ".join(res.stdout.split())
    assert "90 samples, 64 steps, output predicted value (the target's units)" in text  # not 180, not "logit"
    assert "prediction at the baseline" in " ".join(res.stderr.split())
    assert_clean_error(run(["explain", paths["one"], data, "--output", "prob"]), "--output prob",
                       "regression model", code=2)
    assert_clean_error(run(["explain", paths["one"], data, "--method", "permutation", "--scoring",
                            "balanced_accuracy"]), "--scoring", "RMSE", code=2)


def test_regression_permutation_importance_is_the_rise_of_rmse(regression):
    paths, data, _ = regression
    model = model_io.load(paths["one"])
    table = pd.read_csv(data)
    drops, _ = permutation_importance(model, table, table[["label", "age"]].to_numpy(), repeats=2, seed=3)
    # shuffling f02 by hand: the rise of the age's RMSE
    X = table[model.feature_names].to_numpy()
    base = np.sqrt(np.mean((model.predict_output(X)[:, 1] - table["age"]) ** 2))
    j = model.feature_names.index("f02")
    from mlpcli.explain import feature_rng

    rng = feature_rng(3, "f02")
    Xs = X.copy()
    Xs[:, j] = X[rng.permutation(len(X)), j]
    rise = np.sqrt(np.mean((model.predict_output(Xs)[:, 1] - table["age"]) ** 2)) - base
    np.testing.assert_allclose(drops[0, j, 1], rise, rtol=1e-4)
    with pytest.raises(Exception, match="y has shape"):
        permutation_importance(model, table, table["label"].to_numpy())


def test_a_binary_model_is_ranked_for_its_positive_class_alone(tmp_path):
    """Two mirror-image tables (the same genes, opposite directions) became one, for the positive class, with a
    note naming the other; --class asks for either or both."""
    data, model = tmp_path / "bin.csv", tmp_path / "bin.mlp"
    make_table("binary", n_patients=30, n_features=6, seed=1).to_csv(data, index=False)
    assert run(["train", str(data), "--folds", "1", *FAST, "-o", str(model)]).exit_code == 0
    for method in ("ig", "permutation"):
        res = run(["explain", str(model), str(data), "--top", "3", "--method", method, "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert doc["classes"] == ["ctrl"] and set(r["class"] for r in doc["rankings"]) == {"ctrl"}
        assert any("positive class ctrl alone" in n and "--class case" in n for n in doc["notes"])
    doc = json.loads(run(["explain", str(model), str(data), "--top", "3", "--json", "--class", "case", "--class",
                          "ctrl"]).stdout)
    assert doc["classes"] == ["case", "ctrl"]
    # a cohort with no sample of the positive class is ranked for the other, and says so
    cases = tmp_path / "cases.csv"
    pd.read_csv(data).query("label == 'case'").to_csv(cases, index=False)
    doc = json.loads(run(["explain", str(model), str(cases), "--top", "3", "--json"]).stdout)
    assert doc["classes"] == ["case"] and any("no sample is of its positive class ctrl" in n for n in doc["notes"])
