import math

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


@pytest.mark.parametrize("make", [lambda: optim.Adam(lr=0.01), lambda: optim.AdamW(lr=0.01, weight_decay=0.1),
                                  lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=True), lambda: optim.SGD(lr=0.1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_updates_in_several_threads_give_the_same_bits_as_one(monkeypatch, make, dtype):
    import threading

    # shares of at least one block: the weights in 3 (float32) or 4 (float64) shares, the last one ragged, and
    # the biases on one thread
    monkeypatch.setattr(optim, "MIN_SHARE", optim.CHUNK_BYTES // np.dtype(dtype).itemsize)
    nets, opts = [], []
    for threads in (1, 2, 4):
        net = MLP(700, [600], 3, seed=0, dtype=dtype)  # 421,800 weights
        opt = make()
        opt.threads = threads
        nets.append(net)
        opts.append(opt)
    rng = np.random.default_rng(0)
    penalty = optim.WeightPenalty(l1=1e-3, l2=1e-2)
    for _ in range(3):
        g = {k: rng.standard_normal(a.shape).astype(dtype) for k, a in nets[0].parameter_groups()[1].items()}
        for net, opt in zip(nets, opts):
            params, grads = net.parameter_groups()
            for k in grads:
                grads[k][...] = g[k]
            penalty.add_grad(params, grads, opt.threads)
            opt.step(params, grads)
    assert any(t.name.startswith("mlpcli-optim") for t in threading.enumerate())  # other threads did take shares
    assert not np.array_equal(nets[0].flat_params, MLP(700, [600], 3, seed=0, dtype=dtype).flat_params)
    for net in nets[1:]:
        assert net.flat_params.tobytes() == nets[0].flat_params.tobytes()


def test_a_step_returns_only_when_every_share_is_done_even_when_interrupted(monkeypatch):
    import threading
    import time

    monkeypatch.setattr(optim, "MIN_SHARE", 10)
    done, caller = [], threading.get_ident()

    def update(start, stop):
        if threading.get_ident() == caller:
            raise KeyboardInterrupt  # Ctrl-C while the calling thread updates its share
        time.sleep(0.2)
        done.append((start, stop))

    # 512-byte entries: blocks of 1,024 entries, so 4,096 entries make 4 shares of one block
    with pytest.raises(KeyboardInterrupt):
        optim.run_in_shares(4096, 512, 4, update)
    assert sorted(done) == [(1024, 2048), (2048, 3072), (3072, 4096)]  # the other threads' shares, all finished


def test_shares_cover_the_range_once_and_an_error_in_one_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(optim, "MIN_SHARE", 10)
    seen = []
    optim.run_in_shares(5000, 512, 3, lambda a, b: seen.append((a, b)))
    assert sorted(seen) == [(0, 2048), (2048, 4096), (4096, 5000)]  # block-aligned, the last one ragged
    seen.clear()
    optim.run_in_shares(5000, 512, 1, lambda a, b: seen.append((a, b)))
    assert seen == [(0, 5000)]
    monkeypatch.setattr(optim, "MIN_SHARE", 4000)
    seen.clear()
    optim.run_in_shares(5000, 512, 4, lambda a, b: seen.append((a, b)))
    assert seen == [(0, 5000)]  # shares smaller than MIN_SHARE: one thread

    def update(start, stop):
        if start > 0:
            raise ValueError("share failed")

    monkeypatch.setattr(optim, "MIN_SHARE", 10)
    with pytest.raises(ValueError, match="share failed"):
        optim.run_in_shares(5000, 512, 2, update)


def test_clip_grad_norm_rescales_a_float32_gradient_whose_squared_norm_overflows():
    grads = {"W": np.full(1000, 1e18, dtype=np.float32), "rest": np.ones(3, dtype=np.float32)}
    norm = optim.clip_grad_norm(grads, 1.0)
    assert norm == pytest.approx(math.sqrt(1000) * 1e18, rel=1e-6)  # was inf, and the gradient was zeroed
    clipped = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    assert clipped == pytest.approx(1.0, rel=1e-5)


# ----------------------------------------------------------------- optimizers against their equations
def _steps(opt, key="W", n=15, dtype=np.float64):
    rng = np.random.default_rng(3)
    p0 = rng.normal(size=(6, 4)).astype(dtype)
    grads = [rng.normal(size=p0.shape).astype(dtype) for _ in range(n)]
    p = p0.copy()
    for g in grads:
        opt.step({key: p}, {key: g.copy()})
    return p0, grads, p


def _adam_reference(p, grads, lr, b1, b2, eps, decay=0.0):
    """Kingma & Ba's Algorithm 1, with Loshchilov & Hutter's decoupled decay in PyTorch's form (lr x decay)."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        p = p * (1 - lr * decay)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_its_equation(momentum, nesterov):
    p0, grads, p = _steps(optim.SGD(lr=0.1, momentum=momentum, nesterov=nesterov))
    v, ref = np.zeros_like(p0), p0.copy()
    for g in grads:
        v = momentum * v + g
        ref = ref - 0.1 * ((g + momentum * v) if nesterov else v)
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("key,decayed", [("W", True), ("dense0.W", True), ("rest", False), ("dense0.b", False)])
def test_adam_and_adamw_match_their_equations(key, decayed):
    p0, grads, p = _steps(optim.Adam(lr=0.01, beta2=0.95), key)
    np.testing.assert_allclose(p, _adam_reference(p0, grads, 0.01, 0.9, 0.95, 1e-8), rtol=0, atol=1e-13)
    p0, grads, p = _steps(optim.AdamW(lr=0.01, beta2=0.95, weight_decay=1.0), key)
    ref = _adam_reference(p0, grads, 0.01, 0.9, 0.95, 1e-8, decay=1.0 if decayed else 0.0)
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("make", [lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=True), lambda: optim.AdamW(lr=0.01)])
def test_float32_parameters_and_state_stay_float32(make):
    opt = make()
    _, _, p = _steps(opt, dtype=np.float32)
    assert p.dtype == np.float32
    assert all(s.dtype == np.float32 for slots in opt.state.values() for s in slots.values())


# ---------------------------------------------------------------- Adam has no weight decay

def test_adam_refuses_a_weight_decay_it_would_ignore():
    """optim.get("adam", weight_decay=0.5) stepped exactly as without it; decoupled decay is AdamW's."""
    with pytest.raises(ValueError, match="weight_decay for optimizer 'adam'; valid: lr, beta1, beta2, eps"):
        optim.get("adam", weight_decay=0.5)
    with pytest.raises(TypeError):
        optim.Adam(weight_decay=0.5)
    params, grads = {"W": np.ones(3), "rest": np.ones(2)}, {"W": np.full(3, 0.5), "rest": np.full(2, 0.5)}
    optim.get("adamw", lr=0.1, weight_decay=0.5).step(params, grads)
    np.testing.assert_allclose(params["W"], 1.0 * (1 - 0.1 * 0.5) - 0.1)  # decayed, then the Adam step
    np.testing.assert_allclose(params["rest"], 1.0 - 0.1)  # biases are not decayed
    with pytest.raises(ValueError, match="weight_decay"):
        optim.AdamW(weight_decay=-1.0)
