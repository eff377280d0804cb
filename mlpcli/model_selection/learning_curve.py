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
remaining error and still look flat).

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
from ..config import AUTO, TrainOptions, auto_noise
from ..decision import DECIDED, MIN_LABEL_EVENTS, balanced_accuracy, choose, label_balanced_accuracy
from ..errors import ConfigError, DataError
from ..parallel import Plan, local_workers, run
from ..training import evaluate_loss
from .crossfit import check_decision, check_missing, decision_shares, validation_dataset
from .fitting import SINGLE_RUN_HIDDEN, fit_run, resolve_log1p
from .splits import holdout, summarize_split

__all__ = ["DEFAULT_FRACTIONS", "SizePoint", "LearningCurveResult", "fraction_words", "learning_curve",
           "nested_group_subsets", "parse_fractions"]

DEFAULT_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)

# --- reading the curve (errors in units of the no-skill error) -------------------------------------
SLOPE_SIZES = 3  # "over the largest sizes": the slope uses the three largest (50-100 % by default),
#                  which span one doubling of the training set
HELPS_PER_DOUBLING = 0.02  # more data "still helps" when each doubling of the training set removes
#   >= 2 % of the no-skill error from the validation error (1.5 balanced-accuracy points with 4
#   classes); less than that is within the noise of a typical omics validation set: a plateau
BIAS_LEVEL = 0.25  # "both curves poor": the training error keeps >= 25 % of the no-skill error
#   (training balanced accuracy below ~0.81 with 4 classes or 0.875 with 2; training R^2 below 0.75)
VARIANCE_GAP = 0.10  # "large gap": validation error exceeds training error by >= 10 % of the
#   no-skill error (7.5 balanced-accuracy points with 4 classes, 5 with 2; R^2 lower by 0.10)
_SUBSET_STREAM = 2  # SeedSequence([seed, 2]) draws the subsets; training uses streams 0 and 1
LEARNED = 0.25  # "the training rows were learned": training removed at least a quarter of the no-skill error (less,
#   beside a validation at chance, is bias: a model that learns nothing anywhere, not a signal that fails to carry)
NO_SIGNAL_SE = 0.15  # ... said only where two standard errors of a chance score are at most 15 % of the no-skill
#   error (about 180 validation samples for 2 classes): on fewer, a caveat says the answer is tentative instead
NO_SIGNAL = 0.10  # "no learnable signal": at every size validation removes less than 10 % of the no-skill error
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


def fraction_words(fraction: float) -> str:
    """A training-set fraction as a percentage to 3 significant figures: 0.25 "25%", 0.125 "12.5%", 0.001 "0.1%"
    (whole percents showed 0.001 as "0%", a size of no samples)."""
    return f"{fraction * 100:.3g}%"


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


def _missing_classes(ds: data.Dataset, rows: np.ndarray, reference: np.ndarray) -> list[str]:
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


# --- one size ----------------------------------------------------------------------------------------


def _scores(task: str, n_classes: int, out: np.ndarray, y_fit: np.ndarray, y_orig: np.ndarray,
            scaling: tuple[np.ndarray, np.ndarray] | None) -> float:
    """The main metric from raw outputs: balanced accuracy, or RMSE in the target's own units."""
    if task == "regression":
        mu, sd = scaling
        return float(np.sqrt(np.mean((out * sd + mu - y_orig.reshape(out.shape)) ** 2)))
    return metrics.main_metric_from_outputs(task, n_classes)(out, y_fit)


