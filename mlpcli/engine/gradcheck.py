"""Finite-difference gradient checking, in float64, and float32 gradients against it.

For every entry theta_j of every checked array the numerical derivative is the central difference

    n_j = (f(theta + eps e_j) - f(theta - eps e_j)) / (2 eps)

and it is compared with the analytic a_j from the backward pass by the relative error

    rel_j = |a_j - n_j| / max(|a_j|, |n_j|, 1e-12).

An entry passes when rel_j <= tol. One exception keeps the check honest rather than flaky: the
central difference cannot resolve a derivative below its own round-off, about
machine_eps * |f| / eps (1e-10 for |f| ~ 1 and eps = 1e-6), so an entry whose analytic and
numerical values agree to within ``atol * max(1, |f|)`` also passes, and the report counts such
entries as ``near_zero``. A wrong backward formula gives errors of the order of the gradient
itself, far above that floor. When *every* entry of a component falls under that floor (a trained model
that fits its rows almost exactly has gradients of 1e-9 and less), or is exactly 0 on both sides (a loss flat
on the rows: every hinge margin met), nothing was compared: a gradient three times too large, or of the wrong
sign, would pass as well, so such a component is not passed but ``inconclusive``.

Inputs are drawn away from the kinks of ReLU-family activations (z = 0), MAE (o = y), Huber
(|o - y| = delta) and hinge (s t = 1), where the derivative does not exist and a central
difference straddling the kink would disagree with any subgradient.

Every activation and the classification losses are also checked at large inputs (|z| from 3 to 1,000,
``[large inputs]`` / ``[large logits]``): saturated sigmoids and tanh, one-hot softmaxes, confidently right and
wrong logits. A form that takes the exp of a large number or the log of a rounded probability gives inf or NaN
there, which fails; the saturated entries' derivatives, below the round-off floor, pass as ``near_zero``.

The ``float32`` group checks what finite differences cannot: the float32 arithmetic training runs by default.
Each network of the suite, in float32 with the float64 network's weights, must give the gradients of the
float64 one (which the ``network`` group checks against central differences) to FLOAT32_TOL.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from . import activations as act
from . import losses as loss_mod
from .layers import BatchNorm, Dense, Dropout
from .layers import Activation as ActivationLayer
from .network import MLP
from .optim import WeightPenalty

__all__ = ["CheckResult", "numerical_gradient", "compare", "check_function", "check_network", "components", "run", "UnknownComponent"]

KINK_MARGIN = 1e-3  # |z - kink| below this is redrawn: eps = 1e-6 moves z by far less
# BatchNorm in training mode normalises each unit over the rows: with one row its output is beta whatever its
# input, with two beta +- gamma (up to its epsilon), so the gradients of every layer before it are zero or
# nearly, and their check proves nothing. From three rows on they are not.
BATCHNORM_MIN_ROWS = 3
# An entry forgiven as round-off (its two gradients within the floor of each other) counts as compared only when
# its gradient is at least this many floors large: they then agree to 1 % or better.
RESOLVED_FACTOR = 100.0
# The round-off floor's default (``atol``): about 100 x what a central difference at eps 1e-6 resolves
DEFAULT_ATOL = 1e-8
# The relative tolerance's default (``tol``)
DEFAULT_TOL = 1e-6


@dataclass
class CheckResult:
    """One component's verdict."""

    component: str
    entries: int
    max_rel_error: float
    near_zero: int
    passed: bool
    note: str = ""
    inconclusive: bool = False  # every entry too small to tell from round-off: no evidence either way (not passed)
    # the largest relative error among the entries passed only within a round-off floor raised above the default
    # (--atol) that the default floor would have failed: what the raised floor forgave
    max_rel_forgiven: float = 0.0
    # the largest relative error among the entries a tol raised above the default accepted that the default tol and
    # round-off floor would have failed (--tol 0.5 passed a gradient 1.5 x the true one): what the raised tol forgave
    max_rel_tolerated: float = 0.0

    def to_dict(self) -> dict:
        """JSON-able: a non-finite error (a NaN or infinite gradient) is None."""
        doc = asdict(self)
        for key in ("max_rel_error", "max_rel_forgiven", "max_rel_tolerated"):
            if not np.isfinite(doc[key]):
                doc[key] = None
        return doc


