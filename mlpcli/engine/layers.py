"""Layers: each caches only what its backward needs.

``forward(x, training)`` returns the layer's output; ``backward(grad_out)`` writes the parameter
gradients into ``self.grads`` (views into the network's flat gradient buffer) and returns the
gradient for the layer's input, or None when ``need_input_grad`` is False (the first layer: nobody
needs dL/dX, and skipping it saves the largest matrix multiply of the backward pass). With
``param_grads=False`` it leaves ``self.grads`` alone and only returns the input gradient: the gradient
of an output with respect to the inputs (attributions, ``MLP.input_gradient``) needs no parameter
gradients, which cost as much again.

Parameters and gradients are *views* handed in by the network (``bind``), so an optimizer can
update one flat buffer in place and the layers see the change.

In training mode (and in every backward pass) a layer writes its output and its input gradient
into arrays of its ``workspace``, reused from step to step: a training step allocates nothing of
batch-by-width size once the first step has run. Such an array is overwritten by the layer's
next training forward (or backward); inference-mode forward passes return fresh arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from . import activations as act
from .workspace import Workspace

__all__ = ["Layer", "Dense", "Activation", "Dropout", "BatchNorm", "weight_grad_rows"]


class Layer(ABC):
    """Base class: no parameters, identity shapes."""

    kind: str = ""
    _caches: tuple[str, ...] = ()  # attributes holding arrays of the last forward pass, for the backward

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.workspace = Workspace()

    def release(self) -> None:
        """Drop the scratch arrays and what the last forward pass cached; the next forward makes them again."""
        self.workspace.clear()
        for name in self._caches:
            setattr(self, name, None)

    def _scratch(self, name: str, shape: tuple[int, ...], dtype, training: bool = True) -> np.ndarray | None:
        """A workspace array when training (None otherwise, so NumPy allocates the result)."""
        return self.workspace.get(name, shape, dtype) if training else None

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Adopt views for parameters and their gradients (same keys as ``param_shapes``)."""
        self.params, self.grads = params, grads

    def init_params(self, rng: np.random.Generator) -> None:
        """Fill the bound parameter views with their initial values."""

    @abstractmethod
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The layer's output for input x (n, d_in), caching what backward needs."""

    @abstractmethod
    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True, param_grads: bool = True) -> np.ndarray | None:
        """Store parameter gradients in ``self.grads`` (unless ``param_grads`` is False); return dL/dx (or None)."""


# dL/dW of a large Dense layer is computed in up to this many blocks of rows (output units), each of at least
# GRAD_BLOCK_ENTRIES entries: with a core to spare, the optimizer updates a block of W while the next block's
# gradient is computed (``MLP.backward``'s ``ready``). Always the same blocks, whether or not anything overlaps,
# so the gradients do not depend on the cores; each entry is the same dot product over the minibatch either
# way (bit for bit the product of the whole matrix with OpenBLAS, measured). Measured on workload A's first
# layer (512 x 5,000, batch 128, one thread): 8.2 ms whole, 8.4 ms in 4 blocks, 9.0 ms in 8.
GRAD_BLOCKS = 4
GRAD_BLOCK_ENTRIES = 1 << 19


# A product of at most this many rows, x W^T, is made as (W x^T)^T: OpenBLAS's kernels for a few rows against
# a transposed W ran 18-38 % slower than W against the rows transposed, at 16-32 rows (the minibatch of 32 that
# tables of 100-999 training samples get), for inputs of 2,000-20,000 and outputs of 64-512 (one thread, float32;
# the copy included); at 64 rows the two were within 0.8-1.04 x of each other, from 96 rows the direct product
# was as fast or faster. The rule depends on the shape alone, so a given product always takes the same path.
FEW_ROWS = 48