def _fit_size(train_ds: data.Dataset, val_ds: data.Dataset, options: TrainOptions, fraction: float) -> SizePoint:
    """Train a fresh model on ``train_ds`` (preprocessing refitted on it) and score it.

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
        train_score = _scores(train_ds.task, n_classes, train_out, fitted.y_train, train_ds.y, scaling)
        val_score = _scores(train_ds.task, n_classes, val_out, fitted.y_val, val_ds.y, scaling)
    else:  # labelled by the rule the size's model would ship with, on its calibrated probabilities
        rule, proba = decision
        score = label_balanced_accuracy if train_ds.task == "multilabel" else balanced_accuracy
        train_score = score(train_ds.y, rule.classes(train_ds.task, proba(train_out)))
        val_score = score(val_ds.y, rule.classes(train_ds.task, proba(val_out)))
    train_chance = None
    if train_ds.task == "regression":
        y = np.asarray(train_ds.y, dtype=np.float64)
        train_chance = float(np.sqrt(np.mean((y - y.mean(axis=0)) ** 2)))
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


def _chance_and_scale(ds: data.Dataset, train_rows: np.ndarray, val_ds: data.Dataset) -> tuple[float, float]:
    """(no-skill score on validation, no-skill error): what always predicting the prior or the
    training mean scores. Balanced accuracy of a constant prediction is 1/K over the K classes
    present; RMSE of the training mean is the validation targets' spread around it."""
    if ds.task == "regression":
        mean = ds.y[train_rows].mean(axis=0)
        rmse = float(np.sqrt(np.mean((val_ds.y - mean) ** 2)))
        return rmse, max(rmse, 1e-12)
    chance = 0.5 if ds.task == "multilabel" else 1.0 / len(np.unique(val_ds.y))
    return chance, 1.0 - chance


# --- the two answers -------------------------------------------------------------------------------------


def _error(score: float, higher: bool, chance: float, scale: float) -> float:
    """Score -> error in units of the no-skill error (0 perfect, 1 no skill): for RMSE, RMSE / no-skill RMSE."""
    return (1.0 - score) / scale if higher else score / scale


def _levels(p: SizePoint, higher: bool, chance: float, scale: float) -> tuple[float, float, float]:
    """(training error, validation error, gap) at one size, as bias and variance are read: shares of the no-skill
    error (0 perfect, 1 no skill), and validation's minus training's on one scale.

    Regression reads the squared error, in which bias, variance and noise add up: the training error is
    1 - R² on the training rows (MSE / their own spread's), which says how well the model fits them; the
    validation error is MSE / the MSE of predicting the training mean on validation; the gap is the
    difference of the two MSEs (the notes' generalisation gap) over that no-skill MSE, so that a training
    set more spread than the validation set does not pass for a gap."""
    if higher:
        tr, va = _error(p.train_score, higher, chance, scale), _error(p.val_score, higher, chance, scale)
        return tr, va, va - tr
    mse_train, mse_val, no_skill = p.train_score ** 2, p.val_score ** 2, scale ** 2
    own = max(p.train_chance_score or scale, 1e-12) ** 2
    return mse_train / own, mse_val / no_skill, (mse_val - mse_train) / no_skill


