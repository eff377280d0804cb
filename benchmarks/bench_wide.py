"""Wide text tables: `mlpcli train` and `predict` on CSVs of 5,000, 20,000 and 50,000 genes.

    python benchmarks/bench_wide.py                          # 200 samples x 5,000 / 20,000 / 50,000 genes
    python benchmarks/bench_wide.py --rows 100 --genes 20000 # one size
    python benchmarks/bench_wide.py --baseline /tmp/before   # another checkout, alternating with this one

Expression tables reach 60,000 genes (every Ensembl gene), so a CSV's lines are hundreds of kilobytes
and any step that is quadratic in the number of columns costs minutes. Each size is a CSV of `rows`
samples (a label column, then genes of normal values written with 4 digits), generated once into a
temporary directory. Timed, each command in a fresh process (wall seconds and peak MiB, the fastest of
--repeat runs): `train --folds 1 --epochs 1 --hidden ''` (reading, validation, preprocessing, one
epoch of softmax regression, the model's checks) and `predict` with that model. `pandas.read_csv` of the
file is the yardstick. Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from _measure import measure  # noqa: E402


def make_table(path: Path, rows: int, genes: int) -> None:
    rng = np.random.default_rng(genes)
    frame = pd.DataFrame(rng.normal(size=(rows, genes)).astype(np.float32), columns=[f"ENSG{j:011d}" for j in range(genes)])
    frame.insert(0, "label", rng.choice(["A", "B", "C"], rows))
    frame.to_csv(path, index=False, float_format="%.4g")


def read_seconds(path: Path) -> float:
    start = time.perf_counter()
    pd.read_csv(path)
    return time.perf_counter() - start


def run_size(path: Path, roots: dict[str, str], repeat: int) -> dict[str, dict[str, float]]:
    best: dict[str, dict[str, float]] = {name: {} for name in roots}
    for _ in range(repeat):
        for name, root in roots.items():  # alternating, so that load on the machine hits every checkout alike
            with tempfile.TemporaryDirectory() as tmp:
                model = os.path.join(tmp, "m.mlp")
                steps = {
                    "train": ["train", str(path), "--target", "label", "--no-group", "--folds", "1", "--epochs", "1",
                              "--hidden", "", "-q", "-o", model],
                    "predict": ["predict", model, str(path), "-q", "-o", os.path.join(tmp, "p.csv")],
                }
                for step, args in steps.items():
                    res = measure([sys.executable, "-m", "mlpcli", *args], root)
                    for key, value in ((f"{step}_s", res["wall_s"]), (f"{step}_mb", res["peak_mb"])):
                        best[name][key] = min(best[name].get(key, float("inf")), value)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--genes", default="5000,20000,50000", help="comma-separated widths")
    ap.add_argument("--repeat", type=int, default=1, help="runs per command; the fastest counts")
    ap.add_argument("--baseline", default=None, help="another checkout of mlpcli, measured the same way")
    args = ap.parse_args(argv)
    roots = {"this": str(ROOT)}
    if args.baseline:
        roots = {"baseline": os.path.abspath(args.baseline), **roots}
    print(f"{'genes':>7} {'rows':>5} {'MB':>6} {'read_csv s':>10} {'checkout':>9} {'train s':>8} {'train MiB':>9} "
          f"{'predict s':>9} {'predict MiB':>11}")
    with tempfile.TemporaryDirectory() as work:
        for genes in (int(g) for g in args.genes.split(",")):
            path = Path(work) / f"wide_{genes}.csv"
            make_table(path, args.rows, genes)
            read = read_seconds(path)
            for name, r in run_size(path, roots, args.repeat).items():
                print(f"{genes:>7} {args.rows:>5} {path.stat().st_size / 1e6:>6.0f} {read:>10.2f} {name:>9} "
                      f"{r['train_s']:>8.2f} {r['train_mb']:>9.0f} {r['predict_s']:>9.2f} {r['predict_mb']:>11.0f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
