"""`mlpcli predict`: a trained model on a new cohort, streamed in chunks, written atomically."""

from __future__ import annotations

import math
import sys
import time

import click

from ..decision import RULES as DECISION_RULES
from ..decision import label_threshold_words
from ..fileio import TABLE_FORMATS, write_together
from . import SHORT_HELP
from .console import binary_stdin, print_json, render_notes, stderr_console, StderrBar, stdout_console, Table
from .exits import handle_errors, reading
from .outputs import check_table_output, check_writable, distinct_files, one_stdout_writer, stdout_alias
from .shared_options import (SYMBOL_FILES_HELP, SYMBOLS_DEFAULT_HELP,
                             CONTEXT_SETTINGS, debug_option, finite_option, json_option, named_column, named_file,
    quiet_option, role_options, threads_context, threads_option)

# Without a terminal (logs, HPC jobs) progress is one line this often.
_LOG_EVERY_SECONDS = 10.0


def role_flags(params: dict):
    """The role options as the library's RoleFlags; an unchanged --target means the model's own target."""
    from click.core import ParameterSource

    from ..predict import RoleFlags

    ctx = click.get_current_context()
    target = ",".join(params.pop("target")) or None  # repeatable: `--target a --target b` is `--target a,b`
    if ctx.get_parameter_source("target") in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None):
        target = None
    return RoleFlags(target=target, group=params.pop("group"), no_group=params.pop("no_group"), id=params.pop("id_col"),
                     batch=params.pop("batch"), drop=",".join(params.pop("drop")) or (),
                     features_in_rows=params.pop("features_in_rows"), sep=params.pop("sep"),
                     decimal=params.pop("decimal"), samples=params.pop("samples"), layer=params.pop("layer"),
                     raw=params.pop("raw"), var_names=params.pop("var_names"))


class ReadProgress(StderrBar):
    """Renders the library's progress events on stderr: a transient bar on a terminal, a line every
    few seconds in logs, nothing with --quiet."""

    def __init__(self, quiet: bool, what: str = "predicted"):
        super().__init__(quiet)
        self.what = what
        self.tasks: dict[str, int] = {}
        self.start = self.last = time.monotonic()
        if self.wants_bar:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                TimeElapsedColumn(), console=self.console, transient=True)

    def __call__(self, event: dict) -> None:
        if self.quiet:
            return
        if event["stage"] == "read":
            total, done = event.get("total_bytes"), event.get("bytes")
            label, info = self.what, f"{event['rows']:,} rows"
            completed, of = (done, total) if total and done is not None else (None, None)
        else:
            label, info = "bootstrap", f"{event['done']:,}/{event['total']:,} resamples"
            completed, of = event["done"], event["total"]
        if self.bar:
            stage = event["stage"]
            if stage not in self.tasks:
                self.tasks[stage] = self.bar.add_task(label, total=of, info="")
            self.bar.update(self.tasks[stage], completed=completed, info=info)
            return
        now = time.monotonic()
        finished = event["stage"] != "read" and of is not None and completed is not None and completed >= of
        if now - self.last >= _LOG_EVERY_SECONDS or finished:  # a log ends at 100 %, not at the last 10 s tick
            self.last = now
            share = f" ({completed / of:.0%})" if of else ""
            self.console.print(f"{label} {info}{share} in {now - self.start:.0f} s")


class NoteRenderer:
    """Prints notes and warnings as they appear (header notes first, the shift check at the end).
    Notes follow --quiet; warnings always show."""

    def __init__(self, quiet: bool, source):
        self.notes_console, self.warnings_console = stderr_console(quiet), stderr_console(False)
        self.source = source
        self.shown_notes = self.shown_warnings = 0

    def __call__(self) -> None:
        notes, warns = self.source.notes, self.source.warnings
        render_notes(self.notes_console, notes[self.shown_notes:], [])
        render_notes(self.warnings_console, [], warns[self.shown_warnings:])
        self.shown_notes, self.shown_warnings = len(notes), len(warns)


def freeze_imports() -> None:
    """Exempt everything loaded so far (modules, the model) from cyclic garbage collection: parsing
    allocates many small objects, and each full collection would rescan these ~10^5 long-lived ones
    (measured at 6 % of a large predict run)."""
    import gc

    gc.collect()
    gc.freeze()


