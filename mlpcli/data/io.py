"""Reading tables: ``read_table`` for any format, and the text table (csv/tsv/txt) read whole or its feature
columns straight into one matrix. Where the table comes from is ``sources``, how its text is written ``dialect``,
the rules for its column names ``header``, parquet ``parquet``, the features x samples layout ``feature_rows``;
malformed files are one-line DataErrors."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .conventions import DECIMAL_ATTR, MISSING_AS_WRITTEN_ATTR, SOURCE_ATTR, ROW_NAMES_ATTR
from .dialect import Dialect, head_text, header_cells, sniff_dialect
from .feature_rows import read_feature_rows_text
from .fields import check_header_no_nul, check_stream, locate_not_utf8, not_utf8
from .float32 import as_float32_if_exact
from .header import (apply_header_rules, check_not_featurecounts, check_unique_header, check_unnamed, header_lacks_row_name_cell,
                     header_names, preamble_hint)
from .parquet import read_parquet_frame
from .sources import PARSE_ERRORS, Source, open_binary, short_reason, table_source

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
    numeric they look, as the same columns of a samples × features table are. `ids`: of those, the sample id,
    group and batch columns (``written_columns``), where only an empty cell is missing (``as_written_na``: a sample
    named NA is an id); the missing-value tokens of the others (labels) are noted (``tokens_as_missing``).
    """
    return read_table_with_notes(path, features_in_rows, stdin=stdin, sep=sep, decimal=decimal, text=text,
                                 ids=ids)[0]


