"""GEO series matrix files (``GSE…_series_matrix.txt.gz``, as GEO's download pages and GEOquery hand them out),
read as the two files ``--features-in-rows --samples`` reads: the expression table between the lines
``!series_matrix_table_begin`` and ``!series_matrix_table_end`` (probes or genes x samples, the samples named by
their GSM accessions) as samples x features, and the samples' annotations above it, one ``!Sample_…`` line per
field with one tab-separated, quoted value per sample, as the sample sheet the roles come from.

The sheet (``read_sheet``): its id column ``geo_accession`` (``!Sample_geo_accession``: the ids the table's
header names), then ``title``, ``source_name_ch1`` and ``description`` where the file has them, and one column per
key of the ``!Sample_characteristics_ch1`` lines, whose values GEO writes "key: value" ("er status: ER+" gives a
column ``er status``: ``--target "er status"``), counted per sample, whichever line a value stands on (GEO
shifts a sample's values to earlier lines when it has fewer characteristics): a sample's second value of a key
(two "treatment: …" lines) goes in ``treatment (2)``, its first in ``treatment``; a value without a key ("ratio
1:2", a colon not followed by a space) stands in ``characteristics_ch1`` (a sample's second in
``characteristics_ch1 (2)``); a two-channel array's ``…_ch2`` lines give keys followed by " (ch2)" where
channel 1 has the key too, and a key named as one of the file's kept fields (``description``, ``title``, ...) or
its id column is followed by " (ch1)". Empty values and NA are missing; the values are typed as a sheet's are
(``typed_as_written``: grade 1, 2, 3 are numbers, 01 stays text). ``--samples`` may name a series matrix too (a
sequencing series' annotations, its counts in a table of their own): its ``--id`` then chooses the column
joined on (default ``geo_accession``).

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

from ..errors import DataError, OptionError
from ..text import quoted
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
_BOM = b"\xef\xbb\xbf"
# a characteristic "key: value" as GEO writes it (also "key:" without a value); a colon followed by anything but
# a space or the end ("ratio 1:2", "http://...") is part of a value without a key
_KEYED = re.compile(r"([^:]*):(?:\s+(.*)|\s*)", re.S)
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
    table_line: int = 0  # the file's line number of !series_matrix_table_begin (the table's line k is its line + k)


def _fields(line: bytes) -> tuple[str, list[str]]:
    """A metadata line ``!Sample_title<TAB>"a"<TAB>"b"`` as ("title", ["a", "b"]): the values unquoted (a doubled
    quote inside is one), stray carriage returns (some files have them mid-line) removed."""
    text = line.decode("utf-8", errors="replace").replace("\r", "").rstrip("\n")
    cells = text.split("\t")
    name = cells[0].lstrip("\ufeff").strip().strip('"')
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
    at = 0  # the line number of the begin marker
    try:
        with open_binary(src.opener(), src.compression) as raw:
            for number, line in enumerate(raw, 1):
                # a field's name as it is told: past a byte-order mark (the first line) and the quote some writers
                # put around names ("!Sample_title"), as ``is_series_matrix`` tells the file
                name = (line[len(_BOM):] if number == 1 and line.startswith(_BOM) else line).lstrip(b'"')
                if state == "table":
                    if name.startswith(_END):
                        state = "end"
                    else:
                        table.append(line)
                elif state == "head":
                    if name.startswith(_BEGIN):
                        state, at = "table", number
                        if not table_too:
                            break
                    elif name.startswith(b"!Series_"):
                        series.append(_fields(name))
                    elif name.startswith(b"!Sample_"):
                        samples.append(_fields(name))
    except (OSError, EOFError, ValueError, *PARSE_ERRORS) as exc:
        raise DataError(f"cannot read {src.name}: {short_reason(exc)}; is the file truncated or corrupt?") from None
    if state == "head":
        raise DataError(f"{src.name} is a GEO series matrix file without its expression table (no line "
                        f"{_BEGIN.decode()}): is the file truncated?")
    if state == "table" and table_too:
        raise DataError(f"{src.name} ends inside its expression table (no line {_END.decode()} after its "
                        f"{len(table):,} lines): the file is truncated (a download cut short?); fetch it again")
    return _Parts(series, samples, b"".join(table), at)


def _series_words(parts: _Parts) -> str:
    """"GSE2034, platform GPL96" from the !Series_ lines, as far as they say it."""
    said = {name: values[0] for name, values in parts.series if values and values[0]}
    words = [said[k] for k in ("geo_accession",) if k in said]
    if "platform_id" in said:
        words.append(f"platform {said['platform_id']}")
    return ", ".join(words)


def read_table(src: Source, text: Sequence[str] = (), sep: str | None = None,
               decimal: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """(the expression table as samples x features, `sample_id` first (the GSM accessions of its header), the
    notes on how it was read): the table read as a features x samples text table is (``TextTable``, tab-separated;
    `text`: rows read as written, as for --features-in-rows; `decimal`: --decimal). A --sep other than tab is an
    OptionError: GEO writes the file tab-separated. Line numbers in its messages are the file's."""
    from .dialect import separator_char
    from .io import TextTable

    if separator_char(sep) not in (None, "\t"):
        raise OptionError(f"--sep {sep}: {src.name} is a GEO series matrix, tab-separated as GEO writes it; leave "
                          "--sep out")
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
    try:
        reader = TextTable.open(table, sep="\t", decimal=decimal, features_in_rows=True)
        if reader.short_header:  # GEO's header names the probe column (ID_REF): its rows would shift by a sample
            raise DataError("the table's header (line 1) has one cell fewer than its rows: a "
                            "sample's name is missing from it (its first cell names the probes); is the file damaged?")
        frame = reader.read_frame(text=text)
    except DataError as exc:  # its lines counted from the table's header: the file's numbers
        message = _file_lines(str(exc), parts.table_line)
        raise type(exc)(message if src.name in message else f"{src.name}: {message}") from None
    about = _series_words(parts)
    probes = f"its {reader.header[0]!r} column" if reader.header[0] else "its first column"
    notes = [f"{src.name}: a GEO series matrix{f' ({about})' if about else ''}: {frame.shape[1] - 1:,} features "
             f"({probes}) x {len(frame):,} samples, read from the lines "
             f"between {_BEGIN.decode()} and {_END.decode()}", *reader.notes, *reader.warnings]
    return frame, notes


