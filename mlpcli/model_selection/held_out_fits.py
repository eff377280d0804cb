"""What the shipped model learns from the held-out rows once its networks are fitted: the temperature (fitted on
the out-of-fold logits, with the classes whose probabilities add up far from their counts), the prediction sets'
conformity scores and the out-of-distribution basis (``store_trust``), from rows prepared once (``PreparedRows``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import allocator, data
from ..calibration import (MIN_LABEL_EVENTS, Calibration, bound_note, calibration_report, fit_temperature,
                           temperature_words)
from ..config import TrainOptions, flag_name
from ..model_io import Model
from ..background import beside
from ..text import count_of
from .fitting import FittedRun


def calibrate_on_held_out(model: Model, logits: np.ndarray, scored: data.Dataset, options: TrainOptions,
               notes: list[str], warnings: list[str]) -> Calibration | None:
    """Fit the temperature on held-out logits and set it on the model (classification only); ``warnings`` gets
    the classes whose held-out probabilities add up far from their counts (``class_totals_warning``)."""
    from ..calibration import MIN_ROWS

    link = model.output_activation()
    if link not in ("softmax", "sigmoid"):
        return None
    calibration = None
    if not options.calibrate:
        pass
    elif scored.n_samples < MIN_ROWS:
        notes.append(f"not calibrated: {scored.n_samples} held-out rows are too few to fit a temperature that "
                     f"helps on new samples (it needs {MIN_ROWS})")
    else:
        calibration = _fit_calibration(model, logits, scored, link, notes)
    if scored.task in ("binary", "multiclass"):
        warnings += class_totals_warning(model, logits, scored, link, options)
    return calibration


def class_totals_warning(model: Model, logits: np.ndarray, scored: data.Dataset, link: str,
                         options: TrainOptions) -> list[str]:
    """A warning naming the classes whose held-out probabilities (at the model's temperature) add up far from
    their counts (``calibration.class_totals_off``), with the cause: the class weights, the one temperature (when
    the uncalibrated ones were near), or the networks' own probabilities."""
    from ..calibration import CLASS_TOTAL_FACTOR, class_totals_off

    off = class_totals_off(logits, scored.y, link, model.temperature)
    if not off:
        return []
    n = scored.n_samples
    parts = [f"{str(model.classes[t.index])!r} add up to {t.expected:.3g} where {t.observed} of the {n} held-out "
             f"samples are of it ({t.ratio:.2g} x)" for t in off[:3]]
    more = f" (and {len(off) - 3} more classes)" if len(off) > 3 else ""
    before_near = all(1 / CLASS_TOTAL_FACTOR <= t.before / t.observed <= CLASS_TOTAL_FACTOR for t in off)
    given = options.to_dict()
    weights = [f"{flag_name(name)} {given[name]:g}" if isinstance(given[name], float) else
               f"{flag_name(name)} {given[name]}" for name in ("class_weight", "pos_weight")
               if given[name] not in (None, "none", 1.0, 1)]
    if weights:
        why = (f"{' and '.join(weights)} weigh{'s' * (len(weights) == 1)} the classes in the loss, which moves their "
               "probabilities on purpose: read them as scores, not as each class's chances (the labels allow for "
               "the weights)")
    elif model.temperature is not None and before_near:
        before = ", ".join(f"{t.before:.3g} ({t.before / t.observed:.2g} x)" for t in off[:3])
        why = (f"the temperature {model.temperature:.3g}, fitted for all classes together, moved them there from "
               f"{before}: --no-calibrate keeps the networks' probabilities, which matched the counts")
    else:
        low = all(t.ratio < 1 for t in off)
        why = (f"the probabilities {'understate' if low else 'overstate' if all(t.ratio > 1 for t in off) else 'misstate'}"
               " these classes' chances; check their recall (evaluate's per-class table) before trusting their "
               "probabilities")
    return [f"the held-out probabilities of {'; '.join(parts)}{more}: {why}"]


def _fit_calibration(model: Model, logits: np.ndarray, scored: data.Dataset, link: str,
                     notes: list[str]) -> Calibration:
    y = scored.y
    T = fit_temperature(logits, y, link)  # a multi-label model's: one per label
    model.temperature = T
    report = calibration_report(logits, y, link, T)
    labels = list(model.classes)
    notes.append(f"calibrated: temperature {temperature_words(T, labels)} fitted on {report.n} held-out rows; log loss "
                 f"{report.log_loss_before:.3f} → {report.log_loss_after:.3f}, ECE {report.ece_before:.3f} → "
                 f"{report.ece_after:.3f}")
    if np.ndim(T) == 1 and (np.asarray(T) == 1.0).any():
        few = [str(labels[j]) for j in np.flatnonzero(np.asarray(T) == 1.0)]
        notes.append(f"not calibrated: label{'s' * (len(few) > 1)} {', '.join(map(repr, few[:5]))}"
                     f"{f' and {len(few) - 5} more' if len(few) > 5 else ''}: fewer than {MIN_LABEL_EVENTS} held-out "
                     "positives or negatives to fit a temperature on (the networks' own probabilities)")
    at_bound = bound_note(T, report.log_loss_after, labels)
    if at_bound is not None:
        notes.append(f"the temperature is at {at_bound}" if np.ndim(T) == 0 else f"temperatures: {at_bound}")
    return report


@dataclass
class PreparedRows:
    """The rows ``store_trust`` reads, taken from a hold-out fit's preprocessed matrices instead of transformed
    again (0.14-0.19 s at 6,400 x 5,000), in the training dtype: with float32 training the bases see the rows'
    float32 values, as the network did. ``rows`` of the training table (``ood.sample_rows``'s, the training
    rows first) are ``Z``'s; with ``--val-data``, ``held`` of the other table are ``Z_held``'s. When every held-out
    row is scored (``ood.streams_held_out``), ``X_val`` keeps the validation matrix (rows ``val_rows`` of the
    training table; None: the other table's, in order)."""

    preprocessor: object
    rows: np.ndarray  # (m,)
    Z: np.ndarray  # (m, d_kept)
    held: np.ndarray | None = None  # (m_held,)
    Z_held: np.ndarray | None = None  # (m_held, d_kept)
    X_val: np.ndarray | None = None  # (n_val, d_kept)
    val_rows: np.ndarray | None = None  # (n_val,) sorted

    @classmethod
    def gather(cls, ds: data.Dataset, run: FittedRun, split: tuple[np.ndarray, np.ndarray] | None,
               seed: int) -> "PreparedRows | None":
        """From ``run``'s matrices (dense only), which it gives away: the sampled rows are moved to the front of
        its training matrix in place, so that no copy of them is made beside it (a copy raised the run's peak by
        its 48 MB at 8,000 x 5,000). Its training rows are ``split[0]`` of ``ds`` and its validation rows
        ``split[1]``, or (split None: ``--val-data``) every row of ``ds`` and the other table's."""
        from .. import ood

        X_train, X_val = run.X_train, run.X_val
        if ds.task not in ("binary", "multiclass") or not isinstance(X_train, np.ndarray) \
                or not isinstance(X_val, np.ndarray):
            return None
        p = X_train.shape[1]
        sample = ood.sample_rows(ds.n_samples, p, seed)
        if split is None:
            out = cls(run.preprocessor, sample, _rows_to_front(X_train, sample))
            if ood.streams_held_out(X_val.shape[0], p):
                out.X_val = X_val
            else:
                out.held = ood.sample_rows(X_val.shape[0], p, seed)
                out.Z_held = _rows_to_front(X_val, out.held)
            return out
        train_rows, val_rows = split
        at = _positions(train_rows, sample)
        sampled_val = sample[at < 0]
        Z = _rows_to_front(X_train, at[at >= 0], X_val[_positions(val_rows, sampled_val)])
        out = cls(run.preprocessor, np.concatenate([sample[at >= 0], sampled_val]), Z)
        if ood.streams_held_out(ds.n_samples, p):
            out.X_val, out.val_rows = X_val, np.asarray(val_rows)
        return out

    def held_out(self, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` of the held-out table (with a hold-out, validation rows of the training table) when every
        held-out row is scored, (len(idx), d_kept)."""
        return self.X_val[idx if self.val_rows is None else _positions(self.val_rows, idx)]


def _positions(rows: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each of ``wanted`` its position in the sorted ``rows``, -1 where absent."""
    at = np.searchsorted(rows, wanted)
    inside = at < len(rows)
    found = np.zeros(len(wanted), dtype=bool)
    found[inside] = rows[at[inside]] == wanted[inside]
    return np.where(found, at, -1)


def _rows_to_front(X: np.ndarray, at: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """X[at] followed by the rows of ``extra``, written over X's first rows in place when they fit (X is the
    caller's to give away), else a new array. ``at`` sorted and distinct, so at[k] >= k: each row moves up or
    stays, and a block's sources lie at or after its own place, past every row written before."""
    m = len(at) + (0 if extra is None else len(extra))
    if m > X.shape[0]:
        out = np.empty((m, X.shape[1]), dtype=X.dtype)
        out[:len(at)] = X[at]
        if extra is not None:
            out[len(at):] = extra
        return out
    for j in range(0, len(at), 256):
        block = at[j:j + 256]
        X[j:j + len(block)] = X[block]  # the block's sources copied out before they are written
    if extra is not None:
        X[len(at):m] = extra
    return X[:m]


def store_trust(model: Model, ds: data.Dataset, logits: np.ndarray, scored: data.Dataset, member: np.ndarray,
                 source: str, parts: list[tuple[np.ndarray, np.ndarray]], seed: int, notes: list[str],
                 val_ds: data.Dataset | None = None, prepared: PreparedRows | None = None) -> None:
    """Give a classification model what its prediction sets and out-of-distribution flags need: the
    held-out conformity scores of the rows ``scored`` (raw outputs ``logits`` of the members ``member``, at
    the model's temperature; ``conformal``) and nearest-neighbour distances (absolute and relative to each
    class's spread) calibrated on held-out rows (``ood``):
    ``parts`` are (training, held-out) row indices of ``ds``, or, with ``val_ds`` (``--val-data``), the
    held-out rows are that table's. With a patient column both count each held-out patient once (the
    conformal weights; ``ood.calibrate``'s groups), so the guarantees are for a new patient's sample."""
    from .. import conformal, ood

    if ds.task not in ("binary", "multiclass") or scored.n_samples == 0:
        return
    model.conformal = conformal.calibrate(logits, scored.y, member, scored.groups, model.output_activation(),
                                          model.temperature, source, seed)
    pre = model.preprocessor
    n_features = len(pre.kept_features)
    allocator.return_freed()  # the members' training buffers, before the OOD rows are transformed (library use)
    if prepared is not None and prepared.preprocessor is not pre:  # a candidate with preprocessing of its own
        prepared = None
    if prepared is not None:
        rows, Z = prepared.rows, prepared.Z
    else:
        rows = ood.sample_rows(ds.n_samples, n_features, seed)
        Z = pre.transform(ds.subset(rows).X, order="C")  # row-major: the fits gather rows of it
    position = np.full(ds.n_samples, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    Z_held = None
    held_table = ds if val_ds is None else val_ds
    if ood.streams_held_out(held_table.n_samples, n_features):
        # wide rows: every held-out row scored from the table a block at a time, not the sample's few
        Z_held = ood.RowSource(held_table.n_samples, prepared.held_out if prepared is not None else
                               lambda idx: pre.transform(held_table.subset(idx).X, order="C"))
        groups = held_table.groups
        if val_ds is not None:
            sub_parts = [(np.arange(len(rows)), np.arange(val_ds.n_samples))]
        else:
            sub_parts = [(position[tr][position[tr] >= 0], np.asarray(te)) for tr, te in parts]
    elif val_ds is not None:
        if prepared is not None:
            held, Z_held = prepared.held, prepared.Z_held
        else:
            held = ood.sample_rows(val_ds.n_samples, n_features, seed)
            Z_held = pre.transform(val_ds.subset(held).X, order="C")
        sub_parts = [(np.arange(len(rows)), np.arange(len(held)))]
        groups = None if val_ds.groups is None else val_ds.groups[held]
    else:
        sub_parts = [(position[tr][position[tr] >= 0], position[te][position[te] >= 0]) for tr, te in parts]
        groups = None if ds.groups is None else ds.groups[rows]
    # the bases (on all rows, on each part's training rows) are fitted two at a time, here and on a second core;
    # each held-out patient counts once (``ood.calibrate``), as in the prediction sets
    model.ood = ood.calibrate(Z, sub_parts, seed, Z_held=Z_held, labels=ds.y[rows], n_classes=len(ds.classes),
                              start=beside, groups=groups)
    model.ood.streamed = isinstance(Z_held, ood.RowSource)
    cal = model.conformal
    # the patients of every held-out row (the stored weights sum to those of a subsample beyond MAX_ROWS rows)
    patients = f" of {count_of(len(np.unique(scored.groups)), 'patient')}" if np.any(cal.weight < 1) else ""
    notes.append(f"prediction sets (predict --coverage): {count_of(cal.n, 'held-out score')}{patients} stored; "
                 f"out-of-distribution flags (predict --ood): nearest-neighbour distances to "
                 f"{count_of(len(model.ood.reference), 'training row')} "
                 f"calibrated on {_ood_calibration_words(model.ood, sub_parts)}")


def _ood_calibration_words(basis, parts: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """What the out-of-distribution p-values count, for train's note: the held-out rows, or, when they were
    weighted by patient (``ood.calibrate``), the rows and the patients they count as."""
    n_held = sum(len(held) for train, held in parts if len(train) and len(held))
    if not basis.weighted:
        return count_of(len(basis.calibration), "held-out row")
    return (f"{count_of(n_held, 'held-out row')} of {count_of(len(basis.calibration), 'patient')} (each patient "
            "counted once)")
