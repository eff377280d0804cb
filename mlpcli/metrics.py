"""Metric sets per task, by scikit-learn's definitions. A classifier's are computed here in NumPy — the label-based
figures from one count of the confusion matrix (``confusion_scores``), AUC and average precision from ranks — as
scikit-learn's functions checked their inputs again for each figure (23-30 ms a set, a third of a small run) and
importing them cost 1-2 s; tests/test_numerics_match_scikit_learn_and_scipy.py holds every figure to scikit-learn's
function; a regression's R² and correlations likewise (scikit-learn's r2_score, scipy's pearsonr and spearmanr).

``y`` follows the Dataset convention: class indices (n,) for binary and multiclass, 0/1 columns
(n, k) for multi-label, values (n, k) for regression. ``proba`` is what ``Model.predict_output``
returns: P(class) columns (n, K) for multiclass, P(positive) (n, 1) for binary, per-label
probabilities for multi-label, predictions for regression.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .decision import balanced_accuracy as _balanced_accuracy
from .decision import label_balanced_accuracy
from .decision import predicted_class  # noqa: F401  (metrics.predicted_class: the one rule)
from .decision import threshold_field
from .distributions import Z_95


__all__ = ["main_metric_name", "main_metric_from_outputs", "compute", "expected_calibration_error", "MAIN_METRIC",
           "HEADLINE_METRICS", "LOWER_IS_BETTER", "higher_is_better", "as_task_proba", "class_proba", "display_name",
           "threshold_counts", "net_benefit", "operating_points", "at_target", "calibration_curve"]

MAIN_METRIC = {"binary": "balanced_accuracy", "multiclass": "balanced_accuracy",
               "multilabel": "balanced_accuracy", "regression": "rmse"}
_EPS = np.finfo(np.float64).eps  # scikit-learn's log_loss clips probabilities to [eps, 1 - eps]
ECE_BINS = 15  # equal-width bins, as Guo et al. (2017) report ECE, so figures compare with the literature

# The metrics shown in tables (train's summary, cv's folds); every scalar metric goes to --json.
HEADLINE_METRICS = {
    "binary": ["balanced_accuracy", "roc_auc", "f1", "mcc", "log_loss"],
    "multiclass": ["balanced_accuracy", "accuracy", "f1_macro", "roc_auc_ovr", "log_loss"],
    "multilabel": ["balanced_accuracy", "f1_macro", "hamming_loss", "log_loss"],  # BCE averaged over labels
    "regression": ["rmse", "mae", "r2", "pearson_r"],
}
LOWER_IS_BETTER = frozenset({"rmse", "mse", "mae", "log_loss", "hamming_loss", "brier", "ece"})

# Metric names for people (table headers, sentences, plot axes), by key: (name, short name for narrow table
# headers). JSON keys stay the keys.
_DISPLAY_NAMES = {
    "balanced_accuracy": ("balanced accuracy", "bal. acc."),
    "roc_auc": ("ROC AUC", "AUC"),
    "roc_auc_ovr": ("ROC AUC (one-vs-rest)", "AUC (ovr)"),
    "average_precision": ("average precision", "AP"),
    "precision": ("precision (PPV)", "PPV"),
    "recall": ("recall (sensitivity)", "sens."),
    "specificity": ("specificity", "spec."),
    "npv": ("NPV", "NPV"),
    "brier_scaled": ("scaled Brier (against the event rate's)", "scaled Brier"),
    "observed_expected": ("observed / expected events", "O/E"),
    "f1": ("F1", "F1"),
    "f1_macro": ("F1 macro", "F1 macro"),
    "f1_micro": ("F1 micro", "F1 micro"),
    "f1_weighted": ("F1 weighted", "F1 weighted"),
    "mcc": ("MCC", "MCC"),
    "brier": ("Brier score", "Brier"),
    "ece": ("ECE (top-label)", "ECE"),
    "hamming_loss": ("Hamming loss", "Hamming"),
    "rmse": ("RMSE", "RMSE"),
    "mse": ("MSE", "MSE"),
    "mae": ("MAE", "MAE"),
    "r2": ("R²", "R²"),
    "pearson_r": ("Pearson r", "Pearson r"),
    "spearman_r": ("Spearman r", "Spearman r"),
}


def display_name(key: str, short: bool = False) -> str:
    """A metric's name for people: "RMSE" for ``rmse``, "F1 macro" for ``f1_macro``, "log loss" for ``log_loss``
    (``short``: the narrow table header, "bal. acc."). Also takes the name with spaces ("balanced accuracy"); any
    other key is shown with its underscores as spaces."""
    names = _DISPLAY_NAMES.get(key.strip().replace(" ", "_"))
    if names is None:
        return key.replace("_", " ")
    return names[1] if short else names[0]


def task_display_name(key: str, task: str | None) -> str:
    """``display_name`` as a model of ``task`` computes the metric: a multi-label model's ECE bins every
    sample-label call (each at max(p, 1 - p)), which is no top-label ECE — there is no ranking of labels."""
    if key == "ece" and task == "multilabel":
        return "ECE (every label call)"
    return display_name(key)


def main_metric_name(task: str) -> str:
    return MAIN_METRIC[task]


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def as_task_proba(task: str, proba: np.ndarray) -> np.ndarray:
    """What ``compute`` takes: binary models with a 2-column softmax (``--loss ce``) give P(positive)
    (n, 1) like sigmoid ones; everything else is unchanged."""
    if task == "binary" and proba.shape[1] == 2:
        return proba[:, 1:2]
    return proba


def class_proba(task: str, proba: np.ndarray) -> np.ndarray:
    """Probabilities one column per class: a binary model's single sigmoid column P(classes[1]) (n, 1)
    becomes (n, 2) [1 - p, p]; everything else is unchanged (the inverse of ``as_task_proba``)."""
    if task == "binary" and proba.shape[1] == 1:
        return np.column_stack([1.0 - proba[:, 0], proba[:, 0]])
    return proba


def main_metric_from_outputs(task: str, n_classes: int, target_sd: np.ndarray | None = None
                             ) -> Callable[[np.ndarray, np.ndarray], float]:
    """The per-epoch metric computed from raw network outputs (logits or values): balanced
    accuracy for classification (threshold 0.5, i.e. logit 0, for sigmoid outputs; mean over labels
    for multi-label), RMSE for regression. ``target_sd`` (n_outputs,): the SDs the regression targets were
    divided by for training; the RMSE is then in the targets' own units, as the summary reports it."""
    sd = None if target_sd is None else np.asarray(target_sd, dtype=np.float64).reshape(1, -1)

    def metric(out: np.ndarray, y: np.ndarray) -> float:
        if task == "regression":
            error = out - y.reshape(out.shape)
            if sd is not None:
                error = error * sd  # (y_std - t_std) * sd = y - t: the mean cancels
            return float(np.sqrt(np.mean(error ** 2)))
        if task == "multilabel":
            return label_balanced_accuracy(y.reshape(out.shape), out > 0)
        pred = (out[:, 0] > 0).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)
        return _balanced_accuracy(y.reshape(-1), pred)

    return metric


