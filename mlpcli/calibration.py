"""Temperature scaling (Guo et al., ICML 2017): one scalar T that divides the logits before the softmax
(or the sigmoids), fitted on held-out logits by minimising the log loss.

    p = softmax(z / T)          T > 1 softens over-confident probabilities, T < 1 sharpens them

Dividing every logit by the same T never changes which class has the largest logit, so the most probable
class and AUC stay as they are; only the probabilities (log loss, Brier, ECE) move. (A model that labels by the
balanced decision rule, ``mlpcli.decision``, compares P(c) / share(c), which T can reorder: it decides on the
calibrated probabilities, so its labels are those the calibration leads to.)
The held-out logits are the out-of-fold logits of a cross-fitted ensemble, or the validation logits of a
single network: never rows the network trained on.

A multi-label model's labels are separate binary classifiers sharing a network, each with its own sigmoid: each
gets a temperature of its own (T, (L,)), as a binary model does. One temperature for all of them was set by the
labels that were easy to separate and sharpened the others: a label of 4 % with a weak signal went from a mean
probability of 0.035 to 0.001 (T = 0.44). A label with fewer than MIN_LABEL_EVENTS positives or negatives among
the held-out rows keeps T = 1 (its network's own probabilities): a handful of events cannot fit one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .engine.functional import log_softmax, sigmoid, softmax, softplus
from .decision import MIN_LABEL_EVENTS
from .metrics import class_proba, expected_calibration_error

__all__ = ["MIN_ROWS", "MIN_LABEL_EVENTS", "temperature_field", "temperature_words", "Calibration", "ClassTotal",
           "class_totals", "class_totals_off", "fit_temperature", "apply_temperature", "probabilities", "temper",
           "calibration_report", "temperature_at_bound", "bound_note", "row_log_losses"]

# T is searched on log T within [1/3, 3]: a network (or an ensemble's mean) is rarely off by more, and a
# wider range let a few dozen held-out rows flatten every probability (T = 20 on NCI60's 45 rows made
# the test log loss worse than no calibration) or sharpen a near-perfect fit into confident mistakes.
LOG_T_BOUNDS = (-math.log(3.0), math.log(3.0))
# A fitted log T this close to an end of LOG_T_BOUNDS stopped there (the bounded search's tolerance is 1e-4).
_AT_BOUND = 2e-3


def temperature_at_bound(T: float) -> str | None:
    """"top" or "bottom" when the fitted temperature T stopped at an end of LOG_T_BOUNDS, else None: "3" alone
    hides that the held-out probabilities wanted more correction than one temperature gives."""
    lo, hi = LOG_T_BOUNDS
    log_t = math.log(T)
    return "top" if log_t > hi - _AT_BOUND else "bottom" if log_t < lo + _AT_BOUND else None


# A held-out log loss below this after calibration: every held-out sample called right with near-certainty
NEAR_CERTAIN_LOG_LOSS = 0.01


def bound_note(T: "float | np.ndarray", log_loss_after: float | None = None, labels=None) -> str | None:
    """What a temperature at an end of its range means (``train``'s note, ``info``'s row), or None.
    ``log_loss_after``: the held-out log loss at T; near 0 at the bottom end (a separable table, every held-out
    sample right and near-certain, so any sharpening lowers it further) the bound means no want of correction.
    A multi-label model's temperatures (L,): the labels whose temperature is at an end (``labels``: their names)."""
    if np.ndim(T) == 1:
        ends = [(j, temperature_at_bound(float(t))) for j, t in enumerate(np.asarray(T, dtype=np.float64))]
        ends = [(j, e) for j, e in ends if e is not None]
        if not ends:
            return None
        lo, hi = LOG_T_BOUNDS
        named = labels is not None and len(labels) == np.size(T)
        name = (lambda j: repr(str(labels[j]))) if named else (lambda j: f"label {j + 1}")
        return (", ".join(f"{name(j)} at the {e}" for j, e in ends) + f" of the range calibration fits "
                f"({math.exp(lo):.3g}–{math.exp(hi):.3g}): more correction was wanted than it gives")
    end = temperature_at_bound(T)
    if end is None:
        return None
    lo, hi = LOG_T_BOUNDS
    where = f"the {end} of the range calibration fits ({math.exp(lo):.3g}–{math.exp(hi):.3g})"
    if end == "bottom" and log_loss_after is not None and log_loss_after < NEAR_CERTAIN_LOG_LOSS:
        return (f"{where}, as the held-out samples were called right with near-certainty (log loss "
                f"{log_loss_after:.2g}): nothing there to correct")
    return (f"{where}: the held-out probabilities were more {'over' if end == 'top' else 'under'}confident than it "
            "can correct")
