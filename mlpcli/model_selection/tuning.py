"""Hyperparameter tuning by grouped cross-validation: never on a test set.

    every grid point ─cross_validation.fit_and_score on each fold─▶ mean ± SD ─▶ ranked
    nested=True: an outer grouped CV whose every training part is tuned by its own inner CV; the
                 winner is refitted on the outer training part and scored on the outer test fold

A setting whose training diverges (the loss blows up: a learning rate far too large) in any of its folds
is recorded as failed, with the reason, and ranked last without a score; the others go on. Only a grid
where every setting fails is an error.

Each grid point is scored as ``train --folds 1`` would train it (one network, early-stopped on a
grouped hold-out of the fold's training part): a K-member ensemble per point and fold would cost K
times as much for the same ranking. The model ``--refit`` ships is ``train``'s, with the winner's
setting (a cross-fitted ensemble by default). Repeat r reshuffles the folds and seeds the networks
with ``seed + r``; all grid points of a repeat share that seed, so they are compared on equal terms.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import scipy.sparse as sp

from .. import data, metrics
from ..data.conventions import IMPUTE_METHODS
from ..decision import DECIDED
from ..data.preprocess_messages import IMPUTE_HINT
from ..config import AUTO, AUTO_WEIGHT_DECAY, AUTO_WEIGHT_DECAY_REGRESSION, ONLY_WITH, OPTIMIZER_ONLY, TrainOptions, \
    require_options
from ..errors import ConfigError, DataError, OptionError, TrainingError
from ..parallel import Plan, fits_plan, run
from .fitting import fewer_at_once_note, worker_copy_bytes
from .cross_validation import (FoldScore, fold_warnings, batch_confounding, check_cv_options, check_fits_memory,
                               finite, fit_fold, fold_name, mean_sd, with_seed)
from .grid import (apply_setting, check_settings, choose_points, format_setting, grid_key, grid_size,
                   hidden_layers_note, option_name, value_text)
from .splits import Fold, check_training_parts, kfold, require_dataset

__all__ = ["PointResult", "OuterFold", "TuneResult", "FailedFit", "tune", "best_options", "SCORED_AS", "chosen_among", "rank",
           "selection_note", "grid_notes", "tie_note", "refit_record", "setting_text"]

# What each grid point is scored as (see the module docstring).
SCORED_AS = ("one network per fold (as train --folds 1: early stopping on a grouped hold-out of the fold's training "
             "part)")


# ── tuning ───────────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class PointResult:
    index: int  # position in the full grid
    setting: dict
    scores: list[float]  # main metric per (repeat, fold)
    mean: float | None
    sd: float | None
    rank: int = 0
    seconds: float = 0.0
    epochs: list[int | None] = field(default_factory=list)  # best epoch per fold (None: the fold failed)
    epoch_caps: list[int] = field(default_factory=list)  # --epochs as resolved per fold ("auto" sizes it)
    failed: str | None = None  # why the setting has no score (its training diverged in a fold), else None
    # binary / multiclass: the decision rule each fold's labels (and score) followed — decision=auto chooses per
    # fold — None for a failed fold or a task without one
    decisions: list[str | None] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rank": self.rank, "grid_index": self.index, "setting": self.setting, "mean": self.mean,
                "sd": self.sd, "scores": [finite(s) for s in self.scores], "best_epochs": self.epochs,
                "decisions": self.decisions, "seconds": self.seconds, "failed": self.failed}


@dataclass
class FailedFit:
    """A fit of the tuning whose training diverged (``TrainingError``): what ``_fit_and_score`` returns in
    place of a FoldScore, so that one setting's blow-up does not end the whole tuning."""

    label: tuple
    reason: str
    seconds: float = 0.0


@dataclass
class OuterFold:
    fold: int  # 0-based
    train_rows: np.ndarray
    test_rows: np.ndarray
    chosen: dict | None  # the setting the inner tuning picked (None: every setting failed there)
    inner_mean: float | None
    inner_sd: float | None
    score: float  # main metric on the outer test fold (NaN when the fold failed)
    metrics: dict
    inner: list[PointResult]
    failed: str | None = None  # why the outer fold has no score, else None

    def to_dict(self) -> dict:
        return {"fold": self.fold + 1, "n_train": int(len(self.train_rows)), "n_test": int(len(self.test_rows)),
                "chosen": self.chosen, "inner_mean": self.inner_mean, "inner_sd": self.inner_sd,
                "score": finite(self.score), "metrics": self.metrics, "failed": self.failed,
                "inner": [p.to_dict() for p in self.inner]}


