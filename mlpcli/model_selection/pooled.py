"""The pooled out-of-fold estimate of the main metric and its bootstrap interval, resampling patients.

Cross-validation scores every sample once per repeat, by a model that never saw its patient. Pooling those
out-of-fold predictions gives one estimate over all samples (what a paper reports: "balanced accuracy 0.87,
95 % CI 0.83–0.91"), steadier than the mean of a few small folds, and its percentile bootstrap interval says
how far it could move with other patients of the same kind. Resampling draws whole patients (``--group``)
with replacement, since several samples of one patient are one piece of evidence; without a patient column,
samples. The interval is of the estimate given the trained models: it does not include the variation of
retraining them on other data (the folds' SD speaks to that).

The main metrics are computed from per-patient counts, so a resample costs a matrix product, not a pass of
scikit-learn's checks (30 ms a call): with U patients and multiplicities M (B, U) of B resamples,

    balanced accuracy   (binary, multiclass)  mean over the classes present of  (M H)_c / (M N)_c
                        (multi-label) mean over labels of the mean of the positives' and negatives' recall
    RMSE                (regression)          sqrt( (M S) / (M C) )

with N_uc the samples of patient u in class c, H_uc those predicted c, S_u the squared errors (every target:
pooled, as ``metrics.compute`` pools them) and C_u their count. Predictions are as ``metrics.compute`` makes
them (by default: the top class, a binary positive at probability >= 0.5, each label at >= 0.5), or the labels the
models' decision rules gave.
"""

from __future__ import annotations

import warnings

from dataclasses import dataclass

import numpy as np

from .. import metrics
from ..metrics_resampled import unit_multiplicities

__all__ = ["DEFAULT_RESAMPLES", "PooledEstimate", "pooled_estimate"]

DEFAULT_RESAMPLES = 2000
# Unit draws in all (resamples x units): beyond 10,000 units fewer resamples, at least MIN_RESAMPLES, keep the cost
# near a second (100,000 cells: 6 s for 2,000 resamples). With that many units the interval is narrow and close to
# normal, and 200 resamples place its ends well within its width.
MAX_DRAWS = 20_000_000
MIN_RESAMPLES = 200
_DRAWS_PER_BATCH = 4_000_000  # unit draws held at a time (resamples x units): 32 MB of int64


@dataclass
class PooledEstimate:
    """The main metric on the pooled out-of-fold predictions (the mean over repeats), its percentile
    bootstrap interval, and what it rests on."""

    metric: str
    value: float | None  # None when undefined (no class has a sample in a resample's sense: never in practice)
    ci: list[float] | None  # [low, high] at ``level``; None when fewer than 2 units or too few resamples defined
    level: float
    resamples: int
    units: str  # "patients" or "samples": what a resample draws
    n_units: int
    n: int  # samples scored (per repeat)

    def to_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "ci": self.ci, "level": self.level,
                "resamples": self.resamples, "units": self.units, "n_units": self.n_units, "n": self.n}


def _unit_counts(task: str, y: np.ndarray, proba: np.ndarray, unit: np.ndarray, n_units: int,
                 n_classes: int, pred: np.ndarray | None = None) -> np.ndarray:
    """(U, m) per-unit counts the metric is a function of (see the module docstring), for one repeat's rows;
    ``pred`` (m,) the classes the models gave them, (m, L) a multi-label model's 0/1 calls (None:
    ``metrics.predicted_class`` of the probabilities)."""
    if task == "regression":
        Y = np.asarray(y, dtype=np.float64).reshape(proba.shape)
        S = np.bincount(unit, weights=((proba - Y) ** 2).sum(axis=1), minlength=n_units)
        C = np.bincount(unit, minlength=n_units).astype(np.float64) * proba.shape[1]
        return np.stack([S, C], axis=1)
    if task == "multilabel":
        Y = np.asarray(y).reshape(proba.shape).astype(bool)
        pred = proba >= 0.5 if pred is None else np.asarray(pred).reshape(proba.shape).astype(bool)
        parts = [Y, Y & pred, ~Y, ~Y & ~pred]  # positives, those called positive, negatives, called negative
        return np.concatenate([np.stack([np.bincount(unit, weights=p[:, j], minlength=n_units) for j in range(p.shape[1])],
                                        axis=1) for p in parts], axis=1)
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    P = metrics.as_task_proba(task, proba)
    pred = metrics.predicted_class(task, P) if pred is None else np.asarray(pred, dtype=np.int64)
    index = unit * n_classes + y
    N = np.bincount(index, minlength=n_units * n_classes).reshape(n_units, n_classes)
    H = np.bincount(index[pred == y], minlength=n_units * n_classes).reshape(n_units, n_classes)
    return np.concatenate([N, H], axis=1).astype(np.float64)


