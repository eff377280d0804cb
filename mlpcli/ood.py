"""Per-sample out-of-distribution scores, calibrated into p-values on held-out training rows (NumPy only).

The representation is the model's own input: the rows after the reference preprocessing (log1p, centring,
scaling, clipping), the same values the network and the cohort-shift check see. The score is the distance
of probabilistic PCA (Tipping & Bishop 1999) from the training rows:

    d = z − mean;  t = V d (the top r principal components)
    score = ( Σ_j t_j² / λ_j  +  ‖d − Vᵀt‖² / σ² ) / p

a Mahalanobis distance in the r leading directions plus the residual outside them measured against the
average variance of the remaining directions σ², divided by the p features so that a typical training row
scores about 1. A sample of a kind the training data lacked (another tissue, a tumour type never seen)
moves along directions the training rows do not vary in, which the residual term catches.

Calibration: for each held-out part of training (each member's fold, or the validation rows), a basis
fitted on the other rows scores the held-out rows, so the calibration scores are what new samples from
the training distribution get. A new sample's p-value is (1 + #{calibration scores ≥ its score}) / (m + 1):
under exchangeability P(p ≤ α) ≤ α, so ``--ood-alpha 0.01`` flags about 1 % of in-distribution samples.

What the model stores (bounded, in weights.npz under ``ood/``): the mean (p,), the r ≤ MAX_COMPONENTS
components (r, p) and their variances (r,), σ² (model.json), and at most MAX_CALIBRATION sorted
calibration scores. Fitting uses at most MAX_ROWS rows (a seeded subsample) and a randomised SVD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_COMPONENTS", "MAX_ROWS", "MAX_CALIBRATION", "OODBasis", "fit_basis", "calibrate"]

MAX_COMPONENTS = 20
MAX_ROWS = 4000  # rows the bases are fitted and calibrated on, at most
MAX_ROW_BYTES = 256 << 20  # and at most this much of float64 transformed rows
MAX_CALIBRATION = 20_000
_POWER_ITERATIONS = 3
_OVERSAMPLE = 10


@dataclass
class OODBasis:
    """A fitted PPCA distance and its held-out calibration scores."""

    mean: np.ndarray  # (p,)
    components: np.ndarray  # (r, p) orthonormal rows
    variances: np.ndarray  # (r,) > 0
    noise: float  # σ² > 0: the mean variance of the directions outside the components
    calibration: np.ndarray  # (m,) sorted held-out scores (empty before `calibrate`)

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def score(self, Z: np.ndarray) -> np.ndarray:
        """(n,) scores of transformed rows Z (n, p), about 1 for a typical training row."""
        D = np.asarray(Z, dtype=np.float64) - self.mean
        T = D @ self.components.T
        t2 = T * T
        residual = np.maximum(np.einsum("ij,ij->i", D, D) - t2.sum(axis=1), 0.0)
        return ((t2 / self.variances).sum(axis=1) + residual / self.noise) / self.n_features

    def p_value(self, scores: np.ndarray) -> np.ndarray:
        """(n,) conformal p-values: (1 + calibration scores ≥ s) / (m + 1)."""
        m = len(self.calibration)
        at_least = m - np.searchsorted(self.calibration, np.asarray(scores, dtype=np.float64), side="left")
        return (1.0 + at_least) / (m + 1.0)

    def describe(self) -> dict:
        return {"n_features": self.n_features, "n_components": int(len(self.variances)), "noise": float(self.noise),
                "n_calibration": int(len(self.calibration))}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components, "variances": self.variances,
                "calibration": self.calibration}


def _top_components(D: np.ndarray, r: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The r leading right singular vectors (r, p) and singular values (r,) of the centred D (n, p):
    exact for small matrices, a randomised range finder with power iterations (Halko et al. 2011) else."""
    n, p = D.shape
    if min(n, p) <= 4 * (r + _OVERSAMPLE):
        _, s, Vt = np.linalg.svd(D, full_matrices=False)
        return Vt[:r], s[:r]
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(D @ rng.standard_normal((p, r + _OVERSAMPLE)))[0]
    for _ in range(_POWER_ITERATIONS):
        Q = np.linalg.qr(D.T @ Q)[0]
        Q = np.linalg.qr(D @ Q)[0]
    _, s, Vt = np.linalg.svd(Q.T @ D, full_matrices=False)
    return Vt[:r], s[:r]


def fit_basis(Z: np.ndarray, seed: int = 0) -> OODBasis:
    """The PPCA distance of rows Z (n, p), n >= 2."""
    Z = np.asarray(Z, dtype=np.float64)
    n, p = Z.shape
    mean = Z.mean(axis=0)
    D = Z - mean
    total = float(np.einsum("ij,ij->", D, D)) / max(n - 1, 1)  # the summed variance of all p directions
    r = min(MAX_COMPONENTS, p, max(n - 1, 1))
    V, s = _top_components(D, r, seed)
    variances = s ** 2 / max(n - 1, 1)
    floor = max(total, 1e-12) * 1e-9  # directions without variance carry no Mahalanobis term
    keep = variances > floor
    V, variances = V[keep], variances[keep]
    rest = max(p - len(variances), 1)
    noise = max((total - float(variances.sum())) / rest, floor, 1e-12)
    return OODBasis(mean=mean, components=np.ascontiguousarray(V), variances=variances, noise=float(noise),
                    calibration=np.zeros(0))


def calibrate(Z: np.ndarray, parts: list[tuple[np.ndarray, np.ndarray]], seed: int = 0,
              Z_held: np.ndarray | None = None) -> OODBasis:
    """The basis fitted on all rows Z (n, p), calibrated on held-out scores: for each (train, held) pair of
    row indices into Z, a basis fitted on Z[train] scores Z[held] (``Z_held`` instead of Z for the held rows
    when they are another table: ``--val-data``)."""
    scores = []
    for train, held in parts:
        if len(train) < 2 or len(held) == 0:
            continue
        fold_basis = fit_basis(Z[train], seed)
        scores.append(fold_basis.score((Z if Z_held is None else Z_held)[held]))
    basis = fit_basis(Z, seed)
    cal = np.sort(np.concatenate(scores)) if scores else np.zeros(0)
    if len(cal) > MAX_CALIBRATION:  # evenly spaced order statistics: the same p-values to 1 / MAX_CALIBRATION
        cal = cal[np.linspace(0, len(cal) - 1, MAX_CALIBRATION).round().astype(np.int64)]
    basis.calibration = cal
    return basis


def sample_rows(n: int, n_features: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most MAX_ROWS rows (and MAX_ROW_BYTES of float64 features) out of n: all of
    them when they fit, else a seeded random subsample."""
    limit = max(2, min(MAX_ROWS, MAX_ROW_BYTES // (8 * max(n_features, 1))))
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