@dataclass
class TuneResult:
    task: str
    metric: str
    higher_is_better: bool
    space: dict[str, list]
    grid_size: int
    strategy: str
    folds: int
    repeats: int
    points: list[PointResult]  # ranked, best first
    nested: list[OuterFold] | None = None
    nested_strategy: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    options: TrainOptions | None = None  # the run's options the settings were applied to (what is moot in them)

    @property
    def best(self) -> PointResult:
        return self.points[0]

    def nested_summary(self) -> dict | None:
        """Mean and SD of the outer test scores; ``scored``: the outer folds with a score (a fold whose
        every setting, or whose chosen setting's refit, diverged has none)."""
        if self.nested is None:
            return None
        mean, sd = mean_sd(o.score for o in self.nested)
        return {"mean": mean, "sd": sd, "folds": len(self.nested),
                "scored": sum(o.failed is None and finite(o.score) is not None for o in self.nested)}

    def to_dict(self) -> dict:
        return {
            "task": self.task, "metric": self.metric, "higher_is_better": self.higher_is_better,
            "grid": self.space, "grid_size": self.grid_size, "evaluated": len(self.points),
            "strategy": self.strategy, "folds": self.folds, "repeats": self.repeats,
            "best": self.best.to_dict(), "points": [p.to_dict() for p in self.points],
            "nested": None if self.nested is None else {
                "strategy": self.nested_strategy, **self.nested_summary(),
                "outer_folds": [o.to_dict() for o in self.nested]},
            "seconds": self.seconds, "notes": self.notes, "warnings": self.warnings,
        }

    def results_frame(self, one_type: bool = False):
        """The ranked points as a DataFrame, one row per point; with nested CV also one row per
        (outer fold, point) of the inner tunings, with the outer test score of the chosen one. Grid values as
        --grid writes them where a Python value has no cell (no hidden layer, an unset option: ``none``).
        ``one_type``: a column of one type for every option (as ``--results`` writes them): an option whose grid
        values are all numbers (or all true/false) keeps them, any other is text (``auto``, ``0.01``)."""
        import pandas as pd

        # no hidden layer ([]) and an unset option (top-var=none) as empty cells read back as NaN (and turned the
        # other values into floats, 4 -> 4.0); "auto" or "none" beside numbers failed to write as parquet, after
        # every fit (a pyarrow error, exit 1)
        as_text = {k for k, values in self.space.items() if one_type and not (
            all(isinstance(v, bool) for v in values)
            or all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values))}

        def row(p: PointResult, **extra) -> dict:
            r = {**extra, "rank": p.rank}
            for k in self.space:
                v = p.setting[k]
                r[grid_key(k)] = _cell_text(v) if k in as_text else value_text(v) if isinstance(v, list) or v is None \
                    else v
            r[f"mean_{self.metric}"] = p.mean
            r[f"sd_{self.metric}"] = p.sd
            for i, s in enumerate(p.scores):
                r[f"score_{i + 1}"] = finite(s)
            r["seconds"] = round(p.seconds, 3)
            r["failed"] = p.failed  # empty unless the setting's training diverged
            return r

        from ..predict.output import EXACT_FLOATS

        if self.nested is None:
            rows = [row(p) for p in self.points]
        else:  # the tuning on all data first (scope "all"), then each outer fold's inner tuning
            rows = [{**row(p, scope="all"), "chosen": p.rank == 1, f"outer_{self.metric}": None} for p in self.points]
            for o in self.nested:
                for p in o.inner:
                    chosen = p.setting == o.chosen
                    rows.append({**row(p, scope=f"outer fold {o.fold + 1}"), "chosen": chosen,
                                 f"outer_{self.metric}": finite(o.score) if chosen else None})
        frame = pd.DataFrame(rows)
        frame.attrs[EXACT_FLOATS] = True  # a setting's value written as given (0.0012345678 read 0.00123457)
        return frame


def _cell_text(v) -> str:
    """A grid value in a text column of --results: as --grid writes it, a number in full (0.00012345678)."""
    return repr(float(v)) if isinstance(v, float) else value_text(v)


def rank(points: list[PointResult], higher: bool) -> list[PointResult]:
    """Best first: by mean score, then smaller SD, then grid order; undefined scores last. Means (and SDs) equal to
    ``tie_note``'s tolerance are equal here too (``_level``): the same fold scores in another order differ in the
    mean's last bit, which put the later setting first, against the grid order the note then gave as the reason."""
    def key(p: PointResult):
        if p.mean is None:
            return (1, 0.0, 0.0, p.index)
        return (0, _level(-p.mean if higher else p.mean), _level(p.sd or 0.0), p.index)

    ranked = sorted(points, key=key)
    for i, p in enumerate(ranked, 1):
        p.rank = i
    return ranked


def _fit_and_score(ds: data.Dataset, train_rows: np.ndarray, test_rows: np.ndarray, options: TrainOptions,
                   label: tuple, where: str) -> FoldScore | FailedFit:
    """One fit of the tuning (``cross_validation.fit_fold``); a diverged training comes back as a FailedFit rather than
    ending the tuning, and an error of the fold's data names the fold (``where``). A task for ``parallel.run``."""
    started = time.perf_counter()
    try:
        return fit_fold(where, ds, train_rows, test_rows, options, label)
    except TrainingError as exc:  # counted over the setting's folds ("in 2 of 5 folds"): without fit_fold's fold name
        return FailedFit(label=tuple(label), reason=str(exc).removeprefix(f"{where}: "),
                         seconds=time.perf_counter() - started)


def _where(f: Fold, repeats: int, outer: Fold | None = None) -> str:
    """A fit's fold as the tables number them (1-based)."""
    text = fold_name(f, repeats > 1)
    return text if outer is None else f"outer fold {outer.fold + 1} (--nested), inner {text}"


