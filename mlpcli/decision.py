"""How a classification model turns its calibrated probabilities into a label (NumPy only).

Two rules, chosen at training time (``--decision``) and stored in the model:

    argmax     ŷ = argmax_c P(c | x)                       the most probable class
    balanced   ŷ = argmax_c P(c | x) / π_c                  π_c: class c's share of the training samples

``balanced`` is the Bayes decision for balanced accuracy (the mean recall over classes) when the probabilities
are calibrated: it is the argmax of the probabilities the model would give if every class were equally common,
so a rare class is called whenever it is at least as likely, relative to how often it occurred, as the common
ones. For a binary model it is the threshold P(positive) ≥ π_positive. The probabilities themselves are not
changed: a sample's label may then be a class that is not its most probable one.

A multi-label model decides each label apart, as a binary model of its own: ``argmax`` calls a label present when
P(label) ≥ 0.5, ``balanced`` when P(label) ≥ π_label, its share of the training samples (the Bayes decision for
that label's balanced accuracy). Under argmax a label present in 3 % of the samples is called for almost no
sample, whatever its ranking (an ROC AUC of 0.83 with recall 0). ``auto`` chooses label by label, as it would for
a binary model of each (balanced where it scores strictly higher on the held-out predictions: a label with no
signal ties at 0.5 and stays at 0.5, where one rule for all labels called such a label for half the samples), and
a label with fewer than MIN_LABEL_EVENTS held-out positives or negatives stays at 0.5 under any rule: one positive
in 330 samples made its share 0.003, and the label was called for 1,371 of 3,800 new samples.

``auto`` (the default) takes ``balanced`` when it gives the higher balanced accuracy on the held-out
predictions training already makes (out-of-fold for an ensemble, the validation rows for one network), else
``argmax``. Choosing between two rules on the same predictions flatters the reported held-out figure a little;
``mlpcli cv`` makes the choice inside each fold, so its estimate is not flattered. On the ten tables of
``benchmarks/bench_accuracy.py`` (5-fold CV, seeds 0-2) ``auto`` was 0.011 above ``argmax`` on average (0.821
against 0.810; single cells +0.054, CSF proteins +0.026, image cells +0.021) and at most 0.006 below it on a set
(GSE7390 grade, within its fold-to-fold SD of 0.066), where ``balanced`` everywhere lost 0.026 on NCI60 (seeds 0-1;
8 cancer types of 5-9 cell lines: probabilities too rough to divide by shares).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["RULES", "CHOICES", "DECIDED", "MIN_LABEL_EVENTS", "Decision", "predicted_class", "balanced_accuracy", "choose",
           "threshold_field", "threshold_words", "label_threshold_words"]

RULES = ("argmax", "balanced")
CHOICES = ("auto",) + RULES
DECIDED = ("binary", "multiclass", "multilabel")  # the tasks a rule labels (regression has no labels to decide)
# A multi-label model's label needs this many held-out positives and as many negatives for a rule (and a temperature,
# ``calibration``) of its own: below, its balanced accuracy on the held-out rows is too rough to choose by
MIN_LABEL_EVENTS = 10


def predicted_class(task: str, proba: np.ndarray, threshold: "float | np.ndarray" = 0.5,
                    weights: np.ndarray | None = None) -> np.ndarray:
    """The class each row is given, (n,) int64 indices into the model's classes, from a binary or multiclass
    model's probabilities: P(positive) (n,) or (n, 1), or one column per class (n, k). Binary: the positive class
    when P(positive) >= ``threshold`` (at exactly 0.5 the positive one); multiclass: argmax of P * ``weights``
    (k,) (None: of P, the most probable class). Multi-label: (n, L) 0/1, each label present when its probability
    (n, L) >= ``threshold``, one for all labels or one per label (L,). The one rule ``predict``, ``evaluate``, the
    held-out files, the metrics and the estimators decide by."""
    if task == "binary":
        p = proba if proba.ndim == 1 else proba[:, -1]  # P(positive): the last column
        return (p >= threshold).astype(np.int64)
    if task == "multilabel":
        return (proba >= np.asarray(threshold, dtype=np.float64)).astype(np.int64)
    if weights is not None:
        proba = proba * weights
    return proba.argmax(axis=1).astype(np.int64)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn's balanced accuracy (the mean recall over the classes present in y_true) for integer
    labels, in NumPy (NaN without rows): the fit loop computes it twice an epoch, where sklearn's input checks
    cost more than a small network's epoch, and ``choose`` twice a model."""
    y_true, y_pred = np.asarray(y_true).astype(np.int64).ravel(), np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.size == 0:
        return float("nan")
    offset = min(int(y_true.min()), int(y_pred.min()))
    t, p = y_true - offset, y_pred - offset
    k = int(max(t.max(), p.max())) + 1
    support = np.bincount(t, minlength=k)
    hits = np.bincount(t[t == p], minlength=k)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


