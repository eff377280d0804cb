"""`mlpcli explain`: which genes drive each class — integrated gradients through the engine's own
backward pass (checked for completeness), ranked per class, with their stability; or permutation
importance."""

from __future__ import annotations

import math

import click
import numpy as np
from rich.text import Text

from . import SHORT_HELP
from .console import check_stdout_open, print_json, render_notes, stderr_console, stdout_console, Table
from .exits import handle_errors, reading
from .outputs import check_table_output, check_writable, distinct_files, one_stdout_writer, stdout_alias
from .shared_options import (SYMBOL_FILES_HELP, SYMBOLS_DEFAULT_HELP,
                             CONTEXT_SETTINGS, debug_option, finite_option, json_option, named_column, named_file,
    role_options, threads_context, threads_option)
from .predict import role_flags


# Options that only one --method reads: given with the other, they would change nothing and say nothing.
_IG_ONLY = {"output_kind": "--output", "baseline": "--baseline", "steps": "--steps", "tol": "--tol",
            "bootstrap": "--bootstrap"}
_PERMUTATION_ONLY = {"repeats": "--repeats", "scoring": "--scoring"}


def _check_method_options(method: str) -> None:
    """A usage error for an option of the other --method given on the command line."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    foreign = _IG_ONLY if method == "permutation" else _PERMUTATION_ONLY
    given = [flag for name, flag in foreign.items() if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE]
    if given:
        other = "ig" if method == "permutation" else "permutation"
        extra = " (permutation importance uses the members, if any)" if given[0] == "--bootstrap" else ""
        raise click.UsageError(f"{given[0]} is for --method {other}{extra}; this run uses --method {method}")


def _training_table_warning(model, data_file: str, samples, method: str) -> list[str]:
    """A warning when permutation importance runs on rows the model was trained on: the members have seen those
    samples, so a gene the network memorised scores as important; the note every run prints is easily missed.
    The rows are recognised by the fingerprints the model keeps (``Samples.seen``: in any file, counted, as
    ``predict`` does); a model without them (an older file) by the file's name and number of samples."""
    import os

    if method != "permutation":
        return []
    advice = ("permutation importance on training samples rewards what the networks memorised; give held-out "
              "samples (another cohort, or a split kept out of training)")
    if samples.seen is not None:
        return [f"{samples.seen.describe(len(samples.X))}: {advice}"] if samples.seen.n else []
    prov = model.provenance or {}
    if data_file == "-" or not prov.get("data_file"):
        return []
    if os.path.basename(os.path.normpath(data_file)) != prov["data_file"] or len(samples.X) != prov.get("n_samples"):
        return []
    return [f"{data_file} looks like the table the model was trained on ({prov['data_file']}, {len(samples.X)} "
            f"samples): {advice}"]


def _training_rows_note(samples, method: str) -> list[str]:
    """Integrated gradients on rows the model was trained on: what drove its calls of those samples, which it was
    fitted to (a note: the permutation method's warning is ``_training_table_warning``)."""
    if method == "permutation" or samples.seen is None or not samples.seen.n:
        return []
    return [f"{samples.seen.describe(len(samples.X))}: the attributions explain its calls of samples it was fitted to; "
            "held-out samples show which genes drive its calls of new ones"]


@click.command(context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["explain"])
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("data_file", metavar="DATA", type=click.Path(allow_dash=True))  # a directory: 10x Genomics
@click.option("-o", "--out", default=None, type=click.Path(dir_okay=False), callback=named_file,
              help="Write the ranking table (class, rank, feature, score, mean_abs, direction, fraction, "
                   "member_overlap; with gene symbols, --symbols, a symbol column after feature; the first column "
                   "is target for a regression model, label for a multi-label one): .csv, .tsv, .txt (optionally "
                   ".gz/.bz2/.xz) or .parquet. IG scores are in the units of --output (logit or probability; a "
                   "regression model's: mean |attribution| in the target's units), whatever log1p or scaling the "
                   "model applies; permutation's are the rise of the class's log loss (with --scoring "
                   "balanced_accuracy the drop of its recall, a multi-label label's the drop of its balanced accuracy; "
                   "regression: the rise of RMSE).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, callback=named_file,
              help="Draw the top genes per class (bars coloured by direction) and a heatmap of samples x top "
                   "genes: .png, .svg or .pdf.")
@click.option("--method", type=click.Choice(["ig", "permutation"]), default="ig", show_default=True,
              help="ig: integrated gradients; permutation: permutation importance (labelled samples only).")
@click.option("--output", "output_kind", type=click.Choice(["logit", "prob"]), default="logit", show_default=True,
              help="IG of the members' mean logit, or of the probability predict gives (a regression model: its "
                   "predicted value, whatever this says; prob is an error).")