def _collect(points: list[tuple[int, dict]], scores: list[FoldScore | FailedFit], per_point: int,
             higher: bool) -> list[PointResult]:
    out = []
    for j, (index, setting) in enumerate(points):
        chunk = scores[j * per_point : (j + 1) * per_point]
        failed = [s for s in chunk if isinstance(s, FailedFit)]
        fits = [s if isinstance(s, FoldScore) else None for s in chunk]
        # a setting that diverged in one fold has no honest mean: the folds it survived would flatter it
        mean, sd = (None, None) if failed else mean_sd(s.score for s in chunk)
        out.append(PointResult(
            index=index, setting=setting, scores=[s.score if s else float("nan") for s in fits], mean=mean, sd=sd,
            seconds=sum(s.seconds for s in chunk), epochs=[s.best_epoch if s else None for s in fits],
            epoch_caps=[s.epoch_cap if s else 0 for s in fits],
            decisions=[s.decision.rule if s and s.decision is not None else None for s in fits],
            failed=f"{failed[0].reason} (in {len(failed)} of {len(chunk)} folds)" if failed else None))
    return rank(out, higher)


# The options ``fitting.build_loss`` reads: what _check_points checks each distinct combination of.
_LOSS_OPTIONS = ("loss", "class_weight", "pos_weight", "focal_gamma", "focal_alpha", "label_smoothing")


def _check_points(ds: data.Dataset, options: TrainOptions, points: list[tuple[int, dict]]
                  ) -> tuple[list[tuple[int, dict]], list[str]]:
    """Before any fit: every setting's loss and class weights must fit the data (``--loss mse`` for a class
    target, ``class-weight`` naming an unknown class, ``pos-weight`` without bce). Such a value failed only when
    its setting's first fit ran, after all the fits before it, and named its flag rather than --grid.

    Returns the settings that can train and notes on those left out: a grid is every combination of its values,
    and a combination that cannot train while each of its values trains in another (focal with balanced class
    weights on multi-label targets) is left out, said, rather than stopping the others. A value that trains in no
    setting, or the command line's own option at fault, is an error."""
    from .fitting import build_loss

    def problem(opts: TrainOptions) -> tuple[str, type] | None:  # (the message, its error's class)
        try:
            build_loss(opts, ds, ds.y)
        except (ConfigError, DataError) as exc:  # an option that does not apply: a usage error, as in train
            return str(exc), OptionError if isinstance(exc, OptionError) else ConfigError
        return None

    _check_preprocessing(ds, options, points)
    _check_decisions(ds, points)
    verdicts: dict[tuple, tuple[str, type] | None] = {}  # per distinct loss: a grid of 10,000 points has a few
    kept, failing = [], []
    for point in points:
        setting = point[1]
        loss_options = tuple((k, repr(setting[k])) for k in _LOSS_OPTIONS if k in setting)
        if loss_options not in verdicts:
            verdicts[loss_options] = problem(apply_setting(options, setting))
        why = verdicts[loss_options]
        if why is None:
            kept.append(point)
            continue
        if why == problem(options):  # the command line's own option, whatever the grid says
            raise why[1](why[0])
        failing.append((point, why))
    # a value no setting can train with (a class weight naming an unknown class, loss=mse for classes) is an error;
    # a combination of values that each train elsewhere (focal beside balanced class weights) is left out, said
    working = {(k, repr(v)) for _, setting in kept for k, v in setting.items()}
    left_out = []
    for (_, setting), (message, error) in failing:
        if not kept or not all((k, repr(v)) in working for k, v in setting.items()):
            raise error(f"--grid: the setting {format_setting(setting)} does not fit the data: {message}")
        left_out.append(f"{format_setting(setting)} ({message})")
    notes = []
    if left_out:
        shown = "; ".join(left_out[:3]) + (f"; and {len(left_out) - 3} more" if len(left_out) > 3 else "")
        notes.append(f"--grid: {len(left_out)} of the {len(points)} settings cannot train on this data and are left "
                     f"out: {shown}")
    return kept, notes


def _check_decisions(ds: data.Dataset, points: list[tuple[int, dict]]) -> None:
    """Before any fit: ``decision=argmax|balanced`` in the grid needs classes or labels to decide between (a
    multi-label target's labels each, as ``--decision`` does). On a regression target such a setting failed when its
    first fit came, after every fit before it, naming ``--decision``, an option the user had not given."""
    if ds.task in DECIDED:
        return
    for _, setting in points:
        if setting.get("decision", "auto") != "auto":
            raise OptionError(f"--grid: the setting {format_setting(setting)} does not fit the data: a decision rule "
                              f"chooses between classes or labels; this target is {ds.task} (leave decision out of "
                              "--grid)")


