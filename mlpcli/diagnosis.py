"""Diagnose a training run from its learning curves (lecture notes, "Learning Curves").

``diagnose(train_loss, val_loss)`` reads the two per-epoch curves and returns one of the notes'
seven shapes (``LABELS``) with the numbers behind the verdict, the notes' remedies, and a
runner-up label when the evidence is close between two shapes.

How a verdict is reached
------------------------
1. **Prepare.** Epochs where either curve is NaN are dropped as missing; the remaining points
   keep their epoch numbers, so a validation loss recorded every k epochs works. An infinite value
   is not missing: the run blew up there (see "Instability"); such epochs are left out of the
   shape too, but counted and reported. A score curve
   (``higher_is_better=True``, e.g. balanced accuracy) becomes a loss ``ceiling - score`` with
   ``ceiling = max(1, largest value seen)`` -- the error rate for scores bounded by 1. Every rule
   looks only at differences divided by a positive scale, so this sign flip is all it takes.
2. **Scale.** Levels, slopes, gaps and noise are divided by the *scale* ``S``: the baseline loss
   (always predicting the class prior or the mean) when known, else the level of the first epochs
   (a freshly initialised network sits near the baseline). Thresholds are therefore fractions of
   "the loss of knowing nothing", the same for a loss of 0.05 or of 5.
3. **Measure**, robustly:
   - smoothed curves: running median (spikes) then running mean, ~sqrt(n) epochs wide (runs
     shorter than ``SMOOTH_MIN_EPOCHS`` are read unsmoothed);
   - trends: Theil-Sen lines (median of pairwise slopes) reported as the change per 10 % of the
     run in units of ``S``, with a z-score whose standard error allows for autocorrelated noise.
     Train and validation slopes use the last quarter of the run; the gap's trend and the share
     of the training improvement that reaches validation use the second half;
   - "final" levels: the last-quarter line evaluated at the last epoch (a smoothed end value);
   - noise: the winsorised s.d. of second differences over the second half (cancels the trend),
     also relative to the curve's level;
   - the validation minimum (best epoch), how far and how significantly validation rose after
     it, and the fraction of epochs in which smoothed validation is below smoothed training;
   - for the mean curves of an ensemble (``member_spread`` given): the s.d. of the validation
     curve across members relative to its level, over the second half.
4. **Score.** Each label is a fuzzy AND of conditions (``_label_conditions``). A condition is a
   ramp ``clip((x - threshold) / width, -1, 1)``: +1 clearly true, -1 clearly false, 0 on the
   threshold; NOT is a sign flip, AND the minimum. The best-scoring label wins (ties: fewest
   clearly false conditions, then the larger unclipped margin, then the larger mean margin); the
   second is the runner-up when within ``RUNNER_UP_MARGIN``. A winning score below 0 means the
   call is borderline (some condition is on the wrong side of its threshold); the summary says so.

Instability
-----------
None of the seven shapes describes a run whose training went unstable, so instability is reported
beside the label rather than as one: the summary leads with it and the advice with the learning
rate. Two signs count. An infinite loss means the run diverged. A training loss that clearly rises
at the end (the ``train_rising`` fact) and ends ``UNSTABLE_RISE`` above its smoothed minimum (the
``unstable`` fact) means the steps are too large: gradient descent on a fixed training set lowers
it. The rise starts where the smoothed training loss leaves its floor (the last epoch within the
noise of its minimum); the shape is then read from the epochs up to there (the run as it was
before it went unstable), when there are at least ``MIN_POINTS`` of them. No rule may call such
curves flat: ``underfit_capacity`` requires that training is not unstable.

Ensembles
---------
For the members of a cross-fitted ensemble, label their mean curves and pass the per-epoch s.d.
of the validation curve across members as ``member_spread``. It then replaces the wiggle as the
evidence of noisy validation: averaging K members damps the mean curve's wiggle (~ sqrt(K)), so
the wiggle no longer measures how noisy one validation set is, while the members' disagreement
measures it directly (each member validates on its own fold). A large spread supports
``unrepresentative_validation_noisy``; a small one rules it out and so supports the other shapes.
Without ``member_spread`` nothing changes.

Evidence (``Diagnosis.evidence``)
---------------------------------
Epochs are numbered from 1 (the k-th history entry is epoch k). Levels (``train_final``,
``val_final``, ``best_val``, ``train_eval_final``) are in the user's units; everything else is in
loss orientation and units of ``scale``: a negative slope improves, a positive gap means
validation is worse than training.

n_epochs, n_missing, short_curve, first_epoch, last_epoch, window_epochs, window_first_epoch, smoothing_width
    finite epochs the shape is read from, NaN epochs dropped, fewer than ``SHORT_CURVE_EPOCHS``,
    the shape's first and last epochs, the last window's size and its first epoch ("at the end": the
    slopes and end values are read from it)
n_infinite, first_infinite_epoch, train_rise, unstable_epoch
    epochs with an infinite value and the first of them (None without); how far training rose
    after its smoothed minimum / ``S`` when it clearly rises at the end (else None); where the
    run went unstable: the start of that rise, else the first infinite epoch (else None)
scale, scale_source, higher_is_better
    ``S`` and where it came from ("baseline", "first_epochs"; "range"/"unit" for odd curves)
train_final, val_final, best_val, best_epoch, train_level, val_level
    smoothed end values, smoothed validation minimum and its epoch, end values / ``S``
train_slope, val_slope (+ _z)
    change per 10 % of the run over the last quarter, / ``S`` (and its z-score)
gap_end, gap_slope (+ _z), gap_trend, val_share
    (val - train) / ``S`` at the end, its trend over the second half, "growing" / "stable" /
    "shrinking", and validation slope / training slope over the second half
val_noise, train_noise, val_noise_rel, noise_ratio
    noise s.d. / ``S``; validation noise / its level; relative noise of validation / of training
member_spread
    s.d. of validation across ensemble members / its level, median over the second half (None
    without ``member_spread``)
val_rise, val_rise_z, divergence_epoch
    rise of validation after its minimum / ``S`` and in standard errors; the epoch of the
    minimum when the label is ``overfit`` (the notes' divergence point), else None
below_fraction, train_eval_final, cause
    share of epochs with validation below training; inference-mode training loss at the end;
    for ``validation_below_train`` the likely cause; for ``underfit_capacity`` "not_learning" (both curves end
    ``NOT_LEARNING`` worse than the baseline), "larger_model_tried" (``capacity_tried`` given) or None
train_distance_from_baseline, val_distance_from_baseline
    (baseline - final) / baseline: the share of the no-skill loss removed (None without baseline)
score, runner_up_score
    the rule scores in [-1, 1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .errors import DataError

__all__ = ["LABELS", "RULES", "Diagnosis", "CurveError", "BaselineError", "diagnose", "evidence_meanings", "label_title"]

LABELS = (
    "underfit_capacity",
    "underfit_stopped_early",
    "overfit",
    "good_fit",
    "unrepresentative_train",
    "unrepresentative_validation_noisy",
    "validation_below_train",
)

# --- input -------------------------------------------------------------------------------------
MIN_POINTS = 3  # two points always lie on a line; three are the least that can show a trend
SHORT_CURVE_EPOCHS = 10  # below this the last window holds ~3 points: the label is best-effort
FIRST_EPOCHS = 3  # without a baseline, the scale is the level of this many first epochs

# --- measuring ---------------------------------------------------------------------------------
SMOOTH_MAX = 61  # smoother width ~ sqrt(n) epochs (odd, >= 3): it averages more noise on longer
#                  runs while covering a shrinking share of them (33 % at 15 epochs, 5 % at 400),
#                  so a validation minimum stays in place; capped for runs of thousands of epochs
SMOOTH_MIN_EPOCHS = 9  # below this even a 3-epoch window spans more than a third of the run: its median
#                        takes a one-epoch validation minimum for a spike (3 epochs stopped early after
#                        epoch 2: "lowest around epoch 1" at a value no epoch had), so short runs are
#                        read unsmoothed
LAST_WINDOW_FRACTION = 0.25  # "at the end" = the final quarter: long enough for a robust slope,
#                              short enough that the early fast fall does not leak in
LATE_MIN_POINTS = 8  # noise is measured on the second half of the run, or on >= 8 last epochs
AUTOCORR_MIN_POINTS = 8  # fewer residuals cannot estimate their autocorrelation
AUTOCORR_MAX = 0.9  # caps the s.e. inflation at sqrt(19) ~ 4.4x
QUADRATIC_MIN_POINTS = 8  # windows this long have their noise judged around a parabola
THEIL_SEN_MAX_POINTS = 200  # longer windows are averaged down to this many points (pairs ~ n^2)
SLOPE_UNIT = 0.1  # slopes are reported per 10 % of the run, so a shape reads the same at any length
MAD_TO_SD = 1.4826  # MAD x this = standard deviation for Gaussian noise
NOISE_SD_FLOOR = 1e-9  # x S: noiseless synthetic curves must not divide by zero
WINSOR_K = 3.0  # noise s.d.: values beyond 3 robust s.d. are clipped (outliers, not noise level)
NOISE_LEVEL_FLOOR = 0.15  # relative validation noise is taken against max(level, this x S): a
#                           loss near 0 wiggling by 20 % of itself is invisible on the plot

# --- rule thresholds (fractions of the scale S unless stated); each with its ramp width ---------
FALL_SLOPE, FALL_WIDTH = 0.01, 0.004  # "still falling": losing >= 1 % of S per 10 % of the run,
#   i.e. >= 10 % of S more if training ran as long again; a settled exponential (>= 5-6 time
#   constants) loses < 0.5 %, one stopped after 1-2 time constants loses 2-5 %
SLOPE_Z, SLOPE_Z_WIDTH = 2.0, 1.0  # ... and the slope must stand out of the noise (~2 s.e.)
CAPACITY_LEVEL, CAPACITY_WIDTH = 0.65, 0.08  # "near the baseline": both curves still hold
#   >= 65 % of the scale, i.e. the model removed less than a third of the no-skill loss
BLOWUP_RISE, BLOWUP_WIDTH = 1.0, 0.25  # blown up: training ends >= the whole scale above its minimum,
#   i.e. worse than it started or than knowing nothing; no noise or plateau does that
UNSTABLE_RISE, UNSTABLE_WIDTH = 0.10, 0.03  # a rising training loss is unstable once it ends >= 10 % of S
#   above its minimum: the slow drifts of a settled training loss reach 2-6 %
RISE_LEVEL, RISE_WIDTH = 0.04, 0.02  # overfit: validation rose >= 4 % of S above its minimum ...
RISE_Z, RISE_Z_WIDTH = 3.0, 1.0  # ... by >= 3 s.e. (the minimum of a noisy curve is biased low)
CLEAR_RISE_Z = 5.0  # an erratic validation curve must rise by >= 5 s.e. to count as a trend: the
#   notes' noisy validation has "no clear trend", and heavy-tailed noise fakes 3-4 s.e. rises
AFTER_MIN_FRACTION, AFTER_MIN_WIDTH = 0.08, 0.04  # ... and the minimum is not in the last 8 %
GAP_LARGE, GAP_WIDTH = 0.10, 0.03  # "settles much higher" vs "similar level": the end gap
#   crosses 10 % of S (the notes' good fit keeps a small gap; unrepresentative train a wide one)
GAP_GROW, GAP_GROW_WIDTH = 0.008, 0.004  # "the gap keeps growing": +0.8 % of S per 10 % of run
NOISY_REL, NOISY_REL_WIDTH = 0.11, 0.03  # erratic validation: robust s.d. of its epoch-to-epoch
#   wiggle >= 11 % of its level; a usable validation curve wiggles by a few %, a small or
#   unstratified validation set by 15 % and more
NOISE_RATIO, NOISE_RATIO_WIDTH = 2.0, 0.5  # ... and >= 2x the training loss's relative wiggle
#   ("training looks fine": a mean over minibatches wiggles by 1-3 %)
MEMBER_SPREAD, MEMBER_SPREAD_WIDTH = 0.2, 0.05  # ensembles: members' validation losses differ
#   (s.d.) by >= 20 % of their level. At an end level around half of S that is the 10 % of S
#   (GAP_LARGE) separating a good fit from an unrepresentative training set, so one fold cannot
#   tell those shapes apart. A per-sample loss has s.d. ~ 1-2x its mean, so folds of a few hundred
#   samples differ by 5-10 % and folds of a few dozen by 20-35 %
VAL_SHARE, VAL_SHARE_WIDTH = 0.5, 0.2  # validation "settles" while training falls when it gains
#   less than half of what training gains over the second half of the run; it "follows" training
#   when it gains more
BELOW_FRACTION, BELOW_FRACTION_WIDTH = 0.8, 0.1  # val below train in >= 80 % of epochs ...
BELOW_GAP, BELOW_GAP_WIDTH = 0.03, 0.015  # ... and by >= 3 % of S at the end ("wide" gap)
TRAIN_EVAL_CLOSE = 0.5  # inference-mode train loss within half the gap of val: the gap is
#                         explained by training-only noise (dropout, noise augmentation)
GAP_NOISE_Z, GAP_NOISE_Z_WIDTH = 4.0, 1.0  # a large end gap counts only when it stands out of the
#   curves' noise by >= 4 s.e.: a small validation set's wiggle can put its end level anywhere
MEMBER_GAP_Z = 3.0  # ... for an ensemble, >= 3x the members' spread of validation levels: the typical
#   fold's gap is then wide too (at 2-2.5x, a fold one s.d. off could look like a good fit)
BEST_TOLERANCE = 0.01  # best epoch: the first epoch whose smoothed validation value is within
BEST_TOLERANCE_Z = 2.0  # max(1 % of S, 2 s.e. of a smoothed value) of the best smoothed value: on a
#   curve flat from epoch 3 the noise decides where the exact optimum falls, a user calls epoch 3 best
RUNNER_UP_MARGIN = 0.3  # a second label scoring within 0.3 (of a [-1, 1] range) is "close"
NOT_LEARNING = 0.05  # underfit_capacity whose curves both end >= 5 % of S above the no-skill loss: a constant
#   prediction, which any network reaches through its output bias alone, does better, so the network has not
#   learned (a learning rate too low to move it, too few epochs, regularisation pinning the weights): the
#   optimisation is the remedy before capacity. Within 5 % a curve flat at the baseline is the notes' capacity case
EARLY_BEST_EPOCH = 2  # overfit with validation best by epoch 2: the network overfits within its first passes over
#   the data, so there is no earlier epoch to stop at; smaller steps, a smaller model or more regularisation are
#   the remedy


class CurveError(DataError, ValueError):
    """Learning curves that cannot be diagnosed (mismatched lengths, too few finite epochs)."""


class BaselineError(CurveError):
    """A baseline that cannot serve as the scale; its own class so that a caller can blame whoever gave
    it (a user's option rather than the curves' file)."""


@dataclass
class Diagnosis:
    """The verdict on a pair of learning curves.

    ``evidence`` holds plain JSON-able values (float, int, str, bool, None): the numbers the rules
    used. ``advice`` lists the notes' remedies for the label, filled in with the evidence.
    """

    label: str
    evidence: dict[str, float | int | str | None]
    advice: list[str]
    runner_up: str | None
    summary: str

    def to_dict(self) -> dict:
        """``{"label", "evidence", "advice", "runner_up", "summary"}`` for ``--json``."""
        return {
            "label": self.label,
            "evidence": dict(self.evidence),
            "advice": list(self.advice),
            "runner_up": self.runner_up,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class _Curves:
    """Validated curves in loss orientation, NaN epochs dropped; ``scale`` > 0."""

    epochs: np.ndarray  # (n,) 1-based epoch numbers of the kept points
    train: np.ndarray  # (n,)
    val: np.ndarray  # (n,)
    train_eval: np.ndarray | None  # (n,), may still hold NaN
    scale: float
    scale_source: str
    baseline: float | None  # in loss orientation
    n_missing: int
    ceiling: float | None  # loss = ceiling - score for score curves, None for losses
    spread: np.ndarray | None = None  # (n,) s.d. of validation across ensemble members, may hold NaN
    n_infinite: int = 0  # epochs where a curve is infinite: the run blew up (dropped, not missing)
    first_infinite: int | None = None  # the first such epoch


@dataclass(frozen=True)
class _Trend:
    """A Theil-Sen line over a window: slope per epoch, value at its last epoch, z-score."""

    slope: float
    end: float
    z: float


# --- preparing the input -----------------------------------------------------------------------


def _as_curve(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise CurveError(f"{name} must be a sequence of numbers") from None
    if arr.ndim != 1:
        raise CurveError(f"{name} must be one-dimensional (one value per epoch), got shape "
                         f"{arr.shape}")
    return arr


def _initial_level(train: np.ndarray, val: np.ndarray) -> float:
    """Level of the first epochs: the larger of the first training value and the medians of the
    first ``FIRST_EPOCHS`` values of each curve. The first training value is the mean over the
    first epoch, so it still carries the untrained network's loss when learning is fast."""
    k = min(FIRST_EPOCHS, len(train))
    return float(max(train[0], np.median(train[:k]), np.median(val[:k])))


