"""Diagnose a training run from its learning curves (lecture notes, "Learning Curves").

``diagnose(train_loss, val_loss)`` reads the two per-epoch curves and returns one of the notes'
seven shapes (``LABELS``) with the numbers behind the verdict, the notes' remedies, and a
runner-up label when the evidence is close between two shapes. The sample-size curve (``diagnose --learning-curve``) is read by
``sample_size``: whether more data helps, and bias or variance.

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
fall_ratio, steady_fall
    slope over the last quarter / slope over the first half, the slower curve's (~1 a straight fall, ~0 levelled off),
    and whether both curves still fall by ``STEADY_SLOPE`` out of the noise at ``STEADY_RATIO`` of that pace (not
    levelling off: for ``underfit_capacity`` the learning rate is probably too low)
val_noise, train_noise, val_noise_rel, noise_ratio, train_eval_noise
    noise s.d. / ``S``; validation noise / its level; relative noise of validation / of training; the inference-mode
    training loss's noise / ``S`` (None without it)
member_spread
    s.d. of validation across ensemble members / its level, median over the second half (None
    without ``member_spread``)
val_rise, val_rise_z, divergence_epoch
    rise of validation after its minimum / ``S`` and in standard errors; the epoch of the
    minimum when the label is ``overfit`` (the notes' divergence point), else None
below_fraction, train_eval_final, cause
    share of epochs with validation below training; inference-mode training loss at the end;
    for ``validation_below_train`` the likely cause; for ``underfit_capacity`` "no_signal" (training ended
    ``NO_SIGNAL_GAIN`` below the baseline and ``NO_SIGNAL_GAP`` below validation, which never came ``NO_SIGNAL_GAIN``
    below it: no learnable signal, the summary leads with it and the advice names the target, not capacity; with
    ``capacity_tried`` "larger_model_tried" instead), "not_learning" (both curves end
    ``NOT_LEARNING`` worse than the baseline), "still_improving" (validation still clearly falling, lowest at the
    last epoch: a short run stopped while learning), "training_only_gains" (training still falling while
    validation settled and the gap widens: capacity to spare, the features or labels limit it),
    "larger_model_tried" (``capacity_tried`` given) or None; for ``unrepresentative_validation_noisy`` "weights_jump"
    (the inference-mode training loss wiggles with validation, ``WEIGHTS_JUMP``: the learning rate, not the validation
    set's size, is the likely cause) or None
train_distance_from_baseline, val_distance_from_baseline
    (baseline - final) / baseline: the share of the no-skill loss removed (None without baseline)
score, runner_up_score
    the rule scores in [-1, 1]

Modules: ``curves`` (steps 1-2: the curves validated, oriented and scaled), ``measure`` (step 3), ``rules`` (the
labels, thresholds and scoring), ``words`` (the evidence, sentences and advice); ``diagnose`` here runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .curves import MIN_POINTS, BaselineError, CurveError, prepare_curves
from .measure import curves_up_to, measure_curves, training_rise
from .rules import LABELS, RULES, RUNNER_UP_MARGIN, pick_label
from .words import (advice_for, full_batch_advice, linear_advice, noise_advice, evidence_of, summary_sentence, unstable_advice, unstable_sentence, user_evidence, Words,
                    evidence_meanings, label_title)

__all__ = ["LABELS", "RULES", "RUNNER_UP_MARGIN", "Diagnosis", "CurveError", "BaselineError", "diagnose", "evidence_meanings", "label_title"]


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
        """``{"label", "unstable_epoch", "evidence", "advice", "runner_up", "summary"}`` for ``--json``: the label
        describes the run before it went unstable, ``unstable_epoch`` (None for a stable run) says when it did (a
        script reading the label alone read "good_fit" for a run that diverged)."""
        return {
            "label": self.label,
            "unstable_epoch": self.evidence.get("unstable_epoch"),
            "evidence": dict(self.evidence),
            "advice": list(self.advice),
            "runner_up": self.runner_up,
            "summary": self.summary,
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
    grouped_by: str | None = None,
    full_batch: bool = False,
    linear: bool = False,
    augment_noise: float = 0.0,
    hidden_auto: bool = False,
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
    grouped_by: the column whose samples the run's split kept on one side (the patients), when known: the advice
        then does not ask for a grouped split the run already had.
    full_batch: the curves are L-BFGS iterations (``--optimizer lbfgs``), which keeps its last weights and has no
        learning rate, dropout or input noise: the advice names what that optimizer takes.
    linear: the network has no hidden layer (``--hidden none``): advice to make it smaller is left out (it is the
    smallest), a stronger penalty or fewer features (--top-var) said instead.
    augment_noise: the SD of the input noise the run trained with (``--augment-noise``; 0: none): the advice then
    asks for more of it, not for the ``--augment-noise auto`` the run may already have used.
    hidden_auto: the network was chosen by ``--hidden auto`` (the default): the advice does not ask to "let the
    defaults choose", which they did.

    Raises CurveError (a ValueError and a DataError) for mismatched lengths, fewer than 3 epochs
    with both values finite, a baseline that is not a finite loss above 0 (BaselineError, a
    CurveError), or a negative spread.
    """
    c = prepare_curves(train_loss, val_loss, baseline, train_eval_loss, higher_is_better, member_spread, tuple(curve_names))
    f = measure_curves(c)
    rise = training_rise(c, f)
    if rise is not None and MIN_POINTS <= rise.index + 1 < len(c.epochs):  # the run before it went unstable
        c = curves_up_to(c, rise.index + 1)
        f = measure_curves(c)
    label, runner_up, scores, conditions = pick_label(f)
    lv = evidence_of(f, c, label, scores, runner_up, stochastic_regularisation, rise, capacity_tried)
    words = Words(c.ceiling is not None, name or ("score" if c.ceiling is not None else "loss"))
    kept = [int(k) for k in kept_epochs if k is not None and k >= 1] if kept_epochs is not None and not full_batch \
        else []  # (L-BFGS keeps its last iterate, not the best one)
    advice = advice_for(label, lv, stochastic_regularisation, words, kept or None, capacity_tried, validation_table,
                     grouped_by)
    if full_batch:
        advice = full_batch_advice(label, advice, linear, lv["cause"])
    if linear:
        advice = linear_advice(advice)
    if augment_noise > 0:
        advice = noise_advice(advice, augment_noise)
    if hidden_auto:  # the defaults chose this network already (over the linear model, on held-out loss)
        advice = [a.replace("; or let the defaults choose (--hidden auto).", ".") for a in advice]
    tied = runner_up is not None and scores[runner_up] == scores[label]
    summary = summary_sentence(label, lv, conditions[label], runner_up, tied, words)
    if lv["unstable_epoch"] is not None:  # the instability is the first thing to fix; "nothing needed" is not true
        summary = unstable_sentence(lv, words) + summary[0].lower() + summary[1:]
        advice = unstable_advice(lv) + ([] if label == "good_fit" else advice)
    return Diagnosis(label, user_evidence(lv), advice, runner_up, summary)
