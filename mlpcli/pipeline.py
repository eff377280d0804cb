"""What ``mlpcli train`` does, as one library function a notebook can call.

    table ─read─▶ Dataset ─split by group─▶ train / validation
          ─Preprocessor.fit(train rows)─▶ arrays ─training.fit─▶ best network
          ─▶ Model (preprocessing, network, labels, config, history, split, provenance)

Saving is left to the caller (``model_io.save``), so a notebook can inspect before writing.
"""

from __future__ import annotations

import datetime as _dt
import platform
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import __version__, data, metrics
from .config import TrainOptions
from .engine import MLP
from .engine import losses as loss_mod
from .errors import ConfigError, DataError
from .model_io import Model
from .training import FitResult, fit

__all__ = ["TrainOutcome", "LossSetup", "Split", "FittedRun", "train", "load_dataset", "split_dataset",
           "fit_datasets", "train_dataset", "build_loss", "baseline_output", "align_features"]

# A median per-feature skewness above this on non-negative data looks like raw counts or TPM,
# for which a log transform is the usual first step (the sample data sits near 2.8).
LOG1P_HINT_SKEW = 1.0

# The prior is clipped away from 0 and 1 before taking logs: a class absent from training would
# otherwise give an infinite baseline logit.
_PRIOR_FLOOR = 1e-6


@dataclass
class TrainOutcome:
    model: Model
    fit: FitResult
    split: data.SplitSummary
    val_metrics: dict
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    diagnosis: object | None = None  # diagnosis.Diagnosis when the run is long enough to read


def load_dataset(path, options: TrainOptions, stdin=None) -> tuple[data.Dataset, list[str]]:
    """Read and validate the training table; returns the dataset and the role notes."""
    frame = data.read_table(path, features_in_rows=options.features_in_rows, stdin=stdin)
    roles, notes = data.resolve_roles(
        frame.columns, target=options.target, group=options.group, no_group=options.no_group,
        id=options.id, batch=options.batch, drop=options.drop,
    )
    ds = data.Dataset.from_frame(frame, roles, task=options.task)
    return ds, notes


def align_features(ds: data.Dataset, feature_names: list[str], source: str) -> data.Dataset:
    """Reorder ``ds``'s feature columns to ``feature_names``; missing ones are an error."""
    if list(ds.feature_names) == list(feature_names):
        return ds
    index = {n: j for j, n in enumerate(ds.feature_names)}
    missing = [n for n in feature_names if n not in index]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        raise DataError(f"{source} lacks {len(missing)} feature column(s) of the training table: {shown}")
    cols = np.array([index[n] for n in feature_names])
    ds.X = ds.X[:, cols]
    ds.feature_names = list(feature_names)
    return ds


def _resolve_loss_name(options: TrainOptions, task: str) -> str:
    if options.loss != "auto":
        return options.loss
    return {"multiclass": "ce", "binary": "bce", "multilabel": "bce", "regression": "mse"}[task]


@dataclass
class LossSetup:
    """The loss for a task, with how targets and class weights are fed to it.

    Class weights enter where the notes put them: in CE's per-class factor, in BCE's positive and
    negative weights, and as per-sample weights for focal and hinge.
    """

    loss: loss_mod.Loss
    task: str
    n_outputs: int
    class_weight: np.ndarray | None  # (K,) per class, or (2, k) negative/positive per label

    def targets(self, y: np.ndarray) -> np.ndarray:
        """Dataset targets shaped as the loss expects: indices for CE, 0/1 columns otherwise."""
        if self.loss.y_kind == "index":
            return y.astype(np.int64)
        if self.task == "binary":
            return y.reshape(-1, 1).astype(np.float64)
        return y.astype(np.float64)

    def sample_weight(self, y: np.ndarray) -> np.ndarray | None:
        """Per-sample weights for losses without a class-weight parameter (focal, hinge)."""
        if self.class_weight is None or self.loss.name not in ("focal", "hinge"):
            return None
        if self.task == "binary":
            return self.class_weight[y.astype(int).reshape(-1)]
        Y = y.astype(np.float64)
        return (Y * self.class_weight[1] + (1 - Y) * self.class_weight[0]).mean(axis=1)