def weight_grad_rows(n_out: int, n_in: int) -> list[tuple[int, int]]:
    """The (start, stop) row blocks in which a Dense layer of W (n_out, n_in) computes dL/dW."""
    blocks = max(1, min(GRAD_BLOCKS, n_out, (n_out * n_in) // GRAD_BLOCK_ENTRIES))
    rows = -(-n_out // blocks)
    return [(a, min(a + rows, n_out)) for a in range(0, n_out, rows)]


class Dense(Layer):
    """z = x W^T + b with W of shape (out, in) and b of shape (out,), as in the notes.

    Backward, for delta = dL/dz (n, out):
        dL/dW = delta^T x   (out, in),   dL/db = sum_i delta_i   (out,),   dL/dx = delta W   (n, in)
    Initialisation: He, N(0, 2 / in), for the ReLU family; Glorot, U(+-sqrt(6 / (in + out))),
    for saturating or linear units.
    """

    kind = "dense"
    _caches = ("x",)

    def __init__(self, n_in: int, n_out: int, init: str = "he"):
        super().__init__()
        if init not in ("he", "glorot"):
            raise ValueError(f"unknown init {init!r}; valid: he, glorot")
        self.n_in, self.n_out, self.init = int(n_in), int(n_out), init
        self.x: np.ndarray | None = None

    def param_shapes(self):
        return {"W": (self.n_out, self.n_in), "b": (self.n_out,)}

    def init_params(self, rng):
        W = self.params["W"]
        if self.init == "he":
            W[...] = rng.normal(0.0, np.sqrt(2.0 / self.n_in), size=W.shape)
        else:
            limit = np.sqrt(6.0 / (self.n_in + self.n_out))
            W[...] = rng.uniform(-limit, limit, size=W.shape)
        self.params["b"][...] = 0.0

    def forward(self, x, training=False):
        self.x = x
        W = self.params["W"]
        n, dtype = x.shape[0], np.result_type(x, W)
        out = self._scratch("z", (n, self.n_out), dtype, training)
        if n <= FEW_ROWS:  # z^T = W x^T, then one small transposing copy (see FEW_ROWS)
            zt = self._scratch("zt", (n * self.n_out,), dtype, training)
            zt = np.matmul(W, x.T, out=None if zt is None else zt.reshape(self.n_out, n))  # (out, n)
            if out is None:
                z = np.ascontiguousarray(zt.T)
            else:
                np.copyto(out, zt.T)
                z = out
        else:
            z = np.matmul(x, W.T, out=out)  # (n, out)
        z += self.params["b"]
        return z

    def backward(self, grad_out, need_input_grad=True, param_grads=True, ready=None):
        """``ready(a, b)``, when given, is called as soon as rows a..b of dL/dW are final (``weight_grad_rows``),
        so an optimizer may update those rows of W while the next rows are computed: only without
        ``need_input_grad``, since dL/dx reads W."""
        if param_grads:
            gW = self.grads["W"]
            for a, b in weight_grad_rows(self.n_out, self.n_in):
                np.matmul(grad_out[:, a:b].T, self.x, out=gW[a:b])  # (rows, in)
                if ready is not None:
                    ready(a, b)
            np.sum(grad_out, axis=0, out=self.grads["b"])  # (out,)
        if not need_input_grad:
            return None
        W = self.params["W"]
        dx = self.workspace.get("dx", (grad_out.shape[0], self.n_in), np.result_type(grad_out, W))
        return np.matmul(grad_out, W, out=dx)  # (n, in)


class Activation(Layer):
    """Applies an activation element-wise (softmax row-wise); caches z and a for its backward."""

    kind = "activation"
    _caches = ("z", "a")

    def __init__(self, activation: str | act.Activation, **params):
        super().__init__()
        self.fn = act.get(activation, **params)
        self.z: np.ndarray | None = None
        self.a: np.ndarray | None = None

    def forward(self, x, training=False):
        self.z = x
        self.a = self.fn.forward(x, out=self._scratch("a", x.shape, x.dtype, training))
        return self.a

    def backward(self, grad_out, need_input_grad=True, param_grads=True):
        dz = self.workspace.get("dz", grad_out.shape, np.result_type(grad_out, self.z))
        return self.fn.backward(self.z, grad_out, self.a, out=dz)


class Dropout(Layer):
    """Inverted dropout: when training, h~ = h * m / (1 - p) with m ~ Bernoulli(1 - p); identity at
    inference. Dividing at training time keeps the expected activation, so inference needs no
    rescaling (the notes' "rescale by 1 - p at test time" done the other way round).

    ``frozen = True`` reuses the last mask (for finite-difference checks, which must see the
    same network at every evaluation).
    """

    kind = "dropout"
    _caches = ("mask",)

    def __init__(self, p: float, rng: np.random.Generator):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {p}")
        self.p = float(p)
        self.rng = rng
        self.mask: np.ndarray | None = None
        self.frozen = False
        self.active = False

    def forward(self, x, training=False):
        self.active = training and self.p > 0.0
        if not self.active:
            return x
        if not (self.frozen and self.mask is not None and self.mask.shape == x.shape):
            mask = self.workspace.get("mask", x.shape, x.dtype)
            self.rng.random(dtype=x.dtype, out=mask)  # u ~ U[0, 1), then m = [u >= p] / (1 - p) in place
            np.greater_equal(mask, self.p, out=mask)
            mask *= x.dtype.type(1.0 / (1.0 - self.p))
            self.mask = mask
        return np.multiply(x, self.mask, out=self.workspace.get("out", x.shape, x.dtype))

    def backward(self, grad_out, need_input_grad=True, param_grads=True):
        if not self.active:
            return grad_out
        return np.multiply(grad_out, self.mask, out=self.workspace.get("dx", grad_out.shape, grad_out.dtype))


class BatchNorm(Layer):
    """Batch normalisation over the batch axis:

        x^ = (x - mu_B) / sqrt(var_B + eps),   y = gamma x^ + beta

    Training uses the batch statistics and updates running averages (momentum m); inference uses
    the running averages. Backward in training mode, with g = dL/dy and g^ = g gamma:

        dL/dgamma = sum_i g_i x^_i,   dL/dbeta = sum_i g_i,
        dL/dx = (1 / (n sqrt(var_B + eps))) (n g^ - sum_i g^_i - x^ sum_i g^_i x^_i)
    """

    kind = "batchnorm"
    _caches = ("xhat", "inv_std")

    def __init__(self, n_features: int, momentum: float = 0.1, eps: float = 1e-5, dtype=np.float64):
        super().__init__()
        self.n_features, self.momentum, self.eps = int(n_features), float(momentum), float(eps)
        self.running_mean = np.zeros(self.n_features, dtype=dtype)
        self.running_var = np.ones(self.n_features, dtype=dtype)
        self.xhat: np.ndarray | None = None
        self.inv_std: np.ndarray | None = None
        self.training = False

    def param_shapes(self):
        return {"gamma": (self.n_features,), "beta": (self.n_features,)}

    def init_params(self, rng):
        self.params["gamma"][...] = 1.0
        self.params["beta"][...] = 0.0

    def forward(self, x, training=False):
        self.training = training
        xhat = self._scratch("xhat", x.shape, x.dtype, training)
        if training:
            n = x.shape[0]
            mu = x.mean(axis=0)
            xhat = np.subtract(x, mu, out=xhat)  # centred first, normalised below
            sq = np.multiply(xhat, xhat, out=self.workspace.get("tmp", x.shape, x.dtype))
            var = sq.mean(axis=0)
            if n > 1:  # the unbiased variance for the running estimate, as frameworks do
                m = self.momentum
                self.running_mean *= 1.0 - m
                self.running_mean += m * mu
                self.running_var *= 1.0 - m
                self.running_var += m * var * (n / (n - 1))
        else:
            mu, var = self.running_mean, self.running_var
            xhat = np.subtract(x, mu, out=xhat)
        self.inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat *= self.inv_std
        self.xhat = xhat
        y = np.multiply(xhat, self.params["gamma"], out=self._scratch("y", x.shape, x.dtype, training))
        y += self.params["beta"]
        return y

    def backward(self, grad_out, need_input_grad=True, param_grads=True):
        xhat = self.xhat
        tmp = self.workspace.get("tmp", grad_out.shape, grad_out.dtype)
        if param_grads:
            np.sum(np.multiply(grad_out, xhat, out=tmp), axis=0, out=self.grads["gamma"])
            np.sum(grad_out, axis=0, out=self.grads["beta"])
        if not need_input_grad:
            return None
        ghat = np.multiply(grad_out, self.params["gamma"], out=self.workspace.get("dx", grad_out.shape, grad_out.dtype))
        if not self.training:  # running statistics are constants
            ghat *= self.inv_std
            return ghat
        # dx = (inv_std / n) (n ghat - sum ghat - xhat sum(ghat xhat)), built in place in ghat
        n = grad_out.shape[0]
        sum_g = ghat.sum(axis=0)
        sum_gx = np.multiply(ghat, xhat, out=tmp).sum(axis=0)
        np.multiply(xhat, sum_gx, out=tmp)
        ghat *= n
        ghat -= sum_g
        ghat -= tmp
        ghat *= self.inv_std / n
        return ghat
