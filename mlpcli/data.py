"""Tables in, validated arrays out: reading, column roles, preprocessing, grouped splits, class weights.

    read_table ─▶ DataFrame ─resolve_roles─▶ Roles ─Dataset.from_frame─▶ Dataset(X, y, groups, ...)
    split(Dataset) ─▶ train / validation row indices (no group on both sides) + SplitSummary
    Preprocessor.fit(X[train]) ─▶ transform(any rows) with the training rows' parameters only

Everything a user can get wrong raises `DataError` / `ConfigError` with a one-line message that names the
column or flag and the fix. Nothing here prints: notes and warnings are returned as lists of strings for the
CLI to render.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import difflib
import gzip
import hashlib
import io
import lzma
import math
import os
import sys
import warnings
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, ModelFileError

TASKS = ("binary", "multiclass", "multilabel", "regression")
CLASSIFICATION_TASKS = ("binary", "multiclass")
IMPUTE_METHODS = ("median", "mean", "zero")

SUPPORTED_FORMATS = ".csv, .tsv, .txt (each optionally .gz, .bz2, .xz or .zip), .parquet, or '-' for standard input"
_TEXT_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}

# Defaults of the column roles (see design.md, "Conventions every command shares").
DEFAULT_TARGET = "label"
DEFAULT_GROUP = "patient_id"
DEFAULT_ID = "sample_id"
DEFAULT_BATCH = "batch"

# Task inference: a numeric target with more distinct values than both limits is taken as regression.
_REGRESSION_MIN_DISTINCT = 10
_REGRESSION_MIN_DISTINCT_FRACTION = 0.05
# A class with fewer training samples than this gets a warning (rare classes make noisy estimates).
_RARE_CLASS_SAMPLES = 5


class SplitLeakageError(RuntimeError):
    """Internal bug: a group ended up on both sides of a split. Never a user error, so not an MlpcliError."""


# ── small formatting helpers ─────────────────────────────────────────────────────────────────────────────


def _quoted(names: Iterable[Any], limit: int = 5) -> str:
    """"'a', 'b', 'c' and 4 more" — keeps messages one line however many names there are."""
    names = list(names)
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    rest = len(names) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def _counted(pairs: Sequence[tuple[Any, int]], limit: int = 5) -> str:
    """"'g1' (3), 'g2' (1) and 8 more" from (name, count) pairs."""
    shown = ", ".join(f"{str(name)!r} ({count})" for name, count in pairs[:limit])
    rest = len(pairs) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")


def _label_key(value: Any) -> str:
    """String form of a class label used for matching: 1, 1.0, np.int64(1) and "1" all give "1"."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plain(value: Any) -> Any:
    """numpy scalar -> Python scalar, integral float -> int, so labels are JSON-able and print nicely."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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


# ── column roles ─────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Roles:
    """Which columns play which role; every other column is a feature."""

    target: list[str]  # one name, or several for multi-label / multi-output regression
    group: str | None = None  # samples sharing a group (patient) never straddle a split
    id: str | None = None
    batch: str | None = None
    drop: list[str] = field(default_factory=list)

    def columns(self) -> list[str]:
        """All columns that are not features, in role order."""
        named = [*self.target, self.group, self.id, self.batch, *self.drop]
        return [c for c in named if c is not None]


def _names(value: str | Iterable[str] | None) -> list[str]:
    """'a, b' or ['a', 'b'] -> ['a', 'b'] (empty pieces ignored)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


def _missing_columns_error(missing: Sequence[str], columns: Sequence[str], flag: str) -> DataError:
    noun = "column" if len(missing) == 1 else "columns"
    hint = difflib.get_close_matches(missing[0], columns, n=1)
    did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
    return DataError(
        f"{flag} {noun} {_quoted(missing)} not found{did_you_mean}; available columns: "
        f"{_quoted(columns, 6)} ({len(columns)} in all)"
    )


def _require(names: Sequence[str], columns: Sequence[str], flag: str) -> None:
    present = set(columns)
    missing = [n for n in names if n not in present]
    if missing:
        raise _missing_columns_error(missing, list(columns), flag)


def resolve_roles(
    columns: Iterable[str],
    target: str | Sequence[str] | None = DEFAULT_TARGET,
    group: str | None = None,
    no_group: bool = False,
    id: str | None = None,  # noqa: A002 - the flag is --id
    batch: str | None = None,
    drop: str | Sequence[str] = (),
    require_target: bool = True,
) -> tuple[Roles, list[str]]:
    """Assign column roles from the flags and the defaults; returns (roles, notes saying what was picked).

    Defaults: group `patient_id` (unless `no_group`), id `sample_id`, batch `batch`, each when present and
    not already given another role. With `require_target=False` (prediction tables) absent target columns
    are simply left out.
    """
    columns = [str(c) for c in columns]
    present = set(columns)
    targets = _names(target)
    drops = _names(drop)
    for flag, names in (("--target", targets), ("--drop", drops)):
        repeated = [n for n, k in Counter(names).items() if k > 1]
        if repeated:
            raise ConfigError(f"{flag} names {_quoted(repeated)} more than once; list each column once")
    _require(drops, columns, "--drop")
    notes: list[str] = []

    if require_target:
        if not targets:
            raise ConfigError("--target is empty; name the label column (several comma-separated for multi-label)")
        _require(targets, columns, "--target")
        notes.append(f"target: {', '.join(targets)}")
    else:
        found = [t for t in targets if t in present]
        if found and len(found) != len(targets):
            raise _missing_columns_error([t for t in targets if t not in present], columns, "--target")
        if targets and not found:
            notes.append(f"target: none (no {_quoted(targets)} column; predictions only)")
        targets = found

    if group is not None and no_group:
        raise ConfigError("--group and --no-group contradict each other; pass one of them")
    explicit = {"--group": group, "--id": id, "--batch": batch}
    for flag, name in explicit.items():
        if name is not None:
            _require([name], columns, flag)

    taken = set(targets) | set(drops) | {n for n in explicit.values() if n is not None}

    def pick(flag: str, name: str | None, default: str, allowed: bool = True) -> str | None:
        if name is not None:
            notes.append(f"{flag.lstrip('-')}: {name}")
            return name
        if allowed and default in present and default not in taken:
            suffix = "; --no-group to switch off" if flag == "--group" else f"; {flag} to choose another"
            notes.append(f"{flag.lstrip('-')}: {default} (default{suffix})")
            return default
        return None

    group_col = pick("--group", group, DEFAULT_GROUP, allowed=not no_group)
    if group_col is None:
        notes.append(
            "group: none (--no-group)" if no_group else
            f"group: none (no {DEFAULT_GROUP!r} column); samples are treated as independent — pass --group "
            "COLUMN if several samples come from one patient"
        )
    id_col = pick("--id", id, DEFAULT_ID)
    batch_col = pick("--batch", batch, DEFAULT_BATCH)
    if drops:
        notes.append(f"dropped: {', '.join(drops)}")

    roles = Roles(target=targets, group=group_col, id=id_col, batch=batch_col, drop=drops)
    _check_one_role_each(roles)
    return roles, notes


