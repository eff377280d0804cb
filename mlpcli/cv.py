"""Cross-validation and hyperparameter tuning on grouped folds.

    Dataset ─make_folds (grouped, stratified; one shuffle per repeat)─▶ folds
       per fold: training part ─data.split by group─▶ fit rows │ early-stopping rows
                 ─Preprocessor.fit(fit rows)─▶ training.fit ─▶ metrics on the fold's test rows
    cross_validate: the folds' metrics, mean ± SD, out-of-fold predictions
    tune:           every grid point scored by the same grouped CV, ranked; ``nested=True`` adds an
                    outer grouped CV whose test folds the inner tuning never sees

The test rows of a fold are used for nothing but scoring: not for preprocessing, not for early
stopping, not (in tuning) for choosing settings — the notes' practical checklist: tune lambda,
dropout and patience on validation folds, never on the test set.

Every fit is an independent task (``fit_and_score``) carrying its rows and its options, seed
included, so the results are the same whether the tasks run here, on local workers or on a Dask
cluster (``parallel.run``). Repeat r shuffles the folds and seeds the networks with ``seed + r``;
all grid points of a repeat share that seed, so they are compared on equal terms.
"""

from __future__ import annotations

import difflib
import math
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

import numpy as np

from . import data, metrics, pipeline
from .config import TrainOptions
from .errors import ConfigError, DataError
from .model_io import Model
from .parallel import Plan, run


__all__ = [
    "Fold", "FoldScore", "CVResult", "PointResult", "OuterFold", "TuneResult", "make_folds", "fit_and_score",
    "cross_validate", "parse_grid", "grid_size", "choose_points", "tune", "TUNABLE", "HEADLINE_METRICS",
]

# The metrics shown per fold in tables (all scalar metrics go to --json and are averaged).
HEADLINE_METRICS = {
    "binary": ["balanced_accuracy", "roc_auc", "f1", "mcc", "log_loss"],
    "multiclass": ["balanced_accuracy", "accuracy", "f1_macro", "roc_auc_ovr", "log_loss"],
    "multilabel": ["balanced_accuracy", "f1_macro", "hamming_loss"],
    "regression": ["rmse", "mae", "r2", "pearson_r"],
}
_LOWER_IS_BETTER = {"rmse", "mae", "log_loss", "hamming_loss", "brier", "ece"}


# ── folds ────────────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Fold:
    repeat: int  # 0-based
    fold: int  # 0-based
    train: np.ndarray  # (n_train,) sorted row indices
    test: np.ndarray  # (n_test,) sorted row indices


def _group_name(ds: data.Dataset) -> str:
    return ds.roles.group if ds.roles is not None and ds.roles.group else "group"


def _label(ds: data.Dataset, k: int) -> str:
    return str(ds.classes[k]) if k < len(ds.classes) else str(k)


