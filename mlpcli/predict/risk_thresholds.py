"""A binary model's risks read at thresholds a clinician chooses: decision curves (net benefit against treating
everyone and no one; Vickers & Elkin 2006) and operating points (sensitivity, specificity, PPV and NPV at a risk, or
the risk that reaches a sensitivity or specificity), with intervals from resampling patients."""

from __future__ import annotations

import math
import numbers
import warnings as _warnings

import numpy as np

from ..errors import OptionError
from .bootstrap import percentile_ci


MAX_RISK_THRESHOLDS = 100  # --net-benefit / --operating-points: a table row each (and a resample column each)


def _listed(items) -> list:
    """A library caller's thresholds or targets as a list: "0.1,sens=0.9" as the command line gives them, one number,
    or any iterable (a string is not read one character at a time)."""
    if isinstance(items, str):
        return [x.strip() for x in items.split(",") if x.strip()]
    if isinstance(items, numbers.Real):
        return [items]
    return list(items)


def check_risk_thresholds(task: str, thresholds, option: str = "--net-benefit") -> list[float] | None:
    """``option``'s thresholds (--net-benefit, --operating-points), each a risk in (0, 1), sorted; an OptionError for a
    model without binary risks."""
    if thresholds is None:
        return None
    if task != "binary":
        raise OptionError(f"{option} reads a binary model's risks at thresholds; this model is {task}")
    thresholds = _listed(thresholds)
    try:
        values = sorted({float(t) for t in thresholds})
    except (TypeError, ValueError):
        raise OptionError(f"{option}: thresholds must be numbers, e.g. 0.05,0.1,0.2; got {thresholds!r}") from None
    bad = [t for t in values if not 0.0 < t < 1.0]
    if not values:
        raise OptionError(f"{option}: no threshold given; give risks between 0 and 1, e.g. 0.1,0.2,0.5")
    if bad:
        raise OptionError(f"{option}: thresholds must be risks strictly between 0 and 1, got "
                          f"{', '.join(f'{t:g}' for t in bad)}")
    if len(values) > MAX_RISK_THRESHOLDS:
        raise OptionError(f"{option}: {len(values):,} thresholds; give at most {MAX_RISK_THRESHOLDS} (a table row "
                          "each)")
    return values


def _resampled(y: np.ndarray, groups, bootstrap: int, seed: int, stream: int, figures) -> dict[str, list] | None:
    """95 % percentile intervals of ``figures(unit_of, M)``'s arrays (B, T) over ``bootstrap`` resamples of patients
    (rows without a group column), drawn from [seed, stream] (apart from the metrics' draws, which stay as they were,
    and from each other option's): {key: T intervals, each [lo, hi] or None where the figure is undefined in too
    many resamples (``percentile_ci``)}. None for a table of one patient: every resample is the same rows."""
    from ..metrics_resampled import unit_multiplicities

    _, unit_of = np.unique(np.asarray(groups, dtype=str), return_inverse=True) if groups is not None else \
        (None, np.arange(len(y)))
    n_units = int(unit_of.max()) + 1 if len(unit_of) else 0
    if n_units < 2:
        return None
    rng = np.random.default_rng([int(seed), stream])
    M = unit_multiplicities(rng.integers(0, n_units, size=(int(bootstrap), n_units)), n_units)
    draws = figures(unit_of, M)
    return {k: [percentile_ci(v[:, j], bootstrap) for j in range(v.shape[1])] for k, v in draws.items()}


def _positive_risk(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba, dtype=np.float64).reshape(len(y), -1)[:, -1]


def net_benefit_rows(task: str, y: np.ndarray, proba: np.ndarray, thresholds, groups, bootstrap: int, seed: int) -> list:
    """``evaluate``'s net_benefit rows: per threshold the model's net benefit, treating everyone's, treating no
    one's (0), and the model's margin over the better of the two, with 95 % intervals resampling patients (rows
    without a group column) when ``bootstrap``."""
    from .. import metrics

    values = check_risk_thresholds(task, thresholds)
    p = _positive_risk(y, proba)
    point = metrics.net_benefit(y, p, values)

    def with_margin(unit_of, M):
        draws = metrics.net_benefit(y, p, values, unit_of, M)
        return {**draws, "margin": draws["model"] - np.maximum(draws["treat_all"], 0.0)}

    ci = _resampled(y, groups, bootstrap, seed, 0x4E42, with_margin) if bootstrap else None
    rows = []
    for j, t in enumerate(values):
        model, treat_all = float(point["model"][j]), float(point["treat_all"][j])
        row = {"threshold": t, "model": model, "treat_all": treat_all, "treat_none": 0.0,
               "margin": model - max(treat_all, 0.0)}
        if bootstrap:
            row.update({f"{k}_ci": None if ci is None else ci[k][j] for k in ("model", "treat_all", "margin")})
        rows.append(row)
    return rows


OPERATING_FIGURES = ("sensitivity", "specificity", "ppv", "npv")


_TARGET_NAMES = {"sens": "sensitivity", "sensitivity": "sensitivity", "spec": "specificity",
                 "specificity": "specificity"}


