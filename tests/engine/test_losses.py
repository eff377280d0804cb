import math

import numpy as np
import pytest

from mlpcli.engine import losses
from mlpcli.engine.functional import log_softmax, sigmoid, softmax

rng = np.random.default_rng(0)


def test_bce_gradient_is_prediction_minus_label_over_n():
    z = rng.normal(size=(7, 1))
    y = (rng.random((7, 1)) < 0.5).astype(float)
    np.testing.assert_allclose(losses.get("bce").backward(z, y), (sigmoid(z) - y) / 7)


def test_bce_matches_the_textbook_formula():
    z = rng.normal(size=(6, 3))
    y = (rng.random((6, 3)) < 0.5).astype(float)
    p = sigmoid(z)
    expected = np.mean(np.sum(-(y * np.log(p) + (1 - y) * np.log(1 - p)), axis=1))
    assert losses.get("bce").forward(z, y) == pytest.approx(expected)
    wp, wn = 3.0, 0.5
    expected_w = np.mean(np.sum(-(wp * y * np.log(p) + wn * (1 - y) * np.log(1 - p)), axis=1))
    assert losses.get("bce", pos_weight=wp, neg_weight=wn).forward(z, y) == pytest.approx(expected_w)


def test_ce_gradient_is_softmax_minus_onehot_over_n():
    z = rng.normal(size=(5, 4))
    y = np.array([0, 3, 1, 2, 3])
    Y = np.eye(4)[y]
    np.testing.assert_allclose(losses.get("ce").backward(z, y), (softmax(z) - Y) / 5)
    expected = -np.mean(np.sum(Y * np.log(softmax(z)), axis=1))
    assert losses.get("ce").forward(z, y) == pytest.approx(expected)


def test_label_smoothing_target():
    z = rng.normal(size=(3, 3))
    y = np.array([0, 1, 2])
    a = 0.1
    T = (1 - a) * np.eye(3)[y] + a / 3
    assert losses.get("ce", label_smoothing=a).forward(z, y) == pytest.approx(-np.mean(np.sum(T * np.log(softmax(z)), 1)))


def test_class_weights_multiply_per_sample_loss():
    z = rng.normal(size=(4, 3))
    y = np.array([0, 1, 2, 2])
    per = -np.log(softmax(z)[np.arange(4), y])
    cw = np.array([1.0, 2.0, 5.0])
    assert losses.get("ce", class_weight=cw).forward(z, y) == pytest.approx(np.mean(cw[y] * per))


def test_sample_weight_reduction():
    out = rng.normal(size=(4, 2))
    y = rng.normal(size=(4, 2))
    w = np.array([1.0, 0.0, 2.0, 0.5])
    per = 0.5 * np.sum((out - y) ** 2, axis=1)
    assert losses.get("mse").forward(out, y, w) == pytest.approx(np.sum(w * per) / 4)
    np.testing.assert_allclose(losses.get("mse").backward(out, y, w), w[:, None] * (out - y) / 4)


def test_focal_reduces_to_bce_when_gamma_zero_and_downweights_easy_examples():
    z = rng.normal(size=(6, 1))
    y = (rng.random((6, 1)) < 0.5).astype(float)
    assert losses.get("focal", gamma=0.0).forward(z, y) == pytest.approx(losses.get("bce").forward(z, y))
    easy = np.array([[4.0]])
    one = np.array([[1.0]])
    assert losses.get("focal", gamma=2.0).forward(easy, one) < 0.01 * losses.get("bce").forward(easy, one)
    p = sigmoid(z)
    pt = np.where(y == 1, p, 1 - p)
    at = np.where(y == 1, 0.25, 0.75)
    expected = np.mean(-at * (1 - pt) ** 2 * np.log(pt))
    assert losses.get("focal", gamma=2.0, alpha=0.25).forward(z, y) == pytest.approx(expected)


def test_hinge_and_regression_losses():
    s = np.array([[2.0], [0.5], [-1.0]])
    y = np.array([[1.0], [1.0], [1.0]])
    assert losses.get("hinge").forward(s, y) == pytest.approx((0 + 0.5 + 2.0) / 3)
    r = np.array([[0.5], [-3.0]])
    zero = np.zeros_like(r)
    assert losses.get("huber").forward(r, zero) == pytest.approx((0.125 + 1.0 * (3 - 0.5)) / 2)
    assert losses.get("mae").forward(r, zero) == pytest.approx(1.75)
    np.testing.assert_array_equal(losses.get("mae").backward(np.zeros((2, 1)), zero), 0.0)


