"""`mlpcli tune`: grid or random search scored by grouped cross-validation, optionally nested."""

from __future__ import annotations

import click
from rich.markup import escape

from ..config import TrainOptions, check_unused
from ..errors import ConfigError, TrainingError
from ..metrics import display_name
from ..fileio import TABLE_FORMATS, write_together
from ..text import count_of
from . import SHORT_HELP
from .console import check_stdout_open, print_json, report, stderr_console, stdout_console, Table
from .exits import handle_errors
from .formatting import fmt, fmt_mean_sd, fmt_metric
from .outputs import (check_model_name, check_table_output, check_writable, distinct_files, model_to_terminal,
    on_standard_output, one_stdout_writer, stdout_alias)
from .shared_options import (CONTEXT_SETTINGS, debug_option, json_option, named_file, quiet_option, threads_context,
    warn_workers)
from .cv import FitProgress, fits_where, folds_words, load_for_cv, make_plan, parallel_options
from .options import config_option, given_options, options_from_params, train_options


def _ranked_table(result, top: int) -> Table:
    from ..model_selection.grid import option_name, value_text

    shown = result.points[:top]
    table = Table(title=f"Tuning: {len(result.points)} of {result.grid_size} grid points", title_justify="left")
    table.add_column("rank", justify="right")
    for k in result.space:
        table.add_column(option_name(k), justify="right")
    table.add_column(f"{display_name(result.metric)} mean ± SD", justify="right")
    table.add_column("best epochs", justify="right")
    for p in shown:
        # a setting whose training diverged has no score (its reason is in the notes, --results and --json)
        score = ("diverged" if "diverged" in p.failed else "failed") if p.failed else \
            fmt_mean_sd(result.metric, p.mean, p.sd)
        ran = [e for e in p.epochs if e is not None]
        epochs = "—" if not ran else str(ran[0]) if min(ran) == max(ran) else f"{min(ran)}–{max(ran)}"
        table.add_row(str(p.rank), *[value_text(p.setting[k]) for k in result.space], score, epochs,
                      style="bold" if p.rank == 1 else None)
    return table


def _refit_words(outcome, metric: str, n: int, chosen_from: int = 1) -> str:
    """What --refit trained, truthfully: `train`'s split of the rows (an ensemble's members each hold some
    out; one network holds out a validation part unless it was retrained on every row). ``chosen_from``: the
    settings the best was chosen from; above 1 its held-out score on these same samples is optimistic."""
    fit = outcome.model.fit
    members = fit.get("members") or []
    trained = sorted({int(m["n_train"]) for m in members if m.get("n_train") is not None}) or [n]
    score = f"{display_name(metric)} {fmt_metric(metric, outcome.val_metrics.get(metric))}"
    if chosen_from > 1:  # the setting won on these samples: their held-out score is not a new cohort's
        score += f", optimistic: the setting was chosen from {chosen_from} on these samples"
    decision = outcome.model.decision
    # a balanced model's labels are not always the most probable class: said, as train's `labels` row says it
    how = ("each label present when P >= its training share" if outcome.model.task == "multilabel"
           else "the most probable class relative to its training share")
    labels = (f"; it labels by the balanced rule, {how}" if decision is not None and decision.rule == "balanced" else "")
    sizes = f"{trained[0]:,}" if trained[0] == trained[-1] else f"{trained[0]:,}–{trained[-1]:,}"
    if outcome.model.is_ensemble:
        return (f"trained the best setting as `train` does: a {len(members)}-member cross-fitted ensemble, each "
                f"member on {sizes} of the {n:,} samples and every sample scored by a member that did not train on "
                f"it (out-of-fold {score}){labels}")
    if fit.get("refit_epochs"):
        return (f"trained the best setting as `train` does: one network on all {n:,} samples for "
                f"{count_of(fit['refit_epochs'], 'epoch')}, a number chosen with samples held out (out-of-fold {score})"
                f"{labels}")
    return (f"trained the best setting as `train` does: one network on {sizes} of the {n:,} samples, the other "
            f"{n - trained[-1]:,} held out for early stopping and scoring (validation {score}){labels}")