def build_loss(options: TrainOptions, ds: data.Dataset, y_train: np.ndarray) -> LossSetup:
    """Resolve ``--loss auto``, check it fits the task, and fold in the imbalance options."""
    task, name = ds.task, _resolve_loss_name(options, ds.task)
    n_classes = len(ds.classes)
    if task == "regression" and name not in ("mse", "mae", "huber"):
        raise ConfigError(f"--loss {name} does not fit a regression target; use mse, mae or huber")
    if task != "regression" and name in ("mse", "mae", "huber"):
        raise ConfigError(f"--loss {name} is a regression loss; the task is {task} (use ce, bce, focal or hinge)")
    if task == "multiclass" and name in ("bce", "focal", "hinge"):
        raise ConfigError(f"--loss {name} needs a binary or multi-label target; the task is multiclass with {n_classes} classes (use ce)")
    if task == "multilabel" and name == "ce":
        raise ConfigError("--loss ce needs one class per sample; the task is multi-label (use bce or focal)")
    if options.label_smoothing and name != "ce":
        raise ConfigError(f"--label-smoothing applies to --loss ce only (the loss is {name})")
    if task == "regression" and options.class_weight not in (None, "none"):
        raise ConfigError("--class-weight needs a classification target; the task is regression")
    if options.pos_weight != 1.0 and name != "bce":
        raise ConfigError(f"--pos-weight applies to --loss bce only (the loss is {name})")
    if options.focal_alpha is not None and name != "focal":
        raise ConfigError(f"--focal-alpha applies to --loss focal only (the loss is {name})")

    if task == "multilabel":
        cw = _multilabel_weights(options.class_weight, y_train, ds.classes)
    elif task in ("binary", "multiclass"):
        cw = data.class_weights(y_train, n_classes, options.class_weight, ds.classes)
    else:
        cw = None

    if name == "ce":
        return LossSetup(loss_mod.get("ce", label_smoothing=options.label_smoothing, class_weight=cw), task, n_classes, cw)
    if task == "regression":
        return LossSetup(loss_mod.get(name), task, y_train.shape[1], None)
    n_out = 1 if task == "binary" else y_train.shape[1]
    if name == "bce":
        pos, neg = options.pos_weight, 1.0
        if cw is not None:  # binary: (neg class, pos class); multi-label: (2, k) rows neg, pos
            neg, pos = cw[0], cw[1] * options.pos_weight
        loss = loss_mod.get("bce", pos_weight=pos, neg_weight=neg)
    elif name == "focal":
        loss = loss_mod.get("focal", gamma=options.focal_gamma, alpha=options.focal_alpha)
    else:
        loss = loss_mod.get("hinge")
    return LossSetup(loss, task, n_out, cw)


def _multilabel_weights(spec, Y: np.ndarray, labels: list) -> np.ndarray | None:
    """Per-label (negative, positive) weights for multi-label BCE: ``balanced`` gives each label
    n / (2 n_pos) and n / (2 n_neg) like scikit-learn; ``"L1=3,L2=2"`` sets positive weights."""
    if spec in (None, "none"):
        return None
    k = Y.shape[1]
    if spec == "balanced":
        pos = Y.sum(axis=0)
        neg = Y.shape[0] - pos
        if np.any(pos == 0) or np.any(neg == 0):
            bad = labels[int(np.flatnonzero((pos == 0) | (neg == 0))[0])]
            raise DataError(f"--class-weight balanced: label {bad!r} has only one value in the training rows")
        return np.stack([Y.shape[0] / (2 * neg), Y.shape[0] / (2 * pos)])
    weights = np.ones((2, k))
    for item in str(spec).split(","):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in [str(l) for l in labels]:
            raise ConfigError(f"--class-weight: unknown label {name!r}; labels are {', '.join(map(str, labels))}")
        try:
            weights[1, [str(l) for l in labels].index(name)] = float(value)
        except ValueError:
            raise ConfigError(f"--class-weight: weight for {name!r} is not a number: {value!r}") from None
    if np.any(weights <= 0):
        raise ConfigError("--class-weight: weights must be > 0")
    return weights


def baseline_output(loss: loss_mod.Loss, y: np.ndarray, n_classes: int) -> np.ndarray:
    """The constant raw output of a model that always predicts the training prior (or mean)."""
    if loss.y_kind == "index":
        prior = np.bincount(y.astype(int), minlength=n_classes) / len(y)
        return np.log(np.clip(prior, _PRIOR_FLOOR, None))
    if loss.output_activation == "sigmoid":
        p = np.clip(y.reshape(len(y), -1).mean(axis=0), _PRIOR_FLOOR, 1 - _PRIOR_FLOOR)
        return np.log(p / (1 - p))
    return y.reshape(len(y), -1).mean(axis=0)


