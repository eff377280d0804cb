"""The verdict in words: the evidence in the user's units, the sentences, and advice naming `train`
options (step 5 of ``mlpcli.diagnosis``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .curves import SHORT_CURVE_EPOCHS, Curves
from .measure import NOISE_SD_FLOOR, SLOPE_UNIT, Rise
from .rules import (EARLY_BEST_EPOCH, ERRATIC_TRAINING, FALL_SLOPE, GAP_GROW, GAP_LARGE, GAP_NOISE_Z, MEMBER_GAP_Z,
                    NO_SIGNAL_GAIN, NO_SIGNAL_GAP, NOISY_REL, NOT_LEARNING, RISE_LEVEL, RISE_Z, SLOPE_Z, SLOPE_Z_WIDTH,
                    STEADY_RATIO, STEADY_SLOPE, STILL_IMPROVING_SLOPE, TRAIN_EVAL_CLOSE, VAL_SHARE, VAL_SHARE_WIDTH,
                    WEIGHTS_JUMP, WEIGHTS_JUMP_MIN)

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


def _user_units(value: float, c: Curves) -> float:
    return value if c.ceiling is None else c.ceiling - value


def _no_signal(f: dict, c: Curves) -> bool:
    """Training ended ``NO_SIGNAL_GAIN`` below the baseline and ``NO_SIGNAL_GAP`` below validation (out of the noise)
    while validation never came ``NO_SIGNAL_GAIN`` below the baseline, even at its best epoch unsmoothed (the value
    the evidence's ``best_distance_from_baseline`` reports): the network fitted its training rows and none of it
    carried over. Judged on levels: a run stopped early by patience has too few late epochs for its slopes to pass
    the trend tests (random labels: training still falling at -1.6 s.e. where -3 counts)."""
    if c.baseline is None:  # without the no-skill loss "never beat no skill" cannot be told
        return False
    best_gain = (c.baseline - min(f["best_val"], f["raw_best_val"])) / c.scale
    train_gain = (c.baseline - f["train_end"]) / c.scale
    gap_z = GAP_NOISE_Z if f["member_spread"] is None else MEMBER_GAP_Z
    return (best_gain < NO_SIGNAL_GAIN <= train_gain and f["gap_end"] >= NO_SIGNAL_GAP
            and f["gap_end_z"] >= gap_z)


def _cause_capacity(f: dict, c: Curves, capacity_tried: str | None) -> str | None:
    """Why the curves stay near no skill, when the run says more than the shape: 'no_signal' (training learned,
    validation never beat the baseline: ``_no_signal``), 'still_improving', 'not_learning' (both curves end
    ``NOT_LEARNING`` above the baseline: worse than a constant prediction), 'training_only_gains', 'larger_model_tried'
    (the run already tried a larger network, ``capacity_tried``), else None (the notes' capacity case)."""
    # first: a validation curve still falling towards the no-skill loss from above it (random labels on 7 tissues:
    # 12 % of S above it at the last epoch, training 14 % below) is the output bias finding the class prior, not a
    # run stopped while learning. A larger network the run tried and found no better says the same in its own
    # numbers, which that advice quotes
    if _no_signal(f, c):
        return "larger_model_tried" if capacity_tried else "no_signal"
    # validation still clearly falling, lowest at the last epoch: a short run (--epochs 8 on a separable table)
    # stopped while learning, too early for the slope to reach "still falling" per 10 % of the run; more
    # capacity was the wrong advice there (the same 2-unit network reached balanced accuracy 1.0 in 200 epochs).
    # Before "not learning": a run at --lr 1e-5 still above the baseline but falling steadily (z = -860) read "both
    # curves are flat"
    if (f["val_z"] <= -(SLOPE_Z + SLOPE_Z_WIDTH) and -f["val_slope"] >= STILL_IMPROVING_SLOPE
            and f["min_epoch"] == int(c.epochs[-1])):
        return "still_improving"
    # both curves: dropout or input noise can lift the training loss of a network that did learn above the baseline
    if c.baseline is not None and (min(f["train_end"], f["val_end"]) - c.baseline) / c.scale >= NOT_LEARNING:
        return "not_learning"
    # training still gains while validation has settled and the gap keeps widening: the network fits its training
    # rows better than what carries over, so it has capacity to spare (30 % flipped labels: validation flat at
    # 94 % of the no-skill loss, training still falling); more capacity would memorise more
    if (f["train_z"] <= -(SLOPE_Z + SLOPE_Z_WIDTH) and f["val_share"] <= VAL_SHARE - VAL_SHARE_WIDTH
            and f["gap_end"] >= GAP_LARGE / 2 and f["gap_z"] >= SLOPE_Z + SLOPE_Z_WIDTH):
        return "training_only_gains"
    return "larger_model_tried" if capacity_tried else None


def _cause_noisy(f: dict) -> str | None:
    """Why validation is erratic, when the run says more than its size: 'weights_jump' when the inference-mode
    training loss, the same weights on the training rows, wiggles with it (``WEIGHTS_JUMP``): the steps are too large,
    and a larger validation set would wiggle as much. None otherwise, and for an ensemble (its mean curves damp the
    wiggle; the members' spread is the evidence there)."""
    te = f.get("train_eval_noise")
    if f["member_spread"] is None and te is not None and te >= max(WEIGHTS_JUMP * f["val_noise"], WEIGHTS_JUMP_MIN):
        return "weights_jump"
    return None


def _cause_below(f: dict, c: Curves, stochastic: bool) -> str:
    """Why validation sits below training: 'training_only_noise', 'likely_training_only_noise',
    'validation_easier' or 'unknown' (decided from the inference-mode training loss if given)."""
    if f["train_eval_end"] is not None:
        gap = f["train_end"] - f["val_end"]  # > 0 here
        if f["train_eval_end"] - f["val_end"] <= TRAIN_EVAL_CLOSE * gap:
            return "training_only_noise"
        return "validation_easier"
    return "likely_training_only_noise" if stochastic else "unknown"


def evidence_of(f: dict, c: Curves, label: str, scores: dict, runner_up, stochastic: bool,
              rise: Rise | None, capacity_tried: str | None = None) -> dict:
    """The evidence in loss orientation (slopes and gaps: > 0 worse); ``user_evidence`` turns it
    to the curves' own direction."""
    S = c.scale
    # A slope in standard errors needs the curve's noise: where none could be measured (a run of 3 epochs has no
    # late wiggle to read; a noiseless curve has none) the noise is a 1e-9 floor and the z would read -2e+08
    train_known, val_known = (f[k] > 2 * NOISE_SD_FLOOR for k in ("train_noise", "val_noise"))
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
        "train_slope_z": f["train_z"] if train_known else None, "val_slope_z": f["val_z"] if val_known else None,
        "gap_end": f["gap_end"], "gap_end_z": f["gap_end_z"], "gap_slope": f["gap_slope"],
        "gap_slope_z": f["gap_z"] if train_known and val_known else None,
        "gap_trend": _gap_trend(f), "val_share": f["val_share"],
        "fall_ratio": f["fall_ratio"], "steady_fall": _steady_fall(f),
        "val_noise": f["val_noise"], "val_noise_rel": f["val_noise_rel"],
        "train_noise": f["train_noise"], "noise_ratio": f["noise_ratio"],
        "train_eval_noise": f.get("train_eval_noise"),
        "member_spread": f["member_spread"],
        "val_rise": f["val_rise"], "val_rise_z": f["val_rise_z"],
        "below_fraction": f["below_fraction"],
        # where the rise starts: the smoothed optimum itself (best_epoch may be earlier, within the noise)
        "divergence_epoch": f["min_epoch"] if label == "overfit" else None,
        "train_distance_from_baseline": None, "val_distance_from_baseline": None,
        "train_eval_final": None if f["train_eval_end"] is None
        else _user_units(f["train_eval_end"], c),
        "cause": (_cause_below(f, c, stochastic) if label == "validation_below_train" else
                  _cause_capacity(f, c, capacity_tried) if label == "underfit_capacity" else
                  "no_signal" if label == "unrepresentative_train" and _no_signal(f, c) else
                  _cause_noisy(f) if label == "unrepresentative_validation_noisy" else None),
        "score": scores[label],
        "runner_up_score": None if runner_up is None else scores[runner_up],
    }
    ev["best_distance_from_baseline"] = None
    if c.baseline is not None:  # fraction of the no-skill loss the model removed
        ev["train_distance_from_baseline"] = (c.baseline - f["train_end"]) / S
        ev["val_distance_from_baseline"] = (c.baseline - f["val_end"]) / S
        ev["best_distance_from_baseline"] = (c.baseline - min(f["best_val"], f["raw_best_val"])) / S
    return {k: _plain(v) for k, v in ev.items()}


# Signed changes the evidence reports in the curves' own direction: for a higher-is-better metric a
# positive slope rises (improves) and a negative gap puts validation below training.
_SIGNED = ("train_slope", "val_slope", "train_slope_z", "val_slope_z", "gap_end", "gap_end_z", "gap_slope",
           "gap_slope_z")


def user_evidence(lv: dict) -> dict:
    """Loss-orientation evidence -> the curves' own direction (a sign flip of ``_SIGNED`` for scores)."""
    if not lv["higher_is_better"]:
        return dict(lv)
    return {k: (0.0 - v if k in _SIGNED and v is not None else v) for k, v in lv.items()}  # 0.0 - 0.0 is not -0.0


def _steady_fall(f: dict) -> bool:
    """Both curves still fall at the end, out of the noise, by ``STEADY_SLOPE`` and at ``STEADY_RATIO`` of their pace
    over the first half: they have not started to level off (a learning rate far too low). A curve without measurable
    noise counts as out of it (wdbc's 0.527 -> 0.512 written to 4 digits: steps of 0.0005, no wiggle left)."""
    return bool(f["fall_ratio"] >= STEADY_RATIO
                and all(f[f"{k}_z"] <= -(SLOPE_Z + SLOPE_Z_WIDTH) and -f[f"{k}_slope"] >= STEADY_SLOPE
                        for k in ("train", "val")))


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
class Words:
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


def fact_words(fact: str, holds: bool, ev: dict, w: Words) -> str:
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
        "far_rise": (f"validation {w.worsened} far ({_pct(ev['val_rise'])} of the scale, {_num(ev['val_rise_z'])} s.e.) "
                     f"after its {w.best} value, more than a model short of capacity drifts",
                     f"validation did not {w.worsen} far and clearly after its {w.best} value"),
        "fitted": ("the network fitted its training rows (training well below the no-skill level, or validation "
                   "pushed far from its best value)",
                   f"the network fitted little: both curves stay close to {start} (training "
                   f"{_num(ev['train_final'])}, validation {_num(ev['val_final'])})"),
    }
    return words[fact][0 if holds else 1]


