"""What ``mlpcli train`` does, as one library function a notebook can call.

    table ─read─▶ Dataset ─model_selection.fit_model─▶ members (cross-fitted, or one hold-out network),
          calibrated, with out-of-fold scores ─▶ Model (+ roles, config, history, split, provenance)
          ─diagnosis of the members' learning curves─▶ TrainOutcome

Saving is left to the caller (``model_io.save``), so a notebook can inspect before writing.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from . import __version__, data, interrupts, metrics
from .calibration import Calibration
from .config import TrainOptions, require_options
from .errors import ConfigError, DataError
from .model_io import Model
from .model_summary import is_weighted
from .model_selection import crossfit
from .model_selection import splits
from .model_selection.pooled import PooledEstimate, pooled_estimate
from .model_selection.splits import summarize_folds
from .parallel import member_plan
from .background import Deferred, beside, import_beside, quick_switches
from .rough_metrics import held_out_caveat
from .text import agreeing, count_of

__all__ = ["TrainOutcome", "train", "train_dataset", "load_dataset", "refit_tuned", "held_out_warnings"]



@dataclass
class TrainOutcome:
    model: Model
    fitted: crossfit.FittedModel
    val_metrics: dict  # held-out metrics: out-of-fold for an ensemble, the validation rows for one network
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    diagnosis: object | None = None  # diagnosis.Diagnosis when the run is long enough to read
    seconds: float = 0.0  # wall time of the training (reading the table excluded)
    # why the held-out metrics are rough (``held_out_caveat``: few samples, or few of one class); None when not
    metrics_caveat: str | None = None
    # the main held-out metric's percentile bootstrap interval, resampling patients (``pooled.pooled_estimate``)
    interval: PooledEstimate | None = None

    @property
    def interrupted(self) -> bool:
        return bool(self.model.fit.get("interrupted"))

    @property
    def stopped(self) -> list[BaseException]:
        """A stop signal that came once training was over, held until the model was complete (it is): the
        caller keeps the model, then stops (``interrupts.finishing``)."""
        return self.fitted.stopped

    @property
    def calibration(self) -> Calibration | None:
        return self.fitted.calibration


# What training imports first where it uses scikit-learn (``needs_scikit_learn``): its splitters and metrics, 1-2 s
# of Python (most of it scipy.stats).
TRAINING_IMPORTS = ("sklearn.model_selection", "sklearn.metrics")


def load_dataset(path, options: TrainOptions, stdin=None) -> tuple[data.Dataset, list[str]]:
    """Read and validate the training table; returns the dataset and the role notes.

    A text or parquet table whose training will use scikit-learn (``needs_scikit_learn``) is read while it is
    imported beside it (pyarrow's and NumPy's parsing release the GIL): 0.5-1 s less before the first epoch at
    8,000 x 5,000. Not beside ``.h5ad`` and 10x reading, which import scipy themselves."""
    require_options(options, "load_dataset takes")  # a dict of options failed with an AttributeError inside
    dense = not isinstance(path, pd.DataFrame) and data.table_kind(path) in ("text", "parquet") \
        and "sklearn" not in sys.modules and needs_scikit_learn(path, options)
    imported = import_beside(*TRAINING_IMPORTS) if dense else (lambda: None)
    try:
        with quick_switches() if dense else nullcontext():  # the reader's calls get the lock back from the import
            loaded = data.load_dataset(path, **options.roles(), stdin=stdin)
            # NumPy, beside the import (~0.1 s at 8,000 x 5,000); its fingerprints are the training rows' a model keeps
            # (sparse tables are not checked for copies: theirs are made when the model needs them)
            table = loaded[0]
            twins = data.twin_rows(table.X, table.groups, None if data.is_sparse(table.X) else table.row_fingerprints())
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: not waited for, as the interrupted reading may hold an
        raise  # import lock the import thread (a daemon, left to the exit) waits for: a hang, seen once
    except BaseException:
        imported()
        raise
    imported()  # so nothing here imports scikit-learn while the thread still does
    if twins:
        loaded[0].warnings.append(_twins_warning(loaded[0], twins))
    return loaded


def needs_scikit_learn(path, options: TrainOptions) -> bool:
    """Whether training on the table at ``path`` will import scikit-learn, judged before it is read: its splitters
    split a table without a patient column (StratifiedKFold, ShuffleSplit) and a regression's single hold-out
    (GroupShuffleSplit), its class weights balance the classes. A model of a table with patients uses none of it
    otherwise (the grouped folds and the metrics are NumPy here), and importing it beside the read took 1-2 s of CPU
    from the read and the start of training. A guess only decides where the import happens: True when the header
    cannot be read cheaply."""
    if options.no_group or options.class_weight == "balanced" or (options.task == "regression" and options.folds == 1):
        return True
    if options.group is not None:
        return False
    names = _header_names(path)
    if names is None:
        return True
    dropped = set(options.drop) | set(options.target)
    return not any(g in names and g not in dropped for g in data.DEFAULT_GROUPS)


def _header_names(path) -> set[str] | None:
    """The column names of a regular text or parquet file, read from its first line or its schema (None when it
    is not such a file or the line is longer than 8 MB: a pipe is read once, by the reader)."""
    import re

    from .data.sources import open_binary, table_format

    name = os.fspath(path) if not isinstance(path, pd.DataFrame) else None
    if name is None or name == "-" or not os.path.isfile(name):
        return None
    try:
        kind, _, compression = table_format(name)
        if kind == "parquet":
            from .data.parquet import parquet_metadata

            return set(parquet_metadata(name).schema.to_arrow_schema().names)
        if kind != "text":
            return None
        with open_binary(name, compression) as fh:
            line = fh.readline(8 << 20)
    except Exception:  # noqa: BLE001 - the reader itself says what is wrong with the file
        return None
    if not line.endswith(b"\n"):
        return None
    return {cell.strip().strip('"').strip("'") for cell in re.split(r"[,\t;| ]", line.decode("utf-8", "replace"))}


def _twins_warning(ds: data.Dataset, twins: list[tuple[int, int]]) -> str:
    def name(i: int) -> str:
        return repr(str(ds.ids[i])) if ds.ids is not None else f"row {i + 1}"

    i, j = twins[0]
    copies = len({j for _, j in twins})
    where = (f"in another {ds.roles.group if ds.roles and ds.roles.group else 'group'}" if ds.groups is not None
             else "")
    remedy = ("drop the copies, or give each sample's copies one group" if ds.groups is not None else
              "drop the copies, or give each sample's copies one --group")
    return (f"{copies} sample{'s' * (copies > 1)} repeat{'s' * (copies == 1)} another sample's feature values exactly"
            f"{' ' + where if where else ''} ({name(j)} = {name(i)}"
            f"{f', and {len(twins) - 1} more pair' + 's' * (len(twins) > 2) if len(twins) > 1 else ''}): "
            f"a copy held out while its twin trains makes the held-out metrics optimistic — {remedy}")


def _check_call(options, plan, progress) -> None:
    """A ConfigError for arguments of the wrong kind (a dict of options, a plan that is a string or out of range, a
    progress that cannot be called), which otherwise failed deep inside, or passed: Plan(threads=-3) trained and
    recorded -3 threads in the model."""
    from .parallel import Plan

    if not isinstance(options, TrainOptions):
        raise ConfigError(f"options must be a TrainOptions (config.TrainOptions(epochs=...)), got a "
                          f"{type(options).__name__}")
    if plan is not None:
        if not isinstance(plan, Plan):
            raise ConfigError(f"plan must be a parallel.Plan (e.g. Plan(n_jobs=2)), got a {type(plan).__name__}")
        if not (plan.n_jobs is None or isinstance(plan.n_jobs, int)) or not (
                plan.threads is None or isinstance(plan.threads, int)):
            raise ConfigError("plan's n_jobs and threads must be whole numbers (or None)")
        plan.validate()
    if progress is not None and not callable(progress):
        raise ConfigError(f"progress must be a function of one dict, got a {type(progress).__name__}")


def train(path, options: TrainOptions, progress: Callable[[dict], None] | None = None, stdin=None,
          plan=None) -> TrainOutcome:
    """Train a model on the table at ``path`` with ``options``, as ``mlpcli train`` does (the same model file);
    see the module docstring. ``path`` may be a pandas DataFrame (samples x columns, the roles found by name as
    in a file; sample ids from a named or text index). ``plan`` (a ``parallel.Plan``): where the ensemble's members train and with how
    many BLAS threads; default ``parallel.member_plan()``, the command's (same model either way)."""
    _check_call(options, plan, progress)
    options.validate()
    ds, notes = load_dataset(path, options, stdin=stdin)
    source = "(in memory)" if isinstance(path, pd.DataFrame) else path
    return train_dataset(ds, options, progress=progress, notes=notes, source=source, plan=plan)


