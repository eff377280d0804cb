"""Peak memory of `mlpcli train` on a wide table, in total and per stage, before and after.

    python benchmarks/bench_memory.py                      # 20,000 rows x 5,000 features (~0.6 GB of CSV)
    python benchmarks/bench_memory.py --rows 4000          # a quicker look
    python benchmarks/bench_memory.py --workdir /tmp/big --keep   # reuse the generated table
    git worktree add /tmp/before <commit> && python benchmarks/bench_memory.py --baseline /tmp/before

Makes a samples x genes CSV (sample_id, patient_id, label, GENE0001..; log-normal values with 4
significant digits, like exported TPM tables) and measures, each in its own subprocess so that the peak
is the child's alone:

  train   python -m mlpcli train FILE --folds 1 --epochs 1     the whole command (maximum RSS)
  stages  the steps of that command run one after the other in one process, with the peak RSS of
          each (the kernel's high-water mark, reset between stages through /proc/self/clear_refs):
          read the table -> validated dataset (X) -> the log1p decision -> hold-out split ->
          preprocessing of the training rows (fit + transform) -> of the validation rows

for this checkout and, with --baseline, another one. Figures are in MiB and as multiples of the feature
matrix in float32 (rows x features x 4 bytes), the issue's yardstick ("about 12 x the data" before, "3-4 x"
the goal). Not a test: the figures depend on the machine and the library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import _measure  # benchmarks/: the script's own folder is first on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
N_CLASSES = 4
BLOCK_ROWS = 500
N_BLOCKS = 4  # distinct blocks of rows, cycled (with unique ids) to make the big file quickly
GOAL_MULTIPLE = 4.0


def make_table(path: str, rows: int, features: int, seed: int = 0) -> None:
    """A labelled samples x genes CSV: sample_id, patient_id (two samples each), label, GENE0001..."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(1.0, 1.0, features)
    blocks = []
    for _ in range(N_BLOCKS):
        cls = rng.integers(0, N_CLASSES, BLOCK_ROWS)
        z = mu + rng.normal(scale=0.7, size=(BLOCK_ROWS, features))
        for c in range(N_CLASSES):
            z[cls == c, c * 10:(c + 1) * 10] += 1.5
        cells = np.char.mod("%.4g", np.exp(z))
        blocks.append([(f"type{c}", ",".join(row)) for c, row in zip(cls, cells)])
    with open(path, "w") as fh:
        fh.write(",".join(["sample_id", "patient_id", "label", *[f"GENE{j + 1:04d}" for j in range(features)]]) + "\n")
        for start in range(0, rows, BLOCK_ROWS):
            block = blocks[(start // BLOCK_ROWS) % N_BLOCKS]
            k = min(BLOCK_ROWS, rows - start)
            fh.write("".join(f"S{start + i:07d},P{(start + i) // 2:07d},{block[i][0]},{block[i][1]}\n"
                             for i in range(k)))


# The stages of `train --folds 1 --epochs 1`, as pipeline.train and crossfit._fit_holdout run them.
STAGES = r"""
import json, os, sys, time
from dataclasses import replace

def peak_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass

from mlpcli import data
from mlpcli.config import TrainOptions, resolve
from mlpcli.model_selection.fitting import preprocess_config, resolve_log1p
from mlpcli.model_selection.splits import holdout
from mlpcli.training import fit
import numpy as np

path = sys.argv[1]
options = TrainOptions(folds=1, epochs=1, hidden=[128])
stages = []
held = {}
def stage(name, fn):
    reset_peak()
    t = time.perf_counter()
    out = fn()
    stages.append({"stage": name, "peak_mb": round(peak_mb()), "rss_after_mb": round(rss_mb()),
                   "seconds": round(time.perf_counter() - t, 2)})
    return out

stages.append({"stage": "imports", "peak_mb": round(peak_mb()), "rss_after_mb": round(rss_mb()), "seconds": 0})
ds, _ = stage("read + validate (Dataset.X)", lambda: data.load_dataset(path, **options.roles()))
log1p, _ = stage("log1p auto (skewness)", lambda: resolve_log1p(options, ds.X))
options = replace(options, log1p=log1p)
def split():
    tr, va, _ = holdout(ds, options.val_size, options.seed)
    return ds.subset(tr), ds.subset(va)
train_ds, val_ds = stage("hold-out split", split)
pre = data.Preprocessor(preprocess_config(options, log1p))
def fit_transform():  # as fitting.fit_run does it (older versions: fit, then transform)
    try:
        return pre.fit_transform(train_ds.X, train_ds.feature_names, dtype=options.dtype, order="C")
    except TypeError:
        pre.fit(train_ds.X, train_ds.feature_names)
        return pre.transform(train_ds.X, dtype=options.dtype)
X_train = stage("preprocess training rows", fit_transform)
def transform_val():
    try:
        return pre.transform(val_ds.X, dtype=options.dtype, order="C")
    except TypeError:
        return pre.transform(val_ds.X, dtype=options.dtype)
X_val = stage("preprocess validation rows", transform_val)
print(json.dumps({"stages": stages, "n": ds.n_samples, "d": ds.n_features, "X_dtype": str(ds.X.dtype)}))
"""


def measure(cmd: list[str], root: str = ROOT) -> dict:
    return _measure.measure(cmd, root)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--features", type=int, default=5_000)
    ap.add_argument("--workdir", default=None, help="Where to write the table (reused when it is there already).")
    ap.add_argument("--keep", action="store_true", help="Keep the generated table.")
    ap.add_argument("--skip-stages", action="store_true", help="Only the whole train command.")
    ap.add_argument("--json-out", default=None, help="Also write the figures as JSON here.")
    ap.add_argument("--baseline", default=None, metavar="DIR",
                    help="Another mlpcli checkout (e.g. a git worktree of an older commit) measured the same way, "
                         "for a before/after table.")
    args = ap.parse_args(argv)

    workdir = args.workdir or tempfile.mkdtemp(prefix="mlpcli-bench-memory-")
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, f"train_{args.rows}x{args.features}.csv")
    roots = {"this checkout": ROOT, **({"baseline": os.path.abspath(args.baseline)} if args.baseline else {})}
    results = {}
    try:
        if not os.path.exists(path):
            t = time.perf_counter()
            make_table(path + ".part", args.rows, args.features)
            os.replace(path + ".part", path)
            print(f"wrote {path} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        csv_mb = os.path.getsize(path) / 2**20  # before the table is removed with its folder
        for label, root in roots.items():
            train = measure([sys.executable, "-m", "mlpcli", "train", path, "--folds", "1", "--epochs", "1", "-q",
                             "-o", os.path.join(workdir, "model.mlp")], root)
            stages = None if args.skip_stages else json.loads(measure([sys.executable, "-c", STAGES, path], root)["stdout"])
            results[label] = (train, stages)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    data_mb = args.rows * args.features * 4 / 2**20
    print(f"{args.rows:,} rows x {args.features:,} features: {csv_mb:,.0f} MiB of CSV, "
          f"{data_mb:,.0f} MiB as float32 (the yardstick: x = peak / that)")
    report = {"rows": args.rows, "features": args.features, "csv_mib": round(csv_mb), "float32_mib": round(data_mb),
              "goal_multiple": GOAL_MULTIPLE}
    for label, (train, stages) in results.items():
        print(f"\n{label} ({roots[label]}):")
        print(f"  {'train --folds 1 --epochs 1':<32} peak {train['peak_mb']:>7,.0f} MiB  "
              f"{train['peak_mb'] / data_mb:4.1f} x  {train['wall_s']:6.1f} s")
        if stages:
            print(f"  stages, one process (X is {stages['X_dtype']}); peak of each:")
            for s in stages["stages"]:
                print(f"    {s['stage']:<30} peak {s['peak_mb']:>7,} MiB  {s['peak_mb'] / data_mb:4.1f} x  "
                      f"after {s['rss_after_mb']:>7,} MiB  {s['seconds']:6.1f} s")
        report[label] = {"root": roots[label],
                         "train": {"peak_mb": round(train["peak_mb"]), "multiple": round(train["peak_mb"] / data_mb, 2),
                                   "seconds": round(train["wall_s"], 1),
                                   "goal_met": train["peak_mb"] / data_mb <= GOAL_MULTIPLE},
                         "stages": stages["stages"] if stages else None}
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
