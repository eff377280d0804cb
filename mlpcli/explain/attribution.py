"""Integrated gradients (Sundararajan, Taly & Yan, ICML 2017) through the engine's own backward pass.

The explained function
----------------------
For class c and a model of M members (M = 1 for one network):

    output "logit":  f_c(x) = (1/M) sum_m z_mc(x)        the members' mean raw logit (no temperature);
                     a binary sigmoid network's single logit z counts for the positive class, -z for the other
    output "prob":   f_c(x) = what ``Model.predict_output`` gives for class c: the members' mean probability,
                     calibrated by the model's temperature and any recalibration for a population

where z_m(x) = network_m(pre_m(x)) and pre_m is member m's own preprocessing (log1p, imputation, kept
features, centring and scaling, the robust clip).

The path
--------
Attributions are those of the raw input features, but the path from the baseline b to the sample x runs
straight in each member's *network-input* space, z(alpha) = pre_m(b) + alpha (pre_m(x) - pre_m(b)). Every
preprocessing step is a monotone function of one feature, so this is a path from b to x in the raw
features too (IG's "path method"; for features with log1p it is straight in log space) and the raw
feature j receives the integral of df/dz_j dz_j, which equals that of df/dx_j dx_j along the path:

    A_j = (z_j(x) - z_j(b)) * integral_0^1 df/dz_j(z(alpha)) d alpha,     sum_j A_j = f(x) - f(b)

(completeness). A path straight in raw counts would spend most of its steps where log1p is flat: on the
sample data (a linear model, whose network-input path is exact to round-off) its gap with 64 steps reaches
5e-3 from the zero baseline (2e-4 from the mean), and it would need every path point's first-layer
product (below). A feature that no member keeps (constant in
training, dropped by --top-var) has no network input and gets exactly 0. A missing value is imputed,
and the imputed value is what the network sees at x: its attribution is that of the imputed value.

The integral is the trapezoid rule over ``steps`` intervals (steps + 1 points). The first Dense layer is
linear, so along a straight path its outputs move on a straight line, a0(alpha) = a0(b) + alpha
(a0(x) - a0(b)): the path points start after it, the first layer's matrix product is computed twice (at x
and at b) instead of steps + 1 times, and the averaged gradient goes back through it once
(``MLP.forward_layers``, ``MLP.input_gradient``). For a wide input (thousands of genes, where the first layer
holds nearly all the work) the whole explanation costs about two forward passes plus the path through the
small layers.

A network of two or more hidden layers whose activations are all piecewise linear (ReLU, leaky ReLU,
identity) is instead integrated piece by piece between its kinks, found layer by layer along each row's path
(``_kinks``; "the segmented path" below): the logit's integral is then exact, and a probability's is
Gauss-Legendre on sub-pieces no longer than 1 / steps, shorter where the logits move fast (a 64 -> 32
ensemble's worst gap on the sample data: 1.1e-3 with the trapezoid rule, 5e-8 so, the float32 arithmetic's
round-off).

Memory is bounded: samples go through in chunks whose attributions (targets x rows x features) take at
most ATTR_BYTES, and each chunk's path points in blocks of at most PATH_BYTES of hidden activations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ..errors import ConfigError, DataError, OptionError
from ..model_io import Member, Model

__all__ = ["OUTPUTS", "BASELINES", "DEFAULT_STEPS", "Chunk", "baseline_values", "class_index", "attribution_chunks",
           "integrated_gradients", "input_gradients", "completeness_gap", "target_scales"]

OUTPUTS = ("logit", "prob")
BASELINES = ("mean", "zero")
DEFAULT_STEPS = 64
ATTR_BYTES = 64 << 20  # attributions of one chunk of samples (all targets, the model and its members)
PATH_BYTES = 32 << 20  # hidden activations of one block of path points
MAX_STEPS = 100_000
REFINE_FACTOR = 16  # a row whose gap exceeds the tolerance is integrated again, with up to 16 x the steps
# The completeness gap's scale is at least this share of the output's (max(1, |f(x)|, |f(b)|)): a sample at
# the baseline would otherwise turn round-off into a large relative number.
GAP_FLOOR = 1e-6
_EPS = 1e-12  # calibration.temper clips probabilities here


# ── checks ───────────────────────────────────────────────────────────────────────────────────────────────


def check_model(model: Model) -> None:
    if model.task not in ("binary", "multiclass", "multilabel", "regression"):
        raise OptionError(f"explain: the model is a {model.task} model; attributions need a classification "
                          "(binary, multiclass, multi-label) or regression model")


def check_model_output(model: Model, output: str) -> str:
    """``output`` checked for ``model``: a regression model's attributions are of its predicted value (the
    members' mean, in the target's units), which "logit" (the default) names; "prob" has no meaning there."""
    check_output(output)
    if model.task == "regression" and output == "prob":
        raise OptionError("--output prob is for classification models; a regression model's attributions are of "
                          "its predicted value, in the target's units")
    return output


def target_scales(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """Each member's (sd, mean) (M, k) that turn its network outputs into the target's units
    (``Member.unscale``): a regression network trains on standardised targets; ones and zeros otherwise."""
    k = model.network.n_outputs
    sd, mean = np.ones((len(model.members), k)), np.zeros((len(model.members), k))
    for m, member in enumerate(model.members):
        if member.target_scaling:
            sd[m] = np.asarray(member.target_scaling["sd"], dtype=np.float64)
            mean[m] = np.asarray(member.target_scaling["mean"], dtype=np.float64)
    return sd, mean


def default_tol(model: Model) -> float:
    """The completeness tolerance: 1e-3 when every network computes in float64, 1e-2 in float32."""
    return 1e-3 if all(m.network.dtype == np.float64 for m in model.members) else 1e-2


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise ConfigError(f"--output {output!r} is not one of {', '.join(OUTPUTS)}")
    return output


def check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"--steps must be a whole number from 1 to {MAX_STEPS:,}, got {steps!r}")
    return int(steps)


def class_index(model: Model, name) -> int:
    """The index of class ``name`` (matched as text: 1, 1.0 and "1" all name the class 1); an OptionError (a usage error)
    naming the model's classes otherwise."""
    from ..data.labels import label_key
    from ..data.labels import numeric_fallback

    keys = [label_key(c) for c in model.classes]
    key = label_key(name) if not isinstance(name, str) else name.strip()
    for i, k in enumerate(keys):
        if k == key or str(model.classes[i]) == key:
            return i
    # as written first, else by number, as a table's labels are matched (evaluate, explain's labels): the
    # text "1.0" or "01" names the class 1 when no class is written that way
    key = numeric_fallback([key], {k: i for i, k in enumerate(keys)})[0]
    if key in keys:
        return keys.index(key)
    from ..text import quoted

    # every class counted (a single-cell model's twenty cell types were cut to ten without saying so), and the
    # class that differs only in letter case or spaces named
    near = [str(c) for c in model.classes if str(c).strip().casefold() == str(key).casefold()]
    hint = f"; did you mean {near[0]!r}?" if near else ""
    what = {"regression": "targets", "multilabel": "labels"}.get(model.task, "classes")
    raise OptionError(f"--class {str(name)!r} is not one of the model's {what} ({quoted(model.classes, 10)}){hint}")


