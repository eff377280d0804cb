"""`mlpcli diagnose`: read a run's learning curves (label, evidence, advice, charts), or train at
several training-set sizes to draw the sample-size learning curve (``--learning-curve``)."""

from __future__ import annotations

import math
import os
import re

import click
from click.core import ParameterSource
from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from ..diagnosis import BaselineError, evidence_meanings, label_title
from ..errors import ConfigError
from ..history import Curves, diagnose_curves, read_curves
from ..metrics import display_name
from ..text import count_of
from . import SHORT_HELP
from .console import check_stdout_open, print_json, report, stderr_console, stdout_console, Table
from .exits import handle_errors, reading
from .formatting import fmt, fmt_metric
from .outputs import check_writable, distinct_files
from .shared_options import (check_n_jobs, CONTEXT_SETTINGS, debug_option, finite_option, json_option,
    N_JOBS_FROM_END, named_file, quiet_option, threads_option, warn_workers)
from .options import config_option, options_from_params, train_options

_LABEL_STYLE = {
    "good_fit": "green", "overfit": "red", "underfit_capacity": "red", "underfit_stopped_early": "yellow",
    "unrepresentative_train": "yellow", "unrepresentative_validation_noisy": "yellow",
    "validation_below_train": "cyan",
}

# The evidence shown in the panel, in reading order, with what it means: the rows every label
# shares and those behind the label and its runner-up (all of it is in --json).
_COMMON_EVIDENCE = ("n_epochs", "unstable_epoch", "train_rise", "first_infinite_epoch", "scale", "scale_source",
                    "train_final", "val_final", "best_epoch", "best_tolerance", "train_slope", "val_slope", "gap_end",
                    "member_spread", "score", "runner_up_score")
_LABEL_EVIDENCE = {
    "underfit_capacity": ("train_level", "val_level", "train_distance_from_baseline", "val_distance_from_baseline",
                          "cause", "train_slope_z", "val_slope_z", "fall_ratio", "gap_slope", "val_share"),
    "underfit_stopped_early": ("train_slope_z", "val_slope_z", "train_level", "val_level"),
    "overfit": ("best_val", "divergence_epoch", "val_rise", "val_rise_z"),
    "good_fit": ("gap_trend", "train_level", "val_level", "val_rise"),
    "unrepresentative_train": ("gap_end_z", "gap_slope", "gap_trend", "val_share", "val_rise"),
    "unrepresentative_validation_noisy": ("val_noise_rel", "noise_ratio", "val_rise_z", "gap_end_z"),
    "validation_below_train": ("below_fraction", "train_eval_final", "cause"),
}
# Reading order of the panel's evidence rows; their meanings come from the labeller, phrased for the
# curves' direction (a higher-is-better metric's best value is its highest).
_EVIDENCE_ORDER = ("n_epochs", "unstable_epoch", "train_rise", "first_infinite_epoch", "scale", "scale_source",
                   "train_final", "val_final", "best_val", "best_epoch", "best_tolerance", "divergence_epoch",
                   "train_level", "val_level", "train_slope", "train_slope_z",
                   "val_slope", "val_slope_z", "fall_ratio", "gap_end", "gap_end_z", "gap_slope", "gap_trend",
                   "val_share", "val_rise", "val_rise_z", "val_noise_rel", "noise_ratio", "member_spread", "below_fraction",
                   "train_eval_final", "cause", "train_distance_from_baseline", "val_distance_from_baseline",
                   "score", "runner_up_score")

# --chart/--no-chart among them: the learning curve draws no terminal chart, and --no-chart was silently ignored there
_CURVE_ONLY = ("curves", "higher_is_better", "baseline", "chart")
_LEARNING_CURVE_ONLY = ("fractions", "n_jobs", "threads", "config")
# Train options the learning curve cannot honour, and why (it trains one network per size on a fixed hold-out)
_NOT_FOR_LEARNING_CURVE = {
    "folds": "each training-set size trains one network on the fixed hold-out, not a cross-fitted ensemble",
    "refit": "each training-set size trains one network on the fixed hold-out; there are no members to refit",
    "calibrate": "each size's network is calibrated as train calibrates one network (on the validation rows, from "
                 "100 of them), which moves only the labels of the balanced decision rule (--decision)",
}
_SHARED = ("source", "plot_path", "learning", "as_json", "quiet", "debug")  # every other option is a train option


