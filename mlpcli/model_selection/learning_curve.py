"""The sample-size learning curve (lecture notes, "Learning Curves"): train at growing training-set
sizes and read the training and validation scores against the number of training samples.

    table ─split once by group─▶ training groups │ validation groups (fixed for every size)
          ─nested, stratified subsets of the training GROUPS (10 % ⊂ 25 % ⊂ ... ⊂ 100 %)─▶
          ─per size: Preprocessor refitted on the subset, a fresh network, training.fit─▶ scores

It answers the notes' two questions:

1. *Does more data still help?* The slope of the validation error over the largest sizes, per
   doubling of the training set: still improving, or plateaued.
2. *Bias or variance?* At the largest size: a poor training score (both curves poor) is bias; a
   training score far better than the validation score (a large gap) is variance.

Errors are compared in units of the *no-skill error* (the error of always predicting the class
prior or the training mean), so one set of thresholds serves every task. For balanced accuracy
that is 1 - 1/K, and the error is (1 - score) / (1 - 1/K). For regression the bias/variance answer
reads the squared error, in which bias, variance and noise add up: the error is MSE / the MSE of
predicting the mean, 1 - R², the share of the target's variance left unexplained (an RMSE ratio of
0.25 is already 94 % of the variance explained: it called well-fitting models biased); see
``_levels``. The more-data slope reads the RMSE against the no-skill RMSE, so that it moves as the
RMSE the user sees does (in 1 - R², a model that explains 97 % of the variance could halve its
remaining error and still look flat). Several regression targets are scored in units of each target's SD
on the training side (``_target_units``), so that every target weighs the same, as a note says.

Sizes train in parallel with joblib (``n_jobs``); every size uses the same seed, so the results do
not depend on ``n_jobs``. BLAS threads are capped per worker so workers do not oversubscribe.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from .. import data, metrics
from ..calibration import probabilities
from ..config import AUTO, TrainOptions, require_options
from ..auto_defaults import auto_noise
from ..decision import DECIDED, MIN_LABEL_EVENTS, balanced_accuracy, choose, label_balanced_accuracy
from ..diagnosis.sample_size import bias_variance, fraction_words, more_data, rise_within_chance
from ..errors import ConfigError, DataError
from ..parallel import Plan, fits_plan, local_workers, member_plan, run
from ..text import count_of
from ..training import evaluate_loss
from .crossfit import check_decision, check_missing, decision_shares, validation_dataset
from .fitting import SINGLE_RUN_HIDDEN, fit_run, resolve_log1p, worker_copy_bytes
from .splits import holdout, summarize_split

__all__ = ["DEFAULT_FRACTIONS", "SizePoint", "LearningCurveResult", "fraction_words", "learning_curve",
           "nested_group_subsets", "parse_fractions"]

DEFAULT_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)
_SUBSET_STREAM = 2  # SeedSequence([seed, 2]) draws the subsets; training uses streams 0 and 1
#   (balanced accuracy within 5 points of chance with 2 classes) while the training rows were learned (LEARNED)


@dataclass
class SizePoint:
    """One training-set size: scores of the network restored at its best epoch.

    Scores are the task's main metric (balanced accuracy, or RMSE in the target's units); the
    training score and loss are measured in inference mode (no dropout)."""

    fraction: float  # requested fraction of the training groups
    n_train: int  # training samples
    n_groups: int | None  # training groups (None without a group column)
    train_score: float
    val_score: float
    train_loss: float
    val_loss: float
    baseline_val_loss: float | None  # loss of predicting this subset's prior on validation
    best_epoch: int
    epochs_run: int
    seconds: float
    curve_label: str | None  # the per-epoch curves' diagnosis at this size (None if too short)
    metric: str | None = None  # which metric the scores are: balanced_accuracy | rmse
    train_chance_score: float | None = None  # regression: the no-skill RMSE on this size's own training rows
    #   (their spread around their mean); None for classifiers, whose chance level is the same on both sides
    decision: str | None = None  # binary / multiclass: the rule the scores' labels follow (argmax | balanced: --decision,
    #   auto choosing on the validation rows as train --folds 1 does); None for other tasks


@dataclass
class LearningCurveResult:
    metric: str  # balanced_accuracy | rmse
    higher_is_better: bool
    chance_score: float  # the no-skill score on the validation set
    points: list[SizePoint]  # ascending n_train
    n_val: int
    n_val_groups: int | None
    more_data: dict  # verdict "helps" | "unclear" | "plateaued" | None, slope, text
    bias_variance: dict  # verdict "bias" | "variance" | "both" | "neither" | "no_signal", levels, text
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    split: dict = field(default_factory=dict)
    # binary / multiclass / multi-label: the --decision option the sizes' labels followed (auto|argmax|balanced)
    decision: str | None = None
    # row indices into the table: each size's training rows and the fixed validation rows (not in JSON)
    train_rows: list[np.ndarray] = field(default_factory=list, repr=False)
    val_rows: np.ndarray | None = field(default=None, repr=False)
    task: str | None = None  # the table's task (the words for its decision rule)

    def to_dict(self) -> dict:
        return {
            "metric": self.metric, "higher_is_better": self.higher_is_better, "chance_score": self.chance_score,
            "n_val": self.n_val, "n_val_groups": self.n_val_groups,
            "sizes": [asdict(p) for p in self.points], "skipped": list(self.skipped),
            "more_data": dict(self.more_data), "bias_variance": dict(self.bias_variance),
            "notes": list(self.notes), "warnings": list(self.warnings), "split": dict(self.split),
            "decision": self.decision,
        }

    def rule_words(self) -> str | None:
        """Which decision rule the scores' labels follow, in a few words ("the balanced rule", "argmax at 10%,
        the balanced rule at 25%-100%"); None for tasks without one."""
        rules = [(p.fraction, p.decision) for p in self.points if p.decision]
        if not rules:
            return None
        words = {"argmax": "argmax (the most probable class)",
                 "balanced": "the balanced rule (the most probable class relative to its training share)"}
        if self.task == "multilabel":
            words = {"argmax": "each label at P >= 0.5",
                     "balanced": "the balanced rule (each label present when P >= its training share)"}
        kinds = {r for _, r in rules}
        if len(kinds) == 1:
            return words[rules[0][1]]
        order = list(dict.fromkeys(r for _, r in rules))  # as the sizes first use them
        return "; ".join(f"{words[k]} at {', '.join(fraction_words(f) for f, r in rules if r == k)}" for k in order)


