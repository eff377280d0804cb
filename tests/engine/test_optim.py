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
