"""`mlpcli gradcheck`: every analytic gradient against central finite differences."""

from __future__ import annotations

import sys

import click
from rich.text import Text

from ..errors import DataError
from . import SHORT_HELP
from .console import check_stdout_open, print_json, report, stdout_console, Table
from .exits import handle_errors
from .outputs import check_stdout_not_input
from .shared_options import CONTEXT_SETTINGS, debug_option, finite_option, json_option, role_options
from .predict import role_flags

# The table reader words its target errors for `evaluate`; gradcheck's loss takes labels from the target, or
# from the model's own predictions when --target is left out, and `mlpcli predict` is no remedy for it.
def _gradcheck_advice(exc: DataError) -> DataError:
    """A target error of the table reader with gradcheck's remedy in place of evaluate's."""
    from ..predict.columns import TARGET_ADVICE, with_advice

    return with_advice(exc, {TARGET_ADVICE: "; name the column holding the labels with --target, or leave --target "
                                            "out to check the gradients against the model's own predictions"})


@click.command(context_settings=CONTEXT_SETTINGS,
               short_help=SHORT_HELP["gradcheck"])
@click.option("--only", metavar="NAME", help="Check only components whose name starts with NAME (e.g. 'loss:ce', 'activation:gelu', 'network').")
@click.option("--eps", type=click.FloatRange(min=0, min_open=True), default=1e-6, show_default=True,
              callback=finite_option, help="Finite-difference step.")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=1e-6, show_default=True,
              callback=finite_option, help="Largest accepted relative error per entry.")
@click.option("--atol", type=click.FloatRange(min=0), default=1e-8, show_default=True, callback=finite_option,
              help="Absolute agreement accepted for entries below the finite-difference round-off floor (scaled by max(1,|loss|)).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed for the random inputs and networks (with --model: the rows and entries sampled).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Check a trained model's gradients on rows of --data instead of the synthetic suite.")
@click.option("--data", "data_path", type=click.Path(allow_dash=True), default=None,  # a directory: 10x Genomics
              help="Table, .h5ad file or 10x directory whose rows --model is checked on, read and matched to the "
                   "model as predict reads it (its target, when present, gives the loss its labels).")
@click.option("--rows", type=click.IntRange(min=1), default=32, show_default=True,
              help="With --model: rows sampled from --data (at least 3 for a model with BatchNorm).")
@click.option("--entries", type=click.IntRange(min=1), default=20, show_default=True,
              help="With --model: entries checked per parameter array (sampled).")
