"""The fit loop: minibatches, penalties, learning-rate schedules, history; when to stop is ``early_stopping``'s.

Imports the engine and NumPy only (and numba, optionally, through ``fused``). It never prints: progress goes to a callback the caller
renders (the CLI draws a rich progress bar from it).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from . import interrupts
from .engine import MLP, optim
from .engine.losses import Loss
from .engine.layers import weight_grad_rows
from .engine.workspace import Workspace
from .early_stopping import CrossedStopping, DivergenceCheck, EarlyStopping
from .errors import TrainingError
from .centred_rows import CentredRows, dense_rows, is_sparse
from .fused import KernelSwitch


__all__ = ["FitConfig", "iterate_minibatches", "FitResult", "fit", "run_epoch", "evaluate_loss",
           "train_eval_rows", "train_eval_limit", "TRAIN_EVAL_ROWS", "TRAIN_EVAL_MIN_ROWS",
           "no_skill_loss", "fit_memory", "update_threads", "LR_SCHEDULES"]


LR_SCHEDULES = ("none", "plateau", "cosine")


# The full-batch optimizer (``engine.lbfgs``): each iteration is one "epoch" of the history, on every training row
LBFGS = "lbfgs"


PLATEAU_FACTOR = 0.5  # halve the learning rate on a plateau, the common default (Keras, PyTorch)


MIN_LR = 1e-6  # below this a plateau schedule stops cutting: steps would no longer move float32 weights


# The inference-mode training loss (history column train_loss_eval, and train_metric) is measured each epoch on
# a fixed, seeded subsample of at most this many training rows (class-stratified for class targets), drawn
# once per run: the same rows every epoch, so the curve is as smooth as the full one and only offset from it
# by the sampling error (about 2 % of the loss at 2,048 rows: SE ~ sd(l_i) / sqrt(2,048), and per-row log
# losses have an sd near their mean; 6 % at TRAIN_EVAL_MIN_ROWS). All rows up to that size. On
# workload A (8,000 training rows of 5,000 features, 512-256, batch 128, one BLAS thread, side by side in one
# process) the pass over all training rows took 0.45 s and made a fit epoch 1.92 s against 1.31 s for the
# bare training pass; on 2,048 rows it takes 0.12 s (the validation pass over 2,000 rows 0.11 s), and the
# epoch 1.55 s. What reads the column (diagnosis: "the inference-mode training loss is close to the
# validation loss"; divergence: the lower of the two training losses) compares it with levels 10-1000 x
# apart or with the noisy validation loss, far beyond a 2-6 % sampling error.
TRAIN_EVAL_ROWS = 2048
# ... and, with validation rows, on no more rows than the validation pass scores (at least this many): the
# curve it is read against has that sampling error already, and a member of the cross-fitted ensemble
# (validation rows a quarter of its training rows) spent a third of its fit on the two passes, inline in a
# worker process (the README job, 489 training rows of 2,000 genes, hidden 128: 36 % of a member's time; now
# 256 of them; the members' mean curves, which the diagnosis reads, average as many rows as the table
# holds). Side by side, four alternating pairs: the default ensemble 15.2 -> 14.8 s, `--folds 1` 6.1 -> 5.9 s
# (medians; the single run measures beside its epochs on the spare core, except where an epoch could stop).
TRAIN_EVAL_MIN_ROWS = 256


# Rows gathered at a time for that pass: a reused buffer of at most this many bytes (8 MiB: 419 rows of
# 5,000 float32 features), so the subsample is never copied whole.
EVAL_CHUNK_BYTES = 8 * 1024 * 1024


# Largest network whose epoch passes are measured beside the next epoch (a copy of it, its weights and
# gradients, is held for them): 8 million float32 parameters.
SHADOW_BYTES = 32 * 1024 * 1024


@dataclass
class FitConfig:
    """How to train; the defaults suit a few hundred omics samples."""

    optimizer: str = "adam"  # adam | adamw | sgd | lbfgs (full batch, to convergence: ``engine.lbfgs``)
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    weight_decay: float = 0.01  # adamw only: decoupled decay of the weights
    beta2: float = 0.999  # adam/adamw: decay of the second-moment estimate
    l1: float = 0.0  # lambda of the L1 penalty on weights
    l2: float = 0.0  # lambda of the L2 penalty on weights
    batch_size: int = 32
    epochs: int = 200
    patience: int | None = 20  # epochs without validation improvement before stopping (None: never)
    adaptive_patience: bool = False  # patience grows to patience + best_epoch / 2 (AutoGluon's rule): a run
    #                                  whose best epoch is late has shown it improves slowly
    growth_noise: float = 1.0  # ... counting only improvements beyond this many robust SDs of the validation
    #                             loss's epoch-to-epoch noise (EarlyStopping); 0: every improvement
    min_delta: float = 0.0  # an improvement must exceed this to reset patience
    lr_schedule: str = "none"  # none | plateau | cosine
    schedule_epochs: int | None = None  # the cosine schedule's length (None: epochs); a refit that stops at the
    #                                     members' best epoch anneals as they did, not down to MIN_LR
    augment_noise: float = 0.0  # SD of uniform zero-mean noise added to training inputs (standardised scale)
    clip_norm: float | None = None  # global gradient-norm clip
    seed: int = 0

    def validate(self) -> None:
        checks = [
            (self.optimizer in (*optim.OPTIMIZERS, LBFGS),
             f"optimizer must be one of {', '.join((*optim.OPTIMIZERS, LBFGS))}"),
            (self.optimizer != LBFGS or (self.l1 == 0 and self.augment_noise == 0 and self.lr_schedule == "none"),
             "lbfgs minimises a smooth, fixed objective: no l1 penalty, input noise or learning-rate schedule"),
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (0 < self.beta2 < 1, "beta2 must be in (0, 1)"),
            (self.weight_decay >= 0, "weight decay must be >= 0"),
            (self.l1 >= 0 and self.l2 >= 0, "l1 and l2 must be >= 0"),
            (self.batch_size >= 1, "batch size must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.patience is None or self.patience >= 1, "patience must be >= 1"),
            (self.min_delta >= 0, "min delta must be >= 0"),
            (self.growth_noise >= 0, "growth noise must be >= 0"),
            (self.lr_schedule in LR_SCHEDULES, f"lr schedule must be one of {', '.join(LR_SCHEDULES)}"),
            (self.augment_noise >= 0, "augment noise must be >= 0"),
            (self.clip_norm is None or self.clip_norm > 0, "clip norm must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class FitResult:
    history: list[dict]  # one dict per epoch
    best_epoch: int  # 1-based epoch whose weights were restored
    best_val_loss: float
    stopped_early: bool
    interrupted: bool
    baseline: dict  # loss of always predicting the training prior (or mean), on both sides
    epochs_run: int = 0
    seconds: float = 0.0
    # L-BFGS (full batch): whether it stopped on its tolerances before the iteration limit (None: minibatches,
    # whose end is early stopping or the epoch limit)
    converged: bool | None = None
    # ``fit``'s ``val_parts``: the raw outputs (n_val, k) of each validation row at the epoch the rows outside its
    # part found best (``CrossedStopping``), and those epochs, one per part; None without parts (or L-BFGS, which
    # chooses no epoch)
    crossed_outputs: np.ndarray | None = field(default=None, repr=False)
    crossed_epochs: tuple[int, ...] | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "crossed_outputs"}


def no_skill_loss(net: MLP, loss: Loss, y: np.ndarray, sample_weight: np.ndarray | None = None,
                  baseline_output: np.ndarray | None = None, X: np.ndarray | None = None,
                  rows: np.ndarray | None = None) -> float:
    """The loss a model without skill gets on (y, sample_weight): the largest of always predicting
    ``baseline_output`` (the training prior), all-zero outputs, and ``net`` as it is on the rows ``rows`` of X
    (None: all of them; the untrained network: with inputs that were not standardised it can start far from
    zero outputs). ``fit`` measures the network on the inference-mode loss's sample (``train_eval_rows``): the
    divergence check compares losses with this one at factors of 10 and 1,000, far beyond that sample's 2-6 %
    error, and a pass over all 6,400 training rows of 5,000 genes took 0.1 s (hidden 128) to 0.3 s (512-256)."""
    n = len(y)
    zeros = np.zeros((n, net.n_outputs), dtype=net.dtype)
    values = [loss.forward(zeros, y, sample_weight)]
    if baseline_output is not None:
        const = np.asarray(baseline_output, dtype=net.dtype).reshape(1, -1)
        values.append(loss.forward(np.repeat(const, n, 0), y, sample_weight))
    if X is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            values.append(_evaluate_rows(net, loss, X, y, sample_weight, rows)[0])
    finite = [v for v in values if np.isfinite(v)]
    return max(finite) if finite else 0.0


def fit_memory(n_inputs: int, hidden, n_outputs: int, config: FitConfig, n_rows: int, dtype: str = "float32",
               batchnorm: bool = False) -> dict[str, int]:
    """Bytes ``fit`` needs beyond the data, estimated before anything is allocated: {"parameters": the
    network's weights, their gradients, the optimizer's state and the copy of the best weights;
    "activations": a training batch's forward and backward buffers and an evaluation chunk's; "total"}."""
    item = np.dtype(dtype).itemsize
    widths = [int(n_inputs), *[int(h) for h in hidden], int(n_outputs)]
    n_params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    if batchnorm:
        n_params += 4 * sum(widths[1:-1])  # gamma, beta and the running mean and variance
    states = 2 if config.optimizer in ("adam", "adamw") else (1 if config.momentum > 0 else 0)
    # weights, gradients, the best weights, the copy a model file is written from, the optimizer's state
    # (measured: --hidden 100000 on the sample data peaks at 5.4 GB; this says 5.4 GB + the data)
    parameters = item * n_params * (4 + states)
    batch = min(config.batch_size, n_rows)
    if config.optimizer == LBFGS:  # float64: 10 (s, y) pairs, the gradient, the iterate, its trial and copy
        parameters = item * n_params * 4 + 8 * n_params * (2 * 10 + 4)
        batch = min(4096, n_rows)  # a chunk of rows per pass
    # Forward caches (input, pre-activation, activation, dropout mask) and backward gradients per unit of a
    # batch, and an inference chunk of evaluate_loss's 4,096 rows.
    units = sum(widths)
    activations = item * units * (6 * batch + 2 * min(4096, n_rows))
    return {"parameters": int(parameters), "activations": int(activations), "total": int(parameters + activations)}


def build_optimizer(cfg: FitConfig) -> optim.Optimizer:
    if cfg.optimizer == "sgd":
        return optim.SGD(lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adamw":
        return optim.AdamW(lr=cfg.lr, weight_decay=cfg.weight_decay, beta2=cfg.beta2)
    return optim.Adam(lr=cfg.lr, beta2=cfg.beta2)


def update_threads() -> int:
    """Threads for the optimizer's elementwise updates: two when the job has a core to spare beside its BLAS
    threads (``background.spare_core``: `train`'s default of one BLAS thread on two or more usable cores, never
    inside a member process or a Dask worker), else one. Not more: the updates are memory-bound, and with
    BLAS on every core OpenBLAS's threads, which spin for a while after each product, would hold the core a
    second update thread needs. Networks under 2 x optim.MIN_SHARE parameters stay on one thread anyway."""
    from .background import spare_core

    return 2 if spare_core() else 1


def iterate_minibatches(n: int, batch_size: int, rng: np.random.Generator, min_size: int):
    """One shuffle index per epoch; a trailing batch smaller than ``min_size`` joins the previous one
    (BatchNorm cannot normalise a batch of one)."""
    order = rng.permutation(n)
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < min_size:
        starts.pop()
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n
        yield order[s:end]


def _gather(net: MLP, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of X (b, d), copied once into a buffer the network reuses every step. A sparse X (CSR)
    is densified here, one minibatch at a time."""
    if is_sparse(X):
        out = net.workspace.get("batch", (len(idx), X.shape[1]), net.dtype)
        if not isinstance(X, CentredRows):  # (which writes every entry) scipy adds into a zero-filled out
            out.fill(0)
        return X[idx].toarray(out=out) if X.dtype == net.dtype else X[idx].toarray().astype(net.dtype)
    if X.dtype != net.dtype:
        return X[idx]  # the forward pass converts it; callers should hand X in the network's dtype
    out = net.workspace.get("batch", (len(idx), X.shape[1]), X.dtype)
    # mode="clip" skips np.take's bounds-check buffering; idx is a permutation, always in range.
    return np.take(X, idx, axis=0, out=out, mode="clip")


