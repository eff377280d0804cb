"""Training's reader of text tables against the pandas reader it falls back to.

``data.load_dataset`` reads the feature columns of a text table with the reader ``predict`` uses
(``text_features.read_text_features``: a numpy tokenizer, pyarrow's CSV parser, pandas' for a piece neither
reads), the other columns typed by pandas. When that reader gives up (a feature cell that is not a number,
text it cannot read) the whole table is read by pandas instead. Each table here is loaded twice, once as it
is and once with the piecewise reader switched off, and the two results must be the same Dataset: names,
ids, groups, batches, labels, task, notes, warnings, and the same message when the table is refused. Feature
values are compared as float64 to within 1e-15 (the piecewise reader is correctly rounded, pandas' parser
may be a unit in the last place off); the piecewise reader keeps them float32 exactly when every value is
a float32 number, where the pandas path gives float64.

Where the two differ on purpose, the piecewise reader reads numbers as ``predict`` does and that is what is
checked: a NaN written in any case or sign (``NAN``, ``+nan``) is a missing value, an overflowing number
(``1e500``) is infinite, a number beyond float32's range is refused with the value-limit message; each is
refused naming its column, at loading or by preprocessing. A lone carriage return inside an unquoted field
is part of that field, as the field check and ``predict`` read it (pandas ends a line there).

Also checked: a header whose quoted cells hold line ends is one header, never read in part as a data row;
tables cut into many small pieces give the numbers of one piece; random text in label and batch columns
(hypothesis) reads alike."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import threading
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mlpcli import data
from mlpcli.data import text_features
from mlpcli.data.io import NA_TOKENS
from mlpcli.errors import DataError
from cli_helpers import run

HEADER = "sample_id,patient_id,label,a,b"
ROWS = ["S1,P1,x,1.5,2", "S2,P1,y,2.5,3", "S3,P2,x,3.5,4", "S4,P2,y,4.5,5"]

# pandas' default missing-value tokens (``read_csv``'s na_values); pyarrow's are these but "None" and "<NA>"
PANDAS_NA_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")


def _text(*rows: str, header: str = HEADER, end: str = "\n") -> str:
    return "".join(line + end for line in (header, *rows))


def _write(tmp_path, content: str | bytes, name: str = "t.csv") -> str:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return str(path)


class _Outcome:
    """A load_dataset result: the dataset and notes, or the DataError's message; `fast`: whether the
    piecewise reader read the feature columns (None: it was not asked)."""

    def __init__(self, ds=None, notes=None, error=None, fast=None):
        self.ds, self.notes, self.error, self.fast = ds, notes, error, fast


def _load(monkeypatch, path, fast: bool, stdin: bytes | None = None, **kwargs) -> _Outcome:
    read = text_features.read_text_features
    used = []

    def spy(*args, **kw):
        result = read(*args, **kw) if fast else None
        used.append(result is not None)
        return result

    with monkeypatch.context() as m:
        m.setattr(text_features, "read_text_features", spy)
        if stdin is not None:
            kwargs["stdin"] = io.BytesIO(stdin)
        try:
            ds, notes = data.load_dataset(path, **kwargs)
        except DataError as exc:
            return _Outcome(error=str(exc), fast=used[-1] if used else None)
    return _Outcome(ds, notes, fast=used[-1] if used else None)


def _strings(values) -> list[str] | None:
    return None if values is None else [repr(v) for v in np.asarray(values).tolist()]


def _float32_exact(X: np.ndarray) -> bool:
    """Whether every value of X is a float32 number (NaN included)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.array_equal(X.astype(np.float32).astype(np.float64), X, equal_nan=True))


def _assert_same(fast: _Outcome, slow: _Outcome) -> None:
    """The two paths' results are the same (feature values within the pandas parser's error); the piecewise
    reader's matrix is float32 exactly when every value is a float32 number, the pandas path's float64."""
    assert fast.error == slow.error
    if fast.error is not None:
        return
    a, b = fast.ds, slow.ds
    Xa, Xb = np.asarray(a.X, dtype=np.float64), np.asarray(b.X, dtype=np.float64)
    assert Xa.shape == Xb.shape
    assert np.allclose(Xa, Xb, rtol=1e-15, atol=0, equal_nan=True)
    number = ~np.isnan(Xb)
    assert np.array_equal(np.signbit(Xa[number]), np.signbit(Xb[number]))  # -0.0 stays -0.0 (a NaN's sign: any)
    assert b.X.dtype == np.float64
    if fast.fast:
        assert a.X.dtype == (np.float32 if _float32_exact(Xa) else np.float64)
    else:
        assert a.X.dtype == np.float64
    for attr in ("feature_names", "task", "classes", "target_names", "notes", "warnings"):
        assert getattr(a, attr) == getattr(b, attr), attr
    for attr in ("ids", "groups", "batches"):
        assert _strings(getattr(a, attr)) == _strings(getattr(b, attr)), attr
    assert (a.y is None) == (b.y is None)
    if a.y is not None:
        assert a.y.dtype == b.y.dtype and np.array_equal(a.y, b.y, equal_nan=a.y.dtype.kind == "f")
    assert fast.notes == slow.notes


