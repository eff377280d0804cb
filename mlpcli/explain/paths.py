"""The straight path from the baseline to each sample through one member (``MemberPath``): its points and
trapezoid weights, the outputs along it, and the gradients averaged over it (with the first layer's kinks
weighted by their share of each step, ``slope weights``), taken back to the inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..model_io import Member


DEFAULT_STEPS = 64  # trapezoid steps along the path (integrated_gradients' default)
PATH_BYTES = 32 << 20  # hidden activations of one block of path points


def trapezoid(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Path points alpha (steps + 1,) and their trapezoid weights (summing to 1)."""
    alphas = np.linspace(0.0, 1.0, steps + 1)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] /= 2.0
    return alphas, weights


PIECEWISE_LINEAR = ("relu", "leaky_relu", "identity")


@dataclass
class MemberPath:
    """One member's straight path for a chunk of samples. Its first Dense layer (and BatchNorm, in inference
    an affine map per unit) are affine, so the first hidden layer's pre-activations u move on a straight
    line too, u(alpha) = u(b) + alpha (u(x) - u(b)): the path points start at layer ``start`` (the first
    activation; the output layer's input for a network without hidden layers)."""

    member: Member
    dz: np.ndarray  # (c, d_m) z(x) - z(b), float64
    ux: np.ndarray  # (c, h) the first activation's inputs at x
    ub: np.ndarray  # (1, h) at the baseline
    zb: np.ndarray  # (1, d_m) the baseline's network inputs
    start: int  # index of the layer the path points enter
    columns: np.ndarray  # (d_m,) the member's kept features as columns of the attributions

    def blocks(self, alphas: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        """(slice of alphas, the path points' inputs of layer ``start`` (len(slice) * c, h)) per block."""
        c, h = self.ux.shape
        net = self.member.network
        widest = max([h, *net.hidden, net.n_outputs])
        per_alpha = max(1, c * widest * net.dtype.itemsize * 6)  # the layers' cached values and gradients
        step = max(1, PATH_BYTES // per_alpha)
        diff = self.ux - self.ub
        for s in range(0, len(alphas), step):
            a = alphas[s:s + step]
            U = self.ub[None] + a[:, None, None].astype(diff.dtype) * diff[None]
            U[a == 1.0] = self.ux  # the end points exactly as a forward pass gives them
            U[a == 0.0] = self.ub
            yield slice(s, s + len(a)), U.reshape(len(a) * c, h)


def member_path(member: Member, X: np.ndarray, columns: np.ndarray | None, b: np.ndarray,
                 transformed: bool = False) -> MemberPath:
    """Member m's path for raw rows X (c, width) whose columns ``columns`` are its kept features (None: X is
    in the model's feature order); ``b`` the baseline in X's columns. ``transformed``: X and b are network
    inputs already (a one-network model's rows transformed once by predict)."""
    pre, net = member.preprocessor, member.network
    cols = np.asarray(pre.kept_index_ if columns is None else columns, dtype=np.int64)
    if transformed:
        Zx, Zb = np.asarray(X, dtype=net.dtype), np.asarray(b[None], dtype=net.dtype)
    else:
        Zx = pre.transform_kept(np.take(X, cols, axis=1), dtype=net.dtype)
        Zb = pre.transform_kept(b[cols][None], dtype=net.dtype)
    Zx, Zb = np.ascontiguousarray(Zx), np.ascontiguousarray(Zb)
    start = next((i for i, layer in enumerate(net.layers) if layer.kind == "activation"), len(net.layers))
    ux = net.forward_layers(Zx, 0, start)
    ub = net.forward_layers(Zb, 0, start)  # last: layers[:start] keep the baseline's (inference) forward
    return MemberPath(member, Zx.astype(np.float64) - Zb.astype(np.float64), ux, ub, Zb, start, cols)


def outputs_along(path: MemberPath, alphas: np.ndarray) -> np.ndarray:
    """The member's logits at every path point, (len(alphas), c, k) float64."""
    net = path.member.network
    c = path.ux.shape[0]
    out = np.empty((len(alphas), c, net.n_outputs))
    for sl, U in path.blocks(alphas):
        out[sl] = net.forward_layers(U, path.start).reshape(-1, c, net.n_outputs)
    return out


def _slope_weights(path: MemberPath, alphas: np.ndarray) -> np.ndarray | None:
    """For a piecewise-linear first activation (ReLU, leaky ReLU): the quadrature weights (K, c, h) of
    int_0^1 g_i(alpha) phi'(u_i(alpha)) d alpha, with g (the gradient after the activation) interpolated
    linearly between the path points and phi' integrated exactly: it is a step at alpha*_i = -u_i(b) / du_i,
    which the trapezoid rule would smear over a whole interval (for a network with one ReLU layer and
    logit output g is constant along the path and the integral is exact). None when the first activation
    is smooth (its derivative is then sampled at the path points) or the network has no hidden layer."""
    net = path.member.network
    if path.start >= len(net.layers):
        return None
    fn = net.layers[path.start].fn
    if fn.name not in PIECEWISE_LINEAR:
        return None
    neg, pos = (float(v) for v in fn.backward(np.array([-1.0, 1.0]), np.ones(2)))
    ub, du = path.ub.astype(np.float64), (path.ux - path.ub).astype(np.float64)  # (1, h), (c, h)
    K = len(alphas) - 1
    h = 1.0 / K
    mids = (alphas[:-1] + alphas[1:]) / 2  # the slope on each interval, where no kink falls inside
    S = np.where(ub[None] + mids[:, None, None] * du[None] > 0, pos, neg)  # (K, c, h)
    W = np.zeros((K + 1, *du.shape))
    W[:-1] += S * (h / 2)
    W[1:] += S * (h / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        star = -ub / du  # (c, h): where u crosses 0
    inside = np.isfinite(star) & (star > 0) & (star < 1)
    r, i = np.nonzero(inside)
    if r.size:
        j = np.minimum((star[r, i] / h).astype(np.int64), K - 1)  # the interval holding the kink
        t = star[r, i] / h - j
        left = np.where(du[r, i] > 0, neg, pos)  # slope before the kink
        right = np.where(du[r, i] > 0, pos, neg)
        W[j, r, i] += h * (left * (t - t * t / 2) + right * (1 - t) ** 2 / 2) - S[j, r, i] * (h / 2)
        W[j + 1, r, i] += h * (left * t * t / 2 + right * (1 - t * t) / 2) - S[j, r, i] * (h / 2)
    return W


def averaged_gradients(path: MemberPath, alphas: np.ndarray, weights: np.ndarray,
                        seed_sets: list) -> list[np.ndarray]:
    """For each seed function in ``seed_sets`` ((alpha slice, the member's logits there (a, c, k)) -> seeds
    (a * c, k)): the path integral of d f / d z, (c, d_m) float64, i.e. the averaged gradient with respect to
    the member's network inputs."""
    net = path.member.network
    c, h = path.ux.shape
    slopes = _slope_weights(path, alphas)
    after = path.start + 1 if slopes is not None else path.start  # g: the gradient after the activation
    G = [np.zeros((c, h)) for _ in seed_sets]
    for sl, U in path.blocks(alphas):
        logits = net.forward_layers(U, path.start).astype(np.float64).reshape(-1, c, net.n_outputs)
        for i, seed_fn in enumerate(seed_sets):
            seed = seed_fn(sl, logits)
            g = net.input_gradient(seed.astype(net.dtype), start=after).astype(np.float64).reshape(-1, c, h)
            if slopes is not None:
                G[i] += np.einsum("kch,kch->ch", slopes[sl], g)
            else:
                G[i] += np.tensordot(weights[sl], g, axes=1)
    net.forward_layers(path.zb, 0, path.start)  # inference caches of the first layers, for the way back
    return [net.input_gradient(g.astype(net.dtype), 0, path.start).astype(np.float64) for g in G]


def to_inputs(path: MemberPath, G: np.ndarray) -> np.ndarray:
    """Attributions of the member's network inputs (c, d_m) from the averaged input gradient (c, d_m)."""
    return path.dz * G
