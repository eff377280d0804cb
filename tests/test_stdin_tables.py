"""Tables and models from the places shell pipelines read them: /dev/stdin and /dev/fd/N redirected from a file,
compressed standard input, binary formats piped, a terminal, and descriptors that must not be recorded as the
table's name."""

import bz2
import gzip
import io
import lzma
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlpcli.data import read_table
from mlpcli.errors import DataError
from cli_helpers import assert_clean_error, run
from tables import make_table


ROOT = Path(__file__).resolve().parents[1]


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("readers")
    table = make_table("multiclass", n_patients=12, n_features=5)
    table.to_csv(d / "x.csv", index=False)
    new = table.drop(columns="label")
    new.to_csv(d / "new.csv", index=False)
    new.to_csv(d / "new.csv.gz", index=False)
    new.to_parquet(d / "new.parquet")
    model = d / "m.mlp"
    result = run(["train", str(d / "x.csv"), "--epochs", "3", "--folds", "1", "--hidden", "8", "-o", str(model)])
    assert result.exit_code == 0, result.output
    result = run(["predict", str(model), str(d / "new.csv"), "-o", str(d / "ref.csv")])
    assert result.exit_code == 0, result.output
    return d


@pytest.mark.parametrize("name", ["new.csv.gz", "new.parquet"])
def test_predict_dev_stdin_redirected_from_a_file_reads_that_file(files, tmp_path, name):
    out = tmp_path / "p.csv"
    with open(files / name, "rb") as stdin:
        proc = subprocess.run([sys.executable, "-m", "mlpcli", "predict", str(files / "m.mlp"), "/dev/stdin",
                               "-o", str(out)], stdin=stdin, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == (files / "ref.csv").read_bytes()


def test_descriptor_name_takes_the_format_of_its_file_or_is_sniffed(files, tmp_path):
    expected = read_table(files / "new.csv")
    plain = tmp_path / "counts"  # no suffix: read as standard input is, gzip found by its magic bytes
    plain.write_bytes((files / "new.csv.gz").read_bytes())
    for path in (files / "new.parquet", files / "new.csv.gz", plain):
        fd = os.open(path, os.O_RDONLY)
        try:
            pd.testing.assert_frame_equal(read_table(f"/dev/fd/{fd}"), expected, check_dtype=False)
        finally:
            os.close(fd)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress], ids=["gzip", "bz2", "xz"])
def test_compressed_standard_input_reads_as_the_file(files, tmp_path, compress):
    raw = compress((files / "new.csv").read_bytes())
    pd.testing.assert_frame_equal(read_table("-", stdin=io.BytesIO(raw)), read_table(files / "new.csv"))
    out = tmp_path / "p.csv"
    result = run(["predict", str(files / "m.mlp"), "-", "-o", str(out)], input=raw)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (files / "ref.csv").read_bytes()


@pytest.mark.parametrize("head, what", [
    (None, "a Parquet file (.parquet) cannot be read from standard input; give its path"),
    (b"\x89HDF\r\n\x1a\n" + bytes(64), "an HDF5 file (.h5ad, .h5) cannot be read from standard input"),
    (b"PK\x03\x04" + bytes(64), "a zip archive (.zip, an .xlsx workbook) cannot be read from standard input"),
    (b"(\xb5/\xfd" + bytes(64), "zstd-compressed data cannot be read from standard input; decompress it first"),
], ids=["parquet", "hdf5", "zip", "zstd"])
def test_binary_file_on_standard_input_is_named(files, head, what):
    raw = (files / "new.parquet").read_bytes() if head is None else head
    result = run(["predict", str(files / "m.mlp"), "-", "-o", "-"], input=raw)  # streamed reader
    assert_clean_error(result, what)
    with pytest.raises(DataError, match=re.escape(what.split(";")[0])):  # whole-table reader (train, evaluate)
        read_table("-", stdin=io.BytesIO(raw))


def test_header_starting_with_gene_par1_is_text():
    frame = read_table("-", stdin=io.BytesIO(b"PAR1,PAR2\n1,2\n3,4\n"))
    assert list(frame.columns) == ["PAR1", "PAR2"] and frame.shape == (2, 2)


class _Terminal(io.BytesIO):
    def isatty(self):
        return True


def test_standard_input_from_a_terminal_is_refused_without_waiting(files):
    with pytest.raises(DataError, match="standard input is a terminal; pipe a CSV or TSV table into '-'"):
        read_table("-", stdin=_Terminal(b""))
    result = run(["predict", str(files / "m.mlp"), "-", "-o", "-"], input=_Terminal(b""))
    assert_clean_error(result, "standard input is a terminal")


def test_quoted_tilde_not_found_suggests_the_expanded_path(files, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "t.csv").write_bytes((files / "new.csv").read_bytes())
    with pytest.raises(DataError, match=r"table file not found: ~/t\.csv \(a quoted ~ is not expanded by the shell: "
                                        + str(tmp_path) + r"/t\.csv\?\)"):
        read_table("~/t.csv")


def test_model_and_data_both_from_standard_input_is_a_usage_error(three_classes, tmp_path):
    """`cat m.mlp | mlpcli predict /dev/stdin -`: the model took every byte of standard input, then the table was
    "standard input is empty"; two inputs cannot share the one stream."""
    d, _ = three_classes
    model = (d / "m.mlp").read_bytes()
    for args in (["predict", "/dev/stdin", "-", "-o", str(tmp_path / "p.csv")], ["evaluate", "-", "/dev/stdin"]):
        r = run(args, input=model)
        assert_clean_error(r, f"MODEL {args[1]} and DATA {args[2]} would both read standard input", code=2)
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.skipif(not __import__("os").path.isdir("/dev/fd"), reason="needs /dev/fd")
def test_a_table_read_through_a_descriptor_records_no_descriptor_number(tmp_path):
    """`train <(zcat x.csv.gz)` recorded "63", the number bash chose, so the same data gave other model bytes
    under another shell."""
    import os

    from mlpcli import model_io

    make_table("multiclass", n_patients=20).to_csv(tmp_path / "t.csv", index=False)
    outs = []
    for i in range(2):
        fd = os.open(tmp_path / "t.csv", os.O_RDONLY)
        dup = os.dup2(fd, 40 + i)  # another number each time
        try:
            out = tmp_path / f"m{i}.mlp"
            assert run(["train", f"/dev/fd/{dup}", "-o", str(out), "--hidden", "4", "--epochs", "2", "-q"]).exit_code == 0
            outs.append(out.read_bytes())
        finally:
            os.close(dup)
            os.close(fd)
    assert outs[0] == outs[1]
    assert model_io.load(tmp_path / "m0.mlp").provenance["data_file"] == "(a pipe or descriptor)"