def numerical_gradient(
    f: Callable[[], float],
    arrays: dict[str, np.ndarray],
    eps: float = 1e-6,
    entries: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Central differences of the scalar ``f()`` with respect to the entries of each array.

    The arrays are perturbed in place (and restored), so ``f`` must read them live. ``entries``
    optionally names, per array, the flat indices to difference (a sample, for large networks);
    the result then holds the derivative at those indices only, in that order.
    """
    out = {}
    for key, arr in arrays.items():
        if arr.dtype != np.float64:  # a float32 entry + 1e-6 rounds, and a float32 f() is noise at that step
            raise ValueError(f"numerical_gradient: {key!r} is {arr.dtype}; difference float64 arrays only")
        flat = arr.reshape(-1)
        if not np.shares_memory(flat, arr):  # a copy: perturbing it would leave f() unchanged
            raise ValueError(f"numerical_gradient: {key!r} is not contiguous; f() would not see its perturbations")
        chosen = np.arange(flat.size) if entries is None else np.asarray(entries[key])
        grad = np.zeros(arr.shape if entries is None else chosen.shape, dtype=np.float64)
        gflat = grad.reshape(-1)
        for i, j in enumerate(chosen):
            orig = flat[j]
            flat[j] = orig + eps
            f_plus = f()
            flat[j] = orig - eps
            f_minus = f()
            flat[j] = orig
            gflat[i] = (f_plus - f_minus) / (2.0 * eps)
        out[key] = grad
    return out


@dataclass
class _Stats:
    entries: int = 0
    max_rel: float = 0.0
    unresolved: int = 0  # forgiven entries whose gradients are under RESOLVED_FACTOR floors: nothing was compared
    max_rel_unresolved: float = 0.0
    max_rel_forgiven: float = 0.0  # over forgiven entries whose gradients were resolved (above RESOLVED_FACTOR floors)
    max_rel_resolvable: float = 0.0  # over forgiven entries the default floor would have failed (``CheckResult``)
    max_rel_tolerated: float = 0.0  # over entries within a raised tol that the default tol and floor would fail
    near_zero: int = 0
    zero: int = 0  # entries whose analytic and numerical gradients are both exactly 0: agreement, but no evidence
    failed: int = 0
    worst: str = ""


def compare(analytic: dict[str, np.ndarray], numeric: dict[str, np.ndarray], tol: float, floor: float,
            default_floor: float | None = None, default_tol: float | None = None) -> _Stats:
    """Entry-wise relative errors; ``floor`` is the absolute agreement accepted as round-off (``default_floor``: what
    it is at the default atol, for ``max_rel_resolvable``; ``default_tol``: the default tol, when ``tol`` is above it,
    for ``max_rel_tolerated``). An entry where
    either gradient is not finite (NaN, ±inf) fails with an infinite error: NaN compares False with any
    tolerance, and an infinite analytic gradient against a finite difference must not pass."""
    st = _Stats()
    for key, n in numeric.items():
        a = np.asarray(analytic[key], dtype=np.float64).reshape(n.shape)
        finite = np.isfinite(a) & np.isfinite(n)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.where(finite, np.abs(a - n), np.inf)
            rel = np.where(finite, diff / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-12), np.inf)
        bad = rel > tol
        forgiven = bad & (diff <= floor)  # below what a central difference can resolve
        st.entries += n.size
        st.near_zero += int(np.count_nonzero(forgiven))
        st.zero += int(np.count_nonzero((a == 0) & (n == 0)))
        # A forgiven entry still agreed to within floor / |gradient|: evidence when that is 1 % or less, none when
        # the gradients are about the floor's size (3e-9 against 1e-9, a gradient 3 x too large, is forgiven too).
        unresolved = forgiven & (np.maximum(np.abs(a), np.abs(n)) < RESOLVED_FACTOR * floor)
        st.unresolved += int(np.count_nonzero(unresolved))
        if np.any(unresolved):
            st.max_rel_unresolved = max(st.max_rel_unresolved, float(rel[unresolved].max()))
        if default_floor is not None:
            resolvable = forgiven & (diff > default_floor)  # forgiven only because the floor was raised
            if np.any(resolvable):
                st.max_rel_resolvable = max(st.max_rel_resolvable, float(rel[resolvable].max()))
        if default_tol is not None:  # within the raised tol, beyond the default tol and the default floor
            tolerated = ~bad & (rel > default_tol) & (diff > (floor if default_floor is None else default_floor))
            if np.any(tolerated):
                st.max_rel_tolerated = max(st.max_rel_tolerated, float(rel[tolerated].max()))
        resolved_forgiven = forgiven & ~unresolved
        if np.any(resolved_forgiven):
            st.max_rel_forgiven = max(st.max_rel_forgiven, float(rel[resolved_forgiven].max()))
        st.failed += int(np.count_nonzero(bad & ~forgiven))
        counted = ~forgiven
        if np.any(counted):
            worst = float(rel[counted].max())
            if worst > st.max_rel:
                st.max_rel, st.worst = worst, key
    return st


def check_function(
    name: str,
    f: Callable[[], float],
    arrays: dict[str, np.ndarray],
    analytic: dict[str, np.ndarray],
    eps: float,
    tol: float,
    atol: float,
    note: str = "",
    entries: dict[str, np.ndarray] | None = None,
) -> CheckResult:
    """Compare ``analytic`` gradients of ``f`` w.r.t. ``arrays`` with central differences
    (at every entry, or at the flat indices in ``entries``)."""
    value = f()
    scale = max(1.0, abs(value))
    numeric = numerical_gradient(f, arrays, eps, entries)
    if entries is not None:
        analytic = {k: np.asarray(analytic[k]).reshape(-1)[entries[k]] for k in arrays}
    st = compare(analytic, numeric, tol, atol * scale, DEFAULT_ATOL * scale if atol > DEFAULT_ATOL else None,
                 DEFAULT_TOL if tol > DEFAULT_TOL else None)
    if st.failed and st.worst:
        note = (note + "; " if note else "") + f"worst entry in {st.worst}"
    # Every entry disagreed beyond tol and was forgiven only for being below the floor, or is exactly 0 on both
    # sides (every hinge margin met, every ReLU unit dead on the rows: f does not move, and any backward formula
    # gives 0 there too): nothing was compared.
    inconclusive = st.failed == 0 and st.entries > 0 and st.unresolved + st.zero == st.entries
    if inconclusive and st.zero == st.entries:
        note = (note + "; " if note else "") + (
            f"no entry resolved: each of the {st.entries} gradients is exactly 0, analytic and numerical (f = "
            f"{value:.3g}, flat along every checked entry: e.g. every hinge margin met, or every unit dead), so "
            "a wrong gradient formula would pass too; check rows where the loss has a slope (held-out data)")
    elif inconclusive:
        which = (f"{st.zero} of the {st.entries} gradients are exactly 0, analytic and numerical, and each of the "
                 f"other {st.entries - st.zero}" if st.zero else f"each of the {st.entries} gradients")
        note = (note + "; " if note else "") + (
            f"no entry resolved: {which} is below {RESOLVED_FACTOR:g} x the "
            f"round-off floor atol x max(1, |f|) = {atol * scale:.1e} (f = {value:.3g}) and differs from its central "
            "difference by more than tol, so a wrong gradient this small would pass too; check rows with a larger "
            "loss (held-out data), or lower atol to compare them down to round-off")
    # Every entry missed tol but agreed within the round-off floor, its gradient well above it: tol is below what a
    # central difference resolves here (--tol 1e-14 passed with "max rel. error 0"). The real error, and why it passed.
    waived = not inconclusive and st.entries > 0 and st.near_zero == st.entries
    if waived:
        note = (note + "; " if note else "") + (
            f"every entry missed tol {tol:.1e} (max rel. error {st.max_rel_forgiven:.1e}) but agreed within the "
            f"round-off floor atol x max(1, |f|) = {atol * scale:.1e}: a relative tolerance below what a central "
            "difference resolves cannot bind")
    # not the 0 of no entry compared
    max_rel = st.max_rel_unresolved if inconclusive else st.max_rel_forgiven if waived else st.max_rel
    return CheckResult(name, st.entries, max_rel, st.near_zero, st.failed == 0 and not inconclusive, note,
                       inconclusive, st.max_rel_resolvable, st.max_rel_tolerated)


# --------------------------------------------------------------------------- components
def _away_from(values: np.ndarray, kinks, rng: np.random.Generator, low=-3.0, high=3.0) -> np.ndarray:
    """Redraw entries that fall within 0.05 of a kink (inputs we control directly: 50 x KINK_MARGIN)."""
    for k in kinks:
        bad = np.abs(values - k) < 0.05
        while np.any(bad):
            values[bad] = rng.uniform(low, high, size=int(bad.sum()))
            bad = np.abs(values - k) < 0.05
    return values


def _activation_checks(rng, eps, tol, atol):
    variants = [(n, {}) for n in act.names()] + [("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 0.5})]
    for name, params in variants:
        fn = act.get(name, **params)
        z = _away_from(rng.uniform(-3, 3, size=(4, 5)), fn.kinks, rng)
        R = rng.normal(size=z.shape)
        label = f"activation:{name}" + (_fmt(params) if params else "")
        note = "inputs drawn away from the kink at 0" if fn.kinks else ""
        yield check_function(label, lambda: float(np.sum(R * fn.forward(z))), {"z": z}, {"z": fn.backward(z, R)}, eps, tol, atol, note)
    for name in act.names():  # after the others, so their draws stay those of the suite without these
        fn = act.get(name)
        z = _large(rng, (4, 5))
        R = rng.normal(size=z.shape)
        yield check_function(f"activation:{name}[large inputs]", lambda: float(np.sum(R * fn.forward(z))), {"z": z},
                             {"z": fn.backward(z, R)}, eps, tol, atol, "|z| from 3 to 1,000")


def _large(rng, shape) -> np.ndarray:
    """Entries of either sign with |z| log-uniform between 3 and 1,000: where exp(|z|) overflows float64
    (from 710) and sigmoid, tanh and softmax round to exactly 0 or 1."""
    return rng.choice([-1.0, 1.0], size=shape) * 10.0 ** rng.uniform(0.5, 3.0, size=shape)


def _targets(loss: loss_mod.Loss, n: int, k: int, rng) -> np.ndarray:
    if loss.y_kind == "index":
        return rng.permutation(np.arange(n) % k)  # every class present
    if loss.name in ("mse", "mae", "huber"):
        return rng.normal(size=(n, k))
    return (rng.random((n, k)) < 0.5).astype(np.float64)


LOSS_VARIANTS: list[tuple[str, dict, int]] = [
    ("mse", {}, 3),
    ("mae", {}, 3),
    ("huber", {}, 3),
    ("huber", {"delta": 0.5}, 3),
    ("bce", {}, 1),
    ("bce", {}, 4),  # multi-label
    ("bce", {"pos_weight": 3.0, "neg_weight": 0.5}, 1),
    ("bce", {"pos_weight": [1.0, 3.0, 0.5, 2.0]}, 4),  # per-label weights, multi-label
    ("ce", {}, 4),
    ("ce", {"label_smoothing": 0.1}, 4),
    ("ce", {"class_weight": [1.0, 2.0, 0.5, 4.0]}, 4),
    ("ce", {"label_smoothing": 0.2, "class_weight": [0.5, 1.0, 3.0, 1.0]}, 4),
    ("focal", {}, 1),
    ("focal", {"gamma": 0.5, "alpha": 0.25}, 3),
    ("focal", {"gamma": 0.0}, 1),
    ("hinge", {}, 1),
]


# The classification losses again at large logits (``_large``), where only their stable forms stay finite.
LARGE_LOGIT_VARIANTS: list[tuple[str, dict, int]] = [
    ("bce", {}, 1),
    ("bce", {"pos_weight": 3.0, "neg_weight": 0.5}, 2),
    ("ce", {}, 4),
    ("ce", {"label_smoothing": 0.1, "class_weight": [1.0, 2.0, 0.5, 4.0]}, 4),
    ("focal", {}, 1),
    ("focal", {"gamma": 0.5, "alpha": 0.25}, 2),
]


def _loss_label(name: str, params: dict, k: int) -> str:
    label = f"loss:{name}" + (_fmt(params) if params else "")
    if name == "bce" and k > 1:
        label += "[multi-label]"
    return label


def _draw_loss_point(loss, n, k, rng):
    """Outputs and targets with every entry away from the loss's kinks."""
    for _ in range(200):
        out = rng.uniform(-3, 3, size=(n, k))
        y = _targets(loss, n, k, rng)
        d = loss.kink_distance(out, y) if loss.y_kind == "dense" else None
        if d is None or d.min() > 0.05:
            return out, y
    raise RuntimeError(f"could not draw a point away from the kinks of {loss.name}")  # pragma: no cover


def _loss_checks(rng, eps, tol, atol):
    n = 6
    for name, params, k in LOSS_VARIANTS:
        loss = loss_mod.get(name, **params)
        out, y = _draw_loss_point(loss, n, k, rng)
        w = rng.uniform(0.5, 2.0, size=n)
        note = "with sample weights" + ("; inputs drawn away from the kinks" if _has_kinks(loss) else "")
        yield check_function(
            _loss_label(name, params, k),
            lambda: loss.forward(out, y, w),
            {"output": out},
            {"output": loss.backward(out, y, w)},
            eps, tol, atol, note,
        )
        if type(loss).value_and_grad is not loss_mod.Loss.value_and_grad:  # the training step's own pass
            yield check_function(
                _loss_label(name, params, k) + "[value_and_grad]",
                lambda: loss.value_and_grad(out, y, w)[0],
                {"output": out},
                {"output": loss.value_and_grad(out, y, w)[1]},
                eps, tol, atol, note + "; the value and gradient a training step takes in one call",
            )
    for name, params, k in LARGE_LOGIT_VARIANTS:
        loss = loss_mod.get(name, **params)
        out, y = _large(rng, (n, k)), _targets(loss, n, k, rng)
        w = rng.uniform(0.5, 2.0, size=n)
        yield check_function(_loss_label(name, params, k) + "[large logits]", lambda: loss.forward(out, y, w),
                             {"output": out}, {"output": loss.backward(out, y, w)}, eps, tol, atol,
                             "with sample weights; |logit| from 3 to 1,000")


def _bind_standalone(layer):
    params = {k: np.zeros(s) for k, s in layer.param_shapes().items()}
    grads = {k: np.zeros(s) for k, s in layer.param_shapes().items()}
    layer.bind(params, grads)
    return layer


def _layer_checks(rng, eps, tol, atol):
    n, d_in, d_out = 5, 4, 3
    # Dense: W, b and the input.
    dense = _bind_standalone(Dense(d_in, d_out))
    dense.init_params(rng)
    x = rng.normal(size=(n, d_in))
    R = rng.normal(size=(n, d_out))
    f = lambda: float(np.sum(R * dense.forward(x)))
    f()
    gx = dense.backward(R)
    analytic = {"W": dense.grads["W"].copy(), "b": dense.grads["b"].copy(), "x": gx}
    yield check_function("layer:dense", f, {**dense.params, "x": x}, analytic, eps, tol, atol)

    # BatchNorm in training mode (batch statistics) and in inference mode (running statistics).
    for training in (True, False):
        bn = _bind_standalone(BatchNorm(d_out))
        bn.params["gamma"][...] = rng.uniform(0.5, 1.5, d_out)
        bn.params["beta"][...] = rng.normal(size=d_out)
        bn.running_mean[...] = rng.normal(size=d_out)
        bn.running_var[...] = rng.uniform(0.5, 2.0, d_out)
        h = rng.normal(size=(n, d_out)) * 2 + 1
        R2 = rng.normal(size=(n, d_out))
        f = lambda: float(np.sum(R2 * bn.forward(h, training=training)))
        f()
        gh = bn.backward(R2)
        analytic = {"gamma": bn.grads["gamma"].copy(), "beta": bn.grads["beta"].copy(), "x": gh}
        label = "layer:batchnorm(training)" if training else "layer:batchnorm(inference)"
        yield check_function(label, f, {**bn.params, "x": h}, analytic, eps, tol, atol)

    # Dropout with a fixed mask.
    drop = Dropout(0.4, np.random.default_rng(rng.integers(2**32)))
    h = rng.normal(size=(n, 6))
    R3 = rng.normal(size=h.shape)
    drop.forward(h, training=True)
    drop.frozen = True
    f = lambda: float(np.sum(R3 * drop.forward(h, training=True)))
    gh = drop.backward(R3)
    yield check_function("layer:dropout(fixed mask)", f, {"x": h}, {"x": gh}, eps, tol, atol, "mask frozen while differencing")

    # Activation layer (caches z and a) for one smooth and one kinked activation.
    for name in ("tanh", "relu"):
        layer = ActivationLayer(name)
        z = _away_from(rng.uniform(-3, 3, size=(n, d_out)), layer.fn.kinks, rng)
        R4 = rng.normal(size=z.shape)
        f = lambda: float(np.sum(R4 * layer.forward(z)))
        f()
        gz = layer.backward(R4)
        yield check_function(f"layer:activation({name})", f, {"z": z}, {"z": gz}, eps, tol, atol)


def _penalty_checks(rng, eps, tol, atol):
    net = MLP(4, [5], 3, seed=int(rng.integers(2**31)))
    params = net.parameters()
    for w in params.values():  # L1 has a kink at w = 0: keep weights away from it
        _away_from(w.reshape(-1), (0.0,), rng, -1.0, 1.0)
    for label, pen in (("penalty:l1", WeightPenalty(l1=0.3)), ("penalty:l2", WeightPenalty(l2=0.7)),
                       ("penalty:l1+l2", WeightPenalty(l1=0.1, l2=0.2))):
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        pen.add_grad(params, grads)
        note = "weights drawn away from 0 (the L1 kink); biases are not penalised"
        yield check_function(label, lambda: pen.value(params), params, grads, eps, tol, atol, note)


NETWORK_CONFIGS: list[dict] = [
    {"hidden": [], "activation": "identity"},
    {"hidden": [6], "activation": "tanh"},
    {"hidden": [6, 5], "activation": "relu"},
    {"hidden": [6, 5], "activation": "relu", "batchnorm": True},
    {"hidden": [5, 4], "activation": "gelu", "dropout": 0.3},
    {"hidden": [5, 4, 3], "activation": "leaky_relu", "batchnorm": True, "dropout": 0.2, "l1": 0.01, "l2": 0.05},
    {"hidden": [5], "activation": "sigmoid", "l2": 0.1},
    {"hidden": [5, 4], "activation": "elu"},
    {"hidden": [4], "activation": "softplus", "batchnorm": True},
]

NETWORK_LOSSES: list[tuple[str, dict, int]] = [
    ("mse", {}, 2),
    ("mae", {}, 2),
    ("huber", {"delta": 0.5}, 2),
    ("bce", {"pos_weight": 2.0}, 1),
    ("bce", {}, 3),
    ("ce", {"label_smoothing": 0.1, "class_weight": [1.0, 2.0, 0.5]}, 3),
    ("focal", {"gamma": 2.0, "alpha": 0.25}, 1),
    ("hinge", {}, 1),
]


def _describe(cfg: dict) -> str:
    parts = [f"{cfg['hidden'] or 'linear'}", cfg["activation"]]
    if cfg.get("batchnorm"):
        parts.append("batchnorm")
    if cfg.get("dropout"):
        parts.append(f"dropout={cfg['dropout']}")
    if cfg.get("l1") or cfg.get("l2"):
        parts.append(f"l1={cfg.get('l1', 0)},l2={cfg.get('l2', 0)}")
    return " ".join(str(p) for p in parts)


def _activation_kink_distance(net: MLP) -> float:
    """How close the last forward pass's pre-activations came to a kink of their activation."""
    d = np.inf
    for layer in net.layers:
        if isinstance(layer, ActivationLayer) and layer.fn.kinks:
            for k in layer.fn.kinks:
                d = min(d, float(np.abs(layer.z - k).min()))
    return d


def _kink_distance(net: MLP, out: np.ndarray, y, loss) -> float:
    d = _activation_kink_distance(net)
    if loss.y_kind == "dense":
        kd = loss.kink_distance(out, np.asarray(y).reshape(out.shape))
        if kd is not None:
            d = min(d, float(kd.min()))
    return d


def check_network(
    net: MLP,
    loss,
    X: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    penalty: WeightPenalty | None = None,
    training: bool = True,
    eps: float = 1e-6,
    tol: float = 1e-6,
    atol: float = DEFAULT_ATOL,
    name: str = "network",
    note: str = "",
    max_entries: int | None = None,
    seed: int = 0,
) -> CheckResult:
    """Check the parameter gradients of ``net`` under ``loss`` (+ ``penalty``) on (X, y).

    Every entry is checked, or with ``max_entries`` a seeded random sample of at most that many
    entries per parameter array (a trained network has too many for two forward passes each).
    Dropout masks are frozen after the first forward pass so every evaluation sees one network.
    BatchNorm running statistics are saved and restored around the check. ``net`` must be float64
    (ValueError otherwise), and a BatchNorm network in training mode needs BATCHNORM_MIN_ROWS rows of X.
    """
    if net.dtype != np.float64:
        raise ValueError(f"check_network needs a float64 network, got {net.dtype}: finite differences of a "
                         "float32 one are round-off; check a float64 copy (MLP(**{**net.config(), 'dtype': "
                         "'float64'}) with net.get_state())")
    if training and net.batchnorm and X.shape[0] < BATCHNORM_MIN_ROWS:
        raise ValueError(f"check_network: BatchNorm in training mode needs at least {BATCHNORM_MIN_ROWS} rows, got "
                         f"{X.shape[0]}: with fewer, its batch statistics make every gradient before it zero or "
                         "nearly, and the check proves nothing")
    penalty = penalty or WeightPenalty()
    saved = {k: v.copy() for k, v in net.buffers().items()}
    params = net.parameters()

    def objective() -> float:
        out = net.forward(X, training=training)
        return loss.forward(out, y, sample_weight) + penalty.value(params)

    try:
        with net.frozen_masks():  # reuses the mask of the caller's last training forward, if any
            out = net.forward(X, training=training)
            grads = {k: g.copy() for k, g in net.backward(loss.backward(out, y, sample_weight)).items()}
            penalty.add_grad(params, grads)
            entries = None
            if max_entries is not None:
                rng = np.random.default_rng(seed)
                entries = {k: np.sort(rng.choice(v.size, size=min(v.size, max_entries), replace=False))
                           for k, v in params.items()}
            return check_function(name, objective, params, grads, eps, tol, atol, note, entries)
    finally:
        for k, v in net.buffers().items():
            v[...] = saved[k]


def _has_kinks(loss) -> bool:
    return type(loss).kink_distance is not loss_mod.Loss.kink_distance


def _network_checks(rng, eps, tol, atol):
    n, d = 8, 5
    for cfg in NETWORK_CONFIGS:
        for loss_name, lparams, k in NETWORK_LOSSES:
            loss = loss_mod.get(loss_name, **lparams)
            pen = WeightPenalty(cfg.get("l1", 0.0), cfg.get("l2", 0.0))
            net_seed = int(rng.integers(2**31))
            for attempt in range(100):
                net = MLP(d, cfg["hidden"], k, activation=cfg["activation"], dropout=cfg.get("dropout", 0.0),
                          batchnorm=cfg.get("batchnorm", False), seed=net_seed + attempt, dtype="float64")
                if pen.l1:
                    for key in net.weight_keys():
                        _away_from(net.parameters()[key].reshape(-1), (0.0,), rng, -1.0, 1.0)
                X = rng.normal(size=(n, d))
                y = _targets(loss, n, k, rng)
                out = net.forward(X, training=True)  # draws the dropout mask that the check reuses
                if _kink_distance(net, out, y, loss) > KINK_MARGIN:
                    break
            notes = []
            if cfg["activation"] in ("relu", "leaky_relu", "elu") or _has_kinks(loss):
                notes.append("inputs drawn away from kinks")
            if cfg.get("dropout"):
                notes.append("dropout mask fixed")
            if cfg.get("batchnorm"):
                notes.append("batchnorm in training mode")
            name = f"network:{_describe(cfg)} / {_loss_label(loss_name, lparams, k)[5:]}"
            w = rng.uniform(0.5, 2.0, size=n)
            yield Pending(name, lambda net=net, loss=loss, X=X, y=y, w=w, pen=pen, name=name, notes=notes:
                          check_network(net, loss, X, y, w, pen, True, eps, tol, atol, name, "; ".join(notes)))
    yield Pending(LARGE_NETWORK_NAME, lambda: _large_network_check(rng, eps, tol, atol))


@dataclass
class Pending:
    """A check not made yet: its component name, and the call that makes it (``run`` makes only those ``--only``
    selects, at once, before the group's next draw: the same numbers as in the whole suite)."""

    component: str
    make: Callable[[], CheckResult]


# The paths the small networks above never take and training does: a product of more rows than layers.FEW_ROWS
# (x W^T directly, as minibatches of 64 and more, full-batch L-BFGS and prediction blocks make it), and a layer large
# enough that dL/dW is made in row blocks (``weight_grad_rows``). A wide layer's entries are sampled.
LARGE_NETWORK = dict(rows=64, d=1024, hidden=1024, k=3, entries=15)
LARGE_NETWORK_NAME = f"network:[{LARGE_NETWORK['hidden']}] tanh / ce, {LARGE_NETWORK['rows']} rows"
# Its tolerance at least: a central difference through sums of a thousand terms carries their round-off (~1e-15 of
# f over 2 eps, 5e-7 of a 3e-3 gradient: 4e-7 to 9.8e-7 over six seeds, at eps 1e-6 to 1e-4 alike); a wrong
# product or a missing block is off by 1e-2 and more
LARGE_NETWORK_TOL = 1e-5


def _large_network_check(rng, eps, tol, atol) -> CheckResult:
    from .layers import FEW_ROWS, weight_grad_rows

    cfg = LARGE_NETWORK
    net = MLP(cfg["d"], [cfg["hidden"]], cfg["k"], activation="tanh", seed=int(rng.integers(2**31)), dtype="float64")
    X = rng.normal(size=(cfg["rows"], cfg["d"]))
    y = rng.integers(0, cfg["k"], size=cfg["rows"])
    blocks = len(weight_grad_rows(cfg["hidden"], cfg["d"]))
    assert cfg["rows"] > FEW_ROWS and blocks > 1  # the paths this check is for
    name = LARGE_NETWORK_NAME
    note = (f"more rows than {FEW_ROWS} (the direct x W^T product) and dL/dW in {blocks} row blocks; "
            f"{cfg['entries']} sampled entries per array")
    if tol < LARGE_NETWORK_TOL:
        note += f"; tol {LARGE_NETWORK_TOL:g}: sums of a thousand terms carry their round-off into the differences"
    return check_network(net, loss_mod.get("ce"), X, y, None, None, True, eps, max(tol, LARGE_NETWORK_TOL), atol,
                         name, note, max_entries=cfg["entries"], seed=int(rng.integers(2**31)))


def _input_checks(rng, eps, tol, atol):
    """The outputs' gradient with respect to the inputs, ``MLP.input_gradient`` in inference mode (what
    attributions use): from the network's inputs, and from the first Dense layer's outputs (where
    integrated gradients starts its path steps). BatchNorm uses running statistics, dropout is off."""
    n, d, k = 6, 5, 3
    for cfg in NETWORK_CONFIGS:
        net_seed = int(rng.integers(2**31))
        for attempt in range(100):
            net = MLP(d, cfg["hidden"], k, activation=cfg["activation"], dropout=cfg.get("dropout", 0.0),
                      batchnorm=cfg.get("batchnorm", False), seed=net_seed + attempt, dtype="float64")
            for key, buf in net.buffers().items():  # running statistics other than the initial 0 and 1
                buf[...] = rng.uniform(0.5, 2.0, buf.shape) if key.endswith("running_var") else rng.normal(size=buf.shape)
            X = rng.normal(size=(n, d))
            net.forward(X)
            if _activation_kink_distance(net) > KINK_MARGIN:
                break
        R = rng.normal(size=(n, k))
        note = "inference mode" + ("; inputs drawn away from kinks" if cfg["activation"] in ("relu", "leaky_relu", "elu") else "")
        yield check_function(f"input:{_describe(cfg)}", lambda: float(np.sum(R * net.forward(X))), {"x": X},
                             {"x": net.input_gradient(R)}, eps, tol, atol, note)
        H = np.ascontiguousarray(net.forward_layers(X, 0, 1))  # the first Dense layer's outputs
        net.forward_layers(H, 1)
        yield check_function(f"input:{_describe(cfg)} after the first dense layer",
                             lambda: float(np.sum(R * net.forward_layers(H, 1))), {"h": H},
                             {"h": net.input_gradient(R, start=1)}, eps, tol, atol, note)


# float32 gradients against float64 ones: the largest accepted relative error of an array (its L2 norm), and the
# share of the whole gradient's norm that an array's error is measured against when its own norm is smaller (a
# bias before BatchNorm has a gradient of exactly 0, summed from terms of the whole gradient's size, and comes out
# as their float32 round-off). Measured over 30 seeds: 3e-6 at worst, 1.6e-5 for those biases.
FLOAT32_TOL = 1e-4
FLOAT32_FLOOR = 1e-2


def _float32_checks(rng, eps, tol, atol):
    """The float32 arithmetic that training runs by default (``--dtype float32``), which finite differences
    cannot check (a float32 f() is round-off at any useful step): each network of NETWORK_CONFIGS in float32,
    with the float64 network's weights, dropout mask and inputs, under every loss of NETWORK_LOSSES, must give
    float32 outputs and gradients that agree with the float64 ones (checked against central differences by the
    ``network`` group) to FLOAT32_TOL per array, in training mode, with sample weights and penalties."""
    n, d = 8, 5
    for cfg in NETWORK_CONFIGS:
        kw = dict(activation=cfg["activation"], dropout=cfg.get("dropout", 0.0), batchnorm=cfg.get("batchnorm", False))
        pen = WeightPenalty(cfg.get("l1", 0.0), cfg.get("l2", 0.0))
        worst, worst_key, entries, problems = 0.0, "", 0, []
        for loss_name, lparams, k in NETWORK_LOSSES:
            loss = loss_mod.get(loss_name, **lparams)
            seed = int(rng.integers(2**31))
            net64 = MLP(d, cfg["hidden"], k, seed=seed, dtype="float64", **kw)
            net32 = MLP(d, cfg["hidden"], k, seed=seed, dtype="float32", **kw)
            net32.set_state(net64.get_state())
            X, y, w = rng.normal(size=(n, d)), _targets(loss, n, k, rng), rng.uniform(0.5, 2.0, size=n)
            out64 = net64.forward(X, training=True).copy()
            for d32, d64 in zip(_dropouts(net32), _dropouts(net64)):  # the float64 network's mask
                d32.mask = d64.mask.astype(np.float32)
            with net32.frozen_masks():
                out32 = net32.forward(X, training=True).copy()
            found = {"output": (out32, out64)}
            g64 = {key: g.copy() for key, g in net64.backward(loss.backward(out64, y, w)).items()}
            g32 = {key: g.copy() for key, g in net32.backward(loss.backward(out32, y, w.astype(np.float32))).items()}
            pen.add_grad(net64.parameters(), g64)
            pen.add_grad(net32.parameters(), g32)
            found.update({key: (g32[key], g64[key]) for key in g64})
            total = float(np.sqrt(sum(np.vdot(g, g) for g in g64.values())))
            for key, (a32, a64) in found.items():
                entries += a32.size
                if a32.dtype != np.float32:
                    problems.append(f"{loss_name}: {key} is {a32.dtype}, not float32")
                    continue
                ref = np.linalg.norm(a64)
                err = float(np.linalg.norm(a32.astype(np.float64) - a64)
                            / max(ref, FLOAT32_FLOOR * (total if key != "output" else ref), 1e-30))
                if not np.isfinite(err) or err > worst:
                    worst, worst_key = (np.inf if not np.isfinite(err) else err), f"{loss_name}: {key}"
        passed = not problems and worst <= FLOAT32_TOL
        note = f"against the float64 gradients, {len(NETWORK_LOSSES)} losses, to {FLOAT32_TOL:g} per array (L2 norm)"
        if problems:
            note += "; " + "; ".join(problems[:3])
        elif not passed:
            note += f"; worst in {worst_key}"
        yield CheckResult(f"float32:{_describe(cfg)}", entries, worst, 0, passed, note)


def _dropouts(net: MLP) -> list[Dropout]:
    return [layer for layer in net.layers if isinstance(layer, Dropout)]


def _fmt(params: dict) -> str:
    return "(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")"


