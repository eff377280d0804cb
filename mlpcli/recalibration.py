"""Updating a classifier's probabilities for a new population: recalibration on a labelled cohort (model updating;
Steyerberg, Clinical Prediction Models, 2nd ed. 2019, ch. 20; Van Calster et al., BMC Medicine 2019).

A model trained in one population is often miscalibrated in another (another baseline risk, another class mix,
another platform): `evaluate` measures it (observed / expected, the calibration intercept and slope). With P (n, k)
the model's calibrated probabilities on the cohort and g = log P, the recalibrated probabilities are

    P' = softmax(b g + a)          a (k,), a_0 = 0;  b > 0

which for a binary model (P(positive) = p, the two columns 1 - p and p) is logit p' = a + b logit p. Two updates:

    intercept  (recalibration in the large): b = 1, a fitted — the outcome's (the classes') frequency differs
    logistic   (logistic recalibration): a and b fitted — the probabilities are also too extreme (b < 1) or too
               moderate (b > 1)

A binary model's update keeps the order of its risks (b > 0: the ROC AUC does not move); a multiclass model's moves
the classes against each other, so one class's ranking of the samples (its one-vs-rest AUC) can change a little.
The class mix of the cohort becomes the model's: a table sampled by class (a case-control set) gives the wrong
baseline risk (give the population's mix to ``predict --prevalence`` then). ``method="auto"`` chooses by closed
testing (Vergouwe et al., Stat Med 2017): the logistic update against no update by a likelihood-ratio test on k
degrees of freedom; not significant at ``alpha``: no update; else the logistic update against the intercept one
on 1 degree of freedom: not significant: the intercept, else the logistic one. The tests count samples as
independent (patients with several samples make them anti-conservative). Both fits minimise the exact log loss,
which is convex in (a, b). Where the model's probabilities separate the cohort's classes no finite slope fits (the
loss falls for ever as b grows): the logistic update is then not offered, and the closed test chooses between no
update and the intercept (which is finite whenever every class is in the cohort). A multi-label model's labels are
each a binary model of their own (``Recalibration.labels``: an update per label).

NumPy and SciPy (minimisation, chi-square); no I/O: ``predict.recalibrate`` reads the cohort.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .distributions import chi2_sf
from .engine.functional import sigmoid, softmax
from .metrics import RECAL_MAX_SLOPE, class_proba

__all__ = ["METHODS", "Recalibration", "RecalibrationFit", "fit", "choose", "MIN_CLASS_SAMPLES", "MAX_INTERCEPT"]

METHODS = ("auto", "intercept", "logistic")
# Each class needs this many samples in the cohort for its intercept: fewer fit noise (a class absent from the
# cohort would get an intercept of minus infinity)
MIN_CLASS_SAMPLES = 10
# A fitted slope at most this is no recalibration: the model ranks the cohort's classes no better than chance, or
# the wrong way round, and a slope near 0 would replace its probabilities by the cohort's class frequencies
MIN_SLOPE = 0.05
# An intercept beyond this (on the log scale) is no update of a model but a replacement of it (a file holding one is
# refused by ``model_check``)
MAX_INTERCEPT = 1e3
# Probabilities are clipped here before their logarithm, as ``calibration.temper`` clips them
_EPS = 1e-12


def _logit(P: np.ndarray) -> np.ndarray:
    Q = np.clip(np.asarray(P, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(Q) - np.log1p(-Q)


def _log_columns(P: np.ndarray, link: str) -> np.ndarray:
    """log P (n, k) float64, one column per class: a binary sigmoid's P(positive) (n, 1) as (1 - p, p)."""
    P = np.asarray(P, dtype=np.float64)
    if link == "sigmoid":
        P = P.reshape(len(P), -1)
        if P.shape[1] != 1:
            raise ValueError("recalibration applies to binary and multiclass models, not to several sigmoid outputs")
    return np.log(np.clip(class_proba("binary" if link == "sigmoid" else "multiclass", P), _EPS, 1.0))