def train_dataset(ds: data.Dataset, options: TrainOptions, progress: Callable[[dict], None] | None = None,
                  notes: list[str] | None = None, source: str = "(in memory)", plan=None,
                  folds_flag: str = "--folds") -> TrainOutcome:
    """Train on an in-memory Dataset exactly as ``mlpcli train`` does on a table. ``plan``: as for ``train``.
    ``folds_flag``: the option that set ``options.folds``, for messages (``tune --refit`` calls it --member-folds)."""
    from .parallel import blas_cap

    _check_call(options, plan, progress)
    if not isinstance(ds, data.Dataset):
        raise ConfigError(f"train_dataset takes a data.Dataset (data.load_dataset), got a {type(ds).__name__}; "
                          "pipeline.train takes a table or a DataFrame")
    options.validate(folds_flag)
    plan = member_plan() if plan is None else plan
    with blas_cap(plan.blas_threads):  # the command's cap (--threads, default 1): the same bits
        outcome = _train_dataset(ds, options, progress, notes, source, plan, folds_flag)
    outcome.model.provenance["threads"] = plan.blas_threads  # what ran: the default and --threads 1 alike
    return outcome


def _train_dataset(ds: data.Dataset, options: TrainOptions, progress, notes, source: str, plan,
                   folds_flag: str) -> TrainOutcome:
    notes = list(notes or []) + ds.notes
    warnings = list(ds.warnings)
    if ds.y is None or ds.task is None:
        raise DataError("the table has no target column; name it with --target")
    table_warnings, later = _table_checks(ds, options)
    warnings += table_warnings
    started = time.perf_counter()
    # the provenance's checksum (a sha256 over the table's numbers: 0.15 s at 8,000 x 5,000 float32) and the table-wide
    # checks, needed at the end only, run on the spare core once training leaves it idle (``fit_model``'s when_idle:
    # the members train in other processes, or the networks here are trained), not beside the split and the
    # preprocessing, which wait for the --log1p decision and use that core themselves
    checksum = Deferred(ds.checksum)
    val_ds = crossfit.validation_dataset(ds, options) if options.val_data else None
    tables = [ds] + ([val_ds] if val_ds is not None else [])
    # what predict and evaluate recognise as training rows (0.08 s at 8,000 x 5,000), over the inputs of the model's
    # preprocessing: from when_idle when it is known then, else beside the summaries below
    early: list[tuple[data.Preprocessor, Deferred, Deferred]] = []

    def when_idle(reference: data.Preprocessor | None) -> None:
        for task in (checksum, *later):
            task.start()
        if reference is not None:
            early.append((reference, Deferred(training_fingerprints, tables, reference),
                          Deferred(_far_values, tables, reference)))
            for task in early[0][1:]:
                task.start()

    fitted = crossfit.fit_model(ds, options, progress=progress, val_ds=val_ds, plan=plan, folds_flag=folds_flag,
                                when_idle=when_idle)
    reference = fitted.model.preprocessor
    known = early and early[0][0] is reference
    seen = early[0][1] if known else beside(training_fingerprints, tables, reference)
    far = early[0][2] if known else beside(_far_values, tables, reference)
    with interrupts.finishing(fitted.stopped):  # trained: a stop now waits for the model to be complete
        if val_ds is not None:  # how --val-data's features were matched to the training table's (align_features)
            notes += [n for n in val_ds.notes if n.startswith("--val-data")]
            warnings += [w for w in val_ds.warnings if w.startswith("--val-data")]
        notes += fitted.notes
        warnings += [w for w in (task() for task in later) if w] + far()
        warnings += fitted.warnings
        model, resolved = fitted.model, fitted.options
        # an interrupted ensemble: the kept members' held-out rows, not the planned folds' (every row)
        summary = fitted.split if fitted.split is not None else summarize_folds(
            ds, fitted.strategy, fitted.scored_rows, len(fitted.members))
        runs = fitted.runs[: len(fitted.members)]
        baseline = _mean_baseline([r.result.baseline for r in runs])
        model.roles = {"target": list(options.target), "group": ds.roles.group if ds.roles else None,
                       "id": ds.roles.id if ds.roles else None, "batch": ds.roles.batch if ds.roles else None,
                       "drop": list(options.drop)}
        config = options.to_dict()
        config["resolved"] = {k: v for k, v in resolved.to_dict().items() if config.get(k) != v}
        model.config = config
        # The model file holds nothing that depends on the clock (no creation time, no seconds), so the same
        # data, options, seed and threads give a byte-identical file; timings are in --history and --json.
        model.history = [{k: v for k, v in row.items() if k != "seconds"} for row in fitted.history]
        model.split = asdict(summary)
        model.baseline = baseline
        best_epochs = [m["best_epoch"] for m in fitted.members]
        model.fit = {"best_epoch": int(np.median(best_epochs)), "epochs_run": max(m["epochs_run"] for m in fitted.members),
                     "stopped_early": all(m["stopped_early"] for m in fitted.members),
                     "interrupted": fitted.interrupted or any(r.result.interrupted for r in fitted.runs),
                     "metric": metrics.main_metric_name(ds.task),
                     "folds": resolved.folds, "strategy": fitted.strategy, "members": fitted.members,
                     "refit_epochs": fitted.refit_epochs, **({"refit": fitted.refit} if fitted.refit else {}),
                     "portfolio": fitted.portfolio,
                     "calibration": fitted.calibration.to_dict() if fitted.calibration else None}
        model.provenance = _provenance(source, ds, checksum())
        decider = model.decider  # the model's rule (``mlpcli.decision``), which also labels the estimate's rows
        # the held-out estimate, cross-fitted (``model_selection.crossed``): no choice was made on the rows it scores
        proba, labels = fitted.estimate_proba, fitted.estimate_labels()
        val_metrics = metrics.compute(ds.task, fitted.scored.y, metrics.as_task_proba(ds.task, proba), ds.classes,
                                      decider.threshold(ds.task), decider.weights(ds.task), predicted=labels)
        # the held-out estimate travels with the model (`mlpcli info`): its scalar metrics
        model.fit["held_out"] = "out-of-fold" if model.is_ensemble or fitted.refit_epochs else "validation"
        model.fit["held_out_crossed"] = fitted.estimate is not None  # cross-fitted (``model_selection.crossed``)
        model.fit["held_out_metrics"] = {k: v for k, v in val_metrics.items()
                                         if v is None or isinstance(v, (int, float, str)) and k != "classes"}
        # each target's (label's) own figures beside the pooled ones: pooled, several targets mix their units
        for part in ("per_target", "per_label", "per_class"):
            if val_metrics.get(part):
                model.fit[f"held_out_{part}"] = [{k: v for k, v in row.items() if v is None or
                                                  isinstance(v, (int, float, str))} for row in val_metrics[part]]
        # the main metric's 95 % interval, resampling patients (the scored rows' groups): what it could be on other
        # patients of the same kind, given these networks
        interval = pooled_estimate(ds.task, fitted.scored.y, [(np.arange(len(proba)), proba)],
                                   len(ds.classes), fitted.scored.groups, seed=options.seed,
                                   predicted=[labels] if labels is not None else None)
        model.fit["held_out_interval"] = {k: v for k, v in interval.to_dict().items() if k != "value"}
        caveat = held_out_caveat(ds.task, fitted.scored.y, ds.classes, fitted.scored.groups)
        warnings += held_out_warnings(ds.task, fitted.scored.y, proba, ds.classes, val_metrics,
                                      model.fit["held_out"], weighted=is_weighted(model.config),
                                      calibrated=fitted.calibration is not None,
                                      converged=any(_settled(m) for m in fitted.members),
                                      pred=labels)
        if caveat:
            notes.append(f"rough held-out metrics: {count_of(val_metrics['n'], model.fit['held_out'] + ' sample')}, "
                         f"and {caveat}")
        try:
            diagnosis = _diagnose(fitted.history, baseline, resolved, model)
        except DataError as exc:  # (``history.diagnose_curves``' CurveError) the model is trained; only its curves
            # cannot be read
            diagnosis = None
            warnings.append(_undiagnosed(fitted.history, exc))
        if diagnosis is not None:
            model.extra["diagnosis"] = diagnosis.to_dict()
        model.training_rows, chance = seen()
        if chance > 0:  # (absent when no two samples share their values: the files of continuous tables unchanged)
            model.extra["training_rows_chance"] = round(chance, 4)
    return TrainOutcome(model=model, fitted=fitted, val_metrics=val_metrics, notes=notes, warnings=warnings,
                        diagnosis=diagnosis, seconds=time.perf_counter() - started, metrics_caveat=caveat,
                        interval=interval)


