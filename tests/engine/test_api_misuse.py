"""The engine's public API refuses what it cannot compute, with a message, instead of a wrong number or a
NumPy error from deep inside (found by a review of the Python API)."""

from __future__ import annotations

import numpy as np
import pytest

from mlpcli.engine import MLP, losses, optim


def test_the_optimizer_refuses_gradients_of_another_shape_or_other_keys():
    p = {"W": np.zeros((2, 3))}
    with pytest.raises(ValueError, match=r"gradient 'W' has shape \(3, 2\)"):
        optim.get("sgd", lr=1.0).step(p, {"W": np.arange(6.0).reshape(3, 2)})  # applied flattened before
    assert not p["W"].any()
    with pytest.raises(ValueError, match="shape"):
        optim.get("adam").step({"b": np.zeros(3)}, {"b": np.ones(4)})  # its 4th entry was dropped
    net = MLP(4, [3], 2)
    out = net.forward(np.ones((5, 4)), training=True)
    grads = net.backward(losses.get("ce").backward(out, np.zeros(5, int)))  # per-layer keys
    params, _ = net.parameter_groups()  # "W" and "rest"
    with pytest.raises(ValueError, match="same keys"):
        optim.get("adam").step(params, grads)


@pytest.mark.parametrize("name, output, y, expected", [
    ("mse", [[0], [1]], [[0.7], [0.2]], 0.5 * (0.49 + 0.64) / 2),  # y was cast to int: 0.0
    ("bce", [[0], [0]], [[1.0], [0.0]], np.log(2.0)),
])
def test_integer_outputs_are_computed_in_floating_point(name, output, y, expected):
    loss = losses.get(name)
    assert loss.forward(np.array(output), np.array(y)) == pytest.approx(expected)
    assert np.issubdtype(loss.backward(np.array(output), np.array(y)).dtype, np.floating)


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "bce", "focal", "hinge"])
def test_transposed_targets_are_refused_not_read_scrambled(name):
    """y of shape (k, n) for outputs (n, k) has as many entries: it was reshaped row-major to (n, k), a loss of
    other rows' labels without a word (bce 3.35 where the right targets give 0.013). (n,) for k = 1 stays accepted."""
    out = np.array([[5.0, -5.0], [5.0, -5.0], [5.0, -5.0]])
    y = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    loss = losses.get(name)
    with pytest.raises(ValueError, match=r"y has shape \(2, 3\), expected the output's shape \(3, 2\)"):
        loss.forward(out, y.T.copy())
    with pytest.raises(ValueError, match="expected the output's shape"):
        loss.backward(out, y.T.copy())
    assert loss.forward(out, y) == pytest.approx(loss.forward(out, y.tolist()))
    column = out[:, :1]
    assert loss.forward(column, y[:, 0]) == loss.forward(column, y[:, :1])  # (n,) targets of one column


def test_a_one_dimensional_output_is_refused_by_name():
    with pytest.raises(ValueError, match=r"mse: the output must be 2-D \(n, k\), got shape \(5,\)"):
        losses.get("mse").forward(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="ce: the output must be 2-D"):
        losses.get("ce").forward(np.zeros(5), np.zeros(5, int))


def test_backward_checks_its_input_and_that_a_forward_came_first():
    with pytest.raises(ValueError, match="forward pass first"):
        MLP(4, [3], 2).backward(np.ones((5, 2)))
    net = MLP(4, [3], 2)
    net.forward(np.ones((5, 4)), training=True)
    with pytest.raises(ValueError, match=r"grad_output must be \(n, 2\)"):
        net.backward(np.ones((5, 3)))
    with pytest.raises(ValueError, match="6 rows; the last forward pass had 5"):
        net.backward(np.ones((6, 2)))


def test_invalid_hyperparameters_are_refused():
    for rate in (-0.5, float("nan"), 1.0):
        with pytest.raises(ValueError, match="dropout rate"):
            MLP(4, [3], 2, dropout=rate)
    for value in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="l1 and l2"):
            optim.WeightPenalty(l2=value)