# --------------------------------------------------------------------------- rendering
def _chart(c: Curves, best_epoch: int | None) -> Text:
    from ..plotting import BOTH_CHAR, TRAIN_CHAR, VAL_CHAR, terminal_chart

    mean = f" (mean of {len(c.members)})" if len(c.members) > 1 else ""
    chart = Text(terminal_chart(c.train, c.val, best_epoch=best_epoch, baseline=c.baseline,
                                train_name="training" + mean, val_name="validation" + mean,
                                best_name=f"kept {c.step}" if c.checkpoint_epoch else f"best {c.step}", x_name=c.step))
    chart.highlight_regex(re.escape(TRAIN_CHAR), "bold dodger_blue2")
    chart.highlight_regex(re.escape(VAL_CHAR), "bold dark_orange")
    chart.highlight_regex(re.escape(BOTH_CHAR), "bold magenta")
    return chart


def _verdict_panel(c: Curves, d, best_epoch: int | None, chart: bool = True) -> Panel:
    ev = d.evidence
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("evidence")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    shown = {*_COMMON_EVIDENCE, *_LABEL_EVIDENCE.get(d.label, ()), *_LABEL_EVIDENCE.get(d.runner_up, ())}
    meanings = evidence_meanings(c.higher_is_better)
    for key in _EVIDENCE_ORDER:
        if key in shown and ev.get(key) is not None:
            table.add_row(key, fmt(ev[key]), meanings[key])
    table.caption = f"{len(ev)} numbers in all with --json"
    table.caption_justify = "left"
    advice = Text()
    for i, line in enumerate(d.advice):
        advice.append(("\n" if i else "") + "• " + line)
    style = _LABEL_STYLE.get(d.label, "bold")
    title = f"[bold {style}]{d.label}[/]" + (f"  [dim](runner-up: {d.runner_up})[/]" if d.runner_up else "")
    if ev.get("unstable_epoch") is not None:  # the label describes the run before it went unstable
        style = "red"
        title = f"[bold red]unstable from epoch {ev['unstable_epoch']}[/], before that {title}"
    what = (f"{c.source}: {_curves_name(c)} curves{' (higher is better)' if c.higher_is_better else ''}, "
            f"{_epochs_words(c)}")
    if c.checkpoint_epoch:  # beside the evidence's best_epoch (first within the noise of the best): they may differ
        what += f"; weights kept from {c.step} {c.checkpoint_epoch}"
    if c.baseline is not None:
        what += f"; baseline {c.baseline:.4g} ({c.baseline_note})"
    parts = [Text(what, style="dim"), Text(d.summary, style="bold"), Text(""), table, Text(""),
             # the options the advice names are train's (diagnose MODEL refuses them: they apply with --learning-curve)
             Text("Advice (options of `mlpcli train`)", style="bold"), advice]
    if chart:
        parts += [Text(""), _chart(c, best_epoch)]
    return Panel(Group(*parts), title=f"Learning curves: {title}", title_align="left", border_style=style)


def _kept_label(c: Curves, best: int | None) -> str | None:
    """The plot's legend for the kept weights: early stopping's lowest validation loss, or L-BFGS's last iterate."""
    if not c.checkpoint_epoch:
        return None
    why = "the last" if c.step == "iteration" else "lowest validation loss"
    return f"kept {c.step} {best} ({why})"


def _curves_name(c: Curves) -> str:
    """What the curves measure, for people: "RMSE", "balanced accuracy", "loss (mse)" (``Curves.name`` holds the
    metric's key with spaces, "rmse", and may end in a remark in brackets)."""
    base, bracket, rest = c.name.partition(" (")
    return display_name(base) + bracket + rest


