"""Opening a table to predict on: csv/tsv/txt (compressed or not), parquet, a DataFrame or standard input,
read in chunks of rows; text is cut into pieces at line ends and parsed by pyarrow in reading threads."""

from __future__ import annotations

import bz2
from abc import ABC, abstractmethod
import csv
import gzip
import io
import lzma
import os
import re
import sys
import threading
import zipfile
import zlib
from collections import Counter
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from .. import data
from ..data.io import _check_file
from ..errors import DataError
from .columns import ColumnPlan


_END = object()  # "no more pieces"
_PIECES_PER_CHUNK = 4  # text is parsed in pieces of a quarter chunk (see _piece_rows)
_BLOCK_BYTES = 1 << 22  # text input is read 4 MiB at a time
# What reading a damaged or truncated (compressed) stream raises; gzip.BadGzipFile is an OSError.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


class _Table(ABC):
    """A table whose header is known and whose rows come in pieces of at most `n` rows.

    `pieces(n, plan, convert)` yields `convert(parsed, first_row)` for each piece in order, where parsed
    (a DataFrame, or a pyarrow Table for text input) holds the plan's columns and first_row is the 0-based
    index of its first row; conversion runs in the reading threads where there are any."""

    name: str
    columns: list[str]
    total_bytes: int | None = None
    notes: tuple = ()  # how the table was read (a detected separator or decimal mark)

    @abstractmethod
    def pieces(self, n: int, plan: "ColumnPlan", convert: Callable) -> Iterator:
        """Yield ``convert(parsed, first_row)`` for each piece of at most ``n`` rows, in order."""

    @property
    def bytes_read(self) -> int | None:
        return None

    def close(self) -> None:
        pass


class _FrameTable(_Table):
    """An in-memory DataFrame (a notebook's, or a transposed file read whole)."""

    def __init__(self, frame: pd.DataFrame, name: str):
        self.frame = frame
        self.name = name
        self.columns = [str(c) for c in frame.columns]
        if list(frame.columns) != self.columns:
            self.frame = frame.set_axis(self.columns, axis=1)
        _check_header(self.columns, name)

    def pieces(self, n, plan, convert):
        sub = self.frame[plan.usecols()]
        for start in range(0, len(sub), n):
            yield convert(sub.iloc[start:start + n], start)


class _ParquetTable(_Table):
    """A parquet file, read by row batches of only the needed columns."""

    def __init__(self, path: str):
        import pyarrow.parquet as pq

        self.name = path
        self.total_bytes = os.path.getsize(path)
        self._done = 0
        try:
            self._file = pq.ParquetFile(path)
            names = self._file.schema_arrow.names
        except (ValueError, OSError) as exc:
            raise DataError(f"cannot parse {path} as parquet: {data._short_reason(exc)}") from None
        self.columns = [str(c) for c in names if not str(c).startswith("__index_level_")]
        _check_header(self.columns, path)

    def pieces(self, n, plan, convert):
        batches = self._file.iter_batches(batch_size=n, columns=plan.usecols())

        def read_one():  # in the read-ahead thread: the next batch, converted
            try:
                batch = next(batches, None)
            except (ValueError, OSError) as exc:
                raise DataError(f"cannot parse {self.name} as parquet: {data._short_reason(exc)}") from None
            if batch is None:
                return _END
            first = self._done
            self._done += batch.num_rows
            return convert(batch.to_pandas(), first)

        yield from _read_ahead(read_one)

    @property
    def bytes_read(self):
        return int(self.total_bytes * self._done / max(self._file.metadata.num_rows, 1))

    def close(self):
        self._file.close()


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