GROUPS = {
    "activation": _activation_checks,
    "loss": _loss_checks,
    "layer": _layer_checks,
    "penalty": _penalty_checks,
    "network": _network_checks,
    "input": _input_checks,
    "float32": _float32_checks,
}


def components(seed: int = 0) -> list[str]:
    """Names of every component the suite checks (the networks' named without being checked)."""
    names = []
    for group, make in GROUPS.items():
        rng = np.random.default_rng([seed, zlib.crc32(group.encode())])
        names += [r.component for r in make(rng, 1e-3, np.inf, DEFAULT_ATOL)]
    return names


class UnknownComponent(ValueError):
    """``run(only=...)`` names no component of the suite."""


def run(eps: float = 1e-6, tol: float = 1e-6, atol: float = DEFAULT_ATOL, seed: int = 0,
        only: str | None = None) -> list[CheckResult]:
    """The whole gradient-check suite (or the components matching ``only``), seeded."""
    if not 0 < eps < np.inf or not tol > 0 or not atol >= 0:  # NaN fails every comparison
        raise ValueError("eps must be finite and > 0, tol > 0 and atol >= 0")
    results = []
    for group, make in GROUPS.items():
        # each group its own stream, keyed by a stable hash of its name (not hash(): salted per process), so
        # --only sees the same draws as the whole suite, run after run
        rng = np.random.default_rng([seed, zlib.crc32(group.encode())])
        if only and not _group_may_match(group, only):
            continue
        for res in make(rng, eps, tol, atol):
            if only is None or _matches(res.component, only):
                results.append(res.make() if isinstance(res, Pending) else res)
    if only and not results:
        raise UnknownComponent(f"no gradcheck component matches {only!r}; try a group ({', '.join(GROUPS)}) or a name such as 'activation:gelu', 'loss:focal', 'layer:batchnorm'")
    return results


def _group_may_match(group: str, only: str) -> bool:
    """Whether a component of ``group`` can match ``only``: every component's name starts with "group:", so
    ``only`` must extend the group's name ("loss:ce") or begin it ("loss", "net"); other groups are not run."""
    o = only.lower()
    return o.startswith(group) or group.startswith(o)


def _matches(component: str, only: str) -> bool:
    c, o = component.lower(), only.lower()
    return c == o or c.startswith(o)
