"""Peak resident memory and seconds per stage of `mlpcli train`, at three data sizes, dense and sparse.

    python benchmarks/bench_memory.py                        # dense 2,000 / 4,000 / 8,000 x 5,000; sparse
                                                             # 25,000 / 50,000 / 100,000 cells x 2,000 genes
    python benchmarks/bench_memory.py --scale 0.25           # a quicker look (a quarter of the rows)
    python benchmarks/bench_memory.py --ensemble             # also the default 5-member ensemble
    python benchmarks/bench_memory.py --only dense --default-run   # also plain `train FILE` on the largest
    python benchmarks/bench_memory.py --workdir /tmp/bm --keep   # reuse the generated files
    python benchmarks/bench_memory.py --baseline /tmp/before     # another checkout, measured the same way

Inputs (generated once per size, the larger ones extending the smaller):

  dense   a float32 parquet table: sample_id, patient_id (2 samples each), label (5 classes), then 5,000
          genes of lognormal(1, 1) values (the classes shift 20 genes each): the issue's 8,000 x 5,000 case
  sparse  an .h5ad file of CSR float32 counts, 2,000 genes, 10 % non-zero, obs cell_type / donor_id / batch
          (``bench_h5ad.make_counts``)

Each size is measured in fresh processes (peak = maximum resident set size):

  stages   one process runs what `train --folds 1 --epochs 2 --hidden 128` runs, stage by stage, with the
           peak of each (the kernel's high-water mark, reset between stages through /proc/self/clear_refs):
             read        the validated dataset (``pipeline.load_dataset``)
             preprocess  the --log1p auto decision, the hold-out split, the preprocessing fitted on the
                         training rows (their transformed matrix) and applied to the validation rows
             epoch       training, seconds per epoch (``pipeline.train_dataset``; its peak is the stage's)
             save        ``model_io.save``
  train    the whole command, `mlpcli train FILE --folds 1 --epochs 2 --hidden 128 -q`: peak, wall and CPU
           seconds, and the seconds outside its epochs (wall minus the epochs of ``--history``)
  ensemble (--ensemble) the same without --folds: the default members, in parallel processes; the peak is
           the largest process's (each worker holds its member's rows), and the epochs' seconds are summed
           over the members and divided by the worker processes
  default  (--default-run) `mlpcli train FILE --target label -q`, every option at its default (three candidates x
           five members, up to 200 epochs: minutes), on the largest dense input only: its peak against the bar.
           The 2-epoch runs above did not show that this run had peaked at 766-778 MiB against a bar of 744
           (the networks it had trained kept their gradient and scratch buffers; 710 MiB once they let go)

The yardsticks: `data` is the feature matrix's size (dense: rows x genes x 4 bytes; sparse: its CSR
arrays), `read` the seconds of the call ``pd.read_parquet(FILE)`` (dense) or ``anndata.read_h5ad(FILE)``
(sparse) in a process of its own (imports not counted; `read process` counts them). The dense files are written in
row groups of 1,000 rows, which ``pd.read_parquet`` reads 2-3 x slower than one group: the largest is measured again
as one row group, as pandas' ``to_parquet`` writes a table of its size, and the time bar is given for both (for one
group also against `read process`, whose interpreter start and imports `train`'s wall time counts too). The issue's bars for the dense case: peak <= 3 x data + 300 MB, seconds
outside the epochs < 2 x read. Not a test: the figures depend on the machine, its load and the library
versions; cost should grow linearly with the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

import _measure  # benchmarks/: the script's own folder is first on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DENSE_ROWS = (2_000, 4_000, 8_000)
DENSE_GENES = 5_000
SPARSE_CELLS = (25_000, 50_000, 100_000)
SPARSE_GENES = 2_000
SPARSE_DENSITY = 0.10
N_CLASSES = 5
BLOCK_ROWS = 1_000

STAGES = r"""
import json, os, sys, time

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) / 1024

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass

from dataclasses import replace
from mlpcli import data, model_io
from mlpcli.config import TrainOptions
from mlpcli.auto_defaults import resolve
from mlpcli.model_selection.fitting import preprocess_config, resolve_log1p
from mlpcli.model_selection.splits import holdout
from mlpcli.pipeline import load_dataset, train_dataset
import numpy as np