class _TextTable(_Table):
    """CSV / TSV, plain or compressed, from a file or standard input, read piece by piece.

    Pieces are cut at line ends (never inside a quoted field) from 4 MiB reads and parsed with only the
    needed columns, so memory stays at about one chunk whatever the size of the input, which is read once
    from start to end (standard input works like a file)."""

    def __init__(self, name: str, raw, stream, sep: str | None, total_bytes: int | None, closers=(),
                 sep_option: str | None = None, decimal_option: str | None = None, suffix: str = ""):
        self.name, self._raw, self._stream, self.total_bytes = name, raw, stream, total_bytes
        self._closers = list(closers)
        try:
            header = stream.readline()
        except _STREAM_ERRORS as exc:
            self.close()
            raise DataError(f"cannot read {name}: {data._short_reason(exc)}") from None
        if not header.strip():
            self.close()
            raise DataError(f"{name} is empty; expected a header line and data rows")
        try:
            text = header.decode("utf-8-sig").rstrip("\r\n")
        except UnicodeDecodeError:
            self.close()
            raise DataError(f"cannot parse {name}: the header line is not UTF-8 text (a binary file?)") from None
        self._carry = b""
        self._eof = False
        try:  # the first rows, kept for parsing, show the separator and decimal mark (data.sniff_dialect)
            self._carry = self._read()
            dialect = data.sniff_dialect(text + "\n" + self._carry[:1 << 20].decode("utf-8", "replace"), False,
                                         name, sep, sep_option, decimal_option, suffix)
        except BaseException:
            self.close()
            raise
        self.sep, self.decimal, self.notes = dialect.sep, dialect.decimal, list(dialect.notes)
        # an empty first header cell is R's row names: sample_id, as training names it
        self.columns = data.row_names_header(next(csv.reader([text], delimiter=self.sep)))
        _check_header(self.columns, name)
        self._arrow_options = None
        self._buffers = _BufferPool()

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

    def _read(self) -> bytes:
        try:
            block = self._stream.read(_BLOCK_BYTES)
        except _STREAM_ERRORS as exc:
            raise DataError(f"cannot read {self.name} (corrupt or truncated?): {data._short_reason(exc)}") from None
        if isinstance(block, str):
            block = block.encode("utf-8")
        if not block:
            self._eof = True
        return block

    def _lines(self, n: int) -> tuple[memoryview, bytearray | None, int]:
        """The next n lines (or the rest of the input) as a view of a pooled buffer, the buffer (to give
        back with `_buffers.give` once parsed), and the number of line ends in them."""
        parts = [self._carry] if self._carry else []
        count = _count_lines(self._carry)
        while count < n and not self._eof:
            block = self._read()
            if block:
                parts.append(block)
                count += _count_lines(block)
        if count >= n:
            last = parts[-1]
            pos = len(last)
            for _ in range(count - n + 1):  # skip the line ends after the n-th, counting back from the end
                pos = last.rindex(b"\n", 0, pos)
            parts[-1], self._carry = last[:pos + 1], last[pos + 1:]
            count = n
            if any(b'"' in p for p in parts) and sum(p.count(b'"') for p in parts) % 2:
                # the cut fell inside a quoted field (a line end within quotes): take lines until quotes close
                text = b"".join(parts)
                while text.count(b'"') % 2:
                    nl = self._carry.find(b"\n")
                    while nl < 0 and not self._eof:
                        self._carry += self._read()
                        nl = self._carry.find(b"\n")
                    if nl < 0:
                        text, self._carry = text + self._carry, b""
                        break
                    text, self._carry = text + self._carry[:nl + 1], self._carry[nl + 1:]
                parts, count = [text], text.count(b"\n")
        else:  # end of input: the rest
            self._carry = b""
        size = sum(len(p) for p in parts)
        if not size:
            return memoryview(b""), None, 0
        buffer = self._buffers.take(size)
        view = memoryview(buffer)[:size]
        at = 0
        for p in parts:  # one copy into a reused buffer: fresh memory per piece costs page faults
            view[at:at + len(p)] = p
            at += len(p)
        return view, buffer, count

    def pieces(self, n, plan, convert):
        """Pieces of n rows, parsed (and converted) in `_read_workers()` threads side by side and while the
        caller works (pyarrow's parser releases the GIL). Pieces are cut in order under a lock and at most
        one per thread is in flight, so memory stays at a few pieces of text."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        workers = _read_workers()
        n = _piece_rows(n)
        lock = threading.Lock()
        state = {"seq": 0, "line": 2}  # next piece's number and file line (the header is line 1)

        def task():
            with lock:
                if self._eof and not self._carry:
                    return None, _END
                text, buffer, n_lines = self._lines(n)
                seq, line = state["seq"], state["line"]
                state["seq"], state["line"] = seq + 1, line + n_lines
            if buffer is None:
                return seq, None
            parsed = self._parse(text, plan, line)
            del text
            piece = convert(parsed, line - 2) if len(parsed) else None  # data row 1 is on line 2
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
                    ready, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in ready:
                        seq, piece = future.result()  # a reading error surfaces here, in the caller's thread
                        if piece is _END:
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
        """One piece of text: pyarrow's CSV parser (features as float64, labels as text) when it accepts the
        piece, else pandas', whose inferred types and messages locate what is wrong (a cell that is not a
        number, a row with too many fields) to its column and line."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        if self._arrow_options is None:
            types = {c: pa.float64() for c in plan.present_names}
            types.update({c: pa.string() for c in plan.label_columns})
            # strings_can_be_null: empty and NA cells are missing, as pandas (and so training) reads them
            self._arrow_options = (pacsv.ConvertOptions(column_types=types, include_columns=plan.usecols(),
                                                        strings_can_be_null=True, decimal_point=self.decimal),
                                   pacsv.ReadOptions(column_names=self.columns, use_threads=False,
                                                     block_size=1 << 30))
        convert_options, read_options = self._arrow_options
        try:
            quoted = text.obj.find(b'"', 0, len(text)) >= 0  # quoted fields may hold line ends
            return pacsv.read_csv(pa.BufferReader(pa.py_buffer(text)), read_options=read_options,
                                  convert_options=convert_options,
                                  parse_options=pacsv.ParseOptions(delimiter=self.sep, newlines_in_values=quoted))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        try:
            return pd.read_csv(io.BytesIO(text), sep=self.sep, decimal=self.decimal, header=None, names=self.columns,
                               usecols=plan.usecols(),
                               dtype=plan.dtypes(), engine="c", index_col=False, skip_blank_lines=True)
        except pd.errors.EmptyDataError:
            return pd.DataFrame(columns=plan.usecols())
        except pd.errors.ParserError as exc:
            # pandas counts lines from the piece's start; give the file's line numbers instead
            reason = re.sub(r"line (\d+)", lambda m: f"line {int(m.group(1)) + line - 1}", data._short_reason(exc))
            raise DataError(f"cannot parse {self.name}: {reason}") from None
        except UnicodeDecodeError:
            raise DataError(f"cannot parse {self.name} near line {line}: not UTF-8 text") from None
        except ValueError as exc:
            raise DataError(f"cannot parse {self.name} near line {line}: {data._short_reason(exc)}") from None


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