def load_model(model_path: str, shift_path: str | None):
    """Check the --shift-report path before any work, load the model, then freeze what is loaded."""
    from .. import model_io

    check_table_output(shift_path, "--shift-report")
    model = model_io.load(model_path)
    freeze_imports()
    return model


def shift_table(shift, k: int = 10) -> Table:
    from ..data.scaling import UNCLIPPED_LIMIT
    from ..predict.shift import shown_number

    # the SD ratio of a format-11 model is of the values before robust scaling's clip, which squeezes spread
    ratio = "SD ratio (new / training, before the clip)" if getattr(shift, "unclipped", False) else \
        "SD ratio (new / training)"
    d = len(shift.features)
    table = Table(title=f"Most shifted of {d} feature{'s' * (d != 1)} (as the network sees them)", title_justify="left")
    for col in ("feature", "mean shift (training SD)", ratio):
        table.add_column(col, justify="left" if col == "feature" else "right")
    for row in shift.most_shifted(k):
        table.add_row(row["feature"], shown_number(row["mean_shift_sd"], "+.2f"),  # at the bound: no ratio measured
                      f">= {UNCLIPPED_LIMIT:g}" if row.get("at_bound") else shown_number(row["sd_ratio"], ".2f"))
    return table


def write_shift_report(shift, path: str) -> None:
    from ..predict import write_table

    write_table(shift.to_frame(), path)


