import subprocess
import sys

import numpy as np
import pytest

from mlpcli.engine import MLP, losses, optim
from mlpcli.engine.layers import BatchNorm, Dropout


def _train(net, loss, X, y, opt, epochs, penalty=None):
    params, grads = net.parameter_groups()
    for _ in range(epochs):
        out = net.forward(X, training=True)
        net.backward(loss.backward(out, y))
        if penalty:
            penalty.add_grad(params, grads)
        opt.step(params, grads)
    return loss.forward(net.forward(X), y)


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)

OPTIMIZERS = [
    ("sgd", {"lr": 0.5, "momentum": 0.9}, 2000),
    ("sgd", {"lr": 0.5, "momentum": 0.9, "nesterov": True}, 2000),
    ("adam", {"lr": 0.05}, 1500),
    ("adamw", {"lr": 0.05, "weight_decay": 1e-4}, 1500),
]


@pytest.mark.parametrize("opt_name,params,epochs", OPTIMIZERS, ids=lambda v: str(v) if isinstance(v, str) else "")
def test_learns_xor(opt_name, params, epochs):
    net = MLP(2, [8], 1, activation="tanh", seed=3)
    final = _train(net, losses.get("bce"), XOR_X, XOR_Y, optim.get(opt_name, **params), epochs)
    assert final < 0.02
    pred = (net.forward(XOR_X) > 0).astype(float)
    np.testing.assert_array_equal(pred, XOR_Y)


