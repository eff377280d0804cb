"""One fitted run: a fresh network trained on one training set and early-stopped on one validation set.

    train rows ─Preprocessor.fit─▶ arrays ─build_loss─▶ loss, targets, weights ─training.fit─▶ FittedRun

``fit_run`` is the single place a network is trained from datasets and options: the hold-out run of
``train --folds 1``, each member of a cross-fitted ensemble, each fold of ``cv`` and ``tune``, each size of
a learning curve, and (with no validation set) a refit on all rows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .. import auto_defaults, config, data, metrics
from ..config import AUTO, TrainOptions
from ..centred_rows import CentredRows
from ..engine import MLP
from ..engine import losses as loss_mod
from ..errors import DataError, OptionError
from ..training import FitResult, fit, fit_memory

__all__ = ["LossSetup", "build_loss", "label_loss_weights", "baseline_output", "FittedRun", "fit_run",
           "preprocess_config", "resolve_log1p", "PreparedFold", "prepare_fold", "FoldCache", "worker_copy_bytes",
           "fewer_at_once_note", "SINGLE_RUN_HIDDEN", "check_memory"]

# The prior is clipped away from 0 and 1 before taking logs: a class absent from training would
# otherwise give an infinite baseline logit.
_PRIOR_FLOOR = 1e-6

# What ``hidden auto`` means where there is no portfolio to choose from (a single run in a learning curve
# or a tuning fold): one hidden layer, the portfolio's non-linear member.
SINGLE_RUN_HIDDEN = [128]


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
        """Per-sample weights for losses without a class-weight parameter (focal, hinge) on a binary target, the
        weight of each sample's class (``build_loss`` refuses class weights for them on a multi-label target:
        one weight per sample cannot weigh each label apart)."""
        if self.class_weight is None or self.loss.name not in ("focal", "hinge") or self.task != "binary":
            return None
        return self.class_weight[y.astype(int).reshape(-1)]


def class_loss_weights(options: TrainOptions, ds: data.Dataset) -> np.ndarray | None:
    """(k,) the weight the training loss gives each class of a binary or multiclass target, over all of ``ds``'s
    rows: the class weights (--class-weight), times for a binary BCE --pos-weight on the positive class and for
    focal loss its alpha (alpha on positives, 1 - alpha on negatives); ones without any. The network's
    probabilities follow the class shares times these weights, which is what the balanced decision rule must
    divide by (dividing by the raw shares corrected a class-weighted model twice: 211 of 300 samples called the
    rare class, 42 of them truly). None for other tasks."""
    if ds.task not in ("binary", "multiclass"):
        return None
    name, k = _resolve_loss_name(options, ds.task), len(ds.classes)
    w = np.ones(k)
    cw = data.class_weights(np.asarray(ds.y).reshape(-1).astype(np.int64), k, options.class_weight, ds.classes)
    if cw is not None:
        w = w * cw
    if ds.task == "binary" and name == "bce":
        w[1] *= options.pos_weight
    if ds.task == "binary" and name == "focal" and options.focal_alpha is not None:
        w *= np.array([1.0 - options.focal_alpha, options.focal_alpha])
    return w


def label_loss_weights(options: TrainOptions, ds: data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """((L,), (L,)) the weight the training loss gives each label's negatives and positives of a multi-label target,
    over all of ``ds``'s rows: --class-weight (per label), times bce's --pos-weight on positives or focal loss's
    alpha (alpha on positives, 1 - alpha on negatives); ones without any. Each label's probability follows its
    weighted share of positives, which the balanced decision rule's threshold must be (``class_loss_weights``)."""
    name = _resolve_loss_name(options, ds.task)
    Y = np.asarray(ds.y).reshape(ds.n_samples, -1)
    neg, pos = np.ones(Y.shape[1]), np.ones(Y.shape[1])
    cw = multilabel_weights(options.class_weight, Y, ds.classes)  # as build_loss weighed them (it checked them)
    if cw is not None:
        neg, pos = neg * cw[0], pos * cw[1]
    if name == "bce":
        pos = pos * options.pos_weight
    if name == "focal" and options.focal_alpha is not None:
        neg, pos = neg * (1.0 - options.focal_alpha), pos * options.focal_alpha
    return neg, pos