def _nested_table(result) -> Table:
    from ..model_selection.grid import format_setting

    s = result.nested_summary()
    table = Table(title=f"Nested CV, outer {result.nested_strategy}", title_justify="left")
    table.add_column("outer fold", justify="right")
    table.add_column("train / test", justify="right")
    table.add_column("setting chosen by the inner CV")
    table.add_column("inner mean ± SD", justify="right")
    table.add_column(f"outer test {display_name(result.metric)}", justify="right")
    for o in result.nested:
        inner = fmt_mean_sd(result.metric, o.inner_mean, o.inner_sd)
        chosen = format_setting(o.chosen) if o.chosen is not None else "none: every setting failed"
        table.add_row(str(o.fold + 1), f"{len(o.train_rows)} / {len(o.test_rows)}", chosen, inner,
                      "failed" if o.failed else fmt_metric(result.metric, o.score))
    table.add_section()
    table.add_row("mean ± SD", "", "", "", fmt_mean_sd(result.metric, s["mean"], s["sd"]), style="bold")
    return table


def _refit_stopped_words(result) -> str:
    """What a stop during --refit leaves: the tuning had ended, and its best setting is said (hours of fits were lost
    without a word: "Interrupted by SIGTERM." alone), though neither the model nor --results is written."""
    from ..model_selection import tuning

    best = result.best
    score = "" if best.mean is None else f", {display_name(result.metric)} {fmt_mean_sd(result.metric, best.mean, best.sd)}"
    return (f"during --refit; the tuning had ended — best {tuning.setting_text(best.setting, result.options)}{score} — "
            "but neither the model nor --results was written (all or none): train that setting with `mlpcli train`, "
            "or run tune again")


def _write_outputs(model, out: str, results, results_path: str | None) -> None:
    """The refit's model (``model``, or None) and the ranked ``results`` frame (or None), all or none: each to a
    temporary file renamed into place once both are written; standard output (one of them at most) last."""
    from .. import model_io
    from ..predict import write_table
    from ..predict.output import table_bytes

    model_on_stdout = model is not None and on_standard_output(out)
    files = {}
    if model is not None and not model_on_stdout:
        files[out] = model_io.to_bytes(model, out)
    if results is not None and results_path != "-":
        files[results_path] = table_bytes(results, results_path)

    def last() -> None:  # standard output cannot be taken back: once the files are ready
        if model_on_stdout:
            model_io.save(model, out)
        elif results is not None and results_path == "-":
            write_table(results, results_path)

    write_together(files, last=last)


def _check_out_needs_refit(ctx: click.Context, refit: bool) -> None:
    """-o/--out names the model --refit writes: without --refit it is a usage error, from the command line and from
    --config alike (``out = "best.mlp"`` in the file was accepted and ignored, and no model was written, where the
    flag was refused)."""
    from click.core import ParameterSource

    from .options import CONFIG_META

    source = ctx.get_parameter_source("out")
    if refit or source not in (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP):
        return
    where = (f"out in --config {ctx.meta.get(CONFIG_META)}" if source == ParameterSource.DEFAULT_MAP
             else "-o/--out")
    raise click.UsageError(f"{where} names the model written by --refit; add --refit")


@click.command("tune", context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["tune"])
@click.argument("data_file", metavar="DATA", type=click.Path(allow_dash=True))
@config_option("TOML file of train options (keys mirror the option names); command-line flags win.")
@click.option("--grid", required=True, multiple=True,
              help='Settings to try: "lr=1e-3,1e-2; l2=0,1e-4; dropout=0,0.3; hidden=64|128,64" — ";" between '
                   'options, "," between values ("|" for hidden and class-weight); given more than once, the grids '
                   'are combined. Train\'s --folds is member-folds here, as on this command line. A setting whose '
                   'training diverges is ranked last, without a score.')
@click.option("--random", "n_random", type=click.IntRange(min=1), default=None,
              help="Try N settings drawn at random from the grid (seeded by --seed) instead of all.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Folds of the grouped CV that scores each setting (the inner CV with --nested).")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Repeat that CV with reshuffled folds and reseeded networks.")
@click.option("--nested", is_flag=True,
              help="Add an outer grouped CV: an honest estimate of the tuned model (each outer test fold "
                   "is unseen by the tuning).")