path, target, out = sys.argv[1], sys.argv[2], sys.argv[3]
options = TrainOptions(target=[target], folds=1, epochs=2, hidden=[128])
stages = [{"stage": "imports", "peak_mb": status("VmHWM:"), "seconds": 0.0}]

def stage(name, fn):
    reset_peak()
    t = time.perf_counter()
    result = fn()
    stages.append({"stage": name, "peak_mb": status("VmHWM:"), "seconds": time.perf_counter() - t})
    return result

ds, _ = stage("read", lambda: load_dataset(path, options))

def preprocess():  # what crossfit._fit_holdout and fitting.fit_run do before the first epoch
    log1p, _ = resolve_log1p(options, ds.X)
    train, val, _ = holdout(ds, options.val_size, options.seed)
    tr, va = ds.subset(train), ds.subset(val)
    pre = data.Preprocessor(preprocess_config(options, log1p))
    X_train = pre.fit_transform(tr.X, tr.feature_names, dtype=options.dtype, order="C")
    X_val = pre.transform(va.X, dtype=options.dtype, order="C", sparse=True)
    return X_train.shape

stage("preprocess", preprocess)
outcome = stage("train", lambda: train_dataset(ds, options, source=path))
epochs = [row["seconds"] for row in outcome.fitted.history]
stage("save", lambda: model_io.save(outcome.model, out))
print(json.dumps({"stages": stages, "epochs": epochs}))
"""

READ = ("import sys, time\n"
        "import pandas as pd\n" "if sys.argv[2] == 'sparse':\n    import anndata as ad\n"
        "t = time.perf_counter()\n"
        "pd.read_parquet(sys.argv[1]) if sys.argv[2] == 'dense' else ad.read_h5ad(sys.argv[1])\n"
        "print(time.perf_counter() - t)\n")


def make_dense(path: str, rows: int, genes: int = DENSE_GENES, seed: int = 0) -> None:
    """The dense table (see the module docstring), written a block of rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    names = [f"G{j:05d}" for j in range(genes)]
    schema = pa.schema([("sample_id", pa.string()), ("patient_id", pa.string()), ("label", pa.string())]
                       + [(n, pa.float32()) for n in names])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, BLOCK_ROWS):
            k = min(BLOCK_ROWS, rows - start)
            cls = rng.integers(0, N_CLASSES, k)
            X = rng.lognormal(1.0, 1.0, (k, genes)).astype(np.float32)
            for c in range(N_CLASSES):
                X[cls == c, c * 20:(c + 1) * 20] *= 3.0
            ids = np.arange(start, start + k)
            columns = [pa.array([f"S{i:07d}" for i in ids]), pa.array([f"P{i // 2:07d}" for i in ids]),
                       pa.array([f"class{c}" for c in cls])] + [pa.array(X[:, j]) for j in range(genes)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def make_sparse(path: str, cells: int) -> int:
    """The sparse .h5ad file; returns the bytes of its CSR arrays."""
    from bench_h5ad import make_counts, write_h5ad

    X, types = make_counts(cells, SPARSE_GENES, SPARSE_DENSITY)
    write_h5ad(X, types, path)
    return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)


def epochs_from_history(path: str) -> list[float]:
    import csv

    with open(path) as fh:
        return [float(row["seconds"]) for row in csv.DictReader(fh)]


def one_row_group(path: str) -> str:
    """A copy of the dense table at ``path`` in a single row group, as pandas' ``to_parquet`` writes a table of this
    size (``make_dense`` writes groups of BLOCK_ROWS rows, which ``pd.read_parquet`` reads 2-3 x slower: the bar's
    yardstick moves with the file's layout, so the benchmark gives both)."""
    import pyarrow.parquet as pq

    out = path.replace(".parquet", "_one_group.parquet")
    if not os.path.exists(out):
        pq.write_table(pq.read_table(path), out + ".part")
        os.replace(out + ".part", out)
    return out


