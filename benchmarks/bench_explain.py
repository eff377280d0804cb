"""Cost of `mlpcli predict --explain 5` against plain `mlpcli predict` on the same large CSV.

    python benchmarks/bench_explain.py                 # 100,000 rows x 2,000 features (~1.2 GB of CSV)
    python benchmarks/bench_explain.py --rows 20000    # a quicker look

The table and the model come from bench_predict's generator (a samples x genes CSV; a model trained with
train's defaults on a small labelled table from the same generator: a cross-fitted ensemble of 5). Each
command runs in its own subprocess (benchmarks/_measure.py), so its peak memory is its own:

  predict           mlpcli predict MODEL FILE -o OUT.csv
  predict --explain mlpcli predict MODEL FILE -o OUT.csv --explain 5   (top_features per row)

Goal (issue 14): --explain 5 costs at most 3x plain predict, with bounded memory (the attributions of a
block of rows, not of the table). Not a test: timings depend on the machine; on a shared machine run with
--repeat 3 (the runs alternate and the fastest of each counts; CPU seconds are reported too).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import _measure  # benchmarks/: the script's own folder is first on sys.path
import bench_predict

GOAL_RATIO = 3.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=2_000)
    ap.add_argument("--k", type=int, default=5, help="--explain K")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", default=None, help="Where to write the data (default: a temporary directory).")
    ap.add_argument("--keep", action="store_true", help="Keep the generated files.")
    ap.add_argument("--json-out", default=None, help="Also write the figures as JSON here.")
    args = ap.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="mlpcli-bench-explain-")
    os.makedirs(workdir, exist_ok=True)
    try:
        big, train = bench_predict.make_data(workdir, args.rows, args.features)
        model = os.path.join(workdir, "model.mlp")
        bench_predict.train_model(train, model)
        size_mb = os.path.getsize(big) / 2**20
        base = [sys.executable, "-m", "mlpcli", "predict", model, big, "--quiet"]
        commands = {"predict": base + ["-o", os.path.join(workdir, "plain.csv")],
                    f"predict --explain {args.k}": base + ["-o", os.path.join(workdir, "explained.csv"),
                                                           "--explain", str(args.k)]}
        runs = {key: [] for key in commands}
        for _ in range(args.repeat):
            for key, cmd in commands.items():
                runs[key].append(_measure.measure(cmd, bench_predict.ROOT))
        best = {key: min(rs, key=lambda r: r["wall_s"]) for key, rs in runs.items()}
        plain, explained = best["predict"], best[f"predict --explain {args.k}"]
        ratio = explained["wall_s"] / plain["wall_s"]
        cpu_ratio = explained["cpu_s"] / plain["cpu_s"]
        print(f"{args.rows:,} rows x {args.features:,} features ({size_mb:,.0f} MiB CSV), model: 5 members")
        print(f"{'command':<22}{'wall s':>9}{'CPU s':>9}{'peak MiB':>10}")
        for key, r in best.items():
            print(f"{key:<22}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['peak_mb']:>10.0f}")
        print(f"ratio (explain / plain): wall {ratio:.2f}x, CPU {cpu_ratio:.2f}x; goal <= {GOAL_RATIO:g}x: "
              f"{'met' if ratio <= GOAL_RATIO else 'NOT met'}")
        if args.json_out:
            with open(args.json_out, "w") as fh:
                json.dump({"rows": args.rows, "features": args.features, "k": args.k, "csv_mib": size_mb,
                           "runs": {k: {f: r[f] for f in ("wall_s", "cpu_s", "peak_mb")} for k, r in best.items()},
                           "wall_ratio": ratio, "cpu_ratio": cpu_ratio}, fh, indent=2)
        return 0 if ratio <= GOAL_RATIO else 1
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