def _no_rise_words(ev: dict, w: Words) -> str:
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


def _explain(label: str, conditions: list[tuple[str, float]], ev: dict, w: Words) -> tuple[list[str], list[str]]:
    """The label's conditions in words: those that hold and those that do not (truth <= 0)."""
    holds, fails = [], []
    for cond, truth in conditions:
        fact, negated = cond.lstrip("-"), cond.startswith("-")
        fact_holds = (truth > 0) != negated  # a NOT condition holds when its fact does not
        (holds if truth > 0 else fails).append(fact_words(fact, fact_holds, ev, w))
    return holds, fails


def _kept_words(kept: Sequence[int]) -> str:
    """Whose weights were restored, from which epochs: "training kept epoch 12's weights (...)", or for an
    ensemble "each member kept its own best epoch's weights (epochs 12, 15 and 9)"."""
    if len(kept) == 1:
        return f"training kept epoch {kept[0]}'s weights (its lowest validation loss)"
    return f"each member kept its own best epoch's weights (epochs {_join([str(k) for k in kept])})"


def _never_beat_no_skill(ev: dict) -> bool:
    """Whether validation, even at its best, stayed worse than the no-skill level (by more than SHARE_SHOWN)."""
    d = ev.get("best_distance_from_baseline")
    return d is not None and d < -SHARE_SHOWN