def _compare(monkeypatch, path, *, fast_reads: bool | None = True, stdin: bytes | None = None, **kwargs) -> _Outcome:
    """Load `path` both ways and check they agree; `fast_reads`: whether the piecewise reader is expected to
    read it (None: either way). Returns the piecewise reader's outcome."""
    fast = _load(monkeypatch, path, True, stdin, **kwargs)
    slow = _load(monkeypatch, path, False, stdin, **kwargs)
    _assert_same(fast, slow)
    if fast_reads is not None:
        assert fast.fast is fast_reads
    return fast


def _refused(monkeypatch, path, column: str, match: str, **kwargs) -> str:
    """The message refusing `path` (at loading, or when preprocessing fits), which names `column`."""
    outcome = _load(monkeypatch, path, True, **kwargs)
    message = outcome.error
    if message is None:
        with pytest.raises(DataError) as caught:
            data.Preprocessor(data.PreprocessConfig()).fit(outcome.ds.X, outcome.ds.feature_names)
        message = str(caught.value)
    assert repr(column) in message and re.search(match, message), message
    return message


# ── quoting: separators, line ends and quotes inside the other columns ─────────────────────────────────


@pytest.mark.parametrize("first", [
    '"S,1",P1,x,1.5,2',  # the separator
    '"S\n1",P1,x,1.5,2',  # a line end
    '"S\r\n1",P1,x,1.5,2',
    '"S\r1",P1,x,1.5,2',  # a lone carriage return: must be quoted when written back for pandas to type
    'S1,"P\r1",x,1.5,2',
    'S1,P1,"x""q",1.5,2',  # a doubled quote
    'S1,P1,"x",1.5,2',
    'S1,P1,x,"1.5","2"',  # quoted numbers
    'S1,P1,x"y,1.5,2',  # a quote inside a field
    'S1,P1,"x" ,1.5,2',
    ' S1 ,P1, x ,1.5 , 2',  # spaces around ids, labels and numbers
])
def test_quoted_and_padded_fields_read_alike(tmp_path, monkeypatch, first):
    _compare(monkeypatch, _write(tmp_path, _text(first, *ROWS[1:])), fast_reads=None)


def test_an_id_holding_a_carriage_return_stays_one_row(tmp_path, monkeypatch):
    # the other columns are typed by pandas from their text written back as CSV: a lone "\r" must be quoted
    ds = _compare(monkeypatch, _write(tmp_path, _text('"S\r1",P1,x,1.5,2', *ROWS[1:]))).ds
    assert list(ds.ids) == ["S\r1", "S2", "S3", "S4"] and list(ds.groups) == ["P1", "P1", "P2", "P2"]
    assert ds.X[:, 0].tolist() == [1.5, 2.5, 3.5, 4.5]


@pytest.mark.parametrize("seed", [3, 4])
def test_quoted_line_ends_across_pieces(tmp_path, monkeypatch, seed):
    rng = np.random.default_rng(seed)
    forms = ["S{}", '"S\n{}"', '"S,{}"', '"S""{}"', '"S\r\n{}"', '"S\r{}"']
    rows = [f"{forms[rng.integers(len(forms))].format(i)},\"P\r\n{i // 3}\",\"{'xy'[i % 2]}\n\",{i / 7},{i % 5}"
            for i in range(600)]
    path = _write(tmp_path, _text(*rows))
    monkeypatch.setattr(text_features, "DEFAULT_CHUNK_BYTES", 1 << 10)  # pieces of 4 KiB of text, the smallest
    ds = _compare(monkeypatch, path).ds
    assert ds.n_samples == 600 and len(set(ds.ids)) == 600 and len(set(ds.groups)) == 200


# ── missing values ───────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("token, column, quoted", [
    (token, column, quoted) for token in [*PANDAS_NA_VALUES, " ", " NA", "NA ", "nan "]
    for column in (0, 1, 2, 3)  # id, patient, label, feature
    for quoted in (False, True)
    if (token, column) != ("nan ", 3)  # a NaN padded with spaces: a missing feature value (see below)
    and (not quoted or token in ("", "NA", "NaN", "None", "<NA>", " NA", "nan "))  # quoted: a few suffice
])
def test_missing_value_tokens_read_alike(tmp_path, monkeypatch, token, column, quoted):
    cells = ROWS[0].split(",")
    cells[column] = f'"{token}"' if quoted else token
    _compare(monkeypatch, _write(tmp_path, _text(",".join(cells), *ROWS[1:])), fast_reads=None)


@pytest.mark.parametrize("token", ["NAN", "+nan", "nAn", "-NAN", "+NaN"])
@pytest.mark.parametrize("column", [0, 1, 2])  # id, patient, label: text, as pandas reads it
def test_nan_spellings_in_other_columns_read_alike(tmp_path, monkeypatch, token, column):
    cells = ROWS[0].split(",")
    cells[column] = token
    _compare(monkeypatch, _write(tmp_path, _text(",".join(cells), *ROWS[1:])), fast_reads=None)


@pytest.mark.parametrize("token", ["NAN", "+nan", "nAn", "-NAN", "+NaN", "nan ", " NaN", " -nan "])
@pytest.mark.parametrize("quoted", [False, True])
def test_a_nan_in_any_case_or_sign_is_a_missing_feature_value(tmp_path, monkeypatch, token, quoted):
    # pyarrow's number parser, as in predict, which also trims the spaces around a number (pandas calls
    # these text)
    rows = [f"S{i},P{i // 2},{'xy'[i % 2]},{(chr(34) + token + chr(34) if quoted else token) if i == 1 else i},1"
            for i in range(4)]
    path = _write(tmp_path, _text(*rows))
    outcome = _load(monkeypatch, path, True)
    assert outcome.fast and outcome.error is None
    assert np.isnan(outcome.ds.X[1, 0]) and outcome.ds.X[[0, 2, 3], 0].tolist() == [0, 2, 3]
    _refused(monkeypatch, path, "a", "missing values")
    # the pandas path: missing when written as a token of its list (NA_TOKENS: NAN, +nan, +NaN), else text
    pandas = _load(monkeypatch, path, False)
    assert (pandas.error is None) == (token in NA_TOKENS)


