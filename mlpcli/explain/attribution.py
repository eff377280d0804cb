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
(``kink_points``; "the segmented path" below): the logit's integral is then exact, and a probability's is
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
from ..model_io import Model, require_model
from .paths import averaged_gradients, DEFAULT_STEPS, member_path, outputs_along, to_inputs, trapezoid
from .segmented_path import (integrated_seeds, kink_points, merge_points, outputs_at, segment_gradients, segment_rows,
                             segmented_members)


__all__ = ["OUTPUTS", "BASELINES", "DEFAULT_STEPS", "Chunk", "baseline_values", "class_index", "attribution_chunks",
           "integrated_gradients", "input_gradients", "completeness_gap", "target_scales"]


OUTPUTS = ("logit", "prob")
BASELINES = ("mean", "zero")
ATTR_BYTES = 64 << 20  # attributions of one chunk of samples (all targets, the model and its members)
MAX_STEPS = 100_000
REFINE_FACTOR = 16  # a row whose gap exceeds the tolerance is integrated again, with up to 16 x the steps

# The completeness gap's scale is at least this share of the output's (max(1, |f(x)|, |f(b)|)): a sample at
# the baseline would otherwise turn round-off into a large relative number.
GAP_FLOOR = 1e-6
_EPS = 1e-12  # calibration.temper clips probabilities here


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
    from ..text import written_name

    keys = [label_key(c) for c in model.classes]
    if isinstance(name, str):  # as written, else without the spaces around it ('b' for a class '  b ')
        for names in (keys, [str(c) for c in model.classes]):
            if written_name(name, names) is not None:
                return written_name(name, names)
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
    rule for every network, also a deeper ReLU-family one (``segmented_members``): cheaper on wide deep networks, where
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
    if exact and any(segmented_members(model, output == "prob" and M > 1)):  # the kinks' points, and the logits there, fit too
        step = min(step, segment_rows(model, steps, output, output == "prob" and M > 1, T, per_member))
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
    trapezoid rule; between the kinks for deeper ReLU-family networks, ``segmented_members``)."""
    M, (T, c), width = len(model.members), tc.shape, Xc.shape[1]
    # every member's logits along the path: the ensemble's probability needs them all at each point
    joint = output == "prob" and M > 1
    segmented = segmented_members(model, joint) if exact else [False] * M
    paths = [member_path(m, Xc, cols, b, transformed=transformed)
             for m, cols in zip(model.members, column_maps)]
    alphas, weights = trapezoid(steps)
    k = model.network.n_outputs
    outs = None
    if joint and not segmented[0]:
        outs = [outputs_along(p, alphas) for p in paths]
    kinks = [kink_points(p) if seg else None for p, seg in zip(paths, segmented)]
    if output == "prob":  # the logits at the kinks: affine between them
        kink_logits = [outputs_at(p, q.row, q.alpha) if q is not None else None for p, q in zip(paths, kinks)]
    if joint and segmented[0]:
        # the ensemble's probability is smooth between any member's kinks: every member's seeds are integrated
        # on the pieces of their union, once per target
        union = merge_points(*kinks)
        union_logits = [union.interpolated(m, kinks[m], kink_logits[m]) for m in range(M)]
        integrated = [integrated_seeds(union, union_logits, out_fn.seeds, t, k, steps) for t in tc]
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
                alone = [(None, integrated_seeds(kinks[m], own, lambda L, tr: [out_fn.seeds(L, tr)[0] / scale], t,
                                                  k, steps)[0]) for t in tc]
                pieces = [entry for pair in zip(pieces, alone) for entry in pair] if joint else alone
            G = segment_gradients(path, kinks[m], pieces)
        else:
            seed_sets = []
            for t in tc:
                seed_sets.append(lambda sl, logits, t=t, m=m: _ensemble_seed(out_fn, outs, sl, logits, t, m, M, k))
                if per_member and joint:  # the member alone: its own calibrated probability
                    seed_sets.append(lambda sl, logits, t=t: out_fn.seeds(
                        [logits.reshape(-1, k)], np.tile(t, sl.stop - sl.start))[0])
            G = averaged_gradients(path, alphas, weights, seed_sets)
        for i in range(T):
            A = to_inputs(path, G[i * per_target])
            values[i][:, path.columns] += A  # a member's kept features are distinct columns
            if per_member:  # logit, or one member: the member alone is M times its share
                mvals[m, i][:, path.columns] = to_inputs(path, G[i * 2 + 1]) if joint else A * M
        if per_member:
            ends_m = outputs_along(path, alphas[[0, -1]])
            for i, t in enumerate(tc):
                mfb[m, i] = out_fn.value([ends_m[0]], t)
                mfx[m, i] = out_fn.value([ends_m[1]], t)
    ends = [outputs_along(p, alphas[[0, -1]]) for p in paths] if outs is None else [o[[0, -1]] for o in outs]
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
    return top_cells(values, names, k, signed=signed)[0]


def top_cells(values: np.ndarray, names: Sequence[str], k: int, *, signed: bool = False,
              symbols: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(``top_features``' (n,) cells, and with ``symbols`` — (d,) the name to show for each feature: its gene
    symbol, or its id where it has none — the (n,) cells of those names alone, "SYMBOL;...", the same features in
    the same order, written as ``top_features`` writes a name (else None))."""
    k = min(int(k), values.shape[1])
    key = np.abs(values) if signed else values
    part = np.argpartition(-key, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(key, part, axis=1), axis=1, kind="stable")
    part = np.take_along_axis(part, order, axis=1)
    picked = np.take_along_axis(values, part, axis=1)
    kept = picked != 0 if signed else picked > 0  # (n, k)
    names = np.asarray([_cell_name(n) for n in names], dtype=object)
    cells = np.array([";".join(f"{names[j]}:{v:.4g}" for j, v, on in zip(js, vs, ons) if on)
                      for js, vs, ons in zip(part, picked, kept)], dtype=object)
    if symbols is None:
        return cells, None
    shown = np.asarray([_cell_name(n) for n in symbols], dtype=object)
    return cells, np.array([";".join(shown[j] for j, on in zip(js, ons) if on) for js, ons in zip(part, kept)],
                           dtype=object)


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
    require_model(model, "integrated_gradients takes")
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