def _more_data(points: list[SizePoint], higher: bool, chance: float, scale: float, metric: str,
               val_units: int | None = None, val_unit_name: str = "samples") -> dict:
    """Slope of the validation error over the largest sizes, per doubling of the training set. A fall faster than
    HELPS_PER_DOUBLING "helps" when it is also beyond two standard errors, the noise taken from how far every
    size's score lies off a line (4 sizes) or a parabola (5 or more) through them all (the sizes share their validation units, so their scores differ
    by the fits' chance, not by the validation sample's; from 4 sizes on); within them it is "unclear": random
    labels on 1,000 samples read "more data still helps" at +0.034 per doubling, scores 0.554, 0.571, 0.537, 0.521
    and 0.576 over the sizes."""
    tail = points[-SLOPE_SIZES:]
    if len(tail) < 2:
        return {"verdict": None, "slope_per_doubling": None, "score_change_per_doubling": None,
                "sizes": [p.n_train for p in tail],
                "text": "Cannot tell whether more data helps from a single training-set size."}
    x = np.log2([p.n_train for p in tail])
    e = np.array([_error(p.val_score, higher, chance, scale) for p in tail])
    slope = float(np.polyfit(x, e, 1)[0])  # error change per doubling, in no-skill units
    change = -slope * scale if higher else slope * scale  # score change per doubling, user units
    name = metrics.display_name(metric)
    span = f"{tail[0].n_train}-{tail[-1].n_train} training samples"
    se_slope = 0.0  # per doubling, in no-skill error units
    if len(points) >= 4:  # the scatter about a line (4 sizes), or about a parabola, as learning curves bend (5 on)
        degree = 2 if len(points) >= 5 else 1
        x_all = np.log2([p.n_train for p in points])
        e_all = np.array([_error(p.val_score, higher, chance, scale) for p in points])
        residual = e_all - np.polyval(np.polyfit(x_all, e_all, degree), x_all)
        sd = math.sqrt(float(np.sum(residual ** 2)) / (len(points) - degree - 1))
        se_slope = sd / math.sqrt(float(np.sum((x - x.mean()) ** 2)))
    if slope <= -HELPS_PER_DOUBLING and slope <= -2.0 * se_slope:
        verdict = "helps"
        text = (f"More data still helps: validation {name} improves by {abs(change):.3g} per doubling of the "
                f"training set over the largest sizes ({span}); collecting more samples should pay off.")
    elif slope <= -HELPS_PER_DOUBLING:
        verdict = "unclear"
        text = (f"Unclear whether more data helps: validation {name} improves by {abs(change):.3g} per doubling over "
                f"the largest sizes ({span}), within the scatter of the sizes' scores about their trend (two "
                f"standard errors of that slope: {2.0 * se_slope * scale:.3g}); more sizes (--fractions) or more "
                f"validation {val_unit_name} than the {val_units:,} here would tell.")
    else:
        verdict = "plateaued"
        if abs(change) < 5e-4:  # flat to the figures shown (equal scores fit a slope of 1e-16, not 0)
            moved = "does not change"
        else:
            moved = (f"improves by only {abs(change):.3g}" if slope < 0  # else it worsens: say which way
                     else f"gets worse ({'falls' if higher else 'rises'} by {abs(change):.3g})")
        text = (f"Plateaued: validation {name} {moved} per doubling over the largest sizes ({span}); more "
                f"samples of the same kind will help little — improve the model or the features instead.")
    return {"verdict": verdict, "slope_per_doubling": slope, "score_change_per_doubling": change,
            "sizes": [p.n_train for p in tail], "text": text}


# What the bias/variance answer says of more data, given the more-data answer's verdict, so that the two
# answers never contradict each other
_MORE_DATA_TOO = {"helps": ", and more data (it still helps, above)",
                  "plateaued": " (more data of the same kind helped little, above)", None: ", and more data",
                  "unclear": ", and perhaps more data (whether it helps is unclear, above)"}
_REGULARISE = "stronger regularisation (--l2, --dropout, --augment-noise) or a smaller model (--hidden)"
_VARIANCE_REMEDY = {"helps": f"more data (it still helps, above), {_REGULARISE}",
                    "plateaued": f"{_REGULARISE} (more data of the same kind helped little, above)",
                    None: f"more data, {_REGULARISE}",
                    "unclear": f"{_REGULARISE}, and perhaps more data (whether it helps is unclear, above)"}
_FLEXIBLE = "a more flexible model (more units or layers: --hidden) or better features"
_BIAS_REMEDY = {"helps": "the model is too simple or the features too weak: more data still helps validation (above), "
                         f"but {_FLEXIBLE} are what lift the training score",
                "plateaued": f"the model is too simple or the features too weak — more data will not fix it; {_FLEXIBLE}",
                None: f"the model is too simple or the features too weak — more data will not fix it; {_FLEXIBLE}",
                "unclear": f"the model is too simple or the features too weak — more data will not fix it; {_FLEXIBLE}"}
_VALIDATION_BETTER = "; validation scores better than training, which a small or easy validation set can do"


def _one_size_words(points: list[SizePoint], within: list[float]) -> str:
    """The size whose validation stood out of the no-signal band, in words: "10 % of the training groups, 0.610"."""
    p = next(q for q, v in zip(points, within) if v <= 1 - NO_SIGNAL)
    return (f"{fraction_words(p.fraction)} of the training groups, {p.val_score:.3g}, on the rows its early stopping "
            "chose by")


