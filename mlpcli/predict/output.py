"""Writing prediction frames to csv/tsv/txt (optionally compressed), parquet or standard output, atomically."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import sys
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ..errors import DataError, OutputError
from ..interrupts import held
from ..data.sources import format_suffix
from ..fileio import TABLE_FORMATS, atomic_write, descriptor_of, is_special_file, os_reason, write_whole


OUTPUT_FORMATS = (".csv, .tsv, .txt (each optionally .gz, .bz2 or .xz), .parquet, .h5ad (with .h5ad input), or '-' "
                  "for standard output")
DEFAULT_OBS_PREFIX = "mlpcli_"
_OUT_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}


def output_format(path: str, tables_only: bool = False) -> tuple[str, str, str | None]:
    """(kind, separator, compression) of an output path by its extension; "-" is CSV on standard output, and
    so is a device or named pipe whose name names no format (/dev/stdout).
    ``tables_only``: an output that is a table of its own (not predict's annotated copy of an .h5ad input),
    so .h5ad is refused too."""
    if str(path) == "-":
        return "text", ",", None
    name = os.path.basename(os.fspath(path)).lower()
    ext, compression = format_suffix(name, _OUT_COMPRESSIONS)
    if ext == ".parquet" and compression is None:
        return "parquet", "", None
    if ext == ".h5ad" and compression is None and not tables_only:
        return "h5ad", "", None
    if ext in (".csv", ".tsv", ".txt"):
        return "text", "," if ext == ".csv" else "\t", compression
    if descriptor_of(path) is not None or is_special_file(path):  # /dev/stderr, /dev/fd/3, a named pipe: CSV
        return "text", ",", None
    base = os.path.basename(os.fspath(path))
    if not ext:
        said = f"{base!r} names no output format" + (f" before {os.path.splitext(name)[1]!r}" if compression else "")
    else:
        full = ext + (os.path.splitext(name)[1] if compression else "")
        said = f"unsupported output format {full!r} ({base!r}" + (", a model file's extension: predictions are a "
                                                                   "table" if ext == ".mlp" else "") + ")"
    raise DataError(f"{said}; use "
                    f"{TABLE_FORMATS if tables_only else OUTPUT_FORMATS}")


def write_predictions(frames: Iterable[pd.DataFrame], path: str, *, float_format: str | None = None,
                      stdout=None, before_replacing: Callable[[], None] | None = None) -> int:
    """Write prediction frames to `path` chunk by chunk; returns the number of rows.

    Files are written to a temporary file beside `path` and renamed at the end, so an error halfway
    (a bad value in row 50,000, a full disk, Ctrl-C) leaves no partial file and an older file untouched.
    "-" streams CSV to standard output (`stdout`, default sys.stdout). A write that fails closes `frames`
    (a ``PredictionStream``, a generator: the input file they read) rather than leave it to the collector.
    ``before_replacing``: run once every frame is written (and, for a file, on disk), before the file at `path`
    is replaced: a command's other outputs (the shift report, known once the frames are), so that when they
    fail, `path` is left as it was.
    """
    try:
        return _write_frames(frames, path, float_format, stdout, before_replacing)
    except BaseException:
        close = getattr(frames, "close", None)
        if close is not None:
            close()
        raise


def _write_frames(frames: Iterable[pd.DataFrame], path: str, float_format: str | None, stdout,
                  before_replacing: Callable[[], None] | None = None) -> int:
    kind, sep, compression = output_format(path, tables_only=True)
    if str(path) == "-":
        stream = _Watched(stdout if stdout is not None else sys.stdout)
        try:
            binary = getattr(stream, "buffer", None)
            if binary is None:  # a text-only stream
                n = 0
                for i, frame in enumerate(frames):
                    with held():
                        frame.to_csv(stream, sep=sep, index=False, header=i == 0, float_format=float_format,
                                     lineterminator="\n")
                    n += len(frame)
            else:
                stream.flush()
                binary = _Watched(binary, stream)
                n = _write_text(frames, binary, sep, float_format)
                binary.flush()
            stream.flush()
        except OSError as exc:
            failure = stream.failure  # not the table being read (a damaged file), nor a closed pipe (| head)
            if failure is None or isinstance(failure, BrokenPipeError) or isinstance(exc, OutputError):
                raise
            raise OutputError(f"cannot write standard output: {os_reason(failure)}") from None
        if before_replacing is not None:
            before_replacing()
        return n
    n = 0

    def write(raw) -> None:
        nonlocal n
        n = _write_table(frames, raw, kind, sep, compression, float_format)
        if before_replacing is not None:
            raw.flush()
            if stat.S_ISREG(os.fstat(raw.fileno()).st_mode):  # a device (/dev/null) cannot be synced
                os.fsync(raw.fileno())  # a full disk shows here, before the other outputs are written
            before_replacing()

    atomic_write(path, write)
    return n


def _write_table(frames: Iterable[pd.DataFrame], raw, kind: str, sep: str, compression: str | None,
                 float_format: str | None) -> int:
    """Frames into the binary file `raw` as `kind` (``output_format``): parquet, or text compressed as asked;
    the number of rows."""
    if kind == "parquet":
        return _write_parquet(frames, raw)
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
    return n


class _Watched:
    """Standard output (or its binary buffer) as the writers see it: remembers a write that failed (a full
    disk behind ``> FILE``), so that the error names standard output rather than leave a bare "[Errno 28]"."""

    def __init__(self, stream, watcher: "_Watched | None" = None):
        self._stream, self._watcher = stream, watcher or self
        self.failure: OSError | None = None

    def write(self, data):
        try:
            # bytes whole: under python -u the binary layer is the raw file, which may take only part
            return self._stream.write(data) if isinstance(data, str) else write_whole(self._stream, data)
        except OSError as exc:
            self._watcher.failure = exc
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self._watcher.failure = exc
            raise

    def __getattr__(self, name):  # buffer, encoding, fileno, ...: the stream's own
        return getattr(self._stream, name)


def _bools_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its boolean columns (an ``ood`` flag, labels True / False) as the text pandas writes
    for them, True and False: pyarrow's writer would write true and false."""
    flags = [c for c in frame.columns if frame[c].dtype == bool
             or frame[c].dtype == object and len(frame) and isinstance(frame[c].iat[0], (bool, np.bool_))
             and frame[c].map(lambda v: isinstance(v, (bool, np.bool_))).all()]
    if not flags:
        return frame
    return frame.assign(**{c: frame[c].map({True: "True", False: "False"}).astype(object) for c in flags})


def _write_text(frames: Iterable[pd.DataFrame], binary, sep: str, float_format: str | None) -> int:
    """CSV / TSV through pyarrow's writer (ten times pandas' speed), or pandas' where a value needs quoting
    (a comma in an id) or a float format is asked for; the two write numbers, booleans and plain text
    alike."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # the header line as pandas writes it (quoted only where a name needs it), written here: pyarrow quotes every
    # name unless told not to (WriteOptions' quoting_header, pyarrow 22 and later)
    options = pacsv.WriteOptions(delimiter=sep, quoting_style="none", include_header=False)
    fast, n = float_format is None, 0
    text = None
    for i, frame in enumerate(frames):
        if fast:
            try:
                buf = io.BytesIO()
                if i == 0:
                    buf.write(_header_line(frame.columns, sep).encode("utf-8"))
                pacsv.write_csv(pa.Table.from_pandas(_bools_as_text(frame), preserve_index=False), buf, options)
                with held():  # whole rows: a stop signal during a write blocked on a pipe cut '0.906…' to '0.906'
                    binary.write(buf.getbuffer())
                n += len(frame)
                continue
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                fast = False  # pandas from here on
        if text is None:
            text = io.TextIOWrapper(binary, encoding="utf-8", newline="", write_through=True)
        with held():
            frame.to_csv(text, sep=sep, index=False, header=i == 0, float_format=float_format, lineterminator="\n")
        n += len(frame)
    if text is not None:
        text.flush()
        text.detach()
    return n


def _header_line(columns, sep: str) -> str:
    """The CSV / TSV header of ``columns`` as pandas' ``to_csv`` writes it (csv.QUOTE_MINIMAL), with its newline."""
    import csv

    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator="\n").writerow([str(c) for c in columns])
    return out.getvalue()


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


