"""Recalibrating a model on a labelled cohort of its new population (``mlpcli recalibrate``): the table is read as
``evaluate`` reads it, the model's probabilities and the true classes go to ``mlpcli.recalibration``, and a copy of
the model comes back with the update it keeps (or none), its figures and the cohort it was fitted on."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import recalibration as recal
from ..conformal import CONFORMAL_CHOICES, COHORT, calibrate_cohort
from ..ood import recalibrated
from ..data.pieces import DEFAULT_CHUNK_MB
from ..decision import Decision
from ..errors import ConfigError, DataError, OptionError
from ..fileio import file_sha256
from ..model_io import Model, require_model
from .columns import TARGET_ADVICE, RoleFlags, with_advice
from .evaluation import read_targets_as
from .cohort_labels import NOVEL_LABELS_HINT
from .run import PredictionRun
from .trust import Trust, Uncertainty

__all__ = ["RecalibrationResult", "recalibrate", "CONFORMAL_CHOICES"]

# Fewer samples of the rarest class than this make an update noisy (Steyerberg: about 100 events and 100 non-events
# to validate a model; an intercept needs fewer): a note says so
FEW_FOR_UPDATE = 100
# The table reader's advice is evaluate's; recalibrate's in its place
_ADVICE = {
    TARGET_ADVICE: "; recalibration fits the model to the true labels — name their column with --target",
    NOVEL_LABELS_HINT: "; recalibration fits the model's own classes: leave rows of other labels out of the table",
}


@dataclass
class RecalibrationResult:
    """What ``recalibrate`` did: the model to write (``model``; the input's copy, with ``recalibration`` set unless
    ``kept`` is "none"), the update kept and the figures of all three on the cohort (in-sample: the same samples
    fitted and scored)."""

    model: Model
    kept: str  # "none" | "intercept" | "logistic"; a multi-label model's: "per label" (or "none": no label updated)
    method: str  # what was asked: "auto" or one of the updates
    n: int
    # {"none" | "intercept" | "logistic": {"log_loss", "ece", "observed_expected" (binary)}; "logistic": None where the
    # model's probabilities separate the classes (no finite slope)}; a multi-label model's: {label: {"kept",
    # "positives", "log_loss_before", "log_loss_after", "observed_expected_before", ..._after, "p_overall", "p_slope"}}
    figures: dict
    test: dict  # the closed test (``RecalibrationFit.test``)
    cohort: dict
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        rc, cal = self.model.recalibration, self.model.conformal
        # where the written model's prediction sets take their scores from ("cohort": this table), None without sets
        sets = None if cal is None else {"source": cal.source, "scores": int(cal.n),
                                         "patients": cal.patients}
        return {"kept": self.kept, "method": self.method, "n": self.n, "cohort": self.cohort, "test": self.test,
                "figures": self.figures, "recalibration": None if rc is None else rc.to_dict(),
                "prediction_sets": sets, "notes": self.notes, "warnings": self.warnings}


def recalibrate(model: Model, source, *, method: str = "auto", alpha: float = 0.05, conformal: str | None = None,
                roles: RoleFlags | None = None,
                fill_missing: str | None = None, max_missing: float | None = None, chunksize: int | None = None,
                chunk_mb: float = DEFAULT_CHUNK_MB, stdin=None,
                progress: Callable[[dict], None] | None = None) -> RecalibrationResult:
    """Fit the intercept and the logistic update of `model`'s probabilities on the labelled table `source` (path,
    "-" or DataFrame, read as ``evaluate`` reads it) and keep `method`'s ("auto": the closed test's choice at
    `alpha`; ``mlpcli.recalibration``). Binary and multiclass models, every class with MIN_CLASS_SAMPLES samples in
    the table; multi-label models label by label (``_per_label``). The returned model predicts with the update after its temperature, and its decision rule divides
    by the cohort's class shares (so a balanced rule keeps its meaning there, and ``--prevalence`` moves the
    probabilities from the cohort's mix). ``conformal``: "cohort" (None: the default) gives a binary or multiclass model
    the cohort's own conformal calibration scores, of its probabilities as the model now reports them (after the
    update), so its prediction sets (``predict --coverage``) hold their level for that population — split conformal
    on the cohort, each patient counting once (``conformal.calibrate_cohort``); "training" keeps the training rows'
    scores, whose guarantee is for the training population. The out-of-distribution flag follows: with "cohort"
    its p-values are among the cohort's samples (``ood.recalibrated``), else among the held-out training rows."""
    from .. import metrics

    require_model(model, "recalibrate takes")  # a path given for it failed with an AttributeError inside
    if method not in recal.METHODS:
        raise OptionError(f"--method must be one of {', '.join(recal.METHODS)}, got {method!r}")
    if conformal is not None and conformal not in CONFORMAL_CHOICES:
        raise OptionError(f"--conformal must be one of {', '.join(CONFORMAL_CHOICES)}, got {conformal!r}")
    if conformal is not None and model.task == "multilabel":  # (it would be ignored, without a word)
        raise OptionError(f"--conformal: prediction sets are for binary and multiclass models; this model is "
                          f"{model.task}")
    conformal = COHORT if conformal is None else conformal
    # a number alone: "0.1" or None failed as "'<' not supported between instances of 'float' and 'str'"
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) or not 0.0 < alpha < 1.0:
        raise OptionError(f"--alpha must lie strictly between 0 and 1, got {alpha!r}")
    if model.task not in ("binary", "multiclass", "multilabel") or \
            model.output_activation() not in ("softmax", "sigmoid"):
        raise ConfigError(f"recalibrate updates a classifier's probabilities; this model is {model.task}"
                          + (" (its outputs are values, not probabilities)" if model.task == "regression" else
                             " (its outputs are scores, not probabilities)"))
    if model.recalibrated_on is not None:
        raise ConfigError(f"this model was already recalibrated on {model.recalibrated_on}; recalibrate the model it "
                          "was made from (an update fitted on top of another mixes two populations)")
    if conformal == "training" and model.conformal is not None and model.conformal.on_model_proba:
        where = (model.conformal.cohort or {}).get("data") or "a cohort"
        raise ConfigError(f"--conformal training: this model's prediction sets are calibrated on {where}, not on its "
                          "training rows; recalibrate the model as trained, or keep --conformal cohort")
    reader, roles, target_note = read_targets_as(model, roles)
    cohort_ood = conformal == COHORT and model.ood is not None and model.task != "multilabel"
    run, P, y, groups, seen, first, ood_parts, cohort_rows = _read_labelled(
        model, reader, source, ood_parts=cohort_ood, roles=roles, fill_missing=fill_missing, chunksize=chunksize,
        chunk_mb=chunk_mb, stdin=stdin, progress=progress, max_missing=max_missing)
    n_units = len(np.unique(groups.astype(str))) if groups is not None else None
    cohort_base = {"data": _name(source), "sha256": file_sha256(source), "n": int(len(y)),
                   **({"patients": n_units} if n_units is not None else {})}
    if model.task == "multilabel":
        result = _per_label(model, P, y, method, alpha, source, cohort_base,
                            int(seen.sum()) if seen is not None else 0)
        result.model.cohort_rows = cohort_rows if result.model.recalibration is not None else None
        result.notes[:0] = [*filter(None, [target_note]), *run.notes]
        result.warnings[:0] = run.warnings
        return result
    classes = [str(c) for c in model.classes]
    counts = np.bincount(y, minlength=len(classes))
    few = [(c, int(n)) for c, n in zip(classes, counts) if n < recal.MIN_CLASS_SAMPLES]
    if few:
        shown = ", ".join(f"{c!r} {n}" for c, n in few[:5]) + (" …" if len(few) > 5 else "")
        raise DataError(f"{_name(source)}: recalibration needs at least {recal.MIN_CLASS_SAMPLES} samples of each of "
                        f"the model's classes, and the table has {shown}; add samples of those classes (an intercept "
                        "fitted on a handful is noise)")
    link = model.output_activation()
    fitted = _fitted(P, y, link, _name(source))
    kept, intercept, slope, test = _chosen(fitted, method, alpha, _name(source))
    cohort = {**cohort_base, "class_counts": {c: int(n) for c, n in zip(classes, counts)}}
    figures = {}
    for name, (a, b) in (("none", (None, None)), ("intercept", (fitted.intercept, 1.0)),
                         ("logistic", (fitted.logistic_intercept, fitted.logistic_slope))):
        if name == "logistic" and fitted.separated:
            figures[name] = None  # no finite fit
            continue
        Q = P if name == "none" else recal.Recalibration(name, a, b).apply(P, link)
        m = metrics.compute(model.task, y, metrics.as_task_proba(model.task, Q), model.classes)
        figures[name] = {"log_loss": m.get("log_loss"), "ece": m.get("ece"),
                         **({"observed_expected": m.get("observed_expected")} if model.task == "binary" else {})}
    new = dataclasses.replace(model)
    shares = counts / counts.sum()
    if kept != "none":
        fit_doc = {"alpha": test["alpha"], "p_overall": test["p_overall"], "p_slope": test["p_slope"],
                   "log_loss_before": figures["none"]["log_loss"], "log_loss_after": figures[kept]["log_loss"],
                   "chosen_by": "closed test" if method == "auto" else "option", "method": method}
        new.recalibration = recal.Recalibration(kept, np.asarray(intercept, dtype=np.float64), float(slope),
                                                cohort=cohort, fit=fit_doc)
        # the probabilities are now of the cohort's mix: the rule divides by it, and --prevalence moves from it (a
        # file from before the rule was stored decided by argmax: it still does, now with the mix to move from)
        new.decision = (model.decision or Decision(rule="argmax", chosen="auto")).with_shares(shares)
    rescored = 0
    # rows the model was trained on are left out of the sets' and the flag's calibration: a training row is its own
    # nearest neighbour (distance ~0: every new sample then flagged) and its fit scores low (the sets too small)
    fresh = np.ones(len(y), dtype=bool) if seen is None else ~seen
    if conformal == COHORT and fresh.any():  # the probabilities the model reports, each patient's by an update without it
        held_out, rescored = (_held_out_updates(P, y, groups, link, new.recalibration) if kept != "none"
                              else (P, 0))
        sub = None if groups is None else groups[fresh]
        # the cohort as the sets and the flag are calibrated on it: its rows the model has not seen
        used = cohort_base if fresh.all() else {**cohort_base, "n": int(fresh.sum()), **(
            {} if sub is None else {"patients": len(np.unique(sub.astype(str)))})}
        new.conformal = calibrate_cohort(metrics.class_proba(model.task, held_out)[fresh], y[fresh], sub, first[fresh],
                                         cohort=cohort if fresh.all() else {**used, "class_counts": {
                                             c: int(k) for c, k in zip(classes, np.bincount(y[fresh],
                                                                                            minlength=len(classes)))}})
        if ood_parts is not None:  # the flag's p-values among this population's samples (split conformal)
            new.ood = recalibrated(model.ood, ood_parts[fresh], sub, cohort=used)
    # what evaluate recognises as this table's rows, in any copy or part of it: when the model holds anything fitted on it
    cohort_sets = conformal == COHORT and fresh.any()
    new.cohort_rows = cohort_rows if new.recalibration is not None and kept != "none" or cohort_sets else None
    left_out = seen is not None and seen.any() and cohort_sets
    sets_on = (int(fresh.sum()), None if groups is None else len(np.unique(groups[fresh].astype(str)))) \
        if left_out else None
    notes, warnings = _notes(model, method, kept, test, fitted.separated, classes, counts, len(y), n_units,
                             int(seen.sum()) if seen is not None else 0, conformal if cohort_sets else "training",
                             rescored, sets_on)
    if conformal == COHORT and seen is not None and seen.any():
        warnings.append(f"the prediction sets and the out-of-distribution flag are calibrated on the "
                        f"{int(fresh.sum()):,} rows it has not seen, not on its training rows (its fit to them scores "
                        "them as no new sample is scored)" if fresh.any() else
                        "the prediction sets and the out-of-distribution flag keep the training calibration: every row "
                        "of the table is one the model was trained on, which would calibrate them on its fit")
    notes[:0] = [*filter(None, [target_note]), *run.notes]
    warnings[:0] = run.warnings
    return RecalibrationResult(model=new, kept=kept, method=method, n=int(len(y)), figures=figures, test=test,
                               cohort=cohort, notes=notes, warnings=warnings)


