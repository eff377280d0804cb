"""What a labelled cohort earns a warning for in ``evaluate``: risks systematically off (observed / expected events,
calibration slope), a temperature that makes the probabilities worse, class totals far from the predicted ones,
targets unlike training's or fitting another target's predictions better, labels the model was never taught, classes
absent from the cohort."""

from __future__ import annotations

import math

import numpy as np

from ..distributions import Z_95, normal_quantile
from ..model_io import Model
from ..text import quoted


# A binary model's risks are said to be off on a table when the calibration intercept's interval excludes 0 and
# observed / expected events lie outside this band, or the slope's interval excludes 1 and it lies outside the other
OE_BAND = (0.8, 1.25)
SLOPE_BAND = (0.8, 1.25)


def weighted_model(model: Model) -> bool:
    from ..model_summary import is_weighted

    return is_weighted(model.config or {})


def risks_off(m: dict, tests: int = 1) -> list[str]:
    """How binary risks are systematically off (``m``: ``metrics.compute``'s binary set, with ``calibration``), in
    words: too high or too low on average (O/E outside OE_BAND, the intercept's 95 % interval beside 0), too extreme
    or too moderate (the slope outside SLOPE_BAND, its interval beside 1); [] when they hold. ``tests``: how many
    such judgements are made at once (the groups of --by): the intervals are widened to Bonferroni's 1 - 0.05 / tests
    (the words still give the 95 % ones)."""
    cal = m.get("calibration") or {}
    oe, lo_hi = m.get("observed_expected"), cal.get("intercept_ci")
    slope, slope_ci = cal.get("slope"), cal.get("slope_ci")
    if tests > 1:  # Wald intervals: estimate +- 1.96 SE, widened to the Bonferroni quantile
        widen = normal_quantile(1 - 0.025 / tests) / Z_95

        def wider(ci, centre):
            return None if ci is None or centre is None else [centre - (centre - ci[0]) * widen,
                                                              centre + (ci[1] - centre) * widen]

        judged_int, judged_slope = wider(lo_hi, cal.get("intercept")), wider(slope_ci, slope)
    else:
        judged_int, judged_slope = lo_hi, slope_ci
    parts = []
    if oe is not None and judged_int is not None and not judged_int[0] <= 0 <= judged_int[1] \
            and not OE_BAND[0] <= oe <= OE_BAND[1]:
        way = "too high" if oe < 1 else "too low"
        parts.append(f"{way} on average: {cal['observed']:,} events where the risks expect {cal['expected']:.4g} "
                     f"(observed / expected {oe:.2f}; calibration intercept {cal['intercept']:+.2f}, 95 % CI "
                     f"{lo_hi[0]:+.2f} – {lo_hi[1]:+.2f})")
    if slope is not None and judged_slope is not None and not judged_slope[0] <= 1 <= judged_slope[1] \
            and not SLOPE_BAND[0] <= slope <= SLOPE_BAND[1]:
        way = "too extreme (an overfitted or transported model)" if slope < 1 else "too moderate"
        parts.append(f"{way}: calibration slope {slope:.2f} (95 % CI {slope_ci[0]:.2f} – {slope_ci[1]:.2f})")
    return parts


def risk_calibration_warning(model: Model, m: dict, mix=None) -> str | None:
    """A binary model's warning when its risks are systematically off on this table (``m``: ``metrics.compute``'s
    binary set, with ``calibration``): too high or too low on average (calibration-in-the-large: O/E outside
    OE_BAND, the intercept's 95 % interval beside 0), or too extreme or too moderate (the slope outside SLOPE_BAND,
    its interval beside 1) — which the top-label ECE cannot show (O/E 0.67, intercept -0.80 read "ECE 0.021").
    Names no single cause (a shift in the outcome's prevalence, in the predictors, or an overfitted model look
    alike here); says what to do. None when the risks hold."""
    from ..model_summary import is_weighted

    parts = risks_off(m)
    if not parts:
        return None
    positive = str(model.classes[-1])
    if mix is not None:
        cause = " after --prevalence moved them: more than the outcome's share differs here"
    elif is_weighted(model.config or {}):
        cause = (": the class weights (--class-weight, --pos-weight) move the probabilities on purpose, so read them "
                 "as scores")
    else:
        cause = ""
    how = ("`mlpcli recalibrate MODEL LABELLED_TABLE -o NEW` fits an update on labelled samples of it; judge NEW on "
           "others")
    if model.recalibrated_on is not None:
        cause += (f" (the model was recalibrated on {model.recalibrated_on}: this table is not of that population, or "
                  "it has moved)")
        how = "`mlpcli recalibrate` the model it was made from, on labelled samples of this population"
    return (f"the risks of {positive!r} are systematically {'; and '.join(parts)} on this table{cause} — the "
            f"top-label ECE does not show it. Recalibrate on this population before reading them as risks ({how}"
            + ("; --prevalence moves them when only the outcome's share differs and is known" if mix is None else "")
            + "); the intervals count samples as independent")


