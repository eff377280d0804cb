"""Evaluation against known labels: per-task metrics with patient-bootstrap intervals (``bootstrap``), decision curves
and operating points (``risk_thresholds``), ``--by`` subgroups, and the warnings a cohort earns (rows the model was
trained on, risks systematically off, class totals, targets unlike training)."""

from __future__ import annotations

import math
import warnings as _warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from ..data.roles import listed_names
from ..data.pieces import DEFAULT_CHUNK_MB
from ..decision import threshold_field
from ..distributions import Z_95, normal_quantile
from ..errors import ConfigError, OptionError
from ..fileio import file_sha256
from ..model_io import Model
from ..text import natural_key, quoted
from .bootstrap import BOOTSTRAP_FEW_UNITS, BOOTSTRAP_MIN, Units, bootstrap_metrics, bootstrap_workers, percentile_ci
from .columns import RoleFlags
from .risk_thresholds import check_operating_points, check_risk_thresholds, net_benefit_rows, operating_point_rows
from .seen import SeenRows, among
from .shift import ShiftReport
from .run import PredictionRun
from .labelling import labelled_by, resolve_decision, resolve_prevalence
from .trust import Trust, Uncertainty, evaluation_report


# `--by`: a group is flagged ("clearly worse") when its main metric is this much worse than the whole table's.
# 0.10 of balanced accuracy separates a usable from a misleading classifier for most questions; for regression,
# an RMSE 25 % above the overall one.
BY_WORSE_SCORE = 0.10
BY_WORSE_RMSE_RATIO = 1.25
# ... and when that gap does not hang on a few samples. Balanced accuracy averages the classes' recalls, so in
# a group with one sample of a class, that one sample moves the score by 1/classes (0.25 of 4 subtypes: a batch
# was flagged for one misread HER2 sample). With --bootstrap the group's 95 % interval (of its patients) must lie
# wholly on the worse side of the overall value; without it, every class the group holds needs this many samples
# (one sample then moves a class's recall by at most 0.1, balanced accuracy by at most 0.1 / classes), and a
# regression group BY_MIN_SAMPLES. Groups below that are reported but not judged, and a note names them.
BY_MIN_CLASS_SAMPLES = 10
BY_MIN_SAMPLES = 20
# `--by` on a numeric column with more distinct values than this (age, a score, a continuous covariate) groups
# its values into BY_BINS quantile bins instead: one group per value would be groups of one or two samples,
# whose metrics mean nothing. Fewer distinct numbers (batch 1-6, a stage) stay one group per value.
BY_MAX_NUMERIC_VALUES = 10
BY_BINS = 4


# ── evaluate ─────────────────────────────────────────────────────────────────────────────────────────────

_MAIN_KEYS = {
    "binary": ["accuracy", "balanced_accuracy", "f1", "roc_auc", "mcc", "log_loss", "observed_expected"],
    "multiclass": ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr", "log_loss"],
    "multilabel": ["balanced_accuracy", "f1_micro", "f1_macro", "hamming_loss", "log_loss"],
    "regression": ["rmse", "mae", "r2", "pearson_r"],
}
_NOT_CI = ("n", "threshold")


def _scalars(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in _NOT_CI and (v is None or isinstance(v, (int, float)))
            and not isinstance(v, bool)}


def main_metric(task: str, y: np.ndarray, proba: np.ndarray, threshold: float = 0.5,
                weights: np.ndarray | None = None) -> float | None:
    """The task's main metric (metrics.MAIN_METRIC) alone, as metrics.compute defines it; fast enough to
    bootstrap per group. proba as metrics.compute takes it."""
    from sklearn.metrics import balanced_accuracy_score

    from .. import metrics

    def bacc(a, b):
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            return float(balanced_accuracy_score(a, b))

    if len(y) == 0:
        return None
    if task == "binary":
        return bacc(y.reshape(-1).astype(int), metrics.predicted_class("binary", proba, threshold))
    if task == "multiclass":
        return bacc(y.reshape(-1).astype(int), metrics.predicted_class("multiclass", proba, weights=weights))
    if task == "multilabel":
        from ..decision import label_balanced_accuracy

        return label_balanced_accuracy(y.reshape(proba.shape).astype(int), (proba >= threshold).astype(int))
    return float(np.sqrt(np.mean((y.reshape(proba.shape) - proba) ** 2)))


@dataclass
class EvaluationResult:
    """Metrics of a model on a labelled table, optionally per group and with bootstrap CIs."""

    task: str
    n: int
    classes: list
    metrics: dict  # metrics.compute's set for the task
    main_metric: str
    threshold: "float | np.ndarray | None"  # binary; multi-label: one, or one per label (L,)
    ci: dict = field(default_factory=dict)  # metric -> [low, high] (95 % percentile bootstrap)
    bootstrap: dict | None = None  # {"resamples", "unit", "n_units", "seed"}
    by: str | None = None
    groups: list[dict] = field(default_factory=list)  # per --by value: value, n, metrics, ci, flagged
    shift: ShiftReport | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # the model's temperature and log loss / ECE with and without it: {"temperature", "log_loss_before",
    # "log_loss_after", "ece_before", "ece_after"}; None for an uncalibrated model or a regression
    calibration: dict | None = None
    # with `uncertainty`: prediction-set coverage, abstention, risk–coverage curve, OOD flag rate
    # (trust.evaluation_report); None otherwise
    trust: dict | None = None
    # samples that are rows the model was trained on (``SeenRows``; None: the model keeps no fingerprints), and
    # the metrics on the others when some are and some are not
    seen_in_training: int | None = None
    unseen_metrics: dict | None = None
    # samples that are rows of the table the model was recalibrated on (``_cohort_rows``; None: not recalibrated, or
    # not recognisable), and the metrics on the others when some are and some are not
    cohort_rows_seen: int | None = None
    cohort_other_metrics: dict | None = None
    # with novel_labels: the rows whose label the model does not know, kept apart from the metrics (``novel_report``);
    # None otherwise
    novel: dict | None = None
    # the decision rule that labelled the rows the label metrics count (binary, multiclass, multi-label;
    # ``mlpcli.decision``)
    decision: str | None = None
    # with `prevalence`: the class mixes (training, the cohort's the probabilities were moved to, the one observed
    # in the labels) and log loss / ECE at the training mix and at the cohort's (``_prevalence_effect``)
    prevalence: dict | None = None
    # with `net_benefit` (binary): per risk threshold, the net benefit of the model, of treating everyone and no one
    net_benefit: list | None = None
    # with `operating_points` (binary): per risk threshold, the calls and sensitivity, specificity, PPV, NPV
    operating_points: list | None = None
    # the reliability curve of each class's (label's) probability, one-vs-rest (a binary model's: its positive
    # class): {name: [{"n", "mean_predicted", "observed", "observed_ci"}]} (``metrics.calibration_curve``); None for
    # regression
    calibration_curve: dict | None = None

    def to_dict(self) -> dict:
        return {"task": self.task, "n": self.n, "classes": [str(c) for c in self.classes],
                # one number, or a multi-label model's one per label {label: threshold}
                "threshold": (None if self.threshold is None else
                              threshold_field(self.threshold, self.classes, self.task == "multilabel")),
                "main_metric": self.main_metric, "metrics": self.metrics,
                "calibration": self.calibration,
                "ci": self.ci, "bootstrap": self.bootstrap, "by": self.by, "groups": self.groups,
                "shift": self.shift.summary() if self.shift is not None else None,
                "trust": self.trust,  # (null without --coverage, --ood, --abstain: the keys are stable)
                "seen_in_training": self.seen_in_training, "unseen_metrics": self.unseen_metrics,
                "cohort_rows_seen": self.cohort_rows_seen, "cohort_other_metrics": self.cohort_other_metrics,
                **({"novel": self.novel} if self.novel is not None else {}),
                "decision": self.decision, "prevalence": self.prevalence,
                **({"net_benefit": self.net_benefit} if self.net_benefit is not None else {}),
                **({"operating_points": self.operating_points} if self.operating_points is not None else {}),
                **({"calibration_curve": self.calibration_curve} if self.calibration_curve is not None else {}),
                "notes": self.notes, "warnings": self.warnings}


