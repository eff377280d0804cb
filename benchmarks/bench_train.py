"""Training speed: mlpcli's NumPy engine against scikit-learn's MLPClassifier and PyTorch (CPU).

Each (framework, workload, dtype) runs in its own subprocess so peak memory is measured per run
(ru_maxrss) and one framework's thread pools cannot slow another. Every framework trains the same
architecture with Adam, the same batch size and the same BLAS thread count on the same random data.

    python benchmarks/bench_train.py                 # all workloads, a table, JSON in benchmarks/results/
    python benchmarks/bench_train.py --workloads B   # one workload
    python benchmarks/bench_train.py --threads 1

Seconds per epoch are the median of the timed epochs after a warm-up epoch. GFLOP/s counts the
exact multiplies of an epoch: forward, weight gradients, and input gradients of every layer but
the first (which nobody needs), 2 flops per multiply-add.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORKLOADS = {
    "A": {"n": 8000, "d": 5000, "hidden": [512, 256], "k": 5, "batch": 128, "epochs": 3, "dtypes": ["float32", "float64"]},
    "B": {"n": 600, "d": 2000, "hidden": [128, 64], "k": 4, "batch": 32, "epochs": 10, "dtypes": ["float32"]},
    "C": {"n": 2000, "d": 20000, "hidden": [256], "k": 4, "batch": 64, "epochs": 3, "dtypes": ["float32"]},
}
FRAMEWORKS = ["mlpcli", "sklearn", "torch"]


def epoch_flops(n: int, d: int, hidden: list[int], k: int) -> float:
    widths = [d, *hidden, k]
    macs = [a * b for a, b in zip(widths[:-1], widths[1:])]
    # forward + weight gradients for every layer, input gradients for all but the first
    return 2.0 * n * (2 * sum(macs) + sum(macs[1:]))


def make_data(w: dict, dtype: str):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(w["n"], w["d"])).astype(dtype)
    y = rng.integers(0, w["k"], w["n"])
    return X, y


def _limit_threads(threads: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def run_mlpcli(w, dtype, threads):
    _limit_threads(threads)
    from mlpcli.engine import MLP, losses, optim
    from mlpcli.training import run_epoch

    X, y = make_data(w, dtype)
    net = MLP(w["d"], w["hidden"], w["k"], activation="relu", seed=0, dtype=dtype)
    loss, opt = losses.get("ce"), optim.Adam(lr=1e-3)
    rng = np.random.default_rng(0)
    return [_timed(lambda: run_epoch(net, loss, X, y, opt, w["batch"], rng)) for _ in range(w["epochs"] + 1)]


def run_sklearn(w, dtype, threads):
    _limit_threads(threads)
    import warnings

    from sklearn.neural_network import MLPClassifier

    X, y = make_data(w, dtype)
    clf = MLPClassifier(hidden_layer_sizes=tuple(w["hidden"]), batch_size=w["batch"], solver="adam",
                        learning_rate_init=1e-3, random_state=0, shuffle=True)
    classes = np.arange(w["k"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_timed(lambda: clf.partial_fit(X, y, classes=classes)) for _ in range(w["epochs"] + 1)]


def run_torch(w, dtype, threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    X, y = make_data(w, dtype)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    widths = [w["d"], *w["hidden"]]
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(widths[-1], w["k"])).to(tdtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(0)

    def epoch():
        perm = torch.randperm(w["n"], generator=gen)
        for s in range(0, w["n"], w["batch"]):
            idx = perm[s : s + w["batch"]]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()

    return [_timed(epoch) for _ in range(w["epochs"] + 1)]


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def gemm_peak(dtype: str, threads: int) -> float:
    """Best GFLOP/s of a square matrix multiply, the ceiling an MLP epoch can approach."""
    _limit_threads(threads)
    a = np.random.default_rng(0).normal(size=(2048, 2048)).astype(dtype)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(5))
    return 2 * 2048**3 / best / 1e9


def worker(args) -> None:
    w = WORKLOADS[args.workload]
    runner = {"mlpcli": run_mlpcli, "sklearn": run_sklearn, "torch": run_torch}[args.framework]
    try:
        times = runner(w, args.dtype, args.threads)
        result = {"seconds_per_epoch": statistics.median(times[1:]), "epochs_timed": len(times) - 1}
    except ImportError as exc:
        result = {"skipped": f"{args.framework} not installed ({exc.name})"}
    if args.framework == "mlpcli" and "skipped" not in result:
        result["gemm_peak_gflops"] = gemm_peak(args.dtype, args.threads)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="ABC")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_train.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--framework", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    rows = []
    for wname in args.workloads:
        w = WORKLOADS[wname]
        for dtype in w["dtypes"]:
            row = {"workload": wname, "dtype": dtype, "flops": epoch_flops(w["n"], w["d"], w["hidden"], w["k"])}
            for fw in args.frameworks.split(","):
                cmd = [sys.executable, __file__, "--worker", "--framework", fw, "--workload", wname, "--dtype", dtype,
                       "--threads", str(args.threads)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    row[fw] = {"skipped": f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"}
                else:
                    row[fw] = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"  {wname} {dtype} {fw}: {row[fw]}", file=sys.stderr)
            rows.append(row)
    report(rows, args)


def report(rows, args) -> None:
    header = (f"{'workload':<9}{'dtype':<8}{'mlpcli s/ep':>12}{'torch s/ep':>12}{'sklearn s/ep':>13}"
              f"{'mlp/torch':>10}{'mlp/skl':>9}{'GFLOP/s':>9}{'%peak':>7}{'RSS MB m/t/s':>20}")
    print(f"threads={args.threads}  python {platform.python_version()}  numpy {np.__version__}")
    print(header)
    print("-" * len(header))
    for r in rows:
        m, t, s = r.get("mlpcli", {}), r.get("torch", {}), r.get("sklearn", {})
        ms, ts, ss = m.get("seconds_per_epoch"), t.get("seconds_per_epoch"), s.get("seconds_per_epoch")
        gflops = r["flops"] / ms / 1e9 if ms else None
        peak = m.get("gemm_peak_gflops")
        r["ratio_torch"] = ms / ts if ms and ts else None
        r["ratio_sklearn"] = ms / ss if ms and ss else None
        r["gflops"] = gflops
        r["share_of_peak"] = gflops / peak if gflops and peak else None
        f = lambda v, spec: format(v, spec) if v is not None else format("—", ">" + spec.split(".")[0])
        rss = "/".join(f(x.get("peak_rss_mb"), ".0f") for x in (m, t, s))
        print(f"{r['workload']:<9}{r['dtype']:<8}{f(ms, '12.3f')}{f(ts, '12.3f')}{f(ss, '13.3f')}"
              f"{f(r['ratio_torch'], '10.2f')}{f(r['ratio_sklearn'], '9.2f')}{f(gflops, '9.0f')}"
              f"{f(r['share_of_peak'] and 100 * r['share_of_peak'], '7.0f')}{rss:>20}")
    for r in rows:
        for fw in FRAMEWORKS:
            if "skipped" in r.get(fw, {}):
                print(f"note: {r['workload']} {r['dtype']} {fw}: {r[fw]['skipped']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
