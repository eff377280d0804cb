"""Numerically stable building blocks shared by activations, losses and prediction.

Each stays finite for |z| up to 1e3 in float32 and float64: no ``exp`` of a large positive number
is ever taken.
"""

from __future__ import annotations

import inspect

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """sigma(z) = 1 / (1 + e^-z), computed from e^-|z| so exp never overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + e^z) = max(z, 0) + log1p(e^-|z|)."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log softmax over the last axis via log-sum-exp with the max shifted out."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, invariant to adding a constant to a row."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def build(cls: type, kind: str, name: str, params: dict):
    """``cls(**params)``, turning an unknown keyword into a ValueError that lists the valid ones."""
    valid = [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"invalid parameter(s) {', '.join(unknown)} for {kind} {name!r}; valid: {', '.join(valid) or 'none'}"
        )
    return cls(**params)