def check_operating_points(task: str, items) -> tuple[list[float], list[tuple[str, float]]] | None:
    """--operating-points' items as (risk thresholds in (0, 1), sorted; targets [("sensitivity" | "specificity",
    level in (0, 1])]): a number is a risk threshold, ``sens=0.9`` / ``spec=0.95`` (or the words in full) the
    threshold that reaches that sensitivity or specificity on the table. OptionError for anything else."""
    if items is None:
        return None
    if task != "binary":
        raise OptionError(f"--operating-points reads a binary model's risks at thresholds; this model is {task}")
    items = _listed(items)
    risks, targets = [], []
    for item in items:
        if isinstance(item, str) and "=" in item:
            name, _, level = item.partition("=")
            figure = _TARGET_NAMES.get(name.strip().lower())
            try:
                value = float(level)
            except ValueError:
                value = math.nan
            if figure is None or not 0.0 < value <= 1.0:
                raise OptionError(f"--operating-points: {item.strip()!r} is not a target; give sens=LEVEL or "
                                  "spec=LEVEL with a level in (0, 1], e.g. sens=0.9")
            if (figure, value) not in targets:
                targets.append((figure, value))
        else:
            try:
                risks.append(float(item))
            except (TypeError, ValueError):
                raise OptionError(f"--operating-points: {item!r} is neither a risk threshold nor a target (sens=0.9, "
                                  "spec=0.95)") from None
    values = check_risk_thresholds(task, risks, "--operating-points") if risks else []
    if not risks and not targets:
        raise OptionError("--operating-points: no threshold given; give risks between 0 and 1 or targets, e.g. "
                          "0.1,0.2,sens=0.9")
    if len(values) + len(targets) > MAX_RISK_THRESHOLDS:
        raise OptionError(f"--operating-points: {len(values) + len(targets):,} thresholds and targets; give at most "
                          f"{MAX_RISK_THRESHOLDS} (a table row each)")
    return values, targets


def operating_point_rows(task: str, y: np.ndarray, proba: np.ndarray, items, groups, bootstrap: int,
                      seed: int) -> list:
    """``evaluate``'s operating_points rows: per risk threshold the samples called positive (count and share),
    sensitivity, specificity, PPV and NPV (None where undefined); then per target (sens=0.9) the threshold that first
    reaches it on this table (``metrics.at_target``: chosen on the rows it is scored on) and the figures there. With
    ``bootstrap``, 95 % intervals resampling patients (rows without a group column; a target's threshold chosen again
    in each resample, so its interval holds that choice's spread) — None for a figure undefined in too many
    resamples, or a table of one patient."""
    from .. import metrics

    values, targets = check_operating_points(task, items)
    p = _positive_risk(y, proba)
    point = metrics.operating_points(y, p, values)
    ci = ci_targets = None
    if bootstrap:
        with _warnings.catch_warnings():  # 0 / 0 in a resample: undefined there, as in the point figure
            _warnings.simplefilter("ignore", RuntimeWarning)
            if values:
                ci = _resampled(y, groups, bootstrap, seed, 0x4F50,
                                lambda u, M: metrics.operating_points(y, p, values, u, M))
            if targets:
                ci_targets = _resampled(y, groups, bootstrap, seed, 0x4F54,
                                        lambda u, M: _targets_resampled(y, p, targets, u, M))
    rows = []
    for j, t in enumerate(values):
        row = {"threshold": t, "target": None, "called": int(np.sum(p >= t)), "called_share": float(point["called"][j])}
        for k in OPERATING_FIGURES:
            v = float(point[k][j])
            row[k] = v if math.isfinite(v) else None
            if bootstrap:
                row[f"{k}_ci"] = None if ci is None else ci[k][j]
        rows.append(row)
    for j, (figure, level) in enumerate(targets):
        at = {k: float(v[0]) for k, v in metrics.at_target(y, p, figure, level).items()}
        chosen = math.isfinite(at["threshold"])  # (no events, or no non-events, to reach the target on: none)
        row = {"threshold": at["threshold"] if chosen else None, "target": f"{figure} >= {level:g}",
               "called": int(np.sum(p >= at["threshold"])) if chosen else None,
               "called_share": at["called"] if chosen else None}
        if bootstrap:
            row["threshold_ci"] = None if ci_targets is None else ci_targets["threshold"][j]
        for k in OPERATING_FIGURES:
            row[k] = at[k] if math.isfinite(at[k]) else None
            if bootstrap:
                row[f"{k}_ci"] = None if ci_targets is None else ci_targets[k][j]
        rows.append(row)
    return rows


def _targets_resampled(y: np.ndarray, p: np.ndarray, targets, unit_of: np.ndarray, M: np.ndarray,
                       entries: int = 1 << 21) -> dict[str, np.ndarray]:
    """``metrics.at_target`` for each target over the resamples M (B, U) of units ``unit_of`` (n,): {figure (incl.
    "threshold"): (B, targets)}, the rows' weights made for as many resamples at a time as hold ``entries`` values
    (16 MiB, and a few such arrays of cumulative sums: B x n floats at once would be 1.6 GB for 1,000 resamples of
    200,000 rows)."""
    from .. import metrics

    chunk = max(1, entries // max(1, len(unit_of)))
    out: dict[str, list] = {}
    for s in range(0, len(M), chunk):
        W = M[s:s + chunk][:, unit_of]
        per = [metrics.at_target(y, p, figure, level, W) for figure, level in targets]
        for k in per[0]:
            out.setdefault(k, []).append(np.stack([d[k] for d in per], axis=1))
    return {k: np.concatenate(v, axis=0) for k, v in out.items()}