def baseline_values(model: Model, baseline="mean") -> np.ndarray:
    """The baseline (d,) in raw values of ``model.feature_names``: "zero"; "mean", the raw values that the
    model's reference preprocessing (fitted on all training rows) maps to the training means of the network
    inputs (for log1p models the mean on the log scale, mapped back); or an array of d values. Features no
    member uses get 0 (they are never read)."""
    d = len(model.feature_names)
    if isinstance(baseline, str):
        if baseline == "zero":
            return np.zeros(d)
        if baseline != "mean":
            raise ConfigError(f"--baseline {baseline!r} is not one of {', '.join(BASELINES)}")
        pre = model.preprocessor
        means = getattr(pre, "train_mean_", None)
        if means is None or np.shape(means) != (len(pre.kept_features),) or not np.isfinite(means).all():
            raise ConfigError("--baseline mean: the model stores no training mean of its inputs; use --baseline zero")
        from ..predict.columns import training_means

        with np.errstate(over="ignore", invalid="ignore"):
            values = training_means(model)
        if not np.isfinite(values).all():
            raise ConfigError("--baseline mean: the model's training means do not map back to finite raw values; "
                              "use --baseline zero")
        if pre.config.log1p:
            values = np.maximum(values, 0.0)  # round-off below 0 would fail log1p's check
        out = np.zeros(d)
        out[pre.kept_index_] = values
        return out
    values = np.asarray(baseline, dtype=np.float64).reshape(-1)
    if values.shape != (d,):
        raise ConfigError(f"the baseline has {values.size} values; the model has {d} input features")
    return values


# ── the explained function's gradient seeds ─────────────────────────────────────────────────────────────


