"""`mlpcli diagnose`: read a run's learning curves (label, evidence, advice, charts), or train at
several training-set sizes to draw the sample-size learning curve (``--learning-curve``)."""

from __future__ import annotations

import math
import os
import re
import zipfile
from dataclasses import dataclass, field

import click
from click.core import ParameterSource
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..errors import ConfigError, DataError
from ._common import (
    CONTEXT_SETTINGS, check_writable, debug_option, fmt, handle_errors, json_option, print_json, render_notes,
    stderr_console, stdout_console, threads_option,
)
from .options import config_option, options_from_params, train_options

_LABEL_STYLE = {
    "good_fit": "green", "overfit": "red", "underfit_capacity": "red", "underfit_stopped_early": "yellow",
    "unrepresentative_train": "yellow", "unrepresentative_validation_noisy": "yellow",
    "validation_below_train": "cyan",
}

# The evidence shown in the panel, in reading order, with what it means: the rows every label
# shares and those behind the label and its runner-up (all of it is in --json).
_COMMON_EVIDENCE = ("n_epochs", "scale", "scale_source", "train_final", "val_final", "best_epoch", "train_slope",
                    "val_slope", "gap_end", "score", "runner_up_score")
_LABEL_EVIDENCE = {
    "underfit_capacity": ("train_level", "val_level", "train_distance_from_baseline", "val_distance_from_baseline"),
    "underfit_stopped_early": ("train_slope_z", "val_slope_z", "train_level", "val_level"),
    "overfit": ("best_val", "divergence_epoch", "val_rise", "val_rise_z"),
    "good_fit": ("gap_trend", "train_level", "val_level", "val_rise"),
    "unrepresentative_train": ("gap_slope", "gap_trend", "val_share", "val_rise"),
    "unrepresentative_validation_noisy": ("val_noise_rel", "noise_ratio", "val_rise_z"),
    "validation_below_train": ("below_fraction", "train_eval_final", "cause"),
}
_EVIDENCE_ROWS = [
    ("n_epochs", "epochs read"),
    ("scale", "scale S: the no-skill loss (baseline) or the first epochs' level"),
    ("scale_source", "where S comes from"),
    ("train_final", "training value at the end (smoothed)"),
    ("val_final", "validation value at the end (smoothed)"),
    ("best_val", "lowest validation value (smoothed)"),
    ("best_epoch", "epoch of the lowest validation value"),
    ("divergence_epoch", "divergence point: validation starts rising"),
    ("train_level", "training level at the end / S"),
    ("val_level", "validation level at the end / S"),
    ("train_slope", "training slope per 10 % of the run / S (< 0 improving)"),
    ("train_slope_z", "training slope in standard errors"),
    ("val_slope", "validation slope per 10 % of the run / S"),
    ("val_slope_z", "validation slope in standard errors"),
    ("gap_end", "gap (validation - training) at the end / S"),
    ("gap_slope", "gap slope per 10 % of the run / S (second half)"),
    ("gap_trend", "the gap over the second half"),
    ("val_share", "validation's share of the training improvement (second half)"),
    ("val_rise", "validation rise after its minimum / S"),
    ("val_rise_z", "that rise in standard errors"),
    ("val_noise_rel", "validation wiggle / its level"),
    ("noise_ratio", "validation wiggle / training wiggle (relative)"),
    ("below_fraction", "share of epochs with validation below training"),
    ("train_eval_final", "training loss in inference mode at the end"),
    ("cause", "likely cause"),
    ("train_distance_from_baseline", "share of the no-skill loss removed on training"),
    ("val_distance_from_baseline", "share of the no-skill loss removed on validation"),
    ("score", "rule score of the label (-1 .. 1)"),
    ("runner_up_score", "rule score of the runner-up"),
]

