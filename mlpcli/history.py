"""A run's history: the per-epoch table (``train --history``), and the learning curves read back
from a model file or such a table for ``diagnose``.

A history is a list of per-epoch row dicts as the fit loop records them (``epoch``,
``train_loss``, ``val_loss``, ``train_loss_eval``, ``penalty``, ``train_metric``, ``val_metric``,
``lr``, ``best_epoch``, ``seconds``). ``history_csv`` writes it as CSV and ``read_history`` parses
such a table back; ``read_curves`` picks the two curves to label and what is known about them (the
no-skill baseline, the kept epoch, dropout) and ``diagnose_curves`` labels them.

Ensembles
---------
The history of a cross-fitted ensemble has a ``member`` key first in each row (1, 2, ...): one
row per member and epoch. Its members are read into ``Curves.members`` and the curves that get
labelled are their **mean curves** (``mean_curve``):

- at each epoch the mean is taken over the members still running (members stop at different
  epochs under early stopping);
- while every member runs it is the plain mean; once a member has stopped, the mean moves on by
  the mean epoch-to-epoch change of the members still running (a chain-linked mean). A plain mean
  would jump when a member leaves, by that member's distance from the others (folds' validation
  losses differ by 5-30 % of their level), and a jump reads as a rise or a fall. A member's
  missing epoch is bridged linearly so its change across the gap still counts;
- it ends at the last epoch at which more than half of the members are still running (the median
  member's length, the lower one for an even count): later epochs describe a minority, in the end
  one long member, not the ensemble.

Beside it, ``Curves.val_spread`` holds the s.d. across the running members of their validation
curves, per epoch (``spread_curve``): how much the validation value depends on which fold
validates. ``diagnose_curves`` hands it to the labeller as evidence of noise.
"""

from __future__ import annotations

import io
import math
import warnings
import os
import re
import shlex
import zipfile
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import DataError, MlpcliError, OptionError

__all__ = ["CURVE_COLUMNS", "MEMBER", "Curves", "MemberCurves", "history_csv", "history_frame", "read_history", "split_members",
           "majority_length", "mean_curve", "spread_curve", "curves_from_history", "read_curves", "diagnose_curves",
           "measure_name", "capacity_tried"]

# The two columns behind each kind of curve ``read_curves`` reads.
CURVE_COLUMNS = {"loss": ("train_loss", "val_loss"), "metric": ("train_metric", "val_metric")}
MEMBER = "member"  # the key (and column) numbering an ensemble's members from 1
BASELINE_GIVEN = "given with --baseline"  # Curves.baseline_note of a baseline passed to read_curves
# Without a baseline, a scale from the first epochs this many times the curves' final level (first epochs that blew
# up) is said in a note: against it every later level and gap reads small
FIRST_EPOCHS_BLOWUP = 10.0
_INT_COLUMNS = (MEMBER, "epoch", "best_epoch")  # read back as int; every other numeric column as float
_TABLE_SUFFIX = re.compile(r"\.(csv|tsv|txt)(\.(gz|bz2|xz|zip))?$|\.parquet$", re.IGNORECASE)


# --------------------------------------------------------------------------- the history table
def history_frame(history: list[dict]):
    """The per-epoch rows as a DataFrame (``train --history`` writes it in any table format,
    ``predict.write_table``): one column per key, in first-seen order; whole-number columns stay whole
    numbers where a row lacks them (an empty cell). An empty history still has the columns
    ``epoch, train_loss, val_loss``, so the file says what it would hold."""
    import pandas as pd

    if not history:
        return pd.DataFrame(columns=["epoch", "train_loss", "val_loss"])
    columns = list(dict.fromkeys(k for row in history for k in row))
    frame = pd.DataFrame([{k: row.get(k) for k in columns} for row in history], columns=columns)
    for c in columns:
        values = [row[c] for row in history if row.get(c) is not None]
        if values and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            frame[c] = frame[c].astype("Int64")
    return frame


def history_csv(history: list[dict]) -> str:
    """The per-epoch rows as CSV text (``history_frame``), floats to 6 significant digits (the curves' noise
    is far above that; full precision triples the file)."""
    return history_frame(history).to_csv(index=False, float_format="%.6g", lineterminator="\n")


def read_history(source: str) -> list[dict]:
    """Parse a history table (any format ``data.read_table`` reads; ``"-"`` is standard input) back
    into per-epoch rows: ``member``, ``epoch`` and ``best_epoch`` as int, other numeric columns as
    float (an empty cell is NaN), a column holding text as its strings. ``history_csv`` round-trips
    through it (to 6 significant digits)."""
    return _rows(_read_frame(source))


def _read_frame(source: str):
    from . import data

    if data.h5ad.is_h5ad(source) or data.tenx.is_tenx(source):  # the data, not a run's history
        raise DataError(f"{source} is single-cell data, not a run's history: diagnose reads a model file or a "
                        "--history table; to learn from the data at several sizes, diagnose --learning-curve "
                        f"{shlex.quote(str(source))}")
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


