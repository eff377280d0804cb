"""Tables read in pieces: csv/tsv/txt (compressed or not), parquet, .h5ad, a DataFrame or standard input,
read in pieces of a memory budget (or of a number of rows); text is cut into pieces at line ends and
parsed in reading threads, every row checked to have the header's number of fields. ``predict`` and
``evaluate`` read every table this way (``open_table``); training reads a text table's feature columns
this way (``text_features.read_text_features``), so the two see the same numbers, bit for bit.

The pieces: ``pieces`` (sizes, the interface), ``streamed_frames`` (DataFrame, parquet, .h5ad),
``streamed_text`` (text)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import sys
import zipfile
from typing import Sequence

import pandas as pd

from .. import data
from ..errors import DataError, OptionError
from .sources import check_file, is_pipe
from .pieces import StreamedTable
from .streamed_frames import StreamedFrame, StreamedH5ad, StreamedParquet
from .streamed_text import StreamedText, open_stream


def open_table(source, *, features_in_rows: bool = False, stdin=None, sep: str | None = None,
               decimal: str | None = None, layer: str | None = None, raw: bool = False,
               var_names: str | None = None, var_names_fallback: bool = False,
               needed: frozenset | None = None, text: Sequence[str] = ()) -> StreamedTable:
    """Open `source` (a path, "-" for standard input, or a DataFrame) for reading in chunks.

    Formats as for every command: .csv, .tsv/.txt, each optionally .gz/.bz2/.xz/.zip, .parquet, and "-"
    (CSV or TSV sniffed from the header, gzip, bzip2 or xz detected by their magic bytes). The transposed layout
    (`features_in_rows`) cannot be streamed and is read whole (see `read_whole`). `sep`, `decimal`: as for
    training (``data.sniff_dialect``; None or "auto" detects them). An .h5ad file (AnnData) is read in
    row ranges of .X, a `layer` or .raw.X (`raw`), genes named by var_names or the var column `var_names`
    (`var_names_fallback`: the index when this file lacks that column, which then came from the model);
    `needed`: the genes a model reads, the only ones whose names must be unique. `text`: with
    `features_in_rows`, the rows that may hold ids, groups, batches or labels, read as written (``read_whole``).
    """
    from . import h5ad
    from .sources import check_table_argument

    check_table_argument(source)
    if isinstance(source, pd.DataFrame):
        h5ad.check_options("the table", layer, raw, var_names)
        return StreamedFrame(source, "the table")
    from .sources import check_text_options, suffix_format

    kind = "10x" if data.tenx.is_tenx(source) else (suffix_format(os.fspath(source)) or ("text",))[0]
    check_text_options("standard input" if str(source) == "-" else os.fspath(source), kind, sep, decimal)
    if data.tenx.is_tenx(source):  # a directory: 10x Genomics output, read as an .h5ad file is
        return StreamedH5ad(os.fspath(source), layer, raw, var_names, var_names_fallback, reader=data.tenx.TenX,
                          needed=needed)
    h5ad.check_options(source, layer, raw, var_names)
    if h5ad.is_h5ad(source):
        if features_in_rows:
            raise OptionError("--features-in-rows: an .h5ad file is cells x genes by definition; leave it out")
        return StreamedH5ad(os.fspath(source), layer, raw, var_names, var_names_fallback, needed=needed)
    if features_in_rows:
        name = "standard input" if str(source) == "-" else os.fspath(source)
        frame, notes = read_whole(source, features_in_rows=True, stdin=stdin, sep=sep, decimal=decimal, text=text)
        return StreamedFrame(frame, name, notes)
    return open_file(source, stdin, sep=sep, decimal=decimal)


def read_whole(source, *, features_in_rows: bool = False, stdin=None, sep: str | None = None,
               decimal: str | None = None, text: Sequence[str] = (),
               ids: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """(a whole table read by `data.read_table_with_notes` (every command's formats and layouts; each row of a
    text table checked to have the header's number of fields, as the streamed reader checks them), the notes
    on how it was read: a detected separator or decimal mark, columns ignored); `text`: the columns read as
    written (ids, labels), where present; `ids`: the sample id columns among them, where only an empty cell
    is missing (a sample named NA is an id, as the streamed reader reads it)."""
    return data.read_table_with_notes(source, features_in_rows=features_in_rows, stdin=stdin, sep=sep,
                                      decimal=decimal, text=text, ids=ids)


def open_file(source, stdin, check_header: bool = True, sep: str | None = None,
               decimal: str | None = None) -> StreamedTable:
    """A file or standard input ("-") as a streamed table: parquet, or text (see `open_table`).
    check_header=False leaves repeated column names to the caller."""
    if str(source) == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return open_stream("standard input", stream, None, check_header, sep, decimal)
    path = os.fspath(source)
    check_file(path)
    if is_pipe(path):  # a named pipe, <(zcat x.gz): read front to back once, as standard input
        raw = open(path, "rb")
        try:
            return open_stream(path, raw, raw, check_header, sep, decimal)
        except BaseException:
            raw.close()
            raise
    kind, default_sep, compression = data.sources.table_format(path)
    if kind == "parquet":
        return StreamedParquet(path)
    data.sources.not_a_tenx_part(path)
    data.sources.check_text_content(path, compression)
    given = {"check_header": check_header, "sep_option": sep, "decimal_option": decimal,
             "suffix": data.text_suffix(path)}
    raw = open(path, "rb")
    total = os.path.getsize(path)
    try:
        if compression is None:
            return StreamedText(path, raw, raw, default_sep, total, [raw], **given)
        if compression == "zip":
            archive = zipfile.ZipFile(raw)
            members = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX/")]
            if len(members) != 1:
                raise DataError(f"cannot parse {path}: a .zip table must hold exactly one file, found {len(members)}")
            member = archive.open(members[0])
            return StreamedText(path, raw, member, default_sep, total, [member, archive, raw], **given)
        opener = {"gzip": gzip.GzipFile, "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}[compression]
        stream = opener(raw, mode="rb") if compression != "gzip" else opener(fileobj=raw, mode="rb")
        return StreamedText(path, raw, stream, default_sep, total, [stream, raw], **given)
    except zipfile.BadZipFile as exc:
        raw.close()
        raise DataError(f"cannot parse {path}: {data.sources.short_reason(exc)}") from None
    except BaseException:
        raw.close()
        raise
