"""Speed and memory of `mlpcli predict` against `pandas.read_csv` on the same large CSV.

    python benchmarks/bench_predict.py                 # 100,000 rows x 2,000 features (~1.2 GB of CSV)
    python benchmarks/bench_predict.py --case long     # 200,000 x 2,000 (~2.4 GB): peak must stay < 1 GB
    python benchmarks/bench_predict.py --case wide     # 2,000 x 50,000 (~0.6 GB): peak < 1.2 x read_csv's
    python benchmarks/bench_predict.py --rows 20000    # a quicker look

Makes a samples x genes CSV (sample_id, batch, GENE0001..; values with 4 significant digits, like
exported TPM tables) and a model with the default architecture (2000 -> 128 -> 64 -> 4) trained on a
small labelled table from the same generator. Then, each in its own subprocess so that peak memory
(the child's maximum resident set size) is measured alone:

  read_csv  python -c "pandas.read_csv(FILE)"      the time of reading the file with pandas alone
  predict   mlpcli predict MODEL FILE -o OUT.csv   the whole command, at the default --chunksize

and prints a table (peak RSS of predict and of read_csv side by side) and writes the figures as JSON.
Goals (the issues): predict takes at most 1.3x the time of read_csv; its peak memory stays under 1 GB
and under 1.2x the peak of read_csv reading the whole file (wide tables: pandas needs less than 1 GB
for 2,000 rows, predict must not need more). Not a test: timings depend on the machine. The tables
are written to a temporary directory (--workdir to choose it), never into the repository.

Both sides use the cores: pandas 3 reads a large file in parallel, predict parses pieces of the file in
up to 4 threads. On a shared machine run with --repeat 3: the runs alternate and the fastest of each
counts; CPU seconds are reported too, being less sensitive to other load than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

import _measure  # benchmarks/: the script's own folder is first on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
N_CLASSES = 4
N_BLOCKS = 4  # distinct blocks of rows, cycled (with unique ids) to make the big file quickly
BLOCK_ROWS = 1000
TIME_GOAL, MEMORY_GOAL_MB, MEMORY_GOAL_RATIO = 1.3, 1024, 1.2
CASES = {"long": (200_000, 2_000), "wide": (2_000, 50_000)}  # --case: (rows, features)
ROOT = os.path.dirname(HERE)  # the checkout whose mlpcli is measured (not an installed copy)


def _genes(d: int) -> list[str]:
    return [f"GENE{j + 1:04d}" for j in range(d)]


def _values(rng, n: int, d: int, mu: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Log-normal expression (n, d) with class signal on the first genes."""
    z = mu + rng.normal(scale=0.7, size=(n, d))
    for c in range(N_CLASSES):
        z[cls == c, c * 10:(c + 1) * 10] += 1.5
    return np.exp(z)


_GRID = 0.002  # log-scale step of the formatted values (4 significant digits carry about as much)
_LOW, _HIGH = -6.0, 12.0
_VOCAB = np.array(["%.4g" % v for v in np.exp(np.arange(_LOW, _HIGH + _GRID, _GRID))], dtype=object)


def _format_rows(X: np.ndarray) -> list[str]:
    """Rows as comma-joined text with 4 significant digits, looked up in a vocabulary of the values
    on a fine log grid (np.char.mod takes 1.5 us a cell: 5 minutes for the wide table)."""
    index = np.clip(np.rint((np.log(X) - _LOW) / _GRID), 0, len(_VOCAB) - 1).astype(np.int64)
    return [",".join(_VOCAB[row].tolist()) for row in index]