def label_balanced_accuracy(Y: np.ndarray, pred: np.ndarray) -> float:
    """A multi-label model's balanced accuracy: the mean over labels (columns of Y, pred (n, L) 0/1) of each label's
    balanced accuracy, over the labels whose truth holds both values (NaN when none does). A label without positives
    (or without negatives) among these rows has no balanced accuracy: its specificity alone scored 1.0 whenever
    nothing was called positive, and lifted the mean (0.650 over four labels read 0.720 with a constant fifth), where
    F1 macro and ROC AUC leave such a label out."""
    Y, pred = np.asarray(Y), np.asarray(pred)
    scores = [balanced_accuracy(Y[:, j], pred[:, j]) for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]
    return float(np.mean(scores)) if scores else float("nan")


def labels_without_both(Y: np.ndarray, names) -> list[str]:
    """The labels (columns of the 0/1 matrix Y) whose truth holds one value only: left out of
    ``label_balanced_accuracy``."""
    Y = np.asarray(Y)
    return [str(names[j]) for j in range(Y.shape[1]) if not 0 < Y[:, j].sum() < len(Y)]


@dataclass(frozen=True)
class Decision:
    """A classification model's decision rule: ``rule`` (RULES), the training class ``shares`` (k,) it divides
    by (each class's share of the training rows as the loss weighted them: equal under --class-weight balanced),
    how it was ``chosen`` ("auto": on the held-out predictions; "option": as --decision said), and each rule's
    held-out balanced accuracy (``held_out``: {"argmax": ..., "balanced": ...})."""

    rule: str = "argmax"
    shares: tuple[float, ...] | None = None
    chosen: str = "option"
    held_out: dict = field(default_factory=dict)
    # a multi-label model's: which labels the balanced rule calls at their share (the others at 0.5); None: all
    labels: tuple[bool, ...] | None = None

    def threshold(self, task: str) -> "float | np.ndarray":
        """A binary model's threshold on P(positive): π_positive for ``balanced``, else 0.5. A multi-label model's
        under ``balanced``: one per label (L,), its training share (0.5 for a label all or none of the training
        samples had: a share of 0 would call it for every sample)."""
        if self.rule != "balanced" or self.shares is None:
            return 0.5
        if task == "binary":
            return float(self.shares[-1])
        if task == "multilabel":
            s = np.asarray(self.shares, dtype=np.float64)
            on = np.ones(len(s), dtype=bool) if self.labels is None else np.asarray(self.labels, dtype=bool)
            return np.where(on & (s > 0) & (s < 1), s, 0.5)
        return 0.5

    def weights(self, task: str) -> np.ndarray | None:
        """A multiclass model's weights (k,) on the probabilities: 1 / π for ``balanced``, else None."""
        if task == "multiclass" and self.rule == "balanced" and self.shares is not None:
            return 1.0 / np.asarray(self.shares, dtype=np.float64)
        return None

    def classes(self, task: str, proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """``predicted_class`` by this rule; ``threshold`` (binary) overrides the rule's own."""
        return predicted_class(task, proba, self.threshold(task) if threshold is None else threshold,
                               self.weights(task))

    def with_rule(self, rule: str | None) -> "Decision":
        """The same shares under another rule (``predict --decision``); None: this one."""
        if rule is None or (rule == self.rule and self.labels is None):
            return self
        return Decision(rule=rule, shares=self.shares, chosen="option")  # every label by it (``predict --decision``)

    def with_shares(self, shares) -> "Decision":
        """The same rule, dividing by another class mix (k,): a cohort's, when the probabilities are moved to it
        (``prevalence``), so that balanced labels stay those of the training mix."""
        return Decision(rule=self.rule, shares=tuple(float(s) for s in shares), chosen=self.chosen,
                        held_out=dict(self.held_out), labels=self.labels)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "shares": None if self.shares is None else [float(s) for s in self.shares],
                "chosen": self.chosen, "held_out": dict(self.held_out),
                **({} if self.labels is None else {"labels": [bool(b) for b in self.labels]})}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Decision":
        if not d:
            return cls()
        shares = d.get("shares")
        labels = d.get("labels")
        return cls(rule=d["rule"], shares=None if shares is None else tuple(float(s) for s in shares),
                   chosen=d.get("chosen") or "option", held_out=dict(d.get("held_out") or {}),
                   labels=None if labels is None else tuple(bool(b) for b in labels))

    def describe(self, task: str | None = None, classes: list | None = None, held_out: str = "held-out",
                 cohort: str | None = None, weighted_by: str | None = None) -> str:
        """A few words for summaries (``train``'s and ``info``'s ``labels`` row). With the model's ``task`` and
        ``classes``, what the rule does to them, so that a label that is not the most probable class reads as the
        rule rather than a bug: "balanced (...): 'rare' when P(rare) >= 0.14, its training share, not 0.5, ...".
        ``held_out``: what auto chose on ("out-of-fold", "validation"). ``cohort``: the table a recalibrated model's
        shares are of (``mlpcli recalibrate``), instead of the training samples. ``weighted_by``: the options that
        weighted the loss by class ("--pos-weight"), whose weighted shares the rule divides by (a 15 % positive class
        under --pos-weight 5 has the share 0.47, which read as "its share of the training samples")."""
        share = "training share" if cohort is None else f"share in {cohort}"
        of = "its share of the training samples" if cohort is None else f"its share of {cohort}'s samples"
        if weighted_by and cohort is None:
            share = f"training share as {weighted_by} weighs it"
            of = f"its share of the training samples as {weighted_by} weighs them"
        what = {"argmax": "argmax (the most probable class)",
                "balanced": f"balanced (the most probable class relative to its {share})"}[self.rule]
        if task == "binary" and classes is not None and len(classes) == 2:
            neg, pos = (repr(str(c)) for c in classes)
            t = self.threshold(task)
            # equal shares (--class-weight balanced): "P >= 0.5, its share, not 0.5" would contradict itself
            if self.rule == "balanced" and math.isclose(t, 0.5, rel_tol=1e-9):
                what += (f": {pos} when P({pos[1:-1]}) >= 0.5, its {share}, equal to that of {neg}"
                         + (" (as the loss weighted them)" if cohort is None else "") + ": the same labels as argmax")
            elif self.rule == "balanced":
                # below 0.5 the rarer positive class is called against the odds; above, the rarer negative one
                rare, common = (pos, neg) if t < 0.5 else (neg, pos)
                what += (f": {pos} when P({pos[1:-1]}) >= {t:.3g}, {of}, not 0.5, so a "
                         f"sample can be called {rare} while {common} is more probable")
            else:
                what += f": {pos} when P({pos[1:-1]}) >= 0.5"
        elif task == "multiclass" and self.rule == "balanced" and classes is not None and self.shares is not None \
                and len(classes) == len(self.shares):
            order = sorted(range(len(classes)), key=lambda k: self.shares[k])  # the rarest first
            shown = ", ".join(f"{classes[k]} {100 * self.shares[k]:.2g} %" for k in order[:5])
            more = f" and {len(order) - 5} more" if len(order) > 5 else ""
            if math.isclose(self.shares[order[0]], self.shares[order[-1]], rel_tol=1e-9):
                # no class is rarer (--class-weight balanced weighs them equally): "called a rarer class" cannot happen
                what += (f": P(class) / share ({shown}{more}: equal, as the loss weighted them), the same labels as "
                         "argmax")
            else:
                what += (f": P(class) / share (rarest first: {shown}{more}), so a sample can be called a rarer class "
                         "than its most probable one")
        elif task == "multilabel":
            return self._describe_labels(classes, held_out, cohort)
        scores = self.held_out
        if not all(isinstance(scores.get(r), (int, float)) and math.isfinite(scores[r]) for r in RULES):
            scores = None  # none kept (a file of before), or not both: the sentence that compares them is left out
        other = "argmax" if self.rule == "balanced" else "balanced"
        if self.chosen == "auto" and scores:
            what += (f"; --decision auto chose it on the networks' own {held_out} predictions, balanced accuracy "
                     f"{scores[self.rule]:.3f} against {scores[other]:.3f} by {other}")
            if self.rule == "balanced":  # the reported figure is the better of two on the same rows
                what += " (chosen on the rows it is scored on, a little optimistic; `mlpcli cv` chooses per fold)"
        elif self.chosen == "option" and self.shares is not None:  # None: a file from before the rule was stored
            what += f" (--decision {self.rule}"
            if scores:  # the figures auto would have chosen by: a forced rule that loses is worth seeing
                what += (f"; {held_out} balanced accuracy {scores[self.rule]:.3f}, {scores[other]:.3f} by {other}"
                         + (", which --decision auto would have taken" if scores[other] > scores[self.rule] else ""))
            what += ")"
        return what


    def _describe_labels(self, labels: list | None, held_out: str, cohort: str | None = None) -> str:
        """``describe`` for a multi-label model: which labels are called at their share, the others at 0.5.
        ``cohort``: the table a recalibrated model's updated labels take their shares from."""
        share = "training share" if cohort is None else f"share (in {cohort} for a label recalibrated there)"
        if self.rule == "argmax" or self.shares is None:
            what = "argmax (each label present when P >= 0.5)"
        else:
            n = len(self.shares)
            t = self.threshold("multilabel")
            on = [bool(v != 0.5) for v in t]  # at 0.5: left by the rule, or its share as the loss weighted it
            if labels is None or len(labels) != n:
                what = f"balanced (each label present when P >= its {share})"
            elif not any(on):
                what = ("balanced, which calls every label at P >= 0.5 here (shares of 0.5 as the loss weighted them, "
                        "or too few held-out positives)")
            elif all(on):
                what = f"balanced (each label present when P >= its {share}: {threshold_words(t, labels)})"
            else:
                at = [j for j in range(n) if on[j]]
                half = [str(labels[j]) for j in range(n) if not on[j]]
                what = (f"balanced for {len(at)} of {n} labels (P >= its {share}: "
                        f"{threshold_words(t[at], [labels[j] for j in at])}); at P >= 0.5: "
                        f"{', '.join(half[:5])}{f' and {len(half) - 5} more' if len(half) > 5 else ''}")
        scores = self.held_out
        if not all(isinstance(scores.get(r), (int, float)) and math.isfinite(scores[r]) for r in RULES):
            return what
        if self.chosen == "auto":
            mine = scores.get("chosen", scores[self.rule])
            what += (f"; --decision auto chose label by label on the {held_out} predictions (a label with fewer than "
                     f"{MIN_LABEL_EVENTS} held-out positives or negatives stays at 0.5), balanced accuracy "
                     f"{mine:.3f} against {scores['argmax']:.3f} by argmax")
            if self.rule == "balanced":
                what += " (chosen on the rows it is scored on, a little optimistic; `mlpcli cv` chooses per fold)"
        elif self.shares is not None:
            what += (f" (--decision {self.rule}; {held_out} balanced accuracy {scores['balanced']:.3f} by the balanced "
                     f"rule, {scores['argmax']:.3f} by argmax)")
        return what


