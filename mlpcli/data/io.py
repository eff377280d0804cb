"""Reading tables: csv/tsv/txt (optionally compressed), parquet, standard input, and the
features x samples layout; duplicate headers and malformed files are one-line DataErrors."""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import lzma
import os
import sys
import zipfile
from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ._common import DEFAULT_ID, SUPPORTED_FORMATS, _COMPRESSIONS, _TEXT_SEPARATORS

# ── reading tables ───────────────────────────────────────────────────────────────────────────────────────


def read_table(path: str | os.PathLike, features_in_rows: bool = False, *, stdin=None) -> pd.DataFrame:
    """Read a samples × features table (or, with `features_in_rows`, a features × samples one).

    Format by extension: .csv, .tsv/.txt (tab), each optionally .gz/.bz2/.xz/.zip, and .parquet; "-" reads
    CSV or TSV (sniffed from the first line; gzip detected by its magic bytes) from `stdin`
    (default `sys.stdin.buffer`). Returns a DataFrame (n_samples, n_columns) with string column names; the
    transposed layout gets a leading `sample_id` column taken from its header.
    """
    if str(path) == "-":
        data = _stdin_bytes(stdin)
        first_line = data.split(b"\n", 1)[0]
        sep = "\t" if first_line.count(b"\t") > first_line.count(b",") else ","
        return _read_text(lambda: io.BytesIO(data), sep, None, "standard input", features_in_rows)
    path = os.fspath(path)
    _check_file(path)
    kind, sep, compression = _table_format(path)
    if kind == "parquet":
        return _read_parquet(path, features_in_rows)
    return _read_text(lambda: path, sep, compression, path, features_in_rows)


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise DataError(f"table file not found: {path}")
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory; give a table file ({SUPPORTED_FORMATS})")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path} is empty; expected a header line and data rows")


def _table_format(path: str) -> tuple[str, str | None, str | None]:
    """(kind, separator, compression) from the file name; kind is "text" or "parquet"."""
    name = os.path.basename(path).lower()
    root, ext = os.path.splitext(name)
    compression = _COMPRESSIONS.get(ext)
    if compression is not None:
        root, ext = os.path.splitext(root)
    if ext == ".parquet" and compression is None:
        return "parquet", None, None
    if ext in _TEXT_SEPARATORS:
        return "text", _TEXT_SEPARATORS[ext], compression
    raise DataError(f"unsupported table format {os.path.basename(path)!r}; use {SUPPORTED_FORMATS}")


def _stdin_bytes(stdin) -> bytes:
    stream = stdin if stdin is not None else sys.stdin.buffer
    data = stream.read()
    if isinstance(data, str):  # a text stream was passed instead of a binary one
        data = data.encode("utf-8")
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataError(f"cannot decompress gzip data on standard input: {_short_reason(exc)}") from None
    if not data.strip():
        raise DataError("standard input is empty; pipe a CSV or TSV table into '-'")
    return data