def _plot_title(c: Curves, d) -> str:
    """The label in words ("Learning curves: Good fit"); a verdict no rule fully supports says so, and an
    unstable run says that first."""
    title = label_title(d.label, c.higher_is_better)
    score = d.evidence.get("score")
    if score is not None and score < 0:
        title = f"no clear shape (closest: {title[0].lower() + title[1:]})"
    unstable = d.evidence.get("unstable_epoch")
    if unstable is not None:
        title = f"unstable from epoch {unstable} (before that: {title[0].lower() + title[1:]})"
    return f"Learning curves: {title}" + (f" (mean of {len(c.members)} members)" if len(c.members) > 1 else "")


def _epochs_words(c: Curves) -> str:
    """'40 epochs', or for an ensemble how its mean curve was made from the members."""
    if not c.members:
        both = sum(1 for t, v in zip(c.train, c.val) if math.isfinite(t) and math.isfinite(v))
        # a history with empty cells: the rows, and how many of them the verdict could read
        return f"{len(c.train)} {c.step}s" + (f" ({both} with both values)" if both < len(c.train) else "")
    # the kept epochs only where the source records them (best_epoch); else the lowest validation loss, said so (a
    # history without best_epoch read "kept epoch 26" where nothing says those weights were kept)
    recorded = all(m.recorded for m in c.members)
    which = "kept epoch" if recorded else "lowest validation loss at epoch"
    if len(c.members) == 1:  # its own curves, not a mean (an ensemble stopped after its first member)
        kept = c.members[0].best_epoch
        return f"{len(c.train)} epochs of member {c.members[0].member}" + (f", {which} {kept}" if kept else "")
    runs = [len(m.train) for m in c.members]
    kept = ", ".join("?" if m.best_epoch is None else str(m.best_epoch) for m in c.members)
    return (f"mean of {len(runs)} members over {len(c.train)} epochs (while more than half still ran; members ran "
            f"{min(runs)}-{max(runs)} epochs, {which + 's' if recorded else 'lowest validation losses at epochs'} "
            f"{kept})")


_MORE_DATA_WORDS = {"helps": "more data still helps", "unclear": "whether more data helps is unclear",
                    "plateaued": "plateaued", None: "a single size"}
_BIAS_VARIANCE_WORDS = {"bias": "mostly bias", "variance": "mostly variance", "both": "bias and variance",
                        "neither": "little bias or variance", "no_signal": "no learnable signal"}


def _learning_curve_table(result) -> Table:
    from ..diagnosis.sample_size import fraction_words

    name, short = display_name(result.metric), display_name(result.metric, short=True)
    table = Table(title="Sample-size learning curve (validation groups fixed)", title_justify="left")
    for col in ("size", "samples", "groups", f"train {short}", f"val {short}", "train loss", "val loss",
                "best epoch", "curves"):
        table.add_column(col, justify="left" if col == "curves" else "right")
    for p in result.points:
        table.add_row(fraction_words(p.fraction), str(p.n_train), fmt(p.n_groups), fmt_metric(result.metric, p.train_score),
                      fmt_metric(result.metric, p.val_score), fmt(p.train_loss, "loss"), fmt(p.val_loss, "loss"),
                      f"{p.best_epoch}/{p.epochs_run}",
                      p.curve_label or "—")
    table.caption = (f"validation: {count_of(result.n_val, 'sample')}"
                     + (f" in {count_of(result.n_val_groups, 'group')}" if result.n_val_groups else "")
                     + f"; no-skill {name} {fmt_metric(result.metric, result.chance_score)}; training scores in inference mode at the best epoch")
    rule = result.rule_words()
    if rule:  # the labels the balanced accuracies count: the rule changes them (--decision)
        table.caption += f"; labels by {rule}"
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
    """The option as the user typed it (--no-calibrate for the off side of a flag pair)."""
    for p in ctx.command.params:
        if p.name == name:
            if getattr(p, "secondary_opts", None) and ctx.params.get(name) is False:
                return p.secondary_opts[0]
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
        wrong = [n for n in _NOT_FOR_LEARNING_CURVE if _given(ctx, n)]
        if wrong:
            raise click.UsageError(f"{_flag(ctx, wrong[0])} does not apply with --learning-curve: "
                                   f"{_NOT_FOR_LEARNING_CURVE[wrong[0]]}")
        # the same keys in --config were dropped without a word (refit = true trained no refit, and said nothing)
        wrong = [n for n in _NOT_FOR_LEARNING_CURVE if ctx.get_parameter_source(n) == ParameterSource.DEFAULT_MAP]
        if wrong:
            from .options import CONFIG_META

            raise click.UsageError(f"--config {ctx.meta.get(CONFIG_META)}: key '{wrong[0]}' does not apply with "
                                   f"--learning-curve: {_NOT_FOR_LEARNING_CURVE[wrong[0]]}; remove it")
        return
    own = {*_CURVE_ONLY, *_SHARED}
    wrong = [p.name for p in ctx.command.params if p.name not in own and _given(ctx, p.name)]
    if wrong:
        raise click.UsageError(f"{_flag(ctx, wrong[0])} applies only with --learning-curve "
                               "(it trains models; SOURCE is then the data table)")