def _file_lines(message: str, offset: int) -> str:
    """A table reader's `message` with its line numbers ("line 12", "lines 12 and 15", "near line 12") those of
    the file, whose table's first line follows line `offset`."""
    def number(m: re.Match) -> str:  # (written as it was: 1,234 with its thousands' comma)
        return format(int(m.group(0).replace(",", "")) + offset, "," if "," in m.group(0) else "")

    def shifted(match: re.Match) -> str:
        return re.sub(r"\d(?:[\d,]*\d)?", number, match.group(0))

    return re.sub(r"\blines? \d(?:[\d,]*\d)?(?:(?:, | and )\d(?:[\d,]*\d)?)*", shifted, message)


def _cell(value: str) -> str | None:
    """A value as the sheet holds it: None where missing."""
    return None if value in _MISSING else value


def _keyed(value: str) -> tuple[str | None, str]:
    """(key, value) of a characteristic GEO writes "key: value", or (None, `value`) for one without a key."""
    match = _KEYED.fullmatch(value)
    if match is None or not match.group(1).strip():
        return None, value
    return match.group(1).strip(), (match.group(2) or "").strip()


def _columns(parts: _Parts, n: int) -> dict[str, list]:
    """{sheet column: (n,) values as written, None where missing}: the kept fields and every characteristic key,
    a sample's k-th value of a key in ``key (k)`` whichever line it stands on (see the module docstring)."""
    fields = {field for field, _ in parts.samples if field in _SHEET_FIELDS} | {ID_COLUMN}
    first_channel = {key if key is not None else "characteristics_ch1"
                     for field, values in parts.samples if field == "characteristics_ch1"
                     for key, _ in map(_keyed, values)}
    columns: dict[str, list] = {}
    counts: dict[str, np.ndarray] = {}  # per column name as keyed: (n,) values of it each sample has so far
    for field, values in parts.samples:
        if field in _SHEET_FIELDS:
            columns.setdefault(field, [_cell(v) for v in values])  # (a repeated description line: the first)
            continue
        match = re.fullmatch(r"characteristics_ch(\d+)", field)
        if match is None:
            continue
        channel = match.group(1)
        for i, value in enumerate(values):
            key, rest = _keyed(value)
            if key is None and _cell(value) is None:
                continue  # no value on this line (a sample with fewer characteristics: GEO leaves the last empty)
            base = key if key is not None else f"characteristics_ch{channel}"
            if base in fields or (channel != "1" and base in first_channel):
                base = f"{base} (ch{channel})"
            seen = counts.setdefault(base, np.zeros(n, dtype=np.int64))
            seen[i] += 1
            name = base if seen[i] == 1 else f"{base} ({seen[i]})"
            columns.setdefault(name, [None] * n)[i] = _cell(rest)
    return columns