def _table_checks(ds: data.Dataset, options: TrainOptions) -> tuple[list[str], list[Deferred]]:
    """The table's own warnings before training, as ``cv`` gives them: a label confounded with the batch, a
    multi-label label of one patient, a batch on another scale, missingness that follows the class or batch (with
    --impute); and the checks of a pass over the whole table, to run later (each gives a warning or None: 0/1
    columns among continuous features, a column that holds one value per class, samples of 0 in every feature, zeros
    that stand for missing values; 0.1 s at 8,000 x 5,000, the last up to 0.6 s)."""
    from .data.batch_scales import batch_scale_warning
    from .data.missingness import (binary_among_continuous, empty_rows_warning, label_copies, missingness_warnings,
                                   zeros_as_missing_warning)
    from .model_selection.cross_validation import batch_confounding

    out = [w for w in (batch_confounding(ds, command="train"), batch_scale_warning(ds)) if w]
    out += splits.single_group_labels(ds)
    if options.impute is not None:  # missing values the fills then carry
        out += missingness_warnings(ds)
    return out, [Deferred(label_copies, ds), Deferred(binary_among_continuous, ds), Deferred(empty_rows_warning, ds),
                 Deferred(zeros_as_missing_warning, ds)]


def _far_values(datasets: list[data.Dataset], preprocessor) -> list[str]:
    """The warnings of values far beyond their feature's training values (``data.far_values``) in the training table
    and the --val-data table (``datasets``), by the reference ``preprocessor``'s rule, the one ``predict`` applies."""
    from .data.far_values import far_training_values

    names = ["the training table", "the --val-data table"]
    return [w for w in (far_training_values(d, preprocessor, names[i]) for i, d in enumerate(datasets)) if w]


