"""CSV / TSV text read in pieces (``StreamedText``): the input read once from start to end into a window, cut
into pieces of whole lines, parsed in reading threads by a NumPy tokenizer (``TextPiece``), else pyarrow's or
pandas' CSV parser; every row checked to have the header's number of fields."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import threading
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import data
from ..errors import DataError
from ..interrupts import held
from ..resources import usable_cores
from .conventions import DECIMAL_ATTR
from .fields import check_header_no_nul, check_no_nul, check_quoted, check_quotes_closed, not_utf8_error, row_lines, simple_quotes
from .dialect import SNIFF_BYTES
from .io import NA_TOKENS, as_written_na, written_columns
from .pieces import END, PieceSize, StreamedTable, check_unique_columns

if TYPE_CHECKING:  # the plan of a model's columns (predict) or of a training table's (``read_features``)
    from ..predict.columns import ColumnPlan


# pandas' C parser warns of a column of mixed types across its internal blocks of a large piece ("DtypeWarning:
# Columns (9) have mixed types", with this file's source line, on stderr before the one-line error): the cell that
# is not a number is found and named by the checks after it, so the warning only doubles it
warnings.filterwarnings("ignore", category=pd.errors.DtypeWarning, module=__name__)

_PIECES_PER_CHUNK = 4  # with --chunksize, text is parsed in pieces of a quarter chunk (see _piece_rows)

_BLOCK_BYTES = 1 << 22  # text input is read 4 MiB at a time

# What reading a damaged or truncated (compressed) stream raises; gzip.BadGzipFile is an OSError.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


class _Prefixed(io.RawIOBase):
    """`prefix` followed by the rest of `stream`: lets standard input be sniffed without seeking."""

    def __init__(self, prefix: bytes, stream):
        self._prefix, self._stream = prefix, stream

    def readable(self):
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            k = min(len(buffer), len(self._prefix))
            buffer[:k] = self._prefix[:k]
            self._prefix = self._prefix[k:]
            return k
        chunk = self._stream.read(len(buffer))
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        buffer[:len(chunk)] = chunk
        return len(chunk)


class _CarriageReturns(io.RawIOBase):
    """`stream` with every carriage return read as a line feed: a file whose lines end with a carriage return
    alone (classic Mac OS), which pandas, and so `train`, reads as lines."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self):
        return True

    def readinto(self, buffer) -> int:
        chunk = self._stream.read(len(buffer))
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        buffer[:len(chunk)] = chunk.replace(b"\r", b"\n")
        return len(chunk)