def obs_columns(stream, prefix: str = DEFAULT_OBS_PREFIX, class_probs: bool = False,
                notes: list[str] | None = None) -> dict[str, object]:
    """The obs columns `predict -o FILE.h5ad` adds, from a PredictionStream (iterated here), in row order:
    classification: `<prefix><target>` the predicted label (categorical, the model's classes as categories)
    and `<prefix><target>_prob` its calibrated probability, with `class_probs` also `<prefix>prob_<class>`
    per class; multi-label: `<prefix><label>` (bool) and `<prefix><label>_prob` per label; regression:
    `<prefix><target>` per target; then, when asked for, `<prefix>pred_set`, `<prefix>set_size`,
    `<prefix>ood_score`, `<prefix>ood_p` and `<prefix>ood`, and with `predict --explain K`
    `<prefix>top_features` (a regression model of several targets: `<prefix>top_features_<target>` each), with
    gene symbols `<prefix>top_symbols` (`<prefix>top_symbols_<target>`) too. An
    abstained cell's label is the unassigned label (an extra category) with the probability of the class it
    would have been given. A "/" in a name (HDF5's path separator) becomes "_" (and
    "_2", ... where that name is taken), said in `notes`."""
    import numpy as np

    model = stream.model
    parts: dict[str, list] = {}
    for frame in stream:
        for column in frame.columns:
            parts.setdefault(column, []).append(frame[column].to_numpy())
    cols = {c: np.concatenate(v) if v else np.array([]) for c, v in parts.items()}
    out: dict[str, object] = {}
    renamed: list[str] = []

    def name(text: str) -> str:
        full = prefix + str(text)
        if "/" not in full:
            return full
        safe, k = full.replace("/", "_"), 1
        while safe in out or safe in taken:  # 'T/NK' beside a class 'T_NK': a column each
            k += 1
            safe = f"{full.replace('/', '_')}_{k}"
        renamed.append(f"{full!r} as {safe!r}")
        return safe

    classes = list(model.classes)
    # every name written as it is (no "/"), so that a renamed one cannot take it
    taken = {prefix + str(t) for c in classes for t in (c, f"{c}_prob", f"prob_{c}")} | {
        prefix + t for t in ("pred_set", "set_size", "ood_score", "ood_p", "ood", "top_features", "top_symbols",
                             "explained_class")} | {
        f"{prefix}{column}_{c}" for c in classes for column in ("top_features", "top_symbols")}
    taken = {t for t in taken if "/" not in t}
    if model.task in ("binary", "multiclass"):
        target = (model.target_names or ["label"])[0]
        labels = cols.get(stream.label_column, np.array([], dtype=object))
        probs = np.column_stack([cols[f"prob_{c}"] for c in classes]) if len(labels) else np.zeros((0, len(classes)))
        index = {str(c): k for k, c in enumerate(classes)}
        # an abstained cell (predict --min-confidence ...) has the unassigned label and the probability of the
        # class it would have been given (by the stream's rule and --threshold)
        chosen = np.array([index.get(str(v), -1) for v in labels], dtype=np.int64)
        top = stream.decision.classes(model.task, probs, stream.threshold) if len(labels) else chosen
        extra = sorted({str(v) for v, k in zip(labels, chosen) if k < 0})
        if extra:
            labels = np.array([str(v) for v in labels], dtype=object)
        categories = [str(c) for c in classes] + extra if extra else classes
        out[name(target)] = pd.Categorical(labels, categories=categories)
        out[name(f"{target}_prob")] = probs[np.arange(len(chosen)), np.where(chosen < 0, top, chosen)].astype(np.float32)
        if class_probs:
            for k, c in enumerate(classes):
                out[name(f"prob_{c}")] = probs[:, k].astype(np.float32)
    elif model.task == "multilabel":
        for c in classes:
            out[name(c)] = cols[f"pred_{c}"].astype(bool)
            out[name(f"{c}_prob")] = cols[f"prob_{c}"].astype(np.float32)
    else:
        for c in classes:  # float64, as predict writes them (float32 would round a large target's values)
            out[name(c)] = cols[f"pred_{c}"].astype(np.float64)
    trust = getattr(stream, "trust", None)
    for column in trust.added_columns if trust is not None else []:  # prediction sets, out-of-distribution flags
        values = cols[column]
        out[name(column)] = values.astype(str) if column == "pred_set" else values
    for column in [*getattr(stream, "explain_columns", []), *getattr(stream, "symbol_columns", [])]:  # --explain K
        out[name(column)] = cols[column].astype(str)
    if getattr(stream, "explained_column", None):  # the class they explain, where a label may be unassigned
        out[name(stream.explained_column)] = pd.Categorical(cols[stream.explained_column].astype(str),
                                                            categories=[str(c) for c in classes])
    if renamed and notes is not None:
        notes.append(f"'/' cannot be in an .h5ad column name (HDF5 reads it as a path): wrote {', '.join(renamed)}")
    return out


