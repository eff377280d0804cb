"""Diagnose a training run from its learning curves (lecture notes, "Learning Curves").

``diagnose(train_loss, val_loss)`` reads the two per-epoch curves and returns one of the notes'
seven shapes (``LABELS``) with the numbers behind the verdict, the notes' remedies, and a
runner-up label when the evidence is close between two shapes.

How a verdict is reached
------------------------
1. **Prepare.** Epochs where either curve is NaN (or infinite) are dropped; the remaining points
   keep their epoch numbers, so a validation loss recorded every k epochs works. A score curve
   (``higher_is_better=True``, e.g. balanced accuracy) becomes a loss ``ceiling - score`` with
   ``ceiling = max(1, largest value seen)`` -- the error rate for scores bounded by 1. Every rule
   looks only at differences divided by a positive scale, so this sign flip is all it takes.
2. **Scale.** Levels, slopes, gaps and noise are divided by the *scale* ``S``: the baseline loss
   (always predicting the class prior or the mean) when known, else the level of the first epochs
   (a freshly initialised network sits near the baseline). Thresholds are therefore fractions of
   "the loss of knowing nothing", the same for a loss of 0.05 or of 5.
3. **Measure**, robustly:
   - smoothed curves: running median (spikes) then running mean, ~sqrt(n) epochs wide;
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

n_epochs, n_missing, short_curve, first_epoch, last_epoch, window_epochs, smoothing_width
    finite epochs used, epochs dropped, fewer than ``SHORT_CURVE_EPOCHS``, the last window's size
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
    for ``validation_below_train`` the likely cause
train_distance_from_baseline, val_distance_from_baseline
    (baseline - final) / baseline: the share of the no-skill loss removed (None without baseline)
score, runner_up_score
    the rule scores in [-1, 1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import DataError

__all__ = ["LABELS", "Diagnosis", "CurveError", "diagnose"]

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
RUNNER_UP_MARGIN = 0.3  # a second label scoring within 0.3 (of a [-1, 1] range) is "close"


class CurveError(DataError, ValueError):
    """Learning curves that cannot be diagnosed (mismatched lengths, too few finite epochs)."""


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
                   spread: np.ndarray | None = None) -> None:
    if len(train) != len(val):
        raise CurveError(f"train_loss and val_loss must have one value per epoch: got "
                         f"{len(train)} and {len(val)} values")
    if train_eval is not None and len(train_eval) != len(train):
        raise CurveError(f"train_eval_loss must have one value per epoch like train_loss: got "
                         f"{len(train_eval)} and {len(train)} values")
    if spread is not None and len(spread) != len(train):
        raise CurveError(f"member_spread must have one value per epoch like train_loss: got "
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
        raise CurveError(f"baseline must be a number, got {baseline!r}") from None
    loss = value if ceiling is None else ceiling - value
    if not (math.isfinite(loss) and loss > 0):
        need = "a finite loss above 0" if ceiling is None else f"a finite score below {ceiling:g}"
        raise CurveError(f"baseline must be {need}, got {value}")
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


def _prepare(train_loss, val_loss, baseline, train_eval_loss, higher_is_better, member_spread=None) -> _Curves:
    """Validate, turn scores into losses, drop epochs where either curve is not finite."""
    train, val = _as_curve(train_loss, "train_loss"), _as_curve(val_loss, "val_loss")
    train_eval = None if train_eval_loss is None else _as_curve(train_eval_loss, "train_eval_loss")
    spread = None if member_spread is None else _as_curve(member_spread, "member_spread")
    _check_lengths(train, val, train_eval, spread)
    keep = np.isfinite(train) & np.isfinite(val)  # (n_epochs,)
    if keep.sum() < MIN_POINTS:
        raise CurveError(f"need at least {MIN_POINTS} epochs where both train_loss and val_loss "
                         f"are finite, got {int(keep.sum())}")
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
                   int((~keep).sum()), ceiling, spread)


# --- measuring ---------------------------------------------------------------------------------


def _odd(k: int) -> int:
    return k if k % 2 else k + 1


def _smooth_width(n: int) -> int:
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
    return _Trend(slope, intercept + slope * float(x[-1]), slope / se)


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
    rise = va.end - float(val_s[i_min])
    # s.e. of (line end - smoothed minimum): var of a running median of w points ~ (pi/2) sd^2/w,
    # var of a line's end value over m points ~ 4 sd^2/m
    rise_se = noise.val_sd * math.sqrt(math.pi / 2 / width + 4.0 / m)

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
        "best_epoch": int(c.epochs[i_min]), "best_val": float(val_s[i_min]),
        "val_rise": rise / S, "val_rise_z": rise / rise_se,
        "after_min": (x[-1] - x[i_min]) / run,
        "below_fraction": float(np.mean(val_s < train_s)),
        "train_eval_end": _train_eval_end(c, last),
        "member_spread": _member_spread(c, val_s),
    }


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


def _label_conditions(f: dict, limit: float = 1.0) -> dict[str, list[float]]:
    """Each label's conditions as fuzzy truths in [-limit, limit] (minus = NOT); see the module doc.
    ``limit=inf`` gives the unclipped margins that break ties between equal scores."""

    def ramp(x: float, threshold: float, width: float) -> float:
        return _ramp(x, threshold, width, limit)

    def falling(slope: float, z: float) -> float:
        return _falling(slope, z, limit)

    train_falling = falling(f["train_slope"], f["train_z"])
    val_falling = falling(f["val_slope"], f["val_z"])
    train_rising = falling(-f["train_slope"], -f["train_z"])
    val_rising = falling(-f["val_slope"], -f["val_z"])
    rose = _rose(f, limit)
    clear_rise = min(rose, ramp(f["val_rise_z"], CLEAR_RISE_Z, RISE_Z_WIDTH))
    high = ramp(min(f["train_level"], f["val_level"]), CAPACITY_LEVEL, CAPACITY_WIDTH)
    gap_large = ramp(f["gap_end"], GAP_LARGE, GAP_WIDTH)
    gap_small = ramp(GAP_LARGE - abs(f["gap_end"]), 0.0, GAP_WIDTH)
    gap_growing = min(ramp(f["gap_slope"], GAP_GROW, GAP_GROW_WIDTH),
                      ramp(f["gap_z"], SLOPE_Z, SLOPE_Z_WIDTH))
    noisy = min(ramp(f["val_noise_rel"], NOISY_REL, NOISY_REL_WIDTH),
                ramp(f["noise_ratio"], NOISE_RATIO, NOISE_RATIO_WIDTH))
    if f["member_spread"] is not None:  # an ensemble's mean curves: see "Ensembles" above
        noisy = ramp(f["member_spread"], MEMBER_SPREAD, MEMBER_SPREAD_WIDTH)
    below = min(ramp(f["below_fraction"], BELOW_FRACTION, BELOW_FRACTION_WIDTH),
                ramp(-f["gap_end"], BELOW_GAP, BELOW_GAP_WIDTH))
    # validation left behind: a large, growing gap with validation gaining < half of training
    val_lags = min(gap_large, gap_growing, ramp(VAL_SHARE - f["val_share"], 0.0, VAL_SHARE_WIDTH))
    # validation keeps pace with training over the second half and is falling there: it is still
    # falling even if the last quarter alone is too short to show it through the noise
    val_follows = min(ramp(f["val_share"] - VAL_SHARE, 0.0, VAL_SHARE_WIDTH),
                      falling(f["val_half_slope"], f["val_half_z"]))
    return {
        # the training curve is what "cannot fit" is about: whatever validation does (it may
        # wobble or drift up), a model stuck near the baseline is short of capacity
        "underfit_capacity": [high, -train_falling],
        # the second-half shortcut for validation is not trusted when validation is erratic
        "underfit_stopped_early": [train_falling, max(val_falling, min(val_follows, -noisy)),
                                   -val_lags],
        "overfit": [rose, -train_rising, -high, max(-noisy, clear_rise)],
        "good_fit": [-train_falling, -train_rising, -val_falling, -val_rising, -rose, gap_small,
                     -gap_growing, -high, -noisy, -below],
        "unrepresentative_train": [gap_large, gap_growing, max(-val_falling, val_lags), -rose,
                                   -high],
        "unrepresentative_validation_noisy": [noisy, -clear_rise],
        # the notes: "stable train loss"; both curves near the baseline is a capacity problem
        # whatever their order, and both still falling is a run stopped early
        "validation_below_train": [below, -high, -train_falling],
    }


def _pick(f: dict) -> tuple[str, str | None, dict[str, float]]:
    """Winner = highest score. Ties are common at the clip limits (two rules fully true, or no
    rule holding and every score at -1); they go to the label that comes closest to holding:
    fewest conditions clearly false (at -1), then the larger unclipped minimum margin, then the
    larger mean margin over the rule's conditions. (Otherwise a rule with many conditions wins a
    tie at -1 on its mean: good_fit with an end gap 7 ramp widths past "small".) The runner-up
    is the second label when within ``RUNNER_UP_MARGIN``."""
    conditions = _label_conditions(f)
    scores = {lab: min(c) for lab, c in conditions.items()}
    n_false = {lab: sum(v <= -1.0 for v in c) for lab, c in conditions.items()}
    margins = {lab: min(c) for lab, c in _label_conditions(f, limit=math.inf).items()}
    ranked = sorted(LABELS, key=lambda lab: (-scores[lab], n_false[lab], -margins[lab],
                                             -float(np.mean(conditions[lab]))))
    first, second = ranked[0], ranked[1]
    return first, (second if scores[first] - scores[second] <= RUNNER_UP_MARGIN else None), scores


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


def _cause_below(f: dict, c: _Curves, stochastic: bool) -> str:
    """Why validation sits below training: 'training_only_noise', 'likely_training_only_noise',
    'validation_easier' or 'unknown' (decided from the inference-mode training loss if given)."""
    if f["train_eval_end"] is not None:
        gap = f["train_end"] - f["val_end"]  # > 0 here
        if f["train_eval_end"] - f["val_end"] <= TRAIN_EVAL_CLOSE * gap:
            return "training_only_noise"
        return "validation_easier"
    return "likely_training_only_noise" if stochastic else "unknown"


def _evidence(f: dict, c: _Curves, label: str, scores: dict, runner_up, stochastic: bool) -> dict:
    S = c.scale
    ev = {
        "n_epochs": f["n"],
        "n_missing": c.n_missing,
        "short_curve": f["n"] < SHORT_CURVE_EPOCHS,
        "first_epoch": int(c.epochs[0]), "last_epoch": int(c.epochs[-1]),
        "window_epochs": f["window"], "smoothing_width": f["width"],
        "scale": S,
        "scale_source": c.scale_source,
        "higher_is_better": c.ceiling is not None,
        "train_final": _user_units(f["train_end"], c),
        "val_final": _user_units(f["val_end"], c),
        "best_val": _user_units(f["best_val"], c),
        "best_epoch": f["best_epoch"],
        "train_level": f["train_level"], "val_level": f["val_level"],
        "train_slope": f["train_slope"], "val_slope": f["val_slope"],
        "train_slope_z": f["train_z"], "val_slope_z": f["val_z"],
        "gap_end": f["gap_end"], "gap_slope": f["gap_slope"], "gap_slope_z": f["gap_z"],
        "gap_trend": _gap_trend(f), "val_share": f["val_share"],
        "val_noise": f["val_noise"], "val_noise_rel": f["val_noise_rel"],
        "train_noise": f["train_noise"], "noise_ratio": f["noise_ratio"],
        "member_spread": f["member_spread"],
        "val_rise": f["val_rise"], "val_rise_z": f["val_rise_z"],
        "below_fraction": f["below_fraction"],
        "divergence_epoch": f["best_epoch"] if label == "overfit" else None,
        "train_distance_from_baseline": None, "val_distance_from_baseline": None,
        "train_eval_final": None if f["train_eval_end"] is None
        else _user_units(f["train_eval_end"], c),
        "cause": _cause_below(f, c, stochastic) if label == "validation_below_train" else None,
        "score": scores[label],
        "runner_up_score": None if runner_up is None else scores[runner_up],
    }
    if c.baseline is not None:  # fraction of the no-skill loss the model removed
        ev["train_distance_from_baseline"] = (c.baseline - f["train_end"]) / S
        ev["val_distance_from_baseline"] = (c.baseline - f["val_end"]) / S
    return {k: _plain(v) for k, v in ev.items()}


def _gap_trend(f: dict) -> str:
    if f["gap_slope"] >= GAP_GROW and f["gap_z"] >= SLOPE_Z:
        return "growing"
    if f["gap_slope"] <= -GAP_GROW and f["gap_z"] <= -SLOPE_Z:
        return "shrinking"
    return "stable"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _advice(label: str, ev: dict, stochastic: bool) -> list[str]:
    """The notes' remedies for ``label``, filled in with the evidence."""
    if label == "underfit_capacity":
        lr = ("The training loss is erratic (noise " + _pct(ev["train_noise"]) + " of the scale): "
              "the learning rate is probably too high; lower it."
              if ev["train_noise"] is not None and ev["train_noise"] > 0.03
              else "Check the learning rate: a rate that is too high also keeps the loss near the "
                   "baseline.")
        return [
            "Increase model capacity: more units per layer or more hidden layers.",
            "Improve the features (more informative inputs, better normalisation or selection).",
            lr,
            "Check that regularisation (L2 lambda, dropout rate) is not so strong that it "
            "prevents fitting.",
        ]
    if label == "underfit_stopped_early":
        return [
            f"Train for more epochs: both losses were still falling at the end (training "
            f"{_pct(-ev['train_slope'])}, validation {_pct(-ev['val_slope'])} of the scale per "
            f"10 % of the run).",
            "Revisit early stopping: increase the patience (or lower min_delta) so the run is "
            "not cut short.",
        ]
    if label == "overfit":
        return [
            f"Stop early at the divergence point: the smoothed validation loss was lowest around epoch "
            f"{ev['divergence_epoch']}; restore the checkpoint saved there.",
            "Add regularisation: L2 weight decay, or raise the dropout rate already in use."
            if stochastic else
            "Add regularisation: L2 weight decay and/or dropout on the dense layers.",
            "Use data augmentation (for expression matrices: mild noise after normalisation, e.g. "
            "--augment-noise auto, noise of SD sqrt(features / training rows) when features outnumber rows).",
            "Reduce model capacity (fewer units or layers).",
        ]
    if label == "good_fit":
        return [
            f"Nothing needed: both curves settle at a similar level (gap {_pct(ev['gap_end'])} "
            f"of the scale, {ev['gap_trend']}).",
            "A small, stable gap is expected; a gap of exactly zero is unlikely in practice.",
        ]
    if label == "unrepresentative_train":
        return [
            f"Collect more training data: validation settles {_pct(ev['gap_end'])} of the scale "
            f"above training and the gap {_gap_words(ev)}.",
            "Apply data augmentation to widen what the training set covers (for expression matrices with more "
            "features than rows: --augment-noise auto, input noise of SD sqrt(features / training rows)).",
            "Check for a train/validation distribution mismatch (batch, site, cohort or "
            "sequencing-run composition); split by patient, experiment or batch.",
        ]
    if label == "unrepresentative_validation_noisy" and ev["member_spread"] is not None:
        return [
            f"The validation folds disagree: the members' validation losses differ by "
            f"{_pct(ev['member_spread'])} of their level, so a single fold's curve says little. Use "
            f"fewer, larger folds, or collect more samples.",
            "Stratify the folds by class and batch (keeping patients whole) so every fold is "
            "represented alike.",
            "Judge the run by the members' mean curve, not by any one member's.",
        ]
    if label == "unrepresentative_validation_noisy":
        return [
            f"Use a larger validation set: its loss wiggles by {_pct(ev['val_noise_rel'])} of its "
            f"level, {ev['noise_ratio']:.1f}x the training loss's wiggle.",
            "Stratify (and shuffle) the validation split so every class and batch is represented.",
            "Use k-fold cross-validation to average out the noise of a single small split.",
        ]
    return _advice_below(ev)