@pytest.mark.parametrize("column", ["sample_id", "patient_id", "label", "batch", "other"])
def test_an_entirely_empty_column_reads_alike(tmp_path, monkeypatch, column):
    header = "sample_id,patient_id,label,batch,other,a,b"
    rows = [f"S{i},P{i // 2},{'xy'[i % 2]},B{i % 2},o,{i},{i + 1}" for i in range(6)]
    position = header.split(",").index(column)
    rows = [",".join("" if j == position else c for j, c in enumerate(r.split(","))) for r in rows]
    _compare(monkeypatch, _write(tmp_path, _text(*rows, header=header)), fast_reads=None, drop=["other"])


# ── line ends, encodings, layouts ────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("content", [
    _text(*ROWS, end="\r\n"),
    _text(*ROWS)[:-1],  # no final line end
    _text(*ROWS, end="\r\n")[:-2],
    _text(*ROWS, end="\r"),  # a carriage return alone (classic Mac OS)
    "\ufeff" + _text(*ROWS),  # a byte order mark
    "\ufeff" + _text(*ROWS, end="\r\n"),
    _text(ROWS[0], "", *ROWS[1:], "", ""),  # blank lines
    _text(ROWS[0], "   ", *ROWS[1:]),  # a line of spaces, skipped as pandas skips it
    _text(ROWS[0], "\t", *ROWS[1:], " \r"),
    _text(*(r + "," for r in ROWS), header=HEADER + ","),  # a separator at the end of each line
    _text(*(r + "," for r in ROWS), header=HEADER + ",", end="\r\n"),
    _text(*ROWS, header='"sample_id","patient_id","label","a","b"'),
    _text(*ROWS, header='sample_id,patient_id,label,"a\nz",b'),  # a line end in a header cell
])
def test_line_ends_and_blank_lines_read_alike(tmp_path, monkeypatch, content):
    _compare(monkeypatch, _write(tmp_path, content), fast_reads=None)


@pytest.mark.parametrize("content, kwargs", [
    # the tail of the header after the line end has the header's number of fields, numbers where the
    # features are: it must not be read as a data row
    ('"sample\nid",label,1001,1002\n' + "S1,x,1.5,2\nS2,y,2.5,3\nS3,x,3.5,4\nS4,y,4.5,5\n", {"id": "sample\nid"}),
    ('"\n",label,1001,1002\n' + "S1,x,1.5,2\nS2,y,2.5,3\nS3,x,3.5,4\nS4,y,4.5,5\n", {}),  # row names
    ('" \r ",label,1001,1002\n' + "S1,x,1.5,2\nS2,y,2.5,3\nS3,x,3.5,4\nS4,y,4.5,5\n", {}),
    ("sample_id,label,1001,\"1\nS0,x,1,1\n2\"\n" + "S1,x,1.5,2\nS2,y,2.5,3\nS3,x,3.5,4\nS4,y,4.5,5\n", {}),
    ("sample_id,label,\"1\n1001,1002\n3\",1004\n" + "S1,x,1.5,2\nS2,y,2.5,3\nS3,x,3.5,4\nS4,y,4.5,5\n", {}),
])
def test_a_header_holding_line_ends_is_one_header(tmp_path, monkeypatch, content, kwargs):
    ds = _compare(monkeypatch, _write(tmp_path, content), fast_reads=None, **kwargs).ds
    assert ds.n_samples == 4 and list(ds.ids) == ["S1", "S2", "S3", "S4"]


@pytest.mark.parametrize("row, ids, labels", [
    ("S\r1,P1,x,1.5,2", ["S\r1", "S2", "S3", "S4"], ["x", "y", "x", "y"]),
    ("S1,P1,x\r,1.5,2", ["S1", "S2", "S3", "S4"], ["x\r", "y", "x", "y"]),
])
def test_a_lone_carriage_return_inside_an_unquoted_field_is_part_of_it(tmp_path, monkeypatch, row, ids, labels):
    # as the field check (one row of 5 fields) and predict read it; pandas ends a line there and pads both
    # halves with missing values, which the pandas path then refuses
    path = _write(tmp_path, _text(row, *ROWS[1:]))
    fast = _load(monkeypatch, path, True)
    assert fast.fast and list(fast.ds.ids) == ids and list(fast.ds.groups) == ["P1", "P1", "P2", "P2"]
    assert [fast.ds.classes[k] for k in fast.ds.y] == labels
    assert fast.ds.X.tolist() == [[1.5, 2], [2.5, 3], [3.5, 4], [4.5, 5]]
    error = _load(monkeypatch, path, False).error
    assert "missing value" in error or "the id column 'sample_id' is empty at row 2" in error