def _bias_variance(points: list[SizePoint], higher: bool, chance: float, scale: float, metric: str,
                   more_data: str | None = None, val_units: int | None = None, val_unit_name: str = "samples",
                   held_labels: list[tuple[str, int]] | None = None) -> dict:
    """Bias vs variance at the largest size, from the training error's level and the gap (``_levels``: for
    regression in the squared error, 1 - R²); what it says of more data follows the more-data answer
    (``more_data``: its verdict). Curves are "close" only when the gap is small either way: validation far
    better than training is not close. ``held_labels``: multi-label labels (name, validation positives or negatives,
    the fewer) that every size calls at P >= 0.5 for want of validation events (``_held_labels``)."""
    p = points[-1]
    tr, va, gap = _levels(p, higher, chance, scale)
    high_bias, high_var = tr >= BIAS_LEVEL, gap >= VARIANCE_GAP
    close = abs(gap) < VARIANCE_GAP
    name = metrics.display_name(metric)
    if higher:
        scores = f"training {name} {p.train_score:.3g}, validation {p.val_score:.3g}, no skill {chance:.3g}"
    else:  # R² says which share of the variance each side explains, which is what the levels are read in
        scores = (f"training {name} {p.train_score:.3g}, R² {1 - tr:.2f}; validation {name} {p.val_score:.3g}, "
                  f"R² {1 - va:.2f}; no skill {chance:.3g}")
    # two standard errors of a chance score on the validation units, in shares of the no-skill error: for a score
    # with chance c (balanced accuracy), sqrt(c (1 - c) / n) / (1 - c). A regression's R² has no such simple
    # chance spread (0.57 on 5 validation patients is signal): its bar stays NO_SIGNAL
    se = math.sqrt(chance / ((1 - chance) * val_units)) if higher and 0 < chance < 1 and val_units else 0.0
    learned = 1 - tr >= LEARNED  # (a poor training score as well is bias, below)
    within = [_levels(q, higher, chance, scale)[1] for q in points]
    # the network learned its training rows while validation stayed within NO_SIGNAL of chance at every size: what
    # it learned does not carry over
    # (only where the validation units are enough for that band to exceed chance's own spread: on 60 samples chance
    # alone reaches 0.63, and a weak real signal of 0.55-0.65 read as none)
    # One size of three or more may stand out: each size's network is early-stopped on the validation rows it is
    # scored on, and on 1,000 random labels the 10 % size read 0.610 on 200 rows, where every other size stayed at
    # chance ("both bias and variance ... a more flexible model"); the largest size must be within the band
    above = sum(v <= 1 - NO_SIGNAL for v in within)
    no_signal = (learned and 2.0 * se <= NO_SIGNAL_SE and within[-1] > 1 - NO_SIGNAL
                 and above <= (1 if len(within) >= 3 else 0))
    # within two standard errors of a chance score at every size (few validation units): the verdict below may read
    # noise, said in the caveat, not taken for no signal (a weak real signal on 12 patients looks the same); also
    # where the kept networks learned little (early stopping at epoch 1 on random labels)
    chance_band = not no_signal and se > 0 and all(v > 1 - 2.0 * se for v in within)
    if no_signal:
        noise = " (the rise across sizes above is within that noise)" if more_data in ("helps", "unclear") else ""
        where = "every size" if not above else f"every size but one ({_one_size_words(points, within)})"
        text = (f"No learnable signal: validation stays within {NO_SIGNAL:.0%} of the no-skill level at {where} "
                f"({scores}){noise}, while the training rows were learned (memorised): neither a larger "
                "network nor more data of this kind will help — check that the target is the right column and "
                "its labels match the rows, and whether these features can carry it.")
        verdict = "no_signal"
    elif high_bias and high_var:
        verdict, text = "both", (f"Both bias and variance: even the training score is poor and validation is much "
                                 f"worse ({scores}); {_FLEXIBLE}, with regularisation (--l2, --dropout)"
                                 f"{_MORE_DATA_TOO[more_data]}.")
    elif high_bias:
        shape = "both curves are poor and close" if close else "the training score is poor"
        aside = "" if close else _VALIDATION_BETTER
        verdict, text = "bias", f"Mostly bias: {shape} ({scores}{aside}); {_BIAS_REMEDY[more_data]}."
    elif high_var:
        verdict, text = "variance", (f"Mostly variance: a large gap between training and validation ({scores}); "
                                     f"{_VARIANCE_REMEDY[more_data]}.")
    else:
        shape = "both scores are good and close" if close else "both scores are good"
        aside = "" if close else _VALIDATION_BETTER
        verdict, text = "neither", f"Little bias or variance left: {shape} ({scores}{aside})."
    caveat = None
    if chance_band:
        edge = chance + 2.0 * se * (1 - chance)  # the score two standard errors above chance
        caveat = (f"Caveat: on {val_units:,} validation {val_unit_name}, a validation {name} below {edge:.2f} is within "
                  f"two standard errors of chance ({chance:.2g}), and every size's is: a weak signal and none look "
                  "alike here, so read this answer (and the more-data one) as tentative — `mlpcli cv` scores every "
                  "sample and tells them apart.")
    elif p.curve_label == "underfit_stopped_early":  # the levels are not final yet
        caveat = ("Caveat: at the largest size both losses were still falling when training stopped "
                  "(underfit_stopped_early); train longer (--epochs, --patience) before reading bias or variance "
                  "from it: the training level and the gap may both still move.")
    elif verdict == "bias" and p.best_epoch < p.epochs_run:
        # the training score is the kept epoch's: early stopping, not the model's reach, can cap it (modeldata's
        # cells: "mostly bias", and 512-256 units moved validation by 0.01, within its noise)
        caveat = (f"Caveat: at the largest size the training score is that of the epoch early stopping kept "
                  f"({p.best_epoch} of {p.epochs_run}): trained on, the network fits its training rows better, so "
                  "part of this 'bias' may be early stopping's, and a more flexible model may not lift validation — "
                  "compare one with `mlpcli cv` before adopting it.")
    elif p.best_epoch >= p.epochs_run:  # best in the last epoch: the epoch limit stopped it, not early stopping
        caveat = (f"Caveat: at the largest size the validation loss was still at its best in the last epoch "
                  f"({p.best_epoch} of {p.epochs_run}), so the --epochs limit stopped a network that was still "
                  "improving; train longer (--epochs) before reading bias or variance from it: the training level "
                  "and the gap may both still move.")
    if held_labels and verdict in ("bias", "both"):
        # a rare label called at 0.5 is rarely called at all: its balanced accuracy near 0.5 on training and validation
        # alike reads as bias (a review's label of 6 validation positives: "mostly bias, the model is too simple"
        # where 5-fold `train` reached 0.944)
        named = ", ".join(f"{name!r} ({k})" for name, k in held_labels[:5]) + (" …" if len(held_labels) > 5 else "")
        held = (f"{named} {'has' if len(held_labels) == 1 else 'have'} fewer than {MIN_LABEL_EVENTS} "
                "validation positives (or negatives), so every size calls "
                f"{'it' if len(held_labels) == 1 else 'them'} at P >= 0.5 whatever --decision says, and a rare label "
                "called there is rarely called at all: its balanced accuracy near 0.5, on training as on validation, "
                "is part of this 'bias' — not the model's reach; `train`'s per-label recall and `mlpcli cv` (each "
                "fold's rule) show the labels apart.")
        caveat = f"Caveat: {held}" if caveat is None else f"{caveat} Also, {held}"
    units = ("(1 - score) / (1 - chance): the share of the no-skill error left" if higher else
             "1 - R²: MSE / the MSE of predicting the mean (training: its own rows' mean; validation: the training "
             "mean); gap: (validation MSE - training MSE) / that validation no-skill MSE")
    return {"verdict": verdict, "train_error": tr, "val_error": va, "gap": gap, "error_units": units,
            "n_train": p.n_train, "text": text, "caveat": caveat}


