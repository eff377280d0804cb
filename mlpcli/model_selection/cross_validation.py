"""Cross-validation on grouped folds: what ``train`` ships, scored on test folds it never saw.

    Dataset ─kfold (grouped, stratified for class targets; one shuffle per repeat)─▶ outer folds
       per fold: training part ─fit_model (cross-fitted members, portfolio, calibration — exactly train)─▶
                 model ─▶ metrics on the fold's test rows
    cross_validate: the folds' metrics, mean ± SD, out-of-fold predictions

The test rows of a fold are used for nothing but scoring: not for preprocessing, not for early
stopping, not for choosing the architecture or the temperature — the notes' practical checklist.

Every fold is an independent task (``fit_and_score``) carrying its rows and its options, seed
included, so the results are the same whether the tasks run here, on local workers or on a Dask
cluster (``parallel.run``). Repeat r shuffles the folds and seeds the networks with ``seed + r``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .. import data, metrics
from ..distributions import chi2_independence
from ..config import AUTO, TrainOptions, offset_seed, require_options
from ..decision import DECIDED, Decision
from ..errors import ConfigError, DataError, OptionError, TrainingError
from ..parallel import Plan, fits_plan, run
from .baseline import linear_baseline
from .crossfit import check_decision, check_missing, fit_model
from .portfolio import PORTFOLIO
from .fitting import check_fits_memory as fitting_check_fits_memory, fewer_at_once_note, worker_copy_bytes
from .held_out import exact_if_regression, prediction_columns
from .pooled import PooledEstimate, pooled_estimate
from .splits import (Fold, group_name, class_label, batch_spanning_groups, check_training_parts, kfold,
                     require_dataset, single_group_labels)
from .splits import leave_batch_out as leave_batch_out_folds

__all__ = ["FoldScore", "CVResult", "fit_and_score", "fit_fold", "fold_name", "plan_folds", "folds_plan", "cross_validate",
           "check_cv_options", "with_seed", "mean_sd", "finite", "check_fits_memory",
           "fold_coverage", "cannot_flag"]


# ── one model on one fold ──────────────────────────────────────────────────────────────────────────────────


@dataclass
class FoldScore:
    """One model trained on a fold's training part and scored on its test part."""

    label: tuple  # what the task was: ("cv", repeat, fold), ("grid", point, repeat, fold), ...
    repeat: int
    fold: int
    n_train: int  # rows the fold trained on (fit + early-stopping rows)
    n_test: int
    n_groups_train: int | None
    n_groups_test: int | None
    metrics: dict  # metrics.compute on the test rows
    score: float  # the main metric (balanced accuracy or RMSE); NaN when undefined
    best_epoch: int  # the median over the fold's members
    epochs_run: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    test_rows: np.ndarray | None = None  # (n_test,) indices into the dataset (kept for predictions)
    proba: np.ndarray | None = None  # (n_test, k) as Model.predict_output
    decision: Any = None  # decision.Decision: the fold model's rule for its labels (None: argmax; other tasks)
    members: int = 1  # networks in the fold's model
    hidden: list[int] = field(default_factory=list)  # the fold's architecture (--hidden auto chooses per fold)
    epoch_cap: int = 0  # --epochs as resolved for the fold: a best epoch at the cap means it wanted more
    # what --log1p auto said of the fold's training part ("applied ...", or why it declined counts): cv says it once
    log1p_notes: list[str] = field(default_factory=list)
    held_out: str | None = None  # leave-batch-out: the batches of the test part
    # with a trust level (classification): the fold model's prediction-set coverage and mean size on the test
    # part, its out-of-distribution flag rate there, and its own out-of-fold main metric on the training part
    # (what grouped cross-validation inside the training batches promises)
    trust: dict | None = None
    inner_score: float | None = None
    baseline: Any = None  # baseline.BaselineScore: the linear model on the same fold (cv's --baseline)


def _n_groups(ds: data.Dataset, rows: np.ndarray) -> int | None:
    return None if ds.groups is None else int(len(np.unique(ds.groups[rows])))