@dataclass
class Split:
    """Where a run's training and validation rows come from."""

    train_rows: np.ndarray  # rows of the training table used for training (all of them with --val-data)
    val: data.Dataset
    val_rows: np.ndarray | None  # rows of the training table held out (None with --val-data)
    summary: data.SplitSummary


def split_dataset(ds: data.Dataset, options: TrainOptions) -> Split:
    """The grouped, stratified split of ``ds`` (``--val-size``), or the explicit ``--val-data`` table
    read with the same roles, its features reordered to the training table's."""
    if not options.val_data:
        tr, va, summary = data.split(ds, options.val_size, options.seed)
        return Split(tr, ds.subset(va), va, summary)
    frame = data.read_table(options.val_data, features_in_rows=options.features_in_rows)
    roles, _ = data.resolve_roles(
        frame.columns, target=options.target, group=ds.roles.group if ds.roles else None,
        no_group=ds.roles is None or ds.roles.group is None, id=ds.roles.id if ds.roles else None,
        batch=ds.roles.batch if ds.roles else None, drop=options.drop,
    )
    val_ds = data.Dataset.from_frame(frame, roles, task=ds.task,
                                     classes=ds.classes if ds.task in data.CLASSIFICATION_TASKS else None)
    val_ds = align_features(val_ds, ds.feature_names, f"--val-data {options.val_data}")
    summary = data.summarize_split(ds, val_ds, f"explicit validation table ({options.val_data})")
    return Split(np.arange(ds.n_samples), val_ds, None, summary)


@dataclass
class FittedRun:
    """A network trained on one training set, with everything needed to score or save it."""

    network: MLP
    preprocessor: data.Preprocessor
    setup: LossSetup
    result: FitResult
    target_scaling: dict | None  # regression: the mean and SD the targets were standardised with
    X_train: np.ndarray  # (n_train, d_kept), preprocessed
    X_val: np.ndarray
    y_train: np.ndarray  # targets as the loss sees them (standardised for regression)
    y_val: np.ndarray
    sample_weight: np.ndarray | None
    val_sample_weight: np.ndarray | None


def fit_datasets(train_ds: data.Dataset, val_ds: data.Dataset, options: TrainOptions,
                 progress: Callable[[dict], None] | None = None) -> FittedRun:
    """Preprocessing fitted on ``train_ds`` only, the loss, a fresh network, and ``training.fit``."""
    pre = data.Preprocessor(data.PreprocessConfig(
        log1p=options.log1p, top_var=options.top_var, standardize=options.standardize, impute=options.impute))
    pre.fit(train_ds.X, train_ds.feature_names)
    X_train = pre.transform(train_ds.X, dtype=options.dtype)  # (n_train, d_kept)
    X_val = pre.transform(val_ds.X, dtype=options.dtype)  # (n_val, d_kept)

    setup = build_loss(options, train_ds, train_ds.y)
    y_train, y_val = setup.targets(train_ds.y), setup.targets(val_ds.y)
    # Validation is weighted like training so that the two curves measure the same thing.
    sw, sw_val = setup.sample_weight(train_ds.y), setup.sample_weight(val_ds.y)

    target_scaling = None
    if train_ds.task == "regression":  # train on standardised targets; predictions are scaled back
        mu, sd = y_train.mean(axis=0), y_train.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        target_scaling = {"mean": mu.tolist(), "sd": sd.tolist()}
        y_train, y_val = (y_train - mu) / sd, (y_val - mu) / sd

    n_classes = len(train_ds.classes)
    net = MLP(X_train.shape[1], options.hidden, setup.n_outputs, activation=options.activation,
              dropout=options.dropout, batchnorm=options.batchnorm, seed=options.seed, dtype=options.dtype)
    result = fit(net, setup.loss, X_train, y_train, X_val, y_val, options.fit_config(), sample_weight=sw,
                 val_sample_weight=sw_val, metric=metrics.main_metric_from_outputs(train_ds.task, n_classes),
                 baseline_output=baseline_output(setup.loss, y_train, n_classes), callback=progress)
    return FittedRun(net, pre, setup, result, target_scaling, X_train, X_val, y_train, y_val, sw, sw_val)


def train(path, options: TrainOptions, progress: Callable[[dict], None] | None = None, stdin=None) -> TrainOutcome:
    """Train a model on the table at ``path`` with ``options``; see the module docstring."""
    options.validate()
    ds, notes = load_dataset(path, options, stdin=stdin)
    return train_dataset(ds, options, progress=progress, notes=notes, source=path)