def run_epoch(
    net: MLP,
    loss: Loss,
    X: np.ndarray,
    y: np.ndarray,
    opt: optim.Optimizer,
    batch_size: int,
    rng: np.random.Generator,
    sample_weight: np.ndarray | None = None,
    penalty: optim.WeightPenalty | None = None,
    augment_noise: float = 0.0,
    clip_norm: float | None = None,
) -> float:
    """One pass over (X, y) in shuffled minibatches; returns the mean training-mode loss."""
    if net.batchnorm and min(batch_size, X.shape[0]) < 2:
        # A batch of one row is normalised to x^ = 0: every hidden unit outputs its beta whatever the input,
        # so the layers below get no gradient and the network learns nothing (PyTorch refuses it too).
        if X.shape[0] < 2:  # no batch size helps: the advice is more rows, or no batch normalisation
            raise ValueError(f"batch normalisation needs 2 or more training rows to normalise a minibatch, got "
                             f"{X.shape[0]}: give more samples, or train without batch normalisation")
        raise ValueError(f"batch normalisation needs minibatches of 2 or more rows; batch size {batch_size} on "
                         f"{X.shape[0]} training row(s) gives batches of 1: use a batch size of at least 2 (--batch-size)")
    params, grads = net.parameter_groups()
    # the first layer's weight update beside the product that makes its next block of gradients, when it has
    # several blocks (a small network's step is over before handing work to a thread pays) and a core to spare;
    # clipping needs the whole gradient first. The parameters are the same either way.
    in_parts = opt.threads > 1 and not clip_norm and len(first_weight_blocks(net)) > 1
    total, seen = 0.0, 0
    # Uniform noise of SD s, U(-sqrt(3) s, sqrt(3) s), drawn straight into one buffer: to second order any
    # zero-mean noise of variance s^2 acts as the same ridge penalty (Bishop 1995), and NumPy draws float32
    # uniforms 4x faster than normals, which cost 7x the network's own matrix multiplies on a minibatch of
    # 2,000 genes (the README job: 9 ms of noise per epoch -> 2.5 ms)
    # +2: a joined tail; never more rows than X has (a batch size beyond them is one batch of every row)
    noise = np.empty((min(batch_size + 2, X.shape[0]), X.shape[1]), dtype=net.dtype) if augment_noise > 0 else None
    for idx in iterate_minibatches(X.shape[0], batch_size, rng, 2 if net.batchnorm else 1):
        Xb = _gather(net, X, idx)
        if noise is not None:
            draw = noise[: len(idx)]
            rng.random(out=draw, dtype=net.dtype)
            draw -= 0.5
            draw *= augment_noise * math.sqrt(12.0)
            Xb += draw
        yb = y[idx]
        wb = None if sample_weight is None else sample_weight[idx]
        out = net.forward(Xb, training=True)
        value, grad_out = loss.value_and_grad(out, yb, wb)
        total += value * len(idx)
        seen += len(idx)
        if in_parts:  # the update runs beside the backward pass
            step = optim.StepInParts(opt, params, grads, penalty)
            try:
                net.backward(grad_out, ready=step.ready)
            finally:
                step.finish()
            continue
        net.backward(grad_out)
        if penalty is not None and penalty.active:
            penalty.add_grad(params, grads, opt.threads)
        if clip_norm:
            optim.clip_grad_norm(grads, clip_norm)
        opt.step(params, grads)
    return total / seen