def parse_fractions(text: str | Sequence[float]) -> tuple[float, ...]:
    """'0.1,0.25,1' or '10%,25%,100%' -> sorted unique fractions in (0, 1]; ConfigError otherwise."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        s = str(item).strip()
        try:
            v = float(s[:-1]) / 100 if s.endswith("%") else float(s)
        except ValueError:
            raise ConfigError(f"--fractions: {s!r} is not a number; give fractions such as 0.1,0.25,0.5,1") from None
        if not (0 < v <= 1):
            raise ConfigError(f"--fractions: {s} is outside (0, 1]; give fractions of the training groups")
        out.append(v)
    if not out:
        raise ConfigError("--fractions: give at least one fraction, e.g. 0.1,0.25,0.5,0.75,1")
    return tuple(sorted(set(out)))


# --- subsets ---------------------------------------------------------------------------------------


def nested_group_subsets(groups: np.ndarray, fractions: Sequence[float], seed: int,
                         strata: np.ndarray | None = None) -> list[np.ndarray]:
    """Nested subsets of whole groups: one sorted array of positions into ``groups`` per fraction.

    groups: (n,) group of each training row; strata: (n,) stratum of each row (its class) or None.
    Each group joins the rarest stratum among its rows (rarest: held by the fewest groups), so a
    group holding a rare class is placed by that class, not by the common class beside it; a stratum
    whose every group went to a rarer one takes one of them (seeded) for its own. Within a stratum the
    groups are shuffled once (seeded), and fraction f takes the first ceil(f x n_s) of each stratum's
    groups. So every stratum is represented at every size, and a smaller subset lies inside every
    larger one.
    """
    groups = np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)  # sorted: independent of row order
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SUBSET_STREAM]))
    group_stratum = np.zeros(len(uniq), dtype=np.int64)
    if strata is not None:
        _, s_idx = np.unique(np.asarray(strata), return_inverse=True)
        holds = np.zeros((len(uniq), s_idx.max() + 1), dtype=bool)  # (n_groups, n_strata)
        holds[inverse, s_idx] = True
        group_stratum[:] = -1
        for s in np.argsort(holds.sum(axis=0), kind="stable"):  # rarest first
            free = holds[:, s] & (group_stratum < 0)
            if free.any():
                group_stratum[free] = s
            else:  # every group holding s went to a rarer stratum: one of them becomes s's own, always taken
                group_stratum[rng.choice(np.flatnonzero(holds[:, s]))] = s
    orders = [rng.permutation(np.flatnonzero(group_stratum == s)) for s in np.unique(group_stratum)]
    subsets = []
    for f in fractions:
        # 1e-9: 0.3 x 10 is 3.0000000000000004 in floating point, which must not round up to 4
        chosen = np.concatenate([order[:max(1, math.ceil(f * len(order) - 1e-9))] for order in orders])
        subsets.append(np.flatnonzero(np.isin(inverse, chosen)))
    return subsets


def missing_classes(ds: data.Dataset, rows: np.ndarray, reference: np.ndarray) -> list[str]:
    """Classes (or, multi-label, labels without both values) present in ``reference`` rows but
    missing from ``rows``: such a subset cannot train the same model."""
    if ds.task in data.CLASSIFICATION_TASKS:
        absent = np.setdiff1d(np.unique(ds.y[reference]), np.unique(ds.y[rows]))
        return [str(ds.classes[i]) for i in absent]
    if ds.task == "multilabel":
        Y, R = ds.y[rows], ds.y[reference]
        varies = lambda M, j: M[:, j].min() != M[:, j].max()  # noqa: E731
        return [str(ds.classes[j]) for j in range(Y.shape[1]) if varies(R, j) and not varies(Y, j)]
    return [] if len(rows) >= 2 else ["(at least 2 samples)"]


def _lacking_words(ds: data.Dataset, fraction: float, rows: np.ndarray, reference: np.ndarray,
                   missing: list[str]) -> str:
    """Why a size is skipped, in words: which classes (multi-label: which labels' positives or negatives) its rows
    lack and how few the whole training side holds. Such a size's network cannot learn them, and its score (a mean
    over classes or labels) would average fewer of them than the other sizes': not a point on the same curve. "It
    lacks 'C'" said neither what was missing nor why the size went."""
    head = f"{fraction_words(fraction)} of the training groups ({count_of(len(rows), 'sample')}) skipped"
    if ds.task == "multilabel":
        names = [str(c) for c in ds.classes]
        parts = []
        for m in missing[:5]:
            j = names.index(m)
            here, total = ds.y[rows][:, j], ds.y[reference][:, j]
            value = "positive" if here.max() == 0 else "negative"
            count = int(total.sum()) if value == "positive" else int(len(total) - total.sum())
            parts.append(f"no {value} for label {m!r} ({count} on the whole training side)")
        return (f"{head}: it holds {', '.join(parts)}{' …' if len(missing) > 5 else ''}, so its network could not "
                "learn that label and its balanced accuracy, the mean over the labels, would count fewer labels than "
                "the other sizes'")
    if ds.task in data.CLASSIFICATION_TASKS:
        counts = {str(ds.classes[k]): int(n) for k, n in zip(*np.unique(ds.y[reference], return_counts=True))}
        named = ", ".join(f"{m!r} ({count_of(counts.get(m, 0), 'sample')} on the whole training side)"
                          for m in missing[:5])
        return (f"{head}: it holds no sample of class {named}{' …' if len(missing) > 5 else ''}, so its network could "
                "not learn that class and its balanced accuracy would count fewer classes than the other sizes'")
    return f"{head}: it lacks {', '.join(missing[:5])}"