def _overfit_advice(ev: dict, stochastic: bool, w: Words, kept: Sequence[int] | None) -> list[str]:
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
    if _never_beat_no_skill(ev):  # nothing learned carries over: the model is far too flexible for these rows
        kept_note = ("" if not kept else f" ({_kept_words(kept)}: they too do worse)" if len(kept) == 1 else
                     f" ({_kept_words(kept)}: it is their mean curve that never beat it; a member's own kept epoch "
                     "may)")
        return [f"Validation never beat the no-skill {w.name}, even at its {w.best} epoch{kept_note}: a constant "
                "prediction (the training prior or mean) does better. Make the model much less flexible before "
                "anything else: the linear model (--hidden none) or a few units (--hidden 16), with input noise "
                "(--augment-noise auto) and weight decay (--l2); or let the defaults choose (--hidden auto).",
                # random labels read so too (the network memorises its rows, validation rises from no skill): if a
                # model that small never beats it either, the labels are the first suspect, not the capacity
                f"If a model that small never beats it either: {CHECK_TARGET[0].lower()}{CHECK_TARGET[1:]}",
                augment, regularise, smaller]
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


# Options an L-BFGS run refuses (``--optimizer lbfgs``: full batch, no learning rate, keeps its last weights).
_NOT_FULL_BATCH = ("--lr", "--dropout", "--augment-noise", "--patience", "--min-delta", "--batch-size", "--clip-norm",
                   "--lr-schedule", "--l1", "--batchnorm", "--weight-decay")


# What a linear model's advice says instead of the hidden-layer remedies (``linear_advice``), in order: dropout has
# no hidden layer to act on (``--hidden none --dropout 0.3`` is a usage error), ``--augment-noise auto`` gives a
# network without hidden layers no noise at all (``auto_defaults.auto_noise``: for it noise is only a ridge penalty,
# which --l2 is), and nothing is smaller than the linear model. The sample data's default run (the softmax
# regression chosen) was told "Stronger regularisation (--l2, --dropout, --augment-noise auto) or a smaller model
# (--hidden)" and "Apply data augmentation ... --augment-noise auto": neither changes that model.
_LINEAR_WORDS = (
    ("the linear model (--hidden none) or a few units (--hidden 16), with input noise (--augment-noise auto) and "
     "weight decay (--l2)", "it is the linear model already, so a much stronger penalty (--l2, --weight-decay) and "
     "fewer features (--top-var)"),
    # --hidden auto could only add a hidden layer to a linear model (or is what chose it): not less flexible
    ("; or let the defaults choose (--hidden auto).", "."),
    ("Stronger regularisation (--l2, --dropout, --augment-noise auto) or a smaller model (--hidden)",
     "A stronger penalty (--l2, --weight-decay) or fewer features (--top-var)"),
    (", --augment-noise auto)", ")"),
    (", --dropout", ""),
)


def linear_advice(advice: list[str]) -> list[str]:
    """``advice`` for a linear model (no hidden layer): no line that would make the network smaller (it has no
    units to remove), none asking for dropout or for ``--augment-noise auto`` (which adds no noise to it), and
    where a line asks for a less flexible model, the linear model's own ways (``_LINEAR_WORDS``)."""
    out = []
    for a in advice:
        if a.startswith(("Reduce model capacity", "Use data augmentation", "Apply data augmentation")):
            continue
        if a.startswith("Add regularisation"):  # dropout has no hidden layer to act on
            a = "Add regularisation: a stronger L2 penalty (--l2, --weight-decay)."
        for old, new in _LINEAR_WORDS:
            a = a.replace(old, new)
        out.append(a)
    return out


