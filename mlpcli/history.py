"""A run's history: the per-epoch table (``train --history``), and the learning curves read back
from a model file or such a table for ``diagnose``.

A history is a list of per-epoch row dicts as the fit loop records them (``epoch``,
``train_loss``, ``val_loss``, ``train_loss_eval``, ``penalty``, ``train_metric``, ``val_metric``,
``lr``, ``best_epoch``, ``seconds``). ``history_csv`` writes it as CSV and ``read_history`` parses
such a table back; ``read_curves`` picks the two curves to label and what is known about them (the
no-skill baseline, the kept epoch, dropout) and ``diagnose_curves`` labels them.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import zipfile
from dataclasses import dataclass, field

from .errors import DataError

__all__ = ["CURVE_COLUMNS", "Curves", "history_csv", "read_history", "curves_from_history", "read_curves",
           "diagnose_curves"]

# The two columns behind each kind of curve ``read_curves`` reads.
CURVE_COLUMNS = {"loss": ("train_loss", "val_loss"), "metric": ("train_metric", "val_metric")}
_INT_COLUMNS = ("epoch", "best_epoch")  # read back as int; every other numeric column as float
_TABLE_SUFFIX = re.compile(r"\.(csv|tsv|txt)(\.(gz|bz2|xz|zip))?$|\.parquet$", re.IGNORECASE)


# --------------------------------------------------------------------------- the history table
def history_csv(history: list[dict]) -> str:
    """The per-epoch rows as CSV text: one column per key (in first-seen order), floats to 6
    significant digits (the curves' noise is far above that; full precision triples the file).

    An empty history gives the header ``epoch,train_loss,val_loss`` so the file still says what it
    would hold."""
    if not history:
        return "epoch,train_loss,val_loss\n"
    columns = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def read_history(source: str) -> list[dict]:
    """Parse a history table (any format ``data.read_table`` reads; ``"-"`` is standard input) back
    into per-epoch rows: ``epoch`` and ``best_epoch`` as int, other numeric columns as float
    (an empty cell is NaN), a column holding text as its strings. ``history_csv`` round-trips
    through it (to 6 significant digits)."""
    return _rows(_read_frame(source))


def _read_frame(source: str):
    from . import data

    return data.read_table(source)


def _rows(frame) -> list[dict]:
    import pandas as pd

    columns = {}
    for name in frame.columns:
        raw = frame[name]
        values = pd.to_numeric(raw, errors="coerce")
        if (values.isna() & raw.notna()).any():  # text: keep it as read
            columns[name] = [None if pd.isna(v) else v for v in raw.tolist()]
            continue
        values = values.astype(float).tolist()
        if name in _INT_COLUMNS and all(math.isfinite(v) and v == int(v) for v in values):
            values = [int(v) for v in values]
        columns[name] = values
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


# --------------------------------------------------------------------------- the curves to diagnose
@dataclass
class Curves:
    """The two curves to label and what is known about them.

    ``train``/``val`` are per-epoch values (NaN = missing), epoch k being the k-th;
    ``checkpoint_epoch`` is the epoch whose weights were kept, when recorded; ``notes`` are
    remarks for the user (e.g. how the direction of a metric was inferred).
    """

    source: str
    kind: str  # "model" | "history"
    curves: str  # "loss" | "metric"
    name: str  # what the curves measure, for labels: "loss", "balanced accuracy", ...
    train: list[float]
    val: list[float]
    train_eval: list[float] | None = None  # training loss re-measured in inference mode
    baseline: float | None = None  # the no-skill level, in the curves' units
    baseline_note: str | None = None  # where the baseline comes from, for the reader
    higher_is_better: bool = False
    stochastic: bool = False  # dropout or noise augmentation was active while training
    checkpoint_epoch: int | None = None
    notes: list[str] = field(default_factory=list)


def _num(v) -> float:
    try:
        return float("nan") if v is None else float(v)
    except (TypeError, ValueError):
        return float("nan")


def curves_from_history(history: list[dict], curves: str = "loss", *, source: str = "history",
                        kind: str = "history") -> Curves:
    """The ``curves`` ("loss" or "metric") of per-epoch rows, with the kept epoch when the rows
    record it (``best_epoch``). The caller checks that the rows hold the curve columns."""
    tk, vk = CURVE_COLUMNS[curves]
    c = Curves(source=source, kind=kind, curves=curves, name=curves, train=[_num(r[tk]) for r in history],
               val=[_num(r[vk]) for r in history])
    if curves == "loss" and history and all("train_loss_eval" in r for r in history):
        c.train_eval = [_num(r["train_loss_eval"]) for r in history]
    kept = [b for b in (_num(r.get("best_epoch")) for r in history) if math.isfinite(b)]
    if kept and kept[-1] >= 1:  # `train --history` records the kept epoch on every row
        c.checkpoint_epoch = int(kept[-1])
    return c


def read_curves(source: str, curves: str = "loss", higher_is_better: bool | None = None,
                baseline: float | None = None) -> Curves:
    """Read the learning curves to diagnose from a model file or a history table.

    source: a model file (its history, class-prior baseline and kept epoch are inside), a history
        table as ``train --history`` writes it, or ``"-"`` for a table on standard input.
    curves: "loss" (train_loss, val_loss) or "metric" (train_metric, val_metric: balanced accuracy
        or RMSE per epoch).
    higher_is_better: for metric curves; default: from the model's metric, or inferred from a
        table's values (said in ``Curves.notes``).
    baseline: the no-skill level, overriding the model's.

    Raises DataError (a missing file, a directory, missing or non-numeric curve columns) and
    ModelFileError (a damaged or foreign model file).
    """
    if curves not in CURVE_COLUMNS:
        raise ValueError(f"curves must be one of {', '.join(CURVE_COLUMNS)}, got {curves!r}")
    if source != "-":
        if not os.path.exists(source):
            raise DataError(f"file not found: {source}")
        if os.path.isdir(source):
            raise DataError(f"{source} is a directory; give a model file or a history table")
        if _is_model_file(source):
            return _override_baseline(_curves_from_model(source, curves, higher_is_better), baseline)
    return _override_baseline(_curves_from_table(source, curves, higher_is_better), baseline)


def diagnose_curves(c: Curves):
    """Label ``c`` with ``diagnosis.diagnose``; errors name the source. Returns a ``Diagnosis``."""
    from .diagnosis import diagnose

    try:
        return diagnose(c.train, c.val, baseline=c.baseline, train_eval_loss=c.train_eval,
                        stochastic_regularisation=c.stochastic, higher_is_better=c.higher_is_better)
    except DataError as exc:
        raise DataError(f"{c.source}: {exc}") from None


def _is_model_file(path: str) -> bool:
    """A zip holding model.json, or any zip / .mlp file not named like a table (the model loader
    then says what is wrong with it)."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                if "model.json" in zf.namelist():
                    return True
        except (zipfile.BadZipFile, OSError):
            return True
        return not _TABLE_SUFFIX.search(path)
    return path.lower().endswith(".mlp")


def _override_baseline(c: Curves, baseline: float | None) -> Curves:
    if baseline is not None:
        c.baseline, c.baseline_note = baseline, "given with --baseline"
    return c


def _curves_from_model(path: str, curves: str, higher_is_better: bool | None) -> Curves:
    from . import model_io

    model = model_io.load(path)
    h = model.history
    tk, vk = CURVE_COLUMNS[curves]
    if not h:
        raise DataError(f"{path}: the model file holds no training history to diagnose")
    if any(tk not in row or vk not in row for row in h):
        raise DataError(f"{path}: the model's history has no {tk}/{vk} (it has {', '.join(h[0])})")
    cfg, fit = model.config or {}, model.fit or {}
    c = curves_from_history(h, curves, source=path, kind="model")
    c.stochastic = bool(cfg.get("dropout") or cfg.get("augment_noise"))
    c.checkpoint_epoch = fit.get("best_epoch") or None
    if curves == "loss":
        c.baseline = (model.baseline or {}).get("val_loss")
        c.baseline_note = "loss of always predicting the training prior" if c.baseline is not None else None
        c.name = f"loss ({model.loss.get('name', '?')})"
        return c
    metric = fit.get("metric") or ("rmse" if model.task == "regression" else "balanced_accuracy")
    c.name = metric.replace("_", " ") + (" (standardised targets)" if metric == "rmse" else "")
    c.higher_is_better = metric != "rmse" if higher_is_better is None else higher_is_better
    c.baseline, c.baseline_note = _metric_baseline(model, metric)
    return c


def _metric_baseline(model, metric: str) -> tuple[float | None, str | None]:
    """The no-skill value of the per-epoch metric: balanced accuracy 1/K over the validation
    classes (0.5 per label for multi-label); RMSE of the mean from the MSE baseline."""
    if metric == "balanced_accuracy":
        if model.task == "multilabel":
            return 0.5, "balanced accuracy of a constant prediction"
        present = [k for k, v in (model.split or {}).get("class_counts_val", {}).items() if v]
        k = len(present) or len(model.classes)
        return (1.0 / k, f"balanced accuracy of a constant prediction (1/{k})") if k >= 2 else (None, None)
    base = (model.baseline or {}).get("val_loss")
    if metric == "rmse" and model.loss.get("name") == "mse" and base is not None:
        # MSE per sample is 1/2 sum_k r^2, so the RMSE over all k outputs is sqrt(2 MSE / k)
        return math.sqrt(2.0 * base / max(1, model.network.n_outputs)), "RMSE of predicting the training mean"
    return None, None


def _curves_from_table(path: str, curves: str, higher_is_better: bool | None) -> Curves:
    frame = _read_frame(path)
    tk, vk = CURVE_COLUMNS[curves]
    missing = [k for k in (tk, vk) if k not in frame.columns]
    if missing:
        flag = "" if curves == "loss" else " with --metric metric"
        raise DataError(f"{path} has no {' or '.join(repr(m) for m in missing)} column; diagnose{flag} needs "
                        f"{tk} and {vk} (columns present: {', '.join(map(str, frame.columns[:12]))}"
                        f"{' ...' if len(frame.columns) > 12 else ''})")
    for name in (tk, vk, "train_loss_eval"):
        if name in frame.columns:
            _check_numeric(frame, name, path)
    c = curves_from_history(_rows(frame), curves, source="standard input" if path == "-" else path)
    if curves == "metric":
        c.higher_is_better = _infer_higher(c, higher_is_better)
    return c


def _check_numeric(frame, name: str, path: str) -> None:
    """A curve column holding text is an error naming the value and its row (not a silent NaN)."""
    import numpy as np
    import pandas as pd

    bad = pd.to_numeric(frame[name], errors="coerce").isna() & frame[name].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column {name!r} holds a non-numeric value {frame[name].iloc[i]!r} "
                        f"(data row {i + 1})")