@pytest.mark.parametrize("name, sep, decimal, kwargs", [
    ("t.tsv", "\t", ".", {}),
    ("t.csv", ";", ",", {}),  # sniffed: semicolons, decimal commas
    ("t.csv", ";", ",", {"sep": ";", "decimal": ","}),
    ("t.txt", "|", ".", {"sep": "|"}),
])
def test_separators_and_decimal_commas_read_alike(tmp_path, monkeypatch, name, sep, decimal, kwargs):
    rows = [f"S{i};P{i // 2};{'xy'[i % 2]};{i / 4};{i}e-1;v{i},{i}" for i in range(8)]
    header = "sample_id;patient_id;label;a;b;note"
    text = _text(*rows, header=header).replace(";", "\x00").replace(".", decimal).replace("\x00", sep)
    if sep == ";":  # a note holding the separator of plain CSV, and labels written as numbers with a comma
        text = text.replace(";x;", ";0,5;").replace(";y;", ";1,5;")
    _compare(monkeypatch, _write(tmp_path, text, name), drop=["note"], **kwargs)


def _zip(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__MACOSX/._t.csv", "junk")
        archive.writestr("t.csv", content)
    return buffer.getvalue()


@pytest.mark.parametrize("suffix, pack", [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress),
                                          (".zip", _zip)])
def test_compressed_tables_read_alike(tmp_path, monkeypatch, suffix, pack):
    content = ("\ufeff" + _text('"S\r1",P1,x,1.5,2', *ROWS[1:], end="\r\n")).encode()
    _compare(monkeypatch, _write(tmp_path, pack(content), "t.csv" + suffix))


@pytest.mark.parametrize("content", [_text(*ROWS).encode(), _text(*ROWS).replace(",", "\t").encode(),
                                     gzip.compress(_text(*ROWS).encode(), mtime=0),
                                     _text('"S\r1",P1,"x,y",1.5,2', *ROWS[1:], end="\r\n").encode()],
                         ids=["comma", "tab", "gzip", "quoted-crlf"])  # ids that every collection names alike
def test_standard_input_reads_alike(monkeypatch, content):
    _compare(monkeypatch, "-", stdin=content)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_named_pipe_reads_alike(tmp_path, monkeypatch):
    path = tmp_path / "p.csv"
    os.mkfifo(path)
    content = _text('"S\r1",P1,x,1.5,2', *ROWS[1:]).encode()
    results = []
    for fast in (True, False):
        writer = threading.Thread(target=lambda: path.write_bytes(content))
        writer.start()
        results.append(_load(monkeypatch, str(path), fast))
        writer.join()
    _assert_same(*results)
    assert results[0].fast and list(results[0].ds.ids) == ["S\r1", "S2", "S3", "S4"]


def test_the_cli_trains_on_a_table_the_piecewise_reader_reads(tmp_path):
    rows = [f'"S\r{i}",P{i // 2},{"xy"[i % 2]},{i / 3},{i % 4}' for i in range(24)]
    path = _write(tmp_path, _text(*rows))
    result = run(["train", path, "--hidden", "4", "--epochs", "2", "--folds", "1", "--quiet",
                  "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output


# ── column types of ids, groups and labels ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize("rows, kwargs", [
    (["007,P1,x,1,2", "1e3,P1,y,2,3", "3,P2,x,3,4", "4.0,P2,y,4,5"], {}),  # ids that look like numbers
    (["1,P1,x,1,2", "1.0,P1,y,2,3", "3,P2,x,3,4", "4,P2,y,4,5"], {}),
    (["S1,01,x,1,2", "S2,1,y,2,3", "S3,2,x,3,4", "S4,2,y,4,5"], {}),
    (["S1,P1,1,1,2", "S2,P1,01,2,3", "S3,P2,1,3,4", "S4,P2,01,4,5"], {}),  # labels 1 and 01: two classes
    (["S1,P1,True,1,2", "S2,P1,False,2,3", "S3,P2,TRUE,3,4", "S4,P2,false,4,5"], {}),
    (["S1,True,x,1,2", "S2,True,y,2,3", "S3,False,x,3,4", "S4,False,y,4,5"], {}),  # groups that look boolean
    (["S1,P1,0.1,1,2", "S2,P1,0.30000000000000004,2,3", "S3,P2,1e3,3,4", "S4,P2,-0.0,4,5"], {"task": "regression"}),
    (["S1,P1,9007199254740993,1,2", "S2,P1,2.2250738585072011e-308,2,3", "S3,P2,1,3,4", "S4,P2,2,4,5"],
     {"task": "regression"}),
    (["S1,P1,ä,1,2", "S2,P1,β😀,2,3", "S3,P2,ä,3,4", "S4,P2,β😀,4,5"], {}),
    (["é1,Pä,x,1,2", "é2,Pä,y,2,3", "😀3,P€,x,3,4", "😀4,P€,y,4,5"], {}),
])
def test_ids_groups_and_labels_typed_alike(tmp_path, monkeypatch, rows, kwargs):
    _compare(monkeypatch, _write(tmp_path, _text(*rows)), **kwargs)


