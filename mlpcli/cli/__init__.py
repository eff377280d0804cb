"""The command line: parse options, call one library function, render with rich.

Results go to stdout (a rich table, or one JSON document with ``--json``); progress, notes and
warnings go to stderr. Exit codes: 0 success, 1 a data / model / runtime error with a one-line
message, 2 a usage error, 130 interrupted. ``--debug`` shows the traceback instead.

Each command lives in its own module and is registered on the group here.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from ._common import CONTEXT_SETTINGS
from .cv import cv
from .diagnose import diagnose
from .evaluate import evaluate
from .gradcheck import gradcheck
from .predict import predict
from .train import _Progress, train
from .tune import tune

__all__ = ["cli", "main", "_Progress"]


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="mlpcli")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors (for every subcommand).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Train, check and use multilayer-perceptron classifiers on tabular omics data.

    Honest grouped validation, a hand-written NumPy engine verified by finite differences,
    learning-curve diagnosis and safe batch prediction.

    \b
    Example:
      mlpcli train sample_data/tumour_subtypes.csv.gz
    """
    ctx.meta["mlpcli.debug"] = debug




for _command in (train, gradcheck, diagnose, evaluate, predict, cv, tune):
    cli.add_command(_command)


# --------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: a last line of defence so no traceback escapes."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        cli.main(args=args, prog_name="mlpcli", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - Click turns it into Abort first
        click.echo("Interrupted.", err=True)
        sys.exit(130)
