"""A sample sheet joined to a feature table (``--samples``): the layout GEO and DESeq2 hand out, an
expression matrix of numbers only (genes × samples with --features-in-rows, or samples × genes) beside a
sheet of sample id, phenotype, patient, batch and any number of other annotations.

    sheet ─read_sample_sheet─▶ SampleSheet (ids unique, the other columns typed as pandas reads them)
    the table's header ─SampleJoin─▶ `columns`: the table's and the sheet's, which roles are resolved on
    resolved roles ─SampleJoin.select─▶ the sheet columns joined: those that take a role, no other
    rows, whole or in pieces ─lookup / count─▶ the sheet's row of each (or none) ─attach─▶ the table's rows
    with the sheet's role columns, in the table's order ─finish─▶ notes on ids found on one side only,
    an error when none match

Rules (every command that reads a table applies them through this module):
  * The id column is ``--id`` in both files; by default ``sample_id`` when the sheet has it, else the
    sheet's first column (R's row names, an empty first header cell, are read as ``sample_id``). A table
    without a column of that name joins on its own ``sample_id`` (when --id is not given). With
    --features-in-rows the table's sample ids are its column headers.
  * Ids match as exact strings once surrounding whitespace is stripped: 007 is not 7, S1 is not s1. The
    sheet's id column is read as text for that; rows with every field blank (a spreadsheet's ";;;" lines
    below the data) are skipped with a note; an id missing or repeated in the sheet is an error naming
    the file, the id and its lines, and so are two of the table's samples matching one sheet row (S1 and
    "S1 "), which would otherwise share its label, patient and batch.
  * Features never come from the sheet: its columns other than the id are roles (target, group, batch, or
    dropped) or ignored, with a note. A sheet column that the table has too is an error when it would take
    a role (which copy is meant?); otherwise the table's column is used and the sheet's ignored, with a note.
  * Rows keep the table's order. Rows of the table without a row in the sheet are left out (training,
    evaluation: a warning counts and names them, with a hint when their ids look like unmatched sheet rows with
    a prefix or suffix), or kept without the sheet's columns (prediction: a note); a note names the sheet's
    rows that match no sample. No match at all is an error showing ids of both files and,
    where it can tell, why: letter case, another sheet column holding the ids, leading zeros (dropped by a
    spreadsheet program), a prefix or suffix on one side (a sample name, 10x's "-1"). When some ids match
    but the table's unmatched ones differ from the sheet's unmatched rows only in letter case or leading
    zeros, that is an error too: those samples would lose their rows without a word beyond a note.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, MlpcliError
from .conventions import DEFAULT_ID
from .header import holds_row_numbers
from .cells import NO_COPY, SPELLING_WORDS, is_text_dtype, spelling_key, typed_as_written, visible
from .labels import label_key
from ..text import agreeing, count_of, quoted

__all__ = ["SampleSheet", "SampleJoin", "read_sample_sheet", "join_samples", "id_texts"]

_SHOWN = 5  # ids named in a note or an error
_PROBE = 20  # ids of the table without a sheet row kept to explain a failed join
_SPELLED_LOOKS = 10_000  # unmatched ids of a run of rows compared with the sheet's spellings (a few ms of Python)
# the sheet's columns named when a role's column is in neither file: a GEO series matrix's annotations hold an id,
# title and source before a dozen characteristics, and six names showed three of those
_SHEET_SHOWN = 12


def id_texts(values) -> np.ndarray:
    """Sample ids as matching keys (n,) object: text stripped of surrounding whitespace; numbers (a parquet
    integer column) as training writes them (7.0 -> "7"); None where missing or blank."""
    s = pd.Series(np.asarray(values, dtype=object), dtype=object)
    # NaN where not a string; pandas refuses .str on a column without any string (integer ids from parquet)
    out = s.str.strip() if s.map(type).eq(str).any() else pd.Series(np.nan, index=s.index, dtype=object)
    other = out.isna() & s.notna()
    if other.any():
        out[other] = [label_key(v) for v in s[other]]
    out = np.array(out.to_numpy(dtype=object), dtype=object)  # a copy: pandas 3 hands out read-only arrays
    out[pd.isna(out) | (out == "")] = None
    return out


def _listed(names: Sequence[str], total: int) -> str:
    """The first few of `total` names, "'a', 'b' and 7 more"."""
    shown = ", ".join(repr(str(n)) for n in names[:_SHOWN])
    return shown + (f" and {total - min(len(names), _SHOWN)} more" if total > _SHOWN else "")


# ── the sheet ────────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class SampleSheet:
    """A sample sheet as read: one row per sample, ids unique."""

    path: str
    id_column: str  # the sheet's id column (the join key)
    id_given: bool  # named by --id (else the default rule chose it)
    ids: np.ndarray  # (m,) object: the matching keys (see `id_texts`)
    frame: pd.DataFrame  # (m, k) the sheet's other columns, types as pandas reads them, index 0..m-1
    notes: list[str] = field(default_factory=list)  # how the file was read (a detected separator, ...)
    # the sheet in messages: "--samples PATH", or what else gave it (a GEO series matrix's annotations, ``data.geo``)
    said: str = ""

    def __post_init__(self):
        self.said = self.said or f"--samples {self.path}"
        self.index = pd.Index(self.ids)  # unique: checked by read_sample_sheet
        self.index.get_indexer(self.ids[:1])  # builds its hash table now, not in several reading threads at once

    @property
    def columns(self) -> list[str]:
        """The columns other than the id, in file order."""
        return [str(c) for c in self.frame.columns]


def read_sample_sheet(path, id: str | None = None) -> SampleSheet:  # noqa: A002 - the flag is --id
    """Read the sample sheet at `path` (.csv, .tsv, .txt, each optionally compressed, or .parquet; the
    separator and decimal mark detected as for every table). `id`: its id column (--id); default
    ``sample_id`` when present, else the first column. Every problem is a one-line error naming --samples
    and the file: not found, unreadable, no such --id column, an id missing or repeated (with its lines)."""
    from .dataset import missing_id_hint
    from .header import UNNAMED
    from .io import TextTable, read_table_with_notes
    from .sources import table_source

    if path is None or not str(path).strip():
        raise ConfigError("--samples: give the sample sheet's file name (.csv, .tsv, .txt or .parquet)")
    if str(path) == "-":
        raise ConfigError("--samples: the sample sheet is read from a file, not from standard input ('-')")
    path = os.fspath(path)
    _check_sheet_format(path)
    header_rows = 0  # rows repeating the header (a text sheet's), emptied and skipped
    try:
        src = table_source(path, None)
        from . import geo

        if geo.is_series_matrix(src):  # a sequencing series' annotations, its counts in a table of their own
            return geo.read_sheet(src, id=id, said=f"--samples {path}")
        if src.kind == "parquet":
            frame, notes = read_table_with_notes(path)
            key = _sheet_id_column(list(frame.columns), id, path)
            table = None
        else:
            table = TextTable.open(src)
            table.empty_rows = True  # skipped below, with a note
            key = _sheet_id_column([n for n in table.names if not n.startswith(UNNAMED)], id, path)
            # every column as written (ids: 007 stays 007; labels 1 and 01 stay two), then typed as pandas
            # would type it where that loses nothing (``typed_as_written``)
            # (the ids as written: a sample named NA is an id, as it is in a matrix's header; only an empty
            # cell is missing)
            frame = table.read_frame(text=[str(n) for n in table.names], ids=[key])
            # the header written again between the rows (sheets pasted together): not a sample, and its names would
            # keep a column of numbers as text (an age read as 76 classes)
            repeated = np.ones(len(frame), dtype=bool)
            for c in frame.columns:
                repeated &= frame[c].astype(object).map(lambda v, c=str(c): isinstance(v, str) and v.strip() == c).to_numpy()
            header_rows = int(repeated.sum())
            if header_rows:  # emptied: skipped below with the blank rows, whose line numbers stay the file's
                frame.loc[repeated, :] = None
                table.notes.append(f"--samples {path}: skipped {header_rows} row{'s' * (header_rows > 1)} repeating "
                                   "its header (sheets pasted together?)")
            for c in frame.columns:
                if c != key and is_text_dtype(frame[c].dtype):
                    frame[c] = typed_as_written(frame[c], table.dialect.decimal)
            notes = table.notes
    except MlpcliError as exc:
        message = str(exc)
        raise type(exc)(message if message.startswith("--") else f"--samples: {message}") from None
    if id is None and key == DEFAULT_ID and frame.shape[1] > 1 and holds_row_numbers(frame[key]) and (
            table.row_names if table is not None else DEFAULT_ID not in _parquet_names(path)):
        # an unnamed first column of row numbers (pandas' to_csv and R's write.csv write their index so, 0, 1, ... or
        # 1, 2, ...): joined on, every sample took the row of the sample numbered like it (one off beside ids 1..n)
        frame = frame.drop(columns=[key])
        key = _sheet_id_column(list(frame.columns), None, path)
        notes = [n for n in notes if "read as the sample ids" not in n]
        notes.append(f"--samples {path}: ignored its first column, which has no name and numbers the rows (as pandas' "
                     f"to_csv and R's write.csv write their index): row numbers are no sample ids; the ids are its "
                     f"column {key!r} (--id names another)")
    # rows with every field blank carry nothing: spreadsheet programs write them below the data (";;;" lines)
    rows = np.flatnonzero(~_blank_rows(frame))  # (m,) the kept rows' positions in the file's data rows
    if len(rows) < len(frame):
        n_blank = len(frame) - len(rows) - header_rows
        if n_blank:
            notes = [*notes, f"--samples {path}: skipped {n_blank} empty row{'s' * (n_blank > 1)} (every field blank)"]
        frame = frame.iloc[rows].reset_index(drop=True)
    ids = id_texts(frame[key].to_numpy(dtype=object))
    missing = np.flatnonzero(pd.isna(ids))
    where = _Lines(src, table, rows)
    if missing.size:
        raise DataError(f"--samples {path}: the id column {key!r} is empty at {where(missing[:1])}"
                        f"{f' ({missing.size} rows in all)' if missing.size > 1 else ''}; every row of the sheet "
                        "needs a sample id")
    repeated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if repeated.any():
        first = ids[np.flatnonzero(repeated)[0]]
        rows = np.flatnonzero(ids == first)
        n_ids = len(set(ids[repeated]))
        more = f" ({n_ids} ids are repeated)" if n_ids > 1 else ""
        raise DataError(f"--samples {path}: duplicate sample id {first!r} at {where(rows)} of the id column "
                        f"{key!r}{more}; each sample needs one row in the sheet{missing_id_hint([first])}"
                        f"{_other_id_hint(frame, key, id)}")
    others = frame.drop(columns=[key]).reset_index(drop=True)
    return SampleSheet(path=path, id_column=key, id_given=id is not None, ids=ids, frame=others, notes=list(notes))


def _other_id_hint(frame: pd.DataFrame, key: str, id: str | None) -> str:  # noqa: A002
    """For a sheet whose default id column repeats (`sample_id`, else its first column): the column --id should
    name — its first column with one value per row (a sheet of cells, cell or barcode, then the sample each came
    from, whose `sample_id` is shared by a sample's cells; a sheet whose ids stand after its labels); else ""."""
    if id is not None:
        return ""
    for column in frame.columns:
        if str(column) == key or frame[column].dtype.kind == "f":  # (measurements: an age, a score)
            continue
        ids = id_texts(frame[column].to_numpy(dtype=object))
        if not pd.isna(ids).any() and pd.Series(ids).is_unique:
            default = f"{DEFAULT_ID!r}" if key == DEFAULT_ID else "its first column"
            return (f" (the id column is {default} by default; its column {str(column)!r} has one value per row: "
                    f"--id {column} joins on it)")
    return ""


_SHEET_FORMATS = ".csv, .tsv or .txt (each optionally .gz, .bz2, .xz or .zip) or .parquet"


def _check_sheet_format(path: str) -> None:
    """A DataError naming --samples when `path` is not a file a sample sheet can be: a directory, an .h5ad
    file (cells carry their annotations in .obs), a spreadsheet (.xlsx), another suffix. The table readers'
    own message lists what DATA can be (standard input, .h5ad), which a sheet cannot."""
    from .sources import check_file, is_pipe, table_format

    if os.path.isdir(path):
        raise DataError(f"--samples {path} is a directory; give the sample sheet's file ({_SHEET_FORMATS})")
    try:
        check_file(path)
    except DataError as exc:
        raise DataError(f"--samples: {exc}") from None
    try:
        kind = table_format(path)[0]
    except DataError:
        kind = None
    if kind in ("text", "parquet") or is_pipe(path):
        return
    ext = os.path.splitext(path)[1].lower()
    why = "; save the spreadsheet as CSV (UTF-8)" if ext in (".xlsx", ".xls", ".xlsm", ".ods") else ""
    raise DataError(f"--samples {path}: a sample sheet is a {_SHEET_FORMATS} file{why}")


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    """(m,) bool: the rows of `frame` whose every cell is missing or blank."""
    blank = np.ones(len(frame), dtype=bool)
    for c in frame.columns:
        col = frame[c]
        empty = col.isna().to_numpy().copy()  # pandas 3: read-only
        if is_text_dtype(col.dtype):
            empty |= col.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
        blank &= empty
        if not blank.any():
            break
    return blank


def _parquet_names(path: str) -> list[str]:
    """The field names of the parquet file at `path` as stored (a pandas index without a name: __index_level_0__)."""
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _sheet_id_column(names: list[str], id: str | None, path: str) -> str:  # noqa: A002
    names = [str(n) for n in names]
    if id is not None:
        if id not in names:
            hint = difflib.get_close_matches(id, names, n=1)
            raise DataError(f"--id column {id!r} not found in --samples {path}"
                            f"{f' (did you mean {hint[0]!r}?)' if hint else ''}; its columns: {quoted(names, 6)} "
                            f"({len(names)} in all)")
        return id
    return DEFAULT_ID if DEFAULT_ID in names else names[0]


class _Lines:
    """Names rows of the sheet by their line in the file (text: the header is line 1; blank lines and
    line ends inside quoted fields counted as the file has them), or by row number (parquet)."""

    def __init__(self, src, table, kept: np.ndarray | None = None):
        self.src, self.table, self.kept = src, table, kept  # kept: the rows read, of the file's (blank ones left out)

    def __call__(self, rows: Sequence[int]) -> str:
        rows = [int(self.kept[r]) if self.kept is not None else int(r) for r in rows]
        lines = self._lines() if self.table is not None else None
        if lines is None or max(rows) >= len(lines):
            return f"row{'s' * (len(rows) > 1)} {_joined([r + 1 for r in rows])}"
        return f"line{'s' * (len(rows) > 1)} {_joined([lines[r] for r in rows])}"

    def _lines(self) -> list[int] | None:
        """The file line on which each data row starts, as pandas counts rows (blank lines skipped)."""
        from .sources import open_binary

        out: list[int] = []
        try:
            with open_binary(self.src.opener(), self.src.compression) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                reader = csv.reader(text, delimiter=self.table.dialect.sep)
                next(reader, None)  # the header
                end = reader.line_num
                for record in reader:
                    if record:
                        out.append(end + 1)
                    end = reader.line_num
                text.detach()
        except (OSError, ValueError, csv.Error, EOFError):
            return None
        return out


def _joined(numbers: list[int]) -> str:
    shown = [str(n) for n in numbers[:_SHOWN]]
    text = ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else shown[0]
    return text + (f" (and {len(numbers) - _SHOWN} more)" if len(numbers) > _SHOWN else "")


# ── the join ─────────────────────────────────────────────────────────────────────────────────────────────


class SampleJoin:
    """A sample sheet matched to one feature table, decided from the table's header and applied to its
    rows, whole (``attach``) or piece by piece (``lookup`` in any thread, ``count`` in row order, then
    ``values``); ``finish`` once every row was seen.

    `columns` (what roles are resolved on) are the table's followed by the sheet's that the table lacks;
    `data_id` is the table's column holding the sample ids (with --features-in-rows, ``sample_id``: the
    reader's name for the header's ids), which is the id role. `keep_unmatched`: rows of the table without
    a row in the sheet are kept (prediction) instead of left out. `cells_id`: a cell file's column of cell
    names (obs_names, barcode), joined to the sheet's id column whatever its name.
    """

    def __init__(self, sheet: SampleSheet, source: str, columns: Sequence[str], *, features_in_rows: bool = False,
                 keep_unmatched: bool = False, cells_id: str | None = None):
        self.sheet, self.source, self.keep_unmatched = sheet, str(source), keep_unmatched
        self.features_in_rows = features_in_rows
        self.cells_id = cells_id
        table_columns = [str(c) for c in columns]
        present = set(table_columns)
        key = sheet.id_column
        self.notes: list[str] = list(sheet.notes)
        if features_in_rows:
            self.data_id = DEFAULT_ID  # the header's sample ids, as the reader names them
            self._how = f"{self.source}'s column headers to the sheet's {key!r}"
        elif key in present:
            self.data_id = key
            self._how = f"{key!r}"
        elif cells_id is not None and cells_id in present:
            # a cell file (.h5ad, 10x) names its cells itself: the sheet's id column holds them, whatever its name
            # (an obs column `sample_id` is the sample each cell came from, shared by its cells, not their names),
            # --id naming it too
            self.data_id = cells_id
            self._how = f"{self.source}'s {cells_id!r} to the sheet's {key!r}"
        elif not sheet.id_given and DEFAULT_ID in present:
            self.data_id = DEFAULT_ID
            self._how = f"{self.source}'s {DEFAULT_ID!r} to the sheet's {key!r}"
        else:
            in_header = int(sheet.index.isin([k for k in id_texts(table_columns) if k is not None]).sum())
            if in_header >= min(2, sheet.index.size) and 2 * in_header > len(table_columns) - 1:
                # the header is the sheet's sample ids: genes x samples, as GEO and DESeq2 write it
                raise DataError(f"{self.source}: its header holds {in_header:,} of the sample ids of {sheet.said} "
                                f"(e.g. {quoted(table_columns[1:3])}): the table has the samples as columns and the "
                                "features as rows; pass --features-in-rows")
            chosen = "--id" if sheet.id_given else "its first column; --id to choose another"
            raise DataError(f"{sheet.said}: its id column {key!r} ({chosen}) is not a column of "
                            f"{self.source}; the sample ids must be in a column of that name in both files "
                            f"(the table's columns: {quoted(table_columns, 4)})")
        self.shared = [c for c in sheet.columns if c in present]  # the table has them too: the table's are used
        self.columns = table_columns + [c for c in sheet.columns if c not in present]
        self.joined: list[str] = []
        self._selected = False
        self._finished = False
        self.n_rows = self.n_matched = self.n_unmatched = 0
        self.unmatched: list[str] = []  # the first few ids of the table without a row in the sheet
        self.warnings: list[str] = []  # what the join says that -q must not hide (samples left out)
        self._probe: list[str] = []  # and a few more, to explain a join that matches nothing
        # unmatched ids spelled like a sheet row (letter case, spaces): (table id, sheet row), up to _PROBE of the first
        # _SPELLED_LOOKS unmatched ids of every run of rows, so that they are seen after many ids simply missing
        self._spelled: list[tuple[str, int]] = []
        self._spelling: dict[str, int] | None = None  # spelling key -> sheet row, made on the first unmatched id
        self._examples: list[str] = []  # the first few ids of the table, matched or not
        # (m,) per sheet row, the table's first row (0-based) matched to it, -1 for none, and that row's id as
        # written: ids are matched stripped of surrounding spaces, so 'S1' and 'S1 ' would share one sheet row
        self.matched_row = np.full(len(sheet.ids), -1, dtype=np.int64)
        self._matched_id = np.empty(len(sheet.ids), dtype=object)

    # -- before the rows: roles ------------------------------------------------------------------------

    def require(self, flag: str, names: Iterable[str | None]) -> None:
        """A DataError naming the table and the sheet when a column named by `flag` is in neither."""
        present = set(self.columns)
        missing = [n for n in names if n and n not in present]
        if not missing:
            return
        if self.sheet.id_column in missing:  # (the sheet's columns hold it no more: it is the join's key)
            raise DataError(f"{flag} {self.sheet.id_column!r} is the id column of {self.sheet.said}, the samples' "
                            f"names that join it to {self.source}; give {flag} another column")
        sheet_columns = [self.sheet.id_column, *self.sheet.columns]
        hint = difflib.get_close_matches(missing[0], sheet_columns, n=1) or \
            difflib.get_close_matches(missing[0], self.columns, n=1)
        noun = "column" if len(missing) == 1 else "columns"
        raise DataError(f"{flag} {noun} {quoted(missing)} not found in {self.source} nor in "
                        f"{self.sheet.said}{f' (did you mean {hint[0]!r}?)' if hint else ''}; the sheet's columns: "
                        f"{quoted(sheet_columns, _SHEET_SHOWN)} ({len(sheet_columns)} in all)")

    def select(self, roles: Iterable[str | None], drop: Iterable[str] = (), said: Iterable[str] = ()) -> None:
        """Fix the sheet columns to join: those among `roles` (target, group, batch, --by) or `drop`; the
        others are ignored, with a note (but for `said`, whose being ignored a note says already: predict's
        target). A role on a column both files have is a DataError."""
        named = {r for r in roles if r}
        dropped = set(drop)
        clash = [c for c in self.shared if c in named and c != self.data_id]
        if clash:
            raise DataError(f"column {clash[0]!r} is in both {self.source} and {self.sheet.said}, so its "
                            "role could come from either: rename or remove it in one of them")
        own = [c for c in self.sheet.columns if c not in set(self.shared)]
        self.joined = [c for c in own if c in named or c in dropped]
        ignored = [c for c in own if c not in set(self.joined) and c not in set(said)]
        if ignored:
            self.notes.append(f"{self.sheet.said}: ignored {len(ignored)} column{'s' * (len(ignored) > 1)} "
                              f"that take{'s' * (len(ignored) == 1)} no role: {quoted(ignored, 4)} (features come "
                              f"from {self.source} only; --target, --group or --batch to use one)")
        if self.shared:
            one = len(self.shared) == 1
            self.notes.append(f"{self.sheet.said}: {quoted(self.shared, 4)} {'is' if one else 'are'} also "
                              f"{'a column' if one else 'columns'} of {self.source}: the table's "
                              f"{'column is' if one else 'columns are'} used, the sheet's ignored")
        self._selected = True

    # -- the rows ------------------------------------------------------------------------------------------

    def lookup(self, ids) -> np.ndarray:
        """The sheet row (m-based index) of each of the table's sample ids (n,), -1 where none; pure (safe
        in reading threads)."""
        return self.sheet.index.get_indexer(id_texts(ids)).astype(np.int64, copy=False)

    def count(self, ids, positions: np.ndarray, first_row: int = 0) -> None:
        """Record a run of rows (0-based first_row .. first_row + n - 1), in row order: matched counts and
        the first unmatched ids. A sample without an id is a DataError naming its row."""
        ids = np.asarray(ids, dtype=object)
        if not self._examples:
            self._examples = [k for k in id_texts(ids[:_SHOWN]) if k is not None]
        missing = np.flatnonzero(positions < 0)
        if missing.size:
            keys = id_texts(ids[missing])  # only the rows without a match: the others had an id
            blank = missing[pd.isna(keys)]
            if blank.size:
                raise DataError(f"{self.source}: the id column {self.data_id!r} is empty at row "
                                f"{first_row + int(blank[0]) + 1}; every sample needs an id to be joined with "
                                f"{self.sheet.said}")
            room = _PROBE - len(self._probe)
            if room > 0:
                self._probe += [str(k) for k in keys[:room]]
            self.unmatched = self._probe[:_SHOWN]
            if len(self._spelled) < _PROBE:
                if self._spelling is None:
                    self._spelling = {}
                    for row, i in enumerate(self.sheet.ids):
                        self._spelling.setdefault(spelling_key(str(i)), row)
                for k in keys[:_SPELLED_LOOKS]:
                    row = self._spelling.get(spelling_key(str(k)))
                    if row is not None:
                        self._spelled.append((str(k), row))
                        if len(self._spelled) >= _PROBE:
                            break
        self._check_one_row_each(ids, positions, first_row)
        self.n_unmatched += int(missing.size)
        self.n_matched += len(positions) - int(missing.size)
        self.n_rows += len(positions)

    def _check_one_row_each(self, ids: np.ndarray, positions: np.ndarray, first_row: int) -> None:
        """A DataError when two of the table's samples match one sheet row: the same id, or two spellings of
        it that differ only in surrounding spaces ('S1' and 'S1 '), which would silently share its label,
        patient and batch. Names both as written and their rows (header cells with --features-in-rows)."""
        hit = np.flatnonzero(positions >= 0)
        sheet_rows = positions[hit]
        earlier = self.matched_row[sheet_rows]
        again = (earlier >= 0) | pd.Series(sheet_rows).duplicated().to_numpy()
        if again.any():
            k = int(np.flatnonzero(again)[0])
            if earlier[k] >= 0:
                before, before_id = int(earlier[k]), self._matched_id[sheet_rows[k]]
            else:  # earlier in this run of rows
                j = int(np.flatnonzero(sheet_rows[:k] == sheet_rows[k])[0])
                before, before_id = first_row + int(hit[j]), ids[hit[j]]
            raise DataError(self._repeated(str(before_id), before, str(ids[hit[k]]), first_row + int(hit[k])))
        self.matched_row[sheet_rows] = first_row + hit
        self._matched_id[sheet_rows] = ids[hit]

    def _repeated(self, first: str, first_row: int, second: str, row: int) -> str:
        where, base = ("header cell", 2) if self.features_in_rows else ("row", 1)  # cell 1 names the features
        if first == second and self.cells_id is not None and self.data_id != self.cells_id:
            # a cell file joined on an obs column that cells share (the sample, the donor): a sheet of one row per
            # sample, which would give each of its cells its annotations, but the join is one row per cell
            return (f"{self.source}: the cells at rows {first_row + base} and {row + base} share {first!r} in the obs "
                    f"column {self.data_id!r}, which {self.sheet.said} is joined on: a sheet gives one row "
                    f"per cell (its ids the cell names, {self.cells_id}); for annotations per sample, add the "
                    f"sheet's columns to .obs (adata.obs.join(sheet.set_index({self.data_id!r}), "
                    f"on={self.data_id!r})) and leave out --samples")
        if first == second:
            return (f"{self.source}: duplicate sample id {first!r} at {where}s {first_row + base} and {row + base}; "
                    f"sample ids must be unique to be joined with {self.sheet.said}")
        return (f"{self.source}: duplicate sample id: {first!r} ({where} {first_row + base}) and {second!r} ({where} "
                f"{row + base}) are one id, as surrounding spaces are ignored, and would share the row of "
                f"{self.sheet.said}; sample ids must be unique")

    def values(self, name: str, positions: np.ndarray) -> np.ndarray:
        """The sheet column `name` for the rows at `positions` (n,), missing (NaN) where -1."""
        col = self.sheet.frame[name]
        if positions.size and (positions >= 0).all():
            return col.to_numpy()[positions]
        return col.reindex(positions).to_numpy()

    def attach(self, frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
        """`frame` (its rows those of `positions`) with the joined sheet columns added after its own."""
        if not self.joined:
            return frame
        # one concat, not a column inserted at a time: a frame of many blocks (a whole table of genes read by
        # pandas 3) warned "DataFrame is highly fragmented" at each insert; the caller's frame keeps its columns
        added = pd.DataFrame({c: self.values(c, positions) for c in self.joined}, index=frame.index)
        return pd.concat([frame, added], axis=1, **NO_COPY)

    def apply(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
        """The whole table joined: (frame with the sheet's role columns, in the table's row order, the kept
        rows' indices into `frame`, or None when every row is kept). Runs `finish`."""
        if not self._selected:
            raise RuntimeError("SampleJoin.select must come before apply")
        ids = frame[self.data_id].to_numpy(dtype=object)
        positions = self.lookup(ids)
        self.count(ids, positions)
        self.finish()
        keep = None
        if not self.keep_unmatched and (positions < 0).any():
            keep = np.flatnonzero(positions >= 0)
            frame = frame.iloc[keep].reset_index(drop=True)
            positions = positions[keep]
        return self.attach(frame, positions), keep

    def finish(self) -> None:
        """After the last row: a DataError when no sample matched, else the notes on the join."""
        if self._finished:
            return
        self._finished = True
        sheet = self.sheet
        if self.n_matched == 0:
            raise DataError(self._no_match())
        misspelled = self._misspelled()
        if misspelled:
            raise DataError(misspelled)
        m = len(sheet.ids)
        have = agreeing(self.n_matched, "has", "have")
        self.notes.append(f"{sheet.said}: joined on {self._how}: {self.n_matched:,} of the "
                          f"{count_of(self.n_rows, 'sample')} of {self.source} {have} a row in the sheet "
                          f"({count_of(m, 'row')})")
        if self.n_unmatched:
            fate = "kept without the sheet's columns" if self.keep_unmatched else "left out"
            said = (f"{sheet.said}: {count_of(self.n_unmatched, 'sample')} of "
                    f"{self.source} {'have' if self.n_unmatched > 1 else 'has'} no row in the sheet "
                    f"({fate}): {_listed(self.unmatched, self.n_unmatched)}{self._affixed()}")
            # samples left out of training or scoring are data lost: a warning, which -q does not hide
            (self.notes if self.keep_unmatched else self.warnings).append(said)
        unused = np.flatnonzero(self.matched_row < 0)
        if unused.size:
            self.notes.append(f"{sheet.said}: {unused.size:,} of its {count_of(m, 'row')} "
                              f"match{'es' * (unused.size == 1)} no sample of "
                              f"{self.source}: {_listed(list(sheet.ids[unused[:_SHOWN]]), unused.size)}")

    def _affixed(self) -> str:
        """When most of the table's unmatched ids (the first few) are held in, or hold, sheet ids that match no
        sample ('S1' and 'batch2_S1', 10x's '-1'): a hint saying so, else "". A hint, not an error as a
        misspelling is: numbered ids give such pairs by chance ('S100' and an unrelated 'S1000')."""
        unused = np.flatnonzero(self.matched_row < 0)
        pair = one_holds_other(self._probe, self.sheet.ids[unused]) if self._probe and unused.size else None
        if pair is None:
            return ""
        return (f"; they look like sheet rows that match no sample with a prefix or suffix added on one side (e.g. "
                f"{visible(pair[0])} in {self.source}, {visible(pair[1])} in the sheet): ids must match exactly")

    def _misspelled(self) -> str | None:
        """When some ids matched but most of the table's unmatched ones (those seen: the first few) are
        spelled like sheet rows that matched nothing — the same apart from letter case or the leading zeros a
        spreadsheet program drops —, the error that says so: those samples would silently lose their rows
        (left out of training, predicted without their batch)."""
        unused = np.flatnonzero(self.matched_row < 0)
        if not self._probe or not unused.size:
            return None
        theirs = self.sheet.ids[unused]
        lower = {}
        for i in theirs:
            lower.setdefault(spelling_key(str(i)), str(i))
        pairs = [(p, lower[spelling_key(p)]) for p in self._probe if spelling_key(p) in lower]
        why = SPELLING_WORDS
        first = bool(pairs) and 2 * len(pairs) >= len(self._probe)
        if not first:  # the first few were mostly missing: some later ones?
            pairs = [(k, str(self.sheet.ids[row])) for k, row in self._spelled if self.matched_row[row] < 0]
        if not pairs:
            pair = _same_but_zeros(self._probe, theirs)
            pairs, why = ([pair], "leading zeros (a spreadsheet program drops them when it opens a CSV)") if pair \
                else ([], "")
        if not pairs:
            pair = _same_but_zeros(self._probe, theirs, decimals=True)
            pairs, why = ([pair], "a whole number's decimals (1.0 for 1: a column of ids read as floating point "
                                  "numbers, then written)") if pair else ([], "")
        if not pairs:
            return None
        table_id, sheet_id = pairs[0]
        many = self.n_unmatched > 1
        they = ("the first of them differ" if first else "some of them differ") if many else "it differs"
        return (f"{self.sheet.said}: {count_of(self.n_unmatched, 'sample')} of {self.source} "
                f"{'have' if many else 'has'} no row in the sheet, and {they} only in {why} from sheet rows that "
                f"match no sample (e.g. {visible(table_id)} in {self.source}, {visible(sheet_id)} in the sheet); ids must match "
                "exactly — correct them in one of the files")

    def _no_match(self) -> str:
        sheet = self.sheet
        ours = self._examples or self._probe
        if not self.n_rows:
            return f"{self.source} has no samples to join with {sheet.said}"

        def like(ids) -> str:
            return ", ".join(visible(str(i)) for i in ids[:3]) + (", ..." if len(ids) > 3 else "")

        return (f"no sample of {self.source} has a row in {sheet.said} (matched on {self._how}): "
                f"the table's ids look like {like(ours)}, the sheet's like {like(list(sheet.ids[:4]))}"
                f"{self._why_no_match()}")

    def _why_no_match(self) -> str:
        """A hint on why no id matched, from the first ids of the table without a sheet row: letter case,
        another column of the sheet holding them, leading zeros (a spreadsheet program drops them), or a
        prefix or suffix on one side (a sample name, 10x's '-1'); empty when none explains it."""
        sheet, probe = self.sheet, set(self._probe)
        if not probe:
            return ""
        lower = {str(i).lower() for i in sheet.ids}
        if any(p.lower() in lower for p in probe):
            return "; they differ in letter case only, and ids must match exactly"
        spelled = {spelling_key(str(i)): str(i) for i in sheet.ids}
        pair = next(((p, spelled[spelling_key(p)]) for p in self._probe if spelling_key(p) in spelled), None)
        if pair:
            return (f"; they differ in {SPELLING_WORDS} only ({visible(pair[0])} in {self.source}, {visible(pair[1])} "
                    "in the sheet), and ids must match exactly")
        for c in sheet.columns:
            if probe & set(id_texts(sheet.frame[c].to_numpy(dtype=object))):
                fix = f": pass --id {c}" if self.features_in_rows else \
                    " (the id column must have one name in both files: --id)"
                return f"; the sheet's column {c!r} holds {self.source}'s ids{fix}"
        pair = _same_but_zeros(self._probe, sheet.ids)
        if pair:
            return (f"; they differ in leading zeros only ({pair[0]!r} in {self.source}, {pair[1]!r} in the sheet: "
                    "a spreadsheet program drops them when it opens a CSV), and ids must match exactly")
        pair = one_holds_other(self._probe, sheet.ids)
        if pair:
            table_id, sheet_id = pair
            holds = f"the sheet's {sheet_id!r} holds {self.source}'s {table_id!r}" if len(sheet_id) > len(table_id) \
                else f"{self.source}'s {table_id!r} holds the sheet's {sheet_id!r}"
            return (f"; {holds} (a prefix or suffix, such as a sample name or '-1', added on one side?), and ids "
                    "must match exactly")
        return ""


_DIGIT_RUN = re.compile(r"(?<!\d)0+(?=\d)")  # the leading zeros of each run of digits
_ZERO_DECIMALS = re.compile(r"^([+-]?\d+)\.0+$")  # a whole number written with decimals: 1.0, 12.000


def refuse_row_number_join(ids: Sequence, join: "SampleJoin", source: str) -> None:
    """A DataError when the sample ids of `source` on which `join` joins its sheet are the row numbers under its
    unnamed first column (``ids``: that column's values, or its first ones; pandas' to_csv writes its index so):
    joined on, every sample took the sheet row of the sample numbered like it (one off against ids 1..n).
    For a table whose first column is unnamed (the caller knows); nothing when the join is on another column."""
    if join.data_id == DEFAULT_ID and len(ids) and holds_row_numbers(pd.Series(list(ids), dtype=object)):
        raise DataError(f"{source}: its first column has no name and numbers the rows (as pandas' to_csv writes its "
                        f"index), so the sample sheet ({join.sheet.said}) would be joined on row numbers, which are no "
                        "sample ids: write the table with its sample ids, or pass --id naming the column that holds "
                        "them")


def _same_but_zeros(ours: Sequence[str], sheet_ids: np.ndarray, decimals: bool = False) -> tuple[str, str] | None:
    """(one of `ours`, the sheet id) that are one id once the leading zeros of their numbers are dropped
    ('007' and '7', 'S001' and 'S1'; with `decimals`, the zero decimals of a whole number instead: '1.0' and '1'), or
    None."""
    def key(i) -> str:
        return _ZERO_DECIMALS.sub(r"\1", str(i)) if decimals else _DIGIT_RUN.sub("", str(i))

    theirs: dict[str, str] = {}
    for i in sheet_ids:
        theirs.setdefault(key(i), str(i))
    pairs = [(p, theirs[k]) for p in ours if (k := key(p)) in theirs and theirs[k] != p]
    return pairs[0] if pairs and 2 * len(pairs) >= len(ours) else None  # most of them: not a coincidence


def one_holds_other(ours: Sequence[str], sheet_ids: np.ndarray) -> tuple[str, str] | None:
    """(one of `ours`, a sheet id) where one starts or ends with the other ('AAAC-1' and 'lib1_AAAC-1',
    'AAAC-1' and 'AAAC'), when most of `ours` have such a partner (one could be a coincidence: 'S10' and
    'S100'), or None. Sorted lists keep it O(log m) per id of ours."""
    import bisect

    theirs = sorted({str(i) for i in sheet_ids})
    backwards = sorted(t[::-1] for t in theirs)

    def partner(p: str) -> str | None:
        # a sheet id that starts with p, or ends with it (then its reverse starts with p's reverse)
        for pool, key in ((theirs, p), (backwards, p[::-1])):
            k = bisect.bisect_left(pool, key)
            if k < len(pool) and pool[k].startswith(key) and pool[k] != key:
                return pool[k] if pool is theirs else pool[k][::-1]
        for n in range(len(p) - 1, 2, -1):  # p starts or ends with a sheet id of 3 characters or more
            for part in (p[:n], p[-n:]):
                k = bisect.bisect_left(theirs, part)
                if k < len(theirs) and theirs[k] == part:
                    return part
        return None

    pairs = [(p, q) for p in ours if len(p) >= 3 and (q := partner(p)) is not None]
    return pairs[0] if pairs and 2 * len(pairs) >= len(ours) else None


def join_samples(frame: pd.DataFrame, samples: "str | SampleSheet", *, source: str, roles: Iterable[str | None],
                 id: str | None = None, features_in_rows: bool = False,  # noqa: A002
                 keep_unmatched: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """A whole table joined with the sheet `samples` (a path or a read SampleSheet), when the roles are known beforehand (a trained
    model's): (the table with the sheet's columns among `roles`, in the table's row order, notes)."""
    sheet = samples if isinstance(samples, SampleSheet) else read_sample_sheet(samples, id=id)
    join = SampleJoin(sheet, source, frame.columns, features_in_rows=features_in_rows, keep_unmatched=keep_unmatched)
    join.select([r for r in roles if r in set(join.columns)])
    joined, _ = join.apply(frame)
    return joined, join.notes + join.warnings