@click.option("--baseline", type=click.Choice(["mean", "zero"]), default="mean", show_default=True,
              help="IG's starting point: the training mean stored in the model, or all zeros.")
@click.option("--steps", type=click.IntRange(1, 100_000), default=64, show_default=True,
              help="IG: trapezoid intervals along the path (ReLU-family networks of two or more hidden layers "
                   "are integrated between their kinks: exactly for logits, probabilities on pieces of at most "
                   "1/steps).")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=None, callback=finite_option,
              help="IG: largest accepted completeness gap (relative)  [default: 1e-3 for float64 models, 1e-2 float32]")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Genes ranked per class (per target).")
@click.option("--symbols", "symbols", default=None, metavar="FILE|COLUMN", callback=named_column,
              help="Show each gene's symbol beside its id (a symbol column in -o and --json, the plot's labels), from "
                   f"an annotation FILE of ids and symbols, for any input: {SYMBOL_FILES_HELP}; its id column is "
                   "the one matching the model's features best; or, for .h5ad or 10x input, from this var COLUMN "
                   "('var_names' means the index). A value naming a var column of cell input is that column, any "
                   "other a file (./NAME: a file named as a column); 'none': the ids alone  " + SYMBOLS_DEFAULT_HELP)
@click.option("--class", "class_names", multiple=True, metavar="NAME",
              help="Rank only this class, or target of a regression model (repeatable); default every class "
                   "(a binary model: its positive class alone) or target.")
@click.option("--bootstrap", type=click.IntRange(min=2), default=None,
              help="One network: stability over this many resamples of each class's samples  [default: 20]")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Permutation: shuffles per gene.")
@click.option("--scoring", type=click.Choice(["log_loss", "balanced_accuracy"]), default="log_loss",
              show_default=True, help="Permutation: what a shuffled gene's importance measures (classification): "
                                      "the rise of log loss, or the drop of balanced accuracy (per class: its "
                                      "recall). A regression model's is the rise of each target's RMSE.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for bootstrap resamples and shuffles.")
@role_options
@click.option("--fill-missing", type=click.Choice(["mean"]), default=None,
              help="Fill features absent from the table with their training means (default: an error).")
@click.option("--max-missing", type=click.FloatRange(0, 1), default=None, metavar="FRACTION",
              callback=finite_option,
              help="With --fill-missing mean (or a model trained with --impute): the largest share of the "
                   "model's features that may be filled, as for predict  [default: 0.1]")
@threads_option
@click.option("-q", "--quiet", is_flag=True,
              help="Nothing on stderr but warnings and errors: no notes, and no summary where standard output holds "
                   "the ranking (-o -).")