@pytest.mark.parametrize("content, kwargs", [
    ("label,a,b\nx,1,2\ny,2,3\nx,3,4\ny,4,5\n", {}),  # no column but the target
    ("label,a,b\nx,1,2\ny,2,3\nx,3,4\ny,4,5\n", {"no_group": True}),
    ("a,b,label\n1,2,x\n2,3,y\n3,4,x\n", {}),
    ('"","label","a","b"\n"1","x",1,2\n"2","y",2,3\n"3","x",3,4\n', {}),  # R's write.csv row names
    (",label,a,b\n1,x,1,2\n1.0,y,2,3\n3,x,3,4\n", {}),
    (",label,a,b\nr1,x,1,2\nr1,y,2,3\nr3,x,3,4\n", {}),  # row names that repeat
    (",sid,label,a,b\nr1,s1,x,1,2\nr2,s2,y,2,3\nr3,s3,x,3,4\n", {"id": "sid"}),
    ("label,a,,b\nx,1,,2\ny,2,NA,3\nx,3,,4\n", {}),  # an empty header cell over no values
    ("label,a,,b\nx,1, ,2\ny,2,,3\nx,3,,4\n", {}),  # ... over a space
    ("sample_id,label,ä,β😀\nS1,x,1,2\nS2,y,2,3\nS3,x,3,4\n", {}),
])
def test_layouts_read_alike(tmp_path, monkeypatch, content, kwargs):
    _compare(monkeypatch, _write(tmp_path, content), fast_reads=None, **kwargs)


@pytest.mark.parametrize("content", [
    "sample_id,label,a,a\nS1,x,1,2\nS2,y,2,3\n",  # a repeated name
    _text("S1,P1,x,1.5,2,9", *ROWS[1:]),  # a field too many
    _text(*ROWS[:2], "S3,P2,x,3.5"),  # a field too few
    _text("S1,P1,x,1.5,2", 'S2,P2,"y,2.5,3', "S3,P2,x,3.5,4"),  # a quote never closed
    HEADER + "\n",  # a header only
    HEADER,
    _text(ROWS[0]),  # one row: a single class
    "sample_id,label,a\nS1,x,1\nS2,y\xff,2\n".encode("latin-1"),  # not UTF-8
    "sample_id,label,a\nS1,x,1\nS2,y,2\xff\n".encode("latin-1"),  # ... in a feature cell
])
def test_refusals_read_alike(tmp_path, monkeypatch, content):
    assert _compare(monkeypatch, _write(tmp_path, content), fast_reads=None).error


# ── feature values ───────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("values, dtype", [
    (["1", "2", "3", "4"], np.float32),  # counts: float32
    (["16777217", "2", "3", "4"], np.float64),  # beyond float32's integers
    (["0.5", "2.25", "-0.0", "-0"], np.float32),
    (["0.1", "2", "3", "4"], np.float64),
    (["1e-320", "5e-324", "1e-400", "4"], np.float64),  # subnormal and underflowing
    (["1.", ".5", "+1", "1E5"], np.float32),
    (["1", "", "NA", "4"], np.float32),  # missing values do not make it float64
])
def test_feature_values_and_types_read_alike(tmp_path, monkeypatch, values, dtype):
    rows = [f"S{i},P{i // 2},{'xy'[i % 2]},{v},1" for i, v in enumerate(values)]
    ds = _compare(monkeypatch, _write(tmp_path, _text(*rows))).ds
    expected = [float(v) if v not in ("", "NA") else np.nan for v in values]
    assert ds.X.dtype == dtype
    assert np.array_equal(ds.X[:, 0].astype(np.float64), expected, equal_nan=True)
    assert np.signbit(ds.X[:, 0]).tolist() == [v.startswith("-") for v in values]


@pytest.mark.parametrize("value", ["TRUE", "0x10", "1.5.2", "- 1", "1 5", "None", "<NA>"])
def test_feature_cells_pyarrow_does_not_read(tmp_path, monkeypatch, value):
    # not numbers to pyarrow: pandas names the cell; None and <NA>, in pandas' own list of missing-value
    # tokens, are not in the documented one (NA_TOKENS): text in a feature, named, as in every reader
    rows = [f"S{i},P{i // 2},{'xy'[i % 2]},{value if i == 1 else i},1" for i in range(4)]
    outcome = _compare(monkeypatch, _write(tmp_path, _text(*rows)), fast_reads=False)
    assert outcome.error and "'a'" in outcome.error


@pytest.mark.parametrize("value, match", [
    ("inf", "infinite values"), ("-Infinity", "infinite values"),
    ("1e500", "infinite values"), ("-1e500", "infinite values"),  # overflow: infinite
    ("1e39", "beyond"), ("-3.5e38", "beyond"),  # beyond float32's range: the value-limit check
    ("1.7976931348623158e308", "beyond"),  # the largest float64 (pandas' parser calls it text)
    pytest.param("179769313486231580" + "0" * 291, "beyond", id="the same, written out"),
])
def test_values_beyond_float32_are_refused_naming_the_column(tmp_path, monkeypatch, value, match):
    rows = [f"S{i},P{i // 2},{'xy'[i % 2]},{value if i == 1 else i},1" for i in range(4)]
    path = _write(tmp_path, _text(*rows))
    message = _refused(monkeypatch, path, "a", match)
    if "beyond" in message:
        assert "row 2" in message


def test_feature_values_are_correctly_rounded(tmp_path, monkeypatch):
    # pandas' parser keeps 17 digits, leading zeros included: these are off by a unit or more there
    values = ["0.02012535403587845", "0.1234567890123456789", "3.14159265358979323846", "2.4703282292062328e-324",
              "0.000000000000000000001"]
    rows = [f"S{i},P{i // 2},{'xy'[i % 2]},{v},1" for i, v in enumerate(values)]
    path = _write(tmp_path, _text(*rows))
    fast = _load(monkeypatch, path, True)
    assert fast.fast and fast.ds.X[:, 0].tolist() == [float(v) for v in values]
    slow = _load(monkeypatch, path, False)
    if int(pd.__version__.split(".")[0]) < 3:  # pandas 3's parser rounds these correctly too
        assert slow.ds.X[:, 0].tolist() != fast.ds.X[:, 0].tolist()  # what the piecewise reader fixes