def read_sheet(src: Source, id: str | None = None, said: str | None = None) -> SampleSheet:  # noqa: A002 (--id)
    """The samples' annotations of the series matrix `src` as a sample sheet (see the module docstring), joined on
    `id` (default ``geo_accession``; --id of a series matrix given as --samples), named in messages as `said`
    (default: the file's sample annotations). A DataError naming the file when it lacks the samples' accessions,
    when a !Sample_ line has another number of values than there are samples, or when an id is missing or
    repeats; a ConfigError when `id` is no column of it. Empty cells after the last sample (a trailing tab) are
    not values."""
    parts = _split(src, table_too=False)
    accessions = next((values for field, values in parts.samples if field == ID_COLUMN), None)
    while accessions and not accessions[-1]:
        accessions = accessions[:-1]
    if not accessions:
        raise DataError(f"{src.name}: this GEO series matrix has no !Sample_geo_accession line, so its samples' "
                        "annotations cannot be matched to the table's columns; give them with --samples FILE")
    n = len(accessions)
    lines = []
    for field, values in parts.samples:
        if len(values) > n and not any(values[n:]):
            values = values[:n]
        if len(values) != n:
            raise DataError(f"{src.name}: the line !Sample_{field} has {len(values)} values for the {n} samples of "
                            "!Sample_geo_accession; is the file damaged?")
        lines.append((field, values))
    parts.samples = lines
    columns = {ID_COLUMN: list(accessions), **_columns(parts, n)}
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in columns.items()}, index=pd.RangeIndex(n))
    key = ID_COLUMN if id is None else str(id)
    said = said or f"{src.name}'s sample annotations (its !Sample_ lines)"
    if key not in frame.columns:
        raise DataError(f"--id column {key!r} not found in {said}; its columns: {quoted(list(frame.columns), 12)}")
    for c in frame.columns:
        if c != key:
            frame[c] = typed_as_written(frame[c])
    ids = id_texts(frame[key].to_numpy(dtype=object))
    line = ID_COLUMN if key == ID_COLUMN else f"{key!r} column"
    blank = np.flatnonzero(pd.isna(ids))
    if blank.size:
        raise DataError(f"{src.name}: the {line} has no value for sample {blank[0] + 1} of {n}"
                        f"{'; is the file damaged?' if key == ID_COLUMN else '; every sample needs an id'}")
    repeated = pd.Series(ids).duplicated().to_numpy()
    if repeated.any():
        raise DataError(f"{src.name}: the id {ids[np.argmax(repeated)]!r} stands twice in its {line}"
                        f"{'; is the file damaged?' if key == ID_COLUMN else '; pass another --id'}")
    return SampleSheet(path=src.name, id_column=key, id_given=id is not None, ids=ids,
                       frame=frame.drop(columns=[key]).reset_index(drop=True), said=said)


def annotations_or(src: Source | None, sheet: SampleSheet | None,
                   id: str | None = None) -> tuple[SampleSheet | None, list[str]]:  # noqa: A002 (--id)
    """The sheet the roles come from: `sheet` (--samples) when given, else the series matrix's own annotations
    (`src`; None: not a series matrix), joined on their column `id` (--id; default geo_accession, the accessions
    GEO's table header names: another column where the table's header names the samples by it, their titles);
    with a note when --samples replaces them."""
    if src is None:
        return sheet, []
    if sheet is not None:
        return sheet, [f"{src.name}: its samples' annotations (!Sample_ lines) are not used: --samples "
                       f"{sheet.path} gives them"]
    return read_sheet(src, id=id), []


def refuse_streamed(header: Sequence[str], name: str) -> None:
    """A DataError when a table read as it streams in (standard input, a pipe) is a GEO series matrix, told by
    its first header cell: the file's annotations come before its table, which a stream cannot go back to."""
    first = str(header[0]).strip().strip('"') if len(header) else ""
    if first.startswith(tuple(f.decode() for f in _FIRST_FIELDS)):
        raise DataError(f"{name} is a GEO series matrix file: give it by its file name, from which mlpcli reads its "
                        "expression table and its samples' annotations (or pass --features-in-rows to read the "
                        "table alone from a stream)")
