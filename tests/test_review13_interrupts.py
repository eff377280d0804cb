"""Outputs whose reader has gone, model files that are not what they should be, output paths that cannot be
written: each ends the command on one line with the usual exit code, never a traceback or a wrong word."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import threading

import click
import numpy as np
import pytest

from mlpcli import fileio, model_io
from mlpcli.cli._common import check_writable, stderr_console
from mlpcli.data import PreprocessConfig, Preprocessor
from mlpcli.engine import MLP
from mlpcli.errors import ModelFileError, OutputError


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny model file (3 features, 2 classes), built without training."""
    rng = np.random.default_rng(0)
    pre = Preprocessor(PreprocessConfig()).fit(rng.normal(size=(20, 3)), ["a", "b", "c"])
    model = model_io.Model.single(MLP(3, [4], 2, seed=0), pre, task="multiclass", classes=["x", "y"],
                                  feature_names=["a", "b", "c"], target_names=["label"], loss={"name": "ce", "params": {}})
    path = tmp_path_factory.mktemp("model") / "m.mlp"
    model_io.save(model, path)
    return path


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


# ── model files that are not model files ─────────────────────────────────────────────────────────────────


def _contents(model_file) -> dict[str, bytes]:
    return {
        "empty (0 bytes": b"",
        "text (a data table given as the model?)": b"sample_id,label,g1\nS1,A,0.5\n",
        "gzip-compressed data": gzip.compress(b"sample_id,label\n"),
        "an HDF5 file (an .h5ad": b"\x89HDF\r\n\x1a\n" + bytes(100),
        "a Parquet table": b"PAR1" + bytes(100),
        "a Python pickle": pickle.dumps({"coef": [1.0, 2.0]}, protocol=4),
        "a zip archive that is truncated or damaged": model_file.read_bytes()[:-30],
    }


def test_a_file_that_is_no_model_file_is_named_for_what_it_is(model_file, tmp_path):
    """A data table given where the model goes (the arguments swapped), an empty file, a truncated copy,
    another program's pickle: each was "corrupt or truncated: File is not a zip file"."""
    for i, (needle, data) in enumerate(_contents(model_file).items()):
        path = tmp_path / f"wrong{i}.mlp"
        path.write_bytes(data)
        with pytest.raises(ModelFileError) as err:
            model_io.load(path)
        message = str(err.value)
        assert message.startswith(f"{path} is not a readable mlpcli model file: it is "), message
        assert needle in message and "\n" not in message, message


def test_a_model_through_a_pipe_is_read(model_file):
    """`mlpcli predict <(zcat m.mlp.gz) data.csv`, `info /dev/stdin < m.mlp`: a pipe cannot be seeked in, and
    the file was refused as "corrupt or truncated"."""
    data = model_file.read_bytes()
    r, w = os.pipe()
    feeder = threading.Thread(target=_feed, args=(w, data))
    feeder.start()
    try:
        model = model_io.load(f"/dev/fd/{r}")
    finally:
        feeder.join()
        os.close(r)
    assert model.classes == ["x", "y"] and model.feature_names == ["a", "b", "c"]


def test_info_on_a_model_through_a_pipe_says_so_not_0_bytes(model_file):
    """`info <(zcat m.mlp.gz)` showed "0 bytes, modified <now>": the pipe's, not the model's."""
    from mlpcli.model_summary import describe

    data = model_file.read_bytes()
    r, w = os.pipe()
    feeder = threading.Thread(target=_feed, args=(w, data))
    feeder.start()
    try:
        doc = describe(model_io.load(f"/dev/fd/{r}"), f"/dev/fd/{r}")
    finally:
        feeder.join()
        os.close(r)
    assert doc["file"]["bytes"] is None and doc["file"]["modified"] is None


def _feed(w: int, data: bytes) -> None:
    with open(w, "wb") as fh:
        fh.write(data)


def test_a_pipe_that_holds_no_model_is_refused_from_its_first_bytes():
    """/dev/zero is not read to its (absent) end."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(ModelFileError, match="/dev/zero is not a readable mlpcli model file"):
        model_io.load("/dev/zero")


def test_a_dash_for_the_model_reads_standard_input(monkeypatch):
    """"-" is standard input for the model as for every input (it was refused as "not found" by predict, evaluate,
    info and explain while diagnose read it); nothing there is named for what it is."""
    monkeypatch.setattr(os, "isatty", lambda fd: False)
    with pytest.raises(ModelFileError, match=r"- \(standard input\) is not a readable mlpcli model file"):
        model_io.load("-")  # pytest's standard input holds no model


# ── output paths that cannot be written ──────────────────────────────────────────────────────────────────


def test_an_output_that_is_a_symbolic_link_loop_is_a_one_line_error(tmp_path):
    """A link to itself ended in "internal error (RuntimeError: Symlink loop ...)"."""
    loop = tmp_path / "self.csv"
    loop.symlink_to("self.csv")
    with pytest.raises(click.ClickException, match="--out: .*self.csv is a symbolic link that leads back to itself"):
        check_writable(str(loop), "--out")


def test_an_output_under_a_file_says_it_is_not_a_directory(tmp_path):
    """`-o data.csv/preds.csv` said "directory .../data.csv does not exist", next to the file it names."""
    table = tmp_path / "data.csv"
    table.write_text("a\n1\n")
    with pytest.raises(click.ClickException, match=r"--out: .*data.csv is a file, not a directory"):
        check_writable(str(table / "preds.csv"), "--out")