# --------------------------------------------------------------------------- ensemble members
def split_members(history: list[dict], source: str = "history") -> list[tuple[int, list[dict]]] | None:
    """An ensemble's rows grouped by member, ``[(member, rows), ...]`` in member order, each
    member's rows in their recorded order; None for a single network's history (no ``member``).

    Raises DataError when only some rows have a member, or a member is not a whole number >= 1."""
    has = [MEMBER in row for row in history]
    if not any(has):
        return None
    if not all(has):
        i = has.index(False)
        raise DataError(f"{source}: row {i + 1} has no {MEMBER} number while others have one; an ensemble's "
                        f"history has one row per member and epoch")
    groups: dict[int, list[dict]] = {}
    for i, row in enumerate(history):
        m = row[MEMBER]
        number = _num(m)
        if m is None or (isinstance(m, float) and math.isnan(m)):  # an empty cell
            raise DataError(f"{source}: {MEMBER} nan in row {i + 1}: the cell is empty; every row of an ensemble's "
                            f"history needs its {MEMBER} number (1, 2, ...)")
        if not (math.isfinite(number) and number >= 1 and number == int(number)) or isinstance(m, bool):
            raise DataError(f"{source}: {MEMBER} {m!r} in row {i + 1} is not a member number (1, 2, ...)")
        groups.setdefault(int(number), []).append(row)
    return sorted(groups.items())