@role_options
@click.option("-q", "--quiet", is_flag=True, help="No notes on stderr (warnings still show).")
@json_option
@debug_option
@handle_errors
def gradcheck(only, eps, tol, atol, seed, model_path, data_path, rows, entries, quiet, as_json, debug, **params):
    """Check every analytic gradient against central finite differences in float64.

    Covers each activation, each loss with its parameters, Dense, BatchNorm, Dropout (fixed
    mask), the L1/L2 penalties and whole networks under each loss; the activations and the
    classification losses also at large inputs (|z| up to 1,000: saturated sigmoids, one-hot
    softmaxes); and the float32 arithmetic training uses by default (--dtype float32), which finite
    differences cannot check, against the float64 gradients (the 'float32' components). Exits 1 if
    anything fails, or is inconclusive: every gradient of a component too small to tell from round-off
    (a model that fits its rows almost exactly), which a lower --atol can still compare, or exactly 0
    (a loss flat on the rows: every hinge margin met).

    With --model and --data, checks a trained model's own network, in a float64 copy, on a sample
    of real rows (inference mode, and training mode when it uses dropout, with a fixed mask, or
    BatchNorm, with the batch statistics of the rows).

    \b
    Examples:
      mlpcli gradcheck --only loss:focal
      mlpcli gradcheck --model subtypes.mlp --data sample_data/test_cohort.csv.gz
      mlpcli gradcheck --model cells.mlp --data sample_data/single_cell.h5ad
    """
    from click.core import ParameterSource

    from ..engine import gradcheck as gc

    if (model_path is None) != (data_path is None):
        raise click.UsageError("--model and --data go together")
    if model_path == "-" and data_path == "-":  # the second reader would find standard input empty
        raise click.UsageError("--model - and --data - would both read standard input, which can be read once; give "
                               "one of them a file name")
    ctx = click.get_current_context()
    sampling = [f"--{name}" for name in ("rows", "entries")
                if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)]
    if sampling and model_path is None:
        raise click.UsageError(f"{sampling[0]} samples a trained model's check; give --model and --data too (the "
                               "synthetic suite checks every entry)")
    reading = [f"--{name.replace('_col', '').replace('_', '-')}" for name in params
               if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)]
    if reading and data_path is None:
        raise click.UsageError(f"{reading[0]} applies to the rows of --data; give --model and --data too")
    if only is not None and not only.strip():  # an empty shell variable: it would select every component
        raise click.BadParameter("is empty; give a component name or the start of one (e.g. loss:ce)",
                                 param_hint="'--only'")
    if model_path is not None and only:
        raise click.UsageError("--only selects components of the synthetic suite; it does not combine with --model")
    # the table (or --json) is the result, and no option sends it elsewhere: not lost on a closed standard output
    # after every check ran (the exit code alone said pass or fail, exit 0, nothing shown)
    check_stdout_open("--json" if as_json else "the gradient check table")
    if model_path is not None:
        check_stdout_not_input({"--model": model_path, "--data": data_path})
        from .. import model_io
        from ..checks import check_model
        from ..predict.evaluation import read_targets_as

        notes: list[str] = []
        warnings: list[str] = []
        # --target may name the table's label columns otherwise than the model's (read as evaluate reads them)
        model, roles, target_note = read_targets_as(model_io.load(model_path), role_flags(params))
        notes.extend(filter(None, [target_note]))
        try:
            results = check_model(model, data_path, rows=rows, max_entries=entries, eps=eps, tol=tol, atol=atol,
                                  seed=seed, roles=roles, notes=notes, warnings=warnings)
        except DataError as exc:
            raise _gradcheck_advice(exc) from None
        report([] if as_json else notes, warnings, quiet)
    else:
        notes, warnings = [], []
        try:
            results = gc.run(eps=eps, tol=tol, atol=atol, seed=seed, only=only)
        except gc.UnknownComponent as exc:
            raise click.BadParameter(str(exc), param_hint="'--only'") from None
    failed = [r for r in results if not r.passed]
    hint = _step_hint(ctx, eps, tol, failed) or _floor_hint(ctx, atol, tol, results) or _tol_hint(ctx, tol, results)
    if as_json:
        print_json({
            "eps": eps, "tol": tol, "atol": atol, "seed": seed, "passed": not failed,
            "n_components": len(results), "n_failed": len(failed),
            "n_inconclusive": sum(r.inconclusive for r in results),
            "results": [r.to_dict() for r in results], "notes": notes, "warnings": warnings + ([hint] if hint else []),
        })
    else:
        table = Table(title=f"Gradient check (central differences, eps={eps:g}, tol={tol:g})")
        table.add_column("component", overflow="fold")
        table.add_column("entries", justify="right")
        table.add_column("max rel. error", justify="right")
        table.add_column("result")
        table.add_column("note", overflow="fold", style="dim")
        for r in results:
            verdict = (Text("pass", style="green") if r.passed else Text("inconclusive", style="bold yellow")
                       if r.inconclusive else Text("FAIL", style="bold red"))
            near = f"{r.near_zero} entr{'ies' if r.near_zero != 1 else 'y'} within round-off" if r.near_zero else ""
            note = "; ".join(filter(None, [r.note, near]))
            table.add_row(r.component, str(r.entries), f"{r.max_rel_error:.1e}", verdict, note)
        stdout_console().print(table)
        summary = f"{len(results) - len(failed)} of {len(results)} components passed"
        wrong = [r.component for r in failed if not r.inconclusive]
        unresolved = [r.component for r in failed if r.inconclusive]
        if wrong:
            summary += f"; failed: {_first(wrong)}"
        if unresolved:
            summary += (f"; inconclusive (every gradient too small to tell from round-off at --atol {atol:g}, or exactly 0: "
                        f"the component's note says which): {_first(unresolved)}")
        click.echo(summary)
    if hint:
        report([], [hint], quiet)
    if failed:
        sys.exit(1)


