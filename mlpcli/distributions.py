"""The few distribution functions mlpcli's checks need — the chi-square survival function, Pearson's chi-square test
of a contingency table, the normal quantile — in NumPy and the standard library, as scipy.stats computes them
(tested against it: ``tests/test_numerics_match_scikit_learn_and_scipy.py``).

Why not scipy.stats: importing it builds every distribution's docstrings, 0.7-0.8 s, which a `train` on a table
with a batch column spent for one chi-square test (``batch_confounding``) — 5 % of the README's main job.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

_EPS = 1e-16  # the continued fraction and the series stop when a step changes the value by less
_TINY = 1e-300  # Lentz's guard against a zero denominator
_MAX_STEPS = 100_000
# the half-width of a 95 % normal interval in standard errors: scipy's norm.ppf(0.975) (normal_quantile's to an ulp)
Z_95 = 1.959963984540054


def chi2_sf(x, dof: float) -> np.ndarray | float:
    """P(X >= x) for X chi-square with ``dof`` > 0 degrees of freedom: the regularized upper incomplete gamma
    function Q(dof / 2, x / 2), scipy.stats.chi2.sf(x, dof) to ~1e-14 relative (tested). x: a number or an array
    (returned as a float or an array of its shape); x <= 0 gives 1, NaN gives NaN."""
    if not dof > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {dof!r}")
    values = np.asarray(x, dtype=np.float64)
    out = upper_regularized_gamma(dof / 2.0, values.reshape(-1) / 2.0).reshape(values.shape)
    return float(out) if np.ndim(x) == 0 else out


def upper_regularized_gamma(a: float, x: np.ndarray) -> np.ndarray:
    """Q(a, x) = Γ(a, x) / Γ(a) for a > 0 and x (n,): the series of the lower function P where x < a + 1 (Q = 1 - P,
    not small there), the continued fraction of Q by the modified Lentz method elsewhere (Numerical Recipes 6.2),
    each run on every element at once until all have converged. x <= 0 gives 1; +inf gives 0; NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    out[x <= 0] = 1.0
    out[np.isposinf(x)] = 0.0
    finite = np.isfinite(x) & (x > 0)
    # the common factor x^a e^-x / Γ(a), in logs: it underflows to 0 where Q does
    series = finite & (x < a + 1.0)
    fraction = finite & ~series
    if series.any():
        xs = x[series]
        out[series] = 1.0 - _lower_series(a, xs) * np.exp(a * np.log(xs) - xs - math.lgamma(a))
    if fraction.any():
        xf = x[fraction]
        out[fraction] = _upper_fraction(a, xf) * np.exp(a * np.log(xf) - xf - math.lgamma(a))
    return np.clip(out, 0.0, 1.0, out=out, where=~np.isnan(out))


def _lower_series(a: float, x: np.ndarray) -> np.ndarray:
    """Σ_{n>=0} x^n / (a (a+1) ... (a+n)): P(a, x) = x^a e^-x / Γ(a) times it."""
    term = np.full(x.shape, 1.0 / a)
    total = term.copy()
    ap = a
    for _ in range(_MAX_STEPS):
        ap += 1.0
        term = term * x / ap
        total += term
        if np.all(np.abs(term) < np.abs(total) * _EPS):
            break
    return total


def _upper_fraction(a: float, x: np.ndarray) -> np.ndarray:
    """The continued fraction 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / (x + 5 - a - ...))):
    Q(a, x) = x^a e^-x / Γ(a) times it."""
    b = x + 1.0 - a
    c = np.full(x.shape, 1.0 / _TINY)
    d = 1.0 / np.where(np.abs(b) < _TINY, _TINY, b)
    h = d.copy()
    for i in range(1, _MAX_STEPS):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = np.where(np.abs(d) < _TINY, _TINY, d)
        c = b + an / c
        c = np.where(np.abs(c) < _TINY, _TINY, c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        if np.all(np.abs(delta - 1.0) < _EPS * 4):
            break
    return h


def chi2_independence(table: np.ndarray) -> tuple[float, float, int]:
    """Pearson's chi-square test of independence of a contingency table (r, c) of counts, without the continuity
    correction: (statistic, p-value, degrees of freedom), scipy.stats.chi2_contingency(table, correction=False)'s
    first three. A table of one row or one column has 0 degrees of freedom: statistic 0 and p 1. Every row and
    column must hold a count (an expected count of 0 is an error, as in scipy)."""
    observed = np.asarray(table, dtype=np.float64)
    if observed.ndim != 2 or observed.size == 0 or np.any(observed < 0):
        raise ValueError("a contingency table is a 2-D array of counts >= 0")
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    if np.any(expected == 0):
        raise ValueError("a row or column of the contingency table holds no count")
    dof = (observed.shape[0] - 1) * (observed.shape[1] - 1)
    if dof == 0:
        return 0.0, 1.0, 0
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(chi2_sf(statistic, dof)), dof


def normal_quantile(p: float) -> float:
    """The standard normal distribution's quantile at p in (0, 1): scipy.stats.norm.ppf(p) (the standard library's
    ``NormalDist.inv_cdf``, Wichura's algorithm AS241, as scipy's ndtri to ~1e-15)."""
    return NormalDist().inv_cdf(p)
