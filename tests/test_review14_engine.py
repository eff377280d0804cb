"""Review 14, the engine and the fit loop: early stopping after a NaN validation loss, a batch size beyond the
rows with input noise, gradient clipping of overflowing float32 norms, float32 / float64 agreement with dropout
and input noise, and gradient checks at large inputs."""

import math

import numpy as np
import pytest

from mlpcli import training
from mlpcli.engine import MLP, activations, gradcheck, losses, optim


def _data(n=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)


def test_early_stopping_moves_on_from_a_nan_first_validation_loss():
    net = MLP(3, [], 2)
    stopper = training.EarlyStopping(patience=2)
    assert stopper.update(1, math.nan, net) is False  # the first epoch is kept: there must be weights to restore
    net.parameters()["dense0.b"][...] = 7.0
    assert stopper.update(2, 0.9, net) is False  # a number beats NaN (no comparison with NaN ever did)
    assert stopper.best_epoch == 2 and stopper.best == 0.9
    assert stopper.update(3, math.nan, net) is False  # a later NaN is an epoch without improvement
    assert stopper.update(4, 1.0, net) is True and stopper.best_epoch == 2
    net.parameters()["dense0.b"][...] = 0.0
    stopper.restore(net)
    assert np.all(net.parameters()["dense0.b"] == 7.0)


def test_batch_size_beyond_the_rows_with_input_noise_allocates_only_the_rows():
    X, y = _data(40, 50)
    net = MLP(50, [4], 2, dtype="float32")
    # the noise buffer was batch_size + 2 rows: 10**9 x 50 float32 is 200 GB, a MemoryError before any step
    result = training.fit(net, losses.get("ce"), X, y, X[:10], y[:10],
                          training.FitConfig(epochs=2, batch_size=10**9, augment_noise=0.1))
    assert result.epochs_run == 2 and np.isfinite(result.history[-1]["train_loss"])


def test_clip_grad_norm_rescales_a_float32_gradient_whose_squared_norm_overflows():
    grads = {"W": np.full(1000, 1e18, dtype=np.float32), "rest": np.ones(3, dtype=np.float32)}
    norm = optim.clip_grad_norm(grads, 1.0)
    assert norm == pytest.approx(math.sqrt(1000) * 1e18, rel=1e-6)  # was inf, and the gradient was zeroed
    clipped = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    assert clipped == pytest.approx(1.0, rel=1e-5)


def test_gradcheck_suite_covers_large_inputs_and_they_pass():
    results = gradcheck.run(only="activation") + gradcheck.run(only="loss")
    names = {r.component for r in results}
    for name in activations.names():
        assert f"activation:{name}[large inputs]" in names
    for name in ("bce", "ce", "focal"):
        assert f"loss:{name}[large logits]" in names
    assert all(r.passed for r in results), [r.component for r in results if not r.passed]


def test_gradcheck_catches_an_unstable_bce_only_at_large_logits(monkeypatch):
    def naive(self, output, y):  # log of a rounded probability: -log(0) = inf once |logit| > ~37
        p = 1.0 / (1.0 + np.exp(-output))
        return np.sum(-(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)), axis=1)

    monkeypatch.setattr(losses.BCE, "per_sample", naive)
    with np.errstate(all="ignore"):
        results = {r.component: r.passed for r in gradcheck.run(only="loss:bce")}
    assert results["loss:bce"] and not results["loss:bce[large logits]"]


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu"])
def test_backward_at_a_kink_is_a_subgradient(name):
    fn = activations.get(name)
    z = np.zeros((1, 1))
    g = float(fn.backward(z, np.ones((1, 1)))[0, 0])
    h = 1e-7
    left = float((fn.forward(z) - fn.forward(z - h))[0, 0]) / h
    right = float((fn.forward(z + h) - fn.forward(z))[0, 0]) / h
    assert min(left, right) - 1e-6 <= g <= max(left, right) + 1e-6


def test_only_runs_just_the_groups_it_can_match(monkeypatch):
    ran = []
    for group, make in list(gradcheck.GROUPS.items()):
        monkeypatch.setitem(gradcheck.GROUPS, group, lambda *a, g=group, m=make: (ran.append(g), m(*a))[1])
    assert {r.component.split(":")[0] for r in gradcheck.run(only="loss")} == {"loss"}
    assert ran == ["loss"]  # every group used to run (the networks: 1.3 s) and be filtered afterwards
    ran.clear()
    gradcheck.run(only="Act")  # a group name's beginning, in any case
    assert ran == ["activation"]
