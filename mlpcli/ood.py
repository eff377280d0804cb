"""Per-sample out-of-distribution scores, calibrated into p-values on held-out training rows (NumPy only).

The representation is the model's own input: the rows after the reference preprocessing (log1p, centring,
scaling, clipping), the same values the network and the cohort-shift check see. The score is the distance
to the nearest training sample (the deep-nearest-neighbour detector of Sun et al. 2022, on the network's
inputs), computed in a principal-component space with the remainder kept as a norm:

    x − mean = Vᵀt + r        (t: the r ≤ MAX_COMPONENTS leading components, r ⟂ them)
    d²(x, j) = ‖t − t_j‖² + ‖r‖² + ‖r_j‖²                    (≈ ‖x − x_j‖²: residuals of p − r dimensions
                                                                are nearly orthogonal to each other)
    score(x) = min_j d(x, j) / √p                             (the RMS distance per feature, in training units)

Nearest-neighbour distances catch a kind of sample the training data lacked (another tissue, a tumour type
never seen) even when it lies between the training classes, where a distance to the training data's centre
(Mahalanobis, PPCA) sees nothing unusual: on the tissue table, holding one tissue out of training, the
nearest-neighbour score flags 88 % of unseen colon and 80 % of unseen kidney samples where a PPCA
distance flagged 15 % and 8 % (benchmarks/bench_conformal.py).

A class that is a near copy of a training class (one brain region when another is in training) lies closer
to that class than the most isolated training rows (a rare, diffuse class's) lie to anything, so one
distance cannot flag it without flagging those. Models trained with their classes (format 4) therefore
also score the distance *relative to each class's own spread* (local density, as in LOF, Breunig et al.
2000, with the classes as the neighbourhoods):

    relative(x) = min_c  d(x, nearest reference row of class c) / s_c
    s_c = the median over class c's reference rows of their distance to the nearest other row of class c

and the score is the larger of the two after each is turned into the share of held-out calibration rows it
lies beyond (interpolated between their sorted values; beyond the furthest, 1 plus the excess over it in
units of it), so each part speaks for its own tail and a heavy tail of one cannot mask the other:

    g_j(v) = #{held-out part-j values ≤ v} / m (interpolated)     v ≤ the largest held-out value c_j
           = 1 + (v − c_j) / c_j                                     beyond it
    score(x) = max(g_1(d(x)), g_2(relative(x)))                      (> 1: beyond every held-out row)

Holding one class out of the tissue table (3 splits × 7 tissues), the score catches as many unseen samples as
the distance alone wherever the distance alone did, and more where a brain region is held out (seed 0:
unseen cerebellum 79 % flagged and hippocampus 84 %, the distance alone 39 % and 35 %). Two parts share the
tail: a sample beyond every held-out row by either measure lies as far out as the held-out rows ranked last
in either part, so its p-value counts them (below). The score needs no
label and no network output at prediction time. Files of format 3 keep the distance alone.

The last hidden layer of the members (the deep-nearest-neighbour detector proper) was measured too and
left out: on the sample data's held-out Basal and LumB subtypes it flags 0–5 % (the input distance 1–4 %),
because a network trained without a class maps it onto the classes it knows; the members of most small
tables are softmax regressions, whose only representation is this input.

Calibration: for each held-out part of training (each member's fold, or the validation rows), the rows of
the other parts are the reference and score the held-out rows, so the calibration scores are what new
samples from the training distribution get. With one held-out part (``--folds 1``, ``--val-data``) the model
keeps the basis of that part's training rows, so a new sample meets exactly the reference the held-out rows
met (split conformal); with cross-fitted members it keeps a basis on all rows, a denser reference, so new
samples score a little lower than the held-out rows did (the flags err on the side of fewer). For the distance alone a new sample's p-value is
(1 + #{calibration scores ≥ its score}) / (m + 1): under exchangeability P(p ≤ α) ≤ α, so ``--ood-alpha
0.01`` flags at most 1 % of in-distribution samples.

With the two parts that count is not valid as it stands: a held-out row's share g_j is its rank among the m
held-out values, itself included (r / m), while a new sample's is interpolated among values it is not one
of, and reaches past 1 beyond the largest; by either part, so about 2 / (m + 1) of in-distribution samples
got the smallest p-value, 1 / (m + 1) (simulated, m = 49: 3.6 % at p ≤ 0.02, 11.9 % at p ≤ 0.1). The
p-value is therefore bounded by the full-conformal one (Vovk et al. 2005) of a score exchangeable over all
m + 1 rows, S = max_j (rank in part j among the m + 1) / (m + 1), from what the model keeps (r_i, each
held-out row's highest rank among the m; the parts' columns are stored sorted apart). With k the held-out
values strictly below the sample in its highest-ranked part (m beyond them all), the sample's S is
(k + 1) / (m + 1); a held-out row's S reaches it when r_i > k, and when r_i = k only for the row ranked k in
the other part, so

    p = (1 + #{r_i > k} + min(1, #{r_i = k})) / (m + 1)  ≥  the full-conformal p,   P(p ≤ α) ≤ α

(simulated, m = 19 / 49 / 99: 18.8 / 18.4 / 19.5 % at p ≤ 0.2, as the full-conformal p). A sample beyond
every held-out row ties on rank with the row ranked last in the other part; the symmetric score breaks the tie
by how far each lies beyond the runner-up of its part (a sample's excess is what ``_beyond`` adds to 1), and
p counts that row unless the sample's excess is larger than that row's gap over its runner-up among the m + 1
(the larger of its part's second value and the sample's own): ``p_values_of``, from the sample's two parts, is
that full-conformal p exactly, and ``p_value``, from the score alone, bounds it with the larger of the two
parts' top gaps, (c_j − c'_j) / c'_j with c'_j the runner-up. So a sample well beyond every held-out row gets
1 / (m + 1), as with the distance alone; one just beyond gets 2 / (m + 1). Predict and evaluate use
``p_values_of``: held out of the tissue table, cerebellum is caught at 82 % against 66 % with the bound.

Patients (``--group``): the samples of one patient are not exchangeable with each other, and a count of rows
lets a patient with 20 samples weigh 20 times one with a single sample: the flag rate held for a new *row*
drawn like the held-out rows, not for a new patient's sample, and the smallest p-value, 1 / (rows + 1),
treated a patient's 20 samples as 20 independent draws. Simulated (40 or 100 training patients of 1–30
samples, each with its own offset, the patients of more than 10 samples tighter than the rest; grouped
5-fold calibration; 40 draws): 11.3–11.7 % of a new patient's samples were flagged at ``--ood-alpha 0.05``
and 2.4–2.8 % at 0.01. As the prediction sets do (``conformal``, after Dunn, Wasserman & Ramdas 2022),
each held-out row therefore weighs 1 / (its patient's held-out rows), and what is stored stands for the
G held-out patients, one sample each: G values, the weighted distribution's quantiles at k / (G + 1), k =
1..G, where the k-th smallest of G draws from it lies on average (``_weighted_levels``). So m = G and every
formula above counts patients: the smallest p-value is 1 / (G + 1). The levels k / G (the pooled
p-value rounded up) were measured and left out: their top value is the largest of all the rows, which a new
patient's sample passes far less often than 1 / (G + 1) (with the class-relative part 0.3 % flagged at 0.05
instead of 2.4 %). With the class-relative part, a held-out row's rank is read on its parts' G grid values,
the first at or above it (``_grid_ranks``: a row between two grid values ties upwards, the conservative
side). The same simulation then flags 2.9–4.9 % at 0.05 and 0–1.1 % at 0.01 (nothing with 40 patients:
1 / 41 > 0.01, which ``predict`` warns about). When the number of samples says nothing about a patient,
counting rows flagged 3.9–4.9 % at 0.05 (patients: 2.4–4.6 %), but 1.7–1.9 % at 0.01 with 40 patients
of near-identical samples (patients: none). Without groups, or with one held-out row per patient, every
weight is 1 and the stored values are the rows' own, bit for bit as before.

What the model stores (bounded, in weights.npz under ``ood/``): the mean (p,), r components (r, p) with
r·p ≤ MAX_BASIS_VALUES, at most MAX_REFERENCE training rows as their components (n_ref, r), residual
norms (n_ref,) and classes (n_ref,), one spread per class (C,), at most MAX_CALIBRATION sorted calibration
scores (m,) and as many sorted held-out values of each part (m, 2). Fitting uses at most MAX_ROWS rows (a
seeded subsample) and a randomised SVD.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .conformal import group_weights

__all__ = ["MAX_COMPONENTS", "MAX_ROWS", "MAX_REFERENCE", "MAX_CALIBRATION", "MAX_BASIS_VALUES", "OODBasis",
           "RowSource", "streams_held_out", "STREAM_BELOW_ROWS",
           "fit_basis", "calibrate", "recalibrated", "sample_rows"]

MAX_COMPONENTS = 50
MAX_BASIS_VALUES = 1 << 21  # components x features stored at most (16 MiB of float64)
MAX_ROWS = 4000  # rows the bases are fitted and calibrated on, at most
MAX_REFERENCE = 2000  # training rows a model keeps as nearest-neighbour candidates
MAX_ROW_BYTES = 96 << 20  # and at most this much of float64 transformed rows
MAX_CALIBRATION = 20_000
_POWER_ITERATIONS = 3
_OVERSAMPLE = 10
_SCORE_ROWS = 256  # rows scored at a time: their distance matrix to the reference stays small
_ROW_CHUNK = 256  # rows centred in float64 at a time by the fits (10 MB at 5,000 features)


@dataclass
class OODBasis:
    """A fitted nearest-neighbour distance and its held-out calibration scores."""

    mean: np.ndarray  # (p,)
    components: np.ndarray  # (r, p) orthonormal rows
    reference: np.ndarray  # (n_ref, r): the reference training rows' components
    reference_residual: np.ndarray  # (n_ref,) >= 0: their squared residual norms
    calibration: np.ndarray  # (m,) sorted held-out scores (empty before `calibrate`)
    # with classes (format 4; None in older files, whose score is the distance alone):
    reference_label: np.ndarray | None = None  # (n_ref,) int64 class indices, ascending (rows sorted by class)
    class_scale: np.ndarray | None = None  # (C,) > 0: each class's median nearest-same-class distance
    part_calibration: np.ndarray | None = None  # (m, 2) >= 0: held-out distances, relative distances; columns sorted
    # True when the held-out rows were weighted 1 / (their patient's rows), so m counts patients (see the module);
    # model.json's ood.weighted (absent: False, as in files written before)
    weighted: bool = False
    # True when every held-out row was scored from the table (``RowSource``), not only the capped sample's;
    # model.json's ood.streamed (absent: False)
    streamed: bool = False
    # the labelled table of a new population the calibration was taken on instead (``recalibrated``; format 15):
    # {data, sha256, n, patients}; None: held-out training rows
    cohort: dict | None = None

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def relative(self) -> bool:
        """True when the score includes the class-relative distance (a model trained with format 4)."""
        return self.reference_label is not None

    def _segments(self) -> tuple[np.ndarray, np.ndarray]:
        """The first reference row of each class present (for np.minimum.reduceat) and those classes."""
        cached = self.__dict__.get("_segments_cache")
        if cached is None:
            label = self.reference_label
            starts = np.flatnonzero(np.r_[True, label[1:] != label[:-1]]) if len(label) else np.zeros(0, np.int64)
            cached = self.__dict__["_segments_cache"] = (starts, label[starts])
        return cached

    def parts(self, Z: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(n, 2) for transformed rows Z (n, p) (or its rows ``rows``, n of them, taken a block at a time): the
        distance to the nearest reference row, and the class-relative distance (min over classes of the
        distance to the class's nearest row / the class's spread; NaN without classes), both as RMS per
        feature."""
        n = len(Z) if rows is None else len(rows)
        out = np.full((n, 2), np.nan)
        ref, ref2 = self.reference, np.einsum("ij,ij->i", self.reference, self.reference) + self.reference_residual
        if self.relative:
            starts, present = self._segments()
            scale = self.class_scale[present]
        for s in range(0, n, _SCORE_ROWS):
            block = Z[s:s + _SCORE_ROWS] if rows is None else Z[rows[s:s + _SCORE_ROWS]]
            D = np.asarray(block, dtype=np.float64) - self.mean
            T = D @ self.components.T
            t2 = np.einsum("ij,ij->i", T, T)
            residual = np.maximum(np.einsum("ij,ij->i", D, D) - t2, 0.0)
            d2 = np.maximum((t2 + residual)[:, None] + ref2[None, :] - 2.0 * (T @ ref.T), 0.0)
            out[s:s + _SCORE_ROWS, 0] = np.sqrt(d2.min(axis=1) / self.n_features)
            if self.relative:
                per_class = np.sqrt(np.minimum.reduceat(d2, starts, axis=1) / self.n_features)
                out[s:s + _SCORE_ROWS, 1] = (per_class / scale).min(axis=1)
        return out

    def combine(self, parts: np.ndarray) -> np.ndarray:
        """(n,) scores from ``parts`` (n, 2): the distance alone without classes, else the larger share of held-out
        rows the sample lies beyond by either part (> 1 beyond all of them; see the module)."""
        if not self.relative:
            return parts[:, 0].copy()
        return np.max([_beyond(self.part_calibration[:, j], parts[:, j]) for j in range(2)], axis=0)

    def score(self, Z: np.ndarray) -> np.ndarray:
        """(n,) scores of transformed rows Z (n, p): larger is further from the training rows (see the module)."""
        return self.combine(self.parts(Z))

    def score_and_p(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((n,) scores, (n,) p-values) of transformed rows Z (n, p). The p-values are ``p_value``'s, with the
        tie of a sample beyond every held-out row by one part broken exactly (``p_values_of``)."""
        parts = self.parts(Z)
        return self.combine(parts), self.p_values_of(parts)

    def p_values_of(self, parts: np.ndarray) -> np.ndarray:
        """(n,) p-values of samples whose two parts are ``parts`` (n, 2): ``p_value`` of their scores, except
        for a sample beyond every held-out row by exactly one part, whose rank ties with the last-ranked row of
        the other part h: that row lies beyond its runner-up among the m + 1 (the larger of part h's second
        value and the sample's own) by (c_h − r) / r, and counts unless the sample's excess is larger — the
        full-conformal p of the tie-broken score, from the parts themselves rather than the larger gap of the
        two (``_top_gap``)."""
        scores = self.combine(parts)
        p = self.p_value(scores)
        if not self.relative or len(self.part_calibration) < 2:
            return p
        cal = self.part_calibration
        shares = np.stack([_beyond(cal[:, j], parts[:, j]) for j in range(2)], axis=1)
        beyond = shares > 1.0
        one = beyond.sum(axis=1) == 1
        if not one.any():
            return np.where(beyond.all(axis=1), 1.0 / (len(self.calibration) + 1.0), p)
        other = np.where(beyond[:, 0], 1, 0)  # the part the sample is not beyond
        runner = np.maximum(cal[-2][other], parts[np.arange(len(parts)), other])
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.where(runner > 0, (cal[-1][other] - runner) / runner, np.inf)
        m = len(self.calibration)
        exact = (1.0 + ((scores - 1.0) <= gap)) / (m + 1.0)
        return np.where(one, exact, np.where(beyond.all(axis=1), 1.0 / (m + 1.0), p))

    def p_value(self, scores: np.ndarray) -> np.ndarray:
        """(n,) conformal p-values of scores (n,): (1 + calibration scores ≥ s) / (m + 1) for the distance alone;
        with the class-relative part, counted against the sample's rank (see the module), so that
        P(p ≤ α) ≤ α holds there too."""
        s = np.asarray(scores, dtype=np.float64)
        m = len(self.calibration)
        if not self.relative:
            at_least = m - np.searchsorted(self.calibration, s, side="left")
            return (1.0 + at_least) / (m + 1.0)
        # calibration scores are r / m, r a held-out row's highest rank among the m (itself included); k the
        # held-out values strictly below the sample in its highest-ranked part: a share interpolated in
        # (k / m, (k + 1) / m] has k below it, one beyond the largest (> 1) has m
        grid = len(self.part_calibration)
        k = np.where(s > 1.0, grid, np.ceil(np.clip(s, 0.0, 1.0) * grid - 1e-9) - 1.0)
        k = np.clip(k, 0.0, grid)
        above = m - np.searchsorted(self.calibration, (k + 0.5) / grid, side="left")  # r > k
        at_k = m - np.searchsorted(self.calibration, (k - 0.5) / grid, side="left") - above  # r = k
        # beyond every held-out row (s = 1 + e, e its excess over the largest of its part, in units of it): the
        # row ranked last in the other part ties with it on rank alone; the tie is broken by the excess, that
        # row's being over the runner-up of its part, at most the larger of the two parts' top gaps
        ties = np.where(s > 1.0, (s - 1.0) <= self._top_gap(), np.minimum(at_k, 1))
        return (1.0 + above + ties) / (m + 1.0)

    def _top_gap(self) -> float:
        """The larger over the two parts of (largest − runner-up) / runner-up of the held-out values: how far the
        last-ranked row of a part lies beyond the next one, in the units ``_beyond`` measures a sample's excess."""
        cal = self.part_calibration
        if len(cal) < 2:
            return math.inf
        top, second = cal[-1], cal[-2]
        with np.errstate(divide="ignore", invalid="ignore"):
            gaps = np.where(second > 0, (top - second) / second, np.inf)
        return float(np.max(gaps))

    def describe(self) -> dict:
        out = {"n_features": self.n_features, "n_components": int(self.components.shape[0]),
               "n_reference": int(len(self.reference)), "n_calibration": int(len(self.calibration))}
        if self.relative:
            out["n_classes"] = int(len(self.class_scale))
        if self.weighted:  # (written only when true: models without patients keep their bytes)
            out["weighted"] = True
        if self.streamed:  # (likewise: only wide tables stream)
            out["streamed"] = True
        if self.cohort is not None:
            out["cohort"] = self.cohort
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"mean": self.mean, "components": self.components, "reference": self.reference,
               "reference_residual": self.reference_residual, "calibration": self.calibration}
        if self.relative:
            out.update(reference_label=self.reference_label, class_scale=self.class_scale,
                       part_calibration=self.part_calibration)
        return out


def _centred(Z: np.ndarray, rows: np.ndarray, mean: np.ndarray):
    """(chunk of positions in ``rows``, Z[rows[chunk]] - mean as a float64 copy) a _ROW_CHUNK rows at a time:
    the fit never holds a float64 copy of all its rows (80 MB at 2,000 x 5,000)."""
    for a in range(0, len(rows), _ROW_CHUNK):
        chunk = slice(a, min(len(rows), a + _ROW_CHUNK))
        D = np.asarray(Z[rows[chunk]], dtype=np.float64)  # fancy indexing: a copy of its own
        D -= mean
        yield chunk, D


def _row_mean(Z: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(p,) the mean of Z's rows ``rows``, summed a chunk of rows at a time."""
    total = np.zeros(Z.shape[1])
    for a in range(0, len(rows), _ROW_CHUNK):
        total += np.asarray(Z[rows[a:a + _ROW_CHUNK]], dtype=np.float64).sum(axis=0)
    return total / len(rows)


def _halves(fn: Callable[[slice], np.ndarray | None], n: int, start: Callable | None) -> np.ndarray | None:
    """``fn`` of the two halves of range(n), stacked (None when ``fn`` gives None): the second half run by ``start``
    (``calibrate``'s: on a second core) while the first runs here, or both here (None). The same numbers either way:
    the halves are the same."""
    first, second = slice(0, n // 2), slice(n // 2, n)
    other = start(fn, second) if start is not None else (lambda: fn(second))
    try:
        mine = fn(first)
    except BaseException:
        try:
            other()  # no thread outlives the call, also when this half fails
        except Exception:  # noqa: BLE001 - this half's error is the one to raise
            pass
        raise
    theirs = other()
    return None if mine is None else np.concatenate([mine, theirs])


def _fill_centred(A: np.ndarray, Z, rows: np.ndarray, mean: np.ndarray, part: slice) -> None:
    """A[part] <- Z[rows[part]] - mean, through float64 a chunk of rows at a time."""
    for chunk, D in _centred(Z, rows[part], mean):
        A[part][chunk] = D


def _top_components(Z: np.ndarray, rows: np.ndarray, mean: np.ndarray, r: int,
                    seed: int, start: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The r leading right singular vectors (r, p) and singular values (r,) of D = Z[rows] - mean (n, p):
    exact for small matrices, a randomised range finder with power iterations (Halko et al. 2011) else.

    The range finder only has to find the subspace of the leading directions, so it runs on a float32 copy of
    D (half the memory and time of float64; the subspace agrees with float64's to ~1e-7 where it was only ever
    an approximation to ~1e-2: another seed moves it further), its bases normalised by ``_orthonormal``. The
    components and singular values are then computed in float64 from D itself (B = Qᵀ D a chunk of rows at a
    time, Q re-orthonormalised in float64): V is orthonormal to float64 precision and lies in D's row space,
    so a direction without variance still has a singular value at float64's rounding level and is dropped.

    The copy and the range finder's products are made in two halves of rows (of columns for Aᵀ Q), the second by
    ``start`` when given (a second core: 0.23 -> 0.17 s for eight products of 4,000 x 5,000 by 60 columns); each
    half is its own product, so the numbers do not depend on where it ran."""
    n, p = len(rows), Z.shape[1]
    if min(n, p) <= 4 * (r + _OVERSAMPLE):
        D = np.asarray(Z[rows], dtype=np.float64)  # a copy (fancy indexing); small: at most 240 rows or features
        D -= mean
        _, s, Vt = np.linalg.svd(D, full_matrices=False)
        return Vt[:r], s[:r]
    A = np.empty((n, p), dtype=np.float32)
    _halves(lambda part: _fill_centred(A, Z, rows, mean, part), n, start)

    def times(M: np.ndarray) -> np.ndarray:  # A @ M, (n, l)
        return _halves(lambda part: A[part] @ M, n, start)

    def transposed_times(M: np.ndarray) -> np.ndarray:  # Aᵀ @ M, (p, l)
        return _halves(lambda part: A[:, part].T @ M, p, start)

    rng = np.random.default_rng(seed)
    Q = _orthonormal(times(rng.standard_normal((p, r + _OVERSAMPLE)).astype(np.float32)))
    for _ in range(_POWER_ITERATIONS):
        Q = _orthonormal(transposed_times(Q))
        Q = _orthonormal(times(Q))
    del A
    Q = np.linalg.qr(Q.astype(np.float64))[0]  # (n, l) orthonormal to float64 precision
    B = np.zeros((Q.shape[1], p))
    for chunk, D in _centred(Z, rows, mean):
        B += Q[chunk].T @ D
    _, s, Vt = np.linalg.svd(B, full_matrices=False)
    return Vt[:r], s[:r]


def _orthonormal(Y: np.ndarray) -> np.ndarray:
    """A float32 basis (m, l) of the column space of the float32 Y (m, l), orthonormal to float32 precision:
    Cholesky QR in float64 (Y R⁻¹ with RᵀR = YᵀY: two small matrix products, where LAPACK's Householder QR of
    a tall, thin matrix is largely sequential, 3-10 times slower), or Householder QR when Y is too
    ill-conditioned for it (a near-singular YᵀY: D of lower rank than the basis, or a steep spectrum) — the
    same subspace either way, which is all the power iterations carry from one step to the next."""
    Y64 = Y.astype(np.float64)
    try:
        L = np.linalg.cholesky(Y64.T @ Y64)
    except np.linalg.LinAlgError:
        L = None
    diagonal = None if L is None else np.diag(L)
    # cond(Y) ~ max/min of L's diagonal; beyond ~1e5 the Gram matrix (cond²) has lost too many float64 digits
    if diagonal is None or not np.all(np.isfinite(diagonal)) or diagonal.min() <= diagonal.max() * 1e-5:
        return np.linalg.qr(Y64)[0].astype(np.float32)
    return (Y64 @ np.linalg.inv(L).T).astype(np.float32)


def fit_basis(Z: np.ndarray, seed: int = 0, labels: np.ndarray | None = None, n_classes: int = 0,
              rows: np.ndarray | None = None, start: Callable | None = None) -> OODBasis:
    """The nearest-neighbour distance to the rows ``rows`` of Z (n_Z, p) (None: all of them; at least one):
    their components and residual norms (at most MAX_REFERENCE of them, a seeded subsample, as the
    reference). With ``labels`` (n_Z,) class indices in [0, n_classes) of Z's rows: the reference rows sorted
    by class and each class's spread, for the relative distance (``parts`` gives both; ``score`` needs the
    held-out values ``calibrate`` sets).

    Z is only read (never modified, so fits on several row sets of one Z may run side by side) and never
    copied whole: the rows are centred a chunk at a time, into the range finder's float32 copy (``_top_components``)
    and for the reference rows' components. ``start``: runs half of the range finder's work on a second core
    (``_top_components``); the same numbers without it."""
    if not (isinstance(Z, np.ndarray) and Z.dtype in (np.float32, np.float64)):
        Z = np.asarray(Z, dtype=np.float64)  # (float32 rows are read a chunk at a time in float64, as below)
    idx = np.arange(Z.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    n, p = len(idx), Z.shape[1]
    mean = _row_mean(Z, idx)
    r = max(1, min(MAX_COMPONENTS, p, max(n - 1, 1), MAX_BASIS_VALUES // max(p, 1)))
    V, s = _top_components(Z, idx, mean, r, seed, start)
    keep = s > float(s[0]) * 1e-9  # no direction without variance (the first kept, so r >= 1)
    keep[0] = True
    V = np.ascontiguousarray(V[keep])
    ref = np.arange(n) if n <= MAX_REFERENCE else np.sort(
        np.random.default_rng(seed).choice(n, MAX_REFERENCE, replace=False))
    if labels is not None:  # one contiguous run of rows per class: per-class minima are one reduceat
        ref = ref[np.argsort(np.asarray(labels)[idx[ref]], kind="stable")]
    T = np.empty((len(ref), len(V)))
    residual = np.empty(len(ref))
    for chunk, D in _centred(Z, idx[ref], mean):
        T[chunk] = D @ V.T
        residual[chunk] = np.einsum("ij,ij->i", D, D) - np.einsum("ij,ij->i", T[chunk], T[chunk])
    np.maximum(residual, 0.0, out=residual)
    basis = OODBasis(mean=mean, components=V, reference=T, reference_residual=residual, calibration=np.zeros(0))
    if labels is not None:
        basis.reference_label = np.asarray(labels, dtype=np.int64)[idx[ref]]
        basis.class_scale = class_scales(basis, max(int(n_classes), int(basis.reference_label.max()) + 1))
    return basis


def class_scales(basis: OODBasis, n_classes: int) -> np.ndarray:
    """(n_classes,) each class's spread: the median over its reference rows of the distance (RMS per feature)
    to the nearest other reference row of the class. A class with fewer than two rows, or whose rows
    coincide, takes the median spread of the other classes (1 when no class has one)."""
    T, res, label = basis.reference, basis.reference_residual, basis.reference_label
    starts, present = basis._segments()
    ends = np.r_[starts[1:], len(label)]
    scale = np.full(n_classes, np.nan)
    for a, b, c in zip(starts, ends, present):
        if b - a < 2:
            continue
        Tc, rc = T[a:b], res[a:b]
        sq = np.einsum("ij,ij->i", Tc, Tc) + rc
        nearest = np.empty(b - a)
        for s in range(0, b - a, _SCORE_ROWS):
            norms = sq[s:s + _SCORE_ROWS, None] + sq[None, :]
            d2 = norms - 2.0 * (Tc[s:s + _SCORE_ROWS] @ Tc.T)
            # rows that coincide differ by the rounding of their norms, not by 0: NumPy 1.26's LAPACK left each
            # a residual of 2e-13, a spread of 1.5e-7 that made the class look the tightest of all
            d2[d2 <= norms * 1e-12] = 0.0
            d2[np.arange(len(d2)), s + np.arange(len(d2))] = np.inf  # not the row itself
            nearest[s:s + _SCORE_ROWS] = np.sqrt(np.maximum(d2.min(axis=1), 0.0) / basis.n_features)
        scale[c] = np.median(nearest)
    valid = np.isfinite(scale) & (scale > 0)
    fill = float(np.median(scale[valid])) if valid.any() else 1.0
    scale[~valid] = fill
    return scale


def calibrate(Z: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray]], seed: int = 0,
              Z_held: np.ndarray | None = None, labels: np.ndarray | None = None, n_classes: int = 0,
              start: Callable[..., Callable[[], list]] | None = None,
              groups: np.ndarray | None = None) -> OODBasis:
    """The basis a new sample is scored against, calibrated on held-out scores: for each (train, held) pair
    of row indices into Z (n, p), a basis fitted on Z[train] scores Z[held] (``Z_held`` instead of Z for the
    held rows when they are another table: ``--val-data``). With several pairs (cross-fitting) the basis is
    fitted on all rows of Z; with one pair (a single hold-out) it is that pair's own basis: the held-out rows
    were scored against exactly the reference a new sample meets, so their scores and its score are
    exchangeable (split conformal: the p-values are exact, where a basis on all rows would be a denser
    reference than the held-out rows met), and one basis is fitted, not two. With ``labels`` (n,) (class
    indices of Z's rows): the class-relative distance too, and both parts' sorted held-out values, which
    ``combine`` scores against (the held-out rows' own labels are never used). Z is only read.

    groups: the patient of each row of the held-out rows' table (Z, or ``Z_held``), or None. Each held-out row
    then weighs 1 / (its patient's held-out rows) and the calibration counts patients, so that the flag rate at
    alpha holds for a new patient's sample, not for a new row drawn like the training rows (a patient with 20
    samples would weigh 20 times one with a single sample; see the module). Without groups, or with one
    held-out row per patient, every weight is 1 and the result is the unweighted one, bit for bit.

    start: ``start(fn, *args)`` begins ``fn(*args)`` and returns the function that gives its result (e.g.
    ``background.beside``: in a thread): every other fit (the one on all rows first, then every second part's)
    runs that way while the others run here, two at a time, and with one pair, half of its fit's range finder;
    None: one after the other. The result is the same either way."""
    parts = [(train, held) for train, held in parts if len(train) >= 1 and len(held) > 0]
    weight = None
    if groups is not None and parts:  # in the order the held-out parts are concatenated below
        weight = group_weights(np.asarray(groups)[np.concatenate([held for _, held in parts])], 0)
    if len(parts) == 1:  # split conformal: the held-out rows' basis is the model's
        train, held = parts[0]
        basis = fit_basis(Z, seed, labels, n_classes, rows=train, start=start)
        P = basis.parts(Z if Z_held is None else Z_held, held)
        return _calibrated(basis, P, weight)
    # no held-out rows: the distance alone
    fits = [lambda: fit_basis(Z, seed, labels if parts else None, n_classes)]
    fits += [lambda train=train, held=held: fit_basis(Z, seed, labels, n_classes, rows=train).parts(
        Z if Z_held is None else Z_held, held) for train, held in parts]
    if start is None:
        done = _run(fits)
    else:
        theirs = start(_run, fits[0::2])
        mine = _run(fits[1::2])
        done = [None] * len(fits)
        done[0::2], done[1::2] = theirs(), mine
    return _calibrated(done[0], np.concatenate(done[1:]) if len(done) > 1 else np.zeros((0, 2)), weight)


def recalibrated(basis: OODBasis, parts: np.ndarray, groups: np.ndarray | None = None,
                 cohort: dict | None = None) -> OODBasis:
    """A copy of ``basis`` whose calibration is the rows of a labelled cohort of a new population (``recalibrate``):
    ``parts`` (n, 2), ``basis.parts`` of their reference-preprocessed values, each row weighing 1 / its patient's
    rows (``groups`` (n,) or None): the same distances to the same training reference, so a new sample of that
    population and the cohort's rows are exchangeable (split conformal), and the flag says "further from the
    training data than this population's own samples" — a kind of sample the population's known classes do not
    include. The training calibration flagged 98 % of a shifted site's ordinary samples at 0.01 (every flag, no
    information; ``bench_conformal.py --part site``)."""
    from copy import copy

    out = copy(basis)
    out.weighted, out.streamed, out.cohort = False, False, cohort
    weight = None if groups is None else group_weights(np.asarray(groups), len(parts))
    return _calibrated(out, np.asarray(parts, dtype=np.float64), weight)


def _calibrated(basis: OODBasis, P: np.ndarray, weight: np.ndarray | None = None) -> OODBasis:
    """``basis`` with the held-out rows' two parts P (m, 2) stored as its calibration (sorted, thinned). With
    ``weight`` (m,) not all 1 (1 / the row's patient's held-out rows): G values per column, G the patients, at
    the weighted distribution's evenly spaced levels (``_weighted_levels``; see the module)."""
    if weight is None or len(P) == 0 or np.all(weight == 1.0):
        if basis.relative:
            basis.part_calibration = _evenly(np.sort(P, axis=0))
        basis.calibration = _evenly(np.sort(basis.combine(P)))
        return basis
    G = min(MAX_CALIBRATION, max(1, round(float(weight.sum()))))
    basis.weighted = True
    if not basis.relative:
        basis.calibration = _weighted_levels(P[:, 0], weight, G)
        return basis
    basis.part_calibration = np.column_stack([_weighted_levels(P[:, j], weight, G) for j in range(2)])
    basis.calibration = _weighted_levels(_grid_ranks(basis.combine(P), G), weight, G)
    return basis


def _weighted_levels(values: np.ndarray, weight: np.ndarray, G: int) -> np.ndarray:
    """(G,) sorted: for k = 1..G the smallest of ``values`` (n,) whose cumulative weight (``weight`` (n,) > 0,
    in ascending order of the values) reaches k / (G + 1) of the total: the weighted distribution's quantiles
    where the k-th smallest of G independent draws from it lies on average (E F(X₍ₖ₎) = k / (G + 1)), so the G
    values stand for G patients of one sample each. The cumulative sums of weights 1 / k land a few ulps off
    their exact value (three rows of 1 / 3 sum to 0.9999999999999999): a level is reached within 1e-9 of the
    total, far less than a row's weight (at least 1 / MAX_ROWS, the total at most MAX_ROWS)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weight[order])
    total = float(cum[-1])
    at = np.searchsorted(cum, np.arange(1, G + 1) * (total / (G + 1)) - 1e-9 * max(total, 1.0), side="left")
    return np.asarray(values, dtype=np.float64)[order[np.minimum(at, len(values) - 1)]]


def _grid_ranks(shares: np.ndarray, G: int) -> np.ndarray:
    """(n,) held-out rows' shares (``combine``: interpolated between the G grid values of their parts, > 1 beyond
    the last) as ranks on that grid, r / G with r in 1..G: the first grid value at or above the row (the last
    beyond it), the tie a row between two grid values is given with the upper one, the conservative side of
    ``p_value``'s count."""
    return np.clip(np.ceil(np.asarray(shares) * G - 1e-9), 1.0, G) / G


def _run(calls: list[Callable[[], object]]) -> list:
    """The results of ``calls``, one after the other."""
    return [call() for call in calls]


def _evenly(values: np.ndarray) -> np.ndarray:
    """At most MAX_CALIBRATION of the sorted ``values`` (m, ...): evenly spaced order statistics, which give the
    same p-values to 1 / MAX_CALIBRATION."""
    if len(values) <= MAX_CALIBRATION:
        return values
    return values[np.linspace(0, len(values) - 1, MAX_CALIBRATION).round().astype(np.int64)]


def _beyond(held: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(n,) the share of the sorted held-out values ``held`` (m,) that each of ``v`` (n,) reaches, interpolated
    between them; beyond the largest c, 1 + (v − c) / c."""
    m = len(held)
    top = float(held[-1])
    share = np.interp(v, held, np.arange(1, m + 1) / m, left=0.0)
    return np.where(v > top, 1.0 + (v - top) / max(top, 1e-12), share)


# Below this many rows within the byte cap (from about 12,600 features on), ``calibrate``'s callers score every
# held-out row from the table a block at a time (``RowSource``) instead of the capped sample's held-out share:
# at 60,000 features the cap keeps 209 rows, and calibration on the 39 held-out ones of 37 patients could flag
# nothing at --ood-alpha 0.01. The bases are still fitted on the sample.
STREAM_BELOW_ROWS = 1000


class RowSource:
    """Rows of a table transformed on demand: ``source[idx]`` is ``get(idx)`` (len(idx), p) float64 for an index
    array, which ``OODBasis.parts`` asks for a block of rows at a time; ``len`` the table's rows. Held-out rows
    scored this way are never all in memory at once."""

    def __init__(self, n: int, get: Callable[[np.ndarray], np.ndarray]):
        self.n, self.get = int(n), get

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx) -> np.ndarray:
        return np.asarray(self.get(np.asarray(idx, dtype=np.int64)), dtype=np.float64)


def streams_held_out(n: int, n_features: int) -> bool:
    """Whether the byte cap leaves fewer than STREAM_BELOW_ROWS of ``n`` rows of ``n_features``: then the held-out
    rows are scored from a ``RowSource`` (all of them), not from the sample."""
    return len(sample_rows(n, n_features)) < min(n, STREAM_BELOW_ROWS)


def sample_rows(n: int, n_features: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most MAX_ROWS rows (and MAX_ROW_BYTES of float64 features) out of n: all of
    them when they fit, else a seeded random subsample."""
    limit = max(2, min(MAX_ROWS, MAX_ROW_BYTES // (8 * max(n_features, 1))))
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