def noise_advice(advice: list[str], sd: float) -> list[str]:
    """``advice`` for a run that trained with input noise of SD ``sd`` (``--augment-noise auto`` resolved, or an SD
    given): the data-augmentation remedy asks for more of it rather than for the ``--augment-noise auto`` the run
    may already have had (random labels at ``--hidden 128 --augment-noise auto`` were told "regularise ... (--l2,
    --weight-decay, --augment-noise auto)")."""
    from ..config import AUTO_NOISE_MAX

    out = []
    if sd >= AUTO_NOISE_MAX:  # at auto's cap already: more noise drowns single genes, so it is no remedy here
        for a in advice:
            if not a.startswith(("Use data augmentation", "Apply data augmentation")):
                out.append(a.replace(", with input noise (--augment-noise auto) and weight decay (--l2)",
                                     ", with weight decay (--l2)").replace(", --augment-noise auto", ""))
        return out
    more = f"--augment-noise above the {sd:.3g} this run used"
    for a in advice:
        if a.startswith(("Use data augmentation", "Apply data augmentation")):
            a = (f"Add more input noise than the run had ({more}; auto sizes it sqrt(features / training rows), at "
                 f"most {AUTO_NOISE_MAX:g}, beyond which it drowns single genes).")
        out.append(a.replace("input noise (--augment-noise auto)", f"more input noise ({more})")
                   .replace("--augment-noise auto", more))
    return out


def full_batch_advice(label: str, advice: list[str], linear: bool = False, cause: str | None = None) -> list[str]:
    """``advice`` for curves of L-BFGS iterations: the lines naming an option that optimizer refuses are left out,
    and what it does take leads (it trains to convergence and keeps the last iterate, so there is no earlier point
    to stop at: a penalty, a smaller network, or a minibatch optimizer that stops early)."""
    kept = [a for a in advice if not any(re.search(rf"{o}\b", a) for o in _NOT_FULL_BATCH)
            and not a.startswith(("Stop early", "Nothing to restore"))]  # (early stopping: not L-BFGS's)
    if label in ("overfit", "unrepresentative_train", "unrepresentative_validation_noisy"):
        smaller = ("fewer features (--top-var)" if linear else
                   "use a smaller network (--hidden, --hidden none for the linear model)")
        lead = ("L-BFGS trains to convergence and keeps its last iterate, not the best one: regularise it with a "
                f"stronger --l2, {smaller}, or train with a minibatch optimizer that stops at the best epoch "
                "(--optimizer adamw, the default).")
    elif cause == "no_signal":  # no capacity lead: its advice says why more would only memorise more
        return kept
    elif label in ("underfit_capacity", "underfit_stopped_early"):
        lead = ("L-BFGS: more capacity (--hidden), a weaker --l2, or more iterations (--epochs, its iteration "
                "limit); it takes no learning rate.")
    else:
        return kept
    return [lead, *kept]


def _erratic_training(ev: dict, w: Words) -> str | None:
    """"The training loss is erratic (...)" when a training curve wiggles by more than ``ERRATIC_TRAINING`` of the
    scale, else None: the curve as trained (a mean over minibatches), or the inference-mode one, a snapshot of the
    weights at each epoch's end that shows them jumping where the minibatch mean averages the jumps out."""
    if ev["train_noise"] is not None and ev["train_noise"] > ERRATIC_TRAINING:
        return f"The training {w.name} is erratic (noise {_pct(ev['train_noise'])} of the scale)"
    if ev.get("train_eval_noise") is not None and ev["train_eval_noise"] > ERRATIC_TRAINING:
        return (f"The training {w.name} in inference mode is erratic (it jumps by {_pct(ev['train_eval_noise'])} "
                "of the scale from epoch to epoch)")
    return None