def expected_calibration_error(correct: np.ndarray, confidence: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE = sum_b (n_b / n) |accuracy_b - confidence_b| over ``n_bins`` equal-width confidence bins
    [b / n_bins, (b + 1) / n_bins) (the last one closed). The metric sets use it top-label (Guo et al. 2017):
    ``confidence`` is the probability of the class the probabilities rank first (binary: max(p, 1 - p),
    whatever --threshold decides), ``correct`` whether that class is the true one."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if confidence.size == 0:
        return float("nan")
    bins = confidence_bins(confidence, n_bins)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(ece)


def confidence_bins(confidence: np.ndarray, n_bins: int = ECE_BINS) -> np.ndarray:
    """Each confidence's ECE bin (same shape, ints): [b / n_bins, (b + 1) / n_bins), the last one closed."""
    return np.minimum((np.asarray(confidence, dtype=float) * n_bins).astype(int), n_bins - 1)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (scikit-learn's zero_division=np.nan)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def nanmean(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over the defined (non-NaN) entries; NaN where none is (without numpy's warning)."""
    defined = ~np.isnan(a)
    count = defined.sum(axis=axis)
    total = np.where(defined, a, 0.0).sum(axis=axis)
    return ratio(total, count.astype(np.float64))


def confusion_counts(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) int64: rows of true class t called p at [t, p], for class indices y, pred (n,) (scikit-learn's
    confusion_matrix(y, pred, labels=range(k)): a row whose class or call is not in 0..k-1 is not counted)."""
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    inside = (y >= 0) & (y < k) & (pred >= 0) & (pred < k)
    if not inside.all():
        y, pred = y[inside], pred[inside]
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def confusion_scores(C: np.ndarray) -> dict[str, np.ndarray]:
    """The label-based metrics of confusion counts C (B, K, K) (true x called; float or int), each (B,) or per class
    (B, K), NaN where undefined — scikit-learn's definitions, from the counts alone (its functions check their
    inputs again for each metric: ~30 ms a metric set, where these take microseconds; ``metrics_resampled`` gives B
    resamples at once).

    accuracy, balanced_accuracy (the mean recall over the classes present in the truth), mcc (Gorodkin's, 0 where
    a margin is constant, NaN with fewer than two classes true), and per class precision, recall (NaN: never
    called / absent), f1 (2 TP / (true + called): NaN where the class is neither), true and called counts."""
    C = np.asarray(C, dtype=np.float64)
    true, called = C.sum(axis=2), C.sum(axis=1)  # (B, K)
    hits = np.diagonal(C, axis1=1, axis2=2)
    n = true.sum(axis=1)
    cov_tp = hits.sum(axis=1) * n - (true * called).sum(axis=1)
    cov_pp = n ** 2 - (called * called).sum(axis=1)
    cov_tt = n ** 2 - (true * true).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mcc = np.where(cov_pp * cov_tt == 0, 0.0, cov_tp / np.sqrt(cov_pp * cov_tt))
    return {"accuracy": ratio(hits.sum(axis=1), n), "balanced_accuracy": nanmean(ratio(hits, true)),
            "mcc": np.where((true > 0).sum(axis=1) > 1, mcc, np.nan),
            "precision": ratio(hits, called), "recall": ratio(hits, true), "f1": ratio(2 * hits, true + called),
            "true": true, "called": called}


def _log_loss_01(Y: np.ndarray, P: np.ndarray) -> float | None:
    """Binary cross-entropy of 0/1 truth Y against probabilities P (same shape), averaged over every entry (for
    multi-label: over samples and labels), with P clipped to [1e-15, 1 - 1e-15] as the binary log loss is."""
    if Y.size == 0:
        return None
    P = np.clip(np.asarray(P, dtype=np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(Y * np.log(P) + (1 - Y) * np.log1p(-P)))


def compute(task: str, y: np.ndarray, proba: np.ndarray, classes: list, threshold: float = 0.5,
            weights: np.ndarray | None = None, predicted: np.ndarray | None = None) -> dict:
    """The full metric set for ``task``; undefined metrics are None. ``threshold`` (binary, multi-label) and
    ``weights`` (multiclass, (k,): the model's decision rule, ``decision.Decision``) decide the labels the
    label-based metrics count; the probability-based ones (log loss, Brier, AUC, ECE) do not depend on them.
    ``predicted``: the labels themselves ((n,) class indices, multi-label (n, L) 0/1), decided elsewhere (the
    cross-fitted estimate's, each half by the other's rule), in place of ``threshold`` and ``weights``."""
    if task == "binary":
        return _binary(y.reshape(-1).astype(int), proba.reshape(-1), classes, threshold, predicted)
    if task == "multiclass":
        return _multiclass(y.reshape(-1).astype(int), proba, classes, weights, predicted)
    if task == "multilabel":
        return _multilabel(y.reshape(proba.shape).astype(int), proba, classes, threshold, predicted)
    if task == "regression":
        return _regression(y.reshape(proba.shape), proba, classes)
    raise ValueError(f"unknown task {task!r}")


# The logistic recalibration fits stop after this many Newton steps, or once a step moves less than RECAL_TOL;
# a slope beyond RECAL_MAX_SLOPE (outcomes separated by the risks) is undefined
RECAL_STEPS, RECAL_TOL, RECAL_MAX_SLOPE = 50, 1e-10, 1e3
# Risks are clipped to [RECAL_CLIP, 1 - RECAL_CLIP] before their log-odds are taken: a risk of exactly 0 or 1 would
# weigh in at +-27.6 and saturate the fits
RECAL_CLIP = 1e-6


def logistic_recalibration(y: np.ndarray, p: np.ndarray, W: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Calibration-in-the-large and the calibration slope of binary risks ``p`` (n,) against outcomes ``y`` (n,)
    0/1 (Cox 1958; Van Calster et al. 2019), for rows weighted by ``W`` (B, n) (None: once each, B = 1):

        intercept a0:  logit P(y = 1) = a0 + logit p      (the risks' log-odds as an offset: 0 when on average right)
        slope b:       logit P(y = 1) = a + b logit p     (1: neither too extreme, < 1, nor too moderate, > 1)

    each by Newton's method on the weighted log-likelihood, with its standard error from the information (a Wald
    interval counts rows as independent). {"intercept", "intercept_se", "slope", "slope_se"}: (B,) each, NaN where
    a fit is undefined (one outcome only) or does not converge (outcomes separated by the risks)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    q = np.clip(np.asarray(p, dtype=np.float64).reshape(-1), RECAL_CLIP, 1 - RECAL_CLIP)
    z = np.log(q) - np.log1p(-q)
    W = np.ones((1, len(y))) if W is None else np.asarray(W, dtype=np.float64)
    B = len(W)
    events, total = W @ y, W.sum(axis=1)
    both = (events > 0) & (events < total)
    # a slope needs risks that differ: one risk for every row leaves a + b z without a b to fit
    spread = (W @ (z * z)) / total - ((W @ z) / total) ** 2 > 1e-9 * (1.0 + (W @ (z * z)) / total)
    a0, a, b = np.zeros(B), np.zeros(B), np.ones(B)
    done0, done = ~both, ~both | ~spread
    converged0, converged = np.zeros(B, dtype=bool), np.zeros(B, dtype=bool)  # a step below RECAL_TOL
    info0 = np.full(B, np.nan)
    H = np.full((B, 2, 2), np.nan)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(RECAL_STEPS):
            if done0.all() and done.all():
                break
            r0 = 1.0 / (1.0 + np.exp(-(a0[:, None] + z)))
            info0 = (W * r0 * (1 - r0)).sum(axis=1)
            step0 = np.where(done0, 0.0, (W @ y - (W * r0).sum(axis=1)) / info0)
            a0 += step0
            converged0 |= both & (np.abs(step0) < RECAL_TOL)
            done0 |= converged0 | ~np.isfinite(a0)
            r = 1.0 / (1.0 + np.exp(-(a[:, None] + b[:, None] * z)))
            v, g = W * r * (1 - r), W * (y - r)
            H = np.stack([np.stack([v.sum(axis=1), v @ z], axis=1), np.stack([v @ z, v @ (z * z)], axis=1)], axis=1)
            g = np.stack([g.sum(axis=1), g @ z], axis=1)
            det = H[:, 0, 0] * H[:, 1, 1] - H[:, 0, 1] ** 2
            da = (H[:, 1, 1] * g[:, 0] - H[:, 0, 1] * g[:, 1]) / det
            db = (H[:, 0, 0] * g[:, 1] - H[:, 0, 1] * g[:, 0]) / det
            da, db = np.where(done, 0.0, da), np.where(done, 0.0, db)
            a, b = a + da, b + db
            converged |= both & (np.abs(da) < RECAL_TOL) & (np.abs(db) < RECAL_TOL)
            done |= converged | ~np.isfinite(b) | (np.abs(b) > RECAL_MAX_SLOPE)
        det = H[:, 0, 0] * H[:, 1, 1] - H[:, 0, 1] ** 2
        # a fit that did not converge (outcomes separated by the risks: the slope grows step by step) is undefined
        slope_ok = converged & spread & np.isfinite(b) & (np.abs(b) <= RECAL_MAX_SLOPE) & (det > 0)
        return {"intercept": np.where(converged0 & np.isfinite(a0), a0, np.nan),
                "intercept_se": np.where(converged0, 1.0 / np.sqrt(info0), np.nan),
                "slope": np.where(slope_ok, b, np.nan),
                "slope_se": np.where(slope_ok, np.sqrt(H[:, 0, 0] / det), np.nan)}


def _calibration_of_risks(y: np.ndarray, p: np.ndarray) -> dict:
    """The binary risk calibration ``evaluate`` reports: observed and expected events, their ratio, the intercept
    and slope of ``logistic_recalibration`` with their 95 % Wald intervals (None where undefined)."""
    fit = {k: float(v[0]) for k, v in logistic_recalibration(y, p).items()}
    observed, expected = int(np.sum(y)), float(np.sum(p))

    def wald(key):
        est, se = fit[key], fit[f"{key}_se"]
        return None if not (np.isfinite(est) and np.isfinite(se)) else [est - Z_95 * se, est + Z_95 * se]

    return {"observed": observed, "expected": expected,
            "intercept": _defined(fit["intercept"]), "intercept_ci": wald("intercept"),
            "slope": _defined(fit["slope"]), "slope_ci": wald("slope"), "interval": "Wald, rows independent"}


def _binary(y, p, classes, threshold, pred=None):
    pred = predicted_class("binary", p, threshold) if pred is None else np.asarray(pred).reshape(-1)
    top = predicted_class("binary", p)  # the class the probability ranks first: ECE judges probabilities, not the threshold
    C = confusion_counts(y, pred, 2)
    counted = {k: v[0] for k, v in confusion_scores(C[None]).items()}
    return {
        "n": int(y.size),
        "threshold": threshold,
        "accuracy": _defined(counted["accuracy"]),
        "balanced_accuracy": _defined(counted["balanced_accuracy"]),
        # 0/0 (no positive predicted; no positive in the table) is undefined (None), not 0, which reads as a
        # classifier that misses every positive (a cohort or --by group of controls alone)
        "precision": _defined(counted["precision"][1]),
        "recall": _defined(counted["recall"][1]),
        # the clinician's pair beside precision (PPV) and recall (sensitivity) at the same threshold
        "specificity": _defined(counted["recall"][0]),
        "npv": _defined(counted["precision"][0]),
        "f1": _defined(counted["f1"][1]),
        **_label_ranking(y, p),
        # Matthews correlation, undefined (None) when the truth holds one class: scikit-learn then gives 0.0,
        # which reads as a classifier no better than chance whatever its accuracy (a cohort of one subtype, a
        # --by group)
        "mcc": _defined(counted["mcc"]),
        "log_loss": _log_loss_01(y, p),
        "brier": _multiclass_brier(y, np.column_stack([1 - p, p])),
        # 1 - Brier / the Brier of predicting the table's own event rate for everyone: below 0, worse than that
        "brier_scaled": _scaled_brier(y, p),
        "ece": expected_calibration_error(top == y, np.maximum(p, 1 - p)),
        # calibration of the risks themselves (the top-label ECE cannot tell too high from too low)
        "observed_expected": _ratio_or_none(np.sum(y), np.sum(p)),
        # the intercept and slope with Wald intervals (not bootstrapped: a Newton fit per resample doubled the time
        # of evaluate --bootstrap on 20,000 rows)
        "calibration": _calibration_of_risks(y, p),
        "positive_class": str(classes[1]) if len(classes) > 1 else None,
        "confusion_matrix": C.tolist(),
    }


def threshold_counts(y: np.ndarray, p: np.ndarray, thresholds, unit_of: np.ndarray | None = None,
                     M: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The confusion counts of calling positive the samples whose risk p (n,) is at least each threshold t (T,),
    against outcomes y (n,) 0/1: {"tp", "fp": (T,), "events", "n": scalars}. With ``unit_of`` (n,) each row's unit
    (patient) and ``M`` (B, U) how often each unit is drawn, the same for B resamples: (B, T) and (B,), weighted
    sums (one product per resample set, not a pass over rows per resample). The one count ``net_benefit`` and
    ``operating_points`` read."""
    y = np.asarray(y).reshape(-1).astype(bool)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    t = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    called = p[:, None] >= t[None, :]  # (n, T)
    parts = np.concatenate([(called & y[:, None]), (called & ~y[:, None]), y[:, None], np.ones((len(y), 1))], axis=1)
    if M is None:
        sums = parts.sum(axis=0)
    else:
        per_unit = np.zeros((M.shape[1], parts.shape[1]))
        np.add.at(per_unit, np.asarray(unit_of, dtype=np.int64), parts.astype(np.float64))
        sums = M @ per_unit
    k = len(t)
    return {"tp": sums[..., :k], "fp": sums[..., k:2 * k], "events": sums[..., 2 * k], "n": sums[..., 2 * k + 1]}


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds, unit_of: np.ndarray | None = None,
                M: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Net benefit of treating the samples whose risk p (n,) is at least each threshold t (T,), against outcomes y
    (n,) 0/1 (Vickers & Elkin 2006), beside treating everyone (treating no one: 0):

        NB(t) = TP / n - FP / n * t / (1 - t)        NB_all(t) = prevalence - (1 - prevalence) * t / (1 - t)

    the harm of a false positive weighed by the odds at the threshold a clinician would treat at. With ``unit_of``
    (n,) each row's unit (patient) and ``M`` (B, U) how often each unit is drawn, the same for B resamples.
    {"model": (T,) or (B, T), "treat_all": ...}."""
    c = threshold_counts(y, p, thresholds, unit_of, M)
    t = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    n, odds = np.asarray(c["n"])[..., None], t / (1.0 - t)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.asarray(c["events"])[..., None] / n
        return {"model": c["tp"] / n - c["fp"] / n * odds, "treat_all": rate - (1.0 - rate) * odds}


def operating_points(y: np.ndarray, p: np.ndarray, thresholds, unit_of: np.ndarray | None = None,
                     M: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """What calling positive the samples whose risk p (n,) is at least each threshold t (T,) gives against outcomes
    y (n,) 0/1 — the figures a clinical report tabulates per candidate threshold:

        called = (TP + FP) / n,   sensitivity = TP / events,   specificity = TN / non-events,
        PPV = TP / (TP + FP),     NPV = TN / (TN + FN)

    NaN where a denominator is 0 (no events, no sample called). With ``unit_of`` and ``M`` as ``threshold_counts``,
    the same for B resamples. {"called", "sensitivity", "specificity", "ppv", "npv": (T,) or (B, T)}."""
    c = threshold_counts(y, p, thresholds, unit_of, M)
    tp, fp = c["tp"], c["fp"]
    events, n = np.asarray(c["events"])[..., None], np.asarray(c["n"])[..., None]
    fn, tn = events - tp, n - events - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"called": (tp + fp) / n, "sensitivity": tp / events, "specificity": tn / (n - events),
                "ppv": tp / (tp + fp), "npv": tn / (tn + fn)}


def at_target(y: np.ndarray, p: np.ndarray, figure: str, target: float,
              W: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The risk threshold t at which calling positive the samples with p >= t first reaches ``target`` of ``figure``
    ("sensitivity": the largest such t; "specificity": the smallest), and the figures there, for risks p (n,) against
    outcomes y (n,) 0/1 with each row weighted by ``W`` (B, n) (None: once each, B = 1; a bootstrap's resamples):
    {"threshold", "called", "sensitivity", "specificity", "ppv", "npv"}, (B,) each. A specificity no threshold
    reaches short of calling nobody gives the threshold just above the highest risk. The candidates are the risks
    themselves (a resample's: those of the rows it holds, weight > 0), ties called together."""
    y = np.asarray(y).reshape(-1).astype(np.float64)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    W = np.ones((1, len(y))) if W is None else np.asarray(W, dtype=np.float64)
    order = np.argsort(-p, kind="mergesort")
    ps, ys, W = p[order], y[order], W[:, order]
    last = np.r_[np.flatnonzero(np.diff(ps) != 0), len(ps) - 1]  # calling p >= ps[last[i]] calls rows 0..last[i]
    tp = np.cumsum(W * ys, axis=1)[:, last]  # (B, T), T candidate thresholds, high to low
    fp = np.cumsum(W * (1 - ys), axis=1)[:, last]
    events, others = (W * ys).sum(axis=1)[:, None], (W * (1 - ys)).sum(axis=1)[:, None]
    # the candidates are the risks of the rows a resample holds: a tie group of rows of weight 0 (not drawn) is none,
    # else "the lowest threshold keeping a specificity" fell to an undrawn row's risk below the drawn one that calls
    # the same rows (the figures alike, the threshold and its interval too low)
    held_through = np.cumsum(W > 0, axis=1)[:, last]
    held = np.diff(held_through, axis=1, prepend=0) > 0  # (B, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens, spec = tp / events, 1.0 - fp / others
    if figure == "sensitivity":  # the first (highest) threshold reaching it; sensitivity rises as t falls
        idx = np.argmax((sens >= target - 1e-12) & held, axis=1)
        none = np.zeros(len(W), dtype=bool)
    else:  # the last (lowest) threshold keeping it; specificity falls as t falls
        ok = (spec >= target - 1e-12) & held
        idx = ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
        none = ~ok.any(axis=1)  # not even the highest risk alone: call nobody
    rows = np.arange(len(W))
    top = ps[last][np.argmax(held, axis=1)]  # the highest risk a resample holds
    t = np.where(none, np.nextafter(top, np.inf), ps[last][idx])
    tp_, fp_ = np.where(none, 0.0, tp[rows, idx]), np.where(none, 0.0, fp[rows, idx])
    ev, ot = events[:, 0], others[:, 0]
    fn, tn = ev - tp_, ot - fp_
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"threshold": t, "called": (tp_ + fp_) / (ev + ot), "sensitivity": tp_ / ev, "specificity": tn / ot,
               "ppv": tp_ / (tp_ + fp_), "npv": tn / (tn + fn)}
    # no events (no non-events) among the rows: no threshold reaches a sensitivity (specificity) of them, and there
    # are no figures "at" it (a cohort of controls alone chose 0.456 for "sensitivity >= 0.9")
    undefined = (ev if figure == "sensitivity" else ot) <= 0
    return {k: np.where(undefined, np.nan, v) for k, v in out.items()}


# A reliability curve's bins hold at least this many samples each (at most CURVE_BINS bins)
CURVE_BINS, CURVE_MIN_BIN = 10, 20


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = CURVE_BINS) -> list[dict]:
    """The reliability curve of risks p (n,) against outcomes y (n,) 0/1, as a calibration plot draws it: the samples
    sorted by risk and cut into up to ``bins`` groups of (near) equal size, at least CURVE_MIN_BIN each (fewer bins on
    a small table, one bin of every sample below CURVE_MIN_BIN; ties may fall either side of a cut), each with its size, mean risk, observed event rate and the
    rate's 95 % Wilson interval: [{"n", "mean_predicted", "observed", "observed_ci"}], lowest risks first."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    n = len(y)
    if n == 0:
        return []
    order = np.argsort(p, kind="mergesort")
    rows = []
    for idx in np.array_split(order, max(1, min(int(bins), n // CURVE_MIN_BIN))):
        m, events = len(idx), float(y[idx].sum())
        rate = events / m
        z = Z_95
        centre = (rate + z * z / (2 * m)) / (1 + z * z / m)
        half = z * math.sqrt(rate * (1 - rate) / m + z * z / (4 * m * m)) / (1 + z * z / m)
        # exactly 0 with no event and 1 with every sample one (rounding left 1e-17 there), and never beside the rate
        low = 0.0 if events == 0 else min(rate, max(0.0, centre - half))
        high = 1.0 if events == m else max(rate, min(1.0, centre + half))
        rows.append({"n": int(m), "mean_predicted": float(p[idx].mean()), "observed": rate,
                     "observed_ci": [low, high]})
    return rows


def _ratio_or_none(num, den) -> float | None:
    return float(num) / float(den) if den else None


def _scaled_brier(y: np.ndarray, p: np.ndarray) -> float | None:
    """1 - Brier / (ȳ (1 - ȳ)): the share of the null model's Brier score (everyone given the table's event
    rate) the risks remove; None with one outcome only."""
    rate = float(np.mean(y)) if len(y) else 0.0
    null = rate * (1 - rate)
    return None if null == 0 else 1.0 - float(np.mean((y - p) ** 2)) / null


def _one_vs_rest_average_precision(y: np.ndarray, P: np.ndarray, support: np.ndarray) -> list[float | None]:
    """Average precision of each class against the rest (None for a class absent from ``y``), as scikit-learn's
    average_precision_score(y == k, P[:, k]): the precision at each distinct threshold, weighted by the recall it
    adds. A rare class's ROC AUC reads well where its AP does not (0.979 against 0.564 for a class of 2 %): the
    figure a clinician screening for it needs. One sort per column, as ``_one_vs_rest_auc`` (a bootstrap computes it
    per resample)."""
    out = []
    for k, n_pos in enumerate(support.tolist()):
        if n_pos == 0:
            out.append(None)
            continue
        order = np.argsort(-P[:, k], kind="mergesort")
        scores, hits = P[order, k], (y[order] == k)
        last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # the last row of each run of ties
        tp = np.cumsum(hits)[last]
        precision = tp / (last + 1.0)
        recall = tp / float(n_pos)
        out.append(float(np.sum(np.diff(np.r_[0.0, recall]) * precision)))
    return out


def _one_vs_rest_auc(y: np.ndarray, P: np.ndarray, support: np.ndarray) -> list[float | None]:
    """ROC AUC of each class against the rest (None for a class absent, or alone, in ``y``), as
    scikit-learn's roc_auc_score(y == k, P[:, k]) computes it, through the Mann-Whitney U statistic: ranks of
    one sort per column (ties at their mean rank, counted 1/2) instead of K calls whose input checks doubled
    the time of a bootstrap resample."""
    n = y.size
    out = []
    for k, n_pos in enumerate(support.tolist()):
        if not 0 < n_pos < n:
            out.append(None)
            continue
        u = average_ranks(P[:, k])[y == k].sum() - n_pos * (n_pos + 1) / 2
        out.append(float(u / (n_pos * (n - n_pos))))
    return out


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the values x (n,), ties at their mean rank: scipy.stats.rankdata(x), without importing
    scipy.stats for it (a second of a small run's start)."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    edges = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])  # where each run of ties starts, and n
    starts, ends = edges[:-1], edges[1:]
    ranks = np.empty(len(x))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson's r of x and y (n,), as scipy.stats.pearsonr computes it (centred, each scaled to unit length through
    its largest value, the dot product clipped to [-1, 1]); None with fewer than 2 values or a constant one (scipy's
    NaN)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    xm, ym = x - x.mean(), y - y.mean()
    xmax, ymax = np.max(np.abs(xm)), np.max(np.abs(ym))
    nx, ny = xmax * np.linalg.norm(xm / xmax), ymax * np.linalg.norm(ym / ymax)
    if nx == 0 or ny == 0:
        return None
    return _defined(np.clip(np.dot(xm / nx, ym / ny), -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho of x and y (n,) as scipy.stats.spearmanr computes it: the correlation matrix of their average
    ranks (``average_ranks``, scipy's rankdata); None with fewer than 2 values or a constant one."""
    if len(x) < 2:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return _defined(np.corrcoef(average_ranks(np.asarray(x)), average_ranks(np.asarray(y)))[1, 0])


def class_log_loss_terms(y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Each row's log loss (n,) for class indices y (n,) and probabilities P (n, K): minus the log of its class's
    probability, clipped to [1e-15, 1] and then to scikit-learn's [eps, 1 - eps]; the mean is scikit-learn's
    log_loss(y, P.clip(1e-15, 1), labels=range(K)) of rows that sum to 1."""
    truth = np.asarray(P, dtype=np.float64)[np.arange(len(y)), y]
    return -np.log(np.clip(np.clip(truth, 1e-15, 1.0), _EPS, 1 - _EPS))


def _multiclass_brier(y: np.ndarray, P: np.ndarray) -> float | None:
    """scikit-learn's brier_score_loss(y, P, labels=range(K)), computed here as metrics_resampled computes it:
    scikit-learn takes several probability columns from 1.7 on only (1.6, which pyproject allows, has no
    labels=). The squared distance from the one-hot truth, summed over classes (halved for two columns, as its
    scale_by_half="auto"); None where scikit-learn raises (a row's class is not a column, a probability outside
    [0, 1])."""
    K = P.shape[1]
    if y.size == 0 or y.min() < 0 or y.max() >= K or P.min() < 0 or P.max() > 1:
        return None
    onehot = np.zeros_like(P, dtype=float)
    onehot[np.arange(y.size), y] = 1.0
    value = float(np.mean(((onehot - P) ** 2).sum(axis=1))) * (0.5 if K < 3 else 1.0)
    return value if np.isfinite(value) else None


def _multiclass(y, P, classes, weights=None, pred=None):
    K = P.shape[1]
    given = pred is not None
    pred = predicted_class("multiclass", P, weights=weights) if pred is None else np.asarray(pred).reshape(-1)
    top = pred if weights is None and not given else predicted_class("multiclass", P)  # ECE judges the most probable class
    labels = list(range(K))
    C = confusion_counts(y, pred, K)
    counted = {k: v[0] for k, v in confusion_scores(C[None]).items()}
    # a class never predicted has no precision, one absent from the table no recall: None (shown as —), not 0
    prec, rec, f1, support = counted["precision"], counted["recall"], counted["f1"], C.sum(axis=1)
    # one-vs-rest ROC AUC of each class present (an absent class has no positives: undefined), and their mean,
    # which is scikit-learn's roc_auc_score(multi_class="ovr") when every class is present
    class_auc = _one_vs_rest_auc(y, P, support)
    class_ap = _one_vs_rest_average_precision(y, P, support)
    defined = [a for a in class_auc if a is not None]
    return {
        "n": int(y.size),
        "accuracy": _defined(counted["accuracy"]),
        "balanced_accuracy": _defined(counted["balanced_accuracy"]),
        # a class neither present nor predicted (a small cohort, a --by group) has no F1: left out of the mean,
        # as scikit-learn's default label set leaves it, rather than counted as 0
        "f1_macro": _defined(nanmean(f1)),
        # (scikit-learn's zero_division=0 here: an undefined F1 weighs nothing, its class having no rows)
        "f1_weighted": _defined(ratio(np.sum(np.nan_to_num(f1) * support), np.sum(support))),
        # macro mean over the classes present (a cohort without a rare subtype keeps an AUC of the others;
        # `evaluate` names the classes left out)
        "roc_auc_ovr": float(np.mean(defined)) if len(defined) > 1 else None,
        "mcc": _defined(counted["mcc"]),  # Gorodkin's multiclass MCC (None with one class true)
        # (None for a class that is not a column, where scikit-learn's labels= refuses it)
        "log_loss": float(np.mean(class_log_loss_terms(y, P))) if y.size and 0 <= y.min() and y.max() < K else None,
        # multiclass Brier: the squared distance of the probability vector from the one-hot truth, summed over
        # classes and averaged over samples (0 perfect, 2 worst)
        "brier": _multiclass_brier(y, P),
        "ece": expected_calibration_error(top == y, P.max(axis=1)),
        "per_class": [
            {"class": str(classes[k]), "precision": _defined(prec[k]), "recall": _defined(rec[k]),
             "f1": _defined(f1[k]), "roc_auc": class_auc[k], "average_precision": class_ap[k],
             "support": int(support[k])}
            for k in labels
        ],
        "confusion_matrix": C.tolist(),
        "classes": [str(c) for c in classes],
    }


def _defined(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _multilabel(Y, P, classes, threshold, pred=None):
    """``threshold``: one for every label, or one per label (L,) (the balanced decision rule's)."""
    thresholds = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (Y.shape[1],))
    pred = predicted_class("multilabel", P, thresholds) if pred is None else np.asarray(pred).reshape(Y.shape)
    at_half = P >= 0.5  # the more probable value of each label: ECE judges probabilities, not the thresholds
    # each label's confusion counts (L,): scikit-learn's multi-label F1 and Hamming loss are functions of them
    tp, fp, fn = (np.sum((Y == t) & (pred == c), axis=0) for t, c in ((1, 1), (0, 1), (1, 0)))
    micro = 2 * tp.sum() + fp.sum() + fn.sum()
    return {
        "n": int(Y.shape[0]),
        "threshold": threshold_field(threshold, classes, per_label=True),
        "f1_micro": 2 * float(tp.sum()) / micro if micro else 0.0,  # (scikit-learn's zero_division=0)
        # a label neither present nor called has no F1: left out of the mean, as above
        "f1_macro": _defined(nanmean(ratio(2 * tp, 2 * tp + fp + fn))),
        "hamming_loss": _defined(ratio(float((fp + fn).sum()), float(Y.size))),
        # over the labels with both values; undefined (None) where none has both
        "balanced_accuracy": _defined(label_balanced_accuracy(Y, pred)),
        "log_loss": _log_loss_01(Y, P),  # BCE averaged over labels, as training's calibration reports it
        # every (sample, label) decision pooled, each at the confidence of its call (max(p, 1 - p)), as
        # training's calibration line reports it
        "ece": expected_calibration_error((at_half == Y).ravel(), np.where(at_half, P, 1 - P).ravel()),
        "per_label": [
            {"label": str(classes[j]), "threshold": float(thresholds[j]), **_label_calls(Y[:, j], pred[:, j]),
             **_label_ranking(Y[:, j], P[:, j]),
             "log_loss": _log_loss_01(Y[:, j], P[:, j]),
             "support": int(Y[:, j].sum())}
            for j in range(Y.shape[1])
        ],
    }


def _label_ranking(y: np.ndarray, p: np.ndarray) -> dict:
    """A binary label's ROC AUC and average precision (None without both values / without a positive) for its
    truth y (n,) 0/1 and probabilities p (n,): scikit-learn's definitions, computed as for each class of a
    multiclass model (its functions' input checks cost more than the figures)."""
    P, support = np.column_stack([1 - p, p]), np.bincount(y, minlength=2)
    return {"roc_auc": _one_vs_rest_auc(y, P, support)[1],
            "average_precision": _one_vs_rest_average_precision(y, P, support)[1]}


def _label_calls(y: np.ndarray, pred: np.ndarray) -> dict:
    """One label's calls at the threshold: recall (None without positives), precision (None when never called),
    F1 (None when neither), and how many were called positive. A rare label the threshold never reaches shows
    recall 0 here, where its ROC AUC and AP, which rank, looked fine (a 3 % label: AUC 0.825, 0 called)."""
    tp = int(np.sum((y == 1) & (pred == 1)))
    positives, called = int(np.sum(y == 1)), int(np.sum(pred == 1))
    recall = tp / positives if positives else None
    precision = tp / called if called else None
    f1 = 2 * tp / (positives + called) if positives + called else None
    return {"recall": recall, "precision": precision, "f1": f1, "called": called}


def _regression(Y, P, names):
    """RMSE and MAE over every value (several targets: pooled, in their mixed units, as train and info say), R² and
    the correlations per target; several targets each get their own under ``per_target``, and R² is the mean of
    theirs (scikit-learn's ``multioutput="uniform_average"``) over the targets whose truth varies. R² and the
    correlations by scikit-learn's and scipy's definitions, in NumPy (held to theirs by tests)."""

    def r2(y, p):
        # undefined (None) where the truth does not vary (one sample, or a constant target): scikit-learn's
        # default turns that into 0.0 (1.0 for a perfect fit), a score that reads as "no better than the mean"
        # whatever the predictions' error. Checked on the values themselves: scikit-learn's mean of a repeated
        # 0.1 rounds off it, and its denominator, a rounding residue, made R² a huge negative number
        if len(y) == 0 or np.all(y == y[0]):
            return None
        return _defined(1.0 - np.sum((y - p) ** 2) / np.sum((y - np.mean(y)) ** 2))

    out = {"n": int(Y.shape[0]),
           "rmse": float(np.sqrt(np.mean((Y - P) ** 2))),
           "mae": float(np.mean(np.abs(Y - P)))}
    if Y.shape[1] == 1:
        out["r2"] = r2(Y[:, 0], P[:, 0])
        out["pearson_r"] = pearson(Y[:, 0], P[:, 0])
        out["spearman_r"] = spearman(Y[:, 0], P[:, 0])
        return out
    # each target in its own units: pooled, a target in mg swamps one in years (the MAE too)
    per_target = [
        {"target": str(names[j]), "rmse": float(np.sqrt(np.mean((Y[:, j] - P[:, j]) ** 2))),
         "mae": float(np.mean(np.abs(Y[:, j] - P[:, j]))),
         "r2": r2(Y[:, j], P[:, j]),
         "pearson_r": pearson(Y[:, j], P[:, j]),
         "spearman_r": spearman(Y[:, j], P[:, j])}
        for j in range(Y.shape[1])
    ]
    # one constant target in the cohort made the whole R² undefined (the mean of -inf and the others'); the mean of
    # the defined ones, as roc_auc_ovr is the mean over the classes present (the constant one shows — below)
    defined = [t["r2"] for t in per_target if t["r2"] is not None]
    out["r2"] = float(np.mean(defined)) if defined else None
    out["per_target"] = per_target
    return out