def _seen_rows(result: EvaluationResult, seen: SeenRows, mask: np.ndarray, y: np.ndarray, proba: np.ndarray,
               threshold: float, model: Model, weights: np.ndarray | None = None,
               also: np.ndarray | None = None) -> None:
    """Count the rows the model was trained on (``mask`` (n,) bool) into ``result``, with a warning that gives
    the main metric on the other rows alone (``result.unseen_metrics``), or, when every row was a training row,
    the model's own held-out estimate. ``also`` (n,) bool: rows in-sample otherwise (the recalibration table's),
    left out of the other rows too."""
    from .. import metrics

    result.seen_in_training = int(mask.sum())
    if not result.seen_in_training:
        return
    said, name = seen.describe(result.n), metrics.display_name(result.main_metric)

    def shown(value) -> str:
        return f"{value:.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "undefined"

    if result.seen_in_training == result.n:
        held_out = (model.fit or {}).get("held_out_metrics", {}).get(result.main_metric)
        estimate = (f"its {model.fit.get('held_out', 'held-out')} {name} at training was {shown(held_out)}"
                    if held_out is not None else "`mlpcli info MODEL` shows its held-out estimate")
        if seen.validated:  # one network: these may be its validation rows, on which that estimate was measured
            result.warnings.append(
                f"{said}: these metrics are of rows it was fitted to or early-stopped and calibrated on, not of new "
                f"samples; {estimate}, possibly on these same rows — evaluate on samples it has not seen")
        else:
            result.warnings.append(f"{said}: these metrics measure its fit to its training data, not how it does on "
                                   f"new samples; {estimate} — evaluate on samples it has not seen")
        return
    new = ~mask if also is None else ~mask & ~also
    n_new = int(new.sum())
    result.unseen_metrics = (metrics.compute(result.task, y[new], proba[new], result.classes, threshold, weights)
                             if n_new else None)
    if not n_new:  # the other rows are the recalibration table's: in-sample too (said in its own warning)
        result.warnings.append(f"{said}: the metrics include {'rows it was fitted to or validated on' if seen.validated else 'its fit to them'}, "
                               "and the other rows are the recalibration table's: no sample here is new to the model")
        return
    others = "the 1 other sample" if n_new == 1 else f"the {n_new} other samples"
    if also is not None and also[~mask].any():
        others += " (neither its training rows nor its recalibration table's)"
    on_others = (f"{others} are too few to measure it on alone" if n_new < _FEW_UNSEEN else
                 f"on {others} alone, {name} {shown(result.unseen_metrics.get(result.main_metric))}")
    if n_new == 1:
        on_others = on_others.replace(" are too few", " is too few")
    result.warnings.append(f"{said}: the metrics include {'rows it was fitted to or validated on' if seen.validated else 'its fit to them'}, "
                           f"which flatters it; {on_others} (`unseen_metrics` in --json)")


def _cohort_rows(result: EvaluationResult, model: Model, source, uncertainty, fingerprints: np.ndarray | None,
                 y: np.ndarray, proba: np.ndarray, threshold: float, weights: np.ndarray | None = None,
                 seen: np.ndarray | None = None) -> np.ndarray | None:
    """Warn when the table's samples are rows of the table the model was recalibrated on (``mlpcli recalibrate``):
    its calibration there (the update's, the prediction sets' coverage, the out-of-distribution flag rate, as far as
    each was fitted on that table) is in-sample, not a test. The rows are recognised by their fingerprints
    (``Model.cohort_rows``, ``fingerprints`` (n,) the table's; a copy, a part or a table that adds other samples
    alike), in a file without them (format 15, a cohort read with features filled) by the file's SHA-256.
    ``result.cohort_rows_seen`` counts them; with some rows of other samples, ``result.cohort_other_metrics`` holds
    the metrics on those alone (``seen`` (n,) bool: rows the model was trained on, left out of them too). Returns
    the rows recognised (n,) bool, or None."""
    from .. import metrics

    cohort = model.recalibration.cohort if model.recalibration is not None else None
    sets = (model.conformal.cohort if model.conformal is not None and model.conformal.on_model_proba
            and uncertainty is not None and uncertainty.coverage is not None else None)
    flag = (model.ood.cohort if model.ood is not None and model.ood.cohort is not None
            and uncertainty is not None and uncertainty.ood else None)
    fitted = [(what, part) for what, part in (
        ("its calibration (log loss, ECE, observed / expected: what the update was fitted to make right)", cohort),
        ("the prediction sets' coverage", sets), ("the out-of-distribution flag rate", flag)) if part]
    if model.cohort_rows is not None and fingerprints is not None:
        mask = among(fingerprints, model.cohort_rows)
    elif any(part.get("sha256") for _, part in fitted):  # (a sha256 of None: standard input, a frame)
        digest = file_sha256(source)
        fitted = [(what, part) for what, part in fitted if part.get("sha256") and part["sha256"] == digest]
        mask = np.ones(len(y), dtype=bool) if fitted else None
    else:
        mask = None
    if mask is None:
        return None
    result.cohort_rows_seen = k = int(mask.sum())
    if not k or not fitted:
        return mask
    name = next((part.get("data") for _, part in fitted if part.get("data")), None) or "the recalibration table"
    whats = [what for what, _ in fitted]
    listed = whats[0] if len(whats) == 1 else ", ".join(whats[:-1]) + " and " + whats[-1]
    if k == len(y):
        result.warnings.append(f"{'the one sample is a row' if k == 1 else f'all {k} samples are rows'} of {name}, the "
                               f"table the model was recalibrated on: {listed} here {'is' if len(fitted) == 1 else 'are'} "
                               "in-sample, not a test; evaluate on other samples of the population")
        return mask
    others = ~mask if seen is None else ~mask & ~seen
    n_others = int(others.sum())
    besides = " (not the model's training rows either)" if seen is not None and seen[~mask].any() else ""
    if not n_others:
        result.warnings.append(f"{k} of {len(y)} samples are rows of {name}, the table the model was recalibrated on, "
                               f"and the other rows are rows it was trained on: {listed} include{'s' * (len(fitted) == 1)} "
                               "them in-sample, and no sample here is new to the model")
        return mask
    result.cohort_other_metrics = metrics.compute(result.task, y[others], proba[others], result.classes, threshold,
                                                  weights)
    om = result.cohort_other_metrics

    def shown(key: str) -> str:
        value = om.get(key)
        return f"{value:.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "undefined"

    alone = (f"the {n_others} other sample{'s' * (n_others > 1)}{besides} are too few to measure alone"
             if n_others < _FEW_UNSEEN else
             f"on the {n_others} other samples{besides} alone, log loss {shown('log_loss')}, ECE {shown('ece')}, "
             f"{metrics.display_name(result.main_metric)} {shown(result.main_metric)}")
    result.warnings.append(f"{k} of {len(y)} samples are rows of {name}, the table the model was recalibrated on: "
                           f"{listed} include{'s' * (len(fitted) == 1)} them in-sample; {alone} "
                           "(`cohort_other_metrics` in --json)")
    return mask


# fewer samples than this outside the training rows: no metric of them alone in the warning (one sample's balanced
# accuracy is 0 or 1); `unseen_metrics` still holds it
_FEW_UNSEEN = 5