def majority_length(lengths: list[int]) -> int:
    """The last epoch at which more than half of the members are still running: the median
    length (the lower median for an even count). 0 for no members."""
    if not lengths:
        return 0
    return sorted(lengths)[(len(lengths) - 1) // 2]


def _stack(curves) -> np.ndarray:
    out = np.full((len(curves), max((len(c) for c in curves), default=0)), np.nan)  # (K, longest)
    for k, c in enumerate(curves):
        out[k, :len(c)] = np.asarray(c, dtype=float)
    return out


def _bridge(y: np.ndarray) -> np.ndarray:
    """(n,) with NaN between two finite values filled in linearly, so that a member's change
    across a missing epoch still counts in the chain (leading and trailing NaN are kept)."""
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return y
    idx = np.arange(len(y))
    inner = ~ok & (idx > idx[ok][0]) & (idx < idx[ok][-1])
    out = y.copy()
    out[inner] = np.interp(idx[inner], idx[ok], y[ok])
    return out


def mean_curve(curves: list[list[float]]) -> list[float]:
    """The members' mean curve (see "Ensembles" above): chain-linked over the members still
    running, ending at ``majority_length``. curves: one per member, of their own lengths (NaN =
    missing). Returns (majority_length,) values; NaN where no member has a value, infinite where a
    member's value is."""
    n = majority_length([len(c) for c in curves])
    raw = _stack(curves)[:, :n]  # (K, n), NaN after a member's last epoch
    y = np.array([_bridge(row) for row in raw]).reshape(raw.shape)  # (K, n)
    out = np.full(n, np.nan)
    for t in range(n):
        if t and np.isfinite(out[t - 1]):
            # every member running at t also ran at t - 1, so this is the running members' change
            with np.errstate(invalid="ignore"):  # inf - inf of a member that blew up: dropped below, set after
                step = y[:, t] - y[:, t - 1]
            step = step[np.isfinite(step)]
            if step.size:
                out[t] = out[t - 1] + step.mean()
                continue
        now = y[:, t][np.isfinite(y[:, t])]  # the first epoch (or after a gap in every member)
        if now.size:
            out[t] = now.mean()
    out[~np.isfinite(raw).any(axis=0)] = np.nan  # no member measured this epoch: nothing to show
    for t in np.flatnonzero(np.isinf(raw).any(axis=0)):  # a member that blew up is not a missing value to skip:
        out[t] = raw[:, t][np.isinf(raw[:, t])][0]  # the mean blows up with it, and the labeller says so
    return out.tolist()


def spread_curve(curves: list[list[float]]) -> list[float]:
    """Per epoch of the mean curve, the sample s.d. (ddof 1) across the members with a value there,
    after removing each member's own level (its mean over the epochs every member ran): members
    validated on different folds sit at different levels (a harder fold, a rarer class), which says
    nothing about noise; members whose curves move differently do. NaN where fewer than two have a
    value. Returns (majority_length,) values."""
    n = majority_length([len(c) for c in curves])
    shared = min((len(c) for c in curves), default=0)
    y = _stack(curves)[:, :n]  # (K, n)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a member with no value in the shared epochs
        levels = np.nanmean(_stack(curves)[:, :max(shared, 1)], axis=1)  # (K,)
        y = y - levels[:, None]  # an infinite loss (a member that diverged) gives NaN here, left out below
    out = np.full(n, np.nan)
    for t in range(n):
        now = y[:, t][np.isfinite(y[:, t])]
        if now.size >= 2:
            out[t] = now.std(ddof=1)
    return out.tolist()


@dataclass
class MemberCurves:
    """One ensemble member's curves (its own length: members stop at different epochs)."""

    member: int  # 1-based
    train: list[float]
    val: list[float]
    train_eval: list[float] | None = None
    best_epoch: int | None = None  # the kept epoch when recorded, else the epoch of lowest val_loss
    recorded: bool = False  # best_epoch is the kept epoch the rows record (not computed from val_loss)

    def to_dict(self) -> dict:
        """``{"member", "epochs", "best_epoch"}`` for ``--json``."""
        return {"member": self.member, "epochs": len(self.train), "best_epoch": self.best_epoch}


def _member_curves(member: int, rows: list[dict], curves: str, notes: list[str] | None = None) -> MemberCurves:
    one = _single_curves(rows, curves, source=f"member {member}")
    if notes is not None:
        notes += one.notes  # a best_epoch that is not one of the member's epochs, ignored
    best = one.checkpoint_epoch
    if best is None:  # what early stopping keeps (min_delta 0): the lowest validation loss
        losses = [_num(r.get("val_loss")) for r in rows]
        finite = [(v, e) for e, v in enumerate(losses, 1) if math.isfinite(v)]
        best = min(finite)[1] if finite else None
    return MemberCurves(member, one.train, one.val, one.train_eval, best, recorded=one.checkpoint_epoch is not None)


# --------------------------------------------------------------------------- the curves to diagnose
@dataclass
class Curves:
    """The two curves to label and what is known about them.

    ``train``/``val`` are per-epoch values (NaN = missing), epoch k being the k-th; for an
    ensemble they are the members' mean curves (module docstring), with the members' own curves
    in ``members`` and the per-epoch s.d. of validation across them in ``val_spread``.
    ``checkpoint_epoch`` is the epoch whose weights were kept, when recorded (None for an
    ensemble: each member kept its own); ``notes`` are remarks for the user (e.g. how the
    direction of a metric was inferred).
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
    members: list[MemberCurves] = field(default_factory=list)  # an ensemble's members; empty otherwise
    val_spread: list[float] | None = None  # (len(val),) s.d. across members; None without members
    capacity_tried: str | None = None  # a larger network --hidden auto tried beside the chosen one, in words
    validation_table: str | None = None  # the separate table validation came from (train --val-data)
    # what ``_note_shifted_members`` found: the held-out rows that differ from the training rows as a new cohort's
    # would, in words, or None
    held_out_shift: str | None = None
    grouped_by: str | None = None  # the column whose samples the run's split kept on one side (a model's group role)
    step: str = "epoch"  # what one point of the curves is: "epoch", or "iteration" for a model fitted by L-BFGS
    linear: bool = False  # the network has no hidden layer (a model's --hidden none): it cannot be made smaller
    augment_noise: float = 0.0  # the SD of input noise the run trained with (0: none): the advice asks for more, not for it
    hidden_auto: bool = False  # the network was chosen by --hidden auto (the default): no advice to let it choose


def _num(v) -> float:
    try:
        return float("nan") if v is None else float(v)
    except (TypeError, ValueError):
        return float("nan")


def curves_from_history(history: list[dict], curves: str = "loss", *, source: str = "history",
                        kind: str = "history") -> Curves:
    """The ``curves`` ("loss" or "metric") of per-epoch rows, with the kept epoch when the rows
    record it (``best_epoch``); for an ensemble's rows (with ``member``), the members' curves and
    their mean and spread. Raises DataError naming the first row that lacks a curve column."""
    if curves not in CURVE_COLUMNS:
        raise ValueError(f"curves must be one of {', '.join(CURVE_COLUMNS)}, got {curves!r}")
    for i, row in enumerate(history):
        lacking = [k for k in CURVE_COLUMNS[curves] if k not in row]
        if lacking:
            has = ", ".join(map(str, row)) or "nothing"
            raise DataError(f"{source}: row {i + 1} has no {' or '.join(lacking)} (it has {has}); the {curves} "
                            f"curves are read from {' and '.join(CURVE_COLUMNS[curves])}")
    groups = split_members(history, source)
    if groups is None:
        return _single_curves(history, curves, source, kind)
    member_notes: list[str] = []
    members = [_member_curves(m, rows, curves, member_notes) for m, rows in groups]
    train_eval = None
    if all(m.train_eval is not None for m in members):
        train_eval = mean_curve([m.train_eval for m in members])
    c = Curves(source=source, kind=kind, curves=curves, name=curves, train=mean_curve([m.train for m in members]),
               val=mean_curve([m.val for m in members]), train_eval=train_eval, members=members,
               val_spread=spread_curve([m.val for m in members]))
    c.notes += [f"{source}: {n}" for n in member_notes]
    for side, name in (("train", "training"), ("val", "validation")):  # a member with no value leaves a mean alone
        empty = [str(m.member) for m in members if not np.isfinite(np.asarray(getattr(m, side), dtype=float)).any()]
        if empty and len(empty) < len(members):
            have = "s " + ", ".join(empty) + " have" if len(empty) > 1 else f" {empty[0]} has"
            c.notes.append(f"{source}: member{have} no {name} value: the {name} curve is the mean of the other "
                           f"{len(members) - len(empty)}")
    return c


# The largest loss or metric value a history table may hold (``read_curves``): the rules square deviations of the
# curves, which overflow float64 beyond ~1e154 (a run's curves scaled by 1e160 read "noisy, n/a of its level")
MAX_CURVE_VALUE = 1e100


def _recorded_cells(history: list[dict], name: str) -> list:
    """The non-empty values of column ``name`` in row order, text kept as text: a hand-edited cell that is not a
    number must be said, not read as missing (a best_epoch of "x" was dropped without a word, where 999 was noted)."""
    return [v for v in (r.get(name) for r in history)
            if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _single_curves(history: list[dict], curves: str, source: str = "history", kind: str = "history") -> Curves:
    tk, vk = CURVE_COLUMNS[curves]
    c = Curves(source=source, kind=kind, curves=curves, name=curves, train=[_num(r[tk]) for r in history],
               val=[_num(r[vk]) for r in history])
    if curves == "loss" and history and all("train_loss_eval" in r for r in history):
        c.train_eval = [_num(r["train_loss_eval"]) for r in history]
    cells = _recorded_cells(history, "best_epoch")
    kept = [b for b in map(_num, cells) if math.isfinite(b)]
    if cells and not math.isfinite(_num(cells[-1])):  # text ("x", "n/a"): an edited cell, said as one out of range is
        c.notes.append(f"{source}: best_epoch {cells[-1]!r} is not an epoch number: ignored")
        kept = []  # not an earlier row's best, which the run moved on from
    if kept and kept[-1] >= 1:  # `train --history` records the kept epoch on every row
        last = len(history)
        if kept[-1] == int(kept[-1]) and kept[-1] <= last:
            c.checkpoint_epoch = int(kept[-1])
        else:  # an edited cell: "weights kept from epoch 999" of a 30-epoch run, or from "epoch 2" for 2.5
            c.notes.append(f"{source}: best_epoch {kept[-1]:g} is not one of the run's epochs (1-{last}): ignored")
    return c


def read_curves(source: str | os.PathLike, curves: str = "loss", higher_is_better: bool | None = None,
                baseline: float | None = None) -> Curves:
    """Read the learning curves to diagnose from a model file or a history table.

    source: a model file (its history, no-skill baseline — the class prior's or, for regression, the
        training mean's loss — and kept epoch are inside), a history table as ``train --history``
        writes it (a path or a ``pathlib.Path``), or ``"-"`` for standard input; standard input or a pipe
        (``<(zcat m.mlp.gz)``) is read once, whole, as a model file when it is one, else as a table.
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
    source = os.fspath(source)  # a notebook's pathlib.Path
    if not source.strip():
        raise DataError(f"file not found: the name given is empty ({source!r})")
    if source != "-":
        if not os.path.exists(source):
            from .fileio import symlink_loop, symlink_loop_message

            if symlink_loop(source):
                raise DataError(symlink_loop_message(str(source)))
            raise DataError(f"file not found: {source}")
        if os.path.isdir(source):
            raise DataError(f"{source} is a directory; give a model file or a history table")
        from .data.sources import is_pipe

        if is_pipe(source):
            return _override_baseline(_curves_from_stream(source, curves, higher_is_better), baseline)
        if _is_model_file(source):
            return _override_baseline(_curves_from_model(source, curves, higher_is_better), baseline)
        if "." not in os.path.basename(source):  # no suffix to go by (`history`): its bytes say, as on a pipe
            return _override_baseline(_curves_from_stream(source, curves, higher_is_better), baseline)
        return _override_baseline(_curves_from_table(source, curves, higher_is_better), baseline)
    return _override_baseline(_curves_from_stream(source, curves, higher_is_better), baseline)


def diagnose_curves(c: Curves):
    """Label ``c`` with ``diagnosis.diagnose``; errors name the source. Returns a ``Diagnosis``."""
    from .diagnosis import BaselineError, diagnose

    try:
        d = diagnose(c.train, c.val, baseline=c.baseline, train_eval_loss=c.train_eval,
                     stochastic_regularisation=c.stochastic, higher_is_better=c.higher_is_better,
                     member_spread=c.val_spread, name=measure_name(c), kept_epochs=kept_epochs(c),
                     capacity_tried=c.capacity_tried, validation_table=c.validation_table,
                     grouped_by=c.grouped_by, full_batch=c.step == "iteration", linear=c.linear,
                     augment_noise=c.augment_noise, hidden_auto=c.hidden_auto, curve_names=CURVE_COLUMNS.get(c.curves, ("train_loss", "val_loss")))
        scale, end = d.evidence.get("scale"), max(d.evidence.get("train_final") or 0, d.evidence.get("val_final") or 0)
        if (c.baseline is None and d.evidence.get("scale_source") == "first_epochs" and scale and end > 0
                and scale > FIRST_EPOCHS_BLOWUP * end):
            # a scale from first epochs that blew up makes any later level look settled and small (a run worse
            # than no skill read "Good fit — Nothing needed")
            c.notes.append(f"{c.source}: no baseline (the no-skill loss; a history table has none), and the scale "
                           f"comes from the first epochs, {scale:.4g}, {scale / end:.0f} x where the curves end: "
                           "levels and gaps read small against it, whatever the run learned; give --baseline LOSS "
                           "(cross-entropy on K balanced classes: ln K, 1.099 for 3) to read them against no skill")
        if c.held_out_shift and d.label != "good_fit":
            # first things first: a --val-data table on another scale read "underfit (capacity) ... check the target"
            table = f" ({c.validation_table})" if c.validation_table else ""
            d.advice.insert(0, f"Compare the held-out rows{table} with the training rows first: {c.held_out_shift} "
                               "lie beyond 1 training SD in mean, as a new cohort's would, and that shift alone makes "
                               "validation look worse than the fit; the remedies below may not help until it is "
                               "removed (the same preprocessing, batch correction, or a grouped split).")
        return d
    except DataError as exc:
        if isinstance(exc, BaselineError) and c.baseline_note == BASELINE_GIVEN:
            raise  # the caller's baseline is at fault, not the source (the CLI names --baseline)
        why = ""
        if len(c.members) > 1 and len(c.train) < max(len(m.train) for m in c.members):
            runs = [len(m.train) for m in c.members]
            why = (f" (the members' mean curve, which ends once half the members or fewer still run: members ran "
                   f"{min(runs)}-{max(runs)} epochs)")
        raise DataError(f"{c.source}: {exc}{why}") from None


def kept_epochs(c: Curves) -> list[int] | None:
    """The epochs whose weights the run restored, where the source records them: one network's kept epoch (a
    model file, or the best_epoch column of `train --history`), or every member's (None when any member's is
    only computed from its lowest validation loss). The labeller's overfit advice then says they were kept
    instead of asking to restore them."""
    if c.checkpoint_epoch:
        return [c.checkpoint_epoch]
    if c.members and all(m.recorded and m.best_epoch for m in c.members):
        return [m.best_epoch for m in c.members]
    return None


def capacity_tried(fit: dict, config: dict) -> str | None:
    """The largest network a run's ``--hidden auto`` trained beside the one it chose, with both scores, in words
    for the labeller (``diagnosis.diagnose``'s ``capacity_tried``: an underfit run whose larger candidate did no
    better is not short of capacity). fit, config: a model's ``fit`` and ``config`` (``portfolio`` holds each
    candidate's hidden widths, input noise and score, higher is better: RMSE negated). None without a portfolio
    (a given --hidden) or when the chosen network is the largest."""
    from .metrics import display_name, higher_is_better
    from .model_selection.portfolio import Candidate

    def widths(h) -> bool:  # a model file's fields are data: a hand-edited one must not raise here
        return isinstance(h, list) and all(isinstance(k, int) and not isinstance(k, bool) for k in h)

    fit, config = (fit if isinstance(fit, dict) else {}), (config if isinstance(config, dict) else {})
    resolved = {**config, **(config.get("resolved") if isinstance(config.get("resolved"), dict) else {})}
    hidden = resolved.get("hidden")
    portfolio = fit.get("portfolio") if isinstance(fit.get("portfolio"), list) else []
    rows = [p for p in portfolio if isinstance(p, dict) and widths(p.get("hidden"))
            and isinstance(p.get("score"), (int, float)) and math.isfinite(p["score"])]
    same = [p for p in rows if p["hidden"] == hidden]
    if not widths(hidden) or not same:
        return None
    # the slower softmax regression records its rate; the others "auto" (resolved per member)
    same_lr = [p for p in same if p.get("lr") == resolved.get("lr")] or [
        p for p in same if not isinstance(p.get("lr"), (int, float))] or same
    chosen = next((p for p in same_lr if p.get("augment_noise") == resolved.get("augment_noise")), same_lr[0])
    larger = [p for p in rows if sum(p["hidden"]) > sum(hidden)]
    if not larger:
        return None
    best = max(larger, key=lambda p: p["score"])
    metric = fit.get("metric") if isinstance(fit.get("metric"), str) else "balanced_accuracy"
    up = higher_is_better(metric)

    def value(p: dict) -> str:  # scores are stored higher-is-better: an RMSE negated
        return f"{p['score']:.3f}" if up else f"{-p['score']:.4g}"

    def describe(p: dict) -> str:
        noise, lr = p.get("augment_noise"), p.get("lr")
        return Candidate(tuple(p["hidden"]), noise if isinstance(noise, (int, float)) else 0.0,
                         lr if isinstance(lr, (int, float)) else "auto").describe()

    folds = fit.get("folds")
    where = "out-of-fold" if isinstance(folds, int) and folds > 1 else "validation"
    # the candidates are scored by their most probable class: a balanced rule's summary figure reads otherwise
    by = " (each by its most probable class)" if up and metric == "balanced_accuracy" else ""
    return (f"--hidden auto also trained {describe(best)}: {where} {display_name(metric)}{by} {value(best)}, against "
            f"{value(chosen)} for the network it chose ({describe(chosen)})")


def measure_name(c: Curves) -> str:
    """What the curves measure, short, for sentences: "loss", "balanced accuracy", "RMSE", or "metric" for a
    history table's metric columns (the table does not say which metric they hold)."""
    if c.curves == "loss":
        return "loss"
    short = re.sub(r"\s*\(.*\)$", "", c.name)  # "rmse (standardised targets)" -> "rmse"
    return "RMSE" if short == "rmse" else short


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
    # a compressed model (m.mlp.gz): the model loader names the compression and how to read it
    if re.search(r"\.mlp(\.(gz|bz2|xz|zip))?$", path, re.IGNORECASE) is not None:
        return True
    try:  # a Python pickle (another library's model, p.pkl): the model loader says so, where the table reader
        with open(path, "rb") as fh:  # answered "unsupported table format"
            head = fh.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _override_baseline(c: Curves, baseline: float | None) -> Curves:
    if baseline is not None:
        c.baseline, c.baseline_note = baseline, BASELINE_GIVEN
    return c


def _curves_from_stream(source: str, curves: str, higher_is_better: bool | None) -> Curves:
    """Standard input ("-") or a pipe (``<(zcat m.mlp.gz)``), read once, whole: a model file when it is a zip
    archive (the pipe cannot be peeked at and then read again), else a history table."""
    from .data.sources import stdin_bytes
    from .model_check import ZIP_MAGIC

    name = "standard input" if source == "-" else source
    try:
        if source == "-":
            raw = stdin_bytes(None, what="a model file or a history table")  # (not "a table" alone)
        else:
            with open(source, "rb") as fh:
                raw = stdin_bytes(fh, source)
    except OSError as exc:
        raise DataError(f"{name} cannot be read ({exc.strerror or exc})") from None
    if raw.startswith(ZIP_MAGIC):
        return _curves_from_model_bytes(raw, name, curves, higher_is_better)
    return _curves_from_table(source, curves, higher_is_better, stdin=io.BytesIO(raw))


def _curves_from_model_bytes(raw: bytes, name: str, curves: str, higher_is_better: bool | None) -> Curves:
    """A model file's bytes (from a pipe) read as a model file: through an anonymous in-memory file, which
    nothing can leave behind; messages name ``name``."""
    if not hasattr(os, "memfd_create"):
        raise DataError(f"{name} holds a model file (a zip archive); on this system diagnose reads a model file "
                        "from its path only: give the path")
    fd = os.memfd_create("mlpcli-model")
    path = f"/proc/self/fd/{fd}"
    try:
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view):]
        try:
            return _curves_from_model(path, curves, higher_is_better, name=name)
        except MlpcliError as exc:
            raise type(exc)(str(exc).replace(path, name)) from None
    finally:
        os.close(fd)