def _read_and_train(kind: str, path: str, root: str, work: str) -> tuple[dict, dict, list[str]]:
    """(``pd.read_parquet`` / ``ad.read_h5ad`` of ``path`` in a process of its own, `train --folds 1` of it with its
    seconds outside the epochs, the command without --folds)."""
    target = "label" if kind == "dense" else "cell_type"
    model, history = os.path.join(work, "model.mlp"), os.path.join(work, "history.csv")
    read = _measure.measure([sys.executable, "-c", READ, path, kind], root)
    cmd = [sys.executable, "-m", "mlpcli", "train", path, "--target", target, "--epochs", "2", "--hidden", "128",
           "-q", "-o", model, "--history", history]
    whole = _measure.measure([*cmd, "--folds", "1"], root)
    whole["outside_s"] = whole["wall_s"] - sum(epochs_from_history(history))
    return read, whole, cmd


def measure_size(kind: str, path: str, n: int, data_mb: float, root: str, work: str, ensemble: bool) -> dict:
    target = "label" if kind == "dense" else "cell_type"
    model, history = os.path.join(work, "model.mlp"), os.path.join(work, "history.csv")
    stages = json.loads(_measure.measure([sys.executable, "-c", STAGES, path, target, model], root)["stdout"])
    read, whole, cmd = _read_and_train(kind, path, root, work)
    result = {"kind": kind, "n": n, "data_mb": data_mb, "read_s": float(read["stdout"]), "read_process_s": read["wall_s"],
              "stages": stages, "train": whole}
    if ensemble:
        if ROOT not in sys.path:  # run from anywhere: this checkout's rule for the workers
            sys.path.insert(0, ROOT)
        from mlpcli.resources import usable_cores  # the CLI's default: one worker per core

        ens = _measure.measure(cmd, root)
        epochs = epochs_from_history(history)
        ens["outside_s"] = ens["wall_s"] - sum(epochs) / max(1, min(usable_cores(), 5))
        result["ensemble"] = ens
    return result