def fit_and_score(ds: data.Dataset, train_rows: np.ndarray, test_rows: np.ndarray, options: TrainOptions,
                  label: tuple = (), keep_predictions: bool = False, trust_level: float | None = None,
                  held_out: str | None = None, baseline: bool = False, ood_alpha: float = 0.01) -> FoldScore:
    """Train on ``train_rows`` of ``ds`` exactly as ``mlpcli train`` would (``fit_model``: its members,
    their early stopping, the portfolio choice and the calibration all inside the training rows) and
    score on ``test_rows``.

    ``trust_level`` (classification): also the prediction sets' coverage at that level, their mean size and
    the out-of-distribution flag rate on the test rows. With it, or with ``held_out`` (leave-batch-out, any
    task), the model's own out-of-fold score on its training part too. ``baseline``: also the linear baseline
    (``baseline.linear_baseline``) fitted on the same training rows and scored on the same test rows.

    A task for ``parallel.run``: everything it needs is in its arguments."""
    started = time.perf_counter()
    train_ds, test_ds = ds.subset(train_rows), ds.subset(test_rows)
    fitted = fit_model(train_ds, options, folds_flag="--member-folds")  # cv's and tune's name for train's --folds
    trusting = trust_level is not None and ds.task in ("binary", "multiclass")
    logits = [] if trusting else None
    proba = fitted.model.predict_output(test_ds.X, member_logits=logits)  # (n_test, k)
    decider = fitted.model.decider  # the fold model's own labels, as `train` would ship it
    m = metrics.compute(ds.task, test_ds.y, metrics.as_task_proba(ds.task, proba), list(ds.classes),
                        decider.threshold(ds.task), decider.weights(ds.task))
    main = m.get(metrics.main_metric_name(ds.task))
    repeat, fold = (label[-2], label[-1]) if len(label) >= 2 else (0, 0)
    best_epochs = [mm["best_epoch"] for mm in fitted.members]
    score = FoldScore(
        label=tuple(label), repeat=int(repeat), fold=int(fold), n_train=int(len(train_rows)), n_test=int(len(test_rows)),
        n_groups_train=_n_groups(ds, train_rows), n_groups_test=_n_groups(ds, test_rows), metrics=m,
        score=float("nan") if main is None else float(main), best_epoch=int(np.median(best_epochs)),
        epochs_run=int(max(mm["epochs_run"] for mm in fitted.members)), seconds=time.perf_counter() - started,
        warnings=list(fitted.warnings), test_rows=np.asarray(test_rows) if keep_predictions else None,
        # the networks of the model that scored the test rows: with --refit, the one refitted network, not the
        # cross-fitted members that chose its epochs (counting those called it an ensemble)
        proba=proba if keep_predictions else None, decision=fitted.model.decision, members=len(fitted.model.members),
        hidden=list(fitted.options.hidden), epoch_cap=int(fitted.runs[0].options.epochs), held_out=held_out,
        trust=_fold_trust(fitted, test_ds, trust_level, logits, ood_alpha) if trusting else None,
        # leave-batch-out compares it with the held-out batch for every task (a regression had no comparison)
        inner_score=_inner_score(fitted) if trusting or held_out is not None else None,
        baseline=linear_baseline(train_ds, test_ds, fitted.options, fitted.model.decision) if baseline else None,
        log1p_notes=[n for n in fitted.notes if n.startswith("--log1p auto")],
    )
    if score.baseline is not None:  # named with the fold like the network's own warnings
        score.warnings.extend(score.baseline.warnings)
    return score


def fit_fold(where: str, ds: data.Dataset, train_rows: np.ndarray, test_rows: np.ndarray, options: TrainOptions,
             *args) -> FoldScore:
    """``fit_and_score`` on one fold, an error of the fold's data (or its training's divergence) naming the fold (``where``, as the tables number
    folds): "the largest class has 3 samples" or "all 3 features are constant on the training rows" are about
    the fold's training part, not the table, and said nothing of which. A task for ``parallel.run``."""
    try:
        return fit_and_score(ds, train_rows, test_rows, options, *args)
    except (DataError, TrainingError) as exc:  # a divergence too: which fold's run diverged
        raise type(exc)(f"{where}: {exc}") from None


def _label_sets_of_folds(ds: data.Dataset, folds: list[Fold], repeated: bool) -> list[str]:
    """A multi-label table: a warning naming the folds whose test rows hold one value only of a label the table has
    both of. Their balanced accuracy is the mean over the other labels (``decision.label_balanced_accuracy``), so the
    fold scores average different label sets: a rare label absent from one fold's test part left it a mean over
    three labels of four."""
    if ds.task != "multilabel" or ds.y is None:
        return []
    from ..decision import labels_without_both

    Y = np.asarray(ds.y).reshape(ds.n_samples, -1)
    names = [str(c) for c in ds.classes]
    whole = set(labels_without_both(Y, names))
    short = [(fold_name(f, repeated), [n for n in labels_without_both(Y[f.test], names) if n not in whole])
             for f in folds]
    short = [(where, lacking) for where, lacking in short if lacking]
    if not short:
        return []
    listed = "; ".join(f"{where}: {', '.join(repr(n) for n in lacking)}" for where, lacking in short[:5])
    more = f"; and {len(short) - 5} more folds" if len(short) > 5 else ""
    return [f"the test rows of {len(short)} fold{'s' * (len(short) > 1)} hold one value only of a label "
            f"({listed}{more}): their balanced accuracy is the mean over the other labels, so the fold scores "
            "average different labels; fewer folds (--folds) give each test part more of a rare label"]


def fold_name(f: Fold | FoldScore, repeated: bool) -> str:
    """A fold as the tables number it (1-based): "fold 3", "repeat 2 fold 3", "fold 2 (held-out batch B2)"."""
    if f.held_out is not None:
        return f"fold {f.fold + 1} (held-out batch {f.held_out})"
    return f"repeat {f.repeat + 1} fold {f.fold + 1}" if repeated else f"fold {f.fold + 1}"


def _fold_trust(fitted, test_ds: data.Dataset, level: float, logits: list, alpha: float = 0.01) -> dict:
    from ..predict.trust import held_out_trust

    return held_out_trust(fitted.model, test_ds.X, test_ds.y, level, alpha, member_logits=logits,
                          groups=test_ds.groups)


def _inner_score(fitted) -> float | None:
    """The fold model's held-out main metric on its own training part (out-of-fold over its members)."""
    task, decider = fitted.scored.task, fitted.model.decider
    value = metrics.compute(task, fitted.scored.y, metrics.as_task_proba(task, fitted.estimate_proba),
                            list(fitted.scored.classes), decider.threshold(task), decider.weights(task),
                            predicted=fitted.estimate_labels()).get(metrics.main_metric_name(task))
    return finite(value)


