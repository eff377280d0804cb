"""`mlpcli explain` on multi-label models: one ranking per label, integrated gradients toward the label over the
samples positive for it, permutation importance as the label's own score over every sample."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlpcli import model_io
from mlpcli.cli import cli
from mlpcli.errors import DataError
from mlpcli.explain import explain, feature_rng, label_matrix, load_samples, permutation_importance
from cli_helpers import assert_clean_error, run

LABELS = ["A", "B", "C"]


def _table(n: int = 240, d: int = 10, seed: int = 0) -> pd.DataFrame:
    """A up with g0; B up with g1 and down with g2; C down with g3 (raw lognormal values); the other genes noise."""
    rng = np.random.default_rng(seed)
    X = rng.lognormal(2.0, 0.5, (n, d))
    L = np.log(X)
    df = pd.DataFrame(X, columns=[f"g{j}" for j in range(d)])
    df.insert(0, "sample_id", [f"s{i}" for i in range(n)])
    df["A"] = (L[:, 0] + 0.1 * rng.standard_normal(n) > 2.0).astype(int)
    df["B"] = (L[:, 1] - L[:, 2] + 0.1 * rng.standard_normal(n) > 0.0).astype(int)
    df["C"] = (L[:, 3] + 0.1 * rng.standard_normal(n) < 1.8).astype(int)
    return df


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlx")
    df = _table()
    data = tmp / "ml.csv"
    df.to_csv(data, index=False)
    paths = {}
    for name, folds in (("one", "1"), ("ensemble", "2")):
        paths[name] = str(tmp / f"{name}.mlp")
        res = run(["train", str(data), "--target", "A,B,C", "--folds", folds, "--epochs", "60", "--hidden", "",
                   "-q", "-o", paths[name]])
        assert res.exit_code == 0, res.output
    return paths, str(data), df, tmp


def _top(result, label: str) -> list[str]:
    t = result.table[result.table["class"] == label].sort_values("rank")
    return list(t["feature"])


@pytest.mark.parametrize("which", ["one", "ensemble"])
def test_each_label_is_ranked_by_its_own_genes_with_their_directions(models, which):
    paths, data, df, _ = models
    model = model_io.load(paths[which])
    s = load_samples(model, data)
    assert s.y.shape == (len(df), 3) and set(np.unique(s.y)) == {0, 1}
    result = explain(model, s.X, s.y, ids=s.ids, top=3)
    assert result.classes == LABELS
    assert _top(result, "A")[0] == "g0"
    assert set(_top(result, "B")[:2]) == {"g1", "g2"}
    assert _top(result, "C")[0] == "g3"
    direction = {(r["class"], r["feature"]): r["direction"] for _, r in result.table.iterrows()}
    assert direction[("A", "g0")] == "up" and direction[("B", "g1")] == "up"
    assert direction[("B", "g2")] == "down" and direction[("C", "g3")] == "down"
    # each label over its positive samples; every explained sample counted once in the completeness check
    assert result.n_samples == {c: int(df[c].sum()) for c in LABELS}
    assert result.completeness["samples"] == int((df[LABELS].sum(axis=1) > 0).sum())
    assert result.completeness["passed"]
    assert any(n.startswith("multi-label: each label ranked over the samples positive for it") for n in result.notes)
    assert result.sample_classes is None  # no single class per sample: no heatmap order


def test_without_labels_the_predicted_labels_group_the_samples(models):
    paths, data, df, _ = models
    model = model_io.load(paths["one"])
    s = load_samples(model, data)
    # as predict calls them: by the model's decision rule (each label at 0.5, or at its training share)
    predicted = (model.predict_output(s.X) >= model.decider.threshold("multilabel")).sum(axis=0)
    result = explain(model, s.X, None, top=3, classes=["C"])
    assert result.grouped_by == "predicted label" and result.classes == ["C"]
    assert result.n_samples == {"C": int(predicted[2])}
    assert _top(result, "C")[0] == "g3"


def test_permutation_drops_are_each_labels_own_log_loss_and_balanced_accuracy(models):
    paths, data, df, _ = models
    model = model_io.load(paths["one"])
    s = load_samples(model, data)
    X, Y = s.X, s.y
    feats = list(model.feature_names)
    repeats = 3
    drops, _ = permutation_importance(model, X, Y, repeats=repeats, seed=7)
    assert drops.shape == (repeats, len(feats), 3)

    def bce(P):  # (n, L) -> (L,)
        return -np.mean(np.log(np.clip(np.where(Y == 1, P, 1 - P), 1e-15, 1)), axis=0)

    def bal(P):  # each label called at the model's own threshold, as predict calls it
        pred = P >= model.decider.threshold("multilabel")
        return np.array([(pred[Y[:, j] == 1, j].mean() + (~pred[Y[:, j] == 0, j]).mean()) / 2 for j in range(3)])

    base = model.predict_output(X)
    ba_drops, _ = permutation_importance(model, X, Y, repeats=repeats, seed=7, scoring="balanced_accuracy")
    for j in (0, 3, 5):  # a gene of A, of C, and noise
        rng = feature_rng(7, feats[j])
        for r in range(repeats):
            Xs = X.copy()
            Xs[:, j] = X[rng.permutation(len(X)), j]
            P = model.predict_output(Xs)
            np.testing.assert_allclose(drops[r, j], bce(P) - bce(base), atol=2e-5)
            np.testing.assert_allclose(ba_drops[r, j], bal(base) - bal(P), atol=1e-9)
    result = explain(model, X, Y, method="permutation", top=2, seed=7, repeats=repeats)
    assert _top(result, "A")[0] == "g0" and _top(result, "C")[0] == "g3"
    assert result.n_samples == {c: len(df) for c in LABELS}  # scored over every sample


def test_a_label_positive_everywhere_has_no_balanced_accuracy_to_drop(models):
    paths, data, df, _ = models
    model = model_io.load(paths["one"])
    s = load_samples(model, data)
    Y = s.y.copy()
    Y[:, 1] = 1
    result = explain(model, s.X, Y, method="permutation", scoring="balanced_accuracy", top=2, repeats=2)
    assert result.classes == ["A", "C"]
    assert any("not ranked: B" in n and "positive and negative" in n for n in result.notes)
    with pytest.raises(DataError, match="positive in every sample"):
        explain(model, s.X, Y, method="permutation", scoring="balanced_accuracy", classes=["B"], repeats=2)
    Y[:, 1] = 0
    with pytest.raises(DataError, match="no sample is positive for the label ranked \\(B\\)"):
        explain(model, s.X, Y, classes=["B"])


def test_label_matrices_are_checked_and_taken_by_column_name(models):
    paths, data, df, _ = models
    model = model_io.load(paths["one"])
    n = len(df)
    frame = df[["C", "A", "B"]]  # another column order: matched by name
    np.testing.assert_array_equal(label_matrix(model, frame, n), df[LABELS].to_numpy())
    with pytest.raises(DataError, match="lacks the label column 'B'"):
        label_matrix(model, df[["A", "C"]], n)
    bad = df[LABELS].to_numpy().copy()
    bad[4, 2] = 2
    with pytest.raises(DataError, match="label C of sample 5 is 2;"):
        label_matrix(model, bad, n)
    with pytest.raises(DataError, match=r"expected \(240, 3\)"):
        label_matrix(model, bad[:, :2], n)


def test_the_command_ranks_each_label_and_writes_table_plot_and_json(models):
    paths, data, df, tmp = models
    out, plot = tmp / "genes.csv", tmp / "genes.png"
    res = run(["explain", paths["ensemble"], data, "--top", "3", "-o", str(out), "--plot", str(plot), "-q"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert list(dict.fromkeys(table["label"])) == LABELS and "class" not in table.columns
    assert plot.stat().st_size > 0
    n_any = int((df[LABELS].sum(axis=1) > 0).sum())
    assert f"{n_any} samples" in res.stdout  # each sample counted once, not once per label
    res = run(["explain", paths["one"], data, "--top", "2", "--class", "B", "--method", "permutation", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["classes"] == ["B"] and {r["feature"] for r in doc["rankings"]} == {"g1", "g2"}


def test_a_label_the_model_lacks_is_a_usage_error(models):
    paths, data, _, _ = models
    res = run(["explain", paths["one"], data, "--class", "D"])
    assert_clean_error(res, "--class 'D' is not one of the model's labels", code=2)


def test_predict_explain_gives_each_predicted_labels_reasons(models):
    """predict --explain K on a multi-label model: top_features_<label> per label, the genes that push the row
    toward the label (integrated gradients of its logit), filled only where the label is predicted."""
    from mlpcli.explain import integrated_gradients

    paths, data, df, tmp = models
    out = tmp / "pred.csv"
    res = run(["predict", paths["one"], data, "--explain", "2", "--explain-steps", "64", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(out, keep_default_na=False)
    model = model_io.load(paths["one"])
    X = load_samples(model, data).X
    for j, label in enumerate(LABELS):
        cells = pred[f"top_features_{label}"]
        positive = pred[f"pred_{label}"] == 1
        assert (cells[~positive] == "").all() and (cells[positive] != "").any()
        A = integrated_gradients(model, X, target=label, steps=64)  # (n, d)
        for i in np.flatnonzero(positive.to_numpy())[:20]:
            first = cells[i].split(";")[0].rsplit(":", 1)[0]
            assert first == model.feature_names[int(np.argmax(A[i]))]


def test_explain_names_the_label_columns_a_multilabel_table_lacks(tmp_path):
    """A multi-label model on a table with 2 of its 3 label columns: integrated gradients dropped the two
    without a word and permutation said the table had no target column; both now name the missing one."""
    rng = np.random.default_rng(0)
    n = 200
    X = rng.normal(size=(n, 6))
    frame = pd.DataFrame(X, columns=[f"G{j}" for j in range(6)])
    for k in range(3):
        frame[f"L{k}"] = (X[:, k] > 0).astype(int)
    frame.insert(0, "sample_id", [f"s{i}" for i in range(n)])
    frame.to_csv(tmp_path / "ml.csv", index=False)
    res = CliRunner().invoke(cli, ["train", str(tmp_path / "ml.csv"), "--target", "L0,L1,L2", "--task", "multilabel",
                                   "--folds", "1", "--epochs", "3", "-q", "-o", str(tmp_path / "ml.mlp")])
    assert res.exit_code == 0, res.output
    frame.drop(columns=["L2"]).to_csv(tmp_path / "part.csv", index=False)
    for method in ("ig", "permutation"):
        res = CliRunner().invoke(cli, ["explain", str(tmp_path / "ml.mlp"), str(tmp_path / "part.csv"),
                                       "--method", method, "-o", str(tmp_path / "r.csv")])
        assert res.exit_code == 1, res.output
        assert "has 2 of the model's 3 target columns ('L0', 'L1', 'L2') and lacks 'L2'" in " ".join(res.output.split())
        assert not (tmp_path / "r.csv").exists()


def test_permutation_on_a_model_with_a_temperature_per_label(models):
    paths, data, df, _ = models
    model = model_io.load(paths["ensemble"])  # 240 out-of-fold rows: each label calibrated on its own
    assert np.ndim(model.temperature) == 1 and len(set(np.round(model.temperature, 6))) > 1
    s = load_samples(model, data)
    X, Y = s.X, s.y
    base = model.predict_output(X)

    def bce(P):
        return -np.mean(np.log(np.clip(np.where(Y == 1, P, 1 - P), 1e-15, 1)), axis=0)

    drops, _ = permutation_importance(model, X, Y, repeats=2, seed=3)
    feats = list(model.feature_names)
    for j in (0, 3):  # the tempered probabilities are predict's, label by label
        rng = feature_rng(3, feats[j])
        Xs = X.copy()
        Xs[:, j] = X[rng.permutation(len(X)), j]
        np.testing.assert_allclose(drops[0, j], bce(model.predict_output(Xs)) - bce(base), atol=2e-5)
    res = run(["explain", paths["ensemble"], data, "--method", "permutation", "--repeats", "2", "--scoring",
               "balanced_accuracy", "--top", "2"])
    assert res.exit_code == 0, res.output
