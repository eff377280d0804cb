"""Reading tables: csv/tsv/txt (optionally compressed), parquet, standard input, and the
features x samples layout; duplicate headers and malformed files are one-line DataErrors."""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import lzma
import os
import stat
import sys
import zipfile
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ._common import DECIMAL_ATTR, DEFAULT_ID, SOURCE_ATTR, SUPPORTED_FORMATS, _COMPRESSIONS, _TEXT_SEPARATORS
from ._common import _quoted, non_number_cells, typed_as_written
from .fields import check_stream, locate_not_utf8

# ── reading tables ───────────────────────────────────────────────────────────────────────────────────────


def read_table(path: str | os.PathLike, features_in_rows: bool = False, *, stdin=None, sep: str | None = None,
               decimal: str | None = None, text: Sequence[str] = (), ids: Sequence[str] = ()) -> pd.DataFrame:
    """Read a samples × features table (or, with `features_in_rows`, a features × samples one).

    Format by extension: .csv, .tsv/.txt (tab), each optionally .gz/.bz2/.xz/.zip, and .parquet; "-" reads
    CSV or TSV (sniffed from the first line; gzip, bzip2 or xz detected by their magic bytes) from `stdin`
    (default `sys.stdin.buffer`). `sep` and `decimal` ("auto" or None: detected, see `sniff_dialect`)
    fix how text is split and numbers are written. Returns a DataFrame (n_samples, n_columns) with string
    column names; the transposed layout gets a leading `sample_id` column taken from its header. Notes on
    what was detected are in ``read_table_with_notes``. `text`: columns of a text table read as written
    (strings: ids like 007), where present; the others are typed by pandas. With `features_in_rows` they
    are rows (ids, groups, batches, labels), typed as written (``typed_as_written``: 01 stays 01) however
    numeric they look, as the same columns of a samples × features table are. `ids`: of those, the sample id
    columns, where only an empty cell is missing (``as_written_na``: a sample named NA is an id).
    """
    return read_table_with_notes(path, features_in_rows, stdin=stdin, sep=sep, decimal=decimal, text=text,
                                 ids=ids)[0]


def read_table_with_notes(path, features_in_rows: bool = False, *, stdin=None, sep: str | None = None,
                          decimal: str | None = None, text: Sequence[str] = (),
                          ids: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """``read_table`` and the notes on how the file was read (a separator or decimal mark other than the
    file name suggests, row names taken as sample ids, an empty column ignored)."""
    src = _source(path, stdin)
    if src.kind == "h5ad":  # a matrix with obs / var tables, often sparse: never one dense frame
        raise DataError(f"{src.name} is an AnnData file; it is read by train, cv, tune, predict, evaluate, diagnose "
                        "and gradcheck, not as a table")
    if src.kind == "10x":
        raise DataError(f"{src.name} is a directory; a 10x Genomics directory is read by train (with --samples) "
                        "and predict, not as a table")
    if src.kind == "parquet":
        frame, notes = _read_parquet(src.name, features_in_rows, text)
        if features_in_rows:
            return frame, notes
        frame, more = _apply_header_rules(frame, src.name)
        return frame, notes + more
    table = TextTable.open(src, sep=sep, decimal=decimal, features_in_rows=features_in_rows)
    if features_in_rows:  # the sample ids are the header's cells, read as written
        return table.read_frame(text=text), table.notes
    return table.read_frame(text=[c for c in text if c in table.names], ids=ids), table.notes


# pandas' missing-value tokens: "", NA, N/A, NaN, nan, null, NULL, None, <NA>, #N/A, ...
_NA_TOKENS = sorted(pd._libs.parsers.STR_NA_VALUES)


def as_written_na(columns: Sequence[str], ids: Sequence[str]) -> dict:
    """``pd.read_csv`` keywords that read the `ids` columns (sample ids) as written, only an empty cell
    missing, and every other of `columns` with pandas' missing-value tokens (empty when no id column is
    among them): a sample named NA, None or NULL is an id, as it is in a parquet file, in a genes × samples
    matrix's header and in pandas' own ``DataFrame``, not a missing one."""
    ids = set(ids) & set(columns)
    if not ids:
        return {}
    return {"keep_default_na": False, "na_values": {c: [""] if c in ids else _NA_TOKENS for c in columns}}


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        home = os.path.expanduser(path)
        hint = (f" (a quoted ~ is not expanded by the shell: {home}?)" if path.startswith("~") and home != path
                and os.path.exists(home) else "")
        raise DataError(f"table file not found: {path}{hint}")
    fd = _descriptor(path)
    if fd is not None and _is_terminal(fd):
        raise DataError(f"{path} is a terminal; pipe a table into it (zcat x.csv.gz | mlpcli ... {path}) or give "
                        "the table's path")
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory; give a table file ({SUPPORTED_FORMATS})")
    if os.path.getsize(path) == 0 and not is_pipe(path):  # a pipe's size is 0 whatever it holds
        raise DataError(f"{path} is empty; expected a header line and data rows")


def _table_format(path: str) -> tuple[str, str | None, str | None]:
    """(kind, separator, compression) from the file name; kind is "text", "parquet" or "h5ad". A descriptor's
    name (/dev/stdin < x.csv.gz) takes the name of the regular file it is open on (``_opened_file``)."""
    found = _suffix_format(_opened_file(path) or path)
    if found is not None:
        return found
    if is_pipe(path):  # a pipe named without a format (<(zcat x.gz): /dev/fd/63): text, sniffed as "-" is
        return "text", None, None
    name = os.path.basename(path).lower()
    root, ext = os.path.splitext(name)
    compression = _COMPRESSIONS.get(ext)
    if compression is not None:
        root, ext = os.path.splitext(root)
    hint = _FOREIGN_FORMATS.get(ext if compression is None or ext == ".mtx" else "", "")
    raise DataError(f"unsupported table format {os.path.basename(path)!r}; use {SUPPORTED_FORMATS}"
                    f"{'; ' + hint.format(name=path, directory=os.path.dirname(path) or '.') if hint else ''}")


def _suffix_format(path: str) -> tuple[str, str | None, str | None] | None:
    """(kind, separator, compression) that the file name's suffix names, None for any other name."""
    root, ext = os.path.splitext(os.path.basename(path).lower())
    compression = _COMPRESSIONS.get(ext)
    if compression is not None:
        root, ext = os.path.splitext(root)
    if ext == ".parquet" and compression is None:
        return "parquet", None, None
    if ext == ".h5ad" and compression is None:  # AnnData (data.h5ad): cells x genes, roles from .obs
        return "h5ad", None, None
    if ext in _TEXT_SEPARATORS:
        return "text", _TEXT_SEPARATORS[ext], compression
    return None


def _descriptor(path: str) -> int | None:
    """The file descriptor an input's name stands for: /dev/stdin, /dev/fd/N, /proc/self/fd/N (``descriptor_of``)."""
    from ..fileio import descriptor_of

    return 0 if os.path.normpath(path) == "/dev/stdin" else descriptor_of(path)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _opened_file(path: str) -> str | None:
    """The name of the regular file that a descriptor's name (/dev/stdin, /dev/fd/N, /proc/self/fd/N) is open on
    when standard input (or descriptor N) is redirected from one (``< new.csv.gz``): the table is read by that
    name's format, from the descriptor's name (opened again, it reads the file from its start). None for other
    names, pipes, and where the system does not tell (no /proc)."""
    fd = _descriptor(path)
    if fd is None:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.readlink(f"/proc/self/fd/{fd}")
    except (OSError, ValueError):
        return None


_TENX_PARTS = ("features", "genes", "barcodes")


def not_a_tenx_part(path: str) -> None:
    """A DataError when the table to read, ``path``, is the features, genes or barcodes file of a 10x Genomics
    directory (a matrix.mtx beside it): read as a table, it held gene names where samples were expected, and the
    error said to pass --features-in-rows."""
    root = os.path.basename(path).lower()
    while os.path.splitext(root)[1]:
        root = os.path.splitext(root)[0]
    stem = root.rsplit("_", 1)[-1] if "_" in root else root  # GEO's GSM..._features
    if stem not in _TENX_PARTS or is_pipe(path):
        return
    directory = os.path.dirname(path) or "."
    prefix = os.path.basename(path)[:len(root) - len(stem)]
    if any(os.path.exists(os.path.join(directory, f"{prefix}matrix.mtx{gz}")) for gz in ("", ".gz")):
        raise DataError(f"{path} is the {stem} file of a 10x Genomics matrix, not a table: give its directory "
                        f"({directory}), which mlpcli reads with the matrix and the other two files")


# Files of the field that are not tables mlpcli reads, and the one step that makes one of them
_FOREIGN_FORMATS = {
    ".h5": ("Cell Ranger's .h5 matrix is not read: give its filtered_feature_bc_matrix directory (matrix.mtx.gz, "
            "features.tsv.gz, barcodes.tsv.gz), or convert it once: python -c \"import scanpy; "
            "scanpy.read_10x_h5('{name}').write_h5ad('cells.h5ad')\""),
    ".loom": ("convert a .loom file once: python -c \"import anndata; "
              "anndata.read_loom('{name}').write_h5ad('cells.h5ad')\""),
    ".rds": "an R object: write it out from R as a CSV table, or as .h5ad (e.g. with zellkonverter)",
    ".xlsx": "save the spreadsheet as CSV (UTF-8)",
    ".xls": "save the spreadsheet as CSV (UTF-8)",
    ".mtx": ("a Matrix Market file, as 10x Genomics writes it beside features.tsv.gz and barcodes.tsv.gz: give the "
             "directory that holds the three ({directory})"),
}


def _stdin_bytes(stdin, name: str = "standard input") -> bytes:
    """Everything on a stream read once (standard input, or a named pipe ``name``), decompressed when gzip,
    bzip2 or xz (``stream_compression``)."""
    stream = stdin if stdin is not None else sys.stdin.buffer
    not_a_terminal(stream, name)
    data = stream.read()
    if isinstance(data, str):  # a text stream was passed instead of a binary one
        data = data.encode("utf-8")
    compression = stream_compression(data)
    if compression is not None:
        try:
            data = {"gzip": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress}[compression](data)
        except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:
            raise DataError(f"cannot decompress {compression} data on {name}: {_short_reason(exc)}") from None
    if not data.strip():
        raise DataError("standard input is empty; pipe a CSV or TSV table into '-'" if name == "standard input"
                        else f"{name} is empty; expected a header line and data rows")
    return data


def is_pipe(path: str) -> bool:
    """Whether ``path`` is a named pipe or a process substitution (``<(zcat x.gz)``, /dev/fd/63), or names a
    descriptor open on a file whose name tells no table format (/dev/stdin < counts): its data is read once,
    front to back, like standard input ("-"), and its format sniffed as there."""
    try:
        if stat.S_ISFIFO(os.stat(path).st_mode):
            return True
    except (OSError, ValueError):
        return False
    opened = _opened_file(path)
    return opened is not None and _suffix_format(opened) is None


# What a table read once (standard input, a pipe) may start with: compressed text, which is decompressed, and
# files that are read by their path alone (a parquet file's metadata is at its end; .h5ad and zip are indexed)
_STREAM_COMPRESSIONS = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"))
_BZIP2 = re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)")  # a block, or the end of an empty stream
_NOT_STREAMED = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (.h5ad, .h5)"),
    (b"PK\x03\x04", "a zip archive (.zip, an .xlsx workbook)"),
    (b"(\xb5/\xfd", "zstd-compressed data"),
)
STREAM_HEAD = 10  # the bytes that ``stream_compression`` and ``not_streamed`` look at


