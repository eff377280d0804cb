"""The one NumPy-aware JSON conversion, for model files and for ``--json`` documents alike."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["json_default"]


def json_default(o):
    """``json.dumps(..., default=json_default)``: NumPy scalars and arrays as Python numbers and lists,
    paths as strings; anything else is a TypeError (a bug to fix, not a value to stringify silently)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=str)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