# A frame whose attrs hold this key true is written with its floats exact (shortest round-trip form), not to 6
# significant digits: regression truth and predictions (train --oof, cv --oof) are values in the target's units,
# where 6 digits can be coarser than the model's error (a target near 2e7 with an SD of 3 came out in steps of
# 100), unlike scores and probabilities.
EXACT_FLOATS = "mlpcli_exact_floats"


def write_table(frame: pd.DataFrame, path: str, *, stdout=None) -> int:
    """One table (held-out predictions, a history, tuning results) to `path` in the format its extension
    names (``output_format``; "-": CSV on standard output), floats to 6 significant digits (exact when
    ``frame.attrs[EXACT_FLOATS]`` is true: regression values), atomically as ``write_predictions`` writes;
    returns the number of rows."""
    float_format = None if frame.attrs.get(EXACT_FLOATS) else "%.6g"
    return write_predictions([frame], path, float_format=float_format, stdout=stdout)


def table_bytes(frame: pd.DataFrame, path: str) -> bytes:
    """The bytes ``write_table(frame, path)`` writes to the file `path` (not "-"), for a caller that writes
    them together with other outputs (all or none)."""
    kind, sep, compression = output_format(path, tables_only=True)
    buf = io.BytesIO()
    _write_table([frame], buf, kind, sep, compression, None if frame.attrs.get(EXACT_FLOATS) else "%.6g")
    return buf.getvalue()


