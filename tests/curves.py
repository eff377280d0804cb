"""Seeded generator of realistic learning curves, one family per diagnosis label.

Every curve is built like a real run: exponential-decay losses starting near the baseline ``B``
(a freshly initialised classifier predicts roughly the prior), the training loss taken at mid-epoch
(it is the mean over the epoch's minibatches) and the validation loss at the end of the epoch, then
noise: multiplicative (log-normal, sometimes heavy-tailed), slow autocorrelated AR(1) wiggles and a
small additive part. Lengths run from 15 to 400 epochs (log-uniform) and baselines from 0.05 to 5;
half the cases hand the baseline to the labeller, half do not.

Each family is drawn from wide ranges and *accepted* only if its noise-free curves match the
notes' description unambiguously (the ``ok = ...`` line of each family). Near-boundary runs are
real, but a test that asserts one label for them would be asserting a coin flip. ``R/tau`` is the
run length in time constants; levels are fractions of ``B``; "last quarter" = its final 25 %.

underfit_capacity       R/tau 3-15, plateau 0.8-1.0 B (val 0.99-1.08x); 30 % with a too-high
                        learning rate (noisier curves). Both change <= 1 % of B in the last quarter.
underfit_stopped_early  R/tau 0.5-1.8, plateau 0.02-0.4 B, val 0-0.08 B above. Both fall
                        >= 4 % of B in the last quarter.
overfit                 train R/tau 2.5-8 to 0-0.2 B; validation follows, then rises after 15-65 %
                        of the run by 0.08-0.5 B (linear, accelerating or saturating). It must end
                        >= 0.08 B above its minimum, the minimum in the first 80 % of the run.
good_fit                R/tau 6-14, plateau 0.03-0.45 B, gap -0.015..0.06 B, slow drift <= 2.5 %
                        of B. Both change <= 1 % of B in the last quarter, end gap <= 0.07 B.
unrepresentative_train  train R/tau 1-3 (or a fast then a slow phase) to 0-0.15 B; validation
                        settles (R/tau 5-12) 0.15-0.45 B above the training end. Training falls
                        >= 3 % of B in the last quarter; validation changes <= 1 % and never rises.
unrepresentative_validation_noisy
                        good-fit shapes (R/tau 3-12, plateau 0.12-0.5 B); validation noise
                        log-normal s.d. 15-45 % of its level, half of them Student-t (df 3-10).
validation_below_train  R/tau 3-12; training-mode loss (inflated by dropout) 0.15-0.6 B, validation
                        plateau 45-85 % of it, below training at every epoch, end gap
                        >= max(0.05 B, 15 % of train); training changes <= 1.5 % of B in the last
                        quarter. Half the runs record an inference-mode training loss near val.

Noise of the other families: training log-normal s.d. 0.3-3 % (3-6 % with a too-high learning
rate), validation 1-7 %, AR(1) s.d. up to 2-3 % with rho 0.5-0.95, additive up to 0.4 % of B.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlpcli.diagnosis import LABELS  # one family per label, in its order (the seeds use the index)

MAX_TRIES = 200  # rejection sampling: every family is accepted in a few tries on average


@dataclass
class Case:
    """One generated run: the curves, what the labeller is told, and the truth."""

    label: str
    index: int
    train: np.ndarray  # (n,)
    val: np.ndarray  # (n,)
    baseline: float | None  # passed to the labeller (None: it must scale by the first epochs)
    true_baseline: float
    train_eval: np.ndarray | None = None  # inference-mode training loss, when recorded
    stochastic: bool = False  # the run used dropout
    truth: dict = field(default_factory=dict)  # e.g. {"divergence_epoch": 57}

    @property
    def id(self) -> str:
        base = "B" if self.baseline is not None else "noB"
        return f"{self.label}-{self.index}-n{len(self.train)}-{base}"


# --- building blocks ---------------------------------------------------------------------------


def _times(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch times: training loss is the mean over epoch e (~ its middle), validation at its end."""
    e = np.arange(n, dtype=float)
    return e + 0.5, e + 1.0


def _decay(t: np.ndarray, start: float, plateau: float, tau: float) -> np.ndarray:
    return plateau + (start - plateau) * np.exp(-t / tau)