@dataclass
class TargetOutput:
    """Which network output a target class reads, with its sign (a binary sigmoid's class 0 is -z)."""

    model: Model
    kind: str  # "logit" | "prob"

    def __post_init__(self):
        self.link = self.model.output_activation()
        self.T = self.model.temperature
        # a recalibration for a population (``mlpcli recalibrate``): q = link(slope * g(p) + intercept) after the
        # temperature, so together they are one slope s = slope / T on g and the intercept (binary: on the log-odds)
        rc = self.model.recalibration
        self.slope = (1.0 if self.T is None else 1.0 / self.T) * (1.0 if rc is None else rc.slope)
        self.intercept = None if rc is None else np.asarray(rc.intercept, dtype=np.float64)
        self.mapped = self.T is not None or rc is not None  # the probabilities go through a calibration map
        self.per_label = rc is not None and rc.labels is not None  # a multi-label model's: one update per label
        self.sigmoid_binary = self.model.network.n_outputs == 1 and self.model.task == "binary"

    def column_and_sign(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network output column (rows,) and sign (rows,) for target classes t (rows,)."""
        if self.sigmoid_binary:
            return np.zeros_like(t), np.where(t == 1, 1.0, -1.0)
        return t, np.ones(len(t))

    def probabilities(self, out: np.ndarray) -> np.ndarray:
        """A member's uncalibrated probabilities from its logits (rows, k)."""
        from ..engine.functional import sigmoid, softmax

        return softmax(out) if self.link == "softmax" else sigmoid(out)

    def value(self, outs: list[np.ndarray], t: np.ndarray) -> np.ndarray:
        """f_t (rows,) from the members' logits ``outs`` [(rows, k)] (float64)."""
        col, sign = self.column_and_sign(t)
        rows = np.arange(len(t))
        if self.kind == "logit":
            return sign * np.mean([o[rows, col] for o in outs], axis=0)
        from ..calibration import temper

        q = self.model.recalibrated(temper(np.mean([self.probabilities(o) for o in outs], axis=0), self.T,
                                           self.link))[rows, col]
        return np.where(sign > 0, q, 1.0 - q)

    def seeds(self, outs: list[np.ndarray], t: np.ndarray) -> list[np.ndarray]:
        """df_t / d(member m's logits) (rows, k) for each member, at the members' logits ``outs``."""
        M, (n, k) = len(outs), outs[0].shape
        col, sign = self.column_and_sign(t)
        rows = np.arange(n)
        if self.kind == "logit":
            seed = np.zeros((n, k))
            seed[rows, col] = sign / M
            return [seed] * M
        P = [self.probabilities(o) for o in outs]
        pbar = np.mean(P, axis=0)
        T = self.T
        if self.link == "softmax":
            # q = softmax(log pbar / T) (calibration.temper); with c_j = pbar_j dq_t/dpbar_j and
            # w_mj = p_mj / (M pbar_j): seed_m = c * w_m - p_m (c . w_m)
            if not self.mapped:
                c = np.zeros((n, k))
                c[rows, col] = pbar[rows, col]
            else:  # q = softmax(s log pbar + a): c_j = s q_t (delta_tj - q_j)
                from ..engine.functional import softmax

                s = self.slope
                q = softmax(s * np.log(np.clip(pbar, _EPS, 1.0)) + (0.0 if self.intercept is None else self.intercept))
                c = -q * q[rows, col][:, None] * s
                c[rows, col] += q[rows, col] * s
                c[pbar < _EPS] = 0.0  # clipped: temper is flat there
            seeds = []
            for p in P:
                with np.errstate(divide="ignore", invalid="ignore"):
                    w = np.where(pbar > 0, p / (M * pbar), 0.0)
                cw = c * w
                seeds.append(sign[:, None] * (cw - p * cw.sum(axis=1, keepdims=True)))
            return seeds
        # sigmoid: q_j = sigmoid(logit(pbar_j) / T_j), one output per class (multi-label: each its own T) or the
        # positive class
        pj = pbar[rows, col]
        if T is not None and np.ndim(T) == 1:
            T = np.asarray(T, dtype=np.float64)[col]  # each row's label's temperature
        if not self.mapped:
            dq = np.ones(n)
            scale = np.ones(n)
        else:  # q = sigmoid(s logit pj + a): dq/dpj = s q (1 - q) / (pj (1 - pj))
            from ..engine.functional import sigmoid

            # a multi-label model's slope (its T, its update): each row's label's; a binary model's intercept on the
            # log-odds is the last of its two
            s = self.slope[col] if np.ndim(self.slope) == 1 else self.slope
            a = (0.0 if self.intercept is None else self.intercept[col] if self.per_label
                 else float(self.intercept[-1]))
            clipped = np.clip(pj, _EPS, 1 - _EPS)
            q = sigmoid(s * (np.log(clipped) - np.log1p(-clipped)) + a)
            dq = np.where((pj > _EPS) & (pj < 1 - _EPS), q * (1 - q) * s, 0.0)
            scale = pj * (1 - pj)
        seeds = []
        for p in P:
            pm = p[rows, col]
            with np.errstate(divide="ignore", invalid="ignore"):
                share = (pm * (1 - pm) / M if not self.mapped
                         else np.where(scale > 0, pm * (1 - pm) / (M * scale), 0.0))
            seed = np.zeros((n, k))
            seed[rows, col] = sign * dq * share
            seeds.append(seed)
        return seeds


# ── the path ─────────────────────────────────────────────────────────────────────────────────────────────


def _trapezoid(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Path points alpha (steps + 1,) and their trapezoid weights (summing to 1)."""
    alphas = np.linspace(0.0, 1.0, steps + 1)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] /= 2.0
    return alphas, weights


_PIECEWISE_LINEAR = ("relu", "leaky_relu", "identity")


@dataclass
class _MemberPath:
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


def _member_path(member: Member, X: np.ndarray, columns: np.ndarray | None, b: np.ndarray,
                 transformed: bool = False) -> _MemberPath:
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
    return _MemberPath(member, Zx.astype(np.float64) - Zb.astype(np.float64), ux, ub, Zb, start, cols)


def _outputs_along(path: _MemberPath, alphas: np.ndarray) -> np.ndarray:
    """The member's logits at every path point, (len(alphas), c, k) float64."""
    net = path.member.network
    c = path.ux.shape[0]
    out = np.empty((len(alphas), c, net.n_outputs))
    for sl, U in path.blocks(alphas):
        out[sl] = net.forward_layers(U, path.start).reshape(-1, c, net.n_outputs)
    return out


def _slope_weights(path: _MemberPath, alphas: np.ndarray) -> np.ndarray | None:
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
    if fn.name not in _PIECEWISE_LINEAR:
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


def _averaged_gradients(path: _MemberPath, alphas: np.ndarray, weights: np.ndarray,
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


def _to_inputs(path: _MemberPath, G: np.ndarray) -> np.ndarray:
    """Attributions of the member's network inputs (c, d_m) from the averaged input gradient (c, d_m)."""
    return path.dz * G


# ── the segmented path: deeper ReLU-family networks ─────────────────────────────────────────────────────
#
# Along a straight path every pre-activation of a network whose activations are all piecewise linear (ReLU,
# leaky ReLU, identity; BatchNorm and dropout are affine at inference) is piecewise linear in alpha: between
# two consecutive kinks (where a unit of any layer crosses its activation's kink) the network is affine, so the
# gradient of a logit is constant there. The kinks are found layer by layer: between the kinks found so far
# the next layer's pre-activations are linear, so its crossings are read off its values at those points. The
# first layer's kinks alone (``_slope_weights``) leave the later layers' to the trapezoid rule, whose error at
# a kink is O(h): a 16 -> 8 network's gap could stay above 1e-3 after 16 x the steps. Here the logit's
# integral is exact (one backward pass per linear piece, at its middle); a probability (softmax or sigmoid of
# logits that are affine on each piece, smooth there) is integrated with Gauss-Legendre on sub-pieces (no
# longer than 1 / steps, and shorter where the logits move fast), from the logits interpolated between the
# pieces' ends: only the k logits are evaluated at the Gauss points, and one backward pass per linear piece
# carries the integrated seed.

LOGIT_STEP = 0.5  # the most a logit moves over one Gauss-Legendre sub-piece (up to the default steps)
MAX_SUBPIECES = 4096  # per linear piece
_GAUSS_X, _GAUSS_W = np.polynomial.legendre.leggauss(3)
_GAUSS_X, _GAUSS_W = (_GAUSS_X + 1.0) / 2.0, _GAUSS_W / 2.0  # on [0, 1]


def _piecewise_linear(net) -> bool:
    return all(layer.fn.name in _PIECEWISE_LINEAR for layer in net.layers if layer.kind == "activation")


def _segmented(model: Model, joint: bool) -> list[bool]:
    """Per member: integrate piece by piece between the kinks (a piecewise-linear network with two or more
    hidden layers; one hidden layer keeps the trapezoid path, exact for logits already). ``joint``: the
    ensemble's probability reads every member at the same points, so all members or none."""
    nets = [m.network for m in model.members]
    deep = [len(net.hidden) >= 2 and _piecewise_linear(net) for net in nets]
    if joint:
        return [any(deep) and all(_piecewise_linear(net) for net in nets)] * len(nets)
    return deep


def _segment_rows(model: Model, steps: int, output: str, joint: bool, T: int, per_member: bool) -> int:
    """Rows whose path points (kinks, and the sub-pieces for probabilities) and the logits there fit PATH_BYTES,
    taking a kink per hidden unit of each member the points are shared by (about half cross on the sample
    data)."""
    M = len(model.members) if joint else 1
    k = model.network.n_outputs
    points = 2 + (steps if output == "prob" else 0) + M * max(sum(m.network.hidden) for m in model.members)
    per_point = 8 * (4 + M * k * (1 + T * (2 if per_member else 1)))  # points; logits and seeds there
    return max(1, PATH_BYTES // (points * per_point))


@dataclass
class _Points:
    """Points along each row's path, sorted by row then alpha, each row's from 0 to 1."""

    row: np.ndarray  # (P,) int64
    alpha: np.ndarray  # (P,) float64
    sets: np.ndarray | None = None  # (S, P) bool: which of the sets merged into these points hold each

    def pieces(self) -> np.ndarray:
        """Indices p of the points opening a piece [alpha[p], alpha[p + 1]] of positive length within a row."""
        return _pieces(self.row, self.alpha)

    def interpolated(self, i: int, kinks: "_Points", values: np.ndarray) -> np.ndarray:
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


def _merge(*points: _Points | None) -> _Points:
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
    return _Points(row[new], alpha[new], sets)


def _pieces(row: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.flatnonzero((row[:-1] == row[1:]) & (alpha[1:] > alpha[:-1]))


def _point_blocks(path: _MemberPath, n: int, overlap: int = 0) -> Iterator[tuple[int, int]]:
    """[start, stop) of blocks of n path points (each reaching ``overlap`` points into the next) whose hidden
    activations and gradients take at most about PATH_BYTES."""
    net = path.member.network
    widest = max([path.ux.shape[1], *net.hidden, net.n_outputs])
    step = max(1, PATH_BYTES // (widest * net.dtype.itemsize * 6))
    for s in range(0, n, step):
        yield s, min(n, s + step + overlap)


def _inputs_at(path: _MemberPath, row: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The inputs of layer ``path.start`` (len(row), h) at the path points (row, alpha)."""
    U = path.ux[row]  # (len(row), h), a copy
    U -= path.ub
    U *= alpha[:, None].astype(U.dtype)
    U += path.ub
    U[alpha == 1.0] = path.ux[row[alpha == 1.0]]  # the end points exactly as a forward pass gives them
    U[alpha == 0.0] = path.ub
    return U


def _outputs_at(path: _MemberPath, row: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The member's logits (len(row), k) float64 at the path points (row, alpha)."""
    net = path.member.network
    out = np.empty((len(row), net.n_outputs))
    for s, e in _point_blocks(path, len(row)):
        out[s:e] = net.forward_layers(_inputs_at(path, row[s:e], alpha[s:e]), path.start)
    return out


def _kinks(path: _MemberPath) -> _Points:
    """0, 1 and every alpha in between where a hidden unit of the member crosses its activation's kink along
    each row's path: the network is affine between consecutive points."""
    net = path.member.network
    c = path.ux.shape[0]
    points = _Points(np.repeat(np.arange(c), 2), np.tile([0.0, 1.0], c))
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
                found.append(_Points(row[s + p], np.clip(a0 + t * (a1 - a0), a0, a1)))
        points = _merge(*found)
        points.sets = None
    return points


def _integrated_seeds(points: _Points, logits: list[np.ndarray] | None, seed_fn, t: np.ndarray, k: int,
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


def _segment_gradients(path: _MemberPath, kinks: _Points, piece_seeds: list) -> list[np.ndarray]:
    """The path integral of d f / d z (c, d_m) for each (owners, seeds) in ``piece_seeds``: seeds (pieces, k),
    d f / d(this member's logits) integrated over pieces of the path (``_integrated_seeds``), and the index of
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


# ── chunks of samples ────────────────────────────────────────────────────────────────────────────────────


@dataclass
class Chunk:
    """Attributions of a chunk of samples, rows ``rows`` of the input."""

    rows: slice
    values: np.ndarray  # (T, c, width) attributions toward each target, in the input's columns
    fx: np.ndarray  # (T, c) f(x)
    fb: np.ndarray  # (T, c) f(baseline)
    members: np.ndarray | None = None  # (M, T, c, width) each member alone explained (its own output)
    member_fx: np.ndarray | None = None  # (M, T, c)
    member_fb: np.ndarray | None = None
    steps: np.ndarray | None = None  # (c,) path intervals each row was integrated over


def _chunk_rows(n_targets: int, width: int, n_members: int, per_member: bool) -> int:
    copies = n_targets * (1 + (n_members if per_member else 0)) + 2
    return max(1, min(4096, ATTR_BYTES // max(1, 8 * width * copies)))


def attribution_chunks(model: Model, X: np.ndarray, targets: np.ndarray, *, baseline="mean", steps: int = DEFAULT_STEPS,
                       output: str = "logit", per_member: bool = False, features: Sequence[str] | None = None,
                       transformed: bool = False, refine: float | None = None, exact: bool = True) -> Iterator[Chunk]:
    """Integrated gradients of ``model`` for rows X (n, width), chunk by chunk.

    targets (T, n) int: the class whose output each row is explained toward, per target set (a row of one
    class for a per-class explanation; the predicted class per row for per-sample reasons). X's columns are
    ``model.feature_names`` (None) or ``features`` (any order, every feature a member uses); ``baseline``
    as ``baseline_values`` takes it, in ``model.feature_names`` order, or (width,) in X's columns when
    ``features`` is given. ``transformed``: X holds a one-network model's network inputs (predict's rows,
    transformed once) and ``baseline`` its transformed baseline. ``per_member``: also each member explained
    alone (its own logit, or its own calibrated probability), for the stability of the rankings.
    ``refine``: rows whose completeness gap exceeds it are integrated again with twice the steps, up to
    REFINE_FACTOR times ``steps`` (``Chunk.steps`` says how many each row used). ``exact=False``: the trapezoid
    rule for every network, also a deeper ReLU-family one (``_segmented``): cheaper on wide deep networks, where
    the kinks are many, for a ranking of the top features that need not sum to the output's change to 1e-8
    (``predict --explain``).
    """
    check_model(model)
    check_model_output(model, output)
    steps = check_steps(steps)
    X = np.asarray(X) if isinstance(X, np.ndarray) else np.asarray(X, dtype=np.float64)
    targets = np.atleast_2d(np.asarray(targets, dtype=np.int64))
    if X.ndim != 2 or targets.shape[1] != X.shape[0]:
        raise ConfigError(f"explain: {targets.shape[1]} targets for {X.shape[0]} rows")
    n_out = len(model.classes)
    if targets.size and (targets.min() < 0 or targets.max() >= n_out):
        raise ConfigError(f"explain: target class indices must be within 0..{n_out - 1}")
    if transformed:
        if model.is_ensemble:
            raise ConfigError("explain: transformed inputs are for a one-network model")
        b = np.asarray(baseline, dtype=np.float64).reshape(-1)
        column_maps = [np.arange(X.shape[1])]
    else:
        column_maps = model._feature_maps(features if features is None or isinstance(features, list) else list(features))[0]
        b_model = baseline_values(model, baseline) if (isinstance(baseline, str) or features is None) else None
        if features is None:
            b = b_model
        elif b_model is not None:
            position = {name: j for j, name in enumerate(model.feature_names)}
            b = np.array([b_model[position[name]] for name in features])
        else:
            b = np.asarray(baseline, dtype=np.float64).reshape(-1)
        if b.shape != (X.shape[1],):
            raise ConfigError(f"the baseline has {b.size} values for a table of {X.shape[1]} feature columns")
    width, (T, n) = X.shape[1], targets.shape
    out_fn = TargetOutput(model, output)
    M = len(model.members)
    keep_members = per_member
    # a regression ensemble's value is the mean of its members' outputs each in its own units (their targets were
    # standardised on their own training rows): each member is integrated alone and scaled (``_in_target_units``)
    per_member = per_member or (model.task == "regression" and M > 1)
    step = _chunk_rows(T, width, M, per_member)
    if exact and any(_segmented(model, output == "prob" and M > 1)):  # the kinks' points, and the logits there, fit too
        step = min(step, _segment_rows(model, steps, output, output == "prob" and M > 1, T, per_member))
    for s in range(0, n, step):
        rows = slice(s, min(n, s + step))
        chunk = _in_target_units(model, _one_chunk(model, out_fn, X[rows], targets[:, rows], b, steps, output,
                                                   per_member, column_maps, transformed, exact), targets[:, rows])
        used = np.full(chunk.fx.shape[1], steps)
        while refine is not None:
            # rows whose path integral is not yet within `refine`: again with twice the steps (a smooth
            # activation, or a probability: the trapezoid rule's error falls with the step)
            gap = completeness_gap(chunk.values, chunk.fx, chunk.fb).max(axis=0)
            bad = np.flatnonzero((gap > refine) & (used < steps * REFINE_FACTOR))
            if not bad.size:
                break
            more = 2 * int(used[bad].max())
            again = _in_target_units(model, _one_chunk(model, out_fn, X[rows][bad], targets[:, rows][:, bad], b, more,
                                                       output, per_member, column_maps, transformed, exact),
                                     targets[:, rows][:, bad])
            used[bad] = more
            for name in ("values", "fx", "fb"):
                getattr(chunk, name)[:, bad] = getattr(again, name)
            if per_member:
                for name in ("members", "member_fx", "member_fb"):
                    getattr(chunk, name)[:, :, bad] = getattr(again, name)
        chunk.rows, chunk.steps = rows, used
        if not keep_members:
            chunk.members = chunk.member_fx = chunk.member_fb = None
        yield chunk


def _in_target_units(model: Model, chunk: "Chunk", tc: np.ndarray) -> "Chunk":
    """A regression model's chunk, integrated over its members' raw outputs (``kind`` logit), in the target's
    units: member m's value is sd_m z_m + mean_m, so its attributions are sd_m times those of z_m (an affine map
    moves no attribution between genes), and the model's value is the members' mean. Other tasks pass through."""
    if model.task != "regression":
        return chunk
    sd, mean = target_scales(model)  # (M, k)
    S, mu = sd[:, tc], mean[:, tc]  # (M, T, c)
    if len(model.members) == 1 and chunk.members is None:
        chunk.values = chunk.values * S[0][..., None]
        chunk.fx, chunk.fb = chunk.fx * S[0] + mu[0], chunk.fb * S[0] + mu[0]
        return chunk
    chunk.members = chunk.members * S[..., None]
    chunk.member_fx, chunk.member_fb = chunk.member_fx * S + mu, chunk.member_fb * S + mu
    chunk.values = chunk.members.mean(axis=0)
    chunk.fx, chunk.fb = chunk.member_fx.mean(axis=0), chunk.member_fb.mean(axis=0)
    return chunk


def _one_chunk(model: Model, out_fn: "TargetOutput", Xc: np.ndarray, tc: np.ndarray, b: np.ndarray, steps: int,
               output: str, per_member: bool, column_maps, transformed: bool, exact: bool = True) -> "Chunk":
    """Attributions of the rows Xc (c, width) toward the targets tc (T, c), integrated over ``steps`` (the
    trapezoid rule; between the kinks for deeper ReLU-family networks, ``_segmented``)."""
    M, (T, c), width = len(model.members), tc.shape, Xc.shape[1]
    # every member's logits along the path: the ensemble's probability needs them all at each point
    joint = output == "prob" and M > 1
    segmented = _segmented(model, joint) if exact else [False] * M
    paths = [_member_path(m, Xc, cols, b, transformed=transformed)
             for m, cols in zip(model.members, column_maps)]
    alphas, weights = _trapezoid(steps)
    k = model.network.n_outputs
    outs = None
    if joint and not segmented[0]:
        outs = [_outputs_along(p, alphas) for p in paths]
    kinks = [_kinks(p) if seg else None for p, seg in zip(paths, segmented)]
    if output == "prob":  # the logits at the kinks: affine between them
        kink_logits = [_outputs_at(p, q.row, q.alpha) if q is not None else None for p, q in zip(paths, kinks)]
    if joint and segmented[0]:
        # the ensemble's probability is smooth between any member's kinks: every member's seeds are integrated
        # on the pieces of their union, once per target
        union = _merge(*kinks)
        union_logits = [union.interpolated(m, kinks[m], kink_logits[m]) for m in range(M)]
        integrated = [_integrated_seeds(union, union_logits, out_fn.seeds, t, k, steps) for t in tc]
    values = np.zeros((T, c, width))
    fx, fb = np.empty((T, c)), np.empty((T, c))
    mvals = np.zeros((M, T, c, width)) if per_member else None
    mfx, mfb = (np.empty((M, T, c)), np.empty((M, T, c))) if per_member else (None, None)
    per_target = 2 if per_member and joint else 1
    for m, path in enumerate(paths):
        if segmented[m]:
            owners = union.owners(m) if joint else None
            pieces = [(owners, integrated[i][m]) for i in range(T)] if joint else []
            if per_member or not joint:
                # the member alone (its own probability, or its share of the members' mean logit) is smooth
                # between its own kinks (logit: constant)
                own = [kink_logits[m]] if output == "prob" else None
                scale = M if out_fn.kind == "logit" else 1  # the members' mean logit; a probability: M is 1 here
                alone = [(None, _integrated_seeds(kinks[m], own, lambda L, tr: [out_fn.seeds(L, tr)[0] / scale], t,
                                                  k, steps)[0]) for t in tc]
                pieces = [entry for pair in zip(pieces, alone) for entry in pair] if joint else alone
            G = _segment_gradients(path, kinks[m], pieces)
        else:
            seed_sets = []
            for t in tc:
                seed_sets.append(lambda sl, logits, t=t, m=m: _ensemble_seed(out_fn, outs, sl, logits, t, m, M, k))
                if per_member and joint:  # the member alone: its own calibrated probability
                    seed_sets.append(lambda sl, logits, t=t: out_fn.seeds(
                        [logits.reshape(-1, k)], np.tile(t, sl.stop - sl.start))[0])
            G = _averaged_gradients(path, alphas, weights, seed_sets)
        for i in range(T):
            A = _to_inputs(path, G[i * per_target])
            values[i][:, path.columns] += A  # a member's kept features are distinct columns
            if per_member:  # logit, or one member: the member alone is M times its share
                mvals[m, i][:, path.columns] = _to_inputs(path, G[i * 2 + 1]) if joint else A * M
        if per_member:
            ends_m = _outputs_along(path, alphas[[0, -1]])
            for i, t in enumerate(tc):
                mfb[m, i] = out_fn.value([ends_m[0]], t)
                mfx[m, i] = out_fn.value([ends_m[1]], t)
    ends = [_outputs_along(p, alphas[[0, -1]]) for p in paths] if outs is None else [o[[0, -1]] for o in outs]
    for i, t in enumerate(tc):
        fb[i] = out_fn.value([e[0] for e in ends], t)
        fx[i] = out_fn.value([e[1] for e in ends], t)
    return Chunk(slice(0, c), values, fx, fb, mvals, mfx, mfb)


def _ensemble_seed(out_fn: TargetOutput, outs, sl: slice, logits: np.ndarray, t: np.ndarray, m: int, M: int,
                   k: int) -> np.ndarray:
    """d f_t / d(member m's logits) at the path points ``sl`` ((a, c, k) logits of member m), (a * c, k)."""
    tr = np.tile(t, sl.stop - sl.start)
    if outs is not None:  # the ensemble's probability: every member's logits at these points
        return out_fn.seeds([o[sl].reshape(-1, k) for o in outs], tr)[m]
    seed = out_fn.seeds([logits.reshape(-1, k)], tr)[0]  # the member alone (M = 1 in the formula)
    return seed / M if out_fn.kind == "logit" else seed  # logit: the members' mean; prob: M is 1 here


def completeness_gap(values: np.ndarray, fx: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """The completeness gap per sample (fx's shape): |sum_j A_j - (f(x) - f(b))| relative to the larger of
    |f(x) - f(b)| and sum_j |A_j|, the attributions' own scale (genes pushing both ways can sum to a small
    change, and an error of the path integral is then small against the attributions but not against their
    sum), and at least GAP_FLOOR * max(1, |f(x)|, |f(b)|) (a sample at the baseline)."""
    delta = fx - fb
    scale = np.maximum(np.maximum(np.abs(delta), np.abs(values).sum(axis=-1)),
                       GAP_FLOOR * np.maximum(1.0, np.maximum(np.abs(fx), np.abs(fb))))
    return np.abs(values.sum(axis=-1) - delta) / scale


def _cell_name(name) -> str:
    """A feature's name as a ``top_features`` entry writes it: a ``;`` (MaxQuant's protein groups,
    "P12345;Q67890") would split one entry in two, so it is percent-encoded as ``%3B``, and ``%`` as ``%25``
    (``urllib.parse.unquote`` restores the name); a ``:`` stays (peaks, "chr1:100-200"): the score follows the
    last one."""
    name = str(name)
    return name.replace("%", "%25").replace(";", "%3B") if ("%" in name or ";" in name) else name


def top_features(values: np.ndarray, names: Sequence[str], k: int, *, signed: bool = False) -> np.ndarray:
    """Per row of attributions (n, d), "NAME:score;..." for its k largest, largest first, scores with 4
    significant digits; only positive ones (those that push toward the explained class): a gene at 0 (one at
    the baseline, or filled in with its training mean) or against the class is no reason for the call, so a
    row may list fewer than k, or none (""). (n,) object array. ``signed`` (a regression model's predicted
    value): the k largest by |score|, each with its sign (+ raises the value, - lowers it); only 0 is left out.

    Read a cell back by splitting it at ``;``, each entry at its last ``:``, and ``urllib.parse.unquote`` on the
    name (``_cell_name``: a name's ``;`` and ``%`` are written ``%3B`` and ``%25``)."""
    k = min(int(k), values.shape[1])
    key = np.abs(values) if signed else values
    part = np.argpartition(-key, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(key, part, axis=1), axis=1, kind="stable")
    part = np.take_along_axis(part, order, axis=1)
    picked = np.take_along_axis(values, part, axis=1)
    names = np.asarray([_cell_name(n) for n in names], dtype=object)
    return np.array([";".join(f"{names[j]}:{v:.4g}" for j, v in zip(js, vs) if (v != 0 if signed else v > 0))
                     for js, vs in zip(part, picked)], dtype=object)


# ── the Python API ───────────────────────────────────────────────────────────────────────────────────────


def _targets(model: Model, target, n: int) -> tuple[np.ndarray, bool]:
    """(T, n) class indices for ``target``: a class name (one (n, d) result), a list of names, None (every
    class), or an array (n,) of per-row class names; and whether the result has a leading class axis."""
    if target is None:
        return np.repeat(np.arange(len(model.classes))[:, None], n, axis=1), True
    if hasattr(target, "to_numpy"):  # a pandas Series of per-row classes
        target = target.to_numpy()
    if isinstance(target, np.ndarray) and target.ndim == 1:
        if target.shape != (n,):
            raise DataError(f"target has {len(target)} per-row classes for {n} rows")
        return np.array([[class_index(model, t) for t in target.tolist()]]), False
    if isinstance(target, (list, tuple)):
        return np.array([[class_index(model, t)] * n for t in target]).reshape(len(target), n), True
    return np.full((1, n), class_index(model, target)), False


def _in_model_order(model: Model, X, features: Sequence[str] | None) -> np.ndarray:
    """Raw rows X (n, d) in ``model.feature_names`` order, float64: a DataFrame's columns (or ``features``, X's
    names) matched by name, a feature no member uses and X lacks NaN (never read); an array without names
    must have the model's d columns, in its order."""
    X, features = model.inputs(X, features)  # a DataFrame: its feature columns by name, the others left out
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise DataError(f"X must be a 2-D array (samples x features), got shape {X.shape}")
    d = len(model.feature_names)
    if features is None:
        if X.shape[1] != d:
            raise DataError(f"X has {X.shape[1]} columns; the model has {d} input features "
                            "(pass features= to match columns by name)")
        return X
    features = [str(f) for f in features]
    if len(features) != X.shape[1]:
        raise DataError(f"features= gives {len(features)} names for X's {X.shape[1]} columns")
    model._feature_maps(features)  # a feature a member uses missing, or named twice: a DataError
    position = {name: j for j, name in enumerate(features)}
    have = [j for j, name in enumerate(model.feature_names) if name in position]
    ordered = np.full((X.shape[0], d), np.nan)
    ordered[:, have] = X[:, [position[model.feature_names[j]] for j in have]]
    return ordered


def integrated_gradients(model: Model, X, target=None, *, baseline="mean", steps: int = DEFAULT_STEPS,
                         output: str = "logit", features: Sequence[str] | None = None,
                         tol: float | None = None, return_gap: bool = False):
    """Integrated-gradients attributions of ``model``'s output toward ``target`` for raw rows X (n, d).

    X: raw feature values as predict reads them, columns ``model.feature_names`` (or named by ``features``;
    a DataFrame's columns are matched by name, its other columns left out). The result's last axis (d) is
    always ``model.feature_names``, whatever X's column order, so ``model.feature_names[j]`` names column j
    (a feature the model does not use gets 0, also where a DataFrame lacks it; one it uses that X lacks is a
    DataError naming it). target: a class name -> an array
    (n, d); a list of names, or None for every class -> (n_targets, n, d); an array of n class names ->
    (n, d), each row toward its own class. baseline: "mean" (the training mean the model stores), "zero", or
    d raw values in ``model.feature_names`` order. output: "logit" (the members' mean logit) or "prob" (the
    probability predict gives). The rows of each class's result sum to f(x) - f(baseline) up to the
    trapezoid rule's error over ``steps`` intervals (to round-off for ReLU-family networks of two or more
    hidden layers, integrated between their kinks): rows whose relative gap exceeds ``tol`` (default: 1e-3
    for float64 networks, 1e-2 for float32) are integrated again with more steps (up to 16 x). With
    ``return_gap`` the relative gaps (same leading shape, without d) come too.

        >>> A = integrated_gradients(model, X, target="Basal")      # (n, d)
        >>> top = np.argsort(-A.mean(axis=0))[:20]                  # the genes pushing toward Basal
        >>> [model.feature_names[j] for j in top]
    """
    X = _in_model_order(model, X, features)  # (n, d): the result's columns are the model's features
    targets, stacked = _targets(model, target, X.shape[0])
    values = np.zeros((targets.shape[0], X.shape[0], X.shape[1]))
    gaps = np.zeros(targets.shape)
    for chunk in attribution_chunks(model, X, targets, baseline=baseline, steps=steps, output=output,
                                    refine=default_tol(model) if tol is None else tol):
        values[:, chunk.rows] = chunk.values
        gaps[:, chunk.rows] = completeness_gap(chunk.values, chunk.fx, chunk.fb)
    result = values if stacked else values[0]
    if return_gap:
        return result, (gaps if stacked else gaps[0])
    return result


def input_gradients(model: Model, X, target, *, output: str = "logit") -> np.ndarray:
    """d f_target / d x (n, d) at raw rows X (n, d) in ``model.feature_names`` order (a DataFrame's columns
    matched by name; the result's columns are always the model's features): the engine's input
    gradient of each member's network, taken back through the member's preprocessing by its Jacobian
    (``Preprocessor.jacobian``). Features no member uses, and missing (imputed) values, get exactly 0.
    ``target``: a class name, or an array of n class names."""
    check_model(model)
    check_model_output(model, output)
    X = _in_model_order(model, X, None)
    t = _targets(model, target, X.shape[0])[0][0]
    out_fn = TargetOutput(model, output)
    G = np.zeros(X.shape)
    logits, states = [], []
    for member in model.members:
        pre, net = member.preprocessor, member.network
        Xk = np.take(X, pre.kept_index_, axis=1)
        Z = np.ascontiguousarray(pre.transform_kept(Xk, dtype=net.dtype))
        logits.append(net.forward(Z).astype(np.float64))
        states.append((member, Xk, Z))
    seeds = out_fn.seeds(logits, t)
    if model.task == "regression":  # each member's output in the target's units: sd_m z_m + mean_m
        sd = target_scales(model)[0]
        seeds = [seed * sd[m][t][:, None] for m, seed in enumerate(seeds)]
    for (member, Xk, Z), seed in zip(states, seeds):
        net, pre = member.network, member.preprocessor
        net.forward(Z)
        gz = net.input_gradient(seed.astype(net.dtype)).astype(np.float64)
        G[:, pre.kept_index_] += gz * pre.jacobian(Xk)
    return G