def _check_preprocessing(ds: data.Dataset, options: TrainOptions, points: list[tuple[int, dict]]) -> None:
    """Before any fit: a setting with ``log1p=true`` on a table with negative values, or without ``impute`` on one
    with missing values, cannot train. Such a setting failed in its first fold, after every fit before it, as
    "fold 1: ... drop --log1p" (or "pass --impute") about options the grid had set."""
    from ..data.preprocess_messages import negative_message, missing_message

    missing = ds.missing is not None and bool(np.any(ds.missing))
    negative_cache: list = []

    def negative() -> tuple[np.ndarray, np.ndarray] | None:  # (columns with a negative value, their minima)
        if not negative_cache:
            X = ds.X
            if sp.issparse(X):
                mins = np.asarray(X.min(axis=0).todense()).ravel()
            elif isinstance(X, np.ndarray):
                mins = np.fmin.reduce(X, axis=0) if X.shape[0] else np.zeros(X.shape[1])  # NaN ignored
            else:  # a view of another table's rows: the fold's preprocessing checks it
                mins = None
            negative_cache.append(None if mins is None else (mins < 0, mins))
        return negative_cache[0]

    def problem(opts: TrainOptions) -> tuple[str, str] | None:  # (the message, the option at fault)
        if opts.impute is None and missing:
            return missing_message(ds.feature_names, ds.missing), "impute"
        if opts.log1p is True:
            found = negative()
            if found is not None and found[0].any():
                where, mins = found
                return negative_message(ds.feature_names, where, float(mins[np.flatnonzero(where)[0]])), "log1p"
        return None

    seen = set()
    for _, setting in points:
        combo = (setting.get("impute", options.impute), setting.get("log1p", options.log1p))
        if combo in seen:
            continue
        seen.add(combo)
        why = problem(apply_setting(options, setting))
        if why is None:
            continue
        message, key = why
        if key not in setting:  # the command line's own option (--log1p, no --impute), as train says it
            raise DataError(message)
        message = message.replace(f"pass --impute {IMPUTE_HINT}", f"give impute {', '.join(IMPUTE_METHODS[:-1])} or "
                                  f"{IMPUTE_METHODS[-1]} in --grid (min for values below a detection limit),") \
            .replace("drop --log1p", "drop log1p=true from --grid")
        raise ConfigError(f"--grid: the setting {format_setting(setting)} does not fit the data: {message}")


def _failed_note(points: list[PointResult]) -> str | None:
    """One note naming the settings that failed (ranked last, without a score), with the first one's reason."""
    failed = [p for p in points if p.failed]
    if not failed:
        return None
    first = f"{format_setting(failed[0].setting)}: {failed[0].failed}"
    if len(failed) == 1:
        return f"1 of {len(points)} settings failed and is ranked last, without a score: {first}"
    shown = "; ".join(format_setting(p.setting) for p in failed[:5]) + ("; …" if len(failed) > 5 else "")
    return (f"{len(failed)} of {len(points)} settings failed and are ranked last, without a score ({shown}); "
            f"the first, {first}")


def _moot(setting: dict, base: TrainOptions | None = None) -> list[str]:
    """The options of ``setting`` that have no effect under its other values and the run's own options ``base``
    (``config.ONLY_WITH``: momentum under optimizer=adam, dropout under hidden=none, scaling under
    standardize=false). ``base`` matters: judged on the defaults, ``--optimizer sgd --grid momentum=0,0.9`` read
    momentum as adamw's moot option and the two settings as one model."""
    try:
        options = replace(base if base is not None else TrainOptions(), **setting)
    except (TypeError, ValueError):  # not an options dict: nothing known to be moot
        return []
    return [k for k in setting if k in ONLY_WITH and not ONLY_WITH[k].applies(options)]


def _without_effect(setting: dict, base: TrainOptions | None = None) -> list[str]:
    """``_moot`` less the values that ask for nothing where they have no effect (dropout=0, weight_decay=auto)."""
    return [k for k in _moot(setting, base) if not ONLY_WITH[k].is_inert(setting[k])]


def _moot_reason(key: str, setting: dict, base: TrainOptions | None) -> str:
    """Why option ``key`` has no effect in ``setting`` (applied to ``base``): "momentum applies to optimizer=sgd only"."""
    if key in OPTIMIZER_ONLY:
        return f"{option_name(key)} applies to optimizer={' and '.join(OPTIMIZER_ONLY[key])} only"
    judged = replace(base if base is not None else TrainOptions(), **setting)
    return f"{option_name(key)} {ONLY_WITH[key].why([judged], '--member-folds').split(';')[0]}"


def setting_text(setting: dict, base: TrainOptions | None = None) -> str:
    """``format_setting`` of what ``setting`` trains (applied to ``base``): the values it gives that have no effect
    under its others said as such, "optimizer=lbfgs lr=1e-05 (dropout=0.3: no effect there)"."""
    moot = set(_without_effect(setting, base))
    text = format_setting({k: v for k, v in setting.items() if k not in moot})
    if moot:
        text += f" ({format_setting({k: v for k, v in setting.items() if k in moot})}: no effect there)"
    return text


def _mixed_units_warning(ds: data.Dataset) -> str | None:
    """Several regression targets are ranked by their pooled RMSE, in their own units: a target whose values
    spread 100 times wider decides the ranking alone (a grid's best moved from hidden=8 to hidden=none when one
    target's units were divided by 1,000), where ``train --hidden auto`` chooses in units of each target's SD.
    A warning naming the targets' spreads when they differ by more than 10 times; None else."""
    if ds.task != "regression" or ds.y is None or np.ndim(ds.y) < 2 or np.shape(ds.y)[1] < 2:
        return None
    sd = np.asarray(ds.y, dtype=np.float64).std(axis=0)
    positive = sd[sd > 0]
    if len(positive) < 2 or positive.max() <= 10 * positive.min():
        return None
    names = list(ds.target_names or ds.classes or [f"y{j}" for j in range(len(sd))])
    spreads = ", ".join(f"{n!r} {v:.3g}" for n, v in zip(names, sd))
    return (f"the ranking is by the RMSE pooled over the {len(sd)} targets in their own units, whose SDs differ more "
            f"than 10 times ({spreads}): the widest decides it; standardise the targets (or tune each alone) for a "
            "choice every target has a say in")