def _infer_higher(c: Curves, given: bool | None) -> bool:
    """A score in [0, 1] whose training curve rises (accuracy, AUROC) is higher-is-better; else an
    error such as RMSE. Said in the notes, with the flag that overrides it."""
    import numpy as np

    if given is not None:
        return given
    tr, va = np.asarray(c.train, dtype=float), np.asarray(c.val, dtype=float)
    keep = np.isfinite(tr) & np.isfinite(va)
    tr, va = tr[keep], va[keep]
    k = max(1, min(3, len(tr) // 3))
    in_unit = tr.size > 0 and min(tr.min(), va.min()) >= 0 and max(tr.max(), va.max()) <= 1
    # both curves together: a training score pinned at 1.0 from epoch 2 does not rise any more
    rising = len(tr) >= 2 and (tr[-k:].mean() - tr[:k].mean()) + (va[-k:].mean() - va[:k].mean()) > 0
    higher = bool(in_unit and rising)
    why = ("values in [0, 1] and the curves rise" if higher else
           "the curves fall" if in_unit else "values outside [0, 1]")
    c.notes.append(f"--metric metric: reading {'higher' if higher else 'lower'} values as better ({why}); "
                   f"pass --{'lower' if higher else 'higher'}-is-better if that is wrong")
    return higher
