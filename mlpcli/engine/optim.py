"""Optimizers, weight penalties and gradient clipping.

Optimizers are tiny classes with explicit state and one ``step(params, grads)`` that updates the
parameter arrays in place. ``params`` and ``grads`` are dicts of arrays with the same keys: either
``MLP.parameters()`` / the dict from ``MLP.backward``, or the two flat groups of
``MLP.parameter_groups()`` (``W``: all weights, ``rest``: biases and BatchNorm parameters), which
makes a step a handful of vectorised operations for the whole network. State arrays are allocated
on the first step and reused, so a step allocates nothing parameter-sized afterwards.
"""

from __future__ import annotations

import math

from abc import ABC, abstractmethod

import numpy as np

from .functional import build
from .network import is_weight_key

__all__ = ["SGD", "Adam", "AdamW", "WeightPenalty", "clip_grad_norm", "get", "OPTIMIZERS"]


# Elementwise updates run over blocks of this many entries so that the dozen NumPy passes of
# an update read each block from cache rather than main memory (an unblocked Adam step over
# a few million parameters is memory-bound and costs as much as the matrix multiplies).
# 512 KiB per array keeps the four operands of a block in a typical 2 MiB L2 cache (measured on
# a 2.7M-parameter network: 11.4 ms per unblocked step, 5.7 ms blocked; 2 KiB blocks cost more
# in Python overhead than they save).
CHUNK_BYTES = 512 * 1024
# A fused path was measured and not kept (issue 17): numexpr, evaluating the three update expressions (m, v,
# then the parameters) in one compiled, blocked, multi-threaded pass each, took 0.89 s for the 63 Adam steps
# of a workload-A epoch (2.7M float32 parameters) on one thread and 0.50 s on two, against 0.27 s for the
# blocked NumPy passes here, side by side in one process (benchmarks/bench_train.py reports both: "Adam
# steps of an epoch"). Its virtual machine runs scalar loops over 4,096-entry chunks, where NumPy's
# float32 multiply, add, sqrt and divide are SIMD loops over cache-resident blocks. Block sizes of 32 KiB
# to 1 MiB per array changed the NumPy path by less than the noise (0.41-0.60 s on a busy machine).