@click.command(context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["diagnose"])
@click.argument("source", metavar="SOURCE", type=click.Path(allow_dash=True))  # a directory: 10x (--learning-curve)
@click.option("--metric", "curves", type=click.Choice(["loss", "metric"]), default="loss", show_default=True,
              help="Which curves to read: the losses, or the per-epoch main metric (balanced accuracy / RMSE).")
@click.option("--higher-is-better/--lower-is-better", "higher_is_better", default=None,
              help="For --metric metric: whether the metric improves upwards (default: from the model's task, or "
                   "inferred from a history table's values).")
@click.option("--baseline", type=float, default=None, callback=finite_option,
              help="No-skill level of the curves, in their units (default from a model file: the loss of always "
                   "predicting the training class prior, or for regression the training mean; with --metric metric "
                   "the chance balanced accuracy or that mean's RMSE. None for a history table).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, callback=named_file,
              help="Also draw the curves to FILE (.png, .svg or .pdf).")
@click.option("--chart/--no-chart", default=True, show_default=True, help="Show the terminal chart of both curves.")
@click.option("--learning-curve", "learning", is_flag=True,
              help="SOURCE is a data table: train at several training-set sizes and read score against samples "
                   "(takes the train options below).")
@click.option("--fractions", default="0.1,0.25,0.5,0.75,1", show_default=True,
              help="--learning-curve: training-set sizes as fractions of the training groups (of the training "
                   "rows without a group column).")
@click.option("--n-jobs", type=int, default=None,
              help="--learning-curve: sizes trained in parallel. Default: one per usable core (the job's CPU "
                   "allocation honoured), or 1 when each worker would copy more than 64 MB of rows. " + N_JOBS_FROM_END)
