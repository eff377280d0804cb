"""False alarms of `predict`'s checks on samples of the training population: the cohort-shift verdict, the share of
features the spread test flags, and the "far beyond the training values" warning, on random fifths of real tables.

    pip install ".[bench]"                            # the tables of bench_accuracy.py
    python benchmarks/bench_shift.py                  # every set, seeds 0-3
    python benchmarks/bench_shift.py --sets hepatic,pd_speech --baseline /path/to/older/checkout

Each seed holds out a random fifth of a table's patients (of its rows without a patient column), trains the softmax
regression on the rest (`--folds 1 --hidden none --epochs 3`: the checks depend on the preprocessing, not on the
network) and predicts the fifth with `--json`. The fifth is drawn from the training population, so every "shift" or
"mild" verdict and every far-value warning is a false alarm. `--baseline DIR` runs another checkout's mlpcli (its
package directory on PYTHONPATH) on the same splits beside this one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_accuracy as ba  # noqa: E402

ALL_SETS = {**ba.SETS, **ba.HOLDOUT_SETS}


def _mlpcli(args: list[str], checkout: str | None, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if checkout:
        env["PYTHONPATH"] = checkout + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # (run from the work directory: `python -m` puts the current directory first on the path, and this checkout's
    # own directory would shadow the baseline's package)
    return subprocess.run([sys.executable, "-m", "mlpcli", *args], capture_output=True, text=True, env=env, cwd=cwd)


def run_split(frame, has_groups: bool, has_nan: bool, test: np.ndarray, workdir: Path, checkout: str | None) -> dict:
    """Train on the rows outside ``test`` and predict those in it; the verdicts of the prediction's checks."""
    frame[~test].to_csv(workdir / "train.csv", index_label="rowid")
    frame[test].to_csv(workdir / "test.csv", index_label="rowid")
    model = workdir / "m.mlp"
    args = ["train", str(workdir / "train.csv"), "--target", "label", "--id", "rowid", "--folds", "1", "--hidden",
            "none", "--epochs", "3", "-q", "-o", str(model)]
    args += ["--group", "patient"] if has_groups else ["--no-group"]
    args += ["--impute", "median"] if has_nan else []
    done = _mlpcli(args, checkout, workdir)
    if done.returncode:
        raise SystemExit(f"train failed: {done.stderr.strip().splitlines()[-1]}")
    done = _mlpcli(["predict", str(model), str(workdir / "test.csv"), "--id", "rowid", "-o", os.devnull, "--json"],
                   checkout, workdir)
    if done.returncode:
        raise SystemExit(f"predict failed: {done.stderr.strip().splitlines()[-1]}")
    out = json.loads(done.stdout)
    shift = out["shift"]
    far = [w for w in out["warnings"] if "training spreads" in w or "typical training value" in w]
    return {"n": shift["n"], "level": shift["level"], "spread": shift["fraction_spread_shifted"], "far": len(far)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(ALL_SETS), help="comma-separated (default: every set)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--baseline", help="another mlpcli checkout, measured on the same splits")
    args = parser.parse_args(argv)
    names = [s for s in args.sets.split(",") if s]
    unknown = [s for s in names if s not in ALL_SETS]
    if unknown:
        parser.error(f"--sets: unknown {', '.join(unknown)} (known: {', '.join(ALL_SETS)})")
    checkouts = [("this", None)] + ([("baseline", str(Path(args.baseline).resolve()))] if args.baseline else [])
    print("| set | version | test rows | shift / mild verdicts | features spread-flagged (mean, max) | far-value warnings |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in names:
            bench = ALL_SETS[name]()
            frame = bench.X.copy()
            frame.insert(0, "label", bench.y)
            if bench.groups is not None:
                frame.insert(0, "patient", bench.groups)
            has_nan = bool(frame.isna().any().any())
            results = {label: [] for label, _ in checkouts}
            for seed in range(args.seeds):
                rng = np.random.default_rng(seed)
                if bench.groups is not None:
                    patients = np.unique(bench.groups)
                    held = set(rng.choice(patients, len(patients) // 5, replace=False).tolist())
                    test = np.array([g in held for g in bench.groups])
                else:
                    test = np.zeros(len(frame), dtype=bool)
                    test[rng.permutation(len(frame))[: len(frame) // 5]] = True
                for label, checkout in checkouts:
                    results[label].append(run_split(frame, bench.groups is not None, has_nan, test, workdir, checkout))
            for label, rows in results.items():
                alarms = sum(r["level"] != "none" for r in rows)
                spread = [r["spread"] for r in rows]
                print(f"| {name} | {label} | {rows[0]['n']} | {alarms} of {len(rows)} | {np.mean(spread):.3f}, "
                      f"{max(spread):.3f} | {sum(r['far'] > 0 for r in rows)} of {len(rows)} |", flush=True)


if __name__ == "__main__":
    main()