def _check_fold_count(ds: data.Dataset, n_folds: int, flag: str) -> None:
    """One-line errors for fold counts the data cannot support."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"{flag} must be a whole number >= 2, got {n_folds!r}")
    classify = ds.task in data.CLASSIFICATION_TASKS
    if ds.groups is not None:
        gname = _group_name(ds)
        n_groups = len(np.unique(ds.groups))
        if n_folds > n_groups:
            raise DataError(f"{flag} {n_folds} is more than the {n_groups} groups in {gname!r}; each test fold "
                            f"needs whole groups — use {flag} {n_groups} or fewer")
        if classify:
            for k in np.unique(ds.y):
                m = len(np.unique(ds.groups[ds.y == k]))
                if m < n_folds:
                    raise DataError(f"{flag} {n_folds}: class {_label(ds, k)!r} has {m} group(s) in {gname!r}, "
                                    f"fewer than the folds, so some test folds would lack it — use {flag} {max(2, m)} "
                                    "or fewer, or merge the class")
        return
    if n_folds > ds.n_samples:
        raise DataError(f"{flag} {n_folds} is more than the {ds.n_samples} samples; use {flag} {ds.n_samples} or fewer")
    if classify:
        counts = np.bincount(ds.y, minlength=len(ds.classes))
        for k in np.flatnonzero((counts > 0) & (counts < n_folds)):
            raise DataError(f"{flag} {n_folds}: class {_label(ds, k)!r} has {counts[k]} sample(s), fewer than the "
                            f"folds, so some test folds would lack it — use {flag} {max(2, int(counts[k]))} or fewer, "
                            "or merge the class")


def _shuffled_group_kfold(groups: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold's balancing (largest groups first, each to the lightest fold) with ties broken by a
    seeded shuffle, so repeats differ (sklearn's GroupKFold gained ``shuffle`` only in 1.6)."""
    rng = np.random.default_rng(seed)
    uniq, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = rng.permutation(len(uniq))
    order = order[np.argsort(-sizes[order], kind="stable")]
    load = np.zeros(n_folds, dtype=np.int64)
    fold_of = np.empty(len(uniq), dtype=np.int64)
    for g in order:
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    row_fold = fold_of[inverse]
    return [(np.flatnonzero(row_fold != f), np.flatnonzero(row_fold == f)) for f in range(n_folds)]


def make_folds(ds: data.Dataset, n_folds: int = 5, repeats: int = 1, seed: int = 0,
               flag: str = "--folds") -> tuple[list[Fold], str]:
    """Folds for ``repeats`` shuffles (repeat r uses ``seed + r``) and a description of the strategy.

    Groups: StratifiedGroupKFold for classification, a shuffled GroupKFold otherwise; no group is
    ever in both the training and the test part of a fold. No groups: StratifiedKFold / KFold.
    Multi-label targets are not stratified (no single class per sample).
    """
    from sklearn.model_selection import KFold, StratifiedGroupKFold, StratifiedKFold

    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ConfigError(f"--repeats must be a whole number >= 1, got {repeats!r}")
    _check_fold_count(ds, n_folds, flag)
    classify = ds.task in data.CLASSIFICATION_TASKS
    dummy = np.zeros((ds.n_samples, 1))
    out: list[Fold] = []
    for r in range(repeats):
        s = seed + r
        if ds.groups is not None and classify:
            splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=s)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # small classes: checked above
                pairs = list(splitter.split(dummy, ds.y, ds.groups))
            strategy = f"StratifiedGroupKFold by {_group_name(ds)}"
        elif ds.groups is not None:
            pairs = _shuffled_group_kfold(ds.groups, n_folds, s)
            strategy = f"GroupKFold by {_group_name(ds)} (shuffled)"
        elif classify:
            pairs = list(StratifiedKFold(n_folds, shuffle=True, random_state=s).split(dummy, ds.y))
            strategy = "StratifiedKFold (no group column)"
        else:
            pairs = list(KFold(n_folds, shuffle=True, random_state=s).split(dummy))
            strategy = "KFold (no group column)"
        for f, (tr, te) in enumerate(pairs):
            tr, te = np.sort(tr).astype(np.int64), np.sort(te).astype(np.int64)
            if len(tr) == 0 or len(te) == 0:
                raise DataError(f"{flag} {n_folds}: fold {f + 1} has no {'test' if len(te) == 0 else 'training'} "
                                f"rows; use fewer folds")
            if ds.groups is not None:
                shared = np.intersect1d(ds.groups[tr], ds.groups[te])
                if shared.size:  # explicit raise, not assert: must hold under python -O
                    raise data.SplitLeakageError(f"internal error: group(s) {shared[:3].tolist()} in both the training "
                                                 f"and the test part of fold {f + 1}")
            out.append(Fold(r, f, tr, te))
    if repeats > 1:
        strategy += f", {n_folds} folds × {repeats} repeats"
    else:
        strategy += f", {n_folds} folds"
    return out, strategy