def training_fingerprints(datasets: list[data.Dataset], preprocessor) -> tuple[np.ndarray, float]:
    """(m,) uint64, sorted and distinct: the ``data.row_fingerprints`` of the rows of ``datasets`` (the training
    table, and the --val-data table) over the reference ``preprocessor``'s kept features, the columns a table to
    predict needs; a model keeps them (``Model.training_rows``). With them, ``chance_share`` of those rows: how
    often a new sample's values are a training row's by chance alone (a few features of few values; 0 from
    MIN_FEATURES features on, where identical rows are taken for copies, as at training)."""
    kept = preprocessor.kept_index_
    every = [len(kept) == d.n_features and np.array_equal(kept, np.arange(d.n_features)) for d in datasets]
    rows = np.concatenate([d.row_fingerprints() if every[i] else data.copies.kept_fingerprints(d.X, kept)
                           for i, d in enumerate(datasets)])
    if len(kept) >= data.copies.MIN_FEATURES:  # rows that repeat are copies there (``twin_rows`` warns of them),
        return np.unique(rows), 0.0  # not chance: a new table's copy of a training row is that row
    grouped = all(d.groups is not None for d in datasets)
    groups = np.concatenate([np.asarray(d.groups, dtype=str) for d in datasets]) if grouped else None
    return np.unique(rows), data.copies.chance_share(rows, groups)