def test_many_small_pieces_give_the_numbers_of_one(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    n = 400
    rows = [f"S{i},P{i // 4},{'xy'[i % 2]},{rng.lognormal():.17g},{rng.integers(0, 9)}" for i in range(n)]
    rows[250] = rows[250].replace("S250,", '"S\n250",')  # a quoted line end in a later piece
    path = _write(tmp_path, _text(*rows))
    whole = _load(monkeypatch, path, True)
    monkeypatch.setattr(text_features, "DEFAULT_CHUNK_BYTES", 1 << 10)
    small = _compare(monkeypatch, path)
    assert small.ds.X.tobytes() == whole.ds.X.tobytes() and list(small.ds.ids) == list(whole.ds.ids)


# ── any text in the other columns ────────────────────────────────────────────────────────────────────────

_PIECES = ["", " ", "\t", "NA", "nan", "NAN", "None", "<NA>", "1", "01", "1.0", "1e3", "-0", "True", "x", "y z", '"',
           ",", ";", "\n", "\r", "\r\n", "é", "1,5", "inf", "#"]


def _field(text: str, sep: str, force: bool) -> str:
    if force or any(c in text for c in (sep, '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.tuples(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=3).map("".join),
                                st.lists(st.sampled_from(_PIECES), min_size=1, max_size=3).map("".join),
                                st.booleans()), min_size=1, max_size=6),
       sep=st.sampled_from([",", "\t", ";"]), end=st.sampled_from(["\n", "\r\n"]))
def test_any_text_in_labels_and_batches_reads_alike(tmp_path_factory, monkeypatch, cells, sep, end):
    rows = [sep.join([f"S{i}", _field(label, sep, quote), _field(batch, sep, not quote), str(i), f"{i / 3}"])
            for i, (label, batch, quote) in enumerate(cells)]
    text = end.join([sep.join(["sample_id", "label", "batch", "a", "b"]), *rows]) + end
    path = _write(tmp_path_factory.mktemp("t"), text, "t.tsv" if sep == "\t" else "t.csv")
    _compare(monkeypatch, path, fast_reads=None, no_group=True, sep=sep, decimal=".")


# ── numbers written with thousands separators ────────────────────────────────────────────────────────────


def _counts_with_separators(tmp_path, decimals: bool = False):
    rng = np.random.default_rng(0)
    y = np.where(rng.random(80) < 0.5, "A", "B")
    if decimals:  # decimal commas rounded to three places: every comma number in the thousands form too
        values = rng.normal(5, 2, size=(80, 4)).round(3)
        cells = {f"G{j}": [f"{v:.3f}".replace(".", ",") for v in values[:, j]] for j in range(4)}
    else:
        values = rng.poisson(np.where(y == "A", 600, 1800)[:, None] * np.ones((1, 4)))
        cells = {f"G{j}": [f"{v:,}" for v in values[:, j]] for j in range(4)}
    frame = pd.DataFrame(cells)
    frame["label"] = y
    path = tmp_path / "t.tsv"
    frame.to_csv(path, sep="\t", index=False)
    return path, values


def test_thousands_separators_are_not_read_as_decimal_commas(tmp_path):
    """A tab-separated table of counts written 619 and 1,798 trained (exit 0, a note) on 619 and 1.798: a
    thousandfold error in one column; --decimal . then advised writing '1.798'."""
    path, _ = _counts_with_separators(tmp_path)
    out = tmp_path / "m.mlp"
    base = ["train", str(path), "--no-group", "--folds", "1", "--epochs", "1", "-o", str(out)]
    res = run(base)
    assert res.exit_code == 1 and not out.exists()
    assert "look written with thousands separators" in res.output.splitlines()[-1]
    res = run(base + ["--decimal", "."])
    assert res.exit_code == 1 and "if the comma separates thousands, write it '1" in res.output
    # a genes x samples matrix with Entrez ids (whole numbers of 1,000 and more) in its first column: still refused
    rows = ["gene\t" + "\t".join(f"S{j}" for j in range(20))]
    rows += [f"{g}\t" + "\t".join(f"{(j * 397 + g) % 4900 + 100:,}" for j in range(20)) for g in (7157, 672, 675, 1956)]
    (tmp_path / "m.tsv").write_text("\n".join(rows) + "\n")
    res = run(["train", str(tmp_path / "m.tsv"), "--features-in-rows", "--no-group", "--epochs", "1",
               "-o", str(out)])
    assert res.exit_code == 1 and "look written with thousands separators" in res.output
    assert run(base + ["--decimal", "comma", "-q"]).exit_code == 0  # the user's word: decimal commas