# Fewer held-out rows than this give a temperature too noisy to help on new samples: not fitted.
MIN_ROWS = 100
# A multi-label model's label needs MIN_LABEL_EVENTS held-out positives and as many negatives for a temperature of
# its own (``decision``: and for a decision rule of its own)
_EPS = 1e-12


@dataclass
class Calibration:
    """What temperature scaling did, measured on the held-out rows it was fitted on."""

    temperature: "float | list[float]"  # a multi-label model's: one per label
    n: int  # held-out rows
    log_loss_before: float
    log_loss_after: float
    ece_before: float  # 15 equal-width bins on the top-class confidence
    ece_after: float

    def to_dict(self) -> dict:
        return asdict(self)


def row_log_losses(logits: np.ndarray, y: np.ndarray, link: str, temperature=None) -> np.ndarray:
    """Each row's negative log-likelihood (n,) of its labels under ``logits`` (n, k) at ``temperature`` (one, or a
    multi-label model's one per label): softmax with y the class indices; sigmoid with y 0/1, (n,) for a binary
    model's one column or (n, L) for a multi-label model's labels, whose losses add up."""
    z = apply_temperature(np.asarray(logits, dtype=np.float64), temperature)
    if link == "softmax":
        y = np.asarray(y).reshape(-1).astype(np.int64)
        return -log_softmax(z)[np.arange(len(y)), y]
    Y = np.asarray(y, dtype=np.float64).reshape(z.shape)
    return (Y * softplus(-z) + (1.0 - Y) * softplus(z)).sum(axis=1)  # -log sigmoid(z), -log(1 - sigmoid(z))


def probabilities(logits: np.ndarray, link: str, temperature: float | None = None) -> np.ndarray:
    """Raw outputs (n, k) -> probabilities at temperature T (None: 1), float64: softmax(z / T) or sigmoid(z / T)
    per column; other links (scores without probabilities) pass through, divided by T."""
    z = apply_temperature(np.asarray(logits, dtype=np.float64), temperature)
    return softmax(z) if link == "softmax" else sigmoid(z) if link == "sigmoid" else z


def _log_loss(logits: np.ndarray, y: np.ndarray, link: str, temperature: float) -> float:
    """Mean negative log-likelihood: y holds class indices (softmax) or 0/1 columns (sigmoid)."""
    P = probabilities(logits, link, temperature)
    if link == "softmax":
        return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y.astype(np.int64)], _EPS, None))))
    Y = y.reshape(P.shape).astype(np.float64)
    return float(-np.mean(Y * np.log(np.clip(P, _EPS, None)) + (1 - Y) * np.log(np.clip(1 - P, _EPS, None))))