def _level(value: float) -> float:
    """``value`` to 9 significant digits (0 below 1e-12): scores that ``math.isclose(rel_tol=1e-9, abs_tol=1e-12)``
    calls equal, rounding apart, sort as equal."""
    return 0.0 if abs(value) < 1e-12 else float(f"{value:.9g}")


def _model_key(setting: dict, base: TrainOptions | None = None, task: str | None = None) -> tuple:
    """What a setting trains: its values without those that have no effect under its others and ``base`` (``_moot``:
    ``optimizer=adam momentum=0.5`` and ``optimizer=adam momentum=0.9`` train the same networks, as do
    ``hidden=none dropout=0`` and ``hidden=none dropout=0.3``), and "auto" values the ``task`` alone resolves as
    the value they resolve to (``weight_decay=auto`` and ``weight_decay=0.01`` train the same regression)."""
    moot = set(_moot(setting, base))
    return tuple((k, repr(_resolved(k, v, task))) for k, v in setting.items() if k not in moot)


def _resolved(key: str, value, task: str | None):
    """``value`` of option ``key`` as training resolves it, where the task alone decides (else as given)."""
    if key == "weight_decay" and value == AUTO and task is not None:
        return float(AUTO_WEIGHT_DECAY_REGRESSION if task == "regression" else AUTO_WEIGHT_DECAY)
    return value


def chosen_among(points: list[PointResult], base: TrainOptions | None = None, task: str | None = None) -> int:
    """How many distinct models with a score the best was chosen from: above 1, its CV score is a maximum over
    them. Settings that differ only in an option that has no effect under their others (and the run's options
    ``base``: ``TuneResult.options``) or in an "auto" the ``task`` resolves to the other's value
    (``TuneResult.task``) are one model (counted once)."""
    return len({_model_key(p.setting, base, task) for p in points if p.mean is not None})


def grid_notes(points: list[tuple[int, dict]], base: TrainOptions | None = None, task: str | None = None
               ) -> list[str]:
    """What the grid's settings do not tune, said before the ranking is read as a choice: settings that train
    the same model as another (an option their optimizer ignores: ``optimizer=adam,sgd; momentum=0.5,0.9`` ran
    adam twice, two rows of one score; ``weight_decay=auto,0.01`` for a regression), and a grid of one setting
    (nothing is chosen: its score is a plain CV estimate)."""
    notes = []
    same: dict[tuple, list[dict]] = {}
    for _, setting in points:
        same.setdefault(_model_key(setting, base, task), []).append(setting)
    repeated = [group for group in same.values() if len(group) > 1]
    if repeated:
        ignored = sorted({k for group in repeated for k in _moot(group[0], base)})
        # options whose "auto" resolves, for this task, to another setting's value
        ignored += sorted({k for group in repeated for setting in group for k, v in setting.items()
                           if k not in ignored and _resolved(k, v, task) is not v})

        def why(k: str) -> str:
            if k == "weight_decay" and k not in _moot(repeated[0][0], base):
                return (f"{option_name(k)}=auto is {value_text(_resolved(k, AUTO, task))} for "
                        f"{'a regression' if task == 'regression' else 'a classifier'}")
            return _moot_reason(k, next(g[0] for g in repeated if k in _moot(g[0], base)), base)

        first = repeated[0]
        n = sum(len(group) - 1 for group in repeated)
        applies = "; ".join(why(k) for k in ignored)
        notes.append(f"{n} of {len(points)} settings {'trains' if n == 1 else 'train'} the same networks as another "
                     f"setting, so {'it scores' if n == 1 else 'they score'} the same: {applies} (e.g. "
                     f"{' and '.join(format_setting(s) for s in first[:2])}); the selection counts such settings "
                     "once")
    # an option without effect in some settings that train no other's model (optimizer=lbfgs,sgd; dropout=0.3: lbfgs
    # trains without dropout): their rows show its value, and the best line named it, for a model trained without it
    said = {k for group in repeated for k in _moot(group[0], base)}
    partly: dict[str, list[dict]] = {}
    for _, setting in points:
        for k in _without_effect(setting, base):
            partly.setdefault(k, []).append(setting)
    for k, settings in partly.items():
        if k not in said:
            n = len(settings)
            notes.append(f"{option_name(k)} has no effect in {n} of the {len(points)} settings "
                         f"({_moot_reason(k, settings[0], base)}; e.g. {format_setting(settings[0])}): "
                         f"{'it trains' if n == 1 else 'they train'} without it, whatever the row shows")
    if len(points) == 1:  # (hidden=64,32 read as one network: ``grid.hidden_layers_note``, in any grid)
        notes.append("the grid holds one setting, so nothing is chosen: its score is its cross-validated estimate")
    return notes


