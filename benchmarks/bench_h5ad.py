"""Peak memory and time of `mlpcli train` and `mlpcli predict` on sparse AnnData (.h5ad) counts.

    python benchmarks/bench_h5ad.py                        # 200,000 cells x 2,000 genes, 10 % non-zero
    python benchmarks/bench_h5ad.py --cells 50000          # a quicker look
    python benchmarks/bench_h5ad.py --workdir /tmp/h5 --keep   # reuse the generated files

Writes sparse raw counts (CSR float32 in .X; obs cell_type (5 types, each with 20 marker genes),
donor_id (100 donors) and batch) at the largest size, at half and at a quarter of it, then measures in
separate processes (peak RSS = the command's own maximum resident set size):

  train     mlpcli train FILE --target cell_type --epochs 2 --folds 1      (the issue's bar: < 6 GB)
  predict   mlpcli predict MODEL FILE -o predictions.csv                   at the three sizes (bar: < 1 GB,
            whatever the number of cells: the peak should not grow with them)
  predict   mlpcli predict MODEL FILE -o annotated.h5ad                     (the copy with .obs columns)

The table gives MiB, seconds, and the sparse matrix's size on disk / in memory (data + indices + indptr).
Not a test: the figures depend on the machine and the library versions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

import _measure  # benchmarks/: the script's own folder is first on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
N_TYPES = 5
N_MARKERS = 20
BLOCK = 10_000


def make_counts(n_cells: int, n_genes: int, density: float, seed: int = 0):
    """(CSR float32 counts (n_cells, n_genes), cell types (n_cells,)): non-zero positions uniform at
    `density`, values 1 + Poisson(rate), the rate 6 instead of 1 on a cell type's marker genes."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    rate = np.ones((N_TYPES, n_genes))
    for t in range(N_TYPES):
        rate[t, rng.choice(n_genes, N_MARKERS, replace=False)] = 6.0
    types = rng.integers(0, N_TYPES, size=n_cells)
    blocks = []
    for start in range(0, n_cells, BLOCK):
        rows = min(BLOCK, n_cells - start)
        block = sp.random(rows, n_genes, density=density, format="csr", dtype=np.float32, random_state=rng)
        r = np.repeat(np.arange(rows), np.diff(block.indptr))
        block.data = (1 + rng.poisson(rate[types[start + r], block.indices])).astype(np.float32)
        blocks.append(block)
    return sp.vstack(blocks, format="csr"), types


def write_h5ad(X, types, path: str, seed: int = 0) -> None:
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed + 1)
    n = X.shape[0]
    donors = rng.integers(0, 100, size=n)
    obs = pd.DataFrame({"cell_type": pd.Categorical([f"type{t}" for t in types]),
                        "donor_id": pd.Categorical([f"D{d:03d}" for d in donors]),
                        "batch": pd.Categorical([f"run{d % 4}" for d in donors])},
                       index=[f"cell{i:07d}" for i in range(n)])
    var = pd.DataFrame(index=[f"ENSG{j:011d}" for j in range(X.shape[1])])
    ad.AnnData(X=X, obs=obs, var=var).write_h5ad(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--density", type=float, default=0.10)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="mlpcli-bench-h5ad-")
    os.makedirs(work, exist_ok=True)
    sizes = (args.cells // 4, args.cells // 2, args.cells)
    paths = {n: os.path.join(work, f"cells_{n}.h5ad") for n in sizes}
    big = paths[args.cells]
    if not all(os.path.exists(p) for p in paths.values()):
        X, types = make_counts(args.cells, args.genes, args.density)
        for n, path in paths.items():
            write_h5ad(X[:n], types[:n], path)
        nbytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
        del X
    else:
        nbytes = None
    disk_mb = os.path.getsize(big) / 2**20
    model = os.path.join(work, "cells.mlp")
    mlpcli = [sys.executable, "-m", "mlpcli"]
    rows = []
    try:
        res = _measure.measure([*mlpcli, "train", big, "--target", "cell_type", "--epochs", "2", "--folds", "1",
                                "-o", model, "--quiet"], ROOT)
        rows.append(("train --epochs 2 --folds 1", args.cells, res))
        for n, path in paths.items():
            res = _measure.measure([*mlpcli, "predict", model, path, "-o", os.path.join(work, "p.csv"), "--quiet"],
                                   ROOT)
            rows.append(("predict -o predictions.csv", n, res))
        res = _measure.measure([*mlpcli, "predict", model, big, "-o", os.path.join(work, "annotated.h5ad"),
                                "--quiet"], ROOT)
        rows.append(("predict -o annotated.h5ad", args.cells, res))
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"sparse counts: {args.cells:,} cells x {args.genes:,} genes, {args.density:.0%} non-zero"
          + (f", {nbytes / 2**20:,.0f} MiB as CSR float32" if nbytes else "") + f", {disk_mb:,.0f} MiB on disk")
    print(f"{'command':<30} {'cells':>9} {'peak MiB':>9} {'wall s':>8} {'cpu s':>8}")
    for name, n, res in rows:
        print(f"{name:<30} {n:>9,} {res['peak_mb']:>9,.0f} {res['wall_s']:>8.1f} {res['cpu_s']:>8.1f}")


if __name__ == "__main__":
    main()
