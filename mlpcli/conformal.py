"""Conformal prediction sets from the held-out scores of training (NumPy only).

A prediction set C(x) is the classes whose nonconformity score on x is no larger than what the held-out
calibration rows needed. Split conformal (Vovk et al.; Angelopoulos & Bates, "A gentle introduction to
conformal prediction", 2021): with n calibration scores s_1..s_n of rows exchangeable with the new one,

    y ∈ C(x)   ⟺   #{i : s_i < s(x, y)} < level · (n + 1)

and P(Y ∈ C(X)) ≥ level, over the draw of the calibration rows and the new one (marginal coverage).

Scores (both stored, so predict chooses):
  aps  adaptive prediction sets (Romano, Sesia & Candès 2020): the probability mass of the classes ranked
       above y plus u · p_y, u uniform in [0, 1); the set is the most probable classes up to the mass the
       level needs, so it grows on hard samples. The u breaks the ties that make non-randomised APS useless
       on a good model (a binary model's second class always in the set; a confident model's sets padded
       with classes of probability 1e-7). mlpcli draws u from a hash of the sample's own model outputs
       (``uniform_hash``), so a sample gets the same set in every run. The u also empties sets: the top
       class's score is u · p_top, so a sample whose p_top exceeds the level's threshold loses even its top
       class with probability 1 − threshold / p_top — a random share of the *confident* samples, whatever
       the model's accuracy (accuracy 0.68: 2.9 % of sets empty at 0.8, 0.7 % at 0.9), never an uncertain
       one's.
  lac  least ambiguous set-valued classifier (Sadinle, Lei & Wasserman 2019): 1 − p_y; the set is the
       classes whose probability reaches a threshold; empty when no class is probable enough.
Scores are stored in a form that keeps tiny tails apart (APS: −(mass ranked below y) = score − 1; LAC: the
mass of the other classes = 1 − p_y), so confident rows do not all round to the same float.

Cross-fitted ensembles (CV+, Romano et al. 2020, algorithm 2): each calibration row's score comes from the
member that never saw its patient, and a new sample's score for class y is taken *under that same member*
before the comparison, so both sides of the inequality come from one network:

    y ∈ C(x)   ⟺   Σ_i w_i · 1[s_i < s_{k(i)}(x, y)] < level · (W + 1),     W = Σ_i w_i

One network (``--folds 1``) is ordinary split conformal on its validation rows. Mondrian (class-conditional)
sets use only the calibration rows of class y for class y, which gives coverage ≥ level within every class.

Groups: rows of one patient are not exchangeable with each other, so each row weighs 1 / (its patient's
rows) and W counts patients (the pooled-CDF method of Dunn, Wasserman & Ramdas 2022): every patient counts
once whatever their number of samples, and the guarantee is for a new patient's sample.

A new population (another site, platform or protocol) is not exchangeable with the training rows, so the
training calibration promises nothing there. A labelled cohort of that population (``mlpcli recalibrate``)
gives calibration rows that are: its scores (source "cohort", ``calibrate_cohort``) are taken under the whole
model — the members' mean probability at the model's temperature and after the cohort's own recalibration,
the probabilities ``predict`` reports — and a new sample is scored by the same probabilities (``SetPredictor``
with ``model_proba``): split conformal for that population, each patient counting once as above. The
recalibration (at most k + 1 numbers) is fitted on those same rows, so each row's score is taken under the update
refitted without its patient (``predict.recalibrate``), as a new sample's is under one that never saw it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SCORES", "SOURCES", "COHORT", "CONFORMAL_CHOICES", "SET_SEPARATOR", "MAX_ROWS",
           "ConformalCalibration", "SetPredictor",
           "class_probabilities", "label_scores", "calibrate", "calibrate_cohort", "group_weights", "uniform_hash",
           "format_sets"]

SCORES = ("aps", "lac")
# Where a model's calibration rows come from: held out of training (the members', a validation table's, or the
# members' beside a --refit network), or a labelled cohort of a new population scored by the whole model
COHORT = "cohort"
# ``recalibrate --conformal``: the sets of the written model from the labelled cohort, or kept from training
CONFORMAL_CHOICES = (COHORT, "training")
SOURCES = ("out-of-fold", "validation", "refit", COHORT)
# Between the classes of a prediction set in predict's pred_set column ("A|B"): a class name must not hold it.
SET_SEPARATOR = "|"
# Calibration rows a model stores at most: a seeded random subsample beyond (a subsample of exchangeable
# rows is exchangeable, so the guarantee holds with n = MAX_ROWS). 100,000 rows are 2.6 MB in the file.
MAX_ROWS = 100_000
# A stored score may exceed its range by rounding, no more.
SCORE_SLACK = 1e-9
# The comparison count < level · (W + 1) allows for rounding: the counts are sums of patient weights 1 / k, which
# land a few ulps off their exact value (nine patients of three samples sum to 8.999999999999998), so a count
# equal to the bound, whose class the set leaves out, would be let in, and at W = level / (1 − level) patients
# the class would be in every set while ``trivial`` says it is not. The slack bounds the rounding of a sum of
# n weights (n ulps of the total), far below the gap between a count and a bound that truly differ.
COUNT_SLACK_ULPS = 8.0


def class_probabilities(logits: np.ndarray, link: str, temperature: float | None) -> np.ndarray:
    """One member's raw outputs (n, k) -> class probabilities (n, C) float64 at the model's temperature.

    softmax: softmax(z / T). sigmoid (a binary model's one output z): [σ(−z/T), σ(z/T)], each computed from
    z so the smaller one keeps its digits (1 − p would round a confident row's tail to 0)."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature is not None:
        z = z / temperature
    if link == "sigmoid":
        from .engine.functional import sigmoid

        return np.column_stack([sigmoid(-z[:, 0]), sigmoid(z[:, 0])])
    from .engine.functional import softmax

    return softmax(z)


# The outputs are put on a grid of 2^-12 before they are hashed: another machine's BLAS kernel (or another thread
# count) rounds a logit differently in its last bits, which redrew u for almost every sample (98 of 611 prediction
# sets changed where the probabilities moved by 2e-7); a difference that small crosses a step of the grid about once
# in 4,000 values.
HASH_GRID = 2.0 ** 12


def uniform_hash(rows: np.ndarray) -> np.ndarray:
    """(n,) numbers in [0, 1) that look uniform and independent, from the bits of each row of ``rows`` (n, k) on a
    grid of 1 / HASH_GRID (splitmix64 over the float64 words): the u of randomised APS, the same for the same
    outputs, and for outputs that differ only in rounding."""
    grid = np.round(np.asarray(rows, dtype=np.float64) * HASH_GRID) + 0.0  # + 0.0: -0.0 and 0.0 hash alike
    bits = np.ascontiguousarray(grid, dtype=np.float64).view(np.uint64).reshape(len(rows), -1)
    h = np.full(len(rows), 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(bits.shape[1]):
            h ^= bits[:, j]
            h += np.uint64(0x9E3779B97F4A7C15)
            h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


def label_scores(P: np.ndarray, score: str, u: np.ndarray | None = None) -> np.ndarray:
    """Nonconformity score of every class (n, C) for class probabilities P (n, C); larger = less conforming.

    aps: −(mass of the classes ranked below y + (1 − u) p_y) (= the APS score − 1; ties ranked by class
      index); u (n,) in [0, 1), None for the non-randomised score (u = 1);
    lac: mass of the classes other than y (= 1 − p_y)."""
    P = np.asarray(P, dtype=np.float64)
    if score == "lac":
        if P.shape[1] == 2:
            return P[:, ::-1].copy()
        rest = P.sum(axis=1, keepdims=True) - P
        top = P.argmax(axis=1)
        others = P.copy()
        others[np.arange(len(P)), top] = 0.0
        rest[np.arange(len(P)), top] = others.sum(axis=1)  # the top class's tail summed, not 1 − p rounded
        return rest
    if score != "aps":
        raise ValueError(f"unknown conformity score {score!r}")
    order = np.argsort(-P, axis=1, kind="stable")  # most probable first
    ranked = np.take_along_axis(P, order, axis=1)
    # mass strictly below each rank, summed from the least probable up so small tails stay exact
    below = np.zeros_like(ranked)
    below[:, :-1] = np.cumsum(ranked[:, :0:-1], axis=1)[:, ::-1]
    if u is not None:
        below += (1.0 - np.asarray(u, dtype=np.float64))[:, None] * ranked
    out = np.empty_like(P)
    np.put_along_axis(out, order, -below, axis=1)
    return out


def group_weights(groups: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) weights 1 / (rows of the row's group); ones without groups."""
    if groups is None:
        return np.ones(n)
    _, inverse, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse.reshape(-1)]


@dataclass
class ConformalCalibration:
    """The held-out scores a model keeps for its prediction sets (one entry per calibration row)."""

    aps: np.ndarray  # (n,) float64, in [-1, 0]: −(held-out mass ranked below the true class + (1 − u) p_true)
    lac: np.ndarray  # (n,) float64, in [0, 1]: 1 − held-out probability of the true class
    label: np.ndarray  # (n,) int64: the true class index
    member: np.ndarray  # (n,) int64: the model member whose held-out prediction the scores are
    weight: np.ndarray  # (n,) float64 in (0, 1]: 1 / rows of the row's patient (1 without groups)
    source: str  # "out-of-fold" (CV+ across members), "validation" (one network), "refit" (see below), "cohort"
    n_rows: int = 0  # held-out rows before any subsampling
    cohort: dict | None = None  # source "cohort": the table (data, sha256, n, patients), as the recalibration's

    @property
    def on_model_proba(self) -> bool:
        """Whether the scores are of the whole model's probabilities (a cohort's), not of each member's outputs."""
        return self.source == COHORT

    def __post_init__(self):
        if not self.n_rows:
            self.n_rows = int(len(self.label))

    @property
    def n(self) -> int:
        return int(len(self.label))

    @property
    def patients(self) -> int | float:
        """The patients the scores count (their weights' sum): a whole number as an int (a sum of 1 / rows per patient
        is 39.99999999999999 for 40), else rounded to 6 decimals (the weights of a subsample beyond MAX_ROWS rows)."""
        total = float(self.weight.sum())
        return int(round(total)) if abs(total - round(total)) < 1e-6 else round(total, 6)

    def describe(self) -> dict:
        """JSON-able summary (model.json's ``conformal`` field, besides the arrays)."""
        return {"n": self.n, "n_rows": int(self.n_rows), "source": self.source,
                "patients": float(self.weight.sum()), "weighted": bool(np.any(self.weight < 1)),
                "members": int(self.member.max()) + 1 if self.n else 0, "scores": list(SCORES),
                **({"cohort": self.cohort} if self.cohort is not None else {})}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"aps": self.aps, "lac": self.lac, "label": self.label, "member": self.member, "weight": self.weight}

    def class_mix(self, n_classes: int) -> np.ndarray:
        """(C,) each class's share of the calibration rows as their weights count them (each patient once): the
        mix the sets' guarantee is for, which a cohort's mix is weighed against (``label_shift_weights``)."""
        totals = np.bincount(self.label, weights=self.weight, minlength=n_classes)[:n_classes]
        return totals / max(float(totals.sum()), np.finfo(np.float64).tiny)

    def label_shift_weights(self, cohort: np.ndarray) -> np.ndarray:
        """(C,) w_c = the cohort's share of class c / its share of the calibration rows (``class_mix``): the
        weights of ``SetPredictor(label_weights=)`` for a cohort of that mix. Not the training mix the probabilities
        carry: under class weights (--class-weight balanced) that is equal shares, while the held-out rows keep
        the table's own mix (a 0.8 / 0.1 / 0.1 table weighed by equal shares covered 0.862 at 0.9). A class without
        calibration rows gets an infinite weight: every set holds it, as no score can rule it out."""
        mix = self.class_mix(len(cohort))
        cohort = np.asarray(cohort, dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.where(mix > 0, cohort / np.where(mix > 0, mix, 1.0), np.inf)


def calibrate(logits: np.ndarray, y: np.ndarray, member: np.ndarray, groups: np.ndarray | None, link: str,
              temperature: float | None, source: str, seed: int = 0) -> ConformalCalibration:
    """Calibration scores from held-out raw outputs ``logits`` (n, k) of the members ``member`` (n,) for
    the true classes ``y`` (n,), the same probabilities the model reports (its temperature). More than
    MAX_ROWS rows: a seeded random subsample (weights computed on all rows first)."""
    return _scored(class_probabilities(logits, link, temperature), y, groups, logits, member, source, seed)


def calibrate_cohort(P: np.ndarray, y: np.ndarray, groups: np.ndarray | None, first_member: np.ndarray,
                     cohort: dict | None = None, seed: int = 0) -> ConformalCalibration:
    """Calibration scores of a labelled cohort of a new population from the model's own class probabilities P
    (n, C) on it (the members' mean at the model's temperature, after its recalibration: what ``predict`` reports
    before any --prevalence) and the true classes y (n,); ``groups`` (n,) its patients or None; ``first_member``
    (n, k) the model's first member's raw outputs on the rows, which APS's u is drawn from (``uniform_hash``), as for
    every new sample: not the probabilities, which a confident model puts at 1 - 1e-9 or at 1.0 exactly, where
    thousands of samples shared one u and APS sets stopped following the level (0.989 covered at 0.8, 0.9 and 0.95
    alike). Source "cohort": ``SetPredictor`` scores new samples by the same probabilities. ``cohort``: what the table
    was (data, sha256, n, patients), kept with the scores. More than MAX_ROWS rows: a seeded subsample."""
    return _scored(np.asarray(P, dtype=np.float64), y, groups, first_member, np.zeros(len(y), dtype=np.int64), COHORT,
                   seed, cohort)


def _scored(P: np.ndarray, y, groups, draws: np.ndarray, member, source: str, seed: int,
            cohort: dict | None = None) -> ConformalCalibration:
    """The calibration of rows of class probabilities P (n, C) with true classes y (n,): their APS (u drawn from the
    rows of ``draws`` (n, k), ``uniform_hash``) and LAC scores, each row's ``member`` and patient weight; more than
    MAX_ROWS rows: a seeded random subsample (the weights computed on all rows first)."""
    y = np.asarray(y, dtype=np.int64)
    rows = np.arange(len(y))
    w = group_weights(groups, len(y))
    if len(y) > MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(y), MAX_ROWS, replace=False))
    u = uniform_hash(np.asarray(draws, dtype=np.float64)[rows])
    aps = label_scores(P[rows], "aps", u)[np.arange(len(rows)), y[rows]]
    lac = label_scores(P[rows], "lac")[np.arange(len(rows)), y[rows]]
    return ConformalCalibration(aps=aps, lac=lac, label=y[rows], member=np.asarray(member, dtype=np.int64)[rows],
                                weight=w[rows], source=source, n_rows=len(y), cohort=cohort)


class _Ranker:
    """Weighted count of calibration scores strictly below t: sorted scores and their cumulative weights."""

    def __init__(self, scores: np.ndarray, weights: np.ndarray):
        order = np.argsort(scores, kind="stable")
        self.scores = scores[order]
        self.cum = np.concatenate([[0.0], np.cumsum(weights[order])])

    def below(self, t: np.ndarray) -> np.ndarray:
        return self.cum[np.searchsorted(self.scores, t, side="left")]


class SetPredictor:
    """Prediction sets at one ``level`` for one score, marginal or Mondrian, from a model's calibration.

    ``sets(member_logits, model_proba)`` takes each member's raw outputs for a block of rows (or, for a cohort's
    calibration, the model's own class probabilities) and returns the (m, C) membership; its cost is a sort of C
    classes and a binary search per member, row and class.
    ``label_weights`` (C,): a cohort of another class mix, w_c = its share of class c / the calibration rows'
    share (``ConformalCalibration.label_shift_weights``; ``prevalence``); the scores stay those of the model's own
    probabilities, on both sides."""

    def __init__(self, cal: ConformalCalibration, n_classes: int, n_members: int, link: str,
                 temperature: float | None, level: float, score: str = "aps", mondrian: bool = False,
                 label_weights: np.ndarray | None = None):
        if score not in SCORES:
            raise ValueError(f"unknown conformity score {score!r}")
        self.level, self.score, self.mondrian = float(level), score, bool(mondrian)
        self.link, self.temperature, self.n_classes = link, temperature, n_classes
        self.n_rows = cal.n
        self.on_model_proba = cal.on_model_proba
        s = cal.aps if score == "aps" else cal.lac
        # --refit ships one network; rows held out by members it does not have are compared with it
        member = np.where(cal.member < n_members, cal.member, 0)
        self.members = sorted(set(member.tolist()))
        if mondrian:
            self.rankers = {(k, c): _Ranker(s[(member == k) & (cal.label == c)], cal.weight[(member == k) & (cal.label == c)])
                            for k in self.members for c in range(n_classes)}
            totals = np.bincount(cal.label, weights=cal.weight, minlength=n_classes)[:n_classes]
            self.bound = self.level * (totals + 1.0)  # (C,)
            self.total = totals
        else:
            # label shift (``prevalence``): a calibration row weighs w of its class, the new sample w of the class
            # tested (Podkopaev & Ramdas 2021); w = 1 for the training mix. Mondrian sets need none: within a
            # class every weight, the new sample's too, is the same w, and it cancels.
            lw = np.ones(n_classes) if label_weights is None else np.asarray(label_weights, dtype=np.float64)
            weight = cal.weight * lw[cal.label]  # finite: a class of infinite weight has no calibration rows
            self.rankers = {k: _Ranker(s[member == k], weight[member == k]) for k in self.members}
            self.total = float(weight.sum())
            self.bound = self.level * (self.total + lw)

    @property
    def _cut(self) -> np.ndarray:
        """(C,) the bound a class's count must stay below, less the rounding of a sum of the calibration
        weights (COUNT_SLACK_ULPS). At a level so small that the slack would reach 0, the bound itself: below it
        only a count of 0, which is exact (a sample below every calibration score keeps every class)."""
        finite = np.isfinite(self.bound)  # an infinite bound (a class without calibration rows) needs no slack
        slack = COUNT_SLACK_ULPS * np.finfo(np.float64).eps * (self.n_rows + 1.0) * (1.0 + np.where(finite, self.bound, 0.0))
        cut = np.where(finite, self.bound - slack, self.bound)
        return np.where(cut > 0, cut, self.bound)

    @property
    def trivial(self) -> np.ndarray:
        """(C,) bool: classes every set includes, because the level needs more calibration rows (patients)
        than there are: level · (W + 1) > W (a sample beyond every calibration score counts W)."""
        return np.asarray(self.total) < self._cut

    def sets(self, member_logits: list[np.ndarray], model_proba: np.ndarray | None = None) -> np.ndarray:
        """(m, C) bool membership for one block, from each model member's raw outputs (m, k); for a cohort's
        calibration (``on_model_proba``) from the model's own class probabilities ``model_proba`` (m, C) instead
        (APS's u still from the first member's outputs)."""
        u = uniform_hash(member_logits[0]) if self.score == "aps" else None  # one u per sample, as in CV+
        if self.on_model_proba:  # (u from the first member's outputs still: unbounded, unlike the probabilities)
            if model_proba is None:
                raise ValueError("a cohort's calibration scores the model's own probabilities: pass model_proba")
            P = np.asarray(model_proba, dtype=np.float64)
            return self._counted({0: label_scores(P, self.score, u)}, len(P))
        return self._counted({k: label_scores(class_probabilities(member_logits[k], self.link, self.temperature),
                                              self.score, u) for k in self.members}, member_logits[0].shape[0])

    def _counted(self, scores: dict[int, np.ndarray], m: int) -> np.ndarray:
        """(m, C) membership from each member's scores (m, C) of the block's rows."""
        rank = np.zeros((m, self.n_classes))
        for k, S in scores.items():
            if self.mondrian:
                for c in range(self.n_classes):
                    rank[:, c] += self.rankers[(k, c)].below(S[:, c])
            else:
                rank += self.rankers[k].below(S.ravel()).reshape(S.shape)
        return rank < self._cut


def format_sets(members: np.ndarray, classes: list) -> np.ndarray:
    """(m, C) membership -> (m,) object array of "A|B" strings ("" for an empty set), classes in model order."""
    names = [str(c) for c in classes]
    out = np.empty(members.shape[0], dtype=object)
    for i, row in enumerate(members):
        out[i] = SET_SEPARATOR.join(names[j] for j in np.flatnonzero(row))
    return out