def _advice_below(ev: dict) -> list[str]:
    """Validation below training: the advice depends on what the inference-mode training loss
    (or the use of dropout) says about the cause."""
    cause = ev["cause"]
    if cause == "training_only_noise":
        return [f"The inference-mode training loss ({ev['train_eval_final']:.4g}) is close to the "
                f"validation loss ({ev['val_final']:.4g}): the gap comes from dropout or other "
                f"training-only noise, not from the data; no action needed.",
                "Compare train and validation in inference mode when judging the fit."]
    easier = ("Check that the validation set is not easier than the training set (leakage, "
              "duplicates, class or batch composition).")
    if cause == "validation_easier":
        return [f"Even the inference-mode training loss ({ev['train_eval_final']:.4g}) is above "
                f"the validation loss ({ev['val_final']:.4g}), so dropout does not explain it.",
                easier, "Not always a problem: understand the cause first."]
    if cause == "likely_training_only_noise":
        first = ("The model used dropout or noise during training: the training loss is measured "
                 "with it active and the validation loss without, which makes validation look "
                 "better. Compare against the inference-mode training loss to confirm.")
    else:
        first = ("Check for dropout or other training-only noise: compare the validation loss "
                 "with the training loss re-measured in inference mode.")
    return [first, "If that does not explain it: " + easier[0].lower() + easier[1:],
            "Not always a problem: understand the cause first."]


