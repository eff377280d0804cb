"""Activation functions: one small class each, forward and backward side by side.

Every derivative is computed from the pre-activation ``z`` that the layer cached in its forward
pass. ``backward(z, grad_out, a=None)`` returns the vector-Jacobian product dL/dz given
``grad_out`` = dL/da; when the caller also cached the output ``a = forward(z)`` it may pass it so
that sigmoid, tanh and softmax do not recompute it.

Both take an optional ``out``: a scratch array of z's shape (a layer's workspace) that the result
may be written into. The caller always uses the return value. Identity, ReLU, leaky ReLU and tanh
compute in place there and allocate nothing; the others, rarer as hidden units, return new arrays.

All forms are written to stay finite for |z| up to 1e3 in float32 and float64: no ``exp`` of a
large positive number is ever taken.
"""

from __future__ import annotations

import math

from abc import ABC, abstractmethod

import numpy as np

from .functional import build, sigmoid as _sigmoid, softmax as _softmax, softplus as _softplus

__all__ = ["Activation", "get", "names", "ACTIVATIONS"]


class Activation(ABC):
    """Base class. ``kinks`` lists the points where the function is not differentiable."""

    name: str = ""
    kinks: tuple[float, ...] = ()

    @abstractmethod
    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """a = phi(z), same shape as z (possibly written into ``out``)."""

    @abstractmethod
    def backward(self, z: np.ndarray, grad_out: np.ndarray, a: np.ndarray | None = None,
                 out: np.ndarray | None = None) -> np.ndarray:
        """dL/dz from grad_out = dL/da; ``a`` is forward(z) when the caller cached it."""

    def params(self) -> dict[str, float]:
        """Constructor parameters, for storing the architecture."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def _mask(z: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """1.0 where z > 0, else 0.0, written straight into the float output (no boolean temporary)."""
    if out is None:
        return (z > 0).astype(z.dtype)
    return np.greater(z, 0, out=out)


class Identity(Activation):
    """phi(z) = z;  phi'(z) = 1."""

    name = "identity"

    def forward(self, z, out=None):
        return z

    def backward(self, z, grad_out, a=None, out=None):
        return grad_out


class Sigmoid(Activation):
    """sigma(z) = 1 / (1 + e^-z);  sigma'(z) = sigma(z) (1 - sigma(z))."""

    name = "sigmoid"

    def forward(self, z, out=None):
        return _sigmoid(z)

    def backward(self, z, grad_out, a=None, out=None):
        s = _sigmoid(z) if a is None else a
        out = np.subtract(1.0, s, out=out)
        out *= s
        out *= grad_out
        return out


class Tanh(Activation):
    """tanh(z);  tanh'(z) = 1 - tanh(z)^2."""

    name = "tanh"

    def forward(self, z, out=None):
        return np.tanh(z, out=out)

    def backward(self, z, grad_out, a=None, out=None):
        t = np.tanh(z) if a is None else a
        out = np.multiply(t, t, out=out)
        np.subtract(1.0, out, out=out)
        out *= grad_out
        return out


class ReLU(Activation):
    """max(0, z);  ReLU'(z) = 1 for z > 0, else 0 (the subgradient 0 at z = 0)."""

    name = "relu"
    kinks = (0.0,)

    def forward(self, z, out=None):
        return np.maximum(z, 0, out=out)

    def backward(self, z, grad_out, a=None, out=None):
        out = _mask(z, out)
        out *= grad_out
        return out


class LeakyReLU(Activation):
    """z for z >= 0, alpha z otherwise;  derivative 1 for z > 0, alpha for z < 0 (alpha at 0)."""

    name = "leaky_relu"
    kinks = (0.0,)

    def __init__(self, alpha: float = 0.01):
        if not (0.0 < alpha < 1.0):
            raise ValueError(f"leaky_relu alpha must be in (0, 1), got {alpha}")
        self.alpha = float(alpha)

    def params(self):
        return {"alpha": self.alpha}

    def forward(self, z, out=None):
        # max(z, alpha z) for 0 < alpha < 1: two fast passes where np.where is an order slower.
        out = np.multiply(z, self.alpha, out=out)
        return np.maximum(out, z, out=out)

    def backward(self, z, grad_out, a=None, out=None):
        # The factor 1 for z > 0, alpha elsewhere, as mask * (1 - alpha) + alpha: (1 - alpha) + alpha
        # rounds to exactly 1 for every alpha in (0, 1), and no boolean temporary is made.
        out = _mask(z, out)
        out *= 1.0 - self.alpha
        out += self.alpha
        out *= grad_out
        return out


class ELU(Activation):
    """z for z >= 0, alpha (e^z - 1) otherwise;  derivative 1 for z > 0, alpha e^z for z < 0 (alpha at 0)."""

    name = "elu"
    kinks = (0.0,)  # C1 only when alpha = 1; the second derivative jumps at 0 either way

    def __init__(self, alpha: float = 1.0):
        if not alpha > 0.0:
            raise ValueError(f"elu alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def params(self):
        return {"alpha": self.alpha}

    def forward(self, z, out=None):
        # expm1 of min(z, 0) so the branch not taken never overflows.
        return np.where(z >= 0, z, self.alpha * np.expm1(np.minimum(z, 0)))

    def backward(self, z, grad_out, a=None, out=None):
        return grad_out * np.where(z > 0, 1.0, self.alpha * np.exp(np.minimum(z, 0))).astype(z.dtype, copy=False)


class Softplus(Activation):
    """log(1 + e^z);  softplus'(z) = sigma(z)."""

    name = "softplus"

    def forward(self, z, out=None):
        return _softplus(z)

    def backward(self, z, grad_out, a=None, out=None):
        return grad_out * _sigmoid(z)


class GELU(Activation):
    """The tanh approximation of the notes:

    GELU(z) = 0.5 z (1 + tanh(u)),   u = sqrt(2/pi) (z + 0.044715 z^3)
    GELU'(z) = 0.5 (1 + tanh(u)) + 0.5 z (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 z^2)
    """

    name = "gelu"
    _C = math.sqrt(2.0 / math.pi)
    _K = 0.044715

    def forward(self, z, out=None):
        return 0.5 * z * (1.0 + np.tanh(self._C * (z + self._K * z**3)))

    def backward(self, z, grad_out, a=None, out=None):
        t = np.tanh(self._C * (z + self._K * z**3))
        # For |z| ~ 1e3 the (1 - t^2) factor is exactly 0, which cancels the z^3 growth.
        dudz = self._C * (1.0 + 3.0 * self._K * z * z)
        return grad_out * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * dudz)


class Softmax(Activation):
    """Row-wise over the last axis: s_i = e^{z_i - max z} / sum_j e^{z_j - max z}.

    Its Jacobian is diag(s) - s s^T, so the vector-Jacobian product is
    grad_z = s * (grad_out - sum_j grad_out_j s_j).
    """

    name = "softmax"

    def forward(self, z, out=None):
        return _softmax(z)

    def backward(self, z, grad_out, a=None, out=None):
        s = self.forward(z) if a is None else a
        return s * (grad_out - (grad_out * s).sum(axis=-1, keepdims=True))


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Softplus, GELU, Softmax)
}


def names() -> list[str]:
    """The activation names ``get`` takes, e.g. ``["identity", "sigmoid", ...]``."""
    return list(ACTIVATIONS)


def get(name: str | Activation, **params) -> Activation:
    """The activation called ``name``, built with ``params`` (e.g. ``get("leaky_relu", alpha=0.1)``)."""
    if isinstance(name, Activation):
        return name
    try:
        cls = ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}") from None
    return build(cls, "activation", name, params)