def train_dataset(ds: data.Dataset, options: TrainOptions, progress: Callable[[dict], None] | None = None,
                  notes: list[str] | None = None, source: str = "(in memory)") -> TrainOutcome:
    """Train on an in-memory Dataset exactly as ``mlpcli train`` does on a table."""
    options.validate()
    notes = list(notes or []) + ds.notes
    warnings = list(ds.warnings)
    if ds.y is None or ds.task is None:
        raise DataError("the table has no target column; name it with --target")
    split = split_dataset(ds, options)
    train_ds, val_ds, summary = ds.subset(split.train_rows), split.val, split.summary
    warnings += summary.warnings
    if not options.log1p:
        hint = log1p_hint(train_ds.X)
        if hint:
            warnings.append(hint)

    run = fit_datasets(train_ds, val_ds, options, progress)
    warnings += run.preprocessor.warnings
    result, loss = run.result, run.setup.loss
    model = Model(
        network=run.network, preprocessor=run.preprocessor, task=ds.task, classes=list(ds.classes),
        feature_names=list(ds.feature_names), target_names=list(ds.target_names),
        loss={"name": loss.name, "params": loss.params()},
        roles={"target": list(options.target), "group": ds.roles.group if ds.roles else None,
               "id": ds.roles.id if ds.roles else None, "batch": ds.roles.batch if ds.roles else None,
               "drop": list(options.drop)},
        config=options.to_dict(), history=result.history, split=_asdict(summary), baseline=result.baseline,
        fit={"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss, "epochs_run": result.epochs_run,
             "stopped_early": result.stopped_early, "interrupted": result.interrupted, "seconds": result.seconds,
             "metric": metrics.main_metric_name(ds.task)},
        provenance=_provenance(source, ds),
        extra={"target_scaling": run.target_scaling} if run.target_scaling else {},
    )
    proba = model.predict_output(val_ds.X)
    val_metrics = metrics.compute(ds.task, val_ds.y, _as_task_proba(ds.task, proba), ds.classes)
    diagnosis = _diagnose(result, options)
    if diagnosis is not None:
        model.extra["diagnosis"] = diagnosis.to_dict()
    return TrainOutcome(model=model, fit=result, split=summary, val_metrics=val_metrics, notes=notes,
                        warnings=warnings, diagnosis=diagnosis)


def log1p_hint(X: np.ndarray) -> str | None:
    """A suggestion to use --log1p when the features look like untransformed expression values:
    all non-negative and strongly right-skewed (median per-feature skewness)."""
    finite = X[np.isfinite(X).all(axis=1)] if np.isnan(X).any() else X
    if finite.shape[0] < 3 or finite.min() < 0:
        return None
    centred = finite - finite.mean(axis=0)
    sd = centred.std(axis=0)
    ok = sd > 0
    if not ok.any():
        return None
    skew = (centred[:, ok] ** 3).mean(axis=0) / sd[ok] ** 3
    median = float(np.median(skew))
    if median <= LOG1P_HINT_SKEW:
        return None
    return (f"the features are non-negative and right-skewed (median skewness {median:.1f}), as raw counts or "
            "TPM are; consider --log1p, the usual transform for such values")


def _as_task_proba(task: str, proba: np.ndarray) -> np.ndarray:
    """Binary models with a 2-column softmax (``--loss ce``) report P(positive) like sigmoid ones."""
    if task == "binary" and proba.shape[1] == 2:
        return proba[:, 1:2]
    return proba


def _diagnose(result: FitResult, options: TrainOptions):
    from .diagnosis import diagnose

    h = result.history
    if len(h) < 3:
        return None
    return diagnose(
        [r["train_loss"] for r in h], [r["val_loss"] for r in h],
        baseline=result.baseline.get("val_loss"), train_eval_loss=[r["train_loss_eval"] for r in h],
        stochastic_regularisation=options.dropout > 0 or options.augment_noise > 0,
    )


def _asdict(summary) -> dict:
    from dataclasses import asdict

    return asdict(summary)


def _provenance(path, ds: data.Dataset) -> dict:
    import pandas
    import sklearn

    return {
        "data_file": str(path),
        "data_sha256": data.data_checksum(ds.X, ds.y),
        "n_samples": int(ds.n_samples),
        "n_features": int(ds.n_features),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"mlpcli": __version__, "numpy": np.__version__, "pandas": pandas.__version__,
                     "scikit-learn": sklearn.__version__, "python": platform.python_version()},
    }
