"""The command line: parse options, call one library function, render with rich.

Results go to stdout (a rich table, or one JSON document with ``--json``); progress, notes and
warnings go to stderr. Exit codes: 0 success, 1 a data / model / runtime error with a one-line
message, 2 a usage error, 130 interrupted. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import json
import sys
from contextlib import nullcontext

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import MlpcliError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# --------------------------------------------------------------------------- plumbing
def stdout_console() -> Console:
    # Piped output (logs, CI) gets a wide fixed width rather than wrapping tables at 80 columns.
    console = Console(file=sys.stdout, soft_wrap=False)
    if not console.is_terminal:
        console = Console(file=sys.stdout, soft_wrap=False, width=140)
    return console


def stderr_console(quiet: bool = False) -> Console:
    return Console(file=sys.stderr, quiet=quiet, highlight=False)


def _debug_enabled() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.meta.get("mlpcli.debug") or ctx.params.get("debug"):
            return True
        ctx = ctx.parent
    return False


def handle_errors(fn):
    """Turn library errors into one-line Click errors (exit 1) and Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            if _debug_enabled():
                raise
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except (MlpcliError, ValueError, OSError) as exc:
            if _debug_enabled():
                raise
            raise click.ClickException(_one_line(exc)) from exc
        except Exception as exc:  # an engine bug should still not dump a traceback on users
            if _debug_enabled():
                raise
            raise click.ClickException(
                f"internal error ({type(exc).__name__}: {_one_line(exc)}); rerun with --debug for the traceback"
            ) from exc

    return wrapper


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split())


def debug_option(fn):
    return click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON document on stdout.")(fn)


def threads_context(threads: int | None):
    """Cap BLAS threads (threadpoolctl) so HPC jobs stay within their allocation."""
    if not threads:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def threads_option(fn):
    return click.option(
        "--threads", type=click.IntRange(min=1), default=None, help="Cap the BLAS threads (default: all cores)."
    )(fn)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(doc) -> None:
    click.echo(json.dumps(doc, indent=2, default=_json_default, allow_nan=False))


# --------------------------------------------------------------------------- the group
@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="mlpcli")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors (for every subcommand).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Train, check and use multilayer-perceptron classifiers on tabular omics data.

    Honest grouped validation, a hand-written NumPy engine verified by finite differences,
    learning-curve diagnosis and safe batch prediction.

    Example:  mlpcli train sample_data/tumour_subtypes.csv.gz
    """
    ctx.meta["mlpcli.debug"] = debug


# --------------------------------------------------------------------------- gradcheck
@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--only", metavar="NAME", help="Check only components whose name starts with NAME (e.g. 'loss:ce', 'activation:gelu', 'network').")
@click.option("--eps", type=click.FloatRange(min=0, min_open=True), default=1e-6, show_default=True, help="Finite-difference step.")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=1e-6, show_default=True, help="Largest accepted relative error per entry.")
@click.option("--atol", type=click.FloatRange(min=0), default=1e-8, show_default=True,
              help="Absolute agreement accepted for entries below the finite-difference round-off floor (scaled by max(1,|loss|)).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the random inputs and networks.")
@json_option
@debug_option
@handle_errors
def gradcheck(only, eps, tol, atol, seed, as_json, debug):
    """Check every analytic gradient against central finite differences in float64.

    Covers each activation, each loss with its parameters, Dense, BatchNorm, Dropout (fixed
    mask), the L1/L2 penalties and whole networks under each loss. Exits 1 if anything fails.

    Example:  mlpcli gradcheck --only loss:focal
    """
    from .engine import gradcheck as gc

    results = gc.run(eps=eps, tol=tol, atol=atol, seed=seed, only=only)
    failed = [r for r in results if not r.passed]
    if as_json:
        print_json({
            "eps": eps, "tol": tol, "atol": atol, "seed": seed, "passed": not failed,
            "n_components": len(results), "n_failed": len(failed),
            "results": [r.to_dict() for r in results],
        })
    else:
        table = Table(title=f"Gradient check (central differences, eps={eps:g}, tol={tol:g})")
        table.add_column("component", overflow="fold")
        table.add_column("entries", justify="right")
        table.add_column("max rel. error", justify="right")
        table.add_column("result")
        table.add_column("note", overflow="fold", style="dim")
        for r in results:
            verdict = "[green]pass[/]" if r.passed else "[bold red]FAIL[/]"
            note = r.note + (f"; {r.near_zero} entries within round-off" if r.near_zero else "")
            table.add_row(r.component, str(r.entries), f"{r.max_rel_error:.1e}", verdict, note.strip("; "))
        stdout_console().print(table)
        summary = f"{len(results) - len(failed)} of {len(results)} components passed"
        click.echo(summary if not failed else f"{summary}; failed: {', '.join(r.component for r in failed[:5])}")
    if failed:
        sys.exit(1)


# --------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: a last line of defence so no traceback escapes."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        cli.main(args=args, prog_name="mlpcli", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - Click turns it into Abort first
        click.echo("Interrupted.", err=True)
        sys.exit(130)
