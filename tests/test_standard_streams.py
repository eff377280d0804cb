"""Standard streams a batch script closed (`>&-`, `2>&-`, `<&-`) and environments the command inherits:
no result silently lost, no note mixed into a result, no internal error."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlpcli import fileio
from mlpcli.cli.console import stderr_console
from mlpcli.errors import OutputError
from mlpcli.fileio import WholeWrites, write_whole
from cli_helpers import assert_clean_error, run
from tables import SAMPLE, make_table, write_table

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def mlpcli(args, cwd, close=(), env=None, **kw):
    """`python -m mlpcli ARGS` with the file descriptors `close` closed when it starts."""
    def closing():
        for fd in close:
            os.close(fd)
    return subprocess.run([sys.executable, "-m", "mlpcli", *args], cwd=cwd, env={**ENV, **(env or {})},
                          preexec_fn=closing, timeout=300, **kw)


def _train_here(data, model) -> None:
    """A small one-network model of ``data`` written to ``model``, trained in this process (a command line's
    start-up costs a second or two; where the model is not what a test is about, it need not pay them)."""
    assert run(["train", str(data), "--folds", "1", "--hidden", "4", "--epochs", "3", "-q", "-o",
                str(model)]).exit_code == 0


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
    assert mlpcli(["train", str(table), "--epochs", "3", "--hidden", "4", "--folds", "1", "-o", "m.mlp", "-q"],
                  tmp_path, close=(1,)).returncode == 0  # the model is the result: written
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
    # the members one after the other in this process (--n-jobs 1): the summary and its dashes are the same, without
    # starting two worker processes, which write nothing of it
    res = mlpcli(["train", str(table), "--epochs", "3", "--hidden", "4", "-o", "m.mlp", "--n-jobs", "1"], tmp_path,
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
    _train_here(data, model)  # the model is not under test: trained in this process
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
    _train_here(table, tmp_path / "m.mlp")
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


def _closed_pipe() -> int:
    """The write end of a pipe whose reader has gone (as after `| head` ended)."""
    r, w = os.pipe()
    os.close(r)
    return w


# ── a reader that has gone ───────────────────────────────────────────────────────────────────────────────


def test_writing_into_a_pipe_whose_reader_has_gone_is_a_broken_pipe_not_an_error():
    """`train -o - | head -c 100` ended with "Error: cannot write /dev/stdout: broken pipe", exit 1, where every
    other writer to standard output ends as a shell tool does, exit 141: the BrokenPipeError now reaches the
    command line's handler as it is."""
    w = _closed_pipe()
    try:
        with pytest.raises(BrokenPipeError):
            fileio.atomic_write(f"/dev/fd/{w}", lambda fh: fh.write(b"x" * 200_000))
    finally:
        os.close(w)


def test_a_full_device_is_still_an_output_error():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(OutputError, match="cannot write /dev/full: no space left on device"):
        fileio.atomic_write("/dev/full", lambda fh: fh.write(b"x" * 200_000))


def test_standard_error_whose_reader_has_gone_ends_the_command_with_141(monkeypatch):
    """`mlpcli train ... 2>&1 | head -3`: rich's own rule ended the command with exit 1 (an error, nothing said)
    after pointing standard *output* at /dev/null."""
    w = _closed_pipe()
    stream = open(w, "w")
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setattr("sys.stdout", io.StringIO())  # never pointed at /dev/null: a test run's own output
    try:
        with pytest.raises(SystemExit) as stopped:
            stderr_console().print("· a note")
        assert stopped.value.code == 141
        stderr_console().print("· later notes go nowhere, without another error")
    finally:
        stream.close()