def tie_note(points: list[PointResult], metric: str, class_weight=None, base: TrainOptions | None = None,
             task: str | None = None) -> str | None:
    """The settings (other models than the best's) whose mean score equals the best's: the ranking put the best
    first by its smaller SD over the folds, or by its place in the grid, not by its score, and --refit trains
    it. Balanced accuracy on a few samples moves in steps, and an option that cannot change the predictions
    scored (log1p=auto where it resolves to false; calibrate where the fold models label by argmax, which a
    temperature never changes — under the balanced rule it moves P(c) / share and can) ties in every fold."""
    if not points or points[0].mean is None:
        return None
    best = points[0]
    tied = [p for p in points[1:] if p.mean is not None
            and _model_key(p.setting, base, task) != _model_key(best.setting, base, task)
            and math.isclose(p.mean, best.mean, rel_tol=1e-9, abs_tol=1e-12)]
    if not tied:
        return None
    same = all(np.allclose(p.scores, best.scores, rtol=1e-9, atol=1e-12, equal_nan=True) for p in tied)
    shown = "; ".join(format_setting(p.setting) for p in tied[:3]) + ("; …" if len(tied) > 3 else "")
    how = ("in every fold" if same else
           f"in mean ({metrics.display_name(metric)} {value_text(best.mean)})")
    equal_sd = [math.isclose(p.sd or 0.0, best.sd or 0.0, rel_tol=1e-9, abs_tol=1e-12) for p in tied]
    order = ("its place in the grid" if same or all(equal_sd) else "its smaller SD over the folds" if not any(equal_sd)
             else "its smaller SD over the folds, then its place in the grid")
    why = ""
    if same and all(_same_but_decision(p, best) for p in tied):
        rules = sorted({r for p in (best, *tied) for r in p.decisions if r})
        if len(rules) == 1:  # decision=auto resolved to the other setting's rule in every fold
            why = (f" (decision=auto chose {rules[0]} in every fold, so they trained the same networks and labelled "
                   "them alike)")
        elif best.setting.get("class_weight", class_weight) == "balanced":  # the shares the rule divides by are equal
            why = (" (under class-weight balanced every class weighs the same in the loss, so the balanced rule "
                   "labels as argmax)")
    return (f"{len(tied)} other setting{'s' if len(tied) > 1 else ''} ({shown}) score{'' if len(tied) > 1 else 's'} "
            f"the same as the best, {format_setting(best.setting)}, {how}{why}: the best ranks first by {order}, not by "
            "its score, so the grid does not choose between them" + ("" if same else "; --repeats may"))


def _same_but_decision(p: PointResult, best: PointResult) -> bool:
    """Whether ``p`` differs from ``best`` only in its decision option (every fold labelled by some rule)."""
    rest = lambda setting: {k: repr(v) for k, v in setting.items() if k != "decision"}  # noqa: E731
    return (rest(p.setting) == rest(best.setting) and p.setting.get("decision") != best.setting.get("decision")
            and all(r is not None for r in p.decisions + best.decisions))


def selection_note(points: list[PointResult], nested: bool, higher_is_better: bool = True,
                   base: TrainOptions | None = None, task: str | None = None) -> str | None:
    """The best setting's CV score is the winner's of ``chosen_among`` settings scored on the same folds: part
    of its lead is luck on those folds (selection bias; Cawley & Talbot 2010), so it overstates how the tuned
    model does on new patients. Reported bare beside the ranking, it read as an unbiased estimate."""
    n = chosen_among(points, base, task)
    if n < 2:
        return None
    # the best of n: the highest balanced accuracy, the lowest RMSE
    return (f"the best setting's score is optimistic: it is the {'highest' if higher_is_better else 'lowest'} of {n} "
            "settings scored on the same folds, so part of its lead is luck on them; " + ("the nested CV's outer folds, unseen by each choice, give "
                                                       "the honest estimate" if nested else
                                                       "--nested estimates the tuned model honestly"))


def _all_failed(points: list[PointResult]) -> TrainingError:
    first = min(points, key=lambda p: p.index)
    return TrainingError(f"every setting of the grid failed ({len(points)} of {len(points)}); "
                         f"{format_setting(first.setting)}: {first.failed}")