def evaluate(model: Model, source, *, threshold: float | None = None, by: str | None = None, bootstrap: int = 0,
             seed: int = 0, fill_missing: str | None = None, roles: RoleFlags | None = None,
             chunksize: int | None = None, chunk_mb: float = DEFAULT_CHUNK_MB, stdin=None, n_jobs: int | None = None,
             progress: Callable[[dict], None] | None = None, max_missing: float | None = None,
             uncertainty: Uncertainty | None = None, novel_labels: bool = False,
             decision: str | None = None, prevalence=None, net_benefit=None,
             operating_points=None) -> EvaluationResult:
    """Metrics of `model` on the labelled table `source` (path, "-" or DataFrame).

    The table is read like predict's (features by name, pieces of `chunk_mb` MiB or of `chunksize` rows, the
    shift check); labels are mapped to the
    model's classes (an unknown label is an error). `by` repeats the main metrics per value of a column;
    `bootstrap` resamples (patients when the table has a group column, else rows), seeded by `seed`, give
    95 % percentile intervals for every scalar metric and for each group's main metric (the resamples run
    in `n_jobs` processes; default: the usable cores, up to 4, from 200 resamples on).
    `uncertainty` (binary, multiclass) adds `result.trust`: the prediction sets' empirical coverage and size
    (overall, per class, per `by` group), the abstention rate and accuracy on the accepted samples, the
    risk–coverage curve and the out-of-distribution flag rate (``trust.evaluation_report``).
    `novel_labels` (binary, multiclass): rows whose label the model does not know (a class absent from training)
    are no error but kept apart: every figure above is of the other rows (the shift check too), and
    `result.novel` reports, per such label, how many were flagged out-of-distribution or given an empty or
    multi-class prediction set, and what the model took them for (``novel_report``).
    `prevalence` (binary, multiclass): the probabilities are moved to this class mix, as ``predict_stream`` moves
    them (``mlpcli.prevalence``), and `result.prevalence` gives the mixes (with the one the labels show) and the log
    loss and ECE before and after the move.
    `net_benefit` (binary): risk thresholds in (0, 1) at which `result.net_benefit` gives the net benefit of treating
    the samples at or above each, beside treating everyone and no one (``metrics.net_benefit``; decision-curve
    analysis), with patient-bootstrap intervals when `bootstrap` is given.
    `result.calibration_curve` gives each class's (label's) reliability curve (``metrics.calibration_curve``).
    `operating_points` (binary): risk thresholds in (0, 1) at which `result.operating_points` gives the samples called
    positive, sensitivity, specificity, PPV and NPV of calling positive the samples at or above each
    (``metrics.operating_points``), whatever the model's own threshold, with patient-bootstrap intervals as above; and
    targets ("sens=0.9", "spec=0.95": the threshold reaching them on this table, ``check_operating_points``).
    """
    from .. import metrics  # sklearn: only evaluation needs it (predict stays light to start)

    threshold_given = threshold is not None
    check_risk_thresholds(model.task, net_benefit)  # before the table is read
    check_operating_points(model.task, operating_points)
    rule, threshold = resolve_decision(model, decision, threshold)
    training_rule, training_threshold = rule, threshold
    mix, rule, threshold = resolve_prevalence(model, prevalence, rule, threshold, threshold_given)
    weights = rule.weights(model.task)  # a multiclass model's labels (``mlpcli.decision``); None: argmax
    labels_by = labelled_by(model, rule, threshold_given)
    if not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise ConfigError(f"--bootstrap must be a whole number >= 0, got {bootstrap!r}")
    if bootstrap == 1:  # one resample: a "95 % interval" of zero width
        raise OptionError("--bootstrap 1: one resample gives no interval; 1000 is usual (0 for none)")
    # with no option on, Uncertainty() still gives a classifier the accuracy and its risk–coverage curve
    trust = Trust(model, uncertainty, prevalence=mix) if uncertainty is not None and (
        uncertainty.active or model.task in ("binary", "multiclass")) else None
    if trust is not None:
        trust.rule = labels_by  # the labels evaluate counts (--decision may change the model's rule)
    if novel_labels and model.task not in ("binary", "multiclass"):
        raise OptionError(f"--novel-labels applies to binary and multiclass models; this model is {model.task}, "
                          "whose targets hold no classes to be unknown")
    reader, roles, target_note = read_targets_as(model, roles)
    run = PredictionRun(reader, source, roles=roles, need_target=True, by=by, fill_missing=fill_missing, chunksize=chunksize,
               chunk_mb=chunk_mb, stdin=stdin, progress=progress, max_missing=max_missing, trust=trust,
               novel_labels=novel_labels)
    run.prevalence = mix
    run.keep_fingerprints = model.cohort_rows is not None  # the recalibration table's rows, recognised
    if mix is not None:
        run.notes.append(mix.describe(model.classes, model.recalibrated_on))
    outs, metas = [], []
    kept = ("y", "group", "batch", "by", "set", "ood_score", "ood_p", "seen", "novel", "novel_label", "fingerprint")
    for out, meta in run.blocks():  # kept: outputs and the columns metrics need (not ids), O(n x classes)
        outs.append(out)
        metas.append({k: v for k, v in meta.items() if k in kept})
    out = np.concatenate(outs)
    meta = {k: np.concatenate([m[k] for m in metas]) for k in metas[0]}
    task, classes = model.task, list(model.classes)
    main = metrics.main_metric_name(task)
    novel_doc = None
    if novel_labels:  # the novel rows reported apart; everything below is of the others
        novel, novel_label = meta.pop("novel"), meta.pop("novel_label")
        novel_doc = novel_report(out[novel], novel_label[novel], classes, task, threshold, trust,
                                 None if meta.get("set") is None else meta["set"][novel],
                                 None if meta.get("ood_p") is None else meta["ood_p"][novel], weights)
        out, meta = out[~novel], {k: v[~novel] for k, v in meta.items()}
        if not len(out):  # no row to score: the novel rows' report alone
            result = EvaluationResult(task=task, n=0, classes=classes, metrics={}, main_metric=main, decision=labels_by,
                                      threshold=threshold if task in ("binary", "multilabel") else None, by=by,
                                      shift=run.shift, notes=[*filter(None, [target_note]), *run.notes],
                                      warnings=run.warnings, novel=novel_doc)
            result.notes += _novel_notes(novel_doc, len(novel))
            if trust is not None:
                result.notes.extend(trust.level_notes())
                result.warnings.extend(trust.ood_warnings())
            return result
    proba, y = metrics.as_task_proba(task, out), meta["y"]
    overall = metrics.compute(task, y, proba, classes, threshold, weights)
    result = EvaluationResult(task=task, n=len(y), classes=classes, metrics=overall, main_metric=main, decision=labels_by,
                              threshold=threshold if task in ("binary", "multilabel") else None, by=by,
                              shift=run.shift, notes=[*filter(None, [target_note]), *run.notes,
                                                      *filter(None, [_absent_note(task, y, classes, overall)])],
                              warnings=run.warnings,
                              calibration=_calibration_effect(model, out, y, classes, threshold, overall, weights,
                                                              mix, training_threshold, training_rule),
                              novel=novel_doc)
    result.calibration_curve = _calibration_curves(task, y, proba, classes)
    if mix is not None:
        result.prevalence = _prevalence_effect(model, mix, out, y, overall, training_threshold, training_rule)
        result.notes.append(_prevalence_note(result.prevalence, model.recalibrated_on))
    if novel_doc is not None:
        result.notes += _novel_notes(novel_doc, len(y) + novel_doc["n"])
    # each warning's "other samples alone" leaves out the other's in-sample rows (training rows mixed with the
    # recalibration table's read as "other samples" of each other)
    seen_mask = meta["seen"] if run.seen is not None else None
    cohort_mask = _cohort_rows(result, model, source, uncertainty, meta.get("fingerprint"), y, proba, threshold,
                               weights, seen=seen_mask)
    if run.seen is not None:
        _seen_rows(result, run.seen, seen_mask, y, proba, threshold, model, weights, also=cohort_mask)
    untaught = _untaught_labels(model, y)
    if untaught:
        result.warnings.append(untaught)
    # target columns in another order than the model's, or a target in other units (the first says the second's why)
    unlike = _targets_fit_others(model, y, out, read_as=reader) or _targets_unlike_training(model, y, read_as=reader)
    if unlike:
        result.warnings.append(unlike)
    # on the recalibration table itself the update fits the risks it is judged by: "not of that population, or it has
    # moved; recalibrate on this population" contradicted the in-sample warning above
    own_table = model.recalibration is not None and result.cohort_rows_seen == result.n
    if task in ("binary", "multiclass") and not own_table:
        # the class totals beyond 2 x or 1/2 with their likely cause (another class mix: --prevalence); short of
        # them, a binary model's risks systematically off (O/E 0.67 read "ECE 0.021" without a word)
        totals = class_totals_warning(model, out, y, mix)
        risks = risk_calibration_warning(model, overall, mix) if task == "binary" and not totals else None
        result.warnings += totals + ([risks] if risks else [])
    groups = meta.get("group")
    if net_benefit is not None:
        result.net_benefit = net_benefit_rows(task, y, proba, net_benefit, groups, bootstrap, seed)
    if operating_points is not None:
        result.operating_points = operating_point_rows(task, y, proba, operating_points, groups, bootstrap, seed)
    rng = np.random.default_rng(seed)
    if bootstrap:
        unit_name = f"{run.plan.roles.group} groups" if groups is not None else "rows"
        units = Units.of(groups, np.arange(len(y)))
        result.bootstrap = {"resamples": int(bootstrap), "unit": unit_name, "n_units": len(units), "seed": seed}
        if len(units) < 2:
            # every resample of one patient is that patient's rows: intervals of width 0 would read as certainty
            result.ci = {k: None for k in _scalars(overall)}
            result.notes.append(f"bootstrap: the table holds one {unit_name.removesuffix('s')}, so every resample "
                                "is the same rows and gives no interval (—)")
        else:
            jobs = n_jobs if n_jobs is not None else bootstrap_workers(bootstrap)
            draws = bootstrap_metrics(task, y, proba, classes, threshold, units, rng, bootstrap, max(1, int(jobs)), progress,
                               weights)
            result.ci = {k: percentile_ci(draws[k], bootstrap) for k in _scalars(overall)}
            few = (f"; with {len(units)} {unit_name} the intervals are rough: a resample can only repeat those few, "
                   f"so they understate the spread between cohorts (at least {BOOTSTRAP_FEW_UNITS} are wanted)"
                   if len(units) < BOOTSTRAP_FEW_UNITS else "")
            result.notes.append(f"bootstrap: {bootstrap} resamples of {len(units)} {unit_name} (seed {seed}); "
                                f"95 % percentile intervals{few}")
            if task == "multilabel" and overall.get("balanced_accuracy") is not None:
                lacking = int(np.isnan(np.asarray(draws["balanced_accuracy"], dtype=float)).sum())
                if lacking:  # scored over fewer labels, a resample would lift or sink the mean by itself
                    result.notes.append(f"bootstrap: {lacking} of {bootstrap} resamples lacked both values of some "
                                        "label that the table has, and are left out of the intervals of balanced "
                                        "accuracy and F1 macro (means over the table's labels)")
            if bootstrap < BOOTSTRAP_MIN:
                result.warnings.append(f"--bootstrap {bootstrap}: the 95 % intervals' ends are the extremes of a few "
                                       f"resamples, not their 2.5 and 97.5 percentiles; give at least {BOOTSTRAP_MIN} "
                                       "(1000 is usual)")
        outside = [k for k, ci in result.ci.items() if ci is not None and isinstance(overall.get(k), (int, float))
                   and math.isfinite(overall[k]) and not ci[0] <= overall[k] <= ci[1]]
        # ECE above all: resampled rows repeat, and repeats fill bins with agreeing errors (a few resamples: the
        # warning above says why their intervals miss)
        if outside and bootstrap >= BOOTSTRAP_MIN:
            result.notes.append(
                f"the bootstrap interval of {', '.join(outside)} does not contain its estimate: the metric is "
                "biased on resampled rows (ECE grows when rows repeat), so its interval shows the spread of the "
                "estimate, shifted; it is not a range for the true value")
    by_values = _binned(meta["by"], by, result.notes) if by is not None else None  # one grouping for every table
    if trust is not None:
        P = metrics.class_proba(task, out)
        pred = metrics.predicted_class(task, out, threshold, weights)
        result.trust = evaluation_report(trust, P, y, pred, meta.get("set"), meta.get("ood_p"), by_values, by,
                                         groups=groups if groups is not None and len(np.unique(groups)) < len(y) else None)
        result.notes.extend(trust.level_notes() + _trust_notes(result.trust))
        result.warnings.extend(trust.ood_warnings())
        if meta.get("ood_p") is not None:  # scored here, not counted by Trust.columns
            result.warnings.extend(trust.excess_ood(meta["ood_p"] < trust.options.ood_alpha, meta.get("batch"),
                                                    groups))
    if by is not None:
        result.groups = _by_groups(task, y, proba, classes, threshold, by_values, groups, overall, main, bootstrap,
                                   rng, by, result.warnings, result.notes, weights,
                                   risks=mix is None and not _weighted(model), recalibrated_on=model.recalibrated_on)
    return result