def check_fits_memory(ds: data.Dataset, fits: Iterable[tuple[TrainOptions, int]], plan: Plan, n_tasks: int) -> Plan:
    """``fitting.check_fits_memory`` for the (options, training rows) of every model the tasks train, each
    candidate of ``--hidden auto`` included (``fit_and_score`` trains what ``train`` ships); the plan to run them on."""
    concrete = [(replace(options, hidden=list(hidden)), n_train) for options, n_train in fits
                for hidden in (PORTFOLIO if options.hidden == AUTO else [options.hidden])]
    return fitting_check_fits_memory(ds, concrete, plan, n_tasks)


def fold_coverage(trust: dict | None, per_patient: bool) -> float | None:
    """A fold's prediction-set coverage (``FoldScore.trust``): each patient counted once when ``per_patient`` (the
    table has patients), the samples' where the test part has one sample per patient (no per-patient figure)."""
    if trust is None:
        return None
    value = trust.get("coverage_per_group") if per_patient else trust.get("coverage")
    return trust.get("coverage") if value is None else value


def cannot_flag(trust: dict | None) -> bool:
    """Whether a fold model can flag nothing out-of-distribution at its alpha (its smallest p-value is not below
    it): its OOD rate is undefined (n/a), not 0."""
    return bool(trust) and trust.get("ood_floor") is not None and trust.get("ood_alpha") is not None \
        and trust["ood_floor"] >= trust["ood_alpha"]


# Held-out batches of fewer patients than this are named beside the leave-batch-out forecast (``small_held_out``):
# ``evaluate --by`` refuses to judge a group of fewer than 10 samples of a class, for the same reason
SMALL_HELD_OUT = 10


