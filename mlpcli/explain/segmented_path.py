"""The segmented path: a network of two or more hidden layers whose activations are all piecewise linear,
integrated piece by piece between its kinks.

Along a straight path every pre-activation of a network whose activations are all piecewise linear (ReLU,
leaky ReLU, identity; BatchNorm and dropout are affine at inference) is piecewise linear in alpha: between
two consecutive kinks (where a unit of any layer crosses its activation's kink) the network is affine, so the
gradient of a logit is constant there. The kinks are found layer by layer: between the kinks found so far
the next layer's pre-activations are linear, so its crossings are read off its values at those points. The
first layer's kinks alone (``_slope_weights``) leave the later layers' to the trapezoid rule, whose error at
a kink is O(h): a 16 -> 8 network's gap could stay above 1e-3 after 16 x the steps. Here the logit's
integral is exact (one backward pass per linear piece, at its middle); a probability (softmax or sigmoid of
logits that are affine on each piece, smooth there) is integrated with Gauss-Legendre on sub-pieces (no
longer than 1 / steps, and shorter where the logits move fast), from the logits interpolated between the
pieces' ends: only the k logits are evaluated at the Gauss points, and one backward pass per linear piece
carries the integrated seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..model_io import Model
from . import paths
from .paths import DEFAULT_STEPS, MemberPath, PIECEWISE_LINEAR


LOGIT_STEP = 0.5  # the most a logit moves over one Gauss-Legendre sub-piece (up to the default steps)
MAX_SUBPIECES = 4096  # per linear piece
_GAUSS_X, _GAUSS_W = np.polynomial.legendre.leggauss(3)
_GAUSS_X, _GAUSS_W = (_GAUSS_X + 1.0) / 2.0, _GAUSS_W / 2.0  # on [0, 1]


def _piecewise_linear(net) -> bool:
    return all(layer.fn.name in PIECEWISE_LINEAR for layer in net.layers if layer.kind == "activation")


def segmented_members(model: Model, joint: bool) -> list[bool]:
    """Per member: integrate piece by piece between the kinks (a piecewise-linear network with two or more
    hidden layers; one hidden layer keeps the trapezoid path, exact for logits already). ``joint``: the
    ensemble's probability reads every member at the same points, so all members or none."""
    nets = [m.network for m in model.members]
    deep = [len(net.hidden) >= 2 and _piecewise_linear(net) for net in nets]
    if joint:
        return [any(deep) and all(_piecewise_linear(net) for net in nets)] * len(nets)
    return deep


