"""Integrated gradients as `explain` computes them: completeness against predict's own logits, exact attributions
of deep ReLU networks integrated between their kinks, genes mapped back through members that keep different
genes, ties sharing a rank, and the bootstrap over patients."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.data import Preprocessor
from mlpcli.engine import MLP
from mlpcli.errors import ConfigError
from mlpcli.explain import attribution, baseline_values, explain, input_gradients, integrated_gradients, load_samples
from mlpcli.explain import paths as explain_paths
from mlpcli.model_io import Member, Model
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
    from mlpcli.explain import ranking, samples as explain_samples
    from mlpcli.pipeline import train
    from tables import make_table

    table = make_table("binary", n_patients=30, per_patient=1, n_features=40, seed=4)
    copies = pd.concat([table] * 4, ignore_index=True)  # each patient's sample four times
    copies["sample_id"] = [f"s{i}" for i in range(len(copies))]
    path = tmp_path / "copies.csv"
    copies.to_csv(path, index=False)
    model = train(str(path), TrainOptions(folds=1, hidden=[8], epochs=5)).model
    samples = explain_samples.load_samples(model, str(path))
    assert samples.patients is not None and len(set(samples.patients)) == 30
    by_sample = ranking.explain(model, samples.X, samples.y, bootstrap=30, top=10)
    by_patient = ranking.explain(model, samples.X, samples.y, bootstrap=30, top=10, patients=samples.patients)
    for name, st in by_patient.stability.items():
        assert st["mean_overlap"] < by_sample.stability[name]["mean_overlap"] - 0.1  # the honest spread is wider
    assert any("whole patients resampled" in n for n in by_patient.notes)
    assert not any("whole patients resampled" in n for n in by_sample.notes)


FEATURES = ["g0", "g1", "g2", "g3"]


def _deep_model(n_members: int = 1, hidden=(8, 8, 8), dtype: str = "float64", seed: int = 0) -> Model:
    """A hand-built ReLU network (or ensemble) 4 -> hidden -> 3 with large random weights and biases, so that
    the path from zero to a sample crosses many kinks in every hidden layer; standard scaling (affine), so
    the path is straight in the raw genes too."""
    rng = np.random.default_rng(seed)
    pre = Preprocessor().fit(rng.normal(size=(40, len(FEATURES))), FEATURES)
    members = []
    for m in range(n_members):
        net = MLP(len(FEATURES), list(hidden), 3, seed=m, dtype=dtype)
        for p in net.parameters().values():
            p[...] = rng.normal(scale=1.5, size=p.shape)
        members.append(Member(net, pre, None))
    return Model(members=members, preprocessor=pre, task="multiclass", classes=["A", "B", "C"],
                 feature_names=FEATURES, target_names=["label"], loss={"name": "ce", "params": {}},
                 roles={"target": ["label"], "id": "sample_id"})


def _samples(n: int = 6, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=2.0, size=(n, len(FEATURES)))


def _riemann(model: Model, x: np.ndarray, target: str, output: str, n: int = 20_000) -> np.ndarray:
    """Integrated gradients from zero by the midpoint rule over n points of the public input gradient: an
    independent reference, within O(1/n) of the integral at each kink."""
    alphas = (np.arange(n) + 0.5) / n
    G = input_gradients(model, alphas[:, None] * x[None], target, output=output)
    return x * G.mean(axis=0)


def test_a_deep_relu_networks_logit_attributions_are_exact():
    """Before: 64 steps refined to 1024 left relative gaps of ~1e-4 (the second and third layers' kinks by the
    trapezoid rule); now the sums match f(x) - f(0) to round-off, and each gene's attribution matches an
    independent Riemann sum of the gradient."""
    model, X = _deep_model(), _samples()
    A, gap = integrated_gradients(model, X, target="B", baseline="zero", return_gap=True)
    assert gap.max() < 1e-10, gap.max()
    ref = _riemann(model, X[0], "B", "logit")
    np.testing.assert_allclose(A[0], ref, atol=2e-3 * np.abs(ref).sum())
    # the members' mean logit: each member's attributions count 1/M, and none needs more steps
    ensemble = _deep_model(n_members=2)
    chunk = next(attribution.attribution_chunks(ensemble, X, np.ones((1, len(X)), dtype=int), baseline="zero",
                                                refine=1e-12))
    assert attribution.completeness_gap(chunk.values, chunk.fx, chunk.fb).max() < 1e-10
    assert chunk.steps.max() == attribution.DEFAULT_STEPS


def test_a_deep_relu_ensembles_probability_converges_fast():
    """output="prob" of a two-member ensemble: the mean probability is smooth between any member's kinks and
    integrated with Gauss-Legendre there; before, the gap stayed at ~1e-3 even with 16 x the steps."""
    model, X = _deep_model(n_members=2), _samples()
    A, gap = integrated_gradients(model, X, target="C", baseline="zero", output="prob", steps=16, return_gap=True)
    assert gap.max() < 1e-7, gap.max()
    ref = _riemann(model, X[1], "C", "prob")
    np.testing.assert_allclose(A[1], ref, atol=2e-3 * np.abs(ref).sum())


def test_each_member_alone_is_exact_too_and_float32_meets_its_round_off():
    model, X = _deep_model(n_members=2, dtype="float32"), _samples()
    for output in ("logit", "prob"):
        chunk = next(attribution.attribution_chunks(model, X, np.zeros((1, len(X)), dtype=int), baseline="zero",
                                                    output=output, per_member=True))
        assert attribution.completeness_gap(chunk.values, chunk.fx, chunk.fb).max() < 1e-4
        assert attribution.completeness_gap(chunk.members, chunk.member_fx, chunk.member_fb).max() < 1e-4


def test_small_memory_blocks_give_the_same_attributions(monkeypatch):
    """The kinks are found in blocks of path points that overlap by one: a block boundary inside a row's
    path must neither lose nor double a crossing."""
    model, X = _deep_model(n_members=2), _samples(4)
    expected = integrated_gradients(model, X, target=None, baseline="zero", output="prob")
    monkeypatch.setattr(explain_paths, "PATH_BYTES", 4096)  # the path points' blocks (``explain.paths``)
    got = integrated_gradients(model, X, target=None, baseline="zero", output="prob")
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_explain_command_passes_the_float64_tolerance_on_a_deep_relu_network(tmp_path):
    """The command failed ("completeness check failed ... even with 1024 steps; raise --steps") on a float64
    deep ReLU model; now its worst gap is round-off."""
    model = _deep_model(n_members=2)
    X = _samples(12, seed=3)
    table = pd.DataFrame(X, columns=FEATURES)
    table.insert(0, "sample_id", [f"S{i}" for i in range(len(X))])
    table.insert(1, "label", np.array(["A", "B", "C"])[np.arange(len(X)) % 3])
    table.to_csv(tmp_path / "t.csv", index=False)
    model_io.save(model, tmp_path / "m.mlp")
    res = run(["explain", str(tmp_path / "m.mlp"), str(tmp_path / "t.csv"), "--baseline", "zero", "--json", "-q"])
    assert res.exit_code == 0, res.output
    gap = json.loads(res.stdout)["completeness"]
    assert gap["passed"] and gap["max_gap"] < 1e-10 and gap["most_steps"] == 64, gap


@pytest.mark.parametrize("activation", ["gelu", "tanh"])
def test_smooth_deep_networks_keep_the_trapezoid_rule(activation):
    """Only piecewise-linear networks are cut at kinks; a smooth one is integrated (and refined) as before and
    still meets the tolerance."""
    model = _deep_model()
    for member in model.members:
        net = member.network
        rebuilt = MLP(net.n_inputs, net.hidden, net.n_outputs, activation=activation, dtype="float64")
        rebuilt.set_state(net.get_state())
        member.network = rebuilt
    A, gap = integrated_gradients(model, _samples(), target="A", baseline="zero", return_gap=True)
    assert gap.max() < 1e-3
    np.testing.assert_allclose(A[0], _riemann(model, _samples()[0], "A", "logit"), rtol=1e-3, atol=1e-6)


def test_the_trapezoid_rule_on_request_for_cheap_rankings():
    """``exact=False`` (predict --explain's per-sample top genes) keeps the trapezoid rule on a deep ReLU network,
    whose exact path costs a backward pass per kink (4 x the CPU time at 256,128,64): the same attributions
    as the exact path but for its O(1/steps) error, and one hidden layer is the same path either way."""
    model, X = _deep_model(), _samples()
    targets = np.ones((1, len(X)), dtype=np.int64)
    exact = next(attribution.attribution_chunks(model, X, targets, baseline="zero", steps=64))
    rough = next(attribution.attribution_chunks(model, X, targets, baseline="zero", steps=64, exact=False))
    gap = attribution.completeness_gap
    assert gap(exact.values, exact.fx, exact.fb).max() < 1e-10 < gap(rough.values, rough.fx, rough.fb).max()
    np.testing.assert_allclose(rough.values, exact.values, atol=0.05 * np.abs(exact.values).max())
    shallow = _deep_model(hidden=(8,))
    a, b = (next(attribution.attribution_chunks(shallow, X, targets, baseline="zero", exact=e)) for e in (True, False))
    np.testing.assert_array_equal(a.values, b.values)
