"""`mlpcli evaluate`: a trained model's metrics on a labelled table, per group and with bootstrap CIs."""

from __future__ import annotations

import math

import click
from rich.text import Text

from ..calibration import temperature_words
from ..decision import label_threshold_words
from ..errors import ConfigError, DataError
from ..fileio import write_together
from ..metrics import display_name, task_display_name
from . import SHORT_HELP
from .console import binary_stdin, check_stdout_open, json_text, print_json, stderr_console, stdout_console, Table
from .exits import handle_errors, reading
from .formatting import fmt, fmt_interval, fmt_metric
from .outputs import check_writable, distinct_files, one_stdout_writer, stdout_alias
from .shared_options import (CONTEXT_SETTINGS, debug_option, json_option, named_column, named_file, quiet_option,
    role_options, threads_context, threads_option)
from .predict import (
    NoteRenderer, ReadProgress, chunking, common_options, load_model, role_flags, shift_table,
    trust_options, uncertainty_from, write_shift_report,
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


def _metrics_table(result, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if result.ci:
        table.add_column("95 % CI", justify="right")
    for key, value in result.metrics.items():
        if key in ("n", "threshold") or isinstance(value, (list, dict, str)):
            continue
        row = [task_display_name(key, result.task), fmt_metric(key, value)]
        if result.ci:
            row.append(fmt_interval(key, result.ci.get(key)))
        table.add_row(*row, style="bold" if key == result.main_metric else None)
    return table


def _per_class_table(rows: list[dict], key: str, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    columns = [c for c in rows[0] if c != key]
    table.add_column(key)
    for c in columns:
        table.add_column(display_name(c), justify="right")
    for row in rows:
        table.add_row(str(row[key]), *[fmt_metric(c, row[c]) for c in columns])
    return table


def _risks(text: str | None) -> list[float] | None:
    """--net-benefit's comma-separated risks (range-checked by the library, ``check_risk_thresholds``)."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"thresholds must be numbers separated by commas, e.g. 0.05,0.1,0.2; got {text!r}")


def _net_benefit_table(rows: list[dict]) -> Table:
    ci = "model_ci" in rows[0]
    table = Table(title="Net benefit at risk thresholds (per sample; treating no one: 0)", title_justify="left")
    for name in ("risk threshold", "model", "treat everyone", "model − the better of the two"):
        table.add_column(name, justify="right")

    def cell(row, key):
        interval = row.get(key + "_ci")
        return f"{row[key]:+.4f}" + (f" ({interval[0]:+.4f} – {interval[1]:+.4f})" if interval else " (—)" if ci else "")

    for row in rows:
        table.add_row(f"{row['threshold']:g}", cell(row, "model"), cell(row, "treat_all"), cell(row, "margin"))
    return table


def _operating_points_table(rows: list[dict], n: int) -> Table:
    ci = any("sensitivity_ci" in row for row in rows)
    table = Table(title="Operating points: calling positive the samples at or above each risk", title_justify="left")
    for name in ("risk threshold", "called positive", "sensitivity", "specificity", "PPV", "NPV"):
        table.add_column(name, justify="right")

    def cell(row, key):
        if row[key] is None:
            return "—"
        interval = row.get(f"{key}_ci")
        return f"{row[key]:.3f}" + (f" ({interval[0]:.3f} – {interval[1]:.3f})" if interval else (" (—)" if ci else ""))

    for row in rows:
        where = ("—" if row["threshold"] is None else f"{row['threshold']:.4g}") + \
            (f" ({row['target']})" if row.get("target") else "")
        called = "—" if row["called"] is None else f"{row['called']:,} of {n:,} ({row['called_share']:.1%})"
        table.add_row(where, called,
                      *[cell(row, k) for k in ("sensitivity", "specificity", "ppv", "npv")])
    if any(row.get("target") for row in rows):
        table.caption = ("a target's threshold is chosen on these rows: the other figures at it are a little "
                         "optimistic for new samples")
    return table


def _risk_calibration_line(cal: dict) -> str:
    """A binary model's risks against the outcomes (``metrics.compute``'s ``calibration``), in one line."""
    def est(key, ideal):
        ci = cal.get(f"{key}_ci")
        if cal.get(key) is None:
            return f"{key} undefined"
        return (f"{key} {cal[key]:+.2f}" if key == "intercept" else f"{key} {cal[key]:.2f}") + (
            f" (95 % CI {ci[0]:.2f} – {ci[1]:.2f}; ideal {ideal})" if ci else f" (ideal {ideal})")

    oe = cal["observed"] / cal["expected"] if cal.get("expected") else None
    return (f"risk calibration: {cal['observed']:,} events observed, {cal['expected']:.4g} expected"
            + (f" (O/E {oe:.2f})" if oe is not None else "") + f"; calibration {est('intercept', 0)}, "
            f"{est('slope', 1)} (Wald intervals, samples counted as independent)")


def _confusion_table(matrix: list[list[int]], labels: list[str]) -> Table:
    table = Table(title="Confusion matrix (rows: true class, columns: predicted)", title_justify="left")
    table.add_column("true \\ predicted")
    for label in labels:
        table.add_column(str(label), justify="right")
    for i, (label, row) in enumerate(zip(labels, matrix)):
        table.add_row(str(label), *[Text(str(v), style="bold") if i == j else str(v) for j, v in enumerate(row)])
    return table


def _by_table(result) -> Table:
    keys = list(result.groups[0]["metrics"]) if result.groups else []
    from ..predict.subgroups import BY_MIN_CLASS_SAMPLES, BY_MIN_SAMPLES

    # several regression targets are judged each by its own RMSE, in its own units: one column each
    targets = [t["target"] for t in result.groups[0].get("per_target") or []] if result.groups else []
    worse = "a target's RMSE clearly worse than its overall one" if targets else "main metric clearly worse than overall"
    if result.bootstrap:
        rule = "and its 95 % CI beyond overall"
    elif result.task == "regression":
        rule = f"with ≥ {BY_MIN_SAMPLES} samples"
    elif result.task == "multilabel":
        rule = f"with ≥ {BY_MIN_CLASS_SAMPLES} samples of each label's 0s and 1s it holds"
    else:
        rule = f"with ≥ {BY_MIN_CLASS_SAMPLES} samples per class"  # the whole rule: the help of --by, a note
    table = Table(title=f"By {result.by} (⚠: {worse}, {rule})", title_justify="left")
    table.add_column(result.by)
    table.add_column("n", justify="right")
    for k in keys:
        table.add_column(display_name(k), justify="right")
    for t in targets:
        table.add_column(f"RMSE {t}", justify="right")
    if result.bootstrap:
        table.add_column(f"{display_name(result.main_metric)} 95 % CI", justify="right")
    for g in result.groups:
        row = [("⚠ " if g["flagged"] else "") + str(g["value"]), str(g["n"]),
               *[fmt_metric(k, g["metrics"][k]) for k in keys], *[fmt_metric("rmse", t["rmse"]) for t in (g.get("per_target") or [])[:len(targets)]]]
        if result.bootstrap:
            row.append(fmt_interval(result.main_metric, (g.get("ci") or {}).get(result.main_metric)))
        table.add_row(*row, style="red" if g["flagged"] else None)
    overall = ["all", str(result.n), *[fmt_metric(k, result.metrics.get(k)) for k in keys],
               *[fmt_metric("rmse", t["rmse"]) for t in (result.metrics.get("per_target") or [])[:len(targets)]]]
    if result.bootstrap:
        overall.append(fmt_interval(result.main_metric, result.ci.get(result.main_metric)))
    table.add_row(*overall, style="bold")
    return table


def _novel_table(doc: dict) -> Table:
    """evaluate --novel-labels: per label the model does not know, how many samples, the shares flagged ood, given
    an empty or multi-class set, and either way (caught), and the classes most predicted for them."""
    parts = []
    if doc["ood_alpha"] is not None:
        parts.append(f"ood: p < {doc['ood_alpha']:.12g}")
    if doc["coverage"] is not None:
        parts.append(f"sets at level {doc['coverage']:.12g}")
    table = Table(title="Labels the model does not know (kept apart from the metrics"
                        + (f"; {', '.join(parts)}" if parts else "") + ")", title_justify="left")
    table.add_column("label")
    table.add_column("n", justify="right")
    if doc["ood_alpha"] is not None:
        table.add_column("flagged ood", justify="right")
    if doc["coverage"] is not None:
        table.add_column("empty set", justify="right")
        table.add_column("multi-class set", justify="right")
    if doc["caught_by"]:
        table.add_column("caught (either)" if len(doc["caught_by"]) > 1 else "caught", justify="right")
    table.add_column("predicted as (top 3)")

    def cells(row: dict) -> list[str]:
        out = [f"{row['n']:,}"]
        if doc["ood_alpha"] is not None:
            out.append("n/a" if row["ood"] is None else f"{row['ood']:.1%}")
        if doc["coverage"] is not None:
            out += [f"{row['empty_set']:.1%}", f"{row['multi_class_set']:.1%}"]
        if doc["caught_by"]:
            out.append(f"{row['caught']:.1%}")
        out.append(", ".join(f"{p['class']} {p['share']:.0%}" for p in row["predicted_as"]))
        return out

    for row in doc["labels"]:
        table.add_row(str(row["label"]), *cells(row))
    if len(doc["labels"]) > 1:
        table.add_row("all", *cells(doc["all"]), style="bold")
    return table


def _ood_cell(rate, na: bool) -> str:
    """An OOD flag rate's cell: "n/a" when the model can flag nothing at --ood-alpha (its rate is undefined)."""
    return "n/a" if na else fmt(rate)


def _trust_tables(doc: dict) -> list[Table]:
    """Prediction sets (coverage, size: overall, per class, per --by group), abstention, OOD flags."""
    tables = []
    sets, ood = doc.get("sets"), doc.get("ood")
    if sets is not None:
        kind = "per class (Mondrian)" if sets["mondrian"] else "overall"
        table = Table(title=f"Prediction sets ({sets['score'].upper()}, level {sets['level']:.12g} {kind}; coverage = "
                            "share of sets holding the true class)", title_justify="left")
        per_patient = sets.get("coverage_per_group") is not None  # each patient once: the guarantee's figure
        for col in ("", "n", "coverage") + (("coverage, each group once",) if per_patient else ()) + ("mean set size",):
            table.add_column(col, justify="left" if not col else "right")
        if ood is not None:
            table.add_column("OOD flagged", justify="right")

        def once(row: dict) -> list[str]:
            return [fmt(row.get("coverage_per_group"))] if per_patient else []

        ood_class = {r["value"]: r["rate"] for r in (ood or {}).get("per_class") or []}
        na = (ood or {}).get("can_flag") is False  # the model flags nothing at this alpha: n/a, not 0
        ood_by = {r["value"]: r["rate"] for r in (ood or {}).get("by") or []}
        for row in sets["per_class"]:
            extra = [_ood_cell(ood_class.get(row["value"]), na)] if ood is not None else []
            table.add_row(f"class {row['value']}", str(row["n"]), fmt(row["coverage"]), *once(row),
                          fmt(row["mean_set_size"]), *extra)
        for row in sets["by"] or []:
            extra = [_ood_cell(ood_by.get(row["value"]), na)] if ood is not None else []
            table.add_row(f"{doc['by_name']} {row['value']}", str(row["n"]), fmt(row["coverage"]), *once(row),
                          fmt(row["mean_set_size"]), *extra)
        extra = [_ood_cell(ood["rate"], na)] if ood is not None else []
        n_all = f"{doc['n']} ({sets['n_groups']} groups)" if per_patient else str(doc["n"])
        table.add_row("all", n_all, fmt(sets["coverage"]), *once(sets), fmt(sets["mean_set_size"]), *extra,
                      style="bold")
        tables.append(table)
    elif ood is not None:
        table = Table(title=f"Out-of-distribution flags (p < {ood['alpha']:.12g})", title_justify="left")
        for col in ("", "n", "flagged"):
            table.add_column(col, justify="left" if not col else "right")
        na = ood.get("can_flag") is False
        for row in ood["per_class"]:
            table.add_row(f"class {row['value']}", str(row["n"]), _ood_cell(row["rate"], na))
        for row in ood["by"] or []:
            table.add_row(f"{doc['by_name']} {row['value']}", str(row["n"]), _ood_cell(row["rate"], na))
        table.add_row("all", str(doc["n"]), _ood_cell(ood["rate"], na), style="bold")
        tables.append(table)
    ab = doc.get("abstention")
    if ab is not None:
        table = Table(title=f"Abstention ({ab['label']!r})", title_justify="left", show_header=False)
        table.add_column("", style="bold")
        table.add_column("", justify="right")
        table.add_row("abstained", f"{ab['n_abstained']:,} ({ab['rate']:.1%})")
        table.add_row("accuracy on the accepted", fmt(ab["accuracy_accepted"]))
        table.add_row("accuracy on all", fmt(ab["accuracy_all"]))
        table.add_row("risk–coverage area (AURC)", fmt(doc["risk_coverage"]["aurc"]))
        tables.append(table)
    return tables


# Extensions of the other files a user may mean by `evaluate -o`: tables (the metrics as CSV, or predictions), plots,
# models, compressed files. `-o` writes the JSON document whatever the name, so `-o metrics.csv` put JSON, silently,
# into a .csv file that the next step of a pipeline read as a table. (.txt stays allowed: JSON is text.)
_NOT_JSON = (".csv", ".tsv", ".parquet", ".gz", ".bz2", ".xz", ".zip", ".xlsx", ".png", ".svg", ".pdf", ".h5ad",
             ".mlp", ".html", ".yaml", ".yml", ".toml", ".xml")


def _check_json_name(out: str) -> None:
    """A usage error, before any work, for an ``-o`` named as another kind of file (``_NOT_JSON``); a device or
    an open descriptor (``/dev/stderr``) is written into whatever its name."""
    import os

    from ..fileio import descriptor_of, is_special_file

    ext = os.path.splitext(os.fspath(out))[1].lower()
    if ext in _NOT_JSON and descriptor_of(out) is None and not is_special_file(out):
        raise click.UsageError(f"--out {out}: evaluate -o writes the JSON document, not a {ext} file; name it .json "
                               "(metrics.json); for the metric tables as text redirect standard output "
                               "(> metrics.txt); `mlpcli predict` writes per-sample predictions as a table")


def write_risk_coverage(doc: dict, path: str, title: str) -> None:
    from ..plotting import plot_risk_coverage

    ab = doc.get("abstention")
    chosen = None
    if ab is not None and ab["accuracy_accepted"] is not None:
        chosen = (1 - ab["rate"], 1 - ab["accuracy_accepted"])
    plot_risk_coverage(path, doc["risk_coverage"], chosen=chosen, title=title)


def _show(con, table: Table) -> None:
    """A table under its title on a line of its own: rich wraps a title to the table's width, which broke
    "Metrics on 168 samples (multiclass, 4 classes)" over two lines above a two-column table."""
    title, table.title = table.title, None
    if title:
        con.print(Text(title, style="table.title"), soft_wrap=True)
    con.print(table)


def _rule_words(task: str, rule: str | None, by_rule: bool, mixed: bool = False, cohort: str | None = None) -> str:
    """What decided the labels the metrics count, for the title: a balanced rule said, since its labels are not
    always the most probable class (a confusion matrix of them otherwise reads as a bug); argmax is the default
    reading and goes unsaid. ``by_rule``: the threshold is the rule's (no --threshold). ``cohort``: the table a
    recalibrated model's shares are of."""
    if rule != "balanced":
        return ""
    share = ("share in the class mix --prevalence gave" if mixed else f"share in {cohort}" if cohort
             else "training share")
    if task == "binary":
        return f", the positive class's {share} (the balanced decision rule)" if by_rule else ""
    return f"; labelled by the balanced decision rule: the most probable class relative to its {share}"


def render(result, model_path: str, data_file: str, rule: str | None = None, by_rule: bool = True,
           con=None) -> None:
    """The tables of ``result``; ``rule``: the decision rule that labelled the samples (binary, multiclass),
    ``by_rule``: a binary threshold is the rule's, not --threshold's; ``con``: where (standard output)."""
    con = con if con is not None else stdout_console()
    m = result.metrics
    rc = (result.calibration or {}).get("recalibration") or {}
    said = _rule_words(result.task, rule, by_rule, getattr(result, "prevalence", None) is not None,
                       (rc.get("cohort") or {}).get("data"))
    if result.task == "binary":
        what = f"binary, positive class {m.get('positive_class')!r}, threshold {result.threshold:g}{said}"
    elif result.task == "multilabel":
        what = f"multi-label, {len(result.classes)} labels, " + label_threshold_words(
            result.threshold, result.classes, rule, by_rule, (rc.get("cohort") or {}).get("data"))
    elif result.task == "multiclass":
        what = f"multiclass, {len(result.classes)} classes{said}"
    elif len(result.classes) > 1:  # what the pooled figures are: each target's own are in the table below
        what = (f"regression, {len(result.classes)} targets: RMSE and MAE pooled over their units, R² the mean of "
                "the targets' R²")
    else:
        what = "regression, 1 target"
    if result.n == 0:  # --novel-labels on a table of unknown labels alone: nothing to score (a note says so)
        if result.novel is not None and result.novel["n"]:
            _show(con, _novel_table(result.novel))
        if result.shift is not None and result.shift.shifted:
            _show(con, shift_table(result.shift, 10))
        return
    _show(con, _metrics_table(result, f"Metrics on {result.n:,} sample{'s' * (result.n != 1)} ({what})"))
    if result.task == "multiclass":
        _show(con, _per_class_table(m["per_class"], "class", "Per class"))
        _show(con, _confusion_table(m["confusion_matrix"], m["classes"]))
    elif result.task == "binary":
        _show(con, _confusion_table(m["confusion_matrix"], [str(c) for c in result.classes]))
        if m.get("calibration"):
            con.print(_risk_calibration_line(m["calibration"]), soft_wrap=True)
        if getattr(result, "operating_points", None):
            _show(con, _operating_points_table(result.operating_points, result.n))
        if getattr(result, "net_benefit", None):
            _show(con, _net_benefit_table(result.net_benefit))
    elif result.task == "multilabel":
        _show(con, _per_class_table(m["per_label"], "label", "Per label"))
    elif m.get("per_target"):
        _show(con, _per_class_table(m["per_target"], "target", "Per target"))
    cal = result.calibration
    if cal is not None:
        ece = (f", ECE {fmt(cal['ece_before'], 'loss')} → {fmt(cal['ece_after'], 'loss')}"
               if cal["ece_before"] is not None else "")  # multi-label: log loss only
        rc = cal.get("recalibration")
        parts = ([f"temperature {temperature_words(cal['temperature'], result.classes)}"]
                 if cal["temperature"] is not None else []) + (
            [f"recalibrated on {rc['cohort'].get('data') or 'a cohort'} ({rc['method']})"] if rc else [])
        what = " and the ".join((["temperature"] if cal["temperature"] is not None else []) + (["update"] if rc else []))
        con.print(f"calibration: {', '.join(parts)}; log loss "
                  f"{fmt(cal['log_loss_before'], 'loss')} "
                  f"→ {fmt(cal['log_loss_after'], 'loss')}{ece} (without → with the {what}"
                  + (f", at {'the class mix of ' + rc['cohort'].get('data', 'its cohort') if rc else 'the training class mix'}"
                     ": the table above is of the mix --prevalence gave" if result.prevalence else "") + ")",
                  soft_wrap=True)
    if result.trust is not None:
        for table in _trust_tables(result.trust):
            _show(con, table)
    if result.novel is not None and result.novel["n"]:
        _show(con, _novel_table(result.novel))
    if result.groups:
        _show(con, _by_table(result))
    if result.shift is not None and result.shift.shifted:
        _show(con, shift_table(result.shift, 10))


@click.command(context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["evaluate"])
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("data_file", metavar="DATA", type=click.Path(allow_dash=True))
@click.option("--by", default=None, metavar="COLUMN", callback=named_column,
              help="Repeat the main metrics per value of this column (batch, site). A group is flagged when its "
                   "main metric is worse than overall by more than 0.1 (RMSE: 1.25 x; several targets: any target's own) and, with --bootstrap, its "
                   "95 % interval lies wholly on the worse side of the overall value, or without it each class it "
                   "holds has at least 10 samples (regression: the group 20).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Resamples for 95 % confidence intervals (of patients when there is a group column); 1000 is usual.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the bootstrap resampling.")
@click.option("--net-benefit", "net_benefit", default=None, metavar="RISKS", callback=lambda ctx, param, v: _risks(v),
              help="Binary models: the net benefit of treating the samples whose risk is at least each of these "
                   "thresholds (comma-separated, e.g. 0.05,0.1,0.2), beside treating everyone and no one "
                   "(decision-curve analysis, Vickers & Elkin 2006): TP/n - FP/n * t/(1 - t); with --bootstrap, "
                   "intervals by patient.")
@click.option("--operating-points", "operating_points", default=None, metavar="RISKS",
              callback=lambda ctx, param, v: None if v is None else [x.strip() for x in v.split(",") if x.strip()],
              help="Binary models: sensitivity, specificity, PPV and NPV of calling positive the samples whose risk "
                   "is at least each of these thresholds (comma-separated, e.g. 0.1,0.2,0.5), and how many that "
                   "calls, whatever the model's own threshold; sens=0.9 or spec=0.95 finds the threshold reaching "
                   "that sensitivity or specificity on this table (chosen on the rows it is scored on); with "
                   "--bootstrap, intervals by patient (the target's threshold chosen again in each resample).")
@click.option("--novel-labels", is_flag=True,
              help="Keep rows whose label the model does not know (a class absent from training) apart instead of "
                   "stopping: the metrics are of the other rows, and a table reports per such label how many were "
                   "flagged ood (--ood) or given an empty or multi-class set (--coverage), either way (caught), and "
                   "the classes they were predicted as (binary and multiclass models).")
@common_options
@trust_options
@click.option("--calibration-plot", "calibration_path", default=None, type=click.Path(dir_okay=False),
              callback=named_file,
              help="Draw a calibration plot to a .png, .svg or .pdf file: the samples cut into up to 10 bins by "
                   "predicted probability, each bin's observed share (95 % Wilson interval) against its mean "
                   "probability, per class (a binary model's positive class; multi-label: per label). The numbers "
                   "are `calibration_curve` in --json.")
@click.option("--plot", "plot_path", default=None, type=click.Path(dir_okay=False), callback=named_file,
              help="Draw the risk–coverage curve (error rate among the samples accepted, accepting the most "
                   "confident first) to a .png, .svg or .pdf file (binary and multiclass models).")
@role_options
@click.option("-o", "--out", default=None, type=click.Path(dir_okay=False, allow_dash=True),
              callback=named_file,
              help="Also write the JSON document to this file (- for standard output, instead of the tables).")
@threads_option(extra="With --bootstrap on a very large table (resamples x rows beyond 5e7) it is also the most "
                      "worker processes the resamples are spread over (left out: the cores the machine leaves idle by "
                      "its load average, or within a CPU set such as a SLURM job's its cores, up to 4; the figures "
                      "are the same either way).")
@quiet_option
@json_option
@debug_option
@handle_errors
def evaluate(model_path, data_file, by, bootstrap, seed, net_benefit, operating_points, novel_labels, fill_missing, max_missing, shift_path,
             chunk_mb, chunksize,
             threshold, decision, prevalence, out, calibration_path, plot_path, threads, quiet, as_json, debug,
             **params):
    """Score a trained model on a labelled table: the task's metrics, per group and with CIs.

    Binary: accuracy, balanced accuracy, precision (PPV), recall (sensitivity), specificity, NPV, F1,
    ROC AUC, average precision, MCC, log loss, Brier score and scaled Brier, ECE, observed / expected
    events, and the risks' calibration intercept and slope (a line under the confusion matrix; a warning
    when the risks are systematically off); --operating-points for those figures at several risk
    thresholds at once, --net-benefit for decision curves. Multiclass: accuracy, balanced accuracy, macro/weighted F1,
    one-vs-rest ROC AUC (macro mean over the classes the table holds), MCC, log loss, Brier score
    (summed over classes, 0 to 2), ECE, per-class precision, recall, F1 and ROC AUC, confusion matrix.
    ECE is top-label: 15 equal-width bins of the first-ranked class's probability (binary: max(p, 1 - p),
    whatever --threshold), the share of samples in each bin times |accuracy - mean probability|.
    A metric undefined on the table (ROC AUC of a class it lacks, recall without positives) is —
    (null in JSON).
    Multi-label: balanced accuracy (the mean over labels), micro/macro F1, Hamming loss, log loss (binary cross-entropy averaged over labels),
    ECE over every sample-label call (each at max(p, 1 - p)), and per label ROC AUC, average precision and log loss.
    Regression: RMSE, MAE, R², Pearson and Spearman r. --by on a numeric column with more than 10
    distinct values (age, a score) groups it into quartile bins. The table is read like predict's, with the same cohort-shift check.
    The truth is read from the model's target column(s), or from those --target names (several, for a
    multi-label or multi-target model: one per target, in the model's order).

    With predict's --coverage, --min-confidence / --abstain-on-empty-set and --ood: the sets'
    empirical coverage and mean size (overall, per class, per --by group), the abstention rate and
    the accuracy on the accepted samples, and the share flagged out-of-distribution. --plot draws
    the risk–coverage curve. --novel-labels: rows of a class the model never saw are scored apart (how many
    it flags or gives an uncertain set, what it takes them for) instead of being an error.

    \b
    Example:  mlpcli evaluate subtypes.mlp sample_data/test_cohort.csv.gz --by batch --bootstrap 1000
    Example:  mlpcli evaluate subtypes.mlp test.csv --coverage 0.9 --ood --min-confidence 0.7 --plot rc.png
    Example:  mlpcli evaluate subtypes.mlp cohort_with_new_type.csv --novel-labels --coverage 0.9 --ood
    """
    from .. import predict as lib

    reading(data_file)  # a data error naming no file is said of it
    roles = role_flags(params)
    chunks = chunking(chunksize, chunk_mb)
    from click.core import ParameterSource

    if not bootstrap and click.get_current_context().get_parameter_source("seed") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--seed seeds the bootstrap resampling: add --bootstrap N (it changes nothing "
                               "without it)")
    out, shift_path = stdout_alias(out), stdout_alias(shift_path)  # /dev/stdout is "-"
    one_stdout_writer({"-o -": out == "-", "--json": as_json, "--shift-report -": shift_path == "-"})
    distinct_files({"--out": out, "--shift-report": shift_path, "--plot": plot_path,
                    "--calibration-plot": calibration_path},
                   {"MODEL": model_path, "DATA": data_file, "--samples": roles.samples})
    if not (as_json or out or shift_path == "-"):  # the tables are the result: not lost on a closed stdout
        check_stdout_open("the metrics report")
    if out and out != "-":
        _check_json_name(out)
        check_writable(out, "--out")
    for flag, path in (("--plot", plot_path), ("--calibration-plot", calibration_path)):
        if path:
            from ..plotting import plot_format

            try:
                plot_format(path, flag)
            except ConfigError as exc:
                raise click.UsageError(str(exc)) from None
            check_writable(path, flag)
    uncertainty_from(dict(params), None, model_path)  # contradictory options: before the model is read
    model = load_model(model_path, shift_path)
    if calibration_path and model.task not in ("binary", "multiclass", "multilabel"):
        raise click.UsageError(f"--calibration-plot draws a classifier's probabilities against the outcomes; this "
                               f"model is {model.task}")
    uncertainty = uncertainty_from(params, model, model_path)
    if plot_path and uncertainty is None:
        if model.task not in ("binary", "multiclass"):
            raise click.UsageError(f"--plot draws a risk–coverage curve of a classifier; this model is {model.task}")
        from ..predict import Uncertainty

        uncertainty = Uncertainty()
        uncertainty.check(model, model_path)
    with threads_context(threads), ReadProgress(quiet, "read") as progress:
        result = lib.evaluate(model, data_file, threshold=threshold, decision=decision, by=by, bootstrap=bootstrap, seed=seed,
                              fill_missing=fill_missing, max_missing=max_missing, roles=roles, **chunks,
                              stdin=binary_stdin() if data_file == "-" else None, n_jobs=threads,
                              progress=progress, uncertainty=uncertainty, novel_labels=novel_labels,
                              prevalence=prevalence, net_benefit=net_benefit, operating_points=operating_points)
    if plot_path and result.trust is None:  # every label novel: no sample to draw a risk–coverage curve of
        raise DataError(f"--plot {plot_path}: no sample of {data_file} holds a label the model knows, so there is no "
                        "risk–coverage curve to draw; leave out --plot")
    NoteRenderer(quiet, result)()
    doc = _finite({"model": model_path, "data": data_file, **result.to_dict()})
    # the files, all or none: a plot that fails to draw leaves no shift report or JSON file of this run behind
    files = {}
    if shift_path and shift_path != "-":
        from ..predict.output import table_bytes

        files[shift_path] = table_bytes(result.shift.to_frame(), shift_path)
    if out and out != "-":
        files[out] = (json_text(doc) + "\n").encode()
    if calibration_path:  # rendered now: written with the other files, all or none
        from ..plotting import calibration_plot

        if not result.calibration_curve or not any(result.calibration_curve.values()):
            raise DataError(f"--calibration-plot {calibration_path}: no sample of {data_file} to draw; leave it out")
        files[calibration_path] = calibration_plot(calibration_path, result.calibration_curve,
                                                   title=f"Calibration on {result.n:,} samples of {data_file}")

    def last() -> None:
        # standard output (one writer at most) cannot be taken back: after the files, before they are put in place
        if shift_path == "-":
            write_shift_report(result.shift, shift_path)
        elif as_json or out == "-":
            print_json(doc)
        if plot_path:
            write_risk_coverage(result.trust, plot_path, f"Risk–coverage on {result.n:,} samples of {data_file}")

    write_together(files, last=last)
    if not as_json:  # standard output holding a document (-o -, --shift-report -): the tables go to stderr, as
        # the summary of every other command does then (they went nowhere)
        render(result, model_path, data_file, result.decision, by_rule=threshold is None,
               con=stderr_console(quiet) if out == "-" or shift_path == "-" else None)  # -q: see train