def first_weight_blocks(net: MLP) -> list[tuple[int, int]]:
    """The row blocks in which the first Dense layer's weight gradient is made (``layers.weight_grad_rows``)."""
    return weight_grad_rows(net.hidden[0] if net.hidden else net.n_outputs, net.n_inputs)


def evaluate_loss(net: MLP, loss: Loss, X: np.ndarray, y: np.ndarray, sample_weight=None, batch_size: int = 4096):
    """(loss, raw outputs (n, k)): the inference-mode loss over X (n, d) (dense, or sparse densified chunk by
    chunk), in chunks of ``batch_size`` rows to bound memory."""
    outs = [net.forward(dense_rows(X, s, s + batch_size)) for s in range(0, X.shape[0], batch_size)]
    out = np.concatenate(outs, axis=0) if outs else np.zeros((0, net.n_outputs), dtype=net.dtype)
    return loss.forward(out, y, sample_weight), out


def train_eval_rows(y: np.ndarray, seed: int, limit: int | None = None) -> np.ndarray | None:
    """Sorted training-row indices (m,) the inference-mode training loss is measured on each epoch, or
    None for all rows (n <= limit, default TRAIN_EVAL_ROWS). Drawn once per run from ``seed``: a class
    target (1-D integers, or the one 0/1 column (n, 1) a binary task trains its sigmoid on) gets each class
    in proportion, at least one row each, so a rare class stays in the metric; other targets a simple random
    sample. Sorted, so gathering them reads X front to back."""
    n = len(y)
    limit = TRAIN_EVAL_ROWS if limit is None else int(limit)
    if n <= limit:
        return None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))  # [seed, 1] shuffles the minibatches
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1 and np.isin(y, (0, 1)).all():
        y = y[:, 0].astype(np.int64)  # binary bce / focal / hinge: the classes as indices
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        order = rng.permutation(n)
        labels = y[order]
        picked = []
        for c in np.unique(labels):
            rows = order[labels == c]
            picked.append(rows[: max(1, round(limit * len(rows) / n))])
        idx = np.concatenate(picked)
    else:
        idx = rng.choice(n, size=limit, replace=False)
    return np.sort(idx)


