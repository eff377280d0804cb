"""`mlpcli train`: from a table to a validated, saved model."""

from __future__ import annotations

import datetime
import shlex
import time

import click

from .. import interrupts
from ..calibration import temperature_words
from ..config import unused_once_resolved
from ..errors import TrainingError
from ..metrics import display_name
from ..fileio import TABLE_FORMATS, write_together
from ..text import count_of
from . import SHORT_HELP
from .console import print_json, report, stderr_console, StderrBar, stdout_console, Table
from .exits import handle_errors, reading
from .formatting import fmt, fmt_ci, fmt_metric, per_class_recall
from .outputs import (check_model_name, check_table_output, check_writable, distinct_files, model_to_terminal,
    on_standard_output, one_stdout_writer, stdout_alias)
from .shared_options import (blas_note, check_n_jobs, CONTEXT_SETTINGS, debug_option, json_option, N_JOBS_FROM_END,
    named_file, quiet_option, threads_context, threads_option, warn_workers)
from .signals import interrupted_exit
from .options import config_option, given_options, options_from_params, train_options


def member_plan(n_jobs: int | None, threads: int | None):
    """``parallel.member_plan``, with an asked-for --n-jobs checked first (its workers x --threads are warned
    about once the members are known: ``warn_members``)."""
    from ..parallel import member_plan as plan

    if n_jobs is not None:
        check_n_jobs(n_jobs)
    return plan(n_jobs, threads)


def warn_members(plan, progress):
    """``progress`` that first warns (``warn_workers``), as training announces its plan and before the first
    epoch, when the worker processes an asked-for --n-jobs starts for the members (one per network at most;
    none for one network) times --threads exceed the usable cores: the count is known only then."""
    def announce(row: dict) -> None:
        if row.get("event") == "plan" and not plan.auto:
            networks = len(row["sizes"]) * len(row["candidates"]) if len(row["sizes"]) > 1 else 0
            warn_workers(plan.n_jobs, plan.threads, networks)
        progress(row)

    return announce


class TrainProgress(StderrBar):
    """Renders the fit loop's per-epoch callback: a rich bar on a terminal (one run of the ensemble after
    the other), a line per run and every 25 epochs or minute in logs (HPC batch jobs), nothing with --quiet."""

    EVERY = 25  # ... and at least once a minute (``StderrBar.heartbeat``; a wide network: 25 epochs take minutes)

    def __init__(self, quiet: bool):
        super().__init__(quiet)
        self.run = None
        self.last = ""  # the last progress it was told of, for the minute's line
        self.unsaid: str | None = None  # a log's line for the current run's latest epoch, when not printed
        if self.wants_bar:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.fields[run]}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn(), console=self.console, transient=True)
            self.task = self.bar.add_task("train", total=None, info="", run="")

    @staticmethod
    def _run_label(row: dict) -> str:
        label = f"member {row['member']}/{row['members']}" if row.get("members", 1) > 1 else "network"
        if row.get("candidates", 1) > 1:
            label += f", candidate {row['candidate']}/{row['candidates']}"
        return label

    def __call__(self, row: dict) -> None:
        if row.get("event") == "plan":  # before the first epoch: what will be trained on which rows
            if not self.quiet:
                sizes = ", ".join(f"{a}/{b}" for a, b in row["sizes"])
                what = "members" if len(row["sizes"]) > 1 else "network"
                why = f" ({row['why']})" if row.get("why") else ""
                self.console.print(f"[dim]·[/] {row['strategy']}; {what} training/held out: {sizes}{why}; "
                                   f"{'candidates' if len(row['candidates']) > 1 else 'architecture'}: "
                                   f"{'; '.join(row['candidates'])}")
            return
        if row.get("event") == "run_done":  # members trained in parallel processes: one event per network
            info = f"{row['done']}/{row['runs']} networks trained"
            self.last = info
            if self.bar:
                self.bar.update(self.task, run="members in parallel", info=info)
            elif not self.quiet:
                self.say(info)
            return
        run = self._run_label(row)
        info = f"epoch {row['epoch']}  train {fmt(row['train_loss'], 'loss')}"
        if "val_loss" in row:
            info += f"  val {fmt(row['val_loss'], 'loss')}  best epoch {row['best_epoch']}"
        if self.bar:
            self.bar.update(self.task, run=run, info=info)
        elif not self.quiet:
            if run != self.run:
                self._said_last()  # the run that ended: its last epoch (a member stopped early at 60 had no line)
            if run != self.run or row["epoch"] % self.EVERY == 0 or time.monotonic() - self.printed >= self.SECONDS:
                self.say(f"{run}: {info}")
                self.unsaid = None
            else:
                self.unsaid = f"{run}: {info} (its last epoch)"
        self.last = f"{run}: {info}"
        self.run = run

    def _said_last(self) -> None:
        """A log's line for the last epoch of the run that ended, unless it was said."""
        if self.unsaid:
            self.say(self.unsaid)
            self.unsaid = None

    def __exit__(self, *exc):
        if not self.bar and not self.quiet and not any(exc):  # the last run's last epoch
            self._said_last()
        return super().__exit__(*exc)

    def heartbeat(self, minutes: float) -> str:
        return f"still training, {minutes:.0f} min in" + (f" (last: {self.last})" if self.last else "")