def _calibration_curves(task: str, y: np.ndarray, proba: np.ndarray, classes: list) -> dict | None:
    """``EvaluationResult.calibration_curve``: each class's (label's) reliability curve against being of it; a binary
    model's positive class alone (its other class's is the mirror image); None for regression."""
    from .. import metrics

    if task not in ("binary", "multiclass", "multilabel"):
        return None
    if task == "multilabel":
        Y, P = np.asarray(y).reshape(len(y), -1), np.asarray(proba, dtype=np.float64).reshape(len(y), -1)
        return {str(c): metrics.calibration_curve(Y[:, j], P[:, j]) for j, c in enumerate(classes)}
    P = metrics.class_proba(task, np.asarray(proba, dtype=np.float64).reshape(len(y), -1))
    y = np.asarray(y).reshape(-1).astype(np.int64)
    shown = [len(classes) - 1] if task == "binary" else range(len(classes))
    return {str(classes[k]): metrics.calibration_curve(y == k, P[:, k]) for k in shown}


def novel_report(out: np.ndarray, labels: np.ndarray, classes: list, task: str, threshold: float,
                 trust: Trust | None, sets: np.ndarray | None, ood_p: np.ndarray | None,
                 weights: np.ndarray | None = None) -> dict:
    """How the model treats the rows of labels it does not know (evaluate --novel-labels): the network's outputs
    ``out`` (n, outputs), their ``labels`` (n,), and, when asked for, their prediction sets ``sets`` (n, C) and
    out-of-distribution p-values ``ood_p`` (n,). Per label (and over them all, ``all``): n; ``ood``, the share
    flagged (p < --ood-alpha; None without --ood, or when the model cannot flag at that level: ``Trust.ood_warnings``);
    ``empty_or_multi_set``, the share whose set is empty or holds several classes (None without --coverage), and
    the two apart; ``caught``, the share either way — the held-out class figure of ``benchmarks/bench_conformal.py``
    —; ``predicted_as``, the 3 classes most predicted for them, with counts and shares."""
    from ..metrics import predicted_class  # sklearn: only evaluation needs metrics

    pred = predicted_class(task, out, threshold, weights)  # as predict labels them
    alpha = trust.options.ood_alpha if trust is not None and trust.basis is not None else None
    can_flag = alpha is not None and trust.ood_floor() < alpha
    flagged = ood_p < alpha if can_flag and ood_p is not None else None
    size = None if sets is None else sets.sum(axis=1)

    def share(mask: np.ndarray | None, idx: np.ndarray) -> float | None:
        return None if mask is None or not len(idx) else float(mask[idx].mean())

    unsure = None if size is None else size != 1
    caught = None if flagged is None and unsure is None else (
        flagged if unsure is None else unsure if flagged is None else flagged | unsure)

    def row(idx: np.ndarray) -> dict:
        counts = np.bincount(pred[idx], minlength=len(classes))
        top = sorted(np.flatnonzero(counts).tolist(), key=lambda c: (-counts[c], c))[:_NOVEL_TOP]
        return {"n": int(len(idx)), "ood": share(flagged, idx),
                "empty_set": share(None if size is None else size == 0, idx),
                "multi_class_set": share(None if size is None else size > 1, idx),
                "empty_or_multi_set": share(unsure, idx), "caught": share(caught, idx),
                "n_caught": None if caught is None else int(caught[idx].sum()),
                "predicted_as": [{"class": str(classes[c]), "n": int(counts[c]), "share": float(counts[c] / len(idx))}
                                 for c in top]}

    keys = np.asarray([str(v) for v in labels], dtype=object)
    per_label = [{"label": v, **row(np.flatnonzero(keys == v))} for v in sorted(set(keys.tolist()), key=natural_key)]
    return {"n": int(len(keys)), "labels": per_label, "all": row(np.arange(len(keys))) if len(keys) else None,
            "ood_alpha": alpha, "ood_can_flag": None if alpha is None else bool(can_flag),
            "coverage": None if sets is None else trust.options.coverage,
            "caught_by": [w for w, m in (("ood", flagged), ("empty_or_multi_set", unsure)) if m is not None]}


_NOVEL_TOP = 3  # classes named per novel label, the most predicted first


def _novel_notes(doc: dict, n_rows: int) -> list[str]:
    """What evaluate --novel-labels says of the rows kept apart (the table carries the detail)."""
    k, labels = doc["n"], [r["label"] for r in doc["labels"]]
    if not k:
        return [f"--novel-labels: every one of the {n_rows:,} samples holds a label the model knows"]
    which = f"{'labels' if len(labels) > 1 else 'a label'} the model does not know ({quoted(labels, 5)})"
    if k == n_rows:
        out = [f"--novel-labels: all {k:,} samples hold {which}: no metric can be computed (they need samples of "
               "the model's classes); how the model treats them is reported alone (`novel` in --json)"]
    else:
        out = [f"--novel-labels: {k:,} of {n_rows:,} samples hold {which}, kept apart: the metrics, intervals, "
               f"groups and shift check are of the other {n_rows - k:,} (`novel` in --json)"]
    what = {"ood": "flagged ood", "empty_or_multi_set": "given an empty or multi-class set"}
    if doc["caught_by"]:
        out.append("novel labels caught (" + " or ".join(what[c] for c in doc["caught_by"]) + "): "
                   + ", ".join(f"{r['label']!r} {r['caught']:.0%} of {r['n']:,}" for r in doc["labels"][:5])
                   + (", ..." if len(doc["labels"]) > 5 else ""))
    if doc["ood_can_flag"] is False:
        out.append(f"novel labels: their ood share is not given: the model cannot flag any sample at --ood-alpha "
                   f"{doc['ood_alpha']:.12g} (see the warning)")
    missing = [(opt, what) for opt, c, what in (("--coverage 0.9", "empty_or_multi_set", "prediction sets"),
                                                ("--ood", "ood", "out-of-distribution flags"))
               if c not in doc["caught_by"] and not (c == "ood" and doc["ood_can_flag"] is False)]
    if missing:
        out.append(f"novel labels: add {' and '.join(o for o, _ in missing)} to count how many of them the model's "
                   f"{' and '.join(w for _, w in missing)} catch")
    return out


