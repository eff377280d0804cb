"""The training benchmark keeps working (nothing here is timed: only its arithmetic and plumbing)."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from benchmark_scripts import BENCHMARKS, loaded

BENCH = BENCHMARKS / "bench_train.py"


@pytest.fixture(scope="module")
def bench():
    with loaded("bench_train") as module:
        yield module


def test_epoch_flops_counts_forward_weight_and_input_gradients(bench):
    # 10 rows, 3 -> 4 -> 2: forward and weight gradients 12 + 8 MACs each, input gradient of the
    # second layer only (8); 2 flops per MAC.
    assert bench.epoch_flops(10, 3, [4], 2) == 2 * 10 * (2 * (12 + 8) + 8)


def test_mlpcli_worker_reports_time_memory_and_breakdown(bench):
    tiny = {"n": 70, "d": 12, "hidden": [8], "k": 3, "batch": 16, "epochs": 2, "dtypes": ["float32"]}
    before = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    with threadpool_limits(limits=None):  # the worker caps BLAS threads; give the rest of the suite its own back
        times, extra = bench.run_mlpcli(tiny, "float32", 1, bench.Memory())
    # (numba, when installed, imports scipy: its BLAS may be loaded now, with its own threads)
    assert {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["filepath"] in before} == before
    assert len(times) == tiny["epochs"] + 1 and all(t > 0 for t in times)
    assert extra["param_mb"] == pytest.approx((12 * 8 + 8 + 8 * 3 + 3) * 4 / 2**20)
    assert extra["matmul_s"] > 0 and extra["optimizer_s"] > 0 and extra["optimizer_numpy_s"] > 0
    # with numba installed the epochs ran its loop, timed beside NumPy's passes
    assert extra["optimizer_kernel"] == ("numba" if "optimizer_numba_s" in extra else "numpy")
    assert extra["optimizer_s"] == extra.get("optimizer_numba_s", extra["optimizer_numpy_s"])
    if Path("/proc/self/clear_refs").exists():
        assert extra["train_rise_mb"] >= 0 and extra["rss_before_train_mb"] > 0


def test_report_ratios_and_fastest_run(bench, tmp_path, capsys):
    rows = [{"workload": "B", "dtype": "float32", "flops": 2e9, "gemm_peak_gflops": 100.0,
             "mlpcli": {"seconds_per_epoch": 0.05, "param_mb": 1.0, "train_rise_mb": 3.0, "matmul_s": 0.02, "optimizer_s": 0.02},
             "torch": {"seconds_per_epoch": 0.1}, "sklearn": {"skipped": "sklearn not installed (sklearn)"}}]
    out = tmp_path / "r.json"
    bench.report(rows, argparse.Namespace(threads=2, repeat=1, out=str(out)))
    row = json.loads(out.read_text())["rows"][0]
    assert row["ratio_torch"] == pytest.approx(0.5) and row["ratio_sklearn"] is None
    assert row["gflops"] == pytest.approx(40.0) and row["share_of_peak"] == pytest.approx(0.4)
    assert row["train_rise_in_params"] == pytest.approx(3.0)
    assert "note: B float32 sklearn: sklearn not installed" in capsys.readouterr().out
    assert bench._faster({"seconds_per_epoch": 1.0}, {"seconds_per_epoch": 2.0})
    assert not bench._faster({"skipped": "x"}, {"seconds_per_epoch": 2.0})


@pytest.mark.parametrize("args,message", [(["--workloads", "AX"], "unknown workload X"),
                                          (["--frameworks", "jax"], "unknown framework jax"),
                                          (["--repeat", "0"], "--repeat must be at least 1")])
def test_bad_options_are_one_line_errors(args, message):
    proc = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_train_worker_times_the_commands_own_epochs_from_its_history(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the generated table goes here
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    tiny = {"n": 80, "d": 12, "hidden": [8], "k": 3, "batch": 16, "epochs": 2, "dtypes": ["float32"]}
    times, _ = bench.run_train(tiny, "float32", 1, bench.Memory())
    assert len(times) == tiny["epochs"] + 1 and all(t > 0 for t in times)
    table, n_total = bench.train_table(tiny, "float32")
    assert n_total == 100 and table.exists()  # n / 0.8 rows: the 20 % hold-out leaves the workload's n


def test_report_gives_the_train_epoch_against_torch_and_the_ensemble_ratio(bench, tmp_path, capsys):
    rows = [{"workload": "A", "dtype": "float32", "flops": 2e9, "gemm_peak_gflops": 100.0,
             "mlpcli": {"seconds_per_epoch": 0.5, "param_mb": 1.0, "train_rise_mb": 3.0, "matmul_s": 0.3,
                        "optimizer_s": 0.1, "optimizer_numpy_s": 0.1, "optimizer_numba_s": 0.04,
                        "optimizer_numexpr_s": 0.2, "optimizer_kernel": "numba"},
             "torch": {"seconds_per_epoch": 1.0}, "train": {"seconds_per_epoch": 0.55}}]
    ensemble = [{"options": "defaults (--hidden auto)", "ensemble_s": 20.0, "single_s": 8.0, "ratio": 2.5}]
    out = tmp_path / "r.json"
    bench.report(rows, argparse.Namespace(threads=2, repeat=1, out=str(out)), ensemble)
    doc = json.loads(out.read_text())
    row = doc["rows"][0]
    assert row["train_ratio_torch"] == pytest.approx(0.55)
    assert row["outside_optimizer"] == pytest.approx((0.55 - 0.1) / 0.55)
    assert doc["ensemble"] == ensemble
    text = capsys.readouterr().out
    assert "train epoch 0.55 x PyTorch's bare epoch (<= 0.6: met)" in text
    assert ("Adam steps of an epoch 0.100 s blocked NumPy, 0.040 s numba's one pass (0.40 x), 0.200 s numexpr "
            "(2.00 x); the epochs above ran numba's") in text
    assert "the default ensemble <= 2.5 x one network: met (2.50)" in text


def test_the_numexpr_candidate_computes_adams_update(bench):
    pytest.importorskip("numexpr")
    from mlpcli.engine import MLP, optim

    nets = [MLP(30, [20], 3, seed=0, dtype="float32") for _ in range(2)]
    grads = [n.parameter_groups()[1] for n in nets]
    rng = np.random.default_rng(0)
    for key, g in grads[0].items():
        g[...] = rng.normal(size=g.shape)
        grads[1][key][...] = g
    opt, fused = optim.Adam(lr=1e-3), bench.numexpr_adam(nets[1].parameter_groups()[0], grads[1], 1)
    for _ in range(3):
        opt.step(nets[0].parameter_groups()[0], grads[0])
        fused()
    np.testing.assert_allclose(nets[1].flat_params, nets[0].flat_params, rtol=1e-5, atol=1e-7)