def stream_compression(head: bytes) -> str | None:
    """"gzip", "bz2" or "xz" when the first bytes of a stream (at least ``STREAM_HEAD``) are theirs, else None."""
    for magic, compression in _STREAM_COMPRESSIONS:
        if head.startswith(magic):
            return compression
    return "bz2" if _BZIP2.match(head) else None


def not_streamed(head: bytes, name: str) -> None:
    """A DataError when the first bytes of a table read once from ``name`` (standard input or a pipe) are a
    format that is read by its path only: parquet, HDF5 (.h5ad), zip (.xlsx); zstd, which is not decompressed.
    A gene named PAR1 heading a text table is no parquet file: its next byte is text."""
    what = next((what for magic, what in _NOT_STREAMED if head.startswith(magic)), None)
    if what is None and head.startswith(b"PAR1") and len(head) > 4 and head[4] < 0x20 and head[4] not in b"\t\r\n":
        what = "a Parquet file"
    if what is None:
        return
    where = "standard input" if name == "standard input" else f"a pipe ({name})"
    if what.startswith("zstd"):
        raise DataError(f"{what} cannot be read from {where}; decompress it first (zstd -dc x.csv.zst | mlpcli ... -)")
    raise DataError(f"{what} cannot be read from {where}; give its path")


def not_a_terminal(stream, name: str) -> None:
    """A DataError when ``stream`` (standard input for "-") is a terminal: nothing was piped in, and reading
    would wait for typed lines."""
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError, OSError):
        return
    if terminal:
        raise DataError(f"{name} is a terminal; pipe a table into '-' (zcat x.csv.gz | mlpcli ... -) or give the "
                        "table's path")