def train_eval_limit(n_val: int | None) -> int:
    """How many training rows at most ``train_eval_rows`` measures for a fit with ``n_val`` validation rows (None:
    without validation): as many as the validation pass scores, at least TRAIN_EVAL_MIN_ROWS, at most TRAIN_EVAL_ROWS."""
    if n_val is None:
        return TRAIN_EVAL_ROWS
    return min(TRAIN_EVAL_ROWS, max(TRAIN_EVAL_MIN_ROWS, int(n_val)))


def _evaluate_rows(net: MLP, loss: Loss, X, y: np.ndarray, sample_weight, idx: np.ndarray | None,
                   scratch: Workspace | None = None):
    """``evaluate_loss`` on rows ``idx`` of X (None: all rows): (loss, outputs (m, k), y[idx]). Dense rows are
    gathered EVAL_CHUNK_BYTES at a time into one buffer of ``scratch`` reused every epoch (the fit's own, not
    the network's: the network outlives the fit as a member of the model, the buffer need not), so the
    subsample is never copied whole."""
    if idx is None:
        value, out = evaluate_loss(net, loss, X, y, sample_weight)
        return value, out, y
    yi = y[idx]
    wi = None if sample_weight is None else sample_weight[idx]
    if is_sparse(X) or X.dtype != net.dtype:
        value, out = evaluate_loss(net, loss, X[idx], yi, wi)
        return value, out, yi
    step = max(1, min(len(idx), EVAL_CHUNK_BYTES // max(1, X.shape[1] * X.itemsize)))
    out = np.empty((len(idx), net.n_outputs), dtype=net.dtype)
    scratch = scratch if scratch is not None else Workspace()
    for s in range(0, len(idx), step):
        rows = idx[s : s + step]
        buf = scratch.get("eval_batch", (len(rows), X.shape[1]), X.dtype)
        # mode="clip" (the rows are valid): with the default "raise", np.take would gather into a temporary first
        out[s : s + len(rows)] = net.forward(np.take(X, rows, axis=0, out=buf, mode="clip"))
    return loss.forward(out, yi, wi), out, yi


def fit(
    net: MLP,
    loss: Loss,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    config: FitConfig,
    sample_weight: np.ndarray | None = None,
    val_sample_weight: np.ndarray | None = None,
    metric: Callable[[np.ndarray, np.ndarray], float] | None = None,
    baseline_output: np.ndarray | None = None,
    callback: Callable[[dict], None] | None = None,
    val_parts: np.ndarray | None = None,
) -> FitResult:
    """Train ``net`` in place and restore the weights of the epoch with the lowest validation loss.

    With ``X_val=None`` there is no validation: the network trains ``config.epochs`` epochs on every
    row and keeps its final weights (a refit on all data, or an estimator without early stopping);
    the history then has no validation columns.

    ``metric(outputs, y)`` (raw outputs, as the loss sees them) is recorded on both sides each
    epoch. The inference-mode training columns (``train_loss_eval``, ``train_metric``) are measured on the
    rows ``train_eval_rows`` picks (all of them up to ``train_eval_limit``: as many as the validation rows,
    at least TRAIN_EVAL_MIN_ROWS, at most TRAIN_EVAL_ROWS; a fixed sample beyond).
    ``baseline_output`` (k,) is the constant output of a model that predicts the training prior; its
    loss is the baseline against which the learning curves are read. ``callback`` receives each epoch's
    history row. Ctrl-C ends training after restoring the best weights so far;
    the result says ``interrupted``. ``val_parts`` (n_val,) part numbers: the result's ``crossed_outputs`` also give
    each validation row's outputs at the epoch the rows outside its part chose (``CrossedStopping``), for an
    estimate no choice was made on.

    With a core to spare (``update_threads() > 1``), an epoch's validation and inference-mode training
    passes (and ``metric``) run in a second thread on a copy of its weights while the next epoch trains,
    unless that epoch could stop the run; its row then reaches ``callback`` an epoch later, and its
    ``seconds`` run to the start of the next epoch. The history and weights are the same bit for bit.
    """
    config.validate()
    if not is_sparse(X_train):  # a sparse X stays sparse: minibatches are densified as they are drawn
        X_train = np.ascontiguousarray(X_train, dtype=net.dtype)
    validate = X_val is not None
    if validate and not is_sparse(X_val):
        X_val = np.ascontiguousarray(X_val, dtype=net.dtype)
    n = X_train.shape[0]
    if n == 0 or (validate and X_val.shape[0] == 0):
        raise ValueError("training and validation sets must both be non-empty")
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1]))  # shuffles and noise
    full_batch = config.optimizer == LBFGS
    converged = False  # (L-BFGS: set when it returns; an interrupted run did not converge)
    opt = None if full_batch else build_optimizer(config)
    if opt is not None:
        opt.threads = update_threads()
    kernels = KernelSwitch(opt, net.flat_params.size, net.dtype)  # numba's one-pass Adam once fits are long enough
    penalty = optim.WeightPenalty(config.l1, config.l2)
    # L-BFGS runs to convergence and keeps its last weights: the validation loss is recorded, not stopped on
    stopper = EarlyStopping(config.patience if validate and not full_batch else None, config.min_delta,
                            config.adaptive_patience, config.growth_noise)
    crossing = (CrossedStopping(val_parts, config.min_delta) if validate and not full_batch and val_parts is not None
                else None)
    if crossing is not None and not crossing.usable:
        crossing = None
    lr0, history = config.lr, []

    baseline = {}
    if baseline_output is not None:
        const = np.asarray(baseline_output, dtype=net.dtype).reshape(1, -1)
        baseline = {"train_loss": loss.forward(np.repeat(const, n, 0), y_train, sample_weight)}
        if validate:
            baseline["val_loss"] = loss.forward(np.repeat(const, X_val.shape[0], 0), y_val, val_sample_weight)
            if metric is not None:  # the metric curve's no-skill level, in the metric's own units
                baseline["val_metric"] = metric(np.repeat(const, X_val.shape[0], 0), y_val)

    # see TRAIN_EVAL_ROWS and TRAIN_EVAL_MIN_ROWS
    sample = train_eval_rows(y_train, config.seed, train_eval_limit(X_val.shape[0] if validate else None))
    eval_rows = sample if validate else None
    scratch = Workspace()  # the gathered rows of that sample, freed with the fit
    divergence = DivergenceCheck(no_skill_loss(net, loss, y_train, sample_weight, baseline_output, X_train, sample),
                                 config)
    started = time.perf_counter()
    interrupted = stopped = False
    plateau_bad, plateau_best = 0, math.inf
    plateau_patience = max(2, (config.patience or 10) // 3)
    # With a core to spare (as for the optimizer's updates), an epoch's validation and inference-mode training
    # passes run there on a copy of its weights while the next epoch trains, unless that epoch's loss could
    # stop the run (or the plateau schedule needs it first): then they run here before going on, so no epoch
    # is ever trained past the stop. The passes and the decisions are the same either way; only the history
    # rows reach ``callback`` an epoch later. See ``_Measured``.
    shadow = (MLP(**net.config()) if validate and config.lr_schedule != "plateau" and opt is not None
              and opt.threads > 1 and net.flat_params.nbytes <= SHADOW_BYTES else None)
    if shadow is not None:
        shadow.release_training_memory()  # it only measures: no gradient buffer
    pending: tuple[int, float, float, float, Callable[[], _Measured]] | None = None

    def measure(model: MLP) -> _Measured:
        with np.errstate(over="ignore", invalid="ignore"):  # as below: NumPy's error state is per thread
            val_loss, val_out = evaluate_loss(model, loss, X_val, y_val, val_sample_weight)
            train_eval_loss, train_out, y_eval = _evaluate_rows(model, loss, X_train, y_train, sample_weight,
                                                                eval_rows, scratch)
            parts = None if crossing is None else crossing.losses(loss, val_out, y_val, val_sample_weight)
        metrics = (float(metric(train_out, y_eval)), float(metric(val_out, y_val))) if metric is not None else None
        return _Measured(float(val_loss), float(train_eval_loss), metrics,
                         None if crossing is None else (parts, val_out))

    def record(epoch: int, train_loss: float, lr: float, t0: float, measured: _Measured, model: MLP,
               end: float | None = None) -> bool:
        """Epoch ``epoch``'s history row, early stopping and plateau step (``model`` holds its weights; the
        epoch took from ``t0`` to ``end``, default now); True when training stops here."""
        nonlocal plateau_best, plateau_bad
        divergence.update(epoch, [train_loss, measured.train_eval_loss], model)
        row = {
            "epoch": epoch,
            "train_loss": float(train_loss),
            "val_loss": measured.val_loss,
            "train_loss_eval": measured.train_eval_loss,
            "penalty": float(penalty.value({"W": model.flat_weights})) if penalty.active else 0.0,
        }
        if measured.metrics is not None:
            row["train_metric"], row["val_metric"] = measured.metrics
        if lr is not None:  # (L-BFGS has no learning rate: its steps come from a line search)
            row["lr"] = lr
        stop = stopper.update(epoch, measured.val_loss, model)
        if measured.parts is not None:
            crossing.update(epoch, *measured.parts)
        row["best_epoch"] = epoch if full_batch else stopper.best_epoch  # (lbfgs keeps its last weights)
        row["seconds"] = (time.perf_counter() if end is None else end) - t0
        history.append(row)
        if callback is not None:
            callback(row)
        if config.lr_schedule == "plateau":
            if measured.val_loss < plateau_best - config.min_delta:
                plateau_best, plateau_bad = measured.val_loss, 0
            else:
                plateau_bad += 1
                if plateau_bad >= plateau_patience:  # a cut, never a rise: an lr below MIN_LR stays as it is
                    opt.lr, plateau_bad = min(opt.lr, max(MIN_LR, opt.lr * PLATEAU_FACTOR)), 0
        return stop

    def record_pending(next_start: float) -> bool:
        nonlocal pending
        epoch, train_loss, lr, t0, result = pending
        pending = None
        return record(epoch, train_loss, lr, t0, result(), shadow, end=next_start)

    # Overflow warnings would only precede the divergence error below, which says what to do.
    errstate = np.errstate(over="ignore", invalid="ignore")
    errstate.__enter__()
    try:
        if full_batch:
            def step_done(iteration: int, train_loss: float, t0: float) -> None:
                if interrupts.stop_requested():  # as at an epoch's start above
                    raise KeyboardInterrupt
                if validate:
                    record(iteration, train_loss, None, t0, measure(net), net)
                else:
                    history.append({"epoch": iteration, "train_loss": train_loss, "seconds": time.perf_counter() - t0})
                    if callback is not None:
                        callback(history[-1])

            converged = _fit_full_batch(net, loss, X_train, y_train, sample_weight, config, step_done)
        else:
            for epoch in range(1, config.epochs + 1):
                if interrupts.stop_requested():  # a fit in a thread, whose process was stopped (no signal here)
                    raise KeyboardInterrupt
                t0 = time.perf_counter()
                opt.lr = scheduled_lr(config, lr0, opt.lr, epoch)
                kernels.update()
                train_loss = run_epoch(net, loss, X_train, y_train, opt, config.batch_size, rng, sample_weight,
                                       penalty, config.augment_noise, config.clip_norm)
                if not validate:  # a fixed number of epochs on all rows: the last weights are the model
                    divergence.update(epoch, [train_loss], net)
                    history.append({"epoch": epoch, "train_loss": float(train_loss), "lr": float(opt.lr),
                                    "seconds": time.perf_counter() - t0})
                    if callback is not None:
                        callback(history[-1])
                    continue
                if pending is not None and record_pending(t0):  # the previous epoch, measured while this one trained
                    stopped = True  # (not reached: an epoch that could stop the run is measured before the next)
                    break
                if shadow is not None and epoch < config.epochs and not stopper.could_stop_next():
                    _copy_weights(net, shadow)
                    pending = (epoch, float(train_loss), float(opt.lr), t0, _beside(measure, shadow))
                    continue
                if record(epoch, float(train_loss), float(opt.lr), t0, measure(net), net):
                    stopped = True
                    break
            divergence.finish(len(history))  # (not for lbfgs: a line search only ever lowers the objective)
    except KeyboardInterrupt:
        interrupted = True
        interrupts.absorbed()  # so that a caller running fits one after the other stops too
        if pending is not None:  # the last epoch trained before the interrupt still counts, as it did alone
            record_pending(time.perf_counter())
    except TrainingError as exc:  # a divergence: the epochs up to it go with the error (`train --history` writes them)
        exc.history = [dict(row) for row in history]
        raise
    finally:
        errstate.__exit__(None, None, None)
        kernels.count()  # this fit's last epoch, toward the process's total (``fused.LOAD_AFTER``)
    if validate and not full_batch:
        stopper.restore(net)
    crossed = None if crossing is None else crossing.outputs()
    return FitResult(
        history=history,
        best_epoch=stopper.best_epoch if validate and not full_batch else len(history),
        best_val_loss=float(history[-1]["val_loss"] if full_batch and validate and history else stopper.best),
        stopped_early=stopped,
        interrupted=interrupted,
        baseline=baseline,
        epochs_run=len(history),
        seconds=time.perf_counter() - started,
        converged=converged if full_batch else None,
        crossed_outputs=crossed,
        crossed_epochs=None if crossed is None else tuple(crossing.epochs),
    )


FLOAT32_STALL = 3  # L-BFGS steps in a row of a float32 network below its decrease tolerance that end the run


def _fit_full_batch(net: MLP, loss: Loss, X, y: np.ndarray, sample_weight: np.ndarray | None, config: FitConfig,
                    step_done: Callable[[int, float, float], None]) -> bool:
    """Minimise the mean training loss + the L2 penalty over all rows of X (n, d) with ``engine.lbfgs`` for at
    most ``config.epochs`` iterations, ``net`` left at the last accepted point. Inference-mode passes (no
    dropout: the objective must not change between evaluations), a chunk of rows at a time (a sparse X
    densified chunk by chunk), the gradient accumulated in float64. ``step_done(iteration, data loss, t0)``
    after each accepted step, with ``net`` holding its weights. Ctrl-C leaves the last accepted weights.
    Returns whether L-BFGS converged (stopped on its tolerances, not at the iteration limit)."""
    from .engine import lbfgs

    if net.batchnorm:  # inference-mode passes normalise by running statistics that only minibatches update
        raise ValueError("lbfgs cannot train batch normalisation: use a minibatch optimizer, or no batchnorm")
    n = X.shape[0]
    chunk = max(1, min(n, EVAL_CHUNK_BYTES // max(1, X.shape[1] * np.dtype(net.dtype).itemsize))) \
        if is_sparse(X) else min(n, 4096)
    n_weights = net.n_weight_entries  # weights come first in the flat buffer: the penalty's entries
    grad = np.zeros(net.flat_params.size, dtype=np.float64)
    last = {"theta": None, "data": math.nan}

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        net.flat_params[:] = theta
        grad[:] = 0.0
        data = 0.0
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            yb = y[start:stop]
            wb = None if sample_weight is None else sample_weight[start:stop]
            out = net.forward(dense_rows(X, start, stop))
            share = (stop - start) / n  # the loss is a mean over rows: each chunk's counts in proportion
            data += share * loss.forward(out, yb, wb)
            net.backward(loss.backward(out, yb, wb))
            grad[:] += share * net.flat_grads
        w = theta[:n_weights]
        value = data + config.l2 * float(w @ w)
        grad[:n_weights] += 2.0 * config.l2 * w
        last["theta"], last["data"] = theta, data
        return value, grad.copy()

    accepted = net.flat_params.astype(np.float64)
    t0 = time.perf_counter()

    def done(iteration: int, theta: np.ndarray, _f: float) -> None:
        nonlocal t0
        accepted[:] = theta
        if last["theta"] is not theta:  # (the line search's last evaluation is the accepted point)
            objective(theta)
        net.flat_params[:] = theta
        step_done(iteration, float(last["data"]), t0)
        t0 = time.perf_counter()

    # float32 rounds the objective at ~1e-7 of itself: ask no finer decrease than a few times that — of itself,
    # not of max(|f|, 1) (a regression's loss on the standardised target is ~0.02), and of FLOAT32_STALL steps in
    # a row: one small step while the gradient was still 100 x float64's final one had ended float32 runs with
    # weights 5e-3 from LogisticRegression's (float64: 7e-5), and predictions 4 units from least squares'
    single = net.dtype == np.float32
    try:
        result = lbfgs.minimize(objective, accepted.copy(), max_iter=config.epochs, ftol=1e-6 if single else 1e-10,
                                stall=FLOAT32_STALL if single else 1, f_floor=1e-30 if single else 1.0, callback=done)
    finally:  # the last accepted point, not a line-search trial (also on Ctrl-C)
        net.flat_params[:] = accepted
    return bool(result.converged)


@dataclass(frozen=True)
class _Measured:
    """An epoch's inference-mode passes: the validation loss, the training loss on the evaluation rows, and
    (train_metric, val_metric) when there is a metric."""

    val_loss: float
    train_eval_loss: float
    metrics: tuple[float, float] | None
    # with ``val_parts``: (the loss outside each part, the validation outputs (n_val, k)), for ``CrossedStopping``
    parts: tuple[tuple[float, ...], np.ndarray] | None = None


def _copy_weights(src: MLP, dst: MLP) -> None:
    """dst's parameters and buffers (BatchNorm's running statistics) := src's, in place."""
    np.copyto(dst.flat_params, src.flat_params)
    targets = dst.buffers()
    for key, value in src.buffers().items():
        targets[key][...] = value


def _beside(fn: Callable, *args) -> Callable:
    from .background import beside

    return beside(fn, *args, threaded=True)


def scheduled_lr(cfg: FitConfig, lr0: float, current: float, epoch: int) -> float:
    """Cosine annealing from lr0 towards MIN_LR (or lr0 itself when smaller: the rate never rises) over the
    run (``schedule_epochs`` of it when set); plateau and none keep the current rate."""
    if cfg.lr_schedule == "cosine":
        floor = min(MIN_LR, lr0)
        length = cfg.schedule_epochs or cfg.epochs
        return floor + 0.5 * (lr0 - floor) * (1.0 + math.cos(math.pi * min(epoch - 1, length) / max(1, length)))
    return current