def print_table(results: list[dict], label: str) -> None:
    print(f"\n{label}")
    head = (f"{'input':<7} {'rows':>8} {'data':>6} {'read':>6} {'process':>7} | {'stage peaks MiB: read':>21} {'prep':>5} "
            f"{'train':>5} {'save':>5} | {'seconds: read':>13} {'prep':>5} {'epoch':>5} {'save':>5} | "
            f"{'train --folds 1: peak':>21} {'x data':>6} {'wall':>5} {'outside':>7}")
    print(head)
    print("-" * len(head))
    for r in results:
        st = {s["stage"]: s for s in r["stages"]["stages"]}
        epoch = np.mean(r["stages"]["epochs"]) if r["stages"]["epochs"] else float("nan")
        t = r["train"]
        print(f"{r['kind']:<7} {r['n']:>8,} {r['data_mb']:>6.0f} {r['read_s']:>6.2f} {r['read_process_s']:>7.2f} | "
              f"{st['read']['peak_mb']:>21.0f} {st['preprocess']['peak_mb']:>5.0f} {st['train']['peak_mb']:>5.0f} "
              f"{st['save']['peak_mb']:>5.0f} | {st['read']['seconds']:>13.2f} {st['preprocess']['seconds']:>5.2f} "
              f"{epoch:>5.2f} {st['save']['seconds']:>5.2f} | {t['peak_mb']:>21.0f} "
              f"{t['peak_mb'] / r['data_mb']:>6.1f} {t['wall_s']:>5.1f} {t['outside_s']:>7.1f}")
    if any("ensemble" in r for r in results):
        print(f"\n{'input':<7} {'rows':>8} | default ensemble: peak (largest process) {'wall':>5} {'outside':>7}")
        for r in results:
            if "ensemble" in r:
                e = r["ensemble"]
                print(f"{r['kind']:<7} {r['n']:>8,} | {e['peak_mb']:>41.0f} {e['wall_s']:>5.1f} {e['outside_s']:>7.1f}")
    dense = [r for r in results if r["kind"] == "dense"]
    if dense:
        r = dense[-1]
        bar_mb = 3 * r["data_mb"] + 300
        if "default" in r:
            d = r["default"]
            print(f"\nthe default run, dense {r['n']:,} rows (`train FILE`): peak {d['peak_mb']:.0f} MiB (<= {bar_mb:.0f}: "
                  f"{'met' if d['peak_mb'] <= bar_mb else 'NOT met'}), {d['wall_s']:.1f} s")
        print(f"\nbars, dense {r['n']:,} rows: peak {r['train']['peak_mb']:.0f} MiB (<= {bar_mb:.0f}: "
              f"{'met' if r['train']['peak_mb'] <= bar_mb else 'NOT met'}); outside the epochs "
              f"{r['train']['outside_s']:.1f} s (< 2 x read = {2 * r['read_s']:.1f} s: "
              f"{'met' if r['train']['outside_s'] < 2 * r['read_s'] else 'NOT met'})"
              + (f"; the default ensemble {r['ensemble']['outside_s']:.1f} s outside its epochs"
                 if "ensemble" in r else ""))
        if "one_group" in r:
            g = r["one_group"]
            print(f"the same table in one row group (as pandas writes it): read {g['read_s']:.2f} s; outside the epochs "
                  f"{g['train']['outside_s']:.1f} s (< 2 x read = {2 * g['read_s']:.1f} s: "
                  f"{'met' if g['train']['outside_s'] < 2 * g['read_s'] else 'NOT met'}), peak {g['train']['peak_mb']:.0f} MiB; "
                  f"{g['train']['outside_s'] / g['read_process_s']:.1f} x the read as a process of its own, interpreter and "
                  f"imports counted as they are in `train`'s ({g['read_process_s']:.2f} s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="Multiply the row counts (e.g. 0.25 for a quick look).")
    ap.add_argument("--only", choices=("dense", "sparse"), default=None)
    ap.add_argument("--ensemble", action="store_true", help="Also measure the default ensemble (no --folds).")
    ap.add_argument("--default-run", action="store_true",
                    help="Also measure `train FILE` with every option at its default on the largest dense input (minutes).")
    ap.add_argument("--workdir", default=None, help="Where to write the inputs (reused when there already).")
    ap.add_argument("--keep", action="store_true", help="Keep the generated inputs.")
    ap.add_argument("--json-out", default=None, help="Also write the figures as JSON here.")
    ap.add_argument("--baseline", default=None, metavar="DIR",
                    help="Another mlpcli checkout (e.g. an older commit's) measured the same way.")
    args = ap.parse_args(argv)

    work = args.workdir or tempfile.mkdtemp(prefix="mlpcli-bench-memory-")
    os.makedirs(work, exist_ok=True)
    roots = {"this checkout": ROOT, **({"baseline": os.path.abspath(args.baseline)} if args.baseline else {})}
    inputs = []
    if args.only != "sparse":
        for rows in DENSE_ROWS:
            n = max(100, int(rows * args.scale))
            path = os.path.join(work, f"dense_{n}x{DENSE_GENES}.parquet")
            if not os.path.exists(path):
                make_dense(path + ".part", n)
                os.replace(path + ".part", path)
            inputs.append(("dense", path, n, n * DENSE_GENES * 4 / 2**20))
    if args.only != "dense":
        for cells in SPARSE_CELLS:
            n = max(500, int(cells * args.scale))
            path = os.path.join(work, f"sparse_{n}x{SPARSE_GENES}.h5ad")
            size_path = path + ".bytes"
            if not os.path.exists(path):
                nbytes = make_sparse(path + ".part.h5ad", n)
                os.replace(path + ".part.h5ad", path)
                with open(size_path, "w") as fh:
                    fh.write(str(nbytes))
            with open(size_path) as fh:
                inputs.append(("sparse", path, n, int(fh.read()) / 2**20))
    report = {}
    try:
        for label, root in roots.items():
            results = [measure_size(kind, path, n, data_mb, root, work, args.ensemble)
                       for kind, path, n, data_mb in inputs]
            dense = [r for r in results if r["kind"] == "dense"]
            if dense:  # the largest dense table again, in one row group
                largest = [path for kind, path, *_ in inputs if kind == "dense"][-1]
                read, whole, _ = _read_and_train("dense", one_row_group(largest), root, work)
                dense[-1]["one_group"] = {"read_s": float(read["stdout"]), "read_process_s": read["wall_s"], "train": whole}
            if args.default_run and dense:
                largest = [path for kind, path, *_ in inputs if kind == "dense"][-1]
                dense[-1]["default"] = _measure.measure(
                    [sys.executable, "-m", "mlpcli", "train", largest, "--target", "label", "-q",
                     "-o", os.path.join(work, "default.mlp")], root)
            report[label] = results
            print_table(results, f"{label} ({root}); MiB and seconds")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