def _lacking_remedy(ds: data.Dataset, lacking: list[float], kept: list[float]) -> str:
    """What to do about sizes skipped for a rare class or label, said once after them: the curve runs from the
    smallest size that holds it, and --fractions from there gives it more points."""
    what = "label's positives (or negatives)" if ds.task == "multilabel" else "class"
    leave = "label (--target)" if ds.task == "multilabel" else "class's rows"
    start = min(kept)
    more = (f"for more points give --fractions from there up (e.g. --fractions {_fractions_from(start)}), or" if start < 1
            else "only the whole training side holds it, and one size cannot say whether more data helps;")
    return (f"{len(lacking)} size{'s' if len(lacking) != 1 else ''} ({', '.join(fraction_words(f) for f in lacking)}) "
            f"skipped for want of a rare {what}: the curve starts at {fraction_words(start)}; {more} leave out the "
            f"rare {leave} to curve the others from smaller sizes")


def _fractions_from(start: float) -> str:
    """Four sizes from ``start`` to 1, evenly spaced in log2 (the more-data slope reads per doubling)."""
    values = sorted({float(f"{start ** (1 - t):.2g}") for t in (0, 1 / 3, 2 / 3)} | {1.0})
    return ",".join(f"{v:g}" for v in values)


# --- one size ----------------------------------------------------------------------------------------


