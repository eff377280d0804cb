"""Where more BLAS threads stop paying: seconds per training epoch, and seconds per 10,000 predicted rows,
for a few network sizes at 1 and 2 (or --threads) BLAS threads. This is the measurement behind the one
thread rule of every command (``mlpcli.parallel.default_blas_threads``).

    python benchmarks/bench_threads.py                     # the table, JSON in benchmarks/results/
    python benchmarks/bench_threads.py --threads 1,2,4 --repeat 5

Each (network, threads) pair runs in its own subprocess (threadpoolctl caps the BLAS threads before the
first product), on the sample data's shape: 600 samples x 2,000 features, 4 classes, float32, Adam,
batch 32. An epoch time is the median of 3 epochs after a warm-up; each figure is the fastest of
--repeat runs (the least disturbed by other work on a shared machine). "predict" is the forward pass
alone on blocks of 1,024 rows, as `mlpcli predict` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NETWORKS = {"2000-64": [64], "2000-128-64": [128, 64], "2000-512-256": [512, 256], "2000-1024-512": [1024, 512]}
N, D, K, BATCH, EPOCHS = 600, 2000, 4, 32, 3
PREDICT_ROWS, BLOCK = 10_240, 1024


def one(hidden: list[int], threads: int) -> dict:
    """In a fresh process: (seconds per epoch, seconds per 10,000 predicted rows) at `threads` BLAS threads."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        from mlpcli.engine import MLP, losses, optim
        from mlpcli.training import run_epoch

        rng = np.random.default_rng(0)
        X = rng.standard_normal((N, D), dtype=np.float32)
        y = rng.integers(0, K, N)
        net = MLP(D, hidden, K, activation="relu", seed=0, dtype="float32")
        loss, opt = losses.get("ce"), optim.Adam(lr=1e-3)
        times = []
        for _ in range(EPOCHS + 1):
            t = time.perf_counter()
            run_epoch(net, loss, X, y, opt, BATCH, rng)
            times.append(time.perf_counter() - t)
        Xp = rng.standard_normal((PREDICT_ROWS, D), dtype=np.float32)
        net.forward(Xp[:BLOCK])  # warm-up
        t = time.perf_counter()
        for s in range(0, PREDICT_ROWS, BLOCK):
            net.forward(Xp[s:s + BLOCK])
        predict = (time.perf_counter() - t) * 10_000 / PREDICT_ROWS
    return {"epoch_s": statistics.median(times[1:]), "predict_s": predict}


def measure(name: str, threads: int, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, __file__, "--one", name, "--threads", str(threads)],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    return {"epoch_s": min(r["epoch_s"] for r in runs), "predict_s": min(r["predict_s"] for r in runs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated BLAS thread counts")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the fastest is reported")
    ap.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated names of " + ", ".join(NETWORKS))
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(NETWORKS[args.one], int(args.threads))))
        return
    from mlpcli.resources import usable_cores

    counts = [int(t) for t in args.threads.split(",")]
    names = args.networks.split(",")
    results = {n: {t: measure(n, t, args.repeat) for t in counts} for n in names}
    print(f"{N} samples x {D} features, float32, batch {BATCH}; fastest of {args.repeat}; "
          f"usable cores {usable_cores()}, load average {os.getloadavg()[0]:.1f}")
    head = " | ".join(f"epoch s ({t} thr)" for t in counts) + " | " + \
        " | ".join(f"predict s/10k rows ({t} thr)" for t in counts)
    print(f"| network | {head} |")
    print("|---" * (1 + 2 * len(counts)) + "|")
    for n in names:
        r = results[n]
        cells = [f"{r[t]['epoch_s']:.3f}" for t in counts] + [f"{r[t]['predict_s']:.3f}" for t in counts]
        print(f"| {n} | " + " | ".join(cells) + " |")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_threads.json").write_text(json.dumps(
        {"shape": {"n": N, "d": D, "k": K, "batch": BATCH}, "repeat": args.repeat,
         "usable_cores": usable_cores(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
