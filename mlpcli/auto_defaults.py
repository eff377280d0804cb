"""Data-dependent defaults: what "auto" becomes once the training table's size and width are known
(``resolve``): the batch size, the epoch budget counted in optimizer steps, the L2 penalty, the learning rate
for the kept width, the input noise, the weight decay; and how many cross-fitted members (``auto_folds``)."""

from __future__ import annotations

import math
from dataclasses import replace

from .config import (AUTO, AUTO_LR_HIDDEN, AUTO_LR_LINEAR, AUTO_NOISE_MAX, AUTO_WEIGHT_DECAY,
                     AUTO_WEIGHT_DECAY_REGRESSION, WIDE_LR_FEATURES, TrainOptions, check_decay)


SINGLE_HOLDOUT_ABOVE = 20_000  # samples; above this --folds auto trains one network on a hold-out
DEFAULT_FOLDS = 5
BASE_EPOCHS = 200
MIN_STEPS = 1000  # optimizer steps a small training set still gets with --epochs auto
MAX_AUTO_EPOCHS = 2000


def auto_batch_size(n_train: int) -> int:
    """AutoGluon's rule, 2^(3 + floor(log10 n)), kept within [16, 512]: 32 at n = 100, 64 at 1,000."""
    return int(min(512, max(16, 2 ** (3 + math.floor(math.log10(max(n_train, 1)))))))


def auto_folds(n_samples: int) -> int:
    return 1 if n_samples > SINGLE_HOLDOUT_ABOVE else DEFAULT_FOLDS


def auto_noise(n_train: int, n_features: int) -> float:
    """SD of the input noise ``augment_noise auto`` adds to a network with hidden layers:
    sqrt(p / n) when the p features outnumber the n training rows, at most ``AUTO_NOISE_MAX``; else 0.

    With more features than rows a network interpolates its training set through directions in which
    the training rows differ only by noise, and its training loss falls to ~0 while validation settles
    far above (the "unrepresentative training set" curve). Out of sample, the covariance of p
    standardised features estimated from n rows has its noise eigenvalues around p / n
    (Marchenko-Pastur); input noise of that variance gives each minibatch that much nuisance
    variation, which acts as a ridge penalty of the same size (Bishop 1995), so training sees what new
    samples will show. Capped at twice a standardised feature's SD: beyond it the noise drowns single
    genes (NCI60, p / n ~ 150, lost 0.14 balanced accuracy at SD 12). Softmax regression gets no noise:
    for it the noise is only a ridge penalty, which ``l2 auto`` already sets."""
    ratio = n_features / max(n_train, 1)
    return min(AUTO_NOISE_MAX, math.sqrt(ratio)) if ratio > 1 else 0.0


def auto_lr(hidden: bool, n_features: int) -> float:
    """``lr auto`` for a network with or without hidden layers on ``n_features`` kept features:
    AUTO_LR_HIDDEN or AUTO_LR_LINEAR, times WIDE_LR_FEATURES / n_features beyond WIDE_LR_FEATURES.

    Adam and AdamW move every weight by about the learning rate each step, whatever the size of its
    gradient. A first-layer unit sums its inputs, so one step moves it by up to lr x sum_j |x_j|: in
    proportion to the number of features. The base rates were measured on tables of up to 2,000 genes.
    On 3,000 synthetic cells x 20,000 genes (sparse counts, 6 types of 5-35 %) a softmax regression's first
    epoch at 0.01 ran at 2.5 x the no-skill loss and early stopping kept an overshooting model: out-of-fold
    balanced accuracy 0.33 at 0.01, 0.36 at 0.003, 0.47 at 0.001 (this rule's rate), against logistic
    regression's 0.41. On 300 x 60,000 counts: 0.806 at 0.01, 0.814 at this rule's 3.3e-4. Between 5,000
    and 8,000 genes (NCI60, six synthetic tables) the changes were within each table's noise (-0.05 to
    +0.02, NCI60 +0.008). Shrinking from fewer features (0.01 x sqrt(200 / p)) cost tiny cohorts of 40 x
    2,000 0.05 balanced accuracy over five seeds: below WIDE_LR_FEATURES the rate is unchanged."""
    base = AUTO_LR_HIDDEN if hidden else AUTO_LR_LINEAR
    return base * min(1.0, WIDE_LR_FEATURES / max(n_features, 1))


def resolve(options: TrainOptions, n_train: int, n_features: int | None = None, task: str | None = None) -> TrainOptions:
    """``options`` with every data-dependent default ("auto") made concrete for ``n_train`` training rows (and the
    ``task``: the weight decay; None: a classifier's).

    Hidden layers (``hidden auto``), log1p and the member count are decided by the caller, which needs
    the data rather than its size; the fit-loop settings are decided here."""
    batch = auto_batch_size(n_train) if options.batch_size == AUTO else options.batch_size
    steps_per_epoch = max(1, math.ceil(n_train / batch))
    epochs = options.epochs
    if epochs == AUTO:
        epochs = min(MAX_AUTO_EPOCHS, max(BASE_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch)))
    l2 = 0.5 / max(n_train, 1) if options.l2 == AUTO else options.l2
    lr = options.lr
    if lr == AUTO and n_features is not None:  # it depends on the kept width (known once preprocessed)
        # (lbfgs reads none: it is resolved all the same, so that fit_config and the model have a value)
        lr = auto_lr(options.hidden != AUTO and bool(options.hidden), n_features)
    noise = options.augment_noise
    if noise == AUTO and n_features is not None:  # in units of a standardised feature: none on unscaled ones
        noise = (auto_noise(n_train, n_features) if options.hidden not in (AUTO, []) and options.hidden
                 and options.standardize and options.optimizer != "lbfgs" else 0.0)
    # lbfgs evaluates one fixed objective: no dropout (the model then says so, rather than a rate it never used)
    dropout = 0.0 if options.optimizer == "lbfgs" else options.dropout
    decay = options.weight_decay
    if decay == AUTO:
        decay = AUTO_WEIGHT_DECAY_REGRESSION if task == "regression" else AUTO_WEIGHT_DECAY
    resolved = replace(options, batch_size=batch, epochs=epochs, l2=l2, lr=lr, augment_noise=noise, dropout=dropout,
                       weight_decay=decay)
    check_decay(resolved)
    return resolved