def _curves_from_model(path: str, curves: str, higher_is_better: bool | None, name: str | None = None) -> Curves:
    """name: the model's name in messages and in ``Curves.source`` (default ``path``)."""
    from . import model_io

    model = model_io.load(path)
    path = name or path
    h = model.history
    tk, vk = CURVE_COLUMNS[curves]
    if not h:
        raise DataError(f"{path}: the model file holds no training history to diagnose")
    if any(tk not in row or vk not in row for row in h):
        raise DataError(f"{path}: the model's history has no {tk}/{vk} (it has {', '.join(h[0])})")
    cfg, fit = model.config or {}, model.fit or {}
    _check_curve_values(h, (tk, vk, "train_loss_eval"), path, "no run records such a value: the file was edited or "
                        "damaged")
    h = _model_history_rows(h, fit, path)
    c = curves_from_history(h, curves, source=path, kind="model")
    resolved = {**cfg, **(cfg.get("resolved") or {})}  # "auto" options as the run made them concrete
    c.linear = bool(model.members) and all(not list(m.network.hidden) for m in model.members)
    # dropout acts on hidden layers: a linear model records the default 0.3 that never dropped anything
    c.stochastic = any(isinstance(resolved.get(k), (int, float)) and resolved.get(k) > 0
                       for k in (("augment_noise",) if c.linear else ("dropout", "augment_noise")))
    noise = resolved.get("augment_noise")
    c.augment_noise = float(noise) if isinstance(noise, (int, float)) and noise > 0 else 0.0
    c.hidden_auto = cfg.get("hidden") == "auto"
    c.checkpoint_epoch = None if c.members else fit.get("best_epoch") or None
    c.capacity_tried = capacity_tried(fit, cfg)
    c.validation_table = cfg.get("val_data") if isinstance(cfg.get("val_data"), str) else None
    group = (model.roles or {}).get("group") if isinstance(model.roles, dict) else None
    c.grouped_by = group if isinstance(group, str) and group else None
    if resolved.get("optimizer") == "lbfgs":  # full-batch: one point per iteration, the last weights kept
        _per_iteration(c)
    _note_shifted_members(c, fit.get("members") or [])
    recorded = {m.get(MEMBER): m.get("best_epoch") for m in fit.get("members") or [] if isinstance(m, dict)}
    for m in c.members:
        m.best_epoch = recorded.get(m.member) or m.best_epoch
    if curves == "loss":
        c.baseline = (model.baseline or {}).get("val_loss")
        from .model_summary import is_weighted

        prior = "mean" if model.task == "regression" else "prior"
        weighed = " as the class weights weigh it" if model.task != "regression" and is_weighted(model.config) else ""
        c.baseline_note = f"loss of always predicting the training {prior}{weighed}" if c.baseline is not None else None
        c.name = f"loss ({model.loss.get('name', '?')})"
        return c
    metric = fit.get("metric") or ("rmse" if model.task == "regression" else "balanced_accuracy")
    # RMSE curves are in the target's units; older model files (no baseline val_metric) held standardised ones
    old_units = metric == "rmse" and (model.baseline or {}).get("val_metric") is None
    c.name = metric.replace("_", " ") + (" (standardised targets)" if old_units else "")
    known = metric != "rmse"  # the model knows which way its metric improves: an option saying otherwise is wrong
    if higher_is_better is not None and higher_is_better != known:
        shown = "RMSE" if metric == "rmse" else metric.replace("_", " ")
        raise OptionError(f"--{'higher' if higher_is_better else 'lower'}-is-better: {path} measures its curves in "
                          f"{shown}, which is {'higher' if known else 'lower'} is better; leave the option out (it is "
                          "for history tables, which do not say)")
    c.higher_is_better = known
    c.baseline, c.baseline_note = _metric_baseline(model, metric)
    return c


