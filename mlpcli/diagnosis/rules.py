"""The seven shapes and the rules that score them from the measurements (``pick_label``; step 4 of
``mlpcli.diagnosis``): each threshold a fraction of the scale S, with its ramp width."""

from __future__ import annotations

import math

import numpy as np

LABELS = (
    "underfit_capacity",
    "underfit_stopped_early",
    "overfit",
    "good_fit",
    "unrepresentative_train",
    "unrepresentative_validation_noisy",
    "validation_below_train",
)


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
FAR_RISE, FAR_RISE_WIDTH = 0.10, 0.04  # a validation loss that rose clearly and by >= 10 % of S while training
#   did not rise (and fell by TRAINED): the network fitted something that made validation worse, however high the
#   training loss stays (the capacity level). Such a
#   run (a linear model whose training loss fell to 69 % of the no-skill loss, its validation rows a batch apart,
#   validation up 43 % of S from epoch 1 at 9.5 s.e.) read "underfit: both curves are flat"; a model short of
#   capacity drifts by a few % of S at most
TRAINED, TRAINED_WIDTH = 0.15, 0.05  # ... and training removed >= 15 % of the scale by the end: a network that
#   fitted nothing (a linear model on XOR, its training balanced accuracy 0.54 where chance is 0.5) lets a lucky
#   first-epoch validation score (0.64) fall back to chance by 18 % of S, which is noise, not overfitting
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
NO_SIGNAL_GAIN = 0.02  # underfit_capacity whose validation never came 2 % of S below the no-skill loss, even at its
#   best epoch (unsmoothed), while training ended >= 2 % of S below it ...
NO_SIGNAL_GAP = GAP_LARGE / 2  # ... and >= 5 % of S below validation, out of the noise (GAP_NOISE_Z, MEMBER_GAP_Z):
#   the network fitted its training rows and none of it carried over, so there is no learnable signal (cause
#   no_signal) and more capacity would memorise more. Read from levels, not slopes: random labels on the sample data
#   (ensembles of hidden 128: training 18-19 % of S below the no-skill loss, validation 4-6 % above it, gap 24-25 %
#   at 15.7 s.e.) ended with training's slope at -1.6 and -2.9 s.e., short of training_only_gains' cut-off, and were
#   told to increase capacity. A network short of capacity with a real signal keeps the gap small (a linear model on
#   circles: 0.2 % of S; a 2-unit net on XOR: 0.4 %) or brings validation below the no-skill loss (30 % flipped
#   labels: 6 %)
STILL_IMPROVING_SLOPE = FALL_SLOPE / 2  # underfit_capacity whose validation still falls by >= 0.5 % of S per 10 % of
#   the run (>= 5 % more if run as long again), by >= 3 s.e., lowest at the last epoch: stopped while learning
#   (cause still_improving): train longer before judging capacity
STEADY_RATIO, STEADY_SLOPE = 0.5, 0.001  # underfit_capacity whose curves both still fall at >= half their pace over
#   the first half (``fall_ratio``; a straight line 1.0) and by >= 0.1 % of S per 10 % of the run at >= 3 s.e.: the
#   curves have not started to level off, the rate is too low (wdbc, --hidden none --lr 1e-5, 30 epochs: 0.527 ->
#   0.512, ratio 0.97, 0.19-0.23 % of S, read "level off" and "a rate that is too high"); curves that level off slow
#   down far more (a 2-unit net on XOR stopped by --epochs 30: 0.08-0.21; flat curves: slopes within the noise)
ERRATIC_TRAINING = 0.03  # a training curve wiggling by > 3 % of S from epoch to epoch: steps too large. The curve as
#   trained averages the jumps over the epoch's minibatches (1.4 % at --lr 0.5 on 2,019 cells), the inference-mode one
#   is a snapshot of the weights and shows them (4.7 % there; 0.0-1.2 % on the steady runs of the same tables)
WEIGHTS_JUMP, WEIGHTS_JUMP_MIN = 0.25, 0.01  # noisy validation whose inference-mode training loss (the same weights
#   on the 4x larger training rows) wiggles by >= 25 % of validation's wiggle, and by >= 1 % of S: the weights jump
#   from epoch to epoch, and a larger validation set would jump with them. --lr 0.5 on 569 tumours: 3.6 % against
#   10.4 % of S (0.35), read "use a larger validation set"; a small or steady validation set: 10 validation rows
#   0.03 % against 0.9 % (0.03), a memorised training set beside 114 validation rows 0.06 % against 2.1 % (0.03)
EARLY_BEST_EPOCH = 2  # overfit with validation best by epoch 2: the network overfits within its first passes over
#   the data, so there is no earlier epoch to stop at; smaller steps, a smaller model or more regularisation are
#   the remedy


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


def facts_of(f: dict, limit: float = 1.0) -> dict[str, float]:
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
    t["far_rise"] = min(t["clear_rise"], ramp(f["val_rise"], FAR_RISE, FAR_RISE_WIDTH),
                        ramp(1.0 - f["train_level"], TRAINED, TRAINED_WIDTH))
    # overfitting needs something fitted: training below the capacity level, or a validation rise that far
    t["fitted"] = max(-t["high"], t["far_rise"])
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
    "underfit_capacity": ("high", "-train_falling", "-unstable", "-far_rise"),
    "underfit_stopped_early": ("train_falling", "val_improving", "-val_lags"),
    "overfit": ("rose", "-train_rising", "fitted", "rise_beats_noise"),
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
    facts = facts_of(f, limit)
    return {lab: [(cond, _truth(facts, cond)) for cond in conds] for lab, conds in RULES.items()}


def pick_label(f: dict) -> tuple[str, str | None, dict[str, float], dict[str, list[tuple[str, float]]]]:
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