class StreamedText(StreamedTable):
    """CSV / TSV, plain or compressed, from a file or standard input, read piece by piece.

    The input is read once from start to end (standard input works like a file) into a window, from
    which pieces of whole lines (never cut inside a quoted field) are copied out, of about
    `PieceSize.text_bytes` each (or of a number of rows with --chunksize). Each piece is parsed with
    only the needed columns, so memory stays at a few pieces whatever the size of the input or the
    width of its rows."""

    def __init__(self, name: str, raw, stream, sep: str | None, total_bytes: int | None, closers=(),
                 check_header: bool = True, sep_option: str | None = None, decimal_option: str | None = None,
                 suffix: str = ""):
        self.name, self._raw, self._stream, self.total_bytes = name, raw, stream, total_bytes
        self._closers = list(closers)
        try:
            header = stream.readline()
        except _STREAM_ERRORS as exc:
            self.close()
            raise DataError(f"cannot read {name}: {data.sources.short_reason(exc)}") from None
        if not header.strip():
            self.close()
            raise DataError(f"{name} is empty; expected a header line and data rows")
        carriage_returns = b"\r" in header.rstrip(b"\r\n")  # lines ended by a carriage return alone
        if carriage_returns:
            stream = io.BufferedReader(_CarriageReturns(_Prefixed(header, stream)), buffer_size=1 << 16)
            self._stream = stream
            header = stream.readline()
        self.header_lines = 1
        while _inside_quotes(header, sep):  # a quoted header cell holding a line end (a spreadsheet's Alt+Enter)
            more = stream.readline()  # as the whole-table reader reads it: the record goes on
            if not more:
                break
            header += more
            self.header_lines += 1
        try:
            text = header.decode("utf-8-sig").rstrip("\r\n")
        except UnicodeDecodeError:
            self.close()
            # the rows' wording (train's too): "a binary file?" misled for a Latin-1 gene name such as "é"
            raise not_utf8_error(header, name, 1) from None
        # the window: input read but not yet cut into pieces is window[start:fill]
        self._window = bytearray()
        self._start = self._fill = 0
        self._eof = False
        try:  # the first rows, kept in the window for parsing, show the separator and decimal mark
            while self._fill < SNIFF_BYTES and self._more():
                pass
            head = bytes(self._window[:min(self._fill, SNIFF_BYTES)]).decode("utf-8", "replace")
            dialect = data.sniff_dialect(text + "\n" + head, self._eof and self._fill <= SNIFF_BYTES, name, sep,
                                         sep_option, decimal_option, suffix)
        except BaseException:
            self.close()
            raise
        self.sep, self.decimal, self.notes = dialect.sep, dialect.decimal, list(dialect.notes)
        self.warnings = list(dialect.warnings)
        if carriage_returns:
            self.notes.append(f"{name}: lines end with a carriage return alone (classic Mac OS), read as line ends")
        # an empty first header cell is R's row names: sample_id, as training names it
        cells = next(csv.reader([text], delimiter=self.sep))
        check_header_no_nul(cells, name)
        self.columns = data.row_names_header(cells)
        self.row_names = bool(cells) and not cells[0].strip() and self.columns[0] == data.DEFAULT_ID
        if check_header:
            check_unique_columns(self.columns, name)
        self._arrow_options = None
        self._layout: _Layout | None = None
        self._buffers = _BufferPool()
        self.reading_threads = _read_workers()

    @property
    def bytes_read(self):
        try:
            return self._raw.tell()
        except (OSError, ValueError, AttributeError):
            return None

    def close(self):
        for c in self._closers:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing after an error must not mask it
                pass

    @property
    def _exhausted(self) -> bool:
        return self._eof and self._start == self._fill

    def first_cells(self, limit: int) -> list[str]:
        """The first cells of the rows already in the window (the head read to detect the separator)."""
        head = bytes(self._window[self._start:self._fill])
        if not self._eof:
            head = head[:head.rfind(b"\n") + 1]  # whole lines only
        lines = head.decode("utf-8", "replace").splitlines()[:limit]
        return [row[0] for row in csv.reader(lines, delimiter=self.sep) if row]

    def _more(self) -> bool:
        """Read the next block of input onto the end of the window (window indices stay valid); False at
        the end of the input."""
        if self._eof:
            return False
        if self._fill + _BLOCK_BYTES > len(self._window):
            self._window.extend(bytes(max(_BLOCK_BYTES, len(self._window) // 2)))
        view = memoryview(self._window)
        try:
            k = self._stream.readinto(view[self._fill:self._fill + _BLOCK_BYTES])
        except _STREAM_ERRORS as exc:
            raise DataError(f"cannot read {self.name} (corrupt or truncated?): {data.sources.short_reason(exc)}") from None
        finally:
            view.release()  # the window cannot be resized while a view of it exists
        if not k:
            self._eof = True
            return False
        self._fill += k
        return True

    def _line_end(self, at: int) -> int:
        """Window index just after the first line end at or after `at`, reading on as needed; the end of
        the input if no line end follows."""
        while True:
            nl = self._window.find(b"\n", at, self._fill)
            if nl >= 0:
                return nl + 1
            at = self._fill
            if not self._more():
                return self._fill

    def _next_piece(self, size: PieceSize, piece_bytes: int) -> tuple[memoryview, bytearray, int]:
        """The next piece of whole lines as a view of a pooled buffer, the buffer (to give back with
        `_buffers.give` once parsed) and the number of line ends in it."""
        window = self._window
        if self._start > len(window) // 2:  # most of the window is used up: move the rest to the front
            live = self._fill - self._start
            window[:live] = window[self._start:self._fill]
            self._start, self._fill = 0, live
        if size.rows is None:  # whole lines of about piece_bytes
            while self._fill - self._start < piece_bytes and self._more():
                pass
            limit = min(self._start + piece_bytes, self._fill)
            cut = window.rfind(b"\n", self._start, limit)
            end = cut + 1 if cut >= 0 and limit < self._fill else (self._fill if self._eof and limit == self._fill
                                                                   else self._line_end(limit))
        else:  # _piece_rows(--chunksize) lines
            end = self._start
            for _ in range(_piece_rows(size.rows)):
                if end >= self._fill and not self._more():
                    break
                end = self._line_end(end)
        if window.find(b'"', self._start, end) >= 0 and window.count(b'"', self._start, end) % 2:
            # the cut fell inside a quoted field (a line end within quotes): take lines until quotes close
            quotes = window.count(b'"', self._start, end)
            while quotes % 2 and (end < self._fill or self._more()):
                following = self._line_end(end)
                quotes += window.count(b'"', end, following)
                end = following
        n = end - self._start
        buffer = self._buffers.take(n)
        view, source = memoryview(buffer), memoryview(window)
        view[:n] = source[self._start:end]  # one copy into a reused buffer: fresh memory costs page faults
        source.release()
        view.release()
        self._start = end
        text = memoryview(buffer)[:n]
        return text, buffer, _count_lines(text)

    def pieces(self, size, plan, convert):
        """Pieces parsed (and converted) in `_read_workers()` threads side by side and while the caller
        works (numpy's and pyarrow's parsers release the GIL). Pieces are cut in order under a lock and at
        most one per thread is in flight, so memory stays at a few pieces of text."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        workers = _read_workers()
        piece_bytes = size.text_bytes(workers)
        lock = threading.Lock()
        state = {"seq": 0, "line": 1 + self.header_lines}  # next piece's number and file line (the header's after 1)

        def task():
            with lock:
                if self._exhausted or (self._start == self._fill and not self._more()):
                    return None, END
                text, buffer, n_lines = self._next_piece(size, piece_bytes)
                seq, line = state["seq"], state["line"]
                state["seq"], state["line"] = seq + 1, line + n_lines
                if self._start == self._fill and self._eof and buffer.count(b'"', 0, len(text)) % 2:
                    # the file's last piece with an odd number of quotes: one may open a field never closed
                    check_quotes_closed(text, self.sep, self.name, line)
            parsed = self._parse(text, plan, line)
            del text
            piece = convert(parsed, line - 1 - self.header_lines) if len(parsed) else None  # data row 1: below the header
            del parsed  # nothing of the text is referenced any more: its buffer can be reused
            self._buffers.give(buffer)
            return seq, piece

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlpcli-read")
        try:
            running = {pool.submit(task) for _ in range(workers)}
            done: dict = {}
            following, finished = 0, False
            while running or following in done:
                if following not in done:
                    # not cut by a stop signal: one landing inside wait() left futures' locks held, and the
                    # shutdown below then waited forever for a reading thread (seen once under Ctrl-C)
                    with held():
                        ready, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in ready:
                        seq, piece = future.result()  # a reading error surfaces here, in the caller's thread
                        if piece is END:
                            finished = True
                        else:
                            done[seq] = piece
                    continue
                piece = done.pop(following)
                following += 1
                if not finished:
                    running.add(pool.submit(task))
                if piece is not None:  # None: a piece of blank lines
                    yield piece
                del piece
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # reads in progress finish before the file closes
            self.close()

    def _parse(self, text: memoryview, plan: "ColumnPlan", line: int):
        """One piece of text (its first line is the file's line `line`): numpy's tokenizer (`_tokenize`)
        when the piece has no quoted field that holds a separator, a line end or a quote; else pyarrow's
        CSV parser (features as float64, labels as text) when it accepts the piece, else pandas', whose
        inferred types and messages locate what is wrong (a cell that is not a number) to its column and
        line. The tokenizer costs the same per cell whatever the width of the rows, where pyarrow's parser
        costs some 20 us per column and piece (a second per piece of a 50,000-column table).

        Every row must have the header's number of fields: one field too many or too few would shift
        values into the wrong columns (pandas, given the names, drops or pads them silently), so a ragged
        row is a DataError naming its line, whichever parser reads the piece. Lines of nothing but
        whitespace are blank lines, skipped, as pandas (and so `train`) skips them."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        if self._layout is None:
            self._layout = _Layout.of(self.columns, plan)
        check_no_nul(text, self.sep, self.name, line, self.columns)
        cells = _tokenize(text, self.sep, self._layout, self.name, line, self.decimal)
        if cells is not None:
            return cells
        if self._arrow_options is None:
            types = {c: pa.float64() for c in plan.present_names}
            types.update({c: pa.string() for c in plan.label_columns})
            # the documented missing-value tokens (NA_TOKENS, not pyarrow's own list): empty and NA cells are
            # missing, as training reads them; the id, group and batch columns keep their text (``_as_missing``:
            # only "" is missing there)
            self._arrow_options = (pacsv.ConvertOptions(column_types=types, include_columns=plan.usecols(),
                                                        null_values=NA_TOKENS,
                                                        strings_can_be_null=not self._layout.ids,
                                                        decimal_point=self.decimal),
                                   pacsv.ReadOptions(column_names=self.columns, use_threads=False,
                                                     block_size=1 << 30))
        convert_options, read_options = self._arrow_options
        ragged = []  # the row pyarrow found with a wrong number of fields

        def on_invalid_row(row):  # called by pyarrow (in this thread) for a row of the wrong width only
            if not row.text.strip():
                return "skip"
            ragged.append(row)
            return "error"

        quoted = text.obj.find(b'"', 0, len(text)) >= 0  # quoted fields may hold line ends
        try:
            table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(text)), read_options=read_options,
                                   convert_options=convert_options,
                                   parse_options=pacsv.ParseOptions(delimiter=self.sep, newlines_in_values=quoted,
                                                                    invalid_row_handler=on_invalid_row))
            return _as_missing(table, self._layout) if self._layout.ids else table
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        # pyarrow checked the width of every row of the piece before converting any, but pandas is about to
        # read it, and given the column names pandas pads short rows and cuts long ones: check them here
        check_quoted(text, self.sep, len(self.columns), self.name, line)
        if ragged:  # the csv module and pyarrow disagree on the quoting: pyarrow's word is the fallback
            row = ragged[0]
            raise DataError(f"cannot read {self.name}: a row at or after line {line} has {row.actual_columns} "
                            f"field{'s' * (row.actual_columns != 1)} but the header has {len(self.columns)}: "
                            f"{row.text[:60]!r}")
        try:
            frame = pd.read_csv(io.BytesIO(text), sep=self.sep, decimal=self.decimal, header=None, names=self.columns,
                                usecols=plan.usecols(), dtype=plan.dtypes(), engine="c", index_col=False,
                                skip_blank_lines=True, **as_written_na(plan.usecols(), self._layout.ids))
            frame.attrs[DECIMAL_ATTR] = self.decimal  # a cell that is not a number is found as pandas saw it
            return frame
        except pd.errors.EmptyDataError:
            return pd.DataFrame(columns=plan.usecols())
        except pd.errors.ParserError as exc:
            # pandas counts lines from the piece's start; give the file's line numbers instead
            reason = re.sub(r"line (\d+)", lambda m: f"line {int(m.group(1)) + line - 1}", data.sources.short_reason(exc))
            raise DataError(f"cannot parse {self.name}: {reason}") from None
        except UnicodeDecodeError:  # the bad byte's own line, not the piece's first
            raise not_utf8_error(text, self.name, line) from None
        except ValueError as exc:
            raise DataError(f"cannot parse {self.name} near line {line}: {data.sources.short_reason(exc)}") from None


@dataclass
class _Layout:
    """Where a plan's columns sit in each row of a text table, for `_tokenize`."""

    n_columns: int
    features: np.ndarray  # (d_present,) int64: positions of plan.present_names, in that order
    others: dict  # label and target column name -> position
    targets: frozenset  # of `others`, the columns whose type is inferred (the rest are text)
    nulls: Any  # pyarrow array of the tokens read as missing (NA_TOKENS: "", NA, N/A, NULL, NaN, #N/A, ...)
    ids: frozenset = frozenset()  # of `others`, the id, group and batch columns (``written_columns``): read as
    # written, only "" is missing

    @classmethod
    def of(cls, columns: list[str], plan) -> "_Layout":
        import pyarrow as pa

        position = {c: i for i, c in enumerate(columns)}
        present = plan.present_names
        features = np.array([position[c] for c in present], dtype=np.int64)
        present = set(present)
        others = {c: position[c] for c in plan.usecols() if c not in present}
        ids = frozenset(written_columns(plan.roles) & set(others))
        return cls(len(columns), features, others, frozenset(plan.roles.target) - set(plan.label_columns),
                   pa.array(NA_TOKENS, type=pa.large_string()), ids)


class TextPiece:
    """A piece read by `_tokenize`: `values` (n, d_present) float64, the features in plan.present_names
    order (NaN where missing), and `columns`, the plan's other columns as pyarrow arrays (text, or the
    inferred type of a target column)."""

    def __init__(self, values: np.ndarray, columns: dict):
        self.values, self.columns = values, columns

    def __len__(self) -> int:
        return self.values.shape[0]


def _tokenize(text: memoryview, sep: str, layout: _Layout, name: str, line: int,
              decimal: str = ".") -> TextPiece | None:
    """Parse a piece of text (whole lines; its first line is the file's line `line`) with numpy: field
    boundaries from a comparison of every byte with the separator and the line end, the needed fields
    gathered into a pyarrow string array and cast to float64 (the number parser of pyarrow's CSV reader:
    the same values, bit for bit). Returns None when the piece needs a real CSV parser: a quoted field
    holding a separator, line end or quote, or a cell pyarrow's cast cannot read (a non-number, padding
    spaces), which the CSV parsers then read or name. A row whose number of fields differs from the
    header's is a DataError; lines of nothing but whitespace are skipped.

    With a decimal comma (`decimal` ","; the separator is then not a comma) the numbers are read from a
    copy of the text with commas and dots swapped: 0,123 reads as 0.123, and a cell written with a dot
    fails the cast and goes to the CSV parsers, which read it as training does (with the decimal
    option). Label columns are taken from the text as it is."""
    import pyarrow as pa

    raw = text.obj
    size = len(text)
    buf = np.frombuffer(text, dtype=np.uint8)
    if buf[-1] != 10:  # the last line of the input without a line end
        buf = np.append(buf, np.uint8(10))
    cut = buf == ord(sep)
    cut |= buf == 10
    pos = np.flatnonzero(cut)  # (F,) the separator or line end after each field
    line_ends = np.flatnonzero(buf[pos] == 10)  # (L,) index in pos of each line's last field
    extra = []  # bytes to drop besides the separators: a carriage return before a line end, simple quotes
    has_cr = raw.find(b"\r", 0, size) >= 0
    if has_cr:
        nl = pos[line_ends]
        extra.append(nl[(nl > 0) & (buf[nl - 1] == 13)] - 1)
    if raw.find(b'"', 0, size) >= 0:
        quotes = simple_quotes(buf, pos)
        if quotes is None:
            return None
        extra.append(quotes)
    n_fields = len(pos)
    counts = np.diff(line_ends, prepend=-1)  # fields per line
    rows = row_lines(buf, pos[line_ends], counts, layout.n_columns, name, line, sep=sep)
    first = line_ends[rows] - (layout.n_columns - 1)  # (n,) each row's first field
    # field i is data[offsets[i]:offsets[i + 1]] once separators (and extra) are dropped from the text
    keep = np.logical_not(cut, out=cut)
    dropped_before = np.arange(n_fields, dtype=np.int64)
    if extra:
        drops = np.sort(np.concatenate(extra))
        keep[drops] = False
        dropped_before += np.searchsorted(drops, pos)
    offsets = np.empty(n_fields + 1, dtype=np.int64)
    offsets[0] = 0
    np.subtract(pos, dropped_before, out=offsets[1:])
    del dropped_before
    kept = buf[keep]
    strings = pa.Array.from_buffers(pa.large_string(), n_fields, [None, pa.py_buffer(offsets), pa.py_buffer(kept)])
    numeric = strings  # the text the numbers are cast from
    if decimal != ".":
        numeric = pa.Array.from_buffers(pa.large_string(), n_fields,
                                        [None, pa.py_buffer(offsets), pa.py_buffer(_DECIMAL_SWAP[kept])])
    del keep, pos, cut, kept
    n, d = len(first), len(layout.features)
    try:
        if d:
            cells = numeric.take(pa.array((first[:, None] + layout.features[None, :]).ravel()))
            values = _numbers(cells, layout.nulls)
            if values is None:
                return None
            values = values.to_numpy(zero_copy_only=False).reshape(n, d)
        else:
            values = np.empty((n, 0))
        columns = {}
        for column, j in layout.others.items():
            take = pa.array(first + j)
            cells = _with_nulls(strings.take(take), _empty_token() if column in layout.ids else layout.nulls)
            cells.validate(full=True)  # UTF-8
            if column in layout.targets:
                columns[column] = _inferred(cells, None if numeric is strings
                                            else _with_nulls(numeric.take(take), layout.nulls))
            else:
                columns[column] = cells.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return TextPiece(values, columns)


_DECIMAL_SWAP = np.arange(256, dtype=np.uint8)  # a byte table: "," <-> "."
_DECIMAL_SWAP[[44, 46]] = [46, 44]


def _empty_token():
    """The one token missing from an id, group or batch column: an empty cell (a sample named NA is an id)."""
    import pyarrow as pa

    return pa.array([""], type=pa.large_string())


def _as_missing(table, layout: _Layout):
    """A piece pyarrow's CSV reader read with no string cell missing (the id, group and batch columns are read
    as written): the missing-value tokens of its other text columns made missing, and those columns' empty cells."""
    import pyarrow as pa

    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            nulls = _empty_token() if name in layout.ids else layout.nulls
            cells = _with_nulls(column.combine_chunks().cast(pa.large_string()), nulls).cast(column.type)
            table = table.set_column(i, name, cells)
    return table


def _with_nulls(cells, nulls):
    """String cells with the missing-value tokens `nulls` ("", NA, NaN, ...; `_Layout.nulls`) as nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = pc.is_in(cells, value_set=nulls)
    return pc.if_else(missing, pa.scalar(None, cells.type), cells) if pc.any(missing).as_py() else cells


def _numbers(cells, nulls):
    """String cells as float64 (NaN where missing), or None when a cell is not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(cells, pa.float64())
    except pa.ArrowInvalid:  # missing values (the cast reads "nan" but not "" or "NA"), or not numbers
        pass
    try:
        return pc.cast(_with_nulls(cells, nulls), pa.float64())
    except pa.ArrowInvalid:
        return None


def _inferred(cells, numeric=None):
    """A target column's cells with the type pyarrow's CSV reader would infer: integers, numbers,
    booleans, else text. `numeric`: the same cells with the decimal comma swapped for a dot (see
    `_tokenize`), to read numbers from; None: `cells`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for kind in (pa.int64(), pa.float64()):
        try:
            return pc.cast(cells if numeric is None else numeric, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    lower = pc.utf8_lower(cells)
    if pc.all(pc.is_in(lower, value_set=pa.array(["true", "false"], type=pa.large_string()))).as_py():
        return pc.equal(lower, "true")
    return cells.cast(pa.string())


def _count_lines(block: bytes) -> int:
    """Line ends in a block (numpy compares four times faster than bytes.count)."""
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10)) if block else 0


class _BufferPool:
    """Byte buffers for pieces of text, handed back after parsing and reused."""

    def __init__(self):
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        with self._lock:
            for i, buffer in enumerate(self._free):
                if len(buffer) >= size:
                    return self._free.pop(i)
        return bytearray(size + size // 4)  # room for the next pieces, which vary a little in size

    def give(self, buffer: bytearray) -> None:
        with self._lock:
            if len(self._free) < 8:
                self._free.append(buffer)


def _piece_rows(chunksize: int) -> int:
    """Rows per piece of text parsed by one thread: a quarter of a chunk, so that the (at most 4) threads
    together hold at most one chunk in flight."""
    return max(1, -(-chunksize // _PIECES_PER_CHUNK))


def _inside_quotes(line: bytes, sep: str | None) -> bool:
    """Whether `line` (a header's lines so far) ends inside a quoted field, by the CSV rules: a quote opens a field
    only at its start (the line's, or after a separator: `sep`, or any of the separators sniffing considers
    while it is not known yet), "" inside one is a quote, and a lone quote closes it. A quote inside an unquoted
    cell (a column named 5") opens nothing."""
    if b'"' not in line:
        return False
    seps = {ord(sep)} if sep else {ord(c) for c in ",\t;| "}
    inside, at_start, i, n = False, True, 0, len(line)
    while i < n:
        c = line[i]
        if inside:
            if c == 0x22:  # '"'
                if i + 1 < n and line[i + 1] == 0x22:
                    i += 1  # an escaped quote
                else:
                    inside = False
        elif c == 0x22 and at_start:
            inside = True
        at_start = not inside and (c in seps or c in (0x0A, 0x0D))
        i += 1
    return inside


def _read_workers() -> int:
    """Threads that parse text input: the usable cores, at most 4."""
    return max(1, min(4, usable_cores()))


def open_stream(name: str, stream, raw, check_header: bool, sep: str | None, decimal: str | None) -> "StreamedText":
    """A text table read once from ``stream`` (standard input or a pipe; ``raw``: the file to close after, None
    for standard input), decompressed when it starts as gzip, bzip2 or xz (``data.sources.stream_compression``),
    its separator sniffed."""
    data.sources.not_a_terminal(stream, name)
    head = b""
    while len(head) < data.sources.STREAM_HEAD:  # a pipe may hand over fewer bytes than asked for
        more = stream.read(data.sources.STREAM_HEAD - len(head))
        if not more:
            break
        head += more.encode("utf-8") if isinstance(more, str) else more
    data.sources.not_streamed(head, name)
    data.sources.not_utf16(head, name)
    buffered = io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 16)
    closing = [raw] if raw is not None else []
    compression = data.sources.stream_compression(head)
    if compression is not None:
        unpacked = (gzip.GzipFile(fileobj=buffered, mode="rb") if compression == "gzip"
                    else {"bz2": bz2.BZ2File, "xz": lzma.LZMAFile}[compression](buffered, mode="rb"))
        return StreamedText(name, raw, unpacked, None, None, [unpacked, *closing], check_header=check_header,
                          sep_option=sep, decimal_option=decimal)
    if not head:
        raise DataError("standard input is empty; pipe a CSV or TSV table into '-'" if raw is None
                        else f"{name} is empty; expected a header line and data rows")
    return StreamedText(name, raw, buffered, None, None, closing, check_header=check_header, sep_option=sep,
                      decimal_option=decimal)
