"""Robust measurements of prepared curves: smoothing, Theil-Sen trends, noise, the validation minimum and
the rise after it (``measure_curves``; step 3 of ``mlpcli.diagnosis``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .curves import MIN_POINTS, Curves
from .rules import BEST_TOLERANCE, BEST_TOLERANCE_Z, facts_of

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
TRAIN_EVAL_MIN_POINTS = 5  # a recorded inference-mode training loss gives its wiggle from this many late epochs on
NOISE_LEVEL_FLOOR = 0.15  # relative validation noise is taken against max(level, this x S): a
#                           loss near 0 wiggling by 20 % of itself is invisible on the plot



@dataclass(frozen=True)
class _Trend:
    """A Theil-Sen line over a window: slope per epoch, value at its last epoch, z-score."""

    slope: float
    end: float
    z: float


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
    train_eval_sd: float | None = None  # the inference-mode training loss's wiggle (None: not recorded, too sparse)


def _late(n: int) -> slice:
    """The second half of the run (at least ``LATE_MIN_POINTS`` epochs when there are that many)."""
    return slice(n - max(math.ceil(n / 2), min(n, LATE_MIN_POINTS)), n)


def _quantum(y: np.ndarray) -> float:
    """The step of a curve that moves in steps (a balanced accuracy over a few validation samples: one sample more
    or less right), as a floor on its noise: the smallest gap between its distinct values when it takes few of them
    (at most a third of its points), else 0. Flat stretches have no epoch-to-epoch wiggle, and a one-sample step
    read as a fall "far out of the noise" (z = 2e8) and an overfit."""
    values = np.unique(y[np.isfinite(y)])
    if len(values) < 2 or len(values) > len(y) // 3:
        return 0.0
    return float(np.min(np.diff(values)))


def _noise(c: Curves, train_s: np.ndarray, val_s: np.ndarray) -> _Noise:
    """Noise is measured late in the run: losses wiggle in proportion to their level, and the
    early fall from the baseline would otherwise dominate the estimate."""
    late, floor = _late(len(c.epochs)), NOISE_SD_FLOOR * c.scale
    train_sd = max(_wiggle_sd(c.train[late]), floor, _quantum(c.train))
    val_sd = max(_wiggle_sd(c.val[late]), floor, _quantum(c.val))
    gap_sd = max(_wiggle_sd((c.val - c.train)[late]), floor)
    level_floor = NOISE_LEVEL_FLOOR * c.scale
    train_level = max(float(np.median(train_s[late])), level_floor)
    val_level = max(float(np.median(val_s[late])), level_floor)
    train_eval_sd = None
    if c.train_eval is not None:  # a snapshot of the same weights as validation, on the (larger) training rows
        ev = c.train_eval[late][np.isfinite(c.train_eval[late])]
        train_eval_sd = _wiggle_sd(ev) if len(ev) >= TRAIN_EVAL_MIN_POINTS else None
    return _Noise(train_sd, val_sd, gap_sd, train_sd / train_level, val_sd / val_level, train_eval_sd)


def measure_curves(c: Curves) -> dict:
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
    # pace at the end against the pace over the first half (Theil-Sen on the epochs' own values, robust already: the
    # smoother's windows, cut on one side at the ends, flatten the end of a straight fall, 0.84 for a line's 0.97):
    # ~1 for a curve still falling in a straight line (a rate far too low), ~0 for one that has levelled off
    first = slice(0, max(MIN_POINTS, n // 2))
    fall_ratio = min(_pace_ratio(x, c.train, first, last), _pace_ratio(x, c.val, first, last))

    i_min = int(np.argmin(val_s))
    # var of a running median of w points ~ (pi/2) sd^2/w (a smoothed value's s.e.)
    smooth_var = math.pi / 2 / width
    best_tol = max(BEST_TOLERANCE * S, BEST_TOLERANCE_Z * noise.val_sd * math.sqrt(smooth_var))
    val_c = _smooth_centred(c.val, width)
    # a minimum in the first half-window, which the running smoother (its window cut on one side there) averages
    # away: a validation loss lowest at epoch 1 that then climbs steeply (a wide net on p >> n: 1.15 at epoch 1,
    # 2.8 by epoch 9, a later dip to 2.14) was reported "lowest around epoch 36 (2.155)". Taken when the centred
    # value is below the smoothed minimum by more than the best-epoch tolerance and three epochs' noise
    # (the epochs' own values there: a V over a few epochs, 0.80, 0.61, 0.58, 0.70 and up, is gone from any median;
    # one epoch three noise SDs below the smoothed minimum by chance is rare)
    head = width // 2 + 1
    early = np.fmin(val_c[:head], c.val[:head])
    j = int(np.argmin(early))
    if early[j] < float(val_s[i_min]) - max(best_tol, 3.0 * noise.val_sd):
        i_min = j
    # the minimum's value: near the start the running median's window is cut on one side, so at epoch 1 of a curve
    # that climbs from its start it averages in the later, worse epochs (a wide net on p >> n: "lowest around epoch 1
    # (3.77)" for an epoch-1 loss of 0.83); the centred smoother keeps epoch 1 its own value
    lowest = min(float(val_s[i_min]), float(early[i_min])) if i_min < head else \
        min(float(val_s[i_min]), float(val_c[i_min])) if i_min < width else float(val_s[i_min])
    # the first epoch within the tolerance of that lowest value, on the centred curve (the epochs' own values in the
    # first half-window, as ``early``): against the one-sided smoothed minimum (1.137 for a raw 0.844 at epoch 3, its
    # window cut short) an epoch-2 loss of 1.057 read as "best epoch 2", 30 tolerances above the best
    best_curve = val_c.copy()
    best_curve[:head] = early
    i_best = int(np.flatnonzero(best_curve <= max(lowest, float(np.nanmin(best_curve))) + best_tol)[0])
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
        "train_eval_noise": None if noise.train_eval_sd is None else noise.train_eval_sd / S,
        "val_noise_rel": noise.val_rel, "noise_ratio": noise.val_rel / noise.train_rel,
        "val_share": val_share, "fall_ratio": fall_ratio,
        "val_half_slope": va_half.slope * per_run_unit, "val_half_z": va_half.z,
        "best_epoch": int(c.epochs[i_best]), "min_epoch": int(c.epochs[i_min]), "best_val": lowest, "best_tolerance": best_tol / S,
        # the lowest validation value of any epoch, unsmoothed: what early stopping keeps, and what "never beat no
        # skill" must be judged on (a smoothed minimum above the baseline beside a kept epoch below it)
        "raw_best_val": float(np.nanmin(c.val)),
        "train_rise": (tr.end - float(train_s.min())) / S, "train_floor_index": i_floor,
        "val_rise": rise / S, "val_rise_z": rise_z,
        "gap_end_z": (va.end - tr.end) / gap_se,
        "after_min": (x[-1] - x[i_min]) / run,
        "below_fraction": float(np.mean(val_s < train_s)),
        "train_eval_end": _train_eval_end(c, last),
        "member_spread": spread,
    }


def _pace_ratio(x: np.ndarray, y: np.ndarray, first: slice, last: slice) -> float:
    """Theil-Sen slope of ``y`` over ``last`` / its slope over ``first`` (0 when the first part did not fall)."""
    early = _theil_sen(x[first], y[first])[0]
    return _theil_sen(x[last], y[last])[0] / early if early < 0 else 0.0


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


def _member_spread(c: Curves, val_s: np.ndarray) -> float | None:
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
class Rise:
    """A training loss that rises at the end: it leaves its floor at ``index`` into the curves (at
    ``epoch``) and ends ``amount`` x S above its smoothed minimum."""

    index: int
    epoch: int
    amount: float


def training_rise(c: Curves, f: dict) -> Rise | None:
    """The rise of a training loss that rises at the end (the ``train_rising`` fact), or None. Gradient
    descent on a fixed training set lowers the training loss; a rise means the steps are too large."""
    if facts_of(f)["unstable"] <= 0:
        return None
    i = f["train_floor_index"]
    return Rise(i, int(c.epochs[i]), f["train_rise"])


def curves_up_to(c: Curves, k: int) -> Curves:
    """The curves' first ``k`` kept epochs (the run before it went unstable)."""
    cut = lambda a: None if a is None else a[:k]  # noqa: E731
    return replace(c, epochs=c.epochs[:k], train=c.train[:k], val=c.val[:k], train_eval=cut(c.train_eval),
                   spread=cut(c.spread))


def _train_eval_end(c: Curves, last: slice) -> float | None:
    """Median inference-mode training loss over the last window (it may be recorded sparsely)."""
    if c.train_eval is None:
        return None
    window = c.train_eval[last]
    window = window[np.isfinite(window)]
    return float(np.median(window)) if len(window) else None