def _capacity_advice(ev: dict, w: Words, capacity_tried: str | None) -> list[str]:
    """Underfit (capacity): the notes' remedies, unless the run says capacity is not what is missing: a training
    curve worse than a constant prediction (``cause`` not_learning) has not learned at all, and a larger network the
    run already tried (``capacity_tried``) did not do better."""
    regularisation = ("Check that regularisation (--l2, --weight-decay, --dropout, --augment-noise) is not so strong "
                      "that it prevents fitting.")
    erratic = _erratic_training(ev, w)
    if ev["cause"] == "not_learning":
        return [
            f"The network has not learned: its training {w.name} ends {_pct(-ev['train_distance_from_baseline'])} of "
            f"the scale {'below' if w.higher_is_better else 'above'} the no-skill {w.name}, which a constant "
            "prediction reaches and any network can learn through its output bias alone, so more capacity cannot "
            "help yet.",
            (f"{erratic}: lower the learning rate (--lr) or clip the gradient norm (--clip-norm)." if erratic else
             "Raise the learning rate (--lr) or train for more epochs (--epochs): at a rate too low to move the "
             "weights the curves stay flat where the untrained network starts."),
            regularisation,
            "Once the training curve moves past the no-skill level, judge capacity again (more units or layers with "
            "--hidden, better features) if it still stays poor.",
        ]
    lr = (f"{erratic}: the learning rate is probably too high; lower it (--lr)." if erratic
          else "Check the learning rate (--lr): a rate that is too high also keeps the curves near the "
               "baseline.")
    unknown = ([] if ev["train_distance_from_baseline"] is not None else [
        # flat from the first epoch reads the same whether the run never learned or learned within epoch 1
        f"First check the verdict: without a baseline the first epochs' level counts as no skill, so a run "
        f"that had already learned within its first epoch looks the same. Give the no-skill {w.name} with "
        "--baseline" + (" (balanced accuracy: 1/K for K classes)." if w.higher_is_better else
                        " (cross-entropy: the loss of predicting the class prior, ln K for K balanced classes; "
                        "mlpcli's MSE on standardised targets: about 0.5).")])
    if ev["cause"] == "still_improving":
        return unknown + [
            f"Train for more epochs (--epochs) or raise the learning rate (--lr) first: validation was still "
            f"{w.improving} at the end ({_pct(-ev['val_slope'])} of the scale per 10 % of the run"
            + (f", {abs(ev['val_slope_z']):.1f} standard errors" if ev["val_slope_z"] is not None else "")
            + f") and was {w.best} at the last epoch, so the run stopped "
            "while it was still learning.",
            "Judge capacity once both curves have levelled off: if they stay near the no-skill level then, increase "
            "it (--hidden, e.g. --hidden 256) or improve the features.",
            regularisation,
        ]
    if ev["cause"] == "no_signal":  # a baseline is known (``_no_signal``), so no ``unknown`` line
        return _no_signal_advice(ev, w, "More capacity will not help",
                                 "a larger network would only memorise more of them")
    if ev["cause"] == "training_only_gains":
        return unknown + [
            f"More capacity is not what is missing: the training {w.name} was still {w.improving} at the end while "
            f"validation had settled (it gained {_pct(max(ev['val_share'], 0.0))} of what training gained over the "
            f"second half) and the gap widened to {_pct(ev['gap_end'])} of the scale, so the network already fits "
            "its training rows better than what carries over to new samples.",
            "The features probably carry little information about the target, or the labels are noisy (mislabelled "
            "samples, an uncertain phenotype): check the labels and improve the features (more informative inputs, "
            "better normalisation or selection) before making the model larger.",
            "Regularise so that it does not memorise the noise (--l2, --weight-decay, --dropout, --augment-noise).",
        ]
    if ev.get("steady_fall") and ev["cause"] in (None, "larger_model_tried") and not erratic:
        # wdbc at --lr 1e-5: 0.527 -> 0.512 in a straight line over 30 epochs was told "a rate that is too high"
        return [
            "The learning rate is probably too low (or the run too short): raise --lr (e.g. 10x) or train longer "
            f"(--epochs). Both curves were still {w.improving} at a steady rate at the end ({_pct(ev['fall_ratio'])} "
            "of their pace over the first half, the slower curve's), not levelling off, so they are still far from "
            "where this network could get.",
            "Judge capacity once both curves have levelled off: if they stay near the no-skill level then, increase "
            "it (--hidden, e.g. --hidden 256) or improve the features.",
            regularisation,
        ]
    if ev["cause"] == "larger_model_tried":
        return unknown + [
            f"More capacity was tried and did not do clearly better: {capacity_tried}. The features probably "
            "carry little information about the target, or the target is mostly noise (mislabelled samples, "
            "measurement noise): improve the features (more informative inputs, better normalisation or selection) "
            "or check the target before making the model larger.",
            lr, regularisation,
        ]
    capacity = ["Increase model capacity: more units per layer or more hidden layers (--hidden, e.g. --hidden 256 or "
                "--hidden 256,64).",
                "Improve the features (more informative inputs, better normalisation or selection)."]
    # erratic training: the notes' "learning rate too high" cause is the one the curves show, so it leads (--lr 0.5 on
    # 2,019 cells: training flat at 0.48 where the default rate reaches 0.26, advised "--hidden 256" first)
    return unknown + ([lr, *capacity, regularisation] if erratic else [*capacity, lr, regularisation])


# What to check when nothing a network learned carries over (validation never beat a constant prediction)
CHECK_TARGET = ("Check the target first: that it is the right column and that its labels belong to these rows (labels "
                "shuffled, or a sample sheet joined on the wrong id, look like this); then whether these features can "
                "carry it at all. `mlpcli diagnose --learning-curve DATA` trains on growing shares of the rows and "
                "says whether any size beats the no-skill level.")


def _no_signal_advice(ev: dict, w: Words, lead: str, tail: str) -> list[str]:
    """The advice for cause no_signal (``_no_signal``: a baseline is known): what the levels say, then the target
    to check before anything else, then a weak signal's remedies. ``lead`` opens the first line ("More capacity will
    not help"); ``tail`` closes it (why that remedy would not help)."""
    return [
        f"{lead}: the training {w.name} got "
        f"{_from_no_skill(ev['train_distance_from_baseline'])}, but validation {_never_beat_words(ev, w)} "
        f"(at its {w.best} {_from_no_skill(ev['best_distance_from_baseline'])}) and settled "
        f"{_pct(ev['gap_end'])} of the scale {w.worse_side} training: nothing the network learned from its "
        f"training rows carries over to new samples, and {tail}.",
        CHECK_TARGET,
        "If the labels are right, the signal is too weak for this many samples: collect more samples or more "
        "informative features, and regularise so that the model does not memorise the noise (--l2, "
        "--weight-decay, --augment-noise auto).",
    ]