def tune(ds: data.Dataset, options: TrainOptions, space: dict[str, list], folds: int = 5, repeats: int = 1,
         n_random: int | None = None, nested: bool = False, outer_folds: int = 5, plan: Plan = Plan(),
         progress: Callable[[int, int], None] | None = None) -> TuneResult:
    """Score every chosen grid point by grouped CV on ``ds`` and rank them.

    ``nested=True`` also estimates how well the tuning itself generalises: an outer grouped CV
    (``outer_folds``) whose every training part is tuned by its own inner grouped CV (``folds``);
    the best inner setting is refitted on the outer training part and scored on the outer test
    fold, which the inner tuning never sees. The ranked table (and the setting to refit) always
    comes from tuning on all of ``ds``. ``plan``: where the fits run (default here, one after the other);
    ``parallel.member_plan()``, the command's default, runs them on the usable cores (``parallel.fits_plan``)."""
    require_dataset(ds, "tune takes")  # a path or a dict of options failed with an AttributeError inside
    require_options(options, "tune takes")
    check_cv_options(options)
    if ds.y is None or ds.task is None:
        raise DataError("the table has no target column; name it with --target")
    started = time.perf_counter()
    points, notes = choose_points(space, n_random, options.seed)
    notes += hidden_layers_note(space)
    if "folds" in space:  # the grid's member-folds: each setting's model, an ensemble when above 1
        notes.append("each setting is scored as train --folds (the grid's member-folds) trains it, one model per "
                     "fold: one network early-stopped on a grouped hold-out of the fold's training part for "
                     "member-folds=1, a cross-fitted ensemble above")
    else:
        notes.append(f"each setting is scored as {SCORED_AS}"
                     + ("; so is each outer fold's choice (--nested): the honest estimate is one network's, where "
                        "--refit ships train's cross-fitted ensemble, likely a little better (member-folds in the "
                        "grid scores that)" if nested else ""))
    options = replace(options, folds=1, refit=False)  # a grid may still set folds (its member-folds)
    notes += grid_notes(points, options, ds.task)
    check_settings(options, points)
    points, left_out = _check_points(ds, options, points)
    notes += left_out
    metric = metrics.main_metric_name(ds.task)
    higher = metrics.higher_is_better(metric)

    fold_list, strategy = kfold(ds, folds, repeats, options.seed, outer=True)
    check_training_parts(ds, fold_list)  # before any fit: a class the fold's early stopping cannot hold out
    tasks = [(_fit_and_score, (ds, f.train, f.test, with_seed(apply_setting(options, setting), f.repeat),
                               ("grid", j, f.repeat, f.fold), _where(f, repeats)))
             for j, (_, setting) in enumerate(points) for f in fold_list]
    per_point = len(fold_list)

    outer: list[Fold] = []
    inner_slices: list[tuple[int, int]] = []
    outer_strategy = None
    if nested:
        outer, outer_strategy = kfold(ds, outer_folds, 1, options.seed, flag="--outer-folds")
        try:  # each outer training part trains the chosen setting, holding some of it out for early stopping
            check_training_parts(ds, outer, flag="--outer-folds")
        except DataError as exc:
            raise DataError(f"--nested: outer {exc}") from None
        # an inner CV runs on an outer training part, (outer_folds - 1) / outer_folds of the patients: --folds alone
        # may have no value that works there (2 leaves a class one patient to train on, 3 more folds than its
        # patients), and the errors sent the user from one to the other; more outer folds is the way out
        more_outer = f"; or raise --outer-folds (now {outer_folds}): each inner CV then has more of the data to split"
        for o in outer:
            # inner folds are built on the outer training rows only, then mapped back to ds's rows
            inner_ds = ds.subset(o.train)
            try:
                inner_folds, _ = kfold(inner_ds, folds, repeats, options.seed)
            except DataError as exc:
                raise DataError(f"outer fold {o.fold + 1} (--nested): {exc}{more_outer}") from None
            try:  # before any fit, as for the folds on all rows
                check_training_parts(inner_ds, inner_folds)
            except DataError as exc:
                raise DataError(f"outer fold {o.fold + 1} (--nested): inner {exc}{more_outer}") from None
            first = len(tasks)
            for j, (_, setting) in enumerate(points):
                for f in inner_folds:
                    tasks.append((_fit_and_score, (ds, o.train[f.train], o.train[f.test],
                                                   with_seed(apply_setting(options, setting), f.repeat),
                                                   ("inner", o.fold, j, f.repeat, f.fold), _where(f, repeats, o))))
            inner_slices.append((first, len(inner_folds)))

    n_outer = len(outer)
    total = len(tasks) + n_outer

    def stage_progress(offset):
        return None if progress is None else (lambda done, _total: progress(offset + done, total))

    # every setting's networks, on the largest training part any task (or a --nested refit) gives them
    largest = max([len(task[1][1]) for task in tasks] + [len(o.train) for o in outer])
    asked = fits_plan(plan, len(tasks), worker_copy_bytes(ds, largest, options))  # the default: the usable cores
    plan = check_fits_memory(ds, [(apply_setting(options, setting), largest) for _, setting in points], asked,
                             len(tasks))
    notes += fewer_at_once_note(asked, plan, len(tasks))
    scores = run(tasks, plan, shared=[ds], progress=stage_progress(0))
    ranked = _collect(points, scores[:len(points) * per_point], per_point, higher)
    if all(p.failed for p in ranked):
        raise _all_failed(ranked)
    failed_note = _failed_note(ranked)
    if failed_note:
        notes.append(failed_note)
    tie = tie_note(ranked, metric, options.class_weight, options, ds.task)
    if tie:
        notes.append(tie)
    optimism = selection_note(ranked, nested, higher, options, ds.task)
    if optimism:
        notes.append(optimism)

    nested_result = None
    nested_warnings: list[str] = []
    if nested:
        chosen_per_fold, inner_per_fold = [], []
        for o, (first, per) in zip(outer, inner_slices):
            inner = _collect(points, scores[first : first + len(points) * per], per, higher)
            inner_per_fold.append(inner)
            chosen_per_fold.append(None if inner[0].failed else inner[0])  # a failed setting is never chosen
        refit_folds = [(o, best) for o, best in zip(outer, chosen_per_fold) if best is not None]
        refits = [(_fit_and_score, (ds, o.train, o.test, apply_setting(options, best.setting),
                                    ("outer", o.fold, 0, o.fold), f"outer fold {o.fold + 1} (--nested)"))
                  for o, best in refit_folds]
        outer_scores = dict(zip([o.fold for o, _ in refit_folds],
                                run(refits, plan, shared=[ds], progress=stage_progress(len(tasks)))))
        nested_result = []
        for o, best, inner in zip(outer, chosen_per_fold, inner_per_fold):
            s = outer_scores.get(o.fold)
            if best is None:
                why = f"every setting failed in its inner tuning ({format_setting(inner[0].setting)}: {inner[0].failed})"
            elif isinstance(s, FailedFit):
                why = f"the chosen setting {format_setting(best.setting)} failed when refitted: {s.reason}"
            else:
                why = None
            if why:
                nested_warnings.append(f"outer fold {o.fold + 1} (--nested) has no score: {why}; the honest estimate "
                                       "is over the other outer folds only")
            scored = isinstance(s, FoldScore)
            nested_result.append(OuterFold(
                fold=o.fold, train_rows=o.train, test_rows=o.test, chosen=None if best is None else best.setting,
                inner_mean=None if best is None else best.mean, inner_sd=None if best is None else best.sd,
                score=s.score if scored else float("nan"), metrics=s.metrics if scored else {}, inner=inner,
                failed=why))
    warn = fold_warnings(ds, fold_list, [s for s in scores[:len(points) * per_point] if isinstance(s, FoldScore)],
                          settings=[format_setting(setting) for _, setting in points])
    warn += nested_warnings
    confounded = batch_confounding(ds, command="tune")  # as cv warns: a grid point can win by recognising batches
    if confounded:
        warn.insert(0, confounded)
    if options.impute is not None or any(v is not None for v in space.get("impute", [])):  # as train and cv warn
        from ..data.missingness import missingness_warnings

        warn[:0] = missingness_warnings(ds)
    capped = _epochs_cap_warning(ranked[0]) if ranked else None
    if capped:
        warn.append(capped)
    mixed = _mixed_units_warning(ds)
    if mixed:
        warn.append(mixed)
    return TuneResult(task=ds.task, metric=metric, higher_is_better=higher, space=space, grid_size=grid_size(space),
                      strategy=strategy, folds=folds, repeats=repeats, points=ranked, nested=nested_result,
                      nested_strategy=outer_strategy, seconds=time.perf_counter() - started, notes=notes,
                      warnings=warn, options=options)


