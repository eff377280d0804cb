"""``evaluate --by COLUMN``: each group's main metric with its patient-bootstrap interval, and the groups clearly
worse than the whole table (or with too few samples to tell); a numeric column binned first."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import OptionError
from ..text import natural_key
from .bootstrap import Units, bootstrap_metrics, percentile_ci
from .cohort_checks import risks_off


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

# The metrics each group's row reports, by task
_MAIN_KEYS = {
    "binary": ["accuracy", "balanced_accuracy", "f1", "roc_auc", "mcc", "log_loss", "observed_expected"],
    "multiclass": ["accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr", "log_loss"],
    "multilabel": ["balanced_accuracy", "f1_micro", "f1_macro", "hamming_loss", "log_loss"],
    "regression": ["rmse", "mae", "r2", "pearson_r"],
}


def binned(values: np.ndarray, by: str, notes: list[str]) -> np.ndarray:
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
    common = ""
    if len(used) < 2:  # one value holds most samples (250 zeros among 300): the quantiles coincide, one bin
        value, counts = np.unique(numbers, return_counts=True)
        top = value[np.argmax(counts)]
        rest = numbers != top
        codes = np.full(len(numbers), -1, dtype=np.int64)
        codes[rest] = np.asarray(pd.qcut(numbers[rest], BY_BINS - 1, labels=False, duplicates="drop"), dtype=np.int64)
        used = np.unique(codes[rest])
        names = {-1: f"= {top:.4g}", **{k: f"Q{i + 1} [{numbers[codes == k].min():.4g}, {numbers[codes == k].max():.4g}]"
                                         for i, k in enumerate(used)}}
        common = f"its most common value, {top:.4g} ({int(counts.max()):,} samples), and "
    labels = np.full(len(values), "NA", dtype=object)
    labels[present] = [names[k] for k in codes]
    notes.append(f"--by {by}: a numeric column with {len(distinct):,} distinct values, grouped into {common}{len(used)} "
                 f"quantile bins{' of the others' if common else ''} (one group per value would hold one or two "
                 "samples)")
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


def by_groups(task, y, proba, classes, threshold, values, groups, overall, main, bootstrap, rng, by, warns,
               notes=None, weights=None, risks: bool = True, recalibrated_on: str | None = None):
    """The --by table's rows: the main metrics per group, flagged when worse than overall (``by_rule``); a binary
    model's group whose risks are systematically off (``risks_off``) is a warning too (unless ``risks`` is False:
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
            off = risks_off(m, tests=n_groups) if counts.min() >= BY_MIN_CLASS_SAMPLES else []
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
