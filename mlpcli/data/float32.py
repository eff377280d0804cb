"""Which numbers a float32 array holds exactly: the readers keep a feature matrix float32 when it loses nothing."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def exact_in_float32(values: np.ndarray) -> bool:
    """Whether every value of `values` (any numeric array) is a float32 number exactly (NaN included), so that
    a float32 copy holds the same numbers in half the memory: counts below 2**24, values read from float32
    storage. A value beyond float32's range is not (it would become infinite)."""
    return as_float32_if_exact(values) is not None


def as_float32_if_exact(values: np.ndarray) -> np.ndarray | None:
    """`values` as float32 when that holds the same numbers (``exact_in_float32``), else None."""
    if values.dtype in _EXACT_IN_FLOAT32:
        return values.astype(np.float32, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):
        narrow = values.astype(np.float32)
        if values.dtype.kind != "f":
            return narrow if np.array_equal(narrow, values) else None
        differ = narrow != values  # NaN is unequal to itself: a NaN is exact when the value is NaN
        first = int(np.argmax(differ))  # most tables that are not float32 differ at once: no mask copy then
        if differ.flat[first] and (not np.isnan(values.flat[first]) or not np.isnan(values[differ]).all()):
            return None
    return narrow


# dtypes whose every value is a float32 number
_EXACT_IN_FLOAT32 = frozenset(np.dtype(t) for t in (np.float32, np.float16, np.int8, np.int16, np.uint8, np.uint16, np.bool_))


def exact_dtypes(dtypes) -> bool:
    """Whether columns of these (NumPy or pandas) dtypes hold float32 numbers only, told from the dtypes."""
    return all(isinstance(t, np.dtype) and t in _EXACT_IN_FLOAT32 for t in dtypes)


def feature_dtype(blocks: Sequence[np.ndarray]) -> type:
    """The dtype of a feature matrix made of `blocks` (parts of its values): float32 when every value is a
    float32 number (``exact_in_float32``), else float64. The network is float32; a float32 matrix holds
    the same numbers as a float64 one would, and the preprocessing computes in float64 from either, so the
    model is the same (see ``Dataset``)."""
    return np.float32 if all(exact_in_float32(b) for b in blocks) else np.float64