def build_loss(options: TrainOptions, ds: data.Dataset, y_train: np.ndarray) -> LossSetup:
    """Resolve ``--loss auto``, check it fits the task (an OptionError, a usage error, when it does not, as for any
    option the task cannot take), and fold in the imbalance options."""
    task, name = ds.task, _resolve_loss_name(options, ds.task)
    n_classes = len(ds.classes)
    if task == "regression" and name not in ("mse", "mae", "huber"):
        raise OptionError(f"--loss {name} does not fit a regression target; use mse, mae or huber")
    if task != "regression" and name in ("mse", "mae", "huber"):
        fits = {"multiclass": "ce", "multilabel": "bce, focal or hinge"}.get(task, "ce, bce, focal or hinge")
        raise OptionError(f"--loss {name} is a regression loss; the task is {task} (use {fits})")
    if task == "multiclass" and name in ("bce", "focal", "hinge"):
        raise OptionError(f"--loss {name} needs a binary or multi-label target; the task is multiclass with {n_classes} classes (use ce)")
    if task == "multilabel" and name == "ce":
        raise OptionError("--loss ce needs one class per sample; the task is multi-label (use bce or focal)")
    config.check_loss_options(options, name)
    if task == "regression" and options.class_weight not in (None, "none"):
        raise OptionError("--class-weight needs a classification target; the task is regression")
    if task == "multilabel" and name in ("focal", "hinge") and str(options.class_weight or "none").lower() != "none":
        # focal and hinge take one weight per sample: a label's own weights were averaged over the labels
        raise OptionError(f"--class-weight on a multi-label target weighs each label's positives and negatives apart, "
                          f"which --loss bce does; --loss {name} takes one weight per sample (leave out --class-weight, "
                          "or use --loss bce)")

    if task == "multilabel":
        cw = multilabel_weights(options.class_weight, y_train, ds.classes)
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


def multilabel_weights(spec, Y: np.ndarray, labels: list) -> np.ndarray | None:
    """Per-label (negative, positive) weights for multi-label BCE: ``balanced`` gives each label
    n / (2 n_pos) and n / (2 n_neg) like scikit-learn; ``"L1=3,L2=2"`` sets positive weights.

    The keywords and LABEL=WEIGHT pairs are read as for a class target (``data.class_weights``): any letter
    case, and a label named twice, an infinite or NaN weight or a stray comma is an error naming
    --class-weight (a label named twice used to take its last weight without a word, and ``inf`` reached
    the loss as "bce pos_weight must be a positive number")."""
    from ..data.weights import explicit_weights

    text = "none" if spec is None else str(spec).strip()
    if text.lower() in ("", "none"):
        return None
    k = Y.shape[1]
    if text.lower() == "balanced":
        pos = Y.sum(axis=0)
        neg = Y.shape[0] - pos
        if np.any(pos == 0) or np.any(neg == 0):
            bad = labels[int(np.flatnonzero((pos == 0) | (neg == 0))[0])]
            raise DataError(f"--class-weight balanced: label {bad!r} has only one value in the training rows")
        return np.stack([Y.shape[0] / (2 * neg), Y.shape[0] / (2 * pos)])
    weights = np.ones((2, k))
    weights[1] = explicit_weights(text, [str(label) for label in labels])  # positive weights, one per label
    return weights