def _scores(task: str, n_classes: int, out: np.ndarray, y_fit: np.ndarray, y_orig: np.ndarray,
            scaling: tuple[np.ndarray, np.ndarray] | None, unit: np.ndarray | None = None) -> float:
    """The main metric from raw outputs: balanced accuracy, or RMSE in the target's own units (several targets:
    each target's errors divided by its ``unit``, ``_target_units``)."""
    if task == "regression":
        mu, sd = scaling
        errors = out * sd + mu - y_orig.reshape(out.shape)
        return float(np.sqrt(np.mean((errors if unit is None else errors / unit) ** 2)))
    return metrics.main_metric_from_outputs(task, n_classes)(out, y_fit)


def _target_units(ds: data.Dataset, train_rows: np.ndarray) -> np.ndarray | None:
    """Several regression targets: each one's SD over the whole training side, the unit its errors are scored in at
    every size (fixed, so the sizes' RMSEs compare). Pooled in their own units, the widest target was the curve
    alone, and its R² that of the stacked columns, where `train` and `evaluate` give the mean of the targets' R²;
    in SD units every target weighs the same, and on the whole training side (fraction 1) the training R² is exactly
    the mean of the targets'. None for one target (its own units, as `train` reports it) or other tasks."""
    if ds.task != "regression" or np.ndim(ds.y) < 2 or np.shape(ds.y)[1] < 2:
        return None
    sd = np.asarray(ds.y[train_rows], dtype=np.float64).std(axis=0)
    return np.where(sd > 0, sd, 1.0)  # a target that does not vary: its errors in its own units


def _units_note(ds: data.Dataset, unit: np.ndarray) -> str:
    """What a several-target curve plots, said as a note (its RMSE is no target's own)."""
    names = list(ds.target_names or ds.classes or [f"y{j}" for j in range(len(unit))])
    sds = ", ".join(f"{n!r} {v:.3g}" for n, v in zip(names, unit))
    return (f"{len(unit)} regression targets: the curve's RMSE pools their errors in units of each target's SD on the "
            f"training side ({sds}), so every target weighs the same, and its R² is that of those standardised "
            "errors — on the whole training side (fraction 1) the training R² is the mean of the targets' R², as "
            "`train` and `evaluate` report it (validation's weighs each target by its spread there); curve each "
            "target alone (--target) for its RMSE in its own units")


