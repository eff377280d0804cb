"""The options every command shares (--debug, -q, --json, --threads, --n-jobs's rule, predict's and evaluate's column
roles) and the Click callbacks that check a value before any work. Train's own options are generated from their
declaration (``options``)."""

from __future__ import annotations

import math

import click

from .console import render_notes, report, stderr_console


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def debug_option(fn):
    return click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")(fn)


def quiet_option(fn):
    return click.option("-q", "--quiet", is_flag=True,
                        help="Nothing on stderr but warnings and errors: no progress, no notes, and no summary where "
                             "standard output holds the result (-o -).")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON document on stdout.")(fn)


def threads_context(threads: int | None):
    """Cap BLAS threads (threadpoolctl) for the command: --threads, else the one default of every command
    (``parallel.default_blas_threads``: 1, never more than the usable cores), so HPC jobs stay within their
    allocation and a busy node is not oversubscribed. A batch script's OMP_NUM_THREADS (or another BLAS
    variable) asking for another count is said in a note (``blas_note``), hidden by the command's -q."""
    from threadpoolctl import threadpool_limits

    from ..parallel import default_blas_threads

    note = blas_note(threads)
    if note is not None:
        ctx = click.get_current_context(silent=True)
        report([note], [], bool(ctx is not None and ctx.params.get("quiet")))
    return threadpool_limits(limits=threads or default_blas_threads())


_BLAS_NOTE_SAID = "mlpcli.blas_note_said"  # ctx.meta: the command has said (or handed on) the BLAS note


def blas_note(threads: int | None) -> str | None:
    """``parallel.blas_env_note`` the first time a command asks for it, None afterwards: train's notes, cv's
    and tune's "fits in/on" line and ``threads_context`` each say it, and a run says it once."""
    from ..parallel import blas_env_note

    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        if ctx.meta.get(_BLAS_NOTE_SAID):
            return None
        ctx.meta[_BLAS_NOTE_SAID] = True
    return blas_env_note(threads)


# The one --n-jobs rule (``config.n_jobs_problem``), in the help of every command that takes it.
N_JOBS_FROM_END = ("Negative values count back as in joblib: -1 every core this job may use, -2 all but one, ... "
                   "(0, and negative values that leave no core, are refused; more workers than cores run, with a "
                   "warning).")


def check_n_jobs(n_jobs: int, local: bool = True) -> None:
    """A usage error for an --n-jobs value that leaves no worker (``config.n_jobs_problem``), naming --n-jobs,
    or the file and its key when a --config file gave it. ``local`` False: the fits go to a Dask cluster, where
    joblib runs as many at once as the workers have threads whatever the value (only 0 is refused there): a
    value given draws a warning that it has no effect (a note when a config file gave it, which may be meant
    for local runs). Call it where the backend is known."""
    from ..config import n_jobs_problem

    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source("n_jobs") if ctx is not None else None
    config = None
    if source == click.core.ParameterSource.DEFAULT_MAP:  # --config FILE.toml's n-jobs
        from .options import CONFIG_META

        config = ctx.meta.get(CONFIG_META)
    problem = n_jobs_problem(n_jobs, local)
    if problem is not None:
        if config is not None:
            raise click.BadParameter(f"{config}: key 'n-jobs' {problem}", param_hint="'--config'")
        raise click.BadParameter(problem, param_hint="--n-jobs")
    if local or source in (None, click.core.ParameterSource.DEFAULT):
        return
    said = (f"{config}: key 'n-jobs' ({n_jobs})" if config is not None else f"--n-jobs {n_jobs}") + (
        " does not apply to --backend dask: the cluster runs as many fits at once as its "
        "workers have threads (dask worker --nthreads), whatever --n-jobs says")
    if config is not None:
        report([said], [], bool(ctx.params.get("quiet")))
    else:
        render_notes(stderr_console(False), [], [said + "; leave it out"])


# The one --threads rule, in every command's help.
THREADS_HELP = ("BLAS threads per network (each fit, each prediction pass); more than the cores this job may use "
                "(affinity, cgroup quota, SLURM_CPUS_PER_TASK) draws a warning.")


THREADS_DEFAULT = "  [default: 1: small networks gain nothing from more, see benchmarks/bench_threads.py]"


def warn_workers(n_jobs: int | None, threads: int | None, tasks: int | None = None) -> None:
    """The local worker processes --n-jobs starts for ``tasks`` fits (one per fit at most; 0: none run side by
    side), times --threads, beyond the usable cores: a warning (always shown) before any fit."""
    from ..parallel import workers_warning

    warning = workers_warning(n_jobs, threads, tasks)
    if warning is not None:
        render_notes(stderr_console(False), [], [warning])