def _ar1(rng: np.random.Generator, n: int, sd: float, rho: float) -> np.ndarray:
    """Stationary AR(1) with marginal s.d. ``sd``: slow, correlated wiggles."""
    out = np.empty(n)
    out[0] = rng.normal(0, sd)
    innov = rng.normal(0, sd * np.sqrt(1 - rho**2), n)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + innov[i]
    return out


def _noisy(rng: np.random.Generator, y: np.ndarray, B: float, mult: float, ar: float,
           add: float, heavy: bool = False) -> np.ndarray:
    """y * exp(multiplicative + AR(1)) + additive; heavy=True uses Student-t (df 3-10) jumps."""
    n = len(y)
    if heavy:
        df = rng.uniform(3, 10)
        eps = rng.standard_t(df, n) * np.sqrt((df - 2) / df)
    else:
        eps = rng.normal(0, 1, n)
    log_noise = mult * eps + _ar1(rng, n, ar, rng.uniform(0.5, 0.95))
    out = y * np.exp(log_noise - 0.5 * mult**2) + rng.normal(0, add * B, n)
    return np.maximum(out, 1e-3 * B)


def _train_noise(rng, y, B, high: bool = False):
    mult = rng.uniform(0.03, 0.06) if high else rng.uniform(0.003, 0.03)
    return _noisy(rng, y, B, mult, rng.uniform(0, 0.02), rng.uniform(0, 0.003))


def _val_noise(rng, y, B, high: bool = False):
    mult = rng.uniform(0.03, 0.07) if high else rng.uniform(0.01, 0.07)
    return _noisy(rng, y, B, mult, rng.uniform(0, 0.03), rng.uniform(0, 0.004))


def _quarter_change(y: np.ndarray) -> float:
    """Noise-free change over the last quarter of the run (negative = falling)."""
    q = max(2, int(np.ceil(0.25 * len(y))))
    return float(y[-1] - y[-q])


def _common(rng: np.random.Generator) -> tuple[int, float, float]:
    n = int(round(np.exp(rng.uniform(np.log(15), np.log(400)))))
    B = float(np.exp(rng.uniform(np.log(0.05), np.log(5))))
    L0 = B * rng.uniform(0.95, 1.2)  # initial loss near the baseline (e.g. CE ~ ln K at init)
    return n, B, L0


# --- the families: each returns (train, val, extras) noise-free, or None to reject -------------


def _good_fit(rng, n, B, L0):
    tt, tv = _times(n)
    tau = n / rng.uniform(6, 14)  # settled: >= 6 time constants
    p_t = B * rng.uniform(0.03, 0.45)
    p_v = max(p_t + B * rng.uniform(-0.015, 0.06), 0.01 * B)  # small, stable gap
    drift = B * rng.uniform(0, 0.025)  # a slow last improvement of at most 2.5 % of the baseline
    train = _decay(tt, L0, p_t, tau) - drift * tt / n
    val = _decay(tv, L0 * rng.uniform(0.9, 1.0), p_v, tau * rng.uniform(0.8, 1.3))
    val = val - drift * rng.uniform(0, 1) * tv / n
    ok = (abs(_quarter_change(train)) <= 0.01 * B and abs(_quarter_change(val)) <= 0.01 * B
          and abs(val[-1] - train[-1]) <= 0.07 * B and min(train.min(), val.min()) > 0)
    return (train, val, {}) if ok else None


def _stopped_early(rng, n, B, L0):
    tt, tv = _times(n)
    tau = n / rng.uniform(0.5, 1.8)  # stopped after 0.5-1.8 time constants
    p_t = B * rng.uniform(0.02, 0.4)
    p_v = p_t + B * rng.uniform(0, 0.08)
    train = _decay(tt, L0, p_t, tau)
    val = _decay(tv, L0 * rng.uniform(0.9, 1.0), p_v, tau * rng.uniform(0.8, 1.4))
    ok = _quarter_change(train) <= -0.04 * B and _quarter_change(val) <= -0.04 * B
    return (train, val, {}) if ok else None


def _capacity(rng, n, B, L0):
    tt, tv = _times(n)
    tau = n / rng.uniform(3, 15)
    p_t = min(B * rng.uniform(0.8, 1.0), 0.98 * L0)  # plateau near the baseline
    p_v = p_t * rng.uniform(0.99, 1.08)
    train = _decay(tt, L0, p_t, tau)
    val = _decay(tv, L0 * rng.uniform(0.97, 1.0), p_v, tau * rng.uniform(0.8, 1.3))
    ok = abs(_quarter_change(train)) <= 0.01 * B and abs(_quarter_change(val)) <= 0.01 * B
    return (train, val, {"lr_too_high": bool(rng.random() < 0.3)}) if ok else None