def read_targets_as(model: Model, roles: RoleFlags | None) -> tuple[Model, RoleFlags | None, str | None]:
    """(the model as the table reader should see it, the roles, a note or None) for `roles.target` (--target),
    the table's label column(s), which need not bear the model's target names.

    One column per target of the model (else OptionError). A classifier's labels are checked against its
    classes whatever the column's name, so it is read as it is. The reader matches a regression or multi-label
    table's target columns to the model's output names: columns named otherwise (`age_years` for the model's
    `age`) are read, in the order given, through a copy of the model bearing their names (the metrics keep the
    model's). The model's own names are read by name in any order; one of them given at another target's
    place is an error."""
    given = listed_names(roles.target) if roles is not None else []
    if not given:
        return model, roles, None
    if model.task in ("multilabel", "regression"):
        own = [str(c) for c in model.classes]  # the outputs' names, which the reader checks the columns against
    else:
        own = listed_names((model.roles or {}).get("target") or model.target_names) or ["label"]
    twice = [name for i, name in enumerate(given) if name in given[:i]]
    if twice:
        raise OptionError(f"--target names the column {twice[0]!r} twice; name each target column once")
    if len(given) != len(own):
        raise OptionError(f"--target names {len(given)} column{'s' * (len(given) != 1)} ({quoted(given)}); the "
                          f"model has {len(own)} target{'s' * (len(own) != 1)} ({quoted(own)}): name one column "
                          f"per target{', in this order' if len(own) > 1 else ''}")
    if model.task not in ("multilabel", "regression") or given == own:
        return model, roles, None
    if sorted(given) == sorted(own):  # the model's own columns, listed in another order
        return model, replace(roles, target=own), None
    misplaced = [(i, name) for i, name in enumerate(given) if name in own and own[i] != name]
    if misplaced:
        i, name = misplaced[0]
        raise OptionError(f"--target lists {name!r} as target {i + 1}, but it is the model's target "
                          f"{own.index(name) + 1}; list the table's columns in the model's order ({quoted(own)})")
    reader = replace(model, classes=list(given), target_names=list(given),
                     roles={**(model.roles or {}), "target": list(given)})
    return reader, roles, (f"--target: the table's {quoted(given, 10)} read as the model's {quoted(own, 10)}"
                           + (" (in that order)" if len(own) > 1 else ""))


# A binary model's risks are said to be off on a table when the calibration intercept's interval excludes 0 and
# observed / expected events lie outside this band, or the slope's interval excludes 1 and it lies outside the other
OE_BAND = (0.8, 1.25)
SLOPE_BAND = (0.8, 1.25)


def _weighted(model: Model) -> bool:
    from ..model_summary import is_weighted

    return is_weighted(model.config or {})


def _risks_off(m: dict, tests: int = 1) -> list[str]:
    """How binary risks are systematically off (``m``: ``metrics.compute``'s binary set, with ``calibration``), in
    words: too high or too low on average (O/E outside OE_BAND, the intercept's 95 % interval beside 0), too extreme
    or too moderate (the slope outside SLOPE_BAND, its interval beside 1); [] when they hold. ``tests``: how many
    such judgements are made at once (the groups of --by): the intervals are widened to Bonferroni's 1 - 0.05 / tests
    (the words still give the 95 % ones)."""
    cal = m.get("calibration") or {}
    oe, lo_hi = m.get("observed_expected"), cal.get("intercept_ci")
    slope, slope_ci = cal.get("slope"), cal.get("slope_ci")
    if tests > 1:  # Wald intervals: estimate +- 1.96 SE, widened to the Bonferroni quantile
        widen = normal_quantile(1 - 0.025 / tests) / Z_95

        def wider(ci, centre):
            return None if ci is None or centre is None else [centre - (centre - ci[0]) * widen,
                                                              centre + (ci[1] - centre) * widen]

        judged_int, judged_slope = wider(lo_hi, cal.get("intercept")), wider(slope_ci, slope)
    else:
        judged_int, judged_slope = lo_hi, slope_ci
    parts = []
    if oe is not None and judged_int is not None and not judged_int[0] <= 0 <= judged_int[1] \
            and not OE_BAND[0] <= oe <= OE_BAND[1]:
        way = "too high" if oe < 1 else "too low"
        parts.append(f"{way} on average: {cal['observed']:,} events where the risks expect {cal['expected']:.4g} "
                     f"(observed / expected {oe:.2f}; calibration intercept {cal['intercept']:+.2f}, 95 % CI "
                     f"{lo_hi[0]:+.2f} – {lo_hi[1]:+.2f})")
    if slope is not None and judged_slope is not None and not judged_slope[0] <= 1 <= judged_slope[1] \
            and not SLOPE_BAND[0] <= slope <= SLOPE_BAND[1]:
        way = "too extreme (an overfitted or transported model)" if slope < 1 else "too moderate"
        parts.append(f"{way}: calibration slope {slope:.2f} (95 % CI {slope_ci[0]:.2f} – {slope_ci[1]:.2f})")
    return parts


def risk_calibration_warning(model: Model, m: dict, mix=None) -> str | None:
    """A binary model's warning when its risks are systematically off on this table (``m``: ``metrics.compute``'s
    binary set, with ``calibration``): too high or too low on average (calibration-in-the-large: O/E outside
    OE_BAND, the intercept's 95 % interval beside 0), or too extreme or too moderate (the slope outside SLOPE_BAND,
    its interval beside 1) — which the top-label ECE cannot show (O/E 0.67, intercept -0.80 read "ECE 0.021").
    Names no single cause (a shift in the outcome's prevalence, in the predictors, or an overfitted model look
    alike here); says what to do. None when the risks hold."""
    from ..model_summary import is_weighted

    parts = _risks_off(m)
    if not parts:
        return None
    positive = str(model.classes[-1])
    if mix is not None:
        cause = " after --prevalence moved them: more than the outcome's share differs here"
    elif is_weighted(model.config or {}):
        cause = (": the class weights (--class-weight, --pos-weight) move the probabilities on purpose, so read them "
                 "as scores")
    else:
        cause = ""
    how = ("`mlpcli recalibrate MODEL LABELLED_TABLE -o NEW` fits an update on labelled samples of it; judge NEW on "
           "others")
    if model.recalibrated_on is not None:
        cause += (f" (the model was recalibrated on {model.recalibrated_on}: this table is not of that population, or "
                  "it has moved)")
        how = "`mlpcli recalibrate` the model it was made from, on labelled samples of this population"
    return (f"the risks of {positive!r} are systematically {'; and '.join(parts)} on this table{cause} — the "
            f"top-label ECE does not show it. Recalibrate on this population before reading them as risks ({how}; "
            "--prevalence moves them when only the outcome's share differs and is known); the intervals count samples "
            "as independent")


def class_totals_warning(model: Model, proba: np.ndarray, y: np.ndarray, mix=None) -> list[str]:
    """A warning naming the classes whose probabilities on these rows (``proba`` as ``predict_output`` gives them,
    ``y`` class indices) add up far from their counts (``calibration.class_totals``), with what it likely means:
    a table whose class mix differs from training's (the probabilities carry training's shares: a cohort of 4 %
    positives scored by a model trained on 50 % read "ECE 0.048" while P(positive) averaged 0.354; --prevalence
    moves them), the class weights, or probabilities that are off for the class. The top-label ECE cannot show it:
    it bins max(p, 1 - p). ``mix``: the cohort mix ``proba`` was moved to (--prevalence), which the warning then
    names as what they carry."""
    from ..calibration import class_totals
    from ..model_summary import is_weighted

    off = class_totals(proba, y)
    if not off:
        return []
    n = len(y)
    shares = model.class_shares()
    parts = [f"{str(model.classes[t.index])!r} add up to {t.expected:.3g} where {t.observed} of the {n} samples are "
             f"of it ({t.ratio:.2g} x)" for t in off[:3]]
    more = f" (and {len(off) - 3} more classes)" if len(off) > 3 else ""
    if mix is not None:
        given = ", ".join(f"{str(model.classes[t.index])!r} {mix.cohort[t.index]:.1%}" for t in off[:3])
        why = (f"they were moved to the class mix --prevalence gave ({given}), which is not this table's, or they are "
               "off for these classes here")
    elif is_weighted(model.config or {}):
        why = ("the model was trained with class weights (--class-weight, --pos-weight), which move its probabilities "
               "on purpose: read them as scores, not as each class's chances")
    elif shares is not None and all(abs(math.log(max(t.expected / n, 1e-12) / shares[t.index])) < math.log(1.5)
                                    for t in off):
        mixes = ", ".join(f"{str(model.classes[t.index])!r} {shares[t.index]:.1%} in training, {t.observed / n:.1%} "
                          "here" for t in off[:3])
        why = (f"this table's class mix differs from the training table's ({mixes}), and the probabilities carry "
               "training's mix (prior shift): they overstate the classes that are rarer here and understate the others, "
               "and ECE, which bins the top probability, does not show it; --prevalence CLASS=SHARE,... moves them "
               "to a cohort's known mix")
    else:
        why = ("the probabilities are off for these classes on this table (the top-label ECE does not show it): check "
               "their recall before trusting their probabilities")
    return [f"the probabilities of {'; '.join(parts)}{more}: {why}"]


