"""A sparse matrix as a file stores it: three arrays (CSR or CSC), checked before scipy is given them.

    indptr (n_major + 1,)   where each row's (CSR; column's, CSC) entries start in the two arrays below
    indices (nnz,)          each entry's column (CSR; row, CSC)
    data (nnz,)             each entry's value

scipy's constructors check only the arrays' lengths: a damaged file (a few bytes overwritten, a writer that
stopped, another tool's bug) whose index pointer decreases or does not start at 0, or whose indices point past
the matrix, became a matrix that silently dropped or moved values — predictions that were wrong with exit 0 —
or an error from deep in scipy that named neither file nor matrix. These checks say what is wrong, in words a
message can carry (``"its index pointer decreases at row 101"``); the caller names the file.
"""

from __future__ import annotations

import numpy as np

__all__ = ["structure_problem", "index_problem", "signed_index", "sparse_values"]


def structure_problem(indptr: np.ndarray, n_indices: int, n_data: int, n_major: int, major: str = "row"
                      ) -> str | None:
    """What is wrong with a compressed matrix's index pointer `indptr` (n_major + 1,) given the lengths of its
    indices and data arrays, or None. `major`: what one pointer step spans ("row" for CSR, "column" for CSC).
    O(n_major): the pointer alone is read, not the entries."""
    if indptr.ndim != 1 or indptr.dtype.kind not in "iu":
        return f"its index pointer is not a list of integers (dtype {indptr.dtype}, {indptr.ndim} dimensions)"
    if n_indices != n_data:
        return f"it stores {n_data:,} values but {n_indices:,} {'column' if major == 'row' else 'row'} indices"
    if indptr.shape[0] != n_major + 1:
        return f"its index pointer has {indptr.shape[0]:,} entries for {n_major:,} {major}s (expected {n_major + 1:,})"
    if indptr[0] != 0:
        return f"its index pointer starts at {int(indptr[0]):,}, not 0"
    if int(indptr[-1]) != n_data:
        return f"its index pointer ends at {int(indptr[-1]):,}, but it stores {n_data:,} values"
    # unsigned pointers first as signed: a wrapped-around garbage value reads as a decrease, not as a huge step
    steps = np.diff(signed_index(indptr))
    down = np.flatnonzero(steps < 0)
    if down.size:
        return f"its index pointer decreases at {major} {down[0] + 1:,}"
    return None


def index_problem(indices: np.ndarray, n_minor: int, minor: str = "column") -> str | None:
    """What is wrong with a compressed matrix's `indices` (nnz,) (or a part of them) for a matrix of `n_minor`
    columns (CSR; rows, CSC), or None."""
    if indices.dtype.kind not in "iu":
        return f"its {minor} indices are not integers (dtype {indices.dtype})"
    if not indices.size:
        return None
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= n_minor:
        return f"a {minor} index ({low if low < 0 else high:,}) lies outside its {n_minor:,} {minor}s"
    return None


def signed_index(a: np.ndarray) -> np.ndarray:
    """Index array `a` with a signed dtype, as scipy's sparse matrices need (unsigned ones, which some writers
    use, make scipy warn and then fail): unsigned ones as int64 (a copy), others as they are."""
    return a.astype(np.int64) if a.dtype.kind == "u" else a


def sparse_values(data: np.ndarray) -> np.ndarray:
    """A compressed matrix's stored values as scipy takes them: float16 (which scipy.sparse refuses) as float32,
    exactly; others as they are."""
    return data.astype(np.float32) if data.dtype == np.float16 else data