def test_decimal_commas_to_three_places_still_read(tmp_path):
    path, values = _counts_with_separators(tmp_path, decimals=True)
    res = run(["train", str(path), "--no-group", "--folds", "1", "--epochs", "1", "-o", str(tmp_path / "m.mlp")])
    assert res.exit_code == 0, res.output
    assert "numbers read with decimal commas" in res.output
    # beside a column of whole numbers below 1,000 (an age): decimal commas, as before
    rng = np.random.default_rng(1)
    rows = ["sample_id;age;g0;g1;label"] + [f"S{i};{rng.integers(30, 80)};{a:.3f};{b:.3f};{'AB'[i % 2]}".replace(".", ",")
                                           for i, (a, b) in enumerate(rng.uniform(2, 15, (40, 2)))]
    (tmp_path / "eu.csv").write_text("\n".join(rows) + "\n")
    res = run(["train", str(tmp_path / "eu.csv"), "--no-group", "--folds", "1", "--epochs", "1", "-o", str(tmp_path / "e.mlp")])
    assert res.exit_code == 0 and "numbers read with decimal commas ('" in res.output, res.output


def test_thousands_separated_by_dots_are_not_read_as_decimals(tmp_path):
    """Counts written as German or French number formats write them, 457 beside 1.486 (1486), were read as 1.486 by
    every command without a word (a semicolon, tab or comma table alike): now refused as commas are, and under
    decimal commas the advice for '1.486' is 1486, not '1,486' (which would read as 1.486)."""
    rng = np.random.default_rng(0)
    y = np.where(rng.random(60) < 0.5, "A", "B")
    values = rng.poisson(np.where(y == "A", 600, 1800)[:, None] * np.ones((1, 4)))
    frame = pd.DataFrame({f"G{j}": [f"{v:,}".replace(",", ".") for v in values[:, j]] for j in range(4)})
    frame["label"] = y
    out = tmp_path / "m.mlp"
    for sep, name in ((";", "de.csv"), ("\t", "de.tsv"), (",", "de_comma.csv")):
        frame.to_csv(tmp_path / name, sep=sep, index=False)
        res = run(["train", str(tmp_path / name), "--no-group", "--folds", "1", "--epochs", "1", "-o", str(out)])
        assert res.exit_code == 1 and not out.exists(), res.output
        assert "look written with dots as thousands separators" in res.output.splitlines()[-1]
    # the user's word: decimal points after all
    base = ["train", str(tmp_path / "de.csv"), "--no-group", "--folds", "1", "--epochs", "1", "-o", str(out)]
    assert run(base + ["--decimal", "dot", "-q"]).exit_code == 0
    res = run(base + ["--decimal", "comma"])
    assert res.exit_code == 1 and "if the dot separates thousands, write it '1" in res.output
    assert "so write it" not in res.output
    # decimals to three places, with whole numbers in another column (an age) or below 1 in the same: read
    rows = ["sample_id;age;g0;g1;label"] + [f"S{i};{rng.integers(30, 80)};{a:.3f};{b:.3f};{'AB'[i % 2]}"
                                           for i, (a, b) in enumerate(rng.uniform(0.5, 15, (40, 2)))]
    (tmp_path / "dec.csv").write_text("\n".join(rows) + "\n")
    res = run(["train", str(tmp_path / "dec.csv"), "--no-group", "--folds", "1", "--epochs", "1", "-q", "-o", str(out)])
    assert res.exit_code == 0, res.output


