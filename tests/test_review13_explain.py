"""Regressions from review 13 of `mlpcli explain`: completeness checked against predict's own logits, gene
names mapped back through members that keep different genes, ties, class names, permutation on training data."""

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.errors import ConfigError
from mlpcli.explain import baseline_values, explain, integrated_gradients, load_samples
from cli_helpers import run
from tables import make_table


def _train(tmp, name: str, table: pd.DataFrame, *extra: str) -> tuple[str, str]:
    data, model = tmp / f"{name}.csv", tmp / f"{name}.mlp"
    table.to_csv(data, index=False)
    res = run(["train", str(data), "-o", str(model), "--epochs", "6", "-q", "--no-calibrate", *extra])
    assert res.exit_code == 0, res.output
    return str(model), str(data)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review13_explain")
    # count-like genes (log1p applies) of similar variance, so that --top-var keeps other genes in each member
    counts = make_table(n_patients=24, n_features=14, seed=5, signal=3.0)
    genes = [c for c in counts.columns if c.startswith("f")]
    counts[genes] = np.round(np.exp(counts[genes].to_numpy() / 2 + 1.0), 3)
    plain = make_table(n_patients=24, n_features=12, seed=3, signal=4.0)
    return {"topvar": _train(tmp, "topvar", counts, "--folds", "3", "--top-var", "8", "--log1p", "--impute",
                             "median", "--hidden", "8", "--dtype", "float64"),
            "linear": _train(tmp, "linear", counts, "--folds", "3", "--top-var", "8", "--log1p", "--hidden", "",
                             "--dtype", "float64"),
            "plain": _train(tmp, "plain", plain, "--folds", "3", "--hidden", "")}


def _members_mean_logit(model, X, c: int) -> np.ndarray:
    """f_c(X) (n,): the members' mean raw logit, from predict's own forward pass."""
    logits = []
    model.predict_output(X, member_logits=logits)
    return np.concatenate([np.mean([m[:, c] for m in block], axis=0) for block in logits])


@pytest.mark.parametrize("baseline", ["mean", "zero"])
def test_attributions_sum_to_the_change_of_predicts_own_logits(models, baseline):
    """Completeness against an independent f: predict's member logits (not the path's end points), on an
    ensemble whose members keep different genes (--top-var per member), with log1p and an imputed value."""
    model = model_io.load(models["topvar"][0])
    kept = [set(m.preprocessor.kept_features) for m in model.members]
    assert len(set.union(*kept)) > len(set.intersection(*kept))  # the members do keep different genes
    X = load_samples(model, models["topvar"][1]).X[:12].copy()
    used = model.feature_names.index(sorted(kept[0])[0])
    X[2, used] = np.nan  # imputed: explained as the value the network sees
    b = baseline_values(model, baseline)
    for c, name in enumerate(model.classes):
        A, gap = integrated_gradients(model, X, target=name, baseline=baseline, return_gap=True)
        delta = _members_mean_logit(model, X, c) - _members_mean_logit(model, np.repeat(b[None], len(X), 0), c)
        np.testing.assert_allclose(A.sum(axis=1), delta, rtol=1e-6, atol=1e-9)
        assert gap.max() < 1e-6
        unused = [j for j, f in enumerate(model.feature_names) if not any(f in k for k in kept)]
        assert unused and np.all(A[:, unused] == 0.0)


def test_each_attribution_lands_on_its_own_gene_after_top_var_drops(models):
    """A linear ensemble's IG is exact: A_j = mean_m W_m[c, gene j's input in m] (z_mj(x) - z_mj(b)), each
    member's inputs named by its own kept genes. A column shifted by the genes a member drops would fail."""
    model = model_io.load(models["linear"][0])
    X = load_samples(model, models["linear"][1]).X[:10]
    b = baseline_values(model, "mean")
    c = 1
    A = integrated_gradients(model, X, target=model.classes[c])
    expected = np.zeros_like(A)
    position = {f: j for j, f in enumerate(model.feature_names)}
    for member in model.members:
        pre = member.preprocessor
        cols = [position[f] for f in pre.kept_features]
        dz = pre.transform_kept(X[:, cols]) - pre.transform_kept(b[cols][None])
        W = member.network.parameters()["dense0.W"]  # (k, d_m)
        expected[:, cols] += W[c] * dz / len(model.members)
    np.testing.assert_allclose(A, expected, rtol=1e-9, atol=1e-12)