@json_option
@debug_option
@handle_errors
def explain(model_path, data_file, out, plot_path, method, output_kind, baseline, steps, tol, top, symbols, class_names,
            bootstrap, repeats, scoring, seed, fill_missing, max_missing, threads, quiet, as_json, debug, **params):
    """Rank the genes that drive each class (or predicted value), with exact, checked attributions.

    Integrated gradients (IG) of each class's output with respect to the input features, through the
    model's preprocessing and the engine's own backward pass, from the training mean (or zero). Every
    sample is explained toward its class (its label, or the predicted class without labels); the
    attributions of a sample sum to f(sample) - f(baseline), and the worst relative gap is reported
    (exit 1 beyond --tol). Genes are ranked per class by their mean attribution over that class's
    samples; an ensemble's members are ranked each alone, and their agreement (top-K overlap,
    Spearman) is the ranking's stability (one network: --bootstrap resamples). Genes in the top K of
    fewer than half the members are flagged. Tied genes share a rank, and a gene scoring 0 or below (no
    push toward the class) counts in no member's top K.

    A binary model is ranked for its positive class alone (the other class's ranking lists the same genes
    pushing the other way; --class names it). A multi-label model is ranked per label, over the samples
    positive for it (labels, else predicted), toward that label (permutation: the label's score over every
    sample). A regression model is ranked per target over every sample:
    IG of the predicted value in the target's units, genes by their mean |attribution| (direction up: a
    higher value raises the prediction); permutation importance is the rise of the target's RMSE.

    \b
    Examples:
      mlpcli explain subtypes.mlp sample_data/test_cohort.csv.gz -o genes.csv --plot genes.png
      mlpcli explain subtypes.mlp sample_data/test_cohort.csv.gz --method permutation --json
      mlpcli explain cells.mlp sample_data/single_cell.h5ad --top 10 -o genes.csv
      mlpcli explain age.mlp cohort.csv --class age --plot age_genes.png
    """
    from .. import model_io
    from ..data.symbols import check_symbols_option
    from ..explain import check_rankable, explain as run, feature_symbols, load_samples

    reading(data_file)  # a data error naming no file is said of it
    roles = role_flags(params)
    out = stdout_alias(out)  # /dev/stdout is "-"
    one_stdout_writer({"-o -": out == "-", "--json": as_json})
    if not (as_json or out or plot_path):  # the ranking is the result: not lost on a closed standard output
        check_stdout_open("the ranking")
    distinct_files({"--out": out, "--plot": plot_path},
                   {"MODEL": model_path, "DATA": data_file, "--samples": roles.samples})
    check_table_output(out, "--out")
    if plot_path is not None:
        from ..plotting import plot_format

        plot_format(plot_path)
        check_writable(plot_path, "--plot")
    _check_method_options(method)
    check_symbols_option(data_file, symbols)  # --symbols COLUMN with a table: a usage error, before any reading
    model = model_io.load(model_path)
    check_rankable(model)  # before the data is read: a multi-label model's table may not even parse as labels
    if model.task == "regression":
        from click.core import ParameterSource

        from ..explain.attribution import check_model_output

        check_model_output(model, output_kind)
        if click.get_current_context().get_parameter_source("scoring") == ParameterSource.COMMANDLINE:
            raise click.UsageError("--scoring is for classification models; a regression model's permutation "
                                   "importance is the rise of each target's RMSE")
    with threads_context(threads):  # BLAS on one core unless --threads says more, as every command (SLURM's cores)
        samples = load_samples(model, data_file, roles=roles, fill_missing=fill_missing, max_missing=max_missing,
                               training_rows=True)
        # before the attributions, which may take minutes: a --symbols column the file lacks is said at once
        gene_symbols = feature_symbols(model, data_file, roles=roles, column=symbols)
        from .cv import FitProgress

        # permutation importance over a transcriptome takes minutes: a bar, or a line per tenth in a log
        with FitProgress("genes shuffled", quiet or method != "permutation") as progress:
            result = run(model, samples.X, samples.y, ids=samples.ids, method=method,
                         classes=list(class_names) or None, output=output_kind, baseline=baseline, steps=steps,
                         top=top, bootstrap=bootstrap, repeats=repeats, scoring=scoring, tol=tol, seed=seed,
                         absent=samples.filled, patients=samples.patients, progress=progress)
    result.add_symbols(gene_symbols)  # a symbol column after feature (the ids stay the keys); its note: which column
    notes = stderr_console(quiet)
    result.notes.extend(_training_rows_note(samples, method))  # (in --json's notes too)
    if method == "ig" and output_kind == "logit" and model.recalibrated_on is not None:
        # the update acts on probabilities after the temperature; the logit path stops before it
        result.notes.append(f"--output logit: the attributions are of the networks' logits, before the model's "
                            f"recalibration on {model.recalibrated_on}; --output prob attributes the recalibrated "
                            "probabilities")
    render_notes(notes, [*samples.notes, *result.notes], [])
    warnings = [*samples.warnings, *_training_table_warning(model, data_file, samples, method),
                *(gene_symbols.warnings if gene_symbols is not None else [])]
    render_notes(stderr_console(False), [], warnings)
    gap = result.completeness
    if gap is not None and not gap["passed"]:
        from ..errors import TrainingError

        float32 = any(m.network.dtype == np.float32 for m in model.members)
        # below the arithmetic's round-off more steps cannot close the gap: say what can
        floor = 1e-5 if float32 else 1e-12
        arithmetic = "float32" if float32 else "float64"
        if gap["tol"] < floor and gap["max_gap"] < 10 * floor:  # the gap is the round-off: more steps cannot close it
            fix = (f"--tol {gap['tol']:g} is below the round-off of the network's {arithmetic} arithmetic, which more "
                   f"steps cannot close: use --tol {floor:g} or more"
                   + (", or a float64 model (train --dtype float64)" if float32 else ""))
        elif gap["tol"] < floor:  # far above the round-off: the path's steps first, and a --tol it can reach
            fix = (f"raise --steps (now {steps}), and use --tol {floor:g} or more (below it is the round-off of the "
                   f"network's {arithmetic} arithmetic)")
        else:
            fix = f"raise --steps (now {steps})"
        toward = "of" if model.task == "regression" else "toward"
        raise TrainingError(f"completeness check failed: the attributions of sample {gap['worst_sample']} ({toward} "
                            f"{gap['worst_class']}) miss f(x) - f(baseline) by {gap['max_gap']:.2e} relative, above "
                            f"--tol {gap['tol']:g} even with {gap['most_steps']} steps; {fix}")
    def write_ranking() -> None:
        if out is not None:
            from ..explain import ranked_column
            from ..predict import write_table

            # the first column names what is ranked: a regression model's targets are no classes
            write_table(result.table.rename(columns={"class": ranked_column(model.task)}), out)

    if plot_path is not None:
        from ..explain.plots import plot_explanation

        # all outputs or none: the table is written once the plot is drawn and before the plot replaces the
        # file at --plot, so neither failing to draw nor failing to write the table leaves a new file, nor
        # removes the plot an earlier run left there (deleting the new plot after the fact did)
        plot_explanation(result, plot_path, model, samples.X, result.sample_classes, before_replacing=write_ranking)
    else:
        write_ranking()
    if as_json:
        # the warnings were said on stderr too; here with the notes, as predict's and evaluate's documents hold them
        print_json({"model": model_path, "data": data_file, "out": out, "plot": plot_path, **result.to_dict(),
                    "warnings": warnings})
        return
    # standard output holds the ranking (-o -): the summary goes to stderr, as train's and predict's do
    console = stderr_console(quiet) if out == "-" else stdout_console()  # -q: see train
    regression = model.task == "regression"
    if gap is not None:
        # a regression model's samples are explained once per target, a multi-label one's once per label it is
        # positive for: counted once
        n_explained = len(samples.X) if regression else gap.get("samples", sum(result.n_samples.values()))
        what = "predicted value (the target's units)" if regression else output_kind
        console.print(f"completeness: attributions sum to f(x) - f(baseline) within {gap['max_gap']:.1e} relative "
                      f"(median {gap['median_gap']:.1e}; --tol {gap['tol']:g}), {n_explained} "
                      f"samples, {steps} steps" + (f" (up to {gap['most_steps']} where needed)" if gap["most_steps"] > steps
                                                   else "") + f", output {what}, baseline {baseline}",
                      soft_wrap=True)  # one line in a log, not broken at the console's width
    shown = min(top, 10)  # a terminal table per class stays short; -o / --json hold all of --top
    for name in result.classes:
        ranked = result.table[result.table["class"] == name]
        rows = ranked.head(shown)
        st = result.stability.get(name, {})
        n_c = result.n_samples.get(name, 0)
        # of the genes ranked (those the model uses): "top 5 of 5 genes" for --top 5 read as a model of 5 genes
        title = f"{name}: top {len(rows)} of {result.n_features:,} genes ({n_c} sample{'s' * (n_c != 1)})"
        if st.get("mean_overlap") is not None:
            title += f" · stability over {st['n']} {st['unit']}s: top-{st.get('top') or top} overlap {st['mean_overlap']:.2f}"
            if st.get("mean_spearman") is not None:  # undefined when every score ties: the overlap still shows
                title += f", Spearman {st['mean_spearman']:.2f}"
        if not (rows["score"] > 0).any():  # a table of genes tied at 0 would read as a ranking
            console.print(f"{name}: no gene scores above 0 ({n_c} sample{'s' * (n_c != 1)})", markup=False)
            continue
        # the title on a line of its own, unwrapped: a table's title wraps at the table's width, which its
        # cells decide, so the same summary broke at a different word from run to run (grep, logs)
        console.print(title, soft_wrap=True, markup=False)  # class names as written: "T[reg]" is not markup
        table = Table()
        spread = "mean |A|" if result.method == "ig" else "mean |drop|"
        with_symbols = "symbol" in rows.columns  # genes named by id: their symbols beside them
        for col, justify in (("rank", "right"), ("feature", "left"), *((("symbol", "left"),) if with_symbols else ()),
                             ("score", "right"), (spread, "right"), ("direction", "left"), ("fraction", "right"),
                             ("overlap", "right")):
            table.add_column(col, justify=justify)
        for r in rows.itertuples(index=False):
            overlap = "" if math.isnan(r.member_overlap) else f"{r.member_overlap:.2f}"
            cell = Text(overlap)
            if overlap and r.member_overlap < 0.5:
                cell.append(" unstable", style="yellow")
            symbol = [r.symbol if isinstance(r.symbol, str) else ""] if with_symbols else []  # none: the id alone
            table.add_row(str(r.rank), r.feature, *symbol, f"{r.score:+.3g}", f"{r.mean_abs:.3g}", r.direction,
                          f"{r.fraction:.2f}", cell)
        console.print(table)
        if len(ranked) > len(rows):  # --top 30 showed 10 rows and nothing said so
            console.print(f"{name}: the first {len(rows)} of {len(ranked)} ranked shown; "
                          f"{'-o FILE' if out is None else 'the -o file'} or --json holds all {len(ranked)}",
                          soft_wrap=True, markup=False, style="dim")
    if out is not None:
        console.print(f"ranking of {len(result.table)} rows → {'standard output' if out == '-' else out}",
                      soft_wrap=True, markup=False)
    if plot_path is not None:
        console.print(f"plot → {plot_path}", soft_wrap=True, markup=False)