def _print_summary(outcome, out: str, as_json: bool, quiet: bool, early_notes: list, early_warnings: list,
                   tables_on_stdout: bool, started: float) -> None:
    """train's report once the model is written: the --json document, or the notes, warnings, split and summary
    tables. A stop signal meanwhile is held to its end (``interrupts.finishing``: into ``outcome.stopped``)."""
    with interrupts.finishing(outcome.stopped):
        if as_json:
            from ..model_summary import network_summary, positive_class

            report([], outcome.warnings[len(early_warnings):], quiet)
            print_json({
                "model": out, "task": outcome.model.task, "classes": [str(c) for c in outcome.model.classes],
                "positive_class": positive_class(outcome.model),
                # what the summary's "model" row says: members, layer widths (the architecture --hidden auto chose), loss
                "network": network_summary(outcome.model),
                "split": outcome.model.split, "fit": outcome.model.fit, "baseline": outcome.model.baseline,
                "validation_metrics": outcome.val_metrics,
                "interval": outcome.interval.to_dict() if outcome.interval is not None else None,
                "held_out": "out-of-fold" if outcome.model.is_ensemble or outcome.fitted.refit_epochs else "validation",
                "metrics_caveat": outcome.metrics_caveat,
                "calibration": outcome.calibration.to_dict() if outcome.calibration else None,
                "diagnosis": outcome.diagnosis.to_dict() if outcome.diagnosis is not None else None,
                "notes": outcome.notes, "warnings": outcome.warnings, "seconds": outcome.seconds,
                "wall_seconds": time.perf_counter() - started,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            })
        else:
            report(outcome.notes[len(early_notes):], outcome.warnings[len(early_warnings):], quiet)
            # standard output holds a table (--oof -, --history -): the summary goes to stderr beside the notes
            con = stderr_console(quiet) if tables_on_stdout else stdout_console()  # -q: nothing but warnings there
            fit = outcome.model.fit
            folds = fit.get("folds") if isinstance(fit.get("folds"), int) else 1
            con.print(_split_table(outcome.model.split, fit.get("members") or [], folds,
                                   multilabel=outcome.model.task == "multilabel"))
            con.print(_summary_table(outcome, out, time.perf_counter() - started))


def _count_label(name, multilabel: bool) -> str:
    """A row of the split table's counts: a class's samples, or for multi-label a label's positive samples. A name
    with spaces at either end is quoted: 'A' and 'A ' (a spreadsheet's trailing space) printed as two rows "class A"."""
    shown = repr(str(name)) if str(name) != str(name).strip() or not str(name) else name
    return f"label {shown} (positives)" if multilabel else f"class {shown}"


