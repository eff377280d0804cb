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


def test_dev_stdout_is_standard_output_for_every_table_and_the_model(tmp_path):
    """`-o /dev/stdout` was "unsupported output format 'stdout'" (tables take their format from the
    extension), and writing through the /dev/stdout link to a pipe failed ("pipe:[...]": no such file).
    It is now "-": CSV rows on the pipe, the summary on stderr; `train -o /dev/stdout` writes the model's
    bytes there and its summary to stderr."""
    import subprocess
    import sys

    from tables import write_table

    data = write_table(tmp_path, seed=1)
    model = tmp_path / "m.mlp"
    base = [sys.executable, "-m", "mlpcli"]
    trained = subprocess.run([*base, "train", data, "--folds", "1", "--hidden", "4", "--epochs", "3",
                              "-o", "/dev/stdout", "--history", str(tmp_path / "h.csv")], capture_output=True)
    assert trained.returncode == 0, trained.stderr.decode()
    model.write_bytes(trained.stdout)  # the model's bytes alone, through a pipe
    assert subprocess.run([*base, "info", str(model)], capture_output=True).returncode == 0
    # "-o -" is standard output too, as for every other output; it wrote a file named "-"
    dashed = subprocess.run([*base, "train", data, "--folds", "1", "--hidden", "4", "--epochs", "3", "-o", "-"],
                            capture_output=True, cwd=tmp_path)
    assert dashed.returncode == 0, dashed.stderr.decode()
    assert dashed.stdout == trained.stdout and not (tmp_path / "-").exists()
    history = subprocess.run([*base, "train", data, "--folds", "1", "--hidden", "4", "--epochs", "3", "-q",
                              "-o", str(tmp_path / "m2.mlp"), "--history", "/dev/stdout"], capture_output=True)
    assert history.returncode == 0 and history.stdout.decode().splitlines()[0].startswith("epoch,train_loss")
    assert len(history.stdout.decode().splitlines()) == 4  # the header and 3 epochs: no summary table
    rows = subprocess.run([*base, "predict", str(model), data, "-o", "/dev/stdout"], capture_output=True)
    assert rows.returncode == 0, rows.stderr.decode()
    lines = rows.stdout.decode().splitlines()
    assert lines[0].split(",")[:2] == ["sample_id", "pred_label"] and all("│" not in line for line in lines)
    dash = subprocess.run([*base, "predict", str(model), data, "-o", "-"], capture_output=True)
    assert rows.stdout == dash.stdout and rows.stderr == dash.stderr  # exactly what "-" does


def test_an_output_file_that_stdout_is_redirected_to_keeps_its_format_and_dev_null_is_not_stdout(tmp_path):
    """Only names of standard output (/dev/stdout, /dev/fd/1) and the very pipe it is count as `-`: a parquet
    file that `>` also points at stays parquet, and /dev/null (every opening the same inode) is not standard
    output even when standard output is /dev/null or closed."""
    import subprocess
    import sys

    import pandas as pd

    from tables import write_table

    data = write_table(tmp_path, seed=2)
    model = tmp_path / "m.mlp"
    base = [sys.executable, "-m", "mlpcli"]
    assert subprocess.run([*base, "train", data, "--folds", "1", "--hidden", "4", "--epochs", "3", "-q", "-o",
                           str(model)], capture_output=True).returncode == 0
    out = tmp_path / "r.parquet"
    with open(out, "wb") as fh:
        res = subprocess.run([*base, "predict", str(model), data, "-o", str(out), "-q"], stdout=fh,
                             stderr=subprocess.PIPE)
    assert res.returncode == 0, res.stderr.decode()
    assert len(pd.read_parquet(out)) == len(pd.read_csv(data))
    for redirect in ({"stdout": subprocess.DEVNULL}, {"stdout": subprocess.DEVNULL, "extra": ["--json"]},
                     {"stdout": None, "close": True}):
        extra = redirect.get("extra", [])
        cmd = [*base, "predict", str(model), data, "-o", "/dev/null", "-q", *extra]
        if redirect.get("close"):
            res = subprocess.run(["sh", "-c", " ".join(cmd) + " >&-"], stderr=subprocess.PIPE)
        else:
            res = subprocess.run(cmd, stdout=redirect["stdout"], stderr=subprocess.PIPE)
        assert res.returncode == 0, (redirect, res.stderr.decode())