def _check_lengths(train: np.ndarray, val: np.ndarray, train_eval: np.ndarray | None,
                   spread: np.ndarray | None = None, names: tuple[str, str] = ("train_loss", "val_loss")) -> None:
    if len(train) != len(val):
        raise CurveError(f"{names[0]} and {names[1]} must have one value per epoch: got "
                         f"{len(train)} and {len(val)} values")
    if train_eval is not None and len(train_eval) != len(train):
        raise CurveError(f"train_eval_loss must have one value per epoch like {names[0]}: got "
                         f"{len(train_eval)} and {len(train)} values")
    if spread is not None and len(spread) != len(train):
        raise CurveError(f"member_spread must have one value per epoch like {names[0]}: got "
                         f"{len(spread)} and {len(train)} values")
    if spread is not None and np.any(spread < 0):  # NaN compares False: missing epochs pass
        raise CurveError("member_spread holds a negative value; it is a standard deviation")


def _loss_baseline(baseline: float | None, ceiling: float | None) -> float | None:
    """The baseline in loss orientation; it must be a finite loss above 0 to serve as the scale."""
    if baseline is None:
        return None
    try:
        value = float(baseline)
    except (TypeError, ValueError):
        raise BaselineError(f"baseline must be a number, got {baseline!r}") from None
    loss = value if ceiling is None else ceiling - value
    if not (math.isfinite(loss) and loss > 0):
        need = "a finite loss above 0" if ceiling is None else f"a finite score below {ceiling:g}"
        raise BaselineError(f"baseline must be {need}, got {value:g}")
    return loss


def _scale(train: np.ndarray, val: np.ndarray, baseline: float | None) -> tuple[float, str]:
    """``S`` and its source: the baseline, else the first epochs' level, else (curves below 0,
    e.g. log-likelihoods) their range."""
    if baseline is not None:
        return baseline, "baseline"
    level = _initial_level(train, val)
    if math.isfinite(level) and level > 0:
        return level, "first_epochs"
    spread = float(np.ptp(np.concatenate([train, val])))
    return (spread, "range") if spread > 0 else (1.0, "unit")


def _prepare(train_loss, val_loss, baseline, train_eval_loss, higher_is_better, member_spread=None,
             names: tuple[str, str] = ("train_loss", "val_loss")) -> _Curves:
    """Validate, turn scores into losses, drop epochs where either curve is not finite (NaN: missing;
    infinite: blown up, counted apart). names: what the two curves are called in messages."""
    train, val = _as_curve(train_loss, names[0]), _as_curve(val_loss, names[1])
    train_eval = None if train_eval_loss is None else _as_curve(train_eval_loss, "train_eval_loss")
    spread = None if member_spread is None else _as_curve(member_spread, "member_spread")
    _check_lengths(train, val, train_eval, spread, names)
    keep = np.isfinite(train) & np.isfinite(val)  # (n_epochs,)
    infinite = np.isinf(train) | np.isinf(val)  # (n_epochs,)
    first_infinite = int(np.flatnonzero(infinite)[0]) + 1 if infinite.any() else None
    if keep.sum() < MIN_POINTS:
        diverged = f" (the run diverged: infinite from epoch {first_infinite})" if first_infinite else ""
        raise CurveError(f"need at least {MIN_POINTS} epochs where both {names[0]} and {names[1]} "
                         f"are finite, got {int(keep.sum())}{diverged}")
    ceiling = None
    if higher_is_better:  # score -> loss: ceiling - score (the error rate for scores <= 1)
        ceiling = max(1.0, float(np.max(np.concatenate([train[keep], val[keep]]))))
        train, val = ceiling - train, ceiling - val
        train_eval = None if train_eval is None else ceiling - train_eval
    loss_baseline = _loss_baseline(baseline, ceiling)
    epochs = np.arange(1, len(keep) + 1)[keep]
    train, val = train[keep], val[keep]
    train_eval = None if train_eval is None else train_eval[keep]
    scale, source = _scale(train, val, loss_baseline)
    spread = None if spread is None else spread[keep]  # an s.d.: the same for a score and its loss
    return _Curves(epochs, train, val, train_eval, scale, source, loss_baseline,
                   int((~keep & ~infinite).sum()), ceiling, spread, int(infinite.sum()), first_infinite)