def _label_rules(Y: np.ndarray, proba: np.ndarray, shares: tuple, option: str) -> tuple[tuple[bool, ...], dict]:
    """A multi-label model's rule per label: which labels the balanced rule calls at their share, and the held-out
    balanced accuracies (mean over labels) of argmax, of the balanced rule on every label it may take, and of the
    choice. ``option`` "balanced": every label with MIN_LABEL_EVENTS held-out positives and negatives; "auto": those
    of them whose balanced accuracy is strictly higher by their share; "argmax": none."""
    Y = np.asarray(Y).reshape(proba.shape)
    positives = Y.sum(axis=0)
    eligible = (positives >= MIN_LABEL_EVENTS) & (len(Y) - positives >= MIN_LABEL_EVENTS)
    s = np.asarray(shares, dtype=np.float64)
    at_half = predicted_class("multilabel", proba, 0.5)
    at_share = predicted_class("multilabel", proba, np.where(eligible & (s > 0) & (s < 1), s, 0.5))
    gain = np.array([balanced_accuracy(Y[:, j], at_share[:, j]) - balanced_accuracy(Y[:, j], at_half[:, j])
                     if 0 < positives[j] < len(Y) else 0.0 for j in range(Y.shape[1])])
    on = {"argmax": np.zeros(len(s), dtype=bool), "balanced": eligible, "auto": eligible & (gain > 0)}[option]
    chosen = predicted_class("multilabel", proba, np.where(on & (s > 0) & (s < 1), s, 0.5))
    scores = {"argmax": label_balanced_accuracy(Y, at_half), "balanced": label_balanced_accuracy(Y, at_share),
              "chosen": label_balanced_accuracy(Y, chosen)}
    return tuple(bool(b) for b in on), scores