def refit_tuned(ds: data.Dataset, options: TrainOptions, result, source: str = "(in memory)",
                progress: Callable[[dict], None] | None = None, plan=None) -> TrainOutcome:
    """``tune --refit``: train what ``train`` ships with the tuning's best setting on all of ``ds`` (``plan``: as
    for ``train``); the tuning's summary is kept in ``model.extra["tuning"]`` (``tuning.refit_record``)."""
    from .model_selection.tuning import best_options, refit_record

    chosen = best_options(options, result)
    outcome = train_dataset(ds, chosen, progress=progress, source=source, folds_flag="--member-folds", plan=plan)
    outcome.model.extra["tuning"] = refit_record(result)
    members = len(outcome.model.members)
    if "val_size" in result.best.setting and members > 1:  # member-folds auto became an ensemble here
        outcome.warnings.append(
            f"the chosen val-size={chosen.val_size:g} has no effect on the model --refit trained: --member-folds "
            f"{options.folds} trained {members} cross-fitted members, each early-stopped on its own fold (the tuning "
            "scored one network per fold on a val-size hold-out); --member-folds 1 ships one network with it")
    return outcome


# The rarest class's share below which a model that predicts one class for every sample is told of
# --class-weight: 33 positives in 2,000 (1.65 %) gave balanced accuracy 0.500 and F1 0 by default, 0.627 with it.
IMBALANCED_SHARE = 0.2