# --- measuring ---------------------------------------------------------------------------------


def _odd(k: int) -> int:
    return k if k % 2 else k + 1


def _smooth_width(n: int) -> int:
    if n < SMOOTH_MIN_EPOCHS:  # no smoothing: see SMOOTH_MIN_EPOCHS
        return 1
    return int(min(SMOOTH_MAX, max(3, _odd(round(math.sqrt(n))))))


def _running(y: np.ndarray, width: int, reduce) -> np.ndarray:
    """Centred running ``reduce`` (nanmedian / nanmean); windows shrink at the ends."""
    h = width // 2
    padded = np.concatenate([np.full(h, np.nan), y, np.full(h, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)  # (n, width)
    return reduce(windows, axis=1)


def _smooth(y: np.ndarray, width: int) -> np.ndarray:
    """Running median (removes spikes, keeps steps) then running mean (removes the median's
    staircase). Robust: one outlier epoch cannot move the result."""
    return _running(_running(y, width, np.nanmedian), width, np.nanmean)


def _smooth_centred(y: np.ndarray, width: int) -> np.ndarray:
    """Like ``_smooth`` but every window stays centred: near the ends it shrinks on both sides (epoch
    1 is its own value). A window cut on one side only is biased on a curve that still moves there
    (at epoch 1 it averages in later, better epochs), which would make epoch 1 look as good as the
    plateau it rises to; the best-epoch rule uses this one."""
    n, h = len(y), width // 2

    def run(z: np.ndarray, reduce) -> np.ndarray:
        out = np.empty(n)
        for i in range(n):
            k = min(h, i, n - 1 - i)
            out[i] = reduce(z[i - k:i + k + 1])
        return out

    return run(run(y, np.median), np.mean)


def _robust_sd(residuals: np.ndarray) -> float:
    """1.4826 x median absolute deviation: the noise s.d., ignoring outliers and trend leakage."""
    return float(MAD_TO_SD * np.median(np.abs(residuals - np.median(residuals))))


def _winsorised_sd(d: np.ndarray) -> float:
    """s.d. after clipping at median +- WINSOR_K robust s.d.: as robust as the MAD against a few
    wild epochs but twice as efficient (the MAD alone needs ~2.5x the epochs for the same
    precision, which matters on 15-epoch runs)."""
    med, spread = float(np.median(d)), _robust_sd(d)
    return float(np.std(np.clip(d, med - WINSOR_K * spread, med + WINSOR_K * spread)))


def _wiggle_sd(y: np.ndarray) -> float:
    """Epoch-to-epoch noise s.d. from second differences ``d_i = y_(i-1) - 2 y_i + y_(i+1)``.

    ``d`` cancels any locally linear trend, and for white noise var(d) = (1 + 4 + 1) sd^2, so
    sd = sd(d) / sqrt(6) (winsorised s.d.). Unlike residuals from a smoother it does not depend on
    the smoother's width; slow (autocorrelated) drifts are left to the trend tests."""
    if len(y) < 3:
        return 0.0
    return _winsorised_sd(y[:-2] - 2 * y[1:-1] + y[2:]) / math.sqrt(6.0)


def _lag1_autocorrelation(r: np.ndarray) -> float:
    """Lag-1 autocorrelation of residuals, clipped to [0, AUTOCORR_MAX]; 0 for short windows."""
    if len(r) < AUTOCORR_MIN_POINTS:
        return 0.0
    r = r - r.mean()
    denom = float(np.sum(r * r))
    rho = float(np.sum(r[1:] * r[:-1]) / denom) if denom > 0 else 0.0
    return min(max(rho, 0.0), AUTOCORR_MAX)


def _theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Theil-Sen line: slope = median of pairwise slopes, intercept = median(y - slope x).

    Breakdown point 29 %: a few wild epochs cannot tilt it. Long windows are first averaged down
    to ``THEIL_SEN_MAX_POINTS`` points, which keeps the pair count bounded."""
    if len(x) > THEIL_SEN_MAX_POINTS:  # means of consecutive, near-equal groups
        starts = np.linspace(0, len(x), THEIL_SEN_MAX_POINTS, endpoint=False).astype(int)
        sizes = np.diff(np.append(starts, len(x)))
        x, y = np.add.reduceat(x, starts) / sizes, np.add.reduceat(y, starts) / sizes
    i, j = np.triu_indices(len(x), k=1)
    slope = float(np.median((y[j] - y[i]) / (x[j] - x[i])))
    return slope, float(np.median(y - slope * x))


def _trend(x: np.ndarray, y: np.ndarray, noise_sd: float) -> _Trend:
    """Theil-Sen trend of ``y`` over the window ``x``, with z = slope / s.e.

    s.e. = sd / sqrt(sum (x - mean x)^2) x sqrt((1 + rho) / (1 - rho)): the least-squares formula,
    with sd the larger of the window's residual noise and the whole curve's (``noise_sd``, so that
    3 points that happen to line up do not look certain), inflated for the residuals' lag-1
    autocorrelation rho (a slow drift of the noise is not a trend: m correlated points carry the
    information of only ~ m (1 - rho) / (1 + rho) independent ones). The residuals are taken
    around a parabola when the window is long enough, so the bend of a still-falling curve is
    not mistaken for correlated noise."""
    slope, intercept = _theil_sen(x, y)
    residuals = y - (intercept + slope * x)
    if len(x) >= QUADRATIC_MIN_POINTS:  # a falling exponential bends: judge noise around a parabola
        u = (x - x.mean()) / max(float(np.ptp(x)), 1.0)
        residuals = y - np.polyval(np.polyfit(u, y, 2), u)
    sd = max(_robust_sd(residuals), noise_sd)
    rho = _lag1_autocorrelation(residuals)
    se = sd / math.sqrt(float(np.sum((x - x.mean()) ** 2))) * math.sqrt((1 + rho) / (1 - rho))
    end = intercept + slope * float(x[-1])
    if end < 0 <= float(np.min(y)):  # a line through a curve that flattens out ends below its last values: a loss
        end = float(np.min(y))  # memorised to 1e-8 ended at -1e-8 ("stayed near -1.1e-08"); no loss is negative
    return _Trend(slope, end, slope / se)


@dataclass(frozen=True)
class _Noise:
    """Epoch-to-epoch noise on the late part of the run, absolute and relative to the level."""

    train_sd: float
    val_sd: float
    gap_sd: float
    train_rel: float  # train_sd / max(level, NOISE_LEVEL_FLOOR x S)
    val_rel: float


def _late(n: int) -> slice:
    """The second half of the run (at least ``LATE_MIN_POINTS`` epochs when there are that many)."""
    return slice(n - max(math.ceil(n / 2), min(n, LATE_MIN_POINTS)), n)


def _noise(c: _Curves, train_s: np.ndarray, val_s: np.ndarray) -> _Noise:
    """Noise is measured late in the run: losses wiggle in proportion to their level, and the
    early fall from the baseline would otherwise dominate the estimate."""
    late, floor = _late(len(c.epochs)), NOISE_SD_FLOOR * c.scale
    train_sd = max(_wiggle_sd(c.train[late]), floor)
    val_sd = max(_wiggle_sd(c.val[late]), floor)
    gap_sd = max(_wiggle_sd((c.val - c.train)[late]), floor)
    level_floor = NOISE_LEVEL_FLOOR * c.scale
    train_level = max(float(np.median(train_s[late])), level_floor)
    val_level = max(float(np.median(val_s[late])), level_floor)
    return _Noise(train_sd, val_sd, gap_sd, train_sd / train_level, val_sd / val_level)


def _measure(c: _Curves) -> dict:
    """All numbers the rules use; levels, slopes and gaps in units of the scale ``S``.

    Slopes are Theil-Sen slopes times ``SLOPE_UNIT x run length / S``: the change per 10 % of the
    run as a fraction of the scale. The train/val slopes use the last quarter ("at the end"); the
    gap trend and the validation share use the second half ("keeps growing" is about the run, and
    a longer window outlasts slow noise drifts)."""
    n, S = len(c.epochs), c.scale
    x = c.epochs.astype(float)
    run = float(x[-1] - x[0])
    per_run_unit = SLOPE_UNIT * run / S  # slope per epoch -> change per 10 % of the run, in S
    width = _smooth_width(n)
    train_s, val_s = _smooth(c.train, width), _smooth(c.val, width)  # (n,), (n,)
    noise = _noise(c, train_s, val_s)

    m = max(MIN_POINTS, math.ceil(LAST_WINDOW_FRACTION * n))
    last, late = slice(n - m, n), _late(n)
    tr = _trend(x[last], c.train[last], noise.train_sd)
    va = _trend(x[last], c.val[last], noise.val_sd)
    gp = _trend(x[late], (c.val - c.train)[late], noise.gap_sd)
    tr_half = _trend(x[late], c.train[late], noise.train_sd)
    va_half = _trend(x[late], c.val[late], noise.val_sd)
    # share of the training improvement that reaches validation (1: same pace, 0: none)
    val_share = va_half.slope / tr_half.slope if tr_half.slope < 0 else 1.0

    i_min = int(np.argmin(val_s))
    # var of a running median of w points ~ (pi/2) sd^2/w (a smoothed value's s.e.)
    smooth_var = math.pi / 2 / width
    best_tol = max(BEST_TOLERANCE * S, BEST_TOLERANCE_Z * noise.val_sd * math.sqrt(smooth_var))
    val_c = _smooth_centred(c.val, width)
    i_best = int(np.flatnonzero(val_c <= max(float(val_s[i_min]), float(val_c.min())) + best_tol)[0])
    # the minimum's value: near the start the running median's window is cut on one side, so at epoch 1 of a curve
    # that climbs from its start it averages in the later, worse epochs (a wide net on p >> n: "lowest around epoch 1
    # (3.77)" for an epoch-1 loss of 0.83); the centred smoother keeps epoch 1 its own value
    lowest = min(float(val_s[i_min]), float(val_c[i_min])) if i_min < width else float(val_s[i_min])
    rise, rise_z = _rise(c.val[i_min + 1:], lowest, va.end, noise.val_sd, smooth_var, m)
    # where training leaves its floor: the last epoch within the noise of its smoothed minimum
    train_tol = max(BEST_TOLERANCE * S, BEST_TOLERANCE_Z * noise.train_sd * math.sqrt(smooth_var))
    i_floor = int(np.flatnonzero(train_s <= train_s.min() + train_tol)[-1])
    # s.e. of the end gap: each end value is a line's end over m points, var ~ 4 sd^2/m; for an
    # ensemble at least the members' spread, how far one fold's validation level can lie from another's
    gap_se = 2.0 * noise.gap_sd / math.sqrt(m)
    spread = _member_spread(c, val_s)
    if spread is not None:
        gap_se = max(gap_se, spread * max(va.end, NOISE_LEVEL_FLOOR * S))

    return {
        "n": n, "width": width, "window": m,
        "train_end": tr.end, "val_end": va.end,
        "train_slope": tr.slope * per_run_unit, "train_z": tr.z,
        "val_slope": va.slope * per_run_unit, "val_z": va.z,
        "gap_end": (va.end - tr.end) / S, "gap_slope": gp.slope * per_run_unit, "gap_z": gp.z,
        "train_level": tr.end / S, "val_level": va.end / S,
        "train_noise": noise.train_sd / S, "val_noise": noise.val_sd / S,
        "val_noise_rel": noise.val_rel, "noise_ratio": noise.val_rel / noise.train_rel,
        "val_share": val_share,
        "val_half_slope": va_half.slope * per_run_unit, "val_half_z": va_half.z,
        "best_epoch": int(c.epochs[i_best]), "min_epoch": int(c.epochs[i_min]), "best_val": lowest, "best_tolerance": best_tol / S,
        "train_rise": (tr.end - float(train_s.min())) / S, "train_floor_index": i_floor,
        "val_rise": rise / S, "val_rise_z": rise_z,
        "gap_end_z": (va.end - tr.end) / gap_se,
        "after_min": (x[-1] - x[i_min]) / run,
        "below_fraction": float(np.mean(val_s < train_s)),
        "train_eval_end": _train_eval_end(c, last),
        "member_spread": spread,
    }


def _rise(after: np.ndarray, lowest: float, end: float, sd: float, smooth_var: float, m: int) -> tuple[float, float]:
    """How far validation rose above its smoothed minimum ``lowest``, and in standard errors: the larger
    (in s.e.) of the rise at the end (the last-quarter line's end value, s.e. from var ~ 4 sd^2/m) and
    the median rise over all epochs after the minimum (var ~ (pi/2) sd^2 / count). The end alone misses
    a validation curve that climbed far above its minimum and came partway back before training
    stopped; the median alone underrates a rise still under way. after: (k,) raw values after the
    minimum; sd: the validation noise s.d.; smooth_var: the smoothed minimum's variance / sd^2."""
    candidates = [(end - lowest, sd * math.sqrt(smooth_var + 4.0 / m))]
    if len(after) >= MIN_POINTS:
        candidates.append((float(np.median(after)) - lowest, sd * math.sqrt(smooth_var + math.pi / 2 / len(after))))
    rise, se = max(candidates, key=lambda r: r[0] / r[1])
    return rise, rise / se


def _member_spread(c: _Curves, val_s: np.ndarray) -> float | None:
    """Median over the second half of s.d. across members / the validation level (floored like
    the wiggle's), where at least two members ran; None without members."""
    if c.spread is None:
        return None
    late = _late(len(c.epochs))
    level = np.maximum(val_s[late], NOISE_LEVEL_FLOOR * c.scale)
    rel = c.spread[late] / level
    rel = rel[np.isfinite(rel)]
    return float(np.median(rel)) if rel.size else None


@dataclass(frozen=True)
class _Rise:
    """A training loss that rises at the end: it leaves its floor at ``index`` into the curves (at
    ``epoch``) and ends ``amount`` x S above its smoothed minimum."""

    index: int
    epoch: int
    amount: float


def _training_rise(c: _Curves, f: dict) -> _Rise | None:
    """The rise of a training loss that rises at the end (the ``train_rising`` fact), or None. Gradient
    descent on a fixed training set lowers the training loss; a rise means the steps are too large."""
    if _facts(f)["unstable"] <= 0:
        return None
    i = f["train_floor_index"]
    return _Rise(i, int(c.epochs[i]), f["train_rise"])


def _head(c: _Curves, k: int) -> _Curves:
    """The curves' first ``k`` kept epochs (the run before it went unstable)."""
    cut = lambda a: None if a is None else a[:k]  # noqa: E731
    return replace(c, epochs=c.epochs[:k], train=c.train[:k], val=c.val[:k], train_eval=cut(c.train_eval),
                   spread=cut(c.spread))


def _train_eval_end(c: _Curves, last: slice) -> float | None:
    """Median inference-mode training loss over the last window (it may be recorded sparsely)."""
    if c.train_eval is None:
        return None
    window = c.train_eval[last]
    window = window[np.isfinite(window)]
    return float(np.median(window)) if len(window) else None


# --- scoring -----------------------------------------------------------------------------------


def _ramp(x: float, threshold: float, width: float, limit: float = 1.0) -> float:
    """Fuzzy truth of ``x >= threshold``: -1 (clearly false) .. 0 (on the threshold) .. +1."""
    return float(np.clip((x - threshold) / width, -limit, limit))


def _falling(slope: float, z: float, limit: float = 1.0) -> float:
    """Clearly falling: steep enough to matter and steep enough to stand out of the noise.
    ``_falling(-slope, -z)`` is "clearly rising"."""
    return min(_ramp(-slope, FALL_SLOPE, FALL_WIDTH, limit), _ramp(-z, SLOPE_Z, SLOPE_Z_WIDTH, limit))


def _rose(f: dict, limit: float = 1.0) -> float:
    """Validation rose after its minimum: far, significantly, and not only in the last epochs."""
    return min(_ramp(f["val_rise"], RISE_LEVEL, RISE_WIDTH, limit),
               _ramp(f["val_rise_z"], RISE_Z, RISE_Z_WIDTH, limit),
               _ramp(f["after_min"], AFTER_MIN_FRACTION, AFTER_MIN_WIDTH, limit))


def _facts(f: dict, limit: float = 1.0) -> dict[str, float]:
    """The fuzzy truths the rules are built from, by name (``_FACT_WORDS`` phrases each one)."""

    def ramp(x: float, threshold: float, width: float) -> float:
        return _ramp(x, threshold, width, limit)

    def falling(slope: float, z: float) -> float:
        return _falling(slope, z, limit)

    t = {
        "train_falling": falling(f["train_slope"], f["train_z"]),
        "val_falling": falling(f["val_slope"], f["val_z"]),
        # clearly climbing at the end, or blown up: ended far above its minimum (a curve that grows by
        # orders of magnitude is all "noise" to the slope's z-score)
        "train_rising": max(falling(-f["train_slope"], -f["train_z"]),
                            ramp(f["train_rise"], BLOWUP_RISE, BLOWUP_WIDTH)),
        "val_rising": falling(-f["val_slope"], -f["val_z"]),
        "rose": _rose(f, limit),
        "high": ramp(min(f["train_level"], f["val_level"]), CAPACITY_LEVEL, CAPACITY_WIDTH),
        # a wide end gap that stands out of the noise (a noisy end level can land anywhere)
        "gap_large": min(ramp(f["gap_end"], GAP_LARGE, GAP_WIDTH),
                         ramp(f["gap_end_z"], GAP_NOISE_Z if f["member_spread"] is None else MEMBER_GAP_Z,
                              GAP_NOISE_Z_WIDTH)),
        "gap_small": ramp(GAP_LARGE - abs(f["gap_end"]), 0.0, GAP_WIDTH),
        "gap_growing": min(ramp(f["gap_slope"], GAP_GROW, GAP_GROW_WIDTH), ramp(f["gap_z"], SLOPE_Z, SLOPE_Z_WIDTH)),
        "noisy": min(ramp(f["val_noise_rel"], NOISY_REL, NOISY_REL_WIDTH),
                     ramp(f["noise_ratio"], NOISE_RATIO, NOISE_RATIO_WIDTH)),
        "below": min(ramp(f["below_fraction"], BELOW_FRACTION, BELOW_FRACTION_WIDTH),
                     ramp(-f["gap_end"], BELOW_GAP, BELOW_GAP_WIDTH)),
    }
    if f["member_spread"] is not None:  # an ensemble's mean curves: see "Ensembles" above
        t["noisy"] = ramp(f["member_spread"], MEMBER_SPREAD, MEMBER_SPREAD_WIDTH)
    t["clear_rise"] = min(t["rose"], ramp(f["val_rise_z"], CLEAR_RISE_Z, RISE_Z_WIDTH))
    t["unstable"] = min(t["train_rising"], ramp(f["train_rise"], UNSTABLE_RISE, UNSTABLE_WIDTH))
    # validation left behind: a large, growing gap with validation gaining < half of training
    t["val_lags"] = min(t["gap_large"], t["gap_growing"], ramp(VAL_SHARE - f["val_share"], 0.0, VAL_SHARE_WIDTH))
    # validation keeps pace with training over the second half and is falling there: it is still
    # falling even if the last quarter alone is too short to show it through the noise
    val_follows = min(ramp(f["val_share"] - VAL_SHARE, 0.0, VAL_SHARE_WIDTH),
                      falling(f["val_half_slope"], f["val_half_z"]))
    # the second-half shortcut for validation is not trusted when validation is erratic
    t["val_improving"] = max(t["val_falling"], min(val_follows, -t["noisy"]))
    t["val_settled"] = max(-t["val_falling"], t["val_lags"])
    t["rise_beats_noise"] = max(-t["noisy"], t["clear_rise"])
    return t


# Each label's rule: the facts that must hold ("-name": must not hold), combined by fuzzy AND.
RULES: dict[str, tuple[str, ...]] = {
    # the training curve is what "cannot fit" is about: whatever validation does (it may wobble or
    # drift up), a model stuck near the baseline is short of capacity. A training loss that climbs is
    # not stuck: its steps are too large (see "Instability")
    "underfit_capacity": ("high", "-train_falling", "-unstable"),
    "underfit_stopped_early": ("train_falling", "val_improving", "-val_lags"),
    "overfit": ("rose", "-train_rising", "-high", "rise_beats_noise"),
    "good_fit": ("-train_falling", "-train_rising", "-val_falling", "-val_rising", "-rose", "gap_small",
                 "-gap_growing", "-high", "-noisy", "-below"),
    # the notes: training falls, validation settles much higher, the gap widens over time. Both
    # curves start near the baseline, so a wide end gap has widened over the run; whether it still
    # grows at the end is reported, not required: a network that memorises its training rows within a
    # few epochs has a training loss near 0 that cannot fall further, and the gap stays wide
    "unrepresentative_train": ("gap_large", "val_settled", "-rose", "-high"),
    # erratic validation with no clear trend; a wide gap standing out of the noise is the bigger story
    "unrepresentative_validation_noisy": ("noisy", "-clear_rise", "-gap_large"),
    # the notes: "stable train loss", validation "converges" below it; both curves near the baseline
    # is a capacity problem whatever their order, both still falling is a run stopped early, and an
    # erratic validation curve (a handful of validation samples: which ones were drawn sets its level,
    # every update moves it) is noisy validation
    "validation_below_train": ("below", "-high", "-train_falling", "-noisy"),
}


def _truth(facts: dict[str, float], condition: str) -> float:
    return -facts[condition[1:]] if condition.startswith("-") else facts[condition]


def _label_conditions(f: dict, limit: float = 1.0) -> dict[str, list[tuple[str, float]]]:
    """Each label's conditions as ``(name, fuzzy truth in [-limit, limit])``; see the module doc.
    ``limit=inf`` gives the unclipped margins that break ties between equal scores."""
    facts = _facts(f, limit)
    return {lab: [(cond, _truth(facts, cond)) for cond in conds] for lab, conds in RULES.items()}


def _pick(f: dict) -> tuple[str, str | None, dict[str, float], dict[str, list[tuple[str, float]]]]:
    """Winner = highest score. Ties are common at the clip limits (two rules fully true, or no
    rule holding and every score at -1); they go to the label that comes closest to holding:
    fewest conditions clearly false (at -1), then the larger unclipped minimum margin, then the
    larger mean margin over the rule's conditions. (Otherwise a rule with many conditions wins a
    tie at -1 on its mean: good_fit with an end gap 7 ramp widths past "small".) The runner-up
    is the second label when within ``RUNNER_UP_MARGIN``. Also returns the conditions, for the
    words of a verdict no rule fully supports."""
    conditions = _label_conditions(f)
    values = {lab: [v for _, v in c] for lab, c in conditions.items()}
    scores = {lab: min(v) for lab, v in values.items()}
    n_false = {lab: sum(x <= -1.0 for x in v) for lab, v in values.items()}
    margins = {lab: min(v for _, v in c) for lab, c in _label_conditions(f, limit=math.inf).items()}
    ranked = sorted(LABELS, key=lambda lab: (-scores[lab], n_false[lab], -margins[lab],
                                             -float(np.mean(values[lab]))))
    first, second = ranked[0], ranked[1]
    return first, (second if scores[first] - scores[second] <= RUNNER_UP_MARGIN else None), scores, conditions


# --- reporting ---------------------------------------------------------------------------------


def _plain(v):
    """numpy scalars -> Python, floats to 6 significant digits; non-finite -> None (JSON has no
    NaN)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return float(f"{v:.6g}") if math.isfinite(v) else None


def _user_units(value: float, c: _Curves) -> float:
    return value if c.ceiling is None else c.ceiling - value


def _cause_capacity(f: dict, c: _Curves, capacity_tried: str | None) -> str | None:
    """Why the curves stay near no skill, when the run says more than the shape: 'not_learning' (both curves end
    ``NOT_LEARNING`` above the baseline: worse than a constant prediction), 'larger_model_tried' (the run already
    tried a larger network, ``capacity_tried``), else None (the notes' capacity case)."""
    # both curves: dropout or input noise can lift the training loss of a network that did learn above the baseline
    if c.baseline is not None and (min(f["train_end"], f["val_end"]) - c.baseline) / c.scale >= NOT_LEARNING:
        return "not_learning"
    return "larger_model_tried" if capacity_tried else None


def _cause_below(f: dict, c: _Curves, stochastic: bool) -> str:
    """Why validation sits below training: 'training_only_noise', 'likely_training_only_noise',
    'validation_easier' or 'unknown' (decided from the inference-mode training loss if given)."""
    if f["train_eval_end"] is not None:
        gap = f["train_end"] - f["val_end"]  # > 0 here
        if f["train_eval_end"] - f["val_end"] <= TRAIN_EVAL_CLOSE * gap:
            return "training_only_noise"
        return "validation_easier"
    return "likely_training_only_noise" if stochastic else "unknown"


def _evidence(f: dict, c: _Curves, label: str, scores: dict, runner_up, stochastic: bool,
              rise: _Rise | None, capacity_tried: str | None = None) -> dict:
    """The evidence in loss orientation (slopes and gaps: > 0 worse); ``_user_evidence`` turns it
    to the curves' own direction."""
    S = c.scale
    ev = {
        "n_epochs": f["n"],
        "n_missing": c.n_missing,
        "n_infinite": c.n_infinite, "first_infinite_epoch": c.first_infinite,
        "train_rise": None if rise is None else rise.amount,
        "unstable_epoch": c.first_infinite if rise is None else rise.epoch,
        "short_curve": f["n"] < SHORT_CURVE_EPOCHS,
        "first_epoch": int(c.epochs[0]), "last_epoch": int(c.epochs[-1]),
        "window_epochs": f["window"], "window_first_epoch": int(c.epochs[-f["window"]]), "smoothing_width": f["width"],
        "scale": S,
        "scale_source": c.scale_source,
        "higher_is_better": c.ceiling is not None,
        "train_final": _user_units(f["train_end"], c),
        "val_final": _user_units(f["val_end"], c),
        "best_val": _user_units(f["best_val"], c),
        "best_epoch": f["best_epoch"], "best_tolerance": f["best_tolerance"],
        "train_level": f["train_level"], "val_level": f["val_level"],
        "train_slope": f["train_slope"], "val_slope": f["val_slope"],
        "train_slope_z": f["train_z"], "val_slope_z": f["val_z"],
        "gap_end": f["gap_end"], "gap_end_z": f["gap_end_z"], "gap_slope": f["gap_slope"], "gap_slope_z": f["gap_z"],
        "gap_trend": _gap_trend(f), "val_share": f["val_share"],
        "val_noise": f["val_noise"], "val_noise_rel": f["val_noise_rel"],
        "train_noise": f["train_noise"], "noise_ratio": f["noise_ratio"],
        "member_spread": f["member_spread"],
        "val_rise": f["val_rise"], "val_rise_z": f["val_rise_z"],
        "below_fraction": f["below_fraction"],
        # where the rise starts: the smoothed optimum itself (best_epoch may be earlier, within the noise)
        "divergence_epoch": f["min_epoch"] if label == "overfit" else None,
        "train_distance_from_baseline": None, "val_distance_from_baseline": None,
        "train_eval_final": None if f["train_eval_end"] is None
        else _user_units(f["train_eval_end"], c),
        "cause": (_cause_below(f, c, stochastic) if label == "validation_below_train" else
                  _cause_capacity(f, c, capacity_tried) if label == "underfit_capacity" else None),
        "score": scores[label],
        "runner_up_score": None if runner_up is None else scores[runner_up],
    }
    if c.baseline is not None:  # fraction of the no-skill loss the model removed
        ev["train_distance_from_baseline"] = (c.baseline - f["train_end"]) / S
        ev["val_distance_from_baseline"] = (c.baseline - f["val_end"]) / S
    return {k: _plain(v) for k, v in ev.items()}


# Signed changes the evidence reports in the curves' own direction: for a higher-is-better metric a
# positive slope rises (improves) and a negative gap puts validation below training.
_SIGNED = ("train_slope", "val_slope", "train_slope_z", "val_slope_z", "gap_end", "gap_end_z", "gap_slope",
           "gap_slope_z")


def _user_evidence(lv: dict) -> dict:
    """Loss-orientation evidence -> the curves' own direction (a sign flip of ``_SIGNED`` for scores)."""
    if not lv["higher_is_better"]:
        return dict(lv)
    return {k: (0.0 - v if k in _SIGNED and v is not None else v) for k, v in lv.items()}  # 0.0 - 0.0 is not -0.0


def _gap_trend(f: dict) -> str:
    if f["gap_slope"] >= GAP_GROW and f["gap_z"] >= SLOPE_Z:
        return "growing"
    if f["gap_slope"] <= -GAP_GROW and f["gap_z"] <= -SLOPE_Z:
        return "shrinking"
    return "stable"


def _pct(x) -> str:
    """A share as a percentage; beyond 10,000 % (a blown-up loss against its scale) in powers of ten,
    where the digits after the first two say nothing."""
    if x is None:
        return "n/a"
    return f"{100 * x:.1f} %" if abs(x) < 100 else f"{100 * x:.2g} %"


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.4g}"


@dataclass(frozen=True)
class _Words:
    """The direction words of the curves' measure, so that every sentence reads right for a loss
    (lower is better) and for a score such as balanced accuracy (higher is better)."""

    higher_is_better: bool
    name: str  # "loss", "balanced accuracy", ...

    def pick(self, loss: str, score: str) -> str:
        return score if self.higher_is_better else loss

    @property
    def worse_side(self) -> str:  # where a worse validation curve lies
        return self.pick("above", "below")

    @property
    def better_side(self) -> str:
        return self.pick("below", "above")

    @property
    def best(self) -> str:
        return self.pick("lowest", "highest")

    @property
    def improving(self) -> str:
        return self.pick("falling", "rising")

    @property
    def worsened(self) -> str:  # past tense of getting worse
        return self.pick("rose", "fell")

    @property
    def worsen(self) -> str:
        return self.pick("rise", "fall")

    @property
    def poor(self) -> str:
        return self.pick("high", "low")


_TITLES = {
    "underfit_capacity": "Underfit (capacity)",
    "underfit_stopped_early": "Underfit (stopped early)",
    "overfit": "Overfit",
    "good_fit": "Good fit",
    "unrepresentative_train": "Unrepresentative training set",
    "unrepresentative_validation_noisy": "Noisy validation (unrepresentative validation set)",
    "validation_below_train": "Validation below training",
}


def label_title(label: str, higher_is_better: bool = False) -> str:
    """The label in words, for titles ("Good fit" for ``good_fit``); for a higher-is-better metric
    ``validation_below_train`` reads "Validation better than training" (it lies above)."""
    if label == "validation_below_train" and higher_is_better:
        return "Validation better than training"
    return _TITLES.get(label, label.replace("_", " ").capitalize())


def _ratio_words(ratio) -> str:
    if ratio is None:
        return "n/a"
    if ratio > 100:  # a training curve that barely moves (a score pinned at 1.0)
        return "while the training curve barely wiggles"
    return f"{ratio:.1f}x the training curve's"


def _fact_words(fact: str, holds: bool, ev: dict, w: _Words) -> str:
    """One fact of ``_facts`` in words, as it holds or fails on this run (ev: loss-orientation evidence)."""
    n, per = w.name, "of the scale per 10 % of the run"
    gap = ev["gap_end"]
    start = "the no-skill level" if ev["scale_source"] == "baseline" else "their starting level"
    noise = (f"wiggles by {_pct(ev['val_noise_rel'])} of its level, {_ratio_words(ev['noise_ratio'])}")
    if fact == "noisy" and ev["member_spread"] is not None:
        return (f"the members' validation curves differ by {_pct(ev['member_spread'])} of their level" if holds
                else f"the members' validation curves agree (they differ by {_pct(ev['member_spread'])} of their level)")
    words = {
        "train_falling": (f"the training {n} was still {w.improving} at the end ({_pct(abs(ev['train_slope']))} {per})",
                          f"the training {n} was no longer clearly {w.improving} at the end"),
        "val_falling": (f"the validation {n} was still {w.improving} at the end ({_pct(abs(ev['val_slope']))} {per})",
                        f"the validation {n} was no longer clearly {w.improving} at the end"),
        "train_rising": (f"the training {n} was getting worse at the end", f"the training {n} was not getting worse"),
        "val_rising": (f"the validation {n} was getting worse at the end", f"the validation {n} was not getting worse"),
        "unstable": (f"the training {n} {w.worsened} by {_pct(ev['train_rise'])} of the scale at the end",
                     f"the training {n} did not climb at the end"),
        "rose": (f"validation {w.worsened} by {_pct(ev['val_rise'])} of the scale after its {w.best} value",
                 _no_rise_words(ev, w)),
        "clear_rise": (f"the change after its {w.best} value stands far out of the noise ({_num(ev['val_rise_z'])} s.e.)",
                       f"validation shows no clear trend after its {w.best} value"),
        "high": (f"both curves {'end above' if min(ev['train_level'], ev['val_level']) > 1 else 'stay close to'} "
                 f"{start} (training {_num(ev['train_final'])}, validation {_num(ev['val_final'])})",
                 f"the model moved well away from {start} (training {_num(ev['train_final'])}, validation "
                 f"{_num(ev['val_final'])})"),
        "gap_large": (f"validation settles {_pct(gap)} of the scale {w.worse_side} training",
                      f"the end gap is small ({_pct(abs(gap))} of the scale)" if gap < GAP_LARGE else
                      f"the end gap ({_pct(gap)} of the scale) does not stand out of the noise "
                      f"({_num(ev['gap_end_z'])} s.e.)"),
        "gap_small": (f"both curves end at a similar level (gap {_pct(abs(gap))} of the scale)",
                      f"the curves end far apart (validation {_pct(abs(gap))} of the scale "
                      f"{w.worse_side if gap > 0 else w.better_side} training)"),
        "gap_growing": ("the gap keeps growing", "the gap is not growing"),
        "noisy": (f"the validation {n} is erratic (it {noise})",
                  f"the validation {n} is not erratic (it {noise})" if ev["val_noise_rel"] < NOISY_REL else
                  f"the validation {n} is hardly more erratic than the training {n} (it {noise})"),
        "below": (f"validation is better than training ({w.better_side} it) in {_pct(ev['below_fraction'])} of epochs",
                  "validation is not consistently better than training"),
        "val_lags": ("validation gains less than half of what training gains while the gap grows",
                     "validation keeps pace with training"),
        "val_improving": (f"the validation {n} was still {w.improving} too",
                          f"the validation {n} was no longer {w.improving}"),
        "val_settled": ("validation has settled",
                        f"validation was still {w.improving} at the end ({_pct(abs(ev['val_slope']))} {per})"),
        "rise_beats_noise": ("the validation curve is steady enough for a rise to count",
                             "validation is too erratic for a rise to count as a trend"),
    }
    return words[fact][0 if holds else 1]


def _no_rise_words(ev: dict, w: _Words) -> str:
    """Why validation did not clearly get worse after its best value, naming the part of ``_rose`` that fails:
    "did not clearly rise (1.9 % of the scale, 1.1e+07 s.e.)" left the reader to guess which number fell short."""
    rise, z = ev["val_rise"], ev["val_rise_z"]
    if rise <= 0:
        return f"validation did not {w.worsen} after its {w.best} value"
    if rise <= RISE_LEVEL:
        return (f"validation {w.worsened} by only {_pct(rise)} of the scale after its {w.best} value (a rise counts "
                f"from {_pct(RISE_LEVEL)})")
    if z <= RISE_Z:
        return (f"the change after its {w.best} value ({_pct(rise)} of the scale) is within the noise "
                f"({_num(z)} s.e.; a rise counts from {RISE_Z:g})")
    return f"validation was {w.best} in the last epochs of the run, too late for a rise to show"


def _explain(label: str, conditions: list[tuple[str, float]], ev: dict, w: _Words) -> tuple[list[str], list[str]]:
    """The label's conditions in words: those that hold and those that do not (truth <= 0)."""
    holds, fails = [], []
    for cond, truth in conditions:
        fact, negated = cond.lstrip("-"), cond.startswith("-")
        fact_holds = (truth > 0) != negated  # a NOT condition holds when its fact does not
        (holds if truth > 0 else fails).append(_fact_words(fact, fact_holds, ev, w))
    return holds, fails


def _kept_words(kept: Sequence[int]) -> str:
    """Whose weights were restored, from which epochs: "training kept epoch 12's weights (...)", or for an
    ensemble "each member kept its own best epoch's weights (epochs 12, 15 and 9)"."""
    if len(kept) == 1:
        return f"training kept epoch {kept[0]}'s weights (its lowest validation loss)"
    return f"each member kept its own best epoch's weights (epochs {_join([str(k) for k in kept])})"


def _overfit_advice(ev: dict, stochastic: bool, w: _Words, kept: Sequence[int] | None) -> list[str]:
    """The notes' remedies for overfitting. Where the run already restored its best weights (``kept``: the epochs
    they come from) there is nothing to restore; where validation was best by ``EARLY_BEST_EPOCH`` there is no
    earlier epoch to stop at, and smaller steps, a smaller model or more regularisation are the remedy."""
    epoch = ev["divergence_epoch"]
    kept_median = int(np.median(kept)) if kept else None
    early = epoch <= EARLY_BEST_EPOCH or (kept_median is not None and kept_median <= EARLY_BEST_EPOCH)
    regularise = ("Add regularisation: L2 weight decay (--l2, --weight-decay), or raise the dropout rate already in use "
                  "(--dropout)." if stochastic else
                  "Add regularisation: L2 weight decay (--l2, --weight-decay) and/or dropout on the dense layers "
                  "(--dropout).")
    smaller = ("Reduce model capacity: fewer units or layers (--hidden, e.g. --hidden 32; --hidden none is the linear "
               "model).")
    augment = ("Use data augmentation (for expression matrices: mild noise after normalisation, e.g. "
               "--augment-noise auto, noise of SD sqrt(features / training rows) when features outnumber rows).")
    if early:
        kept_note = f"; {_kept_words(kept)}" if kept else ""
        at = epoch if epoch <= EARLY_BEST_EPOCH else kept_median
        return [f"Lower the learning rate (--lr, e.g. 3-10x lower): the validation {w.name} was {w.best} already "
                f"around epoch {at}, so the network overfits within its first epochs and there is no earlier epoch to "
                f"stop at{kept_note}. Smaller steps reach the best point over more epochs.",
                smaller, regularise, augment]
    if kept:
        # an ensemble's members may not be what ships (--refit trains one network for their median best epoch)
        holds = ", and the model holds them" if len(kept) == 1 else ""
        first = (f"Nothing to restore: {_kept_words(kept)}, from before validation {w.worsened}{holds}; the remedies "
                 "below raise that best point itself.")
    else:
        first = (f"Stop early at the divergence point: the smoothed validation {w.name} was {w.best} around epoch "
                 f"{epoch}; keep that epoch's weights (early stopping that restores the best weights does this, as "
                 "mlpcli train always does).")
    return [first, regularise, augment, smaller]


def _capacity_advice(ev: dict, w: _Words, capacity_tried: str | None) -> list[str]:
    """Underfit (capacity): the notes' remedies, unless the run says capacity is not what is missing: a training
    curve worse than a constant prediction (``cause`` not_learning) has not learned at all, and a larger network the
    run already tried (``capacity_tried``) did not do better."""
    regularisation = ("Check that regularisation (--l2, --weight-decay, --dropout, --augment-noise) is not so strong "
                      "that it prevents fitting.")
    if ev["cause"] == "not_learning":
        erratic = ev["train_noise"] is not None and ev["train_noise"] > 0.03
        return [
            f"The network has not learned: its training {w.name} ends {_pct(-ev['train_distance_from_baseline'])} of "
            f"the scale {'below' if w.higher_is_better else 'above'} the no-skill {w.name}, which a constant "
            "prediction reaches and any network can learn through its output bias alone, so more capacity cannot "
            "help yet.",
            (f"The training {w.name} is erratic (noise {_pct(ev['train_noise'])} of the scale): lower the learning "
             "rate (--lr) or clip the gradient norm (--clip-norm)." if erratic else
             "Raise the learning rate (--lr) or train for more epochs (--epochs): at a rate too low to move the "
             "weights the curves stay flat where the untrained network starts."),
            regularisation,
            "Once the training curve moves past the no-skill level, judge capacity again (more units or layers with "
            "--hidden, better features) if it still stays poor.",
        ]
    lr = (f"The training {w.name} is erratic (noise " + _pct(ev["train_noise"]) + " of the scale): "
          "the learning rate is probably too high; lower it (--lr)."
          if ev["train_noise"] is not None and ev["train_noise"] > 0.03
          else "Check the learning rate (--lr): a rate that is too high also keeps the curves near the "
               "baseline.")
    unknown = ([] if ev["train_distance_from_baseline"] is not None else [
        # flat from the first epoch reads the same whether the run never learned or learned within epoch 1
        f"First check the verdict: without a baseline the first epochs' level counts as no skill, so a run "
        f"that had already learned within its first epoch looks the same. Give the no-skill {w.name} with "
        "--baseline" + (" (balanced accuracy: 1/K for K classes)." if w.higher_is_better else
                        " (cross-entropy: the loss of predicting the class prior, ln K for K balanced classes; "
                        "mlpcli's MSE on standardised targets: about 0.5).")])
    if ev["cause"] == "larger_model_tried":
        return unknown + [
            f"More capacity was tried and did not do clearly better: {capacity_tried}. The features probably "
            "carry little information about the target, or the target is mostly noise (mislabelled samples, "
            "measurement noise): improve the features (more informative inputs, better normalisation or selection) "
            "or check the target before making the model larger.",
            lr, regularisation,
        ]
    return unknown + [
        "Increase model capacity: more units per layer or more hidden layers (--hidden, e.g. --hidden 256 or "
        "--hidden 256,64).",
        "Improve the features (more informative inputs, better normalisation or selection).",
        lr, regularisation,
    ]


def _advice(label: str, ev: dict, stochastic: bool, w: _Words, kept: Sequence[int] | None = None,
            capacity_tried: str | None = None, validation_table: str | None = None) -> list[str]:
    """The notes' remedies for ``label``, filled in with the (loss-orientation) evidence; ``kept``: the epochs whose
    weights the run restored (one per network), when known; ``capacity_tried``: the larger network the run already
    tried, in words; ``validation_table``: the separate table validation came from."""
    per = "of the scale per 10 % of the run"
    if label == "underfit_capacity":
        return _capacity_advice(ev, w, capacity_tried)
    if label == "underfit_stopped_early":
        return [
            f"Train for more epochs (--epochs): both curves were still {w.improving} at the end, over epochs "
            f"{ev['window_first_epoch']}-{ev['last_epoch']} (training {_pct(-ev['train_slope'])}, validation "
            f"{_pct(-ev['val_slope'])} {per}{_per_epochs(ev)}).",
            "Revisit early stopping: raise --patience (or lower --min-delta) so the run is not cut short.",
        ]
    if label == "overfit":
        return _overfit_advice(ev, stochastic, w, kept)
    if label == "good_fit":
        return [
            f"Nothing needed: both curves settle at a similar level (validation {_pct(abs(ev['gap_end']))} of the "
            f"scale {w.worse_side if ev['gap_end'] > 0 else w.better_side} training, gap {ev['gap_trend']}).",
            "A small, stable gap is expected; a gap of exactly zero is unlikely in practice.",
        ]
    if label == "unrepresentative_train":
        more = [f"Collect more training data: validation settles {_pct(ev['gap_end'])} of the scale "
                f"{w.worse_side} training and the gap {_gap_words(ev)}.",
                "Apply data augmentation to widen what the training set covers (for expression matrices with more "
                "features than rows: --augment-noise auto, input noise of SD sqrt(features / training rows))."]
        if validation_table:  # a table of its own: the two sets differ by construction, more of the same won't close it
            return [f"Check the validation table first: {validation_table} is a separate table, so a wide gap that "
                    f"does not close ({_pct(ev['gap_end'])} of the scale) most likely means it differs from the "
                    "training data (another cohort, batch, site, protocol or preprocessing, or another class mix); "
                    "compare the two tables before collecting more training data of the same kind.",
                    *more]
        return [*more, "Check for a train/validation distribution mismatch (batch, site, cohort or "
                       "sequencing-run composition); split by patient, experiment or batch (--group names the column "
                       "whose samples stay on one side)."]
    if label == "unrepresentative_validation_noisy" and ev["member_spread"] is not None:
        return [
            f"The validation folds disagree: the members' validation curves differ by "
            f"{_pct(ev['member_spread'])} of their level, so a single fold's curve says little. Use "
            f"fewer, larger folds (--folds, e.g. --folds 3), or collect more samples.",
            "Check the fold table train prints: folds are stratified by class with patients kept whole (--group), "
            "so a fold short of a class or made of one batch points at too few patients per class or batch.",
            "Judge the run by the members' mean curve, not by any one member's.",
        ]
    if label == "unrepresentative_validation_noisy":
        return [
            f"Use a larger validation set (--val-size, e.g. 0.3): its {w.name} wiggles by "
            f"{_pct(ev['val_noise_rel'])} of its level, {_ratio_words(ev['noise_ratio'])}.",
            "Stratify (and shuffle) the validation split so every class and batch is represented.",
            "Use k-fold cross-validation to average out the noise of a single small split (--folds 5, train's "
            "default: every sample validates one member of the ensemble).",
        ]
    return _advice_below(ev, w)


def _unstable_sentence(ev: dict, w: _Words) -> str:
    """What went unstable, leading the summary (ev: loss-orientation evidence with an ``unstable_epoch``)."""
    parts = []
    if ev["train_rise"] is not None:
        parts.append(f"the training {w.name} {w.worsened} by {_pct(ev['train_rise'])} of the scale from around "
                     f"epoch {ev['unstable_epoch']} to the end")
    if ev["n_infinite"]:
        k = ev["n_infinite"]
        parts.append(f"the {w.name} is infinite in {k} epoch{'s' if k > 1 else ''} from epoch "
                     f"{ev['first_infinite_epoch']} (left out of the curves)")
    first, last = ev["first_epoch"], ev["last_epoch"]
    read = f"Up to epoch {last}, " if last <= ev["unstable_epoch"] else f"Over epochs {first}-{last}, "
    return f"Unstable training: {' and '.join(parts)}: the learning rate is probably too high. {read}"


def _unstable_advice(ev: dict) -> list[str]:
    return [f"Lower the learning rate (--lr, e.g. 3-10x lower) or clip the gradient norm (--clip-norm): the run "
            f"went unstable at epoch {ev['unstable_epoch']}.",
            f"Keep the weights from before that: the best epoch up to it is {ev['best_epoch']} (early stopping on "
            "the validation loss restores it)."]


def _advice_below(ev: dict, w: _Words) -> list[str]:
    """Validation below training: the advice depends on what the inference-mode training loss
    (or the use of dropout) says about the cause."""
    cause = ev["cause"]
    if cause == "training_only_noise":
        return [f"The inference-mode training {w.name} ({ev['train_eval_final']:.4g}) is close to the "
                f"validation {w.name} ({ev['val_final']:.4g}): the gap comes from dropout or other "
                f"training-only noise, not from the data; no action needed.",
                "Compare train and validation in inference mode when judging the fit."]
    easier = ("Check that the validation set is not easier than the training set (leakage, "
              "duplicates, class or batch composition).")
    if cause == "validation_easier":
        return [f"Even the inference-mode training {w.name} ({ev['train_eval_final']:.4g}) is worse than "
                f"the validation {w.name} ({ev['val_final']:.4g}), so dropout does not explain it.",
                easier, "Not always a problem: understand the cause first."]
    if cause == "likely_training_only_noise":
        first = (f"The model used dropout or noise during training: the training {w.name} is measured "
                 "with it active and the validation one without, which makes validation look "
                 f"better. Compare against the inference-mode training {w.name} to confirm.")
    else:
        first = ("Check for dropout or other training-only noise: compare validation with the "
                 f"training {w.name} re-measured in inference mode.")
    return [first, "If that does not explain it: " + easier[0].lower() + easier[1:],
            "Not always a problem: understand the cause first."]


def _shape_sentence(label: str, ev: dict, w: _Words) -> str:
    """The label's sentence with its key numbers (loss-orientation evidence, words from ``w``)."""
    n, per = w.name, "per 10 % of the run"
    tf, vf = _num(ev["train_final"]), _num(ev["val_final"])
    title = label_title(label, w.higher_is_better)
    if label == "underfit_capacity":
        d_tr, d_va = ev["train_distance_from_baseline"], ev["val_distance_from_baseline"]
        if d_tr is None:
            return (f"{title}: both curves stay flat near their starting level, taken as no skill without a baseline "
                    f"(training {tf}, validation {vf}: {_pct(ev['train_level'])} and {_pct(ev['val_level'])} of it)")
        if ev["cause"] == "not_learning":
            return (f"{title}: both curves are flat at a {w.poor} {n} (training {tf}, validation {vf}), training "
                    f"{_pct(-d_tr)} of the scale {w.worse_side} the no-skill {n}: the network has not learned, which "
                    "points at the optimisation before capacity")
        if min(d_tr, d_va) >= SHARE_SHOWN:
            return (f"{title}: both curves are flat at a {w.poor} {n} (training {tf}, validation {vf}; "
                    f"{_pct(d_tr)} and {_pct(d_va)} of the way from no skill to perfect)")
        return (f"{title}: both curves are flat at a {w.poor} {n} (training {tf}: {_from_no_skill(d_tr)}; "
                f"validation {vf}: {_from_no_skill(d_va)})")
    if label == "underfit_stopped_early":
        return (f"{title}: both curves were still {w.improving} over epochs {ev['window_first_epoch']}-"
                f"{ev['last_epoch']}, the run's last quarter (training by "
                f"{_pct(-ev['train_slope'])}, validation by {_pct(-ev['val_slope'])} of the scale {per}"
                f"{_per_epochs(ev)})")
    if label == "overfit":
        kept = (f"kept {w.improving}" if -ev["train_slope"] >= FALL_SLOPE else f"stayed near {tf}")
        return (f"{title}: the smoothed validation {n} was {w.best} around epoch {ev['divergence_epoch']} "
                f"({_num(ev['best_val'])}) and then {w.worsened} by {_pct(ev['val_rise'])} of the scale, while the "
                f"training {n} {kept}")
    if label == "good_fit":
        side = w.worse_side if ev["gap_end"] > 0 else w.better_side
        return (f"{title}: both curves settle at a similar level (training {tf}, validation {vf}: validation "
                f"{_pct(abs(ev['gap_end']))} of the scale {side} training, gap {ev['gap_trend']})")
    if label == "unrepresentative_train":
        return (f"{title}: validation settles {_pct(ev['gap_end'])} of the scale {w.worse_side} training "
                f"({vf} against {tf}) and the gap {_gap_words(ev)} ({_pct(ev['gap_slope'])} {per})")
    if label == "unrepresentative_validation_noisy" and ev["member_spread"] is not None:
        return (f"Noisy validation: the members' validation {n} curves differ by {_pct(ev['member_spread'])} "
                f"of their level (s.d. across members) with no clear trend in their mean")
    if label == "unrepresentative_validation_noisy":
        return (f"Noisy validation: the validation {n} wiggles by {_pct(ev['val_noise_rel'])} of its level "
                f"from epoch to epoch ({_ratio_words(ev['noise_ratio'])}) with no clear trend")
    s = (f"{title}: validation is {w.better_side} training in {_pct(ev['below_fraction'])} of epochs, "
         f"by {_pct(-ev['gap_end'])} of the scale at the end")
    return s + {
        "training_only_noise": ", explained by dropout or other training-only noise: the "
                               f"inference-mode training {n} is close to validation",
        "likely_training_only_noise": ", most likely because dropout or other training-only "
                                      f"noise makes the training {n} look worse",
        "validation_easier": f", even against the inference-mode training {n}: the "
                             "validation set looks easier than the training set",
    }.get(ev["cause"], "")


def _per_epochs(ev: dict) -> str:
    """", i.e. per 4 epochs": what 10 % of the run is, for a reader who counts in epochs (from 2 epochs on)."""
    span = SLOPE_UNIT * (ev["last_epoch"] - ev["first_epoch"])
    return f", i.e. per {span:.2g} epochs" if span >= 2 else ""


def _summary(label: str, ev: dict, conditions: list[tuple[str, float]], runner_up: str | None,
             tied: bool, w: _Words) -> str:
    """One sentence: the label's shape with its key numbers; when no rule fully holds (score < 0),
    plainly that no shape matches clearly, the closest one, why, and what speaks against it."""
    if ev["score"] is not None and ev["score"] < 0:
        holds, fails = _explain(label, conditions, ev, w)
        tie = (f" (tied with {label_title(runner_up, w.higher_is_better).lower()})" if tied and runner_up else "")
        s = f"No shape matches clearly; closest: {label_title(label, w.higher_is_better).lower()}{tie}"
        if holds:
            s += ", because " + _join(holds)
        s += "; but " + _join(fails)
    else:
        s = _shape_sentence(label, ev, w)
    if ev["short_curve"]:
        s += f" (short curve of {ev['n_epochs']} epochs: best-effort label)"
    return s + "."


SHARE_SHOWN = 0.0005  # a share printed as 0.0 % (one decimal of a percentage)


def _from_no_skill(distance: float) -> str:
    """A curve's distance from the baseline in words: "-0.2 % of the way from no skill to perfect" read as progress."""
    if abs(distance) < SHARE_SHOWN:
        return "no better than no skill"
    if distance > 0:
        return f"{_pct(distance)} of the way from no skill to perfect"
    return f"{_pct(-distance)} of the scale worse than no skill"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _gap_words(ev: dict) -> str:
    """'keeps growing' when the evidence shows it; a label won on a tie may have a stable gap."""
    return {"growing": "keeps growing", "shrinking": "is shrinking"}.get(ev["gap_trend"], "is stable")


def evidence_meanings(higher_is_better: bool = False) -> dict[str, str]:
    """What each evidence value means, phrased for the curves' direction (for the CLI's panel)."""
    w = _Words(higher_is_better, "")
    up = "> 0 rising, improving" if higher_is_better else "< 0 falling, improving"
    level = ("shortfall from a perfect score at the end / S" if higher_is_better else "level at the end / S")
    return {
        "n_epochs": "epochs the label reads (finite, and before the run went unstable)",
        "scale": ("scale S: from the no-skill value (baseline) to a perfect score, or the first epochs' shortfall"
                  if higher_is_better else "scale S: the no-skill loss (baseline) or the first epochs' level"),
        "scale_source": "where S comes from",
        "train_final": "training value at the end (smoothed)",
        "val_final": "validation value at the end (smoothed)",
        "best_val": f"best ({w.best}) validation value (smoothed)",
        "best_epoch": (f"first epoch whose smoothed validation value is within best_tolerance of the {w.best} "
                       "one (within the noise, the epoch a user calls best)"),
        "best_tolerance": "that tolerance / S: the larger of 1 % and two s.e. of a smoothed value (the smoothed optimum of a noisy plateau lies about that far beyond its level)",
        "divergence_epoch": f"divergence point: validation stops improving and starts to {w.worsen}",
        "train_level": f"training {level}",
        "val_level": f"validation {level}",
        "train_slope": f"training slope per 10 % of the run / S, over its last quarter ({up})",
        "train_slope_z": "training slope in standard errors",
        "val_slope": f"validation slope per 10 % of the run / S, over its last quarter ({up})",
        "val_slope_z": "validation slope in standard errors",
        "gap_end": (f"gap (validation - training) at the end / S (< 0: validation {w.worse_side} training, worse)"
                    if higher_is_better else
                    f"gap (validation - training) at the end / S (> 0: validation {w.worse_side} training, worse)"),
        "gap_end_z": "that gap in standard errors",
        "gap_slope": "gap slope per 10 % of the run / S (second half; the gap's sign as above)",
        "gap_trend": "how the gap moves over the second half (growing: validation falls further behind)",
        "val_share": "validation's share of the training improvement (second half)",
        "val_rise": (f"how far validation {w.worsened} after its {w.best} value / S (> 0 worse): the larger of the "
                     "change at the end and the median change since"),
        "val_rise_z": "that change in standard errors",
        "val_noise_rel": "validation wiggle / its level" + (" (its shortfall from a perfect score)" if higher_is_better else ""),
        "noise_ratio": "validation wiggle / training wiggle (relative)",
        "member_spread": "validation s.d. across ensemble members / its level",
        "below_fraction": f"share of epochs with validation better than ({w.better_side}) training",
        "train_eval_final": "training value in inference mode at the end",
        "cause": "likely cause",
        "n_infinite": "epochs with an infinite value (the run blew up; left out of the curves)",
        "first_infinite_epoch": "the first of them",
        "train_rise": (f"how far training {w.worsened} from its {w.best} value to the end / S, when it clearly "
                       "gets worse at the end (the steps are too large)"),
        "unstable_epoch": ("where the run went unstable: where training left its best level before that rise, else "
                           "the first infinite epoch (the shape is read from the run before it)"),
        "train_distance_from_baseline": "share of the way from no skill to perfect, on training",
        "val_distance_from_baseline": "share of the way from no skill to perfect, on validation",
        "score": ("rule score of the label, -1 .. 1: 1 every condition of its rule clearly holds, 0 one sits on "
                  "its threshold, < 0 at least one fails (no shape matches clearly)"),
        "runner_up_score": "rule score of the runner-up (same scale)",
    }


# --- public entry point ------------------------------------------------------------------------


def diagnose(
    train_loss: Sequence[float],
    val_loss: Sequence[float],
    *,
    baseline: float | None = None,
    train_eval_loss: Sequence[float] | None = None,
    stochastic_regularisation: bool = False,
    higher_is_better: bool = False,
    member_spread: Sequence[float] | None = None,
    name: str | None = None,
    kept_epochs: Sequence[int] | None = None,
    capacity_tried: str | None = None,
    validation_table: str | None = None,
    curve_names: tuple[str, str] = ("train_loss", "val_loss"),
) -> Diagnosis:
    """Label a run's learning curves with one of ``LABELS``.

    train_loss: (n_epochs,) training loss as measured during training (dropout active, mean over
        minibatches); val_loss: (n_epochs,) validation loss (inference mode). NaN = missing epoch;
        inf = the run blew up (reported as instability, see the module docstring).
    baseline: loss of always predicting the class prior / the mean; scales every rule and is
        reported as distance from baseline. Without it the first epochs' level is the scale.
    train_eval_loss: (n_epochs,) optional training loss re-measured in inference mode; tells
        whether a validation loss below the training loss comes from training-only noise.
    stochastic_regularisation: the model used dropout or noise augmentation while training.
    higher_is_better: the curves are a score on a 0-1 scale (accuracy, AUROC, ...): converted
        to a loss ``ceiling - score`` so the same rules apply (see the module docstring).
    member_spread: (n_epochs,) for the mean curves of an ensemble: the s.d. of the validation
        curve across members at each epoch (NaN where fewer than two members ran); it replaces
        the wiggle as the evidence of noisy validation (see "Ensembles" in the module docstring).
    name: what the curves measure, for the sentences ("balanced accuracy"); default "loss", or
        "score" when ``higher_is_better``.
    kept_epochs: the epochs whose weights the run restored (early stopping on the validation loss), one
        per network (an ensemble's members), when known: the overfit advice then says the best weights
        are already kept instead of asking to restore them.
    capacity_tried: a larger network the run already tried and how it scored against the one labelled, in words
        ("--hidden auto also tried hidden 128 (...)"): for ``underfit_capacity`` the advice then names the features
        or the labels instead of asking for more capacity (evidence ``cause`` "larger_model_tried").
    validation_table: the file validation came from when it is a table of its own (``train --val-data``), not a
        split of the training data: for ``unrepresentative_train`` the advice then leads with the mismatch between
        the two tables rather than with collecting more training data.

    curve_names: what the two curves are called in error messages (a history table's columns, e.g.
        ``("train_metric", "val_metric")``).

    Raises CurveError (a ValueError and a DataError) for mismatched lengths, fewer than 3 epochs
    with both values finite, a baseline that is not a finite loss above 0 (BaselineError, a
    CurveError), or a negative spread.
    """
    c = _prepare(train_loss, val_loss, baseline, train_eval_loss, higher_is_better, member_spread, tuple(curve_names))
    f = _measure(c)
    rise = _training_rise(c, f)
    if rise is not None and MIN_POINTS <= rise.index + 1 < len(c.epochs):  # the run before it went unstable
        c = _head(c, rise.index + 1)
        f = _measure(c)
    label, runner_up, scores, conditions = _pick(f)
    lv = _evidence(f, c, label, scores, runner_up, stochastic_regularisation, rise, capacity_tried)
    words = _Words(c.ceiling is not None, name or ("score" if c.ceiling is not None else "loss"))
    kept = [int(k) for k in kept_epochs if k is not None and k >= 1] if kept_epochs is not None else []
    advice = _advice(label, lv, stochastic_regularisation, words, kept or None, capacity_tried, validation_table)
    tied = runner_up is not None and scores[runner_up] == scores[label]
    summary = _summary(label, lv, conditions[label], runner_up, tied, words)
    if lv["unstable_epoch"] is not None:  # the instability is the first thing to fix; "nothing needed" is not true
        summary = _unstable_sentence(lv, words) + summary[0].lower() + summary[1:]
        advice = _unstable_advice(lv) + ([] if label == "good_fit" else advice)
    return Diagnosis(label, _user_evidence(lv), advice, runner_up, summary)
