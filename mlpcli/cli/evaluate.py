"""`mlpcli evaluate`: a trained model's metrics on a labelled table, per group and with bootstrap CIs."""

from __future__ import annotations

import json
import math

import click
from rich.table import Table

from ._common import (
    CONTEXT_SETTINGS, binary_stdin, check_writable, debug_option, fmt, fmt_interval, fmt_metric, handle_errors, json_option, quiet_option, print_json, role_options,
    stdout_console, threads_context, threads_option, write_text_atomic,
)
from .predict import (
    NoteRenderer, ReadProgress, chunking, common_options, load_model, role_flags, shift_table, write_shift_report,
)


def _finite(doc):
    """NaN / inf -> None, recursively, so the JSON document is strict."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: _finite(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [_finite(v) for v in doc]
    return doc


def _name(key: str) -> str:
    return {"roc_auc": "ROC AUC", "roc_auc_ovr": "ROC AUC (one-vs-rest)", "mcc": "MCC", "ece": "ECE",
            "rmse": "RMSE", "mae": "MAE", "r2": "R²", "f1": "F1", "f1_macro": "F1 macro", "f1_micro": "F1 micro",
            "f1_weighted": "F1 weighted", "brier": "Brier score", "pearson_r": "Pearson r",
            "spearman_r": "Spearman r"}.get(key, key.replace("_", " "))


def _metrics_table(result, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if result.ci:
        table.add_column("95 % CI", justify="right")
    for key, value in result.metrics.items():
        if key in ("n", "threshold") or isinstance(value, (list, dict, str)):
            continue
        row = [_name(key), fmt_metric(key, value)]
        if result.ci:
            row.append(fmt_interval(key, result.ci.get(key)))
        table.add_row(*row, style="bold" if key == result.main_metric else None)
    return table


def _per_class_table(rows: list[dict], key: str, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    columns = [c for c in rows[0] if c != key]
    table.add_column(key)
    for c in columns:
        table.add_column(_name(c), justify="right")
    for row in rows:
        table.add_row(str(row[key]), *[fmt_metric(c, row[c]) for c in columns])
    return table


def _confusion_table(matrix: list[list[int]], labels: list[str]) -> Table:
    table = Table(title="Confusion matrix (rows: true class, columns: predicted)", title_justify="left")
    table.add_column("true \\ predicted")
    for label in labels:
        table.add_column(str(label), justify="right")
    for i, (label, row) in enumerate(zip(labels, matrix)):
        table.add_row(str(label), *[f"[bold]{v}[/]" if i == j else str(v) for j, v in enumerate(row)])
    return table


def _by_table(result) -> Table:
    keys = list(result.groups[0]["metrics"]) if result.groups else []
    table = Table(title=f"By {result.by} (flagged: main metric clearly worse than overall)", title_justify="left")
    table.add_column(result.by)
    table.add_column("n", justify="right")
    for k in keys:
        table.add_column(_name(k), justify="right")
    if result.bootstrap:
        table.add_column(f"{_name(result.main_metric)} 95 % CI", justify="right")
    for g in result.groups:
        row = [("⚠ " if g["flagged"] else "") + str(g["value"]), str(g["n"]),
               *[fmt_metric(k, g["metrics"][k]) for k in keys]]
        if result.bootstrap:
            row.append(fmt_interval(result.main_metric, (g.get("ci") or {}).get(result.main_metric)))
        table.add_row(*row, style="red" if g["flagged"] else None)
    overall = ["all", str(result.n), *[fmt_metric(k, result.metrics.get(k)) for k in keys]]
    if result.bootstrap:
        overall.append(fmt_interval(result.main_metric, result.ci.get(result.main_metric)))
    table.add_row(*overall, style="bold")
    return table


def render(result, model_path: str, data_file: str) -> None:
    con = stdout_console()
    m = result.metrics
    if result.task == "binary":
        what = f"binary, positive class {m.get('positive_class')!r}, threshold {result.threshold:g}"
    elif result.task == "multilabel":
        what = f"multi-label, {len(result.classes)} labels, threshold {result.threshold:g}"
    elif result.task == "multiclass":
        what = f"multiclass, {len(result.classes)} classes"
    else:
        what = f"regression, {len(result.classes)} target{'s' * (len(result.classes) > 1)}"
    con.print(_metrics_table(result, f"Metrics on {result.n:,} samples ({what})"))
    if result.task == "multiclass":
        con.print(_per_class_table(m["per_class"], "class", "Per class"))
        con.print(_confusion_table(m["confusion_matrix"], m["classes"]))
    elif result.task == "binary":
        con.print(_confusion_table(m["confusion_matrix"], [str(c) for c in result.classes]))
    elif result.task == "multilabel":
        con.print(_per_class_table(m["per_label"], "label", "Per label"))
    elif m.get("per_target"):
        con.print(_per_class_table(m["per_target"], "target", "Per target"))
    cal = result.calibration
    if cal is not None:
        con.print(f"calibration: temperature {fmt(cal['temperature'])}; log loss {fmt(cal['log_loss_before'], 'loss')} "
                  f"→ {fmt(cal['log_loss_after'], 'loss')}, ECE {fmt(cal['ece_before'], 'loss')} → "
                  f"{fmt(cal['ece_after'], 'loss')} "
                  "(without → with the temperature)", soft_wrap=True)
    if result.groups:
        con.print(_by_table(result))
    if result.shift is not None and result.shift.shifted:
        con.print(shift_table(result.shift, 10))


@click.command(context_settings=CONTEXT_SETTINGS,
               short_help="Score a model on a labelled table, per group, with CIs.")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("data_file", metavar="DATA", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--by", default=None, metavar="COLUMN", help="Repeat the main metrics per value of this column (batch, site).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Resamples for 95 % confidence intervals (of patients when there is a group column); 1000 is usual.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the bootstrap resampling.")
@common_options
@role_options
@click.option("-o", "--out", default=None, type=click.Path(dir_okay=False), help="Also write the JSON document to this file.")
@threads_option
@quiet_option
@json_option
@debug_option
@handle_errors
def evaluate(model_path, data_file, by, bootstrap, seed, fill_missing, max_missing, shift_path, chunk_mb, chunksize, threshold, out,
             threads, quiet, as_json, debug, **params):
    """Score a trained model on a labelled table: the task's metrics, per group and with CIs.

    Binary: accuracy, balanced accuracy, precision, recall, F1, ROC AUC, average precision, MCC,
    log loss, Brier score, ECE. Multiclass: accuracy, balanced accuracy, macro/weighted F1,
    one-vs-rest ROC AUC, MCC, log loss, Brier score, ECE, per-class table, confusion matrix.
    Multi-label: per-label ROC AUC and average precision, micro/macro F1, Hamming loss.
    Regression: RMSE, MAE, R², Pearson and Spearman r. --by on a numeric column with more than 10
    distinct values (age, a score) groups it into quartile bins. The table is read like predict's, with the same cohort-shift check.

    \b
    Example:  mlpcli evaluate subtypes.mlp sample_data/test_cohort.csv.gz --by batch --bootstrap 1000
    """
    from .. import predict as lib

    roles = role_flags(params)
    chunks = chunking(chunksize, chunk_mb)
    if out:
        check_writable(out, "--out")
    model = load_model(model_path, shift_path)
    with threads_context(threads), ReadProgress(quiet, "read") as progress:
        result = lib.evaluate(model, data_file, threshold=threshold, by=by, bootstrap=bootstrap, seed=seed,
                              fill_missing=fill_missing, max_missing=max_missing, roles=roles, **chunks,
                              stdin=binary_stdin() if data_file == "-" else None, n_jobs=threads,
                              progress=progress)
    NoteRenderer(quiet, result)()
    if shift_path:
        write_shift_report(result.shift, shift_path)
    doc = _finite({"model": model_path, "data": data_file, **result.to_dict()})
    if out:
        write_text_atomic(out, json.dumps(doc, indent=2) + "\n")
    if as_json:
        print_json(doc)
    else:
        render(result, model_path, data_file)