def _fit_size(train_ds: data.Dataset, val_ds: data.Dataset, options: TrainOptions, fraction: float,
              unit: np.ndarray | None = None) -> SizePoint:
    """Train a fresh model on ``train_ds`` (preprocessing refitted on it) and score it (several regression targets:
    in ``unit``s, ``_target_units``).

    Module-level so joblib can send it to a worker."""
    from ..diagnosis import diagnose

    started = time.perf_counter()
    fitted = fit_run(train_ds, val_ds, options)
    result, n_classes = fitted.result, len(train_ds.classes)
    scaling = None
    if fitted.target_scaling:
        scaling = (np.asarray(fitted.target_scaling["mean"]), np.asarray(fitted.target_scaling["sd"]))
    # Scored with the restored best weights.
    train_loss, train_out = evaluate_loss(fitted.network, fitted.setup.loss, fitted.X_train, fitted.y_train, fitted.sample_weight)
    val_loss, val_out = evaluate_loss(fitted.network, fitted.setup.loss, fitted.X_val, fitted.y_val, fitted.val_sample_weight)
    decision = _size_decision(train_ds, val_ds, fitted, val_out, options.decision)
    if decision is None:
        train_score = _scores(train_ds.task, n_classes, train_out, fitted.y_train, train_ds.y, scaling, unit)
        val_score = _scores(train_ds.task, n_classes, val_out, fitted.y_val, val_ds.y, scaling, unit)
    else:  # labelled by the rule the size's model would ship with, on its calibrated probabilities
        rule, proba = decision
        score = label_balanced_accuracy if train_ds.task == "multilabel" else balanced_accuracy
        train_score = score(train_ds.y, rule.classes(train_ds.task, proba(train_out)))
        val_score = score(val_ds.y, rule.classes(train_ds.task, proba(val_out)))
    train_chance = None
    if train_ds.task == "regression":
        y = np.asarray(train_ds.y, dtype=np.float64)
        spread = y - y.mean(axis=0)
        train_chance = float(np.sqrt(np.mean((spread if unit is None else spread / unit) ** 2)))
    h = result.history
    label = None
    if len(h) >= 3:
        label = diagnose([r["train_loss"] for r in h], [r["val_loss"] for r in h],
                         baseline=result.baseline.get("val_loss"),
                         train_eval_loss=[r["train_loss_eval"] for r in h],
                         stochastic_regularisation=fitted.options.dropout > 0 or fitted.options.augment_noise > 0).label
    return SizePoint(
        fraction=float(fraction), n_train=int(train_ds.n_samples),
        n_groups=None if train_ds.groups is None else int(len(np.unique(train_ds.groups))),
        train_score=float(train_score), val_score=float(val_score), train_loss=float(train_loss),
        val_loss=float(val_loss), baseline_val_loss=result.baseline.get("val_loss"),
        best_epoch=int(result.best_epoch), epochs_run=int(result.epochs_run),
        seconds=time.perf_counter() - started, curve_label=label,
        metric=metrics.main_metric_name(train_ds.task), train_chance_score=train_chance,
        decision=None if decision is None else decision[0].rule,
    )


def _size_decision(train_ds: data.Dataset, val_ds: data.Dataset, fitted, val_out: np.ndarray, option: str):
    """(Decision, logits -> probabilities) for a binary, multiclass or multi-label size, as ``train --folds 1`` would
    ship its network: a temperature fitted on the validation logits (from ``calibration.MIN_ROWS`` rows; the curve's
    --calibrate is train's default) and the --decision rule, ``auto`` choosing on those validation rows; the shares
    are the size's training rows'. None for other tasks (their score has no labels to decide)."""
    from ..calibration import MIN_ROWS, fit_temperature

    if decision_shares(train_ds, fitted.options) is None:
        return None
    link = fitted.setup.loss.output_activation
    T = None
    if link in ("softmax", "sigmoid") and val_ds.n_samples >= MIN_ROWS:
        T = fit_temperature(val_out, np.asarray(val_ds.y).reshape(-1).astype(np.int64) if link == "softmax"
                            else np.asarray(val_ds.y).astype(np.float64).reshape(val_out.shape), link)
    shares = decision_shares(train_ds, fitted.options, T)

    def proba(out: np.ndarray) -> np.ndarray:
        return metrics.as_task_proba(train_ds.task, probabilities(out, link, T))

    y = np.asarray(val_ds.y) if train_ds.task == "multilabel" else np.asarray(val_ds.y).reshape(-1)
    return choose(train_ds.task, y, proba(val_out), shares, option), proba