# ── one fit on one fold ──────────────────────────────────────────────────────────────────────────────────


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
    best_epoch: int
    epochs_run: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    test_rows: np.ndarray | None = None  # (n_test,) indices into the dataset (kept for predictions)
    proba: np.ndarray | None = None  # (n_test, k) as Model.predict_output


def _n_groups(ds: data.Dataset, rows: np.ndarray) -> int | None:
    return None if ds.groups is None else int(len(np.unique(ds.groups[rows])))


def fit_and_score(ds: data.Dataset, train_rows: np.ndarray, test_rows: np.ndarray, options: TrainOptions,
                  label: tuple = (), keep_predictions: bool = False) -> FoldScore:
    """Train on ``train_rows`` of ``ds`` exactly as ``mlpcli train`` would (its grouped
    early-stopping split, preprocessing fitted on the fit rows) and score on ``test_rows``.

    A task for ``parallel.run``: everything it needs is in its arguments."""
    started = time.perf_counter()
    train_ds, test_ds = ds.subset(train_rows), ds.subset(test_rows)
    fit_idx, val_idx, summary = data.split(train_ds, options.val_size, options.seed)
    fit_ds, val_ds = train_ds.subset(fit_idx), train_ds.subset(val_idx)

    run = pipeline.fit_datasets(fit_ds, val_ds, options)
    pre, result, loss = run.preprocessor, run.result, run.setup.loss
    model = Model(network=run.network, preprocessor=pre, task=ds.task, classes=list(ds.classes),
                  feature_names=list(ds.feature_names), target_names=list(ds.target_names),
                  loss={"name": loss.name, "params": loss.params()},
                  extra={"target_scaling": run.target_scaling} if run.target_scaling else {})
    proba = model.predict_output(test_ds.X)  # (n_test, k)
    scored = proba[:, 1:2] if ds.task == "binary" and proba.shape[1] == 2 else proba  # P(positive) like sigmoid
    m = metrics.compute(ds.task, test_ds.y, scored, list(ds.classes))
    main = m.get(metrics.main_metric_name(ds.task))
    repeat, fold = (label[-2], label[-1]) if len(label) >= 2 else (0, 0)
    return FoldScore(
        label=tuple(label), repeat=int(repeat), fold=int(fold), n_train=int(len(train_rows)), n_test=int(len(test_rows)),
        n_groups_train=_n_groups(ds, train_rows), n_groups_test=_n_groups(ds, test_rows), metrics=m,
        score=float("nan") if main is None else float(main), best_epoch=int(result.best_epoch),
        epochs_run=int(result.epochs_run), seconds=time.perf_counter() - started,
        warnings=list(summary.warnings) + list(pre.warnings),
        test_rows=np.asarray(test_rows) if keep_predictions else None, proba=proba if keep_predictions else None,
    )


def _higher_is_better(metric: str) -> bool:
    return metric not in _LOWER_IS_BETTER