def _overfit(rng, n, B, L0):
    tt, tv = _times(n)
    tau = n / rng.uniform(2.5, 8)
    p_t = B * rng.uniform(0.0, 0.2)
    p_v = p_t + B * rng.uniform(0.02, 0.2)
    train = _decay(tt, L0, p_t, tau)
    val = _decay(tv, L0 * rng.uniform(0.9, 1.0), p_v, tau * rng.uniform(0.7, 1.2))
    t_d = n * rng.uniform(0.15, 0.65)
    u = np.clip((tv - t_d) / (n - t_d), 0, 1)
    shape = rng.choice(["linear", "accelerating", "saturating"])
    h = {"linear": u, "accelerating": u**2,
         "saturating": (1 - np.exp(-3 * u)) / (1 - np.exp(-3))}[shape]
    val = val + B * rng.uniform(0.08, 0.5) * h
    i_min = int(np.argmin(val))
    ok = val[-1] - val[i_min] >= 0.08 * B and i_min <= 0.8 * n
    return (train, val, {"divergence_epoch": i_min + 1, "shape": str(shape)}) if ok else None


def _unrepresentative_train(rng, n, B, L0):
    tt, tv = _times(n)
    p_t = B * rng.uniform(0.0, 0.15)
    if rng.random() < 0.5:  # one slow exponential
        train = _decay(tt, L0, p_t, n / rng.uniform(1.0, 3.0))
    else:  # fast first phase, then slow memorisation
        slow = B * rng.uniform(0.15, 0.45)
        train = (p_t + (L0 - p_t - slow) * np.exp(-tt / (n / rng.uniform(5, 10)))
                 + slow * np.exp(-tt / (n / rng.uniform(0.5, 1.5))))
    p_v = min(train[-1] + B * rng.uniform(0.15, 0.45), 0.85 * L0)  # settles much higher
    val = _decay(tv, L0 * rng.uniform(0.9, 1.0), p_v, n / rng.uniform(5, 12))
    ok = (_quarter_change(train) <= -0.03 * B and abs(_quarter_change(val)) <= 0.01 * B
          and val[-1] - train[-1] >= 0.15 * B and np.all(np.diff(val) <= 0))
    return (train, val, {}) if ok else None


def _noisy_validation(rng, n, B, L0):
    tt, tv = _times(n)
    tau = n / rng.uniform(3, 12)
    p_t = B * rng.uniform(0.12, 0.5)
    p_v = p_t + B * rng.uniform(-0.01, 0.08)
    train = _decay(tt, L0, p_t, tau)
    val = _decay(tv, L0 * rng.uniform(0.9, 1.0), p_v, tau * rng.uniform(0.8, 1.3))
    return train, val, {}


def _below_train(rng, n, B, L0):
    tt, tv = _times(n)
    tau = n / rng.uniform(3, 12)
    p_t = B * rng.uniform(0.15, 0.6)  # training-mode loss, inflated by dropout
    p_v = p_t * rng.uniform(0.45, 0.85)
    tau_v = tau * rng.uniform(0.8, 1.2)
    train = _decay(tt, L0, p_t, tau)
    val = _decay(tv, L0 * rng.uniform(0.85, 1.0), p_v, tau_v)
    train_eval = _decay(tv, L0 * rng.uniform(0.85, 1.0), p_v * rng.uniform(0.9, 1.05), tau_v)
    ok = (np.all(val < train) and train[-1] - val[-1] >= max(0.05 * B, 0.15 * train[-1])
          and abs(_quarter_change(train)) <= 0.015 * B)  # the notes: "stable train loss"
    return (train, val, {"train_eval": train_eval}) if ok else None


FAMILIES = {
    "underfit_capacity": _capacity,
    "underfit_stopped_early": _stopped_early,
    "overfit": _overfit,
    "good_fit": _good_fit,
    "unrepresentative_train": _unrepresentative_train,
    "unrepresentative_validation_noisy": _noisy_validation,
    "validation_below_train": _below_train,
}


