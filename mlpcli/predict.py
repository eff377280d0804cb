"""Using a trained model on new samples: features matched by name, a cohort-shift check, prediction in
chunks of rows, and evaluation against known labels.

    table ─open_table─▶ header ─plan_columns(model)─▶ ColumnPlan (roles, features by name, fills)
          ─pieces of rows, parsed in reading threads─▶ raw values, in the model's feature order
          ─the model's Preprocessor, as fitted─▶ Z (n, d_kept) ─▶ shift statistics per feature
          ─network, in blocks of FORWARD_ROWS rows─▶ outputs ─▶ prediction frames │ metrics

Speed and memory, for tables far larger than memory: a chunk of text rows is cut into pieces at line
ends, and the pieces are parsed side by side by pyarrow's CSV parser in a few threads (it releases the
GIL) while the caller's thread transforms, predicts and writes the previous ones; only the columns
needed are converted (the features the fitted preprocessing keeps, so a 60,000-gene table scored by a
2,000-gene model parses 2,000 columns); values stay column-major from parser to network (BLAS takes
either layout), and buffers are reused rather than allocated per chunk. A piece pyarrow rejects is
parsed again by pandas, whose inferred types locate a bad cell to its column and row.

Nothing here prints or imports click / rich: notes and warnings are returned as lists of strings,
progress goes through a callback, and every user error is a ``DataError`` / ``ConfigError`` with a
one-line message.

    >>> stream = predict_stream(model, "new_cohort.csv.gz")
    >>> predictions = pd.concat(stream)          # or write_predictions(stream, "predictions.csv")
    >>> stream.shift.most_shifted(5)
    >>> result = evaluate(model, "test_cohort.csv.gz", by="batch", bootstrap=1000)
"""

from __future__ import annotations

import bz2
from abc import ABC, abstractmethod
import copy
import csv
import dataclasses
import difflib
import gzip
import io
import lzma
import math
import os
import re
import sys
import threading
import warnings as _warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from . import data
from .errors import ConfigError, DataError
from .fileio import atomic_write
from .model_io import Model

__all__ = [
    "DEFAULT_CHUNKSIZE", "FORWARD_ROWS", "RoleFlags", "ColumnPlan", "ShiftReport", "PredictionStream",
    "EvaluationResult", "Prepared", "open_table", "plan_columns", "prepare", "shift_report", "predict_stream",
    "write_predictions", "output_format", "evaluate", "main_metric",
]

DEFAULT_CHUNKSIZE = 10_000
# The network sees rows in blocks of this many, counted from the table's first row whatever the chunk size.
# BLAS results differ in the last bits with the number of rows in a product, so fixed blocks are what makes
# chunked prediction equal one-shot prediction exactly; 8192 is Model.predict_output's batch size, so the
# numbers also equal model.predict_output(X) bit for bit.
FORWARD_ROWS = 8192

# Cohort-shift check, on the preprocessed scale the network sees (z-scores when trained with standardising).
# A feature is "shifted" when its new mean is more than SHIFT_MEAN_SD training SDs from the training mean: the
# first layer was fitted to inputs spread over about +-1 SD, so a whole-SD offset moves the feature to where
# the model saw few samples. Without a real shift a cohort's mean lies that far out only by chance, which for
# n >= SHIFT_MIN_SAMPLES happens to under 3 % of features (the mean's SE is 1/sqrt(n)).
SHIFT_MEAN_SD = 1.0
# ... or when its SD is more than SHIFT_SPREAD_RATIO times larger or smaller than in training (another
# normalisation, other units, a saturated assay). SD estimates are noisy (heavy-tailed features especially),
# so spread is judged only from SPREAD_MIN_SAMPLES rows on.
SHIFT_SPREAD_RATIO = 2.0
SPREAD_MIN_SAMPLES = 20
# Warn when more than this share of features is shifted: a few shifted genes occur in any new cohort, a tenth
# of the inputs moving together is a batch or protocol effect the model never saw.
SHIFT_FRACTION = 0.10
# A milder warning when more than SHIFT_FRACTION of features are SHIFT_MILD_SD away: a batch effect of half an
# SD on many genes at once still moves predictions near the decision boundary. Judged from MILD_MIN_SAMPLES
# rows on, where chance alone puts under 3 % of features that far (SE = 1/sqrt(20) = 0.22 SD).
SHIFT_MILD_SD = 0.5
MILD_MIN_SAMPLES = 20
SHIFT_MIN_SAMPLES = 5  # fewer rows: one sample's own spread would flag a third of the features
SHIFT_SHOWN = 5  # features named in the warning

# `--by`: a group "fails" when its main metric is this much worse than the whole table's. 0.10 of balanced
# accuracy separates a usable from a misleading classifier for most questions; for regression, an RMSE 25 %
# above the overall one.
BY_WORSE_SCORE = 0.10
BY_WORSE_RMSE_RATIO = 1.25
# Bootstrap: a metric undefined in more than half the resamples (e.g. AUC with one class drawn) gets no CI.
_BOOTSTRAP_MIN_VALID = 0.5
_PARALLEL_BOOTSTRAP = 200  # resamples from which worker processes pay for their start (~2 s)

_END = object()  # "no more pieces"
_PIECES_PER_CHUNK = 4  # text is parsed in pieces of a quarter chunk (see _piece_rows)
_BLOCK_BYTES = 1 << 22  # text input is read 4 MiB at a time
# What reading a damaged or truncated (compressed) stream raises; gzip.BadGzipFile is an OSError.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)
_STAT_ROWS = 2048  # rows preprocessed (and summed for the shift check) per step: bounds the temporaries

OUTPUT_FORMATS = ".csv, .tsv, .txt (each optionally .gz, .bz2 or .xz), .parquet, or '-' for standard output"
_OUT_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}


# ── small helpers ────────────────────────────────────────────────────────────────────────────────────────


def _quoted(names: Iterable[Any], limit: int = 5) -> str:
    """"'a', 'b', 'c' and 4 more": one line however many names."""
    names = list(names)
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _names(value) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


def _not_found(flag: str, name: str, columns: Sequence[str]) -> DataError:
    hint = difflib.get_close_matches(name, list(columns), n=1)
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    return DataError(f"{flag} column {name!r} not found{did_you_mean}; the table has {len(columns)} columns "
                     f"({_quoted(columns, 4)})")


def _label_keys(values: np.ndarray) -> np.ndarray:
    """Labels as matching keys, as in training (1, 1.0 and "1" all give "1"); missing -> "NA"."""
    return np.asarray(["NA" if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA
                       else data._label_key(v) for v in values], dtype=object)


# ── reading tables in chunks ─────────────────────────────────────────────────────────────────────────────


@dataclass
class RoleFlags:
    """Column-role overrides (the flags shared with `train`); None means the model's own roles."""

    target: str | Sequence[str] | None = None
    group: str | None = None
    no_group: bool = False
    id: str | None = None
    batch: str | None = None
    drop: str | Sequence[str] = ()
    features_in_rows: bool = False