def write_predictions_h5ad(stream, path: str, source: str, *, prefix: str = DEFAULT_OBS_PREFIX,
                           class_probs: bool = False, notes: list[str] | None = None,
                           commit: Callable[[Callable[[], None]], None] | None = None) -> int:
    """Predict every cell of the .h5ad file `source` (the stream reads it) and write `path`: a copy of it
    with the prediction columns (``obs_columns``) added to .obs, .X and everything else untouched; returns
    the number of cells. Written atomically (``data.h5ad.write_obs_columns``); an obs column of the input
    with the same name is replaced only when it carries the (non-empty) prefix, else it is an error.
    ``commit(write)``: runs the writing of the file, once every cell is predicted; a command writes its other
    outputs (the shift report) around it, all or none. Default: written at once."""
    from ..data import h5ad

    if prefix == "":
        _check_unprefixed(stream.model, source)
    columns = obs_columns(stream, prefix, class_probs, notes)
    n = len(next(iter(columns.values()))) if columns else 0

    def write() -> None:
        h5ad.write_obs_columns(source, path, columns, notes=notes, prefix=prefix,
                               ours=prediction_obs_names(stream.model, prefix) | set(columns))

    (commit or (lambda w: w()))(write)
    return n


def _check_unprefixed(model, source: str) -> None:
    """With an empty --obs-prefix the predicted labels (values) are named as the target (labels): an OptionError
    before any cell is predicted when `source`'s obs has such a column already (the truth, in a labelled file),
    which the predictions would overwrite."""
    from ..data import h5ad
    from ..errors import OptionError
    from ..text import quoted

    names = [str(c) for c in model.classes] if model.task == "multilabel" else [
        str(t) for t in (model.target_names or ["label"])]
    with h5ad.H5ad(source) as f:
        taken = [n for n in names if n in f.obs_columns]
    if taken:
        raise OptionError(f"--obs-prefix '': the predictions would be named {quoted(taken)}, which {source}'s obs "
                          "has already (the truth?); give a prefix (the default is mlpcli_)")


def prediction_obs_names(model, prefix: str) -> set[str]:
    """Every obs column a prediction of ``model`` with ``prefix`` can write (``obs_columns``; a "/" written as
    "_"): an earlier prediction's columns are these, so only these are replaced or removed in an .h5ad file
    (a user's `cell_type` stays when the prefix is "cell")."""
    names = [str(c) for c in model.classes] + [str(t) for t in (model.target_names or ["label"])]
    stems = set(names) | {f"{c}_prob" for c in names} | {f"prob_{c}" for c in names} | {
        f"top_features_{c}" for c in names} | {f"top_symbols_{c}" for c in names} | {
        "pred_set", "set_size", "ood_score", "ood_p", "ood", "top_features", "top_symbols", "explained_class"}
    from ..data.h5ad import obs_spellings

    full = {prefix + t for t in stems}
    return {n for t in full for n in obs_spellings(t, len(stems))}