# Folds of the cohort's patients whose conformal scores come from an update fitted on the other folds
SCORE_FOLDS = 5
# The levels ``recalibrate`` names when its cohort has too few patients for their sets to leave a class out
COMMON_LEVELS = (0.8, 0.9, 0.95, 0.99)


def _held_out_updates(P: np.ndarray, y: np.ndarray, groups: np.ndarray | None, link: str,
                      whole: recal.Recalibration) -> tuple[np.ndarray, int]:
    """(The cohort's probabilities (n, outputs) as the update of ``whole``'s kind gives them, each row's fitted
    without its patient, and how many rows are scored by ``whole``, the whole cohort's update, instead):
    SCORE_FOLDS folds of the patients (class-stratified), the update refitted on the other folds. The conformal
    scores then come from an update that never saw their rows, as a new sample's does (fitted on the whole cohort):
    in-sample, the update fits the rows it scores, and their scores err low (the sets too small;
    ``bench_conformal.py --part site``: 0.891 and 0.892 at 0.9 in-sample, 0.897 and 0.899 cross-fitted). A fold
    whose other folds cannot fit the update (a class missing there, a model no better than chance on them) is
    scored by ``whole``."""
    from sklearn.model_selection import StratifiedGroupKFold

    kept = whole.method
    units = np.arange(len(y)) if groups is None else np.unique(groups.astype(str), return_inverse=True)[1].reshape(-1)
    folds = min(SCORE_FOLDS, len(np.unique(units)), int(np.bincount(y).min()))
    out = np.array(whole.apply(P, link), dtype=np.float64)
    if folds < 2:
        return out, len(y)
    in_sample = 0
    for train, test in StratifiedGroupKFold(folds).split(P, y, units):
        try:
            if len(np.unique(y[train])) < int(y.max()) + 1:
                raise ValueError("a class without samples in the other folds")
            fold = recal.fit(P[train], y[train], link)
            if kept == "logistic" and fold.separated:
                raise ValueError("no finite slope on the other folds")
            out[test] = _update(fold, kept).apply(P[test], link)
        except ValueError:  # no better than chance on these folds, or no fit: the whole cohort's update
            in_sample += len(test)
    return out, in_sample