def test_a_stray_quote_in_a_header_name_is_not_a_multiline_cell(tmp_path):
    """A column named probe_5" made the line-by-line reader take the rest of the file for the header ("internal
    error (Error: new-line character seen in unquoted field ...)") in every command reading text."""
    rng = np.random.default_rng(0)
    rows = ['sample_id,g0,g1,probe_5",label'] + [f"S{i},{a:.3f},{b:.3f},{c:.3f},{'AB'[i % 2]}"
                                                 for i, (a, b, c) in enumerate(rng.normal(size=(40, 3)))]
    (tmp_path / "q.csv").write_text("\n".join(rows) + "\n")
    model = tmp_path / "q.mlp"
    assert run(["train", str(tmp_path / "q.csv"), "--epochs", "1", "--folds", "1", "--no-group", "-q",
                "-o", str(model)]).exit_code == 0
    res = run(["predict", str(model), str(tmp_path / "q.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == 40


# ── the same numbers whichever reader: a header with a line break, a genes x samples CSV ────────────────


def _halfway_values(n: int = 40, d: int = 4) -> np.ndarray:
    """Values exactly halfway between two float32 numbers, as float64: written as 17-digit decimals, a parser one
    unit in the last place off rounds them to another float32 (and the seen-rows check misses the row)."""
    a = np.random.default_rng(5).normal(size=(n, d)).astype(np.float32)
    return (a.astype(np.float64) + np.nextafter(a, np.float32(np.inf))) / 2


def _weights_bytes(path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return archive.read("weights.npz")


def test_a_header_with_a_line_break_reads_the_numbers_as_parquet_does(tmp_path):
    """Such a header sent train to pandas' whole-table parser, an ulp off for 17-digit decimals: the model differed
    from its parquet copy's, and predict recognised 12 of its 40 training rows."""
    x = _halfway_values()
    ids, labels = [f"s{i}" for i in range(40)], ["AB"[i % 2] for i in range(40)]
    with open(tmp_path / "h.csv", "w") as fh:
        fh.write('sample_id,label,g0,g1,g2,"g\n3"\n')
        for i in range(40):
            fh.write(f"{ids[i]},{labels[i]}," + ",".join("%.17g" % v for v in x[i]) + "\n")
    pd.DataFrame({"sample_id": ids, "label": labels, "g0": x[:, 0], "g1": x[:, 1], "g2": x[:, 2],
                  "g\n3": x[:, 3]}).to_parquet(tmp_path / "h.parquet", index=False)
    fast = ["--epochs", "2", "--folds", "1", "--no-group", "--seed", "0", "-q"]
    for name in ("h.csv", "h.parquet"):
        assert run(["train", str(tmp_path / name), *fast, "-o", str(tmp_path / f"{name}.mlp")]).exit_code == 0
    assert _weights_bytes(tmp_path / "h.csv.mlp") == _weights_bytes(tmp_path / "h.parquet.mlp")
    res = run(["predict", str(tmp_path / "h.csv.mlp"), str(tmp_path / "h.csv"), "-o", str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "all 40 samples are rows the model was trained" in res.output


def test_a_genes_x_samples_csv_reads_the_numbers_as_its_parquet_copy(tmp_path):
    x = _halfway_values()
    ids = [f"s{i}" for i in range(40)]
    with open(tmp_path / "m.csv", "w") as fh:
        fh.write("gene," + ",".join(ids) + "\n")
        for j in range(4):
            fh.write(f"g{j}," + ",".join("%.17g" % x[i, j] for i in range(40)) + "\n")
    pd.DataFrame({"gene": [f"g{j}" for j in range(4)], **{s: x[i] for i, s in enumerate(ids)}}).to_parquet(
        tmp_path / "m.parquet", index=False)
    pd.DataFrame({"sample_id": ids, "label": ["AB"[i % 2] for i in range(40)]}).to_csv(tmp_path / "s.csv", index=False)
    fast = ["--features-in-rows", "--samples", str(tmp_path / "s.csv"), "--epochs", "2", "--folds", "1", "--no-group",
            "--seed", "0", "-q"]
    for name in ("m.csv", "m.parquet"):
        assert run(["train", str(tmp_path / name), *fast, "-o", str(tmp_path / f"{name}.mlp")]).exit_code == 0
    assert _weights_bytes(tmp_path / "m.csv.mlp") == _weights_bytes(tmp_path / "m.parquet.mlp")


def test_a_text_name_over_other_content_says_what_the_file_is(small, tmp_path):
    """A gzip file named .csv was "not UTF-8 text (byte 0x8b): save it as UTF-8", which re-saving cannot cure; a
    UTF-16 file (Excel's 'Unicode Text') "a binary file?"; x.zip "unsupported format ... (each optionally .zip)"."""
    frame = pd.read_csv(small / "t.csv")
    with gzip.open(tmp_path / "packed.csv", "wt") as fh:
        frame.to_csv(fh, index=False)
    frame.to_csv(tmp_path / "wide.txt", sep="\t", index=False, encoding="utf-16")
    frame.to_csv(tmp_path / "one.csv.zip", index=False)
    os.rename(tmp_path / "one.csv.zip", tmp_path / "one.zip")
    model = str(small / "m.mlp")
    cases = [("packed.csv", "holds gzip-compressed data, though its name says plain text: name it packed.csv.gz"),
             ("wide.txt", "is UTF-16 text (as Excel's 'Unicode Text'"),
             ("one.zip", "name it one.csv.zip (or .tsv.zip)")]
    for name, needle in cases:
        for args in (["predict", model, str(tmp_path / name), "-o", str(tmp_path / "p.csv")],
                     ["train", str(tmp_path / name), "--no-group", "-o", str(tmp_path / "m.mlp")]):
            res = run(args)
            assert res.exit_code == 1 and needle in res.output.splitlines()[-1], (args, res.output)
            assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m.mlp").exists()
    utf16 = (tmp_path / "wide.txt").read_bytes()
    res = run(["predict", model, "-", "-o", str(tmp_path / "p.csv")], input=utf16)
    assert res.exit_code == 1 and "standard input is UTF-16 text" in res.output


def test_rows_of_separators_without_a_value_are_named(small, tmp_path):
    """Excel's ',,,,' rows below a table failed as "the id column is empty at row 61" (predict) or "the target has
    missing values ... drop the rows without a label" (evaluate), whose remedy then failed on the id; a sample
    sheet still skips them with a note."""
    frame = pd.read_csv(small / "t.csv")
    blank = "," * (frame.shape[1] - 1) + "\n"
    (tmp_path / "b.csv").write_text(frame.to_csv(index=False) + blank * 3)
    (tmp_path / "q.csv").write_text(frame.to_csv(index=False, quoting=1) + blank)
    model = str(small / "m.mlp")
    for args in (["predict", model, str(tmp_path / "b.csv"), "-o", str(tmp_path / "p.csv")],
                 ["evaluate", model, str(tmp_path / "b.csv")],
                 ["train", str(tmp_path / "b.csv"), "--no-group", "-o", str(tmp_path / "m.mlp")],
                 ["predict", model, str(tmp_path / "q.csv"), "-o", str(tmp_path / "p.csv")]):
        res = run(args)
        assert res.exit_code == 1, res.output
        assert "line 62 holds separators but no value" in res.output.splitlines()[-1]
        assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m.mlp").exists()
    # a row of missing values that keeps its id is a sample (its error is its own), and a sheet skips empty rows
    features = frame.drop(columns=["label"])
    features.to_csv(tmp_path / "f.csv", index=False)
    (tmp_path / "sheet.csv").write_text(frame[["sample_id", "label"]].to_csv(index=False) + ",\n,\n")
    res = run(["predict", model, str(tmp_path / "f.csv"), "--samples", str(tmp_path / "sheet.csv"), "-o",
               str(tmp_path / "p.csv")])
    assert res.exit_code == 0 and "skipped 2 empty rows" in res.output