def _epochs_cap_warning(best: PointResult) -> str | None:
    """A warning when the best setting's networks had their best epoch at the --epochs cap (as resolved for
    each fold: "auto" sizes it by the fold's rows) in half of its folds or more: still improving when
    training stopped, so its score (and perhaps the ranking) is held back by the cap rather than by the
    setting."""
    folds = [(e, cap) for e, cap in zip(best.epochs, best.epoch_caps) if e is not None and cap]  # fits that ran
    at_cap = [cap for e, cap in folds if e >= cap]
    if not folds or 2 * len(at_cap) < len(folds):
        return None
    caps = sorted(set(at_cap))
    cap = str(caps[0]) if len(caps) == 1 else f"{caps[0]}–{caps[-1]}"
    if "epochs" in best.setting:  # the grid's epochs, which --epochs does not override: raising it changed nothing
        return (f"the best setting's networks were still improving at its epochs cap (epochs={best.setting['epochs']} "
                f"in --grid): best epoch {cap} in {len(at_cap)} of {len(folds)} folds; its score may rise with more "
                "epochs — add larger epochs values to --grid and tune again")
    return (f"the best setting's networks were still improving at the --epochs cap ({cap}): best epoch {cap} in "
            f"{len(at_cap)} of {len(folds)} folds; its score may rise with more epochs — raise --epochs "
            "(or add epochs to the grid) and tune again")


def refit_record(result: TuneResult) -> dict:
    """What a ``--refit`` model keeps of its tuning (``model.extra["tuning"]``, which ``info`` shows): the grid, the
    setting chosen, its CV score, the nested estimate, and how the choice was made — ``evaluated`` of ``grid_size``
    settings (fewer: ``--random``), ``chosen_from`` distinct models with a score (above 1 the score is the best of
    them, so optimistic), ``folds`` × ``repeats``. Files written before the last four lack them."""
    return {
        "grid": result.space, "setting": result.best.setting, "metric": result.metric,
        "cv_mean": result.best.mean, "cv_sd": result.best.sd, "strategy": result.strategy,
        "nested": result.nested_summary(),
        "grid_size": result.grid_size, "evaluated": len(result.points),
        "chosen_from": chosen_among(result.points, result.options, result.task),
        "folds": result.folds, "repeats": result.repeats,
    }


def best_options(options: TrainOptions, result: TuneResult) -> TrainOptions:
    """``options`` with the best setting applied (what ``--refit`` trains), the options it makes moot (dropout under
    hidden=none, momentum under adamw; ``config.ONLY_WITH``) back at their defaults: the model stored them, and `info
    --config-out` wrote a file that `train --config` refused ("--dropout: ... --hidden none has none"). They had no
    effect, so the networks are the same."""
    chosen = apply_setting(options, result.best.setting)
    defaults = TrainOptions()
    moot = {k: getattr(defaults, k) for k, rule in ONLY_WITH.items()
            if not rule.applies(chosen) and getattr(chosen, k) != getattr(defaults, k)}
    return replace(chosen, **moot)