def temperature_warning(model: Model, out: np.ndarray, y: np.ndarray, calibration: dict | None,
                        groups: np.ndarray | None = None, mix=None) -> str | None:
    """A warning when the model's temperature makes its probabilities worse on this labelled table: the log loss
    with it higher than without by more than two standard errors of the paired per-row difference (patients as
    clusters), and the ECE higher too. ``out`` (n, k): the probabilities as evaluated (with the temperature); ``y``
    the class codes; ``calibration``: the evaluation's figures with and without it (``log_loss_before``, ...).
    The temperature is fitted on out-of-fold rows each scored by one member, while an ensemble predicts with the
    members' mean, less extreme wherever they disagree: members that memorise their rows can leave the mean too
    moderate, and a temperature above 1 moderates it further (3 members of 200 genes x 200 rows: log loss 0.352 →
    0.411, ECE 0.057 → 0.115 on exchangeable samples). None otherwise (no temperature, a recalibrated model,
    --prevalence, weighted classes: their own warnings speak)."""
    from ..calibration import logits_of, row_log_losses, temper
    from ..metrics_resampled import cluster_se

    link = model.output_activation()
    T = model.temperature
    if (T is None or calibration is None or model.recalibration is not None or mix is not None
            or weighted_model(model) or model.task not in ("binary", "multiclass") or link not in ("softmax", "sigmoid")
            or len(y) < 20 or None in (calibration.get("ece_before"), calibration.get("ece_after"))):
        return None
    after = np.asarray(out, dtype=np.float64)
    codes = np.asarray(y).reshape(-1)
    losses = [row_log_losses(logits_of(P, link), codes, link) for P in (temper(after, 1.0 / float(T), link), after)]
    d = losses[1] - losses[0]  # > 0 where the temperature made the truth less probable
    if not (d.mean() > 2 * cluster_se(d, groups) and calibration["ece_after"] > calibration["ece_before"]):
        return None
    why = ("; it was fitted on out-of-fold rows each scored by one member, and the members' mean it is applied to "
           "is less extreme" if model.is_ensemble and float(T) > 1 else "")
    return (f"the model's temperature ({float(T):.3g}) makes its probabilities worse on this table: log loss "
            f"{calibration['log_loss_before']:.4f} → {calibration['log_loss_after']:.4f}, ECE "
            f"{calibration['ece_before']:.4f} → {calibration['ece_after']:.4f} (without → with it, beyond two standard "
            f"errors{', patients as clusters' if groups is not None else ''}{why}); they are too "
            f"{'moderate' if float(T) > 1 else 'extreme'} here — `mlpcli recalibrate MODEL LABELLED_TABLE -o NEW` fits "
            "them to labelled samples of this population (judge NEW on others)")


def class_totals_warning(model: Model, proba: np.ndarray, y: np.ndarray, mix=None) -> list[str]:
    """A warning naming the classes whose probabilities on these rows (``proba`` as ``predict_output`` gives them,
    ``y`` class indices) add up far from their counts (``calibration.class_totals``), with what it likely means:
    a table whose class mix differs from training's (the probabilities carry training's shares: a cohort of 4 %
    positives scored by a model trained on 50 % read "ECE 0.048" while P(positive) averaged 0.354; --prevalence
    moves them), the class weights, or probabilities that are off for the class. The top-label ECE cannot show it:
    it bins max(p, 1 - p). ``mix``: the cohort mix ``proba`` was moved to (--prevalence), which the warning then
    names as what they carry."""
    from ..calibration import class_totals
    from ..model_summary import is_weighted

    off = class_totals(proba, y)
    if not off:
        return []
    n = len(y)
    shares = model.class_shares()
    parts = [f"{str(model.classes[t.index])!r} add up to {t.expected:.3g} where {t.observed:,} of the {n:,} samples are "
             f"of it ({t.ratio:.2g} x)" for t in off[:3]]
    more = f" (and {len(off) - 3} more classes)" if len(off) > 3 else ""
    if mix is not None:
        given = ", ".join(f"{str(model.classes[t.index])!r} {mix.cohort[t.index]:.1%}" for t in off[:3])
        why = (f"they were moved to the class mix --prevalence gave ({given}), which is not this table's, or they are "
               "off for these classes here")
    elif is_weighted(model.config or {}):
        why = ("the model was trained with class weights (--class-weight, --pos-weight), which move its probabilities "
               "on purpose: read them as scores, not as each class's chances")
    elif shares is not None and all(abs(math.log(max(t.expected / n, 1e-12) / shares[t.index])) < math.log(1.5)
                                    for t in off):
        mixes = ", ".join(f"{str(model.classes[t.index])!r} {shares[t.index]:.1%} in training, {t.observed / n:.1%} "
                          "here" for t in off[:3])
        why = (f"this table's class mix differs from the training table's ({mixes}), and the probabilities carry "
               "training's mix (prior shift): they overstate the classes that are rarer here and understate the others, "
               "and ECE, which bins the top probability, does not show it; --prevalence CLASS=SHARE,... moves them "
               "to a cohort's known mix")
    else:
        why = ("the probabilities are off for these classes on this table (the top-label ECE does not show it): check "
               "their recall before trusting their probabilities")
    return [f"the probabilities of {'; '.join(parts)}{more}: {why}"]