@pytest.mark.parametrize("opt_name,params,epochs", OPTIMIZERS, ids=lambda v: str(v) if isinstance(v, str) else "")
def test_learns_small_multiclass(opt_name, params, epochs):
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(3, 4))
    y = np.repeat(np.arange(3), 20)
    X = centers[y] + rng.normal(scale=0.5, size=(60, 4))
    net = MLP(4, [16], 3, activation="relu", seed=1)
    lr_params = dict(params, lr=min(params["lr"], 0.05))
    final = _train(net, losses.get("ce"), X, y, optim.get(opt_name, **lr_params), epochs // 2)
    assert final < 0.01


def test_same_seed_same_weights_different_seed_different():
    a, b, c = MLP(10, [7, 5], 3, seed=42), MLP(10, [7, 5], 3, seed=42), MLP(10, [7, 5], 3, seed=43)
    for k in a.parameters():
        np.testing.assert_array_equal(a.parameters()[k], b.parameters()[k])
    assert not np.array_equal(a.parameters()["dense0.W"], c.parameters()["dense0.W"])


def test_training_is_reproducible_with_dropout():
    def run():
        net = MLP(4, [6], 2, dropout=0.3, seed=7)
        X = np.random.default_rng(0).normal(size=(10, 4))
        y = np.arange(10) % 2
        _train(net, losses.get("ce"), X, y, optim.get("adam"), 20)
        return net.flat_params.copy()

    np.testing.assert_array_equal(run(), run())


def test_parameters_ordered_by_layer_and_live():
    net = MLP(5, [4, 3], 2, batchnorm=True)
    params = net.parameters()
    assert list(params) == ["dense0.W", "dense0.b", "batchnorm0.gamma", "batchnorm0.beta",
                            "dense1.W", "dense1.b", "batchnorm1.gamma", "batchnorm1.beta", "dense2.W", "dense2.b"]
    assert params["dense0.W"].shape == (4, 5) and params["dense0.b"].shape == (4,)
    X = np.ones((2, 5))
    before = net.forward(X)
    params["dense2.b"][...] += 1.0
    np.testing.assert_allclose(net.forward(X), before + 1.0)
    grads = net.backward(np.ones((2, 2)))
    assert list(grads) == list(params) and all(grads[k].shape == params[k].shape for k in params)


def test_linear_layer_matches_the_notes_formula():
    net = MLP(3, [], 2)
    X = np.random.default_rng(0).normal(size=(4, 3))
    W, b = net.parameters()["dense0.W"], net.parameters()["dense0.b"]
    np.testing.assert_allclose(net.forward(X), X @ W.T + b)
    delta = np.random.default_rng(1).normal(size=(4, 2))
    grads = net.backward(delta, input_grad=True)
    np.testing.assert_allclose(grads["dense0.W"], delta.T @ X)
    np.testing.assert_allclose(grads["dense0.b"], delta.sum(0))
    np.testing.assert_allclose(net.grad_input, delta @ W)


def test_initialisation_scales():
    he = MLP(2000, [500], 2, activation="relu", seed=0).parameters()["dense0.W"]
    assert he.std() == pytest.approx(np.sqrt(2 / 2000), rel=0.02)
    gl = MLP(2000, [500], 2, activation="tanh", seed=0).parameters()["dense0.W"]
    assert gl.std() == pytest.approx(np.sqrt(2 / 2500), rel=0.02)


def test_dropout_only_when_training_and_preserves_expectation():
    net = MLP(200, [300], 1, activation="identity", dropout=0.5, seed=0)
    X = np.ones((50, 200))
    np.testing.assert_array_equal(net.forward(X), net.forward(X))
    drop = next(l for l in net.layers if isinstance(l, Dropout))
    h = np.ones((400, 300))
    out = drop.forward(h, training=True)
    assert set(np.unique(out)) == {0.0, 2.0}
    assert out.mean() == pytest.approx(1.0, abs=0.02)


def test_batchnorm_uses_running_statistics_at_inference():
    net = MLP(3, [4], 1, batchnorm=True, seed=0)
    bn = next(l for l in net.layers if isinstance(l, BatchNorm))
    X = np.random.default_rng(0).normal(loc=5.0, size=(64, 3))
    for _ in range(200):
        net.forward(X, training=True)
    h = X @ net.parameters()["dense0.W"].T + net.parameters()["dense0.b"]
    np.testing.assert_allclose(bn.running_mean, h.mean(0), rtol=1e-6)
    one = net.forward(X[:1])  # a batch of one works at inference
    assert np.all(np.isfinite(one))


def test_float32_end_to_end():
    net = MLP(6, [5], 3, batchnorm=True, dropout=0.2, dtype="float32", activation="gelu")
    X = np.random.default_rng(0).normal(size=(8, 6))
    out = net.forward(X, training=True)
    assert out.dtype == np.float32
    grads = net.backward(losses.get("ce").backward(out, np.arange(8) % 3))
    assert all(g.dtype == np.float32 for g in grads.values())
    opt = optim.get("adamw")
    opt.step(*net.parameter_groups())
    assert net.flat_params.dtype == np.float32


def test_state_round_trip_and_mismatch():
    a, b = MLP(4, [3], 2, batchnorm=True, seed=1), MLP(4, [3], 2, batchnorm=True, seed=2)
    b.set_state(a.get_state())
    X = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_array_equal(a.forward(X), b.forward(X))
    with pytest.raises(ValueError, match="missing"):
        MLP(4, [3], 2).set_state(a.get_state())


def test_invalid_architecture():
    with pytest.raises(ValueError):
        MLP(0, [3], 2)
    with pytest.raises(ValueError, match="valid"):
        MLP(3, [3], 2, activation="swish")
    with pytest.raises(ValueError, match="dropout"):
        MLP(3, [3], 2, dropout=1.0)


# ----------------------------------------------------------------- the engine imports NumPy alone
def test_the_engine_imports_numpy_and_the_standard_library_only():
    code = ("import sys, numpy\n"
            "before = set(sys.modules)\n"
            "import mlpcli.engine\n"
            "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
            "print(sorted(new - set(sys.stdlib_module_names) - {'mlpcli'}))\n"
            "print(sorted(m for m in sys.modules if m.startswith('mlpcli') and not m.startswith('mlpcli.engine')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", out  # no third-party module
    assert out[1] == "['mlpcli']", out  # and nothing of mlpcli beyond the engine (the package's own __init__)


def test_releasing_training_memory_keeps_inference_and_training_working():
    X = np.random.default_rng(0).standard_normal((16, 6))
    net = MLP(6, [5], 3, seed=0, batchnorm=True)
    reference = MLP(6, [5], 3, seed=0, batchnorm=True)
    out = net.forward(X, training=True)
    net.backward(np.ones_like(out))
    before = net.forward(X)
    net.release_training_memory()
    assert net.workspace.nbytes == 0 and all(layer.workspace.nbytes == 0 for layer in net.layers)
    assert net.layers[0].x is None  # no view of the last rows kept
    np.testing.assert_array_equal(net.forward(X), before)
    # a training pass afterwards: gradients allocated again, the same as a network never released gives
    grads = {}
    for name, model in (("released", net), ("reference", reference)):
        out = model.forward(X, training=True)
        grads[name] = {k: v.copy() for k, v in model.backward(np.ones_like(out)).items()}
    assert grads["released"].keys() == grads["reference"].keys()
    for key in grads["reference"]:
        np.testing.assert_array_equal(grads["released"][key], grads["reference"][key])
    assert np.shares_memory(net.parameter_groups()[1]["W"], net.backward(np.ones_like(out))["dense0.W"])


def test_a_pickled_or_copied_network_keeps_its_parameters_in_one_buffer():
    import copy
    import pickle

    net = MLP(6, [5], 3, seed=0, batchnorm=True)
    X = np.random.default_rng(0).standard_normal((4, 6))
    for twin in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        np.testing.assert_array_equal(twin.forward(X), net.forward(X))
        params, grads = twin.parameter_groups()
        params["W"][:] = 0.0  # through the flat buffer, as the optimizers update it...
        assert not twin.parameters()["dense0.W"].any()  # ...the layers see it
        out = twin.forward(X, training=True)
        twin.backward(np.ones_like(out))
        assert np.shares_memory(grads["rest"], twin.backward(np.ones_like(out))["dense1.b"])
    released = MLP(6, [5], 3, seed=0)
    released.release_training_memory()
    twin = pickle.loads(pickle.dumps(released))
    np.testing.assert_array_equal(twin.forward(X), released.forward(X))
    out = twin.forward(X, training=True)
    assert set(twin.backward(np.ones_like(out))) == set(twin.parameters())


def test_a_shallow_copy_leaves_the_original_training():
    import copy

    from mlpcli.engine import optim

    net = MLP(6, [5], 3, seed=0)
    copy.copy(net)
    X = np.random.default_rng(0).standard_normal((8, 6))
    params, grads = net.parameter_groups()
    before = net.flat_params.copy()
    out = net.forward(X, training=True)
    net.backward(out / len(X))
    assert grads["W"].any()  # the original's gradients land in its own buffer
    optim.Adam(lr=0.1).step(params, grads)
    assert not np.array_equal(net.flat_params, before)


def test_a_network_pickled_before_the_layout_was_kept_still_loads():
    import pickle

    net = MLP(6, [5], 3, seed=0, batchnorm=True)
    X = np.random.default_rng(0).standard_normal((4, 6))
    state = dict(net.__dict__)
    state["flat_grads"] = state.pop("_flat_grads")  # how an older mlpcli pickled it
    del state["_layout"]
    old = MLP.__new__(MLP)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    np.testing.assert_array_equal(old.forward(X), net.forward(X))
    old.parameter_groups()[0]["W"][:] = 0.0
    assert not old.parameters()["dense0.W"].any()