def held_out_warnings(task: str, y: np.ndarray, proba: np.ndarray, classes: list, val_metrics: dict, held_out: str,
                      weighted: bool = False, calibrated: bool = True, converged: bool = True,
                      pred: np.ndarray | None = None) -> list[str]:
    """What the held-out predictions (``y`` class indices (n,), ``proba`` as ``Model.predict_output`` gives them)
    show that the metrics alone do not say, for a binary or multiclass model: that it predicts one class for every
    sample (2 % positives: balanced accuracy 0.500, F1 0, no word of why), and that its probabilities are worse than
    always predicting the class shares (a log loss above the prior's: 60 samples of 20,000 genes gave 2.01 against
    1.10, uncalibrated). ``held_out``: "out-of-fold" or "validation"; ``weighted``: trained with class weights,
    whose probabilities are shifted towards the rare classes on purpose (no log-loss warning then); ``converged``:
    some network stopped early, on its validation loss (a run cut short by --epochs, whose network has barely
    moved from its random start, is the learning-curve diagnosis's to judge, not these warnings')."""
    if task not in ("binary", "multiclass") or not converged:
        return []
    y = np.asarray(y).reshape(-1).astype(np.int64)
    counts = np.bincount(y, minlength=len(classes))
    present = np.flatnonzero(counts)
    if present.size < 2 or len(y) == 0:
        return []
    out = []
    ba = val_metrics.get("balanced_accuracy")
    ba = f"balanced accuracy {ba:.3f}" if ba is not None and np.isfinite(ba) else "balanced accuracy undefined"
    # the labels the model gives (its decision rule; None: the most probable class)
    pred = metrics.predicted_class(task, np.asarray(proba)) if pred is None else np.asarray(pred)
    if np.unique(pred).size == 1:
        rarest = present[np.argmin(counts[present])]
        auc = val_metrics.get("roc_auc" if task == "binary" else "roc_auc_ovr")
        ranks = (f", although its ROC AUC is {auc:.3f}: it ranks the samples better than it labels them"
                 if auc is not None and np.isfinite(auc) and auc >= 0.6 else "")
        share = counts[rarest] / len(y)
        if share < IMBALANCED_SHARE and not weighted:
            remedy = (f"the classes are imbalanced ({counts[rarest]:,} of {count_of(len(y), 'sample')} "
                      f"{agreeing(int(counts[rarest]), 'is', 'are')} {str(classes[rarest])!r})"
                      " — train with --decision balanced or --class-weight balanced, or "
                      # --threshold is a binary (and multi-label) model's: predict refuses it for a multiclass one
                      + ("choose a --threshold for predict and evaluate" if task == "binary" else
                         "pass --decision balanced to predict and evaluate"))
        else:
            remedy = "the features separate the classes too little for this model at this size"
        out.append(f"the model predicts {str(classes[pred[0]])!r} for every one of the "
                   f"{count_of(len(y), held_out + ' sample')} "
                   f"({ba}{ranks}); {remedy}")
    logloss = val_metrics.get("log_loss")
    if not weighted and logloss is not None and np.isfinite(logloss):
        shares = counts[present] / len(y)
        prior = float(-np.sum(shares * np.log(shares)))  # always predicting the held-out rows' own class shares
        if logloss > prior:
            why = "" if calibrated else ", and it is not calibrated (see the notes)"
            out.append(f"the {held_out} log loss {logloss:.3f} is worse than always predicting the class shares "
                       f"({prior:.3f}): the model's probabilities are overconfident{why}; do not read them as the chances "
                       "of each class")
    return out