def _check_one_role_each(roles: Roles) -> None:
    flags = [("--target", t) for t in roles.target] + [
        ("--group", roles.group), ("--id", roles.id), ("--batch", roles.batch)
    ] + [("--drop", d) for d in roles.drop]
    seen: dict[str, str] = {}
    for flag, name in flags:
        if name is None:
            continue
        if name in seen:
            raise ConfigError(f"column {name!r} is given two roles ({seen[name]} and {flag}); give each column one role")
        seen[name] = flag


# ── the validated dataset ────────────────────────────────────────────────────────────────────────────────


@dataclass
class Dataset:
    """Validated arrays for one table.

    X (n, d) float64, may hold NaN (the Preprocessor imputes). y is (n,) int64 indices into `classes` for
    binary/multiclass, (n, k) float64 0/1 for multilabel, (n, k) float64 for regression, None without target.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    task: str | None
    classes: list = field(default_factory=list)  # sorted labels, or target names for multilabel/regression
    groups: np.ndarray | None = None  # (n,) str
    batches: np.ndarray | None = None  # (n,) str
    ids: np.ndarray | None = None  # (n,) str
    target_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    roles: Roles | None = None  # the column names behind groups/batches/ids (for messages and summaries)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def subset(self, idx) -> "Dataset":
        """Rows `idx` (indices or boolean mask) as a new Dataset; notes and warnings are carried over."""
        idx = np.asarray(idx)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return Dataset(
            X=self.X[idx], y=take(self.y), feature_names=list(self.feature_names), task=self.task,
            classes=list(self.classes), groups=take(self.groups), batches=take(self.batches),
            ids=take(self.ids), target_names=list(self.target_names), notes=list(self.notes),
            warnings=list(self.warnings), roles=self.roles,
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame, roles: Roles, task: str = "auto", classes: Sequence | None = None) -> "Dataset":
        """Validate a table against its roles and build the arrays.

        `classes` (from a trained model) fixes the label -> index mapping at prediction/evaluation time; a
        label outside it is an error. Classification labels are sorted originals (strings or numbers).
        """
        if task != "auto" and task not in TASKS:
            raise ConfigError(f"--task {task!r} is not one of auto, {', '.join(TASKS)}")
        columns = [str(c) for c in df.columns]
        for flag, names in (("--target", roles.target), ("--group", [roles.group]), ("--id", [roles.id]),
                            ("--batch", [roles.batch]), ("--drop", roles.drop)):
            _require([n for n in names if n is not None], columns, flag)
        if len(df) == 0:
            raise DataError("the table has no rows")
        non_features = set(roles.columns())
        feature_names = [c for c in columns if c not in non_features]
        if not feature_names:
            raise DataError("no feature columns left after removing the target, group, id, batch and --drop columns")

        notes: list[str] = []
        warn: list[str] = []
        X = _feature_matrix(df, feature_names, warn)
        ids = _id_column(df, roles.id)
        groups = _label_column(df, roles.group, "--group")
        batches = _batch_column(df, roles.batch, warn)

        y, task_out, class_list = None, None, []
        if roles.target:
            y, task_out, class_list = _target(df, list(roles.target), task, classes, notes, warn)
        if groups is not None:
            n_groups = len(np.unique(groups))
            notes.append(f"groups: {n_groups} in {roles.group!r} ({len(df) / n_groups:.1f} samples each on average)")
        notes.append(f"features: {len(feature_names)} numeric columns, {len(df)} samples")
        return cls(
            X=X, y=y, feature_names=feature_names, task=task_out, classes=class_list, groups=groups,
            batches=batches, ids=ids, target_names=list(roles.target), notes=notes, warnings=warn, roles=roles,
        )


def _feature_matrix(df: pd.DataFrame, names: list[str], warn: list[str]) -> np.ndarray:
    """(n, d) float64 of the feature columns; non-numeric columns and infinities are errors, NaN is noted."""
    frame = df[names]
    # dtype first: fetching 60,000 columns one by one is slow, only object columns need a look inside
    bad = [n for n, t in zip(names, frame.dtypes) if not pd.api.types.is_numeric_dtype(t)
           and not _numbers_in_objects(frame[n])]
    if bad:
        raise DataError(
            f"feature columns must be numeric: {_quoted(bad)} ({len(bad)} column{'s' * (len(bad) != 1)}); "
            "pass them to --drop, or use --id/--batch/--group for their role"
        )
    X = frame.to_numpy(dtype=np.float64, na_value=np.nan)  # (n, d)
    infinite = np.isinf(X).any(axis=0)
    if infinite.any():
        raise DataError(f"feature columns hold infinite values: {_quoted(np.asarray(names)[infinite])}; "
                        "replace them or pass the columns to --drop")
    nan_counts = np.isnan(X).sum(axis=0)
    if nan_counts.any():
        cols = np.flatnonzero(nan_counts)
        pairs = [(names[j], int(nan_counts[j])) for j in cols]
        warn.append(
            f"missing values in {len(cols)} feature columns: {_counted(pairs)}; train with "
            "--impute median|mean|zero"
        )
    return X


def _numbers_in_objects(col: pd.Series) -> bool:
    """True for an object column holding only numbers (a frame built in Python); text columns are not."""
    if col.dtype != object:
        return False
    converted = pd.to_numeric(col, errors="coerce")
    return bool((converted.notna() == col.notna()).all())


def _id_column(df: pd.DataFrame, name: str | None) -> np.ndarray | None:
    if name is None:
        return None
    col = df[name]
    if col.isna().any():
        raise DataError(f"--id column {name!r} has {int(col.isna().sum())} missing values; every sample needs an id")
    ids = np.asarray([_label_key(v) for v in col], dtype=object)
    repeats = [(i, k) for i, k in Counter(ids).items() if k > 1]
    if repeats:
        listed = ", ".join(f"{i!r} (×{k})" for i, k in repeats[:5])
        raise DataError(f"duplicate sample ids in --id column {name!r}: {listed}; ids must be unique")
    return ids


def _label_column(df: pd.DataFrame, name: str | None, flag: str) -> np.ndarray | None:
    """Group labels as strings; a sample without a group could land on either side, so missing is an error."""
    if name is None:
        return None
    col = df[name]
    if col.isna().any():
        raise DataError(f"{flag} column {name!r} has {int(col.isna().sum())} missing values; fill them or use --no-group")
    return np.asarray([_label_key(v) for v in col], dtype=object)


def _batch_column(df: pd.DataFrame, name: str | None, warn: list[str]) -> np.ndarray | None:
    """Batch labels as strings; batches only feed summaries, so missing ones become "NA" with a warning."""
    if name is None:
        return None
    col = df[name]
    missing = int(col.isna().sum())
    if missing:
        warn.append(f"--batch column {name!r} has {missing} missing values; they are counted as batch 'NA'")
    return np.asarray(["NA" if pd.isna(v) else _label_key(v) for v in col], dtype=object)


# ── target and task ──────────────────────────────────────────────────────────────────────────────────────


def _target(
    df: pd.DataFrame, targets: list[str], task: str, classes: Sequence | None, notes: list[str], warn: list[str]
) -> tuple[np.ndarray, str, list]:
    """(y, task, classes) for the target column(s), inferring the task when `task == "auto"`."""
    frame = df[targets]
    missing = frame.isna().any(axis=1)
    if missing.any():
        per_col = [(t, int(frame[t].isna().sum())) for t in targets if frame[t].isna().any()]
        raise DataError(
            f"target has missing values in {int(missing.sum())} rows ({_counted(per_col)}); drop those rows, "
            "or predict them with `mlpcli predict`"
        )
    if task == "auto":
        task = _infer_task(frame, targets, classes, notes)
    if task in CLASSIFICATION_TASKS:
        if len(targets) != 1:
            raise DataError(f"--task {task} takes one --target column, got {len(targets)} ({_quoted(targets)}); "
                            "use --task multilabel for several 0/1 columns")
        y, labels = _encode_classes(frame[targets[0]], targets[0], task, classes, warn)
        return y, task, labels
    if task == "multilabel":
        return _multilabel_target(frame, targets, classes), task, list(targets)
    return _regression_target(frame, targets, classes), task, list(targets)


def _is_number_column(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)


def _is_zero_one(col: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(col.dtype):
        return True
    return _is_number_column(col) and bool(np.isin(col.to_numpy(dtype=np.float64), (0.0, 1.0)).all())


def _infer_task(frame: pd.DataFrame, targets: list[str], classes: Sequence | None, notes: list[str]) -> str:
    if len(targets) > 1:
        if all(_is_zero_one(frame[t]) for t in targets):
            notes.append(f"task: multilabel (inferred: {len(targets)} target columns, all 0/1; --task to override)")
            return "multilabel"
        if all(_is_number_column(frame[t]) for t in targets):
            notes.append(f"task: regression (inferred: {len(targets)} numeric target columns; --task to override)")
            return "regression"
        bad = [t for t in targets if not _is_number_column(frame[t]) and not _is_zero_one(frame[t])]
        raise DataError(f"several target columns must all be 0/1 (multi-label) or numeric (regression); "
                        f"{_quoted(bad)} is neither")
    name = targets[0]
    col = frame[name]
    if classes is not None:  # a trained classifier's labels were given: keep its task family
        task = "binary" if len(classes) == 2 else "multiclass"
        notes.append(f"task: {task} (from the model's {len(classes)} classes)")
        return task
    values = col.to_numpy()
    n_distinct = len(pd.unique(values))
    if _is_number_column(col):
        as_float = values.astype(np.float64)
        non_integer = not np.all(as_float == np.round(as_float))
        many = n_distinct > _REGRESSION_MIN_DISTINCT and n_distinct > _REGRESSION_MIN_DISTINCT_FRACTION * len(col)
        if non_integer or many:
            why = "non-integer values" if non_integer else f"{n_distinct} distinct values"
            notes.append(f"task: regression (inferred: {name!r} is numeric with {why}; --task to override)")
            return "regression"
    if n_distinct < 2:
        raise DataError(f"target {name!r} has a single class ({_quoted(pd.unique(values), 1)}); "
                        "a classifier needs at least 2 classes")
    task = "binary" if n_distinct == 2 else "multiclass"
    notes.append(f"task: {task} (inferred from {n_distinct} classes in {name!r}; --task to override)")
    return task


def _sorted_labels(values: np.ndarray) -> list:
    unique = [_plain(v) for v in pd.unique(values)]
    try:
        return sorted(unique)
    except TypeError:  # mixed types (e.g. 1 and "a") in an object column
        return sorted(unique, key=str)


def _encode_classes(
    col: pd.Series, name: str, task: str, classes: Sequence | None, warn: list[str]
) -> tuple[np.ndarray, list]:
    """(y (n,) int64 indices into the labels, labels)."""
    values = col.to_numpy()
    if classes is None:
        labels = _sorted_labels(values)
        if len(labels) < 2:
            raise DataError(f"target {name!r} has a single class ({_quoted(labels, 1)}); "
                            "a classifier needs at least 2 classes")
        if task == "binary" and len(labels) != 2:
            raise DataError(f"--task binary needs 2 classes, but {name!r} has {len(labels)}: {_quoted(labels)}; "
                            "use --task multiclass")
    else:
        labels = list(classes)
        if task == "binary" and len(labels) != 2:
            raise DataError(f"--task binary needs 2 classes, but the model has {len(labels)}")
    index = {_label_key(c): i for i, c in enumerate(labels)}
    keys = [_label_key(v) for v in values]
    unknown = [k for k in dict.fromkeys(keys) if k not in index]
    if unknown:
        raise DataError(f"target {name!r} holds labels the model does not know: {_quoted(unknown)}; "
                        f"its classes are {_quoted(labels, 8)}")
    y = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
    if classes is None:
        counts = np.bincount(y, minlength=len(labels))
        rare = [(labels[i], int(counts[i])) for i in np.flatnonzero(counts < _RARE_CLASS_SAMPLES)]
        if rare:
            warn.append(f"rare classes in {name!r} with fewer than {_RARE_CLASS_SAMPLES} samples: {_counted(rare)}; "
                        "their validation scores will be noisy")
    return y, labels


def _multilabel_target(frame: pd.DataFrame, targets: list[str], classes: Sequence | None) -> np.ndarray:
    bad = [t for t in targets if not _is_zero_one(frame[t])]
    if bad:
        raise DataError(f"--task multilabel needs 0/1 target columns; {_quoted(bad)} holds other values")
    _check_model_targets(targets, classes)
    return frame.to_numpy(dtype=np.float64)  # (n, k)


def _regression_target(frame: pd.DataFrame, targets: list[str], classes: Sequence | None) -> np.ndarray:
    bad = [t for t in targets if not _is_number_column(frame[t])]
    if bad:
        example = frame[bad[0]].iloc[0]
        raise DataError(f"--task regression needs numeric targets; {_quoted(bad)} holds text such as {str(example)!r}")
    _check_model_targets(targets, classes)
    return frame.to_numpy(dtype=np.float64)  # (n, k)


def _check_model_targets(targets: list[str], classes: Sequence | None) -> None:
    if classes is not None and [str(c) for c in classes] != list(targets):
        raise DataError(f"target columns {_quoted(targets)} differ from the model's {_quoted(classes)}; "
                        "pass the model's columns to --target")


# ── preprocessing ────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class PreprocessConfig:
    log1p: bool = False  # log(1 + x) first; counts/TPM are heavy-tailed
    top_var: int | None = None  # keep the N most variable features (on training rows)
    standardize: bool = True  # z-score with training mean and SD
    impute: str | None = None  # None (missing values are an error) | "median" | "mean" | "zero"

    def validate(self) -> None:
        if self.impute is not None and self.impute not in IMPUTE_METHODS:
            raise ConfigError(f"--impute {self.impute!r} is not one of {', '.join(IMPUTE_METHODS)}")
        if self.top_var is not None and (isinstance(self.top_var, bool) or not isinstance(self.top_var, (int, np.integer))
                                         or self.top_var < 1):
            raise ConfigError(f"--top-var must be a positive whole number, got {self.top_var!r}")


_STATE_ARRAYS = ("kept_index", "impute_values", "center", "scale", "train_mean", "train_sd")
_STATE_VERSION = 1


class Preprocessor:
    """log1p -> impute -> drop constant features -> top-variance filter -> standardise.

    Every parameter is fitted on the training rows only; `transform` applies them to any rows and never
    refits. Fitted arrays are per kept feature, shape (d_kept,).
    """

    def __init__(self, config: PreprocessConfig | None = None):
        self.config = config if config is not None else PreprocessConfig()
        self.config.validate()
        self.feature_names_in: list[str] = []
        self.kept_features: list[str] = []
        self.dropped_constant: list[str] = []
        self.warnings: list[str] = []
        self.kept_index_: np.ndarray | None = None  # (d_kept,) int64 columns of the input that are kept
        self.impute_values_: np.ndarray | None = None  # (d_kept,) NaN when impute is off
        self.center_: np.ndarray | None = None  # (d_kept,) subtracted (0 when standardize is off)
        self.scale_: np.ndarray | None = None  # (d_kept,) divided by (1 when standardize is off)
        self.train_mean_: np.ndarray | None = None  # (d_kept,) of the transformed training rows
        self.train_sd_: np.ndarray | None = None  # (d_kept,)

    @property
    def n_features_in(self) -> int:
        return len(self.feature_names_in)

    def fit(self, X, feature_names: Sequence[str]) -> "Preprocessor":
        """Fit on training rows X (n, d). Does not modify X."""
        cfg = self.config
        names = [str(n) for n in feature_names]
        X = np.array(X, dtype=np.float64, copy=True)  # own copy: the steps below work in place
        if X.ndim != 2 or X.shape[1] != len(names):
            raise DataError(f"preprocessing expects a 2-D array with {len(names)} feature columns, got shape {X.shape}")
        if X.shape[0] == 0:
            raise DataError("no training rows to fit the preprocessing on")
        if np.isinf(X).any():
            bad = np.flatnonzero(np.isinf(X).any(axis=0))
            raise DataError(f"feature columns hold infinite values: {_quoted(np.asarray(names)[bad])}; replace them")
        self.feature_names_in = names
        self.warnings = []

        if cfg.log1p:
            _check_non_negative(X, names)
            np.log1p(X, out=X)
        impute_values = self._fit_impute(X, names)  # (d,) fills NaN in X in place

        variable = X.max(axis=0) != X.min(axis=0)
        self.dropped_constant = [names[j] for j in np.flatnonzero(~variable)]
        if self.dropped_constant:
            self.warnings.append(
                f"dropped {len(self.dropped_constant)} features constant on the training rows: "
                f"{_quoted(self.dropped_constant)}"
            )
        if not variable.any():
            raise DataError(f"all {len(names)} features are constant on the training rows; nothing to learn from")
        kept = self._select_top_var(X, np.flatnonzero(variable))

        Xk = X[:, kept]  # (n, d_kept)
        if cfg.standardize:
            self.center_, self.scale_ = Xk.mean(axis=0), Xk.std(axis=0)  # sd > 0: constant columns are gone
        else:
            self.center_, self.scale_ = np.zeros(len(kept)), np.ones(len(kept))
        Z = (Xk - self.center_) / self.scale_
        self.train_mean_, self.train_sd_ = Z.mean(axis=0), Z.std(axis=0)
        self.kept_index_ = kept.astype(np.int64)
        self.impute_values_ = impute_values[kept]
        self.kept_features = [names[j] for j in kept]
        return self

    def _fit_impute(self, X: np.ndarray, names: list[str]) -> np.ndarray:
        """Imputation values (d,) from the training rows; fills X's NaN in place. NaN values when impute is off."""
        method = self.config.impute
        nan_mask = np.isnan(X)
        nan_counts = nan_mask.sum(axis=0)
        if method is None:
            if nan_counts.any():
                raise DataError(_missing_message(names, nan_counts))
            return np.full(X.shape[1], np.nan)
        if method == "zero":
            values = np.zeros(X.shape[1])
        elif method == "mean":
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns, handled below
                values = np.nanmean(X, axis=0)
        else:
            values = _nan_median(X, nan_mask, nan_counts)
        empty = nan_counts == X.shape[0]
        if empty.any():
            values[empty] = 0.0  # no training value at all: the column becomes constant and is dropped
            self.warnings.append(
                f"{int(empty.sum())} features have no values on the training rows: {_quoted(np.asarray(names)[empty])}"
            )
        if nan_counts.any():
            rows, cols = np.nonzero(nan_mask)
            X[rows, cols] = values[cols]
        return values

    def _select_top_var(self, X: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Column indices to keep (sorted): the `top_var` most variable of `candidates`, or all of them."""
        n_keep = self.config.top_var
        if n_keep is None:
            return candidates
        if n_keep >= len(candidates):
            if n_keep > len(candidates):
                self.warnings.append(f"--top-var {n_keep} is more than the {len(candidates)} non-constant "
                                     "features; keeping all of them")
            return candidates
        variances = X[:, candidates].var(axis=0)
        # stable sort on -variance: ties keep the earlier column, so the choice is deterministic
        order = np.argsort(-variances, kind="stable")[:n_keep]
        return np.sort(candidates[order])

    def transform(self, X, dtype=np.float64) -> np.ndarray:
        """(n, d_in) -> (n, d_kept) with the fitted parameters; X is not modified."""
        if self.kept_index_ is None:
            raise RuntimeError("Preprocessor.transform called before fit")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in:
            raise DataError(f"expected {self.n_features_in} feature columns, got shape {X.shape}; "
                            "the table's features must match the ones the model was trained on")
        Xk = X[:, self.kept_index_]  # fancy indexing copies, so in-place steps below leave X alone
        if self.config.log1p:
            _check_non_negative(Xk, self.kept_features)
            np.log1p(Xk, out=Xk)
        nan_mask = np.isnan(Xk)
        if nan_mask.any():
            if self.config.impute is None:
                raise DataError(_missing_message(self.kept_features, nan_mask.sum(axis=0)))
            rows, cols = np.nonzero(nan_mask)
            Xk[rows, cols] = self.impute_values_[cols]
        Xk -= self.center_
        Xk /= self.scale_
        return Xk.astype(dtype, copy=False)

    def fit_transform(self, X, feature_names: Sequence[str], dtype=np.float64) -> np.ndarray:
        return self.fit(X, feature_names).transform(X, dtype=dtype)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able meta, arrays) for the model file; arrays are plain numeric, loadable without pickle."""
        if self.kept_index_ is None:
            raise RuntimeError("Preprocessor.state called before fit")
        meta = {
            "version": _STATE_VERSION,
            "config": asdict(self.config),
            "feature_names_in": list(self.feature_names_in),
            "kept_features": list(self.kept_features),
            "dropped_constant": list(self.dropped_constant),
            "warnings": list(self.warnings),
        }
        arrays = {
            "kept_index": self.kept_index_.copy(),
            "impute_values": self.impute_values_.copy(),
            "center": self.center_.copy(),
            "scale": self.scale_.copy(),
            "train_mean": self.train_mean_.copy(),
            "train_sd": self.train_sd_.copy(),
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "Preprocessor":
        """Rebuild a fitted Preprocessor; inconsistent state raises ModelFileError."""
        try:
            if meta.get("version") != _STATE_VERSION:
                raise ModelFileError(f"unknown preprocessing state version {meta.get('version')!r}")
            pre = cls(PreprocessConfig(**meta["config"]))
            names = [str(n) for n in meta["feature_names_in"]]
            kept_names = [str(n) for n in meta["kept_features"]]
            missing = [k for k in _STATE_ARRAYS if k not in arrays]
            if missing:
                raise ModelFileError(f"preprocessing arrays missing from the model file: {_quoted(missing)}")
            loaded = {k: np.asarray(arrays[k]) for k in _STATE_ARRAYS}
        except (KeyError, TypeError, ConfigError) as exc:
            raise ModelFileError(f"preprocessing state in the model file is malformed: {_short_reason(exc)}") from None
        kept = loaded["kept_index"].astype(np.int64)
        d_kept = len(kept_names)
        if any(loaded[k].shape != (d_kept,) for k in _STATE_ARRAYS):
            raise ModelFileError(f"preprocessing arrays in the model file do not match its {d_kept} kept features")
        if d_kept and (kept.min() < 0 or kept.max() >= len(names) or [names[j] for j in kept] != kept_names):
            raise ModelFileError("preprocessing feature indices in the model file do not match its feature names")
        pre.feature_names_in = names
        pre.kept_features = kept_names
        pre.dropped_constant = [str(n) for n in meta.get("dropped_constant", [])]
        pre.warnings = [str(w) for w in meta.get("warnings", [])]
        pre.kept_index_ = kept
        pre.impute_values_ = loaded["impute_values"].astype(np.float64)
        pre.center_ = loaded["center"].astype(np.float64)
        pre.scale_ = loaded["scale"].astype(np.float64)
        pre.train_mean_ = loaded["train_mean"].astype(np.float64)
        pre.train_sd_ = loaded["train_sd"].astype(np.float64)
        return pre


def _check_non_negative(X: np.ndarray, names: Sequence[str]) -> None:
    negative = (X < 0).any(axis=0)  # NaN compares False, so missing values pass
    if negative.any():
        cols = np.flatnonzero(negative)
        first = cols[0]
        raise DataError(
            f"log1p needs non-negative input, but {len(cols)} feature columns hold negative values "
            f"(first {names[first]!r}, min {np.nanmin(X[:, first]):.4g}); drop --log1p if the data is already on a log scale"
        )


def _missing_message(names: Sequence[str], nan_counts: np.ndarray) -> str:
    cols = np.flatnonzero(nan_counts)
    pairs = [(names[j], int(nan_counts[j])) for j in cols]
    return (f"missing values in {len(cols)} feature columns: {_counted(pairs)}; "
            "pass --impute median|mean|zero or remove them")


def _nan_median(X: np.ndarray, nan_mask: np.ndarray, nan_counts: np.ndarray) -> np.ndarray:
    """Column medians (d,) ignoring NaN, vectorised (np.nanmedian loops in Python over columns with NaN)."""
    values = np.empty(X.shape[1])
    full = nan_counts == 0
    if full.any():
        values[full] = np.median(X[:, full], axis=0)
    holed = np.flatnonzero(~full)
    if holed.size:
        block = np.sort(X[:, holed], axis=0)  # NaN sort last
        k = X.shape[0] - nan_counts[holed]  # non-missing values per column
        lo, hi = np.maximum((k - 1) // 2, 0), np.maximum(k // 2, 0)
        cols = np.arange(holed.size)
        values[holed] = np.where(k > 0, (block[lo, cols] + block[hi, cols]) / 2, np.nan)
    return values


# ── splits ───────────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class SplitSummary:
    """What a split did, JSON-able via dataclasses.asdict."""

    strategy: str
    n_train: int
    n_val: int
    n_groups_train: int | None
    n_groups_val: int | None
    class_counts_train: dict[str, int]  # per class (binary/multiclass) or positives per label (multilabel)
    class_counts_val: dict[str, int]
    batch_counts_train: dict[str, int]
    batch_counts_val: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def _group_name(dataset: Dataset) -> str:
    return dataset.roles.group if dataset.roles is not None and dataset.roles.group else "group"


def _check_val_size(val_size: float) -> None:
    ok = isinstance(val_size, (int, float, np.floating)) and not isinstance(val_size, bool) and 0 < val_size < 1
    if not ok:
        raise ConfigError(f"--val-size must be a fraction between 0 and 1 (exclusive), got {val_size!r}")


def split(dataset: Dataset, val_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, SplitSummary]:
    """Sorted (train_idx, val_idx) row indices and a summary; no group ever has rows on both sides.

    Groups + classification: StratifiedGroupKFold(round(1/val_size) folds); a fold that keeps every class on
    both sides is held out (the first such fold; the first fold if none does). Groups otherwise:
    GroupShuffleSplit. No groups: StratifiedShuffleSplit (classification) or ShuffleSplit.
    """
    _check_val_size(val_size)
    if dataset.n_samples < 2:
        raise DataError(f"{dataset.n_samples} sample(s) cannot be split into training and validation rows")
    classify = dataset.task in CLASSIFICATION_TASKS and dataset.y is not None
    try:
        if dataset.groups is not None:
            train, val, strategy = (_grouped_classification_split if classify else _grouped_shuffle_split)(
                dataset, val_size, seed)
        else:
            train, val, strategy = _ungrouped_split(dataset, val_size, seed, classify)
    except ValueError as exc:  # a constraint of sklearn's splitters not anticipated by the checks below
        raise DataError(f"cannot split the data with --val-size {val_size:g}: {_short_reason(exc)}") from None
    train, val = np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))
    if dataset.groups is not None:
        _assert_no_shared_group(dataset.groups[train], dataset.groups[val])
    summary = _summary(_side_counts(dataset, train), _side_counts(dataset, val), strategy)
    return train, val, summary


def _assert_no_shared_group(train_groups: np.ndarray, val_groups: np.ndarray) -> None:
    shared = np.intersect1d(train_groups, val_groups)
    if shared.size:  # explicit raise, not assert: must hold under python -O too
        raise SplitLeakageError(f"internal error: groups on both sides of the split: {_quoted(shared)}")


def _class_label(dataset: Dataset, index: int) -> str:
    return _label_key(dataset.classes[index]) if index < len(dataset.classes) else str(index)


def _grouped_classification_split(dataset: Dataset, val_size: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import StratifiedGroupKFold

    groups, y, gname = dataset.groups, dataset.y, _group_name(dataset)
    n_groups = len(np.unique(groups))
    n_splits = max(2, round(1 / val_size))
    _check_enough_groups(n_groups, n_splits, gname, val_size)
    largest = int(np.bincount(y).max())
    if largest < n_splits:  # sklearn refuses when every class is smaller than the number of folds
        raise DataError(
            f"too few samples for --val-size {val_size:g}: the largest class has {largest}, fewer than the "
            f"{n_splits} folds; use --val-size {1 / largest:.2f} or more, or add data"
        )
    # Each class must occur in >= 2 groups, else whole groups cannot place it on both sides.
    for c in np.unique(y):
        members = groups[y == c]
        n_class_groups = len(np.unique(members))
        if n_class_groups < 2:
            raise DataError(
                f"class {_class_label(dataset, c)!r} has {len(members)} samples, all from 1 group in {gname!r}; "
                "it cannot appear on both the training and validation sides — merge or drop the class, or add "
                "samples from more groups"
            )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # "least populated class has only k members" — class coverage is checked and reported ourselves
        warnings.simplefilter("ignore", UserWarning)
        folds = [(tr, va) for tr, va in splitter.split(np.zeros((len(y), 1)), y, groups) if len(tr) and len(va)]
    if not folds:
        raise DataError(f"cannot form a grouped split of {n_groups} groups in {gname!r}; add data or raise --val-size")
    present = np.unique(y)
    chosen = next(
        (k for k, (tr, va) in enumerate(folds)
         if np.isin(present, y[tr]).all() and np.isin(present, y[va]).all()),
        0,
    )
    train, val = folds[chosen]
    return train, val, f"StratifiedGroupKFold by {gname} (fold {chosen + 1} of {n_splits} as validation)"


def _check_enough_groups(n_groups: int, n_needed: int, gname: str, val_size: float) -> None:
    if n_groups < 2:
        raise DataError(f"only 1 group in {gname!r}; a grouped split needs at least 2 — add data, or pass "
                        "--no-group if the samples are independent")
    if n_groups < n_needed:
        raise DataError(
            f"{n_groups} groups in {gname!r} are too few for --val-size {val_size:g} ({n_needed} folds); "
            f"use --val-size {1 / n_groups:.2f} or more, or add data"
        )


def _grouped_shuffle_split(dataset: Dataset, val_size: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import GroupShuffleSplit

    groups, gname = dataset.groups, _group_name(dataset)
    n_groups = len(np.unique(groups))
    _check_enough_groups(n_groups, 2, gname, val_size)
    n_val_groups = math.ceil(val_size * n_groups)
    if n_val_groups >= n_groups:
        raise DataError(f"--val-size {val_size:g} of {n_groups} groups in {gname!r} leaves no training group; "
                        "lower --val-size or add data")
    splitter = GroupShuffleSplit(n_splits=1, test_size=val_size, random_state=seed)
    train, val = next(splitter.split(np.zeros((len(groups), 1)), groups=groups))
    return train, val, f"GroupShuffleSplit by {gname}"


def _ungrouped_split(dataset: Dataset, val_size: float, seed: int, classify: bool) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    n = dataset.n_samples
    n_val = math.ceil(val_size * n)  # sklearn's rounding for a fractional test_size
    n_train = n - n_val
    if n_train < 1:
        raise DataError(f"--val-size {val_size:g} of {n} samples leaves no training rows; lower --val-size")
    X_dummy = np.zeros((n, 1))
    if not classify:
        train, val = next(ShuffleSplit(n_splits=1, test_size=val_size, random_state=seed).split(X_dummy))
        return train, val, "ShuffleSplit (no group column)"
    y = dataset.y
    counts = np.bincount(y)
    for c in np.flatnonzero((counts > 0) & (counts < 2)):
        raise DataError(
            f"class {_class_label(dataset, c)!r} has 1 sample; it cannot appear on both the training and "
            "validation sides — merge or drop the class, or add data"
        )
    n_present = int((counts > 0).sum())
    if min(n_val, n_train) < n_present:
        side = "validation" if n_val < n_train else "training"
        raise DataError(f"--val-size {val_size:g} gives {min(n_val, n_train)} {side} samples, fewer than the "
                        f"{n_present} classes; {'raise' if side == 'validation' else 'lower'} --val-size or add data")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=val_size, random_state=seed)
    train, val = next(splitter.split(X_dummy, y))
    train, val = _cover_every_class(train, val, y, seed)
    return train, val, "StratifiedShuffleSplit (no group column)"


def _cover_every_class(train: np.ndarray, val: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Swap single samples so every class with >= 2 samples is on both sides.

    StratifiedShuffleSplit rounds class shares, so a class of 2-3 samples can land entirely on one side;
    a rare class missing from validation makes its metrics silently absent. Each swap trades a sample of
    the missing class for one of the side's most common class (>= 2 there), so sizes and coverage of the
    other classes are kept.
    """
    rng = np.random.default_rng(seed)
    train, val = train.copy(), val.copy()
    for c in np.flatnonzero(np.bincount(y) >= 2):
        for src, dst in ((train, val), (val, train)):
            if np.any(y[dst] == c):
                continue
            counts = np.bincount(y[dst], minlength=c + 1)
            donor = int(np.argmax(counts))
            if counts[donor] < 2:  # cannot happen when dst holds at least as many samples as classes
                continue
            i = rng.choice(np.flatnonzero(y[src] == c))
            j = rng.choice(np.flatnonzero(y[dst] == donor))
            src[i], dst[j] = dst[j], src[i]
    return train, val


@dataclass
class _Side:
    """Counts for one side of a split."""

    n: int
    n_groups: int | None
    classes: dict[str, int]
    batches: dict[str, int]


def _side_counts(dataset: Dataset, idx: np.ndarray | None = None) -> _Side:
    idx = np.arange(dataset.n_samples) if idx is None else idx
    classes: dict[str, int] = {}
    if dataset.y is not None and dataset.task in CLASSIFICATION_TASKS:
        counts = np.bincount(dataset.y[idx], minlength=len(dataset.classes))
        classes = {_label_key(c): int(counts[i]) for i, c in enumerate(dataset.classes)}
    elif dataset.y is not None and dataset.task == "multilabel":
        positives = dataset.y[idx].sum(axis=0)
        classes = {str(name): int(positives[j]) for j, name in enumerate(dataset.classes)}
    batches: dict[str, int] = {}
    if dataset.batches is not None:
        batches = {str(b): int(k) for b, k in sorted(Counter(dataset.batches[idx]).items())}
    n_groups = None if dataset.groups is None else int(len(np.unique(dataset.groups[idx])))
    return _Side(n=int(len(idx)), n_groups=n_groups, classes=classes, batches=batches)


def _summary(train: _Side, val: _Side, strategy: str) -> SplitSummary:
    warn: list[str] = []
    for kind, tr, va, consequence in (
        ("class", train.classes, val.classes, "validation metrics do not cover it"),
        ("batch", train.batches, val.batches, "validation does not test it"),
    ):
        for key in list(dict.fromkeys([*tr, *va])):
            k_tr, k_va = tr.get(key, 0), va.get(key, 0)
            if k_tr and not k_va:
                warn.append(f"{kind} {key!r} is only in the training rows ({k_tr} samples); {consequence}")
            elif k_va and not k_tr:
                warn.append(f"{kind} {key!r} is only in the validation rows ({k_va} samples); the model never "
                            "trains on it")
    return SplitSummary(
        strategy=strategy, n_train=train.n, n_val=val.n, n_groups_train=train.n_groups,
        n_groups_val=val.n_groups, class_counts_train=train.classes, class_counts_val=val.classes,
        batch_counts_train=train.batches, batch_counts_val=val.batches, warnings=warn,
    )


def summarize_split(train: Dataset, val: Dataset, strategy: str = "explicit validation table") -> SplitSummary:
    """Summary for a validation table given explicitly (--val-data); a group in both tables is an error."""
    if train.groups is not None and val.groups is not None:
        shared = np.intersect1d(train.groups, val.groups)
        if shared.size:
            raise DataError(
                f"{shared.size} groups in {_group_name(train)!r} appear in both the training and the --val-data "
                f"table: {_quoted(shared)}; a patient on both sides inflates validation scores — remove them "
                "from one table"
            )
    return _summary(_side_counts(train), _side_counts(val), strategy)


# ── class weights and provenance ─────────────────────────────────────────────────────────────────────────


def class_weights(y: np.ndarray, n_classes: int, spec: str | None, classes: Sequence) -> np.ndarray | None:
    """Per-class loss weights (n_classes,) float64, or None for no weighting.

    spec: None/"none"; "balanced" (sklearn's n / (n_classes * count)); or "A=1,B=3" by class label
    (unnamed classes get 1.0). y holds class indices (n,) or, for multilabel/binary, 0/1 values of any
    shape, weighted as the 2 classes 0 and 1 (pass n_classes=2, classes=[0, 1]).
    """
    if spec is None or str(spec).strip().lower() in ("", "none"):
        return None
    if len(classes) != n_classes:
        raise ValueError(f"class_weights: {len(classes)} class labels given for n_classes={n_classes}")
    text = str(spec).strip()
    if text.lower() == "balanced":
        return _balanced_weights(y, n_classes, classes)
    return _explicit_weights(text, classes)


def _balanced_weights(y: np.ndarray, n_classes: int, classes: Sequence) -> np.ndarray:
    from sklearn.utils.class_weight import compute_class_weight

    flat = np.asarray(y).ravel()
    if flat.size == 0 or not np.all((flat == np.round(flat)) & (flat >= 0) & (flat < n_classes)):
        raise DataError(f"class indices must be whole numbers in 0..{n_classes - 1} to compute class weights")
    flat = flat.astype(np.int64)
    counts = np.bincount(flat, minlength=n_classes)
    absent = [classes[i] for i in np.flatnonzero(counts == 0)]
    if absent:
        raise DataError(f"--class-weight balanced: class {_quoted(absent)} has no training samples; "
                        "give explicit weights (LABEL=WEIGHT) or add data")
    return compute_class_weight("balanced", classes=np.arange(n_classes), y=flat).astype(np.float64)


def _explicit_weights(text: str, classes: Sequence) -> np.ndarray:
    index = {_label_key(c): i for i, c in enumerate(classes)}
    valid = _quoted(index, 10)
    weights = np.ones(len(classes), dtype=np.float64)
    seen: set[str] = set()
    for item in (part.strip() for part in text.split(",")):
        label, sep, value = item.rpartition("=")
        label = label.strip()
        if not sep or not label:
            raise ConfigError(f"--class-weight expects 'balanced', 'none' or LABEL=WEIGHT pairs such as "
                              f"'A=1,B=3', got {item!r}; valid labels: {valid}")
        if label not in index:
            raise ConfigError(f"--class-weight names unknown class {label!r}; valid labels: {valid}")
        if label in seen:
            raise ConfigError(f"--class-weight gives class {label!r} twice")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not math.isfinite(weight) or weight <= 0:
            raise ConfigError(f"--class-weight for class {label!r} must be a positive number, got {value.strip()!r}")
        weights[index[label]] = weight
        seen.add(label)
    return weights


def data_checksum(X: np.ndarray, y: np.ndarray | None) -> str:
    """sha256 hex over dtype, shape and bytes of X and y (None hashes as a marker), for provenance."""
    digest = hashlib.sha256()
    for array in (X, y):
        if array is None:
            digest.update(b"none;")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