@pytest.mark.parametrize("name", ["bce", "focal", "hinge"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_losses_stable_for_huge_logits(name, dtype):
    z = np.array([[1e3], [-1e3], [1e3], [-1e3]], dtype=dtype)
    y = np.array([[1.0], [0.0], [0.0], [1.0]], dtype=dtype)
    loss = losses.get(name)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(z, y)
        grad = loss.backward(z, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad)) and grad.dtype == dtype
    if name == "bce":  # two confident mistakes of 1000 each, averaged over 4
        assert value == pytest.approx(500.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ce_stable_for_huge_logits(dtype):
    z = np.array([[1e3, -1e3, 0.0], [-1e3, 1e3, 0.0]], dtype=dtype)
    y = np.array([1, 1])
    ce = losses.get("ce", label_smoothing=0.1)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert np.isfinite(ce.forward(z, y))
        assert np.all(np.isfinite(ce.backward(z, y)))
    assert losses.get("ce").forward(z, y) == pytest.approx(1000.0)


def test_invalid_losses_raise_value_errors_naming_valid_choices():
    with pytest.raises(ValueError, match="valid: mse, mae, huber, bce, ce, focal, hinge"):
        losses.get("kl")
    with pytest.raises(ValueError, match="valid: gamma, alpha"):
        losses.get("focal", beta=1)
    for bad in [("huber", {"delta": 0}), ("bce", {"pos_weight": -1}), ("ce", {"label_smoothing": 1.0}),
                ("focal", {"alpha": 1.5}), ("focal", {"gamma": -1}), ("ce", {"class_weight": [1, 0]})]:
        with pytest.raises(ValueError):
            losses.get(bad[0], **bad[1])
    with pytest.raises(ValueError, match="class indices"):
        losses.get("ce").forward(np.zeros((2, 3)), np.array([0, 3]))


# ---------------------------------------------------------------- cross-entropy with a -inf logit

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ce_with_a_minus_inf_logit_of_another_class_is_finite(dtype):
    """A class masked with a -inf logit has p = 0; the loss of a row whose true class is another one is finite
    (PyTorch's cross_entropy gives 0.6566 here). The sum of the one-hot target against log p gave 0 * -inf = NaN."""
    z = np.array([[0.0, -np.inf, 1.0], [2.0, -np.inf, -np.inf]], dtype=dtype)
    y = np.array([0, 0])
    ce = losses.get("ce")
    expected = (math.log1p(math.e) + 0.0) / 2  # -log softmax: log(1 + e) for row 1, 0 for row 2
    assert ce.forward(z, y) == pytest.approx(expected, rel=1e-6)
    grad = ce.backward(z, y)
    assert np.isfinite(grad).all() and grad[:, 1].tolist() == [0.0, 0.0]
    # class weights still multiply it; with label smoothing the masked class has target mass, so inf is right
    assert losses.get("ce", class_weight=[2.0, 1.0, 1.0]).forward(z, y) == pytest.approx(2 * expected, rel=1e-6)
    assert losses.get("ce", label_smoothing=0.1).forward(z, y) == np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ce_of_finite_logits_has_the_same_bits_as_the_target_sum(dtype):
    """-log p[y] read off is the old sum against the one-hot target to the bit (the training loss reported
    for a same-seed run does not move)."""
    rng = np.random.default_rng(0)
    ce = losses.get("ce")
    for _ in range(50):
        n, k = int(rng.integers(1, 200)), int(rng.integers(2, 10))
        z = (rng.normal(size=(n, k)) * rng.uniform(0.1, 30)).astype(dtype)
        y = rng.integers(0, k, n)
        onehot = np.eye(k, dtype=dtype)[y]
        np.testing.assert_array_equal(ce.per_sample(z, y), -np.sum(onehot * log_softmax(z), axis=1))


# ---------------------------------------------------------------- zero rows

@pytest.mark.parametrize("name", ["ce", "bce", "mse"])
def test_a_loss_on_zero_rows_is_zero_with_or_without_weights(name):
    """It raised ZeroDivisionError without sample weights and returned 0 with them."""
    loss = losses.get(name)
    out = np.zeros((0, 3 if name == "ce" else 1))
    y = np.zeros(0, dtype=int) if name == "ce" else np.zeros((0, 1))
    for w in (None, np.zeros(0)):
        assert loss.forward(out, y, w) == 0.0
        assert loss.backward(out, y, w).shape == out.shape