def baseline_output(loss: loss_mod.Loss, y: np.ndarray, n_classes: int, sample_weight: np.ndarray | None = None,
                    weighted: bool = False) -> np.ndarray:
    """The constant raw output of a model that always predicts the training prior (or mean). ``weighted``: the
    prior as the loss weighs the rows (``sample_weight`` (n,): class weights and the caller's; a BCE's
    pos_weight / neg_weight), the best constant under that loss — the no-skill reference the learning curves are
    read against: under --class-weight balanced the unweighted prior of a class of 8 % scored 1.29, and a run
    worse than predicting 0.5 for everyone (0.74 against ln 2 = 0.69) was read as having learned."""
    w = np.ones(len(y)) if sample_weight is None or not weighted else np.asarray(sample_weight, dtype=np.float64)
    if loss.y_kind == "index":
        mass = np.bincount(y.astype(int), weights=w, minlength=n_classes)
        prior = mass / max(mass.sum(), np.finfo(np.float64).tiny)
        return np.log(np.clip(prior, _PRIOR_FLOOR, None))
    if loss.output_activation == "sigmoid":
        Y = y.reshape(len(y), -1)
        pos = (w[:, None] * Y).sum(axis=0)
        neg = (w[:, None] * (1.0 - Y)).sum(axis=0)
        if weighted:
            pos = pos * np.asarray(getattr(loss, "pos_weight", 1.0), dtype=np.float64)
            neg = neg * np.asarray(getattr(loss, "neg_weight", 1.0), dtype=np.float64)
        p = np.clip(pos / np.maximum(pos + neg, np.finfo(np.float64).tiny), _PRIOR_FLOOR, 1 - _PRIOR_FLOOR)
        return np.log(p / (1 - p))
    return y.reshape(len(y), -1).mean(axis=0)


def start_at_prior(net: MLP, loss: loss_mod.Loss, y: np.ndarray) -> None:
    """For a multi-label network (several sigmoid outputs): each output's bias starts at its label's training
    log-odds (``baseline_output``), not at 0 (p = 0.5). A rare label's output otherwise had to walk its bias to
    about -3 by itself: a softmax regression at lr 1e-3 ended its 200 epochs at a mean probability of 0.175 for a
    label of 4 % prevalence (one temperature for every label cannot correct one label's offset), and a label never
    positive in training got 0.10-0.12 for every sample."""
    if loss.output_activation != "sigmoid" or net.n_outputs < 2:
        return
    bias = net.parameters()[f"dense{len(net.hidden)}.b"]
    bias[...] = baseline_output(loss, y, net.n_outputs)


@dataclass
class FittedRun:
    """A network trained on one training set, with everything needed to score or save it."""

    network: MLP
    preprocessor: data.Preprocessor
    setup: LossSetup
    result: FitResult
    target_scaling: dict | None  # regression: the mean and SD the targets were standardised with
    X_train: np.ndarray | None  # (n_train, d_kept), preprocessed; None once let go (without_data)
    X_val: np.ndarray | None  # None for a refit without validation
    y_train: np.ndarray  # targets as the loss sees them (standardised for regression)
    y_val: np.ndarray | None
    sample_weight: np.ndarray | None
    val_sample_weight: np.ndarray | None
    options: TrainOptions  # as resolved for this run (batch size, epochs, L2 made concrete)
    # the validation rows against the training rows (``predict.shift.preprocessed_shift``): "shifted" (more than
    # SHIFT_FRACTION of the features beyond the mean test's bar), that share, the most shifted; None without them
    val_shift: dict | None = None

    def prepared(self) -> PreparedFold:
        """Its preprocessing and preprocessed rows, for another candidate trained on the same rows (``fit_run``)."""
        return PreparedFold(self.preprocessor, self.X_train, self.X_val, self.val_shift)

    def without_data(self) -> "FittedRun":
        """This run without its preprocessed rows: an ensemble keeps its members' networks, not a copy of
        the data for each of them (nor sends them back from worker processes)."""
        return replace(self, X_train=None, X_val=None)