def _floor_hint(ctx, atol: float, tol: float, results) -> str:
    """A warning when a --atol above its default let components pass with entries the default would have failed:
    --atol 0.1 passed a weight gradient twice the true one ("2 of 2 components passed, max rel. error 2.5e-07", the
    correct bias entries counted and the 40 wrong weight entries forgiven as round-off). Empty otherwise."""
    from click.core import ParameterSource

    from ..engine.gradcheck import DEFAULT_ATOL as default

    if atol <= default or ctx.get_parameter_source("atol") in (ParameterSource.DEFAULT, None):
        return ""
    forgave = [r for r in results if r.passed and r.max_rel_forgiven > 0]  # entries the default floor would fail
    if not forgave:
        return ""
    worst = max(forgave, key=lambda r: r.max_rel_forgiven)
    return (f"with --atol {atol:g} {_first([r.component for r in forgave])} passed with entries the default --atol "
            f"{default:g} fails, off their central differences by up to {worst.max_rel_forgiven:.2g} relative "
            f"({worst.component}), forgiven as round-off: a floor above the central difference's own (about 1e-10 x "
            "max(1, |f|) at --eps 1e-6) forgives wrong gradients of that size; rerun with the default to tell")


def _tol_hint(ctx, tol: float, results) -> str:
    """A warning when a --tol above its default let components pass with entries the default rejects: --tol 0.5
    passed an MSE gradient 1.5 times the true one ("1 of 1 components passed", max rel. error 0.33) without a word,
    where a raised --atol that forgave one is warned of (``_floor_hint``). Empty otherwise."""
    from click.core import ParameterSource

    from ..engine.gradcheck import DEFAULT_TOL as default

    if tol <= default or ctx.get_parameter_source("tol") in (ParameterSource.DEFAULT, None):
        return ""
    loose = [r for r in results if r.passed and r.max_rel_tolerated > 0]  # entries the default tol and floor fail
    if not loose:
        return ""
    worst = max(loose, key=lambda r: r.max_rel_tolerated)
    return (f"with --tol {tol:g} {_first([r.component for r in loose])} passed with entries the default --tol "
            f"{default:g} fails, off their central differences by up to {worst.max_rel_tolerated:.2g} relative "
            f"({worst.component}): a wrong gradient of that size passes too; rerun with the default to tell")


def _first(names: list[str], k: int = 5) -> str:
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def _step_hint(ctx, eps: float, tol: float, failed) -> str:
    """A warning when components failed under a step or tolerance other than the defaults, so that such
    failures do not read as wrong gradients without a word (empty otherwise): central differences lose
    accuracy to round-off, about 1e-15 |f| / eps, with smaller steps (1e-3 relative at eps 1e-12) and to
    curvature, about eps^2 |third derivative of f| / 6, with larger ones, and a tighter tolerance fails right gradients."""
    from click.core import ParameterSource

    if all(r.inconclusive for r in failed):
        return ""
    given = [f"--{name} {value:g}" for name, value, default in (("eps", eps, 1e-6), ("tol", tol, 1e-6))
             if value != default and ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)]
    if not given:
        return ""
    return (f"with {' and '.join(given)} the failures may be the check's rather than the gradients': central "
            "differences lose accuracy to round-off with smaller steps and to curvature with larger ones, and a "
            "tighter tolerance fails right gradients; rerun with the defaults (--eps 1e-6 --tol 1e-6) to tell")