def test_every_command_in_a_pipe_honours_columns(tmp_path, monkeypatch):
    """Piped output was laid out at 140 columns whatever COLUMNS said (info alone honoured it)."""
    import re

    model = str(tmp_path / "m.mlp")
    data = str(tmp_path / "d.csv")
    make_table(n_patients=12).to_csv(data, index=False)
    assert run(["train", data, "--hidden", "4", "--epochs", "2", "--folds", "1", "-q", "-o", model]).exit_code == 0
    monkeypatch.setenv("COLUMNS", "60")
    res = run(["predict", model, data, "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    widths = [len(line) for line in res.stdout.splitlines() if re.search(r"[┌│└─]", line)]
    assert widths and max(widths) <= 60, res.stdout


def test_a_closed_standard_input_is_named_as_closed(tmp_path):
    """`predict m.mlp - <&-` (a batch script's closed standard input) said "standard input is empty"."""
    from tables import write_table

    data = write_table(tmp_path, seed=2)
    model = tmp_path / "m.mlp"
    assert run(["train", data, "--folds", "1", "--epochs", "2", "--hidden", "4", "-q", "-o", str(model)]).exit_code == 0
    for args in (["predict", str(model), "-", "-o", str(tmp_path / "p.csv")], ["evaluate", str(model), "-"]):
        done = subprocess.run([sys.executable, "-m", "mlpcli", *args], preexec_fn=lambda: os.close(0),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("Error: DATA -: standard input is closed"), done.stderr
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("args", [["train", "-", "-o", "{d}/m.mlp", "-q"], ["cv", "-", "-q"], ["diagnose", "-"]],
                         ids=["train", "cv", "diagnose"])
def test_a_closed_standard_input_is_named_as_closed_in_the_commands_that_read_it_whole(tmp_path, monkeypatch, args):
    """`train - <&-` (and cv, tune, explain, diagnose, gradcheck) said "standard input is empty", where predict
    and evaluate said it was closed."""
    import mlpcli._entry as entry

    monkeypatch.setattr(entry, "CLOSED_STREAMS", {"stdin"})
    res = run([a.format(d=tmp_path) for a in args])
    assert_clean_error(res, "standard input is closed (the command started without one, as `<&-` leaves it)")
    assert "is empty" not in res.output and not (tmp_path / "m.mlp").exists()


class _Terminal(io.BytesIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stdin", ["closed", "empty", "terminal"])
def test_diagnose_asks_for_what_it_reads_on_standard_input(monkeypatch, stdin):
    """`diagnose - <&-` said "pipe a table into '-'", though diagnose reads a model file there as well as a history
    table; train, which reads a table, says so (the one message, ``sources.stdin_bytes``)."""
    import mlpcli._entry as entry

    if stdin == "closed":
        monkeypatch.setattr(entry, "CLOSED_STREAMS", {"stdin"})
    given = {"empty": b"", "terminal": _Terminal(b"")}.get(stdin)
    res = run(["diagnose", "-"], input=given)
    assert_clean_error(res, "pipe a model file or a history table into '-'")
    res = run(["train", "-", "-q"], input=given)
    assert_clean_error(res, "pipe a CSV or TSV table into '-'")


@pytest.mark.parametrize("args", [["info", "-"], ["predict", "-", "{d}/new.csv", "-q"],
                                  ["evaluate", "-", "{d}/lab.csv", "-q"]], ids=["info", "predict", "evaluate"])
def test_a_closed_standard_input_as_the_model_is_named_as_closed(files, monkeypatch, args):
    """`predict - data.csv <&-` and `info - <&-` read the /dev/null standard input was reopened on and said "it is
    empty (0 bytes; an interrupted copy or download?)", where every reader of a table on '-' says it is closed."""
    import mlpcli._entry as entry

    monkeypatch.setattr(entry, "CLOSED_STREAMS", {"stdin"})
    res = run([a.format(d=files) for a in args])
    assert_clean_error(res, "model -: standard input is closed (the command started without one, as `<&-` "
                       "leaves it)")
    assert "empty" not in res.output


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A labelled table, the same table without labels and a one-network model of it."""
    d = tmp_path_factory.mktemp("pipes")
    df = make_table("multiclass", n_patients=20, n_features=6)
    df.to_csv(d / "lab.csv", index=False)
    df.drop(columns=["label"]).to_csv(d / "new.csv", index=False)
    res = run(["train", str(d / "lab.csv"), "-o", str(d / "m.mlp"), "--epochs", "3", "--folds", "1",
               "--hidden", "4", "-q"])
    assert res.exit_code == 0, res.output
    return d


@contextmanager
def redirected(fd: int, path, mode: str):
    """File descriptor ``fd`` (0 or 1) on ``path`` for the block, as the shell's ``< path`` / ``>> path`` leave it."""
    saved = os.dup(fd)
    with open(path, mode) as fh:
        os.dup2(fh.fileno(), fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@pytest.mark.parametrize("command, target", [
    (["predict", "{m}", "{copy}", "-q"], "copy"),
    (["predict", "{m}", "{copy}", "-o", "{d}/p.csv", "-q"], "copy"),  # the summary table would go there
    (["evaluate", "{m}", "{copy}", "-q"], "copy"),
    (["info", "{copy}"], "model"),
    # every other command that reads a file and writes its summary to standard output
    (["train", "{copy}", "-o", "{d}/p.mlp", "--epochs", "2", "--folds", "1", "-q"], "copy"),
    (["cv", "{copy}", "--folds", "2", "--epochs", "2", "-q"], "copy"),
    (["diagnose", "{copy}"], "model"),
    (["explain", "{m}", "{copy}", "-q"], "copy"),
    (["gradcheck", "--model", "{m}", "--data", "{copy}", "-q"], "copy"),
], ids=["predict-rows", "predict-summary", "evaluate", "info", "train", "cv", "diagnose", "explain", "gradcheck"])
def test_stdout_appended_to_an_input_is_a_usage_error(files, tmp_path, command, target):
    """`mlpcli predict m.mlp cohort.csv >> cohort.csv` appended the predictions to the table it read, exit 0 (the
    table then failed to read: ragged rows); `info m.mlp >> m.mlp` wrote its summary into the model file."""
    source = files / ("m.mlp" if target == "model" else "lab.csv")
    copy = tmp_path / source.name
    copy.write_bytes(source.read_bytes())
    args = [a.format(m=files / "m.mlp", copy=copy, d=tmp_path) for a in command]
    with redirected(1, copy, "ab"):
        res = run(args)
    assert_clean_error(res, f"standard output is redirected to {copy}", "redirect standard output to another file",
                       code=2)
    assert copy.read_bytes() == source.read_bytes()
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.mlp").exists()


def test_stdout_onto_the_file_stdin_reads_is_a_usage_error(files, tmp_path):
    """DATA '-' with standard input redirected from the very file standard output is appended to."""
    copy = tmp_path / "new.csv"
    copy.write_bytes((files / "new.csv").read_bytes())
    with redirected(0, copy, "rb"), redirected(1, copy, "ab"):
        res = run(["predict", str(files / "m.mlp"), "-", "-q"])
    assert_clean_error(res, "the file standard input is redirected from, the input DATA", code=2)
    assert copy.read_bytes() == (files / "new.csv").read_bytes()


def test_stdout_to_another_file_still_works(files, tmp_path):
    out = tmp_path / "preds.csv"
    with redirected(1, out, "ab"):
        res = run(["predict", str(files / "m.mlp"), str(files / "new.csv"), "-q"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].startswith("sample_id,pred_label,prob_")  # the runner's stdout, not fd 1


def test_evaluate_on_a_closed_stdout_is_an_error_unless_the_document_goes_to_a_file(files, tmp_path, monkeypatch):
    """`evaluate ... >&-` computed the metrics and showed them nowhere, exit 0 (info and diagnose already refused)."""
    import mlpcli.cli.console as console

    monkeypatch.setattr(console, "CLOSED_STREAMS", {"stdout"})
    res = run(["evaluate", str(files / "m.mlp"), str(files / "lab.csv"), "-q"])
    assert_clean_error(res, "the metrics report writes to standard output, which was closed")
    res = run(["evaluate", str(files / "m.mlp"), str(files / "lab.csv"), "-q", "-o", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m.json").read_text().lstrip().startswith("{")


def test_cv_tune_and_explain_on_a_closed_stdout_are_errors_unless_a_result_goes_to_a_file(files, tmp_path,
                                                                                        monkeypatch):
    """`cv`, `tune` and `explain` with standard output closed (`>&-`) and no output file ran every fit or
    attribution and showed their report nowhere, exit 0, as `evaluate`, `info` and `diagnose` no longer do."""
    import mlpcli.cli.console as console

    monkeypatch.setattr(console, "CLOSED_STREAMS", {"stdout"})
    lab, fits = str(files / "lab.csv"), ["--folds", "2", "--epochs", "2", "--hidden", "4", "-q"]
    for args, what in ((["cv", lab, *fits], "the cross-validation report"),
                       (["tune", lab, "--grid", "lr=0.01,0.02", *fits], "the tuning report"),
                       (["explain", str(files / "m.mlp"), lab, "-q"], "the ranking")):
        res = run(args)
        assert_clean_error(res, f"{what} writes to standard output, which was closed when the command started")
    res = run(["explain", str(files / "m.mlp"), lab, "-q", "-o", str(tmp_path / "genes.csv")])
    assert res.exit_code == 0, res.output  # a file holds the result: nothing is lost
    assert (tmp_path / "genes.csv").read_text().startswith("class,rank,feature,")


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["table", "json"])
def test_gradcheck_on_a_closed_stdout_is_an_error_before_any_check(files, monkeypatch, json_flag):
    """`gradcheck >&-` ran every check and showed its table nowhere, exit 0 (with --json: the error came after
    every check); it has no option sending its result elsewhere, so it refuses at once, as cv, tune and explain do."""
    import mlpcli.cli.console as console
    import mlpcli.checks as checks
    import mlpcli.engine.gradcheck as gc

    ran = []
    real_run, real_check = gc.run, checks.check_model
    monkeypatch.setattr(gc, "run", lambda **kw: ran.append("suite") or real_run(**kw))
    monkeypatch.setattr(checks, "check_model", lambda *a, **kw: ran.append("model") or real_check(*a, **kw))
    monkeypatch.setattr(console, "CLOSED_STREAMS", {"stdout"})
    what = "--json" if json_flag else "the gradient check table"
    for args in (["gradcheck", "--only", "loss:ce"],
                 ["gradcheck", "--model", str(files / "m.mlp"), "--data", str(files / "lab.csv"), "--rows", "4"]):
        res = run(args + json_flag + ["-q"])
        assert_clean_error(res, f"{what} writes to standard output, which was closed when the command started")
    assert ran == []


@pytest.mark.parametrize("name", ["metrics.csv", "metrics.tsv.gz"])
def test_evaluate_out_named_as_another_format_is_a_usage_error(files, tmp_path, name):
    """`evaluate -o metrics.csv` wrote the JSON document into a file named .csv without a word."""
    res = run(["evaluate", str(files / "m.mlp"), str(files / "lab.csv"), "-q", "-o", str(tmp_path / name)])
    assert res.exit_code == 2, res.output
    assert "writes the JSON document" in res.output and "metrics.json" in res.output, res.output
    assert not (tmp_path / name).exists()


def test_evaluate_out_named_json_or_a_device_draws_no_warning(files, tmp_path):
    for out in (str(tmp_path / "metrics.json"), str(tmp_path / "metrics.txt"), os.devnull):
        res = run(["evaluate", str(files / "m.mlp"), str(files / "lab.csv"), "-q", "-o", out])
        assert res.exit_code == 0 and "--out" not in res.output, res.output


def test_threads_warning_outside_training_does_not_speak_of_training(files, monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    res = run(["predict", str(files / "m.mlp"), str(files / "new.csv"), "-q", "--threads", "2"])
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("warning: --threads 2")]
    assert warning and "SLURM_CPUS_PER_TASK=1" in warning[0] and "training" not in warning[0], res.output


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readme22")
    data = write_table(tmp, task="binary", seed=3)
    model = str(tmp / "m.mlp")
    res = run(["train", data, "--folds", "1", "--hidden", "4", "--epochs", "3", "--decision", "balanced", "-q",
               "-o", model])
    assert res.exit_code == 0, res.output
    return model, data


@pytest.mark.parametrize("args", [["-o", "-"], ["-o", "{tmp}/p.csv", "--shift-report", "-"]], ids=["rows", "shift"])
def test_predict_to_standard_output_gives_its_summary_on_stderr(binary_model, tmp_path, args):
    """README: "`/dev/stdout` ... is the same as `-`: CSV rows there and the summary on stderr". `predict -o -`
    printed no summary at all: the predicted counts, the positive class and its threshold under the balanced rule,
    the abstentions and OOD flags were lost to a pipeline. Standard output still holds the rows alone."""
    model, data = binary_model
    res = run(["predict", model, data, *[a.format(tmp=tmp_path) for a in args]])
    assert res.exit_code == 0, res.output
    assert "│" not in res.stdout  # no table in the reader's rows
    assert "Predictions" in res.stderr and "positive class" in res.stderr
    assert "its share of the training samples: the balanced decision rule" in res.stderr
    if args[1] == "-":
        assert res.stdout.splitlines()[0].startswith("sample_id,pred_label")
        assert "→ standard output" in res.stderr


def test_explain_to_standard_output_gives_its_summary_on_stderr(binary_model):
    """README: tables written to `-` (`explain -o` among them) put "the summary then ... to stderr". `explain -o -`
    dropped it, and with it the completeness check (how far the attributions are from summing to f(x) - f(baseline))
    and the stability of each ranking. Standard output still holds the ranking alone."""
    model, data = binary_model
    res = run(["explain", model, data, "-o", "-", "--top", "3"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0].startswith("class,rank,feature") and "│" not in res.stdout
    assert "completeness: attributions sum to" in res.stderr
    assert "ctrl: top 3 of" in res.stderr and "ranking of 3 rows → standard output" in res.stderr


class Stingy(io.RawIOBase):
    """A raw stream that takes at most ``most`` bytes a write (0: none at all)."""

    def __init__(self, most: int):
        super().__init__()
        self.most, self.data, self.calls = most, bytearray(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.calls += 1
        taken = bytes(memoryview(b).cast("B")[:self.most])
        self.data += taken
        return len(taken)


def test_write_whole_writes_every_byte_of_short_writes():
    raw = Stingy(7)
    data = bytes(range(256)) * 3
    assert write_whole(raw, data) == len(data)
    assert bytes(raw.data) == data and raw.calls == -(-len(data) // 7)


def test_write_whole_fails_when_the_stream_takes_nothing():
    with pytest.raises(OSError):
        write_whole(Stingy(0), b"abc")


def test_text_over_whole_writes_loses_nothing():
    """The console script's unbuffered stdout: text through WholeWrites over a raw stream that takes 5 bytes at a
    time arrives whole (a TextIOWrapper over the raw stream itself drops all but the first 5 of each write)."""
    raw = Stingy(5)
    text = io.TextIOWrapper(WholeWrites(raw), encoding="utf-8", newline="\n", write_through=True)
    text.write("sample_id,label\n" * 50)
    text.flush()
    assert raw.data.decode() == "sample_id,label\n" * 50
    bare = Stingy(5)
    plain = io.TextIOWrapper(bare, encoding="utf-8", newline="\n", write_through=True)
    plain.write("sample_id,label\n" * 50)
    plain.flush()
    assert len(bare.data) < 50 * 16  # what the fix is for


def _file_size_limit(n_bytes: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))
    return limit


@pytest.mark.parametrize("unbuffered", [True, False])
def test_predict_to_stdout_past_a_file_size_limit_is_an_error_not_a_cut_table(tmp_path, model, unbuffered):
    """`ulimit -f 8; PYTHONUNBUFFERED=1 mlpcli predict m.mlp t.csv > out.csv` wrote 8 KiB of the table and exited 0:
    the one write of the table was short and the rest was dropped. Now the error names standard output, exit 1,
    buffered or not."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    out = tmp_path / "out.csv"
    with open(out, "wb") as fh:
        res = subprocess.run([sys.executable, "-m", "mlpcli", "predict", model, SAMPLE, "-q"], stdout=fh,
                             stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_file_size_limit(8192),
                             timeout=300)
    assert res.returncode == 1, res.stderr
    assert "cannot write standard output: file too large" in res.stderr and "Traceback" not in res.stderr
    assert out.stat().st_size == 8192  # what the limit let through; the error says the rest is missing


def test_unbuffered_predict_to_stdout_is_the_buffered_output(tmp_path, model):
    outs = []
    for unbuffered in (True, False):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        if unbuffered:
            env["PYTHONUNBUFFERED"] = "1"
        res = subprocess.run([sys.executable, "-m", "mlpcli", "predict", model, SAMPLE, "-q"], capture_output=True,
                             env=env, timeout=300)
        assert res.returncode == 0, res.stderr
        outs.append(res.stdout)
    assert outs[0] == outs[1] and outs[0].count(b"\n") == 612


def test_evaluate_to_standard_output_puts_its_tables_on_stderr(site_model):
    res = run(["evaluate", str(site_model / "m.mlp"), str(site_model / "same.csv"), "-o", "-"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == 180
    assert "Metrics on 180 samples" in res.stderr


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_quiet_leaves_stderr_empty_when_stdout_holds_the_result(files, command):
    """`predict m.mlp new.csv -q > p.csv` printed its summary box on stderr (and `evaluate -o - -q` 33 lines of
    tables), though -q promises nothing there but warnings: a pipeline's log filled with them."""
    data = "new.csv" if command == "predict" else "lab.csv"
    proc = mlpcli([command, "m.mlp", data, "-o", "-", "-q"], files, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr
    assert all(line.startswith("warning:") for line in proc.stderr.splitlines()), proc.stderr  # (evaluate: its
    # table is the model's training rows, said in a warning, which -q does not hide)
    loud = mlpcli([command, "m.mlp", data, "-o", "-"], files, capture_output=True, text=True)
    assert loud.stdout == proc.stdout and loud.stderr.strip()  # the summary without -q, the same result