# --- the split -----------------------------------------------------------------------------------------


def _chance_and_scale(ds: data.Dataset, train_rows: np.ndarray, val_ds: data.Dataset,
                      unit: np.ndarray | None = None) -> tuple[float, float]:
    """(no-skill score on validation, no-skill error): what always predicting the prior or the
    training mean scores. Balanced accuracy of a constant prediction is 1/K over the K classes
    present; RMSE of the training mean is the validation targets' spread around it (in ``unit``s)."""
    if ds.task == "regression":
        mean = ds.y[train_rows].mean(axis=0)
        errors = val_ds.y - mean
        rmse = float(np.sqrt(np.mean((errors if unit is None else errors / unit) ** 2)))
        return rmse, max(rmse, 1e-12)
    chance = 0.5 if ds.task == "multilabel" else 1.0 / len(np.unique(val_ds.y))
    return chance, 1.0 - chance


# --- the entry point ---------------------------------------------------------------------------------------


def _in_size_order(progress: Callable[[SizePoint], None], fractions: list[float]) -> Callable[[SizePoint], None]:
    """``progress`` called in the order of ``fractions`` (the sizes, smallest first), each point as soon as it and
    every smaller size are done: sizes trained side by side finish in any order (the smallest, trained longest by
    its early stopping, often last), and a log read "25 %, 50 %, 10 %, ..."."""
    waiting: dict[float, SizePoint] = {}
    order = iter(fractions)
    nxt = [next(order, None)]

    def arrived(point: SizePoint) -> None:
        waiting[point.fraction] = point
        while nxt[0] is not None and nxt[0] in waiting:
            progress(waiting.pop(nxt[0]))
            nxt[0] = next(order, None)

    return arrived