def _update(fitted: recal.RecalibrationFit, kept: str) -> recal.Recalibration:
    """The ``kept`` update ("intercept" or "logistic") of a fit."""
    if kept == "logistic":
        return recal.Recalibration(kept, np.asarray(fitted.logistic_intercept, dtype=np.float64),
                                   float(fitted.logistic_slope))
    return recal.Recalibration(kept, np.asarray(fitted.intercept, dtype=np.float64), 1.0)


def _fitted(P: np.ndarray, y: np.ndarray, link: str, where: str) -> recal.RecalibrationFit:
    """``recalibration.fit``, its refusal (a model that ranks the table no better than chance) a DataError naming
    ``where`` (the table, or the table and a label)."""
    try:
        return recal.fit(P, y, link)
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None


def _chosen(fitted: recal.RecalibrationFit, method: str, alpha: float, where: str):
    """``recalibration.choose``: (kept, intercept, slope, test); a DataError naming ``where`` for a logistic update
    asked of separated classes, or for intercepts beyond MAX_INTERCEPT (no update of the probabilities but a
    replacement of them: a file holding them is refused on loading)."""
    try:
        kept, intercept, slope, test = recal.choose(fitted, method, alpha)
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None
    if kept != "none" and not np.all(np.abs(intercept) <= recal.MAX_INTERCEPT):
        raise DataError(f"{where}: the {kept} update's intercepts reach {float(np.max(np.abs(intercept))):.3g} "
                        "on the log scale: not an update of the model's probabilities but a replacement of them; "
                        "check the table's labels")
    return kept, intercept, slope, test