@config_option("--learning-curve: TOML file of train options; command-line flags win.")
@train_options(hide=tuple(_NOT_FOR_LEARNING_CURVE))  # refused with --learning-curve, and without it
@threads_option
@quiet_option
@json_option
@debug_option
@handle_errors
def diagnose(source, curves, higher_is_better, baseline, plot_path, chart, learning, fractions, n_jobs, threads,
             quiet, as_json, debug, **params):
    """Label a run's learning curves, explain the verdict and draw both curves.

    SOURCE is a model file (its history and no-skill baseline are inside: the loss of always
    predicting the training class prior, or for regression the training mean) or a history table
    (epoch,train_loss,val_loss as `train --history` writes it; --baseline gives it one). For an
    ensemble (a member column) the members' mean curves are labelled, their spread counting as
    evidence of noisy validation, and --plot draws every member. Labels: underfit_capacity,
    underfit_stopped_early, overfit, good_fit, unrepresentative_train,
    unrepresentative_validation_noisy, validation_below_train. A run that went
    unstable (an infinite loss, or a training loss that climbs) is said first,
    and its label describes the run before that. A history's epochs may start at
    1 (train --history) or 0 (Keras).

    With --learning-curve, SOURCE is a data table: a model is trained at each training-set size
    (the validation groups fixed) and the training and validation scores are read against the
    number of samples: does more data still help, and is the error bias or variance?
    Each size trains one network on a fixed hold-out, so --folds, --refit and
    --calibrate do not apply.

    \b
    Examples:
      mlpcli diagnose subtypes.mlp
      mlpcli diagnose history.csv --plot curves.png
      mlpcli diagnose subtypes.mlp --metric metric --json
      mlpcli diagnose --learning-curve sample_data/tumour_subtypes.csv.gz --n-jobs 2 --plot lc.png
    """
    ctx = click.get_current_context()
    _check_mode(ctx, learning)
    if not learning and os.path.isdir(source):
        raise click.BadParameter(f"{source} is a directory; SOURCE is a model file or a history table (a 10x Genomics "
                                 "directory is read with --learning-curve)", param_hint="SOURCE")
    if not as_json and not plot_path:  # the verdict is the result: not lost on a closed standard output
        check_stdout_open("the verdict")
    if plot_path == "":  # not "no plot": the user asked for one and named no file
        raise click.BadParameter("is empty; give the file to draw to (.png, .svg or .pdf)", param_hint="--plot")
    if plot_path:
        from ..plotting import plot_format

        plot_format(plot_path)
        check_writable(plot_path, "--plot")
    distinct_files({"--plot": plot_path}, {"SOURCE": source})
    if learning:
        _run_learning_curve(source, params, fractions, n_jobs, threads, quiet, plot_path, as_json)
        return
    _run_curves(source, curves, higher_is_better, baseline, plot_path, chart, as_json, quiet)


# The train options' help is train's; where the learning curve reads an option otherwise, its help here says how
# (help text only: what each option does is _check_mode's and learning_curve's).
_LEARNING_CURVE_HELP = {  # (--folds, --refit and --calibrate are refused in either mode: hidden, not listed)
    "val_size": "--learning-curve: the fixed validation hold-out every size is scored on, as a fraction (of the "
                "groups when grouped).  [default: 0.2]",
    "decision": "How a class is chosen from the calibrated probabilities (binary, multiclass): argmax, the most "
                "probable class; balanced, the most probable relative to its training share (P(c) / share(c)). With "
                "--learning-curve, the labels every size's balanced accuracies count; auto chooses at each size, on "
                "the validation rows, as train --folds 1 does.",
    "hidden": "Hidden layer widths, comma-separated ('' or none for none: softmax regression). auto, with "
              "--learning-curve: one hidden layer of 128 at every size, with --augment-noise auto when the "
              "features outnumber the training rows (train's hidden-layer candidate on such tables, tried before the plain "
              "one).  [default: auto]",
}
for _param in diagnose.params:
    if _param.name in _LEARNING_CURVE_HELP:
        _param.help = _LEARNING_CURVE_HELP[_param.name]


