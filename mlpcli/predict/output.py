"""Writing prediction frames to csv/tsv/txt (optionally compressed), parquet or standard output, atomically."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
from typing import Iterable
import pandas as pd

from ..errors import DataError
from ..fileio import atomic_write


OUTPUT_FORMATS = ".csv, .tsv, .txt (each optionally .gz, .bz2 or .xz), .parquet, or '-' for standard output"
_OUT_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}


def output_format(path: str) -> tuple[str, str, str | None]:
    """(kind, separator, compression) of an output path by its extension; "-" is CSV on standard output."""
    if str(path) == "-":
        return "text", ",", None
    name = os.path.basename(os.fspath(path)).lower()
    root, ext = os.path.splitext(name)
    compression = _OUT_COMPRESSIONS.get(ext)
    if compression is not None:
        root, ext = os.path.splitext(root)
    if ext == ".parquet" and compression is None:
        return "parquet", "", None
    if ext in (".csv", ".tsv", ".txt"):
        return "text", "," if ext == ".csv" else "\t", compression
    raise DataError(f"unsupported output format {os.path.basename(os.fspath(path))!r}; use {OUTPUT_FORMATS}")


def write_predictions(frames: Iterable[pd.DataFrame], path: str, *, float_format: str | None = None,
                      stdout=None) -> int:
    """Write prediction frames to `path` chunk by chunk; returns the number of rows.

    Files are written to a temporary file beside `path` and renamed at the end, so an error halfway
    (a bad value in row 50,000, a full disk, Ctrl-C) leaves no partial file and an older file untouched.
    "-" streams CSV to standard output (`stdout`, default sys.stdout).
    """
    kind, sep, compression = output_format(path)
    if str(path) == "-":
        stream = stdout if stdout is not None else sys.stdout
        binary = getattr(stream, "buffer", None)
        if binary is None:  # a text-only stream
            n = 0
            for i, frame in enumerate(frames):
                frame.to_csv(stream, sep=sep, index=False, header=i == 0, float_format=float_format,
                             lineterminator="\n")
                n += len(frame)
        else:
            stream.flush()
            n = _write_text(frames, binary, sep, float_format)
            binary.flush()
        stream.flush()
        return n
    n = 0

    def write(raw) -> None:
        nonlocal n
        if kind == "parquet":
            n = _write_parquet(frames, raw)
            return
        if compression == "gzip":
            binary = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0)
        elif compression == "bz2":
            binary = bz2.BZ2File(raw, mode="wb")
        elif compression == "xz":
            binary = lzma.LZMAFile(raw, mode="wb")
        else:
            binary = raw
        n = _write_text(frames, binary, sep, float_format)
        if binary is not raw:
            binary.close()

    atomic_write(path, write)
    return n


def _write_text(frames: Iterable[pd.DataFrame], binary, sep: str, float_format: str | None) -> int:
    """CSV / TSV through pyarrow's writer (ten times pandas' speed), or pandas' where a value needs quoting
    (a comma in an id) or a float format is asked for; the two write numbers and plain text alike."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(delimiter=sep, quoting_style="none", quoting_header="none", include_header=True)
    fast, n = float_format is None, 0
    text = None
    for i, frame in enumerate(frames):
        if fast:
            try:
                buf = io.BytesIO()
                pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), buf, options)
                binary.write(buf.getbuffer())
                options = pacsv.WriteOptions(delimiter=sep, quoting_style="none", include_header=False)
                n += len(frame)
                continue
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                fast = False  # pandas from here on
        if text is None:
            text = io.TextIOWrapper(binary, encoding="utf-8", newline="", write_through=True)
        frame.to_csv(text, sep=sep, index=False, header=i == 0, float_format=float_format, lineterminator="\n")
        n += len(frame)
    if text is not None:
        text.flush()
        text.detach()
    return n


def _write_parquet(frames: Iterable[pd.DataFrame], raw) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer, n = None, 0
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(raw, table.schema)
            elif table.schema != writer.schema:
                table = table.cast(writer.schema)
            writer.write_table(table)
            n += len(frame)
    finally:
        if writer is not None:
            writer.close()
    return n