def make_case(label: str, index: int, seed: int = 0) -> Case:
    """The ``index``-th seeded run of the family ``label``: noise-free shape, then noise."""
    rng = np.random.default_rng([seed, LABELS.index(label), index])
    for _ in range(MAX_TRIES):
        n, B, L0 = _common(rng)
        drawn = FAMILIES[label](rng, n, B, L0)
        if drawn is not None:
            break
    else:  # pragma: no cover - the families accept within a few tries
        raise RuntimeError(f"could not draw a {label} curve")
    train, val, extra = drawn
    truth = {k: v for k, v in extra.items() if k != "train_eval"}
    high_lr = bool(extra.get("lr_too_high", False))
    noisy_train = _train_noise(rng, train, B, high=high_lr)
    if label == "unrepresentative_validation_noisy":  # a small validation set: big, jumpy wiggles
        mult, heavy = rng.uniform(0.15, 0.45), bool(rng.random() < 0.5)
        noisy_val = _noisy(rng, val, B, mult, rng.uniform(0, 0.03), rng.uniform(0, 0.004),
                           heavy=heavy)
        truth.update(val_noise=float(mult), heavy_tailed=heavy)
    else:
        noisy_val = _val_noise(rng, val, B, high=high_lr)
    train_eval, stochastic = None, False
    if "train_eval" in extra:
        stochastic = True
        if rng.random() < 0.5:
            train_eval = _train_noise(rng, extra["train_eval"], B)
    baseline = B if rng.random() < 0.5 else None
    return Case(label, index, noisy_train, noisy_val, baseline, B, train_eval, stochastic, truth)


def generate_suite(per_label: int = 40, seed: int = 0) -> list[Case]:
    """``per_label`` seeded runs of every label, in ``LABELS`` order."""
    return [make_case(label, i, seed) for label in LABELS for i in range(per_label)]


def confusion_table(truth: list[str], predicted: list[str], labels=LABELS) -> str:
    """Rows: true label; columns: predicted label (abbreviated), with per-row accuracy."""
    short = {lab: "".join(w[0] for w in lab.split("_")) for lab in labels}
    width = max(len(lab) for lab in labels)
    head = " " * width + " | " + " ".join(f"{short[lab]:>5}" for lab in labels) + " |   acc"
    lines = [head, "-" * len(head)]
    for t in labels:
        row = [sum(1 for a, p in zip(truth, predicted) if a == t and p == q) for q in labels]
        total = sum(row)
        acc = row[labels.index(t)] / total if total else float("nan")
        lines.append(f"{t:>{width}} | " + " ".join(f"{v:>5}" for v in row) + f" | {acc:5.2f}")
    lines.append("columns: " + ", ".join(f"{short[lab]}={lab}" for lab in labels))
    return "\n".join(lines)


# --- ensembles ---------------------------------------------------------------------------------

ENSEMBLE_SHAPES = ("overfit", "disagree")


def ensemble_history(shape: str, n_members: int = 5, seed: int = 0) -> list[dict]:
    """History rows of a cross-fitted ensemble, as the fit loop records them with a ``member``
    key first: members of different lengths (early stopping), each with its own validation fold.

    "overfit": every member's validation loss falls to its minimum around epoch 20 and then rises
    by ~0.2 over 40 epochs while training keeps falling; the members agree within a few % (folds
    of a similar make-up). "disagree": good-fit shapes whose validation levels lie 0.1-0.5 apart and
    wiggle independently by 35 % (folds of a few dozen samples, of a different make-up).
    """
    if shape not in ENSEMBLE_SHAPES:
        raise ValueError(f"shape must be one of {ENSEMBLE_SHAPES}")
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_members):
        n = int(rng.integers(45, 80))
        t_train, t_val = _times(n)
        train = _decay(t_train, 0.7, 0.05, 8.0) * np.exp(rng.normal(0, 0.01, n))
        if shape == "overfit":
            val = (_decay(t_val, 0.7, 0.3, 6.0) + 0.005 * np.maximum(t_val - 20, 0)) * (1 + rng.normal(0, 0.02))
            val *= np.exp(rng.normal(0, 0.02, n))
        else:
            level = 0.1 + 0.4 * k / max(1, n_members - 1)
            val = _decay(t_val, 0.7, level, 6.0) * np.exp(rng.normal(0, 0.35, n))
        best = np.minimum.accumulate(val)
        for e in range(n):
            rows.append({"member": k + 1, "epoch": e + 1, "train_loss": float(train[e]), "val_loss": float(val[e]),
                         "best_epoch": int(np.flatnonzero(val[: e + 1] == best[e])[0]) + 1})
    return rows