def _model_history_rows(h: list[dict], fit: dict, path: str) -> list[dict]:
    """A model file's history held to a history table's checks (``_in_epoch_order``: member numbers, and each
    member's epochs 1, 2, ... without a gap or a repeat), and to the networks its ``fit.members`` records: an
    ensemble's history must say which member each row is. Neither was checked: an ensemble's rows without a
    ``member`` key read as one network of their epochs end to end, and an epoch missing or repeated shifted the
    curve without a word. A DataError names the file; the rows come back in (member, epoch) order."""
    recorded = [m.get(MEMBER) for m in fit.get("members") or [] if isinstance(m, dict)]
    damaged = "the file was edited or damaged"
    groups = split_members(h, path)
    if len(recorded) > 1 and groups is None:
        raise DataError(f"{path}: the model records {len(recorded)} ensemble members but its history has no "
                        f"{MEMBER!r} for its rows, so its {len(h)} rows cannot be told apart into the members' curves "
                        f"(read as one network they would run {len(h)} epochs end to end); {damaged}")
    known = {m for m in recorded if isinstance(m, int)}
    stray = sorted({m for m, _ in groups or []} - known) if known else []
    if stray:
        raise DataError(f"{path}: the model's history has rows of member {stray[0]}, which is not one of its "
                        f"{len(known)} recorded members ({', '.join(map(str, sorted(known)))}); {damaged}")
    try:
        return _in_epoch_order(h, path)
    except DataError as exc:  # "numbered from 1 (as train --history writes it)": said of a table, which may be edited
        said = str(exc).split("; diagnose reads", 1)[0].replace("(data row", "(row")
        raise DataError(f"{said} of the model's history; {damaged}") from None