def advice_for(label: str, ev: dict, stochastic: bool, w: Words, kept: Sequence[int] | None = None,
            capacity_tried: str | None = None, validation_table: str | None = None,
            grouped_by: str | None = None) -> list[str]:
    """The notes' remedies for ``label``, filled in with the (loss-orientation) evidence; ``kept``: the epochs whose
    weights the run restored (one per network), when known; ``capacity_tried``: the larger network the run already
    tried, in words; ``validation_table``: the separate table validation came from; ``grouped_by``: the column the
    run's split kept whole."""
    per = "of the scale per 10 % of the run"
    if label == "underfit_capacity":
        advice = _capacity_advice(ev, w, capacity_tried)
        if (ev["cause"] not in ("still_improving", "no_signal") and not ev.get("steady_fall") and kept
                and min(kept) >= ev["last_epoch"] and _flat_words(ev, w) != "are flat"):
            # every network kept its last epoch and a curve still moves: the epoch limit, not the curves, ended the run
            advice.insert(0, f"Train longer first (--epochs): every network kept its last epoch's weights "
                             f"({ev['last_epoch']}) and the curves were still {w.improving}, slowly; see whether they "
                             "level off before judging capacity.")
        return advice
    if label == "underfit_stopped_early":
        more = (f"Train for more epochs (--epochs): both curves were still {w.improving} at the end, over epochs "
                f"{ev['window_first_epoch']}-{ev['last_epoch']} (training {_pct(-ev['train_slope'])}, validation "
                f"{_pct(-ev['val_slope'])} {per}{_per_epochs(ev)}).")
        if kept and min(kept) >= ev["last_epoch"]:  # best at the last epoch: the epoch limit ended it, not patience
            return [more, f"Early stopping did not cut it short: the weights kept are the last epoch's "
                          f"({ev['last_epoch']}), so --epochs, not --patience, is the limit to raise."]
        return [more, "Revisit early stopping: raise --patience (or lower --min-delta) so the run is not cut short."]
    if label == "overfit":
        return _overfit_advice(ev, stochastic, w, kept)
    if label == "good_fit" and ev.get("gap_trend") == "growing":  # the closest shape, not a settled one
        return [
            f"Nothing urgent: validation sits {_pct(abs(ev['gap_end']))} of the scale "
            f"{w.worse_side if ev['gap_end'] > 0 else w.better_side} training, but the gap keeps growing: "
            "overfitting may be starting. The kept weights are the best validation epoch's; if the next run's gap "
            "grows further, add regularisation (--l2, --weight-decay, --dropout).",
        ]
    if label == "good_fit":
        return [
            f"Nothing needed: both curves settle at a similar level (validation {_pct(abs(ev['gap_end']))} of the "
            f"scale {w.worse_side if ev['gap_end'] > 0 else w.better_side} training, gap {ev['gap_trend']}).",
            "A small, stable gap is expected; a gap of exactly zero is unlikely in practice.",
        ]
    if label == "unrepresentative_train" and ev["cause"] == "no_signal" and not validation_table:
        # random labels on 700 blood cells (10 types): training 51 % of the scale below the no-skill loss, validation
        # settling 14 % above it, and the advice led with "Collect more training data"; the gap is not the training
        # set's coverage when validation never learned anything (a separate validation table: that table first)
        return _no_signal_advice(ev, w, "More data of the same kind is not the first thing to try",
                                 "more rows would only give it more to memorise until the labels are checked")
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
        if ev["train_level"] is not None and ev["train_level"] < MEMORISED_LEVEL and not w.higher_is_better:
            # training loss near 0 beside a settled validation loss: the network memorises its rows, and narrowing
            # that gap is regularisation's job as much as more rows'
            more.insert(1, f"The training {w.name} is near 0 ({_pct(ev['train_level'])} of the scale): the network "
                           "memorises its training rows. Stronger regularisation (--l2, --dropout, --augment-noise "
                           "auto) or a smaller model (--hidden) narrows such a gap as often as more rows do; "
                           "`mlpcli diagnose --learning-curve DATA` shows whether more rows still help.")
        split = (f"the split already kept the samples of each {grouped_by} value on one side, but a batch or site "
                 "confined to some of them still differs (`train` warns when a network's held-out rows do)"
                 if grouped_by else
                 "split by patient, experiment or batch (--group names the column whose samples stay on one side)")
        return [*more, "Check for a train/validation distribution mismatch (batch, site, cohort or "
                       f"sequencing-run composition); {split}."]
    if label == "unrepresentative_validation_noisy" and ev["member_spread"] is not None:
        return [
            f"The validation folds disagree: the members' validation curves differ by "
            f"{_pct(ev['member_spread'])} of their level, so a single fold's curve says little. Use "
            f"fewer, larger folds (--folds, e.g. --folds 3), or collect more samples.",
            "Check the fold table train prints: folds keep patients whole (--group) and, for a classifier, are "
            "stratified by class, so a fold short of a class or made of one batch points at too few patients per "
            "class or batch.",
            "Judge the run by the members' mean curve, not by any one member's.",
        ]
    # a --val-data table is no split: --val-size and --folds 5 are usage errors beside it (the table sets the size)
    larger = (f"more samples in {validation_table}, the --val-data table" if validation_table else
              "--val-size, e.g. 0.3")
    k_fold = ("leave out --val-data: --folds 5" if validation_table else "--folds 5")
    if label == "unrepresentative_validation_noisy" and ev["cause"] == "weights_jump":
        return [
            f"Lower the learning rate (--lr, e.g. 3-10x lower) or clip the gradient norm (--clip-norm): the "
            f"inference-mode training {w.name} jumps from epoch to epoch too ({_pct(ev['train_eval_noise'])} of the "
            f"scale, against validation's {_pct(ev['val_noise'])}), so the weights themselves jump and a larger "
            "validation set would jump with them.",
            "If validation stays erratic once the training curves are steady, use a larger validation set "
            f"({larger}) or k-fold cross-validation ({k_fold}).",
        ]
    if label == "unrepresentative_validation_noisy":
        return [
            f"Use a larger validation set ({larger}): its {w.name} wiggles by "
            f"{_pct(ev['val_noise_rel'])} of its level, {_ratio_words(ev['noise_ratio'])}.",
            ("Check that the validation table holds every class and batch." if validation_table else
             "Stratify (and shuffle) the validation split so every class and batch is represented."),
            f"Use k-fold cross-validation to average out the noise of a single small split ({k_fold}, train's "
            "default: every sample validates one member of the ensemble).",
        ]
    return _advice_below(ev, w)


