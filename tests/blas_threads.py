"""The thread count of the BLAS NumPy's products use, as tests of the BLAS cap read it."""

from __future__ import annotations

import os


def numpy_blas_threads() -> list[int]:
    """Each NumPy BLAS pool's threads (threadpoolctl); empty where threadpoolctl cannot see it (the caller skips).
    Only NumPy's: SciPy may load another BLAS later, which the engine's products do not use."""
    from threadpoolctl import threadpool_info

    return [p["num_threads"] for p in threadpool_info()
            if p.get("user_api") == "blas" and os.sep + "numpy" in p["filepath"]]
