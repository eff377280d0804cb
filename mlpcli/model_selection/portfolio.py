"""What ``--hidden auto`` chooses among and how: the portfolio of candidate architectures (softmax regression first,
one hidden layer second, and the variants wide tables call for), and the one-standard-error rule that picks the
simplest candidate a more complex one does not beat beyond the noise of the comparison, on held-out log loss or
balanced accuracy, patients as clusters."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .. import auto_defaults, data, metrics
from ..metrics_resampled import cluster_se, cluster_sums
from ..calibration import fit_temperature
from ..config import AUTO, MINIBATCH_OPTIMIZERS, TrainOptions
from ..training import LBFGS

if TYPE_CHECKING:
    from .crossfit import FittedCandidate
    from .fitting import FittedRun


# ``--hidden auto`` chooses among these by out-of-fold score. Softmax regression first: it is the field's
# honest baseline (a regularised logistic regression) and wins ties; one wide hidden layer second, for
# the non-linear signal a linear model misses. Measured on the accuracy benchmark (README).
PORTFOLIO: tuple[tuple[int, ...], ...] = ((), (128,))
# The slower softmax regression ``portfolio`` adds on wide tables: from this many features, at this share
# of lr auto (``auto_defaults.auto_lr``'s rate for the width, so 0.001 up to 2,000 features, less beyond)
SLOW_LINEAR_FEATURES = 200
SLOW_LINEAR_FACTOR = 0.1
# More features than this per training row of a member, and ``--hidden auto`` tries no hidden layer: there it
# gained nothing (NCI60, 6,830 genes of 45 rows, seeds 0-2 x 5 folds: the same mean test balanced accuracy for
# every seed without it, 0.688 / 0.725 / 0.737 — chosen in two folds of seed 1, one test fold 0.125 better, one
# 0.125 worse — in a third to a fifth of the time; synthetic counts of 20,000 genes x 1,600 rows: 0.575 and 0.603
# against 0.673, of 60,000 x 1,200: 0.324 against 0.467), and its two candidates were most of the time (about 10
# of the 12+ minutes at 20,000 genes; 600 x 60,000: 51 s without them, unfinished in 5 minutes with them). On the
# sample data (2,000 genes of 489 rows, 4 per row) the hidden layer wins.
WIDE_FEATURES_PER_ROW = 10
# The softmax regression ``portfolio`` also trains by L-BFGS to the optimum of its penalised loss (``l2 auto``,
# 0.5 / n: LogisticRegression(C=1)'s), after the early-stopped ones, so that it must beat them by more than the
# noise of the comparison. Adam moves every weight at about the same rate whatever its gradient, and early
# stopping keeps it short of that optimum: on tables whose signal is linear and spread thin the default trailed
# logistic regression by 0.02-0.03 (bench_synthetic.py "small", "batches"). Chosen by out-of-fold log loss, which
# the crossed predictions score honestly for a candidate without an epoch choice (benchmarks/RESULTS.md, 2026-12-07,
# "... the softmax regression by L-BFGS joins --hidden auto").
FULL_BATCH = LBFGS


@dataclass(frozen=True)
class Candidate:
    """One architecture ``--hidden auto`` tries: hidden widths and the input noise it trains with."""

    hidden: tuple[int, ...]
    augment_noise: float | str
    lr: float | str = AUTO  # auto: ``auto_defaults.auto_lr`` for the member's kept width (or the --lr given)
    optimizer: str = AUTO  # auto: the --optimizer given; FULL_BATCH: L-BFGS to the penalised loss's optimum

    def describe(self) -> str:
        text = _describe_hidden(list(self.hidden))
        if self.optimizer == FULL_BATCH:
            text += " by L-BFGS"
        if self.lr != AUTO:
            text += f" at learning rate {self.lr:.2g}"
        if self.augment_noise == AUTO:
            return text + " with input noise (--augment-noise auto)"
        return text if not self.augment_noise else f"{text} with input noise {self.augment_noise:g}"

    def options(self, options: TrainOptions) -> TrainOptions:
        """``options`` as this candidate trains with them (the shared ones where it sets nothing)."""
        return replace(options, hidden=list(self.hidden), augment_noise=self.augment_noise,
                       lr=options.lr if self.lr == AUTO else self.lr,
                       optimizer=options.optimizer if self.optimizer == AUTO else self.optimizer)


def portfolio(options: TrainOptions, n_train: int, n_features: int) -> list[Candidate]:
    """The candidates for ``options`` on ``n_train`` training rows per member of ``n_features`` features
    (after --top-var), simplest first: ``options.hidden`` alone unless it is auto; else PORTFOLIO, with three
    additions.

    On SLOW_LINEAR_FEATURES features or more, with lr auto, the softmax regression again at
    SLOW_LINEAR_FACTOR times its rate. Adam moves every weight by about the rate each step, so a linear
    unit's logit moves by up to lr x sum_j |x_j|: on wide tables the first epochs overshoot and early
    stopping keeps a model fitted to noise, or, on others, the slower one stops before it has learnt. Which
    wins differs from table to table (on 2,000 synthetic cells x 2,000 genes 0.742 -> 0.758, on 40 x 2,000
    Gaussian samples 0.578 -> 0.396; the lower rate alone: NCI60 and the sample data gain, 700 PBMCs lose):
    the out-of-fold scores choose, and the slower one comes second, so it must win by more than the noise of
    the comparison (benchmarks/RESULTS.md, "A slower softmax regression joins --hidden auto").

    The softmax regression again by L-BFGS (FULL_BATCH) to the optimum of its penalised loss, after the early-stopped
    ones, where the options allow it (``full_batch_applies``).

    When the features outnumber the rows and no input noise was asked for, the hidden layer again with
    input noise of SD sqrt(p / n) (``auto_defaults.auto_noise``). With p >> n the plain hidden layer memorises its
    training rows (training loss ~0, validation far above); the noisy one sees the nuisance variation new
    samples will show. Being the more regularised, it counts as simpler than the plain layer in the
    one-standard-error rule: it comes before it, and the plain layer must beat it by more than the noise
    of the comparison, which on NCI60 (p/n ~ 150, where noise costs accuracy) it does."""
    def noise(hidden) -> float | str:  # --augment-noise auto, said as 0 where it is sure to be (described so)
        sure = not hidden or auto_defaults.auto_noise(n_train, n_features) == 0  # fewer kept features: no more noise
        return 0.0 if options.augment_noise == AUTO and sure else options.augment_noise

    if options.hidden != AUTO:
        return [Candidate(tuple(options.hidden), noise(options.hidden))]
    linear = [Candidate((), noise(()))]
    if options.lr == AUTO and n_features >= SLOW_LINEAR_FEATURES:
        linear.append(Candidate((), noise(()), auto_defaults.auto_lr(False, n_features) * SLOW_LINEAR_FACTOR))
    if full_batch_applies(options):
        linear.append(Candidate((), 0.0, AUTO, FULL_BATCH))
    if too_wide_for_hidden(n_train, n_features):
        return linear
    hidden = [Candidate(tuple(h), noise(h)) for h in PORTFOLIO if h]
    # (its SD is in units of a standardised feature: not for --no-standardize, whose features keep their own)
    if options.augment_noise in (0, 0.0) and options.standardize and auto_defaults.auto_noise(n_train, n_features) > 0:
        hidden.insert(0, Candidate(PORTFOLIO[-1], AUTO))  # more regularised: simpler than the plain layer
    return linear + hidden


def full_batch_applies(options: TrainOptions) -> bool:
    """Whether ``--hidden auto`` also tries the softmax regression by L-BFGS (FULL_BATCH): with a minibatch
    optimizer and none of what L-BFGS's fixed, smooth objective cannot hold (an L1 penalty, input noise given, a
    learning-rate schedule, batch normalisation)."""
    return (options.optimizer in MINIBATCH_OPTIMIZERS and options.l1 in (0, 0.0) and options.lr_schedule == "none"
            and options.augment_noise in (0, 0.0, AUTO) and not options.batchnorm)


def too_wide_for_hidden(n_train: int, n_features: int) -> bool:
    """Whether ``--hidden auto`` leaves out the hidden layer: more than WIDE_FEATURES_PER_ROW features per
    training row of a member."""
    return n_features > WIDE_FEATURES_PER_ROW * max(1, n_train)


# Out-of-fold scores closer than this count as a tie (then the simpler candidate wins): with a few hundred
# samples a difference of half a point of balanced accuracy is within the noise of the folds. Regression
# scores (-RMSE) are in the target's units, so there the margin is this share of the simpler one's RMSE.
TIE = 0.005


def by_log_loss(options: TrainOptions, task: str | None) -> bool:
    """Whether ``--hidden auto`` compares its candidates by held-out log loss (``_choose_by_log_loss``): binary,
    multiclass and multi-label targets (the labels' losses summed per row) whose loss weighs no class above another.
    With --class-weight or --pos-weight the probabilities move on purpose and the choice stays with balanced
    accuracy, the score those weights serve."""
    from ..model_summary import is_weighted

    return task in ("binary", "multiclass", "multilabel") and not is_weighted(options.to_dict())


def _loss_words(value: float) -> str:
    """A log loss (or its margin) for the note: four decimals, or four significant digits where it is huge (features
    around 1e30 without scaling wrote "626536041381513347989504.0000")."""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def choose_candidate(cands: list[FittedCandidate], notes: list[str], what: str, y: np.ndarray | None = None,
            task: str | None = None, link: str | None = None, groups: np.ndarray | None = None,
            log_loss: bool = False, calibrate: bool = True) -> tuple[FittedCandidate, list[dict] | None]:
    """The simplest candidate unless a more complex one scores better by more than the noise of the
    comparison (the one-standard-error rule). With ``log_loss`` (``by_log_loss``) the score is the held-out log
    loss, each candidate at its own temperature (``_choose_by_log_loss``); otherwise its out-of-fold balanced
    accuracy must exceed the simpler one's by more than TIE and more than one standard error of the paired
    difference. On a few dozen samples that error is several points, so a lucky fold cannot buy the hidden layer."""
    if len(cands) == 1:
        return cands[0], None
    if log_loss and y is not None and link in ("softmax", "sigmoid"):
        return _choose_by_log_loss(cands, notes, what, y, link, groups, calibrate)
    regression = task == "regression"  # scores are -RMSE in the target's units: the tie margin is relative
    best, margins, errors = cands[0], [], []
    for c in cands[1:]:
        se = _paired_se(best, c, y, task, groups)
        tie = TIE * abs(best.score) if regression and np.isfinite(best.score) else TIE
        margins.append(max(tie, se))
        errors.append(se)
        if c.score > best.score + margins[-1]:
            best = c
    from_se = [0 < e >= m for e, m in zip(errors, margins)]  # each margin: a standard error, or the tie margin
    table = [{"hidden": list(c.spec.hidden), "augment_noise": noise_used(c.runs) if c.runs else c.spec.augment_noise,
              "lr": c.spec.lr, **({} if c.spec.optimizer == AUTO else {"optimizer": c.spec.optimizer}),
              "score": None if not np.isfinite(c.score) else c.score} for c in cands]
    fmt = ".4g" if regression else ".3f"
    shown = "; ".join(f"{c.spec.describe()}: {abs(c.score):{fmt}}" for c in cands)  # a colon: names end in numbers
    if regression and y is not None and np.ndim(y) == 2 and np.shape(y)[1] > 1:
        shown = f"RMSE of the {np.shape(y)[1]} targets in units of their SDs: {shown}"
    relative = f"{TIE * 100:g} % of the simpler one's RMSE; " if regression else ""
    clusters = ", patients as clusters" if groups is not None and task in data.CLASSIFICATION_TASKS else ""
    if all(from_se):
        why = "one standard error of the paired difference" + (" each" if len(margins) > 1 else "") + clusters
    elif any(from_se):
        why = "each the larger of the tie margin and one standard error of the paired difference" + clusters
    else:
        why = "the tie margin" + ("" if task in data.CLASSIFICATION_TASKS else
                                  f" ({relative}no standard error is computed for {task} scores)")
    # each candidate is compared with the one chosen so far, each comparison with its own margin
    margin_words = (f"must win by more than {margins[0]:{fmt}}" if len(margins) == 1 else
                    "must beat the one chosen before it by more than its margin: " + ", ".join(
                        f"{c.spec.describe()}: {m:{fmt}}" for c, m in zip(cands[1:], margins)))
    notes.append(f"--hidden auto: {best.spec.describe()} chosen by {what} ({shown}; a later (more complex or slower) candidate "
                 f"{margin_words}; {why})")
    return best, table


def _choose_by_log_loss(cands: list[FittedCandidate], notes: list[str], what: str, y: np.ndarray, link: str,
                        groups: np.ndarray | None, calibrate: bool) -> tuple[FittedCandidate, list[dict]]:
    """The one-standard-error rule on the held-out log loss, a proper score: each candidate's rows at the temperature
    fitted on them (as the model it would ship is calibrated; none with --no-calibrate or too few rows), a later
    candidate chosen over the one chosen so far when its mean loss is lower by more than one standard error of the
    paired per-row difference (patients as clusters: a patient's rows share its noise). Balanced accuracy counts a
    row as right or wrong and moved by a sample or two on ~200 rows (GSE7390 grade: the chosen candidate scored 0.457
    on the test folds where either alone scored 0.461 and 0.479); the log loss weighs how sure each call was.
    Measured on the accuracy benchmark (10 sets x 3 seeds x 5 folds, against balanced accuracy as the criterion):
    mean balanced accuracy 0.819 -> 0.823, log loss 0.402 -> 0.390, ECE 0.046 -> 0.038; NCI60 0.717 -> 0.738,
    GSE7390 grade 0.457 -> 0.473, AD proteins 0.800 -> 0.811, GSE7390 ER 0.810 -> 0.805."""
    from ..calibration import MIN_ROWS, row_log_losses

    fit_T = calibrate and len(y) >= MIN_ROWS
    losses = [row_log_losses(c.choice_logits, y, link, fit_temperature(c.choice_logits, y, link) if fit_T else None)
              for c in cands]
    best, margins = 0, []
    for i in range(1, len(cands)):
        d = losses[best] - losses[i]  # > 0 where candidate i is the surer of the truth
        margins.append(cluster_se(d, groups))
        if d.mean() > margins[-1]:
            best = i
    table = [{"hidden": list(c.spec.hidden), "augment_noise": noise_used(c.runs) if c.runs else c.spec.augment_noise,
              "lr": c.spec.lr, **({} if c.spec.optimizer == AUTO else {"optimizer": c.spec.optimizer}),
              "score": None if not np.isfinite(c.score) else c.score,
              "log_loss": float(loss.mean())} for c, loss in zip(cands, losses)]
    shown = "; ".join(f"{c.spec.describe()}: {_loss_words(loss.mean())}" for c, loss in zip(cands, losses))
    margin_words = (f"must lower it by more than {_loss_words(margins[0])}" if len(margins) == 1 else
                    "must lower the one chosen before it by more than its margin: " + ", ".join(
                        f"{c.spec.describe()}: {_loss_words(m)}" for c, m in zip(cands[1:], margins)))
    temperature = "each at its own temperature" if fit_T else "uncalibrated"
    clusters = ", patients as clusters" if groups is not None else ""
    notes.append(f"--hidden auto: {cands[best].spec.describe()} chosen by {what.replace('score', 'log loss')} "
                 f"({temperature}: {shown}; a later (more complex or slower) candidate {margin_words}; one standard "
                 f"error of the paired difference{clusters})")
    return cands[best], table


def _paired_se(a: FittedCandidate, b: FittedCandidate, y: np.ndarray | None, task: str | None,
               groups: np.ndarray | None = None) -> float:
    """Standard error of the difference in balanced accuracy between two candidates scored on the same
    rows: balanced accuracy is sum_i w_i correct_i with w_i = 1 / (K n_class(i)), so the difference is
    sum_i w_i d_i over the paired per-row differences d_i, with variance ~ sum_i w_i^2 d_i^2; with ``groups``
    (patients) the sum of each patient's w_i d_i squared, whose rows share its noise."""
    if y is None or task not in data.CLASSIFICATION_TASKS:
        return 0.0
    y = np.asarray(y, dtype=np.int64)

    def correct(c: FittedCandidate) -> np.ndarray:
        z = c.choice_logits
        pred = (z[:, 0] > 0).astype(np.int64) if z.shape[1] == 1 else z.argmax(axis=1)
        return (pred == y).astype(np.float64)

    d = correct(b) - correct(a)
    counts = np.bincount(y)
    w = 1.0 / (np.count_nonzero(counts) * counts[y])
    if groups is not None:
        return float(np.sqrt(np.sum(cluster_sums(w * d, groups) ** 2)))
    return float(np.sqrt(np.sum((w * d) ** 2)))


def _describe_hidden(hidden: list[int]) -> str:
    return "no hidden layer" if not hidden else "hidden " + ",".join(map(str, hidden))


def held_out_score(task: str, y: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """The main metric as a "higher is better" number (RMSE negated), NaN-safe. Several regression targets: the
    RMSE of their errors in units of each target's SD over these rows (the pooled RMSE, in mixed units, was in
    effect the largest-unit target's alone: an IC50 beside an age had no say in the choice)."""
    if task == "regression" and proba.ndim == 2 and proba.shape[1] > 1:
        Y = np.asarray(y, dtype=np.float64).reshape(proba.shape)
        sd = Y.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)  # a target that does not vary here: its errors in its own units
        value = float(np.sqrt(np.mean(((proba - Y) / sd) ** 2)))
        return -value if np.isfinite(value) else -math.inf
    name = metrics.main_metric_name(task)
    value = metrics.compute(task, y, metrics.as_task_proba(task, proba), list(range(n_classes)) if task in
                            data.CLASSIFICATION_TASKS else [f"y{j}" for j in range(proba.shape[1])]).get(name)
    if value is None or not np.isfinite(value):
        return -math.inf
    return float(value) if metrics.higher_is_better(name) else -float(value)


def noise_used(runs: list[FittedRun]) -> float:
    """The input-noise SD the members trained with ("auto" depends on each member's row count, so the
    members differ in the last digits: the median, to 4 significant digits, is what the model records)."""
    return float(f"{np.median([run.options.augment_noise for run in runs]):.4g}")