def unstable_sentence(ev: dict, w: Words) -> str:
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


def unstable_advice(ev: dict) -> list[str]:
    return [f"Lower the learning rate (--lr, e.g. 3-10x lower) or clip the gradient norm (--clip-norm): the run "
            f"went unstable at epoch {ev['unstable_epoch']}.",
            f"Keep the weights from before that: the best epoch up to it is {ev['best_epoch']} (early stopping on "
            "the validation loss restores it)."]


def _advice_below(ev: dict, w: Words) -> list[str]:
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


def _flat_words(ev: dict, w: Words) -> str:
    """"are flat", or, when a curve still moves by more than the noise though too slowly to count as falling, "level
    off" with its slope: a 2-unit network's curves falling by 0.4 % of the scale per 10 % of the run at 9.6 and 74
    standard errors read "both curves are flat", against the evidence printed under it."""
    moving = [(name, ev[f"{key}_slope"]) for name, key in (("training", "train"), ("validation", "val"))
              if ev.get(f"{key}_slope_z") is not None and ev[f"{key}_slope_z"] <= -(SLOPE_Z + SLOPE_Z_WIDTH)]
    if not moving:
        return "are flat"
    by = ", ".join(f"{name} by {_pct(abs(slope))}" for name, slope in moving)
    return f"level off ({w.improving} slowly at the end: {by} of the scale per 10 % of the run)"


def _shape_sentence(label: str, ev: dict, w: Words) -> str:
    """The label's sentence with its key numbers (loss-orientation evidence, words from ``w``)."""
    n, per = w.name, "per 10 % of the run"
    tf, vf = _num(ev["train_final"]), _num(ev["val_final"])
    title = label_title(label, w.higher_is_better)
    if label == "underfit_capacity":
        d_tr, d_va = ev["train_distance_from_baseline"], ev["val_distance_from_baseline"]
        near = f"the no-skill {n}" if d_tr is not None else "their starting level"
        if ev["cause"] == "still_improving":
            return (f"{title}: both curves are still near {near} (training {tf}, validation {vf}), but "
                    f"validation was still {w.improving} at the end and {w.best} at the last epoch: the run stopped "
                    "while learning, before capacity can be judged")
        if ev["cause"] == "no_signal":
            return (f"No learnable signal ({title.lower()} in shape): {_no_signal_clause(ev, w)}, so more capacity "
                    "would only memorise more")
        if ev["cause"] == "training_only_gains":
            return (f"{title}: both curves stay near {near} (training {tf}, validation {vf}), yet training "
                    f"was still {w.improving} while validation had settled and the gap widened: the network fits more "
                    "than carries over, so the features or the labels, not capacity, limit it")
        if ev.get("steady_fall") and ev["cause"] in (None, "larger_model_tried"):
            where = (f"training {tf}: {_from_no_skill(d_tr)}; validation {vf}: {_from_no_skill(d_va)}" if d_tr is not None
                     else f"training {tf}, validation {vf}: {_pct(ev['train_level'])} and {_pct(ev['val_level'])} of "
                          "their starting level")
            return (f"{title}: both curves are still {w.improving} at a steady rate, not levelling off (training by "
                    f"{_pct(-ev['train_slope'])}, validation by {_pct(-ev['val_slope'])} of the scale {per} at the end, "
                    f"{_pct(ev['fall_ratio'])} of their pace over the first half), at a {w.poor} {n} ({where}): the "
                    "learning rate is probably too low, or the run too short, to judge capacity")
        if d_tr is None:
            return (f"{title}: both curves stay flat near their starting level, taken as no skill without a baseline "
                    f"(training {tf}, validation {vf}: {_pct(ev['train_level'])} and {_pct(ev['val_level'])} of it)")
        flat = _flat_words(ev, w)
        if ev["cause"] == "not_learning":
            return (f"{title}: both curves {flat} at a {w.poor} {n} (training {tf}, validation {vf}), training "
                    f"{_pct(-d_tr)} of the scale {w.worse_side} the no-skill {n}: the network has not learned, which "
                    "points at the optimisation before capacity")
        if min(d_tr, d_va) >= SHARE_SHOWN:
            return (f"{title}: both curves {flat} at a {w.poor} {n} (training {tf}, validation {vf}; "
                    f"{_pct(d_tr)} and {_pct(d_va)} of the way from no skill to perfect)")
        return (f"{title}: both curves {flat} at a {w.poor} {n} (training {tf}: {_from_no_skill(d_tr)}; "
                f"validation {vf}: {_from_no_skill(d_va)})")
    if label == "underfit_stopped_early":
        return (f"{title}: both curves were still {w.improving} over epochs {ev['window_first_epoch']}-"
                f"{ev['last_epoch']}, the run's last quarter (training by {_pct(-ev['train_slope'])}"
                + (f", validation by {_pct(-ev['val_slope'])} of the scale {per}" if -ev["val_slope"] >= FALL_SLOPE / 2
                   else f" of the scale {per}; validation flat over that quarter, having kept pace over the second "
                        "half")
                + f"{_per_epochs(ev)})")
    if label == "overfit":
        kept = (f"kept {w.improving}" if -ev["train_slope"] >= FALL_SLOPE else f"stayed near {tf}")
        never = ""
        if _never_beat_no_skill(ev):
            never = (f"; even at its {w.best} it was {_pct(-ev['best_distance_from_baseline'])} of the scale "
                     f"{w.worse_side} the no-skill {n}: the network learned nothing that carries over to new samples")
        # the evidence's best_epoch is where the curve first came within noise of that value: said beside it, as
        # "lowest around epoch 19" read as a contradiction of "best_epoch 8" in the table below
        plateau = (f", within noise of it from epoch {ev['best_epoch']}"
                   if ev.get("best_epoch") is not None and ev["best_epoch"] < ev["divergence_epoch"] - 1 else "")
        return (f"{title}: the smoothed validation {n} was {w.best} around epoch {ev['divergence_epoch']} "
                f"({_num(ev['best_val'])}{plateau}) and then {w.worsened} by {_pct(ev['val_rise'])} of the scale, "
                f"while the training {n} {kept}{never}")
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
        jump = (f", and the inference-mode training {n} jumps with it ({_pct(ev['train_eval_noise'])} of the scale "
                f"against {_pct(ev['val_noise'])}): the weights jump between epochs, the learning rate more likely the "
                "cause than the validation set" if ev["cause"] == "weights_jump" else "")
        return (f"Noisy validation: the validation {n} wiggles by {_pct(ev['val_noise_rel'])} of its level "
                f"from epoch to epoch ({_ratio_words(ev['noise_ratio'])}) with no clear trend{jump}")
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