def _run_curves(source, curves, higher_is_better, baseline, plot_path, chart, as_json, quiet=False) -> None:
    if higher_is_better is not None and curves == "loss":
        raise click.UsageError("--higher-is-better/--lower-is-better apply to --metric metric (losses are lower-is-better)")
    c = read_curves(source, curves, higher_is_better, baseline)
    try:
        d = diagnose_curves(c)
    except BaselineError as exc:  # only the user's --baseline comes through unprefixed (a model's names the file)
        raise click.BadParameter(str(exc).removeprefix("baseline "), param_hint="--baseline") from None
    best = c.checkpoint_epoch or d.evidence.get("best_epoch")
    if plot_path:
        from ..plotting import plot_curves

        # the line marks where the curves diverge: overfit's validation minimum, or where the run went unstable
        diverged = d.evidence.get("divergence_epoch") or d.evidence.get("unstable_epoch")
        plot_curves(plot_path, c.train, c.val, ylabel=_curves_name(c), title=_plot_title(c, d),
                    best_epoch=best, divergence_epoch=diverged, baseline=c.baseline, train_eval=c.train_eval,
                    best_label=_kept_label(c, best), xlabel=c.step,
                    members=[(m.train, m.val) for m in c.members] if len(c.members) > 1 else None)
    if as_json:
        doc = {**d.to_dict(), "source": c.source, "kind": c.kind, "curves": c.curves,
               "higher_is_better": c.higher_is_better, "n_epochs": len(c.train), "best_epoch": best,
               "kept_epoch": c.checkpoint_epoch,
               "baseline": c.baseline, "plot": plot_path, "notes": c.notes}
        if c.members:  # a single network's document stays as it was
            doc |= {"n_members": len(c.members), "members": [m.to_dict() for m in c.members],
                    "member_spread": d.evidence["member_spread"]}
        print_json(doc)
        return
    report(c.notes, [], quiet)
    con = stdout_console()
    con.print(_verdict_panel(c, d, best, chart))
    if plot_path:
        con.print(f"[dim]plot written to {plot_path}[/]")


def _run_learning_curve(source, params, fractions, n_jobs, threads, quiet, plot_path, as_json) -> None:
    from ..model_selection.learning_curve import learning_curve, parse_fractions
    from ..diagnosis.sample_size import fraction_words

    reading(source)  # a data error naming no file is said of it
    options = options_from_params(params)
    try:
        fracs = parse_fractions(fractions)
    except ConfigError as exc:  # a usage error naming --fractions
        raise click.UsageError(str(exc)) from None
    if n_jobs is not None:  # (the default fills the usable cores: nothing to warn about)
        check_n_jobs(n_jobs)
        warn_workers(n_jobs, threads, len(fracs))  # a size per fit: at most that many workers
    err = stderr_console(quiet)

    def progress(p) -> None:
        score = f"{display_name(p.metric)} {fmt_metric(p.metric, p.val_score)}" if p.metric else fmt(p.val_score)
        if p.decision:  # the labels it counts
            score += f" ({p.decision} labels)"
        err.print(f"[dim]·[/] {fraction_words(p.fraction)} of the training groups: {count_of(p.n_train, 'sample')}, "
                  f"validation {score}, best epoch {p.best_epoch} ({fmt(p.seconds, 'seconds')} s)")

    if not quiet:
        err.print(f"[dim]·[/] training at {len(fracs)} size{'s' if len(fracs) != 1 else ''} "
                  f"({', '.join(fraction_words(f) for f in fracs)}) "
                  + (f"with --n-jobs {n_jobs}" if n_jobs is not None else "side by side on the usable cores (--n-jobs to choose)"))
    result = learning_curve(source, options, fracs, n_jobs=n_jobs, threads=threads,
                            progress=None if quiet else progress)
    if plot_path:
        from ..plotting import plot_learning_curve

        pts = result.points
        plot_learning_curve(plot_path, [p.n_train for p in pts], [p.train_score for p in pts],
                            [p.val_score for p in pts], [p.train_loss for p in pts], [p.val_loss for p in pts],
                            score_name=display_name(result.metric),
                            chance_score=result.chance_score,
                            title=f"Sample-size learning curve: {_MORE_DATA_WORDS[result.more_data['verdict']]}; "
                                  f"{_BIAS_VARIANCE_WORDS[result.bias_variance['verdict']]}")
    if as_json:
        report([], result.warnings + result.skipped, quiet)  # in the document, and on stderr: never hidden
        print_json({**result.to_dict(), "plot": plot_path})
        return
    report(result.notes, result.warnings + result.skipped, quiet)
    con = stdout_console()
    con.print(_learning_curve_table(result))
    con.print(_answers_panel(result))
    if plot_path:
        con.print(f"[dim]plot written to {plot_path}[/]")
