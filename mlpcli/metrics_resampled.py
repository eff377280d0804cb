"""Every scalar metric of ``metrics.compute`` on many bootstrap resamples at once.

A resample draws units (patients; rows when there are none) with replacement: it is the table with each row
repeated as many times as its unit was drawn. With M (B, U) the multiplicities of the U units in B resamples
and u(i) the unit of row i, row i weighs W[b, i] = M[b, u(i)] in resample b, and each metric of the repeated
rows is a function of weighted sums:

    counts and per-row terms   M @ G, G (U, m) the terms summed per unit: confusion counts, log loss, Brier,
                               squared and absolute errors, ECE's sum of (correct - confidence) per bin
    ranks                      one sort of the scores, cumulative weights in that order: a row's average rank
                               among the repeated rows is (weight below its tie group) + (its group's weight + 1) / 2;
                               ROC AUC counts the negatives below each positive and half those tied with it;
                               average precision steps over the distinct scores as scikit-learn does
    R², Pearson, Spearman      weighted means, then weighted sums of centred products (two passes, as numpy's)

so that B resamples cost a few (B, n) array operations instead of B calls of scikit-learn (~30 ms each, most of
it input checks). Each value equals ``metrics.compute``'s on the repeated rows up to floating-point rounding, and
is NaN where that one is None (undefined), in the same cases: precision without a predicted positive, AUC and MCC
with one class in the truth, F1 of a class neither present nor predicted (left out of the macro mean; but a class
absent from the whole table's truth and predicted there counts 0 in every resample, as in the estimate: its
interval is of the same mean), R² and the
correlations of a constant column (a constant truth checked on its values: a mean that rounds off a repeated
value would leave a rounding residue as R²'s denominator).
"""

from __future__ import annotations

import numpy as np

from . import metrics

__all__ = ["ResampledMetrics", "unit_multiplicities"]

_CLIP = 1e-15  # metrics.compute's clip of probabilities for the log loss
_EPS = np.finfo(np.float64).eps  # scikit-learn's log_loss clips again, to [eps, 1 - eps]


def cluster_se(d: np.ndarray, groups: np.ndarray | None) -> float:
    """The standard error of the mean of ``d`` (n,), with the rows of one group (patient) as one cluster: the
    square root of the sum over groups of their summed deviations squared, over n (small-sample factor G / (G - 1))."""
    n = len(d)
    if n < 2:
        return 0.0
    e = d - d.mean()
    if groups is None:
        return float(np.sqrt(np.sum(e ** 2) / (n - 1) / n))
    sums = cluster_sums(e, groups)
    G = len(sums)
    return float(np.sqrt(G / (G - 1) * np.sum(sums ** 2)) / n) if G > 1 else 0.0


def cluster_sums(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(G,) the sums of ``values`` (n,) over each group's rows (a patient's rows share its noise)."""
    _, cluster = np.unique(np.asarray(groups), return_inverse=True)
    return np.bincount(cluster, weights=values)


def unit_multiplicities(picks: np.ndarray, n_units: int) -> np.ndarray:
    """(B, U) float: how many times each unit was drawn in each resample, from the drawn unit indices ``picks``
    (B, draws). A row at a time: its counts stay in the CPU caches (one bincount over all B x U cells was twice as
    slow at 10,000 units)."""
    M = np.empty((len(picks), n_units))
    for b, pick in enumerate(picks):
        M[b] = np.bincount(pick, minlength=n_units)
    return M


def _ece_codes(correct: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bins, correct - confidence), (n, decisions) each: a row's decisions (one, or one per label) by confidence
    bin, so that ECE = sum_b |sum of correct - confidence in bin b| / decisions, which is
    sum_b (n_b / n) |accuracy_b - confidence_b|."""
    correct = np.asarray(correct, dtype=np.float64).reshape(len(correct), -1)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(correct.shape)
    return metrics.confidence_bins(confidence), correct - confidence