def summary_sentence(label: str, ev: dict, conditions: list[tuple[str, float]], runner_up: str | None,
             tied: bool, w: Words) -> str:
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
    lead = _no_signal_lead(ev, w)
    if lead and not s.startswith("No learnable signal"):  # what the levels say holds whichever shape comes closest
        s = f"No learnable signal: {lead}. {s}"
    if ev["short_curve"]:
        s += f" (short curve of {ev['n_epochs']} epochs: best-effort label)"
    return s + "."


SHARE_SHOWN = 0.0005  # a share printed as 0.0 % (one decimal of a percentage)
MEMORISED_LEVEL = 0.02  # a training loss below 2 % of the scale at the end: the training rows are memorised


def _no_signal_clause(ev: dict, w: Words) -> str:
    """Cause no_signal in words (loss-orientation evidence with a baseline): training learned, validation never beat
    the no-skill level, the gap between them."""
    return (f"training got {_from_no_skill(ev['train_distance_from_baseline'])} ({_num(ev['train_final'])}) while "
            f"validation {_never_beat_words(ev, w)} (at its {w.best} "
            f"{_from_no_skill(ev['best_distance_from_baseline'])}; {_num(ev['val_final'])} at the end, "
            f"{_pct(ev['gap_end'])} of the scale {w.worse_side} training): what the network fits in its training rows "
            "does not carry over to new samples")


def _no_signal_lead(ev: dict, w: Words) -> str | None:
    """Why the summary leads with "No learnable signal", or None: cause no_signal (``_no_signal_clause``), or a
    larger network the run tried that did no better (cause larger_model_tried) beside a validation curve that never
    came ``NO_SIGNAL_GAIN`` below the no-skill level. Random labels on 2,019 cells: a linear model, flat at the no-skill
    loss, and hidden 128 beside it at balanced accuracy 0.50 read "Underfit (capacity): both curves are flat"."""
    if ev["cause"] == "no_signal":
        return _no_signal_clause(ev, w)
    best = ev.get("best_distance_from_baseline")
    if ev["cause"] == "larger_model_tried" and best is not None and best < NO_SIGNAL_GAIN:
        return (f"validation {_never_beat_words(ev, w)} (at its {w.best} {_from_no_skill(best)}) and the larger "
                "network the run tried did no better")
    return None


def _never_beat_words(ev: dict, w: Words) -> str:
    """"never beat the no-skill loss", or where its best epoch did by a little, "... by 2.0 % of the scale": a best
    1.3 % of the way from no skill to perfect beside "never beat" read as a contradiction."""
    best = ev["best_distance_from_baseline"]
    return f"never beat the no-skill {w.name}" + (f" by {_pct(NO_SIGNAL_GAIN)} of the scale" if best > 0 else "")


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
    w = Words(higher_is_better, "")
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
        "fall_ratio": ("pace at the end / pace over the first half (slope over the last quarter / over the first half, "
                       "the slower curve's): ~1 still falling in a straight line, ~0 levelled off"),
        "steady_fall": (f"both curves still {w.improving} at the end, out of the noise, by >= {_pct(STEADY_SLOPE)} of "
                        f"the scale per 10 % of the run and at >= {_pct(STEADY_RATIO)} of their first-half pace: not "
                        "levelling off (a learning rate too low)"),
        "val_rise": (f"how far validation {w.worsened} after its {w.best} value / S (> 0 worse): the larger of the "
                     "change at the end and the median change since"),
        "val_rise_z": "that change in standard errors",
        "val_noise_rel": "validation wiggle / its level" + (" (its shortfall from a perfect score)" if higher_is_better else ""),
        "noise_ratio": "validation wiggle / training wiggle (relative)",
        "train_eval_noise": "wiggle of the training value in inference mode / S (the weights' own jumps)",
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
        "best_distance_from_baseline": (f"the same for validation at its {w.best} epoch, unsmoothed (< 0: it never "
                                        "beat no skill)"),
        "score": ("rule score of the label, -1 .. 1: 1 every condition of its rule clearly holds, 0 one sits on "
                  "its threshold, < 0 at least one fails (no shape matches clearly)"),
        "runner_up_score": "rule score of the runner-up (same scale)",
    }