class _Table(ABC):
    """A table whose header is known and whose rows come in pieces of at most `n` rows.

    `pieces(n, plan, convert)` yields `convert(parsed, first_row)` for each piece in order, where parsed
    (a DataFrame, or a pyarrow Table for text input) holds the plan's columns and first_row is the 0-based
    index of its first row; conversion runs in the reading threads where there are any."""

    name: str
    columns: list[str]
    total_bytes: int | None = None

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

    def __init__(self, name: str, raw, stream, sep: str | None, total_bytes: int | None, closers=()):
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
        if sep is None:  # standard input: TSV when the header has more tabs than commas
            sep = "\t" if text.count("\t") > text.count(",") else ","
        self.sep = sep
        self.columns = next(csv.reader([text], delimiter=sep))
        _check_header(self.columns, name)
        self._carry = b""
        self._eof = False
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
                                                        strings_can_be_null=True),
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
            return pd.read_csv(io.BytesIO(text), sep=self.sep, header=None, names=self.columns, usecols=plan.usecols(),
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


def open_table(source, *, features_in_rows: bool = False, stdin=None) -> _Table:
    """Open `source` (a path, "-" for standard input, or a DataFrame) for reading in chunks.

    Formats as for every command: .csv, .tsv/.txt, each optionally .gz/.bz2/.xz/.zip, .parquet, and "-"
    (CSV or TSV sniffed from the header, gzip detected by its magic bytes). The transposed layout
    (`features_in_rows`) cannot be streamed and is read whole.
    """
    if isinstance(source, pd.DataFrame):
        return _FrameTable(source, "the table")
    if features_in_rows:
        name = "standard input" if str(source) == "-" else os.fspath(source)
        return _FrameTable(data.read_table(source, features_in_rows=True, stdin=stdin), name)
    if str(source) == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        head = stream.read(2)
        if isinstance(head, str):
            head = head.encode("utf-8")
        buffered = io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 16)
        if head == b"\x1f\x8b":
            return _TextTable("standard input", None, gzip.GzipFile(fileobj=buffered, mode="rb"), None, None)
        if not head:
            raise DataError("standard input is empty; pipe a CSV or TSV table into '-'")
        return _TextTable("standard input", None, buffered, None, None)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise DataError(f"table file not found: {path}")
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory; give a table file ({data.SUPPORTED_FORMATS})")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path} is empty; expected a header line and data rows")
    kind, sep, compression = data._table_format(path)
    if kind == "parquet":
        return _ParquetTable(path)
    raw = open(path, "rb")
    total = os.path.getsize(path)
    try:
        if compression is None:
            return _TextTable(path, raw, raw, sep, total, [raw])
        if compression == "zip":
            archive = zipfile.ZipFile(raw)
            members = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX/")]
            if len(members) != 1:
                raise DataError(f"cannot parse {path}: a .zip table must hold exactly one file, found {len(members)}")
            member = archive.open(members[0])
            return _TextTable(path, raw, member, sep, total, [member, archive, raw])
        opener = {"gzip": gzip.GzipFile, "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}[compression]
        stream = opener(raw, mode="rb") if compression != "gzip" else opener(fileobj=raw, mode="rb")
        return _TextTable(path, raw, stream, sep, total, [stream, raw])
    except zipfile.BadZipFile as exc:
        raw.close()
        raise DataError(f"cannot parse {path}: {data._short_reason(exc)}") from None
    except BaseException:
        raw.close()
        raise


# ── matching a table's columns to the model ──────────────────────────────────────────────────────────────


@dataclass
class ColumnPlan:
    """How one table's columns map onto a model: found once from the header, applied to every chunk."""

    source: str
    roles: data.Roles  # target (present target columns), group, id, batch of this table
    features: list[str]  # the features the network uses (the preprocessing's kept ones), model order
    present: np.ndarray  # (d_kept,) bool: found in the table
    fill_values: np.ndarray  # (d_kept,) raw value used where a feature is absent (NaN where present)
    by: str | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def present_names(self) -> list[str]:
        return [f for f, p in zip(self.features, self.present) if p]

    @property
    def label_columns(self) -> list[str]:
        """id, group, batch and --by columns: read as text (ids like 007 stay 007)."""
        keep_types = set(self.present_names) | set(self.roles.target)  # --by may name a feature or the target
        cols = [self.roles.id, self.roles.group, self.roles.batch, self.by]
        return [c for c in dict.fromkeys(cols) if c is not None and c not in keep_types]

    def usecols(self) -> list[str]:
        return list(dict.fromkeys([*self.present_names, *self.label_columns, *self.roles.target]))

    def dtypes(self) -> dict:
        """Text for the label columns; features are left to pandas' inference (numbers parse as int64 or
        float64 as fast as with a declared dtype, and a cell that is not a number leaves its column as text
        instead of aborting the parse, so the error can name the column and row)."""
        return {c: str for c in self.label_columns}


def _training_means(model: Model) -> np.ndarray:
    """Raw values (d_kept,) that the fitted preprocessing maps to the training means of its outputs."""
    pre = model.preprocessor
    on_scale = pre.center_ + pre.scale_ * pre.train_mean_  # the mean after log1p / imputation
    return np.expm1(on_scale) if pre.config.log1p else on_scale


def plan_columns(model: Model, columns: Sequence[str], roles: RoleFlags | None = None, *, need_target: bool = False,
                 by: str | None = None, fill_missing: str | None = None, source: str = "the table") -> ColumnPlan:
    """Match a table's header to the model: roles (the model's, unless overridden), features by name.

    Extra columns are ignored (one note); absent features the network uses are an error naming the first
    few, unless `fill_missing="mean"` fills them with the training mean (a warning). With `need_target`
    the target column(s) must be present; otherwise they are ignored.
    """
    if fill_missing not in (None, "mean"):
        raise ConfigError(f"--fill-missing {fill_missing!r}: the only choice is 'mean'")
    flags = roles or RoleFlags()
    columns = [str(c) for c in columns]
    present_set = set(columns)
    kept = list(model.preprocessor.kept_features)
    model_features = set(model.feature_names)
    mroles = model.roles or {}
    notes: list[str] = []
    warns: list[str] = []

    drop = _names(flags.drop)
    for name in drop:
        if name not in present_set:
            raise _not_found("--drop", name, columns)

    def role(flag: str, given: str | None, trained: str | None, default: str, allowed: bool = True) -> str | None:
        if not allowed:
            return None
        if given is not None:
            if given not in present_set:
                raise _not_found(flag, given, columns)
            if given in model_features:
                raise ConfigError(f"{flag} {given!r} is one of the model's features; give the column one role")
            return given
        for candidate in (trained, default):  # the training role first, then the usual default
            if candidate and candidate in present_set and candidate not in model_features and candidate not in drop:
                return candidate
        return None

    group = role("--group", flags.group, mroles.get("group"), data.DEFAULT_GROUP, allowed=not flags.no_group)
    id_col = role("--id", flags.id, mroles.get("id"), data.DEFAULT_ID)
    batch = role("--batch", flags.batch, mroles.get("batch"), data.DEFAULT_BATCH)
    if flags.group is not None and flags.no_group:
        raise ConfigError("--group and --no-group contradict each other; pass one of them")

    targets = _names(flags.target) or list(mroles.get("target") or model.target_names)
    found = [t for t in targets if t in present_set]
    if need_target:
        absent = [t for t in targets if t not in present_set]
        if absent:
            hint = difflib.get_close_matches(absent[0], columns, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise DataError(f"{source} has no target column {_quoted(absent)}{did_you_mean}; evaluation needs the "
                            "true labels — name the column with --target, or use `mlpcli predict` for unlabelled data")
        if model.task == "multilabel" or model.task == "regression":
            if [str(c) for c in model.classes] != targets:
                raise DataError(f"target columns {_quoted(targets)} differ from the model's {_quoted(model.classes)}; "
                                "pass the model's columns to --target")
    elif found:
        notes.append(f"ignored the target column{'s' * (len(found) > 1)} {_quoted(found)} (not needed to predict)")
    clash = [t for t in found if t in (group, id_col, batch) or t in model_features]
    if clash:
        raise ConfigError(f"column {clash[0]!r} is both the target and another role or a feature; give it one role")
    roles_used = [c for c in (id_col, group, batch) if c is not None]
    if len(set(roles_used)) != len(roles_used):
        raise ConfigError(f"one column has two roles (id {id_col!r}, group {group!r}, batch {batch!r}); "
                          "give each column one role")
    if by is not None and by not in present_set:
        raise _not_found("--by", by, columns)

    unavailable = set(drop) | set(roles_used) | set(found)
    present = np.array([f in present_set and f not in unavailable for f in kept], dtype=bool)
    missing = [f for f, p in zip(kept, present) if not p]
    fill = np.full(len(kept), np.nan)
    if missing:
        if fill_missing != "mean":
            raise DataError(f"{source} lacks {len(missing)} of the {len(kept)} features the model uses: "
                            f"{_quoted(missing)}; add them, or pass --fill-missing mean to use their training means")
        fill[~present] = _training_means(model)[~present]
        warns.append(f"{len(missing)} of the {len(kept)} features the model uses are missing and filled with their "
                     f"training means: {_quoted(missing)}; predictions rest on the other features")
    unused_absent = [f for f in model.feature_names if f not in present_set and f not in set(kept)]
    if unused_absent:
        notes.append(f"{len(unused_absent)} of the model's input features are absent but unused by the network "
                     f"(dropped as constant or by --top-var in training): {_quoted(unused_absent, 3)}")
    used = set(kept) | set(roles_used) | set(found) | set(drop) | ({by} if by else set())
    extra = [c for c in columns if c not in used]
    if extra:
        notes.append(f"ignored {len(extra)} column{'s' * (len(extra) != 1)} the model does not use: {_quoted(extra, 4)}")
    position = {c: i for i, c in enumerate(columns)}
    order = [position[f] for f, p in zip(kept, present) if p]
    if any(b < a for a, b in zip(order, order[1:])):
        notes.append("features matched by name (the table's column order differs from the model's)")
    picked = [f"{r} {c}" for r, c in (("id", id_col), ("group", group), ("batch", batch)) if c is not None]
    notes.insert(0, f"columns: {', '.join(picked) if picked else 'no id, group or batch column'}; "
                    f"{int(present.sum())} of the model's {len(kept)} features found")
    return ColumnPlan(source=source, roles=data.Roles(target=found, group=group, id=id_col, batch=batch, drop=drop),
                      features=kept, present=present, fill_values=fill, by=by, notes=notes, warnings=warns)


# ── feature values of one chunk ──────────────────────────────────────────────────────────────────────────


def _row_label(first_row: int, i: int, ids: np.ndarray | None) -> str:
    text = f"row {first_row + i + 1}"
    if ids is not None and i < len(ids) and isinstance(ids[i], str):
        text += f" (id {ids[i]!r})"
    return text


def _raise_non_numeric(frame: pd.DataFrame, columns: Sequence[str], source: str, first_row: int,
                       ids: np.ndarray | None) -> None:
    """Raise a DataError naming the first non-numeric cell (row order, then column order) of `columns`."""
    best = None  # (row, column index, value)
    for j, col in enumerate(columns):
        values = frame[col]
        if pd.api.types.is_numeric_dtype(values.dtype):
            continue
        parsed = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy() & values.notna().to_numpy())
        if bad.size and (best is None or bad[0] < best[0]):
            best = (int(bad[0]), j, values.iloc[bad[0]])
    if best is not None:
        row, j, value = best
        raise DataError(f"{source}: feature column {columns[j]!r} holds the non-numeric value {str(value)!r} at "
                        f"{_row_label(first_row, row, ids)}; features must be numbers")


def _present_values(plan: ColumnPlan, frame: pd.DataFrame, first_row: int, ids: np.ndarray | None) -> np.ndarray:
    """The features found in the table, (n, d_present) float64 in the model's order (column-major, as
    pandas holds them: the rows are never transposed, the network's BLAS product takes either layout). A
    cell that is not a number (text input is parsed with inferred types, so a bad cell leaves its column
    as text) is a DataError naming the column and row."""
    names = plan.present_names
    dtypes = frame.dtypes
    numeric = [pd.api.types.is_numeric_dtype(dtypes[c]) for c in names]
    sub = frame[names]
    if not all(numeric):
        bad = [c for c, ok in zip(names, numeric) if not ok]
        _raise_non_numeric(frame, bad, plan.source, first_row, ids)
        sub = sub.apply(pd.to_numeric)  # text columns holding only numbers (DataFrame input)
    if all(isinstance(t, np.dtype) and t.kind in "fiub" for t in sub.dtypes):
        values = sub.to_numpy()  # column-major: pandas stacks its columns, no transposing copy
        return values if values.dtype == np.float64 else values.astype(np.float64)
    return sub.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable dtypes (pd.NA)


def _complete(plan: ColumnPlan, values: np.ndarray, first_row: int, pre, ids: np.ndarray | None) -> np.ndarray:
    """Rows (k, d_kept) for the preprocessing: absent features filled, values checked (missing values
    without --impute, infinities, negatives under log1p are DataErrors naming column and row)."""
    if plan.present.all():
        X = values
    else:
        X = np.empty((len(values), len(plan.features)), order="F")
        X[:, plan.present] = values
        X[:, ~plan.present] = plan.fill_values[~plan.present]
    finite = np.isfinite(X)
    if not finite.all():
        bad = ~finite
        inf = bad & ~np.isnan(X)
        if inf.any():
            i, j = np.argwhere(inf)[0]
            raise DataError(f"{plan.source}: feature column {plan.features[j]!r} holds an infinite value at "
                            f"{_row_label(first_row, i, ids)}; replace it")
        if pre.config.impute is None:
            i, j = np.argwhere(bad)[0]
            raise DataError(f"{plan.source}: feature column {plan.features[j]!r} has a missing value at "
                            f"{_row_label(first_row, i, ids)} ({int(bad.sum())} missing in rows {first_row + 1}-"
                            f"{first_row + len(X)}); the model was trained without --impute, so fill them or retrain "
                            "with --impute")
    if pre.config.log1p:
        negative = X < 0
        if negative.any():
            i, j = np.argwhere(negative)[0]
            raise DataError(f"{plan.source}: feature column {plan.features[j]!r} holds the negative value "
                            f"{X[i, j]:.4g} at {_row_label(first_row, i, ids)}; the model applies log1p "
                            "(trained with --log1p), which needs non-negative values")
    return X


def _kept_only(pre):
    """The fitted preprocessor, taking only its kept features as input: same parameters, same code.
    Its column selection is a slice, so it transforms its (scratch) input in place instead of copying."""
    shim = copy.copy(pre)
    shim.feature_names_in = list(pre.kept_features)
    shim.kept_index_ = slice(None)
    return shim


class _Transformed:
    """Stands in for the preprocessor when rows are already transformed (they are transformed once, for
    both the network and the shift statistics), so `Model.predict_output` does the rest unchanged."""

    def transform(self, X, dtype=np.float64):
        return np.asarray(X, dtype=dtype)


# ── cohort shift ─────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class ShiftReport:
    """Per-feature comparison of a new table with the training rows, on the preprocessed scale.

    mean_shift = (new mean - training mean) / training SD; sd_ratio = new SD / training SD. Per feature:
    `mean_shifted` when |mean_shift| > SHIFT_MEAN_SD, `spread_shifted` (from SPREAD_MIN_SAMPLES rows) when
    sd_ratio is beyond SHIFT_SPREAD_RATIO either way, `mildly_shifted` (from MILD_MIN_SAMPLES rows) when
    |mean_shift| > SHIFT_MILD_SD. `level` is "shift" when more than SHIFT_FRACTION of the features are
    mean- or spread-shifted, "mild" when more than that share are mildly shifted, else "none" (or
    "unchecked" below SHIFT_MIN_SAMPLES rows). Features filled with --fill-missing are not judged.
    """

    features: list[str]
    n: int
    new_mean: np.ndarray  # (d,)
    new_sd: np.ndarray
    train_mean: np.ndarray
    train_sd: np.ndarray
    filled: np.ndarray  # (d,) bool

    @property
    def checked(self) -> bool:
        return self.n >= SHIFT_MIN_SAMPLES

    @property
    def mean_shift(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.filled, np.nan, (self.new_mean - self.train_mean) / np.maximum(self.train_sd, 1e-12))

    @property
    def sd_ratio(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.filled, np.nan, self.new_sd / np.maximum(self.train_sd, 1e-12))

    def _beyond(self, sd: float, min_n: int) -> np.ndarray:
        if self.n < min_n:
            return np.zeros(len(self.features), dtype=bool)
        return ~self.filled & (np.abs(np.nan_to_num(self.mean_shift)) > sd)

    @property
    def mean_shifted(self) -> np.ndarray:
        return self._beyond(SHIFT_MEAN_SD, SHIFT_MIN_SAMPLES)

    @property
    def mildly_shifted(self) -> np.ndarray:
        return self._beyond(SHIFT_MILD_SD, MILD_MIN_SAMPLES)

    @property
    def spread_shifted(self) -> np.ndarray:
        if self.n < SPREAD_MIN_SAMPLES:
            return np.zeros(len(self.features), dtype=bool)
        r = np.nan_to_num(self.sd_ratio, nan=1.0)
        return ~self.filled & ((r > SHIFT_SPREAD_RATIO) | (r < 1 / SHIFT_SPREAD_RATIO))

    def _fraction(self, flags: np.ndarray) -> float:
        judged = int((~self.filled).sum())
        return float(flags.sum() / judged) if judged else 0.0

    @property
    def fraction_mean_shifted(self) -> float:
        return self._fraction(self.mean_shifted)

    @property
    def fraction_mildly_shifted(self) -> float:
        return self._fraction(self.mildly_shifted)

    @property
    def fraction_spread_shifted(self) -> float:
        return self._fraction(self.spread_shifted)

    @property
    def level(self) -> str:
        if not self.checked:
            return "unchecked"
        if self.fraction_mean_shifted > SHIFT_FRACTION or self.fraction_spread_shifted > SHIFT_FRACTION:
            return "shift"
        if self.fraction_mildly_shifted > SHIFT_FRACTION:
            return "mild"
        return "none"

    @property
    def shifted(self) -> bool:
        """True when the table as a whole looks shifted (level "shift" or "mild")."""
        return self.level in ("shift", "mild")

    @property
    def score(self) -> np.ndarray:
        """max(|mean_shift| / SHIFT_MEAN_SD, |log sd_ratio| / log SHIFT_SPREAD_RATIO): above 1 means flagged."""
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.abs(np.nan_to_num(self.mean_shift)) / SHIFT_MEAN_SD
            if self.n >= SPREAD_MIN_SAMPLES:
                ratio = np.nan_to_num(self.sd_ratio, nan=1.0)
                spread = np.abs(np.log(np.clip(ratio, 1e-12, None))) / math.log(SHIFT_SPREAD_RATIO)
                s = np.maximum(s, spread)
        return np.where(self.filled, 0.0, s)

    @property
    def ranking(self) -> str:
        """How features are ranked as "most shifted": by `score` when spread is what shifted, else by mean."""
        return "score" if self.fraction_spread_shifted > SHIFT_FRACTION else "mean"

    def _key(self, by: str | None) -> np.ndarray:
        return self.score if (by or self.ranking) == "score" else np.abs(np.nan_to_num(self.mean_shift))

    def most_shifted(self, k: int = 10, by: str | None = None) -> list[dict]:
        """The k most shifted features: largest |mean_shift| (by="mean") or `score` (by="score"); by
        default as `ranking` says."""
        key = self._key(by)
        order = np.argsort(-key, kind="stable")[:k]
        ms, sr = self.mean_shift, self.sd_ratio
        return [{"feature": self.features[j], "mean_shift_sd": _num(ms[j]), "sd_ratio": _num(sr[j]),
                 "new_mean": _num(self.new_mean[j]), "train_mean": _num(self.train_mean[j])} for j in order]

    def to_frame(self) -> pd.DataFrame:
        """The per-feature table, most shifted first (see `ranking`)."""
        frame = pd.DataFrame({
            "feature": self.features, "new_mean": self.new_mean, "new_sd": self.new_sd, "train_mean": self.train_mean,
            "train_sd": self.train_sd, "mean_shift_sd": self.mean_shift, "sd_ratio": self.sd_ratio,
            "mean_shifted": self.mean_shifted, "spread_shifted": self.spread_shifted,
            "mildly_shifted": self.mildly_shifted, "filled": self.filled,
        })
        return frame.iloc[np.argsort(-self._key(None), kind="stable")].reset_index(drop=True)

    def summary(self, top: int = 10) -> dict:
        return {"n": self.n, "features": len(self.features), "level": self.level,
                "fraction_mean_shifted": self.fraction_mean_shifted,
                "fraction_mildly_shifted": self.fraction_mildly_shifted,
                "fraction_spread_shifted": self.fraction_spread_shifted,
                "thresholds": {"mean_shift_sd": SHIFT_MEAN_SD, "mild_shift_sd": SHIFT_MILD_SD,
                               "sd_ratio": SHIFT_SPREAD_RATIO, "fraction": SHIFT_FRACTION},
                "most_shifted": self.most_shifted(top) if self.checked else []}

    def message(self) -> str | None:
        """One line for the user: a warning text when `shifted`, else a note; None when unchecked."""
        d = int((~self.filled).sum())
        if not self.checked:
            return None
        if self.level == "none":
            return (f"cohort-shift check: {self.fraction_mean_shifted:.0%} of the {d} features shifted by more than "
                    f"{SHIFT_MEAN_SD:g} training SD, {self.fraction_mildly_shifted:.0%} by more than {SHIFT_MILD_SD:g} "
                    f"(warnings above {SHIFT_FRACTION:.0%})")
        parts = []
        if self.fraction_mean_shifted > SHIFT_FRACTION or self.level == "mild":
            sd = SHIFT_MEAN_SD if self.level == "shift" else SHIFT_MILD_SD
            frac = self.fraction_mean_shifted if self.level == "shift" else self.fraction_mildly_shifted
            parts.append(f"{frac:.0%} of the {d} features have a mean more than {sd:g} training SD from the "
                         "training mean")
        if self.fraction_spread_shifted > SHIFT_FRACTION:
            parts.append(f"{self.fraction_spread_shifted:.0%} have an SD over {SHIFT_SPREAD_RATIO:g}x larger or "
                         "smaller than in training")
        shown = ", ".join(f"{r['feature']} ({r['mean_shift_sd']:+.2g} SD, SD x{r['sd_ratio']:.2g})"
                          for r in self.most_shifted(SHIFT_SHOWN))
        if self.level == "shift":
            return (f"cohort shift: {' and '.join(parts)} (warning above {SHIFT_FRACTION:.0%}); most shifted: {shown}. "
                    "These samples differ from the training cohort (batch, protocol, population): check the "
                    "predictions before trusting them (--shift-report for every feature)")
        return (f"mild cohort shift: {' and '.join(parts)} (warning above {SHIFT_FRACTION:.0%}; "
                f"{self.fraction_mean_shifted:.0%} beyond {SHIFT_MEAN_SD:g} SD); most shifted: {shown}. Predictions "
                "may be less reliable than on the training cohort (--shift-report for every feature)")


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


class _ShiftStats:
    """Running per-feature count, sum and sum of squares of (Z - training mean), in float64."""

    def __init__(self, pre):
        self.ref = np.asarray(pre.train_mean_, dtype=np.float64)
        self.n = 0
        self.s1 = np.zeros_like(self.ref)
        self.s2 = np.zeros_like(self.ref)

    def update(self, Z: np.ndarray) -> None:
        ref = self.ref.astype(Z.dtype)
        for start in range(0, len(Z), _STAT_ROWS):
            D = Z[start:start + _STAT_ROWS] - ref  # (rows, d) in Z's precision
            ones = np.ones(len(D), dtype=D.dtype)
            self.s1 += ones @ D  # column sums by BLAS; at most _STAT_ROWS terms each, then added in float64
            D *= D
            self.s2 += ones @ D
        self.n += len(Z)

    def report(self, features: list[str], pre, filled: np.ndarray) -> ShiftReport:
        n = max(self.n, 1)
        mean_d = self.s1 / n
        var = np.maximum(self.s2 / n - mean_d**2, 0.0)
        return ShiftReport(features=list(features), n=self.n, new_mean=self.ref + mean_d, new_sd=np.sqrt(var),
                           train_mean=self.ref.copy(), train_sd=np.asarray(pre.train_sd_, dtype=np.float64).copy(),
                           filled=np.asarray(filled, dtype=bool).copy())


def shift_report(model: Model, X: np.ndarray) -> ShiftReport:
    """The shift report for raw rows X (n, d_in) in `model.feature_names` order (as `predict_output` takes)."""
    pre = model.preprocessor
    stats = _ShiftStats(pre)
    for start in range(0, len(X), DEFAULT_CHUNKSIZE):
        stats.update(pre.transform(X[start:start + DEFAULT_CHUNKSIZE]))
    return stats.report(pre.kept_features, pre, np.zeros(len(pre.kept_features), dtype=bool))


# ── the streaming core ───────────────────────────────────────────────────────────────────────────────────


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


class _InputRows:
    """Network inputs waiting for the network, in one buffer reused for every chunk (fresh memory per
    chunk costs a page fault per 4 KiB, which on some machines is a third of the run time).

    A chunk's rows are written after the pending ones (`append`); `blocks` hands out views of whole
    blocks of `block` rows, counted from the table's first row (see FORWARD_ROWS), and moves the
    remainder to the front once the caller has used them.
    """

    def __init__(self, block: int, width: int, dtype, chunksize: int):
        self.block, self.width, self.dtype = block, width, np.dtype(dtype)
        self.capacity = chunksize + block - 1  # a full chunk after the most rows that can be pending
        self.buf = np.empty((0, width), dtype=self.dtype, order="F")  # column-major like the parsed values
        self.n = 0
        self.meta: list[dict] = []  # per appended chunk, its rows' columns (ids, batches, ...)

    def append(self, k: int, meta: dict) -> np.ndarray:
        """A (k, width) view to fill with the next k rows."""
        if self.n + k > len(self.buf):  # grows once: straight to full capacity unless the table is short
            full_chunk = k + self.block - 1 >= self.capacity  # more chunks are likely to follow
            grown = np.empty((max(self.capacity if full_chunk else 0, self.n + k), self.width), dtype=self.dtype,
                             order="F")
            grown[:self.n] = self.buf[:self.n]
            self.buf = grown
        self.meta.append(meta)
        self.n += k
        return self.buf[self.n - k:self.n]

    def blocks(self, final: bool = False) -> Iterator[tuple[np.ndarray, dict]]:
        start = 0
        while self.n - start >= self.block or (final and self.n > start):
            m = min(self.block, self.n - start)
            yield self.buf[start:start + m], self._take_meta(m)
            start += m
        if start:
            rest = self.n - start
            self.buf[:rest] = self.buf[start:self.n]  # numpy copies through a temporary if they overlap
            self.n = rest

    def _take_meta(self, m: int) -> dict:
        taken, got = [], 0
        while got < m:
            meta = self.meta[0]
            k = len(next(iter(meta.values())))
            if got + k <= m:
                taken.append(self.meta.pop(0))
                got += k
            else:
                cut = m - got
                taken.append({key: v[:cut] for key, v in meta.items()})
                self.meta[0] = {key: v[cut:] for key, v in meta.items()}
                got = m
        if len(taken) == 1:
            return taken[0]
        return {key: np.concatenate([t[key] for t in taken]) for key in taken[0]}


class _Run:
    """One pass over a table with a model: rows in, (outputs, per-row columns) blocks out."""

    def __init__(self, model: Model, source, *, roles: RoleFlags | None, need_target: bool, by: str | None,
                 fill_missing: str | None, chunksize: int, stdin, progress: Callable[[dict], None] | None):
        if not isinstance(chunksize, (int, np.integer)) or chunksize < 1:
            raise ConfigError(f"--chunksize must be a positive whole number, got {chunksize!r}")
        self.model, self.chunksize, self.progress, self.need_target = model, int(chunksize), progress, need_target
        roles = roles or RoleFlags()
        self.table = open_table(source, features_in_rows=roles.features_in_rows, stdin=stdin)
        try:
            self.plan = plan_columns(model, self.table.columns, roles, need_target=need_target, by=by,
                                     fill_missing=fill_missing, source=self.table.name)
        except BaseException:
            self.table.close()
            raise
        if roles.features_in_rows:
            self.plan.notes.append("--features-in-rows: the table was read whole (the transposed layout cannot "
                                   "be streamed)")
        self.notes, self.warnings = list(self.plan.notes), list(self.plan.warnings)
        self.pre = _kept_only(model.preprocessor)
        self.net_model = dataclasses.replace(model, preprocessor=_Transformed())
        self.stats = _ShiftStats(model.preprocessor)
        self.n_rows = 0
        self.batch_counts: Counter = Counter()
        self.n_missing_values = 0
        self.shift: ShiftReport | None = None
        self._started = False
        self._rows: np.ndarray | None = None  # raw feature values of up to _STAT_ROWS rows, reused

    def _convert(self, frame, first_row: int) -> tuple[np.ndarray, dict]:
        """A parsed piece as (raw feature values (n, d_present) float64, per-row columns). Runs in the
        reading threads, so it only reads `self`."""
        plan = self.plan
        if not isinstance(frame, pd.DataFrame):
            return self._convert_arrow(frame, first_row)
        meta: dict[str, np.ndarray] = {}
        if plan.roles.id:
            meta["id"] = frame[plan.roles.id].to_numpy(dtype=object)
        if plan.roles.batch:
            meta["batch"] = _label_keys(frame[plan.roles.batch].to_numpy(dtype=object))
        if plan.roles.group:
            meta["group"] = _label_keys(frame[plan.roles.group].to_numpy(dtype=object))
        if plan.by:
            meta["by"] = _label_keys(frame[plan.by].to_numpy(dtype=object))
        if self.need_target:
            meta["y"] = _encode_target(frame, plan.roles.target, self.model)
        meta["first_row"] = np.full(len(frame), first_row, dtype=np.int64)  # for messages; dropped below
        return _present_values(plan, frame, first_row, meta.get("id")), meta

    def _convert_arrow(self, table, first_row: int) -> tuple[np.ndarray, dict]:
        """As `_convert`, for a pyarrow Table parsed with float64 features and text labels."""
        plan = self.plan
        index = {c: i for i, c in enumerate(table.column_names)}

        def column(name):
            return table.column(index[name]).to_numpy(zero_copy_only=False)

        meta: dict[str, np.ndarray] = {}
        if plan.roles.id:
            meta["id"] = column(plan.roles.id)
        for key, name in (("batch", plan.roles.batch), ("group", plan.roles.group), ("by", plan.by)):
            if name:
                meta[key] = _label_keys(column(name))
        if self.need_target:
            targets = plan.roles.target
            meta["y"] = _encode_target(pd.DataFrame({t: table.column(index[t]).to_pandas() for t in targets}),
                                       targets, self.model)
        meta["first_row"] = np.full(table.num_rows, first_row, dtype=np.int64)
        # the feature columns as they are (copied into rows by `_transform`, in the caller's thread)
        return [column(c) for c in plan.present_names], meta

    def _transform(self, values, ids: np.ndarray | None, first_row: int, Z: np.ndarray) -> None:
        """Write a piece's rows, as the network's inputs, into Z (n, d_kept), _STAT_ROWS rows at a time so
        the preprocessing's temporaries stay small. `values` (an (n, d_present) array, or a list of the
        d_present columns) is copied slice by slice into a reused buffer, which is transformed in place."""
        pre = self.model.preprocessor
        n = len(Z)
        for s in range(0, n, _STAT_ROWS):
            e = min(s + _STAT_ROWS, n)
            width = len(values) if isinstance(values, list) else values.shape[1]
            if self._rows is None or self._rows.shape[0] < e - s:
                self._rows = np.empty((min(_STAT_ROWS, max(n, 1)), width), order="F")
            rows = self._rows[:e - s]  # a copy: the values may be a view of the caller's DataFrame
            if isinstance(values, list):
                for j, column in enumerate(values):  # contiguous copies: the buffer is column-major
                    rows[:, j] = column[s:e]
            else:
                rows[...] = values[s:e]
            X = _complete(self.plan, rows, first_row + s, pre, None if ids is None else ids[s:e])
            if pre.config.impute is not None:
                self.n_missing_values += int(np.isnan(X).sum())
            Z[s:e] = self.pre.transform(X)  # float64, in place in X; cast to the network's dtype on assignment
            self.stats.update(Z[s:e])

    def blocks(self) -> Iterator[tuple[np.ndarray, dict]]:
        """(outputs (m, n_outputs) float64 as `Model.predict_output` gives them, per-row columns) blocks."""
        if self._started:
            raise RuntimeError("a prediction stream can be iterated once")
        self._started = True
        piece = _piece_rows(self.chunksize) if isinstance(self.table, _TextTable) else self.chunksize
        rows = _InputRows(FORWARD_ROWS, len(self.plan.features), self.model.network.dtype, piece)
        plan, table = self.plan, self.table
        try:
            for values, meta in table.pieces(self.chunksize, plan, self._convert):
                n = len(meta["first_row"])
                first_row = int(meta.pop("first_row")[0])
                meta["row"] = np.arange(self.n_rows + 1, self.n_rows + n + 1, dtype=np.int64)
                if "batch" in meta:
                    self.batch_counts.update(meta["batch"].tolist())
                self._transform(values, meta.get("id"), first_row, rows.append(n, meta))
                del values
                self.n_rows += n
                for Z, block_meta in rows.blocks():
                    yield self.net_model.predict_output(Z, batch_size=FORWARD_ROWS), block_meta
                if self.progress is not None:
                    self.progress({"stage": "read", "rows": self.n_rows, "bytes": table.bytes_read,
                                   "total_bytes": table.total_bytes})
            for Z, block_meta in rows.blocks(final=True):
                yield self.net_model.predict_output(Z, batch_size=FORWARD_ROWS), block_meta
        finally:
            table.close()
        if self.n_rows == 0:
            raise DataError(f"{table.name} has a header but no data rows")
        self._finish()

    def _finish(self) -> None:
        model, plan = self.model, self.plan
        self.shift = self.stats.report(plan.features, model.preprocessor, ~plan.present)
        message = self.shift.message()
        if message is None:
            self.notes.append(f"cohort-shift check skipped: {self.n_rows} rows (it needs {SHIFT_MIN_SAMPLES})")
        elif self.shift.shifted:
            self.warnings.append(message)
        else:
            self.notes.append(message)
        trained = (model.split or {}).get("batch_counts_train") or {}
        if self.batch_counts and trained:
            unseen = [(b, k) for b, k in sorted(self.batch_counts.items()) if b not in trained]
            if unseen:
                listed = ", ".join(f"{b!r} ({k} samples)" for b, k in unseen[:5])
                self.warnings.append(f"batch{'es' * (len(unseen) > 1)} {listed} not seen in training (trained on "
                                     f"{_quoted(sorted(trained), 8)}); batch effects may shift predictions")
        if self.n_missing_values:
            self.notes.append(f"{self.n_missing_values} missing feature values imputed with the training "
                              f"{model.preprocessor.config.impute}s")


def _encode_target(frame: pd.DataFrame, targets: list[str], model: Model) -> np.ndarray:
    """y for the rows of `frame` in the model's encoding (class indices, or 0/1 or value columns); labels
    the model does not know are a DataError naming them. Uses Dataset.from_frame, which needs a feature
    column, hence the placeholder."""
    sub = frame[targets].copy()
    sub["__mlpcli_placeholder__"] = 0.0
    ds = data.Dataset.from_frame(sub, data.Roles(target=list(targets)), task=model.task, classes=model.classes)
    return ds.y


def _task_proba(task: str, out: np.ndarray) -> np.ndarray:
    """What metrics.compute takes: binary models with a 2-column softmax (--loss ce) give P(positive)."""
    if task == "binary" and out.shape[1] == 2:
        return out[:, 1:2]
    return out


# ── predict ──────────────────────────────────────────────────────────────────────────────────────────────


class PredictionStream:
    """Prediction frames for a table, block by block (at most FORWARD_ROWS rows each); iterate once.

    Columns: the id column when the table has one (else `row`, 1-based), then
      binary / multiclass: `pred_<target>` (the label; binary uses `threshold` on P(positive class)) and
                           `prob_<class>` per class;
      multi-label:         `pred_<label>` (0/1, `threshold` on each probability) and `prob_<label>` per label;
      regression:          `pred_<target>` per target.
    `notes` and `warnings` are filled as soon as the header is read; `shift`, `n_rows` and `counts`
    (predicted labels, or positives per label) after the last frame.
    """

    def __init__(self, run: _Run, threshold: float):
        self._run, self.threshold = run, threshold
        model = run.model
        self.model = model
        self.id_column = run.plan.roles.id or "row"
        self.counts: Counter = Counter()
        target = (model.target_names or ["label"])[0]
        if model.task in data.CLASSIFICATION_TASKS:
            self.label_column = f"pred_{target}"
            self.columns = [self.id_column, self.label_column, *[f"prob_{c}" for c in model.classes]]
        elif model.task == "multilabel":
            self.columns = [self.id_column, *[f"pred_{c}" for c in model.classes], *[f"prob_{c}" for c in model.classes]]
        else:
            self.columns = [self.id_column, *[f"pred_{c}" for c in model.classes]]
        # Outputs are given in the network's precision (float32: ~7 significant digits, written in the
        # shortest form that reads back to the same float32).
        self.dtype = np.dtype(model.network.dtype)

    notes = property(lambda self: self._run.notes)
    warnings = property(lambda self: self._run.warnings)
    shift = property(lambda self: self._run.shift)
    n_rows = property(lambda self: self._run.n_rows)
    plan = property(lambda self: self._run.plan)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        for out, meta in self._run.blocks():
            yield self._frame(out, meta)

    def _frame(self, out: np.ndarray, meta: dict) -> pd.DataFrame:
        model, task = self.model, self.model.task
        decide, out = out, out.astype(self.dtype, copy=False)  # decisions on the float64 values, as evaluate
        cols: dict[str, Any] = {self.id_column: meta["id"] if "id" in meta else meta["row"]}
        classes = np.asarray(model.classes, dtype=object)
        if task == "binary":
            p = out[:, -1]  # P(positive class): the sigmoid output, or the second softmax column
            probs = out if out.shape[1] == 2 else np.column_stack([1 - p, p])
            labels = classes[(decide[:, -1] >= self.threshold).astype(np.int64)]
            cols[self.label_column] = labels
            for k, c in enumerate(model.classes):
                cols[f"prob_{c}"] = probs[:, k]
            self.counts.update(labels.tolist())
        elif task == "multiclass":
            labels = classes[out.argmax(axis=1)]
            cols[self.label_column] = labels
            for k, c in enumerate(model.classes):
                cols[f"prob_{c}"] = out[:, k]
            self.counts.update(labels.tolist())
        elif task == "multilabel":
            pred = (decide >= self.threshold).astype(np.int64)
            for k, c in enumerate(model.classes):
                cols[f"pred_{c}"] = pred[:, k]
                self.counts[str(c)] += int(pred[:, k].sum())
            for k, c in enumerate(model.classes):
                cols[f"prob_{c}"] = out[:, k]
        else:
            for k, c in enumerate(model.classes):
                cols[f"pred_{c}"] = out[:, k]
        return pd.DataFrame(cols, columns=self.columns)

    def summary(self) -> dict:
        """JSON-able: rows, columns, predicted label counts, shift summary, notes and warnings."""
        return {"rows": self.n_rows, "task": self.model.task, "columns": self.columns,
                "threshold": self.threshold if self.model.task in ("binary", "multilabel") else None,
                "predicted_counts": {str(k): int(v) for k, v in sorted(self.counts.items(), key=lambda kv: str(kv[0]))},
                "shift": self.shift.summary() if self.shift is not None else None,
                "notes": list(self.notes), "warnings": list(self.warnings)}


def _check_threshold(model: Model, threshold: float | None) -> float:
    if threshold is None:
        return 0.5
    if model.task not in ("binary", "multilabel"):
        raise ConfigError(f"--threshold applies to binary and multi-label models; this model is {model.task}")
    if not (0.0 <= threshold <= 1.0) or isinstance(threshold, bool):
        raise ConfigError(f"--threshold must be a probability between 0 and 1, got {threshold!r}")
    return float(threshold)


def predict_stream(model: Model, source, *, chunksize: int = DEFAULT_CHUNKSIZE, threshold: float | None = None,
                   fill_missing: str | None = None, roles: RoleFlags | None = None, stdin=None,
                   progress: Callable[[dict], None] | None = None) -> PredictionStream:
    """Predictions for the table `source` (path, "-" or DataFrame), read `chunksize` rows at a time.

    Memory stays at about one chunk of features however long the table; iterate the result once for the
    output frames (see PredictionStream for the columns). `threshold` (binary, multi-label) defaults to 0.5.
    """
    threshold = _check_threshold(model, threshold)
    run = _Run(model, source, roles=roles, need_target=False, by=None, fill_missing=fill_missing,
               chunksize=chunksize, stdin=stdin, progress=progress)
    return PredictionStream(run, threshold)


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


# ── prepare (notebooks) ──────────────────────────────────────────────────────────────────────────────────


@dataclass
class Prepared:
    """A table's rows ready for `model.predict_output(X)`."""

    X: np.ndarray  # (n, d_in) float64 in model.feature_names order; features the network ignores are NaN
    ids: np.ndarray  # (n,) the id column's values, or 1-based row numbers
    notes: list[str]
    warnings: list[str]

    def __iter__(self):  # X, ids, notes, warnings = prepare(...)
        return iter((self.X, self.ids, self.notes, self.warnings))


def prepare(model: Model, frame, fill_missing: str | None = None, roles: RoleFlags | None = None) -> Prepared:
    """Match a table (DataFrame or path) to the model by feature name, with the checks of predict."""
    table = frame if isinstance(frame, pd.DataFrame) else data.read_table(
        frame, features_in_rows=bool(roles and roles.features_in_rows))
    plan = plan_columns(model, table.columns, roles, fill_missing=fill_missing)
    ids = table[plan.roles.id].to_numpy(dtype=object) if plan.roles.id else np.arange(1, len(table) + 1)
    row_ids = ids if plan.roles.id else None
    X_kept = _complete(plan, _present_values(plan, table.rename(columns=str), 0, row_ids), 0, model.preprocessor,
                       row_ids)
    X = np.full((len(table), model.preprocessor.n_features_in), np.nan)
    X[:, model.preprocessor.kept_index_] = X_kept
    return Prepared(X=X, ids=ids, notes=plan.notes, warnings=plan.warnings)


# ── evaluate ─────────────────────────────────────────────────────────────────────────────────────────────

_MAIN_KEYS = {
    "binary": ["accuracy", "balanced_accuracy", "f1", "roc_auc", "mcc", "log_loss"],
    "multiclass": ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr", "log_loss"],
    "multilabel": ["balanced_accuracy", "f1_micro", "f1_macro", "hamming_loss"],
    "regression": ["rmse", "mae", "r2", "pearson_r"],
}
_NOT_CI = ("n", "threshold")


def _scalars(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in _NOT_CI and (v is None or isinstance(v, (int, float)))
            and not isinstance(v, bool)}


def main_metric(task: str, y: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> float | None:
    """The task's main metric (metrics.MAIN_METRIC) alone, as metrics.compute defines it; fast enough to
    bootstrap per group. proba as metrics.compute takes it."""
    from sklearn.metrics import balanced_accuracy_score

    def bacc(a, b):
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            return float(balanced_accuracy_score(a, b))

    if len(y) == 0:
        return None
    if task == "binary":
        return bacc(y.reshape(-1).astype(int), (proba.reshape(-1) >= threshold).astype(int))
    if task == "multiclass":
        return bacc(y.reshape(-1).astype(int), proba.argmax(axis=1))
    if task == "multilabel":
        Y, pred = y.reshape(proba.shape).astype(int), (proba >= threshold).astype(int)
        return float(np.mean([bacc(Y[:, j], pred[:, j]) for j in range(Y.shape[1])]))
    return float(np.sqrt(np.mean((y.reshape(proba.shape) - proba) ** 2)))


@dataclass
class EvaluationResult:
    """Metrics of a model on a labelled table, optionally per group and with bootstrap CIs."""

    task: str
    n: int
    classes: list
    metrics: dict  # metrics.compute's set for the task
    main_metric: str
    threshold: float | None
    ci: dict = field(default_factory=dict)  # metric -> [low, high] (95 % percentile bootstrap)
    bootstrap: dict | None = None  # {"resamples", "unit", "n_units", "seed"}
    by: str | None = None
    groups: list[dict] = field(default_factory=list)  # per --by value: value, n, metrics, ci, flagged
    shift: ShiftReport | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"task": self.task, "n": self.n, "classes": [str(c) for c in self.classes],
                "threshold": self.threshold, "main_metric": self.main_metric, "metrics": self.metrics,
                "ci": self.ci, "bootstrap": self.bootstrap, "by": self.by, "groups": self.groups,
                "shift": self.shift.summary() if self.shift is not None else None,
                "notes": self.notes, "warnings": self.warnings}


@dataclass
class _Units:
    """Resampling units (patients; rows without groups) as one ragged array: unit u holds the rows
    order[starts[u]:starts[u] + sizes[u]]."""

    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, groups: np.ndarray | None, idx: np.ndarray) -> "_Units":
        if groups is None:
            return cls(order=idx, starts=np.arange(len(idx)), sizes=np.ones(len(idx), dtype=np.int64))
        keys, inverse = np.unique(groups[idx], return_inverse=True)
        order = idx[np.argsort(inverse, kind="stable")]
        sizes = np.bincount(inverse, minlength=len(keys))
        return cls(order=order, starts=np.cumsum(sizes) - sizes, sizes=sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def rows(self, pick: np.ndarray) -> np.ndarray:
        """The rows of the units `pick` (with repeats), without a Python loop over units."""
        lengths = self.sizes[pick]
        block_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.order[np.repeat(self.starts[pick], lengths) + np.arange(lengths.sum()) - block_start]


def _bootstrap_batch(task, y, proba, classes, threshold, units: _Units, picks: np.ndarray) -> list[dict]:
    """Scalar metrics of the resamples `picks` (resamples, n_units); runs in a worker process."""
    from . import metrics

    return [_scalars(metrics.compute(task, y[rows], proba[rows], classes, threshold))
            for rows in (units.rows(pick) for pick in picks)]


def _bootstrap(task, y, proba, classes, threshold, units: _Units, picks: np.ndarray, n_jobs: int,
               progress: Callable[[dict], None] | None) -> list[dict]:
    """metrics.compute on every resample: scikit-learn's checks make one call take ~30 ms, so a thousand
    resamples are spread over `n_jobs` processes. The resamples are drawn beforehand, so the result does
    not depend on n_jobs."""
    n_batches = 4 * n_jobs if n_jobs > 1 else max(1, len(picks) // 10)  # serial: progress every 10 resamples
    batches = np.array_split(picks, min(len(picks), n_batches))
    done, out = 0, []
    if n_jobs > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_bootstrap_batch)(task, y, proba, classes, threshold, units, batch) for batch in batches)
    else:
        results = (_bootstrap_batch(task, y, proba, classes, threshold, units, batch) for batch in batches)
    for batch_result in results:
        out.extend(batch_result)
        done += len(batch_result)
        if progress is not None:
            progress({"stage": "bootstrap", "done": done, "total": len(picks)})
    return out


