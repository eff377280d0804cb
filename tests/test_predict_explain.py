"""`predict --explain`: the per-sample top_features column, for classifiers and regression models, names holding
separators read back, and what the help says it gives."""

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.explain import baseline_values
from cli_helpers import run
from tables import make_table


def test_predict_explain_lists_only_genes_that_push_toward_the_call():
    """top_features listed the K largest attributions even when they were 0 or negative (a gene filled in with its
    training mean scored 0 and was shown as a reason for the call)."""
    from mlpcli.explain.attribution import top_features

    values = np.array([[0.5, -0.2, 0.0, 0.1], [-0.1, -0.3, 0.0, -0.2]])
    got = top_features(values, ["a", "b", "c", "d"], 3)
    assert list(got) == ["a:0.5;d:0.1", ""]


FAST = ["--epochs", "20", "-q"]


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """`label` rises with f00 and f01; `age` falls with f02 (60 - 4 f02). A two-target linear model and a
    one-target two-member relu ensemble."""
    tmp = tmp_path_factory.mktemp("r18p")
    df = make_table("regression", n_patients=20, n_features=5, seed=1)
    df["age"] = 60.0 - 4.0 * df["f02"]
    two, one = tmp / "two.csv", tmp / "one.csv"
    df.to_csv(two, index=False)
    df.drop(columns=["age"]).to_csv(one, index=False)
    models = {"two": str(tmp / "two.mlp"), "one": str(tmp / "one.mlp")}
    res = run(["train", str(two), "--target", "label,age", "--folds", "1", "--hidden", "", "--epochs", "200", "-q",
               "-o", models["two"]])
    assert res.exit_code == 0, res.output
    res = run(["train", str(one), "--folds", "2", "--hidden", "8", *FAST, "-o", models["one"]])
    assert res.exit_code == 0, res.output
    return models, {"two": str(two), "one": str(one)}, tmp


def _entries(cell):
    """[(gene, score)] of a top_features cell."""
    return [(e.rsplit(":", 1)[0], float(e.rsplit(":", 1)[1])) for e in str(cell).split(";") if e]


def test_regression_top_genes_are_signed_and_sum_to_the_predicted_change(tables):
    """Refused before ("this model is regression"). Every gene asked for (K = d) sums to the predicted value's
    change from the training mean's, in the target's units; the list is ordered by |score|; the chunking does
    not change a cell."""
    models, data, tmp = tables
    out, out7 = tmp / "p.csv", tmp / "p7.csv"
    assert run(["predict", models["one"], data["one"], "--explain", "5", "-q", "-o", str(out)]).exit_code == 0
    res = run(["predict", models["one"], data["one"], "--explain", "5", "-q", "--chunksize", "7", "-o", str(out7)])
    assert res.exit_code == 0, res.output
    p = pd.read_csv(out, keep_default_na=False)
    assert list(p.columns) == ["sample_id", "pred_label", "top_features"]
    pd.testing.assert_frame_equal(p, pd.read_csv(out7, keep_default_na=False))
    model = model_io.load(models["one"])
    at_mean = model.predict_output(baseline_values(model, "mean")[None])[0, 0]
    sums = np.array([sum(s for _, s in _entries(c)) for c in p["top_features"]])
    np.testing.assert_allclose(sums, p["pred_label"] - at_mean, rtol=0.05, atol=0.05 * p["pred_label"].std())
    signs = set()
    for cell in p["top_features"]:
        scores = [s for _, s in _entries(cell)]
        assert scores == sorted(scores, key=abs, reverse=True)
        signs |= {np.sign(s) for s in scores}
    assert signs == {-1.0, 1.0}  # genes that lower the value are listed too, with their sign


def test_several_targets_get_a_column_each_and_the_right_direction(tables):
    models, data, tmp = tables
    out = tmp / "two_p.csv"
    res = run(["predict", models["two"], data["two"], "--explain", "2", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output
    p = pd.read_csv(out, keep_default_na=False)
    assert list(p.columns) == ["sample_id", "pred_label", "pred_age", "top_features_label", "top_features_age"]
    raw = pd.read_csv(data["two"]).set_index("sample_id").loc[p["sample_id"]]
    mean_f02 = baseline_values(model_io.load(models["two"]), "mean")[2]
    far = (raw["f02"] - mean_f02).abs().to_numpy() > 1.0  # f02 well away from the training mean
    assert far.sum() >= 10
    for cell, f02 in zip(p["top_features_age"][far], raw["f02"][far]):
        gene, score = _entries(cell)[0]
        assert gene == "f02"
        assert np.sign(score) == -np.sign(f02 - mean_f02)  # age = 60 - 4 f02: above its mean lowers age
    assert all({g for g, _ in _entries(c)} <= {"f00", "f01", "f02", "f03", "f04"} for c in p["top_features_label"])
    assert any(g in ("f00", "f01") for c in p["top_features_label"] for g, _ in _entries(c)[:1])


def test_help_says_what_explain_gives_a_regression_model():
    res = run(["predict", "--help"])
    text = " ".join(res.output.split())
    assert "regression model" in text and "negative one lowers it" in text and "top_features_<target>" in text