def _split_table(split: dict, members: list[dict], folds: int = 1, multilabel: bool = False) -> Table:
    """``folds``: the members planned (an interrupted ensemble may keep one: its split is still the folds')."""
    crossfit = len(members) > 1 or folds > 1
    if crossfit and len(members) < folds:  # interrupted: the members kept hold out only their folds
        held = sum(int(m.get("n_val") or 0) for m in members)
        title = (f"Cross-fitting: {split['strategy']} — {len(members)} of {folds} members kept, holding out {held:,} "
                 f"of {count_of(split['n_train'], 'sample')}")
        sides = ("all samples", "per member: training / held out")
    elif crossfit:
        title = f"Cross-fitting: {split['strategy']} — each sample held out by exactly one member"
        sides = ("all samples", "per member: training / held out")
    else:
        title = f"Split: {split['strategy']}"
        sides = ("training", "validation")
    # at least as wide as its title, which rich wraps to the table's width: a narrow table of 60 samples broke
    # "StratifiedGroupKFold by patient_id, 5 folds — each sample held out by exactly one member" over two lines
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("")
    table.add_column(sides[0], justify="right")
    table.add_column(sides[1], justify="right")

    def row(label: str, a, b):
        table.add_row(label, str(a), str(b))

    if crossfit:
        row("samples", split["n_train"], ", ".join(f"{m['n_train']}/{m['n_val']}" for m in members))
        if split.get("n_groups_train") is not None:
            row("groups", split["n_groups_train"], "")
        for c in sorted(split["class_counts_train"], key=str):
            row(_count_label(c, multilabel), split["class_counts_train"][c], "")
        for b in sorted(split["batch_counts_train"], key=str):
            row(f"batch {b}", split["batch_counts_train"][b], "")
        return table
    row("samples", split["n_train"], split["n_val"])
    if split.get("n_groups_train") is not None:
        row("groups", split["n_groups_train"], split["n_groups_val"])
    for c in sorted(set(split["class_counts_train"]) | set(split["class_counts_val"]), key=str):
        row(_count_label(c, multilabel), split["class_counts_train"].get(c, 0), split["class_counts_val"].get(c, 0))
    for b in sorted(set(split["batch_counts_train"]) | set(split["batch_counts_val"]), key=str):
        row(f"batch {b}", split["batch_counts_train"].get(b, 0), split["batch_counts_val"].get(b, 0))
    return table