def make_data(workdir: str, rows: int, features: int, seed: int = 0) -> tuple[str, str]:
    """(big unlabelled CSV, small labelled training CSV)."""
    rng = np.random.default_rng(seed)
    genes = _genes(features)
    mu = rng.normal(1.0, 1.0, features)
    train_path = os.path.join(workdir, "train.csv")
    n_train = 600
    cls = rng.integers(0, N_CLASSES, n_train)
    X = _values(rng, n_train, features, mu, cls)
    with open(train_path, "w") as fh:
        fh.write(",".join(["sample_id", "label", *genes]) + "\n")
        for i, body in enumerate(_format_rows(X)):
            fh.write(f"T{i:05d},type{cls[i]},{body}\n")
    big_path = os.path.join(workdir, "cohort.csv")
    blocks = []
    for _ in range(min(N_BLOCKS, -(-rows // BLOCK_ROWS))):
        X = _values(rng, BLOCK_ROWS, features, mu, rng.integers(0, N_CLASSES, BLOCK_ROWS))
        blocks.append(_format_rows(X))
    with open(big_path, "w") as fh:
        fh.write(",".join(["sample_id", "batch", *genes]) + "\n")
        for start in range(0, rows, BLOCK_ROWS):
            body = blocks[(start // BLOCK_ROWS) % len(blocks)]
            k = min(BLOCK_ROWS, rows - start)
            fh.write("".join(f"S{start + i:07d},B{(start + i) % 3 + 1},{body[i]}\n" for i in range(k)))
    return big_path, train_path


def train_model(train_path: str, model_path: str, folds: str = "auto") -> None:
    """train's defaults (a cross-fitted ensemble), or ``folds=1`` for one network."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from mlpcli import model_io, pipeline
    from mlpcli.config import TrainOptions

    outcome = pipeline.train(train_path, TrainOptions(epochs=5, no_group=True, seed=0,
                                                      folds=folds if folds == "auto" else int(folds)))
    model_io.save(outcome.model, model_path)


def measure(cmd: list[str]) -> dict:
    return _measure.measure(cmd, ROOT)


READ_CSV = (
    "import sys, time, pandas\n"
    "if len(sys.argv) > 2:  # single-threaded, as pandas < 3 reads (pandas 3 parses large files in parallel)\n"
    "    try:\n"
    "        pandas.set_option('mode.max_threads', 1)\n"
    "    except (KeyError, pandas.errors.OptionError):\n"
    "        pass\n"
    "t = time.perf_counter()\n"
    "frame = pandas.read_csv(sys.argv[1])\n"
    "print(time.perf_counter() - t, frame.shape[0])\n"
)


def _versions() -> dict:
    import numpy
    import pandas
    import pyarrow

    return {"numpy": numpy.__version__, "pandas": pandas.__version__, "pyarrow": pyarrow.__version__}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=sorted(CASES), default=None,
                    help="A preset shape: long = 200,000 x 2,000, wide = 2,000 x 50,000 (overrides --rows/--features).")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=1,
                    help="Runs of each command, alternating; the fastest of each is reported (shared machines).")
    ap.add_argument("--chunksize", type=int, default=None, help="Pass --chunksize to predict (default: its default).")
    ap.add_argument("--chunk-mb", type=float, default=None, help="Pass --chunk-mb to predict (default: its default).")
    ap.add_argument("--no-1thread", action="store_true", help="Skip the single-threaded read_csv run.")
    ap.add_argument("--workdir", default=None,
                    help="Where to write the data (default: a temporary directory, removed after); a directory "
                         "holding the same case from an earlier run is used again.")
    ap.add_argument("--keep", action="store_true", help="Keep the generated files.")
    ap.add_argument("--model-folds", default="auto",
                    help="Members of the model predicted with: train's default (auto: 5) or 1 for one network.")
    ap.add_argument("--json-out", default=None,
                    help="Where to write the figures (default: benchmarks/results/bench_predict[_CASE].json).")
    args = ap.parse_args(argv)
    if args.case:
        args.rows, args.features = CASES[args.case]
    json_out = args.json_out or os.path.join(HERE, "results", f"bench_predict{'_' + args.case if args.case else ''}.json")

    workdir = args.workdir or tempfile.mkdtemp(prefix="mlpcli-bench-")
    os.makedirs(workdir, exist_ok=True)
    try:
        t = time.perf_counter()
        stamp = os.path.join(workdir, "made.json")  # what a kept --workdir holds: made again only if it differs
        made = {"rows": args.rows, "features": args.features}
        big, train = os.path.join(workdir, "cohort.csv"), os.path.join(workdir, "train.csv")
        model = os.path.join(workdir, f"model-{args.model_folds}.mlp")
        reuse = os.path.exists(stamp) and os.path.exists(big) and json.load(open(stamp)) == made
        if not reuse:
            for stale in (stamp, *(os.path.join(workdir, f) for f in os.listdir(workdir) if f.endswith(".mlp"))):
                if os.path.exists(stale):
                    os.remove(stale)
            big, train = make_data(workdir, args.rows, args.features)
            with open(stamp, "w") as fh:
                json.dump(made, fh)
        size_mb = os.path.getsize(big) / 2**20
        print(f"data: {args.rows:,} rows x {args.features:,} features, {size_mb:,.0f} MiB CSV "
              f"({'kept from an earlier run' if reuse else f'{time.perf_counter() - t:.0f} s to write'})", file=sys.stderr)
        if not os.path.exists(model):
            t = time.perf_counter()
            train_model(train, model, args.model_folds)
            print(f"model trained ({time.perf_counter() - t:.0f} s)", file=sys.stderr)

        out = os.path.join(workdir, "predictions.csv")
        predict_cmd = [sys.executable, "-m", "mlpcli", "predict", model, big, "-o", out, "--quiet"]
        if args.chunksize:
            predict_cmd += ["--chunksize", str(args.chunksize)]
        if args.chunk_mb:
            predict_cmd += ["--chunk-mb", str(args.chunk_mb)]
        readers = [("read_csv", [])] + ([] if args.no_1thread else [("read_csv_1thread", ["1"])])
        runs = {key: [] for key, _ in readers} | {"predict": []}
        for _ in range(args.repeat):
            for key, extra in readers:
                r = measure([sys.executable, "-c", READ_CSV, big, *extra])
                r["read_csv_call_s"] = float(r["stdout"].split()[0])
                runs[key].append(r)
            runs["predict"].append(measure(predict_cmd))
        best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in runs.items()}
        with open(out) as fh:
            n_out = sum(1 for _ in fh) - 1
        if n_out != args.rows:
            raise SystemExit(f"predict wrote {n_out} rows, expected {args.rows}")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    rc, r1, pr = best["read_csv"], best.get("read_csv_1thread"), best["predict"]
    ratio = pr["wall_s"] / rc["wall_s"]
    # peak memory: against read_csv's own peak in the same run (the least of the repeats: allocator noise)
    read_peak = min(r["peak_mb"] for r in runs["read_csv"])
    predict_peak = max(r["peak_mb"] for r in runs["predict"])
    peak_ratio = predict_peak / read_peak
    report = {
        "rows": args.rows, "features": args.features, "csv_mib": round(size_mb, 1), "case": args.case,
        "model_folds": args.model_folds, "chunksize": args.chunksize, "chunk_mb": args.chunk_mb,
        "repeat": args.repeat,
        "read_csv": {"process_s": round(rc["wall_s"], 2), "read_csv_call_s": round(rc["read_csv_call_s"], 2),
                     "cpu_s": round(rc["cpu_s"], 2), "peak_mb": round(read_peak)},
        "read_csv_1thread": None if r1 is None else {"process_s": round(r1["wall_s"], 2), "cpu_s": round(r1["cpu_s"], 2),
                                                     "peak_mb": round(r1["peak_mb"])},
        "predict": {"process_s": round(pr["wall_s"], 2), "cpu_s": round(pr["cpu_s"], 2), "peak_mb": round(predict_peak)},
        "time_ratio": round(ratio, 3),
        "time_ratio_vs_1thread": None if r1 is None else round(pr["wall_s"] / r1["wall_s"], 3),
        "peak_ratio": round(peak_ratio, 3),
        "goals": {"time_ratio_max": TIME_GOAL, "peak_mb_max": MEMORY_GOAL_MB, "peak_ratio_max": MEMORY_GOAL_RATIO,
                  "time_met": ratio <= TIME_GOAL, "memory_met": predict_peak < MEMORY_GOAL_MB,
                  "memory_ratio_met": peak_ratio < MEMORY_GOAL_RATIO},
        "all_runs_s": {k: [round(r["wall_s"], 2) for r in v] for k, v in runs.items()},
        "all_peaks_mb": {k: [round(r["peak_mb"]) for r in v] for k, v in runs.items()},
        "paired_ratios": [round(p["wall_s"] / r["wall_s"], 3) for r, p in zip(runs["read_csv"], runs["predict"])],
        "versions": _versions(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"\n{args.rows:,} x {args.features:,} CSV ({size_mb:,.0f} MiB), model folds {args.model_folds}")
    print(f"{'':28}{'time (s)':>10}{'CPU (s)':>10}{'peak RSS (MB)':>15}")
    print(f"{'pandas.read_csv (process)':28}{rc['wall_s']:>10.1f}{rc['cpu_s']:>10.1f}{read_peak:>15,.0f}")
    print(f"{'  of which the call':28}{rc['read_csv_call_s']:>10.1f}")
    if r1 is not None:
        print(f"{'read_csv, 1 thread':28}{r1['wall_s']:>10.1f}{r1['cpu_s']:>10.1f}{r1['peak_mb']:>15,.0f}")
    print(f"{'mlpcli predict (process)':28}{pr['wall_s']:>10.1f}{pr['cpu_s']:>10.1f}{predict_peak:>15,.0f}")
    print(f"{'ratio predict / read_csv':28}{ratio:>10.2f}{'':10}{peak_ratio:>15.2f}")
    print(f"{'goals':28}{'<= ' + str(TIME_GOAL):>10}{'':10}{'< 1.2, < 1 GB':>15}")
    if r1 is not None:
        print(f"{'  against 1-thread read_csv':28}{pr['wall_s'] / r1['wall_s']:>10.2f}")
    os.makedirs(os.path.dirname(os.path.abspath(json_out)), exist_ok=True)
    with open(json_out, "w") as fh:
        json.dump(report, fh, indent=2)
        fh.write("\n")
    print(f"figures written to {json_out}", file=sys.stderr)
    goals = report["goals"]
    return 0 if goals["time_met"] and goals["memory_met"] and goals["memory_ratio_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