def _percentile_ci(values: list, resamples: int) -> list | None:
    ok = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(ok) < _BOOTSTRAP_MIN_VALID * resamples or len(ok) == 0:
        return None
    lo, hi = np.percentile(ok, [2.5, 97.5])
    return [float(lo), float(hi)]


def evaluate(model: Model, source, *, threshold: float | None = None, by: str | None = None, bootstrap: int = 0,
             seed: int = 0, fill_missing: str | None = None, roles: RoleFlags | None = None,
             chunksize: int = DEFAULT_CHUNKSIZE, stdin=None, n_jobs: int | None = None,
             progress: Callable[[dict], None] | None = None) -> EvaluationResult:
    """Metrics of `model` on the labelled table `source` (path, "-" or DataFrame).

    The table is read like predict's (features by name, chunks, the shift check); labels are mapped to the
    model's classes (an unknown label is an error). `by` repeats the main metrics per value of a column;
    `bootstrap` resamples (patients when the table has a group column, else rows), seeded by `seed`, give
    95 % percentile intervals for every scalar metric and for each group's main metric (the resamples run
    in `n_jobs` processes; default: the usable cores, up to 4, from 200 resamples on).
    """
    from . import metrics  # sklearn: only evaluation needs it (predict stays light to start)

    threshold = _check_threshold(model, threshold)
    if not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise ConfigError(f"--bootstrap must be a whole number >= 0, got {bootstrap!r}")
    run = _Run(model, source, roles=roles, need_target=True, by=by, fill_missing=fill_missing, chunksize=chunksize,
               stdin=stdin, progress=progress)
    outs, metas = [], []
    for out, meta in run.blocks():  # kept: outputs and the columns metrics need (not ids), O(n x classes)
        outs.append(out)
        metas.append({k: v for k, v in meta.items() if k in ("y", "group", "by")})
    out = np.concatenate(outs)
    meta = {k: np.concatenate([m[k] for m in metas]) for k in metas[0]}
    task, classes = model.task, list(model.classes)
    proba, y = _task_proba(task, out), meta["y"]
    main = metrics.main_metric_name(task)
    overall = metrics.compute(task, y, proba, classes, threshold)
    result = EvaluationResult(task=task, n=len(y), classes=classes, metrics=overall, main_metric=main,
                              threshold=threshold if task in ("binary", "multilabel") else None, by=by,
                              shift=run.shift, notes=run.notes, warnings=run.warnings)
    groups = meta.get("group")
    rng = np.random.default_rng(seed)
    if bootstrap:
        unit_name = f"{run.plan.roles.group} groups" if groups is not None else "rows"
        units = _Units.of(groups, np.arange(len(y)))
        result.bootstrap = {"resamples": int(bootstrap), "unit": unit_name, "n_units": len(units), "seed": seed}
        picks = rng.integers(0, len(units), size=(bootstrap, len(units)))  # (resamples, units)
        jobs = n_jobs if n_jobs is not None else (_read_workers() if bootstrap >= _PARALLEL_BOOTSTRAP else 1)
        draws = _bootstrap(task, y, proba, classes, threshold, units, picks, max(1, int(jobs)), progress)
        result.ci = {k: _percentile_ci([d.get(k) for d in draws], bootstrap) for k in _scalars(overall)}
        result.notes.append(f"bootstrap: {bootstrap} resamples of {len(units)} {unit_name} (seed {seed}); "
                            "95 % percentile intervals")
    if by is not None:
        result.groups = _by_groups(task, y, proba, classes, threshold, meta["by"], groups, overall, main, bootstrap,
                                   rng, by, result.warnings)
    return result