@dataclass
class Recalibration:
    """A model's update for a population, applied after its temperature: P' = softmax(slope log P + intercept) for a
    binary or multiclass model; for a multi-label model each label's own, logit p'_j = intercept_j + slope_j logit p_j.

    intercept: (k,) float64 with intercept[0] = 0 (a binary model's: (0, a), a on the log-odds of the positive
    class); slope: b > 0 (1 for the intercept update). A multi-label model's (``labels`` set): intercept (L,) on
    each label's log-odds, slope (L,), ``labels`` each label's update ("none", "intercept", "logistic"; method
    "per label"). ``cohort``: what it was fitted on (file name, checksum, samples, patients, class counts); ``fit``:
    the log loss before and after and the closed test's figures."""

    method: str
    intercept: np.ndarray
    slope: "float | np.ndarray"
    cohort: dict = field(default_factory=dict)
    fit: dict = field(default_factory=dict)
    labels: list[str] | None = None

    def apply(self, P: np.ndarray, link: str) -> np.ndarray:
        """The model's probabilities P (n, k) — a binary sigmoid's (n, 1) or (n,) — updated: (n, k), or a binary
        model's (n, 1), float64."""
        if self.labels is not None:
            return sigmoid(self.slope * _logit(np.asarray(P).reshape(len(P), -1)) + self.intercept)
        Q = softmax(self.slope * _log_columns(P, link) + self.intercept)
        return Q[:, 1:] if link == "sigmoid" else Q

    def undo(self, P: np.ndarray, link: str) -> np.ndarray:
        """The probabilities before ``apply`` (exact up to rounding and the clip of probabilities below 1e-12)."""
        if self.labels is not None:
            return sigmoid((_logit(np.asarray(P).reshape(len(P), -1)) - self.intercept) / self.slope)
        Q = softmax((_log_columns(P, link) - self.intercept) / self.slope)
        return Q[:, 1:] if link == "sigmoid" else Q

    def to_dict(self) -> dict:
        per_label = self.labels is not None
        return {"method": self.method, "intercept": [float(v) for v in self.intercept],
                "slope": [float(v) for v in self.slope] if per_label else float(self.slope),
                **({"labels": list(self.labels)} if per_label else {}),
                "cohort": dict(self.cohort), "fit": dict(self.fit)}

    @classmethod
    def from_dict(cls, d: dict) -> "Recalibration":
        labels = d.get("labels")
        slope = np.asarray(d["slope"], dtype=np.float64) if labels is not None else float(d["slope"])
        return cls(method=d["method"], intercept=np.asarray(d["intercept"], dtype=np.float64), slope=slope,
                   cohort=dict(d.get("cohort") or {}), fit=dict(d.get("fit") or {}),
                   labels=None if labels is None else list(labels))

    def words(self, classes=None) -> str:
        """One line for a summary: "logistic: slope 0.82, intercept +0.31 (log-odds of 'event')"."""
        if self.labels is not None:
            names = list(classes) if classes is not None and len(classes) == len(self.labels) else [
                f"label {j + 1}" for j in range(len(self.labels))]
            updated = [j for j, m in enumerate(self.labels) if m != "none"]
            shown = ", ".join(f"{names[j]} {self.labels[j]} ({self.intercept[j]:+.3g}"
                              + (f", slope {self.slope[j]:.3g})" if self.labels[j] == "logistic" else ")")
                              for j in updated[:6])
            return (f"per label: {shown}" + (f" and {len(updated) - 6} more" if len(updated) > 6 else "")
                    + f"; {len(self.labels) - len(updated)} of {len(self.labels)} labels not updated")
        k = len(self.intercept)
        if k == 2:
            shift = f"intercept {self.intercept[1]:+.3g}" + (f" (log-odds of {str(classes[-1])!r})" if classes else "")
        elif classes is not None and len(classes) == k:
            shown = ", ".join(f"{classes[j]} {self.intercept[j]:+.3g}" for j in range(1, min(k, 7)))
            shift = (f"intercepts on the log scale against {str(classes[0])!r}: {shown}"
                     + (f" and {k - 7} more" if k > 7 else ""))
        else:
            shift = f"class intercepts {float(np.min(self.intercept[1:])):+.3g} to {float(np.max(self.intercept[1:])):+.3g}"
        return f"{self.method}: {shift}" + (f", slope {self.slope:.3g}" if self.method == "logistic" else "")


@dataclass
class RecalibrationFit:
    """Both updates fitted on one cohort, and the log loss each gives (mean over the samples). ``separated``: the
    model's probabilities separate the cohort's classes, so no finite logistic update exists (its fields None)."""

    log_loss_none: float
    intercept: np.ndarray  # (k,), the intercept update's
    log_loss_intercept: float
    logistic_intercept: np.ndarray | None  # (k,)
    logistic_slope: float | None
    log_loss_logistic: float | None
    n: int
    k: int
    separated: bool = False

    def test(self, alpha: float) -> dict:
        """The closed test's figures: the likelihood-ratio statistics and p-values, and the update it keeps. With
        the classes separated, the intercept update against none on k - 1 degrees of freedom alone."""
        if self.separated:
            overall = max(0.0, 2.0 * self.n * (self.log_loss_none - self.log_loss_intercept))
            p_overall = float(chi2_sf(overall, self.k - 1))
            return {"alpha": float(alpha), "lr_overall": overall, "df_overall": self.k - 1, "p_overall": p_overall,
                    "lr_slope": None, "p_slope": None, "separated": True,
                    "chosen": "none" if p_overall >= alpha else "intercept"}
        overall = max(0.0, 2.0 * self.n * (self.log_loss_none - self.log_loss_logistic))
        slope = max(0.0, 2.0 * self.n * (self.log_loss_intercept - self.log_loss_logistic))
        p_overall, p_slope = float(chi2_sf(overall, self.k)), float(chi2_sf(slope, 1))
        chosen = "none" if p_overall >= alpha else ("intercept" if p_slope >= alpha else "logistic")
        return {"alpha": float(alpha), "lr_overall": overall, "df_overall": self.k, "p_overall": p_overall,
                "lr_slope": slope, "p_slope": p_slope, "separated": False, "chosen": chosen}


