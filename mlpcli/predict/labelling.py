"""How a prediction run calls labels: the decision rule and threshold (the model's, or given), and a prevalence
the probabilities are adjusted to."""

from __future__ import annotations

import numpy as np

from ..decision import DECIDED, Decision
from ..decision import RULES as DECISION_RULES
from ..errors import ConfigError, OptionError
from ..model_io import Model


def resolve_decision(model: Model, decision: str | None = None, threshold: float | None = None
                     ) -> tuple[Decision, "float | np.ndarray"]:
    """The rule that labels ``model``'s rows and a binary or multi-label model's threshold on P(positive), from
    ``predict``/``evaluate``'s ``--decision`` (None: the model's own rule, ``mlpcli.decision``) and ``--threshold``
    (None: the rule's: 0.5, or for a model decided ``balanced`` its positive class's training share, a multi-label
    model's one per label (L,)). Both given for a binary or multi-label model, or either for a task they do not
    apply to, is an OptionError."""
    threshold = _check_threshold(model, threshold)
    if decision is not None:
        if decision not in DECISION_RULES:
            raise ConfigError(f"--decision must be one of {', '.join(DECISION_RULES)}, got {decision!r}")
        if model.task not in DECIDED:
            raise OptionError(f"--decision applies to binary, multiclass and multi-label models; this model is "
                              f"{model.task}")
        if threshold is not None:
            what = "multi-label" if model.task == "multilabel" else model.task
            raise OptionError(f"--decision and --threshold both decide a {what} model's labels; give one of them")
        if decision == "balanced" and (model.decision is None or model.decision.shares is None):
            raise OptionError("--decision balanced: this model file keeps no training class shares to divide by "
                              "(written before mlpcli stored its decision rule"
                              + (" for multi-label models" if model.task == "multilabel" else "") + "); train it again")
    rule = model.decider.with_rule(decision)
    return rule, rule.threshold(model.task) if threshold is None else threshold


def resolve_prevalence(model: Model, prevalence, rule: Decision, threshold: float, threshold_given: bool):
    """(mix, rule, threshold): the class mix ``predict``/``evaluate``'s ``--prevalence`` moves the probabilities to
    (``mlpcli.prevalence.Prevalence``; None: the training mix, nothing moved), and ``resolve_decision``'s rule and
    threshold for it (the rule divides by the mix's shares, so balanced labels stay; a binary threshold the rule set
    becomes the mix's positive share). ``prevalence``: --prevalence's text ("CLASS=SHARE,..."), a mapping class ->
    share (or a pandas Series, by its index), the shares in the model's class order, or a Prevalence. OptionError (a
    usage error) for a task without classes, a model that keeps no training class mix, or shares that are not a mix
    of its classes."""
    mix = _prevalence(model, prevalence)
    if mix is None:
        return None, rule, threshold
    rule = rule.with_shares(mix.cohort)
    return mix, rule, threshold if threshold_given else rule.threshold(model.task)


def _prevalence(model: Model, prevalence):
    if prevalence is None:
        return None
    from .. import prevalence as pv

    if model.task not in ("binary", "multiclass"):
        raise OptionError(f"--prevalence applies to binary and multiclass models; this model is {model.task}")
    shares = None if model.decision is None else model.decision.shares
    if shares is None:
        raise OptionError("--prevalence: this model file keeps no training class mix to move the probabilities from "
                          "(written before mlpcli stored its decision rule); train it again")
    classes = list(model.classes)
    if isinstance(prevalence, pv.Prevalence):
        if len(prevalence.cohort) != len(classes):
            raise OptionError(f"--prevalence: a mix of {len(prevalence.cohort)} classes for the model's {len(classes)}")
        return prevalence
    if isinstance(prevalence, str):
        prevalence = pv.parse(prevalence, classes)
    return pv.given(prevalence, classes, np.asarray(shares, dtype=np.float64))


def labelled_by(model: Model, rule: Decision, threshold_given: bool) -> str | None:
    """What labels ``model``'s rows, as ``predict`` and ``evaluate`` report it (their JSON's ``decision``): a
    binary or multi-label model's own ``--threshold`` ("threshold": then neither rule decides, whatever the model's
    is), else the rule's name (argmax, balanced); None for regression."""
    if model.task not in DECIDED:
        return None
    return "threshold" if threshold_given and model.task in ("binary", "multilabel") else rule.rule


def _check_threshold(model: Model, threshold: float | None) -> float | None:
    if threshold is None:
        return None
    if model.task not in ("binary", "multilabel"):
        raise OptionError(f"--threshold applies to binary and multi-label models; this model is {model.task}")
    if not (0.0 <= threshold <= 1.0) or isinstance(threshold, bool):
        raise ConfigError(f"--threshold must be a probability between 0 and 1, got {threshold!r}")
    return float(threshold)
