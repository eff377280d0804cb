"""Permutation importance (Breiman 2001; scikit-learn's ``permutation_importance`` algorithm): a feature's
values are shuffled across the samples ``repeats`` times and the drop of the score is its importance,
per class: with ``scoring="balanced_accuracy"`` the drop of the class's recall (balanced accuracy is the
mean recall, so the mean of these drops is its drop), with ``"log_loss"`` (the default) the rise of the
mean log loss of the class's samples. Balanced accuracy moves in steps of one sample: with hundreds of
genes carrying each subtype's signal, shuffling any single one of them rarely flips a prediction, and most
genes score exactly 0 (on the sample data its top 20 are mostly ties); the log loss sees every change of
the probabilities. Computed
through the first Dense layer: shuffling one feature changes the first layer's outputs by a rank-one term,
so a shuffled feature costs a pass through the small layers only. Honest only on held-out samples; genes
that carry the same signal share their importance (shuffling one leaves the others to carry it).
"""

from __future__ import annotations

import zlib
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..model_io import Model
from .attribution import TargetOutput, target_scales
from .labels import label_indices, label_matrix, target_values


SCORINGS = ("log_loss", "balanced_accuracy")
DEFAULT_REPEATS = 5
_PERM_BYTES = 32 << 20  # first-layer outputs of the shuffled copies handled at a time