def _settled(member: dict) -> bool:
    """Whether a member's network trained to where its held-out figures are its own (``held_out_warnings``'
    ``converged``): stopped early on its validation loss, or an L-BFGS run that converged — which never stops early,
    so a softmax regression by L-BFGS (often the one --hidden auto ships) with an out-of-fold log loss of 17 against
    the class shares' 0.69 went without a word."""
    return bool(member.get("stopped_early") or member.get("converged"))


def _mean_baseline(baselines: list[dict]) -> dict:
    keys = [k for k in ("train_loss", "val_loss", "val_metric") if all(k in b for b in baselines)]
    return {k: float(np.mean([b[k] for b in baselines])) for k in keys}


def _undiagnosed(history: list[dict], exc: Exception) -> str:
    """The warning for curves the diagnosis cannot read: which members' validation loss was never finite — their
    held-out rows overflow the network (a feature value far beyond the others'), which no training fixes."""
    members: dict[int, bool] = {}
    for row in history:
        k = int(row.get("member", 1))
        members[k] = members.get(k, False) or math.isfinite(float(row.get("val_loss", math.nan)))
    never = [k for k, finite in members.items() if not finite]
    if not never:
        return f"learning curves not diagnosed: {exc}"
    who = (f"member{'s' * (len(never) > 1)} {', '.join(map(str, never))}" if len(members) > 1 else "the network")
    return (f"learning curves not diagnosed: the validation loss of {who} was not finite at any epoch — its held-out "
            "rows overflow the network, most often a feature value far beyond the others' (e.g. 1e25 among values "
            "near 1: check the table's largest values; predict refuses such rows, naming them); the model is "
            "trained, its out-of-fold figures rest on those rows' outputs")


def _diagnose(history: list[dict], baseline: dict, options: TrainOptions, model: Model | None = None):
    """The learning-curve label of the run: one network's curves, or the members' mean curves with their
    spread as evidence of noise (``history.curves_from_history``); with the ``model`` (its portfolio and
    options), what ``diagnose MODEL`` reads too: the larger network --hidden auto tried, the --val-data table."""
    from .history import capacity_tried, curves_from_history, diagnose_curves

    if not history or "val_loss" not in history[0]:
        return None
    curves = curves_from_history(history, "loss", source="training")
    if len(curves.val) < 3:
        return None
    curves.baseline = baseline.get("val_loss")
    curves.stochastic = options.dropout > 0 or options.augment_noise > 0
    if model is not None:
        curves.capacity_tried = capacity_tried(model.fit, model.config)
        curves.validation_table = options.val_data
        # a network without hidden layers is advised as `diagnose MODEL` advises it (``history.read_curves``): no
        # dropout, no --augment-noise auto (it adds no noise there), nothing smaller; and its dropout never dropped
        curves.linear = bool(model.members) and all(not list(m.network.hidden) for m in model.members)
        if curves.linear:
            curves.stochastic = options.augment_noise > 0
        noise = options.augment_noise  # the chosen candidate's, resolved
        curves.augment_noise = float(noise) if isinstance(noise, (int, float)) and noise > 0 else 0.0
        # the patient column the split kept whole: the advice does not ask for the grouped split the run had
        group = (model.roles or {}).get("group") if isinstance(model.roles, dict) else None
        curves.grouped_by = group if isinstance(group, str) and group else None
        curves.hidden_auto = (model.config or {}).get("hidden") == "auto"
    return diagnose_curves(curves)