def _finite_mb(ctx, param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a finite number of MiB", ctx=ctx, param=param)
    return value


def reading_options(fn):
    """How a labelled or new table is read (predict, evaluate, recalibrate): features absent from it, and the
    pieces it is read in."""
    decorators = [
        click.option("--fill-missing", type=click.Choice(["mean"]), default=None,
                     help="Fill features absent from the table with their training means, up to 10 % of the "
                          "model's features (--max-missing; default: an absent feature is an error)."),
        click.option("--max-missing", type=click.FloatRange(0, 1), default=None, metavar="FRACTION",
                     callback=finite_option,
                     help="With --fill-missing mean: the largest share of the model's features that may be "
                          "filled; for a model trained with --impute, it counts features without a value in any "
                          "row too (imputed in every row)  [default: 0.1]"),
        # at most a million GiB: the budget is counted in bytes (a 1e308 MiB budget overflowed)
        click.option("--chunk-mb", type=click.FloatRange(min=0, min_open=True, max=1 << 30), default=None, callback=_finite_mb,
                     help="Memory for the table's rows in flight (text and parsed values), in MiB: rows are read "
                          "in pieces of this budget however wide or long they are (a budget below a few hundred "
                          "rows makes the run many times slower: each piece costs a pass of its own)  [default: 64]"),
        click.option("--chunksize", type=click.IntRange(min=1), default=None,
                     help="Rows read at a time, instead of the memory budget of --chunk-mb (below a few hundred "
                          "rows, many times slower: each piece costs a pass of its own; 1 row: ~90 x)."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def common_options(fn):
    """Options shared by predict and evaluate (besides the column roles)."""
    decorators = [
        reading_options,
        click.option("--shift-report", "shift_path", type=click.Path(dir_okay=False), default=None,
                     callback=named_file,
                     help=f"Write the per-feature cohort-shift table ({TABLE_FORMATS}): new and training "
                          "means and SDs on the features' own scale (after log1p when the model applies it; with robust "
                          "scaling the means mapped back from the clipped values: approximate) and, as *_scaled, as the "
                          "network sees them; mean_shift_sd on the latter, sd_ratio before robust scaling's clip "
                          "(models before format 11: on the latter too)."),
        click.option("--threshold", type=click.FloatRange(0, 1), default=None, callback=finite_option,
                     help="Binary and multi-label models: positive when P >= threshold (every label)  [default: "
                          "0.5, or for a model that decides by balanced the positive class's (each label's) training "
                          "share (its --prevalence share when given)]"),
        click.option("--decision", type=click.Choice(DECISION_RULES), default=None,
                     help="Binary, multiclass and multi-label models: how the label is chosen from the "
                          "probabilities, instead of the model's own rule (train --decision; `mlpcli info` names it): "
                          "argmax, the most probable class (each label at P >= 0.5); balanced, the most probable "
                          "relative to its training share (each label at P >= its share of positives)."),
        click.option("--prevalence", default=None, metavar="MIX",
                     help="Binary and multiclass models: this cohort's known class mix, to move the probabilities "
                          "to from the training mix (a recalibrated model's: its recalibration table's) (label shift: each class's samples look as in training): "
                          "CLASS=SHARE,... (every class, or all but one, which gets what is left; a class holding a "
                          "comma in double quotes), e.g. case=0.02 for "
                          "a screening cohort. Labels follow (balanced ones do not change); prediction sets are "
                          "weighed for the mix."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def trust_options(fn):
    """Prediction sets, abstention and out-of-distribution flags (predict and evaluate)."""
    decorators = [
        click.option("--coverage", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
                     metavar="LEVEL", callback=finite_option,
                     help="Add conformal prediction sets (pred_set 'A|B', set_size) holding the true class for at "
                          "least this share of new samples like the training ones (e.g. 0.9)."),
        click.option("--conformal-score", type=click.Choice(["aps", "lac"]), default="aps", show_default=True,
                     help="aps: adaptive sets, larger on hard samples; lac: classes whose probability reaches a "
                          "threshold (an empty set = no class probable enough)."),
        click.option("--mondrian", is_flag=True,
                     help="With --coverage: the level holds within every class (rare classes need it), not overall."),
        click.option("--min-confidence", type=click.FloatRange(0, 1), default=None, metavar="P",
                     callback=finite_option,
                     help="Label a sample --unassigned-label when the calibrated probability of its predicted class is below P."),
        click.option("--abstain-on-empty-set", is_flag=True,
                     help="With --coverage and --conformal-score lac: label a sample --unassigned-label when its "
                          "prediction set is empty (no class probable enough; APS sets are empty only for confident "
                          "samples, so it is refused with them)."),
        click.option("--unassigned-label", default="unassigned", show_default=True, metavar="TEXT",
                     help="The label of abstained samples."),
        click.option("--ood", is_flag=True,
                     help="Add ood_score (how far beyond the held-out training samples: the nearest-neighbour "
                          "distance, absolute or relative to the nearest class's spread), ood_p (its p-value among "
                          "held-out training samples) and ood (ood_p < --ood-alpha)."),
        click.option("--ood-alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
                     metavar="ALPHA", callback=finite_option, help="Flag samples with ood_p below this (implies --ood)  [default: 0.01]"),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def uncertainty_from(params: dict, model, model_path: str):
    """The trust options (popped from ``params``) as the library's Uncertainty, checked against the model;
    contradictory options are usage errors (exit 2), a model without what they need an error naming it."""
    from ..errors import ConfigError
    from ..predict import Uncertainty

    alpha = params.pop("ood_alpha")
    u = Uncertainty(coverage=params.pop("coverage"), score=params.pop("conformal_score"),
                    mondrian=params.pop("mondrian"), min_confidence=params.pop("min_confidence"),
                    abstain_on_empty_set=params.pop("abstain_on_empty_set"),
                    unassigned_label=params.pop("unassigned_label"), ood=params.pop("ood") or alpha is not None,
                    ood_alpha=0.01 if alpha is None else alpha)
    if u.coverage is None and (u.mondrian or u.abstain_on_empty_set):
        raise click.UsageError(f"{'--mondrian' if u.mondrian else '--abstain-on-empty-set'} applies to prediction "
                               "sets (binary and multiclass models): add --coverage LEVEL")
    ctx = click.get_current_context()
    from click.core import ParameterSource

    if u.coverage is None and ctx.get_parameter_source("conformal_score") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--conformal-score applies to prediction sets (binary and multiclass models): add "
                               "--coverage LEVEL")
    if not u.abstains and ctx.get_parameter_source("unassigned_label") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--unassigned-label applies with --min-confidence or --abstain-on-empty-set")
    if model is not None and u.active:
        try:
            u.check(model, model_path)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
    return u if u.active else None


def chunking(chunksize: int | None, chunk_mb: float | None) -> dict:
    """--chunksize / --chunk-mb as the library's arguments; giving both is a usage error."""
    from ..predict import DEFAULT_CHUNK_MB

    if chunksize is not None and chunk_mb is not None:
        raise click.UsageError("--chunksize and --chunk-mb both set the size of the pieces read; give one of them")
    return {"chunksize": chunksize, "chunk_mb": DEFAULT_CHUNK_MB if chunk_mb is None else chunk_mb}


@click.command(context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["predict"])
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("data_file", metavar="DATA", type=click.Path(allow_dash=True))  # a directory: 10x Genomics
@click.option("-o", "--out", default="-", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              callback=named_file,
              help="Predictions: .csv, .tsv, .txt (optionally .gz/.bz2/.xz) or .parquet; '-' writes CSV to stdout; "
                   ".h5ad (with .h5ad DATA): a copy of DATA with the predictions as new .obs columns.")
@click.option("--obs-prefix", default=None, metavar="TEXT",
              help="-o FILE.h5ad: prefix of the new .obs columns (<prefix><target>, <prefix><target>_prob)  "
                   "[default: mlpcli_]")
@click.option("--obs-probs", is_flag=True, help="-o FILE.h5ad: also one probability column per class, <prefix>prob_<class>.")
@click.option("--fail-on-shift", type=click.Choice(["mild", "shift"]), is_flag=False, flag_value="mild", default=None,
              help="Exit 1 with an error, writing no predictions (a --shift-report is still written), when the "
                   "cohort-shift check finds a shift: any (alone, or 'mild'), or only a strong one ('shift'); at "
                   "either level also when features are 0 in every sample though rarely 0 in training (not "
                   "measured). With -o - the rows already written stay. A table too small to check passes, with a "
                   "warning.")
@common_options
@click.option("--explain", "explain_k", type=click.IntRange(min=1), default=None, metavar="K",
              help="Add a top_features column: the K genes with the largest integrated-gradients attributions "
                   "toward each row's predicted class, as GENE:score;... (see mlpcli explain); only genes that "
                   "push toward the class (a positive score), so a row may list fewer. A regression model: the K "
                   "largest |scores| for the predicted value, in the target's units (a positive score raises it, a "
                   "negative one lowers it, from the value at the training mean); several targets: "
                   "top_features_<target> each. A multi-label model: top_features_<label> each, toward the "
                   "label, for the rows predicted positive for it (empty for the others). With gene symbols "
                   "(--symbols) a top_symbols column (top_symbols_<target>) too: the same genes by symbol.")
@click.option("--explain-steps", type=click.IntRange(1, 100_000), default=16, show_default=True,
              help="With --explain: integrated-gradients path intervals.")
@click.option("--symbols", "symbols", default=None, metavar="FILE|COLUMN", callback=named_column,
              help="With --explain: a top_symbols column after top_features (which keeps the ids): the same genes "
                   "by symbol, SYMBOL;... (a gene without one by its id), from an annotation FILE of ids and symbols "
                   f"({SYMBOL_FILES_HELP}) or, for .h5ad or 10x input, a var COLUMN, as explain --symbols reads them; "
                   "'none': no top_symbols  " + SYMBOLS_DEFAULT_HELP)
@trust_options
@role_options
@threads_option
@quiet_option
@json_option
@debug_option
@handle_errors
def predict(model_path, data_file, out, obs_prefix, obs_probs, fail_on_shift, fill_missing, max_missing, shift_path,
            chunk_mb, chunksize, threshold, decision, prevalence, explain_k, explain_steps, symbols, threads, quiet,
            as_json, debug, **params):
    """Predict a new cohort with a trained model, streaming the table in pieces.

    Features are matched to the model by name (extra columns ignored); the model's preprocessing
    is applied as fitted; a cohort-shift check compares the new samples with the training ones.
    Output columns: the id column (else `row`), `pred_<target>` and one `prob_<class>` per class
    (multi-label: `pred_<label>` 0/1 and `prob_<label>`; regression: `pred_<target>`). The output
    file is written atomically: an error halfway leaves no partial file. DATA and -o may be '-'.
    Every row must have one field per header column, and ids (the id column) must be unique.

    Classification models can add conformal prediction sets (--coverage: `pred_set`, `set_size`),
    abstain (--min-confidence, --abstain-on-empty-set: the label becomes `unassigned`) and flag
    samples unlike the training ones (--ood: `ood_score`, `ood_p`, `ood`); see the README.

    \b
    Example:  mlpcli predict subtypes.mlp sample_data/new_cohort.csv.gz -o predictions.csv
    Example:  mlpcli predict subtypes.mlp new.csv --coverage 0.9 --ood --abstain-on-empty-set --conformal-score lac -o p.csv
    Example:  zcat big.csv.gz | mlpcli predict subtypes.mlp - --quiet | head
    """
    from .. import predict as lib
    from ..data.h5ad import is_h5ad

    reading(data_file)  # a data error naming no file is said of it
    roles = role_flags(params)
    chunks = chunking(chunksize, chunk_mb)
    _check_explain_options(explain_k, symbols)
    from ..data.symbols import AUTO, check_symbols_option
    from ..errors import ConfigError, DataError, OutputError

    check_symbols_option(data_file, symbols)  # a var COLUMN with a table: a usage error, before any reading
    from ..fileio import check_file_name

    try:
        if out != "-":
            check_file_name(out)  # a name ending in "/" first: its format read as "'' names no output format"
        to_h5ad = lib.output_format(out)[0] == "h5ad"
    except (DataError, OutputError) as exc:  # an extension no writer knows: the option's value, a usage error
        raise click.UsageError(f"--out: {exc}") from None
    if to_h5ad and not is_h5ad(data_file):
        given = "- (standard input)" if data_file == "-" else data_file
        raise click.UsageError(f"-o {out} writes the predictions into a copy of an .h5ad input, but DATA {given} is "
                               "not an .h5ad file (write .csv, .tsv or .parquet instead)")
    if not to_h5ad and (obs_prefix is not None or obs_probs):
        raise click.UsageError(f"{'--obs-prefix' if obs_prefix is not None else '--obs-probs'} applies to -o FILE.h5ad")
    out, shift_path = stdout_alias(out), stdout_alias(shift_path)  # /dev/stdout is "-"
    one_stdout_writer({"-o -": out == "-", "--json": as_json, "--shift-report -": shift_path == "-"})
    distinct_files({"--out": out, "--shift-report": shift_path},
                   {"MODEL": model_path, "DATA": data_file, "--samples": roles.samples})
    if out != "-":
        check_writable(out, "--out")
    uncertainty_from(dict(params), None, model_path)  # contradictory options: before the model is read
    model = load_model(model_path, shift_path)
    _check_obs_probs(obs_probs, model)
    uncertainty = uncertainty_from(params, model, model_path)
    with threads_context(threads), ReadProgress(quiet) as progress:
        stream = lib.predict_stream(model, data_file, **chunks, threshold=threshold, decision=decision,
                                    fill_missing=fill_missing,
                                    max_missing=max_missing, roles=roles, stdin=binary_stdin() if data_file == "-" else None,
                                    progress=progress, explain=explain_k, explain_steps=explain_steps,
                                    uncertainty=uncertainty, unique_ids=not to_h5ad,  # .h5ad: written by position
                                    prevalence=prevalence, symbols=AUTO if symbols is None else symbols)
        notes = NoteRenderer(quiet, stream)
        notes()
        if fail_on_shift:
            stream = _ShiftGate(stream, fail_on_shift, out, shift_path, notes)

        def shift_report(last=None) -> None:
            """The shift report (known once every row is read), then ``last``: written before the predictions
            are put in place (an .h5ad copy is written within), so that a failure of either leaves neither."""
            files = {}
            if shift_path and shift_path != "-":
                from ..predict.output import table_bytes

                files[shift_path] = table_bytes(stream.shift.to_frame(), shift_path)

            def then() -> None:
                if shift_path == "-":  # standard output cannot be taken back: after the files, before the commit
                    write_shift_report(stream.shift, shift_path)
                if last is not None:
                    last()

            write_together(files, last=then)

        if to_h5ad:
            n = lib.write_predictions_h5ad(stream, out, data_file, class_probs=obs_probs, notes=stream.notes,
                                           prefix=lib.DEFAULT_OBS_PREFIX if obs_prefix is None else obs_prefix,
                                           commit=shift_report)
        elif out == "-":
            try:
                n = lib.write_predictions(stream, out, stdout=sys.stdout, before_replacing=shift_report)
            except KeyboardInterrupt as exc:  # a stop signal: the rows on standard output are whole but not all
                exc.on_stop = ("the predictions already written to standard output are incomplete (whole rows, not "
                               "every row of the table); not to be used as a complete output")
                raise
            except (DataError, ConfigError) as exc:  # a check of the whole table, after its rows went out (a gene
                # without a value in any row, --fail-on-shift): standard output cannot be taken back, so say so
                if not getattr(stream, "n_rows", 0) or "standard output" in str(exc):  # (--fail-on-shift says it)
                    raise
                raise type(exc)(f"{exc}; the predictions already written to standard output are not to be used "
                                "(written before this was known)") from None
        else:
            n = lib.write_predictions(stream, out, stdout=sys.stdout, before_replacing=shift_report)
    notes()
    if stream.shift is not None and stream.shift.shifted and not quiet:
        stderr_console().print(shift_table(stream.shift, 5))
    summary = stream.summary()
    if as_json:
        print_json({"model": model_path, "data": data_file, "out": out, **summary})
    else:  # standard output holds rows (-o -, --shift-report -): the summary goes to stderr, as train's does
        con = stderr_console(quiet) if out == "-" or shift_path == "-" else stdout_console()  # -q: see train
        con.print(_summary_table(summary, "standard output" if out == "-" else out, n))


def _check_obs_probs(obs_probs: bool, model) -> None:
    """--obs-probs adds a probability column per class; a regression model has no classes and a multi-label model
    writes each label's probability (<prefix><label>_prob) anyway, so there it read nothing and was ignored without
    a word, where every other option a model cannot use is a usage error."""
    if obs_probs and model.task not in ("binary", "multiclass"):
        why = ("a multi-label model's .h5ad copy holds each label's probability, <prefix><label>_prob, without it"
               if model.task == "multilabel" else "a regression model predicts values, not probabilities")
        raise click.UsageError(f"--obs-probs applies to binary and multiclass models; this model is {model.task}: "
                               f"{why} (leave --obs-probs out)")


def _check_explain_options(explain_k: int | None, symbols: str | None = None) -> None:
    """--explain-steps or --symbols without --explain is a usage error: silently ignored, it would promise reasons
    the output does not have (as --conformal-score without --coverage)."""
    from click.core import ParameterSource

    given = click.get_current_context().get_parameter_source("explain_steps") == ParameterSource.COMMANDLINE
    if explain_k is None and given:
        raise click.UsageError("--explain-steps applies to the top_features column: add --explain K")
    if explain_k is None and symbols is not None:
        raise click.UsageError(f"--symbols {symbols} applies to the top_symbols column of --explain: add --explain K")


class _ShiftGate:
    """The prediction stream, failing after its last piece when the cohort shift reaches --fail-on-shift:
    a file is written atomically, so the error leaves none behind; standard output (``-o -``) has had the
    rows by then, and the error says so. The shift report (--shift-report), the evidence of why it failed,
    is written before the error, which says where it is."""

    def __init__(self, stream, level: str, out: str, shift_path: str | None = None, show_notes=None):
        self._stream, self._level, self._out, self._shift_path = stream, level, out, shift_path
        self._show_notes = show_notes  # the run's notes and warnings (the shift's, an unseen batch), before the error

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def __iter__(self):
        from ..errors import DataError
        from ..predict.shift import shift_failure

        yield from self._stream
        shift = self._stream.shift
        if shift is not None and shift.level == "unchecked":  # the gate let it pass unjudged: say so, not silently
            from ..predict.shift import SHIFT_MIN_SAMPLES

            self._stream.warnings.append(f"--fail-on-shift could not judge this table: the cohort-shift check needs "
                                         f"{SHIFT_MIN_SAMPLES} rows, it has {shift.n}")
        reason = shift_failure(shift, self._level)
        if reason is not None:
            written = ("the predictions already written to standard output are not to be used" if self._out == "-"
                       else "no predictions written")
            report = self._report()
            if self._show_notes is not None:
                self._show_notes()
            raise DataError(f"{self._stream.plan.source}: {reason}; {written}; {report}")

    def _report(self) -> str:
        """Write the shift report, if asked for; where it is (or why it is not), for the error."""
        path = self._shift_path
        if path is None:
            return "--shift-report FILE writes every feature's shift"
        try:
            write_shift_report(self._stream.shift, path)
        except OSError as exc:  # OutputError too: the report's failure must not hide why the run stopped
            from ..errors import MlpcliError

            why = exc if isinstance(exc, MlpcliError) else (exc.strerror or exc)
            return f"the shift report could not be written ({why})"
        return "the shift report is on standard output" if path == "-" else f"the shift report is in {path}"


def _summary_table(summary: dict, out: str, n: int) -> Table:
    table = Table(title="Predictions", title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("rows", f"{n:,} → {out}")
    if summary["predicted_counts"]:
        label = "positives per label" if summary["task"] == "multilabel" else "predicted"
        table.add_row(label, ", ".join(f"{k} {v:,}" for k, v in summary["predicted_counts"].items()))
    trust = summary.get("trust") or {}
    if "mean_set_size" in trust:
        table.add_row("prediction sets", f"mean size {trust['mean_set_size']:.2f}; {trust['multi_class_sets']:,} "
                      f"multi-class, {trust['empty_sets']:,} empty")
    if "abstained" in trust:
        table.add_row("abstained", f"{trust['abstained']:,} ({trust['options']['unassigned_label']})")
    if "ood_flagged" in trust:
        alpha = f"p < {trust['options']['ood_alpha']:.12g}"
        # "0 flagged" of a model that cannot flag at that level read as "all like the training samples"
        flagged = (f"{trust['ood_flagged']:,} flagged ({alpha})" if trust.get("ood_can_flag", True)
                   else f"n/a: none can be flagged at {alpha} (see the warning)")
        table.add_row("out-of-distribution", flagged)
    if summary.get("task") == "multilabel" and summary.get("threshold") is not None:
        t = summary["threshold"]
        names = list(t) if isinstance(t, dict) else []
        table.add_row("labels", label_threshold_words(list(t.values()) if isinstance(t, dict) else t, names,
                                                      summary.get("decision"),
                                                      summary.get("threshold_source") != "--threshold",
                                                      summary.get("recalibrated_on")))
    elif summary.get("decision") == "balanced" and summary.get("positive_class") is None:
        table.add_row("labels", "balanced: the most probable class relative to its "
                      + (f"share in {summary['recalibrated_on']}" if summary.get("recalibrated_on") else "training share"))
    if summary.get("positive_class") is not None:
        share = ("its share in the class mix --prevalence gave" if summary.get("prevalence") else
                 f"its share of {summary['recalibrated_on']}'s samples (the recalibration)"
                 if summary.get("recalibrated_on") else "its share of the training samples" + (
                     f" as {summary['weighted_by']} weighs them" if summary.get("weighted_by") else ""))
        why = (f", {share}: the balanced decision rule"
               if summary.get("decision") == "balanced" and summary.get("threshold_source") == "decision rule" else "")
        table.add_row("positive class", f"{summary['positive_class']} (predicted when its probability >= "
                                        f"{summary['threshold']:g}{why})")
    if summary.get("recalibrated_on"):
        table.add_row("recalibrated", f"on {summary['recalibrated_on']}: the probabilities are updated for that "
                                      "population (`mlpcli info MODEL` shows how)")
    mix = summary.get("prevalence")
    if mix:  # said here too: with --quiet the note that says it is not shown
        table.add_row("class mix", "probabilities moved to " + ", ".join(
            f"{c} {100 * v:.3g} %" for c, v in list(mix["cohort"].items())[:6]) + (" …" if len(mix["cohort"]) > 6 else "")
            + " (--prevalence)")
    shift = summary.get("shift") or {}
    if shift.get("level") not in (None, "unchecked"):
        mild = (f"{shift['fraction_mildly_shifted']:.0%} beyond {shift['thresholds']['mild_shift_sd']:g} SD"
                if shift.get("mild_checked", True) else f"{shift['thresholds']['mild_shift_sd']:g} SD not tested: "
                f"too few {'patients' if shift.get('groups') is not None else 'samples'}")
        absent = len(shift.get("absent") or [])
        absent = f"; {absent:,} feature{'s' * (absent > 1)} 0 in every sample (see the warning)" if absent else ""
        way = shift.get("one_way")
        way = f"; {way[1]:,} of {way[2]:,} {way[0]} than in training" if way else ""
        far = shift.get("far") or []
        far = (f"; {len(far):,} feature{'s' * (len(far) > 1)} far off ({', '.join(map(str, far[:3]))}"
               f"{', …' if len(far) > 3 else ''}: see the warning)") if far else ""
        table.add_row("cohort shift", f"{shift['level']} ({shift['fraction_mean_shifted']:.0%} of features beyond "
                      f"{shift['thresholds']['mean_shift_sd']:.3g} SD, {mild}{way}){absent}{far}")
    return table