def _read_workers() -> int:
    """Threads that parse text input: the cores this process may use (an HPC job's allocation), at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _check_header(columns: Sequence[str], name: str) -> None:
    repeats = [(c, k) for c, k in Counter(columns).items() if k > 1 and c != ""]
    if repeats:
        listed = ", ".join(f"{c!r} (×{k})" for c, k in repeats[:5])
        raise DataError(f"duplicate column names in {name}: {listed}; rename or remove the repeated columns")


def open_table(source, *, features_in_rows: bool = False, stdin=None, sep: str | None = None,
               decimal: str | None = None) -> _Table:
    """Open `source` (a path, "-" for standard input, or a DataFrame) for reading in chunks.

    Formats as for every command: .csv, .tsv/.txt, each optionally .gz/.bz2/.xz/.zip, .parquet, and "-"
    (CSV or TSV sniffed from the header, gzip detected by its magic bytes). The transposed layout
    (`features_in_rows`) cannot be streamed and is read whole. `sep`, `decimal`: as for training
    (``data.sniff_dialect``; None or "auto" detects them).
    """
    if isinstance(source, pd.DataFrame):
        return _FrameTable(source, "the table")
    if features_in_rows:
        name = "standard input" if str(source) == "-" else os.fspath(source)
        return _FrameTable(data.read_table(source, features_in_rows=True, stdin=stdin, sep=sep, decimal=decimal), name)
    if str(source) == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        head = stream.read(2)
        if isinstance(head, str):
            head = head.encode("utf-8")
        buffered = io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 16)
        if head == b"\x1f\x8b":
            return _TextTable("standard input", None, gzip.GzipFile(fileobj=buffered, mode="rb"), None, None,
                              sep_option=sep, decimal_option=decimal)
        if not head:
            raise DataError("standard input is empty; pipe a CSV or TSV table into '-'")
        return _TextTable("standard input", None, buffered, None, None, sep_option=sep, decimal_option=decimal)
    path = os.fspath(source)
    _check_file(path)
    kind, default_sep, compression = data._table_format(path)
    if kind == "parquet":
        return _ParquetTable(path)
    given = {"sep_option": sep, "decimal_option": decimal, "suffix": data.text_suffix(path)}
    raw = open(path, "rb")
    total = os.path.getsize(path)
    try:
        if compression is None:
            return _TextTable(path, raw, raw, default_sep, total, [raw], **given)
        if compression == "zip":
            archive = zipfile.ZipFile(raw)
            members = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX/")]
            if len(members) != 1:
                raise DataError(f"cannot parse {path}: a .zip table must hold exactly one file, found {len(members)}")
            member = archive.open(members[0])
            return _TextTable(path, raw, member, default_sep, total, [member, archive, raw], **given)
        opener = {"gzip": gzip.GzipFile, "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}[compression]
        stream = opener(raw, mode="rb") if compression != "gzip" else opener(fileobj=raw, mode="rb")
        return _TextTable(path, raw, stream, default_sep, total, [stream, raw], **given)
    except zipfile.BadZipFile as exc:
        raw.close()
        raise DataError(f"cannot parse {path}: {data._short_reason(exc)}") from None
    except BaseException:
        raw.close()
        raise


# ── reading ahead ────────────────────────────────────────────────────────────────────────────────────────


def _read_ahead(read_one: Callable[[], Any]) -> Iterator:
    """The results of calling `read_one()` until it returns _END, each next one computed in a background
    thread while the caller works on the current one (one ahead, no more: memory stays at two pieces)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlpcli-read")
    try:
        pending = pool.submit(read_one)
        while True:
            item = pending.result()  # an error in the reader surfaces here, in the caller's thread
            if item is _END:
                return
            pending = pool.submit(read_one)
            yield item
            del item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
