import numpy as np
import pytest

from mlpcli.engine import activations
from mlpcli.engine import activations as act
from mlpcli.engine.functional import sigmoid

ALL = act.names()


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_huge_inputs(name, dtype):
    z = np.array([[-1e3, -50.0, -1.0, 0.0, 1.0, 50.0, 1e3]], dtype=dtype)
    fn = act.get(name)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = fn.forward(z)
        g = fn.backward(z, np.ones_like(z))
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(g))
    assert a.dtype == dtype and g.dtype == dtype


def test_sigmoid_derivative_identity():
    z = np.linspace(-6, 6, 41)
    s = act.get("sigmoid").forward(z)
    np.testing.assert_allclose(act.get("sigmoid").backward(z, np.ones_like(z)), s * (1 - s))


def test_tanh_derivative_identity():
    z = np.linspace(-4, 4, 33)
    np.testing.assert_allclose(act.get("tanh").backward(z, np.ones_like(z)), 1 - np.tanh(z) ** 2)


def test_softplus_derivative_is_sigmoid():
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(act.get("softplus").backward(z, np.ones_like(z)), sigmoid(z))
    np.testing.assert_allclose(act.get("softplus").forward(np.array([1e3, -1e3])), [1e3, 0.0], atol=1e-12)


def test_softmax_invariant_to_shift_and_sums_to_one():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    sm = act.get("softmax")
    np.testing.assert_allclose(sm.forward(z), sm.forward(z + 123.4), rtol=1e-12)
    np.testing.assert_allclose(sm.forward(z).sum(axis=1), 1.0)
    big = np.array([[1e3, 0.0, -1e3]])
    np.testing.assert_allclose(sm.forward(big), [[1.0, 0.0, 0.0]])


def test_softmax_backward_is_jacobian_product():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(1, 4))
    g = rng.normal(size=(1, 4))
    s = act.get("softmax").forward(z)[0]
    J = np.diag(s) - np.outer(s, s)
    np.testing.assert_allclose(act.get("softmax").backward(z, g)[0], g[0] @ J)


def test_relu_family_values_and_subgradient_at_zero():
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(act.get("relu").forward(z), [0, 0, 3])
    np.testing.assert_array_equal(act.get("relu").backward(z, np.ones(3)), [0, 0, 1])
    np.testing.assert_allclose(act.get("leaky_relu", alpha=0.1).forward(z), [-0.2, 0, 3])
    np.testing.assert_allclose(act.get("elu").forward(np.array([-1.0])), [np.expm1(-1.0)])


def test_gelu_matches_the_tanh_formula():
    z = np.linspace(-3, 3, 13)
    expected = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))
    np.testing.assert_allclose(act.get("gelu").forward(z), expected)


def test_cached_output_gives_same_backward():
    z = np.linspace(-3, 3, 7)
    for name in ("sigmoid", "tanh", "softmax"):
        fn = act.get(name)
        np.testing.assert_allclose(fn.backward(z, z, fn.forward(z)), fn.backward(z, z))


def test_unknown_name_and_bad_params_are_value_errors():
    with pytest.raises(ValueError, match="valid: identity, sigmoid"):
        act.get("swish")
    with pytest.raises(ValueError, match="valid: alpha"):
        act.get("leaky_relu", slope=0.1)
    with pytest.raises(ValueError, match="alpha"):
        act.get("leaky_relu", alpha=2.0)
    with pytest.raises(ValueError, match="valid: none"):
        act.get("relu", alpha=0.1)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu"])
def test_backward_at_a_kink_is_a_subgradient(name):
    fn = activations.get(name)
    z = np.zeros((1, 1))
    g = float(fn.backward(z, np.ones((1, 1)))[0, 0])
    h = 1e-7
    left = float((fn.forward(z) - fn.forward(z - h))[0, 0]) / h
    right = float((fn.forward(z + h) - fn.forward(z))[0, 0]) / h
    assert min(left, right) - 1e-6 <= g <= max(left, right) + 1e-6