def _mean_sd(values) -> tuple[float | None, float | None]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return None, None
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


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

    def summary(self) -> dict[str, dict]:
        """Mean and SD (over folds and repeats) of every scalar metric: {name: {"mean", "sd"}}."""
        names = list(dict.fromkeys(k for f in self.folds for k in _scalar_metrics(f.metrics)))
        out = {}
        for name in names:
            mean, sd = _mean_sd(f.metrics.get(name) for f in self.folds)
            out[name] = {"mean": mean, "sd": sd}
        return out

    def to_dict(self) -> dict:
        return {
            "task": self.task, "metric": self.metric, "higher_is_better": self.higher_is_better,
            "classes": [str(c) for c in self.classes], "strategy": self.strategy, "folds": self.n_folds,
            "repeats": self.repeats, "summary": self.summary(),
            "per_fold": [_fold_dict(f) for f in self.folds], "seconds": self.seconds,
            "notes": self.notes, "warnings": self.warnings,
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
        return frame.iloc[order].drop(columns="_row").reset_index(drop=True)


def _fold_dict(f: FoldScore) -> dict:
    return {"repeat": f.repeat + 1, "fold": f.fold + 1, "n_train": f.n_train, "n_test": f.n_test,
            "n_groups_train": f.n_groups_train, "n_groups_test": f.n_groups_test, "score": _finite(f.score),
            "best_epoch": f.best_epoch, "epochs_run": f.epochs_run, "seconds": f.seconds, "metrics": f.metrics}


def _finite(x):
    return None if x is None or not np.isfinite(x) else float(x)


def _prediction_columns(ds: data.Dataset, f: FoldScore):
    import pandas as pd

    rows, P = f.test_rows, f.proba
    id_name = ds.roles.id if ds.roles is not None and ds.roles.id else "row"
    cols: dict[str, Any] = {"_row": rows, id_name: ds.ids[rows] if ds.ids is not None else rows}
    if ds.groups is not None:
        cols[_group_name(ds)] = ds.groups[rows]
    cols["repeat"] = np.full(len(rows), f.repeat + 1)
    cols["fold"] = np.full(len(rows), f.fold + 1)
    classes = np.asarray(ds.classes, dtype=object)
    if ds.task in data.CLASSIFICATION_TASKS:
        if P.shape[1] == 1:  # binary sigmoid: P(positive class)
            P = np.column_stack([1.0 - P[:, 0], P[:, 0]])
        cols["true"] = classes[ds.y[rows]]
        cols["predicted"] = classes[P.argmax(axis=1)]
        for k, c in enumerate(ds.classes):
            cols[f"p_{c}"] = P[:, k]
    elif ds.task == "multilabel":
        for j, c in enumerate(ds.classes):
            cols[f"true_{c}"] = ds.y[rows, j].astype(int)
            cols[f"predicted_{c}"] = (P[:, j] >= 0.5).astype(int)
            cols[f"p_{c}"] = P[:, j]
    else:
        for j, c in enumerate(ds.classes):
            cols[f"true_{c}"] = ds.y[rows, j]
            cols[f"predicted_{c}"] = P[:, j]
    return pd.DataFrame(cols)


def _check_options(options: TrainOptions) -> None:
    options.validate()
    if options.val_data:
        raise ConfigError("--val-data does not apply here: each fold's early-stopping rows come from its own "
                          "training part (--val-size of it)")


def _with_seed(options: TrainOptions, repeat: int) -> TrainOptions:
    return replace(options, seed=options.seed + repeat)


def cross_validate(ds: data.Dataset, options: TrainOptions, folds: int = 5, repeats: int = 1, plan: Plan = Plan(),
                   keep_predictions: bool = True, progress: Callable[[int, int], None] | None = None) -> CVResult:
    """Grouped (stratified) K-fold cross-validation of the model ``options`` describe.

    Each fold trains a fresh model on its training part (preprocessing and early stopping inside
    it) and is scored on its test part. ``repeats`` > 1 reshuffles the folds and reseeds the
    networks (repeat r: ``options.seed + r``)."""
    _check_options(options)
    if ds.y is None or ds.task is None:
        raise DataError("the table has no target column; name it with --target")
    started = time.perf_counter()
    fold_list, strategy = make_folds(ds, folds, repeats, options.seed)
    tasks = [(fit_and_score, (ds, f.train, f.test, _with_seed(options, f.repeat), ("cv", f.repeat, f.fold),
                              keep_predictions)) for f in fold_list]
    scores = run(tasks, plan, shared=[ds], progress=progress)
    metric = metrics.main_metric_name(ds.task)
    warn = _fold_warnings(ds, fold_list, scores)
    return CVResult(task=ds.task, metric=metric, higher_is_better=_higher_is_better(metric), classes=list(ds.classes),
                    target_names=list(ds.target_names), strategy=strategy, n_folds=folds, repeats=repeats,
                    folds=scores, seconds=time.perf_counter() - started, warnings=warn)


def _fold_warnings(ds: data.Dataset, fold_list: list[Fold], scores: list[FoldScore]) -> list[str]:
    out: list[str] = []
    if ds.task in data.CLASSIFICATION_TASKS:
        for f in fold_list:
            missing = [_label(ds, k) for k in np.unique(ds.y) if not np.any(ds.y[f.test] == k)]
            if missing:
                out.append(f"repeat {f.repeat + 1} fold {f.fold + 1}: class {', '.join(map(repr, missing))} is absent "
                           "from the test rows; its metrics there do not cover it")
    seen = set()
    for s in scores:
        for w in s.warnings:
            if w not in seen:
                seen.add(w)
                out.append(f"{'/'.join(str(x) for x in s.label)}: {w}")
    return out


# ── the grid ─────────────────────────────────────────────────────────────────────────────────────────────

# Options a grid may vary: everything that shapes the model, its training or its preprocessing.
# Not: column roles and the task (the data), --val-data, and the seed (tuning a seed fits noise).
TUNABLE = (
    "impute", "log1p", "top_var", "standardize", "val_size", "hidden", "activation", "dropout", "batchnorm", "dtype",
    "optimizer", "lr", "momentum", "weight_decay", "l1", "l2", "batch_size", "epochs", "patience", "min_delta",
    "lr_schedule", "augment_noise", "clip_norm", "loss", "class_weight", "pos_weight", "focal_gamma", "focal_alpha",
    "label_smoothing",
)
# Values of these contain commas (layer widths, LABEL=W pairs), so "|" separates their values.
_BAR_SEPARATED = ("hidden", "class_weight")
_FIELD_TYPES = {f.name: f.type for f in fields(TrainOptions)}
_NONE_WORDS = ("none", "null", "")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _parse_value(key: str, text: str) -> Any:
    """One grid value for option ``key``, parsed with the option's type."""
    kind = str(_FIELD_TYPES[key]).replace(" ", "")
    t = text.strip()
    flag = "--" + key.replace("_", "-")
    if key == "hidden":
        if t.lower() in ("none", "0"):
            return []
        try:
            widths = [int(w) for w in t.split(",")]
        except ValueError:
            raise ConfigError(f"--grid: hidden value {t!r} is not comma-separated layer widths such as 128,64 "
                              "(values are separated by |)") from None
        return widths
    if kind.endswith("|None") and t.lower() in _NONE_WORDS:
        return None
    base = kind.removesuffix("|None")
    try:
        if base == "float":
            value = float(t)
            if not math.isfinite(value):
                raise ValueError
            return value
        if base == "int":
            return int(t)
        if base == "bool":
            if t.lower() in _TRUE:
                return True
            if t.lower() in _FALSE:
                return False
            raise ValueError
    except ValueError:
        what = {"float": "a number", "int": "a whole number", "bool": "true or false"}[base]
        raise ConfigError(f"--grid: {key} value {t!r} is not {what} ({flag} takes {what})") from None
    if not t:
        raise ConfigError(f"--grid: {key} has an empty value")
    return t


def parse_grid(text: str, base: TrainOptions | None = None) -> dict[str, list]:
    """``"lr=1e-3,1e-2; l2=0,1e-4; hidden=64|128,64"`` -> ``{"lr": [0.001, 0.01], ...}`` (in order).

    ``;`` separates options and ``,`` values, except for ``hidden`` and ``class_weight`` whose
    values are separated by ``|`` (``hidden=64|128,64`` is [64] or [128, 64]). Keys are train
    option names, kebab or snake case. Each value is checked against the option's rules (with
    ``base`` for the other options). Every mistake is a one-line ConfigError naming the key."""
    if text is None or not str(text).strip():
        raise ConfigError('--grid is empty; give KEY=VALUES pairs, e.g. "lr=1e-3,1e-2; dropout=0,0.3"')
    base = base if base is not None else TrainOptions()
    space: dict[str, list] = {}
    for part in str(text).split(";"):
        if not part.strip():
            continue
        key_text, sep, values_text = part.partition("=")
        key = key_text.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--grid: {part.strip()!r} is not KEY=VALUES (e.g. lr=1e-3,1e-2); separate options with ;")
        if key not in TUNABLE:
            if key in _FIELD_TYPES:
                why = "the seed (tuning it fits noise)" if key == "seed" else "a column role or data option"
                raise ConfigError(f"--grid: {key_text.strip()!r} cannot be tuned: it is {why}; set it with its own flag")
            hint = difflib.get_close_matches(key, TUNABLE, n=1)
            raise ConfigError(f"--grid: unknown option {key_text.strip()!r}"
                              + (f" (did you mean {hint[0].replace('_', '-')!r}?)" if hint else "")
                              + "; keys are train option names such as lr, l2, dropout, hidden, patience")
        if key in space:
            raise ConfigError(f"--grid: {key} is given twice; list all its values once")
        sep_char = "|" if key in _BAR_SEPARATED else ","
        items = values_text.split(sep_char)
        if not values_text.strip():
            raise ConfigError(f"--grid: {key} has no values (e.g. {key}={_example(key)})")
        values: list = []
        for item in items:
            if not item.strip() and key not in ("hidden",):
                raise ConfigError(f"--grid: {key} has an empty value in {values_text.strip()!r}")
            value = _parse_value(key, item)
            try:
                replace(base, **{key: value}).validate()
            except ConfigError as exc:
                raise ConfigError(f"--grid: {key}={item.strip()}: {str(exc).split(': ', 1)[-1]}") from None
            if value not in values:
                values.append(value)
        space[key] = values
    if not space:
        raise ConfigError('--grid is empty; give KEY=VALUES pairs, e.g. "lr=1e-3,1e-2; dropout=0,0.3"')
    return space


def _example(key: str) -> str:
    return {"hidden": "64|128,64", "class_weight": "none|balanced"}.get(key, "a,b")


def grid_size(space: dict[str, list]) -> int:
    return math.prod(len(v) for v in space.values())


def _point(space: dict[str, list], index: int) -> dict:
    """The ``index``-th point of the grid in itertools.product order (last key varies fastest)."""
    out = {}
    for key in reversed(list(space)):
        values = space[key]
        index, j = divmod(index, len(values))
        out[key] = values[j]
    return {k: out[k] for k in space}


def choose_points(space: dict[str, list], n_random: int | None = None, seed: int = 0) -> tuple[list[tuple[int, dict]], list[str]]:
    """(grid index, setting) pairs to evaluate: the full grid, or ``n_random`` distinct points drawn
    with ``seed`` (in grid order). Returns notes too."""
    size = grid_size(space)
    if n_random is None:
        return [(i, _point(space, i)) for i in range(size)], []
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise ConfigError(f"--random must be a whole number >= 1, got {n_random!r}")
    if n_random >= size:
        return ([(i, _point(space, i)) for i in range(size)],
                [f"--random {n_random} covers the whole grid of {size} points; running all of them"])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    chosen = np.sort(rng.choice(size, size=n_random, replace=False))
    return [(int(i), _point(space, int(i))) for i in chosen], [f"{n_random} of {size} grid points drawn at random (seed {seed})"]


def _apply(options: TrainOptions, setting: dict) -> TrainOptions:
    return replace(options, **setting)


def format_setting(setting: dict) -> str:
    """``{"lr": 0.001, "hidden": [128, 64]}`` -> ``lr=0.001 hidden=128,64``."""
    parts = []
    for k, v in setting.items():
        if isinstance(v, list):
            v = ",".join(str(x) for x in v) or "none"
        elif isinstance(v, float):
            v = f"{v:g}"
        parts.append(f"{k.replace('_', '-')}={v}")
    return " ".join(parts)


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
    epochs: list[int] = field(default_factory=list)  # best epoch per fold

    def to_dict(self) -> dict:
        return {"rank": self.rank, "grid_index": self.index, "setting": self.setting, "mean": self.mean,
                "sd": self.sd, "scores": [_finite(s) for s in self.scores], "best_epochs": self.epochs,
                "seconds": self.seconds}


@dataclass
class OuterFold:
    fold: int  # 0-based
    train_rows: np.ndarray
    test_rows: np.ndarray
    chosen: dict  # the setting the inner tuning picked
    inner_mean: float | None
    inner_sd: float | None
    score: float  # main metric on the outer test fold
    metrics: dict
    inner: list[PointResult]

    def to_dict(self) -> dict:
        return {"fold": self.fold + 1, "n_train": int(len(self.train_rows)), "n_test": int(len(self.test_rows)),
                "chosen": self.chosen, "inner_mean": self.inner_mean, "inner_sd": self.inner_sd,
                "score": _finite(self.score), "metrics": self.metrics,
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

    @property
    def best(self) -> PointResult:
        return self.points[0]

    def nested_summary(self) -> dict | None:
        if self.nested is None:
            return None
        mean, sd = _mean_sd(o.score for o in self.nested)
        return {"mean": mean, "sd": sd, "folds": len(self.nested)}

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

    def results_frame(self):
        """The ranked points as a DataFrame, one row per point; with nested CV also one row per
        (outer fold, point) of the inner tunings, with the outer test score of the chosen one."""
        import pandas as pd

        def row(p: PointResult, **extra) -> dict:
            r = {**extra, "rank": p.rank}
            for k in self.space:
                v = p.setting[k]
                r[k] = ",".join(map(str, v)) if isinstance(v, list) else v
            r[f"mean_{self.metric}"] = p.mean
            r[f"sd_{self.metric}"] = p.sd
            for i, s in enumerate(p.scores):
                r[f"score_{i + 1}"] = _finite(s)
            r["seconds"] = round(p.seconds, 3)
            return r

        if self.nested is None:
            return pd.DataFrame([row(p) for p in self.points])
        # the tuning on all data first (scope "all"), then each outer fold's inner tuning
        rows = [{**row(p, scope="all"), "chosen": p.rank == 1, f"outer_{self.metric}": None} for p in self.points]
        for o in self.nested:
            for p in o.inner:
                chosen = p.setting == o.chosen
                rows.append({**row(p, scope=f"outer fold {o.fold + 1}"), "chosen": chosen,
                             f"outer_{self.metric}": _finite(o.score) if chosen else None})
        return pd.DataFrame(rows)


def _rank(points: list[PointResult], higher: bool) -> list[PointResult]:
    """Best first: by mean score, then smaller SD, then grid order; undefined scores last."""
    def key(p: PointResult):
        if p.mean is None:
            return (1, 0.0, 0.0, p.index)
        return (0, -p.mean if higher else p.mean, p.sd or 0.0, p.index)

    ranked = sorted(points, key=key)
    for i, p in enumerate(ranked, 1):
        p.rank = i
    return ranked


def _collect(points: list[tuple[int, dict]], scores: list[FoldScore], per_point: int, higher: bool) -> list[PointResult]:
    out = []
    for j, (index, setting) in enumerate(points):
        chunk = scores[j * per_point : (j + 1) * per_point]
        mean, sd = _mean_sd(s.score for s in chunk)
        out.append(PointResult(index=index, setting=setting, scores=[s.score for s in chunk], mean=mean, sd=sd,
                               seconds=sum(s.seconds for s in chunk), epochs=[s.best_epoch for s in chunk]))
    return _rank(out, higher)


def tune(ds: data.Dataset, options: TrainOptions, space: dict[str, list], folds: int = 5, repeats: int = 1,
         n_random: int | None = None, nested: bool = False, outer_folds: int = 5, plan: Plan = Plan(),
         progress: Callable[[int, int], None] | None = None) -> TuneResult:
    """Score every chosen grid point by grouped CV on ``ds`` and rank them.

    ``nested=True`` also estimates how well the tuning itself generalises: an outer grouped CV
    (``outer_folds``) whose every training part is tuned by its own inner grouped CV (``folds``);
    the best inner setting is refitted on the outer training part and scored on the outer test
    fold, which the inner tuning never sees. The ranked table (and the setting to refit) always
    comes from tuning on all of ``ds``."""
    _check_options(options)
    if ds.y is None or ds.task is None:
        raise DataError("the table has no target column; name it with --target")
    started = time.perf_counter()
    points, notes = choose_points(space, n_random, options.seed)
    metric = metrics.main_metric_name(ds.task)
    higher = _higher_is_better(metric)

    fold_list, strategy = make_folds(ds, folds, repeats, options.seed)
    tasks = [(fit_and_score, (ds, f.train, f.test, _with_seed(_apply(options, setting), f.repeat),
                              ("grid", j, f.repeat, f.fold)))
             for j, (_, setting) in enumerate(points) for f in fold_list]
    per_point = len(fold_list)

    outer: list[Fold] = []
    inner_slices: list[tuple[int, int]] = []
    outer_strategy = None
    if nested:
        outer, outer_strategy = make_folds(ds, outer_folds, 1, options.seed, flag="--outer-folds")
        for o in outer:
            # inner folds are built on the outer training rows only, then mapped back to ds's rows
            inner_ds = ds.subset(o.train)
            try:
                inner_folds, _ = make_folds(inner_ds, folds, repeats, options.seed)
            except DataError as exc:
                raise DataError(f"outer fold {o.fold + 1} (--nested): {exc}") from None
            first = len(tasks)
            for j, (_, setting) in enumerate(points):
                for f in inner_folds:
                    tasks.append((fit_and_score, (ds, o.train[f.train], o.train[f.test],
                                                  _with_seed(_apply(options, setting), f.repeat),
                                                  ("inner", o.fold, j, f.repeat, f.fold))))
            inner_slices.append((first, len(inner_folds)))

    n_outer = len(outer)
    total = len(tasks) + n_outer

    def stage_progress(offset):
        return None if progress is None else (lambda done, _total: progress(offset + done, total))

    scores = run(tasks, plan, shared=[ds], progress=stage_progress(0))
    ranked = _collect(points, scores[:len(points) * per_point], per_point, higher)

    nested_result = None
    if nested:
        chosen_per_fold, inner_per_fold = [], []
        for o, (first, per) in zip(outer, inner_slices):
            inner = _collect(points, scores[first : first + len(points) * per], per, higher)
            inner_per_fold.append(inner)
            chosen_per_fold.append(inner[0])
        refits = [(fit_and_score, (ds, o.train, o.test, _apply(options, best.setting), ("outer", o.fold, 0, o.fold)))
                  for o, best in zip(outer, chosen_per_fold)]
        outer_scores = run(refits, plan, shared=[ds], progress=stage_progress(len(tasks)))
        nested_result = [
            OuterFold(fold=o.fold, train_rows=o.train, test_rows=o.test, chosen=best.setting, inner_mean=best.mean,
                      inner_sd=best.sd, score=s.score, metrics=s.metrics, inner=inner)
            for o, best, s, inner in zip(outer, chosen_per_fold, outer_scores, inner_per_fold)
        ]
    warn = _fold_warnings(ds, fold_list, scores[:len(points) * per_point])
    return TuneResult(task=ds.task, metric=metric, higher_is_better=higher, space=space, grid_size=grid_size(space),
                      strategy=strategy, folds=folds, repeats=repeats, points=ranked, nested=nested_result,
                      nested_strategy=outer_strategy, seconds=time.perf_counter() - started, notes=notes,
                      warnings=warn)


def best_options(options: TrainOptions, result: TuneResult) -> TrainOptions:
    """``options`` with the best setting applied (what ``--refit`` trains)."""
    return _apply(options, result.best.setting)
