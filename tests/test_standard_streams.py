"""Standard streams a batch script closed (`>&-`, `2>&-`, `<&-`) and environments the command inherits:
no result silently lost, no note mixed into a result, no internal error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tables import make_table

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def mlpcli(args, cwd, close=(), env=None, **kw):
    """`python -m mlpcli ARGS` with the file descriptors `close` closed when it starts."""
    def closing():
        for fd in close:
            os.close(fd)
    return subprocess.run([sys.executable, "-m", "mlpcli", *args], cwd=cwd, env={**ENV, **(env or {})},
                          preexec_fn=closing, timeout=300, **kw)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("streams") / "t.csv"
    make_table("binary", n_patients=30).to_csv(path, index=False)
    return path


def test_closed_stderr_keeps_notes_out_of_the_results_and_workers_alive(tmp_path, table):
    """With stderr closed the notes went to stdout, into a --json document or a CSV on '-', and `train`'s
    worker processes failed (sys.stderr None in them): an internal error and no model."""
    res = mlpcli(["train", str(table), "--epochs", "3", "--hidden", "4", "-o", "m.mlp", "--json", "--n-jobs", "2"],
                 tmp_path, close=(2,), stdout=subprocess.PIPE, text=True)
    assert res.returncode == 0 and json.loads(res.stdout)["model"] == "m.mlp"
    assert (tmp_path / "m.mlp").exists()
    res = mlpcli(["predict", "m.mlp", str(table), "-o", "-"], tmp_path, close=(2,), stdout=subprocess.PIPE, text=True)
    assert res.returncode == 0 and res.stdout.startswith("sample_id,")


def test_a_result_for_a_closed_stdout_is_an_error_not_a_silent_loss(tmp_path, table):
    assert mlpcli(["train", str(table), "--epochs", "3", "--hidden", "4", "-o", "m.mlp", "-q"], tmp_path,
                  close=(1,)).returncode == 0  # the model is the result: written
    assert (tmp_path / "m.mlp").exists()
    for args, what in ((["predict", "m.mlp", str(table), "-o", "-"], "-o -"), (["info", "m.mlp", "--json"], "--json"),
                       (["evaluate", "m.mlp", str(table), "--json"], "--json")):
        res = mlpcli(args, tmp_path, close=(1,), stderr=subprocess.PIPE, text=True)
        assert res.returncode == 1, (args, res.stderr)
        assert res.stderr.strip().splitlines() == [f"Error: {what} writes to standard output, which was closed "
                                                   "when the command started; redirect it to a file (> FILE) instead"]
    res = mlpcli(["predict", "m.mlp", "-", "-o", "p.csv"], tmp_path, close=(0,), stderr=subprocess.PIPE, text=True)
    assert res.returncode == 1 and "standard input" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "p.csv").exists()


def test_an_output_encoding_without_dashes_and_an_openmp_thread_list_are_harmless(tmp_path, table):
    """PYTHONIOENCODING=latin-1 made `train` fail after writing its model (an em dash in the summary);
    OMP_NUM_THREADS=4,2 (OpenMP's nested form) stopped every command in numexpr's int()."""
    res = mlpcli(["train", str(table), "--epochs", "3", "--hidden", "4", "-o", "m.mlp"], tmp_path,
                 env={"PYTHONIOENCODING": "latin-1"}, capture_output=True)
    assert res.returncode == 0, res.stderr
    res = mlpcli(["info", "m.mlp"], tmp_path, env={"PYTHONIOENCODING": "latin-1"}, capture_output=True)
    assert res.returncode == 0, res.stderr
    for value in ("4,2", "garbage", "0"):
        res = mlpcli(["info", "m.mlp", "--json"], tmp_path, env={"OMP_NUM_THREADS": value}, capture_output=True,
                     text=True)
        assert res.returncode == 0 and json.loads(res.stdout) and "Error" not in res.stderr, res.stderr