def test_genes_tied_at_zero_share_a_rank_and_are_in_no_members_top_k(models, tmp_path):
    """Genes that no member's network reads (first-layer weights 0) score exactly 0 in every member. They
    were ranked by their names, the same in every member, so each got member_overlap 1 and the members'
    top K looked perfectly stable; now they share one rank, count in no top K, and a note says why."""
    model = model_io.load(models["plain"][0])
    silenced = [f"f{j:02d}" for j in range(4, 12)]
    for member in model.members:
        W = member.network.parameters()["dense0.W"]
        W[:, [member.preprocessor.kept_features.index(f) for f in silenced]] = 0.0
    samples = load_samples(model, models["plain"][1])
    result = explain(model, samples.X, samples.y, top=8)
    for name in result.classes:
        rows = result.table[result.table["class"] == name]
        zero = rows[rows["score"] == 0.0]
        assert len(zero) >= 4, rows
        assert zero["rank"].nunique() == 1 and zero["rank"].iloc[0] == (rows["score"] > 0).sum() + 1, rows
        assert (zero["member_overlap"] == 0.0).all(), rows
        assert result.stability[name]["mean_overlap"] <= 1.0
    assert any("score above 0" in n for n in result.notes), result.notes
    # the command line: a class whose genes all score 0 is one line, not a table of names in order
    for member in model.members:
        member.network.parameters()["dense0.W"][...] = 0.0
    flat = tmp_path / "flat.mlp"
    model_io.save(model, flat)
    res = run(["explain", str(flat), models["plain"][1], "--top", "3", "-q"])
    assert res.exit_code == 0, res.output
    assert "typeA: no gene scores above 0 (" in res.output and "f00" not in res.output, res.output


def test_ties_share_a_rank_in_the_written_table(models):
    """Permutation importance under balanced accuracy moves in steps of one sample: tied genes got ranks
    2, 3, 4 by name; they share rank 2 (competition ranking: the next is 5)."""
    model = model_io.load(models["plain"][0])
    samples = load_samples(model, models["plain"][1])
    result = explain(model, samples.X, samples.y, method="permutation", scoring="balanced_accuracy", top=12,
                     repeats=2)
    for _, rows in result.table.groupby("class"):
        for score, same in rows.groupby("score"):
            assert same["rank"].nunique() == 1, rows
            assert same["rank"].iloc[0] == (rows["score"] > score).sum() + 1, rows
    assert result.table.duplicated(["class", "rank"]).any()  # the check means something: there are ties


def test_a_bad_class_names_every_class_and_a_case_slip(models):
    model = model_io.load(models["plain"][0])
    model.classes = [f"type{j}" for j in range(12)]
    with pytest.raises(ConfigError, match=r"model's classes \('type0', .*'type9' and 2 more\)$"):
        integrated_gradients(model, np.zeros((1, len(model.feature_names))), target="nope")
    with pytest.raises(ConfigError, match=r"did you mean 'type3'\?"):
        integrated_gradients(model, np.zeros((1, len(model.feature_names))), target="TYPE3")


def test_permutation_on_the_training_table_warns(models, tmp_path):
    model_path, data = models["plain"]
    res = run(["explain", model_path, data, "--method", "permutation", "--repeats", "1", "--top", "2", "-q"])
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "are rows the model was trained on" in res.output
    part = tmp_path / "other.csv"  # training rows under another name: still the training rows
    pd.read_csv(data).iloc[:60].to_csv(part, index=False)
    res = run(["explain", model_path, str(part), "--method", "permutation", "--repeats", "1", "--top", "2", "-q"])
    assert res.exit_code == 0 and "all 60 samples are rows the model was trained on" in " ".join(res.output.split())


def test_the_bootstrap_resamples_whole_patients(tmp_path):
    """--bootstrap resampled samples: four samples of each patient counted as four pieces of evidence, and a
    ranking driven by 30 patients looked as stable as one from 120 independent samples."""
    from mlpcli.config import TrainOptions
    from mlpcli.explain import ranking
    from mlpcli.pipeline import train
    from tables import make_table

    table = make_table("binary", n_patients=30, per_patient=1, n_features=40, seed=4)
    copies = pd.concat([table] * 4, ignore_index=True)  # each patient's sample four times
    copies["sample_id"] = [f"s{i}" for i in range(len(copies))]
    path = tmp_path / "copies.csv"
    copies.to_csv(path, index=False)
    model = train(str(path), TrainOptions(folds=1, hidden=[8], epochs=5)).model
    samples = ranking.load_samples(model, str(path))
    assert samples.patients is not None and len(set(samples.patients)) == 30
    by_sample = ranking.explain(model, samples.X, samples.y, bootstrap=30, top=10)
    by_patient = ranking.explain(model, samples.X, samples.y, bootstrap=30, top=10, patients=samples.patients)
    for name, st in by_patient.stability.items():
        assert st["mean_overlap"] < by_sample.stability[name]["mean_overlap"] - 0.1  # the honest spread is wider
    assert any("whole patients resampled" in n for n in by_patient.notes)
    assert not any("whole patients resampled" in n for n in by_sample.notes)