def _nll(logits: np.ndarray, y: np.ndarray, link: str, temperature: float) -> float:
    """The exact mean negative log-likelihood at T, from the logits themselves (log-softmax; −log σ(z) =
    softplus(−z)): no probability is clipped, so a confidently wrong row keeps pulling towards a larger T
    however large its logits (``_log_loss``'s clip at 1e-12 makes such rows flat in T, and the loss no longer
    convex in 1/T)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if link == "softmax":
        return float(-np.mean(log_softmax(z)[np.arange(len(y)), y.astype(np.int64)]))
    Y = y.reshape(z.shape).astype(np.float64)
    return float(np.mean(Y * softplus(-z) + (1 - Y) * softplus(z)))


def fit_temperature(logits: np.ndarray, y: np.ndarray, link: str) -> "float | np.ndarray":
    """The T in LOG_T_BOUNDS minimising the log loss of ``logits`` (n, k) against ``y``.

    link: "softmax" (y: class indices (n,)) or "sigmoid" (y: 0/1, (n,) or (n, 1)): one T for all outputs.
    Several sigmoid outputs (a multi-label model, y (n, L)): one T per label (L,), each fitted on its own column,
    1.0 for a label with fewer than MIN_LABEL_EVENTS held-out positives or negatives.
    The exact log loss (``_nll``) is convex in 1/T, so a bounded scalar search finds the minimum."""
    logits = np.asarray(logits, dtype=np.float64)
    if link == "sigmoid" and logits.ndim == 2 and logits.shape[1] > 1:
        Y = np.asarray(y, dtype=np.float64).reshape(logits.shape)
        events = np.minimum(Y.sum(axis=0), len(Y) - Y.sum(axis=0))
        return np.array([_fit_one(logits[:, [j]], Y[:, [j]], link) if events[j] >= MIN_LABEL_EVENTS else 1.0
                         for j in range(logits.shape[1])])
    return _fit_one(logits, y, link)


def _fit_one(logits: np.ndarray, y: np.ndarray, link: str) -> float:
    return float(np.exp(bounded_minimum(lambda s: _nll(logits, y, link, float(np.exp(s))), *LOG_T_BOUNDS, xatol=1e-4)))


def bounded_minimum(f, lo: float, hi: float, xatol: float = 1e-5, max_calls: int = 500) -> float:
    """The x in [lo, hi] minimising the scalar function f: Brent's method (golden-section steps, parabolic ones
    where they are safe), step for step as scipy.optimize.minimize_scalar(method="bounded") takes them, so the same
    x to the last bit, without importing scipy.optimize for it (0.7 s of a small run's start)."""
    sqrt_eps = np.sqrt(2.2e-16)
    golden_mean = 0.5 * (3.0 - np.sqrt(5.0))
    a, b = lo, hi
    fulc = a + golden_mean * (b - a)
    nfc, xf = fulc, fulc
    rat = e = 0.0
    fx = f(xf)
    calls = 1
    ffulc = fnfc = fx
    xm = 0.5 * (a + b)
    tol1 = sqrt_eps * np.abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    while np.abs(xf - xm) > (tol2 - 0.5 * (b - a)):
        golden = True
        if np.abs(e) > tol1:  # try a parabola through the three best points
            golden = False
            r = (xf - nfc) * (fx - ffulc)
            q = (xf - fulc) * (fx - fnfc)
            p = (xf - fulc) * q - (xf - nfc) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = np.abs(q)
            r, e = e, rat
            if np.abs(p) < np.abs(0.5 * q * r) and p > q * (a - xf) and p < q * (b - xf):  # inside, and shrinking
                rat = (p + 0.0) / q
                x = xf + rat
                if (x - a) < tol2 or (b - x) < tol2:
                    rat = tol1 * (np.sign(xm - xf) + ((xm - xf) == 0))
            else:
                golden = True
        if golden:
            e = (a - xf) if xf >= xm else (b - xf)
            rat = golden_mean * e
        x = xf + (np.sign(rat) + (rat == 0)) * np.maximum(np.abs(rat), tol1)
        fu = f(x)
        calls += 1
        if fu <= fx:
            if x >= xf:
                a = xf
            else:
                b = xf
            fulc, ffulc = nfc, fnfc
            nfc, fnfc = xf, fx
            xf, fx = x, fu
        else:
            if x < xf:
                a = x
            else:
                b = x
            if fu <= fnfc or nfc == xf:
                fulc, ffulc = nfc, fnfc
                nfc, fnfc = x, fu
            elif fu <= ffulc or fulc == xf or fulc == nfc:
                fulc, ffulc = x, fu
        xm = 0.5 * (a + b)
        tol1 = sqrt_eps * np.abs(xf) + xatol / 3.0
        tol2 = 2.0 * tol1
        if calls >= max_calls:
            break
    return float(xf)


def apply_temperature(logits: np.ndarray, temperature: "float | np.ndarray | None") -> np.ndarray:
    """Logits (n, k) divided by T, one for all columns or one per column (k,) (unchanged when T is None)."""
    return logits if temperature is None else logits / temperature


def temperature_field(T: "float | np.ndarray | None") -> "float | list[float] | None":
    """A temperature as model.json and JSON outputs hold it: one number, or a multi-label model's list, one per
    label in the model's label order."""
    if T is None:
        return None
    t = np.asarray(T, dtype=np.float64)
    return float(t) if t.ndim == 0 else [float(v) for v in t]


def temperature_words(T: "float | np.ndarray", labels=None, shown: int = 6) -> str:
    """A temperature for a summary line: "0.9332", or per label, "per label: mutA 0.771, rare 1, ..." (with
    ``labels``, the first ``shown``; without, the range)."""
    t = np.asarray(T, dtype=np.float64)
    if t.ndim == 0:
        return f"{float(t):.4g}"
    if labels is None or len(labels) != len(t):
        return f"per label {t.min():.4g}–{t.max():.4g}"
    words = ", ".join(f"{labels[j]} {t[j]:.3g}" for j in range(min(shown, len(t))))
    return f"per label: {words}" + (f" and {len(t) - shown} more" if len(t) > shown else "")


def temper(P: np.ndarray, temperature: float | None, link: str) -> np.ndarray:
    """Probabilities P (n, k) -> calibrated ones: softmax(log P / T) or sigmoid(logit P / T); values
    (link "identity") and T None pass through. For P = softmax(z) this is softmax(z / T)."""
    if temperature is None or link not in ("softmax", "sigmoid"):
        return P
    z = logits_of(P, link) / temperature
    return softmax(z) if link == "softmax" else sigmoid(z)


def logits_of(P: np.ndarray, link: str) -> np.ndarray:
    """Logits (n, k) whose softmax (sigmoid, per column) gives the probabilities P (n, k): log P (softmax ignores a
    row's constant), or logit P; probabilities of 0 or 1 held _EPS inside them."""
    if link == "softmax":
        return np.log(np.clip(P, _EPS, 1.0))
    Q = np.clip(P, _EPS, 1 - _EPS)
    return np.log(Q) - np.log1p(-Q)


def ece(P: np.ndarray, y: np.ndarray, link: str) -> float:
    """Top-label ECE (15 equal-width bins) of probabilities P (n, k): y the class indices (softmax) or 0/1 columns
    (sigmoid, each label's call and its confidence a row of its own)."""
    if link == "softmax":
        correct = P.argmax(axis=1) == y.astype(np.int64)
        return expected_calibration_error(correct, P.max(axis=1))
    Y = y.reshape(P.shape).astype(bool)
    pred = P >= 0.5
    confidence = np.where(pred, P, 1 - P)
    return expected_calibration_error((pred == Y).ravel(), confidence.ravel())


# A class whose held-out probabilities add up to more than this factor away from its count (either way), by more
# than CLASS_TOTAL_Z standard deviations of that count under the probabilities, is told of (``class_totals_off``)
CLASS_TOTAL_FACTOR = 2.0
CLASS_TOTAL_Z = 3.0


@dataclass(frozen=True)
class ClassTotal:
    """A class's held-out count against what the probabilities expect of it: ``expected`` = the sum over rows of
    P(class) at the temperature, ``before`` at T = 1."""

    index: int
    observed: int
    expected: float
    before: float

    @property
    def ratio(self) -> float:
        return self.expected / self.observed if self.observed else math.inf


def class_totals_off(logits: np.ndarray, y: np.ndarray, link: str, temperature: float | None) -> list[ClassTotal]:
    """The classes of a binary or multiclass model (``link`` softmax: y class indices; sigmoid with one column:
    y 0/1, the classes negative and positive) whose held-out probabilities at ``temperature`` add up to a count
    more than CLASS_TOTAL_FACTOR away from the class's count, by more than CLASS_TOTAL_Z standard deviations
    (sqrt of sum p (1 - p): the count's spread if the probabilities were right). One temperature calibrates every
    class together: on 500 rows with a class of 6 samples, T = 0.65 sharpened that class's probabilities to a sum
    of 1.7 (0.27 x its count), and the balanced decision rule, which divides by the class's share, called it for 4
    of 10 new samples against 9 of 10 uncalibrated. Class weights (--pos-weight 19) inflate a class's
    probabilities on purpose (4.2 x its count)."""
    logits = np.asarray(logits, dtype=np.float64)
    if link not in ("softmax", "sigmoid") or link == "sigmoid" and logits.ndim == 2 and logits.shape[1] != 1:
        return []  # no classes, or multi-label: each label its own two classes, not one mix
    return class_totals(probabilities(logits, link, temperature), y, probabilities(logits, link))


def class_totals(proba: np.ndarray, y: np.ndarray, before: np.ndarray | None = None) -> list[ClassTotal]:
    """``class_totals_off`` for probabilities as ``Model.predict_output`` gives them (one column per class, or
    P(positive) (n,) / (n, 1)) and class indices ``y``; ``before``: the same rows' uncalibrated ones."""
    y = np.asarray(y).reshape(-1).astype(np.int64)

    def columns(P: np.ndarray) -> np.ndarray:
        P = np.asarray(P, dtype=np.float64)
        return class_proba("binary", P.reshape(-1, 1)) if P.ndim == 1 or P.shape[1] == 1 else P

    P = columns(proba)
    P0 = P if before is None else columns(before)
    counts = np.bincount(y, minlength=P.shape[1])
    expected, before = P.sum(axis=0), P0.sum(axis=0)
    sd = np.sqrt(np.sum(P * (1 - P), axis=0))
    off = []
    for c in range(P.shape[1]):
        o, e = int(counts[c]), float(expected[c])
        if o == 0 or not (e > CLASS_TOTAL_FACTOR * o or e * CLASS_TOTAL_FACTOR < o):
            continue
        if abs(o - e) > CLASS_TOTAL_Z * max(float(sd[c]), 1.0):
            off.append(ClassTotal(c, o, e, float(before[c])))
    return off


def calibration_report(logits: np.ndarray, y: np.ndarray, link: str, temperature: "float | np.ndarray") -> Calibration:
    """Log loss and ECE of the held-out rows before (T = 1) and after (T) scaling."""
    before, after = probabilities(logits, link), probabilities(logits, link, temperature)
    return Calibration(temperature=temperature_field(temperature), n=int(len(y)),
                       log_loss_before=_log_loss(logits, y, link, 1.0),
                       log_loss_after=_log_loss(logits, y, link, temperature),
                       ece_before=ece(before, y, link), ece_after=ece(after, y, link))