def mean_sd(values) -> tuple[float | None, float | None]:
    """(mean, sample SD) of the finite values; the SD is None with one value (undefined, not 0: a 0.000 under a
    column of n/a read as folds that agreed), both None without any."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return None, None
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else None


def _scalar_metrics(m: dict) -> dict:
    return {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k not in ("n", "threshold")}


# ── cross-validation ─────────────────────────────────────────────────────────────────────────────────────


@dataclass
class CVResult:
    task: str
    metric: str  # the main metric
    higher_is_better: bool
    classes: list
    target_names: list
    strategy: str
    n_folds: int
    repeats: int
    folds: list[FoldScore]
    seconds: float
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # the main metric on every sample's out-of-fold prediction at once, with its patient bootstrap interval
    # (``pooled.pooled_estimate``); None for leave-batch-out, or when the predictions were not kept
    pooled: PooledEstimate | None = None

    def summary(self) -> dict[str, dict]:
        """Mean and SD (over folds and repeats) of every scalar metric: {name: {"mean", "sd", "folds",
        "undefined"}}. ``folds``: the fits the metric is defined in (what its mean is over); ``undefined``: the
        others, named as the tables name them (an AUC of a held-out batch of one class, a label constant in a
        test fold). A mean over 2 of 3 folds was reported as over all 3."""
        return _summarise(self.folds, [f.metrics for f in self.folds], self.repeats > 1)

    def trust_summary(self) -> dict | None:
        """Mean and SD over folds of the prediction-set coverage (per patient when the table has patients, the
        figure the sets' guarantee is about), mean set size and OOD rate (``cv --coverage``, --leave-batch-out):
        {"coverage", "mean_set_size", "ood_rate": {"mean", "sd", "folds"}, "per_patient", "left_out": {name: [fold
        names]}}; None without them. Left out of a mean, as undefined: the OOD rate of a fold model that can flag
        nothing at the level (its smallest p-value is not below alpha), and the coverage of a fold model whose sets
        hold every class by the count alone (too few held-out patients for the level: a coverage of 1 that
        measures nothing)."""
        trusted = [f for f in self.folds if f.trust is not None]
        if not trusted:
            return None
        per_patient = any(f.trust.get("coverage_per_group") is not None for f in trusted)
        repeated = self.repeats > 1
        values: dict[str, list] = {"coverage": [], "mean_set_size": [], "ood_rate": []}
        left_out: dict[str, list[str]] = {"coverage": [], "ood_rate": []}
        for f in trusted:
            t = f.trust
            coverage = fold_coverage(t, per_patient)
            if t.get("set_notes"):
                left_out["coverage"].append(fold_name(f, repeated))
                coverage = None
            ood = t.get("ood_rate")
            if cannot_flag(t):
                left_out["ood_rate"].append(fold_name(f, repeated))
                ood = None
            values["coverage"].append(coverage)
            values["mean_set_size"].append(t.get("mean_set_size"))
            values["ood_rate"].append(ood)
        out: dict = {"per_patient": per_patient, "left_out": left_out}
        for name, vs in values.items():
            mean, sd = mean_sd(vs)
            out[name] = {"mean": mean, "sd": sd, "folds": sum(finite(v) is not None for v in vs)}
        return out

    def small_held_out(self, min_units: int = SMALL_HELD_OUT) -> dict | None:
        """Leave-batch-out: the held-out batches of fewer than ``min_units`` patients (samples without a patient
        column), whose scores are too noisy to weigh like the others in the forecast (each batch counts once,
        whatever its size: one patient's batch moved it by 0.06), and the main metric's mean and SD without
        them: {"batches": [{"batch", "n", "units"}], "mean", "sd", "folds"}; None when there are none, or when
        every batch is that small."""
        held = [f for f in self.folds if f.held_out is not None]
        small = [f for f in held if (f.n_groups_test if f.n_groups_test is not None else f.n_test) < min_units]
        if not small or len(small) == len(held):
            return None
        rest = [f.score for f in held if f not in small]
        mean, sd = mean_sd(rest)
        return {"batches": [{"batch": f.held_out, "n": f.n_test,
                             "units": f.n_groups_test if f.n_groups_test is not None else f.n_test} for f in small],
                "unit": "patients" if small[0].n_groups_test is not None else "samples",
                "min_units": min_units, "mean": mean, "sd": sd, "folds": sum(finite(v) is not None for v in rest)}

    def baseline_summary(self) -> dict | None:
        """The linear baseline on the same folds (``cross_validate(baseline=True)``), None without it:
        {"model", "summary": as ``summary()``, "difference": the main metric's fold-by-fold difference, this
        model minus the baseline: {"metric", "mean", "sd", "folds", "better", "worse"} (folds where this model
        scored better / worse, by the metric's direction)}. Each fold's baseline labels by that fold model's
        decision rule (``BaselineScore.decision``)."""
        if not self.folds or any(f.baseline is None for f in self.folds):
            return None
        diffs = [f.score - f.baseline.score for f in self.folds
                 if finite(f.score) is not None and finite(f.baseline.score) is not None]
        sign = 1.0 if self.higher_is_better else -1.0
        mean, sd = mean_sd(diffs)
        return {"model": self.folds[0].baseline.model,
                "summary": _summarise(self.folds, [f.baseline.metrics for f in self.folds], self.repeats > 1),
                "difference": {"metric": self.metric, "mean": mean, "sd": sd, "folds": len(diffs),
                               "better": sum(sign * d > 0 for d in diffs), "worse": sum(sign * d < 0 for d in diffs)}}

    def to_dict(self) -> dict:
        return {
            "task": self.task, "metric": self.metric, "higher_is_better": self.higher_is_better,
            "classes": [str(c) for c in self.classes], "strategy": self.strategy, "folds": self.n_folds,
            "repeats": self.repeats, "summary": self.summary(),
            "per_fold": [_fold_dict(f) for f in self.folds], "seconds": self.seconds,
            "notes": self.notes, "warnings": self.warnings,
            **({"baseline": base} if (base := self.baseline_summary()) is not None else {}),
            **({"pooled": self.pooled.to_dict()} if self.pooled is not None else {}),
            **({"trust": trust} if (trust := self.trust_summary()) is not None else {}),
            **({"small_held_out": small} if (small := self.small_held_out()) is not None else {}),
        }

    def oof_frame(self, ds: data.Dataset):
        """Out-of-fold predictions as a DataFrame: id, group, repeat, fold, truth, prediction and
        probability columns (one row per sample and repeat, in row order within each repeat)."""
        import pandas as pd

        parts = []
        for f in self.folds:
            if f.test_rows is None:
                raise ValueError("out-of-fold predictions were not kept; run cross_validate(keep_predictions=True)")
            parts.append(_prediction_columns(ds, f))
        frame = pd.concat(parts, ignore_index=True)
        order = np.lexsort((frame["_row"].to_numpy(), frame["repeat"].to_numpy()))
        return exact_if_regression(frame.iloc[order].drop(columns="_row").reset_index(drop=True), ds.task)


def _summarise(folds: list[FoldScore], fold_metrics: list[dict], repeated: bool) -> dict[str, dict]:
    """{name: {"mean", "sd", "folds", "undefined"}} of every scalar metric of ``fold_metrics`` (one dict per fold
    of ``folds``)."""
    names = list(dict.fromkeys(k for m in fold_metrics for k in _scalar_metrics(m)))
    out = {}
    for name in names:
        values = [m.get(name) for m in fold_metrics]
        mean, sd = mean_sd(values)
        undefined = [fold_name(f, repeated) for f, v in zip(folds, values) if finite(v) is None]
        out[name] = {"mean": mean, "sd": sd, "folds": len(values) - len(undefined), "undefined": undefined}
    return out


def _fold_dict(f: FoldScore) -> dict:
    return {"repeat": f.repeat + 1, "fold": f.fold + 1, "n_train": f.n_train, "n_test": f.n_test,
            "n_groups_train": f.n_groups_train, "n_groups_test": f.n_groups_test, "score": finite(f.score),
            "best_epoch": f.best_epoch, "epochs_run": f.epochs_run, "members": f.members, "hidden": f.hidden,
            "seconds": f.seconds, "metrics": f.metrics,
            # the rule that labelled the fold's test rows (auto chooses per fold); None: not a class target
            "decision": f.decision.rule if f.decision is not None else None,
            **({"held_out": f.held_out} if f.held_out is not None else {}),
            **({"trust": f.trust} if f.trust is not None else {}),
            **({"inner_score": f.inner_score} if f.trust is not None or f.held_out is not None else {}),
            **({"baseline": {"score": finite(f.baseline.score), "metrics": f.baseline.metrics,
                             "seconds": f.baseline.seconds, "decision": f.baseline.decision}}
               if f.baseline is not None else {})}


def finite(x):
    return None if x is None or not np.isfinite(x) else float(x)


HELD_OUT_BATCH = "held_out_batch"  # cv --leave-batch-out --oof: the batch each row was held out with


def _prediction_columns(ds: data.Dataset, f: FoldScore):
    import pandas as pd

    rows, P = f.test_rows, f.proba
    id_name = ds.roles.id if ds.roles is not None and ds.roles.id else "row"
    # without an id column, the 1-based row number, as predict and train --oof number rows (0-based rows here were
    # off by one against them: a join on `row` paired every prediction with the next sample)
    cols: dict[str, Any] = {"_row": rows, id_name: ds.ids[rows] if ds.ids is not None else rows + 1}
    if ds.groups is not None:
        cols[group_name(ds)] = ds.groups[rows]
    cols["repeat"] = np.full(len(rows), f.repeat + 1)
    cols["fold"] = np.full(len(rows), f.fold + 1)
    if f.held_out is not None and ds.batches is not None:  # leave-batch-out: each row's batch (a fold may hold several)
        cols[HELD_OUT_BATCH] = ds.batches[rows]
    cols.update(prediction_columns(ds, rows, P, f.decision))
    return pd.DataFrame(cols)


def check_cv_options(options: TrainOptions) -> None:
    options.validate()
    if options.val_data:
        raise OptionError("--val-data does not apply here: each fold's early-stopping rows come from its own "
                          "training part")


def with_seed(options: TrainOptions, repeat: int) -> TrainOptions:
    return replace(options, seed=offset_seed(options.seed, repeat))


def plan_folds(ds: data.Dataset, options: TrainOptions, folds: int = 5, repeats: int = 1,
               leave_batch_out: bool = False, coverage: float | None = None) -> tuple[list[Fold], str]:
    """The folds ``cross_validate`` runs and its strategy's description, after every check that needs no fit
    (the options, the target, the fold count against the patients and classes, each training part's classes):
    a caller that announces the fits first calls this, so such an error comes before the announcement.
    Cheap: no model is trained."""
    check_cv_options(options)
    if ds.y is None or ds.task is None:
        raise DataError("the table has no target column; name it with --target")
    if coverage is not None and not (isinstance(coverage, (int, float)) and 0 < coverage < 1):
        raise ConfigError(f"--coverage must be a level in (0, 1), got {coverage!r}")
    if coverage is not None and ds.task not in ("binary", "multiclass"):
        raise OptionError(f"--coverage: prediction sets are for class targets; this target is {ds.task}")
    check_decision(options, ds.task)
    check_missing(options, ds)  # the table's, as train says it: from every fold's fit it read "fold 1: ..."
    if leave_batch_out:
        if repeats != 1:
            raise ConfigError("--repeats does not apply to --leave-batch-out: its folds are the batches, not a shuffle")
        fold_list, strategy = leave_batch_out_folds(ds)
    else:
        fold_list, strategy = kfold(ds, folds, repeats, options.seed, outer=True)
    check_training_parts(ds, fold_list)  # before any fit: a class the fold's early stopping cannot hold out
    return fold_list, strategy


def folds_plan(ds: data.Dataset, options: TrainOptions, fold_list: Sequence[Fold], plan: Plan) -> Plan:
    """Where the fits of ``fold_list`` run (``parallel.fits_plan``): an asked-for plan as it is; the commands' default
    (``parallel.member_plan()``: every usable core) on one worker process per fold, or in this process when each worker
    would copy more than 64 MB of rows (the table and a fold's training part, preprocessed)."""
    rows = max((len(f.train) for f in fold_list), default=0)
    return fits_plan(plan, len(fold_list), worker_copy_bytes(ds, rows, options))


def cross_validate(ds: data.Dataset, options: TrainOptions, folds: int = 5, repeats: int = 1, plan: Plan = Plan(),
                   keep_predictions: bool = True, progress: Callable[[int, int], None] | None = None,
                   leave_batch_out: bool = False, coverage: float | None = None, baseline: bool = False,
                   ood_alpha: float = 0.01) -> CVResult:
    """Grouped (stratified) K-fold cross-validation of the model ``options`` describe.

    Each fold trains a fresh model on its training part (preprocessing and early stopping inside
    it) and is scored on its test part. ``repeats`` > 1 reshuffles the folds and reseeds the
    networks (repeat r: ``options.seed + r``).

    ``leave_batch_out``: one fold per batch instead (``splits.leave_batch_out``: a batch with every batch its
    patients link it to), the forecast for a new site; it reports, per held-out batch and for classifiers,
    the prediction sets' coverage at ``coverage`` (default 0.9), their size and the out-of-distribution
    rate, beside the fold model's own out-of-fold score on its training batches. ``coverage`` alone adds the
    same to ordinary folds.

    ``ood_alpha``: the p-value below which a test row counts as out-of-distribution in the trust figures (a fold
    model with few held-out patients cannot flag anything at 0.01: ``FoldScore.trust["notes"]`` says so).

    ``baseline``: also fit the linear baseline (``baseline.linear_baseline``: logistic or ridge regression on
    the same preprocessing) on every fold's training part and score it on the same test part
    (``CVResult.baseline_summary``).

    ``plan``: where the folds run (default here, one after the other); ``parallel.member_plan()``, the command's
    default, runs them on the usable cores (``folds_plan``). The scores are the same either way."""
    started = time.perf_counter()
    require_dataset(ds, "cross_validate takes")  # a path or a dict of options failed with an AttributeError inside
    require_options(options, "cross_validate takes")
    fold_list, strategy = plan_folds(ds, options, folds, repeats, leave_batch_out, coverage)
    if leave_batch_out:
        folds = len(fold_list)
        coverage = 0.9 if coverage is None else coverage
    repeated = repeats > 1
    tasks = [(fit_fold, (fold_name(f, repeated), ds, f.train, f.test, with_seed(options, f.repeat),
                         ("cv", f.repeat, f.fold), keep_predictions, coverage, f.held_out, baseline, ood_alpha))
             for f in fold_list]
    plan = folds_plan(ds, options, fold_list, plan)
    asked, plan = plan, check_fits_memory(ds, [(options, max(len(f.train) for f in fold_list))], plan, len(tasks))
    scores = run(tasks, plan, shared=[ds], progress=progress)
    metric = metrics.main_metric_name(ds.task)
    warn = fold_warnings(ds, fold_list, scores)
    confounded = batch_confounding(ds, leave_batch_out)
    if confounded:
        warn.insert(0, confounded)
    from ..data.batch_scales import batch_scale_warning

    warn += _label_sets_of_folds(ds, fold_list, repeated) + single_group_labels(ds)
    from ..data.missingness import zeros_as_missing_warning

    warn += filter(None, [batch_scale_warning(ds), zeros_as_missing_warning(ds)])
    if options.impute is not None:  # missing values that follow the class or batch (``data.missingness``)
        from ..data.missingness import missingness_warnings

        warn[:0] = missingness_warnings(ds)
    # per fold: --member-folds auto gives a fold as many members as its training part's rarest class allows, so
    # folds can differ (the note named the first fold's count as every fold's)
    shipped = [f.members for f in scores]
    notes = [f"each fold trains what `train` ships: {describe_model(options, shipped)}, fitted inside the fold's "
             "training part"] + fewer_at_once_note(asked, plan, len(tasks))
    rules = [f.decision.rule for f in scores if f.decision is not None]
    if rules and options.decision == "auto":  # which labels each fold's score counts: auto decides fold by fold
        n_balanced = rules.count("balanced")
        which = ("every fold" if n_balanced == len(rules) else f"{n_balanced} of {len(rules)} folds")
        others = "" if n_balanced == len(rules) else " and the others by argmax"
        how = ("each label present when P >= its training share" if ds.task == "multilabel"
               else "the most probable class relative to its training share")
        notes.append(f"--decision auto labelled {which} by the balanced rule ({how}){others}, each fold's rule chosen "
                     "on its model's own out-of-fold predictions"
                     if n_balanced else "--decision auto labelled every fold by argmax (the balanced rule did not "
                     "score higher on any fold model's own out-of-fold predictions)")
    notes += _log1p_notes(scores)
    if leave_batch_out:
        notes += _spanning_note(ds)
    # every sample scored once per repeat by a model that never saw its patient: one estimate over them all, with
    # a patient bootstrap interval (leave-batch-out reports each held-out batch instead: a new site each)
    pooled = None
    if not leave_batch_out and all(f.test_rows is not None for f in scores):
        by_repeat = [(np.concatenate([f.test_rows for f in scores if f.repeat == r]),
                      np.concatenate([f.proba for f in scores if f.repeat == r])) for r in range(repeats)]
        # each row labelled by its fold model's rule (auto can choose differently fold by fold)
        predicted = ([np.concatenate([(f.decision or Decision()).classes(ds.task, f.proba) for f in scores
                                      if f.repeat == r]) for r in range(repeats)]
                     if ds.task in DECIDED else None)
        pooled = pooled_estimate(ds.task, ds.y, by_repeat, len(ds.classes), ds.groups, seed=options.seed,
                                 predicted=predicted)
    return CVResult(task=ds.task, metric=metric, higher_is_better=metrics.higher_is_better(metric), classes=list(ds.classes),
                    target_names=list(ds.target_names), strategy=strategy, n_folds=folds, repeats=repeats,
                    folds=scores, seconds=time.perf_counter() - started, notes=notes, warnings=warn, pooled=pooled)


def _log1p_notes(scores: list[FoldScore]) -> list[str]:
    """What --log1p auto said in the folds, once: each fold decides on its own training part, so a note found in
    some folds only says in how many (cv said nothing of it: counts trained logged or not without a word)."""
    out = []
    for note in dict.fromkeys(n.split("(")[0] for f in scores for n in f.log1p_notes):  # (its figures differ by fold)
        k = sum(any(n.startswith(note) for n in f.log1p_notes) for f in scores)
        first = next(n for f in scores for n in f.log1p_notes if n.startswith(note))
        out.append(first if k == len(scores) else f"{first} (in {k} of {len(scores)} folds; the others decided "
                                                  "otherwise on their training parts)")
    return out


# The label is said confounded with the batch when batch x class has Cramér's V of 0.5 or more (a strong
# association by the usual reading), associated with it from 0.25 (moderate: class shares of 30 % and 70 % in two
# kinds of batch), when a chi-square test rejects independence at 0.01, counting each patient once per (batch, class):
# a patient's samples are not independent evidence, and with few of them V is large by chance. At V 0.28 (p 0.0014,
# 200 patients in 4 batches, two of them shifted 2 SD, labels random within each batch) grouped CV read a balanced
# accuracy of 0.630 (95 % CI 0.563-0.694) from the batches alone, without a word (0.48-0.52 within each batch).
CONFOUNDED_V = 0.5
ASSOCIATED_V = 0.25
CONFOUNDED_P = 0.01


def batch_confounding(ds: data.Dataset, leave_batch_out: bool = False, command: str = "cv") -> str | None:
    """A warning when the class target is confounded with the batch column: a model can then score by recognising
    the batches (a site, a run), and grouped folds, which mix batches, reward it as if it were biology. None
    otherwise (no batch column, one batch, a numeric or multi-label target). ``command``: "cv" (and tune), or
    "train", whose held-out estimate is the figure so rewarded."""
    if ds.task not in data.CLASSIFICATION_TASKS or ds.batches is None or ds.y is None:
        return None
    names, b = np.unique(np.asarray(ds.batches, dtype=str), return_inverse=True)
    y = np.asarray(ds.y, dtype=np.int64).reshape(-1)
    b = b.reshape(-1)
    if len(names) < 2 or len(np.unique(y)) < 2:
        return None
    bb, yy = b, y
    if ds.groups is not None:  # one count per patient in each (batch, class) it has samples in
        _, g = np.unique(np.asarray(ds.groups), return_inverse=True)
        units = np.unique(np.stack([g.reshape(-1), b, y], axis=1), axis=0)  # (n_units, 3)
        bb, yy = units[:, 1], units[:, 2]
    table = np.zeros((len(names), int(y.max()) + 1))  # (batches, classes)
    np.add.at(table, (bb, yy), 1)
    table = table[:, table.sum(axis=0) > 0]
    chi2, p, _ = chi2_independence(table)
    v = float(np.sqrt(chi2 / (table.sum() * (min(table.shape) - 1))))
    if not (v >= ASSOCIATED_V and p < CONFOUNDED_P):
        return None
    samples = np.zeros((len(names), int(y.max()) + 1))  # the shares shown are of samples, as the table counts them
    np.add.at(samples, (b, y), 1)
    shares = [f"{names[i]} {samples[i].max() / samples[i].sum():.0%} {class_label(ds, int(samples[i].argmax()))!r}"
              for i in np.argsort(-samples.max(axis=1) / samples.sum(axis=1), kind="stable")[:3]]
    column = ds.roles.batch if ds.roles is not None and ds.roles.batch else "batch"
    counted = f", each {group_name(ds)} counted once" if ds.groups is not None else ""
    how = "confounded with" if v >= CONFOUNDED_V else "associated with"  # (a moderate association, not chance)
    what = f"the label is {how} {column!r} (Cramér's V {v:.2f}{counted}, p {p:.2g}; {', '.join(shares)})"
    if leave_batch_out:
        return (what + ": a held-out batch's class mix differs from its training batches', so its score mixes the "
                "biology with that shift; no fold can separate batch from biology here")
    # (tune has no --leave-batch-out: cv's is named as train names it)
    option = "--leave-batch-out" if command == "cv" else "`mlpcli cv --leave-batch-out`"
    if command == "train":
        first = ("a model can score by recognising batches, and the held-out estimate, whose rows share batches with "
                 "the training rows, rewards it as biology")
        split = "split"
    else:
        first = "a model can score by recognising batches, and folds that mix them reward it as biology"
        split = "fold"
    # a class whose samples all sit in one batch: holding that batch out leaves the class no training rows, so each
    # such fold scores its samples as errors (every batch one class: balanced accuracy 0 in every fold), which says
    # nothing of a new site; the suggestion would send the user to a run that cannot answer
    alone = [(class_label(ds, int(c)), str(names[int(np.unique(b[y == c])[0])])) for c in np.unique(y)
             if np.unique(b[y == c]).size == 1]
    if alone:
        (label, batch), more = alone[0], len(alone) - 1
        others = f" (and {more} other class{'es' * (more > 1)} {'are' if more > 1 else 'is'} in one batch too)" \
            if more else ""
        return (what + f": {first}; {option} does not measure it for class {label!r}: that class is only in batch "
                f"{batch!r}{others}, so the fold holding that batch out has no training rows of it (its samples all "
                f"count as errors) — no {split} can separate batch from biology here")
    return (what + f": {first}; {option} shows how it fares on batches it never saw, but no {split} can separate "
            "batch from biology here")


def _spanning_note(ds: data.Dataset) -> list[str]:
    """Which patients tie batches into one leave-batch-out fold: one spanning batches is often a relabelled or
    mislabelled sample, worth a look, and it is why a fold's held-out batch reads "B1+B2"."""
    spanning = batch_spanning_groups(ds)
    if not spanning:
        return []
    shown = ", ".join(f"{g!r} ({', '.join(b)})" for g, b in spanning[:5])
    more = f" and {len(spanning) - 5} more" if len(spanning) > 5 else ""
    n = len(spanning)
    return [f"{n} {'group has' if n == 1 else 'groups have'} samples in several batches, so those batches are held "
            f"out together ({group_name(ds)}: {shown}{more})"]


def describe_model(options: TrainOptions, members: int | list[int]) -> str:
    """A few words on the model the options give, e.g. "a 5-member cross-fitted ensemble"; ``members``: its
    networks, or each fold's (folds that differ, as --member-folds auto makes them around a rare class, are
    said with each fold's count: "a cross-fitted ensemble of 4 or 5 members (per fold: 4, 5, 5: ...)")."""
    counts = [members] if isinstance(members, (int, np.integer)) else [int(m) for m in members]
    kinds = sorted(set(counts))
    if options.refit:  # train --refit ships one network trained on all rows (of the fold's training part here)
        what = "one network refitted on all the training rows for the cross-fitted members' median best epoch"
    elif len(kinds) > 1:
        listed = ", ".join(map(str, counts[:10])) + (f" and {len(counts) - 10} more" if len(counts) > 10 else "")
        what = (f"a cross-fitted ensemble of {', '.join(map(str, kinds[:-1]))} or {kinds[-1]} members (per fold: "
                f"{listed}: --member-folds auto decides on each fold's training part, fewer where its rarest class has "
                "fewer patients)")
    else:
        what = "one network on a hold-out" if kinds[0] == 1 else f"a {kinds[0]}-member cross-fitted ensemble"
    if options.hidden == "auto":
        what += " (--hidden auto: architecture chosen inside each fold)"
    return what


def _classes(names: list[str], verb: str, plural_verb: str) -> str:
    """"class 'A' has" / "classes 'A', 'B' have" for the fold warnings."""
    listed = ", ".join(map(repr, names))
    return f"class {listed} {verb}" if len(names) == 1 else f"classes {listed} {plural_verb}"


def fold_warnings(ds: data.Dataset, fold_list: list[Fold], scores: list[FoldScore],
                   settings: Sequence[str] | None = None) -> list[str]:
    """The folds' warnings, one line per distinct warning naming every fold it came from. ``settings``: tune's
    grid settings as written (``format_setting``), by the point index of a score's label ("grid", point, ...):
    a warning that only some settings' fits gave names them."""
    out: list[str] = []
    if ds.task in data.CLASSIFICATION_TASKS:
        several = len({f.repeat for f in fold_list}) > 1  # name folds as the table does: a repeat only with repeats
        for f in fold_list:
            where = fold_name(f, several)
            untrained = [class_label(ds, k) for k in np.unique(ds.y) if not np.any(ds.y[f.train] == k)]
            if untrained:  # leave-batch-out, when a class lives in one batch: the fold's model never sees it
                it, its = ("it", "its") if len(untrained) == 1 else ("them", "their")
                out.append(f"{where}: {_classes(untrained, 'has', 'have')} no training rows (only in the held-out part); the "
                           f"fold's model cannot predict {it}, so {its} samples there all count as errors")
            missing = [class_label(ds, k) for k in np.unique(ds.y) if not np.any(ds.y[f.test] == k)]
            if missing:
                held = [class_label(ds, k) for k in np.unique(ds.y[f.test])] if ds.task != "multilabel" else []
                # one class alone: its "balanced accuracy" is that class's recall, which the mean then averages in
                alone = (f" (its balanced accuracy is the recall of class {str(held[0])!r} alone)" if len(held) == 1 else "")
                out.append(f"{where}: {_classes(missing, 'is', 'are')} absent from the test rows; the metrics there "
                           f"do not cover {'it' if len(missing) == 1 else 'them'}{alone}")
    repeated = len({s.repeat for s in scores}) > 1
    # numbered as the tables number folds: the task label ("cv/0/2", "grid/0/0/0": 0-based, with the grid point's
    # internal index) named a fold the table calls 3. One line per warning, naming every fold it came from: the
    # same words from five folds named the first one only, as if the other four had been free of it.
    # The constant features each fold drops differ by a gene or two (all-zero genes of RNA-seq: expected), and
    # their warnings with them: one per fold repeated the same news five times. One line, the first fold's words.
    # A warning whose words recur with other figures (a class's held-out probabilities "add up to 20.2 where 5 of the
    # 48 ..." in one fold, "16.2" in the next) is one line too, the first fold's figures with "each its own".
    where: dict[str, list[str]] = {}
    words: dict[str, str] = {}
    figures: dict[str, set[str]] = {}
    points: dict[str, set[int]] = {}  # tune: the grid points whose fits gave the warning
    for s in scores:  # tune: every grid point's fits of a fold, named once
        for w in s.warnings:
            key = (CONSTANT_KEY if data.preprocess_messages.is_constant_message(w) else
                   EMPTY_KEY if data.preprocess_messages.is_empty_message(w) else without_figures(w))
            words.setdefault(key, w)
            figures.setdefault(key, set()).add(w)
            names = where.setdefault(key, [])
            if fold_name(s, repeated) not in names:
                names.append(fold_name(s, repeated))
            if settings is not None and s.label[0] == "grid":
                points.setdefault(key, set()).add(int(s.label[1]))
    for key, names in where.items():
        also = names[1:5] + ([f"{len(names) - 5} more"] if len(names) > 5 else [])
        also_text = f" (also {', '.join(also[:-1])} and {also[-1]})" if len(also) > 1 else f" (also {also[0]})" if also else ""
        if key in (CONSTANT_KEY, EMPTY_KEY) and also:
            also_text = also_text[:-1] + ", each dropping its own)"
        elif also and len(figures[key]) > 1:
            also_text = also_text[:-1] + ", each with figures of its own)"
        given = sorted(points.get(key, ()))
        if settings is not None and given and len(given) < len(settings):  # not every setting's: say whose
            shown = [settings[j] for j in given[:3]]
            more = f" and {len(given) - 3} more" if len(given) > 3 else ""
            also_text += f" [setting{'s' * (len(given) > 1)} {'; '.join(shown)}{more}]"
        out.append(f"{names[0]}, within its training part: {words[key]}{also_text}")
    return out


# a quoted name (a class '2', a gene 'ACTB1'), kept as it is, or a number in a warning's words
# (a quote opens after no letter or digit, as repr writes names: "member 1's held-out rows" opens none)
_FIGURES = re.compile(r"((?<!\w)'(?:[^'\\]|\\.)*'(?!\w)|(?<!\w)\"(?:[^\"\\]|\\.)*\"(?!\w))|\d+(?:[.,]\d+)*(?:e[+-]?\d+)?")


def without_figures(text: str) -> str:
    """`text` with its numbers as "#", its quoted names as they are: the words two folds' warnings share."""
    return _FIGURES.sub(lambda m: m.group(1) or "#", text)


CONSTANT_KEY = "\0constant"  # fold_warnings' key of every fold's constant-feature warning
EMPTY_KEY = "\0empty"  # and of every fold's warning of features without a value on its training rows