# A regression truth whose mean lies this many training SDs from the training target's mean, or whose SD is this
# many times larger or smaller, reads as another quantity (``_targets_unlike_training``)
TARGET_FAR_SD = 5.0
TARGET_SPREAD_RATIO = 10.0


def _targets_unlike_training(model: Model, y: np.ndarray, read_as: Model | None = None) -> str | None:
    """A regression model's warning naming the targets whose truth here is far from the training target (its mean
    TARGET_FAR_SD training SDs away, or its SD TARGET_SPREAD_RATIO times off): another quantity or unit, or
    --target columns given in another order than the model's (they are read by position). None otherwise."""
    members = getattr(model, "members", None) or []
    scaling = getattr(members[0], "target_scaling", None) if members else None  # (a member's training rows: close
    if model.task != "regression" or not scaling or len(y) < 5:  # enough to the others' for a 5-SD test)
        return None
    Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    mean0, sd0 = np.asarray(scaling["mean"], dtype=np.float64), np.asarray(scaling["sd"], dtype=np.float64)
    if Y.shape[1] != len(mean0):
        return None
    names = [str(c) for c in (read_as.classes if read_as is not None else model.classes)]
    own = [str(c) for c in model.classes]
    said = []
    for j in range(Y.shape[1]):
        m, sd = float(np.mean(Y[:, j])), float(np.std(Y[:, j]))
        if not sd0[j] > 0:
            continue
        spread = sd / sd0[j]
        if abs(m - mean0[j]) > TARGET_FAR_SD * sd0[j] or (sd > 0 and not 1 / TARGET_SPREAD_RATIO < spread < TARGET_SPREAD_RATIO):
            source = f" (read from {names[j]!r})" if names[j] != own[j] else ""
            said.append(f"{own[j]!r}{source}: mean {m:.4g}, SD {sd:.3g}, in training {mean0[j]:.4g} and {sd0[j]:.3g}")
    if not said:
        return None
    order = " — or --target names the columns in another order than the model's targets, which are read by position" \
        if len(mean0) > 1 else ""
    return (f"the truth of {'; '.join(said[:3])}{' …' if len(said) > 3 else ''} is far from the training target: "
            f"another quantity or unit{order}; the metrics compare the model with it as given")


# A target's predictions fitting another target's truth better than its own by this much R² (and at least
# SWAP_MIN_R2) read as target columns given in another order (``_targets_fit_others``)
SWAP_R2_GAIN = 0.3
SWAP_MIN_R2 = 0.3


def _targets_fit_others(model: Model, y: np.ndarray, out: np.ndarray, read_as: Model | None = None) -> str | None:
    """A multi-target regression model's warning when the predictions of a target fit another target's truth far
    better than its own (R² SWAP_R2_GAIN higher, at least SWAP_MIN_R2): the truth columns are read by position, and
    two given in swapped order scored R² -1.40 for a target the model predicts well. None otherwise."""
    if model.task != "regression" or len(y) < 5:
        return None
    Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    P = np.asarray(out, dtype=np.float64).reshape(len(y), -1)
    k = Y.shape[1]
    if k < 2 or P.shape[1] != k:
        return None
    sd = Y.std(axis=0)
    if not (sd > 0).all():
        return None
    # r2[i, j]: the predictions of target j against the truth of column i
    r2 = np.array([[1.0 - np.mean((Y[:, i] - P[:, j]) ** 2) / sd[i] ** 2 for j in range(k)] for i in range(k)])
    names = [str(c) for c in (read_as.classes if read_as is not None else model.classes)]
    own = [str(c) for c in model.classes]
    said = []
    for j in range(k):
        i = int(np.argmax(r2[:, j]))
        if i != j and r2[i, j] >= SWAP_MIN_R2 and r2[i, j] >= r2[j, j] + SWAP_R2_GAIN:
            said.append(f"the predictions of {own[j]!r} fit the column read as {own[i]!r} ({names[i]!r}; R² "
                        f"{r2[i, j]:.2f}) better than its own ({names[j]!r}; R² {r2[j, j]:.2f})")
    if not said:
        return None
    return ("; ".join(said[:3]) + ": are the target columns in the model's order (" + ", ".join(map(repr, own))
            + ")? They are read by position")


def _untaught_labels(model: Model, y: np.ndarray) -> str | None:
    """A warning naming the multi-label labels that never changed in the training table (never positive, or always)
    but do in this one: the model could only learn that one value, so their metrics here score a constant guess,
    not a learnt one. None for other tasks, or a model that keeps no training counts."""
    split = model.split or {}
    counts = split.get("class_counts_train")
    if model.task != "multilabel" or not counts or split.get("n_train") is None:
        return None
    val = split.get("class_counts_val") or {}
    n = int(split["n_train"]) + int(split.get("n_val") or 0)
    Y = y.reshape(len(y), -1)
    said = []
    for j, label in enumerate(model.classes):
        positives = counts.get(str(label), counts.get(label))
        if positives is None:
            continue
        positives += val.get(str(label), val.get(label, 0))
        if 0 < positives < n or Y[:, j].min() == Y[:, j].max():
            continue
        said.append(f"{str(label)!r} ({'never positive' if positives == 0 else 'always positive'})")
    if not said:
        return None
    k = len(said)
    return (f"label{'s' * (k > 1)} {', '.join(said)} never changed in the training table: the model could only learn "
            f"to predict that value, so {'their' if k > 1 else 'its'} metrics here score a constant guess; retrain "
            "on samples of both kinds")


def _absent_note(task: str, y: np.ndarray, classes: list, overall: dict | None = None) -> str | None:
    """What the table's missing classes leave undefined (shown as —), or None when it holds every class: a
    cohort of controls alone has no ROC AUC; one without a rare subtype averages the one-vs-rest AUC over the
    classes it holds. ``overall`` (the metrics, with their confusion matrix): an absent class the model
    predicted counts 0 in F1 macro (scikit-learn's convention), which the note says with how often, since
    F1 macro then sits far below the balanced accuracy (0.59 against 0.83 in a 3-class cohort without one)."""
    if task == "multilabel" and len(y):
        from ..decision import labels_without_both

        one_valued = labels_without_both(y.reshape(len(y), -1), classes)
        if not one_valued:
            return None
        every = len(one_valued) == y.reshape(len(y), -1).shape[1]
        left = ("so the balanced accuracy, over the labels that vary, is undefined (—)" if every else
                "left out of the balanced accuracy (the mean over the other labels) and, where never called "
                "positive either, of F1 macro")
        return (f"label{'s' * (len(one_valued) > 1)} {', '.join(map(repr, one_valued))} hold{'s' * (len(one_valued) == 1)} "
                f"one value in every row: {left}; their ROC AUC is undefined (—)")
    if task not in ("binary", "multiclass") or len(y) == 0:
        return None
    support = np.bincount(y.reshape(-1).astype(np.int64), minlength=len(classes))
    absent = [c for c, k in zip(classes, support) if k == 0]
    if not absent:
        return None
    if task == "binary":
        held = int(np.argmax(support))  # no positive (class 1): no recall or average precision either
        undefined = "ROC AUC and MCC" if held else "ROC AUC, average precision, recall and MCC"
        return (f"the table holds class {str(classes[held])!r} alone: {undefined} are undefined (—), and the balanced "
                f"accuracy is {str(classes[held])!r}'s recall alone ({'sensitivity' if held else 'specificity'}), not "
                "a mean over classes")
    present = [c for c, k in zip(classes, support) if k > 0]
    if len(present) == 1:
        return f"the table holds class {str(present[0])!r} alone: ROC AUC, MCC and the other classes' recall are " \
               f"undefined (—), and the balanced accuracy is {str(present[0])!r}'s recall alone, not a mean over classes"
    predicted = np.asarray((overall or {}).get("confusion_matrix") or np.zeros((0, 0))).sum(axis=0)
    called = [(c, int(predicted[k])) for k, c in enumerate(classes) if support[k] == 0 and k < len(predicted)
              and predicted[k] > 0]
    f1 = ("; F1 macro counts " + ", ".join(f"{str(c)!r} (predicted for {n:,} sample{'s' * (n != 1)}, each an error)"
                                          for c, n in called)
          + " as 0, as scikit-learn does") if called else ""
    return (f"{len(absent)} of the model's {len(classes)} classes absent from the table ({quoted(absent)}): their "
            f"recall and ROC AUC are undefined (—); ROC AUC (one-vs-rest) is the mean over the {len(present)} "
            f"classes present{f1}")