# A regression truth whose mean lies this many training SDs from the training target's mean, or whose SD is this
# many times larger or smaller, reads as another quantity (``targets_unlike_training``)
TARGET_FAR_SD = 5.0
TARGET_SPREAD_RATIO = 10.0


def targets_unlike_training(model: Model, y: np.ndarray, read_as: Model | None = None) -> str | None:
    """A regression model's warning naming the targets whose truth here is far from the training target (its mean
    TARGET_FAR_SD training SDs away, or its SD TARGET_SPREAD_RATIO times off): another quantity or unit, or
    --target columns given in another order than the model's (they are read by position). None otherwise."""
    members = getattr(model, "members", None) or []
    scaling = getattr(members[0], "target_scaling", None) if members else None  # (a member's training rows: close
    if model.task != "regression" or not scaling or len(y) < 5:  # enough to the others' for a 5-SD test)
        return None
    Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    mean0, sd0 = np.asarray(scaling["mean"], dtype=np.float64), np.asarray(scaling["sd"], dtype=np.float64)
    if Y.shape[1] != len(mean0):
        return None
    names = [str(c) for c in (read_as.classes if read_as is not None else model.classes)]
    own = [str(c) for c in model.classes]
    said = []
    for j in range(Y.shape[1]):
        m, sd = float(np.mean(Y[:, j])), float(np.std(Y[:, j]))
        if not sd0[j] > 0:
            continue
        spread = sd / sd0[j]
        if abs(m - mean0[j]) > TARGET_FAR_SD * sd0[j] or (sd > 0 and not 1 / TARGET_SPREAD_RATIO < spread < TARGET_SPREAD_RATIO):
            source = f" (read from {names[j]!r})" if names[j] != own[j] else ""
            said.append(f"{own[j]!r}{source}: mean {m:.4g}, SD {sd:.3g}, in training {mean0[j]:.4g} and {sd0[j]:.3g}")
    if not said:
        return None
    order = " — or --target names the columns in another order than the model's targets, which are read by position" \
        if len(mean0) > 1 else ""
    return (f"the truth of {'; '.join(said[:3])}{' …' if len(said) > 3 else ''} is far from the training target: "
            f"another quantity or unit{order}; the metrics compare the model with it as given")


# A target's predictions fitting another target's truth better than its own by this much R² (and at least
# SWAP_MIN_R2) read as target columns given in another order (``targets_fit_others``)
SWAP_R2_GAIN = 0.3
SWAP_MIN_R2 = 0.3


def targets_fit_others(model: Model, y: np.ndarray, out: np.ndarray, read_as: Model | None = None) -> str | None:
    """A multi-target regression model's warning when the predictions of a target fit another target's truth far
    better than its own (R² SWAP_R2_GAIN higher, at least SWAP_MIN_R2): the truth columns are read by position, and
    two given in swapped order scored R² -1.40 for a target the model predicts well. None otherwise."""
    if model.task != "regression" or len(y) < 5:
        return None
    Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    P = np.asarray(out, dtype=np.float64).reshape(len(y), -1)
    k = Y.shape[1]
    if k < 2 or P.shape[1] != k:
        return None
    sd = Y.std(axis=0)
    if not (sd > 0).all():
        return None
    # r2[i, j]: the predictions of target j against the truth of column i
    r2 = np.array([[1.0 - np.mean((Y[:, i] - P[:, j]) ** 2) / sd[i] ** 2 for j in range(k)] for i in range(k)])
    names = [str(c) for c in (read_as.classes if read_as is not None else model.classes)]
    own = [str(c) for c in model.classes]
    said = []
    for j in range(k):
        i = int(np.argmax(r2[:, j]))
        if i != j and r2[i, j] >= SWAP_MIN_R2 and r2[i, j] >= r2[j, j] + SWAP_R2_GAIN:
            said.append(f"the predictions of {own[j]!r} fit the column read as {own[i]!r} ({names[i]!r}; R² "
                        f"{r2[i, j]:.2f}) better than its own ({names[j]!r}; R² {r2[j, j]:.2f})")
    if not said:
        return None
    return ("; ".join(said[:3]) + ": are the target columns in the model's order (" + ", ".join(map(repr, own))
            + ")? They are read by position")