def _short_reason(exc: BaseException) -> str:
    """First line of an exception's message, without pandas' tokenizer prefix, at most 160 characters."""
    text = str(exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    text = text.replace("Error tokenizing data. C error: ", "")
    return text if len(text) <= 160 else text[:157] + "..."


# What the text and parquet readers raise on a malformed or truncated file (not on a missing one).
_PARSE_ERRORS = (
    pd.errors.ParserError,
    ValueError,  # includes UnicodeDecodeError and pyarrow's ArrowInvalid
    OSError,  # includes gzip.BadGzipFile
    EOFError,  # truncated compressed stream
    zipfile.BadZipFile,
    lzma.LZMAError,
)


@dataclass(frozen=True)
class _Source:
    """Where a table comes from: its name in messages, a fresh path or buffer per pass, how it is stored."""

    name: str
    opener: Callable[[], Any]
    kind: str  # "text", "parquet", "h5ad" or "10x" (a directory)
    default_sep: str | None  # from the file name; None for standard input (sniffed)
    compression: str | None
    suffix: str = ""  # ".csv", ".tsv", ".txt" (for messages)


def _source(path, stdin) -> _Source:
    if str(path) == "-":
        data = _stdin_bytes(stdin)
        not_streamed(data[:STREAM_HEAD], "standard input")
        return _Source("standard input", lambda: io.BytesIO(data), "text", None, None)
    path = os.fspath(path)
    if os.path.isdir(path):  # 10x Genomics output (data.tenx): its files are checked when it is opened
        return _Source(path, lambda: path, "10x", None, None)
    _check_file(path)
    kind, sep, compression = _table_format(path)
    if kind == "text":
        not_a_tenx_part(path)
    if is_pipe(path):  # read once, as standard input is: the readers open a file more than once
        if kind != "text":
            raise DataError(f"{path} is a pipe: only a text table (CSV or TSV, optionally gzip, bzip2 or xz) can be read from one; "
                            f"save the {kind} file to disk and give its name")
        with open(path, "rb") as fh:
            data = _stdin_bytes(fh, path)
        not_streamed(data[:STREAM_HEAD], path)
        return _Source(path, lambda: io.BytesIO(data), "text", sep, None, text_suffix(path))
    return _Source(path, lambda: path, kind, sep, compression, text_suffix(path))


def table_kind(path) -> str | None:
    """How the readers would read ``path``: "text" (also "-", standard input), "parquet", "h5ad" or "10x" (a
    directory); None for a path they refuse (missing, empty, an unknown suffix: the reader says why)."""
    if str(path) == "-":
        return "text"
    path = os.fspath(path)
    if os.path.isdir(path):
        return "10x"
    try:
        _check_file(path)
        return _table_format(path)[0]
    except DataError:
        return None


def text_suffix(path: str) -> str:
    """".csv", ".tsv" or ".txt" (before any compression suffix), for messages; "" for other names."""
    name = os.path.basename(os.fspath(path)).lower()
    root, ext = os.path.splitext(name)
    if ext in _COMPRESSIONS:
        ext = os.path.splitext(root)[1]
    return ext if ext in _TEXT_SEPARATORS else ""


# ── separators and decimal marks ─────────────────────────────────────────────────────────────────────────

SEPARATORS = (",", "\t", ";", "|")  # the ones detected, in order of preference
_SEP_WORDS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_SNIFF_BYTES = 1 << 20  # the head of a file that separators and decimal marks are judged on
_MAX_HEAD_BYTES = 64 << 20  # a header line longer than this is not sniffed (the file name decides)
_COMMA_NUMBER = re.compile(r"\s*[-+]?(\d+,\d*|,\d+)([eE][-+]?\d+)?\s*")
_DOT_NUMBER = re.compile(r"\s*[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?\s*")


def separator_char(value: str | None) -> str | None:
    """The separator an option value means ("tab" -> a tab, "semicolon" -> ";"); None for auto."""
    if value is None or value == "auto":
        return None
    char = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(value, value)
    if char not in SEPARATORS:
        raise ConfigError(f"--sep {value!r}: use one of comma, tab, semicolon, pipe (or , ; |) or auto")
    return char


def decimal_char(value: str | None) -> str | None:
    """The decimal mark an option value means; None for auto."""
    if value is None or value == "auto":
        return None
    char = {"dot": ".", "point": ".", "comma": ","}.get(value, value)
    if char not in (".", ","):
        raise ConfigError(f"--decimal {value!r}: use dot or comma (or . ,) or auto")
    return char


def _sep_name(sep: str) -> str:
    return f"{_SEP_WORDS[sep]} ({sep!r})" if sep != "\t" else "tab"


@dataclass(frozen=True)
class Dialect:
    """How a text table is split and its numbers written, with notes on what was detected."""

    sep: str
    decimal: str = "."
    notes: tuple[str, ...] = ()


def sniff_dialect(head: str, complete: bool, source: str, default_sep: str | None, sep: str | None = None,
                  decimal: str | None = None, suffix: str = "") -> Dialect:
    """The separator and decimal mark of a text table from its first lines.

    head: the text from the start of the file, cut at a line end (`complete`: the whole file).
    default_sep: the file name's separator (None for standard input: tab when the first line has more tabs
    than commas, else comma). `sep`/`decimal` given (not None/"auto") win; otherwise the file name's
    separator is kept when the header splits on it into several fields and every first row into as many;
    if not, the separator among , tab ; | on which they all split consistently (most fields first), with a
    note. Under a separator other than the comma, numbers written like 0,123 (more of them than like
    0.123) mean decimal commas, with a note; pandas and pyarrow then read them as numbers.
    """
    given_sep, given_decimal = separator_char(sep), decimal_char(decimal)
    if given_sep == given_decimal == ",":
        raise ConfigError("--decimal comma: comma is the field separator too (--sep comma); pass another --sep")
    records = _records(head, complete)
    if default_sep is None:
        first = head.split("\n", 1)[0]
        default_sep = "\t" if first.count("\t") > first.count(",") else ","
    shapes = {c: _split_shape(records, c) for c in SEPARATORS}  # (header fields, rows consistent?)
    notes: list[str] = []
    if given_sep is not None:
        chosen = given_sep
        splits = [c for c in SEPARATORS if shapes[c][0] > 1]
        if shapes[chosen][0] == 1 and splits:
            raise DataError(f"{source}: --sep {_sep_name(chosen)} reads its header as a single column, but it splits "
                            f"on {_sep_name(splits[0])}; pass --sep {'tab' if splits[0] == chr(9) else splits[0]!r} "
                            "or leave --sep out")
    elif shapes[default_sep][0] > 1 and shapes[default_sep][1]:
        chosen = default_sep
    else:
        consistent = [c for c in SEPARATORS if c != default_sep and shapes[c][0] > 1 and shapes[c][1]]
        several = [c for c in SEPARATORS if c != default_sep and shapes[c][0] > 1]
        pool = consistent or (several if shapes[default_sep][0] == 1 else [])
        chosen = max(pool, key=lambda c: shapes[c][0]) if pool else default_sep
        if chosen != default_sep:
            named = f"as its {suffix} name says" if suffix else "(the usual default)"
            notes.append(f"{source}: read as {_sep_name(chosen)}-separated: its header and first rows split on "
                         f"that, not on {_sep_name(default_sep)} {named}; --sep to choose")
    if given_decimal is not None:
        chosen_decimal = given_decimal
    elif chosen == ",":
        chosen_decimal = "."
    else:
        cells = [cell for r in records[1:] for cell in _split(r, chosen)]
        commas = [c for c in cells if _COMMA_NUMBER.fullmatch(c)]
        dots = sum(1 for c in cells if _DOT_NUMBER.fullmatch(c))
        # the mark most numbers are written with: one "0.5" among "0,3" cells is that cell's error (named
        # when it is read), not a reason to read every other number as text
        comma = commas[0] if commas else None
        chosen_decimal = "," if len(commas) > dots else "."
        if chosen_decimal == ",":
            notes.append(f"{source}: numbers read with decimal commas ({comma.strip()!r} is "
                         f"{comma.strip().replace(',', '.')}); --decimal . to read them otherwise")
    if chosen_decimal == chosen:
        raise ConfigError(f"--decimal comma: comma is also the field separator of {source}; pass --sep too "
                          "(e.g. --sep semicolon --decimal comma)")
    return Dialect(chosen, chosen_decimal, tuple(notes))


def _records(head: str, complete: bool) -> list[str]:
    """The lines of `head` that are not blank; the last one dropped when the text was cut."""
    lines = head.splitlines()
    if not complete and lines:
        lines = lines[:-1] if len(lines) > 1 else lines
    return [line for line in lines if line.strip()]


@contextlib.contextmanager
def _fields_up_to(n: int):
    """Let the csv module read fields of up to ``n`` characters for the duration (its default limit, 128 KiB,
    is global): under a separator a line does not use, a wide table's whole header (20,000 genes: ~160 KiB)
    is one field."""
    limit = csv.field_size_limit()
    if n <= limit:
        yield
        return
    csv.field_size_limit(n)
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _split(line: str, sep: str) -> list[str]:
    with _fields_up_to(len(line)):
        return next(csv.reader([line], delimiter=sep), [])


def _split_shape(lines: list[str], sep: str) -> tuple[int, bool]:
    """(fields in the header, whether every other line has as many) when split on `sep`. Lines are split
    one by one: a quoted field spanning lines makes a row look ragged, which only costs detection."""
    if not lines:
        return 0, False
    n = len(_split(lines[0], sep))
    return n, all(len(_split(line, sep)) == n for line in lines[1:])


def _head_text(src: _Source) -> tuple[str, bool]:
    """The first lines of a text table (at least the header and the first row, about a MiB), decoded, and
    whether that is the whole file."""
    with _open_binary(src.opener(), src.compression) as raw:
        parts, size, lines = [], 0, 0
        while True:
            block = raw.read(_SNIFF_BYTES)
            if not block:
                complete = True
                break
            parts.append(block)
            size += len(block)
            lines += block.count(b"\n")
            if (size >= _SNIFF_BYTES and lines >= 2) or size >= _MAX_HEAD_BYTES:
                complete = False
                break
    data = b"".join(parts)
    if not complete and b"\n" in data:
        data = data[:data.rindex(b"\n") + 1]  # whole lines (a line end never splits a UTF-8 character)
    return data.decode("utf-8-sig"), complete


@contextlib.contextmanager
def _open_binary(src: Any, compression: str | None):
    """A path or binary buffer as a binary stream, decompressed as pandas would."""
    with contextlib.ExitStack() as stack:
        if compression == "zip":
            archive = stack.enter_context(zipfile.ZipFile(src))
            members = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX/")]
            if len(members) != 1:
                raise ValueError(f"a .zip table must hold exactly one file, found {len(members)}")
            yield stack.enter_context(archive.open(members[0]))
        elif compression is None:
            yield stack.enter_context(open(src, "rb")) if isinstance(src, str) else src
        else:
            yield stack.enter_context({"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression](src))


def _header_cells(src: Any, sep: str, compression: str | None) -> list[str]:
    """Cells of the first line of a path or binary buffer, decompressing as pandas would.

    Read with the csv module rather than pandas: a one-row read of a 60,000-column header costs pandas
    seconds, and pandas would rename repeated names.
    """
    with _open_binary(src, compression) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        try:
            return next(csv.reader(text, delimiter=sep), [])
        finally:
            text.detach()


# ── column names ─────────────────────────────────────────────────────────────────────────────────────────
#
# Every column needs a name that another table can repeat: the model matches features by name, so a
# feature called "Unnamed: 6" (pandas' name for an empty header cell) could never be found again. The rule:
#   * an empty first header cell is the row-name column of R's write.csv (and of pandas' to_csv with its
#     index): its values become the sample ids, under the name sample_id (unless a sample_id column exists,
#     or the values repeat or are missing: then it is an error). It is never a feature; with --id naming
#     another column it is ignored. `predict` names it the same way, so a model predicts on its own
#     training file.
#   * another empty header cell over a column without any value (a separator at the end of every line) is
#     ignored with a note; over values, it is an error naming its position.
#   * a name given twice is an error naming the positions.


def row_names_header(columns: Sequence[str]) -> list[str]:
    """The header with an empty first cell named `sample_id` (R's write.csv row names), when no other
    column has that name; the readers of every command name it so."""
    columns = [str(c) for c in columns]
    if columns and not columns[0].strip() and DEFAULT_ID not in columns[1:]:
        columns[0] = DEFAULT_ID
    return columns


_UNNAMED = "\x00unnamed "  # stand-in names of empty header cells: never a feature, never shown


def _unnamed(position: int) -> str:
    """A stand-in name for the empty header cell at 0-based `position`."""
    return f"{_UNNAMED}{position + 1}"


def _header_names(cells: Sequence[Any], source: str) -> tuple[list[str], list[str], bool]:
    """(column names, notes, whether the first column is row names read as `sample_id`): row names named,
    other empty cells given stand-in names, repeats refused. Beside a `sample_id` column the row names keep a
    stand-in name: ``_check_unnamed`` ignores them when they are row numbers."""
    names = [str(c) for c in cells]
    _check_unique_header(names, source, False)
    notes = []
    row_names = bool(names) and not names[0].strip()
    if row_names and DEFAULT_ID in names[1:]:
        names[0] = _unnamed(0)
        row_names = False
    elif row_names:
        names[0] = DEFAULT_ID
        notes.append(f"{source}: the first column has no name (R's write.csv row names): read as the sample ids, "
                     f"{DEFAULT_ID!r}")
    for j in range(1, len(names)):
        if not names[j].strip():
            names[j] = _unnamed(j)
    return names, notes, row_names


def _check_unnamed(frame: pd.DataFrame, source: str, row_names: bool, names: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Drop the columns of `frame` under an empty header cell that hold no value; any other is an error
    naming its position. `names`: every column of the file (for positions and neighbours). With
    `row_names`, the first column's values must be usable as sample ids."""
    notes = []
    if row_names and DEFAULT_ID in frame.columns:
        col = frame[DEFAULT_ID]
        if col.isna().any() or col.duplicated().any():
            why = "missing values" if col.isna().any() else "repeated values"
            raise DataError(f"{source}: header cell 1 is empty, and its column holds {why}, so it cannot be row "
                            "names (sample ids); give the first column a name")
    empty = [c for c in frame.columns if str(c).startswith(_UNNAMED)]
    position = {n: j for j, n in enumerate(names)}
    first = [c for c in empty if position[c] == 0 and frame[c].notna().any()]  # row names beside a sample_id column
    if first:
        if not _row_numbers(frame[first[0]]):
            raise DataError(f"{source}: header cell 1 is empty (R's row names?) and another column is already named "
                            f"{DEFAULT_ID!r}; give the first column a name")
        frame = frame.drop(columns=first)
        empty = [c for c in empty if c not in first]
        notes.append(f"{source}: ignored the first column, which has no name and numbers the rows (as R's write.csv "
                     f"and pandas' to_csv write row names by default), as the sample ids are in {DEFAULT_ID!r}")
    for c in empty:
        if frame[c].notna().any():
            j = position[c]
            after = f" (after {names[j - 1]!r})" if j and not names[j - 1].startswith(_UNNAMED) else ""
            raise DataError(f"{source}: header cell {j + 1}{after} is empty but its column holds values; give every "
                            "column a name (a feature needs one that other tables can repeat)")
    if empty:
        frame = frame.drop(columns=empty)
        where = ", ".join(str(position[c] + 1) for c in empty)
        notes.append(f"{source}: ignored {len(empty)} column{'s' * (len(empty) > 1)} with neither a name nor a "
                     f"value (column {where}; a separator at the end of each line?)")
    return frame, notes


def _row_numbers(col: pd.Series) -> bool:
    """Whether a column holds row numbers: distinct integers in every row (R's automatic row names, 1, 2, ...,
    also of a subset or a reordered frame; pandas' default index, 0, 1, ...)."""
    numbers = pd.to_numeric(col, errors="coerce")
    return bool(numbers.notna().all() and (numbers == numbers.round()).all() and numbers.is_unique)


def _apply_header_rules(frame: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """The column-name rules for a table read whole (parquet): see above."""
    names, notes, row_names = _header_names(list(frame.columns), source)
    frame = frame.set_axis(names, axis=1)
    frame, more = _check_unnamed(frame, source, row_names, names)
    return frame, notes + more


# ── text tables ──────────────────────────────────────────────────────────────────────────────────────────


class TextTable:
    """A delimited text table whose layout is known: separator, decimal mark, column names.

    ``open`` reads only the head of the file; ``read_frame`` reads it whole as a DataFrame, and
    ``read_features`` reads it with the given feature columns straight into one matrix."""

    def __init__(self, src: _Source, dialect: Dialect, names: list[str], notes: list[str], row_names: bool,
                 features_in_rows: bool, header: list[str]):
        self.src, self.dialect, self.names = src, dialect, names
        self.notes, self.row_names, self.features_in_rows, self.header = notes, row_names, features_in_rows, header
        self._fields_checked = False
        self.short_header = False  # a features x samples header without the feature-name column's cell

    @property
    def fmt(self) -> str:
        return "TSV" if self.dialect.sep == "\t" else "CSV"

    @classmethod
    def open(cls, src: _Source, *, sep: str | None = None, decimal: str | None = None,
             features_in_rows: bool = False) -> "TextTable":
        fmt = "TSV" if src.default_sep == "\t" else "CSV"
        try:
            head, complete = _head_text(src)
            dialect = sniff_dialect(head, complete, src.name, src.default_sep, sep, decimal, src.suffix)
            header = _header_cells(src.opener(), dialect.sep, src.compression)
        except UnicodeDecodeError as exc:
            raise _not_utf8(src.name, fmt, exc, src) from None
        except _PARSE_ERRORS as exc:
            raise DataError(f"cannot parse {src.name} as {fmt}: {_short_reason(exc)}") from None
        if not header:
            if not head.strip():
                raise DataError(f"{src.name} is empty; expected a header line and data rows")
            raise DataError(f"{src.name} has an empty first line; expected a header line and data rows")
        notes = list(dialect.notes)
        if features_in_rows:
            _check_not_featurecounts(header, src.name)
            short = _header_lacks_row_name_cell(header, head, complete, dialect.sep)
            if short:
                header = ["", *header]
                notes.append(f"{src.name}: its header has one cell fewer than its rows (as R's write.table writes a "
                             "matrix): the first column read as the feature names, every header cell as a sample id")
            _check_unique_header(header, src.name, True)
            table = cls(src, dialect, list(header), notes, False, True, header)
            table.short_header = short
            return table
        names, more, row_names = _header_names(header, src.name)
        return cls(src, dialect, names, notes + more, row_names, False, header)

    def _error(self, exc: BaseException) -> DataError:
        if isinstance(exc, pd.errors.EmptyDataError):
            return DataError(f"{self.src.name} is empty; expected a header line and data rows")
        if isinstance(exc, UnicodeDecodeError):
            return _not_utf8(self.src.name, self.fmt, exc, self.src)
        return DataError(f"cannot parse {self.src.name} as {self.fmt}: {_short_reason(exc)}")

    def _read_csv(self, **kwargs) -> pd.DataFrame:
        """The table read whole by pandas (`kwargs`: read_csv's)."""
        if self.short_header and "names" not in kwargs:
            # the header as ``open`` read it: with R's write.table the file's lacks the feature-name column's
            # cell, and pandas would take that column for the index
            kwargs.update(header=0, names=self.header)
        with _open_binary(self.src.opener(), self.src.compression) as raw:
            return self._parse(raw, **kwargs)

    def _parse(self, raw, **kwargs):
        """pandas' read_csv of the decompressed stream `raw` (from ``_open_binary``, which, unlike pandas, finds
        a .zip's table past folder entries and macOS's __MACOSX/ files)."""
        return pd.read_csv(raw, sep=self.dialect.sep, decimal=self.dialect.decimal, **kwargs)

    def check_fields(self) -> None:
        """Every row must have the header's number of fields (``fields.check_stream``): given the column
        names, pandas would read a short row as missing values and drop or misplace a long one's extra
        field. One pass over the text before pandas reads it (numpy counts the separators)."""
        if self._fields_checked:
            return
        try:
            with _open_binary(self.src.opener(), self.src.compression) as raw:
                check_stream(raw, self.dialect.sep, len(self.header), self.src.name)
        except DataError as exc:  # rows of another width: lines above the header are the likely cause
            raise DataError(f"{exc}{preamble_hint(self.header, self.src.name)}") from None
        except _PARSE_ERRORS as exc:
            if isinstance(exc, UnicodeDecodeError):
                raise _not_utf8(self.src.name, self.fmt, exc, self.src) from None
            raise self._error(exc) from None
        self._fields_checked = True

    def read_frame(self, text: Sequence[str] = (), ids: Sequence[str] = ()) -> pd.DataFrame:
        """The whole table as a DataFrame (n_samples, n_columns), string column names; the `text` columns
        as read (strings: sample ids such as 007 are matched as written), the others typed by pandas; `ids`:
        the sample id columns, where only an empty cell is missing (``as_written_na``). With
        --features-in-rows, `text` names rows, typed as written (see ``read_table``)."""
        self.check_fields()
        if self.features_in_rows:
            try:
                frame = _read_feature_rows_text(self._read_csv, self.header, self.src.name, text,
                                                self.dialect.decimal, self.notes)
            except _PARSE_ERRORS + (pd.errors.EmptyDataError,) as exc:
                raise self._error(exc) from None
            return self._stamped(frame)
        try:
            # low_memory=False: one dtype per column, and no DtypeWarning printed behind the CLI's back.
            frame = self._read_csv(header=0, names=self.names, low_memory=False, dtype={c: str for c in text} or None,
                                   **as_written_na(self.names, ids))
        except _PARSE_ERRORS + (pd.errors.EmptyDataError,) as exc:
            raise self._error(exc) from None
        self._check_rows(frame)
        frame, notes = _check_unnamed(frame, self.src.name, self.row_names, self.names)
        self.notes += notes
        return self._stamped(frame)

    def _stamped(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with the decimal mark it was read with and the file's name in its attrs: a cell that is
        not a number is then found (and named) as pandas saw it (see `_common.DECIMAL_ATTR`)."""
        frame.attrs[DECIMAL_ATTR] = self.dialect.decimal
        frame.attrs[SOURCE_ATTR] = self.src.name
        return frame

    def _check_rows(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame.index, pd.RangeIndex):
            # pandas takes the first field as the index when rows have one field more than the header.
            raise DataError(
                f"{self.src.name}: data rows have one field more than the header (row names without a header "
                "cell, as R's write.table writes them); give the first column a name such as sample_id"
            )
        if frame.shape[0] == 0:
            raise DataError(f"{self.src.name} has a header but no data rows")

    def read_features(self, features: Sequence[str], text: Sequence[str] = (),
                      ids: Sequence[str] = ()) -> tuple[pd.DataFrame, np.ndarray] | None:
        """(the other columns as a DataFrame, the `features` columns as one C-ordered matrix (n_samples,
        len(features)), float32 when every value is a float32 number (counts: ``feature_dtype``), else
        float64), read in pieces so that the matrix is the only full-size copy; None when some feature
        column is not all numbers (the caller reads the frame whole and names it).

        The reader is ``predict``'s (``streamed.read_text_features``), so a model sees at prediction the
        numbers it was trained on, bit for bit: correctly rounded, as in a parquet copy of the table
        (``read_frame``, pandas' default parser, can be an ulp away). The other columns get pandas'
        whole-file type inference, except the `text` columns, read as strings, and the `ids` among them with
        only an empty cell missing (see ``read_frame``).

        Not preceded by ``check_fields``: the reader checks every row's number of fields itself, and a row
        of another width stops it, so that ``read_frame`` (which checks first) names the line (measured:
        1.0 s of a 392 MB CSV's 4.6 s, a second pass over the text)."""
        features = list(features)
        blocks = _FeatureBlocks()
        frame = self._read_features_stream(features, text, blocks, ids)
        if frame is None:
            return None
        if not blocks.n_rows:
            raise DataError(f"{self.src.name} has a header but no data rows")
        X = blocks.matrix()
        frame, notes = _check_unnamed(frame, self.src.name, self.row_names, self.names)
        self.notes += notes
        return frame, X

    def _read_features_stream(self, features: list[str], text: Sequence[str], blocks: "_FeatureBlocks",
                              ids: Sequence[str] = ()) -> pd.DataFrame | None:
        """The other columns; the features into `blocks`, through the reader ``predict`` uses
        (``streamed.read_text_features``). None when a feature cell is not a number, or the reader stops
        on the text: ``read_frame`` then reads it whole and names the cell or the fault."""
        from .streamed import read_text_features

        source = self.src.opener()  # a path, or the bytes of standard input or a pipe, read once
        return read_text_features(self.src.name, source, self.names, features, self.dialect.sep,
                                  self.dialect.decimal, blocks.add, text, ids)

class _FeatureBlocks:
    """Row blocks of a feature matrix as they are read, gathered into chunks of ``_CHUNK_BYTES`` and kept
    float32 while every value is a float32 number (``exact_in_float32``: counts, values stored as float32),
    then assembled into one C-ordered matrix.

    Chunks, not the blocks themselves: a reader's blocks are small (a piece of text: a few MiB), and small
    arrays freed go back to the C heap, not to the system, so assembling them would peak at two copies of
    the data. A chunk is above glibc's largest mmap threshold (32 MiB): each goes back to the system as it
    is copied into the matrix, which then peaks at one copy and a chunk."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.fill = 0  # rows used in the last chunk
        self.narrow = True
        self.n_rows = 0

    def add(self, block: np.ndarray) -> None:
        """A float64 block (rows, d), the next rows."""
        if self.narrow:
            narrowed = as_float32_if_exact(block)
            if narrowed is not None:
                block = narrowed  # the same numbers, half the memory
            else:  # the chunks so far hold exact float32 numbers: back to float64, nothing lost
                self.narrow, self.chunks = False, [c.astype(np.float64) for c in self.chunks]
        rows, at = len(block), 0
        while at < rows:
            if not self.chunks or self.fill == len(self.chunks[-1]):
                capacity = max(1, _CHUNK_BYTES // (block.itemsize * max(1, block.shape[1])))
                self.chunks.append(np.empty((capacity, block.shape[1]), dtype=block.dtype))
                self.fill = 0
            chunk = self.chunks[-1]
            k = min(rows - at, len(chunk) - self.fill)
            chunk[self.fill:self.fill + k] = block[at:at + k]
            self.fill += k
            at += k
        self.n_rows += rows

    def matrix(self) -> np.ndarray:
        """The rows read (n, d); each chunk is freed once copied."""
        chunks, self.chunks = self.chunks, []
        X = np.empty((self.n_rows, chunks[0].shape[1]), dtype=chunks[0].dtype)
        at = 0
        chunks.reverse()
        while chunks:
            chunk = chunks.pop()
            k = min(len(chunk), self.n_rows - at)  # the last chunk: its rows filled
            X[at:at + k] = chunk[:k]
            at += k
            del chunk
        return X


_CHUNK_BYTES = 64 << 20


def _not_utf8(name: str, fmt: str, exc: UnicodeDecodeError, src: "_Source | None" = None) -> DataError:
    """The message for a table that is not UTF-8. With `src`, the bad byte is found in the text (a second
    pass, on this error only) and named by its line: pandas' error counts from the start of its own buffer,
    so "position 142475" was said of a byte on line 5,001, 1.45 MB into the file."""
    if src is not None:
        try:
            with _open_binary(src.opener(), src.compression) as raw:
                found = locate_not_utf8(raw)
        except _PARSE_ERRORS:  # a stream that fails otherwise too (truncated): the parser's word, as before
            found = None
        if found is not None:
            byte, line, _ = found
            return DataError(f"cannot parse {name} as {fmt}: not UTF-8 text (byte 0x{byte:02x} on line {line}); "
                             "save it as UTF-8")
    return DataError(f"cannot parse {name} as {fmt}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                     f"position {exc.start}); save it as UTF-8")


def exact_in_float32(values: np.ndarray) -> bool:
    """Whether every value of `values` (any numeric array) is a float32 number exactly (NaN included), so that
    a float32 copy holds the same numbers in half the memory: counts below 2**24, values read from float32
    storage. A value beyond float32's range is not (it would become infinite)."""
    return as_float32_if_exact(values) is not None


def as_float32_if_exact(values: np.ndarray) -> np.ndarray | None:
    """`values` as float32 when that holds the same numbers (``exact_in_float32``), else None."""
    if values.dtype in _EXACT_IN_FLOAT32:
        return values.astype(np.float32, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):
        narrow = values.astype(np.float32)
        if values.dtype.kind != "f":
            return narrow if np.array_equal(narrow, values) else None
        differ = narrow != values  # NaN is unequal to itself: a NaN is exact when the value is NaN
        first = int(np.argmax(differ))  # most tables that are not float32 differ at once: no mask copy then
        if differ.flat[first] and (not np.isnan(values.flat[first]) or not np.isnan(values[differ]).all()):
            return None
    return narrow


# dtypes whose every value is a float32 number
_EXACT_IN_FLOAT32 = frozenset(np.dtype(t) for t in (np.float32, np.float16, np.int8, np.int16, np.uint8, np.uint16, np.bool_))


def exact_dtypes(dtypes) -> bool:
    """Whether columns of these (NumPy or pandas) dtypes hold float32 numbers only, told from the dtypes."""
    return all(isinstance(t, np.dtype) and t in _EXACT_IN_FLOAT32 for t in dtypes)


def feature_dtype(blocks: Sequence[np.ndarray]) -> type:
    """The dtype of a feature matrix made of `blocks` (parts of its values): float32 when every value is a
    float32 number (``exact_in_float32``), else float64. The network is float32; a float32 matrix holds
    the same numbers as a float64 one would, and the preprocessing computes in float64 from either, so the
    model is the same (see ``Dataset``)."""
    return np.float32 if all(exact_in_float32(b) for b in blocks) else np.float64


class ParquetTable:
    """A parquet table read column by column: ``read_features`` reads the feature columns straight into one
    C-ordered matrix (float32 when every value is a float32 number, ``feature_dtype``), a few hundred columns
    at a time, so that neither a pandas frame of every column nor a float64 copy of a float32 table is made
    (a 8,000 x 5,000 float32 file: ~0.4 s and one 160 MB matrix, against ~1.7 s and 160 MB + 320 MB through
    ``pd.read_parquet`` and ``to_numpy``). The same interface as ``TextTable`` for ``read_dataset``."""

    row_names = False

    def __init__(self, src: _Source, file, names: list[str]):
        self.src, self.file, self.names = src, file, names
        self.notes: list[str] = []

    @classmethod
    def open(cls, src: _Source) -> "ParquetTable | None":
        """The table's schema; None when the file is best read whole (``read_table``): a stored pandas index
        (it becomes a column) or a column without a name (the header rules need its values)."""
        try:
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - pyarrow is a declared dependency
            raise DataError("reading .parquet tables needs pyarrow; pip install pyarrow") from None
        try:
            file = pq.ParquetFile(src.name)
            schema = file.schema_arrow
            meta = schema.pandas_metadata or {}
        except _PARSE_ERRORS as exc:
            raise DataError(f"cannot parse {src.name} as parquet: {_short_reason(exc)}") from None
        names = [str(n) for n in schema.names]
        stored_index = any(not isinstance(c, dict) for c in meta.get("index_columns", []))
        if stored_index or any(n.startswith("__index_level_") or not n.strip() for n in names):
            return None
        _check_unique_header(names, src.name, False)
        return cls(src, file, names)

    def read_frame(self, text: Sequence[str] = (), ids: Sequence[str] = ()) -> pd.DataFrame:
        """The whole table as a DataFrame, as ``read_table`` gives it (text stays text: `text` and `ids` are
        the text tables')."""
        frame, notes = read_table_with_notes(self.src.name)
        self.notes += notes
        return frame

    def read_features(self, features: Sequence[str], text: Sequence[str] = (),
                      ids: Sequence[str] = ()) -> tuple[pd.DataFrame, np.ndarray] | None:
        """(the other columns as a DataFrame, the `features` columns as one C-ordered matrix (n, d)); None when
        a feature column is not numbers (int, float or bool; the caller reads the frame whole and names it).
        The values are those ``pd.read_parquet`` gives (missing values NaN)."""
        import pyarrow as pa

        features = list(features)
        types = {f.name: f.type for f in self.file.schema_arrow}
        if not all(pa.types.is_integer(types[f]) or pa.types.is_floating(types[f]) or pa.types.is_boolean(types[f])
                   for f in features):
            return None
        feature_set = set(features)
        others = [n for n in self.names if n not in feature_set]
        n = self.file.metadata.num_rows
        if n == 0:
            raise DataError(f"{self.src.name} has a header but no data rows")
        try:
            frame = self.file.read(columns=others).to_pandas() if others else pd.DataFrame(index=pd.RangeIndex(n))
            X = self._matrix(features, n)
        except _PARSE_ERRORS as exc:
            raise DataError(f"cannot parse {self.src.name} as parquet: {_short_reason(exc)}") from None
        finally:
            # Arrow's allocator keeps the freed column groups for reuse; nothing else reads with it now
            # (measured: ~110 MB held after the 8,000 x 5,000 table)
            release = getattr(pa.default_memory_pool(), "release_unused", None)
            if release is not None:
                release()
        frame.columns = [str(c) for c in frame.columns]
        return frame.reset_index(drop=True), X

    def _matrix(self, features: list[str], n: int) -> np.ndarray:
        """The `features` columns (n rows) as one C-ordered matrix, float32 until a value needs float64."""
        X = np.empty((n, len(features)), dtype=np.float32)
        step = max(1, _PARQUET_GROUP_BYTES // (8 * n))  # columns per read
        for j0 in range(0, len(features), step):
            table = self.file.read(columns=features[j0:j0 + step])
            for k0 in range(0, table.num_columns, _TILE):
                columns = [_column_values(table.column(k)) for k in range(k0, min(table.num_columns, k0 + _TILE))]
                at = j0 + k0
                if X.dtype == np.float32 and feature_dtype(columns) is np.float64:
                    wider = np.empty(X.shape, dtype=np.float64)
                    wider[:, :at] = X[:, :at]  # exact float32 numbers: nothing is lost
                    X = wider
                # (w, n) -> X's columns: contiguous rows first, then one transposing copy
                X[:, at:at + len(columns)] = np.stack(columns).T
        return X


# Columns read at a time: Arrow decodes a group in ~2-3 times its size (measured on 8,000 x 5,000 float32: 64 MiB
# groups peaked 190 MB above the matrix, 16 MiB 80 MB, in the same time)
_PARQUET_GROUP_BYTES = 16 << 20
_TILE = 64  # columns transposed into the matrix at a time (their rows stay in the CPU caches)


def _column_values(column) -> np.ndarray:
    """A numeric pyarrow column as a NumPy array, missing values NaN (as pandas reads them). A float column of
    one chunk without missing values is a view of its data buffer: ChunkedArray.to_numpy costs ~60 us a
    column (0.3 s at 5,000 columns) and releases the GIL each time, so beside the import of scikit-learn each
    column waited for it (0.4 s of reading became 1.7 s)."""
    import pyarrow as pa

    if column.null_count:  # pyarrow's conversion puts NaN where values are missing
        return column.cast(pa.float64()).to_numpy()
    if column.num_chunks == 1 and pa.types.is_floating(column.type) and column.type.bit_width in (32, 64):
        chunk = column.chunk(0)
        width = column.type.bit_width // 8
        return np.frombuffer(chunk.buffers()[1], dtype=np.float32 if width == 4 else np.float64,
                             count=len(chunk), offset=chunk.offset * width)
    return column.to_numpy()


def parquet_columns(schema, path: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The columns every reader sees in a parquet file with this (pyarrow) schema, as (name, the file's field)
    pairs in order (a name given twice is the caller's error to name), and a note on its stored pandas index.

    ``DataFrame.to_parquet`` stores any index but a plain range as fields: a named index under its name, an
    unnamed one as ``__index_level_0__`` (one per level). The index comes first, as it does in pandas. A
    single unnamed one is the row names, which usually hold the sample ids
    (``set_index("sample_id").rename_axis(None)``), so it is read as `sample_id`, as R's row names are; when
    a column has that name (the index then numbers the rows of a filtered frame), or for the levels of an
    unnamed multi-index, it is left out. Without this rule ``train`` saw a column 'index' that ``predict``
    did not."""
    names = [str(n) for n in schema.names]
    meta = schema.pandas_metadata or {}
    stored = [str(c) for c in meta.get("index_columns", []) if isinstance(c, str) and str(c) in names]
    stored += [n for n in names if n.startswith("__index_level_") and n not in stored]
    unnamed = [n for n in stored if n.startswith("__index_level_")]
    rename = {unnamed[0]: DEFAULT_ID} if len(stored) == 1 and unnamed and DEFAULT_ID not in names else {}
    order = [*stored, *(n for n in names if n not in stored)]
    columns = [(rename.get(n, n), n) for n in order if n in rename or n not in unnamed]
    notes = []
    if rename:
        notes.append(f"{path}: its stored pandas index has no name: read as the sample ids, {DEFAULT_ID!r}")
    elif unnamed:
        why = f"the table has a {DEFAULT_ID!r} column" if DEFAULT_ID in names else "levels of a multi-index"
        notes.append(f"{path}: ignored its stored pandas index without a name ({why}); name it to use it")
    return columns, notes


def _read_parquet(path: str, features_in_rows: bool, text: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """(the whole parquet table, its columns named as ``parquet_columns`` names them; notes)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a declared dependency
        raise DataError("reading .parquet tables needs pyarrow; pip install pyarrow") from None
    try:
        schema = pq.read_schema(path)
        columns, notes = parquet_columns(schema, path)
        _check_unique_header([n for n, _ in columns], path, features_in_rows)
        frame = pd.read_parquet(path)
    except _PARSE_ERRORS as exc:
        raise DataError(f"cannot parse {path} as parquet: {_short_reason(exc)}") from None
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        # a stored index: its levels become columns, first, named as the file's fields are (an index named
        # like a column, sample_id beside sample_id, is stored as __index_level_0__ but read back named)
        stored = [str(c) for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)]
        levels = stored if len(stored) == frame.index.nlevels else \
            [n if n is not None else f"__index_level_{i}__" for i, n in enumerate(frame.index.names)]
        frame = frame.rename_axis(levels).reset_index()
    frame.columns = [str(c) for c in frame.columns]
    fields = {f for _, f in columns}
    for field in [c for c in frame.columns if c not in fields]:
        del frame[field]  # in place: no copy of the table
    frame.rename(columns={f: n for n, f in columns if n != f}, inplace=True)
    if frame.shape[0] == 0:
        raise DataError(f"{path} has a header but no {'feature' if features_in_rows else 'data'} rows")
    return (_samples_from_feature_rows(frame, path, text) if features_in_rows else frame), notes


def preamble_hint(header: Sequence[Any], source: str) -> str:
    """For an error about rows of another width than the header: a hint when the line read as the header is
    one of the lines some tools write above their table — a GEO series matrix's '!Series_…' lines (the table
    sits between '!series_matrix_table_begin' and '!series_matrix_table_end'), or a '#' comment (featureCounts'
    "# Program:featureCounts ..."). Empty otherwise."""
    from .names import comment_line_hint

    first = str(header[0]).strip().strip('"') if len(header) else ""
    if first.startswith(("!Series_", "!Sample_", "!series_matrix", "!Platform_")):
        keep = "grep -v -e '^!' -e '^$'"
        command = f"zcat {source} | {keep}" if str(source).endswith(".gz") else f"{keep} {source}"  # grep reads no gzip
        return (f"; {source} is a GEO series matrix file: its expression table sits between the lines "
                "!series_matrix_table_begin and !series_matrix_table_end, below the study's metadata — keep only "
                f"the table, e.g. {command} > matrix.tsv, and give the samples' annotations with --samples")
    return comment_line_hint(header)


# featureCounts' gene annotation columns between the gene id and the samples (its output is genes x samples)
_FEATURECOUNTS = ["Chr", "Start", "End", "Strand", "Length"]


def _header_lacks_row_name_cell(header: Sequence[str], head: str, complete: bool, sep: str) -> bool:
    """Whether a features x samples header lacks the feature-name column's cell: R's ``write.table(m)``
    writes a header of the sample ids alone above rows of a name and one value per sample. Told by the first
    rows of `head` (the text the dialect was sniffed on), which must all have one field more than the header."""
    rows = [_split(r, sep) for r in _records(head, complete)[1:6]]
    # rows ending in an empty field have a separator at their end instead (the header's values would shift)
    return bool(rows) and str(header[0]).strip() != "" and all(len(r) == len(header) + 1 for r in rows) \
        and not all(not r[-1].strip() for r in rows)


def _check_not_featurecounts(header: Sequence[Any], source: str) -> None:
    """A genes x samples header of featureCounts (Geneid, Chr, Start, End, Strand, Length, then the samples):
    its five annotation columns would be read as samples (Start, End and Length hold numbers)."""
    cells = [str(h).strip() for h in header[1:1 + len(_FEATURECOUNTS)]]
    if cells == _FEATURECOUNTS:
        raise DataError(f"{source}: columns 2-6 ({', '.join(_FEATURECOUNTS)}) are featureCounts' gene annotations, "
                        "not samples; with --features-in-rows every column after the first is one sample — keep "
                        f"the gene ids and the counts, e.g. cut -f1,7- {source} > counts.tsv")


def _check_unique_header(header: Sequence[Any], source: str, features_in_rows: bool) -> None:
    names = [str(h) for h in header]
    offset = 1 if features_in_rows else 0  # the first header cell only labels the feature-name column
    positions: dict[str, list[int]] = {}
    for j, name in enumerate(names[offset:], start=offset + 1):
        if name.strip():
            positions.setdefault(name, []).append(j)
    repeats = [(name, at) for name, at in positions.items() if len(at) > 1]
    if repeats:
        listed = ", ".join(f"{name!r} (×{len(at)})" for name, at in repeats[:5])
        more = f" and {len(repeats) - 5} more" if len(repeats) > 5 else ""
        listed += more + " (columns " + "; ".join(", ".join(map(str, at[:4])) + (", ..." if len(at) > 4 else "")
                                         for _, at in repeats[:5]) + ")"
        more = ""
        if features_in_rows:
            raise DataError(f"duplicate sample ids in the header of {source}: {listed}{more}; sample ids must be unique")
        raise DataError(f"duplicate column names in {source}: {listed}{more}; rename or remove the repeated columns")


# The transposed (features × samples) layout. Rows whose every value parses as a number become numeric
# columns (int64 when all integral, else float64); the others, and the rows named as holding ids, groups,
# batches or labels, are typed as written (``typed_as_written``): labels 01 and 02, patients 000 and 001
# stay as written, as in a samples × features table, instead of becoming the numbers 1, 2, 0 and 1.


def _read_feature_rows_text(read_csv: Callable[..., pd.DataFrame], header: list[str], source: str,
                            text: Sequence[str] = (), decimal: str | None = None,
                            notes: list[str] | None = None) -> pd.DataFrame:
    """Features × samples text table -> samples × features frame with `sample_id` first; `read_csv(**kw)`
    reads the file with its separator and `decimal` mark; the rows named in `text` are read as text.

    A label row makes every sample column text, and parsing 60,000 × n cells from Python strings is slow.
    So: pass 1 reads the names and the first sample to find the text rows, pass 2 lets pandas' C parser read
    the numeric rows as floats, pass 3 reads the few text rows. If pass 2 still meets text (a row that looked
    numeric in the first sample), fall back to one generic pass. Columns under an empty header cell that hold
    no value (a separator at the end of every line, as spreadsheets export) are left out, with a line in
    `notes`, as in a samples x features table; over values, an empty header cell is an error.
    """
    sample_ids = header[1:]
    if not sample_ids:
        raise DataError(f"{source} has no sample columns; with --features-in-rows the first column holds "
                        "feature names and every other column is one sample")
    blank = [k + 1 for k, s in enumerate(sample_ids) if not s.strip()]  # 0-based columns of the file
    kept: list[int] | None = None

    def read(**kwargs) -> pd.DataFrame:
        # pandas' default number parser: an ulp away from the samples x features reader for about a third of
        # 17-digit decimals; its correctly rounded one ("round_trip") read a 5,000 x 1,000 table 3 x slower
        if kept is not None:
            kwargs.setdefault("usecols", kept)
        return read_csv(low_memory=False, **kwargs)

    if blank:
        held = read(usecols=blank, dtype=str).notna().any(axis=0).to_numpy()
        if held.any():
            raise DataError(f"{source}: header cell {blank[int(np.argmax(held))] + 1} is empty; every sample column "
                            "needs its id there")
        kept = [j for j in range(len(header)) if j not in set(blank)]
        sample_ids = [header[j] for j in kept[1:]]
        if not sample_ids:
            raise DataError(f"{source} has no sample columns; with --features-in-rows the first column holds "
                            "feature names and every other column is one sample")
        if notes is not None:
            notes.append(f"{source}: ignored {len(blank)} column{'s' * (len(blank) > 1)} with neither a name nor a "
                         f"value (column {', '.join(str(j + 1) for j in blank[:5])}{', ...' if len(blank) > 5 else ''}"
                         "; a separator at the end of each line?)")

    first = read(usecols=[0, kept[1] if kept is not None else 1], dtype=str)
    if first.shape[0] == 0:
        raise DataError(f"{source} has a header but no feature rows")
    names = _check_feature_names(first.iloc[:, 0], source)
    cells = first.iloc[:, 1]
    # under decimal commas too: 0,5 is a number (pass 2 reads it as one), else every row of such a table was text
    is_text = non_number_cells(cells, decimal or ".") | np.isin(names, list(text))
    text_lines = set((np.flatnonzero(is_text) + 1).tolist())  # file line numbers; the header is line 0
    numeric = read(skiprows=sorted(text_lines), dtype={0: str}) if not is_text.all() else None
    text_rows = read(skiprows=lambda i: i > 0 and i not in text_lines, dtype=str) if is_text.any() else None

    def rows_are(frame: pd.DataFrame | None, mask: np.ndarray) -> bool:
        expected = [n for n, m in zip(names, mask) if m]
        return frame is None and not expected or frame is not None and list(frame.iloc[:, 0]) == expected

    numeric_ok = numeric is None or all(pd.api.types.is_numeric_dtype(t) for t in numeric.dtypes.iloc[1:])
    if not (numeric_ok and rows_are(numeric, ~is_text) and rows_are(text_rows, is_text)):
        return _samples_from_feature_rows(read(), source, text, decimal)
    numeric_values = (np.empty((0, len(sample_ids))) if numeric is None
                      else numeric.iloc[:, 1:].to_numpy(dtype=np.float64))  # (F_num, S)
    text_values = (np.empty((0, len(sample_ids)), dtype=object) if text_rows is None
                   else text_rows.iloc[:, 1:].to_numpy(dtype=object))  # (F_text, S)
    return _assemble_samples(sample_ids, names, is_text, numeric_values, text_values, text, decimal, source)


def _samples_from_feature_rows(raw: pd.DataFrame, source: str, text: Sequence[str] = (),
                               decimal: str | None = None) -> pd.DataFrame:
    """Generic transposition of an in-memory features × samples frame (parquet, or the text fallback); the
    rows named in `text` are typed as written when their cells are text (a table of numbers only keeps them)."""
    if raw.shape[1] < 2:
        raise DataError(f"{source} has no sample columns; with --features-in-rows the first column holds "
                        "feature names and every other column is one sample")
    if raw.shape[0] == 0:
        raise DataError(f"{source} has a header but no feature rows")
    names = _check_feature_names(raw.iloc[:, 0], source)
    body = raw.iloc[:, 1:]
    values, numeric_rows = _numeric_rows(body, decimal)  # (F, S) float64, (F,) bool
    cells_are_text = not all(pd.api.types.is_numeric_dtype(t) for t in body.dtypes)
    is_text = ~numeric_rows | (cells_are_text & np.isin(names, list(text)))
    text_values = body.iloc[np.flatnonzero(is_text)].to_numpy(dtype=object)
    return _assemble_samples([str(c) for c in body.columns], names, is_text, values[~is_text], text_values, text,
                             decimal, source)


def _check_feature_names(column: pd.Series, source: str) -> list[str]:
    """The first column's names as strings; missing, repeated or reserved names are errors."""
    if column.isna().any():
        raise DataError(f"{source}: {int(column.isna().sum())} rows have no feature name in the first column")
    names = [str(v) for v in column]
    repeats = [(n, k) for n, k in Counter(names).items() if k > 1]
    if repeats:
        listed = ", ".join(f"{n!r} (×{k})" for n, k in repeats[:5])
        more = f" and {len(repeats) - 5} more" if len(repeats) > 5 else ""
        rows = [i for i, n in enumerate(names) if n == repeats[0][0]][:4]
        where = ", ".join(str(i + 1) for i in rows)
        raise DataError(f"duplicate feature names in the first column of {source}: {listed}{more} ({repeats[0][0]!r} "
                        f"in data rows {where}); names must be unique — several rows per gene (a microarray's "
                        "probes?) need one row per gene, or names of their own such as the probe ids")
    if DEFAULT_ID in names:
        raise DataError(f"{source}: a row is named {DEFAULT_ID!r}, but --features-in-rows takes sample ids "
                        "from the header; rename or remove that row")
    return names


def _numeric_rows(body: pd.DataFrame, decimal: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values (F, S) float64 with NaN where not numeric, mask (F,) of rows that are entirely numeric). Cells
    left as text are numbers when written with the table's `decimal` mark (``non_number_cells``: under
    decimal commas, one sample's stray "0.5" leaves its whole column as text, "0,3" cells included)."""
    if all(pd.api.types.is_numeric_dtype(t) for t in body.dtypes):
        return body.to_numpy(dtype=np.float64), np.ones(body.shape[0], dtype=bool)
    cells = pd.Series(body.to_numpy(dtype=object).ravel())  # (F * S,)
    stray = non_number_cells(cells, decimal or ".")  # present, but not a number
    if decimal == ",":
        cells = cells.map(lambda v: v.replace(",", ".") if isinstance(v, str) else v)
    values = pd.to_numeric(cells.where(~stray), errors="coerce").to_numpy(dtype=np.float64).reshape(body.shape)
    return values, ~stray.reshape(body.shape).any(axis=1)  # a row is numeric when every present cell is


def _assemble_samples(
    sample_ids: list[str], names: list[str], is_text: np.ndarray, numeric_values: np.ndarray, text_values: np.ndarray,
    written: Sequence[str] = (), decimal: str | None = None, source: str = "the table",
) -> pd.DataFrame:
    """Samples × features frame: `sample_id`, then one column per name in file order.

    numeric_values (F_num, S) float64 holds the rows where ~is_text, text_values (F_text, S) the others; of
    these, the `written` ones (ids, groups, batches, labels) are typed as written (``typed_as_written``;
    `decimal`: the table's decimal mark), the rest left as text for the feature checks to name a stray cell.
    """
    annotation = _annotation_columns(sample_ids, [n for n, t in zip(names, is_text) if t], numeric_values,
                                     text_values, written, decimal, source) if is_text.any() else None
    num_names = [n for n, t in zip(names, is_text) if not t]
    block = numeric_values.T  # (S, F_num)
    # Integral rows (counts, 0/1 labels, numeric patient ids) become int64, as read_csv would type them.
    integral = np.all(np.isfinite(block) & (block == np.round(block)) & (np.abs(block) < 2**53), axis=0)
    parts = [pd.DataFrame({DEFAULT_ID: [str(s) for s in sample_ids]})]
    if (~integral).any():
        parts.append(pd.DataFrame(block[:, ~integral], columns=[n for n, i in zip(num_names, integral) if not i]))
    if integral.any():
        parts.append(pd.DataFrame(block[:, integral].astype(np.int64), columns=[n for n, i in zip(num_names, integral) if i]))
    if is_text.any():
        text_names = [n for n, t in zip(names, is_text) if t]
        frame = pd.DataFrame(text_values.T, columns=text_names).infer_objects()
        for name in set(text_names) & set(written):
            frame[name] = typed_as_written(frame[name], decimal)
        parts.append(frame)
    frame = pd.concat(parts, axis=1)[[DEFAULT_ID, *names]]
    if annotation is not None:
        frame.attrs[ANNOTATION_ATTR] = annotation
    return frame


# A features x samples table's columns that hold text and no number: annotation columns (gene symbols, a
# GEO file's IDENTIFIER), not samples. The reader leaves the message in the frame's attrs, and the command
# raises it (``raise_annotation_columns``) once it has ruled out the other explanation, a samples x features
# table given with --features-in-rows (its role columns are text too), which only a model's names tell.
ANNOTATION_ATTR = "mlpcli_annotation_columns"


def raise_annotation_columns(frame: pd.DataFrame) -> None:
    """The DataError that the reader of a features x samples table left in `frame`'s attrs, if any."""
    message = frame.attrs.get(ANNOTATION_ATTR)
    if message:
        raise DataError(message)


def _annotation_columns(sample_ids: list[str], text_names: list[str], numeric_values: np.ndarray,
                        text_values: np.ndarray, written: Sequence[str], decimal: str | None,
                        source: str) -> str | None:
    """The error message when columns of a features x samples table hold text and no number while other
    columns hold numbers: annotation columns (gene symbols, descriptions), not samples. Read as samples, they
    were "samples" that training left out (no row in the sheet) or failed on naming a feature's row.
    numeric_values (F_num, S): the rows of numbers; text_values (F_text, S): the rows holding text, named
    `text_names`; the `written` ones (ids, groups, batches, labels) are text in every sample and do not count."""
    rows = np.flatnonzero(~np.isin(text_names, list(written)))  # text rows that are not roles
    if not rows.size:
        return None
    block = text_values[rows]  # (R, S) object
    cells = pd.Series(block.ravel(), dtype=object)
    stray = non_number_cells(cells, decimal or ".").reshape(block.shape)  # (R, S) text, not numbers
    present = cells.notna().to_numpy().reshape(block.shape)
    texts = stray.sum(axis=0)  # (S,)
    numbers = (present & ~stray).sum(axis=0)  # (S,) cells that are numbers
    if numeric_values.shape[0]:
        numbers = numbers + np.isfinite(numeric_values).sum(axis=0)
    annotation = np.flatnonzero((numbers == 0) & (texts > 0))
    if not annotation.size or not (numbers > 0).any():
        return None
    j = int(annotation[0])
    i = int(rows[np.flatnonzero(stray[:, j])[0]])
    one = annotation.size == 1
    cells = ", ".join(str(k + 2) for k in annotation[:4]) + (", ..." if annotation.size > 4 else "")
    keep = f" (keep column 1 and columns {annotation.size + 2} on)" \
        if annotation.tolist() == list(range(annotation.size)) else ""
    return (f"{source}: column{'' if one else 's'} {_quoted([sample_ids[k] for k in annotation], 4)} (header "
            f"cell{'' if one else 's'} {cells}) hold{'s' if one else ''} text, not a sample's numbers (e.g. "
            f"{str(text_values[i, j])!r} for {text_names[i]!r}); with --features-in-rows the first column names the "
            f"features and every other column is one sample: remove such annotation columns first{keep} — or, if "
            "the table is samples x features, leave out --features-in-rows")