@dataclass
class PreparedFold:
    """One training / validation split's rows preprocessed, for every candidate of the portfolio that trains on it
    (their options differ in the network and its training only, not in the preprocessing): ``fit_run``'s
    ``prepared``. An ensemble's candidates share their fold's (25 fits of 5 candidates x 5 folds: 5 preprocessings,
    not 25): fold by fold in one process, through a ``FoldCache`` in each worker process."""

    preprocessor: data.Preprocessor  # fitted on the training rows
    X_train: np.ndarray  # (n_train, d_kept) in the options' dtype, C order (or CSR for sparse input)
    X_val: np.ndarray | None  # (n_val, d_kept); None for a refit without validation rows
    val_shift: dict | None = None  # ``_val_shift`` of the validation rows, once computed

    @property
    def nbytes(self) -> int:
        return sum(_array_bytes(X) for X in (self.X_train, self.X_val) if X is not None)

    def applies_to(self, train_ds: data.Dataset, options: TrainOptions) -> bool:
        """Whether these are ``train_ds``'s rows preprocessed as ``options`` (log1p resolved) say."""
        if self.X_train is None or self.X_train.shape[0] != train_ds.n_samples:
            return False
        log1p, _ = resolve_log1p(options, train_ds.X) if options.log1p == AUTO else (bool(options.log1p), None)
        return (self.preprocessor.config == preprocess_config(options, log1p)
                and self.X_train.dtype == np.dtype(options.dtype))

    def shift(self, val_ds: data.Dataset | None) -> dict | None:
        """How the validation rows differ from the training rows (``_val_shift``), computed once."""
        if self.X_val is None or val_ds is None:
            return None
        if self.val_shift is None:
            self.val_shift = _val_shift(self.preprocessor, self.X_val, val_ds)
        return self.val_shift


def _array_bytes(X) -> int:
    """Bytes of a dense array, of a CSR matrix's three arrays, or of sparse rows centred as they are densified
    (``CentredRows``: its matrix and its offset)."""
    if isinstance(X, CentredRows):
        return _array_bytes(X.matrix) + int(X.offset.nbytes)
    if data.is_sparse(X):
        return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)
    return int(X.nbytes)


def prepare_fold(train_ds: data.Dataset, val_ds: data.Dataset | None, options: TrainOptions) -> PreparedFold:
    """The preprocessing of ``options`` fitted on ``train_ds`` (log1p "auto" resolved on its rows) and applied to
    both datasets' rows."""
    log1p, _ = resolve_log1p(options, train_ds.X)
    pre = data.Preprocessor(preprocess_config(options, log1p))
    # C order: what training works on (it would copy anything else, and keep the copy as long as the
    # network lives, its first layer holding on to its last input)
    X_train = pre.fit_transform(train_ds.X, train_ds.feature_names, dtype=options.dtype, order="C")  # (n_train, d_kept)
    # sparse input stays sparse (CSR) through training, densified a minibatch at a time
    X_val = None if val_ds is None else pre.transform(val_ds.X, dtype=options.dtype, order="C", sparse=True)  # (n_val, d_kept)
    return PreparedFold(pre, X_train, X_val)


class FoldCache:
    """Folds preprocessed once (``prepare_fold``) and kept for the portfolio's other candidates on the same rows, within
    a budget of bytes: ``get(k, make)`` returns fold ``k``'s, made by ``make()`` on first use. A fold that does not fit
    in what is left is made again each time it is asked for, and nothing is evicted to make room: a worker's tasks
    visit the folds in turn (1..K for each candidate), where evicting the oldest would miss every time; ``release``
    lets go of the folds no later task asks for."""

    def __init__(self, budget: int):
        self.budget = budget
        self.folds: dict[object, PreparedFold] = {}
        self.used = 0
        self._lock = threading.Lock()  # a Dask worker runs tasks in threads side by side

    def get(self, key, make: Callable[[], PreparedFold]) -> PreparedFold:
        with self._lock:
            fold = self.folds.get(key)
        if fold is None:
            fold = make()
            size = fold.nbytes
            with self._lock:
                if key not in self.folds and self.used + size <= self.budget:
                    self.folds[key], self.used = fold, self.used + size
        return fold

    def release(self, keys) -> None:
        """Let go of the folds ``keys`` (those kept; no later ``get`` asks for them)."""
        with self._lock:
            for key in keys:
                fold = self.folds.pop(key, None)
                if fold is not None:
                    self.used -= fold.nbytes