def _provenance(path, ds: data.Dataset, checksum: str) -> dict:
    """What the model was trained on (``checksum``: ``Dataset.checksum`` of the table) and with which versions.
    The file by its name alone: the same data staged into another directory (a batch job's scratch space)
    gives the same model file, byte for byte; the checksum and shape say which data it was."""
    import pandas

    from .fileio import descriptor_of

    name = str(path)
    if descriptor_of(name) is not None or os.path.normpath(name) == "/dev/stdin":
        # a descriptor's name (<(zcat x.csv.gz) is /dev/fd/63): its number is the shell's choice, not the data's
        file = "(a pipe or descriptor)"
    else:
        file = name if name in ("-", "(in memory)") else os.path.basename(os.path.normpath(name))
    kind = data.table_kind(name) if file not in ("(in memory)", "(a pipe or descriptor)") else None
    return {
        "data_file": file,
        **({"data_kind": kind} if kind else {}),  # text, parquet, h5ad or 10x: what predict compares a cohort with
        # whether the cells' values were raw counts: predict warns of a matrix of the other kind (a layer or .X
        # holding log-normalised values where the model learned counts, or the reverse)
        **({"counts": data.counts_like(ds.X)} if kind in ("h5ad", "10x") else {}),
        "data_sha256": checksum,
        # the patient and batch columns the splits followed, which data_sha256 (values and names) leaves out: 60
        # samples given other patients changed every fold and the figures under the same data checksum
        **({"roles_sha256": roles} if (roles := roles_digest(ds)) is not None else {}),
        "n_samples": int(ds.n_samples),
        "n_features": int(ds.n_features),
        "versions": {"mlpcli": __version__, "mlpcli source": source_digest(), "numpy": np.__version__,
                     "pandas": pandas.__version__, "scikit-learn": _version("scikit-learn"), "scipy": _version("scipy"),
                     "python": platform.python_version(),
                     # the arithmetic's own build: another CPU's kernels round differently (balanced accuracy 0.9078
                     # against 0.9088, the temperature 0.6605 against 0.6567 with OpenBLAS's Haswell kernels)
                     "blas": blas_build() or "unknown", "machine": platform.machine() or "unknown"},
    }


def run_provenance(path, ds: data.Dataset, options: TrainOptions, threads: int | None) -> dict:
    """What a `cv` or `tune` run's figures came from, for its JSON: the data (file name, checksums, shape), the
    options given that differ from the defaults (``config_file.changed_options``, by train's names: cv's and tune's
    --member-folds is ``folds``; the seed among them when not 0), the BLAS threads per fit and the versions, as a
    model file records them."""
    from .config_file import changed_options

    return {**_provenance(path, ds, ds.checksum()), "options": changed_options(options.to_dict()),
            "seed": options.seed, "threads": threads}


def roles_digest(ds: data.Dataset) -> str | None:
    """sha256 hex of the table's patient (group) and batch columns as read, in row order (None: it has neither)."""
    import hashlib

    if ds.groups is None and ds.batches is None:
        return None
    h = hashlib.sha256()
    for name, values in (("group", ds.groups), ("batch", ds.batches)):
        h.update(f"{name};".encode())
        if values is not None:
            h.update(("\0".join(map(str, values)) + "\0").encode())
    return h.hexdigest()


@functools.cache
def _version(package: str) -> str:
    """An installed package's version (its metadata read once: 7 ms a call)."""
    from importlib.metadata import version

    return version(package)


def source_digest() -> str:
    """The first 12 hex digits of the SHA-256 of mlpcli's own source files (their paths and bytes, in path order):
    "mlpcli 0.1.0" named every state of the code, while changes that move the figures landed under it. Hashed
    again only when a file's size or modification time changed (a small ``train`` spent 18 ms a run on it)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent
    files = tuple((path, (st := path.stat()).st_mtime_ns, st.st_size) for path in sorted(root.rglob("*.py")))
    return _digest_of(root, files)


@functools.lru_cache(maxsize=4)
def _digest_of(root, files: tuple) -> str:
    import hashlib

    h = hashlib.sha256()
    for path, _, _ in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _numpy_blas() -> dict | None:
    """threadpoolctl's record of NumPy's BLAS (a scikit-learn dependency), or None."""
    from threadpoolctl import threadpool_info

    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    # a wheel's own copy sits in numpy.libs (scipy's in scipy.libs); elsewhere (conda) the one library there is
    own = [i for i in libs if os.path.basename(os.path.dirname(str(i.get("filepath", "")))).startswith("numpy")] or libs
    return own[0] if own else None


@functools.cache
def blas_build() -> str | None:
    """NumPy's BLAS as it runs: library, version and the CPU kernels it chose ("openblas 0.3.31 SkylakeX"), from
    threadpoolctl (a scikit-learn dependency); None when it cannot tell. The thread count is recorded apart."""
    info = _numpy_blas()
    if info is None:
        return None
    return " ".join(str(info[k]) for k in ("internal_api", "version", "architecture") if info.get(k))