def read_table_with_notes(path, features_in_rows: bool = False, *, stdin=None, sep: str | None = None,
                          decimal: str | None = None, text: Sequence[str] = (),
                          ids: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """``read_table`` and the notes on how the file was read (a separator or decimal mark other than the
    file name suggests, row names taken as sample ids, an empty column ignored). `path` may be the Source a caller
    made of it already (standard input and pipes are read once: the Source holds their bytes)."""
    src = path if isinstance(path, Source) else table_source(path, stdin)
    if src.kind == "h5ad":  # a matrix with obs / var tables, often sparse: never one dense frame
        raise DataError(f"{src.name} is an AnnData file; it is read by train, cv, tune, diagnose --learning-curve, "
                        "predict, evaluate, explain, recalibrate and gradcheck --data, not as a table")
    if src.kind == "10x":
        raise DataError(f"{src.name} is a directory; a 10x Genomics directory is read by predict, explain and "
                        "gradcheck --data, and with --samples by train, cv, tune, diagnose --learning-curve, evaluate "
                        "and recalibrate, not as a table")
    if src.kind == "parquet":
        frame, notes = read_parquet_frame(src.name, features_in_rows, text)
        if features_in_rows:
            return frame, notes
        frame, more = apply_header_rules(frame, src.name)
        frame.attrs[SOURCE_ATTR] = src.name  # a cell that is not a number names the file, as a text table's does
        return frame, notes + more
    from . import geo

    if geo.is_series_matrix(src):  # its table is features x samples
        return geo.read_table(src, text, sep=sep, decimal=decimal)
    table = TextTable.open(src, sep=sep, decimal=decimal, features_in_rows=features_in_rows)
    if features_in_rows:  # the sample ids are the header's cells, read as written
        return table.read_frame(text=text), table.notes + table.warnings
    return table.read_frame(text=[c for c in text if c in table.names], ids=ids), table.notes + table.warnings


# The cells that are missing values: an empty cell, NA, N/A, NULL and NaN as people and programs write them
# (R's NA, SQL's NULL, NumPy's nan) and Excel's #N/A. Not pandas' longer default list: "None" is a class
# ("no response", "no metastasis") and a batch, and parquet keeps it as text; nor its C runtime spellings.
def _any_case(word: str) -> set[str]:
    """Every spelling of `word` in upper and lower case letters (NULL, null, Null, nULL, ...)."""
    spellings = {""}
    for c in word:
        spellings = {s + v for s in spellings for v in {c.lower(), c.upper()}}
    return spellings


NA_TOKENS = sorted({"", "#N/A", *_any_case("NA"), *_any_case("N/A"), *_any_case("NULL"),
                    *(sign + v for sign in ("", "+", "-") for v in _any_case("NaN"))})


def as_written_na(columns: Sequence[str], ids: Sequence[str]) -> dict:
    """``pd.read_csv`` keywords that read the `ids` columns (sample ids, and the other columns read as written:
    ``written_columns``) as written, only an empty cell missing, and every other of `columns` with the missing-value
    tokens NA_TOKENS: a sample named NA, None or NULL is an id, as it is in a parquet file, in a genes × samples
    matrix's header and in pandas' own ``DataFrame``, not a missing one."""
    ids = set(ids) & set(columns)
    if not ids:
        return {"keep_default_na": False, "na_values": NA_TOKENS}
    return {"keep_default_na": False, "na_values": {c: [""] if c in ids else NA_TOKENS for c in columns}}


def written_columns(roles) -> set:
    """The columns of `roles` (``Roles``, or any object with some of its fields) read as written, only an empty
    cell missing: the sample id, group (patient) and batch columns, and any it lists in ``written``. They hold names:
    a site coded NA (North America), a patient or a sample named NA or NULL is one, as in a parquet file or an .h5ad
    file's obs, not a missing value; R's write.csv writes a missing one NA, which becomes a group or batch of that name
    (where the rows were missing, a batch was counted as 'NA' already, and a group refused). A target's tokens stay
    missing values (an unlabelled sample), said as written in its error (``tokens_as_missing``)."""
    names = {getattr(roles, r, None) for r in ("id", "group", "batch")} | set(getattr(roles, "written", ()))
    return {str(n) for n in names if n is not None}


def tokens_as_missing(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`frame` with the missing-value tokens (NA_TOKENS) of its text `columns`, read as written, made missing (in
    place), and how each column wrote them in ``frame.attrs[MISSING_AS_WRITTEN_ATTR]``, ``{column: {token: cells}}``:
    an error about a missing label names the 'NA' the user sees in the file."""
    tokens = set(NA_TOKENS)
    seen = dict(frame.attrs.get(MISSING_AS_WRITTEN_ATTR, {}))
    for c in columns:
        if c not in frame.columns:
            continue
        values = frame[c]
        hit = values.isin(tokens).to_numpy()
        if hit.any():
            seen[c] = {str(t): int(k) for t, k in values[hit].value_counts(sort=True).items()}
            frame[c] = values.where(~hit)
    if seen:
        frame.attrs[MISSING_AS_WRITTEN_ATTR] = seen
    return frame


# ── text tables ──────────────────────────────────────────────────────────────────────────────────────────


class TextTable:
    """A delimited text table whose layout is known: separator, decimal mark, column names.

    ``open`` reads only the head of the file; ``read_frame`` reads it whole as a DataFrame, and
    ``read_features`` reads it with the given feature columns straight into one matrix."""

    def __init__(self, src: Source, dialect: Dialect, names: list[str], notes: list[str], row_names: bool,
                 features_in_rows: bool, header: list[str]):
        self.src, self.dialect, self.names = src, dialect, names
        self.notes, self.row_names, self.features_in_rows, self.header = notes, row_names, features_in_rows, header
        self.warnings: list[str] = list(dialect.warnings)
        self._fields_checked = False
        self.short_header = False  # a features x samples header without the feature-name column's cell
        # rows of separators without a value: an error in a data table (``fields.row_lines``); a sample sheet
        # skips them with a note
        self.empty_rows = False

    @property
    def fmt(self) -> str:
        return "TSV" if self.dialect.sep == "\t" else "CSV"

    @classmethod
    def open(cls, src: Source, *, sep: str | None = None, decimal: str | None = None,
             features_in_rows: bool = False) -> "TextTable":
        fmt = "TSV" if src.default_sep == "\t" else "CSV"
        try:
            head, complete = head_text(src)
            dialect = sniff_dialect(head, complete, src.name, src.default_sep, sep, decimal, src.suffix)
            header = header_cells(src.opener(), dialect.sep, src.compression)
        except UnicodeDecodeError as exc:
            raise _not_utf8(src.name, exc, src) from None
        except PARSE_ERRORS as exc:
            raise DataError(f"cannot parse {src.name} as {fmt}: {short_reason(exc)}") from None
        check_header_no_nul(header, src.name)
        if not header:
            if not head.strip():
                raise DataError(f"{src.name} is empty; expected a header line and data rows")
            raise DataError(f"{src.name} has an empty first line; expected a header line and data rows")
        notes = list(dialect.notes)
        if features_in_rows:
            check_not_featurecounts(header, src.name)
            short = header_lacks_row_name_cell(header, head, complete, dialect.sep, src.name)
            if short:
                header = ["", *header]
                notes.append(f"{src.name}: its header has one cell fewer than its rows (as R's write.table writes a "
                             "matrix): the first column read as the feature names, every header cell as a sample id")
            check_unique_header(header, src.name, True)
            table = cls(src, dialect, list(header), notes, False, True, header)
            table.short_header = short
            return table
        names, more, row_names = header_names(header, src.name)
        return cls(src, dialect, names, notes + more, row_names, False, header)

    def _error(self, exc: BaseException) -> DataError:
        if isinstance(exc, pd.errors.EmptyDataError):
            return DataError(f"{self.src.name} is empty; expected a header line and data rows")
        if isinstance(exc, UnicodeDecodeError):
            return _not_utf8(self.src.name, exc, self.src)
        return DataError(f"cannot parse {self.src.name} as {self.fmt}: {short_reason(exc)}")

    def _read_csv(self, **kwargs) -> pd.DataFrame:
        """The table read whole by pandas (`kwargs`: read_csv's)."""
        if self.short_header and "names" not in kwargs:
            # the header as ``open`` read it: with R's write.table the file's lacks the feature-name column's
            # cell, and pandas would take that column for the index
            kwargs.update(header=0, names=self.header)
        with open_binary(self.src.opener(), self.src.compression) as raw:
            return self._parse(raw, **kwargs)

    def _parse(self, raw, **kwargs):
        """pandas' read_csv of the decompressed stream `raw` (from ``open_binary``, which, unlike pandas, finds
        a .zip's table past folder entries and macOS's __MACOSX/ files); missing values NA_TOKENS unless
        `kwargs` say otherwise."""
        if "na_values" not in kwargs:
            kwargs.update(keep_default_na=False, na_values=NA_TOKENS)
        return pd.read_csv(raw, sep=self.dialect.sep, decimal=self.dialect.decimal, **kwargs)

    def check_fields(self) -> None:
        """Every row must have the header's number of fields (``fields.check_stream``): given the column
        names, pandas would read a short row as missing values and drop or misplace a long one's extra
        field. One pass over the text before pandas reads it (numpy counts the separators)."""
        if self._fields_checked:
            return
        try:
            with open_binary(self.src.opener(), self.src.compression) as raw:
                check_stream(raw, self.dialect.sep, len(self.header), self.src.name, columns=self.header,
                             empty_rows=self.empty_rows)
        except DataError as exc:  # rows of another width: lines above the header are the likely cause
            raise DataError(f"{exc}{preamble_hint(self.header, self.src.name)}") from None
        except PARSE_ERRORS as exc:
            if isinstance(exc, UnicodeDecodeError):
                raise _not_utf8(self.src.name, exc, self.src) from None
            raise self._error(exc) from None
        self._fields_checked = True

    def read_frame(self, text: Sequence[str] = (), ids: Sequence[str] = ()) -> pd.DataFrame:
        """The whole table as a DataFrame (n_samples, n_columns), string column names; the `text` columns
        as read (strings: sample ids such as 007 are matched as written), the others typed by pandas; `ids`:
        the sample id, group and batch columns, where only an empty cell is missing (``as_written_na``), the other
        `text` columns' missing-value tokens noted (``tokens_as_missing``). With --features-in-rows, `text` names
        rows, typed as written (see ``read_table``)."""
        self.check_fields()
        if self.features_in_rows:
            try:
                frame = read_feature_rows_text(self._read_csv, self.header, self.src.name, text,
                                                self.dialect.decimal, self.notes, NA_TOKENS)
            except PARSE_ERRORS + (pd.errors.EmptyDataError,) as exc:
                raise self._error(exc) from None
            return self._stamped(frame)
        # the text columns read as written, those not among `ids` (labels) then with their tokens made missing,
        # each noted (``tokens_as_missing``)
        labels = [c for c in text if c not in set(ids)]
        try:
            # low_memory=False: one dtype per column, and no DtypeWarning printed behind the CLI's back.
            frame = self._read_csv(header=0, names=self.names, low_memory=False, dtype={c: str for c in text} or None,
                                   **as_written_na(self.names, [*ids, *labels]))
        except PARSE_ERRORS + (pd.errors.EmptyDataError,) as exc:
            raise self._error(exc) from None
        tokens_as_missing(frame, labels)
        self._check_rows(frame)
        frame, notes = check_unnamed(frame, self.src.name, self.row_names, self.names)
        self.notes += notes
        return self._stamped(frame)

    def _stamped(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with the decimal mark it was read with, the file's name and whether its first column was row
        names in its attrs: a cell that is not a number is then found (and named) as pandas saw it (see
        `conventions.DECIMAL_ATTR`), and a sample sheet is not joined on row numbers."""
        frame.attrs[DECIMAL_ATTR] = self.dialect.decimal
        frame.attrs[SOURCE_ATTR] = self.src.name
        frame.attrs[ROW_NAMES_ATTR] = self.row_names
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

        The reader is ``predict``'s (``text_features.read_text_features``), so a model sees at prediction the
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
        frame, notes = check_unnamed(frame, self.src.name, self.row_names, self.names)
        self.notes += notes
        return frame, X

    def _read_features_stream(self, features: list[str], text: Sequence[str], blocks: "_FeatureBlocks",
                              ids: Sequence[str] = ()) -> pd.DataFrame | None:
        """The other columns; the features into `blocks`, through the reader ``predict`` uses
        (``text_features.read_text_features``). None when a feature cell is not a number, or the reader stops
        on the text: ``read_frame`` then reads it whole and names the cell or the fault."""
        from .text_features import read_text_features

        source = self.src.opener()  # a path, or the bytes of standard input or a pipe, read once
        return read_text_features(self.src.name, source, self.names, features, self.dialect.sep,
                                  self.dialect.decimal, blocks.add, text, ids)

class _FeatureBlocks:
    """Row blocks of a feature matrix as they are read, gathered into chunks of ``GATHER_CHUNK_BYTES`` and kept
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
                capacity = max(1, GATHER_CHUNK_BYTES // (block.itemsize * max(1, block.shape[1])))
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


GATHER_CHUNK_BYTES = 64 << 20


def _not_utf8(name: str, exc: UnicodeDecodeError, src: "Source | None" = None) -> DataError:
    """The message for a table that is not UTF-8 (``fields.not_utf8``, every reader's). With `src`, the bad byte
    is found in the text (a second pass, on this error only) and named by its line: pandas' error counts from the
    start of its own buffer, so "position 142475" was said of a byte on line 5,001, 1.45 MB into the file."""
    if src is not None:
        try:
            with open_binary(src.opener(), src.compression) as raw:
                found = locate_not_utf8(raw)
        except PARSE_ERRORS:  # a stream that fails otherwise too (truncated): the parser's word, as before
            found = None
        if found is not None:
            byte, line, _ = found
            return not_utf8(name, f"on line {line}", byte)
    return not_utf8(name, f"at position {exc.start}", exc.object[exc.start])
