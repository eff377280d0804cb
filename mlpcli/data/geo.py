"""GEO series matrix files (``GSE…_series_matrix.txt.gz``, as GEO's download pages and GEOquery hand them out),
read as the two files ``--features-in-rows --samples`` reads: the expression table between the lines
``!series_matrix_table_begin`` and ``!series_matrix_table_end`` (probes or genes x samples, the samples named by
their GSM accessions) as samples x features, and the samples' annotations above it, one ``!Sample_…`` line per
field with one tab-separated, quoted value per sample, as the sample sheet the roles come from.

The sheet (``read_sheet``): its id column ``geo_accession`` (``!Sample_geo_accession``: the ids the table's
header names), then ``title``, ``source_name_ch1`` and ``description`` where the file has them, and one column per
key of the ``!Sample_characteristics_ch1`` lines, whose values GEO writes "key: value" ("er status: ER+" gives a
column ``er status``: ``--target "er status"``). The same key twice for one sample (two "treatment: …" lines)
gives ``treatment`` and ``treatment (2)``; a value without a key stands in ``characteristics_ch1`` (the line's
a second such line's in ``characteristics_ch1 (2)``); a two-channel array's ``…_ch2`` lines give keys followed by
" (ch2)" where channel 1 has the key too. Empty values and NA are missing; the values are typed as a sheet's are
(``typed_as_written``: grade 1, 2, 3 are numbers, 01 stays text).

The file is read once per use, front to back: a file that ends before ``!series_matrix_table_end`` (a download cut
short) is an error, not a shorter table, and so is a table without values (GEO leaves a sequencing series' table
empty: its counts are in the supplementary files). A ``--samples`` sheet given with the file replaces the
annotations (``annotations_or``), with a note.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .cells import typed_as_written
from .samples import SampleSheet, id_texts
from .sources import PARSE_ERRORS, Source, is_pipe, open_binary, short_reason, table_source

__all__ = ["ID_COLUMN", "is_series_matrix", "series_source", "read_table", "read_sheet", "annotations_or",
           "refuse_streamed"]

ID_COLUMN = "geo_accession"  # the sheet's id column: !Sample_geo_accession
_BEGIN, _END = b"!series_matrix_table_begin", b"!series_matrix_table_end"
_HEAD_BYTES = 4096  # what is read to tell a series matrix: its first line is "!Series_title ..."
_HEAD_LINES = 20  # (blank lines before it)
_SHEET_FIELDS = ("title", "source_name_ch1", "description")  # kept beside the characteristics, where present
_FIRST_FIELDS = (b"!Series_", b"!Sample_", b"!series_matrix")  # what a series matrix (or its lower part) begins with
_VISIBLE = re.compile(rb"\S")
_MISSING = {"", "NA", "N/A", "NULL", "NaN", "nan", "null", "--"}


def is_series_matrix(src: Source) -> bool:
    """Whether the text table `src` is a GEO series matrix file: its first line that is not blank begins with
    ``!Series_`` (quoted or not; or ``!Sample_``: the file without its series lines). False for what cannot be
    read (the table's reader says why)."""
    if src.kind != "text":
        return False
    try:
        with open_binary(src.opener(), src.compression) as raw:
            for _ in range(_HEAD_LINES):  # a line at a time: a file cut short still shows its first lines
                line = raw.readline(_HEAD_BYTES)
                if not line or line.strip(b"\xef\xbb\xbf \t\r\n"):
                    break
    except (OSError, EOFError, ValueError, *PARSE_ERRORS):
        return False
    first = line.lstrip(b"\xef\xbb\xbf \t\r\n").lstrip(b'"')
    return first.startswith(_FIRST_FIELDS)


def series_source(path) -> Source | None:
    """The Source of `path` when it names a GEO series matrix file, else None (a DataFrame; standard input or a
    pipe, which the streamed readers read once and so cannot be looked at first; a directory, another format, a
    file the readers refuse: they say why)."""
    if isinstance(path, pd.DataFrame) or str(path) == "-" or not isinstance(path, (str, os.PathLike)):
        return None
    path = os.fspath(path)
    if os.path.isdir(path) or is_pipe(path):  # (a pipe is read once, by the reader)
        return None
    try:
        src = table_source(path, None)
    except DataError:
        return None
    return src if is_series_matrix(src) else None


@dataclass
class _Parts:
    """A series matrix split: its ``!Series_`` and ``!Sample_`` lines (field, [values]) in file order, and the
    table's lines (bytes, the begin and end markers left out)."""

    series: list[tuple[str, list[str]]]
    samples: list[tuple[str, list[str]]]
    table: bytes


def _fields(line: bytes) -> tuple[str, list[str]]:
    """A metadata line ``!Sample_title<TAB>"a"<TAB>"b"`` as ("title", ["a", "b"]): the values unquoted (a doubled
    quote inside is one), stray carriage returns (some files have them mid-line) removed."""
    text = line.decode("utf-8", errors="replace").replace("\r", "").rstrip("\n")
    cells = text.split("\t")
    name = cells[0].strip().strip('"')
    values = []
    for cell in cells[1:]:
        cell = cell.strip()
        if len(cell) >= 2 and cell[0] == cell[-1] == '"':
            cell = cell[1:-1].replace('""', '"')
        values.append(cell.strip())
    return name.split("_", 1)[1] if "_" in name else name, values


def _split(src: Source, table_too: bool = True) -> _Parts:
    """The file read once, front to back, into its parts; a DataError naming it when it is cut short. Without
    `table_too`, up to the table's first line (the annotations: a small part of the file)."""
    series: list[tuple[str, list[str]]] = []
    samples: list[tuple[str, list[str]]] = []
    table: list[bytes] = []
    state = "head"  # -> "table" at the begin marker -> "end" at the end marker
    try:
        with open_binary(src.opener(), src.compression) as raw:
            for line in raw:
                if state == "table":
                    if line.startswith(_END):
                        state = "end"
                    else:
                        table.append(line)
                elif state == "head":
                    if line.startswith(_BEGIN):
                        state = "table"
                        if not table_too:
                            break
                    elif line.startswith(b"!Series_"):
                        series.append(_fields(line))
                    elif line.startswith(b"!Sample_"):
                        samples.append(_fields(line))
    except (OSError, EOFError, ValueError, *PARSE_ERRORS) as exc:
        raise DataError(f"cannot read {src.name}: {short_reason(exc)}; is the file truncated or corrupt?") from None
    if state == "head":
        raise DataError(f"{src.name} is a GEO series matrix file without its expression table (no line "
                        f"{_BEGIN.decode()}): is the file truncated?")
    if state == "table" and table_too:
        raise DataError(f"{src.name} ends inside its expression table (no line {_END.decode()} after its "
                        f"{len(table):,} lines): the file is truncated (a download cut short?); fetch it again")
    return _Parts(series, samples, b"".join(table))


def _series_words(parts: _Parts) -> str:
    """"GSE2034, platform GPL96" from the !Series_ lines, as far as they say it."""
    said = {name: values[0] for name, values in parts.series if values and values[0]}
    words = [said[k] for k in ("geo_accession",) if k in said]
    if "platform_id" in said:
        words.append(f"platform {said['platform_id']}")
    return ", ".join(words)


def read_table(src: Source, text: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """(the expression table as samples x features, `sample_id` first (the GSM accessions of its header), the
    notes on how it was read): the table read as a features x samples text table is (``TextTable``, tab-separated;
    `text`: rows read as written, as for --features-in-rows)."""
    from .io import TextTable

    parts = _split(src)
    body = parts.table
    end_of_header = body.find(b"\n")
    if not body[:end_of_header if end_of_header >= 0 else len(body)].strip():
        raise DataError(f"{src.name}: the expression table of this GEO series matrix is empty (no header line "
                        f"after {_BEGIN.decode()})")
    if end_of_header < 0 or _VISIBLE.search(body, end_of_header + 1) is None:  # (no copy of the table's bytes)
        raise DataError(f"{src.name}: the expression table of this GEO series matrix has no values (GEO leaves it "
                        "empty for sequencing series: their counts are in the series' supplementary files, which "
                        "train reads as a genes x samples table with --features-in-rows and --samples)")
    table = Source(src.name, lambda: io.BytesIO(body), "text", "\t", None, ".txt")
    reader = TextTable.open(table, sep="\t", features_in_rows=True)
    frame = reader.read_frame(text=text)
    about = _series_words(parts)
    notes = [f"{src.name}: a GEO series matrix{f' ({about})' if about else ''}: {frame.shape[1] - 1:,} features "
             f"(its {reader.header[0] or 'first column'!s} column) x {len(frame):,} samples, read from the lines "
             f"between {_BEGIN.decode()} and {_END.decode()}", *reader.notes, *reader.warnings]
    return frame, notes


def _cell(value: str) -> str | None:
    """A value as the sheet holds it: None where missing."""
    return None if value in _MISSING else value


def _add(columns: dict[str, list], name: str, cells: list) -> None:
    """Put one line's `cells` under `name`: into the column of that name where it has no value for the same
    sample (GEO shifts a sample's lines when it has fewer characteristics: one sample's line 3 is another's
    line 2), else into ``name (2)``, ``name (3)``, ... (a second "treatment: …" line of the same samples)."""
    k = 1
    while True:
        column = name if k == 1 else f"{name} ({k})"
        held = columns.get(column)
        if held is None:
            columns[column] = cells
            return
        if all(a is None or b is None for a, b in zip(held, cells)):
            columns[column] = [a if a is not None else b for a, b in zip(held, cells)]
            return
        k += 1


def _columns(parts: _Parts, n: int) -> dict[str, list]:
    """{sheet column: (n,) values as written, None where missing}: the kept fields and every characteristic key."""
    columns: dict[str, list] = {}
    for field, values in parts.samples:
        if field in _SHEET_FIELDS:
            columns.setdefault(field, [_cell(v) for v in values])  # (a repeated description line: the first)
            continue
        match = re.fullmatch(r"characteristics_ch(\d+)", field)
        if match is None:
            continue
        channel = match.group(1)
        keyed: dict[str, list] = {}
        plain: list = [None] * n  # values written without a key
        for i, value in enumerate(values):
            key, colon, rest = value.partition(":")
            if colon and key.strip():
                keyed.setdefault(key.strip(), [None] * n)[i] = _cell(rest.strip())
            else:
                plain[i] = _cell(value)
        if any(v is not None for v in plain):
            keyed[f"characteristics_ch{channel}"] = plain
        for key, cells in keyed.items():
            name = key if channel == "1" or key not in columns else f"{key} (ch{channel})"
            _add(columns, name, cells)
    return columns


def read_sheet(src: Source) -> SampleSheet:
    """The samples' annotations of the series matrix `src` as a sample sheet (see the module docstring), named in
    messages as the file's sample annotations. A DataError naming the file when it lacks the samples' accessions,
    when a !Sample_ line has another number of values than there are samples, or when an accession repeats."""
    parts = _split(src, table_too=False)
    accessions = next((values for field, values in parts.samples if field == ID_COLUMN), None)
    if not accessions:
        raise DataError(f"{src.name}: this GEO series matrix has no !Sample_geo_accession line, so its samples' "
                        "annotations cannot be matched to the table's columns; give them with --samples FILE")
    n = len(accessions)
    for field, values in parts.samples:
        if len(values) != n:
            raise DataError(f"{src.name}: the line !Sample_{field} has {len(values)} values for the {n} samples of "
                            "!Sample_geo_accession; is the file damaged?")
    columns = _columns(parts, n)
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in columns.items()}, index=pd.RangeIndex(n))
    for c in frame.columns:
        frame[c] = typed_as_written(frame[c])
    ids = id_texts(accessions)
    blank = np.flatnonzero(pd.isna(ids))
    if blank.size:
        raise DataError(f"{src.name}: the line !Sample_geo_accession has no accession for sample {blank[0] + 1} "
                        f"of {n}; is the file damaged?")
    repeated = pd.Series(ids).duplicated().to_numpy()
    if repeated.any():
        raise DataError(f"{src.name}: the accession {ids[np.argmax(repeated)]!r} stands twice in its "
                        "!Sample_geo_accession line; is the file damaged?")
    return SampleSheet(path=src.name, id_column=ID_COLUMN, id_given=False, ids=ids, frame=frame,
                       said=f"{src.name}'s sample annotations (its !Sample_ lines)")


def annotations_or(src: Source | None, sheet: SampleSheet | None) -> tuple[SampleSheet | None, list[str]]:
    """The sheet the roles come from: `sheet` (--samples) when given, else the series matrix's own annotations
    (`src`; None: not a series matrix); with a note when --samples replaces them."""
    if src is None:
        return sheet, []
    if sheet is not None:
        return sheet, [f"{src.name}: its samples' annotations (!Sample_ lines) are not used: --samples "
                       f"{sheet.path} gives them"]
    return read_sheet(src), []


def refuse_streamed(header: Sequence[str], name: str) -> None:
    """A DataError when a table read as it streams in (standard input, a pipe) is a GEO series matrix, told by
    its first header cell: the file's annotations come before its table, which a stream cannot go back to."""
    first = str(header[0]).strip().strip('"') if len(header) else ""
    if first.startswith(tuple(f.decode() for f in _FIRST_FIELDS)):
        raise DataError(f"{name} is a GEO series matrix file: give it by its file name, from which mlpcli reads its "
                        "expression table and its samples' annotations (or pass --features-in-rows to read the "
                        "table alone from a stream)")
