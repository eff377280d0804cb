import numpy as np
import pytest

from mlpcli.engine import MLP, activations, gradcheck, layers, losses
from mlpcli.engine.gradcheck import GROUPS


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_component_passes(group):
    results = gradcheck.run(only=group)
    assert results
    failed = [(r.component, r.max_rel_error, r.note) for r in results if not r.passed]
    assert not failed, failed


@pytest.mark.parametrize("seed", [1, 2])
def test_networks_pass_for_other_seeds(seed):
    results = gradcheck.run(only="network", seed=seed)
    assert all(r.passed for r in results), [r.component for r in results if not r.passed]


def test_suite_covers_everything_the_issue_lists():
    names = gradcheck.components()
    for a in activations.names():
        assert f"activation:{a}" in names
    for l in losses.names():
        assert any(n.startswith(f"loss:{l}") for n in names)
    for needle in ("label_smoothing", "class_weight", "pos_weight", "gamma=0.5,alpha=0.25", "huber(delta=0.5)",
                   "layer:dense", "layer:batchnorm(training)", "layer:dropout(fixed mask)", "penalty:l1", "penalty:l2",
                   "batchnorm / ", "dropout=0.3", "[5, 4, 3]"):
        assert any(needle in n for n in names), needle


def test_broken_activation_gradient_is_caught(monkeypatch):
    good = activations.Sigmoid.backward
    monkeypatch.setattr(activations.Sigmoid, "backward", lambda self, z, g, a=None: 1.01 * good(self, z, g, a))
    results = gradcheck.run(only="activation:sigmoid")
    assert not results[0].passed and results[0].max_rel_error > 1e-3


def test_broken_dense_weight_gradient_is_caught_in_networks(monkeypatch):
    good = layers.Dense.backward

    def broken(self, grad_out, need_input_grad=True):
        out = good(self, grad_out, need_input_grad)
        self.grads["W"][0, 0] *= 1.001  # one entry off by 0.1 %
        return out

    monkeypatch.setattr(layers.Dense, "backward", broken)
    results = gradcheck.run(only="network:[6] tanh")
    assert results and not any(r.passed for r in results)


def test_broken_loss_gradient_is_caught(monkeypatch):
    monkeypatch.setattr(losses.BCE, "grad", lambda self, o, y: y - np.exp(-np.logaddexp(0, -o)))  # sign flipped
    assert not any(r.passed for r in gradcheck.run(only="loss:bce"))


def test_broken_batchnorm_input_gradient_is_caught(monkeypatch):
    good = layers.BatchNorm.backward

    def broken(self, grad_out, need_input_grad=True):
        g = good(self, grad_out, need_input_grad)
        return None if g is None else g + 1e-3 * grad_out  # forgets the mean-subtraction term's share
    monkeypatch.setattr(layers.BatchNorm, "backward", broken)
    assert not gradcheck.run(only="layer:batchnorm(training)")[0].passed


def test_check_network_restores_batchnorm_buffers():
    net = MLP(3, [4], 2, batchnorm=True, seed=0)
    X = np.random.default_rng(0).normal(size=(6, 3))
    before = {k: v.copy() for k, v in net.buffers().items()}
    res = gradcheck.check_network(net, losses.get("ce"), X, np.array([0, 1, 0, 1, 1, 0]))
    assert res.passed
    for k, v in net.buffers().items():
        np.testing.assert_array_equal(v, before[k])


def test_only_with_no_match_is_a_value_error():
    with pytest.raises(ValueError, match="no gradcheck component matches"):
        gradcheck.run(only="activation:swish")


def test_broken_input_gradient_is_caught(monkeypatch):
    good = layers.Dense.backward

    def broken(self, grad_out, need_input_grad=True, param_grads=True):
        out = good(self, grad_out, need_input_grad, param_grads)
        return out if param_grads or out is None else out * 1.001  # only the input-only pass is off
    monkeypatch.setattr(layers.Dense, "backward", broken)
    results = gradcheck.run(only="input:[6] tanh")
    assert results and not any(r.passed for r in results)
    assert all(r.passed for r in gradcheck.run(only="network:[6] tanh"))


def test_input_gradient_leaves_parameter_gradients_alone():
    net = MLP(4, [5, 3], 2, activation="tanh", batchnorm=True, seed=1)
    X = np.random.default_rng(0).normal(size=(6, 4))
    R = np.random.default_rng(1).normal(size=(6, 2))
    net.flat_grads[...] = 7.0
    net.forward(X)
    g = net.input_gradient(R)
    assert np.all(net.flat_grads == 7.0)
    net.forward(X)
    net.backward(R, input_grad=True)
    np.testing.assert_allclose(g, net.grad_input)