def worker_copy_bytes(ds: data.Dataset, n_rows: int, options: TrainOptions) -> int:
    """Bytes of rows a worker process training on ``n_rows`` rows of ``ds`` holds beside this one
    (``parallel.fits_plan``): the matrix it is sent and those rows preprocessed (dense, at most --top-var columns, in
    --dtype)."""
    raw = _array_bytes(ds.X)
    n_inputs = min(ds.n_features, options.top_var or ds.n_features)
    return int(raw + n_rows * n_inputs * np.dtype(options.dtype).itemsize)


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def check_fits_memory(ds: data.Dataset, fits, plan, n_tasks: int):
    """Refuse, before any fit starts, fits that cannot fit in this machine's memory side by side; returns the plan
    to run them on.

    fits: (options with concrete hidden widths, training rows) of every network the tasks train; each is
    checked by ``check_memory`` times the fits that run at once here (``plan``'s local workers, at most
    `n_tasks`): an OptionError (usage error) naming --hidden, --batch-size or --n-jobs. A plan not asked for
    (``plan.auto``, the commands' default) runs fewer side by side instead, as many as the memory holds (at least
    one): the returned plan's ``n_jobs``. Every fit checks its own network again when it starts; a Dask cluster's
    workers have their own memory, so only that check applies there."""
    from ..parallel import local_workers
    from ..resources import available_memory

    if plan is None or plan.backend == "dask":
        return plan
    processes = local_workers(plan.n_jobs, max(1, n_tasks))
    available = available_memory()
    n_outputs = max(1, len(ds.classes))
    checked = []
    for options, n_train in fits:
        n_inputs = min(ds.n_features, options.top_var or ds.n_features)
        checked.append((auto_defaults.resolve(options, n_train, n_inputs), n_inputs, n_train))
    if plan.auto and available is not None and processes > 1:
        largest = max((fit_memory_total(o, d, n_outputs, n) for o, d, n in checked), default=0)
        if largest * processes > available:
            processes = max(1, int(available // max(1, largest)))
            plan = replace(plan, n_jobs=processes)
    for options, n_inputs, n_train in checked:
        check_memory(options, n_inputs, n_outputs, n_train, processes=processes, available=available)
    return plan


def fewer_at_once_note(asked, given, n_tasks: int) -> list[str]:
    """A note when ``check_fits_memory`` gave the default plan ``asked`` fewer workers (``given``): the fits ran fewer
    side by side than the cores allow, for memory."""
    from ..parallel import local_workers

    before, after = local_workers(asked.n_jobs, max(1, n_tasks)), local_workers(given.n_jobs, max(1, n_tasks))
    if after >= before:
        return []
    at_once = "one at a time" if after == 1 else f"{after} at a time"
    return [f"the fits ran {at_once}, not {before}: more side by side would not fit in the memory available "
            "(--n-jobs N to choose)"]


def fit_memory_total(options: TrainOptions, n_inputs: int, n_outputs: int, n_rows: int) -> int:
    """``check_memory``'s estimate of one network's training, in bytes (``training.fit_memory``'s total)."""
    hidden, options = _sized(options)
    return int(fit_memory(n_inputs, hidden, n_outputs, options.fit_config(), n_rows, options.dtype,
                          options.batchnorm)["total"])


def _sized(options: TrainOptions) -> tuple[list[int], TrainOptions]:
    """(hidden widths, options) as the memory estimate reads resolved ``options``: input noise's SD and the learning
    rate, which take no memory, made concrete (its batch of noise is counted with the activations either way)."""
    hidden = [] if options.hidden == AUTO else list(options.hidden)
    if options.augment_noise == AUTO:  # its SD waits for the kept features
        options = replace(options, augment_noise=0.0)
    if options.lr == AUTO:  # so does the rate (``auto_defaults.auto_lr``)
        options = replace(options, lr=config.AUTO_LR_LINEAR)
    return hidden, options


def check_memory(options: TrainOptions, n_inputs: int, n_outputs: int, n_rows: int, processes: int = 1,
                 available: int | None = None) -> dict[str, int]:
    """Refuse, before anything is allocated, a network whose training cannot fit in this job's memory
    (``resources.available_memory``, or ``available`` bytes): an OptionError (a usage error) naming the option
    to change, with the figures. ``processes``: networks trained at once (member processes). ``options``
    must be resolved (``auto_defaults.resolve``). Returns ``training.fit_memory``'s estimate for one network."""
    from ..resources import available_memory

    hidden, options = _sized(options)
    need = fit_memory(n_inputs, hidden, n_outputs, options.fit_config(), n_rows, options.dtype, options.batchnorm)
    available = available_memory() if available is None else available
    if available is None or need["total"] * processes <= available:
        return need
    if need["total"] > available:
        smallest_batch = fit_memory(n_inputs, hidden, n_outputs, replace(options.fit_config(), batch_size=1), n_rows,
                                    options.dtype, options.batchnorm)
        if smallest_batch["total"] > available or options.batch_size <= 1:
            flag = f"--hidden {','.join(map(str, hidden))}" if hidden else f"{n_inputs:,} input features"
        else:  # the widths would fit with smaller batches
            flag = f"--batch-size {options.batch_size}"
        raise OptionError(f"{flag} needs ~{_gb(need['total'])} for the network with {n_inputs:,} inputs (weights, "
                          f"gradients, optimizer state, a batch's activations); {_gb(available)} available")
    raise OptionError(f"--n-jobs: {processes} networks trained at once need ~{_gb(need['total'] * processes)} "
                      f"(~{_gb(need['total'])} each); {_gb(available)} available; train fewer at once")


FAR_TARGET_SDS = 1e6  # a regression target this many training SDs from the training mean is a data error


def _check_target_range(z_val: np.ndarray, val_ds: data.Dataset) -> None:
    """Refuse validation targets ``z_val`` ((n_val,) or (n_val, n_targets), standardised by the training
    rows) that lie millions of training SDs away: an outlier such as 1e30 among values near 50 cannot
    be predicted, and its squared error overflows the loss."""
    z = np.abs(z_val.reshape(len(z_val), -1))
    if not (z > FAR_TARGET_SDS).any():
        return
    row, col = np.unravel_index(int(np.argmax(z)), z.shape)
    name = val_ds.target_names[col] if col < len(val_ds.target_names) else "target"
    sample = f"sample {val_ds.ids[row]}" if val_ds.ids is not None else f"a sample ({row + 1}th held out)"
    raise DataError(f"target '{name}': {sample} lies {z[row, col]:.3g} training SDs from the other samples' "
                    "mean; check it for an entry error (or log-transform the target)")


def preprocess_config(options: TrainOptions, log1p: bool) -> data.PreprocessConfig:
    return data.PreprocessConfig(log1p=log1p, top_var=options.top_var, standardize=options.standardize,
                                 impute=options.impute, scaling=options.scaling)


def resolve_log1p(options: TrainOptions, X: np.ndarray, notes: list[str] | None = None,
                  warnings: list[str] | None = None, names: list[str] | None = None) -> tuple[bool, float | None]:
    """(apply log1p?, the median skewness that made "auto" apply it): ``--log1p`` / ``--no-log1p`` win;
    "auto" applies it when the features look like raw counts or TPM (``data.looks_like_counts``; ``notes``
    gets a line when it declines values that look log-normalised already, ``warnings`` one when it declines
    counts for a few negative values, naming by ``names``, X's column names, the signed features among them)."""
    if options.log1p != AUTO:
        return bool(options.log1p), None
    skew = data.looks_like_counts(X, notes, warnings, names)
    return skew is not None, skew


def fit_run(train_ds: data.Dataset, val_ds: data.Dataset | None, options: TrainOptions,
            progress: Callable[[dict], None] | None = None, prepared: PreparedFold | None = None,
            schedule_epochs: int | None = None, val_parts: np.ndarray | None = None) -> FittedRun:
    """Preprocessing fitted on ``train_ds`` only, the loss, a fresh network, and ``training.fit``.

    ``options`` may hold "auto" values: they are resolved here for ``train_ds`` (``auto_defaults.resolve``;
    ``hidden auto`` is the portfolio's choice for a single run, ``SINGLE_RUN_HIDDEN``). With
    ``val_ds=None`` the network trains ``options.epochs`` epochs on every row (a refit).
    ``prepared``: the same rows preprocessed as ``options`` say (``prepare_fold``, or ``FittedRun.prepared`` of another
    candidate of the portfolio on them): used as they are when they apply (``PreparedFold.applies_to``).
    ``schedule_epochs``: the length of a cosine learning-rate schedule when it differs from the run's epochs
    (a refit replaying the members' schedule up to their best epoch). ``val_parts`` (n_val,) part numbers: the result
    also scores each validation row at the epoch the rows outside its part chose (``early_stopping.CrossedStopping``)."""
    if options.hidden == AUTO:
        options = replace(options, hidden=list(SINGLE_RUN_HIDDEN))
    options = auto_defaults.resolve(options, train_ds.n_samples, task=train_ds.task)
    hidden = options.hidden
    fold = prepared if prepared is not None and prepared.applies_to(train_ds, options) else None
    if fold is None:
        fold = prepare_fold(train_ds, val_ds, options)
    pre, X_train, X_val = fold.preprocessor, fold.X_train, fold.X_val
    options = auto_defaults.resolve(options, train_ds.n_samples, X_train.shape[1], train_ds.task)  # noise needs the kept width

    setup = build_loss(options, train_ds, train_ds.y)
    y_train = setup.targets(train_ds.y)
    y_val = None if val_ds is None else setup.targets(val_ds.y)
    # Validation is weighted like training so that the two curves measure the same thing.
    sw = setup.sample_weight(train_ds.y)
    sw_val = None if val_ds is None else setup.sample_weight(val_ds.y)

    target_scaling = None
    if train_ds.task == "regression":  # train on standardised targets; predictions are scaled back
        mu, sd = y_train.mean(axis=0), y_train.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        target_scaling = {"mean": mu.tolist(), "sd": sd.tolist()}
        y_train = (y_train - mu) / sd
        y_val = None if y_val is None else (y_val - mu) / sd
        if y_val is not None:
            _check_target_range(y_val, val_ds)

    n_classes = len(train_ds.classes)
    check_memory(options, X_train.shape[1], setup.n_outputs, X_train.shape[0])
    net = MLP(X_train.shape[1], hidden, setup.n_outputs, activation=options.activation,
              dropout=options.dropout, batchnorm=options.batchnorm, seed=options.seed, dtype=options.dtype)
    start_at_prior(net, setup.loss, y_train)
    result = fit(net, setup.loss, X_train, y_train, X_val, y_val, replace(options.fit_config(), schedule_epochs=schedule_epochs), sample_weight=sw,
                 val_sample_weight=sw_val, metric=metrics.main_metric_from_outputs(
                     train_ds.task, n_classes, None if target_scaling is None else np.asarray(target_scaling["sd"])),
                 baseline_output=baseline_output(setup.loss, y_train, n_classes, sw, weighted=True),
                 callback=progress, val_parts=val_parts)
    net.release_training_memory()  # its gradients and scratch: a member keeps its parameters (and, here, no rows)
    return FittedRun(net, pre, setup, result, target_scaling, X_train, X_val, y_train, y_val, sw, sw_val, options,
                     val_shift=fold.shift(val_ds))


def _val_shift(pre, X_val, val_ds: data.Dataset) -> dict:
    """How the validation rows (preprocessed) differ from the training rows, by the shift check of predict: a
    batch or site confined to the held-out patients makes the validation curve rise as overfitting does."""
    from ..predict.shift import SHIFT_FRACTION, preprocessed_shift

    report = preprocessed_shift(pre, X_val, val_ds.groups)
    # the means only: a batch moves them, while the spread test, on a fold of a few dozen rows, flags rare binary or
    # heavy-tailed features by chance (a fifth of them on two real tables of 250-280 samples, no batch in either)
    shifted = report.checked and report.fraction_mean_shifted > SHIFT_FRACTION
    return {"shifted": bool(shifted), "mean_shifted": report.fraction_mean_shifted,
            "features": int(len(report.features)),
            "most_shifted": [r["feature"] for r in report.most_shifted(5)] if report.checked else []}
