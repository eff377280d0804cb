import numpy as np
import pytest

from mlpcli.engine import MLP, optim


def test_adam_matches_textbook_update():
    rng = np.random.default_rng(0)
    p = rng.normal(size=5)
    p_ref = p.copy()
    m = v = np.zeros(5)
    opt = optim.Adam(lr=0.01)
    for t in range(1, 6):
        g = rng.normal(size=5)
        opt.step({"w": p}, {"w": g})
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p_ref = p_ref - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(p, p_ref, rtol=1e-12)


def test_sgd_momentum_and_nesterov():
    p = np.array([1.0])
    opt = optim.SGD(lr=0.1, momentum=0.5)
    opt.step({"w": p}, {"w": np.array([1.0])})
    opt.step({"w": p}, {"w": np.array([1.0])})
    assert p[0] == pytest.approx(1.0 - 0.1 - 0.1 * 1.5)
    q = np.array([1.0])
    nes = optim.SGD(lr=0.1, momentum=0.5, nesterov=True)
    nes.step({"w": q}, {"w": np.array([1.0])})
    assert q[0] == pytest.approx(1.0 - 0.1 * (1.0 + 0.5 * 1.0))


def test_adamw_decays_weights_but_not_biases():
    net = MLP(3, [2], 1, seed=0)
    params, grads = net.parameter_groups()
    grads["W"][...] = 0.0
    grads["rest"][...] = 0.0
    net.parameters()["dense0.b"][...] = 1.0
    w_before, b_before = params["W"].copy(), params["rest"].copy()
    optim.AdamW(lr=0.1, weight_decay=0.5).step(params, grads)
    np.testing.assert_allclose(params["W"], w_before * (1 - 0.05))
    np.testing.assert_allclose(params["rest"], b_before)


def test_optimizer_state_is_reused_not_reallocated():
    net = MLP(3, [4], 2)
    params, grads = net.parameter_groups()
    opt = optim.Adam()
    opt.step(params, grads)
    ids = {k: {n: id(a) for n, a in s.items()} for k, s in opt.state.items()}
    opt.step(params, grads)
    assert ids == {k: {n: id(a) for n, a in s.items()} for k, s in opt.state.items()}


def test_weight_penalty_value_and_gradient_skip_biases():
    net = MLP(2, [2], 1, seed=0)
    params = net.parameters()
    pen = optim.WeightPenalty(l1=0.1, l2=0.2)
    ws = [params[k] for k in net.weight_keys()]
    expected = sum(0.1 * np.abs(w).sum() + 0.2 * (w**2).sum() for w in ws)
    assert pen.value(params) == pytest.approx(expected)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    pen.add_grad(params, grads)
    np.testing.assert_allclose(grads["dense0.W"], 0.1 * np.sign(params["dense0.W"]) + 0.4 * params["dense0.W"])
    assert not grads["dense0.b"].any()
    # the flat groups give the same penalty
    assert pen.value(net.parameter_groups()[0]) == pytest.approx(expected)


def test_clip_grad_norm():
    grads = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert optim.clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    assert np.sqrt(grads["a"] ** 2 + grads["b"] ** 2)[0] == pytest.approx(1.0)


def test_invalid_optimizers():
    with pytest.raises(ValueError, match="valid: sgd, adam, adamw"):
        optim.get("rmsprop")
    with pytest.raises(ValueError):
        optim.SGD(lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(nesterov=True)