def learning_curve(
    path,
    options: TrainOptions,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    n_jobs: int | None = 1,
    threads: int | None = None,
    progress: Callable[[SizePoint], None] | None = None,
    stdin=None,
) -> LearningCurveResult:
    """Train at several sizes of the training groups of the table at ``path``; see the module doc.

    fractions: of the training groups, each in (0, 1]; the validation groups are the same at every
    size. n_jobs: parallel sizes (joblib, loky; -1 = all cores); None, the command's default: the usable cores, one
    size per worker process, or this process when each worker would copy more than 64 MB of rows
    (``parallel.fits_plan``). threads: BLAS threads per fit (default 1). progress(point) is called as each size
    finishes, in size order.
    Raises DataError when no size contains every class of the training side.
    """
    require_options(options, "learning_curve takes")  # a dict of options failed with an AttributeError inside
    options.validate()
    fractions = parse_fractions(fractions)
    ds, notes = data.load_dataset(path, **options.roles(), stdin=stdin)
    notes = notes + ds.notes
    warnings = list(ds.warnings)
    if ds.y is None or ds.task is None:
        raise DataError("the table has no target column; name it with --target")
    check_decision(options, ds.task)
    check_missing(options, ds)
    if options.val_data:
        val_ds = validation_dataset(ds, options)
        summary = summarize_split(ds, val_ds, f"explicit validation table ({options.val_data})")
        train_rows, val_rows = np.arange(ds.n_samples), None
    else:
        train_rows, val_rows, summary = holdout(ds, options.val_size, options.seed)
        val_ds = ds.subset(val_rows)
    warnings += summary.warnings
    # One network per size on a fixed validation set: "auto" choices are made once, on all training rows,
    # so that every size trains the same model.
    log1p, skew = resolve_log1p(options, ds.X[train_rows], notes, warnings, ds.feature_names)
    if skew is not None:
        notes.append(f"--log1p auto: applied log(1 + x) (median skewness {skew:.1f})")
    noise = options.augment_noise
    if options.hidden == AUTO:
        # train's hidden-layer candidate (portfolio.portfolio): with more features than training rows the hidden
        # layer with input noise, tried before the plain one, which memorises its rows at every size (its curves
        # answered "more data?" for another model than train ships on such tables, the sample data's on Intel)
        noisy = noise in (0, 0.0) and auto_noise(len(train_rows), ds.n_features) > 0
        noise = AUTO if noisy else noise
        notes.append(f"--hidden auto: each size trains one network with hidden {','.join(map(str, SINGLE_RUN_HIDDEN))}"
                     + (" and input noise (--augment-noise auto: SD sqrt(features / training rows) at each size, "
                        "train's hidden-layer candidate when the features outnumber the rows)" if noisy else ""))
    options = replace(options, log1p=log1p, folds=1, augment_noise=noise,
                      hidden=SINGLE_RUN_HIDDEN if options.hidden == AUTO else options.hidden)

    strata = ds.y[train_rows] if ds.task in data.CLASSIFICATION_TASKS else None
    groups = ds.groups[train_rows] if ds.groups is not None else np.arange(len(train_rows))
    subsets = [train_rows[s] for s in nested_group_subsets(groups, fractions, options.seed, strata)]

    jobs, skipped, seen, lacking = [], [], {}, []
    n_groups = len(np.unique(groups))
    for f, rows in zip(fractions, subsets):
        missing = missing_classes(ds, rows, train_rows)
        if missing:
            skipped.append(_lacking_words(ds, f, rows, train_rows, missing))
            lacking.append(f)
        elif len(rows) in seen:
            # whole groups round: with 6 training donors, 75 % and 100 % are both all 6 (said so, not just "100 %")
            kept = len(np.unique(ds.groups[rows])) if ds.groups is not None else len(rows)
            unit = "groups" if ds.groups is not None else "samples"
            skipped.append(f"{fraction_words(f)} of the training groups skipped: it rounds to the same {kept} of "
                           f"{n_groups} {unit} ({count_of(len(rows), 'sample')}) as {fraction_words(seen[len(rows)])}")
        else:
            seen[len(rows)] = f
            jobs.append((f, rows))
    if not jobs:
        raise DataError(f"no training-set size contains every class: {'; '.join(skipped)}; use larger --fractions")
    if lacking:
        skipped.append(_lacking_remedy(ds, lacking, [f for f, _ in jobs]))

    # BLAS threads per fit are the same whatever n_jobs (parallel.py says why), so the curve does
    # not depend on how many sizes run side by side.
    if n_jobs is None:  # the command's default: the usable cores, one size per worker, unless copies are large
        largest = max(len(rows) for _, rows in jobs) + val_ds.n_samples
        plan = fits_plan(member_plan(None, threads), len(jobs), worker_copy_bytes(ds, largest, options))
        if plan.n_jobs == 1 and len(jobs) > 1 and local_workers(member_plan(None, threads).n_jobs, len(jobs)) > 1:
            notes.append("the sizes trained one after the other in this process: a worker process for each would "
                         "copy more than 64 MB of rows (--n-jobs N runs N side by side)")
    else:
        plan = Plan(backend="loky", n_jobs=local_workers(n_jobs, len(jobs)), threads=threads)
    unit = _target_units(ds, train_rows)
    if unit is not None:
        notes.append(_units_note(ds, unit))
    points = run([(_fit_size, (ds.subset(rows), val_ds, options, f, unit)) for f, rows in jobs], plan,
                 on_result=None if progress is None else _in_size_order(progress, [f for f, _ in jobs]))

    higher = ds.task != "regression"
    chance, scale = _chance_and_scale(ds, train_rows, val_ds, unit)
    metric = metrics.main_metric_name(ds.task)
    val_units = int(len(np.unique(val_ds.groups))) if val_ds.groups is not None else int(val_ds.n_samples)
    val_unit_name = "patients" if val_ds.groups is not None else "samples"
    more = more_data(points, higher, chance, scale, metric, val_units, val_unit_name)
    decided = ds.task in DECIDED and any(p.decision for p in points)
    if decided:
        notes.append(_decision_note(options.decision, points, val_ds.n_samples, options.class_weight == "balanced"))
    bv = bias_variance(points, higher, chance, scale, metric, more["verdict"], val_units, val_unit_name,
                       _held_labels(ds, val_ds) if decided else None, linear=not options.hidden)
    if bv["verdict"] == "no_signal":  # a rise that never leaves the no-skill band is no reason to collect samples
        more = rise_within_chance(more, metric)
    return LearningCurveResult(
        metric=metric, higher_is_better=higher, chance_score=chance, points=points,
        n_val=int(val_ds.n_samples),
        n_val_groups=None if val_ds.groups is None else int(len(np.unique(val_ds.groups))),
        more_data=more,
        bias_variance=bv,
        skipped=skipped, notes=notes, warnings=warnings, split=asdict(summary),
        train_rows=[rows for _, rows in jobs], val_rows=val_rows, decision=options.decision if decided else None,
        task=ds.task,
    )


