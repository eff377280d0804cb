"""What is given where a model file goes: data tables, empty and truncated files, other programs' pickles and zip
archives, models through pipes or standard input, and a model file given as the table."""

import gzip
import os
import pickle
import threading

import numpy as np
import pytest

from mlpcli import model_io
from mlpcli.data import PreprocessConfig, Preprocessor
from mlpcli.engine import MLP
from mlpcli.errors import ModelFileError
from cli_helpers import assert_clean_error
from cli_helpers import run


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


def test_a_model_file_given_as_the_table_is_named(three_classes, tmp_path):
    """`predict m.mlp m-copy.csv`, or `train model.mlp`: "the header line is not UTF-8 text (a binary file?)"."""
    d, _ = three_classes
    copy = tmp_path / "data.csv"
    copy.write_bytes((d / "m.mlp").read_bytes())
    for args in (["predict", str(d / "m.mlp"), str(copy), "-o", "-"], ["train", str(d / "m.mlp")],
                 ["evaluate", str(d / "m.mlp"), str(copy)]):
        assert_clean_error(run(args), "is an mlpcli model file, not a data table", "mlpcli predict MODEL DATA")


def test_other_zip_archives_given_as_the_model_are_named(tmp_path):
    import zipfile

    np.savez(tmp_path / "arrays.npz", x=np.ones(3))
    with zipfile.ZipFile(tmp_path / "d.csv.zip", "w") as zf:
        zf.writestr("d.csv", "a,b\n1,2\n")
    assert_clean_error(run(["info", str(tmp_path / "arrays.npz")]), "a NumPy .npz archive of arrays")
    assert_clean_error(run(["info", str(tmp_path / "d.csv.zip")]), "a zip archive holding 'd.csv' (a zipped data table?")


def test_a_model_can_come_from_standard_input_in_every_command(site_model):
    import subprocess
    import sys

    for args in (["predict", "-", "same.csv", "-q", "-o", "-"], ["evaluate", "-", "same.csv", "-q", "--json"],
                 ["info", "-", "--json"], ["explain", "-", "same.csv", "-q", "-o", "-"]):
        with open(site_model / "m.mlp", "rb") as model:
            done = subprocess.run([sys.executable, "-m", "mlpcli", *args], stdin=model, capture_output=True,
                                  cwd=site_model)
        assert done.returncode == 0, (args, done.stderr.decode())
    with open(site_model / "m.mlp", "rb") as model:
        done = subprocess.run([sys.executable, "-m", "mlpcli", "predict", "-", "-"], stdin=model,
                              capture_output=True, text=True, cwd=site_model)
    assert done.returncode == 2 and "would both read standard input" in done.stderr


def test_a_model_from_standard_input_is_named_so_and_gradcheck_reads_stdin_once(site_model):
    import subprocess
    import sys

    bad = subprocess.run([sys.executable, "-m", "mlpcli", "predict", "-", "same.csv"], input=b"garbage\n",
                         capture_output=True, cwd=site_model)
    assert bad.returncode == 1 and b"- (standard input) is not a readable mlpcli model file" in bad.stderr
    with open(site_model / "m.mlp", "rb") as model:
        both = subprocess.run([sys.executable, "-m", "mlpcli", "gradcheck", "--model", "-", "--data", "-"],
                              stdin=model, capture_output=True, text=True, cwd=site_model)
    assert both.returncode == 2 and "would both read standard input" in both.stderr