def _summary(label: str, ev: dict) -> str:
    """One sentence with the key numbers."""
    g, tl, vl = _pct(ev["gap_end"]), _pct(ev["train_level"]), _pct(ev["val_level"])
    if label == "underfit_capacity":
        s = (f"Underfit (capacity): both curves are flat at a high loss (training {tl}, "
             f"validation {vl} of the scale, slopes {_pct(ev['train_slope'])} and "
             f"{_pct(ev['val_slope'])} per 10 % of the run)")
    elif label == "underfit_stopped_early":
        s = (f"Underfit (stopped early): both losses were still falling at the end (training "
             f"by {_pct(-ev['train_slope'])}, validation by {_pct(-ev['val_slope'])} of the scale "
             f"per 10 % of the run)")
    elif label == "overfit":
        s = (f"Overfit: the smoothed validation loss was lowest around epoch {ev['divergence_epoch']} and then rose "
             f"by {_pct(ev['val_rise'])} of the scale while the training loss kept falling")
    elif label == "good_fit":
        s = (f"Good fit: both curves settle at a similar level (training {tl}, validation {vl} "
             f"of the scale, gap {g}, {ev['gap_trend']})")
    elif label == "unrepresentative_train":
        s = (f"Unrepresentative training set: validation settles {g} of the scale above "
             f"training and the gap {_gap_words(ev)} ({_pct(ev['gap_slope'])} per 10 % of the run)")
    elif label == "unrepresentative_validation_noisy" and ev["member_spread"] is not None:
        s = (f"Noisy validation: the members' validation losses differ by {_pct(ev['member_spread'])} "
             f"of their level (s.d. across members) with no clear trend in their mean")
    elif label == "unrepresentative_validation_noisy":
        s = (f"Noisy validation: the validation loss wiggles by {_pct(ev['val_noise_rel'])} of its "
             f"level ({ev['noise_ratio']:.1f}x the training wiggle) with no clear trend")
    else:
        s = (f"Validation below training in {_pct(ev['below_fraction'])} of epochs, by "
             f"{_pct(-ev['gap_end'])} of the scale at the end")
        s += {
            "training_only_noise": ", explained by dropout or other training-only noise: the "
                                   "inference-mode training loss is close to validation",
            "likely_training_only_noise": ", most likely because dropout or other training-only "
                                          "noise inflates the training loss",
            "validation_easier": ", even against the inference-mode training loss: the "
                                 "validation set looks easier than the training set",
        }.get(ev["cause"], "")
    if ev["short_curve"]:
        s += f" (short curve of {ev['n_epochs']} epochs: best-effort label)"
    elif ev["score"] is not None and ev["score"] < 0:  # won a tie or by little: say so
        s += "; borderline: the closest shape rather than a clear match"
    return s + "."


def _gap_words(ev: dict) -> str:
    """'keeps growing' when the evidence shows it; a label won on a tie may have a stable gap."""
    return {"growing": "keeps growing", "shrinking": "is shrinking"}.get(ev["gap_trend"], "is stable")


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
) -> Diagnosis:
    """Label a run's learning curves with one of ``LABELS``.

    train_loss: (n_epochs,) training loss as measured during training (dropout active, mean over
        minibatches); val_loss: (n_epochs,) validation loss (inference mode). NaN = missing epoch.
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

    Raises CurveError (a ValueError and a DataError) for mismatched lengths, fewer than 3 epochs
    with both values finite, a baseline that is not a finite loss above 0, or a negative spread.
    """
    c = _prepare(train_loss, val_loss, baseline, train_eval_loss, higher_is_better, member_spread)
    f = _measure(c)
    label, runner_up, scores = _pick(f)
    ev = _evidence(f, c, label, scores, runner_up, stochastic_regularisation)
    advice = _advice(label, ev, stochastic_regularisation)
    return Diagnosis(label, ev, advice, runner_up, _summary(label, ev))