def _metric_of(task: str, totals: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """The main metric (...,) from summed counts (..., m) (``_unit_counts``'s columns). ``labels`` (L,) bool
    (multi-label): the labels to average, each of which must have both values in the counts (a resample lacking
    one of them is NaN, left out of the interval, as ``evaluate --bootstrap`` leaves it out); None: those that do."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if task == "regression":
            return np.sqrt(totals[..., 0] / totals[..., 1])
        if task == "multilabel":
            L = totals.shape[-1] // 4
            pos, tp, neg, tn = (totals[..., i * L:(i + 1) * L] for i in range(4))
            recalls = np.stack([tp / pos, tn / neg], axis=-1)  # NaN where the label has no positive (negative)
            # a label with one value among the rows has no balanced accuracy (``decision.label_balanced_accuracy``)
            per_label = np.where(np.isfinite(recalls).all(axis=-1), recalls.mean(axis=-1), np.nan)
            if labels is not None:
                # the mean over fewer labels is another figure: a label of one patient's samples, missing from a
                # third of the resamples, stretched the interval of 0.814 to 0.979 where the others gave 0.818
                return per_label[..., labels].mean(axis=-1) if labels.any() else np.full(per_label.shape[:-1], np.nan)
            with warnings.catch_warnings():  # (no label with both values: NaN)
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(per_label, axis=-1)
        k = totals.shape[-1] // 2
        N, H = totals[..., :k], totals[..., k:]
        recall = np.where(N > 0, H / np.where(N > 0, N, 1.0), np.nan)
        return np.nanmean(recall, axis=-1)


def _labels_defined(task: str, counts: list[np.ndarray]) -> np.ndarray | None:
    """(L,) bool for multi-label: the labels with both values among the rows of every repeat (the labels the
    estimate averages, which each resample must hold too); None for the other tasks."""
    if task != "multilabel":
        return None
    both = None
    for c in counts:
        totals = c.sum(axis=0)
        L = totals.shape[-1] // 4
        here = (totals[:L] > 0) & (totals[2 * L:3 * L] > 0)
        both = here if both is None else both & here
    return both


def pooled_estimate(task: str, y: np.ndarray, repeats: list[tuple[np.ndarray, np.ndarray]], n_classes: int,
                    groups: np.ndarray | None = None, resamples: int = DEFAULT_RESAMPLES, level: float = 0.95,
                    seed: int = 0, predicted: list[np.ndarray] | None = None) -> PooledEstimate:
    """The pooled out-of-fold main metric of ``task`` and its bootstrap interval.

    y: (n, ...) the truth of every sample (class indices; (n, L) 0/1 labels; (n, T) values). ``repeats``: per
    repeat, (rows (m,), proba (m, k)) of the samples it scored, as ``Model.predict_output`` gives them; each
    repeat is scored alone and the estimate is their mean (``predicted``: per repeat, the classes (m,) the models
    gave those rows by their decision rules, (m, L) 0/1 for multi-label; None: the most probable, P >= 0.5 for binary
    and each label), every resample applying the same patients to every
    repeat. ``groups`` (n,): each sample's patient, the unit a resample draws (None: samples). Beyond 10,000
    units, fewer resamples (``MAX_DRAWS``; at least ``MIN_RESAMPLES``): the estimate says how many it drew."""
    if not repeats:
        raise ValueError("no out-of-fold predictions to pool")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    rows_all = np.unique(np.concatenate([r for r, _ in repeats]))
    if groups is not None:
        _, unit_of = np.unique(np.asarray(groups, dtype=str)[rows_all], return_inverse=True)
    else:
        unit_of = np.arange(len(rows_all))
    n_units = int(unit_of.max()) + 1
    position = np.full(len(y), -1, dtype=np.int64)
    position[rows_all] = unit_of.reshape(-1)
    y = np.asarray(y)
    predicted = predicted if predicted is not None else [None] * len(repeats)
    counts = [_unit_counts(task, y[rows], np.asarray(P, dtype=np.float64), position[rows], n_units, n_classes, pred)
              for (rows, P), pred in zip(repeats, predicted)]
    value = float(np.mean([_metric_of(task, c.sum(axis=0)) for c in counts]))
    labels = _labels_defined(task, counts)
    metric = metrics.main_metric_name(task)
    ci = None
    resamples = int(min(resamples, max(MIN_RESAMPLES, MAX_DRAWS // n_units)))
    if n_units >= 2 and resamples >= 2:
        rng = np.random.default_rng([int(seed), 0x9001])
        draws = []
        per = max(1, _DRAWS_PER_BATCH // n_units)
        for start in range(0, resamples, per):
            b = min(per, resamples - start)
            picks = rng.integers(0, n_units, size=(b, n_units))
            M = unit_multiplicities(picks, n_units)  # (b, U)
            draws.append(np.mean([_metric_of(task, M @ c, labels) for c in counts], axis=0))
        draws = np.concatenate(draws)
        ok = draws[np.isfinite(draws)]
        if len(ok) >= 0.5 * resamples:
            alpha = (1 - level) / 2
            lo, hi = np.percentile(ok, [100 * alpha, 100 * (1 - alpha)])
            ci = [float(lo), float(hi)]
    return PooledEstimate(metric, value if np.isfinite(value) else None, ci, level, int(resamples),
                          "patients" if groups is not None else "samples", n_units, int(len(rows_all)))
