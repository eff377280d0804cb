"""Scratch arrays reused from one training step to the next.

A training step of an MLP needs the same arrays every time: each layer's output, the gradient it
passes back, a dropout mask, the gathered minibatch. Allocating them afresh each step costs a
trip through the allocator and, for large batches, fresh pages; a ``Workspace`` hands back the
same memory instead. The last, smaller minibatch of an epoch gets a leading view of the buffer
(a C-contiguous view, so BLAS and the ufuncs see an ordinary array).

What a workspace returns is overwritten the next time the same name is requested: whoever keeps a
result across steps must copy it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Workspace"]


class Workspace:
    """Named, uninitialised arrays, allocated on first request and reused afterwards."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An array of ``shape`` and ``dtype``; reallocated only when more rows, other trailing
        dimensions or another dtype are asked for."""
        dtype = np.dtype(dtype)
        buf = self._arrays.get(name)
        if buf is None or buf.dtype != dtype or buf.shape[1:] != tuple(shape[1:]) or buf.shape[0] < shape[0]:
            buf = self._arrays[name] = np.empty(shape, dtype=dtype)
        return buf[: shape[0]]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())

    def clear(self) -> None:
        self._arrays.clear()

    # Scratch is not state: copies and pickles of a layer or network start with an empty workspace.
    def __getstate__(self) -> dict:
        return {"_arrays": {}}

    def __deepcopy__(self, memo) -> "Workspace":
        return Workspace()