def choose(task: str, y: np.ndarray, proba: np.ndarray, shares: np.ndarray, option: str) -> Decision | None:
    """The decision rule a model trained with ``--decision option`` keeps. y (n,) the held-out rows' class
    indices, proba their calibrated probabilities (n, k) or P(positive) (n, 1); shares (k,) the training class
    shares, all > 0. Multi-label: y and proba (n, L), shares (L,) each label's share of positives, the rule chosen
    label by label (``_label_rules``). None for regression."""
    if task not in DECIDED:
        return None
    shares_t = tuple(float(s) for s in shares)
    if task == "multilabel":
        on, scores = _label_rules(y, proba, shares_t, option)
        return Decision(rule="balanced" if any(on) else "argmax", shares=shares_t,
                        chosen="auto" if option == "auto" else "option", held_out=scores, labels=on)
    # both rules' figures, also under a rule the option forces: the summary shows what the other would have scored
    scores = {rule: balanced_accuracy(y, Decision(rule, shares_t).classes(task, proba)) for rule in RULES}
    if option != "auto":
        return Decision(rule=option, shares=shares_t, chosen="option", held_out=scores)
    # strictly better, or argmax stays: a tie keeps the labels a reader expects (the most probable class)
    rule = "balanced" if scores["balanced"] > scores["argmax"] else "argmax"
    return Decision(rule=rule, shares=shares_t, chosen="auto", held_out=scores)


