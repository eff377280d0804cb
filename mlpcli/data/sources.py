"""Where a table comes from: a file (its format told by its name), standard input, a named pipe or a
process substitution, compressed or not; the checks that name what is wrong with it before any parsing."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import re
import stat
import sys
import zipfile
from dataclasses import dataclass
from typing import Any, Callable

import pandas as pd

from ..errors import DataError, OptionError

SUPPORTED_FORMATS = ".csv, .tsv, .txt (each optionally .gz, .bz2, .xz or .zip), .parquet, .h5ad (AnnData), or '-' for standard input"
_TEXT_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}


def check_file(path: str) -> None:
    if not str(path):  # DATA given as "" (an unset shell variable in quotes)
        raise DataError("table file not found: the name given is empty ('')")
    if not os.path.exists(path):
        from ..fileio import symlink_loop, symlink_loop_message

        if symlink_loop(path):  # there to see in `ls`, yet "not found"
            raise DataError(symlink_loop_message(f"table file {path}", "table file"))
        if path.endswith("/") and os.path.isfile(path.rstrip("/")):  # a shell's completion of a directory, say
            raise DataError(f"table file not found: {path} (a name ending in '/' is a directory's; the file is "
                            f"{path.rstrip('/')})")
        home = os.path.expanduser(path)
        hint = (f" (a quoted ~ is not expanded by the shell: {home}?)" if path.startswith("~") and home != path
                and os.path.exists(home) else "")
        # the same table compressed beside it (sample_data/tumour_subtypes.csv for its .csv.gz)
        compressed = [path + suffix for suffix in _COMPRESSIONS if os.path.isfile(path + suffix)]
        if compressed and not hint:
            hint = f" (did you mean {compressed[0]}?)"
        raise DataError(f"table file not found: {path}{hint}")
    fd = _descriptor(path)
    if fd is not None and _is_terminal(fd):
        raise DataError(f"{path} is a terminal; pipe a table into it (zcat x.csv.gz | mlpcli ... {path}) or give "
                        "the table's path")
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory; give a table file ({SUPPORTED_FORMATS})")
    if os.path.getsize(path) == 0 and not is_pipe(path):  # a pipe's size is 0 whatever it holds
        kind = (suffix_format(path) or ("text",))[0]
        expected = {"h5ad": "an AnnData (HDF5) file", "parquet": "a parquet file"}.get(kind, "a header line and data rows")
        raise DataError(f"{path} is empty (0 bytes); expected {expected}")
    if is_model_file(path):  # read as a table it was "not UTF-8 text (a binary file?)"
        raise DataError(f"{path} is an mlpcli model file, not a data table (a command that takes a model takes it "
                        "first: mlpcli predict MODEL DATA)")


def check_table_argument(source) -> None:
    """A TypeError saying what a table may be, for a library caller who passed something else (a NumPy array: the
    error was "expected str, bytes or os.PathLike object, not ndarray", from deep in the reader)."""
    if isinstance(source, (str, os.PathLike, pd.DataFrame)):
        return
    raise TypeError(f"a table is a file's path (str or os.PathLike), '-' for standard input, or a pandas DataFrame; "
                    f"got {type(source).__module__}.{type(source).__qualname__}"
                    + (": pd.DataFrame(X, columns=feature_names) makes one (its columns are what the roles and the "
                       "model's features name)" if hasattr(source, "shape") else ""))


def check_text_options(name: str, kind: str, sep: str | None, decimal: str | None) -> None:
    """--sep and --decimal read text tables: an OptionError when given for a table of another `kind` ("10x",
    "h5ad", "parquet"), where they were ignored without a word."""
    given = [flag for flag, value in (("--sep", sep), ("--decimal", decimal)) if value not in (None, "auto")]
    others = {"10x": "a 10x Genomics directory", "h5ad": "an .h5ad file", "parquet": "a parquet file"}
    if given and kind in others:
        raise OptionError(f"{given[0]} applies to text tables (.csv, .tsv, .txt); {name} is {others[kind]}: leave it "
                          "out")


def is_model_file(path: str) -> bool:
    """Whether the regular file ``path`` is a zip archive holding model.json and weights.npz (a model file)."""
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                return False
        with zipfile.ZipFile(path) as zf:
            return {"model.json", "weights.npz"} <= set(zf.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def table_format(path: str) -> tuple[str, str | None, str | None]:
    """(kind, separator, compression) from the file name; kind is "text", "parquet" or "h5ad". A descriptor's
    name (/dev/stdin < x.csv.gz) takes the name of the regular file it is open on (``_opened_file``)."""
    found = suffix_format(_opened_file(path) or path)
    if found is not None:
        return found
    if is_pipe(path):  # a pipe named without a format (<(zcat x.gz): /dev/fd/63): text, sniffed as "-" is
        return "text", None, None
    ext, compression = format_suffix(path)
    hint = _FOREIGN_FORMATS.get(ext if compression is None or ext == ".mtx" else "", "")
    if not hint and compression is not None and not ext:  # x.zip, x.gz: the compression is named, the format not
        stem, suffix = os.path.splitext(os.path.basename(path))
        hint = (f"its name gives the compression but not the table's format: name it {stem}.csv{suffix} (or "
                f".tsv{suffix})")
    raise DataError(f"unsupported table format {os.path.basename(path)!r}; use {SUPPORTED_FORMATS}"
                    f"{'; ' + hint.format(name=path, directory=os.path.dirname(path) or '.') if hint else ''}")


def format_suffix(path: str | os.PathLike, compressions: dict[str, str] = _COMPRESSIONS) -> tuple[str, str | None]:
    """(the suffix that names the format, the compression) of a file name, lower case: "x.CSV.gz" gives (".csv",
    "gzip"), "x.parquet" (".parquet", None), "x.gz" ("", "gzip"). `compressions`: the compression suffixes
    understood (outputs are not written as .zip). The one reading of a file name's suffixes, inputs' and outputs'."""
    root, ext = os.path.splitext(os.path.basename(os.fspath(path)).lower())
    compression = compressions.get(ext)
    if compression is not None:
        ext = os.path.splitext(root)[1]
    return ext, compression