class _Sorted:
    """One score column sorted once: the rows' units in that order and, per sorted position, the [first, last)
    positions of its tie group (equal scores)."""

    def __init__(self, score: np.ndarray, unit_of: np.ndarray):
        self.order = np.argsort(score, kind="stable")
        self.unit = unit_of[self.order]
        s = score[self.order]
        new = np.r_[True, s[1:] != s[:-1]]
        self.ties = not new.all()
        if self.ties:
            group = np.cumsum(new) - 1
            starts = np.flatnonzero(new)
            ends = np.r_[starts[1:], len(s)]
            self.first, self.last = starts[group], ends[group]

    def weights(self, M: np.ndarray) -> np.ndarray:
        """(B, n) the rows' weights, in sorted order, from the units' multiplicities M (B, U)."""
        return M[:, self.unit]

    def cumulative(self, Ws: np.ndarray) -> np.ndarray:
        """(B, n + 1) the weight of ``Ws`` (B, n, sorted) below each sorted position, and in all (last column)."""
        C = np.zeros((Ws.shape[0], Ws.shape[1] + 1))
        np.cumsum(Ws, axis=1, out=C[:, 1:])
        return C

    def below_and_through(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sorted position, the cumulative weight ``C`` (``cumulative``) strictly below its tie group, and
        through its tie group's end: (B, n) each."""
        if not self.ties:
            return C[:, :-1], C[:, 1:]
        return C[:, self.first], C[:, self.last]

    def average_ranks(self, M: np.ndarray) -> np.ndarray:
        """(B, n) each row's rank among the repeated rows (ties at their mean rank, as scipy's rankdata), in the
        rows' own order."""
        below, through = self.below_and_through(self.cumulative(self.weights(M)))
        ranks = np.empty_like(below)
        ranks[:, self.order] = (below + through + 1.0) / 2.0
        return ranks


def _roc_auc(Ws: np.ndarray, positive: np.ndarray, by_score: _Sorted) -> np.ndarray:
    """(B,) ROC AUC of the repeated rows, from their weights Ws (B, n) and ``positive`` (n,) bool in ``by_score``'s
    order: the Mann-Whitney U over positives x negatives, ties counted 1/2 (scikit-learn's trapezoidal area, and
    the one-vs-rest AUC of ``metrics``); NaN without a positive or a negative."""
    negative = (~positive).astype(np.float64)
    below, through = by_score.below_and_through(by_score.cumulative(Ws * negative))
    wpos = Ws * positive
    n_pos, n_neg = wpos.sum(axis=1), Ws @ negative
    u = np.einsum("bi,bi->b", wpos, below + through) / 2.0
    return metrics.ratio(u, n_pos * n_neg)


def _average_precision(Ws: np.ndarray, positive: np.ndarray, by_score: _Sorted) -> np.ndarray:
    """(B,) scikit-learn's average precision of the repeated rows (weights and ``positive`` as ``_roc_auc``'s):
    the sum over the distinct scores of the recall they add times the precision at or above them, i.e. over the
    positives of (weight / positives) x precision at their score; NaN without a positive (``metrics``' rule)."""
    wpos = Ws * positive
    C_all, C_pos = by_score.cumulative(Ws), by_score.cumulative(wpos)
    below_all, _ = by_score.below_and_through(C_all)
    below_pos, _ = by_score.below_and_through(C_pos)
    n_all, n_pos = C_all[:, -1:], C_pos[:, -1:]
    at_or_above = n_all - below_all  # >= the row's own weight: 0 only where that is 0, and the term with it
    precision = (n_pos - below_pos) / np.maximum(at_or_above, np.finfo(np.float64).tiny)
    return metrics.ratio(np.einsum("bi,bi->b", wpos, precision), n_pos[:, 0])


def _constant(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(B,) whether the rows a resample holds all have the same value of ``x`` (n,)."""
    held = W > 0
    return np.where(held, x, np.inf).min(axis=1) == np.where(held, x, -np.inf).max(axis=1)


def _centred(W: np.ndarray, x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(B, n) x minus its weighted mean in each resample."""
    return x - ((W @ x) / n)[:, None] if x.ndim == 1 else x - ((W * x).sum(axis=1) / n)[:, None]


def _pearson(W: np.ndarray, x: np.ndarray, y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(B,) weighted Pearson correlation of x and y ((n,) or (B, n)), clipped to [-1, 1] as scipy's."""
    xm, ym = _centred(W, x, n), _centred(W, y, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (W * xm * ym).sum(axis=1) / np.sqrt((W * xm * xm).sum(axis=1) * (W * ym * ym).sum(axis=1))
    return np.clip(r, -1.0, 1.0)


class ResampledMetrics:
    """The scalar metrics of ``metrics.compute(task, y, proba, classes, threshold)`` (those ``evaluation._scalars``
    keeps) on resamples of units, from their multiplicities.

    y, proba: as ``metrics.compute`` takes them, n rows; ``unit_of`` (n,): each row's unit in 0..n_units-1, every
    unit holding at least one row; ``weights`` (k,): a multiclass model's decision rule, as ``metrics.compute`` takes
    it. ``of(M)`` with M (B, n_units) gives {metric: (B,) float, NaN where undefined}."""

    def __init__(self, task: str, y: np.ndarray, proba: np.ndarray, threshold: float, unit_of: np.ndarray,
                 n_units: int, weights: np.ndarray | None = None):
        if task not in ("binary", "multiclass", "multilabel", "regression"):
            raise ValueError(f"unknown task {task!r}")
        self.task = task
        self.unit_of = np.asarray(unit_of, dtype=np.int64).reshape(-1)
        self.n_units = int(n_units)
        proba = np.asarray(proba, dtype=np.float64)
        if task == "binary":
            self._init_classes(y.reshape(-1).astype(np.int64), proba.reshape(-1, 1), threshold)
        elif task == "multiclass":
            self._init_classes(y.reshape(-1).astype(np.int64), proba, threshold, weights)
        elif task == "multilabel":
            self._init_multilabel(y.reshape(proba.shape).astype(np.int64), proba, threshold)
        else:
            self._init_regression(np.asarray(y, dtype=np.float64).reshape(proba.shape), proba)

    def _unit_sums(self, codes: np.ndarray, width: int, weights: np.ndarray | None = None) -> np.ndarray:
        """(U, width) per unit, the sum of ``weights`` (n, d) (default 1) over its rows' entries of each code
        (n, d) in 0..width-1: a unit's confusion counts, its correct - confidence per ECE bin, its per-row terms
        (code 0)."""
        codes = np.asarray(codes, dtype=np.int64).reshape(len(self.unit_of), -1)
        weights = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(codes.shape)
        out = np.zeros(self.n_units * width)
        for j in range(codes.shape[1]):
            out += np.bincount(self.unit_of * width + codes[:, j], None if weights is None else weights[:, j],
                               minlength=self.n_units * width)
        return out.reshape(self.n_units, width)

    def _row_sums(self, *terms: np.ndarray) -> np.ndarray:
        """(U, len(terms)) each per-row term (n,) summed over each unit's rows."""
        zero = np.zeros(len(self.unit_of), dtype=np.int64)
        return np.column_stack([self._unit_sums(zero, 1, t) for t in terms])

    # ── binary, multiclass ────────────────────────────────────────────────────────────────────────────────

    def _init_classes(self, y, P, threshold, weights=None):
        n = len(y)
        if self.task == "binary":
            p = P[:, 0]
            K, pred = 2, metrics.predicted_class("binary", p, threshold)
            p_clip = np.clip(p, _CLIP, 1 - _CLIP)
            # scikit-learn: [1 - p, p] clipped to [eps, 1 - eps], minus the log of the true column
            log_loss = -np.log(np.clip(np.where(y == 1, p_clip, 1 - p_clip), _EPS, 1 - _EPS))
            brier = (y - p) ** 2
            top = metrics.predicted_class("binary", p)
            bins, gap = _ece_codes(top == y, np.maximum(p, 1 - p))
            scores = [p]
        else:
            K = P.shape[1]
            pred = metrics.predicted_class("multiclass", P, weights=weights)
            top = pred if weights is None else metrics.predicted_class("multiclass", P)  # ECE: the most probable
            log_loss = metrics.class_log_loss_terms(y, P)
            onehot = np.zeros_like(P)
            onehot[np.arange(n), y] = 1.0
            brier = ((onehot - P) ** 2).sum(axis=1) * (0.5 if K < 3 else 1.0)  # scikit-learn's scale_by_half
            bins, gap = _ece_codes(top == y, P.max(axis=1))
            scores = [P[:, k] for k in range(K)]
        self.K = K
        # classes absent from the truth but predicted: F1 0 in the estimate (its macro mean counts them), so 0 in
        # every resample too, also one that draws none of those rows (it would drop them from the mean: a wider,
        # higher interval of another quantity)
        self._predicted_absent = (np.bincount(y, minlength=K) == 0) & (np.bincount(pred, minlength=K) > 0)
        self._G = np.concatenate([self._unit_sums(y * K + pred, K * K), self._row_sums(log_loss, brier),
                                  self._unit_sums(bins, metrics.ECE_BINS, gap)], axis=1)
        if self.task == "binary":  # events and expected events per unit
            self._events = self._row_sums(y.astype(np.float64), p)
        self._sorted = [_Sorted(s, self.unit_of) for s in scores]
        # each score's sort order: whether the row is of the class (binary: the positive class)
        self._positive = [(y == (1 if self.task == "binary" else k))[s.order] for k, s in enumerate(self._sorted)]

    def _classes_of(self, M):
        K = self.K
        S = M @ self._G  # (B, m)
        counted = metrics.confusion_scores(S[:, :K * K].reshape(-1, K, K))  # (B, true, predicted) counts
        log_loss, brier, ece = S[:, K * K], S[:, K * K + 1], S[:, K * K + 2:]
        true = counted["true"]
        n = true.sum(axis=1)
        out = {
            "accuracy": counted["accuracy"],
            "balanced_accuracy": counted["balanced_accuracy"],  # the classes present in the truth
            "mcc": counted["mcc"],
            "log_loss": log_loss / n,
            "brier": brier / n,
            "ece": np.abs(ece).sum(axis=1) / n,
        }
        f1 = counted["f1"]  # NaN: a class neither present nor predicted
        f1[:, self._predicted_absent] = 0.0
        if self.task == "binary":
            by_p, positive = self._sorted[0], self._positive[0]
            Ws = by_p.weights(M)
            observed, expected = (M @ self._events).T
            rate = observed / n
            with np.errstate(invalid="ignore", divide="ignore"):
                scaled = np.where(rate * (1 - rate) > 0, 1.0 - (brier / n) / (rate * (1 - rate)), np.nan)
            precision, recall = counted["precision"], counted["recall"]
            out.update(precision=precision[:, 1], recall=recall[:, 1], f1=f1[:, 1],
                       specificity=recall[:, 0], npv=precision[:, 0],
                       roc_auc=_roc_auc(Ws, positive, by_p), average_precision=_average_precision(Ws, positive, by_p),
                       brier_scaled=scaled, observed_expected=metrics.ratio(observed, expected))
            return out
        aucs = np.stack([_roc_auc(s.weights(M), pos, s) for s, pos in zip(self._sorted, self._positive)], axis=1)
        defined = (~np.isnan(aucs)).sum(axis=1)
        out.update(f1_macro=metrics.nanmean(f1), f1_weighted=(np.nan_to_num(f1) * true).sum(axis=1) / n,
                   roc_auc_ovr=np.where(defined > 1, metrics.nanmean(aucs), np.nan))  # the classes present, as metrics
        return out

    # ── multi-label ───────────────────────────────────────────────────────────────────────────────────────

    def _init_multilabel(self, Y, P, threshold):
        pred = metrics.predicted_class("multilabel", P, threshold)  # one threshold, or one per label
        Pc = np.clip(P, _CLIP, 1 - _CLIP)
        bce = -(Y * np.log(Pc) + (1 - Y) * np.log1p(-Pc)).sum(axis=1)
        at_half = P >= 0.5  # ECE judges the probabilities, not the thresholds (as metrics.compute)
        bins, gap = _ece_codes(at_half == Y, np.where(at_half, P, 1 - P))
        self.L = L = Y.shape[1]
        # the labels whose mean the full table's figures take (both values of the truth; for F1 a positive call or
        # truth): a resample is scored over the same labels or not at all — one without a rare label's positives
        # averaged the other labels alone, and lifted the interval's upper end (0.701 with 0.658-0.774, against
        # 0.657-0.739 over the resamples that held every label)
        self._both = (Y.sum(axis=0) > 0) & (Y.sum(axis=0) < len(Y))
        self._f1_defined = ((Y == 1) | (pred == 1)).any(axis=0)
        # per label: 0 TP, 1 FP, 2 FN, 3 TN
        codes = np.where(Y == 1, np.where(pred == 1, 0, 2), np.where(pred == 1, 1, 3))
        self._G = np.concatenate([self._unit_sums(codes * L + np.arange(L), 4 * L), self._row_sums(bce),
                                  self._unit_sums(bins, metrics.ECE_BINS, gap)], axis=1)

    def _multilabel_of(self, M):
        L = self.L
        S = M @ self._G
        tp, fp, fn, tn = (S[:, i * L:(i + 1) * L] for i in range(4))
        bce, ece = S[:, 4 * L], S[:, 4 * L + 1:]
        n = (tp + fp + fn + tn)[:, 0]
        micro_den = 2 * tp.sum(axis=1) + fp.sum(axis=1) + fn.sum(axis=1)
        # (B, L, 2): the recall of the 1s, of the 0s
        recalls = np.stack([metrics.ratio(tp, tp + fn), metrics.ratio(tn, tn + fp)], axis=-1)
        per_label = np.where(np.isnan(recalls).any(axis=-1), np.nan, recalls.mean(axis=-1))[:, self._both]
        f1 = metrics.ratio(2 * tp, 2 * tp + fp + fn)[:, self._f1_defined]
        return {
            "f1_micro": np.where(micro_den > 0, metrics.ratio(2 * tp.sum(axis=1), micro_den), 0.0),  # zero_division=0
            # over the full table's labels: NaN (not counted) for a resample lacking one (see _init_multilabel)
            "f1_macro": f1.mean(axis=1) if f1.shape[1] else np.full(len(M), np.nan),
            "hamming_loss": (fp + fn).sum(axis=1) / (n * L),
            # a label whose resample lacks one value has no balanced accuracy (``decision.label_balanced_accuracy``)
            "balanced_accuracy": per_label.mean(axis=1) if per_label.shape[1] else np.full(len(M), np.nan),
            "log_loss": bce / (n * L),
            "ece": np.abs(ece).sum(axis=1) / (n * L),
        }

    # ── regression ────────────────────────────────────────────────────────────────────────────────────────

    def _init_regression(self, Y, P):
        self.Y, self.P = Y, P
        self._G = self._row_sums(((Y - P) ** 2).sum(axis=1), np.abs(Y - P).sum(axis=1),
                                 *((Y - P) ** 2).T)
        if Y.shape[1] == 1:
            self._sorted = [_Sorted(Y[:, 0], self.unit_of), _Sorted(P[:, 0], self.unit_of)]

    def _regression_of(self, M):
        k = self.Y.shape[1]
        S = M @ self._G
        W = M[:, self.unit_of]  # (B, n) each row's weight
        n = W.sum(axis=1)
        out = {"rmse": np.sqrt(S[:, 0] / (n * k)), "mae": S[:, 1] / (n * k)}
        r2 = np.empty((len(M), k))
        for j in range(k):
            ym = _centred(W, self.Y[:, j], n)
            with np.errstate(invalid="ignore", divide="ignore"):
                r2[:, j] = 1.0 - S[:, 2 + j] / np.einsum("bi,bi->b", W * ym, ym)
            r2[_constant(W, self.Y[:, j]), j] = np.nan  # scikit-learn's -inf or 0/0 (force_finite=False): None
        if k > 1:
            out["r2"] = metrics.nanmean(r2)  # the mean over the targets whose truth varies
            out["target_rmse"] = np.sqrt(S[:, 2:] / n[:, None])  # (B, k): each target's, in its own units
            return out
        y, p = self.Y[:, 0], self.P[:, 0]
        undefined = _constant(W, y) | _constant(W, p)
        out["r2"] = r2[:, 0]
        out["pearson_r"] = np.where(undefined, np.nan, _pearson(W, y, p, n))
        ranks_y, ranks_p = (s.average_ranks(M) for s in self._sorted)
        out["spearman_r"] = np.where(undefined, np.nan, _pearson(W, ranks_y, ranks_p, n))
        return out

    # ──────────────────────────────────────────────────────────────────────────────────────────────────────

    def of(self, M: np.ndarray) -> dict[str, np.ndarray]:
        """{metric: (B,)} for the resamples of multiplicities M (B, n_units); NaN where undefined. Several regression
        targets add ``target_rmse`` (B, k), each target's RMSE."""
        M = np.asarray(M, dtype=np.float64)
        if self.task == "multilabel":
            return self._multilabel_of(M)
        if self.task == "regression":
            return self._regression_of(M)
        return self._classes_of(M)
