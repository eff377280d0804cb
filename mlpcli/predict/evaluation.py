"""Evaluation against known labels: per-task metrics with patient-bootstrap intervals (``bootstrap``), decision curves
and operating points (``risk_thresholds``), ``--by`` subgroups (``subgroups``), labels the model never learnt
(``novel_labels``), and the warnings a cohort earns (``cohort_checks``: risks systematically off, class totals, targets
unlike training; here: rows the model was trained on)."""

from __future__ import annotations

import math
import warnings as _warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..data.roles import listed_names
from ..data.pieces import DEFAULT_CHUNK_MB
from ..decision import threshold_field
from ..errors import ConfigError, OptionError
from ..fileio import file_sha256
from ..model_io import Model, require_model
from ..rough_metrics import held_out_caveat
from ..text import count_of, quoted
from .bootstrap import BOOTSTRAP_FEW_UNITS, BOOTSTRAP_MIN, Units, bootstrap_metrics, bootstrap_workers, percentile_ci
from .columns import RoleFlags
from .risk_thresholds import check_operating_points, check_risk_thresholds, net_benefit_rows, operating_point_rows
from .seen import SeenRows, among
from .shift import ShiftReport
from .run import PredictionRun
from .labelling import labelled_by, resolve_decision, resolve_prevalence
from .trust import Trust, Uncertainty, evaluation_report
from .cohort_checks import (absent_note, class_totals_warning, risk_calibration_warning, targets_fit_others,
                            targets_unlike_training, temperature_warning, untaught_labels, weighted_model)