_CURVE_COLUMNS = {"loss": ("train_loss", "val_loss"), "metric": ("train_metric", "val_metric")}
_TABLE_SUFFIX = re.compile(r"\.(csv|tsv|txt)(\.(gz|bz2|xz|zip))?$|\.parquet$", re.IGNORECASE)
_CURVE_ONLY = ("curves", "higher_is_better", "baseline")
_LEARNING_CURVE_ONLY = ("fractions", "n_jobs", "threads", "quiet", "config")
_SHARED = ("source", "plot_path", "chart", "learning", "as_json", "debug")  # every other option is a train option


# --------------------------------------------------------------------------- reading the curves
@dataclass
class _Curves:
    """The two curves to read and what is known about them."""

    source: str
    kind: str  # "model" | "history"
    curves: str  # "loss" | "metric"
    name: str  # what the curves measure, for labels: "loss", "balanced accuracy", ...
    train: list[float]
    val: list[float]
    train_eval: list[float] | None = None
    baseline: float | None = None
    baseline_note: str | None = None
    higher_is_better: bool = False
    stochastic: bool = False
    checkpoint_epoch: int | None = None  # the epoch whose weights were kept, when known
    notes: list[str] = field(default_factory=list)


def _is_model_file(path: str) -> bool:
    """A zip holding model.json, or any zip / .mlp file not named like a table (the model loader
    then says what is wrong with it)."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                if "model.json" in zf.namelist():
                    return True
        except (zipfile.BadZipFile, OSError):
            return True
        return not _TABLE_SUFFIX.search(path)
    return path.lower().endswith(".mlp")


def _read_curves(source: str, curves: str, higher_is_better: bool | None, baseline: float | None) -> _Curves:
    if source != "-":
        if not os.path.exists(source):
            raise DataError(f"file not found: {source}")
        if os.path.isdir(source):
            raise DataError(f"{source} is a directory; give a model file or a history table")
        if _is_model_file(source):
            c = _curves_from_model(source, curves, higher_is_better)
            return _override_baseline(c, baseline)
    return _override_baseline(_curves_from_table(source, curves, higher_is_better), baseline)


def _override_baseline(c: _Curves, baseline: float | None) -> _Curves:
    if baseline is not None:
        c.baseline, c.baseline_note = baseline, "given with --baseline"
    return c


def _curves_from_model(path: str, curves: str, higher_is_better: bool | None) -> _Curves:
    from .. import model_io

    model = model_io.load(path)
    h = model.history
    tk, vk = _CURVE_COLUMNS[curves]
    if not h:
        raise DataError(f"{path}: the model file holds no training history to diagnose")
    if any(tk not in row or vk not in row for row in h):
        raise DataError(f"{path}: the model's history has no {tk}/{vk} (it has {', '.join(h[0])})")
    cfg = model.config or {}
    c = _Curves(source=path, kind="model", curves=curves, name="loss", train=[_num(r[tk]) for r in h],
                val=[_num(r[vk]) for r in h],
                stochastic=bool(cfg.get("dropout") or cfg.get("augment_noise")),
                checkpoint_epoch=(model.fit or {}).get("best_epoch") or None)
    if curves == "loss":
        if all("train_loss_eval" in r for r in h):
            c.train_eval = [_num(r["train_loss_eval"]) for r in h]
        c.baseline = (model.baseline or {}).get("val_loss")
        c.baseline_note = "loss of always predicting the training prior" if c.baseline is not None else None
        c.name = f"loss ({model.loss.get('name', '?')})"
        return c
    metric = (model.fit or {}).get("metric") or ("rmse" if model.task == "regression" else "balanced_accuracy")
    c.name = metric.replace("_", " ") + (" (standardised targets)" if metric == "rmse" else "")
    c.higher_is_better = metric != "rmse" if higher_is_better is None else higher_is_better
    c.baseline, c.baseline_note = _metric_baseline(model, metric)
    return c


def _metric_baseline(model, metric: str) -> tuple[float | None, str | None]:
    """The no-skill value of the per-epoch metric: balanced accuracy 1/K over the validation
    classes (0.5 per label for multi-label); RMSE of the mean from the MSE baseline."""
    if metric == "balanced_accuracy":
        if model.task == "multilabel":
            return 0.5, "balanced accuracy of a constant prediction"
        present = [k for k, v in (model.split or {}).get("class_counts_val", {}).items() if v]
        k = len(present) or len(model.classes)
        return (1.0 / k, f"balanced accuracy of a constant prediction (1/{k})") if k >= 2 else (None, None)
    base = (model.baseline or {}).get("val_loss")
    if metric == "rmse" and model.loss.get("name") == "mse" and base is not None:
        # MSE per sample is 1/2 sum_k r^2, so the RMSE over all k outputs is sqrt(2 MSE / k)
        return math.sqrt(2.0 * base / max(1, model.network.n_outputs)), "RMSE of predicting the training mean"
    return None, None


def _num(v) -> float:
    try:
        return float("nan") if v is None else float(v)
    except (TypeError, ValueError):
        return float("nan")


def _curves_from_table(path: str, curves: str, higher_is_better: bool | None) -> _Curves:
    import numpy as np
    import pandas as pd

    from .. import data

    frame = data.read_table(path)
    tk, vk = _CURVE_COLUMNS[curves]
    missing = [k for k in (tk, vk) if k not in frame.columns]
    if missing:
        flag = "" if curves == "loss" else " with --metric metric"
        raise DataError(f"{path} has no {' or '.join(repr(m) for m in missing)} column; diagnose{flag} needs "
                        f"{tk} and {vk} (columns present: {', '.join(map(str, frame.columns[:12]))}"
                        f"{' ...' if len(frame.columns) > 12 else ''})")

    def column(name: str) -> list[float]:
        values = pd.to_numeric(frame[name], errors="coerce")
        bad = values.isna() & frame[name].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}: column {name!r} holds a non-numeric value {frame[name].iloc[i]!r} "
                            f"(data row {i + 1})")
        return values.astype(float).tolist()

    c = _Curves(source="standard input" if path == "-" else path, kind="history", curves=curves, name=curves,
                train=column(tk), val=column(vk))
    if curves == "loss" and "train_loss_eval" in frame.columns:
        c.train_eval = column("train_loss_eval")
    if "best_epoch" in frame.columns:  # `train --history` records the kept epoch on every row
        last = pd.to_numeric(frame["best_epoch"], errors="coerce").dropna()
        c.checkpoint_epoch = int(last.iloc[-1]) if len(last) and last.iloc[-1] >= 1 else None
    if curves == "metric":
        c.higher_is_better = _infer_higher(c, higher_is_better)
    return c


def _infer_higher(c: _Curves, given: bool | None) -> bool:
    """A score in [0, 1] whose training curve rises (accuracy, AUROC) is higher-is-better; else an
    error such as RMSE. Said on stderr, with the flag that overrides it."""
    import numpy as np

    if given is not None:
        return given
    tr, va = np.asarray(c.train, dtype=float), np.asarray(c.val, dtype=float)
    keep = np.isfinite(tr) & np.isfinite(va)
    tr, va = tr[keep], va[keep]
    k = max(1, min(3, len(tr) // 3))
    in_unit = tr.size > 0 and min(tr.min(), va.min()) >= 0 and max(tr.max(), va.max()) <= 1
    # both curves together: a training score pinned at 1.0 from epoch 2 does not rise any more
    rising = len(tr) >= 2 and (tr[-k:].mean() - tr[:k].mean()) + (va[-k:].mean() - va[:k].mean()) > 0
    higher = bool(in_unit and rising)
    why = ("values in [0, 1] and the curves rise" if higher else
           "the curves fall" if in_unit else "values outside [0, 1]")
    c.notes.append(f"--metric metric: reading {'higher' if higher else 'lower'} values as better ({why}); "
                   f"pass --{'lower' if higher else 'higher'}-is-better if that is wrong")
    return higher


# --------------------------------------------------------------------------- rendering
def _chart(c: _Curves, best_epoch: int | None) -> Text:
    from ..plotting import BOTH_CHAR, TRAIN_CHAR, VAL_CHAR, terminal_chart

    chart = Text(terminal_chart(c.train, c.val, best_epoch=best_epoch, baseline=c.baseline,
                                train_name="training", val_name="validation",
                                best_name="kept epoch" if c.checkpoint_epoch else "best epoch"))
    chart.highlight_regex(re.escape(TRAIN_CHAR), "bold dodger_blue2")
    chart.highlight_regex(re.escape(VAL_CHAR), "bold dark_orange")
    chart.highlight_regex(re.escape(BOTH_CHAR), "bold magenta")
    return chart


def _verdict_panel(c: _Curves, d, best_epoch: int | None, chart: bool = True) -> Panel:
    ev = d.evidence
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("evidence")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    shown = {*_COMMON_EVIDENCE, *_LABEL_EVIDENCE.get(d.label, ()), *_LABEL_EVIDENCE.get(d.runner_up, ())}
    for key, meaning in _EVIDENCE_ROWS:
        if key in shown and ev.get(key) is not None:
            table.add_row(key, fmt(ev[key]), meaning)
    table.caption = f"{len(ev)} numbers in all with --json"
    table.caption_justify = "left"
    advice = Text()
    for i, line in enumerate(d.advice):
        advice.append(("\n" if i else "") + "• " + line)
    style = _LABEL_STYLE.get(d.label, "bold")
    title = f"[bold {style}]{d.label}[/]" + (f"  [dim](runner-up: {d.runner_up})[/]" if d.runner_up else "")
    what = (f"{c.source}: {c.name} curves{' (higher is better)' if c.higher_is_better else ''}, "
            f"{len(c.train)} epochs")
    if c.baseline is not None:
        what += f"; baseline {c.baseline:.4g} ({c.baseline_note})"
    parts = [Text(what, style="dim"), Text(d.summary, style="bold"), Text(""), table, Text(""),
             Text("Advice", style="bold"), advice]
    if chart:
        parts += [Text(""), _chart(c, best_epoch)]
    return Panel(Group(*parts), title=f"Learning curves: {title}", title_align="left", border_style=style)


_SHORT_METRIC = {"balanced_accuracy": "bal. acc.", "rmse": "RMSE"}
_MORE_DATA_WORDS = {"helps": "more data still helps", "plateaued": "plateaued", None: "a single size"}
_BIAS_VARIANCE_WORDS = {"bias": "mostly bias", "variance": "mostly variance", "both": "bias and variance",
                        "neither": "little bias or variance"}


def _learning_curve_table(result) -> Table:
    name = result.metric.replace("_", " ")
    short = _SHORT_METRIC.get(result.metric, name)
    table = Table(title="Sample-size learning curve (validation groups fixed)", title_justify="left")
    for col in ("size", "samples", "groups", f"train {short}", f"val {short}", "train loss", "val loss",
                "best epoch", "curves"):
        table.add_column(col, justify="left" if col == "curves" else "right")
    for p in result.points:
        table.add_row(f"{p.fraction:.0%}", str(p.n_train), fmt(p.n_groups), f"{p.train_score:.4g}",
                      f"{p.val_score:.4g}", f"{p.train_loss:.4g}", f"{p.val_loss:.4g}", f"{p.best_epoch}/{p.epochs_run}",
                      p.curve_label or "—")
    table.caption = (f"validation: {result.n_val} samples" + (f" in {result.n_val_groups} groups" if result.n_val_groups else "")
                     + f"; no-skill {name} {result.chance_score:.3g}; training scores in inference mode at the best epoch")
    return table


def _answers_panel(result) -> Panel:
    md, bv = result.more_data, result.bias_variance
    body = Text()
    body.append("Does more data still help?  ", style="bold")
    body.append(md["text"])
    body.append("\n\nBias or variance?  ", style="bold")
    body.append(bv["text"])
    if bv.get("caveat"):
        body.append("\n" + bv["caveat"], style="yellow")
    return Panel(body, title="The learning curve's answers", title_align="left")


# --------------------------------------------------------------------------- the command
def _flag(ctx: click.Context, name: str) -> str:
    for p in ctx.command.params:
        if p.name == name:
            return p.opts[0] if p.opts else name
    return name


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _check_mode(ctx: click.Context, learning: bool) -> None:
    """Options of the other mode are a usage error naming the option (not silently ignored)."""
    if learning:
        wrong = [n for n in _CURVE_ONLY if _given(ctx, n)]
        if wrong:
            raise click.UsageError(f"{_flag(ctx, wrong[0])} reads a run's curves; it does not apply with --learning-curve")
        return
    own = {*_CURVE_ONLY, *_SHARED}
    wrong = [p.name for p in ctx.command.params if p.name not in own and _given(ctx, p.name)]
    if wrong:
        raise click.UsageError(f"{_flag(ctx, wrong[0])} applies only with --learning-curve "
                               "(it trains models; SOURCE is then the data table)")


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("source", metavar="SOURCE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--metric", "curves", type=click.Choice(["loss", "metric"]), default="loss", show_default=True,
              help="Which curves to read: the losses, or the per-epoch main metric (balanced accuracy / RMSE).")
@click.option("--higher-is-better/--lower-is-better", "higher_is_better", default=None,
              help="For --metric metric: whether the metric improves upwards (default: from the model's task, or "
                   "inferred from a history table's values).")
@click.option("--baseline", type=float, default=None,
              help="No-skill level of the curves (default: the model's class-prior loss; none for a history table).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Also draw the curves to FILE (.png, .svg or .pdf).")
@click.option("--chart/--no-chart", default=True, show_default=True, help="Show the terminal chart of both curves.")
@click.option("--learning-curve", "learning", is_flag=True,
              help="SOURCE is a data table: train at several training-set sizes and read score against samples "
                   "(takes the train options below).")
@click.option("--fractions", default="0.1,0.25,0.5,0.75,1", show_default=True,
              help="--learning-curve: training-set sizes as fractions of the training groups.")
@click.option("--n-jobs", type=int, default=1, show_default=True,
              help="--learning-curve: sizes trained in parallel (-1: all cores).")
@config_option("--learning-curve: TOML file of train options; command-line flags win.")
@train_options
@threads_option
@click.option("-q", "--quiet", is_flag=True, help="--learning-curve: no progress or notes on stderr.")
@json_option
@debug_option
@handle_errors
def diagnose(source, curves, higher_is_better, baseline, plot_path, chart, learning, fractions, n_jobs, threads,
             quiet, as_json, debug, **params):
    """Label a run's learning curves, explain the verdict and draw both curves.

    SOURCE is a model file (its history and class-prior baseline are inside) or a history table
    (epoch,train_loss,val_loss as `train --history` writes it). Labels: underfit_capacity,
    underfit_stopped_early, overfit, good_fit, unrepresentative_train,
    unrepresentative_validation_noisy, validation_below_train.

    With --learning-curve, SOURCE is a data table: a model is trained at each training-set size
    (the validation groups fixed) and the training and validation scores are read against the
    number of samples: does more data still help, and is the error bias or variance?

    \b
    Examples:
      mlpcli diagnose subtypes.mlp
      mlpcli diagnose history.csv --plot curves.png
      mlpcli diagnose subtypes.mlp --metric metric --json
      mlpcli diagnose --learning-curve sample_data/tumour_subtypes.csv.gz --n-jobs 2 --plot lc.png
    """
    ctx = click.get_current_context()
    _check_mode(ctx, learning)
    if plot_path:
        from ..plotting import plot_format

        plot_format(plot_path)
        check_writable(plot_path, "--plot")
    if learning:
        _run_learning_curve(source, params, fractions, n_jobs, threads, quiet, plot_path, as_json)
        return
    _run_curves(source, curves, higher_is_better, baseline, plot_path, chart, as_json)


def _run_curves(source, curves, higher_is_better, baseline, plot_path, chart, as_json) -> None:
    from ..diagnosis import diagnose as label_curves

    if higher_is_better is not None and curves == "loss":
        raise click.UsageError("--higher-is-better/--lower-is-better apply to --metric metric (losses are lower-is-better)")
    c = _read_curves(source, curves, higher_is_better, baseline)
    try:
        d = label_curves(c.train, c.val, baseline=c.baseline, train_eval_loss=c.train_eval,
                         stochastic_regularisation=c.stochastic, higher_is_better=c.higher_is_better)
    except DataError as exc:
        raise DataError(f"{c.source}: {exc}") from None
    best = c.checkpoint_epoch or d.evidence.get("best_epoch")
    if plot_path:
        from ..plotting import plot_curves

        plot_curves(plot_path, c.train, c.val, ylabel=f"{c.name}", title=f"Learning curves: {d.label}",
                    best_epoch=best, divergence_epoch=d.evidence.get("divergence_epoch"), baseline=c.baseline,
                    train_eval=c.train_eval,
                    best_label=f"kept epoch {best} (lowest validation loss)" if c.checkpoint_epoch else None)
    if as_json:
        print_json({**d.to_dict(), "source": c.source, "kind": c.kind, "curves": c.curves,
                    "higher_is_better": c.higher_is_better, "n_epochs": len(c.train), "best_epoch": best,
                    "baseline": c.baseline, "plot": plot_path, "notes": c.notes})
        return
    render_notes(stderr_console(), c.notes, [])
    con = stdout_console()
    con.print(_verdict_panel(c, d, best, chart))
    if plot_path:
        con.print(f"[dim]plot written to {plot_path}[/]")


def _run_learning_curve(source, params, fractions, n_jobs, threads, quiet, plot_path, as_json) -> None:
    from ..model_selection.learning_curve import learning_curve, parse_fractions

    options = options_from_params(params)
    fracs = parse_fractions(fractions)
    if n_jobs == 0:
        raise ConfigError("--n-jobs must not be 0; use 1 for no parallelism or -1 for all cores")
    err = stderr_console(quiet)

    def progress(p) -> None:
        err.print(f"[dim]·[/] {p.fraction:.0%} of the training groups: {p.n_train} samples, "
                  f"validation score {p.val_score:.4g}, best epoch {p.best_epoch} ({p.seconds:.1f} s)")

    if not quiet:
        err.print(f"[dim]·[/] training at {len(fracs)} sizes ({', '.join(f'{f:.0%}' for f in fracs)}) "
                  f"with --n-jobs {n_jobs}")
    result = learning_curve(source, options, fracs, n_jobs=n_jobs, threads=threads,
                            progress=None if quiet else progress)
    if plot_path:
        from ..plotting import plot_learning_curve

        pts = result.points
        plot_learning_curve(plot_path, [p.n_train for p in pts], [p.train_score for p in pts],
                            [p.val_score for p in pts], [p.train_loss for p in pts], [p.val_loss for p in pts],
                            score_name=result.metric.replace("_", " "), chance_score=result.chance_score,
                            title=f"Sample-size learning curve: {_MORE_DATA_WORDS[result.more_data['verdict']]}; "
                                  f"{_BIAS_VARIANCE_WORDS[result.bias_variance['verdict']]}")
    if as_json:
        print_json({**result.to_dict(), "plot": plot_path})
        return
    render_notes(err, result.notes, result.warnings + result.skipped)
    con = stdout_console()
    con.print(_learning_curve_table(result))
    con.print(_answers_panel(result))
    if plot_path:
        con.print(f"[dim]plot written to {plot_path}[/]")
