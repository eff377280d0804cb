"""Synthetic omics-like tables of known shape: where a default helps or hurts away from the real sets.

    python benchmarks/bench_synthetic.py                                 # every table, seeds 0 and 1, mlpcli + logreg
    python benchmarks/bench_synthetic.py --tables tiny,sc --seeds 0
    python benchmarks/bench_synthetic.py --mlpcli "lin:hidden=" --mlpcli "slow:hidden=,lr=0.001" --models mlpcli

The real sets of ``bench_accuracy.py`` are few and small; a change to a default (a learning rate, a scaling) can
help them and hurt a shape they do not have. Each table here is drawn from a fixed generator and seed:

  tiny      40 x 2,000 Gaussian, 4 classes, 60 informative features (p >> n, a pilot cohort)
  small     150 x 1,000 Gaussian, 2 classes, 30 informative, correlated background (10 latent factors)
  batches   300 x 500 Gaussian, 3 classes, 20 informative, 30 groups with their own offsets (grouped folds)
  classes20 1,000 x 1,000 Gaussian, 20 classes of 1-5 % to 9 %, 100 informative
  cells     2,000 x 2,000 negative-binomial counts, 8 cell types of 3-30 %, 40 marker genes each, 10 donors
  weak      500 x 5,000 negative-binomial counts, 3 classes, 50 weak markers (fold change 1.6)
  xor       400 x 300 Gaussian, 4 classes from an XOR of two features and a sum of two others (non-linear)
  marker    400 x 200 Gaussian, 2 classes told apart by one gene alone (class means -2 / +2: bimodal)
  markers   120 x 3,000 Gaussian, 4 classes, each marked by one gene up 4 SD in it (cell-type markers, p >> n)

Each is cross-validated as ``bench_accuracy.run_benchmark`` does (stratified, grouped where the table has groups,
``--folds`` folds, one BLAS thread per fit): balanced accuracy and log loss are means over folds, one row per table,
seed and model. Not a test: the figures depend on the generator, and seconds on the machine's load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import bench_accuracy as ba  # noqa: E402  (puts this checkout first on sys.path)


def _labels(rng: np.random.Generator, n: int, shares) -> np.ndarray:
    shares = np.asarray(shares, dtype=np.float64)
    return rng.choice(len(shares), size=n, p=shares / shares.sum())


def gaussian(rng, n: int, p: int, k: int, informative: int, effect: float, shares=None, groups: int = 0,
             latent: float = 0.0):
    """(n, p) N(0, 1) noise plus class means (N(0, effect) on ``informative`` features), an optional shared
    low-rank background of 10 factors scaled by ``latent``, and optional per-group offsets N(0, 0.5)."""
    y = _labels(rng, n, shares if shares is not None else np.ones(k))
    means = np.zeros((k, p))
    idx = rng.choice(p, informative, replace=False)
    means[:, idx] = rng.normal(0, effect, size=(k, informative))
    background = rng.normal(size=(n, 10)) @ rng.normal(size=(10, p)) * latent
    X = means[y] + rng.normal(size=(n, p)) + background
    g = None
    if groups:
        g = rng.integers(0, groups, size=n)
        X += rng.normal(0, 0.5, size=(groups, p))[g]
    return X, y, g


def counts(rng, n: int, p: int, k: int, markers: int, fold_change: float, shares, depth: float = 2000,
           groups: int = 0):
    """(n, p) negative-binomial counts (dispersion 2): gamma-distributed gene means, ``markers`` genes per class
    with log fold changes N(0, log fold_change), library sizes log-normal around ``depth``; optional donors."""
    y = _labels(rng, n, shares)
    base = rng.gamma(0.6, 1.0, size=p)
    base /= base.sum()
    logfc = np.zeros((k, p))
    for c in range(k):
        idx = rng.choice(p, markers, replace=False)
        logfc[c, idx] = rng.normal(0, np.log(fold_change), size=markers)
    rates = base * np.exp(logfc[y])
    rates /= rates.sum(axis=1, keepdims=True)
    mu = rates * rng.lognormal(np.log(depth), 0.4, size=n)[:, None]
    X = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(np.float64)
    g = rng.integers(0, groups, size=n) if groups else None
    return X, y, g


def xor(rng, n: int, p: int):
    X = rng.normal(size=(n, p))
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(int) + 2 * (X[:, 2] + X[:, 3] > 0.5)
    return X, y, None


def markers(rng, n: int, p: int, k: int, effect: float, two_sided: bool = False):
    """(n, p) N(0, 1) noise; gene c up by ``effect`` in class c alone (one marker per class), or with two classes
    and ``two_sided``, gene 0 at -effect / 2 and +effect / 2: the signal sits in a few bimodal genes."""
    y = _labels(rng, n, np.ones(k))
    X = rng.normal(size=(n, p))
    if two_sided:
        X[:, 0] += effect * (y - 0.5)
    else:
        X[np.arange(n), y] += effect
    return X, y, None


TABLES: dict[str, Callable] = {
    "tiny": lambda r: gaussian(r, 40, 2000, 4, 60, 0.6),
    "small": lambda r: gaussian(r, 150, 1000, 2, 30, 0.5, latent=0.3),
    "batches": lambda r: gaussian(r, 300, 500, 3, 20, 0.4, groups=30),
    "classes20": lambda r: gaussian(r, 1000, 1000, 20, 100, 0.45, shares=np.linspace(1, 5, 20)),
    "cells": lambda r: counts(r, 2000, 2000, 8, 40, 2.5, [30, 20, 15, 10, 10, 7, 5, 3], groups=10),
    "weak": lambda r: counts(r, 500, 5000, 3, 50, 1.6, [50, 30, 20]),
    "xor": lambda r: xor(r, 400, 300),
    "marker": lambda r: markers(r, 400, 200, 2, 4.0, two_sided=True),
    "markers": lambda r: markers(r, 120, 3000, 4, 4.0),
}


def make(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Table ``name`` drawn with ``numpy.random.default_rng(seed)``: X (n, p), labels "c0".. (n,), groups or None."""
    X, y, g = TABLES[name](np.random.default_rng(seed))
    return X, np.asarray([f"c{v}" for v in y], dtype=object), g


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", default=",".join(TABLES), help="comma-separated, of " + ",".join(TABLES))
    ap.add_argument("--seeds", default="0,1", help="generator seeds (each also the fits' seed)")
    ap.add_argument("--models", default="mlpcli,logreg", help="comma-separated, of " + ",".join(ba.MODELS))
    ap.add_argument("--mlpcli", action="append", metavar="NAME:key=value,...",
                    help="an mlpcli variant, as bench_accuracy.py takes it (repeatable); default 'default:'")
    ap.add_argument("--folds", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        tables = ba._names(args.tables, list(TABLES), "table")
        models = ba._names(args.models, ba.MODELS, "model")
        seeds = ba._ints(args.seeds, "--seeds")
        variants = [ba.parse_variant(v) for v in (args.mlpcli or ["default:"])]
    except ba.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    print(f"{'table':<10} {'n x p':>12} {'seed':>4}  {'model':<22} {'balanced acc.':>13} {'log loss':>9} {'s/fit':>7}")
    for name in tables:
        for seed in seeds:
            X, y, g = make(name, seed)
            records = ba.run_benchmark(X, y, g, name=name, models=models, variants=variants, seeds=[seed],
                                       n_folds=args.folds)
            for model in dict.fromkeys(r["model"] for r in records):
                mine = [r for r in records if r["model"] == model]
                print(f"{name:<10} {f'{X.shape[0]} x {X.shape[1]}':>12} {seed:>4}  {model:<22} "
                      f"{np.mean([r['balanced_accuracy'] for r in mine]):>13.3f} "
                      f"{np.mean([r['log_loss'] for r in mine]):>9.3f} {np.mean([r['seconds'] for r in mine]):>7.2f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
