"""Losses on the raw network output, one small class each, forward and backward side by side.

``output`` is the raw network output of shape (n, k): logits for the classification losses, so
every classification loss is computed from logits in a stable form and never takes the log of a
probability. ``y`` has the output's shape, except for ``ce`` whose ``y`` is integer class indices
of shape (n,).

Reduction, the same for all: the per-sample loss l_i sums over the k columns and

    L = (1/n) sum_i w_i l_i,    w_i = sample_weight[i] (default 1),

so ``backward`` returns dL/d output = (w_i / n) * dl_i/d output, with the output's shape and dtype.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .functional import build, log_softmax, sigmoid, softplus

__all__ = ["Loss", "get", "names", "LOSSES"]


class Loss(ABC):
    """Base class.

    ``output_activation`` names the function that turns raw outputs into predictions
    (probabilities for classification) and ``y_kind`` says whether ``y`` holds class indices
    (``"index"``) or has the output's shape (``"dense"``).
    """

    name: str = ""
    output_activation: str = "identity"
    y_kind: str = "dense"

    def forward(self, output: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        """L = (1/n) sum_i w_i l_i for raw outputs (n, k), targets y ((n,) class indices for ``ce``, else the
        output's shape) and optional weights w (n,)."""
        output = self._output(output)
        per_sample = self.per_sample(output, self._y(output, y))
        return float(np.sum(self._scale(output, sample_weight)[:, 0] * per_sample))

    def backward(self, output: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
        """dL/d output = (w_i / n) dl_i/d output_i, (n, k) in the output's dtype (a new array)."""
        output = self._output(output)
        grad = self.grad(output, self._y(output, y)) * self._scale(output, sample_weight)
        return grad.astype(output.dtype, copy=False)

    def value_and_grad(self, output: np.ndarray, y: np.ndarray,
                       sample_weight: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """(L, dL/d output) of one minibatch, what a training step needs: the numbers ``forward`` and ``backward``
        give, bit for bit; a loss may share their work (``CrossEntropy``: one log-softmax, y checked once)."""
        return self.forward(output, y, sample_weight), self.backward(output, y, sample_weight)

    def _output(self, output: np.ndarray) -> np.ndarray:
        """The raw outputs as a 2-D float array (n, k): integer outputs would cast y to integers (0.7 -> 0) and
        compute the loss in integer arithmetic."""
        output = np.asarray(output)
        if output.ndim != 2:
            raise ValueError(f"{self.name}: the output must be 2-D (n, k), got shape {output.shape}")
        return output if np.issubdtype(output.dtype, np.floating) else output.astype(np.float64)

    # Subclasses implement these two on already shaped y.
    @abstractmethod
    def per_sample(self, output: np.ndarray, y: np.ndarray) -> np.ndarray:
        """l_i for each sample, (n,), on already shaped y."""

    @abstractmethod
    def grad(self, output: np.ndarray, y: np.ndarray) -> np.ndarray:
        """dl_i / d output_i, (n, k), unweighted and unreduced."""

    def kink_distance(self, output: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """How far each entry is from a point where the loss is not differentiable (None: smooth)."""
        return None

    def params(self) -> dict:
        return {}

    def _y(self, output: np.ndarray, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != output.shape and y.ndim >= 1 and y.shape[0] == output.shape[0] and y.size == output.size:
            # accept (n,) targets for a single output column; not any array of as many entries: (k, n) targets,
            # transposed, were read row-major into (n, k) and scrambled without a word
            y = y.reshape(output.shape)
        if y.shape != output.shape:
            raise ValueError(f"{self.name}: y has shape {y.shape}, expected the output's shape {output.shape}")
        return y.astype(output.dtype, copy=False)

    @staticmethod
    def _scale(output: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
        """w_i / n as a column (n, 1), in the output's dtype (empty for no rows: a loss of 0, a gradient of
        shape (0, k), with or without weights)."""
        n = output.shape[0]
        if sample_weight is None:
            return np.full((n, 1), 1.0 / max(n, 1), dtype=output.dtype)
        w = np.asarray(sample_weight, dtype=output.dtype).reshape(-1)
        if w.shape[0] != n:
            raise ValueError(f"sample_weight has {w.shape[0]} entries for {n} samples")
        return (w / n)[:, None]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class MSE(Loss):
    """l = sum_k 1/2 (o - y)^2;  dl/do = o - y (the 1/2 cancels)."""

    name = "mse"

    def per_sample(self, output, y):
        r = output - y
        return 0.5 * np.sum(r * r, axis=1)

    def grad(self, output, y):
        return output - y


class MAE(Loss):
    """l = sum_k |o - y|;  dl/do = sign(o - y), the subgradient 0 at o = y."""

    name = "mae"

    def per_sample(self, output, y):
        return np.sum(np.abs(output - y), axis=1)

    def grad(self, output, y):
        return np.sign(output - y)

    def kink_distance(self, output, y):
        return np.abs(output - y)


class Huber(Loss):
    """For r = o - y:  l = 1/2 r^2 if |r| <= delta, else delta (|r| - delta/2);
    dl/do = r if |r| <= delta, else delta sign(r)."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        if not delta > 0:
            raise ValueError(f"huber delta must be > 0, got {delta}")
        self.delta = float(delta)

    def params(self):
        return {"delta": self.delta}

    def per_sample(self, output, y):
        a = np.abs(output - y)
        return np.sum(np.where(a <= self.delta, 0.5 * a * a, self.delta * (a - 0.5 * self.delta)), axis=1)

    def grad(self, output, y):
        return np.clip(output - y, -self.delta, self.delta)

    def kink_distance(self, output, y):
        return np.abs(np.abs(output - y) - self.delta)


class BCE(Loss):
    """Weighted binary cross-entropy from logits z, with p = sigma(z):

    l = sum_k  w+ y (-log p) + w- (1 - y) (-log(1 - p))
      = sum_k  w+ y softplus(-z) + w- (1 - y) softplus(z)

    which for w+ = w- = 1 is the notes' stable form log(1 + e^z) - y z. k = 1 is binary, k > 1
    multi-label (independent sigmoids, summed). Derivative:

    dl/dz = w+ y (p - 1) + w- (1 - y) p      (= p - y when both weights are 1).
    """

    name = "bce"
    output_activation = "sigmoid"

    def __init__(self, pos_weight=1.0, neg_weight=1.0):
        # Each weight is a scalar or one value per output column (per label in multi-label).
        self.pos_weight = self._weight(pos_weight, "pos_weight")
        self.neg_weight = self._weight(neg_weight, "neg_weight")

    @staticmethod
    def _weight(w, name):
        arr = np.asarray(w, dtype=np.float64)
        if arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
            raise ValueError(f"bce {name} must be a positive number (or one per output column), got {w}")
        return float(arr) if arr.ndim == 0 else arr

    def params(self):
        as_json = lambda w: w if isinstance(w, float) else w.tolist()
        return {"pos_weight": as_json(self.pos_weight), "neg_weight": as_json(self.neg_weight)}

    def per_sample(self, output, y):
        terms = self.pos_weight * y * softplus(-output) + self.neg_weight * (1.0 - y) * softplus(output)
        return np.sum(terms, axis=1)

    def grad(self, output, y):
        p = sigmoid(output)
        if np.all(self.pos_weight == 1.0) and np.all(self.neg_weight == 1.0):
            return p - y  # the sigmoid + BCE cancellation of the notes
        return self.pos_weight * y * (p - 1.0) + self.neg_weight * (1.0 - y) * p


class CrossEntropy(Loss):
    """Softmax cross-entropy from logits z (n, K) against integer classes y (n,).

    With label smoothing alpha the target is t = (1 - alpha) onehot(y) + alpha / K, and with
    log p = z - logsumexp(z):

    l_i = c[y_i] * (-sum_k t_ik log p_ik),      dl_i/dz_i = c[y_i] (p_i - t_i)

    where c is the optional per-class weight (1 by default). The fused gradient p - t holds only
    for this softmax + cross-entropy pair.
    """

    name = "ce"
    output_activation = "softmax"
    y_kind = "index"

    def __init__(self, label_smoothing: float = 0.0, class_weight=None):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"ce label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        if class_weight is not None:
            class_weight = np.asarray(class_weight, dtype=np.float64).reshape(-1)
            if class_weight.size == 0 or not np.all(class_weight > 0) or not np.all(np.isfinite(class_weight)):
                raise ValueError("ce class_weight must be a non-empty vector of positive finite numbers")
        self.class_weight = class_weight

    def params(self):
        cw = None if self.class_weight is None else self.class_weight.tolist()
        return {"label_smoothing": self.label_smoothing, "class_weight": cw}

    def _y(self, output, y):
        y = np.asarray(y).reshape(-1)
        n, k = output.shape
        if y.shape[0] != n:
            raise ValueError(f"ce: y has {y.shape[0]} entries for {n} samples")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.equal(np.mod(y, 1), 0)):
                raise ValueError("ce: y must hold integer class indices")
            y = y.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"ce: class indices must lie in [0, {k - 1}]")
        if self.class_weight is not None and self.class_weight.shape[0] != k:
            raise ValueError(f"ce: class_weight has {self.class_weight.shape[0]} entries for {k} classes")
        return y

    def _target(self, output, y):
        n, k = output.shape
        t = np.full((n, k), self.label_smoothing / k, dtype=output.dtype)
        t[np.arange(n), y] += 1.0 - self.label_smoothing
        return t

    def _class_factor(self, y, dtype):
        if self.class_weight is None:
            return None
        return self.class_weight.astype(dtype)[y]

    def per_sample(self, output, y):
        log_p = log_softmax(output)  # (n, K)
        if self.label_smoothing:
            l = -np.sum(self._target(output, y) * log_p, axis=1)
        else:
            # -log p[y], read off rather than summed against the one-hot target: another class's logit of
            # -inf (a masked class) has log p = -inf, and the sum's 0 * -inf made the loss NaN. Same bits
            # otherwise: the sum only added zeros to log p[y].
            l = -log_p[np.arange(len(y)), y]
        c = self._class_factor(y, output.dtype)
        return l if c is None else c * l

    def grad(self, output, y):
        g = np.exp(log_softmax(output)) - self._target(output, y)
        c = self._class_factor(y, output.dtype)
        return g if c is None else c[:, None] * g

    def value_and_grad(self, output, y, sample_weight=None):
        # per_sample and grad from one log-softmax, y checked once (a minibatch of 32 spent ~60 us on the two calls)
        output = self._output(output)
        y = self._y(output, y)
        scale = self._scale(output, sample_weight)
        log_p = log_softmax(output)
        target = self._target(output, y)
        l = -np.sum(target * log_p, axis=1) if self.label_smoothing else -log_p[np.arange(len(y)), y]
        g = np.exp(log_p) - target
        c = self._class_factor(y, output.dtype)
        if c is not None:
            l, g = c * l, c[:, None] * g
        return float(np.sum(scale[:, 0] * l)), (g * scale).astype(output.dtype, copy=False)


class Focal(Loss):
    """Sigmoid focal loss from logits, y in {0, 1}. With s = (2y - 1) z, p_t = sigma(s):

    l = sum_k -alpha_t (1 - p_t)^gamma log p_t = sum_k alpha_t sigma(-s)^gamma softplus(-s)

    where alpha_t = alpha for positives and 1 - alpha for negatives (no factor when alpha is None).
    Derivative, using d sigma(-s)/ds = -sigma(-s) sigma(s) and d softplus(-s)/ds = -sigma(-s):

    dl/ds = -alpha_t sigma(-s)^gamma (gamma sigma(s) softplus(-s) + sigma(-s)),   dl/dz = (2y - 1) dl/ds.
    """

    name = "focal"
    output_activation = "sigmoid"

    def __init__(self, gamma: float = 2.0, alpha: float | None = None):
        if not gamma >= 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0.0 < alpha < 1.0:
            raise ValueError(f"focal alpha must be in (0, 1) or None, got {alpha}")
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else float(alpha)

    def params(self):
        return {"gamma": self.gamma, "alpha": self.alpha}

    def _alpha_t(self, y):
        if self.alpha is None:
            return 1.0
        return np.where(y > 0.5, self.alpha, 1.0 - self.alpha)

    def per_sample(self, output, y):
        s = (2.0 * y - 1.0) * output
        return np.sum(self._alpha_t(y) * sigmoid(-s) ** self.gamma * softplus(-s), axis=1)

    def grad(self, output, y):
        sign = 2.0 * y - 1.0
        s = sign * output
        q = sigmoid(-s)  # 1 - p_t
        dlds = -self._alpha_t(y) * q**self.gamma * (self.gamma * sigmoid(s) * softplus(-s) + q)
        return sign * dlds


class Hinge(Loss):
    """l = sum_k max(0, 1 - s t) with t = 2y - 1 for labels y in {0, 1};
    dl/ds = -t where 1 - s t > 0, else 0 (the subgradient 0 at the margin)."""

    name = "hinge"
    output_activation = "sigmoid"  # a monotone map of the score, for ranking metrics; not calibrated

    def per_sample(self, output, y):
        t = 2.0 * y - 1.0
        return np.sum(np.maximum(0.0, 1.0 - output * t), axis=1)

    def grad(self, output, y):
        t = 2.0 * y - 1.0
        return np.where(1.0 - output * t > 0, -t, 0.0)

    def kink_distance(self, output, y):
        return np.abs(1.0 - output * (2.0 * y - 1.0))


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (MSE, MAE, Huber, BCE, CrossEntropy, Focal, Hinge)}


def names() -> list[str]:
    """The loss names ``get`` takes, e.g. ``["mse", ..., "hinge"]``."""
    return list(LOSSES)


def get(name: str | Loss, **params) -> Loss:
    """The loss called ``name``, built with ``params`` (e.g. ``get("ce", label_smoothing=0.1)``)."""
    if isinstance(name, Loss):
        return name
    try:
        cls = LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}") from None
    return build(cls, "loss", name, params)