def _recalls(pred: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class recall (..., k) of predictions pred (..., n) against y (n,); NaN for absent classes."""
    support = np.bincount(y, minlength=n_classes).astype(np.float64)
    hits = np.stack([((pred == c) & (y == c)).sum(axis=-1) for c in range(n_classes)], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, hits / support, np.nan)


def _softmax0(Z: np.ndarray) -> np.ndarray:
    """Softmax over the first axis (the classes): a reduction over a short last axis is ten times slower."""
    E = np.exp(Z - Z.max(axis=0))
    E /= E.sum(axis=0)
    return E


def _probabilities_cm(out_fn: TargetOutput, logit_sets: list[np.ndarray]) -> np.ndarray:
    """The model's probabilities, class-major (k, ...), from each member's logits (k, ...): the members'
    mean probability calibrated as ``calibration.temper`` does it, and recalibrated for a population as
    ``Model.recalibrated`` does it (so, as predict gives them)."""
    from ..engine.functional import sigmoid

    soft = out_fn.link == "softmax"
    P = np.mean([_softmax0(Z) if soft else sigmoid(Z) for Z in logit_sets], axis=0)
    T = out_fn.T
    if out_fn.intercept is not None:  # temperature and update together: link(s g(P) + a), s = slope / T
        column = [-1] + [1] * (P.ndim - 1)  # along the first (class-major) axis
        a = out_fn.intercept.reshape(column)
        if soft:
            return _softmax0(out_fn.slope * np.log(np.clip(P, 1e-12, 1.0)) + a)
        Q = np.clip(P, 1e-12, 1 - 1e-12)
        s = np.asarray(out_fn.slope, dtype=np.float64).reshape(column) if np.ndim(out_fn.slope) else out_fn.slope
        return sigmoid(s * (np.log(Q) - np.log1p(-Q)) + (a if out_fn.per_label else a[-1]))
    if T is None:
        return P
    if soft:
        return _softmax0(np.log(np.clip(P, 1e-12, 1.0)) / T)
    if np.ndim(T) == 1:  # a multi-label model's, one per label: along the first (class-major) axis
        T = np.asarray(T, dtype=np.float64).reshape(-1, *[1] * (P.ndim - 1))
    Q = np.clip(P, 1e-12, 1 - 1e-12)
    return sigmoid((np.log(Q) - np.log1p(-Q)) / T)


def _class_scores(model: Model, P: np.ndarray, y: np.ndarray, scoring: str) -> np.ndarray:
    """Per-class score (..., k), higher is better, of class-major probabilities P (k_out, ..., n): the class's
    recall with the labels the model's decision rule gives (``Model.decider``, as ``predict`` and ``evaluate``
    label: under the balanced rule a rare class's recall, and the drop a gene's shuffle makes in it, were those of
    argmax, about half) — balanced accuracy is their mean — or minus the mean log loss of its samples (log loss is
    their sample-weighted mean)."""
    k = len(model.classes)
    if scoring == "balanced_accuracy":
        # the model's own rule (``Decision.classes``) on the rows (n', k), n' every shuffle's samples
        rows = np.moveaxis(P, 0, -1).reshape(-1, P.shape[0])
        pred = model.predict_classes(rows[:, -1] if model.task == "binary" else rows).reshape(P.shape[1:])
        return _recalls(pred, y, k)
    if P.shape[0] == 1:  # binary sigmoid: P(positive)
        p_true = np.where(y == 1, P[0], 1.0 - P[0])
    else:
        p_true = np.take_along_axis(P, np.broadcast_to(y, (1, *P.shape[1:])), axis=0)[0]
    logp = np.log(np.clip(p_true, 1e-15, 1.0))
    support = np.bincount(y, minlength=k).astype(np.float64)
    sums = np.stack([logp[..., y == c].sum(axis=-1) for c in range(k)], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, sums / support, np.nan)


def _label_scores(model: Model, P: np.ndarray, Y: np.ndarray, scoring: str) -> np.ndarray:
    """Per-label score (..., L), higher is better, of label-major probabilities P (L, ..., n) against Y (n, L) 0/1:
    the label's balanced accuracy at the threshold of the model's decision rule (the mean of its positives' and
    negatives' recall; NaN without one or the other; the multi-label balanced accuracy is their mean), or minus its
    mean binary log loss over every sample (the multi-label log loss is their mean)."""
    Y = Y.T.reshape(Y.shape[1], *[1] * (P.ndim - 2), Y.shape[0]).astype(bool)  # (L, 1.., n)
    if scoring == "balanced_accuracy":
        threshold = np.broadcast_to(np.asarray(model.decider.threshold(model.task), dtype=np.float64), (len(Y),))
        pred = P >= threshold.reshape(-1, *[1] * (P.ndim - 1))
        n_pos, n_neg = Y.sum(axis=-1), (~Y).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = ((pred & Y).sum(axis=-1) / n_pos + (~pred & ~Y).sum(axis=-1) / n_neg) / 2
        score = np.where((n_pos > 0) & (n_neg > 0), score, np.nan)
    else:
        score = np.mean(np.log(np.clip(np.where(Y, P, 1.0 - P), 1e-15, 1.0)), axis=-1)
    return np.moveaxis(score, 0, -1)


def feature_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of a feature's shuffles in ``permutation_importance``: seeded by ``seed`` and the feature's
    name (CRC-32 of its UTF-8 text), so a table with its columns in another order gets the same importances."""
    return np.random.default_rng([int(seed), zlib.crc32(str(name).encode("utf-8"))])


class _Shuffles:
    """Each member's raw outputs with one feature shuffled at a time, ``repeats`` times, computed through the
    first Dense layer (a shuffled feature changes its outputs by a rank-one term). Iterating gives, per batch
    of features J (their columns of X), every member's outputs (k, len(J), repeats, n), class-major, and its
    unshuffled outputs (k, 1, repeats, n) computed in the same matrix products: a float32 product rounds a row
    by the batch it is in (one sample alone against five shuffles of it), and an unshuffled output from another
    batch gave every gene the same spurious drop (2.5e-08, "every shuffle raised the loss")."""

    def __init__(self, model: Model, X: np.ndarray, feats: list[str], features, repeats: int, seed: int):
        n, d = X.shape
        column_maps = model._feature_maps(None if features is None else feats)[0]
        self.states = []  # per member: (network, Z, first layer's outputs, feature -> input column)
        for member, cols in zip(model.members, column_maps):
            pre, net = member.preprocessor, member.network
            cols = np.asarray(pre.kept_index_ if cols is None else cols, dtype=np.int64)
            Z = np.ascontiguousarray(pre.transform_kept(np.take(X, cols, axis=1), dtype=net.dtype))
            a0 = net.forward_layers(Z, 0, 1)
            local = {int(j): i for i, j in enumerate(cols)}
            self.states.append((net, Z, a0, local))  # the unshuffled outputs come with each batch (__iter__)
        self.used = [j for j in range(d) if any(j in s[3] for s in self.states)]
        # the current batch's shuffles, drawn as it comes (``_draw``): all of them at once were features x repeats x
        # n int64, 0.96 GB for 60,000 genes of 400 samples before a single product
        self.perms: dict[int, np.ndarray] = {}
        self.feats, self.seed = feats, seed
        self.n, self.repeats = n, repeats

    def _draw(self, J: list[int]) -> None:
        """(repeats, n) row orders of each feature of J, from the feature's own generator (``feature_rng``): the
        same shuffles whatever the columns' order or the batching."""
        self.perms = {}
        for j in J:
            rng = feature_rng(self.seed, self.feats[j])
            self.perms[j] = np.stack([rng.permutation(self.n) for _ in range(self.repeats)])

    def shift(self, j: int) -> np.ndarray:
        """(repeats, n) the change of feature j's network input (the first member that reads it) when shuffled;
        j of the batch just yielded."""
        for _, Z, _, local in self.states:
            if j in local:
                i = local[j]
                return (Z[self.perms[j], i] - Z[:, i]).astype(np.float64)
        return np.zeros((self.repeats, self.n))

    def __iter__(self):
        n, repeats = self.n, self.repeats
        h = max(s[2].shape[1] for s in self.states)
        batch = max(1, _PERM_BYTES // max(1, repeats * n * h * 8))
        for s in range(0, len(self.used), batch):
            J = self.used[s:s + batch]
            self._draw(J)
            logit_sets = []
            base_sets = []
            for net, Z, a0, local in self.states:
                W0 = net.parameters()["dense0.W"]
                k_out = net.n_outputs
                mine = [(q, local[j]) for q, j in enumerate(J) if j in local]
                # slot 0 unshuffled, then one slot per feature of J this member reads: one product for all
                A = np.empty((len(mine) + 1, repeats, n, a0.shape[1]), dtype=a0.dtype)
                A[0] = a0
                unmoved = np.empty((len(mine), repeats, n), dtype=bool)  # a shuffle that left the input as it was
                for slot, (q, i) in enumerate(mine, start=1):
                    shuffled = Z[self.perms[J[q]], i] - Z[:, i]  # (repeats, n): feature J[q] shuffled
                    A[slot] = a0 + shuffled[..., None] * W0[:, i]  # the first layer's rank-one change
                    unmoved[slot - 1] = shuffled == 0
                logits = net.forward_layers(A.reshape(-1, a0.shape[1]), 1).astype(np.float64)
                logits = logits.T.reshape(k_out, len(mine) + 1, repeats, n)
                # an unmoved input gives the unshuffled outputs exactly: the product's rounding can still differ
                # by a row's place in it (the last rows take other kernels), a drop of ~1e-9 for nothing
                moved = logits[:, 1:]
                moved[:, unmoved] = np.broadcast_to(logits[:, :1], moved.shape)[:, unmoved]
                out = np.empty((k_out, len(J), repeats, n))  # class-major
                out[...] = logits[:, :1]  # a feature this member does not read: its outputs unchanged
                if mine:
                    out[:, [q for q, _ in mine]] = logits[:, 1:]
                logit_sets.append(out)
                base_sets.append(logits[:, :1])
            yield J, logit_sets, base_sets


def permutation_importance(model: Model, X: np.ndarray, y: np.ndarray, *, features: Sequence[str] | None = None,
                           repeats: int = DEFAULT_REPEATS, seed: int = 0, scoring: str = "log_loss",
                           members: bool = False,
                           progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Each class's score drop when a feature is shuffled: (repeats, d, k) for the model (and
    (M, repeats, d, k) for each member alone with ``members``). scoring "balanced_accuracy": the drop of the
    class's recall (their mean over classes is the drop of balanced accuracy, scikit-learn's
    ``permutation_importance`` with that scoring); "log_loss": the rise of the class's samples' mean log
    loss (their sample-weighted mean is the rise of the log loss, ``scoring="neg_log_loss"``). X (n, d) and
    the labels y (n,) as ``explain`` takes them.

    A regression model: each target's rise of RMSE (in the target's units) when a feature is shuffled, k its
    targets, y (n,) or (n, k) the true values. ``progress(done, total)``: features shuffled so far, after each
    batch (60,000 genes of 400 samples take minutes)."""
    drops, mdrops, _ = permutation_drops(model, X, y, features=features, repeats=repeats, seed=seed, scoring=scoring,
                                          members=members, progress=progress)
    return drops, mdrops


def permutation_drops(model: Model, X, y, *, features, repeats, seed, scoring, members, progress=None):
    """``permutation_importance``'s (drops, member drops), and for a regression model the direction of each
    feature's effect on each target's prediction (d, k): the sum over shuffles and samples of the change of the
    feature's network input times the change of the predicted value (positive: higher values raise it)."""
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ConfigError(f"--repeats must be a whole number of at least 1, got {repeats!r}")
    if scoring not in SCORINGS:
        raise ConfigError(f"--scoring {scoring!r} is not one of {', '.join(SCORINGS)}")
    X, features = model.inputs(X, features)  # a DataFrame: its columns by name
    feats = list(model.feature_names) if features is None else list(features)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(feats):
        raise DataError(f"X has shape {X.shape}; expected {len(feats)} feature columns")
    regression, multilabel = model.task == "regression", model.task == "multilabel"
    y = (target_values(model, y, X.shape[0]) if regression else label_matrix(model, y, X.shape[0]) if multilabel
         else label_indices(model, y, X.shape[0]))
    if y is None:
        raise ConfigError("permutation importance needs labels y" + " (the targets' values)" * regression)
    n, d = X.shape
    k_cls = len(model.classes)
    out_fn = TargetOutput(model, "prob")
    sd, mean = target_scales(model)  # (M, k): each member's outputs in the target's units

    def probs(logit_sets, m=None):  # [(k, ..., n)] per member -> the model's probabilities (values), as predict_output
        if not regression:
            return _probabilities_cm(out_fn, logit_sets)
        scale = range(len(logit_sets)) if m is None else [m]
        return np.mean([Z * sd[i].reshape(-1, *[1] * (Z.ndim - 1)) + mean[i].reshape(-1, *[1] * (Z.ndim - 1))
                        for Z, i in zip(logit_sets, scale)], axis=0)

    def scores(P):  # (..., k), higher is better
        if regression:
            return _target_scores(P, y)
        return _label_scores(model, P, y, scoring) if multilabel else _class_scores(model, P, y, scoring)

    shuffles = _Shuffles(model, X, feats, features, repeats, seed)
    M = len(shuffles.states)
    drops = np.zeros((repeats, d, k_cls))
    mdrops = np.zeros((M, repeats, d, k_cls)) if members else None
    effects = np.zeros((d, k_cls)) if regression else None
    done = 0
    for J, logit_sets, base_sets in shuffles:
        # each shuffle against the unshuffled outputs of the same products (``_Shuffles``): (k, 1, R, n)
        base_values = probs(base_sets)
        P = probs(logit_sets)  # (k, F, R, n)
        drops[:, J] = np.transpose(scores(base_values) - scores(P), (1, 0, 2))
        if regression:
            for q, j in enumerate(J):
                effects[j] = np.einsum("rn,krn->k", shuffles.shift(j), P[:, q] - base_values[:, 0])
        if members:
            for m in range(M):
                member_score = scores(probs([logit_sets[m]], m))
                mdrops[m][:, J] = np.transpose(scores(probs([base_sets[m]], m)) - member_score, (1, 0, 2))
        if progress is not None:
            done += len(J)
            progress(done, len(shuffles.used))
    return drops, mdrops, effects


def _target_scores(P: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Minus each target's RMSE (..., k) of predicted values P (k, ..., n), target-major, against Y (n, k)."""
    Yt = Y.T.reshape(Y.shape[1], *[1] * (P.ndim - 2), Y.shape[0])
    return -np.moveaxis(np.sqrt(np.mean((P - Yt) ** 2, axis=-1)), 0, -1)