def fit(P: np.ndarray, y: np.ndarray, link: str) -> RecalibrationFit:
    """Both updates of the model's probabilities P (n, k) — a binary sigmoid's (n, 1) — against the classes y (n,)
    (indices; every class present). ValueError for a slope at most MIN_SLOPE (the model ranks the cohort no better
    than chance, or the wrong way round). Classes that the probabilities separate leave the logistic update out
    (``RecalibrationFit.separated``): the loss falls for ever as the slope grows."""
    G = _log_columns(P, link)
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    n, k = G.shape
    Y = np.zeros((n, k))
    Y[np.arange(n), y] = 1.0
    none = _loss_and_grad(np.zeros(k - 1), G, Y, False)[0]
    a_int, nll_int = _minimise(G, Y, free_slope=False)
    a_log, b_log, nll_log = _minimise(G, Y, free_slope=True)
    # separation: at a finite optimum, doubling the linear predictor raises the loss; where the classes are separated
    # it lowers it further (an optimiser stops at whatever slope makes the loss negligible, 10 or 1,000)
    theta = np.concatenate([a_log[1:], [b_log]])
    separated = b_log >= RECAL_MAX_SLOPE * 0.999 or _loss_and_grad(2.0 * theta, G, Y, True)[0] <= nll_log
    if not separated and not b_log > MIN_SLOPE:
        raise ValueError(f"the logistic update's slope is {b_log:.3g}: the model's probabilities rank this cohort's "
                         "classes no better than chance (or the wrong way round), so no recalibration can make them "
                         "fit; check that the table's labels are the model's classes, or retrain")
    if separated:
        a_log = b_log = nll_log = None
    return RecalibrationFit(log_loss_none=none, intercept=a_int, log_loss_intercept=nll_int, logistic_intercept=a_log,
                            logistic_slope=b_log, log_loss_logistic=nll_log, n=n, k=k, separated=separated)


def choose(result: RecalibrationFit, method: str, alpha: float = 0.05) -> tuple[str, np.ndarray, float, dict]:
    """(the update kept: "none" | "intercept" | "logistic", its intercept (k,), its slope, the closed test's figures)
    for ``method`` ("auto": the closed test's choice). ValueError for "logistic" where the classes are separated."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    test = result.test(alpha)
    kept = test["chosen"] if method == "auto" else method
    if kept == "logistic" and result.separated:
        raise ValueError("the model's probabilities separate this table's classes perfectly, so no finite slope fits "
                         "them (the log loss falls for ever as it grows): use --method intercept or auto, or a table "
                         "where the model makes mistakes (not rows it was trained on)")
    if kept == "none":
        return kept, np.zeros(result.k), 1.0, test
    if kept == "intercept":
        return kept, result.intercept, 1.0, test
    return kept, result.logistic_intercept, result.logistic_slope, test


def _loss_and_grad(theta: np.ndarray, G: np.ndarray, Y: np.ndarray, free_slope: bool) -> tuple[float, np.ndarray]:
    """The mean log loss of softmax(b G + a) and its gradient in theta = (a_1 ... a_{k-1}[, b]) (a_0 = 0; b = 1
    unless ``free_slope``); G = log P (n, k), Y one-hot (n, k)."""
    n, k = G.shape
    a = np.concatenate([[0.0], theta[: k - 1]])
    b = theta[k - 1] if free_slope else 1.0
    Z = b * G + a
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    S = E.sum(axis=1, keepdims=True)
    R = E / S - Y  # dNLL/dZ per sample
    value = float(-np.sum(Y * (Z - np.log(S))) / n)
    grad = [R[:, 1:].sum(axis=0) / n]
    if free_slope:
        grad.append([float(np.sum(R * G)) / n])
    return value, np.concatenate(grad)


def _minimise(G: np.ndarray, Y: np.ndarray, free_slope: bool):
    """Minimise the mean log loss of softmax(b G + a) over a (a_0 = 0) and, when ``free_slope``, b: L-BFGS on the
    exact gradient (the loss is convex; the slope bounded by RECAL_MAX_SLOPE either way)."""
    from scipy.optimize import minimize

    k = G.shape[1]

    theta0 = np.zeros(k - 1 + int(free_slope))
    bounds = [(None, None)] * (k - 1)
    if free_slope:
        theta0[-1] = 1.0
        bounds.append((-RECAL_MAX_SLOPE, RECAL_MAX_SLOPE))
    res = minimize(_loss_and_grad, theta0, args=(G, Y, free_slope), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-10})
    a = np.concatenate([[0.0], res.x[: k - 1]])
    if free_slope:
        return a, float(res.x[-1]), float(res.fun)
    return a, float(res.fun)


def p_text(p: float) -> str:
    """A p-value for a line of text."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"