def _summary_table(outcome, out_path: str, wall_seconds: float | None = None) -> Table:
    from .. import metrics
    from ..model_summary import is_weighted, loss_words, standardised_words

    model, fitted = outcome.model, outcome.fitted
    fit = model.fit
    table = Table(title="Training summary", title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    k = len(model.classes)
    what = {"binary": f"{k} classes; positive class {model.classes[-1]}", "multiclass": f"{k} classes",
            "multilabel": f"{k} label{'s' * (k != 1)}"}.get(model.task)
    if what is None:  # regression: "1 outputs" said nothing of which column was predicted
        names = ", ".join(map(str, model.classes))
        what = f"target {names}" if k == 1 else f"{k} targets: {names}"
    table.add_row("task", f"{model.task} ({what})")
    net = model.network
    widths = " → ".join(map(str, [net.n_inputs, *net.hidden, net.n_outputs]))
    kind = (f"{len(model.members)} cross-fitted members, each" if model.is_ensemble else
            "one network (refit on all rows)" if fitted.refit_epochs else "one network")
    if net.hidden:  # the layers' regularisation, as info names it
        layers = net.activation + (", BatchNorm" if net.batchnorm else "") + (
            f", dropout {fmt(net.dropout)}" if net.dropout else "")
    else:
        layers = "softmax regression" if model.task == "multiclass" else "linear"
    table.add_row("model", f"{kind} {widths}, {layers}, "
                  f"{net.n_parameters:,} parameters, loss {loss_words(model.loss, model.config, model.task)}")
    members = fit.get("members") or []
    lbfgs = bool(members) and all("converged" in m for m in members)  # iterations, not epochs; no restoring
    stops = ["interrupted" if m.get("interrupted") else "converged" if m.get("converged") else
             "iteration limit" if lbfgs else "early stop" if m["stopped_early"] else "epoch limit" for m in members]
    if len(members) > 1 and lbfgs:
        limits = sorted({m.get("max_epochs", fitted.runs[0].options.epochs) for m in members})
        table.add_row("iterations", ", ".join(str(m["epochs_run"]) for m in members)
                      + f" of L-BFGS, at most {'/'.join(map(str, limits))} (per member; {stops.count('converged')} "
                      "converged; the last weights kept)"
                      + (f"; the shipped network refit on all rows for {count_of(fitted.refit_epochs, 'iteration')}"
                         if fitted.refit_epochs else ""))
    elif len(members) > 1:
        limits = sorted({m.get("max_epochs", fitted.runs[0].options.epochs) for m in members})
        table.add_row("epochs", "best " + ", ".join(str(m["best_epoch"]) for m in members)
                      + f" of at most {'/'.join(map(str, limits))} (per member; {stops.count('early stop')} stopped early)"
                      + (f"; the shipped network refit on all rows for {count_of(fitted.refit_epochs, 'epoch')}"
                         if fitted.refit_epochs else ""))
    elif members and lbfgs:
        table.add_row("iterations", f"{members[0]['epochs_run']} of L-BFGS ({stops[0]}); the last weights kept")
    elif members:
        table.add_row("epochs", f"{members[0]['epochs_run']} run ({stops[0]}); best epoch {members[0]['best_epoch']}, "
                      "weights restored")
    if model.baseline.get("val_loss") is not None and outcome.fitted.history:
        best_val = min(m["best_val_loss"] for m in members) if len(members) == 1 else \
            sum(m["best_val_loss"] for m in members) / len(members)
        # multi-label BCE is summed over the labels, while the log loss below is their mean
        summed = f"{model.loss['name']} summed over the {len(model.classes)} labels" if model.task == "multilabel" else ""
        # the loss trained on, not the metrics' log loss or RMSE: weighted by class like training, and for
        # regression on the standardised target (0.78 beside an RMSE of 3.47 read as a contradiction)
        unlike = ("weighted by class as in training, unlike the log loss below" if is_weighted(model.config) else
                  f"{model.loss['name']}{standardised_words(model.loss['name'], len(model.classes))}, not in its "
                  "units" if model.task == "regression"
                  else "")
        how = "; ".join(w for w in ("mean over members" if len(members) > 1 else "", summed, unlike) if w)
        table.add_row("validation loss", f"{fmt(best_val, 'loss')} at the "
                      f"{'last iteration' if lbfgs else 'best epoch'}"
                      f"{f' ({how})' if how else ''}; baseline loss "
                      f"{fmt(model.baseline['val_loss'], 'loss')} (always predicting the training "
                      f"{'mean' if model.task == 'regression' else 'prior'}"
                      f"{' as the class weights weigh it' if is_weighted(model.config) else ''})")
    m = outcome.val_metrics
    where = "out-of-fold" if model.is_ensemble or fitted.refit_epochs else "validation"
    shown = [k for k in metrics.HEADLINE_METRICS[model.task] if k in m or model.task != "regression"]
    interval = outcome.interval  # the main metric's bootstrap interval over patients

    def shown_metric(k: str) -> str:
        text = f"{display_name(k)} {fmt_metric(k, m.get(k))}"
        if interval is not None and interval.ci is not None and k == interval.metric:
            text += f" ({fmt_ci(k, interval.ci, interval.level)})"
        return text

    table.add_row(f"{where} metrics", ", ".join(shown_metric(k) for k in shown))
    # what the metrics rest on, beside them: twelve samples' "balanced accuracy 0.667" read as a finding
    n = m.get("n")
    scored = (f"{n:,}" if isinstance(n, int) else f"{n}") + (f"; rough: {outcome.metrics_caveat}"
                                                             if outcome.metrics_caveat else "")
    if interval is not None and interval.ci is not None:
        scored += (f"; the interval from {interval.resamples:,} bootstrap resamples of the "
                   f"{interval.n_units:,} {interval.units}")
    if m.get("per_target"):
        scored += f"; RMSE and MAE above are pooled over the {len(m['per_target'])} targets' units, each below"
    table.add_row(f"{where} samples", scored)
    if m.get("per_class"):  # a rare class's recall, which the balanced accuracy averages away (0.50 inside 0.813)
        table.add_row(f"{where} recall", per_class_recall(m["per_class"]))
    elif m.get("per_label") and "recall" in m["per_label"][0]:  # a rare label never called: recall 0 of its positives
        table.add_row(f"{where} recall", per_class_recall(m["per_label"]))
    for t in m.get("per_target") or []:  # several regression targets: each in its own units (pooled, they mix them)
        table.add_row(f"  {t['target']}", ", ".join(f"{display_name(k)} {fmt_metric(k, t.get(k))}"
                                                   for k in ("rmse", "mae", "r2", "pearson_r")))
    cal = outcome.calibration
    if cal is not None:
        temperature = temperature_words(cal.temperature, outcome.model.classes)
        # fitted on the networks' own held-out logits, each at the epoch chosen on them (not the cross-fitted
        # ones the metrics above score: a temperature fitted on those calibrated the ensemble worse, benchmarks/RESULTS.md)
        whose = "the members' own" if where == "out-of-fold" else "the network's own"
        table.add_row("calibration", f"temperature {temperature}, fitted on {whose} {where} logits: log loss "
                      f"{fmt(cal.log_loss_before, 'loss')} → {fmt(cal.log_loss_after, 'loss')}, ECE "
                      f"{fmt(cal.ece_before, 'loss')} → {fmt(cal.ece_after, 'loss')}")
    if outcome.model.decision is not None:
        from ..model_summary import decision_words

        table.add_row("labels", decision_words(outcome.model))
    if outcome.diagnosis is not None:
        d = outcome.diagnosis
        curves = " (members' mean curves)" if len(members) > 1 else ""
        # the remedies are diagnose's to show (README: each run is labelled "with the evidence and the remedy"):
        # a verdict other than good_fit says where they are rather than leaving the user at the label
        target = "MODEL" if on_standard_output(out_path) else shlex.quote(out_path)
        remedies = f" Remedies: mlpcli diagnose {target}" if d.label != "good_fit" and d.advice else ""
        table.add_row("learning curves", f"{d.label}{curves}" + (f" (runner-up: {d.runner_up})" if d.runner_up else "")
                      + f" — {d.summary}{remedies}")
    wall = f", {fmt(wall_seconds, 'seconds')} s in all (reading the table, training, writing the model)" \
        if wall_seconds is not None else ""
    table.add_row("time", f"{fmt(outcome.seconds, 'seconds')} s training{wall}")
    table.add_row("model file", out_path)
    return table


def _kept_words(fit: dict) -> str:
    """What an interrupted run kept, for the closing line."""
    members, folds = fit.get("members") or [], fit.get("folds") or 1
    if folds == 1 and members and "converged" in members[0]:  # L-BFGS keeps its last iterate
        return f"kept the last weights (iteration {members[0]['epochs_run']} of L-BFGS)"
    if folds == 1:
        return f"kept the best weights so far (epoch {fit['best_epoch']})"
    text = f"kept the {len(members)} of {folds} members trained so far"
    cut = [m for m in members if m.get("interrupted")]
    if cut:
        text += f" (member {cut[0]['member']} with its best weights so far, epoch {cut[0]['best_epoch']})"
    return text


@click.command(context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["train"])
@click.argument("data_file", metavar="DATA", type=click.Path(allow_dash=True))  # a directory: 10x Genomics
@config_option()
@train_options
@click.option("-o", "--out", default="model.mlp", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              callback=named_file, help="Model file to write (- or /dev/stdout: its bytes on standard output, the summary on stderr).")
@click.option("--history", "history_path", default=None, type=click.Path(dir_okay=False), callback=named_file,
              help=f"Write the per-epoch table (one row per member and epoch; {TABLE_FORMATS}). Its inference-mode training "
                   "columns (train_loss_eval, train_metric) are measured on a fixed, seeded sample of at most "
                   "2,048 training rows (all rows below that; stratified by class).")
@click.option("--oof", "oof_path", default=None, type=click.Path(dir_okay=False), callback=named_file,
              help="Write the held-out predictions (out-of-fold for an ensemble) as predict writes predictions "
                   f"({TABLE_FORMATS}): the pred_ label by the model's decision rule (the summary's labels row; "
                   "balanced can pick a class other than the highest prob_ column), beside the probabilities.")
@click.option("--n-jobs", type=int, default=None,
              help="Members to train at once in separate processes, each with --threads BLAS threads. "
                   + N_JOBS_FROM_END + " Default: the usable cores divided by --threads. The model is the "
                   "same however many run at once. Ctrl-C or SIGTERM then keeps the members finished so far; "
                   "the ones still training are dropped.")
@threads_option(extra="Members run side by side (--n-jobs) rather than threading each product.")
@quiet_option
@json_option
@debug_option
@handle_errors
def train(data_file, out, history_path, oof_path, n_jobs, threads, quiet, as_json, debug, **params):
    """Train an MLP on a samples x features table and save the model: a classifier (binary, multiclass,
    multi-label) or, for a numeric target, a regressor (--task).

    By default the model is a cross-fitted ensemble of 5 members on grouped folds, stratified by
    class (samples of one patient, --group, default patient_id, stay in one fold): every sample is
    scored by the member that never saw its patient, and those out-of-fold scores are what the
    summary reports. Preprocessing is fitted on each member's training rows only; early stopping
    restores each member's best epoch; a classifier's probabilities are temperature-calibrated on the
    out-of-fold logits.

    \b
    Examples:
      mlpcli train sample_data/tumour_subtypes.csv.gz -o subtypes.mlp --history history.csv
      mlpcli train cohort.tsv.gz --target subtype --group donor --class-weight balanced --oof oof.csv
      mlpcli train big_cohort.parquet --folds 1 --val-size 0.1 --hidden 512,128

    Ctrl-C, SIGTERM (SLURM's scancel or time limit), SIGHUP and SIGUSR1 / SIGUSR2 (sbatch
    --signal=USR1@120, a warning ahead of the time limit) stop training early and still write the
    model: the best weights so far, or the ensemble's members trained so far (exit 130, 143, 129, 138).
    """
    from .. import model_io, pipeline
    from ..history import history_frame
    from ..model_selection.crossfit import check_held_out_frame, held_out_frame
    from ..predict import write_table
    from ..predict.output import table_bytes

    started = time.perf_counter()  # the wall time of the whole command, beside training's own
    options = options_from_params(params)
    if out == "-":  # standard output, as "-" means for every other output (a file named "-" surprised users)
        out = "/dev/stdout"
    check_writable(out, "--out")
    history_path, oof_path = stdout_alias(history_path), stdout_alias(oof_path)  # /dev/stdout is "-"
    model_to_terminal("-" if out == "/dev/stdout" else out, "-o")
    model_on_stdout = on_standard_output(out)  # `-o /dev/stdout`: the model's bytes there, the summary not
    one_stdout_writer({"-o": model_on_stdout, "--history -": history_path == "-", "--oof -": oof_path == "-",
                       "--json": as_json})
    distinct_files({"--out": out, "--history": history_path, "--oof": oof_path},
                   {"DATA": data_file, "--val-data": options.val_data, "--samples": options.samples})
    check_model_name(out, "--out")  # (after: an output that is an input is the more telling error)
    if data_file == "-" and options.val_data == "-":  # the second reader would find standard input empty
        raise click.UsageError("DATA - and --val-data - would both read standard input; give one of them a file name")
    check_table_output(history_path, "--history")
    check_table_output(oof_path, "--oof")
    tables_on_stdout = "-" in (history_path, oof_path) or model_on_stdout
    plan = member_plan(n_jobs, threads)
    # what was picked up (roles, task, warnings) shows before the first epoch, so a user can stop a long
    # run that read the wrong column
    reading(data_file)  # a data error naming no file is said of it
    ds, read_notes = pipeline.load_dataset(data_file, options)
    env_note = blas_note(threads)  # OMP_NUM_THREADS=8 from the batch script: said once, with the other notes
    read_notes = read_notes + [env_note] * (env_note is not None)
    if oof_path:  # two of its columns of one name (an id column named pred_label): said now, not after training
        check_held_out_frame(ds)
    early_notes, early_warnings = read_notes + ds.notes, list(ds.warnings)
    # with --json the notes are in the document; warnings show on stderr as well (never hidden)
    report([] if as_json else early_notes, early_warnings, quiet)
    try:
        with threads_context(plan.blas_threads), TrainProgress(quiet) as progress:
            outcome = pipeline.train_dataset(ds, options, progress=warn_members(plan, progress), notes=read_notes,
                                             source=data_file, plan=plan)
    except KeyboardInterrupt as exc:  # before any network had weights to keep (else the outcome says interrupted)
        interrupted_exit(exc, what="nothing trained yet to keep; no model written")
    except TrainingError as exc:  # a divergence: the run that most needs `diagnose` keeps its curves
        rows = getattr(exc, "history", None)
        if not history_path or not rows:
            raise
        write_table(history_frame(rows), history_path)
        # (diagnose reads 3 epochs or more)
        where = ("standard output" if history_path == "-" or len(rows) < 3 else
                 f"{history_path}: mlpcli diagnose {shlex.quote(history_path)}")
        if history_path != "-" and len(rows) < 3:
            where = history_path
        epochs = f"the {len(rows)} epochs before it are" if len(rows) > 1 else "the epoch before it is"
        raise TrainingError(f"{exc} (no model written; {epochs} in {where})") from None
    folds = outcome.model.fit.get("folds")
    outcome.notes += unused_once_resolved(options, given_options(click.get_current_context()),
                                          folds if isinstance(folds, int) else 1, task=outcome.model.task)
    # the model, --history and --oof all or none: a failure (a full disk, a signal) writing a later one left a new
    # model beside an earlier run's history or held-out predictions. A stop signal now (or since training ended:
    # ``outcome.stopped``) waits for them to be written, then the command stops: the model is complete
    with interrupts.finishing(outcome.stopped):
        files = {} if model_on_stdout else {out: model_io.to_bytes(outcome.model, out)}
        if history_path and history_path != "-":
            files[history_path] = table_bytes(history_frame(outcome.fitted.history), history_path)
        if oof_path and oof_path != "-":
            files[oof_path] = table_bytes(held_out_frame(outcome.fitted), oof_path)

        def last() -> None:  # standard output (one writer at most) cannot be taken back: after the files are ready
            if model_on_stdout:
                model_io.save(outcome.model, out)
            elif history_path == "-":
                write_table(history_frame(outcome.fitted.history), history_path)
            elif oof_path == "-":
                write_table(held_out_frame(outcome.fitted), oof_path)

        write_together(files, last=last)

    # the model is written: a stop signal while the summary is printed waits for it (a job log that ended in a bare
    # "Interrupted by SIGTERM." read as "no model"), then says the model is complete, below; one that cuts the
    # summary short (its reader gone with the same signal, the write failing) says so too
    try:
        _print_summary(outcome, out, as_json, quiet, early_notes, early_warnings, tables_on_stdout, started)
    except (KeyboardInterrupt, BrokenPipeError) as exc:  # (a broken pipe after a stop signal: its consequence)
        exc.on_stop = f"stopped once training was over; the complete model is written to {out}"
        raise
    if outcome.interrupted:
        interrupted_exit(what=f"{_kept_words(outcome.model.fit)}; model written to {out}")
    if outcome.stopped and options.refit and not outcome.model.fit.get("refit_epochs"):  # the refit network cut
        interrupted_exit(outcome.stopped[0], what=f"stopped while the --refit network trained; the members' ensemble, "
                                                  f"not the one network --refit asks for, is written to {out}")
    if outcome.stopped:  # after training: the model is the one the run set out to train
        interrupted_exit(outcome.stopped[0], what=f"stopped once training was over; the complete model is written to "
                                                  f"{out}")