from .novel_labels import novel_notes, novel_report
from .subgroups import binned, by_groups


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
    # why the metrics are rough (``rough_metrics.held_out_caveat``: few samples, or few of one class), as train's
    # ``metrics_caveat``; None when not
    metrics_caveat: str | None = None

    def to_dict(self) -> dict:
        return {"task": self.task, "n": self.n, "classes": [str(c) for c in self.classes],
                # one number, or a multi-label model's one per label {label: threshold}
                "threshold": (None if self.threshold is None else
                              threshold_field(self.threshold, self.classes, self.task == "multilabel")),
                "main_metric": self.main_metric, "metrics": self.metrics, "metrics_caveat": self.metrics_caveat,
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
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            return "undefined"
        # an error in the target's units can be any size: RMSE 1.6e-25 read "0.000", 1.6e+35 as 36 digits
        return f"{value:.3f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.4g}"

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
    if seen.by_chance(result.n):  # features of few values: new samples match training rows as often as this
        others = (f"; on the {n_new} other{' sample' if n_new == 1 else ' samples'} alone, {name} "
                  f"{shown(result.unseen_metrics.get(result.main_metric))} (`unseen_metrics` in --json)"
                  if n_new >= _FEW_UNSEEN else "")
        result.notes.append(seen.chance_note(result.n) + others)
        return
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
        result.warnings.append(f"{'the one sample is a row' if k == 1 else f'all {k:,} samples are rows'} of {name}, the "
                               f"table the model was recalibrated on: {listed} here {'is' if len(fitted) == 1 else 'are'} "
                               "in-sample, not a test; evaluate on other samples of the population")
        return mask
    others = ~mask if seen is None else ~mask & ~seen
    n_others = int(others.sum())
    besides = " (not the model's training rows either)" if seen is not None and seen[~mask].any() else ""
    if not n_others:
        result.warnings.append(f"{k:,} of {count_of(len(y), 'sample')} {'is a row' if k == 1 else 'are rows'} of {name}, "
                               "the table the model was recalibrated on, "
                               f"and the other rows are rows it was trained on: {listed} include{'s' * (len(fitted) == 1)} "
                               "them in-sample, and no sample here is new to the model")
        return mask
    result.cohort_other_metrics = metrics.compute(result.task, y[others], proba[others], result.classes, threshold,
                                                  weights)
    om = result.cohort_other_metrics

    def shown(key: str) -> str:
        value = om.get(key)
        return f"{value:.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "undefined"

    alone = (f"the {n_others} other sample{'s' * (n_others > 1)}{besides} {'is' if n_others == 1 else 'are'} too few "
             "to measure alone"
             if n_others < _FEW_UNSEEN else
             f"on the {n_others:,} other samples{besides} alone, log loss {shown('log_loss')}, ECE {shown('ece')}, "
             f"{metrics.display_name(result.main_metric)} {shown(result.main_metric)}")
    result.warnings.append(f"{k:,} of {count_of(len(y), 'sample')} {'is a row' if k == 1 else 'are rows'} of {name}, "
                           "the table the model was recalibrated on: "
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

    require_model(model, "evaluate takes")  # a path given for it failed with an AttributeError inside
    if by is not None and not isinstance(by, str):  # a list failed as "unhashable type: 'list'" inside
        raise ConfigError(f"--by takes one column name, got a {type(by).__name__}: {by!r}")
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
            result.notes += novel_notes(novel_doc, len(novel))
            if trust is not None:
                result.notes.extend(trust.level_notes())
                result.warnings.extend(trust.ood_warnings())
            return result
    proba, y = metrics.as_task_proba(task, out), meta["y"]
    overall = metrics.compute(task, y, proba, classes, threshold, weights)
    result = EvaluationResult(task=task, n=len(y), classes=classes, metrics=overall, main_metric=main, decision=labels_by,
                              threshold=threshold if task in ("binary", "multilabel") else None, by=by,
                              shift=run.shift, notes=[*filter(None, [target_note]), *run.notes,
                                                      *filter(None, [absent_note(task, y, classes, overall)])],
                              warnings=run.warnings,
                              calibration=_calibration_effect(model, out, y, classes, threshold, overall, weights,
                                                              mix, training_threshold, training_rule),
                              novel=novel_doc)
    result.calibration_curve = _calibration_curves(task, y, proba, classes)

    # few samples of a class (few patients, few rows of a regression): the metrics are rough, as train says of its
    # held-out ones; 6 samples of a class gave its recall and AUC without a word
    result.metrics_caveat = held_out_caveat(task, y, classes, meta.get("group"), scored="scored")
    if result.metrics_caveat:
        result.notes.append(f"rough metrics: {result.n:,} samples, and {result.metrics_caveat}")
    if mix is not None:
        result.prevalence = _prevalence_effect(model, mix, out, y, overall, training_threshold, training_rule)
        result.notes.append(_prevalence_note(result.prevalence, model.recalibrated_on))
    if novel_doc is not None:
        result.notes += novel_notes(novel_doc, len(y) + novel_doc["n"])
    # each warning's "other samples alone" leaves out the other's in-sample rows (training rows mixed with the
    # recalibration table's read as "other samples" of each other)
    seen_mask = meta["seen"] if run.seen is not None else None
    cohort_mask = _cohort_rows(result, model, source, uncertainty, meta.get("fingerprint"), y, proba, threshold,
                               weights, seen=seen_mask)
    if run.seen is not None:
        _seen_rows(result, run.seen, seen_mask, y, proba, threshold, model, weights, also=cohort_mask)
    untaught = untaught_labels(model, y)
    if untaught:
        result.warnings.append(untaught)
    # target columns in another order than the model's, or a target in other units (the first says the second's why)
    unlike = targets_fit_others(model, y, out, read_as=reader) or targets_unlike_training(model, y, read_as=reader)
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
        tempered = None if totals or risks else temperature_warning(model, out, y, result.calibration,
                                                                    meta.get("group"), mix)
        result.warnings += totals + [w for w in (risks, tempered) if w]
    groups = meta.get("group")
    if net_benefit is not None:
        result.net_benefit = net_benefit_rows(task, y, proba, net_benefit, groups, bootstrap, seed)
    if operating_points is not None:
        result.operating_points = operating_point_rows(task, y, proba, operating_points, groups, bootstrap, seed)
    rng = np.random.default_rng(seed)
    if bootstrap:
        unit_name = f"{run.plan.roles.group} groups" if groups is not None else "rows"
        units = Units.of(groups, np.arange(len(y)))
        trained_group = (model.roles or {}).get("group")
        if groups is None and trained_group and not (roles is not None and roles.no_group):
            # the only sign was "resamples of 300 rows": with several samples per patient, intervals too narrow
            result.warnings.append(f"--bootstrap: the model was trained with patients in {trained_group!r}, which "
                                   f"this table lacks, so its rows are resampled as independent samples: where a "
                                   "patient gave several, the intervals are too narrow; pass --group COLUMN naming "
                                   "the patients, or --no-group when each sample is a patient of its own")
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
    by_values = binned(meta["by"], by, result.notes) if by is not None else None  # one grouping for every table
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
        result.groups = by_groups(task, y, proba, classes, threshold, by_values, groups, overall, main, bootstrap,
                                   rng, by, result.warnings, result.notes, weights,
                                   risks=mix is None and not weighted_model(model), recalibrated_on=model.recalibrated_on)
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