def _metric_baseline(model, metric: str) -> tuple[float | None, str | None]:
    """The no-skill value of the per-epoch metric: balanced accuracy 1/K over the validation
    classes (0.5 per label for multi-label); RMSE of the mean from the MSE baseline."""
    if metric == "balanced_accuracy":
        if model.task == "multilabel":
            return 0.5, "balanced accuracy of a constant prediction"
        present = [k for k, v in (model.split or {}).get("class_counts_val", {}).items() if v]
        k = len(present) or len(model.classes)
        return (1.0 / k, f"balanced accuracy of a constant prediction (1/{k})") if k >= 2 else (None, None)
    if metric == "rmse" and (model.baseline or {}).get("val_metric") is not None:
        # RMSE in the target's units, as the history holds it (older model files: in standardised units, below)
        return float(model.baseline["val_metric"]), "RMSE of predicting the training mean"
    base = (model.baseline or {}).get("val_loss")
    if metric == "rmse" and model.loss.get("name") == "mse" and base is not None:
        # MSE per sample is 1/2 sum_k r^2, so the RMSE over all k outputs is sqrt(2 MSE / k)
        return math.sqrt(2.0 * base / max(1, model.network.n_outputs)), "RMSE of predicting the training mean"
    return None, None


def _curves_from_table(path: str, curves: str, higher_is_better: bool | None, stdin=None) -> Curves:
    """stdin: the bytes of standard input or of the pipe ``path``, already read (``_curves_from_stream``)."""
    from . import data

    source = "standard input" if path == "-" else path
    if stdin is None:
        frame = _read_frame(path)
    else:
        try:
            frame = data.read_table("-", stdin=stdin)
        except DataError as exc:  # the reader calls what it reads standard input; a pipe has its own name
            raise DataError(str(exc).replace("standard input", source)) from None
    stripped = [str(c).strip() for c in frame.columns]  # " train_loss" (a space after a comma) is train_loss
    if len(set(stripped)) == len(stripped):
        frame.columns = stripped
    tk, vk = CURVE_COLUMNS[curves]
    keras = curves == "loss" and tk not in frame.columns and {"loss", vk} <= set(frame.columns)
    if keras:  # Keras's CSVLogger writes epoch,loss,val_loss: its "loss" is the training loss
        frame = frame.rename(columns={"loss": tk})
    missing = [k for k in (tk, vk) if k not in frame.columns]
    if missing:
        flag = "" if curves == "loss" else " with --metric metric"
        data_like = len(frame.columns) > 20 and "epoch" not in frame.columns  # a samples x features table
        hint = (f"; it looks like the data itself: diagnose --learning-curve {shlex.quote(str(source))} trains at "
                "several sizes"
                if data_like and path != "-" else "")
        raise DataError(f"{source} has no {' or '.join(repr(m) for m in missing)} column; diagnose{flag} needs "
                        f"{tk} and {vk} (columns present: {', '.join(repr(str(c)) for c in frame.columns[:12])}"
                        f"{' ...' if len(frame.columns) > 12 else ''}){hint}")
    for name in (MEMBER, "epoch", tk, vk, "train_loss_eval"):
        if name in frame.columns:
            _check_numeric(frame, name, source)
    rows = _in_epoch_order(_rows(frame), source)
    _check_curve_values(rows, (tk, vk, "train_loss_eval"), source, "divide the curve columns by a constant (the "
                        "verdict does not depend on their scale)")
    c = curves_from_history(rows, curves, source=source)
    if curves == "loss":  # a loss (log loss, squared error) is never below 0: a hand-edited cell, or a score column
        for name in (tk, vk):
            values = [(_num(r.get(name)), r) for r in rows]
            negative = [(v, r) for v, r in values if math.isfinite(v) and v < 0]
            if negative:
                v, r = negative[0]
                c.notes.append(f"{source}: {name} holds {len(negative)} negative value{'s' * (len(negative) > 1)} "
                               f"({v:g} at epoch {r.get('epoch', '?')}), which no loss takes: a cell edited by hand, "
                               "or a column of scores?")
    if rows and "epoch" in rows[0] and min(_num(r["epoch"]) for r in rows) == 0:
        c.notes.append(f"{source}: epochs are numbered from 0 (as Keras writes them); diagnose numbers them from 1, "
                       "so its epoch k is the table's epoch k - 1")
    if keras:
        c.notes.append(f"{source}: read the column 'loss' as the training loss (train_loss), as Keras's CSVLogger "
                       "writes it")
    if {"best_epoch", "seconds"} <= set(frame.columns) and "lr" not in frame.columns:
        _per_iteration(c)  # train --history of an L-BFGS run: the one kind of mlpcli history without an lr column
    if curves == "metric":
        losses = None
        if higher_is_better is None and set(CURVE_COLUMNS["loss"]) <= set(frame.columns):
            try:  # the loss columns beside the metric's: a loss falls as a score rises
                losses = curves_from_history(rows, "loss", source=source)
            except DataError:
                losses = None
        c.higher_is_better = _infer_higher(c, higher_is_better, losses)
    return c