def untaught_labels(model: Model, y: np.ndarray) -> str | None:
    """A warning naming the multi-label labels that never changed in the training table (never positive, or always)
    but do in this one: the model could only learn that one value, so their metrics here score a constant guess,
    not a learnt one. None for other tasks, or a model that keeps no training counts."""
    split = model.split or {}
    counts = split.get("class_counts_train")
    if model.task != "multilabel" or not counts or split.get("n_train") is None:
        return None
    val = split.get("class_counts_val") or {}
    n = int(split["n_train"]) + int(split.get("n_val") or 0)
    Y = y.reshape(len(y), -1)
    said = []
    for j, label in enumerate(model.classes):
        positives = counts.get(str(label), counts.get(label))
        if positives is None:
            continue
        positives += val.get(str(label), val.get(label, 0))
        if 0 < positives < n or Y[:, j].min() == Y[:, j].max():
            continue
        said.append(f"{str(label)!r} ({'never positive' if positives == 0 else 'always positive'})")
    if not said:
        return None
    k = len(said)
    return (f"label{'s' * (k > 1)} {', '.join(said)} never changed in the training table: the model could only learn "
            f"to predict that value, so {'their' if k > 1 else 'its'} metrics here score a constant guess; retrain "
            "on samples of both kinds")


def absent_note(task: str, y: np.ndarray, classes: list, overall: dict | None = None) -> str | None:
    """What the table's missing classes leave undefined (shown as —), or None when it holds every class: a
    cohort of controls alone has no ROC AUC; one without a rare subtype averages the one-vs-rest AUC over the
    classes it holds. ``overall`` (the metrics, with their confusion matrix): an absent class the model
    predicted counts 0 in F1 macro (scikit-learn's convention), which the note says with how often, since
    F1 macro then sits far below the balanced accuracy (0.59 against 0.83 in a 3-class cohort without one)."""
    if task == "multilabel" and len(y):
        from ..decision import labels_without_both

        one_valued = labels_without_both(y.reshape(len(y), -1), classes)
        if not one_valued:
            return None
        every = len(one_valued) == y.reshape(len(y), -1).shape[1]
        left = ("so the balanced accuracy, over the labels that vary, is undefined (—)" if every else
                "left out of the balanced accuracy (the mean over the other labels) and, where never called "
                "positive either, of F1 macro")
        return (f"label{'s' * (len(one_valued) > 1)} {', '.join(map(repr, one_valued))} hold{'s' * (len(one_valued) == 1)} "
                f"one value in every row: {left}; their ROC AUC is undefined (—)")
    if task not in ("binary", "multiclass") or len(y) == 0:
        return None
    support = np.bincount(y.reshape(-1).astype(np.int64), minlength=len(classes))
    absent = [c for c, k in zip(classes, support) if k == 0]
    if not absent:
        return None
    if task == "binary":
        held = int(np.argmax(support))  # no positive (class 1): no recall or average precision either
        undefined = "ROC AUC and MCC" if held else "ROC AUC, average precision, recall and MCC"
        return (f"the table holds class {str(classes[held])!r} alone: {undefined} are undefined (—), and the balanced "
                f"accuracy is {str(classes[held])!r}'s recall alone ({'sensitivity' if held else 'specificity'}), not "
                "a mean over classes")
    present = [c for c, k in zip(classes, support) if k > 0]
    if len(present) == 1:
        return f"the table holds class {str(present[0])!r} alone: ROC AUC, MCC and the other classes' recall are " \
               f"undefined (—), and the balanced accuracy is {str(present[0])!r}'s recall alone, not a mean over classes"
    predicted = np.asarray((overall or {}).get("confusion_matrix") or np.zeros((0, 0))).sum(axis=0)
    called = [(c, int(predicted[k])) for k, c in enumerate(classes) if support[k] == 0 and k < len(predicted)
              and predicted[k] > 0]
    f1 = ("; F1 macro counts " + ", ".join(f"{str(c)!r} (predicted for {n:,} sample{'s' * (n != 1)}, each an error)"
                                          for c, n in called)
          + " as 0, as scikit-learn does") if called else ""
    return (f"{len(absent)} of the model's {len(classes)} classes absent from the table ({quoted(absent)}): their "
            f"recall and ROC AUC are undefined (—); ROC AUC (one-vs-rest) is the mean over the {len(present)} "
            f"classes present{f1}")
