"""Figures for people, one format per kind (every summary: train, evaluate, cv, tune, diagnose, info):
  metric  — scores (accuracy, balanced accuracy, AUC, F1, MCC, R², correlations): 3 decimals, 0.710
  loss    — losses and errors (log loss, Brier, ECE, RMSE, MAE, Hamming loss): 4 significant digits, 0.3037
  seconds — 1 decimal, 2.3
  number  — anything else (temperatures, settings): 4 significant digits, trailing zeros dropped"""

from __future__ import annotations

import numpy as np

from ..metrics import higher_is_better


def metric_kind(key: str) -> str:
    """"loss" for a metric where lower is better and whose size matters (losses, errors: ``metrics.LOWER_IS_BETTER``, a
    history's ``train_loss``), else "metric"."""
    return "loss" if not higher_is_better(key) or key.endswith("loss") else "metric"


def fmt(v, kind: str = "number") -> str:
    """A figure for people, by its kind (the module's docstring); None and NaN are "—", whole numbers and text as they are."""
    if v is None or isinstance(v, bool):
        return "—" if v is None else str(v)
    if isinstance(v, (int, np.integer)):
        return str(v)
    if not isinstance(v, (float, np.floating)):
        return str(v)
    v = float(v)
    if not np.isfinite(v):
        return "—" if np.isnan(v) else str(v)
    if kind == "metric":
        return f"{v:.3f}"
    if kind == "seconds":
        return f"{v:.1f}"
    if kind == "loss":
        if v == 0:
            return "0.000"
        magnitude = int(np.floor(np.log10(abs(v))))
        if -4 <= magnitude < 6:
            return f"{v:.{max(0, 3 - magnitude)}f}"
        return f"{v:.3e}"
    return f"{v:.4g}"


# Classes listed by the train summary's and info's recall rows; beyond, the lowest recalls (the ones a reader looks for)
RECALL_SHOWN = 12


def per_class_recall(rows: list[dict]) -> str:
    """"A 0.963 (296), B 0.975 (198), R 0.500 (6)": each class's recall and samples, in the classes' order; with
    more than RECALL_SHOWN classes the lowest recalls, lowest first, and how many more."""
    rows = [r for r in rows if r.get("support")]
    key = "label" if rows and "label" in rows[0] else "class"  # a multi-label model's labels (their positives)
    shown = rows if len(rows) <= RECALL_SHOWN else sorted(
        rows, key=lambda r: (r["recall"] is None, r["recall"] if r["recall"] is not None else 0))[:RECALL_SHOWN]
    text = ", ".join(f"{r[key]} {fmt_metric('recall', r['recall'])} ({r['support']})" for r in shown)
    what = "labels" if key == "label" else "classes"
    return text + (f"; the {RECALL_SHOWN} lowest of {len(rows)} {what} (--json: all)" if len(shown) < len(rows) else "")


def fmt_metric(key: str | None, v) -> str:
    """A metric's value in its kind's format (``metric_kind``); ``key`` None: a plain number's."""
    return fmt(v) if key is None else fmt(v, metric_kind(key))


def fmt_sd(key: str | None, mean, sd) -> str:
    """A metric's SD over folds beside its ``mean``: to the mean's decimals (a loss's four significant digits
    gave "1.115" over "0.1417", an MAE "0.4512" over "0.005865"), or to the SD's own first significant digit when
    that is finer; in the metric's own format without a mean, or when the mean needs an exponent. ``key`` None: a
    plain number's (a mean set size: "1.123" over "0.3152" was the mean's format, not the SD's)."""
    mean_text = fmt_metric(key, mean)
    if not isinstance(sd, (float, np.floating)) or not np.isfinite(sd) or "." not in mean_text or "e" in mean_text:
        return fmt_metric(key, sd)  # no mean (or an undefined one) to align with, or one with an exponent
    decimals = len(mean_text.split(".")[1])
    if sd > 0:
        decimals = max(decimals, -int(np.floor(np.log10(float(sd)))))
    return f"{float(sd):.{decimals}f}"


def fmt_mean_sd(key: str, mean, sd) -> str:
    """"0.812 ± 0.031": a metric's mean and SD over folds, the SD as ``fmt_sd`` gives it beside the mean; "0.812 (one
    value, no SD)" when the SD is undefined (None)."""
    if mean is None:
        return "—"
    if sd is None:
        return f"{fmt_metric(key, mean)} (one value, no SD)"
    return f"{fmt_metric(key, mean)} ± {fmt_sd(key, mean, sd)}"


def fmt_interval(key: str, ci) -> str:
    """"0.781 – 0.842": a 95 % interval in the metric's format."""
    return "—" if not ci else f"{fmt_metric(key, ci[0])} – {fmt_metric(key, ci[1])}"


def fmt_ci(key: str, ci, level: float = 0.95) -> str:
    """"95 % CI 0.781 – 0.842": an interval at ``level`` in the metric's format, as train, cv and info say it."""
    return f"{level * 100:.3g} % CI {fmt_interval(key, ci)}"
