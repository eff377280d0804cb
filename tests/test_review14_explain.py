"""Review 14 of `mlpcli explain`: integrated gradients of ReLU networks with two or more hidden layers are
integrated between the kinks of every layer (the trapezoid rule's O(h) error at the later layers' kinks left
gaps above --tol after 16 x the steps)."""

import json

import numpy as np
import pandas as pd
import pytest

from mlpcli import model_io
from mlpcli.data import Preprocessor
from mlpcli.engine import MLP
from mlpcli.explain import input_gradients, integrated_gradients
from mlpcli.explain import attribution
from mlpcli.model_io import Member, Model
from cli_helpers import run

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
    monkeypatch.setattr(attribution, "PATH_BYTES", 4096)
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