def _holm_levels(p_values: dict[str, float], alpha: float) -> dict[str, float]:
    """Holm's step-down levels for the labels' first tests (the update against none): the label of the i-th smallest
    p-value (from 0) is tested at alpha / (m - i) until one is not rejected; it and the rest get 0 (no update)."""
    levels, m = {}, len(p_values)
    stopped = False
    for i, (name, p) in enumerate(sorted(p_values.items(), key=lambda item: item[1])):
        level = alpha / (m - i)
        stopped = stopped or not p < level
        levels[name] = 0.0 if stopped else level
    return levels


def _per_label(model: Model, P: np.ndarray, Y: np.ndarray, method: str, alpha: float, source, cohort: dict,
               seen_rows: int) -> RecalibrationResult:
    """A multi-label model's recalibration: each label a binary model of its own (``_fitted``, ``_chosen``). Under
    ``method="auto"`` the labels' closed tests are held to Holm's levels over the labels tested (with dozens of
    labels, a few at 0.05 each would be updated by chance). A label with fewer than MIN_CLASS_SAMPLES positives or
    negatives in the table, or one the update cannot fit (ranked no better than chance, intercepts beyond
    MAX_INTERCEPT), is left as it is, with a note or warning; a DataError when no label can be tested."""
    from .. import metrics

    labels = [str(c) for c in model.classes]
    L, n, where = len(labels), len(Y), _name(source)
    Y = np.asarray(Y, dtype=np.int64).reshape(n, L)
    kept, a, b = ["none"] * L, np.zeros(L), np.ones(L)
    figures = {name: {"positives": int(Y[:, j].sum()), "kept": "none"} for j, name in enumerate(labels)}
    notes, warnings, few, unfit, fits = [], [], [], [], {}
    for j, name in enumerate(labels):
        pos = figures[name]["positives"]
        if min(pos, n - pos) < recal.MIN_CLASS_SAMPLES:
            few.append(f"{name!r} ({pos} positive{'s' * (pos != 1)} of {n})")
            continue
        try:
            fits[name] = _fitted(P[:, [j]], Y[:, j], "sigmoid", f"{where}, label {name!r}")
        except DataError as exc:
            unfit.append(str(exc))
    if not fits:
        raise DataError(f"{where}: no label can be recalibrated: " + (
            f"each needs at least {recal.MIN_CLASS_SAMPLES} positives and as many negatives in the table "
            f"({', '.join(few[:6])}{' …' if len(few) > 6 else ''})" if few else "; ".join(unfit)))
    levels = (_holm_levels({name: f.test(alpha)["p_overall"] for name, f in fits.items()}, alpha)
              if method == "auto" else {name: alpha for name in fits})
    tests, separated, forced = {}, [], []
    for j, name in enumerate(labels):
        if name not in fits:
            continue
        fitted = fits[name]
        try:
            kept[j], intercept, b[j], test = _chosen(fitted, method, levels[name], f"{where}, label {name!r}")
        except DataError as exc:
            unfit.append(str(exc))
            continue
        a[j] = intercept[1]
        tests[name] = {**test, "alpha": float(alpha), **({"holm_level": levels[name]} if method == "auto" else {})}
        figures[name].update(kept=kept[j], p_overall=test["p_overall"], p_slope=test["p_slope"])
        if fitted.separated:
            separated.append(name)
        if method != "auto" and test["chosen"] != method:
            forced.append(f"{name!r} {'no update' if test['chosen'] == 'none' else test['chosen']}")
    update = recal.Recalibration("per label", a, b, labels=kept)
    Q = update.apply(P, "sigmoid")
    for j, name in enumerate(labels):
        for side, R in (("before", P), ("after", Q)):
            m = metrics.compute("binary", Y[:, j], R[:, [j]], [0, 1])
            figures[name][f"log_loss_{side}"] = m.get("log_loss")
            figures[name][f"observed_expected_{side}"] = m.get("observed_expected")
    cohort = {**cohort, "label_positives": {name: figures[name]["positives"] for name in labels}}
    new = dataclasses.replace(model)
    updated = [j for j in range(L) if kept[j] != "none"]
    if updated:
        before = float(np.mean([figures[name]["log_loss_before"] for name in labels]))
        after = float(np.mean([figures[name]["log_loss_after"] for name in labels]))
        new.recalibration = recal.Recalibration(
            "per label", a, b, labels=kept, cohort=cohort,
            fit={"alpha": float(alpha), "log_loss_before": before, "log_loss_after": after,
                 "chosen_by": "closed test" if method == "auto" else "option", "method": method})
        if model.decision is not None and model.decision.shares is not None:
            shares = np.asarray(model.decision.shares, dtype=np.float64).copy()
            shares[updated] = Y[:, updated].mean(axis=0)  # an updated label's probabilities are of the cohort's share
            new.decision = model.decision.with_shares(shares)
    if few:
        notes.append(f"left as they are, with fewer than {recal.MIN_CLASS_SAMPLES} positives or negatives in the "
                     f"table: {', '.join(few[:6])}{' …' if len(few) > 6 else ''}")
    warnings += [f"{text}: left as it is" for text in unfit]
    if method == "auto" and len(fits) > 1:
        notes.append(f"the closed tests of the {len(fits)} labels tested are held to Holm's levels (alpha "
                     f"{alpha:g} over them all), so that labels are not updated by chance")
    if separated:
        notes.append(f"the model's probabilities separate {', '.join(repr(x) for x in separated[:6])} perfectly: no "
                     "finite slope fits them, so at most their intercept is updated")
    if forced:
        notes.append(f"--method {method}: the closed test would have kept {', '.join(forced[:6])}")
    rough = [f"{labels[j]!r}" for j in updated if min(figures[labels[j]]["positives"],
                                                       n - figures[labels[j]]["positives"]) < FEW_FOR_UPDATE]
    if rough:
        notes.append(f"{', '.join(rough[:6])} updated from fewer than {FEW_FOR_UPDATE} positives or negatives: rough")
    if seen_rows:
        warnings.append(f"{seen_rows:,} of the table's {n:,} rows are rows the model was trained on: on them its "
                        "probabilities are its fit, not its predictions; recalibrate on samples it has not seen")
    if cohort.get("patients") is not None and cohort["patients"] < n:
        notes.append(f"the tests count the {n:,} samples as independent; they come from {cohort['patients']:,} "
                     "patients, so their p-values are too small")
    if updated:
        notes.append("each updated label's share of positives in the table becomes the model's: a table sampled by "
                     "label gives the wrong baseline")
    return RecalibrationResult(model=new, kept="per label" if updated else "none", method=method, n=n,
                               figures=figures, test={"alpha": float(alpha), "labels": tests}, cohort=cohort,
                               notes=notes, warnings=warnings)