def segment_rows(model: Model, steps: int, output: str, joint: bool, T: int, per_member: bool) -> int:
    """Rows whose path points (kinks, and the sub-pieces for probabilities) and the logits there fit PATH_BYTES,
    taking a kink per hidden unit of each member the points are shared by (about half cross on the sample
    data)."""
    M = len(model.members) if joint else 1
    k = model.network.n_outputs
    points = 2 + (steps if output == "prob" else 0) + M * max(sum(m.network.hidden) for m in model.members)
    per_point = 8 * (4 + M * k * (1 + T * (2 if per_member else 1)))  # points; logits and seeds there
    return max(1, paths.PATH_BYTES // (points * per_point))  # read now: tests shrink it


@dataclass
class Points:
    """Points along each row's path, sorted by row then alpha, each row's from 0 to 1."""

    row: np.ndarray  # (P,) int64
    alpha: np.ndarray  # (P,) float64
    sets: np.ndarray | None = None  # (S, P) bool: which of the sets merged into these points hold each

    def pieces(self) -> np.ndarray:
        """Indices p of the points opening a piece [alpha[p], alpha[p + 1]] of positive length within a row."""
        return _pieces(self.row, self.alpha)

    def interpolated(self, i: int, kinks: "Points", values: np.ndarray) -> np.ndarray:
        """``values`` (len(kinks.row), k) at the points of merged set i (``kinks``), interpolated linearly to
        every point (P, k): exact for a member's logits when set i is its kinks (affine between them)."""
        left = np.cumsum(self.sets[i]) - 1  # the last kink at or before each point
        right = np.minimum(left + 1, len(kinks.row) - 1)
        span = kinks.alpha[right] - kinks.alpha[left]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(self.sets[i] | (span <= 0), 0.0, (self.alpha - kinks.alpha[left]) / span)
        return values[left] + t[:, None] * (values[right] - values[left])

    def owners(self, i: int) -> np.ndarray:
        """For each piece, the index (among the points of merged set i) of the point opening the piece of set i
        that holds it."""
        return (np.cumsum(self.sets[i]) - 1)[self.pieces()]


def merge_points(*points: Points | None) -> Points:
    """The union of point sets (None: none), without repeats; ``sets`` says which of them hold each point."""
    points = [p for p in points if p is not None]
    row = np.concatenate([p.row for p in points])
    alpha = np.concatenate([p.alpha for p in points])
    source = np.repeat(np.arange(len(points)), [len(p.row) for p in points])
    order = np.lexsort((alpha, row))
    row, alpha, source = row[order], alpha[order], source[order]
    new = np.ones(len(row), dtype=bool)
    new[1:] = (row[1:] != row[:-1]) | (alpha[1:] != alpha[:-1])
    sets = np.zeros((len(points), int(new.sum())), dtype=bool)
    sets[source, np.cumsum(new) - 1] = True
    return Points(row[new], alpha[new], sets)


def _pieces(row: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.flatnonzero((row[:-1] == row[1:]) & (alpha[1:] > alpha[:-1]))


def _point_blocks(path: MemberPath, n: int, overlap: int = 0) -> Iterator[tuple[int, int]]:
    """[start, stop) of blocks of n path points (each reaching ``overlap`` points into the next) whose hidden
    activations and gradients take at most about PATH_BYTES."""
    net = path.member.network
    widest = max([path.ux.shape[1], *net.hidden, net.n_outputs])
    step = max(1, paths.PATH_BYTES // (widest * net.dtype.itemsize * 6))
    for s in range(0, n, step):
        yield s, min(n, s + step + overlap)


def _inputs_at(path: MemberPath, row: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The inputs of layer ``path.start`` (len(row), h) at the path points (row, alpha)."""
    U = path.ux[row]  # (len(row), h), a copy
    U -= path.ub
    U *= alpha[:, None].astype(U.dtype)
    U += path.ub
    U[alpha == 1.0] = path.ux[row[alpha == 1.0]]  # the end points exactly as a forward pass gives them
    U[alpha == 0.0] = path.ub
    return U


def outputs_at(path: MemberPath, row: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The member's logits (len(row), k) float64 at the path points (row, alpha)."""
    net = path.member.network
    out = np.empty((len(row), net.n_outputs))
    for s, e in _point_blocks(path, len(row)):
        out[s:e] = net.forward_layers(_inputs_at(path, row[s:e], alpha[s:e]), path.start)
    return out


def kink_points(path: MemberPath) -> Points:
    """0, 1 and every alpha in between where a hidden unit of the member crosses its activation's kink along
    each row's path: the network is affine between consecutive points."""
    net = path.member.network
    c = path.ux.shape[0]
    points = Points(np.repeat(np.arange(c), 2), np.tile([0.0, 1.0], c))
    for L in range(path.start, len(net.layers)):
        layer = net.layers[L]
        if layer.kind != "activation" or not layer.fn.kinks:
            continue
        row, alpha = points.row, points.alpha
        found = [points]
        for s, e in _point_blocks(path, len(row), overlap=1):
            # the layer's pre-activations at the points so far: linear between them, so a sign change of
            # (value - kink) between neighbours of one row is one crossing, where the line meets the kink
            V = net.forward_layers(_inputs_at(path, row[s:e], alpha[s:e]), path.start, L)
            same = (row[s:e - 1] == row[s + 1:e])[:, None]
            for kink in layer.fn.kinks:
                above, below = V > kink, V < kink
                p, i = np.nonzero(same & ((above[:-1] & below[1:]) | (below[:-1] & above[1:])))
                d0, d1 = V[p, i].astype(np.float64) - kink, V[p + 1, i].astype(np.float64) - kink
                t = d0 / (d0 - d1)
                a0, a1 = alpha[s + p], alpha[s + p + 1]
                found.append(Points(row[s + p], np.clip(a0 + t * (a1 - a0), a0, a1)))
        points = merge_points(*found)
        points.sets = None
    return points


def integrated_seeds(points: Points, logits: list[np.ndarray] | None, seed_fn, t: np.ndarray, k: int,
                      steps: int) -> list[np.ndarray]:
    """The integrals of ``seed_fn`` over each piece of ``points``, (pieces, k) for each array that ``seed_fn``
    returns. ``seed_fn`` maps the members' logits at some path points [(N, k)] and the targets there (N,) to
    seeds [(N, k)]; the logits are interpolated linearly between the pieces' ends (``logits`` [(P, k)] at the
    points, affine on each piece) at the Gauss-Legendre points of sub-pieces no longer than 1 / steps, over
    which no logit moves by more than LOGIT_STEP (less with more than DEFAULT_STEPS steps: a steep softmax
    turns within a small part of the path). ``logits`` None (logit output): the seeds are constant, read once
    per piece."""
    p = points.pieces()
    length = points.alpha[p + 1] - points.alpha[p]
    tr = t[points.row[p]]
    if logits is None:
        return [seed * length[:, None] for seed in seed_fn([np.zeros((len(p), k))], tr)]
    starts = [lg[p] for lg in logits]
    slopes = [lg[p + 1] - lg[p] for lg in logits]
    change = np.max([np.abs(d).max(axis=1) for d in slopes], axis=0)  # (pieces,)
    n = np.maximum(np.ceil(length * steps), np.ceil(change / (LOGIT_STEP * min(1.0, DEFAULT_STEPS / steps))))
    n = np.clip(n, 1, MAX_SUBPIECES).astype(np.int64)
    piece = np.repeat(np.arange(len(p)), n)  # (N,) the piece of each sub-piece
    j = np.arange(len(piece)) - np.repeat(np.cumsum(n) - n, n)  # its index within the piece
    total = None
    for x, w in zip(_GAUSS_X, _GAUSS_W):
        f = ((j + x) / n[piece])[:, None]
        seeds = seed_fn([a[piece] + f * d[piece] for a, d in zip(starts, slopes)], tr[piece])
        scale = w / n[piece]
        per_piece = [np.stack([np.bincount(piece, weights=seed[:, c] * scale, minlength=len(p))
                               for c in range(k)], axis=1) for seed in seeds]
        total = per_piece if total is None else [a + b for a, b in zip(total, per_piece)]
    return [a * length[:, None] for a in total]


def segment_gradients(path: MemberPath, kinks: Points, piece_seeds: list) -> list[np.ndarray]:
    """The path integral of d f / d z (c, d_m) for each (owners, seeds) in ``piece_seeds``: seeds (pieces, k),
    d f / d(this member's logits) integrated over pieces of the path (``integrated_seeds``), and the index of
    the kink opening the member's linear piece that holds each (None: the pieces are the member's own).
    The member is affine between its ``kinks``: the seeds of its linear piece are summed and go back once,
    from the piece's middle, where its activation pattern holds."""
    from scipy import sparse  # scipy comes with scikit-learn

    net = path.member.network
    c, h = path.ux.shape
    k_row, k_alpha = kinks.row, kinks.alpha
    q = kinks.pieces()
    S = []
    for owners, seeds in piece_seeds:
        if owners is None:
            S.append(seeds)
            continue
        total = np.zeros((len(k_row), seeds.shape[1]))
        for j in range(seeds.shape[1]):
            total[:, j] = np.bincount(owners, weights=seeds[:, j], minlength=len(k_row))
        S.append(total[q])
    middle = (k_alpha[q] + k_alpha[q + 1]) / 2
    G = [np.zeros((c, h)) for _ in S]
    for s, e in _point_blocks(path, len(q)):
        r = k_row[q[s:e]]
        net.forward_layers(_inputs_at(path, r, middle[s:e]), path.start)
        # the points are sorted by row: their sum per row as a product with a sparse 0/1 matrix (rows, points),
        # several times faster than np.add.reduceat along axis 0
        new = np.r_[True, r[1:] != r[:-1]]
        member_of = sparse.csr_matrix((np.ones(len(r)), (np.cumsum(new) - 1, np.arange(len(r)))),
                                      shape=(int(new.sum()), len(r)))
        for i, seeds in enumerate(S):
            g = net.input_gradient(seeds[s:e].astype(net.dtype), start=path.start)
            G[i][r[new]] += member_of @ g.astype(np.float64)
    net.forward_layers(path.zb, 0, path.start)  # inference caches of the first layers, for the way back
    return [net.input_gradient(g.astype(net.dtype), 0, path.start).astype(np.float64) for g in G]
