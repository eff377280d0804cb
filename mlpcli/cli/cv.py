"""`mlpcli cv`: grouped K-fold cross-validation (stratified for class targets) of what `mlpcli train` ships.

Also home of the options and helpers that `tune` shares: --n-jobs / --backend / --scheduler, the
fold progress display and the atomic table writer.
"""

from __future__ import annotations

import click

from ..fileio import TABLE_FORMATS
from ..text import count_of
from . import SHORT_HELP
from .console import check_stdout_open, print_json, report, stderr_console, StderrBar, stdout_console, Table
from .exits import handle_errors, reading
from .formatting import fmt, fmt_ci, fmt_mean_sd, fmt_metric, fmt_sd
from .outputs import check_table_output, distinct_files, one_stdout_writer, stdout_alias
from .shared_options import (blas_note, check_n_jobs, CONTEXT_SETTINGS, debug_option, json_option, N_JOBS_FROM_END,
    named_file, quiet_option, threads_option, warn_threads, warn_workers)
from .options import config_option, given_options, options_from_params, train_options

# --------------------------------------------------------------------------- shared with tune


def parallel_options(fn):
    """--n-jobs, --backend, --scheduler and --threads: where the folds and grid points run."""
    decorators = [
        click.option("--n-jobs", type=int, default=None,
                     help="Fits to run at once on this machine (joblib loky processes; not with --backend dask, "
                          "whose workers' threads decide). Default: one per usable core (as train's members; the "
                          "job's CPU allocation honoured), or 1 when each worker would copy more than 64 MB of rows. "
                          + N_JOBS_FROM_END),
        click.option("--backend", type=click.Choice(["loky", "dask"]), default="loky", show_default=True,
                     help="loky: local processes; dask: a Dask cluster (needs --scheduler and the dask extra: dask, distributed)."),
        click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="Address of the Dask scheduler (with --backend dask); see docs/cluster.md."),
        threads_option(extra="The same in every backend, so N workers use N cores and results do not depend "
                             "on the backend."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def make_plan(n_jobs: int | None, backend: str, scheduler: str | None, threads: int | None):
    """The library's parallel.Plan (without --n-jobs, ``parallel.member_plan``: the usable cores, resolved for the fits
    by ``parallel.fits_plan``); contradictory flags are usage errors (exit 2)."""
    from ..parallel import Plan, member_plan

    if scheduler and backend != "dask":
        raise click.UsageError("--scheduler applies to --backend dask only; add --backend dask")
    if backend == "dask" and not scheduler:
        raise click.UsageError("--backend dask needs --scheduler tcp://HOST:PORT (the address `dask scheduler` prints)")
    # On Dask, the cluster runs as many fits at once as its workers have threads, whatever --n-jobs says
    # (so a count back from the end is not this machine's cores): only 0 is refused, and a value given is
    # said to have no effect. The fits' --threads run on the cluster's cores, not this machine's.
    if n_jobs is not None:
        check_n_jobs(n_jobs, local=backend != "dask")
    if backend == "dask":  # before the table is read: the package, and an address that can be one
        from ..dask_connect import check_address

        check_address(scheduler)
    if backend != "dask":
        warn_threads(threads)  # the workers x --threads: once the fits are counted (``warn_workers``)
    if backend != "dask" and n_jobs is None:
        return member_plan(None, threads)
    return Plan(backend=backend, n_jobs=None if backend == "dask" else n_jobs, scheduler=scheduler, threads=threads)


def fits_where(plan, tasks: int | None = None) -> str:
    """Where the ``tasks`` fits run, as the progress line says it: "in this process, ...", "on 2 local worker
    processes ..." (one per fit at most), "on the Dask cluster at ..." (``Plan.describe``, which also carries
    the BLAS-variable note: said here, so ``threads_context`` does not say it again)."""
    blas_note(plan.threads)
    where = plan.describe(tasks)
    return ("in " if where.startswith("this process") else "on ") + where


class FitProgress(StderrBar):
    """Counts finished fits: a rich bar on a terminal, a line per tenth in logs, nothing with --quiet; in a log, a
    line at least once a minute while no fit finishes (``StderrBar``: a fold of a wide table can take many minutes,
    and a batch job's log said nothing after "3 fits in this process")."""

    def __init__(self, what: str, quiet: bool, total: int | None = None):
        super().__init__(quiet)
        self.what = what
        self.task = None
        self.done, self.total = 0, total

    def heartbeat(self, minutes: float) -> str | None:
        return f"{self.what}: {self.done}/{self.total} done, running for {minutes:.0f} min" if self.total else None

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.quiet:
            return
        if self.console.is_terminal:
            if self.bar is None:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

                self.bar = Progress(TextColumn(self.what), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
                                    console=self.console, transient=True)
                self.task = self.bar.add_task(self.what, total=total)
                self.bar.start()
            self.bar.update(self.task, completed=done, total=total)
        elif done == total or done % max(1, total // 10) == 0:
            self.say(f"{self.what}: {done}/{total} done")


def folds_words(folds: int, repeats: int) -> str:
    """What a mean ± SD is over: "5 folds", or "5 folds × 3 repeats" (the 15 fold scores; it said "15 folds")."""
    return f"{folds} folds" if repeats == 1 else f"{folds} folds × {repeats} repeats"


def over_folds(entry: dict, n_folds: int, repeats: int) -> str:
    """What a summary entry's mean ± SD is over: "5 folds × 3 repeats", or, when the metric is undefined in some
    fits (``CVResult.summary``'s ``folds`` and ``undefined``), "2 of 3 folds (undefined in fold 3 (held-out batch
    B3))": the mean of the others is not over every fold."""
    total, defined = n_folds * repeats, entry.get("folds")
    if defined is None or defined >= total:
        return folds_words(n_folds, repeats)
    undefined = entry.get("undefined") or []
    shown = ", ".join(undefined[:3]) + (f" and {len(undefined) - 3} more" if len(undefined) > 3 else "")
    of = f"{total} folds" if repeats == 1 else f"the {total} folds of {folds_words(n_folds, repeats)}"
    return f"{defined} of {of} (undefined in {shown})"


def load_for_cv(data_file: str, options, quiet: bool):
    """Read the table with the train command's roles; print what was picked up."""
    from .. import pipeline

    reading(data_file)  # a data error naming no file is said of it
    ds, notes = pipeline.load_dataset(data_file, options)
    if ds.y is None or ds.task is None:
        from ..errors import DataError

        raise DataError("the table has no target column; name it with --target")
    report(notes + ds.notes, ds.warnings, quiet)
    return ds


# --------------------------------------------------------------------------- the command


def _fold_table(result) -> Table:
    from ..metrics import HEADLINE_METRICS, display_name

    # a metric no fold has (Pearson r of several targets, which metrics.compute gives per target only) is no column
    keys = [k for k in HEADLINE_METRICS[result.task] if any(k in f.metrics for f in result.folds)]
    positive = f"; positive class {result.classes[-1]}" if result.task == "binary" else ""
    table = Table(title=f"Cross-validation: {result.strategy}{positive}", title_justify="left")
    if result.repeats > 1:
        table.add_column("repeat", justify="right")
    batches = any(f.held_out is not None for f in result.folds)
    table.add_column("held-out batch" if batches else "fold", justify="left" if batches else "right", no_wrap=True)
    grouped = any(f.n_groups_test is not None for f in result.folds)
    table.add_column("train" + (" (groups)" if grouped else ""), justify="right", no_wrap=True)
    table.add_column("test" + (" (groups)" if grouped else ""), justify="right", no_wrap=True)
    table.add_column("best epoch", justify="right", no_wrap=True)
    for k in keys:
        table.add_column(display_name(k, short=True), justify="right", no_wrap=True)
    trust = [f.trust for f in result.folds if f.trust is not None]
    # the fold model's own out-of-fold score on its training part: what grouped CV there promises (with
    # --leave-batch-out for every task; with --coverage beside the trust columns)
    inner = bool(trust) or batches
    if inner:
        table.add_column("inner OOF", justify="right", no_wrap=True)
    linear = result.baseline_summary() is not None
    if linear:  # the linear baseline's main metric on the same fold
        table.add_column(f"linear {display_name(result.metric, short=True)}", justify="right", no_wrap=True)
    if trust:
        level = trust[0]["level"]
        # with patients, the coverage counting each once: the share the sets' per-patient guarantee is about
        coverage_key = "coverage_per_group" if any(t.get("coverage_per_group") is not None for t in trust) else "coverage"
        cov_header = f"cov@{level:.12g}" + (" per patient" if coverage_key == "coverage_per_group" else "")
        for col in (cov_header, "set size", "OOD"):
            table.add_column(col, justify="right", no_wrap=True)

    def size(n, g):
        return f"{n} ({g})" if g is not None else str(n)

    from ..model_selection.cross_validation import cannot_flag, fold_coverage

    for f in result.folds:
        row = [str(f.repeat + 1)] if result.repeats > 1 else []
        row += [f.held_out if f.held_out is not None else str(f.fold + 1), size(f.n_train, f.n_groups_train),
                size(f.n_test, f.n_groups_test), str(f.best_epoch)]
        row += [fmt_metric(k, f.metrics.get(k)) for k in keys]
        if inner:
            row.append(fmt_metric(result.metric, f.inner_score))
        if linear:
            row.append(fmt_metric(result.metric, f.baseline.score))
        if trust:
            t = f.trust or {}
            row += [fmt_metric("coverage", fold_coverage(f.trust, coverage_key == "coverage_per_group")),
                    fmt(t.get("mean_set_size")),
                    "n/a" if cannot_flag(t) else fmt_metric("ood_rate", t.get("ood_rate"))]
        table.add_row(*row)
    summary = result.summary()
    lead = [""] if result.repeats > 1 else []
    table.add_section()
    means = [fmt_metric(k, (summary.get(k) or {}).get("mean")) for k in keys]
    # each SD to its mean's decimals ("1.115" over "0.1417" read as more precise than the mean)
    sds = [fmt_sd(k, (summary.get(k) or {}).get("mean"), (summary.get(k) or {}).get("sd")) for k in keys]
    if inner or linear:
        from ..model_selection.cross_validation import mean_sd as stats

        # in the columns' order: inner OOF, linear, then the trust columns (their means leave out the folds where
        # a figure measures nothing: ``CVResult.trust_summary``)
        parts = ([stats([f.inner_score for f in result.folds])] if inner else []) + (
            [stats([f.baseline.score for f in result.folds])] if linear else [])
        if trust:
            summary_trust = result.trust_summary()
            parts += [(summary_trust[k]["mean"], summary_trust[k]["sd"]) for k in ("coverage", "mean_set_size", "ood_rate")]
        # as the fold rows format them (set size: a number)
        kinds = ((result.metric,) if inner else ()) + ((result.metric,) if linear else ()) + (
            ("coverage", None, "ood_rate") if trust else ())
        means += [fmt_metric(k, p[0]) if k else fmt(p[0]) for k, p in zip(kinds, parts)]
        sds += [fmt_sd(k, *p) for k, p in zip(kinds, parts)]
    table.add_row(*lead, "mean", "", "", "", *means, style="bold")
    table.add_row(*lead, "SD", "", "", "", *sds)
    return table


def _partial_means(result) -> list[str]:
    """One line per headline metric of the table whose mean is over fewer folds than the table has."""
    from ..metrics import HEADLINE_METRICS, display_name

    summary = result.summary()
    lines = []
    for k in HEADLINE_METRICS[result.task]:
        entry = summary.get(k)
        if entry and entry.get("mean") is not None and entry["folds"] < len(result.folds):
            lines.append(f"{display_name(k)}: mean and SD over {over_folds(entry, result.n_folds, result.repeats)}")
    return lines


def baseline_line(linear: dict, result) -> str:
    """The linear baseline against the network, e.g. "linear baseline, logistic regression (...) on the same folds
    and preprocessing: balanced accuracy 0.861 ± 0.037; mlpcli minus it: -0.009 ± 0.019 (better in 2 of 5
    folds, worse in 3)"."""
    from ..metrics import display_name

    metric, diff = result.metric, linear["difference"]
    entry = linear["summary"].get(metric) or {}
    rules = [getattr(getattr(f, "baseline", None), "decision", None) for f in result.folds]
    n_balanced = rules.count("balanced")
    # labelled as the network labels each fold: the difference is then of the models, not of the decision rules
    same = ("folds and preprocessing" if not n_balanced else "folds, preprocessing and decision rule (the balanced "
            "rule" + ("" if n_balanced == len(rules) else f" in {n_balanced} of {len(rules)} folds, argmax in the others")
            + ")")
    text = (f"linear baseline, {linear['model']}, on the same {same}: {display_name(metric)} "
            f"{fmt_mean_sd(metric, entry.get('mean'), entry.get('sd'))}")
    if diff["mean"] is None:
        return text + "; no fold where both are defined to compare them"
    sign = "+" if diff["mean"] >= 0 else "-"
    # the SD to the mean's decimals, as every other mean ± SD (it read "+25.72 ± 4.413")
    shown = (fmt_mean_sd(metric, abs(diff["mean"]), diff["sd"]) if diff["folds"] > 1
             else fmt_metric(metric, abs(diff["mean"])))
    if not any(c in "123456789" for c in fmt_metric(metric, abs(diff["mean"])).split("e")[0]):
        sign = ""  # a difference that rounds to 0 has no sign (-1e-17 read "-0.000", better in 3 folds of 5)
    of = f"{diff['folds']} folds" if diff["folds"] != len(result.folds) else f"{diff['folds']}"
    return (f"{text}; mlpcli minus it: {sign}{shown} "
            f"(better in {diff['better']} of {of}, worse in {diff['worse']})")


def pooled_line(pooled, repeats: int) -> str:
    """The pooled out-of-fold estimate, e.g. "pooled out-of-fold: balanced accuracy 0.871 (95 % CI 0.838 – 0.902,
    2,000 bootstrap resamples of 120 patients; 611 samples)"."""
    from ..metrics import display_name

    value = fmt_metric(pooled.metric, pooled.value)
    ci = fmt_ci(pooled.metric, pooled.ci, pooled.level) if pooled.ci is not None else "no interval"
    each = f"; the mean over {repeats} repeats, each sample once per repeat" if repeats > 1 else ""
    drawn = (f"the {pooled.n:,} samples" if pooled.units == "samples" else
             f"{pooled.n_units:,} {pooled.units}; {pooled.n:,} samples")
    return (f"pooled out-of-fold: {display_name(pooled.metric)} {value} ({ci}, {pooled.resamples:,} bootstrap "
            f"resamples of {drawn}{each})")


@click.command("cv", context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["cv"])
@click.argument("data_file", metavar="DATA", type=click.Path(allow_dash=True))
@config_option("TOML file of train options (keys mirror the option names); command-line flags win.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Number of folds (whole groups per fold; stratified by class for class targets).")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Repeat the CV with reshuffled folds and reseeded networks (seed + r).")
@click.option("--oof", "oof_path", type=click.Path(dir_okay=False), default=None, callback=named_file,
              help=f"Write out-of-fold predictions ({TABLE_FORMATS}).")
@click.option("--leave-batch-out", is_flag=True,
              help="Hold out one batch (site, run) at a time instead of --folds, with every batch its patients "
                   "link it to: the forecast for a new site, beside the out-of-fold score within the training "
                   "batches (classifiers: also prediction-set coverage and OOD rate per batch).")
@click.option("--coverage", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None, metavar="LEVEL",
              help="Report each fold's prediction-set coverage at this level, set size and OOD rate "
                   "(classifiers)  [default with --leave-batch-out: 0.9]")
@click.option("--ood-alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None, metavar="P",
              help="With --coverage or --leave-batch-out: a test row is counted out-of-distribution below this "
                   "p-value (a fold model with m held-out patients cannot go below 1/(m + 1))  [default: 0.01]")
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also fit a linear model on every fold (logistic regression, L2, C=1; ridge for regression) on the "
                   "same rows and preprocessing, and report it beside the network: the field's honest yardstick.")
@train_options(rename={"folds": "--member-folds"}, hide=("val_data",))
@parallel_options
@quiet_option
@json_option
@debug_option
@handle_errors
def cv(data_file, folds, repeats, oof_path, leave_batch_out, coverage, ood_alpha, baseline, n_jobs, backend, scheduler,
       threads, quiet, as_json, debug, **params):
    """Cross-validate what `mlpcli train` ships, with grouped K-fold (stratified for class targets).

    No group (--group, default patient_id) is in both the training and the test part of a fold
    (StratifiedGroupKFold for class targets, a shuffled GroupKFold for regression and multi-label
    ones). Inside each fold the training part trains exactly the model `train` would: its
    cross-fitted members (--member-folds, train's --folds), their preprocessing and early
    stopping, the --hidden auto choice and, for classifiers, the calibration; the test part is
    used for the metrics alone. Prints each fold's metrics and their mean ± SD, beside a linear
    baseline fitted on the same rows with the same preprocessing (logistic regression, L2, C=1;
    ridge for numeric targets; --no-baseline to skip). Any train option applies.

    \b
    Examples:
      mlpcli cv sample_data/tumour_subtypes.csv.gz --folds 5 --n-jobs 2
      mlpcli cv cohort.csv --member-folds 1 --hidden 64 --folds 10     # single networks: faster
      mlpcli cv cohort.csv --folds 5 --repeats 3 --oof oof.csv --json > cv.json
      mlpcli cv cohort.csv --backend dask --scheduler tcp://10.0.0.5:8786
      mlpcli cv cohort.csv --leave-batch-out --batch site       # how a new site will fare

    --leave-batch-out holds out each batch in turn (a patient whose samples span batches takes all
    of them along) and reports, per held-out batch, the metrics beside the fold model's own
    out-of-fold score on its training batches (what ordinary grouped CV would promise), and for
    classifiers the coverage of the prediction sets and the share flagged out-of-distribution.
    """
    from ..metrics import display_name
    from ..model_selection import cross_validation as cv_lib

    plan = make_plan(n_jobs, backend, scheduler, threads)
    ctx = click.get_current_context()
    from click.core import ParameterSource

    if leave_batch_out and ctx.get_parameter_source("folds") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--folds does not apply to --leave-batch-out: there is one fold per batch")
    if leave_batch_out and repeats != 1:
        raise click.UsageError("--repeats does not apply to --leave-batch-out: its folds are the batches, not a shuffle")
    if ood_alpha is not None and coverage is None and not leave_batch_out:
        raise click.UsageError("--ood-alpha sets the level of the trust figures' OOD rate: add --coverage LEVEL or "
                               "--leave-batch-out")
    options = options_from_params(params)
    oof_path = stdout_alias(oof_path)  # /dev/stdout is "-"
    one_stdout_writer({"--oof -": oof_path == "-", "--json": as_json})
    if not (as_json or oof_path):  # the report is the result: not lost on a closed standard output (the folds ran
        check_stdout_open("the cross-validation report")  # and their scores went nowhere, exit 0)
    distinct_files({"--oof": oof_path}, {"DATA": data_file, "--samples": options.samples})
    check_table_output(oof_path, "--oof")
    err = stderr_console(quiet)
    ds = load_for_cv(data_file, options, quiet)
    if oof_path:  # two columns of one name would lose one (an id column named `fold`): said before any fit
        from ..model_selection.held_out import check_column_names, held_out_names

        from ..model_selection.cross_validation import HELD_OUT_BATCH

        middle = {"repeat": "the repeat", "fold": "the fold"}
        if leave_batch_out:
            middle[HELD_OUT_BATCH] = "the batch the row was held out with"
        check_column_names(held_out_names(ds, middle), "--oof")
    # the folds' usage and data errors (more folds than patients, a rare class a training part cannot hold
    # out, --leave-batch-out without batches) before the fits are announced: they came after "40 fits in
    # this process"
    fold_list, _ = cv_lib.plan_folds(ds, options, folds, repeats, leave_batch_out, coverage)
    if leave_batch_out:
        folds = len(fold_list)
    plan = cv_lib.folds_plan(ds, options, fold_list, plan)  # the default's workers, for these folds
    if not plan.auto:
        warn_workers(plan.n_jobs, threads, folds * repeats)  # the workers these fits start, before the first
    if not quiet:
        err.print(f"[dim]·[/] {folds * repeats} fits {fits_where(plan, folds * repeats)}")
    with FitProgress("folds", quiet, folds * repeats) as progress:
        result = cv_lib.cross_validate(ds, options, folds=folds, repeats=repeats, plan=plan,
                                       keep_predictions=True, progress=progress,  # the pooled estimate's
                                       leave_batch_out=leave_batch_out, coverage=coverage, baseline=baseline,
                                       ood_alpha=0.01 if ood_alpha is None else ood_alpha)
    # --val-size is read by one network per fold; --member-folds auto resolved to an ensemble in every fold leaves it
    # without effect (a note, as train's): it was dropped without a word
    from ..config import unused_once_resolved

    result.notes += unused_once_resolved(options, given_options(ctx), max(f.members for f in result.folds),
                                         "--member-folds")
    if oof_path:
        from ..predict import write_table

        write_table(result.oof_frame(ds), oof_path)

    if as_json:
        report([], result.warnings, quiet)  # in the document, and on stderr: a warning is never hidden
        from ..pipeline import run_provenance

        doc = result.to_dict()
        doc["oof"] = oof_path
        doc["parallel"] = {"backend": plan.backend, "n_jobs": plan.n_jobs, "scheduler": plan.scheduler}
        doc["provenance"] = run_provenance(data_file, ds, options, plan.blas_threads)
        print_json(doc)
        return
    report(result.notes, result.warnings, quiet)
    con = stderr_console(quiet) if oof_path == "-" else stdout_console()  # stdout holds the table; -q: see train
    con.print(_fold_table(result))
    for line in _partial_means(result):
        con.print(line, soft_wrap=True, style="dim")
    main = result.summary().get(result.metric) or {}
    # one network per fold (--member-folds 1) scores its validation split, not out-of-fold rows
    out_of_fold = any(f.members > 1 for f in result.folds) or options.refit
    inner_words = ("inner OOF: the fold model's " + ("out-of-fold score" if out_of_fold else
                                                     "score on its validation split") + " within its own training part")
    if any(f.trust is not None for f in result.folds):
        per_patient = any((f.trust or {}).get("coverage_per_group") is not None for f in result.folds)
        # the column is per patient when the table has patients (the header says so): the legend said samples
        cov_words = ("cov@ per patient: share of held-out samples whose prediction set holds the true class, each "
                     "patient counted once" if per_patient else
                     "cov@: share of held-out samples whose prediction set holds the true class")
        con.print(f"{inner_words}; {cov_words}; OOD: "
                  f"share flagged out-of-distribution (p < {0.01 if ood_alpha is None else ood_alpha:g})", soft_wrap=True,
                  style="dim")
        blind = [(cv_lib.fold_name(f, result.repeats > 1), f.trust["notes"]) for f in result.folds
                 if f.trust is not None and f.trust.get("notes")]
        if blind:  # said for the first such fold: the others differ only in their counts
            where, notes = blind[0]
            con.print(f"OOD n/a in {len(blind)} fold{'s' * (len(blind) > 1)}: {where}: {notes[0]}", soft_wrap=True)
        whole = [(cv_lib.fold_name(f, result.repeats > 1), f.trust["set_notes"]) for f in result.folds
                 if f.trust is not None and f.trust.get("set_notes")]
        if whole:  # a coverage of 1 by the count alone: the sets say nothing there
            where, notes = whole[0]
            con.print(f"cov@ by the count alone in {len(whole)} fold{'s' * (len(whole) > 1)} (left out of the mean): "
                      f"{where}: {notes[0]}", soft_wrap=True)
    elif leave_batch_out:
        con.print(inner_words, soft_wrap=True, style="dim")
    if leave_batch_out:
        from ..model_selection.cross_validation import mean_sd as stats

        inner = stats(f.inner_score for f in result.folds)
        grouped = "grouped " if ds.groups is not None else ""
        if inner[0] is not None:
            con.print(f"new-batch forecast: {display_name(result.metric)} "
                      f"{fmt_mean_sd(result.metric, main.get('mean'), main.get('sd'))} on held-out batches against "
                      f"{fmt_mean_sd(result.metric, inner[0], inner[1])} "
                      # grouped only with a group column (--no-group: the rows are split one by one)
                      f"{'out-of-fold' if out_of_fold else f'on a {grouped}validation split'} within the training "
                      f"batches{' (grouped CV)' if out_of_fold and grouped else ''}; "
                      f"{'lower' if result.higher_is_better else 'higher'} on held-out batches means a new site will "
                      "fare worse than that within-batch estimate says", soft_wrap=True)
        small = result.small_held_out()
        if small is not None:  # each batch counts once in the forecast: a batch of one patient as much as one of 40
            listed = ", ".join(f"{b['batch']!r} ({b['units']})" for b in small["batches"][:5])
            more = f" and {len(small['batches']) - 5} more" if len(small["batches"]) > 5 else ""
            con.print(f"held-out batches of fewer than {small['min_units']} {small['unit']}: {listed}{more}; each "
                      f"batch counts once in the forecast, so their noisy scores weigh as much as the others'; without "
                      f"them: {display_name(result.metric)} {fmt_mean_sd(result.metric, small['mean'], small['sd'])} "
                      f"over {count_of(small['folds'], 'batch', 'batches')}", soft_wrap=True)
    linear = result.baseline_summary()
    if linear is not None:
        con.print(baseline_line(linear, result), soft_wrap=True)
    if result.pooled is not None:
        con.print(pooled_line(result.pooled, result.repeats), soft_wrap=True)
    con.print(f"{display_name(result.metric)}: [bold]{fmt_mean_sd(result.metric, main.get('mean'), main.get('sd'))}"
              f"[/] over {over_folds(main, result.n_folds, result.repeats)} "
              f"({'higher' if result.higher_is_better else 'lower'} is better); "
              f"{fmt(result.seconds, 'seconds')} s"
              + (f"; out-of-fold predictions in {oof_path}" if oof_path else ""), soft_wrap=True)