def _natural(text: str) -> list:
    """Sort key putting B2 before B10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _by_groups(task, y, proba, classes, threshold, values, groups, overall, main, bootstrap, rng, by, warns):
    from . import metrics

    keys = _MAIN_KEYS[task]
    out = []
    ref = overall.get(main)
    for value in sorted(set(values.tolist()), key=_natural):
        idx = np.flatnonzero(values == value)
        m = metrics.compute(task, y[idx], proba[idx], classes, threshold)
        row = {"value": value, "n": int(len(idx)), "metrics": {k: m.get(k) for k in keys}}
        score = m.get(main)
        if score is None or ref is None:
            flagged = False
        elif main == "rmse":
            flagged = score > BY_WORSE_RMSE_RATIO * ref
        else:
            flagged = score < ref - BY_WORSE_SCORE
        row["flagged"] = bool(flagged)
        if bootstrap:
            units = _Units.of(groups, idx)
            picks = rng.integers(0, len(units), size=(bootstrap, len(units)))
            draws = [main_metric(task, y[rows], proba[rows], threshold) for rows in map(units.rows, picks)]
            row["ci"] = {main: _percentile_ci(draws, bootstrap)}
        if flagged:
            warns.append(f"--by {by}: {value!r} ({len(idx)} samples) scores {main.replace('_', ' ')} {score:.3g} against "
                         f"{ref:.3g} overall")
        out.append(row)
    return out