def _read_labelled(model: Model, reader: Model, source, ood_parts: bool = False, **kw):
    """(the run, the model's probabilities P (n, outputs), the classes y (n,), the patients (n,) or None, whether each
    row is a training row (n,) bool or None, the first member's raw outputs (n, outputs), with ``ood_parts`` the rows'
    out-of-distribution distances (n, 2) (``ood.OODBasis.parts``; else None), the rows' fingerprints (m,) sorted and
    distinct (``Model.cohort_rows``; None where a feature was filled)) of the labelled table, read as ``evaluate`` reads it; a DataError of
    the reader carries recalibrate's advice in place of evaluate's."""
    outs, ys, groups, seen, first, parts, prints = [], [], [], [], [], [], []
    try:
        # the out-of-distribution distances too, when the flag is to be calibrated on the cohort
        trust = Trust(model, Uncertainty(ood=True)) if ood_parts else None
        run = PredictionRun(reader, source, need_target=True, by=None, trust=trust, **kw)
        run.keep_first_member = True  # APS's u for the cohort's conformal scores (``conformal.calibrate_cohort``)
        run.keep_ood_parts = ood_parts
        run.keep_fingerprints = True  # the written model recognises the cohort's rows (``Model.cohort_rows``)
        run.shift_report_hint = "mlpcli predict MODEL DATA --shift-report FILE"  # recalibrate has no --shift-report
        for out, meta in run.blocks():
            outs.append(out)
            first.append(meta["first_member"])
            if ood_parts:
                parts.append(meta["ood_parts"])
            ys.append(meta["y"])
            if meta.get("group") is not None:
                groups.append(meta["group"])
            if meta.get("seen") is not None:
                seen.append(meta["seen"])
            if meta.get("fingerprint") is not None:
                prints.append(meta["fingerprint"])
    except DataError as exc:
        raise with_advice(exc, _ADVICE) from None
    P = np.concatenate(outs) if outs else np.zeros((0, model.network.n_outputs))
    y = np.concatenate(ys).astype(np.int64) if ys else np.zeros((0, P.shape[1]) if model.task == "multilabel" else 0,
                                                                  dtype=np.int64)
    return (run, P, y, np.concatenate(groups) if groups else None, np.concatenate(seen) if seen else None,
            np.concatenate(first) if first else np.zeros((0, model.network.n_outputs)),
            np.concatenate(parts) if parts else None, np.unique(np.concatenate(prints)) if prints else None)