@click.option("--outer-folds", type=click.IntRange(min=2), default=5, show_default=True, help="Outer folds with --nested.")
@click.option("--results", "results_path", type=click.Path(dir_okay=False), default=None, callback=named_file,
              help=f"Write the ranked results ({TABLE_FORMATS}).")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="Rows of the ranked table to print.")
@click.option("--refit", is_flag=True, help="Train the best setting on all the data as `train` does and save it (-o).")
@click.option("-o", "--out", default="model.mlp", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              callback=named_file, help="Model file for --refit (- or /dev/stdout: its bytes on standard output, the tables on stderr).")
@train_options(rename={"folds": "--member-folds"}, exclude=("refit",), hide=("val_data",))
@parallel_options
@quiet_option
@json_option
@debug_option
@handle_errors
@click.pass_context
def tune(ctx, data_file, grid, n_random, folds, repeats, nested, outer_folds, results_path, top, refit, out,
         n_jobs, backend, scheduler, threads, quiet, as_json, debug, **params):
    """Tune train options by grouped cross-validation: never on a test set.

    Every setting of the grid (or --random N of them) is scored by the same grouped, stratified
    K-fold CV as `mlpcli cv`; early stopping runs inside each fold's training part, so settings
    such as lr, l2, dropout and patience are chosen on validation folds only. Options not in the
    grid take their command-line values. --nested adds an outer CV for an honest estimate of the
    whole tuning procedure; --refit trains the winner on all the data.

    \b
    Examples:
      mlpcli tune sample_data/tumour_subtypes.csv.gz --log1p --epochs 60 \\
          --grid "lr=1e-3,1e-2; l2=0,1e-4; dropout=0,0.3; hidden=64|128,64" --n-jobs 2
      mlpcli tune cohort.csv --grid "dropout=0,0.2,0.4; patience=10,30" --random 4 --nested
      mlpcli tune cohort.csv --grid "l2=0,1e-4,1e-3" --refit -o best.mlp --results tuning.csv
    """
    from .. import pipeline
    from ..model_selection import grid as grid_lib
    from ..model_selection import tuning
    from ..model_selection.cross_validation import check_cv_options

    plan = make_plan(n_jobs, backend, scheduler, threads)
    _check_out_needs_refit(ctx, refit)
    if ctx.get_parameter_source("outer_folds") == click.core.ParameterSource.COMMANDLINE and not nested:
        raise click.UsageError("--outer-folds sets the outer folds of --nested; add --nested")
    options = options_from_params(params, check_optimizer=False)  # checked below, with the grid's optimizers
    if options.folds != TrainOptions().folds and not refit:  # given on the command line or in --config
        # the grid is scored one network per fold: only the refit's model has members
        raise click.UsageError("--member-folds (or member-folds in --config) sets the members of the model --refit "
                               "trains; add --refit")
    try:
        # --grid given twice: both grids (only the last one was tuned, the first dropped without a word)
        space = grid_lib.parse_grid("; ".join(grid), options)
        # an option given or tuned while no setting reads it (--weight-decay with adam, --scaling with
        # --no-standardize, --dropout with hidden=none): refused unless some setting of the grid uses it
        check_unused(options, given_options(ctx), grid=space, folds_flag="--member-folds")
    except ConfigError as exc:  # a value out of range or of the wrong type: a usage error naming --grid
        raise click.UsageError(str(exc)) from None
    grid_lib.check_points(space, n_random)  # a grid too large to run: refused before the data is read
    check_cv_options(options)  # --val-data, refused before the data is read too
    try:  # values valid one by one that do not go together (batch-size=1 with batchnorm=true), as early
        grid_lib.check_settings(options, grid_lib.choose_points(space, n_random, options.seed)[0])
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    # an option given on the command line or in --config that the grid also sets: the grid's values are used
    replaced = [f"--{grid_lib.option_name(k)}" for k in space if k in given_options(ctx)]
    results_path = stdout_alias(results_path)  # /dev/stdout is "-"
    if out == "-":  # standard output, as for train -o and every other output (it wrote a file named "-")
        out = "/dev/stdout"
    if refit:
        model_to_terminal("-" if out == "/dev/stdout" else out, "-o")
    model_on_stdout = refit and on_standard_output(out)  # the model's bytes there, the tables not
    one_stdout_writer({"-o": model_on_stdout, "--results -": results_path == "-", "--json": as_json})
    if not (as_json or results_path or refit):  # the ranking is the result: not lost on a closed standard output
        check_stdout_open("the tuning report")
    distinct_files({"--results": results_path, "--out": out if refit else None},
                   {"DATA": data_file, "--samples": options.samples})
    check_table_output(results_path, "--results")
    if refit:
        check_writable(out, "--out")
        check_model_name(out, "--out")
    err = stderr_console(quiet)
    ds = load_for_cv(data_file, options, quiet)
    if refit and isinstance(options.folds, int) and options.folds > 1:  # the refit's members, before the tuning
        from ..model_selection.splits import check_fold_count

        check_fold_count(ds, options.folds, "--member-folds")
    n_points = min(n_random or grid_lib.grid_size(space), grid_lib.grid_size(space))
    # the fits run side by side: every setting's folds (and with --nested each outer fold's inner ones), then
    # the outer refits; the workers --n-jobs starts for them (one per fit at most), said before the first
    side_by_side = n_points * folds * repeats * (1 + (outer_folds if nested else 0))
    from ..model_selection.fitting import worker_copy_bytes
    from ..parallel import fits_plan

    # the default's workers for these fits (each training part at most the whole table: ``tune`` resolves the
    # same plan again for its largest training part, never to more workers than said here)
    plan = fits_plan(plan, side_by_side, worker_copy_bytes(ds, ds.n_samples, options))
    if not plan.auto:
        warn_workers(plan.n_jobs, threads, side_by_side)
    if not quiet:
        n_fits = side_by_side + (outer_folds if nested else 0)
        err.print(f"[dim]·[/] {n_points} setting(s) × {folds} folds{f' × {repeats} repeats' if repeats > 1 else ''}"
                  f"{f' (+ nested over {outer_folds} outer folds)' if nested else ''}: {n_fits} fits "
                  f"{fits_where(plan, side_by_side)}")
    with FitProgress("fits", quiet, side_by_side + (outer_folds if nested else 0)) as progress:
        result = tuning.tune(ds, options, space, folds=folds, repeats=repeats, n_random=n_random, nested=nested,
                             outer_folds=outer_folds, plan=plan, progress=progress)
    if replaced:
        result.notes.append(f"the grid's values replace {', '.join(replaced)} (given on the command line or in "
                            "--config)")
    refit_doc = None
    if refit:
        try:
            from ..parallel import Plan, member_plan

            # the refit's members side by side on this machine's cores (on a Dask cluster's run: here, one after
            # the other), with the tuning's BLAS threads per fit: the same model either way
            members = member_plan(None, plan.threads) if plan.backend == "loky" else Plan(n_jobs=1, threads=plan.threads)
            with threads_context(plan.blas_threads):  # as each fit of the tuning
                outcome = pipeline.refit_tuned(ds, options, result, source=data_file, plan=members)
        except TrainingError as exc:  # the best setting, on all the rows and new seeds: say which run it was
            raise TrainingError(f"--refit of the best setting {grid_lib.format_setting(result.best.setting)}: "
                                f"{exc}; no model written") from None
        except KeyboardInterrupt as exc:  # the tuning is done: its outcome said, though nothing is written
            exc.on_stop = _refit_stopped_words(result)
            raise
        if outcome.interrupted or outcome.stopped:  # stopped in training, or once it was over
            # The refit's fits absorb Ctrl-C / SIGTERM / SIGHUP (train keeps their best weights that way), so the
            # refit returned a cut-short model: saving it and exiting 0 passed it off as the tuned model. A stopped
            # refit leaves neither output and exits 128 + the signal, as every other stopped tuning does.
            stop = KeyboardInterrupt()
            stop.on_stop = _refit_stopped_words(result)
            raise stop
        # the refit's own warnings (a chosen option its ensemble does not read, constant features): of the model
        # (a warning of the same finding, worded for the refit's estimate, once: the batch confounding came twice)
        said = {w.split(":", 1)[0] for w in result.warnings}
        result.warnings.extend(w for w in outcome.warnings if w.split(":", 1)[0] not in said)
        refit_doc = {"model": out, "setting": result.best.setting, "validation_metrics": outcome.val_metrics,
                     "members": len(outcome.model.members), "notes": outcome.notes,
                     # the rule its labels (and the label metrics above) follow, as train --json's network.decision
                     "decision": None if outcome.model.decision is None else outcome.model.decision.to_dict()}
    # after the refit: a refit that fails (or is stopped) leaves neither output; and the model and --results all or
    # none, as train's outputs: a --results that failed to write (a full disk) left a new model behind, exit 1
    _write_outputs(outcome.model if refit else None, out, result.results_frame(one_type=True) if results_path else None,
                   results_path)

    if as_json:
        report([], result.warnings, quiet)  # in the document, and on stderr: a warning is never hidden
        doc = result.to_dict()
        doc["results"] = results_path
        doc["refit"] = refit_doc
        doc["parallel"] = {"backend": plan.backend, "n_jobs": plan.n_jobs, "scheduler": plan.scheduler}
        from ..pipeline import run_provenance

        doc["provenance"] = run_provenance(data_file, ds, options, plan.blas_threads)
        print_json(doc)
        return
    # the refit model's own notes (its calibration, its members' split, --hidden auto's choice), which its warnings
    # refer to ("see the notes"): said as train says them, named as the refit's
    said = {*result.notes, *ds.notes}  # (the table's own notes were said when it was read)
    refit_notes = [f"--refit: {n}" for n in (outcome.notes if refit else []) if n not in said]
    report(result.notes + refit_notes, result.warnings, quiet)
    # standard output holds the ranked rows (--results -) or the model (-o -): the tables go to stderr
    con = stderr_console(quiet) if results_path == "-" or model_on_stdout else stdout_console()  # -q: see train
    con.print(_ranked_table(result, top))
    con.print(f"scored by {result.strategy}; {display_name(result.metric)}, "
              f"{'higher' if result.higher_is_better else 'lower'} is better", soft_wrap=True)
    if len(result.points) > top:
        con.print(f"[dim]{len(result.points) - top} more rows in --results / --json[/]")
    best = result.best
    chosen_from = tuning.chosen_among(result.points, result.options, result.task)
    # the winner's score is a maximum over the settings: said where it is printed, not only in the notes above
    optimistic = (f" (optimistic: the {'highest' if result.higher_is_better else 'lowest'} of {chosen_from} settings on "
                  f"these folds"
                  f"{'' if result.nested is not None else '; --nested for an honest estimate'})"
                  if chosen_from > 1 else "")
    con.print(f"best: [bold]{escape(tuning.setting_text(best.setting, result.options))}[/] — {display_name(result.metric)} "
              f"{fmt_mean_sd(result.metric, best.mean, best.sd)} over {folds_words(result.folds, result.repeats)}"
              + optimistic, soft_wrap=True)
    if result.nested is not None:
        con.print(_nested_table(result))
        s = result.nested_summary()
        if s["mean"] is not None:
            over = f"{s['folds']}" if s["scored"] == s["folds"] else f"{s['scored']} of {s['folds']}"
            # optimistic only where the best was chosen among several models (one setting, or one that scored)
            chose = " (the best inner score above is optimistic: it was used to choose)" if chosen_from > 1 else ""
            con.print(f"honest estimate of the tuned model: {display_name(result.metric)} "
                      f"[bold]{fmt_mean_sd(result.metric, s['mean'], s['sd'])}[/] over {over} outer folds{chose}",
                      soft_wrap=True)
    if refit_doc:
        con.print(_refit_words(outcome, result.metric, len(ds.y), chosen_from) + f": model written to {out}",
                  soft_wrap=True)
    con.print(f"[dim]{fmt(result.seconds, 'seconds')} s[/]")


for _param in tune.params:  # the members of the model --refit trains: refused without it (the help did not say)
    if _param.name == "member_folds" and _param.help:
        _param.help = "With --refit (a usage error without it): the refit model's members. " + _param.help