def _warn_threads(ctx, param, value):
    """--threads beyond the usable cores: a warning (always shown, as every warning) before any work. Not in
    a command that can send its fits to a Dask cluster (a --backend option): their threads run on the
    cluster's cores, not this machine's, so that command warns once it knows where (``warn_threads``)."""
    if any(p.name == "backend" for p in ctx.command.params):
        return value
    warn_threads(value)
    return value


def warn_threads(threads: int | None) -> None:
    """``parallel.threads_warning`` for --threads on this machine's cores, shown (always) before any fit."""
    from ..parallel import threads_warning

    warning = threads_warning(threads)
    if warning is not None:
        render_notes(stderr_console(False), [], [warning])


def threads_option(fn=None, *, extra: str = ""):
    """--threads, the same option in every command (``THREADS_HELP``); `extra`: a command's own sentence."""
    def decorate(f):
        return click.option("--threads", type=click.IntRange(min=1), default=None, callback=_warn_threads,
                            help=THREADS_HELP + (" " + extra if extra else "") + THREADS_DEFAULT)(f)

    return decorate if fn is None else decorate(fn)


def role_options(fn):
    """Column roles of predict and evaluate: each defaults to the model's training role, then to the usual
    column name (train declares its own, with the train options)."""
    decorators = [
        click.option("--target", multiple=True, metavar="NAMES", callback=named_column,
                     help="Target column(s), where the command reads labels (evaluate's truth, the classes "
                          "explain and gradcheck explain toward); predict ignores it. Comma-separated, or repeated  "
                          "[default: the model's target]"),
        click.option("--group", default=None, callback=named_column,
                     help="Group column (samples of one patient), counted as patients: by the shift check, "
                          "evaluate's and explain's bootstrap  [default: the model's, else patient_id when present]"),
        click.option("--no-group", is_flag=True,
                     help="No group column: samples count as independent (bootstraps resample samples, not "
                          "patients)."),
        click.option("--id", "id_col", default=None, callback=named_column,
                     help="Sample id column, naming the samples in outputs and messages (a GEO series matrix: the "
                          "annotation its table's header names the samples by)  [default: the model's, else sample_id "
                          "when present; geo_accession]"),
        click.option("--batch", default=None, callback=named_column,
                     help="Batch / site column: predict's and evaluate's shift check compares it with the training "
                          "batches  [default: the model's, else batch when present]"),
        click.option("--drop", multiple=True, help="Comma-separated columns to ignore (or repeat it)."),
        click.option("--features-in-rows", is_flag=True, help="The table is features x samples (genes in rows)."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    from .options import declared_options  # declared with the train options

    return declared_options("samples", "sep", "decimal", "layer", "raw", "var_names")(fn)


def named_file(ctx, param, value):
    """Click callback: an output option's file name must not be empty (``--shift-report "$REPORT"`` with the
    variable unset would else write nothing, silently)."""
    if value is not None and not str(value).strip():
        raise click.BadParameter("an empty file name; give a file name, or leave the option out", ctx=ctx,
                                 param=param)
    return value


# --symbols (explain, and predict with --explain): the annotation files it reads and its default, said alike in both
# helps (the default's columns are ``data.symbols.SYMBOL_COLUMNS``, not imported here: a help needs no NumPy)
SYMBOL_FILES_HELP = ("a GEO platform table (GPL570.annot.gz, the GPL full table), a BioMart export, two columns "
                     "(.csv/.tsv/.txt, optionally .gz)")
SYMBOLS_DEFAULT_HELP = ("[default: auto: .h5ad or 10x input's first of feature_name, gene_symbols, gene_name, symbol "
                        "it has, unless the genes are named by it]")


def named_column(ctx, param, value):
    """Click callback: a column option's name must not be empty (``--group "$COL"`` with the variable unset), as
    train's declared options refuse it; for a repeatable one (--target), none of its names."""
    names = value if isinstance(value, tuple) else () if value is None else (value,)
    if any(not str(v).strip() for v in names):
        raise click.BadParameter("an empty value (an unset shell variable?); give a column name, or leave the option "
                                 "out", ctx=ctx, param=param)
    return value


def finite_option(ctx, param, value):
    """Click callback: a float option's value must be a finite number (FloatRange lets inf and nan through)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a finite number", ctx=ctx, param=param)
    return value