def _blocks(size: int, itemsize: int):
    chunk = max(1024, CHUNK_BYTES // itemsize)
    for start in range(0, size, chunk):
        yield slice(start, min(start + chunk, size))


class Optimizer(ABC):
    name = ""

    def __init__(self, lr: float):
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        self.lr = float(lr)
        self.t = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    def _slot(self, key: str, name: str, like: np.ndarray) -> np.ndarray:
        slots = self.state.setdefault(key, {})
        if name not in slots:
            slots[name] = np.zeros_like(like)
        return slots[name]

    def _block_tmp(self, key: str, p: np.ndarray) -> np.ndarray:
        """A block-sized scratch array, allocated once per parameter array."""
        return self._slot(key, "tmp", p.reshape(-1)[: max(1024, CHUNK_BYTES // p.itemsize)])

    @abstractmethod
    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update every array of ``params`` in place from ``grads`` (same keys)."""


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, in PyTorch's form:

    v <- mu v + g;   theta <- theta - lr (g + mu v) with Nesterov, theta <- theta - lr v without.
    With mu = 0 this is the notes' theta <- theta - eta grad.
    """

    name = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def step(self, params, grads):
        self.t += 1
        mu, lr = self.momentum, self.lr
        for key, p in params.items():
            tmp = self._block_tmp(key, p)
            pf, gf = p.reshape(-1), grads[key].reshape(-1)
            vf = self._slot(key, "v", p).reshape(-1) if mu else None
            for blk in _blocks(pf.size, pf.itemsize):
                pb, gb, t = pf[blk], gf[blk], tmp[: blk.stop - blk.start]
                if vf is None:
                    np.multiply(gb, lr, out=t)
                else:
                    vb = vf[blk]
                    vb *= mu
                    vb += gb
                    if self.nesterov:
                        np.multiply(vb, mu, out=t)
                        t += gb
                    else:
                        np.copyto(t, vb)
                    t *= lr
                pb -= t


class Adam(Optimizer):
    """Adam (Kingma & Ba), updated in place:

    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2;   theta <- theta - lr m^ / (sqrt(v^) + eps)

    with m^ = m / (1 - b1^t), v^ = v / (1 - b2^t). The state is kept rescaled, m' = m / (1 - b1)
    and v' = v / (1 - b2), so each moment update is one multiply and one add, and every constant
    (bias corrections, lr, the rescaling) folds into two scalars:

    theta <- theta - c m' / (sqrt(v') + eps'),
    c = lr (1 - b1) / (1 - b1^t) * sqrt((1 - b2^t) / (1 - b2)),   eps' = eps sqrt((1 - b2^t) / (1 - b2))

    which equals the textbook update exactly (up to rounding).
    """

    name = "adam"
    decoupled_decay = False

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(lr)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {beta1}, {beta2}")
        if not eps > 0 or weight_decay < 0:
            raise ValueError("eps must be > 0 and weight_decay >= 0")
        self.beta1, self.beta2, self.eps, self.weight_decay = float(beta1), float(beta2), float(eps), float(weight_decay)

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        root = math.sqrt((1.0 - b2**self.t) / (1.0 - b2))
        c = self.lr * (1.0 - b1) / (1.0 - b1**self.t) * root
        eps_t = self.eps * root
        for key, p in params.items():
            g = grads[key]
            m, v = self._slot(key, "m", p), self._slot(key, "v", p)
            tmp = self._block_tmp(key, p)
            decay = 1.0 - self.lr * self.weight_decay if self.decoupled_decay and self.weight_decay and is_weight_key(key) else None
            pf, gf, mf, vf = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
            for blk in _blocks(pf.size, pf.itemsize):
                pb, gb, mb, vb = pf[blk], gf[blk], mf[blk], vf[blk]
                t = tmp[: pb.size]
                if decay is not None:
                    pb *= decay  # AdamW: decay the weights directly, not through m and v
                mb *= b1
                mb += gb
                np.multiply(gb, gb, out=t)
                vb *= b2
                vb += t
                np.sqrt(vb, out=t)
                t += eps_t
                np.divide(mb, t, out=t)
                t *= c
                pb -= t


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): before each Adam step the Dense
    weights shrink by a factor (1 - lr * weight_decay); biases and BatchNorm parameters do not."""

    name = "adamw"
    decoupled_decay = True

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(lr, beta1, beta2, eps, weight_decay)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW)}


def get(name: str, **params) -> Optimizer:
    try:
        cls = OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}") from None
    return build(cls, "optimizer", name, params)


class WeightPenalty:
    """L1 and L2 penalties on the Dense weights (never biases or BatchNorm parameters), added to
    the objective as in the notes:

    R = l1 sum |w| + l2 sum w^2,    dR/dw = l1 sign(w) + 2 l2 w   (subgradient 0 at w = 0).
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        if l1 < 0 or l2 < 0:
            raise ValueError(f"l1 and l2 must be >= 0, got {l1}, {l2}")
        self.l1, self.l2 = float(l1), float(l2)

    @property
    def active(self) -> bool:
        return self.l1 > 0 or self.l2 > 0

    def value(self, params: dict[str, np.ndarray]) -> float:
        total = 0.0
        for key, w in params.items():
            if is_weight_key(key):
                if self.l1:
                    total += self.l1 * float(np.abs(w).sum())
                if self.l2:
                    total += self.l2 * float(np.vdot(w, w))
        return total

    def add_grad(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """grads[key] += dR/dw for every weight key, in place, block by block (no parameter-sized
        temporaries: this runs every training step)."""
        for key, w in params.items():
            if not is_weight_key(key):
                continue
            wf, gf = w.reshape(-1), grads[key].reshape(-1)
            tmp = np.empty(min(wf.size, max(1024, CHUNK_BYTES // wf.itemsize)), dtype=wf.dtype)
            for blk in _blocks(wf.size, wf.itemsize):
                wb, gb, t = wf[blk], gf[blk], tmp[: blk.stop - blk.start]
                if self.l1:
                    np.sign(wb, out=t)
                    t *= self.l1
                    gb += t
                if self.l2:
                    np.multiply(wb, 2.0 * self.l2, out=t)
                    gb += t


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``; returns the
    norm before clipping."""
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    if norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= scale
    return norm