def _short_reason(exc: BaseException) -> str:
    """First line of an exception's message, without pandas' tokenizer prefix, at most 160 characters."""
    text = str(exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    text = text.replace("Error tokenizing data. C error: ", "")
    return text if len(text) <= 160 else text[:157] + "..."


# What the text and parquet readers raise on a malformed or truncated file (not on a missing one).
_PARSE_ERRORS = (
    pd.errors.ParserError,
    ValueError,  # includes UnicodeDecodeError and pyarrow's ArrowInvalid
    OSError,  # includes gzip.BadGzipFile
    EOFError,  # truncated compressed stream
    zipfile.BadZipFile,
    lzma.LZMAError,
)


def _read_text(
    opener: Callable[[], Any], sep: str, compression: str | None, source: str, features_in_rows: bool
) -> pd.DataFrame:
    """Parse a delimited table; `opener()` returns a fresh path or buffer for each pass over it."""
    fmt = "TSV" if sep == "\t" else "CSV"
    try:
        # pandas silently renames a repeated column to "x.1", so read the header line on its own first.
        header = _header_cells(opener(), sep, compression)
        if not header:
            raise DataError(f"{source} has an empty first line; expected a header line and data rows")
        other = "," if sep == "\t" else "\t"
        if len(header) == 1 and other in header[0]:
            # a one-column table is useless anyway; most likely the extension names the wrong separator
            raise DataError(
                f"{source} reads as a single column because it is {'comma' if other == ',' else 'tab'}-separated; "
                f"name it {'.csv' if other == ',' else '.tsv'} (.tsv/.txt are read as tab-separated, .csv as comma-separated)"
            )
        _check_unique_header(header, source, features_in_rows)
        if features_in_rows:
            return _read_feature_rows_text(opener, sep, compression, header, source)
        # low_memory=False: one dtype per column, and no DtypeWarning printed behind the CLI's back.
        frame = pd.read_csv(opener(), sep=sep, compression=compression, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{source} is empty; expected a header line and data rows") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot parse {source} as {fmt}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
                        f"position {exc.start}); save it as UTF-8") from None
    except _PARSE_ERRORS as exc:
        raise DataError(f"cannot parse {source} as {fmt}: {_short_reason(exc)}") from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas takes the first field as the index when rows have one field more than the header.
        raise DataError(
            f"{source}: data rows have one field more than the header (row names without a header cell, "
            "as R's write.table writes them); give the first column a name such as sample_id"
        )
    if frame.shape[0] == 0:
        raise DataError(f"{source} has a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _header_cells(src: Any, sep: str, compression: str | None) -> list[str]:
    """Cells of the first line of a path or binary buffer, decompressing as pandas would.

    Read with the csv module rather than pandas: a one-row read of a 60,000-column header costs pandas
    seconds, and pandas would rename repeated names.
    """
    with contextlib.ExitStack() as stack:
        if compression == "zip":
            archive = stack.enter_context(zipfile.ZipFile(src))
            members = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX/")]
            if len(members) != 1:
                raise ValueError(f"a .zip table must hold exactly one file, found {len(members)}")
            raw = stack.enter_context(archive.open(members[0]))
        elif compression is None:
            raw = stack.enter_context(open(src, "rb")) if isinstance(src, str) else src
        else:
            raw = stack.enter_context({"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression](src))
        text = stack.enter_context(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        return next(csv.reader(text, delimiter=sep), [])


def _read_parquet(path: str, features_in_rows: bool) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a declared dependency
        raise DataError("reading .parquet tables needs pyarrow; pip install pyarrow") from None
    try:
        names = [n for n in pq.read_schema(path).names if not n.startswith("__index_level_")]
        _check_unique_header(names, path, features_in_rows)
        frame = pd.read_parquet(path)
    except _PARSE_ERRORS as exc:
        raise DataError(f"cannot parse {path} as parquet: {_short_reason(exc)}") from None
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()  # a stored index (often the sample ids) becomes an ordinary column
    frame.columns = [str(c) for c in frame.columns]
    if frame.shape[0] == 0:
        raise DataError(f"{path} has a header but no {'feature' if features_in_rows else 'data'} rows")
    return _samples_from_feature_rows(frame, path) if features_in_rows else frame


def _check_unique_header(header: Sequence[Any], source: str, features_in_rows: bool) -> None:
    names = [str(h) for h in header]
    if features_in_rows:
        names = names[1:]  # the first header cell only labels the feature-name column
    repeats = [(name, k) for name, k in Counter(n for n in names if n != "").items() if k > 1]
    if repeats:
        listed = ", ".join(f"{name!r} (×{k})" for name, k in repeats[:5])
        more = f" and {len(repeats) - 5} more" if len(repeats) > 5 else ""
        if features_in_rows:
            raise DataError(f"duplicate sample ids in the header of {source}: {listed}{more}; sample ids must be unique")
        raise DataError(f"duplicate column names in {source}: {listed}{more}; rename or remove the repeated columns")


# The transposed (features × samples) layout. Rows whose every value parses as a number become numeric
# columns (int64 when all integral, else float64); the others (label, patient_id, batch, ...) stay text.


def _read_feature_rows_text(
    opener: Callable[[], Any], sep: str, compression: str | None, header: list[str], source: str
) -> pd.DataFrame:
    """Features × samples text table -> samples × features frame with `sample_id` first.

    A label row makes every sample column text, and parsing 60,000 × n cells from Python strings is slow.
    So: pass 1 reads the names and the first sample to find the text rows, pass 2 lets pandas' C parser read
    the numeric rows as floats, pass 3 reads the few text rows. If pass 2 still meets text (a row that looked
    numeric in the first sample), fall back to one generic pass.
    """
    sample_ids = header[1:]
    if not sample_ids:
        raise DataError(f"{source} has no sample columns; with --features-in-rows the first column holds "
                        "feature names and every other column is one sample")
    blank = [k + 2 for k, s in enumerate(sample_ids) if not s.strip()]
    if blank:
        raise DataError(f"{source}: header cell {blank[0]} is empty; every sample column needs its id there")

    def read(**kwargs) -> pd.DataFrame:
        return pd.read_csv(opener(), sep=sep, compression=compression, low_memory=False, **kwargs)

    first = read(usecols=[0, 1], dtype=str)
    if first.shape[0] == 0:
        raise DataError(f"{source} has a header but no feature rows")
    names = _check_feature_names(first.iloc[:, 0], source)
    cells = first.iloc[:, 1]
    is_text = (pd.to_numeric(cells, errors="coerce").isna() & cells.notna()).to_numpy()
    text_lines = set((np.flatnonzero(is_text) + 1).tolist())  # file line numbers; the header is line 0
    numeric = read(skiprows=sorted(text_lines), dtype={0: str}) if not is_text.all() else None
    text = read(skiprows=lambda i: i > 0 and i not in text_lines, dtype=str) if is_text.any() else None

    def rows_are(frame: pd.DataFrame | None, mask: np.ndarray) -> bool:
        expected = [n for n, m in zip(names, mask) if m]
        return frame is None and not expected or frame is not None and list(frame.iloc[:, 0]) == expected

    numeric_ok = numeric is None or all(pd.api.types.is_numeric_dtype(t) for t in numeric.dtypes.iloc[1:])
    if not (numeric_ok and rows_are(numeric, ~is_text) and rows_are(text, is_text)):
        return _samples_from_feature_rows(read(), source)
    numeric_values = (np.empty((0, len(sample_ids))) if numeric is None
                      else numeric.iloc[:, 1:].to_numpy(dtype=np.float64))  # (F_num, S)
    text_values = (np.empty((0, len(sample_ids)), dtype=object) if text is None
                   else text.iloc[:, 1:].to_numpy(dtype=object))  # (F_text, S)
    return _assemble_samples(sample_ids, names, is_text, numeric_values, text_values)


def _samples_from_feature_rows(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Generic transposition of an in-memory features × samples frame (parquet, or the text fallback)."""
    if raw.shape[1] < 2:
        raise DataError(f"{source} has no sample columns; with --features-in-rows the first column holds "
                        "feature names and every other column is one sample")
    if raw.shape[0] == 0:
        raise DataError(f"{source} has a header but no feature rows")
    names = _check_feature_names(raw.iloc[:, 0], source)
    body = raw.iloc[:, 1:]
    values, numeric_rows = _numeric_rows(body)  # (F, S) float64, (F,) bool
    is_text = ~numeric_rows
    text_values = body.iloc[np.flatnonzero(is_text)].to_numpy(dtype=object)
    return _assemble_samples([str(c) for c in body.columns], names, is_text, values[numeric_rows], text_values)


def _check_feature_names(column: pd.Series, source: str) -> list[str]:
    """The first column's names as strings; missing, repeated or reserved names are errors."""
    if column.isna().any():
        raise DataError(f"{source}: {int(column.isna().sum())} rows have no feature name in the first column")
    names = [str(v) for v in column]
    repeats = [(n, k) for n, k in Counter(names).items() if k > 1]
    if repeats:
        listed = ", ".join(f"{n!r} (×{k})" for n, k in repeats[:5])
        raise DataError(f"duplicate feature names in the first column of {source}: {listed}; names must be unique")
    if DEFAULT_ID in names:
        raise DataError(f"{source}: a row is named {DEFAULT_ID!r}, but --features-in-rows takes sample ids "
                        "from the header; rename or remove that row")
    return names


def _numeric_rows(body: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(values (F, S) float64 with NaN where not numeric, mask (F,) of rows that are entirely numeric)."""
    if all(pd.api.types.is_numeric_dtype(t) for t in body.dtypes):
        return body.to_numpy(dtype=np.float64), np.ones(body.shape[0], dtype=bool)
    cells = body.to_numpy(dtype=object)  # (F, S)
    values = np.asarray(pd.to_numeric(cells.ravel(), errors="coerce"), dtype=np.float64).reshape(cells.shape)
    present = ~pd.isna(cells)
    # A row is numeric when every present cell parsed: parsing added no NaN beyond the missing cells.
    numeric = np.all(np.isnan(values) == ~present, axis=1)
    return values, numeric


def _assemble_samples(
    sample_ids: list[str], names: list[str], is_text: np.ndarray, numeric_values: np.ndarray, text_values: np.ndarray
) -> pd.DataFrame:
    """Samples × features frame: `sample_id`, then one column per name in file order.

    numeric_values (F_num, S) float64 holds the rows where ~is_text, text_values (F_text, S) the others.
    """
    num_names = [n for n, t in zip(names, is_text) if not t]
    block = numeric_values.T  # (S, F_num)
    # Integral rows (counts, 0/1 labels, numeric patient ids) become int64, as read_csv would type them.
    integral = np.all(np.isfinite(block) & (block == np.round(block)) & (np.abs(block) < 2**53), axis=0)
    parts = [pd.DataFrame({DEFAULT_ID: [str(s) for s in sample_ids]})]
    if (~integral).any():
        parts.append(pd.DataFrame(block[:, ~integral], columns=[n for n, i in zip(num_names, integral) if not i]))
    if integral.any():
        parts.append(pd.DataFrame(block[:, integral].astype(np.int64), columns=[n for n, i in zip(num_names, integral) if i]))
    if is_text.any():
        text_names = [n for n, t in zip(names, is_text) if t]
        parts.append(pd.DataFrame(text_values.T, columns=text_names).infer_objects())
    return pd.concat(parts, axis=1)[[DEFAULT_ID, *names]]