def _trust_notes(doc: dict) -> list[str]:
    """One line per part of the trust report (the tables carry the detail)."""
    out = []
    sets = doc.get("sets")
    if sets is not None:
        per_group = sets.get("coverage_per_group")
        out.append(f"prediction sets ({sets['score'].upper()}{', Mondrian' if sets['mondrian'] else ''}): coverage "
                   f"{sets['coverage']:.3f} at level {sets['level']:.12g}"
                   + ("" if per_group is None else f" ({per_group:.3f} with each --group counted once, "
                                                   "the share the level is for)")
                   + f", mean size {sets['mean_set_size']:.2f}, {sets['empty']:.1%} empty")
    ab = doc.get("abstention")
    if ab is not None:
        acc = ab["accuracy_accepted"]
        out.append(f"abstention: {ab['rate']:.1%} {ab['label']!r}; accuracy on the accepted "
                   f"{'—' if acc is None else f'{acc:.3f}'} against {ab['accuracy_all']:.3f} on all")
    ood = doc.get("ood")
    if ood is not None:
        out.append(f"out-of-distribution: {ood['rate']:.1%} flagged (p < {ood['alpha']:.12g})" if ood["rate"] is not None
                   else f"out-of-distribution: n/a (p < {ood['alpha']:.12g}): none can be flagged at this level, "
                        "see the warning")
    return out


def _calibration_effect(model: Model, out: np.ndarray, y: np.ndarray, classes: list, threshold: float,
                        overall: dict, weights: np.ndarray | None = None, mix=None, training_threshold: float = 0.5,
                        training_rule=None) -> dict | None:
    """Log loss and ECE of the calibrated outputs (as evaluated) beside those of the outputs before the
    temperature and any recalibration, recovered exactly: tempering by 1/T undoes tempering by T, and
    ``Recalibration.undo`` the update. With ``mix`` (the probabilities moved
    to a cohort's class mix) both are of the probabilities at the mix they carry, moved back: the calibration's
    effect alone (``_prevalence_effect`` gives the move's)."""
    from .. import metrics
    from ..calibration import temper, temperature_field

    link = model.output_activation()
    rc = model.recalibration
    if (model.temperature is None and rc is None) or link not in ("softmax", "sigmoid") or "log_loss" not in overall:
        return None
    if mix is not None:
        out = _at_training_mix(mix, out)
        threshold, weights = training_threshold, training_rule.weights(model.task)
        overall = metrics.compute(model.task, y, metrics.as_task_proba(model.task, out), classes, threshold, weights)
    raw = out if rc is None else rc.undo(out, link)
    if model.temperature is not None:
        raw = temper(raw, 1.0 / model.temperature, link)
    before = metrics.compute(model.task, y, metrics.as_task_proba(model.task, raw), classes, threshold, weights)
    return {"temperature": temperature_field(model.temperature), "log_loss_before": before.get("log_loss"),
            "log_loss_after": overall.get("log_loss"), "ece_before": before.get("ece"), "ece_after": overall.get("ece"),
            **({"recalibration": rc.to_dict()} if rc is not None else {})}


def _at_training_mix(mix, out: np.ndarray) -> np.ndarray:
    """Outputs moved to the cohort mix ``mix`` moved back to the training mix (the move is undone exactly, up to
    rounding: P ∝ P' π / π')."""
    from ..prevalence import adjust

    return adjust(out, np.asarray(mix.cohort), np.asarray(mix.training))


def _prevalence_effect(model: Model, mix, out: np.ndarray, y: np.ndarray, overall: dict, training_threshold: float,
                       training_rule) -> dict:
    """evaluate's ``prevalence``: the training and cohort mixes (``Prevalence.to_dict``), the mix the labels show
    (``observed``), and log loss and ECE of the probabilities at the training mix (``*_training_mix``) and moved to
    the cohort's (``*_cohort_mix``, the figures evaluated)."""
    from .. import metrics

    classes = list(model.classes)
    before = metrics.compute(model.task, y, metrics.as_task_proba(model.task, _at_training_mix(mix, out)), classes,
                             training_threshold, training_rule.weights(model.task))
    observed = np.bincount(np.asarray(y).reshape(-1).astype(np.int64), minlength=len(classes)) / max(1, len(y))
    return {**mix.to_dict(classes), "observed": {str(c): float(v) for c, v in zip(classes, observed)},
            "log_loss_training_mix": before.get("log_loss"), "log_loss_cohort_mix": overall.get("log_loss"),
            "ece_training_mix": before.get("ece"), "ece_cohort_mix": overall.get("ece")}


def _prevalence_note(doc: dict, recalibrated_on: str | None = None) -> str:
    """evaluate's note on --prevalence: the moved probabilities' log loss and ECE against the training mix's (a
    recalibrated model's: the mix of the table it was recalibrated on, ``recalibrated_on``), and the mix given beside
    the one the labels show."""
    def shown(v) -> str:
        return f"{v:.3f}" if isinstance(v, (int, float)) and math.isfinite(v) else "—"

    pairs = [f"{c} {100 * v:.3g} % ({100 * doc['observed'][c]:.3g} %)" for c, v in list(doc["cohort"].items())[:6]]
    more = f" and {len(doc['cohort']) - 6} more" if len(doc["cohort"]) > 6 else ""
    carried = "the training class mix" if recalibrated_on is None else f"the class mix of {recalibrated_on}"
    return (f"--prevalence: log loss {shown(doc['log_loss_training_mix'])} at {carried}, "
            f"{shown(doc['log_loss_cohort_mix'])} moved to the mix given; ECE {shown(doc['ece_training_mix'])} and "
            f"{shown(doc['ece_cohort_mix'])}; the mix given against the labels' (in brackets): {', '.join(pairs)}{more}")


def _binned(values: np.ndarray, by: str, notes: list[str]) -> np.ndarray:
    """The `--by` values as groups: unchanged, unless every value is a number (or missing) and there are
    more than BY_MAX_NUMERIC_VALUES distinct ones; then BY_BINS quantile bins labelled "Q1 [lo, hi]" (missing
    values: "NA"), and a note says so."""
    series = pd.Series(values, dtype=object)
    if len(values) and series.astype(str).nunique() == 1:  # one group: the whole table again
        notes.append(f"--by {by}: every scored row has the same value ({str(values[0])!r}), so its one group is "
                     "the whole table; --by takes a column that varies across the samples (a batch, site or patient)")
        return values
    present = (series.notna() & ~series.astype(str).str.strip().isin(["", "NA", "nan"])).to_numpy()
    numbers = pd.to_numeric(series[present], errors="coerce").to_numpy(dtype=np.float64)
    distinct = np.unique(numbers)
    if np.isnan(numbers).any():  # text: each value a group, unless every sample has its own (an id column)
        n_present = int(present.sum())
        if n_present > BY_MAX_NUMERIC_VALUES and series[present].astype(str).nunique() == n_present:
            raise OptionError(f"--by {by}: every one of its {n_present:,} values is different, one group per sample "
                              "(an id column?); --by takes a column that groups samples: a batch, site or patient")
        return values
    if len(distinct) <= BY_MAX_NUMERIC_VALUES:
        return values
    codes = np.asarray(pd.qcut(numbers, BY_BINS, labels=False, duplicates="drop"), dtype=np.int64)
    used = np.unique(codes)
    names = {k: f"Q{i + 1} [{numbers[codes == k].min():.4g}, {numbers[codes == k].max():.4g}]"
             for i, k in enumerate(used)}
    labels = np.full(len(values), "NA", dtype=object)
    labels[present] = [names[k] for k in codes]
    notes.append(f"--by {by}: a numeric column with {len(distinct):,} distinct values, grouped into {len(used)} "
                 f"quantile bins (one group per value would hold one or two samples)")
    return labels