def suffix_format(path: str) -> tuple[str, str | None, str | None] | None:
    """(kind, separator, compression) that the file name's suffix names, None for any other name."""
    ext, compression = format_suffix(path)
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
    ".gct": ("a GenePattern .gct table: drop its first two lines (version and sizes) and its Description column, "
             "e.g. tail -n +3 {name} | cut -f 1,3- > clean.tsv, and read clean.tsv with --features-in-rows"),
    ".mtx": ("a Matrix Market file, as 10x Genomics writes it beside features.tsv.gz and barcodes.tsv.gz: give the "
             "directory that holds the three ({directory})"),
}


# What a table read from standard input is, in the messages that ask for one (a parquet or .h5ad file is read by
# its path only)
STDIN_TABLE = "a CSV or TSV table"


def closed_stdin(what: str = STDIN_TABLE, into: str = "'-'") -> str:
    """The one message for a standard input the command started without (``<&-``, as a batch script may leave it;
    ``_entry`` reopens it on /dev/null, where it read as "empty"): ``what`` to pipe ``into`` it instead."""
    return (f"standard input is closed (the command started without one, as `<&-` leaves it); pipe {what} into "
            f"{into}, or give a file name instead")


def stdin_bytes(stdin, name: str = "standard input", what: str = STDIN_TABLE) -> bytes:
    """Everything on a stream read once (standard input, or a named pipe ``name``), decompressed when gzip,
    bzip2 or xz (``stream_compression``); ``what``: what the command reads there, for the messages ("a model file
    or a history table": diagnose was told to pipe a table). The process's own standard input, closed when the
    command started (``<&-``; ``_entry`` reopened it on /dev/null), is said to be closed, not empty, in every
    command (predict, evaluate and recalibrate say so through ``cli.console.binary_stdin``; train, cv, tune,
    explain, diagnose and gradcheck, which read it here, said "standard input is empty")."""
    if stdin is None:
        from .._entry import CLOSED_STREAMS

        if "stdin" in CLOSED_STREAMS:
            raise DataError(closed_stdin(what))
    stream = stdin if stdin is not None else sys.stdin.buffer
    not_a_terminal(stream, name, what)
    data = stream.read()
    if isinstance(data, str):  # a text stream was passed instead of a binary one
        data = data.encode("utf-8")
    compression = stream_compression(data)
    if compression is not None:
        try:
            data = {"gzip": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress}[compression](data)
        except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:
            raise DataError(f"cannot decompress {compression} data on {name}: {short_reason(exc)}") from None
    if not data.strip():
        raise DataError(f"standard input is empty; pipe {what} into '-'" if name == "standard input"
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
    return opened is not None and suffix_format(opened) is None


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


def _read_by_path(head: bytes) -> str | None:
    """What a file starting with ``head`` is when it is a format read by its path only (``_NOT_STREAMED``, parquet),
    else None. A gene named PAR1 heading a text table is no parquet file: its next byte is text."""
    what = next((what for magic, what in _NOT_STREAMED if head.startswith(magic)), None)
    if what is None and head.startswith(b"PAR1") and len(head) > 4 and head[4] < 0x20 and head[4] not in b"\t\r\n":
        what = "a Parquet file (.parquet)"
    return what


def not_streamed(head: bytes, name: str) -> None:
    """A DataError when the first bytes of a table read once from ``name`` (standard input or a pipe) are a
    format that is read by its path only: parquet, HDF5 (.h5ad), zip (.xlsx); zstd, which is not decompressed.
    A gene named PAR1 heading a text table is no parquet file: its next byte is text."""
    what = _read_by_path(head)
    if what is None:
        return
    where = "standard input" if name == "standard input" else f"a pipe ({name})"
    if what.startswith("zstd"):
        raise DataError(f"{what} cannot be read from {where}; decompress it first (zstd -dc x.csv.zst | mlpcli ... -)")
    raise DataError(f"{what} cannot be read from {where}; give its path")


def not_a_terminal(stream, name: str, what: str = STDIN_TABLE) -> None:
    """A DataError when ``stream`` (standard input for "-") is a terminal: nothing was piped in, and reading
    would wait for typed lines (``what``: what to pipe in, as ``stdin_bytes`` says it)."""
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError, OSError):
        return
    if terminal:
        raise DataError(f"{name} is a terminal; pipe {what} into '-' (zcat x.csv.gz | mlpcli ... -) or give its path")