def _note_shifted_members(c: Curves, members: list) -> None:
    """A note naming the networks whose held-out rows differed from their training rows as a new cohort's would
    (``fit.members[].held_out_shifted`` above the shift check's share): their validation curves rise with the
    shift, which reads as overfitting and is not cured by regularisation."""
    from .predict.shift import SHIFT_FRACTION

    shifted = [(m.get(MEMBER, 1), m["held_out_shifted"]) for m in members if isinstance(m, dict)
               and isinstance(m.get("held_out_shifted"), (int, float)) and m["held_out_shifted"] > SHIFT_FRACTION]
    if not shifted:
        return
    who = (", ".join(f"member {k} ({share:.0%} of the features)" for k, share in shifted) if len(members) > 1
           else f"the validation rows ({shifted[0][1]:.0%} of the features)")
    c.notes.append(f"held-out rows that differ from the training rows as a new cohort's would: {who} beyond 1 "
                   "training SD in mean — a batch or site confined to them makes a validation curve rise as "
                   "overfitting does, and regularisation does not cure it")
    c.held_out_shift = who


def _per_iteration(c: Curves) -> None:
    """Mark curves as one point per L-BFGS iteration (full batch; the last weights kept)."""
    c.step = "iteration"
    c.notes.append("the curves are per L-BFGS iteration (full batch): read 'epoch' in the verdict and its "
                   "evidence as 'iteration'")


