"""Workspaces: a training step reuses its arrays instead of allocating them (issue 7)."""

import copy
import pickle
import tracemalloc

import numpy as np
import pytest

from mlpcli.engine import MLP, activations as act, losses, optim
from mlpcli.engine.workspace import Workspace
from mlpcli.training import run_epoch


def test_workspace_reuses_memory_and_grows_only_when_needed():
    ws = Workspace()
    a = ws.get("z", (64, 10), np.float32)
    b = ws.get("z", (64, 10), np.float32)
    assert a.shape == (64, 10) and np.shares_memory(a, b)
    small = ws.get("z", (17, 10), np.float32)  # the last, short minibatch: a leading view
    assert small.shape == (17, 10) and small.flags.c_contiguous and np.shares_memory(a, small)
    bigger = ws.get("z", (65, 10), np.float32)
    assert bigger.shape == (65, 10) and not np.shares_memory(a, bigger)
    assert not np.shares_memory(ws.get("z", (65, 10), np.float64), bigger)
    assert not np.shares_memory(ws.get("z", (65, 11), np.float64), bigger)
    assert not np.shares_memory(ws.get("other", (65, 11), np.float64), ws.get("z", (65, 11), np.float64))


def test_copies_and_pickles_start_with_an_empty_workspace():
    ws = Workspace()
    ws.get("z", (1000, 100), np.float64)
    assert ws.nbytes == 800_000
    assert copy.deepcopy(ws).nbytes == 0
    assert pickle.loads(pickle.dumps(ws)).nbytes == 0
    net = MLP(50, [40], 3, seed=0)
    net.forward(np.ones((30, 50)), training=True)
    assert sum(layer.workspace.nbytes for layer in net.layers) > 0
    clone = pickle.loads(pickle.dumps(net))
    assert sum(layer.workspace.nbytes for layer in clone.layers) == 0
    np.testing.assert_array_equal(clone.forward(np.ones((30, 50))), net.forward(np.ones((30, 50))))


@pytest.mark.parametrize("name", act.names())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_with_out_equals_without(name, dtype):
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(scale=3, size=(7, 5)), np.zeros((1, 5))]).astype(dtype)
    g = rng.normal(size=z.shape).astype(dtype)
    fn = act.get(name) if name != "leaky_relu" else act.get(name, alpha=0.2)
    a = fn.forward(z)
    a_out = fn.forward(z, out=np.full_like(z, np.nan))
    np.testing.assert_array_equal(a_out, a)
    np.testing.assert_array_equal(fn.backward(z, g, a, out=np.full_like(z, np.nan)), fn.backward(z, g, a))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh"])
def test_common_activations_compute_in_the_workspace(name):
    z = np.random.default_rng(0).normal(size=(6, 4))
    out = np.empty_like(z)
    fn = act.get(name)
    assert fn.forward(z, out=out) is out
    assert fn.backward(z, np.ones_like(z), out=out) is out


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.3, 0.99])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_derivative_is_exactly_one_or_alpha(alpha, dtype):
    z = np.array([-2.0, -1e-3, 0.0, 1e-3, 2.0], dtype=dtype)
    d = act.get("leaky_relu", alpha=alpha).backward(z, np.ones_like(z), out=np.empty_like(z))
    np.testing.assert_array_equal(d, np.array([alpha, alpha, alpha, 1, 1], dtype=dtype))


def test_inference_outputs_are_fresh_and_training_outputs_reused():
    net = MLP(5, [4], 2, seed=0)
    X1, X2 = np.ones((3, 5)), np.zeros((3, 5))
    kept = net.forward(X1)
    net.forward(X2)
    np.testing.assert_array_equal(kept, net.forward(X1))  # not overwritten
    t1 = net.forward(X1, training=True)
    t2 = net.forward(X2, training=True)
    assert np.shares_memory(t1, t2)  # documented: copy a training output to keep it


def test_grad_input_is_a_copy_that_survives_the_next_backward():
    net = MLP(3, [], 2, seed=0)
    X = np.random.default_rng(0).normal(size=(4, 3))
    net.forward(X)
    delta = np.ones((4, 2))
    net.backward(delta, input_grad=True)
    first = net.grad_input
    net.backward(2 * delta, input_grad=True)
    np.testing.assert_allclose(first, delta @ net.parameters()["dense0.W"])
    np.testing.assert_allclose(net.grad_input, 2 * first)


def _peak_bytes_of_an_epoch(net, X, y, batch):
    loss, opt, rng = losses.get("ce"), optim.Adam(), np.random.default_rng(0)
    run_epoch(net, loss, X, y, opt, batch, rng)  # warm-up: workspaces and optimizer state
    tracemalloc.start()  # NumPy reports its array allocations to tracemalloc
    try:
        run_epoch(net, loss, X, y, opt, batch, rng)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("activation,batchnorm,dropout", [("relu", False, 0.0), ("relu", True, 0.2),
                                                          ("leaky_relu", False, 0.5), ("tanh", True, 0.0)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_training_epoch_allocates_no_batch_or_parameter_sized_arrays(activation, batchnorm, dropout, dtype):
    rng = np.random.default_rng(0)
    batch, width = 64, 256
    X = rng.normal(size=(520, 1000)).astype(dtype)  # 8 full batches and a short one
    y = rng.integers(0, 4, 520)
    net = MLP(1000, [width, 128], 4, activation=activation, batchnorm=batchnorm, dropout=dropout, seed=0, dtype=dtype)
    peak = _peak_bytes_of_an_epoch(net, X, y, batch)
    one_activation = batch * width * net.dtype.itemsize
    # Without workspaces an epoch peaks at several activations plus the minibatch (measured 720 kB
    # against 42 kB with them, float32, for the ReLU network); what is left is the shuffle index,
    # the loss's (batch, 4) arrays and per-feature vectors.
    assert peak < one_activation, f"{peak} bytes allocated at peak, one activation is {one_activation}"
    assert peak < net.flat_params.nbytes / 10