def short_reason(exc: BaseException) -> str:
    """First line of an exception's message, without pandas' tokenizer prefix, at most 160 characters."""
    text = str(exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    text = text.replace("Error tokenizing data. C error: ", "")
    return text if len(text) <= 160 else text[:157] + "..."


# What the text and parquet readers raise on a malformed or truncated file (not on a missing one).
PARSE_ERRORS = (
    pd.errors.ParserError,
    ValueError,  # includes UnicodeDecodeError and pyarrow's ArrowInvalid
    OSError,  # includes gzip.BadGzipFile
    EOFError,  # truncated compressed stream
    zipfile.BadZipFile,
    lzma.LZMAError,
)


@dataclass(frozen=True)
class Source:
    """Where a table comes from: its name in messages, a fresh path or buffer per pass, how it is stored."""

    name: str
    opener: Callable[[], Any]
    kind: str  # "text", "parquet", "h5ad" or "10x" (a directory)
    default_sep: str | None  # from the file name; None for standard input (sniffed)
    compression: str | None
    suffix: str = ""  # ".csv", ".tsv", ".txt" (for messages)


_UTF16 = (b"\xff\xfe", b"\xfe\xff")  # the byte-order marks Excel's "Unicode Text" and Windows tools begin with
_SUFFIXES = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz"}


def not_utf16(head: bytes, name: str) -> None:
    """A DataError when a text table's first bytes are a UTF-16 byte-order mark: read as UTF-8 it was "not UTF-8 text
    (a binary file?)", which said nothing of the remedy."""
    if head.startswith(_UTF16):
        example = "iconv -f UTF-16 -t UTF-8" + ("" if name == "standard input" else f" {name} > table.tsv")
        raise DataError(f"{name} is UTF-16 text (as Excel's 'Unicode Text' and some Windows tools save tables), not "
                        f"UTF-8: save it as UTF-8 ({example})")


def check_text_content(path: str, compression: str | None) -> None:
    """A DataError when a file named as a plain text table holds something else: compressed data its name does not
    announce (read as text it was "not UTF-8 text ... save it as UTF-8", which re-saving cannot cure), a format read by
    its path (parquet, HDF5, zip), or UTF-16 text."""
    if compression is not None or is_pipe(path):  # (a pipe is looked at once read)
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(STREAM_HEAD)
    except OSError:
        return  # the reader says why
    found = stream_compression(head)
    if found is not None:
        raise DataError(f"{path} holds {found}-compressed data, though its name says plain text: name it "
                        f"{os.path.basename(path)}{_SUFFIXES[found]} (or decompress it)")
    what = _read_by_path(head)
    if what is not None:
        raise DataError(f"{path} is {what}, though its name says a text table: name it by its format")
    not_utf16(head, path)


def table_source(path, stdin) -> Source:
    if str(path) == "-":
        data = stdin_bytes(stdin)
        not_streamed(data[:STREAM_HEAD], "standard input")
        not_utf16(data[:2], "standard input")
        return Source("standard input", lambda: io.BytesIO(data), "text", None, None)
    path = os.fspath(path)
    if os.path.isdir(path):  # 10x Genomics output (data.tenx): its files are checked when it is opened
        return Source(path, lambda: path, "10x", None, None)
    check_file(path)
    kind, sep, compression = table_format(path)
    if kind == "text":
        not_a_tenx_part(path)
        check_text_content(path, compression)
    if is_pipe(path):  # read once, as standard input is: the readers open a file more than once
        if kind != "text":
            raise DataError(f"{path} is a pipe: only a text table (CSV or TSV, optionally gzip, bzip2 or xz) can be read from one; "
                            f"save the {kind} file to disk and give its name")
        with open(path, "rb") as fh:
            data = stdin_bytes(fh, path)
        not_streamed(data[:STREAM_HEAD], path)
        return Source(path, lambda: io.BytesIO(data), "text", sep, None, text_suffix(path))
    return Source(path, lambda: path, kind, sep, compression, text_suffix(path))


def table_kind(path) -> str | None:
    """How the readers would read ``path``: "text" (also "-", standard input), "parquet", "h5ad" or "10x" (a
    directory); None for a path they refuse (missing, empty, an unknown suffix: the reader says why)."""
    check_table_argument(path)
    if isinstance(path, pd.DataFrame):
        return None
    if str(path) == "-":
        return "text"
    path = os.fspath(path)
    if os.path.isdir(path):
        return "10x"
    try:
        check_file(path)
        return table_format(path)[0]
    except DataError:
        return None


def text_suffix(path: str) -> str:
    """".csv", ".tsv" or ".txt" (before any compression suffix), for messages; "" for other names."""
    ext = format_suffix(path)[0]
    return ext if ext in _TEXT_SEPARATORS else ""



@contextlib.contextmanager
def open_binary(src: Any, compression: str | None):
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