# --- the entry point ---------------------------------------------------------------------------------------


def learning_curve(
    path,
    options: TrainOptions,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    n_jobs: int = 1,
    threads: int | None = None,
    progress: Callable[[SizePoint], None] | None = None,
    stdin=None,
) -> LearningCurveResult:
    """Train at several sizes of the training groups of the table at ``path``; see the module doc.

    fractions: of the training groups, each in (0, 1]; the validation groups are the same at every
    size. n_jobs: parallel sizes (joblib, loky; -1 = all cores). threads: BLAS threads shared by the
    workers (default: all cores). progress(point) is called as each size finishes, in size order.
    Raises DataError when no size contains every class of the training side.
    """
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
    log1p, skew = resolve_log1p(options, ds.X[train_rows], notes)
    if skew is not None:
        notes.append(f"--log1p auto: applied log(1 + x) (median skewness {skew:.1f})")
    noise = options.augment_noise
    if options.hidden == AUTO:
        # the candidate train prefers on a tie (portfolio.portfolio): with more features than training rows the
        # hidden layer with input noise, which is what it ships on such tables (the sample data); the plain
        # layer memorises its rows at every size, and its curves answered "more data?" for another model
        noisy = noise in (0, 0.0) and auto_noise(len(train_rows), ds.n_features) > 0
        noise = AUTO if noisy else noise
        notes.append(f"--hidden auto: each size trains one network with hidden {','.join(map(str, SINGLE_RUN_HIDDEN))}"
                     + (" and input noise (--augment-noise auto: SD sqrt(features / training rows) at each size, "
                        "the candidate train prefers when the features outnumber the rows)" if noisy else ""))
    options = replace(options, log1p=log1p, folds=1, augment_noise=noise,
                      hidden=SINGLE_RUN_HIDDEN if options.hidden == AUTO else options.hidden)

    strata = ds.y[train_rows] if ds.task in data.CLASSIFICATION_TASKS else None
    groups = ds.groups[train_rows] if ds.groups is not None else np.arange(len(train_rows))
    subsets = [train_rows[s] for s in nested_group_subsets(groups, fractions, options.seed, strata)]

    jobs, skipped, seen = [], [], {}
    n_groups = len(np.unique(groups))
    for f, rows in zip(fractions, subsets):
        missing = _missing_classes(ds, rows, train_rows)
        if missing:
            skipped.append(f"{fraction_words(f)} of the training groups ({len(rows)} samples) skipped: it lacks "
                           f"{', '.join(repr(m) for m in missing[:5])}")
        elif len(rows) in seen:
            # whole groups round: with 6 training donors, 75 % and 100 % are both all 6 (said so, not just "100 %")
            kept = len(np.unique(ds.groups[rows])) if ds.groups is not None else len(rows)
            unit = "groups" if ds.groups is not None else "samples"
            skipped.append(f"{fraction_words(f)} of the training groups skipped: it rounds to the same {kept} of "
                           f"{n_groups} {unit} ({len(rows)} samples) as {fraction_words(seen[len(rows)])}")
        else:
            seen[len(rows)] = f
            jobs.append((f, rows))
    if not jobs:
        raise DataError(f"no training-set size contains every class: {'; '.join(skipped)}; use larger --fractions")

    # BLAS threads per fit are the same whatever n_jobs (parallel.py says why), so the curve does
    # not depend on how many sizes run side by side.
    plan = Plan(backend="loky", n_jobs=local_workers(n_jobs, len(jobs)), threads=threads)
    points = run([(_fit_size, (ds.subset(rows), val_ds, options, f)) for f, rows in jobs], plan,
                 on_result=progress)

    higher = ds.task != "regression"
    chance, scale = _chance_and_scale(ds, train_rows, val_ds)
    metric = metrics.main_metric_name(ds.task)
    val_units = int(len(np.unique(val_ds.groups))) if val_ds.groups is not None else int(val_ds.n_samples)
    val_unit_name = "patients" if val_ds.groups is not None else "samples"
    more_data = _more_data(points, higher, chance, scale, metric, val_units, val_unit_name)
    decided = ds.task in DECIDED and any(p.decision for p in points)
    if decided:
        notes.append(_decision_note(options.decision, points, val_ds.n_samples, options.class_weight == "balanced"))
    return LearningCurveResult(
        metric=metric, higher_is_better=higher, chance_score=chance, points=points,
        n_val=int(val_ds.n_samples),
        n_val_groups=None if val_ds.groups is None else int(len(np.unique(val_ds.groups))),
        more_data=more_data,
        bias_variance=_bias_variance(points, higher, chance, scale, metric, more_data["verdict"], val_units,
                                     val_unit_name, _held_labels(ds, val_ds) if decided else None),
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
