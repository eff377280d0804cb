"""Reading a sample-size learning curve (lecture notes, "Learning Curves"): whether more data still helps (the
validation error's slope per doubling of the training set, against the scatter of the sizes' scores) and whether
the model suffers from bias or variance (the training and validation errors at the largest size, in units of the
no-skill error), each with its remedy, the two answers worded so that they never contradict each other."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import metrics
from ..decision import MIN_LABEL_EVENTS

if TYPE_CHECKING:
    from ..model_selection.learning_curve import SizePoint


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
LEARNED = 0.25  # "the training rows were learned": training removed at least a quarter of the no-skill error (less,


#   beside a validation at chance, is bias: a model that learns nothing anywhere, not a signal that fails to carry),
#   in the error of the task's own score (``_learned``): balanced accuracy's, or the RMSE (training R² >= 0.44)
NO_SIGNAL_SE = 0.15  # ... said only where two standard errors of a chance score are at most 15 % of the no-skill


#   error (about 180 validation samples for 2 classes): on fewer, a caveat says the answer is tentative instead
NO_SIGNAL = 0.10  # "no learnable signal": at every size validation removes less than 10 % of the no-skill error


def fraction_words(fraction: float) -> str:
    """A training-set fraction as a percentage to 3 significant figures: 0.25 "25%", 0.125 "12.5%", 0.001 "0.1%"
    (whole percents showed 0.001 as "0%", a size of no samples)."""
    return f"{fraction * 100:.3g}%"


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


def _learned(train_error: float, higher: bool) -> bool:
    """Whether training removed LEARNED of the no-skill error, read in the error of the score the user sees.

    ``train_error`` is ``_levels``' training level: for a score, the share of the no-skill error left, which is
    already that; for regression 1 - R², a share of the squared error, in which a quarter of the no-skill *variance*
    removed is only 13 % of the RMSE (training R² 0.26 read "the training rows were learned (memorised)"). The RMSE's
    share, sqrt(1 - R²), is the regression reading: at most 0.75 of the no-skill RMSE, training R² >= 0.44."""
    left = train_error if higher else math.sqrt(max(train_error, 0.0))
    return 1 - left >= LEARNED


def more_data(points: list[SizePoint], higher: bool, chance: float, scale: float, metric: str,
               val_units: int | None = None, val_unit_name: str = "samples") -> dict:
    """Slope of the validation error over the largest sizes, per doubling of the training set. A fall faster than
    HELPS_PER_DOUBLING "helps" when it is also beyond two standard errors, the noise taken from how far every
    size's score lies off a line (4 sizes) or a parabola (5 or more) through them all (the sizes share their validation units, so their scores differ
    by the fits' chance, not by the validation sample's; from 4 sizes on); within them it is "unclear": random
    labels on 1,000 samples read "more data still helps" at +0.034 per doubling, scores 0.554, 0.571, 0.537, 0.521
    and 0.576 over the sizes. With 2 or 3 sizes the noise is each score's own SD on the ``val_units`` (none given:
    the slope is taken as noiseless)."""
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
    noise = "the scatter of the sizes' scores about their trend"
    if len(points) >= 4:  # the scatter about a line (4 sizes), or about a parabola, as learning curves bend (5 on)
        degree = 2 if len(points) >= 5 else 1
        x_all = np.log2([p.n_train for p in points])
        e_all = np.array([_error(p.val_score, higher, chance, scale) for p in points])
        residual = e_all - np.polyval(np.polyfit(x_all, e_all, degree), x_all)
        sd = math.sqrt(float(np.sum(residual ** 2)) / (len(points) - degree - 1))
        se_slope = sd / math.sqrt(float(np.sum((x - x.mean()) ** 2)))  # per doubling, in no-skill error units
    elif val_units:
        # 2 or 3 sizes leave no scatter to measure (their slope was taken as noiseless: one more of 80 validation
        # samples right read "more data still helps"): each score's own SD on the validation units — a share's
        # binomial SD, an RMSE's RMSE / sqrt(2 n) (normal errors) —, the sizes taken as independent (they share
        # the units, so this overstates the noise: a "helps" it allows is one no pairing could undo)
        scores = np.array([p.val_score for p in tail], dtype=np.float64)
        if higher:
            shares = np.clip(scores, 0.0, 1.0)
            sd = np.sqrt(np.maximum(shares * (1 - shares), 1.0 / val_units) / val_units) / scale
        else:
            sd = np.abs(scores) / math.sqrt(2.0 * val_units) / scale
        w = (x - x.mean()) / float(np.sum((x - x.mean()) ** 2))
        se_slope = float(np.sqrt(np.sum((w * sd) ** 2)))
        noise = f"the noise of a score on {val_units:,} validation {val_unit_name}"
    else:  # no validation size given (a caller's own points): the slope taken as it is
        se_slope = 0.0
    if slope <= -HELPS_PER_DOUBLING and slope <= -2.0 * se_slope:
        verdict = "helps"
        text = (f"More data still helps: validation {name} improves by {abs(change):.3g} per doubling of the "
                f"training set over the largest sizes ({span}); collecting more samples should pay off.")
    elif slope <= -HELPS_PER_DOUBLING:
        verdict = "unclear"
        text = (f"Unclear whether more data helps: validation {name} improves by {abs(change):.3g} per doubling over "
                f"the largest sizes ({span}), within {noise} (two standard errors of that slope: "
                f"{2.0 * se_slope * scale:.3g}); more sizes (--fractions) or more validation {val_unit_name} than the "
                f"{val_units:,} here would tell.")
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


def rise_within_chance(more: dict, metric: str) -> dict:
    """The more-data answer (``more_data``'s dict) where the bias/variance answer found no learnable signal: a "helps"
    there becomes "unclear", since the rise never left the no-skill band. On 2,019 single cells with random labels,
    scores 0.523, 0.532 and 0.534 lay so nearly on a line that the scatter's standard error was tiny, and "More data
    still helps ... collecting more samples should pay off" stood beside "No learnable signal ... neither a larger
    network nor more data ... will help"."""
    if more.get("verdict") != "helps":
        return more
    sizes = more.get("sizes") or []
    span = f" ({sizes[0]}-{sizes[-1]} training samples)" if sizes else ""
    return {**more, "verdict": "unclear",
            "text": (f"Unclear whether more data helps: validation {metrics.display_name(metric)} rises by "
                     f"{abs(more['score_change_per_doubling']):.3g} per doubling over the largest sizes{span}, but "
                     "stays at the no-skill level at every size (below): a rise there is no sign that more samples "
                     "of this kind will carry a signal.")}


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


def bias_variance(points: list[SizePoint], higher: bool, chance: float, scale: float, metric: str,
                   more_data: str | None = None, val_units: int | None = None, val_unit_name: str = "samples",
                   held_labels: list[tuple[str, int]] | None = None, linear: bool = False) -> dict:
    """Bias vs variance at the largest size, from the training error's level and the gap (``_levels``: for
    regression in the squared error, 1 - R²); what it says of more data follows the more-data answer
    (``more_data``: its verdict). Curves are "close" only when the gap is small either way: validation far
    better than training is not close. ``held_labels``: multi-label labels (name, validation positives or negatives,
    the fewer) that every size calls at P >= 0.5 for want of validation events (``_held_labels``). ``linear``: every
    size trained the linear model (``--hidden none``), which has no dropout to add and nothing smaller to become
    (``linear_words``)."""
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
    learned = _learned(tr, higher)  # (a poor training score as well is bias, below)
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
        below = (f"a validation {name} below {edge:.2f} is within two standard errors of chance ({chance:.2g}), and "
                 "every size's is" if edge < 1 else  # (on a handful of patients the edge lies beyond a perfect score)
                 f"no validation {name} could lie two standard errors above chance ({chance:.2g})")
        caveat = (f"Caveat: on {val_units:,} validation {val_unit_name}, {below}: a weak signal and none look "
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
    if linear:
        text = linear_words(text)
    return {"verdict": verdict, "train_error": tr, "val_error": va, "gap": gap, "error_units": units,
            "n_train": p.n_train, "text": text, "caveat": caveat}


def linear_words(text: str) -> str:
    """A bias/variance answer's remedies for the linear model: ``--hidden none --dropout 0.3`` is a usage error (no
    hidden layer to drop units of) and nothing is smaller than it, so the variance remedy is a stronger penalty or
    fewer features; the bias remedy (a more flexible model: --hidden) stands."""
    return (text.replace(_REGULARISE, "a stronger penalty (--l2, --weight-decay) or fewer features (--top-var)")
            .replace("with regularisation (--l2, --dropout)", "with regularisation (--l2, --weight-decay)"))
