"""The command line: parse options, call one library function, render with rich.

Results go to stdout (a rich table, or one JSON document with ``--json``); progress, notes and
warnings go to stderr. Exit codes: 0 success, 1 a data / model / runtime error with a one-line
message, 2 a usage error, 128 + the signal when stopped: 130 Ctrl-C (SIGINT), 143 SIGTERM (SLURM's
scancel and time limit), 129 SIGHUP; 141 (SIGPIPE's) when the reader of standard output or standard error
has gone (``| head``). ``--debug`` shows the traceback instead.

Every command treats SIGTERM and SIGHUP like Ctrl-C: it stops, removes its temporary files and leaves
any output it was writing untouched; ``train`` keeps the best weights so far (the members trained so far
for an ensemble) and says so.

Each command lives in its own module, named on the group here and imported when it runs (or when
``--help`` lists it): a command's start does not import the other commands and what they use.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import sys
import warnings

import click

from .. import __version__
from ..errors import one_line
from ..parallel import shutdown_workers
from .console import say_line, silence_stdout
from .shared_options import CONTEXT_SETTINGS
from .signals import interrupted_exit, stop_signals_as_interrupts

__all__ = ["cli", "main", "all_commands", "COMMANDS"]

# each command's one-line help (its ``short_help``), the command defined under its name by the module of this
# package of that name: `mlpcli --help` and shell completion list them without importing the commands
SHORT_HELP = {
    "train": "Train an MLP on a samples x features table; save it.",
    "gradcheck": "Check analytic gradients against finite differences.",
    "diagnose": "Label a run's learning curves and explain the verdict.",
    "evaluate": "Score a model on a labelled table, per group, with CIs.",
    "predict": "Predict a new cohort with a trained model, streamed.",
    "explain": "Rank the genes that drive each class or predicted value.",
    "cv": "Cross-validate what train ships, on grouped folds.",
    "tune": "Tune train options by grouped cross-validation.",
    "info": "Show what a model file holds: task, features, training.",
    "recalibrate": "Update a model's probabilities for a new population.",
}
COMMANDS = tuple(SHORT_HELP)


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use (Click's lazily loaded subcommands): ``train`` does
    not import ``cv``, ``explain`` or ``gradcheck`` and what they import, and the group's own help and shell
    completion list the commands from ``SHORT_HELP`` without importing any (`mlpcli --help` imported all
    ten, pandas with them: 1.2 s)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            self.add_command(getattr(importlib.import_module(f"{__name__}.{name}"), name))
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SHORT_HELP[name]) for name in self.list_commands(ctx) if name in SHORT_HELP]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str):
        from click.shell_completion import CompletionItem

        commands = [CompletionItem(name, help=SHORT_HELP[name]) for name in self.list_commands(ctx)
                    if name in SHORT_HELP and name.startswith(incomplete)]
        return commands + click.Command.shell_complete(self, ctx, incomplete)


def all_commands() -> dict[str, click.Command]:
    """Every command by name, imported (for documentation and checks over all of them)."""
    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}


def __getattr__(name: str):
    """``TrainProgress``, train's progress display, from its module when asked for (tests reach it here)."""
    if name == "TrainProgress":
        from .train import TrainProgress

        return TrainProgress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@click.group(cls=_LazyGroup, context_settings=CONTEXT_SETTINGS)
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

    Exit codes: 0 success, 1 an error (one line naming the file, option or column), 2 a usage error,
    128 + the signal when stopped: 130 Ctrl-C, 143 SIGTERM (SLURM's scancel or time limit), 129 SIGHUP,
    138 SIGUSR1; 141 when the reader of the output has gone (| head).
    Every command stops on SIGTERM, SIGHUP, SIGUSR1 / SIGUSR2 (sbatch --signal=USR1@120) and SIGXCPU
    as on Ctrl-C, leaving no partial or temporary file; train keeps the best weights so far (an
    ensemble, the members trained so far) and says so.
    """
    ctx.meta["mlpcli.debug"] = debug




# --------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: stop signals become interrupts (``stop_signals_as_interrupts``), and a
    last line of defence so no traceback escapes."""
    args = sys.argv[1:] if argv is None else list(argv)
    # Registered first, so it runs last at interpreter exit, after every other exit handler: the objects
    # then alive (130,000 with scikit-learn and pandas loaded) move out of the collector's reach, so the
    # collections of the interpreter's teardown do not walk them again and again (0.3 s of every command
    # that imported scikit-learn). Teardown still frees them by reference counting; only garbage in
    # reference cycles is left to the operating system, and every file is closed explicitly before this.
    atexit.register(gc.freeze)
    if "--debug" not in args:  # a failure is an error naming its culprit, never NumPy's overflow chatter
        warnings.filterwarnings("ignore", category=RuntimeWarning)
    with stop_signals_as_interrupts():
        ended = False
        try:
            try:
                rv = cli.main(args=args, prog_name="mlpcli", standalone_mode=False)
                ended = True
            finally:  # worker processes end here, where a signal is handled, not in an exit handler
                shutdown_workers()
        except (click.Abort, KeyboardInterrupt) as exc:  # a signal outside a command's own handling
            # (once the command has ended, as its worker processes are stopped: a batch job's log must not read as
            # a run without a result, its outputs written)
            interrupted_exit(exc.__cause__ if isinstance(exc, click.Abort) else exc, ended=ended)
        except click.ClickException as exc:
            try:
                exc.show()
            except OSError:  # standard error's reader has gone (2>&1 | head): the exit code still says it
                pass
            sys.exit(exc.exit_code)
        except SystemExit as exc:
            # Click's own rule for a closed pipe outside a command (--help, --version: `mlpcli --help | head -1`
            # after head has gone) is exit 1, which reads as an error: 141, as for every other writer to one
            # (Click 8.4 raises it within its EPIPE handler; 8.5 after it, having wrapped sys.stdout)
            if exc.code == 1 and (isinstance(exc.__context__, BrokenPipeError)
                                  or type(sys.stdout).__name__.endswith("PacifyFlushWrapper")):
                silence_stdout()
                sys.exit(141)
            raise
        except OSError as exc:  # outside a command's own handling: --help or --version into a full disk
            if "--debug" in args:
                raise
            if exc.filename:
                say_line(f"Error: {one_line(exc)}")
            else:
                silence_stdout()
                reason = exc.strerror or type(exc).__name__
                say_line(f"Error: cannot write standard output: {reason[:1].lower() + reason[1:]}")
            sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