def test_dev_stderr_redirected_to_a_log_file_is_written_on_at_its_end_not_replaced(tmp_path):
    """`--history /dev/stderr` with `2> log` was "unsupported output format 'stderr'" (the name is a link to
    the regular log file, whose name gives no format); truncating or replacing the log would lose what the
    command wrote there before. A descriptor's name is written into as `>&2` does: CSV, after the log's
    lines. `/dev/fd/3` likewise; an unopened descriptor is a one-line error naming it."""
    from tables import write_table

    data = write_table(tmp_path, seed=3)
    log = tmp_path / "run.log"
    log.write_text("earlier line\n")
    with open(log, "a") as fh:
        res = mlpcli(["train", data, "--folds", "1", "--hidden", "4", "--epochs", "3", "-o", "m.mlp",
                      "--history", "/dev/stderr"], tmp_path, stderr=fh, stdout=subprocess.PIPE)
    assert res.returncode == 0, log.read_text()
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier line"
    at = next(i for i, line in enumerate(lines) if line.startswith("epoch,train_loss"))
    assert [line.split(",")[0] for line in lines[at + 1:at + 4]] == ["1", "2", "3"]
    assert "Training summary" in res.stdout.decode()  # the summary stays on standard output
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    oof = tmp_path / "fd3.csv"
    res = subprocess.run(["sh", "-c", 'exec "$@" 3> "$0"', str(oof), sys.executable, "-m", "mlpcli", "train", data,
                          "--hidden", "4", "--epochs", "3", "--folds", "3", "-q", "-o", "m2.mlp", "--oof", "/dev/fd/3"],
                         cwd=tmp_path, env=ENV, capture_output=True, timeout=300)  # `3> FILE` in the shell
    assert res.returncode == 0, res.stderr.decode()
    held_out = oof.read_text().splitlines()
    assert held_out[0].startswith("sample_id,") and len(held_out) > 10

    res = mlpcli(["train", data, "--folds", "1", "--hidden", "4", "--epochs", "3", "-q", "-o", "m3.mlp",
                  "--history", "/dev/fd/9"], tmp_path, capture_output=True, text=True)
    assert res.returncode != 0 and not (tmp_path / "m3.mlp").exists()
    assert len(res.stderr.strip().splitlines()) == 1 and "/dev/fd/9" in res.stderr, res.stderr


def test_a_named_pipe_or_process_substitution_is_read_like_standard_input(tmp_path):
    """`diagnose <(cat h.csv)`, `train <(zcat x.gz)` and a named pipe were "/dev/fd/63 is empty" (a pipe's
    size is 0) or "unsupported table format '63'"; the whole-table readers would also have opened the pipe
    twice. A pipe is read once, front to back, gunzipped when gzip, as "-" is."""
    import gzip

    from tables import write_table

    data = write_table(tmp_path, seed=4)
    raw = open(data, "rb").read()
    (tmp_path / "data.csv.gz").write_bytes(gzip.compress(raw))

    def through_pipe(args, payload, name="table"):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        try:
            proc = subprocess.Popen([sys.executable, "-m", "mlpcli", *[str(fifo) if a == "PIPE" else a for a in args]],
                                    cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            with open(fifo, "wb") as fh:  # blocks until the command opens it
                fh.write(payload)
            out, err = proc.communicate(timeout=300)
            return proc.returncode, out.decode(), err.decode()
        finally:
            fifo.unlink()

    code, out, err = through_pipe(["train", "PIPE", "--folds", "1", "--hidden", "4", "--epochs", "3", "-q", "-o",
                                   "m.mlp", "--history", "h.csv"], gzip.compress(raw))
    assert code == 0 and (tmp_path / "m.mlp").exists(), err
    code, out, err = through_pipe(["predict", "m.mlp", "PIPE", "-o", "-", "-q"], raw)
    assert code == 0 and len(out.splitlines()) == raw.count(b"\n"), err
    code, out, err = through_pipe(["diagnose", "PIPE", "--no-chart"], (tmp_path / "h.csv").read_bytes())
    assert code == 0 and "Traceback" not in err, err
    code, out, err = through_pipe(["predict", "m.mlp", "PIPE", "-o", "-"], b"")
    assert code == 1 and err.strip().splitlines() == [f"Error: {tmp_path / 'table'} is empty; expected a header "
                                                      "line and data rows"], err


def test_info_and_diagnose_on_a_closed_stdout_are_errors_not_silence(tmp_path, table):
    """Without --json, info's summary and diagnose's verdict are the result: with standard output closed
    they exited 0 having shown nothing."""
    assert mlpcli(["train", str(table), "--epochs", "3", "--hidden", "4", "--folds", "1", "-q", "-o", "m.mlp"],
                  tmp_path).returncode == 0
    for args, what in ((["info", "m.mlp"], "the summary"), (["diagnose", "m.mlp"], "the verdict")):
        res = mlpcli(args, tmp_path, close=(1,), stderr=subprocess.PIPE, text=True)
        assert res.returncode == 1 and res.stderr.strip().splitlines() == [
            f"Error: {what} writes to standard output, which was closed when the command started; redirect it to "
            "a file (> FILE) instead"], res.stderr
    res = mlpcli(["diagnose", "m.mlp", "--plot", "c.png"], tmp_path, close=(1,), stderr=subprocess.PIPE, text=True)
    assert res.returncode == 0 and (tmp_path / "c.png").exists()  # a plot is a result of its own


def test_json_documents_keep_warnings_on_stderr_too(tmp_path):
    """train, cv and tune with --json put their warnings in the document only, where a pipeline reading the
    document with jq never showed them; predict and evaluate showed theirs on stderr. Every command now does."""
    df = make_table("multiclass", seed=2, n_patients=30, n_features=6)
    df["flat"] = 1.0  # a constant feature: dropped, with a warning
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    fast = ["--hidden", "8", "--epochs", "4", "--folds", "2", "-q", "--json"]
    for args in (["train", str(path), *fast, "-o", "m.mlp"], ["cv", str(path), *fast, "--member-folds", "2"],
                 ["tune", str(path), *fast, "--grid", "lr=0.001"]):
        res = mlpcli(args, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert res.returncode == 0, (args[0], res.stderr)
        doc = json.loads(res.stdout)
        assert any("constant" in w for w in doc["warnings"]), args[0]
        assert "constant on the training rows" in res.stderr, (args[0], res.stderr)