def by_rule(bootstrap: int) -> str:
    """The `--by` flagging rule in words (after "a group is flagged when"), for the notes and the help."""
    worse = (f"its main metric is worse than overall by more than {BY_WORSE_SCORE:g} (an RMSE {BY_WORSE_RMSE_RATIO:g} "
             "times the overall one; with several targets, any target's RMSE against its own)")
    if bootstrap:
        return f"{worse} and its 95 % interval lies wholly on the worse side of the overall value"
    return (f"{worse} and each class it holds has at least {BY_MIN_CLASS_SAMPLES} samples (a regression group "
            f"{BY_MIN_SAMPLES}; with --bootstrap: its 95 % interval instead)")


def _too_few(task: str, y: np.ndarray, classes: list) -> str | None:
    """Why a group's rows ``y`` are too few to judge its main metric without --bootstrap ("HER2: 1 sample"),
    or None: a class (a label's 0s or 1s) it holds with fewer than BY_MIN_CLASS_SAMPLES samples, or a
    regression group of fewer than BY_MIN_SAMPLES."""
    if task == "regression":
        return f"{len(y)} samples" if len(y) < BY_MIN_SAMPLES else None
    if task == "multilabel":
        Y = y.reshape(len(y), -1).astype(int)
        counts = [(f"{c}={v}", int((Y[:, j] == v).sum())) for j, c in enumerate(classes) for v in (1, 0)]
    else:
        counts = list(zip(map(str, classes), np.bincount(y.reshape(-1).astype(int), minlength=len(classes)).tolist()))
    thin = sorted((k, name) for name, k in counts if 0 < k < BY_MIN_CLASS_SAMPLES)
    if not thin:
        return None
    return ", ".join(f"{name}: {k} sample{'s' * (k != 1)}" for k, name in thin[:3]) + (", ..." if len(thin) > 3 else "")


def _target_rmse(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each target's RMSE (k,) over the rows of ``y`` (n, k) and ``proba`` (n, k), in its own units."""
    return np.sqrt(np.mean((y.reshape(proba.shape) - proba) ** 2, axis=0))


def _by_groups(task, y, proba, classes, threshold, values, groups, overall, main, bootstrap, rng, by, warns,
               notes=None, weights=None, risks: bool = True, recalibrated_on: str | None = None):
    """The --by table's rows: the main metrics per group, flagged when worse than overall (``by_rule``); a binary
    model's group whose risks are systematically off (``_risks_off``) is a warning too (unless ``risks`` is False:
    class weights make them scores), and its rows carry observed / expected."""
    from .. import metrics

    keys = [k for k in _MAIN_KEYS[task] if k in overall]  # several regression targets: no pooled correlation
    out, unjudged = [], []
    ref = overall.get(main)
    lower_better = main == "rmse"
    # several regression targets are judged each in its own units: the pooled RMSE is, in effect, the RMSE of the
    # target of the largest units alone (age in years beside an IC50 in mol/L), blind to the others
    refs = [t["rmse"] for t in overall.get("per_target") or []] if task == "regression" else []
    n_groups = len(set(values.tolist()))
    for value in sorted(set(values.tolist()), key=natural_key):
        idx = np.flatnonzero(values == value)
        m = metrics.compute(task, y[idx], proba[idx], classes, threshold, weights)
        row = {"value": value, "n": int(len(idx)), "metrics": {k: m.get(k) for k in keys}}
        if task == "binary" and risks:  # each group on its own evidence: both outcomes 10 times, Bonferroni's level
            counts = np.bincount(np.asarray(y[idx]).astype(np.int64).reshape(-1), minlength=2)
            off = _risks_off(m, tests=n_groups) if counts.min() >= BY_MIN_CLASS_SAMPLES else []
            row["risks_off"] = bool(off)
            if off:
                how = ("`mlpcli recalibrate` the model it was made from" if recalibrated_on is not None
                       else "`mlpcli recalibrate`")
                warns.append(f"--by {by}: in {value!r} ({len(idx)} samples) the risks of {str(classes[-1])!r} are "
                             f"systematically {'; and '.join(off)} (Wald intervals, samples counted as independent; "
                             f"judged at Bonferroni's level over the {n_groups} groups) — if it is a population of "
                             f"its own, recalibrate for it ({how} on labelled samples of it)")
        score = m.get(main)
        ci = None
        per_ci = [None] * len(refs)
        if bootstrap:  # the resamples at once, as the overall interval's (a scikit-learn call each: 2 s a group)
            units = Units.of(groups, idx)
            draws = bootstrap_metrics(task, y, proba, classes, threshold, units, rng, bootstrap, 1, None, weights)
            # one patient (unit) alone: every resample is the same rows, an interval of width 0 that says nothing
            ci = percentile_ci(draws[main], bootstrap) if len(units) > 1 else None
            row["ci"] = {main: ci}
            if refs and len(units) > 1:
                per_ci = [percentile_ci(draws["target_rmse"][:, j], bootstrap) for j in range(len(refs))]
        if refs:
            rmse = _target_rmse(y[idx], proba[idx])
            row["per_target"] = [{"target": str(classes[j]), "rmse": float(rmse[j]),
                                  **({"ci": per_ci[j]} if bootstrap else {})} for j in range(len(refs))]
            worse_targets = [j for j in range(len(refs)) if math.isfinite(refs[j])
                             and rmse[j] > BY_WORSE_RMSE_RATIO * refs[j]]
            worse = bool(worse_targets)
        elif score is None or ref is None or not math.isfinite(score) or not math.isfinite(ref):
            worse = False
        else:
            worse = score > BY_WORSE_RMSE_RATIO * ref if lower_better else score < ref - BY_WORSE_SCORE
        reason = None
        if not worse:
            flagged = False
        elif refs:  # each target that is worse, on its own evidence
            if bootstrap:
                shown = [j for j in worse_targets if per_ci[j] is not None and per_ci[j][0] > refs[j]]
                if not shown:
                    alone = "one patient" if groups is not None else "one sample"
                    reason = alone if len(units) < 2 else "; ".join(
                        f"{classes[j]}: 95 % interval " + (f"{per_ci[j][0]:.3g}–{per_ci[j][1]:.3g}"
                                                           if per_ci[j] is not None else "none")
                        for j in worse_targets)
            else:
                reason = _too_few(task, y[idx], classes)
                shown = worse_targets if reason is None else []
            flagged = bool(shown)
        elif bootstrap:  # the interval excludes the overall value, on the worse side
            flagged = ci is not None and (ci[0] > ref if lower_better else ci[1] < ref)
            if not flagged:
                alone = "one patient" if groups is not None else "one sample"
                reason = (alone if len(units) < 2 else "no interval") if ci is None else \
                    f"95 % interval {ci[0]:.3g}–{ci[1]:.3g}"
        else:
            reason = _too_few(task, y[idx], classes)
            flagged = reason is None
        row["flagged"] = bool(flagged)
        if reason is not None:
            unjudged.append(f"{value!r} ({reason})")
        if flagged and refs:
            # the group's interval, after its own figure (the group's size is said once, after its name: after
            # "overall" it read as the overall figure's)
            def evidence(j: int) -> str:
                return f" (95 % interval {per_ci[j][0]:.3g}–{per_ci[j][1]:.3g})" if bootstrap else ""

            warns.append(f"--by {by}: {value!r} ({len(idx)} samples) scores "
                         + "; ".join(f"RMSE {rmse[j]:.3g}{evidence(j)} for {str(classes[j])!r} against {refs[j]:.3g} "
                                     "overall" for j in shown))
        elif flagged:
            if bootstrap:
                evidence = f" (95 % interval {ci[0]:.3g}–{ci[1]:.3g})"
            elif task == "regression":
                evidence = ""
            else:
                evidence = f" (judged on every class with at least {BY_MIN_CLASS_SAMPLES} samples)"
            warns.append(f"--by {by}: {value!r} ({len(idx)} samples) scores {metrics.display_name(main)} {score:.3g}"
                         f"{evidence if bootstrap else ''} against {ref:.3g} overall"
                         f"{evidence if not bootstrap else ''}")
        out.append(row)
    if unjudged and notes is not None:
        k = len(unjudged)
        why = "within its uncertainty" if bootstrap else "resting on too few samples"
        measure = "a target's RMSE (each in its own units)" if refs else f"the overall {metrics.display_name(main)}"
        notes.append(f"--by {by}: {k} group{'s' * (k > 1)} worse than {measure} by more than "
                     f"the margin but not flagged, the gap {why}: {', '.join(unjudged[:5])}{', ...' * (k > 5)}; a group "
                     f"is flagged when {by_rule(bootstrap)}")
    return out