def threshold_field(threshold: "float | np.ndarray", labels, per_label: bool = False) -> "float | dict[str, float]":
    """A threshold as JSON gives it: a binary model's number, or with ``per_label`` (a multi-label model's) one per
    label {label: threshold}, also when every label has the same (0.5, --threshold): one type whatever the rule."""
    t = np.asarray(threshold, dtype=np.float64)
    if t.ndim == 0 and not per_label:
        return float(t)
    t = np.broadcast_to(t, (len(labels),))
    return {str(label): float(v) for label, v in zip(labels, t)}


def threshold_words(threshold: "float | np.ndarray", labels, shown: int = 5) -> str:
    """A threshold in a few words for a summary line: "0.5", or per label, lowest first, "rare 0.033, mutB 0.33,
    ... and 7 more" (the same for every label: one number)."""
    t = np.asarray(threshold, dtype=np.float64)
    if t.ndim == 0 or len(t) > 1 and np.all(t == t.flat[0]):
        return f"{float(t.flat[0]):.3g}"
    order = np.argsort(t, kind="stable")
    words = ", ".join(f"{labels[j]} {t[j]:.2g}" for j in order[:shown])
    return words + (f" and {len(order) - shown} more" if len(order) > shown else "")


def label_threshold_words(threshold: "float | np.ndarray", labels, rule: str | None = None,
                          by_rule: bool = True, cohort: str | None = None) -> str:
    """How a multi-label model's labels were called, for a title or a summary row: ``threshold`` one for all labels
    or one per label (L,), ``rule`` the decision rule that set it (None: argmax), ``by_rule`` False when
    --threshold set it; ``cohort``: the table a recalibrated model's updated labels take their shares from."""
    if not by_rule:
        return f"each label present when P >= {threshold_words(threshold, labels)} (--threshold)"
    if rule == "balanced":
        share = "training share" if cohort is None else f"share (in {cohort} for a label recalibrated there)"
        t = np.asarray(threshold, dtype=np.float64)
        half = t == 0.5
        if t.ndim == 1 and len(t) == len(labels) and half.any():
            return _labels_at_half_words(t, labels, half, share)
        return (f"each label present when P >= its {share} (the balanced decision rule: "
                f"{threshold_words(threshold, labels)})")
    return f"each label present when P >= {threshold_words(threshold, labels)}"


_AT_HALF_WHY = (f"the rule leaves a label there when training held out fewer than {MIN_LABEL_EVENTS} of its positives "
                "or negatives, too few to trust its share, or, under --decision auto, when its share scored no better")


def _labels_at_half_words(t: np.ndarray, labels, half: np.ndarray, share: str) -> str:
    """``label_threshold_words`` for a balanced rule that left some labels at 0.5: those labels named apart, with
    why. Listed among the shares ("B 0.38, C 0.5, A 0.52"), a rare label's 0.5 read as its share, where `train`'s
    summary said it was left there for want of held-out positives."""
    names = [str(label) for label in labels]
    left = [n for n, h in zip(names, half) if h]
    shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
    if half.all():
        return f"each label present when P >= 0.5 under the balanced decision rule: {_AT_HALF_WHY}"
    at = [j for j in range(len(t)) if not half[j]]
    return (f"each label present when P >= its {share} (the balanced decision rule: "
            f"{threshold_words(t[at], [names[j] for j in at])}); {shown} at P >= 0.5: {_AT_HALF_WHY}")