def _in_epoch_order(rows: list[dict], source: str) -> list[dict]:
    """A table's rows sorted by (member, epoch) when it has an ``epoch`` column (a curve is read by position:
    a table sorted another way, by a spreadsheet or a shell pipe, must still give the first epoch first). Each
    member's epochs must be 1, 2, ... (``train --history``) or 0, 1, ... (Keras) without a gap or a repeat: a
    DataError names the first that is not."""
    if not rows or "epoch" not in rows[0]:
        return rows
    split_members(rows, source)  # the member numbers are checked first (the rows' own order names a bad one)
    member = (lambda r: _num(r[MEMBER])) if MEMBER in rows[0] else (lambda r: 0.0)
    at = {id(r): i + 1 for i, r in enumerate(rows)}  # data row numbers, for the error
    ordered = sorted(rows, key=lambda r: (member(r), _num(r["epoch"])))  # stable: ties keep their order
    expected, last_member = 1, None
    for r in ordered:
        m, epoch = member(r), _num(r["epoch"])
        if m != last_member:
            expected, last_member = (0 if epoch == 0 else 1), m
        if epoch != expected:
            whose = f" of member {r[MEMBER]}" if MEMBER in r else ""
            problem = "appears twice" if epoch == expected - 1 else f"comes where epoch {expected} should"
            # the missing epoch under another member number (a row edited by hand): name that row, not this one
            elsewhere = [x for x in rows if MEMBER in x and member(x) != m and _num(x["epoch"]) == expected
                         and sum(member(y) == member(x) for y in rows) == 1]
            hint = (f" (data row {at[id(elsewhere[0])]} has epoch {expected} under member {elsewhere[0][MEMBER]}, "
                    "a member of one row)" if elsewhere and problem != "appears twice" else "")
            raise DataError(f"{source}: epoch {r['epoch']}{whose} {problem} (data row {at[id(r)]}){hint}; diagnose "
                            "reads a curve of every epoch, numbered from 1 (as train --history writes it) or from 0 "
                            "(as Keras does)")
        expected += 1
    return ordered


def _check_curve_values(rows: list[dict], names: Sequence[str], source: str, remedy: str) -> None:
    """A curve value beyond MAX_CURVE_VALUE is a DataError naming the column and epoch, whether the curves come from a
    history table or a model file: the rules square deviations, which overflow to inf beyond ~1e154, and the run read
    "noisy, n/a of its level" with exit 0 (a model file's history was not checked at all). ``remedy`` ends the
    message."""
    for name in names:
        huge = next(((v, r) for v, r in ((_num(r.get(name)), r) for r in rows)
                     if math.isfinite(v) and abs(v) > MAX_CURVE_VALUE), None)
        if huge is not None:
            raise DataError(f"{source}: {name} holds {huge[0]:g} at epoch {huge[1].get('epoch', '?')}, beyond "
                            f"{MAX_CURVE_VALUE:g}, the largest value diagnose's arithmetic takes; {remedy}")


def _check_numeric(frame, name: str, path: str) -> None:
    """A curve column holding text is an error naming the value and its row (not a silent NaN)."""
    import pandas as pd

    bad = pd.to_numeric(frame[name], errors="coerce").isna() & frame[name].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column {name!r} holds a non-numeric value {frame[name].iloc[i]!r} "
                        f"(data row {i + 1})")


def _against_loss(metric: Sequence[float], loss: Sequence[float]) -> float | None:
    """The correlation over epochs of a metric's curve with the loss's (NaN epochs left out); None where either is
    flat or fewer than 3 epochs have both."""
    m, l_ = np.asarray(metric, dtype=float), np.asarray(loss, dtype=float)
    n = min(len(m), len(l_))
    m, l_ = m[:n], l_[:n]
    keep = np.isfinite(m) & np.isfinite(l_)
    if keep.sum() < 3 or np.ptp(m[keep]) == 0 or np.ptp(l_[keep]) == 0:
        return None
    return float(np.corrcoef(m[keep], l_[keep])[0, 1])


def _infer_higher(c: Curves, given: bool | None, losses: Curves | None = None) -> bool:
    """With the loss curves of the same run (``losses``), a metric that moves against the loss is higher-is-better
    and one that moves with it lower-is-better (their correlations over the epochs, training's and validation's
    added). Else a score in [0, 1] whose curves rise (accuracy, AUROC) is higher-is-better, and anything else an
    error such as RMSE: a training score pinned near 1 from the first epoch left the falling validation curve to
    decide, and an overfitting run read as an underfit one. Said in the notes, with the flag that overrides it."""
    if given is not None:
        return given
    if losses is not None:
        r = [v for v in (_against_loss(c.train, losses.train), _against_loss(c.val, losses.val)) if v is not None]
        if r and abs(sum(r)) > 0.5:
            higher = sum(r) < 0
            c.notes.append(f"--metric metric: reading {'higher' if higher else 'lower'} values as better (the metric "
                           f"moves {'against' if higher else 'with'} the loss columns of the same epochs); pass "
                           f"--{'lower' if higher else 'higher'}-is-better if that is wrong")
            return higher
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