def _held_labels(ds: data.Dataset, val_ds: data.Dataset) -> list[tuple[str, int]]:
    """A multi-label table's labels with fewer than MIN_LABEL_EVENTS validation positives or negatives (name, the
    fewer), which the decision rule leaves at P >= 0.5 at every size (``decision.choose``); [] for other tasks."""
    if ds.task != "multilabel":
        return []
    Y = np.asarray(val_ds.y).reshape(val_ds.n_samples, -1)
    fewer = np.minimum(Y.sum(axis=0), len(Y) - Y.sum(axis=0)).astype(int)
    return [(str(name), int(k)) for name, k in zip(ds.classes, fewer) if k < MIN_LABEL_EVENTS]


def _decision_note(option: str, points: list[SizePoint], n_val: int, equal_shares: bool = False) -> str:
    """Which labels the balanced accuracies count (``--decision``): those each size's network would give, shipped
    alone as ``train --folds 1`` ships it. ``equal_shares``: --class-weight balanced, under which the balanced rule
    is argmax."""
    from ..calibration import MIN_ROWS

    if equal_shares and any(p.decision == "balanced" for p in points):
        return (f"--decision {option}: the balanced accuracies count the most probable class (under --class-weight "
                "balanced every class weighs the same in the loss, so the balanced rule labels as argmax)")

    calibrated = (f"on probabilities calibrated on the {n_val} validation rows" if n_val >= MIN_ROWS else
                  f"on uncalibrated probabilities ({n_val} validation rows; calibration needs {MIN_ROWS})")
    if option != "auto":
        return (f"--decision {option}: the balanced accuracies count each size's labels by the {option} rule, "
                f"{calibrated}, as `train --folds 1` would label")
    by_rule = {r: [fraction_words(p.fraction) for p in points if p.decision == r] for r in ("balanced", "argmax")}
    if not by_rule["balanced"]:
        chosen = "argmax at every size (the balanced rule never scored higher)"
    elif not by_rule["argmax"]:
        chosen = "the balanced rule at every size"
    else:
        chosen = f"the balanced rule at {', '.join(by_rule['balanced'])}, argmax at {', '.join(by_rule['argmax'])}"
    optimistic = ("; a validation score of the balanced rule is a little optimistic, chosen on the rows it is scored "
                  "on" if by_rule["balanced"] else "")
    return (f"--decision auto: each size's rule is chosen on the validation rows as `train --folds 1` chooses, "
            f"{calibrated}: {chosen}{optimistic}")