def _notes(model: Model, method: str, kept: str, test: dict, separated: bool, classes: list[str], counts: np.ndarray,
           n: int, n_units: int | None, seen_rows: int, conformal: str, rescored: int = 0,
           sets_on: tuple[int, int | None] | None = None) -> tuple[list[str], list[str]]:
    """recalibrate's (notes, warnings) on what it fitted and what the figures rest on. ``sets_on``: the (samples,
    patients or None) the prediction sets are calibrated on, when not the whole table's (its training rows left
    out); ``conformal`` "training" with ``seen_rows`` == n: kept so because every row is a training row."""
    notes, warnings = [], []
    if seen_rows:
        warnings.append(f"{seen_rows:,} of the table's {n:,} rows are rows the model was trained on: on them its "
                        "probabilities are its fit, not its predictions, and an update fitted to them corrects the "
                        "wrong thing (too confident where it fits its training rows); recalibrate on samples of the "
                        "new population it has not seen")
    if separated:
        notes.append("the model's probabilities separate this table's classes perfectly, so no finite slope fits "
                     "them: the logistic update is left out" + (", and the closed test chose between no update and "
                                                                 "the intercept" if method == "auto" else ""))
    if method != "auto" and method != test["chosen"]:
        notes.append(f"--method {method}: the closed test would have kept "
                     f"{'no update' if test['chosen'] == 'none' else 'the ' + test['chosen'] + ' update'} "
                     f"(the {'intercept' if separated else 'logistic'} update against none "
                     f"{recal.p_text(test['p_overall'])}"
                     + (f", the slope {recal.p_text(test['p_slope'])}" if test.get("p_slope") is not None else "")
                     + ")")
    if kept != "none":
        notes.append("the table's class mix becomes the model's ("
                     + ", ".join(f"{c} {100 * v / n:.3g} %" for c, v in list(zip(classes, counts))[:6])
                     + "): a table sampled by class, such as a case-control set, gives the wrong baseline; give the "
                     "population's mix to predict --prevalence then")
    if int(counts.min()) < FEW_FOR_UPDATE:
        rarest = classes[int(np.argmin(counts))]
        notes.append(f"the table holds {int(counts.min())} samples of {rarest!r}: with fewer than {FEW_FOR_UPDATE} of "
                     "the rarest class the update is rough" + (" (the closed test keeps a simpler one unless the "
                                                               "evidence is clear)" if method == "auto" else ""))
    if n_units is not None and n_units < n:
        notes.append(f"the tests count the {n:,} samples as independent; they come from {n_units:,} patients, "
                     "so their p-values are too small")
    if sets_on is not None:
        n, n_units = sets_on
    who = f"{n:,} samples" + (f" of {n_units:,} patients" if n_units is not None else "") + \
        (" it has not seen" if sets_on is not None else "")
    ood = ("; so is the out-of-distribution flag (--ood): it flags samples further from the training data than this "
           "population's own (the training calibration flags most samples of a site that differs)"
           if model.ood is not None else "")
    if conformal == COHORT:
        notes.append(f"prediction sets (--coverage) are now calibrated on this table's {who}, as the model reports "
                     "probabilities after the update: their level holds for new samples of this population"
                     + (" (each patient counting once)" if n_units is not None and n_units < n else "") + ood)
        units = n if n_units is None else n_units
        beyond = [level for level in COMMON_LEVELS if units < math.ceil(level / (1 - level) - 1e-9)]
        if beyond:  # a set can leave a class out only from level / (1 - level) calibration units on
            unit = "patients" if n_units is not None else "samples"
            notes.append(f"with {units:,} {unit}, prediction sets at --coverage "
                         f"{' or '.join(f'{level:g}' for level in beyond)} hold every class (a set can leave one out "
                         f"from {math.ceil(beyond[0] / (1 - beyond[0]) - 1e-9):,} {unit} at {beyond[0]:g}); "
                         "recalibrate on a larger cohort for them")
        if rescored:
            notes.append(f"{rescored:,} of the table's samples are scored for the prediction sets by the update fitted "
                         "on all of them (the other folds could not fit it: a class without samples there, or a model "
                         "no better than chance on them): their scores are in-sample, a little low")
    elif kept != "none" and (model.conformal is not None or model.ood is not None) and seen_rows < n:
        notes.append("prediction sets (--coverage) and the out-of-distribution flag (--ood) keep the training "
                     "calibration (--conformal training): the update changes the probabilities, not them; the sets' "
                     "level holds for the training population")
    return notes, warnings


def _name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return "standard input" if str(source) == "-" else os.path.basename(os.fspath(source).rstrip("/"))
    return "the table"
